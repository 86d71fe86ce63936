/* control — apid's REP socket on bus.control (credentials, health),
 * answered on its own thread. */
#ifndef APID_CONTROL_H
#define APID_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct apid;
struct hive_bus;
struct apid_control;

/* Starts the control thread answering requests on rep; it reads
 * credentials through its own read-only connection to a's database and
 * answers health with apid_health(a). NULL with err; apid_control_stop
 * frees (rep stays the caller's). */
struct apid_control *apid_control_start(struct apid *a, struct hive_bus *rep, char *err,
					size_t errlen);
void apid_control_stop(struct apid_control *c);
/* Requests answered so far; 0 for NULL. */
uint64_t apid_control_requests(struct apid_control *c);
/* Credentials or recheck requests refused: not on bus.discovery_control. */
uint64_t apid_control_refused(struct apid_control *c);

#endif
