/* pollerd — PowerHive's status and control worker. Any number run side by
 * side; apid's PUSH sockets spread the jobs over them. See docs/workers.md.
 */
#include "pollerd.h"

#include "hive/msg.h"

int main(int argc, char **argv)
{
	static const struct hive_worker_main_spec spec = {
		.daemon = {
			.name = "pollerd",
			.summary = "PowerHive status and control worker: polls miners' /summary and "
				   "/perf-summary, sets presets, restarts, pauses, resumes, reboots; "
				   "reads the plant's power feed",
		},
		.worker = {
			.job_kind = HIVE_MSG_JOB_STATUS,
			.result_kind = HIVE_MSG_STATUS_RESULT,
			.op = "status",
			.start = pollerd_job_start,
			.abort = pollerd_job_abort,
		},
		.requests_per_job = 2,          /* /summary and /perf-summary */
		.control = {
			.job_kind = HIVE_MSG_JOB_CONTROL,
			.result_kind = HIVE_MSG_ACTION_RESULT,
			.op = "control",
			.check = pollerd_control_check,
			.start = pollerd_control_start,
			.abort = pollerd_control_abort,
		},
		.attach = pollerd_plant_attach,
		.detach = pollerd_plant_detach,
		.counters = pollerd_plant_counters,
	};

	return hive_worker_main(&spec, argc, argv);
}
