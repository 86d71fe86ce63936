/* pollerd — PowerHive's status worker. Any number run side by side; apid's
 * PUSH socket spreads the jobs over them. See docs/workers.md.
 */
#include "pollerd.h"

#include <stdio.h>
#include <stdlib.h>

#include "hive/daemon.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"

int main(int argc, char **argv)
{
	static const struct hive_daemon_spec spec = {
		.name = "pollerd",
		.summary = "PowerHive status worker: polls miners' /summary and /perf-summary",
	};
	struct hive_daemon d;
	struct pollerd p = { 0 };
	struct hive_loop *loop;
	struct hive_worker *w;
	struct hive_worker_spec ws;
	struct hive_fw_opts fo = { 0 };
	char err[512];

	hive_daemon_start(&d, &spec, argc, argv);
	if (!(loop = hive_loop_new())) {
		log_errx("fatal reason=\"out of memory\"");
		return 1;
	}
	/* Two requests per job. */
	fo.max_in_flight = 2 * d.cfg.network.http_concurrency;
	fo.timeout_ms = d.cfg.network.http_timeout_ms;
	if (!(p.fw = hive_fw_client_new(loop, &fo))) {
		log_warn("fatal reason=\"cannot create the firmware client\"");
		return 1;
	}
	ws = (struct hive_worker_spec){
		.job_topic = HIVE_TOPIC_JOB_STATUS,
		.result_topic = HIVE_TOPIC_STATUS_RESULT,
		.op = "status",
		.jobs_url = d.cfg.bus.jobs_status,
		.start = pollerd_job_start,
		.abort = pollerd_job_abort,
		.arg = &p,
	};
	if (!(w = hive_worker_new(&d, loop, &ws, err, sizeof(err)))) {
		log_errx("fatal reason=\"%s\"", err);
		return 1;
	}
	while (!hive_quit) {
		if (hive_loop_run_once(loop, 250) < 0) {
			log_warn("loop_failed");
			break;
		}
		if (hive_reload && hive_daemon_reload(&d))
			hive_worker_configure(w);
	}
	log_info("stopping in_flight=%d", hive_worker_in_flight(w));
	hive_fw_client_free(p.fw);
	hive_worker_free(w);
	hive_loop_free(loop);
	hive_daemon_finish(&d);
	return 0;
}
