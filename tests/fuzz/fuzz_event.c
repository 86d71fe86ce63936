/* fuzz_event — libFuzzer target for what apid does with every message that
 * arrives on bus.events: the envelope decoder, then the body decoder that
 * reads it through libhive's message tables (apid_event_decode).
 *
 * Besides the sanitizers, each accepted event is checked for the codec's
 * promise: what was decoded encodes to a body that decodes again, to the
 * same encoding (encode ∘ decode is idempotent), telemetry's chips packed
 * as apid stores them read back whole (and a byte short, not at all), and
 * clearing frees all.
 * Seeds: tests/fuzz/seeds/fuzz_event/ (topic '\0' envelope json).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../apid/chips.h"
#include "../../apid/event.h"
#include "hive/bus.h"
#include "hive/log.h"
#include "hive/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_stable(const struct apid_event *ev)
{
	struct apid_event again;
	struct hive_envelope env = { .v = 1 };
	enum apid_reject why;
	char err[256];
	json_t *one = hive_msg_encode(ev->kind, &ev->u), *two;

	CHECK(one != NULL);
	snprintf(env.topic, sizeof(env.topic), "%s", hive_msg_topic(ev->kind)->topic);
	env.body = one;
	CHECK(apid_event_decode(&env, &again, &why, err, sizeof(err)) == 0);
	two = hive_msg_encode(again.kind, &again.u);
	CHECK(two != NULL && json_equal(one, two));
	json_decref(two);
	apid_event_clear(&again);
	json_decref(one);
}

/* Telemetry's chips, packed as apid stores them, read back whole: as
 * many chips as the body had, each clamped as chips.h says. */
static void check_packed(const struct apid_event *ev)
{
	static struct apid_chip out[APID_CHIPS_MAX];

	if (ev->kind != HIVE_MSG_TELEMETRY_RESULT)
		return;
	for (size_t i = 0; i < ev->u.telemetry.n_chains; i++) {
		const struct apid_packed_chips *p = &ev->packed[i];
		int n = apid_chips_unpack_any(p->blob, p->len, APID_CHIPS_PACKED, out, APID_CHIPS_MAX);

		CHECK(n >= 0 && (size_t)n == p->n_chips);
		CHECK(n == 0 || (out[0].grade && out[n - 1].freq >= 0 && out[n - 1].freq <= 65535));
		CHECK(p->len >= 1 && apid_chips_unpack_any(p->blob, p->len - 1, APID_CHIPS_PACKED,
							       out, APID_CHIPS_MAX) == -1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct hive_envelope env;
	struct apid_event ev;
	enum apid_reject why;
	char err[256];

	if (!ready) {
		hive_log_init("fuzz", HIVE_LOG_ERROR, NULL);
		ready = 1;
	}
	if (hive_envelope_decode(data, size, 0, &env) != HIVE_ENV_OK)
		return 0;
	err[0] = '\0';
	if (apid_event_decode(&env, &ev, &why, err, sizeof(err)) == 0) {
		check_stable(&ev);
		check_packed(&ev);
		apid_event_clear(&ev);
	} else {
		CHECK(err[0] != '\0');
		CHECK(why == APID_REJ_UNKNOWN_TOPIC || why == APID_REJ_BAD_BODY);
	}
	hive_envelope_clear(&env);
	return 0;
}
