/* test_fleet_sweep16 — a /16 full of miners: 65,000 simulated miners and
 * 64 other hosts on 127.63.0.0/16, bin/apid and bin/discoverd.
 *
 * One minersim cannot listen on 65,000 addresses here (a listener is a
 * descriptor, and RLIMIT_NOFILE's hard limit is 20,000 without
 * CAP_SYS_RESOURCE), so eight of them share the /16, one /19 each; their
 * start time and memory are figures of the test.
 *
 *   1. The first sweep probes all 65,534 addresses, finds every miner and
 *      provisions it. Its hive.sweep.done list (65,000 MACs, over the
 *      bus's 1 MiB message cap in one piece) arrives in chunks that apid
 *      puts together: every miner online with a key, nobody offline.
 *   2. 2% of each simulator's miners are unplugged. Within the two sweeps
 *      that follow, apid marks exactly those offline (its log names each
 *      one; nobody else), the re-sweeps confirm the others with /info
 *      alone, and no list was incomplete.
 * discoverd's peak RSS grows with the miners, not with the range.
 *
 * The first sweep is most of the run: provisioning 65,000 miners costs
 * ~1.6 ms of CPU each over all processes, 104–190 s on the 2-core machine
 * while other work runs (the whole test: 170–250 s).
 *
 * `make test` runs a smaller fleet (8 x 1,000 miners, a 64 KiB message cap
 * so that the list still comes in chunks); the whole /16 is
 * `make test-large` (SWEEP16_FULL=1).
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

#include "hive/clock.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET       "127.63.0.0/16"
#define HOSTS        65534
#define SIMS         8                 /* one /19 each: 127.63.(32 k).0/19 */
#define NON_MINERS   8                 /* per simulator */
#define UNPLUG_SHARE 0.02
/* `make test` runs 8 x 1,000 miners with bus.max_message_bytes 64 KiB, so
 * that the list still comes in chunks (~3,000 MACs each); `make test-large`
 * (SWEEP16_FULL=1) runs the whole /16: 8 x 8,125 miners at the default
 * 1 MiB cap (~52,000 MACs a chunk), 3-4 minutes on two cores. */
static int per_sim = 1000, max_msg = 65536, sweep_wait_s = 600;
#define MINERS       (SIMS * per_sim)
/* discoverd's peak RSS: a base, and what each miner may cost. AddressSanitizer's
 * shadow memory and quarantine add tens of MB to any process. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_MAX_KB   (256 * 1024 + MINERS)
#else
#define RSS_MAX_KB   (32 * 1024 + MINERS)   /* 32 MiB + 1 KiB per miner */
#endif

static struct ts_suite S;       /* apid, discoverd */
static struct tl_sim sims[SIMS];
static int admin_port[SIMS];
static long long sims_start_ms, sims_start_max_ms, sims_rss_kb;

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* discoverd's heartbeat counters as apid shows them (new reference). */
static json_t *disc_counters(void)
{
	json_t *h = ts_api_get(&S, "/api/health"), *d, *c = NULL;
	size_t i;

	json_array_foreach(json_object_get(h, "daemons"), i, d)
		if (int_at(d, "pid") == ts_pid(&S, "discoverd"))
			c = json_incref(json_object_get(d, "counters"));
	json_decref(h);
	return c;
}

static long long disc_counter(const char *name)
{
	json_t *c = disc_counters();
	long long v = int_at(c, name);

	json_decref(c);
	return v;
}

static bool sweeps_at_least(void *arg)
{
	return disc_counter("sweeps") >= *(long long *)arg;
}

static void wait_sweeps(long long n)
{
	if (tl_wait_until(sweep_wait_s * 1000, sweeps_at_least, &n) < 0) {
		ts_dump_logs(&S, 30);
		fail_msg("discoverd did not finish sweep %lld within %d s (at %lld)", n,
			 sweep_wait_s, disc_counter("sweeps"));
	}
}

/* apid's record of the subnet's last sweep (new reference). */
static json_t *last_sweep(json_t **health)
{
	json_t *h = ts_api_get(&S, "/api/health"), *sw, *out = NULL;
	size_t i;

	json_array_foreach(json_object_get(h, "sweeps"), i, sw)
		if (strcmp(json_string_value(json_object_get(sw, "subnet")), SUBNET) == 0)
			out = json_incref(sw);
	if (health)
		*health = h;
	else
		json_decref(h);
	return out;
}

struct health_wait {
	const char *part, *field;
	long long want, have;
};

/* /api/health's part.field is `want` (fleet figures are cached ~1 s, the
 * roster reloads at most once a second, events may still be queued). */
static bool health_is(void *arg)
{
	struct health_wait *w = arg;
	json_t *h = ts_api_get(&S, "/api/health");

	w->have = int_at(json_object_get(h, w->part), w->field);
	json_decref(h);
	return w->have == w->want;
}

static void wait_health(const char *part, const char *field, long long want)
{
	struct health_wait w = { part, field, want, -1 };

	if (tl_wait_until(30000, health_is, &w) < 0)
		fail_msg("apid's health says %s.%s=%lld, want %lld", part, field, w.have, want);
}

static int up(void **state)
{
	static char sub[SIMS][32], admin[SIMS][32], seed[SIMS][16];
	char count[16], non[16], port[16], tag[32];

	(void)state;
	if (getenv("SWEEP16_FULL") && strcmp(getenv("SWEEP16_FULL"), "1") == 0) {
		per_sim = 8125;
		max_msg = 0;
		sweep_wait_s = 300;
	}
	if (ts_init(&S, "sweep16") < 0)
		return -1;
	snprintf(count, sizeof(count), "%d", per_sim);
	snprintf(non, sizeof(non), "%d", NON_MINERS);
	snprintf(port, sizeof(port), "%d", S.miner_port);
	for (int k = 0; k < SIMS; k++) {
		long long t0 = hive_mono_ms(), ms;
		const char *args[] = { "--subnet", sub[k], "--miners", count, "--non-miners", non,
				       "--port", port, "--admin", admin[k], "--seed", seed[k], NULL };

		snprintf(sub[k], sizeof(sub[k]), "127.63.%d.0/19", 32 * k);
		admin_port[k] = tl_free_port();
		snprintf(admin[k], sizeof(admin[k]), "127.0.0.1:%d", admin_port[k]);
		snprintf(seed[k], sizeof(seed[k]), "%d", 16 + k);
		snprintf(tag, sizeof(tag), "sweep16-sim%d", k);
		if (admin_port[k] <= 0 || tl_sim_start(&sims[k], "minersim", tag, args) < 0)
			goto fail;
		ms = hive_mono_ms() - t0;
		sims_start_ms += ms;
		if (ms > sims_start_max_ms)
			sims_start_max_ms = ms;
		sims_rss_kb += tl_proc_kib(sims[k].pid, "VmRSS");
	}
	if (ts_merge(&S, "{\"network\": {\"subnets\": [\"%s\"], \"port\": %d,\n"
		     "   \"miner_probe_timeout_ms\": 1000, \"probe_concurrency\": 2048},\n"
		     " \"intervals\": {\"discovery_seconds\": 8, \"status_seconds\": 3600,\n"
		     "   \"telemetry_seconds\": 3600, \"heartbeat_seconds\": 1},\n"
		     " \"http\": {\"auth\": {\"open_reads\": true}}}", SUBNET, S.miner_port) < 0 ||
	    (max_msg && ts_merge(&S, "{\"bus\": {\"max_message_bytes\": %d}}", max_msg) < 0) ||
	    !ts_start(&S, "apid", NULL, NULL, NULL) ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		goto fail;
	return 0;
fail:
	for (int k = 0; k < SIMS; k++)
		tl_sim_stop(&sims[k], true);
	ts_down(&S, true);
	return -1;
}

static int down(void **state)
{
	(void)state;
	ts_down(&S, false);
	for (int k = 0; k < SIMS; k++)
		tl_sim_stop(&sims[k], false);
	return 0;
}

/* "miner offline mac=" lines in apid's log: each MAC must be in want (an
 * object of MACs), and found is how many of want were named. */
static int offline_lines(const json_t *want, int *found)
{
	char *text = tl_read_file(ts_find(&S, "apid")->log), *p;
	int n = 0;

	*found = 0;
	for (p = text; p && (p = strstr(p, "miner offline mac=")); p++) {
		char mac[18];

		snprintf(mac, sizeof(mac), "%.17s", p + strlen("miner offline mac="));
		n++;
		if (json_object_get(want, mac))
			(*found)++;
		else if (n - *found <= 5)
			fprintf(stderr, "sweep16: %s marked offline but it is plugged in\n", mac);
	}
	free(text);
	return n;
}

static void test_sweep16(void **state)
{
	json_t *c, *sw, *h, *unplugged = json_object();
	long long t0 = hive_mono_ms(), first_ms, resweep_ms, s_after, chunks1, unchanged0, sweeps0;
	long long full;
	long rss;
	int lines, found, incomplete;

	(void)state;
	printf("figure: %d minersims, %d miners + %d other hosts on " SUBNET ": started one after "
	       "another in %lld ms (slowest %lld ms), RSS %lld MiB together\n", SIMS, MINERS,
	       SIMS * NON_MINERS, sims_start_ms, sims_start_max_ms, sims_rss_kb / 1024);

	/* 1. The first sweep: everyone found and keyed, the list in chunks. */
	wait_sweeps(1);
	first_ms = hive_mono_ms() - t0;
	chunks1 = disc_counter("sweep_chunks");
	sw = last_sweep(&h);
	assert_non_null(sw);
	rss = tl_proc_kib(ts_pid(&S, "discoverd"), "VmHWM");
	printf("figure: first sweep /16 addresses=%lld miners=%lld ms=%lld (stored %lld ms after "
	       "start) chunks=%lld discoverd_rss_peak_kb=%ld\n", int_at(sw, "probed"),
	       int_at(sw, "miners"), int_at(sw, "duration_ms"), first_ms, chunks1, rss);
	assert_int_equal(int_at(sw, "probed"), HOSTS);
	assert_int_equal(int_at(sw, "miners"), MINERS);
	assert_int_equal(int_at(sw, "offline"), 0);
	assert_true(chunks1 >= 2);
	wait_health("fleet", "online", MINERS);
	/* the roster: online and with a key */
	wait_health("scheduler", "miners", MINERS);
	json_decref(sw);
	json_decref(h);
	c = disc_counters();
	assert_int_equal(int_at(c, "keys_created") + int_at(c, "keys_reused"), MINERS);
	unchanged0 = int_at(c, "unchanged");
	sweeps0 = int_at(c, "sweeps");
	json_decref(c);

	/* 2. Unplug 2% of every simulator's miners. */
	for (int k = 0; k < SIMS; k++) {
		char url[64];
		long status = 0;
		json_t *r, *mac;
		size_t i;

		char body[96];

		snprintf(url, sizeof(url), "http://127.0.0.1:%d/sim/fault", admin_port[k]);
		snprintf(body, sizeof(body), "{\"target\":\"all\",\"share\":%.3f,"
			 "\"kind\":\"offline\"}", UNPLUG_SHARE);
		r = tl_http_json("POST", url, NULL, body, &status);
		assert_int_equal(status, 200);
		json_array_foreach(json_object_get(r, "applied"), i, mac) {
			char low[18];

			snprintf(low, sizeof(low), "%s", json_string_value(mac));
			for (char *q = low; *q; q++)
				*q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
			json_object_set_new(unplugged, low, json_true());
		}
		json_decref(r);
	}
	assert_int_equal(json_object_size(unplugged), (size_t)(SIMS * (int)(per_sim *
								     UNPLUG_SHARE + 0.5)));
	/* The sweep running now may have listed some before they went; the
	 * one after it starts after every fault. */
	s_after = disc_counter("sweeps") + 2;
	wait_sweeps(s_after);
	wait_health("fleet", "online", MINERS - (long long)json_object_size(unplugged));
	sw = last_sweep(&h);
	assert_non_null(sw);
	resweep_ms = int_at(sw, "duration_ms");
	lines = offline_lines(unplugged, &found);
	incomplete = (int)int_at(json_object_get(h, "events"), "sweeps_incomplete");
	c = disc_counters();
	printf("figure: re-sweep /16 miners=%lld ms=%lld, %lld of the sweeps' miners confirmed by "
	       "/info alone; unplugged %zu, marked offline %d (of which unplugged %d), "
	       "incomplete lists %d, online now %lld\n", int_at(sw, "miners"), resweep_ms,
	       int_at(c, "unchanged") - unchanged0, json_object_size(unplugged), lines, found,
	       incomplete, int_at(json_object_get(h, "fleet"), "online"));
	assert_int_equal(int_at(sw, "miners"), MINERS - (long long)json_object_size(unplugged));
	assert_int_equal(found, (int)json_object_size(unplugged));
	assert_int_equal(lines, found);
	assert_int_equal(incomplete, 0);
	/* Re-sweeps confirm unchanged miners with /info alone: all but the
	 * unplugged and the tenth whose turn it is for the whole path, in
	 * each sweep that began after the count was read (the one running
	 * then had counted part of its miners already). */
	full = int_at(c, "sweeps") - sweeps0 - 1;
	assert_true(full >= 1);
	if (int_at(c, "unchanged") - unchanged0 <
	    full * (MINERS - (long long)json_object_size(unplugged)) * 8 / 10)
		fail_msg("%lld confirmed by /info alone in %lld whole re-sweeps of %lld miners",
			 int_at(c, "unchanged") - unchanged0, full,
			 MINERS - (long long)json_object_size(unplugged));
	assert_int_equal(int_at(c, "keys_created") + int_at(c, "keys_reused"), MINERS);
	rss = tl_proc_kib(ts_pid(&S, "discoverd"), "VmHWM");
	printf("figure: discoverd peak RSS %ld KiB for %d miners (limit %d KiB); apid peak RSS %ld "
	       "KiB\n", rss, MINERS, RSS_MAX_KB, tl_proc_kib(ts_pid(&S, "apid"), "VmHWM"));
	assert_true(rss > 0 && rss < RSS_MAX_KB);
	json_decref(c);
	json_decref(sw);
	json_decref(h);
	json_decref(unplugged);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep16),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, up, down);
}
