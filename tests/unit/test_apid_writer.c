/* test_apid_writer — the writer thread against a real database file:
 * batching by count and by time, the last_status_id pointer, every event
 * body and its rejections, PATCHes and other requests, the status hook,
 * and retention in small steps (test_apid_history.c covers the roll-ups
 * and retention by size). Events
 * are handed to the writer as the receive thread would (decoded
 * envelopes); test_apid_parts.c covers the bus side. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../apid/apply.h"
#include "../../apid/chips.h"
#include "../../apid/event.h"
#include "../../apid/secrets.h"
#include "../../apid/traffic.h"
#include "../../apid/store.h"
#include "../../apid/writer.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"
#include "../lib/testlib.h"

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

struct fx {
	char *dir;
	char path[1024];
	struct apid_traffic *in;
	struct apid_writer *w;
	struct apid_source *src;
	unsigned long long seq;
	uint64_t pushed;
	sqlite3 *ro;
};

static struct apid_writer_opts opts(struct fx *f)
{
	struct apid_writer_opts o = {
		.db_path = f->path, .batch_max = 100, .batch_ms = 50, .queue_max = 4096,
		.status_raw_hours = 6, .telemetry_raw_hours = 6, .minute_days = 7,
		.status_days = 365, .telemetry_days = 7, .audit_days = 365, .prune_batch = 2000,
		.prune_every_ms = 60000, .traffic = f->in,
	};
	return o;
}

static void start(struct fx *f, const struct apid_writer_opts *o)
{
	char err[512] = "";

	f->w = apid_writer_start(o, err, sizeof(err));
	if (!f->w)
		fail_msg("writer: %s", err);
	f->ro = apid_store_open_readonly(f->path, err, sizeof(err));
	assert_non_null(f->ro);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct apid_writer_opts o;

	f->dir = tl_tmpdir("writer");
	snprintf(f->path, sizeof(f->path), "%s/ph.db", f->dir);
	f->in = apid_traffic_new();
	f->src = apid_traffic_source(f->in, "test/host/1");
	o = opts(f);
	start(f, &o);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sqlite3_close(f->ro);
	apid_writer_stop(f->w);
	apid_traffic_free(f->in);
	tl_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Decodes env and queues it, or counts it refused, as the receive thread
 * does (ingest.c). */
static void push_env(struct fx *f, struct hive_envelope *env)
{
	struct apid_event ev;
	enum apid_reject why;
	char err[256];

	if (apid_event_decode(env, &ev, &why, err, sizeof(err)) < 0) {
		apid_traffic_rejected(f->in, f->src, why);
		hive_envelope_clear(env);
		return;
	}
	assert_int_equal(apid_writer_push(f->w, env, &ev, f->src), 0);
	f->pushed++;
}

/* Queues one event as the receive thread would; body is JSON text. */
static void push_at(struct fx *f, const char *topic, long long ts, const char *body)
{
	struct hive_envelope env;
	json_error_t je;

	memset(&env, 0, sizeof(env));
	snprintf(env.topic, sizeof(env.topic), "%s", topic);
	snprintf(env.src, sizeof(env.src), "test/host/1");
	env.v = 1;
	env.boot = 1;
	env.seq = ++f->seq;
	env.ts = ts;
	env.body = json_loads(body, 0, &je);
	if (!env.body)
		fail_msg("bad test json: %s: %s", je.text, body);
	push_env(f, &env);
}

static void push(struct fx *f, const char *topic, const char *body)
{
	push_at(f, topic, hive_wall_ms(), body);
}

static void pushf(struct fx *f, const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pushf(struct fx *f, const char *topic, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	push(f, topic, buf);
}

static bool all_done(void *arg)
{
	struct fx *f = arg;
	struct apid_writer_stats s;

	apid_writer_get_stats(f->w, &s);
	return s.stored + s.rejected == f->pushed && s.depth == 0;
}

/* Waits until every pushed event was committed or rejected. */
static void settle(struct fx *f)
{
	if (tl_wait_until(5000, all_done, f) < 0) {
		struct apid_writer_stats s;

		apid_writer_get_stats(f->w, &s);
		fail_msg("writer did not settle: pushed=%llu stored=%llu rejected=%llu depth=%zu",
			 (unsigned long long)f->pushed, (unsigned long long)s.stored,
			 (unsigned long long)s.rejected, s.depth);
	}
}

static long long qint(struct fx *f, const char *fmt, ...)
{
	char sql[1024];
	sqlite3_stmt *st;
	long long v = -999;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(f->ro, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(f->ro));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Text of a one-value query, "NULL" for NULL, malloc'd. */
static char *qtext(struct fx *f, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	assert_int_equal(sqlite3_prepare_v2(f->ro, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = strdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
						      : "NULL");
	sqlite3_finalize(st);
	assert_non_null(v);
	return v;
}

static void assert_text(struct fx *f, const char *sql, const char *want)
{
	char *got = qtext(f, sql);

	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", sql, got, want);
	free(got);
}

/* A secret column of the one miner: stored sealed, never as plaintext,
 * and it opens to want with the writer's key. */
static void assert_secret(struct fx *f, const char *column, const char *want)
{
	char sql[96], plain[APID_SECRET_MAX + 1], err[256], *stored, *mac;

	snprintf(sql, sizeof(sql), "SELECT %s FROM miners", column);
	stored = qtext(f, sql);
	mac = qtext(f, "SELECT mac FROM miners");
	assert_true(apid_secrets_sealed(stored));
	assert_null(strstr(stored, want));
	if (apid_secrets_reveal(apid_writer_secrets(f->w), column, mac, stored, plain,
				sizeof(plain), err, sizeof(err)) < 0)
		fail_msg("%s: %s", column, err);
	assert_string_equal(plain, want);
	/* Moved to the other column, it does not open. */
	assert_int_equal(apid_secrets_reveal(apid_writer_secrets(f->w),
					     strcmp(column, "api_key") == 0 ? "unlock_pass" : "api_key",
					     mac, stored, plain, sizeof(plain), err, sizeof(err)), -1);
	free(stored);
	free(mac);
}

static void seen(struct fx *f, const char *mac, const char *ip, const char *subnet)
{
	pushf(f, HIVE_TOPIC_MINER_SEEN,
	      "{\"mac\":\"%s\",\"ip\":\"%s\",\"subnet\":\"%s\",\"model\":\"s19\","
	      "\"miner\":\"Antminer S19\",\"fw_name\":\"vnish\",\"fw_version\":\"1.2.3\","
	      "\"hostname\":\"m\"}", mac, ip, subnet);
}

static void status(struct fx *f, const char *mac, long long job, long long ts)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"job\":%lld,\"mac\":\"%s\",\"ip\":\"127.0.0.1\",\"state\":\"mining\","
		 "\"state_time\":100,\"preset\":\"2620\",\"hr_realtime_ghs\":95000.5,"
		 "\"hr_average_ghs\":94000,\"hr_nominal_ghs\":95000,\"chip_temp_max\":71,"
		 "\"pcb_temp_max\":60,\"power_w\":3250,\"power_metered\":true,\"fan_duty\":80,"
		 "\"fans\":[5400,5500],\"hw_errors\":3,"
		 "\"chains\":[{\"id\":0,\"state\":\"mining\",\"hr_rt_ghs\":31000}],"
		 "\"pools\":{\"total\":3,\"working\":1,\"url\":\"stratum+tcp://127.0.0.1:3333\"}}",
		 job, mac);
	push_at(f, HIVE_TOPIC_STATUS_RESULT, ts, body);
}

static long long snap_int(struct fx *f, const char *key, const char *sub)
{
	json_t *s = apid_traffic_snapshot(f->in, hive_wall_ms());
	json_t *v = json_object_get(s, key);
	long long r;

	if (sub)
		v = json_object_get(v, sub);
	r = json_integer_value(v);
	json_decref(s);
	return r;
}

/* ------------------------------------------------------------ batching */

/* 2,000 statuses for 10 miners go in transactions of at most batch_max,
 * closed by count (batch_ms is long); each miner's pointer names its
 * newest status. */
static void test_batching_and_pointer(void **state)
{
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	struct apid_writer_stats s;
	char mac[32];
	long long t0;

	o.batch_ms = 1000;
	apid_writer_configure(f->w, &o);
	for (int m = 0; m < 10; m++) {
		snprintf(mac, sizeof(mac), "aa:bb:cc:00:00:%02x", m);
		seen(f, mac, "127.0.0.1", "127.0.0.0/24");
	}
	t0 = hive_mono_ms();
	for (int i = 0; i < 2000; i++) {
		snprintf(mac, sizeof(mac), "aa:bb:cc:00:00:%02x", i % 10);
		status(f, mac, 0, hive_wall_ms());
	}
	settle(f);
	apid_writer_get_stats(f->w, &s);
	assert_int_equal(s.stored, 2010);
	assert_int_equal(s.rejected, 0);
	assert_true(s.max_batch <= 100);
	assert_true(s.batches >= 21);
	/* Full batches do not wait for batch_ms: only the last one may. 21
	 * batches that each waited would take 20 s; half of that is the bound,
	 * so a loaded machine does not fail it. */
	assert_true(hive_mono_ms() - t0 < 10 * o.batch_ms);
	assert_int_equal(qint(f, "SELECT count(*) FROM statuses"), 2000);
	assert_int_equal(qint(f, "SELECT count(*) FROM miners m WHERE last_status_id ="
			      " (SELECT max(id) FROM statuses s WHERE s.mac=m.mac)"), 10);
	/* Every status column made it. */
	assert_text(f, "SELECT state || preset || power_w || power_metered || fans || hw_errors"
		       " FROM statuses LIMIT 1", "mining262032501[5400,5500]3");
	assert_text(f, "SELECT json_extract(pools, '$.working') || json_extract(chains, '$[0].id')"
		       " FROM statuses LIMIT 1", "10");
	assert_int_equal(snap_int(f, "stored", NULL), 2010);
}

/* The writer's own pace: statuses already queued, decoded and committed
 * in batches of 500 (what apid runs with). */
static void test_writer_rate(void **state)
{
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	const int n = 20000;
	struct hive_envelope *envs;
	char mac[32];
	long long t0, dt;

	o.batch_max = 500;
	o.batch_ms = 200;
	apid_writer_stop(f->w);
	sqlite3_close(f->ro);
	o.queue_max = (size_t)n + 100;
	start(f, &o);
	for (int m = 0; m < 100; m++) {
		snprintf(mac, sizeof(mac), "aa:bb:cc:00:01:%02x", m);
		seen(f, mac, "127.0.0.1", "127.0.0.0/24");
	}
	settle(f);
	/* Bodies parsed beforehand, as the receive thread hands them over. */
	envs = calloc((size_t)n, sizeof(*envs));
	for (int i = 0; i < n; i++) {
		char body[1024];

		snprintf(body, sizeof(body),
			 "{\"mac\":\"aa:bb:cc:00:01:%02x\",\"state\":\"mining\",\"state_time\":100,"
			 "\"preset\":\"2620\",\"hr_realtime_ghs\":95000.5,\"hr_average_ghs\":94000,"
			 "\"hr_nominal_ghs\":95000,\"chip_temp_max\":71,\"pcb_temp_max\":60,"
			 "\"power_w\":3250,\"power_metered\":true,\"fan_duty\":80,"
			 "\"fans\":[5400,5500,5400,5500],\"hw_errors\":3,\"chains\":["
			 "{\"id\":0,\"state\":\"mining\",\"hr_rt_ghs\":31000,\"freq_mhz\":525},"
			 "{\"id\":1,\"state\":\"mining\",\"hr_rt_ghs\":31000,\"freq_mhz\":525}],"
			 "\"pools\":{\"total\":3,\"working\":1,\"url\":\"stratum+tcp://127.0.0.1:3333\"}}",
			 i % 100);
		snprintf(envs[i].topic, sizeof(envs[i].topic), HIVE_TOPIC_STATUS_RESULT);
		snprintf(envs[i].src, sizeof(envs[i].src), "test/host/1");
		envs[i].seq = ++f->seq;
		envs[i].ts = hive_wall_ms();
		envs[i].body = json_loads(body, 0, NULL);
		assert_non_null(envs[i].body);
	}
	t0 = hive_mono_ms();
	for (int i = 0; i < n; i++) {
		push_env(f, &envs[i]);
	}
	settle(f);
	dt = hive_mono_ms() - t0;
	free(envs);
	printf("figure: apid writer statuses=%d batch_max=500 rate=%.0f/s (decode+insert+pointer)\n",
	       n, n * 1000.0 / (double)(dt > 0 ? dt : 1));
	fflush(stdout);
	assert_int_equal(qint(f, "SELECT count(*) FROM statuses"), n);
}

/* A lone event waits for batch_ms, not longer. */
static void test_batch_time(void **state)
{
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	long long t0, dt;

	o.batch_ms = 300;
	apid_writer_configure(f->w, &o);
	t0 = hive_mono_ms();
	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	settle(f);
	dt = hive_mono_ms() - t0;
	assert_true(dt >= 250);
	assert_true(dt < 2000);
	assert_int_equal(qint(f, "SELECT count(*) FROM miners"), 1);
}

/* ------------------------------------------------------------ rejections */

static void test_rejections(void **state)
{
	static const struct { const char *topic, *body; } bad[] = {
		{ HIVE_TOPIC_STATUS_RESULT, "{\"ip\":\"127.0.0.1\"}" },                 /* no mac */
		{ HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"nope\"}" },
		{ HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"power_w\":\"x\"}" },
		{ HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"chains\":{}}" },
		{ HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"fans\":[1,\"a\"]}" },
		{ HIVE_TOPIC_STATUS_RESULT, "[]" },
		{ HIVE_TOPIC_MINER_SEEN, "{\"mac\":\"aa:bb:cc:00:00:02\",\"ip\":\"127.0.0.300\"}" },
		{ HIVE_TOPIC_MINER_SEEN, "{\"mac\":\"aa:bb:cc:00:00:02\",\"ip\":\"127.0.0.3\","
					 "\"subnet\":\"127.0.0.1/24\"}" },
		{ HIVE_TOPIC_MINER_KEY, "{\"mac\":\"aa:bb:cc:00:00:01\",\"api_key\":\"\"}" },
		{ HIVE_TOPIC_MINER_ERROR, "{\"mac\":\"aa:bb:cc:00:00:01\",\"op\":\"dance\","
					  "\"kind\":\"timeout\"}" },
		{ HIVE_TOPIC_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"chains\":[{\"id\":0,"
					       "\"chips\":{\"hr\":[1,2],\"freq\":[1]}}]}" },
		{ HIVE_TOPIC_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"source\":\"x\","
					       "\"chains\":[]}" },
		{ HIVE_TOPIC_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"chains\":[{\"id\":0,"
					       "\"chips\":{\"hr\":[1,2],\"grade\":\"r\"}}]}" },
		{ HIVE_TOPIC_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[{\"name\":\"a\"},"
					      "{\"name\":\"a\"}]}" },
		{ HIVE_TOPIC_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[],\"topology\":"
					      "{\"rows\":2,\"cols\":1,\"chips\":[[1]]}}" },
		{ HIVE_TOPIC_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/24\",\"macs\":[\"zz\"]}" },
		{ HIVE_TOPIC_JOB_FAILED, "{\"mac\":\"aa:bb:cc:00:00:01\"}" },
		{ HIVE_TOPIC_HEARTBEAT, "{\"daemon\":\"x\",\"counters\":{\"a\":\"b\"}}" },
	};
	struct fx *f = *state;
	size_t n = sizeof(bad) / sizeof(bad[0]);

	for (size_t i = 0; i < n; i++)
		push(f, bad[i].topic, bad[i].body);
	push(f, "hive.something.else", "{}");
	/* Unknown miners: nothing references a miner that was never seen. */
	status(f, "aa:bb:cc:00:00:09", 0, hive_wall_ms());
	push(f, HIVE_TOPIC_MINER_KEY, "{\"mac\":\"aa:bb:cc:00:00:09\",\"api_key\":\"k\"}");
	push(f, HIVE_TOPIC_MINER_ERROR, "{\"mac\":\"aa:bb:cc:00:00:09\",\"op\":\"status\","
	     "\"kind\":\"timeout\"}");
	push(f, HIVE_TOPIC_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:00:00:09\",\"chains\":[]}");
	/* An error without a MAC is counted, not stored. */
	push(f, HIVE_TOPIC_MINER_ERROR, "{\"mac\":\"\",\"ip\":\"127.0.0.9\",\"op\":\"discover\","
	     "\"kind\":\"refused\"}");
	settle(f);
	assert_int_equal(snap_int(f, "rejected_by", "bad body"), (long long)n);
	assert_int_equal(snap_int(f, "rejected_by", "unknown topic"), 1);
	assert_int_equal(snap_int(f, "rejected_by", "unknown miner"), 4);
	assert_int_equal(snap_int(f, "rejected", NULL), (long long)n + 5);
	assert_int_equal(snap_int(f, "stored", NULL), 1);
	assert_int_equal(snap_int(f, "unattributed_errors", NULL), 1);
	assert_int_equal(qint(f, "SELECT (SELECT count(*) FROM miners) + (SELECT count(*) FROM"
			      " statuses) + (SELECT count(*) FROM models) + (SELECT count(*) FROM"
			      " telemetry) + (SELECT count(*) FROM miner_errors) + (SELECT count(*)"
			      " FROM sweeps)"), 0);
}

/* The decoder names the field that is wrong. */
static void test_decode_messages(void **state)
{
	static const struct { const char *topic, *body, *err; } cases[] = {
		{ HIVE_TOPIC_STATUS_RESULT, "{}", "mac: missing" },
		{ HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"hr_realtime_ghs\":\"x\"}",
		  "hr_realtime_ghs: expected number, got string" },
		{ HIVE_TOPIC_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"chains\":[{\"id\":0,"
		  "\"chips\":{\"hr\":[1],\"volt\":[1,2]}}]}",
		  "chains[0].chips.volt: expected 1 values, got 2" },
		{ HIVE_TOPIC_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[{\"name\":1}]}",
		  "presets[0].name: expected string, got integer" },
		{ HIVE_TOPIC_SWEEP_DONE, "{\"subnet\":\"x\",\"macs\":[]}", "subnet: not a CIDR" },
		{ "hive.x", "{}", "unknown topic" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hive_envelope env = { .v = 1 };
		struct apid_event ev;
		enum apid_reject why;
		char err[256] = "";

		snprintf(env.topic, sizeof(env.topic), "%s", cases[i].topic);
		env.body = json_loads(cases[i].body, 0, NULL);
		assert_int_equal(apid_event_decode(&env, &ev, &why, err, sizeof(err)), -1);
		if (!strstr(err, cases[i].err))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].err);
		json_decref(env.body);
	}
}

/* ------------------------------------------------------------ miners */

/* One record per MAC whatever its IPs do; a taken IP is taken away. */
static void test_seen_moves_and_swaps(void **state)
{
	struct fx *f = *state;
	uint64_t gen0 = apid_writer_roster_gen(f->w);

	seen(f, "AA:BB:CC:00:00:01", "127.0.0.11", "127.0.0.0/24");   /* upper case: same id */
	seen(f, "aa:bb:cc:00:00:02", "127.0.0.12", "127.0.0.0/24");
	settle(f);
	assert_true(apid_writer_roster_gen(f->w) > gen0);
	/* 01 moves onto 02's address: 02 is no longer there. */
	seen(f, "aa:bb:cc:00:00:01", "127.0.0.12", "127.0.0.0/24");
	settle(f);
	assert_int_equal(qint(f, "SELECT count(*) FROM miners"), 2);
	assert_text(f, "SELECT ip FROM miners WHERE mac='aa:bb:cc:00:00:01'", "127.0.0.12");
	assert_text(f, "SELECT coalesce(ip, 'NULL') || ' ' || last_ip || ' ' || online FROM miners"
		       " WHERE mac='aa:bb:cc:00:00:02'", "NULL 127.0.0.12 0");
	/* 02 shows up at 01's old address: swapped, each seen sets its own. */
	seen(f, "aa:bb:cc:00:00:02", "127.0.0.11", "127.0.0.0/24");
	settle(f);
	assert_text(f, "SELECT group_concat(mac || '=' || ip || '/' || online, ' ') FROM"
		       " (SELECT * FROM miners ORDER BY mac)",
		       "aa:bb:cc:00:00:01=127.0.0.12/1 aa:bb:cc:00:00:02=127.0.0.11/1");
	assert_text(f, "SELECT model || miner_name || fw_name || fw_version || hostname ||"
		       " subnet FROM miners LIMIT 1", "s19Antminer S19vnish1.2.3m127.0.0.0/24");
	assert_int_equal(qint(f, "SELECT count(*) FROM miners WHERE first_seen_ms > 0 AND"
			      " last_seen_ms >= first_seen_ms"), 2);
}

/* A sweep marks the subnet's miners it did not see offline: IP cleared,
 * last_ip kept; other subnets untouched. */
static void test_sweep_offline(void **state)
{
	struct fx *f = *state;
	json_t *snap, *sw;
	uint64_t gen;

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	seen(f, "aa:bb:cc:00:00:02", "127.0.0.2", "127.0.0.0/24");
	seen(f, "aa:bb:cc:00:00:03", "127.0.0.3", "127.0.0.0/24");
	seen(f, "aa:bb:cc:00:00:04", "127.0.1.4", "127.0.1.0/24");
	settle(f);
	gen = apid_writer_roster_gen(f->w);
	push(f, HIVE_TOPIC_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/24\",\"macs\":[\"AA:BB:CC:00:00:01\"],"
	     "\"started\":1000,\"duration_ms\":2500,\"probed\":254,\"answered\":1,\"miners\":1}");
	settle(f);
	assert_true(apid_writer_roster_gen(f->w) > gen);
	assert_text(f, "SELECT group_concat(mac || '=' || coalesce(ip, '-') || '/' || last_ip || '/'"
		       " || online, ' ') FROM (SELECT * FROM miners ORDER BY mac)",
		       "aa:bb:cc:00:00:01=127.0.0.1/127.0.0.1/1 aa:bb:cc:00:00:02=-/127.0.0.2/0 "
		       "aa:bb:cc:00:00:03=-/127.0.0.3/0 aa:bb:cc:00:00:04=127.0.1.4/127.0.1.4/1");
	assert_text(f, "SELECT subnet || ' ' || started_ms || ' ' || duration_ms || ' ' || probed"
		       " || ' ' || miners FROM sweeps", "127.0.0.0/24 1000 2500 254 1");
	snap = apid_traffic_snapshot(f->in, hive_wall_ms());
	sw = json_array_get(json_object_get(snap, "sweeps"), 0);
	assert_string_equal(json_string_value(json_object_get(sw, "subnet")), "127.0.0.0/24");
	assert_int_equal(json_integer_value(json_object_get(sw, "probed")), 254);
	json_decref(snap);
	/* Seen again: back online. */
	seen(f, "aa:bb:cc:00:00:02", "127.0.0.2", "127.0.0.0/24");
	settle(f);
	assert_int_equal(qint(f, "SELECT online FROM miners WHERE mac='aa:bb:cc:00:00:02'"), 1);
}

/* Keys, errors, and the results that clear their own kind of error. */
static void test_keys_and_errors(void **state)
{
	struct fx *f = *state;
	char big[3000];

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	push(f, HIVE_TOPIC_MINER_KEY, "{\"mac\":\"aa:bb:cc:00:00:01\",\"api_key\":\"s3cret-key\","
	     "\"created\":true}");
	push(f, HIVE_TOPIC_MINER_ERROR, "{\"mac\":\"aa:bb:cc:00:00:01\",\"ip\":\"127.0.0.1\","
	     "\"op\":\"status\",\"kind\":\"timeout\",\"http_status\":0,\"message\":\"no answer\"}");
	settle(f);
	assert_secret(f, "api_key", "s3cret-key");
	assert_text(f, "SELECT last_error || '/' || last_error_kind || '/' || last_error_op FROM miners",
		    "no answer/timeout/status");
	status(f, "aa:bb:cc:00:00:01", 0, hive_wall_ms());
	settle(f);
	assert_text(f, "SELECT coalesce(last_error, 'none') || coalesce(last_error_op, '') FROM miners",
		    "none");
	/* A telemetry error survives a status, and goes with a telemetry result. */
	push(f, HIVE_TOPIC_MINER_ERROR, "{\"mac\":\"aa:bb:cc:00:00:01\",\"op\":\"telemetry\","
	     "\"kind\":\"http\",\"http_status\":500}");
	status(f, "aa:bb:cc:00:00:01", 0, hive_wall_ms());
	settle(f);
	assert_text(f, "SELECT last_error_op || ' ' || last_error FROM miners", "telemetry http");
	push(f, HIVE_TOPIC_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:00:00:01\",\"chains\":[]}");
	settle(f);
	assert_int_equal(qint(f, "SELECT last_error_op IS NULL FROM miners"), 1);
	/* The history keeps every error; long messages are cut. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pushf(f, HIVE_TOPIC_MINER_ERROR, "{\"mac\":\"aa:bb:cc:00:00:01\",\"op\":\"control\","
	      "\"kind\":\"http\",\"message\":\"%s\"}", big);
	settle(f);
	assert_int_equal(qint(f, "SELECT count(*) FROM miner_errors"), 3);
	assert_int_equal(qint(f, "SELECT max(length(message)) FROM miner_errors"), 1024);
	assert_int_equal(qint(f, "SELECT http_status FROM miner_errors WHERE op='telemetry'"), 500);
}

static void test_telemetry_chips(void **state)
{
	struct fx *f = *state;
	sqlite3_stmt *st;
	json_t *chips;
	char *s;

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	push(f, HIVE_TOPIC_TELEMETRY_RESULT,
	     "{\"job\":7,\"mac\":\"aa:bb:cc:00:00:01\",\"source\":\"boards\",\"chains\":["
	     "{\"id\":0,\"state\":\"mining\",\"hr_realtime_ghs\":300.5,\"hr_nominal_ghs\":310,"
	     "\"freq\":525,\"chips\":{\"hr\":[100.25,100,100.25],\"freq\":[525,525,530],"
	     "\"volt\":[1300,1300,1310],\"temp\":[60.5,61,62],\"errs\":[0,1,2],"
	     "\"grade\":\"gor\",\"throttled\":\"001\"}},"
	     "{\"id\":1,\"chips\":{\"hr\":[1,2,3]}}]}");
	settle(f);
	assert_int_equal(qint(f, "SELECT count(*) FROM telemetry"), 2);
	assert_text(f, "SELECT telemetry_source FROM miners", "boards");
	assert_int_equal(qint(f, "SELECT last_telemetry_ms > 0 FROM miners"), 1);
	assert_int_equal(sqlite3_prepare_v2(f->ro, "SELECT n_chips, chips, chips_format FROM"
					    " telemetry WHERE chain=0", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	/* Packed columns: smaller than three 16-byte records. */
	assert_int_equal(sqlite3_column_int(st, 2), APID_CHIPS_PACKED);
	assert_true(sqlite3_column_bytes(st, 1) < 48);
	chips = apid_chips_json_any(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
				    APID_CHIPS_PACKED);
	s = json_dumps(chips, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(8));
	assert_string_equal(s, "{\"errs\":[0,1,2],\"freq\":[525,525,530],\"grade\":\"gor\","
			       "\"hr\":[100.25,100.0,100.25],\"temp\":[60.5,61.0,62.0],"
			       "\"throttled\":\"001\",\"volt\":[1300,1300,1310]}");
	free(s);
	json_decref(chips);
	sqlite3_finalize(st);
	/* A chain that sent hashrates only: grade unknown, not throttled. */
	assert_int_equal(sqlite3_prepare_v2(f->ro, "SELECT chips FROM telemetry WHERE chain=1", -1,
					    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	chips = apid_chips_json_any(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
				    APID_CHIPS_PACKED);
	s = json_dumps(chips, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"errs\":[0,0,0],\"freq\":[0,0,0],\"grade\":\"???\","
			       "\"hr\":[1.0,2.0,3.0],\"temp\":[0.0,0.0,0.0],\"throttled\":\"000\","
			       "\"volt\":[0,0,0]}");
	free(s);
	json_decref(chips);
	sqlite3_finalize(st);
}

/* ------------------------------------------------------------ models and PATCHes */

static void test_models_and_patches(void **state)
{
	struct fx *f = *state;
	char err[256];
	int http = 0;

	push(f, HIVE_TOPIC_MODEL_CATALOGUE,
	     "{\"model\":\"s19\",\"full_name\":\"Antminer S19\",\"fw_version\":\"1.2\","
	     "\"num_chains\":3,\"chips_per_chain\":76,"
	     "\"topology\":{\"rows\":1,\"cols\":2,\"chips\":[[0,-1]]},"
	     "\"presets\":[{\"name\":\"disabled\",\"order\":0},"
	     "{\"name\":\"2620\",\"pretty\":\"2620 watt ~ 95 TH\",\"watts\":2620,\"th\":95,"
	     "\"order\":1,\"tuned\":true},{\"name\":\"3000\",\"watts\":3000,\"th\":105}]}");
	settle(f);
	assert_text(f, "SELECT name || num_chains || chips_per_chain || topology FROM models",
		    "Antminer S19376{\"rows\":1,\"cols\":2,\"chips\":[[0,-1]]}");
	assert_text(f, "SELECT group_concat(name || ':' || coalesce(watts, '-') || ':' || tuned, ' ')"
		       " FROM (SELECT * FROM model_presets ORDER BY ord)",
		    "disabled:-:0 2620:2620:1 3000:3000:0");

	assert_int_equal(apid_writer_patch_model(f->w, "nope", "2620", "api", &http, err,
						 sizeof(err)), -1);
	assert_int_equal(http, 404);
	assert_int_equal(apid_writer_patch_model(f->w, "s19", "9999", "api", &http, err,
						 sizeof(err)), -1);
	assert_int_equal(http, 422);
	assert_non_null(strstr(err, "max_preset"));
	assert_int_equal(apid_writer_patch_model(f->w, "s19", "3000", "ops", &http, err,
						 sizeof(err)), 0);
	assert_text(f, "SELECT max_preset FROM models", "3000");
	assert_text(f, "SELECT actor || ' ' || action || ' ' || target || ' ' || detail FROM audit",
		    "ops model.patch s19 {\"max_preset\":\"3000\"}");

	/* A new catalogue replaces the presets; the limit is kept even though
	 * the firmware no longer offers it (logged). */
	push(f, HIVE_TOPIC_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[{\"name\":\"2620\"},"
	     "{\"name\":\"2800\"}]}");
	settle(f);
	assert_text(f, "SELECT group_concat(name, ' ') FROM (SELECT * FROM model_presets ORDER BY ord)",
		    "2620 2800");
	assert_text(f, "SELECT max_preset || ' ' || name FROM models", "3000 s19");
	assert_int_equal(apid_writer_patch_model(f->w, "s19", NULL, NULL, &http, err,
						 sizeof(err)), 0);
	assert_int_equal(qint(f, "SELECT max_preset IS NULL FROM models"), 1);
	assert_text(f, "SELECT actor || ' ' || detail FROM audit ORDER BY id DESC LIMIT 1",
		    "api {\"max_preset\":null}");
}

static void test_patch_miner(void **state)
{
	struct fx *f = *state;
	char err[256];
	int http = 0;
	uint64_t gen;

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	settle(f);
	gen = apid_writer_roster_gen(f->w);
	assert_int_equal(apid_writer_patch_miner(f->w, "aa:bb:cc:00:00:09", 1, NULL, "api", &http,
						 err, sizeof(err)), -1);
	assert_int_equal(http, 404);
	assert_int_equal(apid_writer_patch_miner(f->w, "not-a-mac", 1, NULL, "api", &http, err,
						 sizeof(err)), -1);
	assert_int_equal(http, 404);
	assert_int_equal(apid_writer_patch_miner(f->w, "aa:bb:cc:00:00:01", -1, "", "api", &http,
						 err, sizeof(err)), -1);
	assert_int_equal(http, 422);
	assert_int_equal(apid_writer_patch_miner(f->w, "aa:bb:cc:00:00:01", -1, NULL, "api", &http,
						 err, sizeof(err)), -1);
	assert_int_equal(http, 422);
	assert_int_equal(apid_writer_patch_miner(f->w, "AA:BB:CC:00:00:01", 1, "hunter2", "tok",
						 &http, err, sizeof(err)), 0);
	assert_text(f, "SELECT managed FROM miners", "1");
	assert_secret(f, "unlock_pass", "hunter2");
	assert_text(f, "SELECT actor || ' ' || target || ' ' || detail FROM audit",
		    "tok aa:bb:cc:00:00:01 {\"managed\":true,\"unlock_pass\":\"***\"}");
	assert_true(apid_writer_roster_gen(f->w) > gen);
	/* managed alone leaves the password */
	assert_int_equal(apid_writer_patch_miner(f->w, "aa:bb:cc:00:00:01", 0, NULL, "api", &http,
						 err, sizeof(err)), 0);
	assert_text(f, "SELECT managed FROM miners", "0");
	assert_secret(f, "unlock_pass", "hunter2");
}

/* ------------------------------------------------------------ requests */

/* A PATCH that then changes its mind: what it wrote must not survive. */
static int patch_then_refuse(struct apid_apply *a, void *arg, int *http_status, char *err,
			     size_t errlen)
{
	if (apid_apply_patch_miner(a, arg, http_status, err, errlen) < 0)
		return -1;      /* not 409: the test fails */
	*http_status = 409;
	snprintf(err, errlen, "changed my mind");
	return -1;
}

static atomic_int freed;   /* counted on the writer thread */

static void count_free(void *arg)
{
	freed++;
	free(arg);
}

static bool posted_done(void *arg)
{
	struct fx *f = arg;
	struct apid_writer_stats s;

	apid_writer_get_stats(f->w, &s);
	return atomic_load(&freed) == 2 && s.posted == 1;
}

/* apid_writer_run: a refusal rolls back what the request wrote (a
 * savepoint); apid_writer_post: runs without a waiter, frees its arg
 * whether it succeeded or not. */
static void test_requests(void **state)
{
	struct fx *f = *state;
	struct apid_patch_miner p, *pp;
	struct apid_writer_stats s;
	char err[256];
	int http = 0;

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	settle(f);
	assert_int_equal(apid_apply_patch_miner_init(&p, "aa:bb:cc:00:00:01", 1, "pw", "t",
						     &http, err, sizeof(err)), 0);
	assert_int_equal(apid_writer_run(f->w, patch_then_refuse, &p, &http, err, sizeof(err)),
			 -1);
	assert_int_equal(http, 409);
	assert_string_equal(err, "changed my mind");
	assert_text(f, "SELECT managed || ' ' || coalesce(unlock_pass, '-') FROM miners", "0 -");
	assert_int_equal(qint(f, "SELECT count(*) FROM audit"), 0);

	atomic_store(&freed, 0);
	pp = calloc(1, sizeof(*pp));
	assert_int_equal(apid_apply_patch_miner_init(pp, "aa:bb:cc:00:00:01", 1, NULL, "ctl",
						     &http, err, sizeof(err)), 0);
	assert_int_equal(apid_writer_post(f->w, apid_apply_patch_miner, pp, count_free), 0);
	pp = calloc(1, sizeof(*pp));
	assert_int_equal(apid_apply_patch_miner_init(pp, "aa:bb:cc:00:00:09", 1, NULL, "ctl",
						     &http, err, sizeof(err)), 0);
	assert_int_equal(apid_writer_post(f->w, apid_apply_patch_miner, pp, count_free), 0);
	if (tl_wait_until(5000, posted_done, f) < 0)
		fail_msg("posted requests not done: freed=%d", atomic_load(&freed));
	assert_text(f, "SELECT managed FROM miners", "1");
	assert_text(f, "SELECT actor || ' ' || action FROM audit", "ctl miner.patch");
	apid_writer_get_stats(f->w, &s);
	assert_int_equal(s.patches, 0);
}

/* A write first thing in its transaction: SQLite waits for a lock held
 * elsewhere (the busy handler) instead of refusing at once. */
static int write_first(struct apid_apply *a, void *arg, int *http_status, char *err,
		       size_t errlen)
{
	(void)arg;
	if (sqlite3_exec(apid_apply_db(a), "UPDATE miners SET hostname = hostname", NULL, NULL,
			 NULL) != SQLITE_OK) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

static atomic_int ran;

static int mark_ran(struct apid_apply *a, void *arg, int *http_status, char *err, size_t errlen)
{
	(void)a;
	(void)arg;
	(void)http_status;
	(void)err;
	(void)errlen;
	ran++;
	return 0;
}

static sqlite3 *lock_db(struct fx *f)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void unlock_db(sqlite3 *db)
{
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

/* apid_writer_run_within while another connection holds the write lock:
 * a request the writer cannot begin by the deadline (it waits for the
 * lock on behalf of another) is dropped unrun; one it begins gives up
 * waiting for the lock at the deadline and is undone; both 503. */
static void test_request_deadline(void **state)
{
	struct fx *f = *state;
	struct apid_patch_miner p;
	struct apid_writer_stats s;
	char err[256];
	int http = 0;
	long long t0, ms;
	sqlite3 *db;

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	settle(f);
	atomic_store(&ran, 0);
	db = lock_db(f);
	assert_int_equal(apid_writer_post(f->w, write_first, NULL, NULL), 0);
	tl_sleep_ms(100);   /* the writer waits for the lock */
	t0 = hive_mono_ms();
	assert_int_equal(apid_writer_run_within(f->w, mark_ran, NULL, 300, &http, err,
						sizeof(err)), -1);
	ms = hive_mono_ms() - t0;
	printf("figure: writer request behind a locked write: 503 in %lld ms: %s\n", ms, err);
	assert_int_equal(http, 503);
	assert_true(ms >= 290 && ms < 1000);
	assert_non_null(strstr(err, "nothing was changed"));
	unlock_db(db);
	tl_sleep_ms(300);
	assert_int_equal(atomic_load(&ran), 0);   /* dropped, never run */

	/* The writer idle: the request meets the lock itself. */
	db = lock_db(f);
	assert_int_equal(apid_apply_patch_miner_init(&p, "aa:bb:cc:00:00:01", 1, NULL, "t",
						     &http, err, sizeof(err)), 0);
	t0 = hive_mono_ms();
	assert_int_equal(apid_writer_run_within(f->w, apid_apply_patch_miner, &p, 400, &http, err,
						sizeof(err)), -1);
	ms = hive_mono_ms() - t0;
	printf("figure: writer request meeting the lock: 503 in %lld ms: %s\n", ms, err);
	assert_int_equal(http, 503);
	assert_true(ms >= 390 && ms < 1000);
	assert_non_null(strstr(err, "write lock"));
	unlock_db(db);
	assert_text(f, "SELECT managed FROM miners", "0");
	apid_writer_get_stats(f->w, &s);
	assert_true(s.db_failures >= 1 && s.db_failed_ms > 0);

	/* Free again: it goes through within the deadline. */
	assert_int_equal(apid_apply_patch_miner_init(&p, "aa:bb:cc:00:00:01", 1, NULL, "t",
						     &http, err, sizeof(err)), 0);
	assert_int_equal(apid_writer_run_within(f->w, apid_apply_patch_miner, &p, 400, &http, err,
						sizeof(err)), 0);
	assert_text(f, "SELECT managed FROM miners", "1");
}

struct hook_seen {
	int calls, events, committed, lost;
	long long last_ts, pointer;
	char mac[HIVE_MAC_LEN];
};

/* Inside the transaction: the status's row is already there and the
 * miner's pointer names it. */
static void on_event(void *arg, struct apid_apply *a, const struct apid_event *ev,
		     long long ts_ms)
{
	struct hook_seen *h = arg;
	const struct hive_msg_status_result *st = &ev->u.status;
	sqlite3_stmt *q;

	h->events++;
	if (ev->kind != HIVE_MSG_STATUS_RESULT)
		return;
	h->calls++;
	h->last_ts = ts_ms;
	snprintf(h->mac, sizeof(h->mac), "%s", st->head.mac);
	/* The writer's thread: no cmocka asserts here, the test checks after. */
	if (sqlite3_prepare_v2(apid_apply_db(a), "SELECT m.last_status_id = s.id"
			       " FROM miners m, statuses s WHERE m.mac=?1 AND"
			       " s.id=(SELECT max(id) FROM statuses)", -1, &q, NULL) != SQLITE_OK) {
		h->pointer = -2;
		return;
	}
	sqlite3_bind_text(q, 1, st->head.mac, -1, SQLITE_STATIC);
	h->pointer = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
	sqlite3_finalize(q);
}

static void on_ended(void *arg, bool committed)
{
	struct hook_seen *h = arg;

	if (committed)
		h->committed++;
	else
		h->lost++;
}

static bool ended_seen(void *arg)
{
	const volatile struct hook_seen *h = arg;

	return h->committed >= 1;
}

/* The hooks see each stored event (not a rejected one) and each
 * transaction's end, until removed. */
static void test_status_hook(void **state)
{
	struct fx *f = *state;
	struct hook_seen h = { 0 };
	struct apid_writer_hooks hooks = { on_event, on_ended, NULL, &h };
	long long ts = hive_wall_ms() - 5000;

	apid_writer_set_hooks(f->w, &hooks);
	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	status(f, "aa:bb:cc:00:00:01", 0, ts - 2);
	status(f, "aa:bb:cc:00:00:01", 0, ts - 1);
	status(f, "aa:bb:cc:00:00:07", 0, ts);      /* unknown miner: rejected */
	status(f, "aa:bb:cc:00:00:01", 0, ts);
	settle(f);
	assert_int_equal(h.calls, 3);
	assert_string_equal(h.mac, "aa:bb:cc:00:00:01");
	assert_int_equal(h.last_ts, ts);
	assert_int_equal(h.pointer, 1);
	assert_int_equal(h.events, 4);          /* the seen and three statuses */
	/* ended runs after the stats settle() reads are counted. */
	assert_int_equal(tl_wait_until(2000, ended_seen, &h), 0);
	assert_int_equal(h.lost, 0);
	apid_writer_set_hooks(f->w, NULL);
	status(f, "aa:bb:cc:00:00:01", 0, ts + 1);
	settle(f);
	assert_int_equal(h.calls, 3);
}

/* ------------------------------------------------------------ retention */

static bool pruned_enough(void *arg)
{
	struct fx *f = arg;
	struct apid_writer_stats s;

	apid_writer_get_stats(f->w, &s);
	return s.pruned_statuses == 15 && s.pruned_telemetry == 8 && s.pruned_errors == 6;
}

/* Old rows go in steps of prune_batch rows, once rolled up; a miner's
 * latest status and telemetry sample stay (its pointer never dangles);
 * what is younger than its retention stays. */
static void test_retention(void **state)
{
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	long long now = hive_wall_ms();
	struct apid_writer_stats s;

	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	seen(f, "aa:bb:cc:00:00:02", "127.0.0.2", "127.0.0.0/24");
	for (int i = 0; i < 12; i++)
		status(f, "aa:bb:cc:00:00:01", 0, now - 10 * HOUR_MS + i);
	for (int i = 0; i < 3; i++)
		status(f, "aa:bb:cc:00:00:01", 0, now - HOUR_MS + i);
	for (int i = 0; i < 4; i++)
		status(f, "aa:bb:cc:00:00:02", 0, now - 8 * HOUR_MS + i);
	for (int i = 0; i < 8; i++)
		push_at(f, HIVE_TOPIC_TELEMETRY_RESULT, now - 10 * HOUR_MS + i,
			"{\"mac\":\"aa:bb:cc:00:00:01\",\"chains\":[{\"id\":0,\"chips\":{\"hr\":[1]}}]}");
	push_at(f, HIVE_TOPIC_TELEMETRY_RESULT, now - 2 * HOUR_MS,
		"{\"mac\":\"aa:bb:cc:00:00:01\",\"chains\":[{\"id\":0,\"chips\":{\"hr\":[1]}},"
		"{\"id\":1,\"chips\":{\"hr\":[1]}}]}");
	for (int i = 0; i < 6; i++)
		push_at(f, HIVE_TOPIC_MINER_ERROR, now - 10 * DAY_MS,
			"{\"mac\":\"aa:bb:cc:00:00:02\",\"op\":\"status\",\"kind\":\"timeout\"}");
	push_at(f, HIVE_TOPIC_MINER_ERROR, now,
		"{\"mac\":\"aa:bb:cc:00:00:02\",\"op\":\"status\",\"kind\":\"timeout\"}");
	settle(f);
	assert_int_equal(qint(f, "SELECT count(*) FROM statuses"), 19);

	o.prune_batch = 5;
	o.prune_every_ms = 100;
	apid_writer_configure(f->w, &o);
	if (tl_wait_until(5000, pruned_enough, f) < 0) {
		apid_writer_get_stats(f->w, &s);
		fail_msg("pruned statuses=%llu telemetry=%llu errors=%llu",
			 (unsigned long long)s.pruned_statuses,
			 (unsigned long long)s.pruned_telemetry,
			 (unsigned long long)s.pruned_errors);
	}
	/* m1's young three, and m2's latest (older than 6 h, but its latest). */
	assert_int_equal(qint(f, "SELECT count(*) FROM statuses"), 4);
	assert_int_equal(qint(f, "SELECT count(*) FROM statuses WHERE ts_ms < %lld",
			      now - 6 * HOUR_MS), 1);
	assert_int_equal(qint(f, "SELECT count(*) FROM miners m JOIN statuses s"
			      " ON s.id = m.last_status_id"), 2);
	/* Everything pruned was rolled up first. */
	assert_int_equal(qint(f, "SELECT sum(n) FROM status_minutes"), 19);
	assert_int_equal(qint(f, "SELECT sum(n) FROM status_hours"), 19);
	assert_int_equal(qint(f, "SELECT count(*) FROM telemetry"), 2);
	assert_int_equal(qint(f, "SELECT sum(samples) FROM telemetry_hours WHERE chain = 0"), 9);
	assert_int_equal(qint(f, "SELECT count(*) FROM miner_errors"), 1);
	apid_writer_get_stats(f->w, &s);
	assert_int_equal(s.pruned_statuses, 15);
	assert_int_equal(s.pruned[APID_RT_STATUSES], 15);
	/* Events still flow while pruning goes on. */
	status(f, "aa:bb:cc:00:00:02", 0, now);
	settle(f);
	assert_int_equal(qint(f, "SELECT last_status_id = (SELECT max(id) FROM statuses)"
			      " FROM miners WHERE mac='aa:bb:cc:00:00:02'"), 1);
}

/* What was queued when the writer stops is committed, and the database is
 * whole when it reopens. */
static void test_stop_drains(void **state)
{
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	char err[512];
	sqlite3 *db;

	o.batch_ms = 5000;
	apid_writer_configure(f->w, &o);
	seen(f, "aa:bb:cc:00:00:01", "127.0.0.1", "127.0.0.0/24");
	for (int i = 0; i < 250; i++)
		status(f, "aa:bb:cc:00:00:01", 0, hive_wall_ms());
	sqlite3_close(f->ro);
	f->ro = NULL;
	apid_writer_stop(f->w);
	db = apid_store_open(f->path, err, sizeof(err));
	assert_non_null(db);
	f->ro = db;
	assert_int_equal(qint(f, "SELECT count(*) FROM statuses"), 250);
	f->w = NULL;
	o = opts(f);
	sqlite3_close(f->ro);
	start(f, &o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batching_and_pointer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
		cmocka_unit_test(test_decode_messages),
		cmocka_unit_test_setup_teardown(test_seen_moves_and_swaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_telemetry_chips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_models_and_patches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_patch_miner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_drains, setup, teardown),
	};

	hive_log_init("test_apid_writer", HIVE_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
