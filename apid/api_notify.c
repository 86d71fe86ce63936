/* api_notify — GET /api/notifications (the outbox: each notification per
 * channel and its delivery state) and GET /api/alerts/channels (the
 * configured channels, without their secrets). notify.h delivers. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "core.h"
#include "notify.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define BEFORE_MAX   (LLONG_MAX / 2)

static json_t *notification_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "id", "key", "channel", "rule", "state", "status",
					    "attempts", "created", NULL };
	json_t *o = json_object();

	if (!o)
		return NULL;
	api_set_cols(o, st, 0, cols);
	/* When the next attempt is due: only while it is pending. */
	if (strcmp((const char *)sqlite3_column_text(st, 5), "pending") == 0)
		api_set(o, "next_attempt", api_col(st, 8));
	else
		api_set(o, "next_attempt", json_null());
	api_set(o, "delivered", api_col(st, 9));
	api_set(o, "last_error", api_col(st, 10));
	return o;
}

int api_notifications(struct api_req *r)
{
	static const char *const allowed[] = { "status", "limit", "before", NULL };
	const char *status = api_param(r, "status");
	long long limit, before, last = 0;
	sqlite3_stmt *st;
	bool first = true;
	int rc, n = 0;

	if (api_params_allow(r, allowed) < 0 ||
	    api_param_int(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) < 0 ||
	    api_param_int(r, "before", 1, BEFORE_MAX, BEFORE_MAX, &before) < 0)
		return r->status;
	if (status && strcmp(status, "pending") != 0 && strcmp(status, "delivered") != 0 &&
	    strcmp(status, "failed") != 0)
		return api_error(r, 400, "status: one of pending, delivered, failed");
	st = api_stmt(r, status ? "SELECT id, key, channel, rule, state, status, attempts,"
				  " created_ms, next_ms, delivered_ms, last_error FROM notifications"
				  " WHERE id < ?1 AND status = ?2 ORDER BY id DESC LIMIT ?3"
				: "SELECT id, key, channel, rule, state, status, attempts,"
				  " created_ms, next_ms, delivered_ms, last_error FROM notifications"
				  " WHERE id < ?1 ORDER BY id DESC LIMIT ?3");
	if (!st)
		return r->status;
	sqlite3_bind_int64(st, 1, before);
	if (status)
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, limit);
	api_out_start(r);
	api_out_raw(r, "{\"notifications\":[", 18);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!first)
			api_out_raw(r, ",", 1);
		first = false;
		last = sqlite3_column_int64(st, 0);
		n++;
		api_out_json(r, notification_json(st));
	}
	if (rc != SQLITE_DONE)
		return api_db_fail(r, st);
	sqlite3_reset(st);
	/* A full page may have more before it. */
	api_out_raw(r, "],\"next_before\":", 16);
	if (n == limit)
		api_out_int(r, last);
	else
		api_out_null(r);
	api_out_raw(r, "}", 1);
	return api_out_send(r, 200);
}

int api_alert_channels(struct api_req *r)
{
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	return api_json(r, 200, json_pack("{s:o}", "channels",
					  apid_notify_channels(r->apid->notify)));
}
