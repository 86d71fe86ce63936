/* api_power — /api/power: the balancer's state and settings (power.h
 * answers from memory), its history, decisions and readings (read from
 * the database). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "core.h"
#include "hive/clock.h"
#include "power.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX     1000
#define ID_MAX       9007199254740991LL   /* 2^53 - 1: every id below it */
#define HISTORY_POINTS_MAX 5000

static json_t *last_decision(struct api_req *r)
{
	sqlite3_stmt *st = api_stmt(r, "SELECT id, ts_ms, kind, summary FROM power_decisions "
				       "ORDER BY id DESC LIMIT 1");
	json_t *o = json_null();

	if (st && sqlite3_step(st) == SQLITE_ROW) {
		json_decref(o);
		o = json_object();
		api_set_cols(o, st, 0, (const char *const[]){ "id", "ts", "kind", "summary", NULL });
	}
	if (st)
		sqlite3_reset(st);
	return o;
}

int api_power_get(struct api_req *r)
{
	json_t *o;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (!(o = apid_power_status(r->apid->power)))
		return api_error(r, 500, "power state unavailable");
	json_object_set_new(o, "last_decision", last_decision(r));
	return api_json(r, 200, o);
}

int api_power_patch(struct api_req *r)
{
	json_t *body = api_body_object(r), *o;
	int status = 500;
	char err[300];

	if (!body)
		return r->status;
	if (apid_power_patch(r->apid->power, body, r->actor, &status, err, sizeof(err)) < 0) {
		json_decref(body);
		return api_error(r, status, "%s", err);
	}
	json_decref(body);
	if (!(o = apid_power_status(r->apid->power)))
		return api_error(r, 500, "power state unavailable");
	return api_json(r, 200, o);
}

int api_power_plan(struct api_req *r)
{
	json_t *o;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (!(o = apid_power_plan(r->apid->power)))
		return api_error(r, 500, "power plan unavailable");
	return api_json(r, 200, o);
}

/* Averages per step over [from, to): one point per step that has samples. */
#define HISTORY_SQL \
	"SELECT (ts_ms / ?3) * ?3 AS ts, CAST(AVG(generation_w) AS INTEGER) AS generation_w," \
	" CAST(AVG(available_w) AS INTEGER) AS available_w," \
	" CAST(AVG(target_w) AS INTEGER) AS target_w," \
	" CAST(AVG(estimate_w) AS INTEGER) AS estimate_w," \
	" CAST(AVG(measured_w) AS INTEGER) AS measured_w" \
	" FROM power_samples WHERE ts_ms >= ?1 AND ts_ms < ?2 GROUP BY ts_ms / ?3 ORDER BY 1"

int api_power_history(struct api_req *r)
{
	static const char *const allowed[] = { "from", "to", "step", "format", NULL };
	static const char *const names[] = { "ts", "generation_w", "available_w", "target_w",
					     "estimate_w", "measured_w", NULL };
	long long now = hive_wall_ms(), from, to, step;
	sqlite3_stmt *st;
	json_t *series, *o;
	int rc, csv;

	if (api_params_allow(r, allowed) < 0 || (csv = api_want_csv(r)) < 0 ||
	    api_param_int(r, "to", 0, ID_MAX, now, &to) < 0 ||
	    api_param_int(r, "from", 0, ID_MAX, to - 3600 * 1000LL, &from) < 0 ||
	    api_param_int(r, "step", 1, 86400, 15, &step) < 0)
		return r->status;
	if (from >= to)
		return api_error(r, 400, "from: must be before to");
	if ((to - from) / (step * 1000) > HISTORY_POINTS_MAX)
		return api_error(r, 400, "step: %lld s gives more than %d points from %lld to %lld",
				 step, HISTORY_POINTS_MAX, from, to);
	/* CSV: the same points, the time as UTC text. */
	st = api_stmt(r, csv ? "SELECT " API_CSV_TIME("ts") " AS ts_utc, generation_w,"
			       " available_w, target_w, estimate_w, measured_w"
			       " FROM (" HISTORY_SQL ") ORDER BY ts"
			     : HISTORY_SQL);
	if (!st)
		return r->status;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	sqlite3_bind_int64(st, 3, step * 1000);
	if (csv) {
		api_out_start(r);
		api_out_csv_header(r, st);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			api_out_csv_row(r, st);
		if (rc != SQLITE_DONE)
			return api_db_fail(r, st);
		return api_out_send_csv(r, 200, "power-history");
	}
	series = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *pt = json_object();

		api_set_cols(pt, st, 0, names);
		json_array_append_new(series, pt);
	}
	if (rc != SQLITE_DONE) {
		json_decref(series);
		return api_db_fail(r, st);
	}
	sqlite3_reset(st);
	o = json_pack("{s:I,s:I,s:I,s:o}", "from", (json_int_t)from, "to", (json_int_t)to, "step",
		      (json_int_t)step, "series", series);
	return api_json(r, 200, o);
}

/* A page of rows, newest first: {"<key>":[...],"next_before":id|null}.
 * ?limit, ?before, and ?<flag>=true|false binds ?3 (-1: either). */
static int page(struct api_req *r, const char *sql, const char *key, const char *flag,
		void (*row)(json_t *o, sqlite3_stmt *st))
{
	const char *const allowed[] = { "limit", "before", flag, NULL };
	long long limit, before, last = 0;
	sqlite3_stmt *st;
	json_t *rows, *o;
	int rc, n = 0, f = -1;

	if (api_params_allow(r, allowed) < 0 ||
	    api_param_int(r, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit) < 0 ||
	    api_param_int(r, "before", 1, ID_MAX, ID_MAX, &before) < 0 ||
	    (flag && api_param_bool(r, flag, &f) < 0))
		return r->status;
	if (!(st = api_stmt(r, sql)))
		return r->status;
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int64(st, 2, limit);
	if (flag)
		sqlite3_bind_int(st, 3, f);
	rows = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *x = json_object();

		row(x, st);
		last = sqlite3_column_int64(st, 0);
		json_array_append_new(rows, x);
		n++;
	}
	if (rc != SQLITE_DONE) {
		json_decref(rows);
		return api_db_fail(r, st);
	}
	sqlite3_reset(st);
	o = json_pack("{s:o,s:o}", key, rows, "next_before",
		      n == limit && last > 1 ? json_integer(last) : json_null());
	return api_json(r, 200, o);
}

static void decision_row(json_t *o, sqlite3_stmt *st)
{
	static const char *const names[] = { "id", "ts", "mode", "state", "kind", NULL };
	static const char *const watts[] = { "available_w", "target_w", "estimate_w",
					     "measured_w", "summary", NULL };
	json_t *ch;

	api_set_cols(o, st, 0, names);
	api_set(o, "dry_run", api_col_bool(st, 5));
	api_set_cols(o, st, 6, watts);
	ch = api_col_json(st, 11);
	api_set(o, "changes", json_is_array(ch) ? ch : (json_decref(ch), json_array()));
}

int api_power_decisions(struct api_req *r)
{
	return page(r, "SELECT id, ts_ms, mode, state, kind, dry_run, available_w, target_w, "
		       "estimate_w, measured_w, summary, changes FROM power_decisions "
		       "WHERE id < ?1 ORDER BY id DESC LIMIT ?2", "decisions", NULL, decision_row);
}

static void reading_row(json_t *o, sqlite3_stmt *st)
{
	static const char *const a[] = { "id", "ts", "source", NULL };
	static const char *const b[] = { "reason", "generation_w", "measured_w", "exported_w",
					 "confidence", "reading_id", "collected_ms", "latency_ms",
					 "error", NULL };

	api_set_cols(o, st, 0, a);
	api_set(o, "accepted", api_col_bool(st, 3));
	api_set_cols(o, st, 4, b);
}

int api_power_readings(struct api_req *r)
{
	return page(r, "SELECT id, ts_ms, source, accepted, reason, generation_w, measured_w, "
		       "exported_w, confidence, reading_id, collected_ms, latency_ms, error "
		       "FROM power_readings WHERE id < ?1 AND (?3 < 0 OR accepted = ?3) "
		       "ORDER BY id DESC LIMIT ?2", "readings", "accepted", reading_row);
}
