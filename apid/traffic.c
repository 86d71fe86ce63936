/* traffic — what arrived on bus.events from whom: per-source counts of
 * received, stored, rejected (by reason) and lost (sequence gaps) events,
 * the daemons' last heartbeats and the last sweep of each subnet. The
 * receive thread counts arrivals, the writer thread what it stored;
 * health and metrics read a snapshot. Thread-safe. */
#include "traffic.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"

#define MAX_SOURCES   4096      /* beyond: counted under "other" */
#define MAX_DAEMONS   1024
#define SOURCE_BUCKETS 256
/* Daemons whose last heartbeat is older are left out of health. */
#define DAEMON_FORGET_MS (3600 * 1000LL)

struct apid_source {
	char src[HIVE_SOURCE_MAX];
	uint64_t received, stored, rejected, lost;
	int64_t last_ms;
	struct apid_source *next;   /* hash chain */
	struct apid_source *all;    /* every source, newest first */
};

struct daemon_seen {
	char src[HIVE_SOURCE_MAX];
	char daemon[64], host[128];
	long long pid, started, in_flight, heartbeats;
	double latency_ms;
	int64_t last_ms;            /* wall clock of the last heartbeat */
	int64_t stopped_ms;         /* wall clock of its goodbye; 0: running */
	json_t *counters;           /* own copy */
	struct daemon_seen *next;
};

struct sweep_seen {
	char subnet[HIVE_CIDR_LEN];
	long long ts_ms, started_ms, duration_ms, probed, answered, miners;
	long long offline, kept;    /* what the last sweep did */
	uint64_t incomplete;        /* sweeps whose list never arrived whole */
	char (*strangers)[HIVE_MAC_LEN]; /* listed, no online miner in apid */
	size_t n_strangers;
	struct sweep_seen *next;
};

struct apid_traffic {
	pthread_mutex_t mu;
	struct apid_source *buckets[SOURCE_BUCKETS];
	struct apid_source *sources;
	struct apid_source other;   /* past MAX_SOURCES */
	size_t n_sources;
	struct hive_seq_tracker *seq;
	uint64_t received, stored, rejected, lost;
	uint64_t rejected_by[APID_REJ_COUNT];
	uint64_t unattributed_errors;
	struct daemon_seen *daemons;
	size_t n_daemons;
	struct sweep_seen *sweeps;
	uint64_t sweeps_incomplete;
};

struct apid_traffic *apid_traffic_new(void)
{
	struct apid_traffic *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->seq = hive_seq_new();
	if (!t->seq) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	snprintf(t->other.src, sizeof(t->other.src), "other");
	return t;
}

void apid_traffic_free(struct apid_traffic *t)
{
	if (!t)
		return;
	for (struct apid_source *s = t->sources, *n; s; s = n) {
		n = s->all;
		free(s);
	}
	for (struct daemon_seen *d = t->daemons, *n; d; d = n) {
		n = d->next;
		json_decref(d->counters);
		free(d);
	}
	for (struct sweep_seen *w = t->sweeps, *n; w; w = n) {
		n = w->next;
		free(w->strangers);
		free(w);
	}
	hive_seq_free(t->seq);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static unsigned hash_str(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Called with mu held. */
static struct apid_source *source_locked(struct apid_traffic *t, const char *src)
{
	unsigned b = hash_str(src) % SOURCE_BUCKETS;
	struct apid_source *s;

	for (s = t->buckets[b]; s; s = s->next)
		if (strcmp(s->src, src) == 0)
			return s;
	if (t->n_sources >= MAX_SOURCES || !(s = calloc(1, sizeof(*s))))
		return &t->other;
	snprintf(s->src, sizeof(s->src), "%s", src);
	s->next = t->buckets[b];
	t->buckets[b] = s;
	s->all = t->sources;
	t->sources = s;
	t->n_sources++;
	return s;
}

struct apid_source *apid_traffic_source(struct apid_traffic *t, const char *src)
{
	struct apid_source *s;

	pthread_mutex_lock(&t->mu);
	s = source_locked(t, src);
	pthread_mutex_unlock(&t->mu);
	return s;
}

void apid_traffic_stored(struct apid_traffic *t, struct apid_source *s, uint64_t n)
{
	pthread_mutex_lock(&t->mu);
	if (s)
		s->stored += n;
	t->stored += n;
	pthread_mutex_unlock(&t->mu);
}

void apid_traffic_rejected(struct apid_traffic *t, struct apid_source *s, enum apid_reject r)
{
	pthread_mutex_lock(&t->mu);
	if (s)
		s->rejected++;
	t->rejected++;
	if (r < APID_REJ_COUNT)
		t->rejected_by[r]++;
	pthread_mutex_unlock(&t->mu);
}

void apid_traffic_unattributed_error(struct apid_traffic *t)
{
	pthread_mutex_lock(&t->mu);
	t->unattributed_errors++;
	pthread_mutex_unlock(&t->mu);
}

static long long int_or(long long v, long long dflt)
{
	return v == HIVE_MSG_NO_INT ? dflt : v;
}

void apid_traffic_heartbeat(struct apid_traffic *t, const struct hive_envelope *env,
			   const struct hive_msg_heartbeat *hb)
{
	struct daemon_seen *d;

	pthread_mutex_lock(&t->mu);
	for (d = t->daemons; d; d = d->next)
		if (strcmp(d->src, env->src) == 0)
			break;
	if (!d && t->n_daemons < MAX_DAEMONS && (d = calloc(1, sizeof(*d)))) {
		snprintf(d->src, sizeof(d->src), "%s", env->src);
		d->next = t->daemons;
		t->daemons = d;
		t->n_daemons++;
	}
	if (d) {
		snprintf(d->daemon, sizeof(d->daemon), "%s", hb->daemon);
		snprintf(d->host, sizeof(d->host), "%s", hb->host ? hb->host : "");
		d->pid = int_or(hb->pid, 0);
		d->started = int_or(hb->started, 0);
		d->in_flight = int_or(hb->in_flight, 0);
		d->latency_ms = isnan(hb->latency_ms) ? 0 : hb->latency_ms;
		d->last_ms = hive_wall_ms();
		d->stopped_ms = 0;
		d->heartbeats++;
		json_decref(d->counters);
		d->counters = hb->counters ? json_deep_copy(hb->counters) : NULL;
	}
	pthread_mutex_unlock(&t->mu);
}

void apid_traffic_goodbye(struct apid_traffic *t, const struct hive_envelope *env,
			  const struct hive_msg_goodbye *g)
{
	struct daemon_seen *d;

	pthread_mutex_lock(&t->mu);
	for (d = t->daemons; d; d = d->next)
		if (strcmp(d->src, env->src) == 0)
			break;
	if (d)
		d->stopped_ms = hive_wall_ms();
	pthread_mutex_unlock(&t->mu);
	log_info("daemon stopped src=%s daemon=%s reason=%s%s", env->src, g->daemon,
		 g->reason ? g->reason : "-", d ? "" : " (never heard of: ignored)");
}

/* The record of subnet, created on first use (NULL out of memory). Under mu. */
static struct sweep_seen *sweep_of(struct apid_traffic *t, const char *subnet)
{
	struct sweep_seen *w;

	for (w = t->sweeps; w; w = w->next)
		if (strcmp(w->subnet, subnet) == 0)
			return w;
	if ((w = calloc(1, sizeof(*w)))) {
		snprintf(w->subnet, sizeof(w->subnet), "%s", subnet);
		w->next = t->sweeps;
		t->sweeps = w;
	}
	return w;
}

void apid_traffic_sweep_result(struct apid_traffic *t, const char *subnet, long long offline,
			       long long kept)
{
	struct sweep_seen *w;

	pthread_mutex_lock(&t->mu);
	if ((w = sweep_of(t, subnet))) {
		w->offline = offline;
		w->kept = kept;
	}
	pthread_mutex_unlock(&t->mu);
}

void apid_traffic_sweep_strangers(struct apid_traffic *t, const char *subnet,
				  char (*macs)[HIVE_MAC_LEN], size_t n)
{
	struct sweep_seen *w;
	char (*copy)[HIVE_MAC_LEN] = NULL;

	if (n && !(copy = malloc(n * sizeof(*copy))))
		n = 0;
	if (n)
		memcpy(copy, macs, n * sizeof(*copy));
	pthread_mutex_lock(&t->mu);
	if ((w = sweep_of(t, subnet))) {
		free(w->strangers);
		w->strangers = copy;
		w->n_strangers = n;
		copy = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	free(copy);
}

void apid_traffic_strangers_each(struct apid_traffic *t, void (*fn)(const char *mac, void *arg),
				 void *arg)
{
	pthread_mutex_lock(&t->mu);
	for (struct sweep_seen *w = t->sweeps; w; w = w->next)
		for (size_t i = 0; i < w->n_strangers; i++)
			fn(w->strangers[i], arg);
	pthread_mutex_unlock(&t->mu);
}

void apid_traffic_sweep_incomplete(struct apid_traffic *t, const char *subnet)
{
	struct sweep_seen *w;

	pthread_mutex_lock(&t->mu);
	t->sweeps_incomplete++;
	if ((w = sweep_of(t, subnet)))
		w->incomplete++;
	pthread_mutex_unlock(&t->mu);
}

void apid_traffic_sweep(struct apid_traffic *t, const char *subnet, long long ts_ms,
		       long long started_ms, long long duration_ms, long long probed,
		       long long answered, long long miners)
{
	struct sweep_seen *w;

	pthread_mutex_lock(&t->mu);
	w = sweep_of(t, subnet);
	if (w && ts_ms >= w->ts_ms) {
		w->ts_ms = ts_ms;
		w->started_ms = started_ms;
		w->duration_ms = duration_ms;
		w->probed = probed;
		w->answered = answered;
		w->miners = miners;
	}
	pthread_mutex_unlock(&t->mu);
}

json_t *apid_traffic_snapshot(struct apid_traffic *t, int64_t now)
{
	json_t *o = json_object(), *by = json_object(), *srcs = json_array(),
	       *daemons = json_array(), *sweeps = json_array(), *refused = json_object();
	uint64_t refused_total = 0;

	if (!o || !by || !srcs || !daemons || !sweeps || !refused) {
		json_decref(o);
		json_decref(by);
		json_decref(refused);
		json_decref(srcs);
		json_decref(daemons);
		json_decref(sweeps);
		return NULL;
	}
	pthread_mutex_lock(&t->mu);
	json_object_set_new(o, "received", json_integer((json_int_t)t->received));
	json_object_set_new(o, "stored", json_integer((json_int_t)t->stored));
	json_object_set_new(o, "rejected", json_integer((json_int_t)t->rejected));
	json_object_set_new(o, "lost", json_integer((json_int_t)t->lost));
	json_object_set_new(o, "duplicates",
			    json_integer((json_int_t)hive_seq_duplicates(t->seq)));
	json_object_set_new(o, "unattributed_errors",
			    json_integer((json_int_t)t->unattributed_errors));
	for (int r = 0; r < APID_REJ_COUNT; r++)
		json_object_set_new(by, apid_reject_name((enum apid_reject)r), json_integer((json_int_t)t->rejected_by[r]));
	/* The refusals (guard.c): events not believed, a part of rejected_by. */
	for (int r = APID_REJ_REFUSED_FIRST; r < APID_REJ_COUNT; r++) {
		json_object_set_new(refused, apid_reject_name((enum apid_reject)r),
				    json_integer((json_int_t)t->rejected_by[r]));
		refused_total += t->rejected_by[r];
	}
	for (struct apid_source *s = t->sources; s; s = s->all)
		json_array_append_new(srcs, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "src", s->src,
						      "received", (json_int_t)s->received,
						      "stored", (json_int_t)s->stored,
						      "rejected", (json_int_t)s->rejected,
						      "lost", (json_int_t)s->lost,
						      "last_ms", (json_int_t)s->last_ms));
	if (t->other.received)
		json_array_append_new(srcs, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "src", "other",
						      "received", (json_int_t)t->other.received,
						      "stored", (json_int_t)t->other.stored,
						      "rejected", (json_int_t)t->other.rejected,
						      "lost", (json_int_t)t->other.lost,
						      "last_ms", (json_int_t)t->other.last_ms));
	for (struct daemon_seen *d = t->daemons; d; d = d->next) {
		json_t *dj;

		if (now - d->last_ms > DAEMON_FORGET_MS)
			continue;
		json_array_append_new(daemons, dj = json_pack(
			"{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:O?}",
			"src", d->src, "daemon", d->daemon, "host", d->host,
			"pid", (json_int_t)d->pid, "started", (json_int_t)d->started,
			"last_heartbeat_ms", (json_int_t)d->last_ms,
			"heartbeat_age_ms", (json_int_t)(now - d->last_ms),
			"in_flight", (json_int_t)d->in_flight, "latency_ms", d->latency_ms,
			"heartbeats", (json_int_t)d->heartbeats, "counters", d->counters));
		if (dj && d->stopped_ms)
			json_object_set_new(dj, "stopped_ms", json_integer((json_int_t)d->stopped_ms));
	}
	for (struct sweep_seen *w = t->sweeps; w; w = w->next)
		json_array_append_new(sweeps, json_pack(
			"{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "subnet", w->subnet,
			"ts_ms", (json_int_t)w->ts_ms, "age_ms", (json_int_t)(now - w->ts_ms),
			"started_ms", (json_int_t)w->started_ms,
			"duration_ms", (json_int_t)w->duration_ms, "probed", (json_int_t)w->probed,
			"answered", (json_int_t)w->answered, "miners", (json_int_t)w->miners,
			"offline", (json_int_t)w->offline, "kept", (json_int_t)w->kept,
			"incomplete", (json_int_t)w->incomplete));
	json_object_set_new(o, "sweeps_incomplete", json_integer((json_int_t)t->sweeps_incomplete));
	pthread_mutex_unlock(&t->mu);
	json_object_set_new(o, "rejected_by", by);
	json_object_set_new(o, "refused", refused);
	json_object_set_new(o, "refused_total", json_integer((json_int_t)refused_total));
	json_object_set_new(o, "sources", srcs);
	json_object_set_new(o, "daemons", daemons);
	json_object_set_new(o, "sweeps", sweeps);
	return o;
}

uint64_t apid_traffic_lost(struct apid_traffic *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->mu);
	n = t->lost;
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t apid_traffic_daemons(struct apid_traffic *t, struct apid_traffic_daemon *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	for (struct daemon_seen *d = t->daemons; d && n < max; d = d->next, n++) {
		snprintf(out[n].daemon, sizeof(out[n].daemon), "%s", d->daemon);
		snprintf(out[n].host, sizeof(out[n].host), "%s", d->host);
		out[n].pid = d->pid;
		out[n].started = d->started;
		out[n].last_ms = d->last_ms;
		out[n].stopped_ms = d->stopped_ms;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Counts one envelope and its sequence gap; returns its source. */
struct apid_source *apid_traffic_received(struct apid_traffic *t, const struct hive_envelope *env,
					  struct apid_source **last)
{
	struct apid_source *s;
	uint64_t gap;

	pthread_mutex_lock(&t->mu);
	s = *last && strcmp((*last)->src, env->src) == 0 ? *last : source_locked(t, env->src);
	gap = hive_seq_track(t->seq, env->src, env->boot, env->topic, env->seq);
	s->received++;
	s->lost += gap;
	s->last_ms = hive_wall_ms();
	t->received++;
	t->lost += gap;
	pthread_mutex_unlock(&t->mu);
	if (gap)
		hive_log_complain(env->src, "events lost src=%s topic=%s missing=%llu seq=%llu",
				  env->src, env->topic, (unsigned long long)gap, env->seq);
	*last = s;
	return s;
}

