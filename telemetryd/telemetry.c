/* telemetry — the chips of every chain packed as columns: one list per
 * measure, one letter per chip for the grade, one digit per chip for
 * throttling. A miner with 3 x 126 chips sends ~20 KB instead of the
 * firmware's ~150 KB.
 */
#include "telemetryd.h"

#include <math.h>

/* Two decimals are all a chip's hashrate or temperature carries; a value
 * the firmware did not give is 0. */
static double real2(double v)
{
	return isfinite(v) ? round(v * 100.0) / 100.0 : 0.0;
}

static char grade_letter(char g)
{
	return g == 'r' || g == 'o' || g == 'g' ? g : '?';
}

static void chips_fill(struct hive_msg_chips *o, struct telemetryd_chips *cols,
		       const struct hive_fw_chain *ch)
{
	size_t n = ch->nchips < 0 ? 0
		 : ch->nchips < HIVE_FW_MAX_CHIPS ? (size_t)ch->nchips : HIVE_FW_MAX_CHIPS;

	for (size_t i = 0; i < n; i++) {
		const struct hive_fw_chip *c = &ch->chips[i];

		cols->hr[i] = real2(c->hr);
		cols->freq[i] = c->freq;
		cols->volt[i] = c->volt;
		cols->temp[i] = real2(c->temp);
		cols->errs[i] = c->errs;
		cols->grade[i] = grade_letter(c->grade);
		cols->throttled[i] = c->throttled ? '1' : '0';
	}
	cols->grade[n] = cols->throttled[n] = '\0';
	o->hr = cols->hr;
	o->freq = cols->freq;
	o->volt = cols->volt;
	o->temp = cols->temp;
	o->errs = cols->errs;
	o->n_hr = o->n_freq = o->n_volt = o->n_temp = o->n_errs = n;
	o->grade = cols->grade;
	o->throttled = cols->throttled;
}

void telemetryd_fill(struct telemetryd_result *t, const struct hive_fw_chains *c, bool boards)
{
	int n = c->nchains < HIVE_FW_MAX_CHAINS ? c->nchains : HIVE_FW_MAX_CHAINS;

	hive_msg_init(HIVE_MSG_TELEMETRY_RESULT, &t->r);
	t->r.source = boards || c->boards ? "boards" : "chains";
	for (int i = 0; i < n; i++) {
		const struct hive_fw_chain *ch = &c->chains[i];
		struct hive_msg_chain_telemetry *o = &t->chains[i];

		o->id = ch->id;
		o->state = ch->state[0] ? ch->state : NULL;
		o->hr_realtime_ghs = real2(ch->hr_realtime);
		o->hr_nominal_ghs = real2(ch->hr_nominal);
		o->freq = real2(ch->freq);
		chips_fill(&o->chips, &t->cols[i], ch);
	}
	t->r.chains = t->chains;
	t->r.n_chains = n > 0 ? (size_t)n : 0;
}
