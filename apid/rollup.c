/* rollup — see rollup.h.
 *
 * Every statement works on a bounded slice (raw statuses by id, the fleet
 * a few minutes at a time, telemetry a few miners at a time), so a step
 * takes milliseconds and the writer's batches go on between steps; after
 * an upgrade the backlog of old rows is folded the same way, oldest first.
 */
#include "rollup.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "chips.h"
#include "hive/log.h"

#define MINUTE_MS   60000LL
#define HOUR_MS     3600000LL
#define FOLD_ROWS   5000       /* raw statuses folded per step (~30 ms) */
#define FLEET_STEP  10         /* fleet minutes per step */
#define TELE_MINERS 50         /* miners whose telemetry hour is summarised per step */

/* Adds the raw statuses (?1, ?2] to the roll-up of `unit` ms: counts and
 * sums add up, maxima take the larger (NULL when no status had one). */
#define MAXN(c) "coalesce(max(" c ", excluded." c "), " c ", excluded." c ")"
#define FOLD(table, unit) \
	"INSERT INTO " table "(ts_ms, miner, n, mining, hr_n, hr_sum, hr_avg_n, hr_avg_sum," \
	" hr_nominal, power_n, power_sum, metered, chip_temp_max, pcb_temp_max)" \
	" SELECT s.ts_ms / " unit " * " unit ", m.num, count(*)," \
	" count(CASE WHEN s.state = 'mining' THEN 1 END)," \
	" count(s.hr_realtime_ghs), total(s.hr_realtime_ghs)," \
	" count(s.hr_average_ghs), total(s.hr_average_ghs), max(s.hr_nominal_ghs)," \
	" count(s.power_w), coalesce(sum(s.power_w), 0)," \
	" count(CASE WHEN s.power_metered = 1 THEN 1 END)," \
	" max(s.chip_temp_max), max(s.pcb_temp_max)" \
	" FROM statuses s JOIN miners m ON m.mac = s.mac WHERE s.id > ?1 AND s.id <= ?2" \
	" GROUP BY 1, 2" \
	" ON CONFLICT(ts_ms, miner) DO UPDATE SET n = n + excluded.n," \
	" mining = mining + excluded.mining, hr_n = hr_n + excluded.hr_n," \
	" hr_sum = hr_sum + excluded.hr_sum, hr_avg_n = hr_avg_n + excluded.hr_avg_n," \
	" hr_avg_sum = hr_avg_sum + excluded.hr_avg_sum, hr_nominal = " MAXN("hr_nominal") "," \
	" power_n = power_n + excluded.power_n, power_sum = power_sum + excluded.power_sum," \
	" metered = metered + excluded.metered, chip_temp_max = " MAXN("chip_temp_max") "," \
	" pcb_temp_max = " MAXN("pcb_temp_max")

/* One minute's fleet totals from the miners' minute roll-ups: a miner
 * counts online when it reported that minute, mining when one of its
 * statuses said so, with its mean hashrate and power over the minute. */
#define FLEET_SUMS \
	" count(*), count(CASE WHEN sm.mining > 0 THEN 1 END)," \
	" total(sm.hr_sum / nullif(sm.hr_n, 0)), total(sm.power_sum * 1.0 / nullif(sm.power_n, 0))"

enum stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_STATE_GET, ST_STATE_SET,
	ST_MAX_ID, ST_NEXT_TS, ST_FOLD_MINUTES, ST_FOLD_HOURS,
	ST_FLEET_FIRST, ST_FLEET_NEXT, ST_FLEET_MINUTE, ST_FLEET_HOUR,
	ST_TELE_NEXT, ST_TELE_MINERS, ST_TELE_ROWS, ST_TELE_PUT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_STATE_GET] = "SELECT last_id, done_ms, cursor FROM rollups WHERE name = ?1",
	[ST_STATE_SET] = "UPDATE rollups SET last_id = ?2, done_ms = ?3, cursor = ?4 WHERE name = ?1",
	[ST_MAX_ID] = "SELECT max(id) FROM statuses",
	[ST_NEXT_TS] = "SELECT ts_ms FROM statuses WHERE id > ?1 ORDER BY id LIMIT 1",
	[ST_FOLD_MINUTES] = FOLD("status_minutes", "60000"),
	[ST_FOLD_HOURS] = FOLD("status_hours", "3600000"),
	[ST_FLEET_FIRST] = "SELECT min(ts_ms) FROM status_minutes",
	[ST_FLEET_NEXT] = "SELECT min(ts_ms) FROM status_minutes WHERE ts_ms >= ?1",
	[ST_FLEET_MINUTE] =
		"INSERT OR REPLACE INTO fleet_minutes(ts_ms, model, minutes, online, mining,"
		" hashrate_ghs, power_w)"
		" SELECT ?1, coalesce(m.model, '?'), 1," FLEET_SUMS
		" FROM status_minutes sm JOIN miners m ON m.num = sm.miner WHERE sm.ts_ms = ?1"
		" GROUP BY 2"
		" UNION ALL SELECT ?1, '', 1," FLEET_SUMS
		" FROM status_minutes sm WHERE sm.ts_ms = ?1 HAVING count(*) > 0",
	/* An hour's fleet rows hold sums over its minutes; `minutes` of the
	 * whole-fleet row ('') is how many minutes had any status. */
	[ST_FLEET_HOUR] =
		"INSERT OR REPLACE INTO fleet_hours(ts_ms, model, minutes, online, mining,"
		" hashrate_ghs, power_w)"
		" SELECT ?1, model, sum(minutes), sum(online), sum(mining), total(hashrate_ghs),"
		" total(power_w) FROM fleet_minutes WHERE ts_ms >= ?1 AND ts_ms < ?1 + 3600000"
		" GROUP BY model",
	[ST_TELE_NEXT] = "SELECT min(ts_ms) FROM telemetry WHERE ts_ms >= ?1",
	[ST_TELE_MINERS] = "SELECT mac, num FROM miners WHERE mac > ?1 ORDER BY mac LIMIT ?2",
	[ST_TELE_ROWS] =
		"SELECT chain, state, hr_realtime_ghs, hr_nominal_ghs, freq, chips, chips_format"
		" FROM telemetry WHERE mac = ?1 AND ts_ms >= ?2 AND ts_ms < ?3"
		" ORDER BY chain, ts_ms",
	[ST_TELE_PUT] =
		"INSERT OR REPLACE INTO telemetry_hours(ts_ms, miner, chain, samples, state,"
		" hr_realtime_ghs, hr_nominal_ghs, freq, n_chips, chips)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

struct state {
	long long last_id, done_ms;
	char cursor[64];
};

struct apid_rollup {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct apid_rollup_counts counts;
	struct apid_chip *chips;   /* one sample's chips, decoded */
	size_t chips_cap;
};

/* ------------------------------------------------------------ helpers */

static int run(struct apid_rollup *r, enum stmt s)
{
	int rc = apid_apply_step(r->st[s]);

	return rc == SQLITE_DONE ? 0 : apid_apply_failed(r->st[s], rc);
}

static void done(struct apid_rollup *r, enum stmt s)
{
	sqlite3_reset(r->st[s]);
	sqlite3_clear_bindings(r->st[s]);
}

/* The one integer st returns; *null when it is NULL or there is no row.
 * 0 / -1. */
static int one_int(struct apid_rollup *r, enum stmt s, long long *v, bool *null)
{
	int rc = sqlite3_step(r->st[s]);

	*null = rc != SQLITE_ROW || sqlite3_column_type(r->st[s], 0) == SQLITE_NULL;
	*v = *null ? 0 : sqlite3_column_int64(r->st[s], 0);
	done(r, s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : apid_apply_failed(r->st[s], rc);
}

static int state_get(struct apid_rollup *r, const char *name, struct state *out)
{
	sqlite3_stmt *st = r->st[ST_STATE_GET];
	int rc;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->last_id = sqlite3_column_int64(st, 0);
		out->done_ms = sqlite3_column_int64(st, 1);
		if (sqlite3_column_text(st, 2))
			snprintf(out->cursor, sizeof(out->cursor), "%s",
				 (const char *)sqlite3_column_text(st, 2));
	}
	done(r, ST_STATE_GET);
	return rc == SQLITE_ROW ? 0 : apid_apply_failed(st, rc);
}

static int state_set(struct apid_rollup *r, const char *name, const struct state *s)
{
	sqlite3_stmt *st = r->st[ST_STATE_SET];

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, s->last_id);
	sqlite3_bind_int64(st, 3, s->done_ms);
	if (s->cursor[0])
		sqlite3_bind_text(st, 4, s->cursor, -1, SQLITE_STATIC);
	return run(r, ST_STATE_SET);
}

static long long floor_to(long long t, long long unit)
{
	return t / unit * unit;
}

static long long min_ll(long long a, long long b)
{
	return a < b ? a : b;
}

/* ------------------------------------------------------------ statuses */

static int fold_statuses(struct apid_rollup *r, int64_t now, bool *more)
{
	struct state s;
	long long max_id, upto, next_ts, cand;
	bool null, caught;

	if (state_get(r, "statuses", &s) < 0 || one_int(r, ST_MAX_ID, &max_id, &null) < 0)
		return -1;
	/* Ids only go back when the newest rows were deleted (a miner
	 * removed): the next ones reuse them and must be folded. */
	if (max_id < s.last_id)
		s.last_id = max_id;
	upto = max_id > s.last_id + FOLD_ROWS ? s.last_id + FOLD_ROWS : max_id;
	if (upto < s.last_id)
		upto = s.last_id;
	caught = upto >= max_id;
	if (upto > s.last_id) {
		sqlite3_bind_int64(r->st[ST_FOLD_MINUTES], 1, s.last_id);
		sqlite3_bind_int64(r->st[ST_FOLD_MINUTES], 2, upto);
		sqlite3_bind_int64(r->st[ST_FOLD_HOURS], 1, s.last_id);
		sqlite3_bind_int64(r->st[ST_FOLD_HOURS], 2, upto);
		if (run(r, ST_FOLD_MINUTES) < 0 || run(r, ST_FOLD_HOURS) < 0)
			return -1;
		r->counts.statuses += (uint64_t)(upto - s.last_id);
	}
	/* The boundary: every status before it is folded (but for one later
	 * than APID_ROLLUP_LATE_MS); it never moves back. */
	cand = floor_to(now - APID_ROLLUP_LATE_MS, MINUTE_MS);
	if (!caught) {
		sqlite3_bind_int64(r->st[ST_NEXT_TS], 1, upto);
		if (one_int(r, ST_NEXT_TS, &next_ts, &null) < 0)
			return -1;
		if (!null && floor_to(next_ts, MINUTE_MS) < cand)
			cand = floor_to(next_ts, MINUTE_MS);
	}
	if (cand > s.done_ms)
		s.done_ms = cand;
	s.last_id = upto;
	*more = !caught;
	return state_set(r, "statuses", &s);
}

/* ------------------------------------------------------------ the fleet */

static int fleet(struct apid_rollup *r, bool *more)
{
	struct state f, st;
	long long first;
	bool null;

	if (state_get(r, "fleet", &f) < 0 || state_get(r, "statuses", &st) < 0)
		return -1;
	if (f.done_ms == 0) {
		if (one_int(r, ST_FLEET_FIRST, &first, &null) < 0)
			return -1;
		if (null)
			return 0;
		f.done_ms = floor_to(first, MINUTE_MS);
	}
	for (int i = 0; i < FLEET_STEP && f.done_ms + MINUTE_MS <= st.done_ms; i++) {
		long long next, to;

		/* Minutes without any status are skipped at once (apid was
		 * stopped, a stray status from a clock far behind). */
		sqlite3_bind_int64(r->st[ST_FLEET_NEXT], 1, f.done_ms);
		if (one_int(r, ST_FLEET_NEXT, &next, &null) < 0)
			return -1;
		to = null ? floor_to(st.done_ms, MINUTE_MS)
			  : min_ll(floor_to(next, MINUTE_MS), floor_to(st.done_ms, MINUTE_MS));
		if (to > f.done_ms) {
			/* Leaving an hour that had minutes: its total first. */
			if (f.done_ms % HOUR_MS && floor_to(to, HOUR_MS) > floor_to(f.done_ms, HOUR_MS)) {
				sqlite3_bind_int64(r->st[ST_FLEET_HOUR], 1, floor_to(f.done_ms, HOUR_MS));
				if (run(r, ST_FLEET_HOUR) < 0)
					return -1;
			}
			f.done_ms = to;
			continue;
		}
		sqlite3_bind_int64(r->st[ST_FLEET_MINUTE], 1, f.done_ms);
		if (run(r, ST_FLEET_MINUTE) < 0)
			return -1;
		r->counts.fleet_minutes++;
		f.done_ms += MINUTE_MS;
		if (f.done_ms % HOUR_MS == 0) {
			sqlite3_bind_int64(r->st[ST_FLEET_HOUR], 1, f.done_ms - HOUR_MS);
			if (run(r, ST_FLEET_HOUR) < 0)
				return -1;
		}
	}
	*more = f.done_ms + MINUTE_MS <= st.done_ms;
	return state_set(r, "fleet", &f);
}

/* ------------------------------------------------------------ telemetry */

struct chain_acc {
	long long chain;
	unsigned samples;
	char state[32];
	double hr, hr_nom, freq;
	unsigned n_hr, n_nom, n_freq;
	struct apid_chip_acc chips;
};

static int chain_put(struct apid_rollup *r, long long hour, long long num, struct chain_acc *c)
{
	sqlite3_stmt *st = r->st[ST_TELE_PUT];
	size_t len = 0;
	unsigned char *blob = apid_chips_acc_pack(&c->chips, &len);
	int rc;

	if (!blob) {
		log_warnx("telemetry summary failed err=\"out of memory\"");
		return -1;
	}
	sqlite3_bind_int64(st, 1, hour);
	sqlite3_bind_int64(st, 2, num);
	sqlite3_bind_int64(st, 3, c->chain);
	sqlite3_bind_int(st, 4, (int)c->samples);
	if (c->state[0])
		sqlite3_bind_text(st, 5, c->state, -1, SQLITE_STATIC);
	if (c->n_hr)
		sqlite3_bind_double(st, 6, c->hr / c->n_hr);
	if (c->n_nom)
		sqlite3_bind_double(st, 7, c->hr_nom / c->n_nom);
	if (c->n_freq)
		sqlite3_bind_double(st, 8, c->freq / c->n_freq);
	sqlite3_bind_int64(st, 9, (long long)c->chips.n_chips);
	sqlite3_bind_blob(st, 10, blob, (int)len, free);
	rc = run(r, ST_TELE_PUT);
	if (rc == 0)
		r->counts.telemetry_hours++;
	return rc;
}

static void add_real(sqlite3_stmt *st, int col, double *sum, unsigned *n)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL) {
		*sum += sqlite3_column_double(st, col);
		(*n)++;
	}
}

/* One miner's hour: one telemetry_hours row per chain. */
static int summarise(struct apid_rollup *r, const char *mac, long long num, long long hour)
{
	sqlite3_stmt *st = r->st[ST_TELE_ROWS];
	struct chain_acc c;
	bool open = false;
	int rc, ret = 0;

	memset(&c, 0, sizeof(c));
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, hour);
	sqlite3_bind_int64(st, 3, hour + HOUR_MS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long chain = sqlite3_column_int64(st, 0);
		const void *blob = sqlite3_column_blob(st, 5);
		size_t len = (size_t)sqlite3_column_bytes(st, 5);
		int fmt = sqlite3_column_int(st, 6), n;

		if (open && chain != c.chain) {
			ret = chain_put(r, hour, num, &c);
			apid_chips_acc_clear(&c.chips);
			memset(&c, 0, sizeof(c));
			open = false;
			if (ret < 0)
				break;
		}
		open = true;
		c.chain = chain;
		c.samples++;
		if (sqlite3_column_text(st, 1))
			snprintf(c.state, sizeof(c.state), "%s", (const char *)sqlite3_column_text(st, 1));
		add_real(st, 2, &c.hr, &c.n_hr);
		add_real(st, 3, &c.hr_nom, &c.n_nom);
		add_real(st, 4, &c.freq, &c.n_freq);
		n = apid_chips_unpack_any(blob, len, fmt, r->chips, r->chips_cap);
		if (n > (int)r->chips_cap) {
			struct apid_chip *nc = realloc(r->chips, (size_t)n * sizeof(*nc));

			if (!nc) {
				ret = -1;
				break;
			}
			r->chips = nc;
			r->chips_cap = (size_t)n;
			n = apid_chips_unpack_any(blob, len, fmt, r->chips, r->chips_cap);
		}
		/* A blob that does not read counts as a sample without chips. */
		if (n > 0 && apid_chips_acc_add(&c.chips, r->chips, (size_t)n) < 0) {
			ret = -1;
			break;
		}
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = apid_apply_failed(st, rc);
	done(r, ST_TELE_ROWS);
	if (ret == 0 && open)
		ret = chain_put(r, hour, num, &c);
	apid_chips_acc_clear(&c.chips);
	return ret;
}

static int telemetry(struct apid_rollup *r, int64_t now, bool *more)
{
	sqlite3_stmt *st = r->st[ST_TELE_MINERS];
	struct state t;
	long long next;
	bool null;
	int rc, n = 0;

	if (state_get(r, "telemetry", &t) < 0)
		return -1;
	/* Skip hours without any telemetry (and find the first one). */
	if (!t.cursor[0]) {
		sqlite3_bind_int64(r->st[ST_TELE_NEXT], 1, t.done_ms);
		if (one_int(r, ST_TELE_NEXT, &next, &null) < 0)
			return -1;
		if (null)
			return 0;
		/* Never past the hour now (a sample from a clock ahead). */
		next = min_ll(floor_to(next, HOUR_MS),
			      floor_to(now - APID_ROLLUP_TELEMETRY_LATE_MS, HOUR_MS));
		if (next > t.done_ms)
			t.done_ms = next;
	}
	if (t.done_ms + HOUR_MS + APID_ROLLUP_TELEMETRY_LATE_MS > now)
		return t.cursor[0] ? 0 : state_set(r, "telemetry", &t);
	sqlite3_bind_text(st, 1, t.cursor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, TELE_MINERS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);

		n++;
		snprintf(t.cursor, sizeof(t.cursor), "%s", mac ? mac : "");
		if (summarise(r, t.cursor, sqlite3_column_int64(st, 1), t.done_ms) < 0) {
			done(r, ST_TELE_MINERS);
			return -1;
		}
	}
	done(r, ST_TELE_MINERS);
	if (rc != SQLITE_DONE)
		return apid_apply_failed(st, rc);
	if (n < TELE_MINERS) {      /* every miner done: the next hour */
		t.done_ms += HOUR_MS;
		t.cursor[0] = '\0';
	}
	*more = t.cursor[0] || t.done_ms + HOUR_MS + APID_ROLLUP_TELEMETRY_LATE_MS <= now;
	return state_set(r, "telemetry", &t);
}

/* ------------------------------------------------------------ API */

int apid_rollup_step(struct apid_rollup *r, int64_t now)
{
	bool m1 = false, m2 = false, m3 = false;
	int rc;

	if ((rc = apid_apply_step(r->st[ST_BEGIN])) != SQLITE_DONE)
		return apid_apply_failed(r->st[ST_BEGIN], rc);
	if (fold_statuses(r, now, &m1) < 0 || fleet(r, &m2) < 0 || telemetry(r, now, &m3) < 0) {
		if (!sqlite3_get_autocommit(r->db))
			apid_apply_step(r->st[ST_ROLLBACK]);
		return -1;
	}
	if ((rc = apid_apply_step(r->st[ST_COMMIT])) != SQLITE_DONE) {
		apid_apply_failed(r->st[ST_COMMIT], rc);
		if (!sqlite3_get_autocommit(r->db))
			apid_apply_step(r->st[ST_ROLLBACK]);
		return -1;
	}
	return m1 || m2 || m3;
}

struct apid_rollup *apid_rollup_new(sqlite3 *db, char *err, size_t errlen)
{
	struct apid_rollup *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "rollup: out of memory");
		return NULL;
	}
	r->db = db;
	if (apid_apply_prepare(db, stmt_sql, r->st, ST_COUNT, "rollup", err, errlen) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

void apid_rollup_free(struct apid_rollup *r)
{
	if (!r)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(r->st[i]);
	free(r->chips);
	free(r);
}

void apid_rollup_counts(struct apid_rollup *r, struct apid_rollup_counts *out)
{
	*out = r->counts;
}
