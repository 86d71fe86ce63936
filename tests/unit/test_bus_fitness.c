/* test_bus_fitness — proves on real nng sockets over TCP on 127.0.0.1 that
 * the bus does what PowerHive needs, at the buffer sizes PowerHive uses (the
 * config defaults, read with hive_cfg_defaults):
 *   1. a 20,000-event burst from 4 publisher processes reaches one listening
 *      subscriber with no gap;
 *   2. a stalled subscriber loses messages, and every one of them is counted;
 *   3. a subscriber that starts late gets everything published once it is
 *      connected;
 *   4. jobs are shared among pullers, and a puller that goes away loses only
 *      the jobs already on their way to it;
 *   5. malformed envelopes are refused and counted by reason, never a crash;
 *   6. REQ/REP round trips and times out;
 *   7. peer counts and the pollable receive fd.
 * Publishers of test 1 are this binary re-executed with --publisher (fork
 * after nng has started threads is not safe; exec is): tests/lib/busfix.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive/bus.h"
#include "hive/cfg.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "../lib/busfix.h"
#include "../lib/testlib.h"

#define BURST_PUBLISHERS 4
#define BURST_TOTAL      20000

static struct hive_cfg cfg;

/* Under LeakSanitizer: nng 1.5.2's push0 loses (never frees) a job that was
 * being written when its connection closed, and a socket closed while
 * messages pour in can leave pipe objects behind (the close race fixed in
 * nng 1.6 that hive_bus_close works around). Both leaks are inside nng; they
 * are suppressed only for the senders and sockets of the tests that close
 * under load on purpose. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:flood_main\nleak:push_job\nleak:close_under_load\n";
}

static void make_url(char *buf, size_t len)
{
	int port = tl_free_port();

	assert_true(port > 0);
	snprintf(buf, len, "tcp://127.0.0.1:%d", port);
}

static struct hive_bus *open_bus(enum hive_bus_role role, const char *url,
				 const struct hive_bus_opts *o)
{
	char err[256] = "";
	struct hive_bus *b = hive_bus_open(role, url, o, err, sizeof(err));

	if (b == NULL)
		fail_msg("hive_bus_open %s: %s", url, err);
	return b;
}

struct peers_want {
	struct hive_bus *bus;
	int n;
};

static bool peers_reached(void *arg)
{
	struct peers_want *w = arg;

	return hive_bus_peers(w->bus) == w->n;
}

static int wait_peers(struct hive_bus *bus, int n, int timeout_ms)
{
	struct peers_want w = { bus, n };

	return tl_wait_until(timeout_ms, peers_reached, &w);
}

/* ------------------------------------------------------------ 1. burst */

static void test_burst_no_gap(void **state)
{
	struct hive_bus_opts o = tl_bus_opts(true, "apid/test/1");
	struct tl_pub ch[BURST_PUBLISHERS];
	struct hive_seq_tracker *seq = hive_seq_new();
	struct hive_bus *sub;
	struct hive_bus_stats st;
	struct tl_receiver r;
	char url[64], src[64];
	long long t0, t1;
	int i, received = 0, per = BURST_TOTAL / BURST_PUBLISHERS;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	make_url(url, sizeof(url));
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &o);
	assert_int_equal(hive_bus_subscribe(sub, "hive."), 0);
	assert_int_equal(tl_receiver_start(&r, sub), 0);

	for (i = 0; i < BURST_PUBLISHERS; i++) {
		snprintf(src, sizeof(src), "pollerd/test/%d", i);
		assert_int_equal(tl_pub_spawn(&ch[i], url, src, per), 0);
	}
	for (i = 0; i < BURST_PUBLISHERS; i++)
		assert_true(tl_pub_ready(&ch[i], 10000));
	assert_int_equal(wait_peers(sub, BURST_PUBLISHERS, 5000), 0);

	t0 = hive_mono_ms();
	for (i = 0; i < BURST_PUBLISHERS; i++)
		assert_int_equal(tl_pub_go(&ch[i]), 0);
	while (received < BURST_TOTAL) {
		struct hive_envelope env;

		if (!tl_receiver_pop(&r, &env, 5000))
			break;
		hive_seq_track(seq, env.src, env.boot, env.topic, env.seq);
		received++;
		hive_envelope_clear(&env);
	}
	t1 = hive_mono_ms();
	for (i = 0; i < BURST_PUBLISHERS; i++)
		assert_true(tl_pub_sent(&ch[i], 5000));
	for (i = 0; i < BURST_PUBLISHERS; i++)
		assert_true(tl_pub_finish(&ch[i], 3000));
	tl_receiver_stop(&r);
	hive_bus_get_stats(sub, &st);
	printf("figure: bus burst: sent=%d received=%d gaps=%llu time_ms=%lld rate=%lld/s"
	       " max_queue=%zu\n",
	       BURST_TOTAL, received, (unsigned long long)hive_seq_lost(seq), t1 - t0,
	       (t1 - t0) > 0 ? BURST_TOTAL * 1000LL / (t1 - t0) : 0, r.max_depth);
	assert_int_equal(received, BURST_TOTAL);
	assert_int_equal(hive_seq_lost(seq), 0);
	assert_int_equal(hive_seq_duplicates(seq), 0);
	assert_int_equal(st.rejected, 0);
	hive_seq_free(seq);
	hive_bus_close(sub);
}

/* ------------------------------------------------------------ 2. drop */

static void test_stalled_subscriber_counts_gap(void **state)
{
	struct hive_bus_opts so = tl_bus_opts(true, "apid/test/1");
	struct hive_bus_opts po = tl_bus_opts(false, "discoverd/test/2");
	struct hive_seq_tracker *seq = hive_seq_new();
	struct hive_bus *sub, *pub;
	struct hive_envelope env;
	char url[64];
	int i, sent = 0, received = 0;
	/* Far more than every queue on the way holds: the publisher's
	 * sendbuf, the subscriber's recvbuf and its backlog (4 recvbufs). */
	int burst = 8 * cfg.bus.recvbuf;
	unsigned long long last = 0;

	(void)state;
	make_url(url, sizeof(url));
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &so);
	assert_int_equal(hive_bus_subscribe(sub, ""), 0);
	pub = open_bus(HIVE_BUS_PUBLISH, url, &po);
	assert_int_equal(wait_peers(pub, 1, 5000), 0);
	assert_int_equal(wait_peers(sub, 1, 5000), 0);

	/* One message received in the normal way sets the baseline. */
	{
		json_t *b = json_pack("{s:i}", "n", 0);

		assert_int_equal(hive_bus_send(pub, HIVE_TOPIC_MINER_SEEN, b, false), HIVE_BUS_OK);
		json_decref(b);
		sent++;
	}
	assert_int_equal(hive_bus_recv(sub, &env, 2000), HIVE_BUS_OK);
	assert_int_equal(hive_seq_track(seq, env.src, env.boot, env.topic, env.seq), 0);
	received++;
	hive_envelope_clear(&env);

	/* The subscriber stalls while the publisher bursts. */
	for (i = 1; i <= burst; i++) {
		json_t *b = json_pack("{s:i, s:s}", "n", i, "mac", "02:00:00:00:00:02");

		assert_int_equal(hive_bus_send(pub, HIVE_TOPIC_MINER_SEEN, b, false), HIVE_BUS_OK);
		json_decref(b);
		sent++;
	}
	tl_sleep_ms(500);

	/* Drain: the newest messages survive, the last one included. */
	while (last < (unsigned long long)sent) {
		int rc = hive_bus_recv(sub, &env, 3000);

		if (rc != HIVE_BUS_OK)
			break;
		hive_seq_track(seq, env.src, env.boot, env.topic, env.seq);
		last = env.seq;
		received++;
		hive_envelope_clear(&env);
	}
	printf("figure: bus drop: sent=%d received=%d lost=%llu (stalled subscriber, "
	       "sendbuf=%d recvbuf=%d)\n",
	       sent, received, (unsigned long long)hive_seq_lost(seq), cfg.bus.sendbuf,
	       cfg.bus.recvbuf);
	assert_true(last == (unsigned long long)sent);
	assert_true(hive_seq_lost(seq) > 0);
	assert_int_equal((uint64_t)received + hive_seq_lost(seq), (uint64_t)sent);
	assert_int_equal(hive_seq_duplicates(seq), 0);
	hive_seq_free(seq);
	hive_bus_close(pub);
	hive_bus_close(sub);
}

/* ------------------------------------------------------------ 3. late subscriber */

#define LATE_PUBLISHERS 2
#define LATE_COUNT      2000

struct late_pub {
	pthread_t thread;
	const char *url;
	int id;
	atomic_bool *subscribed;
	int before;              /* sent while nobody listened */
	int failed;
};

static void *late_pub_main(void *arg)
{
	struct late_pub *p = arg;
	char src[64];
	struct hive_bus_opts o;
	struct hive_bus *pub;
	long long deadline = hive_mono_ms() + 10000;
	int i;

	snprintf(src, sizeof(src), "pollerd/late/%d", p->id);
	o = tl_bus_opts(false, src);
	if ((pub = hive_bus_open(HIVE_BUS_PUBLISH, p->url, &o, NULL, 0)) == NULL) {
		p->failed = 1;
		return NULL;
	}
	/* Publishing into the void until apid is there (those are lost). */
	while (!(hive_bus_peers(pub) > 0 && atomic_load(p->subscribed))) {
		json_t *b = json_pack("{s:s}", "phase", "before");

		if (hive_mono_ms() > deadline) {
			p->failed = 2;
			goto out;
		}
		hive_bus_send(pub, HIVE_TOPIC_HEARTBEAT, b, false);
		json_decref(b);
		p->before++;
		tl_sleep_ms(10);
	}
	for (i = 0; i < LATE_COUNT; i++) {
		json_t *b = json_pack("{s:s, s:i}", "phase", "after", "i", i);

		if (hive_bus_send(pub, HIVE_TOPIC_HEARTBEAT, b, false) != HIVE_BUS_OK)
			p->failed = 3;
		json_decref(b);
	}
	/* Keep the socket until the subscriber is done (no linger in nng). */
	while (atomic_load(p->subscribed) && hive_mono_ms() < deadline)
		tl_sleep_ms(10);
out:
	hive_bus_close(pub);
	return NULL;
}

static void test_late_subscriber(void **state)
{
	struct late_pub pubs[LATE_PUBLISHERS];
	struct hive_seq_tracker *seq = hive_seq_new();
	struct hive_bus_opts so = tl_bus_opts(true, "apid/test/1");
	atomic_bool subscribed = false;
	struct hive_bus *sub;
	char url[64];
	int i, after = 0, before_seen = 0, total_before = 0;
	long long deadline;

	(void)state;
	make_url(url, sizeof(url));
	for (i = 0; i < LATE_PUBLISHERS; i++) {
		pubs[i] = (struct late_pub){ .url = url, .id = i, .subscribed = &subscribed };
		assert_int_equal(pthread_create(&pubs[i].thread, NULL, late_pub_main, &pubs[i]), 0);
	}
	/* apid comes up after the daemons. */
	tl_sleep_ms(300);
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &so);
	assert_int_equal(hive_bus_subscribe(sub, ""), 0);
	atomic_store(&subscribed, true);

	deadline = hive_mono_ms() + 10000;
	while (after < LATE_PUBLISHERS * LATE_COUNT && hive_mono_ms() < deadline) {
		struct hive_envelope env;
		const char *phase;

		if (hive_bus_recv(sub, &env, 500) != HIVE_BUS_OK)
			continue;
		hive_seq_track(seq, env.src, env.boot, env.topic, env.seq);
		phase = json_string_value(json_object_get(env.body, "phase"));
		if (phase && strcmp(phase, "after") == 0)
			after++;
		else
			before_seen++;
		hive_envelope_clear(&env);
	}
	atomic_store(&subscribed, false);
	for (i = 0; i < LATE_PUBLISHERS; i++) {
		pthread_join(pubs[i].thread, NULL);
		assert_int_equal(pubs[i].failed, 0);
		total_before += pubs[i].before;
	}
	printf("figure: bus late subscriber: published_before=%d of which received=%d;"
	       " after_connect sent=%d received=%d lost=%llu\n",
	       total_before, before_seen, LATE_PUBLISHERS * LATE_COUNT, after,
	       (unsigned long long)hive_seq_lost(seq));
	assert_int_equal(after, LATE_PUBLISHERS * LATE_COUNT);
	assert_int_equal(hive_seq_lost(seq), 0);
	hive_seq_free(seq);
	hive_bus_close(sub);
}

/* ------------------------------------------------------------ 4. jobs */

#define PULLERS      3
#define FAIR_JOBS    3000
#define LEAVE_JOBS   3000
#define LEAVE_AFTER  100      /* the leaving puller closes after this many */
#define MAX_JOBS     (FAIR_JOBS + LEAVE_JOBS)

struct jobs {
	const char *url;
	_Atomic int taken_by[MAX_JOBS];     /* puller id + 1, 0 = not received */
	atomic_int times[MAX_JOBS];          /* how often each job arrived */
	atomic_int total;
	atomic_bool stop;
	atomic_int leave_phase;              /* 1 once phase 2 started */
};

struct puller {
	pthread_t thread;
	struct jobs *jobs;
	int id;
	bool leaves;                         /* closes after LEAVE_AFTER of phase 2 */
	atomic_bool connected;
	int got[2];                          /* per phase */
	long long last_job;                  /* last job id taken (leaving puller) */
	bool left;
};

static void *puller_main(void *arg)
{
	struct puller *p = arg;
	char src[64];
	struct hive_bus_opts o;
	struct hive_bus *pull;

	snprintf(src, sizeof(src), "pollerd/jobs/%d", p->id);
	o = tl_bus_opts(false, src);
	o.recvbuf = 1;                       /* as the workers do: hold no jobs back */
	if ((pull = hive_bus_open(HIVE_BUS_PULL, p->jobs->url, &o, NULL, 0)) == NULL)
		return NULL;
	atomic_store(&p->connected, true);
	while (!atomic_load(&p->jobs->stop)) {
		struct hive_envelope env;
		json_int_t job;
		int phase;

		if (hive_bus_recv(pull, &env, 50) != HIVE_BUS_OK)
			continue;
		job = json_integer_value(json_object_get(env.body, "job"));
		hive_envelope_clear(&env);
		if (job < 0 || job >= MAX_JOBS)
			continue;
		atomic_fetch_add(&p->jobs->times[job], 1);
		atomic_store(&p->jobs->taken_by[job], p->id + 1);
		atomic_fetch_add(&p->jobs->total, 1);
		phase = job < FAIR_JOBS ? 0 : 1;
		p->got[phase]++;
		/* A job takes a worker some time; without it the share only
		 * measures which thread the scheduler ran, not nng's balancing. */
		if (phase == 0)
			usleep(200);
		if (p->leaves && phase == 1 && p->got[1] == LEAVE_AFTER) {
			p->last_job = job;
			p->left = true;
			break;               /* a worker that stops: its socket closes */
		}
	}
	hive_bus_close(pull);
	return NULL;
}

static void push_job(struct hive_bus *push, long long job)
{
	json_t *b = json_pack("{s:I, s:s, s:s, s:i, s:s}", "job", (json_int_t)job, "mac",
			      "02:00:00:00:00:03", "ip", "127.0.0.1", "port", 80, "api_key",
			      "not-a-real-key");

	assert_int_equal(hive_bus_send(push, HIVE_TOPIC_JOB_STATUS, b, false), HIVE_BUS_OK);
	json_decref(b);
}

struct total_want {
	struct jobs *jobs;
	int n;
};

static bool total_reached(void *arg)
{
	struct total_want *w = arg;

	return atomic_load(&w->jobs->total) >= w->n;
}

static void test_jobs_shared_and_leaving_puller(void **state)
{
	static struct jobs jobs;
	struct puller pl[PULLERS];
	struct hive_bus_opts o = tl_bus_opts(true, "apid/test/1");
	struct hive_bus *push;
	struct total_want tw;
	char url[64];
	long long job, sent_when_gone = -1;
	int i, lost = 0, dup = 0, lost_outside = 0, remaining_got, quiet, seen;
	struct puller *c = &pl[PULLERS - 1];

	(void)state;
	memset(&jobs, 0, sizeof(jobs));
	make_url(url, sizeof(url));
	jobs.url = url;
	push = open_bus(HIVE_BUS_PUSH, url, &o);
	for (i = 0; i < PULLERS; i++) {
		pl[i] = (struct puller){ .jobs = &jobs, .id = i, .leaves = i == PULLERS - 1 };
		assert_int_equal(pthread_create(&pl[i].thread, NULL, puller_main, &pl[i]), 0);
	}
	assert_int_equal(wait_peers(push, PULLERS, 5000), 0);

	/* Phase 1: a cycle's jobs pushed at once are shared fairly. */
	for (job = 0; job < FAIR_JOBS; job++)
		push_job(push, job);
	tw = (struct total_want){ &jobs, FAIR_JOBS };
	assert_int_equal(tl_wait_until(10000, total_reached, &tw), 0);
	/* nng hands jobs to whichever pipe can take one, and TCP buffers let a
	 * puller hold a few in flight: shares vary with scheduling, but none
	 * may starve. */
	for (i = 0; i < PULLERS; i++)
		assert_true(pl[i].got[0] >= FAIR_JOBS / PULLERS / 4);
	assert_int_equal(pl[0].got[0] + pl[1].got[0] + pl[2].got[0], FAIR_JOBS);

	/* Phase 2: jobs keep coming in small bursts (the scheduler spreads a
	 * cycle) while one puller takes LEAVE_AFTER jobs and goes away. */
	for (job = FAIR_JOBS; job < MAX_JOBS; job++) {
		push_job(push, job);
		if (sent_when_gone < 0 && hive_bus_peers(push) == PULLERS - 1)
			sent_when_gone = job;    /* this one and those before may have gone to it */
		if (job % 25 == 0)
			tl_sleep_ms(5);
	}
	assert_true(c->left);
	assert_true(sent_when_gone >= 0);
	/* Everything not lost arrives: wait until all did, or until nothing
	 * more came for 300 ms. */
	for (quiet = 0, seen = -1; quiet < 300 && atomic_load(&jobs.total) < MAX_JOBS;) {
		int now = atomic_load(&jobs.total);

		quiet = now == seen ? quiet + 20 : 0;
		seen = now;
		tl_sleep_ms(20);
	}
	atomic_store(&jobs.stop, true);
	for (i = 0; i < PULLERS; i++)
		pthread_join(pl[i].thread, NULL);

	for (job = 0; job < MAX_JOBS; job++) {
		int t = atomic_load(&jobs.times[job]);

		if (t > 1)
			dup++;
		if (t == 0) {
			lost++;
			/* Only jobs on their way to the leaving puller may be lost:
			 * after the last one it took (one connection keeps order),
			 * and pushed no later than the send after which its
			 * connection was seen gone. */
			if (job <= c->last_job || job > sent_when_gone) {
				print_error("job %lld lost outside (%lld, %lld]\n", job,
					    c->last_job, sent_when_gone);
				lost_outside++;
			}
		}
	}
	remaining_got = pl[0].got[1] + pl[1].got[1];
	printf("figure: bus jobs: pushed=%d to %d pullers, shares=%d/%d/%d\n", FAIR_JOBS, PULLERS,
	       pl[0].got[0], pl[1].got[0], pl[2].got[0]);
	printf("figure: bus jobs, puller leaves: pushed=%d leaving_puller_took=%d"
	       " remaining_pullers_took=%d lost_in_flight_to_leaver=%d duplicates=%d\n",
	       LEAVE_JOBS, c->got[1], remaining_got, lost, dup);
	assert_int_equal(dup, 0);
	assert_int_equal(lost_outside, 0);
	assert_int_equal(c->got[1] + remaining_got + lost, LEAVE_JOBS);
	/* The remaining pullers still got their shares and the leaver's rest. */
	assert_true(remaining_got >= LEAVE_JOBS - LEAVE_AFTER - lost);
	hive_bus_close(push);
}

/* ------------------------------------------------------------ 5. malformed */

static void test_malformed_counted(void **state)
{
	struct hive_bus_opts so = tl_bus_opts(true, "apid/test/1");
	struct hive_bus_opts po = tl_bus_opts(false, "evil/test/5");
	static const struct {
		const char *name;
		const char *bytes;       /* topic '\0' json, written with an explicit length */
		size_t len;
		enum hive_envelope_error want;
	} raw[] = {
#define RAW(s) s, sizeof(s) - 1
		{ "not json", RAW("hive.miner.seen\0this is not json"), HIVE_ENV_NOT_JSON },
		{ "no separator", RAW("hive.miner.seen {\"v\":1}"), HIVE_ENV_NO_TOPIC },
		{ "empty", RAW(""), HIVE_ENV_NO_TOPIC },
		{ "missing body",
		  RAW("hive.miner.seen\0{\"v\":1,\"src\":\"x\",\"boot\":1,\"seq\":1,\"ts\":1}"),
		  HIVE_ENV_MISSING_FIELD },
		{ "missing src",
		  RAW("hive.miner.seen\0{\"v\":1,\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}"),
		  HIVE_ENV_MISSING_FIELD },
		{ "seq string",
		  RAW("hive.miner.seen\0{\"v\":1,\"src\":\"x\",\"boot\":1,\"seq\":\"1\",\"ts\":1,"
		      "\"body\":{}}"),
		  HIVE_ENV_MISSING_FIELD },
		{ "body array",
		  RAW("hive.miner.seen\0{\"v\":1,\"src\":\"x\",\"boot\":1,\"seq\":1,\"ts\":1,"
		      "\"body\":[]}"),
		  HIVE_ENV_MISSING_FIELD },
		{ "v 2",
		  RAW("hive.miner.seen\0{\"v\":2,\"src\":\"x\",\"boot\":1,\"seq\":1,\"ts\":1,"
		      "\"body\":{}}"),
		  HIVE_ENV_BAD_VERSION },
		{ "json array", RAW("hive.miner.seen\0[]"), HIVE_ENV_NOT_JSON },
#undef RAW
	};
	uint64_t want_by[HIVE_ENV_ERROR_COUNT] = { 0 };
	struct hive_bus *sub, *pub;
	struct hive_bus_stats st;
	struct hive_envelope env;
	char url[64], *big;
	size_t i, big_len = cfg.bus.max_message_bytes + 1;
	json_t *b;
	int rc;

	(void)state;
	make_url(url, sizeof(url));
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &so);
	assert_int_equal(hive_bus_subscribe(sub, ""), 0);
	pub = open_bus(HIVE_BUS_PUBLISH, url, &po);
	assert_int_equal(wait_peers(pub, 1, 5000), 0);

	for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		assert_int_equal(hive_bus_send_raw(pub, raw[i].bytes, raw[i].len, false),
				 HIVE_BUS_OK);
		want_by[raw[i].want]++;
	}
	/* One byte over max_message_bytes, otherwise a valid envelope. */
	assert_non_null(big = malloc(big_len));
	{
		static const char head[] = "hive.miner.seen\0{\"v\":1,\"src\":\"x\",\"boot\":1,"
					   "\"seq\":1,\"ts\":1,\"body\":{\"pad\":\"";
		memcpy(big, head, sizeof(head) - 1);
		memset(big + sizeof(head) - 1, 'a', big_len - (sizeof(head) - 1) - 3);
		memcpy(big + big_len - 3, "\"}}", 3);
	}
	assert_int_equal(hive_bus_send_raw(pub, big, big_len, false), HIVE_BUS_OK);
	want_by[HIVE_ENV_TOO_LARGE]++;
	/* And the same too large to even send through hive_bus_send. */
	b = json_pack("{s:s%}", "pad", big + 60, big_len - 70);
	assert_non_null(b);
	assert_int_equal(hive_bus_send(pub, HIVE_TOPIC_MINER_SEEN, b, false), HIVE_BUS_ERROR);
	json_decref(b);
	free(big);

	b = json_pack("{s:s}", "mac", "02:00:00:00:00:05");
	assert_int_equal(hive_bus_send(pub, HIVE_TOPIC_MINER_SEEN, b, false), HIVE_BUS_OK);
	json_decref(b);

	for (i = 0; i < sizeof(raw) / sizeof(raw[0]) + 1; i++) {
		rc = hive_bus_recv(sub, &env, 3000);
		if (rc != HIVE_BUS_REJECTED)
			fail_msg("message %zu (%s): got %d, want rejected", i,
				 i < sizeof(raw) / sizeof(raw[0]) ? raw[i].name : "too large", rc);
	}
	assert_int_equal(hive_bus_recv(sub, &env, 3000), HIVE_BUS_OK);
	assert_string_equal(env.topic, HIVE_TOPIC_MINER_SEEN);
	assert_string_equal(env.src, "evil/test/5");
	assert_true(env.seq == 1);   /* the refused send gave its seq back */
	assert_string_equal(json_string_value(json_object_get(env.body, "mac")),
			    "02:00:00:00:00:05");
	hive_envelope_clear(&env);

	hive_bus_get_stats(sub, &st);
	assert_int_equal(st.received, 1);
	assert_int_equal(st.rejected, sizeof(raw) / sizeof(raw[0]) + 1);
	for (i = 1; i < HIVE_ENV_ERROR_COUNT; i++)
		if (st.rejected_by[i] != want_by[i])
			fail_msg("rejected_by[%s] = %llu, want %llu", hive_envelope_error_name(i),
				 (unsigned long long)st.rejected_by[i],
				 (unsigned long long)want_by[i]);
	printf("figure: bus malformed: rejected=%llu (too_large=%llu no_topic=%llu "
	       "not_json=%llu missing_field=%llu bad_version=%llu), valid after them: "
	       "received\n",
	       (unsigned long long)st.rejected,
	       (unsigned long long)st.rejected_by[HIVE_ENV_TOO_LARGE],
	       (unsigned long long)st.rejected_by[HIVE_ENV_NO_TOPIC],
	       (unsigned long long)st.rejected_by[HIVE_ENV_NOT_JSON],
	       (unsigned long long)st.rejected_by[HIVE_ENV_MISSING_FIELD],
	       (unsigned long long)st.rejected_by[HIVE_ENV_BAD_VERSION]);
	hive_bus_get_stats(pub, &st);
	assert_int_equal(st.send_failed, 1);

	hive_bus_close(pub);
	hive_bus_close(sub);
}

/* A message far beyond the limit makes nng drop the connection (it cannot
 * be counted as an envelope); the sender reconnects and the next valid
 * message arrives. */
static void test_huge_message_drops_connection(void **state)
{
	struct hive_bus_opts so = tl_bus_opts(true, "apid/test/1");
	struct hive_bus_opts po = tl_bus_opts(false, "evil/test/6");
	struct hive_bus *sub, *pub;
	struct hive_envelope env;
	size_t huge = cfg.bus.max_message_bytes * 3;
	char url[64], *buf;
	json_t *b;
	int rc, tries;

	(void)state;
	make_url(url, sizeof(url));
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &so);
	assert_int_equal(hive_bus_subscribe(sub, ""), 0);
	pub = open_bus(HIVE_BUS_PUBLISH, url, &po);
	assert_int_equal(wait_peers(pub, 1, 5000), 0);
	assert_non_null(buf = calloc(1, huge));
	memcpy(buf, "hive.x", 6);
	assert_int_equal(hive_bus_send_raw(pub, buf, huge, false), HIVE_BUS_OK);
	free(buf);
	assert_int_equal(hive_bus_recv(sub, &env, 500), HIVE_BUS_TIMEOUT);
	/* Keep publishing until the reconnected pipe delivers one. */
	for (tries = 0, rc = -1; tries < 50 && rc != HIVE_BUS_OK; tries++) {
		b = json_pack("{s:i}", "try", tries);
		hive_bus_send(pub, HIVE_TOPIC_MINER_SEEN, b, false);
		json_decref(b);
		rc = hive_bus_recv(sub, &env, 100);
	}
	assert_int_equal(rc, HIVE_BUS_OK);
	hive_envelope_clear(&env);
	hive_bus_close(pub);
	hive_bus_close(sub);
}

/* ------------------------------------------------------------ 6. REQ/REP */

struct replier {
	pthread_t thread;
	struct hive_bus *rep;
	atomic_bool stop;
	bool answer;
	atomic_int served;
};

static void *replier_main(void *arg)
{
	struct replier *r = arg;

	while (!atomic_load(&r->stop)) {
		struct hive_envelope env;
		json_t *reply;

		if (hive_bus_recv(r->rep, &env, 50) != HIVE_BUS_OK)
			continue;
		atomic_fetch_add(&r->served, 1);
		if (r->answer) {
			reply = json_pack("{s:O, s:s}", "echo",
					  json_object_get(env.body, "mac") ?
						  json_object_get(env.body, "mac") : json_null(),
					  "asked", env.src);
			hive_bus_send(r->rep, HIVE_TOPIC_CTL_CREDENTIALS, reply, false);
			json_decref(reply);
		}
		hive_envelope_clear(&env);
	}
	return NULL;
}

static void test_request_reply(void **state)
{
	struct hive_bus_opts ro = tl_bus_opts(true, "apid/test/1");
	struct hive_bus_opts qo = tl_bus_opts(false, "discoverd/test/7");
	struct replier r = { .answer = true };
	struct hive_bus *req, *lonely;
	struct hive_envelope env;
	char url[64], url2[64], mac[32];
	long long t0, dt;
	int i;

	(void)state;
	make_url(url, sizeof(url));
	r.rep = open_bus(HIVE_BUS_REPLY, url, &ro);
	assert_true(hive_bus_recv_fd(r.rep) >= 0);
	assert_int_equal(pthread_create(&r.thread, NULL, replier_main, &r), 0);
	req = open_bus(HIVE_BUS_REQUEST, url, &qo);

	t0 = hive_mono_ms();
	for (i = 0; i < 20; i++) {
		json_t *b;

		snprintf(mac, sizeof(mac), "02:00:00:00:01:%02x", i);
		b = json_pack("{s:s}", "mac", mac);
		assert_int_equal(hive_bus_request(req, HIVE_TOPIC_CTL_CREDENTIALS, b, &env, 3000),
				 HIVE_BUS_OK);
		json_decref(b);
		assert_string_equal(env.topic, HIVE_TOPIC_CTL_CREDENTIALS);
		assert_string_equal(env.src, "apid/test/1");
		assert_string_equal(json_string_value(json_object_get(env.body, "echo")), mac);
		assert_string_equal(json_string_value(json_object_get(env.body, "asked")),
				    "discoverd/test/7");
		assert_true(env.seq == (unsigned long long)i + 1);
		hive_envelope_clear(&env);
	}
	dt = hive_mono_ms() - t0;
	printf("figure: bus req/rep: 20 round trips in %lld ms (first one includes the connect)\n",
	       dt);

	/* Timeout 1: nobody listens at all. */
	make_url(url2, sizeof(url2));
	lonely = open_bus(HIVE_BUS_REQUEST, url2, &qo);
	t0 = hive_mono_ms();
	{
		json_t *b = json_object();

		assert_int_equal(hive_bus_request(lonely, HIVE_TOPIC_CTL_HEALTH, b, &env, 300),
				 HIVE_BUS_TIMEOUT);
		json_decref(b);
	}
	dt = hive_mono_ms() - t0;
	assert_true(dt >= 250 && dt < 2000);
	hive_bus_close(lonely);

	/* Timeout 2: the replier takes the request and never answers. */
	r.answer = false;
	{
		json_t *b = json_object();
		int served = atomic_load(&r.served);

		t0 = hive_mono_ms();
		assert_int_equal(hive_bus_request(req, HIVE_TOPIC_CTL_HEALTH, b, &env, 300),
				 HIVE_BUS_TIMEOUT);
		dt = hive_mono_ms() - t0;
		json_decref(b);
		assert_true(dt >= 250 && dt < 2000);
		assert_int_equal(atomic_load(&r.served), served + 1);
	}
	atomic_store(&r.stop, true);
	pthread_join(r.thread, NULL);
	hive_bus_close(req);
	hive_bus_close(r.rep);
}

/* ------------------------------------------------------------ 7. peers, fd */

static bool fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void test_peers_and_recv_fd(void **state)
{
	struct hive_bus_opts so = tl_bus_opts(true, "apid/test/1");
	struct hive_bus_opts po = tl_bus_opts(false, "telemetryd/test/8");
	struct hive_bus *sub, *p1, *p2;
	struct hive_envelope env;
	char url[64];
	int fd;
	json_t *b;

	(void)state;
	make_url(url, sizeof(url));
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &so);
	assert_int_equal(hive_bus_subscribe(sub, HIVE_TOPIC_TELEMETRY_RESULT), 0);
	assert_int_equal(hive_bus_peers(sub), 0);
	fd = hive_bus_recv_fd(sub);
	assert_true(fd >= 0);
	assert_false(fd_readable(fd, 0));

	p1 = open_bus(HIVE_BUS_PUBLISH, url, &po);
	assert_int_equal(wait_peers(sub, 1, 5000), 0);
	p2 = open_bus(HIVE_BUS_PUBLISH, url, &po);
	assert_int_equal(wait_peers(sub, 2, 5000), 0);
	assert_int_equal(wait_peers(p1, 1, 5000), 0);
	assert_int_equal(wait_peers(p2, 1, 5000), 0);
	assert_int_equal(hive_bus_recv_fd(p1), -1);

	/* A topic not subscribed to does not wake the poller. */
	b = json_object();
	assert_int_equal(hive_bus_send(p1, HIVE_TOPIC_HEARTBEAT, b, false), HIVE_BUS_OK);
	assert_false(fd_readable(fd, 200));
	assert_int_equal(hive_bus_send(p1, HIVE_TOPIC_TELEMETRY_RESULT, b, false), HIVE_BUS_OK);
	json_decref(b);
	assert_true(fd_readable(fd, 2000));
	assert_int_equal(hive_bus_recv(sub, &env, 0), HIVE_BUS_OK);
	assert_string_equal(env.topic, HIVE_TOPIC_TELEMETRY_RESULT);
	hive_envelope_clear(&env);
	assert_false(fd_readable(fd, 0));
	assert_int_equal(hive_bus_recv(sub, &env, 0), HIVE_BUS_TIMEOUT);

	hive_bus_close(p1);
	assert_int_equal(wait_peers(sub, 1, 5000), 0);
	hive_bus_close(p2);
	assert_int_equal(wait_peers(sub, 0, 5000), 0);

	/* A dialer counts its listener, and notices it go and come back. */
	p1 = open_bus(HIVE_BUS_PUBLISH, url, &po);
	assert_int_equal(wait_peers(p1, 1, 5000), 0);
	hive_bus_close(sub);
	assert_int_equal(wait_peers(p1, 0, 5000), 0);
	sub = open_bus(HIVE_BUS_SUBSCRIBE, url, &so);
	assert_int_equal(wait_peers(p1, 1, 5000), 0);
	hive_bus_close(p1);
	hive_bus_close(sub);
}

/* ------------------------------------------------------------ 8. closing under load
 * nng 1.5.2 can hang for ever in nng_close when a message arrives on a
 * connection as it closes (fixed in nng 1.6); hive_bus_close works around
 * it. Here receivers close while their sender floods them, as daemons do
 * when stopped in the middle of a cycle: every close returns promptly
 * (an abandoned close would take BUS_CLOSE_WAIT_MS, 2 s). */

#define CLOSE_ROUNDS 15

struct flood {
	pthread_t thread;
	struct hive_bus *bus;
	atomic_bool stop;
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	json_t *b = json_pack("{s:s}", "mac", "02:00:00:00:00:09");

	while (!atomic_load(&f->stop)) {
		hive_bus_send(f->bus, HIVE_TOPIC_JOB_STATUS, b, true);
		usleep(50);
	}
	json_decref(b);
	return NULL;
}

static void close_under_load(enum hive_bus_role sender, enum hive_bus_role receiver,
			     const char *what)
{
	struct hive_bus_opts so = tl_bus_opts(true, "apid/test/1");
	struct hive_bus_opts ro = tl_bus_opts(false, "pollerd/test/9");
	struct flood f = { 0 };
	char url[64];
	long long worst = 0;
	int i;

	ro.recvbuf = receiver == HIVE_BUS_PULL ? 1 : ro.recvbuf;
	make_url(url, sizeof(url));
	f.bus = open_bus(sender, url, &so);
	assert_int_equal(pthread_create(&f.thread, NULL, flood_main, &f), 0);
	for (i = 0; i < CLOSE_ROUNDS; i++) {
		struct hive_bus *r = open_bus(receiver, url, &ro);
		struct hive_envelope env;
		long long t0;
		int got = 0, tries = 0;

		if (receiver == HIVE_BUS_SUBSCRIBE)
			assert_int_equal(hive_bus_subscribe(r, ""), 0);
		while (got < 3 + i % 7 && tries++ < 200)
			if (hive_bus_recv(r, &env, 50) == HIVE_BUS_OK) {
				hive_envelope_clear(&env);
				got++;
			}
		assert_true(got > 0);
		t0 = hive_mono_ms();
		hive_bus_close(r);
		if (hive_mono_ms() - t0 > worst)
			worst = hive_mono_ms() - t0;
	}
	atomic_store(&f.stop, true);
	pthread_join(f.thread, NULL);
	hive_bus_close(f.bus);
	printf("figure: bus close under load: %s, %d closes, slowest %lld ms\n", what,
	       CLOSE_ROUNDS, worst);
	assert_true(worst < 1000);
}

static void test_close_under_load(void **state)
{
	(void)state;
	close_under_load(HIVE_BUS_PUBLISH, HIVE_BUS_SUBSCRIBE, "subscriber flooded by a publisher");
	close_under_load(HIVE_BUS_PUSH, HIVE_BUS_PULL, "puller flooded by a pusher");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_no_gap),
		cmocka_unit_test(test_stalled_subscriber_counts_gap),
		cmocka_unit_test(test_late_subscriber),
		cmocka_unit_test(test_jobs_shared_and_leaving_puller),
		cmocka_unit_test(test_malformed_counted),
		cmocka_unit_test(test_huge_message_drops_connection),
		cmocka_unit_test(test_request_reply),
		cmocka_unit_test(test_peers_and_recv_fd),
		cmocka_unit_test(test_close_under_load),   /* last: a failure poisons nng */
	};

	int child;

	hive_cfg_defaults(&cfg);
	if ((child = tl_pub_child(argc, argv)) >= 0)
		return child;
	hive_log_init("test_bus_fitness", HIVE_LOG_ERROR, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
