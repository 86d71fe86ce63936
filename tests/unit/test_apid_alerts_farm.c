/* test_apid_alerts_farm — the farm and suite conditions (alerts_farm.h)
 * on apid's real parts without the daemons: heartbeats in a traffic record
 * (a daemon missing, replaced by its restart, not by another), sequence
 * gaps (bus_loss over the last minute), statvfs of a temp dir (disk_low),
 * a balancer that never read its feed (feed_stale), a writer transaction
 * rolled back under the writer (db_write_failed), rules disabled. The
 * balancer's cycles (power_over_available, power_fallback) need the whole
 * apid: tests/e2e/test_alerts_farm.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../apid/alerts_farm.h"
#include "../../apid/apply.h"
#include "../../apid/core.h"
#include "../../apid/power.h"
#include "../../apid/traffic.h"
#include "../../apid/writer.h"
#include "hive/bus.h"
#include "hive/cfg.h"
#include "hive/clock.h"
#include "hive/msg.h"
#include "hive/plant.h"
#include "../lib/testlib.h"

#define MAXC 32

static struct hive_cfg cfg;
static struct apid_alert_cond out[MAXC];

static void cfg_fresh(void)
{
	hive_cfg_defaults(&cfg);
	cfg.intervals.heartbeat_seconds = 1;
	cfg.alerts.rules[HIVE_ALERT_DISK_LOW].enabled = false;   /* on only where tested */
}

/* The conditions of rule among n. */
static int count_rule(int n, int rule)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += out[i].rule == rule;
	return k;
}

static const struct apid_alert_cond *find(int n, int rule, const char *subject)
{
	for (int i = 0; i < n; i++)
		if (out[i].rule == rule && (!subject || strcmp(out[i].subject, subject) == 0))
			return &out[i];
	return NULL;
}

static void beat(struct apid_traffic *t, const char *daemon, const char *host, long long pid,
		 long long started)
{
	struct hive_envelope env;
	struct hive_msg_heartbeat hb;

	memset(&env, 0, sizeof(env));
	snprintf(env.src, sizeof(env.src), "%s/%s/%lld", daemon, host, pid);
	hive_msg_init(HIVE_MSG_HEARTBEAT, &hb);
	hb.daemon = daemon;
	hb.host = host;
	hb.pid = pid;
	hb.started = started;
	hb.in_flight = 0;
	hb.latency_ms = 0;
	apid_traffic_heartbeat(t, &env, &hb);
}

/* Two pollerds on h1 and one on h2 go silent; a new pollerd on h1 started
 * after their last heartbeats replaces one of h1's, never h2's. */
static void test_daemon_missing(void **state)
{
	struct apid a;
	int64_t t0 = hive_wall_ms();
	const struct apid_alert_cond *c;
	int n;

	(void)state;
	memset(&a, 0, sizeof(a));
	cfg_fresh();
	assert_non_null(a.traffic = apid_traffic_new());
	beat(a.traffic, "pollerd", "h1", 100, t0 - 5000);
	beat(a.traffic, "pollerd", "h1", 101, t0 - 5000);
	beat(a.traffic, "telemetryd", "h2", 200, t0 - 5000);
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DAEMON_MISSING), 0);

	/* 3 heartbeats missed (heartbeat_seconds 1). */
	tl_sleep_ms(3200);
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DAEMON_MISSING), 3);
	assert_non_null(c = find(n, HIVE_ALERT_DAEMON_MISSING, "pollerd@h1:100"));
	assert_string_equal(c->mac, "");
	assert_true(c->value >= 3 && c->value <= 5);
	assert_true(c->threshold == 3);
	assert_non_null(strstr(c->summary, "silent for"));
	assert_non_null(find(n, HIVE_ALERT_DAEMON_MISSING, "telemetryd@h2:200"));

	/* A pollerd restarted on h1: one of the two h1 instances is replaced.
	 * An instance on h2 of another daemon replaces nothing, and a pollerd
	 * on h1 that started before the silence is a third one, not a
	 * replacement. */
	beat(a.traffic, "pollerd", "h1", 102, hive_wall_ms());
	beat(a.traffic, "pollerd", "h1", 103, t0 - 4000);
	beat(a.traffic, "discoverd", "h2", 201, hive_wall_ms());
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DAEMON_MISSING), 2);
	assert_non_null(find(n, HIVE_ALERT_DAEMON_MISSING, "telemetryd@h2:200"));

	/* The rule off: nothing. */
	cfg.alerts.rules[HIVE_ALERT_DAEMON_MISSING].enabled = false;
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DAEMON_MISSING), 0);
	apid_traffic_free(a.traffic);
}

static void arrive(struct apid_traffic *t, unsigned long long seq)
{
	struct hive_envelope env;
	struct apid_source *last = NULL;

	memset(&env, 0, sizeof(env));
	snprintf(env.src, sizeof(env.src), "pollerd/h1/100");
	snprintf(env.topic, sizeof(env.topic), "hive.miner.status");
	env.boot = 1;
	env.seq = seq;
	apid_traffic_received(t, &env, &last);
}

/* Lost events count for a minute from when they were seen lost; the
 * threshold is "more than". */
static void test_bus_loss(void **state)
{
	struct apid a;
	int64_t now = hive_wall_ms();
	const struct apid_alert_cond *c;
	int n;

	(void)state;
	memset(&a, 0, sizeof(a));
	cfg_fresh();
	assert_non_null(a.traffic = apid_traffic_new());
	arrive(a.traffic, 1);
	n = apid_alerts_farm(&a, &cfg, now, out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_BUS_LOSS), 0);
	arrive(a.traffic, 5);           /* 2, 3, 4 lost */
	n = apid_alerts_farm(&a, &cfg, now + 5000, out, MAXC);
	assert_non_null(c = find(n, HIVE_ALERT_BUS_LOSS, "bus"));
	assert_true(c->value == 3);
	assert_true(c->threshold == 0);
	n = apid_alerts_farm(&a, &cfg, now + 30000, out, MAXC);
	assert_non_null(c = find(n, HIVE_ALERT_BUS_LOSS, "bus"));
	assert_true(c->value == 3);
	/* A threshold of 3: not more. */
	cfg.alerts.rules[HIVE_ALERT_BUS_LOSS].threshold = 3;
	n = apid_alerts_farm(&a, &cfg, now + 31000, out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_BUS_LOSS), 0);
	cfg.alerts.rules[HIVE_ALERT_BUS_LOSS].threshold = 0;
	/* A minute after they were seen: gone. */
	n = apid_alerts_farm(&a, &cfg, now + 66000, out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_BUS_LOSS), 0);
	arrive(a.traffic, 7);           /* 6 lost */
	n = apid_alerts_farm(&a, &cfg, now + 67000, out, MAXC);
	assert_non_null(c = find(n, HIVE_ALERT_BUS_LOSS, "bus"));
	assert_true(c->value == 1);
	apid_traffic_free(a.traffic);
}

/* The threshold is the percentage free: 100 always holds, 0 never (on a
 * file system that is not full). */
static void test_disk_low(void **state)
{
	struct apid a;
	char *dir = tl_tmpdir("alerts-farm");
	const struct apid_alert_cond *c;
	int n;

	(void)state;
	assert_non_null(dir);
	memset(&a, 0, sizeof(a));
	cfg_fresh();
	snprintf(a.db_path, sizeof(a.db_path), "%s/powerhive.db", dir);
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DISK_LOW), 0);   /* off */
	cfg.alerts.rules[HIVE_ALERT_DISK_LOW].enabled = true;
	cfg.alerts.rules[HIVE_ALERT_DISK_LOW].threshold = 100;
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_non_null(c = find(n, HIVE_ALERT_DISK_LOW, "database"));
	assert_true(c->value >= 0 && c->value <= 100);
	assert_true(c->threshold == 100);
	assert_non_null(strstr(c->summary, dir));
	cfg.alerts.rules[HIVE_ALERT_DISK_LOW].threshold = 0;
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DISK_LOW), 0);
	tl_rmrf(dir);
	free(dir);
}

/* A source that is read and never answered: stale after stale_seconds
 * (counted from start). A manual budget is never stale. No cycle ran: no
 * fallback nor draw yet. */
static void test_feed_stale(void **state)
{
	struct apid a;
	const struct apid_alert_cond *c;
	int n;

	(void)state;
	memset(&a, 0, sizeof(a));
	cfg_fresh();
	cfg.power.mode = HIVE_POWER_DRY_RUN;
	cfg.power.source.kind = HIVE_PLANT_AGGREGATOR;
	cfg.power.interval_seconds = 1;
	cfg.power.stale_seconds = 2;
	assert_non_null(a.power = apid_power_new(&cfg, NULL, NULL, NULL));
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_FEED_STALE), 0);
	tl_sleep_ms(2200);
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_non_null(c = find(n, HIVE_ALERT_FEED_STALE, "farm"));
	assert_true(c->value >= 2 && c->threshold == 2);
	assert_non_null(strstr(c->summary, "since apid started"));
	assert_int_equal(count_rule(n, HIVE_ALERT_POWER_FALLBACK), 0);
	assert_int_equal(count_rule(n, HIVE_ALERT_POWER_OVER_AVAILABLE), 0);
	apid_power_free(a.power);

	cfg.power.source.kind = HIVE_PLANT_MANUAL;
	cfg.power.source.budget_w = 100000;
	assert_non_null(a.power = apid_power_new(&cfg, NULL, NULL, NULL));
	tl_sleep_ms(2200);
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_FEED_STALE), 0);
	apid_power_free(a.power);
}

/* A request that rolls the writer's whole transaction back: the batch is
 * lost (as when SQLite gives up on it). */
static int rollback_all(struct apid_apply *ap, void *arg, int *http_status, char *err,
			size_t errlen)
{
	(void)arg; (void)http_status; (void)err; (void)errlen;
	sqlite3_exec(apid_apply_db(ap), "ROLLBACK", NULL, NULL, NULL);
	return 0;
}

static void test_db_write_failed(void **state)
{
	struct apid a;
	char *dir = tl_tmpdir("alerts-farm");
	struct apid_writer_opts o = { .batch_max = 100, .batch_ms = 50, .queue_max = 64,
				      .prune_batch = 100, .prune_every_ms = 60000 };
	char err[256] = "", path[1100];
	const struct apid_alert_cond *c;
	int64_t now = hive_wall_ms();
	int n, st = 0;

	(void)state;
	assert_non_null(dir);
	memset(&a, 0, sizeof(a));
	cfg_fresh();
	snprintf(path, sizeof(path), "%s/powerhive.db", dir);
	o.db_path = path;
	a.writer = apid_writer_start(&o, err, sizeof(err));
	if (!a.writer)
		fail_msg("writer: %s", err);
	n = apid_alerts_farm(&a, &cfg, now, out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DB_WRITE_FAILED), 0);
	/* The caller hears 503: its transaction was lost. */
	assert_int_equal(apid_writer_run(a.writer, rollback_all, NULL, &st, err, sizeof(err)), -1);
	assert_int_equal(st, 503);
	n = apid_alerts_farm(&a, &cfg, now + 2000, out, MAXC);
	assert_non_null(c = find(n, HIVE_ALERT_DB_WRITE_FAILED, "database"));
	assert_true(c->value == 1);
	assert_non_null(strstr(c->summary, "not committed"));
	n = apid_alerts_farm(&a, &cfg, now + 63000, out, MAXC);
	assert_int_equal(count_rule(n, HIVE_ALERT_DB_WRITE_FAILED), 0);
	apid_writer_stop(a.writer);
	tl_rmrf(dir);
	free(dir);
}

/* out is never overrun. */
static void test_max(void **state)
{
	struct apid a;
	int n;

	(void)state;
	memset(&a, 0, sizeof(a));
	cfg_fresh();
	assert_non_null(a.traffic = apid_traffic_new());
	for (int i = 0; i < 5; i++)
		beat(a.traffic, "pollerd", "h9", 300 + i, 1);
	n = apid_alerts_farm(&a, &cfg, hive_wall_ms() + 10000, out, 2);
	assert_int_equal(n, 2);
	assert_int_equal(apid_alerts_farm(&a, &cfg, hive_wall_ms(), out, 0), 0);
	apid_traffic_free(a.traffic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daemon_missing),
		cmocka_unit_test(test_bus_loss),
		cmocka_unit_test(test_disk_low),
		cmocka_unit_test(test_db_write_failed),
		cmocka_unit_test(test_feed_stale),
		cmocka_unit_test(test_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
