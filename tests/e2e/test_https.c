/* test_https — HTTPS for the API and the dashboard on a host install: the
 * real apid (plain HTTP on 127.0.0.1) behind the real stunnel (Debian's
 * stunnel4) run from the shipped template etc/https/stunnel.conf, with only
 * its accept, connect, cert and key lines pointed at this test's port and
 * files; every other line (TLS 1.2 floor, options, timeouts) as shipped.
 * The certificates are made here with the openssl command: a CA, and a
 * server certificate it signs for IP:127.0.0.1 and DNS:localhost.
 *
 *   - curl --cacert: GET /api/health answers 200 with the health document;
 *   - a token-protected POST (POST /api/tokens) works over HTTPS, and the
 *     token it made signs a request in; without a token: 401;
 *   - curl without the CA, with another CA, and for a name the certificate
 *     does not carry, fails verification (exit 60): nothing is answered;
 *   - plain HTTP on the HTTPS port gets no HTTP answer;
 *   - the dashboard's index.html loads over HTTPS, byte for byte;
 *   - the template with a missing certificate: stunnel exits non-zero and
 *     nothing listens (never plain HTTP in its place).
 *
 * stunnel4 and openssl are in the Makefile's packages (make deps-test);
 * when either is missing the test fails with the command that installs
 * them, never a silent skip. Loopback only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

#define TEMPLATE "etc/https/stunnel.conf"
#define STUNNEL  "/usr/bin/stunnel4"   /* Debian's stunnel4 */

static struct ts_suite s;
static char tls[1200];          /* <dir>/tls: the CA, the server's key and certificate */
static char ca[1300], other_ca[1300], conf[1300], stunnel_log[1300];
static int https_port;
static pid_t stunnel = -1;
static int started, finished;

/* A CA (its key and self-signed certificate) named cn in dir/<name>.key,
 * .pem. */
static int make_ca(const char *name, const char *cn)
{
	return tl_sh(NULL, false, "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		  "-nodes -days 2 -subj '/CN=%s' -keyout %s.key -out %s.pem "
		  "-addext basicConstraints=critical,CA:TRUE "
		  "-addext keyUsage=critical,keyCertSign,cRLSign", tls, cn, name, name);
}

/* The CA, another CA, and the server's key and certificate (signed by the
 * CA for IP:127.0.0.1 and DNS:localhost); the key 0600 as the docs ask. */
static int make_certs(void)
{
	struct stat st;
	char key[1300];

	snprintf(tls, sizeof(tls), "%s/tls", s.dir);
	if (mkdir(tls, 0700) != 0 || make_ca("ca", "PowerHive test farm CA") != 0 ||
	    make_ca("other-ca", "Some other CA") != 0)
		return -1;
	if (tl_sh(NULL, false, "cd '%s' && (umask 077 && openssl req -newkey ec "
	       "-pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=powerhive -keyout key.pem "
	       "-out server.csr -addext subjectAltName=IP:127.0.0.1,DNS:localhost) && "
	       "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	       "-days 2 -copy_extensions copyall -out cert.pem", tls) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s/key.pem", tls);
	if (stat(key, &st) != 0 || (st.st_mode & 0777) != 0600) {
		fprintf(stderr, "%s: mode %04o, want 0600\n", key, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", tls);
	snprintf(other_ca, sizeof(other_ca), "%s/other-ca.pem", tls);
	return 0;
}

/* The shipped template with its accept, connect, cert and key lines
 * replaced (each must be there exactly once: the template is what is
 * tested), written to path. */
static int write_conf(const char *path, int port, const char *cert_dir)
{
	const char *keys[] = { "accept", "connect", "cert", "key" };
	char vals[4][1300], *text = tl_read_file(TEMPLATE), *save = NULL, *out;
	size_t cap, used = 0;
	int seen[4] = { 0 };

	if (!text) {
		fprintf(stderr, "%s: cannot read it (run from the top of the tree)\n", TEMPLATE);
		return -1;
	}
	snprintf(vals[0], sizeof(vals[0]), "127.0.0.1:%d", port);
	snprintf(vals[1], sizeof(vals[1]), "127.0.0.1:%d", s.http_port);
	snprintf(vals[2], sizeof(vals[2]), "%s/cert.pem", cert_dir);
	snprintf(vals[3], sizeof(vals[3]), "%s/key.pem", cert_dir);
	cap = strlen(text) + 8192;
	out = calloc(1, cap);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		int k;

		for (k = 0; k < 4; k++) {
			size_t n = strlen(keys[k]);
			if (strncmp(l, keys[k], n) == 0 && strncmp(l + n, " = ", 3) == 0)
				break;
		}
		if (k < 4) {
			seen[k]++;
			used += (size_t)snprintf(out + used, cap - used, "%s = %s\n", keys[k], vals[k]);
		} else {
			used += (size_t)snprintf(out + used, cap - used, "%s\n", l);
		}
	}
	free(text);
	for (int k = 0; k < 4; k++)
		if (seen[k] != 1) {
			fprintf(stderr, "%s: %d lines \"%s = \", want 1\n", TEMPLATE, seen[k], keys[k]);
			free(out);
			return -1;
		}
	/* What stays as shipped and matters: TLS 1.2 at least, foreground. */
	if (!strstr(out, "\nsslVersionMin = TLSv1.2\n") || !strstr(out, "\nforeground = yes\n")) {
		fprintf(stderr, "%s: no sslVersionMin = TLSv1.2 or foreground = yes\n", TEMPLATE);
		free(out);
		return -1;
	}
	int rc = tl_write_file(path, out);
	free(out);
	return rc;
}

static pid_t start_stunnel(const char *path, const char *log)
{
	char *argv[] = { STUNNEL, (char *)path, NULL };
	pid_t pid = tl_spawn(log, argv, NULL);

	if (pid > 0)
		tl_live_add(pid);
	return pid;
}

/* curl with args (quoted by the caller) to https://127.0.0.1:<port><path>;
 * -w appends the status on a last line. Its exit status; its output
 * (body, then "\n<status>") in *out. */
static int curl(char **out, const char *args, const char *scheme, const char *path)
{
	return tl_sh(out, true, "curl -sS --max-time 10 %s -w '\\n%%{http_code}' '%s://127.0.0.1:%d%s'",
		  args, scheme, https_port, path);
}

/* The status on curl's last line; the body is cut off before it. */
static long status_of(char *out)
{
	char *nl = out ? strrchr(out, '\n') : NULL;

	if (!nl)
		return -1;
	*nl = '\0';
	return strtol(nl + 1, NULL, 10);
}

static int setup(void **state)
{
	char cwd[1024], *ver = NULL;

	(void)state;
	if (tl_sh(&ver, true, "test -x " STUNNEL " && command -v openssl") != 0) {
		fprintf(stderr, "stunnel4 or openssl is not installed: apt-get install -y stunnel4 openssl "
			"(make deps-test installs them)\n");
		free(ver);
		return -1;
	}
	free(ver);
	if (ts_init(&s, "https") != 0 || !getcwd(cwd, sizeof(cwd)))
		return -1;
	if (ts_merge(&s, "{\"http\": {\"web_root\": \"%s/web\"}}", cwd) != 0 || make_certs() != 0)
		return -1;
	if (!ts_start(&s, "apid", NULL, NULL, NULL) || !ts_token(&s))
		return -1;
	https_port = tl_free_port();
	snprintf(conf, sizeof(conf), "%s/stunnel.conf", s.dir);
	snprintf(stunnel_log, sizeof(stunnel_log), "%s/stunnel.log", s.dir);
	if (write_conf(conf, https_port, tls) != 0)
		return -1;
	stunnel = start_stunnel(conf, stunnel_log);
	if (stunnel <= 0 || tl_wait_port("127.0.0.1", https_port, 10000) != 0) {
		char *log = tl_read_file(stunnel_log);

		fprintf(stderr, "stunnel did not listen on %d:\n%s\n", https_port, log ? log : "");
		free(log);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (stunnel > 0) {
		tl_stop(stunnel, SIGTERM, 5000);
		tl_live_del(stunnel);
	}
	tl_live_kill_all();
	if (finished < started) {
		char *log = tl_read_file(stunnel_log);

		fprintf(stderr, "--- stunnel.log\n%s\n", log ? log : "");
		free(log);
	}
	ts_down(&s, finished < started);
	return 0;
}

#define BEGIN() do { (void)state; started++; } while (0)
#define END()   finished++

/* GET /api/health through TLS, verified against the farm's CA. */
static void test_health(void **state)
{
	char args[3000], *out = NULL;
	json_t *h;

	BEGIN();
	snprintf(args, sizeof(args), "--cacert '%s' -H '%s'", ca, s.auth);
	assert_int_equal(curl(&out, args, "https", "/api/health"), 0);
	assert_int_equal(status_of(out), 200);
	h = json_loads(out, 0, NULL);
	assert_non_null(h);
	assert_non_null(json_object_get(h, "status"));
	json_decref(h);
	free(out);
	/* The same name the certificate carries as DNS:localhost. */
	assert_int_equal(tl_sh(&out, false, "curl -sS --max-time 10 --cacert '%s' -o /dev/null "
			    "-w '%%{http_code} %%{ssl_verify_result}' --resolve localhost:%d:127.0.0.1 "
			    "-H '%s' https://localhost:%d/api/health", ca, https_port, s.auth,
			    https_port), 0);
	assert_string_equal(out, "200 0");
	free(out);
	END();
}

/* A POST that needs the admin token: a named token made over HTTPS, which
 * then signs a request in over HTTPS; no token, 401. */
static void test_token_post(void **state)
{
	char args[3000], auth[400], *out = NULL;
	json_t *made, *who;

	BEGIN();
	snprintf(args, sizeof(args), "--cacert '%s' -H '%s' -H 'Content-Type: application/json' "
		 "-X POST -d '{\"name\":\"https-viewer\",\"role\":\"viewer\"}'", ca, s.auth);
	assert_int_equal(curl(&out, args, "https", "/api/tokens"), 0);
	assert_int_equal(status_of(out), 201);
	made = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(made);
	assert_string_equal(json_string_value(json_object_get(made, "role")), "viewer");
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		 json_string_value(json_object_get(made, "token")));
	json_decref(made);

	snprintf(args, sizeof(args), "--cacert '%s' -H '%s'", ca, auth);
	assert_int_equal(curl(&out, args, "https", "/api/whoami"), 0);
	assert_int_equal(status_of(out), 200);
	who = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(who);
	assert_string_equal(json_string_value(json_object_get(who, "name")), "https-viewer");
	json_decref(who);

	snprintf(args, sizeof(args), "--cacert '%s' -X POST -d '{\"name\":\"x-nobody\",\"role\":"
		 "\"admin\"}'", ca);
	assert_int_equal(curl(&out, args, "https", "/api/tokens"), 0);
	assert_int_equal(status_of(out), 401);
	free(out);
	END();
}

/* Without the farm's CA, with another CA, or for a name not in the
 * certificate: curl refuses the server (60, "SSL certificate problem" or
 * "no alternative certificate subject name"), and no request is made. */
static void test_verification_fails(void **state)
{
	char args[3000], *out = NULL;
	int rc;

	BEGIN();
	rc = curl(&out, "", "https", "/api/health");
	printf("without --cacert: exit %d: %.*s\n", rc, (int)strcspn(out ? out : "", "\n"), out);
	assert_int_equal(rc, 60);
	free(out);

	snprintf(args, sizeof(args), "--cacert '%s'", other_ca);
	rc = curl(&out, args, "https", "/api/health");
	assert_int_equal(rc, 60);
	free(out);

	/* A name the certificate does not carry, still dialled on loopback. */
	assert_int_equal(tl_sh(&out, true, "curl -sS --max-time 10 --cacert '%s' --resolve "
			    "powerhive.invalid:%d:127.0.0.1 https://powerhive.invalid:%d/api/health",
			    ca, https_port, https_port), 60);
	free(out);
	END();
}

/* Plain HTTP to the HTTPS port: stunnel takes it for a broken handshake
 * and closes; no HTTP status comes back. */
static void test_plain_http_refused(void **state)
{
	char *out = NULL;
	int rc;

	BEGIN();
	rc = curl(&out, "", "http", "/api/health");
	printf("plain HTTP on the HTTPS port: exit %d: %s\n", rc, out ? out : "");
	assert_int_not_equal(rc, 0);
	assert_int_equal(status_of(out), 0);    /* "000": no HTTP answer */
	free(out);
	END();
}

/* The dashboard's page, byte for byte the tree's web/index.html. */
static void test_dashboard(void **state)
{
	char args[3000], body[1300], *want = tl_read_file("web/index.html"), *got, *out = NULL;

	BEGIN();
	assert_non_null(want);
	snprintf(body, sizeof(body), "%s/index.html", s.dir);
	snprintf(args, sizeof(args), "--cacert '%s' -o '%s'", ca, body);
	assert_int_equal(curl(&out, args, "https", "/"), 0);
	assert_int_equal(status_of(out), 200);
	free(out);
	got = tl_read_file(body);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(want);
	END();
}

/* The template with a certificate that is not there: stunnel exits with
 * an error, and nothing listens on its port. */
static void test_missing_certificate(void **state)
{
	char missing[1300], path[1300], log[1300], *text;
	int port = tl_free_port(), st;
	pid_t pid;

	BEGIN();
	snprintf(missing, sizeof(missing), "%s/no-such-dir", s.dir);
	snprintf(path, sizeof(path), "%s/stunnel-missing.conf", s.dir);
	snprintf(log, sizeof(log), "%s/stunnel-missing.log", s.dir);
	assert_int_equal(write_conf(path, port, missing), 0);
	pid = start_stunnel(path, log);
	assert_true(pid > 0);
	for (int i = 0; i < 100 && tl_alive(pid); i++)
		tl_sleep_ms(50);
	st = tl_stop(pid, SIGKILL, 1000);
	tl_live_del(pid);
	text = tl_read_file(log);
	printf("stunnel without its certificate: %s\n", text && strstr(text, "Configuration failed")
	       ? "\"Configuration failed\"" : "?");
	assert_true(st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
	assert_non_null(text);
	assert_non_null(strstr(text, "No such file or directory"));
	assert_non_null(strstr(text, "Configuration failed"));
	assert_int_not_equal(tl_wait_port("127.0.0.1", port, 200), 0);
	free(text);
	END();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_token_post),
		cmocka_unit_test(test_verification_fails),
		cmocka_unit_test(test_plain_http_refused),
		cmocka_unit_test(test_dashboard),
		cmocka_unit_test(test_missing_certificate),
	};

	return cmocka_run_group_tests_name("https", tests, setup, teardown);
}
