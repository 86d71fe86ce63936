/* test_fw_contract — the firmware client against bin/minersim.
 *
 * Every call of hive/fw.h runs against a simulated fleet on 127.78.0.0/24,
 * and what the client parsed must EQUAL the simulator's ground truth
 * (/sim/miners): identity, model topology, preset, state, power when the
 * miner meters it, hashrate within the simulator's noise, chain and chip
 * counts, the preset catalogue. Each fault the simulator can inject must
 * come back as the right typed error, and the credential, preset, control
 * and reboot flows must do on the miner what they say.
 *
 * Most requests go out in batches through one asynchronous client, so the
 * whole file also exercises many transfers in flight on one loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "hive/fw.h"
#include "hive/mac.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "../lib/testlib.h"

#define SUBNET     "127.78.0.0/24"
#define NMINERS    24
#define NHOSTS     4
#define KEY        "5eed0000000000000000000000c0ffee"
#define KEY2       "0123456789abcdef0123456789abcdef"
#define TUNE_S     2
#define REBOOT_S   2
#define LOCK_LIMIT 3
#define LOCK_S     2

struct truth {
	char ip[16];
	char mac[18];            /* lower case, as the client gives it */
	char model[16];
	char firmware[16];
	char preset[16];
	char state[24];
	bool metered;
	double power_w;
	double hashrate_ghs;
	double preset_th;
	long long requests;
};

static struct {
	pid_t pid;
	int port, admin;
	char *dir;
	char log[512];
	int n;
	struct truth m[NMINERS];
} sim;

/* ---------------------------------------------------------------- simulator */

static bool sim_ready(void *arg)
{
	char *s = tl_read_file(sim.log);
	bool ok = s && strstr(s, "minersim ready");

	(void)arg;
	free(s);
	return ok;
}

static json_t *admin(const char *method, const char *path, const char *body, long want)
{
	char url[256];
	long status = 0;
	json_t *j;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim.admin, path);
	j = tl_http_json(method, url, NULL, body, &status);
	if (status != want)
		fail_msg("%s %s: status %ld, want %ld", method, path, status, want);
	return j;
}

static void admin_post(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void admin_post(const char *path, const char *fmt, ...)
{
	char body[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	json_decref(admin("POST", path, body, 200));
}

static void truth_from(json_t *o, struct truth *t)
{
	hive_mac_normalise(json_string_value(json_object_get(o, "mac")), t->mac);
	snprintf(t->ip, sizeof(t->ip), "%s", json_string_value(json_object_get(o, "ip")));
	snprintf(t->model, sizeof(t->model), "%s", json_string_value(json_object_get(o, "model")));
	snprintf(t->firmware, sizeof(t->firmware), "%s",
		 json_string_value(json_object_get(o, "firmware")));
	snprintf(t->preset, sizeof(t->preset), "%s", json_string_value(json_object_get(o, "preset")));
	snprintf(t->state, sizeof(t->state), "%s", json_string_value(json_object_get(o, "state")));
	t->metered = json_is_true(json_object_get(o, "metered"));
	t->power_w = json_number_value(json_object_get(o, "power_w"));
	t->hashrate_ghs = json_number_value(json_object_get(o, "hashrate_ghs"));
	t->preset_th = json_number_value(json_object_get(o, "preset_th"));
	t->requests = json_integer_value(json_object_get(o, "requests"));
}

/* Ground truth of one miner now. */
static void truth_of(const char *mac, struct truth *t)
{
	char path[128];
	json_t *o;

	snprintf(path, sizeof(path), "/sim/miners/%s", mac);
	o = admin("GET", path, NULL, 200);
	truth_from(o, t);
	json_decref(o);
}

static json_t *truth_json(const char *mac)
{
	char path[128];

	snprintf(path, sizeof(path), "/sim/miners/%s", mac);
	return admin("GET", path, NULL, 200);
}

static void refresh_truth(void)
{
	json_t *a = admin("GET", "/sim/miners", NULL, 200);

	assert_int_equal(json_array_size(a), NMINERS);
	sim.n = (int)json_array_size(a);
	for (int i = 0; i < sim.n; i++)
		truth_from(json_array_get(a, (size_t)i), &sim.m[i]);
	json_decref(a);
}

/* ---------------------------------------------------------------- batches */

struct job {
	struct hive_fw_req req;
	struct hive_fw_result *res;
	bool done;
	int seq;                 /* completion order */
	int in_flight_seen;      /* the client's in-flight count at completion */
};

static struct hive_fw_client *cur_client;
static int done_count;

static void job_cb(const struct hive_fw_result *res, void *arg)
{
	struct job *j = arg;
	struct hive_fw_stats st;

	if (j->done)
		fail_msg("callback ran twice");
	memcpy(j->res, res, sizeof(*res));
	j->done = true;
	j->seq = done_count++;
	hive_fw_client_stats(cur_client, &st);
	j->in_flight_seen = st.in_flight;
}

static void job_init(struct job *j, enum hive_fw_call call, const char *ip)
{
	memset(j, 0, sizeof(*j));
	j->req.ip = ip;
	j->req.port = sim.port;
	j->req.call = call;
	j->req.api_key = KEY;
	if (!(j->res = calloc(1, sizeof(*j->res))))
		fail_msg("out of memory");
}

static void jobs_free(struct job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(jobs[i].res);
}

/* Runs every job on one client; returns its stats. */
static void run_jobs(struct job *jobs, size_t n, const struct hive_fw_opts *opts,
		     struct hive_fw_stats *st)
{
	struct hive_loop *loop = hive_loop_new();
	struct hive_fw_client *c;
	long long deadline = hive_mono_ms() + 30000;
	size_t left;

	assert_non_null(loop);
	c = hive_fw_client_new(loop, opts);
	assert_non_null(c);
	cur_client = c;
	done_count = 0;
	for (size_t i = 0; i < n; i++) {
		jobs[i].req.cb = job_cb;
		jobs[i].req.cb_arg = &jobs[i];
		jobs[i].done = false;
		if (hive_fw_request(c, &jobs[i].req) != 0)
			fail_msg("job %zu: hive_fw_request failed", i);
	}
	do {
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += !jobs[i].done;
		if (left == 0)
			break;
		hive_loop_run_once(loop, 200);
	} while (hive_mono_ms() < deadline);
	if (left)
		fail_msg("%zu of %zu requests never completed", left, n);
	assert_int_equal(hive_fw_client_pending(c), 0);
	if (st)
		hive_fw_client_stats(c, st);
	hive_fw_client_free(c);
	cur_client = NULL;
	hive_loop_free(loop);
}

/* One blocking call into a heap result. */
static struct hive_fw_result *call1(enum hive_fw_call call, const char *ip, const char *key,
				    const char *token, const char *arg)
{
	struct hive_fw_req r = { .ip = ip, .port = sim.port, .call = call, .api_key = key,
				 .token = token, .arg = arg };
	struct hive_fw_opts o = { .timeout_ms = 3000 };
	struct hive_fw_result *res = calloc(1, sizeof(*res));

	assert_non_null(res);
	hive_fw_call_sync(&o, &r, res);
	return res;
}

static void expect_ok(const struct hive_fw_result *r, const char *what)
{
	if (r->err.kind != HIVE_FW_OK)
		fail_msg("%s: %s (%s, http %d)", what, r->err.msg, hive_fw_err_name(r->err.kind),
			 r->http_status);
}

static void expect_err(const struct hive_fw_result *r, enum hive_fw_err_kind kind, int http,
		       const char *what)
{
	if (r->err.kind != kind || (http >= 0 && r->err.http_status != http))
		fail_msg("%s: got %s http %d \"%s\", want %s http %d", what,
			 hive_fw_err_name(r->err.kind), r->err.http_status, r->err.msg,
			 hive_fw_err_name(kind), http);
}

static bool near(double got, double want, double rel)
{
	return fabs(got - want) <= fabs(want) * rel + 1e-9;
}

/* ---------------------------------------------------------------- setup */

static int group_setup(void **state)
{
	char port[16], adminaddr[32], seed[] = "11";
	struct job jobs[NMINERS];
	char tokens[NMINERS][256];

	(void)state;
	sim.port = tl_free_port();
	sim.admin = tl_free_port();
	if (sim.port < 0 || sim.admin < 0 || sim.port == sim.admin)
		return -1;
	sim.dir = tl_tmpdir("fwcontract");
	snprintf(sim.log, sizeof(sim.log), "%s/minersim.log", sim.dir);
	snprintf(port, sizeof(port), "%d", sim.port);
	snprintf(adminaddr, sizeof(adminaddr), "127.0.0.1:%d", sim.admin);
	{
		char nm[8], nh[8], tune[8], reboot[8], limit[8], lock[8];
		char *argv[40];
		int a = 0;

		snprintf(nm, sizeof(nm), "%d", NMINERS);
		snprintf(nh, sizeof(nh), "%d", NHOSTS);
		snprintf(tune, sizeof(tune), "%d", TUNE_S);
		snprintf(reboot, sizeof(reboot), "%d", REBOOT_S);
		snprintf(limit, sizeof(limit), "%d", LOCK_LIMIT);
		snprintf(lock, sizeof(lock), "%d", LOCK_S);
		argv[a++] = (char *)tl_bin("minersim");
		argv[a++] = "--subnet";
		argv[a++] = SUBNET;
		argv[a++] = "--miners";
		argv[a++] = nm;
		argv[a++] = "--non-miners";
		argv[a++] = nh;
		argv[a++] = "--port";
		argv[a++] = port;
		argv[a++] = "--admin";
		argv[a++] = adminaddr;
		argv[a++] = "--seed";
		argv[a++] = seed;
		argv[a++] = "--tune-seconds";
		argv[a++] = tune;
		argv[a++] = "--reboot-seconds";
		argv[a++] = reboot;
		argv[a++] = "--init-seconds";
		argv[a++] = "1";
		argv[a++] = "--token-ttl";
		argv[a++] = "60";
		argv[a++] = "--unlock-limit";
		argv[a++] = limit;
		argv[a++] = "--lockout-seconds";
		argv[a++] = lock;
		argv[a++] = "--firmware-mix=0.35";
		argv[a++] = "--unmetered";
		argv[a++] = "0.3";
		argv[a] = NULL;
		sim.pid = tl_spawn(sim.log, argv, NULL);
	}
	if (sim.pid < 0 || tl_wait_until(10000, sim_ready, NULL) < 0) {
		fprintf(stderr, "minersim did not start; log %s\n", sim.log);
		return -1;
	}
	refresh_truth();

	/* provision our key everywhere: unlock with the default password, then
	 * create the key with the token (the flow discoverd uses) */
	for (int i = 0; i < sim.n; i++) {
		job_init(&jobs[i], HIVE_FW_UNLOCK, sim.m[i].ip);
		jobs[i].req.api_key = NULL;
		jobs[i].req.arg = "admin";
	}
	run_jobs(jobs, (size_t)sim.n, NULL, NULL);
	for (int i = 0; i < sim.n; i++) {
		if (jobs[i].res->err.kind != HIVE_FW_OK) {
			fprintf(stderr, "unlock %s: %s\n", sim.m[i].ip, jobs[i].res->err.msg);
			return -1;
		}
		snprintf(tokens[i], sizeof(tokens[i]), "%s", jobs[i].res->unlock.token);
	}
	jobs_free(jobs, (size_t)sim.n);
	for (int i = 0; i < sim.n; i++) {
		job_init(&jobs[i], HIVE_FW_APIKEY_CREATE, sim.m[i].ip);
		jobs[i].req.api_key = NULL;
		jobs[i].req.token = tokens[i];
		jobs[i].req.arg = KEY;
	}
	run_jobs(jobs, (size_t)sim.n, NULL, NULL);
	for (int i = 0; i < sim.n; i++)
		if (jobs[i].res->err.kind != HIVE_FW_OK) {
			fprintf(stderr, "apikey create %s: %s\n", sim.m[i].ip, jobs[i].res->err.msg);
			return -1;
		}
	jobs_free(jobs, (size_t)sim.n);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (sim.pid > 0)
		tl_stop(sim.pid, SIGTERM, 3000);
	if (sim.dir) {
		tl_rmrf(sim.dir);
		free(sim.dir);
	}
	return 0;
}

/* ---------------------------------------------------------------- identity */

static void test_provisioned(void **state)
{
	(void)state;
	for (int i = 0; i < sim.n; i++) {
		json_t *t = truth_json(sim.m[i].mac);
		json_t *descs = json_object_get(t, "api_key_descriptions");

		assert_int_equal(json_integer_value(json_object_get(t, "api_keys")), 1);
		assert_string_equal(json_string_value(json_array_get(descs, 0)), "PowerHive");
		assert_int_equal(json_integer_value(json_object_get(t, "unlock_failures")), 0);
		json_decref(t);
	}
}

static void test_identity(void **state)
{
	struct job jobs[NMINERS * 3];
	size_t n = 0;
	int models[2] = { 0, 0 };

	(void)state;
	refresh_truth();
	for (int i = 0; i < sim.n; i++) {
		job_init(&jobs[n++], HIVE_FW_INFO, sim.m[i].ip);
		job_init(&jobs[n++], HIVE_FW_MODEL, sim.m[i].ip);
		job_init(&jobs[n++], HIVE_FW_STATUS, sim.m[i].ip);
	}
	run_jobs(jobs, n, NULL, NULL);
	for (int i = 0; i < sim.n; i++) {
		const struct truth *t = &sim.m[i];
		const struct hive_fw_result *info = jobs[i * 3].res, *model = jobs[i * 3 + 1].res;
		const struct hive_fw_result *status = jobs[i * 3 + 2].res;
		int chips, empty = 0, rows, cols;
		bool seen[256] = { false };

		expect_ok(info, "info");
		expect_ok(model, "model");
		expect_ok(status, "status");
		assert_string_equal(info->info.mac, t->mac);
		assert_string_equal(info->info.ip, t->ip);
		assert_string_equal(info->ip, t->ip);
		assert_string_equal(info->info.model, t->model);
		assert_string_equal(info->info.fw_name, "Vnish");
		assert_string_equal(info->info.fw_version, t->firmware);
		assert_string_equal(model->model.model, t->model);
		assert_int_equal(model->model.num_chains, 3);
		if (strcmp(t->model, "s19") == 0) {
			assert_string_equal(info->info.miner, "Antminer S19");
			assert_string_equal(model->model.full_name, "Antminer S19");
			chips = 76, rows = 4, cols = 20;
			models[0]++;
		} else {
			assert_string_equal(t->model, "s19jpro");
			assert_string_equal(model->model.full_name, "Antminer S19j Pro");
			chips = 126, rows = 6, cols = 21;
			models[1]++;
		}
		assert_int_equal(model->model.chips_per_chain, chips);
		assert_int_equal(model->model.topo_rows, rows);
		assert_int_equal(model->model.topo_cols, cols);
		/* every chip id 1..chips once, the other slots empty */
		for (int k = 0; k < rows * cols; k++) {
			int id = model->model.topo_chips[k];

			if (id == -1) {
				empty++;
				continue;
			}
			assert_in_range(id, 1, chips);
			assert_false(seen[id]);
			seen[id] = true;
		}
		assert_int_equal(empty, rows * cols - chips);
		assert_true(model->model.overclock.max_freq > model->model.overclock.min_freq);
		assert_string_equal(status->status.miner_state, t->state);
	}
	assert_true(models[0] > 0 && models[1] > 0);
	jobs_free(jobs, n);
}

/* ---------------------------------------------------------------- telemetry */

/* Watts of the S19 ladder and the S19j Pro ladder, from the firmware
 * reference (vnish-api.md), with the S19's TH. */
static const int s19_w[] = { 1100, 1300, 1500, 1700, 1900, 2100, 2350, 2620, 2950, 3200,
			     3350, 3750, 4000, 4260, 4690 };
static const int s19_th[] = { 53, 58, 63, 68, 73, 78, 85, 91, 99, 102, 105, 110, 115, 120, 124 };
static const int jpro_w[] = { 1740, 1800, 1850, 2000, 2150, 2300, 2500, 2700, 2970, 3080, 3320,
			      3580, 3670, 3850, 4110, 4620, 4880, 5040, 5240, 5400, 5760, 6084,
			      6444 };

static void check_catalogue(const struct truth *t, const struct hive_fw_presets *ps)
{
	bool s19 = strcmp(t->model, "s19") == 0;
	const int *w = s19 ? s19_w : jpro_w;
	int nw = s19 ? 15 : 23;
	bool sorted = true, found_current = false;

	assert_int_equal(ps->n, nw + 1);
	assert_string_equal(ps->p[0].name, "disabled");
	assert_int_equal(ps->p[0].watts, -1);
	assert_true(ps->p[0].th < 0);
	for (int k = 0; k < nw; k++) {
		int hit = -1;

		for (int i = 1; i < ps->n; i++)
			if (ps->p[i].watts == w[k])
				hit = i;
		if (hit < 0)
			fail_msg("%s: preset of %d W missing from the catalogue", t->model, w[k]);
		assert_int_equal(atoi(ps->p[hit].name), w[k]);
		if (s19)
			assert_true(ps->p[hit].th == s19_th[k]);
		else
			assert_true(ps->p[hit].th > 0);
	}
	for (int i = 1; i < ps->n; i++) {
		if (i > 1 && ps->p[i].watts < ps->p[i - 1].watts)
			sorted = false;
		/* more power never buys less hashrate */
		for (int k = 1; k < ps->n; k++)
			if (ps->p[k].watts > ps->p[i].watts)
				assert_true(ps->p[k].th >= ps->p[i].th);
		if (strcmp(ps->p[i].name, t->preset) == 0) {
			found_current = true;
			assert_true(ps->p[i].th == t->preset_th);
		}
	}
	/* the simulator lists the S19j Pro out of order, as some firmware does */
	assert_int_equal(sorted, s19);
	assert_true(found_current || strcmp(t->preset, "disabled") == 0);
}

static void test_telemetry(void **state)
{
	struct job jobs[NMINERS * 4];
	size_t n = 0;
	int boards = 0, metered = 0;

	(void)state;
	refresh_truth();
	for (int i = 0; i < sim.n; i++) {
		job_init(&jobs[n++], HIVE_FW_SUMMARY, sim.m[i].ip);
		job_init(&jobs[n++], HIVE_FW_PERF_SUMMARY, sim.m[i].ip);
		job_init(&jobs[n++], HIVE_FW_CHAINS, sim.m[i].ip);
		job_init(&jobs[n++], HIVE_FW_PRESETS, sim.m[i].ip);
	}
	run_jobs(jobs, n, NULL, NULL);
	for (int i = 0; i < sim.n; i++) {
		const struct truth *t = &sim.m[i];
		const struct hive_fw_summary *s = &jobs[i * 4].res->summary;
		const struct hive_fw_perf *p = &jobs[i * 4 + 1].res->perf;
		const struct hive_fw_result *ch = jobs[i * 4 + 2].res;
		int chips = strcmp(t->model, "s19") == 0 ? 76 : 126;
		bool v13 = strncmp(t->firmware, "1.3", 3) == 0;
		double sum = 0;

		expect_ok(jobs[i * 4].res, "summary");
		expect_ok(jobs[i * 4 + 1].res, "perf-summary");
		expect_ok(ch, "chains");
		expect_ok(jobs[i * 4 + 3].res, "presets");

		assert_string_equal(s->state, t->state);
		assert_string_equal(t->state, "mining");
		/* noise: 1 % on power, 2 % on hashrate, drawn per second */
		if (t->metered) {
			metered++;
			if (!near(s->power_consumption, t->power_w, 0.025))
				fail_msg("%s: power %d W, truth %.0f W", t->mac, s->power_consumption,
					 t->power_w);
		} else {
			assert_int_equal(s->power_consumption, 0);
		}
		if (!near(s->hr_realtime, t->hashrate_ghs, 0.05))
			fail_msg("%s: hashrate %.1f GH/s, truth %.1f", t->mac, s->hr_realtime,
				 t->hashrate_ghs);
		assert_true(near(s->hr_nominal, t->preset_th * 1000.0, 0.001));
		assert_int_equal(s->nchains, 3);
		for (int c = 0; c < 3; c++) {
			assert_int_equal(s->chains[c].id, c + 1);
			assert_int_equal(s->chains[c].red + s->chains[c].orange + s->chains[c].grey, chips);
			assert_string_equal(s->chains[c].state, "mining");
			sum += s->chains[c].hashrate_rt;
		}
		assert_true(near(sum, s->hr_realtime, 0.03));
		assert_int_equal(s->nfans, 4);
		assert_int_equal(s->pools.total, 2);
		assert_true(s->pools.url[0] != '\0');
		assert_true(s->chip_temp_max >= s->chip_temp_min);

		/* preset */
		if (strcmp(t->preset, "disabled") == 0 && v13) {
			assert_false(p->has_preset);
		} else {
			assert_true(p->has_preset);
			assert_string_equal(p->preset, t->preset);
			if (strcmp(t->preset, "disabled") != 0)
				assert_true(p->preset_th == t->preset_th);
		}
		assert_true(p->has_switcher);
		assert_false(p->switcher_enabled);

		/* chips, from /chains or, on 1.3.x, /boards after the 404 */
		assert_int_equal(ch->used_boards, v13);
		assert_int_equal(ch->chains.boards, v13);
		boards += v13;
		assert_int_equal(ch->chains.nchains, 3);
		for (int c = 0; c < 3; c++) {
			const struct hive_fw_chain *cc = &ch->chains.chains[c];
			int grades[3] = { 0, 0, 0 };

			assert_int_equal(cc->id, c + 1);
			assert_int_equal(cc->nchips, chips);
			for (int k = 0; k < cc->nchips; k++) {
				assert_int_equal(cc->chips[k].id, k + 1);
				assert_true(cc->chips[k].hr > 0);
				assert_true(cc->chips[k].temp > 20 && cc->chips[k].temp < 120);
				grades[cc->chips[k].grade == 'r' ? 0 : cc->chips[k].grade == 'o' ? 1 : 2]++;
			}
			/* per-chip grades agree with the summary's counts */
			assert_int_equal(grades[0], s->chains[c].red);
			assert_int_equal(grades[1], s->chains[c].orange);
			assert_int_equal(grades[2], s->chains[c].grey);
		}
		check_catalogue(t, &jobs[i * 4 + 3].res->presets);
	}
	assert_true(boards > 0 && boards < sim.n);
	assert_true(metered > 0 && metered < sim.n);
	jobs_free(jobs, n);

	/* asking /boards directly on a 1.3.x miner, /chains directly on 1.2.x */
	for (int i = 0; i < sim.n; i++) {
		bool v13 = strncmp(sim.m[i].firmware, "1.3", 3) == 0;
		struct job j;

		job_init(&j, HIVE_FW_CHAINS, sim.m[i].ip);
		j.req.flags = v13 ? HIVE_FW_F_BOARDS : 0;
		run_jobs(&j, 1, NULL, NULL);
		expect_ok(j.res, "chains direct");
		assert_int_equal(j.res->used_boards, v13);
		jobs_free(&j, 1);
		/* and /boards on 1.2.x is a 404, reported as such */
		if (!v13) {
			job_init(&j, HIVE_FW_BOARDS, sim.m[i].ip);
			run_jobs(&j, 1, NULL, NULL);
			expect_err(j.res, HIVE_FW_ERR_NOT_FOUND, 404, "boards on 1.2.x");
			assert_string_equal(j.res->err.endpoint, "boards");
			jobs_free(&j, 1);
		}
	}
}

/* ---------------------------------------------------------------- faults */

static const char *const fault_kinds[] = {
	"none", "offline", "slow", "reset", "http500", "invalid_json", "truncated",
	"missing_fields", "null_fields", "strings", "oversized",
};
#define NFAULTS (sizeof(fault_kinds) / sizeof(fault_kinds[0]))

static const enum hive_fw_call fault_calls[] = {
	HIVE_FW_INFO, HIVE_FW_MODEL, HIVE_FW_STATUS, HIVE_FW_SUMMARY, HIVE_FW_PERF_SUMMARY,
	HIVE_FW_CHAINS, HIVE_FW_PRESETS,
};
#define NFCALLS (sizeof(fault_calls) / sizeof(fault_calls[0]))

/* What each fault must turn into. `strings` only hurts endpoints whose
 * needed fields are numbers: /info and the preset catalogue carry none. */
static bool fault_ok(const char *kind, enum hive_fw_call call, const struct hive_fw_result *r)
{
	enum hive_fw_err_kind k = r->err.kind;

	if (strcmp(kind, "none") == 0)
		return k == HIVE_FW_OK;
	if (strcmp(kind, "offline") == 0)
		return k == HIVE_FW_ERR_REFUSED;
	if (strcmp(kind, "slow") == 0)
		return k == HIVE_FW_ERR_TIMEOUT;
	if (strcmp(kind, "reset") == 0)
		return k == HIVE_FW_ERR_RESET;
	if (strcmp(kind, "http500") == 0)
		return k == HIVE_FW_ERR_HTTP && r->err.http_status == 500 && r->http_status == 500;
	if (strcmp(kind, "invalid_json") == 0)
		return k == HIVE_FW_ERR_BAD_JSON;
	if (strcmp(kind, "truncated") == 0)
		return k == HIVE_FW_ERR_BAD_JSON || k == HIVE_FW_ERR_RESET;
	if (strcmp(kind, "missing_fields") == 0 || strcmp(kind, "null_fields") == 0)
		return k == HIVE_FW_ERR_MISSING_FIELD;
	if (strcmp(kind, "strings") == 0)
		return call == HIVE_FW_INFO || call == HIVE_FW_PRESETS ? k == HIVE_FW_OK :
		       k == HIVE_FW_ERR_BAD_FIELD;
	if (strcmp(kind, "oversized") == 0)
		return k == HIVE_FW_ERR_TOO_LARGE;
	return false;
}

static void test_faults(void **state)
{
	struct job jobs[NFAULTS * NFCALLS];
	struct hive_fw_opts o = { .timeout_ms = 1500, .max_body = 1024 * 1024 };
	struct hive_fw_stats st;
	size_t n = 0;
	long long t0;

	(void)state;
	assert_true(sim.n >= (int)NFAULTS);
	for (size_t f = 0; f < NFAULTS; f++)
		admin_post("/sim/fault", "{\"target\":\"%s\",\"kind\":\"%s\",\"seconds\":6}",
			   sim.m[f].mac, fault_kinds[f]);
	for (size_t f = 0; f < NFAULTS; f++)
		for (size_t c = 0; c < NFCALLS; c++)
			job_init(&jobs[n++], fault_calls[c], sim.m[f].ip);
	t0 = hive_mono_ms();
	run_jobs(jobs, n, &o, &st);
	/* the slow ones ran into the timeout together, not one after another
	 * (that would take 7 x 1.5 s) */
	assert_true(hive_mono_ms() - t0 < 5000);
	for (size_t f = 0; f < NFAULTS; f++)
		for (size_t c = 0; c < NFCALLS; c++) {
			const struct hive_fw_result *r = jobs[f * NFCALLS + c].res;

			if (!fault_ok(fault_kinds[f], fault_calls[c], r))
				fail_msg("fault %s on %s: got %s (http %d) \"%s\"", fault_kinds[f],
					 hive_fw_call_name(fault_calls[c]), hive_fw_err_name(r->err.kind),
					 r->http_status, r->err.msg);
			/* every error names its endpoint */
			if (r->err.kind != HIVE_FW_OK)
				assert_true(strncmp(r->err.msg, r->err.endpoint,
						    strlen(r->err.endpoint)) == 0);
		}
	assert_int_equal(st.completed, n);
	assert_int_equal(st.by_kind[HIVE_FW_ERR_TIMEOUT], NFCALLS);
	assert_int_equal(st.by_kind[HIVE_FW_ERR_REFUSED], NFCALLS);
	assert_int_equal(st.by_kind[HIVE_FW_ERR_TOO_LARGE], NFCALLS);
	jobs_free(jobs, n);

	/* a fault on one endpoint leaves the others alone */
	admin_post("/sim/fault", "{\"target\":\"%s\",\"kind\":\"http500\",\"endpoints\":[\"summary\"]}",
		   sim.m[0].mac);
	job_init(&jobs[0], HIVE_FW_SUMMARY, sim.m[0].ip);
	job_init(&jobs[1], HIVE_FW_STATUS, sim.m[0].ip);
	run_jobs(jobs, 2, NULL, NULL);
	expect_err(jobs[0].res, HIVE_FW_ERR_HTTP, 500, "summary with http500 on summary");
	assert_string_equal(jobs[0].res->err.msg, "summary: HTTP 500: Internal server error");
	expect_ok(jobs[1].res, "status with http500 on summary");
	jobs_free(jobs, 2);

	/* a cap below the real /chains size is too_large, a body just under it is fine */
	{
		struct hive_fw_opts small = { .max_body = 8192 };

		job_init(&jobs[0], HIVE_FW_CHAINS, sim.m[1].ip);
		job_init(&jobs[1], HIVE_FW_STATUS, sim.m[1].ip);
		admin_post("/sim/reset", "{}");
		run_jobs(jobs, 2, &small, NULL);
		expect_err(jobs[0].res, HIVE_FW_ERR_TOO_LARGE, -1, "chains over an 8 KB cap");
		expect_ok(jobs[1].res, "status under an 8 KB cap");
		jobs_free(jobs, 2);
	}

	/* after the reset every faulted miner answers again */
	admin_post("/sim/reset", "{}");
	n = 0;
	for (size_t f = 0; f < NFAULTS; f++)
		job_init(&jobs[n++], HIVE_FW_SUMMARY, sim.m[f].ip);
	run_jobs(jobs, n, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		expect_ok(jobs[i].res, "summary after /sim/reset");
	jobs_free(jobs, n);
}

/* Faults must not outlive their test, even a failed one. */
static int faults_teardown(void **state)
{
	(void)state;
	json_decref(admin("POST", "/sim/reset", "{}", 200));
	return 0;
}

/* ---------------------------------------------------------------- queueing, keep-alive */

static void test_queue_and_reuse(void **state)
{
	enum { N = 60 };
	struct job *jobs = calloc(N, sizeof(*jobs));
	struct hive_fw_opts o = { .max_in_flight = 1 };
	struct hive_fw_stats st;
	struct truth before, after;
	const struct truth *t = &sim.m[11];

	(void)state;
	assert_non_null(jobs);
	truth_of(t->mac, &before);
	/* one slot: the queue is FIFO, so completions follow submissions */
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], i % 2 ? HIVE_FW_STATUS : HIVE_FW_PERF_SUMMARY, t->ip);
	run_jobs(jobs, N, &o, &st);
	for (int i = 0; i < N; i++) {
		expect_ok(jobs[i].res, "queued");
		assert_int_equal(jobs[i].seq, i);
		assert_int_equal(jobs[i].in_flight_seen, 0);
	}
	assert_int_equal(st.started, N);
	assert_int_equal(st.completed, N);
	assert_int_equal(st.failed, 0);
	/* keep-alive: one connection carried them all */
	assert_in_range(st.connects, 1, 2);
	truth_of(t->mac, &after);
	assert_int_equal(after.requests - before.requests, N); /* no hidden retries */
	jobs_free(jobs, N);

	/* without keep-alive each request opens its own */
	o.no_keepalive = true;
	for (int i = 0; i < 20; i++)
		job_init(&jobs[i], HIVE_FW_STATUS, t->ip);
	run_jobs(jobs, 20, &o, &st);
	assert_int_equal(st.connects, 20);
	jobs_free(jobs, 20);

	/* a cap of 4 over many miners: never more than 4 at once */
	o = (struct hive_fw_opts){ .max_in_flight = 4 };
	for (int i = 0; i < N; i++)
		job_init(&jobs[i], HIVE_FW_SUMMARY, sim.m[i % sim.n].ip);
	run_jobs(jobs, N, &o, &st);
	for (int i = 0; i < N; i++) {
		expect_ok(jobs[i].res, "capped");
		assert_in_range(jobs[i].in_flight_seen, 0, 3);
	}
	assert_int_equal(st.completed, N);
	jobs_free(jobs, N);
	free(jobs);
}

/* ---------------------------------------------------------------- credentials */

static void test_credentials(void **state)
{
	const struct truth *t = &sim.m[sim.n - 1];
	struct hive_fw_result *r;
	char token[256], path[128];
	json_t *tj;

	(void)state;
	r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "wrong");
	expect_err(r, HIVE_FW_ERR_AUTH, 403, "unlock with a wrong password");
	free(r);
	r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "admin");
	expect_ok(r, "unlock");
	snprintf(token, sizeof(token), "%s", r->unlock.token);
	free(r);

	/* the key list, with the bearer token only */
	r = call1(HIVE_FW_APIKEYS, t->ip, NULL, token, NULL);
	expect_ok(r, "apikeys");
	assert_int_equal(r->apikeys.n, 1);
	assert_string_equal(r->apikeys.k[0].key, KEY);
	assert_string_equal(r->apikeys.k[0].description, "PowerHive");
	free(r);
	r = call1(HIVE_FW_APIKEYS, t->ip, NULL, NULL, NULL);
	expect_err(r, HIVE_FW_ERR_AUTH, 401, "apikeys without credentials");
	free(r);
	/* the token works where a key does */
	r = call1(HIVE_FW_SUMMARY, t->ip, NULL, token, NULL);
	expect_ok(r, "summary with a bearer token");
	free(r);

	/* a second key: created, listed, used, deleted, refused */
	r = call1(HIVE_FW_APIKEY_CREATE, t->ip, NULL, token, KEY2);
	expect_ok(r, "apikey create");
	free(r);
	r = call1(HIVE_FW_APIKEY_CREATE, t->ip, NULL, token, "NOT-A-KEY");
	expect_err(r, HIVE_FW_ERR_HTTP, 422, "apikey create, wrong format");
	assert_string_equal(r->err.msg, "apikeys: HTTP 422: Wrong apikey format");
	free(r);
	tj = truth_json(t->mac);
	assert_int_equal(json_integer_value(json_object_get(tj, "api_keys")), 2);
	json_decref(tj);
	r = call1(HIVE_FW_APIKEYS, t->ip, KEY, NULL, NULL);
	expect_ok(r, "apikeys with a key");
	assert_int_equal(r->apikeys.n, 2);
	free(r);
	r = call1(HIVE_FW_SUMMARY, t->ip, KEY2, NULL, NULL);
	expect_ok(r, "summary with the second key");
	free(r);
	r = call1(HIVE_FW_APIKEY_DELETE, t->ip, KEY, NULL, KEY2);
	expect_ok(r, "apikey delete");
	free(r);
	r = call1(HIVE_FW_SUMMARY, t->ip, KEY2, NULL, NULL);
	expect_err(r, HIVE_FW_ERR_AUTH, 401, "summary with a deleted key");
	free(r);

	/* a person deletes every key on the miner: 401 until provisioned again */
	snprintf(path, sizeof(path), "/sim/miners/%s/apikeys/delete", t->mac);
	admin_post(path, "{}");
	r = call1(HIVE_FW_SUMMARY, t->ip, KEY, NULL, NULL);
	expect_err(r, HIVE_FW_ERR_AUTH, 401, "summary after the keys were deleted");
	assert_string_equal(r->err.msg, "summary: HTTP 401: Unauthorized");
	free(r);
	r = call1(HIVE_FW_PRESETS, t->ip, KEY, NULL, NULL);
	expect_err(r, HIVE_FW_ERR_AUTH, 401, "presets after the keys were deleted");
	free(r);

	/* a person changes the password: the old one is refused */
	snprintf(path, sizeof(path), "/sim/miners/%s/password", t->mac);
	admin_post(path, "{\"password\":\"n3w-pass\"}");
	r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "admin");
	expect_err(r, HIVE_FW_ERR_AUTH, 403, "unlock with the old password");
	free(r);
	r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "n3w-pass");
	expect_ok(r, "unlock with the new password");
	snprintf(token, sizeof(token), "%s", r->unlock.token);
	free(r);
	r = call1(HIVE_FW_APIKEY_CREATE, t->ip, NULL, token, KEY);
	expect_ok(r, "re-provision");
	free(r);
	r = call1(HIVE_FW_SUMMARY, t->ip, KEY, NULL, NULL);
	expect_ok(r, "summary after re-provisioning");
	free(r);
}

static void test_lockout(void **state)
{
	const struct truth *t = &sim.m[sim.n - 2];
	struct hive_fw_result *r;
	json_t *tj;

	(void)state;
	for (int i = 0; i < LOCK_LIMIT; i++) {
		r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "guess");
		expect_err(r, HIVE_FW_ERR_AUTH, 403, "wrong password");
		free(r);
	}
	/* locked: even the right password gets 429 */
	r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "admin");
	expect_err(r, HIVE_FW_ERR_LOCKED, 429, "unlock while locked out");
	assert_string_equal(hive_fw_err_name(r->err.kind), "locked");
	free(r);
	tj = truth_json(t->mac);
	assert_int_equal(json_integer_value(json_object_get(tj, "unlock_failures")), LOCK_LIMIT);
	/* one for provisioning in setup, the guesses, the refused one */
	assert_int_equal(json_integer_value(json_object_get(tj, "unlock_attempts")), LOCK_LIMIT + 2);
	json_decref(tj);
	/* the lockout ends */
	usleep((LOCK_S * 1000 + 200) * 1000);
	r = call1(HIVE_FW_UNLOCK, t->ip, NULL, NULL, "admin");
	expect_ok(r, "unlock after the lockout");
	free(r);
}

/* ---------------------------------------------------------------- control */

/* Is the miner in one of the states of `want` ("a|b|c")? */
static bool state_is(const char *ip, const char *want)
{
	struct hive_fw_result *r = call1(HIVE_FW_STATUS, ip, NULL, NULL, NULL);
	bool ok = false;

	if (r->err.kind == HIVE_FW_OK) {
		size_t n = strlen(r->status.miner_state);

		for (const char *p = want; *p; p += strcspn(p, "|"), p += *p == '|')
			if (strncmp(p, r->status.miner_state, n) == 0 && (p[n] == '|' || !p[n]))
				ok = true;
	}
	free(r);
	return ok;
}

struct wait_state {
	const char *ip, *state;
};

static bool wait_state_pred(void *arg)
{
	struct wait_state *w = arg;

	return state_is(w->ip, w->state);
}

static void wait_state(const char *ip, const char *state, int ms)
{
	struct wait_state w = { ip, state };

	if (tl_wait_until(ms, wait_state_pred, &w) < 0)
		fail_msg("%s never reached state %s", ip, state);
}

static void test_set_preset(void **state)
{
	const struct truth *t = &sim.m[sim.n - 3];
	struct hive_fw_result *r, *cat;
	struct truth now;
	char target[HIVE_FW_NAME_LEN] = "";
	double target_th = -1;

	(void)state;
	cat = call1(HIVE_FW_PRESETS, t->ip, KEY, NULL, NULL);
	expect_ok(cat, "presets");
	/* the lowest-power preset that is not the current one */
	for (int i = 1, best = 1 << 30; i < cat->presets.n; i++)
		if (cat->presets.p[i].watts < best && strcmp(cat->presets.p[i].name, t->preset) != 0) {
			best = cat->presets.p[i].watts;
			snprintf(target, sizeof(target), "%s", cat->presets.p[i].name);
			target_th = cat->presets.p[i].th;
		}
	assert_true(target[0] && target_th > 0);
	free(cat);

	r = call1(HIVE_FW_SET_PRESET, t->ip, KEY, NULL, target);
	expect_ok(r, "set preset");
	assert_true(r->settings.restart_required);
	assert_false(r->settings.reboot_required);
	free(r);
	truth_of(t->mac, &now);
	assert_string_equal(now.preset, target);
	/* read back: the preset runs, untuned until its auto-tune is done */
	r = call1(HIVE_FW_PERF_SUMMARY, t->ip, KEY, NULL, NULL);
	expect_ok(r, "perf-summary after set");
	assert_true(r->perf.has_preset);
	assert_string_equal(r->perf.preset, target);
	assert_true(r->perf.preset_th == target_th);
	assert_false(r->perf.preset_tuned);
	free(r);
	/* auto-tuning for TUNE_S, mining after (a loaded machine may be late) */
	assert_true(state_is(t->ip, "auto-tuning|mining"));
	r = call1(HIVE_FW_MINING_RESTART, t->ip, KEY, NULL, NULL);
	expect_ok(r, "restart");
	free(r);
	assert_true(state_is(t->ip, "restarting|auto-tuning|mining"));
	wait_state(t->ip, "mining", (TUNE_S + 3) * 1000);
	r = call1(HIVE_FW_PERF_SUMMARY, t->ip, KEY, NULL, NULL);
	expect_ok(r, "perf-summary after tuning");
	assert_true(r->perf.preset_tuned);
	free(r);
	r = call1(HIVE_FW_SUMMARY, t->ip, KEY, NULL, NULL);
	expect_ok(r, "summary after tuning");
	assert_true(near(r->summary.hr_nominal, target_th * 1000.0, 0.001));
	free(r);

	/* a preset the model does not have */
	r = call1(HIVE_FW_SET_PRESET, t->ip, KEY, NULL, "12345");
	expect_err(r, HIVE_FW_ERR_HTTP, 400, "unknown preset");
	free(r);
	truth_of(t->mac, &now);
	assert_string_equal(now.preset, target);
}

static void test_mining_control(void **state)
{
	const struct truth *t = &sim.m[sim.n - 4];
	static const struct {
		enum hive_fw_call call;
		const char *state;      /* right after */
		const char *then;       /* eventually, or NULL */
		const char *truth;
	} steps[] = {
		{ HIVE_FW_MINING_STOP, "stopped", NULL, "stopped" },
		{ HIVE_FW_MINING_START, "starting|mining", "mining", "mining" },
		{ HIVE_FW_MINING_PAUSE, "stopped", NULL, "stopped" },
		{ HIVE_FW_MINING_RESUME, "starting|mining", "mining", "mining" },
	};
	struct truth now;

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct hive_fw_result *r = call1(steps[i].call, t->ip, KEY, NULL, NULL);

		expect_ok(r, hive_fw_call_name(steps[i].call));
		assert_int_equal(r->http_status, 200);
		free(r);
		assert_true(state_is(t->ip, steps[i].state));
		if (steps[i].then)
			wait_state(t->ip, steps[i].then, 4000);
		truth_of(t->mac, &now);
		assert_string_equal(now.state, steps[i].truth);
	}
	/* control without a key is refused and changes nothing */
	{
		struct hive_fw_result *r = call1(HIVE_FW_MINING_STOP, t->ip, NULL, NULL, NULL);

		expect_err(r, HIVE_FW_ERR_AUTH, 401, "stop without a key");
		free(r);
		truth_of(t->mac, &now);
		assert_string_equal(now.state, "mining");
	}
}

static bool info_ok(void *arg)
{
	struct hive_fw_result *r = call1(HIVE_FW_INFO, arg, NULL, NULL, NULL);
	bool ok = r->err.kind == HIVE_FW_OK;

	free(r);
	return ok;
}

static void test_reboot(void **state)
{
	const struct truth *t = &sim.m[sim.n - 5];
	struct hive_fw_result *r;
	struct truth now;
	long long t0;

	(void)state;
	r = call1(HIVE_FW_REBOOT, t->ip, KEY, NULL, NULL);
	expect_ok(r, "reboot");
	assert_in_range(r->reboot.after, 0, 600);
	free(r);
	t0 = hive_mono_ms();
	truth_of(t->mac, &now);
	assert_string_equal(now.state, "rebooting");
	r = call1(HIVE_FW_INFO, t->ip, NULL, NULL, NULL);
	expect_err(r, HIVE_FW_ERR_REFUSED, 0, "info while rebooting");
	free(r);
	if (tl_wait_until((REBOOT_S + 3) * 1000, info_ok, (void *)t->ip) < 0)
		fail_msg("miner did not come back after the reboot");
	assert_true(hive_mono_ms() - t0 >= REBOOT_S * 1000 - 200);
	wait_state(t->ip, "mining", 4000);
	/* keys persist across reboots */
	r = call1(HIVE_FW_SUMMARY, t->ip, KEY, NULL, NULL);
	expect_ok(r, "summary after reboot");
	free(r);
}

/* ---------------------------------------------------------------- the network moves */

static void test_swap_and_move(void **state)
{
	struct truth a = sim.m[sim.n - 6], b = sim.m[sim.n - 7];
	struct hive_fw_result *r;
	char path[128], free_ip[16] = "";

	(void)state;
	admin_post("/sim/swap", "{\"a\":\"%s\",\"b\":\"%s\"}", a.mac, b.mac);
	r = call1(HIVE_FW_INFO, a.ip, NULL, NULL, NULL);
	expect_ok(r, "info after swap");
	assert_string_equal(r->info.mac, b.mac);
	assert_string_equal(r->info.ip, a.ip);
	free(r);
	r = call1(HIVE_FW_INFO, b.ip, NULL, NULL, NULL);
	expect_ok(r, "info after swap");
	assert_string_equal(r->info.mac, a.mac);
	free(r);

	/* DHCP moves a to an address nobody uses */
	for (int last = 2; last < 255 && !free_ip[0]; last++) {
		char ip[16];
		bool used = false;
		json_t *hosts = admin("GET", "/sim/hosts", NULL, 200);

		snprintf(ip, sizeof(ip), "127.78.0.%d", last);
		for (int i = 0; i < sim.n; i++)
			used |= strcmp(sim.m[i].ip, ip) == 0;
		for (size_t h = 0; h < json_array_size(hosts); h++)
			used |= strcmp(json_string_value(json_object_get(json_array_get(hosts, h), "ip")),
				       ip) == 0;
		json_decref(hosts);
		if (!used)
			snprintf(free_ip, sizeof(free_ip), "%s", ip);
	}
	snprintf(path, sizeof(path), "/sim/miners/%s/move", a.mac);
	admin_post(path, "{\"ip\":\"%s\"}", free_ip);
	r = call1(HIVE_FW_INFO, free_ip, NULL, NULL, NULL);
	expect_ok(r, "info at the new address");
	assert_string_equal(r->info.mac, a.mac);
	assert_string_equal(r->info.ip, free_ip);
	free(r);
	r = call1(HIVE_FW_INFO, b.ip, NULL, NULL, NULL);
	expect_err(r, HIVE_FW_ERR_REFUSED, 0, "info at the address it left");
	free(r);
}

static void test_non_miners(void **state)
{
	json_t *hosts = admin("GET", "/sim/hosts", NULL, 200);
	int seen = 0;

	(void)state;
	for (size_t h = 0; h < json_array_size(hosts); h++) {
		json_t *o = json_array_get(hosts, h);
		const char *ip = json_string_value(json_object_get(o, "ip"));
		const char *kind = json_string_value(json_object_get(o, "kind"));
		struct hive_fw_result *r = call1(HIVE_FW_INFO, ip, NULL, NULL, NULL);

		if (strcmp(kind, "closed") == 0)
			expect_err(r, HIVE_FW_ERR_REFUSED, 0, "closed host");
		else if (strcmp(kind, "router") == 0 || strcmp(kind, "stock_404") == 0)
			expect_err(r, HIVE_FW_ERR_NOT_FOUND, 404, kind);
		else if (strcmp(kind, "stock_html") == 0)
			expect_err(r, HIVE_FW_ERR_BAD_JSON, 200, kind);
		else
			fail_msg("unknown host kind %s", kind);
		seen++;
		free(r);
	}
	assert_int_equal(seen, NHOSTS);
	json_decref(hosts);
}

/* ---------------------------------------------------------------- API edges */

static void nop_cb(const struct hive_fw_result *res, void *arg)
{
	(void)res;
	(void)arg;
	fail_msg("a refused request ran its callback");
}

static void test_request_checks(void **state)
{
	struct hive_loop *loop = hive_loop_new();
	struct hive_fw_client *c = hive_fw_client_new(loop, NULL);
	struct hive_fw_req ok = { .ip = "127.78.0.1", .port = sim.port, .call = HIVE_FW_INFO,
				  .cb = nop_cb };
	struct hive_fw_req bad[] = { ok, ok, ok, ok, ok, ok, ok, ok };
	char *path, *logtext;
	FILE *f;

	(void)state;
	assert_non_null(c);
	bad[0].ip = NULL;
	bad[1].ip = "localhost";               /* names would mean DNS: literals only */
	bad[2].call = HIVE_FW_SET_PRESET;      /* needs arg */
	bad[3].api_key = "abc\r\nX-Evil: 1";
	bad[4].cb = NULL;
	bad[5].port = 70000;
	bad[6].call = (enum hive_fw_call)99;
	bad[7].call = HIVE_FW_UNLOCK;
	bad[7].arg = "";
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hive_fw_request(c, &bad[i]) != -1)
			fail_msg("bad request %zu accepted", i);
	assert_int_equal(hive_fw_client_pending(c), 0);

	/* requests still pending when the client is freed never call back */
	ok.ip = sim.m[0].ip;
	for (int i = 0; i < 10; i++)
		assert_int_equal(hive_fw_request(c, &ok), 0);
	assert_int_equal(hive_fw_client_pending(c), 10);
	hive_loop_run_once(loop, 0);
	hive_fw_client_free(c);
	hive_loop_run_once(loop, 50);
	hive_loop_free(loop);

	/* secrets given to the client never reach a log line */
	path = tl_tmpdir("fwlog");
	assert_non_null(path);
	{
		char file[600];
		struct hive_fw_result *r;

		snprintf(file, sizeof(file), "%s/log", path);
		f = fopen(file, "w+");
		assert_non_null(f);
		hive_log_init("test_fw_contract", HIVE_LOG_DEBUG, f);
		r = call1(HIVE_FW_UNLOCK, sim.m[1].ip, "feedfacefeedfacefeedfacefeedface", NULL,
			  "s3cret-pw");
		free(r);
		log_info("leak key=%s pw=%s", "feedfacefeedfacefeedfacefeedface", "s3cret-pw");
		fflush(f);
		hive_log_init("test_fw_contract", HIVE_LOG_INFO, NULL);
		fclose(f);
		logtext = tl_read_file(file);
		assert_non_null(logtext);
		assert_non_null(strstr(logtext, "leak"));
		assert_null(strstr(logtext, "feedface"));
		assert_null(strstr(logtext, "s3cret-pw"));
		free(logtext);
	}
	tl_rmrf(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_provisioned),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_telemetry),
		cmocka_unit_test_teardown(test_faults, faults_teardown),
		cmocka_unit_test(test_queue_and_reuse),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_lockout),
		cmocka_unit_test(test_set_preset),
		cmocka_unit_test(test_mining_control),
		cmocka_unit_test(test_reboot),
		cmocka_unit_test(test_swap_and_move),
		cmocka_unit_test(test_non_miners),
		cmocka_unit_test(test_request_checks),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
