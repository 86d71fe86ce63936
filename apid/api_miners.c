/* api_miners — /api/miners: the fleet list (paged, filtered, sorted), one
 * miner in detail, the managed flag and unlock password, status history and
 * chip telemetry. The latest status comes through miners.last_status_id,
 * never from a scan of the history. Secrets never leave: the answers say
 * has_api_key / has_unlock_pass. */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "answers.h"
#include "api.h"
#include "apid.h"
#include "chips.h"
#include "hive/log.h"
#include "hive/mac.h"
#include "hive/clock.h"
#include "apply.h"
#include "core.h"
#include "writer.h"

#define LIST_LIMIT_DEFAULT 1000
#define LIST_LIMIT_MAX     10000
#define OFFSET_MAX         1000000000LL
#define HISTORY_DEFAULT    100
#define HISTORY_MAX        1000
#define HISTORY_CSV_MAX    100000   /* ~150 bytes a row: 15 MB at most */
#define TELEMETRY_DEFAULT  10
#define TELEMETRY_MAX      1000
#define RECENT_ERRORS      "20"
#define UNLOCK_PASS_MAX    128
#define Q_MAX              64
#define BEFORE_MAX         100000000000000000LL   /* ms: far beyond any date */
#define STATE_MAX          32

/* The miner and its latest status; the column numbers below follow it. */
#define MINER_COLS \
	"m.mac, m.ip, m.last_ip, m.subnet, m.model, m.miner_name, m.fw_name, m.fw_version," \
	" m.hostname, coalesce(m.api_key, '') <> '', coalesce(m.unlock_pass, '') <> ''," \
	" m.managed, m.online, m.first_seen_ms, m.last_seen_ms, m.last_error," \
	" m.last_error_kind, m.last_error_op, m.last_error_ms, m.last_telemetry_ms," \
	" m.telemetry_source, s.id, s.ts_ms, s.state, s.state_time, s.preset," \
	" s.hr_realtime_ghs, s.hr_average_ghs, s.hr_nominal_ghs, s.chip_temp_max," \
	" s.pcb_temp_max, s.power_w, s.power_metered, s.fan_duty, s.fans, s.hw_errors," \
	" m.conflict, m.conflict_ms, s.state_description, m.pinned, m.power_excluded," \
	" m.power_excluded_ms," \
	" (SELECT count(*) FROM alerts al WHERE al.mac = m.mac AND al.state = 'firing')"
#define MINER_FROM " FROM miners m LEFT JOIN statuses s ON s.id = m.last_status_id"
enum { C_STATUS = 21, C_CONFLICT = 36, C_POWER = 39, C_ALERTS = 42, C_NCOLS = 43 };

/* Status rows of the history share the status part's order. */
#define STATUS_COLS \
	"id, ts_ms, state, state_time, preset, hr_realtime_ghs, hr_average_ghs," \
	" hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w, power_metered, fan_duty," \
	" fans, hw_errors, chains, pools"

/* The list as CSV (api.h): the JSON's fields flattened, under their JSON
 * names; a time is text in UTC, so its name ends in _utc; fans is the
 * JSON array of rpm. Over MINER_FROM, so the list's filters and sort keys
 * apply as they are. */
#define MINER_CSV_COLS \
	"m.mac AS id, CASE WHEN m.online THEN m.ip END AS ip," \
	" coalesce(m.last_ip, m.ip) AS last_ip, m.subnet AS subnet, m.model AS model," \
	" m.miner_name AS miner_name, m.fw_name AS fw_name, m.fw_version AS fw_version," \
	" m.hostname AS hostname, " API_CSV_BOOL("m.online") " AS online, " \
	API_CSV_BOOL("m.managed") " AS managed, " API_CSV_BOOL("m.pinned") " AS pinned, " \
	API_CSV_BOOL("coalesce(m.api_key, '') <> ''") " AS has_api_key, " \
	API_CSV_BOOL("coalesce(m.unlock_pass, '') <> ''") " AS has_unlock_pass, " \
	API_CSV_TIME("m.first_seen_ms") " AS first_seen_utc, " \
	API_CSV_TIME("m.last_seen_ms") " AS last_seen_utc, " \
	API_CSV_TIME("s.ts_ms") " AS status_utc, s.state AS state," \
	" s.state_description AS state_description, s.state_time AS state_time," \
	" s.preset AS preset, " STATUS_CSV_FIGURES ", " \
	API_CSV_TIME("m.last_error_ms") " AS last_error_utc, m.last_error_op AS last_error_op," \
	" m.last_error_kind AS last_error_kind, m.last_error AS last_error," \
	" m.conflict AS conflict, " API_CSV_TIME("m.conflict_ms") " AS conflict_since_utc," \
	" m.power_excluded AS power_excluded, " \
	API_CSV_TIME("m.power_excluded_ms") " AS power_excluded_since_utc"
/* A status's figures, in the CSV of the list and of the history. */
#define STATUS_CSV_FIGURES \
	"s.hr_realtime_ghs AS hr_realtime_ghs, s.hr_average_ghs AS hr_average_ghs," \
	" s.hr_nominal_ghs AS hr_nominal_ghs, s.power_w AS power_w, " \
	API_CSV_BOOL("s.power_metered") " AS power_metered, s.chip_temp_max AS chip_temp_max," \
	" s.pcb_temp_max AS pcb_temp_max, s.fan_duty AS fan_duty, s.fans AS fans," \
	" s.hw_errors AS hw_errors"

/* The answers' miners and statuses are written as text straight into the
 * answer (api.h), by one writer per object that the list, the detail
 * (GET /api/miners/{id}) and the status history all use: the field list
 * exists once, so the list and the detail cannot drift apart, and the
 * detail only adds members (chains and pools in the status; model_name,
 * max_preset and errors at the end). A jansson tree per row was ~40% of a
 * 10,000-miner list's time; the text is the same bytes the tree gave. */

/* A status: 15 columns from id on, in STATUS_COLS's (and MINER_COLS's)
 * order. */
static const struct api_col_field status_fields[] = {
	{ "id", API_COL },
	{ "ts", API_COL },
	{ "state", API_COL },
	{ "state_time", API_COL },
	{ "preset", API_COL },
	{ "hr_realtime_ghs", API_COL },
	{ "hr_average_ghs", API_COL },
	{ "hr_nominal_ghs", API_COL },
	{ "chip_temp_max", API_COL },
	{ "pcb_temp_max", API_COL },
	{ "power_w", API_COL },
	{ "power_metered", API_COL_BOOL },
	{ "fan_duty", API_COL },
	{ "fans", API_COL_JSON },
	{ "hw_errors", API_COL },
	{ NULL, API_COL },
};

/* What a status has beyond its 15 columns: column numbers, -1 for none. */
struct status_more {
	int description;         /* state_description: the list and the detail */
	int chains, pools;       /* the detail, the history unless ?brief */
};

static void status_write(struct api_req *r, sqlite3_stmt *st, int c,
			 const struct status_more *x)
{
	api_out_raw(r, "{", 1);
	api_out_fields(r, st, c, status_fields);
	if (x->description >= 0) {
		api_out_key(r, "state_description");
		api_out_col(r, st, x->description);
	}
	if (x->chains >= 0) {
		api_out_key(r, "chains");
		api_out_col_json(r, st, x->chains);
	}
	if (x->pools >= 0) {
		api_out_key(r, "pools");
		api_out_col_json(r, st, x->pools);
	}
	api_out_raw(r, "}", 1);
}

/* key: an object of fields from column first on, or null when absent. */
static void object_write(struct api_req *r, sqlite3_stmt *st, const char *key, bool present,
			 int first, const struct api_col_field fields[])
{
	api_out_key(r, key);
	if (!present) {
		api_out_null(r);
		return;
	}
	api_out_raw(r, "{", 1);
	api_out_fields(r, st, first, fields);
	api_out_raw(r, "}", 1);
}

/* The members of a miner of MINER_COLS, without its braces (the detail
 * adds errors before it closes it). detail: the row goes on with s.chains,
 * s.pools, mo.name, mo.max_preset at C_NCOLS. */
static void miner_members(struct api_req *r, sqlite3_stmt *st, bool detail)
{
	static const struct api_col_field names[] = {   /* columns 3 to 11 */
		{ "subnet", API_COL }, { "model", API_COL }, { "miner_name", API_COL },
		{ "fw_name", API_COL }, { "fw_version", API_COL }, { "hostname", API_COL },
		{ "has_api_key", API_COL_BOOL }, { "has_unlock_pass", API_COL_BOOL },
		{ "managed", API_COL_BOOL }, { NULL, API_COL },
	};
	static const struct api_col_field seen[] = {    /* 13, 14 */
		{ "first_seen", API_COL }, { "last_seen", API_COL }, { NULL, API_COL },
	};
	static const struct api_col_field last_error[] = {  /* 15 to 18 */
		{ "message", API_COL }, { "kind", API_COL }, { "op", API_COL }, { "ts", API_COL },
		{ NULL, API_COL },
	};
	static const struct api_col_field telemetry[] = { /* 19, 20 */
		{ "last_telemetry", API_COL }, { "telemetry_source", API_COL }, { NULL, API_COL },
	};
	static const struct api_col_field since[] = {   /* conflict, power_excluded */
		{ "reason", API_COL }, { "since", API_COL }, { NULL, API_COL },
	};
	static const struct api_col_field model[] = {   /* the detail's, C_NCOLS + 2 on */
		{ "model_name", API_COL }, { "max_preset", API_COL }, { NULL, API_COL },
	};
	struct status_more more = { C_CONFLICT + 2, detail ? C_NCOLS : -1,
				    detail ? C_NCOLS + 1 : -1 };
	bool online = sqlite3_column_int(st, 12) != 0;

	api_out_key(r, "id");
	api_out_col(r, st, 0);
	/* The address is only meaningful while the miner answers sweeps. */
	api_out_key(r, "ip");
	if (online)
		api_out_col(r, st, 1);
	else
		api_out_null(r);
	api_out_key(r, "last_ip");
	api_out_col(r, st, sqlite3_column_type(st, 2) != SQLITE_NULL ? 2 : 1);
	api_out_fields(r, st, 3, names);
	api_out_key(r, "online");
	api_out_bool(r, online);
	api_out_fields(r, st, 13, seen);
	object_write(r, st, "last_error", sqlite3_column_type(st, 15) != SQLITE_NULL ||
		     sqlite3_column_type(st, 18) != SQLITE_NULL, 15, last_error);
	api_out_fields(r, st, 19, telemetry);
	api_out_key(r, "status");
	if (sqlite3_column_type(st, C_STATUS) == SQLITE_NULL)
		api_out_null(r);
	else
		status_write(r, st, C_STATUS, &more);
	/* The firmware keeps moving its preset above the limit by itself. */
	object_write(r, st, "conflict", sqlite3_column_type(st, C_CONFLICT) != SQLITE_NULL,
		     C_CONFLICT, since);
	/* The balancer leaves it alone: pinned by an operator, or excluded
	 * after a change it did not make (power.c). */
	api_out_key(r, "pinned");
	api_out_col_bool(r, st, C_POWER);
	object_write(r, st, "power_excluded",
		     sqlite3_column_type(st, C_POWER + 1) != SQLITE_NULL, C_POWER + 1, since);
	/* Its alerts firing now (alerts.h). */
	api_out_key(r, "alerts_firing");
	api_out_col(r, st, C_ALERTS);
	if (detail)
		api_out_fields(r, st, C_NCOLS + 2, model);
}

/* ------------------------------------------------------------ the list */

static const struct {
	const char *name;
	const char *expr;
} sort_keys[] = {
	{ "mac", "m.mac" },
	{ "ip", "ip_order(coalesce(m.ip, m.last_ip))" },
	{ "model", "m.model" },
	{ "hostname", "m.hostname" },
	{ "state", "s.state" },
	{ "preset", "s.preset" },
	{ "hashrate", "s.hr_realtime_ghs" },
	{ "hr_average", "s.hr_average_ghs" },
	{ "power", "s.power_w" },
	{ "temp", "s.chip_temp_max" },
	{ "fan", "s.fan_duty" },
	{ "managed", "m.managed" },
	{ "online", "m.online" },
	{ "last_seen", "m.last_seen_ms" },
	{ "first_seen", "m.first_seen_ms" },
	{ "last_error", "m.last_error_ms" },
};

/* The filters: a WHERE clause whose parameters are numbered, so the
 * count's subquery and the page share them. */
struct filter_arg {
	const char *text;      /* NULL: bind num */
	int num;
};

struct list_query {
	char where[512];
	struct filter_arg args[8];
	int nargs;
	bool need_status;      /* a filter reads the status: the count joins it */
};

/* cond holds "?%d" (possibly repeated) for its one parameter. */
static void filter_add(struct list_query *lq, const char *cond, const char *text, int num)
{
	char c[256];
	size_t n = strlen(lq->where);
	int k = lq->nargs + 1;

	snprintf(c, sizeof(c), cond, k, k, k);
	snprintf(lq->where + n, sizeof(lq->where) - n, "%s%s", n ? " AND " : " WHERE ", c);
	lq->args[lq->nargs].text = text;
	lq->args[lq->nargs].num = num;
	lq->nargs++;
}

static int bind_filters(sqlite3_stmt *st, const struct list_query *lq)
{
	for (int k = 0; k < lq->nargs; k++) {
		int rc = lq->args[k].text
			 ? sqlite3_bind_text(st, k + 1, lq->args[k].text, -1, SQLITE_TRANSIENT)
			 : sqlite3_bind_int(st, k + 1, lq->args[k].num);
		if (rc != SQLITE_OK)
			return -1;
	}
	return 0;
}

static const char *count_from(const struct list_query *lq)
{
	return lq->need_status ? "miners m LEFT JOIN statuses s ON s.id = m.last_status_id"
			       : "miners m";
}

/* {"total":..,"limit":..,"offset":..,"miners":[ — as jansson writes it. */
static void list_head(struct api_req *r, long long total, long long limit, long long offset)
{
	char head[128];
	int n = snprintf(head, sizeof(head),
			 "{\"total\":%lld,\"limit\":%lld,\"offset\":%lld,\"miners\":[", total,
			 limit, offset);

	api_out_raw(r, head, (size_t)n);
}

/* The filters of the list, from the query or from a JSON object (bulk
 * actions): state, model, q (part of a MAC or address), managed, online,
 * conflict, alerting. */
struct miner_filter {
	const char *state, *model, *q;
	int managed, online, conflict;      /* -1: either */
	int alerting;                       /* with a firing alert; -1: either */
};

/* WHERE from f; -1 after a 400. qlow holds q lower-cased. */
static int filter_where(struct api_req *r, const struct miner_filter *f, struct list_query *lq,
			char qlow[Q_MAX + 1])
{
	const char *state = f->state, *model = f->model, *q = f->q;

	if (state) {
		if (!*state || strlen(state) > STATE_MAX)
			return api_error(r, 400, "state: 1 to %d characters", STATE_MAX), -1;
		filter_add(lq, "s.state = ?%d", state, 0);
		lq->need_status = true;
	}
	if (model) {
		if (!api_alias_ok(model))
			return api_error(r, 400, "model: not a model alias: '%.40s'", model), -1;
		filter_add(lq, "m.model = ?%d", model, 0);
	}
	if (q) {
		size_t n = strlen(q);
		if (n == 0 || n > Q_MAX)
			return api_error(r, 400, "q: 1 to %d characters", Q_MAX), -1;
		for (size_t k = 0; k <= n; k++)
			qlow[k] = (q[k] >= 'A' && q[k] <= 'Z') ? (char)(q[k] - 'A' + 'a') : q[k];
		filter_add(lq, "(instr(m.mac, ?%d) > 0 OR instr(m.ip, ?%d) > 0"
			   " OR instr(m.last_ip, ?%d) > 0)", qlow, 0);
	}
	if (f->managed >= 0)
		filter_add(lq, "m.managed = ?%d", NULL, f->managed);
	if (f->online >= 0)
		filter_add(lq, "m.online = ?%d", NULL, f->online);
	if (f->conflict >= 0)
		filter_add(lq, "(m.conflict IS NOT NULL) = ?%d", NULL, f->conflict);
	if (f->alerting >= 0)
		filter_add(lq, "EXISTS (SELECT 1 FROM alerts al WHERE al.mac = m.mac"
			   " AND al.state = 'firing') = ?%d", NULL, f->alerting);
	return 0;
}

/* ?sort and ?order as an ORDER BY clause; -1 after a 400. */
static int list_order(struct api_req *r, char *out, size_t len)
{
	const char *sort = api_param(r, "sort"), *order = api_param(r, "order");
	const char *expr = "m.mac", *dir = "ASC";

	if (sort) {
		size_t k;
		for (k = 0; k < sizeof(sort_keys) / sizeof(sort_keys[0]); k++)
			if (strcmp(sort, sort_keys[k].name) == 0)
				break;
		if (k == sizeof(sort_keys) / sizeof(sort_keys[0]))
			return api_error(r, 400, "sort: unknown column '%.32s' (known: mac, ip, "
				"model, hostname, state, preset, hashrate, hr_average, power, temp, fan, "
				"managed, online, last_seen, first_seen, last_error)", sort), -1;
		expr = sort_keys[k].expr;
	}
	if (order) {
		if (strcmp(order, "asc") == 0)
			dir = "ASC";
		else if (strcmp(order, "desc") == 0)
			dir = "DESC";
		else
			return api_error(r, 400, "order: must be asc or desc, got '%.16s'",
					 order), -1;
	}
	if (strcmp(expr, "m.mac") == 0)
		snprintf(out, len, " ORDER BY m.mac %s", dir);
	else
		snprintf(out, len, " ORDER BY %s %s NULLS LAST, m.mac %s", expr, dir, dir);
	return 0;
}

/* The list as CSV, row by row: every match unless ?limit says otherwise. */
static int list_csv(struct api_req *r, const struct list_query *lq, const char *order,
		    long long limit, long long offset)
{
	char sql[8192];
	sqlite3_stmt *st;
	int rc, n;

	n = snprintf(sql, sizeof(sql), "SELECT %s" MINER_FROM "%s%s LIMIT ?%d OFFSET ?%d",
		     MINER_CSV_COLS, lq->where, order, lq->nargs + 1, lq->nargs + 2);
	if (n < 0 || (size_t)n >= sizeof(sql))
		return api_error(r, 500, "query too long");
	if (!(st = api_stmt(r, sql)))
		return r->status;
	if (bind_filters(st, lq) < 0 || sqlite3_bind_int64(st, lq->nargs + 1, limit) != SQLITE_OK ||
	    sqlite3_bind_int64(st, lq->nargs + 2, offset) != SQLITE_OK)
		return api_db_fail(r, st);
	api_out_start(r);
	api_out_csv_header(r, st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		api_out_csv_row(r, st);
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	return api_out_send_csv(r, 200, "miners");
}

/* Pages of at least so many miners are shared between the clients asking
 * for the same (answers.h): smaller ones cost a few ms to write and are
 * always built afresh. */
#define ANSWERS_MIN_MINERS 2000
#define LIST_SQL_MAX 3072

/* The query as a key for answers.h: its parameters as given, decoded;
 * "" (kept by nobody) when too long or when a decoded name or value holds
 * '&' or '=' (the rebuild splits the key on them). */
static const char *answer_key(const struct api_req *r, char *key, size_t len)
{
	size_t at = (size_t)snprintf(key, len, "miners?");

	for (int i = 0; i < r->nparams && at < len; i++) {
		if (strpbrk(r->params[i].name, "&=") || strpbrk(r->params[i].value, "&="))
			return "";
		at += (size_t)snprintf(key + at, len - at, "%s%s=%s", i ? "&" : "",
				       r->params[i].name, r->params[i].value);
	}
	return at < len ? key : "";
}

void api_miners_rebuild(struct apid *a, struct api_worker *w, struct apid_answers *c,
			const char *key)
{
	char buf[512], *p, *save = NULL;
	struct api_req r = { .apid = a, .worker = w, .answers = c, .method = "GET",
			     .path = "/api/miners" };

	snprintf(buf, sizeof(buf), "%s", key + strlen("miners?"));
	for (p = strtok_r(buf, "&", &save); p && r.nparams < API_MAX_PARAMS;
	     p = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(p, '=');
		if (!eq)
			continue;
		*eq = '\0';
		r.params[r.nparams].name = p;
		r.params[r.nparams++].value = eq + 1;
	}
	snprintf(r.actor, sizeof(r.actor), "answers");
	api_request_begin(&r);
	api_miners_list(&r);
	api_request_end(&r);
}

/* The page of the list as JSON into the answer (sql from api_miners_list);
 * its miners in *rows. 0 / -1 (an error answer sent). */
static int list_page(struct api_req *r, const struct list_query *lq, char *sql,
		     long long limit, long long offset, int *rows)
{
	long long total = -1;
	int rc;
	sqlite3_stmt *st = api_stmt(r, sql);

	if (!st)
		return -1;
	if (bind_filters(st, lq) < 0 || sqlite3_bind_int64(st, lq->nargs + 1, limit) != SQLITE_OK ||
	    sqlite3_bind_int64(st, lq->nargs + 2, offset) != SQLITE_OK)
		return api_db_fail(r, st), -1;
	/* Row by row into the answer: the total (the same in every row)
	 * comes with the first, so the head is written then. */
	api_out_start(r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		(*rows)++;
		if (total < 0) {
			total = sqlite3_column_int64(st, C_NCOLS);
			list_head(r, total, limit, offset);
		} else {
			api_out_raw(r, ",", 1);
		}
		api_out_raw(r, "{", 1);
		miner_members(r, st, false);
		api_out_raw(r, "}", 1);
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st), -1;
	sqlite3_reset(st);
	if (total < 0) {
		/* An empty page: the total on its own. */
		snprintf(sql, LIST_SQL_MAX, "SELECT count(*) FROM %s%s", count_from(lq), lq->where);
		st = api_stmt(r, sql);
		if (!st)
			return -1;
		if (bind_filters(st, lq) < 0 || sqlite3_step(st) != SQLITE_ROW)
			return api_db_fail(r, st), -1;
		total = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		list_head(r, total, limit, offset);
	}
	api_out_raw(r, "]}", 2);
	return 0;
}

int api_miners_list(struct api_req *r)
{
	static const char *const allowed[] = { "limit", "offset", "state", "model", "managed",
					       "online", "conflict", "alerting", "q", "sort", "order",
					       "format", NULL };
	struct list_query lq = { .nargs = 0 };
	struct miner_filter f = { api_param(r, "state"), api_param(r, "model"), api_param(r, "q"),
				  -1, -1, -1, -1 };
	long long limit, offset;
	char qlow[Q_MAX + 1], order[160], sql[LIST_SQL_MAX], key[512];
	int rc, csv, rows = 0;
	const struct apid_answer *shared;
	bool keep = false;

	/* CSV is an export: the whole match by default (LIMIT -1). */
	if (api_params_allow(r, allowed) < 0 || (csv = api_want_csv(r)) < 0 ||
	    api_param_int(r, "limit", 1, LIST_LIMIT_MAX, csv ? -1 : LIST_LIMIT_DEFAULT,
			  &limit) < 0 ||
	    api_param_int(r, "offset", 0, OFFSET_MAX, 0, &offset) < 0 ||
	    api_param_bool(r, "managed", &f.managed) < 0 ||
	    api_param_bool(r, "online", &f.online) < 0 ||
	    api_param_bool(r, "conflict", &f.conflict) < 0 ||
	    api_param_bool(r, "alerting", &f.alerting) < 0 ||
	    filter_where(r, &f, &lq, qlow) < 0 || list_order(r, order, sizeof(order)) < 0 ||
	    (csv && !r->conn)) {
		if (!r->conn)   /* a rebuild for answers.h: let it go */
			apid_answers_abandon(r->answers, answer_key(r, key, sizeof(key)));
		return r->status;
	}
	if (csv)
		return list_csv(r, &lq, order, limit, offset);
	if (!r->conn) {
		keep = true;    /* the rebuilder's: answers.h marked it */
		answer_key(r, key, sizeof(key));
	} else if (limit >= ANSWERS_MIN_MINERS) {
		int st;
		shared = apid_answers_get(r->answers, answer_key(r, key, sizeof(key)), &keep);
		if (shared) {
			st = api_send(r, 200, "application/json", NULL, shared->body, shared->len);
			apid_answer_release(shared);
			return st;
		}
	}

	/* One statement, one read transaction: the page, with the total from
	 * a subquery SQLite runs once. */
	snprintf(sql, sizeof(sql), "SELECT " MINER_COLS ", (SELECT count(*) FROM %s%s)"
		 MINER_FROM "%s%s LIMIT ?%d OFFSET ?%d", count_from(&lq), lq.where, lq.where,
		 order, lq.nargs + 1, lq.nargs + 2);
	rc = list_page(r, &lq, sql, limit, offset, &rows);
	if (keep) {
		size_t len;
		const char *body = rc == 0 && rows >= ANSWERS_MIN_MINERS ? api_out_body(r, &len) : NULL;
		if (body)
			apid_answers_put(r->answers, key, body, len);
		else
			apid_answers_abandon(r->answers, key);
	}
	return rc < 0 ? r->status : api_out_send(r, 200);
}


/* The miners a bulk action's filter names: {"state","model","q","managed",
 * "online","conflict"} as the list's parameters (booleans as JSON). */
int api_miners_matching(struct api_req *r, const json_t *filter, char (**macs)[HIVE_MAC_LEN],
			size_t *n)
{
	static const char *const allowed[] = { "state", "model", "q", "managed", "online",
					       "conflict", "alerting", NULL };
	static const char *const bools[] = { "managed", "online", "conflict", "alerting" };
	struct miner_filter f = { NULL, NULL, NULL, -1, -1, -1, -1 };
	int *bool_out[] = { &f.managed, &f.online, &f.conflict, &f.alerting };
	const char **str_out[] = { &f.state, &f.model, &f.q };
	struct list_query lq = { .nargs = 0 };
	char qlow[Q_MAX + 1], sql[1024];
	size_t cap = 0;
	sqlite3_stmt *st;
	int rc;

	*macs = NULL;
	*n = 0;
	if (!json_is_object(filter))
		return api_error(r, 400, "filter: expected an object"), -1;
	if (api_body_allow(r, filter, allowed) < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		json_t *v = json_object_get(filter, allowed[i]);

		if (v && !json_is_string(v))
			return api_error(r, 400, "filter.%s: expected a string", allowed[i]), -1;
		*str_out[i] = v ? json_string_value(v) : NULL;
	}
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		json_t *v = json_object_get(filter, bools[i]);

		if (v && !json_is_boolean(v))
			return api_error(r, 400, "filter.%s: expected true or false", bools[i]), -1;
		*bool_out[i] = v ? json_is_true(v) : -1;
	}
	if (filter_where(r, &f, &lq, qlow) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT m.mac FROM %s%s ORDER BY m.mac", count_from(&lq),
		 lq.where);
	if (!(st = api_stmt(r, sql)))
		return -1;
	if (bind_filters(st, &lq) < 0)
		return api_db_fail(r, st), -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			void *nm = realloc(*macs, nc * sizeof(**macs));

			if (!nm) {
				sqlite3_reset(st);
				return api_error(r, 500, "out of memory"), -1;
			}
			*macs = nm;
			cap = nc;
		}
		snprintf((*macs)[(*n)++], HIVE_MAC_LEN, "%s", sqlite3_column_text(st, 0));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st), -1;
	return 0;
}

/* ------------------------------------------------------------ one miner */

int api_miner_get(struct api_req *r, const char *mac)
{
	static const char sql[] =
		"SELECT " MINER_COLS ", s.chains, s.pools, mo.name, mo.max_preset" MINER_FROM
		" LEFT JOIN models mo ON mo.alias = m.model WHERE m.mac = ?";
	static const char sql_errors[] =
		"SELECT ts_ms, op, kind, http_status, message FROM miner_errors WHERE mac = ?"
		" ORDER BY ts_ms DESC, id DESC LIMIT " RECENT_ERRORS;
	static const struct api_col_field error_fields[] = {
		{ "ts", API_COL }, { "op", API_COL }, { "kind", API_COL },
		{ "http_status", API_COL }, { "message", API_COL }, { NULL, API_COL },
	};
	sqlite3_stmt *st;
	bool first = true;
	int rc;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	st = api_stmt(r, sql);
	if (!st)
		return r->status;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return api_error(r, 404, "no miner %s", mac);
	if (rc != SQLITE_ROW)
		return api_db_fail(r, st);
	api_out_start(r);
	api_out_raw(r, "{", 1);
	miner_members(r, st, true);
	sqlite3_reset(st);

	if (!(st = api_stmt(r, sql_errors)))
		return r->status;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	api_out_key(r, "errors");
	api_out_raw(r, "[", 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		api_out_raw(r, first ? "{" : ",{", first ? 1 : 2);
		api_out_fields(r, st, 0, error_fields);
		api_out_raw(r, "}", 1);
		first = false;
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	api_out_raw(r, "]}", 2);
	return api_out_send(r, 200);
}

/* 1 = the miner exists, 0 = answered 404, -1 = answered an error. */
static int miner_exists(struct api_req *r, const char *mac)
{
	sqlite3_stmt *st = api_stmt(r, "SELECT telemetry_source FROM miners WHERE mac = ?");
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		api_error(r, 404, "no miner %s", mac);
		return 0;
	}
	api_db_fail(r, st);
	return -1;
}

/* pinned, and the clearing of power_excluded: the balancer's flags. */
struct power_flags {
	char mac[HIVE_MAC_LEN];
	int pinned;              /* 0, 1, -1: leave */
	bool clear_excluded;
	const char *actor;
};

static int power_flags_run(struct apid_apply *a, void *arg, int *http_status, char *err,
			   size_t errlen)
{
	const struct power_flags *f = arg;
	sqlite3 *db = apid_apply_db(a);
	sqlite3_stmt *st = NULL;
	json_t *detail = json_object();
	char *text;
	int rc = sqlite3_prepare_v2(db,
		"UPDATE miners SET pinned = CASE WHEN ?2 < 0 THEN pinned ELSE ?2 END,"
		" power_excluded = CASE WHEN ?3 THEN NULL ELSE power_excluded END,"
		" power_excluded_ms = CASE WHEN ?3 THEN NULL ELSE power_excluded_ms END"
		" WHERE mac = ?1", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, f->mac, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, f->pinned);
		sqlite3_bind_int(st, 3, f->clear_excluded);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(detail);
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	if (sqlite3_changes(db) == 0) {
		json_decref(detail);
		*http_status = 404;
		snprintf(err, errlen, "unknown miner %s", f->mac);
		return -1;
	}
	if (f->pinned >= 0)
		json_object_set_new(detail, "pinned", json_boolean(f->pinned));
	if (f->clear_excluded)
		json_object_set_new(detail, "power_excluded", json_false());
	text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(detail);
	rc = sqlite3_prepare_v2(db, "INSERT INTO audit(ts_ms, actor, action, target, detail)"
				" VALUES(?1, ?2, 'miner.patch', ?3, ?4)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, hive_wall_ms());
		sqlite3_bind_text(st, 2, f->actor, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, f->mac, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	free(text);
	if (rc != SQLITE_DONE) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

int api_miner_patch(struct api_req *r, const char *mac)
{
	static const char *const allowed[] = { "managed", "unlock_pass", "pinned",
					       "power_excluded", NULL };
	json_t *body = api_body_object(r), *v;
	const char *pass = NULL;
	char err[256] = "";
	int managed = -1, status = 0;
	struct power_flags pf = { .pinned = -1, .actor = r->actor };

	if (!body)
		return r->status;
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0 ||
	    api_body_allow(r, body, allowed) < 0)
		goto out;
	/* An unlock password and the balancer's pin are the admin's
	 * (routes.c lets an operator in for managed and power_excluded). */
	if (r->role < APID_ROLE_ADMIN && (json_object_get(body, "unlock_pass") ||
					  json_object_get(body, "pinned"))) {
		api_error(r, 403, "unlock_pass and pinned need the admin role; token '%s' is %s",
			  r->actor, apid_role_name(r->role));
		goto out;
	}
	if ((v = json_object_get(body, "managed")) != NULL) {
		if (!json_is_boolean(v)) {
			api_error(r, 400, "managed: expected true or false, got %s",
				  json_is_null(v) ? "null" : json_is_string(v) ? "a string" :
				  json_is_number(v) ? "a number" : "a structure");
			goto out;
		}
		managed = json_is_true(v);
	}
	if ((v = json_object_get(body, "unlock_pass")) != NULL) {
		if (!json_is_string(v)) {
			api_error(r, 400, "unlock_pass: expected a string");
			goto out;
		}
		pass = json_string_value(v);
		if (json_string_length(v) == 0) {
			api_error(r, 422, "unlock_pass: must not be empty");
			goto out;
		}
		if (json_string_length(v) > UNLOCK_PASS_MAX || strlen(pass) != json_string_length(v)) {
			api_error(r, 422, "unlock_pass: at most %d characters, no NUL",
				  UNLOCK_PASS_MAX);
			goto out;
		}
		hive_log_secret(pass);
	}
	if ((v = json_object_get(body, "pinned")) != NULL) {
		if (!json_is_boolean(v)) {
			api_error(r, 400, "pinned: expected true or false");
			goto out;
		}
		pf.pinned = json_is_true(v);
	}
	if ((v = json_object_get(body, "power_excluded")) != NULL) {
		if (!json_is_false(v)) {
			api_error(r, 400, "power_excluded: only false (clear it) can be set");
			goto out;
		}
		pf.clear_excluded = true;
	}
	if (managed < 0 && !pass && pf.pinned < 0 && !pf.clear_excluded) {
		api_error(r, 400, "nothing to change: give managed, unlock_pass, pinned or "
			  "power_excluded");
		goto out;
	}
	if (pf.pinned >= 0 || pf.clear_excluded) {
		snprintf(pf.mac, sizeof(pf.mac), "%s", mac);
		if (apid_writer_run_within(r->apid->writer, power_flags_run, &pf,
					   APID_WRITER_API_WAIT_MS, &status, err, sizeof(err)) < 0) {
			api_error(r, status >= 400 && status < 600 ? status : 500, "%s", err);
			goto out;
		}
		log_info("api miner patched mac=%s actor=%s pinned=%d power_excluded=%s", mac,
			 r->actor, pf.pinned, pf.clear_excluded ? "cleared" : "unchanged");
		if (managed < 0 && !pass) {
			json_decref(body);
			return api_miner_get(r, mac);
		}
	}
	if (apid_patch_miner(r->apid, mac, managed, pass, r->actor, &status, err,
			     sizeof(err)) < 0) {
		api_error(r, status >= 400 && status < 600 ? status : 500, "%s",
			  err[0] ? err : "change refused");
		goto out;
	}
	log_info("api miner patched mac=%s actor=%s managed=%d unlock_pass=%s", mac, r->actor,
		 managed, pass ? "changed" : "unchanged");
	json_decref(body);
	return api_miner_get(r, mac);
out:
	json_decref(body);
	return r->status;
}

/* ------------------------------------------------------------ history */

/* What the history handlers share: ?limit (1 to max, default def) and
 * ?before, and ?brief and ?format when brief is not NULL; the miner must
 * exist; sql takes ?1 = mac, ?2 = before, ?3 = limit. The statement,
 * bound, or NULL after an answer. */
static sqlite3_stmt *history_query(struct api_req *r, const char *mac, const char *sql,
				   long long max, long long def, int *brief)
{
	static const char *const plain[] = { "limit", "before", NULL };
	static const char *const with_brief[] = { "limit", "before", "brief", "format", NULL };
	long long limit, before;
	sqlite3_stmt *st;

	if (api_params_allow(r, brief ? with_brief : plain) < 0 ||
	    api_param_int(r, "limit", 1, max, def, &limit) < 0 ||
	    api_param_int(r, "before", 1, BEFORE_MAX, LLONG_MAX / 2, &before) < 0 ||
	    (brief && api_param_bool(r, "brief", brief) < 0))
		return NULL;
	if (miner_exists(r, mac) <= 0 || !(st = api_stmt(r, sql)))
		return NULL;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before);
	sqlite3_bind_int64(st, 3, limit);
	return st;
}

/* {"id":"<mac>","<what>":[ — as jansson writes it; the mac is validated
 * (lower-case hex and colons), nothing to escape. */
static void history_head(struct api_req *r, const char *mac, const char *what)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "{\"id\":\"%s\",\"%s\":[", mac, what);

	api_out_raw(r, head, (size_t)n);
}

/* The history as CSV: the statuses' figures, without chains and pools,
 * so a page may be far longer than the JSON's. */
static int statuses_csv(struct api_req *r, const char *mac)
{
	static const char sql[] =
		"SELECT " API_CSV_TIME("s.ts_ms") " AS ts_utc, s.state AS state,"
		" s.state_description AS state_description, s.state_time AS state_time,"
		" s.preset AS preset, " STATUS_CSV_FIGURES " FROM statuses s"
		" WHERE s.mac = ? AND s.ts_ms < ? ORDER BY s.ts_ms DESC, s.id DESC LIMIT ?";
	int brief, rc;
	sqlite3_stmt *st = history_query(r, mac, sql, HISTORY_CSV_MAX, HISTORY_DEFAULT, &brief);
	char stem[64];

	if (!st)
		return r->status;
	/* The MAC with dashes: a colon is not allowed in a Windows file name. */
	snprintf(stem, sizeof(stem), "statuses-%s", mac);
	for (char *c = stem; *c; c++)
		if (*c == ':')
			*c = '-';
	api_out_start(r);
	api_out_csv_header(r, st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		api_out_csv_row(r, st);
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	return api_out_send_csv(r, 200, stem);
}

int api_miner_statuses(struct api_req *r, const char *mac)
{
	static const char sql[] = "SELECT " STATUS_COLS " FROM statuses WHERE mac = ?"
				  " AND ts_ms < ? ORDER BY ts_ms DESC, id DESC LIMIT ?";
	int brief, rc, csv = api_want_csv(r);
	struct status_more more = { -1, -1, -1 };
	sqlite3_stmt *st;
	bool first = true;

	if (csv < 0)
		return r->status;
	if (csv)
		return statuses_csv(r, mac);
	if (!(st = history_query(r, mac, sql, HISTORY_MAX, HISTORY_DEFAULT, &brief)))
		return r->status;
	/* Row by row into the answer: 1000 statuses with chains and pools
	 * make ~1 MB. */
	api_out_start(r);
	history_head(r, mac, "statuses");
	more.chains = brief != 1 ? 15 : -1;
	more.pools = brief != 1 ? 16 : -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!first)
			api_out_raw(r, ",", 1);
		first = false;
		status_write(r, st, 0, &more);
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	api_out_raw(r, "]}", 2);
	return api_out_send(r, 200);
}

/* Samples are the chains' rows sharing one ts_ms; limit counts samples. */
int api_miner_telemetry(struct api_req *r, const char *mac)
{
	static const char sql[] =
		"SELECT ts_ms, chain, state, hr_realtime_ghs, hr_nominal_ghs, freq, n_chips, chips,"
		" chips_format FROM telemetry WHERE mac = ?1 AND ts_ms < ?2 AND ts_ms >= (SELECT min(ts_ms) FROM"
		" (SELECT DISTINCT ts_ms FROM telemetry WHERE mac = ?1 AND ts_ms < ?2"
		" ORDER BY ts_ms DESC LIMIT ?3)) ORDER BY ts_ms DESC, chain ASC";
	static const char *const chain_cols[] = { "chain", "state", "hr_realtime_ghs",
						  "hr_nominal_ghs", "freq", "n_chips", NULL };
	sqlite3_stmt *st = history_query(r, mac, sql, TELEMETRY_MAX, TELEMETRY_DEFAULT, NULL);
	bool any = false;
	long long ts = 0;
	int rc;

	if (!st)
		return r->status;
	/* One chain row at a time into the answer: 1000 samples of 3 chains
	 * of 126 chips are ~2 million JSON values, ~10 MB of text. */
	api_out_start(r);
	history_head(r, mac, "samples");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long t = sqlite3_column_int64(st, 0);
		const void *blob = sqlite3_column_blob(st, 7);
		size_t len = (size_t)sqlite3_column_bytes(st, 7);
		json_t *c;

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
		if ((c = json_object()) != NULL) {
			api_set_cols(c, st, 1, chain_cols);
			api_set(c, "chips", blob ? apid_chips_json_any(blob, len,
								     sqlite3_column_int(st, 8))
						 : NULL);
		}
		api_out_json(r, c);
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	api_out_raw(r, any ? "]}]}" : "]}", any ? 4 : 2);
	return api_out_send(r, 200);
}
