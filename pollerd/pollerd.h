/* pollerd — the status and control worker: takes hive.job.status jobs,
 * asks the miner for /summary and /perf-summary, publishes
 * hive.status.result; takes hive.job.control jobs (on a queue and an
 * in-flight budget of their own), makes the firmware call, publishes
 * hive.action.result; and takes hive.job.plant jobs, reads the plant's
 * power feed, publishes hive.plant.reading.
 *
 *   pollerd.c  main: what the jobs are (the rest is hive_worker_main)
 *   work.c     one status job: the two requests and joining their answers
 *   status.c   the hive.status.result body from the parsed answers
 *   control.c  one control job: the call(s) and the hive.action.result body
 *   plant.c    the plant reader: hive.job.plant jobs on a thread and socket of
 *              their own, each one hive_plant_read, answered with
 *              hive.plant.reading
 *
 * The shared worker loop (pull, in-flight cap, heartbeats, errors) is
 * libhive's hive/worker.h.
 */
#ifndef POLLERD_H
#define POLLERD_H

#include "hive/fw.h"
#include "hive/msg.h"
#include "hive/worker.h"

/* hive_worker_start_cb / hive_worker_abort_cb for status jobs; arg is the
 * firmware client. */
int pollerd_job_start(struct hive_worker_job *job, void *arg);
void pollerd_job_abort(struct hive_worker_job *job, void *arg);

/* hive_worker_check_cb / hive_worker_start_cb / hive_worker_abort_cb for
 * control jobs; arg is the control firmware client. */
int pollerd_control_check(const struct hive_worker_job *job, char *err, size_t errlen);
int pollerd_control_start(struct hive_worker_job *job, void *arg);
void pollerd_control_abort(struct hive_worker_job *job, void *arg);

/* The plant reader, as hive_worker_main_spec's attach / detach / counters:
 * its thread and PULL socket on bus.jobs_plant, and its heartbeat counters
 * plant_jobs_received, plant_readings_ok, plant_readings_failed,
 * plant_jobs_expired, plant_jobs_bad. */
int pollerd_plant_attach(struct hive_worker *w, const struct hive_daemon *d, void **state);
void pollerd_plant_detach(void *state);
json_t *pollerd_plant_counters(void *state);

/* A hive.status.result body and the lists it points to. */
struct pollerd_status {
	struct hive_msg_status_result r;
	double fans[HIVE_FW_MAX_FANS];
	struct hive_msg_chain_status chains[HIVE_FW_MAX_CHAINS];
};

/* Fills st.r (all but its head, which the worker fills) from /summary and,
 * when the miner answered it, /perf-summary (perf may be NULL). Its strings
 * are borrowed from s and perf: keep them until st.r is encoded. */
void pollerd_status_fill(struct pollerd_status *st, const struct hive_fw_summary *s,
			 const struct hive_fw_perf *perf);

#endif
