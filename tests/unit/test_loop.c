/* test_loop — timer order, repeat and cancel (also from callbacks), fd
 * readiness with pipes, callbacks that change the watch set mid-round. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/loop.h"

/* Runs rounds until *done or the deadline; fails the test on timeout. */
static void run_until(struct hive_loop *loop, const int *done, int timeout_ms)
{
	int64_t end = hive_mono_ms() + timeout_ms;

	while (!*done) {
		assert_true(hive_loop_run_once(loop, 20) >= 0);
		if (hive_mono_ms() > end)
			fail_msg("loop did not finish within %d ms", timeout_ms);
	}
}

/* ---------------------------------------------------------------- timers */

struct order {
	int seen[64];
	int n;
	int want;
	int done;
};

struct order_arg {
	struct order *o;
	int idx;
};

static int64_t record(struct hive_loop *loop, void *arg)
{
	struct order_arg *a = arg;

	(void)loop;
	a->o->seen[a->o->n++] = a->idx;
	if (a->o->n == a->o->want)
		a->o->done = 1;
	return -1;
}

static void test_timer_order(void **state)
{
	static const struct {
		int64_t delays[8];
		int n;
		int want[8];
	} cases[] = {
		{ { 30, 10, 20, 0, 10 }, 5, { 3, 1, 4, 2, 0 } },
		{ { 5, 5, 5, 5 }, 4, { 0, 1, 2, 3 } },         /* ties: order armed */
		{ { 40, 30, 20, 10, 0 }, 5, { 4, 3, 2, 1, 0 } },
		{ { -5, 0 }, 2, { 0, 1 } },                     /* negative = now */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct hive_loop *loop = hive_loop_new();
		struct order o = { .want = cases[c].n };
		struct order_arg args[8];
		int64_t t0 = hive_mono_ms();

		assert_non_null(loop);
		for (int i = 0; i < cases[c].n; i++) {
			args[i] = (struct order_arg){ &o, i };
			assert_true(hive_loop_timer(loop, cases[c].delays[i], record, &args[i]) > 0);
		}
		run_until(loop, &o.done, 2000);
		for (int i = 0; i < cases[c].n; i++)
			assert_int_equal(o.seen[i], cases[c].want[i]);
		/* Not early: the longest delay has passed. */
		int64_t longest = 0;
		for (int i = 0; i < cases[c].n; i++)
			if (cases[c].delays[i] > longest)
				longest = cases[c].delays[i];
		assert_true(hive_mono_ms() - t0 >= longest);
		hive_loop_free(loop);
	}
}

struct repeat {
	int runs;
	int until;
	int done;
};

static int64_t repeat_cb(struct hive_loop *loop, void *arg)
{
	struct repeat *r = arg;

	(void)loop;
	if (++r->runs == r->until) {
		r->done = 1;
		return -1;
	}
	return 5;
}

static void test_timer_repeat(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	struct repeat r = { .until = 4 };
	int64_t t0 = hive_mono_ms();

	(void)state;
	assert_true(hive_loop_timer(loop, 5, repeat_cb, &r) > 0);
	run_until(loop, &r.done, 2000);
	assert_int_equal(r.runs, 4);
	assert_true(hive_mono_ms() - t0 >= 20);
	/* Removed after -1: nothing left to run. */
	assert_int_equal(hive_loop_run_once(loop, 30), 0);
	assert_int_equal(r.runs, 4);
	hive_loop_free(loop);
}

static int64_t zero_cb(struct hive_loop *loop, void *arg)
{
	(void)loop;
	(*(int *)arg)++;
	return 0;
}

/* A timer that always asks to run again at once runs once per round. */
static void test_timer_zero_no_starvation(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	int runs = 0;

	(void)state;
	assert_true(hive_loop_timer(loop, 0, zero_cb, &runs) > 0);
	assert_int_equal(hive_loop_run_once(loop, 0), 1);
	assert_int_equal(runs, 1);
	assert_int_equal(hive_loop_run_once(loop, 0), 1);
	assert_int_equal(runs, 2);
	hive_loop_free(loop);
}

struct cancel_ctx {
	int64_t self, other;
	int runs_self, runs_other;
	int mode;  /* 0: cancel self, 1: cancel other */
};

static int64_t cancel_cb(struct hive_loop *loop, void *arg)
{
	struct cancel_ctx *c = arg;

	c->runs_self++;
	if (c->mode == 0)
		hive_loop_cancel(loop, c->self);
	else
		hive_loop_cancel(loop, c->other);
	return 1;  /* would repeat, unless cancelled */
}

static int64_t other_cb(struct hive_loop *loop, void *arg)
{
	(void)loop;
	((struct cancel_ctx *)arg)->runs_other++;
	return -1;
}

static void test_timer_cancel(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	struct cancel_ctx c = { 0 };
	struct order o = { .want = 1 };
	struct order_arg a = { &o, 7 };
	int64_t id, id2;

	(void)state;
	/* Cancelled before it is due: never runs. */
	id = hive_loop_timer(loop, 10, record, &a);
	assert_true(id > 0);
	hive_loop_cancel(loop, id);
	assert_int_equal(hive_loop_run_once(loop, 40), 0);
	assert_int_equal(o.n, 0);

	/* A stale id does not cancel the timer that reused its slot. */
	id2 = hive_loop_timer(loop, 0, record, &a);
	assert_true(id2 > 0 && id2 != id);
	hive_loop_cancel(loop, id);
	hive_loop_cancel(loop, 0);
	hive_loop_cancel(loop, -1);
	hive_loop_cancel(loop, id2 + 12345);
	run_until(loop, &o.done, 1000);
	assert_int_equal(o.n, 1);
	hive_loop_cancel(loop, id2);  /* already ran: harmless */

	/* Cancelling itself inside its callback wins over its return value. */
	c.mode = 0;
	c.self = hive_loop_timer(loop, 0, cancel_cb, &c);
	for (int i = 0; i < 5; i++)
		hive_loop_run_once(loop, 5);
	assert_int_equal(c.runs_self, 1);

	/* Cancelling another timer due in the same round: it does not run. */
	memset(&c, 0, sizeof(c));
	c.mode = 1;
	c.self = hive_loop_timer(loop, 0, cancel_cb, &c);
	c.other = hive_loop_timer(loop, 0, other_cb, &c);
	assert_int_equal(hive_loop_run_once(loop, 0), 1);
	assert_int_equal(c.runs_other, 0);
	hive_loop_cancel(loop, c.self);
	for (int i = 0; i < 3; i++)
		hive_loop_run_once(loop, 5);
	assert_int_equal(c.runs_self, 1);
	assert_int_equal(c.runs_other, 0);
	hive_loop_free(loop);
}

static int64_t nothing_cb(struct hive_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	return -1;
}

/* Many timers in random order come out sorted by due time, and cancelling a
 * random third of them removes exactly those (heap integrity). */
struct heap_ctx {
	int64_t last_lo;
	int ran;
	int bad;
};

/* The loop reads the clock itself: its due time lies in [lo, hi], the
 * clock read before and after arming plus the delay (a thread preempted
 * in between would otherwise look like a timer out of order). */
struct heap_arg {
	struct heap_ctx *h;
	int64_t lo, hi;
	int cancelled;
};

static int64_t heap_cb(struct hive_loop *loop, void *arg)
{
	struct heap_arg *a = arg;

	(void)loop;
	/* Certainly out of order: due before the previous timer's earliest. */
	if (a->cancelled || a->hi < a->h->last_lo)
		a->h->bad++;
	a->h->last_lo = a->lo;
	a->h->ran++;
	return -1;
}

static void test_timer_heap(void **state)
{
	enum { N = 20000 };
	struct hive_loop *loop = hive_loop_new();
	struct heap_ctx h = { 0 };
	struct heap_arg *args = calloc(N, sizeof(*args));
	int64_t *ids = calloc(N, sizeof(*ids));
	int64_t t0 = hive_mono_ms(), end;
	int cancelled = 0;

	(void)state;
	srand(42);
	for (int i = 0; i < N; i++) {
		int64_t d = rand() % 60;

		args[i] = (struct heap_arg){ &h, hive_mono_ms() + d, 0, 0 };
		ids[i] = hive_loop_timer(loop, d, heap_cb, &args[i]);
		args[i].hi = hive_mono_ms() + d;
		assert_true(ids[i] > 0);
	}
	for (int i = 0; i < N; i++) {
		if (rand() % 3 == 0) {
			args[i].cancelled = 1;
			hive_loop_cancel(loop, ids[i]);
			cancelled++;
		}
	}
	end = hive_mono_ms() + 3000;
	while (h.ran < N - cancelled && hive_mono_ms() < end)
		hive_loop_run_once(loop, 10);
	assert_int_equal(h.ran, N - cancelled);
	assert_int_equal(h.bad, 0);
	printf("figure: loop %d timers armed, %d cancelled, ran in due order in %lld ms\n", N,
	       cancelled, (long long)(hive_mono_ms() - t0));
	fflush(stdout);
	free(args);
	free(ids);
	hive_loop_free(loop);
}

static void test_timer_ids(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	int64_t ids[100];

	(void)state;
	for (int i = 0; i < 100; i++) {
		ids[i] = hive_loop_timer(loop, 1000, nothing_cb, NULL);
		assert_true(ids[i] > 0);
		for (int j = 0; j < i; j++)
			assert_true(ids[i] != ids[j]);
	}
	assert_int_equal(hive_loop_timer(loop, 10, NULL, NULL), -1);
	hive_loop_free(loop);  /* frees pending timers */
}

/* ---------------------------------------------------------------- fds */

struct fdrec {
	int calls;
	int fd;
	int events;
	void *arg;
};

static void fd_cb(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct fdrec *r = arg;

	(void)loop;
	r->calls++;
	r->fd = fd;
	r->events = events;
}

static void test_fd_ready(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	struct fdrec r = { 0 }, w = { 0 };
	int p[2];
	char c;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(hive_loop_watch(loop, p[0], HIVE_LOOP_READ, fd_cb, &r), 0);
	/* Nothing to read: the wait times out. */
	int64_t t0 = hive_mono_ms();
	assert_int_equal(hive_loop_run_once(loop, 50), 0);
	assert_true(hive_mono_ms() - t0 >= 45);
	assert_int_equal(r.calls, 0);

	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(hive_loop_run_once(loop, 1000), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.fd, p[0]);
	assert_int_equal(r.events, HIVE_LOOP_READ);
	assert_int_equal(read(p[0], &c, 1), 1);

	/* A pipe's write end is writable at once. */
	assert_int_equal(hive_loop_watch(loop, p[1], HIVE_LOOP_WRITE, fd_cb, &w), 0);
	assert_int_equal(hive_loop_run_once(loop, 1000), 1);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.events, HIVE_LOOP_WRITE);
	hive_loop_unwatch(loop, p[1]);

	/* The other end closed: the reader hears of it. */
	close(p[1]);
	assert_int_equal(hive_loop_run_once(loop, 1000), 1);
	assert_int_equal(r.calls, 2);
	assert_true(r.events & HIVE_LOOP_READ);

	/* Unwatched: no more callbacks. */
	hive_loop_unwatch(loop, p[0]);
	hive_loop_unwatch(loop, p[0]);
	assert_int_equal(hive_loop_run_once(loop, 20), 0);
	assert_int_equal(r.calls, 2);
	close(p[0]);

	assert_int_equal(hive_loop_watch(loop, -1, HIVE_LOOP_READ, fd_cb, &r), -1);
	assert_int_equal(hive_loop_watch(loop, 0, 4, fd_cb, &r), -1);
	assert_int_equal(hive_loop_watch(loop, 0, HIVE_LOOP_READ, NULL, &r), -1);
	hive_loop_free(loop);
}

static void test_fd_replace(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	struct fdrec a = { 0 }, b = { 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(hive_loop_watch(loop, p[0], HIVE_LOOP_READ, fd_cb, &a), 0);
	/* Watching again replaces callback and argument. */
	assert_int_equal(hive_loop_watch(loop, p[0], HIVE_LOOP_READ, fd_cb, &b), 0);
	assert_int_equal(hive_loop_run_once(loop, 1000), 1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	/* ... and the events: waiting for WRITE only on a readable read end. */
	assert_int_equal(hive_loop_watch(loop, p[0], HIVE_LOOP_WRITE, fd_cb, &b), 0);
	assert_int_equal(hive_loop_run_once(loop, 30), 0);
	assert_int_equal(b.calls, 1);
	close(p[0]);
	close(p[1]);
	hive_loop_free(loop);
}

/* Several ready pipes; the first callback that runs unwatches every other
 * one (and re-watches one of them with a new callback). None of those may be
 * called in this round: their readiness belonged to the old watch. */
enum { NPIPES = 8 };

struct mass {
	int fds[NPIPES][2];
	int calls[NPIPES];
	int first;
	int rewatched_calls;
	struct hive_loop *loop;
};

static void rewatched_cb(struct hive_loop *loop, int fd, int events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	((struct mass *)arg)->rewatched_calls++;
}

static void mass_cb(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct mass *m = arg;
	int me = -1;

	(void)events;
	for (int i = 0; i < NPIPES; i++)
		if (m->fds[i][0] == fd)
			me = i;
	assert_true(me >= 0);
	m->calls[me]++;
	if (m->first >= 0)
		return;
	m->first = me;
	for (int i = 0; i < NPIPES; i++) {
		if (i == me)
			continue;
		hive_loop_unwatch(loop, m->fds[i][0]);
	}
	int again = (me + 1) % NPIPES;
	assert_int_equal(hive_loop_watch(loop, m->fds[again][0], HIVE_LOOP_READ, rewatched_cb, m), 0);
	/* Its own fd too: unwatching what is running is allowed. */
	hive_loop_unwatch(loop, fd);
}

static void test_fd_unwatch_others(void **state)
{
	struct mass m = { .first = -1 };
	struct hive_loop *loop = hive_loop_new();
	int ran, total = 0;

	(void)state;
	m.loop = loop;
	for (int i = 0; i < NPIPES; i++) {
		assert_int_equal(pipe(m.fds[i]), 0);
		assert_int_equal(write(m.fds[i][1], "x", 1), 1);
		assert_int_equal(hive_loop_watch(loop, m.fds[i][0], HIVE_LOOP_READ, mass_cb, &m), 0);
	}
	ran = hive_loop_run_once(loop, 1000);
	assert_int_equal(ran, 1);
	for (int i = 0; i < NPIPES; i++)
		total += m.calls[i];
	assert_int_equal(total, 1);
	assert_int_equal(m.rewatched_calls, 0);
	/* Next round the re-watched fd (still readable) gets its new callback. */
	assert_int_equal(hive_loop_run_once(loop, 1000), 1);
	assert_int_equal(m.rewatched_calls, 1);
	total = 0;
	for (int i = 0; i < NPIPES; i++)
		total += m.calls[i];
	assert_int_equal(total, 1);
	for (int i = 0; i < NPIPES; i++) {
		close(m.fds[i][0]);
		close(m.fds[i][1]);
	}
	hive_loop_free(loop);
}

/* fd numbers are reused: unwatch + close + a new pipe on the same number in
 * one callback must not deliver the old fd's readiness to the new watch. */
struct reuse {
	int a[2], b[2];
	int a_calls, b_calls, new_calls;
};

static void reuse_new_cb(struct hive_loop *loop, int fd, int events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	((struct reuse *)arg)->new_calls++;
}

static void reuse_cb(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct reuse *r = arg;
	int p[2];

	(void)events;
	if (fd == r->a[0]) {
		r->a_calls++;
		if (r->a_calls > 1)
			return;
		/* Close b's read end and open a new pipe that takes its number. */
		int old = r->b[0];
		hive_loop_unwatch(loop, old);
		close(old);
		assert_int_equal(pipe(p), 0);
		if (p[0] != old) {
			assert_int_equal(dup2(p[0], old), old);
			close(p[0]);
			p[0] = old;
		}
		r->b[0] = p[0];
		close(r->b[1]);
		r->b[1] = p[1];
		assert_int_equal(hive_loop_watch(loop, p[0], HIVE_LOOP_READ, reuse_new_cb, r), 0);
	} else {
		r->b_calls++;
	}
}

static void test_fd_reuse_in_round(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	struct reuse r = { 0 };

	(void)state;
	assert_int_equal(pipe(r.a), 0);
	assert_int_equal(pipe(r.b), 0);
	assert_int_equal(write(r.a[1], "x", 1), 1);
	assert_int_equal(write(r.b[1], "x", 1), 1);
	/* Both are ready in the same round; a is watched first, so its callback
	 * runs first and replaces b before b's turn comes. */
	assert_int_equal(hive_loop_watch(loop, r.a[0], HIVE_LOOP_READ, reuse_cb, &r), 0);
	assert_int_equal(hive_loop_watch(loop, r.b[0], HIVE_LOOP_READ, reuse_cb, &r), 0);
	assert_int_equal(hive_loop_run_once(loop, 1000), 1);
	assert_int_equal(r.a_calls, 1);
	assert_int_equal(r.b_calls, 0);
	assert_int_equal(r.new_calls, 0);  /* the new pipe is empty */
	hive_loop_unwatch(loop, r.a[0]);
	assert_int_equal(hive_loop_run_once(loop, 30), 0);
	assert_int_equal(r.new_calls, 0);
	close(r.a[0]);
	close(r.a[1]);
	close(r.b[0]);
	close(r.b[1]);
	hive_loop_free(loop);
}

/* Many fds, each readable in turn: every one is delivered to its own
 * callback exactly once (the index map stays right through swap-removes). */
static void count_cb(struct hive_loop *loop, int fd, int events, void *arg)
{
	char c;

	(void)events;
	((int *)arg)[0]++;
	assert_int_equal(read(fd, &c, 1), 1);
	hive_loop_unwatch(loop, fd);
}

static void test_fd_many(void **state)
{
	enum { N = 400 };
	struct hive_loop *loop = hive_loop_new();
	int (*p)[2] = calloc(N, sizeof(*p));
	int *calls = calloc(N, sizeof(*calls));
	int total = 0;
	int64_t t0;

	(void)state;
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe(p[i]), 0);
		assert_int_equal(hive_loop_watch(loop, p[i][0], HIVE_LOOP_READ, count_cb, &calls[i]), 0);
	}
	/* Unwatch every third before anything happens. */
	for (int i = 0; i < N; i += 3)
		hive_loop_unwatch(loop, p[i][0]);
	for (int i = 0; i < N; i++)
		assert_int_equal(write(p[i][1], "x", 1), 1);
	t0 = hive_mono_ms();
	while (hive_mono_ms() - t0 < 2000) {
		int r = hive_loop_run_once(loop, 20);

		assert_true(r >= 0);
		if (r == 0)
			break;
		total += r;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(calls[i], i % 3 == 0 ? 0 : 1);
	assert_int_equal(total, N - (N + 2) / 3);
	for (int i = 0; i < N; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	free(p);
	free(calls);
	hive_loop_free(loop);
}

/* ---------------------------------------------------------------- running */

static volatile sig_atomic_t quit_flag;

static int64_t set_quit(struct hive_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	quit_flag = 1;
	return -1;
}

static int64_t do_stop(struct hive_loop *loop, void *arg)
{
	(void)arg;
	hive_loop_stop(loop);
	return -1;
}

static void test_run_stop(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	int64_t t0;

	(void)state;
	quit_flag = 0;
	t0 = hive_mono_ms();
	hive_loop_timer(loop, 30, set_quit, NULL);
	hive_loop_run(loop, &quit_flag);
	assert_int_equal(quit_flag, 1);
	assert_true(hive_mono_ms() - t0 >= 30);
	assert_true(hive_mono_ms() - t0 < 1000);

	t0 = hive_mono_ms();
	hive_loop_timer(loop, 20, do_stop, NULL);
	hive_loop_run(loop, NULL);
	assert_true(hive_mono_ms() - t0 >= 20);
	assert_true(hive_mono_ms() - t0 < 1000);

	/* quit set before: returns at once. */
	quit_flag = 1;
	t0 = hive_mono_ms();
	hive_loop_run(loop, &quit_flag);
	assert_true(hive_mono_ms() - t0 < 100);
	hive_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_repeat),
		cmocka_unit_test(test_timer_zero_no_starvation),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_heap),
		cmocka_unit_test(test_timer_ids),
		cmocka_unit_test(test_fd_ready),
		cmocka_unit_test(test_fd_replace),
		cmocka_unit_test(test_fd_unwatch_others),
		cmocka_unit_test(test_fd_reuse_in_round),
		cmocka_unit_test(test_fd_many),
		cmocka_unit_test(test_run_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
