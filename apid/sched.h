/* sched — turns the roster into status and telemetry jobs.
 *
 * Every online miner with an API key (only managed ones with
 * scheduler.managed_only) gets a status job each status interval and a
 * telemetry job each telemetry interval, PUSHed without blocking to
 * whichever workers are connected. A miner's slot inside the interval is
 * fixed (a hash of its MAC), so a cycle's jobs are spread evenly and a
 * miner is polled at a steady period. A miner never has two jobs of a kind
 * out: the next one waits for the result, a hive.job.failed, or the job
 * timeout.
 *
 * The scheduler runs on apid's main loop (apid_sched_tick); the writer
 * thread reports finished jobs (apid_sched_job_done). Thread-safe.
 */
#ifndef APID_SCHED_H
#define APID_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "hive/bus.h"

enum apid_job_kind {
	APID_JOB_STATUS,
	APID_JOB_TELEMETRY,
	APID_JOB_KINDS
};

struct apid_sched_opts {
	int64_t interval_ms[APID_JOB_KINDS]; /* intervals.status_seconds, .telemetry_seconds */
	int64_t job_timeout_ms;              /* scheduler.job_timeout_seconds */
	bool managed_only;
	int port;                            /* network.port: the miners' HTTP port */
};

/* One miner of the roster (copied by the scheduler). */
struct apid_roster_miner {
	const char *mac;
	const char *ip;
	const char *api_key;
	bool managed;
	const char *endpoint;                /* telemetry_source or NULL: "chains" */
};

struct apid_sched_counts {
	uint64_t sent;
	uint64_t done;            /* a result arrived for the job out */
	uint64_t failed;          /* hive.job.failed for the job out */
	uint64_t timed_out;
	uint64_t not_sent;        /* no worker connected or its queue full */
	uint64_t skipped_busy;    /* slot came while the previous job was out */
	uint64_t outstanding;     /* jobs out now */
};

struct apid_sched_stats {
	struct apid_sched_counts kind[APID_JOB_KINDS];
	uint64_t miners;          /* roster size */
	uint64_t eligible;        /* miners that get jobs (managed_only applied) */
	uint64_t roster_loads;
};

/* push[k] may be NULL (no jobs of that kind are sent; they count as not
 * sent). The sockets stay the caller's. NULL on allocation failure. */
struct apid_sched *apid_sched_new(const struct apid_sched_opts *o,
				  struct hive_bus *push_status, struct hive_bus *push_telemetry);
void apid_sched_free(struct apid_sched *s);
void apid_sched_configure(struct apid_sched *s, const struct apid_sched_opts *o);
/* The interval of a kind of job as configured now (ms); 0 for NULL. */
int64_t apid_sched_interval_ms(struct apid_sched *s, enum apid_job_kind k);

/* Replaces the roster; miners already known keep their slot and their job
 * out. 0 / -1 (allocation). */
int apid_sched_set_roster(struct apid_sched *s, const struct apid_roster_miner *m, size_t n,
			  int64_t now_ms);
/* Reads the roster from the database (a read-only connection). 0 / -1. */
int apid_sched_load_roster(struct apid_sched *s, sqlite3 *db, int64_t now_ms, char *err,
			   size_t errlen);

/* Times out overdue jobs and sends the jobs due at now_ms (monotonic).
 * Returns the delay in ms until something is due next (capped at 1000). */
int64_t apid_sched_tick(struct apid_sched *s, int64_t now_ms);

/* A result (ok) or a hive.job.failed (!ok) arrived for job of mac. Frees
 * the miner when job is the one it has out; anything else is ignored. */
void apid_sched_job_done(struct apid_sched *s, const char *mac, long long job, bool ok);

void apid_sched_get_stats(struct apid_sched *s, struct apid_sched_stats *out);

/* Where the nonce of every job sent is issued and remembered (guard.h;
 * the caller's, outliving s). Without one, jobs still carry a nonce. */
struct apid_guard;
void apid_sched_set_guard(struct apid_sched *s, struct apid_guard *g);

/* What opens the sealed API keys the roster reads (secrets.h; the
 * caller's, outliving s). Without it, or for a key that does not open, a
 * miner is left out of the roster (and the log says why, never the key). */
struct apid_secrets;
void apid_sched_set_secrets(struct apid_sched *s, const struct apid_secrets *secrets);

/* ---- control jobs (actions.c decides what and when) ---- */

/* The PUSH socket of bus.jobs_control (the caller's). */
void apid_sched_set_control_bus(struct apid_sched *s, struct hive_bus *push_control);
/* Sends one control job to mac at the address and with the key of the
 * roster, dropped by the worker after deadline_wall_ms. 0 with *job set;
 * 1 when no worker is ready; -1 when the miner is not in the roster
 * (offline or without a key) or the bus failed. */
int apid_sched_control(struct apid_sched *s, const char *mac, long long action, const char *kind,
		       const char *preset, int64_t deadline_wall_ms, long long *job);
/* Polls mac's status as soon as no status job of it is out (the read-back
 * of an action). */
void apid_sched_poll_soon(struct apid_sched *s, const char *mac);

/* A miner's slot: its offset inside an interval, from a hash of its MAC. */
int64_t apid_sched_slot(const char *mac, int64_t interval_ms);

#endif
