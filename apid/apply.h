/* apply — what each event and each writer request does to the tables: the
 * SQL of every table the writer changes, prepared once on the writer's
 * connection.
 *
 * writer.c creates the struct after opening the database and frees it
 * before closing the connection; every other function runs on the writer
 * thread, inside the transaction the writer opened (BEGIN, COMMIT,
 * ROLLBACK and retention are writer.c's). Nothing here commits.
 *
 * What changed comes back to the writer through the struct: the changes
 * record (apid_apply_changes) lists what to tell the feed and says whether
 * a roster field changed. The writer reads it after COMMIT and empties it
 * after COMMIT or ROLLBACK.
 */
#ifndef APID_APPLY_H
#define APID_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <sqlite3.h>

#include "event.h"
#include "hive/mac.h"

struct apid_apply;
struct apid_traffic;
struct apid_sched;

enum apid_note_kind { APID_NOTE_MINER, APID_NOTE_MODEL, APID_NOTE_STATUS };

/* One thing to tell the feed once the transaction is committed. */
struct apid_note {
	enum apid_note_kind kind;
	char key[128];           /* the MAC, or the model's alias */
	size_t item;             /* APID_NOTE_STATUS: the item given to apid_apply_event */
	long long row_id;        /* APID_NOTE_STATUS: the statuses row */
};

/* What the open transaction changed so far. Owned by the apply struct;
 * the writer may empty it (n_notes = 0, roster = false) or put it back to
 * an earlier count and flag (a request rolled back to its savepoint). */
struct apid_changes {
	struct apid_note *notes; /* kept only when notes are wanted (a feed) */
	size_t n_notes, notes_cap;
	bool roster;             /* a roster field changed: the scheduler reloads */
};

/* Prepares the statements on db (the writer's connection, which must
 * outlive the struct) and creates the temp tables they use. traffic (may
 * be NULL) is told the last sweep of each subnet the database remembers,
 * and then what the events report (sweeps, heartbeats, unattributed
 * errors). NULL with a message in err; apid_apply_free frees (NULL is
 * fine). */
struct apid_apply *apid_apply_new(sqlite3 *db, struct apid_traffic *traffic, char *err,
				  size_t errlen);
void apid_apply_free(struct apid_apply *a);

/* Who decides whether a sweep that drops many miners waits for a second
 * one (guard.h); NULL: none waits. */
struct apid_guard;
void apid_apply_set_guard(struct apid_apply *a, struct apid_guard *g);

/* What seals the API keys and unlock passwords it stores (secrets.h);
 * without it a key event is rejected and a new unlock password refused. */
struct apid_secrets;
void apid_apply_set_secrets(struct apid_apply *a, const struct apid_secrets *s);

/* Whom finished jobs are reported to (may be NULL) and whether feed notes
 * are kept (there is a feed). The writer sets both at the start of each
 * transaction. */
void apid_apply_attach(struct apid_apply *a, struct apid_sched *sched, bool notes);

/* The changes record (see above); the pointer stays valid until
 * apid_apply_free. */
struct apid_changes *apid_apply_changes(struct apid_apply *a);

/* The writer's connection, for a request or hook that keeps statements of
 * its own on it (the writer closes it after apid_apply_free: finalise them
 * before). Only on the writer thread. */
sqlite3 *apid_apply_db(struct apid_apply *a);

/* When an event happened: its envelope's ts (the sender's clock), or now
 * when it has none. */
long long apid_apply_event_ts(const struct hive_envelope *env);

/* Applies one decoded event (env must outlive the call). item comes back
 * in the event's APID_NOTE_STATUS note. 0, or -1 with the reason; an
 * unknown miner is logged here (rate-limited), database errors too. */
int apid_apply_event(struct apid_apply *a, const struct hive_envelope *env,
		     const struct apid_event *ev, size_t item, enum apid_reject *why);

/* ---- writer requests: apid_writer_fn (writer.h) and what they take */

/* PATCH of a miner. _init checks the values and fills p, on the caller's
 * thread: -1 with 404 (malformed MAC) or 422 and a message. p borrows
 * unlock_pass and actor until the request has run. */
struct apid_patch_miner {
	char mac[HIVE_MAC_LEN];  /* normalised */
	int managed;             /* 0, 1, or -1 to leave */
	const char *unlock_pass; /* NULL leaves it */
	const char *actor;       /* NULL: "api" */
};
int apid_apply_patch_miner_init(struct apid_patch_miner *p, const char *mac, int managed,
				const char *unlock_pass, const char *actor, int *http_status,
				char *err, size_t errlen);
/* The request: sets the fields, writes the audit row. arg is a
 * struct apid_patch_miner; 404 unknown miner, 503 database error. */
int apid_apply_patch_miner(struct apid_apply *a, void *arg, int *http_status, char *err,
			   size_t errlen);

/* PATCH of a model's max_preset (NULL lifts the limit). */
struct apid_patch_model {
	char alias[128];
	const char *max_preset;  /* NULL: no limit */
	const char *actor;
};
int apid_apply_patch_model_init(struct apid_patch_model *p, const char *alias,
				const char *max_preset, const char *actor, int *http_status,
				char *err, size_t errlen);
/* 404 unknown model, 422 not one of its presets, 503 database error. */
int apid_apply_patch_model(struct apid_apply *a, void *arg, int *http_status, char *err,
			   size_t errlen);

/* ---- SQL helpers, shared with the writer's own statements */

/* Prepares n statements (SQLITE_PREPARE_PERSISTENT) into st[]; on failure
 * finalises those done and returns -1 with "<who>: ..." in err. */
int apid_apply_prepare(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n,
		       const char *who, char *err, size_t errlen);
/* Steps a statement that returns no rows (a row is ignored), resets it and
 * clears its bindings. The SQLite result: SQLITE_DONE on success. */
int apid_apply_step(sqlite3_stmt *st);
/* Logs that st failed with rc (rate-limited, the start of its SQL); -1. */
int apid_apply_failed(sqlite3_stmt *st, int rc);

#endif
