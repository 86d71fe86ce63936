/* status — turns /summary and /perf-summary into the hive.status.result
 * body (struct hive_msg_status_result; its fields are in docs/bus.md).
 *
 * A /perf-summary without a current preset (newer firmware sends null
 * while no autotune preset runs) means stock clocks: preset "disabled".
 * Without /perf-summary at all (firmware without autotune) the preset is
 * left out.
 *
 * state_description is the firmware's why of the state, when it says one:
 * "paused" while a paused miner reports "stopped" (apid's read-back of a
 * pause looks for it).
 *
 * power_w is what the miner metered when it meters (power_consumption > 0);
 * on hardware without PSU metering the firmware says 0, and the expected
 * power of the running preset is the only estimate, flagged
 * power_metered:false. With neither, power_w is left out.
 */
#include "pollerd.h"

/* A string, or absent for "". */
static const char *str_or_absent(const char *s)
{
	return s && *s ? s : NULL;
}

static void chain_fill(struct hive_msg_chain_status *o, const struct hive_fw_chain_summary *c)
{
	o->id = c->id;
	o->state = str_or_absent(c->state);
	o->hr_rt_ghs = c->hashrate_rt;
	o->freq_mhz = c->frequency;
	o->voltage = c->voltage;
	o->chip_temp_max = c->chip_temp_max;
	o->pcb_temp_max = c->pcb_temp_max;
	o->red = c->red;
	o->orange = c->orange;
	o->grey = c->grey;
	o->hw_errors = c->hw_errors;
}

void pollerd_status_fill(struct pollerd_status *st, const struct hive_fw_summary *s,
			 const struct hive_fw_perf *p)
{
	struct hive_msg_status_result *r = &st->r;
	bool has_preset = p && p->has_preset && p->preset[0];
	bool metered = s->power_consumption > 0;
	int nfans = s->nfans < HIVE_FW_MAX_FANS ? s->nfans : HIVE_FW_MAX_FANS;
	int nchains = s->nchains < HIVE_FW_MAX_CHAINS ? s->nchains : HIVE_FW_MAX_CHAINS;

	hive_msg_init(HIVE_MSG_STATUS_RESULT, r);
	r->state = s->state;
	r->state_description = str_or_absent(s->state_description);
	r->state_time = s->state_time;
	if (has_preset) {
		r->preset = p->preset;
		r->preset_pretty = str_or_absent(p->preset_pretty);
		r->preset_tuned = p->preset_tuned;
		if (p->preset_watts > 0)
			r->preset_watts = p->preset_watts;
	} else if (p) {
		r->preset = "disabled";
	}
	r->hr_realtime_ghs = s->hr_realtime;
	r->hr_average_ghs = s->hr_average;
	r->hr_nominal_ghs = s->hr_nominal;
	if (s->efficiency > 0)
		r->efficiency_jth = s->efficiency;
	r->chip_temp_max = s->chip_temp_max;
	r->pcb_temp_max = s->pcb_temp_max;
	/* metered, else the running preset's watts, else absent */
	r->power_w = metered ? s->power_consumption : r->preset_watts;
	r->power_metered = metered;
	if (s->fan_duty >= 0)
		r->fan_duty = s->fan_duty;
	for (int i = 0; i < nfans; i++)
		st->fans[i] = s->fans[i].rpm;
	r->fans = st->fans;
	r->n_fans = (size_t)nfans;
	r->hw_errors = s->hw_errors;
	for (int i = 0; i < nchains; i++)
		chain_fill(&st->chains[i], &s->chains[i]);
	r->chains = st->chains;
	r->n_chains = (size_t)nchains;
	r->pools.total = s->pools.total;
	r->pools.working = s->pools.working;
	r->pools.accepted = s->pools.accepted;
	r->pools.rejected = s->pools.rejected;
	r->pools.stale = s->pools.stale;
	r->pools.url = str_or_absent(s->pools.url);
	r->pools.user = str_or_absent(s->pools.user);
	if (p && p->has_switcher) {
		r->switcher.enabled = p->switcher_enabled;
		r->switcher.top_preset = str_or_absent(p->top_preset);
		r->switcher.min_preset = str_or_absent(p->min_preset);
	}
}
