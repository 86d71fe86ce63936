/* telemetry — the chips of every chain packed as columns: one array per
 * measure, one letter per chip for the grade, one digit per chip for
 * throttling. A miner with 3 x 126 chips sends ~20 KB instead of the
 * firmware's ~150 KB.
 */
#include "telemetryd.h"

#include <math.h>
#include <stdlib.h>

/* Two decimals are all a chip's hashrate or temperature carries. */
static json_t *real2(double v)
{
	if (!isfinite(v))
		return json_real(0.0);
	return json_real(round(v * 100.0) / 100.0);
}

static char grade_letter(char g)
{
	return g == 'r' || g == 'o' || g == 'g' ? g : '?';
}

static json_t *chips_body(const struct hive_fw_chain *ch)
{
	json_t *hr = json_array(), *freq = json_array(), *volt = json_array();
	json_t *temp = json_array(), *errs = json_array(), *o = NULL;
	char grade[HIVE_FW_MAX_CHIPS + 1], thr[HIVE_FW_MAX_CHIPS + 1];
	int n = ch->nchips < HIVE_FW_MAX_CHIPS ? ch->nchips : HIVE_FW_MAX_CHIPS;

	if (!hr || !freq || !volt || !temp || !errs)
		goto fail;
	for (int i = 0; i < n; i++) {
		const struct hive_fw_chip *c = &ch->chips[i];

		if (json_array_append_new(hr, real2(c->hr)) ||
		    json_array_append_new(freq, json_integer(c->freq)) ||
		    json_array_append_new(volt, json_integer(c->volt)) ||
		    json_array_append_new(temp, real2(c->temp)) ||
		    json_array_append_new(errs, json_integer(c->errs)))
			goto fail;
		grade[i] = grade_letter(c->grade);
		thr[i] = c->throttled ? '1' : '0';
	}
	grade[n] = thr[n] = '\0';
	o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:s}", "hr", hr, "freq", freq, "volt", volt,
		      "temp", temp, "errs", errs, "grade", grade, "throttled", thr);
	return o;
fail:
	json_decref(hr);
	json_decref(freq);
	json_decref(volt);
	json_decref(temp);
	json_decref(errs);
	return NULL;
}

json_t *telemetryd_body(const struct hive_fw_chains *c)
{
	json_t *chains, *b;
	int n = c->nchains < HIVE_FW_MAX_CHAINS ? c->nchains : HIVE_FW_MAX_CHAINS;

	if (!(chains = json_array()))
		return NULL;
	for (int i = 0; i < n; i++) {
		const struct hive_fw_chain *ch = &c->chains[i];
		json_t *chips = chips_body(ch), *one;

		if (!chips) {
			json_decref(chains);
			return NULL;
		}
		one = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "id", ch->id, "state",
				ch->state[0] ? json_string(ch->state) : json_null(),
				"hr_realtime_ghs", real2(ch->hr_realtime), "hr_nominal_ghs",
				real2(ch->hr_nominal), "freq", real2(ch->freq), "chips", chips);
		if (!one || json_array_append_new(chains, one)) {
			json_decref(chains);
			return NULL;
		}
	}
	b = json_pack("{s:s, s:o}", "source", c->boards ? "boards" : "chains", "chains", chains);
	return b;
}
