/* power — the balancer: keeps the farm's draw under what its plant gives.
 *
 * The feed: apid PUSHes a plant-read job (hive.job.plant) on bus.jobs_plant
 * every power.interval_seconds; a pollerd reads the aggregator or the
 * Modbus meter and publishes hive.plant.reading; the writer hands it here
 * (a writer hook), where it is judged (error, failed source, low
 * confidence, stale, not fresh, an unconfirmed jump), stored, and balanced
 * on at once. A manual source needs no reading.
 *
 * A cycle (on each reading, else every interval, on the writer thread):
 * available → target = min(available, max_w) × (1 − margin); the estimate
 * of the farm's draw from the latest statuses; the allocation
 * (allocate.h) of the managed miners the balancer may move; cuts at once,
 * raises after the available power held and staggered; every change an
 * action (actor "balancer"), every decision a row. docs/power.md has the
 * whole story and the fail-safes.
 *
 * Threads: hooks and cycles on the writer thread; apid_power_tick on the
 * main loop; the getters and apid_power_patch from HTTP threads.
 */
#ifndef APID_POWER_H
#define APID_POWER_H

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include <jansson.h>

#include "hive/bus.h"
#include "hive/cfg.h"

struct apid_power;
struct apid_actions;
struct apid_writer;
struct apid_writer_hooks;

/* cfg is copied (power.*, intervals.status_seconds). jobs_plant (PUSH, the
 * caller's) may be NULL: no reads are asked for. */
struct apid_power *apid_power_new(const struct hive_cfg *cfg, struct apid_actions *actions,
				  struct apid_writer *writer, struct hive_bus *jobs_plant);
void apid_power_free(struct apid_power *p);
/* After a reload. */
void apid_power_configure(struct apid_power *p, const struct hive_cfg *cfg);

/* Settings an operator changed through the API (power_settings), and what
 * the balancer must remember (recent raises): read at start. 0 / -1. */
int apid_power_load(struct apid_power *p, sqlite3 *db, char *err, size_t errlen);

/* Where the nonces of plant-read jobs are issued (guard.h; the caller's,
 * outliving p). */
struct apid_guard;
void apid_power_set_guard(struct apid_power *p, struct apid_guard *g);
/* The writer hooks: power's own (readings) in front of inner's (the
 * actions'), which it calls for every event. */
void apid_power_hooks(struct apid_power *p, const struct apid_writer_hooks *inner,
		      struct apid_writer_hooks *out);

/* Main loop: asks for a reading when one is due and runs a cycle when none
 * came. Returns the ms until it wants to run again. */
int64_t apid_power_tick(struct apid_power *p, int64_t now_mono_ms);

/* GET /api/power, /api/power/plan, the health's power object: new
 * references, never NULL but on allocation failure. */
json_t *apid_power_status(struct apid_power *p);
json_t *apid_power_plan(struct apid_power *p);
json_t *apid_power_health(struct apid_power *p);

/* PATCH /api/power: any of mode, margin_pct, budget_w, fallback. Checked
 * whole (400 for a bad value, 409 for one the config forbids) before
 * anything changes; stored and audited through the writer. 0, or -1 with
 * *http_status and err. */
int apid_power_patch(struct apid_power *p, const json_t *body, const char *actor,
		     int *http_status, char *err, size_t errlen);

/* Does the balancer own managed, unpinned miners' presets now (mode on)? */
bool apid_power_owns_presets(struct apid_power *p);

/* What the alert rules (alerts_farm.h) read of the balancer: its settings
 * now and its last cycle's figures. A few fields copied under its lock
 * (waits at most for a running cycle). */
struct apid_power_brief {
	int mode;                 /* enum hive_power_mode, now */
	int fallback;             /* enum hive_power_fallback, now */
	int source;               /* enum hive_plant_kind */
	int stale_seconds;        /* power.stale_seconds */
	bool cycled;              /* a cycle ran since start (the figures below are its) */
	char state[16];           /* "ok", "stale", "fallback" */
	char state_reason[160];
	double available_w, measured_w, estimate_w;   /* NAN: unknown */
	int64_t cycle_ms;         /* wall clock of the last cycle */
	bool have_reading;        /* a valid reading arrived since start */
	int64_t feed_age_ms;      /* since the last valid reading (since start: none yet) */
};
void apid_power_brief(struct apid_power *p, struct apid_power_brief *out);

#endif
