/* work — one status job: /summary and /perf-summary asked at the same
 * time, joined when both have answered.
 *
 * /summary is the job: when it fails the job fails with its error. A
 * /perf-summary that 404s (firmware without autotune) leaves the preset
 * unknown; any other /perf-summary failure fails the job too, because
 * without it an unmetered miner's power cannot be estimated.
 */
#include "pollerd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct status_job {
	struct hive_worker_job *job;
	int pending;                    /* requests not answered yet */
	bool failed;
	struct hive_fw_err err;         /* the error the job fails with */
	bool summary_failed;            /* err came from /summary */
	bool have_perf;
	struct hive_fw_summary summary;
	struct hive_fw_perf perf;
};

static void finish(struct status_job *sj)
{
	struct hive_worker_job *job = sj->job;
	struct pollerd_status st;

	if (sj->failed) {
		hive_worker_fail(job, &sj->err);
	} else {
		/* st borrows sj's strings: sj goes after the result is out */
		pollerd_status_fill(&st, &sj->summary, sj->have_perf ? &sj->perf : NULL);
		hive_worker_done(job, &st.r);
	}
	free(sj);
}

/* Keeps the first error, preferring /summary's. */
static void note_error(struct status_job *sj, const struct hive_fw_err *err, bool summary)
{
	if (sj->failed && (sj->summary_failed || !summary))
		return;
	sj->failed = true;
	sj->summary_failed = summary;
	sj->err = *err;
}

static void on_answer(const struct hive_fw_result *res, void *arg)
{
	struct status_job *sj = arg;
	bool summary = res->call == HIVE_FW_SUMMARY;

	if (res->err.kind != HIVE_FW_OK) {
		if (!summary && res->err.kind == HIVE_FW_ERR_NOT_FOUND)
			sj->have_perf = false;
		else
			note_error(sj, &res->err, summary);
	} else if (summary) {
		sj->summary = res->summary;
	} else {
		sj->perf = res->perf;
		sj->have_perf = true;
	}
	if (--sj->pending == 0)
		finish(sj);
}

int pollerd_job_start(struct hive_worker_job *job, void *arg)
{
	struct hive_fw_client *fw = arg;
	struct status_job *sj;
	struct hive_fw_req req;
	static const enum hive_fw_call calls[] = { HIVE_FW_SUMMARY, HIVE_FW_PERF_SUMMARY };

	if (!(sj = calloc(1, sizeof(*sj)))) {
		errno = ENOMEM;
		return -1;
	}
	sj->job = job;
	job->priv = sj;
	memset(&req, 0, sizeof(req));
	req.ip = job->ip;
	req.port = job->port;
	req.api_key = job->api_key;
	req.timeout_ms = job->timeout_ms;
	req.cb = on_answer;
	req.cb_arg = sj;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		req.call = calls[i];
		if (hive_fw_request(fw, &req) == 0) {
			sj->pending++;
			continue;
		}
		if (sj->pending == 0) {
			/* Nothing in flight: the worker fails the job. */
			job->priv = NULL;
			free(sj);
			return -1;
		}
		/* The first request runs; its answer ends the job with this error. */
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };
		snprintf(e.endpoint, sizeof(e.endpoint), "%s", hive_fw_call_path(calls[i]));
		snprintf(e.msg, sizeof(e.msg), "%s: could not queue the request", e.endpoint);
		note_error(sj, &e, calls[i] == HIVE_FW_SUMMARY);
		break;
	}
	return 0;
}

void pollerd_job_abort(struct hive_worker_job *job, void *arg)
{
	(void)arg;
	free(job->priv);
	job->priv = NULL;
}
