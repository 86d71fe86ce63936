/* writer — see writer.h.
 *
 * One thread, one connection, prepared statements. The loop:
 *   wait for work → open a transaction → apply PATCHes first, then events,
 *   until batch_max events or batch_ms since the batch began → COMMIT →
 *   count, tell the feed → one retention step → again.
 * An event that fails to decode or names an unknown miner is rejected and
 * counted; it changes nothing. Should SQLite roll the whole transaction
 * back (disk full, I/O error), every event of the batch is counted as
 * rejected with "database error" and the batch starts over.
 */
#include "writer.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chips.h"
#include "event.h"
#include "feed.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "traffic.h"
#include "sched.h"
#include "store.h"

#define QUEUE_DEFAULT     16384
#define ERROR_MESSAGE_MAX 1024   /* miner_errors.message is cut to this */
#define PRUNE_EVERY_DEFAULT 10000

enum stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_MINER_GET, ST_MINER_CLEAR_IP, ST_MINER_UPSERT,
	ST_MINER_KEY,
	ST_MINER_ERROR, ST_ERROR_INSERT,
	ST_MODEL_GET_MAX, ST_MODEL_UPSERT, ST_PRESETS_DELETE, ST_PRESET_INSERT,
	ST_SWEEP_CLEAR, ST_SWEEP_ADD, ST_SWEEP_OFFLINE, ST_SWEEP_UPSERT,
	ST_STATUS_INSERT, ST_STATUS_MINER,
	ST_TELEMETRY_SOURCE, ST_TELEMETRY_MINER, ST_TELEMETRY_INSERT,
	ST_PATCH_MINER, ST_MODEL_EXISTS, ST_PRESET_EXISTS, ST_PATCH_MODEL, ST_AUDIT,
	ST_PRUNE_STATUSES, ST_PRUNE_TELEMETRY, ST_PRUNE_ERRORS, ST_PRUNE_AUDIT,
	ST_FIX_POINTERS,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_MINER_GET] = "SELECT ip, online FROM miners WHERE mac=?1",
	[ST_MINER_CLEAR_IP] =
		"UPDATE miners SET ip=NULL, online=0 WHERE ip=?1 AND mac<>?2 RETURNING mac",
	[ST_MINER_UPSERT] =
		"INSERT INTO miners(mac, ip, last_ip, subnet, model, miner_name, fw_name,"
		" fw_version, hostname, online, first_seen_ms, last_seen_ms)"
		" VALUES(?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)"
		" ON CONFLICT(mac) DO UPDATE SET ip=excluded.ip, last_ip=excluded.last_ip,"
		" subnet=coalesce(excluded.subnet, subnet), model=coalesce(excluded.model, model),"
		" miner_name=coalesce(excluded.miner_name, miner_name),"
		" fw_name=coalesce(excluded.fw_name, fw_name),"
		" fw_version=coalesce(excluded.fw_version, fw_version),"
		" hostname=coalesce(excluded.hostname, hostname), online=1,"
		" last_seen_ms=max(last_seen_ms, excluded.last_seen_ms)",
	[ST_MINER_KEY] = "UPDATE miners SET api_key=?2 WHERE mac=?1",
	[ST_MINER_ERROR] =
		"UPDATE miners SET last_error=?2, last_error_kind=?3, last_error_op=?4,"
		" last_error_ms=?5 WHERE mac=?1",
	[ST_ERROR_INSERT] =
		"INSERT INTO miner_errors(mac, ts_ms, op, kind, http_status, message)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_MODEL_GET_MAX] = "SELECT max_preset FROM models WHERE alias=?1",
	[ST_MODEL_UPSERT] =
		"INSERT INTO models(alias, name, fw_version, num_chains, chips_per_chain,"
		" topology, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT(alias) DO UPDATE SET name=excluded.name,"
		" fw_version=excluded.fw_version, num_chains=excluded.num_chains,"
		" chips_per_chain=excluded.chips_per_chain, topology=excluded.topology,"
		" updated_ms=excluded.updated_ms",
	[ST_PRESETS_DELETE] = "DELETE FROM model_presets WHERE model=?1",
	[ST_PRESET_INSERT] =
		"INSERT INTO model_presets(model, name, pretty, watts, th, ord, tuned)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_SWEEP_CLEAR] = "DELETE FROM temp.sweep_macs",
	[ST_SWEEP_ADD] = "INSERT OR IGNORE INTO temp.sweep_macs(mac) VALUES(?1)",
	[ST_SWEEP_OFFLINE] =
		"UPDATE miners SET ip=NULL, online=0 WHERE subnet=?1"
		" AND (online=1 OR ip IS NOT NULL)"
		" AND mac NOT IN (SELECT mac FROM temp.sweep_macs) RETURNING mac",
	[ST_SWEEP_UPSERT] =
		"INSERT INTO sweeps(subnet, ts_ms, duration_ms, probed, answered, miners,"
		" started_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT(subnet) DO UPDATE SET ts_ms=excluded.ts_ms,"
		" duration_ms=excluded.duration_ms, probed=excluded.probed,"
		" answered=excluded.answered, miners=excluded.miners,"
		" started_ms=excluded.started_ms",
	[ST_STATUS_INSERT] =
		"INSERT INTO statuses(mac, ts_ms, state, state_time, preset, hr_realtime_ghs,"
		" hr_average_ghs, hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w,"
		" power_metered, fan_duty, fans, chains, pools, hw_errors)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
	/* The pointer and the freshness in the same transaction as the row;
	 * a status result also clears a status error. */
	[ST_STATUS_MINER] =
		"UPDATE miners SET last_status_id=?2, last_seen_ms=max(last_seen_ms, ?3),"
		" last_error=CASE WHEN last_error_op='status' THEN NULL ELSE last_error END,"
		" last_error_kind=CASE WHEN last_error_op='status' THEN NULL ELSE last_error_kind END,"
		" last_error_ms=CASE WHEN last_error_op='status' THEN NULL ELSE last_error_ms END,"
		" last_error_op=CASE WHEN last_error_op='status' THEN NULL ELSE last_error_op END"
		" WHERE mac=?1",
	[ST_TELEMETRY_SOURCE] =
		"UPDATE miners SET telemetry_source=?2 WHERE mac=?1 AND telemetry_source IS NOT ?2",
	[ST_TELEMETRY_MINER] =
		"UPDATE miners SET last_telemetry_ms=max(coalesce(last_telemetry_ms, 0), ?2),"
		" last_error=CASE WHEN last_error_op='telemetry' THEN NULL ELSE last_error END,"
		" last_error_kind=CASE WHEN last_error_op='telemetry' THEN NULL ELSE last_error_kind END,"
		" last_error_ms=CASE WHEN last_error_op='telemetry' THEN NULL ELSE last_error_ms END,"
		" last_error_op=CASE WHEN last_error_op='telemetry' THEN NULL ELSE last_error_op END"
		" WHERE mac=?1",
	[ST_TELEMETRY_INSERT] =
		"INSERT INTO telemetry(mac, ts_ms, chain, state, hr_realtime_ghs, hr_nominal_ghs,"
		" freq, n_chips, chips) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_PATCH_MINER] =
		"UPDATE miners SET managed=CASE WHEN ?2 < 0 THEN managed ELSE ?2 END,"
		" unlock_pass=coalesce(?3, unlock_pass) WHERE mac=?1",
	[ST_MODEL_EXISTS] = "SELECT 1 FROM models WHERE alias=?1",
	[ST_PRESET_EXISTS] = "SELECT 1 FROM model_presets WHERE model=?1 AND name=?2",
	[ST_PATCH_MODEL] = "UPDATE models SET max_preset=?2, updated_ms=?3 WHERE alias=?1",
	[ST_AUDIT] =
		"INSERT INTO audit(ts_ms, actor, action, target, detail) VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_PRUNE_STATUSES] =
		"DELETE FROM statuses WHERE id IN"
		" (SELECT id FROM statuses WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
	[ST_PRUNE_TELEMETRY] =
		"DELETE FROM telemetry WHERE id IN"
		" (SELECT id FROM telemetry WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
	[ST_PRUNE_ERRORS] =
		"DELETE FROM miner_errors WHERE id IN"
		" (SELECT id FROM miner_errors WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
	[ST_PRUNE_AUDIT] =
		"DELETE FROM audit WHERE id IN"
		" (SELECT id FROM audit WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
	/* After statuses were pruned: no pointer to a row that is gone. */
	[ST_FIX_POINTERS] =
		"UPDATE miners SET last_status_id=NULL WHERE last_status_id IS NOT NULL"
		" AND NOT EXISTS (SELECT 1 FROM statuses s WHERE s.id=miners.last_status_id)",
};

struct qitem {
	struct hive_envelope env;
	struct apid_event ev;    /* decoded from env by the receive thread */
	struct apid_source *src;
	long long row_id;        /* status row, for the feed */
	bool ok;
};

enum patch_kind { PATCH_MINER, PATCH_MODEL };

struct patch {
	enum patch_kind kind;
	char key[128];           /* mac or alias */
	int managed;
	const char *unlock_pass;
	const char *max_preset;
	const char *actor;
	bool applied;            /* in the open transaction */
	bool done;
	int rc, http_status;
	char err[256];
	struct patch *next;
};

enum note_kind { NOTE_MINER, NOTE_MODEL, NOTE_STATUS };

/* What to tell the feed once the batch is committed. */
struct note {
	enum note_kind kind;
	char key[128];
	size_t item;             /* NOTE_STATUS: index in the batch */
};

/* Retention: one table per step, round robin. */
enum { PR_STATUSES, PR_TELEMETRY, PR_ERRORS, PR_AUDIT, PR_COUNT };

struct apid_writer {
	struct apid_writer_opts o;   /* guarded by mu after start */
	char db_path[4096];
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full, patch_done;
	struct qitem *q;
	size_t qcap, qhead, qlen;
	struct patch *patches, *patches_tail;
	bool stopping;
	struct apid_writer_stats stats;
	atomic_uint_least64_t roster_gen;

	/* writer thread only */
	struct qitem *batch;
	size_t nbatch, batch_cap;
	struct patch *applied;       /* patches in the open transaction */
	struct note *notes;
	size_t nnotes, notes_cap;
	bool roster_changed;
	int prune_table;
	int64_t next_prune_ms;
	bool fix_pointers;
};

/* ------------------------------------------------------------ helpers */

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_mono_ms)
{
	struct timespec ts = { .tv_sec = deadline_mono_ms / 1000,
			       .tv_nsec = (deadline_mono_ms % 1000) * 1000000L };

	pthread_cond_timedwait(c, mu, &ts);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

static void bind_int(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v) || v > 9.2e18 || v < -9.2e18)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, llround(v));
}

static void bind_json(sqlite3_stmt *st, int i, const json_t *j);

/* bind_json for a value of our own, released here. */
static void bind_json_owned(sqlite3_stmt *st, int i, json_t *j)
{
	bind_json(st, i, j);
	json_decref(j);
}

static void bind_ll(sqlite3_stmt *st, int i, long long v)
{
	if (v == HIVE_MSG_NO_INT)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* json_dumps into a bound parameter (SQLite frees it). */
static void bind_json(sqlite3_stmt *st, int i, const json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s)
		sqlite3_bind_text(st, i, s, -1, free);
	else
		sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no rows and resets it. Returns the
 * SQLite result (SQLITE_DONE on success). */
static int run(struct apid_writer *w, enum stmt s)
{
	int rc = sqlite3_step(w->st[s]);

	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	sqlite3_reset(w->st[s]);
	sqlite3_clear_bindings(w->st[s]);
	return rc;
}

static void reset(struct apid_writer *w, enum stmt s)
{
	sqlite3_reset(w->st[s]);
	sqlite3_clear_bindings(w->st[s]);
}

static int sql_failed(struct apid_writer *w, enum stmt s, int rc)
{
	hive_log_complain("writer sql", "writer sql failed stmt=\"%.48s\" rc=%d err=\"%s\"",
			  stmt_sql[s], rc, sqlite3_errmsg(w->db));
	return -1;
}

/* s failed while applying an event: the event is rejected as a database
 * error. -1. */
static int sql_reject(struct apid_writer *w, enum stmt s, int rc, enum apid_reject *why)
{
	*why = APID_REJ_DATABASE;
	return sql_failed(w, s, rc);
}

/* Runs s (no rows) for an event. 0, or -1 rejecting it. */
static int exec(struct apid_writer *w, enum stmt s, enum apid_reject *why)
{
	int rc = run(w, s);

	return rc == SQLITE_DONE ? 0 : sql_reject(w, s, rc, why);
}

/* Statement s with its key bound to ?1 (a MAC, an IP, an alias or a
 * subnet: every statement here starts with one). */
static sqlite3_stmt *keyed(struct apid_writer *w, enum stmt s, const char *key)
{
	sqlite3_bind_text(w->st[s], 1, key, -1, SQLITE_STATIC);
	return w->st[s];
}

static void note(struct apid_writer *w, enum note_kind kind, const char *key, size_t item)
{
	struct note *n;

	if (!w->o.feed)
		return;
	if (kind == NOTE_MINER && w->nnotes > 0) {
		/* Consecutive changes of one miner make one message. */
		n = &w->notes[w->nnotes - 1];
		if (n->kind == NOTE_MINER && strcmp(n->key, key) == 0)
			return;
	}
	if (w->nnotes == w->notes_cap) {
		size_t cap = w->notes_cap ? w->notes_cap * 2 : 256;
		struct note *nn = realloc(w->notes, cap * sizeof(*nn));

		if (!nn)
			return;    /* the feed is best effort */
		w->notes = nn;
		w->notes_cap = cap;
	}
	n = &w->notes[w->nnotes++];
	n->kind = kind;
	snprintf(n->key, sizeof(n->key), "%s", key);
	n->item = item;
}

static long long event_ts(const struct hive_envelope *env)
{
	return env->ts > 0 ? env->ts : hive_wall_ms();
}

/* ------------------------------------------------------------ events */

static int apply_seen(struct apid_writer *w, const struct hive_envelope *env,
		      const struct hive_msg_miner_seen *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	bool known = false, moved = false, back = false;
	int rc;

	st = keyed(w, ST_MINER_GET, e->mac);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 0);

		known = true;
		moved = !ip || strcmp(ip, e->ip) != 0;
		back = sqlite3_column_int(st, 1) == 0;
	}
	reset(w, ST_MINER_GET);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_reject(w, ST_MINER_GET, rc, why);

	/* Whoever held this IP before has moved: it is no longer there. */
	st = keyed(w, ST_MINER_CLEAR_IP, e->ip);
	sqlite3_bind_text(st, 2, e->mac, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *other = (const char *)sqlite3_column_text(st, 0);

		log_info("miner displaced mac=%s ip=%s by=%s", other ? other : "?", e->ip, e->mac);
		note(w, NOTE_MINER, other ? other : "", 0);
		w->roster_changed = true;
	}
	reset(w, ST_MINER_CLEAR_IP);
	if (rc != SQLITE_DONE)
		return sql_reject(w, ST_MINER_CLEAR_IP, rc, why);

	st = keyed(w, ST_MINER_UPSERT, e->mac);
	sqlite3_bind_text(st, 2, e->ip, -1, SQLITE_STATIC);
	bind_text(st, 3, e->subnet);
	bind_text(st, 4, e->model);
	bind_text(st, 5, e->miner);
	bind_text(st, 6, e->fw_name);
	bind_text(st, 7, e->fw_version);
	bind_text(st, 8, e->hostname);
	sqlite3_bind_int64(st, 9, event_ts(env));
	if (exec(w, ST_MINER_UPSERT, why) < 0)
		return -1;
	if (!known)
		log_info("miner new mac=%s ip=%s model=%s", e->mac, e->ip,
			 e->model && *e->model ? e->model : "-");
	else if (moved)
		log_info("miner moved mac=%s ip=%s", e->mac, e->ip);
	else if (back)
		log_info("miner online mac=%s ip=%s", e->mac, e->ip);
	if (!known || moved || back) {
		w->roster_changed = true;
		note(w, NOTE_MINER, e->mac, 0);
	}
	return 0;
}

/* Runs an UPDATE keyed by mac; an unknown miner changes nothing. */
static int update_miner(struct apid_writer *w, enum stmt s, enum apid_reject *why)
{
	if (exec(w, s, why) < 0)
		return -1;
	if (sqlite3_changes(w->db) == 0) {
		*why = APID_REJ_UNKNOWN_MINER;
		return -1;
	}
	return 0;
}

static int apply_key(struct apid_writer *w, const struct hive_msg_miner_key *e, enum apid_reject *why)
{
	hive_log_secret(e->api_key);
	sqlite3_bind_text(keyed(w, ST_MINER_KEY, e->mac), 2, e->api_key, -1, SQLITE_STATIC);
	if (update_miner(w, ST_MINER_KEY, why) < 0)
		return -1;
	w->roster_changed = true;
	note(w, NOTE_MINER, e->mac, 0);
	return 0;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 character. */
static int cut_utf8(const char *s, int max)
{
	int n = (int)strnlen(s, (size_t)max + 1);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* A miner's error message, cut to ERROR_MESSAGE_MAX bytes; NULL leaves
 * the parameter NULL. */
static void bind_message(sqlite3_stmt *st, int i, const char *msg)
{
	if (msg)
		sqlite3_bind_text(st, i, msg, cut_utf8(msg, ERROR_MESSAGE_MAX), SQLITE_STATIC);
}

static int apply_error(struct apid_writer *w, const struct hive_envelope *env,
		       const struct hive_msg_miner_error *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	long long ts = event_ts(env);

	if (!e->mac[0]) {
		if (w->o.traffic)
			apid_traffic_unattributed_error(w->o.traffic);
		return 0;
	}
	st = keyed(w, ST_MINER_ERROR, e->mac);
	bind_message(st, 2, e->message ? e->message : e->kind);
	sqlite3_bind_text(st, 3, e->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->op, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ts);
	if (update_miner(w, ST_MINER_ERROR, why) < 0)
		return -1;
	st = keyed(w, ST_ERROR_INSERT, e->mac);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, e->op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->kind, -1, SQLITE_STATIC);
	bind_ll(st, 5, e->http_status);
	bind_message(st, 6, e->message);
	if (exec(w, ST_ERROR_INSERT, why) < 0)
		return -1;
	note(w, NOTE_MINER, e->mac, 0);
	return 0;
}

static int apply_model(struct apid_writer *w, const struct hive_envelope *env,
		       const struct hive_msg_model_catalogue *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	char *old_max = NULL;
	bool offered = false;
	int rc, ret = -1;

	st = keyed(w, ST_MODEL_GET_MAX, e->model);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0))
		old_max = strdup((const char *)sqlite3_column_text(st, 0));
	reset(w, ST_MODEL_GET_MAX);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_reject(w, ST_MODEL_GET_MAX, rc, why);

	st = keyed(w, ST_MODEL_UPSERT, e->model);
	sqlite3_bind_text(st, 2, e->full_name && *e->full_name ? e->full_name : e->model, -1,
			  SQLITE_STATIC);
	bind_text(st, 3, e->fw_version);
	bind_ll(st, 4, e->num_chains);
	bind_ll(st, 5, e->chips_per_chain);
	bind_json_owned(st, 6, hive_msg_encode_part(HIVE_MSG_MODEL_CATALOGUE, e, &e->topology));
	sqlite3_bind_int64(st, 7, event_ts(env));
	if (exec(w, ST_MODEL_UPSERT, why) < 0)
		goto out;
	keyed(w, ST_PRESETS_DELETE, e->model);
	if (exec(w, ST_PRESETS_DELETE, why) < 0)
		goto out;
	for (size_t i = 0; i < e->n_presets; i++) {
		const struct hive_msg_preset *p = &e->presets[i];

		st = keyed(w, ST_PRESET_INSERT, e->model);
		sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
		bind_text(st, 3, p->pretty);
		bind_int(st, 4, p->watts);
		bind_real(st, 5, p->th);
		sqlite3_bind_int64(st, 6, p->order == HIVE_MSG_NO_INT ? (long long)i : p->order);
		sqlite3_bind_int(st, 7, p->tuned > 0);
		if (exec(w, ST_PRESET_INSERT, why) < 0)
			goto out;
		if (old_max && strcmp(old_max, p->name) == 0)
			offered = true;
	}
	if (old_max && !offered)
		log_warnx("model max_preset no longer offered model=%s max_preset=%s action=kept",
			  e->model, old_max);
	note(w, NOTE_MODEL, e->model, 0);
	ret = 0;
out:
	free(old_max);
	return ret;
}

static long long or0(long long v)
{
	return v == HIVE_MSG_NO_INT ? 0 : v;
}

static int apply_sweep(struct apid_writer *w, const struct hive_envelope *env,
		       const struct hive_msg_sweep_done *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	int rc, offline = 0;
	long long ts = event_ts(env);
	long long miners = e->miners == HIVE_MSG_NO_INT ? (long long)e->n_macs : e->miners;

	if (exec(w, ST_SWEEP_CLEAR, why) < 0)
		return -1;
	for (size_t i = 0; i < e->n_macs; i++) {
		sqlite3_bind_text(w->st[ST_SWEEP_ADD], 1, e->macs[i], -1, SQLITE_STATIC);
		if (exec(w, ST_SWEEP_ADD, why) < 0)
			return -1;
	}
	st = keyed(w, ST_SWEEP_OFFLINE, e->subnet);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);

		log_info("miner offline mac=%s subnet=%s", mac ? mac : "?", e->subnet);
		note(w, NOTE_MINER, mac ? mac : "", 0);
		offline++;
	}
	reset(w, ST_SWEEP_OFFLINE);
	if (rc != SQLITE_DONE)
		return sql_reject(w, ST_SWEEP_OFFLINE, rc, why);
	if (offline)
		w->roster_changed = true;
	st = keyed(w, ST_SWEEP_UPSERT, e->subnet);
	sqlite3_bind_int64(st, 2, ts);
	bind_ll(st, 3, e->duration_ms);
	bind_ll(st, 4, e->probed);
	bind_ll(st, 5, e->answered);
	sqlite3_bind_int64(st, 6, miners);
	bind_ll(st, 7, e->started);
	if (exec(w, ST_SWEEP_UPSERT, why) < 0)
		return -1;
	if (w->o.traffic)
		apid_traffic_sweep(w->o.traffic, e->subnet, ts, or0(e->started),
				   or0(e->duration_ms), or0(e->probed), or0(e->answered), miners);
	log_info("sweep stored subnet=%s seen=%zu offline=%d", e->subnet, e->n_macs, offline);
	return 0;
}

static int apply_status(struct apid_writer *w, struct qitem *it, size_t idx,
			const struct hive_msg_status_result *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	long long ts = event_ts(&it->env);
	int rc;

	if (w->o.sched && e->head.job > 0)
		apid_sched_job_done(w->o.sched, e->head.mac, e->head.job, true);
	st = keyed(w, ST_STATUS_INSERT, e->head.mac);
	sqlite3_bind_int64(st, 2, ts);
	bind_text(st, 3, e->state);
	bind_ll(st, 4, e->state_time);
	bind_text(st, 5, e->preset);
	bind_real(st, 6, e->hr_realtime_ghs);
	bind_real(st, 7, e->hr_average_ghs);
	bind_real(st, 8, e->hr_nominal_ghs);
	bind_int(st, 9, e->chip_temp_max);
	bind_int(st, 10, e->pcb_temp_max);
	bind_int(st, 11, e->power_w);
	if (e->power_metered >= 0)
		sqlite3_bind_int(st, 12, e->power_metered);
	bind_int(st, 13, e->fan_duty);
	bind_json_owned(st, 14, hive_msg_encode_part(HIVE_MSG_STATUS_RESULT, e, &e->fans));
	bind_json_owned(st, 15, hive_msg_encode_part(HIVE_MSG_STATUS_RESULT, e, &e->chains));
	bind_json_owned(st, 16, hive_msg_encode_part(HIVE_MSG_STATUS_RESULT, e, &e->pools));
	bind_ll(st, 17, e->hw_errors);
	rc = run(w, ST_STATUS_INSERT);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		*why = APID_REJ_UNKNOWN_MINER;
		return -1;
	}
	if (rc != SQLITE_DONE)
		return sql_reject(w, ST_STATUS_INSERT, rc, why);
	it->row_id = sqlite3_last_insert_rowid(w->db);
	st = keyed(w, ST_STATUS_MINER, e->head.mac);
	sqlite3_bind_int64(st, 2, it->row_id);
	sqlite3_bind_int64(st, 3, ts);
	if (update_miner(w, ST_STATUS_MINER, why) < 0)
		return -1;
	note(w, NOTE_STATUS, e->head.mac, idx);
	return 0;
}

static int apply_telemetry(struct apid_writer *w, const struct hive_envelope *env,
			   const struct apid_event *ev, enum apid_reject *why)
{
	const struct hive_msg_telemetry_result *e = &ev->u.telemetry;
	const char *mac = e->head.mac;
	sqlite3_stmt *st;
	long long ts = event_ts(env);

	if (w->o.sched && e->head.job > 0)
		apid_sched_job_done(w->o.sched, mac, e->head.job, true);
	sqlite3_bind_int64(keyed(w, ST_TELEMETRY_MINER, mac), 2, ts);
	if (update_miner(w, ST_TELEMETRY_MINER, why) < 0)
		return -1;
	sqlite3_bind_text(keyed(w, ST_TELEMETRY_SOURCE, mac), 2, e->source ? e->source : "chains",
			  -1, SQLITE_STATIC);
	if (exec(w, ST_TELEMETRY_SOURCE, why) < 0)
		return -1;
	if (sqlite3_changes(w->db) > 0)
		w->roster_changed = true;   /* the next jobs ask the other endpoint */
	for (size_t i = 0; i < e->n_chains; i++) {
		const struct hive_msg_chain_telemetry *c = &e->chains[i];
		const struct apid_packed_chips *p = &ev->packed[i];

		st = keyed(w, ST_TELEMETRY_INSERT, mac);
		sqlite3_bind_int64(st, 2, ts);
		sqlite3_bind_int64(st, 3, c->id);
		bind_text(st, 4, c->state);
		bind_real(st, 5, c->hr_realtime_ghs);
		bind_real(st, 6, c->hr_nominal_ghs);
		bind_real(st, 7, c->freq);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)p->n_chips);
		sqlite3_bind_blob(st, 9, p->blob, (int)(p->n_chips * APID_CHIP_BYTES), SQLITE_STATIC);
		if (exec(w, ST_TELEMETRY_INSERT, why) < 0)
			return -1;
	}
	return 0;
}

/* Applies one event inside the open transaction; 0 or -1 with the reason. */
static int apply_event(struct apid_writer *w, size_t idx, enum apid_reject *why)
{
	struct qitem *it = &w->batch[idx];
	struct apid_event *ev = &it->ev;
	int rc = 0;

	switch (ev->kind) {
	case HIVE_MSG_MINER_SEEN:  rc = apply_seen(w, &it->env, &ev->u.seen, why); break;
	case HIVE_MSG_MINER_KEY:   rc = apply_key(w, &ev->u.key, why); break;
	case HIVE_MSG_MINER_ERROR: rc = apply_error(w, &it->env, &ev->u.error, why); break;
	case HIVE_MSG_MODEL_CATALOGUE: rc = apply_model(w, &it->env, &ev->u.model, why); break;
	case HIVE_MSG_SWEEP_DONE:  rc = apply_sweep(w, &it->env, &ev->u.sweep, why); break;
	case HIVE_MSG_STATUS_RESULT: rc = apply_status(w, it, idx, &ev->u.status, why); break;
	case HIVE_MSG_TELEMETRY_RESULT: rc = apply_telemetry(w, &it->env, ev, why); break;
	case HIVE_MSG_JOB_FAILED:
		if (w->o.sched)
			apid_sched_job_done(w->o.sched, ev->u.job_failed.mac, ev->u.job_failed.job,
					    false);
		break;
	case HIVE_MSG_HEARTBEAT:
		if (w->o.traffic)
			apid_traffic_heartbeat(w->o.traffic, &it->env, &ev->u.heartbeat);
		break;
	default:
		*why = APID_REJ_UNKNOWN_TOPIC;
		rc = -1;
		break;
	}
	if (rc < 0 && *why == APID_REJ_UNKNOWN_MINER) {
		char key[HIVE_SOURCE_MAX + HIVE_TOPIC_MAX + 24];

		snprintf(key, sizeof(key), "%s %s unknown", it->env.src, it->env.topic);
		hive_log_complain(key, "event rejected src=%s topic=%s seq=%llu reason=\"unknown miner\"",
				  it->env.src, it->env.topic, it->env.seq);
	}
	return rc;
}

/* ------------------------------------------------------------ patches */

static void patch_fail(struct patch *p, int status, const char *fmt, const char *arg)
{
	p->rc = -1;
	p->http_status = status;
	snprintf(p->err, sizeof(p->err), fmt, arg);
}

static int audit(struct apid_writer *w, const char *actor, const char *action,
		 const char *target, json_t *detail)
{
	sqlite3_stmt *st = w->st[ST_AUDIT];
	int rc;

	sqlite3_bind_int64(st, 1, hive_wall_ms());
	sqlite3_bind_text(st, 2, actor && *actor ? actor : "api", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, target, -1, SQLITE_STATIC);
	bind_json(st, 5, detail);
	rc = run(w, ST_AUDIT);
	return rc == SQLITE_DONE ? 0 : sql_failed(w, ST_AUDIT, rc);
}

static void apply_patch_miner(struct apid_writer *w, struct patch *p)
{
	sqlite3_stmt *st = keyed(w, ST_PATCH_MINER, p->key);
	json_t *detail;
	int rc;

	sqlite3_bind_int(st, 2, p->managed);
	if (p->unlock_pass)
		sqlite3_bind_text(st, 3, p->unlock_pass, -1, SQLITE_STATIC);
	rc = run(w, ST_PATCH_MINER);
	if (rc != SQLITE_DONE) {
		sql_failed(w, ST_PATCH_MINER, rc);
		patch_fail(p, 503, "database error%s", "");
		return;
	}
	if (sqlite3_changes(w->db) == 0) {
		patch_fail(p, 404, "unknown miner %s", p->key);
		return;
	}
	detail = json_object();
	if (p->managed >= 0)
		json_object_set_new(detail, "managed", json_boolean(p->managed));
	if (p->unlock_pass)
		json_object_set_new(detail, "unlock_pass", json_string("***"));
	rc = audit(w, p->actor, "miner.patch", p->key, detail);
	json_decref(detail);
	if (rc < 0) {
		patch_fail(p, 503, "database error%s", "");
		return;
	}
	if (p->managed >= 0)
		w->roster_changed = true;
	note(w, NOTE_MINER, p->key, 0);
	p->rc = 0;
}

static int exists(struct apid_writer *w, enum stmt s, const char *a, const char *b)
{
	sqlite3_stmt *st = keyed(w, s, a);
	int rc;

	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	reset(w, s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sql_failed(w, s, rc);
}

static void apply_patch_model(struct apid_writer *w, struct patch *p)
{
	sqlite3_stmt *st;
	json_t *detail;
	int rc;

	rc = exists(w, ST_MODEL_EXISTS, p->key, NULL);
	if (rc <= 0) {
		patch_fail(p, rc < 0 ? 503 : 404, rc < 0 ? "database error%s" : "unknown model %s",
			   rc < 0 ? "" : p->key);
		return;
	}
	if (p->max_preset) {
		rc = exists(w, ST_PRESET_EXISTS, p->key, p->max_preset);
		if (rc < 0) {
			patch_fail(p, 503, "database error%s", "");
			return;
		}
		if (rc == 0) {
			p->rc = -1;
			p->http_status = 422;
			snprintf(p->err, sizeof(p->err), "max_preset: \"%.64s\" is not a preset of %.64s",
				 p->max_preset, p->key);
			return;
		}
	}
	st = keyed(w, ST_PATCH_MODEL, p->key);
	bind_text(st, 2, p->max_preset);
	sqlite3_bind_int64(st, 3, hive_wall_ms());
	rc = run(w, ST_PATCH_MODEL);
	detail = json_pack("{s:s?}", "max_preset", p->max_preset);
	if (rc != SQLITE_DONE || audit(w, p->actor, "model.patch", p->key, detail) < 0) {
		if (rc != SQLITE_DONE)
			sql_failed(w, ST_PATCH_MODEL, rc);
		json_decref(detail);
		patch_fail(p, 503, "database error%s", "");
		return;
	}
	json_decref(detail);
	note(w, NOTE_MODEL, p->key, 0);
	p->rc = 0;
}

/* ------------------------------------------------------------ batches */

static void finish_patches(struct apid_writer *w, bool committed)
{
	struct patch *p, *next;

	pthread_mutex_lock(&w->mu);
	for (p = w->applied; p; p = next) {
		next = p->next;
		if (!committed && p->rc == 0)
			patch_fail(p, 503, "database error: not committed%s", "");
		if (committed && p->rc == 0) {
			w->stats.patches++;
			log_info("%s patched target=%s actor=%s",
				 p->kind == PATCH_MINER ? "miner" : "model", p->key,
				 p->actor && *p->actor ? p->actor : "api");
		}
		p->done = true;
	}
	w->applied = NULL;
	pthread_cond_broadcast(&w->patch_done);
	pthread_mutex_unlock(&w->mu);
}

/* The open transaction was rolled back under us: nothing of the batch so
 * far is stored. Counts it and starts a new transaction. */
static void batch_lost(struct apid_writer *w, size_t upto)
{
	uint64_t n = 0;

	for (size_t i = 0; i < upto; i++) {
		if (!w->batch[i].ok)
			continue;
		w->batch[i].ok = false;
		if (w->o.traffic)
			apid_traffic_rejected(w->o.traffic, w->batch[i].src, APID_REJ_DATABASE);
		n++;
	}
	for (struct patch *p = w->applied; p; p = p->next)
		if (p->rc == 0)
			patch_fail(p, 503, "database error: rolled back%s", "");
	w->nnotes = 0;
	w->roster_changed = false;
	pthread_mutex_lock(&w->mu);
	w->stats.rejected += n;
	pthread_mutex_unlock(&w->mu);
	log_errx("writer transaction rolled back events_lost=%llu err=\"%s\"",
		 (unsigned long long)n, sqlite3_errmsg(w->db));
	run(w, ST_BEGIN);
}

/* After COMMIT: counters, the feed, the roster generation. */
static void batch_done(struct apid_writer *w, bool committed, int64_t t0)
{
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
		for (i = 0; i < w->nnotes; i++) {
			struct note *n = &w->notes[i];

			if (n->kind == NOTE_MINER) {
				apid_feed_miner(w->o.feed, n->key);
			} else if (n->kind == NOTE_MODEL) {
				apid_feed_model(w->o.feed, n->key);
			} else {
				struct qitem *it = &w->batch[n->item];

				apid_feed_status(w->o.feed, n->key, it->row_id, event_ts(&it->env),
						 it->env.body);
				it->env.body = NULL;
			}
		}
	}
	if (committed && w->roster_changed)
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
			  last_topic, last_seq, (long long)(hive_now_ms() - t0));
	for (i = 0; i < w->nbatch; i++) {
		apid_event_clear(&w->batch[i].ev);
		hive_envelope_clear(&w->batch[i].env);
	}
	w->nbatch = 0;
	w->nnotes = 0;
	w->roster_changed = false;
	finish_patches(w, committed);
}

/* One transaction: PATCHes first, then events until batch_max or batch_ms. */
static void run_batch(struct apid_writer *w)
{
	int64_t t0 = hive_now_ms(), deadline;
	int batch_max, rc;
	bool force = false;

	pthread_mutex_lock(&w->mu);
	batch_max = w->o.batch_max;
	deadline = t0 + w->o.batch_ms;
	pthread_mutex_unlock(&w->mu);
	if ((rc = run(w, ST_BEGIN)) != SQLITE_DONE) {
		sql_failed(w, ST_BEGIN, rc);
		/* Leave the queue alone; try again shortly. */
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		return;
	}
	for (;;) {
		struct patch *ps = NULL;
		size_t first = w->nbatch, n;

		pthread_mutex_lock(&w->mu);
		for (;;) {
			ps = w->patches;
			n = w->qlen;
			if ((size_t)batch_max - w->nbatch < n)
				n = (size_t)batch_max - w->nbatch;
			if (ps || n || force || w->stopping || w->nbatch >= (size_t)batch_max ||
			    hive_now_ms() >= deadline)
				break;
			timed_wait(&w->not_empty, &w->mu, deadline);
		}
		w->patches = w->patches_tail = NULL;
		for (size_t i = 0; i < n; i++) {
			w->batch[w->nbatch++] = w->q[w->qhead];
			w->qhead = (w->qhead + 1) % w->qcap;
		}
		w->qlen -= n;
		w->stats.events += n;
		if (n)
			pthread_cond_broadcast(&w->not_full);
		pthread_mutex_unlock(&w->mu);

		while (ps) {
			struct patch *p = ps;

			ps = p->next;
			p->rc = 0;
			if (p->kind == PATCH_MINER)
				apply_patch_miner(w, p);
			else
				apply_patch_model(w, p);
			p->applied = true;
			p->next = w->applied;
			w->applied = p;
			if (sqlite3_get_autocommit(w->db))
				batch_lost(w, w->nbatch);
			force = true;   /* a PATCH waits: commit at once */
		}
		for (size_t i = first; i < w->nbatch; i++) {
			struct qitem *it = &w->batch[i];
			enum apid_reject why = APID_REJ_DATABASE;

			it->row_id = 0;
			it->ok = apply_event(w, i, &why) == 0;
			if (!it->ok) {
				if (w->o.traffic)
					apid_traffic_rejected(w->o.traffic, it->src, why);
				pthread_mutex_lock(&w->mu);
				w->stats.rejected++;
				pthread_mutex_unlock(&w->mu);
			}
			if (sqlite3_get_autocommit(w->db))
				batch_lost(w, i + 1);
		}
		if (force || w->nbatch >= (size_t)batch_max || hive_now_ms() >= deadline ||
		    (w->stopping && n == 0))
			break;
	}
	rc = run(w, ST_COMMIT);
	if (rc != SQLITE_DONE) {
		sql_failed(w, ST_COMMIT, rc);
		if (!sqlite3_get_autocommit(w->db))
			run(w, ST_ROLLBACK);
		log_errx("batch not committed events=%zu err=\"%s\"", w->nbatch,
			 sqlite3_errmsg(w->db));
	}
	batch_done(w, rc == SQLITE_DONE, t0);
}

/* ------------------------------------------------------------ retention */

static void prune_step(struct apid_writer *w, int64_t now)
{
	static const enum stmt stmts[PR_COUNT] = {
		ST_PRUNE_STATUSES, ST_PRUNE_TELEMETRY, ST_PRUNE_ERRORS, ST_PRUNE_AUDIT
	};
	static const char *const names[PR_COUNT] = { "statuses", "telemetry", "miner_errors",
						     "audit" };
	int t = w->prune_table, days, limit, rc, deleted = 0;

	pthread_mutex_lock(&w->mu);
	days = t == PR_STATUSES ? w->o.status_days : t == PR_AUDIT ? w->o.audit_days
								   : w->o.telemetry_days;
	limit = w->o.prune_batch > 0 ? w->o.prune_batch : 2000;
	pthread_mutex_unlock(&w->mu);

	if (days > 0) {
		sqlite3_stmt *st = w->st[stmts[t]];

		sqlite3_bind_int64(st, 1, hive_wall_ms() - (int64_t)days * 86400000LL);
		sqlite3_bind_int(st, 2, limit);
		rc = run(w, stmts[t]);
		if (rc != SQLITE_DONE) {
			sql_failed(w, stmts[t], rc);
		} else {
			deleted = sqlite3_changes(w->db);
		}
		if (deleted) {
			pthread_mutex_lock(&w->mu);
			if (t == PR_STATUSES)
				w->stats.pruned_statuses += (uint64_t)deleted;
			else if (t == PR_TELEMETRY)
				w->stats.pruned_telemetry += (uint64_t)deleted;
			else if (t == PR_ERRORS)
				w->stats.pruned_errors += (uint64_t)deleted;
			else
				w->stats.pruned_audit += (uint64_t)deleted;
			pthread_mutex_unlock(&w->mu);
			log_debug("retention pruned table=%s rows=%d days=%d", names[t], deleted,
				  days);
			if (t == PR_STATUSES)
				w->fix_pointers = true;
		}
	}
	if (deleted >= limit)
		return;    /* more of this table: another step after the next batch */
	if (t == PR_STATUSES && w->fix_pointers) {
		w->fix_pointers = false;
		if ((rc = run(w, ST_FIX_POINTERS)) != SQLITE_DONE)
			sql_failed(w, ST_FIX_POINTERS, rc);
	}
	w->prune_table = (t + 1) % PR_COUNT;
	if (w->prune_table == 0) {
		pthread_mutex_lock(&w->mu);
		w->next_prune_ms = now + (w->o.prune_every_ms > 0 ? w->o.prune_every_ms
								    : PRUNE_EVERY_DEFAULT);
		pthread_mutex_unlock(&w->mu);
	}
}

/* ------------------------------------------------------------ thread */

static void *writer_main(void *arg)
{
	struct apid_writer *w = arg;

	for (;;) {
		bool work, prune;
		int64_t now;

		pthread_mutex_lock(&w->mu);
		for (;;) {
			now = hive_now_ms();
			work = w->qlen > 0 || w->patches;
			prune = now >= w->next_prune_ms;
			if (work || prune || w->stopping)
				break;
			timed_wait(&w->not_empty, &w->mu, w->next_prune_ms);
		}
		if (w->stopping && !work) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		pthread_mutex_unlock(&w->mu);
		if (work)
			run_batch(w);
		if (prune && !w->stopping)
			prune_step(w, hive_now_ms());
	}
	return NULL;
}

/* ------------------------------------------------------------ API */

static void load_sweeps(struct apid_writer *w)
{
	sqlite3_stmt *st;

	if (!w->o.traffic ||
	    sqlite3_prepare_v2(w->db, "SELECT subnet, ts_ms, coalesce(started_ms, 0),"
			       " coalesce(duration_ms, 0), coalesce(probed, 0),"
			       " coalesce(answered, 0), coalesce(miners, 0) FROM sweeps",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		apid_traffic_sweep(w->o.traffic, (const char *)sqlite3_column_text(st, 0),
				  sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
				  sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
				  sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6));
	sqlite3_finalize(st);
}

static void writer_free(struct apid_writer *w)
{
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(w->st[i]);
	if (w->db && sqlite3_close(w->db) != SQLITE_OK)
		log_warnx("database close failed err=\"%s\"", sqlite3_errmsg(w->db));
	for (size_t i = 0; i < w->qlen; i++) {
		apid_event_clear(&w->q[(w->qhead + i) % w->qcap].ev);
		hive_envelope_clear(&w->q[(w->qhead + i) % w->qcap].env);
	}
	free(w->q);
	free(w->batch);
	free(w->notes);
	pthread_cond_destroy(&w->not_empty);
	pthread_cond_destroy(&w->not_full);
	pthread_cond_destroy(&w->patch_done);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

struct apid_writer *apid_writer_start(const struct apid_writer_opts *o, char *err,
				      size_t errlen)
{
	struct apid_writer *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
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
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->not_empty, &ca);
	pthread_cond_init(&w->not_full, &ca);
	pthread_cond_init(&w->patch_done, &ca);
	pthread_condattr_destroy(&ca);
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
	if (apid_store_exec(w->db, "CREATE TEMP TABLE IF NOT EXISTS sweep_macs"
			    "(mac TEXT PRIMARY KEY)", "writer", err, errlen) < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(w->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &w->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "writer: preparing statement %d: %s", i,
				 sqlite3_errmsg(w->db));
			goto fail;
		}
	}
	load_sweeps(w);
	/* The first retention pass: prune_first_ms after start. */
	w->next_prune_ms = hive_now_ms() + (w->o.prune_first_ms > 0 ? w->o.prune_first_ms
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
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->not_empty);
	pthread_cond_broadcast(&w->not_full);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	/* PATCHes that came after the last batch. */
	pthread_mutex_lock(&w->mu);
	for (struct patch *p = w->patches; p; p = p->next) {
		patch_fail(p, 503, "apid is stopping%s", "");
		p->done = true;
	}
	w->patches = NULL;
	pthread_cond_broadcast(&w->patch_done);
	pthread_mutex_unlock(&w->mu);
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

void apid_writer_configure(struct apid_writer *w, const struct apid_writer_opts *o)
{
	pthread_mutex_lock(&w->mu);
	/* The batch array was sized at start: batch_max may only shrink. */
	w->o.batch_max = o->batch_max < 1 ? 1
			 : (size_t)o->batch_max > w->batch_cap ? (int)w->batch_cap
							       : o->batch_max;
	w->o.batch_ms = o->batch_ms < 0 ? 0 : o->batch_ms;
	w->o.status_days = o->status_days;
	w->o.telemetry_days = o->telemetry_days;
	w->o.audit_days = o->audit_days;
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

uint64_t apid_writer_roster_gen(struct apid_writer *w)
{
	return atomic_load(&w->roster_gen);
}

/* Queues p ahead of the events and waits for its commit. */
static int patch_submit(struct apid_writer *w, struct patch *p, int *http_status, char *err,
			size_t errlen)
{
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		*http_status = 503;
		snprintf(err, errlen, "apid is stopping");
		return -1;
	}
	p->next = NULL;
	if (w->patches_tail)
		w->patches_tail->next = p;
	else
		w->patches = p;
	w->patches_tail = p;
	pthread_cond_signal(&w->not_empty);
	while (!p->done)
		pthread_cond_wait(&w->patch_done, &w->mu);
	pthread_mutex_unlock(&w->mu);
	if (p->rc < 0) {
		*http_status = p->http_status;
		snprintf(err, errlen, "%s", p->err);
		return -1;
	}
	return 0;
}

int apid_writer_patch_miner(struct apid_writer *w, const char *mac, int managed,
			    const char *unlock_pass, const char *actor, int *http_status,
			    char *err, size_t errlen)
{
	struct patch p = { .kind = PATCH_MINER, .managed = managed,
			   .unlock_pass = unlock_pass, .actor = actor };
	char norm[HIVE_MAC_LEN];

	if (!mac || hive_mac_normalise(mac, norm) < 0) {
		*http_status = 404;
		snprintf(err, errlen, "unknown miner %.40s", mac ? mac : "");
		return -1;
	}
	if (managed < -1 || managed > 1) {
		*http_status = 422;
		snprintf(err, errlen, "managed: expected true or false");
		return -1;
	}
	if (unlock_pass && !*unlock_pass) {
		*http_status = 422;
		snprintf(err, errlen, "unlock_pass: must not be empty");
		return -1;
	}
	if (unlock_pass && strlen(unlock_pass) > 256) {
		*http_status = 422;
		snprintf(err, errlen, "unlock_pass: longer than 256 characters");
		return -1;
	}
	if (managed < 0 && !unlock_pass) {
		*http_status = 422;
		snprintf(err, errlen, "nothing to change: expected managed or unlock_pass");
		return -1;
	}
	if (unlock_pass)
		hive_log_secret(unlock_pass);
	snprintf(p.key, sizeof(p.key), "%s", norm);
	return patch_submit(w, &p, http_status, err, errlen);
}

int apid_writer_patch_model(struct apid_writer *w, const char *alias, const char *max_preset,
			    const char *actor, int *http_status, char *err, size_t errlen)
{
	struct patch p = { .kind = PATCH_MODEL, .max_preset = max_preset, .actor = actor };

	if (!alias || !*alias || strlen(alias) >= sizeof(p.key)) {
		*http_status = 404;
		snprintf(err, errlen, "unknown model %.64s", alias ? alias : "");
		return -1;
	}
	if (max_preset && (!*max_preset || strlen(max_preset) > 64)) {
		*http_status = 422;
		snprintf(err, errlen, "max_preset: not a preset name");
		return -1;
	}
	snprintf(p.key, sizeof(p.key), "%s", alias);
	return patch_submit(w, &p, http_status, err, errlen);
}
