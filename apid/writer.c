/* writer — see writer.h. What each event and request does to the tables
 * is apply.c's; this file is the queue and the transactions around it.
 *
 * One thread, one connection. The loop:
 *   wait for work → open a transaction → run requests first, then apply
 *   events, until batch_max events or batch_ms since the batch began (or
 *   at once when a caller waits for a request) → COMMIT → count, tell the
 *   feed and the scheduler what changed → one retention step → again.
 * An event that fails to decode or names an unknown miner is rejected and
 * counted; it changes nothing. A request runs inside a savepoint, so one
 * that fails leaves nothing behind. Should SQLite roll the whole
 * transaction back (disk full, I/O error), every event of the batch is
 * counted as rejected with "database error", its requests fail with 503,
 * and the batch starts over.
 */
#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "event.h"
#include "retention.h"
#include "rollup.h"
#include "secrets.h"
#include "feed.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "store.h"
#include "traffic.h"

#define QUEUE_DEFAULT     16384
#define PRUNE_EVERY_DEFAULT 10000
#define HISTORY_BUSY_MS   1000     /* a history step at most this often under a backlog */

/* The writer's own statements: the transaction. */
enum stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT request",
	[ST_RELEASE] = "RELEASE request",
	[ST_ROLLBACK_TO] = "ROLLBACK TO request",
};

struct qitem {
	struct hive_envelope env;
	struct apid_event ev;    /* decoded from env by the receive thread */
	struct apid_source *src;
	bool ok;
};

/* A function to run on the writer thread, allocated here. One a caller
 * waits for (apid_writer_run) is held by the caller and the writer (refs,
 * under mu): a caller that gave up at its deadline before the writer
 * started it leaves it cancelled, and the writer drops it unrun. */
struct request {
	apid_writer_fn *fn;
	void *arg;
	void (*free_arg)(void *arg);
	bool wait;               /* apid_writer_run: a caller waits for done */
	bool done;
	bool started;            /* the writer took it to run (under mu) */
	bool cancelled;          /* its caller gave up before that (under mu) */
	int refs;                /* wait: the caller's and the writer's */
	int64_t deadline;        /* monotonic ms; 0: none */
	int rc, http_status;
	char err[256];
	struct request *next;
};

struct apid_writer {
	struct apid_writer_opts o;   /* guarded by mu after start */
	char db_path[4096];
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct apid_apply *apply;    /* the SQL of the tables (apply.h) */
	struct apid_rollup *rollup;  /* the long history (rollup.h) */
	struct apid_retention *retention; /* what is kept (retention.h) */
	struct apid_secrets *secrets; /* the miners' keys sealed (secrets.h) */

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full, request_done;
	struct qitem *q;
	size_t qcap, qhead, qlen;
	struct request *requests, *requests_tail;
	struct apid_writer_hooks hooks;
	bool stopping;
	struct apid_writer_hooks batch_hooks;  /* writer thread: this transaction's */
	struct apid_writer_stats stats;
	atomic_uint_least64_t roster_gen;
	/* The busy handler's (writer thread): a statement waits for a lock
	 * held elsewhere until busy_since + APID_STORE_BUSY_MS, or until
	 * busy_until (a waiting request's deadline) when that is sooner. */
	int64_t busy_since, busy_until;
	bool busy_gave_up;       /* the busy handler gave up since cleared */

	/* writer thread only */
	struct qitem *batch;
	size_t nbatch, batch_cap;
	struct request *applied;     /* requests in the open transaction */
	int64_t next_prune_ms;       /* the next history step (roll-ups, retention) */
	bool rollup_more, retention_more;
};

/* ------------------------------------------------------------ helpers */

static int run(struct apid_writer *w, enum stmt s)
{
	return apid_apply_step(w->st[s]);
}

static int sql_failed(struct apid_writer *w, enum stmt s, int rc)
{
	return apid_apply_failed(w->st[s], rc);
}

/* A write the database refused (a statement, BEGIN, COMMIT, a lost
 * transaction): when, and why, for health (writer.h). */
static void db_failed(struct apid_writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->stats.db_failures++;
	w->stats.db_failed_ms = hive_mono_ms();
	snprintf(w->stats.db_error, sizeof(w->stats.db_error), "%s", sqlite3_errmsg(w->db));
	pthread_mutex_unlock(&w->mu);
}

/* SQLite's busy handler of the writer's connection: sqlite3_busy_timeout's
 * wait, cut short at busy_until while a request whose caller waits with a
 * deadline runs. */
static int writer_busy(void *arg, int count)
{
	struct apid_writer *w = arg;
	int64_t now = hive_mono_ms(), limit;
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	if (count == 0)
		w->busy_since = now;
	limit = w->busy_since + APID_STORE_BUSY_MS;
	if (w->busy_until && w->busy_until < limit)
		limit = w->busy_until;
	if (now >= limit) {
		w->busy_gave_up = true;
		return 0;
	}
	if (limit - now < 10)
		ts.tv_nsec = (long)(limit - now) * 1000 * 1000;
	nanosleep(&ts, NULL);
	return 1;
}

/* ------------------------------------------------------------ requests */

/* Drops one reference to r (under mu); the last frees it. */
static void request_release(struct request *r)
{
	if (--r->refs <= 0)
		free(r);
}

static void request_fail(struct request *r, int status, const char *msg)
{
	r->rc = -1;
	r->http_status = status;
	snprintf(r->err, sizeof(r->err), "%s", msg);
}

/* Frees posted requests (a list through next), logging those that failed. */
static void posted_free(struct request *r)
{
	struct request *next;

	for (; r; r = next) {
		next = r->next;
		if (r->rc < 0)
			log_warnx("writer request failed status=%d err=\"%s\"", r->http_status,
				  r->err);
		if (r->free_arg)
			r->free_arg(r->arg);
		free(r);
	}
}

/* Runs r inside a savepoint of the open transaction: a request that fails
 * is undone, writes and notes alike. */
static void request_run(struct apid_writer *w, struct request *r)
{
	struct apid_changes *ch = apid_apply_changes(w->apply);
	size_t n_notes = ch->n_notes;
	bool roster = ch->roster;
	int rc, ec;

	if ((rc = run(w, ST_SAVEPOINT)) != SQLITE_DONE) {
		sql_failed(w, ST_SAVEPOINT, rc);
		request_fail(r, 503, "database error");
		return;
	}
	request_fail(r, 503, "request failed");   /* unless fn says otherwise */
	w->busy_until = r->deadline;
	w->busy_gave_up = false;
	r->rc = r->fn(w->apply, r->arg, &r->http_status, r->err, sizeof(r->err)) < 0 ? -1 : 0;
	w->busy_until = 0;
	ec = sqlite3_errcode(w->db) & 0xff;
	/* Inside a transaction that already read, SQLite refuses a write at
	 * once when another connection holds the lock (no busy wait). */
	if (r->rc < 0 && (w->busy_gave_up || ec == SQLITE_BUSY || ec == SQLITE_LOCKED)) {
		/* Another connection holds the write lock (docs/api.md: 503
		 * beyond 2 s); what fn did is undone below. */
		r->http_status = 503;
		if (w->busy_gave_up)
			snprintf(r->err, sizeof(r->err), "database busy: another connection has held "
				 "the write lock for %lld ms; nothing was changed, try again",
				 (long long)(hive_mono_ms() - w->busy_since));
		else
			snprintf(r->err, sizeof(r->err), "database busy: another connection holds the "
				 "write lock; nothing was changed, try again");
		db_failed(w);
	} else if (r->rc < 0 && (ec == SQLITE_FULL || ec == SQLITE_IOERR || ec == SQLITE_READONLY ||
				 ec == SQLITE_CORRUPT || ec == SQLITE_CANTOPEN)) {
		db_failed(w);
	}
	if (sqlite3_get_autocommit(w->db))
		return;    /* the whole transaction is gone: batch_lost */
	if (r->rc < 0) {
		if ((rc = run(w, ST_ROLLBACK_TO)) != SQLITE_DONE)
			sql_failed(w, ST_ROLLBACK_TO, rc);
		ch->n_notes = n_notes;
		ch->roster = roster;
	}
	if ((rc = run(w, ST_RELEASE)) != SQLITE_DONE)
		sql_failed(w, ST_RELEASE, rc);
}

/* After COMMIT (or its failure): wakes the callers of the transaction's
 * requests, frees the posted ones. */
static void finish_requests(struct apid_writer *w, bool committed)
{
	struct request *r, *next, *posted = NULL;

	pthread_mutex_lock(&w->mu);
	for (r = w->applied; r; r = next) {
		next = r->next;
		if (!committed && r->rc == 0)
			request_fail(r, 503, "database error: not committed");
		if (r->rc == 0) {
			if (r->wait)
				w->stats.patches++;
			else
				w->stats.posted++;
		}
		if (r->wait) {
			r->done = true;   /* the caller reads its outcome */
			request_release(r);
		} else {
			r->next = posted;
			posted = r;
		}
	}
	w->applied = NULL;
	pthread_cond_broadcast(&w->request_done);
	pthread_mutex_unlock(&w->mu);
	posted_free(posted);
}

/* ------------------------------------------------------------ batches */

/* The open transaction was rolled back under us: nothing of the batch so
 * far is stored. Counts it and starts a new transaction. */
static void batch_lost(struct apid_writer *w, size_t upto)
{
	struct apid_changes *ch = apid_apply_changes(w->apply);
	uint64_t n = 0;

	for (size_t i = 0; i < upto; i++) {
		if (!w->batch[i].ok)
			continue;
		w->batch[i].ok = false;
		if (w->o.traffic)
			apid_traffic_rejected(w->o.traffic, w->batch[i].src, APID_REJ_DATABASE);
		n++;
	}
	for (struct request *r = w->applied; r; r = r->next)
		if (r->rc == 0)
			request_fail(r, 503, "database error: rolled back");
	ch->n_notes = 0;
	ch->roster = false;
	if (w->batch_hooks.ended)
		w->batch_hooks.ended(w->batch_hooks.arg, false);
	pthread_mutex_lock(&w->mu);
	w->stats.rejected += n;
	w->stats.batches_lost++;
	pthread_mutex_unlock(&w->mu);
	db_failed(w);
	hive_log_complain("writer lost", "writer transaction rolled back events_lost=%llu "
			  "err=\"%s\"", (unsigned long long)n, sqlite3_errmsg(w->db));
	run(w, ST_BEGIN);
}

/* After COMMIT: counters, the feed, the roster generation. */
static void batch_done(struct apid_writer *w, bool committed, int64_t t0)
{
	struct apid_changes *ch = apid_apply_changes(w->apply);
	uint64_t stored = 0;
	long long last_seq = 0;
	const char *last_src = "-", *last_topic = "-";
	size_t i, run_start = 0;

	for (i = 0; i < w->nbatch; i++) {
		struct qitem *it = &w->batch[i];

		if (it->ok && !committed) {
			it->ok = false;
			if (w->o.traffic)
				apid_traffic_rejected(w->o.traffic, it->src, APID_REJ_DATABASE);
		}
		if (it->ok)
			stored++;
		last_seq = (long long)it->env.seq;
		last_src = it->env.src;
		last_topic = it->env.topic;
	}
	/* Counted per run of one source: one lock per run, not per event. */
	if (w->o.traffic && committed) {
		uint64_t n = 0;

		for (i = 0; i <= w->nbatch; i++) {
			if (i == w->nbatch || w->batch[i].src != w->batch[run_start].src) {
				if (n)
					apid_traffic_stored(w->o.traffic, w->batch[run_start].src, n);
				run_start = i;
				n = 0;
			}
			if (i < w->nbatch && w->batch[i].ok)
				n++;
		}
	}
	if (committed && w->o.feed) {
		for (i = 0; i < ch->n_notes; i++) {
			struct apid_note *n = &ch->notes[i];

			if (n->kind == APID_NOTE_MINER) {
				apid_feed_miner(w->o.feed, n->key);
			} else if (n->kind == APID_NOTE_MODEL) {
				apid_feed_model(w->o.feed, n->key);
			} else {
				struct qitem *it = &w->batch[n->item];

				apid_feed_status(w->o.feed, n->key, n->row_id,
						 apid_apply_event_ts(&it->env), it->env.body);
				it->env.body = NULL;
			}
		}
	}
	if (committed && ch->roster)
		atomic_fetch_add(&w->roster_gen, 1);
	pthread_mutex_lock(&w->mu);
	if (committed) {
		w->stats.stored += stored;
		w->stats.batches++;
		if (w->nbatch > w->stats.max_batch)
			w->stats.max_batch = w->nbatch;
		if (w->nbatch)
			w->stats.last_seq = last_seq;
	} else {
		w->stats.commit_failures++;
		w->stats.rejected += stored;
	}
	pthread_mutex_unlock(&w->mu);
	if (committed && w->nbatch)
		log_debug("batch committed events=%zu stored=%llu last_src=%s last_topic=%s"
			  " last_seq=%lld ms=%lld", w->nbatch, (unsigned long long)stored, last_src,
			  last_topic, last_seq, (long long)(hive_mono_ms() - t0));
	for (i = 0; i < w->nbatch; i++) {
		apid_event_clear(&w->batch[i].ev);
		hive_envelope_clear(&w->batch[i].env);
	}
	w->nbatch = 0;
	ch->n_notes = 0;
	ch->roster = false;
	if (w->batch_hooks.ended)
		w->batch_hooks.ended(w->batch_hooks.arg, committed);
	finish_requests(w, committed);
}

/* Whether a caller waits for one of the requests of list rs. */
static bool waited_for(const struct request *rs)
{
	for (; rs; rs = rs->next)
		if (rs->wait)
			return true;
	return false;
}

/* The requests of list rs to run, marked started; those whose caller gave
 * up are dropped unrun. Under mu. */
static struct request *take_requests(struct request *rs)
{
	struct request *keep = NULL, **tail = &keep, *next;

	for (; rs; rs = next) {
		next = rs->next;
		if (rs->cancelled) {
			request_release(rs);
			continue;
		}
		rs->started = true;
		rs->next = NULL;
		*tail = rs;
		tail = &rs->next;
	}
	return keep;
}

/* One transaction: requests first, then events until batch_max or
 * batch_ms (or at once when a caller waits for a request: such requests
 * get a transaction of their own). */
static void run_batch(struct apid_writer *w)
{
	int64_t t0 = hive_mono_ms(), deadline;
	struct apid_writer_hooks hooks;
	int batch_max, rc;
	bool force = false;
	int64_t changes = sqlite3_total_changes64(w->db);

	pthread_mutex_lock(&w->mu);
	batch_max = w->o.batch_max;
	deadline = t0 + w->o.batch_ms;
	hooks = w->hooks;
	w->batch_hooks = hooks;
	apid_apply_attach(w->apply, w->o.sched, w->o.feed != NULL);
	pthread_mutex_unlock(&w->mu);
	if ((rc = run(w, ST_BEGIN)) != SQLITE_DONE) {
		sql_failed(w, ST_BEGIN, rc);
		db_failed(w);
		/* Leave the queue alone; try again shortly. */
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		return;
	}
	for (;;) {
		struct request *rs = NULL;
		size_t first = w->nbatch, n;

		pthread_mutex_lock(&w->mu);
		for (;;) {
			rs = w->requests;
			n = w->qlen;
			if ((size_t)batch_max - w->nbatch < n)
				n = (size_t)batch_max - w->nbatch;
			if (rs || n || force || w->stopping || w->nbatch >= (size_t)batch_max ||
			    hive_mono_ms() >= deadline)
				break;
			hive_cond_wait_until(&w->not_empty, &w->mu, deadline);
		}
		if (rs && waited_for(rs)) {
			/* A caller waits: its request gets a transaction of its
			 * own, committed at once, so what it waits for after
			 * it ran is one COMMIT, not the events of a batch. */
			if (w->nbatch > 0) {
				rs = NULL;    /* commit the events first */
				force = true;
			}
			n = 0;
		}
		if (rs) {
			w->requests = w->requests_tail = NULL;
			rs = take_requests(rs);
		}
		/* Hooks set or removed while this transaction waited for events
		 * apply from the next event taken, not from the next batch. */
		hooks = w->hooks;
		w->batch_hooks = hooks;
		for (size_t i = 0; i < n; i++) {
			w->batch[w->nbatch++] = w->q[w->qhead];
			w->qhead = (w->qhead + 1) % w->qcap;
		}
		w->qlen -= n;
		w->stats.events += n;
		if (n)
			pthread_cond_broadcast(&w->not_full);
		pthread_mutex_unlock(&w->mu);

		while (rs) {
			struct request *r = rs;

			rs = r->next;
			request_run(w, r);
			r->next = w->applied;
			w->applied = r;
			if (sqlite3_get_autocommit(w->db))
				batch_lost(w, w->nbatch);
			if (r->wait)
				force = true;   /* a caller waits: commit at once */
		}
		for (size_t i = first; i < w->nbatch; i++) {
			struct qitem *it = &w->batch[i];
			enum apid_reject why = APID_REJ_DATABASE;

			it->ok = apid_apply_event(w->apply, &it->env, &it->ev, i, &why) == 0;
			if (!it->ok && why == APID_REJ_DATABASE)
				db_failed(w);
			if (!it->ok) {
				if (w->o.traffic)
					apid_traffic_rejected(w->o.traffic, it->src, why);
				pthread_mutex_lock(&w->mu);
				w->stats.rejected++;
				pthread_mutex_unlock(&w->mu);
			} else if (hooks.event) {
				hooks.event(hooks.arg, w->apply, &it->ev,
					    apid_apply_event_ts(&it->env));
			}
			if (sqlite3_get_autocommit(w->db))
				batch_lost(w, i + 1);
		}
		if (force || w->nbatch >= (size_t)batch_max || hive_mono_ms() >= deadline ||
		    (w->stopping && n == 0))
			break;
	}
	/* A request-only transaction commits by its callers' deadline too. */
	for (struct request *r = w->applied; r; r = r->next)
		if (r->deadline && (!w->busy_until || r->deadline < w->busy_until))
			w->busy_until = r->deadline;
	rc = run(w, ST_COMMIT);
	w->busy_until = 0;
	if (rc != SQLITE_DONE) {
		sql_failed(w, ST_COMMIT, rc);
		db_failed(w);
		if (!sqlite3_get_autocommit(w->db))
			run(w, ST_ROLLBACK);
		/* A full disk fails every batch: once per complaint interval,
		 * with how many were suppressed. */
		hive_log_complain("writer commit", "batch not committed events=%zu err=\"%s\"",
				  w->nbatch, sqlite3_errmsg(w->db));
	} else if (sqlite3_total_changes64(w->db) != changes) {
		/* Only a batch that wrote: one whose every statement failed
		 * commits too, and must not end the complaint. */
		hive_log_recovered("writer commit", "batches committed again");
	}
	batch_done(w, rc == SQLITE_DONE, t0);
}

/* ------------------------------------------------------------ history */

static struct apid_retention_opts retention_opts(const struct apid_writer_opts *o)
{
	struct apid_retention_opts r = {
		.status_raw_hours = o->status_raw_hours, .telemetry_raw_hours = o->telemetry_raw_hours,
		.minute_days = o->minute_days, .status_days = o->status_days,
		.telemetry_days = o->telemetry_days, .audit_days = o->audit_days,
		.power_days = o->power_days, .max_bytes = o->max_bytes,
		.prune_batch = o->prune_batch,
		.reserve_pages = o->reserve_pages == 0 ? -1 : o->reserve_pages < 0 ? 0
							     : o->reserve_pages,
	};
	return r;
}

/* One step of the roll-ups and one of retention, each in transactions of
 * their own; while either has more to do the next step follows the next
 * batch, else the pause. */
static void history_step(struct apid_writer *w, int64_t now)
{
	struct apid_retention_opts ro;
	struct apid_retention_counts rc;
	struct apid_rollup_counts uc;
	int pause;
	bool more;

	pthread_mutex_lock(&w->mu);
	ro = retention_opts(&w->o);
	pause = w->o.prune_every_ms > 0 ? w->o.prune_every_ms : PRUNE_EVERY_DEFAULT;
	pthread_mutex_unlock(&w->mu);
	w->rollup_more = apid_rollup_step(w->rollup, hive_wall_ms()) > 0;
	w->retention_more = apid_retention_step(w->retention, &ro, hive_wall_ms()) > 0;
	more = w->rollup_more || w->retention_more;
	apid_rollup_counts(w->rollup, &uc);
	apid_retention_counts(w->retention, &rc);
	pthread_mutex_lock(&w->mu);
	memcpy(w->stats.pruned, rc.pruned, sizeof(w->stats.pruned));
	w->stats.pruned_statuses = rc.pruned[APID_RT_STATUSES];
	w->stats.pruned_telemetry = rc.pruned[APID_RT_TELEMETRY];
	w->stats.pruned_errors = rc.pruned[APID_RT_ERRORS];
	w->stats.pruned_audit = rc.pruned[APID_RT_AUDIT];
	w->stats.pruned_actions = rc.pruned[APID_RT_ACTIONS];
	w->stats.pruned_power = rc.pruned[APID_RT_POWER_READINGS] +
				rc.pruned[APID_RT_POWER_SAMPLES] + rc.pruned[APID_RT_POWER_DECISIONS];
	w->stats.pages_returned = rc.pages_returned;
	w->stats.rolled_statuses = uc.statuses;
	w->stats.rolled_fleet_minutes = uc.fleet_minutes;
	w->stats.rolled_telemetry_hours = uc.telemetry_hours;
	w->next_prune_ms = more ? now : now + pause;
	pthread_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------ thread */

static void *writer_main(void *arg)
{
	struct apid_writer *w = arg;

	int64_t last_history = 0;

	for (;;) {
		bool work, prune, busy;
		int64_t now;

		pthread_mutex_lock(&w->mu);
		for (;;) {
			now = hive_mono_ms();
			work = w->qlen > 0 || w->requests;
			prune = now >= w->next_prune_ms;
			if (work || prune || w->stopping)
				break;
			hive_cond_wait_until(&w->not_empty, &w->mu, w->next_prune_ms);
		}
		if (w->stopping && !work) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		/* Events waiting beyond a batch: ingest first, the history at
		 * most a step a second (its backlog is folded after the burst). */
		busy = w->qlen > (size_t)w->o.batch_max;
		pthread_mutex_unlock(&w->mu);
		if (work)
			run_batch(w);
		now = hive_mono_ms();
		if (prune && !w->stopping && (!busy || now - last_history >= HISTORY_BUSY_MS)) {
			history_step(w, now);
			last_history = now;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ API */

static void writer_free(struct apid_writer *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->hooks.closing)
		w->hooks.closing(w->hooks.arg);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	apid_apply_free(w->apply);
	apid_rollup_free(w->rollup);
	apid_retention_free(w->retention);
	if (w->db && sqlite3_close(w->db) != SQLITE_OK)
		log_warnx("database close failed err=\"%s\"", sqlite3_errmsg(w->db));
	apid_secrets_free(w->secrets);
	for (size_t i = 0; i < w->qlen; i++) {
		apid_event_clear(&w->q[(w->qhead + i) % w->qcap].ev);
		hive_envelope_clear(&w->q[(w->qhead + i) % w->qcap].env);
	}
	free(w->q);
	free(w->batch);
	pthread_cond_destroy(&w->not_empty);
	pthread_cond_destroy(&w->not_full);
	pthread_cond_destroy(&w->request_done);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

struct apid_writer *apid_writer_start(const struct apid_writer_opts *o, char *err,
				      size_t errlen)
{
	struct apid_writer *w = calloc(1, sizeof(*w));
	char key_path[4200];
	int rc;

	if (!w) {
		snprintf(err, errlen, "writer: out of memory");
		return NULL;
	}
	w->o = *o;
	snprintf(w->db_path, sizeof(w->db_path), "%s", o->db_path);
	w->o.db_path = w->db_path;
	if (w->o.batch_max < 1)
		w->o.batch_max = 1;
	if (w->o.batch_ms < 0)
		w->o.batch_ms = 0;
	w->qcap = o->queue_max ? o->queue_max : QUEUE_DEFAULT;
	w->batch_cap = (size_t)w->o.batch_max;
	pthread_mutex_init(&w->mu, NULL);
	hive_cond_init_mono(&w->not_empty);
	hive_cond_init_mono(&w->not_full);
	hive_cond_init_mono(&w->request_done);
	atomic_init(&w->roster_gen, 1);
	w->q = calloc(w->qcap, sizeof(*w->q));
	w->batch = calloc(w->batch_cap, sizeof(*w->batch));
	if (!w->q || !w->batch) {
		snprintf(err, errlen, "writer: out of memory");
		goto fail;
	}
	w->db = apid_store_open(w->db_path, err, errlen);
	if (!w->db)
		goto fail;
	sqlite3_busy_handler(w->db, writer_busy, w);
	apid_secrets_key_path(o->secrets_key_file, w->db_path, key_path, sizeof(key_path));
	w->o.secrets_key_file = NULL;    /* borrowed for the start only */
	if (!(w->secrets = apid_secrets_start(w->db, w->db_path, key_path, err, errlen)))
		goto fail;
	if (!(w->apply = apid_apply_new(w->db, w->o.traffic, err, errlen)) ||
	    !(w->rollup = apid_rollup_new(w->db, err, errlen)) ||
	    !(w->retention = apid_retention_new(w->db, err, errlen)) ||
	    apid_apply_prepare(w->db, stmt_sql, w->st, ST_COUNT, "writer", err, errlen) < 0)
		goto fail;
	apid_apply_set_guard(w->apply, w->o.guard);
	apid_apply_set_secrets(w->apply, w->secrets);
	/* The first retention pass: prune_first_ms after start. */
	w->next_prune_ms = hive_mono_ms() + (w->o.prune_first_ms > 0 ? w->o.prune_first_ms
					    : w->o.prune_every_ms > 0 ? w->o.prune_every_ms
					    : PRUNE_EVERY_DEFAULT);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc != 0) {
		snprintf(err, errlen, "writer thread: %s", strerror(rc));
		goto fail;
	}
	return w;
fail:
	writer_free(w);
	return NULL;
}

void apid_writer_stop(struct apid_writer *w)
{
	struct request *r, *next, *posted = NULL;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->not_empty);
	pthread_cond_broadcast(&w->not_full);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	/* Requests that came after the last batch. */
	pthread_mutex_lock(&w->mu);
	for (r = w->requests; r; r = next) {
		next = r->next;
		request_fail(r, 503, "apid is stopping");
		if (r->wait) {
			r->done = true;
			request_release(r);
		} else {
			r->next = posted;
			posted = r;
		}
	}
	w->requests = w->requests_tail = NULL;
	pthread_cond_broadcast(&w->request_done);
	pthread_mutex_unlock(&w->mu);
	posted_free(posted);
	log_info("writer stopped batches=%llu stored=%llu rejected=%llu",
		 (unsigned long long)w->stats.batches, (unsigned long long)w->stats.stored,
		 (unsigned long long)w->stats.rejected);
	writer_free(w);
}

int apid_writer_push(struct apid_writer *w, struct hive_envelope *env, struct apid_event *ev,
		     struct apid_source *src)
{
	struct qitem *it;

	pthread_mutex_lock(&w->mu);
	while (w->qlen == w->qcap && !w->stopping)
		pthread_cond_wait(&w->not_full, &w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		apid_event_clear(ev);
		hive_envelope_clear(env);
		return -1;
	}
	it = &w->q[(w->qhead + w->qlen) % w->qcap];
	it->env = *env;
	it->ev = *ev;
	it->src = src;
	w->qlen++;
	pthread_cond_signal(&w->not_empty);
	pthread_mutex_unlock(&w->mu);
	memset(env, 0, sizeof(*env));
	return 0;
}

void apid_writer_attach(struct apid_writer *w, struct apid_sched *sched, struct apid_feed *feed)
{
	pthread_mutex_lock(&w->mu);
	w->o.sched = sched;
	w->o.feed = feed;
	pthread_mutex_unlock(&w->mu);
}

void apid_writer_set_hooks(struct apid_writer *w, const struct apid_writer_hooks *h)
{
	pthread_mutex_lock(&w->mu);
	if (h)
		w->hooks = *h;
	else
		memset(&w->hooks, 0, sizeof(w->hooks));
	pthread_mutex_unlock(&w->mu);
}

void apid_writer_configure(struct apid_writer *w, const struct apid_writer_opts *o)
{
	pthread_mutex_lock(&w->mu);
	/* The batch array was sized at start: batch_max may only shrink. */
	w->o.batch_max = o->batch_max < 1 ? 1
			 : (size_t)o->batch_max > w->batch_cap ? (int)w->batch_cap
							       : o->batch_max;
	w->o.batch_ms = o->batch_ms < 0 ? 0 : o->batch_ms;
	w->o.status_raw_hours = o->status_raw_hours;
	w->o.telemetry_raw_hours = o->telemetry_raw_hours;
	w->o.minute_days = o->minute_days;
	w->o.status_days = o->status_days;
	w->o.telemetry_days = o->telemetry_days;
	w->o.audit_days = o->audit_days;
	w->o.power_days = o->power_days;
	w->o.max_bytes = o->max_bytes;
	w->o.reserve_pages = o->reserve_pages;
	w->o.prune_batch = o->prune_batch;
	w->o.prune_every_ms = o->prune_every_ms;
	w->next_prune_ms = 0;
	pthread_cond_broadcast(&w->not_empty);
	pthread_mutex_unlock(&w->mu);
}

void apid_writer_get_stats(struct apid_writer *w, struct apid_writer_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	out->depth = w->qlen;
	out->queue_max = w->qcap;
	pthread_mutex_unlock(&w->mu);
	out->roster_gen = atomic_load(&w->roster_gen);
}

struct apid_secrets *apid_writer_secrets(struct apid_writer *w)
{
	return w->secrets;
}

uint64_t apid_writer_roster_gen(struct apid_writer *w)
{
	return atomic_load(&w->roster_gen);
}

/* Queues r ahead of the events; call with mu held. */
static void request_queue(struct apid_writer *w, struct request *r)
{
	r->next = NULL;
	if (w->requests_tail)
		w->requests_tail->next = r;
	else
		w->requests = r;
	w->requests_tail = r;
	pthread_cond_signal(&w->not_empty);
}

int apid_writer_run_within(struct apid_writer *w, apid_writer_fn *fn, void *arg, int wait_ms,
			   int *http_status, char *err, size_t errlen)
{
	struct request *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		*http_status = 503;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->fn = fn;
	r->arg = arg;
	r->wait = true;
	r->refs = 2;
	r->deadline = wait_ms > 0 ? hive_mono_ms() + wait_ms : 0;
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		free(r);
		*http_status = 503;
		snprintf(err, errlen, "apid is stopping");
		return -1;
	}
	request_queue(w, r);
	while (!r->done) {
		if (!r->deadline || r->started) {
			/* Once started, the busy handler ends it by the deadline. */
			pthread_cond_wait(&w->request_done, &w->mu);
			continue;
		}
		if (hive_cond_wait_until(&w->request_done, &w->mu, r->deadline) == 0 ||
		    r->started || r->done)
			continue;
		/* The writer is still busy with what came before (a batch
		 * waiting for a lock held elsewhere): give up, unrun. */
		r->cancelled = true;
		request_fail(r, 503, "");
		snprintf(r->err, sizeof(r->err), "database busy: the write waited %d ms for its "
			 "turn and was not made; nothing was changed, try again", wait_ms);
		break;
	}
	rc = r->rc;
	*http_status = r->http_status;
	snprintf(err, errlen, "%s", r->err);
	request_release(r);
	pthread_mutex_unlock(&w->mu);
	return rc < 0 ? -1 : 0;
}

int apid_writer_run(struct apid_writer *w, apid_writer_fn *fn, void *arg, int *http_status,
		    char *err, size_t errlen)
{
	return apid_writer_run_within(w, fn, arg, 0, http_status, err, errlen);
}

int apid_writer_post(struct apid_writer *w, apid_writer_fn *fn, void *arg,
		     void (*free_arg)(void *arg))
{
	struct request *r = calloc(1, sizeof(*r));

	if (r) {
		r->fn = fn;
		r->arg = arg;
		r->free_arg = free_arg;
		pthread_mutex_lock(&w->mu);
		if (!w->stopping) {
			request_queue(w, r);
			pthread_mutex_unlock(&w->mu);
			return 0;
		}
		pthread_mutex_unlock(&w->mu);
		free(r);
	}
	if (free_arg)
		free_arg(arg);
	return -1;
}

/* ------------------------------------------------------------ PATCHes */

int apid_writer_patch_miner(struct apid_writer *w, const char *mac, int managed,
			    const char *unlock_pass, const char *actor, int *http_status,
			    char *err, size_t errlen)
{
	struct apid_patch_miner p;

	if (apid_apply_patch_miner_init(&p, mac, managed, unlock_pass, actor, http_status, err,
					errlen) < 0 ||
	    apid_writer_run_within(w, apid_apply_patch_miner, &p, APID_WRITER_API_WAIT_MS,
				   http_status, err, errlen) < 0)
		return -1;
	log_info("miner patched target=%s actor=%s", p.mac, actor && *actor ? actor : "api");
	return 0;
}

int apid_writer_patch_model(struct apid_writer *w, const char *alias, const char *max_preset,
			    const char *actor, int *http_status, char *err, size_t errlen)
{
	struct apid_patch_model p;

	if (apid_apply_patch_model_init(&p, alias, max_preset, actor, http_status, err,
					errlen) < 0 ||
	    apid_writer_run_within(w, apid_apply_patch_model, &p, APID_WRITER_API_WAIT_MS,
				   http_status, err, errlen) < 0)
		return -1;
	log_info("model patched target=%s actor=%s", p.alias, actor && *actor ? actor : "api");
	return 0;
}
