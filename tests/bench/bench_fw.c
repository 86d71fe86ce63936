/* bench_fw — throughput of the firmware client against minersim, next to
 * wrk against the same simulator in the same run, and what a request costs
 * as the fleet grows.
 *
 *   1. minersim with 10,000 miners on 127.79.0.0/18; one API key
 *      provisioned on each through the client (unlock + apikey create).
 *   2. Per endpoint (/summary, then /chains), BENCH_ROUNDS (3) rounds of:
 *      the client keeping 256 requests in flight for BENCH_SECONDS (2) s,
 *      round-robin over 1,000 of the miners; the same on ONE miner address,
 *      which is what wrk measures; wrk -t2 -c256 -d<seconds>s with the
 *      x-api-key header on that miner. Best of the rounds, so that load
 *      from other processes on the machine hits both sides alike.
 *   3. Per endpoint, BENCH_ROUNDS rounds of: the client as the workers
 *      configure it (in flight: requests per job x 256, everything else the
 *      default) round-robin over 1,000 miners, then over all 10,000, each
 *      after one unmeasured pass over its miners (a daemon's client lives
 *      for months: whatever it caches per host is there). Least CPU per
 *      request of the rounds, and the ratio 10,000 / 1,000 (target ~1).
 *   CPU per request of the client and of minersim (getrusage, /proc) does
 *   not depend on that load; requests/s does.
 *
 * Prints "figure: fw bench <endpoint> client=<n>/s wrk=<n>/s ratio=<r>" and
 * "figure: fw bench hosts <endpoint> cpu 1000=<n>us/req 10000=<n>us/req
 * ratio=<r>". Everything stays on loopback. See docs/firmware-client.md for
 * what limits the figures.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "hive/fw.h"
#include "hive/log.h"
#include "hive/loop.h"
#include "../lib/testlib.h"

#define SUBNET    "127.79.0.0/18"
#define NMINERS   10000          /* the fleet; the hosts figure's large side */
#define NSMALL    1000           /* the wrk comparison and the small side */
#define IN_FLIGHT 256

static char ips[NMINERS][16];
static int nminers, port;
static char key[33];

struct run {
	struct hive_fw_client *c;
	enum hive_fw_call call;
	int nhosts;              /* round-robin over ips[0..nhosts-1] */
	int next;
	int limit;               /* stop submitting after this many (0: none) */
	int64_t until;
	uint64_t ok, failed, bytes;
	int64_t lat_sum;
	enum hive_fw_err_kind last_kind;
	char last_err[256];
};

static void submit(struct run *r);

static void on_done(const struct hive_fw_result *res, void *arg)
{
	struct run *r = arg;

	if (res->err.kind == HIVE_FW_OK) {
		r->ok++;
		r->lat_sum += res->latency_ms;
	} else {
		r->failed++;
		r->last_kind = res->err.kind;
		snprintf(r->last_err, sizeof(r->last_err), "%s", res->err.msg);
	}
	if (hive_mono_ms() < r->until && (r->limit == 0 || r->next < r->limit))
		submit(r);
}

static void submit(struct run *r)
{
	struct hive_fw_req q = { .port = port, .call = r->call, .api_key = key, .cb = on_done,
				 .cb_arg = r };

	q.ip = ips[r->next++ % r->nhosts];
	if (hive_fw_request(r->c, &q) < 0) {
		fprintf(stderr, "bench_fw: request: %s\n", strerror(errno));
		exit(1);
	}
}

static pid_t sim_pid;

/* CPU seconds used so far by this process and by minersim. */
static double cpu_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct figures {
	double rps;              /* best of the rounds */
	double cpu_us;           /* client CPU per request, least of the rounds */
	double sim_us;           /* minersim CPU per request, least of the rounds */
};

static void keep(struct figures *f, double rps, double cpu_us, double sim_us)
{
	if (rps > f->rps)
		f->rps = rps;
	if (cpu_us > 0 && (f->cpu_us == 0 || cpu_us < f->cpu_us))
		f->cpu_us = cpu_us;
	if (sim_us > 0 && (f->sim_us == 0 || sim_us < f->sim_us))
		f->sim_us = sim_us;
}

/* Keeps o->max_in_flight requests going for `seconds` over the first
 * nhosts miners, after `warm` requests that are not measured. Prints a
 * line tagged `what`, keeps the figures in fig. */
static void client_run(const char *what, enum hive_fw_call call, int nhosts,
		       const struct hive_fw_opts *o, int warm, int seconds, struct figures *fig)
{
	struct hive_loop *loop = hive_loop_new();
	struct run r = { .call = call, .nhosts = nhosts };
	struct hive_fw_stats st, st0 = { 0 };
	int64_t t0;
	double secs, c0, s0, cpu, sim;

	if (!loop || !(r.c = hive_fw_client_new(loop, o))) {
		fprintf(stderr, "bench_fw: cannot make a client\n");
		exit(1);
	}
	if (warm > 0) {
		r.until = INT64_MAX;
		r.limit = warm;
		for (int i = 0; i < o->max_in_flight && r.next < warm; i++)
			submit(&r);
		while (hive_fw_client_pending(r.c) > 0)
			hive_loop_run_once(loop, 100);
		if (r.failed > r.ok / 100) {
			fprintf(stderr, "bench_fw: %s warm-up: %llu failed: %s\n", what,
				(unsigned long long)r.failed, r.last_err);
			exit(1);
		}
		hive_fw_client_stats(r.c, &st0);
		r.ok = r.failed = 0;
		r.lat_sum = 0;
		r.limit = 0;
	}
	c0 = cpu_self();
	s0 = tl_proc_cpu_s(sim_pid);
	t0 = hive_mono_ms();
	r.until = t0 + seconds * 1000;
	for (int i = 0; i < o->max_in_flight; i++)
		submit(&r);
	while (hive_fw_client_pending(r.c) > 0)
		hive_loop_run_once(loop, 100);
	secs = (double)(hive_mono_ms() - t0) / 1000.0;
	cpu = cpu_self() - c0;
	sim = tl_proc_cpu_s(sim_pid) - s0;
	hive_fw_client_stats(r.c, &st);
	hive_fw_client_free(r.c);
	hive_loop_free(loop);
	printf("bench_fw: %s %s: %llu ok, %llu failed in %.2f s (%.0f/s), mean latency "
	       "%.1f ms, %llu new connections, CPU %.0f us/request, minersim %.0f us/request\n",
	       what, hive_fw_call_name(call), (unsigned long long)r.ok,
	       (unsigned long long)r.failed, secs, (double)r.ok / secs,
	       r.ok ? (double)r.lat_sum / (double)r.ok : 0.0,
	       (unsigned long long)(st.connects - st0.connects),
	       r.ok ? cpu * 1e6 / (double)r.ok : 0.0, r.ok ? sim * 1e6 / (double)r.ok : 0.0);
	if (r.failed)
		printf("bench_fw: last error: %s %s\n", hive_fw_err_name(r.last_kind), r.last_err);
	if (r.failed > r.ok / 100) {
		fprintf(stderr, "bench_fw: more than 1%% of the requests failed\n");
		exit(1);
	}
	if (r.ok)
		keep(fig, (double)r.ok / secs, cpu * 1e6 / (double)r.ok, sim * 1e6 / (double)r.ok);
}

/* wrk on one miner; requests/s, or -1 when wrk is missing or failed. */
static double wrk_run(const char *path, int seconds, struct figures *fig)
{
	char cmd[512], line[512];
	double rps = -1, s0 = tl_proc_cpu_s(sim_pid);
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "wrk -t2 -c%d -d%ds -H 'x-api-key: %s' http://%s:%d/api/v1/%s 2>&1", IN_FLIGHT,
		 seconds, key, ips[0], port, path);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), p)) {
		double v;

		if (sscanf(line, "Requests/sec: %lf", &v) == 1)
			rps = v;
		if (strstr(line, "Non-2xx") || strstr(line, "Socket errors"))
			printf("bench_fw: wrk: %s", line);
	}
	if (pclose(p) != 0)
		return -1;
	printf("bench_fw: wrk %s: %.0f/s, minersim %.0f us/request\n", path, rps,
	       rps > 0 ? (tl_proc_cpu_s(sim_pid) - s0) * 1e6 / (rps * seconds) : 0.0);
	if (rps > 0)
		keep(fig, rps, 0, (tl_proc_cpu_s(sim_pid) - s0) * 1e6 / (rps * seconds));
	return rps;
}

struct prov {
	bool ok;
	char token[256];
	char err[256];
};

static void prov_cb(const struct hive_fw_result *res, void *arg)
{
	struct prov *p = arg;

	p->ok = res->err.kind == HIVE_FW_OK;
	if (!p->ok)
		snprintf(p->err, sizeof(p->err), "%s", res->err.msg);
	else if (res->call == HIVE_FW_UNLOCK)
		snprintf(p->token, sizeof(p->token), "%s", res->unlock.token);
}

/* One key on every miner, the way discoverd does it: unlock, then create. */
static void provision(void)
{
	struct hive_fw_opts o = { .max_in_flight = IN_FLIGHT };
	struct hive_loop *loop = hive_loop_new();
	struct hive_fw_client *c = loop ? hive_fw_client_new(loop, &o) : NULL;
	static struct prov prov[NMINERS];

	if (!c) {
		fprintf(stderr, "bench_fw: cannot make a client\n");
		exit(1);
	}
	for (int pass = 0; pass < 2; pass++) {
		int bad = 0;

		for (int i = 0; i < nminers; i++) {
			struct hive_fw_req q = { .ip = ips[i], .port = port, .cb = prov_cb,
						 .cb_arg = &prov[i] };

			q.call = pass == 0 ? HIVE_FW_UNLOCK : HIVE_FW_APIKEY_CREATE;
			q.arg = pass == 0 ? "admin" : key;
			q.token = pass == 0 ? NULL : prov[i].token;
			prov[i].ok = false;
			if (hive_fw_request(c, &q) < 0) {
				fprintf(stderr, "bench_fw: provision: %s\n", strerror(errno));
				exit(1);
			}
		}
		while (hive_fw_client_pending(c) > 0)
			hive_loop_run_once(loop, 100);
		for (int i = 0; i < nminers; i++)
			if (!prov[i].ok && bad++ == 0)
				fprintf(stderr, "bench_fw: provision %s: %s\n", ips[i], prov[i].err);
		if (bad) {
			fprintf(stderr, "bench_fw: provisioning failed on %d miners\n", bad);
			exit(1);
		}
	}
	hive_fw_client_free(c);
	hive_loop_free(loop);
}

static bool sim_ready(void *arg)
{
	char *s = tl_read_file(arg);
	bool ok = s && strstr(s, "minersim ready");

	free(s);
	return ok;
}

static void figure(const char *what, const struct figures *c, const struct figures *one,
		   const struct figures *w)
{
	if (w->rps > 0)
		printf("figure: fw bench %s client=%.0f/s wrk=%.0f/s ratio=%.2f\n", what, c->rps,
		       w->rps, c->rps / w->rps);
	else
		printf("figure: fw bench %s client=%.0f/s wrk=unavailable\n", what, c->rps);
	printf("figure: fw bench %s one-address client=%.0f/s%s", what, one->rps,
	       w->rps > 0 ? "" : "\n");
	if (w->rps > 0)
		printf(" ratio=%.2f\n", one->rps / w->rps);
	printf("figure: fw bench %s cpu client=%.0fus/req minersim=%.0fus/req (wrk run: %.0fus/req)\n",
	       what, c->cpu_us, c->sim_us, w->sim_us);
}

int main(void)
{
	const char *env = getenv("BENCH_SECONDS"), *renv = getenv("BENCH_ROUNDS");
	int seconds = env && atoi(env) > 0 ? atoi(env) : 2;
	int rounds = renv && atoi(renv) > 0 ? atoi(renv) : 3;
	char portbuf[16], adminbuf[32], nbuf[16], log[600], url[128];
	char *dir = tl_tmpdir("benchfw");
	struct rlimit rl;
	json_t *miners;
	long status;
	/* in flight as the workers size their client: requests per job x
	 * network.http_concurrency (256); pollerd asks two per status job */
	static const struct {
		enum hive_fw_call call;
		const char *path;
		int worker_in_flight;
	} eps[] = { { HIVE_FW_SUMMARY, "summary", 2 * 256 }, { HIVE_FW_CHAINS, "chains", 256 } };
	bool hosts_only = tl_env_int("BENCH_FW_HOSTS_ONLY", 0) > 0;

	signal(SIGPIPE, SIG_IGN);
	hive_log_init("bench_fw", HIVE_LOG_WARN, NULL);
	/* 256 in flight plus an idle connection per miner of the 1,000 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(key, sizeof(key), "%s", "be0c4000000000000000000000000000");
	port = tl_free_port();
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	snprintf(adminbuf, sizeof(adminbuf), "127.0.0.1:%d", tl_free_port());
	snprintf(nbuf, sizeof(nbuf), "%d", NMINERS);
	snprintf(log, sizeof(log), "%s/minersim.log", dir ? dir : "/tmp");
	{
		/* every miner on firmware 1.2.x: /chains, no /boards fallback in the figure */
		char *argv[] = { (char *)tl_bin("minersim"), "--subnet", SUBNET, "--miners", nbuf,
				 "--port", portbuf, "--admin", adminbuf, "--seed", "5", NULL };

		sim_pid = tl_spawn(log, argv, NULL);
	}
	if (sim_pid < 0 || tl_wait_until(20000, sim_ready, log) < 0) {
		fprintf(stderr, "bench_fw: minersim did not start (log %s)\n", log);
		return 1;
	}
	snprintf(url, sizeof(url), "http://%s/sim/miners", adminbuf);
	miners = tl_http_json("GET", url, NULL, NULL, &status);
	if (!json_is_array(miners)) {
		fprintf(stderr, "bench_fw: GET /sim/miners failed (%ld)\n", status);
		tl_stop(sim_pid, SIGTERM, 3000);
		return 1;
	}
	for (size_t i = 0; i < json_array_size(miners) && i < NMINERS; i++)
		snprintf(ips[nminers++], sizeof(ips[0]), "%s",
			 json_string_value(json_object_get(json_array_get(miners, i), "ip")));
	json_decref(miners);
	if (nminers != NMINERS) {
		fprintf(stderr, "bench_fw: minersim lists %d miners, not %d\n", nminers, NMINERS);
		tl_stop(sim_pid, SIGTERM, 3000);
		return 1;
	}
	provision();
	printf("bench_fw: %d miners provisioned, %d in flight, %d rounds of %d s per run\n",
	       nminers, IN_FLIGHT, rounds, seconds);

	/* client and wrk take turns, so that load from elsewhere hits both; the
	 * best of the rounds is kept */
	for (size_t e = 0; e < sizeof(eps) / sizeof(eps[0]) && !hosts_only; e++) {
		struct figures c = { 0 }, one = { 0 }, w = { 0 };
		struct hive_fw_opts o = { .max_in_flight = IN_FLIGHT, .timeout_ms = 10000,
					  .max_connections = 2 * NSMALL };

		for (int r = 0; r < rounds; r++) {
			client_run("client", eps[e].call, NSMALL, &o, 0, seconds, &c);
			client_run("client one-address", eps[e].call, 1, &o, 0, seconds, &one);
			wrk_run(eps[e].path, seconds, &w);
		}
		figure(eps[e].path, &c, &one, &w);
	}

	/* the same client over 1,000 and 10,000 hosts, taking turns; with
	 * keep-alive (as the workers run it: at most max_in_flight connections
	 * stay open, so more hosts means fewer reused) and with a fresh
	 * connection for every request (the same work per request at both
	 * sizes) */
	for (size_t e = 0; e < sizeof(eps) / sizeof(eps[0]); e++) {
		struct figures f[2][2] = { { { 0 } } };   /* [fresh][large] */
		struct hive_fw_opts o = { .max_in_flight = eps[e].worker_in_flight,
					  .timeout_ms = 10000 };

		for (int r = 0; r < rounds; r++)
			for (int fresh = 0; fresh < 2; fresh++) {
				o.no_keepalive = fresh;
				client_run(fresh ? "fresh hosts=1000" : "hosts=1000", eps[e].call,
					   NSMALL, &o, NSMALL, seconds, &f[fresh][0]);
				client_run(fresh ? "fresh hosts=10000" : "hosts=10000", eps[e].call,
					   nminers, &o, nminers, seconds, &f[fresh][1]);
			}
		for (int fresh = 0; fresh < 2; fresh++)
			printf("figure: fw bench hosts %s%s cpu %d=%.0fus/req %d=%.0fus/req "
			       "ratio=%.2f (in flight %d)\n", eps[e].path,
			       fresh ? " fresh-connections" : "", NSMALL, f[fresh][0].cpu_us,
			       nminers, f[fresh][1].cpu_us,
			       f[fresh][0].cpu_us > 0 ? f[fresh][1].cpu_us / f[fresh][0].cpu_us : 0.0,
			       o.max_in_flight);
	}
	tl_stop(sim_pid, SIGTERM, 3000);
	if (dir) {
		tl_rmrf(dir);
		free(dir);
	}
	return 0;
}
