/* telemetryd — PowerHive's chip telemetry worker. Any number run side by
 * side, independent of the pollerds. See docs/workers.md.
 */
#include "telemetryd.h"

#include <stdio.h>
#include <stdlib.h>

#include "hive/daemon.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"

/* /chains of a 3 x 126-chip miner is ~150 KB; leave room for bigger boards. */
#define TELEMETRY_MAX_BODY (4u * 1024 * 1024)

int main(int argc, char **argv)
{
	static const struct hive_daemon_spec spec = {
		.name = "telemetryd",
		.summary = "PowerHive telemetry worker: reads miners' per-chip telemetry",
	};
	struct hive_daemon d;
	struct telemetryd t = { 0 };
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
	fo.max_in_flight = d.cfg.network.http_concurrency;
	fo.timeout_ms = d.cfg.network.http_timeout_ms;
	fo.max_body = TELEMETRY_MAX_BODY;
	if (!(t.fw = hive_fw_client_new(loop, &fo))) {
		log_warn("fatal reason=\"cannot create the firmware client\"");
		return 1;
	}
	ws = (struct hive_worker_spec){
		.job_topic = HIVE_TOPIC_JOB_TELEMETRY,
		.result_topic = HIVE_TOPIC_TELEMETRY_RESULT,
		.op = "telemetry",
		.jobs_url = d.cfg.bus.jobs_telemetry,
		.start = telemetryd_job_start,
		.arg = &t,
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
	hive_fw_client_free(t.fw);
	hive_worker_free(w);
	hive_loop_free(loop);
	hive_daemon_finish(&d);
	return 0;
}
