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

#include <stdbool.h>

#include "hive/fw.h"
#include "hive/msg.h"
#include "hive/worker.h"

/* hive_worker_start_cb for telemetry jobs; arg is the firmware client. */
int telemetryd_job_start(struct hive_worker_job *job, void *arg);

/* One chain's chips as columns. */
struct telemetryd_chips {
	double hr[HIVE_FW_MAX_CHIPS], freq[HIVE_FW_MAX_CHIPS], volt[HIVE_FW_MAX_CHIPS];
	double temp[HIVE_FW_MAX_CHIPS], errs[HIVE_FW_MAX_CHIPS];
	char grade[HIVE_FW_MAX_CHIPS + 1], throttled[HIVE_FW_MAX_CHIPS + 1];
};

/* A hive.telemetry.result body and the lists it points to (~70 KB:
 * allocate it). */
struct telemetryd_result {
	struct hive_msg_telemetry_result r;
	struct hive_msg_chain_telemetry chains[HIVE_FW_MAX_CHAINS];
	struct telemetryd_chips cols[HIVE_FW_MAX_CHAINS];
};

/* Fills t->r (all but its head, which the worker fills) from the parsed
 * /chains or /boards answer; boards says /boards answered. Its strings are
 * borrowed from c: keep it until t->r is encoded. */
void telemetryd_fill(struct telemetryd_result *t, const struct hive_fw_chains *c, bool boards);

#endif
