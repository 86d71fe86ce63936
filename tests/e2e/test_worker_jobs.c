/* test_worker_jobs — what bin/pollerd and bin/telemetryd send back for the
 * jobs a hub (playing apid: PUSH and SUB listening) hands them, read with
 * the same tables apid decodes with:
 *   - a job whose miner does not answer (a closed port on 127.0.0.1) ends
 *     with hive.miner.error {op, kind "refused", job, mac, ip} and
 *     hive.job.failed {job, mac, kind "refused"};
 *   - a job the worker cannot read (bad IP, no key, unknown endpoint) ends
 *     with hive.job.failed kind "bad_field" and no error for the miner, or,
 *     when it does not even say which job it was, with nothing but the
 *     worker's jobs_bad counter;
 *   - a job for an address outside network.subnets is refused before any
 *     request: hive.miner.error and hive.job.failed kind "outside_subnets",
 *     counted as jobs_refused;
 *   - the job's nonce comes back in hive.job.failed;
 *   - every event body decodes with its table, heartbeats included. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/bus.h"
#include "hive/msg.h"
#include "../lib/apidfake.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define READY_MS   10000
#define ANSWER_MS  5000

enum { POLLERD, TELEMETRYD, NWORKERS };
static const char *const names[NWORKERS] = { "pollerd", "telemetryd" };
static const enum hive_msg_kind job_kinds[NWORKERS] = { HIVE_MSG_JOB_STATUS,
							HIVE_MSG_JOB_TELEMETRY };

/* the bus endpoint each worker takes its jobs from */
static const char *const jobs_keys[NWORKERS] = { "jobs_status", "jobs_telemetry" };

static struct ts_suite ts;              /* network.port: nothing listens there */
static struct {
	struct hive_bus *sub, *push[NWORKERS];
} S;

/* What came back for one job id (0: none yet). */
struct answer {
	int errors, failed;
	char failed_kind[64], error_kind[64], error_op[32], error_ip[HIVE_IPV4_LEN];
	char mac[HIVE_MAC_LEN];
	char nonce[HIVE_NONCE_CHARS + 1];
};

static struct answer answers[64];
static long long jobs_bad[NWORKERS] = { -1, -1 };
static long long jobs_refused[NWORKERS] = { -1, -1 };
static int bodies_read;
static bool passed;                     /* the test got to its end: drop the logs */

/* Worker w's log, for a message. */
static const char *log_of(int w)
{
	const struct ts_proc *p = ts_find(&ts, names[w]);

	return p ? p->log : ts.dir;
}

/* What came back for the jobs: every event, decoded with its table. */
static void on_event(int kind, const void *body, const struct hive_envelope *env, void *arg)
{
	(void)env;
	(void)arg;
	if (kind == HIVE_MSG_MINER_ERROR) {
		const struct hive_msg_miner_error *e = body;

		if (e->job > 0 && e->job < 64) {
			struct answer *a = &answers[e->job];

			a->errors++;
			snprintf(a->error_kind, sizeof(a->error_kind), "%s", e->kind);
			snprintf(a->error_op, sizeof(a->error_op), "%s", e->op);
			snprintf(a->error_ip, sizeof(a->error_ip), "%s", e->ip);
		}
	} else if (kind == HIVE_MSG_JOB_FAILED) {
		const struct hive_msg_job_failed *f = body;

		if (f->job > 0 && f->job < 64) {
			struct answer *a = &answers[f->job];

			a->failed++;
			snprintf(a->failed_kind, sizeof(a->failed_kind), "%s", f->kind ? f->kind : "");
			snprintf(a->mac, sizeof(a->mac), "%s", f->mac);
			snprintf(a->nonce, sizeof(a->nonce), "%s", f->nonce ? f->nonce : "");
		}
	} else if (kind == HIVE_MSG_HEARTBEAT) {
		const struct hive_msg_heartbeat *hb = body;
		json_t *c = hb->counters ? json_object_get(hb->counters, "jobs_bad") : NULL;
		json_t *r = hb->counters ? json_object_get(hb->counters, "jobs_refused") : NULL;

		for (int w = 0; w < NWORKERS; w++) {
			if (strcmp(hb->daemon, names[w]) == 0 && c)
				jobs_bad[w] = (long long)json_integer_value(c);
			if (strcmp(hb->daemon, names[w]) == 0 && r)
				jobs_refused[w] = (long long)json_integer_value(r);
		}
	}
}

/* Every event is decoded with its table; a body the table refuses fails
 * the test, naming the field. */
static void drain(void)
{
	char err[512];
	int n = tl_apid_drain(S.sub, on_event, NULL, err, sizeof(err));

	if (n < 0)
		fail_msg("%s", err);
	bodies_read += n;
}

static bool connected(void *arg)
{
	(void)arg;
	return hive_bus_peers(S.push[POLLERD]) > 0 && hive_bus_peers(S.push[TELEMETRYD]) > 0 &&
	       hive_bus_peers(S.sub) >= NWORKERS;
}

static int setup(void **state)
{
	struct hive_bus_opts o = { .sendbuf = 64, .recvbuf = 1024,
				   .source = "test_worker_jobs/hub/1", .boot = hive_wall_ms() };

	(void)state;
	memset(&S, 0, sizeof(S));
	if (ts_init(&ts, "worker-jobs") < 0 ||
	    ts_merge(&ts, "{\"network\": {\"subnets\": [\"127.61.0.0/30\", \"127.0.0.0/30\"],"
		     " \"http_timeout_ms\": 2000, \"http_concurrency\": 4},"
		     " \"intervals\": {\"heartbeat_seconds\": 1}}") < 0)
		return -1;
	/* the test is apid: it listens, the workers dial */
	if (!(S.sub = tl_apid_listen(&ts, "events", &o)))
		return -1;
	for (int w = 0; w < NWORKERS; w++)
		if (!(S.push[w] = tl_apid_listen(&ts, jobs_keys[w], &o)) ||
		    !ts_start(&ts, names[w], NULL, NULL, NULL))
			return -1;
	if (tl_wait_until(READY_MS, connected, NULL) < 0) {
		fprintf(stderr, "workers did not connect; see %s and %s\n", log_of(0), log_of(1));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_down(&ts, !passed);         /* the workers, then the sockets they dial */
	for (int w = 0; w < NWORKERS; w++)
		hive_bus_close(S.push[w]);
	hive_bus_close(S.sub);
	return 0;
}

/* Pushes body (JSON text) to worker w, with the miner's port and a
 * deadline 5 s from now. */
static void push(int w, const char *body)
{
	json_t *j = json_loads(body, 0, NULL);

	assert_non_null(j);
	json_object_set_new(j, "port", json_integer(ts.miner_port));
	json_object_set_new(j, "deadline", json_integer(hive_wall_ms() + 5000));
	if (hive_bus_send(S.push[w], hive_msg_topic(job_kinds[w])->topic, j, false) != HIVE_BUS_OK)
		fail_msg("could not push a job to %s", names[w]);
	json_decref(j);
}

struct wait_job {
	long long job;
	bool error_too;
};

static bool answered(void *arg)
{
	const struct wait_job *wj = arg;

	drain();
	return answers[wj->job].failed > 0 && (!wj->error_too || answers[wj->job].errors > 0);
}

static const struct {
	int worker;
	long long job;                  /* 0: the body does not say */
	const char *body;               /* port and deadline are added */
	const char *failed_kind;        /* hive.job.failed's kind; NULL: none */
	bool miner_error;               /* and a hive.miner.error (else: a bad job) */
	const char *ip;                 /* the error's; NULL: 127.0.0.1 */
} cases[] = {
	{ POLLERD, 1, "{\"job\":1,\"mac\":\"AA-BB-CC-00-00-01\",\"ip\":\"127.0.0.1\","
	  "\"api_key\":\"k\",\"nonce\":\"00000000000000a1\"}", "refused", true, NULL },
	{ POLLERD, 2, "{\"job\":2,\"mac\":\"aa:bb:cc:00:00:02\",\"ip\":\"nope\","
	  "\"api_key\":\"k\"}", "bad_field", false, NULL },
	{ POLLERD, 3, "{\"job\":3,\"mac\":\"aa:bb:cc:00:00:03\",\"ip\":\"127.0.0.1\"}",
	  "bad_field", false, NULL },
	{ POLLERD, 0, "{\"job\":4,\"ip\":\"127.0.0.1\",\"api_key\":\"k\"}", NULL, false, NULL },
	{ TELEMETRYD, 5, "{\"job\":5,\"mac\":\"aa:bb:cc:00:00:05\",\"ip\":\"127.0.0.1\","
	  "\"api_key\":\"k\",\"endpoint\":\"x\"}", "bad_field", false, NULL },
	{ TELEMETRYD, 6, "{\"job\":6,\"mac\":\"aa:bb:cc:00:00:06\",\"ip\":\"127.0.0.1\","
	  "\"api_key\":\"k\",\"endpoint\":\"boards\"}", "refused", true, NULL },
	/* outside network.subnets (a forged job, or a forged seen that moved
	 * the miner): refused before any request, the key never sent */
	{ POLLERD, 7, "{\"job\":7,\"mac\":\"aa:bb:cc:00:00:07\",\"ip\":\"127.0.9.9\","
	  "\"api_key\":\"k\",\"nonce\":\"00000000000000a7\"}", "outside_subnets", true,
	  "127.0.9.9" },
	{ TELEMETRYD, 8, "{\"job\":8,\"mac\":\"aa:bb:cc:00:00:08\",\"ip\":\"127.0.0.4\","
	  "\"api_key\":\"k\"}", "outside_subnets", true, "127.0.0.4" },
};

static bool bad_counted(void *arg)
{
	const long long *want = arg;

	drain();
	return jobs_bad[POLLERD] == want[POLLERD] && jobs_bad[TELEMETRYD] == want[TELEMETRYD];
}

static bool refused_counted(void *arg)
{
	const long long *want = arg;

	drain();
	return jobs_refused[POLLERD] == want[POLLERD] &&
	       jobs_refused[TELEMETRYD] == want[TELEMETRYD];
}

static void jobs_come_back(void **state)
{
	long long want_bad[NWORKERS] = { 0, 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wait_job wj = { cases[i].job, cases[i].miner_error };

		push(cases[i].worker, cases[i].body);
		if (!cases[i].miner_error)
			want_bad[cases[i].worker]++;
		if (!cases[i].job)
			continue;
		if (tl_wait_until(ANSWER_MS, answered, &wj) < 0)
			fail_msg("job %lld: no hive.job.failed%s within %d ms; see %s", cases[i].job,
				 cases[i].miner_error ? " and hive.miner.error" : "", ANSWER_MS,
				 log_of(cases[i].worker));
		assert_string_equal(answers[cases[i].job].failed_kind, cases[i].failed_kind);
		if (cases[i].miner_error) {
			const struct answer *a = &answers[cases[i].job];

			assert_string_equal(a->error_kind, cases[i].failed_kind);
			assert_string_equal(a->error_op,
					    cases[i].worker == POLLERD ? "status" : "telemetry");
			assert_string_equal(a->error_ip, cases[i].ip ? cases[i].ip : "127.0.0.1");
		}
	}
	/* the nonce comes back as it went */
	assert_string_equal(answers[1].nonce, "00000000000000a1");
	assert_string_equal(answers[7].nonce, "00000000000000a7");
	assert_string_equal(answers[8].nonce, "");
	/* the MAC as apid sent it comes back normalised */
	assert_string_equal(answers[1].mac, "aa:bb:cc:00:00:01");
	/* a job with no MAC is only counted; and a bad job is no miner's error */
	if (tl_wait_until(ANSWER_MS, bad_counted, want_bad) < 0)
		fail_msg("jobs_bad: pollerd %lld (want %lld), telemetryd %lld (want %lld)",
			 jobs_bad[POLLERD], want_bad[POLLERD], jobs_bad[TELEMETRYD],
			 want_bad[TELEMETRYD]);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (cases[i].job && !cases[i].miner_error)
			assert_int_equal(answers[cases[i].job].errors, 0);
	/* each out-of-subnet job counted once, in its worker's heartbeat */
	{
		long long want_refused[NWORKERS] = { 1, 1 };

		if (tl_wait_until(ANSWER_MS, refused_counted, want_refused) < 0)
			fail_msg("jobs_refused: pollerd %lld, telemetryd %lld (want 1, 1)",
				 jobs_refused[POLLERD], jobs_refused[TELEMETRYD]);
	}
	printf("figure: %d event bodies from pollerd and telemetryd decoded with the tables\n",
	       bodies_read);
	/* a clean exit (a sanitized build's leak report fails it) */
	for (int w = 0; w < NWORKERS; w++) {
		int st = ts_stop(&ts, names[w], SIGTERM, 5000);

		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("%s ended with status 0x%x; see %s", names[w], st, log_of(w));
	}
	passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jobs_come_back),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
