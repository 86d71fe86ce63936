/* models — what minersim knows about each Antminer model: chain and chip
 * topology, limits, stock figures and the autotune preset ladder.
 *
 * The S19 ladder (watts → TH) is the one observed on real miners. For the
 * S19j Pro only the watts are known; its TH are derived as
 * round(104 * (W / 3250) ^ 0.6): 104 TH in the 3250 W class, better J/TH
 * below it, worse above (docs/minersim.md lists them).
 */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct sim_preset s19_ladder[] = {
	{ 1100, 53 }, { 1300, 58 }, { 1500, 63 }, { 1700, 68 }, { 1900, 73 },
	{ 2100, 78 }, { 2350, 85 }, { 2620, 91 }, { 2950, 99 }, { 3200, 102 },
	{ 3350, 105 }, { 3750, 110 }, { 4000, 115 }, { 4260, 120 }, { 4690, 124 },
};

static const struct sim_preset s19jpro_ladder[] = {
	{ 1740, 71 }, { 1800, 73 }, { 1850, 74 }, { 2000, 78 }, { 2150, 81 },
	{ 2300, 85 }, { 2500, 89 }, { 2700, 93 }, { 2970, 99 }, { 3080, 101 },
	{ 3320, 105 }, { 3580, 110 }, { 3670, 112 }, { 3850, 115 }, { 4110, 120 },
	{ 4620, 128 }, { 4880, 133 }, { 5040, 135 }, { 5240, 139 }, { 5400, 141 },
	{ 5760, 147 }, { 6084, 152 }, { 6444, 157 },
};

/* Listing order (ladder indices). The S19 lists ascending like most
 * firmware; the S19j Pro does not, to catch clients that assume sorting. */
static const uint8_t s19_order[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
};
static const uint8_t s19jpro_order[] = {
	10, 3, 17, 0, 12, 6, 21, 1, 15, 8, 19, 4, 13, 22, 2, 9, 16, 5, 11, 20, 7, 14, 18,
};

const struct sim_model sim_models[SIM_NMODELS] = {
	{
		.code = "s19", .name = "Antminer S19", .series = "x19",
		.chains = 3, .chips = 76, .chips_per_domain = 2, .rows = 4, .cols = 20,
		.stock_th = 95, .stock_w = 3250, .stock_freq = 650, .stock_volt = 13800,
		.min_volt = 12000, .max_volt = 15000, .max_volt_stock_psu = 14200,
		.min_freq = 50, .max_freq = 800, .warn_freq = 700, .modded_psu_w = 3600,
		.ladder = s19_ladder, .nladder = sizeof(s19_ladder) / sizeof(s19_ladder[0]),
		.order = s19_order,
	},
	{
		.code = "s19jpro", .name = "Antminer S19j Pro", .series = "x19",
		.chains = 3, .chips = 126, .chips_per_domain = 3, .rows = 6, .cols = 21,
		.stock_th = 104, .stock_w = 3250, .stock_freq = 525, .stock_volt = 13600,
		.min_volt = 12000, .max_volt = 15000, .max_volt_stock_psu = 14200,
		.min_freq = 50, .max_freq = 700, .warn_freq = 600, .modded_psu_w = 3600,
		.ladder = s19jpro_ladder,
		.nladder = sizeof(s19jpro_ladder) / sizeof(s19jpro_ladder[0]),
		.order = s19jpro_order,
	},
};

int sim_model_find(const char *code)
{
	for (int i = 0; i < SIM_NMODELS; i++)
		if (strcmp(sim_models[i].code, code) == 0)
			return i;
	return -1;
}

/* Chips are numbered along a snake: left to right on even rows, right to
 * left on odd ones; slots past the last chip are empty. */
int sim_model_topo_chip(const struct sim_model *md, int r, int c)
{
	int pos = r * md->cols + (r % 2 ? md->cols - 1 - c : c);

	return pos < md->chips ? pos + 1 : -1;
}

int sim_preset_watts(const struct sim_model *md, int p)
{
	return p <= 0 || p > md->nladder ? md->stock_w : md->ladder[p - 1].watts;
}

double sim_preset_th(const struct sim_model *md, int p)
{
	return p <= 0 || p > md->nladder ? md->stock_th : md->ladder[p - 1].th;
}

const char *sim_preset_name(const struct sim_model *md, int p, char *buf, size_t len)
{
	if (p <= 0 || p > md->nladder)
		snprintf(buf, len, "disabled");
	else
		snprintf(buf, len, "%d", md->ladder[p - 1].watts);
	return buf;
}

int sim_preset_find(const struct sim_model *md, const char *name)
{
	char buf[16];

	if (strcmp(name, "disabled") == 0)
		return 0;
	for (int p = 1; p <= md->nladder; p++)
		if (strcmp(name, sim_preset_name(md, p, buf, sizeof(buf))) == 0)
			return p;
	return -1;
}

/* Chip clock scales with hashrate; voltage with power. */
int sim_preset_freq(const struct sim_model *md, int p)
{
	return (int)lround(md->stock_freq * sim_preset_th(md, p) / md->stock_th);
}

int sim_preset_volt(const struct sim_model *md, int p)
{
	double ratio = (double)sim_preset_watts(md, p) / md->stock_w;
	long v = lround(md->stock_volt + 1800.0 * (ratio - 1.0));

	if (v < md->min_volt)
		v = md->min_volt;
	if (v > md->max_volt)
		v = md->max_volt;
	return (int)(v / 10 * 10);
}
