/* apid.h — what apid's parts share: the hub's state is private to apid.c;
 * the HTTP side reaches the rest through these calls only. */
#ifndef APID_H
#define APID_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "hive/cfg.h"

struct apid;

/* The running config (valid until the next reload on the main thread;
 * the HTTP side copies what it keeps). */
const struct hive_cfg *apid_cfg(struct apid *a);

/* Path of the database, for HTTP handlers' own read-only connections
 * (sqlite3_open_v2 with SQLITE_OPEN_READONLY; WAL lets them read while the
 * writer writes). */
const char *apid_db_path(struct apid *a);

/* Writes asked for over HTTP go through the writer thread; these block
 * until the change is committed (or refused). `actor` is written to the
 * audit log ("api" / token owner). On refusal return -1 with *http_status
 * (404 unknown miner/model, 422 bad value) and a message in err. */
int apid_patch_miner(struct apid *a, const char *mac, int managed /* -1: unchanged */,
		     const char *unlock_pass /* NULL: unchanged; "" refused */,
		     const char *actor, int *http_status, char *err, size_t errlen);
int apid_patch_model(struct apid *a, const char *alias,
		     const char *max_preset /* NULL: clear the limit */,
		     const char *actor, int *http_status, char *err, size_t errlen);

/* GET /api/health: daemons seen with their last heartbeat and counters,
 * workers connected, queue depths, events received/stored/rejected/lost
 * per source, scheduler counts, last sweep per subnet. New reference. */
json_t *apid_health(struct apid *a);

/* GET /metrics: Prometheus text exposition format, malloc'd, caller frees. */
char *apid_metrics(struct apid *a);

#endif
