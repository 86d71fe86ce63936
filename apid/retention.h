/* retention — what the database keeps, and the space it gives back.
 *
 * Run by the writer between its batches, one small step at a time on its
 * connection. A pass has three parts:
 * 1. By age: each table's rows older than its retention go, oldest first,
 *    prune_batch rows a step. Raw statuses and telemetry go only once
 *    rolled up (rollup.h) and never a miner's latest status or sample.
 * 2. By size: while the data (the database's pages in use) is over
 *    max_bytes, the history table furthest through its own retention
 *    (oldest row's age / its retention) loses its oldest prune_batch rows,
 *    so every history shrinks by the same share of its window. Audit,
 *    actions and the power tables follow their days only.
 * 3. Space back: free pages beyond a reserve are handed back to the file
 *    system (PRAGMA incremental_vacuum, then a checkpoint: in WAL mode the
 *    file shrinks when the checkpoint copies the truncation in).
 */
#ifndef APID_RETENTION_H
#define APID_RETENTION_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

/* Free pages kept for reuse instead of handed back (64 MiB of 4 KiB pages):
 * a steady database refills them within the next prune interval. */
#define APID_RETENTION_RESERVE_PAGES 16384

struct apid_retention_opts {
	int status_raw_hours;    /* raw statuses */
	int telemetry_raw_hours; /* raw telemetry */
	int minute_days;         /* status_minutes, fleet_minutes */
	int status_days;         /* status_hours, fleet_hours */
	int telemetry_days;      /* telemetry_hours, miner_errors */
	int audit_days;          /* audit, actions */
	int power_days;          /* power_readings, power_samples, power_decisions */
	long long max_bytes;     /* 0: no cap */
	int prune_batch;         /* rows per step */
	long long reserve_pages; /* free pages kept; < 0: APID_RETENTION_RESERVE_PAGES */
};

enum apid_retention_table {
	APID_RT_STATUSES, APID_RT_TELEMETRY, APID_RT_STATUS_MINUTES, APID_RT_STATUS_HOURS,
	APID_RT_TELEMETRY_HOURS, APID_RT_FLEET_MINUTES, APID_RT_FLEET_HOURS, APID_RT_ERRORS,
	APID_RT_AUDIT, APID_RT_ACTIONS, APID_RT_POWER_READINGS, APID_RT_POWER_SAMPLES,
	APID_RT_POWER_DECISIONS, APID_RT_COUNT
};

/* The table's name ("statuses", "status_minutes" ...). */
const char *apid_retention_table_name(enum apid_retention_table t);

struct apid_retention_counts {
	uint64_t pruned[APID_RT_COUNT];   /* rows deleted, by age or size */
	uint64_t capped[APID_RT_COUNT];   /* of them, by size */
	uint64_t pages_returned;          /* pages handed back to the file system */
};

struct apid_retention;

/* Prepares the statements on db (the writer's connection, which must
 * outlive it). NULL with a message in err; apid_retention_free frees. */
struct apid_retention *apid_retention_new(sqlite3 *db, char *err, size_t errlen);
void apid_retention_free(struct apid_retention *r);

/* One step of the pass at wall time now (ms); never in an open
 * transaction. 1 while the pass goes on (step again soon), 0 when it
 * ended (the next pass after the writer's pause). */
int apid_retention_step(struct apid_retention *r, const struct apid_retention_opts *o,
			int64_t now);

/* Writer thread only. */
void apid_retention_counts(struct apid_retention *r, struct apid_retention_counts *out);

#endif
