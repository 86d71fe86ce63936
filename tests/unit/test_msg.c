/* test_msg — the bus message tables: every topic round-trips, bad bodies
 * are refused with the field named, and docs/bus.md matches the tables.
 *
 *   test_msg --doc    prints the topic list that docs/bus.md must hold */
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
#include "../lib/testlib.h"

/* A valid value for every field of a schema, built from the table alone:
 * a field the table gains is covered without touching this test. */
static json_t *sample(const struct hive_msg_schema *s);

static json_t *sample_value(const struct hive_msg_field *f, enum hive_msg_type t)
{
	switch (t) {
	case HIVE_MT_STR:
		return json_string(f->values ? f->values[0] : "x");
	case HIVE_MT_MAC:
		return json_string("aa:bb:cc:dd:ee:0f");
	case HIVE_MT_IPV4:
		return json_string("127.0.0.9");
	case HIVE_MT_CIDR:
		return json_string("127.66.0.0/23");
	case HIVE_MT_INT:
		return json_integer(f->lo > 0 ? (json_int_t)f->lo : 1);
	case HIVE_MT_NUM:
		/* within the limits, not whole (a whole number goes as an
		 * integer): a score of 0..1 takes 0.5 */
		return json_real(f->lo > 1.5 ? f->lo : f->hi && f->hi < 1.5 ? (f->lo + f->hi) / 2 : 1.5);
	case HIVE_MT_BOOL:
		return json_true();
	case HIVE_MT_OBJ:
		return sample(f->sub);
	case HIVE_MT_LIST: {
		/* one element: per-chip columns must agree in length */
		json_t *a = json_array();

		json_array_append_new(a, sample_value(f, f->elem));
		return a;
	}
	case HIVE_MT_JSON:
		if (strcmp(f->key, "counters") == 0)
			return json_pack("{s:i,s:i}", "jobs_received", 3, "done", 2);
		return json_pack("[[i]]", 7);   /* topology.chips: 1 × 1 */
	}
	return json_null();
}

static json_t *sample(const struct hive_msg_schema *s)
{
	json_t *o = json_object();

	for (size_t i = 0; i < s->n_fields; i++)
		json_object_set_new(o, s->fields[i].key, sample_value(&s->fields[i],
								      s->fields[i].type));
	return o;
}

static void roundtrip_every_topic(void **state)
{
	(void)state;
	for (int k = 0; k < HIVE_MSG_KINDS; k++) {
		const struct hive_msg_topic *t = hive_msg_topic(k);
		char body[65536] __attribute__((aligned(16)));
		char err[256] = "";
		json_t *in, *out;

		assert_non_null(t);
		assert_int_equal(hive_msg_kind_of(t->topic, t->channel), k);
		if (!t->body)
			continue;
		assert_true(t->body->size <= sizeof(body));
		in = sample(t->body);
		if (hive_msg_decode(k, in, body, err, sizeof(err)) != 0)
			fail_msg("%s: %s", t->topic, err);
		out = hive_msg_encode(k, body);
		assert_non_null(out);
		if (!json_equal(in, out)) {
			char *a = json_dumps(in, JSON_SORT_KEYS), *b = json_dumps(out, JSON_SORT_KEYS);

			fail_msg("%s: sent %s, got back %s", t->topic, a, b);
			free(a);
			free(b);
		}
		hive_msg_free(k, body);
		json_decref(in);
		json_decref(out);
	}
}

/* A body with nothing set encodes to {} and decodes to all-absent. */
static void absent_is_left_out(void **state)
{
	struct hive_msg_status_result st;
	json_t *j;
	char err[256];

	(void)state;
	hive_msg_init(HIVE_MSG_STATUS_RESULT, &st);
	j = hive_msg_encode(HIVE_MSG_STATUS_RESULT, &st);
	assert_int_equal(json_object_size(j), 0);
	json_object_set_new(j, "mac", json_string("AA-BB-CC-DD-EE-FF"));
	assert_int_equal(hive_msg_decode(HIVE_MSG_STATUS_RESULT, j, &st, err, sizeof(err)), 0);
	assert_string_equal(st.head.mac, "aa:bb:cc:dd:ee:ff");
	assert_true(isnan(st.power_w));
	assert_int_equal(st.power_metered, -1);
	assert_int_equal(st.state_time, HIVE_MSG_NO_INT);
	assert_null(st.preset);
	assert_int_equal(st.n_chains, 0);
	assert_int_equal(st.switcher.enabled, -1);
	json_decref(j);
}

static void encode_from_struct(void **state)
{
	struct hive_msg_status_result st;
	struct hive_msg_chain_status chains[2];
	double fans[2] = { 5400, 5520.5 };
	char *text;
	json_t *j;

	(void)state;
	hive_msg_init(HIVE_MSG_STATUS_RESULT, &st);
	st.head.job = 42;
	strcpy(st.head.mac, "aa:bb:cc:dd:ee:ff");
	st.preset = "2620";
	st.power_w = 2650;
	st.power_metered = 0;
	st.fans = fans;
	st.n_fans = 2;
	for (int i = 0; i < 2; i++) {
		memset(&chains[i], 0, sizeof(chains[i]));
		chains[i].id = i;
		chains[i].state = NULL;
		chains[i].hr_rt_ghs = NAN;
		chains[i].freq_mhz = chains[i].voltage = NAN;
		chains[i].chip_temp_max = chains[i].pcb_temp_max = NAN;
		chains[i].red = chains[i].orange = chains[i].grey = HIVE_MSG_NO_INT;
		chains[i].hw_errors = 7;
	}
	st.chains = chains;
	st.n_chains = 2;
	j = hive_msg_encode(HIVE_MSG_STATUS_RESULT, &st);
	text = json_dumps(j, JSON_SORT_KEYS);
	json_decref(j);
	assert_string_equal(text, "{\"chains\": [{\"hw_errors\": 7, \"id\": 0}, {\"hw_errors\": 7, "
			    "\"id\": 1}], \"fans\": [5400, 5520.5], \"job\": 42, \"mac\": "
			    "\"aa:bb:cc:dd:ee:ff\", \"power_metered\": false, \"power_w\": 2650, "
			    "\"preset\": \"2620\"}");
	free(text);
}

/* Every refusal names the field, down to the element. */
static void refusals_name_the_field(void **state)
{
	static const struct {
		enum hive_msg_kind kind;
		const char *body;
		const char *err;
	} t[] = {
		{ HIVE_MSG_STATUS_RESULT, "{}", "mac: missing" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"nope\"}", "mac: not a MAC address: \"nope\"" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"power_w\":\"3\"}",
		  "power_w: expected number, got string" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"power_w\":-5}",
		  "power_w: -5 is outside 0..1e+06" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"job\":1.5}",
		  "job: expected integer, got real" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"chains\":[{\"id\":0},"
		  "{\"id\":1,\"red\":\"x\"}]}", "chains[1].red: expected integer, got string" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"fans\":[1,\"a\"]}",
		  "fans[1]: expected number, got string" },
		{ HIVE_MSG_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"pools\":[]}",
		  "pools: expected object, got array" },
		{ HIVE_MSG_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"chains\":[{\"id\":0,"
		  "\"chips\":{\"hr\":[1,2],\"temp\":[1]}}]}",
		  "chains[0].chips.temp: expected 2 values, got 1" },
		{ HIVE_MSG_TELEMETRY_RESULT, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"source\":\"x\","
		  "\"chains\":[]}", "source: unknown value \"x\"" },
		{ HIVE_MSG_MINER_ERROR, "{\"mac\":\"\",\"op\":\"dance\",\"kind\":\"timeout\"}",
		  "op: unknown value \"dance\"" },
		{ HIVE_MSG_MINER_KEY, "{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"api_key\":\"\"}",
		  "api_key: empty" },
		{ HIVE_MSG_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[{\"name\":\"a\"},"
		  "{\"name\":\"a\"}]}", "presets[1]: name \"a\" listed twice" },
		{ HIVE_MSG_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[],\"topology\":"
		  "{\"rows\":2,\"cols\":1,\"chips\":[[1]]}}",
		  "topology.chips: expected 2 rows, got 1" },
		{ HIVE_MSG_MODEL_CATALOGUE, "{\"model\":\"s19\",\"presets\":[],\"topology\":"
		  "{\"rows\":1,\"cols\":1,\"chips\":[[\"a\"]]}}",
		  "topology.chips[0][0]: expected integer, got string" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/33\",\"macs\":[]}",
		  "subnet: not a CIDR: \"127.0.0.0/33\"" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/24\",\"macs\":[\"aa:bb:cc:dd:ee:ff\","
		  "null]}", "macs[1]: null" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/16\",\"macs\":[],\"sweep\":3,"
		  "\"chunk\":3,\"chunks\":2}", "chunk: 3 is more than chunks (2)" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/16\",\"macs\":[],\"sweep\":3,"
		  "\"chunk\":1}", "chunks: missing (chunk is set)" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/16\",\"macs\":[],\"chunks\":1}",
		  "chunk: missing (chunks is set)" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/16\",\"macs\":[],\"chunk\":1,"
		  "\"chunks\":2}", "sweep: missing (the list comes in 2 chunks)" },
		{ HIVE_MSG_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/16\",\"macs\":[],\"sweep\":3,"
		  "\"chunk\":0,\"chunks\":2}", "chunk: 0 is outside 1..4096" },
		{ HIVE_MSG_CTL_RECHECK_REPLY, "{\"macs\":[\"aa:bb:cc:dd:ee:ff\",\"x\"]}",
		  "macs[1]: not a MAC address: \"x\"" },
		{ HIVE_MSG_HEARTBEAT, "{\"daemon\":\"pollerd\",\"counters\":{\"a\":\"b\"}}",
		  "counters: a: expected integer, got string" },
		{ HIVE_MSG_JOB_STATUS, "{\"job\":1,\"mac\":\"aa:bb:cc:dd:ee:ff\",\"ip\":\"1.2.3\"}",
		  "ip: not an IPv4 address: \"1.2.3\"" },
		{ HIVE_MSG_JOB_STATUS, "[]", "body: expected object, got array" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char body[65536] __attribute__((aligned(16)));
		char err[256] = "";
		json_t *j = json_loads(t[i].body, JSON_DECODE_ANY, NULL);

		assert_non_null(j);
		if (hive_msg_decode(t[i].kind, j, body, err, sizeof(err)) != -1)
			fail_msg("case %zu accepted: %s", i, t[i].body);
		if (strcmp(err, t[i].err) != 0)
			fail_msg("case %zu: expected \"%s\", got \"%s\"", i, t[i].err, err);
		json_decref(j);
	}
}

/* A subnet's list in chunks: each part carries the sweep id, i of n and the
 * whole list's figures; one part is a whole list (no chunk fields needed). */
static void sweep_chunks(void **state)
{
	char macs[3][HIVE_MAC_LEN] = { "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02",
				       "aa:bb:cc:dd:ee:03" };
	struct hive_msg_sweep_done b, got;
	char err[256];
	json_t *j;

	(void)state;
	hive_msg_init(HIVE_MSG_SWEEP_DONE, &b);
	snprintf(b.subnet, sizeof(b.subnet), "%s", "127.64.0.0/16");
	b.macs = macs + 2;
	b.n_macs = 1;
	b.miners = 3;
	b.sweep = 17;
	b.chunk = 2;
	b.chunks = 2;
	j = hive_msg_encode(HIVE_MSG_SWEEP_DONE, &b);
	assert_non_null(j);
	assert_int_equal(hive_msg_decode(HIVE_MSG_SWEEP_DONE, j, &got, err, sizeof(err)), 0);
	assert_int_equal(got.sweep, 17);
	assert_int_equal(got.chunk, 2);
	assert_int_equal(got.chunks, 2);
	assert_int_equal(got.miners, 3);
	assert_int_equal(got.n_macs, 1);
	assert_string_equal(got.macs[0], "aa:bb:cc:dd:ee:03");
	hive_msg_free(HIVE_MSG_SWEEP_DONE, &got);
	json_decref(j);

	/* No chunk fields: the whole list, as before chunks existed. */
	j = json_pack("{s:s,s:[s]}", "subnet", "127.64.0.0/24", "macs", "AA:BB:CC:DD:EE:01");
	assert_int_equal(hive_msg_decode(HIVE_MSG_SWEEP_DONE, j, &got, err, sizeof(err)), 0);
	assert_int_equal(got.chunks, HIVE_MSG_NO_INT);
	assert_int_equal(got.sweep, HIVE_MSG_NO_INT);
	hive_msg_free(HIVE_MSG_SWEEP_DONE, &got);
	json_decref(j);
}

static void senders_and_roles(void **state)
{
	(void)state;
	assert_int_equal(hive_msg_role("pollerd"), HIVE_ROLE_POLLERD);
	assert_int_equal(hive_msg_role("nobody"), 0);
	assert_int_equal(hive_msg_topic(HIVE_MSG_SWEEP_DONE)->senders, HIVE_ROLE_DISCOVERD);
	assert_true(hive_msg_topic(HIVE_MSG_STATUS_RESULT)->senders & HIVE_ROLE_POLLERD);
	assert_false(hive_msg_topic(HIVE_MSG_STATUS_RESULT)->senders & HIVE_ROLE_DISCOVERD);
	assert_int_equal(hive_msg_kind_of("hive.nothing", HIVE_CH_EVENTS), -1);
	assert_int_equal(hive_msg_kind_of(HIVE_TOPIC_CTL_CREDENTIALS, HIVE_CH_REPLY),
			 HIVE_MSG_CTL_CREDENTIALS_REPLY);
	assert_int_equal(hive_msg_kind_of(HIVE_TOPIC_CTL_RECHECK, HIVE_CH_REQUEST),
			 HIVE_MSG_CTL_RECHECK);
	assert_int_equal(hive_msg_topic(HIVE_MSG_CTL_RECHECK)->senders, HIVE_ROLE_DISCOVERD);
}

#define DOC_BEGIN "<!-- topics:begin -->\n"
#define DOC_END "<!-- topics:end -->"

/* docs/bus.md holds exactly what the tables say. */
static void bus_doc_matches_tables(void **state)
{
	char *doc = tl_read_file("docs/bus.md"), *b, *e, *want = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&want, &len);

	(void)state;
	assert_non_null(doc);
	hive_msg_doc(f);
	fclose(f);
	b = strstr(doc, DOC_BEGIN);
	e = b ? strstr(b, DOC_END) : NULL;
	if (!b || !e)
		fail_msg("docs/bus.md lacks the %s ... %s markers", DOC_BEGIN, DOC_END);
	b += strlen(DOC_BEGIN);
	if ((size_t)(e - b) != len || memcmp(b, want, len) != 0) {
		tl_write_file("build/msg-topics.md", want);
		fail_msg("docs/bus.md's topic list differs from libhive/msg.c's tables; the "
			 "tables' version is in build/msg-topics.md (or run test_msg --doc)");
	}
	free(doc);
	free(want);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_every_topic),
		cmocka_unit_test(absent_is_left_out),
		cmocka_unit_test(encode_from_struct),
		cmocka_unit_test(refusals_name_the_field),
		cmocka_unit_test(sweep_chunks),
		cmocka_unit_test(senders_and_roles),
		cmocka_unit_test(bus_doc_matches_tables),
	};

	if (argc > 1 && strcmp(argv[1], "--doc") == 0) {
		hive_msg_doc(stdout);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
