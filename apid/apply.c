/* apply — see apply.h.
 *
 * One statement per change, prepared once; every function runs inside the
 * writer's open transaction and reports a failed statement as a database
 * error (the writer notices when SQLite rolled the whole transaction back).
 */
#include "apply.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chips.h"
#include "guard.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "sched.h"
#include "secrets.h"
#include "store.h"
#include "traffic.h"

#define ERROR_MESSAGE_MAX 1024   /* miner_errors.message is cut to this */

enum stmt {
	ST_MINER_GET, ST_MINER_CLEAR_IP, ST_MINER_UPSERT,
	ST_MINER_KEY,
	ST_MINER_ERROR, ST_ERROR_INSERT,
	ST_MODEL_GET_MAX, ST_MODEL_UPSERT, ST_PRESETS_DELETE, ST_PRESET_INSERT,
	ST_SWEEP_CLEAR, ST_SWEEP_ADD, ST_SWEEP_OFFLINE, ST_SWEEP_KEPT, ST_SWEEP_SEEN,
	ST_SWEEP_STRANGERS, ST_SWEEP_UPSERT, ST_SWEEP_WOULD_DROP, ST_SUBNET_ONLINE,
	ST_STATUS_INSERT, ST_STATUS_MINER,
	ST_TELEMETRY_SOURCE, ST_TELEMETRY_MINER, ST_TELEMETRY_INSERT,
	ST_PATCH_MINER, ST_MODEL_EXISTS, ST_PRESET_EXISTS, ST_PATCH_MODEL, ST_AUDIT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
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
	/* Not listed, and no status or telemetry answer since ?2 (the offline
	 * rule, see sweep_cutoff). */
	[ST_SWEEP_OFFLINE] =
		"UPDATE miners SET ip=NULL, online=0 WHERE subnet=?1"
		" AND (online=1 OR ip IS NOT NULL)"
		" AND mac NOT IN (SELECT mac FROM temp.sweep_macs)"
		" AND coalesce(last_telemetry_ms, 0) < ?2"
		" AND coalesce((SELECT ts_ms FROM statuses WHERE id=miners.last_status_id), 0) < ?2"
		" RETURNING mac",
	/* What ST_SWEEP_OFFLINE would take offline, and of how many. */
	[ST_SWEEP_WOULD_DROP] =
		"SELECT count(*) FROM miners WHERE subnet=?1"
		" AND (online=1 OR ip IS NOT NULL)"
		" AND mac NOT IN (SELECT mac FROM temp.sweep_macs)"
		" AND coalesce(last_telemetry_ms, 0) < ?2"
		" AND coalesce((SELECT ts_ms FROM statuses WHERE id=miners.last_status_id), 0) < ?2",
	[ST_SUBNET_ONLINE] =
		"SELECT count(*) FROM miners WHERE subnet=?1 AND (online=1 OR ip IS NOT NULL)",
	/* What the sweep did not list and ST_SWEEP_OFFLINE left online. */
	[ST_SWEEP_KEPT] =
		"SELECT mac FROM miners WHERE subnet=?1 AND (online=1 OR ip IS NOT NULL)"
		" AND mac NOT IN (SELECT mac FROM temp.sweep_macs)",
	/* Listed, but no online miner here: a seen that never arrived. */
	[ST_SWEEP_STRANGERS] =
		"SELECT mac FROM temp.sweep_macs"
		" WHERE mac NOT IN (SELECT mac FROM miners WHERE online=1)",
	/* Listed: seen now, unless a status said so since the sweep began. */
	[ST_SWEEP_SEEN] =
		"UPDATE miners SET last_seen_ms=?2 WHERE subnet=?1 AND online=1"
		" AND last_seen_ms < ?3 AND mac IN (SELECT mac FROM temp.sweep_macs)",
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
		" power_metered, fan_duty, fans, chains, pools, hw_errors, state_description)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
		" ?18)",
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
		" freq, n_chips, chips, chips_format)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_PATCH_MINER] =
		"UPDATE miners SET managed=CASE WHEN ?2 < 0 THEN managed ELSE ?2 END,"
		" unlock_pass=coalesce(?3, unlock_pass) WHERE mac=?1",
	[ST_MODEL_EXISTS] = "SELECT 1 FROM models WHERE alias=?1",
	[ST_PRESET_EXISTS] = "SELECT 1 FROM model_presets WHERE model=?1 AND name=?2",
	[ST_PATCH_MODEL] = "UPDATE models SET max_preset=?2, updated_ms=?3 WHERE alias=?1",
	[ST_AUDIT] =
		"INSERT INTO audit(ts_ms, actor, action, target, detail) VALUES(?1, ?2, ?3, ?4, ?5)",
};

/* A subnet's sweep whose list comes in chunks, waiting for the others. */
struct sweep_parts {
	struct sweep_parts *next;
	char src[HIVE_SOURCE_MAX];
	struct hive_msg_sweep_done head;    /* the figures; macs below */
	unsigned char *have;                /* have[i]: chunk i + 1 arrived */
	long long got;
	char (*macs)[HIVE_MAC_LEN];
	size_t n_macs, cap_macs;
	long long last_ts;                  /* event time of the latest chunk */
};

struct apid_apply {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct apid_traffic *traffic;
	struct apid_sched *sched;
	struct apid_guard *guard;           /* sweeps held for confirmation; may be NULL */
	const struct apid_secrets *secrets; /* seals keys and passwords; NULL stores none */
	bool want_notes;
	struct apid_changes changes;
	struct sweep_parts *parts;          /* chunked sweeps not complete yet */
	size_t n_parts;
};

/* ------------------------------------------------------------ helpers */

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

/* The SQL helpers of apply.h take the statement, so the writer uses them on
 * its own statements too. */
int apid_apply_step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int apid_apply_failed(sqlite3_stmt *st, int rc)
{
	hive_log_complain("writer sql", "writer sql failed stmt=\"%.48s\" rc=%d err=\"%s\"",
			  sqlite3_sql(st), rc, sqlite3_errmsg(sqlite3_db_handle(st)));
	return -1;
}

int apid_apply_prepare(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n,
		       const char *who, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i],
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: preparing statement %d: %s", who, i,
				 sqlite3_errmsg(db));
			while (i-- > 0) {
				sqlite3_finalize(st[i]);
				st[i] = NULL;
			}
			return -1;
		}
	}
	return 0;
}

static int run(struct apid_apply *a, enum stmt s)
{
	return apid_apply_step(a->st[s]);
}

static void reset(struct apid_apply *a, enum stmt s)
{
	sqlite3_reset(a->st[s]);
	sqlite3_clear_bindings(a->st[s]);
}

static int sql_failed(struct apid_apply *a, enum stmt s, int rc)
{
	return apid_apply_failed(a->st[s], rc);
}

/* s failed while applying an event: the event is rejected as a database
 * error. -1. */
static int sql_reject(struct apid_apply *a, enum stmt s, int rc, enum apid_reject *why)
{
	*why = APID_REJ_DATABASE;
	return sql_failed(a, s, rc);
}

/* Runs s (no rows) for an event. 0, or -1 rejecting it. */
static int exec(struct apid_apply *a, enum stmt s, enum apid_reject *why)
{
	int rc = run(a, s);

	return rc == SQLITE_DONE ? 0 : sql_reject(a, s, rc, why);
}

/* Statement s with its key bound to ?1 (a MAC, an IP, an alias or a
 * subnet: every statement here starts with one). */
static sqlite3_stmt *keyed(struct apid_apply *a, enum stmt s, const char *key)
{
	sqlite3_bind_text(a->st[s], 1, key, -1, SQLITE_STATIC);
	return a->st[s];
}

static void add_note(struct apid_apply *a, enum apid_note_kind kind, const char *key,
			size_t item, long long row_id)
{
	struct apid_changes *c = &a->changes;
	struct apid_note *n;

	if (!a->want_notes)
		return;
	if (kind == APID_NOTE_MINER && c->n_notes > 0) {
		/* Consecutive changes of one miner make one message. */
		n = &c->notes[c->n_notes - 1];
		if (n->kind == APID_NOTE_MINER && strcmp(n->key, key) == 0)
			return;
	}
	if (c->n_notes == c->notes_cap) {
		size_t cap = c->notes_cap ? c->notes_cap * 2 : 256;
		struct apid_note *nn = realloc(c->notes, cap * sizeof(*nn));

		if (!nn)
			return;    /* the feed is best effort */
		c->notes = nn;
		c->notes_cap = cap;
	}
	n = &c->notes[c->n_notes++];
	n->kind = kind;
	snprintf(n->key, sizeof(n->key), "%s", key);
	n->item = item;
	n->row_id = row_id;
}

/* A changed miner or model row for the feed. */
static void note(struct apid_apply *a, enum apid_note_kind kind, const char *key)
{
	add_note(a, kind, key, 0, 0);
}

long long apid_apply_event_ts(const struct hive_envelope *env)
{
	return env->ts > 0 ? env->ts : hive_wall_ms();
}

/* ------------------------------------------------------------ events */

static int apply_seen(struct apid_apply *a, const struct hive_envelope *env,
		      const struct hive_msg_miner_seen *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	bool known = false, moved = false, back = false;
	int rc;

	st = keyed(a, ST_MINER_GET, e->mac);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ip = (const char *)sqlite3_column_text(st, 0);

		known = true;
		moved = !ip || strcmp(ip, e->ip) != 0;
		back = sqlite3_column_int(st, 1) == 0;
	}
	reset(a, ST_MINER_GET);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_reject(a, ST_MINER_GET, rc, why);

	/* Whoever held this IP before has moved: it is no longer there. */
	st = keyed(a, ST_MINER_CLEAR_IP, e->ip);
	sqlite3_bind_text(st, 2, e->mac, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *other = (const char *)sqlite3_column_text(st, 0);

		log_info("miner displaced mac=%s ip=%s by=%s", other ? other : "?", e->ip, e->mac);
		note(a, APID_NOTE_MINER, other ? other : "");
		a->changes.roster = true;
	}
	reset(a, ST_MINER_CLEAR_IP);
	if (rc != SQLITE_DONE)
		return sql_reject(a, ST_MINER_CLEAR_IP, rc, why);

	st = keyed(a, ST_MINER_UPSERT, e->mac);
	sqlite3_bind_text(st, 2, e->ip, -1, SQLITE_STATIC);
	bind_text(st, 3, e->subnet);
	bind_text(st, 4, e->model);
	bind_text(st, 5, e->miner);
	bind_text(st, 6, e->fw_name);
	bind_text(st, 7, e->fw_version);
	bind_text(st, 8, e->hostname);
	sqlite3_bind_int64(st, 9, apid_apply_event_ts(env));
	if (exec(a, ST_MINER_UPSERT, why) < 0)
		return -1;
	if (!known)
		log_info("miner new mac=%s ip=%s model=%s", e->mac, e->ip,
			 e->model && *e->model ? e->model : "-");
	else if (moved)
		log_info("miner moved mac=%s ip=%s", e->mac, e->ip);
	else if (back)
		log_info("miner online mac=%s ip=%s", e->mac, e->ip);
	if (!known || moved || back) {
		a->changes.roster = true;
		note(a, APID_NOTE_MINER, e->mac);
	}
	return 0;
}

/* Runs an UPDATE keyed by mac; an unknown miner changes nothing. */
static int update_miner(struct apid_apply *a, enum stmt s, enum apid_reject *why)
{
	if (exec(a, s, why) < 0)
		return -1;
	if (sqlite3_changes(a->db) == 0) {
		*why = APID_REJ_UNKNOWN_MINER;
		return -1;
	}
	return 0;
}

static int apply_key(struct apid_apply *a, const struct hive_msg_miner_key *e, enum apid_reject *why)
{
	char *sealed;

	hive_log_secret(e->api_key);
	/* Only ever stored sealed (secrets.h). */
	if (!a->secrets || !(sealed = apid_secrets_seal(a->secrets, "api_key", e->mac,
							 e->api_key ? e->api_key : ""))) {
		log_errx("miner key not stored: cannot encrypt it mac=%s", e->mac);
		*why = APID_REJ_DATABASE;
		return -1;
	}
	sqlite3_bind_text(keyed(a, ST_MINER_KEY, e->mac), 2, sealed, -1, free);
	if (update_miner(a, ST_MINER_KEY, why) < 0)
		return -1;
	a->changes.roster = true;
	note(a, APID_NOTE_MINER, e->mac);
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

static int apply_error(struct apid_apply *a, const struct hive_envelope *env,
		       const struct hive_msg_miner_error *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	long long ts = apid_apply_event_ts(env);

	if (!e->mac[0]) {
		if (a->traffic)
			apid_traffic_unattributed_error(a->traffic);
		return 0;
	}
	st = keyed(a, ST_MINER_ERROR, e->mac);
	bind_message(st, 2, e->message ? e->message : e->kind);
	sqlite3_bind_text(st, 3, e->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->op, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ts);
	if (update_miner(a, ST_MINER_ERROR, why) < 0)
		return -1;
	st = keyed(a, ST_ERROR_INSERT, e->mac);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, e->op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->kind, -1, SQLITE_STATIC);
	bind_ll(st, 5, e->http_status);
	bind_message(st, 6, e->message);
	if (exec(a, ST_ERROR_INSERT, why) < 0)
		return -1;
	note(a, APID_NOTE_MINER, e->mac);
	return 0;
}

static int apply_model(struct apid_apply *a, const struct hive_envelope *env,
		       const struct hive_msg_model_catalogue *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	char *old_max = NULL;
	bool offered = false;
	int rc, ret = -1;

	st = keyed(a, ST_MODEL_GET_MAX, e->model);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0))
		old_max = strdup((const char *)sqlite3_column_text(st, 0));
	reset(a, ST_MODEL_GET_MAX);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_reject(a, ST_MODEL_GET_MAX, rc, why);

	st = keyed(a, ST_MODEL_UPSERT, e->model);
	sqlite3_bind_text(st, 2, e->full_name && *e->full_name ? e->full_name : e->model, -1,
			  SQLITE_STATIC);
	bind_text(st, 3, e->fw_version);
	bind_ll(st, 4, e->num_chains);
	bind_ll(st, 5, e->chips_per_chain);
	bind_json_owned(st, 6, hive_msg_encode_part(HIVE_MSG_MODEL_CATALOGUE, e, &e->topology));
	sqlite3_bind_int64(st, 7, apid_apply_event_ts(env));
	if (exec(a, ST_MODEL_UPSERT, why) < 0)
		goto out;
	keyed(a, ST_PRESETS_DELETE, e->model);
	if (exec(a, ST_PRESETS_DELETE, why) < 0)
		goto out;
	for (size_t i = 0; i < e->n_presets; i++) {
		const struct hive_msg_preset *p = &e->presets[i];

		st = keyed(a, ST_PRESET_INSERT, e->model);
		sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
		bind_text(st, 3, p->pretty);
		bind_int(st, 4, p->watts);
		bind_real(st, 5, p->th);
		sqlite3_bind_int64(st, 6, p->order == HIVE_MSG_NO_INT ? (long long)i : p->order);
		sqlite3_bind_int(st, 7, p->tuned > 0);
		if (exec(a, ST_PRESET_INSERT, why) < 0)
			goto out;
		if (old_max && strcmp(old_max, p->name) == 0)
			offered = true;
	}
	if (old_max && !offered)
		log_warnx("model max_preset no longer offered model=%s max_preset=%s action=kept",
			  e->model, old_max);
	note(a, APID_NOTE_MODEL, e->model);
	ret = 0;
out:
	free(old_max);
	return ret;
}

static long long or0(long long v)
{
	return v == HIVE_MSG_NO_INT ? 0 : v;
}

/* ---- sweeps ----
 *
 * The offline rule. A miner of the swept subnet that the sweep did not
 * list goes offline only when nothing else says it is alive: no status
 * and no telemetry answer since the cutoff, the earlier of the sweep's
 * start and two status intervals before its end. A sweep that missed a
 * miner under load (a probe or /info that timed out) is no evidence
 * against a miner that answered its status poll a moment ago; a miner
 * that is really gone answers neither, and goes offline at the end of the
 * first sweep that starts after it went and ends two status intervals
 * after its last answer: within 2 x intervals.status_seconds +
 * intervals.discovery_seconds + one sweep's duration. */
#define SWEEP_STATUS_INTERVALS 2
/* Chunked sweeps waiting for parts: at most this many, none older. */
#define SWEEP_PARTS_MAX        64
#define SWEEP_PARTS_MAX_AGE_MS (10 * 60 * 1000)

static long long sweep_cutoff(struct apid_apply *a, const struct hive_msg_sweep_done *e,
			      long long ts)
{
	long long window = a->sched ? SWEEP_STATUS_INTERVALS *
			   (long long)apid_sched_interval_ms(a->sched, APID_JOB_STATUS) : 0;
	long long started = e->started == HIVE_MSG_NO_INT ? ts : e->started;

	return started < ts - window ? started : ts - window;
}

/* The listed MACs apid has no online miner for go to traffic, which
 * hive.control.recheck hands back to discoverd: their next sweep takes the
 * whole path and publishes hive.miner.seen again. 0 / -1. */
static int sweep_strangers(struct apid_apply *a, const struct hive_msg_sweep_done *e,
			   enum apid_reject *why)
{
	sqlite3_stmt *st = a->st[ST_SWEEP_STRANGERS];
	char (*macs)[HIVE_MAC_LEN] = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char (*m)[HIVE_MAC_LEN] = realloc(macs, ncap * sizeof(*m));

			if (!m)
				break;      /* the rest at a later sweep */
			macs = m;
			cap = ncap;
		}
		snprintf(macs[n++], HIVE_MAC_LEN, "%s", mac ? mac : "");
	}
	reset(a, ST_SWEEP_STRANGERS);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		free(macs);
		return sql_reject(a, ST_SWEEP_STRANGERS, rc, why);
	}
	if (n)
		log_info("sweep lists miners apid has not online subnet=%s miners=%zu"
			 " action=\"asking discoverd for their seen again\"", e->subnet, n);
	if (a->traffic)
		apid_traffic_sweep_strangers(a->traffic, e->subnet, macs, n);
	free(macs);
	return 0;
}

/* One count(*) of statement s keyed by subnet (and ?2 = cutoff when
 * cutoff >= 0): the count, or -1 (why set). */
static long long count_of(struct apid_apply *a, enum stmt s, const char *subnet,
			  long long cutoff, enum apid_reject *why)
{
	sqlite3_stmt *st = keyed(a, s, subnet);
	long long n = -1;
	int rc;

	if (cutoff >= 0)
		sqlite3_bind_int64(st, 2, cutoff);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	reset(a, s);
	if (rc != SQLITE_ROW)
		return sql_reject(a, s, rc, why);
	return n;
}

/* A sweep that would take more than network.sweep_drop_confirm_share of
 * its subnet's online miners offline at once is held until the next
 * sweep of the subnet says the same (guard.h): one forged or broken list
 * cannot empty a subnet. -1 (why: sweep unconfirmed, or a database
 * error) when held; the temp list is filled already. */
static int sweep_held(struct apid_apply *a, const struct hive_msg_sweep_done *e, long long ts,
		      enum apid_reject *why)
{
	long long drop = count_of(a, ST_SWEEP_WOULD_DROP, e->subnet, sweep_cutoff(a, e, ts), why);
	long long online = drop < 0 ? -1 : count_of(a, ST_SUBNET_ONLINE, e->subnet, -1, why);

	if (drop < 0 || online < 0)
		return -1;
	if (!apid_guard_sweep_hold(a->guard, e->subnet, drop, online))
		return 0;
	log_warnx("sweep held subnet=%s would_drop=%lld online=%lld reason=\"more than"
		  " network.sweep_drop_confirm_share at once\" action=\"nobody marked offline until"
		  " the next sweep confirms\"", e->subnet, drop, online);
	*why = APID_REJ_SWEEP_UNCONFIRMED;
	return -1;
}

/* Applies a subnet's whole list: marks who is gone, stores the sweep. */
static int sweep_apply(struct apid_apply *a, const struct hive_envelope *env,
		       const struct hive_msg_sweep_done *e, char (*macs)[HIVE_MAC_LEN],
		       size_t n_macs, enum apid_reject *why)
{
	sqlite3_stmt *st;
	int rc, offline = 0, kept = 0;
	long long ts = apid_apply_event_ts(env);
	long long miners = e->miners == HIVE_MSG_NO_INT ? (long long)n_macs : e->miners;

	if (exec(a, ST_SWEEP_CLEAR, why) < 0)
		return -1;
	for (size_t i = 0; i < n_macs; i++) {
		sqlite3_bind_text(a->st[ST_SWEEP_ADD], 1, macs[i], -1, SQLITE_STATIC);
		if (exec(a, ST_SWEEP_ADD, why) < 0)
			return -1;
	}
	if (a->guard && sweep_held(a, e, ts, why) < 0)
		return -1;
	st = keyed(a, ST_SWEEP_OFFLINE, e->subnet);
	sqlite3_bind_int64(st, 2, sweep_cutoff(a, e, ts));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);

		log_info("miner offline mac=%s subnet=%s", mac ? mac : "?", e->subnet);
		note(a, APID_NOTE_MINER, mac ? mac : "");
		offline++;
	}
	reset(a, ST_SWEEP_OFFLINE);
	if (rc != SQLITE_DONE)
		return sql_reject(a, ST_SWEEP_OFFLINE, rc, why);
	if (offline)
		a->changes.roster = true;
	st = keyed(a, ST_SWEEP_KEPT, e->subnet);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);

		log_debug("miner kept online mac=%s subnet=%s reason=\"not in the sweep, but its"
			  " status or telemetry answered\"", mac ? mac : "?", e->subnet);
		kept++;
	}
	reset(a, ST_SWEEP_KEPT);
	if (rc != SQLITE_DONE)
		return sql_reject(a, ST_SWEEP_KEPT, rc, why);
	if (sweep_strangers(a, e, why) < 0)
		return -1;
	st = keyed(a, ST_SWEEP_SEEN, e->subnet);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_int64(st, 3, e->started == HIVE_MSG_NO_INT ? ts : e->started);
	if (exec(a, ST_SWEEP_SEEN, why) < 0)
		return -1;
	st = keyed(a, ST_SWEEP_UPSERT, e->subnet);
	sqlite3_bind_int64(st, 2, ts);
	bind_ll(st, 3, e->duration_ms);
	bind_ll(st, 4, e->probed);
	bind_ll(st, 5, e->answered);
	sqlite3_bind_int64(st, 6, miners);
	bind_ll(st, 7, e->started);
	if (exec(a, ST_SWEEP_UPSERT, why) < 0)
		return -1;
	if (a->traffic) {
		apid_traffic_sweep(a->traffic, e->subnet, ts, or0(e->started),
				   or0(e->duration_ms), or0(e->probed), or0(e->answered), miners);
		apid_traffic_sweep_result(a->traffic, e->subnet, offline, kept);
	}
	log_info("sweep stored subnet=%s seen=%zu offline=%d kept=%d chunks=%lld", e->subnet,
		 n_macs, offline, kept, e->chunks == HIVE_MSG_NO_INT ? 1 : e->chunks);
	return 0;
}

static void parts_free(struct sweep_parts *p)
{
	free(p->have);
	free(p->macs);
	free(p);
}

/* Gives up on p (unlinked by the caller): nobody is marked offline from
 * a list we do not have whole. */
static void parts_incomplete(struct apid_apply *a, struct sweep_parts *p, const char *why)
{
	log_warnx("sweep incomplete subnet=%s src=%s sweep=%lld chunks=%lld/%lld reason=\"%s\""
		  " action=\"nobody marked offline\"", p->head.subnet, p->src, p->head.sweep,
		  p->got, p->head.chunks, why);
	if (a->traffic)
		apid_traffic_sweep_incomplete(a->traffic, p->head.subnet);
	a->n_parts--;
	parts_free(p);
}

/* One chunk of a list: kept until every chunk of its sweep is there, then
 * the whole list is applied. One sweep per (source, subnet) waits: a
 * chunk of a newer sweep means the older one will never be complete. */
static int sweep_part(struct apid_apply *a, const struct hive_envelope *env,
		      const struct hive_msg_sweep_done *e, enum apid_reject *why)
{
	struct sweep_parts **pp, *p = NULL, *oldest = NULL;
	long long ts = apid_apply_event_ts(env);
	int rc;

	for (pp = &a->parts; *pp;) {
		struct sweep_parts *q = *pp;

		if (strcmp(q->src, env->src) == 0 && strcmp(q->head.subnet, e->subnet) == 0) {
			if (q->head.sweep == e->sweep && q->head.chunks == e->chunks) {
				p = q;
				pp = &q->next;
				continue;
			}
			*pp = q->next;
			parts_incomplete(a, q, "a newer sweep of the subnet began");
			continue;
		}
		if (ts - q->last_ts > SWEEP_PARTS_MAX_AGE_MS) {
			*pp = q->next;
			parts_incomplete(a, q, "no chunk for 10 minutes");
			continue;
		}
		if (!oldest || q->last_ts < oldest->last_ts)
			oldest = q;
		pp = &q->next;
	}
	if (!p) {
		if (a->n_parts >= SWEEP_PARTS_MAX && oldest) {
			for (pp = &a->parts; *pp != oldest; pp = &(*pp)->next)
				;
			*pp = oldest->next;
			parts_incomplete(a, oldest, "too many sweeps waiting for chunks");
		}
		if (!(p = calloc(1, sizeof(*p))) ||
		    !(p->have = calloc((size_t)e->chunks, 1))) {
			free(p);
			*why = APID_REJ_DATABASE;
			log_warnx("sweep dropped subnet=%s reason=\"out of memory\"", e->subnet);
			return -1;
		}
		snprintf(p->src, sizeof(p->src), "%s", env->src);
		p->head = *e;
		p->head.macs = NULL;
		p->head.n_macs = 0;
		p->next = a->parts;
		a->parts = p;
		a->n_parts++;
	}
	p->last_ts = ts;
	if (p->have[e->chunk - 1])
		return 0;                   /* the same chunk twice */
	if (p->n_macs + e->n_macs > p->cap_macs) {
		size_t cap = p->cap_macs ? p->cap_macs : 1024;
		char (*m)[HIVE_MAC_LEN];

		while (cap < p->n_macs + e->n_macs)
			cap *= 2;
		if (!(m = realloc(p->macs, cap * sizeof(*m)))) {
			*why = APID_REJ_DATABASE;
			log_warnx("sweep chunk dropped subnet=%s reason=\"out of memory\"",
				  e->subnet);
			return -1;
		}
		p->macs = m;
		p->cap_macs = cap;
	}
	if (e->n_macs) {
		memcpy(p->macs + p->n_macs, e->macs, e->n_macs * sizeof(*e->macs));
		p->n_macs += e->n_macs;
	}
	p->have[e->chunk - 1] = 1;
	p->got++;
	if (p->got < p->head.chunks) {
		log_debug("sweep chunk subnet=%s sweep=%lld chunk=%lld/%lld macs=%zu", e->subnet,
			  e->sweep, e->chunk, e->chunks, e->n_macs);
		return 0;
	}
	for (pp = &a->parts; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	a->n_parts--;
	rc = sweep_apply(a, env, &p->head, p->macs, p->n_macs, why);
	parts_free(p);
	return rc;
}

static int apply_sweep(struct apid_apply *a, const struct hive_envelope *env,
		       const struct hive_msg_sweep_done *e, enum apid_reject *why)
{
	if (e->chunks == HIVE_MSG_NO_INT || e->chunks == 1)
		return sweep_apply(a, env, e, e->macs, e->n_macs, why);
	return sweep_part(a, env, e, why);
}

static int apply_status(struct apid_apply *a, const struct hive_envelope *env, size_t item,
			const struct hive_msg_status_result *e, enum apid_reject *why)
{
	sqlite3_stmt *st;
	long long ts = apid_apply_event_ts(env), row_id;
	int rc;

	if (a->sched && e->head.job > 0)
		apid_sched_job_done(a->sched, e->head.mac, e->head.job, true);
	st = keyed(a, ST_STATUS_INSERT, e->head.mac);
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
	bind_text(st, 18, e->state_description);
	rc = run(a, ST_STATUS_INSERT);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		*why = APID_REJ_UNKNOWN_MINER;
		return -1;
	}
	if (rc != SQLITE_DONE)
		return sql_reject(a, ST_STATUS_INSERT, rc, why);
	row_id = sqlite3_last_insert_rowid(a->db);
	st = keyed(a, ST_STATUS_MINER, e->head.mac);
	sqlite3_bind_int64(st, 2, row_id);
	sqlite3_bind_int64(st, 3, ts);
	if (update_miner(a, ST_STATUS_MINER, why) < 0)
		return -1;
	add_note(a, APID_NOTE_STATUS, e->head.mac, item, row_id);
	return 0;
}

static int apply_telemetry(struct apid_apply *a, const struct hive_envelope *env,
			   const struct apid_event *ev, enum apid_reject *why)
{
	const struct hive_msg_telemetry_result *e = &ev->u.telemetry;
	const char *mac = e->head.mac;
	sqlite3_stmt *st;
	long long ts = apid_apply_event_ts(env);

	if (a->sched && e->head.job > 0)
		apid_sched_job_done(a->sched, mac, e->head.job, true);
	sqlite3_bind_int64(keyed(a, ST_TELEMETRY_MINER, mac), 2, ts);
	if (update_miner(a, ST_TELEMETRY_MINER, why) < 0)
		return -1;
	sqlite3_bind_text(keyed(a, ST_TELEMETRY_SOURCE, mac), 2, e->source ? e->source : "chains",
			  -1, SQLITE_STATIC);
	if (exec(a, ST_TELEMETRY_SOURCE, why) < 0)
		return -1;
	if (sqlite3_changes(a->db) > 0)
		a->changes.roster = true;   /* the next jobs ask the other endpoint */
	for (size_t i = 0; i < e->n_chains; i++) {
		const struct hive_msg_chain_telemetry *c = &e->chains[i];
		const struct apid_packed_chips *p = &ev->packed[i];

		st = keyed(a, ST_TELEMETRY_INSERT, mac);
		sqlite3_bind_int64(st, 2, ts);
		sqlite3_bind_int64(st, 3, c->id);
		bind_text(st, 4, c->state);
		bind_real(st, 5, c->hr_realtime_ghs);
		bind_real(st, 6, c->hr_nominal_ghs);
		bind_real(st, 7, c->freq);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)p->n_chips);
		sqlite3_bind_blob(st, 9, p->blob, (int)p->len, SQLITE_STATIC);
		sqlite3_bind_int(st, 10, APID_CHIPS_PACKED);
		if (exec(a, ST_TELEMETRY_INSERT, why) < 0)
			return -1;
	}
	return 0;
}

int apid_apply_event(struct apid_apply *a, const struct hive_envelope *env,
		     const struct apid_event *ev, size_t item, enum apid_reject *why)
{
	int rc = 0;

	switch (ev->kind) {
	case HIVE_MSG_MINER_SEEN:  rc = apply_seen(a, env, &ev->u.seen, why); break;
	case HIVE_MSG_MINER_KEY:   rc = apply_key(a, &ev->u.key, why); break;
	case HIVE_MSG_MINER_ERROR: rc = apply_error(a, env, &ev->u.error, why); break;
	case HIVE_MSG_MODEL_CATALOGUE: rc = apply_model(a, env, &ev->u.model, why); break;
	case HIVE_MSG_SWEEP_DONE:  rc = apply_sweep(a, env, &ev->u.sweep, why); break;
	case HIVE_MSG_STATUS_RESULT: rc = apply_status(a, env, item, &ev->u.status, why); break;
	case HIVE_MSG_TELEMETRY_RESULT: rc = apply_telemetry(a, env, ev, why); break;
	case HIVE_MSG_JOB_FAILED:
		if (a->sched)
			apid_sched_job_done(a->sched, ev->u.job_failed.mac, ev->u.job_failed.job,
					    false);
		break;
	case HIVE_MSG_HEARTBEAT:
		if (a->traffic)
			apid_traffic_heartbeat(a->traffic, env, &ev->u.heartbeat);
		break;
	case HIVE_MSG_GOODBYE:
		if (a->traffic)
			apid_traffic_goodbye(a->traffic, env, &ev->u.goodbye);
		break;
	case HIVE_MSG_ACTION_RESULT:
	case HIVE_MSG_PLANT_READING:
		/* Nothing of their own to store: the actions and power tables
		 * are the writer hooks' (actions.c, power.c), which see every
		 * applied event. */
		break;
	default:
		*why = APID_REJ_UNKNOWN_TOPIC;
		rc = -1;
		break;
	}
	if (rc < 0 && *why == APID_REJ_UNKNOWN_MINER) {
		char key[HIVE_SOURCE_MAX + HIVE_TOPIC_MAX + 24];

		snprintf(key, sizeof(key), "%s %s unknown", env->src, env->topic);
		hive_log_complain(key, "event rejected src=%s topic=%s seq=%llu reason=\"unknown miner\"",
				  env->src, env->topic, env->seq);
	}
	return rc;
}

/* ------------------------------------------------------------ requests */

static int refuse(int *http_status, int status, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* -1 with status and a message. */
static int refuse(int *http_status, int status, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	*http_status = status;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int audit(struct apid_apply *a, const char *actor, const char *action,
		 const char *target, json_t *detail)
{
	sqlite3_stmt *st = a->st[ST_AUDIT];
	int rc;

	sqlite3_bind_int64(st, 1, hive_wall_ms());
	sqlite3_bind_text(st, 2, actor && *actor ? actor : "api", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, target, -1, SQLITE_STATIC);
	bind_json(st, 5, detail);
	rc = run(a, ST_AUDIT);
	return rc == SQLITE_DONE ? 0 : sql_failed(a, ST_AUDIT, rc);
}

int apid_apply_patch_miner_init(struct apid_patch_miner *p, const char *mac, int managed,
				const char *unlock_pass, const char *actor, int *http_status,
				char *err, size_t errlen)
{
	if (!mac || hive_mac_normalise(mac, p->mac) < 0)
		return refuse(http_status, 404, err, errlen, "unknown miner %.40s", mac ? mac : "");
	if (managed < -1 || managed > 1)
		return refuse(http_status, 422, err, errlen, "managed: expected true or false");
	if (unlock_pass && !*unlock_pass)
		return refuse(http_status, 422, err, errlen, "unlock_pass: must not be empty");
	if (unlock_pass && strlen(unlock_pass) > 256)
		return refuse(http_status, 422, err, errlen,
			      "unlock_pass: longer than 256 characters");
	if (managed < 0 && !unlock_pass)
		return refuse(http_status, 422, err, errlen,
			      "nothing to change: expected managed or unlock_pass");
	if (unlock_pass)
		hive_log_secret(unlock_pass);
	p->managed = managed;
	p->unlock_pass = unlock_pass;
	p->actor = actor;
	return 0;
}

int apid_apply_patch_miner(struct apid_apply *a, void *arg, int *http_status, char *err,
			   size_t errlen)
{
	const struct apid_patch_miner *p = arg;
	sqlite3_stmt *st = keyed(a, ST_PATCH_MINER, p->mac);
	json_t *detail;
	int rc;

	sqlite3_bind_int(st, 2, p->managed);
	if (p->unlock_pass) {
		char *sealed = a->secrets ? apid_secrets_seal(a->secrets, "unlock_pass", p->mac,
							       p->unlock_pass) : NULL;

		if (!sealed) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return refuse(http_status, 503, err, errlen,
				      "cannot encrypt the unlock password");
		}
		sqlite3_bind_text(st, 3, sealed, -1, free);
	}
	rc = run(a, ST_PATCH_MINER);
	if (rc != SQLITE_DONE) {
		sql_failed(a, ST_PATCH_MINER, rc);
		return refuse(http_status, 503, err, errlen, "database error");
	}
	if (sqlite3_changes(a->db) == 0)
		return refuse(http_status, 404, err, errlen, "unknown miner %s", p->mac);
	detail = json_object();
	if (p->managed >= 0)
		json_object_set_new(detail, "managed", json_boolean(p->managed));
	if (p->unlock_pass)
		json_object_set_new(detail, "unlock_pass", json_string("***"));
	rc = audit(a, p->actor, "miner.patch", p->mac, detail);
	json_decref(detail);
	if (rc < 0)
		return refuse(http_status, 503, err, errlen, "database error");
	if (p->managed >= 0)
		a->changes.roster = true;
	note(a, APID_NOTE_MINER, p->mac);
	return 0;
}

static int exists(struct apid_apply *a, enum stmt s, const char *k1, const char *k2)
{
	sqlite3_stmt *st = keyed(a, s, k1);
	int rc;

	if (k2)
		sqlite3_bind_text(st, 2, k2, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	reset(a, s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sql_failed(a, s, rc);
}

int apid_apply_patch_model_init(struct apid_patch_model *p, const char *alias,
				const char *max_preset, const char *actor, int *http_status,
				char *err, size_t errlen)
{
	if (!alias || !*alias || strlen(alias) >= sizeof(p->alias))
		return refuse(http_status, 404, err, errlen, "unknown model %.64s",
			      alias ? alias : "");
	if (max_preset && (!*max_preset || strlen(max_preset) > 64))
		return refuse(http_status, 422, err, errlen, "max_preset: not a preset name");
	snprintf(p->alias, sizeof(p->alias), "%s", alias);
	p->max_preset = max_preset;
	p->actor = actor;
	return 0;
}

int apid_apply_patch_model(struct apid_apply *a, void *arg, int *http_status, char *err,
			   size_t errlen)
{
	const struct apid_patch_model *p = arg;
	sqlite3_stmt *st;
	json_t *detail;
	int rc;

	rc = exists(a, ST_MODEL_EXISTS, p->alias, NULL);
	if (rc < 0)
		return refuse(http_status, 503, err, errlen, "database error");
	if (rc == 0)
		return refuse(http_status, 404, err, errlen, "unknown model %s", p->alias);
	if (p->max_preset) {
		rc = exists(a, ST_PRESET_EXISTS, p->alias, p->max_preset);
		if (rc < 0)
			return refuse(http_status, 503, err, errlen, "database error");
		if (rc == 0)
			return refuse(http_status, 422, err, errlen,
				      "max_preset: \"%.64s\" is not a preset of %.64s",
				      p->max_preset, p->alias);
	}
	st = keyed(a, ST_PATCH_MODEL, p->alias);
	bind_text(st, 2, p->max_preset);
	sqlite3_bind_int64(st, 3, hive_wall_ms());
	rc = run(a, ST_PATCH_MODEL);
	detail = json_pack("{s:s?}", "max_preset", p->max_preset);
	if (rc != SQLITE_DONE || audit(a, p->actor, "model.patch", p->alias, detail) < 0) {
		if (rc != SQLITE_DONE)
			sql_failed(a, ST_PATCH_MODEL, rc);
		json_decref(detail);
		return refuse(http_status, 503, err, errlen, "database error");
	}
	json_decref(detail);
	note(a, APID_NOTE_MODEL, p->alias);
	return 0;
}

/* ------------------------------------------------------------ the struct */

/* The last sweep of each subnet, for health, as the database remembers it. */
static void load_sweeps(struct apid_apply *a)
{
	sqlite3_stmt *st;

	if (!a->traffic ||
	    sqlite3_prepare_v2(a->db, "SELECT subnet, ts_ms, coalesce(started_ms, 0),"
			       " coalesce(duration_ms, 0), coalesce(probed, 0),"
			       " coalesce(answered, 0), coalesce(miners, 0) FROM sweeps",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		apid_traffic_sweep(a->traffic, (const char *)sqlite3_column_text(st, 0),
				  sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
				  sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
				  sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6));
	sqlite3_finalize(st);
}

struct apid_apply *apid_apply_new(sqlite3 *db, struct apid_traffic *traffic, char *err,
				  size_t errlen)
{
	struct apid_apply *a = calloc(1, sizeof(*a));

	if (!a) {
		snprintf(err, errlen, "writer: out of memory");
		return NULL;
	}
	a->db = db;
	a->traffic = traffic;
	if (apid_store_exec(db, "CREATE TEMP TABLE IF NOT EXISTS sweep_macs"
			    "(mac TEXT PRIMARY KEY)", "writer", err, errlen) < 0 ||
	    apid_apply_prepare(db, stmt_sql, a->st, ST_COUNT, "writer", err, errlen) < 0) {
		free(a);
		return NULL;
	}
	load_sweeps(a);
	return a;
}

void apid_apply_free(struct apid_apply *a)
{
	if (!a)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(a->st[i]);
	while (a->parts) {
		struct sweep_parts *p = a->parts;

		a->parts = p->next;
		parts_free(p);
	}
	free(a->changes.notes);
	free(a);
}

void apid_apply_set_guard(struct apid_apply *a, struct apid_guard *g)
{
	a->guard = g;
}

void apid_apply_set_secrets(struct apid_apply *a, const struct apid_secrets *s)
{
	a->secrets = s;
}

void apid_apply_attach(struct apid_apply *a, struct apid_sched *sched, bool notes)
{
	a->sched = sched;
	a->want_notes = notes;
}

struct apid_changes *apid_apply_changes(struct apid_apply *a)
{
	return &a->changes;
}

sqlite3 *apid_apply_db(struct apid_apply *a)
{
	return a->db;
}
