/* bench_bus — events/s through the real bus at PowerHive's settings
 * (hive_cfg_defaults: sendbuf = recvbuf = 8192, 1 MiB messages), next to
 * the cost of moving the same bytes, measured in the same run.
 *
 *   1. Burst: BENCH_PUBLISHERS (4) publisher processes (this binary
 *      re-executed with --publisher: fork after nng started its threads is
 *      not safe, exec is) dial one listening SUBSCRIBE socket and, once all
 *      are connected, send BENCH_EVENTS (32,000: what the subscriber's
 *      backlog holds even if it decoded nothing meanwhile) hive.status.result
 *      events (~1 KB) between them through hive_bus_send, as pollerd does.
 *      In the subscriber one thread only receives and enqueues (apid's
 *      receive loop); the main thread pops and tracks sequence numbers.
 *      BENCH_ROUNDS (3) rounds, best kept; gaps must be 0 in every round.
 *   2. Baseline, taking turns with the bursts: the same number of the same
 *      envelope written by one thread into a loopback TCP stream (8-byte
 *      length + bytes, one writev each, as nng frames them) and read by
 *      another in the same process — what moving the bytes costs without
 *      the bus. Best of the rounds.
 *   3. Overload: BENCH_OVERLOAD_EVENTS (100,000; 0 skips it), more than the
 *      backlog holds, faster than the subscriber decodes: events are lost,
 *      and received + counted gaps must equal sent exactly.
 *   4. Peak RSS of the subscriber (this process, measured before the
 *      overload round) and of the largest publisher.
 *
 * Prints "figure: bench bus events/s=... baseline_bytes_moved/s=...
 * ratio=..." (the baseline counted in messages/s: the same messages, moved
 * as bare bytes). Exits non-zero on any gap, a lost or rejected event in a
 * burst, an uncounted loss in the overload, or a figure missing its target
 * (TARGET_* below). Loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>

#include "hive/bus.h"
#include "hive/cfg.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "hive/msg.h"
#include "../lib/busfix.h"
#include "../lib/testlib.h"

/* Targets: below them `make bench` fails. The bus carries ~700 events/s
 * for 10,000 miners polled every 15 s; 10,000/s leaves room for bursts. */
#define TARGET_EVENTS_PER_S  10000.0
#define TARGET_SUB_RSS_KIB   (256 * 1024)  /* backlog ≤ 64 MiB + nng's queue */

static struct hive_cfg cfg;

/* ------------------------------------------------------------ bus */

static double cpu_s(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct round {
	double events_per_s;
	double sub_cpu_us, pub_cpu_us;   /* CPU per event sent: subscriber, publishers */
	long long ms;
	int sent, received;
	uint64_t gaps, duplicates, rejected;
	size_t max_queue;
	bool ok;                 /* every publisher started, sent and exited */
};

static void bus_round(int npub, int total, struct round *out)
{
	struct hive_bus_opts o = tl_bus_opts(true, "apid/bench/1");
	struct hive_seq_tracker *seq = hive_seq_new();
	struct tl_pub *ch = calloc((size_t)npub, sizeof(*ch));
	struct hive_bus *sub = NULL;
	struct hive_bus_stats st;
	struct tl_receiver r;
	char url[64], src[64], err[256];
	long long t0, t1;
	int per = total / npub, started = 0;
	double sub0 = cpu_s(RUSAGE_SELF), pub0 = cpu_s(RUSAGE_CHILDREN);
	bool ok = true;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tl_free_port());
	if (!seq || !ch || !(sub = hive_bus_open(HIVE_BUS_SUBSCRIBE, url, &o, err, sizeof(err))) ||
	    hive_bus_subscribe(sub, "hive.") < 0) {
		fprintf(stderr, "bench_bus: subscriber %s: %s\n", url, sub ? "subscribe" : err);
		goto done;
	}
	if (tl_receiver_start(&r, sub) < 0)
		goto done;

	for (int i = 0; i < npub; i++) {
		snprintf(src, sizeof(src), "pollerd/bench/%d", i + 1);
		if (tl_pub_spawn(&ch[i], url, src, per) < 0) {
			ok = false;
			break;
		}
		started++;
	}
	for (int i = 0; ok && i < started; i++)
		ok = tl_pub_ready(&ch[i], 10000);
	for (int w = 0; ok && hive_bus_peers(sub) < npub && w < 5000; w += 5)
		tl_sleep_ms(5);
	if (!ok || hive_bus_peers(sub) < npub) {
		fprintf(stderr, "bench_bus: publishers did not connect\n");
		ok = false;
		goto stop;
	}

	t0 = t1 = hive_mono_ms();
	for (int i = 0; i < npub; i++)
		if (tl_pub_go(&ch[i]) < 0)
			ok = false;
	while (out->received < per * npub) {
		struct hive_envelope env;

		/* the last event of a burst always arrives (the backlog drops
		 * the oldest), so a long silence means a publisher failed */
		if (!tl_receiver_pop(&r, &env, 5000))
			break;
		hive_seq_track(seq, env.src, env.boot, env.topic, env.seq);
		out->received++;
		hive_envelope_clear(&env);
		t1 = hive_mono_ms();
		if ((uint64_t)out->received + hive_seq_lost(seq) >= (uint64_t)per * npub)
			break;
	}
	for (int i = 0; i < npub; i++)
		if (!tl_pub_sent(&ch[i], 10000))
			ok = false;
	out->ms = t1 - t0;
	out->sent = per * npub;
	out->events_per_s = out->ms > 0 ? out->received * 1000.0 / (double)out->ms : 0;
	out->gaps = hive_seq_lost(seq);
	out->duplicates = hive_seq_duplicates(seq);
stop:
	for (int i = 0; i < started; i++)
		if (!tl_pub_finish(&ch[i], 5000))
			ok = false;
	tl_receiver_stop(&r);
	out->max_queue = r.max_depth;
	out->sub_cpu_us = (cpu_s(RUSAGE_SELF) - sub0) * 1e6 / (double)(total > 0 ? total : 1);
	out->pub_cpu_us = (cpu_s(RUSAGE_CHILDREN) - pub0) * 1e6 / (double)(total > 0 ? total : 1);
	hive_bus_get_stats(sub, &st);
	out->rejected = st.rejected + atomic_load(&r.rejected);
	out->ok = ok;
done:
	if (sub)
		hive_bus_close(sub);
	hive_seq_free(seq);
	free(ch);
}

/* ------------------------------------------------------------ baseline */

struct stream {
	int fd;
	const char *msg;         /* one envelope, sent `count` times */
	size_t len;
	int count;
	int ok;
};

static void *stream_writer(void *arg)
{
	struct stream *s = arg;
	unsigned char hdr[8];
	uint64_t n = s->len;

	/* nng's TCP framing: an 8-byte big-endian length, then the bytes */
	for (int i = 0; i < 8; i++)
		hdr[i] = (unsigned char)(n >> (56 - 8 * i));
	for (int i = 0; i < s->count; i++) {
		struct iovec iov[2] = { { hdr, 8 }, { (void *)s->msg, s->len } };
		size_t want = 8 + s->len, done = 0;

		while (done < want) {
			ssize_t w = writev(s->fd, iov, 2);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return NULL;
			done += (size_t)w;
			/* a partial write: move the iovecs on */
			for (int k = 0; k < 2; k++) {
				size_t take = (size_t)w < iov[k].iov_len ? (size_t)w : iov[k].iov_len;

				iov[k].iov_base = (char *)iov[k].iov_base + take;
				iov[k].iov_len -= take;
				w -= (ssize_t)take;
			}
		}
	}
	s->ok = 1;
	return NULL;
}

/* Messages/s moving `count` envelopes of `len` bytes through loopback TCP
 * in-process; -1 on a socket error. */
static double baseline_round(const char *msg, size_t len, int count)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int lfd = -1, wfd = -1, rfd = -1, one = 1, got = 0;
	static unsigned char buf[256 * 1024];
	size_t have = 0, frame = 8 + len;
	struct stream s = { 0 };
	pthread_t th;
	long long t0, t1;
	double rate = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)tl_free_port());
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
	    (wfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(wfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		goto done;
	/* as nng sets it */
	setsockopt(wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s = (struct stream){ .fd = wfd, .msg = msg, .len = len, .count = count };
	t0 = hive_mono_ms();
	if (pthread_create(&th, NULL, stream_writer, &s) != 0)
		goto done;
	while (got < count) {
		ssize_t r = read(rfd, buf + have, sizeof(buf) - have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		/* count whole frames, keep the partial one at the front */
		got += (int)(have / frame);
		memmove(buf, buf + have / frame * frame, have % frame);
		have %= frame;
	}
	t1 = hive_mono_ms();
	pthread_join(th, NULL);
	if (got == count && s.ok)
		rate = count * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1);
done:
	if (rfd >= 0)
		close(rfd);
	if (wfd >= 0)
		close(wfd);
	if (lfd >= 0)
		close(lfd);
	return rate;
}

/* ------------------------------------------------------------ main */

static void print_round(const char *what, int i, const struct round *r)
{
	printf("bench_bus: %s %d: sent=%d received=%d gaps=%llu duplicates=%llu rejected=%llu "
	       "in %lld ms (%.0f events/s), CPU per event: subscriber %.1f us, publishers "
	       "%.1f us; max queue behind the receive loop %zu\n", what, i, r->sent, r->received,
	       (unsigned long long)r->gaps, (unsigned long long)r->duplicates,
	       (unsigned long long)r->rejected, r->ms, r->events_per_s, r->sub_cpu_us,
	       r->pub_cpu_us, r->max_queue);
}

int main(int argc, char **argv)
{
	int npub, total, overload, rounds, failures = 0, child;
	struct round best = { 0 }, over = { 0 };
	double base = 0, ratio, sub_cpu = 0, pub_cpu = 0;
	long sub_rss, pub_rss;
	struct rusage ru;
	char *msg = NULL;
	size_t len = 0;
	json_t *body;

	hive_cfg_defaults(&cfg);
	if ((child = tl_pub_child(argc, argv)) >= 0)
		return child;
	hive_log_init("bench_bus", HIVE_LOG_ERROR, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	npub = tl_env_int("BENCH_PUBLISHERS", 4);
	/* A burst the subscriber's backlog (4 x recvbuf) holds even if it
	 * decoded nothing meanwhile: it must arrive whole. */
	total = tl_env_int("BENCH_EVENTS", 4 * cfg.bus.recvbuf * 125 / 128) / npub * npub;
	overload = tl_env_int("BENCH_OVERLOAD_EVENTS", 100000) / npub * npub;
	rounds = tl_env_int("BENCH_ROUNDS", 3);

	body = tl_status_body("02:00:00:00:00:01");
	if (hive_envelope_encode(HIVE_TOPIC_STATUS_RESULT, "pollerd/bench/1", hive_wall_ms(), 1,
				 hive_wall_ms(), body, &msg, &len) < 0) {
		fprintf(stderr, "bench_bus: cannot encode an envelope\n");
		return 1;
	}
	json_decref(body);
	printf("bench_bus: %d publishers -> 1 subscriber, bursts of %d hive.status.result events "
	       "of %zu bytes, sendbuf=%d recvbuf=%d, %d rounds\n", npub, total, len,
	       cfg.bus.sendbuf, cfg.bus.recvbuf, rounds);

	/* bus and baseline take turns, so that load from elsewhere on the
	 * machine hits both alike; the best of the rounds is kept */
	for (int i = 0; i < rounds; i++) {
		struct round r;
		double b;

		bus_round(npub, total, &r);
		print_round("round", i + 1, &r);
		if (!r.ok || r.gaps || r.duplicates || r.rejected || r.received != r.sent) {
			fprintf(stderr, "bench_bus: round %d: %s\n", i + 1,
				!r.ok ? "a publisher failed" : "events lost, doubled or refused");
			failures++;
		}
		if (r.events_per_s > best.events_per_s)
			best = r;
		if (sub_cpu == 0 || r.sub_cpu_us < sub_cpu)
			sub_cpu = r.sub_cpu_us;
		if (pub_cpu == 0 || r.pub_cpu_us < pub_cpu)
			pub_cpu = r.pub_cpu_us;
		b = baseline_round(msg, len, total);
		printf("bench_bus: baseline round %d: %d envelopes through loopback TCP "
		       "in-process: %.0f/s (%.0f MB/s)\n", i + 1, total, b,
		       b * (double)(len + 8) / 1e6);
		if (b > base)
			base = b;
	}
	sub_rss = tl_proc_kib(getpid(), "VmHWM");
	getrusage(RUSAGE_CHILDREN, &ru);
	pub_rss = ru.ru_maxrss;

	/* More than the backlog holds, faster than the subscriber decodes:
	 * losses are expected, and every one must be counted. */
	if (overload > 0) {
		bus_round(npub, overload, &over);
		print_round("overload", 1, &over);
		if (!over.ok || over.duplicates || over.rejected ||
		    (uint64_t)over.received + over.gaps != (uint64_t)over.sent) {
			fprintf(stderr, "bench_bus: overload: received + counted gaps != sent\n");
			failures++;
		}
	}

	free(msg);
	if (base <= 0) {
		fprintf(stderr, "bench_bus: the baseline failed\n");
		return 1;
	}
	ratio = best.events_per_s / base;
	printf("figure: bench bus events/s=%.0f baseline_bytes_moved/s=%.0f ratio=%.3f "
	       "(publishers=%d burst=%d bytes=%zu gaps=%llu; baseline in messages/s, %.0f MB/s)\n",
	       best.events_per_s, base, ratio, npub, total, len,
	       (unsigned long long)best.gaps, base * (double)(len + 8) / 1e6);
	printf("figure: bench bus cpu subscriber=%.1fus/event publishers=%.1fus/event "
	       "(least of the rounds)\n", sub_cpu, pub_cpu);
	if (overload > 0)
		printf("figure: bench bus overload sent=%d received=%d gaps=%llu (counted exactly) "
		       "received/s=%.0f\n", over.sent, over.received,
		       (unsigned long long)over.gaps, over.events_per_s);
	printf("figure: bench bus rss subscriber_peak_kib=%ld publisher_peak_kib=%ld "
	       "(target subscriber < %d KiB)\n", sub_rss, pub_rss, TARGET_SUB_RSS_KIB);
	if (best.events_per_s < TARGET_EVENTS_PER_S) {
		fprintf(stderr, "bench_bus: %.0f events/s is below the target of %.0f/s\n",
			best.events_per_s, TARGET_EVENTS_PER_S);
		failures++;
	}
	if (sub_rss > TARGET_SUB_RSS_KIB) {
		fprintf(stderr, "bench_bus: subscriber peak RSS %ld KiB is over %d KiB\n", sub_rss,
			TARGET_SUB_RSS_KIB);
		failures++;
	}
	if (failures)
		fprintf(stderr, "bench_bus: FAILED (%d problems)\n", failures);
	return failures ? 1 : 0;
}
