/* test_miner_metrics — GET /metrics per miner, end to end: bin/minersim with
 * 40 miners, bin/apid, bin/discoverd and bin/pollerd. One miner is made
 * managed, one gets a fault so that its last error is newer than its
 * status. Then every miner's series must match GET /api/miners (and the
 * catalogue of GET /api/models for preset watts) exactly, with no series
 * left over, and `promtool check metrics` must say nothing.
 *
 * Statuses keep arriving, so the comparison takes a /metrics scrape
 * between two GET /api/miners that agree (same latest status, error and
 * online flag for every miner), and tries again otherwise.
 *
 * KEEP_TMP=1 keeps the run directory (config, database, every log).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET   "127.68.0.0/24"
#define MINERS   40
#define STATUS_S 5
#define TRIES    30

static struct ts_suite S;

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static int stack_up(void **state)
{
	(void)state;
	if (ts_init(&S, "miner-metrics") < 0)
		return -1;
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"intervals\": {\"discovery_seconds\": 3600, \"status_seconds\": %d,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1}}", STATUS_S) < 0 ||
	    ts_minersim(&S, SUBNET, MINERS, (const char *[]){ "--seed", "15", NULL }) < 0 ||
	    !ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0 ||
	    !ts_token(&S) || ts_wait_miners(&S, MINERS, 60000) < 0) {
		ts_dump_logs(&S, 20);
		ts_down(&S, true);
		return -1;
	}
	return 0;
}

static int stack_down(void **state)
{
	(void)state;
	ts_down(&S, false);
	return 0;
}

/* ------------------------------------------------------------ the comparison */

/* Per-miner samples of the text: "name{labels}" -> value (as text). */
static json_t *miner_series(const char *text)
{
	json_t *by = json_object();
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n'), *sp;
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char key[512];

		if (strncmp(line, "powerhive_miner_", 16) == 0 &&
		    strncmp(line, "powerhive_miner_errors_", 23) != 0 &&
		    (sp = memrchr(line, ' ', n)) && (size_t)(sp - line) < sizeof(key)) {
			memcpy(key, line, (size_t)(sp - line));
			key[sp - line] = '\0';
			if (json_object_get(by, key))
				fail_msg("series %s twice", key);
			json_object_set_new(by, key,
					    json_stringn(sp + 1, n - (size_t)(sp - line) - 1));
		}
		line = nl ? nl + 1 : NULL;
	}
	return by;
}

struct cmp {
	json_t *series;          /* from miner_series */
	size_t matched;
	int measured[2], fans, managed, errors;   /* what the fleet exercised */
};

/* name{labels[,extra]} must be in the text with value v, as far as the
 * API's 7 significant digits (JSON_REAL_PRECISION in apid/api.c) tell. */
static void expect(struct cmp *c, const char *name, const char *labels, const char *extra,
		   double v)
{
	char key[512];
	const char *got;
	double g;

	snprintf(key, sizeof(key), "%s{%s%s%s}", name, labels, extra ? "," : "",
		 extra ? extra : "");
	got = json_string_value(json_object_get(c->series, key));
	if (!got)
		fail_msg("no series %s (expected %.17g)", key, v);
	g = strtod(got, NULL);
	if (fabs(g - v) > 5e-7 * fabs(v) + 1e-9)
		fail_msg("%s is %s, the API says %.17g", key, got, v);
	c->matched++;
}

/* A number of the status when the API has one. */
static void expect_num(struct cmp *c, const char *name, const char *labels, const json_t *st,
		       const char *key)
{
	json_t *v = json_object_get(st, key);

	if (json_is_number(v))
		expect(c, name, labels, NULL, json_number_value(v));
}

static void compare_miner(struct cmp *c, const json_t *m, const json_t *models)
{
	const json_t *st = json_object_get(m, "status"), *err = json_object_get(m, "last_error");
	bool online = json_is_true(json_object_get(m, "online"));
	bool managed = json_is_true(json_object_get(m, "managed"));
	char labels[200], extra[300];
	json_t *v, *f;
	size_t i;

	snprintf(labels, sizeof(labels), "mac=\"%s\",model=\"%s\"", str_at(m, "id"),
		 str_at(m, "model"));
	snprintf(extra, sizeof(extra), "ip=\"%s\",hostname=\"%s\"", str_at(m, "last_ip"),
		 str_at(m, "hostname"));
	expect(c, "powerhive_miner_info", labels, extra, 1);
	expect(c, "powerhive_miner_online", labels, NULL, online);
	expect(c, "powerhive_miner_managed", labels, NULL, managed);
	c->managed += managed;
	snprintf(extra, sizeof(extra), "state=\"%s\"", !online ? "offline"
		 : *str_at(st, "state") ? str_at(st, "state") : "unknown");
	expect(c, "powerhive_miner_state", labels, extra, 1);
	if (json_is_object(err) &&
	    (!json_is_object(st) || json_integer_value(json_object_get(err, "ts")) >
				   json_integer_value(json_object_get(st, "ts")))) {
		snprintf(extra, sizeof(extra), "kind=\"%s\"", str_at(err, "kind"));
		expect(c, "powerhive_miner_last_error", labels, extra, 1);
		c->errors++;
	}
	if (!online || !json_is_object(st))
		return;
	expect_num(c, "powerhive_miner_hashrate_ghs", labels, st, "hr_realtime_ghs");
	expect_num(c, "powerhive_miner_power_watts", labels, st, "power_w");
	expect_num(c, "powerhive_miner_chip_temp_celsius", labels, st, "chip_temp_max");
	expect_num(c, "powerhive_miner_pcb_temp_celsius", labels, st, "pcb_temp_max");
	if (json_is_boolean(v = json_object_get(st, "power_metered"))) {
		expect(c, "powerhive_miner_power_measured", labels, NULL, json_is_true(v));
		c->measured[json_is_true(v)]++;
	}
	v = json_object_get(json_object_get(models, str_at(m, "model")), str_at(st, "preset"));
	if (json_is_number(v))
		expect(c, "powerhive_miner_preset_watts", labels, NULL, json_number_value(v));
	json_array_foreach(json_object_get(st, "fans"), i, f) {
		if (!json_is_number(f))
			continue;
		snprintf(extra, sizeof(extra), "fan=\"%zu\"", i);
		expect(c, "powerhive_miner_fan_rpm", labels, extra, json_number_value(f));
		c->fans++;
	}
}

/* Two GET /api/miners agree on what the series show: the same miners
 * with the same latest status, last error, online and managed flags. */
static bool same_moment(const json_t *a, const json_t *b)
{
	static const char *const keys[] = { "id", "status", "last_error", "online", "managed" };
	const json_t *ma = json_object_get(a, "miners"), *mb = json_object_get(b, "miners");

	if (json_array_size(ma) != json_array_size(mb))
		return false;
	for (size_t i = 0; i < json_array_size(ma); i++) {
		const json_t *x = json_array_get(ma, i), *y = json_array_get(mb, i);

		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!json_equal(json_object_get(x, keys[k]), json_object_get(y, keys[k])))
				return false;
	}
	return true;
}

/* model alias -> preset name -> watts, from GET /api/models. */
static json_t *preset_watts(void)
{
	json_t *list = ts_api_get(&S, "/api/models"), *by = json_object(), *md, *p;
	size_t i, k;

	json_array_foreach(json_object_get(list, "models"), i, md) {
		json_t *w = json_object();

		json_array_foreach(json_object_get(md, "presets"), k, p)
			json_object_set(w, str_at(p, "name"), json_object_get(p, "watts"));
		json_object_set_new(by, str_at(md, "alias"), w);
	}
	json_decref(list);
	return by;
}

static void promtool_clean(const char *text)
{
	char path[1200], lint[1200], cmd[2500], *out;

	snprintf(path, sizeof(path), "%s/metrics.txt", S.dir);
	snprintf(lint, sizeof(lint), "%s/metrics.lint", S.dir);
	assert_int_equal(tl_write_file(path, text), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s 2>&1", path, lint);
	if (system(cmd) != 0 || !(out = tl_read_file(lint)))
		fail_msg("promtool check metrics failed (is the prometheus package installed?"
			 " `make test` installs it); see %s", path);
	if (*out)
		fail_msg("promtool check metrics says:\n%s", out);
	free(out);
}

static bool has_newer_error(void *arg)
{
	char path[64];
	json_t *m, *st, *err;
	bool yes;

	snprintf(path, sizeof(path), "/api/miners/%s", (const char *)arg);
	m = ts_api_get(&S, path);
	st = json_object_get(m, "status");
	err = json_object_get(m, "last_error");
	yes = json_is_object(err) && json_integer_value(json_object_get(err, "ts")) >
				     json_integer_value(json_object_get(st, "ts"));
	json_decref(m);
	if (!yes)
		tl_sleep_ms(200);
	return yes;
}

static void test_every_miner(void **state)
{
	const char *const hdrs[] = { S.auth, NULL };
	json_t *a = NULL, *b = NULL, *models, *m;
	char url[128], path[64], managed[18], faulted[18], body[160], *text = NULL;
	struct cmp c = { 0 };
	long st = 0;
	int tries;
	size_t i;

	(void)state;
	a = ts_api_get(&S, "/api/miners?limit=1000");
	assert_int_equal(json_array_size(json_object_get(a, "miners")), MINERS);
	m = json_object_get(a, "miners");
	snprintf(managed, sizeof(managed), "%s", str_at(json_array_get(m, 0), "id"));
	snprintf(faulted, sizeof(faulted), "%s", str_at(json_array_get(m, 1), "id"));
	json_decref(a);
	a = NULL;
	snprintf(path, sizeof(path), "/api/miners/%s", managed);
	json_decref(ts_api(&S, "PATCH", path, "{\"managed\":true}", &st));
	assert_int_equal(st, 200);
	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"http500\"}", faulted);
	assert_int_equal(ts_sim_post(&S, S.admin, "/sim/fault", body), 200);
	assert_int_equal(tl_wait_until(4 * STATUS_S * 1000, has_newer_error, faulted), 0);

	models = preset_watts();
	snprintf(url, sizeof(url), "%s/metrics", S.api);
	for (tries = 0; tries < TRIES; tries++) {
		json_decref(a);
		json_decref(b);
		free(text);
		text = NULL;
		a = ts_api_get(&S, "/api/miners?limit=1000");
		if (tl_http("GET", url, hdrs, NULL, &text, &st) < 0 || st != 200)
			fail_msg("GET /metrics: %ld", st);
		b = ts_api_get(&S, "/api/miners?limit=1000");
		if (a && b && same_moment(a, b))
			break;
	}
	if (tries == TRIES)
		fail_msg("no scrape between two equal GET /api/miners in %d tries", TRIES);
	c.series = miner_series(text);
	json_array_foreach(json_object_get(a, "miners"), i, m)
		compare_miner(&c, m, models);
	if (c.matched != json_object_size(c.series))
		fail_msg("%zu per-miner series, %zu expected from the API:\n%s",
			 json_object_size(c.series), c.matched, text);
	/* The fleet exercised what it should: both kinds of power, fans, the
	 * managed miner, the faulted miner's error. */
	assert_true(c.measured[0] > 0 && c.measured[1] > 0);
	assert_true(c.fans >= MINERS);
	assert_int_equal(c.managed, 1);
	snprintf(body, sizeof(body), "powerhive_miner_last_error{mac=\"%s\",", faulted);
	assert_true(c.errors >= 1 && strstr(text, body));
	printf("figure: /metrics per miner: %zu series for %d miners, %zu bytes, %d scrape(s)"
	       " to see a steady fleet\n", c.matched, MINERS, strlen(text), tries + 1);
	promtool_clean(text);
	json_decref(c.series);
	json_decref(models);
	json_decref(a);
	json_decref(b);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_miner),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
