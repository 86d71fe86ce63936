/* traffic — the counters of what arrived on bus.events from whom: per
 * source received/stored/rejected/lost (sequence gaps), rejections by
 * reason, the daemons' heartbeats, the last sweep of each subnet.
 *
 * The receive thread counts what arrives (apid_traffic_received) and what
 * it refuses; the writer thread what it stored or refused; health and
 * metrics read snapshots. Thread-safe. */
#ifndef APID_TRAFFIC_H
#define APID_TRAFFIC_H

#include <stddef.h>
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
/* A daemon said goodbye (hive.daemon.goodbye): the instance that sent it
 * (its source) is stopped, not missing, until it beats again. A source
 * that never beat is ignored. */
void apid_traffic_goodbye(struct apid_traffic *t, const struct hive_envelope *env,
			  const struct hive_msg_goodbye *g);
void apid_traffic_sweep(struct apid_traffic *t, const char *subnet, long long ts_ms,
			long long started_ms, long long duration_ms, long long probed,
			long long answered, long long miners);
/* What the subnet's last sweep did: miners marked offline, and miners it
 * did not list that stayed online because their polls answered. */
void apid_traffic_sweep_result(struct apid_traffic *t, const char *subnet, long long offline,
			       long long kept);
/* A sweep of the subnet whose list never arrived whole (counted). */
void apid_traffic_sweep_incomplete(struct apid_traffic *t, const char *subnet);
/* The MACs the subnet's last sweep listed that apid has no online miner
 * for (a hive.miner.seen lost on the way, a database started afresh):
 * copied, replacing the previous sweep's. */
void apid_traffic_sweep_strangers(struct apid_traffic *t, const char *subnet,
				  char (*macs)[HIVE_MAC_LEN], size_t n);
/* Calls fn for each subnet's strangers, under the lock (fn must not call
 * back into traffic). */
void apid_traffic_strangers_each(struct apid_traffic *t, void (*fn)(const char *mac, void *arg),
				 void *arg);

/* For the alert rules (alerts_farm.h), cheap: events lost so far
 * (sequence gaps, all sources), and a copy of up to max daemons seen
 * (heartbeats), returning how many were copied. */
struct apid_traffic_daemon {
	char daemon[64], host[128];
	long long pid, started;     /* started: the daemon's boot, wall ms */
	int64_t last_ms;            /* wall clock of its last heartbeat */
	int64_t stopped_ms;         /* wall clock of its goodbye; 0: none */
};
uint64_t apid_traffic_lost(struct apid_traffic *t);
size_t apid_traffic_daemons(struct apid_traffic *t, struct apid_traffic_daemon *out, size_t max);

/* Snapshot for health and metrics: new reference,
 * {"received","stored","rejected","lost","duplicates","unattributed_errors",
 *  "rejected_by":{reason:n}, "sources":[{"src","received","stored","rejected","lost",
 *  "last_ms"}], "daemons":[{..., "stopped_ms" once it said goodbye}], "sweeps":[{"subnet","ts_ms","age_ms","started_ms",
 *  "duration_ms","probed","answered","miners","offline","kept","incomplete"}],
 *  "sweeps_incomplete"} */
json_t *apid_traffic_snapshot(struct apid_traffic *t, int64_t now_wall_ms);

#endif
