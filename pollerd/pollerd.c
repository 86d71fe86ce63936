/* pollerd — PowerHive's status worker. Any number run side by side; apid's
 * PUSH socket spreads the jobs over them. See docs/workers.md.
 */
#include "pollerd.h"

#include "hive/msg.h"

int main(int argc, char **argv)
{
	static const struct hive_worker_main_spec spec = {
		.daemon = {
			.name = "pollerd",
			.summary = "PowerHive status worker: polls miners' /summary and /perf-summary",
		},
		.worker = {
			.job_topic = HIVE_TOPIC_JOB_STATUS,
			.result_topic = HIVE_TOPIC_STATUS_RESULT,
			.op = "status",
			.start = pollerd_job_start,
			.abort = pollerd_job_abort,
		},
		.requests_per_job = 2,          /* /summary and /perf-summary */
	};

	return hive_worker_main(&spec, argc, argv);
}
