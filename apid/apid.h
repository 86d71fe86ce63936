/* apid.h — the hub as the HTTP handlers see it (hub.c): the config, the
 * database's path, and the writes they may ask for. The hub's state
 * (core.h) stays out of their sight; health and metrics are in health.h
 * and metrics.h. */
#ifndef APID_H
#define APID_H

#include <stddef.h>

struct apid;
struct hive_cfg;
struct apid_action_request;

/* The running config (valid until the next reload on the main thread;
 * the HTTP side copies what it keeps). */
const struct hive_cfg *apid_cfg(struct apid *a);

/* Path of the database, for HTTP handlers' own read-only connections
 * (apid_store_open_readonly; WAL lets them read while the writer writes). */
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

/* Records n actions (actions.h) through the writer: 0 with ids[i] set
 * once committed, or -1 with *http_status (503) and err. */
int apid_request_actions(struct apid *a, const struct apid_action_request *req, size_t n,
			 long long *ids, int *http_status, char *err, size_t errlen);

#endif
