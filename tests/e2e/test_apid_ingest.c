/* test_apid_ingest — the real bin/apid on a temporary database, fed over
 * the real bus by a test publisher:
 *   - 50,000 status events arrive in SQLite with none lost (figure);
 *   - kill -9 in the middle of a write burst leaves a database that passes
 *     integrity_check and holds every event of every batch apid logged as
 *     committed;
 *   - retention prunes what is older than its days;
 *   - a sweep marks unseen miners offline (ip NULL, last_ip kept), an IP
 *     move keeps one record, jobs go to online miners with a key only, and
 *     the feed tells it;
 *   - forged events are refused, counted by reason and change nothing: a
 *     seen outside network.subnets, a sweep of another subnet, an empty
 *     sweep (held until a second one confirms it), a status a day ahead,
 *     results without their job's nonce, with a wrong one, for another
 *     miner, or twice.
 * The database is opened by the test only after apid has stopped (or was
 * killed); while it runs, the test asks apid over bus.control. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "hive/bus.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"
#include "../lib/busfix.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define DAY_MS 86400000LL

struct proc {
	struct ts_suite s;       /* config, ports, the temp dir */
	char log[1024], db[1024];
	pid_t pid;
	struct hive_bus *req;
};

static struct hive_bus *bus(enum hive_bus_role role, const char *url, const char *src)
{
	struct hive_bus_opts o = { .listen = false, .sendbuf = 8192, .recvbuf = 8192,
				   .send_timeout_ms = 5000, .recv_timeout_ms = 2000,
				   .source = src, .boot = hive_wall_ms() };
	char err[256];
	struct hive_bus *b = hive_bus_open(role, url, &o, err, sizeof(err));

	if (!b)
		fail_msg("bus %s: %s", url, err);
	return b;
}

/* apid's health over bus.control, or NULL. */
static json_t *health(struct proc *p)
{
	struct hive_envelope env = { 0 };
	json_t *body = json_object(), *h = NULL;

	if (hive_bus_request(p->req, HIVE_TOPIC_CTL_HEALTH, body, &env, 2000) == HIVE_BUS_OK &&
	    strcmp(env.topic, HIVE_TOPIC_CTL_HEALTH) == 0)
		h = json_incref(env.body);
	hive_envelope_clear(&env);
	json_decref(body);
	return h;
}

static long long hget(json_t *h, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(h, a);

	if (b)
		v = json_object_get(v, b);
	if (c)
		v = json_object_get(v, c);
	return json_integer_value(v);
}

static bool answers(void *arg)
{
	json_t *h = health(arg);

	json_decref(h);
	return h != NULL;
}

/* Writes the config (extra merged over the base) and starts apid. */
static void start(struct proc *p, const char *extra)
{
	const char *args[] = { "-l", "debug", NULL };
	struct ts_proc *a;

	if (!p->s.dir) {
		assert_int_equal(ts_init(&p->s, "apid-e2e"), 0);
		snprintf(p->log, sizeof(p->log), "%s/apid.log", p->s.dir);
		snprintf(p->db, sizeof(p->db), "%s/data/powerhive.db", p->s.dir);
		assert_int_equal(ts_merge(&p->s, "{\"database\": {\"path\": \"%s\",\n"
					  "   \"batch_max\": 500, \"batch_ms\": 200},\n"
					  " \"http\": {\"auth\": {\"token\": "
					  "\"e2e-token-0123456789abcdef0123456789\",\n"
					  "   \"token_file\": \"%s/token\"}},\n"
					  /* These tests play the workers by hand with
					   * thousands of results for jobs apid never
					   * sent; the nonce is tested below. */
					  " \"bus\": {\"require_job_nonce\": false},\n"
					  " \"intervals\": {\"status_seconds\": 60,\n"
					  "   \"telemetry_seconds\": 600}}", p->db, p->s.dir), 0);
	}
	if (extra)
		assert_int_equal(ts_merge(&p->s, "%s", extra), 0);
	a = ts_start(&p->s, "apid", NULL, args, NULL);
	assert_non_null(a);
	p->pid = a->pid;
	if (!p->req)
		p->req = bus(HIVE_BUS_REQUEST, ts_bus(&p->s, "control"), "e2e/req/1");
	if (tl_wait_until(10000, answers, p) < 0) {
		char *log = tl_read_file(p->log);

		fail_msg("apid did not answer on %s; log:\n%s", ts_bus(&p->s, "control"),
			 log ? log : "-");
	}
}

static void stop(struct proc *p)
{
	int st;

	if (p->pid <= 0)
		return;
	st = ts_stop(&p->s, "apid", SIGTERM, 10000);
	p->pid = -1;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* The temp dir stays with KEEP_TMP. */
static void cleanup(struct proc *p)
{
	if (p->pid > 0)
		ts_stop(&p->s, "apid", SIGKILL, 2000);
	if (p->req)
		hive_bus_close(p->req);
	ts_down(&p->s, false);
}

struct until {
	struct proc *p;
	long long stored;
	json_t *last;
};

/* events.stored reached, or events lost (then waiting is pointless). */
static bool stored_reached(void *arg)
{
	struct until *u = arg;
	json_t *h = health(u->p);

	if (!h)
		return false;
	json_decref(u->last);
	u->last = h;
	return hget(h, "events", "stored", NULL) >= u->stored ||
	       hget(h, "events", "lost", NULL) > 0;
}

static json_t *wait_stored(struct proc *p, long long n, int timeout_ms)
{
	struct until u = { p, n, NULL };

	tl_wait_until(timeout_ms, stored_reached, &u);
	if (!u.last)
		fail_msg("no health from apid");
	if (hget(u.last, "events", "stored", NULL) < n) {
		char *s = json_dumps(json_object_get(u.last, "events"), JSON_COMPACT);

		fail_msg("stored %lld of %lld: %s", hget(u.last, "events", "stored", NULL), n, s);
	}
	return u.last;
}

static bool connected(void *arg)
{
	return hive_bus_peers(arg) > 0;
}

static void send_json(struct hive_bus *pub, const char *topic, json_t *body)
{
	assert_non_null(body);
	assert_int_equal(hive_bus_send(pub, topic, body, false), HIVE_BUS_OK);
	json_decref(body);
}

static void send_seen(struct hive_bus *pub, const char *mac, const char *ip, const char *subnet)
{
	send_json(pub, HIVE_TOPIC_MINER_SEEN,
		  json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "mac", mac, "ip", ip,
			    "subnet", subnet, "model", "s19", "miner", "Antminer S19",
			    "fw_name", "vnish", "fw_version", "1.5.0", "hostname", "m"));
}

/* A status body of realistic size (~700 bytes on the wire). */
static json_t *status_body(const char *mac, long long job)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:i,s:s,s:f,s:f,s:f,s:i,s:i,s:i,s:b,s:i,s:[i,i,i,i],"
			 "s:i,s:[{s:i,s:s,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i},"
			 "{s:i,s:s,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}],"
			 "s:{s:i,s:i,s:i,s:i,s:s,s:s},s:i}",
			 "job", (json_int_t)job, "mac", mac, "ip", "127.0.0.1", "state", "mining",
			 "state_time", 3600, "preset", "2620", "hr_realtime_ghs", 95123.4,
			 "hr_average_ghs", 95000.1, "hr_nominal_ghs", 95000.0, "chip_temp_max", 72,
			 "pcb_temp_max", 61, "power_w", 3250, "power_metered", 1, "fan_duty", 70,
			 "fans", 5400, 5420, 5390, 5410, "hw_errors", 12,
			 "chains",
			 "id", 0, "state", "mining", "hr_rt_ghs", 31700.5, "freq_mhz", 525,
			 "voltage", 1320, "chip_temp_max", 72, "pcb_temp_max", 61, "red", 0,
			 "orange", 1, "grey", 0, "hw_errors", 4,
			 "id", 1, "state", "mining", "hr_rt_ghs", 31600.5, "freq_mhz", 525,
			 "voltage", 1320, "chip_temp_max", 70, "pcb_temp_max", 60, "red", 0,
			 "orange", 0, "grey", 0, "hw_errors", 8,
			 "pools", "total", 3, "working", 1, "accepted", 1000, "rejected", 2,
			 "url", "stratum+tcp://127.0.0.1:3333", "user", "farm.worker",
			 "latency_ms", 35);
}

static long long qint(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -999;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *qtext(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = strdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
						      : "NULL");
	sqlite3_finalize(st);
	assert_non_null(v);
	return v;
}

static void assert_text(sqlite3 *db, const char *sql, const char *want)
{
	char *got = qtext(db, sql);

	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", sql, got, want);
	free(got);
}

static sqlite3 *open_db(struct proc *p)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open_v2(p->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

/* ------------------------------------------------------------ 50,000 */

static void test_ingest_50000(void **state)
{
	struct proc p = { 0 };
	struct hive_bus *pub, *dpub;
	const int miners = 1000, events = 50000;
	char mac[18], ip[16];
	long long t0, t_sent, t1;
	json_t *h;
	sqlite3 *db;
	long long stored, lost;

	(void)state;
	start(&p, NULL);
	pub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "events"), "pollerd/e2e/1");
	/* apid believes hive.miner.seen only from discoverd's endpoint. */
	dpub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "discovery_events"), "discoverd/e2e/1");
	assert_int_equal(tl_wait_until(5000, connected, pub), 0);
	assert_int_equal(tl_wait_until(5000, connected, dpub), 0);
	usleep(200 * 1000);
	for (int i = 0; i < miners; i++) {
		tl_mac_of(i, mac);
		snprintf(ip, sizeof(ip), "127.0.%d.%d", i / 250, i % 250 + 1);
		send_seen(dpub, mac, ip, "127.0.0.0/16");
	}
	json_decref(wait_stored(&p, miners, 20000));

	t0 = hive_mono_ms();
	for (int i = 0; i < events; i++) {
		tl_mac_of(i % miners, mac);
		send_json(pub, HIVE_TOPIC_STATUS_RESULT, status_body(mac, 0));
	}
	t_sent = hive_mono_ms();
	h = wait_stored(&p, miners + events, 60000);
	t1 = hive_mono_ms();
	stored = hget(h, "events", "stored", NULL) - miners;
	lost = hget(h, "events", "lost", NULL);
	printf("figure: apid ingest events=%d stored=%lld lost=%lld rate=%.0f/s\n", events, stored,
	       lost, events * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1));
	printf("figure: apid ingest publisher=%.0f/s batches=%lld max_batch=%lld\n",
	       events * 1000.0 / (double)(t_sent - t0 > 0 ? t_sent - t0 : 1),
	       hget(h, "database", "batches", NULL), hget(h, "database", "max_batch", NULL));
	fflush(stdout);
	assert_int_equal(lost, 0);
	assert_int_equal(hget(h, "events", "rejected", NULL), 0);
	assert_int_equal(stored, events);
	json_decref(h);
	hive_bus_close(pub);
	hive_bus_close(dpub);
	stop(&p);

	db = open_db(&p);
	assert_text(db, "PRAGMA integrity_check", "ok");
	assert_int_equal(qint(db, "SELECT count(*) FROM statuses"), events);
	assert_int_equal(qint(db, "SELECT count(*) FROM miners m WHERE last_status_id ="
			      " (SELECT max(id) FROM statuses s WHERE s.mac = m.mac)"), miners);
	sqlite3_close(db);
	cleanup(&p);
}

/* ------------------------------------------------------------ kill -9 */

/* The highest seq of a status batch apid logged as committed. */
static long long committed_seq(const char *log_path)
{
	char *log = tl_read_file(log_path), *line, *save = NULL;
	long long best = 0;

	if (!log)
		return 0;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *s;

		if (!strstr(line, "batch committed") ||
		    !strstr(line, "last_topic=" HIVE_TOPIC_STATUS_RESULT " "))
			continue;
		s = strstr(line, " last_seq=");
		if (s && atoll(s + 10) > best)
			best = atoll(s + 10);
	}
	free(log);
	return best;
}

static void test_kill9_mid_burst(void **state)
{
	struct proc p = { 0 };
	struct hive_bus *pub, *dpub;
	char mac[18], ip[16];
	long long committed, rows, sent = 0;
	sqlite3 *db;
	json_t *h;

	(void)state;
	start(&p, "{\"database\":{\"batch_max\":200,\"batch_ms\":50}}");
	pub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "events"), "pollerd/e2e/2");
	/* apid believes hive.miner.seen only from discoverd's endpoint. */
	dpub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "discovery_events"), "discoverd/e2e/2");
	assert_int_equal(tl_wait_until(5000, connected, pub), 0);
	assert_int_equal(tl_wait_until(5000, connected, dpub), 0);
	usleep(200 * 1000);
	for (int i = 0; i < 100; i++) {
		tl_mac_of(i, mac);
		snprintf(ip, sizeof(ip), "127.0.1.%d", i + 1);
		send_seen(dpub, mac, ip, "127.0.1.0/24");
	}
	json_decref(wait_stored(&p, 100, 10000));
	/* A burst; apid dies in the middle of it. */
	for (int i = 0; i < 60000; i++) {
		tl_mac_of(i % 100, mac);
		send_json(pub, HIVE_TOPIC_STATUS_RESULT, status_body(mac, 0));
		sent++;
		if (i == 20000) {
			assert_int_equal(kill(p.pid, SIGKILL), 0);
			break;
		}
	}
	ts_stop(&p.s, "apid", SIGKILL, 5000);
	p.pid = -1;
	hive_bus_close(pub);
	hive_bus_close(dpub);

	committed = committed_seq(p.log);
	db = open_db(&p);
	assert_text(db, "PRAGMA integrity_check", "ok");
	rows = qint(db, "SELECT count(*) FROM statuses");
	assert_int_equal(qint(db, "SELECT count(*) FROM miners"), 100);
	assert_int_equal(qint(db, "SELECT count(*) FROM miners m WHERE last_status_id IS NOT"
			      " (SELECT max(id) FROM statuses s WHERE s.mac = m.mac)"), 0);
	sqlite3_close(db);
	printf("figure: apid kill -9 sent=%lld logged_committed=%lld in_db=%lld integrity=ok\n",
	       sent, committed, rows);
	fflush(stdout);
	/* Statuses come from one publisher in order and are all accepted, so
	 * the committed ones are exactly the first `committed`. */
	assert_true(committed > 0);
	assert_true(rows >= committed);
	assert_true(rows <= sent);

	/* apid starts again on that database. */
	start(&p, "{\"database\":{\"batch_max\":200,\"batch_ms\":50}}");
	h = health(&p);
	assert_non_null(h);
	json_decref(h);
	stop(&p);
	cleanup(&p);
}

/* ------------------------------------------------------------ retention */

static void test_retention(void **state)
{
	struct proc p = { 0 };
	struct hive_bus *pub, *dpub;
	json_t *h, *body;
	long long old = hive_wall_ms() - 2 * DAY_MS;
	sqlite3 *db;
	struct until u;
	char *buf;
	size_t len;

	(void)state;
	start(&p, "{\"retention\":{\"status_raw_hours\":1,\"telemetry_raw_hours\":1,"
		  "\"prune_batch\":7}}");
	pub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "events"), "pollerd/e2e/3");
	/* apid believes hive.miner.seen only from discoverd's endpoint. */
	dpub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "discovery_events"), "discoverd/e2e/3");
	assert_int_equal(tl_wait_until(5000, connected, pub), 0);
	assert_int_equal(tl_wait_until(5000, connected, dpub), 0);
	usleep(200 * 1000);
	send_seen(dpub, "aa:00:00:00:00:01", "127.0.2.1", "127.0.2.0/24");
	send_seen(dpub, "aa:00:00:00:00:02", "127.0.2.2", "127.0.2.0/24");
	json_decref(wait_stored(&p, 2, 10000));
	/* Two days old, as a worker with a slow clock would say. */
	for (int i = 0; i < 30; i++) {
		body = status_body(i % 2 ? "aa:00:00:00:00:01" : "aa:00:00:00:00:02", 0);
		assert_int_equal(hive_envelope_encode(HIVE_TOPIC_STATUS_RESULT, "pollerd/old/1", 1,
						      (unsigned long long)i + 1, old + i, body, &buf,
						      &len), 0);
		assert_int_equal(hive_bus_send_raw(pub, buf, len, false), HIVE_BUS_OK);
		free(buf);
		json_decref(body);
	}
	body = json_pack("{s:s,s:[{s:i,s:{s:[f,f]}}]}", "mac", "aa:00:00:00:00:01", "chains",
			 "id", 0, "chips", "hr", 1.0, 2.0);
	assert_int_equal(hive_envelope_encode(HIVE_TOPIC_TELEMETRY_RESULT, "telemetryd/old/1", 1, 1,
					      old, body, &buf, &len), 0);
	assert_int_equal(hive_bus_send_raw(pub, buf, len, false), HIVE_BUS_OK);
	free(buf);
	json_decref(body);
	for (int i = 0; i < 10; i++)
		send_json(pub, HIVE_TOPIC_STATUS_RESULT, status_body("aa:00:00:00:00:01", 0));
	body = json_pack("{s:s,s:[{s:i,s:{s:[f,f]}}]}", "mac", "aa:00:00:00:00:01", "chains",
			 "id", 0, "chips", "hr", 3.0, 4.0);
	send_json(pub, HIVE_TOPIC_TELEMETRY_RESULT, body);
	json_decref(wait_stored(&p, 44, 10000));

	/* The first retention pass comes a second after start. */
	u = (struct until){ &p, 0, NULL };
	for (int i = 0; i < 100; i++) {
		h = health(&p);
		if (h && hget(h, "database", "pruned", "statuses") >= 29 &&
		    hget(h, "database", "pruned", "telemetry") >= 1) {
			u.last = h;
			break;
		}
		json_decref(h);
		usleep(100 * 1000);
	}
	assert_non_null(u.last);
	assert_int_equal(hget(u.last, "database", "pruned", "statuses"), 29);
	json_decref(u.last);
	hive_bus_close(pub);
	hive_bus_close(dpub);
	stop(&p);
	db = open_db(&p);
	/* Old raw rows go once rolled up, but each miner's latest status
	 * and sample: miner 02's only statuses were old, its latest stays. */
	assert_int_equal(qint(db, "SELECT count(*) FROM statuses"), 11);
	assert_int_equal(qint(db, "SELECT count(*) FROM telemetry"), 1);
	assert_int_equal(qint(db, "SELECT count(*) FROM miners m JOIN statuses s"
			      " ON s.id = m.last_status_id"), 2);
	assert_int_equal(qint(db, "SELECT sum(n) FROM status_hours"), 40);
	sqlite3_close(db);
	cleanup(&p);
}

/* ------------------------------------------------------------ sweeps, moves, jobs */

static void test_sweep_move_jobs_feed(void **state)
{
	struct proc p = { 0 };
	struct hive_bus *pub, *wpub, *worker, *tworker, *feed;
	struct hive_envelope env;
	long long first_job = 0, jobs_a = 0, jobs_other = 0, t_end;
	bool saw_b_offline = false;
	sqlite3 *db;
	json_t *h;

	(void)state;
	start(&p, "{\"intervals\":{\"status_seconds\":1},\"bus\":{\"require_job_nonce\":true}}");
	pub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "discovery_events"), "discoverd/e2e/4");
	wpub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "events"), "pollerd/e2e/4");
	worker = bus(HIVE_BUS_PULL, ts_bus(&p.s, "jobs_status"), "pollerd/e2e/4");
	tworker = bus(HIVE_BUS_PULL, ts_bus(&p.s, "jobs_telemetry"), "telemetryd/e2e/4");
	feed = bus(HIVE_BUS_SUBSCRIBE, ts_bus(&p.s, "feed"), "e2e/feed/4");
	assert_int_equal(hive_bus_subscribe(feed, "hive.feed.miner"), 0);
	assert_int_equal(tl_wait_until(5000, connected, pub), 0);
	assert_int_equal(tl_wait_until(5000, connected, feed), 0);
	assert_int_equal(tl_wait_until(5000, connected, wpub), 0);
	usleep(200 * 1000);

	send_seen(pub, "aa:00:00:00:01:0a", "127.0.3.1", "127.0.3.0/24");
	send_seen(pub, "aa:00:00:00:01:0b", "127.0.3.2", "127.0.3.0/24");
	send_seen(pub, "aa:00:00:00:01:0c", "127.0.3.3", "127.0.3.0/24");
	send_json(pub, HIVE_TOPIC_MINER_KEY, json_pack("{s:s,s:s}", "mac", "aa:00:00:00:01:0a",
						       "api_key", "key-a"));
	send_json(pub, HIVE_TOPIC_MINER_KEY, json_pack("{s:s,s:s}", "mac", "aa:00:00:00:01:0b",
						       "api_key", "key-b"));
	/* A moves; the sweep saw A and C only. */
	send_seen(pub, "aa:00:00:00:01:0a", "127.0.3.4", "127.0.3.0/24");
	send_json(pub, HIVE_TOPIC_SWEEP_DONE,
		  json_pack("{s:s,s:[s,s],s:I,s:i,s:i,s:i,s:i}", "subnet", "127.0.3.0/24", "macs",
			    "aa:00:00:00:01:0a", "aa:00:00:00:01:0c", "started",
			    (json_int_t)hive_wall_ms() - 1000, "duration_ms", 1000, "probed", 254,
			    "answered", 2, "miners", 2));
	json_decref(wait_stored(&p, 7, 10000));

	/* The feed said B went offline. */
	for (int i = 0; i < 30 && !saw_b_offline; i++) {
		memset(&env, 0, sizeof(env));
		if (hive_bus_recv(feed, &env, 2000) != HIVE_BUS_OK)
			break;
		if (strcmp(json_string_value(json_object_get(env.body, "mac")),
			   "aa:00:00:00:01:0b") == 0 &&
		    json_is_false(json_object_get(env.body, "online")) &&
		    json_is_null(json_object_get(env.body, "ip")))
			saw_b_offline = true;
		hive_envelope_clear(&env);
	}
	assert_true(saw_b_offline);

	/* Jobs for 2.5 s: only A (online, with a key), at its new address. */
	t_end = hive_mono_ms() + 2500;
	while (hive_mono_ms() < t_end) {
		const char *mac;

		memset(&env, 0, sizeof(env));
		if (hive_bus_recv(worker, &env, 200) != HIVE_BUS_OK)
			continue;
		mac = json_string_value(json_object_get(env.body, "mac"));
		if (mac && strcmp(mac, "aa:00:00:00:01:0a") == 0) {
			jobs_a++;
			assert_string_equal(json_string_value(json_object_get(env.body, "ip")),
					    "127.0.3.4");
			assert_string_equal(json_string_value(json_object_get(env.body, "api_key")),
					    "key-a");
			if (!first_job) {
				json_t *b;

				first_job = json_integer_value(json_object_get(env.body, "job"));
				b = status_body(mac, first_job);
				json_object_set(b, "nonce", json_object_get(env.body, "nonce"));
				send_json(wpub, HIVE_TOPIC_STATUS_RESULT, b);
			}
		} else {
			jobs_other++;
		}
		hive_envelope_clear(&env);
	}
	assert_int_equal(jobs_other, 0);
	assert_true(jobs_a >= 1);
	/* The result freed A for its next slot; no job was ever doubled. */
	h = health(&p);
	assert_true(hget(h, "scheduler", "status", "done") >= 1);
	assert_int_equal(hget(h, "scheduler", "miners", NULL), 1);
	assert_true(hget(h, "workers", "status", NULL) >= 1);
	assert_int_equal(hget(h, "events", "lost", NULL), 0);
	assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
	json_decref(h);

	/* The worker goes: health says so. */
	hive_bus_close(worker);
	h = NULL;
	for (int i = 0; i < 50; i++) {
		json_decref(h);
		h = health(&p);
		if (h && strcmp(json_string_value(json_object_get(h, "status")), "degraded") == 0)
			break;
		usleep(100 * 1000);
	}
	assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
	assert_string_equal(json_string_value(json_array_get(json_object_get(h, "problems"), 0)),
			    "no status worker connected");
	json_decref(h);
	hive_bus_close(tworker);
	hive_bus_close(feed);
	hive_bus_close(pub);
	hive_bus_close(wpub);
	stop(&p);
	db = open_db(&p);
	assert_int_equal(qint(db, "SELECT count(*) FROM miners"), 3);
	assert_text(db, "SELECT group_concat(mac || '=' || coalesce(ip, '-') || '/' || last_ip || '/'"
			" || online, ' ') FROM (SELECT * FROM miners ORDER BY mac)",
		    "aa:00:00:00:01:0a=127.0.3.4/127.0.3.4/1 aa:00:00:00:01:0b=-/127.0.3.2/0 "
		    "aa:00:00:00:01:0c=127.0.3.3/127.0.3.3/1");
	assert_int_equal(qint(db, "SELECT count(*) FROM statuses"), 1);
	sqlite3_close(db);
	cleanup(&p);
}

/* ------------------------------------------------------------ forged events */

static long long refused(json_t *h, const char *why)
{
	return json_integer_value(json_object_get(json_object_get(json_object_get(h, "events"),
								  "refused"), why));
}

struct want_refused {
	struct proc *p;
	const char *why[7];
	long long n[7];
	json_t *last;
};

static bool refused_reached(void *arg)
{
	struct want_refused *w = arg;
	json_t *h = health(w->p);
	bool ok = h != NULL;

	for (int i = 0; ok && i < 7 && w->why[i]; i++)
		ok = refused(h, w->why[i]) >= w->n[i];
	json_decref(w->last);
	w->last = h;
	return ok;
}

static void wait_refused(struct want_refused *w)
{
	tl_wait_until(10000, refused_reached, w);
	for (int i = 0; i < 7 && w->why[i]; i++)
		if (refused(w->last, w->why[i]) != w->n[i]) {
			char *s = json_dumps(json_object_get(w->last, "events"), JSON_COMPACT);

			fail_msg("refused \"%s\": %lld, want %lld: %s", w->why[i],
				 refused(w->last, w->why[i]), w->n[i], s);
		}
}

/* One status result: mac, job, nonce (NULL: none), ts (0: now). */
static void send_status(struct hive_bus *pub, const char *mac, long long job, const char *nonce,
			long long ts, unsigned long long seq)
{
	json_t *b = status_body(mac, job);
	char *buf;
	size_t len;

	if (nonce)
		json_object_set_new(b, "nonce", json_string(nonce));
	assert_int_equal(hive_envelope_encode(HIVE_TOPIC_STATUS_RESULT, "pollerd/forger/6", 1, seq,
					      ts ? ts : hive_wall_ms(), b, &buf, &len), 0);
	assert_int_equal(hive_bus_send_raw(pub, buf, len, false), HIVE_BUS_OK);
	free(buf);
	json_decref(b);
}

static void send_sweep(struct hive_bus *pub, const char *subnet)
{
	send_json(pub, HIVE_TOPIC_SWEEP_DONE,
		  json_pack("{s:s,s:[],s:I,s:i}", "subnet", subnet, "macs", "started",
			    (json_int_t)hive_wall_ms() - 1000, "duration_ms", 1000));
}

/* A hive.miner.error as a worker sends it: job 0 = none. */
static void send_error(struct hive_bus *pub, const char *mac, const char *op, long long job)
{
	json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "mac", mac, "ip", "127.0.9.1", "op", op, "kind",
			      "timeout");

	if (job > 0)
		json_object_set_new(b, "job", json_integer(job));
	send_json(pub, HIVE_TOPIC_MINER_ERROR, b);
}

/* A heartbeat saying it comes from daemon. */
static void send_beat(struct hive_bus *pub, const char *daemon)
{
	send_json(pub, HIVE_TOPIC_HEARTBEAT,
		  json_pack("{s:s,s:s,s:i,s:I}", "daemon", daemon, "host", "e2e", "pid", 1,
			    "started", (json_int_t)hive_wall_ms()));
}

static void test_forged_events(void **state)
{
	static const char *const macs[3] = { "aa:00:00:00:02:0a", "aa:00:00:00:02:0b",
					      "aa:00:00:00:02:0c" };
	struct proc p = { 0 };
	struct hive_bus *pub, *fpub, *worker;
	struct hive_envelope env;
	struct want_refused w;
	char nonce[HIVE_NONCE_CHARS + 1] = "", other[HIVE_NONCE_CHARS + 1];
	long long job = 0, t_end, seen[3] = { 0, 0, 0 };
	sqlite3 *db;
	json_t *h;

	(void)state;
	start(&p, "{\"intervals\":{\"status_seconds\":1},\"bus\":{\"require_job_nonce\":true},"
		  "\"network\":{\"subnets\":[\"127.0.9.0/24\"],\"sweep_drop_confirm_share\":0.5}}");
	pub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "discovery_events"), "discoverd/e2e/6");
	fpub = bus(HIVE_BUS_PUBLISH, ts_bus(&p.s, "events"), "pollerd/forger/6");
	worker = bus(HIVE_BUS_PULL, ts_bus(&p.s, "jobs_status"), "pollerd/e2e/6");
	assert_int_equal(tl_wait_until(5000, connected, pub), 0);
	assert_int_equal(tl_wait_until(5000, connected, fpub), 0);
	usleep(200 * 1000);
	for (int i = 0; i < 3; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "127.0.9.%d", i + 1);
		send_seen(pub, macs[i], ip, "127.0.9.0/24");
		send_json(pub, HIVE_TOPIC_MINER_KEY, json_pack("{s:s,s:s}", "mac", macs[i],
							       "api_key", "key"));
	}
	json_decref(wait_stored(&p, 6, 10000));

	/* A seen that would move A out of the subnets (and a pollerd would
	 * then send A's key there), one naming another subnet, a sweep of a
	 * subnet not configured, an empty sweep of the real one. */
	send_seen(pub, macs[0], "127.0.10.1", "127.0.9.0/24");
	send_seen(pub, macs[0], "127.0.10.1", "127.0.10.0/24");
	send_sweep(pub, "127.0.10.0/24");
	send_sweep(pub, "127.0.9.0/24");
	w = (struct want_refused){ &p, { "outside subnets", "sweep unconfirmed" }, { 3, 1 }, NULL };
	wait_refused(&w);
	json_decref(w.last);

	/* discoverd's topics from a worker's endpoint (bus.events): a seen
	 * that would move A inside the subnets, a key, a sweep, a heartbeat
	 * in discoverd's name; all refused whatever they say. */
	send_seen(fpub, macs[0], "127.0.9.77", "127.0.9.0/24");
	send_json(fpub, HIVE_TOPIC_MINER_KEY, json_pack("{s:s,s:s}", "mac", macs[0],
							"api_key", "forged"));
	send_sweep(fpub, "127.0.9.0/24");
	send_beat(fpub, "discoverd");
	/* A worker's error for a discoverd operation, for no job: refused. */
	send_error(fpub, macs[0], "provision", 0);
	send_error(fpub, macs[0], "status", 0);
	w = (struct want_refused){ &p, { "outside subnets", "sweep unconfirmed", "wrong role",
					 "no job held" }, { 3, 1, 4, 2 }, NULL };
	wait_refused(&w);
	json_decref(w.last);

	/* Jobs keep coming for all three, A at its own address, each with a
	 * nonce of 16 hex digits. */
	t_end = hive_mono_ms() + 2500;
	while (hive_mono_ms() < t_end) {
		const char *mac, *n;

		memset(&env, 0, sizeof(env));
		if (hive_bus_recv(worker, &env, 200) != HIVE_BUS_OK)
			continue;
		mac = json_string_value(json_object_get(env.body, "mac"));
		n = json_string_value(json_object_get(env.body, "nonce"));
		assert_non_null(n);
		assert_int_equal(strlen(n), HIVE_NONCE_CHARS);
		for (int i = 0; i < 3; i++)
			if (mac && strcmp(mac, macs[i]) == 0)
				seen[i]++;
		if (mac && strcmp(mac, macs[0]) == 0) {
			assert_string_equal(json_string_value(json_object_get(env.body, "ip")),
					    "127.0.9.1");
			if (!job) {
				job = json_integer_value(json_object_get(env.body, "job"));
				snprintf(nonce, sizeof(nonce), "%s", n);
			}
		}
		hive_envelope_clear(&env);
	}
	assert_true(job > 0 && seen[0] > 0 && seen[1] > 0 && seen[2] > 0);

	/* Results apid did not ask for: no nonce, a wrong one, the right one
	 * for another miner, the right one a day ahead; then the real one
	 * (stored), and the real one again (refused: once). */
	snprintf(other, sizeof(other), "%s", nonce);
	other[0] = other[0] == '0' ? '1' : '0';
	/* A worker's error for a job it holds is believed; for the job of
	 * another miner it is not. */
	send_error(fpub, macs[1], "status", job);
	send_error(fpub, macs[0], "status", job);
	send_status(fpub, macs[0], job, NULL, 0, 1);
	send_status(fpub, macs[0], job, other, 0, 2);
	send_status(fpub, macs[1], job, nonce, 0, 3);
	send_status(fpub, macs[0], job, nonce, hive_wall_ms() + DAY_MS, 4);
	send_status(fpub, macs[0], job, nonce, 0, 5);
	send_status(fpub, macs[0], job, nonce, 0, 6);
	w = (struct want_refused){ &p, { "no nonce", "job not issued", "future timestamp",
					 "outside subnets", "sweep unconfirmed", "wrong role",
					 "no job held" },
				   { 1, 3, 1, 3, 1, 4, 3 }, NULL };
	wait_refused(&w);
	h = w.last;
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "events"),
							    "refused_total")), 16);
	/* Nothing went offline: all three still get jobs. */
	assert_int_equal(hget(h, "scheduler", "miners", NULL), 3);
	json_decref(h);

	/* A second empty sweep confirms the first: B and C, which never
	 * answered a poll, go offline; A answered one and stays. */
	send_sweep(pub, "127.0.9.0/24");
	for (int i = 0; i < 50; i++) {
		h = health(&p);
		if (h && hget(h, "scheduler", "miners", NULL) == 1)
			break;
		json_decref(h);
		h = NULL;
		usleep(100 * 1000);
	}
	assert_non_null(h);
	assert_int_equal(hget(h, "scheduler", "miners", NULL), 1);
	assert_int_equal(refused(h, "sweep unconfirmed"), 1);
	json_decref(h);

	hive_bus_close(worker);
	hive_bus_close(fpub);
	hive_bus_close(pub);
	stop(&p);
	db = open_db(&p);
	assert_text(db, "SELECT group_concat(mac || '=' || coalesce(ip, '-') || '/' || online, ' ')"
			" FROM (SELECT * FROM miners ORDER BY mac)",
		    "aa:00:00:00:02:0a=127.0.9.1/1 aa:00:00:00:02:0b=-/0 aa:00:00:00:02:0c=-/0");
	assert_int_equal(qint(db, "SELECT count(*) FROM statuses"), 1);
	assert_int_equal(qint(db, "SELECT max(ts_ms) <= strftime('%s','now') * 1000 FROM statuses"),
			 1);
	/* The forged key never landed (the real one is sealed: not "forged"
	 * in any form the writer would keep), and of the errors only the one
	 * for A's own job was stored. */
	assert_int_equal(qint(db, "SELECT count(*) FROM miners WHERE api_key = 'forged'"), 0);
	assert_text(db, "SELECT group_concat(mac || '/' || op, ' ') FROM miner_errors",
		    "aa:00:00:00:02:0a/status");
	sqlite3_close(db);
	cleanup(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingest_50000),
		cmocka_unit_test(test_kill9_mid_burst),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_sweep_move_jobs_feed),
		cmocka_unit_test(test_forged_events),
	};

	hive_log_init("test_apid_ingest", HIVE_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
