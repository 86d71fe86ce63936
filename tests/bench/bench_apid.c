/* bench_apid — the real bin/apid on a temporary database, next to
 * baselines measured in the same run.
 *
 *   1. Ingest: 10,000 miners seeded with hive.miner.seen, then 100,000
 *      hive.status.result events (~1 KB) published over the real bus
 *      (envelopes written by this process and sent as they are, so that
 *      the publisher is not what is measured). At most one recvbuf (8192)
 *      of events is outstanding (sent, not yet stored, read from
 *      events.stored over bus.control): apid's queues always hold work and
 *      never overflow. Stored events/s from the first status sent to the
 *      last one stored; lost and rejected must be 0.
 *      Baseline: the same 100,000 rows (insert + the miner's pointer to
 *      its latest status) written directly into a scratch SQLite database
 *      with apid's schema (copied from apid's database) and apid's pragmas,
 *      in transactions of 500, in one process.
 *   2. HTTP with wrk (-t2 -c8: 8 clients; apid has http.threads, 256, to
 *      serve them): GET /api/miners?limit=100 and GET /api/health, next to
 *      GET /index.html (a static file apid serves from web/) as the
 *      ceiling. BENCH_ROUNDS (2) rounds of BENCH_SECONDS (2) s each,
 *      taking turns; the best is kept.
 *   3. GET /api/miners?limit=10000: every miner with its latest status
 *      (libcurl, 5 times: least and median); GET /metrics, the same
 *      10,000 miners as per-miner series (5 times: least, median, size);
 *      GET /api/health with the fleet totals computed, not cached (least
 *      of 3); apid's RSS along the way and at the end.
 *
 * Prints "figure: bench apid ..." lines with figures and ratios. Exits
 * non-zero when an event is lost or refused, an HTTP answer is not 200, or
 * a figure misses its target (TARGET_* below). Loopback only.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "hive/bus.h"
#include "hive/cfg.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"
#include "../lib/busfix.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

/* Targets: below them `make bench` fails. 10,000 miners polled every 15 s
 * make ~700 status events/s; a cheap HTTP request costs well under a
 * millisecond (a missing TCP_NODELAY alone drops it to ~150 req/s). */
#define TARGET_INGEST_PER_S    10000.0
#define TARGET_HEALTH_PER_S    5000.0  /* GET /api/health */
/* 100 miners of JSON (~70 KB); the latest status found by a GROUP BY over
 * the history instead of the pointer would be ~50x slower */
#define TARGET_MINERS100_PER_S 300.0
#define TARGET_ALL_MINERS_MS   1000.0  /* GET /api/miners?limit=10000, least of 5 */
/* GET /metrics with ~14 series per miner (~11 MB at 10,000 miners), least
 * of 5; a Prometheus scrape timeout is 10 s by default */
#define TARGET_METRICS_MS      1000.0
/* health with fleet totals computed; ~15 ms, a plan that reads the
 * history instead of each miner's pointer takes seconds */
#define TARGET_HEALTH_MS       250.0
#define TARGET_INGEST_RSS_KIB  (256 * 1024)  /* apid's peak after the ingest */
#define TARGET_APID_RSS_KIB    (512 * 1024)  /* apid's peak after it all */

#define MINERS   10000
#define EVENTS   100000
#define BATCH    500
#define TOKEN    "bench-token-0123456789abcdef0123456789"

struct apid {
	struct ts_suite s;       /* config, ports, the temp dir */
	char *dir;               /* s.dir */
	char log[1024], db[1024];
	char base[64];
	pid_t pid;
	struct hive_bus *req;    /* bus.control */
	struct hive_bus *pub;    /* bus.events */
	struct hive_bus *dpub;   /* bus.discovery_events: the seen miners */
};

/* ------------------------------------------------------------ apid */

static struct hive_bus *bus_dial(enum hive_bus_role role, const char *url, const char *src)
{
	struct hive_bus_opts o = tl_bus_opts(false, src);
	char err[256];
	struct hive_bus *b;

	o.send_timeout_ms = 5000;
	if (!(b = hive_bus_open(role, url, &o, err, sizeof(err))))
		fprintf(stderr, "bench_apid: bus %s: %s\n", url, err);
	return b;
}

/* apid's health over bus.control, or NULL. */
static json_t *health(struct apid *a)
{
	struct hive_envelope env = { 0 };
	json_t *body = json_object(), *h = NULL;

	if (hive_bus_request(a->req, HIVE_TOPIC_CTL_HEALTH, body, &env, 2000) == HIVE_BUS_OK &&
	    strcmp(env.topic, HIVE_TOPIC_CTL_HEALTH) == 0)
		h = json_incref(env.body);
	hive_envelope_clear(&env);
	json_decref(body);
	return h;
}

static long long hget(json_t *h, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(h, a), b));
}

static bool answers(void *arg)
{
	json_t *h = health(arg);

	json_decref(h);
	return h != NULL;
}

static bool connected(void *arg)
{
	return hive_bus_peers(arg) > 0;
}

static int apid_start(struct apid *a)
{
	char web[PATH_MAX];
	struct ts_proc *p;

	if (!realpath("web", web) || ts_init(&a->s, "bench-apid") < 0) {
		fprintf(stderr, "bench_apid: no temp dir, or no web/ (run from the top of the "
			"tree)\n");
		return -1;
	}
	a->dir = a->s.dir;
	snprintf(a->log, sizeof(a->log), "%s/apid.log", a->dir);
	snprintf(a->db, sizeof(a->db), "%s/data/powerhive.db", a->dir);
	snprintf(a->base, sizeof(a->base), "%s", a->s.api);
	/* the defaults but for paths and ports; no worker connects, and
	 * miners without a key get no jobs */
	if (ts_merge(&a->s, "{\"database\": {\"path\": \"%s\", \"batch_max\": %d,\n"
		     "   \"batch_ms\": 200},\n"
		     /* the bench plays pollerd by hand: results for no job */
		     " \"bus\": {\"require_job_nonce\": false},\n"
		     " \"http\": {\"web_root\": \"%s\",\n"
		     "   \"auth\": {\"token\": \"" TOKEN "\", \"token_file\": \"%s/token\"}}}",
		     a->db, BATCH, web, a->dir) < 0)
		return -1;
	p = ts_start(&a->s, "apid", NULL, NULL, NULL);
	a->pid = p ? p->pid : -1;
	if (a->pid <= 0 ||
	    !(a->req = bus_dial(HIVE_BUS_REQUEST, ts_bus(&a->s, "control"), "bench/req/1")) ||
	    tl_wait_until(15000, answers, a) < 0 ||
	    tl_wait_port("127.0.0.1", a->s.http_port, 5000) < 0) {
		char *log = tl_read_file(a->log);

		fprintf(stderr, "bench_apid: apid did not start; its log:\n%s\n", log ? log : "-");
		free(log);
		return -1;
	}
	if (!(a->pub = bus_dial(HIVE_BUS_PUBLISH, ts_bus(&a->s, "events"), "pollerd/bench/1")) ||
	    tl_wait_until(5000, connected, a->pub) < 0 ||
	    !(a->dpub = bus_dial(HIVE_BUS_PUBLISH, ts_bus(&a->s, "discovery_events"),
				 "discoverd/bench/1")) ||
	    tl_wait_until(5000, connected, a->dpub) < 0) {
		fprintf(stderr, "bench_apid: cannot connect to %s\n", ts_bus(&a->s, "events"));
		return -1;
	}
	/* a subscription reaches apid only once the connection is up */
	usleep(200 * 1000);
	return 0;
}

/* Stops apid; its exit status as waitpid says, or -1. */
static int apid_stop(struct apid *a)
{
	int st = -1;

	if (a->pub)
		hive_bus_close(a->pub);
	if (a->dpub)
		hive_bus_close(a->dpub);
	if (a->req)
		hive_bus_close(a->req);
	a->pub = a->dpub = a->req = NULL;
	if (a->pid > 0)
		st = ts_stop(&a->s, "apid", SIGTERM, 15000);
	a->pid = -1;
	return st;
}

static void print_rss(struct apid *a, const char *when)
{
	printf("bench_apid: apid rss_kib=%ld peak_kib=%ld %s\n", tl_proc_kib(a->pid, "VmRSS"),
	       tl_proc_kib(a->pid, "VmHWM"), when);
}

/* ------------------------------------------------------------ ingest */

struct progress {
	long long stored, lost, rejected;
	json_t *events;          /* the last "events" object (for messages) */
};

static int poll_stored(struct apid *a, struct progress *p)
{
	json_t *h = health(a);

	if (!h)
		return -1;
	p->stored = hget(h, "events", "stored");
	p->lost = hget(h, "events", "lost");
	p->rejected = hget(h, "events", "rejected");
	json_decref(p->events);
	p->events = json_incref(json_object_get(h, "events"));
	json_decref(h);
	return 0;
}

/* Waits until events.stored reaches `want`, or something went wrong
 * (lost, rejected, no answer, timeout). 0 / -1. */
static int wait_stored(struct apid *a, struct progress *p, long long want, int timeout_ms)
{
	long long until = hive_mono_ms() + timeout_ms;

	while (hive_mono_ms() < until) {
		if (poll_stored(a, p) == 0 && (p->stored >= want || p->lost || p->rejected))
			break;
		usleep(10000);
	}
	return p->stored >= want && !p->lost && !p->rejected ? 0 : -1;
}

static int seed_miners(struct apid *a, struct progress *p)
{
	char mac[18], ip[16];

	for (int i = 0; i < MINERS; i++) {
		json_t *b;

		tl_mac_of(i, mac);
		snprintf(ip, sizeof(ip), "127.1.%d.%d", i / 250, i % 250 + 1);
		b = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "mac", mac, "ip", ip,
			      "subnet", "127.1.0.0/16", "model", "s19", "miner", "Antminer S19",
			      "fw_name", "vnish", "fw_version", "1.2.6", "hostname", "rig");
		if (hive_bus_send(a->dpub, HIVE_TOPIC_MINER_SEEN, b, false) != HIVE_BUS_OK) {
			fprintf(stderr, "bench_apid: cannot send a seen\n");
			json_decref(b);
			return -1;
		}
		json_decref(b);
	}
	if (wait_stored(a, p, MINERS, 30000) < 0) {
		char *s = json_dumps(p->events, JSON_COMPACT);

		fprintf(stderr, "bench_apid: seeding %d miners: %s\n", MINERS, s ? s : "-");
		free(s);
		return -1;
	}
	return 0;
}

/* The status envelopes, written here: the body is dumped once and the MAC
 * patched in per event. */
struct writer {
	char *body;              /* compact JSON of a status body */
	size_t mac_at;           /* offset of the MAC's 17 characters in body */
	char *buf;
	size_t cap;
	long long boot;
	unsigned long long seq;
};

static int writer_init(struct writer *w)
{
	json_t *b = tl_status_body("00:00:00:00:00:00");
	char *at;

	memset(w, 0, sizeof(*w));
	w->body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	if (!w->body || !(at = strstr(w->body, "\"mac\":\"00:00:00:00:00:00\"")))
		return -1;
	w->mac_at = (size_t)(at - w->body) + 7;
	w->cap = strlen(w->body) + 512;
	w->boot = hive_wall_ms();
	return (w->buf = malloc(w->cap)) ? 0 : -1;
}

static int send_status(struct apid *a, struct writer *w, int miner, size_t *len_out)
{
	char mac[18];
	int n;

	tl_mac_of(miner, mac);
	memcpy(w->body + w->mac_at, mac, 17);
	n = snprintf(w->buf, w->cap,
		     "%s%c{\"v\":1,\"src\":\"pollerd/bench/1\",\"boot\":%lld,\"seq\":%llu,"
		     "\"ts\":%lld,\"body\":%s}", HIVE_TOPIC_STATUS_RESULT, '\0', w->boot,
		     ++w->seq, (long long)hive_wall_ms(), w->body);
	if (n < 0 || (size_t)n >= w->cap)
		return -1;
	*len_out = (size_t)n;
	return hive_bus_send_raw(a->pub, w->buf, (size_t)n, false) == HIVE_BUS_OK ? 0 : -1;
}

struct ingest {
	double per_s;            /* stored events/s */
	double cpu_us;           /* apid's CPU per event */
	double publisher_per_s;  /* while sending */
	long long ms;
	size_t bytes;            /* one envelope */
	long long batches, max_batch;
};

static int ingest(struct apid *a, struct progress *p, struct ingest *out)
{
	struct hive_cfg d;
	struct writer w;
	long long base = p->stored, t0, t_sent = 0, t_last_poll = 0, waits = 0;
	int sent = 0, window, rc = -1;
	double cpu0;
	json_t *h;

	hive_cfg_defaults(&d);
	window = d.bus.recvbuf;
	if (writer_init(&w) < 0) {
		fprintf(stderr, "bench_apid: cannot build a status body\n");
		goto done;
	}
	cpu0 = tl_proc_cpu_s(a->pid);
	t0 = hive_mono_ms();
	while (sent < EVENTS) {
		if (sent - (p->stored - base) < window) {
			if (send_status(a, &w, sent % MINERS, &out->bytes) < 0) {
				fprintf(stderr, "bench_apid: send failed\n");
				goto done;
			}
			sent++;
			continue;
		}
		/* the window is full: ask how far apid got, not too often (a
		 * health document costs apid CPU too) */
		if (hive_mono_ms() - t_last_poll < 20)
			usleep((useconds_t)(20 - (hive_mono_ms() - t_last_poll)) * 1000);
		t_last_poll = hive_mono_ms();
		waits++;
		if (poll_stored(a, p) < 0 || p->lost || p->rejected)
			break;
	}
	t_sent = hive_mono_ms();
	if (wait_stored(a, p, base + EVENTS, 60000) < 0) {
		char *s = json_dumps(p->events, JSON_COMPACT);

		fprintf(stderr, "bench_apid: %d statuses sent, %lld stored, lost %lld, rejected "
			"%lld: %s\n", sent, p->stored - base, p->lost, p->rejected, s ? s : "-");
		free(s);
		goto done;
	}
	out->ms = hive_mono_ms() - t0;
	out->cpu_us = (tl_proc_cpu_s(a->pid) - cpu0) * 1e6 / EVENTS;
	out->per_s = EVENTS * 1000.0 / (double)(out->ms > 0 ? out->ms : 1);
	out->publisher_per_s = sent * 1000.0 / (double)(t_sent - t0 > 0 ? t_sent - t0 : 1);
	if ((h = health(a))) {
		out->batches = hget(h, "database", "batches");
		out->max_batch = hget(h, "database", "max_batch");
		json_decref(h);
	}
	printf("bench_apid: ingest: %d statuses (%zu bytes each) for %d miners stored in %lld ms "
	       "(%.0f/s), apid CPU %.0f us/event; publisher %.0f/s while sending, window full "
	       "%lld times; batches=%lld max_batch=%lld\n", EVENTS, out->bytes, MINERS, out->ms,
	       out->per_s, out->cpu_us, out->publisher_per_s, waits, out->batches,
	       out->max_batch);
	rc = 0;
done:
	free(w.body);
	free(w.buf);
	return rc;
}

/* ------------------------------------------------------------ raw SQLite */

static int exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "bench_apid: %s: %s\n", sql, err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/* The scratch database gets apid's schema, read from apid's own file. */
static int copy_schema(const char *from, sqlite3 *to)
{
	sqlite3 *src = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1, n = 0;

	if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(src, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND"
			       " name NOT LIKE 'sqlite_%' ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (exec_sql(to, (const char *)sqlite3_column_text(st, 0)) < 0)
			goto fail;
		n++;
	}
	rc = n > 0 ? 0 : -1;
fail:
	if (rc < 0)
		fprintf(stderr, "bench_apid: cannot copy the schema of %s: %s\n", from,
			src ? sqlite3_errmsg(src) : "open");
	sqlite3_finalize(st);
	sqlite3_close(src);
	return rc;
}

static void bind_text_json(sqlite3_stmt *st, int i, json_t *body, const char *key)
{
	char *s = json_dumps(json_object_get(body, key), JSON_COMPACT);

	sqlite3_bind_text(st, i, s ? s : "null", -1, SQLITE_TRANSIENT);
	free(s);
}

/* Rows/s for EVENTS statuses, insert + pointer, in transactions of BATCH;
 * -1 on an error. */
static double raw_sqlite(const char *dir, const char *apid_db)
{
	char path[1200], mac[18];
	sqlite3 *db = NULL;
	sqlite3_stmt *mi = NULL, *si = NULL, *up = NULL;
	json_t *body = tl_status_body("00:00:00:00:00:00");
	long long now = hive_wall_ms(), t0, dt;
	double rate = -1;

	snprintf(path, sizeof(path), "%s/raw.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		     " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY") < 0 ||
	    copy_schema(apid_db, db) < 0)
		goto done;
	if (sqlite3_prepare_v2(db, "INSERT INTO miners(mac, ip, last_ip, subnet, model, online,"
			       " first_seen_ms, last_seen_ms) VALUES(?1, '127.1.0.1', '127.1.0.1',"
			       " '127.1.0.0/16', 's19', 1, ?2, ?2)", -1, &mi, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO statuses(mac, ts_ms, state, state_time, preset,"
			       " hr_realtime_ghs, hr_average_ghs, hr_nominal_ghs, chip_temp_max,"
			       " pcb_temp_max, power_w, power_metered, fan_duty, fans, chains, pools,"
			       " hw_errors) VALUES(?1, ?2, 'mining', 86400, '3300', 135370.5,"
			       " 135000.1, 136000.0, 71, 60, 3310, 1, 70, ?3, ?4, ?5, 36)",
			       -1, &si, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE miners SET last_status_id=?2,"
			       " last_seen_ms=max(last_seen_ms, ?3),"
			       " last_error=CASE WHEN last_error_op='status' THEN NULL ELSE last_error END,"
			       " last_error_op=CASE WHEN last_error_op='status' THEN NULL"
			       " ELSE last_error_op END WHERE mac=?1", -1, &up, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_apid: raw: %s\n", sqlite3_errmsg(db));
		goto done;
	}
	if (exec_sql(db, "BEGIN") < 0)
		goto done;
	for (int i = 0; i < MINERS; i++) {
		tl_mac_of(i, mac);
		sqlite3_bind_text(mi, 1, mac, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(mi, 2, now);
		if (sqlite3_step(mi) != SQLITE_DONE)
			goto sqlfail;
		sqlite3_reset(mi);
	}
	if (exec_sql(db, "COMMIT") < 0)
		goto done;

	/* the JSON columns are dumped per row, as apid does */
	t0 = hive_mono_ms();
	for (int i = 0; i < EVENTS; i++) {
		long long ts = hive_wall_ms();

		if (i % BATCH == 0 && exec_sql(db, "BEGIN IMMEDIATE") < 0)
			goto done;
		tl_mac_of(i % MINERS, mac);
		sqlite3_bind_text(si, 1, mac, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(si, 2, ts);
		bind_text_json(si, 3, body, "fans");
		bind_text_json(si, 4, body, "chains");
		bind_text_json(si, 5, body, "pools");
		if (sqlite3_step(si) != SQLITE_DONE)
			goto sqlfail;
		sqlite3_reset(si);
		sqlite3_bind_text(up, 1, mac, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 2, sqlite3_last_insert_rowid(db));
		sqlite3_bind_int64(up, 3, ts);
		if (sqlite3_step(up) != SQLITE_DONE)
			goto sqlfail;
		sqlite3_reset(up);
		if ((i % BATCH == BATCH - 1 || i == EVENTS - 1) && exec_sql(db, "COMMIT") < 0)
			goto done;
	}
	dt = hive_mono_ms() - t0;
	rate = EVENTS * 1000.0 / (double)(dt > 0 ? dt : 1);
	printf("bench_apid: raw SQLite: %d statuses + pointers in transactions of %d: %lld ms "
	       "(%.0f/s)\n", EVENTS, BATCH, dt, rate);
	goto done;
sqlfail:
	fprintf(stderr, "bench_apid: raw: %s\n", sqlite3_errmsg(db));
done:
	sqlite3_finalize(mi);
	sqlite3_finalize(si);
	sqlite3_finalize(up);
	sqlite3_close(db);
	json_decref(body);
	return rate;
}

/* ------------------------------------------------------------ HTTP */

/* wrk against apid; requests/s, or -1 when wrk is missing, failed, or an
 * answer was not 2xx. */
static double wrk_run(struct apid *a, const char *path, bool auth, int seconds)
{
	char cmd[1024], line[512];
	double rps = -1;
	bool bad = false;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "wrk -t2 -c8 -d%ds %s '%s%s' 2>&1", seconds,
		 auth ? "-H 'Authorization: Bearer " TOKEN "'" : "", a->base, path);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), p)) {
		double v;

		if (sscanf(line, "Requests/sec: %lf", &v) == 1)
			rps = v;
		if (strstr(line, "Non-2xx") || strstr(line, "Socket errors")) {
			printf("bench_apid: wrk %s: %s", path, line);
			bad = true;
		}
	}
	if (pclose(p) != 0 || bad)
		return -1;
	return rps;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* GET /api/miners?limit=10000, 5 times: least and median ms. -1 on a bad
 * answer. */
static int all_miners(struct apid *a, double *least, double *median, size_t *bytes)
{
	const char *hdr[] = { "Authorization: Bearer " TOKEN, NULL };
	char url[128], rss[128];
	double ms[5];
	size_t at = 0;

	snprintf(url, sizeof(url), "%s/api/miners?limit=%d", a->base, MINERS);
	for (int i = 0; i < 5; i++) {
		char *body = NULL;
		long status = 0;
		long long t0 = hive_mono_ms();
		json_t *j, *m;
		int rc = tl_http("GET", url, hdr, NULL, &body, &status);

		ms[i] = (double)(hive_mono_ms() - t0);
		j = body ? json_loads(body, 0, NULL) : NULL;
		m = json_object_get(j, "miners");
		*bytes = body ? strlen(body) : 0;
		free(body);
		/* every miner, each with its latest status */
		if (rc < 0 || status != 200 || json_array_size(m) != MINERS ||
		    json_integer_value(json_object_get(j, "total")) != MINERS ||
		    !json_is_object(json_object_get(json_array_get(m, 0), "status")) ||
		    !json_is_object(json_object_get(json_array_get(m, MINERS - 1), "status"))) {
			fprintf(stderr, "bench_apid: GET %s: status %ld, %zu miners\n", url, status,
				json_array_size(m));
			json_decref(j);
			return -1;
		}
		json_decref(j);
		at += (size_t)snprintf(rss + at, sizeof(rss) - at, " %ld",
				       tl_proc_kib(a->pid, "VmRSS"));
	}
	/* each answer is built whole on one of the HTTP threads */
	printf("bench_apid: apid rss_kib after each GET /api/miners?limit=%d:%s\n", MINERS, rss);
	qsort(ms, 5, sizeof(ms[0]), cmp_double);
	*least = ms[0];
	*median = ms[2];
	return 0;
}

/* GET /metrics, 5 times: least and median ms, the size, and how many
 * per-miner series came (every miner must have its powerhive_miner_info).
 * -1 on a bad answer. */
static int metrics_scrape(struct apid *a, double *least, double *median, size_t *bytes,
			  long *series)
{
	const char *hdr[] = { "Authorization: Bearer " TOKEN, NULL };
	char url[128];
	double ms[5];

	snprintf(url, sizeof(url), "%s/metrics", a->base);
	for (int i = 0; i < 5; i++) {
		char *body = NULL, *p;
		long status = 0, info = 0;
		long long t0 = hive_mono_ms();
		int rc = tl_http("GET", url, hdr, NULL, &body, &status);

		ms[i] = (double)(hive_mono_ms() - t0);
		*bytes = body ? strlen(body) : 0;
		*series = 0;
		for (p = body; p && (p = strstr(p, "\npowerhive_miner_")); p++) {
			*series += strncmp(p, "\npowerhive_miner_errors_", 24) != 0;
			info += strncmp(p, "\npowerhive_miner_info{", 22) == 0;
		}
		free(body);
		if (rc < 0 || status != 200 || info != MINERS) {
			fprintf(stderr, "bench_apid: GET %s: status %ld, %ld powerhive_miner_info\n",
				url, status, info);
			return -1;
		}
	}
	qsort(ms, 5, sizeof(ms[0]), cmp_double);
	*least = ms[0];
	*median = ms[2];
	return 0;
}

/* GET /api/health with the fleet totals computed (one pass over the
 * miners joined to their latest status), not taken from health's 1 s
 * cache: waits the cache out and keeps the answers whose fleet.ts_ms is
 * from during the request. Least ms of those, or -1. */
static double health_computed(struct apid *a, int tries)
{
	const char *hdr[] = { "Authorization: Bearer " TOKEN, NULL };
	char url[128];
	double best = -1;

	snprintf(url, sizeof(url), "%s/api/health", a->base);
	for (int i = 0; i < tries; i++) {
		long long w0, t0, ms;
		char *body = NULL;
		long status = 0;
		json_t *j;

		usleep(1100 * 1000);
		w0 = hive_wall_ms();
		t0 = hive_mono_ms();
		if (tl_http("GET", url, hdr, NULL, &body, &status) < 0 || status != 200) {
			free(body);
			return -1;
		}
		ms = hive_mono_ms() - t0;
		j = body ? json_loads(body, 0, NULL) : NULL;
		free(body);
		if (json_integer_value(json_object_get(json_object_get(j, "fleet"), "miners")) !=
		    MINERS) {
			json_decref(j);
			return -1;
		}
		if (json_integer_value(json_object_get(json_object_get(j, "fleet"), "ts_ms")) >= w0 &&
		    (best < 0 || ms < best))
			best = (double)ms;
		json_decref(j);
	}
	return best;
}

/* ------------------------------------------------------------ main */

/* Removes the temp dir (KEEP_TMP keeps it); after a failure, shows the
 * end of apid's log first. */
static void cleanup(struct apid *a, bool failed)
{
	char *log;

	if (failed && (log = tl_read_file(a->log))) {
		size_t n = strlen(log);

		fprintf(stderr, "bench_apid: FAILED; the end of apid's log:\n%s\n",
			log + (n > 4000 ? n - 4000 : 0));
		free(log);
	}
	ts_down(&a->s, false);
	a->dir = NULL;
}

int main(void)
{
	int seconds = tl_env_int("BENCH_SECONDS", 2), rounds = tl_env_int("BENCH_ROUNDS", 2);
	struct apid a = { 0 };
	struct progress p = { 0 };
	struct ingest in = { 0 };
	double raw, least, median, health_ms;
	struct {
		const char *path;
		bool auth;
		double target;
		double rps, cpu_us;
	} eps[] = {
		{ "/index.html", false, 0, 0, 0 },   /* the ceiling: first */
		{ "/api/health", true, TARGET_HEALTH_PER_S, 0, 0 },
		{ "/api/miners?limit=100", true, TARGET_MINERS100_PER_S, 0, 0 },
	};
	size_t all_bytes = 0;
	long rss, hwm, ingest_hwm = -1, series = 0;
	int failures = 0, st;
	bool http_ok = true;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	hive_log_init("bench_apid", HIVE_LOG_ERROR, NULL);
	if (apid_start(&a) < 0)
		goto fail;

	/* 1. ingest, then the same rows straight into SQLite */
	print_rss(&a, "at start");
	if (seed_miners(&a, &p) < 0)
		goto fail;
	print_rss(&a, "after seeding");
	if (ingest(&a, &p, &in) < 0)
		goto fail;
	print_rss(&a, "after ingest");
	ingest_hwm = tl_proc_kib(a.pid, "VmHWM");
	if ((raw = raw_sqlite(a.dir, a.db)) <= 0)
		goto fail;
	printf("figure: bench apid ingest events/s=%.0f raw_sqlite_rows/s=%.0f ratio=%.3f "
	       "cpu=%.0fus/event (%d statuses for %d miners over the bus, lost=%lld "
	       "rejected=%lld; raw: same rows, schema and pragmas, transactions of %d)\n",
	       in.per_s, raw, in.per_s / raw, in.cpu_us, EVENTS, MINERS, p.lost, p.rejected,
	       BATCH);
	if (in.per_s < TARGET_INGEST_PER_S) {
		fprintf(stderr, "bench_apid: ingest %.0f events/s is below the target of %.0f/s\n",
			in.per_s, TARGET_INGEST_PER_S);
		failures++;
	}

	/* 2. HTTP: taking turns, best of the rounds; apid's CPU per request
	 * (least of the rounds) does not depend on load from elsewhere */
	printf("bench_apid: wrk -t2 -c8, %d rounds of %d s per request\n", rounds, seconds);
	for (int r = 0; r < rounds; r++)
		for (size_t k = 0; k < sizeof(eps) / sizeof(eps[0]); k++) {
			double c0 = tl_proc_cpu_s(a.pid), v = wrk_run(&a, eps[k].path, eps[k].auth,
								     seconds);
			double us = v > 0 ? (tl_proc_cpu_s(a.pid) - c0) * 1e6 / (v * seconds) : 0;

			printf("bench_apid: round %d: %s %.0f req/s, apid CPU %.0f us/request\n",
			       r + 1, eps[k].path, v, us);
			if (v < 0)
				http_ok = false;
			if (v > eps[k].rps)
				eps[k].rps = v;
			if (us > 0 && (eps[k].cpu_us == 0 || us < eps[k].cpu_us))
				eps[k].cpu_us = us;
		}
	print_rss(&a, "after wrk");
	if (!http_ok) {
		fprintf(stderr, "bench_apid: wrk failed or an answer was not 2xx (is wrk "
			"installed? `make bench` installs it)\n");
		failures++;
	}
	for (size_t k = 1; k < sizeof(eps) / sizeof(eps[0]) && eps[0].rps > 0; k++) {
		printf("figure: bench apid http %s req/s=%.0f static_req/s=%.0f ratio=%.3f "
		       "cpu=%.0fus/req (static %.0fus/req; target >= %.0f req/s)\n", eps[k].path,
		       eps[k].rps, eps[0].rps, eps[k].rps / eps[0].rps, eps[k].cpu_us,
		       eps[0].cpu_us, eps[k].target);
		if (eps[k].rps < eps[k].target) {
			fprintf(stderr, "bench_apid: %s: %.0f req/s is below the target of %.0f\n",
				eps[k].path, eps[k].rps, eps[k].target);
			failures++;
		}
	}

	/* 3. every miner with its latest status; apid's memory */
	if (all_miners(&a, &least, &median, &all_bytes) < 0) {
		failures++;
	} else {
		printf("figure: bench apid GET /api/miners?limit=%d ms=%.0f (median %.0f, %zu "
		       "bytes; %d statuses stored)\n", MINERS, least, median, all_bytes,
		       EVENTS);
		if (least > TARGET_ALL_MINERS_MS) {
			fprintf(stderr, "bench_apid: GET /api/miners?limit=%d took %.0f ms, over "
				"%.0f\n", MINERS, least, TARGET_ALL_MINERS_MS);
			failures++;
		}
	}
	if (metrics_scrape(&a, &least, &median, &all_bytes, &series) < 0) {
		failures++;
	} else {
		printf("figure: bench apid GET /metrics over %d miners ms=%.0f (median %.0f, %zu "
		       "bytes, %ld per-miner series; target <= %.0f)\n", MINERS, least, median,
		       all_bytes, series, TARGET_METRICS_MS);
		if (least > TARGET_METRICS_MS) {
			fprintf(stderr, "bench_apid: GET /metrics took %.0f ms, over %.0f\n", least,
				TARGET_METRICS_MS);
			failures++;
		}
	}
	print_rss(&a, "after GET /metrics");
	health_ms = health_computed(&a, 3);
	printf("figure: bench apid GET /api/health fleet totals computed over %d miners "
	       "(%d statuses) ms=%.0f (least of 3; target <= %.0f)\n", MINERS, EVENTS, health_ms,
	       TARGET_HEALTH_MS);
	if (health_ms < 0 || health_ms > TARGET_HEALTH_MS) {
		fprintf(stderr, "bench_apid: health with computed fleet totals: %.0f ms (target "
			"%.0f; -1: no answer computed the totals)\n", health_ms, TARGET_HEALTH_MS);
		failures++;
	}
	rss = tl_proc_kib(a.pid, "VmRSS");
	hwm = tl_proc_kib(a.pid, "VmHWM");
	printf("figure: bench apid rss_kib=%ld peak_kib=%ld peak_after_ingest_kib=%ld (after "
	       "the run; targets: peak < %d KiB, after ingest < %d KiB)\n", rss, hwm, ingest_hwm,
	       TARGET_APID_RSS_KIB, TARGET_INGEST_RSS_KIB);
	if (hwm > TARGET_APID_RSS_KIB || ingest_hwm > TARGET_INGEST_RSS_KIB) {
		fprintf(stderr, "bench_apid: apid peak RSS %ld KiB (after ingest %ld KiB) is over "
			"its target\n", hwm, ingest_hwm);
		failures++;
	}

	st = apid_stop(&a);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_apid: apid did not stop cleanly (%#x)\n", st);
		failures++;
	}
	json_decref(p.events);
	cleanup(&a, failures > 0);
	return failures ? 1 : 0;
fail:
	json_decref(p.events);
	apid_stop(&a);
	cleanup(&a, true);
	return 1;
}
