/* test_fw_parse — the firmware client's response parsers, table-driven
 * over canned bodies in tests/unit/fixtures/fw/. Good bodies are checked
 * field by field against the fixture read independently with jansson;
 * broken bodies are made by changing one field of a good one, and must give
 * the right error kind and a message naming the endpoint and the field. */
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
#include "hive/mac.h"
#include "../lib/fwfix.h"

static json_t *fixture_json(const char *name)
{
	char path[256];
	json_error_t e;
	json_t *j;

	snprintf(path, sizeof(path), TL_FW_FIXTURES "%s", name);
	j = json_load_file(path, 0, &e);
	if (!j)
		fail_msg("%s: %s", path, e.text);
	return j;
}

/* Parses body as `call` into a heap result (the chains member is large). */
static struct hive_fw_result *parse(enum hive_fw_call call, const char *body, int *rc)
{
	struct hive_fw_result *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->call = call;
	*rc = hive_fw_parse(call, body, strlen(body), r);
	return r;
}

/* ---------------------------------------------------------------- names */

static void test_err_names(void **state)
{
	static const char *want[] = { "ok", "timeout", "refused", "reset", "http", "auth", "locked",
				      "not_found", "bad_json", "missing_field", "bad_field",
				      "too_large", "internal" };
	enum hive_fw_err_kind k;

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), HIVE_FW_ERR_KINDS);
	for (int i = 0; i < HIVE_FW_ERR_KINDS; i++) {
		assert_string_equal(hive_fw_err_name((enum hive_fw_err_kind)i), want[i]);
		assert_int_equal(hive_fw_err_parse(want[i], &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(hive_fw_err_parse("Timeout", &k), -1);
	assert_int_equal(hive_fw_err_parse(NULL, &k), -1);
	assert_string_equal(hive_fw_err_name((enum hive_fw_err_kind)99), "internal");
	for (int c = 0; c < HIVE_FW_CALLS; c++) {
		assert_non_null(hive_fw_call_name((enum hive_fw_call)c));
		assert_non_null(hive_fw_call_path((enum hive_fw_call)c));
	}
	assert_string_equal(hive_fw_call_path(HIVE_FW_PERF_SUMMARY), "perf-summary");
	assert_string_equal(hive_fw_call_path(HIVE_FW_PRESETS), "autotune/presets");
	assert_string_equal(hive_fw_call_path(HIVE_FW_REBOOT), "system/reboot");
	assert_null(hive_fw_call_name((enum hive_fw_call)HIVE_FW_CALLS));
}

static void test_mac(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "02:1A:2B:3C:4D:5E", "02:1a:2b:3c:4d:5e" },
		{ "02-1a-2b-3c-4d-5e", "02:1a:2b:3c:4d:5e" },
		{ "ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff" },
		{ "02:1A:2B:3C:4D", NULL },
		{ "02:1A:2B:3C:4D:5E:", NULL },
		{ "02:1A-2B:3C:4D:5E", NULL },
		{ "021A2B3C4D5E", NULL },
		{ "g2:1A:2B:3C:4D:5E", NULL },
		{ "2:1A:2B:3C:4D:5E", NULL },
		{ "", NULL },
	};
	char out[18];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = hive_mac_normalise(t[i].in, out);

		if (t[i].out) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, t[i].out);
		} else if (rc != -1) {
			fail_msg("\"%s\" accepted as a MAC", t[i].in);
		}
	}
	assert_int_equal(hive_mac_normalise(NULL, out), -1);
}

/* ---------------------------------------------------------------- presets */

static void test_preset_parse(void **state)
{
	static const struct {
		const char *name, *pretty;
		int watts;
		double th;
		int rc;
	} t[] = {
		{ "2620", "2620 watt ~ 91 TH", 2620, 91, 0 },
		{ "1100", "1100 watt ~ 53 TH", 1100, 53, 0 },
		{ "disabled", "disabled", -1, -1, -1 },
		{ "disabled", NULL, -1, -1, -1 },
		{ NULL, NULL, -1, -1, -1 },
		{ "garbage", "no numbers here", -1, -1, -1 },
		{ "", "", -1, -1, -1 },
		{ NULL, "3200 watt ~ 102 TH", 3200, 102, 0 },
		{ "1740", NULL, 1740, -1, -1 },
		{ "1740", "1740 watt", 1740, -1, -1 },
		{ "2620", "2620 watt ~ 91.5 TH", 2620, 91.5, 0 },
		{ "6084", "6084 W ~ 200 TH/s", 6084, 200, 0 },
		{ "x", "~91TH at 2620W", 2620, 91, 0 },
		{ "0", "0 watt ~ 0 TH", -1, -1, -1 },
		{ "12.5", "abc", -1, -1, -1 },
		{ "2620w", "", -1, -1, -1 },
		{ "-2620", "-2620 watt ~ -91 TH", 2620, 91, 0 }, /* the sign is not part of it */
		{ "99999999", "99999999 watt ~ 999999999 TH", -1, -1, -1 },
		{ "1e3", "1e3 watt ~ 1e2 TH", -1, -1, -1 },
		{ "3350", "3350 watt ~ 105 TH (modded PSU)", 3350, 105, 0 },
		{ "3350", "3350 wattage 105 thousand", 3350, -1, -1 },
		{ "2620", "2700 watt ~ 91 TH", 2620, 91, 0 }, /* the name wins */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int w = 7;
		double th = 7;
		int rc = hive_fw_preset_parse(t[i].name, t[i].pretty, &w, &th);

		if (rc != t[i].rc || w != t[i].watts || th != t[i].th)
			fail_msg("case %zu (\"%s\", \"%s\"): rc %d watts %d th %g, want %d %d %g", i,
				 t[i].name ? t[i].name : "NULL", t[i].pretty ? t[i].pretty : "NULL",
				 rc, w, th, t[i].rc, t[i].watts, t[i].th);
		assert_true(w != 0 && th != 0);
	}
}

static void test_presets(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_PRESETS, "presets_s19.json");
	json_t *fx = fixture_json("presets_s19.json");
	bool sorted = true;

	(void)state;
	assert_non_null(r);
	assert_int_equal(r->presets.n, (int)json_array_size(fx));
	assert_int_equal(r->presets.n, 16);
	assert_string_equal(r->presets.p[0].name, "disabled");
	assert_int_equal(r->presets.p[0].watts, -1);
	assert_true(r->presets.p[0].th < 0);
	for (int i = 0; i < r->presets.n; i++) {
		json_t *e = json_array_get(fx, (size_t)i);
		const struct hive_fw_preset *p = &r->presets.p[i];

		/* order as listed */
		assert_string_equal(p->name, json_string_value(json_object_get(e, "name")));
		assert_string_equal(p->pretty, json_string_value(json_object_get(e, "pretty")));
		assert_int_equal(p->tuned, strcmp(json_string_value(json_object_get(e, "status")),
						  "tuned") == 0);
		assert_int_equal(p->modded_psu_required,
				 json_is_true(json_object_get(e, "modded_psu_required")));
		if (i > 0) {
			int w;
			double th;

			assert_int_equal(p->watts, atoi(p->name));
			assert_int_equal(sscanf(p->pretty, "%d watt ~ %lf TH", &w, &th), 2);
			assert_int_equal(p->watts, w);
			assert_true(p->th == th);
			if (i > 1 && p->watts < r->presets.p[i - 1].watts)
				sorted = false;
		}
	}
	assert_false(sorted); /* the fixture is shuffled: nothing may sort it */
	/* the S19 ladder: 2620 W is 91 TH wherever it is listed */
	for (int i = 0; i < r->presets.n; i++)
		if (strcmp(r->presets.p[i].name, "2620") == 0)
			assert_true(r->presets.p[i].th == 91);
	json_decref(fx);
	free(r);
}

/* ---------------------------------------------------------------- good bodies */

static void test_info(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_INFO, "info.json");

	(void)state;
	assert_non_null(r);
	assert_string_equal(r->info.mac, "02:1a:2b:3c:4d:5e");
	assert_string_equal(r->info.ip, "127.78.0.10");
	assert_string_equal(r->info.model, "s19");
	assert_string_equal(r->info.miner, "Antminer S19");
	assert_string_equal(r->info.fw_name, "Vnish");
	assert_string_equal(r->info.fw_version, "1.2.6");
	assert_string_equal(r->info.serial, "N/A");
	assert_string_equal(r->info.hostname, "Antminer");
	assert_string_equal(r->info.uptime, "3 days, 4:05");
	assert_string_equal(r->info.platform, "aml");
	free(r);
}

static void test_model(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_MODEL, "model_s19.json");
	json_t *fx = fixture_json("model_s19.json");
	json_t *grid = json_object_get(json_object_get(json_object_get(fx, "chain"), "topology"), "chips");
	int empty = 0;

	(void)state;
	assert_non_null(r);
	assert_string_equal(r->model.full_name, "Antminer S19");
	assert_string_equal(r->model.model, "s19");
	assert_string_equal(r->model.series, "x19");
	assert_int_equal(r->model.num_chains, 3);
	assert_int_equal(r->model.chips_per_chain, 76);
	assert_int_equal(r->model.chips_per_domain, 2);
	assert_int_equal(r->model.topo_rows, 4);
	assert_int_equal(r->model.topo_cols, 19);
	for (int row = 0; row < 4; row++)
		for (int col = 0; col < 19; col++) {
			json_t *cell = json_array_get(json_array_get(grid, (size_t)row), (size_t)col);

			assert_int_equal(r->model.topo_chips[row * 19 + col], json_integer_value(cell));
			empty += r->model.topo_chips[row * 19 + col] == -1;
		}
	assert_int_equal(empty, 1);
	assert_int_equal(r->model.cooling.min_fan_pwm, 10);
	assert_int_equal(r->model.cooling.max_target_temp, 90);
	assert_int_equal(r->model.cooling.fan_min_count_default, 4);
	assert_int_equal(r->model.overclock.default_voltage, 13800);
	assert_int_equal(r->model.overclock.max_voltage_stock_psu, 14500);
	assert_int_equal(r->model.overclock.warn_freq, 800);
	json_decref(fx);
	free(r);
}

static void test_status(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_STATUS, "status.json");

	(void)state;
	assert_non_null(r);
	assert_string_equal(r->status.miner_state, "mining");
	assert_int_equal(r->status.miner_state_time, 5321);
	assert_false(r->status.restart_required);
	free(r);
	r = parse(HIVE_FW_STATUS, "{\"miner_state\":\"failure\",\"miner_state_time\":3,"
		  "\"description\":\"chain 2 lost\",\"failure_code\":7,\"restart_required\":true}",
		  &(int){ 0 });
	assert_int_equal(r->err.kind, HIVE_FW_OK);
	assert_string_equal(r->status.description, "chain 2 lost");
	assert_int_equal(r->status.failure_code, 7);
	assert_true(r->status.restart_required);
	free(r);
}

static void test_summary(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_SUMMARY, "summary.json");
	const struct hive_fw_summary *s;

	(void)state;
	assert_non_null(r);
	s = &r->summary;
	assert_string_equal(s->state, "mining");
	assert_int_equal(s->state_time, 5321);
	assert_true(s->hr_realtime == 90812.5);
	assert_true(s->hr_average == 90500.25);
	assert_true(s->hr_nominal == 91000.0);
	assert_int_equal(s->pcb_temp_min, 48);
	assert_int_equal(s->pcb_temp_max, 63);
	assert_int_equal(s->chip_temp_min, 55);
	assert_int_equal(s->chip_temp_max, 73);
	assert_int_equal(s->power_consumption, 2618);
	assert_true(s->efficiency == 28.8);
	assert_int_equal(s->hw_errors, 42);
	assert_int_equal(s->fan_duty, 62);
	assert_int_equal(s->nfans, 4);
	assert_int_equal(s->fans[1].rpm, 4210);
	assert_int_equal(s->fans[1].max_rpm, 6000);
	assert_true(s->fans[0].ok);
	assert_false(s->fans[3].ok);
	/* DevFee is not one of the farm's pools */
	assert_int_equal(s->pools.total, 2);
	assert_int_equal(s->pools.working, 2);
	assert_int_equal(s->pools.accepted, 1210);
	assert_int_equal(s->pools.rejected, 3);
	assert_int_equal(s->pools.stale, 1);
	assert_string_equal(s->pools.url, "stratum+tcp://pool.invalid:3333");
	assert_string_equal(s->pools.user, "farm.s19");
	assert_int_equal(s->nchains, 3);
	for (int i = 0; i < 3; i++) {
		const struct hive_fw_chain_summary *c = &s->chains[i];

		assert_int_equal(c->id, i + 1);
		assert_true(c->frequency == 675.5);
		assert_int_equal(c->voltage, 13800);
		assert_int_equal(c->power, 1080);
		assert_true(c->hashrate_ideal == 31000.0);
		assert_int_equal(c->hw_errors, 13 + i);
		assert_int_equal(c->pcb_temp_max, 61 + i);
		assert_int_equal(c->chip_temp_min, 55);
		assert_int_equal(c->chip_temp_max, 71 + i);
		assert_int_equal(c->red, 0);
		assert_int_equal(c->orange, i);
		assert_int_equal(c->grey, 1);
		assert_string_equal(c->state, "mining");
	}
	assert_true(s->chains[1].hashrate_rt == 30250.5);
	free(r);

	r = tl_fw_fixture(HIVE_FW_SUMMARY, "summary_unmetered.json");
	assert_non_null(r);
	assert_int_equal(r->summary.power_consumption, 0);
	assert_int_equal(r->summary.fan_duty, -1);
	assert_int_equal(r->summary.nfans, 0);
	assert_int_equal(r->summary.pools.total, 0);
	assert_string_equal(r->summary.pools.url, "");
	free(r);
}

static void test_perf(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_PERF_SUMMARY, "perf.json");
	int rc;

	(void)state;
	assert_non_null(r);
	assert_true(r->perf.has_preset);
	assert_string_equal(r->perf.preset, "2620");
	assert_string_equal(r->perf.preset_pretty, "2620 watt ~ 91 TH");
	assert_true(r->perf.preset_tuned);
	assert_int_equal(r->perf.preset_watts, 2620);
	assert_true(r->perf.preset_th == 91);
	assert_true(r->perf.has_switcher);
	assert_true(r->perf.switcher_enabled);
	assert_string_equal(r->perf.top_preset, "3200");
	assert_string_equal(r->perf.min_preset, "1500");
	assert_int_equal(r->perf.power_delta, 100);
	free(r);

	r = tl_fw_fixture(HIVE_FW_PERF_SUMMARY, "perf_null.json");
	assert_non_null(r);
	assert_false(r->perf.has_preset);
	assert_string_equal(r->perf.preset, "");
	assert_int_equal(r->perf.preset_watts, -1);
	assert_true(r->perf.has_switcher);
	assert_false(r->perf.switcher_enabled);
	assert_string_equal(r->perf.top_preset, "");
	free(r);

	/* absent entirely */
	r = parse(HIVE_FW_PERF_SUMMARY, "{}", &rc);
	assert_int_equal(rc, 0);
	assert_false(r->perf.has_preset);
	assert_false(r->perf.has_switcher);
	free(r);

	r = parse(HIVE_FW_PERF_SUMMARY, "{\"current_preset\":{\"name\":\"disabled\",\"pretty\":\"disabled\"}}", &rc);
	assert_int_equal(rc, 0);
	assert_true(r->perf.has_preset);
	assert_string_equal(r->perf.preset, "disabled");
	assert_int_equal(r->perf.preset_watts, -1);
	assert_true(r->perf.preset_th < 0);
	free(r);
}

static char grade_of(const char *g)
{
	return strcmp(g, "red") == 0 ? 'r' : strcmp(g, "orange") == 0 ? 'o' :
	       strcmp(g, "grey") == 0 ? 'g' : '?';
}

static void check_chains(const struct hive_fw_chains *ch, const json_t *arr)
{
	assert_int_equal(ch->nchains, (int)json_array_size(arr));
	for (int i = 0; i < ch->nchains; i++) {
		const json_t *jc = json_array_get(arr, (size_t)i);
		const json_t *chips = json_object_get(jc, "chips");
		const struct hive_fw_chain *c = &ch->chains[i];

		assert_int_equal(c->id, json_integer_value(json_object_get(jc, "id")));
		assert_true(c->hr_realtime == json_number_value(json_object_get(jc, "hr_realtime")));
		assert_true(c->freq == json_number_value(json_object_get(jc, "freq")));
		assert_string_equal(c->state, "mining");
		assert_int_equal(c->nchips, (int)json_array_size(chips));
		for (int k = 0; k < c->nchips; k++) {
			const json_t *j = json_array_get(chips, (size_t)k);
			const struct hive_fw_chip *p = &c->chips[k];

			assert_int_equal(p->id, json_integer_value(json_object_get(j, "id")));
			assert_true(p->hr == (float)json_number_value(json_object_get(j, "hr")));
			assert_true(p->temp == (float)json_number_value(json_object_get(j, "temp")));
			assert_int_equal(p->freq, json_integer_value(json_object_get(j, "freq")));
			assert_int_equal(p->volt, json_integer_value(json_object_get(j, "volt")));
			assert_int_equal(p->errs, json_integer_value(json_object_get(j, "errs")));
			assert_int_equal(p->grade, grade_of(json_string_value(json_object_get(j, "grade"))));
			assert_int_equal(p->throttled, json_is_true(json_object_get(j, "throttled")));
		}
	}
}

static void test_chains(void **state)
{
	struct hive_fw_result *r = tl_fw_fixture(HIVE_FW_CHAINS, "chains_s19.json");
	json_t *fx = fixture_json("chains_s19.json");
	int rc, throttled = 0;

	(void)state;
	assert_non_null(r);
	assert_false(r->chains.boards);
	assert_int_equal(r->chains.nchains, 3);
	check_chains(&r->chains, fx);
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < r->chains.chains[i].nchips; k++)
			throttled += r->chains.chains[i].chips[k].throttled;
	assert_int_equal(throttled, 3);
	json_decref(fx);
	free(r);

	r = tl_fw_fixture(HIVE_FW_BOARDS, "boards.json");
	assert_non_null(r);
	fx = fixture_json("boards.json");
	assert_true(r->chains.boards);
	check_chains(&r->chains, json_object_get(fx, "boards"));
	free(r);

	/* /boards as a bare array too */
	{
		char *s = json_dumps(json_object_get(fx, "boards"), 0);

		r = parse(HIVE_FW_BOARDS, s, &rc);
		assert_int_equal(rc, 0);
		check_chains(&r->chains, json_object_get(fx, "boards"));
		free(s);
		free(r);
	}
	json_decref(fx);

	/* shortly after boot: chains with no chips, zeros */
	r = parse(HIVE_FW_CHAINS, "[{\"id\":1,\"hr_realtime\":0,\"chips\":[]},{\"id\":2,"
		  "\"hr_realtime\":0.0,\"chips\":[{\"id\":1,\"hr\":0,"
		  "\"freq\":0,\"volt\":0,\"temp\":0,\"errs\":0}]}]", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(r->chains.nchains, 2);
	assert_int_equal(r->chains.chains[0].nchips, 0);
	assert_int_equal(r->chains.chains[1].chips[0].grade, '?');
	assert_false(r->chains.chains[1].chips[0].throttled);
	free(r);
}

static void test_credentials(void **state)
{
	struct hive_fw_result *r;
	int rc;

	(void)state;
	r = tl_fw_fixture(HIVE_FW_APIKEYS, "apikeys.json");
	assert_non_null(r);
	assert_int_equal(r->apikeys.n, 2);
	assert_int_equal(r->apikeys.total, 2);
	assert_string_equal(r->apikeys.k[0].key, "0123456789abcdef0123456789abcdef");
	assert_string_equal(r->apikeys.k[0].description, "PowerHive");
	assert_string_equal(r->apikeys.k[1].description, "someone else");
	free(r);

	r = parse(HIVE_FW_APIKEYS, "[]", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(r->apikeys.n, 0);
	free(r);

	r = tl_fw_fixture(HIVE_FW_UNLOCK, "unlock.json");
	assert_non_null(r);
	assert_string_equal(r->unlock.token, "eyJhbGciOiJIUzI1NiJ9.c2ltdWxhdGVk.c2lnbmF0dXJl");
	free(r);

	r = tl_fw_fixture(HIVE_FW_SET_PRESET, "settings.json");
	assert_non_null(r);
	assert_true(r->settings.restart_required);
	assert_false(r->settings.reboot_required);
	free(r);
	r = parse(HIVE_FW_SET_PRESET, "", &rc);
	assert_int_equal(rc, 0);
	assert_false(r->settings.restart_required);
	free(r);

	r = tl_fw_fixture(HIVE_FW_REBOOT, "reboot.json");
	assert_non_null(r);
	assert_int_equal(r->reboot.after, 3);
	free(r);
	r = parse(HIVE_FW_REBOOT, " \n", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(r->reboot.after, -1);
	free(r);

	/* calls with nothing to read take any 2xx body */
	r = parse(HIVE_FW_MINING_RESTART, "", &rc);
	assert_int_equal(rc, 0);
	free(r);
	r = parse(HIVE_FW_APIKEY_CREATE, "{\"status\":\"inserted\"}", &rc);
	assert_int_equal(rc, 0);
	free(r);
}

/* ---------------------------------------------------------------- broken bodies */

/* Sets (or deletes, when value is NULL) the member at a path like
 * "miner.chains[1].hashrate_rt" in doc. */
static void mutate(json_t *doc, const char *path, json_t *value)
{
	char buf[256], *save = NULL, *tok;
	json_t *cur = doc;
	char last[64] = "";
	long idx = -1;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		char *br = strchr(tok, '[');
		bool final = !save || !*save;

		if (br)
			*br = '\0';
		if (*tok) {
			if (final && !br) {
				snprintf(last, sizeof(last), "%s", tok);
				break;
			}
			cur = json_object_get(cur, tok);
		}
		while (br) {
			char *end;
			long i = strtol(br + 1, &end, 10);

			br = strchr(end, '[');
			if (final && !br) {
				idx = i;
				break;
			}
			cur = json_array_get(cur, (size_t)i);
		}
		if (final)
			break;
	}
	if (!cur)
		fail_msg("mutate: no %s", path);
	if (last[0]) {
		if (value)
			json_object_set_new(cur, last, value);
		else
			json_object_del(cur, last);
	} else {
		if (value)
			json_array_set_new(cur, (size_t)idx, value);
		else
			json_array_remove(cur, (size_t)idx);
	}
}

#define DEL NULL
static const struct bad_case {
	enum hive_fw_call call;
	const char *fixture;  /* NULL: body is the whole body */
	const char *path;
	const char *value;    /* JSON text, or DEL */
	enum hive_fw_err_kind kind;
	const char *msg;      /* the whole message */
} bad[] = {
	/* info */
	{ HIVE_FW_INFO, NULL, "", "", HIVE_FW_ERR_BAD_JSON, "info: empty body" },
	{ HIVE_FW_INFO, NULL, "", "<html><body>Bitmain</body></html>", HIVE_FW_ERR_BAD_JSON, NULL },
	{ HIVE_FW_INFO, NULL, "", "[]", HIVE_FW_ERR_BAD_FIELD, "info: expected object, got array" },
	{ HIVE_FW_INFO, NULL, "", "{\"miner\":\"x\"", HIVE_FW_ERR_BAD_JSON, NULL },
	{ HIVE_FW_INFO, "info.json", "system.network_status.mac", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "info: system.network_status.mac: missing" },
	{ HIVE_FW_INFO, "info.json", "system.network_status.mac", "null", HIVE_FW_ERR_MISSING_FIELD,
	  "info: system.network_status.mac: null" },
	{ HIVE_FW_INFO, "info.json", "system.network_status.mac", "\"02:1A:2B\"", HIVE_FW_ERR_BAD_FIELD,
	  "info: system.network_status.mac: not a MAC address" },
	{ HIVE_FW_INFO, "info.json", "system.network_status.ip", "\"farm-router\"", HIVE_FW_ERR_BAD_FIELD,
	  "info: system.network_status.ip: not an IP address" },
	{ HIVE_FW_INFO, "info.json", "model", "19", HIVE_FW_ERR_BAD_FIELD,
	  "info: model: expected string, got integer" },
	{ HIVE_FW_INFO, "info.json", "system", DEL, HIVE_FW_ERR_MISSING_FIELD, "info: system: missing" },
	{ HIVE_FW_INFO, "info.json", "system.network_status", "[]", HIVE_FW_ERR_BAD_FIELD,
	  "info: system.network_status: expected object, got array" },
	{ HIVE_FW_INFO, "info.json", "system.uptime", "12345", HIVE_FW_ERR_BAD_FIELD,
	  "info: system.uptime: expected string, got integer" },
	{ HIVE_FW_INFO, "info.json", "serial", DEL, HIVE_FW_OK, NULL },
	{ HIVE_FW_INFO, "info.json", "build_uuid", "{\"x\":[1,2,3]}", HIVE_FW_OK, NULL },
	/* model */
	{ HIVE_FW_MODEL, "model_s19.json", "chain.num_chains", "\"3\"", HIVE_FW_ERR_BAD_FIELD,
	  "model: chain.num_chains: expected integer, got string" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.num_chains", "0", HIVE_FW_ERR_BAD_FIELD,
	  "model: chain.num_chains: 0 not in [1, 64]" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.chips_per_chain", "null", HIVE_FW_ERR_MISSING_FIELD,
	  "model: chain.chips_per_chain: null" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.topology.num_rows", "5", HIVE_FW_ERR_BAD_FIELD,
	  "model: chain.topology.chips: 4 rows, num_rows says 5" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.topology.chips[2][3]", "\"7\"", HIVE_FW_ERR_BAD_FIELD,
	  "model: chain.topology.chips[2][3]: expected integer, got string" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.topology.chips[1]", "[1,2]", HIVE_FW_ERR_BAD_FIELD,
	  "model: chain.topology.chips[1]: 2 columns, num_cols says 19" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.topology.num_cols", "1000", HIVE_FW_ERR_BAD_FIELD,
	  "model: chain.topology.num_rows: 4 x 1000 chips, at most 1024" },
	{ HIVE_FW_MODEL, "model_s19.json", "chain.topology", DEL, HIVE_FW_OK, NULL },
	{ HIVE_FW_MODEL, "model_s19.json", "overclock.max_freq", "\"1000\"", HIVE_FW_ERR_BAD_FIELD,
	  "model: overclock.max_freq: expected integer, got string" },
	/* status */
	{ HIVE_FW_STATUS, "status.json", "miner_state_time", "\"5321\"", HIVE_FW_ERR_BAD_FIELD,
	  "status: miner_state_time: expected integer, got string" },
	{ HIVE_FW_STATUS, "status.json", "miner_state", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "status: miner_state: missing" },
	{ HIVE_FW_STATUS, "status.json", "unlocked", "\"no\"", HIVE_FW_ERR_BAD_FIELD,
	  "status: unlocked: expected boolean, got string" },
	/* summary */
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chip_temp.max", "\"73\"", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.chip_temp.max: expected integer, got string" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.hr_realtime", "null", HIVE_FW_ERR_MISSING_FIELD,
	  "summary: miner.hr_realtime: null" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.hr_average", "\"90500.25\"", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.hr_average: expected number, got string" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.power_consumption", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "summary: miner.power_consumption: missing" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.power_consumption", "-5", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.power_consumption: negative" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chains[1].hashrate_rt", "\"x\"", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.chains[1].hashrate_rt: expected number, got string" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chains[2].id", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "summary: miner.chains[2].id: missing" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chains[0].chip_statuses.red", "\"0\"",
	  HIVE_FW_ERR_BAD_FIELD, "summary: miner.chains[0].chip_statuses.red: expected integer, got string" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chains[0]", "7", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.chains[0]: expected object, got integer" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.cooling.fans[2].rpm", "\"4220\"", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.cooling.fans[2].rpm: expected integer, got string" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.pools[0].accepted", "\"1200\"", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.pools[0].accepted: expected integer, got string" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.miner_status", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "summary: miner.miner_status: missing" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.miner_status.miner_state", "null",
	  HIVE_FW_ERR_MISSING_FIELD, "summary: miner.miner_status.miner_state: null" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chains", "{}", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.chains: expected array, got object" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.pcb_temp", "{\"min\":48}", HIVE_FW_ERR_MISSING_FIELD,
	  "summary: miner.pcb_temp.max: missing" },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.psu", DEL, HIVE_FW_OK, NULL },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chip_temp.max", "73.6", HIVE_FW_OK, NULL },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.hr_realtime", "90812", HIVE_FW_OK, NULL },
	{ HIVE_FW_SUMMARY, "summary.json", "miner.chip_temp.max", "1e300", HIVE_FW_ERR_BAD_FIELD,
	  "summary: miner.chip_temp.max: out of range" },
	{ HIVE_FW_SUMMARY, NULL, "", "{\"miner\":{\"miner_status\":{\"miner_state\":\"mining\"", HIVE_FW_ERR_BAD_JSON, NULL },
	{ HIVE_FW_SUMMARY, NULL, "", "{\"miner\":null}", HIVE_FW_ERR_MISSING_FIELD, "summary: miner: null" },
	/* perf-summary */
	{ HIVE_FW_PERF_SUMMARY, "perf.json", "current_preset.name", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "perf-summary: current_preset.name: missing" },
	{ HIVE_FW_PERF_SUMMARY, "perf.json", "current_preset.name", "2620", HIVE_FW_ERR_BAD_FIELD,
	  "perf-summary: current_preset.name: expected string, got integer" },
	{ HIVE_FW_PERF_SUMMARY, "perf.json", "preset_switcher.enabled", "\"yes\"", HIVE_FW_ERR_BAD_FIELD,
	  "perf-summary: preset_switcher.enabled: expected boolean, got string" },
	{ HIVE_FW_PERF_SUMMARY, "perf.json", "current_preset", "\"2620\"", HIVE_FW_ERR_BAD_FIELD,
	  "perf-summary: current_preset: expected object, got string" },
	{ HIVE_FW_PERF_SUMMARY, "perf.json", "preset_switcher.top_preset", "null", HIVE_FW_OK, NULL },
	/* chains */
	{ HIVE_FW_CHAINS, "chains_s19.json", "[0].chips[5].temp", "\"61.5\"", HIVE_FW_ERR_BAD_FIELD,
	  "chains: [0].chips[5].temp: expected number, got string" },
	{ HIVE_FW_CHAINS, "chains_s19.json", "[2].chips[75].hr", "null", HIVE_FW_ERR_MISSING_FIELD,
	  "chains: [2].chips[75].hr: null" },
	{ HIVE_FW_CHAINS, "chains_s19.json", "[1].hr_realtime", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "chains: [1].hr_realtime: missing" },
	{ HIVE_FW_CHAINS, "chains_s19.json", "[1].chips", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "chains: [1].chips: missing" },
	{ HIVE_FW_CHAINS, "chains_s19.json", "[1].status.state", "3", HIVE_FW_ERR_BAD_FIELD,
	  "chains: [1].status.state: expected string, got integer" },
	{ HIVE_FW_CHAINS, "chains_s19.json", "[0].chips[0].grade", "\"violet\"", HIVE_FW_OK, NULL },
	{ HIVE_FW_CHAINS, NULL, "", "{\"chains\":[]}", HIVE_FW_ERR_BAD_FIELD,
	  "chains: expected array, got object" },
	{ HIVE_FW_CHAINS, NULL, "", "[1,2,3,4,5,6,7]", HIVE_FW_ERR_BAD_FIELD,
	  "chains: 7 chains, at most 6" },
	{ HIVE_FW_BOARDS, NULL, "", "{\"boards\":null}", HIVE_FW_ERR_MISSING_FIELD, "boards: boards: null" },
	{ HIVE_FW_BOARDS, "boards.json", "boards[1].chips[0].volt", "\"13800\"", HIVE_FW_ERR_BAD_FIELD,
	  "boards: boards[1].chips[0].volt: expected integer, got string" },
	/* presets */
	{ HIVE_FW_PRESETS, "presets_s19.json", "[2].name", DEL, HIVE_FW_ERR_MISSING_FIELD,
	  "autotune/presets: [2].name: missing" },
	{ HIVE_FW_PRESETS, "presets_s19.json", "[3].name", "2620", HIVE_FW_ERR_BAD_FIELD,
	  "autotune/presets: [3].name: expected string, got integer" },
	{ HIVE_FW_PRESETS, "presets_s19.json", "[3].name", "\"\"", HIVE_FW_ERR_BAD_FIELD,
	  "autotune/presets: [3].name: empty" },
	{ HIVE_FW_PRESETS, "presets_s19.json", "[4].pretty", "\"whatever\"", HIVE_FW_OK, NULL },
	{ HIVE_FW_PRESETS, NULL, "", "{\"presets\":[]}", HIVE_FW_ERR_BAD_FIELD,
	  "autotune/presets: expected array, got object" },
	/* credentials, settings, reboot */
	{ HIVE_FW_UNLOCK, NULL, "", "{}", HIVE_FW_ERR_MISSING_FIELD, "unlock: token: missing" },
	{ HIVE_FW_UNLOCK, NULL, "", "{\"token\":42}", HIVE_FW_ERR_BAD_FIELD,
	  "unlock: token: expected string, got integer" },
	{ HIVE_FW_UNLOCK, NULL, "", "{\"token\":\"\"}", HIVE_FW_ERR_BAD_FIELD, "unlock: token: empty" },
	{ HIVE_FW_APIKEYS, NULL, "", "[{\"description\":\"PowerHive\"}]", HIVE_FW_ERR_MISSING_FIELD,
	  "apikeys: [0].key: missing" },
	{ HIVE_FW_APIKEYS, NULL, "", "[\"0123\"]", HIVE_FW_ERR_BAD_FIELD,
	  "apikeys: [0]: expected object, got string" },
	{ HIVE_FW_SET_PRESET, NULL, "", "{\"restart_required\":\"true\"}", HIVE_FW_ERR_BAD_FIELD,
	  "settings: restart_required: expected boolean, got string" },
	{ HIVE_FW_SET_PRESET, NULL, "", "not json", HIVE_FW_ERR_BAD_JSON, NULL },
	{ HIVE_FW_SET_PRESET, NULL, "", "{\"reboot_required\":false}", HIVE_FW_ERR_MISSING_FIELD,
	  "settings: restart_required: missing" },
	{ HIVE_FW_REBOOT, NULL, "", "{}", HIVE_FW_ERR_MISSING_FIELD, "system/reboot: after: missing" },
	{ HIVE_FW_REBOOT, NULL, "", "{\"after\":null}", HIVE_FW_ERR_MISSING_FIELD,
	  "system/reboot: after: null" },
	{ HIVE_FW_REBOOT, NULL, "", "{\"after\":\"3\"}", HIVE_FW_ERR_BAD_FIELD,
	  "system/reboot: after: expected integer, got string" },
	{ HIVE_FW_REBOOT, NULL, "", "{\"after\":-3}", HIVE_FW_ERR_BAD_FIELD,
	  "system/reboot: after: -3 not in [0, 86400]" },
};

static void test_bad_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_case *t = &bad[i];
		char *body;
		struct hive_fw_result *r;
		int rc;

		if (t->fixture) {
			json_t *doc = fixture_json(t->fixture);
			json_t *v = NULL;

			if (t->value && !(v = json_loads(t->value, JSON_DECODE_ANY, NULL)))
				fail_msg("case %zu: bad value %s", i, t->value);
			mutate(doc, t->path, v);
			body = json_dumps(doc, 0);
			json_decref(doc);
		} else {
			body = strdup(t->value);
		}
		r = parse(t->call, body, &rc);
		if (r->err.kind != t->kind || rc != (t->kind == HIVE_FW_OK ? 0 : -1))
			fail_msg("case %zu (%s %s): got %s \"%s\", want %s", i,
				 hive_fw_call_name(t->call), t->path, hive_fw_err_name(r->err.kind),
				 r->err.msg, hive_fw_err_name(t->kind));
		if (t->msg && strcmp(r->err.msg, t->msg) != 0)
			fail_msg("case %zu: message \"%s\", want \"%s\"", i, r->err.msg, t->msg);
		if (t->kind != HIVE_FW_OK && strncmp(r->err.msg, r->err.endpoint,
						     strlen(r->err.endpoint)) != 0)
			fail_msg("case %zu: message \"%s\" does not start with the endpoint", i,
				 r->err.msg);
		free(body);
		free(r);
	}
}

/* Long strings: identifiers that do not fit are errors, descriptions are cut. */
static void test_long_strings(void **state)
{
	json_t *doc = fixture_json("info.json");
	char big[600], *body;
	struct hive_fw_result *r;
	int rc;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(json_object_get(json_object_get(doc, "system"), "network_status"),
			    "hostname", json_string(big));
	body = json_dumps(doc, 0);
	r = parse(HIVE_FW_INFO, body, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(r->info.hostname), HIVE_FW_TEXT_LEN - 1);
	free(body);
	free(r);

	json_object_set_new(doc, "model", json_string(big));
	body = json_dumps(doc, 0);
	r = parse(HIVE_FW_INFO, body, &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(r->err.kind, HIVE_FW_ERR_BAD_FIELD);
	assert_string_equal(r->err.msg, "info: model: longer than 31 characters");
	free(body);
	free(r);

	/* a UTF-8 sequence is not cut in half */
	json_object_set_new(doc, "model", json_string("s19"));
	{
		char utf[200] = "";

		for (int i = 0; i < 40; i++)
			strcat(utf, "\xc3\xa9"); /* é */
		json_object_set_new(doc, "miner", json_string(utf));
	}
	body = json_dumps(doc, 0);
	r = parse(HIVE_FW_INFO, body, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(r->info.miner) % 2, 0);
	assert_int_equal(strlen(r->info.miner), HIVE_FW_TEXT_LEN - 2);
	free(body);
	free(r);
	json_decref(doc);
}

/* Limits: too many chains/chips/presets, and unusual but valid JSON. */
static void test_limits(void **state)
{
	json_t *arr = json_array(), *chips = json_array(), *chain;
	char *body;
	struct hive_fw_result *r;
	int rc;

	(void)state;
	for (int i = 0; i < HIVE_FW_MAX_CHIPS + 1; i++)
		json_array_append_new(chips, json_pack("{s:i,s:f,s:i,s:i,s:f,s:i}", "id", i + 1, "hr",
						       1.0, "freq", 600, "volt", 13000, "temp", 60.0,
						       "errs", 0));
	chain = json_pack("{s:i,s:f,s:o}", "id", 1, "hr_realtime", 1.0, "chips", chips);
	json_array_append_new(arr, chain);
	body = json_dumps(arr, 0);
	r = parse(HIVE_FW_CHAINS, body, &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(r->err.kind, HIVE_FW_ERR_BAD_FIELD);
	assert_string_equal(r->err.msg, "chains: [0].chips: 257 entries, at most 256");
	free(body);
	free(r);
	/* exactly the maximum is fine */
	json_array_remove(chips, 0);
	body = json_dumps(arr, 0);
	r = parse(HIVE_FW_CHAINS, body, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(r->chains.chains[0].nchips, HIVE_FW_MAX_CHIPS);
	free(body);
	free(r);
	json_decref(arr);

	arr = json_array();
	for (int i = 0; i < HIVE_FW_MAX_PRESETS + 1; i++)
		json_array_append_new(arr, json_pack("{s:s}", "name", "1100"));
	body = json_dumps(arr, 0);
	r = parse(HIVE_FW_PRESETS, body, &rc);
	assert_int_equal(r->err.kind, HIVE_FW_ERR_BAD_FIELD);
	free(body);
	free(r);
	json_decref(arr);

	/* a key too long to keep is skipped, and counted */
	r = parse(HIVE_FW_APIKEYS, "[{\"key\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\"},"
		  "{\"key\":\"00112233445566778899aabbccddeeff\"}]", &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(r->apikeys.total, 2);
	assert_int_equal(r->apikeys.n, 1);
	assert_string_equal(r->apikeys.k[0].key, "00112233445566778899aabbccddeeff");
	free(r);

	/* bodies that are not NUL-terminated are read only up to len */
	{
		const char txt[] = "{\"token\":\"abc\"}GARBAGE";
		struct hive_fw_unlock u;
		struct hive_fw_err e;

		assert_int_equal(hive_fw_parse_unlock(txt, 15, &u, &e), 0);
		assert_string_equal(u.token, "abc");
		assert_int_equal(hive_fw_parse_unlock(txt, sizeof(txt) - 1, &u, &e), -1);
		assert_int_equal(e.kind, HIVE_FW_ERR_BAD_JSON);
	}
}

/* fw_parse.c reads JSON itself (jansson's tree is too slow for /chains):
 * it must accept exactly what jansson accepts. The fuzzer compares the two
 * on random input; these are the edges written down. */
static void test_json_reader(void **state)
{
	static const char *const bodies[] = {
		"[]", "[1]", "[-0]", "[01]", "[1.]", "[.5]", "[-]", "[1e5]", "[1E+5]", "[1e]",
		"[9223372036854775807]", "[9223372036854775808]", "[-9223372036854775808]",
		"[-9223372036854775809]", "[1e308]", "[1e309]", "[-1e309]", "[1e-400]", "[4.9e-324]",
		"[\"\\u0000\"]", "[\"\\u0001\"]", "[\"\\ud800\"]", "[\"\\udc00\"]",
		"[\"\\ud83d\\ude00\"]", "[\"\\ud83d\\u0041\"]", "[\"\\ud83dx\"]",
		"[\"\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]",
		"[\"\xe0\x80\x80\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\xc0\x80\"]", "[\x80]",
		"[\"a\\qb\"]", "[\"\\/\"]", "[true]", "[tru]", "[truex]", "[null ]", " [ ] ", "[] x",
		"{}", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[1,]", "[,1]", "{\"a\":1,\"a\":2}",
		"\"str\"", "1", "[\"\t\"]", "[1 2]", "[\"a\"\"b\"]", "[\f]", "[\"abc", "[\"abc\\",
		"[\"\\u12\"]", "[1e+]", "[-01]", "[-1.5e-3]", "[\"\\udbff\\udfff\"]",
	};
	char *deep;
	struct hive_fw_result *r;
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_t *j = json_loadb(bodies[i], strlen(bodies[i]), 0, NULL);

		r = parse(HIVE_FW_APIKEYS, bodies[i], &rc);
		if ((j != NULL) != (r->err.kind != HIVE_FW_ERR_BAD_JSON))
			fail_msg("body %zu '%s': jansson %s, fw_parse \"%s\"", i, bodies[i],
				 j ? "accepts" : "refuses", r->err.msg);
		json_decref(j);
		free(r);
	}
	/* 2048 levels, scalars counted, like jansson */
	deep = malloc(2 * 2049 + 2);
	assert_non_null(deep);
	for (int depth = 2047; depth <= 2049; depth++) {
		json_t *j;

		memset(deep, '[', (size_t)depth);
		deep[depth] = '1';
		memset(deep + depth + 1, ']', (size_t)depth);
		deep[2 * depth + 1] = '\0';
		j = json_loadb(deep, strlen(deep), 0, NULL);
		r = parse(HIVE_FW_APIKEYS, deep, &rc);
		assert_int_equal(j != NULL, r->err.kind != HIVE_FW_ERR_BAD_JSON);
		assert_int_equal(j != NULL, depth < 2048);
		json_decref(j);
		free(r);
	}
	free(deep);

	/* escapes decode; the last of duplicate keys wins */
	r = parse(HIVE_FW_APIKEYS, "[{\"key\":\"x\",\"key\":\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\t\","
		  "\"description\":\"a\\u0041\"}]", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(r->apikeys.k[0].key, "\xc3\xa9\xf0\x9f\x98\x80\"\\/\t");
	assert_string_equal(r->apikeys.k[0].description, "aA");
	free(r);
	/* where it broke */
	r = parse(HIVE_FW_INFO, "{\n  \"miner\": \"S19\",\n  \"model\": s19\n}", &rc);
	assert_int_equal(r->err.kind, HIVE_FW_ERR_BAD_JSON);
	assert_string_equal(r->err.msg, "info: invalid JSON at line 3 column 12: invalid token");
	free(r);
	/* NUL bytes: refused (jansson would skip them) */
	{
		const char nul[] = "[{\"key\":\"a\"}\0]";
		struct hive_fw_apikeys k;
		struct hive_fw_err e;

		assert_int_equal(hive_fw_parse_apikeys(nul, sizeof(nul) - 1, &k, &e), -1);
		assert_int_equal(e.kind, HIVE_FW_ERR_BAD_JSON);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_preset_parse),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_perf),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_long_strings),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_json_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
