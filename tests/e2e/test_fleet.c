/* test_fleet — the whole suite against a simulated fleet on loopback:
 * bin/minersim with 1,000 miners and some non-miner hosts on a /22, bin/apid,
 * bin/discoverd, two bin/pollerd and one bin/telemetryd, all started here
 * and checked only from the outside: apid's HTTP API on one side, the
 * simulator's ground truth (/sim/...) on the other.
 *
 * One stack serves every test, in order (each test leaves the fleet as the
 * next one expects it):
 *   1. discovery: every miner found by the first sweep, each with a
 *      working key, models and presets stored;
 *   2. every miner's status and telemetry within two intervals, matching
 *      the simulator (state, preset, hashrate, power, /boards firmware);
 *   3. a miner taken offline and back, a DHCP move, two miners swapping
 *      addresses, a changed password with the key deleted;
 *   4. faults on 10% of the fleet stay per-miner errors;
 *   5. one pollerd killed, then apid restarted: polling goes on;
 *   6. the changed password cost a bounded number of unlock attempts.
 *
 * FLEET_KEEP=1 (or KEEP_TMP=1) keeps the run directory (config, database,
 * every log).
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
#include <strings.h>
#include <unistd.h>

#include "hive/cfg.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET        "127.60.0.0/22"
#define NET_BASE      0x7f3c0000u      /* 127.60.0.0 */
#define NET_HOSTS     1022
#define MINERS        1000
#define NON_MINERS    16
#define DISCOVERY_S   10
/* Under AddressSanitizer every process runs several times slower; a
 * telemetryd parsing 167 /chains a second would saturate its core and its
 * own delays would show as miner timeouts. Same fleet, gentler cadence;
 * and the one simulator process serving 1,000 miners falls seconds behind
 * in the first round (every key, status and telemetry at once, then the
 * second sweep), so a request may wait longer for it. */
#ifdef __SANITIZE_ADDRESS__
#define STATUS_S      4
#define TELEMETRY_S   12
#define HTTP_TIMEOUT_MS 5000
#define JOB_TIMEOUT_S 8
#else
#define STATUS_S      3
#define TELEMETRY_S   6
#define HTTP_TIMEOUT_MS 2000
#define JOB_TIMEOUT_S 5
#endif
#define FAULTED       100              /* 10% of the fleet */

/* The stack: minersim, apid, discoverd, pollerd0, pollerd1, telemetryd. */
static struct ts_suite S;

/* Miners chosen by the tests (lower-case MACs) and what they remember. */
static char mac_offline[18], mac_moved[18], mac_password[18];
static char mac_swap[2][18], swap_ip[2][16];   /* swap_ip: each one's address before */
static char moved_to[16];
static long long pw_attempts_before = -1, pw_sweeps_before = -1;

/* ------------------------------------------------------------ helpers */

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

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

static long post(const char *base, const char *path, const char *body)
{
	const char *const hdrs[] = { "Content-Type: application/json", NULL };
	char url[512], *out = NULL;
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", base, path);
	if (tl_http("POST", url, hdrs, body, &out, &status) < 0)
		status = -1;
	free(out);
	return status;
}

/* apid's miners, keyed by id. New reference or NULL. */
static json_t *api_miners(void)
{
	json_t *list = get_json(S.api, "/api/miners?limit=5000"), *by, *m;
	size_t i;

	if (!list)
		return NULL;
	by = json_object();
	json_array_foreach(json_object_get(list, "miners"), i, m)
		json_object_set(by, json_string_value(json_object_get(m, "id")), m);
	json_decref(list);
	return by;
}

/* The simulator's miners, keyed by lower-case MAC. New reference or NULL. */
static json_t *sim_miners(void)
{
	json_t *list = get_json(S.admin, "/sim/miners"), *by, *m;
	size_t i;
	char mac[18];

	if (!list)
		return NULL;
	by = json_object();
	json_array_foreach(list, i, m) {
		snprintf(mac, sizeof(mac), "%s", json_string_value(json_object_get(m, "mac")));
		lower(mac);
		json_object_set(by, mac, m);
	}
	json_decref(list);
	return by;
}

/* A counter from discoverd's last heartbeat as apid shows it; -1 none. */
static long long disc_counter(const char *name)
{
	json_t *h = get_json(S.api, "/api/health"), *d;
	long long v = -1;
	size_t i;

	if (!h)
		return -1;
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		const char *src = json_string_value(json_object_get(d, "src"));
		json_t *c = json_object_get(json_object_get(d, "counters"), name);

		if (json_is_integer(json_object_get(d, "pid")) &&
		    json_integer_value(json_object_get(d, "pid")) == ts_pid(&S, "discoverd") && c &&
		    src)
			v = json_integer_value(c);
	}
	json_decref(h);
	return v;
}

static long long int_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static double num_at(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : -1.0;
}

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long status_ts(const json_t *m)
{
	return int_at(json_object_get(m, "status"), "ts");
}

static long long error_ts(const json_t *m)
{
	return int_at(json_object_get(m, "last_error"), "ts");
}

static void dump_logs(void)
{
	ts_dump_logs(&S, 15);
}

/* ------------------------------------------------------------ processes */

static int start_apid(void)
{
	return ts_start(&S, "apid", NULL, NULL, NULL) ? 0 : -1;
}

static int stack_up(void **state)
{
	char non[16];
	const char *sim_args[] = { "--non-miners", non, "--seed", "7", "--tune-seconds", "2",
				   "--reboot-seconds", "2", "--unlock-limit", "3",
				   "--firmware-mix", NULL };

	(void)state;
	if (ts_init(&S, "fleet") < 0)
		return -1;
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"network\": {\"miner_probe_timeout_ms\": 1000,\n"
		     "   \"probe_concurrency\": 2048, \"http_timeout_ms\": %d,\n"
		     "   \"http_concurrency\": 256},\n"
		     " \"intervals\": {\"discovery_seconds\": %d, \"status_seconds\": %d,\n"
		     "   \"telemetry_seconds\": %d, \"heartbeat_seconds\": 1},\n"
		     " \"scheduler\": {\"job_timeout_seconds\": %d},\n"
		     " \"http\": {\"auth\": {\"open_reads\": true}}}",
		     HTTP_TIMEOUT_MS, DISCOVERY_S, STATUS_S, TELEMETRY_S, JOB_TIMEOUT_S) < 0)
		goto fail;
	fprintf(stderr, "fleet: run directory %s\n", S.dir);
	snprintf(non, sizeof(non), "%d", NON_MINERS);
	if (ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 || start_apid() < 0 ||
	    !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd0", NULL, NULL) ||
	    !ts_start(&S, "pollerd", "pollerd1", NULL, NULL) ||
	    !ts_start(&S, "telemetryd", NULL, NULL, NULL))
		goto fail;
	return 0;
fail:
	/* cmocka skips the group teardown when the setup fails. */
	ts_down(&S, true);
	return -1;
}

static int stack_down(void **state)
{
	(void)state;
	ts_down(&S, false);
	return 0;
}

/* ------------------------------------------------------------ waiting */

/* The last sweep of our subnet as apid's /api/health shows it. */
static bool sweep_seen(void *arg)
{
	json_t **out = arg, *h = get_json(S.api, "/api/health"), *sw;
	size_t i;

	if (!h)
		return false;
	json_array_foreach(json_object_get(h, "sweeps"), i, sw) {
		if (strcmp(str_at(sw, "subnet"), SUBNET) == 0) {
			*out = json_incref(sw);
			json_decref(h);
			return true;
		}
	}
	json_decref(h);
	return false;
}

struct sweeps_wait {
	long long target;
};

static bool sweeps_reached(void *arg)
{
	struct sweeps_wait *w = arg;

	return disc_counter("sweeps") >= w->target;
}

/* Waits until discoverd has finished n more sweeps. */
static void wait_sweeps(int n)
{
	struct sweeps_wait w;
	long long now = -1;

	for (int i = 0; i < 100 && (now = disc_counter("sweeps")) < 0; i++)
		usleep(100000);
	assert_true(now >= 0);
	w.target = now + n;
	if (tl_wait_until((n + 1) * DISCOVERY_S * 1000 + 5000, sweeps_reached, &w) < 0)
		fail_msg("discoverd did not finish %d more sweeps (at %lld)", n,
			 disc_counter("sweeps"));
	usleep(500000);   /* the sweep's own events are stored by now */
}

/* ------------------------------------------------------------ 1. discovery */

struct all_keys {
	json_t *sim;
	int have;
};

static bool all_found_with_keys(void *arg)
{
	struct all_keys *a = arg;
	json_t *api = api_miners(), *m;
	const char *mac;
	int n = 0;

	if (!api)
		return false;
	json_object_foreach(a->sim, mac, m) {
		json_t *am = json_object_get(api, mac);

		if (am && json_is_true(json_object_get(am, "has_api_key")) &&
		    json_is_true(json_object_get(am, "online")))
			n++;
	}
	a->have = n;
	json_decref(api);
	return n == MINERS;
}

static void test_discovery(void **state)
{
	json_t *sweep = NULL, *sim, *api, *m, *models, *md;
	struct all_keys ak;
	const char *mac;
	long long t0 = hive_mono_ms(), ms;
	size_t i;
	int with_keys = 0, nmodels = 0;

	(void)state;
	if (tl_wait_until(60000, sweep_seen, &sweep) < 0) {
		dump_logs();
		fail_msg("no sweep of " SUBNET " reached apid within 60 s");
	}
	/* The first sweep apid stored: it must have found the whole fleet. */
	ms = int_at(sweep, "duration_ms");
	printf("figure: discovery sweep /22 miners=%lld ms=%lld (probed=%lld answered=%lld, "
	       "first sweep stored %lld ms after start)\n", int_at(sweep, "miners"), ms,
	       int_at(sweep, "probed"), int_at(sweep, "answered"), hive_mono_ms() - t0);
	assert_int_equal(int_at(sweep, "miners"), MINERS);
	assert_int_equal(int_at(sweep, "probed"), NET_HOSTS);
	assert_true(int_at(sweep, "answered") >= MINERS);
	assert_true(int_at(sweep, "answered") <= MINERS + NON_MINERS);
	json_decref(sweep);

	/* Ground truth: every simulated miner is in apid, online, with a key. */
	sim = sim_miners();
	assert_non_null(sim);
	assert_int_equal(json_object_size(sim), MINERS);
	ak.sim = sim;
	ak.have = 0;
	if (tl_wait_until(10000, all_found_with_keys, &ak) < 0)
		fail_msg("%d of %d miners in apid online with an API key", ak.have, MINERS);
	api = api_miners();
	assert_non_null(api);
	assert_int_equal(json_object_size(api), MINERS);   /* no non-miner slipped in */

	/* The key is really on the miner, described PowerHive. */
	json_decref(sim);
	sim = sim_miners();
	json_object_foreach(sim, mac, m) {
		json_t *descs = json_object_get(m, "api_key_descriptions"), *d;
		bool ours = false;

		json_array_foreach(descs, i, d)
			ours |= strcmp(json_string_value(d), "PowerHive") == 0;
		if (int_at(m, "api_keys") >= 1 && ours)
			with_keys++;
	}
	assert_int_equal(with_keys, MINERS);

	/* Models and their preset ladders, watts parsed. */
	models = get_json(S.api, "/api/models");
	assert_non_null(models);
	json_array_foreach(json_object_get(models, "models"), i, md) {
		json_t *p;
		size_t k;
		int watts = 0;

		json_array_foreach(json_object_get(md, "presets"), k, p)
			watts += json_is_integer(json_object_get(p, "watts"));
		assert_true(int_at(md, "num_chains") == 3);
		assert_true(json_array_size(json_object_get(md, "presets")) >= 10);
		assert_true(watts >= 9);     /* all but "disabled" carry their watts */
		nmodels++;
	}
	assert_int_equal(nmodels, 2);
	json_decref(models);
	json_decref(api);
	json_decref(sim);
	(void)ms;
}

/* ------------------------------------------------------------ 2. status, telemetry */

struct fresh {
	long long since;
	bool telemetry;
	int have;
	const json_t *skip;              /* object of MACs to ignore, or NULL */
	char stale[160];                 /* a few that were not fresh, for the failure */
};

static bool all_fresh(void *arg)
{
	struct fresh *f = arg;
	json_t *api = api_miners(), *m;
	const char *mac;
	int n = 0, want = 0;

	if (!api)
		return false;
	f->stale[0] = '\0';
	json_object_foreach(api, mac, m) {
		bool fresh = status_ts(m) >= f->since &&
			     (!f->telemetry || int_at(m, "last_telemetry") >= f->since);
		size_t used = strlen(f->stale);

		if (f->skip && json_object_get(f->skip, mac))
			continue;
		want++;
		if (fresh)
			n++;
		else if (used + 40 < sizeof(f->stale))
			snprintf(f->stale + used, sizeof(f->stale) - used, " %s(%+llds)", mac,
				 ((f->telemetry ? int_at(m, "last_telemetry") : status_ts(m)) -
				  f->since) / 1000);
	}
	f->have = n;
	json_decref(api);
	return want > 0 && n == want;
}

static void test_status_and_telemetry(void **state)
{
	json_t *api, *sim, *m, *sm;
	struct fresh f = { 0 };
	const char *mac;
	long long t0 = hive_wall_ms(), took;
	int hr_ok = 0, mining = 0, unmetered = 0, boards = 0, boards_want = 0;

	(void)state;
	f.since = t0;
	/* Two intervals of each kind, plus one request's time for the last
	 * answers. */
	if (tl_wait_until(2 * STATUS_S * 1000 + HTTP_TIMEOUT_MS, all_fresh, &f) < 0) {
		dump_logs();
		fail_msg("after two status intervals only %d of %d miners have a new status;"
			 " last status (s after the start) of some:%s", f.have, MINERS, f.stale);
	}
	took = hive_wall_ms() - t0;
	f.telemetry = true;
	if (tl_wait_until((int)(2 * TELEMETRY_S * 1000 + 3000 - took), all_fresh, &f) < 0) {
		dump_logs();
		fail_msg("after two telemetry intervals only %d of %d miners have new telemetry;"
			 " last (s after the start) of some:%s", f.have, MINERS, f.stale);
	}
	printf("figure: every miner's status within ms=%lld, telemetry within ms=%lld "
	       "(intervals %d s / %d s, %d miners)\n", took, hive_wall_ms() - t0, STATUS_S,
	       TELEMETRY_S, MINERS);

	api = api_miners();
	sim = sim_miners();
	assert_non_null(api);
	assert_non_null(sim);
	json_object_foreach(sim, mac, sm) {
		json_t *st;
		double hr, truth;

		m = json_object_get(api, mac);
		assert_non_null(m);
		st = json_object_get(m, "status");
		if (strcmp(str_at(st, "state"), str_at(sm, "state")) != 0 ||
		    strcmp(str_at(st, "preset"), str_at(sm, "preset")) != 0)
			fail_msg("%s: apid says %s/%s, the simulator %s/%s", mac, str_at(st, "state"),
				 str_at(st, "preset"), str_at(sm, "state"), str_at(sm, "preset"));
		if (strcmp(str_at(sm, "state"), "mining") == 0) {
			mining++;
			hr = num_at(st, "hr_realtime_ghs");
			truth = num_at(sm, "hashrate_ghs");
			if (truth > 0 && hr > truth * 0.9 && hr < truth * 1.1)
				hr_ok++;
		}
		/* Without metering, the running preset's expected watts. */
		if (!json_is_true(json_object_get(sm, "metered")) &&
		    strcmp(str_at(sm, "preset"), "disabled") != 0) {
			unmetered++;
			assert_false(json_is_true(json_object_get(st, "power_metered")));
			assert_int_equal(int_at(st, "power_w"), int_at(sm, "preset_watts"));
		}
		/* Firmware 1.3.x has /boards only: telemetry says so. */
		if (strncmp(str_at(sm, "firmware"), "1.3", 3) == 0) {
			boards_want++;
			boards += strcmp(str_at(m, "telemetry_source"), "boards") == 0;
		}
	}
	printf("figure: hashrate within 10%% of the simulator for %d of %d mining miners; "
	       "%d unmetered miners at their preset's watts; %d of %d /boards miners\n",
	       hr_ok, mining, unmetered, boards, boards_want);
	assert_true(mining > MINERS * 9 / 10);
	assert_int_equal(hr_ok, mining);
	assert_true(unmetered > 0);
	assert_true(boards_want > 0);
	assert_int_equal(boards, boards_want);

	/* One miner's chips, all of them, per chain. */
	{
		char path[128];
		json_t *t, *s0, *ch;
		size_t i;

		json_object_foreach(api, mac, m)
			break;
		snprintf(path, sizeof(path), "/api/miners/%s/telemetry?limit=1", mac);
		t = get_json(S.api, path);
		assert_non_null(t);
		s0 = json_array_get(json_object_get(t, "samples"), 0);
		assert_non_null(s0);
		assert_int_equal(json_array_size(json_object_get(s0, "chains")), 3);
		json_array_foreach(json_object_get(s0, "chains"), i, ch) {
			long long n = int_at(ch, "n_chips");

			assert_true(n == 76 || n == 126);
			assert_int_equal(json_array_size(json_object_get(json_object_get(ch, "chips"),
									 "hr")), n);
		}
		json_decref(t);
	}
	json_decref(api);
	json_decref(sim);
}

/* ------------------------------------------------------------ 3. offline, move, password */

/* An address of the subnet nothing listens on. */
static int free_address(char out[16])
{
	json_t *sim = get_json(S.admin, "/sim/miners"), *hosts = get_json(S.admin, "/sim/hosts");
	json_t *used = json_object(), *x;
	size_t i;
	int rc = -1;

	if (!sim || !hosts)
		goto out;
	json_array_foreach(sim, i, x)
		json_object_set_new(used, str_at(x, "ip"), json_true());
	json_array_foreach(json_is_array(hosts) ? hosts : json_object_get(hosts, "hosts"), i, x)
		json_object_set_new(used, str_at(x, "ip"), json_true());
	for (uint32_t a = NET_BASE + NET_HOSTS; a > NET_BASE; a--) {
		hive_ipv4_format(a, out);
		if (!json_object_get(used, out)) {
			rc = 0;
			break;
		}
	}
out:
	json_decref(sim);
	json_decref(hosts);
	json_decref(used);
	return rc;
}

/* The n-th miner of the simulator's list (its order is fixed). */
static void sim_mac_at(size_t n, char out[18])
{
	json_t *list = get_json(S.admin, "/sim/miners");

	assert_non_null(list);
	snprintf(out, 18, "%s", str_at(json_array_get(list, n), "mac"));
	lower(out);
	json_decref(list);
}

static bool changes_seen(void *arg)
{
	json_t *api = api_miners(), *a, *b, *c, *s0, *s1;
	bool ok;

	(void)arg;
	if (!api)
		return false;
	a = json_object_get(api, mac_offline);
	b = json_object_get(api, mac_moved);
	c = json_object_get(api, mac_password);
	s0 = json_object_get(api, mac_swap[0]);
	s1 = json_object_get(api, mac_swap[1]);
	ok = json_object_size(api) == MINERS && a && b && c && s0 && s1 &&
	     strcmp(str_at(s0, "ip"), swap_ip[1]) == 0 && strcmp(str_at(s1, "ip"), swap_ip[0]) == 0 &&
	     json_is_false(json_object_get(a, "online")) &&
	     strcmp(str_at(b, "ip"), moved_to) == 0 && json_is_true(json_object_get(b, "online")) &&
	     strcmp(str_at(json_object_get(c, "last_error"), "kind"), "auth") == 0;
	json_decref(api);
	return ok;
}

static bool offline_back(void *arg)
{
	json_t *api = api_miners(), *a;
	bool ok;

	(void)arg;
	if (!api)
		return false;
	a = json_object_get(api, mac_offline);
	ok = a && json_is_true(json_object_get(a, "online")) && status_ts(a) > 0;
	json_decref(api);
	return ok;
}

static void test_offline_move_password(void **state)
{
	char body[256], path[128], upper[18];
	json_t *sim, *api, *c;
	long long t0;

	(void)state;
	sim_mac_at(1, mac_offline);
	sim_mac_at(2, mac_moved);
	sim_mac_at(3, mac_password);
	sim_mac_at(4, mac_swap[0]);
	sim_mac_at(6, mac_swap[1]);
	assert_int_equal(free_address(moved_to), 0);

	sim = sim_miners();
	assert_non_null(sim);
	pw_attempts_before = int_at(json_object_get(sim, mac_password), "unlock_attempts");
	for (int i = 0; i < 2; i++)
		snprintf(swap_ip[i], sizeof(swap_ip[i]), "%s",
			 str_at(json_object_get(sim, mac_swap[i]), "ip"));
	json_decref(sim);
	pw_sweeps_before = disc_counter("sweeps");

	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"offline\"}", mac_offline);
	assert_int_equal(post(S.admin, "/sim/fault", body), 200);
	snprintf(path, sizeof(path), "/sim/miners/%s/move", mac_moved);
	snprintf(body, sizeof(body), "{\"ip\":\"%s\"}", moved_to);
	assert_int_equal(post(S.admin, path, body), 200);
	snprintf(body, sizeof(body), "{\"a\":\"%s\",\"b\":\"%s\"}", mac_swap[0], mac_swap[1]);
	assert_int_equal(post(S.admin, "/sim/swap", body), 200);
	snprintf(path, sizeof(path), "/sim/miners/%s/password", mac_password);
	assert_int_equal(post(S.admin, path, "{\"password\":\"Changed-By-A-Person\"}"), 200);
	snprintf(path, sizeof(path), "/sim/miners/%s/apikeys/delete", mac_password);
	assert_int_equal(post(S.admin, path, "{}"), 200);

	t0 = hive_mono_ms();
	if (tl_wait_until(2 * DISCOVERY_S * 1000 + 5000, changes_seen, NULL) < 0) {
		api = api_miners();
		fprintf(stderr, "offline: %s\nmoved: %s\npassword: %s\nswapped: %s %s\n",
			json_dumps(json_object_get(api, mac_offline), JSON_COMPACT),
			json_dumps(json_object_get(api, mac_moved), JSON_COMPACT),
			json_dumps(json_object_get(api, mac_password), JSON_COMPACT),
			json_dumps(json_object_get(api, mac_swap[0]), JSON_COMPACT),
			json_dumps(json_object_get(api, mac_swap[1]), JSON_COMPACT));
		dump_logs();
		fail_msg("offline / move / swap / password change not reflected within two sweeps");
	}
	printf("figure: offline, DHCP move, IP swap and password change seen within ms=%lld\n",
	       hive_mono_ms() - t0);

	/* The moved and swapped miners are one record each: same id, new address. */
	api = api_miners();
	assert_int_equal(json_object_size(api), MINERS);
	c = json_object_get(api, mac_password);
	fprintf(stderr, "fleet: password miner's error: %s\n",
		str_at(json_object_get(c, "last_error"), "message"));
	json_decref(api);

	/* Back from offline after the next sweep. */
	snprintf(upper, sizeof(upper), "%s", mac_offline);
	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"none\"}", upper);
	assert_int_equal(post(S.admin, "/sim/fault", body), 200);
	t0 = hive_mono_ms();
	if (tl_wait_until(2 * DISCOVERY_S * 1000 + 5000, offline_back, NULL) < 0) {
		dump_logs();
		fail_msg("%s not back online within two sweeps", mac_offline);
	}
	printf("figure: offline miner back online with a status within ms=%lld\n",
	       hive_mono_ms() - t0);
}

/* ------------------------------------------------------------ 4. faults on 10% */

static const struct {
	const char *fault;
	const char *kinds;               /* error kinds it may show as */
} faults[] = {
	{ "slow", "timeout" },
	{ "http500", "http" },
	{ "invalid_json", "bad_json" },
	{ "truncated", "reset bad_json" },
	{ "reset", "reset" },
};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static char faulted[FAULTED][18];

struct fault_wait {
	long long since;
	int have;
};

static bool faults_visible(void *arg)
{
	struct fault_wait *w = arg;
	json_t *api = api_miners();
	int n = 0;

	if (!api)
		return false;
	for (int i = 0; i < FAULTED; i++)
		n += error_ts(json_object_get(api, faulted[i])) >= w->since;
	w->have = n;
	json_decref(api);
	return n == FAULTED;
}

static void test_faults(void **state)
{
	json_t *list, *api, *m, *skip;
	struct fault_wait w;
	char body[300];
	const char *mac;
	long long t0, now;
	int picked = 0, kinds_ok = 0, cadence = 0, others = 0, clean = 0;

	(void)state;
	list = get_json(S.admin, "/sim/miners");
	assert_non_null(list);
	/* Every 10th miner from the 5th on, away from the ones test 3 uses. */
	for (size_t i = 5; picked < FAULTED && i < json_array_size(list); i += 10) {
		const json_t *x = json_array_get(list, i);

		snprintf(faulted[picked], 18, "%s", str_at(x, "mac"));
		lower(faulted[picked]);
		snprintf(body, sizeof(body), "{\"target\":\"%.17s\",\"kind\":\"%s\",\"seconds\":%.1f}",
			 faulted[picked], faults[picked % NFAULTS].fault,
			 (HTTP_TIMEOUT_MS + 1500) / 1000.0);
		assert_int_equal(post(S.admin, "/sim/fault", body), 200);
		picked++;
	}
	json_decref(list);
	assert_int_equal(picked, FAULTED);

	t0 = hive_wall_ms();
	w.since = t0;
	if (tl_wait_until(2 * STATUS_S * 1000 + HTTP_TIMEOUT_MS + 4000, faults_visible, &w) < 0) {
		dump_logs();
		fail_msg("only %d of %d faulted miners show an error", w.have, FAULTED);
	}
	/* Let every healthy miner go through a full cycle under the faults. */
	usleep(STATUS_S * 1000 * 1000);
	api = api_miners();
	now = hive_wall_ms();
	skip = json_object();
	for (int i = 0; i < FAULTED; i++) {
		json_t *e = json_object_get(json_object_get(api, faulted[i]), "last_error");
		const char *kind = str_at(e, "kind");
		char want[64];

		snprintf(want, sizeof(want), " %s ", faults[i % NFAULTS].kinds);
		if (*kind) {
			char k[40];

			snprintf(k, sizeof(k), " %s ", kind);
			if (strstr(want, k))
				kinds_ok++;
			else
				fprintf(stderr, "fleet: %s fault %s shows kind %s (%s)\n", faulted[i],
					faults[i % NFAULTS].fault, kind, str_at(e, "message"));
		}
		json_object_set_new(skip, faulted[i], json_true());
	}
	json_object_set_new(skip, mac_password, json_true());
	json_object_foreach(api, mac, m) {
		if (json_object_get(skip, mac))
			continue;
		others++;
		if (now - status_ts(m) <= 2 * STATUS_S * 1000 + 1000)
			cadence++;
		if (error_ts(m) < t0)
			clean++;
	}
	printf("figure: faults on %d miners: %d with the expected error kind; %d of %d others "
	       "polled within two intervals, %d without a new error\n", FAULTED, kinds_ok,
	       cadence, others, clean);
	assert_true(kinds_ok >= FAULTED * 9 / 10);
	assert_int_equal(cadence, others);
	assert_int_equal(clean, others);
	json_decref(api);
	json_decref(skip);

	assert_int_equal(post(S.admin, "/sim/fault", "{\"target\":\"all\",\"kind\":\"none\"}"), 200);
}

/* ------------------------------------------------------------ 5. worker killed, apid restarted */

static void test_pollerd_kill_apid_restart(void **state)
{
	struct fresh f = { 0 };
	json_t *skip = json_object();
	long long t0;

	(void)state;
	json_object_set_new(skip, mac_password, json_true());
	/* Faulted miners must have recovered before we measure anything. */
	f.since = hive_wall_ms();
	f.skip = skip;
	if (tl_wait_until(2 * STATUS_S * 1000 + HTTP_TIMEOUT_MS + 5000, all_fresh, &f) < 0)
		fail_msg("after the faults only %d miners polled again", f.have);

	/* Mid-cycle: jobs are out on both workers right now. */
	assert_true(tl_alive(ts_pid(&S, "pollerd0")));
	ts_stop(&S, "pollerd0", SIGKILL, 2000);
	f.since = t0 = hive_wall_ms();
	if (tl_wait_until(JOB_TIMEOUT_S * 1000 + 2 * STATUS_S * 1000 + 4000, all_fresh, &f) < 0) {
		dump_logs();
		fail_msg("with one pollerd killed only %d miners were polled again", f.have);
	}
	printf("figure: one of two pollerd killed: every miner polled again within ms=%lld\n",
	       hive_wall_ms() - t0);

	/* apid restarts; the workers and discoverd keep running. */
	ts_stop(&S, "apid", SIGTERM, 15000);
	assert_int_equal(start_apid(), 0);
	f.since = t0 = hive_wall_ms();
	f.telemetry = true;
	if (tl_wait_until(2 * TELEMETRY_S * 1000 + 8000, all_fresh, &f) < 0) {
		dump_logs();
		fail_msg("after apid restarted only %d miners have a new status and telemetry",
			 f.have);
	}
	printf("figure: apid restarted: every miner's status and telemetry back within ms=%lld\n",
	       hive_wall_ms() - t0);
	assert_true(tl_alive(ts_pid(&S, "pollerd1")));
	assert_true(tl_alive(ts_pid(&S, "telemetryd")));
	assert_true(tl_alive(ts_pid(&S, "discoverd")));
	json_decref(skip);
}

/* ------------------------------------------------------------ 6. no unlock storm */

/* Unlock attempts the backoff allows in k sweeps after the change: the n-th
 * failure waits 2^(n-1) sweeps, so attempts fall at sweeps 1, 3, 6, 11, 20...
 * One sweep of slack for a sweep already running when the password changed. */
static long long backoff_bound(long long k)
{
	long long at = 1, n = 0;

	while (at <= k + 1) {
		n++;
		at += (1LL << (n - 1)) + 1;
	}
	return n;
}

static void test_unlock_bounded(void **state)
{
	json_t *sim, *api;
	long long sweeps, attempts;

	(void)state;
	assert_true(pw_attempts_before >= 0 && pw_sweeps_before >= 0);
	sweeps = disc_counter("sweeps");
	if (sweeps - pw_sweeps_before < 6)
		wait_sweeps((int)(6 - (sweeps - pw_sweeps_before)));
	sweeps = disc_counter("sweeps") - pw_sweeps_before;
	sim = sim_miners();
	assert_non_null(sim);
	attempts = int_at(json_object_get(sim, mac_password), "unlock_attempts") -
		   pw_attempts_before;
	printf("figure: wrong password: %lld unlock attempts over %lld sweeps (backoff 1, 2, 4 "
	       "sweeps)\n", attempts, sweeps);
	assert_true(attempts >= 1);
	assert_true(attempts <= backoff_bound(sweeps));
	assert_true(attempts < sweeps);
	/* Still an error on that miner, and still one record. */
	api = api_miners();
	assert_string_equal(str_at(json_object_get(json_object_get(api, mac_password),
						   "last_error"), "kind"), "auth");
	assert_int_equal(json_object_size(api), MINERS);
	json_decref(api);
	json_decref(sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_status_and_telemetry),
		cmocka_unit_test(test_offline_move_password),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_pollerd_kill_apid_restart),
		cmocka_unit_test(test_unlock_bounded),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, stack_up, stack_down);
}
