/* health — what apid knows about the fleet's plumbing and the fleet's
 * totals: the JSON of GET /api/health and hive.control.health (metrics.h
 * renders the same for GET /metrics).
 *
 * Health is asked for by HTTP workers, the control thread and the main
 * loop's watch. The fleet totals come from one query on a read-only
 * connection of health's own, run at most once a second whoever asks;
 * GET /api/health sends a text of the document rebuilt at most every
 * 250 ms by one of its callers while the others send the previous one.
 * That connection, the last figures and the last text live in struct
 * apid_health, which main creates and the hub points to. */
#ifndef APID_HEALTH_H
#define APID_HEALTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct apid;
struct apid_health;

/* The fleet totals' state for the database at db_path (copied); the
 * connection is opened at the first health request. NULL on allocation
 * failure; apid_health_free frees (closing the connection). */
struct apid_health *apid_health_new(const char *db_path);
void apid_health_free(struct apid_health *h);

/* The health document: daemons seen with their last heartbeat and
 * counters, workers connected, queue depths, events received, stored,
 * rejected and lost per source, scheduler counts, the last sweep per
 * subnet, the fleet totals (null when a->health is NULL or the database
 * cannot be read). Built afresh (the fleet totals up to a second old).
 * Thread-safe. New reference, NULL when out of memory. */
json_t *apid_health(struct apid *a);

/* The health document as GET /api/health sends it: compact JSON (as
 * api_json dumps) and a newline, len bytes at body; http_status 503 when
 * its "status" is "failing", else 200. */
struct apid_health_text {
	const char *body;
	size_t len;
	int http_status;
};

/* Whether apid cannot do its job now (the document's "failing": a write
 * the database refused within health.failing_seconds, a full disk under
 * the database), with the first reason in why. Cheap: no database, no
 * document. Thread-safe. */
bool apid_health_failing(struct apid *a, char *why, size_t whylen);

/* The last text of the document, rebuilt here first when it is 250 ms old
 * or more and nobody is rebuilding it (those asking meanwhile get the
 * previous one): at most ~250 ms plus one rebuild behind, its fleet totals
 * up to a second more. Thread-safe; the text is shared and read-only. NULL
 * when out of memory; else hand it back with apid_health_text_release. */
const struct apid_health_text *apid_health_text(struct apid *a);
void apid_health_text_release(const struct apid_health_text *t);

#endif
