/* actions — see actions.h.
 *
 * Open actions live in a hash of miners, each with its actions oldest
 * first; the oldest is the one in play, the others wait behind it. Every
 * change of state is written to the actions table: directly when it happens
 * on the writer thread, through opts.post when it happens on the main loop.
 * Posted updates may reach the table after a later direct one, so an
 * update never moves an action back (see ST_SET_STATE).
 */
#include "actions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "event.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "sched.h"
#include "writer.h"

#define BUCKETS        4096
#define MAX_SENDS      3           /* an idempotent action's job, at most */
#define HOUR_MS        (3600 * 1000LL)
#define TICK_IDLE_MS   100         /* a new action waits at most this to go out */
#define ENFORCER       "enforcer"

static const char *const kind_names[APID_ACT_KINDS] = {
	[APID_ACT_SET_PRESET] = "set_preset", [APID_ACT_RESTART] = "restart",
	[APID_ACT_PAUSE] = "pause", [APID_ACT_RESUME] = "resume", [APID_ACT_REBOOT] = "reboot",
};

static const char *const state_names[APID_AS_STATES] = {
	[APID_AS_QUEUED] = "queued", [APID_AS_SENT] = "sent",
	[APID_AS_CONFIRMING] = "confirming", [APID_AS_DONE] = "done",
	[APID_AS_FAILED] = "failed", [APID_AS_EXPIRED] = "expired",
	[APID_AS_SUPERSEDED] = "superseded",
};

const char *apid_action_kind_name(enum apid_action_kind k)
{
	return (unsigned)k < APID_ACT_KINDS ? kind_names[k] : "?";
}

const char *apid_action_state_name(enum apid_action_state s)
{
	return (unsigned)s < APID_AS_STATES ? state_names[s] : "?";
}

int apid_action_kind_parse(const char *name)
{
	for (int k = 0; name && k < APID_ACT_KINDS; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return -1;
}

int apid_action_state_parse(const char *name)
{
	for (int s = 0; name && s < APID_AS_STATES; s++)
		if (strcmp(state_names[s], name) == 0)
			return s;
	return -1;
}

/* Sending it twice does no harm: the same preset, paused, resumed. */
static bool idempotent(enum apid_action_kind k)
{
	return k == APID_ACT_SET_PRESET || k == APID_ACT_PAUSE || k == APID_ACT_RESUME;
}

/* ---------------------------------------------------------------- memory */

struct act {
	long long id;
	enum apid_action_kind kind;
	enum apid_action_state state;
	char preset[64];
	int64_t expires;            /* monotonic: created + action timeout */
	int64_t sent_wall;          /* wall clock of the last send, 0 = never */
	int64_t job_deadline;       /* monotonic: the job out must have answered by */
	long long job;              /* control job out, 0 = none */
	int sends;
	bool answered;              /* the firmware accepted it (hive.action.result) */
	bool uncommitted;           /* created in the writer's open transaction */
	bool marked;                /* its next send is already recorded as sent */
	unsigned long call;         /* the apid_actions_create call that made it */
	struct act *next;           /* the miner's next (newer) action */
};

struct mq {
	char mac[HIVE_MAC_LEN];
	struct act *head;           /* oldest open action */
	char err_kind[64];          /* the last hive.miner.error op=control */
	char err_msg[256];
	struct mq *next;            /* hash chain */
};

enum stmt {
	ST_INSERT, ST_AUDIT, ST_SET_STATE, ST_MINER, ST_CORRECTIONS, ST_TARGET, ST_CONFLICT,
	ST_MODEL_MINERS, ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_INSERT] =
		"INSERT INTO actions(mac, kind, preset, state, actor, reason, created_ms, updated_ms)"
		" VALUES(?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?6)",
	[ST_AUDIT] =
		"INSERT INTO audit(ts_ms, actor, action, target, detail) VALUES(?1, ?2, ?3, ?4, ?5)",
	/* Forward only: a posted update that arrives late never undoes a
	 * later one, and a final state stays. */
	[ST_SET_STATE] =
		"UPDATE actions SET state=?2, updated_ms=?3, sent_ms=coalesce(?4, sent_ms),"
		" sends=max(sends, ?5), error_kind=coalesce(?6, error_kind),"
		" error=coalesce(?7, error)"
		" WHERE id=?1 AND state NOT IN ('done', 'failed', 'expired', 'superseded')"
		" AND (CASE state WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 ELSE 2 END) <= ?8",
	[ST_MINER] =
		"SELECT m.managed, m.model, m.conflict, mo.max_preset, lim.watts, cur.watts"
		" FROM miners m LEFT JOIN models mo ON mo.alias=m.model"
		" LEFT JOIN model_presets lim ON lim.model=m.model AND lim.name=mo.max_preset"
		" LEFT JOIN model_presets cur ON cur.model=m.model AND cur.name=?2"
		" WHERE m.mac=?1",
	[ST_CORRECTIONS] =
		"SELECT count(*) FROM actions"
		" WHERE mac=?1 AND actor='" ENFORCER "' AND created_ms>?2",
	[ST_TARGET] =
		"SELECT name, watts FROM model_presets WHERE model=?1 AND watts IS NOT NULL"
		" AND watts<=?2 ORDER BY watts DESC, ord DESC LIMIT 1",
	[ST_CONFLICT] = "UPDATE miners SET conflict=?2, conflict_ms=?3 WHERE mac=?1",
	[ST_MODEL_MINERS] =
		"SELECT m.mac, s.preset FROM miners m LEFT JOIN statuses s ON s.id=m.last_status_id"
		" WHERE m.model=?1 AND m.managed=1 AND m.online=1",
};

/* Actions to record as sent before they go (tick). */
struct mark {
	char mac[HIVE_MAC_LEN];
	long long id;
	int sends;
};

struct marks {
	struct apid_actions *a;
	struct mark *m;
	size_t n, cap;
	int64_t wall;
};

struct apid_actions {
	pthread_mutex_t mu;
	struct apid_actions_opts o;
	struct apid_sched *sched;
	struct apid_writer *writer;
	struct mq *buckets[BUCKETS];
	struct apid_actions_stats st;
	unsigned long calls;        /* apid_actions_create calls so far */
	struct marks *pending;      /* main loop, with mu: the tick's actions to record as sent */
	/* writer thread only */
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
};

static unsigned hash_mac(const char *mac)
{
	unsigned h = 2166136261u;

	while (*mac)
		h = (h ^ (unsigned char)*mac++) * 16777619u;
	return h % BUCKETS;
}

/* With mu held. */
static struct mq *mq_find(struct apid_actions *a, const char *mac, bool create)
{
	unsigned b = hash_mac(mac);
	struct mq *q;

	for (q = a->buckets[b]; q; q = q->next)
		if (strcmp(q->mac, mac) == 0)
			return q;
	if (!create || !(q = calloc(1, sizeof(*q))))
		return NULL;
	snprintf(q->mac, sizeof(q->mac), "%s", mac);
	q->next = a->buckets[b];
	a->buckets[b] = q;
	return q;
}

static void mq_append(struct mq *q, struct act *x)
{
	struct act **p = &q->head;

	while (*p)
		p = &(*p)->next;
	*p = x;
}

static struct act *mq_by_id(struct mq *q, long long id)
{
	for (struct act *x = q ? q->head : NULL; x; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

static void unlink_act(struct mq *q, struct act *x)
{
	for (struct act **p = &q->head; *p; p = &(*p)->next) {
		if (*p == x) {
			*p = x->next;
			break;
		}
	}
}

/* Unlinks a final action from its miner, counts and frees it. With mu held. */
static void retire(struct apid_actions *a, struct mq *q, struct act *x)
{
	unlink_act(q, x);
	switch (x->state) {
	case APID_AS_DONE: a->st.done++; break;
	case APID_AS_FAILED: a->st.failed++; break;
	case APID_AS_EXPIRED: a->st.expired++; break;
	case APID_AS_SUPERSEDED: a->st.superseded++; break;
	default: break;
	}
	free(x);
}

struct apid_actions *apid_actions_new(const struct apid_actions_opts *o, struct apid_sched *s,
				      struct apid_writer *w)
{
	struct apid_actions *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	pthread_mutex_init(&a->mu, NULL);
	a->o = *o;
	a->sched = s;
	a->writer = w;
	return a;
}

void apid_actions_close_db(struct apid_actions *a)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(a->stmt[i]);
		a->stmt[i] = NULL;
	}
	a->db = NULL;
}

void apid_actions_free(struct apid_actions *a)
{
	if (!a)
		return;
	apid_actions_close_db(a);
	for (int b = 0; b < BUCKETS; b++) {
		for (struct mq *q = a->buckets[b], *qn; q; q = qn) {
			qn = q->next;
			for (struct act *x = q->head, *xn; x; x = xn) {
				xn = x->next;
				free(x);
			}
			free(q);
		}
	}
	pthread_mutex_destroy(&a->mu);
	free(a);
}

void apid_actions_configure(struct apid_actions *a, const struct apid_actions_opts *o)
{
	pthread_mutex_lock(&a->mu);
	a->o.action_timeout_ms = o->action_timeout_ms;
	a->o.job_timeout_ms = o->job_timeout_ms;
	a->o.max_corrections_per_hour = o->max_corrections_per_hour;
	pthread_mutex_unlock(&a->mu);
}

/* ---------------------------------------------------------------- SQL */

/* Statement s on the writer's connection, prepared on first use. */
static sqlite3_stmt *stmt(struct apid_actions *a, sqlite3 *db, enum stmt s)
{
	if (a->db != db)
		apid_actions_close_db(a);
	a->db = db;
	if (!a->stmt[s] && sqlite3_prepare_v3(db, stmt_sql[s], -1, SQLITE_PREPARE_PERSISTENT,
					      &a->stmt[s], NULL) != SQLITE_OK) {
		hive_log_complain("actions sql", "actions sql prepare failed err=\"%s\"",
				  sqlite3_errmsg(db));
		return NULL;
	}
	return a->stmt[s];
}

static void done_with(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

/* One state change in the table. error_kind/error/sent may be NULL/0. */
static int write_state(struct apid_actions *a, sqlite3 *db, long long id,
		       enum apid_action_state s, int64_t sent_wall, int sends,
		       const char *error_kind, const char *error)
{
	sqlite3_stmt *st = stmt(a, db, ST_SET_STATE);
	int rc;

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, state_names[s], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, hive_wall_ms());
	if (sent_wall)
		sqlite3_bind_int64(st, 4, sent_wall);
	sqlite3_bind_int(st, 5, sends);
	bind_opt(st, 6, error_kind);
	bind_opt(st, 7, error);
	sqlite3_bind_int(st, 8, s == APID_AS_QUEUED ? 0 : s == APID_AS_SENT ? 1 : 2);
	rc = sqlite3_step(st);
	done_with(st);
	if (rc != SQLITE_DONE) {
		hive_log_complain("actions sql", "action state not written id=%lld err=\"%s\"", id,
				  sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int audit(struct apid_actions *a, sqlite3 *db, const char *actor, const char *mac,
		 json_t *detail)
{
	sqlite3_stmt *st = stmt(a, db, ST_AUDIT);
	char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	int rc;

	if (!st) {
		free(text);
		return -1;
	}
	sqlite3_bind_int64(st, 1, hive_wall_ms());
	sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, "miner.action", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, mac, -1, SQLITE_STATIC);
	if (text)
		sqlite3_bind_text(st, 5, text, -1, free);
	rc = sqlite3_step(st);
	done_with(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A state change decided on the main loop, for the writer to record. */
struct posted {
	struct apid_actions *a;
	long long id;
	enum apid_action_state state;
	int64_t sent_wall;
	int sends;
	char error_kind[64];
	char error[256];
};

static int posted_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		      size_t errlen)
{
	struct posted *p = arg;

	if (write_state(p->a, apid_apply_db(ap), p->id, p->state, p->sent_wall, p->sends,
			p->error_kind[0] ? p->error_kind : NULL,
			p->error[0] ? p->error : NULL) < 0) {
		*http_status = 503;
		snprintf(err, errlen, "action %lld: state not written", p->id);
		return -1;
	}
	return 0;
}

static void post_state(struct apid_actions *a, const struct act *x, const char *error_kind,
		       const char *error)
{
	struct posted *p = calloc(1, sizeof(*p));

	if (!p || !a->writer) {
		free(p);
		return;
	}
	p->a = a;
	p->id = x->id;
	p->state = x->state;
	p->sent_wall = x->sent_wall;
	p->sends = x->sends;
	snprintf(p->error_kind, sizeof(p->error_kind), "%s", error_kind ? error_kind : "");
	snprintf(p->error, sizeof(p->error), "%s", error ? error : "");
	if (apid_writer_post(a->writer, posted_run, p, free) < 0)
		log_warnx("action state not recorded id=%lld state=%s: apid is stopping", x->id,
			  state_names[x->state]);
}

static void log_state(const char *mac, const struct act *x, const char *why)
{
	if (x->state == APID_AS_FAILED || x->state == APID_AS_EXPIRED)
		log_warnx("action %s id=%lld mac=%s kind=%s%s%s why=\"%s\"", state_names[x->state],
			  x->id, mac, kind_names[x->kind], x->preset[0] ? " preset=" : "",
			  x->preset, why ? why : "");
	else
		log_info("action %s id=%lld mac=%s kind=%s%s%s", state_names[x->state], x->id, mac,
			 kind_names[x->kind], x->preset[0] ? " preset=" : "", x->preset);
}

/* ---------------------------------------------------------------- load */

int apid_actions_load(struct apid_actions *a, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int64_t now = hive_mono_ms(), wall = hive_wall_ms();
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT id, mac, kind, coalesce(preset, ''), state, created_ms,"
				   " coalesce(sent_ms, 0), sends FROM actions WHERE state IN"
				   " ('queued', 'sent', 'confirming') ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "actions: %s", sqlite3_errmsg(db));
		return -1;
	}
	pthread_mutex_lock(&a->mu);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int kind = apid_action_kind_parse((const char *)sqlite3_column_text(st, 2));
		int state = apid_action_state_parse((const char *)sqlite3_column_text(st, 4));
		struct mq *q = mq_find(a, (const char *)sqlite3_column_text(st, 1), true);
		struct act *x = calloc(1, sizeof(*x));

		if (kind < 0 || state < 0 || !q || !x) {
			free(x);
			continue;
		}
		x->id = sqlite3_column_int64(st, 0);
		x->kind = kind;
		/* A job that was out when apid stopped has an unknown fate. */
		x->state = state == APID_AS_SENT ? APID_AS_CONFIRMING : state;
		snprintf(x->preset, sizeof(x->preset), "%s", sqlite3_column_text(st, 3));
		x->expires = now + a->o.action_timeout_ms -
			     (wall - sqlite3_column_int64(st, 5));
		x->sent_wall = sqlite3_column_int64(st, 6);
		x->sends = sqlite3_column_int(st, 7);
		mq_append(q, x);
		a->st.open++;
	}
	pthread_mutex_unlock(&a->mu);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "actions: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- create */

/* An older action of the miner gives way to x. With mu held. */
static void supersede_older(struct apid_actions *a, sqlite3 *db, struct mq *q, struct act *x)
{
	char why[64];

	snprintf(why, sizeof(why), "superseded by action %lld", x->id);
	for (struct act *o = q->head, *on; o && o != x; o = on) {
		on = o->next;
		/* A job out keeps its place: the new action follows it. */
		if (o->state == APID_AS_SENT)
			continue;
		o->state = APID_AS_SUPERSEDED;
		write_state(a, db, o->id, o->state, 0, o->sends, "superseded", why);
		log_state(q->mac, o, why);
		retire(a, q, o);
	}
}

int apid_actions_create(struct apid_actions *a, sqlite3 *db,
			const struct apid_action_request *req, size_t n, long long *ids)
{
	int64_t wall = hive_wall_ms(), now = hive_mono_ms();
	unsigned long call;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	call = ++a->calls;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct apid_action_request *r = &req[i];
		sqlite3_stmt *st = stmt(a, db, ST_INSERT);
		struct act *x = calloc(1, sizeof(*x));
		struct mq *q = mq_find(a, r->mac, true);
		json_t *detail;

		if (!st || !x || !q) {
			free(x);
			rc = -1;
			break;
		}
		sqlite3_bind_text(st, 1, r->mac, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, kind_names[r->kind], -1, SQLITE_STATIC);
		bind_opt(st, 3, r->kind == APID_ACT_SET_PRESET ? r->preset : NULL);
		sqlite3_bind_text(st, 4, r->actor && *r->actor ? r->actor : "api", -1,
				  SQLITE_STATIC);
		bind_opt(st, 5, r->reason);
		sqlite3_bind_int64(st, 6, wall);
		if (sqlite3_step(st) != SQLITE_DONE) {
			hive_log_complain("actions sql", "action not recorded mac=%s err=\"%s\"",
					  r->mac, sqlite3_errmsg(db));
			done_with(st);
			free(x);
			rc = -1;
			break;
		}
		done_with(st);
		x->id = sqlite3_last_insert_rowid(db);
		x->kind = r->kind;
		x->state = APID_AS_QUEUED;
		if (r->kind == APID_ACT_SET_PRESET)
			snprintf(x->preset, sizeof(x->preset), "%s", r->preset);
		x->expires = now + a->o.action_timeout_ms;
		x->uncommitted = true;
		x->call = call;
		detail = json_pack("{s:I,s:s,s:s?,s:s?}", "id", (json_int_t)x->id, "action",
				   kind_names[r->kind], "preset",
				   r->kind == APID_ACT_SET_PRESET ? r->preset : NULL, "reason",
				   r->reason);
		if (audit(a, db, r->actor && *r->actor ? r->actor : "api", r->mac, detail) < 0)
			rc = -1;
		json_decref(detail);
		mq_append(q, x);
		supersede_older(a, db, q, x);
		a->st.created++;
		a->st.open++;
		if (strcmp(r->actor ? r->actor : "", ENFORCER) == 0)
			a->st.enforced++;
		if (ids)
			ids[i] = x->id;
		log_info("action queued id=%lld mac=%s kind=%s%s%s actor=%s", x->id, r->mac,
			 kind_names[x->kind], x->preset[0] ? " preset=" : "", x->preset,
			 r->actor && *r->actor ? r->actor : "api");
	}
	if (rc < 0) {
		/* The caller's request rolls back to its savepoint: forget
		 * what this call made. */
		for (size_t i = 0; i < n; i++) {
			struct mq *q = mq_find(a, req[i].mac, false);

			for (struct act *x = q ? q->head : NULL, *xn; x; x = xn) {
				xn = x->next;
				if (x->call == call) {
					unlink_act(q, x);
					free(x);
					a->st.created--;
				}
			}
		}
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void apid_actions_commit(struct apid_actions *a, bool committed)
{
	pthread_mutex_lock(&a->mu);
	for (int b = 0; b < BUCKETS; b++) {
		for (struct mq *q = a->buckets[b]; q; q = q->next) {
			for (struct act *x = q->head, *xn; x; x = xn) {
				xn = x->next;
				if (!x->uncommitted)
					continue;
				x->uncommitted = false;
				if (!committed) {
					/* Rolled back with the transaction: it never was. */
					a->st.created--;
					unlink_act(q, x);
					free(x);
				}
			}
		}
	}
	pthread_mutex_unlock(&a->mu);
}

/* ---------------------------------------------------------------- results */

/* x (of q) ends in state s; with mu held. */
static void finish(struct apid_actions *a, sqlite3 *db, struct mq *q, struct act *x,
		   enum apid_action_state s, const char *error_kind, const char *error)
{
	x->state = s;
	if (db)
		write_state(a, db, x->id, s, 0, x->sends, error_kind, error);
	else
		post_state(a, x, error_kind, error);
	log_state(q->mac, x, error);
	retire(a, q, x);
}

void apid_actions_on_result(struct apid_actions *a, sqlite3 *db,
			    const struct hive_msg_action_result *r)
{
	struct mq *q;
	struct act *x;

	pthread_mutex_lock(&a->mu);
	q = mq_find(a, r->head.mac, false);
	x = mq_by_id(q, r->action);
	if (x && x->state == APID_AS_SENT && x->job == r->head.job) {
		x->state = APID_AS_CONFIRMING;
		x->answered = true;
		x->job = 0;
		write_state(a, db, x->id, x->state, 0, x->sends, NULL, NULL);
		log_info("action confirming id=%lld mac=%s kind=%s restart_required=%d restarted=%d",
			 x->id, q->mac, kind_names[x->kind], r->restart_required, r->restarted);
		if (a->sched)
			apid_sched_poll_soon(a->sched, q->mac);
	}
	pthread_mutex_unlock(&a->mu);
}

void apid_actions_on_error(struct apid_actions *a, const struct hive_msg_miner_error *e)
{
	struct mq *q;

	if (!e->mac[0] || !e->op || strcmp(e->op, "control") != 0)
		return;
	pthread_mutex_lock(&a->mu);
	if ((q = mq_find(a, e->mac, false))) {
		snprintf(q->err_kind, sizeof(q->err_kind), "%s", e->kind ? e->kind : "");
		snprintf(q->err_msg, sizeof(q->err_msg), "%s", e->message ? e->message : "");
	}
	pthread_mutex_unlock(&a->mu);
}

void apid_actions_on_job_failed(struct apid_actions *a, sqlite3 *db,
				const struct hive_msg_job_failed *f)
{
	struct mq *q;
	struct act *x;

	pthread_mutex_lock(&a->mu);
	q = mq_find(a, f->mac, false);
	x = q ? q->head : NULL;
	if (x && x->state == APID_AS_SENT && x->job == f->job) {
		const char *kind = q->err_kind[0] ? q->err_kind : f->kind ? f->kind : "failed";

		finish(a, db, q, x, APID_AS_FAILED, kind, q->err_msg[0] ? q->err_msg : kind);
		q->err_kind[0] = q->err_msg[0] = '\0';
	}
	pthread_mutex_unlock(&a->mu);
}

/* Does st show what x asked for? ts_ms: when the status was taken. */
static bool effect_seen(const struct act *x, const struct hive_msg_status_result *st,
			int64_t ts_ms)
{
	const char *state = st->state ? st->state : "";
	bool began_after;

	switch (x->kind) {
	case APID_ACT_SET_PRESET:
		return st->preset && strcmp(st->preset, x->preset) == 0;
	case APID_ACT_PAUSE:
		return strcmp(state, "stopped") == 0 && st->state_description &&
		       strcmp(st->state_description, "paused") == 0;
	case APID_ACT_RESUME:
		return strcmp(state, "mining") == 0;
	case APID_ACT_RESTART:
	case APID_ACT_REBOOT:
		/* The miner's state began after the action went out. A state
		 * changes for other reasons too (a tune ends, a person sets a
		 * preset), so that is proof only once the firmware accepted
		 * the call; an unanswered one needs the states a restart or a
		 * boot passes through. Otherwise it expires: better than a
		 * "done" for a restart that never happened. */
		if (x->state != APID_AS_CONFIRMING || x->sent_wall <= 0 ||
		    st->state_time == HIVE_MSG_NO_INT)
			return false;
		began_after = ts_ms - st->state_time * 1000 >= x->sent_wall;
		if (x->answered)
			return began_after;
		return began_after && (strcmp(state, "restarting") == 0 ||
				       strcmp(state, "starting") == 0 ||
				       strcmp(state, "initializing") == 0);
	default:
		return false;
	}
}

/* ---------------------------------------------------------------- enforcer */

struct miner_limit {
	bool managed;
	char model[64];
	bool conflict;
	bool has_limit;
	char max_preset[64];
	long long limit_w;
	long long cur_w;            /* -1 unknown */
};

static int read_limit(struct apid_actions *a, sqlite3 *db, const char *mac, const char *preset,
		      struct miner_limit *m)
{
	sqlite3_stmt *st = stmt(a, db, ST_MINER);
	int rc;

	memset(m, 0, sizeof(*m));
	m->cur_w = -1;
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	bind_opt(st, 2, preset);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->managed = sqlite3_column_int(st, 0) != 0;
		snprintf(m->model, sizeof(m->model), "%s",
			 sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
		m->conflict = sqlite3_column_type(st, 2) != SQLITE_NULL;
		m->has_limit = sqlite3_column_type(st, 3) != SQLITE_NULL &&
			       sqlite3_column_type(st, 4) != SQLITE_NULL;
		if (m->has_limit) {
			snprintf(m->max_preset, sizeof(m->max_preset), "%s",
				 sqlite3_column_text(st, 3));
			m->limit_w = sqlite3_column_int64(st, 4);
		}
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			m->cur_w = sqlite3_column_int64(st, 5);
	}
	done_with(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static void set_conflict(struct apid_actions *a, sqlite3 *db, const char *mac, const char *why)
{
	sqlite3_stmt *st = stmt(a, db, ST_CONFLICT);

	if (!st)
		return;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	bind_opt(st, 2, why);
	if (why)
		sqlite3_bind_int64(st, 3, hive_wall_ms());
	sqlite3_step(st);
	done_with(st);
}

/* The enforcer's corrections of mac in the last hour. */
static long long corrections_last_hour(struct apid_actions *a, sqlite3 *db, const char *mac)
{
	sqlite3_stmt *st = stmt(a, db, ST_CORRECTIONS);
	long long n = 0;

	if (!st)
		return 0;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, hive_wall_ms() - HOUR_MS);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	done_with(st);
	return n;
}

/* Called with mu NOT held (it may create an action). switcher: the status's
 * switcher flag (-1 unknown). */
static void enforce(struct apid_actions *a, sqlite3 *db, const char *mac, const char *preset,
		    int switcher)
{
	struct miner_limit m;
	struct apid_action_request req;
	sqlite3_stmt *st;
	long long corrections = 0, target_w = 0;
	bool stock, busy;
	char why[256];
	int max;

	if (!preset || read_limit(a, db, mac, preset, &m) < 0 || !m.managed || !m.has_limit)
		return;
	stock = strcmp(preset, "disabled") == 0;
	if (!stock && m.cur_w < 0)
		return;     /* a preset the catalogue does not know: nothing to compare */
	if (!stock && m.cur_w <= m.limit_w) {
		/* Within the limit, and no correction for an hour: not a
		 * conflict any more. (Only a flagged miner costs the count:
		 * this runs on every status.) */
		if (m.conflict && corrections_last_hour(a, db, mac) == 0) {
			set_conflict(a, db, mac, NULL);
			log_info("miner conflict cleared mac=%s", mac);
		}
		return;
	}
	busy = apid_actions_busy(a, mac);
	pthread_mutex_lock(&a->mu);
	max = a->o.max_corrections_per_hour;
	pthread_mutex_unlock(&a->mu);
	if (busy)
		return;     /* an action is in play: its read-back comes first */
	corrections = corrections_last_hour(a, db, mac);
	if (corrections >= max) {
		if (!m.conflict) {
			if (switcher == 1)
				snprintf(why, sizeof(why), "preset_switcher.enabled: the firmware raised"
					 " its preset to %s above max_preset %s %lld times in an hour",
					 preset, m.max_preset, corrections);
			else
				snprintf(why, sizeof(why), "preset raised to %s above max_preset %s"
					 " outside PowerHive %lld times in an hour", preset,
					 m.max_preset, corrections);
			set_conflict(a, db, mac, why);
			pthread_mutex_lock(&a->mu);
			a->st.conflicts++;
			pthread_mutex_unlock(&a->mu);
			log_warnx("miner conflict mac=%s why=\"%s\"", mac, why);
		}
		return;
	}
	memset(&req, 0, sizeof(req));
	if ((st = stmt(a, db, ST_TARGET))) {
		sqlite3_bind_text(st, 1, m.model, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, m.limit_w);
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(req.preset, sizeof(req.preset), "%s", sqlite3_column_text(st, 0));
			target_w = sqlite3_column_int64(st, 1);
		}
		done_with(st);
	}
	if (!req.preset[0])
		return;
	snprintf(req.mac, sizeof(req.mac), "%s", mac);
	req.kind = APID_ACT_SET_PRESET;
	req.actor = ENFORCER;
	if (stock)
		snprintf(why, sizeof(why), "stock preset (disabled) above max_preset %s (%lld W)",
			 m.max_preset, m.limit_w);
	else
		snprintf(why, sizeof(why), "preset %s (%lld W) above max_preset %s (%lld W)",
			 preset, m.cur_w, m.max_preset, m.limit_w);
	req.reason = why;
	if (apid_actions_create(a, db, &req, 1, NULL) == 0)
		log_info("enforcer lowers mac=%s from=%s to=%s (%lld W)", mac, preset, req.preset,
			 target_w);
}

void apid_actions_on_status(struct apid_actions *a, sqlite3 *db,
			    const struct hive_msg_status_result *st, int64_t ts_ms)
{
	struct mq *q;
	struct act *x;

	pthread_mutex_lock(&a->mu);
	q = mq_find(a, st->head.mac, false);
	x = q ? q->head : NULL;
	if (x && (x->state == APID_AS_SENT || x->state == APID_AS_CONFIRMING) &&
	    effect_seen(x, st, ts_ms))
		finish(a, db, q, x, APID_AS_DONE, NULL, NULL);
	pthread_mutex_unlock(&a->mu);
	enforce(a, db, st->head.mac, st->preset, st->switcher.enabled);
}

void apid_actions_enforce_model(struct apid_actions *a, sqlite3 *db, const char *alias)
{
	sqlite3_stmt *st;
	struct {
		char mac[HIVE_MAC_LEN];
		char preset[64];
	} *list = NULL;
	size_t n = 0, cap = 0;

	/* Collect first: enforce() reuses the statements. */
	if (!(st = stmt(a, db, ST_MODEL_MINERS)))
		return;
	sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!sqlite3_column_text(st, 1))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *nl = realloc(list, nc * sizeof(*list));

			if (!nl)
				break;
			list = nl;
			cap = nc;
		}
		snprintf(list[n].mac, sizeof(list[n].mac), "%s", sqlite3_column_text(st, 0));
		snprintf(list[n].preset, sizeof(list[n].preset), "%s", sqlite3_column_text(st, 1));
		n++;
	}
	done_with(st);
	for (size_t i = 0; i < n; i++)
		enforce(a, db, list[i].mac, list[i].preset, -1);
	free(list);
}

/* ---------------------------------------------------------------- tick */

static void want_mark(struct apid_actions *a, struct mq *q, struct act *x)
{
	struct marks *pending = a->pending;

	if (!pending)
		return;
	if (pending->n == pending->cap) {
		size_t nc = pending->cap ? pending->cap * 2 : 64;
		struct mark *nm = realloc(pending->m, nc * sizeof(*nm));

		if (!nm)
			return;
		pending->m = nm;
		pending->cap = nc;
	}
	snprintf(pending->m[pending->n].mac, HIVE_MAC_LEN, "%s", q->mac);
	pending->m[pending->n].id = x->id;
	pending->m[pending->n].sends = x->sends + 1;
	pending->n++;
}

static int mark_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		    size_t errlen)
{
	struct marks *ms = arg;

	for (size_t i = 0; i < ms->n; i++)
		if (write_state(ms->a, apid_apply_db(ap), ms->m[i].id, APID_AS_SENT, ms->wall,
				ms->m[i].sends, NULL, NULL) < 0) {
			*http_status = 503;
			snprintf(err, errlen, "action %lld: state not written", ms->m[i].id);
			return -1;
		}
	return 0;
}

/* Sends x to its miner; with mu held. */
static void send(struct apid_actions *a, struct mq *q, struct act *x, int64_t now)
{
	long long job = 0;
	int64_t deadline = hive_wall_ms() + a->o.job_timeout_ms;
	int rc = a->sched ? apid_sched_control(a->sched, q->mac, x->id, kind_names[x->kind],
					       x->preset[0] ? x->preset : NULL, deadline, &job)
			  : -1;

	if (rc != 0)
		return;     /* no worker, or the miner is not reachable: later */
	if (x->sends > 0)
		a->st.resent++;
	else
		a->st.sent++;
	x->sends++;
	x->state = APID_AS_SENT;
	x->job = job;
	x->sent_wall = hive_wall_ms();
	x->marked = false;
	/* The worker drops the job after `deadline`; one more job timeout
	 * covers its firmware call. */
	x->job_deadline = now + 2 * a->o.job_timeout_ms;
	q->err_kind[0] = q->err_msg[0] = '\0';
	post_state(a, x, NULL, NULL);
	log_info("action sent id=%lld mac=%s kind=%s%s%s job=%lld send=%d", x->id, q->mac,
		 kind_names[x->kind], x->preset[0] ? " preset=" : "", x->preset, job, x->sends);
}

/* Moves q's actions on; with mu held. */
static void step(struct apid_actions *a, struct mq *q, int64_t now)
{
	struct act *x;

	while ((x = q->head)) {
		if (x->uncommitted)
			return;
		if (x->state == APID_AS_SENT) {
			if (now < x->job_deadline)
				return;
			x->job = 0;
			if (!idempotent(x->kind)) {
				/* Never twice: the read-back decides. */
				x->state = APID_AS_CONFIRMING;
				post_state(a, x, NULL, NULL);
				log_info("action unanswered id=%lld mac=%s kind=%s: not sent again,"
					 " waiting for the read-back", x->id, q->mac,
					 kind_names[x->kind]);
			} else if (x->sends >= MAX_SENDS) {
				finish(a, NULL, q, x, APID_AS_FAILED, "no_answer",
				       "no worker answered the control job");
				continue;
			} else {
				x->state = APID_AS_QUEUED;   /* sent again below */
			}
		}
		if (x->state == APID_AS_CONFIRMING && x->next && !x->next->uncommitted) {
			/* Accepted, and a newer action waits: that one wins. */
			finish(a, NULL, q, x, APID_AS_SUPERSEDED, "superseded",
			       "superseded by a newer action");
			continue;
		}
		if (now >= x->expires) {
			finish(a, NULL, q, x, APID_AS_EXPIRED, "expired",
			       x->state == APID_AS_QUEUED ? "not sent in time (miner offline or no"
							    " worker)"
							  : "effect not seen in time");
			continue;
		}
		if (x->state == APID_AS_QUEUED) {
			/* Recorded as sent before it goes: a crash between the two
			 * leaves an action that is confirmed or expires, never one
			 * sent twice. */
			if (x->marked || !a->writer)
				send(a, q, x, now);
			else
				want_mark(a, q, x);
		}
		return;
	}
}

int64_t apid_actions_tick(struct apid_actions *a, int64_t now)
{
	int64_t wake = TICK_IDLE_MS;
	uint64_t open = 0, by[APID_AS_STATES] = { 0 };
	struct marks ms = { .a = a };

	pthread_mutex_lock(&a->mu);
	a->pending = &ms;
	for (int b = 0; b < BUCKETS; b++) {
		for (struct mq **pq = &a->buckets[b]; *pq;) {
			struct mq *q = *pq;

			step(a, q, now);
			if (!q->head) {
				*pq = q->next;
				free(q);
				continue;
			}
			for (struct act *x = q->head; x; x = x->next) {
				open++;
				by[x->state]++;
			}
			if (q->head->state == APID_AS_QUEUED)
				wake = 20;      /* waiting for a worker or a roster */
			pq = &q->next;
		}
	}
	a->st.open = open;
	memcpy(a->st.by_state, by, sizeof(by));
	a->pending = NULL;
	pthread_mutex_unlock(&a->mu);
	if (ms.n > 0) {
		int status = 0;
		char err[128];

		ms.wall = hive_wall_ms();
		if (apid_writer_run(a->writer, mark_run, &ms, &status, err, sizeof(err)) == 0) {
			pthread_mutex_lock(&a->mu);
			for (size_t i = 0; i < ms.n; i++) {
				struct mq *q = mq_find(a, ms.m[i].mac, false);
				struct act *x = q ? mq_by_id(q, ms.m[i].id) : NULL;

				if (x && x->state == APID_AS_QUEUED) {
					x->marked = true;
					step(a, q, now);
				}
			}
			pthread_mutex_unlock(&a->mu);
		} else {
			hive_log_complain("actions mark", "actions not sent: %s", err);
		}
		wake = 20;
	}
	free(ms.m);
	return wake;
}

/* ---------------------------------------------------------------- queries */

void apid_actions_get_stats(struct apid_actions *a, struct apid_actions_stats *out)
{
	pthread_mutex_lock(&a->mu);
	*out = a->st;
	pthread_mutex_unlock(&a->mu);
}

bool apid_actions_busy(struct apid_actions *a, const char *mac)
{
	struct mq *q;
	bool busy;

	pthread_mutex_lock(&a->mu);
	q = mq_find(a, mac, false);
	busy = q && q->head;
	pthread_mutex_unlock(&a->mu);
	return busy;
}

/* ---------------------------------------------------------------- the writer */

static void hook_event(void *arg, struct apid_apply *ap, const struct apid_event *ev,
		       long long ts_ms)
{
	struct apid_actions *a = arg;
	sqlite3 *db = apid_apply_db(ap);

	switch (ev->kind) {
	case HIVE_MSG_STATUS_RESULT:
		apid_actions_on_status(a, db, &ev->u.status, ts_ms);
		break;
	case HIVE_MSG_ACTION_RESULT:
		apid_actions_on_result(a, db, &ev->u.action_result);
		break;
	case HIVE_MSG_MINER_ERROR:
		apid_actions_on_error(a, &ev->u.error);
		break;
	case HIVE_MSG_JOB_FAILED:
		apid_actions_on_job_failed(a, db, &ev->u.job_failed);
		break;
	default:
		break;
	}
}

static void hook_ended(void *arg, bool committed)
{
	apid_actions_commit(arg, committed);
}

static void hook_closing(void *arg)
{
	apid_actions_close_db(arg);
}

void apid_actions_hooks(struct apid_actions *a, struct apid_writer_hooks *out)
{
	out->event = hook_event;
	out->ended = hook_ended;
	out->closing = hook_closing;
	out->arg = a;
}

struct create_req {
	struct apid_actions *a;
	const struct apid_action_request *req;
	size_t n;
	long long *ids;
};

static int create_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		      size_t errlen)
{
	struct create_req *c = arg;

	if (apid_actions_create(c->a, apid_apply_db(ap), c->req, c->n, c->ids) < 0) {
		*http_status = 503;
		snprintf(err, errlen, "database error: actions not recorded");
		return -1;
	}
	return 0;
}

int apid_actions_request(struct apid_actions *a, const struct apid_action_request *req,
			 size_t n, long long *ids, int *http_status, char *err, size_t errlen)
{
	struct create_req c = { a, req, n, ids };

	return apid_writer_run_within(a->writer, create_run, &c, APID_WRITER_API_WAIT_MS,
				      http_status, err, errlen);
}

struct model_change {
	struct apid_actions *a;
	char alias[64];
};

static int model_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		     size_t errlen)
{
	struct model_change *m = arg;

	(void)http_status;
	(void)err;
	(void)errlen;
	apid_actions_enforce_model(m->a, apid_apply_db(ap), m->alias);
	return 0;
}

void apid_actions_model_changed(struct apid_actions *a, const char *alias)
{
	struct model_change *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->a = a;
	snprintf(m->alias, sizeof(m->alias), "%s", alias);
	if (apid_writer_post(a->writer, model_run, m, free) < 0)
		log_warnx("enforcer not run model=%s: apid is stopping", alias);
}
