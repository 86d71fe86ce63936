/* alerts_farm — the farm and suite conditions (alerts_farm.h), read from
 * the balancer's brief (power.h), the traffic counters and heartbeats
 * (traffic.h), the writer's stats (writer.h) and statvfs of the
 * database's directory. Every source is read under its own lock, a copy at
 * a time; nothing here touches the database.
 *
 * bus_loss and db_write_failed count what happened in the last minute: the
 * counters they read only grow, so each evaluation remembers (time, total)
 * and compares with the sample a minute old. That memory is one per
 * process (apid has one struct apid), forgotten when another apid asks. */
#include "alerts_farm.h"

#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "core.h"
#include "hive/plant.h"
#include "power.h"
#include "traffic.h"
#include "writer.h"

#define WINDOW_MS      60000     /* bus_loss, db_write_failed: the last minute */
#define SAMPLES        128       /* at most one a second: a minute and then some */
#define DAEMONS_MAX    1024      /* traffic.c keeps no more */
#define SILENT_BEATS   3         /* heartbeats missed before a daemon is missing
				  * (as health's "no heartbeat from") */

/* A growing counter's samples, oldest first from tail. */
struct window {
	int64_t ms[SAMPLES];
	uint64_t v[SAMPLES];
	size_t tail, n;
};

static struct {
	pthread_mutex_t mu;
	const struct apid *a;
	struct window lost, failed;
} memory = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* How much v grew over the last WINDOW_MS (since the first sample when the
 * memory is younger). Under memory.mu. */
static uint64_t window_growth(struct window *w, int64_t now, uint64_t v)
{
	size_t newest = (w->tail + w->n - 1) % SAMPLES;
	uint64_t base;

	if (w->n == 0 || now - w->ms[newest] >= 1000 || v < w->v[newest]) {
		if (w->n == SAMPLES) {
			w->tail = (w->tail + 1) % SAMPLES;
			w->n--;
		}
		newest = (w->tail + w->n) % SAMPLES;
		w->ms[newest] = now;
		w->v[newest] = v;
		w->n++;
	}
	/* Keep one sample at or before the window's start as the base. */
	while (w->n > 1 && w->ms[(w->tail + 1) % SAMPLES] <= now - WINDOW_MS) {
		w->tail = (w->tail + 1) % SAMPLES;
		w->n--;
	}
	base = w->v[w->tail];
	return v > base ? v - base : 0;
}

static bool rule_on(const struct hive_cfg *cfg, int rule)
{
	return cfg->alerts.rules[rule].enabled;
}

static double rule_threshold(const struct hive_cfg *cfg, int rule, double dflt)
{
	double t = cfg->alerts.rules[rule].threshold;

	return isfinite(t) ? t : dflt;
}

/* The next free slot of out, filled with rule and subject; NULL when full. */
static struct apid_alert_cond *cond_add(struct apid_alert_cond *out, int max, int *n, int rule,
					const char *subject)
{
	struct apid_alert_cond *c;

	if (*n >= max)
		return NULL;
	c = &out[(*n)++];
	memset(c, 0, sizeof(*c));
	c->rule = rule;
	snprintf(c->subject, sizeof(c->subject), "%s", subject);
	c->value = c->threshold = NAN;
	return c;
}

static double kw(double w)
{
	return w / 1000;
}

/* power_over_available, feed_stale, power_fallback. */
static void power_conds(struct apid *a, const struct hive_cfg *cfg, struct apid_alert_cond *out,
			int max, int *n)
{
	struct apid_power_brief b;
	struct apid_alert_cond *c;
	bool reads;

	if (!a->power)
		return;
	apid_power_brief(a->power, &b);
	reads = b.source == HIVE_PLANT_AGGREGATOR || b.source == HIVE_PLANT_MODBUS;

	/* The draw against a power figure that came from the plant or the
	 * manual budget: in fallback the available power is the fallback's
	 * own (power_fallback says so). The meter's when it has one. */
	if (rule_on(cfg, HIVE_ALERT_POWER_OVER_AVAILABLE) && b.cycled &&
	    strcmp(b.state, "fallback") != 0 && isfinite(b.available_w)) {
		bool metered = isfinite(b.measured_w);
		double draw = metered ? b.measured_w : b.estimate_w;
		double pct = rule_threshold(cfg, HIVE_ALERT_POWER_OVER_AVAILABLE, 0);
		double limit = b.available_w * (1 + pct / 100);

		if (isfinite(draw) && draw > limit &&
		    (c = cond_add(out, max, n, HIVE_ALERT_POWER_OVER_AVAILABLE, "farm"))) {
			c->value = draw;
			c->threshold = limit;
			snprintf(c->summary, sizeof(c->summary),
				 "%s draw %.1f kW above the available %.1f kW (+%.1f %%)",
				 metered ? "measured" : "estimated", kw(draw), kw(b.available_w),
				 b.available_w > 0 ? (draw / b.available_w - 1) * 100 : 100.0);
		}
	}
	/* Only a source that is read can go stale (a manual budget needs no
	 * reading; no source means the balancer is off). */
	if (rule_on(cfg, HIVE_ALERT_FEED_STALE) && reads &&
	    b.feed_age_ms > (int64_t)b.stale_seconds * 1000 &&
	    (c = cond_add(out, max, n, HIVE_ALERT_FEED_STALE, "farm"))) {
		c->value = (double)(b.feed_age_ms / 1000);
		c->threshold = b.stale_seconds;
		snprintf(c->summary, sizeof(c->summary),
			 b.have_reading ? "no valid plant reading for %.0f s (power.stale_seconds %d)"
					: "no valid plant reading since apid started %.0f s ago "
					  "(power.stale_seconds %d)", c->value, b.stale_seconds);
	}
	/* The balancer's own state at its last cycle, when it balances. */
	if (rule_on(cfg, HIVE_ALERT_POWER_FALLBACK) && b.mode != HIVE_POWER_OFF && b.cycled &&
	    strcmp(b.state, "fallback") == 0 &&
	    (c = cond_add(out, max, n, HIVE_ALERT_POWER_FALLBACK, "farm"))) {
		if (reads) {
			c->value = (double)(b.feed_age_ms / 1000);
			c->threshold = b.stale_seconds;
		}
		snprintf(c->summary, sizeof(c->summary), "balancer (%s) in fallback %s: %s",
			 hive_power_mode_name(b.mode), hive_power_fallback_name(b.fallback),
			 b.state_reason);
	}
}

/* daemon_missing: a daemon instance that sent heartbeats and has been
 * silent for SILENT_BEATS intervals, unless it said goodbye
 * (hive.daemon.goodbye: stopped on purpose); an instance is no longer
 * missing when a new instance of the same daemon on the same host, started
 * after its last heartbeat, beats (a restart: each replaces one). */
static void daemon_conds(struct apid *a, const struct hive_cfg *cfg, int64_t now,
			 struct apid_alert_cond *out, int max, int *n)
{
	int64_t silent_ms = (int64_t)cfg->intervals.heartbeat_seconds * 1000 * SILENT_BEATS;
	struct apid_traffic_daemon *d;
	bool *missing, *used;
	size_t nd;

	if (!a->traffic || !rule_on(cfg, HIVE_ALERT_DAEMON_MISSING))
		return;
	d = malloc(DAEMONS_MAX * sizeof(*d));
	missing = calloc(DAEMONS_MAX, sizeof(*missing));
	used = calloc(DAEMONS_MAX, sizeof(*used));
	if (!d || !missing || !used)
		goto out;
	nd = apid_traffic_daemons(a->traffic, d, DAEMONS_MAX);
	for (size_t i = 0; i < nd; i++)
		missing[i] = !d[i].stopped_ms && now - d[i].last_ms > silent_ms;
	for (size_t i = 0; i < nd; i++) {
		struct apid_alert_cond *c;
		bool replaced = false;

		if (!missing[i])
			continue;
		for (size_t j = 0; j < nd && !replaced; j++) {
			if (missing[j] || used[j] || d[j].started <= d[i].last_ms ||
			    strcmp(d[j].daemon, d[i].daemon) != 0 || strcmp(d[j].host, d[i].host) != 0)
				continue;
			used[j] = replaced = true;
		}
		if (replaced)
			continue;
		if (!(c = cond_add(out, max, n, HIVE_ALERT_DAEMON_MISSING, "")))
			break;
		snprintf(c->subject, sizeof(c->subject), "%.16s@%.32s:%lld", d[i].daemon,
			 d[i].host, d[i].pid);
		c->value = (double)((now - d[i].last_ms) / 1000);
		c->threshold = (double)(silent_ms / 1000);
		snprintf(c->summary, sizeof(c->summary), "%s on %s (pid %lld) silent for %.0f s",
			 d[i].daemon, d[i].host, d[i].pid, c->value);
	}
out:
	free(used);
	free(missing);
	free(d);
}

/* bus_loss and db_write_failed: what the last minute added. */
static void counter_conds(struct apid *a, const struct hive_cfg *cfg, int64_t now,
			  struct apid_alert_cond *out, int max, int *n)
{
	uint64_t lost = 0, failed = 0;
	bool have_lost = a->traffic && rule_on(cfg, HIVE_ALERT_BUS_LOSS);
	bool have_failed = a->writer && rule_on(cfg, HIVE_ALERT_DB_WRITE_FAILED);
	struct apid_alert_cond *c;

	if (have_lost)
		lost = apid_traffic_lost(a->traffic);
	if (have_failed) {
		struct apid_writer_stats ws;

		apid_writer_get_stats(a->writer, &ws);
		failed = ws.db_failures;
	}
	pthread_mutex_lock(&memory.mu);
	if (memory.a != a) {
		memset(&memory.lost, 0, sizeof(memory.lost));
		memset(&memory.failed, 0, sizeof(memory.failed));
		memory.a = a;
	}
	lost = have_lost ? window_growth(&memory.lost, now, lost) : 0;
	failed = have_failed ? window_growth(&memory.failed, now, failed) : 0;
	pthread_mutex_unlock(&memory.mu);

	if (have_lost && (double)lost > rule_threshold(cfg, HIVE_ALERT_BUS_LOSS, 0) &&
	    (c = cond_add(out, max, n, HIVE_ALERT_BUS_LOSS, "bus"))) {
		c->value = (double)lost;
		c->threshold = rule_threshold(cfg, HIVE_ALERT_BUS_LOSS, 0);
		snprintf(c->summary, sizeof(c->summary),
			 "%llu events lost on the bus in the last minute (sequence gaps)",
			 (unsigned long long)lost);
	}
	if (have_failed && failed > 0 &&
	    (c = cond_add(out, max, n, HIVE_ALERT_DB_WRITE_FAILED, "database"))) {
		c->value = (double)failed;
		c->threshold = 0;
		snprintf(c->summary, sizeof(c->summary),
			 "%llu database writes failed in the last minute (events refused by the "
			 "database, transactions not committed: their data is lost)",
			 (unsigned long long)failed);
	}
}

/* disk_low: the threshold is the share of the file system holding the
 * database that is free for apid (statvfs f_bavail), in percent: at or
 * under it, the rule holds. */
static void disk_conds(struct apid *a, const struct hive_cfg *cfg, struct apid_alert_cond *out,
		       int max, int *n)
{
	char path[HIVE_CFG_PATH_MAX], *dir;
	struct statvfs sv;
	struct apid_alert_cond *c;
	double total, avail, pct, limit;

	if (!rule_on(cfg, HIVE_ALERT_DISK_LOW) || !a->db_path[0] ||
	    strcmp(a->db_path, ":memory:") == 0)
		return;
	snprintf(path, sizeof(path), "%s", a->db_path);
	dir = dirname(path);
	if (statvfs(dir, &sv) != 0 || sv.f_blocks == 0)
		return;
	total = (double)sv.f_blocks * (double)sv.f_frsize;
	avail = (double)sv.f_bavail * (double)sv.f_frsize;
	pct = avail / total * 100;
	limit = rule_threshold(cfg, HIVE_ALERT_DISK_LOW, 5);
	if (pct > limit || !(c = cond_add(out, max, n, HIVE_ALERT_DISK_LOW, "database")))
		return;
	c->value = round(pct * 10) / 10;
	c->threshold = limit;
	snprintf(c->summary, sizeof(c->summary), "%.1f %% free (%.1f GB) on %.100s, the database's "
		 "file system", pct, avail / 1e9, dir);
}

int apid_alerts_farm(struct apid *a, const struct hive_cfg *cfg, int64_t now_ms,
		     struct apid_alert_cond *out, int max)
{
	int n = 0;

	if (!a || !cfg || !out || max <= 0)
		return 0;
	power_conds(a, cfg, out, max, &n);
	daemon_conds(a, cfg, now_ms, out, max, &n);
	counter_conds(a, cfg, now_ms, out, max, &n);
	disk_conds(a, cfg, out, max, &n);
	return n;
}
