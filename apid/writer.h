/* writer — the thread that owns apid's only write connection.
 *
 * Everything that changes the database goes through it: events from the
 * bus (pushed by the ingest's receive thread into one bounded queue) and
 * requests — functions run on the writer thread inside its transaction,
 * such as the PATCHes from HTTP, which jump ahead of events and wait for
 * their commit. The thread commits in batched transactions — a batch
 * closes at batch_max events or batch_ms after its first event, or at once
 * when a caller waits — and between batches runs one small step of the
 * roll-ups and of retention (rollup.h, retention.h).
 * What each event and request does to the tables is apply.h's. A crash
 * loses the open batch and what was still queued; every committed batch is
 * in the database.
 */
#ifndef APID_WRITER_H
#define APID_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hive/bus.h"
#include "retention.h"

struct apid_writer;
struct apid_traffic;
struct apid_event;
struct apid_source;
struct apid_sched;
struct apid_feed;
struct apid_guard;
struct apid_apply;
struct hive_msg_status_result;

struct apid_writer_opts {
	const char *db_path;
	int batch_max;             /* events per transaction */
	int batch_ms;              /* longest an event waits for its commit */
	size_t queue_max;          /* queued events; push blocks beyond */
	/* Retention (retention.h); <= 0 keeps forever. */
	int status_raw_hours;      /* raw statuses */
	int telemetry_raw_hours;   /* raw telemetry */
	int minute_days;           /* per-minute roll-ups: statuses, fleet */
	int status_days;           /* per-hour roll-ups: statuses, fleet */
	int telemetry_days;        /* per-chip hourly summaries, miner_errors */
	int audit_days;
	int power_days;            /* power_readings, power_samples, power_decisions */
	long long max_bytes;       /* data kept at most (0: no cap) */
	long long reserve_pages;   /* free pages kept, not given back (0: the default,
				    * APID_RETENTION_RESERVE_PAGES; -1: none) */
	int prune_batch;           /* rows per retention step */
	int prune_every_ms;        /* pause once roll-ups and retention are done (10000) */
	int prune_first_ms;        /* first pass after start (0: prune_every_ms) */
	struct apid_traffic *traffic; /* counters, heartbeats, sweeps; may be NULL */
	struct apid_sched *sched;  /* told when jobs finish; may be NULL */
	struct apid_feed *feed;    /* told what was committed; may be NULL */
	struct apid_guard *guard;  /* holds sweeps that drop many (guard.h); may be NULL */
	const char *secrets_key_file; /* read at start (secrets.h); NULL or "": beside db_path */
};

struct apid_writer_stats {
	uint64_t events;           /* taken from the queue */
	uint64_t stored;           /* applied and committed */
	uint64_t rejected;         /* by the decoder or the database */
	uint64_t batches;          /* committed transactions */
	uint64_t max_batch;        /* largest batch so far */
	uint64_t patches;          /* apid_writer_run requests (PATCHes) committed */
	uint64_t posted;           /* apid_writer_post requests committed */
	uint64_t pruned_statuses, pruned_telemetry, pruned_errors, pruned_audit, pruned_actions;
	uint64_t pruned_power;
	uint64_t pruned[APID_RT_COUNT]; /* every table, by enum apid_retention_table */
	uint64_t pages_returned;   /* free pages handed back to the file system */
	uint64_t rolled_statuses;  /* raw statuses folded into the roll-ups */
	uint64_t rolled_fleet_minutes, rolled_telemetry_hours;
	uint64_t commit_failures;
	uint64_t batches_lost;     /* transactions rolled back under the writer mid-batch */
	/* Writes the database refused: an event's statement, BEGIN, COMMIT, a
	 * transaction lost, a request that met a lock held elsewhere. */
	uint64_t db_failures;
	int64_t db_failed_ms;      /* monotonic ms of the last one; 0 none */
	char db_error[160];        /* SQLite's message then */
	uint64_t roster_gen;       /* changes when a roster field changed */
	size_t depth;              /* events waiting */
	size_t queue_max;
	long long last_seq;        /* seq of the last committed event */
};

/* Opens (and migrates) the database and starts the thread. NULL with a
 * message in err. */
struct apid_writer *apid_writer_start(const struct apid_writer_opts *o, char *err,
				      size_t errlen);
/* Drains the queue, commits, closes the database, joins the thread. */
void apid_writer_stop(struct apid_writer *w);

/* Takes over env and ev, decoded from it (the writer clears both; *env
 * is cleared here) and queues them; waits while the queue is full. src may
 * be NULL. 0, or -1 when the writer is stopping (both cleared anyway). */
int apid_writer_push(struct apid_writer *w, struct hive_envelope *env, struct apid_event *ev,
		     struct apid_source *src);

/* Tells the writer whom to tell about jobs done and what was stored
 * (parts started after the database was opened). Call before events flow. */
void apid_writer_attach(struct apid_writer *w, struct apid_sched *sched, struct apid_feed *feed);

/* Changes what a reload may change: batching and retention (from the next
 * history step on). */
void apid_writer_configure(struct apid_writer *w, const struct apid_writer_opts *o);

void apid_writer_get_stats(struct apid_writer *w, struct apid_writer_stats *out);
/* Current roster generation (cheap: read on every scheduler tick). */
uint64_t apid_writer_roster_gen(struct apid_writer *w);

/* The key the miners' secrets are sealed with (secrets.h), loaded and the
 * rows checked at start; valid until apid_writer_stop. */
struct apid_secrets *apid_writer_secrets(struct apid_writer *w);

/* A request: runs on the writer thread inside the open transaction, with
 * the statements of apply.h (a). 0, or -1 with *http_status and a message
 * in err (errlen bytes). Each runs in a savepoint: one that returns -1 is
 * rolled back to it and leaves nothing behind (writes, feed notes, roster
 * change). */
typedef int apid_writer_fn(struct apid_apply *a, void *arg, int *http_status, char *err,
			   size_t errlen);

/* Runs fn(arg) and blocks until its transaction is committed: the request
 * jumps ahead of queued events and makes the transaction commit at once.
 * 0, or -1 with fn's status and message, or 503 when apid is stopping or
 * the transaction was lost (rolled back, COMMIT failed). arg stays the
 * caller's. Never call it on the writer thread (a request, a hook). */
int apid_writer_run(struct apid_writer *w, apid_writer_fn *fn, void *arg, int *http_status,
		    char *err, size_t errlen);

/* What an API request waits for the writer at most (docs/api.md: 503
 * when the database is busy beyond 2 s). */
#define APID_WRITER_API_WAIT_MS 2000

/* apid_writer_run with a deadline wait_ms from now (0: none): a request
 * the writer has not begun by then is dropped unrun, and one it runs
 * waits for a lock held by another connection only until then (its
 * writes undone); both answer 503 "database busy ... nothing was
 * changed". */
int apid_writer_run_within(struct apid_writer *w, apid_writer_fn *fn, void *arg, int wait_ms,
			   int *http_status, char *err, size_t errlen);
/* Queues fn(arg) ahead of the events and returns: it is committed with the
 * next batch (it does not close it early). free_arg (may be NULL) is called
 * on arg after the transaction ended, or here when refused; a failure
 * (fn's -1 or a lost transaction) is logged with fn's status and message.
 * Not bounded: for occasional requests, not a stream. May be called on the
 * writer thread. 0, or -1 when apid is stopping. */
int apid_writer_post(struct apid_writer *w, apid_writer_fn *fn, void *arg,
		     void (*free_arg)(void *arg));

/* Hooks for a controller that acts on what the writer stores, all on the
 * writer thread. None by default; set or cleared (NULL) at any time, they
 * take effect from the next transaction (closing: at once).
 * - event: after each applied event (not a rejected one), inside the same
 *   transaction, with the decoded event (valid for the call only), when it
 *   was taken (apid_apply_event_ts) and the apply struct, so it can write
 *   in that transaction (apply.h, apid_apply_db). It must not block nor call
 *   apid_writer_run; it logs its own failures (one that loses the
 *   transaction loses the batch, as any database error).
 * - ended: after each transaction, committed or lost (requests' writes
 *   included), so what was written in it can go live or be forgotten.
 * - closing: before the writer closes its connection at stop.
 * Setting or removing them takes effect from the next event the writer
 * takes from its queue, even inside a transaction that already began. */
struct apid_writer_hooks {
	void (*event)(void *arg, struct apid_apply *a, const struct apid_event *ev,
		      long long ts_ms);
	void (*ended)(void *arg, bool committed);
	void (*closing)(void *arg);
	void *arg;
};
void apid_writer_set_hooks(struct apid_writer *w, const struct apid_writer_hooks *h);

/* PATCHes (apply.h's requests through apid_writer_run), blocking until
 * committed or refused (the apid.h contract): -1 with *http_status (404,
 * 422, 503) and a message. */
int apid_writer_patch_miner(struct apid_writer *w, const char *mac, int managed,
			    const char *unlock_pass, const char *actor, int *http_status,
			    char *err, size_t errlen);
int apid_writer_patch_model(struct apid_writer *w, const char *alias, const char *max_preset,
			    const char *actor, int *http_status, char *err, size_t errlen);

#endif
