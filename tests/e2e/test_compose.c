/* test_compose — the Docker deployment, checked without a Docker engine
 * (test_compose_up runs it on one): docker-compose (Debian's package)
 * validates docker-compose.yml and prints it normalised, and this test
 * reads that output for what `docker-compose up --scale pollerd=4` needs:
 * four services from one image, workers with nothing that stops them
 * scaling (no container_name, no published port), health checks
 * (powerhive-healthcheck, etc/docker/healthcheck.sh) and restart policies,
 * apid's database on a named volume, discoverd on the host's network,
 * the bus on ipc:// sockets in a volume only the suite's services mount
 * (no bus port published or listening on the compose network); apid's
 * plain HTTP published on the host's loopback only, and the https service
 * (stunnel, etc/https/stunnel-compose.conf) in front of it, which refuses
 * to start without its certificate and key. The configs the services
 * name must exist under etc/, pass `apid -n`, name the same sockets, and
 * scan loopback only. The Dockerfile must copy only what
 * exists and .dockerignore does not hide. The test override
 * (tests/compose/docker-compose.test.yml) must merge with the file. A
 * broken copy of the file must be refused: the validation is real. */
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
#include <unistd.h>

#include <jansson.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define COMPOSE_FILE "docker-compose.yml"

static char *normalised;     /* `docker-compose config` output */

static int setup(void **state)
{
	char *ver = NULL;

	(void)state;
	if (tl_run("docker-compose version --short 2>&1", &ver) != 0) {
		fprintf(stderr, "docker-compose is not installed: apt-get install docker-compose "
			"(the Makefile's test packages include it)\n%s\n", ver ? ver : "");
		free(ver);
		return -1;
	}
	printf("docker-compose %s", ver);
	free(ver);
	if (tl_run("docker-compose -f " COMPOSE_FILE " config 2>&1", &normalised) != 0) {
		fprintf(stderr, "docker-compose config refused %s:\n%s\n", COMPOSE_FILE,
			normalised ? normalised : "");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(normalised);
	return 0;
}

/* The text of one service in the normalised output: from "  name:" to the
 * next line indented by two spaces exactly (the next service) or less. */
static char *service(const char *name)
{
	char head[64];
	const char *s, *e;

	snprintf(head, sizeof(head), "\n  %s:\n", name);
	s = strncmp(normalised, "services:\n", 9) == 0 ? normalised
		: strstr(normalised, "\nservices:\n");
	if (!s || !(s = strstr(s, head)))
		return NULL;
	s += strlen(head);
	for (e = s; *e; e++) {
		if (e[0] == '\n' && e[1] != ' ' && e[1] != '-')
			break;
		if (e[0] == '\n' && e[1] == ' ' && e[2] == ' ' && e[3] != ' ' && e[3] != '-')
			break;
	}
	return strndup(s, (size_t)(e - s));
}

static bool has_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n' || p[-1] == ' ') && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

static void test_services(void **state)
{
	char *list = NULL;

	(void)state;
	assert_int_equal(tl_run("docker-compose -f " COMPOSE_FILE " config --services", &list), 0);
	assert_non_null(strstr(list, "apid\n"));
	assert_non_null(strstr(list, "discoverd\n"));
	assert_non_null(strstr(list, "pollerd\n"));
	assert_non_null(strstr(list, "telemetryd\n"));
	assert_non_null(strstr(list, "https\n"));
	free(list);
	assert_int_equal(tl_run("docker-compose -f " COMPOSE_FILE " config --volumes", &list), 0);
	assert_non_null(strstr(list, "powerhive-data"));
	free(list);
}

/* Every service: the one image, restart policy, health check, init. */
static void test_every_service(void **state)
{
	static const char *const names[] = { "apid", "discoverd", "pollerd", "telemetryd" };

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *s = service(names[i]);
		char cmd[64];

		assert_non_null(s);
		if (!has_line(s, "image: powerhive:local") || !has_line(s, "restart: unless-stopped") ||
		    !strstr(s, "\n    healthcheck:\n") || !has_line(s, "init: true") ||
		    !has_line(s, "dockerfile: Dockerfile")) {
			fprintf(stderr, "service %s lacks image/restart/healthcheck/init/build:\n%s\n",
				names[i], s);
			fail();
		}
		snprintf(cmd, sizeof(cmd), "- %s", names[i]);
		assert_true(has_line(s, cmd));   /* its command is its daemon */
		free(s);
	}
}

/* --scale needs replicas that can coexist: no fixed name, no host port. */
static void test_workers_scale(void **state)
{
	static const char *const names[] = { "pollerd", "telemetryd" };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		char *s = service(names[i]), check[160];
		assert_non_null(s);
		assert_null(strstr(s, "container_name:"));
		assert_null(strstr(s, "\n    ports:"));
		assert_null(strstr(s, "network_mode:"));
		assert_non_null(strstr(s, "/etc/powerhive/powerhive.compose.json"));
		assert_true(has_line(s, "- powerhive-bus:/run/powerhive:rw"));
		/* healthy = the daemon runs and is connected to apid's bus */
		snprintf(check, sizeof(check), "- powerhive-healthcheck\n      - %s\n"
			 "      - /etc/powerhive/powerhive.compose.json\n", names[i]);
		if (!strstr(s, check)) {
			fprintf(stderr, "%s: the health check is not powerhive-healthcheck:\n%s\n",
				names[i], s);
			fail();
		}
		free(s);
	}
}

static void test_apid_service(void **state)
{
	char *s = service("apid");

	(void)state;
	assert_non_null(s);
	assert_true(has_line(s, "- powerhive-data:/var/lib/powerhive:rw"));
	assert_true(has_line(s, "- powerhive-bus:/run/powerhive:rw"));
	/* the bus is no port: only the dashboard is published */
	assert_null(strstr(s, ":5550"));
	assert_null(strstr(s, ":5553"));
	/* plain HTTP for this host only; other machines use https */
	assert_true(has_line(s, "- 127.0.0.1:8080:8080/tcp"));
	/* /api/live: apid answers and the database takes writes */
	assert_non_null(strstr(s, "- powerhive-healthcheck\n      - apid\n"
				  "      - /etc/powerhive/powerhive.compose-apid.json\n"));
	assert_null(strstr(s, "network_mode:"));
	free(s);
}

static void test_discoverd_service(void **state)
{
	char *s = service("discoverd");

	(void)state;
	assert_non_null(s);
	assert_true(has_line(s, "network_mode: host"));
	assert_true(has_line(s, "- powerhive-bus:/run/powerhive:rw"));
	assert_non_null(strstr(s, "/etc/powerhive/powerhive.compose-discoverd.json"));
	assert_null(strstr(s, "\n    ports:"));
	free(s);
}

static json_t *load(const char *path);

/* The https service: the suite's image running stunnel through
 * powerhive-https with the compose config, publishing 8443, the
 * certificate directory mounted read-only, its health checked through
 * stunnel; its config forwards to apid's
 * HTTP port on the compose network with TLS 1.2 at least. */
static void test_https_service(void **state)
{
	char *s = service("https"), *conf = tl_read_file("etc/https/stunnel-compose.conf");
	char *out = NULL;
	json_t *hub;
	char connect[64];

	(void)state;
	assert_non_null(s);
	assert_non_null(conf);
	if (!has_line(s, "image: powerhive:local") || !has_line(s, "restart: unless-stopped") ||
	    !has_line(s, "init: true") || !has_line(s, "- powerhive-https") ||
	    !has_line(s, "- /etc/powerhive/https/stunnel-compose.conf") ||
	    !strstr(s, "- published: 8443\n      target: 8443\n") ||
	    !strstr(s, ":/etc/powerhive-https:ro") || !strstr(s, "depends_on:\n      apid:") ||
	    !strstr(s, "- powerhive-healthcheck\n      - https\n"
		       "      - /etc/powerhive/https/stunnel-compose.conf\n") ||
	    strstr(s, "network_mode:")) {
		fprintf(stderr, "the https service is not stunnel on 8443 with its certificates:\n%s\n", s);
		fail();
	}
	hub = load("etc/powerhive.compose-apid.json");
	assert_non_null(hub);
	snprintf(connect, sizeof(connect), "connect = apid:%s",
		 strrchr(json_string_value(json_object_get(json_object_get(hub, "http"), "addr")),
			 ':') + 1);
	json_decref(hub);
	assert_true(has_line(conf, connect));
	assert_true(has_line(conf, "accept = 8443"));
	assert_true(has_line(conf, "delay = yes"));
	assert_true(has_line(conf, "foreground = yes"));
	assert_true(has_line(conf, "sslVersionMin = TLSv1.2"));
	assert_true(has_line(conf, "cert = /etc/powerhive-https/cert.pem"));
	assert_true(has_line(conf, "key = /etc/powerhive-https/key.pem"));
	/* No certificate (none on this host at that path): exit 1 naming the
	 * file, before stunnel starts; never a plain listener. */
	assert_int_equal(tl_run("sh -n etc/docker/https.sh 2>&1", &out), 0);
	free(out);
	assert_int_equal(tl_run("sh etc/docker/https.sh etc/https/stunnel-compose.conf 2>&1", &out), 1);
	assert_non_null(strstr(out, "powerhive-https: /etc/powerhive-https/cert.pem is missing"));
	free(out);
	free(conf);
	free(s);
}

static json_t *load(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);

	if (!j)
		fprintf(stderr, "%s: line %d: %s\n", path, e.line, e.text);
	return j;
}

/* bus.<key> of a config: an ipc:// socket in the shared volume. */
static const char *bus_at(json_t *cfg, const char *key)
{
	const char *url = json_string_value(json_object_get(json_object_get(cfg, "bus"), key));

	assert_non_null(url);
	if (strncmp(url, "ipc:///run/powerhive/", 21) != 0)
		fail_msg("bus.%s is %s, not an ipc:// socket in /run/powerhive", key, url);
	return url;
}

/* The configs the services name: present, valid, wired to each other. */
static void test_configs(void **state)
{
	static const char *const files[] = { "etc/powerhive.compose.json",
		"etc/powerhive.compose-apid.json", "etc/powerhive.compose-discoverd.json" };
	json_t *workers, *hub, *disc;
	char cmd[512];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		json_t *c, *subnets, *v;
		size_t k;
		char *out = NULL;

		snprintf(cmd, sizeof(cmd), "%s -n -c %s 2>&1", tl_bin("apid"), files[i]);
		if (tl_run(cmd, &out) != 0) {
			fprintf(stderr, "%s", out ? out : "");
			fail();
		}
		free(out);
		c = load(files[i]);
		assert_non_null(c);
		/* Shipped configs never point anything at a real network. */
		subnets = json_object_get(json_object_get(c, "network"), "subnets");
		json_array_foreach(subnets, k, v)
			assert_int_equal(strncmp(json_string_value(v), "127.", 4), 0);
		assert_string_equal(json_string_value(json_object_get(json_object_get(c, "http"),
								      "web_root")),
				    "/usr/share/powerhive/web");
		json_decref(c);
	}
	workers = load(files[0]);
	hub = load(files[1]);
	disc = load(files[2]);
	/* every bus endpoint: the socket apid listens on is the one each
	 * worker and discoverd (host network: a file works across) dial */
	for (size_t i = 0; i < ts_nbus; i++) {
		const char *at = bus_at(hub, ts_bus_keys[i]);

		assert_string_equal(bus_at(workers, ts_bus_keys[i]), at);
		assert_string_equal(bus_at(disc, ts_bus_keys[i]), at);
	}
	assert_string_equal(json_string_value(json_object_get(json_object_get(hub, "database"),
							      "path")),
			    "/var/lib/powerhive/powerhive.db");
	json_decref(workers);
	json_decref(hub);
	json_decref(disc);
}

/* .dockerignore lines that name a path exactly (no globs). */
static bool ignored(const char *ignore, const char *path)
{
	char *copy = strdup(ignore), *save = NULL;
	bool hit = false;

	for (char *l = strtok_r(copy, "\n", &save); l && !hit; l = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(l);
		if (l[0] == '#' || !n || strpbrk(l, "*?["))
			continue;
		hit = strncmp(path, l, n) == 0 && (path[n] == '\0' || path[n] == '/');
	}
	free(copy);
	return hit;
}

static void test_dockerfile(void **state)
{
	char *df = tl_read_file("Dockerfile"), *ign = tl_read_file(".dockerignore");
	char *save = NULL, *line;
	int copies = 0;

	(void)state;
	assert_non_null(df);
	assert_non_null(ign);
	assert_non_null(strstr(df, "\nFROM debian:12 AS build\n"));
	assert_non_null(strstr(df, "make"));
	/* Join continued lines, then check each COPY from the context. */
	for (char *p = df; (p = strstr(p, "\\\n")) != NULL;)
		p[0] = p[1] = ' ';
	for (line = strtok_r(df, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *w, *s2 = NULL, *args[16];
		int n = 0;

		while (*line == ' ')
			line++;
		if (strncmp(line, "COPY ", 5) != 0 || strstr(line, "--from="))
			continue;
		for (w = strtok_r(line + 5, " ", &s2); w && n < 16; w = strtok_r(NULL, " ", &s2))
			args[n++] = w;
		assert_true(n >= 2);
		for (int i = 0; i < n - 1; i++) {
			struct stat st;
			if (stat(args[i], &st) != 0 || ignored(ign, args[i])) {
				fprintf(stderr, "Dockerfile copies %s, which %s\n", args[i],
					ignored(ign, args[i]) ? ".dockerignore hides" : "does not exist");
				fail();
			}
			copies++;
		}
	}
	assert_true(copies >= 8);
	free(df);
	free(ign);
}

/* The health check script: valid sh, in the image, answering a usage
 * error to a daemon it does not know. */
static void test_healthcheck_script(void **state)
{
	char *out = NULL;

	(void)state;
	assert_int_equal(tl_run("sh -n etc/docker/healthcheck.sh 2>&1", &out), 0);
	free(out);
	assert_int_equal(tl_run("sh etc/docker/healthcheck.sh nosuchd 2>&1", &out), 2);
	assert_non_null(strstr(out, "usage: powerhive-healthcheck"));
	free(out);
}

/* The compose test's override merges with the file: every service in the
 * host's network (so no compose network), minersim one more service. */
static void test_override_merges(void **state)
{
	static const char *const names[] = { "apid", "discoverd", "pollerd", "telemetryd",
					     "minersim", "prometheus", "grafana", "https" };
	char *saved = normalised;

	(void)state;
	assert_int_equal(tl_run("POWERHIVE_TEST_ETC=/nonexistent POWERHIVE_TEST_MINERSIM=/bin/true "
				"POWERHIVE_TEST_SIM_SUBNET=127.86.16.0/26 POWERHIVE_TEST_SIM_MINERS=3 "
				"POWERHIVE_TEST_SIM_PORT=30000 POWERHIVE_TEST_SIM_ADMIN=127.0.0.1:30001 "
				"docker-compose -f " COMPOSE_FILE " -f tests/compose/docker-compose.test.yml "
				"config 2>&1", &normalised), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *s = service(names[i]);

		assert_non_null(s);
		if (!has_line(s, "network_mode: host")) {
			fprintf(stderr, "%s is not in the host's network with the override:\n%s\n",
				names[i], s);
			fail();
		}
		free(s);
	}
	free(normalised);
	normalised = saved;
}

/* An unknown option in a service must make docker-compose fail. */
static void test_broken_copy_refused(void **state)
{
	char *dir = tl_tmpdir("compose"), path[1024], cmd[1400], *out = NULL;
	char *text = tl_read_file(COMPOSE_FILE), *bad, *at;

	(void)state;
	assert_non_null(dir);
	assert_non_null(text);
	at = strstr(text, "\n  pollerd:\n");
	assert_non_null(at);
	at += strlen("\n  pollerd:\n");
	bad = malloc(strlen(text) + 64);
	assert_non_null(bad);
	snprintf(bad, strlen(text) + 64, "%.*s    replicas_typo: 4\n%s", (int)(at - text), text, at);
	snprintf(path, sizeof(path), "%s/docker-compose.yml", dir);
	assert_int_equal(tl_write_file(path, bad), 0);
	snprintf(cmd, sizeof(cmd), "docker-compose -f %s config -q 2>&1", path);
	assert_int_not_equal(tl_run(cmd, &out), 0);
	assert_non_null(strstr(out, "replicas_typo"));
	free(out);
	free(bad);
	free(text);
	tl_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_every_service),
		cmocka_unit_test(test_workers_scale),
		cmocka_unit_test(test_apid_service),
		cmocka_unit_test(test_discoverd_service),
		cmocka_unit_test(test_https_service),
		cmocka_unit_test(test_configs),
		cmocka_unit_test(test_dockerfile),
		cmocka_unit_test(test_healthcheck_script),
		cmocka_unit_test(test_override_merges),
		cmocka_unit_test(test_broken_copy_refused),
	};

	return cmocka_run_group_tests_name("compose", tests, setup, teardown);
}
