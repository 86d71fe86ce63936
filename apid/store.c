/* store — see store.h. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hive/clock.h"
#include "hive/log.h"

#define VACUUM_SLACK (16LL << 20)   /* bytes on top of each copy */

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

	/* 5: history that fits (docs/apid.md, Storage). A small number per
	 * miner for the roll-ups to key on (a rowid of miners would not do:
	 * VACUUM may renumber it); per-minute and per-hour roll-ups of the
	 * statuses, per-chip hourly summaries of telemetry, the fleet's
	 * totals per minute and per hour, and where each roll-up stands.
	 * Telemetry rows say how their chips are packed (NULL: 16-byte
	 * records). The roll-ups' rows are in time order (appended, pruned
	 * from the head) with an index per miner for its history. */
	"ALTER TABLE miners ADD COLUMN num INTEGER;"
	"UPDATE miners SET num = rowid;"
	"CREATE UNIQUE INDEX miners_num ON miners(num);"
	"CREATE TRIGGER miners_num AFTER INSERT ON miners WHEN new.num IS NULL BEGIN"
	" UPDATE miners SET num = (SELECT coalesce(max(num), 0) + 1 FROM miners)"
	" WHERE mac = new.mac; END;"
	"ALTER TABLE telemetry ADD COLUMN chips_format INTEGER;"
	"CREATE TABLE status_minutes ("
	" ts_ms INTEGER NOT NULL,"
	" miner INTEGER NOT NULL REFERENCES miners(num) ON DELETE CASCADE,"
	" n INTEGER NOT NULL, mining INTEGER NOT NULL,"
	" hr_n INTEGER NOT NULL, hr_sum REAL NOT NULL,"
	" hr_avg_n INTEGER NOT NULL, hr_avg_sum REAL NOT NULL, hr_nominal REAL,"
	" power_n INTEGER NOT NULL, power_sum INTEGER NOT NULL, metered INTEGER NOT NULL,"
	" chip_temp_max INTEGER, pcb_temp_max INTEGER,"
	" PRIMARY KEY (ts_ms, miner)) WITHOUT ROWID;"
	"CREATE INDEX status_minutes_miner ON status_minutes(miner, ts_ms);"
	"CREATE TABLE status_hours ("
	" ts_ms INTEGER NOT NULL,"
	" miner INTEGER NOT NULL REFERENCES miners(num) ON DELETE CASCADE,"
	" n INTEGER NOT NULL, mining INTEGER NOT NULL,"
	" hr_n INTEGER NOT NULL, hr_sum REAL NOT NULL,"
	" hr_avg_n INTEGER NOT NULL, hr_avg_sum REAL NOT NULL, hr_nominal REAL,"
	" power_n INTEGER NOT NULL, power_sum INTEGER NOT NULL, metered INTEGER NOT NULL,"
	" chip_temp_max INTEGER, pcb_temp_max INTEGER,"
	" PRIMARY KEY (ts_ms, miner)) WITHOUT ROWID;"
	"CREATE INDEX status_hours_miner ON status_hours(miner, ts_ms);"
	"CREATE TABLE telemetry_hours ("
	" ts_ms INTEGER NOT NULL,"
	" miner INTEGER NOT NULL REFERENCES miners(num) ON DELETE CASCADE,"
	" chain INTEGER NOT NULL, samples INTEGER NOT NULL, state TEXT,"
	" hr_realtime_ghs REAL, hr_nominal_ghs REAL, freq REAL,"
	" n_chips INTEGER NOT NULL, chips BLOB NOT NULL,"
	" PRIMARY KEY (ts_ms, miner, chain)) WITHOUT ROWID;"
	"CREATE INDEX telemetry_hours_miner ON telemetry_hours(miner, ts_ms);"
	"CREATE TABLE fleet_minutes ("
	" ts_ms INTEGER NOT NULL, model TEXT NOT NULL, minutes INTEGER NOT NULL,"
	" online INTEGER NOT NULL, mining INTEGER NOT NULL,"
	" hashrate_ghs REAL NOT NULL, power_w REAL NOT NULL,"
	" PRIMARY KEY (ts_ms, model)) WITHOUT ROWID;"
	"CREATE TABLE fleet_hours ("
	" ts_ms INTEGER NOT NULL, model TEXT NOT NULL, minutes INTEGER NOT NULL,"
	" online INTEGER NOT NULL, mining INTEGER NOT NULL,"
	" hashrate_ghs REAL NOT NULL, power_w REAL NOT NULL,"
	" PRIMARY KEY (ts_ms, model)) WITHOUT ROWID;"
	"CREATE TABLE rollups (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL DEFAULT 0,"
	" done_ms INTEGER NOT NULL DEFAULT 0, cursor TEXT);"
	"INSERT INTO rollups(name) VALUES ('statuses'), ('fleet'), ('telemetry'), ('raw'),"
	" ('minutes'), ('fleet_minutes');",

	/* 6: alerts (alerts.h, docs/alerts.md). One row per episode of a rule
	 * on a subject (a miner's MAC, a daemon, "farm"): firing until it
	 * resolves, at most one firing per (rule, subject); silences; and the
	 * outbox (notify.h): one row per notification and channel, kept until
	 * delivered or given up, sent in id order per channel. */
	"CREATE TABLE alerts ("
	" id INTEGER PRIMARY KEY,"
	" rule TEXT NOT NULL, subject TEXT NOT NULL, mac TEXT,"
	" state TEXT NOT NULL,"
	" started_ms INTEGER NOT NULL, ended_ms INTEGER,"
	" value REAL, threshold REAL, summary TEXT, detail TEXT,"
	" acked_ms INTEGER, acked_by TEXT"
	");"
	"CREATE UNIQUE INDEX alerts_firing ON alerts(rule, subject) WHERE state = 'firing';"
	"CREATE INDEX alerts_mac ON alerts(mac, started_ms);"
	"CREATE INDEX alerts_started ON alerts(started_ms);"
	"CREATE TABLE silences ("
	" id INTEGER PRIMARY KEY,"
	" rule TEXT, mac TEXT,"
	" created_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL,"
	" created_by TEXT NOT NULL, comment TEXT"
	");"
	"CREATE TABLE notifications ("
	" id INTEGER PRIMARY KEY,"
	" channel TEXT NOT NULL,"
	" key TEXT NOT NULL UNIQUE,"
	" rule TEXT NOT NULL, state TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" status TEXT NOT NULL DEFAULT 'pending',"
	" attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,"
	" last_error TEXT, delivered_ms INTEGER"
	");"
	"CREATE INDEX notifications_pending ON notifications(channel, id) WHERE status = 'pending';"
	"CREATE INDEX notifications_created ON notifications(created_ms);",

	/* 7: the API's named tokens (auth.h, docs/api.md). The token itself is
	 * never kept: its SHA-256 is what a request's token is looked up by.
	 * A revoked token's row stays (and keeps its name) for the audit. */
	"CREATE TABLE tokens ("
	" name TEXT PRIMARY KEY,"
	" role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),"
	" hash TEXT NOT NULL UNIQUE,"
	" created_ms INTEGER NOT NULL,"
	" created_by TEXT NOT NULL,"
	" revoked_ms INTEGER,"
	" last_used_ms INTEGER"
	");",
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

/* The directory path's file is in ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t len)
{
	char *slash;

	snprintf(dir, len, "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
}

/* mkdir -p of path's directory; what it creates is 0700 (the database
 * holds the farm's secrets, encrypted or not). */
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
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot create directory %s: %s", path, dir,
		 strerror(errno));
	return -1;
}

/* ------------------------------------------------------------ vacuum */

/* Where SQLite puts the VACUUM's copy: the unix VFS's order. */
static const char *temp_dir(void)
{
	static const char *const fixed[] = { "/var/tmp", "/usr/tmp", "/tmp" };
	const char *env[] = { getenv("SQLITE_TMPDIR"), getenv("TMPDIR") };
	struct stat sb;

	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		if (env[i] && stat(env[i], &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    access(env[i], W_OK | X_OK) == 0)
			return env[i];
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (stat(fixed[i], &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    access(fixed[i], W_OK | X_OK) == 0)
			return fixed[i];
	return ".";
}

/* Free bytes for us on the file system of dir, and its device. */
static int free_space(const char *dir, long long *bytes, dev_t *dev)
{
	struct statvfs vs;
	struct stat sb;

	if (statvfs(dir, &vs) < 0 || stat(dir, &sb) < 0)
		return -1;
	*bytes = (long long)vs.f_bavail * (long long)vs.f_frsize;
	*dev = sb.st_dev;
	return 0;
}

static void human(long long b, char *out, size_t len)
{
	if (b >= 1LL << 30)
		snprintf(out, len, "%.1f GiB", (double)b / (1 << 30));
	else
		snprintf(out, len, "%.1f MiB", (double)b / (1 << 20));
}

int apid_store_vacuum_room(long long data, long long free_db, long long free_tmp,
			   bool same_fs, const char *db_dir, const char *tmp_dir, char *err,
			   size_t errlen)
{
	/* The copy in the temporary directory, then every page through the
	 * WAL beside the database; each with some slack. */
	long long one = data + data / 20 + VACUUM_SLACK;
	char need[32], have[32], have_tmp[32];

	if (same_fs ? free_db >= 2 * one : free_db >= one && free_tmp >= one)
		return 0;
	human(same_fs ? 2 * one : one, need, sizeof(need));
	human(free_db, have, sizeof(have));
	human(free_tmp, have_tmp, sizeof(have_tmp));
	if (same_fs)
		snprintf(err, errlen,
			 "not enough free disk for a one-time VACUUM"
			 ": it needs %s on %s (a copy of the data in %s and as much again "
			 "for the WAL), %s is free; free some space, or point SQLITE_TMPDIR at "
			 "another disk, and start apid again", need, db_dir, tmp_dir, have);
	else
		snprintf(err, errlen,
			 "not enough free disk for a one-time VACUUM"
			 ": it needs %s free on %s (the WAL) and on %s (a copy of the data); "
			 "%s and %s are free; free some space, or point SQLITE_TMPDIR at another "
			 "disk, and start apid again", need, db_dir, tmp_dir, have, have_tmp);
	return -1;
}

/* Databases before schema 5 were created without auto_vacuum: pruned
 * pages stayed in the file. Turning incremental vacuum on takes one full
 * VACUUM. */
static int vacuum_on(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	if (query_int(db, "PRAGMA auto_vacuum") == 2)
		return 0;
	return apid_store_vacuum(db, path, "incremental vacuum on", err, errlen);
}

int apid_store_vacuum(sqlite3 *db, const char *path, const char *why, char *err, size_t errlen)
{
	long long pages = query_int(db, "PRAGMA page_count");
	long long unused = query_int(db, "PRAGMA freelist_count");
	long long psize = query_int(db, "PRAGMA page_size");
	long long data, free_db, free_tmp, t0, ms;
	char dir[4096], msg[768];
	const char *tmp = temp_dir();
	dev_t dev_db, dev_tmp;

	if (pages < 0 || unused < 0 || psize <= 0) {
		snprintf(err, errlen, "%s: cannot read the page counts: %s", path,
			 sqlite3_errmsg(db));
		return -1;
	}
	data = (pages - unused) * psize;
	dir_of(path, dir, sizeof(dir));
	if (free_space(dir, &free_db, &dev_db) < 0 || free_space(tmp, &free_tmp, &dev_tmp) < 0) {
		snprintf(err, errlen, "%s: cannot read the free disk space: %s", path,
			 strerror(errno));
		return -1;
	}
	if (apid_store_vacuum_room(data, free_db, free_tmp, dev_db == dev_tmp, dir, tmp, msg,
				   sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		return -1;
	}
	log_info("database vacuum starting path=%s why=\"%s\" data_bytes=%lld free_bytes=%lld"
		 " tmp=%s", path, why, data, free_db, tmp);
	t0 = hive_mono_ms();
	/* The copy goes to a file, not to memory (temp_store=MEMORY). */
	if (apid_store_exec(db, "PRAGMA temp_store=FILE; PRAGMA auto_vacuum=INCREMENTAL;"
			    " VACUUM; PRAGMA temp_store=MEMORY;", "vacuum", msg, sizeof(msg)) < 0 ||
	    apid_store_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", "vacuum", msg,
			    sizeof(msg)) < 0) {
		sqlite3_exec(db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
		snprintf(err, errlen, "%s: %s", path, msg);
		return -1;
	}
	ms = hive_mono_ms() - t0;
	log_info("database vacuumed path=%s data_bytes=%lld file_bytes=%lld ms=%lld"
		 " auto_vacuum=incremental", path, data,
		 query_int(db, "PRAGMA page_count") * psize, ms);
	return 0;
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

/* ------------------------------------------------------------ file modes */

/* The database is created 0600 by us, not by SQLite (0644 under the usual
 * umask); SQLite gives its -wal and -shm the database's mode. */
static int create_private(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0) {
		/* The umask could only have narrowed it; say it exactly. */
		if (fchmod(fd, 0600) < 0)
			log_warn("database chmod failed path=%s", path);
		close(fd);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
	return -1;
}

/* A database file group or others may open is narrowed to 0600 (only apid
 * reads it), with a warning; a wide directory is only warned about: it may
 * be shared on purpose, and the files in it are what matter. */
static void check_modes(const char *path)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char f[4200], dir[4096];
	struct stat sb;

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
		if (lstat(f, &sb) < 0 || !S_ISREG(sb.st_mode) || !(sb.st_mode & 077))
			continue;
		if (chmod(f, 0600) == 0)
			log_warnx("database file was open to group or others, now 0600 file=%s"
				  " mode_was=%03o", f, (unsigned)(sb.st_mode & 0777));
		else
			log_warnx("database file open to group or others file=%s mode=%03o"
				  " (chmod 600 it)", f, (unsigned)(sb.st_mode & 0777));
	}
	dir_of(path, dir, sizeof(dir));
	if (stat(dir, &sb) == 0 && (sb.st_mode & 077))
		log_warnx("database directory open to group or others dir=%s mode=%03o"
			  " (chmod 700 it: the database and its keys are apid's alone)", dir,
			  (unsigned)(sb.st_mode & 0777));
}

sqlite3 *apid_store_open(const char *path, char *err, size_t errlen)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	const char *mode;

	if (make_parent(path, err, errlen) < 0 || create_private(path, err, errlen) < 0)
		return NULL;
	check_modes(path);
	db = open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errlen);
	if (!db)
		return NULL;
	if (check_identity(db, path, err, errlen) < 0)
		goto fail;
	/* A new file gets incremental vacuum from its first page; on an old
	 * one this only takes effect with vacuum_on's VACUUM. */
	if (apid_store_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", path, err, errlen) < 0)
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
	/* The WAL file is cut back to 64 MiB after a checkpoint, so space a
	 * burst took returns too. */
	/* secure_delete: what a row loses (a secret among it) is zeroed in
	 * the page, not left in free space. */
	if (apid_store_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
			    " PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;"
			    " PRAGMA secure_delete=ON;",
			    path, err, errlen) < 0)
		goto fail;
	if (apid_store_migrate(db, N_MIGRATIONS, err, errlen) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s", path, msg);
		goto fail;
	}
	if (vacuum_on(db, path, err, errlen) < 0)
		goto fail;
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
