/* test_clock — the clocks against the kernel's own, ms_left around its
 * deadline, and condition waits that time out, wake early, or are given a
 * deadline already gone. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/clock.h"

static void test_clocks(void **state)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int64_t a = hive_mono_ms(), a_us = hive_mono_us(), b, b_us;

	(void)state;
	nanosleep(&ts, NULL);
	b_us = hive_mono_us();
	b = hive_mono_ms();
	assert_true(b - a >= 20 && b - a < 1000);
	assert_true(b_us - a_us >= 20000 && b_us - a_us < 1000000);
	/* One clock: the microseconds fall inside the milliseconds around them. */
	assert_true(a_us / 1000 >= a && b_us / 1000 <= b);
	assert_true(llabs(hive_wall_ms() - (int64_t)time(NULL) * 1000) < 2000);
	/* Wall time is since 1970, in ms: later than 2020-01-01. */
	assert_true(hive_wall_ms() > 1577836800000LL);
}

static void test_ms_left(void **state)
{
	static const struct {
		int64_t offset;          /* deadline - now */
		int64_t lo, hi;          /* what ms_left may say */
	} cases[] = {
		{ -86400000, 0, 0 }, { -1000, 0, 0 }, { -1, 0, 0 }, { 0, 0, 0 },
		{ 1, 0, 1 }, { 500, 450, 500 }, { 60000, 59950, 60000 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t left = hive_ms_left(hive_mono_ms() + cases[i].offset);

		if (left < cases[i].lo || left > cases[i].hi)
			fail_msg("offset %lld: ms_left %lld, want %lld..%lld",
				 (long long)cases[i].offset, (long long)left,
				 (long long)cases[i].lo, (long long)cases[i].hi);
	}
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int signalled;
};

static void *signal_later(void *arg)
{
	struct waiter *w = arg;

	usleep(30 * 1000);
	pthread_mutex_lock(&w->mu);
	w->signalled = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void test_cond_wait(void **state)
{
	static const struct {
		const char *what;
		int64_t offset;          /* deadline - now; 0: absolute deadline -5 */
		int signal;              /* another thread signals after 30 ms */
		int rc;
		int64_t min_ms, max_ms;  /* how long the wait took */
	} cases[] = {
		{ "times out", 60, 0, ETIMEDOUT, 59, 1000 },
		{ "deadline passed", -100, 0, ETIMEDOUT, 0, 50 },
		{ "negative deadline", 0, 0, ETIMEDOUT, 0, 50 },
		{ "woken before", 10000, 1, 0, 29, 5000 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct waiter w = { .signalled = 0 };
		pthread_t t;
		int64_t t0, took, deadline;
		int rc = 0;

		assert_int_equal(pthread_mutex_init(&w.mu, NULL), 0);
		assert_int_equal(hive_cond_init_mono(&w.cv), 0);
		if (cases[i].signal)
			assert_int_equal(pthread_create(&t, NULL, signal_later, &w), 0);
		t0 = hive_mono_ms();
		deadline = cases[i].offset ? t0 + cases[i].offset : -5;
		pthread_mutex_lock(&w.mu);
		while (!w.signalled && rc == 0)
			rc = hive_cond_wait_until(&w.cv, &w.mu, deadline);
		pthread_mutex_unlock(&w.mu);
		took = hive_mono_ms() - t0;
		if (cases[i].signal)
			pthread_join(t, NULL);
		if (rc != cases[i].rc || took < cases[i].min_ms || took > cases[i].max_ms)
			fail_msg("%s: rc %d after %lld ms, want %d after %lld..%lld ms", cases[i].what,
				 rc, (long long)took, cases[i].rc, (long long)cases[i].min_ms,
				 (long long)cases[i].max_ms);
		pthread_cond_destroy(&w.cv);
		pthread_mutex_destroy(&w.mu);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_ms_left),
		cmocka_unit_test(test_cond_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
