/* test_compose_up — the Docker deployment for real. A Docker engine
 * (tests/compose/engine.sh: started when none runs, with no bridge
 * network; the debian:12 base made locally, never pulled), the image built
 * from this tree, and the suite started from the shipped docker-compose.yml
 * with tests/compose/docker-compose.test.yml, which puts every service in
 * the host's network on loopback and adds minersim as a service. Checked
 * through apid's API and minersim's ground truth:
 *   - the image runs as powerhive, links all it needs, has no compiler;
 *   - every miner found, keyed and polled (figure: `up` to every miner
 *     polled); no Docker bridge network exists;
 *   - every health check turns healthy;
 *   - --scale pollerd=3: three containers share the status jobs; back to
 *     one, every miner is polled again within the job timeout (the jobs
 *     buffered in a leaving worker are lost and time out);
 *   - apid stopped: the workers' health checks turn unhealthy; apid in a
 *     new container: it keeps its database and token (the volume), the
 *     fleet is polled again, the worker containers untouched turn healthy;
 *   - a write lock held on the database: apid's health check turns
 *     unhealthy, and healthy again once it is released;
 *   - HTTPS: the https service (stunnel in the image, the shipped
 *     etc/https/stunnel-compose.conf with the test's ports) answers
 *     `curl --cacert <ca> https://localhost:<port>/api/health` with 200,
 *     refuses a client without the CA and plain HTTP; without its
 *     certificate the image's powerhive-https exits 1 naming the file;
 *   - docker-compose down leaves nothing running.
 * Figures: each phase's time, the build's, the image's size.
 *
 * docker-compose 1.29 (Debian 12's) refuses a service in the host's
 * network that publishes ports ("host" network_mode is incompatible with
 * port_bindings), and an override cannot take apid's away: the test runs
 * the merged file (`docker-compose config`) less apid's and https's ports,
 * which mean nothing in the host's network. Everything else is the shipped file.
 *
 * Skipped, with one line saying why, where no engine can run, and in a
 * sanitizer pass (POWERHIVE_TEST_SANITIZE, set by the Makefile): the image
 * is built from the sources with its own flags, so the release pass covers
 * it. One run at a time per machine (a lock): the project name is fixed,
 * so that a run killed half-way is cleaned up by the next. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define PROJECT       "powerhive-test"
#define OVERRIDE      "tests/compose/docker-compose.test.yml"
#define ENGINE        "sh tests/compose/engine.sh"
#define IMAGE         "powerhive:local"
#define LOCK_PATH     "/tmp/powerhive-compose-test.lock"
#define SUBNET        "127.86.16.0/26"
#define MINERS        40
/* The test's config: short intervals, so that each phase takes seconds. */
#define STATUS_S      2
#define JOB_TIMEOUT_S 6
#define DISCOVERY_S   5

static const char *const shipped_configs[] = {
	"powerhive.compose-apid.json", "powerhive.compose.json", "powerhive.compose-discoverd.json",
};

static struct ts_suite s;
static char skip_why[512];
static char compose_file[1200];   /* the merged file the suite runs from */
static int lock_fd = -1;
static bool engine_ran;
static bool engine_ours;          /* dockerd started (or taken over) by engine.sh */
static int started, finished;     /* tests begun and run to the end */
static char *volumes_before;      /* `docker volume ls -q` before up */
static int64_t t_setup;
static int https_port;            /* the https service's, on 127.0.0.1 */
static char https_ca[1400];       /* the CA its certificate is signed by */

/* ------------------------------------------------------------ helpers */

#define COMPOSE "docker-compose -p " PROJECT " -f '%s' "

static double secs_since(int64_t t0)
{
	return (double)(hive_mono_ms() - t0) / 1000.0;
}

/* The first line of a command's output, trimmed (malloc'd), or NULL. */
static char *line_of(const char *fmt, const char *arg)
{
	char cmd[1600], *out = NULL;

	snprintf(cmd, sizeof(cmd), fmt, arg);
	if (tl_sh(&out, true, "%s", cmd) != 0) {
		free(out);
		return NULL;
	}
	if (out)
		out[strcspn(out, "\r\n")] = '\0';
	return out;
}

/* The containers of a service, running or not, one id per line
 * (malloc'd). The docker CLI: docker-compose takes a second or more to
 * start, and the waits below ask often. */
static char *containers(const char *service)
{
	char *out = NULL;

	if (tl_sh(&out, false, "docker ps -aq --no-trunc --filter label=com.docker.compose.project="
	       PROJECT " --filter label=com.docker.compose.service=%s", service) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int count_lines(const char *text)
{
	int n = 0;

	for (const char *p = text; p && *p; p++)
		n += *p == '\n';
	return n;
}

/* Whether every container of each service in names (NULL-terminated) has
 * health `want`; at least one container each. */
struct health_want {
	const char *const *names;
	const char *want;
	char last[512];      /* the last mismatch, for the failure message */
};

static bool health_is(void *arg)
{
	struct health_want *w = arg;
	char *out = NULL;
	bool ok = true;

	/* "<service> <health>" of each container of the project */
	if (tl_sh(&out, true, "docker ps -aq --filter label=com.docker.compose.project=" PROJECT
	       " | xargs -r docker inspect -f '{{index .Config.Labels \"com.docker.compose.service\"}}"
	       " {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}'") != 0)
		ok = false;
	for (const char *const *n = w->names; ok && *n; n++) {
		size_t len = strlen(*n);
		int seen = 0;

		for (const char *l = out; l && *l; l += strcspn(l, "\n") + 1) {
			if (strncmp(l, *n, len) != 0 || l[len] != ' ')
				continue;
			seen++;
			if (strncmp(l + len + 1, w->want, strlen(w->want)) != 0 ||
			    l[len + 1 + strlen(w->want)] != '\n') {
				snprintf(w->last, sizeof(w->last), "%.*s", (int)strcspn(l, "\n"), l);
				ok = false;
				break;
			}
		}
		if (ok && !seen) {
			snprintf(w->last, sizeof(w->last), "%s: no container", *n);
			ok = false;
		}
	}
	free(out);
	if (!ok)
		tl_sleep_ms(300);
	return ok;
}

/* Waits until every service named is `want`; the time it took in s, or
 * fails the test with the last state seen and the health logs. */
static double wait_health(const char *const *names, const char *want, int timeout_ms)
{
	struct health_want w = { names, want, "" };
	int64_t t0 = hive_mono_ms();

	if (tl_wait_until(timeout_ms, health_is, &w) != 0) {
		char *ids = containers(names[0]);

		fprintf(stderr, "not every container %s within %d ms: %s\n", want, timeout_ms, w.last);
		if (ids) {
			ids[strcspn(ids, "\n")] = '\0';
			tl_sh(NULL, false, "docker inspect -f '{{json .State.Health}}' %s >&2", ids);
		}
		free(ids);
		fail();
	}
	return secs_since(t0);
}

/* apid's container (malloc'd). `docker exec` to it: docker-compose exec
 * takes a second or more to start on a loaded machine. */
static char *apid_container(void)
{
	char *id = containers("apid");

	assert_non_null(id);
	id[strcspn(id, "\n")] = '\0';
	assert_true(strlen(id) > 0);
	return id;
}

/* The API token apid generated in its volume. */
static void read_token(void)
{
	char *tok = NULL, *id = apid_container();

	assert_int_equal(tl_sh(&tok, false, "docker exec %s cat /var/lib/powerhive/api-token", id), 0);
	free(id);
	tok[strcspn(tok, "\r\n")] = '\0';
	assert_true(strlen(tok) >= 16);
	snprintf(s.token, sizeof(s.token), "%s", tok);
	snprintf(s.auth, sizeof(s.auth), "Authorization: Bearer %s", s.token);
	free(tok);
}

/* Miners apid lists online, keyed, with a status taken at or after
 * since_ms. */
struct polled {
	int64_t since_ms;
	int have;
};

static bool polled_since(void *arg)
{
	struct polled *p = arg;
	json_t *list = ts_api_get(&s, "/api/miners?limit=5000"), *m;
	size_t i;

	p->have = 0;
	json_array_foreach(json_object_get(list, "miners"), i, m) {
		json_t *st = json_object_get(m, "status");

		p->have += json_is_true(json_object_get(m, "online")) &&
			   json_is_true(json_object_get(m, "has_api_key")) && json_is_object(st) &&
			   json_integer_value(json_object_get(st, "ts")) >= p->since_ms;
	}
	json_decref(list);
	if (p->have < MINERS)
		tl_sleep_ms(200);
	return p->have == MINERS;
}

/* Waits until every miner has a status taken at or after since_ms; the
 * seconds since since_ms, or fails. */
static double wait_polled_since(int64_t since_ms, int timeout_ms, const char *what)
{
	struct polled p = { since_ms, 0 };

	if (tl_wait_until(timeout_ms, polled_since, &p) != 0) {
		fprintf(stderr, "%s: %d of %d miners polled within %d ms\n", what, p.have, MINERS,
			timeout_ms);
		fail();
	}
	return (double)(hive_wall_ms() - since_ms) / 1000.0;
}

static json_t *health(void)
{
	json_t *h = ts_api_get(&s, "/api/health");

	assert_non_null(h);
	return h;
}

static bool apid_answers(void *arg)
{
	json_t *h = ts_api_get(&s, "/api/health");

	(void)arg;
	json_decref(h);
	if (!h)
		tl_sleep_ms(200);
	return h != NULL;
}

/* ------------------------------------------------------------ setup */

static bool sanitizer_pass(void)
{
	const char *san = getenv("POWERHIVE_TEST_SANITIZE");

#if defined(__SANITIZE_ADDRESS__)
	if (!san || !*san)
		san = "address";
#endif
	if (!san || !*san)
		return false;
	snprintf(skip_why, sizeof(skip_why),
		 "SANITIZE=%s pass: the image is built from the sources with its own flags, "
		 "so the release pass (make test) runs this test", san);
	return true;
}

/* One run at a time on a machine: waits up to 10 min for another. */
static int take_lock(void)
{
	int64_t t0 = hive_mono_ms();

	lock_fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (lock_fd < 0) {
		fprintf(stderr, "%s: %s\n", LOCK_PATH, strerror(errno));
		return -1;
	}
	while (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (hive_mono_ms() - t0 > 600000) {
			snprintf(skip_why, sizeof(skip_why),
				 "another compose test held %s for 10 min", LOCK_PATH);
			return -1;
		}
		tl_sleep_ms(1000);
	}
	if (hive_mono_ms() - t0 > 1000)
		printf("compose: waited %.0f s for another compose test to end\n", secs_since(t0));
	return 0;
}

/* engine.sh <step>: its lines on stdout (figures among them). 0, 3 (no
 * engine: skip_why set) or another failure. */
static int engine(const char *step)
{
	char *out = NULL;
	int rc = tl_sh(&out, true, ENGINE " %s", step);

	printf("%s", out ? out : "");
	if (out && (strstr(out, " started (pid ") || strstr(out, "taken over")))
		engine_ours = true;
	if (rc == 3) {
		const char *why = out ? strstr(out, "engine: cannot") : NULL;

		snprintf(skip_why, sizeof(skip_why), "%.*s", why ? (int)strcspn(why, "\n") : 30,
			 why ? why : "engine: cannot run here");
	} else if (rc != 0) {
		fprintf(stderr, "engine.sh %s failed (exit %d)\n", step, rc);
	}
	free(out);
	return rc;
}

/* Containers and volumes of the project a killed run left behind. */
static void remove_leftovers(void)
{
	char *out = NULL;

	tl_sh(&out, true, "docker ps -aq --filter label=com.docker.compose.project=" PROJECT);
	if (out && *out) {
		printf("compose: removing the containers an earlier run left\n");
		tl_sh(NULL, false, "docker ps -aq --filter label=com.docker.compose.project=" PROJECT
		   " | xargs -r docker rm -f");
	}
	free(out);
	tl_sh(NULL, true, "docker volume ls -q --filter label=com.docker.compose.project=" PROJECT
	   " | xargs -r docker volume rm");
}

/* The shipped configs with the test's addresses: every bus endpoint and the
 * HTTP address on 127.0.0.1 free ports (apid listens there, the others
 * dial there), the simulated subnet and port, short intervals. Database,
 * token file and web root stay as shipped. */
static int write_configs(const char *etc)
{
	char addr[64], path[1400], src[256];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.http_port);
	for (size_t i = 0; i < sizeof(shipped_configs) / sizeof(shipped_configs[0]); i++) {
		json_error_t e;
		json_t *c, *bus;

		snprintf(src, sizeof(src), "etc/%s", shipped_configs[i]);
		if (!(c = json_load_file(src, 0, &e))) {
			fprintf(stderr, "%s: %s\n", src, e.text);
			return -1;
		}
		bus = json_object_get(c, "bus");
		for (size_t k = 0; k < ts_nbus; k++)
			json_object_set_new(bus, ts_bus_keys[k], json_string(ts_bus(&s, ts_bus_keys[k])));
		json_object_set_new(json_object_get(c, "http"), "addr", json_string(addr));
		json_object_set_new(json_object_get(c, "network"), "subnets", json_pack("[s]", SUBNET));
		json_object_set_new(json_object_get(c, "network"), "port", json_integer(s.miner_port));
		json_object_update(json_object_get(c, "intervals"),
				   json_pack("{s:i,s:i,s:i,s:i}", "discovery_seconds", DISCOVERY_S,
					     "status_seconds", STATUS_S, "telemetry_seconds", 5,
					     "heartbeat_seconds", 1));
		json_object_set_new(json_object_get(c, "scheduler"), "job_timeout_seconds",
				    json_integer(JOB_TIMEOUT_S));
		/* apid healthy again 8 s after the last refused write. */
		if (!json_is_object(json_object_get(c, "health")))
			json_object_set_new(c, "health", json_object());
		json_object_set_new(json_object_get(c, "health"), "failing_seconds",
				    json_integer(8));
		snprintf(path, sizeof(path), "%s/%s", etc, shipped_configs[i]);
		/* One key per line: the health check reads the file so. */
		if (json_dump_file(c, path, JSON_INDENT(2)) != 0 || chmod(path, 0644) != 0) {
			json_decref(c);
			return -1;
		}
		json_decref(c);
	}
	return 0;
}

/* The https service's inputs: etc/https/stunnel-compose.conf as shipped
 * but for accept (127.0.0.1:<https_port>) and connect (apid's HTTP on
 * 127.0.0.1), and in <dir>/https (POWERHIVE_HTTPS_DIR) a certificate for
 * localhost and 127.0.0.1 signed by a CA made here, the key owned by the
 * image's user (10001) with mode 0600, as docs/operations.md says. */
static int write_https(const char *etc)
{
	char dir[1300], path[1400], *text, *out = NULL, *save = NULL;
	size_t cap, used = 0;
	int seen = 0;

	https_port = tl_free_port();
	if (!(text = tl_read_file("etc/https/stunnel-compose.conf")))
		return -1;
	cap = strlen(text) + 256;
	out = calloc(1, cap);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "accept = ", 9) == 0) {
			used += (size_t)snprintf(out + used, cap - used, "accept = 127.0.0.1:%d\n", https_port);
			seen++;
		} else if (strncmp(l, "connect = ", 10) == 0) {
			used += (size_t)snprintf(out + used, cap - used, "connect = 127.0.0.1:%d\n",
						 s.http_port);
			seen++;
		} else {
			used += (size_t)snprintf(out + used, cap - used, "%s\n", l);
		}
	}
	free(text);
	snprintf(dir, sizeof(dir), "%s/https", etc);
	snprintf(path, sizeof(path), "%s/stunnel-compose.conf", dir);
	if (seen != 2 || mkdir(dir, 0755) != 0 || tl_write_file(path, out) != 0 ||
	    chmod(path, 0644) != 0) {
		fprintf(stderr, "etc/https/stunnel-compose.conf: want one accept and one connect line\n");
		free(out);
		return -1;
	}
	free(out);
	snprintf(dir, sizeof(dir), "%s/https", s.dir);
	snprintf(https_ca, sizeof(https_ca), "%s/ca.pem", dir);
	if (mkdir(dir, 0755) != 0 ||
	    tl_sh(NULL, false, "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	       "-nodes -days 2 -subj '/CN=PowerHive compose test CA' -keyout ca.key -out ca.pem "
	       "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && "
	       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost "
	       "-keyout key.pem -out server.csr -addext subjectAltName=DNS:localhost,IP:127.0.0.1 && "
	       "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	       "-copy_extensions copyall -out cert.pem && chmod 0600 key.pem && chmod 0644 cert.pem && "
	       "chown 10001:10001 key.pem", dir) != 0)
		return -1;
	setenv("POWERHIVE_HTTPS_DIR", dir, 1);
	return 0;
}

/* The merged compose file, less apid's published ports (see the top). */
static int render(void)
{
	char *text = NULL, *svc, *end, *ports, *p, err[1300], cmd[1500];
	int rc = -1;

	/* stdout alone: a warning on stderr is no YAML. */
	snprintf(err, sizeof(err), "%s/render.err", s.dir);
	snprintf(cmd, sizeof(cmd), "docker-compose -f docker-compose.yml -f " OVERRIDE
		 " config 2>'%s'", err);
	if (tl_run(cmd, &text) != 0) {
		char *why = tl_read_file(err);

		fprintf(stderr, "docker-compose config refused the file and the override:\n%s\n",
			why ? why : "");
		free(why);
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		const char *head = k == 0 ? "\n  apid:\n" : "\n  https:\n";

		svc = strstr(text, head);
		if (!svc)
			goto out;
		for (end = svc + strlen(head) - 1; *end && !(end[0] == '\n' && end[1] == ' ' &&
			end[2] == ' ' && end[3] != ' ' && end[3] != '-'); end++)
			;
		ports = strstr(svc, "\n    ports:\n");
		if (!ports || ports > end) {
			fprintf(stderr, "render: %.*s publishes no ports: the workaround can go\n",
				(int)strlen(head) - 4, head + 3);
			goto out;
		}
		/* The list: lines "    - ..." and their continuations "      ...". */
		for (p = ports + 12; strncmp(p, "    - ", 6) == 0 || strncmp(p, "      ", 6) == 0;)
			p += strcspn(p, "\n") + 1;
		memmove(ports + 1, p, strlen(p) + 1);
	}
	rc = tl_write_file(compose_file, text);
out:
	free(text);
	return rc;
}

/* The build, with the shipped file and the override (host network for the
 * RUN steps); the image replaced goes, its layers stay as cache. */
static int build(void)
{
	char *before = line_of("docker image inspect -f '{{.Id}}' %s", IMAGE), *after, *size;
	int64_t t0 = hive_mono_ms();

	if (tl_sh(NULL, false, "docker-compose -p " PROJECT " -f docker-compose.yml -f " OVERRIDE
	       " build --force-rm apid") != 0) {
		free(before);
		return -1;
	}
	printf("figure: compose image build s=%.1f (%s cache)\n", secs_since(t0),
	       before ? "warm" : "cold");
	after = line_of("docker image inspect -f '{{.Id}}' %s", IMAGE);
	size = line_of("docker image inspect -f '{{.Size}}' %s", IMAGE);
	printf("figure: compose image size MB=%.0f (%s)\n", size ? atof(size) / 1e6 : -1.0, IMAGE);
	if (before && after && strcmp(before, after) != 0)
		tl_sh(NULL, true, "docker rmi %s", before);
	free(before);
	free(after);
	free(size);
	return after ? 0 : -1;
}

static int setup(void **state)
{
	char etc[1200], path[1400], port[16], admin[64], miners[16];

	(void)state;
	t_setup = hive_mono_ms();
	if (sanitizer_pass())
		goto skip;
	if (take_lock() != 0)
		goto skip_or_fail;
	if (tl_sh(NULL, true, "command -v docker-compose >/dev/null") != 0) {
		fprintf(stderr, "docker-compose is missing (the Makefile's test packages have it)\n");
		return -1;
	}
	engine_ran = true;
	if (engine("start") != 0 || engine("base") != 0)
		goto skip_or_fail;
	remove_leftovers();
	if (ts_init(&s, "compose") != 0)
		return -1;
	/* The containers' user (uid 10001) reads the configs. */
	snprintf(etc, sizeof(etc), "%s/etc", s.dir);
	if (chmod(s.dir, 0755) != 0 || mkdir(etc, 0755) != 0 || write_configs(etc) != 0 ||
	    write_https(etc) != 0)
		return -1;
	snprintf(compose_file, sizeof(compose_file), "%s/docker-compose.yml", s.dir);
	snprintf(path, sizeof(path), "%s", tl_bin("minersim"));
	if (path[0] != '/') {
		char cwd[1024];

		if (!getcwd(cwd, sizeof(cwd)))
			return -1;
		snprintf(path, sizeof(path), "%s/%s", cwd, tl_bin("minersim"));
	}
	snprintf(port, sizeof(port), "%d", s.miner_port);
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", s.admin_port);
	setenv("POWERHIVE_TEST_ETC", etc, 1);
	setenv("POWERHIVE_TEST_MINERSIM", path, 1);
	setenv("POWERHIVE_TEST_SIM_SUBNET", SUBNET, 1);
	snprintf(miners, sizeof(miners), "%d", MINERS);
	setenv("POWERHIVE_TEST_SIM_MINERS", miners, 1);
	setenv("POWERHIVE_TEST_SIM_PORT", port, 1);
	setenv("POWERHIVE_TEST_SIM_ADMIN", admin, 1);
	unsetenv("POWERHIVE_API_TOKEN");     /* apid generates one in its volume */
	if (render() != 0 || build() != 0)
		return -1;
	printf("figure: compose setup (engine, base image, build) s=%.1f\n", secs_since(t_setup));
	return 0;

skip_or_fail:
	if (!skip_why[0])
		return -1;
skip:
	printf("skip: test_compose_up: %s\n", skip_why);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (compose_file[0]) {
		if (finished < started) {
			fprintf(stderr, "--- the suite's containers and logs\n");
			tl_sh(NULL, false, COMPOSE "ps >&2", compose_file);
			tl_sh(NULL, false, COMPOSE "logs --no-color --tail=30 >&2", compose_file);
		}
		tl_sh(NULL, false, COMPOSE "down -v --remove-orphans", compose_file);
	}
	tl_live_kill_all();             /* the lock holder, if a test stopped half-way */
	if (engine_ran)
		engine("stop");
	if (lock_fd >= 0)
		close(lock_fd);
	if (s.dir)
		ts_down(&s, finished < started);
	free(volumes_before);
	if (!skip_why[0])
		printf("figure: compose test total s=%.1f\n", secs_since(t_setup));
	return 0;
}

static int64_t t_test;

#define BEGIN()                          \
	do {                             \
		(void)state;             \
		if (skip_why[0])         \
			skip();          \
		started++;               \
		t_test = hive_mono_ms(); \
	} while (0)
#define END()                                                                     \
	do {                                                                      \
		finished++;                                                       \
		printf("compose: %s took %.1f s\n", __func__, secs_since(t_test)); \
	} while (0)

/* ------------------------------------------------------------ tests */

/* What runs: the user, the libraries, nothing to compile with. */
static void test_image(void **state)
{
	char *out = NULL;

	BEGIN();
	out = line_of("docker image inspect -f '{{.Config.User}}' %s", IMAGE);
	assert_non_null(out);
	assert_string_equal(out, "powerhive");
	free(out);
	assert_int_equal(tl_sh(&out, false, "docker run --rm --network none --entrypoint sh " IMAGE
			    " -c 'id -u; ldd /usr/local/bin/* 2>&1 | grep \"not found\";"
			    " for c in cc gcc make ld as cpp; do command -v $c; done; echo end'"), 0);
	if (strcmp(out, "10001\nend\n") != 0) {
		fprintf(stderr, "the image: a user other than 10001, a missing library or a "
			"compiler:\n%s", out);
		fail();
	}
	free(out);
	/* The https service without its certificate: exit 1 naming the file,
	 * stunnel never started. */
	assert_int_equal(tl_sh(&out, true, "docker run --rm --network none -v '%s:/etc/powerhive:ro' "
			    IMAGE " powerhive-https /etc/powerhive/https/stunnel-compose.conf",
			    getenv("POWERHIVE_TEST_ETC")), 1);
	if (!strstr(out, "powerhive-https: /etc/powerhive-https/cert.pem is missing")) {
		fprintf(stderr, "powerhive-https without a certificate said:\n%s\n", out);
		fail();
	}
	free(out);
	END();
}

/* `up`: every miner found, keyed and polled; the ground truth agrees. */
static void test_up_polled(void **state)
{
	json_t *list, *sim, *m;
	char *out = NULL;
	int64_t t0, w0;
	size_t i;

	BEGIN();
	assert_int_equal(tl_sh(&volumes_before, false, "docker volume ls -q | sort"), 0);
	assert_int_equal(tl_sh(NULL, false, COMPOSE "up -d minersim", compose_file), 0);
	assert_int_equal(tl_wait_port("127.0.0.1", s.admin_port, 20000), 0);
	t0 = hive_mono_ms();
	w0 = hive_wall_ms();
	assert_int_equal(tl_sh(NULL, false, COMPOSE "up -d --no-build --scale pollerd=1", compose_file), 0);
	printf("figure: compose up (containers started) s=%.1f\n", secs_since(t0));
	assert_int_equal(tl_wait_port("127.0.0.1", s.http_port, 30000), 0);
	read_token();
	wait_polled_since(w0, 60000, "after up");
	printf("figure: compose up to every miner polled s=%.1f (%d miners, status every %d s, "
	       "discovery every %d s)\n", secs_since(t0), MINERS, STATUS_S, DISCOVERY_S);

	/* minersim's truth: the same miners, each keyed once, each asked. */
	sim = ts_sim_get(&s, s.admin, "/sim/miners");
	list = ts_api_get(&s, "/api/miners?limit=5000");
	assert_non_null(sim);
	assert_non_null(list);
	assert_int_equal(json_array_size(sim), MINERS);
	assert_int_equal(json_array_size(json_object_get(list, "miners")), MINERS);
	json_array_foreach(sim, i, m) {
		const char *mac = json_string_value(json_object_get(m, "mac"));
		json_t *a;
		size_t k;
		bool found = false;

		json_array_foreach(json_object_get(list, "miners"), k, a)
			found |= strcasecmp(json_string_value(json_object_get(a, "id")), mac) == 0;
		if (!found || json_integer_value(json_object_get(m, "api_keys")) != 1 ||
		    json_integer_value(json_object_get(m, "requests")) < 1) {
			fprintf(stderr, "miner %s: listed=%d api_keys=%lld requests=%lld\n", mac, found,
				json_integer_value(json_object_get(m, "api_keys")),
				json_integer_value(json_object_get(m, "requests")));
			fail();
		}
	}
	json_decref(sim);
	json_decref(list);

	/* The suite made no network, and the engine engine.sh started has no
	 * bridge (one that ran before is left as it is). */
	assert_int_equal(tl_sh(&out, false, "docker network ls -q --filter label=com.docker.compose."
			    "project=" PROJECT "; %s", engine_ours ? "docker network ls -q --filter "
			    "driver=bridge" : "true"), 0);
	assert_string_equal(out, "");
	free(out);
	END();
}

static const char *const all_services[] = { "apid", "discoverd", "pollerd", "telemetryd", "https",
						    NULL };
static const char *const workers[] = { "discoverd", "pollerd", "telemetryd", NULL };
static const char *const apid_only[] = { "apid", NULL };

static void test_healthy(void **state)
{
	BEGIN();
	printf("compose: every health check healthy after %.1f s more\n",
	       wait_health(all_services, "healthy", 60000));
	END();
}

/* HTTPS through the https service: verified with the test's CA, by the
 * name localhost; refused without it; plain HTTP gets no answer. */
static void test_https(void **state)
{
	char *out = NULL;

	BEGIN();
	assert_int_equal(tl_wait_port("127.0.0.1", https_port, 20000), 0);
	assert_int_equal(tl_sh(&out, false, "curl -sS --max-time 10 --cacert '%s' -H '%s' -o /dev/null "
			    "-w '%%{http_code}' https://localhost:%d/api/health", https_ca, s.auth,
			    https_port), 0);
	assert_string_equal(out, "200");
	free(out);
	assert_int_equal(tl_sh(&out, true, "curl -sS --max-time 10 -o /dev/null https://localhost:%d/"
			    "api/health", https_port), 60);
	free(out);
	assert_int_not_equal(tl_sh(&out, true, "curl -sS --max-time 10 -o /dev/null -w '%%{http_code}' "
				"http://127.0.0.1:%d/api/health", https_port), 0);
	assert_non_null(strstr(out, "000"));
	free(out);
	printf("compose: https://localhost:%d/api/health 200 with the CA; refused without it "
	       "and in plain HTTP\n", https_port);
	END();
}

/* jobs_done of each pollerd apid hears from, by pid (the host's pid: the
 * workers run in the host's PID namespace). */
static int pollers(json_t *h, long long pids[], long long done[], int max)
{
	json_t *d;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		if (strcmp(json_string_value(json_object_get(d, "daemon")), "pollerd") != 0 ||
		    json_integer_value(json_object_get(d, "heartbeat_age_ms")) > 3000 || n == max)
			continue;
		pids[n] = json_integer_value(json_object_get(d, "pid"));
		done[n] = json_integer_value(json_object_get(json_object_get(d, "counters"),
							     "jobs_done"));
		n++;
	}
	return n;
}

static long long done_of(json_t *h, long long pid)
{
	long long pids[16], done[16];
	int n = pollers(h, pids, done, 16);

	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return done[i];
	return -1;
}

/* The container whose main process is pid (in the host's PID namespace
 * docker runs no init: the daemon is the container's process) or pid's
 * parent. */
static char *container_of(long long pid, char *ids)
{
	char path[64], *st, *pp;
	long long ppid = -1;

	snprintf(path, sizeof(path), "/proc/%lld/status", pid);
	if ((st = tl_read_file(path)) && (pp = strstr(st, "\nPPid:")))
		ppid = atoll(pp + 6);
	free(st);
	for (char *id = ids; id && *id; id += strcspn(id, "\n") + 1) {
		char one[80], *main_pid;
		long long mpid;

		snprintf(one, sizeof(one), "%.*s", (int)strcspn(id, "\n"), id);
		main_pid = line_of("docker inspect -f '{{.State.Pid}}' %s", one);
		mpid = main_pid ? atoll(main_pid) : -2;
		free(main_pid);
		if (mpid == pid || mpid == ppid)
			return strdup(one);
	}
	return NULL;
}

struct peers_want {
	int n;
	int have;
};

static bool status_workers(void *arg)
{
	struct peers_want *w = arg;
	json_t *h = ts_api_get(&s, "/api/health");
	long long pids[16], done[16];

	w->have = (int)json_integer_value(json_object_get(json_object_get(h, "workers"), "status"));
	if (w->have == w->n && pollers(h, pids, done, 16) != w->n)
		w->have = -1;            /* connected, not every one heard from yet */
	json_decref(h);
	if (w->have != w->n)
		tl_sleep_ms(200);
	return w->have == w->n;
}

static void wait_status_workers(int n)
{
	struct peers_want w = { n, 0 };

	if (tl_wait_until(30000, status_workers, &w) != 0) {
		fprintf(stderr, "%d status workers connected and beating, want %d\n", w.have, n);
		fail();
	}
}

/* --scale pollerd=3 shares the jobs among three containers; back to one,
 * every miner is polled again within the job timeout. */
static void test_scale(void **state)
{
	long long pids[16], done0[16], total = 0, share[3];
	char *ids, *owner[3] = { NULL, NULL, NULL };
	json_t *h;
	int n, timed_out0;
	int64_t t0, w0;
	double again;

	BEGIN();
	t0 = hive_mono_ms();
	assert_int_equal(tl_sh(NULL, false, COMPOSE "up -d --no-build --no-recreate --scale pollerd=3",
			    compose_file), 0);
	ids = containers("pollerd");
	assert_non_null(ids);
	assert_int_equal(count_lines(ids), 3);
	wait_status_workers(3);
	printf("figure: compose scale pollerd 1 -> 3, all three connected s=%.1f\n", secs_since(t0));

	h = health();
	n = pollers(h, pids, done0, 16);
	json_decref(h);
	assert_int_equal(n, 3);
	tl_sleep_ms(4 * STATUS_S * 1000);
	h = health();
	for (int i = 0; i < 3; i++) {
		share[i] = done_of(h, pids[i]) - done0[i];
		total += share[i];
	}
	json_decref(h);
	for (int i = 0; i < 3; i++) {
		owner[i] = container_of(pids[i], ids);
		printf("compose: pollerd pid %lld in container %.12s: %lld of %lld status jobs\n",
		       pids[i], owner[i] ? owner[i] : "?", share[i], total);
		assert_non_null(owner[i]);
		/* Each takes a real share (round robin gives a third each). */
		assert_true(share[i] * 10 >= total);
	}
	assert_true(total >= MINERS);
	assert_string_not_equal(owner[0], owner[1]);
	assert_string_not_equal(owner[0], owner[2]);
	assert_string_not_equal(owner[1], owner[2]);
	for (int i = 0; i < 3; i++)
		free(owner[i]);
	free(ids);

	/* Back to one: the jobs buffered in the two leaving workers are lost
	 * with them and time out; the scheduler sends them again. */
	h = health();
	timed_out0 = (int)json_integer_value(json_object_get(
		json_object_get(json_object_get(h, "scheduler"), "status"), "timed_out"));
	json_decref(h);
	t0 = hive_mono_ms();
	assert_int_equal(tl_sh(NULL, false, COMPOSE "up -d --no-build --no-recreate --scale pollerd=1",
			    compose_file), 0);
	w0 = hive_wall_ms();
	ids = containers("pollerd");
	assert_non_null(ids);
	assert_int_equal(count_lines(ids), 1);
	free(ids);
	printf("figure: compose scale pollerd 3 -> 1 s=%.1f\n", secs_since(t0));
	again = wait_polled_since(w0, (JOB_TIMEOUT_S + STATUS_S + 10) * 1000, "after scaling down");
	h = health();
	printf("figure: compose every miner polled again s=%.1f after the scale down "
	       "(job timeout %d s; status jobs timed out meanwhile: %lld)\n", again, JOB_TIMEOUT_S,
	       json_integer_value(json_object_get(json_object_get(json_object_get(h, "scheduler"),
								  "status"), "timed_out")) -
	       timed_out0);
	json_decref(h);
	/* Within the job timeout, plus one status interval and 2 s of slack
	 * for a loaded machine. */
	assert_true(again <= JOB_TIMEOUT_S + STATUS_S + 2);
	wait_status_workers(1);
	END();
}

/* "<id> <StartedAt> <RestartCount>" of each worker container. */
static char *worker_states(void)
{
	char *all = NULL, *out = NULL;

	for (const char *const *w = workers; *w; w++) {
		char *ids = containers(*w), *line = NULL;

		assert_non_null(ids);
		for (char *p = ids; (p = strchr(p, '\n')) != NULL;)
			*p = ' ';
		assert_int_equal(tl_sh(&line, false, "docker inspect -f '{{.Id}} {{.State.StartedAt}} "
				    "{{.RestartCount}}' %s", ids), 0);
		if (asprintf(&out, "%s%s", all ? all : "", line) < 0)
			fail();
		free(all);
		all = out;
		free(line);
		free(ids);
	}
	return all;
}

/* The first_seen of every miner, in id order: the database's own. */
static char *first_seen_all(void)
{
	json_t *list = ts_api_get(&s, "/api/miners?limit=5000&sort=mac"), *m;
	char *all = NULL, *out;
	size_t i;

	assert_non_null(list);
	json_array_foreach(json_object_get(list, "miners"), i, m) {
		if (asprintf(&out, "%s%s=%lld\n", all ? all : "",
			     json_string_value(json_object_get(m, "id")),
			     json_integer_value(json_object_get(m, "first_seen"))) < 0)
			fail();
		free(all);
		all = out;
	}
	json_decref(list);
	return all;
}

/* apid stopped: the workers turn unhealthy. apid in a new container: same
 * database and token, every miner polled again, the workers untouched and
 * healthy again. */
static void test_apid_restart(void **state)
{
	char *before, *after, *seen0, *seen1, *apid0, *apid1, token0[256];
	int64_t t0, w0;
	double again;

	BEGIN();
	before = worker_states();
	seen0 = first_seen_all();
	apid0 = apid_container();
	snprintf(token0, sizeof(token0), "%s", s.token);

	t0 = hive_mono_ms();
	assert_int_equal(tl_sh(NULL, false, COMPOSE "stop apid", compose_file), 0);
	printf("figure: compose stop apid s=%.1f\n", secs_since(t0));
	printf("compose: apid gone, the workers unhealthy after %.1f s\n",
	       wait_health(workers, "unhealthy", 40000));

	/* A new container, as an upgrade makes: only the volume carries the
	 * database over (a restarted container keeps its own files anyway). */
	t0 = hive_mono_ms();
	w0 = hive_wall_ms();
	assert_int_equal(tl_sh(NULL, false, COMPOSE "up -d --no-build --no-deps --force-recreate apid",
			    compose_file), 0);
	apid1 = apid_container();
	assert_string_not_equal(apid1, apid0);
	assert_int_equal(tl_wait_until(30000, apid_answers, NULL), 0);
	read_token();
	assert_string_equal(s.token, token0);       /* the token file is in the volume */
	seen1 = first_seen_all();
	assert_string_equal(seen1, seen0);          /* so is the database */
	again = wait_polled_since(w0, 60000, "after apid's restart");
	printf("figure: compose apid recreated, every miner polled again s=%.1f\n", again);
	wait_health(all_services, "healthy", 40000);
	printf("compose: every health check healthy again %.1f s after apid's start\n",
	       secs_since(t0));
	after = worker_states();
	assert_string_equal(after, before);         /* same containers, never restarted */
	free(apid0);
	free(apid1);
	free(before);
	free(after);
	free(seen0);
	free(seen1);
	END();
}

/* A write lock held on apid's database (sqlite3 in the container, the
 * image's backup tool): apid's writes fail, GET /api/live answers 503 and
 * the health check turns unhealthy; released, healthy again. */
static void test_apid_database_unwritable(void **state)
{
	static const char script[] =
		"rm -f /tmp/test-unlock\n"
		"(echo '.timeout 20000'; echo 'BEGIN IMMEDIATE;'; echo 'SELECT 1;'\n"
		" i=0; while [ ! -e /tmp/test-unlock ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
		" echo 'ROLLBACK;') | sqlite3 /var/lib/powerhive/powerhive.db\n";
	char log[1300], path[1300], cmd[3000], *out = NULL, *id;
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	pid_t holder;
	double t;

	BEGIN();
	id = apid_container();
	snprintf(log, sizeof(log), "%s/lock-holder.log", s.dir);
	snprintf(path, sizeof(path), "%s/lock-holder.sh", s.dir);
	assert_int_equal(tl_write_file(path, script), 0);
	snprintf(cmd, sizeof(cmd), "exec docker exec -i %s sh <'%s'", id, path);
	holder = tl_spawn(log, argv, NULL);
	assert_true(holder > 0);
	tl_live_add(holder);
	t = wait_health(apid_only, "unhealthy", 30000);
	assert_int_equal(tl_sh(&out, false, "docker inspect -f '{{range .State.Health.Log}}{{.Output}}"
			    "{{end}}' %s", id), 0);
	/* the check's line: /api/live answered 503, "failing" */
	assert_non_null(strstr(out, "/api/live"));
	assert_non_null(strstr(out, "\"failing\""));
	assert_non_null(strstr(out, "HTTP 503"));
	free(out);
	printf("compose: database locked, apid unhealthy after %.1f s\n", t);

	assert_int_equal(tl_sh(NULL, false, "docker exec %s touch /tmp/test-unlock", id), 0);
	assert_int_equal(WEXITSTATUS(tl_stop(holder, 0, 15000)), 0);
	tl_live_del(holder);
	printf("compose: lock released, apid healthy again after %.1f s\n",
	       wait_health(apid_only, "healthy", 40000));
	free(id);
	END();
}

/* down: no container, no process, no port of the suite is left. */
static void test_down(void **state)
{
	char *out = NULL;
	int64_t t0;

	BEGIN();
	t0 = hive_mono_ms();
	assert_int_equal(tl_sh(NULL, false, COMPOSE "down", compose_file), 0);
	printf("figure: compose down s=%.1f\n", secs_since(t0));
	assert_int_equal(tl_sh(&out, false, "docker ps -aq --filter label=com.docker.compose.project="
			    PROJECT), 0);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(tl_sh(&out, false, "docker network ls -q --filter label=com.docker.compose."
			    "project=" PROJECT), 0);
	assert_string_equal(out, "");
	free(out);
	assert_int_not_equal(tl_wait_port("127.0.0.1", s.http_port, 200), 0);
	assert_int_not_equal(tl_wait_port("127.0.0.1", s.admin_port, 200), 0);
	assert_int_not_equal(tl_wait_port("127.0.0.1", https_port, 200), 0);
	/* The volume outlives down (the database); down -v takes it. */
	assert_int_equal(tl_sh(&out, false, "docker volume ls -q --filter label=com.docker.compose."
			    "project=" PROJECT), 0);
	assert_non_null(strstr(out, PROJECT "_powerhive-data"));
	free(out);
	assert_int_equal(tl_sh(NULL, false, COMPOSE "down -v", compose_file), 0);
	/* ...and no container left an anonymous one (scaled-down ones neither). */
	assert_int_equal(tl_sh(&out, false, "docker volume ls -q | sort"), 0);
	assert_string_equal(out, volumes_before);
	free(out);
	END();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_image),
		cmocka_unit_test(test_up_polled),
		cmocka_unit_test(test_healthy),
		cmocka_unit_test(test_https),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_apid_restart),
		cmocka_unit_test(test_apid_database_unwritable),
		cmocka_unit_test(test_down),
	};

	return cmocka_run_group_tests_name("compose_up", tests, setup, teardown);
}
