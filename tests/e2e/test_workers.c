/* test_workers — bin/pollerd and bin/telemetryd stop promptly on SIGTERM,
 * whatever is at the other end of their bus sockets:
 *   - nobody (apid absent: the dialers keep retrying);
 *   - a hub the test plays (PUSH and SUB listening, as apid does), idle;
 *   - the same hub pushing jobs as fast as the worker takes them, and
 *     still pushing while the worker stops (the moment nng 1.5.2 can get
 *     stuck closing the job socket);
 *   - the real bin/apid.
 * Each stop must end with exit status 0 and a "stopped" line within
 * STOP_MAX_MS; several rounds of each. The jobs name a closed port on
 * 127.0.0.1, so each one fails at once and comes back as hive.job.failed:
 * proof that the worker was taking them when it was told to stop. */
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

#include "hive/bus.h"
#include "hive/loop.h"
#include "hive/msg.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

/* libhive's bus gives up on a stuck nng close after 2 s, and a worker
 * closes its job socket, the one that can get stuck, last: one such wait
 * at most. A clean stop takes a few tens of ms. */
#define STOP_MAX_MS  2500
#define ROUNDS       4
#define READY_MS     10000
#define JOBS_SEEN    20        /* failed jobs back before the stop */

static const char *const workers[] = { "pollerd", "telemetryd" };

/* What a test has running, for the teardown after a failed assertion. */
static struct ts_suite S;
static pid_t worker_pid, apid_pid;
static struct hub *open_hub;
static bool test_done;                  /* the test got to its end */

/* Durations of every stop, for the figure. */
static long long stops[64];
static int nstops;

static void record(long long ms)
{
	if (nstops < (int)(sizeof(stops) / sizeof(stops[0])))
		stops[nstops++] = ms;
}

/* A fresh suite whose network.port (S.miner_port) nobody listens on. */
static int write_cfg(struct ts_suite *s, const char *tag)
{
	if (ts_init(s, tag) < 0)
		return -1;
	if (ts_merge(s, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"network\": {\"subnets\": [\"127.61.0.0/30\"],\n"
		     "   \"http_timeout_ms\": 2000, \"http_concurrency\": 4},\n"
		     " \"intervals\": {\"heartbeat_seconds\": 1, \"discovery_seconds\": 600},\n"
		     " \"http\": {\"web_root\": \"%s\", \"auth\": {\"open_reads\": true}}}",
		     s->dir) < 0)
		return -1;
	return ts_write_config(s);
}

static void setup_free(struct ts_suite *s)
{
	ts_down(s, false);
	memset(s, 0, sizeof(*s));
}

/* A process the test reaped itself is no longer the suite's to stop. */
static void reaped(pid_t pid)
{
	for (int i = 0; i < S.nprocs; i++)
		if (S.procs[i].pid == pid)
			S.procs[i].pid = 0;
}

static pid_t spawn(struct ts_suite *s, const char *name, char *log, size_t loglen, int round)
{
	char tag[32];
	struct ts_proc *p;

	snprintf(tag, sizeof(tag), "%s-%d", name, round);
	if (!(p = ts_start(s, name, tag, NULL, NULL)))
		return -1;
	snprintf(log, loglen, "%s", p->log);
	return p->pid;
}

static bool log_has(const char *log, const char *what)
{
	char *text = tl_read_file(log);
	bool yes = text && strstr(text, what) != NULL;

	free(text);
	return yes;
}

struct ready_arg {
	const char *log;
	pid_t pid;
};

static bool worker_ready(void *arg)
{
	struct ready_arg *a = arg;

	return log_has(a->log, "worker_ready") || !tl_alive(a->pid);
}

/* ------------------------------------------------------------ the hub */

/* Opened once per test, for both workers: a socket nng failed to close
 * would keep its port. */
struct hub {
	struct hive_bus *events;             /* SUB, listening */
	struct hive_bus *jobs[2];            /* PUSH, listening: status, telemetry */
	int worker;                          /* index in workers[]: whose jobs */
	long long next_job;
	int failed_back;                     /* hive.job.failed received */
};

/* 0, or -1 when a port was taken meanwhile (err says which). */
static int hub_open(struct hub *h, const struct ts_suite *s, char *err, size_t errlen)
{
	struct hive_bus_opts o = { .listen = true, .sendbuf = 64, .recvbuf = 1024,
				   .send_timeout_ms = 0, .recv_timeout_ms = 0,
				   .source = "test_workers/hub/1", .boot = hive_wall_ms() };
	const char *urls[2] = { ts_bus(s, "jobs_status"), ts_bus(s, "jobs_telemetry") };

	memset(h, 0, sizeof(*h));
	h->next_job = 1;
	if (!(h->events = hive_bus_open(HIVE_BUS_SUBSCRIBE, ts_bus(s, "events"), &o, err,
					    errlen)) ||
	    hive_bus_subscribe(h->events, "") < 0)
		return -1;
	for (int k = 0; k < 2; k++)
		if (!(h->jobs[k] = hive_bus_open(HIVE_BUS_PUSH, urls[k], &o, err, errlen)))
			return -1;
	return 0;
}

static void hub_close(struct hub *h)
{
	hive_bus_close(h->jobs[0]);
	hive_bus_close(h->jobs[1]);
	hive_bus_close(h->events);
	memset(h, 0, sizeof(*h));
}

/* Offers one job to the current worker (never waits: a worker at its cap
 * takes nothing). */
static void hub_push(struct hub *h, int miner_port)
{
	static const char *const topics[2] = { HIVE_TOPIC_JOB_STATUS, HIVE_TOPIC_JOB_TELEMETRY };
	json_t *job = json_pack("{s:I, s:s, s:s, s:i, s:s, s:I}", "job",
				(json_int_t)h->next_job, "mac", "aa:bb:cc:00:00:01", "ip",
				"127.0.0.1", "port", miner_port, "api_key", "test-key", "deadline",
				(json_int_t)(hive_wall_ms() + 5000));

	assert_non_null(job);
	if (hive_bus_send(h->jobs[h->worker], topics[h->worker], job, true) == HIVE_BUS_OK)
		h->next_job++;
	json_decref(job);
}

/* Reads what the worker published so far. */
static void hub_drain(struct hub *h)
{
	struct hive_envelope env;

	for (;;) {
		memset(&env, 0, sizeof(env));
		if (hive_bus_recv(h->events, &env, 0) != HIVE_BUS_OK)
			return;
		if (strcmp(env.topic, HIVE_TOPIC_JOB_FAILED) == 0)
			h->failed_back++;
		hive_envelope_clear(&env);
	}
}

/* ------------------------------------------------------------ stopping */

/* SIGTERM to worker_pid, then waits for the exit (offering jobs meanwhile
 * when busy is given). Asserts a clean exit within STOP_MAX_MS and a
 * "stopped" line. */
static void stop_worker(const char *name, const char *log, struct hub *busy, int miner_port)
{
	pid_t pid = worker_pid, r = 0;
	long long t0 = hive_mono_ms(), ms;
	int status = 0;

	assert_int_equal(kill(pid, SIGTERM), 0);
	while ((ms = hive_mono_ms() - t0) < STOP_MAX_MS) {
		if ((r = waitpid(pid, &status, WNOHANG)) != 0)
			break;
		if (busy) {
			hub_push(busy, miner_port);
			hub_drain(busy);
		}
		usleep(1000);
	}
	if (r == 0)
		fail_msg("%s (pid %d) still running %d ms after SIGTERM; see %s", name, (int)pid,
			 STOP_MAX_MS, log);
	assert_int_equal(r, pid);
	reaped(pid);
	worker_pid = 0;
	record(ms);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s ended with status 0x%x; see %s", name, status, log);
	if (!log_has(log, " stopped"))
		fail_msg("%s exited without its \"stopped\" line; see %s", name, log);
}

static pid_t start_ready(struct ts_suite *s, const char *name, char *log, size_t loglen,
			 int round)
{
	pid_t pid = spawn(s, name, log, loglen, round);
	struct ready_arg ra = { log, pid };

	assert_true(pid > 0);
	worker_pid = pid;
	if (tl_wait_until(READY_MS, worker_ready, &ra) < 0 || !tl_alive(pid))
		fail_msg("%s did not start; see %s", name, log);
	return pid;
}

/* ------------------------------------------------------------ tests */

static void test_stop_apid_absent(void **state)
{
	char log[1200];

	(void)state;
	assert_int_equal(write_cfg(&S, "workers-absent"), 0);
	for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++) {
		for (int round = 0; round < ROUNDS; round++) {
			worker_pid = start_ready(&S, workers[w], log, sizeof(log), round);
			/* Let the dialers fail and back off at least once. */
			usleep(150 * 1000);
			stop_worker(workers[w], log, NULL, 0);
		}
	}
	test_done = true;
}

static bool hub_connected(void *arg)
{
	struct hub *h = arg;

	return hive_bus_peers(h->jobs[h->worker]) > 0 && hive_bus_peers(h->events) > 0;
}

static void test_stop_hub_idle_and_busy(void **state)
{
	static struct hub h;
	char log[1200], err[256] = "";
	int attempt;

	(void)state;
	/* Other ports when one was taken meanwhile (other tests run beside). */
	for (attempt = 0; attempt < 3; attempt++) {
		setup_free(&S);
		assert_int_equal(write_cfg(&S, "workers-hub"), 0);
		open_hub = &h;
		if (hub_open(&h, &S, err, sizeof(err)) == 0)
			break;
		hub_close(&h);
		open_hub = NULL;
	}
	if (attempt == 3)
		fail_msg("hub: %s", err);
	for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++) {
		h.worker = (int)w;
		/* Idle rounds first: a busy round leaves jobs queued in the hub. */
		for (int round = 0; round < 2 * ROUNDS; round++) {
			bool busy = round >= ROUNDS;
			long long deadline;
			int before = h.failed_back;

			worker_pid = start_ready(&S, workers[w], log, sizeof(log), round);
			if (tl_wait_until(READY_MS, hub_connected, &h) < 0)
				fail_msg("%s did not connect to the hub; see %s", workers[w], log);
			deadline = hive_mono_ms() + READY_MS;
			while (busy && h.failed_back - before < JOBS_SEEN && hive_mono_ms() < deadline) {
				hub_push(&h, S.miner_port);
				hub_drain(&h);
				usleep(1000);
			}
			if (busy && h.failed_back - before < JOBS_SEEN)
				fail_msg("%s answered %d jobs of %lld offered; see %s", workers[w],
					 h.failed_back - before, h.next_job - 1, log);
			stop_worker(workers[w], log, busy ? &h : NULL, S.miner_port);
			/* Whatever was still queued for the worker that left. */
			hub_drain(&h);
		}
	}
	open_hub = NULL;
	hub_close(&h);
	test_done = true;
}

static bool apid_up(void *arg)
{
	struct ready_arg *a = arg;

	return log_has(a->log, " started db=") || !tl_alive(a->pid);
}

/* Starts bin/apid on a fresh configuration; again with other ports when
 * one of them was taken meanwhile (other tests run beside this one). */
static void start_apid(char *apid_log, size_t len)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct ts_proc *p;
		struct ready_arg ra = { apid_log, 0 };

		setup_free(&S);
		assert_int_equal(write_cfg(&S, "workers-apid"), 0);
		snprintf(apid_log, len, "%s/apid.log", S.dir);
		p = ts_start(&S, "apid", NULL, NULL, NULL);
		apid_pid = ra.pid = p ? p->pid : 0;
		if (p && tl_wait_until(20000, apid_up, &ra) == 0 && tl_alive(apid_pid) &&
		    log_has(apid_log, " started db="))
			return;
		ts_stop(&S, "apid", SIGTERM, 5000);
		apid_pid = 0;
	}
	fail_msg("apid did not start; see %s", apid_log);
}

static void test_stop_with_apid(void **state)
{
	char log[1200], apid_log[1200];

	(void)state;
	start_apid(apid_log, sizeof(apid_log));
	for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++) {
		for (int round = 0; round < ROUNDS; round++) {
			worker_pid = start_ready(&S, workers[w], log, sizeof(log), round);
			usleep(200 * 1000);     /* connected to apid's sockets by now */
			stop_worker(workers[w], log, NULL, 0);
		}
	}
	if (!tl_alive(apid_pid))
		fail_msg("apid ended while the workers came and went; see %s", apid_log);
	assert_int_equal(ts_stop(&S, "apid", SIGTERM, 10000), 0);
	apid_pid = 0;
	test_done = true;
}

/* Kills whatever a failed test left running; keeps the logs of a failure. */
static int teardown(void **state)
{
	bool failed = !test_done;

	(void)state;
	test_done = false;
	if (worker_pid > 0) {
		tl_stop(worker_pid, SIGKILL, 1000);
		reaped(worker_pid);
	}
	if (apid_pid > 0)
		ts_stop(&S, "apid", SIGTERM, 5000);
	if (open_hub)
		hub_close(open_hub);
	worker_pid = apid_pid = 0;
	open_hub = NULL;
	ts_down(&S, failed);
	memset(&S, 0, sizeof(S));
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static int report(void **state)
{
	(void)state;
	if (nstops > 0) {
		qsort(stops, (size_t)nstops, sizeof(stops[0]), cmp_ll);
		printf("figure: workers stopped on SIGTERM in %lld ms median, %lld ms max "
		       "(%d stops: apid absent, hub idle, hub pushing jobs, real apid)\n",
		       stops[nstops / 2], stops[nstops - 1], nstops);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_stop_apid_absent, teardown),
		cmocka_unit_test_teardown(test_stop_hub_idle_and_busy, teardown),
		cmocka_unit_test_teardown(test_stop_with_apid, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, report);
}
