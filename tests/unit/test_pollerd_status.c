/* test_pollerd_status — pollerd's hive.status.result, built from canned
 * /summary and /perf-summary answers (tests/unit/fixtures/fw/) the way a
 * job builds it: every body decodes with the table apid uses, and the
 * preset and power rules give the fields below (absent ones left out); a
 * paused miner's "stopped" comes with state_description "paused". */
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
#include "../../pollerd/pollerd.h"
#include "../lib/fwfix.h"
#include "../lib/testlib.h"

static const struct {
	const char *summary, *perf;     /* perf NULL: the miner has no /perf-summary */
	const char *want;               /* these fields, exactly (integers as integers) */
	const char *const absent[6];    /* and these left out */
} cases[] = {
	{ "summary.json", "perf.json",
	  "{\"state\":\"mining\",\"preset\":\"2620\",\"preset_pretty\":\"2620 watt ~ 91 TH\","
	  "\"preset_tuned\":true,\"power_w\":2618,\"power_metered\":true,\"preset_watts\":2620,"
	  "\"fan_duty\":62,\"switcher\":{\"enabled\":true,\"top_preset\":\"3200\","
	  "\"min_preset\":\"1500\"}}",
	  { "state_description", NULL } },
	/* unmetered: the running preset's watts */
	{ "summary_unmetered.json", "perf.json",
	  "{\"power_w\":2620,\"power_metered\":false,\"preset_watts\":2620}", { NULL } },
	/* no current preset: stock clocks, and no estimate of the power */
	{ "summary_unmetered.json", "perf_null.json",
	  "{\"preset\":\"disabled\",\"power_metered\":false,\"switcher\":{\"enabled\":false}}",
	  { "power_w", "preset_watts", "preset_pretty", "preset_tuned", NULL } },
	/* firmware without autotune: the preset is not known */
	{ "summary.json", NULL, "{\"power_w\":2618,\"power_metered\":true}",
	  { "preset", "preset_tuned", "preset_watts", "switcher", NULL } },
};

static void status_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hive_fw_result *sum = tl_fw_fixture(HIVE_FW_SUMMARY, cases[i].summary);
		struct hive_fw_result *perf = NULL;
		struct hive_msg_status_result back;
		struct pollerd_status st;
		json_t *got, *want;
		const char *k;
		json_t *v;

		assert_non_null(sum);
		if (cases[i].perf) {
			perf = tl_fw_fixture(HIVE_FW_PERF_SUMMARY, cases[i].perf);
			assert_non_null(perf);
		}
		pollerd_status_fill(&st, &sum->summary, cases[i].perf ? &perf->perf : NULL);
		/* what hive_worker_done adds */
		st.r.head.job = 7;
		strcpy(st.r.head.mac, "aa:bb:cc:dd:ee:01");
		strcpy(st.r.head.ip, "127.0.0.1");
		st.r.head.latency_ms = 12;
		if (!(got = tl_msg_roundtrip(HIVE_MSG_STATUS_RESULT, &st.r, &back)))
			fail_msg("case %zu: no body apid takes (why: above)", i);
		assert_int_equal(back.n_chains, (size_t)sum->summary.nchains);
		assert_int_equal(back.n_fans, (size_t)sum->summary.nfans);
		hive_msg_free(HIVE_MSG_STATUS_RESULT, &back);

		want = json_loads(cases[i].want, 0, NULL);
		assert_non_null(want);
		json_object_foreach(want, k, v) {
			if (!json_equal(v, json_object_get(got, k))) {
				char *g = json_dumps(json_object_get(got, k), JSON_ENCODE_ANY);

				fail_msg("case %zu: %s: got %s", i, k, g ? g : "(absent)");
			}
		}
		for (int a = 0; cases[i].absent[a]; a++)
			if (json_object_get(got, cases[i].absent[a]))
				fail_msg("case %zu: %s: sent, should be left out", i,
					 cases[i].absent[a]);
		json_decref(want);
		json_decref(got);
		free(sum);
		free(perf);
	}
}

/* summary.json as a paused miner sends it: stopped, "description":"paused". */
static void paused_description(void **state)
{
	struct hive_fw_result *sum = malloc(sizeof(*sum));
	struct pollerd_status st;
	char *text = tl_read_file(TL_FW_FIXTURES "summary.json"), *paused;
	json_t *j, *ms, *got;

	(void)state;
	assert_non_null(sum);
	assert_non_null(text);
	j = json_loads(text, 0, NULL);
	assert_non_null(j);
	ms = json_object_get(json_object_get(j, "miner"), "miner_status");
	assert_non_null(ms);
	json_object_set_new(ms, "miner_state", json_string("stopped"));
	json_object_set_new(ms, "description", json_string("paused"));
	paused = json_dumps(j, JSON_COMPACT);
	assert_non_null(paused);
	memset(sum, 0, sizeof(*sum));
	if (hive_fw_parse(HIVE_FW_SUMMARY, paused, strlen(paused), sum) != 0)
		fail_msg("paused summary: %s", sum->err.msg);
	pollerd_status_fill(&st, &sum->summary, NULL);
	strcpy(st.r.head.mac, "aa:bb:cc:dd:ee:01");
	got = hive_msg_encode(HIVE_MSG_STATUS_RESULT, &st.r);
	assert_non_null(got);
	assert_string_equal(json_string_value(json_object_get(got, "state")), "stopped");
	assert_string_equal(json_string_value(json_object_get(got, "state_description")),
			    "paused");
	json_decref(got);
	json_decref(j);
	free(paused);
	free(text);
	free(sum);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(status_bodies),
		cmocka_unit_test(paused_description),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
