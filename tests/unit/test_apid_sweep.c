/* test_apid_sweep — what hive.sweep.done does in apid (apply.c), driven
 * directly: events decoded as the receive thread decodes them and applied
 * on a scratch database, with the scheduler's status interval (15 s) for
 * the offline rule.
 *
 *   1. the offline rule, table-driven: who is marked offline and who is
 *      kept because a status or telemetry answered;
 *   2. a list in chunks, out of order and with a duplicate, acts once whole;
 *   3. an incomplete list marks nobody offline and is counted;
 *   4. listed miners nobody polls are seen by the sweep (last_seen_ms);
 *   5. listed MACs apid has no online miner for are kept for
 *      hive.control.recheck.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../apid/apply.h"
#include "../../apid/event.h"
#include "../../apid/sched.h"
#include "../../apid/store.h"
#include "../../apid/traffic.h"
#include "hive/msg.h"
#include "../lib/testlib.h"

#define STATUS_MS 15000
#define T0        1700000000000LL      /* the sweeps' end, wall clock ms */
#define SUBNET    "127.88.0.0/24"

struct fx {
	char *dir;
	sqlite3 *db;
	struct apid_traffic *traffic;
	struct apid_sched *sched;
	struct apid_apply *a;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct apid_sched_opts so = { .interval_ms = { STATUS_MS, 60000 },
				      .job_timeout_ms = 30000, .port = 80 };
	char path[1200], err[256];

	assert_non_null(f);
	assert_non_null(f->dir = tl_tmpdir("sweep"));
	snprintf(path, sizeof(path), "%s/powerhive.db", f->dir);
	if (!(f->db = apid_store_open(path, err, sizeof(err))))
		fail_msg("%s", err);
	assert_non_null(f->traffic = apid_traffic_new());
	assert_non_null(f->sched = apid_sched_new(&so, NULL, NULL));
	if (!(f->a = apid_apply_new(f->db, f->traffic, err, sizeof(err))))
		fail_msg("%s", err);
	apid_apply_attach(f->a, f->sched, false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	apid_apply_free(f->a);
	apid_sched_free(f->sched);
	apid_traffic_free(f->traffic);
	sqlite3_close(f->db);
	tl_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Decodes and applies one event from src, stamped ts. The result of
 * apid_apply_event. */
static int apply(struct fx *f, const char *src, const char *topic, long long ts,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int apply(struct fx *f, const char *src, const char *topic, long long ts,
		 const char *fmt, ...)
{
	struct hive_envelope env;
	struct apid_event ev;
	enum apid_reject why;
	char err[256], *text;
	va_list ap;
	int rc;

	memset(&env, 0, sizeof(env));
	snprintf(env.topic, sizeof(env.topic), "%s", topic);
	snprintf(env.src, sizeof(env.src), "%s", src);
	env.v = 1;
	env.ts = ts;
	va_start(ap, fmt);
	assert_true(vasprintf(&text, fmt, ap) >= 0);
	va_end(ap);
	env.body = json_loads(text, 0, NULL);
	if (!env.body)
		fail_msg("not JSON: %s", text);
	free(text);
	if (apid_event_decode(&env, &ev, &why, err, sizeof(err)) < 0)
		fail_msg("%s: %s", topic, err);
	rc = apid_apply_event(f->a, &env, &ev, 0, &why);
	apid_event_clear(&ev);
	hive_envelope_clear(&env);
	return rc;
}

static void mac_of(int n, char out[18])
{
	snprintf(out, 18, "aa:bb:cc:00:88:%02x", n);
}

static void seen(struct fx *f, int n, long long ts)
{
	char mac[18];

	mac_of(n, mac);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_MINER_SEEN, ts,
			       "{\"mac\":\"%s\",\"ip\":\"127.88.0.%d\",\"subnet\":\"%s\"}", mac, n,
			       SUBNET), 0);
}

static void status(struct fx *f, int n, long long ts)
{
	char mac[18];

	mac_of(n, mac);
	assert_int_equal(apply(f, "pollerd/t/2", HIVE_TOPIC_STATUS_RESULT, ts,
			       "{\"mac\":\"%s\",\"state\":\"mining\"}", mac), 0);
}

static void telemetry(struct fx *f, int n, long long ts)
{
	char mac[18];

	mac_of(n, mac);
	assert_int_equal(apply(f, "telemetryd/t/3", HIVE_TOPIC_TELEMETRY_RESULT, ts,
			       "{\"mac\":\"%s\",\"chains\":[{\"id\":0,\"chips\":{\"hr\":[1.5]}}]}",
			       mac), 0);
}

static long long qint(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long qint(struct fx *f, const char *fmt, ...)
{
	sqlite3_stmt *st;
	char *sql;
	va_list ap;
	long long v = -1;

	va_start(ap, fmt);
	assert_true(vasprintf(&sql, fmt, ap) >= 0);
	va_end(ap);
	assert_int_equal(sqlite3_prepare_v2(f->db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	free(sql);
	return v;
}

static int online(struct fx *f, int n)
{
	char mac[18];

	mac_of(n, mac);
	return (int)qint(f, "SELECT online FROM miners WHERE mac='%s'", mac);
}

/* The traffic record of SUBNET's last sweep: field. */
static long long sweep_figure(struct fx *f, const char *field)
{
	json_t *snap = apid_traffic_snapshot(f->traffic, T0), *sw;
	long long v = -1;
	size_t i;

	json_array_foreach(json_object_get(snap, "sweeps"), i, sw)
		if (strcmp(json_string_value(json_object_get(sw, "subnet")), SUBNET) == 0)
			v = json_integer_value(json_object_get(sw, field));
	json_decref(snap);
	return v;
}

/* 1. Not listed goes offline only without a poll answer since the cutoff:
 * the earlier of the sweep's start and 2 status intervals (30 s) before
 * its end. */
static void offline_rule(void **state)
{
	static const struct {
		const char *what;
		long long started;           /* the sweep's start, relative to T0 */
		long long status, telem;     /* answers relative to T0; 1 = none */
		int online;                  /* after the sweep */
	} t[] = {
		{ "no poll answer", -5000, 1, 1, 0 },
		{ "status 10 s ago", -5000, -10000, 1, 1 },
		{ "status 29 s ago", -5000, -29000, 1, 1 },
		{ "status 31 s ago, sweep began 5 s ago", -5000, -31000, 1, 0 },
		{ "status 60 s ago", -5000, -60000, 1, 0 },
		{ "telemetry 2 s ago", -5000, 1, -2000, 1 },
		{ "telemetry 45 s ago", -5000, 1, -45000, 0 },
		{ "a 90 s sweep, status 60 s ago (after it began)", -90000, -60000, 1, 1 },
		{ "a 90 s sweep, status 91 s ago", -90000, -91000, 1, 0 },
	};
	struct fx *f = *state;
	const size_t n = sizeof(t) / sizeof(t[0]);
	char mac[18];

	for (size_t i = 0; i < n; i++) {
		int listed = 100 + (int)i, quiet = 1 + (int)i;
		char list[64];

		/* Each case on a fresh pair: one listed, one not. */
		seen(f, quiet, T0 - 120000);
		seen(f, listed, T0 - 120000);
		if (t[i].status != 1)
			status(f, quiet, T0 + t[i].status);
		if (t[i].telem != 1)
			telemetry(f, quiet, T0 + t[i].telem);
		mac_of(listed, mac);
		snprintf(list, sizeof(list), "\"%s\"", mac);
		/* Earlier cases' miners are gone from this sweep too: they are
		 * already decided and must stay as they were. */
		assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0,
				       "{\"subnet\":\"%s\",\"macs\":[%s],\"started\":%lld,"
				       "\"miners\":1}", SUBNET, list, T0 + t[i].started), 0);
		if (online(f, quiet) != t[i].online)
			fail_msg("case %zu (%s): online=%d, want %d", i, t[i].what, online(f, quiet),
				 t[i].online);
		assert_int_equal(online(f, listed), 1);
		/* Offline takes the address; kept keeps it. */
		mac_of(quiet, mac);
		assert_int_equal(qint(f, "SELECT ip IS NULL FROM miners WHERE mac='%s'", mac),
				 !t[i].online);
		for (size_t k = 0; k < i; k++)
			assert_int_equal(online(f, 100 + (int)k), 0);   /* not listed any more */
	}
	/* The last sweep kept the miners that answered a poll recently. */
	assert_true(sweep_figure(f, "kept") >= 1);
	assert_int_equal(sweep_figure(f, "incomplete"), 0);
}

/* 2. Chunks 3, 1, 1 again, 2 of one sweep: nothing happens before the last,
 * then the whole list acts. */
static void chunks_out_of_order(void **state)
{
	struct fx *f = *state;
	char m[7][18];
	const char *src = "discoverd/t/9";

	for (int i = 0; i < 7; i++) {
		seen(f, 40 + i, T0 - 120000);
		mac_of(40 + i, m[i]);
	}
	/* 40..45 listed over 3 chunks; 46 not. */
	assert_int_equal(apply(f, src, HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\"],\"started\":%lld,"
			       "\"miners\":6,\"sweep\":4,\"chunk\":3,\"chunks\":3}", SUBNET, m[4],
			       m[5], T0 - 1000), 0);
	assert_int_equal(apply(f, src, HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\"],\"started\":%lld,"
			       "\"miners\":6,\"sweep\":4,\"chunk\":1,\"chunks\":3}", SUBNET, m[0],
			       m[1], T0 - 1000), 0);
	assert_int_equal(apply(f, src, HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\"],\"started\":%lld,"
			       "\"miners\":6,\"sweep\":4,\"chunk\":1,\"chunks\":3}", SUBNET, m[0],
			       m[1], T0 - 1000), 0);
	assert_int_equal(online(f, 46), 1);       /* not yet: chunk 2 is missing */
	assert_int_equal(apply(f, src, HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\"],\"started\":%lld,"
			       "\"miners\":6,\"sweep\":4,\"chunk\":2,\"chunks\":3}", SUBNET, m[2],
			       m[3], T0 - 1000), 0);
	assert_int_equal(online(f, 46), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(online(f, 40 + i), 1);
	assert_int_equal(sweep_figure(f, "miners"), 6);
	assert_int_equal(sweep_figure(f, "offline"), 1);
	assert_int_equal(sweep_figure(f, "incomplete"), 0);
}

/* 3. Chunks 1 and 2 of 3, then a newer sweep of the same subnet from the
 * same source: the first marks nobody offline and is counted; another
 * source's chunks are not mixed in. */
static void incomplete_marks_nobody(void **state)
{
	struct fx *f = *state;
	char a[18], b[18];

	seen(f, 60, T0 - 120000);
	seen(f, 61, T0 - 120000);
	mac_of(60, a);
	mac_of(61, b);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\"],\"sweep\":7,\"chunk\":1,"
			       "\"chunks\":3}", SUBNET, a), 0);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[],\"sweep\":7,\"chunk\":2,"
			       "\"chunks\":3}", SUBNET), 0);
	/* Another discoverd's chunk 3 of its own sweep 7 completes nothing. */
	assert_int_equal(apply(f, "discoverd/other/5", HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[],\"sweep\":7,\"chunk\":3,"
			       "\"chunks\":3}", SUBNET), 0);
	assert_int_equal(online(f, 61), 1);
	/* The next sweep begins: sweep 7 will never be whole. */
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0 + 30000,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\"],\"sweep\":8,\"chunk\":1,"
			       "\"chunks\":2}", SUBNET, a), 0);
	assert_int_equal(online(f, 61), 1);
	assert_int_equal(sweep_figure(f, "incomplete"), 1);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0 + 30000,
			       "{\"subnet\":\"%s\",\"macs\":[],\"sweep\":8,\"chunk\":2,"
			       "\"chunks\":2}", SUBNET), 0);
	assert_int_equal(online(f, 61), 0);
	assert_int_equal(online(f, 60), 1);
	assert_int_equal(sweep_figure(f, "incomplete"), 1);
}

/* 4. A listed miner nobody polls is seen at the sweep's end; one whose
 * status came during the sweep keeps its status time. */
static void listed_are_seen(void **state)
{
	struct fx *f = *state;
	char a[18], b[18];

	seen(f, 70, T0 - 120000);
	seen(f, 71, T0 - 120000);
	status(f, 71, T0 - 500);
	mac_of(70, a);
	mac_of(71, b);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\"],\"started\":%lld}",
			       SUBNET, a, b, T0 - 1000), 0);
	assert_int_equal(qint(f, "SELECT last_seen_ms FROM miners WHERE mac='%s'", a), T0);
	assert_int_equal(qint(f, "SELECT last_seen_ms FROM miners WHERE mac='%s'", b), T0 - 500);
}

static void count_mac(const char *mac, void *arg)
{
	json_object_set_new(arg, mac, json_true());
}

/* 5. A listed MAC apid has no online miner for (its seen was lost, or the
 * miner was marked offline) is remembered for hive.control.recheck, until
 * the next sweep of the subnet lists it with a miner behind it. */
static void strangers_remembered(void **state)
{
	struct fx *f = *state;
	char a[18], b[18], unknown[18];
	json_t *got = json_object();

	seen(f, 80, T0 - 120000);
	seen(f, 81, T0 - 120000);
	mac_of(80, a);
	mac_of(81, b);
	mac_of(82, unknown);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\"]}", SUBNET, a), 0);
	assert_int_equal(online(f, 81), 0);
	/* 81 back at the same address without its seen, 82 never seen */
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0 + 30000,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\",\"%s\"]}", SUBNET, a,
			       b, unknown), 0);
	apid_traffic_strangers_each(f->traffic, count_mac, got);
	assert_int_equal(json_object_size(got), 2);
	assert_non_null(json_object_get(got, b));
	assert_non_null(json_object_get(got, unknown));
	/* Their seen arrives; the next sweep has no stranger left. */
	seen(f, 81, T0 + 40000);
	seen(f, 82, T0 + 40000);
	assert_int_equal(apply(f, "discoverd/t/1", HIVE_TOPIC_SWEEP_DONE, T0 + 60000,
			       "{\"subnet\":\"%s\",\"macs\":[\"%s\",\"%s\",\"%s\"]}", SUBNET, a,
			       b, unknown), 0);
	json_object_clear(got);
	apid_traffic_strangers_each(f->traffic, count_mac, got);
	assert_int_equal(json_object_size(got), 0);
	json_decref(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(offline_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(chunks_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(incomplete_marks_nobody, setup, teardown),
		cmocka_unit_test_setup_teardown(listed_are_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(strangers_remembered, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
