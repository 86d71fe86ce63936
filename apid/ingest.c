/* ingest — the bus side of apid: the receive thread, the decoding of every
 * event body, and the counters of what arrived from whom.
 *
 * The receive thread only receives, counts (sequence gaps included) and
 * hands the envelope to the writer queue; bodies are decoded by the writer
 * thread (apid_event_decode), so a slow body never holds the socket. */
#include "core.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chips.h"
#include "hive/cfg.h"
#include "hive/json.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "writer.h"

#define MAX_SOURCES   4096      /* beyond: counted under "other" */
#define MAX_DAEMONS   1024
#define MAX_CHAINS    64
#define MAX_CHIPS     4096      /* per chain */
#define MAX_PRESETS   256
#define MAX_TEXT      1024      /* free text: names, messages */
#define SOURCE_BUCKETS 256
/* Daemons whose last heartbeat is older are left out of health. */
#define DAEMON_FORGET_MS (3600 * 1000LL)

/* ------------------------------------------------------------ counters */

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
	json_t *counters;           /* own copy */
	struct daemon_seen *next;
};

struct sweep_seen {
	char subnet[APID_SUBNET_LEN];
	long long ts_ms, started_ms, duration_ms, probed, answered, miners;
	struct sweep_seen *next;
};

struct apid_ingest {
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

	/* receive thread */
	struct hive_bus *bus;
	struct apid_writer *writer;
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

struct apid_ingest *apid_ingest_new(void)
{
	struct apid_ingest *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->seq = hive_seq_new();
	if (!in->seq) {
		free(in);
		return NULL;
	}
	pthread_mutex_init(&in->mu, NULL);
	snprintf(in->other.src, sizeof(in->other.src), "other");
	return in;
}

void apid_ingest_free(struct apid_ingest *in)
{
	if (!in)
		return;
	apid_ingest_stop(in);
	for (struct apid_source *s = in->sources, *n; s; s = n) {
		n = s->all;
		free(s);
	}
	for (struct daemon_seen *d = in->daemons, *n; d; d = n) {
		n = d->next;
		json_decref(d->counters);
		free(d);
	}
	for (struct sweep_seen *w = in->sweeps, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	hive_seq_free(in->seq);
	pthread_mutex_destroy(&in->mu);
	free(in);
}

static unsigned hash_str(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Called with mu held. */
static struct apid_source *source_locked(struct apid_ingest *in, const char *src)
{
	unsigned b = hash_str(src) % SOURCE_BUCKETS;
	struct apid_source *s;

	for (s = in->buckets[b]; s; s = s->next)
		if (strcmp(s->src, src) == 0)
			return s;
	if (in->n_sources >= MAX_SOURCES || !(s = calloc(1, sizeof(*s))))
		return &in->other;
	snprintf(s->src, sizeof(s->src), "%s", src);
	s->next = in->buckets[b];
	in->buckets[b] = s;
	s->all = in->sources;
	in->sources = s;
	in->n_sources++;
	return s;
}

struct apid_source *apid_ingest_source(struct apid_ingest *in, const char *src)
{
	struct apid_source *s;

	pthread_mutex_lock(&in->mu);
	s = source_locked(in, src);
	pthread_mutex_unlock(&in->mu);
	return s;
}

void apid_ingest_stored(struct apid_ingest *in, struct apid_source *s, uint64_t n)
{
	pthread_mutex_lock(&in->mu);
	if (s)
		s->stored += n;
	in->stored += n;
	pthread_mutex_unlock(&in->mu);
}

void apid_ingest_rejected(struct apid_ingest *in, struct apid_source *s, enum apid_reject r)
{
	pthread_mutex_lock(&in->mu);
	if (s)
		s->rejected++;
	in->rejected++;
	if (r < APID_REJ_COUNT)
		in->rejected_by[r]++;
	pthread_mutex_unlock(&in->mu);
}

void apid_ingest_unattributed_error(struct apid_ingest *in)
{
	pthread_mutex_lock(&in->mu);
	in->unattributed_errors++;
	pthread_mutex_unlock(&in->mu);
}

static long long num_or(double v, long long dflt)
{
	return isnan(v) ? dflt : llround(v);
}

void apid_ingest_heartbeat(struct apid_ingest *in, const struct hive_envelope *env,
			   const struct apid_ev_heartbeat *hb)
{
	struct daemon_seen *d;

	pthread_mutex_lock(&in->mu);
	for (d = in->daemons; d; d = d->next)
		if (strcmp(d->src, env->src) == 0)
			break;
	if (!d && in->n_daemons < MAX_DAEMONS && (d = calloc(1, sizeof(*d)))) {
		snprintf(d->src, sizeof(d->src), "%s", env->src);
		d->next = in->daemons;
		in->daemons = d;
		in->n_daemons++;
	}
	if (d) {
		snprintf(d->daemon, sizeof(d->daemon), "%s", hb->daemon);
		snprintf(d->host, sizeof(d->host), "%s", hb->host ? hb->host : "");
		d->pid = num_or(hb->pid, 0);
		d->started = num_or(hb->started, 0);
		d->in_flight = num_or(hb->in_flight, 0);
		d->latency_ms = isnan(hb->latency_ms) ? 0 : hb->latency_ms;
		d->last_ms = hive_wall_ms();
		d->heartbeats++;
		json_decref(d->counters);
		d->counters = hb->counters ? json_deep_copy(hb->counters) : NULL;
	}
	pthread_mutex_unlock(&in->mu);
}

void apid_ingest_sweep(struct apid_ingest *in, const char *subnet, long long ts_ms,
		       long long started_ms, long long duration_ms, long long probed,
		       long long answered, long long miners)
{
	struct sweep_seen *w;

	pthread_mutex_lock(&in->mu);
	for (w = in->sweeps; w; w = w->next)
		if (strcmp(w->subnet, subnet) == 0)
			break;
	if (!w && (w = calloc(1, sizeof(*w)))) {
		snprintf(w->subnet, sizeof(w->subnet), "%s", subnet);
		w->next = in->sweeps;
		in->sweeps = w;
	}
	if (w && ts_ms >= w->ts_ms) {
		w->ts_ms = ts_ms;
		w->started_ms = started_ms;
		w->duration_ms = duration_ms;
		w->probed = probed;
		w->answered = answered;
		w->miners = miners;
	}
	pthread_mutex_unlock(&in->mu);
}

json_t *apid_ingest_snapshot(struct apid_ingest *in, int64_t now)
{
	json_t *o = json_object(), *by = json_object(), *srcs = json_array(),
	       *daemons = json_array(), *sweeps = json_array();

	if (!o || !by || !srcs || !daemons || !sweeps) {
		json_decref(o);
		json_decref(by);
		json_decref(srcs);
		json_decref(daemons);
		json_decref(sweeps);
		return NULL;
	}
	pthread_mutex_lock(&in->mu);
	json_object_set_new(o, "received", json_integer((json_int_t)in->received));
	json_object_set_new(o, "stored", json_integer((json_int_t)in->stored));
	json_object_set_new(o, "rejected", json_integer((json_int_t)in->rejected));
	json_object_set_new(o, "lost", json_integer((json_int_t)in->lost));
	json_object_set_new(o, "duplicates",
			    json_integer((json_int_t)hive_seq_duplicates(in->seq)));
	json_object_set_new(o, "unattributed_errors",
			    json_integer((json_int_t)in->unattributed_errors));
	for (int r = 0; r < APID_REJ_COUNT; r++)
		json_object_set_new(by, apid_reject_name((enum apid_reject)r), json_integer((json_int_t)in->rejected_by[r]));
	for (struct apid_source *s = in->sources; s; s = s->all)
		json_array_append_new(srcs, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "src", s->src,
						      "received", (json_int_t)s->received,
						      "stored", (json_int_t)s->stored,
						      "rejected", (json_int_t)s->rejected,
						      "lost", (json_int_t)s->lost,
						      "last_ms", (json_int_t)s->last_ms));
	if (in->other.received)
		json_array_append_new(srcs, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "src", "other",
						      "received", (json_int_t)in->other.received,
						      "stored", (json_int_t)in->other.stored,
						      "rejected", (json_int_t)in->other.rejected,
						      "lost", (json_int_t)in->other.lost,
						      "last_ms", (json_int_t)in->other.last_ms));
	for (struct daemon_seen *d = in->daemons; d; d = d->next) {
		if (now - d->last_ms > DAEMON_FORGET_MS)
			continue;
		json_array_append_new(daemons, json_pack(
			"{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:O?}",
			"src", d->src, "daemon", d->daemon, "host", d->host,
			"pid", (json_int_t)d->pid, "started", (json_int_t)d->started,
			"last_heartbeat_ms", (json_int_t)d->last_ms,
			"heartbeat_age_ms", (json_int_t)(now - d->last_ms),
			"in_flight", (json_int_t)d->in_flight, "latency_ms", d->latency_ms,
			"heartbeats", (json_int_t)d->heartbeats, "counters", d->counters));
	}
	for (struct sweep_seen *w = in->sweeps; w; w = w->next)
		json_array_append_new(sweeps, json_pack(
			"{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "subnet", w->subnet,
			"ts_ms", (json_int_t)w->ts_ms, "age_ms", (json_int_t)(now - w->ts_ms),
			"started_ms", (json_int_t)w->started_ms,
			"duration_ms", (json_int_t)w->duration_ms, "probed", (json_int_t)w->probed,
			"answered", (json_int_t)w->answered, "miners", (json_int_t)w->miners));
	pthread_mutex_unlock(&in->mu);
	json_object_set_new(o, "rejected_by", by);
	json_object_set_new(o, "sources", srcs);
	json_object_set_new(o, "daemons", daemons);
	json_object_set_new(o, "sweeps", sweeps);
	return o;
}

/* ------------------------------------------------------------ receive thread */

/* Counts one envelope and its sequence gap; returns its source. */
static struct apid_source *account(struct apid_ingest *in, const struct hive_envelope *env,
				   struct apid_source **last)
{
	struct apid_source *s;
	uint64_t gap;

	pthread_mutex_lock(&in->mu);
	s = *last && strcmp((*last)->src, env->src) == 0 ? *last : source_locked(in, env->src);
	gap = hive_seq_track(in->seq, env->src, env->boot, env->topic, env->seq);
	s->received++;
	s->lost += gap;
	s->last_ms = hive_wall_ms();
	in->received++;
	in->lost += gap;
	pthread_mutex_unlock(&in->mu);
	if (gap)
		hive_log_complain(env->src, "events lost src=%s topic=%s missing=%llu seq=%llu",
				  env->src, env->topic, (unsigned long long)gap, env->seq);
	*last = s;
	return s;
}

static void *receive_main(void *arg)
{
	struct apid_ingest *in = arg;
	struct apid_source *last = NULL;

	while (!atomic_load(&in->stop)) {
		struct hive_envelope env;
		int rc;

		memset(&env, 0, sizeof(env));
		rc = hive_bus_recv(in->bus, &env, 200);
		if (rc == HIVE_BUS_OK) {
			struct apid_source *s = account(in, &env, &last);

			if (apid_writer_push(in->writer, &env, s) < 0)
				break;
		} else if (rc == HIVE_BUS_CLOSED) {
			break;
		} else if (rc == HIVE_BUS_ERROR) {
			/* Logged by the bus; do not spin on a broken socket. */
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int apid_ingest_start(struct apid_ingest *in, struct hive_bus *events, struct apid_writer *w,
		      char *err, size_t errlen)
{
	int rc;

	if (in->running) {
		snprintf(err, errlen, "ingest already running");
		return -1;
	}
	if (hive_bus_subscribe(events, "") < 0) {
		snprintf(err, errlen, "events: cannot subscribe");
		return -1;
	}
	in->bus = events;
	in->writer = w;
	atomic_store(&in->stop, false);
	rc = pthread_create(&in->thread, NULL, receive_main, in);
	if (rc != 0) {
		snprintf(err, errlen, "ingest thread: %s", strerror(rc));
		return -1;
	}
	in->running = true;
	return 0;
}

void apid_ingest_stop(struct apid_ingest *in)
{
	if (!in || !in->running)
		return;
	atomic_store(&in->stop, true);
	pthread_join(in->thread, NULL);
	in->running = false;
}
