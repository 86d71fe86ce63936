/* power — the balancer; see power.h and docs/power.md. */
#include "power.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions.h"
#include "allocate.h"
#include "apply.h"
#include "event.h"
#include "guard.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "hive/plant.h"
#include "writer.h"

#define ACTOR              "balancer"
#define HIST_MAX           4096   /* targets remembered for the raise window */
#define MEMO_BITS          15     /* per-miner memory: 32768 slots (> 10,000 miners) */
#define MEMO_SLOTS         (1u << MEMO_BITS)
#define CORRECTION_MAX     0.10   /* the plant's meter may move the estimate ±10 % */
#define STEADY_SHARE       0.01   /* "steady": meter and estimate moved less than 1 % */
#define CORRECTION_ALPHA   0.3    /* smoothing of the correction, per reading */
#define IDLE_SHARE         0.05   /* an unmetered stopped miner: 5 % of its model's top preset */
#define CONFIRM_SHARE      0.05   /* a jump is confirmed by a reading within 5 % of it */
#define OK_INTERVALS       3      /* feed older than 3 intervals: stale */
#define DECISIONS_REPEAT_MS (10 * 60 * 1000)  /* a dry run's unchanged plan: logged again after */

enum refusal {
	REF_ERROR, REF_SOURCE_FAILED, REF_LOW_CONFIDENCE, REF_STALE, REF_NOT_FRESH, REF_JUMP,
	REF_COUNT
};
static const char *const refusal_names[REF_COUNT] = {
	"error", "source_failed", "low_confidence", "stale", "not_fresh", "jump",
};

enum feed_state { FEED_OK, FEED_STALE, FEED_FALLBACK };
static const char *const state_names[] = { "ok", "stale", "fallback" };

/* What the balancer remembers of one miner. */
struct memo {
	char mac[HIVE_MAC_LEN];
	int64_t raised_wall;         /* its last raise by the balancer */
	int from_w, to_w;            /* its last change by the balancer: counts at the higher
				      * while it tunes (unmetered) */
	int64_t changed_wall;
};

/* One managed miner in the last plan (GET /api/power/plan). */
struct plan_row {
	char mac[HIVE_MAC_LEN];
	char model[64], current[64], planned[64];
	double watts_now, watts_planned, th_planned;
	const char *reason;          /* a static name */
	bool changed;
};

/* Settings the API may change; `api` says which came from it. */
struct settings {
	int mode;
	double margin_pct;
	long long budget_w;          /* manual source: < 0 = the config's */
	int fallback;
	bool api_mode, api_margin, api_budget, api_fallback;
};

struct apid_power {
	pthread_mutex_t mu;
	struct hive_cfg cfg;         /* power.*, intervals.status_seconds (subnets dropped) */
	struct settings set;
	struct apid_actions *actions;
	struct apid_writer *writer;
	struct hive_bus *jobs_plant;
	struct apid_writer_hooks inner;
	int64_t started_mono;
	/* the feed (under mu) */
	bool have;
	double gen_w, meas_w;        /* the last accepted reading; meas NAN = unknown */
	double prev_meas_w;          /* the one before */
	double prev_est_w;           /* the raw estimate at the last reading's cycle */
	long long feed_wall;         /* its time: collection_timestamp, or when received */
	long long last_id, last_collected;
	bool jump_pending;
	double jump_w;
	uint64_t accepted, refused, refused_by[REF_COUNT];
	char last_refused[160];
	long long job_seq;
	struct apid_guard *guard;       /* nonces of the read jobs; may be NULL */
	int64_t next_job_mono;
	/* balancing */
	double correction_w;
	bool reading_fresh;          /* a reading arrived since the last cycle */
	bool newest_refused;         /* the newest reading was refused: no raises */
	struct { int64_t mono; double target; bool ok; } hist[HIST_MAX];
	size_t hist_head, hist_n;
	struct memo *memo;
	int64_t last_cycle_mono;
	atomic_bool cycle_posted;
	long long failures_since;    /* wall: balancer actions that failed after it exclude */
	int64_t last_change_wall;    /* the balancer's last actions */
	int64_t last_cut_wall;
	char last_state[16];
	char last_plan_key[64];
	int64_t last_decision_wall;
	json_t *status;              /* the last cycle's figures */
	struct plan_row *plan;       /* and its plan, made JSON only when asked for */
	size_t n_plan;
	struct {
		int64_t ts;
		int mode;
		double target_w, expected_w, expected_th;
		bool feasible;
	} plan_head;
};

/* ---------------------------------------------------------------- memo */

static struct memo *memo_get(struct apid_power *p, const char *mac, bool create)
{
	unsigned h = 2166136261u;

	for (const char *c = mac; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	for (unsigned i = 0; i < MEMO_SLOTS; i++) {
		struct memo *m = &p->memo[(h + i) & (MEMO_SLOTS - 1)];

		if (strcmp(m->mac, mac) == 0)
			return m;
		if (!m->mac[0]) {
			if (!create)
				return NULL;
			snprintf(m->mac, sizeof(m->mac), "%s", mac);
			return m;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- life */

static void take_cfg(struct apid_power *p, const struct hive_cfg *cfg)
{
	p->cfg = *cfg;
	p->cfg.network.subnets = NULL;
	p->cfg.network.n_subnets = 0;
	if (!p->set.api_mode)
		p->set.mode = cfg->power.mode;
	if (!p->set.api_margin)
		p->set.margin_pct = cfg->power.margin_pct;
	if (!p->set.api_fallback)
		p->set.fallback = cfg->power.fallback;
	if (!p->set.api_budget)
		p->set.budget_w = -1;
}

struct apid_power *apid_power_new(const struct hive_cfg *cfg, struct apid_actions *actions,
				  struct apid_writer *writer, struct hive_bus *jobs_plant)
{
	struct apid_power *p = calloc(1, sizeof(*p));

	if (!p || !(p->memo = calloc(MEMO_SLOTS, sizeof(*p->memo)))) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	take_cfg(p, cfg);
	p->actions = actions;
	p->writer = writer;
	p->jobs_plant = jobs_plant;
	p->started_mono = hive_mono_ms();
	p->last_id = p->last_collected = -1;
	p->meas_w = p->prev_meas_w = NAN;
	p->failures_since = hive_wall_ms();
	snprintf(p->last_state, sizeof(p->last_state), "-");
	return p;
}

void apid_power_free(struct apid_power *p)
{
	if (!p)
		return;
	json_decref(p->status);
	free(p->plan);
	free(p->memo);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void apid_power_configure(struct apid_power *p, const struct hive_cfg *cfg)
{
	pthread_mutex_lock(&p->mu);
	take_cfg(p, cfg);
	pthread_mutex_unlock(&p->mu);
}

/* The config's value of a setting, as stored beside an API change: when
 * the config changes it, the config wins again. */
static void config_value(const struct hive_cfg *c, const char *key, char *out, size_t len)
{
	if (strcmp(key, "mode") == 0)
		snprintf(out, len, "%s", hive_power_mode_name(c->power.mode));
	else if (strcmp(key, "margin_pct") == 0)
		snprintf(out, len, "%.17g", c->power.margin_pct);
	else if (strcmp(key, "fallback") == 0)
		snprintf(out, len, "%s", hive_power_fallback_name(c->power.fallback));
	else
		snprintf(out, len, "%lld", c->power.source.budget_w);
}

int apid_power_load(struct apid_power *p, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t wall = hive_wall_ms();
	int rc;

	pthread_mutex_lock(&p->mu);
	rc = sqlite3_prepare_v2(db, "SELECT key, value, config_value FROM power_settings", -1,
				&st, NULL);
	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);
		const char *cv = (const char *)sqlite3_column_text(st, 2);
		char now[64];

		if (!k || !v)
			continue;
		config_value(&p->cfg, k, now, sizeof(now));
		if (!cv || strcmp(cv, now) != 0) {
			log_info("power setting from the config key=%s value=%s (changed since the "
				 "API set %s)", k, now, v);
			continue;
		}
		if (strcmp(k, "mode") == 0 && hive_power_mode_parse(v) >= 0) {
			p->set.mode = hive_power_mode_parse(v);
			p->set.api_mode = true;
		} else if (strcmp(k, "margin_pct") == 0) {
			p->set.margin_pct = strtod(v, NULL);
			p->set.api_margin = true;
		} else if (strcmp(k, "fallback") == 0 && hive_power_fallback_parse(v) >= 0) {
			p->set.fallback = hive_power_fallback_parse(v);
			p->set.api_fallback = true;
		} else if (strcmp(k, "budget_w") == 0) {
			p->set.budget_w = strtoll(v, NULL, 10);
			p->set.api_budget = true;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_OK) {
		/* Raises remembered, so a restart does not raise a miner again early. */
		rc = sqlite3_prepare_v2(db,
			"SELECT mac, MAX(created_ms) FROM actions WHERE actor = 'balancer' "
			"AND reason LIKE 'raise%' AND created_ms > ?1 GROUP BY mac", -1, &st, NULL);
		if (rc == SQLITE_OK)
			sqlite3_bind_int64(st, 1, wall - (int64_t)p->cfg.power.min_raise_interval_seconds * 1000);
		while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
			struct memo *m = memo_get(p, (const char *)sqlite3_column_text(st, 0), true);

			if (m)
				m->raised_wall = sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
	}
	if (p->set.mode != HIVE_POWER_OFF && p->cfg.power.source.kind == HIVE_PLANT_NONE)
		p->set.mode = HIVE_POWER_OFF;
	pthread_mutex_unlock(&p->mu);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "power: %s", sqlite3_errmsg(db));
		return -1;
	}
	log_info("power mode=%s source=%s margin_pct=%g", hive_power_mode_name(p->set.mode),
		 hive_plant_kind_name(p->cfg.power.source.kind), p->set.margin_pct);
	return 0;
}

/* ---------------------------------------------------------------- SQL */

static int exec_bind(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		hive_log_complain("power sql", "power sql failed err=\"%s\"", sqlite3_errmsg(db));
		return -1;
	}
	va_start(ap, fmt);
	for (int i = 0; fmt[i]; i++) {
		switch (fmt[i]) {
		case 'i': sqlite3_bind_int64(st, i + 1, va_arg(ap, long long)); break;
		case 'd': {
			double d = va_arg(ap, double);

			if (isfinite(d))
				sqlite3_bind_double(st, i + 1, d);
			break;
		}
		case 'w': {   /* watts: whole, NULL when unknown */
			double d = va_arg(ap, double);

			if (isfinite(d))
				sqlite3_bind_int64(st, i + 1, llround(d));
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (s)
				sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
			break;
		}
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		hive_log_complain("power sql", "power sql failed err=\"%s\"", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- the fleet */

struct preset { char name[64]; int watts; double th; };

struct model {
	char alias[64];
	struct preset *presets;
	int n;
	int max_preset;              /* index, -1: none */
	int top_w;                   /* its highest preset's watts */
	double learned_w, learned_n; /* metered miners at stock ("disabled"): mean draw */
	struct apid_alloc_preset *ap;
};

struct miner {
	char mac[HIVE_MAC_LEN];
	int model;                   /* index, -1: no catalogue */
	bool managed, pinned, excluded, conflict, reachable, metered, paused, mining, stopped;
	char state[32], preset[64];
	int current;                 /* preset index, APID_ALLOC_PRESET_PAUSED / _UNKNOWN */
	double power_w;              /* measured, NAN when unmetered */
	double est_w;                /* what it draws now, conservative */
	double cmd_w;                /* what it will draw once its open action is done */
	bool open;                   /* an open action */
	bool open_balancer;
	bool open_cut;               /* a balancer action lowering it */
	double open_raise_w;         /* a balancer raise in flight: watts added */
	const char *why;             /* not planned: why */
	int alloc;                   /* index into the allocator's miners, -1: not planned */
	bool changed;                /* this cycle changes it */
};

struct fleet {
	struct model *models;
	int n_models;
	struct miner *m;
	size_t n;
};

static void fleet_free(struct fleet *f)
{
	for (int i = 0; i < f->n_models; i++) {
		free(f->models[i].presets);
		free(f->models[i].ap);
	}
	free(f->models);
	free(f->m);
	memset(f, 0, sizeof(*f));
}

static int model_find(const struct fleet *f, const char *alias)
{
	for (int i = 0; alias && i < f->n_models; i++)
		if (strcmp(f->models[i].alias, alias) == 0)
			return i;
	return -1;
}

static int preset_find(const struct model *md, const char *name)
{
	for (int i = 0; name && i < md->n; i++)
		if (strcmp(md->presets[i].name, name) == 0)
			return i;
	return -1;
}

static int load_models(sqlite3 *db, struct fleet *f)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db,
		"SELECT m.alias, m.max_preset, p.name, p.watts, p.th FROM models m "
		"JOIN model_presets p ON p.model = m.alias "
		"WHERE p.watts > 0 AND p.th >= 0 ORDER BY m.alias, p.ord", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *alias = (const char *)sqlite3_column_text(st, 0);
		const char *maxp = (const char *)sqlite3_column_text(st, 1);
		int mi = model_find(f, alias);
		struct model *md;

		if (mi < 0) {
			struct model *nm = realloc(f->models, (size_t)(f->n_models + 1) * sizeof(*nm));

			if (!nm) {
				rc = -1;
				break;
			}
			f->models = nm;
			md = &f->models[f->n_models++];
			memset(md, 0, sizeof(*md));
			snprintf(md->alias, sizeof(md->alias), "%s", alias);
			md->max_preset = -1;
			(void)maxp;
		} else {
			md = &f->models[mi];
		}
		if (md->n >= APID_ALLOC_MAX_PRESETS)
			continue;
		struct preset *np = realloc(md->presets, (size_t)(md->n + 1) * sizeof(*np));
		if (!np) {
			rc = -1;
			break;
		}
		md->presets = np;
		snprintf(np[md->n].name, sizeof(np[md->n].name), "%s",
			 (const char *)sqlite3_column_text(st, 2));
		np[md->n].watts = sqlite3_column_int(st, 3);
		np[md->n].th = sqlite3_column_double(st, 4);
		if (maxp && strcmp(maxp, np[md->n].name) == 0)
			md->max_preset = md->n;
		if (np[md->n].watts > md->top_w)
			md->top_w = np[md->n].watts;
		md->n++;
	}
	sqlite3_finalize(st);
	for (int i = 0; rc == 0 && i < f->n_models; i++) {
		struct model *md = &f->models[i];

		if (!(md->ap = calloc((size_t)md->n, sizeof(*md->ap))))
			return -1;
		for (int k = 0; k < md->n; k++)
			md->ap[k] = (struct apid_alloc_preset){ md->presets[k].watts, md->presets[k].th };
	}
	return rc;
}

static bool state_is(const char *s, const char *a)
{
	return strcmp(s, a) == 0;
}

/* Loads every online miner with its latest status and open action. */
static int load_fleet(struct apid_power *p, sqlite3 *db, int64_t wall, struct fleet *f)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int64_t fresh_ms = (int64_t)p->cfg.intervals.status_seconds * 3000 + 5000;

	if (load_models(db, f) < 0)
		return -1;
	if (sqlite3_prepare_v2(db,
		"SELECT m.mac, m.model, m.managed, m.pinned, m.power_excluded IS NOT NULL, "
		" m.conflict IS NOT NULL, s.ts_ms, s.state, s.state_description, s.preset, "
		" s.power_w, s.power_metered, m.last_error_ms, m.last_error_op "
		"FROM miners m LEFT JOIN statuses s ON s.id = m.last_status_id "
		"WHERE m.online = 1 AND m.ip IS NOT NULL ORDER BY m.mac", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct miner *x;
		const char *txt;

		if (f->n == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			struct miner *nm = realloc(f->m, nc * sizeof(*nm));

			if (!nm) {
				sqlite3_finalize(st);
				return -1;
			}
			f->m = nm;
			cap = nc;
		}
		x = &f->m[f->n++];
		memset(x, 0, sizeof(*x));
		snprintf(x->mac, sizeof(x->mac), "%s", (const char *)sqlite3_column_text(st, 0));
		x->model = model_find(f, (const char *)sqlite3_column_text(st, 1));
		x->managed = sqlite3_column_int(st, 2);
		x->pinned = sqlite3_column_int(st, 3);
		x->excluded = sqlite3_column_int(st, 4);
		x->conflict = sqlite3_column_int(st, 5);
		x->alloc = -1;
		x->power_w = NAN;
		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			int64_t ts = sqlite3_column_int64(st, 6);
			int64_t err_ms = sqlite3_column_int64(st, 12);
			const char *op = (const char *)sqlite3_column_text(st, 13);

			x->reachable = wall - ts <= fresh_ms &&
				       !(err_ms > ts && op && strcmp(op, "status") == 0);
			txt = (const char *)sqlite3_column_text(st, 7);
			snprintf(x->state, sizeof(x->state), "%s", txt ? txt : "");
			txt = (const char *)sqlite3_column_text(st, 8);
			x->paused = state_is(x->state, "stopped") && txt && strcmp(txt, "paused") == 0;
			x->stopped = state_is(x->state, "stopped");
			x->mining = state_is(x->state, "mining") || state_is(x->state, "auto-tuning");
			txt = (const char *)sqlite3_column_text(st, 9);
			snprintf(x->preset, sizeof(x->preset), "%s", txt ? txt : "");
			x->metered = sqlite3_column_int(st, 11) == 1 &&
				     sqlite3_column_type(st, 10) != SQLITE_NULL;
			if (x->metered)
				x->power_w = sqlite3_column_double(st, 10);
		}
	}
	sqlite3_finalize(st);
	/* Stock draw, learned from metered miners running "disabled". */
	for (size_t i = 0; i < f->n; i++) {
		struct miner *x = &f->m[i];

		if (x->model >= 0 && x->metered && state_is(x->state, "mining") &&
		    preset_find(&f->models[x->model], x->preset) < 0) {
			f->models[x->model].learned_w += x->power_w;
			f->models[x->model].learned_n++;
		}
	}
	return 0;
}

static int by_mac(const void *k, const void *e)
{
	return strcmp(k, ((const struct miner *)e)->mac);
}

/* Open actions (any actor): what each miner will draw once they are done
 * (cmd_w: watts, -1 as now, -2 idle). The fleet is sorted by MAC. */
static int load_open(sqlite3 *db, struct fleet *f)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db,
		"SELECT mac, kind, preset, actor FROM actions "
		"WHERE state IN ('queued', 'sent', 'confirming') ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		const char *preset = (const char *)sqlite3_column_text(st, 2);
		const char *actor = (const char *)sqlite3_column_text(st, 3);
		struct miner *x = mac ? bsearch(mac, f->m, f->n, sizeof(*f->m), by_mac) : NULL;

		if (!x || !kind)
			continue;
		x->open = true;
		x->open_balancer |= actor && strcmp(actor, ACTOR) == 0;
		x->cmd_w = -1;
		if (strcmp(kind, "set_preset") == 0 && preset && x->model >= 0) {
			int k = preset_find(&f->models[x->model], preset);

			if (k >= 0)
				x->cmd_w = f->models[x->model].presets[k].watts;
		} else if (strcmp(kind, "pause") == 0) {
			x->cmd_w = -2;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

/* ---------------------------------------------------------------- estimate */

#define UNKNOWN_W 3500.0   /* a miner of a model without a catalogue, unmetered */

/* What its current preset draws by the catalogue (stock: learned from
 * metered miners of its model, else the model's top preset). */
static double preset_w(const struct fleet *f, const struct miner *x)
{
	const struct model *md;
	int k;

	if (x->model < 0)
		return x->metered && isfinite(x->power_w) ? x->power_w : UNKNOWN_W;
	md = &f->models[x->model];
	if ((k = preset_find(md, x->preset)) >= 0)
		return md->presets[k].watts;
	if (md->learned_n >= 1)
		return md->learned_w / md->learned_n;
	return md->top_w;
}

static double idle_w(const struct fleet *f, const struct miner *x)
{
	return x->model >= 0 ? IDLE_SHARE * f->models[x->model].top_w : IDLE_SHARE * UNKNOWN_W;
}

/* est_w: what it draws now, counted high while it changes; cmd_w: what it
 * draws once what it was told is done (the planning figure). */
static void estimate(struct apid_power *p, const struct fleet *f, struct miner *x, int64_t wall)
{
	double pw = preset_w(f, x), now_w, cmd;
	bool tuning = state_is(x->state, "auto-tuning");
	struct memo *m = memo_get(p, x->mac, false);

	if (x->stopped)
		now_w = x->metered ? x->power_w : idle_w(f, x);
	else if (x->mining && x->metered)
		now_w = x->power_w;
	else
		now_w = pw;      /* mining unmetered, starting (soon its preset), unreachable */
	cmd = tuning || !x->metered || !x->mining ? (x->stopped ? now_w : pw) : now_w;
	/* A change the balancer made a moment ago: counted at the higher draw
	 * until it has tuned (the firmware ramps from the old draw). */
	if (tuning && m && wall - m->changed_wall < 30 * 60 * 1000)
		now_w = fmax(now_w, fmax(m->from_w, m->to_w));
	if (tuning)
		now_w = fmax(now_w, pw);
	if (x->open) {
		double c = x->cmd_w == -2 ? idle_w(f, x) : x->cmd_w < 0 ? (x->stopped ? pw : cmd)
						: x->cmd_w;

		x->open_cut = x->open_balancer && c < cmd;
		x->open_raise_w = x->open_balancer && c > cmd ? c - cmd : 0;
		now_w = fmax(now_w, c);
		cmd = c;
	}
	x->est_w = now_w;
	x->cmd_w = cmd;
}

/* May the balancer move it? NULL: yes; else why not. */
static const char *why_fixed(const struct apid_power *p, const struct miner *x)
{
	if (!x->managed)
		return "unmanaged";
	if (x->pinned)
		return "pinned";
	if (x->excluded)
		return "excluded";
	if (x->conflict)
		return "conflict";
	if (x->model < 0)
		return "no_catalogue";
	if (!x->reachable)
		return "unreachable";
	if (x->open)
		return "in_flight";
	if (x->paused && !p->cfg.power.allow_pause)
		return "paused";
	if (!x->mining && !x->paused)
		return "waiting";   /* starting, restarting, stopped by someone */
	return NULL;
}

/* ---------------------------------------------------------------- a cycle */

struct cycle {
	int64_t wall, mono;
	int mode, fallback;
	enum feed_state state;
	char reason[160];
	double generation_w, measured_w, available_w, target_w;
	double est_cons, est_cmd, managed_w, fixed_w;
	size_t managed, planned, pinned, excluded, fixed, in_flight, moving;
	size_t transient;            /* any miner restarting, starting, tuning or with an action */
	bool feasible;
	double plan_w, plan_th;
};

/* The available power, the state, the target. */
static void judge_feed(struct apid_power *p, struct cycle *c)
{
	const struct hive_plant_source *src = &p->cfg.power.source;
	int64_t stale_ms = (int64_t)p->cfg.power.stale_seconds * 1000;
	int64_t ok_ms = (int64_t)p->cfg.power.interval_seconds * 1000 * OK_INTERVALS + 2000;

	c->generation_w = c->measured_w = c->available_w = c->target_w = NAN;
	if (src->kind == HIVE_PLANT_MANUAL) {
		struct tm tm;
		time_t t = (time_t)(c->wall / 1000);

		localtime_r(&t, &tm);
		c->state = FEED_OK;
		c->available_w = p->set.budget_w >= 0 ? (double)p->set.budget_w
				 : (double)hive_plant_budget_at(src, tm.tm_hour * 60 + tm.tm_min);
		snprintf(c->reason, sizeof(c->reason), "manual budget");
	} else if (src->kind == HIVE_PLANT_NONE) {
		c->state = FEED_FALLBACK;
		snprintf(c->reason, sizeof(c->reason), "no power.source configured");
	} else {
		int64_t age = p->have ? c->wall - p->feed_wall : c->mono - p->started_mono;

		if (p->have) {
			c->generation_w = p->gen_w;
			c->measured_w = p->meas_w;
			c->available_w = p->gen_w;
		}
		if (p->have && age <= ok_ms) {
			c->state = FEED_OK;
			snprintf(c->reason, sizeof(c->reason), "feed fresh");
		} else if (age <= stale_ms) {
			c->state = FEED_STALE;
			snprintf(c->reason, sizeof(c->reason), p->have ?
				 "no valid reading for %lld s: balancing on the last one, no raises" :
				 "waiting for the first valid reading (%lld s)", (long long)(age / 1000));
		} else {
			c->state = FEED_FALLBACK;
			snprintf(c->reason, sizeof(c->reason), "no valid reading for %lld s "
				 "(power.stale_seconds %d): fallback %s", (long long)(age / 1000),
				 p->cfg.power.stale_seconds, hive_power_fallback_name(c->fallback));
			if (c->fallback == HIVE_POWER_FIXED)
				c->available_w = (double)p->cfg.power.fallback_w;
			else if (c->fallback == HIVE_POWER_MINIMUM)
				c->available_w = 0;
		}
		if (!p->have)
			c->measured_w = NAN;
	}
	if (isfinite(c->available_w)) {
		double a = c->available_w;

		if (p->cfg.power.max_w > 0 && a > (double)p->cfg.power.max_w)
			a = (double)p->cfg.power.max_w;
		c->target_w = floor(a * (1 - p->set.margin_pct / 100));
	}
}

/* The targets of the last raise_after_seconds: the least, when the feed was
 * ok all along; NAN when it was not or the window is not covered yet. */
static double held_target(struct apid_power *p, const struct cycle *c)
{
	int64_t window = (int64_t)p->cfg.power.raise_after_seconds * 1000;
	double least = c->target_w;
	bool covered = false;

	if (window <= 0)
		return c->target_w;
	for (size_t i = 0; i < p->hist_n; i++) {
		size_t k = (p->hist_head + HIST_MAX - 1 - i) % HIST_MAX;

		if (!p->hist[k].ok || !isfinite(p->hist[k].target))
			return NAN;
		if (p->hist[k].target < least)
			least = p->hist[k].target;
		if (c->mono - p->hist[k].mono >= window) {
			covered = true;
			break;
		}
	}
	return covered ? least : NAN;
}

static void remember_target(struct apid_power *p, const struct cycle *c)
{
	size_t k = p->hist_head;

	p->hist[k].mono = c->mono;
	p->hist[k].target = c->target_w;
	p->hist[k].ok = c->state == FEED_OK;
	p->hist_head = (k + 1) % HIST_MAX;
	if (p->hist_n < HIST_MAX)
		p->hist_n++;
}

/* One planned change. */
struct change {
	size_t miner;
	int to;                      /* preset index or APID_ALLOC_PRESET_PAUSED */
	double from_w, to_w, gain_th;
	bool raise;
	const char *why;
};

static int by_gain(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	double ex = x->gain_th / fmax(x->to_w - x->from_w, 1);
	double ey = y->gain_th / fmax(y->to_w - y->from_w, 1);

	return ex < ey ? 1 : ex > ey ? -1 : 0;
}

static double kw(double w)
{
	return w / 1000;
}

/* Marks miners whose balancer action failed or expired: left out of the
 * plan (counted as fixed load) until an operator clears them. */
static void exclude_failures(struct apid_power *p, sqlite3 *db, int64_t wall)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db,
		"SELECT mac, state, kind, preset, error FROM actions WHERE actor = 'balancer' "
		"AND state IN ('failed', 'expired') AND updated_ms > ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, p->failures_since);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);
		const char *state = (const char *)sqlite3_column_text(st, 1);
		const char *kind = (const char *)sqlite3_column_text(st, 2);
		const char *preset = (const char *)sqlite3_column_text(st, 3);
		const char *error = (const char *)sqlite3_column_text(st, 4);
		char why[300];

		snprintf(why, sizeof(why), "%s%s%s %s%s%s", kind ? kind : "?", preset ? " " : "",
			 preset ? preset : "", state ? state : "?", error ? ": " : "",
			 error ? error : "");
		if (exec_bind(db, "UPDATE miners SET power_excluded = ?1, power_excluded_ms = ?2 "
			      "WHERE mac = ?3 AND power_excluded IS NULL", "sis", why,
			      (long long)wall, mac) == 0)
			log_warnx("power miner excluded mac=%s reason=\"%s\"", mac, why);
	}
	sqlite3_finalize(st);
	p->failures_since = wall;
}

static const char *preset_name(const struct fleet *f, const struct miner *x, int k)
{
	if (k == APID_ALLOC_PRESET_PAUSED)
		return "paused";
	if (k < 0 || x->model < 0)
		return NULL;
	return f->models[x->model].presets[k].name;
}

/* Records a decision row. */
static void record_decision(sqlite3 *db, const struct cycle *c, const char *kind, bool dry,
			    const char *summary, json_t *changes)
{
	char *text = changes ? json_dumps(changes, JSON_COMPACT) : NULL;

	exec_bind(db,
		  "INSERT INTO power_decisions(ts_ms, mode, state, kind, dry_run, available_w, "
		  "target_w, estimate_w, measured_w, summary, changes) "
		  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
		  "isssiwwwwss", (long long)c->wall, hive_power_mode_name(c->mode),
		  state_names[c->state], kind, (long long)dry, c->available_w, c->target_w,
		  c->est_cons, c->measured_w, summary, text);
	free(text);
}

static json_t *jnum(double v)
{
	return isfinite(v) ? json_integer((json_int_t)llround(v)) : json_null();
}

/* One cycle's working state. */
struct run {
	struct cycle c;
	struct fleet f;
	struct apid_alloc_miner *am;     /* the movable miners, for the allocator */
	struct apid_alloc_choice *out;
	struct apid_alloc_result res;
	size_t n_alloc;
	struct change *ch;               /* the changes it makes */
	size_t n_ch;
	double fixed_cmd;                /* what the fixed miners will draw */
	double dev;                      /* movable miners: their draw - their preset's catalogue watts */
	double raise_target, inflight_raise;
	bool cut, raise, any_open_cut, settled, acted;
	const char *kind;                /* "cut", "raise", "hold" */
	char summary[400];
};

/* The estimate, the correction, who may move; then whether to cut, raise
 * or hold. */
static void cycle_measure(struct apid_power *p, struct run *r)
{
	struct cycle *c = &r->c;

	for (size_t i = 0; i < r->f.n; i++) {
		struct miner *x = &r->f.m[i];
		struct memo *m;

		estimate(p, &r->f, x, c->wall);
		c->est_cons += x->est_w;
		c->est_cmd += x->cmd_w;
		r->any_open_cut |= x->open_cut;
		r->inflight_raise += x->open_raise_w;
		x->why = why_fixed(p, x);
		/* Tuning, or starting after a change of ours: its draw is on its
		 * way somewhere (a miner stuck starting for other reasons must
		 * not hold the balancer forever). */
		if (x->open || state_is(x->state, "auto-tuning") ||
		    (x->reachable && !x->mining && !x->stopped &&
		     (m = memo_get(p, x->mac, false)) && c->wall - m->changed_wall < 300000))
			c->moving++;
		if (x->open || state_is(x->state, "auto-tuning") ||
		    (x->reachable && !x->mining && !x->stopped))
			c->transient++;
		if (x->managed) {
			c->managed++;
			c->managed_w += x->est_w;
			c->pinned += x->pinned;
			c->excluded += x->excluded;
			c->in_flight += x->open;
		}
	}
	c->fixed_w = c->est_cons - c->managed_w;
	/* The plant's meter corrects the estimate (bounded), but only learns
	 * from a steady farm: nothing restarting, starting, tuning or acted on
	 * (the firmware restarts on a preset change: a second at 4 % power),
	 * and the meter and the estimate both unchanged since the last
	 * reading (a meter lags what changes). */
	r->settled = c->moving == 0 &&
		     c->wall - p->last_change_wall >= (int64_t)p->cfg.power.interval_seconds * 2000 + 2000;
	if (p->reading_fresh) {
		bool steady = c->transient == 0 && r->settled && isfinite(p->prev_meas_w) &&
			      fabs(c->measured_w - p->prev_meas_w) <= STEADY_SHARE * c->measured_w &&
			      fabs(c->est_cons - p->prev_est_w) <= STEADY_SHARE * c->est_cons;

		if (steady && isfinite(c->measured_w) && c->state == FEED_OK && c->est_cons > 0) {
			double raw = c->measured_w - c->est_cons, lim = CORRECTION_MAX * c->est_cons;

			raw = fmax(-lim, fmin(lim, raw));
			p->correction_w += CORRECTION_ALPHA * (raw - p->correction_w);
		}
		p->prev_est_w = c->est_cons;
	}
	p->reading_fresh = false;
	c->est_cons += p->correction_w;
	c->est_cmd += p->correction_w;

	r->raise_target = NAN;
	if (c->mode == HIVE_POWER_OFF || !isfinite(c->target_w) ||
	    (c->state == FEED_FALLBACK && c->fallback == HIVE_POWER_HOLD))
		return;
	if (c->est_cmd > c->target_w) {
		r->cut = true;
	} else if (c->state == FEED_OK && !p->newest_refused && !r->any_open_cut && r->settled &&
		   c->wall - p->last_cut_wall >= (int64_t)p->cfg.power.raise_after_seconds * 1000) {
		/* Raises wait for the fleet to settle and for the power to hold
		 * since the last cut (no cut-raise-cut loops), and for the newest
		 * reading to be a valid one: a feed that starts failing is not
		 * more power. */
		r->raise_target = held_target(p, c);
		r->raise = isfinite(r->raise_target) && c->est_cons < r->raise_target;
	}
}

/* The allocation of the movable miners; everything else is fixed at what
 * it will draw, and each movable miner's difference between its draw and
 * its preset's catalogue watts is assumed to stay. -1: out of memory. */
static int cycle_plan(struct apid_power *p, struct run *r)
{
	struct cycle *c = &r->c;
	struct apid_alloc_opts ao = { 0 };
	struct apid_alloc_model *models = calloc((size_t)r->f.n_models + 1, sizeof(*models));
	double t = r->raise ? r->raise_target : c->target_w;
	long long budget;

	if (!models)
		return -1;
	for (size_t i = 0; i < r->f.n; i++) {
		struct miner *x = &r->f.m[i];
		struct memo *m;
		int k;

		if (!x->why && r->raise && (m = memo_get(p, x->mac, false)) &&
		    c->wall - m->raised_wall < (int64_t)p->cfg.power.min_raise_interval_seconds * 1000)
			x->why = "raised_recently";
		if (x->why) {
			r->fixed_cmd += x->cmd_w;
			continue;
		}
		k = x->paused ? APID_ALLOC_PRESET_PAUSED : preset_find(&r->f.models[x->model], x->preset);
		r->am[r->n_alloc] = (struct apid_alloc_miner){
			.model = x->model,
			.current = k >= 0 || k == APID_ALLOC_PRESET_PAUSED ? k : APID_ALLOC_PRESET_UNKNOWN,
		};
		if (k >= 0 && !state_is(x->state, "auto-tuning"))
			r->dev += x->cmd_w - r->f.models[x->model].presets[k].watts;
		x->alloc = (int)r->n_alloc++;
	}
	c->planned = r->n_alloc;
	c->fixed = c->managed - r->n_alloc;
	for (int i = 0; i < r->f.n_models; i++)
		models[i] = (struct apid_alloc_model){ r->f.models[i].ap, r->f.models[i].n,
						       r->f.models[i].max_preset };
	budget = isfinite(t) ? (long long)fmax(0, floor(t - p->correction_w - r->fixed_cmd - r->dev))
			     : 0;
	ao.hysteresis_w = (int)(p->cfg.power.deadband_w > INT32_MAX ? INT32_MAX
				: p->cfg.power.deadband_w);
	if (r->n_alloc > 0 && apid_alloc_plan(models, r->f.n_models, r->am, r->n_alloc, budget, &ao,
					      r->out, &r->res) < 0) {
		hive_log_complain("power alloc", "power allocation failed err=\"%s\"", strerror(errno));
		r->n_alloc = 0;
	}
	/* Pausing only when even the least presets do not fit. */
	if (r->n_alloc > 0 && !r->res.feasible && p->cfg.power.allow_pause) {
		for (size_t i = 0; i < r->n_alloc; i++)
			r->am[i].may_pause = true;
		if (apid_alloc_plan(models, r->f.n_models, r->am, r->n_alloc, budget, &ao, r->out,
				    &r->res) < 0)
			r->n_alloc = 0;
	}
	free(models);
	c->feasible = r->n_alloc == 0 || r->res.feasible;
	c->plan_w = r->res.watts + r->fixed_cmd + r->dev + p->correction_w;
	c->plan_th = r->res.th;
	return 0;
}

/* The changes: cuts at once; raises (after the hold) staggered. */
static void cycle_changes(struct apid_power *p, struct run *r)
{
	for (size_t i = 0; i < r->f.n && (r->cut || r->raise); i++) {
		struct miner *x = &r->f.m[i];
		const struct apid_alloc_choice *o;
		struct change *ch = &r->ch[r->n_ch];
		double to_w;

		if (x->alloc < 0 || !r->out[x->alloc].changed)
			continue;
		o = &r->out[x->alloc];
		if (o->preset >= 0 && r->am[x->alloc].current == o->preset && !x->paused)
			continue;
		to_w = o->preset == APID_ALLOC_PRESET_PAUSED ? idle_w(&r->f, x) : o->watts;
		*ch = (struct change){ .miner = i, .to = o->preset, .from_w = x->cmd_w, .to_w = to_w,
				       .raise = to_w > x->cmd_w,
				       .why = apid_alloc_reason_name(o->reason) };
		if (ch->raise) {
			int k = r->am[x->alloc].current;

			ch->gain_th = o->th - (k >= 0 ? r->f.models[x->model].presets[k].th : 0);
			if (r->cut)
				continue;        /* raises wait for the cut to land */
		}
		r->n_ch++;
	}
	if (r->raise) {
		/* Most TH per added watt first, up to the step (one at least when
		 * none is in flight), and never past the held target counted high. */
		double step = fmax((double)p->cfg.power.deadband_w,
				   p->cfg.power.raise_step_pct / 100 * r->raise_target);
		double room = r->raise_target - r->c.est_cons, added = r->inflight_raise;
		size_t kept = 0;

		qsort(r->ch, r->n_ch, sizeof(*r->ch), by_gain);
		for (size_t i = 0; i < r->n_ch; i++) {
			double d = r->ch[i].to_w - r->ch[i].from_w;

			if (r->ch[i].raise) {
				if ((added > 0 && added + d > step) || d > room)
					continue;
				added += d;
			}
			room -= d;
			r->ch[kept++] = r->ch[i];
		}
		r->n_ch = kept;
	}
	for (size_t i = 0; i < r->n_ch; i++)
		r->f.m[r->ch[i].miner].changed = true;
}

/* Why a change: "cut: lowered, 3.3 kW → 2.3 kW (target …, estimate …)". */
static void change_why(const struct run *r, const struct change *ch, char *out, size_t len)
{
	snprintf(out, len, "%s: %s, %.1f kW → %.1f kW (target %.1f kW, estimate %.1f kW)",
		 ch->raise ? "raise" : "cut", ch->why, kw(ch->from_w), kw(ch->to_w),
		 kw(r->c.target_w), kw(r->c.est_cons));
}

/* The actions (mode on) and the decision's summary. */
static void cycle_act(struct apid_power *p, sqlite3 *db, struct run *r)
{
	struct cycle *c = &r->c;
	struct apid_action_request *req = NULL;
	long long *ids = NULL;
	size_t n_req = 0;
	double moved = 0;

	for (size_t i = 0; i < r->n_ch; i++)
		moved += r->ch[i].to_w - r->ch[i].from_w;
	if (r->n_ch > 0) {
		r->kind = r->cut ? "cut" : "raise";
		snprintf(r->summary, sizeof(r->summary),
			 "%s %zu miner%s by %.1f kW: estimate %.1f kW, target %.1f kW, available "
			 "%.1f kW%s", r->kind, r->n_ch, r->n_ch == 1 ? "" : "s", kw(fabs(moved)),
			 kw(c->est_cons), kw(c->target_w), kw(c->available_w),
			 c->feasible ? "" : " (cannot reach the target: least draw)");
	}
	if (c->mode != HIVE_POWER_ON || r->n_ch == 0 ||
	    !(req = calloc(r->n_ch, sizeof(*req))) || !(ids = calloc(r->n_ch, sizeof(*ids))))
		goto out;
	for (size_t i = 0; i < r->n_ch; i++) {
		const struct change *ch = &r->ch[i];
		struct miner *x = &r->f.m[ch->miner];
		const char *to = preset_name(&r->f, x, ch->to);
		struct apid_action_request *q = &req[n_req];
		char reason[200];

		if (!to)
			continue;
		change_why(r, ch, reason, sizeof(reason));
		snprintf(q->mac, sizeof(q->mac), "%s", x->mac);
		if (ch->to == APID_ALLOC_PRESET_PAUSED) {
			q->kind = APID_ACT_PAUSE;
		} else if (x->paused && strcmp(x->preset, to) == 0) {
			q->kind = APID_ACT_RESUME;
		} else {
			/* A paused miner gets its preset first and resumes on a
			 * later cycle (one open action per miner). */
			q->kind = APID_ACT_SET_PRESET;
			snprintf(q->preset, sizeof(q->preset), "%s", to);
		}
		q->actor = ACTOR;
		q->reason = strdup(reason);
		n_req++;
	}
	if (n_req > 0 && apid_actions_create(p->actions, db, req, n_req, ids) == 0) {
		r->acted = true;
		p->last_change_wall = c->wall;
		if (r->cut)
			p->last_cut_wall = c->wall;
		for (size_t i = 0; i < r->n_ch; i++) {
			struct memo *m = memo_get(p, r->f.m[r->ch[i].miner].mac, true);

			if (!m)
				continue;
			m->from_w = (int)r->ch[i].from_w;
			m->to_w = (int)r->ch[i].to_w;
			m->changed_wall = c->wall;
			if (r->ch[i].raise)
				m->raised_wall = c->wall;
		}
		log_info("power %s miners=%zu target_w=%.0f estimate_w=%.0f available_w=%.0f", r->kind,
			 n_req, c->target_w, c->est_cons, c->available_w);
	}
out:
	for (size_t i = 0; req && i < n_req; i++)
		free((char *)req[i].reason);
	free(req);
	free(ids);
}

/* The decision's list of changes, each with why. */
static json_t *changes_json(const struct run *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < r->n_ch; i++) {
		const struct change *ch = &r->ch[i];
		const struct miner *x = &r->f.m[ch->miner];
		char why[200];

		change_why(r, ch, why, sizeof(why));
		json_array_append_new(a, json_pack("{s:s,s:s?,s:s?,s:o,s:o,s:s}", "id", x->mac,
			"from", x->paused ? "paused" : x->preset[0] ? x->preset : NULL,
			"to", preset_name(&r->f, x, ch->to), "watts_from", jnum(ch->from_w),
			"watts_to", jnum(ch->to_w), "why", why));
	}
	return a;
}

/* The decision log (what was done, a dry run's plan when it changes, every
 * change of state) and the chart's sample. */
static void cycle_record(struct apid_power *p, sqlite3 *db, struct run *r)
{
	struct cycle *c = &r->c;
	unsigned h = 2166136261u;
	char key[64];

	/* A dry run's plan is the same cycle after cycle: logged when it
	 * changes (the miners and where they go), or every 10 minutes. */
	for (size_t i = 0; i < r->n_ch; i++) {
		const char *mac = r->f.m[r->ch[i].miner].mac;

		for (const char *s = mac; *s; s++)
			h = (h ^ (unsigned char)*s) * 16777619u;
		h = (h ^ (unsigned)(r->ch[i].to + 3)) * 16777619u;
	}
	snprintf(key, sizeof(key), "%s/%zu/%u", r->kind, r->n_ch, h);
	if (r->acted || (c->mode == HIVE_POWER_DRY_RUN && r->n_ch > 0 &&
			 (strcmp(key, p->last_plan_key) != 0 ||
			  c->wall - p->last_decision_wall > DECISIONS_REPEAT_MS))) {
		json_t *changes = changes_json(r);

		record_decision(db, c, r->kind, c->mode == HIVE_POWER_DRY_RUN, r->summary, changes);
		json_decref(changes);
		snprintf(p->last_plan_key, sizeof(p->last_plan_key), "%s", key);
		p->last_decision_wall = c->wall;
	}
	if (strcmp(p->last_state, state_names[c->state]) != 0) {
		char s2[300];

		snprintf(s2, sizeof(s2), "state %s: %s", state_names[c->state], c->reason);
		if (c->state == FEED_OK)
			log_info("power state=ok reason=\"%s\"", c->reason);
		else
			log_warnx("power state=%s reason=\"%s\"", state_names[c->state], c->reason);
		if (c->mode != HIVE_POWER_OFF)
			record_decision(db, c, c->state == FEED_FALLBACK ? "fallback" : "state",
					c->mode == HIVE_POWER_DRY_RUN, s2, NULL);
		snprintf(p->last_state, sizeof(p->last_state), "%s", state_names[c->state]);
	}
	remember_target(p, c);
	exec_bind(db,
		  "INSERT OR REPLACE INTO power_samples(ts_ms, state, generation_w, available_w, "
		  "target_w, estimate_w, measured_w, managed_w, fixed_w) "
		  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		  "iswwwwwww", (long long)c->wall, state_names[c->state], c->generation_w,
		  c->available_w, c->target_w, c->est_cons, c->measured_w, c->managed_w, c->fixed_w);
}

/* What GET /api/power and /api/power/plan show until the next cycle: the
 * figures as JSON, the plan as rows (JSON only when asked for: at 10,000
 * miners it is megabytes). */
static void cycle_publish(struct apid_power *p, struct run *r)
{
	const struct cycle *c = &r->c;
	struct plan_row *rows = calloc(c->managed + 1, sizeof(*rows));
	size_t n = 0;
	json_t *st;

	for (size_t i = 0; rows && i < r->f.n; i++) {
		const struct miner *x = &r->f.m[i];
		const struct apid_alloc_choice *o = x->alloc >= 0 ? &r->out[x->alloc] : NULL;
		const char *cur = x->paused ? "paused" : x->preset[0] ? x->preset : "";
		bool moves = o && x->changed;
		struct plan_row *w;

		if (!x->managed || n >= c->managed)
			continue;
		w = &rows[n++];
		snprintf(w->mac, sizeof(w->mac), "%s", x->mac);
		snprintf(w->model, sizeof(w->model), "%s", x->model >= 0 ? r->f.models[x->model].alias
									  : "");
		snprintf(w->current, sizeof(w->current), "%s", cur);
		snprintf(w->planned, sizeof(w->planned), "%s",
			 moves ? preset_name(&r->f, x, o->preset) : cur);
		w->watts_now = x->est_w;
		w->watts_planned = moves ? (o->preset == APID_ALLOC_PRESET_PAUSED ? idle_w(&r->f, x)
									   : o->watts)
					 : x->cmd_w;
		w->th_planned = o ? o->th : NAN;
		w->reason = x->why;
		if (o && !w->reason)
			w->reason = moves || !o->changed ? apid_alloc_reason_name(o->reason) : "waiting";
		w->changed = moves;
	}
	st = json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I},"
		       "s:I,s:I,s:b,s:o,s:o}",
		"state", state_names[c->state], "state_reason", c->reason,
		"generation_w", jnum(c->generation_w), "measured_w", jnum(c->measured_w),
		"available_w", jnum(c->available_w), "target_w", jnum(c->target_w),
		"estimate_w", jnum(c->est_cons), "correction_w", jnum(p->correction_w),
		"managed_w", jnum(c->managed_w), "fixed_w", jnum(c->fixed_w),
		"headroom_w", jnum(c->target_w - c->est_cons),
		"miners", "managed", (json_int_t)c->managed, "planned", (json_int_t)c->planned,
		"pinned", (json_int_t)c->pinned, "excluded", (json_int_t)c->excluded,
		"fixed", (json_int_t)c->fixed, "in_flight", (json_int_t)c->in_flight,
		"last_cycle_ms", (json_int_t)c->wall,
		"cycle_duration_ms", (json_int_t)(hive_mono_ms() - c->mono),
		"feasible", c->feasible, "expected_w", jnum(c->plan_w),
		"expected_th", json_real(c->plan_th));
	if (!st || !rows) {
		json_decref(st);
		free(rows);
		return;
	}
	json_decref(p->status);
	p->status = st;
	free(p->plan);
	p->plan = rows;
	p->n_plan = n;
	p->plan_head.ts = c->wall;
	p->plan_head.mode = c->mode;
	p->plan_head.target_w = c->target_w;
	p->plan_head.expected_w = c->plan_w;
	p->plan_head.expected_th = c->plan_th;
	p->plan_head.feasible = c->feasible;
}

/* Plans, acts (mode on) and records. On the writer thread. */
static void cycle_run(struct apid_power *p, sqlite3 *db)
{
	struct run *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	r->c.wall = hive_wall_ms();
	r->c.mono = hive_mono_ms();
	r->kind = "hold";
	pthread_mutex_lock(&p->mu);
	r->c.mode = p->set.mode;
	r->c.fallback = p->set.fallback;
	judge_feed(p, &r->c);
	p->last_cycle_mono = r->c.mono;
	if (r->c.mode != HIVE_POWER_OFF)
		exclude_failures(p, db, r->c.wall);
	if (load_fleet(p, db, r->c.wall, &r->f) < 0 || load_open(db, &r->f) < 0) {
		hive_log_complain("power fleet", "power cycle failed err=\"%s\"", sqlite3_errmsg(db));
		goto out;
	}
	hive_log_recovered("power fleet", "power cycle runs again");
	if (!(r->am = calloc(r->f.n + 1, sizeof(*r->am))) ||
	    !(r->out = calloc(r->f.n + 1, sizeof(*r->out))) ||
	    !(r->ch = calloc(r->f.n + 1, sizeof(*r->ch))))
		goto out;
	cycle_measure(p, r);
	if (cycle_plan(p, r) < 0)
		goto out;
	cycle_changes(p, r);
	cycle_act(p, db, r);
	cycle_record(p, db, r);
	cycle_publish(p, r);
out:
	pthread_mutex_unlock(&p->mu);
	free(r->ch);
	free(r->out);
	free(r->am);
	fleet_free(&r->f);
	free(r);
}

/* ---------------------------------------------------------------- readings */

/* Judges a reading (under mu): NULL when accepted, else why not. */
static const char *judge(struct apid_power *p, const struct hive_msg_plant_reading *r,
			 int64_t wall, enum refusal *why)
{
	const struct hive_plant_source *src = &p->cfg.power.source;
	double g = r->generation_w;
	long long collected = r->collected_ms != HIVE_MSG_NO_INT ? r->collected_ms : -1;
	long long id = r->reading_id != HIVE_MSG_NO_INT ? r->reading_id : -1;

	if (r->ok != 1 || !isfinite(g) || g < 0)
		*why = REF_ERROR;
	else if (r->gen_failed != HIVE_MSG_NO_INT && r->gen_failed > 0)
		*why = REF_SOURCE_FAILED;
	else if (isfinite(r->confidence) && r->confidence < src->min_confidence)
		*why = REF_LOW_CONFIDENCE;
	else if (collected >= 0 && wall - collected > (int64_t)p->cfg.power.stale_seconds * 1000)
		*why = REF_STALE;
	else if (collected >= 0 && id == p->last_id && collected == p->last_collected)
		*why = REF_NOT_FRESH;
	else if (p->have && fabs(g - p->gen_w) > p->cfg.power.max_jump_pct / 100 * fmax(p->gen_w, 1)) {
		/* Confirmed by the next reading, or held as a glitch. */
		if (p->jump_pending && fabs(g - p->jump_w) <= fmax(CONFIRM_SHARE * p->jump_w,
								   (double)p->cfg.power.deadband_w))
			return NULL;
		p->jump_pending = true;
		p->jump_w = g;
		*why = REF_JUMP;
	} else {
		return NULL;
	}
	return refusal_names[*why];
}

static void on_reading(struct apid_power *p, sqlite3 *db, const struct hive_msg_plant_reading *r)
{
	int64_t wall = hive_wall_ms();
	enum refusal why = REF_ERROR;
	const char *reason;
	char detail[200] = "";
	double meas;

	pthread_mutex_lock(&p->mu);
	reason = judge(p, r, wall, &why);
	meas = isfinite(r->consumption_w) && r->consumption_w >= 0 ? r->consumption_w : NAN;
	if (!reason) {
		p->have = true;
		p->gen_w = r->generation_w;
		p->prev_meas_w = p->meas_w;
		p->meas_w = meas;
		p->feed_wall = r->collected_ms != HIVE_MSG_NO_INT && r->collected_ms > 0 ?
			       r->collected_ms : wall;
		p->last_id = r->reading_id != HIVE_MSG_NO_INT ? r->reading_id : -1;
		p->last_collected = r->collected_ms != HIVE_MSG_NO_INT ? r->collected_ms : -1;
		p->jump_pending = false;
		p->accepted++;
		p->reading_fresh = true;
		p->newest_refused = false;
		hive_log_recovered("power reading", "power reading accepted again generation_w=%.0f",
				   r->generation_w);
	} else {
		p->refused++;
		p->refused_by[why]++;
		p->newest_refused = true;
		switch (why) {
		case REF_ERROR:
			snprintf(detail, sizeof(detail), "%s", r->error ? r->error : "no generation");
			break;
		case REF_SOURCE_FAILED:
			snprintf(detail, sizeof(detail), "%s", r->failed ? r->failed : "a source failed");
			break;
		case REF_LOW_CONFIDENCE:
			snprintf(detail, sizeof(detail), "confidence %.2f < %.2f", r->confidence,
				 p->cfg.power.source.min_confidence);
			break;
		case REF_STALE:
			snprintf(detail, sizeof(detail), "collected %lld s ago",
				 (long long)((wall - r->collected_ms) / 1000));
			break;
		case REF_JUMP:
			snprintf(detail, sizeof(detail), "%.1f kW after %.1f kW: waits for the next "
				 "reading to confirm", kw(r->generation_w), kw(p->gen_w));
			break;
		default:
			break;
		}
		snprintf(p->last_refused, sizeof(p->last_refused), "%s%s%s", reason,
			 detail[0] ? ": " : "", detail);
		hive_log_complain("power reading", "power reading refused reason=%s detail=\"%s\"",
				  reason, detail);
	}
	pthread_mutex_unlock(&p->mu);
	exec_bind(db,
		  "INSERT INTO power_readings(ts_ms, source, accepted, reason, generation_w, "
		  "measured_w, exported_w, confidence, reading_id, collected_ms, latency_ms, error) "
		  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
		  "isiswwwdiiis", (long long)wall, r->source ? r->source : "?",
		  (long long)(reason == NULL), reason ? p->last_refused : NULL, r->generation_w,
		  meas, r->exported_w, r->confidence,
		  r->reading_id != HIVE_MSG_NO_INT ? r->reading_id : -1LL,
		  r->collected_ms != HIVE_MSG_NO_INT ? r->collected_ms : -1LL,
		  r->latency_ms != HIVE_MSG_NO_INT ? r->latency_ms : -1LL,
		  r->ok == 1 ? NULL : r->error);
	/* Balanced on at once: a drop is cut within this transaction. */
	cycle_run(p, db);
}

/* ---------------------------------------------------------------- hooks */

static void hook_event(void *arg, struct apid_apply *ap, const struct apid_event *ev,
		       long long ts_ms)
{
	struct apid_power *p = arg;

	if (p->inner.event)
		p->inner.event(p->inner.arg, ap, ev, ts_ms);
	if (ev->kind == HIVE_MSG_PLANT_READING)
		on_reading(p, apid_apply_db(ap), &ev->u.plant);
}

static void hook_ended(void *arg, bool committed)
{
	struct apid_power *p = arg;

	if (p->inner.ended)
		p->inner.ended(p->inner.arg, committed);
}

static void hook_closing(void *arg)
{
	struct apid_power *p = arg;

	if (p->inner.closing)
		p->inner.closing(p->inner.arg);
}

void apid_power_hooks(struct apid_power *p, const struct apid_writer_hooks *inner,
		      struct apid_writer_hooks *out)
{
	p->inner = *inner;
	out->event = hook_event;
	out->ended = hook_ended;
	out->closing = hook_closing;
	out->arg = p;
}

static int posted_cycle(struct apid_apply *ap, void *arg, int *http_status, char *err,
			size_t errlen)
{
	struct apid_power *p = arg;

	(void)http_status;
	(void)err;
	(void)errlen;
	cycle_run(p, apid_apply_db(ap));
	atomic_store(&p->cycle_posted, false);
	return 0;
}

/* ---------------------------------------------------------------- main loop */

static void ask_reading(struct apid_power *p, int64_t wall)
{
	const struct hive_plant_source *src = &p->cfg.power.source;
	struct hive_msg_plant_job j;
	char nonce[HIVE_NONCE_CHARS + 1];
	json_t *body;

	hive_msg_init(HIVE_MSG_JOB_PLANT, &j);
	hive_plant_source_to_job(src, &j);
	j.job = ++p->job_seq;
	j.deadline = wall + (int64_t)p->cfg.power.interval_seconds * 1000;
	/* the read may take its timeout after the deadline, then the way back */
	apid_guard_issue(p->guard, APID_GUARD_PLANT, j.job, "", nonce,
			 2 * (int64_t)p->cfg.power.interval_seconds * 1000 + 70000);
	j.nonce = nonce;
	body = hive_msg_encode(HIVE_MSG_JOB_PLANT, &j);
	if (!body) {
		hive_log_complain("power job", "power read job not encoded");
		return;
	}
	if (hive_bus_send(p->jobs_plant, hive_msg_topic(HIVE_MSG_JOB_PLANT)->topic, body, true) < 0)
		hive_log_complain("power job", "power read job not sent (no pollerd connected?)");
	else
		hive_log_recovered("power job", "power read jobs sent again");
	json_decref(body);
}

void apid_power_set_guard(struct apid_power *p, struct apid_guard *g)
{
	pthread_mutex_lock(&p->mu);
	p->guard = g;
	pthread_mutex_unlock(&p->mu);
}

int64_t apid_power_tick(struct apid_power *p, int64_t now)
{
	int64_t interval, wait;
	bool reads, due;

	pthread_mutex_lock(&p->mu);
	interval = (int64_t)p->cfg.power.interval_seconds * 1000;
	reads = p->jobs_plant && (p->cfg.power.source.kind == HIVE_PLANT_AGGREGATOR ||
				  p->cfg.power.source.kind == HIVE_PLANT_MODBUS);
	if (reads && now >= p->next_job_mono) {
		ask_reading(p, hive_wall_ms());
		p->next_job_mono = now + interval;
	}
	/* A cycle when no reading brought one: the manual source, a silent
	 * feed (so that staleness and fallback are acted on), raises due. */
	due = now - p->last_cycle_mono >= interval + (reads ? interval / 2 : 0);
	wait = reads ? p->next_job_mono - now : interval - (now - p->last_cycle_mono);
	pthread_mutex_unlock(&p->mu);
	if (due && !atomic_exchange(&p->cycle_posted, true)) {
		if (apid_writer_post(p->writer, posted_cycle, p, NULL) < 0)
			atomic_store(&p->cycle_posted, false);
	}
	return wait < 100 ? 100 : wait > 1000 ? 1000 : wait;
}

/* ---------------------------------------------------------------- the API */

static json_t *source_json(const struct hive_plant_source *s)
{
	json_t *o = json_pack("{s:s}", "kind", hive_plant_kind_name(s->kind));

	switch (s->kind) {
	case HIVE_PLANT_AGGREGATOR:   /* never the key */
		json_object_set_new(o, "url", json_string(s->url));
		json_object_set_new(o, "plant_id", json_string(s->plant_id));
		json_object_set_new(o, "min_confidence", json_real(s->min_confidence));
		break;
	case HIVE_PLANT_MODBUS:
		json_object_set_new(o, "host", json_string(s->host));
		json_object_set_new(o, "port", json_integer(s->port));
		json_object_set_new(o, "unit", json_integer(s->unit));
		json_object_set_new(o, "register", json_integer(s->reg));
		json_object_set_new(o, "table", json_string(hive_modbus_table_name(s->table)));
		json_object_set_new(o, "type", json_string(hive_modbus_type_name(s->type)));
		json_object_set_new(o, "byte_order", json_string(hive_modbus_order_name(s->order)));
		json_object_set_new(o, "scale", json_real(s->scale));
		break;
	case HIVE_PLANT_MANUAL: {
		json_t *a = json_array();

		for (size_t i = 0; i < s->n_schedule; i++) {
			char hm[24];

			snprintf(hm, sizeof(hm), "%02d:%02d", s->schedule[i].from_min / 60,
				 s->schedule[i].from_min % 60);
			json_array_append_new(a, json_pack("{s:s,s:I}", "from", hm, "budget_w",
							   (json_int_t)s->schedule[i].budget_w));
		}
		json_object_set_new(o, "budget_w", json_integer(s->budget_w));
		json_object_set_new(o, "schedule", a);
		break;
	}
	default:
		break;
	}
	return o;
}

json_t *apid_power_status(struct apid_power *p)
{
	json_t *o, *by;
	int64_t wall = hive_wall_ms();
	const struct hive_plant_source *src;

	pthread_mutex_lock(&p->mu);
	src = &p->cfg.power.source;
	o = p->status ? json_deep_copy(p->status) : json_pack("{s:s,s:s}", "state", "stale",
				"state_reason", "no balancer cycle yet");
	if (!o)
		goto out;
	json_object_set_new(o, "mode", json_string(hive_power_mode_name(p->set.mode)));
	json_object_set_new(o, "source", source_json(src));
	json_object_set_new(o, "margin_pct", json_real(p->set.margin_pct));
	json_object_set_new(o, "max_w", p->cfg.power.max_w > 0 ?
			    json_integer(p->cfg.power.max_w) : json_null());
	json_object_set_new(o, "fallback", json_string(hive_power_fallback_name(p->set.fallback)));
	json_object_set_new(o, "fallback_w", json_integer(p->cfg.power.fallback_w));
	json_object_set_new(o, "deadband_w", json_integer(p->cfg.power.deadband_w));
	json_object_set_new(o, "allow_pause", json_boolean(p->cfg.power.allow_pause));
	json_object_set_new(o, "interval_seconds", json_integer(p->cfg.power.interval_seconds));
	json_object_set_new(o, "stale_seconds", json_integer(p->cfg.power.stale_seconds));
	json_object_set_new(o, "raise_after_seconds", json_integer(p->cfg.power.raise_after_seconds));
	json_object_set_new(o, "budget_w", src->kind != HIVE_PLANT_MANUAL ? json_null() :
			    json_integer(p->set.budget_w >= 0 ? p->set.budget_w : src->budget_w));
	json_object_set_new(o, "feed_age_s", src->kind == HIVE_PLANT_MANUAL || !p->have ?
			    json_null() : json_real((double)(wall - p->feed_wall) / 1000));
	by = json_object();
	for (int i = 0; i < REF_COUNT; i++)
		json_object_set_new(by, refusal_names[i], json_integer((json_int_t)p->refused_by[i]));
	json_object_set_new(o, "readings", json_pack("{s:I,s:I,s:o,s:s?}",
		"accepted", (json_int_t)p->accepted, "refused", (json_int_t)p->refused,
		"refused_by", by, "last_refused_reason",
		p->last_refused[0] ? p->last_refused : NULL));
	json_object_set_new(o, "settings_from", json_pack("{s:s,s:s,s:s,s:s}",
		"mode", p->set.api_mode ? "api" : "config",
		"margin_pct", p->set.api_margin ? "api" : "config",
		"budget_w", p->set.api_budget ? "api" : "config",
		"fallback", p->set.api_fallback ? "api" : "config"));
out:
	pthread_mutex_unlock(&p->mu);
	return o;
}

json_t *apid_power_plan(struct apid_power *p)
{
	json_t *o, *rows;

	pthread_mutex_lock(&p->mu);
	rows = json_array();
	for (size_t i = 0; rows && i < p->n_plan; i++) {
		const struct plan_row *w = &p->plan[i];

		json_array_append_new(rows, json_pack("{s:s,s:s?,s:s?,s:s?,s:o,s:o,s:o,s:s?,s:b}",
			"id", w->mac, "model", w->model[0] ? w->model : NULL,
			"current", w->current[0] ? w->current : NULL,
			"planned", w->planned[0] ? w->planned : NULL,
			"watts_now", jnum(w->watts_now), "watts_planned", jnum(w->watts_planned),
			"th_planned", isfinite(w->th_planned) ? json_real(w->th_planned) : json_null(),
			"reason", w->reason, "changed", w->changed));
	}
	o = json_pack("{s:o,s:s,s:o,s:b,s:o,s:o,s:o}",
		      "ts", p->plan ? json_integer(p->plan_head.ts) : json_null(),
		      "mode", hive_power_mode_name(p->plan ? p->plan_head.mode : p->set.mode),
		      "target_w", p->plan ? jnum(p->plan_head.target_w) : json_null(),
		      "feasible", p->plan ? p->plan_head.feasible : true,
		      "expected_w", p->plan ? jnum(p->plan_head.expected_w) : json_null(),
		      "expected_th", p->plan ? json_real(p->plan_head.expected_th) : json_null(),
		      "miners", rows ? rows : json_array());
	pthread_mutex_unlock(&p->mu);
	return o;
}

json_t *apid_power_health(struct apid_power *p)
{
	json_t *s = apid_power_status(p), *h;

	if (!s)
		return NULL;
	h = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "mode", json_object_get(s, "mode"),
		      "available_w", json_object_get(s, "available_w"),
		      "measured_w", json_object_get(s, "measured_w"),
		      "state", json_object_get(s, "state"),
		      "state_reason", json_object_get(s, "state_reason"),
		      "feed_age_s", json_object_get(s, "feed_age_s"),
		      "target_w", json_object_get(s, "target_w"),
		      "estimate_w", json_object_get(s, "estimate_w"),
		      "readings_refused", json_object_get(json_object_get(s, "readings"), "refused"));
	json_decref(s);
	return h;
}

bool apid_power_owns_presets(struct apid_power *p)
{
	bool on;

	pthread_mutex_lock(&p->mu);
	on = p->set.mode == HIVE_POWER_ON;
	pthread_mutex_unlock(&p->mu);
	return on;
}

static double status_num(const json_t *st, const char *key)
{
	const json_t *v = json_object_get(st, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

void apid_power_brief(struct apid_power *p, struct apid_power_brief *out)
{
	const char *s;
	double cycle_ms;

	pthread_mutex_lock(&p->mu);
	out->mode = p->set.mode;
	out->fallback = p->set.fallback;
	out->source = p->cfg.power.source.kind;
	out->stale_seconds = p->cfg.power.stale_seconds;
	out->cycled = p->status != NULL;
	s = json_string_value(json_object_get(p->status, "state"));
	snprintf(out->state, sizeof(out->state), "%s", s ? s : "");
	s = json_string_value(json_object_get(p->status, "state_reason"));
	snprintf(out->state_reason, sizeof(out->state_reason), "%s", s ? s : "");
	out->available_w = status_num(p->status, "available_w");
	out->measured_w = status_num(p->status, "measured_w");
	out->estimate_w = status_num(p->status, "estimate_w");
	cycle_ms = status_num(p->status, "last_cycle_ms");
	out->cycle_ms = isfinite(cycle_ms) ? (int64_t)cycle_ms : 0;
	out->have_reading = p->have;
	out->feed_age_ms = p->have ? hive_wall_ms() - p->feed_wall : hive_mono_ms() - p->started_mono;
	pthread_mutex_unlock(&p->mu);
}

struct patch {
	struct apid_power *p;
	struct settings next;
	const char *actor;
	json_t *body;
	bool has_mode, has_margin, has_budget, has_fallback;
};

static int upsert(sqlite3 *db, const struct hive_cfg *cfg, const char *key, const char *value,
		  long long wall, const char *actor)
{
	char cv[64];

	config_value(cfg, key, cv, sizeof(cv));
	return exec_bind(db, "INSERT OR REPLACE INTO power_settings(key, value, config_value, "
			 "ts_ms, actor) VALUES(?1, ?2, ?3, ?4, ?5)", "sssis", key, value, cv,
			 wall, actor);
}

static int patch_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		     size_t errlen)
{
	struct patch *pt = arg;
	sqlite3 *db = apid_apply_db(ap);
	long long wall = hive_wall_ms();
	char v[64], *detail;
	int rc = 0;

	if (pt->has_mode)
		rc |= upsert(db, &pt->p->cfg, "mode", hive_power_mode_name(pt->next.mode), wall,
			     pt->actor);
	if (pt->has_margin) {
		snprintf(v, sizeof(v), "%.17g", pt->next.margin_pct);
		rc |= upsert(db, &pt->p->cfg, "margin_pct", v, wall, pt->actor);
	}
	if (pt->has_budget) {
		snprintf(v, sizeof(v), "%lld", pt->next.budget_w);
		rc |= upsert(db, &pt->p->cfg, "budget_w", v, wall, pt->actor);
	}
	if (pt->has_fallback)
		rc |= upsert(db, &pt->p->cfg, "fallback", hive_power_fallback_name(pt->next.fallback),
			     wall, pt->actor);
	detail = json_dumps(pt->body, JSON_COMPACT | JSON_SORT_KEYS);
	rc |= exec_bind(db, "INSERT INTO audit(ts_ms, actor, action, target, detail) "
			"VALUES(?1, ?2, 'power.patch', 'power', ?3)", "iss", wall, pt->actor, detail);
	free(detail);
	if (rc) {
		*http_status = 503;
		snprintf(err, errlen, "database error: power settings not stored");
		return -1;
	}
	return 0;
}

int apid_power_patch(struct apid_power *p, const json_t *body, const char *actor,
		     int *http_status, char *err, size_t errlen)
{
	struct patch pt = { .p = p, .actor = actor && *actor ? actor : "api", .body = (json_t *)body };
	const char *key;
	json_t *v;

	pthread_mutex_lock(&p->mu);
	pt.next = p->set;
	pthread_mutex_unlock(&p->mu);
	*http_status = 400;
	json_object_foreach((json_t *)body, key, v) {
		if (strcmp(key, "mode") == 0) {
			int m = json_is_string(v) ? hive_power_mode_parse(json_string_value(v)) : -1;

			if (m < 0) {
				snprintf(err, errlen, "mode: must be \"off\", \"dry_run\" or \"on\"");
				return -1;
			}
			pt.next.mode = m;
			pt.has_mode = true;
		} else if (strcmp(key, "margin_pct") == 0) {
			double d = json_is_number(v) ? json_number_value(v) : NAN;

			if (!(d >= 0 && d <= 90)) {
				snprintf(err, errlen, "margin_pct: must be a number from 0 to 90");
				return -1;
			}
			pt.next.margin_pct = d;
			pt.has_margin = true;
		} else if (strcmp(key, "budget_w") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 1000000000000LL) {
				snprintf(err, errlen, "budget_w: must be whole watts from 0 to 10^12");
				return -1;
			}
			pt.next.budget_w = json_integer_value(v);
			pt.has_budget = true;
		} else if (strcmp(key, "fallback") == 0) {
			int f = json_is_string(v) ? hive_power_fallback_parse(json_string_value(v)) : -1;

			if (f < 0) {
				snprintf(err, errlen, "fallback: must be \"hold\", \"fixed\" or \"minimum\"");
				return -1;
			}
			pt.next.fallback = f;
			pt.has_fallback = true;
		} else {
			snprintf(err, errlen, "%s: unknown field (mode, margin_pct, budget_w, fallback)",
				 key);
			return -1;
		}
	}
	if (!pt.has_mode && !pt.has_margin && !pt.has_budget && !pt.has_fallback) {
		snprintf(err, errlen, "nothing to change (mode, margin_pct, budget_w, fallback)");
		return -1;
	}
	*http_status = 409;
	if (pt.next.mode != HIVE_POWER_OFF && p->cfg.power.source.kind == HIVE_PLANT_NONE) {
		snprintf(err, errlen, "mode: %s needs a power.source in the config",
			 hive_power_mode_name(pt.next.mode));
		return -1;
	}
	if (pt.next.mode != HIVE_POWER_OFF && p->cfg.scheduler.managed_only) {
		snprintf(err, errlen, "mode: %s is refused while scheduler.managed_only is on (the "
			 "balancer must see unmanaged miners, its fixed load)",
			 hive_power_mode_name(pt.next.mode));
		return -1;
	}
	if (pt.has_budget && p->cfg.power.source.kind != HIVE_PLANT_MANUAL) {
		snprintf(err, errlen, "budget_w: the power source is %s, not manual",
			 hive_plant_kind_name(p->cfg.power.source.kind));
		return -1;
	}
	if (pt.has_budget && p->cfg.power.source.n_schedule > 0) {
		snprintf(err, errlen, "budget_w: the budget follows power.source.schedule");
		return -1;
	}
	if (pt.next.fallback == HIVE_POWER_FIXED && p->cfg.power.fallback_w <= 0) {
		snprintf(err, errlen, "fallback: \"fixed\" needs power.fallback_w in the config");
		return -1;
	}
	if (apid_writer_run_within(p->writer, patch_run, &pt, APID_WRITER_API_WAIT_MS, http_status,
				   err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&p->mu);
	if (pt.has_mode) {
		p->set.mode = pt.next.mode;
		p->set.api_mode = true;
	}
	if (pt.has_margin) {
		p->set.margin_pct = pt.next.margin_pct;
		p->set.api_margin = true;
	}
	if (pt.has_budget) {
		p->set.budget_w = pt.next.budget_w;
		p->set.api_budget = true;
	}
	if (pt.has_fallback) {
		p->set.fallback = pt.next.fallback;
		p->set.api_fallback = true;
	}
	pthread_mutex_unlock(&p->mu);
	/* Balanced on at once: the answer and the next GET show the new target. */
	if (!atomic_exchange(&p->cycle_posted, true)) {
		int st = 0;
		char e[128];

		if (apid_writer_run(p->writer, posted_cycle, p, &st, e, sizeof(e)) < 0)
			atomic_store(&p->cycle_posted, false);
	}
	log_info("power settings changed actor=%s mode=%s margin_pct=%g fallback=%s", pt.actor,
		 hive_power_mode_name(p->set.mode), p->set.margin_pct,
		 hive_power_fallback_name(p->set.fallback));
	return 0;
}
