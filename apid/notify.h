/* notify — delivers the alert notifications of the outbox (the
 * notifications table, store.c migration 6) to the configured channels
 * (alerts.channels: webhook, slack, telegram, email).
 *
 * The alerts engine adds rows inside the writer's transaction
 * (apid_notify_enqueue) and kicks this part once they are committed. A
 * thread of its own reads the outbox through its own read-only connection
 * and sends with libcurl's multi interface, so a slow or dead receiver
 * never holds up ingest, the writer or the API. Per channel strictly in id
 * order: a channel's next row waits until the one before is delivered or
 * given up. Each attempt carries the same key (X-PowerHive-Delivery); a
 * failure is retried after 1, 2, 4 … seconds, at most
 * alerts.retry_max_seconds apart, until alerts.give_up_hours after the row
 * was made (status 'failed'). State changes are written through the
 * writer; what is pending when apid stops is sent after it starts again.
 * docs/alerts.md ("Delivery") describes what a receiver sees.
 */
#ifndef APID_NOTIFY_H
#define APID_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <sqlite3.h>

#include "hive/cfg.h"

struct apid;
struct apid_notify;

/* Starts the delivery thread with a copy of a->d.cfg's channels and
 * settings; a->writer must run until apid_notify_stop. NULL with a message
 * in err. */
struct apid_notify *apid_notify_start(struct apid *a, char *err, size_t errlen);
/* Outbox rows were committed: look now rather than at the next poll. */
void apid_notify_kick(struct apid_notify *n);
/* After a reload: the new channels and retry settings (copied). A row of a
 * channel no longer configured waits for it until it is given up. */
void apid_notify_configure(struct apid_notify *n, const struct hive_cfg *cfg);
/* Abandons transfers in flight (their rows stay pending) and joins the
 * thread; before apid_writer_stop. NULL is fine. */
void apid_notify_stop(struct apid_notify *n);

struct apid_notify_stats {
	uint64_t delivered;        /* rows delivered since start */
	uint64_t failed_attempts;  /* attempts that failed (retried later) */
	uint64_t given_up;         /* rows marked 'failed' */
	int64_t pending;           /* rows pending at the last look (-1: unknown yet) */
};
void apid_notify_get_stats(struct apid_notify *n, struct apid_notify_stats *out);

/* The configured channels as GET /api/alerts/channels shows them: name,
 * kind, url redacted to scheme://host/…, whether it is signed; never a
 * secret, a token or a chat id. New reference. */
json_t *apid_notify_channels(struct apid_notify *n);

/* "https://hooks.example.com/services/T0/B0/x" → "https://hooks.example.com/…"
 * (user info dropped too) into out; "" for "". */
void apid_notify_redact_url(const char *url, char *out, size_t outlen);

/* Inside the writer's transaction (db = the writer's connection): one
 * outbox row per configured channel for this notification; returns rows
 * added or -1. body is the generic webhook JSON (docs/alerts.md); its
 * "id" + "/" + channel name is the row's key (X-PowerHive-Delivery). A key
 * already in the outbox is not added again. */
int apid_notify_enqueue(sqlite3 *db, const struct hive_cfg *cfg, json_t *body, int64_t now_ms);

#endif
