/* test_control_jobs — bin/pollerd's control jobs against bin/minersim, the
 * test playing apid: it PUSHes hive.job.control (and hive.job.status) on
 * ports of its own and SUBSCRIBEs to every event, each decoded with the
 * table apid decodes with. The firmware's side is judged by minersim's
 * ground truth (/sim/miners/{mac}: preset, state, and the counters
 * settings_calls, preset_changes, restarts, pauses, resumes, reboots):
 *   - every kind on a miner of each model: the call made exactly once, the
 *     effect, and a hive.action.result carrying the job, action and kind
 *     (set_preset: restart_required and restarted as the firmware asked;
 *     reboot: reboot_after); a paused miner's status says "paused";
 *   - set_preset on firmware that applies at a restart, and on firmware
 *     that applies quietly (no restart asked, none sent);
 *   - a job past its deadline is never run (counters unchanged), counted
 *     as control_jobs_expired;
 *   - firmware errors (500, 400, refused, reset mid-answer, a restart
 *     failing after the preset was accepted) come back as hive.miner.error
 *     op=control and hive.job.failed, and nothing is sent twice (a reboot
 *     whose answer was cut still counts one reboot);
 *   - a set_preset without a preset is a bad job: hive.job.failed only;
 *   - the heartbeat's control_jobs_* counters;
 *   - SIGHUP reloads both queues, and pollerd stops cleanly;
 *   - the figure: a control job's time from PUSH to its result while
 *     pollerd holds its cap of 1,000 status jobs in flight with more
 *     queued, against 1,000 simulated miners (slow /summary answers, then
 *     a flood of fast ones). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "hive/bus.h"
#include "hive/fw.h"
#include "hive/loop.h"
#include "hive/mac.h"
#include "hive/msg.h"
#include "../lib/apidfake.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SUBNET      "127.85.0.0/22"
#define NMINERS     1000
#define CONCURRENCY 1000               /* pollerd's network.http_concurrency */
#define KEY         "c0a7001000000000000000000000beef"
#define ANSWER_MS   8000
#define CTL_MAX     4096               /* control job ids 1.. */
#define ST_BASE     1000000            /* status job ids ST_BASE.. */
#define ST_MAX      (1 << 18)

struct miner {
	char mac[HIVE_MAC_LEN];
	char ip[HIVE_IPV4_LEN];
	char model[16];
	char preset[16];
	bool used;
};

/* What came back for one control job. */
struct ctl {
	int64_t pushed_ms, answered_ms;
	int results, errors, failed;
	long long action;
	char kind[16];
	char mac[HIVE_MAC_LEN];
	int restart_required, restarted;
	long long reboot_after, latency_ms;
	char error_op[16], error_kind[32], failed_kind[32], message[300];
	long long http_status;
};

/* What came back for one status job. */
struct st {
	int64_t pushed_ms, answered_ms;
	int results, failed;
	char state[16], description[32];
	long long state_time;
};

/* the config, minersim (its miners on ts.miner_port), pollerd and the logs */
static struct ts_suite ts;

static struct {
	struct ts_proc *pollerd;
	struct hive_bus *sub, *push_status, *push_control;
	struct miner m[NMINERS];
	int n;
	long long last_ctl, last_st;
	/* what this test sent, for the counters */
	int sent_ok, sent_expired, sent_bad;
	/* from the events */
	struct ctl ctl[CTL_MAX];
	struct st *st;
	long long st_answered;
	json_t *counters;               /* pollerd's last heartbeat's */
	long long hb_in_flight, hb_in_flight_max;
	int bodies;
} S;

static bool passed;

/* ---------------------------------------------------------------- the simulator */

/* minersim's admin API: method path with a body (printf format; NULL:
 * none), answered with status want. The answer, the caller's. */
static json_t *admin(const char *method, const char *path, long want, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static json_t *admin(const char *method, const char *path, long want, const char *fmt, ...)
{
	char body[512] = "";
	long status = 0;
	json_t *j;
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
	}
	j = tl_local_json(method, ts.admin_port, path, fmt ? body : NULL, &status);
	if (status != want)
		fail_msg("%s %s: status %ld, want %ld", method, path, status, want);
	return j;
}

/* A POST that must answer 200; the answer is dropped. */
#define admin_post(path, ...) json_decref(admin("POST", path, 200, __VA_ARGS__))

/* Ground truth of one miner now (the caller frees it). */
static json_t *truth(const struct miner *m)
{
	char path[128];

	snprintf(path, sizeof(path), "/sim/miners/%s", m->mac);
	return admin("GET", path, 200, NULL);
}

static long long tint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("/sim/miners: %s is not an integer", key);
	return (long long)json_integer_value(v);
}

static const char *tstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The control counters of the truth, in one go. */
enum { C_SETTINGS, C_PRESETS, C_RESTARTS, C_PAUSES, C_RESUMES, C_REBOOTS, C_N };
static const char *const cnames[C_N] = { "settings_calls", "preset_changes", "restarts",
					 "pauses", "resumes", "reboots" };

static void counts(const struct miner *m, long long out[C_N])
{
	json_t *t = truth(m);

	for (int i = 0; i < C_N; i++)
		out[i] = tint(t, cnames[i]);
	json_decref(t);
}

/* Asserts that each counter moved by exactly d[i] since before[i]. */
static void expect_counts(const struct miner *m, const long long before[C_N], const int d[C_N],
			  const char *what)
{
	long long now[C_N];

	counts(m, now);
	for (int i = 0; i < C_N; i++)
		if (now[i] - before[i] != d[i])
			fail_msg("%s on %s (%s): %s went %lld -> %lld, want +%d", what, m->mac,
				 m->model, cnames[i], before[i], now[i], d[i]);
}

struct want_state {
	const struct miner *m;
	const char *state;
};

static bool in_state(void *arg)
{
	const struct want_state *ws = arg;
	json_t *t = truth(ws->m);
	bool ok = strcmp(tstr(t, "state"), ws->state) == 0;

	json_decref(t);
	return ok;
}

static void wait_state(const struct miner *m, const char *state, int ms)
{
	struct want_state ws = { m, state };

	if (tl_wait_until(ms, in_state, &ws) < 0)
		fail_msg("%s (%s) not %s within %d ms", m->mac, m->model, state, ms);
}

/* An unused miner of model (NULL: any), now mining; marked used. */
static struct miner *pick(const char *model)
{
	for (int i = 0; i < S.n; i++) {
		struct miner *m = &S.m[i];

		if (m->used || (model && strcmp(m->model, model) != 0))
			continue;
		m->used = true;
		return m;
	}
	fail_msg("no unused miner of model %s left", model ? model : "any");
	return NULL;
}

/* ---------------------------------------------------------------- a miner that keeps time
 * For the figure: a listener on 127.0.0.1 that answers any request 200
 * and notes when a request's head arrived, by the job id its key carries
 * ("x-api-key: ctl-<job>"), on the test's clock. */

static struct {
	int fd, port;
	pthread_t thread;
	atomic_int stop;
	_Atomic int64_t seen_ms[CTL_MAX];
	atomic_int calls;
} fake;

static void fake_serve(int c)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	struct timeval tv = { 2, 0 };
	char buf[4096];
	size_t len = 0;
	const char *k;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if ((k = strcasestr(buf, "x-api-key: ctl-"))) {
		long id = strtol(k + strlen("x-api-key: ctl-"), NULL, 10);

		if (id > 0 && id < CTL_MAX)
			atomic_store(&fake.seen_ms[id], hive_mono_ms());
	}
	atomic_fetch_add(&fake.calls, 1);
	if (write(c, ok, sizeof(ok) - 1) < 0)
		return;
}

static void *fake_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&fake.stop)) {
		struct pollfd p = { .fd = fake.fd, .events = POLLIN };
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((c = accept(fake.fd, NULL, NULL)) < 0)
			continue;
		fake_serve(c);
		close(c);
	}
	return NULL;
}

static int fake_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fake.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fake.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fake.fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fake.fd, 64) < 0 ||
	    getsockname(fake.fd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	fake.port = ntohs(a.sin_port);
	return pthread_create(&fake.thread, NULL, fake_main, NULL) == 0 ? 0 : -1;
}

static void fake_stop(void)
{
	if (fake.port <= 0)
		return;
	atomic_store(&fake.stop, 1);
	pthread_join(fake.thread, NULL);
	close(fake.fd);
	fake.port = 0;
}

/* ---------------------------------------------------------------- provisioning */

struct prov {
	struct hive_fw_req req;
	char token[256];
	int done;
	bool ok;
};

static void prov_cb(const struct hive_fw_result *res, void *arg)
{
	struct prov *p = arg;

	p->ok = res->err.kind == HIVE_FW_OK;
	if (p->ok && res->call == HIVE_FW_UNLOCK)
		snprintf(p->token, sizeof(p->token), "%s", res->unlock.token);
	if (!p->ok)
		fprintf(stderr, "provision %s: %s\n", p->req.ip, res->err.msg);
	p->done = 1;
}

/* Runs one call on every miner at once; 0 when all succeeded. */
static int run_all(struct prov *p, enum hive_fw_call call)
{
	struct hive_fw_opts o = { .max_in_flight = 256, .timeout_ms = 5000 };
	struct hive_loop *loop = hive_loop_new();
	struct hive_fw_client *c = loop ? hive_fw_client_new(loop, &o) : NULL;
	int64_t deadline = hive_mono_ms() + 30000;
	int left, bad = 0;

	if (!c)
		return -1;
	for (int i = 0; i < S.n; i++) {
		memset(&p[i].req, 0, sizeof(p[i].req));
		p[i].req.ip = S.m[i].ip;
		p[i].req.port = ts.miner_port;
		p[i].req.call = call;
		p[i].req.cb = prov_cb;
		p[i].req.cb_arg = &p[i];
		if (call == HIVE_FW_UNLOCK) {
			p[i].req.arg = "admin";
		} else {
			p[i].req.token = p[i].token;
			p[i].req.arg = KEY;
		}
		p[i].done = 0;
		if (hive_fw_request(c, &p[i].req) != 0)
			return -1;
	}
	do {
		left = 0;
		for (int i = 0; i < S.n; i++)
			left += !p[i].done;
		if (left)
			hive_loop_run_once(loop, 100);
	} while (left && hive_mono_ms() < deadline);
	hive_fw_client_free(c);
	hive_loop_free(loop);
	for (int i = 0; i < S.n; i++)
		bad += !p[i].done || !p[i].ok;
	return bad ? -1 : 0;
}

static int provision(void)
{
	struct prov *p = calloc((size_t)S.n, sizeof(*p));
	int rc = -1;

	if (p && run_all(p, HIVE_FW_UNLOCK) == 0 && run_all(p, HIVE_FW_APIKEY_CREATE) == 0)
		rc = 0;
	free(p);
	return rc;
}

/* ---------------------------------------------------------------- the bus */

static void on_action_result(const struct hive_msg_action_result *r)
{
	struct ctl *c;

	if (r->head.job <= 0 || r->head.job >= CTL_MAX)
		fail_msg("hive.action.result for job %lld, which the test never sent", r->head.job);
	c = &S.ctl[r->head.job];
	c->results++;
	c->answered_ms = hive_mono_ms();
	c->action = r->action;
	snprintf(c->kind, sizeof(c->kind), "%s", r->kind);
	snprintf(c->mac, sizeof(c->mac), "%s", r->head.mac);
	c->restart_required = r->restart_required;
	c->restarted = r->restarted;
	c->reboot_after = r->reboot_after;
	c->latency_ms = r->head.latency_ms;
}

static void on_error(const struct hive_msg_miner_error *e)
{
	struct ctl *c;

	if (!e->op || strcmp(e->op, "control") != 0)
		return;              /* a status job's: counted by its job.failed */
	if (e->job <= 0 || e->job >= CTL_MAX)
		fail_msg("hive.miner.error op=control for job %lld, never sent", e->job);
	c = &S.ctl[e->job];
	c->errors++;
	snprintf(c->error_op, sizeof(c->error_op), "%s", e->op);
	snprintf(c->error_kind, sizeof(c->error_kind), "%s", e->kind);
	snprintf(c->message, sizeof(c->message), "%s", e->message ? e->message : "");
	c->http_status = e->http_status;
}

static void on_failed(const struct hive_msg_job_failed *f)
{
	if (f->job >= ST_BASE && f->job < ST_BASE + ST_MAX) {
		S.st[f->job - ST_BASE].failed++;
		S.st[f->job - ST_BASE].answered_ms = hive_mono_ms();
		S.st_answered++;
		return;
	}
	if (f->job <= 0 || f->job >= CTL_MAX)
		fail_msg("hive.job.failed for job %lld, never sent", f->job);
	S.ctl[f->job].failed++;
	S.ctl[f->job].answered_ms = hive_mono_ms();
	snprintf(S.ctl[f->job].failed_kind, sizeof(S.ctl[f->job].failed_kind), "%s",
		 f->kind ? f->kind : "");
}

static void on_status(const struct hive_msg_status_result *r)
{
	struct st *s;

	if (r->head.job < ST_BASE || r->head.job >= ST_BASE + ST_MAX)
		fail_msg("hive.status.result for job %lld, never sent", r->head.job);
	s = &S.st[r->head.job - ST_BASE];
	s->results++;
	s->answered_ms = hive_mono_ms();
	snprintf(s->state, sizeof(s->state), "%s", r->state ? r->state : "");
	snprintf(s->description, sizeof(s->description), "%s",
		 r->state_description ? r->state_description : "");
	s->state_time = r->state_time;
	S.st_answered++;
}

/* One event, decoded with its table, to the job it answers. */
static void on_event(int kind, const void *body, const struct hive_envelope *env, void *arg)
{
	(void)arg;
	switch (kind) {
	case HIVE_MSG_ACTION_RESULT:
		on_action_result(body);
		break;
	case HIVE_MSG_MINER_ERROR:
		on_error(body);
		break;
	case HIVE_MSG_JOB_FAILED:
		on_failed(body);
		break;
	case HIVE_MSG_STATUS_RESULT:
		on_status(body);
		break;
	case HIVE_MSG_HEARTBEAT: {
		const struct hive_msg_heartbeat *hb = body;

		if (strcmp(hb->daemon, "pollerd") == 0 && hb->counters) {
			json_decref(S.counters);
			S.counters = json_deep_copy(hb->counters);
			S.hb_in_flight = hb->in_flight;
			if (hb->in_flight > S.hb_in_flight_max)
				S.hb_in_flight_max = hb->in_flight;
		}
		break;
	}
	default:
		fail_msg("%s: pollerd does not send that", env->topic);
	}
}

/* Reads every event there is; a body apid's table refuses fails the test. */
static void drain(void)
{
	char err[512];
	int n = tl_apid_drain(S.sub, on_event, NULL, err, sizeof(err));

	if (n < 0)
		fail_msg("%s", err);
	S.bodies += n;
}

/* Pushes a control job to the miner at ip:port with key (NULL: KEY and
 * "ctl-<job>" for the fake miner); deadline_in_ms from now (negative:
 * past). Returns the job id; its action id is job + 5000. preset may be
 * NULL. */
static long long push_control_to(const char *mac, const char *ip, int port, const char *key,
				 const char *kind, const char *preset, long long deadline_in_ms)
{
	struct hive_msg_control_job cj;
	long long id = ++S.last_ctl;
	char fake_key[32];
	json_t *body;

	assert_true(id < CTL_MAX);
	snprintf(fake_key, sizeof(fake_key), "ctl-%lld", id);
	hive_msg_init(HIVE_MSG_JOB_CONTROL, &cj);
	cj.job = id;
	snprintf(cj.mac, sizeof(cj.mac), "%s", mac);
	snprintf(cj.ip, sizeof(cj.ip), "%s", ip);
	cj.port = port;
	cj.api_key = key ? key : fake_key;
	cj.deadline = hive_wall_ms() + deadline_in_ms;
	cj.action = id + 5000;
	cj.kind = kind;
	cj.preset = preset;
	body = hive_msg_encode(HIVE_MSG_JOB_CONTROL, &cj);
	assert_non_null(body);
	S.ctl[id].pushed_ms = hive_mono_ms();
	if (hive_bus_send(S.push_control, HIVE_TOPIC_JOB_CONTROL, body, true) != HIVE_BUS_OK)
		fail_msg("could not push control job %lld", id);
	json_decref(body);
	return id;
}

static long long push_control(const struct miner *m, const char *kind, const char *preset,
			      long long deadline_in_ms)
{
	return push_control_to(m->mac, m->ip, ts.miner_port, KEY, kind, preset, deadline_in_ms);
}

/* Pushes a status job; 0 when the socket is full (non-blocking). */
static long long push_status(const struct miner *m, bool block)
{
	struct hive_msg_job j;
	long long id = S.last_st + 1;
	json_t *body;
	int rc;

	assert_true(id < ST_BASE + ST_MAX);
	hive_msg_init(HIVE_MSG_JOB_STATUS, &j);
	j.job = id;
	snprintf(j.mac, sizeof(j.mac), "%s", m->mac);
	snprintf(j.ip, sizeof(j.ip), "%s", m->ip);
	j.port = ts.miner_port;
	j.api_key = KEY;
	j.deadline = hive_wall_ms() + 60000;
	body = hive_msg_encode(HIVE_MSG_JOB_STATUS, &j);
	assert_non_null(body);
	S.st[id - ST_BASE].pushed_ms = hive_mono_ms();
	rc = hive_bus_send(S.push_status, HIVE_TOPIC_JOB_STATUS, body, block);
	json_decref(body);
	if (rc != HIVE_BUS_OK) {
		if (block)
			fail_msg("could not push status job %lld", id);
		return 0;
	}
	S.last_st = id;
	return id;
}

static bool ctl_answered(void *arg)
{
	long long id = *(long long *)arg;

	drain();
	return S.ctl[id].results + S.ctl[id].failed > 0;
}

/* Waits for job's answer; asserts it is a result (ok) or a failure. */
static struct ctl *answer(long long id, bool ok)
{
	struct ctl *c = &S.ctl[id];

	if (tl_wait_until(ANSWER_MS, ctl_answered, &id) < 0)
		fail_msg("control job %lld: no answer within %d ms; see %s", id, ANSWER_MS,
			 S.pollerd->log);
	if (ok && c->results != 1)
		fail_msg("control job %lld failed: %s %s (%s)", id, c->error_kind, c->message,
			 c->failed_kind);
	if (!ok && c->failed != 1)
		fail_msg("control job %lld: a result, want a failure", id);
	if (c->results + c->failed != 1)
		fail_msg("control job %lld answered %d times", id, c->results + c->failed);
	if (ok)
		assert_int_equal(c->action, id + 5000);
	return c;
}

static bool st_answered(void *arg)
{
	long long id = *(long long *)arg;

	drain();
	return S.st[id - ST_BASE].results + S.st[id - ST_BASE].failed > 0;
}

/* ---------------------------------------------------------------- setup */

static int start_sim(void)
{
	static const char *const args[] = { "--seed", "85", "--tune-seconds", "2",
					    "--tuned-seconds", "1", "--start-seconds", "1",
					    "--apply-seconds", "1", "--reboot-seconds", "2",
					    "--init-seconds", "1", "--models", "s19,s19jpro", NULL };
	json_t *all;

	if (ts_minersim(&ts, SUBNET, NMINERS, args) < 0)
		return -1;
	all = admin("GET", "/sim/miners", 200, NULL);
	if (!json_is_array(all) || json_array_size(all) != NMINERS)
		return -1;
	for (size_t i = 0; i < json_array_size(all); i++) {
		const json_t *o = json_array_get(all, i);
		struct miner *m = &S.m[S.n++];

		if (hive_mac_normalise(tstr(o, "mac"), m->mac) < 0)
			return -1;
		snprintf(m->ip, sizeof(m->ip), "%s", tstr(o, "ip"));
		snprintf(m->model, sizeof(m->model), "%s", tstr(o, "model"));
		snprintf(m->preset, sizeof(m->preset), "%s", tstr(o, "preset"));
	}
	json_decref(all);
	return provision();
}

static bool connected(void *arg)
{
	(void)arg;
	drain();
	return hive_bus_peers(S.push_status) > 0 && hive_bus_peers(S.push_control) > 0 &&
	       hive_bus_peers(S.sub) > 0 && S.counters;
}

static int setup(void **state)
{
	struct hive_bus_opts o = { .sendbuf = 8192, .recvbuf = 8192, .send_timeout_ms = 1000,
				   .source = "test_control_jobs/hub/1", .boot = hive_wall_ms() };

	(void)state;
	if (!(S.st = calloc(ST_MAX, sizeof(*S.st))) || ts_init(&ts, "control-jobs") < 0 ||
	    ts_merge(&ts, "{\"network\": {\"http_timeout_ms\": 3000, \"http_concurrency\": %d},"
		     " \"intervals\": {\"heartbeat_seconds\": 1},"
		     " \"control\": {\"job_timeout_seconds\": 10}}", CONCURRENCY) < 0)
		return -1;
	S.last_st = ST_BASE - 1;
	if (start_sim() < 0) {
		fprintf(stderr, "minersim: no fleet or no keys; see %s/minersim.log\n", ts.dir);
		return -1;
	}
	/* the figure's fake miner listens on 127.0.0.1: inside the subnets
	 * too, or pollerd refuses its jobs */
	if (ts_merge(&ts, "{\"network\": {\"subnets\": [\"" SUBNET "\", \"127.0.0.1/32\"]}}") < 0)
		return -1;
	/* the test is apid: it listens, pollerd dials */
	if (!(S.sub = tl_apid_listen(&ts, "events", &o)) ||
	    !(S.push_status = tl_apid_listen(&ts, "jobs_status", &o)) ||
	    !(S.push_control = tl_apid_listen(&ts, "jobs_control", &o)) ||
	    !(S.pollerd = ts_start(&ts, "pollerd", NULL, NULL, NULL)))
		return -1;
	if (tl_wait_until(10000, connected, NULL) < 0) {
		fprintf(stderr, "pollerd did not connect; see %s\n", S.pollerd->log);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_down(&ts, !passed);          /* pollerd, then minersim */
	fake_stop();
	hive_bus_close(S.push_control);
	hive_bus_close(S.push_status);
	hive_bus_close(S.sub);
	json_decref(S.counters);
	free(S.st);
	return 0;
}

/* ---------------------------------------------------------------- every kind */

/* A preset of m's model's ladder that m does not run. */
static const char *other_preset(const struct miner *m)
{
	const char *a = strcmp(m->model, "s19") == 0 ? "1900" : "2300";
	const char *b = strcmp(m->model, "s19") == 0 ? "2100" : "2500";

	return strcmp(m->preset, a) == 0 ? b : a;
}

static long long ok_job(const struct miner *m, const char *kind, const char *preset,
			struct ctl **out)
{
	long long id = push_control(m, kind, preset, 5000);

	*out = answer(id, true);
	S.sent_ok++;
	assert_string_equal((*out)->kind, kind);
	assert_string_equal((*out)->mac, m->mac);
	return id;
}

static void every_kind_on_each_model(void **state)
{
	static const char *const models[] = { "s19", "s19jpro" };

	(void)state;
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		struct miner *m = pick(models[i]);
		const char *preset = other_preset(m);
		long long before[C_N], st_id;
		struct ctl *c;
		json_t *t;

		wait_state(m, "mining", 5000);

		/* set_preset: the firmware (applying live) asks for a restart */
		counts(m, before);
		ok_job(m, "set_preset", preset, &c);
		assert_int_equal(c->restart_required, 1);
		assert_int_equal(c->restarted, 1);
		assert_true(c->reboot_after == HIVE_MSG_NO_INT);
		expect_counts(m, before, (const int[C_N]){ 1, 1, 1, 0, 0, 0 }, "set_preset");
		t = truth(m);
		assert_string_equal(tstr(t, "preset"), preset);
		assert_string_equal(tstr(t, "preset_set_by"), "api");
		json_decref(t);
		wait_state(m, "mining", 8000);

		/* restart: the status shows a state that began after it */
		counts(m, before);
		ok_job(m, "restart", NULL, &c);
		assert_int_equal(c->restart_required, -1);
		assert_int_equal(c->restarted, -1);
		expect_counts(m, before, (const int[C_N]){ 0, 0, 1, 0, 0, 0 }, "restart");
		st_id = push_status(m, true);
		if (tl_wait_until(ANSWER_MS, st_answered, &st_id) < 0)
			fail_msg("status job %lld: no answer", st_id);
		if (S.st[st_id - ST_BASE].state_time > 5)
			fail_msg("%s after a restart: %s for %lld s", m->mac,
				 S.st[st_id - ST_BASE].state, S.st[st_id - ST_BASE].state_time);
		wait_state(m, "mining", 8000);

		/* pause, and the status that shows it */
		counts(m, before);
		ok_job(m, "pause", NULL, &c);
		expect_counts(m, before, (const int[C_N]){ 0, 0, 0, 1, 0, 0 }, "pause");
		t = truth(m);
		assert_string_equal(tstr(t, "state"), "stopped");
		assert_true(json_is_true(json_object_get(t, "paused")));
		json_decref(t);
		st_id = push_status(m, true);
		if (tl_wait_until(ANSWER_MS, st_answered, &st_id) < 0)
			fail_msg("status job %lld: no answer", st_id);
		assert_int_equal(S.st[st_id - ST_BASE].results, 1);
		assert_string_equal(S.st[st_id - ST_BASE].state, "stopped");
		assert_string_equal(S.st[st_id - ST_BASE].description, "paused");

		/* resume */
		counts(m, before);
		ok_job(m, "resume", NULL, &c);
		expect_counts(m, before, (const int[C_N]){ 0, 0, 0, 0, 1, 0 }, "resume");
		t = truth(m);
		assert_false(json_is_true(json_object_get(t, "paused")));
		assert_string_not_equal(tstr(t, "state"), "stopped");
		json_decref(t);
		wait_state(m, "mining", 8000);

		/* reboot: answered {"after":0}, then gone */
		counts(m, before);
		ok_job(m, "reboot", NULL, &c);
		assert_int_equal(c->reboot_after, 0);
		assert_int_equal(c->restart_required, -1);
		expect_counts(m, before, (const int[C_N]){ 0, 0, 0, 0, 0, 1 }, "reboot");
		t = truth(m);
		assert_string_equal(tstr(t, "state"), "rebooting");
		json_decref(t);
		printf("figure: %s %s: set_preset %s (+restart), restart, pause (status: stopped/"
		       "paused), resume, reboot, each one firmware call, each result with its "
		       "action id\n", m->model, m->mac, preset);
	}
}

/* ---------------------------------------------------------------- preset-apply modes */

static void preset_on_restart_and_quiet_firmware(void **state)
{
	struct miner *rm = pick("s19jpro"), *qm = pick("s19");
	long long before[C_N];
	struct ctl *c;
	char path[128];
	json_t *t;

	(void)state;
	/* applies at the next restart: asks for one, pollerd sends it, it runs */
	snprintf(path, sizeof(path), "/sim/miners/%s/preset-apply", rm->mac);
	admin_post(path, "{\"mode\":\"restart\"}");
	wait_state(rm, "mining", 5000);
	counts(rm, before);
	ok_job(rm, "set_preset", other_preset(rm), &c);
	assert_int_equal(c->restart_required, 1);
	assert_int_equal(c->restarted, 1);
	expect_counts(rm, before, (const int[C_N]){ 1, 1, 1, 0, 0, 0 }, "set_preset (restart mode)");
	t = truth(rm);
	assert_string_equal(tstr(t, "preset"), other_preset(rm));
	assert_true(json_is_null(json_object_get(t, "pending_preset")));
	json_decref(t);

	/* applies by itself: no restart asked, none sent */
	snprintf(path, sizeof(path), "/sim/miners/%s/preset-apply", qm->mac);
	admin_post(path, "{\"mode\":\"quiet\"}");
	wait_state(qm, "mining", 5000);
	counts(qm, before);
	ok_job(qm, "set_preset", other_preset(qm), &c);
	assert_int_equal(c->restart_required, 0);
	assert_int_equal(c->restarted, 0);
	expect_counts(qm, before, (const int[C_N]){ 1, 0, 0, 0, 0, 0 }, "set_preset (quiet mode)");
	t = truth(qm);
	assert_string_equal(tstr(t, "pending_preset"), other_preset(qm));
	json_decref(t);
}

/* ---------------------------------------------------------------- deadlines */

static long long counter(const char *name)
{
	const json_t *v = S.counters ? json_object_get(S.counters, name) : NULL;

	return v ? (long long)json_integer_value(v) : 0;
}

static bool expired_counted(void *arg)
{
	long long want = *(long long *)arg;

	drain();
	return counter("control_jobs_expired") >= want;
}

static void late_jobs_are_not_run(void **state)
{
	struct miner *m = pick(NULL);
	long long before[C_N], want, late[3];

	(void)state;
	drain();
	counts(m, before);
	want = counter("control_jobs_expired") + 3;
	late[0] = push_control(m, "reboot", NULL, -60000);
	late[1] = push_control(m, "set_preset", other_preset(m), -1);
	late[2] = push_control(m, "pause", NULL, -1000);
	S.sent_expired += 3;
	if (tl_wait_until(ANSWER_MS, expired_counted, &want) < 0)
		fail_msg("control_jobs_expired %lld, want %lld", counter("control_jobs_expired"),
			 want);
	/* a job after them is answered: they are behind us, never run */
	{
		struct ctl *c;

		ok_job(m, "resume", NULL, &c);
	}
	expect_counts(m, before, (const int[C_N]){ 0, 0, 0, 0, 1, 0 }, "late jobs");
	for (int i = 0; i < 3; i++)
		if (S.ctl[late[i]].results + S.ctl[late[i]].failed + S.ctl[late[i]].errors)
			fail_msg("late job %lld was answered", late[i]);
}

/* ---------------------------------------------------------------- firmware errors */

static struct ctl *failing_job(const struct miner *m, const char *kind, const char *preset,
			       const char *err_kind, long long http_status)
{
	long long id = push_control(m, kind, preset, 5000);
	struct ctl *c = answer(id, false);

	S.sent_ok++;
	if (c->errors != 1)
		fail_msg("job %lld: %d hive.miner.error op=control, want 1", id, c->errors);
	assert_string_equal(c->error_op, "control");
	assert_string_equal(c->error_kind, err_kind);
	assert_string_equal(c->failed_kind, err_kind);
	if (http_status)
		assert_int_equal(c->http_status, http_status);
	else
		assert_true(c->http_status == HIVE_MSG_NO_INT);
	return c;
}

/* endpoints: a JSON list's items, or NULL for all */
static void fault(const struct miner *m, const char *kind, const char *endpoints)
{
	if (endpoints)
		admin_post("/sim/fault", "{\"target\":\"%s\",\"kind\":\"%s\",\"endpoints\":[%s]}",
			   m->mac, kind, endpoints);
	else
		admin_post("/sim/fault", "{\"target\":\"%s\",\"kind\":\"%s\"}", m->mac, kind);
}

static void firmware_errors_fail_the_job(void **state)
{
	struct miner *a = pick("s19"), *b = pick("s19jpro"), *c = pick(NULL), *d = pick(NULL);
	long long before[C_N];
	struct ctl *r;
	json_t *t;

	(void)state;
	/* 500 on mining control: the call does not act */
	fault(a, "http500", "\"mining\"");
	counts(a, before);
	failing_job(a, "restart", NULL, "http", 500);
	failing_job(a, "pause", NULL, "http", 500);
	expect_counts(a, before, (const int[C_N]){ 0 }, "restart, pause under http500");

	/* the preset accepted, then the restart it needs fails: the job fails
	 * with the restart's error, and no call is made twice */
	counts(a, before);
	r = failing_job(a, "set_preset", other_preset(a), "http", 500);
	if (!strstr(r->message, "mining/restart") || !strstr(r->message, "preset was accepted"))
		fail_msg("message \"%s\" does not say the restart failed after the preset",
			 r->message);
	expect_counts(a, before, (const int[C_N]){ 1, 1, 0, 0, 0, 0 },
		      "set_preset, restart under http500");

	/* 500 on /settings */
	fault(b, "http500", "\"settings\"");
	counts(b, before);
	failing_job(b, "set_preset", other_preset(b), "http", 500);
	expect_counts(b, before, (const int[C_N]){ 0 }, "set_preset under http500");
	admin_post("/sim/fault", "{\"target\":\"%s\",\"kind\":\"none\"}", b->mac);

	/* a preset the model does not have: 400, counted by the firmware */
	counts(b, before);
	failing_job(b, "set_preset", "12345", "http", 400);
	expect_counts(b, before, (const int[C_N]){ 1, 0, 0, 0, 0, 0 }, "unknown preset");
	t = truth(b);
	assert_string_equal(tstr(t, "preset"), b->preset);
	json_decref(t);

	/* nobody there */
	fault(c, "offline", NULL);
	counts(c, before);
	failing_job(c, "reboot", NULL, "refused", 0);
	expect_counts(c, before, (const int[C_N]){ 0 }, "reboot of an offline miner");
	admin_post("/sim/fault", "{\"target\":\"%s\",\"kind\":\"none\"}", c->mac);

	/* the reboot acts, its answer is cut: an error, and one reboot only */
	fault(d, "reset", "\"system/reboot\"");
	counts(d, before);
	failing_job(d, "reboot", NULL, "reset", 0);
	tl_sleep_ms(300);
	expect_counts(d, before, (const int[C_N]){ 0, 0, 0, 0, 0, 1 }, "reboot answered by a reset");

	admin_post("/sim/reset", "{}");
}

/* ---------------------------------------------------------------- bad jobs */

static bool bad_counted(void *arg)
{
	long long want = *(long long *)arg;

	drain();
	return counter("control_jobs_bad") >= want;
}

static void a_set_preset_without_preset_is_bad(void **state)
{
	struct miner *m = pick(NULL);
	long long before[C_N], id, want = counter("control_jobs_bad") + 1;
	struct ctl *c;

	(void)state;
	counts(m, before);
	id = push_control(m, "set_preset", NULL, 5000);
	S.sent_bad++;
	c = answer(id, false);
	assert_string_equal(c->failed_kind, "bad_field");
	assert_int_equal(c->errors, 0);             /* not the miner's error */
	if (tl_wait_until(ANSWER_MS, bad_counted, &want) < 0)
		fail_msg("control_jobs_bad %lld, want %lld", counter("control_jobs_bad"), want);
	expect_counts(m, before, (const int[C_N]){ 0 }, "bad job");
}

/* ---------------------------------------------------------------- heartbeat */

struct want_counters {
	long long received, done, failed, expired, bad;
};

static bool counters_are(void *arg)
{
	const struct want_counters *w = arg;

	drain();
	return counter("control_jobs_received") == w->received &&
	       counter("control_jobs_done") == w->done &&
	       counter("control_jobs_failed") == w->failed &&
	       counter("control_jobs_expired") == w->expired &&
	       counter("control_jobs_bad") == w->bad;
}

static void heartbeat_counts_control_jobs(void **state)
{
	struct want_counters w = { 0 };

	(void)state;
	for (long long id = 1; id <= S.last_ctl; id++) {
		w.done += S.ctl[id].results;
		w.failed += S.ctl[id].failed && S.ctl[id].failed_kind[0] &&
			    strcmp(S.ctl[id].failed_kind, "bad_field") != 0;
	}
	w.expired = S.sent_expired;
	w.bad = S.sent_bad;
	w.received = S.sent_ok + S.sent_expired;
	assert_int_equal(w.done + w.failed, S.sent_ok);
	if (tl_wait_until(5000, counters_are, &w) < 0)
		fail_msg("heartbeat control_jobs_received/done/failed/expired/bad = %lld/%lld/%lld/"
			 "%lld/%lld, want %lld/%lld/%lld/%lld/%lld",
			 counter("control_jobs_received"), counter("control_jobs_done"),
			 counter("control_jobs_failed"), counter("control_jobs_expired"),
			 counter("control_jobs_bad"), w.received, w.done, w.failed, w.expired, w.bad);
	assert_int_equal(counter("control_failed_http"), 5);
	assert_int_equal(counter("control_failed_refused"), 1);
	assert_int_equal(counter("control_failed_reset"), 1);
	/* the status queue's own counters are apart */
	assert_true(counter("jobs_received") >= 2);
}

/* ---------------------------------------------------------------- the figure */

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long pct(long long *v, int n, int p)
{
	if (n == 0)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp_ll);
	return v[(n - 1) * p / 100];
}

static bool all_status_answered(void *arg)
{
	(void)arg;
	drain();
	return S.st_answered >= S.last_st - (ST_BASE - 1);
}

/* Keeps pollerd's status queue full for run_ms (outstanding status jobs
 * topped up to `outstanding` over 1,000 miners) and, once it is, pushes a
 * control job every 200 ms to the miner that keeps time; prints the figure.
 * slow_s > 0: every /summary answers that late, so the cap stays full while
 * the loop is mostly idle; 0: fast answers, a flood that keeps pollerd's
 * loop busy. */
static void saturate(const char *label, int slow_s, int outstanding, int run_ms)
{
	enum { NCTL = 64, FULL_MS = 1500 };
	long long ids[NCTL], call[NCTL], e2e[NCTL], st_lat[8192];
	long long first_st = S.last_st + 1, st0, n_st, out_min = -1;
	int nctl = 0, nst = 0, next = 0;
	int64_t t0, t_end, next_ctl;
	double cpu0, cpu;

	if (slow_s > 0)
		admin_post("/sim/fault", "{\"target\":\"all\",\"kind\":\"slow\",\"seconds\":%d,"
			   "\"endpoints\":[\"summary\"]}", slow_s);
	drain();
	st0 = S.st_answered;
	S.hb_in_flight_max = 0;
	cpu0 = tl_proc_cpu_s(S.pollerd->pid);
	t0 = hive_mono_ms();
	t_end = t0 + run_ms;
	next_ctl = t0 + FULL_MS;
	while (hive_mono_ms() < t_end) {
		long long out;

		drain();
		out = (S.last_st - (ST_BASE - 1)) - S.st_answered;
		while (out < outstanding && push_status(&S.m[next++ % S.n], false))
			out++;
		if (hive_mono_ms() >= next_ctl && nctl < NCTL) {
			if (out_min < 0 || out < out_min)
				out_min = out;
			ids[nctl++] = push_control_to("aa:bb:cc:86:00:01", "127.0.0.1", fake.port,
						      NULL, "resume", NULL, 5000);
			S.sent_ok++;
			next_ctl += 200;
		}
		tl_sleep_ms(1);
	}
	cpu = (tl_proc_cpu_s(S.pollerd->pid) - cpu0) * 1000.0 / run_ms;
	for (int i = 0; i < nctl; i++) {
		struct ctl *c = answer(ids[i], true);
		int64_t seen = atomic_load(&fake.seen_ms[ids[i]]);

		if (!seen)
			fail_msg("control job %lld: answered, but the miner never saw the call", ids[i]);
		call[i] = seen - c->pushed_ms;
		e2e[i] = c->answered_ms - c->pushed_ms;
	}
	n_st = S.st_answered - st0;
	if (slow_s > 0)
		admin_post("/sim/reset", "{}");
	if (tl_wait_until(60000, all_status_answered, NULL) < 0)
		fail_msg("status jobs: %lld of %lld answered", S.st_answered,
			 S.last_st - (ST_BASE - 1));
	/* status jobs pushed while control jobs were: how long they took */
	for (long long id = first_st; id <= S.last_st && nst < 8192; id++) {
		const struct st *st = &S.st[id - ST_BASE];

		if (st->pushed_ms >= t0 + FULL_MS && st->pushed_ms < t_end && st->results)
			st_lat[nst++] = st->answered_ms - st->pushed_ms;
	}
	{
		long long c50 = pct(call, nctl, 50), c90 = pct(call, nctl, 90);
		long long cmax = pct(call, nctl, 100);
		long long e50 = pct(e2e, nctl, 50), emax = pct(e2e, nctl, 100);
		long long s50 = pct(st_lat, nst, 50);

		printf("figure: control job PUSH -> firmware call p50 %lld ms, p90 %lld ms, max "
		       "%lld ms (-> hive.action.result p50 %lld ms, max %lld ms), %d jobs, while "
		       "pollerd had %lld jobs in flight (heartbeat max; status cap %d), at least "
		       "%lld status jobs pushed and not answered, and used %.0f%% of a core [%s]; "
		       "status jobs meanwhile: %lld answered in %d ms, PUSH -> result p50 %lld ms\n",
		       c50, c90, cmax, e50, emax, nctl, S.hb_in_flight_max, CONCURRENCY, out_min,
		       cpu * 100, label, n_st, run_ms, s50);
		/* the status queue was saturated ... */
		if (out_min < outstanding / 2 || s50 < 1000)
			fail_msg("status jobs did not queue (%lld outstanding, p50 %lld ms)", out_min,
				 s50);
		/* A heartbeat counts at one instant: with every answer held 2 s,
		 * a wave of them ends together and their successors are still
		 * being started (946 of 1,000 seen under the sanitizers). */
		if (slow_s > 0 && S.hb_in_flight_max < CONCURRENCY * 9 / 10)
			fail_msg("pollerd had at most %lld jobs in flight: the cap (%d) was not "
				 "nearly full", S.hb_in_flight_max, CONCURRENCY);
		/* ... and control jobs did not wait behind it */
		if (cmax > 1000 || cmax * 2 > s50)
			fail_msg("a control job took %lld ms from PUSH to the firmware call (status "
				 "jobs p50 %lld ms)", cmax, s50);
	}
}

static void control_jobs_skip_the_status_queue(void **state)
{
	(void)state;
	if (fake_start() < 0)
		fail_msg("cannot listen on 127.0.0.1");
	saturate("1000 miners, every /summary held 2 s: the cap full", 2, 3000, 6000);
	saturate("1000 miners answering at once: the loop busy", 0, 4000, 6000);
}

/* ---------------------------------------------------------------- stop */

static bool reloaded(void *arg)
{
	char *log = tl_read_file(S.pollerd->log);
	const char *p = log;
	int n = 0;

	(void)arg;
	while (p && (p = strstr(p, "worker_configured"))) {
		n++;
		p++;
	}
	free(log);
	return n >= 2;                  /* both queues */
}

static void reloads_and_stops_cleanly(void **state)
{
	struct miner *m = pick(NULL);
	struct ctl *c;
	int64_t t0;
	int st;

	(void)state;
	/* SIGHUP: both queues take the config again; control jobs still run */
	assert_true(S.pollerd->pid > 0);
	assert_int_equal(kill(S.pollerd->pid, SIGHUP), 0);
	if (tl_wait_until(5000, reloaded, NULL) < 0)
		fail_msg("no worker_configured line for both queues; see %s", S.pollerd->log);
	ok_job(m, "pause", NULL, &c);
	ok_job(m, "resume", NULL, &c);
	t0 = hive_mono_ms();
	st = ts_stop(&ts, "pollerd", SIGTERM, 5000);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("pollerd ended with status 0x%x; see %s", st, S.pollerd->log);
	printf("figure: %d event bodies decoded with the tables; pollerd stopped in %lld ms\n",
	       S.bodies, (long long)(hive_mono_ms() - t0));
	passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_kind_on_each_model),
		cmocka_unit_test(preset_on_restart_and_quiet_firmware),
		cmocka_unit_test(late_jobs_are_not_run),
		cmocka_unit_test(firmware_errors_fail_the_job),
		cmocka_unit_test(a_set_preset_without_preset_is_bad),
		cmocka_unit_test(heartbeat_counts_control_jobs),
		cmocka_unit_test(control_jobs_skip_the_status_queue),
		cmocka_unit_test(reloads_and_stops_cleanly),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
