/* fuzz_envelope — libFuzzer target for the bus envelope decoder and the
 * sequence tracker.
 *
 * Every input is decoded twice (default cap, and a cap of half the input so
 * the size check is exercised). Besides the sanitizers, each run checks the
 * decoder's promises: a known error, a NUL-terminated topic and src within
 * their arrays, seq >= 1, an object body; and that an accepted envelope
 * survives encode -> decode unchanged. Accepted envelopes also feed a
 * sequence tracker, whose totals must stay consistent.
 * Seeds: tests/fuzz/seeds/fuzz_envelope/ (topic '\0' json).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hive/bus.h"
#include "hive/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static struct hive_seq_tracker *tracker;
static uint64_t tracked_lost;

static void check_envelope(const struct hive_envelope *env)
{
	CHECK(memchr(env->topic, '\0', sizeof(env->topic)) != NULL);
	CHECK(env->topic[0] != '\0');
	CHECK(memchr(env->src, '\0', sizeof(env->src)) != NULL);
	CHECK(env->src[0] != '\0');
	CHECK(env->v == HIVE_ENVELOPE_VERSION);
	CHECK(env->seq >= 1);
	CHECK(json_is_object(env->body));
}

static void roundtrip(const struct hive_envelope *env)
{
	struct hive_envelope again;
	char *buf;
	size_t len;

	CHECK(hive_envelope_encode(env->topic, env->src, env->boot, env->seq, env->ts,
				   env->body, &buf, &len) == 0);
	CHECK(hive_envelope_decode(buf, len, len, &again) == HIVE_ENV_OK);
	CHECK(strcmp(again.topic, env->topic) == 0);
	CHECK(strcmp(again.src, env->src) == 0);
	CHECK(again.boot == env->boot && again.seq == env->seq && again.ts == env->ts);
	CHECK(json_equal(again.body, env->body));
	hive_envelope_clear(&again);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hive_envelope env;
	enum hive_envelope_error e;

	if (tracker == NULL) {
		hive_log_init("fuzz", HIVE_LOG_ERROR, NULL);
		tracker = hive_seq_new();
		CHECK(tracker != NULL);
	}
	e = hive_envelope_decode(data, size, 0, &env);
	CHECK(e >= HIVE_ENV_OK && e < HIVE_ENV_ERROR_COUNT);
	CHECK(strcmp(hive_envelope_error_name(e), "unknown") != 0);
	if (e == HIVE_ENV_OK) {
		uint64_t before = hive_seq_lost(tracker);

		check_envelope(&env);
		roundtrip(&env);
		tracked_lost += hive_seq_track(tracker, env.src, env.boot, env.topic, env.seq);
		CHECK(hive_seq_lost(tracker) >= before);
		CHECK(hive_seq_lost(tracker) == tracked_lost);
		hive_envelope_clear(&env);
	}
	/* The same bytes under a cap they exceed: refused for size, always. */
	if (size >= 2)
		CHECK(hive_envelope_decode(data, size, size / 2, &env) == HIVE_ENV_TOO_LARGE);
	return 0;
}
