/* ingest — the receive thread on bus.events (SUBSCRIBE): receive, count
 * (traffic.h), decode once (event.h), push to the writer queue. */
#ifndef APID_INGEST_H
#define APID_INGEST_H

#include <stddef.h>

struct hive_bus;
struct apid_traffic;
struct apid_writer;
struct apid_ingest;
struct apid_guard;

/* Counts into traffic (which must outlive it). NULL on allocation failure. */
struct apid_ingest *apid_ingest_new(struct apid_traffic *traffic);
/* Checks every decoded event with g (guard.h) before queueing it; g must
 * outlive the thread. Call before apid_ingest_start. */
void apid_ingest_set_guard(struct apid_ingest *in, struct apid_guard *g);
/* Stops the thread if it runs, then frees. */
void apid_ingest_free(struct apid_ingest *in);

/* Starts the receive thread on events, pushing into w. 0 / -1 with err. */
int apid_ingest_start(struct apid_ingest *in, struct hive_bus *events, struct apid_writer *w,
		      char *err, size_t errlen);
/* Stops the receive thread (the bus stays open). */
void apid_ingest_stop(struct apid_ingest *in);

#endif
