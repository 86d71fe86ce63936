/* core.h — apid's insides: the hub and the interfaces between its parts.
 *
 *   ingest.c   receive thread (SUBSCRIBE bus.events) → writer queue; the
 *              decoding of every event body; counters per source; heartbeats
 *   writer.c   the writer thread: the only write connection (writer.h)
 *   sched.c    status/telemetry jobs (PUSH bus.jobs_*) on the main loop (sched.h)
 *   control.c  REP bus.control on its own thread
 *   feed.c     PUBLISH bus.feed on its own thread: what was stored
 *   health.c   apid_health / apid_metrics
 *   hub.c      the apid.h accessors
 *
 * The HTTP side sees none of this: it uses apid.h only.
 */
#ifndef APID_CORE_H
#define APID_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "apid.h"
#include "hive/bus.h"
#include "hive/daemon.h"
#include "hive/loop.h"
#include "event.h"

struct apid_writer;
struct apid_ingest;
struct apid_sched;
struct apid_feed;
struct apid_control;
struct apid_http;

/* The hub: owned by apid.c's main, read by every part. */
struct apid {
	struct hive_daemon d;            /* config, envelope source, boot */
	struct hive_loop *loop;
	struct apid_writer *writer;
	struct apid_ingest *ingest;
	struct apid_sched *sched;
	struct apid_feed *feed;
	struct apid_control *control;
	struct apid_http *http;
	struct hive_bus *events;         /* SUBSCRIBE, listens on bus.events */
	struct hive_bus *jobs_status;    /* PUSH, bus.jobs_status */
	struct hive_bus *jobs_telemetry; /* PUSH, bus.jobs_telemetry */
	struct hive_bus *control_bus;    /* REPLY, bus.control */
	struct hive_bus *feed_bus;       /* PUBLISH, bus.feed */
	int64_t started_ms;              /* wall clock */
	char db_path[HIVE_CFG_PATH_MAX]; /* fixed at start: a reload cannot move it */
};

/* ------------------------------------------------------------ ingest */

/* Counters of one source ("<daemon>/<host>/<pid>"); owned by the ingest
 * and never freed while it lives, so queue items may point at one. */
struct apid_source;

struct apid_ingest *apid_ingest_new(void);
void apid_ingest_free(struct apid_ingest *in);

/* Starts the receive thread: receive, count, enqueue into w — nothing else.
 * 0 / -1 with err. */
int apid_ingest_start(struct apid_ingest *in, struct hive_bus *events, struct apid_writer *w,
		      char *err, size_t errlen);
/* Stops the receive thread (the bus stays open). */
void apid_ingest_stop(struct apid_ingest *in);

/* The source record for src (created on first use). Thread-safe. */
struct apid_source *apid_ingest_source(struct apid_ingest *in, const char *src);
/* Called by the writer thread. */
void apid_ingest_stored(struct apid_ingest *in, struct apid_source *s, uint64_t n);
void apid_ingest_rejected(struct apid_ingest *in, struct apid_source *s, enum apid_reject r);
void apid_ingest_unattributed_error(struct apid_ingest *in);
void apid_ingest_heartbeat(struct apid_ingest *in, const struct hive_envelope *env,
			   const struct apid_ev_heartbeat *hb);
void apid_ingest_sweep(struct apid_ingest *in, const char *subnet, long long ts_ms,
		       long long started_ms, long long duration_ms, long long probed,
		       long long answered, long long miners);

/* Snapshot for health and metrics: new reference,
 * {"received","stored","rejected","lost","duplicates","unattributed_errors",
 *  "rejected_by":{reason:n}, "sources":[{"src","received","stored","rejected","lost",
 *  "last_ms"}], "daemons":[...], "sweeps":[...]} */
json_t *apid_ingest_snapshot(struct apid_ingest *in, int64_t now_wall_ms);

/* ------------------------------------------------------------ feed */

/* Starts the feed thread publishing on pub; it reads miner and model rows
 * through its own read-only connection to db_path. NULL with err. */
struct apid_feed *apid_feed_start(const char *db_path, struct hive_bus *pub, char *err,
				  size_t errlen);
void apid_feed_stop(struct apid_feed *f);
/* Called by the writer after a commit; never block (a full feed queue
 * drops and counts). apid_feed_status steals body. */
void apid_feed_status(struct apid_feed *f, const char *mac, long long id, long long ts_ms,
		      json_t *body);
void apid_feed_miner(struct apid_feed *f, const char *mac);
void apid_feed_model(struct apid_feed *f, const char *alias);
void apid_feed_stats(struct apid_feed *f, uint64_t *published, uint64_t *dropped);

/* ------------------------------------------------------------ control */

/* Starts the control thread answering requests on rep. NULL with err. */
struct apid_control *apid_control_start(struct apid *a, struct hive_bus *rep, char *err,
					size_t errlen);
void apid_control_stop(struct apid_control *c);
uint64_t apid_control_requests(struct apid_control *c);

#endif
