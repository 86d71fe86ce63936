/* test_bus — the envelope codec, the sequence tracker and the socket
 * contract that needs no network (inproc). Real TCP behaviour under load is
 * in test_bus_fitness.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/bus.h"
#include "hive/log.h"
#include "../lib/testlib.h"

#define VALID_JSON "{\"v\":1,\"src\":\"pollerd/h/1\",\"boot\":5,\"seq\":7,\"ts\":9,\"body\":{}}"

/* ------------------------------------------------------------ encode */

static void test_encode_roundtrip(void **state)
{
	static const struct {
		const char *topic;
		const char *src;
		long long boot;
		unsigned long long seq;
		long long ts;
		const char *body;       /* NULL: no body given */
	} cases[] = {
		{ "hive.miner.seen", "discoverd/host/42", 1700000000000LL, 1, 1700000000123LL,
		  "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"ip\":\"127.0.0.9\"}" },
		{ "t", "a", 0, 9223372036854775807ULL, 0, "{}" },
		{ "hive.status.result", "pollerd/x/1", -1, 42, -5,
		  "{\"nested\":{\"a\":[1,2,3]},\"s\":\"caf\\u00e9 \\\"q\\\"\"}" },
		{ "hive.daemon.heartbeat", "apid/h/1", 1, 2, 3, NULL },
		/* 63 characters: the longest topic there is */
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", "s", 1, 1, 1,
		  "{}" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hive_envelope env = { 0 };
		json_t *body = cases[i].body ? json_loads(cases[i].body, 0, NULL) : NULL;
		char *buf;
		size_t len;

		assert_true(cases[i].body == NULL || body != NULL);
		assert_int_equal(hive_envelope_encode(cases[i].topic, cases[i].src, cases[i].boot,
						      cases[i].seq, cases[i].ts, body, &buf, &len),
				 0);
		/* topic '\0' json */
		assert_int_equal(strlen(buf), strlen(cases[i].topic));
		assert_string_equal(buf, cases[i].topic);
		assert_int_equal(hive_envelope_decode(buf, len, 0, &env), HIVE_ENV_OK);
		assert_string_equal(env.topic, cases[i].topic);
		assert_string_equal(env.src, cases[i].src);
		assert_int_equal(env.v, 1);
		assert_true(env.boot == cases[i].boot);
		assert_true(env.seq == cases[i].seq);
		assert_true(env.ts == cases[i].ts);
		assert_non_null(env.body);
		if (body)
			assert_true(json_equal(env.body, body));
		else
			assert_int_equal(json_object_size(env.body), 0);
		hive_envelope_clear(&env);
		assert_null(env.body);
		free(buf);
		json_decref(body);
	}
}

static void test_encode_refuses(void **state)
{
	static const struct {
		const char *topic;
		const char *src;
		unsigned long long seq;
		const char *body;
	} cases[] = {
		{ "", "s", 1, "{}" },                       /* empty topic */
		{ NULL, "s", 1, "{}" },
		{ "has space", "s", 1, "{}" },
		{ "tab\there", "s", 1, "{}" },
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", "s", 1,
		  "{}" },                                    /* 64 characters */
		{ "t", "", 1, "{}" },                       /* empty src */
		{ "t", NULL, 1, "{}" },
		{ "t", "bad\nsrc", 1, "{}" },
		{ "t", "s", 0, "{}" },                      /* seq counts from 1 */
		{ "t", "s", 9223372036854775808ULL, "{}" }, /* beyond JSON integers */
		{ "t", "s", 1, "[1]" },                     /* body must be an object */
		{ "t", "s", 1, "\"x\"" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *body = json_loads(cases[i].body, JSON_DECODE_ANY, NULL);
		char *buf = (char *)"untouched";
		size_t len = 99;

		assert_non_null(body);
		assert_int_equal(hive_envelope_encode(cases[i].topic, cases[i].src, 1, cases[i].seq,
						      1, body, &buf, &len),
				 -1);
		assert_null(buf);
		assert_int_equal(len, 0);
		json_decref(body);
	}
}

/* ------------------------------------------------------------ decode */

static void test_decode_table(void **state)
{
	static char big[200];
	static const struct {
		const char *name;
		const char *topic;      /* written before the '\0'; NULL: no '\0' at all */
		const char *json;
		size_t max;
		enum hive_envelope_error want;
	} cases[] = {
		{ "valid", "hive.miner.seen", VALID_JSON, 0, HIVE_ENV_OK },
		{ "unknown fields ignored", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{},\"extra\":[1]}",
		  0, HIVE_ENV_OK },
		{ "no separator", NULL, VALID_JSON, 0, HIVE_ENV_NO_TOPIC },
		{ "empty topic", "", VALID_JSON, 0, HIVE_ENV_NO_TOPIC },
		{ "topic with space", "hive miner", VALID_JSON, 0, HIVE_ENV_NO_TOPIC },
		{ "topic with control", "hive\x01", VALID_JSON, 0, HIVE_ENV_NO_TOPIC },
		{ "topic with high byte", "hive\xc3\xa9", VALID_JSON, 0, HIVE_ENV_NO_TOPIC },
		{ "topic 64 chars",
		  "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", VALID_JSON,
		  0, HIVE_ENV_NO_TOPIC },
		{ "topic 63 chars",
		  "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", VALID_JSON,
		  0, HIVE_ENV_OK },
		{ "not json", "t", "hello", 0, HIVE_ENV_NOT_JSON },
		{ "empty json", "t", "", 0, HIVE_ENV_NOT_JSON },
		{ "json array", "t", "[1,2]", 0, HIVE_ENV_NOT_JSON },
		{ "json string", "t", "\"x\"", 0, HIVE_ENV_NOT_JSON },
		{ "trailing garbage", "t", VALID_JSON "x", 0, HIVE_ENV_NOT_JSON },
		{ "truncated", "t", "{\"v\":1,\"src\":\"s\"", 0, HIVE_ENV_NOT_JSON },
		{ "duplicate key", "t",
		  "{\"v\":1,\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_NOT_JSON },
		{ "NUL escaped in src", "t",
		  "{\"v\":1,\"src\":\"a\\u0000b\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_NOT_JSON },
		{ "no v", "t", "{\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "v string", "t",
		  "{\"v\":\"1\",\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "v real", "t",
		  "{\"v\":1.0,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "v 2", "t", "{\"v\":2,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}",
		  0, HIVE_ENV_BAD_VERSION },
		{ "v 2 other shape", "t", "{\"v\":2,\"payload\":\"whatever\"}", 0,
		  HIVE_ENV_BAD_VERSION },
		{ "v 0", "t", "{\"v\":0,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}",
		  0, HIVE_ENV_BAD_VERSION },
		{ "no src", "t", "{\"v\":1,\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "src number", "t", "{\"v\":1,\"src\":3,\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}",
		  0, HIVE_ENV_MISSING_FIELD },
		{ "src empty", "t", "{\"v\":1,\"src\":\"\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}",
		  0, HIVE_ENV_MISSING_FIELD },
		{ "src control", "t",
		  "{\"v\":1,\"src\":\"a\\nb\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "no boot", "t", "{\"v\":1,\"src\":\"s\",\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "boot string", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":\"1\",\"seq\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "no seq", "t", "{\"v\":1,\"src\":\"s\",\"boot\":1,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "seq 0", "t", "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":0,\"ts\":1,\"body\":{}}",
		  0, HIVE_ENV_MISSING_FIELD },
		{ "seq negative", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":-3,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "seq real", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":2.5,\"ts\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "no ts", "t", "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "ts null", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":null,\"body\":{}}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "no body", "t", "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "body array", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":[]}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "body null", "t",
		  "{\"v\":1,\"src\":\"s\",\"boot\":1,\"seq\":1,\"ts\":1,\"body\":null}", 0,
		  HIVE_ENV_MISSING_FIELD },
		{ "over max", "t", VALID_JSON, 20, HIVE_ENV_TOO_LARGE },
		{ "exactly max", "t", VALID_JSON, 2 + sizeof(VALID_JSON) - 1, HIVE_ENV_OK },
		{ "one over max", "t", VALID_JSON, 2 + sizeof(VALID_JSON) - 2, HIVE_ENV_TOO_LARGE },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hive_envelope env;
		size_t tl = cases[i].topic ? strlen(cases[i].topic) + 1 : 0;
		size_t jl = strlen(cases[i].json);
		enum hive_envelope_error got;

		assert_true(tl + jl <= sizeof(big));
		if (cases[i].topic)
			memcpy(big, cases[i].topic, tl);
		memcpy(big + tl, cases[i].json, jl);
		memset(&env, 0xa5, sizeof(env));
		got = hive_envelope_decode(big, tl + jl, cases[i].max, &env);
		if (got != cases[i].want)
			fail_msg("case \"%s\": got %s, want %s", cases[i].name,
				 hive_envelope_error_name(got),
				 hive_envelope_error_name(cases[i].want));
		if (got == HIVE_ENV_OK) {
			assert_string_equal(env.topic, cases[i].topic);
			hive_envelope_clear(&env);
		} else {
			/* Refused: env untouched, nothing to free. */
			assert_int_equal(((unsigned char *)&env)[0], 0xa5);
		}
	}
}

static void test_decode_fields(void **state)
{
	static const char msg[] = "hive.miner.key\0" VALID_JSON;
	struct hive_envelope env;

	(void)state;
	assert_int_equal(hive_envelope_decode(msg, sizeof(msg) - 1, 0, &env), HIVE_ENV_OK);
	assert_string_equal(env.topic, "hive.miner.key");
	assert_string_equal(env.src, "pollerd/h/1");
	assert_int_equal(env.v, 1);
	assert_true(env.boot == 5 && env.seq == 7 && env.ts == 9);
	assert_true(json_is_object(env.body));
	hive_envelope_clear(&env);
	/* A NULL buffer or an empty one is refused, not dereferenced. */
	assert_int_equal(hive_envelope_decode(NULL, 0, 0, &env), HIVE_ENV_NO_TOPIC);
	assert_int_equal(hive_envelope_decode("", 0, 0, &env), HIVE_ENV_NO_TOPIC);
}

static void test_error_names(void **state)
{
	static const char *want[HIVE_ENV_ERROR_COUNT] = {
		"ok", "too_large", "no_topic", "not_json", "missing_field", "bad_version",
	};
	int i;

	(void)state;
	for (i = 0; i < HIVE_ENV_ERROR_COUNT; i++)
		assert_string_equal(hive_envelope_error_name(i), want[i]);
	assert_string_equal(hive_envelope_error_name(HIVE_ENV_ERROR_COUNT), "unknown");
	assert_string_equal(hive_envelope_error_name(-1), "unknown");
}

/* ------------------------------------------------------------ seq tracker */

struct seq_step {
	const char *src;
	long long boot;
	const char *topic;
	unsigned long long seq;
	uint64_t want_lost;           /* hive_seq_track's return */
};

static void test_seq_table(void **state)
{
	static const struct {
		const char *name;
		struct seq_step steps[8];
		uint64_t lost, duplicates;
	} cases[] = {
		{ "in order", { { "a", 1, "t", 1, 0 }, { "a", 1, "t", 2, 0 }, { "a", 1, "t", 3, 0 } },
		  0, 0 },
		{ "gap", { { "a", 1, "t", 1, 0 }, { "a", 1, "t", 2, 0 }, { "a", 1, "t", 5, 2 },
			   { "a", 1, "t", 6, 0 } }, 2, 0 },
		{ "repeat", { { "a", 1, "t", 1, 0 }, { "a", 1, "t", 2, 0 }, { "a", 1, "t", 2, 0 } },
		  0, 1 },
		{ "reordered", { { "a", 1, "t", 1, 0 }, { "a", 1, "t", 3, 1 },
				 { "a", 1, "t", 2, 0 } }, 1, 1 },
		{ "first seen late is a baseline", { { "a", 1, "t", 1000, 0 },
						     { "a", 1, "t", 1001, 0 } }, 0, 0 },
		{ "new boot restarts", { { "a", 1, "t", 1, 0 }, { "a", 1, "t", 50, 48 },
					 { "a", 2, "t", 1, 0 }, { "a", 2, "t", 3, 1 } }, 49, 0 },
		{ "old boot is stale", { { "a", 5, "t", 1, 0 }, { "a", 6, "t", 1, 0 },
					 { "a", 5, "t", 2, 0 }, { "a", 6, "t", 2, 0 } }, 0, 1 },
		{ "topics apart", { { "a", 1, "t1", 1, 0 }, { "a", 1, "t2", 1, 0 },
				    { "a", 1, "t1", 2, 0 }, { "a", 1, "t2", 2, 0 },
				    { "a", 1, "t2", 4, 1 } }, 1, 0 },
		{ "sources apart", { { "a", 1, "t", 1, 0 }, { "b", 1, "t", 1, 0 },
				     { "a", 1, "t", 2, 0 }, { "b", 1, "t", 3, 1 } }, 1, 0 },
		{ "absurd jump is a new baseline", { { "a", 1, "t", 1, 0 },
						     { "a", 1, "t", 9000000000000ULL, 0 },
						     { "a", 1, "t", 9000000000002ULL, 1 } }, 1, 0 },
		/* "ab"+"c" and "a"+"bc" must be different keys */
		{ "key boundary", { { "ab", 1, "c", 1, 0 }, { "a", 1, "bc", 7, 0 },
				    { "ab", 1, "c", 2, 0 } }, 0, 0 },
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hive_seq_tracker *t = hive_seq_new();

		assert_non_null(t);
		for (j = 0; j < 8 && cases[i].steps[j].src; j++) {
			const struct seq_step *s = &cases[i].steps[j];
			uint64_t got = hive_seq_track(t, s->src, s->boot, s->topic, s->seq);

			if (got != s->want_lost)
				fail_msg("case \"%s\" step %zu: lost %llu, want %llu", cases[i].name,
					 j, (unsigned long long)got,
					 (unsigned long long)s->want_lost);
		}
		if (hive_seq_lost(t) != cases[i].lost ||
		    hive_seq_duplicates(t) != cases[i].duplicates)
			fail_msg("case \"%s\": lost %llu dup %llu, want %llu %llu", cases[i].name,
				 (unsigned long long)hive_seq_lost(t),
				 (unsigned long long)hive_seq_duplicates(t),
				 (unsigned long long)cases[i].lost,
				 (unsigned long long)cases[i].duplicates);
		hive_seq_free(t);
	}
}

struct src_total {
	char src[HIVE_SOURCE_MAX];
	uint64_t received, lost;
};

struct src_totals {
	struct src_total v[8];
	int n;
};

static void collect_totals(const char *src, uint64_t received, uint64_t lost, void *arg)
{
	struct src_totals *t = arg;

	assert_true(t->n < 8);
	snprintf(t->v[t->n].src, sizeof(t->v[0].src), "%s", src);
	t->v[t->n].received = received;
	t->v[t->n].lost = lost;
	t->n++;
}

static const struct src_total *find_total(const struct src_totals *t, const char *src)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].src, src) == 0)
			return &t->v[i];
	return NULL;
}

static void test_seq_foreach(void **state)
{
	struct hive_seq_tracker *t = hive_seq_new();
	struct src_totals got = { .n = 0 };
	const struct src_total *a, *b;
	unsigned long long s;

	(void)state;
	/* a, boot 1: 10 received with 5 lost; then a restarts (boot 2). */
	for (s = 1; s <= 15; s++)
		if (s % 3 != 0)
			hive_seq_track(t, "a", 1, "t", s);
	/* a, boot 2: two topics, 3 + 2 received, 1 lost. */
	hive_seq_track(t, "a", 2, "t", 1);
	hive_seq_track(t, "a", 2, "t", 2);
	hive_seq_track(t, "a", 2, "t", 4);
	hive_seq_track(t, "a", 2, "u", 1);
	hive_seq_track(t, "a", 2, "u", 2);
	/* a stale message of boot 1 changes no total of boot 2 */
	hive_seq_track(t, "a", 1, "t", 16);
	/* b: 4 received, 96 lost */
	hive_seq_track(t, "b", 7, "t", 1);
	hive_seq_track(t, "b", 7, "t", 2);
	hive_seq_track(t, "b", 7, "t", 99);
	hive_seq_track(t, "b", 7, "t", 100);

	hive_seq_foreach(t, collect_totals, &got);
	assert_int_equal(got.n, 2);
	assert_non_null(a = find_total(&got, "a"));
	assert_non_null(b = find_total(&got, "b"));
	assert_int_equal(a->received, 5);
	assert_int_equal(a->lost, 1);
	assert_int_equal(b->received, 4);
	assert_int_equal(b->lost, 96);
	/* Lifetime totals keep the first boot's losses. */
	assert_int_equal(hive_seq_lost(t), 4 + 1 + 96);
	assert_int_equal(hive_seq_duplicates(t), 1);
	hive_seq_free(t);

	/* NULL-safe */
	assert_int_equal(hive_seq_lost(NULL), 0);
	hive_seq_foreach(NULL, collect_totals, &got);
	hive_seq_free(NULL);
}

static void test_seq_many_keys(void **state)
{
	struct hive_seq_tracker *t = hive_seq_new();
	char src[32], topic[16];
	int i, k;

	(void)state;
	/* Enough keys to grow the tables several times; each key in order. */
	for (k = 1; k <= 3; k++) {
		for (i = 0; i < 3000; i++) {
			snprintf(src, sizeof(src), "pollerd/h/%d", i);
			snprintf(topic, sizeof(topic), "t%d", i % 7);
			assert_int_equal(hive_seq_track(t, src, 1, topic, (unsigned long long)k), 0);
		}
	}
	assert_int_equal(hive_seq_lost(t), 0);
	assert_int_equal(hive_seq_duplicates(t), 0);
	hive_seq_free(t);
}

/* ------------------------------------------------------------ sockets */

static void test_open_errors(void **state)
{
	struct hive_bus_opts o = { .listen = true, .send_timeout_ms = 100, .recv_timeout_ms = 100 };
	struct hive_bus *a, *b;
	char err[256], url[64];

	(void)state;
	err[0] = '\0';
	assert_null(hive_bus_open(HIVE_BUS_SUBSCRIBE, "nope://127.0.0.1:1", &o, err, sizeof(err)));
	assert_non_null(strstr(err, "nope://127.0.0.1:1"));
	assert_null(hive_bus_open((enum hive_bus_role)42, "inproc://x", &o, err, sizeof(err)));
	assert_null(hive_bus_open(HIVE_BUS_PUBLISH, NULL, &o, err, sizeof(err)));
	o.source = "bad\nsource";
	assert_null(hive_bus_open(HIVE_BUS_PUBLISH, "inproc://y", &o, err, sizeof(err)));
	o.source = "test/h/1";

	/* A port already listened on: a clear error, not a crash. */
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tl_free_port());
	assert_non_null(a = hive_bus_open(HIVE_BUS_REPLY, url, &o, err, sizeof(err)));
	err[0] = '\0';
	assert_null(b = hive_bus_open(HIVE_BUS_REPLY, url, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "listen"));
	hive_bus_close(a);
	hive_bus_close(NULL);
}

static void test_role_misuse(void **state)
{
	struct hive_bus_opts o = { .listen = true, .send_timeout_ms = 50, .recv_timeout_ms = 50,
				   .source = "test/h/1" };
	struct hive_bus *pub, *sub;
	struct hive_envelope env = { 0 };
	char err[256];
	json_t *body = json_object();

	(void)state;
	assert_non_null(pub = hive_bus_open(HIVE_BUS_PUBLISH, "inproc://misuse", &o, err,
					    sizeof(err)));
	o.listen = false;
	assert_non_null(sub = hive_bus_open(HIVE_BUS_SUBSCRIBE, "inproc://misuse", &o, err,
					    sizeof(err)));
	assert_int_equal(hive_bus_subscribe(pub, ""), -1);
	assert_int_equal(hive_bus_recv(pub, &env, 0), HIVE_BUS_ERROR);
	assert_int_equal(hive_bus_recv_fd(pub), -1);
	assert_true(hive_bus_recv_fd(sub) >= 0);
	assert_int_equal(hive_bus_send(sub, "t", body, true), HIVE_BUS_ERROR);
	assert_int_equal(hive_bus_request(pub, "t", body, &env, 10), HIVE_BUS_ERROR);
	/* Bad topics are refused before anything is sent. */
	assert_int_equal(hive_bus_send(pub, "", body, true), HIVE_BUS_ERROR);
	assert_int_equal(hive_bus_send(pub, "a b", body, true), HIVE_BUS_ERROR);
	/* Nothing subscribed yet: nothing to receive. */
	assert_int_equal(hive_bus_recv(sub, &env, 0), HIVE_BUS_TIMEOUT);
	json_decref(body);
	hive_bus_close(sub);
	hive_bus_close(pub);
}

/* seq counts per topic on the sending socket from 1, and the envelope
 * carries the socket's src and boot. inproc: no network. */
static void test_seq_per_topic(void **state)
{
	struct hive_bus_opts o = { .listen = true, .sendbuf = 16, .send_timeout_ms = 1000,
				   .recv_timeout_ms = 1000, .source = "pollerd/h/77",
				   .boot = 1234 };
	static const struct {
		const char *topic;
		unsigned long long seq;
	} want[] = {
		{ "hive.a", 1 }, { "hive.a", 2 }, { "hive.b", 1 }, { "hive.a", 3 },
		{ "hive.b", 2 }, { "hive.c", 1 },
	};
	struct hive_bus *push, *pull;
	struct hive_bus_stats st;
	char err[256];
	size_t i;

	(void)state;
	assert_non_null(push = hive_bus_open(HIVE_BUS_PUSH, "inproc://seq", &o, err,
					     sizeof(err)));
	o.listen = false;
	o.source = "other/h/1";
	assert_non_null(pull = hive_bus_open(HIVE_BUS_PULL, "inproc://seq", &o, err,
					     sizeof(err)));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_t *body = json_pack("{s:i}", "i", (int)i);

		assert_int_equal(hive_bus_send(push, want[i].topic, body, false), HIVE_BUS_OK);
		json_decref(body);
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct pollfd p = { .fd = hive_bus_recv_fd(pull), .events = POLLIN };
		struct hive_envelope env;

		/* As a worker's loop does: poll the fd, then take without waiting. */
		assert_int_equal(poll(&p, 1, 2000), 1);
		assert_int_equal(hive_bus_recv(pull, &env, 0), HIVE_BUS_OK);
		assert_string_equal(env.topic, want[i].topic);
		assert_true(env.seq == want[i].seq);
		assert_string_equal(env.src, "pollerd/h/77");
		assert_true(env.boot == 1234);
		assert_int_equal(json_integer_value(json_object_get(env.body, "i")), (int)i);
		hive_envelope_clear(&env);
	}
	hive_bus_get_stats(push, &st);
	assert_int_equal(st.sent, 6);
	assert_int_equal(st.send_failed, 0);
	hive_bus_get_stats(pull, &st);
	assert_int_equal(st.received, 6);
	assert_int_equal(st.rejected, 0);
	hive_bus_close(pull);
	hive_bus_close(push);
}

/* test_endpoints' REPLY side: answers one request, notes its endpoint. */
struct answer_srv {
	struct hive_bus *rep;
	int endpoint;
};

static void *answer_once(void *arg)
{
	struct answer_srv *srv = arg;
	struct hive_envelope env = { 0 };
	json_t *b = json_object();

	if (hive_bus_recv(srv->rep, &env, 3000) == HIVE_BUS_OK) {
		srv->endpoint = env.endpoint;
		hive_bus_send(srv->rep, "hive.a", b, false);
		hive_envelope_clear(&env);
	}
	json_decref(b);
	return NULL;
}

/* A listening socket on two URLs says which one each message came in on
 * (apid's role by listener): SUBSCRIBE and REPLY, and a dialer is always
 * endpoint 0. A dialing socket cannot listen on more. */
static void test_endpoints(void **state)
{
	struct hive_bus_opts o = { .listen = true, .send_timeout_ms = 1000,
				   .recv_timeout_ms = 2000, .source = "apid/h/1" };
	const char *urls[2] = { "inproc://ep-workers", "inproc://ep-discovery" };
	struct hive_bus *sub, *rep, *pub[2], *req;
	struct hive_envelope env;
	char err[256];
	int got[2] = { -2, -2 };

	(void)state;
	assert_non_null(sub = hive_bus_open(HIVE_BUS_SUBSCRIBE, urls[0], &o, err, sizeof(err)));
	assert_int_equal(hive_bus_listen_also(sub, urls[1], &o, err, sizeof(err)), 1);
	assert_int_equal(hive_bus_subscribe(sub, ""), 0);
	assert_non_null(rep = hive_bus_open(HIVE_BUS_REPLY, "inproc://ep-control", &o, err,
					    sizeof(err)));
	assert_int_equal(hive_bus_listen_also(rep, "inproc://ep-dcontrol", &o, err, sizeof(err)),
			 1);
	o.listen = false;
	for (int i = 0; i < 2; i++) {
		o.source = i ? "discoverd/h/2" : "pollerd/h/3";
		assert_non_null(pub[i] = hive_bus_open(HIVE_BUS_PUBLISH, urls[i], &o, err,
						       sizeof(err)));
	}
	o.listen = true;
	assert_int_equal(hive_bus_listen_also(pub[0], "inproc://ep-no", &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "only a listening socket"));
	o.listen = false;
	for (int tries = 0; tries < 100 && hive_bus_peers(sub) < 2; tries++)
		usleep(10000);
	usleep(50000);           /* the subscriptions reach the publishers */
	for (int i = 0; i < 2; i++) {
		json_t *b = json_pack("{s:i}", "i", i);

		assert_int_equal(hive_bus_send(pub[i], "hive.t", b, false), HIVE_BUS_OK);
		json_decref(b);
	}
	for (int n = 0; n < 2; n++) {
		memset(&env, 0, sizeof(env));
		assert_int_equal(hive_bus_recv(sub, &env, 2000), HIVE_BUS_OK);
		got[json_integer_value(json_object_get(env.body, "i"))] = env.endpoint;
		hive_envelope_clear(&env);
	}
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1], 1);
	/* REQ on the second endpoint; the dialer's reply says endpoint 0 */
	assert_non_null(req = hive_bus_open(HIVE_BUS_REQUEST, "inproc://ep-dcontrol", &o, err,
					    sizeof(err)));
	{
		struct hive_envelope reply = { 0 };
		json_t *b = json_object();
		pthread_t t;
		struct answer_srv srv = { rep, -2 };

		assert_int_equal(pthread_create(&t, NULL, answer_once, &srv), 0);
		assert_int_equal(hive_bus_request(req, "hive.q", b, &reply, 3000), HIVE_BUS_OK);
		assert_int_equal(pthread_join(t, NULL), 0);
		json_decref(b);
		assert_int_equal(srv.endpoint, 1);
		assert_int_equal(reply.endpoint, 0);
		hive_envelope_clear(&reply);
	}
	hive_bus_close(req);
	for (int i = 0; i < 2; i++)
		hive_bus_close(pub[i]);
	hive_bus_close(rep);
	hive_bus_close(sub);
}

/* A refused non-blocking send gives its seq back, so the subscriber sees
 * no gap for a message that never left. */
static void test_seq_refused_send(void **state)
{
	struct hive_bus_opts o = { .listen = true, .sendbuf = 1, .send_timeout_ms = 0,
				   .recv_timeout_ms = 1000, .source = "t/h/1", .boot = 1 };
	struct hive_bus *push, *pull;
	struct hive_envelope env;
	struct hive_bus_stats st;
	char err[256];
	json_t *body = json_object();
	int ok = 0, refused = 0, i;

	(void)state;
	assert_non_null(push = hive_bus_open(HIVE_BUS_PUSH, "inproc://refused", &o, err,
					     sizeof(err)));
	/* No puller: the buffer takes what it can, the rest is refused. */
	for (i = 0; i < 5; i++) {
		int rc = hive_bus_send(push, "t", body, true);

		if (rc == HIVE_BUS_OK)
			ok++;
		else if (rc == HIVE_BUS_TIMEOUT)
			refused++;
		else
			fail_msg("send: %d", rc);
	}
	assert_true(refused > 0);
	hive_bus_get_stats(push, &st);
	assert_int_equal(st.send_failed, refused);
	o.listen = false;
	assert_non_null(pull = hive_bus_open(HIVE_BUS_PULL, "inproc://refused", &o, err,
					     sizeof(err)));
	for (i = 1; i <= ok; i++) {
		assert_int_equal(hive_bus_recv(pull, &env, 2000), HIVE_BUS_OK);
		assert_true(env.seq == (unsigned long long)i);
		hive_envelope_clear(&env);
	}
	/* The next send continues right after the last one delivered. */
	assert_int_equal(hive_bus_send(push, "t", body, false), HIVE_BUS_OK);
	assert_int_equal(hive_bus_recv(pull, &env, 2000), HIVE_BUS_OK);
	assert_true(env.seq == (unsigned long long)ok + 1);
	hive_envelope_clear(&env);
	json_decref(body);
	hive_bus_close(pull);
	hive_bus_close(push);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_decode_fields),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_seq_table),
		cmocka_unit_test(test_seq_foreach),
		cmocka_unit_test(test_seq_many_keys),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_role_misuse),
		cmocka_unit_test(test_seq_per_topic),
		cmocka_unit_test(test_seq_refused_send),
		cmocka_unit_test(test_endpoints),
	};

	hive_log_init("test_bus", HIVE_LOG_WARN, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
