/* test_run — `make run` (etc/run.sh): which fleet it runs against, that it
 * starts the whole suite and prints where the dashboard and the token are,
 * that Ctrl-C stops every process it started, and that a hub that cannot
 * start ends the run with its log instead of leaving the rest behind.
 *
 * The full runs use a simulator config of their own (free ports, a loopback
 * subnet of their own, a temporary database), as the browser test does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define MAX_PIDS 16

struct run {
	struct ts_suite s;           /* the simulator config and its ports; run.sh starts all */
	char *dir;                   /* s.dir */
	char out[1024], env_cfg[1100], env_sim[1200], env_admin[64];
	int http;
	pid_t pid;                   /* etc/run.sh */
};

static char *run_capture(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	char *buf = calloc(1, 8192);
	size_t n = 0, got;
	int st;

	if (!p || !buf) {
		if (p)
			pclose(p);
		free(buf);
		return NULL;
	}
	while (n < 8191 && (got = fread(buf + n, 1, 8191 - n, p)) > 0)
		n += got;
	st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return buf;
}

/* ------------------------------------------------------------ which fleet */

static void test_dry_run_modes(void **state)
{
	char *dir = tl_tmpdir("run-dry"), cmd[2048], farm[1024], *out;
	int st;

	(void)state;
	assert_non_null(dir);
	/* The shipped config lists loopback only: the simulated fleet. */
	snprintf(cmd, sizeof(cmd), "POWERHIVE_RUN_DRY=1 POWERHIVE_CONFIG=etc/powerhive.json "
		 "POWERHIVE_SIM_CONFIG= sh etc/run.sh %s 2>&1", tl_bin(""));
	out = run_capture(cmd, &st);
	assert_non_null(out);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "mode=sim config=etc/powerhive.sim.json "));
	assert_non_null(strstr(out, "url=http://127.0.0.1:8080/"));
	free(out);

	/* A subnet outside 127/8 is a farm: its config, no simulator. The
	 * address is TEST-NET-1 and nothing is started. */
	snprintf(farm, sizeof(farm), "%s/farm.json", dir);
	assert_int_equal(tl_write_file(farm, "{\"network\":{\"subnets\":[\"127.9.0.0/24\","
					     "\"192.0.2.0/24\"],\"port\":80},"
					     "\"http\":{\"addr\":\"0.0.0.0:8099\"}}\n"), 0);
	snprintf(cmd, sizeof(cmd), "POWERHIVE_RUN_DRY=1 POWERHIVE_CONFIG=%s sh etc/run.sh %s 2>&1",
		 farm, tl_bin(""));
	out = run_capture(cmd, &st);
	assert_non_null(out);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "mode=farm config="));
	assert_non_null(strstr(out, "farm.json"));
	assert_non_null(strstr(out, "url=http://127.0.0.1:8099/"));   /* 0.0.0.0 → a URL to open */
	free(out);

	/* A config that cannot be read, or is not valid, is refused by name. */
	snprintf(cmd, sizeof(cmd), "POWERHIVE_RUN_DRY=1 POWERHIVE_CONFIG=%s/missing.json "
		 "sh etc/run.sh %s 2>&1", dir, tl_bin(""));
	out = run_capture(cmd, &st);
	assert_int_equal(st, 1);
	assert_non_null(strstr(out, "missing.json"));
	free(out);
	snprintf(farm, sizeof(farm), "%s/bad.json", dir);
	assert_int_equal(tl_write_file(farm, "{\"network\":{\"port\":70000}}\n"), 0);
	snprintf(cmd, sizeof(cmd), "POWERHIVE_RUN_DRY=1 POWERHIVE_SIM_CONFIG=%s sh etc/run.sh %s 2>&1",
		 farm, tl_bin(""));
	out = run_capture(cmd, &st);
	assert_int_equal(st, 1);
	assert_non_null(strstr(out, "network.port"));
	free(out);
	tl_rmrf(dir);
	free(dir);
}

/* ------------------------------------------------------------ full runs */

static int prepare(struct run *r, int http_port)
{
	int o = 100 + getpid() % 100;

	memset(r, 0, sizeof(*r));
	if (ts_init(&r->s, "run") < 0)
		return -1;
	r->dir = r->s.dir;
	r->http = http_port ? http_port : r->s.http_port;
	snprintf(r->out, sizeof(r->out), "%s/run.out", r->dir);
	/* web_root as shipped: the dashboard is served. */
	if (ts_merge(&r->s, "{\"database\": {\"path\": \"%s/data/powerhive.db\"},\n"
		     " \"network\": {\"subnets\": [\"127.%d.%d.0/24\"]},\n"
		     " \"intervals\": {\"discovery_seconds\": 3, \"status_seconds\": 2,\n"
		     "   \"telemetry_seconds\": 5, \"heartbeat_seconds\": 1},\n"
		     " \"http\": {\"addr\": \"127.0.0.1:%d\", \"web_root\": \"web\",\n"
		     "   \"auth\": {\"token_file\": \"%s/data/api-token\"}}}",
		     r->dir, o, (getpid() / 100) % 250, r->http, r->dir) < 0)
		return -1;
	snprintf(r->env_cfg, sizeof(r->env_cfg), "POWERHIVE_CONFIG=etc/powerhive.json");
	snprintf(r->env_sim, sizeof(r->env_sim), "POWERHIVE_SIM_CONFIG=%s", r->s.cfg);
	snprintf(r->env_admin, sizeof(r->env_admin), "POWERHIVE_SIM_ADMIN=127.0.0.1:%d",
		 r->s.admin_port);
	return ts_write_config(&r->s);
}

static void start(struct run *r)
{
	char *const env[] = { r->env_cfg, r->env_sim, r->env_admin, "POWERHIVE_SIM_MINERS=30",
		"POWERHIVE_SIM_NON_MINERS=2", "POWERHIVE_POLLERS=2", "POWERHIVE_API_TOKEN=",
		"POWERHIVE_HTTP_ADDR=", "POWERHIVE_DATABASE=", "POWERHIVE_LOG_DIR=", NULL };
	char bin[1024];

	snprintf(bin, sizeof(bin), "%s", tl_bin(""));
	if (bin[0] && bin[strlen(bin) - 1] == '/')
		bin[strlen(bin) - 1] = '\0';
	r->pid = tl_spawn(r->out, (char *const[]){ "/bin/sh", "etc/run.sh", bin, NULL }, env);
}

static void finish(struct run *r)
{
	if (r->pid > 0 && tl_alive(r->pid))
		tl_stop(r->pid, SIGTERM, 40000);
	ts_down(&r->s, false);
	memset(r, 0, sizeof(*r));
}

static bool out_has(struct run *r, const char *what)
{
	char *text = tl_read_file(r->out);
	bool yes = text && strstr(text, what);

	free(text);
	return yes;
}

static bool ready(void *arg)
{
	struct run *r = arg;

	return out_has(r, "Ctrl-C stops everything.") || !tl_alive(r->pid);
}

/* The pids run.sh reports as "started NAME (pid N)". */
static int started_pids(struct run *r, pid_t *pids, char names[][32])
{
	char *text = tl_read_file(r->out), *p;
	int n = 0;

	for (p = text; p && (p = strstr(p, "run: started ")) != NULL && n < MAX_PIDS; p++) {
		int pid;
		if (sscanf(p, "run: started %31s (pid %d)", names[n], &pid) == 2)
			pids[n++] = pid;
	}
	free(text);
	return n;
}

static bool gone(pid_t pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
}

static void test_start_then_ctrl_c(void **state)
{
	struct run r;
	pid_t pids[MAX_PIDS];
	char names[MAX_PIDS][32], url[128], *body = NULL, path[1200], auth[300], *token;
	const char *hdr[] = { auth, NULL };
	long status = 0;
	struct stat sb;
	int n, st;

	(void)state;
	assert_int_equal(prepare(&r, 0), 0);
	start(&r);
	assert_true(r.pid > 0);
	if (tl_wait_until(60000, ready, &r) != 0 || !tl_alive(r.pid)) {
		char *text = tl_read_file(r.out);
		fprintf(stderr, "run.sh did not get ready:\n%s\n", text ? text : "");
		free(text);
		finish(&r);
		fail();
	}
	snprintf(url, sizeof(url), "dashboard:  http://127.0.0.1:%d/", r.http);
	assert_true(out_has(&r, url));
	assert_true(out_has(&r, "API token:  in "));
	assert_true(out_has(&r, "/data/api-token"));
	n = started_pids(&r, pids, names);
	assert_int_equal(n, 6);       /* minersim apid discoverd pollerd ×2 telemetryd */
	for (int i = 0; i < n; i++)
		assert_false(gone(pids[i]));

	/* The dashboard and the API answer where it said. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r.http);
	assert_int_equal(tl_http("GET", url, NULL, NULL, &body, &status), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body, "PowerHive"));
	free(body);
	/* run.sh made the data directory 0700; the database and its key
	 * file in it are 0600. */
	snprintf(path, sizeof(path), "%s/data", r.dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/data/powerhive.db", r.dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/data/secrets.key", r.dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* apid wrote a token where run.sh said. */
	snprintf(path, sizeof(path), "%s/data/api-token", r.dir);
	token = tl_read_file(path);
	assert_non_null(token);
	token[strcspn(token, "\n")] = '\0';
	assert_true(strlen(token) >= 32);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	free(token);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/health", r.http);
	assert_int_equal(tl_http("GET", url, hdr, NULL, &body, &status), 0);
	assert_int_equal(status, 200);
	free(body);

	/* Ctrl-C: run.sh stops everything it started, then exits 130. */
	kill(r.pid, SIGINT);
	st = tl_stop(r.pid, 0, 45000);
	r.pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 130);
	for (int i = 0; i < n; i++)
		if (!gone(pids[i])) {
			fprintf(stderr, "%s (pid %d) outlived run.sh\n", names[i], (int)pids[i]);
			kill(pids[i], SIGKILL);
			fail();
		}
	assert_true(out_has(&r, "run: stopped"));
	finish(&r);
}

/* apid cannot listen (its port is taken): the run ends, says why, and
 * leaves nothing behind. */
static void test_hub_failure_ends_the_run(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct run r;
	pid_t pids[MAX_PIDS];
	char names[MAX_PIDS][32];
	int fd, n, st;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(prepare(&r, ntohs(sa.sin_port)), 0);
	start(&r);
	st = tl_stop(r.pid, 0, 60000);
	r.pid = 0;
	close(fd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_true(out_has(&r, "apid exited"));
	n = started_pids(&r, pids, names);
	assert_true(n >= 2);          /* minersim and apid were started */
	for (int i = 0; i < n; i++)
		assert_true(gone(pids[i]));
	finish(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dry_run_modes),
		cmocka_unit_test(test_start_then_ctrl_c),
		cmocka_unit_test(test_hub_failure_ends_the_run),
	};

	return cmocka_run_group_tests_name("run", tests, NULL, NULL);
}
