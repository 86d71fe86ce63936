/* test_alerts — the alerts engine through real processes: apid, discoverd,
 * pollerd against minersim, and a webhook receiver (tests/lib/sink.h),
 * with short waits in the config (evaluate 1 s, for 2 s, group 2 s,
 * resolve 2 s, statuses every second):
 *   - a miner taken offline fires miner_offline, is notified once (signed,
 *     keyed), shows in /api/miners?alerting=1 and /metrics, and resolves
 *     (notified) once it answers again; the figures: time to fire and to
 *     notify;
 *   - meanwhile a miner flapping offline/online every 2 s raises nothing,
 *     a miner rebooted and one restarted by an action raise nothing
 *     (offline, hashrate_low) while the action is in flight;
 *   - the faults of the other miner rules (minersim's overheat,
 *     fan_stopped, chain_dead, hashrate_drop, red_chips), at once on five
 *     miners: each fires and resolves, one notification each way;
 *   - 100 miners offline at once: one notification with the 100 MACs and
 *     the counts by subnet and model, then one for their return;
 *   - a silence on a miner: its alert is recorded, marked silenced, not
 *     notified; after the silence expired the next one is; ack and the
 *     silence are audited with the actor;
 *   - hw_errors_high: minersim's hw_errors fault (500 errors a second) set
 *     while test 4 runs, so that apid's rate window of a minute (counted
 *     from apid's start) mostly elapses meanwhile: fires, is notified, and
 *     resolves once the fault is cleared (the counter starts over);
 *   - action_failed: a set_preset refused by the firmware (http500 on
 *     /settings) fires and is notified; the same action done once the
 *     firmware answers again resolves it;
 *   - preset_conflict: a managed miner whose firmware's preset switcher
 *     keeps raising it above the model's max_preset (one correction an
 *     hour allowed) is flagged conflict: fires and is notified. It does
 *     not resolve here: apid clears the flag only after an hour without a
 *     correction (docs/api.md);
 *   - apid stopped with an alert firing: not fired nor notified again;
 *     apid killed between a firing and its notification: notified after the
 *     restart. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <cmocka.h>

#include "../lib/sink.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET     "127.93.0.0/24"
#define MINERS     120
#define SECRET     "s3cret-hook-key"
#define WAIT_MS    20000

static struct ts_suite S;
static struct sink *K;
static char fleet[MINERS][18];
static int passed;

/* ------------------------------------------------------------ helpers */

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static long sim_fault(const char *mac, const char *kind)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"%s\"}", mac, kind);
	return ts_sim_post(&S, S.admin, "/sim/fault", body);
}

/* A fault with more members ("\"per_minute\":30000"). */
static long sim_fault_with(const char *mac, const char *kind, const char *more)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"%s\",%s}", mac, kind, more);
	return ts_sim_post(&S, S.admin, "/sim/fault", body);
}

static json_t *api_get(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *api_get(const char *fmt, ...)
{
	char path[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return ts_api_get(&S, path);
}

/* The alerts of mac (any state, newest first), the caller's. */
static json_t *alerts_of(const char *mac)
{
	json_t *j = api_get("/api/alerts?miner=%s&limit=100", mac);
	json_t *list = json_incref(json_object_get(j, "alerts"));

	json_decref(j);
	return list ? list : json_array();
}

/* The id of mac's alert of rule in state (NULL: any), 0 when none. */
static long long alert_id(const char *mac, const char *rule, const char *state)
{
	json_t *list = alerts_of(mac), *a;
	long long id = 0;
	size_t i;

	json_array_foreach(list, i, a) {
		if (strcmp(json_string_value(json_object_get(a, "rule")), rule) != 0)
			continue;
		if (state && strcmp(json_string_value(json_object_get(a, "state")), state) != 0)
			continue;
		id = json_integer_value(json_object_get(a, "id"));
		break;
	}
	json_decref(list);
	return id;
}

struct want_alert {
	const char *mac, *rule, *state;
	long long id;
};

static bool has_alert(void *arg)
{
	struct want_alert *w = arg;

	return (w->id = alert_id(w->mac, w->rule, w->state)) != 0;
}

/* Waits for mac's alert of rule in state; its id, or fails. */
static long long wait_alert(const char *mac, const char *rule, const char *state, int ms)
{
	struct want_alert w = { mac, rule, state, 0 };

	if (tl_wait_until(ms, has_alert, &w) < 0) {
		ts_dump_logs(&S, 30);
		fail_msg("no %s alert %s on %s within %d ms", state, rule, mac, ms);
	}
	return w.id;
}

static bool body_has_miner(json_t *b, const char *mac)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(b, "miners"), i, m)
		if (strcmp(json_string_value(m), mac) == 0)
			return true;
	return false;
}

/* The index of the first notification at or after from of rule and state
 * naming mac (NULL: any); -1 when none. */
static int find_note(int from, const char *rule, const char *state, const char *mac)
{
	for (int i = from; i < sink_count(K); i++) {
		json_t *b = sink_body(K, i);

		if (!b || strcmp(json_string_value(json_object_get(b, "rule")), rule) != 0 ||
		    strcmp(json_string_value(json_object_get(b, "state")), state) != 0)
			continue;
		if (!mac || body_has_miner(b, mac))
			return i;
	}
	return -1;
}

struct want_note {
	int from;
	const char *rule, *state, *mac;
	int at;
};

static bool has_note(void *arg)
{
	struct want_note *w = arg;

	return (w->at = find_note(w->from, w->rule, w->state, w->mac)) >= 0;
}

static int wait_note(int from, const char *rule, const char *state, const char *mac, int ms)
{
	struct want_note w = { from, rule, state, mac, -1 };

	if (tl_wait_until(ms, has_note, &w) < 0) {
		ts_dump_logs(&S, 30);
		fail_msg("no %s notification of %s for %s within %d ms", state, rule,
			 mac ? mac : "any miner", ms);
	}
	return w.at;
}

/* Notifications at or after from naming mac (any rule, state). */
static int notes_naming(int from, const char *mac)
{
	int n = 0;

	for (int i = from; i < sink_count(K); i++)
		n += body_has_miner(sink_body(K, i), mac);
	return n;
}

/* A notification's shape, its signature and its key. */
static void check_note(int i, const char *rule, const char *state)
{
	json_t *b = sink_body(K, i);
	char key[160];

	assert_non_null(b);
	assert_true(sink_verified(K, i));
	assert_string_equal(sink_path(K, i), "/hook");
	snprintf(key, sizeof(key), "%s/hook", json_string_value(json_object_get(b, "id")));
	assert_string_equal(sink_key(K, i), key);
	assert_string_equal(json_string_value(json_object_get(b, "rule")), rule);
	assert_string_equal(json_string_value(json_object_get(b, "state")), state);
	assert_true(json_string_length(json_object_get(b, "summary")) > 0);
	assert_int_equal(json_integer_value(json_object_get(b, "count")),
			 json_array_size(json_object_get(b, "alerts")));
	assert_true(json_integer_value(json_object_get(b, "started")) > 0);
	if (strcmp(state, "firing") == 0)
		assert_true(json_is_null(json_object_get(b, "ended")));
	else
		assert_true(json_integer_value(json_object_get(b, "ended")) >=
			    json_integer_value(json_object_get(b, "started")));
}

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* ------------------------------------------------------------ the stack */

static int stack_up(void **state)
{
	const char *sim_args[] = { "--seed", "93", "--models", "s19jpro",
				   "--tune-seconds", "1", "--tuned-seconds", "1",
				   "--start-seconds", "5", "--reboot-seconds", "6",
				   "--init-seconds", "1", NULL };
	json_t *roster, *m;
	long long t0 = hive_mono_ms();
	size_t i;

	(void)state;
	if (!(K = sink_start(SECRET)))
		return -1;
	if (ts_init(&S, "alerts") < 0)
		return -1;
	fprintf(stderr, "alerts: run directory %s\n", S.dir);
	if (ts_minersim(&S, SUBNET, MINERS, sim_args) < 0)
		goto fail;
	/* Every farm rule off: they are test_alerts_farm's, and a busy disk
	 * must not add notifications here. */
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"network\": {\"miner_probe_timeout_ms\": 1000, \"http_timeout_ms\": 1000},\n"
		     " \"intervals\": {\"discovery_seconds\": 3600, \"status_seconds\": 1,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		     " \"scheduler\": {\"job_timeout_seconds\": 2},\n"
		     " \"control\": {\"action_timeout_seconds\": 30, \"job_timeout_seconds\": 3,\n"
		     "   \"max_corrections_per_hour\": 1},\n"
		     " \"alerts\": {\"evaluate_seconds\": 1, \"group_seconds\": 2,\n"
		     "   \"resolve_seconds\": 2, \"retry_max_seconds\": 2,\n"
		     "   \"rules\": {\"miner_offline\": {\"for_seconds\": 2},\n"
		     "     \"hashrate_low\": {\"threshold\": 50, \"for_seconds\": 2},\n"
		     "     \"chip_temp_high\": {\"threshold\": 95, \"for_seconds\": 2},\n"
		     "     \"fan_stopped\": {\"for_seconds\": 2}, \"chain_dead\": {\"for_seconds\": 2},\n"
		     "     \"red_chips\": {\"threshold\": 12, \"for_seconds\": 2},\n"
		     "     \"hw_errors_high\": {\"for_seconds\": 2},\n"
		     "     \"power_over_available\": {\"enabled\": false},\n"
		     "     \"feed_stale\": {\"enabled\": false}, \"power_fallback\": {\"enabled\": false},\n"
		     "     \"daemon_missing\": {\"enabled\": false}, \"bus_loss\": {\"enabled\": false},\n"
		     "     \"db_write_failed\": {\"enabled\": false}, \"disk_low\": {\"enabled\": false}},\n"
		     "   \"channels\": [{\"name\": \"hook\", \"kind\": \"webhook\",\n"
		     "     \"url\": \"http://127.0.0.1:%d/hook\", \"secret\": \"%s\"}]}}",
		     sink_http_port(K), SECRET) < 0)
		goto fail;
	if (!ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		goto fail;
	if (!ts_token(&S) || ts_wait_miners(&S, MINERS, 60000) < 0)
		goto fail;
	roster = ts_sim_get(&S, S.admin, "/sim/miners");
	if (json_array_size(roster) != MINERS) {
		json_decref(roster);
		goto fail;
	}
	json_array_foreach(roster, i, m) {
		snprintf(fleet[i], sizeof(fleet[i]), "%s",
			 json_string_value(json_object_get(m, "mac")));
		lower(fleet[i]);
	}
	json_decref(roster);
	printf("figure: alerts: %d miners polled after %lld ms\n", MINERS, hive_mono_ms() - t0);
	return 0;
fail:
	ts_down(&S, true);
	sink_stop(K);
	K = NULL;
	return -1;
}

#define NTESTS 8

static int stack_down(void **state)
{
	(void)state;
	ts_down(&S, passed != NTESTS);
	if (K)
		sink_stop(K);
	return 0;
}

/* ------------------------------------------------------------ 2: the rules' faults */

/* minersim's faults for the other miner rules (docs/minersim.md), all at
 * once on five miners (each rule is its own notification). */
static const struct {
	const char *kind, *rule;
} faults[] = {
		{ "overheat", "chip_temp_high" },        /* 100 °C */
		{ "fan_stopped", "fan_stopped" },        /* fan 1 at 0 rpm */
		{ "chain_dead", "chain_dead" },          /* board 1 in failure */
		{ "hashrate_drop", "hashrate_low" },     /* 30 % of its hashrate */
		{ "red_chips", "red_chips" },            /* 20 more red chips on board 1 */
};
#define NF (sizeof(faults) / sizeof(faults[0]))
static int faults_base;           /* sink_count when they were set */
static long long faults_wall;

/* When the first notification of rule and state delivered since after_ms
 * (wall clock) was delivered, from the outbox (GET /api/notifications);
 * 0 when none. */
static long long delivered_ms(const char *rule, const char *state, long long after_ms)
{
	json_t *j = api_get("/api/notifications?status=delivered&limit=200"), *n;
	long long best = 0;
	size_t i;

	json_array_foreach(json_object_get(j, "notifications"), i, n) {
		long long d = int_at(n, "delivered");

		if (strcmp(json_string_value(json_object_get(n, "rule")), rule) == 0 &&
		    strcmp(json_string_value(json_object_get(n, "state")), state) == 0 &&
		    d >= after_ms && (!best || d < best))
			best = d;
	}
	json_decref(j);
	return best;
}

/* Sets the faults (test 1 does, so that their waits overlap with its own). */
static void faults_set(void)
{
	faults_base = sink_count(K);
	faults_wall = hive_wall_ms();
	for (size_t f = 0; f < NF; f++)
		assert_int_equal(sim_fault(fleet[6 + f], faults[f].kind), 200);
}

static void test_rule_faults(void **state)
{
	int base = faults_base, done = 0;
	long long wall;

	(void)state;
	for (size_t f = 0; f < NF; f++) {
		int at;

		wait_alert(fleet[6 + f], faults[f].rule, "firing", WAIT_MS);
		at = wait_note(base, faults[f].rule, "firing", fleet[6 + f], WAIT_MS);
		printf("figure: alerts: %s notified %lld ms after fault %s (delivered)\n",
		       faults[f].rule, delivered_ms(faults[f].rule, "firing", faults_wall) -
		       faults_wall, faults[f].kind);
		check_note(at, faults[f].rule, "firing");
		/* Nothing else on that miner: the fault is what the rule sees. */
		assert_int_equal(notes_naming(base, fleet[6 + f]), 1);
	}
	wall = hive_wall_ms();
	for (size_t f = 0; f < NF; f++)
		assert_int_equal(sim_fault(fleet[6 + f], "none"), 200);
	for (size_t f = 0; f < NF; f++) {
		int at;

		wait_alert(fleet[6 + f], faults[f].rule, "resolved", WAIT_MS);
		at = wait_note(base, faults[f].rule, "resolved", fleet[6 + f], WAIT_MS);
		printf("figure: alerts: %s resolved and notified %lld ms after the fault cleared"
		       " (delivered)\n", faults[f].rule,
		       delivered_ms(faults[f].rule, "resolved", wall) - wall);
		check_note(at, faults[f].rule, "resolved");
		done++;
	}
	printf("figure: alerts: %d of %d fault rules tested\n", done, (int)NF);
	passed++;
}

/* ------------------------------------------------------------ 1: one miner */

static atomic_bool flapping;

/* Offline 2 s, online 2 s, ... while flapping. */
static void *flapper(void *arg)
{
	const char *mac = arg;
	bool off = false;

	while (atomic_load(&flapping)) {
		off = !off;
		sim_fault(mac, off ? "offline" : "none");
		for (int i = 0; i < 20 && atomic_load(&flapping); i++)
			tl_sleep_ms(100);
	}
	sim_fault(mac, "none");
	return NULL;
}

/* POSTs an action; its id. */
static long long act(const char *mac, const char *action)
{
	char path[96], body[64];
	long st = 0;
	json_t *j;
	long long id;

	snprintf(path, sizeof(path), "/api/miners/%s/actions", mac);
	snprintf(body, sizeof(body), "{\"action\":\"%s\"}", action);
	j = ts_api(&S, "POST", path, body, &st);
	if (st != 201 && st != 200 && st != 202)
		fail_msg("%s on %s: status %ld", action, mac, st);
	id = int_at(json_object_get(j, "action"), "id");
	json_decref(j);
	assert_true(id > 0);
	return id;
}

struct want_action {
	long long id;
	const char *state;
};

static bool action_in(void *arg)
{
	struct want_action *w = arg;
	json_t *j = api_get("/api/actions/%lld", w->id);
	const char *st = json_string_value(json_object_get(json_object_get(j, "action"), "state"));
	bool ok = st && strcmp(st, w->state) == 0;

	json_decref(j);
	return ok;
}

static bool metrics_line(const char *line)
{
	char *body = NULL, url[128];
	const char *hdr[] = { S.auth, NULL };
	long st = 0;
	bool ok;

	snprintf(url, sizeof(url), "%s/metrics", S.api);
	if (tl_http("GET", url, hdr, NULL, &body, &st) < 0 || st != 200) {
		free(body);
		return false;
	}
	ok = strstr(body, line) != NULL;
	free(body);
	return ok;
}

static void test_offline_one(void **state)
{
	const char *a = fleet[0], *flap = fleet[1], *reboot = fleet[2], *restart = fleet[3];
	struct want_action wr, wh;
	pthread_t th;
	long long t0, id, t_fire, t_note;
	int base = sink_count(K), at, n;
	json_t *j, *m;
	size_t i;
	bool listed = false;
	char body[160];
	long st;

	(void)state;
	/* PowerHive's own actions first: a reboot (gone for 6 s) and a
	 * restart (hashing nothing for 5 s). */
	wr.id = act(reboot, "reboot");
	wh.id = act(restart, "restart");
	atomic_store(&flapping, true);
	assert_int_equal(pthread_create(&th, NULL, flapper, (void *)flap), 0);

	faults_set();     /* test 2's, meanwhile on other miners */
	t0 = hive_mono_ms();
	assert_int_equal(sim_fault(a, "offline"), 200);
	id = wait_alert(a, "miner_offline", "firing", WAIT_MS);
	t_fire = hive_mono_ms() - t0;
	at = wait_note(base, "miner_offline", "firing", a, WAIT_MS);
	t_note = hive_mono_ms() - t0;
	printf("figure: alerts: miner_offline fired %lld ms and notified %lld ms after the miner"
	       " went (for 2 s + 3 missed 1 s polls, group 2 s)\n", t_fire, t_note);
	check_note(at, "miner_offline", "firing");
	assert_int_equal(int_at(sink_body(K, at), "count"), 1);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(sink_body(K, at),
									    "alerts"), 0)), id);

	/* The miners list: its filter and count; the metric. */
	j = api_get("/api/miners?alerting=1&limit=1000");
	json_array_foreach(json_object_get(j, "miners"), i, m) {
		assert_true(int_at(m, "alerts_firing") >= 1);
		if (strcmp(json_string_value(json_object_get(m, "id")), a) == 0)
			listed = true;
	}
	json_decref(j);
	assert_true(listed);
	j = api_get("/api/miners/%s", fleet[5]);
	assert_int_equal(int_at(json_object_get(j, "miner") ? json_object_get(j, "miner") : j,
				"alerts_firing"), 0);
	json_decref(j);
	assert_true(metrics_line("powerhive_alerts_firing{rule=\"miner_offline\"} 1\n"));
	/* A bulk action's filter takes alerting too: with it the miner is
	 * matched (and refused for a preset no catalogue has, so that nothing
	 * is queued); without an alert firing nothing is. */
	snprintf(body, sizeof(body), "{\"filter\":{\"alerting\":true,\"q\":\"%s\"},"
		 "\"action\":\"set_preset\",\"preset\":\"12345\"}", a);
	j = ts_api(&S, "POST", "/api/actions", body, &st);
	assert_int_equal(st, 202);
	assert_int_equal(json_array_size(json_object_get(j, "actions")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "refused")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(j, "refused"), 0), "miner")), a);
	assert_int_equal(int_at(json_array_get(json_object_get(j, "refused"), 0), "status"), 400);
	json_decref(j);
	snprintf(body, sizeof(body), "{\"filter\":{\"alerting\":false,\"q\":\"%s\"},"
		 "\"action\":\"set_preset\",\"preset\":\"12345\"}", a);
	j = ts_api(&S, "POST", "/api/actions", body, &st);
	assert_int_equal(st, 202);
	assert_int_equal(json_array_size(json_object_get(j, "actions")) +
			 json_array_size(json_object_get(j, "refused")), 0);
	json_decref(j);

	t0 = hive_mono_ms();
	assert_int_equal(sim_fault(a, "none"), 200);
	wait_alert(a, "miner_offline", "resolved", WAIT_MS);
	at = wait_note(base, "miner_offline", "resolved", a, WAIT_MS);
	printf("figure: alerts: miner_offline resolved and notified %lld ms after the miner came"
	       " back (resolve 2 s, group 2 s)\n", hive_mono_ms() - t0);
	check_note(at, "miner_offline", "resolved");

	/* The actions done, the flapper stopped: none of them raised anything. */
	wr.state = wh.state = "done";
	if (tl_wait_until(WAIT_MS, action_in, &wr) < 0 || tl_wait_until(WAIT_MS, action_in, &wh) < 0)
		fail_msg("reboot or restart not done");
	atomic_store(&flapping, false);
	pthread_join(th, NULL);
	tl_sleep_ms(2000);
	for (int k = 1; k <= 3; k++) {
		json_t *list = alerts_of(fleet[k]);

		if (json_array_size(list) != 0)
			fail_msg("%s (%s) has %zu alerts, the first %s", fleet[k],
				 k == 1 ? "flapping" : k == 2 ? "rebooted" : "restarted",
				 json_array_size(list),
				 json_string_value(json_object_get(json_array_get(list, 0), "summary")));
		json_decref(list);
		assert_int_equal(notes_naming(base, fleet[k]), 0);
	}
	/* One firing and one resolved notification of miner_offline, nothing
	 * else (the faults of test 2 are other rules). */
	n = 0;
	for (int x = base; x < sink_count(K); x++)
		n += strcmp(json_string_value(json_object_get(sink_body(K, x), "rule")),
			    "miner_offline") == 0;
	assert_int_equal(n, 2);
	passed++;
}

/* ------------------------------------------------------------ 3: 100 at once */

struct want_firing {
	int n;
	int got;
};

static bool firing_offline(void *arg)
{
	struct want_firing *w = arg;
	json_t *j = api_get("/api/alerts?state=firing&rule=miner_offline&limit=1");

	/* A rule with nothing firing is not listed. */
	w->got = (int)json_integer_value(json_object_get(json_object_get(j, "firing_by_rule"),
							 "miner_offline"));
	json_decref(j);
	return w->got == w->n;
}

static void test_hundred_grouped(void **state)
{
	int base = sink_count(K), at, firing_notes = 0, resolved_notes = 0;
	struct want_firing w = { 100, 0 };
	long long t0 = hive_mono_ms(), t_note;
	json_t *b, *g;
	const char *k;
	json_int_t sum = 0;

	(void)state;
	for (int i = 20; i < 120; i++)
		assert_int_equal(sim_fault(fleet[i], "offline"), 200);
	if (tl_wait_until(WAIT_MS, firing_offline, &w) < 0)
		fail_msg("%d of 100 miner_offline alerts firing", w.got);
	at = wait_note(base, "miner_offline", "firing", NULL, WAIT_MS);
	t_note = hive_mono_ms() - t0;
	tl_sleep_ms(3000);   /* a second group would have closed by now */
	for (int i = base; i < sink_count(K); i++)
		firing_notes += strcmp(json_string_value(json_object_get(sink_body(K, i), "state")),
				       "firing") == 0;
	b = sink_body(K, at);
	printf("figure: alerts: 100 miners offline -> %d notification(s), %lld miners in the"
	       " first, %lld ms after they went: %s\n", firing_notes, int_at(b, "count"), t_note,
	       json_string_value(json_object_get(b, "summary")));
	assert_int_equal(firing_notes, 1);
	check_note(at, "miner_offline", "firing");
	assert_int_equal(int_at(b, "count"), 100);
	assert_int_equal(json_array_size(json_object_get(b, "miners")), 100);
	for (int i = 20; i < 120; i++)
		assert_true(body_has_miner(b, fleet[i]));
	g = json_object_get(json_object_get(b, "groups"), "subnet");
	assert_int_equal(json_object_size(g), 1);
	assert_int_equal(json_integer_value(json_object_get(g, SUBNET)), 100);
	json_object_foreach(json_object_get(json_object_get(b, "groups"), "model"), k, g)
		sum += json_integer_value(g);
	assert_int_equal(sum, 100);
	assert_non_null(strstr(json_string_value(json_object_get(b, "summary")), "100 miners"));

	t0 = hive_mono_ms();
	assert_int_equal(ts_sim_post(&S, S.admin, "/sim/reset", "{}"), 200);
	w.n = 0;
	if (tl_wait_until(WAIT_MS, firing_offline, &w) < 0)
		fail_msg("%d miner_offline alerts still firing", w.got);
	at = wait_note(base, "miner_offline", "resolved", NULL, WAIT_MS);
	tl_sleep_ms(3000);
	for (int i = base; i < sink_count(K); i++)
		resolved_notes += strcmp(json_string_value(json_object_get(sink_body(K, i), "state")),
					 "resolved") == 0;
	printf("figure: alerts: their return -> %d notification(s) (%lld ms)\n", resolved_notes,
	       hive_mono_ms() - t0);
	assert_int_equal(resolved_notes, 1);
	check_note(at, "miner_offline", "resolved");
	assert_int_equal(int_at(sink_body(K, at), "count"), 100);
	passed++;
}

/* ------------------------------------------------------------ 4: silence, ack */

static void hw_set(void);

static bool silence_over(void *arg)
{
	long long id = *(long long *)arg;
	json_t *j = api_get("/api/silences");
	json_t *s;
	size_t i;
	bool listed = false;

	json_array_foreach(json_object_get(j, "silences"), i, s)
		listed |= int_at(s, "id") == id;
	json_decref(j);
	return !listed;
}

static bool audited(const char *action, const char *actor_prefix)
{
	json_t *j = api_get("/api/audit?limit=200"), *e;
	size_t i;
	bool found = false;

	json_array_foreach(json_object_get(j, "audit"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "action")), action) == 0 &&
		    strncmp(json_string_value(json_object_get(e, "actor")), actor_prefix,
			    strlen(actor_prefix)) == 0)
			found = true;
	json_decref(j);
	return found;
}

static void test_silence_ack(void **state)
{
	const char *mac = fleet[12];
	char body[200], path[96];
	long st = 0;
	long long sid, id, other;
	int base = sink_count(K);
	json_t *j, *a;

	(void)state;
	hw_set();           /* test 6's, meanwhile on another miner */
	snprintf(body, sizeof(body), "{\"miner\":\"%s\",\"seconds\":8,\"comment\":\"maintenance\"}",
		 mac);
	j = ts_api(&S, "POST", "/api/silences", body, &st);
	assert_int_equal(st, 201);
	sid = int_at(json_object_get(j, "silence"), "id");
	assert_true(json_is_true(json_object_get(json_object_get(j, "silence"), "active")));
	json_decref(j);
	/* Refusals: nothing to silence, an unknown rule, no end. */
	json_decref(ts_api(&S, "POST", "/api/silences", "{\"seconds\":5}", &st));
	assert_int_equal(st, 400);
	json_decref(ts_api(&S, "POST", "/api/silences", "{\"rule\":\"nope\",\"seconds\":5}", &st));
	assert_int_equal(st, 400);
	json_decref(ts_api(&S, "POST", "/api/silences", "{\"rule\":\"chain_dead\"}", &st));
	assert_int_equal(st, 400);

	assert_int_equal(sim_fault(mac, "offline"), 200);
	id = wait_alert(mac, "miner_offline", "firing", WAIT_MS);
	j = api_get("/api/alerts?miner=%s", mac);
	a = json_array_get(json_object_get(j, "alerts"), 0);
	assert_true(json_is_true(json_object_get(a, "silenced")));
	json_decref(j);

	/* Acknowledged, audited with the token's actor. */
	snprintf(path, sizeof(path), "/api/alerts/%lld/ack", id);
	j = ts_api(&S, "POST", path, NULL, &st);
	assert_int_equal(st, 200);
	assert_true(int_at(json_object_get(j, "alert"), "acked") > 0);
	assert_non_null(json_string_value(json_object_get(json_object_get(j, "alert"), "acked_by")));
	json_decref(j);
	json_decref(ts_api(&S, "POST", "/api/alerts/999999/ack", NULL, &st));
	assert_int_equal(st, 404);
	assert_true(audited("alert.ack", "bootstrap"));
	assert_true(audited("silence.create", "bootstrap"));

	assert_int_equal(sim_fault(mac, "none"), 200);
	wait_alert(mac, "miner_offline", "resolved", WAIT_MS);
	tl_sleep_ms(2500);
	assert_int_equal(notes_naming(base, mac), 0);

	/* A second silence, ended by DELETE (audited). */
	j = ts_api(&S, "POST", "/api/silences", "{\"rule\":\"fan_stopped\",\"seconds\":600}", &st);
	assert_int_equal(st, 201);
	other = int_at(json_object_get(j, "silence"), "id");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/silences/%lld", other);
	j = ts_api(&S, "DELETE", path, NULL, &st);
	assert_int_equal(st, 200);
	assert_false(json_is_true(json_object_get(json_object_get(j, "silence"), "active")));
	json_decref(j);
	assert_true(audited("silence.delete", "bootstrap"));

	/* Expired: the next alert goes out. */
	if (tl_wait_until(15000, silence_over, &sid) < 0)
		fail_msg("silence %lld still listed", sid);
	assert_int_equal(sim_fault(mac, "offline"), 200);
	wait_note(base, "miner_offline", "firing", mac, WAIT_MS);
	assert_int_equal(sim_fault(mac, "none"), 200);
	wait_note(base, "miner_offline", "resolved", mac, WAIT_MS);
	passed++;
}

/* ------------------------------------------------------------ 6-8: hw errors, actions, conflicts */

#define HW_MINER       fleet[16]
#define FAILING_MINER  fleet[17]
#define CONFLICT_MINER fleet[18]
#define LIMIT_PRESET   "3080"

static int hw_base, ctl_base;     /* sink_count when the fault / the control was set */
static long long hw_wall, ctl_wall;
static long long failed_id;       /* the refused set_preset */

/* test 4 sets it: apid's hardware-error rate is taken over a minute at
 * least, counted from its first sight of the miner (apid's start), so the
 * fault set ~45 s in shows at the first window's end, while test 4 runs.
 * 500 errors a second: even a second of it in a window is over 100 a
 * minute. */
static void hw_set(void)
{
	hw_base = sink_count(K);
	hw_wall = hive_wall_ms();
	assert_int_equal(sim_fault_with(HW_MINER, "hw_errors", "\"per_minute\":30000"), 200);
}

static long long act_body(const char *mac, const char *body)
{
	char path[96];
	long st = 0;
	json_t *j;
	long long id;

	snprintf(path, sizeof(path), "/api/miners/%s/actions", mac);
	j = ts_api(&S, "POST", path, body, &st);
	if (st != 201 && st != 200 && st != 202)
		fail_msg("%s on %s: status %ld", body, mac, st);
	id = int_at(json_object_get(j, "action"), "id");
	json_decref(j);
	assert_true(id > 0);
	return id;
}

static long api_patch(const char *path, const char *body)
{
	long st = 0;

	json_decref(ts_api(&S, "PATCH", path, body, &st));
	return st;
}

/* The action that fails and the conflict, set at the start of test 6 so
 * that their waits overlap with its own. */
static void control_set(void)
{
	char path[96];

	ctl_base = sink_count(K);
	ctl_wall = hive_wall_ms();
	/* the firmware refuses the preset (and only that) */
	assert_int_equal(sim_fault_with(FAILING_MINER, "http500", "\"endpoints\":[\"settings\"]"),
			 200);
	failed_id = act_body(FAILING_MINER, "{\"action\":\"set_preset\",\"preset\":\"2500\"}");
	/* managed, under a limit its firmware's switcher keeps going over */
	snprintf(path, sizeof(path), "/sim/miners/%s/preset", CONFLICT_MINER);
	assert_int_equal(ts_sim_post(&S, S.admin, path, "{\"preset\":\"2970\",\"by\":\"web\"}"),
			 200);
	snprintf(path, sizeof(path), "/api/miners/%s", CONFLICT_MINER);
	assert_int_equal(api_patch(path, "{\"managed\":true}"), 200);
	assert_int_equal(api_patch("/api/models/s19jpro", "{\"max_preset\":\"" LIMIT_PRESET "\"}"),
			 200);
	snprintf(path, sizeof(path), "/sim/miners/%s/switcher", CONFLICT_MINER);
	assert_int_equal(ts_sim_post(&S, S.admin, path, "{\"enabled\":true,\"top_preset\":\"4110\","
				     "\"check_time\":1}"), 200);
}

/* The alert id of mac (any state), a new reference or NULL. */
static json_t *alert_obj(const char *mac, long long id)
{
	json_t *list = alerts_of(mac), *a, *found = NULL;
	size_t i;

	json_array_foreach(list, i, a)
		if (int_at(a, "id") == id)
			found = json_incref(a);
	json_decref(list);
	return found;
}

static void test_hw_errors(void **state)
{
	const char *mac = HW_MINER;
	long long id, wall, t0 = hive_mono_ms();
	int at;
	json_t *a;

	(void)state;
	control_set();      /* tests 7 and 8's */
	/* up to a window of a minute and for_seconds after the fault */
	id = wait_alert(mac, "hw_errors_high", "firing", 75000);
	at = wait_note(hw_base, "hw_errors_high", "firing", mac, WAIT_MS);
	printf("figure: alerts: hw_errors_high notified %lld ms after fault hw_errors (delivered;"
	       " the rate is taken over apid's window of a minute), waited %lld ms for it here\n",
	       delivered_ms("hw_errors_high", "firing", hw_wall) - hw_wall, hive_mono_ms() - t0);
	check_note(at, "hw_errors_high", "firing");
	assert_non_null(a = alert_obj(mac, id));
	printf("figure: alerts: hw_errors_high value %.0f a minute (threshold %.0f): %s\n",
	       json_number_value(json_object_get(a, "value")),
	       json_number_value(json_object_get(a, "threshold")),
	       json_string_value(json_object_get(a, "summary")));
	assert_true(json_number_value(json_object_get(a, "threshold")) == 100);
	assert_true(json_number_value(json_object_get(a, "value")) > 100);
	json_decref(a);
	assert_int_equal(notes_naming(hw_base, mac), 1);

	/* Cleared: the firmware's counter starts over, the rate is unknown
	 * until a new window: resolved. */
	wall = hive_wall_ms();
	assert_int_equal(sim_fault(mac, "none"), 200);
	wait_alert(mac, "hw_errors_high", "resolved", WAIT_MS);
	at = wait_note(hw_base, "hw_errors_high", "resolved", mac, WAIT_MS);
	printf("figure: alerts: hw_errors_high resolved and notified %lld ms after the fault cleared"
	       " (delivered)\n", delivered_ms("hw_errors_high", "resolved", wall) - wall);
	check_note(at, "hw_errors_high", "resolved");
	assert_int_equal(notes_naming(hw_base, mac), 2);
	passed++;
}

static void test_action_failed(void **state)
{
	const char *mac = FAILING_MINER;
	struct want_action w = { failed_id, "failed" };
	long long id, wall;
	int at;
	json_t *a;

	(void)state;
	if (tl_wait_until(WAIT_MS, action_in, &w) < 0)
		fail_msg("set_preset %lld on %s not failed", failed_id, mac);
	id = wait_alert(mac, "action_failed", "firing", WAIT_MS);
	at = wait_note(ctl_base, "action_failed", "firing", mac, WAIT_MS);
	printf("figure: alerts: action_failed notified %lld ms after a set_preset the firmware"
	       " refused (http500 on /settings; delivered)\n",
	       delivered_ms("action_failed", "firing", ctl_wall) - ctl_wall);
	check_note(at, "action_failed", "firing");
	assert_non_null(a = alert_obj(mac, id));
	assert_non_null(strstr(json_string_value(json_object_get(a, "summary")), "set_preset failed"));
	printf("figure: alerts: action_failed: %s\n", json_string_value(json_object_get(a, "summary")));
	json_decref(a);
	assert_int_equal(notes_naming(ctl_base, mac), 1);

	/* The firmware answers again, the same action is done: resolved. */
	wall = hive_wall_ms();
	assert_int_equal(sim_fault(mac, "none"), 200);
	w.id = act_body(mac, "{\"action\":\"set_preset\",\"preset\":\"2500\"}");
	w.state = "done";
	if (tl_wait_until(WAIT_MS, action_in, &w) < 0)
		fail_msg("set_preset %lld on %s not done", w.id, mac);
	wait_alert(mac, "action_failed", "resolved", WAIT_MS);
	at = wait_note(ctl_base, "action_failed", "resolved", mac, WAIT_MS);
	printf("figure: alerts: action_failed resolved and notified %lld ms after the fault cleared"
	       " and the action was sent again (delivered)\n",
	       delivered_ms("action_failed", "resolved", wall) - wall);
	check_note(at, "action_failed", "resolved");
	assert_int_equal(notes_naming(ctl_base, mac), 2);
	passed++;
}

static void test_preset_conflict(void **state)
{
	const char *mac = CONFLICT_MINER;
	char path[96];
	long long id;
	int at;
	json_t *a, *m;

	(void)state;
	id = wait_alert(mac, "preset_conflict", "firing", 40000);
	at = wait_note(ctl_base, "preset_conflict", "firing", mac, WAIT_MS);
	printf("figure: alerts: preset_conflict notified %lld ms after the miner was made managed"
	       " under max_preset " LIMIT_PRESET " with its switcher raising it (one correction an"
	       " hour allowed; delivered)\n",
	       delivered_ms("preset_conflict", "firing", ctl_wall) - ctl_wall);
	check_note(at, "preset_conflict", "firing");
	assert_non_null(a = alert_obj(mac, id));
	assert_non_null(strstr(json_string_value(json_object_get(a, "summary")), "preset conflict"));
	printf("figure: alerts: preset_conflict: %s\n", json_string_value(json_object_get(a, "summary")));
	json_decref(a);
	snprintf(path, sizeof(path), "/api/miners/%s", mac);
	m = api_get("%s", path);
	assert_true(json_is_object(json_object_get(json_object_get(m, "miner") ?
						   json_object_get(m, "miner") : m, "conflict")));
	json_decref(m);
	assert_int_equal(notes_naming(ctl_base, mac), 1);

	/* Left as it was; the flag (and the alert) stay for an hour. */
	snprintf(path, sizeof(path), "/sim/miners/%s/switcher", mac);
	assert_int_equal(ts_sim_post(&S, S.admin, path, "{\"enabled\":false}"), 200);
	snprintf(path, sizeof(path), "/api/miners/%s", mac);
	assert_int_equal(api_patch(path, "{\"managed\":false}"), 200);
	assert_int_equal(api_patch("/api/models/s19jpro", "{\"max_preset\":null}"), 200);
	passed++;
}

/* ------------------------------------------------------------ 5: restarts */

static bool alert_exists(void *arg)
{
	const char *mac = arg;

	return alert_id(mac, "miner_offline", "firing") != 0;
}

static void test_restart_safe(void **state)
{
	const char *t = fleet[14], *u = fleet[15];
	long long id, id2;
	int base, n;

	(void)state;
	/* Firing and notified, then apid stops and starts: the same alert,
	 * no second notification. */
	base = sink_count(K);
	assert_int_equal(sim_fault(t, "offline"), 200);
	id = wait_alert(t, "miner_offline", "firing", WAIT_MS);
	wait_note(base, "miner_offline", "firing", t, WAIT_MS);
	assert_int_equal(ts_stop(&S, "apid", SIGTERM, 10000), 0);
	assert_non_null(ts_start(&S, "apid", NULL, NULL, NULL));
	assert_int_equal(ts_wait_healthy(&S, 20000), 0);
	tl_sleep_ms(3000);
	id2 = alert_id(t, "miner_offline", "firing");
	assert_int_equal(id2, id);
	n = 0;
	for (int i = base; i < sink_count(K); i++)
		n += body_has_miner(sink_body(K, i), t);
	assert_int_equal(n, 1);

	/* Fired but not yet notified when apid is killed: notified after. */
	base = sink_count(K);
	assert_int_equal(sim_fault(u, "offline"), 200);
	if (tl_wait_until(WAIT_MS, alert_exists, (void *)u) < 0)
		fail_msg("no alert on %s", u);
	kill(ts_pid(&S, "apid"), SIGKILL);
	ts_stop(&S, "apid", SIGKILL, 5000);
	if (find_note(base, "miner_offline", "firing", u) >= 0)
		printf("figure: alerts: the notification of %s left before the kill\n", u);
	assert_non_null(ts_start(&S, "apid", NULL, NULL, NULL));
	wait_note(base, "miner_offline", "firing", u, WAIT_MS);

	assert_int_equal(sim_fault(t, "none"), 200);
	assert_int_equal(sim_fault(u, "none"), 200);
	wait_note(base, "miner_offline", "resolved", t, WAIT_MS);
	wait_note(base, "miner_offline", "resolved", u, WAIT_MS);
	assert_int_equal(alert_id(t, "miner_offline", "resolved"), id);
	passed++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_one),
		cmocka_unit_test(test_rule_faults),
		cmocka_unit_test(test_hundred_grouped),
		cmocka_unit_test(test_silence_ack),
		cmocka_unit_test(test_hw_errors),
		cmocka_unit_test(test_action_failed),
		cmocka_unit_test(test_preset_conflict),
		cmocka_unit_test(test_restart_safe),
	};

	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
