/* store — see store.h. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hive/log.h"

/*
 * Migration 1 is the schema of the apid contract, verbatim; later ones only
 * add. Never edit a migration that shipped: append a new one.
 */
static const char *const migrations[] = {
	/* 1: the contract schema */
	"CREATE TABLE models ("
	" alias TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" fw_version TEXT,"
	" num_chains INTEGER, chips_per_chain INTEGER,"
	" topology TEXT,"
	" max_preset TEXT,"
	" updated_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE model_presets ("
	" model TEXT NOT NULL REFERENCES models(alias) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" pretty TEXT, watts INTEGER, th REAL,"
	" ord INTEGER NOT NULL,"
	" tuned INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (model, name)"
	") WITHOUT ROWID;"
	"CREATE TABLE miners ("
	" mac TEXT PRIMARY KEY,"
	" ip TEXT,"
	" last_ip TEXT,"
	" subnet TEXT,"
	" model TEXT,"
	" miner_name TEXT, fw_name TEXT, fw_version TEXT, hostname TEXT,"
	" api_key TEXT, unlock_pass TEXT,"
	" managed INTEGER NOT NULL DEFAULT 0,"
	" online INTEGER NOT NULL DEFAULT 0,"
	" first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
	" last_error TEXT, last_error_kind TEXT, last_error_op TEXT, last_error_ms INTEGER,"
	" last_status_id INTEGER,"
	" last_telemetry_ms INTEGER,"
	" telemetry_source TEXT"
	");"
	"CREATE INDEX miners_online ON miners(online);"
	"CREATE INDEX miners_model ON miners(model);"
	"CREATE TABLE statuses ("
	" id INTEGER PRIMARY KEY,"
	" mac TEXT NOT NULL REFERENCES miners(mac) ON DELETE CASCADE,"
	" ts_ms INTEGER NOT NULL,"
	" state TEXT, state_time INTEGER, preset TEXT,"
	" hr_realtime_ghs REAL, hr_average_ghs REAL, hr_nominal_ghs REAL,"
	" chip_temp_max INTEGER, pcb_temp_max INTEGER,"
	" power_w INTEGER, power_metered INTEGER,"
	" fan_duty INTEGER, fans TEXT,"
	" chains TEXT,"
	" pools TEXT,"
	" hw_errors INTEGER"
	");"
	"CREATE INDEX statuses_mac_ts ON statuses(mac, ts_ms);"
	"CREATE INDEX statuses_ts ON statuses(ts_ms);"
	"CREATE TABLE telemetry ("
	" id INTEGER PRIMARY KEY,"
	" mac TEXT NOT NULL REFERENCES miners(mac) ON DELETE CASCADE,"
	" ts_ms INTEGER NOT NULL,"
	" chain INTEGER NOT NULL, state TEXT,"
	" hr_realtime_ghs REAL, hr_nominal_ghs REAL, freq REAL,"
	" n_chips INTEGER NOT NULL,"
	" chips BLOB NOT NULL"
	");"
	"CREATE INDEX telemetry_mac_ts ON telemetry(mac, ts_ms);"
	"CREATE INDEX telemetry_ts ON telemetry(ts_ms);"
	"CREATE TABLE miner_errors ("
	" id INTEGER PRIMARY KEY,"
	" mac TEXT NOT NULL REFERENCES miners(mac) ON DELETE CASCADE,"
	" ts_ms INTEGER NOT NULL, op TEXT NOT NULL, kind TEXT NOT NULL,"
	" http_status INTEGER, message TEXT"
	");"
	"CREATE INDEX miner_errors_mac_ts ON miner_errors(mac, ts_ms);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
	" actor TEXT NOT NULL, action TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" detail TEXT"
	");"
	"CREATE TABLE sweeps (subnet TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL,"
	" duration_ms INTEGER, probed INTEGER, answered INTEGER, miners INTEGER);",

	/* 2: what the writer needs to stay fast: the miner holding an IP
	 * (miner.seen clears it), the miners of a subnet (sweep.done), the
	 * pruning of errors and audit by age; when a sweep started. */
	"CREATE INDEX miners_ip ON miners(ip);"
	"CREATE INDEX miners_subnet ON miners(subnet);"
	"CREATE INDEX miner_errors_ts ON miner_errors(ts_ms);"
	"CREATE INDEX audit_ts ON audit(ts_ms);"
	"ALTER TABLE sweeps ADD COLUMN started_ms INTEGER;",

	/* 3: control. Every change PowerHive makes to a miner (actions.h),
	 * and a miner that keeps moving its preset above the limit by itself
	 * (conflict: the reason, NULL when none). */
	"CREATE TABLE actions ("
	" id INTEGER PRIMARY KEY,"
	" mac TEXT NOT NULL REFERENCES miners(mac) ON DELETE CASCADE,"
	" kind TEXT NOT NULL, preset TEXT,"
	" state TEXT NOT NULL,"
	" actor TEXT NOT NULL, reason TEXT,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	" sent_ms INTEGER, sends INTEGER NOT NULL DEFAULT 0,"
	" error_kind TEXT, error TEXT"
	");"
	"CREATE INDEX actions_mac ON actions(mac, created_ms);"
	"CREATE INDEX actions_created ON actions(created_ms);"
	"CREATE INDEX actions_open ON actions(state) WHERE state IN ('queued', 'sent', 'confirming');"
	"ALTER TABLE miners ADD COLUMN conflict TEXT;"
	"ALTER TABLE miners ADD COLUMN conflict_ms INTEGER;"
	"ALTER TABLE statuses ADD COLUMN state_description TEXT;",

	/* 4: power. Every plant reading (accepted or why not), the balancer's
	 * figures each cycle, its decisions, the settings an operator changed
	 * through the API (with the config's value then: a config that
	 * changes it later wins), and the miners it leaves alone: pinned by an
	 * operator, or excluded after a change they did not make. */
	"CREATE TABLE power_readings ("
	" id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, source TEXT NOT NULL,"
	" accepted INTEGER NOT NULL, reason TEXT,"
	" generation_w INTEGER, measured_w INTEGER, exported_w INTEGER, confidence REAL,"
	" reading_id INTEGER, collected_ms INTEGER, latency_ms INTEGER, error TEXT"
	");"
	"CREATE INDEX power_readings_ts ON power_readings(ts_ms);"
	"CREATE TABLE power_samples ("
	" ts_ms INTEGER PRIMARY KEY, state TEXT NOT NULL,"
	" generation_w INTEGER, available_w INTEGER, target_w INTEGER, estimate_w INTEGER,"
	" measured_w INTEGER, managed_w INTEGER, fixed_w INTEGER"
	");"
	"CREATE TABLE power_decisions ("
	" id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, mode TEXT NOT NULL, state TEXT NOT NULL,"
	" kind TEXT NOT NULL, dry_run INTEGER NOT NULL,"
	" available_w INTEGER, target_w INTEGER, estimate_w INTEGER, measured_w INTEGER,"
	" summary TEXT, changes TEXT"
	");"
	"CREATE INDEX power_decisions_ts ON power_decisions(ts_ms);"
	"CREATE TABLE power_settings ("
	" key TEXT PRIMARY KEY, value TEXT NOT NULL, config_value TEXT,"
	" ts_ms INTEGER NOT NULL, actor TEXT"
	");"
	"ALTER TABLE miners ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE miners ADD COLUMN power_excluded TEXT;"
	"ALTER TABLE miners ADD COLUMN power_excluded_ms INTEGER;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int apid_store_schema_version(void)
{
	return N_MIGRATIONS;
}

int apid_store_exec(sqlite3 *db, const char *sql, const char *what, char *err,
		    size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The single integer a pragma or query returns, or -1. */
static long long query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int apid_store_version(sqlite3 *db)
{
	return (int)query_int(db, "PRAGMA user_version");
}

int apid_store_migrate(sqlite3 *db, int target, char *err, size_t errlen)
{
	int v = apid_store_version(db);
	char sql[96];

	if (v < 0) {
		snprintf(err, errlen, "reading schema version: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (target > N_MIGRATIONS)
		target = N_MIGRATIONS;
	for (; v < target; v++) {
		char what[48];

		snprintf(what, sizeof(what), "migration %d", v + 1);
		if (apid_store_exec(db, "BEGIN IMMEDIATE", what, err, errlen) < 0)
			return -1;
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d; PRAGMA application_id=%d",
			 v + 1, APID_STORE_APP_ID);
		if (apid_store_exec(db, migrations[v], what, err, errlen) < 0 ||
		    apid_store_exec(db, sql, what, err, errlen) < 0 ||
		    apid_store_exec(db, "COMMIT", what, err, errlen) < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		log_info("schema migrated version=%d", v + 1);
	}
	return 0;
}

/* Refuses what this binary must not touch: another application's
 * database, or a PowerHive schema newer than this binary. */
static int check_identity(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	long long app = query_int(db, "PRAGMA application_id");
	long long version = query_int(db, "PRAGMA user_version");
	long long tables = query_int(db, "SELECT count(*) FROM sqlite_master");

	if (app < 0 || version < 0 || tables < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if ((app != 0 && app != APID_STORE_APP_ID) || (app == 0 && tables > 0)) {
		snprintf(err, errlen, "%s: not a PowerHive database (application_id=%lld)",
			 path, app);
		return -1;
	}
	if (version > N_MIGRATIONS) {
		snprintf(err, errlen,
			 "%s: database schema version %lld is newer than this apid's (%d); "
			 "run a newer apid or restore a backup",
			 path, version, N_MIGRATIONS);
		return -1;
	}
	return 0;
}

/* mkdir -p of path's directory. */
static int make_parent(const char *path, char *err, size_t errlen)
{
	char dir[4096];
	char *p;

	if (strlen(path) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	strcpy(dir, path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot create directory %s: %s", path, dir,
		 strerror(errno));
	return -1;
}

static sqlite3 *open_conn(const char *path, int flags, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open database: %s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, APID_STORE_BUSY_MS);
	return db;
}

sqlite3 *apid_store_open(const char *path, char *err, size_t errlen)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	const char *mode;

	if (make_parent(path, err, errlen) < 0)
		return NULL;
	db = open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errlen);
	if (!db)
		return NULL;
	if (check_identity(db, path, err, errlen) < 0)
		goto fail;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errlen, "%s: journal_mode=WAL: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "%s: cannot use WAL (journal_mode=%s)", path,
			 mode ? mode : "?");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (apid_store_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
			    " PRAGMA temp_store=MEMORY;", path, err, errlen) < 0)
		goto fail;
	if (apid_store_migrate(db, N_MIGRATIONS, err, errlen) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s", path, msg);
		goto fail;
	}
	return db;
fail:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return NULL;
}

sqlite3 *apid_store_open_readonly(const char *path, char *err, size_t errlen)
{
	sqlite3 *db = open_conn(path, SQLITE_OPEN_READONLY, err, errlen);
	int v;

	if (!db)
		return NULL;
	if (check_identity(db, path, err, errlen) < 0)
		goto fail;
	v = apid_store_version(db);
	if (v != N_MIGRATIONS) {
		snprintf(err, errlen, "%s: schema version %d, expected %d", path, v,
			 N_MIGRATIONS);
		goto fail;
	}
	if (apid_store_exec(db, "PRAGMA foreign_keys=ON", path, err, errlen) < 0)
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}
