/* bench_sweep — discovery at 10,000 miners on two cores, at the shipped
 * cadence (status every 15 s, telemetry every 60 s, a sweep every 30 s),
 * next to nmap's open-port scan of the same addresses.
 *
 *   1. bin/minersim with 10,000 miners on 127.102.0.0/18 (16,382
 *      addresses). nmap -n -Pn -p <port> --open on that /18, 3 times, the
 *      best kept (must find the 10,000); skipped when nmap is missing.
 *   2. bin/apid, bin/discoverd, two bin/pollerd and one bin/telemetryd at
 *      the config defaults. The first sweep: probe, /info, credentials,
 *      unlock and a new key on every miner.
 *   3. BENCH_RESWEEPS (3) sweeps after it, with the whole fleet polled
 *      meanwhile: duration, discoverd's CPU per sweep, how many miners
 *      /info alone confirmed, how many were marked offline.
 *
 * Prints "figure: bench sweep ..." lines. Exits non-zero when a re-sweep
 * takes longer than its interval (30 s), a miner is marked offline, or an
 * event is lost. Loopback only; nmap scans nothing but the simulator's
 * 127.102.0.0/18.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "hive/clock.h"
#include "hive/log.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET     "127.102.0.0/18"
#define MINERS     10000
#define INTERVAL_S 30                  /* intervals.discovery_seconds, the default */

static struct ts_suite S;

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static json_t *health(void)
{
	return ts_api_get(&S, "/api/health");
}

static json_t *disc_counters(void)
{
	json_t *h = health(), *d, *c = NULL;
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

/* apid's record of the subnet's last sweep (new reference). */
static json_t *last_sweep(void)
{
	json_t *h = health(), *sw, *out = NULL;
	size_t i;

	json_array_foreach(json_object_get(h, "sweeps"), i, sw)
		if (strcmp(json_string_value(json_object_get(sw, "subnet")), SUBNET) == 0)
			out = json_incref(sw);
	json_decref(h);
	return out;
}

/* nmap's scan of the /18 for the miners' port: the best of 3, in ms, with
 * the open ports it found; -1 when nmap is not there. */
static long long nmap_ms(long long *open_ports)
{
	char cmd[256], *out = NULL, *p;
	long long best = -1;

	if (access("/usr/bin/nmap", X_OK) != 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		long long t0 = hive_mono_ms(), ms, n = 0;

		snprintf(cmd, sizeof(cmd), "nmap -n -Pn -p %d --open -oG - " SUBNET " 2>&1",
			 S.miner_port);
		if (tl_run(cmd, &out) != 0) {
			free(out);
			return -1;
		}
		ms = hive_mono_ms() - t0;
		for (p = out; p && (p = strstr(p, "/open/")); p++)
			n++;
		free(out);
		out = NULL;
		if (best < 0 || ms < best)
			best = ms;
		*open_ports = n;
	}
	return best;
}

int main(void)
{
	int resweeps = tl_env_int("BENCH_RESWEEPS", 3), failures = 0;
	long long nmap, open_ports = 0, want, first_ms, lost;
	json_t *sw, *c0, *c1, *h;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	hive_log_init("bench_sweep", HIVE_LOG_ERROR, NULL);
	if (ts_init(&S, "bench-sweep") < 0 ||
	    ts_merge(&S, "{\"intervals\": {\"heartbeat_seconds\": 1},"
		     " \"http\": {\"auth\": {\"open_reads\": true}}}") < 0 ||
	    ts_minersim(&S, SUBNET, MINERS, (const char *[]){ "--seed", "102", NULL }) < 0)
		goto fail;

	/* 1. nmap alone on the fleet */
	nmap = nmap_ms(&open_ports);
	if (nmap < 0)
		printf("figure: bench sweep nmap not installed (apt-get install nmap): no baseline\n");
	else
		printf("figure: bench sweep nmap /18 open-port scan ms=%lld open=%lld (best of 3, "
		       "the fleet idle)\n", nmap, open_ports);
	if (nmap >= 0 && open_ports != MINERS) {
		fprintf(stderr, "bench_sweep: nmap found %lld open ports, the fleet has %d\n",
			open_ports, MINERS);
		failures++;
	}

	/* 2. the stack and its first sweep */
	if (!ts_start(&S, "apid", NULL, NULL, NULL) || !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd1", NULL, NULL) ||
	    !ts_start(&S, "telemetryd", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		goto fail;
	want = 1;
	if (tl_wait_until(300000, sweeps_at_least, &want) < 0 || !(sw = last_sweep()))
		goto fail;
	first_ms = int_at(sw, "duration_ms");
	printf("figure: bench sweep first /18 miners=%lld ms=%lld (probe, /info, credentials, "
	       "unlock, new key: every miner) cpu_discoverd=%.1fs\n", int_at(sw, "miners"),
	       first_ms, tl_proc_cpu_s(ts_pid(&S, "discoverd")));
	if (int_at(sw, "miners") != MINERS)
		failures++;
	json_decref(sw);

	/* 3. re-sweeps, the fleet polled meanwhile */
	for (int i = 0; i < resweeps; i++) {
		double cpu0 = tl_proc_cpu_s(ts_pid(&S, "discoverd")), cpu;
		long long ms, confirmed, full;

		c0 = disc_counters();
		want = int_at(c0, "sweeps") + 1;
		if (tl_wait_until((INTERVAL_S * 3) * 1000, sweeps_at_least, &want) < 0)
			goto fail;
		cpu = tl_proc_cpu_s(ts_pid(&S, "discoverd")) - cpu0;
		c1 = disc_counters();
		sw = last_sweep();
		ms = int_at(sw, "duration_ms");
		confirmed = int_at(c1, "unchanged") - int_at(c0, "unchanged");
		full = int_at(c1, "identified") - int_at(c0, "identified") - confirmed;
		printf("figure: bench sweep re-sweep %d /18 miners=%lld ms=%lld (interval %d s) "
		       "cpu_discoverd=%.2fs (%.0fus/address) confirmed_by_info=%lld whole_path=%lld "
		       "offline=%lld kept=%lld nmap_ratio=%.1f\n", i + 1, int_at(sw, "miners"), ms,
		       INTERVAL_S, cpu, cpu * 1e6 / 16382, confirmed, full, int_at(sw, "offline"),
		       int_at(sw, "kept"), nmap > 0 ? (double)ms / (double)nmap : 0.0);
		if (ms > INTERVAL_S * 1000 || int_at(sw, "offline") != 0 ||
		    int_at(sw, "miners") != MINERS)
			failures++;
		json_decref(c0);
		json_decref(c1);
		json_decref(sw);
	}
	h = health();
	lost = int_at(json_object_get(h, "events"), "lost");
	printf("figure: bench sweep events lost=%lld; peak RSS discoverd=%ld KiB apid=%ld KiB\n",
	       lost, tl_proc_kib(ts_pid(&S, "discoverd"), "VmHWM"),
	       tl_proc_kib(ts_pid(&S, "apid"), "VmHWM"));
	if (lost != 0)
		failures++;
	json_decref(h);
	ts_down(&S, false);
	return failures ? 1 : 0;
fail:
	fprintf(stderr, "bench_sweep: the stack did not come up or sweep\n");
	ts_dump_logs(&S, 30);
	ts_down(&S, true);
	return 1;
}
