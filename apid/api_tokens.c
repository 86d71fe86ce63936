/* api_tokens — the API's named tokens (docs/api.md "Tokens and roles"):
 * a request's token looked up by its SHA-256, GET /api/whoami, and
 * GET/POST /api/tokens, DELETE /api/tokens/{name} (admin). A new token is
 * answered once and never stored; creating and revoking are writer
 * requests with their audit rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "apply.h"
#include "auth.h"
#include "core.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "writer.h"

/* last_used is written at most about once a minute per token: it tells
 * a token in use from a forgotten one, and a write per request would
 * cost the writer more than the answer. */
#define LAST_USED_STEP_MS 60000

#define TOKEN_COLS "name, role, created_ms, created_by, revoked_ms, last_used_ms"

static json_t *token_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "name", "role", "created", "created_by", "revoked",
					    "last_used", NULL };
	json_t *o = json_object();

	if (o)
		api_set_cols(o, st, 0, cols);
	return o;
}

/* ------------------------------------------------------------ lookup */

struct used {
	char name[APID_TOKEN_NAME_MAX + 1];
	long long at_ms;
};

static int used_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		    size_t errlen)
{
	const struct used *u = arg;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(apid_apply_db(ap),
				    "UPDATE tokens SET last_used_ms = ?2 WHERE name = ?1"
				    " AND coalesce(last_used_ms, 0) < ?2", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, u->at_ms);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*http_status = 503;
		snprintf(err, errlen, "token last_used not recorded");
		return -1;
	}
	return 0;
}

int api_token_lookup(struct api_req *r, const char *token)
{
	char hash[65];
	sqlite3_stmt *st;
	long long now = hive_wall_ms(), last;
	int rc;

	apid_token_hash(token, hash);
	st = api_stmt(r, "SELECT name, role, coalesce(last_used_ms, 0) FROM tokens"
		      " WHERE hash = ?1 AND revoked_ms IS NULL");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return api_db_fail(r, st), -1;
	snprintf(r->actor, sizeof(r->actor), "%s", (const char *)sqlite3_column_text(st, 0));
	r->role = apid_role_parse((const char *)sqlite3_column_text(st, 1));
	last = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	if (r->role == APID_ROLE_NONE)
		return 0;
	if (now - last >= LAST_USED_STEP_MS) {
		struct used *u = malloc(sizeof(*u));

		if (u) {
			snprintf(u->name, sizeof(u->name), "%.64s", r->actor);
			u->at_ms = now;
			/* refused only while stopping (and then freed) */
			(void)apid_writer_post(r->apid->writer, used_run, u, free);
		}
	}
	return 1;
}

int api_whoami(struct api_req *r)
{
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	return api_json(r, 200, json_pack("{s:s, s:s}", "name", r->actor, "role",
					  apid_role_name(r->role)));
}

/* ------------------------------------------------------------ list */

int api_tokens_list(struct api_req *r)
{
	sqlite3_stmt *st;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (!(st = api_stmt(r, "SELECT " TOKEN_COLS " FROM tokens ORDER BY name")))
		return r->status;
	return api_send_rows(r, st, token_json, "tokens");
}

/* ------------------------------------------------------------ create, revoke */

struct token_change {
	const char *name;
	const char *role;        /* create only */
	const char *hash;        /* create only */
	const char *actor;
	long long now;
};

static int audit(sqlite3 *db, const struct token_change *c, const char *action)
{
	sqlite3_stmt *st = NULL;
	char detail[64];
	int rc = sqlite3_prepare_v2(db, "INSERT INTO audit(ts_ms, actor, action, target, detail)"
				    " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &st, NULL);

	snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", c->role ? c->role : "");
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, c->now);
		sqlite3_bind_text(st, 2, c->actor, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, c->name, -1, SQLITE_STATIC);
		if (c->role)
			sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int create_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		      size_t errlen)
{
	const struct token_change *c = arg;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "INSERT INTO tokens(name, role, hash, created_ms,"
				    " created_by) VALUES(?1, ?2, ?3, ?4, ?5)"
				    " ON CONFLICT DO NOTHING", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->role, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, c->hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, c->now);
		sqlite3_bind_text(st, 5, c->actor, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	if (sqlite3_changes(db) == 0) {
		*http_status = 409;
		snprintf(err, errlen, "a token named '%s' exists (a revoked token keeps its name,"
			 " so that the audit's names stay unambiguous)", c->name);
		return -1;
	}
	if (audit(db, c, "token.create") < 0) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

int api_tokens_post(struct api_req *r)
{
	json_t *body = api_body_object(r), *name, *role;
	struct token_change c = { .actor = r->actor, .now = hive_wall_ms() };
	char token[65], hash[65], err[256] = "";
	const char *why;
	int status = 0;

	if (!body)
		return r->status;
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0 ||
	    api_body_allow(r, body, (const char *const[]){ "name", "role", NULL }) < 0)
		goto out;
	name = json_object_get(body, "name");
	role = json_object_get(body, "role");
	if (!json_is_string(name) || strlen(json_string_value(name)) != json_string_length(name)) {
		api_error(r, 400, "name: a string is required");
		goto out;
	}
	if ((why = apid_token_name_refused(json_string_value(name)))) {
		api_error(r, 400, "name '%.64s': %s", json_string_value(name), why);
		goto out;
	}
	if (!json_is_string(role) || apid_role_parse(json_string_value(role)) == APID_ROLE_NONE) {
		api_error(r, 400, "role: one of viewer, operator, admin");
		goto out;
	}
	c.name = json_string_value(name);
	c.role = json_string_value(role);
	if (apid_token_generate(token) < 0) {
		api_error(r, 500, "no random bytes for a token");
		goto out;
	}
	apid_token_hash(token, hash);
	c.hash = hash;
	if (apid_writer_run(r->apid->writer, create_run, &c, &status, err, sizeof(err)) < 0) {
		api_error(r, status >= 400 && status < 600 ? status : 503, "%s",
			  err[0] ? err : "not recorded");
		goto out;
	}
	log_info("api token created name=%s role=%s actor=%s", c.name, c.role, r->actor);
	api_json(r, 201, json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", c.name, "role", c.role,
				   "created", (json_int_t)c.now, "created_by", r->actor,
				   "token", token));
out:
	explicit_bzero(token, sizeof(token));
	json_decref(body);
	return r->status;
}

static int revoke_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		      size_t errlen)
{
	const struct token_change *c = arg;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "UPDATE tokens SET revoked_ms = ?2 WHERE name = ?1"
				    " AND revoked_ms IS NULL", -1, &st, NULL);
	int changed;

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, c->now);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	changed = sqlite3_changes(db);
	if (rc != SQLITE_DONE || (changed && audit(db, c, "token.revoke") < 0)) {
		*http_status = 503;
		snprintf(err, errlen, "database error");
		return -1;
	}
	return 0;
}

int api_token_revoke(struct api_req *r, const char *name)
{
	struct token_change c = { .name = name, .actor = r->actor, .now = hive_wall_ms() };
	char err[256] = "";
	int status = 0, rc;
	sqlite3_stmt *st;
	json_t *o;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (strcmp(name, APID_TOKEN_BOOTSTRAP) == 0)
		return api_error(r, 400, "the bootstrap token is http.auth.token, "
				 "POWERHIVE_API_TOKEN or the token file: change it there and "
				 "restart apid");
	if (apid_writer_run(r->apid->writer, revoke_run, &c, &status, err, sizeof(err)) < 0)
		return api_error(r, status >= 400 && status < 600 ? status : 503, "%s",
				 err[0] ? err : "not recorded");
	if (!(st = api_stmt(r, "SELECT " TOKEN_COLS " FROM tokens WHERE name = ?1")))
		return r->status;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return api_error(r, 404, "no token named '%.64s'", name);
	}
	if (rc != SQLITE_ROW)
		return api_db_fail(r, st);
	o = token_json(st);
	sqlite3_reset(st);
	log_info("api token revoked name=%s actor=%s", name, r->actor);
	return api_json(r, 200, json_pack("{s:o}", "token", o ? o : json_null()));
}
