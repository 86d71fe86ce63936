/* actions — every change PowerHive makes to a miner, from request to proof.
 *
 * An action is one change to one miner: set_preset (with a preset),
 * restart (mining restart), pause, resume, reboot. Its life:
 *
 *   queued ──► sent ──► confirming ──► done
 *      │         │           │
 *      │         │           └──► expired   (no read-back within control.action_timeout_seconds)
 *      │         └──► failed    (the worker reported the firmware's error)
 *      └──► superseded          (a newer action for the miner came first)
 *
 * - queued: recorded; waits until the miner has no control job out.
 * - sent: a control job is out (bus.jobs_control).
 * - confirming: the firmware accepted it (hive.action.result), or its job
 *   went unanswered and the action must not be sent twice (restart, reboot).
 * - done: a status read back shows the effect: the preset as current preset
 *   (tuning or not), state "stopped" + "paused", "mining" again; for restart
 *   and reboot, once the firmware accepted the call, a state that began
 *   after it was sent (unanswered: only restarting/starting/initializing
 *   since then count, since a state also changes for other reasons).
 *
 * A miner has at most one control job out, so actions reach it in the order
 * they were made. An idempotent action (set_preset, pause, resume) whose job
 * went unanswered is sent again (at most 3 times); restart and reboot never
 * are. A newer action supersedes older ones that are queued or confirming.
 *
 * The enforcer: a managed miner whose current preset is above its model's
 * max_preset (by the catalogue's watts; "disabled", stock clocks, is above
 * any limit) gets a set_preset to the highest preset at or under the limit,
 * actor "enforcer", on the status that shows it. After
 * control.max_corrections_per_hour corrections in an hour it is flagged
 * `conflict` with the reason and left alone until an hour passes without
 * a correction and it is seen within the limit. Unmanaged miners are never
 * touched by anything automatic.
 *
 * Threads: the writer thread creates actions and applies results, failures
 * and statuses inside its open transaction (the functions taking a
 * sqlite3 *: the writer's connection); the main loop sends and times out
 * (apid_actions_tick). State is in the actions table; open actions are
 * also held here. Thread-safe.
 */
#ifndef APID_ACTIONS_H
#define APID_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <jansson.h>

#include "hive/msg.h"

struct apid_sched;
struct apid_writer;
struct apid_writer_hooks;
struct apid_actions;

enum apid_action_kind {
	APID_ACT_SET_PRESET,
	APID_ACT_RESTART,
	APID_ACT_PAUSE,
	APID_ACT_RESUME,
	APID_ACT_REBOOT,
	APID_ACT_KINDS
};

enum apid_action_state {
	APID_AS_QUEUED,
	APID_AS_SENT,
	APID_AS_CONFIRMING,
	APID_AS_DONE,
	APID_AS_FAILED,
	APID_AS_EXPIRED,
	APID_AS_SUPERSEDED,
	APID_AS_STATES
};

const char *apid_action_kind_name(enum apid_action_kind k);
const char *apid_action_state_name(enum apid_action_state s);
/* -1 when unknown. */
int apid_action_kind_parse(const char *name);
int apid_action_state_parse(const char *name);

struct apid_actions_opts {
	int64_t action_timeout_ms;          /* control.action_timeout_seconds */
	int64_t job_timeout_ms;             /* a control job's answer: scheduler.job_timeout_seconds */
	int max_corrections_per_hour;       /* control.max_corrections_per_hour */
};

/* What an operator (or the enforcer) asks for. */
struct apid_action_request {
	char mac[HIVE_MAC_LEN];
	enum apid_action_kind kind;
	char preset[64];                    /* set_preset */
	const char *actor;                  /* token name, "enforcer", ... */
	const char *reason;                 /* why, or NULL */
};

/* Sends through s; records through w (state changes made on the main loop
 * are posted to it). */
struct apid_actions *apid_actions_new(const struct apid_actions_opts *o, struct apid_sched *s,
				      struct apid_writer *w);
void apid_actions_free(struct apid_actions *a);
void apid_actions_configure(struct apid_actions *a, const struct apid_actions_opts *o);

/* Loads the open actions from the database (at start; db read-only is
 * fine). Actions that were sent when apid stopped are confirming now: their
 * job's fate is unknown, and the read-back decides. 0 / -1. */
int apid_actions_load(struct apid_actions *a, sqlite3 *db, char *err, size_t errlen);

/* The writer hooks (writer.h) that feed results, failures and statuses in,
 * make created actions go live after COMMIT, and let go of the writer's
 * connection before it closes. */
void apid_actions_hooks(struct apid_actions *a, struct apid_writer_hooks *out);

/* Records n requests through the writer (blocking until committed, like a
 * PATCH): 0 with ids[i] set, or -1 with *http_status (503) and err. For
 * any thread but the writer's. */
int apid_actions_request(struct apid_actions *a, const struct apid_action_request *req,
			 size_t n, long long *ids, int *http_status, char *err, size_t errlen);
/* A model's max_preset changed: the enforcer checks every managed miner of
 * it with the writer's next transaction. */
void apid_actions_model_changed(struct apid_actions *a, const char *alias);

/* ---- on the writer thread, inside the transaction (db: the writer's) ---- */

/* Records n actions (audited with their actor), superseding older open
 * ones of the same miners; ids[i] gets each id. 0, or -1 (database error:
 * nothing of it survives the rolled-back transaction). The actions go live
 * when apid_actions_commit is called after the COMMIT. */
int apid_actions_create(struct apid_actions *a, sqlite3 *db,
			const struct apid_action_request *req, size_t n, long long *ids);
/* The transaction of the last creates committed (true) or was lost. */
void apid_actions_commit(struct apid_actions *a, bool committed);

/* A control job's result, a failed job (kind, message from the
 * hive.miner.error that came with it), a fresh status: each moves the
 * miner's actions on. on_status also runs the enforcer. */
void apid_actions_on_result(struct apid_actions *a, sqlite3 *db,
			    const struct hive_msg_action_result *r);
void apid_actions_on_error(struct apid_actions *a, const struct hive_msg_miner_error *e);
void apid_actions_on_job_failed(struct apid_actions *a, sqlite3 *db,
				const struct hive_msg_job_failed *f);
void apid_actions_on_status(struct apid_actions *a, sqlite3 *db,
			    const struct hive_msg_status_result *st, int64_t ts_ms);
/* A model's max_preset changed: checks every managed miner of it at once. */
void apid_actions_enforce_model(struct apid_actions *a, sqlite3 *db, const char *alias);

/* The writer's connection closes: finalises the statements kept on it. */
void apid_actions_close_db(struct apid_actions *a);

/* ---- on the main loop ---- */

/* Sends what can go, times out what waited too long. Returns the ms until
 * it wants to run again. */
int64_t apid_actions_tick(struct apid_actions *a, int64_t now_mono_ms);

/* ---- anywhere ---- */

struct apid_actions_stats {
	uint64_t created, sent, resent, done, failed, expired, superseded;
	uint64_t enforced;                  /* enforcer actions created */
	uint64_t conflicts;                 /* miners flagged conflict */
	uint64_t open;                      /* queued + sent + confirming now */
	uint64_t by_state[APID_AS_STATES];  /* open ones, by state */
};
void apid_actions_get_stats(struct apid_actions *a, struct apid_actions_stats *out);

/* The open action of a miner, if any (for the API's 409 decisions).
 * true when one exists. */
bool apid_actions_busy(struct apid_actions *a, const char *mac);

#endif
