/* allocate — presets under a power target (see allocate.h, docs/power.md).
 *
 * Miners of one model that may (or may not) pause are interchangeable: the
 * planner works on groups (model, may_pause), counting how many miners of
 * a group run each option (a preset or the pause), and only at the end
 * hands the options out to the miners, first to those that run them now.
 * A plan for 10,000 miners of a few models costs a few milliseconds.
 *
 *   fresh        every miner at its least-watt option; the upper convex
 *                hull of each group's (W, TH) points gives upgrades of
 *                falling TH per W. Taken in that order across groups, a
 *                whole group at a time while it fits, they are the LP
 *                relaxation (it takes a fraction of the first that does not
 *                fit: the bound and the marginal TH per W). The integer plan
 *                takes as many miners of that upgrade as fit and goes on
 *                with those that still fit. Then a few miners of every
 *                (group, option) in use are re-planned exactly by dynamic
 *                programming over watts with the watts they hold plus the
 *                leftover (presets off the hull, one upgrade traded for
 *                two), while that gains; then upgrades while one fits.
 *   incremental  the current presets, lowered where it loses the least TH
 *                per W while over the budget, raised where it gains the
 *                most while an upgrade fits.
 *   current      the current presets as they are.
 * The first of current, incremental, fresh that is within the hysteresis
 * of the best wins (plan_best() below).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "allocate.h"

#define MAX_OPTS     (APID_ALLOC_MAX_PRESETS + 1)   /* presets + pause */
#define NEAR_MINERS  48        /* miners an improvement pass re-plans */
#define NEAR_PASSES  4
#define NEAR_STATES  (1 << 17) /* watt steps of its table, at most */
#define NEAR_WORK    8000000LL /* table cells x options, at most */
#define EXACT_TABLE  (256LL << 20)
#define STEPS_MAX    100000    /* moves of the incremental plan, at most */

struct opt {
	int preset;            /* index in the catalogue or APID_ALLOC_PRESET_PAUSED */
	int watts;
	double th;
};

/* The miners of one model that may (or may not) pause. */
struct group {
	int model;
	bool may_pause;
	long long n;                       /* miners */
	int n_opt;
	struct opt opt[MAX_OPTS];          /* watts ascending, TH descending */
	int of_preset[APID_ALLOC_MAX_PRESETS]; /* option of each preset, or -1 */
	int pause_opt;                     /* or -1 */
	int n_par;
	int par[MAX_OPTS];                 /* options with more TH than any with no more W */
	int n_hull;
	int hull[MAX_OPTS];                /* upper convex hull of par, slopes falling */
	long long up[MAX_OPTS];            /* greedy: miners at hull point j or above */
	long long cnt[MAX_OPTS];           /* the plan: miners per option */
	long long cur[MAX_OPTS];           /* miners per option now (those on one of theirs) */
	long long rem[MAX_OPTS];           /* hand-out: options left */
};

struct ctx {
	const struct apid_alloc_model *models;
	const struct apid_alloc_miner *miners;
	size_t n;
	struct group *k;
	int nk;
	int *mk;               /* group of each miner, -1 when fixed */
	int *mcur;             /* option it runs now, -1 when none of its options */
	long long fixed_w;
	long long budget;      /* target - fixed; less the hysteresis while planning */
	long long min_w;       /* managed miners all at their least-watt option */
};

struct seg {
	int k, j;              /* group, hull point it raises to */
	double slope;
};

static bool usable(const struct apid_alloc_preset *p)
{
	return p->watts >= 1 && p->th >= 0 && isfinite(p->th);
}

/* A preset the model's cap allows: none drawing more than max_preset. */
static bool allowed(const struct apid_alloc_model *m, int p)
{
	return usable(&m->presets[p]) &&
	       (m->max_preset < 0 || m->presets[p].watts <= m->presets[m->max_preset].watts);
}

static long long gcd(long long a, long long b)
{
	while (b) {
		long long t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* ------------------------------------------------------------ groups */

static void group_build(struct group *k, const struct apid_alloc_model *m)
{
	double best = -1;

	k->n_opt = 0;
	k->pause_opt = -1;
	for (int p = 0; p < m->n_presets; p++)
		if (allowed(m, p))
			k->opt[k->n_opt++] = (struct opt){ p, m->presets[p].watts, m->presets[p].th };
	if (k->may_pause)
		k->opt[k->n_opt++] = (struct opt){ APID_ALLOC_PRESET_PAUSED, 0, 0 };
	/* insertion sort: watts up, TH down, catalogue order */
	for (int i = 1; i < k->n_opt; i++) {
		struct opt t = k->opt[i];
		int j = i;

		while (j > 0 && (k->opt[j - 1].watts > t.watts ||
				 (k->opt[j - 1].watts == t.watts &&
				  (k->opt[j - 1].th < t.th ||
				   (k->opt[j - 1].th == t.th && k->opt[j - 1].preset > t.preset))))) {
			k->opt[j] = k->opt[j - 1];
			j--;
		}
		k->opt[j] = t;
	}
	for (int p = 0; p < APID_ALLOC_MAX_PRESETS; p++)
		k->of_preset[p] = -1;
	for (int o = 0; o < k->n_opt; o++) {
		if (k->opt[o].preset >= 0)
			k->of_preset[k->opt[o].preset] = o;
		else
			k->pause_opt = o;
	}
	/* Pareto: each point has more TH than every cheaper one */
	k->n_par = 0;
	for (int o = 0; o < k->n_opt; o++)
		if (k->opt[o].th > best) {
			k->par[k->n_par++] = o;
			best = k->opt[o].th;
		}
	/* upper hull; collinear points go, so slopes fall strictly */
	k->n_hull = 0;
	for (int i = 0; i < k->n_par; i++) {
		const struct opt *c = &k->opt[k->par[i]];

		while (k->n_hull >= 2) {
			const struct opt *a = &k->opt[k->hull[k->n_hull - 2]];
			const struct opt *b = &k->opt[k->hull[k->n_hull - 1]];

			if ((b->th - a->th) * (double)(c->watts - b->watts) >
			    (c->th - b->th) * (double)(b->watts - a->watts))
				break;
			k->n_hull--;
		}
		k->hull[k->n_hull++] = k->par[i];
	}
}

static void ctx_free(struct ctx *x)
{
	free(x->k);
	free(x->mk);
	free(x->mcur);
}

/* Validates the input and builds the groups. 0 / -1 with errno. */
static int ctx_init(struct ctx *x, const struct apid_alloc_model *models, int n_models,
		    const struct apid_alloc_miner *miners, size_t n, long long target_w)
{
	int *slot = NULL;

	memset(x, 0, sizeof(*x));
	x->models = models;
	x->miners = miners;
	x->n = n;
	if (n_models < 0 || (n_models > 0 && !models) || (n > 0 && !miners))
		goto inval;
	for (int m = 0; m < n_models; m++)
		if (!models[m].presets || models[m].n_presets < 1 ||
		    models[m].n_presets > APID_ALLOC_MAX_PRESETS || models[m].max_preset < -1 ||
		    models[m].max_preset >= models[m].n_presets)
			goto inval;
	x->mk = malloc((n ? n : 1) * sizeof(*x->mk));
	x->mcur = malloc((n ? n : 1) * sizeof(*x->mcur));
	slot = malloc(((size_t)n_models * 2 + 1) * sizeof(*slot));
	/* at most one group per miner, and two per model */
	x->k = calloc(n < (size_t)n_models * 2 ? (n ? n : 1) : (size_t)n_models * 2 + 1,
		      sizeof(*x->k));
	if (!x->mk || !x->mcur || !slot || !x->k)
		goto nomem;
	for (int s = 0; s < n_models * 2; s++)
		slot[s] = -1;
	for (size_t i = 0; i < n; i++) {
		const struct apid_alloc_miner *mi = &miners[i];
		struct group *k;
		int s;

		x->mk[i] = x->mcur[i] = -1;
		if (mi->fixed) {
			if (mi->fixed_watts < 0)
				goto inval;
			x->fixed_w += mi->fixed_watts;
			continue;
		}
		if (mi->model < 0 || mi->model >= n_models || mi->current < APID_ALLOC_PRESET_UNKNOWN ||
		    mi->current >= models[mi->model].n_presets)
			goto inval;
		s = mi->model * 2 + mi->may_pause;
		if (slot[s] < 0) {
			k = &x->k[x->nk];
			k->model = mi->model;
			k->may_pause = mi->may_pause;
			group_build(k, &models[mi->model]);
			if (k->n_opt == 0)
				goto inval;
			slot[s] = x->nk++;
		}
		k = &x->k[slot[s]];
		x->mk[i] = slot[s];
		k->n++;
		if (mi->current >= 0)
			x->mcur[i] = k->of_preset[mi->current];
		else if (mi->current == APID_ALLOC_PRESET_PAUSED)
			x->mcur[i] = k->pause_opt;
		if (x->mcur[i] >= 0)
			k->cur[x->mcur[i]]++;
	}
	for (int c = 0; c < x->nk; c++)
		x->min_w += x->k[c].n * x->k[c].opt[0].watts;
	x->budget = target_w - x->fixed_w;
	free(slot);
	return 0;
inval:
	errno = EINVAL;
	goto fail;
nomem:
	errno = ENOMEM;
fail:
	free(slot);
	ctx_free(x);
	return -1;
}

static void plan_totals(const struct ctx *x, long long *w, double *th)
{
	*w = 0;
	*th = 0;
	for (int c = 0; c < x->nk; c++)
		for (int o = 0; o < x->k[c].n_opt; o++) {
			*w += x->k[c].cnt[o] * x->k[c].opt[o].watts;
			*th += (double)x->k[c].cnt[o] * x->k[c].opt[o].th;
		}
}

/* ------------------------------------------------------------ exact table */

/* One option for each of the m miners of groups kk[] (options numbered
 * as in their group), total watts <= budget, most TH: pick[i]. Watts are
 * counted from each miner's least-watt option in units of the gcd of the
 * steps; without `exact` the unit grows (every step rounded up, so the
 * answer still fits) when the table would exceed the work limits. The
 * caller makes sure the least-watt options fit. 0 / -1 with errno. */
static int table_pick(const struct ctx *x, const int *kk, size_t m, long long budget, bool exact,
		      int *pick, double *th)
{
	long long b = budget, range = 0, g = 0, unit, states, max_states, ops = 0, reach = 0;
	double *cur = NULL, *nxt = NULL, full = 0;
	uint8_t *choice = NULL;
	int cost[MAX_OPTS];

	*th = 0;
	if (m == 0)
		return 0;
	for (size_t i = 0; i < m; i++) {
		const struct group *k = &x->k[kk[i]];

		b -= k->opt[0].watts;
		range += k->opt[k->par[k->n_par - 1]].watts - k->opt[0].watts;
		for (int p = 0; p < k->n_par; p++)
			g = gcd(k->opt[k->par[p]].watts - k->opt[0].watts, g);
		ops += k->n_par;
	}
	if (b < 0)
		return errno = EINVAL, -1;
	if (b >= range) {
		/* everything fits: each takes its most TH */
		for (size_t i = 0; i < m; i++) {
			const struct group *k = &x->k[kk[i]];

			pick[i] = k->par[k->n_par - 1];
			*th += k->opt[pick[i]].th;
		}
		return 0;
	}
	unit = g;
	states = b / unit;
	if (exact) {
		max_states = EXACT_TABLE / (long long)m - 1;
	} else {
		max_states = NEAR_WORK / (ops ? ops : 1);
		if (max_states > NEAR_STATES)
			max_states = NEAR_STATES;
	}
	if (states > max_states) {
		if (exact)
			return errno = E2BIG, -1;
		unit = (b + max_states - 1) / max_states;
		states = b / unit;
	}
	cur = malloc((size_t)(states + 1) * sizeof(*cur));
	nxt = malloc((size_t)(states + 1) * sizeof(*nxt));
	choice = malloc((size_t)m * (size_t)(states + 1));
	if (!cur || !nxt || !choice) {
		free(cur);
		free(nxt);
		free(choice);
		return errno = ENOMEM, -1;
	}
	for (long long s = 0; s <= states; s++)
		cur[s] = 0;
	/* from `reach` steps on, the miners so far all fit at their most TH */
	for (size_t i = 0; i < m; i++) {
		const struct group *k = &x->k[kk[i]];
		uint8_t *ch = choice + i * (size_t)(states + 1);
		double *t;
		long long s;

		for (int p = 0; p < k->n_par; p++)
			cost[p] = (int)((k->opt[k->par[p]].watts - k->opt[0].watts + unit - 1) / unit);
		reach += cost[k->n_par - 1];
		full += k->opt[k->par[k->n_par - 1]].th;
		for (s = 0; s <= states && s < reach; s++) {
			double best = cur[s] + k->opt[k->par[0]].th;
			int bp = 0;

			for (int p = 1; p < k->n_par && cost[p] <= s; p++) {
				double v = cur[s - cost[p]] + k->opt[k->par[p]].th;

				if (v > best) {
					best = v;
					bp = p;
				}
			}
			nxt[s] = best;
			ch[s] = (uint8_t)bp;
		}
		for (; s <= states; s++) {
			nxt[s] = full;
			ch[s] = (uint8_t)(k->n_par - 1);
		}
		t = cur;
		cur = nxt;
		nxt = t;
	}
	*th = cur[states];
	for (size_t i = m, s = (size_t)states; i-- > 0;) {
		const struct group *k = &x->k[kk[i]];
		int p = choice[i * (size_t)(states + 1) + s];

		pick[i] = k->par[p];
		s -= (size_t)((k->opt[k->par[p]].watts - k->opt[0].watts + unit - 1) / unit);
	}
	free(cur);
	free(nxt);
	free(choice);
	return 0;
}

/* ------------------------------------------------------------ fresh plan */

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *p = a, *q = b;

	if (p->slope != q->slope)
		return p->slope > q->slope ? -1 : 1;
	if (p->k != q->k)
		return p->k < q->k ? -1 : 1;
	return (p->j > q->j) - (p->j < q->j);
}

/* The greedy over the hulls: the integer plan in cnt, the LP bound and
 * the marginal TH per W. The least-watt options must fit. */
static int greedy(struct ctx *x, double *lp, double *lambda)
{
	struct seg *seg;
	size_t ns = 0;
	long long r;
	double r_lp, th0 = 0;
	bool bound = false;

	*lambda = 0;
	for (int c = 0; c < x->nk; c++)
		ns += (size_t)x->k[c].n_hull - 1;
	if (!(seg = malloc((ns ? ns : 1) * sizeof(*seg))))
		return errno = ENOMEM, -1;
	ns = 0;
	for (int c = 0; c < x->nk; c++) {
		struct group *k = &x->k[c];

		memset(k->up, 0, sizeof(k->up));
		memset(k->cnt, 0, sizeof(k->cnt));
		k->up[0] = k->n;
		th0 += (double)k->n * k->opt[k->hull[0]].th;
		for (int j = 1; j < k->n_hull; j++) {
			const struct opt *a = &k->opt[k->hull[j - 1]], *b = &k->opt[k->hull[j]];

			seg[ns++] = (struct seg){ c, j, (b->th - a->th) / (b->watts - a->watts) };
		}
	}
	qsort(seg, ns, sizeof(*seg), seg_cmp);
	r = x->budget - x->min_w;
	r_lp = (double)r;
	*lp = th0;
	for (size_t i = 0; i < ns; i++) {
		struct group *k = &x->k[seg[i].k];
		int j = seg[i].j;
		const struct opt *a = &k->opt[k->hull[j - 1]], *b = &k->opt[k->hull[j]];
		long long dw = b->watts - a->watts, take;

		if (!bound) {
			double need = (double)k->n * dw;

			if (r_lp >= need) {
				r_lp -= need;
				*lp += (double)k->n * (b->th - a->th);
			} else {
				*lp += r_lp * seg[i].slope;
				*lambda = seg[i].slope;
				bound = true;
			}
		}
		take = r / dw;
		if (take > k->up[j - 1])
			take = k->up[j - 1];
		k->up[j] = take;
		r -= take * dw;
	}
	for (int c = 0; c < x->nk; c++) {
		struct group *k = &x->k[c];

		for (int j = 0; j < k->n_hull; j++)
			k->cnt[k->hull[j]] = k->up[j] - (j + 1 < k->n_hull ? k->up[j + 1] : 0);
	}
	free(seg);
	return 0;
}

/* Re-plans a few miners of every (group, option) in use exactly, with the
 * watts they hold and the leftover; keeps the result when it gains. */
static int improve(struct ctx *x)
{
	int kk[NEAR_MINERS], ko[NEAR_MINERS], pick[NEAR_MINERS];
	long long w;
	double th;

	if (x->nk == 0)
		return 0;
	plan_totals(x, &w, &th);
	for (int pass = 0; pass < NEAR_PASSES; pass++) {
		size_t m = 0;
		long long held = 0;
		double th_old = 0, th_new;
		bool more = true;

		/* round-robin over the options in use, from the top of each
		 * group; a later pass starts at another group */
		while (more && m < NEAR_MINERS) {
			more = false;
			for (int ci = 0; ci < x->nk && m < NEAR_MINERS; ci++) {
				struct group *k = &x->k[(ci + pass * 7) % x->nk];

				for (int o = k->n_opt - 1; o >= 0 && m < NEAR_MINERS; o--) {
					if (k->cnt[o] == 0)
						continue;
					k->cnt[o]--;
					kk[m] = (int)(k - x->k);
					ko[m++] = o;
					held += k->opt[o].watts;
					th_old += k->opt[o].th;
					more = true;
				}
			}
		}
		if (table_pick(x, kk, m, x->budget - (w - held), false, pick, &th_new) < 0) {
			for (size_t i = 0; i < m; i++)
				x->k[kk[i]].cnt[ko[i]]++;
			return errno == ENOMEM ? -1 : 0;
		}
		if (th_new > th_old + 1e-9 * (1 + th_old)) {
			long long w_new = w - held;

			for (size_t i = 0; i < m; i++)
				w_new += x->k[kk[i]].opt[pick[i]].watts;
			if (w_new <= x->budget) {   /* always, as the table rounds up */
				for (size_t i = 0; i < m; i++)
					x->k[kk[i]].cnt[pick[i]]++;
				plan_totals(x, &w, &th);
				continue;
			}
		}
		for (size_t i = 0; i < m; i++)
			x->k[kk[i]].cnt[ko[i]]++;
		break;
	}
	return 0;
}

/* ------------------------------------------------------------ from the current presets */

/* Where a miner that runs none of its options starts from: the cap for
 * one above it, its least-watt preset otherwise. */
static int start_opt(const struct ctx *x, size_t i)
{
	const struct group *k = &x->k[x->mk[i]];
	const struct apid_alloc_model *m = &x->models[k->model];
	int cur = x->miners[i].current, best = -1;

	if (cur >= 0 && usable(&m->presets[cur]) && !allowed(m, cur)) {
		for (int o = 0; o < k->n_opt; o++)
			if (k->opt[o].preset >= 0 && k->opt[o].watts <= m->presets[cur].watts &&
			    (best < 0 || k->opt[o].th > k->opt[best].th))
				best = o;
		if (best >= 0)
			return best;
	}
	for (int o = 0; o < k->n_opt; o++)
		if (k->opt[o].preset >= 0)
			return o;
	return 0;
}

/* The plan of the current presets. */
static void from_current(struct ctx *x)
{
	for (int c = 0; c < x->nk; c++)
		memcpy(x->k[c].cnt, x->k[c].cur, sizeof(x->k[c].cnt));
	for (size_t i = 0; i < x->n; i++)
		if (x->mk[i] >= 0 && x->mcur[i] < 0)
			x->k[x->mk[i]].cnt[start_opt(x, i)]++;
}

/* Lowers miners while the plan is over the budget: the move that loses
 * the least TH per W freed first (one that gains, first of all), on as
 * many miners as the excess needs. false when it cannot get under. */
static bool lower_fit(struct ctx *x)
{
	long long w;
	double th;

	plan_totals(x, &w, &th);
	for (int steps = 0; w > x->budget; steps++) {
		struct group *bk = NULL;
		int bo = -1, bp = -1;
		double br = 0;
		long long dw, take;

		if (steps > STEPS_MAX)
			return false;
		for (int c = 0; c < x->nk; c++) {
			struct group *k = &x->k[c];

			for (int o = 0; o < k->n_opt; o++) {
				if (k->cnt[o] == 0)
					continue;
				for (int p = 0; p < k->n_par; p++) {
					const struct opt *to = &k->opt[k->par[p]];
					double r;

					if (to->watts >= k->opt[o].watts)
						break;
					r = (k->opt[o].th - to->th) / (k->opt[o].watts - to->watts);
					if (!bk || r < br) {
						bk = k;
						bo = o;
						bp = k->par[p];
						br = r;
					}
				}
			}
		}
		if (!bk)
			return false;
		dw = bk->opt[bo].watts - bk->opt[bp].watts;
		take = (w - x->budget + dw - 1) / dw;
		if (take > bk->cnt[bo])
			take = bk->cnt[bo];
		bk->cnt[bo] -= take;
		bk->cnt[bp] += take;
		w -= take * dw;
	}
	return true;
}

/* Raises miners while an upgrade fits: the most TH per W first (one that
 * gains for no watts, first of all), on as many miners as fit. */
static void raise_fit(struct ctx *x)
{
	long long w;
	double th;

	plan_totals(x, &w, &th);
	for (int steps = 0; steps < STEPS_MAX; steps++) {
		struct group *bk = NULL;
		int bo = -1, bp = -1;
		double br = 0;
		long long left = x->budget - w, dw, take;

		for (int c = 0; c < x->nk; c++) {
			struct group *k = &x->k[c];

			for (int o = 0; o < k->n_opt; o++) {
				if (k->cnt[o] == 0)
					continue;
				for (int p = 0; p < k->n_par; p++) {
					const struct opt *to = &k->opt[k->par[p]];
					long long d = to->watts - k->opt[o].watts;
					double r;

					if (d > left)
						break;
					if (to->th <= k->opt[o].th)
						continue;
					r = d <= 0 ? 1e300 : (to->th - k->opt[o].th) / d;
					if (!bk || r > br) {
						bk = k;
						bo = o;
						bp = k->par[p];
						br = r;
					}
				}
			}
		}
		if (!bk)
			return;
		dw = bk->opt[bp].watts - bk->opt[bo].watts;
		take = dw <= 0 ? bk->cnt[bo] : left / dw;
		if (take > bk->cnt[bo])
			take = bk->cnt[bo];
		bk->cnt[bo] -= take;
		bk->cnt[bp] += take;
		w += take * dw;
	}
}

/* ------------------------------------------------------------ miners */

struct pending {
	int k;
	int watts;             /* what it draws now: -1 unknown */
	size_t i;
};

static int pending_cmp(const void *a, const void *b)
{
	const struct pending *p = a, *q = b;

	if (p->k != q->k)
		return p->k < q->k ? -1 : 1;
	if (p->watts != q->watts)
		return p->watts < q->watts ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

static enum apid_alloc_reason reason_of(const struct ctx *x, size_t i, const struct opt *to)
{
	const struct apid_alloc_miner *mi = &x->miners[i];
	const struct apid_alloc_model *m = &x->models[mi->model];
	const struct apid_alloc_preset *cur;

	if (mi->current == APID_ALLOC_PRESET_UNKNOWN)
		return APID_ALLOC_SET;
	if (to->preset == APID_ALLOC_PRESET_PAUSED)
		return mi->current == APID_ALLOC_PRESET_PAUSED ? APID_ALLOC_KEPT : APID_ALLOC_PAUSED;
	if (to->preset == m->max_preset) {
		for (int p = 0; p < m->n_presets; p++)
			if (usable(&m->presets[p]) && !allowed(m, p) && m->presets[p].th > to->th)
				return APID_ALLOC_CAPPED;
	}
	if (mi->current == APID_ALLOC_PRESET_PAUSED)
		return APID_ALLOC_RESUMED;
	if (mi->current == to->preset)
		return APID_ALLOC_KEPT;
	cur = &m->presets[mi->current];
	if (cur->watts != to->watts)
		return cur->watts < to->watts ? APID_ALLOC_RAISED : APID_ALLOC_LOWERED;
	return cur->th < to->th ? APID_ALLOC_RAISED : APID_ALLOC_LOWERED;
}

/* Hands the plan's options out: first to the miners that run them, the
 * rest in order of watts (the lowest draw now gets the lowest option
 * left). Fills out[] and the totals. */
static int assign(struct ctx *x, struct apid_alloc_choice *out, struct apid_alloc_result *res)
{
	struct pending *pd = NULL;
	size_t np = 0;

	if (!(pd = malloc((x->n ? x->n : 1) * sizeof(*pd))))
		return errno = ENOMEM, -1;
	for (int c = 0; c < x->nk; c++)
		memcpy(x->k[c].rem, x->k[c].cnt, sizeof(x->k[c].rem));
	for (size_t i = 0; i < x->n; i++) {
		const struct apid_alloc_miner *mi = &x->miners[i];
		struct group *k;
		int o = x->mcur[i];

		if (x->mk[i] < 0) {
			out[i] = (struct apid_alloc_choice){ .preset = mi->current,
							     .watts = mi->fixed_watts,
							     .reason = APID_ALLOC_FIXED };
			continue;
		}
		k = &x->k[x->mk[i]];
		if (o >= 0 && k->rem[o] > 0) {
			k->rem[o]--;
			out[i].preset = o;   /* option for now */
			continue;
		}
		pd[np++] = (struct pending){ x->mk[i],
					     mi->current >= 0 ? x->models[mi->model].presets[mi->current].watts :
					     mi->current == APID_ALLOC_PRESET_PAUSED ? 0 : -1, i };
	}
	qsort(pd, np, sizeof(*pd), pending_cmp);
	for (size_t a = 0; a < np;) {
		struct group *k = &x->k[pd[a].k];
		int o = 0;

		for (; a < np && pd[a].k == (int)(k - x->k); a++) {
			while (o < k->n_opt && k->rem[o] == 0)
				o++;
			if (o == k->n_opt) {   /* counts and miners disagree: a bug */
				free(pd);
				return errno = EINVAL, -1;
			}
			k->rem[o]--;
			out[pd[a].i].preset = o;
		}
	}
	free(pd);
	res->watts = x->fixed_w;
	for (size_t i = 0; i < x->n; i++) {
		const struct opt *to;
		struct apid_alloc_choice *ch = &out[i];

		if (x->mk[i] < 0)
			continue;
		to = &x->k[x->mk[i]].opt[ch->preset];
		ch->preset = to->preset;
		ch->watts = to->watts;
		ch->th = to->th;
		ch->changed = x->miners[i].current != to->preset;
		ch->reason = reason_of(x, i, to);
		res->watts += to->watts;
		res->th += to->th;
		res->changes += ch->changed;
		res->managed++;
	}
	for (size_t i = 0; i < x->n; i++)
		res->reasons[out[i].reason]++;
	return 0;
}

/* ------------------------------------------------------------ entry points */

static void result_start(const struct ctx *x, long long target_w, struct apid_alloc_result *res)
{
	memset(res, 0, sizeof(*res));
	res->target_w = target_w;
	res->fixed_w = x->fixed_w;
	res->min_w = x->fixed_w + x->min_w;
	res->max_w = x->fixed_w;
	for (int c = 0; c < x->nk; c++) {
		const struct group *k = &x->k[c];

		res->max_w += k->n * k->opt[k->hull[k->n_hull - 1]].watts;
	}
	res->feasible = x->budget >= x->min_w;
}

/* Copies every group's plan to (or, !out, from) to[group]. */
static void save(struct ctx *x, long long (*to)[MAX_OPTS], bool out)
{
	for (int c = 0; c < x->nk; c++) {
		if (out)
			memcpy(to[c], x->k[c].cnt, sizeof(to[c]));
		else
			memcpy(x->k[c].cnt, to[c], sizeof(to[c]));
	}
}

/* The least draw: every miner at its least-watt option. */
static void least_draw(struct ctx *x)
{
	for (int c = 0; c < x->nk; c++) {
		memset(x->k[c].cnt, 0, sizeof(x->k[c].cnt));
		x->k[c].cnt[0] = x->k[c].n;
	}
}

/* Every managed miner by dynamic programming over all of them. */
static int plan_exact(struct ctx *x, struct apid_alloc_result *res)
{
	int *kk = malloc((x->n ? x->n : 1) * sizeof(*kk)), *pick = malloc((x->n ? x->n : 1) * sizeof(*pick));
	size_t m = 0;
	double th;
	int rc = -1;

	if (!kk || !pick) {
		errno = ENOMEM;
		goto out;
	}
	if (greedy(x, &res->lp_bound_th, &res->marginal_th_per_w) < 0)
		goto out;
	for (size_t i = 0; i < x->n; i++)
		if (x->mk[i] >= 0)
			kk[m++] = x->mk[i];
	if (table_pick(x, kk, m, x->budget, true, pick, &th) < 0)
		goto out;
	for (int c = 0; c < x->nk; c++)
		memset(x->k[c].cnt, 0, sizeof(x->k[c].cnt));
	for (size_t i = 0; i < m; i++)
		x->k[kk[i]].cnt[pick[i]]++;
	res->basis = APID_ALLOC_BASIS_EXACT;
	rc = 0;
out:
	free(kk);
	free(pick);
	return rc;
}

/* The fresh, incremental and current plans; the first of current,
 * incremental, fresh that comes within h watts' worth of TH (at the LP's
 * margin) of the best one wins. Plans that change something fit h watts
 * under the budget (but above the least draw); the current one is kept
 * while it fits the budget itself. */
static int plan_best(struct ctx *x, int h, struct apid_alloc_result *res)
{
	long long(*saved)[MAX_OPTS] = malloc((size_t)(x->nk ? x->nk : 1) * 2 * sizeof(*saved));
	long long b = x->budget, w;
	double th_cur, th_inc = 0, th_fresh, worth, best, lp, lambda;
	bool cur_fits, inc_ok;
	int rc = -1;

	if (!saved) {
		errno = ENOMEM;
		return -1;
	}
	if (greedy(x, &res->lp_bound_th, &res->marginal_th_per_w) < 0)
		goto out;
	worth = h * res->marginal_th_per_w;
	x->budget = b - h < x->min_w ? x->min_w : b - h;
	if ((h > 0 && greedy(x, &lp, &lambda) < 0) || improve(x) < 0)
		goto out;
	raise_fit(x);
	plan_totals(x, &w, &th_fresh);
	save(x, saved, true);

	from_current(x);
	plan_totals(x, &w, &th_cur);
	cur_fits = w <= b;
	if ((inc_ok = lower_fit(x))) {
		raise_fit(x);
		plan_totals(x, &w, &th_inc);
		save(x, saved + x->nk, true);
	}

	best = inc_ok && th_inc > th_fresh ? th_inc : th_fresh;
	best -= 1e-9 * (1 + best);      /* rounding must not break a tie */
	if (cur_fits && th_cur + worth >= best) {
		from_current(x);
		res->basis = APID_ALLOC_BASIS_CURRENT;
	} else if (inc_ok && th_inc + worth >= th_fresh - 1e-9 * (1 + th_fresh)) {
		save(x, saved + x->nk, false);
		res->basis = APID_ALLOC_BASIS_INCREMENTAL;
	} else {
		save(x, saved, false);
		res->basis = APID_ALLOC_BASIS_FRESH;
	}
	rc = 0;
out:
	x->budget = b;
	free(saved);
	return rc;
}

static int plan(const struct apid_alloc_model *models, int n_models,
		const struct apid_alloc_miner *miners, size_t n, long long target_w,
		const struct apid_alloc_opts *o, bool exact, struct apid_alloc_choice *out,
		struct apid_alloc_result *res)
{
	struct ctx x;
	int rc;

	if ((n > 0 && !out) || !res)
		return errno = EINVAL, -1;
	if (ctx_init(&x, models, n_models, miners, n, target_w) < 0)
		return -1;
	result_start(&x, target_w, res);
	if (!res->feasible) {
		least_draw(&x);
		res->basis = APID_ALLOC_BASIS_LEAST;
		rc = 0;
	} else if (exact) {
		rc = plan_exact(&x, res);
	} else {
		rc = plan_best(&x, o && o->hysteresis_w > 0 ? o->hysteresis_w : 0, res);
	}
	if (rc == 0)
		rc = assign(&x, out, res);
	ctx_free(&x);
	return rc;
}

int apid_alloc_plan(const struct apid_alloc_model *models, int n_models,
		    const struct apid_alloc_miner *miners, size_t n, long long target_w,
		    const struct apid_alloc_opts *o, struct apid_alloc_choice *out,
		    struct apid_alloc_result *res)
{
	return plan(models, n_models, miners, n, target_w, o, false, out, res);
}

int apid_alloc_exact(const struct apid_alloc_model *models, int n_models,
		     const struct apid_alloc_miner *miners, size_t n, long long target_w,
		     struct apid_alloc_choice *out, struct apid_alloc_result *res)
{
	return plan(models, n_models, miners, n, target_w, NULL, true, out, res);
}

const char *apid_alloc_basis_name(enum apid_alloc_basis b)
{
	static const char *const names[] = {
		[APID_ALLOC_BASIS_CURRENT] = "current", [APID_ALLOC_BASIS_INCREMENTAL] = "incremental",
		[APID_ALLOC_BASIS_FRESH] = "fresh",     [APID_ALLOC_BASIS_EXACT] = "exact",
		[APID_ALLOC_BASIS_LEAST] = "least",
	};

	return (unsigned)b < sizeof(names) / sizeof(names[0]) ? names[b] : "?";
}

const char *apid_alloc_reason_name(enum apid_alloc_reason r)
{
	static const char *const names[APID_ALLOC_REASONS] = {
		[APID_ALLOC_KEPT] = "kept",       [APID_ALLOC_RAISED] = "raised",
		[APID_ALLOC_LOWERED] = "lowered", [APID_ALLOC_PAUSED] = "paused",
		[APID_ALLOC_RESUMED] = "resumed", [APID_ALLOC_CAPPED] = "capped",
		[APID_ALLOC_SET] = "set",         [APID_ALLOC_FIXED] = "fixed",
	};

	return (unsigned)r < APID_ALLOC_REASONS ? names[r] : "?";
}
