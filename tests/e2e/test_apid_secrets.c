/* test_apid_secrets — the miners' secrets at rest (apid/secrets.h), with the
 * real bin/apid on a database as the release before wrote it: schema 6,
 * 0644 in a 0755 directory, 300 miners with plaintext API keys and unlock
 * passwords (each key changed once, so the old one lingers in free space),
 * history rows, and a WAL kept on disk full of plaintext frames.
 *   - upgrade: miners, history and audit survive; every job apid sends
 *     carries its miner's right key and the credentials reply the right
 *     password; every value is sealed; no byte search of powerhive.db,
 *     -wal or -shm finds any of the 300 keys, passwords or old keys (the
 *     same search finds them before); the files are 0600, the key file
 *     0600 and 32 bytes, the token file 0600; the wide directory is warned
 *     about; no secret in the log;
 *   - a wrong, missing, readable-by-others or short key file stops apid
 *     with a clear message and changes nothing;
 *   - a tampered value and one moved to another miner are refused: that
 *     miner gets no job and no password, apid keeps running; they stop a
 *     rotation (nothing changes) until cleared;
 *   - rotation: refused while apid runs; re-seals everything under a new
 *     key file; a rotation cut after its commit is finished at the next
 *     start, one cut before it is dropped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../apid/store.h"
#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/msg.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define N 300
#define STATUSES_EACH 4
#define TAMPERED 7          /* its api_key altered */
#define MOVED_FROM 8        /* its unlock_pass copied ... */
#define MOVED_TO 9          /* ... over this one's */

static struct {
	struct ts_suite s;
	char data[1100], db[1200], key[1200], next[1300], token[1200];
	char mac[N][18];
	char ak[N][40], up[N][40], old[N][40];   /* "" once cleared */
	struct hive_bus *req;
} F;

static void rand_hex(char *out, size_t bytes)
{
	unsigned char r[32];

	assert_true(bytes <= sizeof(r));
	assert_int_equal(getrandom(r, bytes, 0), (ssize_t)bytes);
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

static void exec_db(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

static long long qint(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Everything the miners table holds, to tell "nothing changed". */
static char *snapshot(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *v;

	assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(mac || '=' ||"
					    " coalesce(api_key, '-') || '/' || coalesce(unlock_pass, '-'),"
					    " ',') FROM (SELECT * FROM miners ORDER BY mac)", -1, &st,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_non_null(v);
	return v;
}

/* ------------------------------------------------------------ files */

static unsigned char *read_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, got;

	*len = 0;
	if (!f)
		return NULL;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* How many of the values (mask: 1 keys, 2 passwords, 4 old keys) a byte
 * search of the database's three files finds: what `strings | grep` would. */
static int leaks(const char *what, int mask)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[1300];
	int found = 0;

	for (size_t k = 0; k < 3; k++) {
		size_t len;
		unsigned char *b;

		snprintf(path, sizeof(path), "%s%s", F.db, suffix[k]);
		b = read_bytes(path, &len);
		for (int i = 0; b && i < N; i++) {
			const char *v[3] = { F.ak[i], F.up[i], F.old[i] };

			for (int j = 0; j < 3; j++)
				if ((mask & 1 << j) && v[j][0] && memmem(b, len, v[j], strlen(v[j]))) {
					if (found++ < 3)
						fprintf(stderr, "  %s: %s holds %s\n", what, path, v[j]);
				}
		}
		free(b);
	}
	return found;
}

static int mode_of(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return -1;
	return (int)(sb.st_mode & 0777);
}

static void write_key(const char *path, const unsigned char *key, size_t n, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(key, 1, n, f), n);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void read_key(const char *path, unsigned char key[32])
{
	size_t n;
	unsigned char *b = read_bytes(path, &n);

	assert_non_null(b);
	assert_int_equal(n, 32);
	memcpy(key, b, 32);
	free(b);
}

/* ------------------------------------------------------------ the release's database */

static void release_db(void)
{
	sqlite3 *db;
	sqlite3_stmt *ins, *upd, *stat;
	char err[512], tail[17], sql[256];
	int one = 1;
	long long now = hive_wall_ms();

	umask(022);                                     /* what the release ran under */
	snprintf(F.data, sizeof(F.data), "%s/data", F.s.dir);
	snprintf(F.db, sizeof(F.db), "%s/powerhive.db", F.data);
	snprintf(F.key, sizeof(F.key), "%s/secrets.key", F.data);
	snprintf(F.next, sizeof(F.next), "%s.next", F.key);
	snprintf(F.token, sizeof(F.token), "%s/api-token", F.data);
	assert_int_equal(mkdir(F.data, 0755), 0);
	assert_int_equal(sqlite3_open(F.db, &db), SQLITE_OK);
	exec_db(db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;"
		" PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
	/* The WAL stays on disk after the close, frames and all: as after a
	 * kill -9 of the release. */
	assert_int_equal(sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &one),
			 SQLITE_OK);
	if (apid_store_migrate(db, 6, err, sizeof(err)) < 0)
		fail_msg("schema 6: %s", err);
	assert_int_equal(apid_store_version(db), 6);

	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO miners(mac, ip, last_ip, subnet, model, managed, online, first_seen_ms,"
		" last_seen_ms, api_key, unlock_pass) VALUES(?1, ?2, ?2, ?3, 's19', 1, 1, ?4, ?4,"
		" ?5, ?6)", -1, &ins, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"UPDATE miners SET api_key=?2, hostname='miner-' || ?1, last_error='a longer error"
		" message that moves the row', last_seen_ms=last_seen_ms+1 WHERE mac=?1", -1, &upd,
		NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO statuses(mac, ts_ms, state, hr_realtime_ghs, power_w, chip_temp_max)"
		" VALUES(?1, ?2, 'mining', 95000.5, 3250, 71)", -1, &stat, NULL), SQLITE_OK);
	exec_db(db, "BEGIN");
	for (int i = 0; i < N; i++) {
		char ip[32], subnet[32];

		snprintf(F.mac[i], sizeof(F.mac[i]), "aa:53:00:00:%02x:%02x", i >> 8, i & 0xff);
		snprintf(ip, sizeof(ip), "127.0.%d.%d", 4 + i / 150, 1 + i % 150);
		snprintf(subnet, sizeof(subnet), "127.0.%d.0/24", 4 + i / 150);
		rand_hex(tail, 8);
		snprintf(F.old[i], sizeof(F.old[i]), "oldkey-%03d-%.16s", i, tail);
		rand_hex(tail, 8);
		snprintf(F.ak[i], sizeof(F.ak[i]), "apikey-%03d-%.16s", i, tail);
		rand_hex(tail, 8);
		snprintf(F.up[i], sizeof(F.up[i]), "unlock-%03d-%.16s", i, tail);
		sqlite3_bind_text(ins, 1, F.mac[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, ip, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 3, subnet, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 4, now - 3600000);
		sqlite3_bind_text(ins, 5, F.old[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, F.up[i], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	exec_db(db, "COMMIT; BEGIN");
	/* The key the miner has now: the old one stays in the freed space. */
	for (int i = 0; i < N; i++) {
		sqlite3_bind_text(upd, 1, F.mac[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(upd, 2, F.ak[i], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(upd), SQLITE_DONE);
		sqlite3_reset(upd);
		for (int k = 0; k < STATUSES_EACH; k++) {
			sqlite3_bind_text(stat, 1, F.mac[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(stat, 2, now - 60000LL * (k + 1));
			assert_int_equal(sqlite3_step(stat), SQLITE_DONE);
			sqlite3_reset(stat);
		}
	}
	snprintf(sql, sizeof(sql), "INSERT INTO audit(ts_ms, actor, action, target, detail)"
		 " VALUES(%lld, 'api', 'miner.patch', 'aa:53:00:00:00:01',"
		 " '{\"unlock_pass\":\"***\"}'); COMMIT", now - 60000);
	exec_db(db, sql);
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	sqlite3_finalize(stat);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_int_equal(mode_of(F.db), 0644);
}

/* ------------------------------------------------------------ apid */

static struct hive_bus *bus(enum hive_bus_role role, const char *key, const char *src)
{
	struct hive_bus_opts o = { .listen = false, .sendbuf = 8192, .recvbuf = 8192,
				   .send_timeout_ms = 5000, .recv_timeout_ms = 2000,
				   .source = src, .boot = hive_wall_ms() };
	char err[256];
	struct hive_bus *b = hive_bus_open(role, ts_bus(&F.s, key), &o, err, sizeof(err));

	if (!b)
		fail_msg("bus %s: %s", key, err);
	return b;
}

static void apid_up(void)
{
	const char *args[] = { "-l", "debug", NULL };

	assert_non_null(ts_start(&F.s, "apid", NULL, args, NULL));
	if (!F.req)
		F.req = bus(HIVE_BUS_REQUEST, "discovery_control", "e2e/secrets/req");
}

static void apid_down(void)
{
	int st = ts_stop(&F.s, "apid", SIGTERM, 10000);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* apid run by hand with extra arguments; its exit code, its output in out. */
static int apid_run(const char *extra, char **out)
{
	char cmd[3000];

	assert_int_equal(ts_write_config(&F.s), 0);
	snprintf(cmd, sizeof(cmd), "timeout 30 %s -c %s %s 2>&1", tl_bin("apid"), F.s.cfg, extra);
	return tl_run(cmd, out);
}

/* apid must refuse to start, saying `says`, and change nothing. */
static void refuses(const char *says)
{
	char *before = snapshot(), *after, *out = NULL;
	int rc = apid_run("", &out);

	if (rc == 0 || rc == 124 || !out || !strstr(out, says))
		fail_msg("apid exit %d, expected a refusal saying \"%s\"; output:\n%s", rc, says,
			 out ? out : "-");
	after = snapshot();
	assert_string_equal(before, after);
	free(before);
	free(after);
	free(out);
}

static int index_of(const char *mac)
{
	unsigned hi, lo;

	if (!mac || sscanf(mac, "aa:53:00:00:%x:%x", &hi, &lo) != 2 || (int)(hi << 8 | lo) >= N)
		return -1;
	return (int)(hi << 8 | lo);
}

/* Pulls status jobs until every miner with a key has had one (10 s at
 * most): each carries its miner's key; a miner without one gets none. */
static void jobs_right(void)
{
	struct hive_bus *pull = bus(HIVE_BUS_PULL, "jobs_status", "pollerd/e2e/secrets");
	bool seen[N] = { false };
	int want = 0, got = 0, wrong = 0, stray = 0;
	int64_t end = hive_mono_ms() + 10000;

	for (int i = 0; i < N; i++)
		want += F.ak[i][0] != '\0';
	while (got < want && hive_mono_ms() < end) {
		struct hive_envelope env;
		const char *key;
		int i;

		memset(&env, 0, sizeof(env));
		if (hive_bus_recv(pull, &env, 500) != HIVE_BUS_OK)
			continue;
		i = index_of(json_string_value(json_object_get(env.body, "mac")));
		key = json_string_value(json_object_get(env.body, "api_key"));
		if (i < 0 || !F.ak[i][0])
			stray++;
		else if (!key || strcmp(key, F.ak[i]) != 0)
			wrong++;
		else if (!seen[i]) {
			seen[i] = true;
			got++;
		}
		hive_envelope_clear(&env);
	}
	hive_bus_close(pull);
	if (got != want || wrong || stray)
		fail_msg("jobs: %d of %d miners with their right key, %d with a wrong one, %d for"
			 " a miner without a key", got, want, wrong, stray);
}

/* The credentials reply for miner i: its key and password, or none. */
static void credentials_right(int i)
{
	struct hive_envelope env = { 0 };
	json_t *body = json_pack("{s:s}", "mac", F.mac[i]);
	const char *k, *p;

	assert_int_equal(hive_bus_request(F.req, HIVE_TOPIC_CTL_CREDENTIALS, body, &env, 3000),
			 HIVE_BUS_OK);
	json_decref(body);
	assert_string_equal(env.topic, HIVE_TOPIC_CTL_CREDENTIALS);
	assert_true(json_is_true(json_object_get(env.body, "known")));
	k = json_string_value(json_object_get(env.body, "api_key"));
	p = json_string_value(json_object_get(env.body, "unlock_pass"));
	if (F.ak[i][0])
		assert_string_equal(k ? k : "(none)", F.ak[i]);
	else
		assert_null(k);
	if (F.up[i][0])
		assert_string_equal(p ? p : "(none)", F.up[i]);
	else
		assert_null(p);
	hive_envelope_clear(&env);
}

/* On bus.control, anyone's endpoint, credentials are refused: an error
 * reply that carries no secret. */
static void credentials_refused_on_control(int i)
{
	struct hive_bus *req = bus(HIVE_BUS_REQUEST, "control", "pollerd/e2e/secrets");
	struct hive_envelope env = { 0 };
	json_t *body = json_pack("{s:s}", "mac", F.mac[i]);
	char *all;

	assert_int_equal(hive_bus_request(req, HIVE_TOPIC_CTL_CREDENTIALS, body, &env, 5000),
			 HIVE_BUS_OK);
	json_decref(body);
	assert_string_equal(env.topic, HIVE_TOPIC_CTL_ERROR);
	all = json_dumps(env.body, JSON_COMPACT);
	assert_non_null(strstr(all, "bus.discovery_control"));
	if (F.ak[i][0])
		assert_null(strstr(all, F.ak[i]));
	if (F.up[i][0])
		assert_null(strstr(all, F.up[i]));
	free(all);
	hive_envelope_clear(&env);
	hive_bus_close(req);
}

/* The key id every sealed value names; all must name one. */
static void sealed_id(char id[9])
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0;

	id[0] = '\0';
	assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT api_key FROM miners UNION ALL"
					    " SELECT unlock_pass FROM miners", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (!v || !*v)
			continue;
		if (strncmp(v, "enc1:", 5) != 0 || strlen(v) < 14 || v[13] != ':')
			fail_msg("a value not sealed: %.12s...", v);
		if (!id[0])
			snprintf(id, 9, "%.8s", v + 5);
		else if (strncmp(id, v + 5, 8) != 0)
			fail_msg("two key ids: %s and %.8s", id, v + 5);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(n > 0);
}

static bool log_has(const char *text)
{
	struct ts_proc *p = ts_find(&F.s, "apid");
	char *log = p ? tl_read_file(p->log) : NULL;
	bool has = log && strstr(log, text);

	free(log);
	return has;
}

/* ------------------------------------------------------------ tests */

static void test_upgrade(void **state)
{
	char id[9], *log;
	sqlite3 *db;
	int in_log = 0;
	struct ts_proc *p;

	(void)state;
	assert_int_equal(ts_init(&F.s, "secrets"), 0);
	release_db();
	assert_int_equal(ts_merge(&F.s, "{\"database\": {\"path\": \"%s\"},"
				  " \"network\": {\"subnets\": [\"127.0.4.0/24\", \"127.0.5.0/24\"]},"
				  " \"http\": {\"auth\": {\"token_file\": \"%s\"}},"
				  " \"intervals\": {\"status_seconds\": 1, \"telemetry_seconds\": 600}}",
				  F.db, F.token), 0);
	/* The search works: before the upgrade it finds them, the replaced
	 * keys too. */
	assert_true(leaks("before", 1) > 0);
	assert_true(leaks("before", 2) > 0);
	assert_true(leaks("before", 4) > 0);

	apid_up();
	jobs_right();
	for (int i = 0; i < N; i += 37)
		credentials_right(i);
	credentials_refused_on_control(1);
	/* While it runs: no plaintext in any of the three files. */
	assert_int_equal(leaks("running", 7), 0);
	assert_int_equal(mode_of(F.db), 0600);
	{
		char wal[1300], shm[1300];

		snprintf(wal, sizeof(wal), "%s-wal", F.db);
		snprintf(shm, sizeof(shm), "%s-shm", F.db);
		assert_int_equal(mode_of(wal), 0600);
		assert_int_equal(mode_of(shm), 0600);
	}
	assert_int_equal(mode_of(F.key), 0600);
	{
		unsigned char k[32];

		read_key(F.key, k);
	}
	assert_int_equal(mode_of(F.token), 0600);
	assert_int_equal(mode_of(F.data), 0755);             /* not ours to change ... */
	assert_true(log_has("database directory open to group or others"));  /* ... said */
	assert_true(log_has("database file was open to group or others, now 0600"));
	assert_true(log_has("secrets encrypted values=600"));
	apid_down();

	/* Nothing lost; all sealed under one key; no secret in the log. */
	assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(qint(db, "SELECT count(*) FROM miners"), N);
	assert_int_equal(qint(db, "SELECT count(*) FROM statuses"), N * STATUSES_EACH);
	assert_int_equal(qint(db, "SELECT count(*) FROM miners WHERE hostname = 'miner-' || mac"), N);
	assert_int_equal(qint(db, "SELECT count(*) FROM audit WHERE action = 'miner.patch'"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM audit WHERE action = 'secrets.encrypt'"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM audit WHERE action = 'secrets.vacuum'"), 1);
	assert_int_equal(qint(db, "PRAGMA user_version"), apid_store_schema_version());
	sqlite3_close(db);
	sealed_id(id);
	assert_int_equal(leaks("stopped", 7), 0);
	p = ts_find(&F.s, "apid");
	log = tl_read_file(p->log);
	assert_non_null(log);
	for (int i = 0; i < N; i++)
		in_log += strstr(log, F.ak[i]) || strstr(log, F.up[i]) || strstr(log, F.old[i]);
	free(log);
	assert_int_equal(in_log, 0);
}

static void test_bad_key_files(void **state)
{
	unsigned char good[32], other[32];

	(void)state;
	read_key(F.key, good);
	assert_int_equal(getrandom(other, sizeof(other), 0), 32);
	write_key(F.key, other, 32, 0600);
	refuses("this is not their key file");
	read_key(F.key, other);                            /* left as it was */
	unlink(F.key);
	refuses("is missing");
	assert_int_equal(access(F.key, F_OK), -1);         /* no new key made */
	write_key(F.key, good, 32, 0644);
	refuses("chmod 600");
	write_key(F.key, good, 31, 0600);
	refuses("expected exactly 32");
	write_key(F.key, good, 32, 0600);
	apid_up();
	credentials_right(1);
	apid_down();
}

static void test_tampered(void **state)
{
	char *out = NULL, *before, *after;
	sqlite3 *db;
	char sql[512];
	int rc;

	(void)state;
	assert_int_equal(sqlite3_open(F.db, &db), SQLITE_OK);
	/* One byte of a ciphertext changed; a password sealed for another
	 * miner copied over this one's. */
	snprintf(sql, sizeof(sql),
		 "UPDATE miners SET api_key = substr(api_key, 1, 30) ||"
		 " CASE substr(api_key, 31, 1) WHEN 'A' THEN 'B' ELSE 'A' END ||"
		 " substr(api_key, 32) WHERE mac = '%s';"
		 "UPDATE miners SET unlock_pass = (SELECT unlock_pass FROM miners WHERE mac = '%s')"
		 " WHERE mac = '%s'", F.mac[TAMPERED], F.mac[MOVED_FROM], F.mac[MOVED_TO]);
	exec_db(db, sql);
	sqlite3_close(db);

	/* A rotation stops at them and changes nothing. */
	before = snapshot();
	rc = apid_run("--rotate-secrets-key", &out);
	if (rc == 0 || !out || !strstr(out, "does not authenticate") || !strstr(out, F.mac[TAMPERED]))
		fail_msg("rotation over a tampered value: exit %d\n%s", rc, out ? out : "-");
	free(out);
	after = snapshot();
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* apid runs: those two are refused, the rest work. */
	apid_up();
	F.ak[TAMPERED][0] = '\0';                         /* no job for it */
	F.up[MOVED_TO][0] = '\0';                         /* no password for it */
	jobs_right();
	credentials_right(TAMPERED);
	credentials_right(MOVED_TO);
	credentials_right(MOVED_FROM);
	assert_true(log_has("does not open"));
	/* No rotation beside a running apid. */
	rc = apid_run("--rotate-secrets-key", &out);
	if (rc == 0 || !out || !strstr(out, "apid is running"))
		fail_msg("rotation beside apid: exit %d\n%s", rc, out ? out : "-");
	free(out);
	apid_down();

	/* Cleared, as the message says; the miner would get them again. */
	assert_int_equal(sqlite3_open(F.db, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE miners SET api_key = NULL WHERE mac = '%s';"
		 "UPDATE miners SET unlock_pass = NULL WHERE mac = '%s'", F.mac[TAMPERED],
		 F.mac[MOVED_TO]);
	exec_db(db, sql);
	sqlite3_close(db);
}

static void test_rotate(void **state)
{
	unsigned char k1[32], k2[32], k3[32];
	char id1[9], id2[9], id3[9], *out = NULL;
	sqlite3 *db;
	int rc;

	(void)state;
	sealed_id(id1);
	read_key(F.key, k1);

	rc = apid_run("--rotate-secrets-key", &out);
	if (rc != 0)
		fail_msg("rotation: exit %d\n%s", rc, out ? out : "-");
	free(out);
	read_key(F.key, k2);
	assert_memory_not_equal(k1, k2, 32);
	assert_int_equal(mode_of(F.key), 0600);
	assert_int_equal(access(F.next, F_OK), -1);
	sealed_id(id2);
	assert_string_not_equal(id1, id2);
	assert_int_equal(leaks("rotated", 7), 0);
	assert_int_equal(sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(qint(db, "SELECT count(*) FROM audit WHERE action = 'secrets.rotate'"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM audit WHERE action = 'secrets.vacuum'"), 2);
	sqlite3_close(db);
	apid_up();
	jobs_right();
	credentials_right(0);
	apid_down();

	/* Cut after its commit: the rows are under the new key, the key file
	 * still the old one, the new one beside it. The start finishes it. */
	write_key(F.key, k1, 32, 0600);
	write_key(F.next, k2, 32, 0600);
	apid_up();
	assert_true(log_has("secrets key rotation finished at start"));
	credentials_right(3);
	apid_down();
	read_key(F.key, k3);
	assert_memory_equal(k2, k3, 32);
	assert_int_equal(access(F.next, F_OK), -1);

	/* Cut before its commit: a new key beside, the rows under the one in
	 * force. The start drops it. */
	assert_int_equal(getrandom(k3, sizeof(k3), 0), 32);
	write_key(F.next, k3, 32, 0600);
	apid_up();
	assert_true(log_has("secrets key rotation had not finished"));
	credentials_right(2);
	apid_down();
	read_key(F.key, k3);
	assert_memory_equal(k2, k3, 32);
	assert_int_equal(access(F.next, F_OK), -1);
	sealed_id(id3);
	assert_string_equal(id2, id3);
}

static int teardown(void **state)
{
	(void)state;
	if (F.req)
		hive_bus_close(F.req);
	ts_down(&F.s, false);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_bad_key_files),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_rotate),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
