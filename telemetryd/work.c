/* work — one telemetry job: GET /chains (the firmware client falls back to
 * /boards on a 404 by itself; a job that says endpoint "boards" asks
 * /boards directly, as apid learned from an earlier answer). The result
 * says which one answered, so apid remembers it per miner.
 */
#include "telemetryd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_chains(const struct hive_fw_result *res, void *arg)
{
	struct hive_worker_job *job = arg;
	struct telemetryd_result *t;

	if (res->err.kind != HIVE_FW_OK) {
		hive_worker_fail(job, &res->err);
		return;
	}
	if (!(t = malloc(sizeof(*t)))) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(e.msg, sizeof(e.msg), "telemetry: out of memory for the result");
		hive_worker_fail(job, &e);
		return;
	}
	telemetryd_fill(t, &res->chains, res->used_boards);
	hive_worker_done(job, &t->r);
	free(t);
}

int telemetryd_job_start(struct hive_worker_job *job, void *arg)
{
	struct hive_fw_client *fw = arg;
	struct hive_fw_req req;

	memset(&req, 0, sizeof(req));
	req.ip = job->ip;
	req.port = job->port;
	req.api_key = job->api_key;
	req.call = HIVE_FW_CHAINS;
	req.flags = strcmp(job->endpoint, "boards") == 0 ? HIVE_FW_F_BOARDS : 0;
	req.timeout_ms = job->timeout_ms;
	req.cb = on_chains;
	req.cb_arg = job;
	return hive_fw_request(fw, &req);
}
