/* test_telemetryd_body — telemetryd's hive.telemetry.result, built from
 * canned /chains and /boards answers (tests/unit/fixtures/fw/) the way a
 * job builds it: every body decodes with the table apid uses, chips come
 * out as columns of one length, and the source says which endpoint
 * answered. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "hive/fw.h"
#include "hive/msg.h"
#include "../../telemetryd/telemetryd.h"
#include "../lib/fwfix.h"

/* Encodes t as hive_worker_done would (head filled) and decodes it back
 * into back; fails the test when the table refuses it. */
static json_t *encode_check(struct telemetryd_result *t, struct hive_msg_telemetry_result *back)
{
	json_t *j;

	t->r.head.job = 9;
	strcpy(t->r.head.mac, "aa:bb:cc:dd:ee:02");
	strcpy(t->r.head.ip, "127.0.0.2");
	t->r.head.latency_ms = 30;
	j = tl_msg_roundtrip(HIVE_MSG_TELEMETRY_RESULT, &t->r, back);
	assert_non_null(j);
	return j;
}

/* Each test's state: the result a job fills, on the heap like a job's. */
static int result_new(void **state)
{
	*state = malloc(sizeof(struct telemetryd_result));
	return *state ? 0 : -1;
}

static int result_free(void **state)
{
	free(*state);
	return 0;
}

static void chains_as_columns(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_CHAINS, "chains_s19.json");
	struct telemetryd_result *t = *state;
	struct hive_msg_telemetry_result back;
	const struct hive_fw_chip *c0;
	json_t *j, *chips;

	assert_non_null(r);
	c0 = &r->chains.chains[0].chips[0];
	assert_true(r->chains.nchains > 0);
	telemetryd_fill(t, &r->chains, false);
	j = encode_check(t, &back);
	assert_string_equal(back.source, "chains");
	assert_int_equal(back.n_chains, (size_t)r->chains.nchains);
	for (size_t i = 0; i < back.n_chains; i++) {
		const struct hive_msg_chips *ch = &back.chains[i].chips;

		assert_int_equal(ch->n_hr, (size_t)r->chains.chains[i].nchips);
		assert_int_equal(strlen(ch->grade), ch->n_hr);
		assert_int_equal(strlen(ch->throttled), ch->n_hr);
	}
	/* whole numbers go as integers, hashrate and temperature to 2 decimals */
	chips = json_object_get(json_array_get(json_object_get(j, "chains"), 0), "chips");
	assert_true(json_is_integer(json_array_get(json_object_get(chips, "freq"), 0)));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(chips, "freq"), 0)),
			 c0->freq);
	assert_true(fabs(json_number_value(json_array_get(json_object_get(chips, "hr"), 0)) -
			 round(c0->hr * 100.0) / 100.0) < 1e-9);
	hive_msg_free(HIVE_MSG_TELEMETRY_RESULT, &back);
	json_decref(j);

	/* /chains answered 404 and the client fell back to /boards */
	telemetryd_fill(t, &r->chains, true);
	j = encode_check(t, &back);
	assert_string_equal(back.source, "boards");
	hive_msg_free(HIVE_MSG_TELEMETRY_RESULT, &back);
	json_decref(j);
	free(r);
}

static void boards_answer(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_BOARDS, "boards.json");
	struct telemetryd_result *t = *state;
	struct hive_msg_telemetry_result back;
	json_t *j;

	assert_non_null(r);
	telemetryd_fill(t, &r->chains, false);
	j = encode_check(t, &back);
	assert_string_equal(back.source, "boards");
	assert_int_equal(back.n_chains, (size_t)r->chains.nchains);
	hive_msg_free(HIVE_MSG_TELEMETRY_RESULT, &back);
	json_decref(j);
	free(r);
}

/* A chain without chips and a value the firmware did not give still make
 * a body apid takes. */
static void odd_chains(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_CHAINS, "chains_s19.json");
	struct telemetryd_result *t = *state;
	struct hive_msg_telemetry_result back;
	json_t *j;

	assert_non_null(r);
	r->chains.chains[0].nchips = 0;
	r->chains.chains[0].state[0] = '\0';
	r->chains.chains[1].hr_realtime = NAN;
	r->chains.chains[1].chips[0].temp = NAN;
	telemetryd_fill(t, &r->chains, false);
	j = encode_check(t, &back);
	assert_int_equal(back.chains[0].chips.n_hr, 0);
	assert_null(back.chains[0].state);
	assert_true(back.chains[1].hr_realtime_ghs == 0.0);
	assert_true(back.chains[1].chips.temp[0] == 0.0);
	hive_msg_free(HIVE_MSG_TELEMETRY_RESULT, &back);
	json_decref(j);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(chains_as_columns, result_new, result_free),
		cmocka_unit_test_setup_teardown(boards_answer, result_new, result_free),
		cmocka_unit_test_setup_teardown(odd_chains, result_new, result_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
