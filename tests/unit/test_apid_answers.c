/* test_apid_answers — big GET answers shared between clients (answers.h):
 * a kept answer is served while fresh, one caller rebuilds it and the others
 * wait for that build rather than building it too, a change made through
 * the API makes every kept answer (and one being built) unusable at once,
 * and a build given up lets the waiters go on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../apid/answers.h"

static void put_text(struct apid_answers *c, const char *key, const char *text)
{
	apid_answers_put(c, key, text, strlen(text));
}

/* The text of the kept answer for key ("" when the caller must build). */
static bool served(struct apid_answers *c, const char *key, const char *want)
{
	bool build;
	const struct apid_answer *a = apid_answers_get(c, key, &build);
	bool ok = a && !build && a->len == strlen(want) + 1 &&
		  memcmp(a->body, want, strlen(want)) == 0 && a->body[a->len - 1] == '\n';

	apid_answer_release(a);
	return ok;
}

static void test_kept_while_fresh(void **state)
{
	struct apid_answers *c = apid_answers_new(NULL, NULL);
	bool build;

	(void)state;
	assert_null(apid_answers_get(c, "miners?limit=10000", &build));
	assert_true(build);
	put_text(c, "miners?limit=10000", "{\"a\":1}");
	assert_true(served(c, "miners?limit=10000", "{\"a\":1}"));
	/* Another query is its own answer. */
	assert_null(apid_answers_get(c, "miners?limit=5000", &build));
	assert_true(build);
	apid_answers_abandon(c, "miners?limit=5000");
	assert_null(apid_answers_get(c, "miners?limit=5000", &build));
	assert_true(build);
	apid_answers_abandon(c, "miners?limit=5000");
	/* Older than fresh: the next caller rebuilds. */
	usleep((ANSWERS_FRESH_MS + 50) * 1000);
	assert_null(apid_answers_get(c, "miners?limit=10000", &build));
	assert_true(build);
	/* ...and meanwhile the others get the previous text. */
	assert_true(served(c, "miners?limit=10000", "{\"a\":1}"));
	put_text(c, "miners?limit=10000", "{\"a\":2}");
	assert_true(served(c, "miners?limit=10000", "{\"a\":2}"));
	apid_answers_free(c);
}

static void test_change_invalidates(void **state)
{
	struct apid_answers *c = apid_answers_new(NULL, NULL);
	bool build;

	(void)state;
	assert_null(apid_answers_get(c, "k", &build));
	put_text(c, "k", "{\"v\":1}");
	assert_true(served(c, "k", "{\"v\":1}"));
	apid_answers_invalidate(c);
	assert_null(apid_answers_get(c, "k", &build));
	assert_true(build);
	/* A change while this build ran: its answer is not kept either. */
	apid_answers_invalidate(c);
	put_text(c, "k", "{\"v\":2}");
	assert_null(apid_answers_get(c, "k", &build));
	assert_true(build);
	put_text(c, "k", "{\"v\":3}");
	assert_true(served(c, "k", "{\"v\":3}"));
	apid_answers_free(c);
}

struct race {
	struct apid_answers *c;
	atomic_int builds, served;
};

static void *asker(void *arg)
{
	struct race *r = arg;
	bool build;
	const struct apid_answer *a = apid_answers_get(r->c, "k", &build);

	if (build) {
		atomic_fetch_add(&r->builds, 1);
		usleep(100 * 1000);   /* a slow build: the others arrive meanwhile */
		put_text(r->c, "k", "{}");
	} else if (a) {
		atomic_fetch_add(&r->served, 1);
	}
	apid_answer_release(a);
	return NULL;
}

static void test_one_build_for_many(void **state)
{
	struct race r = { .c = apid_answers_new(NULL, NULL) };
	pthread_t t[8];

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, asker, &r), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&r.builds), 1);
	assert_int_equal(atomic_load(&r.served), 7);
	apid_answers_free(r.c);
}

static void *abandoner(void *arg)
{
	struct apid_answers *c = arg;

	usleep(50 * 1000);
	apid_answers_abandon(c, "k");
	return NULL;
}

static void test_abandon_releases_waiters(void **state)
{
	struct apid_answers *c = apid_answers_new(NULL, NULL);
	pthread_t t;
	bool build;

	(void)state;
	assert_null(apid_answers_get(c, "k", &build));
	assert_true(build);
	assert_int_equal(pthread_create(&t, NULL, abandoner, c), 0);
	/* Waits for the first build, which gives up: this caller builds. */
	assert_null(apid_answers_get(c, "k", &build));
	assert_true(build);
	pthread_join(t, NULL);
	apid_answers_abandon(c, "k");
	/* A key too long to keep: built by every caller, kept by none. */
	{
		char key[600];
		memset(key, 'x', sizeof(key) - 1);
		key[sizeof(key) - 1] = '\0';
		assert_null(apid_answers_get(c, key, &build));
		assert_false(build);
	}
	apid_answers_free(c);
}

/* The rebuilder: counts its builds, each a new text. */
struct rebuilds {
	atomic_int n;
};

static void count_build(void *ctx, struct apid_answers *c, const char *key)
{
	struct rebuilds *b = ctx;
	char text[32];
	int n = atomic_fetch_add(&b->n, 1) + 1;

	snprintf(text, sizeof(text), "{\"build\":%d}", n);
	put_text(c, key, text);
}

/* A kept answer is rebuilt ahead by the answers' own thread while it is
 * asked for: no request builds it again, none waits; once nobody asks
 * for ANSWERS_IDLE_MS the rebuilds stop. */
static void test_rebuilt_ahead(void **state)
{
	struct rebuilds b = { 0 };
	struct apid_answers *c = apid_answers_new(count_build, &b);
	const struct apid_answer *a;
	bool build;
	int seen = 0, last = -1;

	(void)state;
	assert_null(apid_answers_get(c, "k", &build));
	assert_true(build);
	put_text(c, "k", "{\"build\":0}");
	/* 3 s of asking every 20 ms: never told to build, the text moves on. */
	for (int i = 0; i < 150; i++) {
		a = apid_answers_get(c, "k", &build);
		assert_non_null(a);
		assert_false(build);
		if (a->body[9] - '0' != last) {
			last = a->body[9] - '0';
			seen++;
		}
		apid_answer_release(a);
		usleep(20 * 1000);
	}
	assert_true(atomic_load(&b.n) >= 2 && atomic_load(&b.n) <= 4);
	assert_true(seen >= 3);
	/* Nobody asks: it stops rebuilding. */
	usleep((ANSWERS_IDLE_MS + 1500) * 1000);
	{
		int n = atomic_load(&b.n);
		usleep(1500 * 1000);
		assert_int_equal(atomic_load(&b.n), n);
	}
	apid_answers_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_while_fresh),
		cmocka_unit_test(test_change_invalidates),
		cmocka_unit_test(test_one_build_for_many),
		cmocka_unit_test(test_abandon_releases_waiters),
		cmocka_unit_test(test_rebuilt_ahead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
