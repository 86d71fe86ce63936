/* telemetryd — PowerHive's chip telemetry worker. Any number run side by
 * side, independent of the pollerds. See docs/workers.md.
 */
#include "telemetryd.h"

#include "hive/msg.h"

/* /chains of a 3 x 126-chip miner is ~150 KB; leave room for bigger boards. */
#define TELEMETRY_MAX_BODY (4u * 1024 * 1024)

int main(int argc, char **argv)
{
	static const struct hive_worker_main_spec spec = {
		.daemon = {
			.name = "telemetryd",
			.summary = "PowerHive telemetry worker: reads miners' per-chip telemetry",
		},
		.worker = {
			.job_kind = HIVE_MSG_JOB_TELEMETRY,
			.result_kind = HIVE_MSG_TELEMETRY_RESULT,
			.op = "telemetry",
			.start = telemetryd_job_start,
		},
		.requests_per_job = 1,
		.max_body = TELEMETRY_MAX_BODY,
	};

	return hive_worker_main(&spec, argc, argv);
}
