/* test_hivectl — bin/hivectl against a real suite: bin/minersim with 50
 * miners, bin/apid, bin/discoverd and bin/pollerd on loopback. Every check
 * runs the built binary as an operator or a script would (no terminal,
 * stdin /dev/null) and compares what it prints and its exit code with the
 * API's own answers and the simulator's ground truth (/sim/miners):
 *
 *   usage errors and help; the miners table lists every miner; --json
 *   parses; filters, sorting and paging; one miner in detail; an unknown
 *   miner is exit 1 with the API's message; set-preset on one miner
 *   reaches the simulator; a bulk restart on a filter with -y reaches every
 *   miner it matches; without -y and without a terminal a bulk change is
 *   refused (exit 2) and nothing is sent; max-preset survives an apid
 *   restart; power shows the balancer's state and power set changes it;
 *   health; alerts lists an alert minersim's overheat fault raised, ack
 *   acknowledges it, silence / silences / unsilence round-trip, and their
 *   argument errors are exit 2; a wrong token is exit 4; no apid is exit 3.
 *   The API token never appears in anything hivectl prints.
 *
 * KEEP_TMP=1 keeps the run directory (config, database, every log).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET         "127.91.0.0/24"
#define MINERS         50
#define STATUS_S       2
#define DONE_MS        20000            /* an action seen done, a restart seen */
#define RUN_MS         30000            /* one hivectl run at most */
#define BAD_TOKEN      "0000bad0token0000hivectl0test0000"

static struct ts_suite S;
static char token_file[1200];
static json_t *roster;                  /* /sim/miners once the fleet was ready */
static int passed;
#define NTESTS 13

#define FAIL(...) do { ts_dump_logs(&S, 20); fail_msg(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------ helpers */

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* apid with the token; NULL unless the status is want. */
static json_t *api(const char *method, const char *path, const char *body, long want)
{
	const char *const hdrs[] = { S.auth, NULL };
	char url[600];
	long st = 0;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", S.api, path);
	j = tl_http_json(method, url, hdrs, body, &st);
	if (st != want) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static long long truth_int(const char *mac, const char *key)
{
	json_t *t = ts_sim_miner(&S, mac);
	long long v = json_integer_value(json_object_get(t, key));

	json_decref(t);
	return t ? v : -1;
}

/* One run of hivectl. */
struct out {
	int code;                /* exit code; -1 when it did not exit by itself */
	char *out, *err;         /* what it printed (malloc'd, never NULL) */
};

static void out_free(struct out *o)
{
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Runs bin/hivectl with the arguments (NULL-terminated) as a script would:
 * its own session (no controlling terminal), stdin /dev/null, neither
 * POWERHIVE_URL nor POWERHIVE_API_TOKEN from this process, env ("K=V",
 * NULL-terminated, may be NULL) added. std: --url and --token-file of the
 * suite come first. answer: not NULL, stdin is a terminal instead (a pty
 * that becomes the controlling one), and answer is typed once hivectl
 * asks "[y/N]". Whatever it prints must not hold the API token. */
static void run(struct out *o, bool std, char *const env[], const char *answer, va_list ap)
{
	const char *argv[40];
	char outp[1200], errp[1200], *err;
	int n = 0, status = 0, pty = -1;
	long long t0 = hive_mono_ms();
	bool typed = false;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	argv[n++] = tl_bin("hivectl");
	if (std) {
		argv[n++] = "--url";
		argv[n++] = S.api;
		argv[n++] = "--token-file";
		argv[n++] = token_file;
	}
	while (n < 39 && (argv[n] = va_arg(ap, const char *)))
		n++;
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/hivectl.out", S.dir);
	snprintf(errp, sizeof(errp), "%s/hivectl.err", S.dir);
	if (answer) {
		pty = posix_openpt(O_RDWR | O_NOCTTY);
		assert_true(pty >= 0 && grantpt(pty) == 0 && unlockpt(pty) == 0);
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == 0) {
		int in = answer ? (setsid(), open(ptsname(pty), O_RDWR)) : open("/dev/null", O_RDONLY);
		int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (!answer)
			setsid();
		if (in < 0 || fo < 0 || fe < 0 || dup2(in, 0) < 0 || dup2(fo, 1) < 0 ||
		    dup2(fe, 2) < 0)
			_exit(127);
		unsetenv("POWERHIVE_URL");
		unsetenv("POWERHIVE_API_TOKEN");
		for (int i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	assert_true(pid > 0);
	o->code = -1;
	while (hive_mono_ms() - t0 < RUN_MS) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			o->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			break;
		}
		if (answer && !typed && (err = tl_read_file(errp))) {
			if (strstr(err, "[y/N]"))
				typed = write(pty, answer, strlen(answer)) == (ssize_t)strlen(answer);
			free(err);
		}
		tl_sleep_ms(5);
	}
	if (o->code == -1 && kill(pid, SIGKILL) == 0)
		waitpid(pid, &status, 0);
	if (pty >= 0)
		close(pty);
	o->out = tl_read_file(outp);
	o->err = tl_read_file(errp);
	if (!o->out)
		o->out = strdup("");
	if (!o->err)
		o->err = strdup("");
	printf("$ %shivectl", answer ? "(on a terminal) " : "");
	for (int i = 1; i < n; i++)
		printf(" %s", argv[i]);
	printf("  -> exit %d (%lld ms)\n%.1200s%s", o->code, hive_mono_ms() - t0, o->out, o->err);
	if (S.token[0] && (strstr(o->out, S.token) || strstr(o->err, S.token)))
		fail_msg("hivectl printed the API token");
}

static void hivectl(struct out *o, bool std, char *const env[], ...)
{
	va_list ap;

	va_start(ap, env);
	run(o, std, env, NULL, ap);
	va_end(ap);
}

/* hivectl on a terminal, answering its question with answer ("y\n"). */
static void hivectl_tty(struct out *o, const char *answer, ...)
{
	va_list ap;

	va_start(ap, answer);
	run(o, true, NULL, answer, ap);
	va_end(ap);
}

/* The line of text that starts with prefix, copied into buf, or NULL. */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t len)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, n) == 0) {
			snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
			return buf;
		}
	return NULL;
}

/* ------------------------------------------------------------ the stack */

static int stack_up(void **state)
{
	const char *sim_args[] = { "--seed", "15", "--tune-seconds", "2", "--tuned-seconds", "1",
				   "--start-seconds", "1", NULL };
	long long t0 = hive_mono_ms();

	(void)state;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ts_init(&S, "hivectl") < 0)
		return -1;
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"intervals\": {\"discovery_seconds\": 3600, \"status_seconds\": %d,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		     " \"control\": {\"action_timeout_seconds\": 20},\n"
		     " \"alerts\": {\"evaluate_seconds\": 1, \"rules\": {\"chip_temp_high\":\n"
		     "   {\"threshold\": 95, \"for_seconds\": 2}}}}", STATUS_S) < 0)
		goto fail;
	snprintf(token_file, sizeof(token_file), "%s/api-token", S.dir);
	fprintf(stderr, "hivectl: run directory %s\n", S.dir);
	if (ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 ||
	    !ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		goto fail;
	if (!ts_token(&S)) {
		fprintf(stderr, "hivectl: no API token\n");
		goto fail;
	}
	if (ts_wait_miners(&S, MINERS, 30000) < 0) {
		ts_dump_logs(&S, 20);
		goto fail;
	}
	printf("figure: fleet ready miners=%d ms=%lld\n", MINERS, hive_mono_ms() - t0);
	roster = ts_http(&S, "GET", S.admin, "/sim/miners", NULL, false, NULL);
	if (json_array_size(roster) != MINERS)
		goto fail;
	return 0;
fail:
	ts_down(&S, true);
	return -1;
}

static int stack_down(void **state)
{
	(void)state;
	json_decref(roster);
	ts_down(&S, passed != NTESTS);
	return 0;
}

/* ------------------------------------------------------------ tests */

static void test_usage(void **state)
{
	struct out o;

	(void)state;
	hivectl(&o, false, NULL, "--help", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "hivectl set-preset"));
	assert_non_null(strstr(o.out, "exit codes"));
	out_free(&o);
	hivectl(&o, false, NULL, "miners", "--help", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "usage: hivectl miners"));
	out_free(&o);
	hivectl(&o, false, NULL, "help", "power", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "power set"));
	out_free(&o);
	/* Each of these is refused before anything is asked of the API. */
	static const char *const bad[][4] = {
		{ "frobnicate" }, { "--colour", "miners" }, { "miners", "--online", "maybe" },
		{ "miners", "--limit" }, { "miners", "extra" }, { "set-preset" },
		{ "restart" }, { "restart", "aa:bb:cc:dd:ee:ff", "--model", "s19" },
		{ "miner" }, { "max-preset", "s19" }, { "power", "set" },
		{ "power", "set", "--margin", "ten" }, { "--url", "ftp://127.0.0.1/", "health" },
		{ "--token-file", "/nonexistent/token", "health" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hivectl(&o, false, NULL, "--url", "http://127.0.0.1:1", bad[i][0], bad[i][1],
			bad[i][2], bad[i][3], NULL);
		if (o.code != 2)
			fail_msg("hivectl %s %s: exit %d, not 2", bad[i][0], bad[i][1] ? bad[i][1] : "",
				 o.code);
		assert_true(o.err[0] != '\0');
		out_free(&o);
	}
	passed++;
}

static void test_miners_table(void **state)
{
	json_t *list = api("GET", "/api/miners?limit=10000", NULL, 200), *m;
	char buf[512], prefix[32];
	struct out o;
	size_t i;

	(void)state;
	assert_non_null(list);
	assert_int_equal(json_integer_value(json_object_get(list, "total")), MINERS);
	hivectl(&o, true, NULL, "miners", NULL);
	assert_int_equal(o.code, 0);
	assert_int_equal(lines(o.out), MINERS + 1);
	assert_non_null(line_of(o.out, "ID ", buf, sizeof(buf)));
	assert_non_null(strstr(buf, "CHIP °C"));
	/* Every miner, on its own line, with its IP, model and preset. */
	json_array_foreach(json_object_get(list, "miners"), i, m) {
		const json_t *st = json_object_get(m, "status");

		snprintf(prefix, sizeof(prefix), "%s ", str_at(m, "id"));
		if (!line_of(o.out, prefix, buf, sizeof(buf)))
			fail_msg("miner %s is not in the table", str_at(m, "id"));
		if (!strstr(buf, str_at(m, "ip")) || !strstr(buf, str_at(m, "model")) ||
		    !strstr(buf, str_at(st, "preset")))
			fail_msg("miner %s: line '%s'", str_at(m, "id"), buf);
	}
	out_free(&o);
	json_decref(list);
	passed++;
}

static void test_json_and_filters(void **state)
{
	json_t *api_s19 = api("GET", "/api/miners?model=s19&limit=1", NULL, 200), *j, *m;
	long long n_s19 = json_integer_value(json_object_get(api_s19, "total"));
	const char *mac = str_at(json_array_get(roster, 0), "mac");
	char id[18], buf[256];
	struct out o;
	size_t i;

	(void)state;
	json_decref(api_s19);
	snprintf(id, sizeof(id), "%s", mac);
	lower(id);
	hivectl(&o, true, NULL, "--json", "miners", NULL);
	assert_int_equal(o.code, 0);
	j = json_loads(o.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), MINERS);
	assert_int_equal(json_array_size(json_object_get(j, "miners")), MINERS);
	json_decref(j);
	out_free(&o);

	/* A filter: the API's count, and every miner of the model. */
	assert_true(n_s19 > 0 && n_s19 < MINERS);
	hivectl(&o, true, NULL, "miners", "--model", "s19", "--json", NULL);
	assert_int_equal(o.code, 0);
	j = json_loads(o.out, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), n_s19);
	json_array_foreach(json_object_get(j, "miners"), i, m)
		assert_string_equal(str_at(m, "model"), "s19");
	assert_int_equal(json_array_size(json_object_get(j, "miners")), (size_t)n_s19);
	json_decref(j);
	out_free(&o);

	/* --q: part of a MAC, in upper case as the firmware prints it. */
	hivectl(&o, true, NULL, "miners", "--q", mac, NULL);
	assert_int_equal(o.code, 0);
	assert_int_equal(lines(o.out), 2);
	snprintf(buf, sizeof(buf), "%s ", id);
	assert_non_null(line_of(o.out, buf, buf, sizeof(buf)));
	out_free(&o);

	/* yes|no filters: nobody is managed. */
	hivectl(&o, true, NULL, "miners", "--managed", "yes", NULL);
	assert_int_equal(o.code, 0);
	assert_int_equal(lines(o.out), 1);
	out_free(&o);

	/* Sorting and paging: the hottest five, and a note that there are more. */
	hivectl(&o, true, NULL, "miners", "--sort", "temp", "--order", "desc", "--limit", "5",
		NULL);
	assert_int_equal(o.code, 0);
	assert_int_equal(lines(o.out), 6);
	assert_non_null(strstr(o.err, "5 of 50"));
	out_free(&o);

	/* A value only the API can judge: its 400, exit 1. */
	hivectl(&o, true, NULL, "miners", "--sort", "colour", NULL);
	assert_int_equal(o.code, 1);
	assert_non_null(strstr(o.err, "sort"));
	out_free(&o);
	passed++;
}

static void test_miner(void **state)
{
	const char *unknown = "02:00:00:00:00:01";
	char id[18], path[64];
	json_t *want;
	struct out o;

	(void)state;
	snprintf(id, sizeof(id), "%s", str_at(json_array_get(roster, 1), "mac"));
	lower(id);
	hivectl(&o, true, NULL, "miner", id, NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, id));
	assert_non_null(strstr(o.out, "hashrate:"));
	assert_non_null(strstr(o.out, "CHAIN"));
	out_free(&o);

	/* Unknown: exit 1 and the API's own message. */
	snprintf(path, sizeof(path), "/api/miners/%s", unknown);
	want = api("GET", path, NULL, 404);
	assert_non_null(want);
	hivectl(&o, true, NULL, "miner", unknown, NULL);
	assert_int_equal(o.code, 1);
	assert_non_null(strstr(o.err, str_at(want, "error")));
	assert_string_equal(o.out, "");
	json_decref(want);
	out_free(&o);
	hivectl(&o, true, NULL, "miner", "../health", NULL);
	assert_int_equal(o.code, 1);
	out_free(&o);
	passed++;
}

/* A miner of the roster mining a tuned preset, not index skip; its preset
 * and model. */
static const json_t *pick(size_t from, char id[18])
{
	for (size_t i = from; i < json_array_size(roster); i++) {
		const json_t *m = json_array_get(roster, i);

		if (strcmp(str_at(m, "state"), "mining") != 0 ||
		    json_is_true(json_object_get(m, "tuning")))
			continue;
		snprintf(id, 18, "%s", str_at(m, "mac"));
		lower(id);
		return m;
	}
	return NULL;
}

static void test_set_preset_one(void **state)
{
	char id[18], path[96], want[48];
	const json_t *m = pick(2, id);
	const char *preset, *s;
	json_t *acts = NULL, *t;
	long long t0;
	struct out o;

	(void)state;
	assert_non_null(m);
	preset = strcmp(str_at(m, "model"), "s19") == 0 ? "1900" : "2150";
	if (strcmp(str_at(m, "preset"), preset) == 0)
		preset = strcmp(str_at(m, "model"), "s19") == 0 ? "2100" : "2300";
	hivectl(&o, true, NULL, "set-preset", preset, id, NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "queued"));
	assert_non_null(strstr(o.out, id));
	out_free(&o);
	/* The simulator runs it, and apid marks the action done. */
	snprintf(path, sizeof(path), "/api/actions?miner=%s&limit=1", id);
	for (t0 = hive_mono_ms();; tl_sleep_ms(200)) {
		t = ts_sim_miner(&S, id);
		json_decref(acts);
		acts = api("GET", path, NULL, 200);
		s = str_at(json_array_get(json_object_get(acts, "actions"), 0), "state");
		if (strcmp(str_at(t, "preset"), preset) == 0 && strcmp(s, "done") == 0) {
			json_decref(t);
			break;
		}
		if (hive_mono_ms() - t0 > DONE_MS)
			FAIL("%s: preset %s in the simulator, action %s, after %d ms (want %s, done)",
			     id, str_at(t, "preset"), s, DONE_MS, preset);
		json_decref(t);
	}
	json_decref(acts);
	hivectl(&o, true, NULL, "actions", "--miner", id, NULL);
	assert_int_equal(o.code, 0);
	snprintf(want, sizeof(want), "set_preset %s", preset);
	assert_non_null(strstr(o.out, want));
	assert_non_null(strstr(o.out, "done"));
	out_free(&o);
	passed++;
}

/* An IP prefix ("127.91.0.3") other than not (may be NULL) that matches 2
 * to 12 miners, in q; the miners in *matched. */
static int some_miners(char q[32], json_t **matched, const char *not)
{
	char path[96];

	for (int d = 1; d <= 9; d++) {
		json_t *j;
		long long n;

		snprintf(q, 32, "127.91.0.%d", d);
		if (not && strcmp(q, not) == 0)
			continue;
		snprintf(path, sizeof(path), "/api/miners?q=%s&limit=100", q);
		j = api("GET", path, NULL, 200);
		n = json_integer_value(json_object_get(j, "total"));
		if (n >= 2 && n <= 12) {
			*matched = j;
			return (int)n;
		}
		json_decref(j);
	}
	return -1;
}

static char restarted[32];              /* test_bulk_with_yes's filter */

static void test_bulk_with_yes(void **state)
{
	json_t *matched = NULL, *m;
	long long before[12], t0;
	char q[32], want[64];
	int n = some_miners(q, &matched, NULL), seen = 0;
	struct out o;
	size_t i;

	(void)state;
	assert_true(n >= 2);
	snprintf(restarted, sizeof(restarted), "%s", q);
	json_array_foreach(json_object_get(matched, "miners"), i, m)
		before[i] = truth_int(str_at(m, "id"), "restarts");
	hivectl(&o, true, NULL, "-y", "restart", "--q", q, NULL);
	assert_int_equal(o.code, 0);
	snprintf(want, sizeof(want), "queued on %d miners", n);
	assert_non_null(strstr(o.out, want));
	out_free(&o);
	/* Every miner the filter matched restarts. */
	for (t0 = hive_mono_ms(); seen < n; tl_sleep_ms(200)) {
		seen = 0;
		json_array_foreach(json_object_get(matched, "miners"), i, m)
			seen += truth_int(str_at(m, "id"), "restarts") > before[i];
		if (seen < n && hive_mono_ms() - t0 > DONE_MS)
			FAIL("%d of %d miners matching q=%s restarted", seen, n, q);
	}
	json_decref(matched);
	passed++;
}

static long long newest_action(void)
{
	json_t *j = api("GET", "/api/actions?limit=1", NULL, 200);
	long long id = json_integer_value(json_object_get(json_array_get(
		json_object_get(j, "actions"), 0), "id"));

	json_decref(j);
	return id;
}

static long long fleet_pauses(void)
{
	char url[128];
	json_t *all, *m;
	long long n = 0;
	size_t i;

	snprintf(url, sizeof(url), "%s/sim/miners", S.admin);
	all = tl_http_json("GET", url, NULL, NULL, NULL);
	json_array_foreach(all, i, m)
		n += json_integer_value(json_object_get(m, "pauses"));
	json_decref(all);
	return n;
}

static void test_bulk_needs_yes(void **state)
{
	long long id0 = newest_action(), p0 = fleet_pauses();
	struct out o;

	(void)state;
	assert_true(id0 > 0);
	hivectl(&o, true, NULL, "pause", "--model", "s19", NULL);
	assert_int_equal(o.code, 2);
	assert_non_null(strstr(o.err, "-y"));
	assert_string_equal(o.out, "");
	out_free(&o);
	hivectl(&o, true, NULL, "set-preset", "1100", "--all", NULL);
	assert_int_equal(o.code, 2);
	out_free(&o);
	/* Nothing sent: no action recorded, no miner paused. */
	tl_sleep_ms(1000);
	assert_int_equal(newest_action(), id0);
	assert_int_equal(fleet_pauses(), p0);
	passed++;
}

static void test_bulk_on_terminal(void **state)
{
	json_t *matched = NULL, *m;
	long long before[12], id0 = newest_action(), t0;
	char q[32];
	int n, seen = 0;
	struct out o;
	size_t i;

	(void)state;
	/* Not the miners the restart took. */
	n = some_miners(q, &matched, restarted);
	assert_true(n >= 2);
	json_array_foreach(json_object_get(matched, "miners"), i, m)
		before[i] = truth_int(str_at(m, "id"), "pauses");
	hivectl_tty(&o, "n\n", "pause", "--q", q, NULL);
	assert_int_equal(o.code, 2);
	assert_non_null(strstr(o.err, "[y/N]"));
	assert_non_null(strstr(o.err, "nothing sent"));
	out_free(&o);
	assert_int_equal(newest_action(), id0);
	hivectl_tty(&o, "y\n", "pause", "--q", q, NULL);
	assert_int_equal(o.code, 0);
	out_free(&o);
	for (t0 = hive_mono_ms(); seen < n; tl_sleep_ms(200)) {
		seen = 0;
		json_array_foreach(json_object_get(matched, "miners"), i, m)
			seen += truth_int(str_at(m, "id"), "pauses") > before[i];
		if (seen < n && hive_mono_ms() - t0 > DONE_MS)
			FAIL("%d of %d miners matching q=%s paused", seen, n, q);
	}
	json_decref(matched);
	passed++;
}

static void test_max_preset(void **state)
{
	json_t *j, *m;
	struct out o;
	size_t i;
	bool seen = false;

	(void)state;
	hivectl(&o, true, NULL, "max-preset", "s19", "2620", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "max preset 2620"));
	out_free(&o);
	/* Kept in the database: apid started again still has it. */
	if (ts_stop(&S, "apid", SIGTERM, 10000) < 0 || !ts_start(&S, "apid", NULL, NULL, NULL) ||
	    ts_wait_healthy(&S, 20000) < 0)
		FAIL("apid did not restart");
	hivectl(&o, true, NULL, "--json", "models", NULL);
	assert_int_equal(o.code, 0);
	j = json_loads(o.out, 0, NULL);
	json_array_foreach(json_object_get(j, "models"), i, m)
		if (strcmp(str_at(m, "alias"), "s19") == 0) {
			assert_string_equal(str_at(m, "max_preset"), "2620");
			seen = true;
		}
	assert_true(seen);
	json_decref(j);
	out_free(&o);
	hivectl(&o, true, NULL, "models", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "2620"));
	out_free(&o);
	/* A preset the model does not have: the API's 422, exit 1. */
	hivectl(&o, true, NULL, "max-preset", "s19", "9999", NULL);
	assert_int_equal(o.code, 1);
	assert_non_null(strstr(o.err, "is not a preset of model s19"));
	out_free(&o);
	hivectl(&o, true, NULL, "max-preset", "s19", "none", NULL);
	assert_int_equal(o.code, 0);
	j = api("GET", "/api/models/s19", NULL, 200);
	assert_true(json_is_null(json_object_get(j, "max_preset")));
	json_decref(j);
	out_free(&o);
	passed++;
}

static void test_power_and_health(void **state)
{
	json_t *p = api("GET", "/api/power", NULL, 200), *j;
	char buf[256];
	struct out o;

	(void)state;
	assert_non_null(p);
	hivectl(&o, true, NULL, "power", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(line_of(o.out, "mode:", buf, sizeof(buf)));
	assert_non_null(strstr(buf, str_at(p, "mode")));
	assert_non_null(line_of(o.out, "state:", buf, sizeof(buf)));
	assert_non_null(strstr(buf, str_at(p, "state")));
	for (const char *const *k = (const char *const[]){ "available:", "target:", "estimate:",
							   "measured:", "feed age:", NULL };
	     *k; k++)
		assert_non_null(line_of(o.out, *k, buf, sizeof(buf)));
	json_decref(p);
	out_free(&o);

	hivectl(&o, true, NULL, "power", "set", "--margin", "15", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(line_of(o.out, "margin:", buf, sizeof(buf)));
	assert_non_null(strstr(buf, "15.0 %"));
	out_free(&o);
	p = api("GET", "/api/power", NULL, 200);
	assert_true(json_number_value(json_object_get(p, "margin_pct")) == 15.0);
	json_decref(p);
	/* No power.source in this config: the API's 409, exit 1. */
	hivectl(&o, true, NULL, "power", "set", "--mode", "on", NULL);
	assert_int_equal(o.code, 1);
	assert_non_null(strstr(o.err, "power.source"));
	out_free(&o);

	hivectl(&o, true, NULL, "health", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(line_of(o.out, "status:", buf, sizeof(buf)));
	assert_non_null(strstr(o.out, "pollerd"));
	out_free(&o);
	hivectl(&o, true, NULL, "--json", "health", NULL);
	assert_int_equal(o.code, 0);
	j = json_loads(o.out, 0, NULL);
	assert_true(json_is_string(json_object_get(j, "status")));
	json_decref(j);
	out_free(&o);
	passed++;
}

/* The first alert of `hivectl --json alerts ...` (its id, 0 if none). */
static long long first_alert(const char *mac, const char *rule)
{
	struct out o;
	json_t *j, *a;
	long long id = 0;

	hivectl(&o, true, NULL, "--json", "alerts", "--state", "firing", "--miner", mac, "--rule",
		rule, NULL);
	j = o.code == 0 ? json_loads(o.out, 0, NULL) : NULL;
	a = json_array_get(json_object_get(j, "alerts"), 0);
	if (a)
		id = json_integer_value(json_object_get(a, "id"));
	json_decref(j);
	out_free(&o);
	return id;
}

static void test_alerts_and_silences(void **state)
{
	char mac[18] = "", body[160], buf[256], sid[24];
	const char *bad[][6] = {
		{ "ack", NULL }, { "ack", "12x", NULL }, { "unsilence", "-3", NULL },
		{ "silence", "--rule", "chip_temp_high", NULL },
		{ "silence", "--for", "2h", NULL },
		{ "silence", "--miner", "aa:bb:cc:dd:ee:ff", "--for", "2 weeks", NULL },
	};
	struct out o;
	long long id = 0, t0;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hivectl(&o, true, NULL, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4],
			NULL);
		assert_int_equal(o.code, 2);
		out_free(&o);
	}

	/* A mining miner overheats: chip_temp_high fires, hivectl lists it.
	 * The miner must be polled now: after the apid restart of the test
	 * before, a miner whose status job was out when apid stopped waits
	 * for that job's timeout before it is polled again (notes). */
	for (size_t i = json_array_size(roster); i-- > 0 && !mac[0];) {
		const char *m = str_at(json_array_get(roster, i), "mac");
		json_t *t = ts_sim_miner(&S, m), *d;
		char path[64];

		snprintf(path, sizeof(path), "/api/miners/%s", m);
		d = api("GET", path, NULL, 200);
		if (strcmp(str_at(t, "state"), "mining") == 0 &&
		    hive_wall_ms() - json_integer_value(json_object_get(json_object_get(d, "status"), "ts")) < 2 * STATUS_S * 1000)
			snprintf(mac, sizeof(mac), "%s", m);
		json_decref(d);
		json_decref(t);
	}
	assert_true(mac[0]);
	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"overheat\",\"temp\":99}", mac);
	assert_int_equal(ts_sim_post(&S, S.admin, "/sim/fault", body), 200);
	t0 = hive_mono_ms();
	while (!(id = first_alert(mac, "chip_temp_high")) && hive_mono_ms() - t0 < DONE_MS)
		tl_sleep_ms(500);
	if (!id)
		FAIL("no chip_temp_high alert for %s within %d ms", mac, DONE_MS);
	printf("figure: hivectl: chip_temp_high listed %lld ms after the fault\n",
	       hive_mono_ms() - t0);
	hivectl(&o, true, NULL, "alerts", "--state", "firing", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "ID"));
	assert_non_null(strcasestr(o.out, mac));
	assert_non_null(strstr(o.out, "chip_temp_high"));
	assert_non_null(line_of(o.out, "firing: ", buf, sizeof(buf)));
	out_free(&o);
	/* --alerting yes: the miners with an alert firing, this one among them */
	hivectl(&o, true, NULL, "miners", "--alerting", "yes", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strcasestr(o.out, mac));
	out_free(&o);
	hivectl(&o, true, NULL, "miners", "--alerting", "no", "--q", mac, NULL);
	assert_int_equal(o.code, 0);
	assert_null(strcasestr(o.out, mac));
	out_free(&o);

	hivectl(&o, true, NULL, "ack", (snprintf(sid, sizeof(sid), "%lld", id), sid), NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "acknowledged by"));
	out_free(&o);
	j = api("GET", "/api/alerts?state=firing&rule=chip_temp_high", NULL, 200);
	assert_true(json_is_string(json_object_get(json_array_get(json_object_get(j, "alerts"), 0),
						   "acked_by")));
	json_decref(j);
	hivectl(&o, true, NULL, "ack", "999999999", NULL);
	assert_int_equal(o.code, 1);
	out_free(&o);

	/* silence, silences, unsilence */
	hivectl(&o, true, NULL, "silence", "--miner", mac, "--rule", "chip_temp_high", "--for", "2h",
		"--comment", "fan swap", NULL);
	assert_int_equal(o.code, 0);
	assert_int_equal(sscanf(o.out, "silence %23s created", sid), 1);
	out_free(&o);
	hivectl(&o, true, NULL, "silences", NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strcasestr(o.out, mac));
	assert_non_null(strstr(o.out, "fan swap"));
	assert_true(strstr(o.out, "120m") || strstr(o.out, "119m"));    /* ends in 2 h */
	out_free(&o);
	hivectl(&o, true, NULL, "silence", "--rule", "no_such_rule", "--for", "1h", NULL);
	assert_int_equal(o.code, 1);
	out_free(&o);
	hivectl(&o, true, NULL, "unsilence", sid, NULL);
	assert_int_equal(o.code, 0);
	assert_non_null(strstr(o.out, "ended"));
	out_free(&o);
	hivectl(&o, true, NULL, "--json", "silences", NULL);
	assert_int_equal(o.code, 0);
	j = json_loads(o.out, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(j, "silences")), 0);
	json_decref(j);
	out_free(&o);

	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"none\"}", mac);
	assert_int_equal(ts_sim_post(&S, S.admin, "/sim/fault", body), 200);
	passed++;
}

static void test_bad_token(void **state)
{
	char bad_file[1200], env_bad[80];
	char *const env[] = { env_bad, NULL };
	struct out o;

	(void)state;
	snprintf(env_bad, sizeof(env_bad), "POWERHIVE_API_TOKEN=%s", BAD_TOKEN);
	hivectl(&o, false, env, "--url", S.api, "miners", NULL);
	assert_int_equal(o.code, 4);
	assert_non_null(strstr(o.err, "POWERHIVE_API_TOKEN"));
	assert_null(strstr(o.out, BAD_TOKEN));
	assert_null(strstr(o.err, BAD_TOKEN));
	out_free(&o);

	snprintf(bad_file, sizeof(bad_file), "%s/bad-token", S.dir);
	assert_int_equal(tl_write_file(bad_file, "  " BAD_TOKEN "\n"), 0);
	hivectl(&o, false, NULL, "--url", S.api, "--token-file", bad_file, "-y", "pause",
		"--all", NULL);
	assert_int_equal(o.code, 4);
	assert_null(strstr(o.out, BAD_TOKEN));
	assert_null(strstr(o.err, BAD_TOKEN));
	out_free(&o);

	/* --token-file comes before the environment. */
	hivectl(&o, true, env, "health", NULL);
	assert_int_equal(o.code, 0);
	out_free(&o);
	passed++;
}

static void test_api_down(void **state)
{
	char url[64];
	struct out o;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", tl_free_port());
	hivectl(&o, false, NULL, "--url", url, "--token-file", token_file, "health", NULL);
	assert_int_equal(o.code, 3);
	assert_non_null(strstr(o.err, "cannot reach"));
	out_free(&o);
	/* Something that answers, but not apid: minersim's admin API. */
	hivectl(&o, false, NULL, "--url", S.admin, "--token-file", token_file, "power", NULL);
	assert_true(o.code == 1 || o.code == 3);
	out_free(&o);
	passed++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_miners_table),
		cmocka_unit_test(test_json_and_filters),
		cmocka_unit_test(test_miner),
		cmocka_unit_test(test_set_preset_one),
		cmocka_unit_test(test_bulk_with_yes),
		cmocka_unit_test(test_bulk_needs_yes),
		cmocka_unit_test(test_bulk_on_terminal),
		cmocka_unit_test(test_max_preset),
		cmocka_unit_test(test_power_and_health),
		cmocka_unit_test(test_alerts_and_silences),
		cmocka_unit_test(test_bad_token),
		cmocka_unit_test(test_api_down),
	};

	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
