/* health — see health.h. The metrics are rendered from the health
 * document, so the two never disagree. docs/apid.md lists every name. */
#include "health.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actions.h"
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

/* The connection, its statement and the last figures, behind one lock:
 * health is built on HTTP workers, the control thread and the main loop. */
struct apid_health {
	pthread_mutex_t lock;
	char path[HIVE_CFG_PATH_MAX];
	sqlite3 *db;
	sqlite3_stmt *st;
	bool ok;                         /* fig holds figures; else err says why */
	int64_t at_ms;                   /* monotonic time of the last attempt; 0 never */
	struct fleet_figures fig;
	char err[300];
};

struct apid_health *apid_health_new(const char *db_path)
{
	struct apid_health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
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
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Runs the query on the read-only connection (opened on first use).
 * 0 / -1 with h->err. Called with h->lock held. */
static int fleet_query(struct apid_health *h)
{
	struct fleet_figures *f = &h->fig;
	int rc;

	if (!h->db) {
		h->db = apid_store_open_readonly(h->path, h->err, sizeof(h->err));
		if (!h->db)
			return -1;
	}
	if (!h->st && sqlite3_prepare_v2(h->db, fleet_sql, -1, &h->st, NULL) != SQLITE_OK) {
		snprintf(h->err, sizeof(h->err), "%s", sqlite3_errmsg(h->db));
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
		snprintf(h->err, sizeof(h->err), "%s", sqlite3_errmsg(h->db));
	}
	/* Ends the read transaction: a reader left open would hold back the
	 * writer's checkpoints. */
	sqlite3_reset(h->st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* The "fleet" object of the health document, or null when the database
 * cannot be read (the reason goes to "problems" through *err). */
static json_t *fleet_json(struct apid_health *h, char *err, size_t errlen)
{
	int64_t now = hive_mono_ms();
	struct fleet_figures f;
	json_t *fig;
	bool ok;

	if (!h) {
		snprintf(err, errlen, "not started");
		return json_null();
	}
	pthread_mutex_lock(&h->lock);
	if (h->at_ms == 0 || now - h->at_ms >= FLEET_CACHE_MS) {
		h->ok = fleet_query(h) == 0;
		h->at_ms = now;
		if (!h->ok) {
			char q[sizeof(h->err) + 64];

			hive_log_complain("health fleet", "fleet totals unavailable err=%s",
					  hive_log_quote(h->err, q, sizeof(q)));
		} else {
			hive_log_recovered("health fleet", "fleet totals available again");
		}
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

/* "status": "ok", or "degraded" with the reasons in "problems": the
 * writer falling behind, a silent daemon, jobs with no worker to take
 * them, failed commits, fleet totals that cannot be read. */
static void add_problems(struct apid *a, json_t *h, const struct apid_writer_stats *ws,
			 const struct apid_sched_stats *ss, const char *fleet_err)
{
	json_t *problems = json_array(), *d;
	int64_t stale_ms = (int64_t)a->d.cfg.intervals.heartbeat_seconds * 3000;
	size_t i;
	char msg[320];

	if (ws->queue_max && ws->depth * 10 >= ws->queue_max * 9)
		json_array_append_new(problems, json_string("writer queue over 90% full"));
	if (ws->commit_failures)
		json_array_append_new(problems, json_string("database commits failed"));
	if (*fleet_err) {
		snprintf(msg, sizeof(msg), "fleet totals unavailable: %s", fleet_err);
		json_array_append_new(problems, json_string(msg));
	}
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		if (json_integer_value(json_object_get(d, "heartbeat_age_ms")) <= stale_ms)
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
	json_object_set_new(h, "status", json_string(json_array_size(problems) ? "degraded" : "ok"));
	json_object_set_new(h, "problems", problems);
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
	json_t *h = json_object(), *events = NULL, *daemons, *sweeps;
	struct apid_writer_stats ws;
	struct apid_sched_stats ss;
	uint64_t published = 0, dropped = 0;
	char fleet_err[300] = "";

	if (!h)
		return NULL;
	json_object_set_new(h, "status", json_string("ok"));
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
	json_object_set_new(h, "database", json_pack(
		"{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I}}",
		"path", a->db_path, "size_bytes", file_size(a->db_path, ""),
		"wal_bytes", file_size(a->db_path, "-wal"),
		"batches", (json_int_t)ws.batches, "max_batch", (json_int_t)ws.max_batch,
		"patches", (json_int_t)ws.patches, "commit_failures", (json_int_t)ws.commit_failures,
		"last_seq", (json_int_t)ws.last_seq,
		"pruned", "statuses", (json_int_t)ws.pruned_statuses,
		"telemetry", (json_int_t)ws.pruned_telemetry,
		"miner_errors", (json_int_t)ws.pruned_errors, "audit", (json_int_t)ws.pruned_audit,
		"actions", (json_int_t)ws.pruned_actions));
	json_object_set_new(h, "control", json_pack("{s:I}", "requests",
						    (json_int_t)apid_control_requests(a->control)));
	json_object_set_new(h, "actions", actions_json(a->actions));
	json_object_set_new(h, "power", a->power ? apid_power_health(a->power) : json_null());
	add_problems(a, h, &ws, &ss, fleet_err);
	return h;
}

/* ------------------------------------------------------------ metrics */

static void put_label_value(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t num(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : json_is_real(v)
		? (json_int_t)json_real_value(v) : 0;
}

static void sample(FILE *f, const char *name, const char *label, const char *value, double v)
{
	fputs(name, f);
	if (label) {
		fprintf(f, "{%s=\"", label);
		put_label_value(f, value);
		fputs("\"}", f);
	}
	fprintf(f, " %.17g\n", v);
}

/* One family with a sample per element of arr (label from key lab). */
static void per(FILE *f, const char *name, const char *type, const char *help, const json_t *arr,
		const char *label, const char *lab_key, const char *val_key)
{
	const json_t *e;
	size_t i;

	family(f, name, type, help);
	json_array_foreach(arr, i, e)
		sample(f, name, label, json_string_value(json_object_get(e, lab_key)),
		       (double)num(e, val_key));
}

static void per_kind(FILE *f, const char *name, const char *type, const char *help,
		     const json_t *sched, const char *key)
{
	family(f, name, type, help);
	sample(f, name, "queue", "status", (double)num(json_object_get(sched, "status"), key));
	sample(f, name, "queue", "telemetry",
	       (double)num(json_object_get(sched, "telemetry"), key));
}

char *apid_metrics(struct apid *a)
{
	json_t *h = apid_health(a), *ev, *sched, *db, *q, *d, *w, *fl;
	char *buf = NULL;
	size_t len = 0, i;
	const char *k;
	FILE *f;

	if (!h)
		return NULL;
	f = open_memstream(&buf, &len);
	if (!f) {
		json_decref(h);
		return NULL;
	}
	ev = json_object_get(h, "events");
	sched = json_object_get(h, "scheduler");
	db = json_object_get(h, "database");
	q = json_object_get(h, "queues");

	family(f, "powerhive_up", "gauge", "1 while apid runs.");
	sample(f, "powerhive_up", NULL, NULL, 1);
	family(f, "powerhive_start_time_seconds", "gauge", "When apid started (Unix time).");
	sample(f, "powerhive_start_time_seconds", NULL, NULL, (double)a->started_ms / 1000.0);

	fl = json_object_get(h, "fleet");
	if (json_is_object(fl)) {
		family(f, "powerhive_fleet_miners", "gauge", "Miners known.");
		sample(f, "powerhive_fleet_miners", NULL, NULL, (double)num(fl, "miners"));
		family(f, "powerhive_fleet_online", "gauge", "Miners online.");
		sample(f, "powerhive_fleet_online", NULL, NULL, (double)num(fl, "online"));
		family(f, "powerhive_fleet_mining", "gauge",
		       "Online miners whose latest status says mining.");
		sample(f, "powerhive_fleet_mining", NULL, NULL, (double)num(fl, "mining"));
		family(f, "powerhive_fleet_hashrate_ghs", "gauge",
		       "Sum of the online miners' latest realtime hashrate, in GH/s.");
		sample(f, "powerhive_fleet_hashrate_ghs", NULL, NULL,
		       json_number_value(json_object_get(fl, "hashrate_ghs")));
		family(f, "powerhive_fleet_power_watts", "gauge",
		       "Sum of the online miners' latest power, metered and estimated.");
		sample(f, "powerhive_fleet_power_watts", NULL, NULL, (double)num(fl, "power_w"));
		family(f, "powerhive_fleet_power_estimated_watts", "gauge",
		       "The part of powerhive_fleet_power_watts estimated from running presets.");
		sample(f, "powerhive_fleet_power_estimated_watts", NULL, NULL,
		       (double)num(fl, "power_estimated_w"));
		family(f, "powerhive_fleet_errors", "gauge",
		       "Online miners whose last error is newer than their latest status.");
		sample(f, "powerhive_fleet_errors", NULL, NULL, (double)num(fl, "errors"));
		family(f, "powerhive_fleet_failure", "gauge",
		       "Online miners in state failure not counted in powerhive_fleet_errors.");
		sample(f, "powerhive_fleet_failure", NULL, NULL, (double)num(fl, "failure"));
		family(f, "powerhive_fleet_managed", "gauge", "Miners managed by PowerHive.");
		sample(f, "powerhive_fleet_managed", NULL, NULL, (double)num(fl, "managed"));
		family(f, "powerhive_fleet_conflicts", "gauge",
		       "Managed miners flagged conflict: they keep raising their preset above"
		       " the limit by themselves.");
		sample(f, "powerhive_fleet_conflicts", NULL, NULL, (double)num(fl, "conflicts"));
	}

	per(f, "powerhive_events_received_total", "counter", "Events received from the bus.",
	    json_object_get(ev, "sources"), "source", "src", "received");
	per(f, "powerhive_events_stored_total", "counter",
	    "Events applied and committed (heartbeats and job failures included).",
	    json_object_get(ev, "sources"), "source", "src", "stored");
	per(f, "powerhive_events_rejected_total", "counter",
	    "Events refused (bad body, unknown miner...): nothing written.",
	    json_object_get(ev, "sources"), "source", "src", "rejected");
	per(f, "powerhive_events_lost_total", "counter",
	    "Events never received (gaps in the senders' sequence numbers).",
	    json_object_get(ev, "sources"), "source", "src", "lost");
	family(f, "powerhive_events_rejected_reason_total", "counter",
	       "Events refused, by reason (malformed envelopes included).");
	json_object_foreach(json_object_get(ev, "rejected_by"), k, d)
		sample(f, "powerhive_events_rejected_reason_total", "reason", k,
		       (double)json_integer_value(d));
	family(f, "powerhive_events_duplicates_total", "counter",
	       "Events received twice (repeated sequence numbers).");
	sample(f, "powerhive_events_duplicates_total", NULL, NULL, (double)num(ev, "duplicates"));
	family(f, "powerhive_miner_errors_unattributed_total", "counter",
	       "hive.miner.error events without a MAC: counted, not stored.");
	sample(f, "powerhive_miner_errors_unattributed_total", NULL, NULL,
	       (double)num(ev, "unattributed_errors"));

	family(f, "powerhive_daemon_heartbeat_age_seconds", "gauge",
	       "Seconds since the daemon's last heartbeat.");
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		fputs("powerhive_daemon_heartbeat_age_seconds{source=\"", f);
		put_label_value(f, json_string_value(json_object_get(d, "src")));
		fputs("\",daemon=\"", f);
		put_label_value(f, json_string_value(json_object_get(d, "daemon")));
		fprintf(f, "\"} %.3f\n", (double)num(d, "heartbeat_age_ms") / 1000.0);
	}
	family(f, "powerhive_daemon_value", "gauge",
	       "The counters a daemon reported in its last heartbeat.");
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		json_t *v;

		json_object_foreach(json_object_get(d, "counters"), k, v) {
			fputs("powerhive_daemon_value{source=\"", f);
			put_label_value(f, json_string_value(json_object_get(d, "src")));
			fputs("\",name=\"", f);
			put_label_value(f, k);
			fprintf(f, "\"} %.17g\n", json_number_value(v));
		}
	}

	w = json_object_get(h, "workers");
	family(f, "powerhive_workers_connected", "gauge", "Workers connected to a job queue.");
	sample(f, "powerhive_workers_connected", "queue", "status", (double)num(w, "status"));
	sample(f, "powerhive_workers_connected", "queue", "telemetry",
	       (double)num(w, "telemetry"));

	family(f, "powerhive_writer_queue_depth", "gauge", "Events waiting for the writer.");
	sample(f, "powerhive_writer_queue_depth", NULL, NULL,
	       (double)num(json_object_get(q, "writer"), "depth"));
	family(f, "powerhive_writer_queue_capacity", "gauge", "Size of the writer queue.");
	sample(f, "powerhive_writer_queue_capacity", NULL, NULL,
	       (double)num(json_object_get(q, "writer"), "max"));
	family(f, "powerhive_writer_batches_total", "counter", "Transactions committed.");
	sample(f, "powerhive_writer_batches_total", NULL, NULL, (double)num(db, "batches"));
	family(f, "powerhive_writer_commit_failures_total", "counter",
	       "Transactions that failed to commit.");
	sample(f, "powerhive_writer_commit_failures_total", NULL, NULL,
	       (double)num(db, "commit_failures"));
	family(f, "powerhive_retention_pruned_rows_total", "counter",
	       "Rows deleted by retention, per table.");
	json_object_foreach(json_object_get(db, "pruned"), k, d)
		sample(f, "powerhive_retention_pruned_rows_total", "table", k,
		       (double)json_integer_value(d));
	family(f, "powerhive_database_size_bytes", "gauge", "Size of the database files.");
	sample(f, "powerhive_database_size_bytes", "file", "main", (double)num(db, "size_bytes"));
	sample(f, "powerhive_database_size_bytes", "file", "wal", (double)num(db, "wal_bytes"));
	family(f, "powerhive_feed_published_total", "counter", "Messages published on the feed.");
	sample(f, "powerhive_feed_published_total", NULL, NULL,
	       (double)num(json_object_get(q, "feed"), "published"));
	family(f, "powerhive_feed_dropped_total", "counter",
	       "Feed updates dropped because the feed queue was full.");
	sample(f, "powerhive_feed_dropped_total", NULL, NULL,
	       (double)num(json_object_get(q, "feed"), "dropped"));

	per_kind(f, "powerhive_jobs_sent_total", "counter", "Jobs handed to a worker.", sched,
		 "sent");
	per_kind(f, "powerhive_jobs_done_total", "counter", "Jobs whose result arrived.", sched,
		 "done");
	per_kind(f, "powerhive_jobs_failed_total", "counter", "Jobs a worker reported failed.",
		 sched, "failed");
	per_kind(f, "powerhive_jobs_timed_out_total", "counter",
		 "Jobs with neither result nor failure within the job timeout.", sched,
		 "timed_out");
	per_kind(f, "powerhive_jobs_not_sent_total", "counter",
		 "Jobs not sent: no worker connected or ready.", sched, "not_sent");
	per_kind(f, "powerhive_jobs_skipped_busy_total", "counter",
		 "Slots skipped because the miner's previous job was still out.", sched,
		 "skipped_busy");
	per_kind(f, "powerhive_jobs_outstanding", "gauge", "Jobs out now.", sched, "outstanding");
	family(f, "powerhive_scheduler_miners", "gauge",
	       "Online miners with an API key (the roster).");
	sample(f, "powerhive_scheduler_miners", NULL, NULL, (double)num(sched, "miners"));
	family(f, "powerhive_scheduler_eligible_miners", "gauge",
	       "Miners of the roster that get jobs (scheduler.managed_only applied).");
	sample(f, "powerhive_scheduler_eligible_miners", NULL, NULL,
	       (double)num(sched, "eligible"));

	family(f, "powerhive_sweep_last_timestamp_seconds", "gauge",
	       "When a subnet's last sweep ended (Unix time).");
	json_array_foreach(json_object_get(h, "sweeps"), i, d)
		sample(f, "powerhive_sweep_last_timestamp_seconds", "subnet",
		       json_string_value(json_object_get(d, "subnet")),
		       (double)num(d, "ts_ms") / 1000.0);
	family(f, "powerhive_sweep_duration_seconds", "gauge", "How long a subnet's last sweep took.");
	json_array_foreach(json_object_get(h, "sweeps"), i, d)
		sample(f, "powerhive_sweep_duration_seconds", "subnet",
		       json_string_value(json_object_get(d, "subnet")),
		       (double)num(d, "duration_ms") / 1000.0);
	per(f, "powerhive_sweep_miners", "gauge", "Miners a subnet's last sweep found.",
	    json_object_get(h, "sweeps"), "subnet", "subnet", "miners");
	{
		static const char *const ends[] = { "done", "failed", "expired", "superseded" };
		json_t *ac = json_object_get(h, "actions");

		family(f, "powerhive_actions_created_total", "counter",
		       "Actions recorded (operators and the enforcer).");
		sample(f, "powerhive_actions_created_total", NULL, NULL, (double)num(ac, "created"));
		family(f, "powerhive_actions_ended_total", "counter",
		       "Actions that reached a final state, by state.");
		for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++)
			sample(f, "powerhive_actions_ended_total", "state", ends[e],
			       (double)num(ac, ends[e]));
		family(f, "powerhive_actions_open", "gauge",
		       "Actions queued, sent or confirming now.");
		sample(f, "powerhive_actions_open", NULL, NULL, (double)num(ac, "open"));
		family(f, "powerhive_actions_enforced_total", "counter",
		       "set_preset actions the max-preset enforcer created.");
		sample(f, "powerhive_actions_enforced_total", NULL, NULL,
		       (double)num(ac, "enforced"));
	}
	{
		static const char *const states[] = { "ok", "stale", "fallback" };
		static const char *const gauges[][2] = {
			{ "target_w", "The balancer's target: available x (1 - margin), watts." },
			{ "estimate_w", "The estimated draw of the farm, watts." },
			{ "measured_w", "The farm's draw as the plant meters it, watts." },
			{ "available_w", "The power the farm may draw, watts." },
		};
		json_t *pw = json_object_get(h, "power");
		const char *state = json_string_value(json_object_get(pw, "state"));
		char name[64];

		for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
			json_t *v = json_object_get(pw, gauges[g][0]);

			if (!json_is_number(v))
				continue;
			snprintf(name, sizeof(name), "powerhive_power_%s", gauges[g][0]);
			family(f, name, "gauge", gauges[g][1]);
			sample(f, name, NULL, NULL, json_number_value(v));
		}
		family(f, "powerhive_power_state", "gauge", "1 for the feed's state now.");
		for (size_t st = 0; st < 3; st++)
			sample(f, "powerhive_power_state", "state", states[st],
			       state && strcmp(state, states[st]) == 0);
		family(f, "powerhive_power_readings_refused_total", "counter",
		       "Plant readings the balancer refused.");
		sample(f, "powerhive_power_readings_refused_total", NULL, NULL,
		       (double)num(pw, "readings_refused"));
	}
	family(f, "powerhive_control_requests_total", "counter", "Requests on bus.control.");
	sample(f, "powerhive_control_requests_total", NULL, NULL,
	       (double)num(json_object_get(h, "control"), "requests"));
	json_decref(h);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
