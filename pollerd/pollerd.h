/* pollerd — the status worker: takes hive.job.status jobs, asks the miner
 * for /summary and /perf-summary, publishes hive.status.result.
 *
 *   pollerd.c  main: what the job is (the rest is hive_worker_main)
 *   work.c     one job: the two requests and joining their answers
 *   status.c   the hive.status.result body from the parsed answers
 *
 * The shared worker loop (pull, in-flight cap, heartbeats, errors) is
 * libhive's hive/worker.h.
 */
#ifndef POLLERD_H
#define POLLERD_H

#include <jansson.h>

#include "hive/fw.h"
#include "hive/worker.h"

/* hive_worker_start_cb / hive_worker_abort_cb for status jobs; arg is the
 * firmware client. */
int pollerd_job_start(struct hive_worker_job *job, void *arg);
void pollerd_job_abort(struct hive_worker_job *job, void *arg);

/* The hive.status.result body (without job, mac, ip, latency_ms, which the
 * worker adds) from /summary and, when the miner answered it, /perf-summary
 * (perf may be NULL). New reference or NULL on allocation failure. */
json_t *pollerd_status_body(const struct hive_fw_summary *s, const struct hive_fw_perf *perf);

#endif
