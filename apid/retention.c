/* retention — see retention.h.
 *
 * One table drives the three parts: how to delete a table's oldest rows
 * (up to a time, at most n), how to find its oldest row, and which of
 * the options is its retention. A raw table's limit also waits for its
 * roll-up (rollups: the last folded status, the telemetry hour being
 * summarised, the fleet minute being totalled).
 */
#include "retention.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "hive/log.h"

#define HOUR_MS      3600000LL
#define DAY_MS       86400000LL
#define FOREVER      INT64_MAX
#define VACUUM_STEP  4096        /* pages handed back per step (16 MiB) */

struct table {
	const char *name;
	const char *kept;        /* its rollups row of the oldest time kept whole, or NULL */
	/* ?1 delete rows older than this (ms), ?2 at most this many rows;
	 * statuses: ?3 the last status folded. */
	const char *prune;
	const char *oldest;      /* NULL: not trimmed by size */
};

static const struct table tables[APID_RT_COUNT] = {
	/* The latest status of a miner stays: the miner list shows it. */
	[APID_RT_STATUSES] = { "statuses", "raw",
		"DELETE FROM statuses WHERE id IN (SELECT s.id FROM statuses s"
		" WHERE s.ts_ms < ?1 AND s.id <= ?3 AND s.id < coalesce((SELECT m.last_status_id"
		" FROM miners m WHERE m.mac = s.mac), ?3 + 1) ORDER BY s.ts_ms LIMIT ?2)"
		" RETURNING ts_ms",
		/* The oldest that may go: the latest statuses of long-silent
		 * miners would make raw statuses look older than they are. */
		"SELECT s.ts_ms FROM statuses s WHERE s.id < coalesce((SELECT m.last_status_id"
		" FROM miners m WHERE m.mac = s.mac), s.id + 1) ORDER BY s.ts_ms LIMIT 1" },
	/* So does its latest sample: the chip map shows it. */
	[APID_RT_TELEMETRY] = { "telemetry", NULL,
		"DELETE FROM telemetry WHERE id IN (SELECT t.id FROM telemetry t"
		" WHERE t.ts_ms < ?1 AND t.ts_ms < coalesce((SELECT m.last_telemetry_ms"
		" FROM miners m WHERE m.mac = t.mac), ?1) ORDER BY t.ts_ms LIMIT ?2)",
		"SELECT t.ts_ms FROM telemetry t WHERE t.ts_ms < coalesce((SELECT m.last_telemetry_ms"
		" FROM miners m WHERE m.mac = t.mac), t.ts_ms + 1) ORDER BY t.ts_ms LIMIT 1" },
	[APID_RT_STATUS_MINUTES] = { "status_minutes", "minutes",
		"DELETE FROM status_minutes WHERE (ts_ms, miner) IN (SELECT ts_ms, miner"
		" FROM status_minutes WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2) RETURNING ts_ms",
		"SELECT min(ts_ms) FROM status_minutes" },
	[APID_RT_STATUS_HOURS] = { "status_hours", NULL,
		"DELETE FROM status_hours WHERE (ts_ms, miner) IN (SELECT ts_ms, miner"
		" FROM status_hours WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
		"SELECT min(ts_ms) FROM status_hours" },
	[APID_RT_TELEMETRY_HOURS] = { "telemetry_hours", NULL,
		"DELETE FROM telemetry_hours WHERE (ts_ms, miner, chain) IN (SELECT ts_ms, miner,"
		" chain FROM telemetry_hours WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
		"SELECT min(ts_ms) FROM telemetry_hours" },
	[APID_RT_FLEET_MINUTES] = { "fleet_minutes", "fleet_minutes",
		"DELETE FROM fleet_minutes WHERE (ts_ms, model) IN (SELECT ts_ms, model"
		" FROM fleet_minutes WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2) RETURNING ts_ms",
		"SELECT min(ts_ms) FROM fleet_minutes" },
	[APID_RT_FLEET_HOURS] = { "fleet_hours", NULL,
		"DELETE FROM fleet_hours WHERE (ts_ms, model) IN (SELECT ts_ms, model"
		" FROM fleet_hours WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
		"SELECT min(ts_ms) FROM fleet_hours" },
	[APID_RT_ERRORS] = { "miner_errors", NULL,
		"DELETE FROM miner_errors WHERE id IN"
		" (SELECT id FROM miner_errors WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
		"SELECT min(ts_ms) FROM miner_errors" },
	[APID_RT_AUDIT] = { "audit", NULL,
		"DELETE FROM audit WHERE id IN"
		" (SELECT id FROM audit WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)", NULL },
	/* Open actions are younger than any retention: only ended ones go. */
	[APID_RT_ACTIONS] = { "actions", NULL,
		"DELETE FROM actions WHERE id IN"
		" (SELECT id FROM actions WHERE created_ms < ?1 ORDER BY created_ms LIMIT ?2)",
		NULL },
	[APID_RT_POWER_READINGS] = { "power_readings", NULL,
		"DELETE FROM power_readings WHERE id IN"
		" (SELECT id FROM power_readings WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)", NULL },
	[APID_RT_POWER_SAMPLES] = { "power_samples", NULL,
		"DELETE FROM power_samples WHERE ts_ms IN"
		" (SELECT ts_ms FROM power_samples WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
		NULL },
	[APID_RT_POWER_DECISIONS] = { "power_decisions", NULL,
		"DELETE FROM power_decisions WHERE id IN"
		" (SELECT id FROM power_decisions WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
		NULL },
};

enum stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_STATES, ST_KEPT,
	ST_PAGES, ST_FREE, ST_PAGE_SIZE, ST_CHECKPOINT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_STATES] =
		"SELECT (SELECT last_id FROM rollups WHERE name = 'statuses'),"
		" (SELECT done_ms FROM rollups WHERE name = 'statuses'),"
		" (SELECT done_ms FROM rollups WHERE name = 'telemetry'),"
		" (SELECT done_ms FROM rollups WHERE name = 'fleet')",
	/* A table's rows from this time on are all there: the history reads
	 * raw statuses ('raw') and minutes ('minutes', 'fleet_minutes') only
	 * from there, roll-ups before. */
	[ST_KEPT] = "UPDATE rollups SET done_ms = max(done_ms, ?2) WHERE name = ?1",
	[ST_PAGES] = "PRAGMA page_count",
	[ST_FREE] = "PRAGMA freelist_count",
	[ST_PAGE_SIZE] = "PRAGMA page_size",
	[ST_CHECKPOINT] = "PRAGMA wal_checkpoint(PASSIVE)",
};

enum phase { PH_AGE, PH_SIZE, PH_VACUUM };

struct apid_retention {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	sqlite3_stmt *prune[APID_RT_COUNT], *oldest[APID_RT_COUNT];
	enum phase phase;
	int table;
	bool exhausted[APID_RT_COUNT];   /* this pass: nothing more to trim by size */
	struct apid_retention_counts counts;
};

/* Where the roll-ups stand. */
struct states {
	long long last_id;       /* statuses folded */
	long long folded_ms;     /* statuses before it all folded */
	long long telemetry_ms;  /* telemetry before it summarised */
	long long fleet_ms;      /* fleet minutes before it totalled */
};

const char *apid_retention_table_name(enum apid_retention_table t)
{
	return t < APID_RT_COUNT ? tables[t].name : "?";
}

static long long pragma(struct apid_retention *r, enum stmt s)
{
	long long v = -1;

	if (sqlite3_step(r->st[s]) == SQLITE_ROW)
		v = sqlite3_column_int64(r->st[s], 0);
	sqlite3_reset(r->st[s]);
	return v;
}

static int states_get(struct apid_retention *r, struct states *s)
{
	sqlite3_stmt *st = r->st[ST_STATES];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		s->last_id = sqlite3_column_int64(st, 0);
		s->folded_ms = sqlite3_column_int64(st, 1);
		s->telemetry_ms = sqlite3_column_int64(st, 2);
		s->fleet_ms = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : apid_apply_failed(st, rc);
}

static long long min_ll(long long a, long long b)
{
	return a < b ? a : b;
}

/* A table's retention in ms; FOREVER when kept forever. */
static long long age_ms(const struct apid_retention_opts *o, int t)
{
	long long h = 0;

	switch (t) {
	case APID_RT_STATUSES:        h = o->status_raw_hours; break;
	case APID_RT_TELEMETRY:       h = o->telemetry_raw_hours; break;
	case APID_RT_STATUS_MINUTES:
	case APID_RT_FLEET_MINUTES:   h = 24LL * o->minute_days; break;
	case APID_RT_STATUS_HOURS:
	case APID_RT_FLEET_HOURS:     h = 24LL * o->status_days; break;
	case APID_RT_TELEMETRY_HOURS:
	case APID_RT_ERRORS:          h = 24LL * o->telemetry_days; break;
	case APID_RT_AUDIT:
	case APID_RT_ACTIONS:         h = 24LL * o->audit_days; break;
	default:                      h = 24LL * o->power_days; break;
	}
	return h > 0 ? h * HOUR_MS : FOREVER;
}

/* What a roll-up still needs of a table: nothing at or after this time
 * may go, whatever the age or size. */
static long long keep_from(const struct states *s, int t)
{
	switch (t) {
	case APID_RT_STATUSES:       return s->folded_ms;
	case APID_RT_TELEMETRY:      return s->telemetry_ms;
	case APID_RT_STATUS_MINUTES: return s->fleet_ms;   /* the fleet totals them */
	case APID_RT_FLEET_MINUTES:  return s->fleet_ms / HOUR_MS * HOUR_MS;
	default:                     return FOREVER;
	}
}

/* Deletes at most limit of t's rows older than cutoff, oldest first. The
 * rows deleted, or -1. */
static int prune(struct apid_retention *r, int t, long long cutoff, int limit,
		 const struct states *s)
{
	sqlite3_stmt *st = r->prune[t];
	long long newest = -1;
	int rc, n = 0;

	if (cutoff == FOREVER || cutoff <= 0)
		return 0;
	if (tables[t].kept && (rc = apid_apply_step(r->st[ST_BEGIN])) != SQLITE_DONE)
		return apid_apply_failed(r->st[ST_BEGIN], rc);
	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int(st, 2, limit);
	if (t == APID_RT_STATUSES)
		sqlite3_bind_int64(st, 3, s->last_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (sqlite3_column_int64(st, 0) > newest)
			newest = sqlite3_column_int64(st, 0);
	n = sqlite3_changes(r->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		apid_apply_failed(st, rc);
		goto fail;
	}
	if (tables[t].kept) {
		if (newest >= 0) {
			sqlite3_bind_text(r->st[ST_KEPT], 1, tables[t].kept, -1, SQLITE_STATIC);
			sqlite3_bind_int64(r->st[ST_KEPT], 2, newest + 1);
			if ((rc = apid_apply_step(r->st[ST_KEPT])) != SQLITE_DONE) {
				apid_apply_failed(r->st[ST_KEPT], rc);
				goto fail;
			}
		}
		if ((rc = apid_apply_step(r->st[ST_COMMIT])) != SQLITE_DONE) {
			apid_apply_failed(r->st[ST_COMMIT], rc);
			goto fail;
		}
	}
	r->counts.pruned[t] += (uint64_t)n;
	return n;
fail:
	if (!sqlite3_get_autocommit(r->db))
		apid_apply_step(r->st[ST_ROLLBACK]);
	return -1;
}

/* The data's bytes: pages in use. */
static long long used_bytes(struct apid_retention *r)
{
	long long pages = pragma(r, ST_PAGES), unused = pragma(r, ST_FREE),
		  size = pragma(r, ST_PAGE_SIZE);

	return pages < 0 || unused < 0 || size < 0 ? -1 : (pages - unused) * size;
}

/* The history table furthest through its own retention that can still
 * lose rows, or -1. */
static int furthest(struct apid_retention *r, const struct apid_retention_opts *o,
		    int64_t now)
{
	double worst = -1.0;
	int pick = -1;

	for (int t = 0; t < APID_RT_COUNT; t++) {
		sqlite3_stmt *st = r->oldest[t];
		double share;

		if (!st || r->exhausted[t])
			continue;
		if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_reset(st);
			r->exhausted[t] = true;
			continue;
		}
		share = (double)(now - sqlite3_column_int64(st, 0)) / (double)age_ms(o, t);
		sqlite3_reset(st);
		if (share > worst) {
			worst = share;
			pick = t;
		}
	}
	return pick;
}

static int step_size(struct apid_retention *r, const struct apid_retention_opts *o,
		     int64_t now, int limit)
{
	struct states s;
	long long used;
	int t, n;

	if (o->max_bytes <= 0 || (used = used_bytes(r)) < 0 || used <= o->max_bytes)
		return 0;
	if (states_get(r, &s) < 0)
		return 0;
	if ((t = furthest(r, o, now)) < 0) {
		hive_log_complain("retention size", "retention over max_bytes and nothing left to"
				  " prune used_bytes=%lld max_bytes=%lld", used, o->max_bytes);
		return 0;
	}
	n = prune(r, t, min_ll(keep_from(&s, t), now + 1), limit, &s);
	if (n <= 0) {
		r->exhausted[t] = true;
		return 1;
	}
	r->counts.capped[t] += (uint64_t)n;
	log_debug("retention size pruned table=%s rows=%d used_bytes=%lld max_bytes=%lld",
		  tables[t].name, n, used, o->max_bytes);
	return 1;
}

static int step_vacuum(struct apid_retention *r, const struct apid_retention_opts *o)
{
	long long unused = pragma(r, ST_FREE), reserve = o->reserve_pages, n;
	char sql[64];

	if (reserve < 0)
		reserve = APID_RETENTION_RESERVE_PAGES;
	if (unused <= reserve)
		return 0;
	n = min_ll(unused - reserve, VACUUM_STEP);
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", n);
	if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		hive_log_complain("retention vacuum", "retention vacuum failed err=\"%s\"",
				  sqlite3_errmsg(r->db));
		return 0;
	}
	/* The truncation reaches the file at a checkpoint. */
	pragma(r, ST_CHECKPOINT);
	r->counts.pages_returned += (uint64_t)(unused - pragma(r, ST_FREE));
	log_debug("retention vacuum pages=%lld free_pages=%lld", n, unused - n);
	return 1;
}

int apid_retention_step(struct apid_retention *r, const struct apid_retention_opts *o,
			int64_t now)
{
	int limit = o->prune_batch > 0 ? o->prune_batch : 2000;

	switch (r->phase) {
	case PH_AGE: {
		int t = r->table, n = 0;
		long long age = age_ms(o, t);
		struct states s;

		if (age != FOREVER && states_get(r, &s) == 0) {
			n = prune(r, t, min_ll(now - age, keep_from(&s, t)), limit, &s);
			if (n > 0)
				log_debug("retention pruned table=%s rows=%d", tables[t].name, n);
			if (n >= limit)
				return 1;    /* more of this table after the next batch */
		}
		if (++r->table == APID_RT_COUNT) {
			r->table = 0;
			r->phase = PH_SIZE;
			memset(r->exhausted, 0, sizeof(r->exhausted));
		}
		return 1;
	}
	case PH_SIZE:
		if (step_size(r, o, now, limit))
			return 1;
		r->phase = PH_VACUUM;
		return 1;
	case PH_VACUUM:
		if (step_vacuum(r, o))
			return 1;
		r->phase = PH_AGE;
		return 0;
	}
	return 0;
}

struct apid_retention *apid_retention_new(sqlite3 *db, char *err, size_t errlen)
{
	struct apid_retention *r = calloc(1, sizeof(*r));
	const char *prune_sql[APID_RT_COUNT], *oldest_sql[APID_RT_COUNT];
	int n_oldest = 0;
	int idx[APID_RT_COUNT];

	if (!r) {
		snprintf(err, errlen, "retention: out of memory");
		return NULL;
	}
	r->db = db;
	for (int t = 0; t < APID_RT_COUNT; t++) {
		prune_sql[t] = tables[t].prune;
		if (tables[t].oldest) {
			idx[n_oldest] = t;
			oldest_sql[n_oldest++] = tables[t].oldest;
		}
	}
	if (apid_apply_prepare(db, stmt_sql, r->st, ST_COUNT, "retention", err, errlen) < 0)
		goto fail;
	if (apid_apply_prepare(db, prune_sql, r->prune, APID_RT_COUNT, "retention", err,
			       errlen) < 0)
		goto fail;
	{
		sqlite3_stmt *o[APID_RT_COUNT];

		if (apid_apply_prepare(db, oldest_sql, o, n_oldest, "retention", err, errlen) < 0)
			goto fail;
		for (int i = 0; i < n_oldest; i++)
			r->oldest[idx[i]] = o[i];
	}
	return r;
fail:
	apid_retention_free(r);
	return NULL;
}

void apid_retention_free(struct apid_retention *r)
{
	if (!r)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(r->st[i]);
	for (int t = 0; t < APID_RT_COUNT; t++) {
		sqlite3_finalize(r->prune[t]);
		sqlite3_finalize(r->oldest[t]);
	}
	free(r);
}

void apid_retention_counts(struct apid_retention *r, struct apid_retention_counts *out)
{
	*out = r->counts;
}
