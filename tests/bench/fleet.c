/* fleet — the whole suite against 10,000 simulated miners at the shipped
 * cadence, for a few minutes (`make bench-fleet`; not part of `make test`
 * nor of `make bench`).
 *
 *   1. minersim with 10,000 miners on 127.112.0.0/18; apid, discoverd, two
 *      pollerd and one telemetryd, the real binaries, on a fresh database
 *      in a temp dir. The config is etc/powerhive.json without its
 *      addresses (the suite's loopback ports, the simulator's subnet), with
 *      the shipped cadence: status 15 s, telemetry 60 s, discovery 30 s.
 *   2. Ready: every miner online with a key and a status, then with a
 *      telemetry row (read from the database, read-only).
 *   3. The window: BENCH_FLEET_SECONDS (240). A third of the way in, with
 *      the fleet at full cadence, the HTTP API is loaded: wrk -t1 -c2 on
 *      GET /api/miners?limit=10000 and wrk -t2 -c16 on GET /api/health,
 *      BENCH_FLEET_HTTP_SECONDS (10) each, --latency.
 *   4. Figures ("figure: fleet ..."), from the database and the processes
 *      after the window:
 *      - cadence: the share of status results that came within 16 s of the
 *        miner's previous one, of telemetry results within 61 s (target
 *        99.9 % each, judged outside the HTTP load: wrk runs on the same two
 *        cores), also during that load and over the window; results per
 *        second; miners with no result in the window;
 *      - bus events lost (apid counts sequence gaps), job timeouts and
 *        failures (apid's scheduler), miners marked offline (every one is
 *        up in minersim, so every one is false), sweep durations;
 *      - the machine's busy share (/proc/stat), each process's CPU % and
 *        RSS;
 *      - HTTP: p50/p99 of the big listing (target p99 < 300 ms), requests
 *        per second and p99 of /api/health (target >= 10,000/s).
 *   The machine's load average is printed before and after: on a shared
 *   machine every figure moves with it.
 *
 * Exits 1 when the stack does not come up, 2 when a target is missed.
 * FLEET_KEEP=1 keeps the run directory (config, database, logs).
 * Everything stays on loopback.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET          "127.112.0.0/18"
#define MINERS          10000
#define STATUS_S        15
#define TELEMETRY_S     60
#define DISCOVERY_S     30
#define STATUS_GAP_MS   ((STATUS_S + 1) * 1000)
#define TELEMETRY_GAP_MS ((TELEMETRY_S + 1) * 1000)

#define TARGET_STATUS_SHARE    99.9    /* % of status results within 16 s */
#define TARGET_TELEMETRY_SHARE 99.9    /* % of telemetry results within 61 s */
#define TARGET_LIST_P99_MS     300.0   /* GET /api/miners?limit=10000 */
#define TARGET_HEALTH_PER_S    10000.0 /* GET /api/health */

static const char *const procs[] = { "apid", "discoverd", "pollerd0", "pollerd1", "telemetryd",
				     "minersim" };
#define NPROCS (sizeof(procs) / sizeof(procs[0]))

static struct ts_suite S;
static int missed;

static void target(bool ok, const char *what)
{
	if (!ok) {
		printf("fleet: target missed: %s\n", what);
		missed++;
	}
}

static void load_average(const char *when)
{
	char *s = tl_read_file("/proc/loadavg");

	printf("fleet: load average %s: %.*s\n", when, s ? (int)strcspn(s, "\n") : 1, s ? s : "?");
	free(s);
}

/* ------------------------------------------------------------ config */

/* etc/powerhive.json without what names a place (files, addresses, the
 * miners' subnet and port): those stay the suite's. */
static int merge_shipped_config(void)
{
	json_error_t e;
	json_t *c = json_load_file("etc/powerhive.json", 0, &e), *bus, *v;
	const char *k;
	void *tmp;
	char *text;
	int rc;

	if (!c) {
		fprintf(stderr, "fleet: etc/powerhive.json: %s (line %d)\n", e.text, e.line);
		return -1;
	}
	json_object_del(c, "log_level");
	json_object_del(json_object_get(c, "database"), "path");
	json_object_del(json_object_get(c, "network"), "subnets");
	json_object_del(json_object_get(c, "network"), "port");
	json_object_del(c, "http");
	bus = json_object_get(c, "bus");
	json_object_foreach_safe(bus, tmp, k, v)
		if (json_is_string(v))
			json_object_del(bus, k);
	text = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	rc = text ? ts_merge(&S, "%s", text) : -1;
	free(text);
	return rc;
}

/* ------------------------------------------------------------ database */

static sqlite3 *db_open(void)
{
	char path[1200];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/powerhive.db", S.dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The one integer sql answers, or -1. */
static long long db_int(const char *sql)
{
	sqlite3 *db = db_open();
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

struct count_wait {
	const char *sql;
	long long have;
};

static bool count_reached(void *arg)
{
	struct count_wait *w = arg;

	w->have = db_int(w->sql);
	if (w->have < MINERS)
		tl_sleep_ms(1000);
	return w->have >= MINERS;
}

/* Gaps between a miner's consecutive results (distinct ts_ms) in table,
 * for the results in [from, to]: how many, how many within max_gap_ms,
 * the same for those outside [quiet_from, quiet_to], the largest gap, and
 * the miners with at least one result. */
struct cadence {
	long long results, within, results_quiet, within_quiet, worst_ms;
	int miners;
	long long *gaps;         /* every gap of a result in the window (malloc'd) */
	size_t ngaps, capgaps;
};

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of the gaps, in ms (sorts them). */
static long long gap_quantile(struct cadence *c, double q)
{
	if (!c->ngaps)
		return 0;
	qsort(c->gaps, c->ngaps, sizeof(*c->gaps), cmp_ll);
	return c->gaps[(size_t)(q * (double)(c->ngaps - 1))];
}

static int cadence(const char *table, long long from, long long to, long long max_gap_ms,
		   long long quiet_from, long long quiet_to, struct cadence *c)
{
	char sql[256];
	sqlite3 *db = db_open();
	sqlite3_stmt *st = NULL;
	char mac[32] = "";
	long long prev = -1;
	int rc;

	memset(c, 0, sizeof(*c));
	snprintf(sql, sizeof(sql),
		 "SELECT DISTINCT mac, ts_ms FROM %s WHERE ts_ms >= ?1 AND ts_ms <= ?2"
		 " ORDER BY mac, ts_ms", table);
	if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fleet: %s: %s\n", table, db ? sqlite3_errmsg(db) : "no database");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_bind_int64(st, 1, from - max_gap_ms);
	sqlite3_bind_int64(st, 2, to);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		long long ts = sqlite3_column_int64(st, 1);
		bool ok, quiet;

		if (!m)
			continue;
		if (strcmp(m, mac) != 0) {
			snprintf(mac, sizeof(mac), "%s", m);
			prev = -1;
			if (ts >= from)
				c->miners++;
		} else if (prev < from && ts >= from) {
			c->miners++;
		}
		if (ts >= from) {
			/* the first result of a miner without one max_gap_ms before
			 * the window is a miss too */
			ok = prev >= 0 && ts - prev <= max_gap_ms;
			quiet = ts < quiet_from || ts > quiet_to;
			c->results++;
			c->within += ok;
			c->results_quiet += quiet;
			c->within_quiet += ok && quiet;
			if (prev >= 0 && ts - prev > c->worst_ms)
				c->worst_ms = ts - prev;
			if (prev >= 0) {
				if (c->ngaps == c->capgaps) {
					size_t n = c->capgaps ? 2 * c->capgaps : 4096;
					long long *g = realloc(c->gaps, n * sizeof(*g));

					if (!g)
						break;
					c->gaps = g;
					c->capgaps = n;
				}
				c->gaps[c->ngaps++] = ts - prev;
			}
		}
		prev = ts;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------------ processes, machine */

struct cpu_mark {
	double proc_s[NPROCS];
	unsigned long long busy, total;      /* /proc/stat, clock ticks */
};

static void mark(struct cpu_mark *m)
{
	char *s = tl_read_file("/proc/stat");
	unsigned long long v[8] = { 0 };

	for (size_t i = 0; i < NPROCS; i++)
		m->proc_s[i] = tl_proc_cpu_s(ts_pid(&S, procs[i]));
	m->busy = m->total = 0;
	if (s && sscanf(s, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			&v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			m->total += v[i];
		m->busy = m->total - v[3] - v[4];  /* idle, iowait */
	}
	free(s);
}

/* The file's size now: where the lines written from now on start. */
static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Lines of name's log from offset on that contain needle, each handed to
 * fn. The number of such lines. */
static int log_lines(const char *name, long offset, const char *needle,
		     void (*fn)(const char *line, void *arg), void *arg)
{
	struct ts_proc *p = ts_find(&S, name);
	char *text = p ? tl_read_file(p->log) : NULL, *line, *save = NULL;
	int n = 0;

	if (!text)
		return 0;
	if (offset < 0 || (size_t)offset > strlen(text))
		offset = 0;
	for (line = strtok_r(text + offset, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, needle)) {
			n++;
			if (fn)
				fn(line, arg);
		}
	free(text);
	return n;
}

struct sweeps {
	int n;
	long long min_ms, max_ms, sum_ms, first_ms;
	long long miners_min;
};

static void on_sweep(const char *line, void *arg)
{
	struct sweeps *s = arg;
	const char *ms = strstr(line, " ms="), *sw = strstr(line, "sweep="),
		   *mi = strstr(line, " miners=");
	long long v, miners;

	if (!ms || !sw || !mi)
		return;
	v = atoll(ms + 4);
	miners = atoll(mi + 8);
	if (atoll(sw + 6) == 1) {
		s->first_ms = v;
		return;               /* the first sweep provisions: counted apart */
	}
	if (s->n == 0 || v < s->min_ms)
		s->min_ms = v;
	if (s->n == 0 || v > s->max_ms)
		s->max_ms = v;
	if (s->n == 0 || miners < s->miners_min)
		s->miners_min = miners;
	s->sum_ms += v;
	s->n++;
}

/* ------------------------------------------------------------ health */

static json_t *health(void)
{
	json_t *h = ts_api_get(&S, "/api/health");

	if (!h)
		fprintf(stderr, "fleet: GET /api/health failed\n");
	return h;
}

/* The integer at a dotted path of j ("scheduler.status.timed_out"), or 0. */
static long long jint(json_t *j, const char *path)
{
	char key[64];
	const char *p = path, *dot;

	while (j && (dot = strchr(p, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - p), p);
		j = json_object_get(j, key);
		p = dot + 1;
	}
	return j ? (long long)json_integer_value(json_object_get(j, p)) : 0;
}

/* ------------------------------------------------------------ HTTP */

struct wrk_result {
	double rps, p50_ms, p99_ms;
	long long requests, non_2xx, errors;
};

static double wrk_ms(const char *v)
{
	double x = atof(v);

	if (strstr(v, "us"))
		return x / 1000.0;
	if (strstr(v, "ms"))
		return x;
	if (strchr(v, 's'))
		return x * 1000.0;
	return x;
}

/* wrk --latency on path; 0 / -1 when wrk is missing or failed. */
static int wrk_run(const char *path, int threads, int conns, int seconds, struct wrk_result *r)
{
	char cmd[1024], line[512];
	FILE *p;

	memset(r, 0, sizeof(*r));
	snprintf(cmd, sizeof(cmd),
		 "wrk -t%d -c%d -d%ds --timeout 10s --latency -H '%s' '%s%s' 2>&1", threads,
		 conns, seconds, S.auth, S.api, path);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), p)) {
		char v[32];
		long long a, b, c, d;

		if (sscanf(line, " 50%% %31s", v) == 1)
			r->p50_ms = wrk_ms(v);
		else if (sscanf(line, " 99%% %31s", v) == 1)
			r->p99_ms = wrk_ms(v);
		else if (sscanf(line, "Requests/sec: %lf", &r->rps) == 1)
			;
		else if (sscanf(line, " %lld requests in", &a) == 1)
			r->requests = a;
		else if (sscanf(line, " Non-2xx or 3xx responses: %lld", &a) == 1)
			r->non_2xx = a;
		else if (sscanf(line, " Socket errors: connect %lld, read %lld, write %lld, timeout %lld",
				&a, &b, &c, &d) == 4)
			r->errors = a + b + c + d;
	}
	return pclose(p) == 0 && r->requests > 0 ? 0 : -1;
}

/* ------------------------------------------------------------ the run */

static int up(void)
{
	static const char *const sim_args[] = { "--seed", "14", NULL };
	char *const none[] = { NULL };

	if (ts_init(&S, "benchfleet") < 0 || merge_shipped_config() < 0 ||
	    ts_merge(&S,
		     "{\"intervals\": {\"status_seconds\": %d, \"telemetry_seconds\": %d,"
		     " \"discovery_seconds\": %d}}",
		     STATUS_S, TELEMETRY_S, DISCOVERY_S) < 0 ||
	    ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 ||
	    !ts_start(&S, "apid", NULL, NULL, none) || !ts_start(&S, "discoverd", NULL, NULL, none) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, none) ||
	    !ts_start(&S, "pollerd", "pollerd1", NULL, none) ||
	    !ts_start(&S, "telemetryd", NULL, NULL, none) || ts_wait_healthy(&S, 30000) < 0 ||
	    !ts_token(&S))
		return -1;
	return 0;
}

static void print_cadence(const char *what, struct cadence *c, long long gap_ms,
			  double seconds, double target_share)
{
	double share = c->results ? 100.0 * (double)c->within / (double)c->results : 0.0;
	double quiet = c->results_quiet ?
		       100.0 * (double)c->within_quiet / (double)c->results_quiet : 0.0;
	long long loud = c->results - c->results_quiet;
	double during = loud > 0 ? 100.0 * (double)(c->within - c->within_quiet) / (double)loud
				 : 0.0;
	char why[160];

	printf("figure: fleet %s within %lld s of the previous: %.2f%% of %lld results "
	       "outside the HTTP load (%.2f%% of %lld during it, when wrk shares the two cores; "
	       "%.2f%% over the window), %.1f results/s, worst gap %.1f s, "
	       "miners with a result %d of %d\n",
	       what, gap_ms / 1000, quiet, c->results_quiet, during, loud, share,
	       (double)c->results / seconds, (double)c->worst_ms / 1000.0, c->miners, MINERS);
	printf("figure: fleet %s gaps p50=%.2f s p99=%.2f s p99.9=%.2f s\n", what,
	       (double)gap_quantile(c, 0.5) / 1000.0, (double)gap_quantile(c, 0.99) / 1000.0,
	       (double)gap_quantile(c, 0.999) / 1000.0);
	free(c->gaps);
	c->gaps = NULL;
	/* The cadence target is the fleet's own: the HTTP load comes from wrk
	 * on the same two cores, which a farm's API clients are not. */
	snprintf(why, sizeof(why), "%s share outside the HTTP load %.2f%% < %.1f%%", what, quiet,
		 target_share);
	target(quiet >= target_share, why);
	snprintf(why, sizeof(why), "%s: %d miners without a result", what, MINERS - c->miners);
	target(c->miners == MINERS, why);
}

int main(void)
{
	int seconds = tl_env_int("BENCH_FLEET_SECONDS", 240);
	int http_s = tl_env_int("BENCH_FLEET_HTTP_SECONDS", 10);
	long long t0 = hive_mono_ms(), w_from, w_to, http_from = 0, http_to = 0;
	long disc_log0;
	struct count_wait ready = { "SELECT count(*) FROM miners WHERE online = 1 AND api_key"
				    " IS NOT NULL AND last_status_id IS NOT NULL", 0 };
	struct count_wait telem = { "SELECT count(*) FROM miners WHERE online = 1 AND"
				    " last_telemetry_ms IS NOT NULL", 0 };
	struct cpu_mark m0, m1;
	struct cadence cs, ct;
	struct sweeps sw = { 0 };
	struct wrk_result big = { 0 }, small = { 0 };
	json_t *h0 = NULL, *h1 = NULL, *sim = NULL;
	bool big_ok = false, small_ok = false;
	double secs;
	int offline;
	char why[128];

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	load_average("at start");
	if (up() < 0) {
		fprintf(stderr, "fleet: the stack did not come up\n");
		ts_dump_logs(&S, 20);
		ts_down(&S, true);
		return 1;
	}
	printf("fleet: %d miners on %s, status %d s, telemetry %d s, discovery %d s; "
	       "window %d s (dir %s)\n", MINERS, SUBNET, STATUS_S, TELEMETRY_S, DISCOVERY_S,
	       seconds, S.dir);

	/* 2. the first full sweep, keys, a status and a telemetry row for all */
	if (tl_wait_until(900000, count_reached, &ready) < 0) {
		fprintf(stderr, "fleet: %lld of %d miners keyed with a status after 900 s\n",
			ready.have, MINERS);
		ts_dump_logs(&S, 20);
		ts_down(&S, true);
		return 1;
	}
	printf("figure: fleet ready (discovered, keyed, polled) miners=%d ms=%lld\n", MINERS,
	       hive_mono_ms() - t0);
	if (tl_wait_until((TELEMETRY_S * 3) * 1000, count_reached, &telem) < 0) {
		fprintf(stderr, "fleet: %lld of %d miners with telemetry\n", telem.have, MINERS);
		ts_dump_logs(&S, 20);
		ts_down(&S, true);
		return 1;
	}
	printf("figure: fleet every miner with telemetry ms=%lld\n", hive_mono_ms() - t0);

	/* 3. the window */
	disc_log0 = file_size(ts_find(&S, "discoverd")->log);
	h0 = health();
	mark(&m0);
	w_from = hive_wall_ms();
	tl_sleep_ms(seconds * 1000 / 3);
	http_from = hive_wall_ms();
	big_ok = wrk_run("/api/miners?limit=10000", 1, 2, http_s, &big) == 0;
	small_ok = wrk_run("/api/health", 2, 16, http_s, &small) == 0;
	http_to = hive_wall_ms();
	while (hive_wall_ms() < w_from + seconds * 1000LL)
		tl_sleep_ms(200);
	w_to = hive_wall_ms();
	mark(&m1);
	h1 = health();
	sim = ts_sim_get(&S, S.admin, "/sim/fleet");
	secs = (double)(w_to - w_from) / 1000.0;
	load_average("at the end of the window");

	/* 4. figures */
	if (cadence("statuses", w_from, w_to, STATUS_GAP_MS, http_from, http_to + STATUS_GAP_MS,
		    &cs) < 0 ||
	    cadence("telemetry", w_from, w_to, TELEMETRY_GAP_MS, http_from,
		    http_to + TELEMETRY_GAP_MS, &ct) < 0) {
		ts_down(&S, true);
		return 1;
	}
	print_cadence("status", &cs, STATUS_GAP_MS, secs, TARGET_STATUS_SHARE);
	print_cadence("telemetry", &ct, TELEMETRY_GAP_MS, secs, TARGET_TELEMETRY_SHARE);

	{
		long long lost = jint(h1, "events.lost") - jint(h0, "events.lost");
		long long recv = jint(h1, "events.received") - jint(h0, "events.received");
		long long st_to = jint(h1, "scheduler.status.timed_out") -
				  jint(h0, "scheduler.status.timed_out");
		long long st_f = jint(h1, "scheduler.status.failed") -
				 jint(h0, "scheduler.status.failed");
		long long te_to = jint(h1, "scheduler.telemetry.timed_out") -
				  jint(h0, "scheduler.telemetry.timed_out");
		long long te_f = jint(h1, "scheduler.telemetry.failed") -
				 jint(h0, "scheduler.telemetry.failed");
		long long nsent = jint(h1, "scheduler.status.not_sent") -
				  jint(h0, "scheduler.status.not_sent");

		printf("figure: fleet bus events received=%lld (%.0f/s) lost=%lld (whole run: %lld)\n",
		       recv, (double)recv / secs, lost, jint(h1, "events.lost"));
		printf("figure: fleet jobs status timed_out=%lld failed=%lld not_sent=%lld "
		       "skipped_busy=%lld, telemetry timed_out=%lld failed=%lld skipped_busy=%lld; "
		       "apid writer queue max=%lld\n", st_to, st_f, nsent,
		       jint(h1, "scheduler.status.skipped_busy") -
			       jint(h0, "scheduler.status.skipped_busy"), te_to, te_f,
		       jint(h1, "scheduler.telemetry.skipped_busy") -
			       jint(h0, "scheduler.telemetry.skipped_busy"),
		       jint(h1, "queues.writer.depth"));
		snprintf(why, sizeof(why), "%lld bus events lost", jint(h1, "events.lost"));
		target(jint(h1, "events.lost") == 0, why);
		snprintf(why, sizeof(why), "%lld status and %lld telemetry jobs timed out", st_to,
			 te_to);
		target(st_to == 0 && te_to == 0, why);
	}
	/* from the start: nobody may ever go offline */
	{
		json_t *d;
		size_t i;

		json_array_foreach(json_object_get(h1, "daemons"), i, d)
			printf("fleet: heartbeat %s in_flight=%lld latency_ms=%.1f\n",
			       json_string_value(json_object_get(d, "src")),
			       (long long)json_integer_value(json_object_get(d, "in_flight")),
			       json_number_value(json_object_get(d, "latency_ms")));
	}
	offline = log_lines("apid", 0, "miner offline mac=", NULL, NULL);
	printf("figure: fleet miners marked offline (minersim: %lld of %d online) whole run=%d\n",
	       (long long)json_integer_value(json_object_get(sim, "online")), MINERS, offline);
	snprintf(why, sizeof(why), "%d miners marked offline, all are up", offline);
	target(offline == 0, why);
	log_lines("discoverd", 0, "sweep_done sweep=1 ", on_sweep, &sw);
	log_lines("discoverd", disc_log0, "sweep_done", on_sweep, &sw);
	printf("figure: fleet sweeps of the /18 in the window=%d duration min=%lld mean=%lld "
	       "max=%lld ms, fewest miners seen=%lld (first sweep, with provisioning: %lld ms)\n",
	       sw.n, sw.min_ms, sw.n ? sw.sum_ms / sw.n : 0, sw.max_ms, sw.miners_min,
	       sw.first_ms);
	printf("figure: fleet machine busy=%.0f%% of %ld cores over the window\n",
	       m1.total > m0.total ? 100.0 * (double)(m1.busy - m0.busy) /
					     (double)(m1.total - m0.total) : 0.0,
	       sysconf(_SC_NPROCESSORS_ONLN));
	for (size_t i = 0; i < NPROCS; i++) {
		pid_t pid = ts_pid(&S, procs[i]);

		printf("figure: fleet process %s cpu=%.1f%% rss=%ld MiB peak=%ld MiB\n", procs[i],
		       100.0 * (m1.proc_s[i] - m0.proc_s[i]) / secs,
		       tl_proc_kib(pid, "VmRSS") / 1024, tl_proc_kib(pid, "VmHWM") / 1024);
	}
	if (big_ok)
		printf("figure: fleet http GET /api/miners?limit=10000 p50=%.0f ms p99=%.0f ms "
		       "(%lld requests, 2 connections, %d s; non-2xx=%lld errors=%lld)\n",
		       big.p50_ms, big.p99_ms, big.requests, http_s, big.non_2xx, big.errors);
	else
		printf("figure: fleet http GET /api/miners?limit=10000 unavailable (wrk)\n");
	if (small_ok)
		printf("figure: fleet http GET /api/health %.0f/s p50=%.2f ms p99=%.2f ms "
		       "(16 connections, %d s; non-2xx=%lld errors=%lld)\n",
		       small.rps, small.p50_ms, small.p99_ms, http_s, small.non_2xx, small.errors);
	else
		printf("figure: fleet http GET /api/health unavailable (wrk)\n");
	snprintf(why, sizeof(why), "/api/miners?limit=10000 p99 %.0f ms > %.0f ms", big.p99_ms,
		 TARGET_LIST_P99_MS);
	target(big_ok && big.non_2xx == 0 && big.p99_ms < TARGET_LIST_P99_MS, why);
	snprintf(why, sizeof(why), "/api/health %.0f/s < %.0f/s", small.rps, TARGET_HEALTH_PER_S);
	target(small_ok && small.non_2xx == 0 && small.rps >= TARGET_HEALTH_PER_S, why);

	json_decref(h0);
	json_decref(h1);
	json_decref(sim);
	load_average("at the end");
	ts_down(&S, false);
	if (missed)
		printf("fleet: %d target(s) missed\n", missed);
	return missed ? 2 : 0;
}
