/* allocate — which preset each managed miner runs so that the farm draws
 * no more than its power target, with the most expected hashrate.
 *
 * A pure function of the fleet, the catalogues and the target: no
 * database, no bus, no globals, no logging. The balancer calls it every
 * few seconds with the presets the miners run now; tests and the bench
 * drive it alone. docs/power.md ("Allocation") describes the algorithm.
 *
 * Each managed miner runs one preset of its model's catalogue, drawing no
 * more than the model's max_preset, or is paused (0 W, 0 TH) when it may
 * be: pausing is an option like any other, taken when the watts buy more
 * elsewhere. A fixed miner is not managed: it only counts as its fixed
 * watts. The plan keeps expected watts <= target - fixed watts and
 * maximises expected TH/s (a multiple-choice knapsack).
 */
#ifndef APID_ALLOCATE_H
#define APID_ALLOCATE_H

#include <stdbool.h>
#include <stddef.h>

#define APID_ALLOC_MAX_PRESETS 64      /* as HIVE_FW_MAX_PRESETS */

/* A miner's preset index, when it is not a preset. */
#define APID_ALLOC_PRESET_PAUSED  (-1)
#define APID_ALLOC_PRESET_UNKNOWN (-2) /* input only: what it runs is not known */

struct apid_alloc_preset {
	int watts;          /* expected draw; a preset with watts < 1 is never chosen */
	double th;          /* expected TH/s; one < 0 or not finite is never chosen */
};

/* A model: its catalogue and its cap. */
struct apid_alloc_model {
	const struct apid_alloc_preset *presets;  /* in any order */
	int n_presets;                            /* 1..APID_ALLOC_MAX_PRESETS */
	int max_preset;     /* index of the cap: no preset drawing more watts than it
			     * is allowed; -1: no cap */
};

struct apid_alloc_miner {
	int model;          /* index into the models (not read when fixed) */
	int current;        /* preset index it runs now, APID_ALLOC_PRESET_PAUSED or _UNKNOWN */
	bool may_pause;
	bool fixed;         /* not managed: counts as fixed_watts, never changed */
	int fixed_watts;
};

enum apid_alloc_reason {
	APID_ALLOC_KEPT,       /* runs (or stays paused at) what it runs now */
	APID_ALLOC_RAISED,     /* a preset with more watts than its current one
				* (with as many: more TH) */
	APID_ALLOC_LOWERED,    /* a preset with fewer watts (with as many: less TH) */
	APID_ALLOC_PAUSED,     /* paused; it was running */
	APID_ALLOC_RESUMED,    /* runs a preset; it was paused */
	APID_ALLOC_CAPPED,     /* runs max_preset, and the catalogue has a higher
				* preset with more TH (also: lowered to the cap) */
	APID_ALLOC_SET,        /* its current preset was unknown */
	APID_ALLOC_FIXED,      /* not managed */
	APID_ALLOC_REASONS
};

/* The plan for one miner; out[i] answers miners[i]. */
struct apid_alloc_choice {
	int preset;         /* preset index or APID_ALLOC_PRESET_PAUSED; fixed: its current */
	int watts;          /* expected draw (fixed: fixed_watts) */
	double th;          /* expected TH/s (fixed: 0, not known) */
	enum apid_alloc_reason reason;
	bool changed;       /* preset differs from current (always for an unknown one) */
};

struct apid_alloc_opts {
	/* Hysteresis in watts (h). The current presets are kept while they fit
	 * the target, unless another plan gains more TH/s than h watts are
	 * worth at the margin (h x marginal_th_per_w). A plan that changes
	 * something fits h watts under the target (never below the least
	 * draw), so that noise of less than h W neither forces it back down
	 * nor raises it again. 0: the current presets are kept only when no
	 * plan does better; ties always keep them. */
	int hysteresis_w;
};

/* Which plan was chosen. */
enum apid_alloc_basis {
	APID_ALLOC_BASIS_CURRENT,      /* the current presets, kept */
	APID_ALLOC_BASIS_INCREMENTAL,  /* the current presets, lowered while over the target
					* and raised while an upgrade fits */
	APID_ALLOC_BASIS_FRESH,        /* planned anew */
	APID_ALLOC_BASIS_EXACT,        /* apid_alloc_exact */
	APID_ALLOC_BASIS_LEAST,        /* infeasible: the least draw */
};

struct apid_alloc_result {
	bool feasible;             /* false: the target is below min_w; the plan is
				    * the least draw (every miner at its least-watt
				    * preset, paused where it may be) */
	enum apid_alloc_basis basis;
	long long target_w;
	long long fixed_w;         /* fixed miners */
	long long watts;           /* expected draw of the plan, fixed miners included */
	double th;                 /* expected TH/s of the managed miners */
	double lp_bound_th;        /* LP-relaxation bound on th (0 when infeasible) */
	double marginal_th_per_w;  /* TH/s the last watt buys in the LP; 0 when not bound */
	long long min_w;           /* least draw achievable, fixed included */
	long long max_w;           /* draw with every managed miner at its most-TH preset */
	size_t managed;
	size_t changes;            /* managed miners whose preset changes */
	size_t reasons[APID_ALLOC_REASONS];
};

/* Plans presets for n miners under target_w. models[n_models] are the
 * catalogues; o may be NULL (hysteresis 0). Writes out[n] and *res. The
 * decision for 10,000 miners of a few models takes a few milliseconds.
 * Returns 0 (res->feasible says whether the target is met), or -1 with
 * errno EINVAL (a model index, max_preset or current out of range, a
 * catalogue of 0 or more than APID_ALLOC_MAX_PRESETS presets, a managed
 * miner with no usable preset that may not pause, a negative fixed_watts)
 * or ENOMEM. Allocates only scratch memory, freed before it returns. */
int apid_alloc_plan(const struct apid_alloc_model *models, int n_models,
		    const struct apid_alloc_miner *miners, size_t n, long long target_w,
		    const struct apid_alloc_opts *o, struct apid_alloc_choice *out,
		    struct apid_alloc_result *res);

/* The exact optimum (dynamic programming over watts in units of the
 * greatest common divisor of the presets' steps); tests and the bench
 * measure apid_alloc_plan against it. Time and memory grow as
 * miners x watts range / gcd: fine for a few hundred miners with watts in
 * tens, not for a farm. Same arguments and answers as apid_alloc_plan
 * (out[] assigned with the fewest changes; basis EXACT; no hysteresis), and -1
 * with errno E2BIG when the table would exceed 256 MiB. */
int apid_alloc_exact(const struct apid_alloc_model *models, int n_models,
		     const struct apid_alloc_miner *miners, size_t n, long long target_w,
		     struct apid_alloc_choice *out, struct apid_alloc_result *res);

/* "current", "incremental", "fresh", "exact", "least"; "?" out of range. */
const char *apid_alloc_basis_name(enum apid_alloc_basis b);

/* "kept", "raised", "lowered", "paused", "resumed", "capped", "set",
 * "fixed"; "?" out of range. */
const char *apid_alloc_reason_name(enum apid_alloc_reason r);

#endif
