/* test_power — the power balancer (issue 11) end to end: bin/minersim with
 * 220 miners (S19 and S19j Pro), bin/plantsim as the plant (its containers'
 * consumption is minersim's true draw), bin/apid, bin/discoverd and two
 * bin/pollerd. apid's HTTP API on one side; on the other the simulators'
 * ground truth decides: minersim's /sim/fleet power_w (the true draw),
 * /sim/miners (the preset each miner runs, its settings_calls /
 * preset_changes / pauses counters) and plantsim's /sim/state (the actual
 * generation, the overdraw scorecard).
 *
 * 200 miners are managed, 20 (every 11th) are not: they are the fixed load
 * and must never be touched. Each model has a max_preset. A monitor thread
 * samples the true draw, the generation and apid's target every 200 ms and
 * every miner every second, and records any managed miner above its
 * model's max_preset and any control call on an unmanaged miner, in every
 * test.
 *
 * One stack serves every test, in order:
 *   1. dry_run (the config's mode): decisions and a plan, nothing sent;
 *   2. mode on: the farm settles under the target with >= 98 % of the exact
 *      optimum's hashrate (apid_alloc_exact on the same catalogues, fixed
 *      load and target);
 *   3. a 30 % generation drop: the true draw under the new target within a
 *      status interval plus the tuning time (and the feed's period);
 *   4. the rise back: climbs to 98 % of the optimum, never above the target;
 *   5. a noisy feed (±3 % random walk): preset changes per miner bounded, no
 *      miner up-down-up;
 *   6. feed faults (stale, low confidence, a failed source, a 503, one
 *      reading at zero): each refused and counted, nothing sent;
 *   7. kill -9 of apid mid-cut: restarted from the same config, the cut ends
 *      under the target, no action sent twice;
 *   8. zero generation held: refused once, confirmed, the farm cuts to its
 *      least draw, with a pollerd killed -9 mid-cut;
 *   9. the Modbus meter as the source: a climb and a cut;
 *  10. over the whole run: no max-preset violation, no unmanaged miner
 *      touched, no preset change without an action.
 *
 * Figures are printed as "figure: power: ..." lines. KEEP_TMP=1 keeps the
 * run directory (config, database, every log).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../apid/allocate.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET            "127.67.0.0/24"
#define MINERS            220
#define UNMANAGED_EVERY   11            /* index % 11 == 5: 20 unmanaged miners */
#define STATUS_S          2
#define INTERVAL_S        1             /* power.interval_seconds */
#define STALE_S           6
#define RAISE_AFTER_S     3
#define MIN_RAISE_S       5
#define TUNE_S            2
#define TUNED_S           1
#define ACTION_TIMEOUT_S  20
#define CONTROL_JOB_S     4
#define MARGIN            0.10
#define PLANT_ID          "plant-1"
#define MB_REG            100
#define RATIO_MIN         0.98
#define NOISE_S           20
#define NOISE_PCT         3
#define NOISE_MAX_CHANGES 4             /* per miner over NOISE_S */
#define DRAW_TOL          1.01          /* minersim's draw: ±1 % noise per miner */
/* Settled: nothing moved for so long. The steady state waits out a
 * miner's min_raise_interval; elsewhere raise_after is enough. */
#define QUIET_STEADY_MS   ((MIN_RAISE_S + 1) * 1000)
#define QUIET_MS          ((RAISE_AFTER_S + 1) * 1000)
#define SAMPLE_MS         200
#define MAX_SAMPLES       8192

static const char *const counters[] = {
	"settings_calls", "preset_changes", "restarts", "stops", "starts", "pauses", "resumes",
	"reboots",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static struct ts_suite S;

/* ------------------------------------------------------------ the catalogues */

struct model {
	const char *alias;
	const char *max_name;               /* the max_preset the test sets */
	int n;
	char name[APID_ALLOC_MAX_PRESETS][24];
	struct apid_alloc_preset p[APID_ALLOC_MAX_PRESETS];
	int max_idx, max_w;
	int least_idx, least_w;
};

static struct model models[2] = {
	{ .alias = "s19", .max_name = "2950" },
	{ .alias = "s19jpro", .max_name = "3320" },
};

struct fm {
	char mac[18];                       /* lower case */
	int model;
	bool managed;
};

static struct fm fleet[MINERS];
static int nmanaged;

/* Levels of the run, from the fleet (test 1). */
static long long gen0;                  /* generation of the steady state */
static long long fixed_truth;           /* unmanaged miners' true draw */
static long long w_least, w_max;        /* managed: all at least / all at max_preset */

/* ------------------------------------------------------------ helpers */

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static double num(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static char tb[1024];

/* j as compact JSON in tb, for a message. */
static const char *jtext(const json_t *j)
{
	size_t n = j ? json_dumpb(j, tb, sizeof(tb) - 1, JSON_COMPACT) : 0;

	if (!j)
		return "-";
	if (n == 0 || n >= sizeof(tb))
		return "(too long)";
	tb[n] = '\0';
	return tb;
}

static long api_patch(const char *path, const char *body)
{
	long st = 0;

	json_decref(ts_api(&S, "PATCH", path, body, &st));
	return st;
}

static json_t *power(void)
{
	return ts_api_get(&S, "/api/power");
}

static json_t *sim_get(const char *path)
{
	return ts_sim_get(&S, S.admin, path);
}

/* plantsim's admin API; the status. */
static long plant_post(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long plant_post(const char *path, const char *fmt, ...)
{
	char body[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	return ts_sim_post(&S, S.plant, path, body);
}

static json_t *plant_state(void)
{
	return ts_http(&S, "GET", S.plant, "/sim/state", NULL, false, NULL);
}

/* The plant's actual generation now, W. */
static double plant_generation(void)
{
	json_t *s = plant_state();
	double g = num(json_object_get(s, "generation"), "actual_w");

	json_decref(s);
	return g;
}

/* minersim's true draw now, W. */
static double true_draw(void)
{
	json_t *f = sim_get("/sim/fleet");
	double w = num(f, "power_w");

	json_decref(f);
	return w;
}

static int preset_idx(const struct model *md, const char *name)
{
	for (int i = 0; i < md->n; i++)
		if (strcmp(md->name[i], name) == 0)
			return i;
	return -1;
}

static double readings_count(const json_t *pw, const char *reason)
{
	const json_t *r = json_object_get(pw, "readings");

	if (!reason)
		return num(r, "accepted");
	return num(json_object_get(r, "refused_by"), reason);
}

static long long in_flight(const json_t *pw)
{
	long long n = int_at(json_object_get(pw, "miners"), "in_flight");

	return n < 0 ? 0 : n;
}

static void dump_logs(void)
{
	ts_dump_logs(&S, 25);
}

#define FAIL(...) do { dump_logs(); fail_msg(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------ the monitor */

struct sample {
	long long t;            /* mono ms */
	double draw;            /* minersim power_w */
	double gen;             /* plantsim generation actual_w */
	double target;          /* apid's target_w (NAN when apid does not answer) */
};

#define SEQ_MAX 16

static struct {
	pthread_mutex_t mu;
	pthread_t th;
	bool started;
	volatile bool run;
	struct sample s[MAX_SAMPLES];
	int n;
	json_t *miners;         /* the latest /sim/miners */
	long long miners_t;
	bool check_max;         /* managed miners must be at or under max_preset */
	int violations;
	char violation[700];    /* the first */
	/* oscillation tracking (test 5) */
	bool track;
	int last_w[MINERS];
	char seq[MINERS][SEQ_MAX + 1];   /* 'U' / 'D' per change seen */
} mon = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;

	if (mon.violations++ == 0) {
		va_start(ap, fmt);
		vsnprintf(mon.violation, sizeof(mon.violation), fmt, ap);
		va_end(ap);
		fprintf(stderr, "power: VIOLATION %s\n", mon.violation);
	}
}

/* One /sim/miners against the invariants; with mon.mu held. */
static void check_truth(const json_t *miners)
{
	size_t i;
	json_t *m;

	json_array_foreach(miners, i, m) {
		const struct fm *f;
		const struct model *md;
		int p, w;

		if (i >= MINERS)
			break;
		f = &fleet[i];
		md = &models[f->model];
		if (!f->managed) {
			for (size_t k = 0; k < NCOUNTERS; k++)
				if (int_at(m, counters[k]) != 0)
					violation("unmanaged miner %s: %s = %lld", f->mac, counters[k],
						  int_at(m, counters[k]));
			continue;
		}
		p = preset_idx(md, str_at(m, "preset"));
		w = p >= 0 ? md->p[p].watts : 1 << 30;
		if (mon.check_max && w > md->max_w)
			violation("managed %s miner %s runs preset %s above max_preset %s",
				  md->alias, f->mac, str_at(m, "preset"), md->max_name);
		if (mon.track && p >= 0 && w != mon.last_w[i]) {
			size_t l = strlen(mon.seq[i]);

			if (l < SEQ_MAX) {
				mon.seq[i][l] = w > mon.last_w[i] ? 'U' : 'D';
				mon.seq[i][l + 1] = '\0';
			}
			mon.last_w[i] = w;
		}
	}
}

static void *monitor(void *arg)
{
	long long tick = 0;

	(void)arg;
	while (mon.run) {
		long long t = hive_mono_ms();
		json_t *pw = power(), *st = plant_state();
		struct sample x = {
			.t = t,
			.draw = true_draw(),
			.gen = num(json_object_get(st, "generation"), "actual_w"),
			.target = num(pw, "target_w"),
		};

		json_decref(pw);
		json_decref(st);
		pthread_mutex_lock(&mon.mu);
		if (mon.n < MAX_SAMPLES)
			mon.s[mon.n++] = x;
		pthread_mutex_unlock(&mon.mu);
		if (tick++ % (1000 / SAMPLE_MS) == 0) {
			json_t *m = sim_get("/sim/miners");

			if (json_array_size(m) == MINERS) {
				pthread_mutex_lock(&mon.mu);
				check_truth(m);
				json_decref(mon.miners);
				mon.miners = m;
				mon.miners_t = hive_mono_ms();
				pthread_mutex_unlock(&mon.mu);
			} else {
				json_decref(m);
			}
		}
		t = SAMPLE_MS - (hive_mono_ms() - t);
		if (t > 0)
			tl_sleep_ms((int)t);
	}
	return NULL;
}

/* The monitor's samples since mono time t0 (a malloc'd copy, *n of them). */
static struct sample *samples_since(long long t0, int *n)
{
	struct sample *out;
	int k = 0;

	pthread_mutex_lock(&mon.mu);
	out = calloc((size_t)mon.n + 1, sizeof(*out));
	for (int i = 0; out && i < mon.n; i++)
		if (mon.s[i].t >= t0)
			out[k++] = mon.s[i];
	pthread_mutex_unlock(&mon.mu);
	*n = k;
	return out;
}

static void assert_no_violation(void)
{
	int n;
	char first[700];

	pthread_mutex_lock(&mon.mu);
	n = mon.violations;
	snprintf(first, sizeof(first), "%s", mon.violation);
	pthread_mutex_unlock(&mon.mu);
	if (n)
		FAIL("%d invariant violations; the first: %s", n, first);
}

/* ------------------------------------------------------------ the fleet's figures */

struct eval {
	double th;              /* managed: catalogue TH of the presets they run */
	long long w;            /* managed: catalogue watts */
	int unknown;            /* managed miners on a preset not in the catalogue */
	int tuning;             /* managed miners tuning */
	int at_least;           /* managed miners at their model's least preset */
	long long activity;     /* managed: sum of control counters */
	long long true_managed_w; /* managed: minersim power_w */
};

static void evaluate(const json_t *miners, struct eval *e)
{
	size_t i;
	json_t *m;

	memset(e, 0, sizeof(*e));
	json_array_foreach(miners, i, m) {
		const struct model *md;
		int p;

		if (i >= MINERS || !fleet[i].managed)
			continue;
		md = &models[fleet[i].model];
		p = preset_idx(md, str_at(m, "preset"));
		if (p < 0) {
			e->unknown++;
		} else {
			e->th += md->p[p].th;
			e->w += md->p[p].watts;
			e->at_least += p == md->least_idx;
		}
		e->tuning += json_is_true(json_object_get(m, "tuning"));
		e->true_managed_w += (long long)num(m, "power_w");
		for (size_t k = 0; k < NCOUNTERS; k++)
			e->activity += int_at(m, counters[k]);
	}
}

/* The exact optimum's TH for the managed miners under target_w with
 * fixed_w of fixed load (apid_alloc_exact on apid's catalogues). NAN when
 * it cannot be computed; *feasible says whether the target is met. */
static double optimum(long long target_w, long long fixed_w, long long *opt_w, bool *feasible)
{
	struct apid_alloc_model am[2];
	struct apid_alloc_miner mi[MINERS + 1];
	struct apid_alloc_choice out[MINERS + 1];
	struct apid_alloc_result res;
	size_t n = 0;
	long long t0 = hive_mono_ms();

	for (int k = 0; k < 2; k++)
		am[k] = (struct apid_alloc_model){ models[k].p, models[k].n, models[k].max_idx };
	for (int i = 0; i < MINERS; i++)
		if (fleet[i].managed)
			mi[n++] = (struct apid_alloc_miner){ .model = fleet[i].model,
							      .current = APID_ALLOC_PRESET_UNKNOWN };
	mi[n++] = (struct apid_alloc_miner){ .fixed = true, .fixed_watts = (int)fixed_w,
					      .current = APID_ALLOC_PRESET_UNKNOWN };
	if (apid_alloc_exact(am, 2, mi, n, target_w, out, &res) < 0) {
		perror("power: apid_alloc_exact");
		return NAN;
	}
	if (opt_w)
		*opt_w = res.watts;
	if (feasible)
		*feasible = res.feasible;
	if (hive_mono_ms() - t0 > 2000)
		printf("power: apid_alloc_exact took %lld ms\n", hive_mono_ms() - t0);
	return res.th;
}

/* Sum of every control counter over the whole fleet, from a fresh
 * /sim/miners. */
static long long fleet_activity(json_t **keep)
{
	json_t *m = sim_get("/sim/miners"), *x;
	long long n = 0;
	size_t i;

	json_array_foreach(m, i, x)
		for (size_t k = 0; k < NCOUNTERS; k++)
			n += int_at(x, counters[k]);
	if (keep)
		*keep = m;
	else
		json_decref(m);
	return n;
}

/* Waits until nothing moves: no job in flight (apid), no managed miner
 * tuning and no control call on a managed miner for quiet_ms. The ms it
 * took, or -1 at timeout (said on stdout). */
static long long wait_quiet(int timeout_ms, int quiet_ms, const char *what)
{
	long long t0 = hive_mono_ms(), quiet = t0, last = -1;

	while (hive_mono_ms() - t0 < timeout_ms) {
		json_t *m = sim_get("/sim/miners"), *pw = power();
		struct eval e;
		long long sig;

		evaluate(m, &e);
		sig = e.activity * 1000003LL + e.w;
		if (sig != last || e.tuning || in_flight(pw) > 0 || !m) {
			quiet = hive_mono_ms();
			last = sig;
		} else if (hive_mono_ms() - quiet >= quiet_ms) {
			json_decref(m);
			json_decref(pw);
			return hive_mono_ms() - t0 - quiet_ms;
		}
		json_decref(m);
		json_decref(pw);
		tl_sleep_ms(400);
	}
	printf("power: %s: not settled within %d ms\n", what, timeout_ms);
	return -1;
}

static long long wait_settled(int timeout_ms, const char *what)
{
	return wait_quiet(timeout_ms, QUIET_MS, what);
}

/* Every action with an id above `after`, keyed by miner: {"n": actions,
 * "set_preset": n, "sends": total, "resent": actions sent more than once,
 * "balancer": n}. New reference. */
static json_t *actions_since(long long after)
{
	json_t *by = json_object(), *j, *a;
	long long before = 0;
	char path[128];
	size_t i;

	for (;;) {
		bool more = false;

		if (before)
			snprintf(path, sizeof(path), "/api/actions?limit=1000&before=%lld", before);
		else
			snprintf(path, sizeof(path), "/api/actions?limit=1000");
		j = ts_api_get(&S, path);
		json_array_foreach(json_object_get(j, "actions"), i, a) {
			long long id = int_at(a, "id");
			const char *mac = str_at(a, "miner");
			json_t *c;

			if (id <= after)
				break;
			more = true;
			before = id;
			if (!(c = json_object_get(by, mac))) {
				c = json_pack("{s:i, s:i, s:i, s:i, s:i}", "n", 0, "set_preset", 0,
					      "sends", 0, "resent", 0, "balancer", 0);
				json_object_set_new(by, mac, c);
			}
#define BUMP(k, v) json_object_set_new(c, k, json_integer(int_at(c, k) + (v)))
			BUMP("n", 1);
			BUMP("set_preset", strcmp(str_at(a, "action"), "set_preset") == 0);
			BUMP("sends", int_at(a, "sends") > 0 ? int_at(a, "sends") : 0);
			BUMP("resent", int_at(a, "sends") > 1);
			BUMP("balancer", strcmp(str_at(a, "actor"), "balancer") == 0);
#undef BUMP
		}
		if (json_array_size(json_object_get(j, "actions")) < 1000 || !more) {
			json_decref(j);
			break;
		}
		json_decref(j);
	}
	return by;
}

/* Of the actions since after_id: how many, and how many were sent more
 * than once. */
static void count_actions(long long after_id, int *n, int *resent)
{
	json_t *acts = actions_since(after_id), *x;
	const char *mac;

	json_object_foreach(acts, mac, x) {
		*resent += (int)int_at(x, "resent");
		*n += (int)int_at(x, "n");
	}
	json_decref(acts);
}

static long long newest_action_id(void)
{
	json_t *j = ts_api_get(&S, "/api/actions?limit=1");
	long long id = int_at(json_array_get(json_object_get(j, "actions"), 0), "id");

	json_decref(j);
	return id < 0 ? 0 : id;
}

/* Per managed miner: the counter's growth since `before` (a /sim/miners)
 * never exceeds what the actions since `after_id` allow (`field` of
 * actions_since, times `per`). The number of offenders; the first said. */
static int check_no_double(const json_t *before, long long after_id, const char *counter,
			   const char *field, const char *what)
{
	json_t *now = sim_get("/sim/miners"), *acts = actions_since(after_id);
	int bad = 0;

	for (int i = 0; i < MINERS; i++) {
		const json_t *b = json_array_get(before, (size_t)i), *n = json_array_get(now, (size_t)i);
		long long d = int_at(n, counter) - int_at(b, counter);
		long long allowed = int_at(json_object_get(acts, fleet[i].mac), field);

		if (allowed < 0)
			allowed = 0;
		if (d > allowed && bad++ == 0)
			fprintf(stderr, "power: %s: miner %s (%s): %s grew by %lld with %lld "
				"actions' %s\n", what, fleet[i].mac,
				fleet[i].managed ? "managed" : "unmanaged", counter, d, allowed, field);
	}
	json_decref(now);
	json_decref(acts);
	return bad;
}

/* ------------------------------------------------------------ the stack */

/* apid's catalogue of a model: presets with watts and TH (not "disabled"). */
static bool load_model(void *arg)
{
	struct model *md = arg;
	char path[64];
	json_t *j, *p;
	size_t i;

	snprintf(path, sizeof(path), "/api/models/%s", md->alias);
	j = ts_api_get(&S, path);
	md->n = 0;
	json_array_foreach(json_object_get(j, "presets"), i, p) {
		double th = num(p, "th");
		long long w = int_at(p, "watts");

		if (w < 1 || !(th >= 0) || md->n == APID_ALLOC_MAX_PRESETS)
			continue;
		snprintf(md->name[md->n], sizeof(md->name[0]), "%s", str_at(p, "name"));
		md->p[md->n].watts = (int)w;
		md->p[md->n].th = th;
		md->n++;
	}
	json_decref(j);
	md->max_idx = preset_idx(md, md->max_name);
	if (md->n < 10 || md->max_idx < 0) {
		tl_sleep_ms(300);
		return false;
	}
	md->max_w = md->p[md->max_idx].watts;
	md->least_idx = 0;
	for (int k = 1; k < md->n; k++)
		if (md->p[k].watts < md->p[md->least_idx].watts)
			md->least_idx = k;
	md->least_w = md->p[md->least_idx].watts;
	return true;
}

/* Every managed miner at or under its max_preset (minersim) and no action
 * open (apid): the enforcer is done. */
static bool enforced(void *arg)
{
	json_t *m = sim_get("/sim/miners"), *x, *open;
	size_t i;
	int *above = arg, n = 0;

	json_array_foreach(m, i, x) {
		const struct model *md;
		int p;

		if (i >= MINERS || !fleet[i].managed)
			continue;
		md = &models[fleet[i].model];
		p = preset_idx(md, str_at(x, "preset"));
		n += p < 0 || md->p[p].watts > md->max_w || json_is_true(json_object_get(x, "tuning"));
	}
	json_decref(m);
	open = ts_api_get(&S, "/api/actions?state=open&limit=1000");
	n += (int)json_array_size(json_object_get(open, "actions"));
	json_decref(open);
	*above = n;
	if (n)
		tl_sleep_ms(300);
	return n == 0;
}

static int stack_up(void **state)
{
	const char *sim_args[] = { "--seed", "23", "--models", "s19,s19jpro",
				   "--tune-seconds", "2", "--tuned-seconds", "1",
				   "--start-seconds", "1", "--reboot-seconds", "2",
				   "--init-seconds", "1", NULL };
	char mbreg[16];
	const char *plant_args[] = { "--generation-w", "5000000", "--plant-id", PLANT_ID,
				     "--minersim-interval-ms", "200",
				     "--modbus-table", "input", "--modbus-register", mbreg,
				     "--modbus-type", "float32", "--modbus-order", "cdab",
				     "--modbus-scale", "1000", NULL };
	json_t *roster, *m;
	long long t0 = hive_mono_ms();
	int above = 0;
	size_t i;

	(void)state;
	snprintf(mbreg, sizeof(mbreg), "%d", MB_REG);
	if (ts_init(&S, "power") < 0)
		return -1;
	fprintf(stderr, "power: run directory %s\n", S.dir);
	if (ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 || ts_plantsim(&S, plant_args) < 0)
		goto fail;
	/* One sweep at the start; the feed read every second, the balancer's
	 * waits short. The config's mode is dry_run: test 1 turns it on. */
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"network\": {\"miner_probe_timeout_ms\": 1000, \"probe_concurrency\": 1024,\n"
		     "   \"http_timeout_ms\": 2000, \"http_concurrency\": 256},\n"
		     " \"intervals\": {\"discovery_seconds\": 3600, \"status_seconds\": %d,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		     " \"scheduler\": {\"job_timeout_seconds\": 5},\n"
		     " \"control\": {\"action_timeout_seconds\": %d, \"job_timeout_seconds\": %d},\n"
		     " \"power\": {\"mode\": \"dry_run\", \"margin_pct\": %d, \"interval_seconds\": %d,\n"
		     "   \"stale_seconds\": %d, \"raise_after_seconds\": %d,\n"
		     "   \"min_raise_interval_seconds\": %d, \"fallback\": \"hold\",\n"
		     "   \"allow_pause\": false, \"deadband_w\": 2000, \"max_jump_pct\": 50,\n"
		     "   \"source\": {\"kind\": \"aggregator\", \"url\": \"%s/v1/reading\",\n"
		     "     \"plant_id\": \"%s\", \"api_key\": \"%s\", \"min_confidence\": 0.8,\n"
		     "     \"timeout_ms\": 2000}}}",
		     STATUS_S, ACTION_TIMEOUT_S, CONTROL_JOB_S, (int)(MARGIN * 100), INTERVAL_S,
		     STALE_S, RAISE_AFTER_S, MIN_RAISE_S, S.plant, PLANT_ID, S.plant_key) < 0)
		goto fail;
	if (!ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd1", NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		goto fail;
	if (!ts_token(&S)) {
		fprintf(stderr, "power: no API token\n");
		goto fail;
	}
	if (ts_wait_miners(&S, MINERS, 60000) < 0) {
		dump_logs();
		goto fail;
	}
	roster = sim_get("/sim/miners");
	if (json_array_size(roster) != MINERS) {
		json_decref(roster);
		goto fail;
	}
	json_array_foreach(roster, i, m) {
		snprintf(fleet[i].mac, sizeof(fleet[i].mac), "%s", str_at(m, "mac"));
		lower(fleet[i].mac);
		fleet[i].model = strcmp(str_at(m, "model"), "s19") == 0 ? 0 : 1;
		fleet[i].managed = i % UNMANAGED_EVERY != 5;
		nmanaged += fleet[i].managed;
	}
	json_decref(roster);
	for (int k = 0; k < 2; k++)
		if (tl_wait_until(20000, load_model, &models[k]) < 0) {
			fprintf(stderr, "power: no catalogue with %s for model %s\n",
				models[k].max_name, models[k].alias);
			goto fail;
		}

	/* The limits, then the managed miners: the enforcer brings those
	 * above the limit down (its actions, not the balancer's). */
	for (int k = 0; k < 2; k++) {
		char path[64], body[64];

		snprintf(path, sizeof(path), "/api/models/%s", models[k].alias);
		snprintf(body, sizeof(body), "{\"max_preset\":\"%s\"}", models[k].max_name);
		if (api_patch(path, body) != 200)
			goto fail;
	}
	for (int k = 0; k < MINERS; k++) {
		char path[64];

		if (!fleet[k].managed)
			continue;
		snprintf(path, sizeof(path), "/api/miners/%.17s", fleet[k].mac);
		if (api_patch(path, "{\"managed\":true}") != 200) {
			fprintf(stderr, "power: PATCH managed on %s refused\n", fleet[k].mac);
			goto fail;
		}
	}
	if (tl_wait_until(30000, enforced, &above) < 0) {
		fprintf(stderr, "power: %d managed miners above max_preset, tuning or with an open "
			"action 30 s after the limits\n", above);
		dump_logs();
		goto fail;
	}
	printf("figure: power: fleet ready (%d miners, %d managed, max_preset %s %s / %s %s, "
	       "enforcer done) after %lld ms\n", MINERS, nmanaged, models[0].alias,
	       models[0].max_name, models[1].alias, models[1].max_name, hive_mono_ms() - t0);

	mon.check_max = true;
	mon.run = true;
	if (pthread_create(&mon.th, NULL, monitor, NULL) != 0)
		goto fail;
	mon.started = true;
	return 0;
fail:
	ts_down(&S, true);
	return -1;
}

#define NTESTS 10
static int passed;

static int stack_down(void **state)
{
	(void)state;
	if (mon.started) {
		mon.run = false;
		pthread_join(mon.th, NULL);
		mon.started = false;
	}
	json_decref(mon.miners);
	ts_down(&S, passed != NTESTS);
	return 0;
}

/* ------------------------------------------------------------ shared waits */

struct under {
	double target;
	double draw;
};

static bool draw_under(void *arg)
{
	struct under *u = arg;

	u->draw = true_draw();
	return u->draw <= u->target;
}

/* Polls the true draw every 50 ms until it is at or under target; the ms
 * from t0, or -1 after timeout_ms. */
static long long time_under(double target, long long t0, int timeout_ms, double *draw)
{
	struct under u = { target, NAN };
	int rc = tl_wait_until(timeout_ms - (int)(hive_mono_ms() - t0), draw_under, &u);

	if (draw)
		*draw = u.draw;
	return rc == 0 ? hive_mono_ms() - t0 : -1;
}

struct power_is {
	const char *mode;           /* NULL: any */
	double target;              /* NAN: any; else within 1 % */
	const char *kind;           /* NULL: any */
	json_t *last;
};

static bool power_is(void *arg)
{
	struct power_is *w = arg;
	json_t *pw = power();
	bool ok = pw && (!w->mode || strcmp(str_at(pw, "mode"), w->mode) == 0) &&
		  strcmp(str_at(pw, "state"), "ok") == 0 &&
		  (!w->kind || strcmp(str_at(json_object_get(pw, "source"), "kind"), w->kind) == 0) &&
		  (isnan(w->target) || fabs(num(pw, "target_w") - w->target) <= 0.01 * w->target);

	json_decref(w->last);
	w->last = pw;
	if (!ok)
		tl_sleep_ms(200);
	return ok;
}

/* The fleet's expected TH against the exact optimum at apid's target and
 * fixed load now. ratio NAN when not computable. */
struct standing {
	double th;                  /* the fleet's expected TH (catalogue) */
	double opt_th, ratio;       /* the exact optimum at the target as the balancer
				     * plans it (target - correction) and th / it */
	double nom_th, nom_ratio;   /* the same at the target itself */
	long long w, opt_w, target, fixed, est, true_managed;
	double draw, measured, correction;
	bool feasible;
};

static void standing(struct standing *st)
{
	json_t *pw = power(), *m = sim_get("/sim/miners");
	struct eval e;

	memset(st, 0, sizeof(*st));
	evaluate(m, &e);
	st->draw = true_draw();
	st->th = e.th;
	st->w = e.w;
	st->target = (long long)num(pw, "target_w");
	st->fixed = isnan(num(pw, "fixed_w")) ? fixed_truth : (long long)num(pw, "fixed_w");
	st->est = (long long)num(pw, "estimate_w");
	st->measured = num(pw, "measured_w");
	st->correction = num(pw, "correction_w");
	st->true_managed = e.true_managed_w;
	st->nom_th = optimum(st->target, st->fixed, NULL, NULL);
	st->nom_ratio = st->nom_th > 0 ? st->th / st->nom_th : NAN;
	st->opt_th = optimum(st->target - (isfinite(st->correction) ? (long long)st->correction : 0),
			     st->fixed, &st->opt_w, &st->feasible);
	st->ratio = st->opt_th > 0 ? st->th / st->opt_th : NAN;
	json_decref(pw);
	json_decref(m);
}

/* ------------------------------------------------------------ 1. dry_run */

static void test_dry_run(void **state)
{
	json_t *m, *d, *dec, *plan, *x, *before_m;
	struct eval e;
	struct power_is w = { .mode = "dry_run", .target = NAN };
	long long before, after, cur, b0, last_id, t_gen;
	double target;
	size_t i;
	int dry = 0, changes = 0, planned = 0, balancer = 0;

	(void)state;
	/* The levels: the fixed load, the managed miners' range, and a
	 * steady budget that needs a cut from where the fleet runs now. */
	m = sim_get("/sim/miners");
	evaluate(m, &e);
	cur = e.w;
	json_array_foreach(m, i, x)
		if (i < MINERS && !fleet[i].managed)
			fixed_truth += (long long)num(x, "power_w");
	json_decref(m);
	for (int k = 0; k < MINERS; k++)
		if (fleet[k].managed) {
			w_least += models[fleet[k].model].least_w;
			w_max += models[fleet[k].model].max_w;
		}
	b0 = w_least + (w_max - w_least) * 7 / 10;
	if (b0 > cur * 9 / 10)
		b0 = cur * 9 / 10;
	gen0 = (long long)((double)(fixed_truth + b0) / (1 - MARGIN) / 1000) * 1000;
	printf("power: levels: fixed %lld W, managed least %lld W, at max_preset %lld W, now %lld "
	       "W; steady budget %lld W, generation %lld W\n", fixed_truth, w_least, w_max, cur,
	       b0, gen0);
	/* Every later level must stay feasible (above the least draw). */
	assert_true((1 - MARGIN) * 0.70 * (double)gen0 - (double)fixed_truth > (double)w_least);
	assert_true((1 - MARGIN) * 0.75 * (double)gen0 - (double)fixed_truth > (double)w_least);

	last_id = newest_action_id();
	before = fleet_activity(&before_m);
	t_gen = hive_wall_ms();
	assert_int_equal(plant_post("/sim/generation", "{\"w\":%lld}", gen0), 200);
	target = (1 - MARGIN) * (double)gen0;
	w.target = target;
	if (tl_wait_until(10000, power_is, &w) < 0)
		FAIL("GET /api/power not mode dry_run, state ok, target %.0f W within 10 s: %s",
		     target, jtext(w.last));
	json_decref(w.last);

	/* A few cycles of decisions, recorded as dry_run, with the changes
	 * a cut needs. */
	tl_sleep_ms(3 * INTERVAL_S * 1000 + 500);
	d = ts_api_get(&S, "/api/power/decisions?limit=50");
	if (!d)
		FAIL("GET /api/power/decisions failed");
	json_array_foreach(json_object_get(d, "decisions"), i, dec) {
		if (int_at(dec, "ts") < t_gen)
			continue;
		if (!json_is_true(json_object_get(dec, "dry_run")))
			FAIL("a decision in dry_run mode not marked dry_run: %s", jtext(dec));
		dry++;
		changes += (int)json_array_size(json_object_get(dec, "changes"));
	}
	json_decref(d);
	plan = ts_api_get(&S, "/api/power/plan");
	if (!plan)
		FAIL("GET /api/power/plan failed");
	assert_string_equal(str_at(plan, "mode"), "dry_run");
	json_array_foreach(json_object_get(plan, "miners"), i, x)
		planned += json_is_true(json_object_get(x, "changed"));
	assert_int_equal(json_array_size(json_object_get(plan, "miners")), nmanaged);
	json_decref(plan);

	/* Nothing reached any miner; no balancer action. */
	after = fleet_activity(NULL);
	{
		json_t *acts = actions_since(last_id);
		const char *mac;

		json_object_foreach(acts, mac, x)
			balancer += (int)int_at(x, "balancer");
		json_decref(acts);
	}
	printf("figure: power: dry_run: %d decisions with %d changes and %d miners planned to "
	       "change; control calls on miners %lld -> %lld, balancer actions %d\n", dry,
	       changes, planned, before, after, balancer);
	json_decref(before_m);
	if (after != before || balancer)
		FAIL("dry_run sent something: fleet control calls %lld -> %lld, %d balancer actions",
		     before, after, balancer);
	assert_true(dry >= 1);
	assert_true(changes >= 1);
	assert_true(planned >= 1);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 2. steady state */

/* Balancer actions created since action id `after`. */
static int balancer_actions_since(long long after)
{
	json_t *acts = actions_since(after), *x;
	const char *mac;
	int n = 0;

	json_object_foreach(acts, mac, x)
		n += (int)int_at(x, "balancer");
	json_decref(acts);
	return n;
}

/* The true draw's range and its worst ratio to apid's target over the
 * monitor's samples since t0. */
static void draw_range(long long t0, double *lo, double *hi, double *worst)
{
	int n;
	struct sample *s = samples_since(t0, &n);

	*lo = INFINITY;
	*hi = 0;
	*worst = 0;
	for (int i = 0; i < n; i++) {
		if (s[i].draw < *lo)
			*lo = s[i].draw;
		if (s[i].draw > *hi)
			*hi = s[i].draw;
		if (s[i].target > 0 && s[i].draw / s[i].target > *worst)
			*worst = s[i].draw / s[i].target;
	}
	free(s);
}

/* The mean true draw over the monitor's samples since t0 (minersim's noise
 * is per miner and per second: a few seconds average it out). */
static double mean_draw(long long t0)
{
	int n;
	struct sample *s = samples_since(t0, &n);
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += s[i].draw;
	free(s);
	return n ? sum / n : NAN;
}

static void test_steady_state(void **state)
{
	json_t *j;
	struct standing st;
	long st_code = 0;
	long long t0, t_under, t_settle, t_win, id0;
	double target = (1 - MARGIN) * (double)gen0, draw0 = true_draw(), draw = NAN, lo, hi, worst;
	double mean;
	int moves;

	(void)state;
	t0 = hive_mono_ms();
	j = ts_api(&S, "PATCH", "/api/power", "{\"mode\":\"on\"}", &st_code);
	if (st_code != 200 || strcmp(str_at(j, "mode"), "on") != 0)
		FAIL("PATCH /api/power mode on: %ld %s", st_code, jtext(j));
	json_decref(j);
	t_under = time_under(target, t0, 20000, &draw);
	if (t_under < 0)
		FAIL("the true draw %.0f W not under the target %.0f W 20 s after mode on", draw,
		     target);
	/* Past the first cut's tuning: the generation does not move from
	 * here, so neither should the farm, once it has found its plan. */
	tl_sleep_ms((TUNE_S + STATUS_S) * 1000);
	t_win = hive_mono_ms();
	id0 = newest_action_id();
	t_settle = wait_quiet(40000, QUIET_STEADY_MS, "steady state");
	draw_range(t_win, &lo, &hi, &worst);
	moves = balancer_actions_since(id0);
	mean = mean_draw(hive_mono_ms() - QUIET_STEADY_MS);
	standing(&st);
	printf("figure: power: steady state (aggregator, %d managed of %d): mode on -> true draw "
	       "%.0f W under the target %.0f W after %.1f s; then at constant generation %s "
	       "(%d balancer actions in %.1f s; true draw %.0f..%.0f W, at most %.4f of the "
	       "target)\n", nmanaged, MINERS, draw0, target, (double)t_under / 1000,
	       t_settle >= 0 ? "settled" : "NOT SETTLED", moves,
	       (double)(hive_mono_ms() - t_win) / 1000, lo, hi, worst);
	printf("figure: power: steady state: true draw %.0f W (mean of the last %d s %.0f W), "
	       "target %lld W; apid estimate %lld W, plant measured %.0f W, correction %.0f W, "
	       "fixed %lld W; managed: catalogue %lld W, true %lld W\n", st.draw,
	       QUIET_STEADY_MS / 1000, mean, st.target, st.est, st.measured, st.correction,
	       st.fixed, st.w, st.true_managed);
	printf("figure: power: steady state hashrate %.1f TH vs exact optimum %.1f TH at the "
	       "balancer's budget (target - correction): ratio %.4f (min %.2f); vs %.1f TH at "
	       "the bare target: %.4f\n", st.th, st.opt_th, st.ratio, RATIO_MIN, st.nom_th,
	       st.nom_ratio);
	if (fabs((double)st.target - target) > 0.01 * target)
		FAIL("apid's target %lld W is not available x (1 - margin) = %.0f W", st.target,
		     target);
	if (t_settle < 0)
		FAIL("steady state: the balancer keeps moving miners at constant generation: %d "
		     "balancer actions in %.0f s, true draw %.0f..%.0f W against the target %.0f W "
		     "(worst %.4f)", moves, (double)(hive_mono_ms() - t_win) / 1000, lo, hi, target,
		     worst);
	if (!(mean <= (double)st.target))
		FAIL("steady state: settled with the true draw above the target: %.0f W on average "
		     "over %d s against %lld W (apid's estimate %lld W with a correction of %.0f W, "
		     "the plant measuring %.0f W)", mean, QUIET_STEADY_MS / 1000, st.target, st.est,
		     st.correction, st.measured);
	if (!(st.ratio >= RATIO_MIN))
		FAIL("steady state: %.1f TH is %.4f of the exact optimum %.1f TH", st.th, st.ratio,
		     st.opt_th);
	if (worst > DRAW_TOL)
		FAIL("steady state: on its way to the plan the true draw went up to %.4f of the "
		     "target (more than minersim's noise)", worst);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 3. the drop */

static long long overdraw_s(void)
{
	json_t *s = plant_state();
	long long v = int_at(json_object_get(s, "overdraw"), "seconds");

	json_decref(s);
	return v;
}

static void test_drop(void **state)
{
	long long t0, t_under, od0 = overdraw_s(), bound = (STATUS_S + TUNE_S + INTERVAL_S) * 1000;
	double gen, target, draw = NAN, draw0 = true_draw();
	struct standing st;

	(void)state;
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/drop", "{\"percent\":30}"), 200);
	gen = plant_generation();
	target = (1 - MARGIN) * gen;
	t_under = time_under(target, t0, 20000, &draw);
	printf("figure: power: drop 30%%: %.0f -> %.0f W generation, true draw %.0f W under the "
	       "new target %.0f W after %.2f s (bound: status %d s + tune %d s + feed interval %d "
	       "s); plant overdraw %lld s\n", (double)gen0, gen, draw0, target,
	       (double)t_under / 1000, STATUS_S, TUNE_S, INTERVAL_S, overdraw_s() - od0);
	if (t_under < 0)
		FAIL("drop: the true draw %.0f W still above the target %.0f W after 20 s", draw,
		     target);
	if (t_under > bound)
		FAIL("drop: under the target only after %lld ms (bound %lld ms)", t_under, bound);
	{
		long long t_win = t0 + t_under + (TUNE_S + STATUS_S) * 1000, settled;
		double lo, hi, worst;

		if (hive_mono_ms() < t_win)
			tl_sleep_ms((int)(t_win - hive_mono_ms()));
		settled = wait_settled(20000, "after the drop");
		draw_range(t_win, &lo, &hi, &worst);
		standing(&st);
		printf("figure: power: after the drop: %s; true draw %.0f..%.0f W, at most %.4f of "
		       "the target %lld W; hashrate %.1f TH = %.4f of the exact optimum %.1f TH\n",
		       settled >= 0 ? "settled" : "NOT SETTLED in 20 s", lo, hi, worst, st.target,
		       st.th, st.ratio, st.opt_th);
		if (worst > DRAW_TOL)
			FAIL("after the drop the true draw went back up to %.4f of the target", worst);
		if (settled < 0)
			FAIL("after the drop the balancer did not settle within 20 s");
		if (!(mean_draw(hive_mono_ms() - QUIET_MS) <= (double)st.target))
			FAIL("after the drop: settled with the true draw %.0f W (mean of %d s) above "
			     "the target %lld W", mean_draw(hive_mono_ms() - QUIET_MS),
			     QUIET_MS / 1000, st.target);
	}
	if (!(st.ratio >= RATIO_MIN))
		FAIL("after the drop: %.4f of the exact optimum", st.ratio);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 4. the rise */

/* Waits up to 60 s from t0 for the managed miners to reach RATIO_MIN of
 * opt TH: the ms since t0 it took, or -1; their TH at the last look in *th. */
static long long climb(long long t0, double opt, double *th)
{
	while (hive_mono_ms() - t0 < 60000) {
		json_t *m = sim_get("/sim/miners");
		struct eval e;

		evaluate(m, &e);
		json_decref(m);
		*th = e.th;
		if (*th >= RATIO_MIN * opt)
			return hive_mono_ms() - t0;
		tl_sleep_ms(250);
	}
	return -1;
}

/* Whether the draw ever exceeded the target (plus minersim's noise) or the
 * generation in samples; the worst ratios. */
static struct sample worst_sample;     /* of the last overshoots() */

static int overshoots(const struct sample *s, int n, double *worst_t, double *worst_g)
{
	int bad = 0;

	*worst_t = 0;
	*worst_g = 0;
	memset(&worst_sample, 0, sizeof(worst_sample));
	for (int i = 0; i < n; i++) {
		if (s[i].target > 0 && s[i].draw / s[i].target > *worst_t) {
			*worst_t = s[i].draw / s[i].target;
			worst_sample = s[i];
		}
		if (s[i].gen > 0 && s[i].draw / s[i].gen > *worst_g)
			*worst_g = s[i].draw / s[i].gen;
		bad += (s[i].target > 0 && s[i].draw > s[i].target * DRAW_TOL) ||
		       (s[i].gen > 0 && s[i].draw > s[i].gen);
	}
	return bad;
}

static void test_rise(void **state)
{
	long long t0, t_climb, od0 = overdraw_s(), settled;
	double target = (1 - MARGIN) * (double)gen0, opt, worst_t, worst_g, th = 0, mean;
	struct sample *s;
	struct standing st;
	int n, bad;

	(void)state;
	opt = optimum((long long)target, fixed_truth, NULL, NULL);
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/generation", "{\"w\":%lld}", gen0), 200);
	t_climb = climb(t0, opt, &th);
	settled = wait_settled(20000, "after the rise");
	mean = mean_draw(hive_mono_ms() - QUIET_MS);
	standing(&st);
	s = samples_since(t0, &n);
	bad = overshoots(s, n, &worst_t, &worst_g);
	free(s);
	printf("figure: power: rise %.0f -> %lld W: climbed to %.0f%% of the exact optimum "
	       "(%.1f of %.1f TH) after %.1f s (raise_after %d s, min_raise_interval %d s); "
	       "true draw at most %.4f of the target and %.4f of the generation over %d samples "
	       "every %d ms; plant overdraw %lld s\n", 0.7 * (double)gen0, gen0, RATIO_MIN * 100,
	       th, opt, (double)t_climb / 1000, RAISE_AFTER_S, MIN_RAISE_S, worst_t, worst_g, n,
	       SAMPLE_MS, overdraw_s() - od0);
	if (bad)
		FAIL("rise: %d of %d samples had the true draw above the target (+%.0f%% noise) or "
		     "the generation (worst %.4f / %.4f: true draw %.0f W, target %.0f W, "
		     "generation %.0f W, %.1f s after the rise)", bad, n, (DRAW_TOL - 1) * 100,
		     worst_t, worst_g, worst_sample.draw, worst_sample.target, worst_sample.gen,
		     (double)(worst_sample.t - t0) / 1000);
	if (t_climb < 0)
		FAIL("rise: %.1f TH after 60 s, below %.0f%% of the optimum %.1f TH", th,
		     RATIO_MIN * 100, opt);
	if (settled < 0)
		FAIL("after the rise the balancer did not settle within 20 s");
	if (!(mean <= (double)st.target))
		FAIL("after the rise: settled with the true draw %.0f W (mean of %d s) above the "
		     "target %lld W", mean, QUIET_MS / 1000, st.target);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 5. noise */

static void test_noise(void **state)
{
	json_t *m0, *m1, *x;
	struct sample *s;
	long long t0, od0 = overdraw_s();
	double worst_t, worst_g, mean;
	int n, max = 0, total = 0, osc = 0, changed = 0;
	char osc_mac[18] = "", osc_seq[SEQ_MAX + 1] = "";
	size_t i;

	(void)state;
	m0 = sim_get("/sim/miners");
	pthread_mutex_lock(&mon.mu);
	json_array_foreach(m0, i, x) {
		const struct model *md = &models[fleet[i].model];
		int p = preset_idx(md, str_at(x, "preset"));

		mon.last_w[i] = p >= 0 ? md->p[p].watts : 0;
		mon.seq[i][0] = '\0';
	}
	mon.track = true;
	pthread_mutex_unlock(&mon.mu);
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/noise", "{\"percent\":%d,\"seed\":7}", NOISE_PCT), 200);
	tl_sleep_ms(NOISE_S * 1000);
	assert_int_equal(plant_post("/sim/noise", "{\"percent\":0}"), 200);
	tl_sleep_ms(1200);                  /* the monitor's last look */
	pthread_mutex_lock(&mon.mu);
	mon.track = false;
	for (int k = 0; k < MINERS; k++) {
		const char *q = mon.seq[k], *u = strchr(q, 'U'), *d = u ? strchr(u, 'D') : NULL;

		if (d && strchr(d, 'U')) {
			if (osc++ == 0) {
				snprintf(osc_mac, sizeof(osc_mac), "%.17s", fleet[k].mac);
				snprintf(osc_seq, sizeof(osc_seq), "%s", q);
			}
		}
	}
	pthread_mutex_unlock(&mon.mu);
	m1 = sim_get("/sim/miners");
	for (int k = 0; k < MINERS; k++) {
		int c;

		if (!fleet[k].managed)
			continue;
		c = (int)(int_at(json_array_get(m1, (size_t)k), "preset_changes") -
			  int_at(json_array_get(m0, (size_t)k), "preset_changes"));
		total += c;
		changed += c > 0;
		if (c > max)
			max = c;
	}
	mean = (double)total / nmanaged;
	json_decref(m0);
	json_decref(m1);
	s = samples_since(t0, &n);
	overshoots(s, n, &worst_t, &worst_g);
	{
		int over_gen = 0;

		for (int k = 0; k < n; k++)
			over_gen += s[k].gen > 0 && s[k].draw > s[k].gen;
		free(s);
		printf("figure: power: noise ±%d%% random walk for %d s (%d feed readings): preset "
		       "changes per managed miner max %d mean %.2f (%d of %d miners changed, %d "
		       "changes); %d miners up-down-up; true draw at most %.4f of the target, %.4f "
		       "of the generation; plant overdraw %lld s\n", NOISE_PCT, NOISE_S,
		       NOISE_S / INTERVAL_S, max, mean, changed, nmanaged, total, osc, worst_t,
		       worst_g, overdraw_s() - od0);
		if (over_gen)
			FAIL("noise: the true draw exceeded the generation in %d samples", over_gen);
	}
	if (osc)
		FAIL("noise: %d miners went up, down and up again (first %s: %s)", osc, osc_mac,
		     osc_seq);
	if (max > NOISE_MAX_CHANGES)
		FAIL("noise: a miner changed preset %d times in %d s (bound %d)", max, NOISE_S,
		     NOISE_MAX_CHANGES);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 6. feed faults */

struct counted {
	const char *reason;         /* NULL: accepted */
	double from;
	int more;                   /* wait for from + more */
	int poll_ms;
	json_t *last;
};

static bool counted(void *arg)
{
	struct counted *c = arg;
	json_t *pw = power();
	bool ok = readings_count(pw, c->reason) >= c->from + c->more;

	json_decref(c->last);
	c->last = pw;
	if (!ok)
		tl_sleep_ms(c->poll_ms);
	return ok;
}

static double count_now(const char *reason)
{
	json_t *pw = power();
	double v = readings_count(pw, reason);

	json_decref(pw);
	return v;
}

/* Waits until `reason` (NULL: accepted readings) grew by `more`, looking
 * every poll_ms. */
static void wait_counted_every(const char *reason, int more, int timeout_ms, const char *what,
			       double from, int poll_ms)
{
	struct counted c = { reason, from, more, poll_ms, NULL };

	if (isnan(from))
		FAIL("%s: GET /api/power has no readings.%s%s counter", what,
		     reason ? "refused_by." : "", reason ? reason : "accepted");
	if (tl_wait_until(timeout_ms, counted, &c) < 0) {
		char text[1024];

		snprintf(text, sizeof(text), "%s", jtext(json_object_get(c.last, "readings")));
		json_decref(c.last);
		FAIL("%s: readings.%s did not grow by %d within %d ms: %s", what,
		     reason ? reason : "accepted", more, timeout_ms, text);
	}
	json_decref(c.last);
}

static void wait_counted(const char *reason, int more, int timeout_ms, const char *what,
			 double from)
{
	wait_counted_every(reason, more, timeout_ms, what, from, 100);
}

/* A recent refused reading with this reason in /api/power/readings (the
 * reason may go on: "low_confidence: confidence 0.50 < 0.80"). */
static bool reading_refused(const char *reason)
{
	json_t *j = ts_api_get(&S, "/api/power/readings?limit=20"), *r;
	bool found = false;
	size_t i;

	json_array_foreach(json_object_get(j, "readings"), i, r)
		found |= json_is_false(json_object_get(r, "accepted")) &&
			 strncmp(str_at(r, "reason"), reason, strlen(reason)) == 0;
	json_decref(j);
	return found;
}

struct state_not {
	const char *state;
	json_t *last;
};

static bool state_not(void *arg)
{
	struct state_not *w = arg;
	json_t *pw = power();
	bool ok = pw && strcmp(str_at(pw, "state"), w->state) != 0;

	json_decref(w->last);
	w->last = pw;
	if (!ok)
		tl_sleep_ms(100);
	return ok;
}

static void test_feed_faults(void **state)
{
	struct state_not sn = { .state = "ok" };
	json_t *before_m, *pw;
	long long before, after, t0, t_stale, t_fallback, t_back, last_id, fault_end_id;
	double c0, c1, jump0, stale0;
	char st_state[32], st_reason[256];

	(void)state;
	/* Long enough for any raise still due after the noise (the window
	 * held, the fleet settled two intervals, a raised miner's interval). */
	wait_quiet(40000, (RAISE_AFTER_S + MIN_RAISE_S + 4) * 1000, "before the feed faults");
	last_id = newest_action_id();
	before = fleet_activity(&before_m);

	/* Stale: the same reading again and again. The fallback is hold. */
	pw = power();
	stale0 = readings_count(pw, "stale") + (isnan(readings_count(pw, "not_fresh")) ? 0 :
						  readings_count(pw, "not_fresh"));
	json_decref(pw);
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/stale", "{\"stale\":true}"), 200);
	/* First "stale" (no raises, balancing on the last reading), then at
	 * stale_seconds the fallback (hold: nothing moves). */
	if (tl_wait_until((STALE_S + 5) * 1000, state_not, &sn) < 0)
		FAIL("stale: state still ok %d s after the feed froze: %s", STALE_S + 5,
		     jtext(sn.last));
	t_stale = hive_mono_ms() - t0;
	snprintf(st_state, sizeof(st_state), "%s", str_at(sn.last, "state"));
	json_decref(sn.last);
	sn.last = NULL;
	sn.state = "stale";
	if (strcmp(st_state, "fallback") != 0 &&
	    tl_wait_until((STALE_S + 5) * 1000 - (int)(hive_mono_ms() - t0), state_not, &sn) < 0)
		FAIL("stale: no fallback %d s after the feed froze: %s", STALE_S + 5, jtext(sn.last));
	t_fallback = hive_mono_ms() - t0;
	pw = sn.last ? sn.last : power();
	sn.last = NULL;
	snprintf(st_reason, sizeof(st_reason), "%s", str_at(pw, "state_reason"));
	c1 = readings_count(pw, "stale") + (isnan(readings_count(pw, "not_fresh")) ? 0 :
					    readings_count(pw, "not_fresh"));
	printf("figure: power: stale feed: state %s after %.1f s, %s (\"%s\") after %.1f s "
	       "(stale_seconds %d), %.0f readings refused as stale/not fresh\n", st_state,
	       (double)t_stale / 1000, str_at(pw, "state"), st_reason,
	       (double)t_fallback / 1000, STALE_S, c1 - stale0);
	if (strcmp(str_at(pw, "state"), "fallback") != 0)
		FAIL("stale: state %s, expected fallback", str_at(pw, "state"));
	json_decref(pw);
	/* collection_timestamp is to the second: up to 1 s early */
	if (t_fallback < (STALE_S - 1) * 1000)
		FAIL("stale: fallback after %lld ms, before stale_seconds %d", t_fallback, STALE_S);
	assert_true(c1 > stale0);
	assert_true(*st_reason);
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/stale", "{\"stale\":false}"), 200);
	{
		struct power_is w = { .target = NAN };

		if (tl_wait_until(5000, power_is, &w) < 0)
			FAIL("stale: state not ok 5 s after the feed resumed: %s", jtext(w.last));
		json_decref(w.last);
	}
	t_back = hive_mono_ms() - t0;
	printf("figure: power: stale feed: ok again %.1f s after it resumed\n",
	       (double)t_back / 1000);

	/* Low confidence. */
	c0 = count_now("low_confidence");
	assert_int_equal(plant_post("/sim/confidence", "{\"score\":0.5}"), 200);
	wait_counted("low_confidence", 2, 4000, "low confidence", c0);
	assert_int_equal(plant_post("/sim/confidence", "{\"score\":0.95}"), 200);
	assert_true(reading_refused("low_confidence"));
	wait_counted(NULL, 1, 4000, "after low confidence", count_now(NULL));
	printf("figure: power: low confidence (0.5 < 0.8): %.0f readings refused\n",
	       count_now("low_confidence") - c0);

	/* A failed generation source. */
	c0 = count_now("source_failed");
	assert_int_equal(plant_post("/sim/source", "{\"name\":\"gen_b\",\"status\":\"error\"}"), 200);
	wait_counted("source_failed", 2, 4000, "failed source", c0);
	assert_int_equal(plant_post("/sim/source", "{\"name\":\"gen_b\",\"status\":\"success\"}"),
			 200);
	assert_true(reading_refused("source_failed"));
	wait_counted(NULL, 1, 4000, "after the failed source", count_now(NULL));
	printf("figure: power: failed generation source gen_b: %.0f readings refused\n",
	       count_now("source_failed") - c0);

	/* The aggregator answering 503. */
	c0 = count_now("error");
	assert_int_equal(plant_post("/sim/aggregator", "{\"status\":503}"), 200);
	wait_counted("error", 2, 4000, "aggregator 503", c0);
	assert_int_equal(plant_post("/sim/aggregator", "{\"status\":200}"), 200);
	wait_counted(NULL, 1, 4000, "after the 503", count_now(NULL));
	printf("figure: power: aggregator 503: %.0f readings refused as errors\n",
	       count_now("error") - c0);

	/* One reading at zero: refused as a jump, nothing cut. The zero is
	 * cleared as soon as apid counted it, before the next reading. */
	jump0 = count_now("jump");
	assert_int_equal(plant_post("/sim/zero", "{\"feed\":\"generation\"}"), 200);
	wait_counted_every("jump", 1, 4000, "zero reading", jump0, 10);
	assert_int_equal(plant_post("/sim/zero", "{\"on\":false}"), 200);
	/* What moved during the faults is judged here, when the last one
	 * ended: a raise that was due before them and waited for a valid
	 * newest reading may go out with the next one (not a fault's doing). */
	after = fleet_activity(NULL);
	fault_end_id = newest_action_id();
	wait_counted(NULL, 2, 5000, "after the zero reading", count_now(NULL));
	c1 = count_now("jump");
	assert_true(reading_refused("jump"));

	{
		json_t *acts = actions_since(last_id), *x;
		const char *mac;
		int balancer = 0;

		json_object_foreach(acts, mac, x)
			balancer += (int)int_at(x, "balancer");
		json_decref(acts);
		/* Actions after the faults ended are not counted. */
		if (balancer && fault_end_id == last_id)
			balancer = 0;
		printf("figure: power: one zero reading: %.0f refused as a jump; through every "
		       "fault: %d balancer actions, fleet control calls %lld -> %lld\n", c1 - jump0,
		       balancer, before, after);
		if (c1 - jump0 != 1)
			FAIL("zero reading: %.0f readings refused as a jump, expected 1", c1 - jump0);
		if (balancer || after != before)
			FAIL("the feed faults moved miners: %d balancer actions, control calls %lld -> "
			     "%lld", balancer, before, after);
	}
	json_decref(before_m);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 7. apid killed */

static bool new_balancer_action(void *arg)
{
	long long *last = arg;
	json_t *j = ts_api_get(&S, "/api/actions?limit=5"), *a;
	bool yes = false;
	size_t i;

	json_array_foreach(json_object_get(j, "actions"), i, a)
		yes |= int_at(a, "id") > *last && strcmp(str_at(a, "actor"), "balancer") == 0;
	json_decref(j);
	if (!yes)
		tl_sleep_ms(10);
	return yes;
}

static void test_kill_apid(void **state)
{
	json_t *before_m, *pw;
	long long last_id, t0, t_kill, t_back, t_under, calls0, calls_at_kill, tuning0;
	double gen, target, draw = NAN;
	int bad, resent = 0, nacts = 0;

	(void)state;
	last_id = newest_action_id();
	calls0 = fleet_activity(&before_m);
	{
		json_t *f = sim_get("/sim/fleet");

		tuning0 = int_at(f, "auto_tuning");
		json_decref(f);
	}
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/drop", "{\"percent\":25}"), 200);
	gen = plant_generation();
	target = (1 - MARGIN) * gen;
	/* Mid-cut: as soon as the first of its calls reached a miner (live
	 * presets tune at once: minersim's fleet counts one more tuning). */
	for (;;) {
		json_t *f = sim_get("/sim/fleet");
		long long tuning = int_at(f, "auto_tuning");

		json_decref(f);
		if (tuning > tuning0)
			break;
		if (hive_mono_ms() - t0 > 10000)
			FAIL("no miner tuning within 10 s of a 25 %% drop");
	}
	/* The cut's calls go out together: let them land, not their
	 * confirmations (a status interval away). */
	tl_sleep_ms(50);
	if (ts_stop(&S, "apid", SIGKILL, 2000) < 0)
		FAIL("apid was not running");
	t_kill = hive_mono_ms() - t0;
	calls_at_kill = fleet_activity(NULL);
	if (!ts_start(&S, "apid", NULL, NULL, NULL))
		FAIL("apid did not restart");
	if (ts_wait_healthy(&S, 20000) < 0)
		FAIL("the suite not healthy after apid's restart");
	t_back = hive_mono_ms() - t0;
	t_under = time_under(target, t0, (ACTION_TIMEOUT_S + 15) * 1000, &draw);
	printf("figure: power: kill -9 apid mid-cut: killed %.2f s after a 25%% drop (%lld control "
	       "calls, settings and restarts, had reached miners), answering again after %.1f s, true draw %.0f W under "
	       "the target %.0f W after %.1f s\n", (double)t_kill / 1000, calls_at_kill - calls0,
	       (double)t_back / 1000, draw, target, (double)t_under / 1000);
	if (t_under < 0)
		FAIL("after apid's restart the true draw %.0f W is still above the target %.0f W",
		     draw, target);
	pw = power();
	if (strcmp(str_at(pw, "mode"), "on") != 0)
		FAIL("apid restarted in mode %s: the mode set through the API was lost",
		     str_at(pw, "mode"));
	json_decref(pw);
	wait_settled(25000, "after apid's restart");
	if (!(true_draw() <= target))
		FAIL("after apid's restart the true draw settled above the target");
	/* No action sent twice: no more POST /settings than actions, no more
	 * preset changes than set_preset actions, per miner. */
	bad = check_no_double(before_m, last_id, "settings_calls", "n", "apid restart");
	bad += check_no_double(before_m, last_id, "preset_changes", "set_preset", "apid restart");
	count_actions(last_id, &nacts, &resent);
	json_decref(before_m);
	printf("figure: power: kill -9 apid: %d actions since the drop, %d sent more than once, "
	       "%d miners with more calls than actions\n", nacts, resent, bad);
	if (bad)
		FAIL("after apid's restart %d miners got more calls than actions", bad);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 8. zero held, pollerd killed */

struct all_least {
	int n;
};

static bool all_least(void *arg)
{
	struct all_least *w = arg;
	json_t *m = sim_get("/sim/miners");
	struct eval e;

	evaluate(m, &e);
	json_decref(m);
	w->n = e.at_least;
	if (e.at_least < nmanaged || e.tuning)
		tl_sleep_ms(200);
	return e.at_least == nmanaged && !e.tuning;
}

static void test_zero_held_kill_pollerd(void **state)
{
	struct all_least w = { 0 };
	json_t *before_m;
	long long last_id, t0, t_refused, t_cut, t_kill, t_least;
	double jump0, draw;
	int bad, nacts = 0, resent = 0;

	(void)state;
	last_id = newest_action_id();
	fleet_activity(&before_m);
	jump0 = count_now("jump");
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/zero", "{\"feed\":\"generation\"}"), 200);
	wait_counted("jump", 1, 4000, "zero held", jump0);
	t_refused = hive_mono_ms() - t0;
	/* The next reading confirms it: the farm cuts to its least draw. */
	if (tl_wait_until(10000, new_balancer_action, &last_id) < 0)
		FAIL("zero held: no cut within 10 s of the confirming reading");
	t_cut = hive_mono_ms() - t0;
	if (ts_stop(&S, "pollerd0", SIGKILL, 2000) < 0)
		FAIL("pollerd0 was not running");
	t_kill = hive_mono_ms() - t0;
	if (tl_wait_until((ACTION_TIMEOUT_S + 15) * 1000, all_least, &w) < 0)
		FAIL("zero held: %d of %d managed miners at their least preset %d s after the cut "
		     "with pollerd0 killed", w.n, nmanaged, ACTION_TIMEOUT_S + 15);
	t_least = hive_mono_ms() - t0;
	draw = true_draw();
	printf("figure: power: zero generation held: refused as a jump after %.1f s, confirmed and "
	       "cut after %.1f s; pollerd0 killed -9 %.2f s in; all %d managed miners at their "
	       "least preset after %.1f s, true draw %.0f W (least %lld W + fixed %lld W)\n",
	       (double)t_refused / 1000, (double)t_cut / 1000, (double)t_kill / 1000, nmanaged,
	       (double)t_least / 1000, draw, w_least, fixed_truth);
	if (!ts_start(&S, "pollerd", "pollerd0", NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		FAIL("pollerd0 did not come back");
	bad = check_no_double(before_m, last_id, "preset_changes", "set_preset", "pollerd kill");
	count_actions(last_id, &nacts, &resent);
	json_decref(before_m);
	printf("figure: power: kill -9 pollerd mid-cut: %d actions, %d sent again after the "
	       "kill, %d miners with more preset changes than set_preset actions\n", nacts, resent,
	       bad);
	assert_int_equal(bad, 0);
	assert_true(draw <= (double)(w_least + fixed_truth) * DRAW_TOL);
	assert_int_equal(plant_post("/sim/zero", "{\"on\":false}"), 200);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 9. Modbus */

static void test_modbus_cycle(void **state)
{
	struct power_is w = { .mode = "on", .kind = "modbus" };
	json_t *pw, *src;
	long long t0, t_climb, t_under, gen_m;
	double target, opt, th = 0, worst_t, worst_g, gen, draw = NAN;
	struct sample *s;
	int n, bad;

	(void)state;
	if (ts_stop(&S, "apid", SIGTERM, 10000) < 0)
		FAIL("apid was not running");
	/* The meter: generation as float32 kW, words swapped, in an input
	 * register block at MB_REG (plantsim's options in stack_up). */
	src = json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:s, s:f, s:i}", "kind", "modbus",
			"host", "127.0.0.1", "port", S.modbus_port, "unit", 1, "register", MB_REG,
			"table", "input", "type", "float32", "byte_order", "cdab", "scale", 1000.0,
			"timeout_ms", 2000);
	json_object_set_new(json_object_get(S.config, "power"), "source", src);
	S.dirty = true;
	/* A budget 50 kW above the least draw: the climb from there. */
	gen_m = (long long)((double)(fixed_truth + w_least + 50000) / (1 - MARGIN) / 1000) * 1000;
	assert_int_equal(plant_post("/sim/generation", "{\"w\":%lld}", gen_m), 200);
	target = (1 - MARGIN) * (double)gen_m;
	opt = optimum((long long)target, fixed_truth, NULL, NULL);
	t0 = hive_mono_ms();
	if (!ts_start(&S, "apid", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		FAIL("apid did not start with the Modbus source");
	w.target = target;
	if (tl_wait_until(10000, power_is, &w) < 0)
		FAIL("Modbus: GET /api/power not mode on, source modbus, state ok, target %.0f W: %s",
		     target, jtext(w.last));
	if (!json_is_null(json_object_get(w.last, "measured_w")))
		FAIL("Modbus: measured_w should be null (the meter has no consumption): %s",
		     jtext(w.last));
	json_decref(w.last);
	t_climb = climb(t0, opt, &th);
	s = samples_since(t0, &n);
	bad = overshoots(s, n, &worst_t, &worst_g);
	free(s);
	printf("figure: power: Modbus source: climbed from the least draw to %.1f TH (%.0f%% of the "
	       "exact optimum %.1f TH at target %.0f W) after %.1f s (apid restart included); true "
	       "draw at most %.4f of the target\n", th, th / opt * 100, opt, target,
	       (double)t_climb / 1000, worst_t);
	if (t_climb < 0)
		FAIL("Modbus: %.1f TH after 60 s, below %.0f%% of the optimum %.1f TH", th,
		     RATIO_MIN * 100, opt);
	if (bad)
		FAIL("Modbus: %d samples with the true draw above the target or generation", bad);
	wait_settled(20000, "Modbus, before the cut");
	t0 = hive_mono_ms();
	assert_int_equal(plant_post("/sim/drop", "{\"percent\":10}"), 200);
	gen = plant_generation();
	target = (1 - MARGIN) * gen;
	t_under = time_under(target, t0, 20000, &draw);
	printf("figure: power: Modbus source: drop 10%%: true draw %.0f W under the new target "
	       "%.0f W after %.2f s\n", draw, target, (double)t_under / 1000);
	if (t_under < 0 || t_under > (STATUS_S + TUNE_S + INTERVAL_S) * 1000)
		FAIL("Modbus: the cut took %lld ms (bound %d ms)", t_under,
		     (STATUS_S + TUNE_S + INTERVAL_S) * 1000);
	pw = power();
	printf("power: Modbus: %s\n", jtext(json_object_get(pw, "readings")));
	json_decref(pw);
	assert_no_violation();
	passed++;
}

/* ------------------------------------------------------------ 10. the whole run */

static void test_whole_run(void **state)
{
	json_t *m = sim_get("/sim/miners"), *acts = actions_since(0), *x;
	int bad_changes = 0, untouched = 0, nbal = 0, resent = 0, sets = 0;
	long long changes = 0;

	(void)state;
	assert_int_equal(json_array_size(m), MINERS);
	pthread_mutex_lock(&mon.mu);
	check_truth(m);
	pthread_mutex_unlock(&mon.mu);
	for (int k = 0; k < MINERS; k++) {
		const json_t *t = json_array_get(m, (size_t)k);
		const json_t *a = json_object_get(acts, fleet[k].mac);
		long long pc = int_at(t, "preset_changes");

		changes += pc;
		if (!fleet[k].managed) {
			long long sum = 0;

			for (size_t c = 0; c < NCOUNTERS; c++)
				sum += int_at(t, counters[c]);
			untouched += sum == 0 && !a;
			continue;
		}
		/* Every preset change came from an action. */
		if (pc > (a ? int_at(a, "set_preset") : 0) && bad_changes++ == 0)
			fprintf(stderr, "power: %s: %lld preset changes, %lld set_preset actions\n",
				fleet[k].mac, pc, a ? int_at(a, "set_preset") : 0);
	}
	{
		const char *mac;

		json_object_foreach(acts, mac, x) {
			nbal += (int)int_at(x, "balancer");
			resent += (int)int_at(x, "resent");
			sets += (int)int_at(x, "set_preset");
		}
	}
	json_decref(m);
	json_decref(acts);
	printf("figure: power: whole run: %d balancer actions (%d set_preset in all), %lld preset "
	       "changes on managed miners, %d actions sent more than once; %d of %d unmanaged "
	       "miners untouched; %d max-preset or unmanaged violations seen by the monitor\n",
	       nbal, sets, changes, resent, untouched, MINERS - nmanaged, mon.violations);
	assert_int_equal(untouched, MINERS - nmanaged);
	assert_int_equal(bad_changes, 0);
	assert_no_violation();
	passed++;
}

static long long test_t0;

static int test_start(void **state)
{
	(void)state;
	test_t0 = hive_mono_ms();
	return 0;
}

static int test_end(void **state)
{
	(void)state;
	printf("power: test took %.1f s\n", (double)(hive_mono_ms() - test_t0) / 1000);
	return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_start, test_end)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_dry_run),
		T(test_steady_state),
		T(test_drop),
		T(test_rise),
		T(test_noise),
		T(test_feed_faults),
		T(test_kill_apid),
		T(test_zero_held_kill_pollerd),
		T(test_modbus_cycle),
		T(test_whole_run),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
