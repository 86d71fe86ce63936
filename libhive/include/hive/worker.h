/* worker — the loop PowerHive's stateless workers share (pollerd,
 * telemetryd): pull jobs from apid, keep at most a given number in flight,
 * publish results and typed errors, and heartbeat with counters.
 *
 * A worker dials its job queue (PULL, one job buffered per connection, so a
 * busy worker does not hoard jobs other workers could take) and the events
 * bus (PUBLISH). When its in-flight cap is reached it stops reading the job
 * socket until a job finishes; nng then hands new jobs to other workers.
 * Jobs whose deadline has passed (or, for jobs apid stops waiting for at
 * the deadline, is less than half a second away) are dropped and counted
 * as expired: a worker's backlog must not show as a miner's timeout, and a
 * control job run late could undo a newer action. Nothing is kept between
 * jobs: a job carries the miner's address and API key.
 *
 * A worker may take a second kind of job on a queue of its own
 * (hive_worker_add_queue: pollerd's control jobs beside its status jobs).
 * Each queue has its own socket, in-flight budget and counters, so a job of
 * one never waits behind the other's; they share the events socket and the
 * heartbeat. A queue given a loop of its own runs on a thread of its own
 * driving that loop, so its jobs never wait for a round of the other
 * queue's work either.
 *
 * The daemon supplies one callback per queue that starts a job (usually
 * one or two firmware-client requests on the queue's hive_loop) and ends
 * every started job with exactly one hive_worker_done or hive_worker_fail.
 *
 * A queue's callbacks, and the hive_worker_done/fail of its jobs, run on
 * its loop's thread. docs/workers.md has the story.
 */
#ifndef HIVE_WORKER_H
#define HIVE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "hive/daemon.h"
#include "hive/fw.h"
#include "hive/loop.h"
#include "hive/msg.h"

struct hive_worker;
struct hive_worker_queue;

#define HIVE_WORKER_KEY_MAX 512      /* a job's API key at most (the job table's limit) */

/* One job, as pulled (decoded with the job kind's table, hive/msg.h).
 * Owned by the worker: valid from the start callback until
 * hive_worker_done/hive_worker_fail returns. */
struct hive_worker_job {
	struct hive_worker *w;
	long long id;                /* the job's id */
	char mac[HIVE_MAC_LEN];      /* normalised */
	char ip[HIVE_IPV4_LEN];
	int port;                    /* the job's, else network.port */
	char api_key[HIVE_WORKER_KEY_MAX + 1];
	long long deadline_ms;       /* wall clock; 0 = none */
	char endpoint[16];           /* telemetry: "chains", "boards" or "" */
	char nonce[HIVE_NONCE_CHARS + 1]; /* apid's, echoed in the result ("" = none) */
	/* The whole job as its kind's table decoded it: struct hive_msg_job
	 * (status, telemetry) or struct hive_msg_control_job. Its strings live
	 * as long as the job. */
	const void *body;
	int64_t started_ms;          /* monotonic, when it was pulled */
	int64_t end_ms;              /* monotonic: every request over by then */
	int timeout_ms;              /* for the first miner request: http_timeout_ms,
				      * shortened to end_ms (hive_worker_time_left
				      * for a later one) */
	void *priv;                  /* the daemon's */
	/* the worker's */
	struct hive_worker_queue *queue;
	json_t *json;                /* what body's strings point into */
	struct hive_worker_job *prev, *next;
};

/* Checks what the job kind's table cannot (fields that depend on each
 * other). 0, or -1 with a message naming the field: the job is then bad
 * (counted, hive.job.failed kind=bad_field, no miner error). */
typedef int hive_worker_check_cb(const struct hive_worker_job *job, char *err, size_t errlen);
/* Starts job: returns 0 when it will end with hive_worker_done or
 * hive_worker_fail (never from inside this call is fine too), or -1 when
 * nothing was started (the worker then fails the job as "internal"). */
typedef int hive_worker_start_cb(struct hive_worker_job *job, void *arg);
/* Called at shutdown for each job still in flight, after the firmware
 * client was freed: release job->priv. May be NULL. */
typedef void hive_worker_abort_cb(struct hive_worker_job *job, void *arg);

/* One queue of jobs. What the worker knows of each job kind (docs/workers.md):
 *   HIVE_MSG_JOB_STATUS, HIVE_MSG_JOB_TELEMETRY: counters jobs_*; apid
 *     stops waiting at the deadline, so every request ends by then;
 *   HIVE_MSG_JOB_CONTROL: counters control_jobs_*; the deadline is when
 *     the job may start at the latest, and a started job has
 *     control.job_timeout_seconds (at most one job timeout past its
 *     deadline, which is how long apid waits) for all its requests. */
/* The kind of hive.job.failed and hive.miner.error for a job refused
 * because its address is outside network.subnets. */
#define HIVE_WORKER_KIND_OUTSIDE_SUBNETS "outside_subnets"

struct hive_worker_spec {
	enum hive_msg_kind job_kind;    /* HIVE_MSG_JOB_STATUS, ... */
	enum hive_msg_kind result_kind; /* HIVE_MSG_STATUS_RESULT, ...: a kind whose
					 * struct starts with struct hive_msg_result_head */
	const char *op;              /* hive.miner.error op: "status", "telemetry", "control" */
	const char *jobs_url;        /* bus.jobs_status / _telemetry / _control */
	/* NULL: the worker's loop. Another: the queue runs on a thread of its
	 * own that drives this loop (put its firmware client on it too). */
	struct hive_loop *loop;
	hive_worker_check_cb *check; /* may be NULL */
	hive_worker_start_cb *start;
	hive_worker_abort_cb *abort;
	void *arg;
};

/* Opens the events socket and the first queue's job socket (dialling:
 * apid may come later), watches the job socket on loop and arms the
 * heartbeat. d must outlive the worker (its cfg is read again after a
 * reload). NULL with a message in err. */
struct hive_worker *hive_worker_new(const struct hive_daemon *d, struct hive_loop *loop,
				    const struct hive_worker_spec *spec, char *err, size_t errlen);
/* Adds a queue of another job kind, with an in-flight budget of its own
 * (network.http_concurrency jobs, beside the other queues'), on the loop
 * spec->loop names. 0, or -1 with a message in err (the worker is
 * unchanged). */
int hive_worker_add_queue(struct hive_worker *w, const struct hive_worker_spec *spec, char *err,
			  size_t errlen);
/* Stops the threads of queues with a loop of their own: their loops no
 * longer run (free their firmware clients after this). */
void hive_worker_stop(struct hive_worker *w);
/* Stops the threads, closes the sockets and frees every job left (calling
 * each spec->abort). Free the firmware clients before this. Bounded: a
 * socket nng cannot close is given up after libhive's bus close wait, and
 * the job sockets, the ones that can get stuck, are closed last, the first
 * queue's (the busiest) last of all. NULL is fine. */
void hive_worker_free(struct hive_worker *w);
/* After a reload: takes the new in-flight caps, timeouts and heartbeat
 * period from d->cfg. Bus addresses are fixed at start (logged when they
 * changed). */
void hive_worker_configure(struct hive_worker *w);

/* How long a further request of job may take, ms: network.http_timeout_ms
 * shortened to what is left before job->end_ms (0 or less: nothing left). */
int hive_worker_time_left(const struct hive_worker_job *job);

/* Ends job with its result: result is the spec's result_kind struct
 * (filled after hive_msg_init), whose head the worker fills in (job, mac,
 * ip, latency_ms); it is encoded with the kind's table and published,
 * counted, and job is freed. result stays the caller's: free what it
 * points to after the call. NULL, or a result that cannot be encoded,
 * fails the job as "internal". */
void hive_worker_done(struct hive_worker_job *job, void *result);

/* A daemon stopping on purpose: fills hive.daemon.goodbye (reason
 * "signal"); hive_worker_goodbye removes the state file, publishes it on
 * bus.events and gives it a moment to leave before the sockets close
 * (hive_worker_main does so on SIGTERM/SIGINT). */
void hive_worker_goodbye_fill(struct hive_msg_goodbye *g, const struct hive_daemon *d);
void hive_worker_goodbye(struct hive_worker *w);
/* Ends job with an error: publishes hive.miner.error (op from the spec,
 * kind = hive_fw_err_name) and hive.job.failed, logs it rate-limited per
 * miner, counts it, frees job. */
void hive_worker_fail(struct hive_worker_job *job, const struct hive_fw_err *err);

/* Encodes body (the struct of kind) and publishes it on the events bus
 * under the kind's topic. 0 / -1 (counted as publish_failed). */
int hive_worker_publish(struct hive_worker *w, enum hive_msg_kind kind, const void *body);

/* Jobs in flight now, every queue. */
int hive_worker_in_flight(const struct hive_worker *w);

struct hive_worker_stats {
	uint64_t received;           /* jobs pulled */
	uint64_t done;               /* results published */
	uint64_t failed;             /* ended with an error */
	uint64_t expired;            /* dropped: deadline passed or too close */
	uint64_t bad;                /* job bodies that could not be read */
	uint64_t refused;            /* jobs for an address outside network.subnets */
	uint64_t failed_by[HIVE_FW_ERR_KINDS];
	uint64_t publish_failed;
	int in_flight;
	double latency_ms;           /* mean over the jobs ended since the last
				      * heartbeat (the previous mean when none) */
};
/* The counters of the queue of job_kind; -1 when the worker has none.
 * publish_failed is the worker's (every queue shows it). */
int hive_worker_get_stats(const struct hive_worker *w, enum hive_msg_kind job_kind,
			  struct hive_worker_stats *out);

/* ---- a worker daemon's whole main() ---- */

struct hive_worker_main_spec {
	struct hive_daemon_spec daemon;  /* name and --help line */
	/* The worker; jobs_url and arg are filled in: the job queue's
	 * address from the config (by job_kind), and the firmware client,
	 * which start and abort get as their arg. */
	struct hive_worker_spec worker;
	int requests_per_job;        /* firmware requests a job runs at once (>= 1) */
	size_t max_body;             /* largest miner answer; 0 = the client's default */
	/* Control jobs too, when control.start is set (job_kind
	 * HIVE_MSG_JOB_CONTROL): a second queue on bus.jobs_control with its
	 * own in-flight budget, on a loop and thread of their own, with a
	 * firmware client of their own (its arg): one request per job at a
	 * time, a fresh connection for each, so curl never sends a request
	 * again on a kept-alive connection that turns out closed (a reboot
	 * must not go twice). jobs_url, loop and arg are filled in. */
	struct hive_worker_spec control;
	/* Optional: a part of the daemon's own beside the worker (pollerd's
	 * plant reader). attach is called once the worker and its queues
	 * exist, with d for the config; non-zero is fatal (say why in the
	 * log). *state goes to detach, called at stop once the queues'
	 * threads stopped and before the worker is freed (so it may publish
	 * with hive_worker_publish until detach returns), and to counters,
	 * called on the main thread at each heartbeat: a new object of
	 * integers merged into the heartbeat's counters (NULL: none). */
	int (*attach)(struct hive_worker *w, const struct hive_daemon *d, void **state);
	void (*detach)(void *state);
	json_t *(*counters)(void *state);
};

/* Options, config and logging (hive_daemon_start), a loop, a firmware
 * client for http_concurrency jobs (and a loop, thread and client for
 * control jobs), the worker; then runs until SIGTERM or SIGINT, reloading
 * on SIGHUP. Returns the process's exit status. */
int hive_worker_main(const struct hive_worker_main_spec *spec, int argc, char **argv);

/* ---- bodies every daemon publishes (also used by discoverd) ---- */

/* Fills a hive.daemon.heartbeat body for d. counters (an object of
 * integers) is borrowed: keep it until the body is encoded. */
void hive_worker_heartbeat_fill(struct hive_msg_heartbeat *hb, const struct hive_daemon *d,
				json_t *counters, int in_flight, double latency_ms);
/* Fills a hive.miner.error body; http_status only when an HTTP answer
 * arrived, job only when > 0. mac and ip may be NULL or "" (not
 * attributed / not known). Strings are borrowed from op and err. */
void hive_worker_error_fill(struct hive_msg_miner_error *e, const char *mac, const char *ip,
			    const char *op, const struct hive_fw_err *err, long long job);

#endif
