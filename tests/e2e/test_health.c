/* test_health — truthful health through the real processes (issue 13,
 * item 5): bin/apid, two bin/pollerd and a bin/telemetryd on loopback,
 * heartbeats every second, health.failing_seconds 2, alerts evaluated
 * every second, one miner published on the bus by the test.
 *   1. GET /api/live answers without a token; the workers' state files
 *      (health.state_dir) pass etc/docker/healthcheck.sh;
 *   2. pollerd0 stopped with SIGTERM says goodbye: apid shows it stopped,
 *      no "no heartbeat" problem and no daemon_missing alert once its
 *      beats are overdue, and its state file is gone (the check fails);
 *      pollerd1 killed -9 shows as "degraded" with "no heartbeat from"
 *      its source, and daemon_missing fires for it;
 *   3. another connection holds the database's write lock (BEGIN
 *      EXCLUSIVE): a PATCH answers 503 within the 2 s busy deadline and
 *      changes nothing, a second one while events arrive and are refused
 *      too; GET /api/health answers 503 "failing" and /api/live 503; once
 *      the lock is gone both answer 200 again after failing_seconds, and
 *      the PATCH goes through (test_apid_writer covers a request dropped
 *      unrun while the writer waits on the lock for another);
 *   4. a full disk, played with RLIMIT_FSIZE on apid (no root needed):
 *      health 503, then 200 once the files have room again; the failed
 *      commits are logged once ("batch not committed"), the others
 *      counted in the recovery line;
 *   5. a database file system with under 1 MiB free: a second apid with
 *      its database on a 4 MiB tmpfs the test mounts (root only; skipped
 *      otherwise), filled by a file: health 503 "failing" with "no space
 *      left", and /api/live 503; the file removed, 200 again;
 *   6. apid stopped: telemetryd's state file says it lost the bus and the
 *      check fails with "not connected".
 * Prints "figure: health: ..." lines. KEEP_TMP=1 keeps the run directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/msg.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET   "127.79.0.0/24"
#define M1       "aa:79:00:00:00:01"
#define FAILING_S 2
#define WAIT_MS  15000
#define BUSY_BOUND_MS 2500     /* the documented 2 s, and some slack */

static struct ts_suite S;
static struct hive_bus *pub;   /* the test's publisher on bus.events */
static int failed;

/* ------------------------------------------------------------ helpers */

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* GET /api/health with the token: the document (any status) and *status. */
static json_t *health(long *status)
{
	return ts_api(&S, "GET", "/api/health", NULL, status);
}

/* Whether the problems of h name src. */
static bool problem_names(const json_t *h, const char *src)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(h, "problems"), i, p)
		if (strstr(json_string_value(p), src))
			return true;
	return false;
}

/* The daemons entry of src in h, or NULL. */
static json_t *daemon_of(const json_t *h, const char *src)
{
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(h, "daemons"), i, d)
		if (strcmp(str_at(d, "src"), src) == 0)
			return d;
	return NULL;
}

/* The bus source of a daemon of the suite ("pollerd/<host>/<pid>"). */
static void source_of(const char *daemon, pid_t pid, char *out, size_t len)
{
	char host[128] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(out, len, "%s/%s/%d", daemon, host, (int)pid);
}

/* Firing daemon_missing alerts whose subject ends with ":<pid>". */
static int missing_alerts(pid_t pid)
{
	json_t *list = ts_api_get(&S, "/api/alerts?rule=daemon_missing&state=firing&limit=100"),
	       *a;
	char tail[32];
	size_t i, n;
	int found = 0;

	snprintf(tail, sizeof(tail), ":%d", (int)pid);
	n = strlen(tail);
	json_array_foreach(json_object_get(list, "alerts"), i, a) {
		const char *s = str_at(a, "subject");
		size_t k = strlen(s);

		found += k >= n && strcmp(s + k - n, tail) == 0;
	}
	json_decref(list);
	return found;
}

/* etc/docker/healthcheck.sh for daemon against the suite's config: its
 * exit status, its line in out (malloc'd). */
static int healthcheck(const char *daemon, char **out)
{
	char cmd[1400];

	snprintf(cmd, sizeof(cmd), "sh etc/docker/healthcheck.sh %s %s 2>&1", daemon, S.cfg);
	return tl_run(cmd, out);
}

static void send_seen(const char *ip)
{
	json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "mac", M1, "ip", ip, "subnet", SUBNET,
			      "model", "s19");

	assert_int_equal(hive_bus_send(pub, HIVE_TOPIC_MINER_SEEN, b, false), HIVE_BUS_OK);
	json_decref(b);
}

static bool miner_listed(void *arg)
{
	json_t *m = ts_api_get(&S, "/api/miners/" M1);
	bool ok = m != NULL;

	(void)arg;
	json_decref(m);
	return ok;
}

static int managed_of_m1(void)
{
	json_t *m = ts_api_get(&S, "/api/miners/" M1);
	int v = m ? json_is_true(json_object_get(m, "managed")) : -1;

	json_decref(m);
	return v;
}

/* ------------------------------------------------------------ setup */

static int stack_up(void **state)
{
	struct hive_bus_opts o = { .listen = false, .sendbuf = 1024, .send_timeout_ms = 5000,
				   .source = "test_health/localhost/1", .boot = hive_wall_ms() };
	char err[256] = "";
	long long until;

	(void)state;
	/* Inherited by the daemons: a file size limit fails writes instead
	 * of killing (test_disk_full). */
	signal(SIGXFSZ, SIG_IGN);
	if (ts_init(&S, "health") < 0 ||
	    ts_merge(&S, "{\"database\": {\"batch_ms\": 20},"
			 " \"network\": {\"subnets\": [\"%s\"]},"
			 " \"intervals\": {\"heartbeat_seconds\": 1},"
			 " \"health\": {\"failing_seconds\": %d, \"state_dir\": \"%s\"},"
			 " \"alerts\": {\"evaluate_seconds\": 1, \"resolve_seconds\": 1,"
			 "   \"rules\": {\"daemon_missing\": {\"for_seconds\": 0}}}}",
		     SUBNET, FAILING_S, S.dir) < 0 ||
	    !ts_start(&S, "apid", NULL, NULL, NULL) || !ts_token(&S) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd1", NULL, NULL) ||
	    !ts_start(&S, "telemetryd", NULL, NULL, NULL) || ts_wait_healthy(&S, WAIT_MS) < 0)
		return -1;
	if (!(pub = hive_bus_open(HIVE_BUS_PUBLISH, ts_bus(&S, "discovery_events"), &o, err,
				   sizeof(err)))) {
		fprintf(stderr, "publisher: %s\n", err);
		return -1;
	}
	for (until = hive_mono_ms() + 5000; hive_bus_peers(pub) < 1 && hive_mono_ms() < until;)
		tl_sleep_ms(20);
	tl_sleep_ms(200);   /* subscribed */
	send_seen("127.79.0.11");
	return tl_wait_until(WAIT_MS, miner_listed, NULL);
}

static int stack_down(void **state)
{
	(void)state;
	hive_bus_close(pub);
	ts_down(&S, failed > 0);
	return 0;
}

/* ------------------------------------------------------------ tests */

static void test_live_and_state_files(void **state)
{
	long st = 0;
	json_t *j;
	char *out = NULL, path[1200], *text;

	(void)state;
	failed++;
	/* No token needed, nothing but whether apid can do its job. */
	j = ts_http(&S, "GET", S.api, "/api/live", NULL, false, &st);
	assert_int_equal(st, 200);
	assert_string_equal(str_at(j, "status"), "live");
	json_decref(j);
	json_decref(ts_http(&S, "GET", S.api, "/api/live?x=1", NULL, false, &st));
	assert_int_equal(st, 400);
	json_decref(ts_http(&S, "POST", S.api, "/api/live", "{}", false, &st));
	assert_int_equal(st, 405);
	assert_int_equal(healthcheck("apid", &out), 0);
	assert_non_null(strstr(out, "apid: ok"));
	free(out);

	snprintf(path, sizeof(path), "%s/telemetryd.state", S.dir);
	assert_non_null(text = tl_read_file(path));
	printf("figure: health: telemetryd's state file:\n%s", text);
	assert_non_null(strstr(text, "bus.events 1\n"));
	assert_non_null(strstr(text, "bus.jobs_telemetry 1\n"));
	free(text);
	assert_int_equal(healthcheck("telemetryd", &out), 0);
	assert_non_null(strstr(out, "telemetryd: ok, connected to apid"));
	free(out);
	assert_int_equal(healthcheck("pollerd", &out), 0);
	free(out);
	failed--;
}

static bool stopped_shown(void *arg)
{
	long st = 0;
	json_t *h = health(&st), *d = daemon_of(h, arg);
	bool ok = st == 200 && d && json_is_integer(json_object_get(d, "stopped_ms"));

	json_decref(h);
	return ok;
}

struct missing_wait {
	const char *src;
	pid_t pid;
};

static bool missing_shown(void *arg)
{
	struct missing_wait *m = arg;
	long st = 0;
	json_t *h = health(&st);
	bool ok = st == 200 && strcmp(str_at(h, "status"), "degraded") == 0 &&
		  problem_names(h, m->src) && missing_alerts(m->pid) > 0;

	json_decref(h);
	return ok;
}

static void test_goodbye_and_missing(void **state)
{
	pid_t p0 = ts_pid(&S, "pollerd0"), p1 = ts_pid(&S, "pollerd1");
	char src0[200], src1[200], *out = NULL;
	struct missing_wait mw;
	long long t0;
	long st = 0;
	json_t *h;

	(void)state;
	failed++;
	assert_true(p0 > 0 && p1 > 0);
	source_of("pollerd", p0, src0, sizeof(src0));
	source_of("pollerd", p1, src1, sizeof(src1));

	/* SIGTERM: a goodbye, then silence; kill -9 right after: no goodbye.
	 * Once the killed one is missing (three beats), the stopped one's
	 * beats are as overdue. */
	assert_int_equal(ts_stop(&S, "pollerd0", SIGTERM, 10000), 0);
	t0 = hive_mono_ms();
	assert_int_equal(tl_wait_until(5000, stopped_shown, src0), 0);
	printf("figure: health: pollerd0 shown stopped %lld ms after its SIGTERM\n",
	       hive_mono_ms() - t0);
	assert_true(ts_stop(&S, "pollerd1", SIGKILL, 5000) >= 0);
	t0 = hive_mono_ms();
	mw.src = src1;
	mw.pid = p1;
	assert_int_equal(tl_wait_until(WAIT_MS, missing_shown, &mw), 0);
	printf("figure: health: pollerd1 (kill -9) shown degraded with \"no heartbeat from %s\" "
	       "and daemon_missing firing %lld ms after the kill\n", src1, hive_mono_ms() - t0);
	tl_sleep_ms(1100);   /* another alert evaluation */
	h = health(&st);
	assert_int_equal(st, 200);
	if (problem_names(h, src0))
		fail_msg("a daemon stopped with SIGTERM is a problem: %s",
			 json_dumps(json_object_get(h, "problems"), 0));
	assert_true(json_integer_value(json_object_get(daemon_of(h, src0), "heartbeat_age_ms")) >
		    3000);
	json_decref(h);
	assert_int_equal(missing_alerts(p0), 0);
	/* Both gone: pollerd's state file says no process runs. */
	assert_int_equal(healthcheck("pollerd", &out), 1);
	printf("figure: health: healthcheck pollerd with both stopped: %s", out);
	free(out);
	failed--;
}

/* Seen events every 100 ms while the lock is held: the writer's statements
 * meet the lock. */
static atomic_bool feeding;

static void *feed_main(void *arg)
{
	(void)arg;
	while (atomic_load(&feeding)) {
		send_seen("127.79.0.11");
		tl_sleep_ms(100);
	}
	return NULL;
}

static long patch_m1(const char *body, long long *ms, char *err, size_t errlen)
{
	long st = 0;
	long long t0 = hive_mono_ms();
	json_t *j = ts_api(&S, "PATCH", "/api/miners/" M1, body, &st);

	*ms = hive_mono_ms() - t0;
	snprintf(err, errlen, "%s", str_at(j, "error"));
	json_decref(j);
	return st;
}

/* GET /api/health and /api/live of s both answer status, and with
 * failing set, health is "failing" with an entry that says it. */
struct health_want {
	struct ts_suite *s;
	long status;
	const char *failing;
};

static bool health_is(void *arg)
{
	const struct health_want *w = arg;
	long st = 0, live = 0;
	json_t *h = ts_api(w->s, "GET", "/api/health", NULL, &st), *v;
	bool ok;
	size_t i;

	json_decref(ts_http(w->s, "GET", w->s->api, "/api/live", NULL, false, &live));
	ok = st == w->status && live == w->status;
	if (ok && w->failing) {
		ok = false;
		if (strcmp(str_at(h, "status"), "failing") == 0)
			json_array_foreach(json_object_get(h, "failing"), i, v)
				if (json_string_value(v) && strstr(json_string_value(v), w->failing))
					ok = true;
	}
	json_decref(h);
	return ok;
}

static void test_write_lock(void **state)
{
	char path[1200], err[300];
	sqlite3 *db = NULL;
	pthread_t feeder;
	long long ms, t_lock, t_free;
	struct health_want want = { &S, 0, NULL };
	long st;
	json_t *h;

	(void)state;
	failed++;
	assert_int_equal(managed_of_m1(), 0);
	snprintf(path, sizeof(path), "%s/powerhive.db", S.dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	t_lock = hive_mono_ms();

	/* The writer idle: the PATCH meets the lock itself. */
	st = patch_m1("{\"managed\": true}", &ms, err, sizeof(err));
	printf("figure: health: PATCH under an external write lock: %ld in %lld ms: %s\n", st, ms,
	       err);
	assert_int_equal(st, 503);
	assert_true(ms <= BUSY_BOUND_MS);
	assert_non_null(strstr(err, "busy"));
	assert_non_null(strstr(err, "nothing was changed"));

	/* Events arriving: the writer waits for the lock, health fails. */
	atomic_store(&feeding, true);
	assert_int_equal(pthread_create(&feeder, NULL, feed_main, NULL), 0);
	tl_sleep_ms(300);
	st = patch_m1("{\"managed\": true}", &ms, err, sizeof(err));
	printf("figure: health: PATCH while the writer waits behind the lock: %ld in %lld ms: "
	       "%s\n", st, ms, err);
	assert_int_equal(st, 503);
	assert_true(ms <= BUSY_BOUND_MS);
	assert_non_null(strstr(err, "nothing was changed"));
	want.status = 503;
	assert_int_equal(tl_wait_until(WAIT_MS, health_is, &want), 0);
	h = health(&st);
	printf("figure: health: GET /api/health %ld \"%s\" %lld ms after the lock: %s\n", st,
	       str_at(h, "status"), hive_mono_ms() - t_lock, str_at(h, "error"));
	assert_string_equal(str_at(h, "status"), "failing");
	assert_true(json_array_size(json_object_get(h, "failing")) >= 1);
	json_decref(h);

	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	t_free = hive_mono_ms();
	atomic_store(&feeding, false);
	pthread_join(feeder, NULL);
	want.status = 200;
	assert_int_equal(tl_wait_until(WAIT_MS, health_is, &want), 0);
	printf("figure: health: GET /api/health and /api/live 200 again %lld ms after the lock "
	       "was released (health.failing_seconds %d)\n", hive_mono_ms() - t_free, FAILING_S);
	assert_true(hive_mono_ms() - t_free >= FAILING_S * 1000 - 100);

	/* Neither refused PATCH left anything behind; one now goes through. */
	assert_int_equal(managed_of_m1(), 0);
	assert_int_equal(patch_m1("{\"managed\": true}", &ms, err, sizeof(err)), 200);
	assert_int_equal(managed_of_m1(), 1);
	failed--;
}

static long long db_counter(const char *key)
{
	long st = 0;
	json_t *h = health(&st);
	long long v = json_integer_value(json_object_get(json_object_get(h, "database"), key));

	json_decref(h);
	return v;
}

static int count_lines(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* A full disk, played with RLIMIT_FSIZE (apid ignores SIGXFSZ, inherited
 * from this process): every write to a file past its first byte fails, the
 * WAL's and the log's alike. Commits fail, health fails; the limit lifted
 * (the disk freed), health is 200 again after failing_seconds, and the
 * failed commits were logged once, the rest counted in the recovery line. */
static void test_disk_full(void **state)
{
	pid_t apid = ts_pid(&S, "apid");
	struct rlimit full = { 1, RLIM_INFINITY }, old;
	long long commits0, commits1, t0;
	pthread_t feeder;
	char path[1200], *log, *rec;
	struct health_want want = { &S, 0, NULL };

	(void)state;
	failed++;
	commits0 = db_counter("commit_failures");
	assert_int_equal(prlimit(apid, RLIMIT_FSIZE, NULL, &old), 0);
	full.rlim_max = old.rlim_max;
	atomic_store(&feeding, true);
	assert_int_equal(pthread_create(&feeder, NULL, feed_main, NULL), 0);
	tl_sleep_ms(300);
	assert_int_equal(prlimit(apid, RLIMIT_FSIZE, &full, NULL), 0);
	t0 = hive_mono_ms();
	want.status = 503;
	if (tl_wait_until(WAIT_MS, health_is, &want) != 0) {
		prlimit(apid, RLIMIT_FSIZE, &old, NULL);
		fail_msg("GET /api/health not 503 with apid's files full");
	}
	printf("figure: health: GET /api/health 503 %lld ms after apid's files filled up\n",
	       hive_mono_ms() - t0);
	tl_sleep_ms(1000);   /* commits keep failing, some ten a second */
	assert_int_equal(prlimit(apid, RLIMIT_FSIZE, &old, NULL), 0);
	t0 = hive_mono_ms();
	want.status = 200;
	assert_int_equal(tl_wait_until(WAIT_MS, health_is, &want), 0);
	printf("figure: health: 200 again %lld ms after the files had room again\n",
	       hive_mono_ms() - t0);
	atomic_store(&feeding, false);
	pthread_join(feeder, NULL);
	commits1 = db_counter("commit_failures");

	snprintf(path, sizeof(path), "%s/apid.log", S.dir);
	assert_non_null(log = tl_read_file(path));
	rec = strstr(log, "batches committed again");
	printf("figure: health: %lld commits failed; \"batch not committed\" logged %d times; "
	       "recovery line: %.200s\n", commits1 - commits0,
	       count_lines(log, "batch not committed"), rec ? rec : "(none)");
	assert_true(commits1 - commits0 >= 3);
	assert_true(count_lines(log, "batch not committed") <= 1);
	assert_non_null(rec);
	assert_non_null(rec = strstr(rec, "repeated="));
	/* Every failed commit after the first was held back and counted. */
	assert_true(atoll(rec + 9) >= commits1 - commits0 - 1);
	free(log);
	failed--;
}

static void test_worker_loses_bus(void **state)
{
	char *out = NULL;
	long long t0;
	int rc = 1;

	(void)state;
	failed++;
	assert_int_equal(ts_stop(&S, "apid", SIGTERM, 15000), 0);
	t0 = hive_mono_ms();
	/* The next beat or two rewrite the file with no peers. */
	while (hive_mono_ms() - t0 < 5000) {
		free(out);
		out = NULL;
		if ((rc = healthcheck("telemetryd", &out)) != 0)
			break;
		tl_sleep_ms(200);
	}
	printf("figure: health: healthcheck telemetryd %lld ms after apid stopped: exit %d, %s",
	       hive_mono_ms() - t0, rc, out ? out : "\n");
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "not connected to apid's bus."));
	free(out);
	failed--;
}

/* Fills the file system of dir with file until under `left` bytes are
 * free; 0 or -1. */
static int fill_until(const char *dir, const char *file, double left)
{
	static char block[64 * 1024];
	struct statvfs sv;
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -1;
	while (statvfs(dir, &sv) == 0 && (double)sv.f_bavail * (double)sv.f_frsize >= left)
		if (write(fd, block, sizeof(block)) <= 0)
			break;
	close(fd);
	return statvfs(dir, &sv) == 0 && (double)sv.f_bavail * (double)sv.f_frsize < left ? 0 : -1;
}

/* The "< 1 MiB free" rule on a real file system: a tmpfs of 4 MiB. */
static void test_disk_space(void **state)
{
	struct ts_suite T;
	struct health_want ok = { &T, 200, NULL }, full = { &T, 503, "no space left" };
	char mnt[1200], db[1300], filler[1300];
	long long t0;
	bool mounted = false;

	(void)state;
	if (geteuid() != 0) {
		printf("skip: mounting a small tmpfs needs root (CI runs as root)\n");
		skip();
	}
	failed++;
	assert_int_equal(ts_init(&T, "health-disk"), 0);
	snprintf(mnt, sizeof(mnt), "%s/small", T.dir);
	snprintf(db, sizeof(db), "%s/db/powerhive.db", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700") != 0) {
		printf("skip: cannot mount a tmpfs here: %s\n", strerror(errno));
		ts_down(&T, false);
		failed--;
		skip();
	}
	mounted = true;
	if (ts_merge(&T, "{\"database\": {\"path\": \"%s\"},"
		     " \"health\": {\"failing_seconds\": %d}}", db, FAILING_S) < 0 ||
	    !ts_start(&T, "apid", NULL, NULL, NULL) || ts_token(&T) == NULL ||
	    tl_wait_until(WAIT_MS, health_is, &ok) != 0)
		goto fail;
	if (fill_until(mnt, filler, 512 * 1024) != 0) {
		fprintf(stderr, "could not fill %s\n", mnt);
		goto fail;
	}
	t0 = hive_mono_ms();
	if (tl_wait_until(WAIT_MS, health_is, &full) != 0) {
		fprintf(stderr, "GET /api/health not 503 \"no space left\" with under 512 KiB free\n");
		goto fail;
	}
	printf("figure: health: 503 \"no space left on the database's file system\" %lld ms after "
	       "its file system had under 512 KiB free (tmpfs of 4 MiB)\n", hive_mono_ms() - t0);
	assert_int_equal(unlink(filler), 0);
	t0 = hive_mono_ms();
	if (tl_wait_until(WAIT_MS, health_is, &ok) != 0) {
		fprintf(stderr, "GET /api/health not 200 once the space was freed\n");
		goto fail;
	}
	printf("figure: health: 200 again %lld ms after the space was freed\n", hive_mono_ms() - t0);
	ts_stop(&T, "apid", SIGTERM, 10000);
	assert_int_equal(umount(mnt), 0);
	ts_down(&T, false);
	failed--;
	return;
fail:
	ts_dump_logs(&T, 30);
	ts_stop(&T, "apid", SIGKILL, 5000);
	if (mounted)
		umount2(mnt, MNT_DETACH);
	ts_down(&T, true);
	fail();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_and_state_files),
		cmocka_unit_test(test_goodbye_and_missing),
		cmocka_unit_test(test_write_lock),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_disk_space),
		cmocka_unit_test(test_worker_loses_bus),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
