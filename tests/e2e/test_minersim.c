/* test_minersim — the miner simulator against its own ground truth.
 *
 * Starts bin/minersim with a small fleet on 127.77.0.0/24 and checks,
 * through plain HTTP, every firmware endpoint's shape against /sim/miners,
 * authentication, token expiry and unlock rate limiting, preset changes
 * (live, saved for a restart, quiet), presets set by hand and by the
 * firmware's switcher, reboots, mining control with its ground-truth
 * counters, fleet power, every fault kind (protocol and hardware: what
 * PowerHive's parser reads of an overheat, a stopped fan, a dead board, a
 * hashrate drop, red chips), DHCP moves and swaps, HTTP
 * robustness, seed determinism, and one scale run of 10,000 miners.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hive/fw.h"

#include "../lib/testlib.h"

#define SUBNET      "127.77.0.0/24"
#define DET_SUBNET  "127.77.1.0/24"
#define BIG_SUBNET  "127.78.0.0/18"
#define MINERS      50
#define NON_MINERS  10
#define KEY         "0123456789abcdef0123456789abcdef"

struct sim {
	pid_t pid;
	int port;
	int admin_port;
	char *dir;
	char log[512];
	long long start_ms;      /* spawn to ready line */
};

static struct sim fleet;     /* the shared small fleet */

/* ---------------------------------------------------------------- helpers */

static int sim_stop(struct sim *s);

static int sim_start(struct sim *s, const char *subnet, int miners, int non_miners,
		     const char *seed, const char *const extra[])
{
	char port[16], admin[64], nm[16], mn[16];
	const char *argv[40];
	int n = 0;

	memset(s, 0, sizeof(*s));
	s->port = tl_free_port();
	s->admin_port = tl_free_port();
	while (s->admin_port == s->port)
		s->admin_port = tl_free_port();
	s->dir = tl_tmpdir("minersim");
	if (!s->dir || s->port < 0 || s->admin_port < 0)
		return -1;
	snprintf(s->log, sizeof(s->log), "%s/minersim.log", s->dir);
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", s->admin_port);
	snprintf(mn, sizeof(mn), "%d", miners);
	snprintf(nm, sizeof(nm), "%d", non_miners);
	argv[n++] = tl_bin("minersim");
	argv[n++] = "--subnet";
	argv[n++] = subnet;
	argv[n++] = "--miners";
	argv[n++] = mn;
	argv[n++] = "--non-miners";
	argv[n++] = nm;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--admin";
	argv[n++] = admin;
	argv[n++] = "--seed";
	argv[n++] = seed;
	for (int i = 0; extra && extra[i] && n < 38; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	long long t0 = hive_mono_ms();
	s->pid = tl_spawn(s->log, (char *const *)argv, NULL);
	if (s->pid < 0)
		return -1;
	tl_live_add(s->pid);
	if (tl_wait_log(s->pid, s->log, "minersim ready ", 20000) == 0) {
		s->start_ms = hive_mono_ms() - t0;
		return 0;
	}
	sim_stop(s);
	return -1;
}

static int sim_stop(struct sim *s)
{
	int status = tl_stop(s->pid, SIGTERM, 5000);

	tl_live_del(s->pid);
	if (s->dir) {
		tl_rmrf(s->dir);
		free(s->dir);
	}
	s->dir = NULL;
	return status;
}

static json_t *admin(const struct sim *s, const char *method, const char *path,
		     const char *body, long *status)
{
	return tl_local_json(method, s->admin_port, path, body, status);
}

static json_t *truth(const char *mac)
{
	char path[128];

	snprintf(path, sizeof(path), "/sim/miners/%s", mac);
	return admin(&fleet, "GET", path, NULL, NULL);
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long jint(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static double jnum(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static void miner_url(char *buf, size_t len, const char *ip, int port, const char *ep)
{
	snprintf(buf, len, "http://%s:%d/api/v1/%s", ip, port, ep);
}

/* GET/POST a miner endpoint; key may be NULL. */
static json_t *fw(const char *method, const char *ip, const char *ep, const char *key,
		  const char *token, const char *body, long *status)
{
	char url[256], kh[128], th[160];
	const char *hdr[3] = { NULL, NULL, NULL };
	int n = 0;

	miner_url(url, sizeof(url), ip, fleet.port, ep);
	if (key) {
		snprintf(kh, sizeof(kh), "x-api-key: %s", key);
		hdr[n++] = kh;
	}
	if (token) {
		snprintf(th, sizeof(th), "Authorization: Bearer %s", token);
		hdr[n++] = th;
	}
	return tl_http_json(method, url, hdr, body, status);
}

static int fw_raw(const char *ip, const char *ep, char **body, long *status)
{
	char url[256];

	miner_url(url, sizeof(url), ip, fleet.port, ep);
	return tl_http("GET", url, NULL, NULL, body, status);
}

/* The first miner at or after index `from` of the truth list matching a
 * predicate. Each test works on miners of its own. */
typedef bool miner_pred(const json_t *m);

static json_t *pick(miner_pred *pred, size_t from)
{
	json_t *all = admin(&fleet, "GET", "/sim/miners", NULL, NULL), *m, *found = NULL;
	size_t i;

	json_array_foreach(all, i, m) {
		if (i >= from && pred(m)) {
			found = json_incref(m);
			break;
		}
	}
	json_decref(all);
	return found;
}

static bool is_fw126(const json_t *m)
{
	return strcmp(jstr(m, "firmware"), "1.2.6") == 0;
}

static bool is_metered_mining(const json_t *m)
{
	return json_is_true(json_object_get(m, "metered")) && is_fw126(m) &&
	       strcmp(jstr(m, "state"), "mining") == 0;
}

static bool any(const json_t *m)
{
	(void)m;
	return true;
}

/* Unlock and provision KEY on a miner. */
static void provision(const char *ip)
{
	long st;
	json_t *r = fw("POST", ip, "unlock", NULL, NULL, "{\"pw\":\"admin\"}", &st);
	const char *tok;
	char body[128];

	assert_int_equal(st, 200);
	tok = jstr(r, "token");
	assert_non_null(tok);
	snprintf(body, sizeof(body), "{\"description\":\"PowerHive\",\"key\":\"%s\"}", KEY);
	json_decref(fw("POST", ip, "apikeys", NULL, tok, body, &st));
	assert_int_equal(st, 200);
	json_decref(r);
}

struct wait_state {
	const char *mac;
	const char *state;
};

static bool truth_state_is(void *arg)
{
	struct wait_state *w = arg;
	json_t *t = truth(w->mac);
	bool ok = t && strcmp(jstr(t, "state"), w->state) == 0;

	json_decref(t);
	return ok;
}

static int wait_state(const char *mac, const char *state, int timeout_ms)
{
	struct wait_state w = { mac, state };

	return tl_wait_until(timeout_ms, truth_state_is, &w);
}

/* Raw TCP exchange: sends data, reads until EOF or timeout. Returns the
 * bytes read; *eof tells whether the server closed. */
static ssize_t raw_ex(const char *ip, int port, const char *data, size_t len, char *out,
		      size_t cap, int timeout_ms, bool half_close, bool *eof)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	long long deadline = hive_mono_ms() + timeout_ms;

	*eof = false;
	inet_pton(AF_INET, ip, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (len && send(fd, data, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	while (got + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - hive_mono_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		n = recv(fd, out + got, cap - 1 - got, 0);
		if (n <= 0) {
			*eof = true;
			break;
		}
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fd);
	return (ssize_t)got;
}

static ssize_t raw(const char *ip, int port, const char *data, size_t len, char *out,
		   size_t cap, int timeout_ms, bool *eof)
{
	return raw_ex(ip, port, data, len, out, cap, timeout_ms, false, eof);
}

static ssize_t raw_str(const char *ip, const char *data, char *out, size_t cap, bool *eof)
{
	return raw_ex(ip, fleet.port, data, strlen(data), out, cap, 2000, false, eof);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---------------------------------------------------------------- fixture */

static int setup(void **state)
{
	static const char *const extra[] = {
		"--tune-seconds", "2", "--tuned-seconds", "1", "--start-seconds", "1",
		"--apply-seconds", "1", "--reboot-seconds", "2", "--init-seconds", "1",
		"--token-ttl", "2", "--unlock-limit", "3", "--lockout-seconds", "2",
		"--firmware-mix=0.2", NULL,
	};

	(void)state;
	return sim_start(&fleet, SUBNET, MINERS, NON_MINERS, "7", extra);
}

static int teardown(void **state)
{
	int status;

	(void)state;
	status = sim_stop(&fleet);
	tl_live_kill_all();
	/* SIGTERM must be a clean stop */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_identity_info(void **state)
{
	json_t *all = admin(&fleet, "GET", "/sim/miners", NULL, NULL), *m, *hosts;
	int models[2] = { 0, 0 }, newfw = 0, unmetered = 0;
	size_t i;

	(void)state;
	assert_true(json_is_array(all));
	assert_int_equal(json_array_size(all), MINERS);
	json_array_foreach(all, i, m) {
		const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
		long st;
		json_t *info, *sys, *net;
		unsigned a, b, c, d;

		assert_non_null(ip);
		assert_non_null(mac);
		assert_int_equal(sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d), 4);
		assert_true(a == 127 && b == 77 && c == 0 && d > 0 && d < 255);
		assert_int_equal(strlen(mac), 17);
		for (const char *p = mac; *p; p++)
			assert_true((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') || *p == ':');
		models[strcmp(jstr(m, "model"), "s19") == 0 ? 0 : 1]++;
		newfw += strncmp(jstr(m, "firmware"), "1.3", 3) == 0;
		unmetered += json_is_false(json_object_get(m, "metered"));
		assert_true(json_is_integer(json_object_get(m, "power_w")));
		assert_true(json_is_number(json_object_get(m, "hashrate_ghs")));
		assert_true(json_is_integer(json_object_get(m, "requests")));
		assert_true(json_is_integer(json_object_get(m, "api_keys")));
		assert_string_equal(jstr(m, "fault"), "none");

		info = fw("GET", ip, "info", NULL, NULL, NULL, &st);
		assert_int_equal(st, 200);
		assert_non_null(info);
		assert_string_equal(jstr(info, "model"), jstr(m, "model"));
		assert_string_equal(jstr(info, "fw_name"), "Vnish");
		assert_string_equal(jstr(info, "fw_version"), jstr(m, "firmware"));
		assert_string_equal(jstr(info, "hr_measure"), "GH/s");
		assert_string_equal(jstr(info, "algorithm"), "sha256d");
		assert_string_equal(jstr(info, "serial"), jstr(m, "serial"));
		assert_non_null(strstr(jstr(info, "miner"), "Antminer"));
		sys = json_object_get(info, "system");
		assert_true(json_is_string(json_object_get(sys, "uptime")));
		assert_true(json_is_integer(json_object_get(sys, "mem_total")));
		net = json_object_get(sys, "network_status");
		assert_string_equal(jstr(net, "mac"), mac);
		assert_string_equal(jstr(net, "ip"), ip);
		assert_string_equal(jstr(net, "netmask"), "255.255.255.0");
		assert_true(json_is_array(json_object_get(net, "dns")));
		assert_true(json_is_boolean(json_object_get(net, "dhcp")));
		json_decref(info);
	}
	/* seed 7 mixes both models, some 1.3.x (firmware-mix 0.2), ~30% unmetered */
	assert_true(models[0] > 0 && models[1] > 0);
	assert_true(newfw > 0 && newfw < MINERS / 2);
	assert_true(unmetered > 5 && unmetered < 30);
	json_decref(all);

	/* the hosts that are not miners */
	hosts = admin(&fleet, "GET", "/sim/hosts", NULL, NULL);
	assert_int_equal(json_array_size(hosts), NON_MINERS);
	json_array_foreach(hosts, i, m) {
		const char *kind = jstr(m, "kind");
		char *body = NULL;
		long st = 0;
		int rc = fw_raw(jstr(m, "ip"), "info", &body, &st);

		if (strcmp(kind, "closed") == 0) {
			assert_int_equal(rc, -1);
		} else {
			json_t *j = body ? json_loads(body, 0, NULL) : NULL;
			assert_int_equal(rc, 0);
			assert_null(j);   /* never JSON */
			assert_int_equal(st, strcmp(kind, "stock_html") == 0 ? 200 : 404);
		}
		free(body);
	}
	json_decref(hosts);
}

static void test_model_status_perf(void **state)
{
	json_t *all = admin(&fleet, "GET", "/sim/miners", NULL, NULL), *m;
	size_t i;

	(void)state;
	json_array_foreach(all, i, m) {
		const char *ip = jstr(m, "ip");
		bool jpro = strcmp(jstr(m, "model"), "s19jpro") == 0;
		long st;
		json_t *j = fw("GET", ip, "model", NULL, NULL, NULL, &st), *chain, *topo, *row, *cur;
		size_t r, c;
		int chips = 0;

		assert_int_equal(st, 200);
		chain = json_object_get(j, "chain");
		assert_int_equal(jint(chain, "num_chains"), 3);
		assert_int_equal(jint(chain, "chips_per_chain"), jpro ? 126 : 76);
		topo = json_object_get(chain, "topology");
		assert_int_equal(json_array_size(json_object_get(topo, "chips")),
				 jint(topo, "num_rows"));
		json_array_foreach(json_object_get(topo, "chips"), r, row) {
			json_t *id;
			assert_int_equal(json_array_size(row), jint(topo, "num_cols"));
			json_array_foreach(row, c, id)
				chips += json_integer_value(id) > 0;
		}
		assert_int_equal(chips, jpro ? 126 : 76);
		assert_true(jint(json_object_get(j, "overclock"), "max_freq") > 0);
		assert_true(json_is_object(json_object_get(json_object_get(j, "cooling"), "fan_min_count")));
		json_decref(j);

		j = fw("GET", ip, "status", NULL, NULL, NULL, &st);
		assert_int_equal(st, 200);
		assert_string_equal(jstr(j, "miner_state"), jstr(m, "state"));
		assert_true(json_is_integer(json_object_get(j, "miner_state_time")));
		assert_true(json_is_boolean(json_object_get(j, "unlocked")));
		json_decref(j);

		j = fw("GET", ip, "perf-summary", NULL, NULL, NULL, &st);
		assert_int_equal(st, 200);
		cur = json_object_get(j, "current_preset");
		if (json_is_null(cur)) {
			/* newer firmware: null while no autotune preset runs */
			assert_string_equal(jstr(m, "preset"), "disabled");
			assert_string_not_equal(jstr(m, "firmware"), "1.2.6");
		} else {
			assert_string_equal(jstr(cur, "name"), jstr(m, "preset"));
			assert_true(json_is_object(json_object_get(cur, "globals")));
		}
		assert_true(json_is_boolean(json_object_get(json_object_get(j, "preset_switcher"),
							    "enabled")));
		json_decref(j);
	}
	json_decref(all);
}

static void test_auth(void **state)
{
	json_t *m = pick(any, 3), *r, *t;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	char path[128];
	long st;
	char tok[64];

	(void)state;
	/* no credentials, wrong key, wrong token */
	json_decref(fw("GET", ip, "summary", NULL, NULL, NULL, &st));
	assert_int_equal(st, 401);
	json_decref(fw("GET", ip, "autotune/presets", NULL, NULL, NULL, &st));
	assert_int_equal(st, 401);
	json_decref(fw("POST", ip, "mining/restart", NULL, NULL, "{}", &st));
	assert_int_equal(st, 401);
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 401);
	json_decref(fw("GET", ip, "apikeys", NULL, "deadbeefdeadbeefdeadbeefdeadbeef", NULL, &st));
	assert_int_equal(st, 401);

	/* wrong password, then the right one */
	r = fw("POST", ip, "unlock", NULL, NULL, "{\"pw\":\"nope\"}", &st);
	assert_int_equal(st, 403);
	assert_non_null(jstr(r, "err"));
	json_decref(r);
	r = fw("POST", ip, "unlock", NULL, NULL, "{\"pw\":\"admin\"}", &st);
	assert_int_equal(st, 200);
	snprintf(tok, sizeof(tok), "%s", jstr(r, "token"));
	json_decref(r);
	json_decref(fw("GET", ip, "summary", NULL, tok, NULL, &st));
	assert_int_equal(st, 200);

	/* key format */
	r = fw("POST", ip, "apikeys", NULL, tok,
	       "{\"description\":\"PowerHive\",\"key\":\"0123456789ABCDEF0123456789abcdef\"}", &st);
	assert_int_equal(st, 422);
	assert_string_equal(jstr(r, "err"), "Wrong apikey format");
	json_decref(r);
	json_decref(fw("POST", ip, "apikeys", NULL, tok,
		       "{\"description\":\"PowerHive\",\"key\":\"abc\"}", &st));
	assert_int_equal(st, 422);
	r = fw("POST", ip, "apikeys", NULL, tok,
	       "{\"description\":\"PowerHive\",\"key\":\"" KEY "\"}", &st);
	assert_int_equal(st, 200);
	assert_string_equal(jstr(r, "status"), "inserted");
	json_decref(r);
	r = fw("GET", ip, "apikeys", KEY, NULL, NULL, &st);
	assert_int_equal(st, 200);
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(jstr(json_array_get(r, 0), "key"), KEY);
	assert_string_equal(jstr(json_array_get(r, 0), "description"), "PowerHive");
	json_decref(r);
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 200);
	t = truth(mac);
	assert_int_equal(jint(t, "api_keys"), 1);
	assert_int_equal(jint(t, "unlock_attempts"), 2);
	assert_int_equal(jint(t, "unlock_failures"), 1);
	json_decref(t);

	/* a person deletes the keys: 401 until provisioned again */
	snprintf(path, sizeof(path), "/sim/miners/%s/apikeys/delete", mac);
	json_decref(admin(&fleet, "POST", path, "{}", &st));
	assert_int_equal(st, 200);
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 401);
	provision(ip);
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 200);
	/* delete through the firmware */
	json_decref(fw("POST", ip, "apikeys/delete", KEY, NULL, "{\"key\":\"" KEY "\"}", &st));
	assert_int_equal(st, 200);
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 401);

	/* a person changes the password */
	snprintf(path, sizeof(path), "/sim/miners/%s/password", mac);
	json_decref(admin(&fleet, "POST", path, "{\"password\":\"s3cret\"}", &st));
	assert_int_equal(st, 200);
	json_decref(fw("POST", ip, "unlock", NULL, NULL, "{\"pw\":\"admin\"}", &st));
	assert_int_equal(st, 403);
	json_decref(fw("POST", ip, "unlock", NULL, NULL, "{\"pw\":\"s3cret\"}", &st));
	assert_int_equal(st, 200);
	json_decref(m);
}

static void test_token_expiry_and_lockout(void **state)
{
	json_t *a = pick(any, 4), *b = pick(any, 5), *r, *t;
	const char *ipa = jstr(a, "ip"), *ipb = jstr(b, "ip");
	char tok[64];
	long st;

	(void)state;
	r = fw("POST", ipa, "unlock", NULL, NULL, "{\"pw\":\"admin\"}", &st);
	assert_int_equal(st, 200);
	snprintf(tok, sizeof(tok), "%s", jstr(r, "token"));
	json_decref(r);
	json_decref(fw("GET", ipa, "apikeys", NULL, tok, NULL, &st));
	assert_int_equal(st, 200);

	/* --unlock-limit 3: three wrong passwords, then 429 even for the right one */
	for (int i = 0; i < 3; i++) {
		json_decref(fw("POST", ipb, "unlock", NULL, NULL, "{\"pw\":\"guess\"}", &st));
		assert_int_equal(st, 403);
	}
	json_decref(fw("POST", ipb, "unlock", NULL, NULL, "{\"pw\":\"admin\"}", &st));
	assert_int_equal(st, 429);
	t = truth(jstr(b, "mac"));
	assert_int_equal(jint(t, "unlock_failures"), 3);
	assert_int_equal(jint(t, "unlock_attempts"), 4);
	json_decref(t);

	/* --token-ttl 2 and --lockout-seconds 2 */
	usleep(2200 * 1000);
	json_decref(fw("GET", ipa, "apikeys", NULL, tok, NULL, &st));
	assert_int_equal(st, 401);
	json_decref(fw("POST", ipb, "unlock", NULL, NULL, "{\"pw\":\"admin\"}", &st));
	assert_int_equal(st, 200);
	json_decref(a);
	json_decref(b);
}

static bool presets_sorted(const json_t *list)
{
	long prev = 0;
	size_t i;
	json_t *p;

	json_array_foreach(list, i, p) {
		long w = strtol(jstr(p, "name"), NULL, 10);
		if (i == 0)
			continue;
		if (w < prev)
			return false;
		prev = w;
	}
	return true;
}

static void test_summary_chains_presets(void **state)
{
	json_t *all = admin(&fleet, "GET", "/sim/miners", NULL, NULL), *m;
	bool seen_new = false, seen_old = false, seen_jpro = false, seen_s19 = false;
	size_t i;

	(void)state;
	json_array_foreach(all, i, m) {
		const char *ip = jstr(m, "ip");
		bool jpro = strcmp(jstr(m, "model"), "s19jpro") == 0;
		bool newfw = strcmp(jstr(m, "firmware"), "1.2.6") != 0;
		int chips = jpro ? 126 : 76;
		long st;
		json_t *s, *mn, *t, *chains, *list, *p;
		char *body = NULL;
		size_t k;

		if (i % 3 && !(newfw && !seen_new))
			continue;   /* a third of the fleet, and the first 1.3.x */
		if (json_is_true(json_object_get(m, "password_changed")))
			continue;
		provision(ip);
		s = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
		t = truth(jstr(m, "mac"));
		assert_int_equal(st, 200);
		mn = json_object_get(s, "miner");
		assert_string_equal(jstr(json_object_get(mn, "miner_status"), "miner_state"),
				    jstr(t, "state"));
		/* GH/s, within noise of the ground truth */
		assert_true(fabs(jnum(mn, "hr_realtime") - jnum(t, "hashrate_ghs")) <
			    0.05 * jnum(t, "hashrate_ghs") + 1);
		assert_true(fabs(jnum(mn, "hr_nominal") - 1000.0 * jnum(t, "preset_th")) < 1);
		assert_true(json_is_real(json_object_get(mn, "hr_stock")));
		if (json_is_true(json_object_get(t, "metered")))
			assert_true(fabs((double)jint(mn, "power_consumption") - jnum(t, "power_w")) <
				    0.03 * jnum(t, "power_w") + 1);
		else
			assert_int_equal(jint(mn, "power_consumption"), 0);
		assert_true(json_is_integer(json_object_get(json_object_get(mn, "chip_temp"), "max")));
		assert_true(jint(json_object_get(mn, "chip_temp"), "max") > 40);
		assert_int_equal(json_array_size(json_object_get(json_object_get(mn, "cooling"), "fans")), 4);
		assert_true(json_array_size(json_object_get(mn, "pools")) >= 2);
		chains = json_object_get(mn, "chains");
		assert_int_equal(json_array_size(chains), 3);
		p = json_array_get(chains, 0);
		assert_int_equal(jint(p, "id"), 1);
		assert_true(json_is_real(json_object_get(p, "frequency")));
		assert_true(json_is_integer(json_object_get(p, "voltage")));
		assert_int_equal(jint(json_object_get(p, "chip_statuses"), "red") +
				 jint(json_object_get(p, "chip_statuses"), "orange") +
				 jint(json_object_get(p, "chip_statuses"), "grey"), chips);
		json_decref(s);
		json_decref(t);

		/* /chains on 1.2.6, /boards on 1.3.x; the other one is 404 */
		assert_int_equal(fw_raw(ip, newfw ? "chains" : "boards", &body, &st), 0);
		assert_int_equal(st, 404);
		free(body);
		assert_int_equal(fw_raw(ip, newfw ? "boards" : "chains", &body, &st), 0);
		assert_int_equal(st, 200);
		assert_true(strlen(body) > (jpro ? 100000u : 60000u));
		chains = json_loads(body, 0, NULL);
		free(body);
		assert_int_equal(json_array_size(chains), 3);
		json_array_foreach(chains, k, p) {
			json_t *chip = json_array_get(json_object_get(p, "chips"), 0);
			assert_int_equal(json_array_size(json_object_get(p, "chips")), chips);
			assert_true(json_is_real(json_object_get(p, "hr_realtime")));
			assert_true(json_is_integer(json_object_get(chip, "freq")));
			assert_true(json_is_integer(json_object_get(chip, "volt")));
			assert_true(json_is_real(json_object_get(chip, "temp")));
			assert_true(json_is_real(json_object_get(chip, "hr")));
			assert_non_null(jstr(chip, "grade"));
			assert_true(json_is_boolean(json_object_get(chip, "throttled")));
		}
		json_decref(chains);
		seen_new |= newfw;
		seen_old |= !newfw;

		/* presets: disabled first, then "<W> watt ~ <TH> TH" */
		list = fw("GET", ip, "autotune/presets", KEY, NULL, NULL, &st);
		assert_int_equal(st, 200);
		assert_string_equal(jstr(json_array_get(list, 0), "name"), "disabled");
		assert_int_equal(json_array_size(list), jpro ? 24 : 16);
		json_array_foreach(list, k, p) {
			int w, th;
			if (k == 0)
				continue;
			assert_int_equal(sscanf(jstr(p, "pretty"), "%d watt ~ %d TH", &w, &th), 2);
			assert_int_equal(w, atoi(jstr(p, "name")));
			assert_true(th > 40 && th < 200);
			if (!jpro && w == 2620)
				assert_int_equal(th, 91);
			assert_true(json_is_boolean(json_object_get(p, "modded_psu_required")));
		}
		/* the S19j Pro lists its presets out of order */
		assert_true(presets_sorted(list) == !jpro);
		seen_jpro |= jpro;
		seen_s19 |= !jpro;
		json_decref(list);
	}
	assert_true(seen_new && seen_old && seen_jpro && seen_s19);
	json_decref(all);
}

struct power_probe {
	const char *mac;
	double lo, hi;
};

/* POST a preset to a miner with KEY; returns the reply. */
static json_t *set_preset(const char *ip, const char *preset, long *st)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"miner\":{\"overclock\":{\"preset\":\"%s\"}}}", preset);
	return fw("POST", ip, "settings", KEY, NULL, body, st);
}

/* POST to the admin API, expecting 200. */
static json_t *admin_ok(const char *path, const char *body)
{
	long st = 0;
	json_t *r = admin(&fleet, "POST", path, body, &st);

	if (st != 200)
		fail_msg("POST %s %s: %ld", path, body ? body : "", st);
	return r;
}

static void admin_status(const char *path, const char *body, long want)
{
	long st = 0;

	json_decref(admin(&fleet, "POST", path, body, &st));
	if (st != want)
		fail_msg("POST %s %s: %ld, expected %ld", path, body ? body : "", st, want);
}

static void miner_post(const char *mac, const char *action, const char *body, long want)
{
	char path[160];

	snprintf(path, sizeof(path), "/sim/miners/%s/%s", mac, action);
	admin_status(path, body, want);
}

/* The name of the running preset as /perf-summary reports it ("" null). */
static void perf_preset(const char *ip, char *name, size_t len, char *status, size_t slen)
{
	long st;
	json_t *r = fw("GET", ip, "perf-summary", NULL, NULL, NULL, &st), *cur;

	assert_int_equal(st, 200);
	cur = json_object_get(r, "current_preset");
	snprintf(name, len, "%s", json_is_object(cur) ? jstr(cur, "name") : "");
	if (status)
		snprintf(status, slen, "%s", json_is_object(cur) ? jstr(cur, "status") : "");
	json_decref(r);
}

struct wait_preset {
	const char *mac;
	const char *preset;
};

static bool truth_preset_mining(void *arg)
{
	struct wait_preset *w = arg;
	json_t *t = truth(w->mac);
	bool ok = t && strcmp(jstr(t, "preset"), w->preset) == 0 &&
		  strcmp(jstr(t, "state"), "mining") == 0;

	json_decref(t);
	return ok;
}

/* Until the miner mines with this preset. */
static int wait_preset(const char *mac, const char *preset, int timeout_ms)
{
	struct wait_preset w = { mac, preset };

	return tl_wait_until(timeout_ms, truth_preset_mining, &w);
}

static void test_preset_change(void **state)
{
	json_t *m = pick(is_metered_mining, 30), *r, *t, *list, *p;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac"), *old = jstr(m, "preset");
	double old_w = jnum(m, "power_w"), new_w = 0, mid;
	char target[16] = "", name[16], status[16];
	long long t0;
	size_t i;
	long st;

	(void)state;
	provision(ip);
	/* an untuned preset far from the running one: it tunes --tune-seconds */
	list = fw("GET", ip, "autotune/presets", KEY, NULL, NULL, &st);
	assert_int_equal(st, 200);
	json_array_foreach(list, i, p) {
		double w = atof(jstr(p, "name"));
		if (w > 0 && strcmp(jstr(p, "status"), "untuned") == 0 &&
		    (!*target || fabs(w - old_w) > fabs(new_w - old_w))) {
			new_w = w;
			snprintf(target, sizeof(target), "%s", jstr(p, "name"));
		}
	}
	json_decref(list);
	assert_true(fabs(new_w - old_w) >= 1000);

	json_decref(set_preset(ip, "9999", &st));
	assert_int_equal(st, 400);
	r = set_preset(ip, target, &st);
	assert_int_equal(st, 200);
	assert_true(json_is_true(json_object_get(r, "restart_required")));
	assert_true(json_is_false(json_object_get(r, "reboot_required")));
	json_decref(r);

	r = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(r, "miner_state"), "auto-tuning");
	/* live firmware: nothing waits for a restart */
	assert_true(json_is_false(json_object_get(r, "restart_required")));
	json_decref(r);
	/* the new preset is current at once, reported untuned while it tunes */
	perf_preset(ip, name, sizeof(name), status, sizeof(status));
	assert_string_equal(name, target);
	assert_string_equal(status, "untuned");
	/* ground truth: both calls handled (the 400 too), one change */
	t = truth(mac);
	assert_int_equal(jint(t, "settings_calls"), 2);
	assert_int_equal(jint(t, "preset_changes"), 1);
	assert_string_equal(jstr(t, "preset_set_by"), "api");
	assert_string_equal(jstr(t, "preset_apply"), "live");
	assert_true(json_is_null(json_object_get(t, "pending_preset")));
	assert_true(json_is_true(json_object_get(t, "tuning")));
	assert_string_equal(jstr(t, "preset_status"), "untuned");
	json_decref(t);
	/* the same preset again changes nothing */
	r = set_preset(ip, target, &st);
	assert_int_equal(st, 200);
	assert_true(json_is_false(json_object_get(r, "restart_required")));
	json_decref(r);
	t = truth(mac);
	assert_int_equal(jint(t, "settings_calls"), 3);
	assert_int_equal(jint(t, "preset_changes"), 1);
	json_decref(t);

	/* half-way through the tune the draw is between the two presets */
	usleep(1000 * 1000);
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "auto-tuning");
	assert_string_equal(jstr(t, "preset"), target);
	mid = jnum(t, "power_w");
	assert_true(fabs(mid - old_w) > 0.1 * fabs(new_w - old_w));
	assert_true(fabs(mid - new_w) > 0.1 * fabs(new_w - old_w));
	json_decref(t);

	assert_int_equal(wait_state(mac, "mining", 4000), 0);
	t = truth(mac);
	assert_true(fabs(jnum(t, "power_w") - new_w) < 0.02 * new_w);
	assert_string_equal(jstr(t, "preset_status"), "tuned");
	assert_true(json_is_false(json_object_get(t, "tuning")));
	json_decref(t);
	r = fw("GET", ip, "perf-summary", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(json_object_get(r, "current_preset"), "name"), target);
	assert_string_equal(jstr(json_object_get(r, "current_preset"), "status"), "tuned");
	json_decref(r);
	r = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
	assert_true(fabs(jint(json_object_get(r, "miner"), "power_consumption") - new_w) < 0.02 * new_w);
	json_decref(r);

	/* back to the preset it ran (tuned before): --tuned-seconds (1), not
	 * --tune-seconds, even when the latter is long */
	json_decref(admin_ok("/sim/config", "{\"tune_seconds\":30}"));
	json_decref(set_preset(ip, old, &st));
	assert_int_equal(st, 200);
	t0 = hive_mono_ms();
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "auto-tuning");
	json_decref(t);
	assert_int_equal(wait_preset(mac, old, 5000), 0);
	assert_true(hive_mono_ms() - t0 < 6000);
	json_decref(admin_ok("/sim/config", "{\"tune_seconds\":2}"));

	/* disabled = the stock figures */
	json_decref(set_preset(ip, "disabled", &st));
	assert_int_equal(st, 200);
	assert_int_equal(wait_preset(mac, "disabled", 4000), 0);
	t = truth(mac);
	assert_true(fabs(jnum(t, "power_w") - 3250) < 0.02 * 3250);
	assert_true(fabs(jnum(t, "hashrate_ghs") - 1000.0 * jnum(t, "stock_th")) <
		    0.03 * 1000.0 * jnum(t, "stock_th"));
	assert_int_equal(jint(t, "settings_calls"), 5);
	/* (nothing changed the last time when it ran stock to begin with) */
	assert_int_equal(jint(t, "preset_changes"), strcmp(old, "disabled") ? 3 : 2);
	json_decref(t);
	json_decref(m);
}

static bool answers_status(void *arg)
{
	char *body = NULL;
	long st = 0;
	int rc = fw_raw(arg, "status", &body, &st);

	free(body);
	return rc == 0 && st == 200;
}

static void test_reboot(void **state)
{
	json_t *m = pick(any, 6), *r, *t;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	char *body = NULL, path[128];
	long st;
	long long t0;

	(void)state;
	provision(ip);
	r = fw("POST", ip, "system/reboot", KEY, NULL, "{}", &st);
	assert_int_equal(st, 200);
	assert_true(json_is_integer(json_object_get(r, "after")));
	json_decref(r);
	t0 = hive_mono_ms();
	/* gone: connection refused */
	assert_int_equal(fw_raw(ip, "info", &body, &st), -1);
	free(body);
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "rebooting");
	assert_true(json_is_false(json_object_get(t, "online")));
	assert_int_equal(jint(t, "reboots"), 1);
	assert_int_equal(jint(t, "power_cycles"), 0);
	/* a rebooting miner draws ~30 W (control board booting) */
	assert_true(jnum(t, "power_w") > 20 && jnum(t, "power_w") < 40);
	assert_true(jnum(t, "hashrate_ghs") == 0);
	json_decref(t);
	t = admin(&fleet, "GET", "/sim/fleet", NULL, NULL);
	assert_true(jint(t, "rebooting") >= 1);
	json_decref(t);
	assert_int_equal(tl_wait_until(5000, answers_status, (void *)ip), 0);
	assert_true(hive_mono_ms() - t0 > 1500);
	r = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(r, "miner_state"), "initializing");
	json_decref(r);
	assert_int_equal(wait_state(mac, "mining", 4000), 0);
	/* keys survive a reboot */
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 200);
	r = fw("GET", ip, "info", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(json_object_get(r, "system"), "uptime"), "0:00");
	json_decref(r);
	/* uptime started again; mining at its preset (after a 1 s ramp) */
	usleep(1100 * 1000);
	t = truth(mac);
	assert_true(jint(t, "uptime_s") < 10);
	assert_true(fabs(jnum(t, "power_w") - jnum(t, "preset_watts")) <
		    0.02 * jnum(t, "preset_watts"));
	json_decref(t);

	/* power-cycled by hand: gone the same way, counted apart */
	snprintf(path, sizeof(path), "/sim/miners/%s/reboot", mac);
	t = admin_ok(path, NULL);
	assert_string_equal(jstr(t, "state"), "rebooting");
	json_decref(t);
	t = truth(mac);
	assert_int_equal(jint(t, "reboots"), 1);
	assert_int_equal(jint(t, "power_cycles"), 1);
	json_decref(t);
	assert_int_equal(wait_state(mac, "mining", 8000), 0);
	json_decref(m);
}

/* /status and /summary's miner_status agree on state and description. */
static void expect_state(const char *ip, const char *state, const char *description)
{
	long st;
	json_t *r = fw("GET", ip, "status", NULL, NULL, NULL, &st), *ms;

	assert_int_equal(st, 200);
	assert_string_equal(jstr(r, "miner_state"), state);
	if (description)
		assert_string_equal(jstr(r, "description"), description);
	else
		assert_null(json_object_get(r, "description"));
	json_decref(r);
	r = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
	assert_int_equal(st, 200);
	ms = json_object_get(json_object_get(r, "miner"), "miner_status");
	assert_string_equal(jstr(ms, "miner_state"), state);
	if (description)
		assert_string_equal(jstr(ms, "description"), description);
	json_decref(r);
}

static long long state_time(const char *ip)
{
	long st;
	json_t *r = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	long long v = jint(r, "miner_state_time");

	json_decref(r);
	return v;
}

static void test_mining_control(void **state)
{
	json_t *m = pick(any, 7), *r, *t;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	char *body = NULL;
	long long uptime;
	long st;

	(void)state;
	provision(ip);
	t = truth(mac);
	assert_int_equal(jint(t, "stops") + jint(t, "starts") + jint(t, "pauses") +
			 jint(t, "resumes") + jint(t, "restarts"), 0);
	json_decref(t);
	json_decref(fw("POST", ip, "mining/stop", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	usleep(1100 * 1000);
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "stopped");
	assert_true(json_is_false(json_object_get(t, "paused")));
	assert_true(jnum(t, "power_w") < 100);
	assert_true(jnum(t, "hashrate_ghs") == 0);
	json_decref(t);
	expect_state(ip, "stopped", NULL);
	json_decref(fw("POST", ip, "mining/start", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	r = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(r, "miner_state"), "starting");
	json_decref(r);
	assert_int_equal(wait_state(mac, "mining", 3000), 0);

	/* pause: "stopped" + "paused" (there is no paused state), near-zero draw */
	json_decref(fw("POST", ip, "mining/pause", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	expect_state(ip, "stopped", "paused");
	usleep(1100 * 1000);
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "stopped");
	assert_true(json_is_true(json_object_get(t, "paused")));
	assert_true(jnum(t, "power_w") < 100);
	assert_true(jnum(t, "hashrate_ghs") == 0);
	json_decref(t);
	r = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
	assert_true(jnum(json_object_get(r, "miner"), "hr_realtime") == 0);
	json_decref(r);
	t = admin(&fleet, "GET", "/sim/fleet", NULL, NULL);
	assert_true(jint(t, "paused") >= 1 && jint(t, "stopped") >= jint(t, "paused"));
	json_decref(t);
	/* a second pause changes nothing */
	json_decref(fw("POST", ip, "mining/pause", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	expect_state(ip, "stopped", "paused");
	/* resume: starting, then mining at the preset's power */
	json_decref(fw("POST", ip, "mining/resume", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	expect_state(ip, "starting", NULL);
	assert_int_equal(wait_state(mac, "mining", 3000), 0);
	usleep(1100 * 1000);          /* the ramp up */
	t = truth(mac);
	assert_true(json_is_false(json_object_get(t, "paused")));
	assert_true(fabs(jnum(t, "power_w") - jnum(t, "preset_watts")) <
		    0.02 * jnum(t, "preset_watts"));
	uptime = jint(t, "uptime_s");
	json_decref(t);
	/* resume of a miner that is not paused does nothing */
	json_decref(fw("POST", ip, "mining/resume", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	expect_state(ip, "mining", NULL);
	assert_true(state_time(ip) >= 1);

	/* restart: empty 200 body, restarting → mining, miner_state_time starts
	 * again, uptime does not */
	{
		char url[128], kh[64];
		const char *hdr[] = { kh, NULL };
		snprintf(kh, sizeof(kh), "x-api-key: %s", KEY);
		miner_url(url, sizeof(url), ip, fleet.port, "mining/restart");
		assert_int_equal(tl_http("POST", url, hdr, "{}", &body, &st), 0);
		assert_int_equal(st, 200);
		assert_true(!body || !*body);
		free(body);
	}
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "restarting");
	assert_true(jint(t, "state_s") == 0);
	json_decref(t);
	assert_int_equal(state_time(ip), 0);
	assert_int_equal(wait_state(mac, "mining", 3000), 0);
	assert_true(state_time(ip) <= 2);
	t = truth(mac);
	assert_true(jint(t, "uptime_s") >= uptime);
	/* ground truth: every handled call */
	assert_int_equal(jint(t, "stops"), 1);
	assert_int_equal(jint(t, "starts"), 1);
	assert_int_equal(jint(t, "pauses"), 2);
	assert_int_equal(jint(t, "resumes"), 2);
	assert_int_equal(jint(t, "restarts"), 1);
	assert_int_equal(jint(t, "settings_calls") + jint(t, "reboots"), 0);
	json_decref(t);

	/* refused (401) or failed (http500 fault) calls do not act and do not count */
	json_decref(fw("POST", ip, "mining/pause", NULL, NULL, "{}", &st));
	assert_int_equal(st, 401);
	{
		char body2[160];
		snprintf(body2, sizeof(body2), "{\"target\":\"%s\",\"kind\":\"http500\","
			 "\"endpoints\":[\"mining\"]}", mac);
		json_decref(admin_ok("/sim/fault", body2));
		json_decref(fw("POST", ip, "mining/pause", KEY, NULL, "{}", &st));
		assert_int_equal(st, 500);
		snprintf(body2, sizeof(body2), "{\"target\":\"%s\",\"kind\":\"none\"}", mac);
		json_decref(admin_ok("/sim/fault", body2));
	}
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "mining");
	assert_int_equal(jint(t, "pauses"), 2);
	json_decref(t);
	json_decref(m);
}

/* The i-th preset (0 = lowest) of a model's ladder. */
static const char *ladder(const json_t *m, int i)
{
	static const char *const s19[] = { "1100", "1300", "1500", "1700", "1900", "2100", "2350" };
	static const char *const jpro[] = { "1740", "1800", "1850", "2000", "2150", "2300", "2500" };

	return strcmp(jstr(m, "model"), "s19jpro") == 0 ? jpro[i] : s19[i];
}

/* POST /settings on firmware that saves the preset for the next restart
 * ("restart") or runs it later without saying so ("quiet"); the fleet's
 * "firmware" mode mixes them by firmware version. */
static void test_preset_apply_modes(void **state)
{
	json_t *m = pick(any, 40), *r, *t, *all, *v;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac"), *old = jstr(m, "preset");
	const char *a = ladder(m, 1), *b = ladder(m, 2), *c = ladder(m, 3);
	char name[16];
	size_t i;
	long st;

	(void)state;
	provision(ip);
	if (strcmp(old, a) == 0)           /* a must be a change */
		a = ladder(m, 0);
	miner_post(mac, "preset-apply", "{\"mode\":\"restart\"}", 200);
	json_decref(admin_ok("/sim/config", "{\"tune_seconds\":1,\"reboot_seconds\":1}"));

	/* restart: saved, restart_required everywhere, the old preset runs */
	r = set_preset(ip, a, &st);
	assert_int_equal(st, 200);
	assert_true(json_is_true(json_object_get(r, "restart_required")));
	json_decref(r);
	r = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_true(json_is_true(json_object_get(r, "restart_required")));
	assert_string_equal(jstr(r, "miner_state"), "mining");
	json_decref(r);
	usleep(1500 * 1000);          /* it does not run by itself */
	t = truth(mac);
	assert_string_equal(jstr(t, "preset_apply"), "restart");
	assert_string_equal(jstr(t, "preset"), old);
	assert_string_equal(jstr(t, "pending_preset"), a);
	assert_true(json_is_true(json_object_get(t, "restart_required")));
	assert_int_equal(jint(t, "settings_calls"), 1);
	assert_int_equal(jint(t, "preset_changes"), 0);
	assert_string_equal(jstr(t, "state"), "mining");
	json_decref(t);
	perf_preset(ip, name, sizeof(name), NULL, 0);
	assert_string_equal(name, strcmp(old, "disabled") == 0 && strcmp(jstr(m, "firmware"), "1.2.6") ?
			    "" : old);
	/* the restart applies it */
	json_decref(fw("POST", ip, "mining/restart", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "restarting");
	assert_string_equal(jstr(t, "preset"), a);
	assert_true(json_is_null(json_object_get(t, "pending_preset")));
	assert_int_equal(jint(t, "preset_changes"), 1);
	assert_int_equal(jint(t, "restarts"), 1);
	json_decref(t);
	assert_int_equal(wait_preset(mac, a, 5000), 0);
	r = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_true(json_is_false(json_object_get(r, "restart_required")));
	json_decref(r);
	perf_preset(ip, name, sizeof(name), NULL, 0);
	assert_string_equal(name, a);
	/* saving the running preset cancels nothing-to-do */
	r = set_preset(ip, a, &st);
	assert_true(json_is_false(json_object_get(r, "restart_required")));
	json_decref(r);
	/* a reboot boots what was saved */
	json_decref(set_preset(ip, b, &st));
	assert_int_equal(st, 200);
	json_decref(fw("POST", ip, "system/reboot", KEY, NULL, "{}", &st));
	assert_int_equal(st, 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "state"), "rebooting");
	assert_string_equal(jstr(t, "preset"), b);
	assert_int_equal(jint(t, "preset_changes"), 2);
	json_decref(t);
	assert_int_equal(wait_preset(mac, b, 8000), 0);

	/* quiet: answers restart_required false, runs apply_seconds (1) later */
	miner_post(mac, "preset-apply", "{\"mode\":\"quiet\"}", 200);
	r = set_preset(ip, c, &st);
	assert_int_equal(st, 200);
	assert_true(json_is_false(json_object_get(r, "restart_required")));
	json_decref(r);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset"), b);
	assert_string_equal(jstr(t, "pending_preset"), c);
	assert_true(json_is_false(json_object_get(t, "restart_required")));
	json_decref(t);
	perf_preset(ip, name, sizeof(name), NULL, 0);
	assert_string_equal(name, b);
	assert_int_equal(wait_preset(mac, c, 5000), 0);
	t = truth(mac);
	assert_int_equal(jint(t, "restarts"), 1);
	assert_int_equal(jint(t, "preset_changes"), 3);
	assert_int_equal(jint(t, "settings_calls"), 4);
	assert_string_equal(jstr(t, "preset_set_by"), "api");
	json_decref(t);
	perf_preset(ip, name, sizeof(name), NULL, 0);
	assert_string_equal(name, c);

	/* the fleet's mode "firmware": 1.2.6 needs a restart, 1.3.x is quiet;
	 * a miner's own mode wins until set back to null */
	json_decref(admin_ok("/sim/config", "{\"preset_apply\":\"firmware\"}"));
	all = admin(&fleet, "GET", "/sim/miners", NULL, NULL);
	json_array_foreach(all, i, v) {
		const char *want = strcmp(jstr(v, "mac"), mac) == 0 ? "quiet" :
				   is_fw126(v) ? "restart" : "quiet";
		assert_string_equal(jstr(v, "preset_apply"), want);
	}
	json_decref(all);
	miner_post(mac, "preset-apply", "{\"mode\":null}", 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset_apply"), is_fw126(m) ? "restart" : "quiet");
	json_decref(t);
	t = admin_ok("/sim/config", "{\"preset_apply\":\"live\",\"tune_seconds\":2,"
		     "\"reboot_seconds\":2}");
	assert_string_equal(jstr(t, "preset_apply"), "live");
	assert_int_equal(jint(t, "apply_seconds"), 1);
	assert_int_equal(jint(t, "tuned_seconds"), 1);
	json_decref(t);
	t = admin(&fleet, "GET", "/sim/config", NULL, &st);
	assert_int_equal(st, 200);
	assert_int_equal(jint(t, "tune_seconds"), 2);
	assert_int_equal(jint(t, "start_seconds"), 1);
	json_decref(t);
	/* bad input */
	miner_post(mac, "preset-apply", "{\"mode\":\"sometimes\"}", 400);
	admin_status("/sim/config", "{\"tune_seconds\":-1}", 400);
	admin_status("/sim/config", "{\"tune_seconds\":\"5\"}", 400);
	admin_status("/sim/config", "{\"preset_apply\":\"never\"}", 400);
	admin_status("/sim/config", "{\"warp\":1}", 400);
	json_decref(m);
}

/* A person on the miner's web page: the preset runs at once and no API
 * call is counted. */
static void test_web_preset(void **state)
{
	json_t *m = pick(any, 41), *t;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	const char *a = strcmp(jstr(m, "preset"), ladder(m, 4)) ? ladder(m, 4) : ladder(m, 5);
	char name[16], status[16], body[64];
	long long requests;

	(void)state;
	requests = jint(m, "requests");
	snprintf(body, sizeof(body), "{\"preset\":\"%s\"}", a);
	miner_post(mac, "preset", body, 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset"), a);
	assert_string_equal(jstr(t, "state"), "auto-tuning");
	assert_string_equal(jstr(t, "preset_set_by"), "web");
	assert_int_equal(jint(t, "web_preset_changes"), 1);
	assert_int_equal(jint(t, "settings_calls"), 0);
	assert_int_equal(jint(t, "preset_changes"), 0);
	assert_int_equal(jint(t, "requests"), requests);
	json_decref(t);
	perf_preset(ip, name, sizeof(name), status, sizeof(status));
	assert_string_equal(name, a);
	assert_string_equal(status, "untuned");
	assert_int_equal(wait_preset(mac, a, 5000), 0);
	/* the same preset again: nothing */
	miner_post(mac, "preset", body, 200);
	t = truth(mac);
	assert_int_equal(jint(t, "web_preset_changes"), 1);
	assert_string_equal(jstr(t, "state"), "mining");
	json_decref(t);
	/* "by":"switcher": the firmware moved it */
	snprintf(body, sizeof(body), "{\"preset\":\"%s\",\"by\":\"switcher\"}", ladder(m, 0));
	miner_post(mac, "preset", body, 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset_set_by"), "switcher");
	assert_int_equal(jint(t, "switcher_preset_changes"), 1);
	assert_int_equal(jint(t, "web_preset_changes"), 1);
	json_decref(t);
	assert_int_equal(wait_preset(mac, ladder(m, 0), 5000), 0);
	/* bad input */
	miner_post(mac, "preset", "{\"preset\":\"9999\"}", 400);
	miner_post(mac, "preset", "{\"preset\":\"1100\",\"by\":\"robot\"}", 400);
	miner_post("00:00:00:00:00:00", "preset", "{\"preset\":\"1100\"}", 404);
	json_decref(m);
}

static bool truth_switcher_at(void *arg)
{
	struct wait_preset *w = arg;
	json_t *t = truth(w->mac);
	bool ok = t && strcmp(jstr(t, "preset"), w->preset) == 0 &&
		  strcmp(jstr(t, "state"), "mining") == 0 &&
		  json_is_null(json_object_get(json_object_get(t, "switcher"), "next_preset"));

	json_decref(t);
	return ok;
}

/* The firmware's preset switcher raises the preset back toward its top by
 * itself: the conflict a controller enforcing a lower preset will meet. */
static void test_switcher(void **state)
{
	json_t *m = pick(any, 42), *t, *r, *sw;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	const char *p0 = ladder(m, 2), *p1 = ladder(m, 3), *p2 = ladder(m, 4);
	struct wait_preset w = { mac, p2 };
	char body[128], name[16];
	long st;

	(void)state;
	provision(ip);
	/* timings can change while running: shorter tunes for this test */
	json_decref(admin_ok("/sim/config", "{\"tune_seconds\":1}"));
	/* a person sets p2 and switches the switcher on (top: what it runs) */
	snprintf(body, sizeof(body), "{\"preset\":\"%s\"}", p2);
	miner_post(mac, "preset", body, 200);
	assert_int_equal(wait_preset(mac, p2, 5000), 0);
	miner_post(mac, "switcher", "{\"enabled\":true,\"check_time\":1}", 200);
	r = fw("GET", ip, "perf-summary", NULL, NULL, NULL, &st);
	sw = json_object_get(r, "preset_switcher");
	assert_true(json_is_true(json_object_get(sw, "enabled")));
	assert_string_equal(jstr(sw, "top_preset"), p2);
	assert_int_equal(jint(sw, "check_time"), 1);
	json_decref(r);
	t = truth(mac);
	sw = json_object_get(t, "switcher");
	assert_true(json_is_true(json_object_get(sw, "enabled")));
	assert_string_equal(jstr(sw, "top_preset"), p2);
	assert_true(json_is_null(json_object_get(sw, "next_preset")));
	json_decref(t);

	/* the controller lowers it two steps; the switcher takes it back up,
	 * one step per check_time of steady mining */
	json_decref(set_preset(ip, p0, &st));
	assert_int_equal(st, 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset"), p0);
	assert_string_equal(jstr(json_object_get(t, "switcher"), "next_preset"), p1);
	json_decref(t);
	if (tl_wait_until(15000, truth_switcher_at, &w) < 0)
		fail_msg("the switcher did not raise %s back to %s", p0, p2);
	t = truth(mac);
	assert_int_equal(jint(t, "switcher_preset_changes"), 2);
	assert_int_equal(jint(t, "preset_changes"), 1);
	assert_int_equal(jint(t, "settings_calls"), 1);
	assert_string_equal(jstr(t, "preset_set_by"), "switcher");
	json_decref(t);
	perf_preset(ip, name, sizeof(name), NULL, 0);
	assert_string_equal(name, p2);

	/* switched off, a lower preset stays */
	miner_post(mac, "switcher", "{\"enabled\":false}", 200);
	json_decref(set_preset(ip, p0, &st));
	assert_int_equal(wait_preset(mac, p0, 5000), 0);
	usleep(1500 * 1000);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset"), p0);
	assert_int_equal(jint(t, "switcher_preset_changes"), 2);
	json_decref(t);
	r = fw("GET", ip, "perf-summary", NULL, NULL, NULL, &st);
	assert_true(json_is_false(json_object_get(json_object_get(r, "preset_switcher"), "enabled")));
	json_decref(r);

	/* a top one step up: exactly one step */
	snprintf(body, sizeof(body), "{\"enabled\":true,\"top_preset\":\"%s\"}", p1);
	miner_post(mac, "switcher", body, 200);
	w.preset = p1;
	assert_int_equal(tl_wait_until(8000, truth_switcher_at, &w), 0);
	usleep(1500 * 1000);
	t = truth(mac);
	assert_string_equal(jstr(t, "preset"), p1);
	assert_int_equal(jint(t, "switcher_preset_changes"), 3);
	json_decref(t);

	/* bad input */
	miner_post(mac, "switcher", "{\"top_preset\":\"disabled\"}", 400);
	miner_post(mac, "switcher", "{\"check_time\":0}", 400);
	miner_post(mac, "switcher", "{\"enabled\":\"yes\"}", 400);
	snprintf(body, sizeof(body), "{\"min_preset\":\"%s\",\"top_preset\":\"%s\"}", p2, p0);
	miner_post(mac, "switcher", body, 400);
	miner_post(mac, "switcher", "{\"enabled\":false,\"top_preset\":null}", 200);
	t = truth(mac);
	assert_true(json_is_null(json_object_get(json_object_get(t, "switcher"), "top_preset")));
	json_decref(t);
	json_decref(admin_ok("/sim/config", "{\"tune_seconds\":2}"));
	json_decref(m);
}

/* /sim/fleet power_w is what a power balancer is judged by: the sum of the
 * miners' real draw, each at its preset when mining, near zero paused. */
static void test_fleet_power(void **state)
{
	json_t *a = pick(any, 44), *b = pick(any, 45), *all, *fl, *v, *r;
	long long sum = 0, sum_preset = 0, fleet_w;
	int paused = 0;
	size_t i;
	long st;

	(void)state;
	provision(jstr(a, "ip"));
	provision(jstr(b, "ip"));
	json_decref(fw("POST", jstr(a, "ip"), "mining/pause", KEY, NULL, "{}", &st));
	json_decref(fw("POST", jstr(b, "ip"), "mining/pause", KEY, NULL, "{}", &st));
	usleep(1200 * 1000);
	fl = admin(&fleet, "GET", "/sim/fleet", NULL, NULL);
	all = admin(&fleet, "GET", "/sim/miners", NULL, NULL);
	json_array_foreach(all, i, v) {
		sum += jint(v, "power_w");
		if (strcmp(jstr(v, "state"), "mining") == 0) {
			/* ±1 % noise around the preset's watts */
			assert_true(fabs(jnum(v, "power_w") - jnum(v, "preset_watts")) <=
				    0.011 * jnum(v, "preset_watts") + 1);
			sum_preset += jint(v, "preset_watts");
		} else if (json_is_true(json_object_get(v, "paused"))) {
			assert_true(jnum(v, "power_w") < 100);
			paused++;
		}
	}
	fleet_w = jint(fl, "power_w");
	assert_int_equal(jint(fl, "paused"), paused);
	assert_true(paused >= 2);
	/* two reads a moment apart: the same within the noise */
	assert_true(llabs(fleet_w - sum) < fleet_w / 50);
	assert_true(sum_preset > 0 && sum_preset < fleet_w + fleet_w / 50);
	json_decref(all);
	json_decref(fl);
	/* resumed, the fleet draws the two presets again */
	json_decref(fw("POST", jstr(a, "ip"), "mining/resume", KEY, NULL, "{}", &st));
	json_decref(fw("POST", jstr(b, "ip"), "mining/resume", KEY, NULL, "{}", &st));
	assert_int_equal(wait_state(jstr(a, "mac"), "mining", 3000), 0);
	assert_int_equal(wait_state(jstr(b, "mac"), "mining", 3000), 0);
	usleep(1100 * 1000);
	fl = admin(&fleet, "GET", "/sim/fleet", NULL, NULL);
	assert_int_equal(jint(fl, "paused"), paused - 2);
	r = truth(jstr(a, "mac"));
	assert_true(jint(fl, "power_w") > fleet_w + jint(r, "preset_watts") / 2);
	json_decref(r);
	json_decref(fl);
	/* counters reset for the whole fleet */
	r = admin_ok("/sim/counters/reset", NULL);
	assert_true(jint(r, "reset") >= 2);
	json_decref(r);
	r = truth(jstr(a, "mac"));
	assert_int_equal(jint(r, "pauses") + jint(r, "resumes"), 0);
	json_decref(r);
	json_decref(a);
	json_decref(b);
}

static json_t *set_fault(const char *target, const char *kind, const char *extra)
{
	char body[256];
	long st;
	json_t *r;

	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"%s\"%s%s}", target, kind,
		 extra ? "," : "", extra ? extra : "");
	r = admin(&fleet, "POST", "/sim/fault", body, &st);
	assert_int_equal(st, 200);
	assert_true(json_is_array(json_object_get(r, "applied")));
	return r;
}

static void test_faults(void **state)
{
	json_t *m = pick(is_fw126, 20), *j, *t;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	char *body = NULL, *model = NULL;
	long st;
	long long t0;
	uint32_t requests;

	(void)state;
	provision(ip);
	assert_int_equal(fw_raw(ip, "model", &model, &st), 0);

	/* offline: refused, and back */
	json_decref(set_fault(mac, "offline", NULL));
	assert_int_equal(fw_raw(ip, "info", &body, &st), -1);
	free(body);
	t = truth(mac);
	assert_string_equal(jstr(t, "fault"), "offline");
	assert_true(json_is_false(json_object_get(t, "online")));
	json_decref(t);
	json_decref(set_fault(mac, "none", NULL));
	assert_int_equal(fw_raw(ip, "info", &body, &st), 0);
	free(body);

	/* slow */
	json_decref(set_fault(mac, "slow", "\"seconds\":1"));
	t0 = hive_mono_ms();
	j = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_true(hive_mono_ms() - t0 >= 900);
	assert_int_equal(st, 200);
	assert_non_null(jstr(j, "miner_state"));
	json_decref(j);

	/* reset: closed mid-body */
	json_decref(set_fault(mac, "reset", NULL));
	assert_int_equal(fw_raw(ip, "chains", &body, &st), -1);
	free(body);

	/* http500 */
	json_decref(set_fault(mac, "http500", NULL));
	j = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
	assert_int_equal(st, 500);
	assert_non_null(jstr(j, "err"));
	json_decref(j);

	/* invalid_json: complete answer, not JSON */
	json_decref(set_fault(mac, "invalid_json", NULL));
	assert_int_equal(fw_raw(ip, "model", &body, &st), 0);
	assert_int_equal(st, 200);
	assert_null(json_loads(body, 0, NULL));
	free(body);

	/* truncated: a complete HTTP answer holding half the document */
	json_decref(set_fault(mac, "truncated", NULL));
	assert_int_equal(fw_raw(ip, "model", &body, &st), 0);
	assert_int_equal(st, 200);
	assert_int_equal(strlen(body), strlen(model) / 2);
	assert_memory_equal(body, model, strlen(body));
	free(body);

	/* missing_fields / null_fields */
	json_decref(set_fault(mac, "missing_fields", NULL));
	j = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_null(json_object_get(j, "miner_state"));
	assert_non_null(json_object_get(j, "unlocked"));
	json_decref(j);
	j = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
	assert_null(json_object_get(json_object_get(j, "miner"), "hr_realtime"));
	json_decref(j);
	json_decref(set_fault(mac, "null_fields", NULL));
	j = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_true(json_is_null(json_object_get(j, "miner_state")));
	json_decref(j);

	/* strings: numbers as strings */
	json_decref(set_fault(mac, "strings", NULL));
	j = fw("GET", ip, "status", NULL, NULL, NULL, &st);
	assert_true(json_is_string(json_object_get(j, "miner_state_time")));
	json_decref(j);
	j = fw("GET", ip, "summary", KEY, NULL, NULL, &st);
	assert_true(json_is_string(json_object_get(json_object_get(j, "miner"), "hr_realtime")));
	json_decref(j);

	/* oversized: valid, several MB */
	json_decref(set_fault(mac, "oversized", NULL));
	assert_int_equal(fw_raw(ip, "status", &body, &st), 0);
	assert_true(strlen(body) > 3u * 1024 * 1024);
	j = json_loads(body, 0, NULL);
	assert_non_null(jstr(j, "miner_state"));
	json_decref(j);
	free(body);

	/* only the endpoints named */
	json_decref(set_fault(mac, "http500", "\"endpoints\":[\"summary\"]"));
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 500);
	json_decref(fw("GET", ip, "info", NULL, NULL, NULL, &st));
	assert_int_equal(st, 200);
	t = truth(mac);
	assert_string_equal(jstr(t, "fault"), "http500");
	json_decref(t);

	/* bad fault requests change nothing */
	json_decref(admin(&fleet, "POST", "/sim/fault", "{\"target\":\"all\",\"kind\":\"boom\"}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault", "{\"target\":\"all\",\"kind\":\"slow\","
			  "\"endpoints\":[\"nope\"]}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault", "not json", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault",
			  "{\"target\":\"00:00:00:00:00:01\",\"kind\":\"slow\"}", &st));
	assert_int_equal(st, 404);

	/* reset clears */
	json_decref(admin(&fleet, "POST", "/sim/reset", "{}", &st));
	assert_int_equal(st, 200);
	json_decref(fw("GET", ip, "summary", KEY, NULL, NULL, &st));
	assert_int_equal(st, 200);

	/* requests are counted */
	t = truth(mac);
	requests = (uint32_t)jint(t, "requests");
	json_decref(t);
	for (int i = 0; i < 3; i++)
		json_decref(fw("GET", ip, "status", NULL, NULL, NULL, &st));
	t = truth(mac);
	assert_int_equal(jint(t, "requests"), requests + 3);
	json_decref(t);
	free(model);
	json_decref(m);
}

/* /summary of a miner, as pollerd's parser reads it. */
static void parsed_summary(const char *ip, struct hive_fw_summary *out)
{
	char url[256], kh[128];
	const char *hdr[2] = { kh, NULL };
	char *body = NULL;
	long st;
	struct hive_fw_err err;

	miner_url(url, sizeof(url), ip, fleet.port, "summary");
	snprintf(kh, sizeof(kh), "x-api-key: %s", KEY);
	assert_int_equal(tl_http("GET", url, hdr, NULL, &body, &st), 0);
	assert_int_equal(st, 200);
	memset(out, 0, sizeof(*out));
	assert_int_equal(hive_fw_parse_summary(body, strlen(body), out, &err), 0);
	free(body);
}

/* Hardware faults: each shows in what the firmware reports (and so in what
 * pollerd stores) and in the ground truth; they combine; "none" clears. */
static void test_hw_faults(void **state)
{
	json_t *m = pick(is_metered_mining, 24), *t, *hw, *j, *ch;
	const char *ip = jstr(m, "ip"), *mac = jstr(m, "mac");
	struct hive_fw_summary *s = calloc(1, sizeof(*s));
	double nominal, rise, dt;
	long long hw0, t0;
	long st;

	(void)state;
	assert_non_null(m);
	assert_non_null(s);
	provision(ip);

	/* overheat: chips at the temperature, PCB 12 °C under, fans full */
	json_decref(set_fault(mac, "overheat", "\"temp\":97"));
	parsed_summary(ip, s);
	assert_int_equal(s->chip_temp_max, 97);
	assert_int_equal(s->pcb_temp_max, 85);
	assert_int_equal(s->fan_duty, 100);
	for (int c = 0; c < s->nchains; c++)
		assert_true(s->chains[c].chip_temp_max >= 95);
	t = truth(mac);
	hw = json_object_get(t, "hw_faults");
	assert_true(jnum(hw, "overheat") == 97.0);
	assert_string_equal(jstr(t, "fault"), "none");   /* apart from protocol faults */
	json_decref(t);

	/* fan_stopped (fan 2, 1-based like the firmware's ids): 0 rpm, "lost" */
	json_decref(set_fault(mac, "fan_stopped", "\"fan\":2"));
	parsed_summary(ip, s);
	assert_true(s->nfans >= 2);
	for (int i = 0; i < s->nfans; i++) {
		assert_int_equal(s->fans[i].rpm == 0, i == 1);
		assert_int_equal(s->fans[i].ok, i != 1);
	}
	assert_int_equal(s->chip_temp_max, 97);          /* still overheating */

	/* chain_dead: board 2 fails, hashes nothing, lists no chips */
	json_decref(set_fault(mac, "chain_dead", "\"chain\":2"));
	parsed_summary(ip, s);
	assert_int_equal(s->nchains, 3);
	assert_string_equal(s->state, "mining");
	for (int c = 0; c < 3; c++) {
		assert_string_equal(s->chains[c].state, c == 1 ? "failure" : "mining");
		assert_int_equal(s->chains[c].hashrate_rt <= 0, c == 1);
	}
	nominal = s->hr_nominal;
	assert_true(fabs(s->hr_realtime / nominal - 2.0 / 3.0) < 0.05);
	j = fw("GET", ip, "chains", NULL, NULL, NULL, &st);
	assert_int_equal(st, 200);
	ch = json_array_get(j, 1);
	assert_string_equal(jstr(json_object_get(ch, "status"), "state"), "failure");
	assert_int_equal(json_array_size(json_object_get(ch, "chips")), 0);
	assert_true(jnum(ch, "hr_realtime") == 0.0);
	assert_true(json_array_size(json_object_get(json_array_get(j, 0), "chips")) > 0);
	json_decref(j);

	/* hashrate_drop: the rest at a factor of normal */
	json_decref(set_fault(mac, "hashrate_drop", "\"factor\":0.4"));
	parsed_summary(ip, s);
	assert_true(fabs(s->hr_realtime / nominal - 0.4 * 2.0 / 3.0) < 0.03);

	/* red_chips on board 3 */
	json_decref(set_fault(mac, "red_chips", "\"count\":15,\"chain\":3"));
	parsed_summary(ip, s);
	assert_true(s->chains[2].red >= 15);
	t = truth(mac);
	hw = json_object_get(t, "hw_faults");
	assert_int_equal(jint(hw, "fan_stopped"), 2);
	assert_int_equal(jint(hw, "chain_dead"), 2);
	assert_true(fabs(jnum(hw, "hashrate_drop") - 0.4) < 1e-9);
	assert_int_equal(jint(json_object_get(hw, "red_chips"), "count"), 15);
	assert_true(fabs(jnum(t, "hashrate_ghs") / nominal - 0.4 * 2.0 / 3.0) < 0.03);
	json_decref(t);

	/* hw_errors: the counter climbs 1,000 a second (on the boards that
	 * hash), on top of its few a minute */
	json_decref(set_fault(mac, "hw_errors", "\"per_minute\":60000"));
	parsed_summary(ip, s);
	hw0 = s->hw_errors;
	t0 = hive_mono_ms();
	tl_sleep_ms(1000);
	parsed_summary(ip, s);
	rise = (double)(s->hw_errors - hw0);
	dt = (double)(hive_mono_ms() - t0);
	printf("figure: minersim: hw_errors at 60000 a minute: +%.0f in %.0f ms\n", rise, dt);
	assert_true(rise >= 0.8 * (dt - 200) && rise <= 1.1 * (dt + 200));
	assert_int_equal(s->chains[1].hw_errors, 0);          /* the dead board */
	t = truth(mac);
	hw = json_object_get(json_object_get(t, "hw_faults"), "hw_errors");
	assert_true(jnum(hw, "per_minute") == 60000.0);
	assert_true(jint(hw, "errors") >= (long long)rise);
	json_decref(t);

	/* bad values change nothing */
	json_decref(admin(&fleet, "POST", "/sim/fault",
			  "{\"target\":\"all\",\"kind\":\"overheat\",\"temp\":500}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault",
			  "{\"target\":\"all\",\"kind\":\"fan_stopped\",\"fan\":9}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault",
			  "{\"target\":\"all\",\"kind\":\"chain_dead\",\"chain\":0}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault",
			  "{\"target\":\"all\",\"kind\":\"hashrate_drop\",\"factor\":1.5}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", "/sim/fault",
			  "{\"target\":\"all\",\"kind\":\"hw_errors\",\"per_minute\":0}", &st));
	assert_int_equal(st, 400);

	/* "none" clears them all */
	json_decref(set_fault(mac, "none", NULL));
	parsed_summary(ip, s);
	assert_true(s->chip_temp_max < 90);
	for (int i = 0; i < s->nfans; i++)
		assert_true(s->fans[i].rpm > 0 && s->fans[i].ok);
	for (int c = 0; c < s->nchains; c++)
		assert_string_equal(s->chains[c].state, "mining");
	assert_true(s->hr_realtime / nominal > 0.9);
	t = truth(mac);
	assert_int_equal(json_object_size(json_object_get(t, "hw_faults")), 0);
	json_decref(t);

	/* and /sim/reset too, with the names the rules' authors use */
	json_decref(set_fault(mac, "fan_stop", NULL));
	json_decref(set_fault(mac, "dead_chain", NULL));
	t = truth(mac);
	hw = json_object_get(t, "hw_faults");
	assert_int_equal(jint(hw, "fan_stopped"), 1);
	assert_int_equal(jint(hw, "chain_dead"), 1);
	json_decref(t);
	j = admin(&fleet, "POST", "/sim/reset", "{}", &st);
	assert_int_equal(st, 200);
	assert_true(jint(j, "cleared") >= 1);
	json_decref(j);
	t = truth(mac);
	assert_int_equal(json_object_size(json_object_get(t, "hw_faults")), 0);
	json_decref(t);
	free(s);
	json_decref(m);
}

static void test_fault_share(void **state)
{
	json_t *r1, *r2, *all, *m, *fl;
	size_t i, k;
	int failing = 0;
	long st;

	(void)state;
	r1 = set_fault("all", "http500", "\"share\":0.2,\"endpoints\":[\"info\"]");
	assert_int_equal(json_array_size(json_object_get(r1, "applied")), MINERS / 5);
	all = admin(&fleet, "GET", "/sim/miners", NULL, NULL);
	json_array_foreach(all, i, m) {
		bool listed = false;
		json_t *mac;
		json_array_foreach(json_object_get(r1, "applied"), k, mac)
			listed |= strcmp(json_string_value(mac), jstr(m, "mac")) == 0;
		json_decref(fw("GET", jstr(m, "ip"), "info", NULL, NULL, NULL, &st));
		assert_int_equal(st, listed ? 500 : 200);
		failing += st == 500;
	}
	assert_int_equal(failing, MINERS / 5);
	json_decref(all);
	fl = admin(&fleet, "GET", "/sim/fleet", NULL, NULL);
	assert_int_equal(jint(fl, "miners"), MINERS);
	assert_true(jint(fl, "requests") > MINERS);
	assert_true(jint(fl, "power_w") > MINERS * 1000);
	json_decref(fl);

	/* the same share picks the same miners */
	json_decref(admin(&fleet, "POST", "/sim/reset", "{}", NULL));
	r2 = set_fault("all", "http500", "\"share\":0.2,\"endpoints\":[\"info\"]");
	assert_true(json_equal(json_object_get(r1, "applied"), json_object_get(r2, "applied")));
	json_decref(admin(&fleet, "POST", "/sim/reset", "{}", NULL));
	json_decref(r1);
	json_decref(r2);
}

static void test_move_swap(void **state)
{
	json_t *all = admin(&fleet, "GET", "/sim/miners", NULL, NULL);
	json_t *hosts = admin(&fleet, "GET", "/sim/hosts", NULL, NULL), *m, *j;
	json_t *a = json_array_get(all, 10), *b = json_array_get(all, 11);
	char free_ip[32] = "", body[128], path[128], ipa[32], ipb[32], *text = NULL;
	const char *maca = jstr(a, "mac"), *macb = jstr(b, "mac");
	size_t i;
	long st;

	(void)state;
	/* a free address */
	for (int d = 1; d < 255 && !*free_ip; d++) {
		char ip[32];
		bool taken = false;
		snprintf(ip, sizeof(ip), "127.77.0.%d", d);
		json_array_foreach(all, i, m)
			taken |= strcmp(jstr(m, "ip"), ip) == 0;
		json_array_foreach(hosts, i, m)
			taken |= strcmp(jstr(m, "ip"), ip) == 0;
		if (!taken)
			snprintf(free_ip, sizeof(free_ip), "%s", ip);
	}
	assert_true(*free_ip);
	snprintf(ipa, sizeof(ipa), "%s", jstr(a, "ip"));
	snprintf(ipb, sizeof(ipb), "%s", jstr(b, "ip"));

	/* DHCP move */
	snprintf(path, sizeof(path), "/sim/miners/%s/move", maca);
	snprintf(body, sizeof(body), "{\"ip\":\"%s\"}", free_ip);
	j = admin(&fleet, "POST", path, body, &st);
	assert_int_equal(st, 200);
	assert_string_equal(jstr(j, "ip"), free_ip);
	json_decref(j);
	assert_int_equal(fw_raw(ipa, "info", &text, &st), -1);
	free(text);
	j = fw("GET", free_ip, "info", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(json_object_get(json_object_get(j, "system"), "network_status"), "mac"),
			    maca);
	assert_string_equal(jstr(json_object_get(json_object_get(j, "system"), "network_status"), "ip"),
			    free_ip);
	json_decref(j);
	/* onto a taken address, outside the subnet, garbage: refused */
	snprintf(body, sizeof(body), "{\"ip\":\"%s\"}", ipb);
	json_decref(admin(&fleet, "POST", path, body, &st));
	assert_int_equal(st, 409);
	snprintf(body, sizeof(body), "{\"ip\":\"%s\"}", jstr(json_array_get(hosts, 0), "ip"));
	json_decref(admin(&fleet, "POST", path, body, &st));
	assert_int_equal(st, 409);
	json_decref(admin(&fleet, "POST", path, "{\"ip\":\"127.77.5.1\"}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", path, "{\"ip\":\"127.77.0.255\"}", &st));
	assert_int_equal(st, 400);
	json_decref(admin(&fleet, "POST", path, "{\"ip\":12}", &st));
	assert_int_equal(st, 400);
	j = truth(maca);
	assert_string_equal(jstr(j, "ip"), free_ip);
	json_decref(j);

	/* swap */
	snprintf(body, sizeof(body), "{\"a\":\"%s\",\"b\":\"%s\"}", maca, macb);
	json_decref(admin(&fleet, "POST", "/sim/swap", body, &st));
	assert_int_equal(st, 200);
	j = fw("GET", free_ip, "info", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(json_object_get(json_object_get(j, "system"), "network_status"), "mac"),
			    macb);
	json_decref(j);
	j = fw("GET", ipb, "info", NULL, NULL, NULL, &st);
	assert_string_equal(jstr(json_object_get(json_object_get(j, "system"), "network_status"), "mac"),
			    maca);
	json_decref(j);
	j = truth(macb);
	assert_string_equal(jstr(j, "ip"), free_ip);
	json_decref(j);
	json_decref(all);
	json_decref(hosts);
}

static void test_http_robustness(void **state)
{
	json_t *m = pick(any, 12);
	const char *ip = jstr(m, "ip");
	char out[65536], big[12000];
	bool eof;
	ssize_t n;

	(void)state;
	/* junk → 400 and close */
	n = raw_str(ip, "GARBAGE\r\n\r\n", out, sizeof(out), &eof);
	assert_true(n > 0 && eof);
	assert_memory_equal(out, "HTTP/1.1 400 ", 13);
	n = raw_str(ip, "GET /api/v1/info HTTP/1.1\r\nHost\r\n\r\n", out, sizeof(out), &eof);
	assert_memory_equal(out, "HTTP/1.1 400 ", 13);
	n = raw(ip, fleet.port, "GET /x HTTP/1.1\r\nA: \0b\r\n\r\n", 26, out, sizeof(out), 2000, &eof);
	assert_memory_equal(out, "HTTP/1.1 400 ", 13);
	n = raw_str(ip, "GET /x HTTP/2.0\r\n\r\n", out, sizeof(out), &eof);
	assert_memory_equal(out, "HTTP/1.1 505 ", 13);
	/* head too large */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX-Pad: ", 23);
	n = raw(ip, fleet.port, big, sizeof(big), out, sizeof(out), 2000, &eof);
	assert_memory_equal(out, "HTTP/1.1 431 ", 13);
	/* body too large, chunked */
	n = raw_str(ip, "POST /api/v1/unlock HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", out,
		    sizeof(out), &eof);
	assert_memory_equal(out, "HTTP/1.1 413 ", 13);
	n = raw_str(ip, "POST /api/v1/unlock HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", out,
		    sizeof(out), &eof);
	assert_memory_equal(out, "HTTP/1.1 501 ", 13);

	/* keep-alive and pipelining: two answers on one connection; the second
	 * asked to close, so the server closes */
	{
		static const char two[] =
			"GET /api/v1/status HTTP/1.1\r\nHost: m\r\n\r\n"
			"POST /api/v1/unlock HTTP/1.1\r\nContent-Length: 14\r\nConnection: close\r\n\r\n"
			"{\"pw\":\"admin\"}";
		n = raw(ip, fleet.port, two, sizeof(two) - 1, out, sizeof(out), 3000, &eof);
		assert_true(eof);
		assert_int_equal(count(out, "HTTP/1.1 200 OK"), 2);
		assert_non_null(strstr(out, "\"token\""));
		assert_non_null(strstr(out, "Connection: close"));
	}
	/* HTTP/1.0 closes by default; keep-alive stays open */
	n = raw_str(ip, "GET /api/v1/status HTTP/1.0\r\n\r\n", out, sizeof(out), &eof);
	assert_true(eof);
	assert_memory_equal(out, "HTTP/1.1 200 ", 13);
	n = raw(ip, fleet.port, "GET /api/v1/status HTTP/1.1\r\n\r\n", 31, out, sizeof(out), 300,
		&eof);
	assert_false(eof);
	assert_memory_equal(out, "HTTP/1.1 200 ", 13);
	/* random bytes: never a crash */
	for (int round = 0; round < 50; round++) {
		char junk[512];
		uint32_t x = 2463534242u + (uint32_t)round;
		for (size_t i = 0; i < sizeof(junk); i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			junk[i] = round % 2 ? (char)x : "GET / HTTP/1.1\r\n: x"[x % 19];
		}
		raw_ex(ip, fleet.port, junk, sizeof(junk), out, sizeof(out), 1000, true, &eof);
		assert_true(eof);
	}
	(void)n;
	assert_true(tl_alive(fleet.pid));
	json_decref(fw("GET", ip, "info", NULL, NULL, NULL, NULL));
	json_decref(m);
	{
		long st;
		json_decref(admin(&fleet, "GET", "/sim/fleet", NULL, &st));
		assert_int_equal(st, 200);
	}
}

/* Identity fields of a run, in address order. */
static json_t *identity(const struct sim *s)
{
	json_t *all = admin(s, "GET", "/sim/miners", NULL, NULL), *out = json_array(), *m;
	static const char *const keys[] = {
		"ip", "mac", "model", "preset", "firmware", "metered", "serial", "hostname",
	};
	size_t i;

	json_array_foreach(all, i, m) {
		json_t *o = json_object();
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			json_object_set(o, keys[k], json_object_get(m, keys[k]));
		json_array_append_new(out, o);
	}
	json_decref(all);
	return out;
}

static char *chains_of_first(const struct sim *s)
{
	json_t *all = admin(s, "GET", "/sim/miners", NULL, NULL), *m = NULL, *v;
	char url[128], *body = NULL, *grades = NULL;
	json_t *chains, *chain, *chip;
	size_t i, k;
	long st;

	json_array_foreach(all, i, v) {
		if (strcmp(jstr(v, "firmware"), "1.2.6") == 0) {
			m = v;
			break;
		}
	}
	if (!m) {
		json_decref(all);
		return NULL;
	}
	snprintf(url, sizeof(url), "http://%s:%d/api/v1/chains", jstr(m, "ip"), s->port);
	if (tl_http("GET", url, NULL, NULL, &body, &st) == 0 && (chains = json_loads(body, 0, NULL))) {
		size_t n = 0;
		grades = calloc(1, 1024);
		json_array_foreach(chains, i, chain)
			json_array_foreach(json_object_get(chain, "chips"), k, chip)
				if (n < 1023)
					grades[n++] = jstr(chip, "grade")[0];
		json_decref(chains);
	}
	free(body);
	json_decref(all);
	return grades;
}

static void test_determinism(void **state)
{
	static const char *const extra[] = { "--firmware-mix", NULL };
	struct sim s1, s2, s3;
	json_t *id1, *id2, *id3;
	char *g1, *g2;

	(void)state;
	assert_int_equal(sim_start(&s1, DET_SUBNET, 30, 5, "11", extra), 0);
	id1 = identity(&s1);
	g1 = chains_of_first(&s1);
	assert_int_equal(WEXITSTATUS(sim_stop(&s1)), 0);
	assert_int_equal(sim_start(&s2, DET_SUBNET, 30, 5, "11", extra), 0);
	id2 = identity(&s2);
	g2 = chains_of_first(&s2);
	assert_int_equal(WEXITSTATUS(sim_stop(&s2)), 0);
	assert_int_equal(sim_start(&s3, DET_SUBNET, 30, 5, "12", extra), 0);
	id3 = identity(&s3);
	assert_int_equal(WEXITSTATUS(sim_stop(&s3)), 0);

	assert_int_equal(json_array_size(id1), 30);
	assert_true(json_equal(id1, id2));
	assert_false(json_equal(id1, id3));
	assert_non_null(g1);
	assert_non_null(g2);
	assert_string_equal(g1, g2);
	json_decref(id1);
	json_decref(id2);
	json_decref(id3);
	free(g1);
	free(g2);
}

static void test_refuses_non_loopback(void **state)
{
	char *dir = tl_tmpdir("minersim-bad"), log[512], *text;
	/* TEST-NET-2, a documentation range: outside loopback, never contacted */
	const char *argv[] = { tl_bin("minersim"), "--subnet", "198.51.100.0/24", "--miners", "2",
			       NULL };
	int status;
	pid_t pid;

	(void)state;
	snprintf(log, sizeof(log), "%s/log", dir);
	pid = tl_spawn(log, (char *const *)argv, NULL);
	status = tl_stop(pid, 0, 5000);   /* signal 0: just wait */
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	text = tl_read_file(log);
	assert_non_null(strstr(text, "127.0.0.0/8"));
	free(text);
	tl_rmrf(dir);
	free(dir);
}

static long rss_kib(pid_t pid)
{
	char path[64], *text, *p;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	text = tl_read_file(path);
	if (text && (p = strstr(text, "VmRSS:")))
		kib = strtol(p + 6, NULL, 10);
	free(text);
	return kib;
}

static void test_scale(void **state)
{
	struct sim big;
	json_t *all, *fl;
	long rss, rss1k;
	long long start1k;
	int answered = 0;

	(void)state;
	/* 1,000 first, for the per-miner cost */
	assert_int_equal(sim_start(&big, BIG_SUBNET, 1000, 0, "5", NULL), 0);
	rss1k = rss_kib(big.pid);
	start1k = big.start_ms;
	assert_int_equal(WEXITSTATUS(sim_stop(&big)), 0);

	assert_int_equal(sim_start(&big, BIG_SUBNET, 10000, 100, "5", NULL), 0);
	rss = rss_kib(big.pid);
	fl = admin(&big, "GET", "/sim/fleet", NULL, NULL);
	assert_int_equal(jint(fl, "miners"), 10000);
	assert_int_equal(jint(fl, "online"), 10000);
	json_decref(fl);
	all = admin(&big, "GET", "/sim/miners", NULL, NULL);
	assert_int_equal(json_array_size(all), 10000);
	for (int i = 0; i < 100; i++) {
		json_t *m = json_array_get(all, (size_t)(i * 9973 % 10000)), *info;
		char url[128];
		long st;

		snprintf(url, sizeof(url), "http://%s:%d/api/v1/info", jstr(m, "ip"), big.port);
		info = tl_http_json("GET", url, NULL, NULL, &st);
		if (st == 200 && strcmp(jstr(json_object_get(json_object_get(info, "system"),
							    "network_status"), "mac"),
					jstr(m, "mac")) == 0)
			answered++;
		json_decref(info);
	}
	json_decref(all);
	printf("figure: minersim 10000 miners start_ms=%lld rss_kib=%ld "
	       "(1000 miners: start_ms=%lld rss_kib=%ld)\n", big.start_ms, rss, start1k, rss1k);
	assert_int_equal(answered, 100);
	assert_int_equal(WEXITSTATUS(sim_stop(&big)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_info),
		cmocka_unit_test(test_model_status_perf),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_token_expiry_and_lockout),
		cmocka_unit_test(test_summary_chains_presets),
		cmocka_unit_test(test_preset_change),
		cmocka_unit_test(test_reboot),
		cmocka_unit_test(test_mining_control),
		cmocka_unit_test(test_preset_apply_modes),
		cmocka_unit_test(test_web_preset),
		cmocka_unit_test(test_switcher),
		cmocka_unit_test(test_fleet_power),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_hw_faults),
		cmocka_unit_test(test_fault_share),
		cmocka_unit_test(test_move_swap),
		cmocka_unit_test(test_http_robustness),
		/* these start runs of their own */
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_refuses_non_loopback),
		cmocka_unit_test(test_scale),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("minersim", tests, setup, teardown);
}
