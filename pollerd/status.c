/* status — turns /summary and /perf-summary into the hive.status.result
 * body (field list in hive/msg.h).
 *
 * A /perf-summary without a current preset (newer firmware sends null
 * while no autotune preset runs) means stock clocks: preset "disabled".
 * Without /perf-summary at all (firmware without autotune) it is null.
 *
 * power_w is what the miner metered when it meters (power_consumption > 0);
 * on hardware without PSU metering the firmware says 0, and the expected
 * power of the running preset is the only estimate, flagged
 * power_metered:false. With neither, power_w is null.
 */
#include "pollerd.h"

#include <math.h>

/* A string, or null for "". */
static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *chain_body(const struct hive_fw_chain_summary *c)
{
	return json_pack("{s:i, s:o, s:o, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:I}",
			 "id", c->id, "state", str_or_null(c->state),
			 "hr_rt_ghs", num(c->hashrate_rt), "freq_mhz", num(c->frequency),
			 "voltage", c->voltage, "chip_temp_max", c->chip_temp_max,
			 "pcb_temp_max", c->pcb_temp_max, "red", c->red, "orange", c->orange,
			 "grey", c->grey, "hw_errors", (json_int_t)c->hw_errors);
}

static json_t *switcher_body(const struct hive_fw_perf *p)
{
	if (!p || !p->has_switcher)
		return json_null();
	return json_pack("{s:b, s:o, s:o}", "enabled", p->switcher_enabled, "top_preset",
			 str_or_null(p->top_preset), "min_preset", str_or_null(p->min_preset));
}

json_t *pollerd_status_body(const struct hive_fw_summary *s, const struct hive_fw_perf *p)
{
	json_t *b = NULL, *fans = NULL, *chains = NULL, *pools = NULL, *power, *preset_w;
	bool has_preset = p && p->has_preset && p->preset[0];
	bool metered = s->power_consumption > 0;
	json_t *preset_name;

	if (metered)
		power = json_integer(s->power_consumption);
	else if (has_preset && p->preset_watts > 0)
		power = json_integer(p->preset_watts);
	else
		power = json_null();
	preset_w = has_preset && p->preset_watts > 0 ? json_integer(p->preset_watts) : json_null();
	if (has_preset)
		preset_name = json_string(p->preset);
	else
		preset_name = p ? json_string("disabled") : json_null();

	if (!(fans = json_array()) || !(chains = json_array()))
		goto fail;
	for (int i = 0; i < s->nfans && i < HIVE_FW_MAX_FANS; i++)
		if (json_array_append_new(fans, json_integer(s->fans[i].rpm)))
			goto fail;
	for (int i = 0; i < s->nchains && i < HIVE_FW_MAX_CHAINS; i++) {
		json_t *c = chain_body(&s->chains[i]);

		if (!c || json_array_append_new(chains, c))
			goto fail;
	}
	pools = json_pack("{s:i, s:i, s:I, s:I, s:I, s:o, s:o}", "total", s->pools.total,
			  "working", s->pools.working, "accepted", (json_int_t)s->pools.accepted,
			  "rejected", (json_int_t)s->pools.rejected, "stale",
			  (json_int_t)s->pools.stale, "url", str_or_null(s->pools.url), "user",
			  str_or_null(s->pools.user));
	if (!pools)
		goto fail;
	b = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:i, s:o, s:b, s:o,"
		      " s:o, s:o, s:I, s:o, s:o, s:o, s:o}",
		      "state", s->state, "state_time", (json_int_t)s->state_time,
		      "preset", preset_name,
		      "preset_pretty", has_preset ? str_or_null(p->preset_pretty) : json_null(),
		      "hr_realtime_ghs", num(s->hr_realtime), "hr_average_ghs", num(s->hr_average),
		      "hr_nominal_ghs", num(s->hr_nominal), "efficiency_jth",
		      s->efficiency > 0 ? num(s->efficiency) : json_null(),
		      "chip_temp_max", s->chip_temp_max, "pcb_temp_max", s->pcb_temp_max,
		      "power_w", power, "power_metered", metered, "preset_watts", preset_w,
		      "fan_duty", s->fan_duty >= 0 ? json_integer(s->fan_duty) : json_null(),
		      "fans", fans, "hw_errors", (json_int_t)s->hw_errors, "chains", chains,
		      "pools", pools, "switcher", switcher_body(p),
		      "preset_tuned", has_preset ? json_boolean(p->preset_tuned) : json_null());
	/* json_pack took the references ("o"), whatever it returned. */
	return b;
fail:
	json_decref(fans);
	json_decref(chains);
	json_decref(pools);
	json_decref(power);
	json_decref(preset_w);
	json_decref(preset_name);
	return NULL;
}
