/* fuzz_plant — libFuzzer target for the aggregator's answer as pollerd reads
 * it (hive_plant_parse_aggregator): the body is whatever the plant's HTTP
 * service sends.
 *
 * Besides the sanitizers, each run checks the parser's promises: a known
 * error kind and a NUL-terminated message on failure; on success finite
 * whole watts within the plant limit, counts that agree, a consumption
 * only when every consumption source succeeded, a confidence in 0..1; and
 * that the hive.plant.reading pollerd would publish from it is one apid's
 * table accepts (encode, then decode).
 * Seeds: tests/fuzz/seeds/fuzz_plant/ (answer bodies).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hive/log.h"
#include "hive/msg.h"
#include "hive/plant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static const char *const kinds[] = { "bad_json", "bad_field" };

static void check_watts(double w, bool may_be_nan)
{
	if (isnan(w)) {
		CHECK(may_be_nan);
		return;
	}
	CHECK(isfinite(w) && fabs(w) <= 1e15 && w == floor(w));
}

/* What pollerd would publish from r must pass apid's table. */
static void check_message(const struct hive_plant_reading *r)
{
	struct hive_msg_plant_reading m, back;
	char err[256];
	json_t *j;

	hive_plant_reading_to_msg(r, &m);
	m.job = 1;
	m.source = "aggregator";
	CHECK((j = hive_msg_encode(HIVE_MSG_PLANT_READING, &m)) != NULL);
	CHECK(hive_msg_decode(HIVE_MSG_PLANT_READING, j, &back, err, sizeof(err)) == 0);
	CHECK(back.ok == (r->ok ? 1 : 0));
	hive_msg_free(HIVE_MSG_PLANT_READING, &back);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct hive_plant_reading r;
	int rc;

	if (!ready) {
		hive_log_init("fuzz", HIVE_LOG_ERROR, NULL);
		ready = 1;
	}
	rc = hive_plant_parse_aggregator((const char *)data, size, "plant-1", &r);
	CHECK(rc == (r.ok ? 0 : -1));
	CHECK(memchr(r.error, '\0', sizeof(r.error)) && memchr(r.failed, '\0', sizeof(r.failed)));
	CHECK(memchr(r.trust_status, '\0', sizeof(r.trust_status)));
	if (!r.ok) {
		CHECK(r.error[0] != '\0');
		CHECK(strcmp(r.error_kind, kinds[0]) == 0 || strcmp(r.error_kind, kinds[1]) == 0);
	} else {
		check_watts(r.generation_w, false);
		check_watts(r.consumption_w, true);
		check_watts(r.exported_w, true);
		CHECK(isnan(r.confidence) || (r.confidence >= 0 && r.confidence <= 1));
		CHECK(r.gen_failed >= 0 && r.gen_failed <= r.gen_sources);
		CHECK(r.cons_failed >= 0 && r.cons_failed <= r.cons_sources);
		CHECK(r.cons_failed == 0 || isnan(r.consumption_w));
		/* listed only when failed (names that do not fit are not listed) */
		CHECK(r.failed[0] == '\0' || r.gen_failed + r.cons_failed > 0);
		CHECK(r.reading_id >= -1 && r.collected_ms >= -1);
	}
	check_message(&r);
	return 0;
}
