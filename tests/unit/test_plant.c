/* test_plant — libhive's plant module without a plant: power.source
 * parsing (every kind, defaults, every refusal naming its key, unknown keys
 * warned, the api_key never echoed), the manual budget by time of day
 * (wrapping at midnight), the aggregator's document (plant-api.md's
 * example, failed sources, missing fields, bad bodies), register decoding
 * (every type and byte order, negatives, float32 in all four orders), and
 * the bus conversions (source ↔ hive.job.plant, reading → hive.plant.reading). */
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

#include "hive/msg.h"
#include "hive/plant.h"

#define KEY "SECRET-plant-key-42"

/* ---------------------------------------------------------------- source */

struct warned {
	int n;
	char keys[4][64];
};

static void on_warn(const char *key, void *arg)
{
	struct warned *w = arg;

	if (w->n < 4)
		snprintf(w->keys[w->n], sizeof(w->keys[0]), "%s", key);
	w->n++;
}

/* Parses text; 0 / -1 with err. */
static int parse(const char *text, struct hive_plant_source *s, struct warned *w, char *err,
		 size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	int rc;

	if (!j)
		fail_msg("test JSON: %s: %s", text, je.text);
	rc = hive_plant_source_parse(j, s, w ? on_warn : NULL, w, err, errlen);
	json_decref(j);
	return rc;
}

static void source_kinds(void **state)
{
	struct hive_plant_source s;
	struct warned w = { 0 };
	char err[256] = "";

	(void)state;
	assert_int_equal(parse("{\"kind\":\"aggregator\",\"url\":\"http://127.0.0.1:18090/v1/reading\","
			       "\"plant_id\":\"plant-1\",\"api_key\":\"" KEY "\",\"min_confidence\":0.7,"
			       "\"timeout_ms\":2000}", &s, &w, err, sizeof(err)), 0);
	assert_int_equal(s.kind, HIVE_PLANT_AGGREGATOR);
	assert_string_equal(s.url, "http://127.0.0.1:18090/v1/reading");
	assert_string_equal(s.plant_id, "plant-1");
	assert_string_equal(s.api_key, KEY);
	assert_true(s.min_confidence == 0.7);
	assert_int_equal(s.timeout_ms, 2000);
	assert_int_equal(w.n, 0);

	/* defaults; null keeps one */
	assert_int_equal(parse("{\"kind\":\"aggregator\",\"url\":\"https://plant.example/data\","
			       "\"plant_id\":\"p\",\"api_key\":\"k\",\"timeout_ms\":null}", &s, NULL,
			       err, sizeof(err)), 0);
	assert_true(s.min_confidence == 0.8);
	assert_int_equal(s.timeout_ms, 3000);

	assert_int_equal(parse("{\"kind\":\"modbus\",\"host\":\"127.0.0.1\",\"port\":18502,\"unit\":3,"
			       "\"register\":100,\"table\":\"input\",\"type\":\"float32\","
			       "\"byte_order\":\"cdab\",\"scale\":1000,\"timeout_ms\":1500}", &s, &w,
			       err, sizeof(err)), 0);
	assert_int_equal(s.kind, HIVE_PLANT_MODBUS);
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 18502);
	assert_int_equal(s.unit, 3);
	assert_int_equal(s.reg, 100);
	assert_int_equal(s.table, HIVE_MODBUS_INPUT);
	assert_int_equal(s.type, HIVE_MODBUS_FLOAT32);
	assert_int_equal(s.order, HIVE_MODBUS_CDAB);
	assert_true(s.scale == 1000);
	assert_int_equal(s.timeout_ms, 1500);

	assert_int_equal(parse("{\"kind\":\"modbus\",\"host\":\"meter.local\"}", &s, NULL, err,
			       sizeof(err)), 0);
	assert_int_equal(s.port, 502);
	assert_int_equal(s.unit, 1);
	assert_int_equal(s.reg, 0);
	assert_int_equal(s.table, HIVE_MODBUS_HOLDING);
	assert_int_equal(s.type, HIVE_MODBUS_U32);
	assert_int_equal(s.order, HIVE_MODBUS_ABCD);
	assert_true(s.scale == 1);
	assert_int_equal(s.timeout_ms, 3000);
	/* the last register a u16 may sit at */
	assert_int_equal(parse("{\"kind\":\"modbus\",\"host\":\"m\",\"type\":\"u16\",\"register\":65535}",
			       &s, NULL, err, sizeof(err)), 0);

	assert_int_equal(parse("{\"kind\":\"manual\",\"budget_w\":500000}", &s, NULL, err,
			       sizeof(err)), 0);
	assert_int_equal(s.kind, HIVE_PLANT_MANUAL);
	assert_int_equal(s.budget_w, 500000);
	assert_int_equal(s.n_schedule, 0);
	assert_int_equal(parse("{\"kind\":\"manual\",\"schedule\":[{\"from\":\"06:00\",\"budget_w\":"
			       "800000},{\"from\":\"18:30\",\"budget_w\":300000,\"note\":\"x\"}]}", &s,
			       &w, err, sizeof(err)), 0);
	assert_int_equal(s.n_schedule, 2);
	assert_int_equal(s.schedule[0].from_min, 360);
	assert_int_equal(s.schedule[1].from_min, 1110);
	assert_int_equal(s.schedule[1].budget_w, 300000);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.keys[0], "schedule[1].note");

	/* an unknown key is a warning, not an error */
	w.n = 0;
	assert_int_equal(parse("{\"kind\":\"manual\",\"budget_w\":1,\"budget\":2}", &s, &w, err,
			       sizeof(err)), 0);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.keys[0], "budget");
	assert_int_equal(parse("{\"kind\":\"none\"}", &s, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.kind, HIVE_PLANT_NONE);
}

static void source_refusals(void **state)
{
	static const struct {
		const char *body;
		const char *err;         /* the whole message, or its start when it ends in '*' */
	} t[] = {
		{ "[]", "power.source: expected object, got array" },
		{ "{}", "power.source.kind: missing*" },
		{ "{\"kind\":5}", "power.source.kind: expected string, got integer" },
		{ "{\"kind\":\"solar\"}", "power.source.kind: \"solar\" is not one of*" },
		{ "{\"kind\":\"aggregator\",\"plant_id\":\"p\",\"api_key\":\"" KEY "\"}",
		  "power.source.url: missing*" },
		{ "{\"kind\":\"aggregator\",\"url\":\"ftp://x/y\",\"plant_id\":\"p\",\"api_key\":\"k\"}",
		  "power.source.url: must start with http:// or https://" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://\",\"plant_id\":\"p\",\"api_key\":\"k\"}",
		  "power.source.url: not a URL" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a b/\",\"plant_id\":\"p\",\"api_key\":\"k\"}",
		  "power.source.url: not a URL" },
		{ "{\"kind\":\"aggregator\",\"url\":7,\"plant_id\":\"p\",\"api_key\":\"k\"}",
		  "power.source.url: expected string, got integer" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"\",\"api_key\":\"k\"}",
		  "power.source.plant_id: empty" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\"}",
		  "power.source.api_key: missing*" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\",\"api_key\":\""
		  KEY "\\r\\nX-Evil: 1\"}", "power.source.api_key: contains a control character" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\",\"api_key\":\"k\","
		  "\"min_confidence\":1.5}", "power.source.min_confidence: 1.5 is out of range (0..1)" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\",\"api_key\":\"k\","
		  "\"min_confidence\":\"high\"}", "power.source.min_confidence: expected number, got string" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\",\"api_key\":\"k\","
		  "\"timeout_ms\":50}", "power.source.timeout_ms: 50 is out of range (100..60000)" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\",\"api_key\":\"k\","
		  "\"timeout_ms\":1.5}", "power.source.timeout_ms: expected integer, got real" },
		{ "{\"kind\":\"aggregator\",\"url\":\"http://a/\",\"plant_id\":\"p\",\"api_key\":\"k\","
		  "\"host\":\"h\"}", "power.source.host: not a key of an aggregator source (only modbus)" },
		{ "{\"kind\":\"modbus\"}", "power.source.host: missing*" },
		{ "{\"kind\":\"modbus\",\"host\":\"a/b\"}", "power.source.host: not a host name*" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"port\":70000}",
		  "power.source.port: 70000 is out of range (1..65535)" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"port\":\"502\"}",
		  "power.source.port: expected integer, got string" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"unit\":256}",
		  "power.source.unit: 256 is out of range (0..255)" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"register\":-1}",
		  "power.source.register: -1 is out of range (0..65535)" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"register\":65535}",
		  "power.source.register: 65535: a u32 needs 2 registers*" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"table\":\"coils\"}",
		  "power.source.table: \"coils\" is not one of holding, input" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"type\":\"u64\"}",
		  "power.source.type: \"u64\" is not one of u16, s16, u32, s32, float32" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"byte_order\":\"big\"}",
		  "power.source.byte_order: \"big\" is not one of abcd, badc, cdab, dcba" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"scale\":0}", "power.source.scale: 0 is out of range*" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"scale\":-10}", "power.source.scale: -10 is out*" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"scale\":\"1\"}",
		  "power.source.scale: expected number, got string" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"url\":\"http://a/\"}",
		  "power.source.url: not a key of a modbus source (only aggregator)" },
		{ "{\"kind\":\"modbus\",\"host\":\"h\",\"budget_w\":1}",
		  "power.source.budget_w: not a key of a modbus source (only manual)" },
		{ "{\"kind\":\"manual\",\"budget_w\":1,\"timeout_ms\":100}",
		  "power.source.timeout_ms: not a key of a manual source (only aggregator, modbus)" },
		{ "{\"kind\":\"none\",\"budget_w\":1}",
		  "power.source.budget_w: not a key of a none source (only manual)" },
		{ "{\"kind\":\"manual\"}", "power.source.budget_w: missing*" },
		{ "{\"kind\":\"manual\",\"budget_w\":-1}",
		  "power.source.budget_w: -1 is out of range (0..1000000000000)" },
		{ "{\"kind\":\"manual\",\"budget_w\":1.5}",
		  "power.source.budget_w: expected integer, got real" },
		{ "{\"kind\":\"manual\",\"schedule\":{}}",
		  "power.source.schedule: expected array, got object" },
		{ "{\"kind\":\"manual\",\"schedule\":[5]}",
		  "power.source.schedule[0]: expected object, got integer" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":\"25:00\",\"budget_w\":1}]}",
		  "power.source.schedule[0].from: \"25:00\" is not HH:MM (00:00..23:59)" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":\"6:00\",\"budget_w\":1}]}",
		  "power.source.schedule[0].from: \"6:00\" is not HH:MM*" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"budget_w\":1}]}",
		  "power.source.schedule[0].from: missing" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":600,\"budget_w\":1}]}",
		  "power.source.schedule[0].from: expected string, got integer" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":\"08:00\",\"budget_w\":1},"
		  "{\"from\":\"07:00\",\"budget_w\":2}]}",
		  "power.source.schedule[1].from: \"07:00\" is not after \"08:00\"*" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":\"08:00\",\"budget_w\":1},"
		  "{\"from\":\"08:00\",\"budget_w\":2}]}", "power.source.schedule[1].from: \"08:00\" is not after*" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":\"08:00\"}]}",
		  "power.source.schedule[0].budget_w: missing" },
		{ "{\"kind\":\"manual\",\"schedule\":[{\"from\":\"08:00\",\"budget_w\":-5}]}",
		  "power.source.schedule[0].budget_w: -5 is out of range*" },
	};
	struct hive_plant_source s;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].err);
		bool prefix = t[i].err[n - 1] == '*';

		memset(&s, 0x5a, sizeof(s));
		err[0] = '\0';
		if (parse(t[i].body, &s, NULL, err, sizeof(err)) != -1)
			fail_msg("case %zu accepted: %s", i, t[i].body);
		if (prefix ? strncmp(err, t[i].err, n - 1) != 0 : strcmp(err, t[i].err) != 0)
			fail_msg("case %zu: expected \"%s\", got \"%s\"", i, t[i].err, err);
		if (strstr(err, KEY))
			fail_msg("case %zu: the api_key is in the message: %s", i, err);
		/* a refused source leaves *out as it was */
		assert_int_equal(((unsigned char *)&s)[0], 0x5a);
	}
	/* a key too long to be one is refused without being echoed */
	{
		char body[1024], key[400];

		memset(key, 'k', sizeof(key) - 1);
		key[sizeof(key) - 1] = '\0';
		snprintf(body, sizeof(body), "{\"kind\":\"aggregator\",\"url\":\"http://a/\","
			 "\"plant_id\":\"p\",\"api_key\":\"%s\"}", key);
		assert_int_equal(parse(body, &s, NULL, err, sizeof(err)), -1);
		assert_string_equal(err, "power.source.api_key: longer than 255 characters");
	}
	/* 49 steps */
	{
		char body[4096] = "{\"kind\":\"manual\",\"schedule\":[";

		for (int i = 0; i < 49; i++)
			snprintf(body + strlen(body), sizeof(body) - strlen(body),
				 "%s{\"from\":\"%02d:%02d\",\"budget_w\":1}", i ? "," : "", i / 3, i % 3);
		strcat(body, "]}");
		assert_int_equal(parse(body, &s, NULL, err, sizeof(err)), -1);
		assert_string_equal(err, "power.source.schedule: more than 48 steps");
	}
}

static void names(void **state)
{
	(void)state;
	assert_string_equal(hive_plant_kind_name(HIVE_PLANT_AGGREGATOR), "aggregator");
	assert_string_equal(hive_plant_kind_name(HIVE_PLANT_NONE), "none");
	assert_null(hive_plant_kind_name(HIVE_PLANT_KINDS));
	assert_int_equal(hive_plant_kind_parse("manual"), HIVE_PLANT_MANUAL);
	assert_int_equal(hive_plant_kind_parse("Manual"), -1);
	assert_int_equal(hive_plant_kind_parse(NULL), -1);
	assert_string_equal(hive_modbus_table_name(HIVE_MODBUS_INPUT), "input");
	assert_string_equal(hive_modbus_type_name(HIVE_MODBUS_FLOAT32), "float32");
	assert_string_equal(hive_modbus_order_name(HIVE_MODBUS_DCBA), "dcba");
	assert_null(hive_modbus_order_name((enum hive_modbus_order)9));
}

static void budget_by_time_of_day(void **state)
{
	struct hive_plant_source s;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"kind\":\"manual\",\"budget_w\":7}", &s, NULL, err, sizeof(err)), 0);
	assert_int_equal(hive_plant_budget_at(&s, 0), 7);
	assert_int_equal(hive_plant_budget_at(&s, 1439), 7);

	assert_int_equal(parse("{\"kind\":\"manual\",\"budget_w\":7,\"schedule\":["
			       "{\"from\":\"06:00\",\"budget_w\":100},{\"from\":\"12:00\",\"budget_w\":"
			       "200},{\"from\":\"18:00\",\"budget_w\":50}]}", &s, NULL, err,
			       sizeof(err)), 0);
	/* before the day's first step: the last step of the day before */
	assert_int_equal(hive_plant_budget_at(&s, 0), 50);
	assert_int_equal(hive_plant_budget_at(&s, 359), 50);
	assert_int_equal(hive_plant_budget_at(&s, 360), 100);
	assert_int_equal(hive_plant_budget_at(&s, 719), 100);
	assert_int_equal(hive_plant_budget_at(&s, 720), 200);
	assert_int_equal(hive_plant_budget_at(&s, 1079), 200);
	assert_int_equal(hive_plant_budget_at(&s, 1080), 50);
	assert_int_equal(hive_plant_budget_at(&s, 1439), 50);
	/* minutes outside the day wrap */
	assert_int_equal(hive_plant_budget_at(&s, 1440 + 400), 100);
	assert_int_equal(hive_plant_budget_at(&s, -1), 50);

	/* one step from midnight holds all day */
	assert_int_equal(parse("{\"kind\":\"manual\",\"schedule\":[{\"from\":\"00:00\",\"budget_w\":9}]}",
			       &s, NULL, err, sizeof(err)), 0);
	assert_int_equal(hive_plant_budget_at(&s, 0), 9);
	assert_int_equal(hive_plant_budget_at(&s, 1439), 9);
}

/* ---------------------------------------------------------------- aggregator */

/* ../shared/firmware/plant-api.md's example, as it is there. */
static const char example[] =
	"{\n"
	"  \"reading\": {\n"
	"    \"id\": 81234,\n"
	"    \"plant_id\": \"plant-1\",\n"
	"    \"collection_timestamp\": \"2025-01-12T10:30:00Z\",\n"
	"    \"generation\": {\n"
	"      \"gen_a\": {\"value_mw\": 0.24, \"status\": \"success\", \"source_timestamp\": \"2025-01-12T10:29:58Z\"},\n"
	"      \"gen_b\": {\"value_mw\": 0.26, \"status\": \"success\", \"source_timestamp\": \"2025-01-12T10:29:59Z\"}\n"
	"    },\n"
	"    \"consumption\": {\n"
	"      \"container_1\": {\"value_mw\": 0.045, \"status\": \"success\", \"source_timestamp\": \"2025-01-12T10:29:58Z\"},\n"
	"      \"container_2\": {\"value_mw\": 0.055, \"status\": \"error\", \"source_timestamp\": \"2025-01-12T10:20:00Z\"}\n"
	"    },\n"
	"    \"totals\": {\"generation_mw\": 0.5, \"consumption_mw\": 0.1, \"exported_mw\": 0.4},\n"
	"    \"trust\": {\"confidence_score\": 0.93, \"status\": \"ok\", \"summary\": \"all sources fresh\"}\n"
	"  }\n"
	"}\n";

static int agg(const char *body, struct hive_plant_reading *r)
{
	return hive_plant_parse_aggregator(body, strlen(body), "plant-1", r);
}

static void aggregator_example(void **state)
{
	struct hive_plant_reading r;

	(void)state;
	assert_int_equal(agg(example, &r), 0);
	assert_true(r.ok);
	assert_true(r.generation_w == 500000);
	assert_true(r.exported_w == 400000);
	/* container_2 failed: the total is not a measurement of the farm */
	assert_true(isnan(r.consumption_w));
	assert_true(r.confidence == 0.93);
	assert_string_equal(r.trust_status, "ok");
	assert_int_equal(r.reading_id, 81234);
	assert_int_equal(r.collected_ms, 1736677800000LL);
	assert_int_equal(r.gen_sources, 2);
	assert_int_equal(r.gen_failed, 0);
	assert_int_equal(r.cons_sources, 2);
	assert_int_equal(r.cons_failed, 1);
	assert_string_equal(r.failed, "container_2");
	assert_int_equal(r.n_regs, 0);
	/* no plant_id to check against */
	assert_int_equal(hive_plant_parse_aggregator(example, strlen(example), NULL, &r), 0);
}

static void aggregator_sources(void **state)
{
	struct hive_plant_reading r;

	(void)state;
	/* every source fine: the consumption counts; MW to whole watts */
	assert_int_equal(agg("{\"reading\":{\"plant_id\":\"plant-1\",\"generation\":{\"g\":{\"value_mw\":"
			     "0.4954,\"status\":\"success\"}},\"consumption\":{\"c\":{\"status\":"
			     "\"success\"}},\"totals\":{\"generation_mw\":0.495434,\"consumption_mw\":"
			     "0.045,\"exported_mw\":-0.0000004}}}", &r), 0);
	assert_true(r.generation_w == 495434);
	assert_true(r.consumption_w == 45000);
	assert_true(r.exported_w == 0);
	assert_int_equal(r.cons_failed, 0);
	assert_string_equal(r.failed, "");

	/* failed generators, a source without a status */
	assert_int_equal(agg("{\"reading\":{\"generation\":{\"gen_a\":{\"status\":\"success\"},"
			     "\"gen_b\":{\"status\":\"timeout\"},\"gen_c\":{}},\"consumption\":{"
			     "\"container_1\":{\"status\":\"error\"}},\"totals\":{\"generation_mw\":1,"
			     "\"consumption_mw\":0.2},\"trust\":{\"confidence_score\":0.5,\"status\":"
			     "\"degraded\"}}}", &r), 0);
	assert_int_equal(r.gen_sources, 3);
	assert_int_equal(r.gen_failed, 2);
	assert_int_equal(r.cons_sources, 1);
	assert_int_equal(r.cons_failed, 1);
	assert_string_equal(r.failed, "gen_b,gen_c,container_1");
	assert_true(r.confidence == 0.5);
	assert_string_equal(r.trust_status, "degraded");
	assert_true(isnan(r.consumption_w));

	/* only generation_mw is required */
	assert_int_equal(agg("{\"reading\":{\"totals\":{\"generation_mw\":0}}}", &r), 0);
	assert_true(r.generation_w == 0);
	assert_true(isnan(r.consumption_w) && isnan(r.exported_w) && isnan(r.confidence));
	assert_int_equal(r.reading_id, -1);
	assert_int_equal(r.collected_ms, -1);
	assert_string_equal(r.trust_status, "");
	assert_int_equal(r.gen_sources + r.cons_sources, 0);

	/* timestamps: fractions and offsets */
	assert_int_equal(agg("{\"reading\":{\"collection_timestamp\":\"2025-01-12T10:30:00.25Z\","
			     "\"totals\":{\"generation_mw\":1}}}", &r), 0);
	assert_int_equal(r.collected_ms, 1736677800250LL);
	assert_int_equal(agg("{\"reading\":{\"collection_timestamp\":\"2025-01-12T12:30:00+02:00\","
			     "\"totals\":{\"generation_mw\":1}}}", &r), 0);
	assert_int_equal(r.collected_ms, 1736677800000LL);
	assert_int_equal(agg("{\"reading\":{\"collection_timestamp\":\"2024-02-29T00:00:00Z\","
			     "\"totals\":{\"generation_mw\":1}}}", &r), 0);

	/* many failed sources: counted all, listed while they fit */
	{
		char body[16384] = "{\"reading\":{\"generation\":{";

		for (int i = 0; i < 100; i++)
			snprintf(body + strlen(body), sizeof(body) - strlen(body),
				 "%s\"generator_number_%03d\":{\"status\":\"error\"}", i ? "," : "", i);
		strcat(body, "},\"totals\":{\"generation_mw\":1}}}");
		assert_int_equal(agg(body, &r), 0);
		assert_int_equal(r.gen_failed, 100);
		assert_true(strlen(r.failed) < sizeof(r.failed));
		assert_non_null(strstr(r.failed, "generator_number_000,generator_number_001"));
	}
}

static void aggregator_refusals(void **state)
{
	static const struct {
		const char *body;
		const char *kind;
		const char *err;         /* the start of the message */
	} t[] = {
		{ "", "bad_json", "bad json: " },
		{ "{\"reading\":", "bad_json", "bad json: " },
		{ "{\"reading\":{},\"reading\":{}}", "bad_json", "bad json: " },
		{ "[]", "bad_field", "reading: missing" },
		{ "{}", "bad_field", "reading: missing" },
		{ "{\"reading\":1}", "bad_field", "reading: expected object" },
		{ "{\"reading\":{}}", "bad_field", "reading.totals: missing" },
		{ "{\"reading\":{\"totals\":[]}}", "bad_field", "reading.totals: expected object" },
		{ "{\"reading\":{\"totals\":{}}}", "bad_field", "reading.totals.generation_mw: missing" },
		{ "{\"reading\":{\"totals\":{\"generation_mw\":\"0.5\"}}}", "bad_field",
		  "reading.totals.generation_mw: expected number, got string" },
		{ "{\"reading\":{\"totals\":{\"generation_mw\":1e300}}}", "bad_field",
		  "reading.totals.generation_mw: 1e+300 MW is not a power" },
		{ "{\"reading\":{\"totals\":{\"generation_mw\":1,\"consumption_mw\":true}}}", "bad_field",
		  "reading.totals.consumption_mw: expected number" },
		{ "{\"reading\":{\"plant_id\":\"plant-2\",\"totals\":{\"generation_mw\":1}}}", "bad_field",
		  "reading.plant_id: \"plant-2\" is not \"plant-1\"" },
		{ "{\"reading\":{\"plant_id\":1,\"totals\":{\"generation_mw\":1}}}", "bad_field",
		  "reading.plant_id: expected string" },
		{ "{\"reading\":{\"id\":-1,\"totals\":{\"generation_mw\":1}}}", "bad_field", "reading.id:" },
		{ "{\"reading\":{\"id\":\"7\",\"totals\":{\"generation_mw\":1}}}", "bad_field", "reading.id:" },
		{ "{\"reading\":{\"collection_timestamp\":\"2025-13-01T00:00:00Z\",\"totals\":"
		  "{\"generation_mw\":1}}}", "bad_field", "reading.collection_timestamp:" },
		{ "{\"reading\":{\"collection_timestamp\":\"2025-02-29T00:00:00Z\",\"totals\":"
		  "{\"generation_mw\":1}}}", "bad_field", "reading.collection_timestamp:" },
		{ "{\"reading\":{\"collection_timestamp\":\"2025-01-12 10:30:00\",\"totals\":"
		  "{\"generation_mw\":1}}}", "bad_field", "reading.collection_timestamp:" },
		{ "{\"reading\":{\"collection_timestamp\":\"2025-01-12T10:30:00\",\"totals\":"
		  "{\"generation_mw\":1}}}", "bad_field", "reading.collection_timestamp:" },
		{ "{\"reading\":{\"collection_timestamp\":1736677800,\"totals\":{\"generation_mw\":1}}}",
		  "bad_field", "reading.collection_timestamp:" },
		{ "{\"reading\":{\"generation\":[],\"totals\":{\"generation_mw\":1}}}", "bad_field",
		  "reading.generation: expected object" },
		{ "{\"reading\":{\"consumption\":{\"c\":\"success\"},\"totals\":{\"generation_mw\":1}}}",
		  "bad_field", "reading.consumption.c: expected object" },
		{ "{\"reading\":{\"trust\":{\"confidence_score\":2},\"totals\":{\"generation_mw\":1}}}",
		  "bad_field", "reading.trust.confidence_score:" },
		{ "{\"reading\":{\"trust\":\"ok\",\"totals\":{\"generation_mw\":1}}}", "bad_field",
		  "reading.trust: expected object" },
	};
	struct hive_plant_reading r;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (agg(t[i].body, &r) != -1)
			fail_msg("case %zu accepted: %s", i, t[i].body);
		assert_false(r.ok);
		if (strcmp(r.error_kind, t[i].kind) != 0 ||
		    strncmp(r.error, t[i].err, strlen(t[i].err)) != 0)
			fail_msg("case %zu: expected %s \"%s...\", got %s \"%s\"", i, t[i].kind, t[i].err,
				 r.error_kind, r.error);
	}
	/* a message cut mid-character is still UTF-8 (a JSON string must be) */
	{
		char body[512] = "{\"reading\":{\"plant_id\":\"a";
		json_t *j;

		for (int i = 0; i < 40; i++)
			strcat(body, "\xc3\xa9");
		strcat(body, "\",\"totals\":{\"generation_mw\":1}}}");
		assert_int_equal(agg(body, &r), -1);
		assert_non_null(strstr(r.error, "a\xc3\xa9"));
		j = json_string(r.error);
		assert_non_null(j);
		json_decref(j);
	}
	/* NULL body */
	assert_int_equal(hive_plant_parse_aggregator(NULL, 0, "plant-1", &r), -1);
	assert_string_equal(r.error_kind, "bad_json");
}

/* ---------------------------------------------------------------- registers */

static double dec(const uint16_t *regs, int n, enum hive_modbus_type t, enum hive_modbus_order o,
		  double scale)
{
	double w = -12345;

	if (hive_plant_decode_registers(regs, n, t, o, scale, &w) != 0)
		fail_msg("%s %s (%d registers) refused", hive_modbus_type_name(t),
			 hive_modbus_order_name(o), n);
	return w;
}

static void registers(void **state)
{
	/* plantsim's table (docs/plantsim.md): abcd, badc, cdab, dcba */
	static const uint16_t u32[4][2] = { { 0x0001, 0xE240 }, { 0x0100, 0x40E2 },
					    { 0xE240, 0x0001 }, { 0x40E2, 0x0100 } };
	static const uint16_t f32[4][2] = { { 0x47F1, 0x2000 }, { 0xF147, 0x0020 },
					    { 0x2000, 0x47F1 }, { 0x0020, 0xF147 } };
	static const uint16_t s32[4][2] = { { 0xFFFE, 0x1DC0 }, { 0xFEFF, 0xC01D },
					    { 0x1DC0, 0xFFFE }, { 0xC01D, 0xFEFF } };
	static const uint16_t neg_f32[4][2] = { { 0xBFC0, 0x0000 }, { 0xC0BF, 0x0000 },
						{ 0x0000, 0xBFC0 }, { 0x0000, 0xC0BF } };
	static const uint16_t u16[4] = { 0x303A, 0x3A30, 0x303A, 0x3A30 };
	static const uint16_t s16[4] = { 0xFFFE, 0xFEFF, 0xFFFE, 0xFEFF };
	uint16_t nan_regs[2] = { 0x7FC0, 0x0000 }, inf_regs[2] = { 0x7F80, 0x0000 };
	double w;

	(void)state;
	for (int o = 0; o < 4; o++) {
		enum hive_modbus_order order = (enum hive_modbus_order)o;

		assert_true(dec(u32[o], 2, HIVE_MODBUS_U32, order, 1) == 123456);
		assert_true(dec(f32[o], 2, HIVE_MODBUS_FLOAT32, order, 1) == 123456.0);
		assert_true(dec(s32[o], 2, HIVE_MODBUS_S32, order, 1) == -123456);
		/* the same bits as u32 are not negative */
		assert_true(dec(s32[o], 2, HIVE_MODBUS_U32, order, 1) == 4294843840.0);
		assert_true(dec(neg_f32[o], 2, HIVE_MODBUS_FLOAT32, order, 1) == -1.5);
		assert_true(dec(&u16[o], 1, HIVE_MODBUS_U16, order, 1) == 12346);
		assert_true(dec(&s16[o], 1, HIVE_MODBUS_S16, order, 1) == -2);
		assert_true(dec(&s16[o], 1, HIVE_MODBUS_U16, order, 1) == 65534);
	}
	/* scale: watts per unit */
	assert_true(dec(u32[0], 2, HIVE_MODBUS_U32, HIVE_MODBUS_ABCD, 1000) == 123456000);
	assert_true(dec(&u16[0], 1, HIVE_MODBUS_U16, HIVE_MODBUS_ABCD, 10) == 123460);
	assert_true(fabs(dec(f32[2], 2, HIVE_MODBUS_FLOAT32, HIVE_MODBUS_CDAB, 0.001) - 123.456) <
		    1e-9);
	/* registers that do not fit the type, values that are not a power */
	assert_int_equal(hive_plant_decode_registers(u32[0], 1, HIVE_MODBUS_U32, HIVE_MODBUS_ABCD, 1,
						     &w), -1);
	assert_int_equal(hive_plant_decode_registers(u32[0], 2, HIVE_MODBUS_U16, HIVE_MODBUS_ABCD, 1,
						     &w), -1);
	assert_int_equal(hive_plant_decode_registers(NULL, 2, HIVE_MODBUS_U32, HIVE_MODBUS_ABCD, 1,
						     &w), -1);
	assert_int_equal(hive_plant_decode_registers(nan_regs, 2, HIVE_MODBUS_FLOAT32,
						     HIVE_MODBUS_ABCD, 1, &w), -1);
	assert_int_equal(hive_plant_decode_registers(inf_regs, 2, HIVE_MODBUS_FLOAT32,
						     HIVE_MODBUS_ABCD, 1, &w), -1);
	assert_int_equal(hive_plant_decode_registers(u32[0], 2, HIVE_MODBUS_U32, HIVE_MODBUS_ABCD,
						     1e12, &w), -1);
}

/* ---------------------------------------------------------------- the bus */

/* s → hive.job.plant → the wire → back: the same source. */
static void job_roundtrip(const char *text)
{
	struct hive_plant_source s, back;
	struct hive_msg_plant_job j, got;
	char err[256];
	json_t *wire;

	assert_int_equal(parse(text, &s, NULL, err, sizeof(err)), 0);
	hive_plant_source_to_job(&s, &j);
	j.job = 7;
	j.deadline = 1736677800000LL;
	wire = hive_msg_encode(HIVE_MSG_JOB_PLANT, &j);
	assert_non_null(wire);
	if (hive_msg_decode(HIVE_MSG_JOB_PLANT, wire, &got, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
	assert_int_equal(got.job, 7);
	if (hive_plant_job_to_source(&got, &back, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
	assert_int_equal(memcmp(&s, &back, sizeof(s)), 0);
	hive_msg_free(HIVE_MSG_JOB_PLANT, &got);
	json_decref(wire);
}

static void bus_conversions(void **state)
{
	struct hive_msg_plant_job j;
	struct hive_plant_source s;
	struct hive_plant_reading r;
	struct hive_msg_plant_reading m;
	char err[256], *text;
	json_t *wire;

	(void)state;
	job_roundtrip("{\"kind\":\"aggregator\",\"url\":\"http://127.0.0.1:1/v1/reading\","
		      "\"plant_id\":\"plant 1/ü\",\"api_key\":\"" KEY "\",\"timeout_ms\":1200}");
	job_roundtrip("{\"kind\":\"modbus\",\"host\":\"127.0.0.1\",\"port\":1502,\"unit\":0,"
		      "\"register\":40,\"table\":\"input\",\"type\":\"s16\",\"byte_order\":\"dcba\","
		      "\"scale\":0.5,\"timeout_ms\":700}");
	job_roundtrip("{\"kind\":\"modbus\",\"host\":\"meter\"}");

	/* a job checked as the config is, its fields named as the job's */
	hive_msg_init(HIVE_MSG_JOB_PLANT, &j);
	j.job = 1;
	j.kind = "modbus";
	j.port = 502;
	assert_int_equal(hive_plant_job_to_source(&j, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "host: missing (a modbus source needs it)");
	j.kind = "aggregator";
	j.port = HIVE_MSG_NO_INT;
	j.url = "http://a/";
	j.plant_id = "p";
	assert_int_equal(hive_plant_job_to_source(&j, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "api_key: missing (an aggregator source needs it)");
	j.api_key = KEY;
	j.host = "h";
	assert_int_equal(hive_plant_job_to_source(&j, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "host: not a key of an aggregator source (only modbus)");

	/* an aggregator reading: every field */
	assert_int_equal(agg(example, &r), 0);
	r.latency_ms = 12;
	hive_plant_reading_to_msg(&r, &m);
	m.job = 9;
	m.source = "aggregator";
	wire = hive_msg_encode(HIVE_MSG_PLANT_READING, &m);
	text = json_dumps(wire, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(12));
	assert_string_equal(text, "{\"collected_ms\":1736677800000,\"confidence\":0.93,"
			    "\"cons_failed\":1,\"cons_sources\":2,\"exported_w\":400000,"
			    "\"failed\":\"container_2\",\"gen_failed\":0,\"gen_sources\":2,"
			    "\"generation_w\":500000,\"job\":9,\"latency_ms\":12,\"ok\":true,"
			    "\"reading_id\":81234,\"source\":\"aggregator\",\"trust_status\":\"ok\"}");
	free(text);
	json_decref(wire);

	/* a meter's: the generation alone */
	memset(&r, 0, sizeof(r));
	r.ok = true;
	r.generation_w = 496677;
	r.n_regs = 2;
	r.latency_ms = 3;
	hive_plant_reading_to_msg(&r, &m);
	m.job = 10;
	m.source = "modbus";
	wire = hive_msg_encode(HIVE_MSG_PLANT_READING, &m);
	text = json_dumps(wire, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(12));
	assert_string_equal(text, "{\"generation_w\":496677,\"job\":10,\"latency_ms\":3,\"ok\":true,"
			    "\"source\":\"modbus\"}");
	free(text);
	json_decref(wire);

	/* a failure: why, and nothing else */
	assert_int_equal(agg("{}", &r), -1);
	hive_plant_reading_to_msg(&r, &m);
	m.job = 11;
	m.source = "aggregator";
	wire = hive_msg_encode(HIVE_MSG_PLANT_READING, &m);
	text = json_dumps(wire, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(12));
	assert_string_equal(text, "{\"error\":\"reading: missing\",\"error_kind\":\"bad_field\","
			    "\"job\":11,\"latency_ms\":0,\"ok\":false,\"source\":\"aggregator\"}");
	free(text);
	json_decref(wire);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(source_kinds),
		cmocka_unit_test(source_refusals),
		cmocka_unit_test(names),
		cmocka_unit_test(budget_by_time_of_day),
		cmocka_unit_test(aggregator_example),
		cmocka_unit_test(aggregator_sources),
		cmocka_unit_test(aggregator_refusals),
		cmocka_unit_test(registers),
		cmocka_unit_test(bus_conversions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
