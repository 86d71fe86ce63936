/* plant — the plant model: what it generates (a linear ramp towards a
 * target, times a seeded random walk), what the containers draw, the
 * sources that meter both, and the faults that spoil a reading.
 *
 * Everything is a function of the monotonic clock, evaluated when someone
 * looks, under one mutex (civetweb's workers, the Modbus thread and main
 * all read it). Powers are whole watts: a reading in MW then prints exactly.
 */
#include "plantsim.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hive/log.h"

#define MAX_W       1e10         /* 10 GW: anything above is a typo */

struct source {
	char name[PS_NAME_MAX];
	int kind;                /* enum ps_kind */
	int index;               /* among the sources of its kind */
	char status[PS_NAME_MAX];
	double frozen_w;         /* what it last measured, once failed */
	time_t frozen_ts;
};

static struct {
	pthread_mutex_t mtx;
	/* generation before noise: from_w → to_w over [ramp_start, ramp_end] */
	double from_w, to_w;
	int64_t ramp_start, ramp_end;
	/* noise: offset_percent walks one step a second since noise_since */
	double noise_pct;
	uint64_t noise_seed, noise_state;
	int64_t noise_since;
	long noise_sec;
	double noise_off;
	double consumption_w;
	bool meter_ok;
	double confidence;
	bool stale;
	time_t stale_since;
	struct ps_reading frozen;
	bool zero;
	int zero_feed;
	int64_t zero_until;      /* 0: until cleared */
	long long last_id;
	int nsources, ngen, ncons;
	struct source src[PS_MAX_SOURCES];
	double over_now_w, over_max_w;
	long over_seconds;
} P = { .mtx = PTHREAD_MUTEX_INITIALIZER };

/* splitmix64: a seeded stream, so a noise seed replays the same walk. */
static uint64_t next_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double base_w(int64_t now)
{
	if (now >= P.ramp_end || P.ramp_end <= P.ramp_start)
		return P.to_w;
	if (now <= P.ramp_start)
		return P.from_w;
	return P.from_w + (P.to_w - P.from_w) * (double)(now - P.ramp_start) /
	       (double)(P.ramp_end - P.ramp_start);
}

/* Each second the offset moves by up to a quarter of the band, and is
 * reflected at its edges: ±percent at most, never a jump across. */
static double noise_offset(int64_t now)
{
	long sec;

	if (P.noise_pct <= 0)
		return 0;
	sec = (long)((now - P.noise_since) / 1000);
	while (P.noise_sec < sec) {
		double u = (double)(next_rand(&P.noise_state) >> 11) * (1.0 / 9007199254740992.0);

		P.noise_off += (2 * u - 1) * P.noise_pct / 4;
		if (P.noise_off > P.noise_pct)
			P.noise_off = 2 * P.noise_pct - P.noise_off;
		if (P.noise_off < -P.noise_pct)
			P.noise_off = -2 * P.noise_pct - P.noise_off;
		P.noise_sec++;
	}
	return P.noise_off;
}

static double actual_generation(int64_t now)
{
	double g = round(base_w(now) * (1 + noise_offset(now) / 100));

	return g < 0 ? 0 : g;
}

static bool zero_active(int feed, int64_t now)
{
	return P.zero && P.zero_feed == feed && (!P.zero_until || now < P.zero_until);
}

static double reported(int kind, int64_t now)
{
	if (zero_active(kind == PS_GENERATION ? PS_FEED_GENERATION : PS_FEED_CONSUMPTION, now))
		return 0;
	return kind == PS_GENERATION ? actual_generation(now) : round(P.consumption_w);
}

/* Whole watts split evenly, the remainder to the first sources: the parts
 * always add up to the total. */
static double share(double total_w, int i, int n)
{
	long long w = llround(total_w), part = w / n, rem = w % n;

	return (double)(part + (i < rem ? 1 : 0));
}

static double source_w(const struct source *s, int64_t now)
{
	if (strcmp(s->status, "success") != 0)
		return s->frozen_w;
	return share(reported(s->kind, now), s->index,
		     s->kind == PS_GENERATION ? P.ngen : P.ncons);
}

/* Meters stamp their value a second or two before the aggregator collects. */
static time_t source_ts(const struct source *s, int i, time_t collected)
{
	if (strcmp(s->status, "success") != 0)
		return s->frozen_ts;
	return collected - 1 - (i % 2);
}

static void fill(struct ps_reading *r, int64_t now, time_t collected)
{
	memset(r, 0, sizeof(*r));
	r->collected = collected;
	r->confidence = P.confidence;
	r->nsources = P.nsources;
	for (int i = 0; i < P.nsources; i++) {
		const struct source *s = &P.src[i];
		struct ps_source_reading *o = &r->src[i];

		snprintf(o->name, sizeof(o->name), "%s", s->name);
		snprintf(o->status, sizeof(o->status), "%s", s->status);
		o->kind = s->kind;
		o->w = source_w(s, now);
		o->ts = source_ts(s, i, collected);
		if (s->kind == PS_GENERATION)
			r->generation_w += o->w;
		else
			r->consumption_w += o->w;
	}
}

static void add_sources(int kind, int n)
{
	for (int i = 0; i < n; i++) {
		struct source *s = &P.src[P.nsources++];

		if (kind == PS_GENERATION)
			snprintf(s->name, sizeof(s->name), "gen_%c", 'a' + i);
		else
			snprintf(s->name, sizeof(s->name), "container_%d", i + 1);
		s->kind = kind;
		s->index = i;
		snprintf(s->status, sizeof(s->status), "success");
	}
}

int ps_plant_init(char *err, size_t errlen)
{
	if (ps_opts.generators + ps_opts.containers > PS_MAX_SOURCES) {
		snprintf(err, errlen, "at most %d sources (generators + containers)", PS_MAX_SOURCES);
		return -1;
	}
	P.from_w = P.to_w = round(ps_opts.generation_w);
	P.consumption_w = round(ps_opts.consumption_w);
	P.confidence = ps_opts.confidence;
	P.noise_seed = 1;
	P.ngen = ps_opts.generators;
	P.ncons = ps_opts.containers;
	add_sources(PS_GENERATION, P.ngen);
	add_sources(PS_CONSUMPTION, P.ncons);
	return 0;
}

void ps_plant_read(struct ps_reading *r)
{
	pthread_mutex_lock(&P.mtx);
	if (P.stale) {
		*r = P.frozen;
	} else {
		fill(r, ps_now_ms(), time(NULL));
		r->id = ++P.last_id;
	}
	pthread_mutex_unlock(&P.mtx);
}

double ps_plant_meter_w(void)
{
	double w;

	pthread_mutex_lock(&P.mtx);
	w = reported(PS_GENERATION, ps_now_ms());
	pthread_mutex_unlock(&P.mtx);
	return w;
}

void ps_plant_tick(void)
{
	int64_t now = ps_now_ms();
	double over;
	bool ended = false;

	pthread_mutex_lock(&P.mtx);
	over = P.consumption_w - actual_generation(now);
	P.over_now_w = over > 0 ? over : 0;
	if (over > 0) {
		P.over_seconds++;
		if (over > P.over_max_w)
			P.over_max_w = over;
	}
	if (P.zero && P.zero_until && now >= P.zero_until) {
		P.zero = false;
		ended = true;
	}
	pthread_mutex_unlock(&P.mtx);
	if (ended)
		log_info("zero_ended");
}

static const char *feed_name(int feed)
{
	return feed == PS_FEED_CONSUMPTION ? "consumption" : "generation";
}

json_t *ps_plant_state(void)
{
	int64_t now = ps_now_ms();
	char ts[21];
	json_t *j, *srcs = json_array(), *ramp = json_null(), *zero = json_null();
	double gen, cons, off;

	pthread_mutex_lock(&P.mtx);
	gen = actual_generation(now);   /* advances the walk to now */
	off = noise_offset(now);
	cons = round(P.consumption_w);
	if (now < P.ramp_end)
		ramp = json_pack("{s:I, s:I, s:f}", "from_w", (json_int_t)llround(P.from_w),
				 "to_w", (json_int_t)llround(P.to_w),
				 "seconds_left", (double)(P.ramp_end - now) / 1000.0);
	if (P.zero)
		zero = json_pack("{s:s, s:o}", "feed", feed_name(P.zero_feed), "seconds_left",
				 P.zero_until ? json_real((double)(P.zero_until - now) / 1000.0)
					      : json_null());
	for (int i = 0; i < P.nsources; i++) {
		const struct source *s = &P.src[i];
		json_array_append_new(srcs, json_pack("{s:s, s:s, s:s, s:I}", "name", s->name,
			"kind", s->kind == PS_GENERATION ? "generation" : "consumption",
			"status", s->status, "value_w", (json_int_t)llround(source_w(s, now))));
	}
	j = json_pack("{s:{s:I, s:I, s:I, s:o, s:{s:f, s:I, s:i, s:f}},"
		      " s:{s:I, s:I, s:s, s:b}, s:I, s:f, s:b, s:o, s:o, s:o, s:I,"
		      " s:{s:I, s:I, s:i}}",
		      "generation",
		      "actual_w", (json_int_t)gen,
		      "reported_w", (json_int_t)reported(PS_GENERATION, now),
		      "target_w", (json_int_t)llround(P.to_w),
		      "ramp", ramp,
		      "noise", "percent", P.noise_pct, "seed", (json_int_t)P.noise_seed,
		      "second", (int)P.noise_sec, "offset_percent", round(off * 1e6) / 1e6,
		      "consumption",
		      "actual_w", (json_int_t)cons,
		      "reported_w", (json_int_t)reported(PS_CONSUMPTION, now),
		      "source", ps_opts.minersim[0] ? "minersim" : "set",
		      "meter_ok", ps_opts.minersim[0] ? P.meter_ok : true,
		      "exported_w", (json_int_t)(gen - cons),
		      "confidence_score", P.confidence,
		      "stale", P.stale,
		      "stale_since", P.stale ? json_string(ps_rfc3339(P.stale_since, ts)) : json_null(),
		      "zero", zero,
		      "sources", srcs,
		      "last_reading_id", (json_int_t)P.last_id,
		      "overdraw", "now_w", (json_int_t)llround(P.over_now_w),
		      "max_w", (json_int_t)llround(P.over_max_w), "seconds", (int)P.over_seconds);
	pthread_mutex_unlock(&P.mtx);
	return j;
}

/* ---------------------------------------------------------------- changes */

int ps_plant_set_generation(double w, double *was_w)
{
	int64_t now = ps_now_ms();

	if (!(w >= 0 && w <= MAX_W))
		return -1;
	pthread_mutex_lock(&P.mtx);
	*was_w = base_w(now);
	P.from_w = P.to_w = round(w);
	P.ramp_start = P.ramp_end = now;
	pthread_mutex_unlock(&P.mtx);
	return 0;
}

int ps_plant_ramp(double w, double seconds, double *from_w)
{
	int64_t now = ps_now_ms();

	if (!(w >= 0 && w <= MAX_W) || !(seconds >= 0 && seconds <= 86400))
		return -1;
	pthread_mutex_lock(&P.mtx);
	*from_w = P.from_w = base_w(now);
	P.to_w = round(w);
	P.ramp_start = now;
	P.ramp_end = now + llround(seconds * 1000);
	pthread_mutex_unlock(&P.mtx);
	return 0;
}

int ps_plant_drop(double percent, double *from_w, double *to_w)
{
	int64_t now = ps_now_ms();

	if (!(percent > 0 && percent <= 100))
		return -1;
	pthread_mutex_lock(&P.mtx);
	*from_w = base_w(now);
	*to_w = P.from_w = P.to_w = round(*from_w * (1 - percent / 100));
	P.ramp_start = P.ramp_end = now;
	pthread_mutex_unlock(&P.mtx);
	return 0;
}

int ps_plant_noise(double percent, uint64_t seed)
{
	if (!(percent >= 0 && percent <= 50))
		return -1;
	pthread_mutex_lock(&P.mtx);
	P.noise_pct = percent;
	P.noise_seed = P.noise_state = seed;
	P.noise_since = ps_now_ms();
	P.noise_sec = 0;
	P.noise_off = 0;
	pthread_mutex_unlock(&P.mtx);
	return 0;
}

/* Going stale freezes one last collection: the aggregator keeps serving it
 * (same id, same timestamps, same values) while the plant moves on. */
void ps_plant_stale(bool on)
{
	pthread_mutex_lock(&P.mtx);
	if (on && !P.stale) {
		fill(&P.frozen, ps_now_ms(), time(NULL));
		P.frozen.id = ++P.last_id;
		P.stale_since = P.frozen.collected;
	}
	P.stale = on;
	pthread_mutex_unlock(&P.mtx);
}

void ps_plant_confidence(double score)
{
	pthread_mutex_lock(&P.mtx);
	P.confidence = score;
	pthread_mutex_unlock(&P.mtx);
}

int ps_plant_source_status(const char *name, const char *status, char *err, size_t errlen)
{
	int64_t now = ps_now_ms();
	time_t t = time(NULL);
	int rc = -1;

	pthread_mutex_lock(&P.mtx);
	for (int i = 0; i < P.nsources; i++) {
		struct source *s = &P.src[i];

		if (strcmp(s->name, name) != 0)
			continue;
		/* a source that fails keeps its last value and timestamp */
		if (strcmp(s->status, "success") == 0 && strcmp(status, "success") != 0) {
			s->frozen_w = source_w(s, now);
			s->frozen_ts = source_ts(s, i, t);
		}
		snprintf(s->status, sizeof(s->status), "%s", status);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&P.mtx);
	if (rc < 0)
		snprintf(err, errlen, "name: no source \"%.40s\" (gen_a.., container_1..)", name);
	return rc;
}

void ps_plant_zero(bool on, int feed, double seconds)
{
	pthread_mutex_lock(&P.mtx);
	P.zero = on;
	P.zero_feed = feed;
	P.zero_until = on && seconds > 0 ? ps_now_ms() + llround(seconds * 1000) : 0;
	pthread_mutex_unlock(&P.mtx);
}

int ps_plant_set_consumption(double w)
{
	if (ps_opts.minersim[0] || !(w >= 0 && w <= MAX_W))
		return -1;
	pthread_mutex_lock(&P.mtx);
	P.consumption_w = round(w);
	pthread_mutex_unlock(&P.mtx);
	return 0;
}

void ps_plant_metered(double w, bool ok)
{
	pthread_mutex_lock(&P.mtx);
	if (ok)
		P.consumption_w = round(w);
	P.meter_ok = ok;
	pthread_mutex_unlock(&P.mtx);
}

void ps_plant_reset(void)
{
	pthread_mutex_lock(&P.mtx);
	P.stale = false;
	P.zero = false;
	P.confidence = ps_opts.confidence;
	for (int i = 0; i < P.nsources; i++)
		snprintf(P.src[i].status, sizeof(P.src[i].status), "success");
	pthread_mutex_unlock(&P.mtx);
}
