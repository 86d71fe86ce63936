/* api_actions — /api/miners/{id}/actions, /api/actions (one miner, many, or
 * every miner a filter matches), the action history, and /api/audit.
 *
 * A request is checked against what the database says now — the miner
 * exists, is online and has a key, the preset is in its model's catalogue,
 * a managed miner's preset is at or under its model's max_preset — then
 * recorded through the writer (actions.c takes it from there). Refused
 * miners change nothing and are answered with the reason. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "api.h"
#include "core.h"
#include "power.h"
#include "apid.h"
#include "hive/log.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define BULK_MAX     100000
#define BEFORE_MAX   (LLONG_MAX / 2)

#define ACTION_COLS \
	"a.id, a.mac, a.kind, a.preset, a.state, a.actor, a.reason, a.created_ms," \
	" a.updated_ms, a.sent_ms, a.sends, a.error_kind, a.error"

static json_t *action_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "id", "miner", "action", "preset", "state", "actor",
					    "reason", "created", "updated", "sent", "sends", NULL };
	json_t *o = json_object();

	if (!o)
		return NULL;
	api_set_cols(o, st, 0, cols);
	if (sqlite3_column_type(st, 11) == SQLITE_NULL) {
		api_set(o, "error", json_null());
	} else {
		json_t *e = json_object();

		api_set(e, "kind", api_col(st, 11));
		api_set(e, "message", api_col(st, 12));
		api_set(o, "error", e);
	}
	return o;
}

/* ------------------------------------------------------------ checks */

/* What a request asks, read from the body. */
struct ask {
	enum apid_action_kind kind;
	char preset[64];
};

/* {"action": ..., "preset": ...}; -1 after a 400. */
static int read_ask(struct api_req *r, const json_t *body, struct ask *ask)
{
	json_t *a = json_object_get(body, "action"), *p = json_object_get(body, "preset");
	int k;

	if (!a || !json_is_string(a))
		return api_error(r, 400, "action: expected one of set_preset, restart, pause,"
				 " resume, reboot"), -1;
	if ((k = apid_action_kind_parse(json_string_value(a))) < 0)
		return api_error(r, 400, "action: unknown action '%.32s' (known: set_preset,"
				 " restart, pause, resume, reboot)", json_string_value(a)), -1;
	ask->kind = k;
	ask->preset[0] = '\0';
	if (k == APID_ACT_SET_PRESET) {
		if (!p || !json_is_string(p) || json_string_length(p) == 0 ||
		    json_string_length(p) >= sizeof(ask->preset))
			return api_error(r, 400, "preset: set_preset needs a preset name"), -1;
		snprintf(ask->preset, sizeof(ask->preset), "%s", json_string_value(p));
	} else if (p) {
		return api_error(r, 400, "preset: only set_preset takes a preset"), -1;
	}
	return 0;
}

/* Why mac may not get ask: 0 when it may; else the HTTP status (400, 404,
 * 409) with the reason in why; -1 after a database error answer. */
static int refuse(struct api_req *r, const char *mac, const struct ask *ask, char *why,
		  size_t len)
{
	static const char sql[] =
		"SELECT m.online, m.managed, coalesce(m.api_key, '') <> '', m.model, mo.max_preset,"
		" lim.watts, p.name IS NOT NULL, p.watts, m.pinned"
		" FROM miners m LEFT JOIN models mo ON mo.alias = m.model"
		" LEFT JOIN model_presets lim ON lim.model = m.model AND lim.name = mo.max_preset"
		" LEFT JOIN model_presets p ON p.model = m.model AND p.name = ?2"
		" WHERE m.mac = ?1";
	sqlite3_stmt *st = api_stmt(r, sql);
	int rc, out = 0;

	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ask->preset, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		snprintf(why, len, "no miner %s", mac);
		out = 404;
	} else if (rc != SQLITE_ROW) {
		api_db_fail(r, st);
		return -1;
	} else if (ask->kind == APID_ACT_SET_PRESET && !sqlite3_column_int(st, 6)) {
		snprintf(why, len, "preset '%s' is not in the catalogue of model %s", ask->preset,
			 sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3)
						    : "(unknown)");
		out = 400;
	} else if (!sqlite3_column_int(st, 0)) {
		snprintf(why, len, "miner %s is offline", mac);
		out = 409;
	} else if (!sqlite3_column_int(st, 2)) {
		snprintf(why, len, "miner %s has no API key yet", mac);
		out = 409;
	} else if ((ask->kind == APID_ACT_SET_PRESET || ask->kind == APID_ACT_PAUSE ||
		    ask->kind == APID_ACT_RESUME) && sqlite3_column_int(st, 1) &&
		   !sqlite3_column_int(st, 8) && apid_power_owns_presets(r->apid->power)) {
		/* The balancer would undo it on its next cycle. */
		snprintf(why, len, "miner %s is managed and the power balancer owns its preset "
			 "(power.mode on): pin it first (PATCH pinned: true)", mac);
		out = 409;
	} else if (ask->kind == APID_ACT_SET_PRESET && sqlite3_column_int(st, 1) &&
		   sqlite3_column_type(st, 4) != SQLITE_NULL &&
		   sqlite3_column_type(st, 5) != SQLITE_NULL &&
		   (strcmp(ask->preset, "disabled") == 0 ||
		    sqlite3_column_type(st, 7) == SQLITE_NULL ||
		    sqlite3_column_int64(st, 7) > sqlite3_column_int64(st, 5))) {
		snprintf(why, len, "miner %s is managed and preset '%s' is above its model's"
			 " max_preset '%s' (%lld W)", mac, ask->preset, sqlite3_column_text(st, 4),
			 (long long)sqlite3_column_int64(st, 5));
		out = 409;
	}
	sqlite3_reset(st);
	return out;
}

/* Records reqs through the writer; answers 503 and returns -1 on failure. */
static int record(struct api_req *r, const struct apid_action_request *reqs, size_t n,
		  long long *ids)
{
	char err[256] = "";
	int status = 0;

	if (n == 0)
		return 0;
	if (apid_request_actions(r->apid, reqs, n, ids, &status, err, sizeof(err)) < 0) {
		api_error(r, status >= 400 && status < 600 ? status : 503, "%s",
			  err[0] ? err : "not recorded");
		return -1;
	}
	return 0;
}

/* The action rows of ids, in order, as a JSON array. */
static json_t *actions_by_id(struct api_req *r, const long long *ids, size_t n)
{
	sqlite3_stmt *st = api_stmt(r, "SELECT " ACTION_COLS " FROM actions a WHERE a.id = ?");
	json_t *list = json_array();

	for (size_t i = 0; st && list && i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		if (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(list, action_json(st));
		sqlite3_reset(st);
	}
	return list;
}

static void fill_request(struct apid_action_request *q, const char *mac, const struct ask *ask,
			 const char *actor)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->mac, sizeof(q->mac), "%s", mac);
	q->kind = ask->kind;
	snprintf(q->preset, sizeof(q->preset), "%s", ask->preset);
	q->actor = actor;
}

/* ------------------------------------------------------------ POST */

int api_miner_action(struct api_req *r, const char *mac)
{
	static const char *const allowed[] = { "action", "preset", NULL };
	json_t *body = api_body_object(r), *one;
	struct apid_action_request q;
	struct ask ask;
	long long id = 0;
	char why[256];
	int rc;

	if (!body)
		return r->status;
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0 ||
	    api_body_allow(r, body, allowed) < 0 || read_ask(r, body, &ask) < 0)
		goto out;
	if ((rc = refuse(r, mac, &ask, why, sizeof(why))) != 0) {
		if (rc > 0)
			api_error(r, rc, "%s", why);
		goto out;
	}
	fill_request(&q, mac, &ask, r->actor);
	if (record(r, &q, 1, &id) < 0)
		goto out;
	json_decref(body);
	one = actions_by_id(r, &id, 1);
	rc = api_json(r, 202, json_pack("{s:O?}", "action", json_array_get(one, 0)));
	json_decref(one);
	return rc;
out:
	json_decref(body);
	return r->status;
}

int api_actions_post(struct api_req *r)
{
	static const char *const allowed[] = { "action", "preset", "miners", "filter", NULL };
	json_t *body = api_body_object(r), *miners, *filter, *refused = NULL, *v;
	struct apid_action_request *reqs = NULL;
	char (*macs)[HIVE_MAC_LEN] = NULL;
	long long *ids = NULL;
	size_t n = 0, nreq = 0, i;
	struct ask ask;

	if (!body)
		return r->status;
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0 ||
	    api_body_allow(r, body, allowed) < 0 || read_ask(r, body, &ask) < 0)
		goto out;
	miners = json_object_get(body, "miners");
	filter = json_object_get(body, "filter");
	if (!miners == !filter) {
		api_error(r, 400, "give either miners (a list of ids) or filter (the /api/miners"
			  " filters)");
		goto out;
	}
	if (miners) {
		if (!json_is_array(miners) || json_array_size(miners) == 0 ||
		    json_array_size(miners) > BULK_MAX) {
			api_error(r, 400, "miners: expected a list of 1 to %d miner ids", BULK_MAX);
			goto out;
		}
		if (!(macs = calloc(json_array_size(miners), sizeof(*macs)))) {
			api_error(r, 500, "out of memory");
			goto out;
		}
		json_array_foreach(miners, i, v) {
			if (!json_is_string(v) || api_mac_parse(json_string_value(v), macs[n]) < 0) {
				api_error(r, 400, "miners[%zu]: not a miner id (a MAC like"
					  " aa:bb:cc:dd:ee:ff)", i);
				goto out;
			}
			n++;
		}
	} else if (api_miners_matching(r, filter, &macs, &n) < 0) {
		goto out;
	}
	reqs = calloc(n ? n : 1, sizeof(*reqs));
	ids = calloc(n ? n : 1, sizeof(*ids));
	refused = json_array();
	if (!reqs || !ids || !refused) {
		api_error(r, 500, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		char why[256];
		int rc = refuse(r, macs[i], &ask, why, sizeof(why));
		bool dup = false;

		if (rc < 0)
			goto out;
		for (size_t k = 0; k < nreq && !dup; k++)
			dup = strcmp(reqs[k].mac, macs[i]) == 0;
		if (dup)
			continue;       /* one action per miner per request */
		if (rc > 0) {
			json_array_append_new(refused, json_pack("{s:s,s:i,s:s}", "miner", macs[i],
								 "status", rc, "error", why));
			continue;
		}
		fill_request(&reqs[nreq++], macs[i], &ask, r->actor);
	}
	if (record(r, reqs, nreq, ids) < 0)
		goto out;
	log_info("api actions action=%s%s%s miners=%zu accepted=%zu refused=%zu actor=%s",
		 apid_action_kind_name(ask.kind), ask.preset[0] ? " preset=" : "", ask.preset, n,
		 nreq, json_array_size(refused), r->actor);
	free(macs);
	free(reqs);
	json_decref(body);
	{
		json_t *list = actions_by_id(r, ids, nreq);

		free(ids);
		return api_json(r, 202, json_pack("{s:o,s:o}", "actions", list ? list : json_array(),
						   "refused", refused));
	}
out:
	free(macs);
	free(reqs);
	free(ids);
	json_decref(refused);
	json_decref(body);
	return r->status;
}

/* ------------------------------------------------------------ GET */

/* ?limit, ?before and ?miner of a history list, with allowed the
 * parameters it takes; mac is "" without ?miner. -1 after a 400. */
static int page_params(struct api_req *r, const char *const allowed[], long long *limit,
		       long long *before, char mac[API_MAC_LEN + 1])
{
	const char *miner = api_param(r, "miner");

	mac[0] = '\0';
	if (api_params_allow(r, allowed) < 0 ||
	    api_param_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, limit) < 0 ||
	    api_param_int(r, "before", 1, BEFORE_MAX, BEFORE_MAX, before) < 0)
		return -1;
	if (miner && api_mac_parse(miner, mac) < 0) {
		api_error(r, 400, "miner: not a miner id: '%.40s'", miner);
		return -1;
	}
	return 0;
}

/* {"<key>":[row(st) for every row]}, row by row into the answer. */
static int send_rows(struct api_req *r, sqlite3_stmt *st, const char *key,
		     json_t *(*row)(sqlite3_stmt *st))
{
	char head[32];
	bool first = true;
	int n = snprintf(head, sizeof(head), "{\"%s\":[", key), rc;

	api_out_start(r);
	api_out_raw(r, head, (size_t)n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!first)
			api_out_raw(r, ",", 1);
		first = false;
		api_out_json(r, row(st));
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	sqlite3_reset(st);
	api_out_raw(r, "]}", 2);
	return api_out_send(r, 200);
}

int api_actions_list(struct api_req *r)
{
	static const char *const allowed[] = { "miner", "state", "limit", "before", NULL };
	const char *state = api_param(r, "state");
	char mac[API_MAC_LEN + 1], sql[512];
	long long limit, before;
	sqlite3_stmt *st;

	if (page_params(r, allowed, &limit, &before, mac) < 0)
		return r->status;
	if (state && apid_action_state_parse(state) < 0 && strcmp(state, "open") != 0)
		return api_error(r, 400, "state: one of queued, sent, confirming, done, failed,"
				 " expired, superseded, open");
	snprintf(sql, sizeof(sql), "SELECT " ACTION_COLS " FROM actions a WHERE a.id < ?1%s%s"
		 " ORDER BY a.id DESC LIMIT ?4", mac[0] ? " AND a.mac = ?2" : "",
		 !state ? "" : strcmp(state, "open") == 0
			       ? " AND a.state IN ('queued', 'sent', 'confirming')"
			       : " AND a.state = ?3");
	if (!(st = api_stmt(r, sql)))
		return r->status;
	sqlite3_bind_int64(st, 1, before);
	if (mac[0])
		sqlite3_bind_text(st, 2, mac, -1, SQLITE_STATIC);
	if (state)
		sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, limit);
	return send_rows(r, st, "actions", action_json);
}

int api_action_get(struct api_req *r, const char *id_text)
{
	sqlite3_stmt *st;
	char *end;
	long long id = strtoll(id_text, &end, 10);
	int rc;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	if (!*id_text || *end || id <= 0)
		return api_error(r, 400, "bad action id '%.32s'", id_text);
	if (!(st = api_stmt(r, "SELECT " ACTION_COLS " FROM actions a WHERE a.id = ?")))
		return r->status;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return api_error(r, 404, "no action %lld", id);
	}
	if (rc != SQLITE_ROW)
		return api_db_fail(r, st);
	{
		json_t *o = action_json(st);

		sqlite3_reset(st);
		return api_json(r, 200, json_pack("{s:o}", "action", o ? o : json_null()));
	}
}

static json_t *audit_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "id", "ts", "actor", "action", "target", NULL };
	json_t *o = json_object();

	api_set_cols(o, st, 0, cols);
	api_set(o, "detail", api_col_json(st, 5));
	return o;
}

int api_audit_list(struct api_req *r)
{
	static const char *const allowed[] = { "miner", "limit", "before", NULL };
	char mac[API_MAC_LEN + 1];
	long long limit, before;
	sqlite3_stmt *st;

	if (page_params(r, allowed, &limit, &before, mac) < 0)
		return r->status;
	st = api_stmt(r, mac[0] ? "SELECT id, ts_ms, actor, action, target, detail FROM audit"
				  " WHERE id < ?1 AND target = ?2 ORDER BY id DESC LIMIT ?3"
				: "SELECT id, ts_ms, actor, action, target, detail FROM audit"
				  " WHERE id < ?1 ORDER BY id DESC LIMIT ?3");
	if (!st)
		return r->status;
	sqlite3_bind_int64(st, 1, before);
	if (mac[0])
		sqlite3_bind_text(st, 2, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, limit);
	return send_rows(r, st, "audit", audit_json);
}
