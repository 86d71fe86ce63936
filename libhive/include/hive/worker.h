/* worker — the loop PowerHive's stateless workers share (pollerd,
 * telemetryd): pull jobs from apid, keep at most a given number in flight,
 * publish results and typed errors, and heartbeat with counters.
 *
 * A worker dials its job queue (PULL, one job buffered per connection, so a
 * busy worker does not hoard jobs other workers could take) and the events
 * bus (PUBLISH). When its in-flight cap is reached it stops reading the job
 * socket until a job finishes; nng then hands new jobs to other workers.
 * Jobs whose deadline has passed (or is less than half a second away) are
 * dropped and counted as expired: a worker's backlog must not show as a
 * miner's timeout. Nothing
 * is kept between jobs: a job carries the miner's address and API key.
 *
 * The daemon supplies one callback that starts a job (usually one or two
 * firmware-client requests on the same hive_loop) and ends every started
 * job with exactly one hive_worker_done or hive_worker_fail.
 *
 * Everything runs on the loop's thread. docs/workers.md has the story.
 */
#ifndef HIVE_WORKER_H
#define HIVE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "hive/daemon.h"
#include "hive/fw.h"
#include "hive/loop.h"

struct hive_worker;

/* One job, as pulled. Owned by the worker: valid from the start callback
 * until hive_worker_done/hive_worker_fail returns. */
struct hive_worker_job {
	struct hive_worker *w;
	long long id;                /* "job" */
	char mac[18];                /* lower case */
	char ip[46];
	int port;                    /* the job's, else network.port */
	char api_key[128];
	long long deadline_ms;       /* wall clock; 0 = none */
	char endpoint[16];           /* telemetry: "chains", "boards" or "" */
	int64_t started_ms;          /* monotonic, when it was pulled */
	int timeout_ms;              /* for each miner request: http_timeout_ms,
				      * shortened to what is left before the deadline */
	void *priv;                  /* the daemon's */
	struct hive_worker_job *prev, *next;
};

/* Starts job: returns 0 when it will end with hive_worker_done or
 * hive_worker_fail (never from inside this call is fine too), or -1 when
 * nothing was started (the worker then fails the job as "internal"). */
typedef int hive_worker_start_cb(struct hive_worker_job *job, void *arg);
/* Called at shutdown for each job still in flight, after the firmware
 * client was freed: release job->priv. May be NULL. */
typedef void hive_worker_abort_cb(struct hive_worker_job *job, void *arg);

struct hive_worker_spec {
	const char *job_topic;       /* HIVE_TOPIC_JOB_STATUS, ... */
	const char *result_topic;    /* HIVE_TOPIC_STATUS_RESULT, ... */
	const char *op;              /* hive.miner.error op: "status", "telemetry" */
	const char *jobs_url;        /* bus.jobs_status / bus.jobs_telemetry */
	hive_worker_start_cb *start;
	hive_worker_abort_cb *abort;
	void *arg;
};

/* Opens the job and event sockets (dialling: apid may come later), watches
 * the job socket on loop and arms the heartbeat. d must outlive the worker
 * (its cfg is read again after a reload). NULL with a message in err. */
struct hive_worker *hive_worker_new(const struct hive_daemon *d, struct hive_loop *loop,
				    const struct hive_worker_spec *spec, char *err, size_t errlen);
/* Closes the sockets and frees every job left (calling spec->abort). Free
 * the firmware client before this. Bounded: a socket nng cannot close is
 * given up after libhive's bus close wait, and the job socket, the one
 * that can get stuck, is closed last. NULL is fine. */
void hive_worker_free(struct hive_worker *w);
/* After a reload: takes the new in-flight cap, timeouts and heartbeat
 * period from d->cfg. Bus addresses are fixed at start (logged when they
 * changed). */
void hive_worker_configure(struct hive_worker *w);

/* Ends job with its result: adds "job", "mac", "ip" and "latency_ms" to
 * body, publishes it under the result topic, counts it, frees job. Steals
 * body (NULL counts as an internal failure). */
void hive_worker_done(struct hive_worker_job *job, json_t *body);
/* Ends job with an error: publishes hive.miner.error (op from the spec,
 * kind = hive_fw_err_name) and hive.job.failed, logs it rate-limited per
 * miner, counts it, frees job. */
void hive_worker_fail(struct hive_worker_job *job, const struct hive_fw_err *err);

/* Publishes body (borrowed) on the events bus. 0 / -1. */
int hive_worker_publish(struct hive_worker *w, const char *topic, json_t *body);

/* Jobs in flight now. */
int hive_worker_in_flight(const struct hive_worker *w);

struct hive_worker_stats {
	uint64_t received;           /* jobs pulled */
	uint64_t done;               /* results published */
	uint64_t failed;             /* ended with an error */
	uint64_t expired;            /* dropped: deadline passed or too close */
	uint64_t bad;                /* job bodies that could not be read */
	uint64_t failed_by[HIVE_FW_ERR_KINDS];
	uint64_t publish_failed;
	int in_flight;
	double latency_ms;           /* mean over the jobs ended since the last
				      * heartbeat (the previous mean when none) */
};
void hive_worker_get_stats(const struct hive_worker *w, struct hive_worker_stats *out);

/* ---- a worker daemon's whole main() ---- */

struct hive_worker_main_spec {
	struct hive_daemon_spec daemon;  /* name and --help line */
	/* The worker; jobs_url and arg are filled in: the job queue's
	 * address from the config (by job_topic), and the firmware client,
	 * which start and abort get as their arg. */
	struct hive_worker_spec worker;
	int requests_per_job;        /* firmware requests a job runs at once (>= 1) */
	size_t max_body;             /* largest miner answer; 0 = the client's default */
};

/* Options, config and logging (hive_daemon_start), a loop, a firmware
 * client for http_concurrency jobs, the worker; then runs until SIGTERM or
 * SIGINT, reloading on SIGHUP. Returns the process's exit status. */
int hive_worker_main(const struct hive_worker_main_spec *spec, int argc, char **argv);

/* ---- bodies every daemon publishes (also used by discoverd) ---- */

/* hive.daemon.heartbeat body: {"daemon","host","pid","started","counters",
 * "in_flight","latency_ms"}. Steals counters (an object). New reference or
 * NULL. */
json_t *hive_worker_heartbeat_body(const struct hive_daemon *d, json_t *counters,
				   int in_flight, double latency_ms);
/* hive.miner.error body: {"mac","ip","op","kind","http_status","message"}
 * plus "job" when job > 0. mac and ip may be NULL (sent as ""). New
 * reference or NULL. */
json_t *hive_worker_error_body(const char *mac, const char *ip, const char *op,
			       const struct hive_fw_err *err, long long job);

#endif
