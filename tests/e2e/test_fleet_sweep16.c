/* test_fleet_sweep16 — a /16 is a normal configuration for discoverd: a
 * simulated fleet of 300 miners and 60 other hosts spread over
 * 127.63.0.0/16, bin/apid and bin/discoverd. The first sweep must probe all
 * 65,534 addresses, find every miner and provision it, in a few seconds and
 * without memory that grows with the range (discoverd's peak RSS is read
 * from /proc). A second sweep must create no key and unlock nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET     "127.63.0.0/16"
#define MINERS     300
#define NON_MINERS 60
#define HOSTS      65534
/* Peak RSS of discoverd; AddressSanitizer's shadow memory and quarantine
 * add tens of MB to any process, so a sanitizer build gets more room. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_MAX_KB (256 * 1024)
#else
#define RSS_MAX_KB (64 * 1024)
#endif

static struct ts_suite S;       /* minersim, apid, discoverd */

static json_t *get_json(const char *base, const char *path)
{
	char url[512];
	long status = 0;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", base, path);
	j = tl_http_json("GET", url, NULL, NULL, &status);
	if (j && status != 200) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* discoverd's heartbeat counters as apid shows them (new reference). */
static json_t *disc_counters(void)
{
	json_t *h = get_json(S.api, "/api/health"), *d, *c = NULL;
	size_t i;

	if (!h)
		return NULL;
	json_array_foreach(json_object_get(h, "daemons"), i, d)
		if (int_at(d, "pid") == ts_pid(&S, "discoverd"))
			c = json_incref(json_object_get(d, "counters"));
	json_decref(h);
	return c;
}

static long rss_peak_kb(pid_t pid)
{
	char path[64], *text, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(text = tl_read_file(path)))
		return -1;
	if ((p = strstr(text, "VmHWM:")))
		kb = strtol(p + 6, NULL, 10);
	free(text);
	return kb;
}

static bool sweeps_at_least(void *arg)
{
	long long want = *(long long *)arg;
	json_t *c = disc_counters();
	bool ok = c && int_at(c, "sweeps") >= want;

	json_decref(c);
	return ok;
}

static int up(void **state)
{
	char non[16];
	const char *sim_args[] = { "--non-miners", non, "--seed", "16", NULL };

	(void)state;
	snprintf(non, sizeof(non), "%d", NON_MINERS);
	if (ts_init(&S, "sweep16") < 0)
		return -1;
	if (ts_merge(&S, "{\"network\": {\"miner_probe_timeout_ms\": 1000,\n"
		     "   \"probe_concurrency\": 2048},\n"
		     " \"intervals\": {\"discovery_seconds\": 8, \"status_seconds\": 3600,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		     " \"http\": {\"auth\": {\"open_reads\": true}}}") < 0 ||
	    ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 ||
	    !ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0) {
		ts_down(&S, true);
		return -1;
	}
	return 0;
}

static int down(void **state)
{
	(void)state;
	ts_down(&S, false);
	return 0;
}

static void test_sweep16(void **state)
{
	json_t *c, *h, *sw, *list, *m;
	long long one = 1, two = 2, created, reused, unlocks;
	size_t i;
	long rss;
	int keyed = 0;

	(void)state;
	if (tl_wait_until(60000, sweeps_at_least, &one) < 0) {
		ts_dump_logs(&S, 40);
		fail_msg("no sweep of " SUBNET " within 60 s");
	}
	h = get_json(S.api, "/api/health");
	assert_non_null(h);
	sw = NULL;
	json_array_foreach(json_object_get(h, "sweeps"), i, m)
		if (strcmp(json_string_value(json_object_get(m, "subnet")), SUBNET) == 0)
			sw = m;
	assert_non_null(sw);
	rss = rss_peak_kb(ts_pid(&S, "discoverd"));
	printf("figure: discovery sweep /16 addresses=%lld miners=%lld ms=%lld rss_peak_kb=%ld\n",
	       int_at(sw, "probed"), int_at(sw, "miners"), int_at(sw, "duration_ms"), rss);
	assert_int_equal(int_at(sw, "probed"), HOSTS);
	assert_int_equal(int_at(sw, "miners"), MINERS);
	assert_true(rss > 0 && rss < RSS_MAX_KB);
	json_decref(h);

	/* Every miner has its key on the miner, as the simulator knows it. */
	list = get_json(S.admin, "/sim/miners");
	assert_non_null(list);
	json_array_foreach(list, i, m)
		keyed += int_at(m, "api_keys") == 1;
	assert_int_equal(keyed, MINERS);
	json_decref(list);

	/* The next sweep checks the keys and provisions nothing. */
	c = disc_counters();
	assert_non_null(c);
	created = int_at(c, "keys_created");
	reused = int_at(c, "keys_reused");
	unlocks = int_at(c, "unlock_attempts");
	assert_int_equal(created + reused, MINERS);
	json_decref(c);
	if (tl_wait_until(30000, sweeps_at_least, &two) < 0)
		fail_msg("no second sweep within 30 s");
	c = disc_counters();
	assert_int_equal(int_at(c, "keys_created"), created);
	assert_int_equal(int_at(c, "keys_reused"), reused);
	assert_int_equal(int_at(c, "unlock_attempts"), unlocks);
	assert_true(int_at(c, "keys_verified") >= MINERS);
	printf("figure: second /16 sweep: keys verified=%lld, created 0, unlocks 0, last_sweep_ms=%lld\n",
	       int_at(c, "keys_verified"), int_at(c, "last_sweep_ms"));
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep16),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, up, down);
}
