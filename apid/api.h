/* api.h — what apid's HTTP handlers share (api.c; internal to the HTTP
 * side): the request being served, JSON answers and errors, query
 * parameters, the request body, and the worker thread's own read-only
 * database connection. http.c parses and routes the request, then calls
 * the handlers (api_miners.c, api_models.c).
 *
 * Every api_* call that answers the client returns the HTTP status it sent
 * (also kept in r->status); the parse helpers return -1 after they have
 * answered with a 4xx, so a handler can just `return r->status`. */
#ifndef APID_API_H
#define APID_API_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <sqlite3.h>

#include "auth.h"
#include "hive/mac.h"

struct mg_connection;
struct apid;
struct api_worker;
struct apid_answers;

#define API_MAX_SEGS   16
#define API_MAX_PARAMS 16
#define API_MAC_LEN    17     /* "aa:bb:cc:dd:ee:ff" */
#define API_ALIAS_MAX  64

struct api_param {
	const char *name;        /* decoded, NUL-terminated (points into the request) */
	const char *value;
};

struct api_req {
	struct mg_connection *conn; /* NULL: built for answers.h, sent to nobody */
	struct apid *apid;
	struct api_worker *worker; /* this thread's answer buffer and reader */
	const char *method;
	bool head;               /* HEAD: answer headers only */
	bool close;              /* answer with Connection: close (body left unread) */
	const char *path;        /* decoded path */
	char *segs[API_MAX_SEGS];
	int nsegs;
	struct api_param params[API_MAX_PARAMS];
	int nparams;
	size_t max_body;         /* http.max_body_bytes */
	char actor[96];          /* for the audit log: the token's name */
	enum apid_role role;     /* the token's role (routes.h checks it) */
	bool anonymous;          /* no token: an open_reads viewer */
	int status;              /* the status sent */
	struct apid_answers *answers; /* big GET answers shared between clients */
	size_t out_len;          /* api_out_*: the body's bytes so far */
	bool out_failed;         /* api_out_*: an append ran out of memory */
};

/* ---- answers (each writes headers and body in one mg_write) ---- */

/* Sends body (reference stolen) as application/json. */
int api_json(struct api_req *r, int status, json_t *body);
/* {"error":"<message>"} */
int api_error(struct api_req *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* api_error with extra header lines (each ending in "\r\n"). */
int api_error_with(struct api_req *r, int status, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* extra: further header lines, each ending in "\r\n", or NULL. */
int api_send(struct api_req *r, int status, const char *content_type, const char *extra,
	     const void *body, size_t len);

/* A JSON answer built piece by piece in this thread's answer buffer, for
 * the lists that can reach megabytes: each row is written as text (the
 * writers below) or made a small jansson tree, dumped (compact, as
 * api_json dumps) and freed at once, so the list never exists as one tree.
 * Still one write with a Content-Length. An append that runs out of memory
 * is remembered and api_out_send answers 500 instead; any api_error
 * meanwhile discards what was built. */
void api_out_start(struct api_req *r);
/* Appends text as it is (it must be valid JSON in its place). */
void api_out_raw(struct api_req *r, const char *text, size_t n);
/* Appends j (reference stolen; NULL, from a failed allocation, fails). */
void api_out_json(struct api_req *r, json_t *j);
/* Ends the body with a newline and sends it as application/json. */
int api_out_send(struct api_req *r, int status);
/* The body built so far, NULL after a failed append. */
const char *api_out_body(const struct api_req *r, size_t *len);

/* ---- JSON written as text ----
 * Rows straight from SQLite into the answer without a jansson tree (a
 * tree per row was ~40% of a 10,000-miner list's time). Each writer
 * appends the very bytes api_out_json would for the same value, as
 * jansson 2.14 dumps it with api_json's flags: integers as %lld; reals as
 * "%.<API_REAL_PRECISION>g", with ".0" added when there is neither a '.'
 * nor an 'e' and the exponent without '+' or leading zeros; strings with
 * \" \\ \b \f \n \r \t escaped, other controls as \u00XX, '/' and
 * UTF-8 as they are. Text that is not valid UTF-8 is null, as
 * json_stringn refuses it. A member is api_out_key, then one value;
 * objects and arrays are api_out_raw'd braces and commas. */
#define API_REAL_PRECISION 7
/* How every JSON answer is dumped (GET /api/health's text too). */
#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(API_REAL_PRECISION) | JSON_ENCODE_ANY)

/* "key": — after a comma unless the object was just opened ('{'). key is
 * plain ASCII with nothing to escape. */
void api_out_key(struct api_req *r, const char *key);
/* A string of n bytes (any, NUL too); null when not valid UTF-8. */
void api_out_str(struct api_req *r, const char *s, size_t n);
void api_out_int(struct api_req *r, long long v);
/* null when not finite (json_real refuses it). */
void api_out_real(struct api_req *r, double v);
void api_out_bool(struct api_req *r, bool v);
void api_out_null(struct api_req *r);
/* Column i as api_col, api_col_bool and api_col_json make it. A JSON
 * column apid wrote (a flat array of integers, such as fans) is copied as
 * it is; anything else is parsed and dumped, null when it does not parse,
 * so the answer stays valid JSON whatever the column holds. */
void api_out_col(struct api_req *r, sqlite3_stmt *st, int i);
void api_out_col_bool(struct api_req *r, sqlite3_stmt *st, int i);
void api_out_col_json(struct api_req *r, sqlite3_stmt *st, int i);

/* A run of columns as members: fields[k] is column first + k, up to the
 * entry whose key is NULL. A table in SELECT order keeps the names next to
 * the columns they read. */
enum api_col_kind { API_COL, API_COL_BOOL, API_COL_JSON };
struct api_col_field {
	const char *key;
	enum api_col_kind kind;
};
void api_out_fields(struct api_req *r, sqlite3_stmt *st, int first,
		    const struct api_col_field fields[]);

/* ---- CSV answers (RFC 4180) ----
 * The same rows as the JSON answer, for spreadsheets: a header row, then
 * one line per row, CRLF after each; a field holding a comma, a quote or a
 * line break is quoted, its quotes doubled; SQL NULL is an empty field.
 * Built row by row with api_out_start, like the JSON lists. */

/* 1 when the client asks for CSV (?format=csv, or an Accept header naming
 * text/csv), 0 for JSON (?format=json, or neither), -1 after a 400 for
 * any other ?format. The handler must allow "format". */
int api_want_csv(struct api_req *r);
/* The names of st's columns (as the SQL's AS names them), as a row. */
void api_out_csv_header(struct api_req *r, sqlite3_stmt *st);
/* The row st stands on: every column, as SQLite writes it as text. */
void api_out_csv_row(struct api_req *r, sqlite3_stmt *st);
/* One text field of a row built by hand (after a comma unless first). */
void api_out_csv_text(struct api_req *r, const char *text, bool first);
/* Sends the body as text/csv, an attachment named
 * "<stem>-YYYYMMDD-HHMMSS.csv" (now, UTC); stem: [A-Za-z0-9._-] only. */
int api_out_send_csv(struct api_req *r, int status, const char *stem);
/* SQL for a CSV cell: a time in ms as "YYYY-MM-DD HH:MM:SS" (UTC), a flag
 * as true/false; NULL stays NULL. */
#define API_CSV_TIME(x) "strftime('%Y-%m-%d %H:%M:%S', (" x ") / 1000, 'unixepoch')"
#define API_CSV_BOOL(x) \
	"CASE WHEN (" x ") IS NULL THEN NULL WHEN (" x ") THEN 'true' ELSE 'false' END"

/* ---- query parameters ---- */

const char *api_param(const struct api_req *r, const char *name);
/* Refuses (400) any parameter not in the NULL-terminated list. 0 / -1. */
int api_params_allow(struct api_req *r, const char *const allowed[]);
/* Integer in [min, max]; def when absent. 0 / -1 (400 sent). */
int api_param_int(struct api_req *r, const char *name, long long min, long long max,
		  long long def, long long *out);
/* "true"/"false"; *out = -1 when absent. 0 / -1 (400 sent). */
int api_param_bool(struct api_req *r, const char *name, int *out);

/* ---- the request body ---- */

/* Reads the body (at most r->max_body bytes, else 413 without reading
 * further) and parses it as one JSON object. New reference, or NULL after
 * an error answer (400, 413, 415). */
json_t *api_body_object(struct api_req *r);
/* Refuses (400) a member not in the NULL-terminated list. 0 / -1. */
int api_body_allow(struct api_req *r, const json_t *obj, const char *const allowed[]);

/* ---- ids ---- */

/* "AA:bb:cc:dd:ee:ff" → "aa:bb:cc:dd:ee:ff" in out[API_MAC_LEN + 1]. 0 / -1. */
int api_mac_parse(const char *in, char *out);
/* A model alias: 1..63 of [A-Za-z0-9._+-]. */
bool api_alias_ok(const char *alias);

/* ---- the read-only database ---- */

/* A prepared statement on this thread's connection, reset and unbound,
 * cached by SQL text; reset again when the request ends. NULL after an
 * error answer (503 while the database cannot be opened, 500). */
sqlite3_stmt *api_stmt(struct api_req *r, const char *sql);
/* Answers 500 for a failed step of st and logs SQLite's message. */
int api_db_fail(struct api_req *r, sqlite3_stmt *st);
/* Answers 200 with {key: [row(st) for every row st steps to]} (st bound
 * already), or as api_db_fail. */
int api_send_rows(struct api_req *r, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *st),
		  const char *key);

/* Column values as JSON (new references; SQL NULL → JSON null). */
json_t *api_col(sqlite3_stmt *st, int i);
json_t *api_col_bool(sqlite3_stmt *st, int i);
/* A TEXT column holding JSON; null when NULL or not valid JSON. */
json_t *api_col_json(sqlite3_stmt *st, int i);
/* Sets key of o to v (stolen; NULL, from a failed allocation, sets null). */
void api_set(json_t *o, const char *key, json_t *v);
/* Sets names[k] of o (a NULL-terminated list) to column first + k, as
 * api_col reads it. */
void api_set_cols(json_t *o, sqlite3_stmt *st, int first, const char *const names[]);

/* ---- the worker thread (for http.c) ---- */

/* What one civetweb worker thread keeps between its requests: the answer
 * buffer, and the read-only connection to db_path (opened on first use
 * with apid_store_open_readonly) with its cached statements. db_path must
 * outlive it. NULL when out of memory; api_worker_free frees. */
struct api_worker *api_worker_new(const char *db_path);
void api_worker_free(struct api_worker *w);
/* Around each request of r->worker: begin numbers it for the statement
 * cache; end resets every statement it used, so no read transaction stays
 * open to hold back the writer's checkpoints. */
void api_request_begin(struct api_req *r);
void api_request_end(struct api_req *r);
/* A bare 500 with Connection: close, for a thread without a worker. */
void api_answer_500(struct mg_connection *conn);

/* ---- handlers (api_miners.c, api_models.c) ---- */


int api_miners_list(struct api_req *r);
/* Builds the list page of an answers.h key ("miners?limit=10000&…") on
 * the rebuilder's thread with its own worker, and keeps it (or lets the
 * slot go). */
void api_miners_rebuild(struct apid *a, struct api_worker *w, struct apid_answers *c,
			const char *key);
int api_miner_get(struct api_req *r, const char *mac);
int api_miner_patch(struct api_req *r, const char *mac);
int api_miner_statuses(struct api_req *r, const char *mac);
int api_miner_telemetry(struct api_req *r, const char *mac);
int api_models_list(struct api_req *r);
int api_model_get(struct api_req *r, const char *alias);
int api_model_patch(struct api_req *r, const char *alias);
/* The miners a bulk action's filter object matches (malloc'd, sorted):
 * 0, or -1 after an error answer. */
int api_miners_matching(struct api_req *r, const json_t *filter, char (**macs)[HIVE_MAC_LEN],
			size_t *n);

/* ---- handlers (api_actions.c) ---- */

int api_miner_action(struct api_req *r, const char *mac);
int api_actions_post(struct api_req *r);
int api_actions_list(struct api_req *r);
int api_action_get(struct api_req *r, const char *id);
int api_audit_list(struct api_req *r);

/* api_history.c */
int api_miner_history(struct api_req *r, const char *mac);
int api_miner_chip_hours(struct api_req *r, const char *mac);
int api_fleet_history(struct api_req *r);

/* api_power.c */
int api_power_get(struct api_req *r);
int api_power_patch(struct api_req *r);
int api_power_history(struct api_req *r);
int api_power_plan(struct api_req *r);
int api_power_decisions(struct api_req *r);
int api_power_readings(struct api_req *r);

/* api_alerts.c */
int api_alerts_list(struct api_req *r);
int api_alert_ack(struct api_req *r, const char *id);
int api_silences_list(struct api_req *r);
int api_silences_post(struct api_req *r);
int api_silence_delete(struct api_req *r, const char *id);

/* api_tokens.c: named tokens (auth.h) */
/* The name and role of the token of r's Authorization header, into
 * r->actor and r->role: 1 found, 0 unknown or revoked, -1 after an error
 * answer (503 while the database cannot be read). */
int api_token_lookup(struct api_req *r, const char *token);
int api_whoami(struct api_req *r);
int api_tokens_list(struct api_req *r);
int api_tokens_post(struct api_req *r);
int api_token_revoke(struct api_req *r, const char *name);

/* api_notify.c */
int api_notifications(struct api_req *r);
int api_alert_channels(struct api_req *r);

#endif
