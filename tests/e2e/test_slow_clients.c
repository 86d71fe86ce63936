/* test_slow_clients — apid's HTTP server against clients that trickle
 * their request heads (issue 13, item 4), through the real process:
 *   1. with the default http.threads and http.request_timeout_ms, 200
 *      connections from 200 loopback addresses (127.88.x.y), each sending
 *      one byte of a request head every 0.5 s (reopened when apid drops
 *      one), and meanwhile GET /api/health answers within 1 s, each time;
 *   2. the same with http.threads 8 (the old default): GET /api/health
 *      gets no answer within 3 s — the clients do hold the threads, so
 *      step 1 measures what it claims.
 * Loopback only. Prints "figure: slow_clients: ..." lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hive/clock.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SLOW          200      /* slow connections kept open */
#define TRICKLE_MS    500      /* one byte per connection this often */
#define ROUNDS        6        /* health requests measured per step */
#define BOUND_MS      1000     /* each must answer within */
#define STALL_MS      3000     /* step 2: how long to wait for an answer */

static const char head[] = "GET /api/health HTTP/1.1\r\nHost: powerhive\r\nX-Slow: "
			   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

struct trickle {
	int port;
	int fd[SLOW];
	size_t sent[SLOW];
	atomic_bool stop;
	atomic_int reopened, open;
	pthread_t thread;
};

/* A connection from 127.88.<i / 250>.<i % 250 + 1> to apid; -1 on failure. */
static int slow_open(int port, int i)
{
	struct sockaddr_in from = { .sin_family = AF_INET }, to = { .sin_family = AF_INET };
	char ip[32];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	snprintf(ip, sizeof(ip), "127.88.%d.%d", i / 250, i % 250 + 1);
	inet_pton(AF_INET, ip, &from.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	to.sin_port = htons((uint16_t)port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Every TRICKLE_MS, one more byte on each connection; a connection apid
 * closed (or that cannot take the byte) is opened again. */
static void *trickle_main(void *arg)
{
	struct trickle *t = arg;

	while (!atomic_load(&t->stop)) {
		int64_t next = hive_mono_ms() + TRICKLE_MS;
		int open = 0;

		for (int i = 0; i < SLOW && !atomic_load(&t->stop); i++) {
			char c = head[t->sent[i] % (sizeof(head) - 1)];

			if (t->fd[i] >= 0 && send(t->fd[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
				t->sent[i]++;
				open++;
				continue;
			}
			if (t->fd[i] >= 0) {
				close(t->fd[i]);
				atomic_fetch_add(&t->reopened, 1);
			}
			t->sent[i] = 0;
			t->fd[i] = slow_open(t->port, i);
			if (t->fd[i] >= 0 && send(t->fd[i], head, 1, MSG_NOSIGNAL) == 1) {
				t->sent[i] = 1;
				open++;
			}
		}
		atomic_store(&t->open, open);
		while (!atomic_load(&t->stop) && hive_mono_ms() < next)
			tl_sleep_ms(20);
	}
	for (int i = 0; i < SLOW; i++)
		if (t->fd[i] >= 0)
			close(t->fd[i]);
	return NULL;
}

static void trickle_start(struct trickle *t, int port)
{
	memset(t, 0, sizeof(*t));
	t->port = port;
	for (int i = 0; i < SLOW; i++)
		t->fd[i] = -1;
	assert_int_equal(pthread_create(&t->thread, NULL, trickle_main, t), 0);
}

static void trickle_stop(struct trickle *t)
{
	atomic_store(&t->stop, true);
	pthread_join(t->thread, NULL);
}

/* GET /api/health on a connection of its own, with the token: the ms until
 * the status line arrived, or -1 when none within timeout_ms. *status gets
 * the HTTP status. */
static long long health_ms(struct ts_suite *s, int timeout_ms, int *status)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	int64_t t0 = hive_mono_ms(), deadline = t0 + timeout_ms;
	char req[512], buf[256];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	*status = 0;
	if (fd < 0)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	to.sin_port = htons((uint16_t)s->http_port);
	n = snprintf(req, sizeof(req), "GET /api/health HTTP/1.1\r\nHost: powerhive\r\n%s\r\n"
		     "Connection: close\r\n\r\n", s->auth);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 ||
	    send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -1;
	}
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - hive_mono_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if ((r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	if (!memchr(buf, '\n', got) || sscanf(buf, "HTTP/1.%*d %d", status) != 1)
		return -1;
	return hive_mono_ms() - t0;
}

static struct ts_suite S;

static void apid_up(int threads)
{
	if (threads)
		assert_int_equal(ts_merge(&S, "{\"http\": {\"threads\": %d}}", threads), 0);
	assert_non_null(ts_start(&S, "apid", NULL, NULL, NULL));
	assert_non_null(ts_token(&S));
}

/* Opens the slow clients and waits until all are open and trickling. */
static void slow_up(struct trickle *t)
{
	int64_t until = hive_mono_ms() + 10000;

	trickle_start(t, S.http_port);
	while (atomic_load(&t->open) < SLOW && hive_mono_ms() < until)
		tl_sleep_ms(50);
	assert_int_equal(atomic_load(&t->open), SLOW);
	/* Two more bytes each: every connection was accepted and is read. */
	tl_sleep_ms(2 * TRICKLE_MS);
}

static void test_defaults_keep_health_answering(void **state)
{
	struct trickle t;
	long long worst = 0, sum = 0;
	int status;

	(void)state;
	apid_up(0);
	slow_up(&t);
	for (int i = 0; i < ROUNDS; i++) {
		long long ms = health_ms(&S, 5000, &status);

		if (ms < 0 || status != 200) {
			trickle_stop(&t);
			fail_msg("GET /api/health under %d slow clients: %s (status %d)", SLOW,
				 ms < 0 ? "no answer within 5 s" : "answered", status);
		}
		worst = ms > worst ? ms : worst;
		sum += ms;
		tl_sleep_ms(1000);   /* past request_timeout_ms: drops and reopens too */
	}
	trickle_stop(&t);
	printf("figure: slow_clients: %d slow clients (a header byte every %d ms, from %d "
	       "addresses), default http.threads/request_timeout_ms: GET /api/health worst %lld ms, "
	       "mean %lld ms over %d requests; slow connections dropped by apid and reopened: %d\n",
	       SLOW, TRICKLE_MS, SLOW, worst, sum / ROUNDS, ROUNDS, atomic_load(&t.reopened));
	assert_true(worst < BOUND_MS);
	assert_true(ts_stop(&S, "apid", SIGTERM, 15000) >= 0);
}

static void test_few_threads_stall(void **state)
{
	struct trickle t;
	long long ms;
	int status;

	(void)state;
	apid_up(8);
	slow_up(&t);
	ms = health_ms(&S, STALL_MS, &status);
	trickle_stop(&t);
	printf("figure: slow_clients: the same with http.threads 8: GET /api/health %s%lld ms\n",
	       ms < 0 ? "no answer within " : "answered in ", ms < 0 ? (long long)STALL_MS : ms);
	assert_true(ms < 0 || ms > BOUND_MS);
	assert_true(ts_stop(&S, "apid", SIGTERM, 15000) >= 0);
}

static int up(void **state)
{
	(void)state;
	return ts_init(&S, "slow");
}

static int down(void **state)
{
	(void)state;
	ts_down(&S, false);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_keep_health_answering),
		cmocka_unit_test(test_few_threads_stall),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, up, down);
}
