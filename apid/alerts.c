/* alerts — see alerts.h and docs/alerts.md.
 *
 * One thread. Each round: the silences, the actions in flight and the
 * failed ones, then one scan of the miners (every rule of a miner from its
 * row), then the farm's conditions; each true condition is looked up in
 * the table of tracked (rule, subject) pairs. What changes in the database
 * (alerts fired, resolved; due notifications with their alerts marked
 * notified) is written in at most two writer requests per round, and the
 * memory follows only once they are committed, so a lost transaction is
 * simply done again at the next round.
 *
 * An alert's detail (JSON) keeps what a restart needs: the miner's model
 * and subnet (the grouping), "silenced" (covered by a silence when it
 * fired), and "notified" / "resolved_notified" once its notification was
 * enqueued (or deliberately not sent).
 */
#include "alerts.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "alerts_farm.h"
#include "apply.h"
#include "core.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "notify.h"
#include "store.h"
#include "writer.h"

#define BUCKETS      65536        /* tracked pairs: 10,000 miners x a few rules */
#define FARM_MAX     256          /* farm conditions per round */
#define SILENCES_MAX 1024
#define HW_WINDOW_MS 60000        /* the hardware-error rate is taken over a minute at least */
#define RELOAD_DAYS  7            /* resolved alerts younger than this whose notification
				   * was not out yet are sent after a restart */

enum { G_FIRING, G_RESOLVED };

/* One (rule, subject) whose condition is true, or firing. */
struct track {
	struct track *next;
	uint32_t hash;
	int rule;
	char subject[64];
	char mac[18];
	char model[64];          /* the model's name, for the grouping */
	char subnet[24];
	int64_t since;           /* the condition first seen true: the alert's start */
	int64_t clear_since;     /* firing, condition clear since (0: true now) */
	uint64_t seen;           /* the round it was last true */
	long long id;            /* its alerts row once fired (0: pending) */
	bool silenced;           /* fired under a silence: never notified */
	double value, threshold;
	char summary[192];
};

/* An alert waiting in a group for its notification. */
struct item {
	long long id;
	char summary[192];
	char subject[64];
	char mac[18];
	char model[64];
	char subnet[24];
	int64_t started, ended;
};

struct group {
	int64_t opened_ms;       /* the first item's arrival; 0: empty */
	struct item *items;
	size_t n, cap;
};

/* A MAC's hardware-error counter, for the rate. */
struct hw {
	struct hw *next;
	uint32_t hash;
	char mac[18];
	long long base;          /* the counter at base_ts */
	int64_t base_ts;         /* a status's ts_ms */
	double rate;             /* errors a minute over the last window; NAN: none yet */
};

/* A MAC in a set (actions in flight) or with a failed action. */
struct macnote {
	struct macnote *next;
	uint32_t hash;
	char mac[18];
	char what[160];          /* action_failed: "restart expired: ..." */
	double minutes;          /* action_failed: how long ago */
};

struct silence {
	char rule[32];           /* "" any */
	char mac[18];            /* "" any */
};

struct apid_alerts {
	struct apid *a;
	struct apid_notify *notify;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;      /* guards stop, next_cfg and stats */
	pthread_cond_t cv;
	bool stop;
	struct hive_cfg *next_cfg;        /* a reload's, taken at the next round */
	struct apid_alerts_stats stats;

	/* The thread's own. */
	struct hive_cfg cfg;
	sqlite3 *ro;
	sqlite3_stmt *st_miners, *st_busy, *st_failed, *st_silences;
	struct track *tracks[BUCKETS];
	struct hw *hws[BUCKETS];
	struct macnote *busy[4096], *failed[4096];
	uint64_t round;
	struct group groups[HIVE_ALERT_RULES][2];
	struct silence silences[SILENCES_MAX];
	size_t n_silences;
	struct apid_alert_cond farm[FARM_MAX];
	/* This round's changes, written by one writer request. */
	struct track **fires;
	size_t n_fires, cap_fires;
	struct track **resolves;
	size_t n_resolves, cap_resolves;
};

static uint32_t hash_str(const char *s, uint32_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static uint32_t track_hash(int rule, const char *subject)
{
	return hash_str(subject, 2166136261u ^ (uint32_t)rule * 0x9e3779b9u);
}

static struct track *track_find(struct apid_alerts *al, int rule, const char *subject,
				uint32_t h)
{
	for (struct track *t = al->tracks[h % BUCKETS]; t; t = t->next)
		if (t->hash == h && t->rule == rule && strcmp(t->subject, subject) == 0)
			return t;
	return NULL;
}

static struct track *track_add(struct apid_alerts *al, int rule, const char *subject, uint32_t h)
{
	struct track *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->hash = h;
	t->rule = rule;
	snprintf(t->subject, sizeof(t->subject), "%s", subject);
	t->next = al->tracks[h % BUCKETS];
	al->tracks[h % BUCKETS] = t;
	return t;
}

static void notes_clear(struct macnote **set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		while (set[i]) {
			struct macnote *x = set[i];

			set[i] = x->next;
			free(x);
		}
}

#define NOTE_BUCKETS 4096

static struct macnote *note_find(struct macnote **set, const char *mac)
{
	uint32_t h = hash_str(mac, 2166136261u);

	for (struct macnote *x = set[h % NOTE_BUCKETS]; x; x = x->next)
		if (x->hash == h && strcmp(x->mac, mac) == 0)
			return x;
	return NULL;
}

static struct macnote *note_add(struct macnote **set, const char *mac)
{
	uint32_t h = hash_str(mac, 2166136261u);
	struct macnote *x = note_find(set, mac);

	if (x)
		return x;
	if (!(x = calloc(1, sizeof(*x))))
		return NULL;
	x->hash = h;
	snprintf(x->mac, sizeof(x->mac), "%s", mac);
	x->next = set[h % NOTE_BUCKETS];
	set[h % NOTE_BUCKETS] = x;
	return x;
}

static struct hw *hw_get(struct apid_alerts *al, const char *mac)
{
	uint32_t h = hash_str(mac, 2166136261u);
	struct hw *x;

	for (x = al->hws[h % BUCKETS]; x; x = x->next)
		if (x->hash == h && strcmp(x->mac, mac) == 0)
			return x;
	if (!(x = calloc(1, sizeof(*x))))
		return NULL;
	x->hash = h;
	snprintf(x->mac, sizeof(x->mac), "%s", mac);
	x->rate = NAN;
	x->base_ts = -1;
	x->next = al->hws[h % BUCKETS];
	al->hws[h % BUCKETS] = x;
	return x;
}

static bool push_ptr(struct track ***arr, size_t *n, size_t *cap, struct track *t)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct track **na = realloc(*arr, nc * sizeof(*na));

		if (!na)
			return false;
		*arr = na;
		*cap = nc;
	}
	(*arr)[(*n)++] = t;
	return true;
}

static bool group_add(struct group *g, const struct track *t, int64_t started, int64_t ended,
		      int64_t now)
{
	struct item *it;

	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 16;
		struct item *ni = realloc(g->items, nc * sizeof(*ni));

		if (!ni)
			return false;
		g->items = ni;
		g->cap = nc;
	}
	it = &g->items[g->n++];
	memset(it, 0, sizeof(*it));
	it->id = t->id;
	snprintf(it->summary, sizeof(it->summary), "%s", t->summary);
	snprintf(it->subject, sizeof(it->subject), "%s", t->subject);
	snprintf(it->mac, sizeof(it->mac), "%s", t->mac);
	snprintf(it->model, sizeof(it->model), "%s", t->model);
	snprintf(it->subnet, sizeof(it->subnet), "%s", t->subnet);
	it->started = started;
	it->ended = ended;
	if (!g->opened_ms)
		g->opened_ms = now;
	return true;
}

/* ------------------------------------------------------------ rules' figures */

/* The threshold and wait of rule for a model (its override, else the rule's). */
static double rule_threshold(const struct hive_cfg *c, int rule, const char *alias)
{
	const struct hive_alert_rule *r = &c->alerts.rules[rule];

	for (size_t i = 0; alias && i < r->n_models; i++)
		if (strcmp(r->models[i].model, alias) == 0 && !isnan(r->models[i].threshold))
			return r->models[i].threshold;
	return r->threshold;
}

static int64_t rule_for_ms(const struct hive_cfg *c, int rule, const char *alias)
{
	const struct hive_alert_rule *r = &c->alerts.rules[rule];

	for (size_t i = 0; alias && i < r->n_models; i++)
		if (strcmp(r->models[i].model, alias) == 0 && r->models[i].for_seconds >= 0)
			return (int64_t)r->models[i].for_seconds * 1000;
	return (int64_t)r->for_seconds * 1000;
}

/* ------------------------------------------------------------ conditions */

/* What a condition needs besides struct apid_alert_cond: the model's
 * alias (overrides) and the grouping's model name and subnet. */
struct where {
	const char *alias, *model, *subnet;
};

/* A condition true now: pending from now, or kept; due ones join the
 * round's fires. */
static void cond_true(struct apid_alerts *al, const struct apid_alert_cond *c,
		      const struct where *w, int64_t now)
{
	uint32_t h = track_hash(c->rule, c->subject);
	struct track *t = track_find(al, c->rule, c->subject, h);

	if (!t) {
		if (!(t = track_add(al, c->rule, c->subject, h)))
			return;
		t->since = now;
	}
	t->seen = al->round;
	t->clear_since = 0;
	if (t->id)
		return;          /* firing: the row keeps the figures it fired with */
	snprintf(t->mac, sizeof(t->mac), "%s", c->mac);
	snprintf(t->model, sizeof(t->model), "%s", w && w->model ? w->model : "");
	snprintf(t->subnet, sizeof(t->subnet), "%s", w && w->subnet ? w->subnet : "");
	t->value = c->value;
	t->threshold = c->threshold;
	snprintf(t->summary, sizeof(t->summary), "%s", c->summary);
	if (now - t->since >= rule_for_ms(&al->cfg, c->rule, w ? w->alias : NULL))
		push_ptr(&al->fires, &al->n_fires, &al->cap_fires, t);
}

static void miner_cond(struct apid_alerts *al, int rule, const char *mac, double value,
		       double threshold, const struct where *w, int64_t now, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
static void miner_cond(struct apid_alerts *al, int rule, const char *mac, double value,
		       double threshold, const struct where *w, int64_t now, const char *fmt, ...)
{
	struct apid_alert_cond c = { .rule = rule, .value = value, .threshold = threshold };
	va_list ap;

	snprintf(c.subject, sizeof(c.subject), "%s", mac);
	snprintf(c.mac, sizeof(c.mac), "%s", mac);
	va_start(ap, fmt);
	vsnprintf(c.summary, sizeof(c.summary), fmt, ap);
	va_end(ap);
	cond_true(al, &c, w, now);
}

static bool on(const struct apid_alerts *al, int rule)
{
	return al->cfg.alerts.rules[rule].enabled;
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? (const char *)s : "";
}

/* A state in which the chains hash. */
static bool hashing_state(const char *s)
{
	return strcmp(s, "mining") == 0 || strcmp(s, "auto-tuning") == 0 ||
	       strcmp(s, "auto_tuning") == 0 || strcmp(s, "tuning") == 0;
}

enum {
	M_MAC, M_ONLINE, M_ALIAS, M_MODEL, M_SUBNET, M_LAST_SEEN, M_CONFLICT, M_ERR_MS, M_ERR,
	M_TS, M_STATE, M_DESC, M_PRESET, M_HR, M_CHIP, M_PCB, M_FANS, M_CHAINS, M_HW, M_TH,
	M_NCHAINS
};
static const char sql_miners[] =
	"SELECT m.mac, m.online, m.model, coalesce(mo.name, m.model, ''), coalesce(m.subnet, ''),"
	" m.last_seen_ms, m.conflict, m.last_error_ms, m.last_error,"
	" s.ts_ms, coalesce(s.state, ''), coalesce(s.state_description, ''), s.preset,"
	" s.hr_realtime_ghs, s.chip_temp_max, s.pcb_temp_max, s.fans, s.chains, s.hw_errors,"
	" p.th, mo.num_chains"
	" FROM miners m"
	" LEFT JOIN models mo ON mo.alias = m.model"
	" LEFT JOIN statuses s ON s.id = m.last_status_id"
	" LEFT JOIN model_presets p ON p.model = m.model AND p.name = s.preset";

/* Every miner rule of the miner st stands on. */
static void miner_rules(struct apid_alerts *al, sqlite3_stmt *st, int64_t now)
{
	const struct hive_cfg *c = &al->cfg;
	const char *mac = col(st, M_MAC), *alias = col(st, M_ALIAS), *state = col(st, M_STATE);
	struct where w = { alias, col(st, M_MODEL), col(st, M_SUBNET) };
	bool online = sqlite3_column_int(st, M_ONLINE) != 0;
	bool has_status = sqlite3_column_type(st, M_TS) != SQLITE_NULL;
	int64_t ts = sqlite3_column_int64(st, M_TS);
	int64_t status_ms = (int64_t)c->intervals.status_seconds * 1000;
	int64_t fresh_ms = 3 * status_ms > 10000 ? 3 * status_ms : 10000;
	bool fresh = online && has_status && now - ts <= fresh_ms;
	bool busy = note_find(al->busy, mac) != NULL;
	bool hashing = fresh && hashing_state(state);
	struct macnote *failed;

	/* Offline: apid lost it (a sweep did not list it), or its polls fail
	 * and no status came for three intervals. */
	if (on(al, HIVE_ALERT_MINER_OFFLINE) && !busy) {
		int64_t err_ms = sqlite3_column_int64(st, M_ERR_MS);
		int64_t last = has_status ? ts : sqlite3_column_int64(st, M_LAST_SEEN);

		if (!online || (err_ms > ts && now - ts > 3 * status_ms && now - last > 3 * status_ms)) {
			char why[96] = "";

			if (sqlite3_column_type(st, M_ERR) != SQLITE_NULL)
				snprintf(why, sizeof(why), " (%.80s)", col(st, M_ERR));
			miner_cond(al, HIVE_ALERT_MINER_OFFLINE, mac, (double)(now - last) / 1000.0,
				   NAN, &w, now, "%s offline: no answer for %lld s%s", mac,
				   (long long)((now - last) / 1000), why);
		}
	}
	if (on(al, HIVE_ALERT_PRESET_CONFLICT) && sqlite3_column_type(st, M_CONFLICT) != SQLITE_NULL)
		miner_cond(al, HIVE_ALERT_PRESET_CONFLICT, mac, NAN, NAN, &w, now,
			   "%s in preset conflict: %.120s", mac, col(st, M_CONFLICT));
	if (on(al, HIVE_ALERT_ACTION_FAILED) && (failed = note_find(al->failed, mac)) != NULL)
		miner_cond(al, HIVE_ALERT_ACTION_FAILED, mac, failed->minutes,
			   rule_threshold(c, HIVE_ALERT_ACTION_FAILED, alias), &w, now, "%s %s", mac,
			   failed->what);
	if (!fresh)
		return;

	if (on(al, HIVE_ALERT_CHIP_TEMP_HIGH)) {
		double thr = rule_threshold(c, HIVE_ALERT_CHIP_TEMP_HIGH, alias);
		bool chip = sqlite3_column_type(st, M_CHIP) != SQLITE_NULL;
		bool pcb = sqlite3_column_type(st, M_PCB) != SQLITE_NULL;
		double tc = chip ? sqlite3_column_double(st, M_CHIP) : -INFINITY;
		double tp = pcb ? sqlite3_column_double(st, M_PCB) : -INFINITY;
		double t = tc > tp ? tc : tp;

		if ((chip || pcb) && t >= thr)
			miner_cond(al, HIVE_ALERT_CHIP_TEMP_HIGH, mac, t, thr, &w, now,
				   "%s %s at %.0f °C (threshold %.0f °C)", mac,
				   tc >= tp ? "chip" : "PCB", t, thr);
	}
	if (on(al, HIVE_ALERT_HASHRATE_LOW) && !busy && strcmp(state, "stopped") != 0 &&
	    strcmp(col(st, M_DESC), "paused") != 0 &&
	    sqlite3_column_type(st, M_TH) != SQLITE_NULL && sqlite3_column_double(st, M_TH) > 0) {
		double thr = rule_threshold(c, HIVE_ALERT_HASHRATE_LOW, alias);
		double th = sqlite3_column_double(st, M_TH);
		double hr = sqlite3_column_double(st, M_HR) / 1000.0;   /* TH/s */
		double pct = hr / th * 100.0;

		if (pct < thr)
			miner_cond(al, HIVE_ALERT_HASHRATE_LOW, mac, pct, thr, &w, now,
				   "%s at %.0f%% of preset %s (%.1f of %.1f TH/s)", mac, pct,
				   col(st, M_PRESET), hr, th);
	}
	if (hashing && on(al, HIVE_ALERT_FAN_STOPPED) &&
	    sqlite3_column_type(st, M_FANS) != SQLITE_NULL) {
		double thr = rule_threshold(c, HIVE_ALERT_FAN_STOPPED, alias);
		json_t *fans = json_loads(col(st, M_FANS), 0, NULL), *f;
		size_t i;
		int stopped = 0, first = -1;

		json_array_foreach(fans, i, f)
			if (json_is_number(f) && json_number_value(f) <= thr) {
				stopped++;
				if (first < 0)
					first = (int)i;
			}
		if (stopped)
			miner_cond(al, HIVE_ALERT_FAN_STOPPED, mac, stopped, thr, &w, now,
				   "%s: %d fan%s stopped while mining (fan %d at %.0f rpm)", mac,
				   stopped, stopped > 1 ? "s" : "", first + 1,
				   json_number_value(json_array_get(fans, (size_t)first)));
		json_decref(fans);
	}
	if (sqlite3_column_type(st, M_CHAINS) != SQLITE_NULL &&
	    ((hashing && on(al, HIVE_ALERT_CHAIN_DEAD)) || on(al, HIVE_ALERT_RED_CHIPS))) {
		json_t *chains = json_loads(col(st, M_CHAINS), 0, NULL), *ch;
		int want = sqlite3_column_int(st, M_NCHAINS), dead = 0, n = 0;
		long long red = 0;
		size_t i;

		json_array_foreach(chains, i, ch) {
			const char *cs = json_string_value(json_object_get(ch, "state"));
			json_t *hr = json_object_get(ch, "hr_rt_ghs");

			n++;
			red += json_integer_value(json_object_get(ch, "red"));
			if ((cs && !hashing_state(cs)) || (json_is_number(hr) && json_number_value(hr) <= 0))
				dead++;
		}
		if (want > n)
			dead += want - n;   /* a board the firmware no longer lists */
		if (hashing && on(al, HIVE_ALERT_CHAIN_DEAD) && dead > 0)
			miner_cond(al, HIVE_ALERT_CHAIN_DEAD, mac, dead, NAN, &w, now,
				   "%s: %d of %d hashboards dead or missing", mac, dead,
				   want > n ? want : n);
		if (on(al, HIVE_ALERT_RED_CHIPS)) {
			double thr = rule_threshold(c, HIVE_ALERT_RED_CHIPS, alias);

			if ((double)red > thr)
				miner_cond(al, HIVE_ALERT_RED_CHIPS, mac, (double)red, thr, &w, now,
					   "%s: %lld red chips (threshold %.0f)", mac, red, thr);
		}
		json_decref(chains);
	}
	if (on(al, HIVE_ALERT_HW_ERRORS_HIGH) && sqlite3_column_type(st, M_HW) != SQLITE_NULL) {
		struct hw *x = hw_get(al, mac);
		long long cur = sqlite3_column_int64(st, M_HW);
		double thr = rule_threshold(c, HIVE_ALERT_HW_ERRORS_HIGH, alias);

		if (x) {
			if (x->base_ts < 0 || cur < x->base || ts < x->base_ts) {
				x->base = cur;       /* first sight, or the counter restarted */
				x->base_ts = ts;
				x->rate = NAN;
			} else if (ts - x->base_ts >= HW_WINDOW_MS) {
				x->rate = (double)(cur - x->base) * 60000.0 / (double)(ts - x->base_ts);
				x->base = cur;
				x->base_ts = ts;
			}
			if (!isnan(x->rate) && x->rate > thr)
				miner_cond(al, HIVE_ALERT_HW_ERRORS_HIGH, mac, x->rate, thr, &w, now,
					   "%s: %.0f hardware errors a minute (threshold %.0f)", mac,
					   x->rate, thr);
		}
	}
}

/* ------------------------------------------------------------ reading */

static const char sql_busy[] =
	"SELECT mac FROM actions WHERE state IN ('queued', 'sent', 'confirming')"
	" UNION SELECT mac FROM actions WHERE created_ms >= ?1 AND state = 'done'"
	" AND updated_ms >= ?2";
/* Each miner's latest action of the window, when it failed or expired. */
static const char sql_failed[] =
	"SELECT a.mac, a.kind, a.state, a.updated_ms, coalesce(a.error, a.error_kind, '')"
	" FROM actions a JOIN (SELECT max(id) AS id FROM actions WHERE created_ms >= ?1"
	" GROUP BY mac) l ON l.id = a.id"
	" WHERE a.state IN ('failed', 'expired') AND a.updated_ms >= ?2";
static const char sql_silences[] =
	"SELECT coalesce(rule, ''), coalesce(mac, '') FROM silences WHERE ends_ms > ?1"
	" ORDER BY id LIMIT 1024";

static int prepare(struct apid_alerts *al, char *err, size_t errlen)
{
	struct {
		const char *sql;
		sqlite3_stmt **st;
	} all[] = {
		{ sql_miners, &al->st_miners }, { sql_busy, &al->st_busy },
		{ sql_failed, &al->st_failed }, { sql_silences, &al->st_silences },
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (sqlite3_prepare_v3(al->ro, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].st,
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "alerts: %s", sqlite3_errmsg(al->ro));
			return -1;
		}
	return 0;
}

static int read_actions(struct apid_alerts *al, int64_t now)
{
	int64_t timeout = (int64_t)al->cfg.control.action_timeout_seconds * 1000;
	int64_t window = (int64_t)(rule_threshold(&al->cfg, HIVE_ALERT_ACTION_FAILED, NULL) * 60000);
	sqlite3_stmt *st = al->st_busy;
	int rc;

	notes_clear(al->busy, NOTE_BUCKETS);
	notes_clear(al->failed, NOTE_BUCKETS);
	sqlite3_bind_int64(st, 1, now - 2 * timeout);
	sqlite3_bind_int64(st, 2, now - timeout);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		note_add(al->busy, col(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (!on(al, HIVE_ALERT_ACTION_FAILED))
		return 0;
	st = al->st_failed;
	sqlite3_bind_int64(st, 1, now - window - 2 * timeout);
	sqlite3_bind_int64(st, 2, now - window);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct macnote *x = note_add(al->failed, col(st, 0));

		if (!x)
			continue;
		x->minutes = (double)(now - sqlite3_column_int64(st, 3)) / 60000.0;
		snprintf(x->what, sizeof(x->what), "%s %s%s%.100s", col(st, 1), col(st, 2),
			 *col(st, 4) ? ": " : "", col(st, 4));
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int read_silences(struct apid_alerts *al, int64_t now)
{
	sqlite3_stmt *st = al->st_silences;
	int rc;

	al->n_silences = 0;
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && al->n_silences < SILENCES_MAX) {
		struct silence *s = &al->silences[al->n_silences++];

		snprintf(s->rule, sizeof(s->rule), "%s", col(st, 0));
		snprintf(s->mac, sizeof(s->mac), "%s", col(st, 1));
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static bool silenced(const struct apid_alerts *al, int rule, const char *mac)
{
	const char *name = hive_alert_rule_name(rule);

	for (size_t i = 0; i < al->n_silences; i++) {
		const struct silence *s = &al->silences[i];

		if ((!s->rule[0] || strcmp(s->rule, name) == 0) &&
		    (!s->mac[0] || strcmp(s->mac, mac) == 0))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ writing */

/* This round's fires and resolves, on the writer thread; ids come back
 * into fire_ids. */
struct change {
	struct apid_alerts *al;
	int64_t now;
	long long *fire_ids;
	bool *fire_silenced;
	bool *resolve_notify;
};

static char *detail_text(const struct track *t, bool silent)
{
	json_t *d = json_pack("{s:s, s:s, s:b}", "model", t->model, "subnet", t->subnet,
			      "silenced", silent);
	char *s;

	if (d && silent)
		json_object_set_new(d, "notified", json_true());
	s = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return s;
}

static int db_fail(sqlite3 *db, sqlite3_stmt *a, sqlite3_stmt *b, int *http_status, char *err,
		   size_t errlen)
{
	snprintf(err, errlen, "alerts: %s", sqlite3_errmsg(db));
	*http_status = 503;
	sqlite3_finalize(a);
	sqlite3_finalize(b);
	return -1;
}

static int change_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		      size_t errlen)
{
	struct change *ch = arg;
	struct apid_alerts *al = ch->al;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *ins = NULL, *sel = NULL, *res = NULL;

	if (sqlite3_prepare_v2(db,
		"INSERT INTO alerts(rule, subject, mac, state, started_ms, value, threshold, summary,"
		" detail) VALUES(?1, ?2, ?3, 'firing', ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT(rule, subject) WHERE state = 'firing' DO NOTHING", -1, &ins,
		NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id FROM alerts WHERE rule = ?1 AND subject = ?2"
			       " AND state = 'firing'", -1, &sel, NULL) != SQLITE_OK)
		return db_fail(db, ins, sel, http_status, err, errlen);
	for (size_t i = 0; i < al->n_fires; i++) {
		const struct track *t = al->fires[i];
		char *detail = detail_text(t, ch->fire_silenced[i]);
		int rc;

		sqlite3_bind_text(ins, 1, hive_alert_rule_name(t->rule), -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, t->subject, -1, SQLITE_STATIC);
		if (t->mac[0])
			sqlite3_bind_text(ins, 3, t->mac, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 3);
		sqlite3_bind_int64(ins, 4, t->since);
		if (isnan(t->value))
			sqlite3_bind_null(ins, 5);
		else
			sqlite3_bind_double(ins, 5, t->value);
		if (isnan(t->threshold))
			sqlite3_bind_null(ins, 6);
		else
			sqlite3_bind_double(ins, 6, t->threshold);
		sqlite3_bind_text(ins, 7, t->summary, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 8, detail, -1, free);
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		if (rc != SQLITE_DONE)
			return db_fail(db, ins, sel, http_status, err, errlen);
		if (sqlite3_changes(db) == 1) {
			ch->fire_ids[i] = sqlite3_last_insert_rowid(db);
			continue;
		}
		/* Already firing (written by an earlier run): adopt that row. */
		sqlite3_bind_text(sel, 1, hive_alert_rule_name(t->rule), -1, SQLITE_STATIC);
		sqlite3_bind_text(sel, 2, t->subject, -1, SQLITE_STATIC);
		rc = sqlite3_step(sel);
		ch->fire_ids[i] = rc == SQLITE_ROW ? sqlite3_column_int64(sel, 0) : 0;
		ch->fire_silenced[i] = true;   /* its notification is that run's */
		sqlite3_reset(sel);
		if (rc != SQLITE_ROW)
			return db_fail(db, ins, sel, http_status, err, errlen);
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(sel);
	if (al->n_resolves == 0)
		return 0;
	if (sqlite3_prepare_v2(db,
		"UPDATE alerts SET state = 'resolved', ended_ms = ?2,"
		" detail = CASE WHEN ?3 THEN detail ELSE"
		" json_set(coalesce(detail, '{}'), '$.resolved_notified', json('true')) END"
		" WHERE id = ?1 AND state = 'firing'", -1, &res, NULL) != SQLITE_OK)
		return db_fail(db, res, NULL, http_status, err, errlen);
	for (size_t i = 0; i < al->n_resolves; i++) {
		const struct track *t = al->resolves[i];
		int rc;

		sqlite3_bind_int64(res, 1, t->id);
		sqlite3_bind_int64(res, 2, t->clear_since);
		sqlite3_bind_int(res, 3, ch->resolve_notify[i]);
		rc = sqlite3_step(res);
		sqlite3_reset(res);
		if (rc != SQLITE_DONE)
			return db_fail(db, res, NULL, http_status, err, errlen);
	}
	sqlite3_finalize(res);
	return 0;
}

static const char *const rule_phrase[HIVE_ALERT_RULES] = {
	[HIVE_ALERT_MINER_OFFLINE] = "offline",
	[HIVE_ALERT_CHIP_TEMP_HIGH] = "too hot",
	[HIVE_ALERT_HASHRATE_LOW] = "hashing below their preset",
	[HIVE_ALERT_FAN_STOPPED] = "with a fan stopped",
	[HIVE_ALERT_CHAIN_DEAD] = "with a hashboard dead",
	[HIVE_ALERT_RED_CHIPS] = "with red chips",
	[HIVE_ALERT_HW_ERRORS_HIGH] = "with many hardware errors",
	[HIVE_ALERT_PRESET_CONFLICT] = "in preset conflict",
	[HIVE_ALERT_ACTION_FAILED] = "with a failed action",
};

/* "127.42.0.0/24: 100; model S19j Pro: 100" from the counts. */
static void counts_text(char *out, size_t len, json_t *subnets, json_t *models)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	out[0] = '\0';
	json_object_foreach(subnets, k, v)
		if (n < len)
			n += (size_t)snprintf(out + n, len - n, "%s%s: %lld", n ? "; " : "", k,
					      (long long)json_integer_value(v));
	json_object_foreach(models, k, v)
		if (n < len)
			n += (size_t)snprintf(out + n, len - n, "%smodel %s: %lld", n ? "; " : "", k,
					      (long long)json_integer_value(v));
}

static void count_in(json_t *o, const char *key)
{
	if (!*key)
		return;
	json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + 1));
}

/* The generic webhook body of one group (docs/alerts.md). */
static json_t *group_body(int rule, int state, const struct group *g)
{
	const char *one_summary = g->n == 1 ? g->items[0].summary : NULL;
	json_t *miners = json_array(), *subjects = json_array(), *ids = json_array();
	json_t *subnets = json_object(), *models = json_object(), *b;
	const char *name = hive_alert_rule_name(rule);
	long long min_id = 0;
	int64_t started = 0, ended = 0;
	char id[96], summary[512], counts[320];
	size_t nm = 0;

	for (size_t i = 0; i < g->n; i++) {
		const struct item *it = &g->items[i];

		if (!min_id || it->id < min_id)
			min_id = it->id;
		if (!started || it->started < started)
			started = it->started;
		if (it->ended > ended)
			ended = it->ended;
		json_array_append_new(ids, json_integer(it->id));
		if (it->mac[0]) {
			json_array_append_new(miners, json_string(it->mac));
			count_in(subnets, it->subnet);
			count_in(models, it->model);
			nm++;
		} else {
			json_array_append_new(subjects, json_string(it->subject));
		}
	}
	counts_text(counts, sizeof(counts), subnets, models);
	if (g->n == 1 && one_summary && *one_summary)
		snprintf(summary, sizeof(summary), "%s%s", state == G_RESOLVED ? "resolved: " : "",
			 one_summary);
	else if (nm == g->n && rule_phrase[rule])
		snprintf(summary, sizeof(summary), "%s%zu miner%s %s%s%s%s",
			 state == G_RESOLVED ? "resolved: " : "", nm, nm == 1 ? "" : "s",
			 rule_phrase[rule], *counts ? " (" : "", counts, *counts ? ")" : "");
	else
		snprintf(summary, sizeof(summary), "%s%s on %zu subject%s%s%s%s",
			 state == G_RESOLVED ? "resolved: " : "", name, g->n, g->n == 1 ? "" : "s",
			 *counts ? " (" : "", counts, *counts ? ")" : "");
	snprintf(id, sizeof(id), "alert-%lld-%s", min_id, state == G_FIRING ? "firing" : "resolved");
	b = json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:s, s:I, s:o, s:o, s:{s:o, s:o}}",
		      "id", id, "rule", name, "state", state == G_FIRING ? "firing" : "resolved",
		      "miners", miners, "count", (json_int_t)g->n, "subjects", subjects,
		      "summary", summary, "started", (json_int_t)started,
		      "ended", state == G_RESOLVED ? json_integer(ended) : json_null(),
		      "alerts", ids, "groups", "subnet", subnets, "model", models);
	return b;
}

/* The groups due now, on the writer thread: one notification each, and
 * their alerts marked notified. */
struct flush {
	struct apid_alerts *al;
	int64_t now;
	bool due[HIVE_ALERT_RULES][2];
	int enqueued;
};

static int flush_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		     size_t errlen)
{
	struct flush *fl = arg;
	struct apid_alerts *al = fl->al;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *mark = NULL;

	fl->enqueued = 0;
	if (sqlite3_prepare_v2(db, "UPDATE alerts SET detail = json_set(coalesce(detail, '{}'),"
			       " CASE WHEN ?2 THEN '$.resolved_notified' ELSE '$.notified' END,"
			       " json('true')) WHERE id = ?1", -1, &mark, NULL) != SQLITE_OK)
		return db_fail(db, mark, NULL, http_status, err, errlen);
	for (int r = 0; r < HIVE_ALERT_RULES; r++)
		for (int s = 0; s < 2; s++) {
			const struct group *g = &al->groups[r][s];
			json_t *body;
			int n;

			if (!fl->due[r][s])
				continue;
			body = group_body(r, s, g);
			n = body ? apid_notify_enqueue(db, &al->cfg, body, fl->now) : -1;
			json_decref(body);
			if (n < 0) {
				sqlite3_finalize(mark);
				*http_status = 503;
				snprintf(err, errlen, "alerts: notification of %s not enqueued",
					 hive_alert_rule_name(r));
				return -1;
			}
			for (size_t i = 0; i < g->n; i++) {
				sqlite3_bind_int64(mark, 1, g->items[i].id);
				sqlite3_bind_int(mark, 2, s == G_RESOLVED);
				if (sqlite3_step(mark) != SQLITE_DONE)
					return db_fail(db, mark, NULL, http_status, err, errlen);
				sqlite3_reset(mark);
			}
			fl->enqueued++;
		}
	sqlite3_finalize(mark);
	return 0;
}

/* ------------------------------------------------------------ a round */

static void evaluate(struct apid_alerts *al)
{
	const struct hive_cfg *c = &al->cfg;
	int64_t t0 = hive_mono_us(), now = hive_wall_ms();
	int64_t resolve_ms = (int64_t)c->alerts.resolve_seconds * 1000;
	int64_t group_ms = (int64_t)c->alerts.group_seconds * 1000;
	struct apid_alerts_stats st;
	int nfarm = 0, rc, status = 0, pending = 0;
	char err[256];
	bool *fire_silenced = NULL, *resolve_notify = NULL;
	long long *fire_ids = NULL;

	al->round++;
	al->n_fires = al->n_resolves = 0;
	if (read_silences(al, now) < 0 || read_actions(al, now) < 0) {
		hive_log_complain("alerts read", "alerts cannot read err=\"%s\"", sqlite3_errmsg(al->ro));
		return;
	}
	while ((rc = sqlite3_step(al->st_miners)) == SQLITE_ROW)
		miner_rules(al, al->st_miners, now);
	sqlite3_reset(al->st_miners);
	if (rc != SQLITE_DONE) {
		hive_log_complain("alerts read", "alerts cannot read miners err=\"%s\"",
				  sqlite3_errmsg(al->ro));
		/* Nothing is resolved on a half scan: it would look clear. */
		return;
	}
	hive_log_recovered("alerts read", "alerts read again");
	nfarm = apid_alerts_farm(al->a, c, now, al->farm, FARM_MAX);
	for (int i = 0; i < nfarm; i++)
		if (al->farm[i].rule >= 0 && al->farm[i].rule < HIVE_ALERT_RULES &&
		    on(al, al->farm[i].rule))
			cond_true(al, &al->farm[i], NULL, now);

	/* What is no longer true: a pending one is forgotten, a firing one
	 * resolves once clear for resolve_seconds. */
	for (size_t b = 0; b < BUCKETS; b++) {
		struct track **pp = &al->tracks[b];

		while (*pp) {
			struct track *t = *pp;

			if (t->seen == al->round) {
				pp = &t->next;
				continue;
			}
			if (!t->id) {
				*pp = t->next;
				free(t);
				continue;
			}
			if (!t->clear_since)
				t->clear_since = now;
			if (now - t->clear_since >= resolve_ms)
				push_ptr(&al->resolves, &al->n_resolves, &al->cap_resolves, t);
			pp = &t->next;
		}
	}

	if (al->n_fires || al->n_resolves) {
		struct change ch = { .al = al, .now = now };

		fire_ids = calloc(al->n_fires + 1, sizeof(*fire_ids));
		fire_silenced = calloc(al->n_fires + 1, sizeof(*fire_silenced));
		resolve_notify = calloc(al->n_resolves + 1, sizeof(*resolve_notify));
		if (!fire_ids || !fire_silenced || !resolve_notify)
			goto out;
		for (size_t i = 0; i < al->n_fires; i++)
			fire_silenced[i] = silenced(al, al->fires[i]->rule, al->fires[i]->mac);
		for (size_t i = 0; i < al->n_resolves; i++) {
			const struct track *t = al->resolves[i];

			resolve_notify[i] = !t->silenced && !silenced(al, t->rule, t->mac);
		}
		ch.fire_ids = fire_ids;
		ch.fire_silenced = fire_silenced;
		ch.resolve_notify = resolve_notify;
		if (apid_writer_run(al->a->writer, change_run, &ch, &status, err, sizeof(err)) < 0) {
			hive_log_complain("alerts write", "alerts not written status=%d err=\"%s\"",
					  status, err);
			goto out;
		}
		hive_log_recovered("alerts write", "alerts written again");
		for (size_t i = 0; i < al->n_fires; i++) {
			struct track *t = al->fires[i];

			t->id = fire_ids[i];
			t->silenced = fire_silenced[i];
			log_info("alert firing id=%lld rule=%s subject=%s silenced=%d summary=\"%s\"",
				 t->id, hive_alert_rule_name(t->rule), t->subject, t->silenced,
				 t->summary);
			if (!t->silenced)
				group_add(&al->groups[t->rule][G_FIRING], t, t->since, 0, now);
		}
		for (size_t i = 0; i < al->n_resolves; i++) {
			struct track *t = al->resolves[i], **pp;

			log_info("alert resolved id=%lld rule=%s subject=%s after_s=%lld",
				 t->id, hive_alert_rule_name(t->rule), t->subject,
				 (long long)((t->clear_since - t->since) / 1000));
			if (resolve_notify[i])
				group_add(&al->groups[t->rule][G_RESOLVED], t, t->since, t->clear_since,
					  now);
			for (pp = &al->tracks[t->hash % BUCKETS]; *pp != t; pp = &(*pp)->next)
				;
			*pp = t->next;
			free(t);
		}
	}

	/* Groups whose window closed go out, one notification each. */
	{
		struct flush fl = { .al = al, .now = now };
		bool any = false;

		for (int r = 0; r < HIVE_ALERT_RULES; r++)
			for (int s = 0; s < 2; s++) {
				struct group *g = &al->groups[r][s];

				if (g->n && now - g->opened_ms >= group_ms) {
					fl.due[r][s] = true;
					any = true;
				}
			}
		if (any) {
			if (apid_writer_run(al->a->writer, flush_run, &fl, &status, err,
					    sizeof(err)) < 0) {
				hive_log_complain("alerts notify", "alerts notification not enqueued"
						  " status=%d err=\"%s\"", status, err);
			} else {
				hive_log_recovered("alerts notify", "alerts notifications enqueued again");
				for (int r = 0; r < HIVE_ALERT_RULES; r++)
					for (int s = 0; s < 2; s++)
						if (fl.due[r][s]) {
							log_info("alert notification rule=%s state=%s"
								 " alerts=%zu", hive_alert_rule_name(r),
								 s == G_FIRING ? "firing" : "resolved",
								 al->groups[r][s].n);
							al->groups[r][s].n = 0;
							al->groups[r][s].opened_ms = 0;
						}
				if (al->notify)
					apid_notify_kick(al->notify);
				pthread_mutex_lock(&al->mu);
				al->stats.notifications += (uint64_t)fl.enqueued;
				pthread_mutex_unlock(&al->mu);
			}
		}
	}
out:
	free(fire_ids);
	free(fire_silenced);
	free(resolve_notify);
	memset(&st, 0, sizeof(st));
	pending = 0;
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct track *t = al->tracks[b]; t; t = t->next) {
			if (t->id) {
				st.firing[t->rule]++;
				st.firing_total++;
			} else {
				pending++;
			}
		}
	pthread_mutex_lock(&al->mu);
	memcpy(al->stats.firing, st.firing, sizeof(st.firing));
	al->stats.firing_total = st.firing_total;
	al->stats.pending = pending;
	al->stats.evaluations++;
	al->stats.last_eval_ms = now;
	al->stats.last_eval_us = (double)(hive_mono_us() - t0);
	pthread_mutex_unlock(&al->mu);
	log_debug("alerts evaluated us=%lld firing=%d pending=%d", (long long)(hive_mono_us() - t0),
		  st.firing_total, pending);
}

/* ------------------------------------------------------------ start, stop */

/* The firing alerts back into memory, and the notifications a stop cut
 * short back into their groups. */
static int load(struct apid_alerts *al, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT id, rule, subject, coalesce(mac, ''), state, started_ms,"
		" coalesce(ended_ms, 0), value, threshold, coalesce(summary, ''),"
		" coalesce(json_extract(detail, '$.model'), ''),"
		" coalesce(json_extract(detail, '$.subnet'), ''),"
		" coalesce(json_extract(detail, '$.silenced'), 0),"
		" coalesce(json_extract(detail, '$.notified'), 0),"
		" coalesce(json_extract(detail, '$.resolved_notified'), 0)"
		" FROM alerts WHERE state = 'firing'"
		"  OR (started_ms >= ?1 AND state = 'resolved'"
		"      AND json_extract(detail, '$.resolved_notified') IS NULL)"
		" ORDER BY id";
	sqlite3_stmt *st;
	int64_t now = hive_wall_ms();
	int rc, firing = 0, regrouped = 0;

	if (sqlite3_prepare_v2(al->ro, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "alerts: %s", sqlite3_errmsg(al->ro));
		return -1;
	}
	sqlite3_bind_int64(st, 1, now - (int64_t)RELOAD_DAYS * 86400000);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int rule = hive_alert_rule_parse(col(st, 1));
		bool is_firing = strcmp(col(st, 4), "firing") == 0;
		struct track tmp = { 0 }, *t = &tmp;
		uint32_t h;

		if (rule < 0)
			continue;
		h = track_hash(rule, col(st, 2));
		if (is_firing) {
			if (track_find(al, rule, col(st, 2), h) || !(t = track_add(al, rule, col(st, 2), h))) {
				continue;
			}
			firing++;
		} else {
			t->rule = rule;
			snprintf(t->subject, sizeof(t->subject), "%s", col(st, 2));
		}
		t->id = sqlite3_column_int64(st, 0);
		snprintf(t->mac, sizeof(t->mac), "%s", col(st, 3));
		t->since = sqlite3_column_int64(st, 5);
		t->value = sqlite3_column_type(st, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 7);
		t->threshold = sqlite3_column_type(st, 8) == SQLITE_NULL ? NAN
									  : sqlite3_column_double(st, 8);
		snprintf(t->summary, sizeof(t->summary), "%s", col(st, 9));
		snprintf(t->model, sizeof(t->model), "%s", col(st, 10));
		snprintf(t->subnet, sizeof(t->subnet), "%s", col(st, 11));
		t->silenced = sqlite3_column_int(st, 12) != 0;
		if (t->silenced)
			continue;
		if (!sqlite3_column_int(st, 13)) {
			group_add(&al->groups[rule][G_FIRING], t, t->since, 0, now);
			regrouped++;
		}
		if (!is_firing) {
			group_add(&al->groups[rule][G_RESOLVED], t, t->since,
				  sqlite3_column_int64(st, 6), now);
			regrouped++;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "alerts: %s", sqlite3_errmsg(al->ro));
		return -1;
	}
	log_info("alerts loaded firing=%d notifications_due=%d", firing, regrouped);
	return 0;
}

static void *run(void *arg)
{
	struct apid_alerts *al = arg;

	pthread_mutex_lock(&al->mu);
	while (!al->stop) {
		int64_t deadline;

		if (al->next_cfg) {
			hive_cfg_free(&al->cfg);
			al->cfg = *al->next_cfg;
			free(al->next_cfg);
			al->next_cfg = NULL;
		}
		pthread_mutex_unlock(&al->mu);
		if (al->cfg.alerts.enabled)
			evaluate(al);
		deadline = hive_mono_ms() + (int64_t)al->cfg.alerts.evaluate_seconds * 1000;
		pthread_mutex_lock(&al->mu);
		while (!al->stop && !al->next_cfg &&
		       hive_cond_wait_until(&al->cv, &al->mu, deadline) == 0)
			;
	}
	pthread_mutex_unlock(&al->mu);
	return NULL;
}

static void alerts_free(struct apid_alerts *al)
{
	sqlite3_finalize(al->st_miners);
	sqlite3_finalize(al->st_busy);
	sqlite3_finalize(al->st_failed);
	sqlite3_finalize(al->st_silences);
	sqlite3_close(al->ro);
	for (size_t b = 0; b < BUCKETS; b++) {
		while (al->tracks[b]) {
			struct track *t = al->tracks[b];

			al->tracks[b] = t->next;
			free(t);
		}
		while (al->hws[b]) {
			struct hw *x = al->hws[b];

			al->hws[b] = x->next;
			free(x);
		}
	}
	notes_clear(al->busy, NOTE_BUCKETS);
	notes_clear(al->failed, NOTE_BUCKETS);
	for (int r = 0; r < HIVE_ALERT_RULES; r++)
		for (int s = 0; s < 2; s++)
			free(al->groups[r][s].items);
	free(al->fires);
	free(al->resolves);
	if (al->next_cfg) {
		hive_cfg_free(al->next_cfg);
		free(al->next_cfg);
	}
	hive_cfg_free(&al->cfg);
	pthread_mutex_destroy(&al->mu);
	pthread_cond_destroy(&al->cv);
	free(al);
}

struct apid_alerts *apid_alerts_start(struct apid *a, struct apid_notify *notify, char *err,
				      size_t errlen)
{
	struct apid_alerts *al = calloc(1, sizeof(*al));

	if (!al) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	al->a = a;
	al->notify = notify;
	pthread_mutex_init(&al->mu, NULL);
	hive_cond_init_mono(&al->cv);
	if (hive_cfg_copy(&al->cfg, &a->d.cfg) < 0) {
		hive_cfg_defaults(&al->cfg);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!(al->ro = apid_store_open_readonly(a->db_path, err, errlen)) ||
	    prepare(al, err, errlen) < 0 || load(al, err, errlen) < 0)
		goto fail;
	if (pthread_create(&al->thread, NULL, run, al) != 0) {
		snprintf(err, errlen, "alerts: cannot start its thread");
		goto fail;
	}
	al->started = true;
	return al;
fail:
	alerts_free(al);
	return NULL;
}

void apid_alerts_configure(struct apid_alerts *al, const struct hive_cfg *cfg)
{
	struct hive_cfg *next;

	if (!al || !(next = calloc(1, sizeof(*next))))
		return;
	if (hive_cfg_copy(next, cfg) < 0) {
		free(next);
		log_warnx("alerts: reload not taken (out of memory)");
		return;
	}
	pthread_mutex_lock(&al->mu);
	if (al->next_cfg) {
		hive_cfg_free(al->next_cfg);
		free(al->next_cfg);
	}
	al->next_cfg = next;
	pthread_cond_signal(&al->cv);
	pthread_mutex_unlock(&al->mu);
}

void apid_alerts_stop(struct apid_alerts *al)
{
	if (!al)
		return;
	pthread_mutex_lock(&al->mu);
	al->stop = true;
	pthread_cond_signal(&al->cv);
	pthread_mutex_unlock(&al->mu);
	if (al->started)
		pthread_join(al->thread, NULL);
	alerts_free(al);
}

void apid_alerts_get_stats(struct apid_alerts *al, struct apid_alerts_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!al)
		return;
	pthread_mutex_lock(&al->mu);
	*out = al->stats;
	pthread_mutex_unlock(&al->mu);
}

json_t *apid_alerts_health(struct apid_alerts *al)
{
	struct apid_alerts_stats s;
	json_t *by, *h;

	if (!al)
		return json_null();
	apid_alerts_get_stats(al, &s);
	by = json_object();
	for (int r = 0; r < HIVE_ALERT_RULES; r++)
		if (s.firing[r])
			json_object_set_new(by, hive_alert_rule_name(r), json_integer(s.firing[r]));
	h = json_pack("{s:i, s:o, s:i, s:I, s:f, s:I}", "firing", s.firing_total, "by_rule", by,
		      "pending", s.pending, "evaluated_ms", (json_int_t)s.last_eval_ms,
		      "eval_ms", s.last_eval_us / 1000.0, "notifications",
		      (json_int_t)s.notifications);
	return h ? h : json_null();
}
