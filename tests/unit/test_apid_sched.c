/* test_apid_sched — the scheduler against a fake worker (a real PULL socket
 * over TCP on loopback): jobs spread over the interval on stable slots, no
 * second job while one is out, timeouts, no worker, managed_only, and the
 * roster read from the database. Time is simulated: ticks are given their
 * "now", so the test runs in well under a second per case.
 * Also the guard (guard.c): nonces accepted once, for their job and miner
 * only; addresses, future times, sweeps that drop many. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../apid/guard.h"
#include "../../apid/sched.h"
#include "../../apid/secrets.h"
#include "../../apid/store.h"
#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "../lib/testlib.h"

#define N_MINERS 200
#define STATUS_MS 10000
#define TELEMETRY_MS 60000
#define TIMEOUT_MS 25000

struct job {
	char mac[32];
	long long id;
	long long at;            /* simulated time it was sent */
	char topic[64];
	char endpoint[16];
};

struct fx {
	struct hive_bus *push[2];
	struct hive_bus *pull[2];
	struct apid_sched *s;
	char macs[N_MINERS][18];
	char *dir;
};

static struct hive_bus *open_bus(enum hive_bus_role role, const char *url, bool listen)
{
	struct hive_bus_opts o = { .listen = listen, .sendbuf = 8192, .recvbuf = 8192,
				   .send_timeout_ms = 1000, .recv_timeout_ms = 1000,
				   .source = "test/h/1", .boot = 1 };
	char err[256];
	struct hive_bus *b = hive_bus_open(role, url, &o, err, sizeof(err));

	if (!b)
		fail_msg("bus %s: %s", url, err);
	return b;
}

static bool connected(void *arg)
{
	struct fx *f = arg;

	return hive_bus_peers(f->push[0]) > 0 && hive_bus_peers(f->push[1]) > 0;
}

static struct apid_sched_opts opts(void)
{
	struct apid_sched_opts o = { .interval_ms = { STATUS_MS, TELEMETRY_MS },
				     .job_timeout_ms = TIMEOUT_MS, .port = 4028 };
	return o;
}

/* A roster of N_MINERS miners; odd ones managed. */
static void roster(struct fx *f, size_t n, int64_t now)
{
	struct apid_roster_miner r[N_MINERS];
	char ips[N_MINERS][16];

	for (size_t i = 0; i < n; i++) {
		snprintf(ips[i], sizeof(ips[i]), "127.0.%zu.%zu", i / 250, i % 250 + 1);
		r[i] = (struct apid_roster_miner){ .mac = f->macs[i], .ip = ips[i],
						   .api_key = "key", .managed = i % 2,
						   .endpoint = i == 0 ? "boards" : NULL };
	}
	assert_int_equal(apid_sched_set_roster(f->s, r, n, now), 0);
}

static int setup_with(void **state, bool workers)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct apid_sched_opts o = opts();

	for (int k = 0; k < 2; k++) {
		char url[64];

		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tl_free_port());
		f->push[k] = open_bus(HIVE_BUS_PUSH, url, true);
		if (workers)
			f->pull[k] = open_bus(HIVE_BUS_PULL, url, false);
	}
	if (workers)
		assert_int_equal(tl_wait_until(3000, connected, f), 0);
	for (int i = 0; i < N_MINERS; i++)
		snprintf(f->macs[i], sizeof(f->macs[i]), "aa:bb:cc:%02x:%02x:%02x", i * 7 % 256,
			 i / 256, i % 256);
	f->s = apid_sched_new(&o, f->push[0], f->push[1]);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, true);
}

static int setup_no_worker(void **state)
{
	return setup_with(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	apid_sched_free(f->s);
	for (int k = 0; k < 2; k++) {
		if (f->pull[k])
			hive_bus_close(f->pull[k]);
		hive_bus_close(f->push[k]);
	}
	if (f->dir) {
		tl_rmrf(f->dir);
		free(f->dir);
	}
	free(f);
	return 0;
}

/* Receives exactly n jobs from queue k (they were sent: they will come). */
static void receive(struct fx *f, int k, uint64_t n, long long at, struct job *out, size_t *nout)
{
	for (uint64_t i = 0; i < n; i++) {
		struct hive_envelope env = { 0 };
		struct job *j = &out[(*nout)++];
		const char *mac;

		assert_int_equal(hive_bus_recv(f->pull[k], &env, 2000), HIVE_BUS_OK);
		mac = json_string_value(json_object_get(env.body, "mac"));
		assert_non_null(mac);
		snprintf(j->mac, sizeof(j->mac), "%s", mac);
		snprintf(j->topic, sizeof(j->topic), "%s", env.topic);
		j->id = json_integer_value(json_object_get(env.body, "job"));
		j->at = at;
		assert_true(j->id > 0);
		assert_string_equal(json_string_value(json_object_get(env.body, "api_key")), "key");
		assert_int_equal(json_integer_value(json_object_get(env.body, "port")), 4028);
		assert_non_null(json_string_value(json_object_get(env.body, "ip")));
		assert_true(json_integer_value(json_object_get(env.body, "deadline")) >
			    hive_wall_ms());
		snprintf(j->endpoint, sizeof(j->endpoint), "%s",
			 json_string_value(json_object_get(env.body, "endpoint"))
				 ? json_string_value(json_object_get(env.body, "endpoint")) : "");
		hive_envelope_clear(&env);
	}
}

/* Runs ticks from t0 to t1 (exclusive) every step ms, collecting the jobs
 * each tick sent on both queues; with answer, the worker reports each job
 * done at once. */
static void run(struct fx *f, long long t0, long long t1, long long step, bool answer,
		struct job *out, size_t *nout)
{
	struct apid_sched_stats before, after;

	for (long long t = t0; t < t1; t += step) {
		apid_sched_get_stats(f->s, &before);
		apid_sched_tick(f->s, t);
		apid_sched_get_stats(f->s, &after);
		for (int k = 0; k < 2; k++) {
			size_t first = *nout;

			receive(f, k, after.kind[k].sent - before.kind[k].sent, t, out, nout);
			for (size_t i = first; answer && i < *nout; i++)
				apid_sched_job_done(f->s, out[i].mac, out[i].id, true);
		}
	}
}

static struct job *find_job(struct job *j, size_t n, const char *mac, const char *topic,
			    int nth)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(j[i].mac, mac) == 0 && strcmp(j[i].topic, topic) == 0 && nth-- == 0)
			return &j[i];
	return NULL;
}

static int64_t offset_of(const char *mac, int64_t iv, int64_t t0)
{
	int64_t slot = apid_sched_slot(mac, iv);

	return ((slot - t0) % iv + iv) % iv;
}

/* Each cycle's jobs are spread over the interval, every miner on its own
 * stable slot, one job per miner per cycle. */
static void test_spread_and_slots(void **state)
{
	struct fx *f = *state;
	static struct job jobs[4 * N_MINERS];
	size_t n = 0;
	const long long t0 = 1000000;
	int buckets[10] = { 0 };
	struct apid_sched_stats st;

	roster(f, N_MINERS, t0);
	run(f, t0, t0 + 2 * STATUS_MS, 10, true, jobs, &n);
	for (int i = 0; i < N_MINERS; i++) {
		struct job *a = find_job(jobs, n, f->macs[i], HIVE_TOPIC_JOB_STATUS, 0);
		struct job *b = find_job(jobs, n, f->macs[i], HIVE_TOPIC_JOB_STATUS, 1);
		int64_t off = offset_of(f->macs[i], STATUS_MS, t0);

		assert_non_null(a);
		assert_non_null(b);
		assert_null(find_job(jobs, n, f->macs[i], HIVE_TOPIC_JOB_STATUS, 2));
		/* On its slot (to the tick), and a steady period. */
		assert_true(a->at - t0 >= off && a->at - t0 < off + 10);
		assert_int_equal(b->at - a->at, STATUS_MS);
		buckets[(a->at - t0) * 10 / STATUS_MS]++;
	}
	/* Spread: 200 jobs over 10 s, 20 a second on average. */
	for (int b = 0; b < 10; b++)
		if (buckets[b] < 5 || buckets[b] > 45)
			fail_msg("bucket %d holds %d jobs: not spread", b, buckets[b]);
	/* Telemetry: each miner once a minute, so about a third in 20 s. */
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.kind[APID_JOB_STATUS].sent, 2 * N_MINERS);
	assert_int_equal(st.kind[APID_JOB_STATUS].done, 2 * N_MINERS);
	assert_true(st.kind[APID_JOB_TELEMETRY].sent > N_MINERS / 6);
	assert_true(st.kind[APID_JOB_TELEMETRY].sent < N_MINERS * 2 / 3);
	assert_int_equal(st.kind[APID_JOB_STATUS].not_sent, 0);
	assert_int_equal(st.kind[APID_JOB_STATUS].skipped_busy, 0);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(jobs[i].topic, HIVE_TOPIC_JOB_TELEMETRY) != 0)
			continue;
		assert_string_equal(jobs[i].endpoint,
				    strcmp(jobs[i].mac, f->macs[0]) == 0 ? "boards" : "chains");
	}
	/* Job ids are unique. */
	for (size_t i = 1; i < n; i++)
		for (size_t k = 0; k < i; k++)
			assert_true(jobs[i].id != jobs[k].id);
}

/* A miner whose job is out gets no second one until the result, a
 * failure, or the timeout. */
static void test_no_double_job(void **state)
{
	struct fx *f = *state;
	static struct job jobs[8 * 50];
	size_t n = 0, n1, n2;
	const long long t0 = 5000000;
	struct apid_sched_opts o = opts();
	struct apid_sched_stats st;

	o.interval_ms[APID_JOB_TELEMETRY] = 3600 * 1000;  /* keep to status jobs */
	apid_sched_configure(f->s, &o);
	roster(f, 50, t0);
	run(f, t0, t0 + STATUS_MS, 10, false, jobs, &n);
	n1 = n;
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.kind[APID_JOB_STATUS].sent, 50);
	assert_int_equal(st.kind[APID_JOB_STATUS].outstanding, 50);

	/* Second cycle, nothing answered: no job at all. */
	run(f, t0 + STATUS_MS, t0 + 2 * STATUS_MS, 10, false, jobs, &n);
	assert_int_equal(n, n1);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.kind[APID_JOB_STATUS].skipped_busy, 50);

	/* Results for 20, failures for 5, a wrong job id for one more. */
	for (size_t i = 0; i < 25; i++)
		apid_sched_job_done(f->s, jobs[i].mac, jobs[i].id, i < 20);
	apid_sched_job_done(f->s, jobs[30].mac, jobs[30].id + 100000, true);
	apid_sched_job_done(f->s, "aa:bb:cc:ff:ff:ff", 1, true);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.kind[APID_JOB_STATUS].done, 20);
	assert_int_equal(st.kind[APID_JOB_STATUS].failed, 5);
	assert_int_equal(st.kind[APID_JOB_STATUS].outstanding, 25);

	/* Third cycle: exactly the 25 freed miners get a job. The others
	 * time out 25 s after their job, before their slot in cycle four. */
	run(f, t0 + 2 * STATUS_MS, t0 + 3 * STATUS_MS, 10, false, jobs, &n);
	n2 = n;
	assert_int_equal(n2 - n1, 25);
	for (size_t i = n1; i < n2; i++) {
		bool freed = false;

		for (size_t k = 0; k < 25; k++)
			freed |= strcmp(jobs[k].mac, jobs[i].mac) == 0;
		assert_true(freed);
	}
	apid_sched_get_stats(f->s, &st);
	assert_true(st.kind[APID_JOB_STATUS].timed_out < 25);

	/* Fourth cycle: the timed-out ones are free again; the 25 of cycle
	 * three still wait for their result. */
	run(f, t0 + 3 * STATUS_MS, t0 + 4 * STATUS_MS, 10, false, jobs, &n);
	assert_int_equal(n - n2, 25);
	for (size_t i = n2; i < n; i++)
		for (size_t k = n1; k < n2; k++)
			assert_string_not_equal(jobs[i].mac, jobs[k].mac);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.kind[APID_JOB_STATUS].timed_out, 25);
}

/* Without a worker nothing is sent, and that is counted. */
static void test_no_worker(void **state)
{
	struct fx *f = *state;
	struct apid_sched_stats st;
	const long long t0 = 1000;

	roster(f, 20, t0);
	for (long long t = t0; t < t0 + STATUS_MS; t += 10)
		apid_sched_tick(f->s, t);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.kind[APID_JOB_STATUS].sent, 0);
	assert_int_equal(st.kind[APID_JOB_STATUS].not_sent, 20);
	assert_int_equal(st.kind[APID_JOB_STATUS].outstanding, 0);
	assert_true(st.kind[APID_JOB_TELEMETRY].not_sent > 0);
}

static void test_managed_only(void **state)
{
	struct fx *f = *state;
	static struct job jobs[4 * N_MINERS];
	size_t n = 0;
	struct apid_sched_opts o = opts();
	struct apid_sched_stats st;
	const long long t0 = 1000;

	o.managed_only = true;
	apid_sched_configure(f->s, &o);
	roster(f, 40, t0);
	run(f, t0, t0 + STATUS_MS, 10, true, jobs, &n);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.miners, 40);
	assert_int_equal(st.eligible, 20);
	assert_int_equal(st.kind[APID_JOB_STATUS].sent, 20);
	for (size_t i = 0; i < n; i++) {
		for (int m = 0; m < 40; m++)
			if (strcmp(jobs[i].mac, f->macs[m]) == 0)
				assert_int_equal(m % 2, 1);
	}
}

/* A new roster keeps the state of the miners it keeps. */
static void test_roster_merge(void **state)
{
	struct fx *f = *state;
	static struct job jobs[200];
	size_t n = 0, n1;
	struct apid_roster_miner r[10];
	const long long t0 = 1000;
	struct apid_sched_stats st;

	roster(f, 10, t0);
	run(f, t0, t0 + STATUS_MS, 10, false, jobs, &n);
	n1 = n;
	/* Keep miners 5..9 (jobs out), add 10..14. */
	for (int i = 0; i < 10; i++)
		r[i] = (struct apid_roster_miner){ .mac = f->macs[i + 5], .ip = "127.0.0.1",
						   .api_key = "key" };
	assert_int_equal(apid_sched_set_roster(f->s, r, 10, t0 + STATUS_MS), 0);
	apid_sched_job_done(f->s, f->macs[0], jobs[0].id, true);  /* gone: ignored */
	run(f, t0 + STATUS_MS, t0 + 2 * STATUS_MS, 10, false, jobs, &n);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.miners, 10);
	for (size_t i = n1; i < n; i++) {
		if (strcmp(jobs[i].topic, HIVE_TOPIC_JOB_STATUS) != 0)
			continue;
		for (int m = 0; m < 10; m++)
			assert_string_not_equal(jobs[i].mac, f->macs[m]);
	}
	assert_int_equal(st.kind[APID_JOB_STATUS].sent, 15);
}

/* The roster query: online miners with an address and a key. */
static void test_load_roster(void **state)
{
	struct fx *f = *state;
	char path[1024], key[1100], err[512];
	sqlite3 *db;
	struct apid_sched_stats st;
	struct apid_secrets *secrets;

	f->dir = tl_tmpdir("sched");
	snprintf(path, sizeof(path), "%s/ph.db", f->dir);
	db = apid_store_open(path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db,
		"INSERT INTO miners(mac, ip, api_key, online, managed, first_seen_ms, last_seen_ms,"
		" telemetry_source) VALUES"
		" ('aa:00:00:00:00:01', '127.0.0.1', 'k1', 1, 1, 1, 1, 'boards'),"
		" ('aa:00:00:00:00:02', '127.0.0.2', 'k2', 1, 0, 1, 1, NULL),"
		" ('aa:00:00:00:00:03', '127.0.0.3', 'k3', 1, 0, 1, 1, 'chains'),"
		" ('aa:00:00:00:00:04', NULL, 'k4', 0, 1, 1, 1, NULL),"
		" ('aa:00:00:00:00:05', '127.0.0.5', NULL, 1, 1, 1, 1, NULL),"
		" ('aa:00:00:00:00:06', '127.0.0.6', '', 1, 1, 1, 1, NULL),"
		" ('aa:00:00:00:00:07', '127.0.0.7', 'k7', 0, 1, 1, 1, NULL)",
		NULL, NULL, NULL), SQLITE_OK);
	/* Plaintext keys do not go out: only sealed ones, with the key. */
	assert_int_equal(apid_sched_load_roster(f->s, db, 1000, err, sizeof(err)), 0);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.miners, 0);
	snprintf(key, sizeof(key), "%s/secrets.key", f->dir);
	secrets = apid_secrets_start(db, path, key, err, sizeof(err));
	assert_non_null(secrets);
	assert_int_equal(apid_sched_load_roster(f->s, db, 1000, err, sizeof(err)), 0);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.miners, 0);           /* sealed, but no key given */
	apid_sched_set_secrets(f->s, secrets);
	assert_int_equal(apid_sched_load_roster(f->s, db, 1000, err, sizeof(err)), 0);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.miners, 3);
	assert_int_equal(st.roster_loads, 3);
	/* One altered key leaves its miner out, the others in. */
	assert_int_equal(sqlite3_exec(db, "UPDATE miners SET api_key = substr(api_key, 1, 20) ||"
				      " CASE substr(api_key, 21, 1) WHEN 'A' THEN 'B' ELSE 'A' END ||"
				      " substr(api_key, 22)"
				      " WHERE mac = 'aa:00:00:00:00:02'", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(apid_sched_load_roster(f->s, db, 1000, err, sizeof(err)), 0);
	apid_sched_get_stats(f->s, &st);
	assert_int_equal(st.miners, 2);
	apid_sched_set_secrets(f->s, NULL);
	apid_secrets_free(secrets);
	sqlite3_close(db);
}

/* ------------------------------------------------------------ guard */

static int check_status(struct apid_guard *g, long long job, const char *mac, const char *nonce,
			long long ts, enum apid_reject *why)
{
	struct hive_envelope env = { .ts = ts ? ts : hive_wall_ms() };
	struct apid_event ev = { .kind = HIVE_MSG_STATUS_RESULT };
	char err[256];

	ev.u.status.head.job = job;
	snprintf(ev.u.status.head.mac, sizeof(ev.u.status.head.mac), "%s", mac);
	ev.u.status.head.nonce = nonce;
	return apid_guard_check(g, &env, &ev, why, err, sizeof(err));
}

static void test_guard(void **state)
{
	struct hive_cfg cfg;
	struct apid_guard *g;
	struct hive_envelope env = { .ts = hive_wall_ms() };
	struct apid_event ev = { .kind = HIVE_MSG_MINER_SEEN };
	enum apid_reject why = APID_REJ_COUNT;
	char n1[HIVE_NONCE_CHARS + 1], n2[HIVE_NONCE_CHARS + 1], n3[HIVE_NONCE_CHARS + 1], err[256];

	(void)state;
	hive_cfg_defaults(&cfg);
	cfg.network.subnets = calloc(1, sizeof(*cfg.network.subnets));
	assert_non_null(cfg.network.subnets);
	assert_int_equal(hive_subnet_parse("127.0.9.0/24", cfg.network.subnets), 0);
	cfg.network.n_subnets = 1;
	assert_non_null(g = apid_guard_new(&cfg));

	apid_guard_issue(g, APID_GUARD_STATUS, 41, "aa:00:00:00:00:01", n1, 60000);
	apid_guard_issue(g, APID_GUARD_TELEMETRY, 42, "aa:00:00:00:00:01", n2, 60000);
	apid_guard_issue(g, APID_GUARD_STATUS, 43, "aa:00:00:00:00:02", n3, 1);
	assert_int_equal(strlen(n1), HIVE_NONCE_CHARS);
	assert_int_equal(strspn(n1, "0123456789abcdef"), HIVE_NONCE_CHARS);
	assert_string_not_equal(n1, n2);
	assert_int_equal(apid_guard_outstanding(g), 3);

	assert_int_equal(check_status(g, 41, "aa:00:00:00:00:01", NULL, 0, &why), -1);
	assert_int_equal(why, APID_REJ_NO_NONCE);
	assert_int_equal(check_status(g, 41, "aa:00:00:00:00:01", n2, 0, &why), -1);
	assert_int_equal(why, APID_REJ_NOT_ISSUED);            /* another job's nonce */
	assert_int_equal(check_status(g, 41, "aa:00:00:00:00:02", n1, 0, &why), -1);
	assert_int_equal(why, APID_REJ_NOT_ISSUED);            /* another miner */
	assert_int_equal(check_status(g, 42, "aa:00:00:00:00:01", n2, 0, &why), -1);
	assert_int_equal(why, APID_REJ_NOT_ISSUED);            /* a telemetry job, not status */
	assert_int_equal(check_status(g, 41, "aa:00:00:00:00:01", n1,
				      hive_wall_ms() + 86400000LL, &why), -1);
	assert_int_equal(why, APID_REJ_FUTURE);
	assert_int_equal(check_status(g, 41, "aa:00:00:00:00:01", n1, 0, &why), 0);
	assert_int_equal(check_status(g, 41, "aa:00:00:00:00:01", n1, 0, &why), -1);
	assert_int_equal(why, APID_REJ_NOT_ISSUED);            /* once */
	usleep(5 * 1000);
	assert_int_equal(check_status(g, 43, "aa:00:00:00:00:02", n3, 0, &why), -1);
	assert_int_equal(why, APID_REJ_NOT_ISSUED);            /* expired */
	/* hive.job.failed names no kind: the telemetry job, by its nonce */
	ev.kind = HIVE_MSG_JOB_FAILED;
	ev.u.job_failed.job = 42;
	snprintf(ev.u.job_failed.mac, sizeof(ev.u.job_failed.mac), "aa:00:00:00:00:01");
	ev.u.job_failed.nonce = n2;
	assert_int_equal(apid_guard_check(g, &env, &ev, &why, err, sizeof(err)), 0);
	assert_int_equal(apid_guard_outstanding(g), 0);

	/* addresses */
	memset(&ev, 0, sizeof(ev));
	ev.kind = HIVE_MSG_MINER_SEEN;
	snprintf(ev.u.seen.mac, sizeof(ev.u.seen.mac), "aa:00:00:00:00:01");
	snprintf(ev.u.seen.ip, sizeof(ev.u.seen.ip), "127.0.9.7");
	snprintf(ev.u.seen.subnet, sizeof(ev.u.seen.subnet), "127.0.9.0/24");
	assert_int_equal(apid_guard_check(g, &env, &ev, &why, err, sizeof(err)), 0);
	snprintf(ev.u.seen.ip, sizeof(ev.u.seen.ip), "127.0.10.7");
	assert_int_equal(apid_guard_check(g, &env, &ev, &why, err, sizeof(err)), -1);
	assert_int_equal(why, APID_REJ_OUTSIDE_SUBNETS);
	snprintf(ev.u.seen.ip, sizeof(ev.u.seen.ip), "127.0.9.7");
	snprintf(ev.u.seen.subnet, sizeof(ev.u.seen.subnet), "127.0.0.0/16");
	assert_int_equal(apid_guard_check(g, &env, &ev, &why, err, sizeof(err)), -1);
	assert_int_equal(why, APID_REJ_OUTSIDE_SUBNETS);

	/* sweeps: over half held once, then the next one decides */
	assert_false(apid_guard_sweep_hold(g, "127.0.9.0/24", 1, 3));
	assert_true(apid_guard_sweep_hold(g, "127.0.9.0/24", 3, 3));
	assert_false(apid_guard_sweep_hold(g, "127.0.9.0/24", 3, 3));   /* confirmed */
	assert_true(apid_guard_sweep_hold(g, "127.0.9.0/24", 2, 3));
	assert_false(apid_guard_sweep_hold(g, "127.0.9.0/24", 0, 3));   /* not confirmed */
	assert_true(apid_guard_sweep_hold(g, "127.0.9.0/24", 2, 3));
	cfg.network.sweep_drop_confirm_share = 1;
	apid_guard_configure(g, &cfg);
	assert_false(apid_guard_sweep_hold(g, "127.0.8.0/24", 3, 3));   /* off */

	apid_guard_free(g);
	free(cfg.network.subnets);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spread_and_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_double_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_worker, setup_no_worker, teardown),
		cmocka_unit_test_setup_teardown(test_managed_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roster_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_roster, setup_no_worker, teardown),
		cmocka_unit_test(test_guard),
	};

	hive_log_init("test_apid_sched", HIVE_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
