/* apidfake — a test that plays apid's side of the bus for real workers
 * (pollerd, telemetryd): it listens where apid would, on the endpoints of
 * the suite's config, PUSHes jobs and SUBSCRIBEs to every event, and reads
 * each event with the table apid decodes it with.
 *
 *	struct hive_bus_opts o = { .sendbuf = 64, .recvbuf = 1024, .source = "t/hub/1",
 *				   .boot = hive_wall_ms() };
 *	sub = tl_apid_listen(&s, "events", &o);
 *	push = tl_apid_listen(&s, "jobs_status", &o);
 *	ts_start(&s, "pollerd", NULL, NULL, NULL);
 *	... hive_bus_send(push, HIVE_TOPIC_JOB_STATUS, body, false) ...
 *	if ((n = tl_apid_drain(sub, on_event, NULL, err, sizeof(err))) < 0)
 *		fail_msg("%s", err);
 */
#ifndef HIVE_APIDFAKE_H
#define HIVE_APIDFAKE_H

#include <stddef.h>

#include "hive/bus.h"
#include "suite.h"

/* Listens on the config's bus.<key> as apid does: "events" as SUBSCRIBE
 * to every topic, any other key ("jobs_status", "jobs_control", ...) as
 * PUSH. o: the socket's options (listen is set here). The socket, or NULL
 * with the reason on stderr. */
struct hive_bus *tl_apid_listen(const struct ts_suite *s, const char *key,
				const struct hive_bus_opts *o);

/* One event as apid reads it: kind (an enum hive_msg_kind), body the
 * struct its table decoded (freed after the call), env its envelope
 * (topic, src). */
typedef void tl_apid_on_event(int kind, const void *body, const struct hive_envelope *env,
			      void *arg);

/* Reads every event sub has queued, without waiting, decodes each with
 * its table and hands it to fn (NULL: only decoded). How many were read,
 * or -1 at an unknown topic or a body the table refuses (apid would drop
 * it), with what and why (the field) in err. */
int tl_apid_drain(struct hive_bus *sub, tl_apid_on_event *fn, void *arg, char *err,
		  size_t errlen);

#endif
