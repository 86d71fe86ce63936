/* health — see health.h. metrics.c renders this document for
 * GET /metrics. */
#include "health.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <libgen.h>
#include <unistd.h>

#include "actions.h"
#include "alerts.h"
#include "notify.h"
#include "api.h"
#include "power.h"
#include "control.h"
#include "core.h"
#include "feed.h"
#include "hive/bus.h"
#include "hive/cfg.h"
#include "hive/clock.h"
#include "hive/daemon.h"
#include "hive/log.h"
#include "traffic.h"
#include "sched.h"
#include "store.h"
#include "writer.h"

/* ------------------------------------------------------------ fleet totals */

/* Health is asked for by HTTP workers, the control thread and the main
 * loop's watch; the totals are computed at most once per FLEET_CACHE_MS
 * whoever asks. */
#define FLEET_CACHE_MS 1000
/* GET /api/health's text is rebuilt at most this often. A monitor polls
 * every few seconds; wrk at 10,000 req/s would otherwise build and dump
 * the whole document (and count the scheduler's 10,000 miners) each time. */
#define HEALTH_TEXT_MS 250

/*
 * One pass over miners, each joined to its latest status by primary key
 * through last_status_id (never a GROUP BY over the history): ~10 ms
 * for 10,000 miners, whatever the history. A miner's last error counts when it is newer than its
 * latest status (or it has no status); "failure" counts the miners whose
 * latest status says state failure and that "errors" did not count, so
 * errors + failure is every online miner whose latest outcome failed.
 */
static const char fleet_sql[] =
	"SELECT count(*),"
	" coalesce(sum(m.online != 0), 0),"
	" coalesce(sum(m.online != 0 AND s.state = 'mining'), 0),"
	" total(CASE WHEN m.online != 0 THEN s.hr_realtime_ghs END),"
	" coalesce(sum(CASE WHEN m.online != 0 THEN s.power_w END), 0),"
	" coalesce(sum(CASE WHEN m.online != 0 AND s.power_metered = 0 THEN s.power_w END), 0),"
	" coalesce(sum(m.online != 0 AND"
	"  coalesce(m.last_error_ms > s.ts_ms, m.last_error_ms IS NOT NULL)), 0),"
	" coalesce(sum(m.online != 0 AND s.state = 'failure' AND"
	"  NOT coalesce(m.last_error_ms > s.ts_ms, 0)), 0),"
	" coalesce(sum(m.managed != 0), 0),"
	" coalesce(sum(m.conflict IS NOT NULL), 0)"
	" FROM miners m LEFT JOIN statuses s ON s.id = m.last_status_id";

struct fleet_figures {
	json_int_t miners, online, mining, errors, failure, managed, conflicts;
	json_int_t power_w, power_estimated_w;
	double hashrate_ghs;
	int64_t ts_ms;                   /* wall clock of the query */
};

/* A text of the document shared by the threads sending it; freed by
 * whoever drops the last reference (the cache holds one). */
struct shared_text {
	struct apid_health_text pub;     /* first: apid_health_text_release casts back */
	atomic_uint refs;
	char body[];
};

/* Health is built on HTTP workers, the control thread and the main loop.
 * The lock guards the fields below but is never held over a query or a
 * build: the thread that set querying (building) does that alone, and
 * the others take the previous figures (text) meanwhile, or wait on the
 * condition variable when there are none yet. */
struct apid_health {
	pthread_mutex_t lock;
	pthread_cond_t queried, built;
	char path[HIVE_CFG_PATH_MAX];
	sqlite3 *db;                     /* db and st: the querying thread's */
	sqlite3_stmt *st;
	bool querying;
	bool ok;                         /* fig holds figures; else err says why */
	int64_t at_ms;                   /* monotonic start of the last attempt; 0 never */
	struct fleet_figures fig;
	char err[300];
	bool building;
	struct shared_text *text;        /* GET /api/health's answer; NULL none yet */
	int64_t text_ms;                 /* monotonic time its build began */
};

struct apid_health *apid_health_new(const char *db_path)
{
	struct apid_health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->queried, NULL);
	pthread_cond_init(&h->built, NULL);
	snprintf(h->path, sizeof(h->path), "%s", db_path);
	return h;
}

static void fleet_close(struct apid_health *h)
{
	sqlite3_finalize(h->st);
	sqlite3_close(h->db);
	h->st = NULL;
	h->db = NULL;
}

void apid_health_free(struct apid_health *h)
{
	if (!h)
		return;
	fleet_close(h);
	apid_health_text_release(h->text ? &h->text->pub : NULL);
	pthread_cond_destroy(&h->queried);
	pthread_cond_destroy(&h->built);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Runs the query on the read-only connection (opened on first use) into
 * *f. 0 / -1 with err. Called by the thread that set h->querying. */
static int fleet_query(struct apid_health *h, struct fleet_figures *f, char *err, size_t errlen)
{
	int rc;

	if (!h->db) {
		h->db = apid_store_open_readonly(h->path, err, errlen);
		if (!h->db)
			return -1;
	}
	if (!h->st && sqlite3_prepare_v2(h->db, fleet_sql, -1, &h->st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(h->db));
		fleet_close(h);
		return -1;
	}
	rc = sqlite3_step(h->st);
	if (rc == SQLITE_ROW) {
		f->miners = sqlite3_column_int64(h->st, 0);
		f->online = sqlite3_column_int64(h->st, 1);
		f->mining = sqlite3_column_int64(h->st, 2);
		f->hashrate_ghs = sqlite3_column_double(h->st, 3);
		f->power_w = sqlite3_column_int64(h->st, 4);
		f->power_estimated_w = sqlite3_column_int64(h->st, 5);
		f->errors = sqlite3_column_int64(h->st, 6);
		f->failure = sqlite3_column_int64(h->st, 7);
		f->managed = sqlite3_column_int64(h->st, 8);
		f->conflicts = sqlite3_column_int64(h->st, 9);
		f->ts_ms = hive_wall_ms();
	} else {
		snprintf(err, errlen, "%s", sqlite3_errmsg(h->db));
	}
	/* Ends the read transaction: a reader left open would hold back the
	 * writer's checkpoints. */
	sqlite3_reset(h->st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Whether the caller is to run the query: the figures are due and nobody
 * is at it (then querying is set). Waits only while the first query runs.
 * Called with h->lock held. */
static bool fleet_due(struct apid_health *h)
{
	for (;;) {
		if (h->at_ms != 0 && (h->querying || hive_mono_ms() - h->at_ms < FLEET_CACHE_MS))
			return false;
		if (!h->querying) {
			h->querying = true;
			return true;
		}
		pthread_cond_wait(&h->queried, &h->lock);
	}
}

/* The "fleet" object of the health document, or null when the database
 * cannot be read (the reason goes to "problems" through *err). */
static json_t *fleet_json(struct apid_health *h, char *err, size_t errlen)
{
	struct fleet_figures f;
	json_t *fig;
	bool ok;

	if (!h) {
		snprintf(err, errlen, "not started");
		return json_null();
	}
	pthread_mutex_lock(&h->lock);
	if (fleet_due(h)) {
		int64_t t0 = hive_mono_ms();
		char qerr[sizeof(h->err)], q[sizeof(h->err) + 64];
		int rc;

		pthread_mutex_unlock(&h->lock);
		memset(&f, 0, sizeof(f));
		rc = fleet_query(h, &f, qerr, sizeof(qerr));
		if (rc < 0)
			hive_log_complain("health fleet", "fleet totals unavailable err=%s",
					  hive_log_quote(qerr, q, sizeof(q)));
		else
			hive_log_recovered("health fleet", "fleet totals available again");
		pthread_mutex_lock(&h->lock);
		h->ok = rc == 0;
		if (h->ok)
			h->fig = f;
		else
			snprintf(h->err, sizeof(h->err), "%s", qerr);
		h->at_ms = t0;
		h->querying = false;
		pthread_cond_broadcast(&h->queried);
	}
	ok = h->ok;
	f = h->fig;
	if (!ok)
		snprintf(err, errlen, "%s", h->err);
	pthread_mutex_unlock(&h->lock);
	if (!ok)
		return json_null();
	fig = json_pack("{s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "miners", f.miners, "online", f.online, "mining", f.mining,
			 "hashrate_ghs", f.hashrate_ghs, "power_w", f.power_w,
			 "power_estimated_w", f.power_estimated_w, "errors", f.errors,
			 "failure", f.failure, "managed", f.managed, "conflicts", f.conflicts,
			 "ts_ms", (json_int_t)f.ts_ms);
	return fig ? fig : json_null();   /* a hashrate sum that is not finite */
}

static json_int_t file_size(const char *path, const char *suffix)
{
	char p[HIVE_CFG_PATH_MAX + 8];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (json_int_t)st.st_size : 0;
}

static json_t *counts_json(const struct apid_sched_counts *c)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "sent", (json_int_t)c->sent,
			 "done", (json_int_t)c->done, "failed", (json_int_t)c->failed,
			 "timed_out", (json_int_t)c->timed_out, "not_sent", (json_int_t)c->not_sent,
			 "skipped_busy", (json_int_t)c->skipped_busy,
			 "outstanding", (json_int_t)c->outstanding);
}

/* Adds the bus's malformed envelopes to the event totals. */
static void add_malformed(json_t *events, struct hive_bus *bus)
{
	struct hive_bus_stats bs;
	json_t *by = json_object_get(events, "rejected_by");
	json_int_t total = 0;

	hive_bus_get_stats(bus, &bs);
	for (int e = 1; e < HIVE_ENV_ERROR_COUNT; e++) {
		char name[96];

		snprintf(name, sizeof(name), "malformed envelope: %s",
			 hive_envelope_error_name((enum hive_envelope_error)e));
		if (by)
			json_object_set_new(by, name, json_integer((json_int_t)bs.rejected_by[e]));
		total += (json_int_t)bs.rejected_by[e];
	}
	json_object_set_new(events, "malformed", json_integer(total));
	json_object_set_new(events, "rejected",
			    json_integer(json_integer_value(json_object_get(events, "rejected")) +
					 total));
}

/* Space on the database's file system below this is a full disk: SQLite
 * cannot grow the WAL by much. */
#define DISK_FULL_BYTES (1024 * 1024)

/* What keeps apid from doing its job, into failing (each a sentence): a
 * write the database refused within health.failing_seconds (a lock held
 * elsewhere, a full disk, an I/O error: it clears once writes go through
 * that long), and a full file system under the database. */
static void add_failing(struct apid *a, json_t *failing, const struct apid_writer_stats *ws)
{
	int64_t window_ms = (int64_t)a->d.cfg.health.failing_seconds * 1000;
	char msg[400], path[HIVE_CFG_PATH_MAX];
	struct statvfs sv;

	if (!a->writer) {
		json_array_append_new(failing, json_string("the database is not open"));
		return;
	}
	if (ws->db_failed_ms && hive_mono_ms() - ws->db_failed_ms < window_ms) {
		snprintf(msg, sizeof(msg), "database writes refused: the last %lld s ago (%s)",
			 (long long)((hive_mono_ms() - ws->db_failed_ms) / 1000), ws->db_error);
		json_array_append_new(failing, json_string(msg));
	}
	snprintf(path, sizeof(path), "%s", a->db_path);
	if (a->db_path[0] && strcmp(a->db_path, ":memory:") != 0 &&
	    statvfs(dirname(path), &sv) == 0 && sv.f_blocks > 0 &&
	    (double)sv.f_bavail * (double)sv.f_frsize < DISK_FULL_BYTES) {
		snprintf(msg, sizeof(msg), "no space left on the database's file system (%.200s)",
			 path);
		json_array_append_new(failing, json_string(msg));
	}
}

bool apid_health_failing(struct apid *a, char *why, size_t whylen)
{
	struct apid_writer_stats ws;
	json_t *failing = json_array();
	bool yes;

	memset(&ws, 0, sizeof(ws));
	if (a->writer)
		apid_writer_get_stats(a->writer, &ws);
	if (failing)
		add_failing(a, failing, &ws);
	yes = json_array_size(failing) > 0;
	snprintf(why, whylen, "%s", yes ? json_string_value(json_array_get(failing, 0)) : "");
	json_decref(failing);
	return yes;
}

/* "status": "failing" with the reasons in "failing" (apid cannot store
 * what it is sent: GET /api/health answers 503), else "degraded" with the
 * reasons in "problems": the writer falling behind, a silent daemon
 * (not one that said goodbye), jobs with no worker to take them, fleet
 * totals that cannot be read; else "ok". Every failing reason is a
 * problem too. */
static void add_problems(struct apid *a, json_t *h, const struct apid_writer_stats *ws,
			 const struct apid_sched_stats *ss, const char *fleet_err)
{
	json_t *problems = json_array(), *failing = json_array(), *d;
	int64_t stale_ms = (int64_t)a->d.cfg.intervals.heartbeat_seconds * 3000;
	size_t i;
	char msg[320];

	add_failing(a, failing, ws);
	json_array_extend(problems, failing);
	if (ws->queue_max && ws->depth * 10 >= ws->queue_max * 9)
		json_array_append_new(problems, json_string("writer queue over 90% full"));
	if (*fleet_err) {
		snprintf(msg, sizeof(msg), "fleet totals unavailable: %s", fleet_err);
		json_array_append_new(problems, json_string(msg));
	}
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		if (json_integer_value(json_object_get(d, "heartbeat_age_ms")) <= stale_ms ||
		    json_is_integer(json_object_get(d, "stopped_ms")))
			continue;
		snprintf(msg, sizeof(msg), "no heartbeat from %s",
			 json_string_value(json_object_get(d, "src")));
		json_array_append_new(problems, json_string(msg));
	}
	{
		/* A balancer that acts (or would) on a stale feed is news. */
		json_t *pw = json_object_get(h, "power");
		const char *mode = json_string_value(json_object_get(pw, "mode"));
		const char *state = json_string_value(json_object_get(pw, "state"));

		if (mode && strcmp(mode, "off") != 0 && state && strcmp(state, "ok") != 0) {
			snprintf(msg, sizeof(msg), "power feed %s: %s", state,
				 json_string_value(json_object_get(pw, "state_reason")));
			json_array_append_new(problems, json_string(msg));
		}
	}
	if (a->jobs_plant && hive_bus_peers(a->jobs_plant) == 0 &&
	    (a->d.cfg.power.source.kind == HIVE_PLANT_AGGREGATOR ||
	     a->d.cfg.power.source.kind == HIVE_PLANT_MODBUS))
		json_array_append_new(problems, json_string("no pollerd connected to read the plant"));
	if (ss->eligible && a->jobs_status && hive_bus_peers(a->jobs_status) == 0)
		json_array_append_new(problems, json_string("no status worker connected"));
	if (ss->eligible && a->jobs_telemetry && hive_bus_peers(a->jobs_telemetry) == 0)
		json_array_append_new(problems, json_string("no telemetry worker connected"));
	json_object_set_new(h, "status", json_string(json_array_size(failing) ? "failing"
						     : json_array_size(problems) ? "degraded" : "ok"));
	json_object_set_new(h, "problems", problems);
	if (json_array_size(failing)) {
		/* What a client that reads only "error" of a 503 shows. */
		snprintf(msg, sizeof(msg), "apid cannot store data: %s",
			 json_string_value(json_array_get(failing, 0)));
		json_object_set_new(h, "error", json_string(msg));
	}
	json_object_set_new(h, "failing", failing);
}

/* The actions' counters (actions.h): totals since start and open now. */
static json_t *actions_json(struct apid_actions *acts)
{
	struct apid_actions_stats s;
	json_t *open;

	memset(&s, 0, sizeof(s));
	if (acts)
		apid_actions_get_stats(acts, &s);
	open = json_object();
	for (int k = APID_AS_QUEUED; k <= APID_AS_CONFIRMING; k++)
		json_object_set_new(open, apid_action_state_name(k),
				    json_integer((json_int_t)s.by_state[k]));
	return json_pack("{s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "open", (json_int_t)s.open, "open_by_state", open,
			 "created", (json_int_t)s.created, "sent", (json_int_t)s.sent,
			 "resent", (json_int_t)s.resent, "done", (json_int_t)s.done,
			 "failed", (json_int_t)s.failed, "expired", (json_int_t)s.expired,
			 "superseded", (json_int_t)s.superseded, "enforced", (json_int_t)s.enforced,
			 "conflicts_flagged", (json_int_t)s.conflicts);
}

json_t *apid_health(struct apid *a)
{
	int64_t now = hive_wall_ms();
	json_t *h = json_object(), *events = NULL, *daemons, *sweeps, *pruned;
	struct apid_writer_stats ws;
	struct apid_sched_stats ss;
	uint64_t published = 0, dropped = 0;
	char fleet_err[300] = "";

	if (!h)
		return NULL;
	json_object_set_new(h, "status", json_string("ok"));
	json_object_set_new(h, "ts_ms", json_integer((json_int_t)now));
	json_object_set_new(h, "apid", json_pack("{s:s,s:s,s:I,s:I,s:I}", "version", HIVE_VERSION,
						 "src", a->d.source, "pid", (json_int_t)getpid(),
						 "started_ms", (json_int_t)a->started_ms,
						 "uptime_s", (json_int_t)((now - a->started_ms) / 1000)));
	json_object_set_new(h, "fleet", fleet_json(a->health, fleet_err, sizeof(fleet_err)));
	if (a->traffic)
		events = apid_traffic_snapshot(a->traffic, now);
	if (!events)
		events = json_pack("{s:i,s:i,s:i,s:i,s:{},s:[],s:[],s:[]}", "received", 0, "stored",
				   0, "rejected", 0, "lost", 0, "rejected_by", "sources",
				   "daemons", "sweeps");
	daemons = json_incref(json_object_get(events, "daemons"));
	sweeps = json_incref(json_object_get(events, "sweeps"));
	json_object_del(events, "daemons");
	json_object_del(events, "sweeps");
	if (a->events)
		add_malformed(events, a->events);
	json_object_set_new(h, "daemons", daemons ? daemons : json_array());
	json_object_set_new(h, "workers", json_pack("{s:i,s:i,s:i}",
						    "status", hive_bus_peers(a->jobs_status),
						    "telemetry", hive_bus_peers(a->jobs_telemetry),
						    "control", a->jobs_control
							       ? hive_bus_peers(a->jobs_control) : 0));
	memset(&ws, 0, sizeof(ws));
	if (a->writer)
		apid_writer_get_stats(a->writer, &ws);
	if (a->feed)
		apid_feed_stats(a->feed, &published, &dropped);
	json_object_set_new(h, "queues", json_pack(
		"{s:{s:I,s:I},s:{s:I,s:I}}",
		"writer", "depth", (json_int_t)ws.depth, "max", (json_int_t)ws.queue_max,
		"feed", "published", (json_int_t)published, "dropped", (json_int_t)dropped));
	json_object_set_new(h, "events", events);
	memset(&ss, 0, sizeof(ss));
	if (a->sched)
		apid_sched_get_stats(a->sched, &ss);
	json_object_set_new(h, "scheduler", json_pack(
		"{s:I,s:I,s:o,s:o}", "miners", (json_int_t)ss.miners,
		"eligible", (json_int_t)ss.eligible,
		"status", counts_json(&ss.kind[APID_JOB_STATUS]),
		"telemetry", counts_json(&ss.kind[APID_JOB_TELEMETRY])));
	json_object_set_new(h, "sweeps", sweeps ? sweeps : json_array());
	pruned = json_object();
	for (int t = 0; t < APID_RT_COUNT; t++)
		json_object_set_new(pruned, apid_retention_table_name(t),
				    json_integer((json_int_t)ws.pruned[t]));
	json_object_set_new(h, "database", json_pack(
		"{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:{s:I,s:I,s:I}}",
		"path", a->db_path, "size_bytes", file_size(a->db_path, ""),
		"wal_bytes", file_size(a->db_path, "-wal"),
		"batches", (json_int_t)ws.batches, "max_batch", (json_int_t)ws.max_batch,
		"patches", (json_int_t)ws.patches, "commit_failures", (json_int_t)ws.commit_failures,
		"write_failures", (json_int_t)ws.db_failures,
		"last_seq", (json_int_t)ws.last_seq, "pruned", pruned,
		"pages_returned", (json_int_t)ws.pages_returned,
		"rolled_up", "statuses", (json_int_t)ws.rolled_statuses,
		"fleet_minutes", (json_int_t)ws.rolled_fleet_minutes,
		"telemetry_hours", (json_int_t)ws.rolled_telemetry_hours));
	json_object_set_new(h, "control", json_pack("{s:I,s:I}", "requests",
						    (json_int_t)apid_control_requests(a->control),
						    "refused",
						    (json_int_t)apid_control_refused(a->control)));
	json_object_set_new(h, "actions", actions_json(a->actions));
	json_object_set_new(h, "power", a->power ? apid_power_health(a->power) : json_null());
	{
		/* The alerts engine's figures and the deliveries' (docs/alerts.md). */
		json_t *al = apid_alerts_health(a->alerts);

		if (json_is_object(al) && a->notify) {
			struct apid_notify_stats ns;

			apid_notify_get_stats(a->notify, &ns);
			json_object_set_new(al, "notifications_out", json_pack(
				"{s:I, s:I, s:I, s:I}", "delivered", (json_int_t)ns.delivered,
				"failed_attempts", (json_int_t)ns.failed_attempts,
				"given_up", (json_int_t)ns.given_up, "pending", (json_int_t)ns.pending));
		}
		json_object_set_new(h, "alerts", al);
	}
	add_problems(a, h, &ws, &ss, fleet_err);
	return h;
}

/* ------------------------------------------------------------ the text */

/* The document's text holding one reference, or NULL when out of memory. */
static struct shared_text *text_build(struct apid *a)
{
	json_t *j = apid_health(a);
	struct shared_text *t = NULL;
	size_t n = j ? json_dumpb(j, NULL, 0, API_JSON_FLAGS) : 0;

	if (n && (t = malloc(sizeof(*t) + n + 2)) &&
	    json_dumpb(j, t->body, n, API_JSON_FLAGS) == n) {
		const char *st = json_string_value(json_object_get(j, "status"));

		t->body[n] = '\n';
		t->body[n + 1] = '\0';
		t->pub.body = t->body;
		t->pub.len = n + 1;
		t->pub.http_status = st && strcmp(st, "failing") == 0 ? 503 : 200;
		atomic_init(&t->refs, 1);
	} else {
		free(t);
		t = NULL;
	}
	json_decref(j);
	return t;
}

void apid_health_text_release(const struct apid_health_text *pub)
{
	struct shared_text *t = (struct shared_text *)pub;

	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		free(t);
}

const struct apid_health_text *apid_health_text(struct apid *a)
{
	struct apid_health *h = a->health;
	struct shared_text *t, *old = NULL;
	int64_t now = hive_mono_ms();
	bool build = false;

	if (!h) {
		t = text_build(a);          /* not started: this caller's alone */
		return t ? &t->pub : NULL;
	}
	pthread_mutex_lock(&h->lock);
	while (!build) {
		if (h->text && (h->building || now - h->text_ms < HEALTH_TEXT_MS))
			break;   /* fresh, or the previous one while another thread rebuilds */
		if (h->building)
			pthread_cond_wait(&h->built, &h->lock);   /* the first one is on its way */
		else
			build = h->building = true;   /* this caller rebuilds it */
	}
	if (build) {
		/* Everything costly (the scheduler's count over its miners, the
		 * fleet query when due, the JSON) happens without the lock. */
		pthread_mutex_unlock(&h->lock);
		t = text_build(a);
		pthread_mutex_lock(&h->lock);
		h->building = false;
		pthread_cond_broadcast(&h->built);
		if (t) {
			old = h->text;
			h->text = t;
			h->text_ms = now;
		}
	}
	t = h->text;   /* after a failed rebuild, the previous one */
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&h->lock);
	apid_health_text_release(old ? &old->pub : NULL);
	return t ? &t->pub : NULL;
}
