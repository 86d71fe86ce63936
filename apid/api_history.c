/* api_history — the long history over time ranges: a miner's statuses
 * (/api/miners/{id}/history), its chips by the hour
 * (/api/miners/{id}/telemetry/hours) and the fleet's totals
 * (/api/fleet/history).
 *
 * A range is read from three tiers (rollup.h): hourly roll-ups before M,
 * per-minute roll-ups from M to F, raw statuses from F on. M and F are
 * chosen per request from where each tier is whole (the rollups table), in
 * the same read transaction as the rows, so each status is counted once:
 * no gap, no double count at a boundary. Points sum counts and sums and
 * take maxima over whatever rows fall in their step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "chips.h"
#include "hive/clock.h"

#define MINUTE_MS   60000LL
#define HOUR_MS     3600000LL
#define DAY_MS      86400000LL
#define TIME_MAX    9007199254740991LL   /* 2^53 - 1 */
#define POINTS_MAX  5000
#define STEP_MAX    (7 * 86400)
#define CHIP_HOURS_MAX (31 * 24)

static long long floor_to(long long t, long long unit)
{
	return t / unit * unit;
}

static long long ceil_to(long long t, long long unit)
{
	return (t + unit - 1) / unit * unit;
}

static long long min_ll(long long a, long long b)
{
	return a < b ? a : b;
}

/* ?from, ?to and ?step (seconds), checked: a step below a minute reads
 * raw rows only where they are kept; a longer one must fit the roll-ups
 * (whole minutes under an hour, whole hours above). min_step: the finest
 * the data has. 0, or -1 after a 400. */
static int range_params(struct api_req *r, long long min_step, long long def_step,
			long long *from, long long *to, long long *step)
{
	long long now = hive_wall_ms();

	if (api_param_int(r, "to", 1, TIME_MAX, now, to) < 0 ||
	    api_param_int(r, "from", 0, TIME_MAX, *to - DAY_MS, from) < 0 ||
	    api_param_int(r, "step", 1, STEP_MAX, def_step, step) < 0)
		return -1;
	if (*from >= *to) {
		api_error(r, 400, "from: must be before to (from=%lld, to=%lld)", *from, *to);
		return -1;
	}
	if (*step < min_step) {
		api_error(r, 400, "step: must be at least %lld s here, got %lld", min_step, *step);
		return -1;
	}
	if ((*step >= 60 && *step < 3600 && *step % 60) || (*step >= 3600 && *step % 3600)) {
		api_error(r, 400, "step: %lld s does not fit the roll-ups: use whole minutes"
			  " (60, 120 ... 3540) under an hour, whole hours (3600, 7200 ...) above",
			  *step);
		return -1;
	}
	if ((*to - *from) / (*step * 1000) >= POINTS_MAX) {
		api_error(r, 400, "step: %lld s gives more than %d points from %lld to %lld;"
			  " take a longer step or a shorter range", *step, POINTS_MAX, *from, *to);
		return -1;
	}
	return 0;
}

/* Reads one row of integers (NULL as 0) from sql into v[0..n). 0 / -1
 * after an answer. */
static int read_ints(struct api_req *r, const char *sql, const char *text, long long *v,
		     int n)
{
	sqlite3_stmt *st = api_stmt(r, sql);
	int rc;

	if (!st)
		return -1;
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	for (int i = 0; i < n; i++)
		v[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		api_db_fail(r, st);
		return -1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : 1;
}

/* The tiers' boundaries for a step: hours before *m, minutes from *m to
 * *fine, raw (or nothing, for the fleet) from *fine on.
 *   folded: every status before it is in the roll-ups (rollups 'statuses')
 *   raw:    raw rows are whole from it on ('raw')
 *   kept:   minute rows are whole from it on ('minutes', 'fleet_minutes') */
static void tiers(long long step, long long folded, long long raw, long long kept,
		  long long *m, long long *fine)
{
	*fine = step < 60 ? min_ll(ceil_to(raw, MINUTE_MS), folded) : folded;
	if (step >= 3600)
		*m = floor_to(*fine, HOUR_MS);
	else
		*m = min_ll(ceil_to(kept, HOUR_MS), floor_to(*fine, HOUR_MS));
}

static int begin(struct api_req *r)
{
	sqlite3_stmt *st = api_stmt(r, "BEGIN");
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		api_db_fail(r, st);
		return -1;
	}
	return 0;
}

static void end(struct api_req *r)
{
	sqlite3_stmt *st = api_stmt(r, "COMMIT");

	if (st) {
		sqlite3_step(st);
		sqlite3_reset(st);
	}
}

/* ------------------------------------------------------------ a miner */

#define ROLLUP_COLS \
	"ts_ms / ?4 * ?4, n, mining, hr_n, hr_sum, hr_avg_n, hr_avg_sum, hr_nominal," \
	" power_n, power_sum, metered, chip_temp_max, pcb_temp_max"

/* ?1 miner number, ?2 from, ?3 to, ?4 step (ms), ?5 M, ?6 F, ?7 mac. */
static const char miner_sql[] =
	"WITH parts(t, n, mining, hr_n, hr_sum, hr_avg_n, hr_avg_sum, hr_nominal, power_n,"
	" power_sum, metered, chip_temp_max, pcb_temp_max) AS ("
	" SELECT " ROLLUP_COLS " FROM status_hours"
	"  WHERE miner = ?1 AND ts_ms >= ?2 AND ts_ms < min(?3, ?5)"
	" UNION ALL SELECT " ROLLUP_COLS " FROM status_minutes"
	"  WHERE miner = ?1 AND ts_ms >= max(?2, ?5) AND ts_ms < min(?3, ?6)"
	" UNION ALL SELECT ts_ms / ?4 * ?4, 1, coalesce(state = 'mining', 0),"
	"  hr_realtime_ghs IS NOT NULL, coalesce(hr_realtime_ghs, 0),"
	"  hr_average_ghs IS NOT NULL, coalesce(hr_average_ghs, 0), hr_nominal_ghs,"
	"  power_w IS NOT NULL, coalesce(power_w, 0), coalesce(power_metered = 1, 0),"
	"  chip_temp_max, pcb_temp_max FROM statuses"
	"  WHERE mac = ?7 AND ts_ms >= max(?2, ?6) AND ts_ms < ?3)"
	" SELECT t, sum(n), sum(mining), sum(hr_sum) / nullif(sum(hr_n), 0),"
	" sum(hr_avg_sum) / nullif(sum(hr_avg_n), 0), max(hr_nominal),"
	" sum(power_sum) * 1.0 / nullif(sum(power_n), 0),"
	" CASE WHEN sum(power_n) > 0 THEN sum(metered) >= sum(power_n) END,"
	" max(chip_temp_max), max(pcb_temp_max)"
	" FROM parts GROUP BY t ORDER BY t";

int api_miner_history(struct api_req *r, const char *mac)
{
	static const char *const allowed[] = { "from", "to", "step", NULL };
	static const char *const names[] = { "ts", "statuses", "mining", "hr_realtime_ghs",
					     "hr_average_ghs", "hr_nominal_ghs", "power_w", NULL };
	long long from, to, step, num, b[3], m, fine;
	sqlite3_stmt *st;
	bool first = true;
	char head[256];
	int rc, n;

	if (api_params_allow(r, allowed) < 0 ||
	    range_params(r, 1, 60, &from, &to, &step) < 0)
		return r->status;
	if (begin(r) < 0)
		return r->status;
	rc = read_ints(r, "SELECT num FROM miners WHERE mac = ?1", mac, &num, 1);
	if (rc < 0)
		goto out;
	if (rc > 0) {
		api_error(r, 404, "no miner %s", mac);
		goto out;
	}
	if (read_ints(r, "SELECT (SELECT done_ms FROM rollups WHERE name = 'statuses'),"
		      " (SELECT done_ms FROM rollups WHERE name = 'raw'),"
		      " (SELECT done_ms FROM rollups WHERE name = 'minutes')", NULL, b, 3) < 0)
		goto out;
	tiers(step, b[0], b[1], b[2], &m, &fine);
	if (!(st = api_stmt(r, miner_sql)))
		goto out;
	sqlite3_bind_int64(st, 1, num);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int64(st, 4, step * 1000);
	sqlite3_bind_int64(st, 5, m);
	sqlite3_bind_int64(st, 6, fine);
	sqlite3_bind_text(st, 7, mac, -1, SQLITE_STATIC);
	api_out_start(r);
	n = snprintf(head, sizeof(head),
		     "{\"id\":\"%s\",\"from\":%lld,\"to\":%lld,\"step\":%lld,"
		     "\"hours_before\":%lld,\"raw_from\":%lld,\"points\":[",
		     mac, from, to, step, m, fine);
	api_out_raw(r, head, (size_t)n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *p = json_object();

		api_set_cols(p, st, 0, names);
		api_set(p, "power_metered", api_col_bool(st, 7));
		api_set(p, "chip_temp_max", api_col(st, 8));
		api_set(p, "pcb_temp_max", api_col(st, 9));
		if (!first)
			api_out_raw(r, ",", 1);
		first = false;
		api_out_json(r, p);
	}
	if (rc != SQLITE_DONE) {
		api_db_fail(r, st);
		goto out;
	}
	sqlite3_reset(st);
	api_out_raw(r, "]}", 2);
	end(r);
	return api_out_send(r, 200);
out:
	end(r);
	return r->status;
}

/* ------------------------------------------------------------ its chips */

int api_miner_chip_hours(struct api_req *r, const char *mac)
{
	static const char *const allowed[] = { "from", "to", NULL };
	static const char *const cols[] = { "chain", "samples", "state", "hr_realtime_ghs",
					    "hr_nominal_ghs", "freq", "n_chips", NULL };
	long long now = hive_wall_ms(), from, to, num, ts = 0;
	sqlite3_stmt *st;
	bool any = false;
	int rc;

	if (api_params_allow(r, allowed) < 0 ||
	    api_param_int(r, "to", 1, TIME_MAX, now, &to) < 0 ||
	    api_param_int(r, "from", 0, TIME_MAX, to - DAY_MS, &from) < 0)
		return r->status;
	if (from >= to)
		return api_error(r, 400, "from: must be before to (from=%lld, to=%lld)", from, to);
	if (to - from > CHIP_HOURS_MAX * HOUR_MS)
		return api_error(r, 400, "from: at most %d days of chip hours at once",
				 CHIP_HOURS_MAX / 24);
	rc = read_ints(r, "SELECT num FROM miners WHERE mac = ?1", mac, &num, 1);
	if (rc < 0)
		return r->status;
	if (rc > 0)
		return api_error(r, 404, "no miner %s", mac);
	if (!(st = api_stmt(r, "SELECT ts_ms, chain, samples, state, hr_realtime_ghs,"
			    " hr_nominal_ghs, freq, n_chips, chips FROM telemetry_hours"
			    " WHERE miner = ?1 AND ts_ms >= ?2 AND ts_ms < ?3"
			    " ORDER BY ts_ms, chain")))
		return r->status;
	sqlite3_bind_int64(st, 1, num);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	api_out_start(r);
	{
		char head[128];
		int n = snprintf(head, sizeof(head), "{\"id\":\"%s\",\"from\":%lld,\"to\":%lld,"
				 "\"hours\":[", mac, from, to);
		api_out_raw(r, head, (size_t)n);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long t = sqlite3_column_int64(st, 0);
		json_t *c = json_object();
		long long samples = 0;

		if (!any || t != ts) {
			char head[64];
			int n = snprintf(head, sizeof(head), "%s{\"ts\":%lld,\"chains\":[",
					 any ? "]}," : "", t);
			api_out_raw(r, head, (size_t)n);
			any = true;
			ts = t;
		} else {
			api_out_raw(r, ",", 1);
		}
		api_set_cols(c, st, 1, cols);
		api_set(c, "chips", apid_chips_summary_json(sqlite3_column_blob(st, 8),
						       (size_t)sqlite3_column_bytes(st, 8), &samples));
		api_out_json(r, c);
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	api_out_raw(r, any ? "]}]}" : "]}", any ? 4 : 2);
	return api_out_send(r, 200);
}

/* ------------------------------------------------------------ the fleet */

/* ?1 from, ?2 to, ?4 M, ?5 F: hours before M, minutes from M to F (the
 * fleet has no raw tier: F is the minute being totalled). Both tiers come
 * in time order (their primary keys), merged without a sort; the points
 * are summed here, not by a GROUP BY (a 30-day chart by the quarter hour
 * reads ~50,000 rows: a temporary b-tree took ~100 ms). */
static const char fleet_sql[] =
	"SELECT ts_ms, model, minutes, online, mining, hashrate_ghs, power_w"
	" FROM fleet_hours WHERE ts_ms >= ?1 AND ts_ms < min(?2, ?4)"
	" UNION ALL SELECT ts_ms, model, minutes, online, mining, hashrate_ghs, power_w"
	" FROM fleet_minutes WHERE ts_ms >= max(?1, ?4) AND ts_ms < min(?2, ?5)"
	" ORDER BY 1";

#define FLEET_MODELS 32     /* models per point; more are left out */

struct fleet_sums {
	char model[API_ALIAS_MAX + 1];  /* "" for the whole fleet */
	double minutes, online, mining, hashrate, power;
};

struct fleet_point {
	long long ts;
	int n;                   /* sums[0] is the whole fleet */
	struct fleet_sums sums[FLEET_MODELS + 1];
};

static void fleet_add(struct fleet_point *p, sqlite3_stmt *st)
{
	const char *model = (const char *)sqlite3_column_text(st, 1);
	struct fleet_sums *s = NULL;

	if (!model)
		return;
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->sums[i].model, model) == 0)
			s = &p->sums[i];
	if (!s && !*model)
		s = &p->sums[0];
	if (!s) {
		if (p->n > FLEET_MODELS)
			return;
		s = &p->sums[p->n++];
		snprintf(s->model, sizeof(s->model), "%s", model);
	}
	s->minutes += sqlite3_column_double(st, 2);
	s->online += sqlite3_column_double(st, 3);
	s->mining += sqlite3_column_double(st, 4);
	s->hashrate += sqlite3_column_double(st, 5);
	s->power += sqlite3_column_double(st, 6);
}

/* A point's figures: the sums over its minutes / how many minutes had any
 * status (the whole fleet's minutes). Counts to 0.01, watts and GH/s to
 * 0.1. Written as text: a point has a few models, a chart thousands of
 * points. */
static int fleet_figures(char *out, size_t len, const struct fleet_sums *s, double minutes)
{
	double k = minutes > 0 ? minutes : 1;

	return snprintf(out, len, "\"online\":%.2f,\"mining\":%.2f,\"hashrate_ghs\":%.1f,"
			"\"power_w\":%.1f", s->online / k, s->mining / k, s->hashrate / k,
			s->power / k);
}

static void fleet_emit(struct api_req *r, const struct fleet_point *p, bool first)
{
	const struct fleet_sums *all = &p->sums[0];
	char buf[512];
	int n;

	if (all->minutes <= 0)
		return;            /* no status in it at all */
	n = snprintf(buf, sizeof(buf), "%s{\"ts\":%lld,\"minutes\":%.0f,", first ? "" : ",",
		     p->ts, all->minutes);
	n += fleet_figures(buf + n, sizeof(buf) - (size_t)n, all, all->minutes);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",\"models\":{");
	api_out_raw(r, buf, (size_t)n);
	for (int i = 1; i < p->n; i++) {
		json_t *name = json_string(p->sums[i].model);
		char *q = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;

		json_decref(name);
		if (!q)
			continue;
		n = snprintf(buf, sizeof(buf), "%s%s:{", i > 1 ? "," : "", q);
		free(q);
		n += fleet_figures(buf + n, sizeof(buf) - (size_t)n, &p->sums[i], all->minutes);
		buf[n++] = '}';
		api_out_raw(r, buf, (size_t)n);
	}
	api_out_raw(r, "}}", 2);
}

/* The same point as CSV rows: the whole fleet (model "all"), then each
 * model, with the figures of fleet_figures. */
static void fleet_emit_csv(struct api_req *r, const struct fleet_point *p)
{
	const struct fleet_sums *all = &p->sums[0];
	double k = all->minutes > 0 ? all->minutes : 1;
	char stamp[32], buf[192];
	time_t secs = (time_t)(p->ts / 1000);
	struct tm tm;

	if (all->minutes <= 0)
		return;
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	for (int i = 0; i < p->n; i++) {
		const struct fleet_sums *s = &p->sums[i];
		int n;

		api_out_raw(r, stamp, strlen(stamp));
		api_out_csv_text(r, i ? s->model : "all", false);
		n = snprintf(buf, sizeof(buf), ",%.0f,%.2f,%.2f,%.1f,%.1f\r\n", all->minutes,
			     s->online / k, s->mining / k, s->hashrate / k, s->power / k);
		api_out_raw(r, buf, (size_t)n);
	}
}

int api_fleet_history(struct api_req *r)
{
	static const char *const allowed[] = { "from", "to", "step", "format", NULL };
	long long from, to, step, b[2], m, fine;
	struct fleet_point *p = NULL;
	bool first = true;
	sqlite3_stmt *st;
	char head[192];
	int rc, n, csv;

	if (api_params_allow(r, allowed) < 0 || (csv = api_want_csv(r)) < 0 ||
	    range_params(r, 60, 300, &from, &to, &step) < 0)
		return r->status;
	if (!(p = calloc(1, sizeof(*p))))
		return api_error(r, 500, "out of memory");
	if (begin(r) < 0)
		goto out;
	if (read_ints(r, "SELECT (SELECT done_ms FROM rollups WHERE name = 'fleet'),"
		      " (SELECT done_ms FROM rollups WHERE name = 'fleet_minutes')", NULL, b,
		      2) < 0)
		goto out;
	tiers(step, b[0], 0, b[1], &m, &fine);
	if (!(st = api_stmt(r, fleet_sql)))
		goto out;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	sqlite3_bind_int64(st, 4, m);
	sqlite3_bind_int64(st, 5, fine);
	api_out_start(r);
	if (csv)
		n = snprintf(head, sizeof(head), "ts_utc,model,minutes,online,mining,"
			     "hashrate_ghs,power_w\r\n");
	else
		n = snprintf(head, sizeof(head), "{\"from\":%lld,\"to\":%lld,\"step\":%lld,"
			     "\"hours_before\":%lld,\"until\":%lld,\"points\":[", from, to,
			     step, m, fine);
	api_out_raw(r, head, (size_t)n);
	p->n = 1;
	p->ts = -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long t = floor_to(sqlite3_column_int64(st, 0), step * 1000);

		if (t != p->ts) {
			if (p->ts >= 0 && p->sums[0].minutes > 0) {
				if (csv)
					fleet_emit_csv(r, p);
				else
					fleet_emit(r, p, first);
				first = false;
			}
			memset(p, 0, sizeof(*p));
			p->n = 1;
			p->ts = t;
		}
		fleet_add(p, st);
	}
	if (rc != SQLITE_DONE) {
		api_db_fail(r, st);
		goto out;
	}
	sqlite3_reset(st);
	if (p->ts >= 0 && csv)
		fleet_emit_csv(r, p);
	else if (p->ts >= 0)
		fleet_emit(r, p, first);
	if (!csv)
		api_out_raw(r, "]}", 2);
	end(r);
	free(p);
	return csv ? api_out_send_csv(r, 200, "fleet-history") : api_out_send(r, 200);
out:
	end(r);
	free(p);
	return r->status;
}
