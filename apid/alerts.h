/* alerts — the alerts engine: a thread of apid's own that checks the rules
 * (docs/alerts.md) every alerts.evaluate_seconds and runs each alert's life.
 *
 * Every evaluation reads the fleet in one scan through the engine's own
 * read-only connection (miners, each one's last status, its preset's TH in
 * the catalogue, the actions in flight) and asks alerts_farm.h for the farm
 * and suite conditions. A condition true on a subject (a miner's MAC, a
 * daemon, "farm") is pending, in memory, until it has held for the rule's
 * for_seconds (a model's override first); then it fires: one `alerts` row,
 * state 'firing', at most one per (rule, subject). A firing alert whose
 * condition stays clear for alerts.resolve_seconds is resolved (ended_ms:
 * when it cleared). A miner with an action of PowerHive's in flight (open,
 * or done within control.action_timeout_seconds) is neither offline nor
 * hashing low; a paused or stopped one is not hashing low.
 *
 * Notifications: the firings of one rule within alerts.group_seconds of the
 * first make one notification (the same for resolutions), enqueued in the
 * outbox (notify.h) in the writer transaction that marks its alerts
 * notified, then the delivery thread is kicked. An alert a silence covers
 * (its rule and/or miner) is recorded, marked silenced, and not notified.
 * At start the firing rows are loaded back, and alerts whose notification
 * had not been enqueued yet are grouped again: nothing is fired twice or
 * lost across a restart.
 *
 * Writes go through the writer (apid_writer_run); the thread never holds
 * a lock while it reads the database or calls the writer.
 */
#ifndef APID_ALERTS_H
#define APID_ALERTS_H

#include <stdint.h>
#include <jansson.h>

#include "hive/cfg.h"

struct apid;
struct apid_alerts;
struct apid_notify;

/* Loads the firing alerts and starts the thread, with a copy of a->d.cfg;
 * a->writer must run until apid_alerts_stop. notify (may be NULL) is
 * kicked after each enqueue. NULL with a message in err. */
struct apid_alerts *apid_alerts_start(struct apid *a, struct apid_notify *notify, char *err,
				      size_t errlen);
/* After a reload: the new rules (copied), from the next evaluation on. */
void apid_alerts_configure(struct apid_alerts *al, const struct hive_cfg *cfg);
/* Joins the thread; before apid_writer_stop. NULL is fine. */
void apid_alerts_stop(struct apid_alerts *al);

struct apid_alerts_stats {
	int firing[HIVE_ALERT_RULES];  /* firing alerts by rule, at the last evaluation */
	int firing_total;
	int pending;                   /* conditions true, not firing yet */
	uint64_t evaluations;
	int64_t last_eval_ms;          /* wall clock of the last evaluation (0: none yet) */
	double last_eval_us;           /* how long it took */
	uint64_t notifications;        /* enqueued since start */
};
/* NULL al: all zero. */
void apid_alerts_get_stats(struct apid_alerts *al, struct apid_alerts_stats *out);
/* {"firing": n, "by_rule": {...}, "pending": n, "evaluated_ms": ..., "eval_ms": ...}
 * for /api/health; null when al is NULL. New reference. */
json_t *apid_alerts_health(struct apid_alerts *al);

#endif
