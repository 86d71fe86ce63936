/* traffic — the counters of what arrived on bus.events from whom: per
 * source received/stored/rejected/lost (sequence gaps), rejections by
 * reason, the daemons' heartbeats, the last sweep of each subnet.
 *
 * The receive thread counts what arrives (apid_traffic_received) and what
 * it refuses; the writer thread what it stored or refused; health and
 * metrics read snapshots. Thread-safe. */
#ifndef APID_TRAFFIC_H
#define APID_TRAFFIC_H

#include <stdint.h>
#include <jansson.h>

#include "event.h"

struct hive_envelope;

/* Counters of one source ("<daemon>/<host>/<pid>"); owned by the traffic
 * record and never freed while it lives, so queue items may point at one. */
struct apid_source;
struct apid_traffic;

/* NULL on allocation failure. */
struct apid_traffic *apid_traffic_new(void);
void apid_traffic_free(struct apid_traffic *t);

/* The source record for src (created on first use). */
struct apid_source *apid_traffic_source(struct apid_traffic *t, const char *src);
/* Counts one arrived envelope and its sequence gap (logged, rate-limited);
 * returns its source. *last caches the previous source between calls. */
struct apid_source *apid_traffic_received(struct apid_traffic *t, const struct hive_envelope *env,
					  struct apid_source **last);
void apid_traffic_stored(struct apid_traffic *t, struct apid_source *s, uint64_t n);
void apid_traffic_rejected(struct apid_traffic *t, struct apid_source *s, enum apid_reject r);
void apid_traffic_unattributed_error(struct apid_traffic *t);
void apid_traffic_heartbeat(struct apid_traffic *t, const struct hive_envelope *env,
			    const struct hive_msg_heartbeat *hb);
void apid_traffic_sweep(struct apid_traffic *t, const char *subnet, long long ts_ms,
			long long started_ms, long long duration_ms, long long probed,
			long long answered, long long miners);

/* Snapshot for health and metrics: new reference,
 * {"received","stored","rejected","lost","duplicates","unattributed_errors",
 *  "rejected_by":{reason:n}, "sources":[{"src","received","stored","rejected","lost",
 *  "last_ms"}], "daemons":[...], "sweeps":[...]} */
json_t *apid_traffic_snapshot(struct apid_traffic *t, int64_t now_wall_ms);

#endif
