/* api_alerts — GET /api/alerts, POST /api/alerts/{id}/ack, and
 * GET/POST/DELETE /api/silences (docs/api.md). The alerts engine
 * (alerts.h) writes the alerts; an acknowledgement or a silence is a
 * writer request with its audit row, the token's actor in both. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "api.h"
#include "apply.h"
#include "core.h"
#include "hive/cfg.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "writer.h"

#define LIST_DEFAULT    100
#define LIST_MAX        1000
#define BEFORE_MAX      (LLONG_MAX / 2)
#define SILENCE_MAX_S   (90 * 86400)    /* a longer silence is a disabled rule */
#define COMMENT_MAX     500

/* ------------------------------------------------------------ alerts */

#define ALERT_COLS \
	"a.id, a.rule, a.subject, a.mac, a.state, a.started_ms, a.ended_ms, a.value," \
	" a.threshold, a.summary, a.acked_ms, a.acked_by," \
	" coalesce(json_extract(a.detail, '$.silenced'), 0) OR (a.state = 'firing' AND EXISTS" \
	" (SELECT 1 FROM silences s WHERE s.ends_ms > ?9 AND (s.rule IS NULL OR s.rule = a.rule)" \
	"  AND (s.mac IS NULL OR s.mac = a.mac)))"

static json_t *alert_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "id", "rule", "subject", "mac", "state", "started",
					    "ended", "value", "threshold", "summary", "acked",
					    "acked_by", NULL };
	json_t *o = json_object();

	if (!o)
		return NULL;
	api_set_cols(o, st, 0, cols);
	api_set(o, "silenced", api_col_bool(st, 12));
	return o;
}

int api_alerts_list(struct api_req *r)
{
	static const char *const allowed[] = { "state", "rule", "miner", "limit", "before", NULL };
	const char *state = api_param(r, "state"), *rule = api_param(r, "rule");
	const char *miner = api_param(r, "miner");
	char mac[API_MAC_LEN + 1];
	long long limit, before, last = 0;
	sqlite3_stmt *st;
	json_t *list, *by, *out;
	int rc, n = 0, firing = 0;

	if (api_params_allow(r, allowed) < 0 ||
	    api_param_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) < 0 ||
	    api_param_int(r, "before", 1, BEFORE_MAX, BEFORE_MAX, &before) < 0)
		return r->status;
	if (state && strcmp(state, "firing") != 0 && strcmp(state, "resolved") != 0)
		return api_error(r, 400, "state: one of firing, resolved");
	if (rule && hive_alert_rule_parse(rule) < 0)
		return api_error(r, 400, "rule: unknown rule '%.40s'", rule);
	if (miner && api_mac_parse(miner, mac) < 0)
		return api_error(r, 400, "miner: bad MAC '%.40s'", miner);
	st = api_stmt(r, "SELECT " ALERT_COLS " FROM alerts a"
		      " WHERE a.id < ?1 AND (?2 IS NULL OR a.state = ?2)"
		      " AND (?3 IS NULL OR a.rule = ?3) AND (?4 IS NULL OR a.mac = ?4)"
		      " ORDER BY a.id DESC LIMIT ?5");
	if (!st)
		return r->status;
	sqlite3_bind_int64(st, 1, before);
	if (state)
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	if (rule)
		sqlite3_bind_text(st, 3, rule, -1, SQLITE_STATIC);
	if (miner)
		sqlite3_bind_text(st, 4, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, limit);
	sqlite3_bind_int64(st, 9, hive_wall_ms());
	list = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_array_append_new(list, alert_json(st));
		last = sqlite3_column_int64(st, 0);
		n++;
	}
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return api_db_fail(r, st);
	}
	sqlite3_reset(st);
	if (!(st = api_stmt(r, "SELECT rule, count(*) FROM alerts WHERE state = 'firing'"
			    " GROUP BY rule"))) {
		json_decref(list);
		return r->status;
	}
	by = json_object();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_object_set_new(by, (const char *)sqlite3_column_text(st, 0),
				    json_integer(sqlite3_column_int64(st, 1)));
		firing += sqlite3_column_int(st, 1);
	}
	if (rc != SQLITE_DONE) {
		json_decref(list);
		json_decref(by);
		return api_db_fail(r, st);
	}
	sqlite3_reset(st);
	out = json_pack("{s:o, s:o, s:i, s:o}", "alerts", list, "next_before",
			n == limit ? json_integer(last) : json_null(), "firing", firing,
			"firing_by_rule", by);
	return api_json(r, 200, out);
}

/* The row of sql (?1 = id, ?9 = now) as JSON by to_json; NULL after an
 * answer (404 naming what, 500). */
static json_t *row_by_id(struct api_req *r, const char *sql, long long id, const char *what,
			 json_t *(*to_json)(sqlite3_stmt *))
{
	sqlite3_stmt *st = api_stmt(r, sql);
	json_t *o;
	int rc;

	if (!st)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 9, hive_wall_ms());
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		api_error(r, 404, "no %s %lld", what, id);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		api_db_fail(r, st);
		return NULL;
	}
	o = to_json(st);
	sqlite3_reset(st);
	return o;
}

/* One alert by id as its JSON, NULL after an answer (404, 500). */
static json_t *alert_by_id(struct api_req *r, long long id)
{
	return row_by_id(r, "SELECT " ALERT_COLS " FROM alerts a WHERE a.id = ?1", id, "alert",
			 alert_json);
}

static long long parse_id(const char *text)
{
	char *end;
	long long id = strtoll(text, &end, 10);

	return *text && !*end && id > 0 ? id : -1;
}

/* An audit row in the writer's transaction. */
static int audit(sqlite3 *db, int64_t now, const char *actor, const char *action,
		 const char *target, json_t *detail)
{
	sqlite3_stmt *st = NULL;
	char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int rc = sqlite3_prepare_v2(db, "INSERT INTO audit(ts_ms, actor, action, target, detail)"
				    " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_text(st, 2, actor && *actor ? actor : "api", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, target, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	free(text);
	return rc == SQLITE_DONE ? 0 : -1;
}

struct ack {
	long long id;
	const char *actor;
	const char *comment;
};

static int ack_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		   size_t errlen)
{
	const struct ack *k = arg;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *st = NULL;
	int64_t now = hive_wall_ms();
	char target[40];
	json_t *detail;
	int rc = sqlite3_prepare_v2(db, "UPDATE alerts SET acked_ms = ?2, acked_by = ?3"
				    " WHERE id = ?1 RETURNING rule, subject", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, k->id);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, k->actor, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		*http_status = 404;
		snprintf(err, errlen, "no alert %lld", k->id);
		return -1;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	detail = json_pack("{s:s, s:s}", "rule", (const char *)sqlite3_column_text(st, 0),
			   "subject", (const char *)sqlite3_column_text(st, 1));
	sqlite3_step(st);       /* RETURNING: run the statement to its end */
	sqlite3_finalize(st);
	if (detail && k->comment)
		json_object_set_new(detail, "comment", json_string(k->comment));
	snprintf(target, sizeof(target), "alert:%lld", k->id);
	rc = audit(db, now, k->actor, "alert.ack", target, detail);
	json_decref(detail);
	if (rc < 0) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

/* An optional comment from an optional body ({"comment": "..."}); -1
 * after an answer. *body gets the parsed object (the caller's). */
static int read_comment(struct api_req *r, json_t **body, const char **comment)
{
	const struct mg_request_info *ri = r->conn ? mg_get_request_info(r->conn) : NULL;
	json_t *v;

	*body = NULL;
	*comment = NULL;
	if (!ri || ri->content_length <= 0)
		return 0;
	if (!(*body = api_body_object(r)))
		return -1;
	if (api_body_allow(r, *body, (const char *const[]){ "comment", NULL }) < 0)
		return -1;
	if ((v = json_object_get(*body, "comment")) != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) > COMMENT_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return api_error(r, 400, "comment: a string of at most %d characters",
					 COMMENT_MAX), -1;
		*comment = json_string_value(v);
	}
	return 0;
}

int api_alert_ack(struct api_req *r, const char *id_text)
{
	struct ack k = { .id = parse_id(id_text), .actor = r->actor };
	json_t *body = NULL, *o;
	char err[256] = "";
	int status = 0;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (k.id < 0)
		return api_error(r, 400, "bad alert id '%.32s'", id_text);
	if (read_comment(r, &body, &k.comment) < 0) {
		json_decref(body);
		return r->status;
	}
	if (apid_writer_run_within(r->apid->writer, ack_run, &k, APID_WRITER_API_WAIT_MS,
				   &status, err, sizeof(err)) < 0) {
		json_decref(body);
		return api_error(r, status >= 400 && status < 600 ? status : 503, "%s",
				 err[0] ? err : "not recorded");
	}
	json_decref(body);
	log_info("alert acknowledged id=%lld actor=%s", k.id, r->actor);
	if (!(o = alert_by_id(r, k.id)))
		return r->status;
	return api_json(r, 200, json_pack("{s:o}", "alert", o));
}

/* ------------------------------------------------------------ silences */

#define SILENCE_COLS "id, rule, mac, created_ms, ends_ms, created_by, comment, ends_ms > ?9"

static json_t *silence_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "id", "rule", "miner", "created", "ends",
					    "created_by", "comment", NULL };
	json_t *o = json_object();

	if (!o)
		return NULL;
	api_set_cols(o, st, 0, cols);
	api_set(o, "active", api_col_bool(st, 7));
	return o;
}

static json_t *silence_by_id(struct api_req *r, long long id)
{
	return row_by_id(r, "SELECT " SILENCE_COLS " FROM silences WHERE id = ?1", id, "silence",
			 silence_json);
}

int api_silences_list(struct api_req *r)
{
	static const char *const allowed[] = { "all", "limit", "before", NULL };
	long long limit, before;
	int all;
	sqlite3_stmt *st;

	if (api_params_allow(r, allowed) < 0 || api_param_bool(r, "all", &all) < 0 ||
	    api_param_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) < 0 ||
	    api_param_int(r, "before", 1, BEFORE_MAX, BEFORE_MAX, &before) < 0)
		return r->status;
	st = api_stmt(r, "SELECT " SILENCE_COLS " FROM silences WHERE id < ?1"
		      " AND (?2 OR ends_ms > ?9) ORDER BY id DESC LIMIT ?3");
	if (!st)
		return r->status;
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int(st, 2, all == 1);
	sqlite3_bind_int64(st, 3, limit);
	sqlite3_bind_int64(st, 9, hive_wall_ms());
	return api_send_rows(r, st, silence_json, "silences");
}

struct silence_req {
	const char *rule;        /* NULL: any */
	const char *mac;         /* NULL: any */
	long long seconds;
	const char *comment;
	const char *actor;
	long long id;            /* create: out; delete: in */
};

static int silence_create_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
			      size_t errlen)
{
	struct silence_req *q = arg;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *st = NULL;
	int64_t now = hive_wall_ms();
	char target[40];
	json_t *detail;
	int rc = sqlite3_prepare_v2(db, "INSERT INTO silences(rule, mac, created_ms, ends_ms,"
				    " created_by, comment) VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &st,
				    NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, q->rule, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, q->mac, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, now + q->seconds * 1000);
		sqlite3_bind_text(st, 5, q->actor, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, q->comment, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	q->id = sqlite3_last_insert_rowid(db);
	detail = json_pack("{s:o, s:o, s:I}", "rule", q->rule ? json_string(q->rule) : json_null(),
			   "miner", q->mac ? json_string(q->mac) : json_null(), "seconds",
			   (json_int_t)q->seconds);
	if (detail && q->comment)
		json_object_set_new(detail, "comment", json_string(q->comment));
	snprintf(target, sizeof(target), "silence:%lld", q->id);
	rc = audit(db, now, q->actor, "silence.create", target, detail);
	json_decref(detail);
	if (rc < 0) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

int api_silences_post(struct api_req *r)
{
	static const char *const allowed[] = { "rule", "miner", "seconds", "comment", NULL };
	struct silence_req q = { .actor = r->actor };
	json_t *body = api_body_object(r), *v, *o;
	char mac[API_MAC_LEN + 1], err[256] = "";
	int status = 0;

	if (!body)
		return r->status;
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0 ||
	    api_body_allow(r, body, allowed) < 0)
		goto out;
	if ((v = json_object_get(body, "rule")) != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || hive_alert_rule_parse(json_string_value(v)) < 0) {
			api_error(r, 400, "rule: one of the rules of docs/alerts.md");
			goto out;
		}
		q.rule = json_string_value(v);
	}
	if ((v = json_object_get(body, "miner")) != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || api_mac_parse(json_string_value(v), mac) < 0) {
			api_error(r, 400, "miner: a MAC like aa:bb:cc:dd:ee:ff");
			goto out;
		}
		q.mac = mac;
	}
	if (!q.rule && !q.mac) {
		api_error(r, 400, "a silence needs a rule, a miner or both");
		goto out;
	}
	v = json_object_get(body, "seconds");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > SILENCE_MAX_S) {
		api_error(r, 400, "seconds: a whole number from 1 to %d", SILENCE_MAX_S);
		goto out;
	}
	q.seconds = json_integer_value(v);
	if ((v = json_object_get(body, "comment")) != NULL && !json_is_null(v)) {
		if (!json_is_string(v) || json_string_length(v) > COMMENT_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			api_error(r, 400, "comment: a string of at most %d characters", COMMENT_MAX);
			goto out;
		}
		q.comment = json_string_value(v);
	}
	if (apid_writer_run_within(r->apid->writer, silence_create_run, &q,
				   APID_WRITER_API_WAIT_MS, &status, err, sizeof(err)) < 0) {
		api_error(r, status >= 400 && status < 600 ? status : 503, "%s",
			  err[0] ? err : "not recorded");
		goto out;
	}
	log_info("silence created id=%lld rule=%s miner=%s seconds=%lld actor=%s", q.id,
		 q.rule ? q.rule : "*", q.mac ? q.mac : "*", q.seconds, r->actor);
	if ((o = silence_by_id(r, q.id)) != NULL)
		api_json(r, 201, json_pack("{s:o}", "silence", o));
out:
	json_decref(body);
	return r->status;
}

static int silence_end_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
			   size_t errlen)
{
	struct silence_req *q = arg;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *st = NULL;
	int64_t now = hive_wall_ms();
	char target[40];
	int rc = sqlite3_prepare_v2(db, "UPDATE silences SET ends_ms = min(ends_ms, ?2)"
				    " WHERE id = ?1", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, q->id);
		sqlite3_bind_int64(st, 2, now);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	if (sqlite3_changes(db) == 0) {
		*http_status = 404;
		snprintf(err, errlen, "no silence %lld", q->id);
		return -1;
	}
	snprintf(target, sizeof(target), "silence:%lld", q->id);
	if (audit(db, now, q->actor, "silence.delete", target, NULL) < 0) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

int api_silence_delete(struct api_req *r, const char *id_text)
{
	struct silence_req q = { .actor = r->actor, .id = parse_id(id_text) };
	char err[256] = "";
	int status = 0;
	json_t *o;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (q.id < 0)
		return api_error(r, 400, "bad silence id '%.32s'", id_text);
	if (apid_writer_run_within(r->apid->writer, silence_end_run, &q, APID_WRITER_API_WAIT_MS,
				   &status, err, sizeof(err)) < 0)
		return api_error(r, status >= 400 && status < 600 ? status : 503, "%s",
				 err[0] ? err : "not recorded");
	log_info("silence ended id=%lld actor=%s", q.id, r->actor);
	if (!(o = silence_by_id(r, q.id)))
		return r->status;
	return api_json(r, 200, json_pack("{s:o}", "silence", o));
}
