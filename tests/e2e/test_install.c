/* test_install — the host install without Docker (docs/install.md):
 * `make install DESTDIR=<tmp> PREFIX=/usr` with the tree's Makefile and
 * BIN=$HIVE_BIN (the binaries under test; install builds nothing), run
 * under umask 077 so that a mode the Makefile forgot to set shows.
 *
 *   1. the installed files, exactly: the daemons (and hivectl when it is
 *      built; never the simulators) 0755 and equal to the built ones, the
 *      dashboard 0644 and equal to web/, the units and the sysusers.d
 *      snippet 0644, the config 0640, every directory 0755;
 *   2. the config: the shipped etc/powerhive.host.json with PREFIX put in,
 *      `apid -n` accepts it, loopback only, state under /var/lib/powerhive,
 *      the bus on ipc:// sockets in /run/powerhive (apid's RuntimeDirectory);
 *   3. the units: ExecStart names the installed binary and the installed
 *      config, and each has the sandbox docs/install.md describes;
 *      `systemd-analyze verify` prints nothing for any of them nor for an
 *      instance of the pollerd template. verify needs each Exec binary at
 *      its path, and Debian 12's systemd 252 with --root= also wants a whole
 *      unit tree (sysinit.target, /bin/kill) under the root: so it runs on
 *      copies whose ExecStart names the DESTDIR binary, nothing else
 *      changed. A broken copy must be reported (the check is real).
 *      `systemd-analyze security --offline=yes` rates each unit (figure);
 *   3b. HTTPS: powerhive-https.service runs Debian's stunnel4 with the
 *      installed /etc/powerhive/stunnel.conf (etc/https/stunnel.conf with
 *      SYSCONFDIR put in, kept on a second install) as powerhive with
 *      CAP_NET_BIND_SERVICE alone, the same sandbox, no access to
 *      /var/lib/powerhive; verify prints nothing; its exposure (figure);
 *   4. the sysusers.d snippet creates the powerhive user in a scratch root;
 *   5. the installed apid, with the installed config moved to temp paths
 *      and free loopback ports, serves /api/health and the installed web
 *      root's index.html;
 *   6. a second install keeps an edited config;
 *   7. uninstall removes everything but the configs.
 *
 * KEEP_TMP=1 keeps the temp dir (the DESTDIR tree, the copies verified).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define PREFIX   "/usr"
#define EXPOSURE_MAX 2.0   /* systemd-analyze security, 0 (locked) .. 10 */

static const char *const daemons[] = { "apid", "discoverd", "pollerd", "telemetryd" };

static const struct unit {
	const char *file;
	const char *prog;
	bool hub;            /* apid: the one that writes /var/lib/powerhive */
} units[] = {
	{ "powerhive-apid.service", "apid", true },
	{ "powerhive-discoverd.service", "discoverd", false },
	{ "powerhive-pollerd@.service", "pollerd", false },
	{ "powerhive-telemetryd.service", "telemetryd", false },
};
#define NUNITS (sizeof(units) / sizeof(units[0]))

/* Lines every unit has: its user, reload, restart and sandbox. */
static const char *const every_unit[] = {
	"Type=exec",
	"User=powerhive",
	"Group=powerhive",
	"ExecReload=/bin/kill -HUP $MAINPID",
	"Restart=on-failure",
	"UMask=0077",
	"NoNewPrivileges=yes",
	"CapabilityBoundingSet=",
	"ProtectSystem=strict",
	"ProtectHome=yes",
	"PrivateTmp=yes",
	"PrivateDevices=yes",
	"ProtectKernelTunables=yes",
	"ProtectKernelModules=yes",
	"ProtectControlGroups=yes",
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	"RestrictNamespaces=yes",
	"MemoryDenyWriteExecute=yes",
	"SystemCallArchitectures=native",
	"SystemCallFilter=@system-service",
	"WantedBy=multi-user.target",
};
static const char *const hub_unit[] = {
	"StateDirectory=powerhive",
	"StateDirectoryMode=0700",
	"RuntimeDirectory=powerhive",       /* the bus's ipc:// sockets */
	"RuntimeDirectoryMode=0700",
	"WorkingDirectory=/var/lib/powerhive",
	"After=network-online.target",
};
/* Workers may run on a host without apid: ordered after it, never pulling it in. */
static const char *const worker_unit[] = {
	"InaccessiblePaths=-/var/lib/powerhive",
	"After=network-online.target powerhive-apid.service",
};

static struct ts_suite suite;   /* its dir holds everything; apid for test 5 */
static char root[1024];         /* the DESTDIR */
static size_t ended, ntests;    /* tests that got to their end, of all: keep the dir when short */

static const char *hive_bin(void)
{
	const char *b = getenv("HIVE_BIN");

	return b && *b ? b : "bin";
}

/* `make <target> DESTDIR=root PREFIX=/usr BIN=$HIVE_BIN` under umask 077, as
 * an operator types it: not as a sub-make of `make test` (whose flags and
 * jobserver are not passed on). */
static int make(const char *target, char **out)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "umask 077 && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory %s "
		 "DESTDIR='%s' PREFIX=" PREFIX " BIN='%s' 2>&1", target, root, hive_bin());
	return tl_run(cmd, out);
}

/* True when text has line as one whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static bool same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	int ca, cb;

	while (same) {
		ca = getc(fa);
		cb = getc(fb);
		if (ca != cb)
			same = false;
		if (ca == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* ---------------------------------------------------------------- tree walks */

static json_t *walked;          /* path under the walk's top -> mode, for nftw */
static size_t walk_top;
static int walk_bad;

static int walk_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (strlen(path) <= walk_top)
		return 0;
	if (flag == FTW_D) {
		if ((sb->st_mode & 07777) != 0755) {
			fprintf(stderr, "directory %s has mode %04o, not 0755\n", path,
				(unsigned)(sb->st_mode & 07777));
			walk_bad++;
		}
		return 0;
	}
	if (flag != FTW_F || !S_ISREG(sb->st_mode)) {
		fprintf(stderr, "%s is not a regular file\n", path);
		walk_bad++;
		return 0;
	}
	json_object_set_new(walked, path + walk_top + 1, json_integer(sb->st_mode & 07777));
	return 0;
}

/* Every regular file under top (relative path -> mode); directories that
 * are not 0755 and anything else count in walk_bad. */
static json_t *walk(const char *top)
{
	walked = json_object();
	walk_top = strlen(top);
	walk_bad = 0;
	if (nftw(top, walk_one, 16, FTW_PHYS) != 0)
		walk_bad++;
	return walked;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
	char *real, *out = NULL;
	int rc;

	(void)state;
	if (tl_run("systemd-analyze --version >/dev/null 2>&1 && "
		"systemd-sysusers --version >/dev/null 2>&1", NULL) != 0) {
		fprintf(stderr, "systemd-analyze / systemd-sysusers are missing: "
			"apt-get install systemd\n");
		return -1;
	}
	if (ts_init(&suite, "install") != 0)
		return -1;
	if (!(real = realpath(suite.dir, NULL))) {
		perror(suite.dir);
		ts_down(&suite, true);
		return -1;
	}
	snprintf(root, sizeof(root), "%s/root", real);
	free(real);
	rc = make("install", &out);
	printf("make install:\n%s", out ? out : "");
	if (rc != 0) {
		fprintf(stderr, "make install exited %d:\n%s\n", rc, out ? out : "");
		free(out);
		ts_down(&suite, true);
		return -1;
	}
	free(out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_down(&suite, ended < ntests);
	return 0;
}

/* ---------------------------------------------------------------- 1. files */

static void expect(json_t *want, const char *rel, int mode)
{
	json_object_set_new(want, rel, json_integer(mode));
}

static void test_files(void **state)
{
	json_t *got, *want = json_object(), *web;
	const char *rel;
	json_t *v;
	char path[4096], rel2[PATH_MAX];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++) {
		snprintf(rel2, sizeof(rel2), "usr/bin/%s", daemons[i]);
		expect(want, rel2, 0755);
	}
	expect(want, "usr/bin/hive-certs", 0755);    /* the bus's CA and certificates */
	/* hivectl belongs with them once the tree builds it. */
	if (access(tl_bin("hivectl"), X_OK) == 0)
		expect(want, "usr/bin/hivectl", 0755);
	for (size_t i = 0; i < NUNITS; i++) {
		snprintf(rel2, sizeof(rel2), "usr/lib/systemd/system/%s", units[i].file);
		expect(want, rel2, 0644);
	}
	expect(want, "usr/lib/sysusers.d/powerhive.conf", 0644);
	expect(want, "usr/share/powerhive/powerhive.json.example", 0644);
	expect(want, "etc/powerhive/powerhive.json", 0640);
	/* HTTPS: stunnel in front of apid (docs/operations.md, HTTPS). */
	expect(want, "usr/lib/systemd/system/powerhive-https.service", 0644);
	expect(want, "usr/share/powerhive/stunnel.conf.example", 0644);
	expect(want, "etc/powerhive/stunnel.conf", 0644);
	web = walk("web");
	assert_true(json_object_size(web) > 3);
	json_object_foreach(web, rel, v) {
		snprintf(rel2, sizeof(rel2), "usr/share/powerhive/web/%s", rel);
		expect(want, rel2, 0644);
	}

	got = walk(root);
	bad += walk_bad;
	json_object_foreach(want, rel, v) {
		json_t *m = json_object_get(got, rel);

		if (!m) {
			fprintf(stderr, "not installed: %s\n", rel);
			bad++;
		} else if (json_integer_value(m) != json_integer_value(v)) {
			fprintf(stderr, "%s: mode %04o, want %04o\n", rel,
				(unsigned)json_integer_value(m), (unsigned)json_integer_value(v));
			bad++;
		}
	}
	json_object_foreach(got, rel, v)
		if (!json_object_get(want, rel)) {
			fprintf(stderr, "installed but not expected: %s\n", rel);
			bad++;
		}
	/* The content is the tree's: the binaries under test, the dashboard. */
	json_object_foreach(want, rel, v) {
		char src[PATH_MAX];

		if (strcmp(rel, "usr/bin/hive-certs") == 0)
			snprintf(src, sizeof(src), "etc/hive-certs");   /* a script */
		else if (strncmp(rel, "usr/bin/", 8) == 0)
			snprintf(src, sizeof(src), "%s", tl_bin(rel + 8));
		else if (strncmp(rel, "usr/share/powerhive/web/", 24) == 0)
			snprintf(src, sizeof(src), "web/%s", rel + 24);
		else
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, rel);
		if (!same_file(src, path)) {
			fprintf(stderr, "%s differs from %s\n", path, src);
			bad++;
		}
	}
	printf("figure: make install: %zu files (%zu of the dashboard)\n", json_object_size(got),
	       json_object_size(web));
	json_decref(web);
	json_decref(got);
	json_decref(want);
	assert_int_equal(bad, 0);
	ended++;
}

/* ---------------------------------------------------------------- 2. config */

static char *text_with(const char *path, const char *from, const char *to)
{
	char *text = tl_read_file(path), *out, *o;
	size_t nf = strlen(from), nt = strlen(to);

	if (!text)
		return NULL;
	out = malloc(strlen(text) * (nt > nf ? nt : 1) + 1);
	o = out;
	for (const char *p = text; *p;) {
		if (strncmp(p, from, nf) == 0) {
			memcpy(o, to, nt);
			o += nt;
			p += nf;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	free(text);
	return out;
}

static void test_config(void **state)
{
	char cfg[4096], example[4096], cmd[8192];
	char *want, *got, *out = NULL;
	const char *key;
	json_t *c, *subnets, *s;
	json_error_t jerr;
	size_t i;

	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/etc/powerhive/powerhive.json", root);
	snprintf(example, sizeof(example), "%s/usr/share/powerhive/powerhive.json.example", root);
	want = text_with("etc/powerhive.host.json", "/usr/local/", PREFIX "/");
	got = tl_read_file(cfg);
	assert_non_null(want);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	got = tl_read_file(example);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(want);

	snprintf(cmd, sizeof(cmd), "'%s/usr/bin/apid' -n -c '%s' 2>&1", root, cfg);
	assert_int_equal(tl_run(cmd, &out), 0);
	free(out);

	c = json_load_file(cfg, 0, &jerr);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "database"), "path")),
			    "/var/lib/powerhive/powerhive.db");
	s = json_object_get(c, "http");
	assert_string_equal(json_string_value(json_object_get(s, "web_root")),
			    PREFIX "/share/powerhive/web");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "auth"), "token_file")),
			    "/var/lib/powerhive/api-token");
	assert_int_equal(strncmp(json_string_value(json_object_get(s, "addr")), "127.0.0.1:", 10), 0);
	subnets = json_object_get(json_object_get(c, "network"), "subnets");
	assert_true(json_array_size(subnets) > 0);
	json_array_foreach(subnets, i, s)
		assert_int_equal(strncmp(json_string_value(s), "127.", 4), 0);
	json_object_foreach(json_object_get(c, "bus"), key, s)
		if (json_is_string(s))
			assert_int_equal(strncmp(json_string_value(s), "ipc:///run/powerhive/", 21), 0);
	json_decref(c);
	ended++;
}

/* ---------------------------------------------------------------- 3. units */

/* Writes the installed unit to dir with ExecStart naming the DESTDIR binary,
 * and extra appended to its [Service] section's end (before [Install]). */
static void copy_unit(const struct unit *u, const char *dir, const char *extra)
{
	char src[4096], dst[4096], exec[2048];
	char *text, *fixed, *install;

	snprintf(src, sizeof(src), "%s/usr/lib/systemd/system/%s", root, u->file);
	snprintf(dst, sizeof(dst), "%s/%s", dir, u->file);
	snprintf(exec, sizeof(exec), "ExecStart=%s" PREFIX "/bin/", root);
	fixed = text_with(src, "ExecStart=" PREFIX "/bin/", exec);
	assert_non_null(fixed);
	if (extra) {
		assert_non_null(install = strstr(fixed, "\n[Install]"));
		text = NULL;
		assert_true(asprintf(&text, "%.*s\n%s%s", (int)(install - fixed), fixed, extra,
				     install) > 0);
		free(fixed);
		fixed = text;
	}
	assert_int_equal(tl_write_file(dst, fixed), 0);
	free(fixed);
}

static void test_units(void **state)
{
	char path[4096], want[PATH_MAX], dir[4096], cmd[16384];
	char *text, *out = NULL;
	int bad = 0, n;

	(void)state;
	for (size_t i = 0; i < NUNITS; i++) {
		const struct unit *u = &units[i];

		snprintf(path, sizeof(path), "%s/usr/lib/systemd/system/%s", root, u->file);
		assert_non_null(text = tl_read_file(path));
		snprintf(want, sizeof(want),
			 "ExecStart=" PREFIX "/bin/%s -c /etc/powerhive/powerhive.json", u->prog);
		if (!has_line(text, want)) {
			fprintf(stderr, "%s: no line %s\n", u->file, want);
			bad++;
		}
		for (size_t k = 0; k < sizeof(every_unit) / sizeof(every_unit[0]); k++)
			if (!has_line(text, every_unit[k])) {
				fprintf(stderr, "%s: no line %s\n", u->file, every_unit[k]);
				bad++;
			}
		for (size_t k = 0; k < (u->hub ? sizeof(hub_unit) : sizeof(worker_unit)) /
					       sizeof(char *); k++) {
			const char *l = u->hub ? hub_unit[k] : worker_unit[k];

			if (!has_line(text, l)) {
				fprintf(stderr, "%s: no line %s\n", u->file, l);
				bad++;
			}
		}
		if (!u->hub && (strstr(text, "Requires=") || strstr(text, "Wants=powerhive") ||
				strstr(text, "BindsTo="))) {
			fprintf(stderr, "%s pulls apid in: a worker-only host has none\n", u->file);
			bad++;
		}
		free(text);
	}
	assert_int_equal(bad, 0);

	/* verify: nothing to say about any unit, nor an instance of the template. */
	snprintf(dir, sizeof(dir), "%s/verify", suite.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	n = snprintf(cmd, sizeof(cmd), "systemd-analyze verify");
	for (size_t i = 0; i < NUNITS; i++) {
		copy_unit(&units[i], dir, NULL);
		n += snprintf(cmd + n, sizeof(cmd) - n, " '%s/%s'", dir, units[i].file);
	}
	snprintf(cmd + n, sizeof(cmd) - n, " '%s/powerhive-pollerd@3.service' 2>&1", dir);
	if (tl_run(cmd, &out) != 0 || *out) {
		fprintf(stderr, "%s\nsaid:\n%s\n", cmd, out ? out : "");
		bad++;
	}
	free(out);
	assert_int_equal(bad, 0);

	/* The exposure systemd rates each sandbox at. */
	for (size_t i = 0; i < NUNITS; i++) {
		const char *at;
		double exposure = 99;

		snprintf(cmd, sizeof(cmd),
			 "systemd-analyze security --offline=yes --no-pager '%s/%s' 2>&1", dir,
			 units[i].file);
		assert_int_equal(tl_run(cmd, &out), 0);
		if ((at = strstr(out, "Overall exposure level for ")) && (at = strstr(at, ": ")))
			exposure = strtod(at + 2, NULL);
		printf("figure: systemd-analyze security %s: exposure %.1f (0 locked .. 10)\n",
		       units[i].file, exposure);
		if (exposure > EXPOSURE_MAX) {
			fprintf(stderr, "%s: exposure %.1f, over %.1f:\n%s\n", units[i].file,
				exposure, EXPOSURE_MAX, out);
			bad++;
		}
		free(out);
	}
	assert_int_equal(bad, 0);
	ended++;
}

/* powerhive-https.service: stunnel with the installed config, the
 * daemons' sandbox but for the one capability to bind 443. */
static void test_https_unit(void **state)
{
	static const char *const lines[] = {
		"ExecStart=/usr/bin/stunnel4 /etc/powerhive/stunnel.conf",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"InaccessiblePaths=-/var/lib/powerhive",
		"After=network-online.target powerhive-apid.service",
	};
	char path[4096], conf[4096], cmd[8192], *text, *want, *out = NULL;
	const char *at;
	double exposure = 99;
	int bad = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/usr/lib/systemd/system/powerhive-https.service", root);
	assert_non_null(text = tl_read_file(path));
	for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++)
		if (!has_line(text, lines[k])) {
			fprintf(stderr, "powerhive-https.service: no line %s\n", lines[k]);
			bad++;
		}
	for (size_t k = 0; k < sizeof(every_unit) / sizeof(every_unit[0]); k++)
		if (strcmp(every_unit[k], "CapabilityBoundingSet=") != 0 && !has_line(text, every_unit[k])) {
			fprintf(stderr, "powerhive-https.service: no line %s\n", every_unit[k]);
			bad++;
		}
	free(text);
	assert_int_equal(bad, 0);

	/* The installed config: the template, SYSCONFDIR put in (the default). */
	snprintf(conf, sizeof(conf), "%s/etc/powerhive/stunnel.conf", root);
	want = text_with("etc/https/stunnel.conf", "/usr/local/", PREFIX "/");
	assert_non_null(want);
	assert_non_null(text = tl_read_file(conf));
	assert_string_equal(text, want);
	free(text);
	free(want);

	/* stunnel4 is at the unit's path (make deps): verify needs it. */
	if (access("/usr/bin/stunnel4", X_OK) != 0)
		fail_msg("/usr/bin/stunnel4 is missing: apt-get install -y stunnel4 (make deps)");
	snprintf(cmd, sizeof(cmd), "systemd-analyze verify '%s' 2>&1", path);
	if (tl_run(cmd, &out) != 0 || *out)
		fail_msg("%s\nsaid:\n%s", cmd, out ? out : "");
	free(out);
	snprintf(cmd, sizeof(cmd), "systemd-analyze security --offline=yes --no-pager '%s' 2>&1", path);
	assert_int_equal(tl_run(cmd, &out), 0);
	if ((at = strstr(out, "Overall exposure level for ")) && (at = strstr(at, ": ")))
		exposure = strtod(at + 2, NULL);
	printf("figure: systemd-analyze security powerhive-https.service: exposure %.1f (0 locked .. 10)\n",
	       exposure);
	if (exposure > EXPOSURE_MAX)
		fail_msg("powerhive-https.service: exposure %.1f, over %.1f:\n%s", exposure,
			 EXPOSURE_MAX, out);
	free(out);
	ended++;
}

/* A broken copy is reported: the verify above would have seen it. */
static void test_broken_unit_reported(void **state)
{
	char dir[4096], cmd[8192];
	char *out = NULL;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/verify-broken", suite.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	copy_unit(&units[0], dir, "ProtectSystem=strictly\nNoNewPrivilege=yes\n");
	snprintf(cmd, sizeof(cmd), "systemd-analyze verify '%s/%s' 2>&1", dir, units[0].file);
	tl_run(cmd, &out);
	assert_non_null(out);
	if (!strstr(out, "strictly") || !strstr(out, "NoNewPrivilege"))
		fail_msg("systemd-analyze verify did not report the broken copy:\n%s", out);
	free(out);
	ended++;
}

/* ---------------------------------------------------------------- 4. user */

static void test_sysusers(void **state)
{
	char sys[1100], path[1200], cmd[8192];
	char *out = NULL, *passwd;

	(void)state;
	snprintf(sys, sizeof(sys), "%s/sysroot", suite.dir);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s/etc' '%s/usr/lib/sysusers.d' && "
		 "cp '%s/usr/lib/sysusers.d/powerhive.conf' '%s/usr/lib/sysusers.d/' && "
		 "systemd-sysusers --root='%s' 2>&1", sys, sys, root, sys, sys);
	if (tl_run(cmd, &out) != 0)
		fail_msg("%s:\n%s", cmd, out ? out : "");
	free(out);
	snprintf(path, sizeof(path), "%s/etc/passwd", sys);
	assert_non_null(passwd = tl_read_file(path));
	if (!strstr(passwd, "powerhive:x:") ||
	    !strstr(passwd, ":PowerHive daemons:/var/lib/powerhive:/usr/sbin/nologin\n"))
		fail_msg("no powerhive system user in %s:\n%s", path, passwd);
	free(passwd);
	ended++;
}

/* ---------------------------------------------------------------- 5. apid */

static void test_installed_apid_serves(void **state)
{
	char cfg[4096], web[4096], bin[4096], url[128];
	char *saved, *body = NULL, *index;
	const char *hdr[2] = { NULL, NULL };
	json_t *inst, *health;
	json_error_t jerr;
	struct ts_proc *p;
	long status = 0;
	int st;

	(void)state;
	/* The installed config, with the suite's temp paths and free ports. */
	snprintf(cfg, sizeof(cfg), "%s/etc/powerhive/powerhive.json", root);
	snprintf(web, sizeof(web), "%s" PREFIX "/share/powerhive/web", root);
	assert_non_null(inst = json_load_file(cfg, 0, &jerr));
	assert_int_equal(json_object_update_recursive(inst, suite.config), 0);
	json_object_set_new(json_object_get(inst, "http"), "web_root", json_string(web));
	json_decref(suite.config);
	suite.config = inst;
	assert_int_equal(ts_write_config(&suite), 0);

	/* The installed binary: ts_start runs $HIVE_BIN/apid. */
	saved = strdup(hive_bin());
	snprintf(bin, sizeof(bin), "%s" PREFIX "/bin", root);
	setenv("HIVE_BIN", bin, 1);
	p = ts_start(&suite, "apid", NULL, NULL, NULL);
	setenv("HIVE_BIN", saved, 1);
	free(saved);
	assert_non_null(p);
	assert_non_null(ts_token(&suite));
	hdr[0] = suite.auth;

	snprintf(url, sizeof(url), "%s/api/health", suite.api);
	health = tl_http_json("GET", url, hdr, NULL, &status);
	if (status != 200) {
		/* Once in CI: a 404 from whatever answered; say who listens there. */
		char *said = health ? json_dumps(health, 0) : NULL, *who = NULL;

		tl_sh(&who, true, "ss -ltnp | grep ':%s ' || true", strrchr(suite.api, ':') + 1);
		fail_msg("GET %s: %ld %s; listening there:\n%s", url, status, said ? said : "",
			 who ? who : "");
	}
	assert_non_null(health);
	json_decref(health);

	snprintf(url, sizeof(url), "%s/", suite.api);
	assert_int_equal(tl_http("GET", url, NULL, NULL, &body, &status), 0);
	assert_int_equal(status, 200);
	assert_non_null(index = tl_read_file("web/index.html"));
	assert_non_null(body);
	assert_string_equal(body, index);
	free(index);
	free(body);
	st = ts_stop(&suite, "apid", SIGTERM, 15000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ended++;
}

/* ---------------------------------------------------------------- 6, 7 */

static void test_reinstall_keeps_config(void **state)
{
	char cfg[4096], *out = NULL, *text;
	const char *mine = "{ \"log_level\": \"debug\" }\n";

	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/etc/powerhive/powerhive.json", root);
	assert_int_equal(tl_write_file(cfg, mine), 0);
	if (make("install", &out) != 0)
		fail_msg("make install again:\n%s", out ? out : "");
	assert_non_null(strstr(out, "kept"));
	free(out);
	assert_non_null(text = tl_read_file(cfg));
	assert_string_equal(text, mine);
	free(text);
	ended++;
}

static void test_uninstall(void **state)
{
	char *out = NULL;
	const char *rel;
	json_t *left, *v;

	(void)state;
	if (make("uninstall", &out) != 0)
		fail_msg("make uninstall:\n%s", out ? out : "");
	free(out);
	left = walk(root);
	json_object_foreach(left, rel, v)
		if (strcmp(rel, "etc/powerhive/powerhive.json") != 0 &&
		    strcmp(rel, "etc/powerhive/stunnel.conf") != 0)
			fail_msg("left after uninstall: %s", rel);
	assert_non_null(json_object_get(left, "etc/powerhive/powerhive.json"));
	json_decref(left);
	ended++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_https_unit),
		cmocka_unit_test(test_broken_unit_reported),
		cmocka_unit_test(test_sysusers),
		cmocka_unit_test(test_installed_apid_serves),
		cmocka_unit_test(test_reinstall_keeps_config),
		cmocka_unit_test(test_uninstall),
	};

	ntests = sizeof(tests) / sizeof(tests[0]);
	return cmocka_run_group_tests_name("install", tests, setup, teardown);
}
