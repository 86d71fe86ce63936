/* telemetryd — the chip telemetry worker: takes hive.job.telemetry jobs,
 * asks the miner for /chains (or /boards), publishes hive.telemetry.result
 * with the chips packed per chain as columns.
 *
 *   telemetryd.c  main: what the job is (the rest is hive_worker_main)
 *   work.c        one job: the request and its answer
 *   telemetry.c   the hive.telemetry.result body from the parsed chains
 *
 * The shared worker loop is libhive's hive/worker.h.
 */
#ifndef TELEMETRYD_H
#define TELEMETRYD_H

#include <jansson.h>

#include "hive/fw.h"
#include "hive/worker.h"

/* hive_worker_start_cb for telemetry jobs; arg is the firmware client. */
int telemetryd_job_start(struct hive_worker_job *job, void *arg);

/* The hive.telemetry.result body (without job, mac, ip, latency_ms) from
 * the parsed /chains or /boards answer. New reference or NULL. */
json_t *telemetryd_body(const struct hive_fw_chains *c);

#endif
