/* test_control — actions and the max-preset enforcer, end to end: bin/minersim
 * with 1,000 miners (S19 and S19j Pro), bin/apid, bin/discoverd and two
 * bin/pollerd, checked from the outside: apid's HTTP API on one side, and
 * on the other the simulator's ground truth (/sim/miners: preset, state,
 * the settings_calls / restarts / pauses / resumes / reboots counters),
 * which decides whether something happened.
 *
 * One stack serves every test, in order; each uses miners of its own:
 *   1. every action kind on a miner of each model: the effect in the
 *      simulator, the action done in the API;
 *   2. set_preset on 300 miners in one request: every one at the preset;
 *   3. a pollerd SIGKILLed during a bulk restart of 100 miners (and of 20
 *      tuning miners whose jobs it got but never ran): every action ends,
 *      no miner restarts twice, and only a miner that restarted is done;
 *   4. the enforcer: managed miners above a model's max_preset come down
 *      to it, an unmanaged one is not touched, and a miner whose firmware
 *      keeps raising its preset is flagged `conflict` and left alone;
 *   5. refused requests (400, 401, 404, 409) change nothing on any miner;
 *   6. action latency (request to the firmware call) while 1,000 miners
 *      are polled every 2 s.
 *
 * KEEP_TMP=1 keeps the run directory (config, database, every log).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET          "127.64.0.0/22"
#define MINERS          1000
#define STATUS_S        2
#define ACTION_TIMEOUT_S 20
#define CONTROL_JOB_S   4
#define MAX_CORRECTIONS 2
#define BULK            300
#define KILL_BULK       100
#define SLOW_S          1.2             /* the mining calls' answers during test 3 */
#define TUNING          20              /* test 3: miners tuning when their restart goes out */
#define SAMPLES         20

/* The stack: minersim, apid, discoverd, pollerd0, pollerd1. */

/* j as compact JSON in buf, for a message (nothing to free). */
static const char *json_text(const json_t *j, char *buf, size_t len)
{
	size_t n = j ? json_dumpb(j, buf, len - 1, JSON_COMPACT) : 0;

	if (!j)
		return "-";
	if (n == 0 || n >= len)
		return "(too long)";
	buf[n] = '\0';
	return buf;
}

static char tb[512];         /* json_text's buffer for messages (one thread) */

static struct ts_suite S;
/* /sim/miners when the fleet was ready, and which of them a test took. */
static json_t *roster;
static bool taken[MINERS];

/* Test 4 leaves these for test 5: a managed S19j Pro at the limit. */
static char managed_mac[18];
#define LIMIT_MODEL  "s19jpro"
#define LIMIT_PRESET "2500"             /* W; the S19j Pro lists its ladder out of order */
#define LIMIT_W      2500

/* ------------------------------------------------------------ helpers */

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* minersim's admin API; the status. */
static long sim_post(const char *path, const char *body)
{
	return ts_sim_post(&S, S.admin, path, body);
}

static long long truth_int(const char *mac, const char *key)
{
	json_t *t = ts_sim_miner(&S, mac);
	long long v = int_at(t, key);

	json_decref(t);
	return v;
}

/* The simulator's miners keyed by lower-case MAC. New reference. */
static json_t *truth_all(void)
{
	json_t *list = ts_http(&S, "GET", S.admin, "/sim/miners", NULL, false, NULL), *by, *m;
	char mac[18];
	size_t i;

	by = json_object();
	json_array_foreach(list, i, m) {
		snprintf(mac, sizeof(mac), "%s", str_at(m, "mac"));
		lower(mac);
		json_object_set(by, mac, m);
	}
	json_decref(list);
	return by;
}

/* apid's miners keyed by id. New reference or NULL. */
static json_t *api_miners(void)
{
	json_t *list = ts_api_get(&S, "/api/miners?limit=5000"), *by, *m;
	size_t i;

	if (!list)
		return NULL;
	by = json_object();
	json_array_foreach(json_object_get(list, "miners"), i, m)
		json_object_set(by, str_at(m, "id"), m);
	json_decref(list);
	return by;
}

static void dump_logs(void)
{
	ts_dump_logs(&S, 20);
}

/* A miner of the roster nobody took yet: mining its preset (tuned), of
 * model (NULL: any), not running preset `not` (NULL: any). Its lower-case
 * MAC in mac; -1 when none is left. */
static int pick(const char *model, const char *not, char mac[18])
{
	for (size_t i = 0; i < json_array_size(roster) && i < MINERS; i++) {
		const json_t *m = json_array_get(roster, i);

		if (taken[i] || strcmp(str_at(m, "state"), "mining") != 0 ||
		    json_is_true(json_object_get(m, "tuning")) ||
		    (model && strcmp(str_at(m, "model"), model) != 0) ||
		    (not && strcmp(str_at(m, "preset"), not) == 0))
			continue;
		taken[i] = true;
		snprintf(mac, 18, "%s", str_at(m, "mac"));
		lower(mac);
		return (int)i;
	}
	return -1;
}

/* POST /api/miners/{mac}/actions; the new action's id, or -1 with the
 * status in *status. */
static long long act(const char *mac, const char *kind, const char *preset, long *status)
{
	char path[96], body[128];
	json_t *j;
	long long id;

	snprintf(path, sizeof(path), "/api/miners/%s/actions", mac);
	if (preset)
		snprintf(body, sizeof(body), "{\"action\":\"%s\",\"preset\":\"%s\"}", kind, preset);
	else
		snprintf(body, sizeof(body), "{\"action\":\"%s\"}", kind);
	j = ts_api(&S, "POST", path, body, status);
	id = *status == 202 ? int_at(json_object_get(j, "action"), "id") : -1;
	json_decref(j);
	return id;
}

/* GET /api/actions/{id}: the action (new reference) or NULL. */
static json_t *action(long long id)
{
	char path[64];
	json_t *j, *a;

	snprintf(path, sizeof(path), "/api/actions/%lld", id);
	j = ts_api_get(&S, path);
	a = json_incref(json_object_get(j, "action"));
	json_decref(j);
	return a;
}

/* Every action apid lists (up to 1000, newest first), keyed by id. */
static json_t *actions_by_id(const char *query)
{
	char path[128], key[24];
	json_t *j, *by = json_object(), *a;
	size_t i;

	snprintf(path, sizeof(path), "/api/actions?limit=1000%s", query);
	j = ts_api_get(&S, path);
	json_array_foreach(json_object_get(j, "actions"), i, a) {
		snprintf(key, sizeof(key), "%lld", int_at(a, "id"));
		json_object_set(by, key, a);
	}
	json_decref(j);
	return by;
}

struct ids {
	const long long *id;
	int n;
	int open;                        /* of them still open, at the last look */
};

static bool none_open(void *arg)
{
	struct ids *w = arg;
	json_t *open = actions_by_id("&state=open");
	char key[24];

	w->open = 0;
	for (int i = 0; i < w->n; i++) {
		snprintf(key, sizeof(key), "%lld", w->id[i]);
		w->open += json_object_get(open, key) != NULL;
	}
	json_decref(open);
	if (w->open)
		tl_sleep_ms(200);        /* a listing of up to 1000: not every 50 ms */
	return w->open == 0;
}

/* Waits until none of the n actions is queued, sent or confirming. 0 / -1
 * (then w->open says how many still are). */
static int wait_final(const long long *id, int n, int timeout_ms, struct ids *w)
{
	w->id = id;
	w->n = n;
	return tl_wait_until(timeout_ms, none_open, w);
}

/* The newest actions of a miner (new reference: the "actions" array). */
static json_t *miner_actions(const char *mac)
{
	char path[96];
	json_t *j, *a;

	snprintf(path, sizeof(path), "/api/actions?miner=%s&limit=100", mac);
	j = ts_api_get(&S, path);
	a = json_incref(json_object_get(j, "actions"));
	json_decref(j);
	return a ? a : json_array();
}

/* Sum of a counter over the whole fleet. */
static long long fleet_sum(const json_t *all, const char *key)
{
	const char *mac;
	json_t *m;
	long long n = 0;

	json_object_foreach((json_t *)all, mac, m)
		n += int_at(m, key);
	return n;
}

static const char *const control_counters[] = {
	"settings_calls", "restarts", "stops", "starts", "pauses", "resumes", "reboots",
};
#define NCOUNTERS (sizeof(control_counters) / sizeof(control_counters[0]))

/* The /api/miners status of mac shows preset. */
struct seen {
	const char *mac[8];
	const char *preset[8];
	int n;
};

static bool api_presets_seen(void *arg)
{
	struct seen *w = arg;
	json_t *all = api_miners();
	int ok = 0;

	for (int i = 0; i < w->n; i++) {
		json_t *st = json_object_get(json_object_get(all, w->mac[i]), "status");

		ok += strcmp(str_at(st, "preset"), w->preset[i]) == 0;
	}
	json_decref(all);
	return ok == w->n;
}

/* ------------------------------------------------------------ the stack */

static int stack_up(void **state)
{
	const char *sim_args[] = { "--seed", "11", "--tune-seconds", "2", "--tuned-seconds", "1",
				   "--start-seconds", "1", "--reboot-seconds", "2",
				   "--init-seconds", "1", NULL };
	long long t0 = hive_mono_ms();

	(void)state;
	if (ts_init(&S, "control") < 0)
		return -1;
	/* One sweep at the start is all this test needs: a later one would
	 * find rebooting miners gone and take them offline. */
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"network\": {\"miner_probe_timeout_ms\": 1000,\n"
		     "   \"probe_concurrency\": 2048,\n"
		     "   \"http_timeout_ms\": 2000, \"http_concurrency\": 256},\n"
		     " \"intervals\": {\"discovery_seconds\": 3600, \"status_seconds\": %d,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		     " \"scheduler\": {\"job_timeout_seconds\": 5},\n"
		     " \"control\": {\"action_timeout_seconds\": %d, \"job_timeout_seconds\": %d,\n"
		     "   \"max_corrections_per_hour\": %d}}",
		     STATUS_S, ACTION_TIMEOUT_S, CONTROL_JOB_S, MAX_CORRECTIONS) < 0)
		goto fail;
	fprintf(stderr, "control: run directory %s\n", S.dir);
	if (ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 ||
	    !ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd1", NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		goto fail;
	if (!ts_token(&S)) {
		fprintf(stderr, "control: no API token\n");
		goto fail;
	}
	if (ts_wait_miners(&S, MINERS, 60000) < 0) {
		dump_logs();
		goto fail;
	}
	printf("figure: fleet ready (discovered, keyed, polled) miners=%d ms=%lld\n", MINERS,
	       hive_mono_ms() - t0);
	roster = ts_http(&S, "GET", S.admin, "/sim/miners", NULL, false, NULL);
	if (json_array_size(roster) != MINERS)
		goto fail;
	return 0;
fail:
	/* cmocka skips the group teardown when the setup fails. */
	ts_down(&S, true);
	return -1;
}

#define NTESTS 6
static int passed;                      /* tests that got to their end */

static int stack_down(void **state)
{
	(void)state;
	json_decref(roster);
	ts_down(&S, passed != NTESTS);      /* a failure keeps the run directory */
	return 0;
}

#define FAIL(...) do { dump_logs(); fail_msg(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------ 1. every kind */

/* A preset of model other than the one running: the ladder's fifth or
 * sixth step. */
static const char *other_preset(const char *model, const char *running)
{
	const char *a = strcmp(model, "s19") == 0 ? "1900" : "2150";
	const char *b = strcmp(model, "s19") == 0 ? "2100" : "2300";

	return strcmp(running, a) == 0 ? b : a;
}

struct kind_case {
	const char *model;
	const char *kind;
	char mac[18];
	const char *preset;
	json_t *before;                  /* the truth before */
	long long id;
	long long t0;                    /* wall ms of the request */
};

static long long delta(const struct kind_case *c, const json_t *now, const char *key)
{
	return int_at(now, key) - int_at(c->before, key);
}

static void check_action_done(const struct kind_case *c)
{
	json_t *a = action(c->id);

	if (!a || strcmp(str_at(a, "state"), "done") != 0)
		FAIL("%s %s on %s: action %lld is %s (error %s)", c->model, c->kind, c->mac, c->id,
		     a ? str_at(a, "state") : "missing",
		     json_text(a ? json_object_get(a, "error") : NULL, tb, sizeof(tb)));
	assert_string_equal(str_at(a, "action"), c->kind);
	assert_string_equal(str_at(a, "miner"), c->mac);
	json_decref(a);
}

static void send_case(struct kind_case *c)
{
	long st = 0;

	c->before = ts_sim_miner(&S, c->mac);
	assert_non_null(c->before);
	if (strcmp(c->kind, "set_preset") == 0)
		c->preset = other_preset(c->model, str_at(c->before, "preset"));
	c->t0 = hive_wall_ms();
	c->id = act(c->mac, c->kind, c->preset, &st);
	if (c->id <= 0)
		FAIL("%s on %s: POST answered %ld", c->kind, c->mac, st);
}

static void test_every_kind(void **state)
{
	static const char *const models[] = { "s19", "s19jpro" };
	static const char *const kinds[] = { "set_preset", "restart", "pause", "reboot" };
	struct kind_case cases[8], resumes[2];
	long long ids[8];
	struct ids w;
	int n = 0;

	(void)state;
	for (int m = 0; m < 2; m++) {
		for (int k = 0; k < 4; k++) {
			struct kind_case *c = &cases[n];

			memset(c, 0, sizeof(*c));
			c->model = models[m];
			c->kind = kinds[k];
			if (pick(c->model, NULL, c->mac) < 0)
				FAIL("no %s miner left for %s", c->model, c->kind);
			n++;
		}
	}
	for (int i = 0; i < n; i++) {
		send_case(&cases[i]);
		ids[i] = cases[i].id;
	}
	if (wait_final(ids, n, (ACTION_TIMEOUT_S + 5) * 1000, &w) < 0)
		FAIL("%d of %d actions still open after %d s", w.open, n, ACTION_TIMEOUT_S + 5);

	for (int i = 0; i < n; i++) {
		struct kind_case *c = &cases[i];
		json_t *t = ts_sim_miner(&S, c->mac), *a = action(c->id);
		long long elapsed_s = (hive_wall_ms() - c->t0) / 1000 + 1;

		check_action_done(c);
		if (strcmp(c->kind, "set_preset") == 0) {
			assert_string_equal(str_at(t, "preset"), c->preset);
			assert_string_equal(str_at(t, "preset_set_by"), "api");
			assert_int_equal(delta(c, t, "preset_changes"), 1);
			/* one POST /settings per send of the action */
			assert_true(int_at(a, "sends") >= 1);
			assert_int_equal(delta(c, t, "settings_calls"), int_at(a, "sends"));
		} else if (strcmp(c->kind, "restart") == 0) {
			assert_int_equal(delta(c, t, "restarts"), 1);
			assert_int_equal(delta(c, t, "reboots"), 0);
			assert_int_equal(delta(c, t, "settings_calls"), 0);
			/* its state began after the request; the uptime did not */
			assert_true(int_at(t, "state_s") <= elapsed_s);
			assert_true(int_at(t, "uptime_s") > elapsed_s);
		} else if (strcmp(c->kind, "pause") == 0) {
			assert_int_equal(delta(c, t, "pauses"), 1);
			assert_string_equal(str_at(t, "state"), "stopped");
			assert_true(json_is_true(json_object_get(t, "paused")));
		} else {
			assert_int_equal(delta(c, t, "reboots"), 1);
			assert_int_equal(delta(c, t, "restarts"), 0);
			assert_int_equal(delta(c, t, "power_cycles"), 0);
			assert_true(json_is_true(json_object_get(t, "online")));
			assert_true(int_at(t, "uptime_s") <= elapsed_s);
		}
		printf("control: %s %s on %s done: state=%s preset=%s sends=%lld\n", c->model,
		       c->kind, c->mac, str_at(t, "state"), str_at(t, "preset"),
		       int_at(a, "sends"));
		json_decref(t);
		json_decref(a);
	}

	/* Resume the paused ones: mining again. */
	n = 0;
	for (int i = 0; i < 8; i++) {
		if (strcmp(cases[i].kind, "pause") != 0)
			continue;
		memset(&resumes[n], 0, sizeof(resumes[n]));
		resumes[n].model = cases[i].model;
		resumes[n].kind = "resume";
		snprintf(resumes[n].mac, sizeof(resumes[n].mac), "%s", cases[i].mac);
		send_case(&resumes[n]);
		ids[n] = resumes[n].id;
		n++;
	}
	if (wait_final(ids, n, (ACTION_TIMEOUT_S + 5) * 1000, &w) < 0)
		FAIL("%d of %d resumes still open", w.open, n);
	for (int i = 0; i < n; i++) {
		json_t *t = ts_sim_miner(&S, resumes[i].mac);

		check_action_done(&resumes[i]);
		assert_int_equal(delta(&resumes[i], t, "resumes"), 1);
		assert_string_equal(str_at(t, "state"), "mining");
		assert_false(json_is_true(json_object_get(t, "paused")));
		printf("control: %s resume on %s done: state=%s\n", resumes[i].model,
		       resumes[i].mac, str_at(t, "state"));
		json_decref(t);
		json_decref(resumes[i].before);
	}
	for (int i = 0; i < 8; i++)
		json_decref(cases[i].before);
	passed++;
}

/* ------------------------------------------------------------ 2. bulk set_preset */

#define BULK_PRESET "1500"

static void test_bulk_set_preset(void **state)
{
	static char macs[BULK][18];
	static long long ids[BULK];
	json_t *body = json_object(), *list = json_array(), *j, *a, *all, *by;
	struct ids w;
	char *text, key[24];
	long st = 0;
	long long t0, t_done = 0;
	size_t i;
	int at = 0, done = 0;

	(void)state;
	for (int k = 0; k < BULK; k++) {
		if (pick("s19", BULK_PRESET, macs[k]) < 0)
			FAIL("only %d S19 miners left for the bulk action", k);
		json_array_append_new(list, json_string(macs[k]));
	}
	json_object_set_new(body, "action", json_string("set_preset"));
	json_object_set_new(body, "preset", json_string(BULK_PRESET));
	json_object_set_new(body, "miners", list);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);

	t0 = hive_wall_ms();
	j = ts_api(&S, "POST", "/api/actions", text, &st);
	free(text);
	if (st != 202)
		FAIL("bulk set_preset answered %ld", st);
	assert_int_equal(json_array_size(json_object_get(j, "refused")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "actions")), BULK);
	json_array_foreach(json_object_get(j, "actions"), i, a) {
		ids[i] = int_at(a, "id");
		assert_string_equal(str_at(a, "miner"), macs[i]);
	}
	json_decref(j);

	if (wait_final(ids, BULK, (ACTION_TIMEOUT_S + 10) * 1000, &w) < 0)
		FAIL("%d of %d bulk actions still open", w.open, BULK);
	by = actions_by_id("");
	for (int k = 0; k < BULK; k++) {
		snprintf(key, sizeof(key), "%lld", ids[k]);
		a = json_object_get(by, key);
		if (strcmp(str_at(a, "state"), "done") == 0) {
			done++;
			if (int_at(a, "updated") > t_done)
				t_done = int_at(a, "updated");
		} else {
			fprintf(stderr, "control: bulk action %lld on %s: %s %s\n", ids[k], macs[k],
				str_at(a, "state"),
				json_text(json_object_get(a, "error"), tb, sizeof(tb)));
		}
	}
	json_decref(by);

	all = truth_all();
	for (int k = 0; k < BULK; k++)
		at += strcmp(str_at(json_object_get(all, macs[k]), "preset"), BULK_PRESET) == 0;
	json_decref(all);
	printf("figure: bulk set_preset miners=%d request_to_last_done_ms=%lld (done=%d, at %s "
	       "in minersim=%d)\n", BULK, t_done - t0, done, BULK_PRESET, at);
	if (done != BULK || at != BULK)
		FAIL("bulk set_preset: %d of %d done, %d of %d at %s in minersim", done, BULK, at,
		     BULK, BULK_PRESET);
	passed++;
}

/* ------------------------------------------------------------ 3. pollerd killed */

/* POST /api/actions {"action": kind, "miners": macs}; the ids in order. */
static void bulk(const char *kind, char (*macs)[18], int n, long long *ids)
{
	json_t *body = json_object(), *list = json_array(), *j, *a;
	char *text;
	long st = 0;
	size_t i;

	for (int k = 0; k < n; k++)
		json_array_append_new(list, json_string(macs[k]));
	json_object_set_new(body, "action", json_string(kind));
	json_object_set_new(body, "miners", list);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	j = ts_api(&S, "POST", "/api/actions", text, &st);
	free(text);
	if (st != 202 || json_array_size(json_object_get(j, "actions")) != (size_t)n)
		FAIL("bulk %s on %d miners answered %ld with %zu actions", kind, n, st,
		     json_array_size(json_object_get(j, "actions")));
	json_array_foreach(json_object_get(j, "actions"), i, a)
		ids[i] = int_at(a, "id");
	json_decref(j);
}

/* How a group of restarts ended, against the simulator's restarts. */
struct ended {
	int done, failed, expired, other;
	int twice;                       /* the miner restarted more than once */
	int done_unseen;                 /* done, yet the miner never restarted */
	int expired_seen;                /* expired, yet the miner did restart */
};

static void tally(const char *group, char (*macs)[18], const long long *ids,
		  const long long *before, int n, const json_t *by, const json_t *all,
		  struct ended *e)
{
	char key[24];

	memset(e, 0, sizeof(*e));
	for (int k = 0; k < n; k++) {
		long long d = int_at(json_object_get(all, macs[k]), "restarts") - before[k];
		const json_t *a;
		const char *s;

		snprintf(key, sizeof(key), "%lld", ids[k]);
		a = json_object_get(by, key);
		s = str_at(a, "state");
		e->twice += d > 1;
		if (strcmp(s, "done") == 0) {
			e->done++;
			e->done_unseen += d != 1;
		} else if (strcmp(s, "failed") == 0) {
			e->failed++;
		} else if (strcmp(s, "expired") == 0) {
			e->expired++;
			e->expired_seen += d == 1;
		} else {
			e->other++;
		}
		if ((d != 1) != (strcmp(s, "done") != 0) || d > 1)
			fprintf(stderr, "control: %s restart %lld on %s: %s (sent %lld, "
				"updated %lld), minersim restarts +%lld, error %s\n", group, ids[k],
				macs[k], s, int_at(a, "sent"), int_at(a, "updated"), d,
				json_text(json_object_get(a, "error"), tb, sizeof(tb)));
	}
}

static void test_pollerd_killed(void **state)
{
	/* a: the bulk restart; b: miners tuning a preset a person just set
	 * when their restart goes out, to a worker that never runs it */
	static char a_macs[KILL_BULK][18], b_macs[TUNING][18];
	static long long a_ids[KILL_BULK], a_before[KILL_BULK], b_ids[TUNING], b_before[TUNING];
	long long all_ids[KILL_BULK + TUNING];
	json_t *all, *by;
	struct ended a, b;
	struct ids w;
	char fault[200], path[96], body[96];
	long long t0;

	(void)state;
	for (int k = 0; k < KILL_BULK; k++) {
		if (pick(NULL, NULL, a_macs[k]) < 0)
			FAIL("only %d miners left for the restart", k);
		/* The restart acts at once, its answer is held: the kill below
		 * lands while the calls are in flight. */
		snprintf(fault, sizeof(fault), "{\"target\":\"%.17s\",\"kind\":\"slow\","
			 "\"seconds\":%.1f,\"endpoints\":[\"mining\"]}", a_macs[k], SLOW_S);
		assert_int_equal(sim_post("/sim/fault", fault), 200);
	}
	for (int k = 0; k < TUNING; k++)
		if (pick(NULL, NULL, b_macs[k]) < 0)
			FAIL("only %d miners left for the tuning group", k);
	all = truth_all();
	for (int k = 0; k < KILL_BULK; k++)
		a_before[k] = int_at(json_object_get(all, a_macs[k]), "restarts");
	for (int k = 0; k < TUNING; k++)
		b_before[k] = int_at(json_object_get(all, b_macs[k]), "restarts");

	assert_true(tl_alive(ts_pid(&S, "pollerd0")));
	assert_true(tl_alive(ts_pid(&S, "pollerd1")));
	t0 = hive_mono_ms();
	bulk("restart", a_macs, KILL_BULK, a_ids);
	tl_sleep_ms(300);
	for (int k = 0; k < TUNING; k++) {
		const json_t *m = json_object_get(all, b_macs[k]);

		snprintf(path, sizeof(path), "/sim/miners/%.17s/preset", b_macs[k]);
		snprintf(body, sizeof(body), "{\"preset\":\"%s\",\"by\":\"web\"}",
			 other_preset(str_at(m, "model"), str_at(m, "preset")));
		assert_int_equal(sim_post(path, body), 200);
	}
	json_decref(all);
	/* pollerd0 freezes with calls in flight; the jobs it gets from now
	 * on are never run; then it dies. */
	kill(ts_pid(&S, "pollerd0"), SIGSTOP);
	bulk("restart", b_macs, TUNING, b_ids);
	tl_sleep_ms(300);
	ts_stop(&S, "pollerd0", SIGKILL, 2000);

	memcpy(all_ids, a_ids, sizeof(a_ids));
	memcpy(all_ids + KILL_BULK, b_ids, sizeof(b_ids));
	if (wait_final(all_ids, KILL_BULK + TUNING, (ACTION_TIMEOUT_S + 8) * 1000, &w) < 0)
		FAIL("%d of %d restarts still queued/sent/confirming %d s after the request",
		     w.open, KILL_BULK + TUNING, ACTION_TIMEOUT_S + 8);
	by = actions_by_id("");
	all = truth_all();
	tally("bulk", a_macs, a_ids, a_before, KILL_BULK, by, all, &a);
	tally("tuning", b_macs, b_ids, b_before, TUNING, by, all, &b);
	json_decref(by);
	json_decref(all);
	printf("figure: pollerd frozen 300 ms into a bulk restart of %d miners, then SIGKILLed: "
	       "done=%d failed=%d expired=%d other=%d, restarted twice=%d, done without a "
	       "restart=%d, expired with one=%d; all ended within ms=%lld\n", KILL_BULK, a.done,
	       a.failed, a.expired, a.other, a.twice, a.done_unseen, a.expired_seen,
	       hive_mono_ms() - t0);
	printf("figure: restarts of %d tuning miners sent to the frozen pollerd: done=%d "
	       "failed=%d expired=%d, done without a restart=%d\n", TUNING, b.done, b.failed,
	       b.expired, b.done_unseen);
	assert_int_equal(sim_post("/sim/reset", "{}"), 200);
	/* Back to two workers for the tests that follow, whatever this one finds. */
	if (!ts_start(&S, "pollerd", "pollerd0", NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		FAIL("pollerd0 did not come back");

	assert_int_equal(a.done + a.failed + a.expired, KILL_BULK);
	assert_int_equal(b.done + b.failed + b.expired, TUNING);
	assert_int_equal(a.twice + b.twice, 0);
	/* The simulator decides: done means the miner restarted. (Expired
	 * with a restart is honest: the effect was not seen in time.) */
	if (a.done_unseen + b.done_unseen)
		FAIL("%d restarts done in the API that never reached the miner (minersim restarts "
		     "+0)", a.done_unseen + b.done_unseen);
	/* The surviving worker carried the rest. */
	assert_true(a.done > 0);
	passed++;
}

/* ------------------------------------------------------------ 4. enforcer */

static long patch(const char *path, const char *body)
{
	long st = 0;

	json_decref(ts_api(&S, "PATCH", path, body, &st));
	return st;
}

static long set_managed(const char *mac, bool managed)
{
	char path[64];

	snprintf(path, sizeof(path), "/api/miners/%s", mac);
	return patch(path, managed ? "{\"managed\":true}" : "{\"managed\":false}");
}

static long web_preset(const char *mac, const char *preset)
{
	char path[96], body[96];

	snprintf(path, sizeof(path), "/sim/miners/%s/preset", mac);
	snprintf(body, sizeof(body), "{\"preset\":\"%s\",\"by\":\"web\"}", preset);
	return sim_post(path, body);
}

struct at_preset {
	const char *mac[4];
	int n;
	const char *preset;
};

static bool truth_at(void *arg)
{
	struct at_preset *w = arg;
	int ok = 0;

	for (int i = 0; i < w->n; i++) {
		json_t *t = ts_sim_miner(&S, w->mac[i]);

		ok += strcmp(str_at(t, "preset"), w->preset) == 0;
		json_decref(t);
	}
	return ok == w->n;
}

/* The miner's newest action by the enforcer, done (new reference), or NULL. */
static json_t *enforcer_done(const char *mac)
{
	json_t *list = miner_actions(mac), *a, *out = NULL;
	size_t i;

	json_array_foreach(list, i, a) {
		if (strcmp(str_at(a, "actor"), "enforcer") == 0) {
			if (strcmp(str_at(a, "state"), "done") == 0)
				out = json_incref(a);
			break;
		}
	}
	json_decref(list);
	return out;
}

static bool enforcer_all_done(void *arg)
{
	struct at_preset *w = arg;
	int ok = 0;

	for (int i = 0; i < w->n; i++) {
		json_t *a = enforcer_done(w->mac[i]);

		ok += a != NULL;
		json_decref(a);
	}
	if (ok < w->n)
		tl_sleep_ms(150);
	return ok == w->n;
}

static int count_actor(const char *mac, const char *actor, long long *sends)
{
	json_t *list = miner_actions(mac), *a;
	size_t i;
	int n = 0;

	if (sends)
		*sends = 0;
	json_array_foreach(list, i, a) {
		if (strcmp(str_at(a, "actor"), actor) == 0) {
			n++;
			if (sends)
				*sends += int_at(a, "sends");
		}
	}
	json_decref(list);
	return n;
}

static bool audited_by_enforcer(const char *mac)
{
	char path[96];
	json_t *j, *e;
	size_t i;
	bool found = false;

	snprintf(path, sizeof(path), "/api/audit?miner=%s&limit=100", mac);
	j = ts_api_get(&S, path);
	json_array_foreach(json_object_get(j, "audit"), i, e)
		found |= strcmp(str_at(e, "actor"), "enforcer") == 0 &&
			 strcmp(str_at(e, "action"), "miner.action") == 0;
	json_decref(j);
	return found;
}

static bool conflict_flagged(void *arg)
{
	char path[64];
	json_t *m;
	bool yes;

	snprintf(path, sizeof(path), "/api/miners/%s", (const char *)arg);
	m = ts_api_get(&S, path);
	yes = json_is_object(json_object_get(m, "conflict")) &&
	      *str_at(json_object_get(m, "conflict"), "reason");
	json_decref(m);
	if (!yes)
		tl_sleep_ms(200);
	return yes;
}

static void test_enforcer(void **state)
{
	/* e[0], e[1]: managed before the limit; e[2]: managed after it;
	 * u: unmanaged; c: managed, its firmware's switcher raising it. */
	char e[3][18], u[18], c[18], path[96], body[160];
	static const char *const start[3] = { "3580", "disabled", "4110" };
	json_t *tu0, *tc0, *te0[3], *t, *m;
	struct seen seen = { .n = 0 };
	struct at_preset w = { .preset = LIMIT_PRESET };
	long long t0, lowered_ms, managed_ms, sends_c;
	int corr_c;

	(void)state;
	for (int i = 0; i < 3; i++)
		if (pick(LIMIT_MODEL, NULL, e[i]) < 0)
			FAIL("no " LIMIT_MODEL " miner left");
	if (pick(LIMIT_MODEL, NULL, u) < 0 || pick(LIMIT_MODEL, NULL, c) < 0)
		FAIL("no " LIMIT_MODEL " miner left");

	/* Above the limit, set by a person on the web page. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(web_preset(e[i], start[i]), 200);
		seen.mac[seen.n] = e[i];
		seen.preset[seen.n++] = start[i];
	}
	assert_int_equal(web_preset(u, "3320"), 200);
	seen.mac[seen.n] = u;
	seen.preset[seen.n++] = "3320";
	assert_int_equal(web_preset(c, "2970"), 200);
	if (tl_wait_until(3 * STATUS_S * 1000 + 3000, api_presets_seen, &seen) < 0)
		FAIL("apid did not see the presets set by hand");
	/* c's firmware raises its preset one step per second of mining. */
	snprintf(path, sizeof(path), "/sim/miners/%s/switcher", c);
	assert_int_equal(sim_post(path, "{\"enabled\":true,\"top_preset\":\"4110\","
				  "\"check_time\":1}"), 200);

	assert_int_equal(set_managed(e[0], true), 200);
	assert_int_equal(set_managed(e[1], true), 200);
	assert_int_equal(set_managed(c, true), 200);
	for (int i = 0; i < 3; i++)
		te0[i] = ts_sim_miner(&S, e[i]);
	tu0 = ts_sim_miner(&S, u);
	tc0 = ts_sim_miner(&S, c);

	/* The limit: managed miners above it come down at once. */
	t0 = hive_mono_ms();
	assert_int_equal(patch("/api/models/" LIMIT_MODEL, "{\"max_preset\":\"" LIMIT_PRESET "\"}"),
			 200);
	w.mac[0] = e[0];
	w.mac[1] = e[1];
	w.n = 2;
	if (tl_wait_until(STATUS_S * 1000 + 3000, truth_at, &w) < 0)
		FAIL("managed miners not at " LIMIT_PRESET " within %d ms of the limit",
		     STATUS_S * 1000 + 3000);
	lowered_ms = hive_mono_ms() - t0;

	/* Made managed under the limit: on its next status. */
	t0 = hive_mono_ms();
	assert_int_equal(set_managed(e[2], true), 200);
	w.mac[0] = e[2];
	w.n = 1;
	if (tl_wait_until(STATUS_S * 1000 + 3000, truth_at, &w) < 0)
		FAIL("%s made managed not at " LIMIT_PRESET " within %d ms", e[2],
		     STATUS_S * 1000 + 3000);
	managed_ms = hive_mono_ms() - t0;

	/* Done, by the enforcer, in the actions and the audit. */
	w.mac[0] = e[0];
	w.mac[1] = e[1];
	w.mac[2] = e[2];
	w.n = 3;
	if (tl_wait_until((ACTION_TIMEOUT_S + 5) * 1000, enforcer_all_done, &w) < 0)
		FAIL("the enforcer's actions did not end done");
	for (int i = 0; i < 3; i++) {
		json_t *a = enforcer_done(e[i]);

		assert_string_equal(str_at(a, "action"), "set_preset");
		assert_string_equal(str_at(a, "preset"), LIMIT_PRESET);
		assert_true(*str_at(a, "reason") != '\0');
		printf("control: enforcer on %s (%s): %s\n", e[i], start[i], str_at(a, "reason"));
		json_decref(a);
		assert_true(audited_by_enforcer(e[i]));
	}

	/* The miner whose firmware keeps raising it: corrected
	 * MAX_CORRECTIONS times, then flagged and left alone. */
	t0 = hive_mono_ms();
	if (tl_wait_until(45000, conflict_flagged, c) < 0) {
		t = ts_sim_miner(&S, c);
		FAIL("%s not flagged conflict: %d enforcer actions, minersim preset %s "
		     "switcher_preset_changes %lld", c, count_actor(c, "enforcer", NULL),
		     str_at(t, "preset"), int_at(t, "switcher_preset_changes"));
	}
	snprintf(path, sizeof(path), "/api/miners/%s", c);
	m = ts_api_get(&S, path);
	printf("control: %s conflict after %lld ms: %s\n", c, hive_mono_ms() - t0,
	       str_at(json_object_get(m, "conflict"), "reason"));
	json_decref(m);
	assert_true(audited_by_enforcer(c));
	corr_c = count_actor(c, "enforcer", &sends_c);
	assert_int_equal(corr_c, MAX_CORRECTIONS);
	t = ts_sim_miner(&S, c);
	{
		long long calls = int_at(t, "settings_calls");

		/* one POST /settings per correction sent, nothing more */
		assert_int_equal(calls - int_at(tc0, "settings_calls"), sends_c);
		assert_true(int_at(t, "switcher_preset_changes") -
			    int_at(tc0, "switcher_preset_changes") >= MAX_CORRECTIONS);
		json_decref(t);
		/* Left alone: three more status intervals while the firmware
		 * keeps raising it. */
		tl_sleep_ms(3 * STATUS_S * 1000 + 500);
		t = ts_sim_miner(&S, c);
		if (int_at(t, "settings_calls") != calls)
			FAIL("%s in conflict still got %lld POST /settings", c,
			     int_at(t, "settings_calls") - calls);
		assert_true(int_at(t, "preset_watts") > LIMIT_W);
		assert_int_equal(count_actor(c, "enforcer", NULL), MAX_CORRECTIONS);
		json_decref(t);
	}

	/* Unmanaged: untouched. Managed: corrected once each, no more. */
	t = ts_sim_miner(&S, u);
	assert_int_equal(int_at(t, "settings_calls"), int_at(tu0, "settings_calls"));
	assert_string_equal(str_at(t, "preset"), "3320");
	json_decref(t);
	assert_int_equal(count_actor(u, "enforcer", NULL), 0);
	for (int i = 0; i < 3; i++) {
		t = ts_sim_miner(&S, e[i]);
		assert_string_equal(str_at(t, "preset"), LIMIT_PRESET);
		assert_int_equal(int_at(t, "settings_calls") - int_at(te0[i], "settings_calls"), 1);
		assert_int_equal(count_actor(e[i], "enforcer", NULL), 1);
		json_decref(t);
		json_decref(te0[i]);
	}
	printf("figure: enforcer max_preset=" LIMIT_PRESET " on " LIMIT_MODEL ": managed miners "
	       "lowered within ms=%lld of the limit, ms=%lld of being made managed; conflict "
	       "after %d corrections, then no settings call for %d s\n", lowered_ms, managed_ms,
	       corr_c, 3 * STATUS_S);
	json_decref(tu0);
	json_decref(tc0);
	snprintf(managed_mac, sizeof(managed_mac), "%s", e[0]);
	snprintf(body, sizeof(body), "{\"enabled\":false}");
	snprintf(path, sizeof(path), "/sim/miners/%s/switcher", c);
	assert_int_equal(sim_post(path, body), 200);
	passed++;
}

/* ------------------------------------------------------------ 5. refused */

struct refusal {
	const char *what;
	const char *mac;                 /* NULL: the unmanaged miner */
	const char *body;
	bool with_auth;
	long want;
};

static void test_refused(void **state)
{
	char r[18], path[96];
	json_t *before, *after, *tr0, *tm0, *j, *newest;
	long long last_id;
	long st;
	const struct refusal cases[] = {
		{ "unknown preset", NULL, "{\"action\":\"set_preset\",\"preset\":\"9999\"}", true,
		  400 },
		{ "unknown action", NULL, "{\"action\":\"overclock\"}", true, 400 },
		{ "preset on restart", NULL, "{\"action\":\"restart\",\"preset\":\"1500\"}", true,
		  400 },
		{ "no token", NULL, "{\"action\":\"restart\"}", false, 401 },
		{ "managed above max_preset", managed_mac,
		  "{\"action\":\"set_preset\",\"preset\":\"3580\"}", true, 409 },
		{ "managed, stock above max_preset", managed_mac,
		  "{\"action\":\"set_preset\",\"preset\":\"disabled\"}", true, 409 },
		{ "unknown miner", "02:00:00:00:00:99", "{\"action\":\"reboot\"}", true, 404 },
	};

	(void)state;
	assert_true(managed_mac[0]);
	if (pick(NULL, NULL, r) < 0)
		FAIL("no miner left");
	before = truth_all();
	tr0 = json_incref(json_object_get(before, r));
	tm0 = json_incref(json_object_get(before, managed_mac));
	newest = ts_api_get(&S, "/api/actions?limit=1");
	last_id = int_at(json_array_get(json_object_get(newest, "actions"), 0), "id");
	json_decref(newest);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *c = &cases[i];

		snprintf(path, sizeof(path), "/api/miners/%s/actions", c->mac ? c->mac : r);
		j = ts_http(&S, "POST", S.api, path, c->body, c->with_auth, &st);
		if (st != c->want)
			FAIL("%s: answered %ld, expected %ld: %s", c->what, st, c->want,
			     j ? json_text(j, tb, sizeof(tb)) : "(no JSON)");
		assert_true(*str_at(j, "error") != '\0');
		printf("control: refused %s: %ld %s\n", c->what, st, str_at(j, "error"));
		json_decref(j);
	}
	/* The same through the bulk endpoint: the miner is refused, with the reason. */
	{
		char body[200];
		json_t *ref;

		snprintf(body, sizeof(body), "{\"action\":\"set_preset\",\"preset\":\"3580\","
			 "\"miners\":[\"%s\"]}", managed_mac);
		j = ts_api(&S, "POST", "/api/actions", body, &st);
		assert_int_equal(st, 202);
		assert_int_equal(json_array_size(json_object_get(j, "actions")), 0);
		ref = json_array_get(json_object_get(j, "refused"), 0);
		assert_int_equal(int_at(ref, "status"), 409);
		assert_string_equal(str_at(ref, "miner"), managed_mac);
		json_decref(j);
		j = ts_api(&S, "POST", "/api/actions",
			   "{\"action\":\"set_preset\",\"preset\":\"9999\","
			   "\"filter\":{\"model\":\"s19\"}}", &st);
		assert_int_equal(st, 202);
		assert_int_equal(json_array_size(json_object_get(j, "actions")), 0);
		assert_true(json_array_size(json_object_get(j, "refused")) > 0);
		json_decref(j);
		snprintf(body, sizeof(body), "{\"action\":\"reboot\",\"miners\":[\"%s\"]}", r);
		j = ts_http(&S, "POST", S.api, "/api/actions", body, false, &st);
		assert_int_equal(st, 401);
		json_decref(j);
	}

	/* A status interval later: nothing reached any miner, nothing recorded. */
	tl_sleep_ms(STATUS_S * 1000 + 1000);
	after = truth_all();
	for (size_t k = 0; k < NCOUNTERS; k++) {
		long long b = fleet_sum(before, control_counters[k]);
		long long a = fleet_sum(after, control_counters[k]);

		if (a != b)
			FAIL("after refused requests the fleet's %s went from %lld to %lld",
			     control_counters[k], b, a);
	}
	assert_string_equal(str_at(json_object_get(after, r), "preset"), str_at(tr0, "preset"));
	assert_string_equal(str_at(json_object_get(after, managed_mac), "preset"),
			    str_at(tm0, "preset"));
	newest = ts_api_get(&S, "/api/actions?limit=1");
	assert_int_equal(int_at(json_array_get(json_object_get(newest, "actions"), 0), "id"),
			 last_id);
	json_decref(newest);
	json_decref(before);
	json_decref(after);
	json_decref(tr0);
	json_decref(tm0);

	/* No limit for what follows. */
	assert_int_equal(patch("/api/models/" LIMIT_MODEL, "{\"max_preset\":null}"), 200);
	passed++;
}

/* ------------------------------------------------------------ 6. latency under load */

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static void test_latency_under_load(void **state)
{
	char macs[SAMPLES][18];
	long long lat[SAMPLES], ids[SAMPLES], sorted[SAMPLES];
	long long window0 = hive_wall_ms(), w0 = hive_mono_ms(), req0, req1;
	json_t *all, *m, *fleet;
	const char *mac;
	struct ids w;
	int fresh = 0;

	(void)state;
	fleet = ts_http(&S, "GET", S.admin, "/sim/fleet", NULL, false, NULL);
	req0 = int_at(fleet, "requests");
	json_decref(fleet);
	for (int i = 0; i < SAMPLES; i++) {
		int idx = pick(NULL, NULL, macs[i]);
		const json_t *r;
		long long c0, t0;
		long st = 0;

		if (idx < 0)
			FAIL("no miner left");
		r = json_array_get(roster, (size_t)idx);
		c0 = truth_int(macs[i], "settings_calls");
		t0 = hive_mono_ms();
		ids[i] = act(macs[i], "set_preset",
			     other_preset(str_at(r, "model"), str_at(r, "preset")), &st);
		if (ids[i] <= 0)
			FAIL("set_preset on %s answered %ld", macs[i], st);
		while (truth_int(macs[i], "settings_calls") <= c0) {
			if (hive_mono_ms() - t0 > 5000)
				FAIL("%s: no POST /settings within 5 s of the request", macs[i]);
			tl_sleep_ms(2);
		}
		lat[i] = hive_mono_ms() - t0;
		tl_sleep_ms(150);
	}
	/* The window spans two status cycles at least. */
	if (hive_mono_ms() - w0 < 2 * STATUS_S * 1000 + 1000)
		tl_sleep_ms((int)(2 * STATUS_S * 1000 + 1000 - (hive_mono_ms() - w0)));
	fleet = ts_http(&S, "GET", S.admin, "/sim/fleet", NULL, false, NULL);
	req1 = int_at(fleet, "requests");
	json_decref(fleet);
	all = api_miners();
	json_object_foreach(all, mac, m)
		fresh += int_at(json_object_get(m, "status"), "ts") >= window0;
	json_decref(all);
	if (wait_final(ids, SAMPLES, (ACTION_TIMEOUT_S + 5) * 1000, &w) < 0)
		FAIL("%d of %d actions still open", w.open, SAMPLES);
	for (int i = 0; i < SAMPLES; i++) {
		json_t *a = action(ids[i]);

		assert_string_equal(str_at(a, "state"), "done");
		json_decref(a);
	}
	memcpy(sorted, lat, sizeof(lat));
	qsort(sorted, SAMPLES, sizeof(sorted[0]), cmp_ll);
	printf("figure: action latency under load p50=%lld max=%lld ms (request to minersim's "
	       "POST /settings, %d samples; %d of %d miners polled meanwhile, %.0f miner "
	       "requests/s)\n", sorted[SAMPLES / 2], sorted[SAMPLES - 1], SAMPLES, fresh, MINERS,
	       (double)(req1 - req0) * 1000.0 / (double)(hive_mono_ms() - w0));
	/* The status cycle really ran through the window. */
	assert_int_equal(fresh, MINERS);
	passed++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_bulk_set_preset),
		cmocka_unit_test(test_pollerd_killed),
		cmocka_unit_test(test_enforcer),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_latency_under_load),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
