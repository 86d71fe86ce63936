/* test_apid_store — apid's database: the schema of the contract, the
 * versioned migrations, the refusal of a newer or foreign database, the
 * connection settings; and the packed chips format. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../apid/chips.h"
#include "../../apid/secrets.h"
#include "../../apid/store.h"
#include "hive/log.h"
#include "../lib/testlib.h"

struct fx {
	char *dir;
	char path[1024];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->dir = tl_tmpdir("store");
	assert_non_null(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/sub/dir/powerhive.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tl_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static long long qint(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -999;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *qtext(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static bool has_column(sqlite3 *db, const char *table, const char *col)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s') WHERE name='%s'",
		 table, col);
	return qint(db, sql) == 1;
}

/* Every table and column of the contract exists on a new database. */
static void test_fresh_schema(void **state)
{
	static const struct { const char *table; const char *cols; } schema[] = {
		{ "models", "alias name fw_version num_chains chips_per_chain topology max_preset "
			    "updated_ms" },
		{ "model_presets", "model name pretty watts th ord tuned" },
		{ "miners", "mac ip last_ip subnet model miner_name fw_name fw_version hostname "
			    "api_key unlock_pass managed online first_seen_ms last_seen_ms "
			    "last_error last_error_kind last_error_op last_error_ms last_status_id "
			    "last_telemetry_ms telemetry_source" },
		{ "statuses", "id mac ts_ms state state_time preset hr_realtime_ghs hr_average_ghs "
			      "hr_nominal_ghs chip_temp_max pcb_temp_max power_w power_metered "
			      "fan_duty fans chains pools hw_errors" },
		{ "telemetry", "id mac ts_ms chain state hr_realtime_ghs hr_nominal_ghs freq "
			       "n_chips chips chips_format" },
		{ "status_minutes", "ts_ms miner n mining hr_n hr_sum hr_avg_n hr_avg_sum hr_nominal "
				    "power_n power_sum metered chip_temp_max pcb_temp_max" },
		{ "status_hours", "ts_ms miner n mining hr_n hr_sum power_n power_sum" },
		{ "telemetry_hours", "ts_ms miner chain samples state n_chips chips" },
		{ "fleet_minutes", "ts_ms model minutes online mining hashrate_ghs power_w" },
		{ "fleet_hours", "ts_ms model minutes online mining hashrate_ghs power_w" },
		{ "rollups", "name last_id done_ms cursor" },
		{ "miner_errors", "id mac ts_ms op kind http_status message" },
		{ "audit", "id ts_ms actor action target detail" },
		{ "sweeps", "subnet ts_ms duration_ms probed answered miners started_ms" },
	};
	static const char *const indexes[] = { "miners_online", "miners_model", "statuses_mac_ts",
					       "statuses_ts", "telemetry_mac_ts", "telemetry_ts",
					       "miner_errors_mac_ts", "miners_ip", "miners_subnet" };
	struct fx *f = *state;
	char err[512] = "";
	sqlite3 *db = apid_store_open(f->path, err, sizeof(err));
	char *mode;

	assert_non_null(db);
	assert_int_equal(apid_store_version(db), apid_store_schema_version());
	assert_true(apid_store_schema_version() >= 2);
	for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++) {
		char cols[512], *save = NULL;

		snprintf(cols, sizeof(cols), "%s", schema[i].cols);
		for (char *c = strtok_r(cols, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
			if (!has_column(db, schema[i].table, c))
				fail_msg("%s.%s missing", schema[i].table, c);
		}
	}
	for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
		char sql[160];

		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='%s'",
			 indexes[i]);
		assert_int_equal(qint(db, sql), 1);
	}
	mode = qtext(db, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	assert_int_equal(qint(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(qint(db, "PRAGMA synchronous"), 1);   /* NORMAL */
	assert_int_equal(qint(db, "PRAGMA application_id"), APID_STORE_APP_ID);
	/* Retention gives space back: incremental vacuum from the first page. */
	assert_int_equal(qint(db, "PRAGMA auto_vacuum"), 2);
	/* Each new miner gets the next small number, the roll-ups' key. */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO miners(mac, first_seen_ms, last_seen_ms)"
				      " VALUES('aa:bb:cc:dd:ee:0a', 1, 1), ('aa:bb:cc:dd:ee:0b', 1, 1)",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(qint(db, "SELECT count(*) = 2 AND min(num) = 1 AND max(num) = 2 FROM miners"),
			 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM rollups"), 6);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM miners", NULL, NULL, NULL), SQLITE_OK);
	/* The foreign keys hold: a status needs its miner. */
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO statuses(mac, ts_ms) VALUES('x', 1)",
					  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	/* Opening again migrates nothing and keeps the data. */
	db = apid_store_open(f->path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(apid_store_version(db), apid_store_schema_version());
	sqlite3_close(db);
}

/* A database of an older apid is brought up to date, data kept. */
static void test_migrate_from_v1(void **state)
{
	struct fx *f = *state;
	char err[512] = "";
	sqlite3 *db;

	/* Build a version-1 database by hand: what the first apid wrote. */
	assert_int_equal(tl_write_file(f->path, ""), -1);   /* the directory is not there yet */
	db = apid_store_open(f->path, err, sizeof(err));    /* creates directories */
	assert_non_null(db);
	sqlite3_close(db);
	remove(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(apid_store_migrate(db, 1, err, sizeof(err)), 0);
	assert_int_equal(apid_store_version(db), 1);
	assert_false(has_column(db, "sweeps", "started_ms"));
	assert_int_equal(sqlite3_exec(db,
		"INSERT INTO miners(mac, ip, first_seen_ms, last_seen_ms)"
		" VALUES('aa:bb:cc:dd:ee:01', '127.0.0.5', 1, 2);"
		"INSERT INTO sweeps(subnet, ts_ms, miners) VALUES('127.0.0.0/24', 5, 1);",
		NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	db = apid_store_open(f->path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(apid_store_version(db), apid_store_schema_version());
	assert_true(has_column(db, "sweeps", "started_ms"));
	assert_int_equal(qint(db, "SELECT count(*) FROM miners WHERE ip='127.0.0.5'"), 1);
	assert_int_equal(qint(db, "SELECT miners FROM sweeps"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM sqlite_master WHERE name='miners_ip'"), 1);
	sqlite3_close(db);
}

/* A database written by a newer apid is refused, and left untouched. */
static void test_refuse_newer(void **state)
{
	struct fx *f = *state;
	char err[512] = "", sql[64];
	sqlite3 *db = apid_store_open(f->path, err, sizeof(err));
	int newer = apid_store_schema_version() + 1;

	assert_non_null(db);
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", newer);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	err[0] = '\0';
	assert_null(apid_store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, "newer than this apid"));
	assert_non_null(strstr(err, f->path));
	err[0] = '\0';
	assert_null(apid_store_open_readonly(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(apid_store_version(db), newer);
	sqlite3_close(db);
}

/* Another application's database is not ours to migrate. */
static void test_refuse_foreign(void **state)
{
	struct fx *f = *state;
	char err[512] = "", path[1100];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(apid_store_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PowerHive database"));

	/* Not a database at all. */
	snprintf(path, sizeof(path), "%s/text.db", f->dir);
	assert_int_equal(tl_write_file(path, "this is not sqlite, just a text file of some length"),
			 0);
	err[0] = '\0';
	assert_null(apid_store_open(path, err, sizeof(err)));
	assert_true(strlen(err) > 0);
}

/* Read-only connections see the writer's data, cannot write, and refuse a
 * database that was never migrated. */
static void test_readonly(void **state)
{
	struct fx *f = *state;
	char err[512] = "", path[1100];
	sqlite3 *rw = apid_store_open(f->path, err, sizeof(err)), *ro;

	assert_non_null(rw);
	assert_int_equal(sqlite3_exec(rw, "INSERT INTO miners(mac, first_seen_ms, last_seen_ms)"
				      " VALUES('aa:bb:cc:dd:ee:02', 1, 1)", NULL, NULL, NULL),
			 SQLITE_OK);
	ro = apid_store_open_readonly(f->path, err, sizeof(err));
	assert_non_null(ro);
	assert_int_equal(qint(ro, "SELECT count(*) FROM miners"), 1);
	assert_int_not_equal(sqlite3_exec(ro, "DELETE FROM miners", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(ro);
	sqlite3_close(rw);

	snprintf(path, sizeof(path), "%s/missing.db", f->dir);
	assert_null(apid_store_open_readonly(path, err, sizeof(err)));
}

/* An unwritable place gives a clear message. */
static void test_bad_path(void **state)
{
	char err[512] = "";

	(void)state;
	assert_null(apid_store_open("/proc/powerhive-test/x.db", err, sizeof(err)));
	assert_non_null(strstr(err, "/proc/powerhive-test"));
}

/* ------------------------------------------------------------ chips */

/* A new database: 0600 in a 0700 directory, whatever the umask; an old
 * one open to others is narrowed. */
static void test_file_modes(void **state)
{
	struct fx *f = *state;
	char err[512], dir[1100];
	struct stat sb;
	mode_t old = umask(0);
	sqlite3 *db = apid_store_open(f->path, err, sizeof(err));

	umask(old);
	assert_non_null(db);
	assert_int_equal(qint(db, "PRAGMA secure_delete"), 1);
	sqlite3_close(db);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s/sub/dir", f->dir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(chmod(f->path, 0644), 0);
	db = apid_store_open(f->path, err, sizeof(err));
	assert_non_null(db);
	sqlite3_close(db);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/* Sealed values open only with their key, in their column, for their
 * miner, unaltered; the key file is made 0600 and checked. */
static void test_secrets_values(void **state)
{
	struct fx *f = *state;
	char err[512], key[1100], out[APID_SECRET_MAX + 1], long_value[APID_SECRET_MAX + 2];
	struct apid_secrets *s, *other;
	char *a, *b;
	struct stat sb;
	sqlite3 *db = apid_store_open(f->path, err, sizeof(err));

	assert_non_null(db);
	snprintf(key, sizeof(key), "%s/secrets.key", f->dir);
	s = apid_secrets_start(db, f->path, key, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(stat(key, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, APID_SECRETS_KEY_BYTES);
	assert_int_equal(strlen(apid_secrets_key_id(s)), 8);

	a = apid_secrets_seal(s, "api_key", "aa:bb:cc:00:00:01", "k-123");
	b = apid_secrets_seal(s, "api_key", "aa:bb:cc:00:00:01", "k-123");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(apid_secrets_sealed(a));
	assert_null(strstr(a, "k-123"));
	assert_string_not_equal(a, b);                   /* a fresh nonce each time */
	assert_int_equal(apid_secrets_reveal(s, "api_key", "AA:BB:CC:00:00:01", a, out,
					     sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "k-123");
	/* Another miner, another column, a plaintext value: refused. */
	assert_int_equal(apid_secrets_reveal(s, "api_key", "aa:bb:cc:00:00:02", a, out,
					     sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "does not authenticate"));
	assert_int_equal(apid_secrets_reveal(s, "unlock_pass", "aa:bb:cc:00:00:01", a, out,
					     sizeof(out), err, sizeof(err)), -1);
	assert_int_equal(apid_secrets_reveal(s, "api_key", "aa:bb:cc:00:00:01", "k-123", out,
					     sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not encrypted"));
	/* Each byte altered, one at a time: never opens. */
	for (size_t i = 14; i < strlen(a) - 1; i++) {
		char saved = a[i];

		a[i] = a[i] == 'A' ? 'B' : 'A';
		assert_int_equal(apid_secrets_reveal(s, "api_key", "aa:bb:cc:00:00:01", a, out,
						     sizeof(out), err, sizeof(err)), -1);
		a[i] = saved;
	}
	/* Cut short, or too short to hold a tag. */
	a[strlen(a) - 4] = '\0';
	assert_int_equal(apid_secrets_reveal(s, "api_key", "aa:bb:cc:00:00:01", a, out,
					     sizeof(out), err, sizeof(err)), -1);
	assert_int_equal(apid_secrets_reveal(s, "api_key", "aa:bb:cc:00:00:01",
					     "enc1:00000000:AAAA", out, sizeof(out), err,
					     sizeof(err)), -1);
	/* Empty stays empty; NULL and "" open to ""; too long is not sealed. */
	free(b);
	b = apid_secrets_seal(s, "api_key", "aa:bb:cc:00:00:01", "");
	assert_string_equal(b, "");
	assert_int_equal(apid_secrets_reveal(s, "api_key", "x", NULL, out, sizeof(out), err,
					     sizeof(err)), 0);
	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	assert_null(apid_secrets_seal(s, "api_key", "aa:bb:cc:00:00:01", long_value));
	long_value[APID_SECRET_MAX] = '\0';
	free(a);
	a = apid_secrets_seal(s, "unlock_pass", "aa:bb:cc:00:00:01", long_value);
	assert_non_null(a);
	assert_int_equal(apid_secrets_reveal(s, "unlock_pass", "aa:bb:cc:00:00:01", a, out,
					     sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, long_value);
	/* Another key (another database beside) does not open it: it names
	 * the key id instead. */
	snprintf(key, sizeof(key), "%s/other.key", f->dir);
	other = apid_secrets_start(db, f->path, key, err, sizeof(err));
	assert_non_null(other);
	assert_string_not_equal(apid_secrets_key_id(s), apid_secrets_key_id(other));
	assert_int_equal(apid_secrets_reveal(other, "unlock_pass", "aa:bb:cc:00:00:01", a, out,
					     sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, apid_secrets_key_id(s)));
	assert_int_equal(apid_secrets_reveal(NULL, "unlock_pass", "aa:bb:cc:00:00:01", a, out,
					     sizeof(out), err, sizeof(err)), -1);
	apid_secrets_free(other);
	/* A key file others may read, or of the wrong size, is refused. */
	assert_int_equal(chmod(key, 0640), 0);
	assert_null(apid_secrets_start(db, f->path, key, err, sizeof(err)));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(truncate(key, 16), 0);
	assert_null(apid_secrets_start(db, f->path, key, err, sizeof(err)));
	assert_non_null(strstr(err, "expected exactly 32"));
	free(a);
	free(b);
	apid_secrets_free(s);
	sqlite3_close(db);
}

static void test_chips_roundtrip(void **state)
{
	static const struct apid_chip in[] = {
		{ 12.34f, 525, 1320, 65.3f, 'g', false, 0 },
		{ 0.0f, 0, 0, -12.5f, 'r', true, 4294967295u },
		{ 1e-3f, 65535, 65535, 3276.7f, 'o', false, 17 },
		{ 99.5f, 70000, -5, 9999.0f, 'x', true, 3 },   /* clamped / unknown grade */
	};
	unsigned char blob[sizeof(in) / sizeof(in[0]) * APID_CHIP_BYTES];
	struct apid_chip out[8];
	size_t n = sizeof(in) / sizeof(in[0]);

	(void)state;
	assert_int_equal(apid_chips_pack(in, n, blob), n * 16);
	assert_int_equal(apid_chips_unpack(blob, sizeof(blob), out, 8), (int)n);
	for (size_t i = 0; i < 3; i++) {
		assert_true(out[i].hr_ghs == in[i].hr_ghs);
		assert_int_equal(out[i].freq, in[i].freq);
		assert_int_equal(out[i].volt, in[i].volt);
		assert_true(out[i].temp > in[i].temp - 0.051f && out[i].temp < in[i].temp + 0.051f);
		assert_int_equal(out[i].grade, in[i].grade);
		assert_int_equal(out[i].throttled, in[i].throttled);
		assert_int_equal(out[i].errs, in[i].errs);
	}
	assert_int_equal(out[3].freq, 65535);
	assert_int_equal(out[3].volt, 0);
	assert_true(out[3].temp > 3276.6f);      /* int16 °C×10 ceiling */
	assert_int_equal(out[3].grade, '?');
	/* Little-endian on the wire: freq 525 = 0x020d at bytes 4..5. */
	assert_int_equal(blob[4], 0x0d);
	assert_int_equal(blob[5], 0x02);
	assert_int_equal(blob[10], 'g');
	/* max smaller than the blob: count still told, only max written */
	assert_int_equal(apid_chips_unpack(blob, sizeof(blob), out, 1), (int)n);
	assert_int_equal(apid_chips_unpack(blob, 17, out, 8), -1);
	assert_int_equal(apid_chips_unpack(blob, 0, out, 8), 0);
}

static void test_chips_json(void **state)
{
	static const struct apid_chip in[] = {
		{ 12.34f, 525, 1320, 65.3f, 'g', false, 0 },
		{ 11.5f, 530, 1310, 70.0f, 'o', true, 5 },
	};
	unsigned char blob[2 * APID_CHIP_BYTES];
	json_t *j;
	char *s;

	(void)state;
	apid_chips_pack(in, 2, blob);
	j = apid_chips_json(blob, sizeof(blob));
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
	assert_string_equal(s, "{\"errs\":[0,5],\"freq\":[525,530],\"grade\":\"go\","
			       "\"hr\":[12.34,11.5],\"temp\":[65.3,70.0],\"throttled\":\"01\","
			       "\"volt\":[1320,1310]}");
	free(s);
	json_decref(j);
	j = apid_chips_json(blob, 0);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"errs\":[],\"freq\":[],\"grade\":\"\",\"hr\":[],\"temp\":[],"
			       "\"throttled\":\"\",\"volt\":[]}");
	free(s);
	json_decref(j);
	assert_null(apid_chips_json(blob, 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_newer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test(test_bad_path),
		cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_values, setup, teardown),
		cmocka_unit_test(test_chips_roundtrip),
		cmocka_unit_test(test_chips_json),
	};

	hive_log_init("test_apid_store", HIVE_LOG_WARN, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
