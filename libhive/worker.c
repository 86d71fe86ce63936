/* worker — see hive/worker.h and docs/workers.md.
 *
 * The job socket's receive fd is watched only while the worker has room:
 * at the cap it is unwatched, so the one job nng keeps for this connection
 * stays there and push0 routes the rest to workers that are reading. Each
 * job ended (done or failed) frees a slot and watches the fd again.
 */
#include "hive/worker.h"
#include "hive/bus.h"
#include "hive/json.h"
#include "hive/log.h"
#include "hive/mac.h"
#include "hive/msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A job with less time than this before its deadline is dropped as expired:
 * a request cut that short would only blame the miner for our backlog. */
#define WORKER_MIN_TIMEOUT_MS 500
#define WORKER_FIRST_BEAT_MS  1000

struct hive_worker {
	const struct hive_daemon *d;
	struct hive_loop *loop;
	struct hive_worker_spec spec;
	struct hive_bus *jobs;          /* PULL */
	struct hive_bus *events;        /* PUBLISH */
	char jobs_url[HIVE_CFG_URL_MAX];
	char events_url[HIVE_CFG_URL_MAX];
	int jobs_fd;
	bool watching;
	int cap;                        /* jobs in flight at most */
	int64_t beat_timer;
	struct hive_worker_job *live;   /* in flight */
	struct hive_worker_stats st;
	double lat_sum;                 /* since the last heartbeat */
	uint64_t lat_n;
};

static void on_jobs(struct hive_loop *loop, int fd, int events, void *arg);

/* ---------------------------------------------------------------- bodies */

json_t *hive_worker_heartbeat_body(const struct hive_daemon *d, json_t *counters,
				   int in_flight, double latency_ms)
{
	json_t *b;

	if (!counters)
		return NULL;
	b = json_pack("{s:s, s:s, s:I, s:I, s:o, s:i, s:f}", "daemon", d->name, "host", d->host,
		      "pid", (json_int_t)getpid(), "started", (json_int_t)d->boot,
		      "counters", counters, "in_flight", in_flight, "latency_ms",
		      latency_ms < 0 ? 0.0 : latency_ms);
	return b;
}

json_t *hive_worker_error_body(const char *mac, const char *ip, const char *op,
			       const struct hive_fw_err *err, long long job)
{
	json_t *b;

	b = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "mac", mac ? mac : "", "ip",
		      ip ? ip : "", "op", op ? op : "", "kind", hive_fw_err_name(err->kind),
		      "http_status", err->http_status, "message", err->msg);
	if (b && job > 0 && json_object_set_new(b, "job", json_integer(job)) != 0) {
		json_decref(b);
		return NULL;
	}
	return b;
}

/* ---------------------------------------------------------------- publish */

int hive_worker_publish(struct hive_worker *w, const char *topic, json_t *body)
{
	if (!body || hive_bus_send(w->events, topic, body, false) != HIVE_BUS_OK) {
		w->st.publish_failed++;
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- flow control */

static void watch_jobs(struct hive_worker *w)
{
	if (w->watching || w->jobs_fd < 0 || w->st.in_flight >= w->cap)
		return;
	if (hive_loop_watch(w->loop, w->jobs_fd, HIVE_LOOP_READ, on_jobs, w) == 0)
		w->watching = true;
	else
		log_warn("worker_watch_failed url=%s", w->jobs_url);
}

static void unwatch_jobs(struct hive_worker *w)
{
	if (!w->watching)
		return;
	hive_loop_unwatch(w->loop, w->jobs_fd);
	w->watching = false;
}

/* Takes job off the live list and frees it; makes room for the next. */
static void job_end(struct hive_worker_job *job)
{
	struct hive_worker *w = job->w;
	double lat = (double)(hive_now_ms() - job->started_ms);

	if (job->prev)
		job->prev->next = job->next;
	else
		w->live = job->next;
	if (job->next)
		job->next->prev = job->prev;
	w->st.in_flight--;
	w->lat_sum += lat;
	w->lat_n++;
	free(job);
	watch_jobs(w);
}

static void complain_key(const struct hive_worker_job *job, char *key, size_t len)
{
	snprintf(key, len, "%s %s", job->mac, job->w->spec.op);
}

void hive_worker_done(struct hive_worker_job *job, json_t *body)
{
	struct hive_worker *w = job->w;
	char key[64];

	if (!body || json_object_set_new(body, "job", json_integer(job->id)) ||
	    json_object_set_new(body, "mac", json_string(job->mac)) ||
	    json_object_set_new(body, "ip", json_string(job->ip)) ||
	    json_object_set_new(body, "latency_ms",
				json_integer(hive_now_ms() - job->started_ms))) {
		struct hive_fw_err err = { .kind = HIVE_FW_ERR_INTERNAL };

		json_decref(body);
		snprintf(err.msg, sizeof(err.msg), "%s: out of memory building the result",
			 w->spec.op);
		hive_worker_fail(job, &err);
		return;
	}
	hive_worker_publish(w, w->spec.result_topic, body);
	json_decref(body);
	w->st.done++;
	complain_key(job, key, sizeof(key));
	hive_log_recovered(key, "miner_ok mac=%s ip=%s op=%s", job->mac, job->ip, w->spec.op);
	job_end(job);
}

void hive_worker_fail(struct hive_worker_job *job, const struct hive_fw_err *err)
{
	struct hive_worker *w = job->w;
	json_t *b;
	char key[64], q[600];

	b = hive_worker_error_body(job->mac, job->ip, w->spec.op, err, job->id);
	hive_worker_publish(w, HIVE_TOPIC_MINER_ERROR, b);
	json_decref(b);
	b = json_pack("{s:I, s:s, s:s}", "job", (json_int_t)job->id, "mac", job->mac, "kind",
		      hive_fw_err_name(err->kind));
	hive_worker_publish(w, HIVE_TOPIC_JOB_FAILED, b);
	json_decref(b);
	w->st.failed++;
	if ((unsigned)err->kind < HIVE_FW_ERR_KINDS)
		w->st.failed_by[err->kind]++;
	complain_key(job, key, sizeof(key));
	hive_log_complain(key, "miner_error mac=%s ip=%s op=%s kind=%s http_status=%d message=%s",
			  job->mac, job->ip, w->spec.op, hive_fw_err_name(err->kind),
			  err->http_status, hive_log_quote(err->msg, q, sizeof(q)));
	job_end(job);
}

/* ---------------------------------------------------------------- jobs */

/* Reads a job body into job. 0, or -1 with a message naming the field. */
static int job_decode(struct hive_worker *w, const json_t *body, struct hive_worker_job *job,
		      char *err, size_t errlen)
{
	char mac[32];
	unsigned char addr[16];
	long long port = 0, deadline = 0;

	if (hive_json_int(body, "job", true, &job->id, err, errlen) < 0 ||
	    hive_json_str(body, "mac", true, mac, sizeof(mac), err, errlen) < 0)
		return -1;
	if (hive_mac_normalise(mac, job->mac) < 0) {
		snprintf(err, errlen, "mac: not a MAC address");
		return -1;
	}
	if (hive_json_str(body, "ip", true, job->ip, sizeof(job->ip), err, errlen) < 0 ||
	    hive_json_str(body, "api_key", true, job->api_key, sizeof(job->api_key), err,
			  errlen) < 0 ||
	    hive_json_int(body, "port", false, &port, err, errlen) < 0 ||
	    hive_json_int(body, "deadline", false, &deadline, err, errlen) < 0 ||
	    hive_json_str(body, "endpoint", false, job->endpoint, sizeof(job->endpoint), err,
			  errlen) < 0)
		return -1;
	if (inet_pton(AF_INET, job->ip, addr) != 1 && inet_pton(AF_INET6, job->ip, addr) != 1) {
		snprintf(err, errlen, "ip: not an IP address");
		return -1;
	}
	if (!job->api_key[0]) {
		snprintf(err, errlen, "api_key: empty");
		return -1;
	}
	if (port < 0 || port > 65535) {
		snprintf(err, errlen, "port: %lld out of range", port);
		return -1;
	}
	if (job->endpoint[0] && strcmp(job->endpoint, "chains") != 0 &&
	    strcmp(job->endpoint, "boards") != 0) {
		snprintf(err, errlen, "endpoint: \"%s\" is neither chains nor boards",
			 job->endpoint);
		return -1;
	}
	job->port = port > 0 ? (int)port : w->d->cfg.network.port;
	job->deadline_ms = deadline;
	return 0;
}

/* A job that cannot be read: counted, and reported as failed when it says
 * which job it was, so the scheduler frees the miner at once. */
static void job_bad(struct hive_worker *w, const struct hive_envelope *env, const char *why)
{
	long long id = 0;
	char mac[32], norm[18], e[8], q[300];
	json_t *b;

	w->st.bad++;
	hive_log_complain("worker bad job", "job_rejected topic=%s reason=%s", env->topic,
			  hive_log_quote(why, q, sizeof(q)));
	if (hive_json_int(env->body, "job", true, &id, e, sizeof(e)) != 0 ||
	    hive_json_str(env->body, "mac", true, mac, sizeof(mac), e, sizeof(e)) != 0 ||
	    hive_mac_normalise(mac, norm) < 0)
		return;
	b = json_pack("{s:I, s:s, s:s}", "job", (json_int_t)id, "mac", norm, "kind",
		      hive_fw_err_name(HIVE_FW_ERR_BAD_FIELD));
	hive_worker_publish(w, HIVE_TOPIC_JOB_FAILED, b);
	json_decref(b);
}

static void job_take(struct hive_worker *w, const struct hive_envelope *env)
{
	struct hive_worker_job *job;
	char err[256];
	long long now = hive_wall_ms(), left;

	if (strcmp(env->topic, w->spec.job_topic) != 0) {
		snprintf(err, sizeof(err), "unexpected topic, want %s", w->spec.job_topic);
		job_bad(w, env, err);
		return;
	}
	if (!(job = calloc(1, sizeof(*job)))) {
		log_warn("worker_job_alloc_failed");
		return;
	}
	if (job_decode(w, env->body, job, err, sizeof(err)) < 0) {
		free(job);
		job_bad(w, env, err);
		return;
	}
	w->st.received++;
	if (job->deadline_ms > 0 && job->deadline_ms - now < WORKER_MIN_TIMEOUT_MS) {
		w->st.expired++;
		log_debug("job_expired job=%lld mac=%s late_ms=%lld", job->id, job->mac,
			  now - job->deadline_ms);
		free(job);
		return;
	}
	job->w = w;
	job->started_ms = hive_now_ms();
	job->timeout_ms = w->d->cfg.network.http_timeout_ms;
	if (job->deadline_ms > 0) {
		left = job->deadline_ms - now;
		if (left < job->timeout_ms)
			job->timeout_ms = (int)left;
	}
	job->next = w->live;
	if (w->live)
		w->live->prev = job;
	w->live = job;
	w->st.in_flight++;
	if (w->spec.start(job, w->spec.arg) < 0) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(e.msg, sizeof(e.msg), "%s: could not start the request: %s", w->spec.op,
			 strerror(errno ? errno : ENOMEM));
		hive_worker_fail(job, &e);
	}
}

static void on_jobs(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct hive_worker *w = arg;
	struct hive_envelope env;
	int rc;

	(void)loop;
	(void)fd;
	(void)events;
	while (w->st.in_flight < w->cap) {
		memset(&env, 0, sizeof(env));
		rc = hive_bus_recv(w->jobs, &env, 0);
		if (rc == HIVE_BUS_REJECTED) {
			w->st.bad++;
			continue;
		}
		if (rc != HIVE_BUS_OK)
			return;
		job_take(w, &env);
		hive_envelope_clear(&env);
	}
	unwatch_jobs(w);
}

/* ---------------------------------------------------------------- heartbeat */

static json_t *counters(struct hive_worker *w)
{
	json_t *c;

	c = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I}", "jobs_received",
		      (json_int_t)w->st.received, "jobs_done", (json_int_t)w->st.done,
		      "jobs_failed", (json_int_t)w->st.failed, "jobs_expired",
		      (json_int_t)w->st.expired, "jobs_bad", (json_int_t)w->st.bad,
		      "publish_failed", (json_int_t)w->st.publish_failed, "in_flight",
		      w->st.in_flight, "latency_ms", (json_int_t)(w->st.latency_ms + 0.5));
	if (!c)
		return NULL;
	for (int k = 1; k < HIVE_FW_ERR_KINDS; k++) {
		char name[48];

		if (!w->st.failed_by[k])
			continue;
		snprintf(name, sizeof(name), "failed_%s", hive_fw_err_name((enum hive_fw_err_kind)k));
		json_object_set_new(c, name, json_integer((json_int_t)w->st.failed_by[k]));
	}
	return c;
}

static int64_t on_beat(struct hive_loop *loop, void *arg)
{
	struct hive_worker *w = arg;
	json_t *b;

	(void)loop;
	if (w->lat_n > 0) {
		w->st.latency_ms = w->lat_sum / (double)w->lat_n;
		w->lat_sum = 0;
		w->lat_n = 0;
	}
	b = hive_worker_heartbeat_body(w->d, counters(w), w->st.in_flight, w->st.latency_ms);
	hive_worker_publish(w, HIVE_TOPIC_HEARTBEAT, b);
	json_decref(b);
	/* A job socket left unwatched by a failed watch gets another chance. */
	watch_jobs(w);
	return (int64_t)w->d->cfg.intervals.heartbeat_seconds * 1000;
}

/* ---------------------------------------------------------------- lifetime */

static void set_cap(struct hive_worker *w)
{
	w->cap = w->d->cfg.network.http_concurrency;
	if (w->cap < 1)
		w->cap = 1;
}

struct hive_worker *hive_worker_new(const struct hive_daemon *d, struct hive_loop *loop,
				    const struct hive_worker_spec *spec, char *err, size_t errlen)
{
	struct hive_worker *w;
	struct hive_bus_opts o;

	if (!d || !loop || !spec || !spec->start || !spec->jobs_url || !spec->job_topic ||
	    !spec->result_topic || !spec->op) {
		snprintf(err, errlen, "worker: incomplete specification");
		return NULL;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		snprintf(err, errlen, "worker: out of memory");
		return NULL;
	}
	w->d = d;
	w->loop = loop;
	w->spec = *spec;
	w->jobs_fd = -1;
	snprintf(w->jobs_url, sizeof(w->jobs_url), "%s", spec->jobs_url);
	snprintf(w->events_url, sizeof(w->events_url), "%s", d->cfg.bus.events);
	set_cap(w);

	memset(&o, 0, sizeof(o));
	o.listen = false;
	o.max_message_bytes = d->cfg.bus.max_message_bytes;
	o.send_timeout_ms = 1000;
	o.recv_timeout_ms = 0;
	o.source = d->source;
	o.boot = d->boot;
	/* One job buffered: a worker never sits on work others could do. */
	o.recvbuf = 1;
	if (!(w->jobs = hive_bus_open(HIVE_BUS_PULL, w->jobs_url, &o, err, errlen)))
		goto fail;
	o.recvbuf = 0;
	o.sendbuf = d->cfg.bus.sendbuf;
	if (!(w->events = hive_bus_open(HIVE_BUS_PUBLISH, w->events_url, &o, err, errlen)))
		goto fail;
	if ((w->jobs_fd = hive_bus_recv_fd(w->jobs)) < 0) {
		snprintf(err, errlen, "worker: %s: no receive descriptor", w->jobs_url);
		goto fail;
	}
	watch_jobs(w);
	if (!w->watching) {
		snprintf(err, errlen, "worker: cannot watch %s", w->jobs_url);
		goto fail;
	}
	if ((w->beat_timer = hive_loop_timer(loop, WORKER_FIRST_BEAT_MS, on_beat, w)) < 0) {
		snprintf(err, errlen, "worker: cannot arm the heartbeat");
		goto fail;
	}
	log_info("worker_ready jobs=%s events=%s in_flight_max=%d", w->jobs_url, w->events_url,
		 w->cap);
	return w;
fail:
	unwatch_jobs(w);
	hive_bus_close(w->jobs);
	hive_bus_close(w->events);
	free(w);
	return NULL;
}

/* The job queue a worker of job_topic dials. */
static const char *jobs_url(const struct hive_cfg *cfg, const char *job_topic)
{
	return strcmp(job_topic, HIVE_TOPIC_JOB_TELEMETRY) == 0 ? cfg->bus.jobs_telemetry
								 : cfg->bus.jobs_status;
}

void hive_worker_configure(struct hive_worker *w)
{
	const struct hive_cfg *cfg = &w->d->cfg;
	const char *now_jobs = jobs_url(cfg, w->spec.job_topic);

	set_cap(w);
	if (strcmp(now_jobs, w->jobs_url) != 0 || strcmp(cfg->bus.events, w->events_url) != 0)
		log_warnx("reload_partial reason=\"bus addresses are fixed at start; restart to apply\"");
	if (w->st.in_flight < w->cap)
		watch_jobs(w);
	log_info("worker_configured in_flight_max=%d", w->cap);
}

void hive_worker_free(struct hive_worker *w)
{
	struct hive_worker_job *job;

	if (!w)
		return;
	unwatch_jobs(w);
	if (w->beat_timer > 0)
		hive_loop_cancel(w->loop, w->beat_timer);
	while ((job = w->live) != NULL) {
		w->live = job->next;
		if (w->spec.abort)
			w->spec.abort(job, w->spec.arg);
		free(job);
	}
	/* The job socket last. nng 1.5.2 can hang for ever closing a socket
	 * a message reaches at that moment (nanomsg/nng#1636: here a job
	 * pushed by apid), and every close after that one hangs as well; the
	 * bus gives up on a close after a while. The events socket, which
	 * never receives, closes at once when it goes first, so a worker's
	 * exit waits for one stuck close at most, not two. */
	hive_bus_close(w->events);
	hive_bus_close(w->jobs);
	free(w);
}

int hive_worker_in_flight(const struct hive_worker *w)
{
	return w ? w->st.in_flight : 0;
}

void hive_worker_get_stats(const struct hive_worker *w, struct hive_worker_stats *out)
{
	*out = w->st;
}

/* ---------------------------------------------------------------- main */

int hive_worker_main(const struct hive_worker_main_spec *spec, int argc, char **argv)
{
	struct hive_daemon d;
	struct hive_worker_spec ws = spec->worker;
	struct hive_fw_opts fo = { 0 };
	struct hive_fw_client *fw;
	struct hive_loop *loop;
	struct hive_worker *w;
	char err[512];

	hive_daemon_start(&d, &spec->daemon, argc, argv);
	if (!(loop = hive_loop_new())) {
		log_errx("fatal reason=\"out of memory\"");
		return 1;
	}
	fo.max_in_flight = spec->requests_per_job * d.cfg.network.http_concurrency;
	fo.timeout_ms = d.cfg.network.http_timeout_ms;
	fo.max_body = spec->max_body;
	if (!(fw = hive_fw_client_new(loop, &fo))) {
		log_warn("fatal reason=\"cannot create the firmware client\"");
		return 1;
	}
	ws.jobs_url = jobs_url(&d.cfg, ws.job_topic);
	ws.arg = fw;
	if (!(w = hive_worker_new(&d, loop, &ws, err, sizeof(err)))) {
		log_errx("fatal reason=\"%s\"", err);
		return 1;
	}
	while (!hive_quit) {
		if (hive_loop_run_once(loop, 250) < 0) {
			log_warn("loop_failed");
			break;
		}
		if (hive_reload && hive_daemon_reload(&d))
			hive_worker_configure(w);
	}
	log_info("stopping in_flight=%d", hive_worker_in_flight(w));
	hive_fw_client_free(fw);
	hive_worker_free(w);
	hive_loop_free(loop);
	hive_daemon_finish(&d);
	return 0;
}
