/* rollup — the long history: raw rows folded into compact aggregates.
 *
 * Three roll-ups, each a step at a time on the writer's connection, in a
 * transaction of its own, between the writer's batches:
 * - statuses → status_minutes and status_hours: the raw rows not yet
 *   folded (by id, so a late status is folded too) are added to their
 *   minute's and hour's row of the miner: counts, sums and maxima, so a
 *   roll-up is exactly the aggregate of its raw rows. rollups('statuses')
 *   keeps the last id folded (last_id) and the boundary the readers use
 *   (done_ms): every status older than it was folded, so history reads
 *   roll-ups before it and raw rows from it on.
 * - status_minutes → fleet_minutes and fleet_hours: once a minute is
 *   folded for every miner, the fleet's totals for it, per model and
 *   whole ('' ; a miner of unknown model counts under '?').
 * - telemetry → telemetry_hours: once an hour is over (and 5 minutes
 *   more for late samples), each chain's chips summarised for it
 *   (chips.h), a few miners per step.
 * docs/apid.md (Storage) has the whole scheme; retention.c prunes raw
 * rows only once they are folded.
 */
#ifndef APID_ROLLUP_H
#define APID_ROLLUP_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

/* A status arriving later than this after its minute is still folded
 * (the fold goes by id), but readers may miss it for a moment. */
#define APID_ROLLUP_LATE_MS      60000
/* Telemetry of an hour is summarised this long after the hour ends. */
#define APID_ROLLUP_TELEMETRY_LATE_MS 300000

struct apid_rollup;

/* Prepares the statements on db (the writer's connection, which must
 * outlive it). NULL with a message in err; apid_rollup_free frees. */
struct apid_rollup *apid_rollup_new(sqlite3 *db, char *err, size_t errlen);
void apid_rollup_free(struct apid_rollup *r);

/* One step of each roll-up that has work, at wall time now (ms); never in
 * an open transaction. 1 when more is waiting (a backlog: step again
 * soon), 0 when every roll-up is up to date, -1 after a database error
 * (logged; the step is rolled back and retried later). */
int apid_rollup_step(struct apid_rollup *r, int64_t now);

/* Rows written so far (for health and the logs). */
struct apid_rollup_counts {
	uint64_t statuses;       /* raw statuses folded */
	uint64_t fleet_minutes;  /* minutes of fleet totals written */
	uint64_t telemetry_hours; /* chain-hours summarised */
};
void apid_rollup_counts(struct apid_rollup *r, struct apid_rollup_counts *out);

#endif
