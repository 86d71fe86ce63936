/* bench_allocate — apid's allocator (apid/allocate.c) alone: how good its
 * plans are and what a decision costs.
 *
 *   1. 10,000 miners of five models: an S19j Pro ladder (TH from W as
 *      minersim derives it, listed out of order, capped), an S21 whose
 *      catalogue has presets off the hull, an S19 XP with a dominated
 *      preset, a T21, and an old, inefficient model that may pause (so do
 *      5% of the others); 3% fixed load. Targets at 50%, 75% and 90% of the
 *      most draw. Per target: the decision from unknown presets, median of
 *      BENCH_RUNS (15) in CPU time (the target's measure: other processes
 *      on the machine inflate the wall time, printed next to it); its TH
 *      next to the LP-relaxation bound; then the steady state: the plan fed
 *      back as the current presets with the target +1 W (hysteresis 50 W):
 *      changes must be 0, median time.
 *   2. The same with watts off the 10 W grid (+1..+9 W on every preset):
 *      the exact improvement step has to coarsen; time and LP ratio.
 *   3. 200 miners, BENCH_EXACT_FLEETS (6) random mixes of the same models at
 *      random targets: TH next to the exact optimum (apid_alloc_exact).
 *
 * Prints "figure: bench allocate ..." lines. Exits non-zero when a figure
 * misses its target (TARGET_* below).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../apid/allocate.h"

/* Targets: below them `make bench` fails. The balancer decides every few
 * seconds; a decision must stay well under a second for 10,000 miners. */
#define TARGET_LP_RATIO     0.98   /* 10,000 miners, TH / LP bound */
#define TARGET_EXACT_RATIO  0.98   /* 200 miners, TH / exact optimum, worst */
#define TARGET_DECISION_MS  100.0  /* 10,000 miners, median */

#define MINERS       10000
#define BENCH_RUNS   15
#define BENCH_EXACT_FLEETS 6
#define EXACT_MINERS 200
#define HYSTERESIS_W 50

#define N_MODELS 5
#define MAXP     16

struct model_def {
	const char *name;
	int n;
	struct apid_alloc_preset p[MAXP];
	int max_preset;
	double share;          /* of the fleet */
	double pause_share;    /* of its miners that may pause */
};

static struct model_def defs[N_MODELS] = {
	/* W as on the S19j Pro ladder, TH = 104 (W / 3250)^0.6; out of order */
	{ "s19jpro", 12, { { 2970, 0 }, { 1740, 0 }, { 3320, 0 }, { 1800, 0 }, { 2500, 0 },
			   { 3580, 0 }, { 1850, 0 }, { 2150, 0 }, { 2700, 0 }, { 2000, 0 },
			   { 3080, 0 }, { 2300, 0 } }, 2 /* 3320 W */, 0.30, 0.05 },
	/* 2800 and 3300 below the hull */
	{ "s21", 6, { { 2500, 150 }, { 2800, 160 }, { 3000, 171 }, { 3300, 180 }, { 3500, 190 },
		      { 3800, 200 } }, -1, 0.25, 0.05 },
	/* 2750 dominated by 2600 */
	{ "s19xp", 7, { { 2000, 100 }, { 2300, 110 }, { 2600, 121 }, { 2750, 119 }, { 2900, 131 },
			{ 3100, 136 }, { 3300, 141 } }, -1, 0.20, 0.05 },
	{ "t21", 7, { { 1800, 95 }, { 2200, 115 }, { 2600, 133 }, { 3000, 150 }, { 3300, 162 },
		      { 3600, 170 }, { 3645, 171 } }, -1, 0.15, 0.05 },
	{ "s9", 3, { { 900, 11 }, { 1100, 12.5 }, { 1300, 13.5 } }, -1, 0.10, 1.0 },
};

static struct apid_alloc_model models[N_MODELS];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static double rnd_unit(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ULL << 53);
}

static double clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The least and the most draw of a fleet. */
static bool draw_range(const struct apid_alloc_miner *mi, size_t n, struct apid_alloc_choice *out,
		       long long *min_w, long long *max_w)
{
	struct apid_alloc_result r;

	if (apid_alloc_plan(models, N_MODELS, mi, n, 0, NULL, out, &r) < 0) {
		perror("bench_allocate: apid_alloc_plan");
		return false;
	}
	*min_w = r.min_w;
	*max_w = r.max_w;
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void models_init(bool off_grid)
{
	for (int m = 0; m < N_MODELS; m++) {
		struct model_def *d = &defs[m];

		for (int i = 0; i < d->n; i++) {
			if (m == 0)
				d->p[i].th = round(104 * pow(d->p[i].watts / 3250.0, 0.6));
			if (off_grid)
				d->p[i].watts += 1 + (int)(rnd_unit() * 9);
		}
		models[m] = (struct apid_alloc_model){ d->p, d->n, d->max_preset };
	}
}

/* n miners in the models' shares; 3% fixed; presets unknown. */
static void fleet(struct apid_alloc_miner *mi, size_t n, bool random_mix)
{
	double share[N_MODELS], sum = 0;

	for (int m = 0; m < N_MODELS; m++) {
		share[m] = random_mix ? rnd_unit() : defs[m].share;
		sum += share[m];
	}
	for (size_t i = 0; i < n; i++) {
		double u = rnd_unit() * sum;
		int m = 0;

		while (m < N_MODELS - 1 && u >= share[m])
			u -= share[m++];
		mi[i] = (struct apid_alloc_miner){ .model = m,
						   .current = APID_ALLOC_PRESET_UNKNOWN,
						   .may_pause = rnd_unit() < defs[m].pause_share };
		if (rnd_unit() < 0.03) {
			mi[i].fixed = true;
			mi[i].fixed_watts = 3000;
		}
	}
}

/* One decision; *ms its wall time, *cpu its CPU time (which the load of
 * other processes on the machine does not inflate). */
static bool plan(const struct apid_alloc_miner *mi, size_t n, long long target,
		 struct apid_alloc_choice *out, struct apid_alloc_result *r, double *ms, double *cpu)
{
	struct apid_alloc_opts o = { .hysteresis_w = HYSTERESIS_W };
	double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);

	if (apid_alloc_plan(models, N_MODELS, mi, n, target, &o, out, r) < 0) {
		perror("bench_allocate: apid_alloc_plan");
		return false;
	}
	*cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
	*ms = clock_ms(CLOCK_MONOTONIC) - t0;
	if (r->watts > target) {
		fprintf(stderr, "bench_allocate: plan draws %lld W over %lld\n", r->watts, target);
		return false;
	}
	return true;
}

/* Part 1 or 2: one fleet of MINERS at three targets. */
static bool large(const char *label, bool *ok)
{
	static const double frac[] = { 0.50, 0.75, 0.90 };
	struct apid_alloc_miner *mi = calloc(MINERS, sizeof(*mi)), *fed = calloc(MINERS, sizeof(*fed));
	struct apid_alloc_choice *out = calloc(MINERS, sizeof(*out));
	double ms[BENCH_RUNS], cpu[BENCH_RUNS];
	long long min_w, max_w;

	if (!mi || !fed || !out)
		return false;
	fleet(mi, MINERS, false);
	if (!draw_range(mi, MINERS, out, &min_w, &max_w))
		return false;
	for (size_t f = 0; f < sizeof(frac) / sizeof(frac[0]); f++) {
		long long target = min_w + (long long)(frac[f] * (double)(max_w - min_w));
		struct apid_alloc_result s;
		double ratio, cold, cold_cpu, steady, steady_cpu;
		size_t changes;

		for (int k = 0; k < BENCH_RUNS; k++)
			if (!plan(mi, MINERS, target, out, &s, &ms[k], &cpu[k]))
				return false;
		qsort(ms, BENCH_RUNS, sizeof(ms[0]), cmp_double);
		qsort(cpu, BENCH_RUNS, sizeof(cpu[0]), cmp_double);
		cold = ms[BENCH_RUNS / 2];
		cold_cpu = cpu[BENCH_RUNS / 2];
		ratio = s.th / s.lp_bound_th;
		memcpy(fed, mi, MINERS * sizeof(*fed));
		for (size_t i = 0; i < MINERS; i++)
			if (!fed[i].fixed)
				fed[i].current = out[i].preset;
		for (int k = 0; k < BENCH_RUNS; k++)
			if (!plan(fed, MINERS, target + 1, out, &s, &ms[k], &cpu[k]))
				return false;
		qsort(ms, BENCH_RUNS, sizeof(ms[0]), cmp_double);
		qsort(cpu, BENCH_RUNS, sizeof(cpu[0]), cmp_double);
		steady = ms[BENCH_RUNS / 2];
		steady_cpu = cpu[BENCH_RUNS / 2];
		changes = s.changes;
		printf("figure: bench allocate %s %d miners target=%lldW (%.0f%% of the range): "
		       "decision cpu_ms=%.2f wall_ms=%.2f ratio_to_lp=%.6f; steady (+1 W) "
		       "changes=%zu cpu_ms=%.2f wall_ms=%.2f basis=%s\n", label, MINERS, target,
		       frac[f] * 100, cold_cpu, cold, ratio, changes, steady_cpu, steady,
		       apid_alloc_basis_name(s.basis));
		if (ratio < TARGET_LP_RATIO || cold_cpu > TARGET_DECISION_MS ||
		    steady_cpu > TARGET_DECISION_MS || changes != 0) {
			printf("bench_allocate: %s at %.0f%% misses a target (lp ratio >= %.2f, "
			       "decision <= %.0f ms of CPU, 0 changes)\n", label, frac[f] * 100,
			       TARGET_LP_RATIO, TARGET_DECISION_MS);
			*ok = false;
		}
	}
	free(mi);
	free(fed);
	free(out);
	return true;
}

/* Part 3. */
static bool versus_exact(bool *ok)
{
	struct apid_alloc_miner mi[EXACT_MINERS];
	struct apid_alloc_choice out[EXACT_MINERS], ex[EXACT_MINERS];
	double worst = 2, sum = 0, plan_ms = 0, exact_ms = 0;

	for (int f = 0; f < BENCH_EXACT_FLEETS; f++) {
		struct apid_alloc_result r, e;
		long long target, min_w, max_w;
		double t, c, t0;

		fleet(mi, EXACT_MINERS, true);
		if (!draw_range(mi, EXACT_MINERS, out, &min_w, &max_w))
			return false;
		target = min_w + (long long)((0.2 + 0.75 * rnd_unit()) * (double)(max_w - min_w));
		if (!plan(mi, EXACT_MINERS, target, out, &r, &t, &c))
			return false;
		plan_ms += c;
		t0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
		if (apid_alloc_exact(models, N_MODELS, mi, EXACT_MINERS, target, ex, &e) < 0) {
			perror("bench_allocate: apid_alloc_exact");
			return false;
		}
		exact_ms += clock_ms(CLOCK_THREAD_CPUTIME_ID) - t0;
		if (r.th > e.th + 1e-6) {
			fprintf(stderr, "bench_allocate: plan %.3f TH above the exact optimum %.3f\n",
				r.th, e.th);
			return false;
		}
		if (r.th / e.th < worst)
			worst = r.th / e.th;
		sum += r.th / e.th;
	}
	printf("figure: bench allocate %d fleets of %d miners: ratio_to_exact worst=%.6f "
	       "mean=%.6f; cpu_ms plan=%.2f exact=%.0f (mean)\n", BENCH_EXACT_FLEETS, EXACT_MINERS,
	       worst, sum / BENCH_EXACT_FLEETS, plan_ms / BENCH_EXACT_FLEETS,
	       exact_ms / BENCH_EXACT_FLEETS);
	if (worst < TARGET_EXACT_RATIO) {
		printf("bench_allocate: ratio to the exact optimum below %.2f\n", TARGET_EXACT_RATIO);
		*ok = false;
	}
	return true;
}

int main(void)
{
	bool ok = true;

	models_init(false);
	if (!large("10W-grid", &ok) || !versus_exact(&ok))
		return 1;
	models_init(true);
	if (!large("off-grid", &ok))
		return 1;
	return ok ? 0 : 1;
}
