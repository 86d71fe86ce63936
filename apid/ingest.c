/* ingest — the receive thread on bus.events: receive, count (traffic.c),
 * decode once (event.c), and hand the decoded event to the writer queue.
 * A body that does not decode is counted and logged here and never
 * reaches the writer. */
#include "ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "guard.h"
#include "hive/bus.h"
#include "hive/log.h"
#include "traffic.h"
#include "writer.h"

struct apid_ingest {
	struct apid_traffic *traffic;
	struct hive_bus *bus;
	struct apid_writer *writer;
	struct apid_guard *guard;       /* may be NULL: nothing refused */
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

struct apid_ingest *apid_ingest_new(struct apid_traffic *traffic)
{
	struct apid_ingest *in = calloc(1, sizeof(*in));

	if (in)
		in->traffic = traffic;
	return in;
}

void apid_ingest_set_guard(struct apid_ingest *in, struct apid_guard *g)
{
	in->guard = g;
}

void apid_ingest_free(struct apid_ingest *in)
{
	if (!in)
		return;
	apid_ingest_stop(in);
	free(in);
}

/* A body that did not decode: counted by reason, logged rate-limited per
 * (source, topic). */
static void refuse(struct apid_ingest *in, struct apid_source *s,
		   const struct hive_envelope *env, enum apid_reject why, const char *err)
{
	char key[HIVE_SOURCE_MAX + HIVE_TOPIC_MAX + 8];

	apid_traffic_rejected(in->traffic, s, why);
	snprintf(key, sizeof(key), "%s %s %d", env->src, env->topic, (int)why);
	hive_log_complain(key, "event rejected src=%s topic=%s seq=%llu reason=\"%s\" err=\"%s\"",
			  env->src, env->topic, env->seq, apid_reject_name(why), err);
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
			struct apid_source *s = apid_traffic_received(in->traffic, &env, &last);
			struct apid_event ev;
			enum apid_reject why;
			char err[256];

			if (apid_event_decode(&env, &ev, &why, err, sizeof(err)) < 0) {
				refuse(in, s, &env, why, err);
				hive_envelope_clear(&env);
				continue;
			}
			if (apid_guard_check_role(in->guard, &env, &ev, &why, err,
						  sizeof(err)) < 0 ||
			    apid_guard_check(in->guard, &env, &ev, &why, err, sizeof(err)) < 0) {
				refuse(in, s, &env, why, err);
				apid_event_clear(&ev);
				hive_envelope_clear(&env);
				continue;
			}
			if (apid_writer_push(in->writer, &env, &ev, s) < 0)
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
