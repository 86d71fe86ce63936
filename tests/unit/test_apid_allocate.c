/* test_apid_allocate — the allocator (apid/allocate.c) alone.
 *
 *   hand cases   a table of small fleets checked by hand: preset and reason
 *                of every miner, feasibility, draw
 *   exact        apid_alloc_exact against brute force on tiny fleets
 *   vs exact     apid_alloc_plan on 60 random fleets of 2-200 miners of 2-3
 *                realistic models (concave and not, dominated presets, caps,
 *                pausable, fixed and unknown miners) against the exact
 *                optimum; the worst ratio is a figure
 *   large        10,000 miners against the LP bound
 *   caps, pause  never above max_preset, paused only when allowed, the
 *                infeasible and zero targets
 *   stability    the plan fed back as the current presets: no change; the
 *                target +-1 W with hysteresis: no change
 *   invalid      EINVAL for each bad input
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "../../apid/allocate.h"

#define PAUSED  APID_ALLOC_PRESET_PAUSED
#define UNKNOWN APID_ALLOC_PRESET_UNKNOWN
#define MAX_MODELS 4

/* ------------------------------------------------------------ fleets */

struct fleet {
	int n_models;
	struct apid_alloc_preset p[MAX_MODELS][APID_ALLOC_MAX_PRESETS];
	struct apid_alloc_model m[MAX_MODELS];
	struct apid_alloc_miner *mi;
	size_t n;
	long long target;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int rnd_in(int lo, int hi)   /* lo..hi */
{
	return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

static double rnd_unit(void)
{
	return (double)(rnd() >> 11) / (double)(1ULL << 53);
}

/* Watt range and TH range of a family (S19j Pro, S21, S19 XP, T21). */
static const struct family {
	int w_lo, w_hi;
	double th_lo, th_hi;
} families[] = {
	{ 1500, 3350, 60, 104 },
	{ 2500, 3800, 150, 200 },
	{ 2000, 3300, 100, 141 },
	{ 1800, 3600, 95, 170 },
};

/* A catalogue of 4-12 presets (watts in multiples of 10), TH a concave
 * curve of W with noise; some get a dominated preset or a bump that hides
 * its neighbours from the hull; some are listed out of order. */
static int catalogue(struct apid_alloc_preset *p)
{
	const struct family *f = &families[rnd_in(0, 3)];
	int n = rnd_in(4, 12);
	double gamma = 0.5 + 0.5 * rnd_unit();

	for (int i = 0; i < n; i++) {
		int w = f->w_lo + (f->w_hi - f->w_lo) * i / (n - 1) + rnd_in(-3, 3) * 10;
		double x = (double)(w - f->w_lo) / (f->w_hi - f->w_lo);

		w = w / 10 * 10;
		x = x < 0 ? 0 : x > 1 ? 1 : x;
		p[i].watts = w;
		p[i].th = (f->th_lo + (f->th_hi - f->th_lo) * pow(x, gamma)) *
			  (1 + 0.04 * (rnd_unit() - 0.5));
	}
	if (rnd() % 5 < 2) {            /* dominated: more W, less TH */
		int i = rnd_in(1, n - 1);

		p[i].th = p[i - 1].th * 0.98;
	}
	if (rnd() % 5 < 2) {            /* a bump: hides its neighbours from the hull */
		int i = rnd_in(1, n - 1);

		p[i].th *= 1.04;
	}
	if (rnd() % 3 == 0) {
		for (int i = n - 1; i > 0; i--) {
			int j = rnd_in(0, i);
			struct apid_alloc_preset t = p[i];

			p[i] = p[j];
			p[j] = t;
		}
	}
	return n;
}

/* What the cap allows: nothing drawing more than max_preset. */
static bool allowed(const struct apid_alloc_model *m, int p)
{
	return m->max_preset < 0 || m->presets[p].watts <= m->presets[m->max_preset].watts;
}

static void fleet_free(struct fleet *f)
{
	free(f->mi);
	f->mi = NULL;
}

/* n miners of 2-3 random models; a target between the least and the most
 * draw (up to 5% above). */
static void fleet_random(struct fleet *f, size_t n, double pause_share)
{
	struct apid_alloc_choice *out = calloc(n, sizeof(*out));
	struct apid_alloc_result r;

	assert_non_null(out);
	memset(f, 0, sizeof(*f));
	f->n_models = rnd_in(2, 3);
	for (int m = 0; m < f->n_models; m++) {
		int np = catalogue(f->p[m]);

		f->m[m] = (struct apid_alloc_model){ f->p[m], np,
						     rnd() % 5 < 2 ? rnd_in(np / 2, np - 1) : -1 };
	}
	f->n = n;
	f->mi = calloc(n, sizeof(*f->mi));
	assert_non_null(f->mi);
	for (size_t i = 0; i < n; i++) {
		struct apid_alloc_miner *mi = &f->mi[i];
		int k = rnd_in(0, 99);

		mi->model = rnd_in(0, f->n_models - 1);
		mi->may_pause = rnd_unit() < pause_share;
		mi->current = k < 8 ? PAUSED : k < 13 ? UNKNOWN :
			      rnd_in(0, f->m[mi->model].n_presets - 1);
		if (rnd() % 20 == 0) {
			mi->fixed = true;
			mi->fixed_watts = rnd_in(500, 3000);
		}
	}
	assert_int_equal(apid_alloc_plan(f->m, f->n_models, f->mi, n, 0, NULL, out, &r), 0);
	f->target = r.min_w + (long long)(rnd_unit() * 1.05 * (double)(r.max_w - r.min_w));
	free(out);
}

/* The plan's promises, whatever the fleet. */
static void check_plan(const struct fleet *f, const struct apid_alloc_choice *out,
		       const struct apid_alloc_result *r)
{
	long long w = 0;
	double th = 0;
	size_t changes = 0, reasons[APID_ALLOC_REASONS] = { 0 };

	for (size_t i = 0; i < f->n; i++) {
		const struct apid_alloc_miner *mi = &f->mi[i];
		const struct apid_alloc_model *m = &f->m[mi->model];
		const struct apid_alloc_choice *c = &out[i];

		reasons[c->reason]++;
		w += c->watts;
		if (mi->fixed) {
			assert_int_equal(c->reason, APID_ALLOC_FIXED);
			assert_int_equal(c->watts, mi->fixed_watts);
			assert_false(c->changed);
			continue;
		}
		th += c->th;
		if (c->preset == PAUSED) {
			assert_true(mi->may_pause);
			assert_int_equal(c->watts, 0);
		} else {
			assert_in_range(c->preset, 0, m->n_presets - 1);
			assert_true(allowed(m, c->preset));
			assert_int_equal(c->watts, m->presets[c->preset].watts);
			assert_true(c->th == m->presets[c->preset].th);
		}
		assert_int_equal(c->changed, mi->current != c->preset);
		changes += c->changed;
		if (!c->changed)
			assert_true(c->reason == APID_ALLOC_KEPT || c->reason == APID_ALLOC_CAPPED);
	}
	assert_int_equal(r->watts, w);
	assert_true(fabs(r->th - th) <= 1e-6 * (1 + th));
	assert_int_equal(r->changes, changes);
	assert_memory_equal(r->reasons, reasons, sizeof(reasons));
	if (r->feasible) {
		assert_true(w <= f->target);
		assert_true(r->th <= r->lp_bound_th + 1e-6 * (1 + th));
	} else {
		assert_true(r->min_w > f->target);
		assert_int_equal(w, r->min_w);
	}
}

static void plan_ok(const struct fleet *f, long long target, int hysteresis_w,
		    struct apid_alloc_choice *out, struct apid_alloc_result *r)
{
	struct apid_alloc_opts o = { .hysteresis_w = hysteresis_w };
	struct fleet g = *f;

	assert_int_equal(apid_alloc_plan(f->m, f->n_models, f->mi, f->n, target, &o, out, r), 0);
	g.target = target;
	check_plan(&g, out, r);
}

static void feed_back(struct fleet *f, const struct apid_alloc_choice *out)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->mi[i].fixed)
			f->mi[i].current = out[i].preset;
}

/* ------------------------------------------------------------ hand cases */

/* S19j Pro: concave. S21: the hull skips 3000 and 3500 (2500 -> 3800). */
static const struct apid_alloc_preset s19[] = {
	{ 1500, 60 }, { 2000, 75 }, { 2500, 88 }, { 2900, 96 }, { 3350, 104 },
};
static const struct apid_alloc_preset s21[] = {
	{ 2500, 150 }, { 3000, 168 }, { 3500, 186 }, { 3800, 200 },
};

#define HAND_MAX 4
struct hand {
	const char *name;
	int s21_cap;                    /* max_preset of the S21; s19 has none */
	int n;
	struct apid_alloc_miner mi[HAND_MAX];  /* model 0 = S19j Pro, 1 = S21 */
	long long target;
	bool feasible;
	long long watts;                /* expected draw, fixed included */
	int preset[HAND_MAX];
	enum apid_alloc_reason reason[HAND_MAX];
};

#define S19(cur, pause) { .model = 0, .current = (cur), .may_pause = (pause) }
#define S21(cur, pause) { .model = 1, .current = (cur), .may_pause = (pause) }
#define FIXED(w) { .fixed = true, .fixed_watts = (w), .current = UNKNOWN }

static const struct hand hands[] = {
	{ "off the hull: 3000 fits, 3800 does not", -1, 1, { S21(0, false) }, 3400, true, 3000,
	  { 1 }, { APID_ALLOC_RAISED } },
	{ "two S21: 3000 + 3500 beats the hull's 3800 + 2500", -1, 2,
	  { S21(0, false), S21(0, false) }, 6500, true, 6500, { 1, 2 },
	  { APID_ALLOC_RAISED, APID_ALLOC_RAISED } },
	{ "capped: room for 3800, max_preset 3500", 2, 1, { S21(2, false) }, 10000, true, 3500,
	  { 2 }, { APID_ALLOC_CAPPED } },
	{ "above the cap: lowered to it", 2, 1, { S21(3, false) }, 10000, true, 3500, { 2 },
	  { APID_ALLOC_CAPPED } },
	{ "lowered to fit", -1, 1, { S21(3, false) }, 3200, true, 3000, { 1 },
	  { APID_ALLOC_LOWERED } },
	{ "pause the less efficient", -1, 2, { S19(0, true), S21(0, true) }, 2600, true, 2500,
	  { PAUSED, 0 }, { APID_ALLOC_PAUSED, APID_ALLOC_KEPT } },
	{ "pause not allowed: the other one pauses", -1, 2, { S19(0, false), S21(0, true) }, 2600,
	  true, 2500, { 2, PAUSED }, { APID_ALLOC_RAISED, APID_ALLOC_PAUSED } },
	{ "infeasible: least draw", -1, 2, { S19(2, false), S21(1, true) }, 1000, false, 1500,
	  { 0, PAUSED }, { APID_ALLOC_LOWERED, APID_ALLOC_PAUSED } },
	{ "zero target: all paused", -1, 2, { S19(4, true), S21(PAUSED, true) }, 0, true, 0,
	  { PAUSED, PAUSED }, { APID_ALLOC_PAUSED, APID_ALLOC_KEPT } },
	{ "zero target, one may not pause", -1, 2, { S19(4, true), S21(1, false) }, 0, false,
	  2500, { PAUSED, 0 }, { APID_ALLOC_PAUSED, APID_ALLOC_LOWERED } },
	{ "fixed load over the target", -1, 2, { FIXED(1000), S19(0, true) }, 500, false, 1000,
	  { UNKNOWN, PAUSED }, { APID_ALLOC_FIXED, APID_ALLOC_PAUSED } },
	{ "fixed load counts", -1, 2, { FIXED(2000), S21(3, false) }, 5000, true, 5000,
	  { UNKNOWN, 1 }, { APID_ALLOC_FIXED, APID_ALLOC_LOWERED } },
	{ "equal value: the raised one stays raised", -1, 2, { S19(0, false), S19(1, false) },
	  3500, true, 3500, { 0, 1 }, { APID_ALLOC_KEPT, APID_ALLOC_KEPT } },
	{ "equal value, the other way round", -1, 2, { S19(1, false), S19(0, false) }, 3500,
	  true, 3500, { 1, 0 }, { APID_ALLOC_KEPT, APID_ALLOC_KEPT } },
	{ "equal value across groups (one may pause)", -1, 2, { S19(1, false), S19(0, true) },
	  3500, true, 3500, { 1, 0 }, { APID_ALLOC_KEPT, APID_ALLOC_KEPT } },
	{ "equal value across groups, the other way round", -1, 2,
	  { S19(0, false), S19(1, true) }, 3500, true, 3500, { 0, 1 },
	  { APID_ALLOC_KEPT, APID_ALLOC_KEPT } },
	{ "unknown current", -1, 1, { S19(UNKNOWN, false) }, 2100, true, 2000, { 1 },
	  { APID_ALLOC_SET } },
	{ "resumed to the top", -1, 1, { S19(PAUSED, true) }, 5000, true, 3350, { 4 },
	  { APID_ALLOC_RESUMED } },
	{ "paused but may not pause", -1, 1, { S19(PAUSED, false) }, 1600, true, 1500, { 0 },
	  { APID_ALLOC_RESUMED } },
};

static void test_hand_cases(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(hands) / sizeof(hands[0]); t++) {
		const struct hand *h = &hands[t];
		struct fleet f = { .n_models = 2, .n = (size_t)h->n, .target = h->target };
		struct apid_alloc_choice out[HAND_MAX], ex[HAND_MAX];
		struct apid_alloc_result r, re;

		f.m[0] = (struct apid_alloc_model){ s19, 5, -1 };
		f.m[1] = (struct apid_alloc_model){ s21, 4, h->s21_cap };
		f.mi = (struct apid_alloc_miner *)h->mi;
		print_message("case: %s\n", h->name);
		plan_ok(&f, h->target, 0, out, &r);
		assert_int_equal(r.feasible, h->feasible);
		assert_int_equal(r.watts, h->watts);
		for (int i = 0; i < h->n; i++) {
			if (out[i].preset != h->preset[i] || out[i].reason != h->reason[i])
				fail_msg("%s: miner %d: preset %d (%s), expected %d (%s)", h->name, i,
					 out[i].preset, apid_alloc_reason_name(out[i].reason),
					 h->preset[i], apid_alloc_reason_name(h->reason[i]));
		}
		/* the exact optimum draws as much TH */
		assert_int_equal(apid_alloc_exact(f.m, 2, f.mi, f.n, h->target, ex, &re), 0);
		assert_true(fabs(re.th - r.th) < 1e-9);
	}
}

/* ------------------------------------------------------------ exact */

struct brute {
	const struct fleet *f;
	long long budget;
	double best;
};

static void brute_rec(struct brute *b, size_t i, long long w, double th)
{
	const struct apid_alloc_miner *mi;
	const struct apid_alloc_model *m;

	if (w > b->budget)
		return;
	if (i == b->f->n) {
		if (th > b->best)
			b->best = th;
		return;
	}
	mi = &b->f->mi[i];
	if (mi->fixed) {
		brute_rec(b, i + 1, w, th);
		return;
	}
	m = &b->f->m[mi->model];
	if (mi->may_pause)
		brute_rec(b, i + 1, w, th);
	for (int p = 0; p < m->n_presets; p++)
		if (allowed(m, p))
			brute_rec(b, i + 1, w + m->presets[p].watts, th + m->presets[p].th);
}

/* Tiny fleets with arbitrary watts: the exact solver and the planner
 * against every combination. */
static void test_exact_vs_brute(void **state)
{
	(void)state;
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int t = 0; t < 400; t++) {
		struct fleet f = { .n_models = rnd_in(1, 2) };
		struct apid_alloc_miner mi[5];
		struct apid_alloc_choice out[5];
		struct apid_alloc_result r;
		struct brute b = { .f = &f, .best = -1 };
		long long fixed = 0;

		for (int m = 0; m < f.n_models; m++) {
			int np = rnd_in(1, 5);

			for (int p = 0; p < np; p++)
				f.p[m][p] = (struct apid_alloc_preset){ rnd_in(100, 4000),
									rnd_unit() * 200 };
			f.m[m] = (struct apid_alloc_model){ f.p[m], np,
							    rnd() % 3 ? -1 : rnd_in(0, np - 1) };
		}
		f.n = (size_t)rnd_in(1, 5);
		f.mi = mi;
		for (size_t i = 0; i < f.n; i++) {
			mi[i] = (struct apid_alloc_miner){ .model = rnd_in(0, f.n_models - 1),
							   .may_pause = rnd() % 2,
							   .current = UNKNOWN };
			if (rnd() % 8 == 0) {
				mi[i].fixed = true;
				mi[i].fixed_watts = rnd_in(0, 2000);
				fixed += mi[i].fixed_watts;
			}
		}
		f.target = rnd_in(0, 20000);
		b.budget = f.target - fixed;
		brute_rec(&b, 0, 0, 0);
		assert_int_equal(apid_alloc_exact(f.m, f.n_models, mi, f.n, f.target, out, &r), 0);
		check_plan(&f, out, &r);
		assert_int_equal(r.feasible, b.best >= 0);
		if (b.best >= 0)
			assert_true(fabs(r.th - b.best) < 1e-6);
		/* up to a few dozen miners the planner re-plans them all exactly */
		plan_ok(&f, f.target, 0, out, &r);
		if (b.best >= 0)
			assert_true(fabs(r.th - b.best) < 1e-6);
	}
}

/* ------------------------------------------------------------ vs exact */

#define N_FLEETS 60

static void test_random_vs_exact(void **state)
{
	double worst = 2, sum = 0, worst_lp = 2;
	size_t worst_n = 0, miners = 0;
	struct timespec t0, t1;
	double plan_s = 0;

	(void)state;
	rng_state = 0x2545f4914f6cdd1dULL;
	for (int t = 0; t < N_FLEETS; t++) {
		struct fleet f;
		size_t n = (size_t)rnd_in(2, 200);
		struct apid_alloc_choice *out = calloc(n, sizeof(*out)),
					 *ex = calloc(n, sizeof(*ex));
		struct apid_alloc_result r, re;
		double ratio;

		assert_non_null(out);
		assert_non_null(ex);
		fleet_random(&f, n, 0.3);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		plan_ok(&f, f.target, 0, out, &r);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		plan_s += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		assert_int_equal(apid_alloc_exact(f.m, f.n_models, f.mi, n, f.target, ex, &re), 0);
		check_plan(&f, ex, &re);
		assert_true(r.feasible && re.feasible);
		/* the exact optimum lies between the plan and the LP bound */
		assert_true(re.th >= r.th - 1e-6 * (1 + r.th));
		assert_true(re.th <= r.lp_bound_th + 1e-6 * (1 + r.th));
		ratio = re.th > 0 ? r.th / re.th : 1;
		if (ratio < worst) {
			worst = ratio;
			worst_n = n;
		}
		if (r.lp_bound_th > 0 && r.th / r.lp_bound_th < worst_lp)
			worst_lp = r.th / r.lp_bound_th;
		sum += ratio;
		miners += n;
		fleet_free(&f);
		free(out);
		free(ex);
	}
	printf("figure: allocate vs exact optimum: %d fleets of 2-200 miners (%zu in all): "
	       "worst ratio %.6f (%zu miners), mean %.6f; worst vs LP bound %.6f; "
	       "%.3f ms per plan\n", N_FLEETS, miners, worst, worst_n, sum / N_FLEETS,
	       worst_lp, plan_s * 1e3 / N_FLEETS);
	assert_true(worst >= 0.98);
}

/* ------------------------------------------------------------ large */

static void test_large_vs_lp(void **state)
{
	struct fleet f;
	size_t n = 10000;
	struct apid_alloc_choice *out = calloc(n, sizeof(*out));
	struct apid_alloc_result r;
	struct timespec t0, t1;
	double ms;

	(void)state;
	assert_non_null(out);
	rng_state = 0xdeadbeefcafef00dULL;
	fleet_random(&f, n, 0.2);
	f.target = f.target * 9 / 10;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	plan_ok(&f, f.target, 50, out, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("figure: allocate 10000 miners: %.6f of the LP bound, %lld W of %lld, %zu changes, "
	       "%.2f ms\n", r.th / r.lp_bound_th, r.watts, f.target, r.changes, ms);
	assert_true(r.feasible);
	assert_true(r.th >= 0.98 * r.lp_bound_th);
	fleet_free(&f);
	free(out);
}

/* ------------------------------------------------------------ caps, pause */

/* Random fleets at every kind of target, including below the least draw
 * and zero: check_plan holds, nobody above the cap or paused when not
 * allowed (there), and an unreachable target gives the least draw. */
static void test_caps_and_pause(void **state)
{
	(void)state;
	rng_state = 0x853c49e6748fea9bULL;
	for (int t = 0; t < 40; t++) {
		struct fleet f;
		size_t n = (size_t)rnd_in(5, 300);
		struct apid_alloc_choice *out = calloc(n, sizeof(*out));
		struct apid_alloc_result r;
		long long targets[4];

		assert_non_null(out);
		fleet_random(&f, n, t % 2 ? 0.5 : 0);
		targets[0] = 0;
		plan_ok(&f, 0, 0, out, &r);
		targets[1] = r.min_w - 1;
		targets[2] = r.min_w;
		targets[3] = r.max_w * 2;
		for (int k = 0; k < 4; k++) {
			plan_ok(&f, targets[k], k * 20, out, &r);
			assert_int_equal(r.feasible, targets[k] >= r.min_w);
			if (k == 3)
				assert_int_equal(r.watts, r.max_w);
			/* zero or below: nothing runs that may pause */
			for (size_t i = 0; k < 2 && i < n; i++)
				if (!f.mi[i].fixed && f.mi[i].may_pause)
					assert_int_equal(out[i].preset, PAUSED);
		}
		fleet_free(&f);
		free(out);
	}
}

/* ------------------------------------------------------------ stability */

static void test_stability(void **state)
{
	size_t total = 0, moved = 0, gains = 0;

	(void)state;
	rng_state = 0x1f123bb5159a55e5ULL;
	for (int t = 0; t < 30; t++) {
		struct fleet f;
		size_t n = (size_t)rnd_in(20, 200);
		struct apid_alloc_choice *out = calloc(n, sizeof(*out));
		struct apid_alloc_result r, prev;
		struct fleet g;
		long long target;

		assert_non_null(out);
		fleet_random(&f, n, 0.3);
		target = f.target;
		g = f;
		g.mi = malloc(n * sizeof(*g.mi));
		assert_non_null(g.mi);
		memcpy(g.mi, f.mi, n * sizeof(*g.mi));

		/* no hysteresis: the same input twice */
		plan_ok(&f, target, 0, out, &r);
		feed_back(&f, out);
		plan_ok(&f, target, 0, out, &r);
		assert_int_equal(r.changes, 0);
		assert_int_equal(r.basis, APID_ALLOC_BASIS_CURRENT);

		/* 50 W of hysteresis: the same target and noise below 50 W */
		plan_ok(&g, target, 50, out, &r);
		feed_back(&g, out);
		prev = r;
		for (int k = 0; k < 5; k++) {
			static const int noise[] = { 0, 1, -1, -20, -49 };

			plan_ok(&g, target + noise[k], 50, out, &r);
			if (r.changes)
				fail_msg("fleet %d (%zu miners): target %+d W: %zu changes", t, n,
					 noise[k], r.changes);
		}
		/* more room: a change only for a gain worth more than 50 W */
		plan_ok(&g, target + 20, 50, out, &r);
		if (r.changes) {
			assert_true(r.th - prev.th > 50 * r.marginal_th_per_w);
			gains++;
		}
		/* 2% less: some must move, and only a few */
		plan_ok(&g, target - target / 50, 50, out, &r);
		total += n;
		moved += r.changes;
		fleet_free(&f);
		fleet_free(&g);
		free(out);
	}
	assert_true(moved * 4 <= total);
	printf("figure: allocate stability (30 fleets, hysteresis 50 W): 0 changes for the same "
	       "input and for noise of +1..-49 W; +20 W: %zu fleets changed for a gain worth "
	       "more than 50 W; target -2%%: %zu of %zu miners changed\n", gains, moved, total);
}

/* ------------------------------------------------------------ invalid */

static void test_invalid(void **state)
{
	static const struct apid_alloc_preset bad_watts[] = { { 0, 10 }, { -5, 20 } };
	struct apid_alloc_model m[2] = { { s19, 5, -1 }, { bad_watts, 2, -1 } };
	struct apid_alloc_choice out[1];
	struct apid_alloc_result r;
	static const struct {
		const char *name;
		struct apid_alloc_model m0;
		struct apid_alloc_miner mi;
	} cases[] = {
		{ "model index", { s19, 5, -1 }, { .model = 2 } },
		{ "negative model", { s19, 5, -1 }, { .model = -1 } },
		{ "current too high", { s19, 5, -1 }, { .model = 0, .current = 5 } },
		{ "current too low", { s19, 5, -1 }, { .model = 0, .current = -3 } },
		{ "max_preset too high", { s19, 5, 5 }, { .model = 0 } },
		{ "max_preset too low", { s19, 5, -2 }, { .model = 0 } },
		{ "no presets", { s19, 0, -1 }, { .model = 0 } },
		{ "too many presets", { s19, APID_ALLOC_MAX_PRESETS + 1, -1 }, { .model = 0 } },
		{ "no usable preset, may not pause", { s19, 5, -1 }, { .model = 1 } },
		{ "negative fixed watts", { s19, 5, -1 }, { .fixed = true, .fixed_watts = -1 } },
	};

	(void)state;
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		m[0] = cases[t].m0;
		errno = 0;
		if (apid_alloc_plan(m, 2, &cases[t].mi, 1, 5000, NULL, out, &r) != -1 ||
		    errno != EINVAL)
			fail_msg("%s: accepted (errno %d)", cases[t].name, errno);
	}
	/* unusable presets are skipped: the miner may pause, so it does */
	{
		struct apid_alloc_miner mi = { .model = 1, .may_pause = true, .current = 0 };

		m[0] = (struct apid_alloc_model){ s19, 5, -1 };
		assert_int_equal(apid_alloc_plan(m, 2, &mi, 1, 5000, NULL, out, &r), 0);
		assert_int_equal(out[0].preset, PAUSED);
		assert_int_equal(out[0].reason, APID_ALLOC_PAUSED);
	}
	assert_string_equal(apid_alloc_reason_name(APID_ALLOC_CAPPED), "capped");
	assert_string_equal(apid_alloc_reason_name(APID_ALLOC_REASONS), "?");
	assert_string_equal(apid_alloc_basis_name(APID_ALLOC_BASIS_INCREMENTAL), "incremental");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_cases),
		cmocka_unit_test(test_exact_vs_brute),
		cmocka_unit_test(test_random_vs_exact),
		cmocka_unit_test(test_large_vs_lp),
		cmocka_unit_test(test_caps_and_pause),
		cmocka_unit_test(test_stability),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
