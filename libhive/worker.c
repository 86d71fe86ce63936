/* worker — see hive/worker.h and docs/workers.md.
 *
 * A queue's job socket receive fd is watched only while the queue has
 * room: at its cap it is unwatched, so the one job nng keeps for this
 * connection stays there and push0 routes the rest to workers that are
 * reading. Each job ended (done or failed) frees a slot and watches the fd
 * again. Queues never share a slot, so a full queue of status jobs leaves a
 * control job's fd watched.
 *
 * A queue given a loop of its own runs on a thread of its own (pollerd's
 * control jobs: a round of the main loop can spend a few hundred ms on a
 * burst of status answers, and a control call needs two rounds to go out;
 * measured on one loop, 100-500 ms at the tail, on its own 1-10 ms).
 * Such a queue touches nothing of the main thread's but the events socket,
 * whose send is locked in libhive's bus, and its own counters and config
 * snapshot, which the heartbeat and a reload reach under the queue's mutex.
 */
#include "hive/worker.h"
#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A job with less time than this before its deadline is dropped as expired:
 * a request cut that short would only blame the miner for our backlog. */
#define WORKER_MIN_TIMEOUT_MS 500
#define WORKER_FIRST_BEAT_MS  1000
#define WORKER_QUEUES_MAX     2
/* After the goodbye, before the sockets close: nng sends it from a queue
 * of its own, and a socket closed at once may drop it. */
#define GOODBYE_PAUSE_MS      100

/* What the worker knows of a job kind; docs/workers.md has the table. */
static const struct job_kind {
	enum hive_msg_kind kind;
	size_t url_off;                 /* its queue's address in struct hive_cfg */
	const char *prefix;             /* of its counters: "" → jobs_received */
	bool start_deadline;            /* the deadline is when it may start at the
					 * latest (else when apid stops waiting) */
	const char *key;                /* its config key under bus (the state file) */
} job_kinds[] = {
	{ HIVE_MSG_JOB_STATUS, offsetof(struct hive_cfg, bus.jobs_status), "", false,
	  "jobs_status" },
	{ HIVE_MSG_JOB_TELEMETRY, offsetof(struct hive_cfg, bus.jobs_telemetry), "", false,
	  "jobs_telemetry" },
	{ HIVE_MSG_JOB_CONTROL, offsetof(struct hive_cfg, bus.jobs_control), "control_", true,
	  "jobs_control" },
};

/* What a queue reads of the config (a reload rewrites d->cfg on the main
 * thread). */
struct queue_cfg {
	int cap;                        /* jobs in flight at most */
	int port;                       /* network.port */
	int http_timeout_ms;
	int run_ms;                     /* control.job_timeout_seconds */
};

struct hive_worker_queue {
	struct hive_worker *w;
	const struct job_kind *k;
	struct hive_worker_spec spec;
	struct hive_loop *loop;         /* the worker's, or its own */
	struct hive_bus *jobs;          /* PULL */
	char jobs_url[HIVE_CFG_URL_MAX];
	size_t body_size;               /* of the job kind's struct */
	int jobs_fd;
	bool watching;
	struct hive_worker_job *live;   /* in flight */
	/* a queue with a loop of its own: its thread */
	bool threaded, running;
	pthread_t thread;
	atomic_bool stop;
	int wake_fd;                    /* eventfd that wakes its loop */
	/* under mu: what the heartbeat and a reload reach from the main thread */
	pthread_mutex_t mu;
	struct queue_cfg c;
	struct hive_subnet *subnets;    /* network.subnets, copied (a reload replaces it) */
	size_t n_subnets;
	struct hive_worker_stats st;
	double lat_sum;                 /* since the last heartbeat */
	uint64_t lat_n;
};

struct hive_worker {
	const struct hive_daemon *d;
	struct hive_loop *loop;
	struct hive_bus *events;        /* PUBLISH; its send is thread-safe */
	char events_url[HIVE_CFG_URL_MAX];
	int64_t beat_timer;
	_Atomic uint64_t publish_failed;
	double latency_ms;              /* the heartbeat's: every queue's jobs */
	struct hive_worker_queue *q[WORKER_QUEUES_MAX];
	int nq;
	/* the daemon's own counters (hive_worker_main_spec.counters) */
	json_t *(*more_counters)(void *state);
	void *more_state;
};

static void on_jobs(struct hive_loop *loop, int fd, int events, void *arg);
static bool ip_allowed(struct hive_worker_queue *q, const char *ip);

/* ---------------------------------------------------------------- bodies */

void hive_worker_heartbeat_fill(struct hive_msg_heartbeat *hb, const struct hive_daemon *d,
				json_t *counters, int in_flight, double latency_ms)
{
	hive_msg_init(HIVE_MSG_HEARTBEAT, hb);
	hb->daemon = d->name;
	hb->host = d->host;
	hb->pid = (long long)getpid();
	hb->started = d->boot;
	hb->counters = counters;
	hb->in_flight = in_flight;
	hb->latency_ms = latency_ms < 0 ? 0.0 : latency_ms;
}

void hive_worker_error_fill(struct hive_msg_miner_error *e, const char *mac, const char *ip,
			    const char *op, const struct hive_fw_err *err, long long job)
{
	hive_msg_init(HIVE_MSG_MINER_ERROR, e);
	snprintf(e->mac, sizeof(e->mac), "%s", mac ? mac : "");
	snprintf(e->ip, sizeof(e->ip), "%s", ip ? ip : "");
	e->op = op;
	e->kind = hive_fw_err_name(err->kind);
	if (err->http_status > 0)            /* 0: no HTTP answer arrived */
		e->http_status = err->http_status;
	e->message = err->msg;
	if (job > 0)
		e->job = job;
}

void hive_worker_goodbye_fill(struct hive_msg_goodbye *g, const struct hive_daemon *d)
{
	hive_msg_init(HIVE_MSG_GOODBYE, g);
	g->daemon = d->name;
	g->host = d->host;
	g->pid = (long long)getpid();
	g->started = d->boot;
	g->reason = "signal";
}

/* ---------------------------------------------------------------- publish */

/* Sends b (an encoded body of kind; NULL when encoding failed) and drops
 * it. 0 / -1. */
static int send_json(struct hive_worker *w, enum hive_msg_kind kind, json_t *b)
{
	int rc = -1;

	if (b && hive_bus_send(w->events, hive_msg_topic(kind)->topic, b, false) == HIVE_BUS_OK)
		rc = 0;
	else
		atomic_fetch_add(&w->publish_failed, 1);
	json_decref(b);
	return rc;
}

int hive_worker_publish(struct hive_worker *w, enum hive_msg_kind kind, const void *body)
{
	return send_json(w, kind, hive_msg_encode(kind, body));
}

/* ---------------------------------------------------------------- counters */

/* Adds one to a counter of q's. */
static void count(struct hive_worker_queue *q, uint64_t *counter)
{
	pthread_mutex_lock(&q->mu);
	(*counter)++;
	pthread_mutex_unlock(&q->mu);
}

static struct queue_cfg queue_cfg(struct hive_worker_queue *q)
{
	struct queue_cfg c;

	pthread_mutex_lock(&q->mu);
	c = q->c;
	pthread_mutex_unlock(&q->mu);
	return c;
}

/* Room for another job? */
static bool has_room(struct hive_worker_queue *q)
{
	bool room;

	pthread_mutex_lock(&q->mu);
	room = q->st.in_flight < q->c.cap;
	pthread_mutex_unlock(&q->mu);
	return room;
}

/* ---------------------------------------------------------------- flow control
 * On the thread of the queue's loop. */

static void watch_jobs(struct hive_worker_queue *q)
{
	if (q->watching || q->jobs_fd < 0 || !has_room(q))
		return;
	if (hive_loop_watch(q->loop, q->jobs_fd, HIVE_LOOP_READ, on_jobs, q) == 0)
		q->watching = true;
	else
		log_warn("worker_watch_failed url=%s", q->jobs_url);
}

static void unwatch_jobs(struct hive_worker_queue *q)
{
	if (!q->watching)
		return;
	hive_loop_unwatch(q->loop, q->jobs_fd);
	q->watching = false;
}

/* Frees job and what it holds (not its priv: the daemon's). */
static void job_free(struct hive_worker_job *job)
{
	if (job->body) {
		hive_msg_free(job->queue->spec.job_kind, (void *)job->body);
		free((void *)job->body);
	}
	json_decref(job->json);
	free(job);
}

/* Takes job off the live list and frees it; makes room for the next. */
static void job_end(struct hive_worker_job *job)
{
	struct hive_worker_queue *q = job->queue;
	double lat = (double)(hive_mono_ms() - job->started_ms);

	if (job->prev)
		job->prev->next = job->next;
	else
		q->live = job->next;
	if (job->next)
		job->next->prev = job->prev;
	pthread_mutex_lock(&q->mu);
	q->st.in_flight--;
	q->lat_sum += lat;
	q->lat_n++;
	pthread_mutex_unlock(&q->mu);
	job_free(job);
	watch_jobs(q);
}

static void complain_key(const struct hive_worker_job *job, char *key, size_t len)
{
	snprintf(key, len, "%s %s", job->mac, job->queue->spec.op);
}

int hive_worker_time_left(const struct hive_worker_job *job)
{
	int64_t left = job->end_ms - hive_mono_ms();
	int t = queue_cfg(job->queue).http_timeout_ms;

	return left < t ? (int)left : t;
}

void hive_worker_done(struct hive_worker_job *job, void *result)
{
	struct hive_worker *w = job->w;
	struct hive_worker_queue *q = job->queue;
	struct hive_msg_result_head *head = result;
	json_t *b = NULL;
	char key[64];

	if (head) {
		head->job = job->id;
		snprintf(head->mac, sizeof(head->mac), "%s", job->mac);
		snprintf(head->ip, sizeof(head->ip), "%s", job->ip);
		head->latency_ms = hive_mono_ms() - job->started_ms;
		head->nonce = job->nonce[0] ? job->nonce : NULL;
		b = hive_msg_encode(q->spec.result_kind, result);
	}
	if (!b) {
		struct hive_fw_err err = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(err.msg, sizeof(err.msg), "%s: %s", q->spec.op,
			 head ? "out of memory encoding the result" : "no result");
		hive_worker_fail(job, &err);
		return;
	}
	send_json(w, q->spec.result_kind, b);
	count(q, &q->st.done);
	complain_key(job, key, sizeof(key));
	hive_log_recovered(key, "miner_ok mac=%s ip=%s op=%s", job->mac, job->ip, q->spec.op);
	job_end(job);
}

/* hive.job.failed for job id at mac, so apid's scheduler frees the miner. */
static void publish_job_failed(struct hive_worker *w, long long id, const char *mac,
			       const char *kind, const char *nonce)
{
	struct hive_msg_job_failed jf;

	hive_msg_init(HIVE_MSG_JOB_FAILED, &jf);
	jf.job = id;
	snprintf(jf.mac, sizeof(jf.mac), "%s", mac);
	jf.kind = kind;
	jf.nonce = nonce && *nonce ? nonce : NULL;
	hive_worker_publish(w, HIVE_MSG_JOB_FAILED, &jf);
}

void hive_worker_fail(struct hive_worker_job *job, const struct hive_fw_err *err)
{
	struct hive_worker *w = job->w;
	struct hive_worker_queue *q = job->queue;
	struct hive_msg_miner_error e;
	char key[64], quoted[600];

	hive_worker_error_fill(&e, job->mac, job->ip, q->spec.op, err, job->id);
	hive_worker_publish(w, HIVE_MSG_MINER_ERROR, &e);
	publish_job_failed(w, job->id, job->mac, hive_fw_err_name(err->kind), job->nonce);
	count(q, &q->st.failed);
	if ((unsigned)err->kind < HIVE_FW_ERR_KINDS)
		count(q, &q->st.failed_by[err->kind]);
	complain_key(job, key, sizeof(key));
	hive_log_complain(key, "miner_error mac=%s ip=%s op=%s kind=%s http_status=%d message=%s",
			  job->mac, job->ip, q->spec.op, hive_fw_err_name(err->kind),
			  err->http_status, hive_log_quote(err->msg, quoted, sizeof(quoted)));
	job_end(job);
}

/* ---------------------------------------------------------------- jobs */

/* Reads a job body into job with the job kind's table; job->body keeps
 * the decoded struct, job->json what its strings point into. 0, or -1
 * with a message naming the field. */
static int job_decode(struct hive_worker_queue *q, const struct queue_cfg *c, json_t *json,
		      struct hive_worker_job *job, char *err, size_t errlen)
{
	enum hive_msg_kind kind = q->spec.job_kind;
	const struct hive_msg_job *j = NULL;
	struct hive_msg_job common;     /* a control job's fields every job has */
	void *body;

	if (!(body = calloc(1, q->body_size))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (hive_msg_decode(kind, json, body, err, errlen) < 0) {
		free(body);
		return -1;
	}
	job->body = body;
	job->json = json_incref(json);
	if (kind == HIVE_MSG_JOB_CONTROL) {
		const struct hive_msg_control_job *cj = body;

		common = (struct hive_msg_job){ .job = cj->job, .port = cj->port,
						.api_key = cj->api_key, .deadline = cj->deadline,
						.nonce = cj->nonce };
		memcpy(common.mac, cj->mac, sizeof(common.mac));
		memcpy(common.ip, cj->ip, sizeof(common.ip));
		j = &common;
	} else {
		j = body;
	}
	/* A table may let a job come without a key; a worker cannot do one. */
	if (!j->api_key || !*j->api_key) {
		snprintf(err, errlen, "api_key: missing or empty");
		return -1;
	}
	job->id = j->job;
	snprintf(job->mac, sizeof(job->mac), "%s", j->mac);
	snprintf(job->ip, sizeof(job->ip), "%s", j->ip);
	snprintf(job->api_key, sizeof(job->api_key), "%s", j->api_key);
	snprintf(job->endpoint, sizeof(job->endpoint), "%s", j->endpoint ? j->endpoint : "");
	snprintf(job->nonce, sizeof(job->nonce), "%s", j->nonce ? j->nonce : "");
	job->port = j->port != HIVE_MSG_NO_INT ? (int)j->port : c->port;
	job->deadline_ms = j->deadline != HIVE_MSG_NO_INT ? j->deadline : 0;
	if (q->spec.check)
		return q->spec.check(job, err, errlen);
	return 0;
}

/* A job that cannot be read: counted, and reported as failed when it says
 * which job it was, so the scheduler frees the miner at once. Its id and
 * MAC are read with hive.job.failed's table, which asks for just those. */
static void job_bad(struct hive_worker_queue *q, const struct hive_envelope *env,
		    const char *why)
{
	struct hive_msg_job_failed jf;
	char e[256], quoted[300];

	count(q, &q->st.bad);
	hive_log_complain("worker bad job", "job_rejected topic=%s reason=%s", env->topic,
			  hive_log_quote(why, quoted, sizeof(quoted)));
	if (hive_msg_decode(HIVE_MSG_JOB_FAILED, env->body, &jf, e, sizeof(e)) < 0)
		return;
	publish_job_failed(q->w, jf.job, jf.mac, hive_fw_err_name(HIVE_FW_ERR_BAD_FIELD), jf.nonce);
	hive_msg_free(HIVE_MSG_JOB_FAILED, &jf);
}

/* A job for an address outside network.subnets: never started; counted,
 * logged rate-limited, and reported failed (kind outside_subnets) so that
 * apid frees the miner and shows why. */
static void job_refuse(struct hive_worker_queue *q, struct hive_worker_job *job)
{
	struct hive_msg_miner_error e;
	struct hive_fw_err err = { .kind = HIVE_FW_ERR_INTERNAL };

	count(q, &q->st.refused);
	hive_log_complain("worker refused job", "job_refused mac=%s ip=%s op=%s job=%lld"
			  " reason=\"address outside network.subnets\"", job->mac, job->ip,
			  q->spec.op, job->id);
	snprintf(err.msg, sizeof(err.msg), "%s: %s is outside network.subnets: job refused",
		 q->spec.op, job->ip);
	hive_worker_error_fill(&e, job->mac, job->ip, q->spec.op, &err, job->id);
	e.kind = HIVE_WORKER_KIND_OUTSIDE_SUBNETS;
	hive_worker_publish(q->w, HIVE_MSG_MINER_ERROR, &e);
	publish_job_failed(q->w, job->id, job->mac, HIVE_WORKER_KIND_OUTSIDE_SUBNETS, job->nonce);
	job_free(job);
}

/* Is job too late to start? Then it is counted and logged. */
static bool job_expired(struct hive_worker_queue *q, const struct hive_worker_job *job,
			long long now)
{
	long long left = job->deadline_ms - now;

	if (job->deadline_ms <= 0)
		return false;
	/* A job that may start until its deadline may start up to it; one
	 * whose requests must end by then needs time for them. */
	if (q->k->start_deadline ? left > 0 : left >= WORKER_MIN_TIMEOUT_MS)
		return false;
	count(q, &q->st.expired);
	log_debug("job_expired job=%lld mac=%s op=%s late_ms=%lld", job->id, job->mac, q->spec.op,
		  -left);
	return true;
}

/* When job must be over (monotonic), from its deadline and kind. */
static int64_t job_end_ms(const struct hive_worker_queue *q, const struct queue_cfg *c,
			  const struct hive_worker_job *job, long long now)
{
	int64_t left;

	if (q->k->start_deadline) {
		/* apid waits one job timeout past the deadline for the answer:
		 * leave it WORKER_MIN_TIMEOUT_MS for the way back. */
		int64_t run = c->run_ms;

		left = job->deadline_ms > 0 ? job->deadline_ms - now + run - WORKER_MIN_TIMEOUT_MS
					    : run;
		return job->started_ms + (left < run ? left : run);
	}
	left = job->deadline_ms > 0 ? job->deadline_ms - now : c->http_timeout_ms;
	return job->started_ms + left;
}

static void job_take(struct hive_worker_queue *q, const struct hive_envelope *env)
{
	struct hive_worker_job *job;
	struct queue_cfg c = queue_cfg(q);
	char err[256];
	long long now = hive_wall_ms();

	if (hive_msg_kind_of(env->topic, HIVE_CH_JOBS) != (int)q->spec.job_kind) {
		snprintf(err, sizeof(err), "unexpected topic, want %s",
			 hive_msg_topic(q->spec.job_kind)->topic);
		job_bad(q, env, err);
		return;
	}
	if (!(job = calloc(1, sizeof(*job)))) {
		log_warn("worker_job_alloc_failed");
		return;
	}
	job->w = q->w;
	job->queue = q;
	if (job_decode(q, &c, env->body, job, err, sizeof(err)) < 0) {
		job_free(job);
		job_bad(q, env, err);
		return;
	}
	count(q, &q->st.received);
	if (!ip_allowed(q, job->ip)) {
		job_refuse(q, job);
		return;
	}
	if (job_expired(q, job, now)) {
		job_free(job);
		return;
	}
	job->started_ms = hive_mono_ms();
	job->end_ms = job_end_ms(q, &c, job, now);
	job->timeout_ms = hive_worker_time_left(job);
	job->next = q->live;
	if (q->live)
		q->live->prev = job;
	q->live = job;
	pthread_mutex_lock(&q->mu);
	q->st.in_flight++;
	pthread_mutex_unlock(&q->mu);
	if (q->spec.start(job, q->spec.arg) < 0) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(e.msg, sizeof(e.msg), "%s: could not start the request: %s", q->spec.op,
			 strerror(errno ? errno : ENOMEM));
		hive_worker_fail(job, &e);
	}
}

static void on_jobs(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct hive_worker_queue *q = arg;
	struct hive_envelope env;
	int rc;

	(void)loop;
	(void)fd;
	(void)events;
	while (has_room(q)) {
		memset(&env, 0, sizeof(env));
		rc = hive_bus_recv(q->jobs, &env, 0);
		if (rc == HIVE_BUS_REJECTED) {
			count(q, &q->st.bad);
			continue;
		}
		if (rc != HIVE_BUS_OK)
			return;
		job_take(q, &env);
		hive_envelope_clear(&env);
	}
	unwatch_jobs(q);
}

/* ---------------------------------------------------------------- heartbeat */

/* Adds q's counters to c, named with its kind's prefix; with q->mu held.
 * 0 / -1. */
static int queue_counters(json_t *c, const struct hive_worker_queue *q)
{
	const struct {
		const char *name;
		uint64_t v;
	} rows[] = {
		{ "jobs_received", q->st.received }, { "jobs_done", q->st.done },
		{ "jobs_failed", q->st.failed },     { "jobs_expired", q->st.expired },
		{ "jobs_bad", q->st.bad },          { "jobs_refused", q->st.refused },
	};
	char name[64];
	int rc = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", q->k->prefix, rows[i].name);
		rc |= json_object_set_new(c, name, json_integer((json_int_t)rows[i].v));
	}
	for (int k = 1; k < HIVE_FW_ERR_KINDS; k++) {
		if (!q->st.failed_by[k])
			continue;
		snprintf(name, sizeof(name), "%sfailed_%s", q->k->prefix,
			 hive_fw_err_name((enum hive_fw_err_kind)k));
		rc |= json_object_set_new(c, name, json_integer((json_int_t)q->st.failed_by[k]));
	}
	return rc ? -1 : 0;
}

/* The heartbeat's counters; in_flight and latency_ms are fields of the
 * heartbeat itself. */
static json_t *counters(struct hive_worker *w)
{
	json_t *c = json_object();

	if (!c || json_object_set_new(c, "publish_failed",
				      json_integer((json_int_t)atomic_load(&w->publish_failed))) < 0)
		goto fail;
	for (int i = 0; i < w->nq; i++) {
		int rc;

		pthread_mutex_lock(&w->q[i]->mu);
		rc = queue_counters(c, w->q[i]);
		pthread_mutex_unlock(&w->q[i]->mu);
		if (rc < 0)
			goto fail;
	}
	if (w->more_counters) {
		json_t *more = w->more_counters(w->more_state);

		if (!more || json_object_update(c, more) < 0) {
			json_decref(more);
			goto fail;
		}
		json_decref(more);
	}
	return c;
fail:
	json_decref(c);
	return NULL;
}

/* The state file (hive_daemon_write_state): the events socket and each
 * job queue, with their peers. */
static void write_state(struct hive_worker *w)
{
	struct hive_daemon_link links[WORKER_QUEUES_MAX + 1];
	int n = 0;

	links[n].key = "events";
	links[n++].peers = hive_bus_peers(w->events);
	for (int i = 0; i < w->nq; i++) {
		links[n].key = w->q[i]->k->key;
		links[n++].peers = hive_bus_peers(w->q[i]->jobs);
	}
	hive_daemon_write_state(w->d, links, n);
}

void hive_worker_goodbye(struct hive_worker *w)
{
	struct hive_msg_goodbye g;
	struct timespec pause = { 0, GOODBYE_PAUSE_MS * 1000 * 1000 };

	hive_daemon_remove_state(w->d);
	hive_worker_goodbye_fill(&g, w->d);
	if (hive_worker_publish(w, HIVE_MSG_GOODBYE, &g) == 0 && hive_bus_peers(w->events) > 0)
		nanosleep(&pause, NULL);
}

static int64_t on_beat(struct hive_loop *loop, void *arg)
{
	struct hive_worker *w = arg;
	struct hive_msg_heartbeat hb;
	double sum = 0;
	uint64_t n = 0;
	json_t *c;

	(void)loop;
	for (int i = 0; i < w->nq; i++) {
		struct hive_worker_queue *q = w->q[i];

		pthread_mutex_lock(&q->mu);
		if (q->lat_n > 0)
			q->st.latency_ms = q->lat_sum / (double)q->lat_n;
		sum += q->lat_sum;
		n += q->lat_n;
		q->lat_sum = 0;
		q->lat_n = 0;
		pthread_mutex_unlock(&q->mu);
	}
	if (n > 0)
		w->latency_ms = sum / (double)n;
	if ((c = counters(w))) {
		hive_worker_heartbeat_fill(&hb, w->d, c, hive_worker_in_flight(w), w->latency_ms);
		hive_worker_publish(w, HIVE_MSG_HEARTBEAT, &hb);
		json_decref(c);
	} else {
		atomic_fetch_add(&w->publish_failed, 1);
	}
	write_state(w);
	/* A job socket left unwatched by a failed watch gets another chance
	 * (a threaded queue's is its own thread's business). */
	for (int i = 0; i < w->nq; i++)
		if (!w->q[i]->threaded)
			watch_jobs(w->q[i]);
	return (int64_t)w->d->cfg.intervals.heartbeat_seconds * 1000;
}

/* ---------------------------------------------------------------- lifetime */

static const struct job_kind *job_kind(enum hive_msg_kind kind)
{
	for (size_t i = 0; i < sizeof(job_kinds) / sizeof(job_kinds[0]); i++)
		if (job_kinds[i].kind == kind)
			return &job_kinds[i];
	return NULL;
}

/* The job queue a worker of job_kind dials (NULL: not a worker's kind). */
static const char *jobs_url(const struct hive_cfg *cfg, enum hive_msg_kind kind)
{
	const struct job_kind *k = job_kind(kind);

	return k ? (const char *)cfg + k->url_off : NULL;
}

/* Takes what q reads of the config from d->cfg; on the main thread. */
static void take_cfg(struct hive_worker_queue *q)
{
	const struct hive_cfg *cfg = &q->w->d->cfg;

	pthread_mutex_lock(&q->mu);
	q->c.cap = cfg->network.http_concurrency > 0 ? cfg->network.http_concurrency : 1;
	q->c.port = cfg->network.port;
	q->c.http_timeout_ms = cfg->network.http_timeout_ms;
	q->c.run_ms = cfg->control.job_timeout_seconds * 1000;
	if (cfg->network.n_subnets) {
		struct hive_subnet *sn = malloc(cfg->network.n_subnets * sizeof(*sn));

		if (sn) {
			memcpy(sn, cfg->network.subnets, cfg->network.n_subnets * sizeof(*sn));
			free(q->subnets);
			q->subnets = sn;
			q->n_subnets = cfg->network.n_subnets;
		}
	} else {
		free(q->subnets);
		q->subnets = NULL;
		q->n_subnets = 0;
	}
	pthread_mutex_unlock(&q->mu);
}

/* May a job call ip? Only inside network.subnets: a job for any other
 * address is refused (a forged job, or a forged hive.miner.seen that
 * moved a miner, must not make a worker send a miner's key elsewhere).
 * With no subnets configured there is nothing to judge by. */
static bool ip_allowed(struct hive_worker_queue *q, const char *ip)
{
	struct in_addr a;
	bool ok = false;

	if (inet_pton(AF_INET, ip, &a) != 1)
		return false;
	pthread_mutex_lock(&q->mu);
	ok = q->n_subnets == 0;
	for (size_t i = 0; !ok && i < q->n_subnets; i++)
		ok = hive_subnet_contains(&q->subnets[i], ntohl(a.s_addr));
	pthread_mutex_unlock(&q->mu);
	return ok;
}

static void on_wake(struct hive_loop *loop, int fd, int events, void *arg)
{
	uint64_t n;

	(void)loop;
	(void)events;
	(void)arg;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("worker_wake_read_failed");
}

static void *queue_main(void *arg)
{
	struct hive_worker_queue *q = arg;

	while (!atomic_load(&q->stop))
		if (hive_loop_run_once(q->loop, 1000) < 0) {
			log_warn("loop_failed jobs=%s", q->jobs_url);
			break;
		}
	return NULL;
}

/* Starts q's thread, signals blocked (they are the main thread's). 0 / -1. */
static int queue_start(struct hive_worker_queue *q)
{
	sigset_t all, old;
	int rc;

	if ((q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    hive_loop_watch(q->loop, q->wake_fd, HIVE_LOOP_READ, on_wake, q) < 0)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&q->thread, NULL, queue_main, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	q->running = true;
	return 0;
}

/* Stops and joins q's thread, if it runs. */
static void queue_stop(struct hive_worker_queue *q)
{
	uint64_t one = 1;

	if (!q->running)
		return;
	atomic_store(&q->stop, true);
	if (write(q->wake_fd, &one, sizeof(one)) < 0)
		log_warn("worker_wake_failed");  /* it still sees stop within a second */
	pthread_join(q->thread, NULL);
	q->running = false;
}

/* Stops q's thread, frees its jobs (calling its abort) and closes its
 * socket. */
static void queue_free(struct hive_worker_queue *q)
{
	struct hive_worker_job *job;

	if (!q)
		return;
	queue_stop(q);
	unwatch_jobs(q);
	while ((job = q->live) != NULL) {
		q->live = job->next;
		if (q->spec.abort)
			q->spec.abort(job, q->spec.arg);
		job_free(job);
	}
	hive_bus_close(q->jobs);
	if (q->wake_fd >= 0) {
		hive_loop_unwatch(q->loop, q->wake_fd);
		close(q->wake_fd);
	}
	pthread_mutex_destroy(&q->mu);
	free(q->subnets);
	free(q);
}

int hive_worker_add_queue(struct hive_worker *w, const struct hive_worker_spec *spec, char *err,
			  size_t errlen)
{
	const struct hive_msg_topic *jt, *rt;
	struct hive_worker_queue *q;
	struct hive_bus_opts o;

	jt = spec ? hive_msg_topic(spec->job_kind) : NULL;
	rt = spec ? hive_msg_topic(spec->result_kind) : NULL;
	if (!w || !spec || !spec->start || !spec->jobs_url || !spec->op || !jt || !rt ||
	    !job_kind(spec->job_kind) || !jt->body || rt->channel != HIVE_CH_EVENTS) {
		snprintf(err, errlen, "worker: incomplete specification");
		return -1;
	}
	for (int i = 0; i < w->nq; i++)
		if (w->q[i]->spec.job_kind == spec->job_kind) {
			snprintf(err, errlen, "worker: two queues of %s", jt->topic);
			return -1;
		}
	if (w->nq == WORKER_QUEUES_MAX) {
		snprintf(err, errlen, "worker: more than %d queues", WORKER_QUEUES_MAX);
		return -1;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		snprintf(err, errlen, "worker: out of memory");
		return -1;
	}
	q->w = w;
	q->k = job_kind(spec->job_kind);
	q->spec = *spec;
	q->loop = spec->loop ? spec->loop : w->loop;
	q->threaded = q->loop != w->loop;
	q->body_size = jt->body->size;
	q->jobs_fd = -1;
	q->wake_fd = -1;
	atomic_init(&q->stop, false);
	pthread_mutex_init(&q->mu, NULL);
	snprintf(q->jobs_url, sizeof(q->jobs_url), "%s", spec->jobs_url);
	take_cfg(q);

	memset(&o, 0, sizeof(o));
	o.listen = false;
	o.max_message_bytes = w->d->cfg.bus.max_message_bytes;
	o.send_timeout_ms = 1000;
	o.recv_timeout_ms = 0;
	o.source = w->d->source;
	o.boot = w->d->boot;
	o.tls_ca_file = w->d->cfg.bus.tls.ca_file;
	o.tls_cert_file = w->d->cfg.bus.tls.cert_file;
	o.tls_key_file = w->d->cfg.bus.tls.key_file;
	/* One job buffered: a worker never sits on work others could do. */
	o.recvbuf = 1;
	if (!(q->jobs = hive_bus_open(HIVE_BUS_PULL, q->jobs_url, &o, err, errlen)))
		goto fail;
	if ((q->jobs_fd = hive_bus_recv_fd(q->jobs)) < 0) {
		snprintf(err, errlen, "worker: %s: no receive descriptor", q->jobs_url);
		goto fail;
	}
	watch_jobs(q);
	if (!q->watching) {
		snprintf(err, errlen, "worker: cannot watch %s", q->jobs_url);
		goto fail;
	}
	if (q->threaded && queue_start(q) < 0) {
		snprintf(err, errlen, "worker: cannot start the thread of %s: %s", q->jobs_url,
			 strerror(errno));
		goto fail;
	}
	w->q[w->nq++] = q;
	log_info("worker_ready jobs=%s events=%s in_flight_max=%d thread=%s", q->jobs_url,
		 w->events_url, q->c.cap, q->threaded ? "own" : "main");
	return 0;
fail:
	queue_free(q);
	return -1;
}

struct hive_worker *hive_worker_new(const struct hive_daemon *d, struct hive_loop *loop,
				    const struct hive_worker_spec *spec, char *err, size_t errlen)
{
	struct hive_worker *w;
	struct hive_bus_opts o;

	if (!d || !loop) {
		snprintf(err, errlen, "worker: incomplete specification");
		return NULL;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		snprintf(err, errlen, "worker: out of memory");
		return NULL;
	}
	w->d = d;
	w->loop = loop;
	snprintf(w->events_url, sizeof(w->events_url), "%s", d->cfg.bus.events);

	memset(&o, 0, sizeof(o));
	o.listen = false;
	o.max_message_bytes = d->cfg.bus.max_message_bytes;
	o.send_timeout_ms = 1000;
	o.source = d->source;
	o.boot = d->boot;
	o.sendbuf = d->cfg.bus.sendbuf;
	o.tls_ca_file = d->cfg.bus.tls.ca_file;
	o.tls_cert_file = d->cfg.bus.tls.cert_file;
	o.tls_key_file = d->cfg.bus.tls.key_file;
	if (!(w->events = hive_bus_open(HIVE_BUS_PUBLISH, w->events_url, &o, err, errlen)))
		goto fail;
	if (hive_worker_add_queue(w, spec, err, errlen) < 0)
		goto fail;
	if ((w->beat_timer = hive_loop_timer(loop, WORKER_FIRST_BEAT_MS, on_beat, w)) < 0) {
		snprintf(err, errlen, "worker: cannot arm the heartbeat");
		goto fail;
	}
	return w;
fail:
	w->beat_timer = 0;
	hive_worker_free(w);
	return NULL;
}

void hive_worker_configure(struct hive_worker *w)
{
	const struct hive_cfg *cfg = &w->d->cfg;
	bool moved = strcmp(cfg->bus.events, w->events_url) != 0;

	for (int i = 0; i < w->nq; i++) {
		struct hive_worker_queue *q = w->q[i];

		take_cfg(q);
		moved |= strcmp(jobs_url(cfg, q->spec.job_kind), q->jobs_url) != 0;
		/* A threaded queue at its old cap watches again when its next
		 * job ends (one is in flight). */
		if (!q->threaded)
			watch_jobs(q);
		log_info("worker_configured jobs=%s in_flight_max=%d", q->jobs_url,
			 queue_cfg(q).cap);
	}
	if (moved)
		log_warnx("reload_partial reason=\"bus addresses are fixed at start; restart to apply\"");
}

void hive_worker_stop(struct hive_worker *w)
{
	for (int i = 0; w && i < w->nq; i++)
		queue_stop(w->q[i]);
}

void hive_worker_free(struct hive_worker *w)
{
	if (!w)
		return;
	/* No thread may publish on a socket being closed. */
	hive_worker_stop(w);
	if (w->beat_timer > 0)
		hive_loop_cancel(w->loop, w->beat_timer);
	/* The job sockets last, the first queue's (the busiest) last of all.
	 * nng 1.5.2 can hang for ever closing a socket a message reaches at
	 * that moment (nanomsg/nng#1636: here a job pushed by apid), and
	 * every close after that one hangs as well; the bus gives up on a
	 * close after a while. The events socket, which never receives,
	 * closes at once when it goes first; a control queue, which receives
	 * a job now and then, before the status queue, which receives all the
	 * time. So a worker's exit waits for one stuck close, two only when
	 * jobs of both kinds arrive during the stop. */
	hive_bus_close(w->events);
	for (int i = w->nq - 1; i >= 0; i--)
		queue_free(w->q[i]);
	free(w);
}

int hive_worker_in_flight(const struct hive_worker *w)
{
	int n = 0;

	for (int i = 0; w && i < w->nq; i++) {
		pthread_mutex_lock(&w->q[i]->mu);
		n += w->q[i]->st.in_flight;
		pthread_mutex_unlock(&w->q[i]->mu);
	}
	return n;
}

int hive_worker_get_stats(const struct hive_worker *w, enum hive_msg_kind job_kind,
			  struct hive_worker_stats *out)
{
	for (int i = 0; i < w->nq; i++)
		if (w->q[i]->spec.job_kind == job_kind) {
			pthread_mutex_lock(&w->q[i]->mu);
			*out = w->q[i]->st;
			pthread_mutex_unlock(&w->q[i]->mu);
			out->publish_failed = atomic_load(&w->publish_failed);
			return 0;
		}
	return -1;
}

/* ---------------------------------------------------------------- main */

int hive_worker_main(const struct hive_worker_main_spec *spec, int argc, char **argv)
{
	struct hive_daemon d;
	struct hive_worker_spec ws = spec->worker, cs = spec->control;
	struct hive_fw_opts fo = { 0 };
	struct hive_fw_client *fw, *cfw = NULL;
	struct hive_loop *loop, *cloop = NULL;
	struct hive_worker *w;
	void *state = NULL;
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
	ws.jobs_url = jobs_url(&d.cfg, ws.job_kind);
	ws.arg = fw;
	ws.loop = loop;
	if (!(w = hive_worker_new(&d, loop, &ws, err, sizeof(err)))) {
		log_errx("fatal reason=\"%s\"", err);
		return 1;
	}
	if (cs.start) {
		/* A loop, a thread and a firmware client of their own: a control
		 * call never waits for a round of status answers, nor in the
		 * status client's queue, and never reuses a connection. */
		struct hive_fw_opts co = { 0 };

		co.max_in_flight = d.cfg.network.http_concurrency;
		co.timeout_ms = d.cfg.network.http_timeout_ms;
		co.no_keepalive = true;
		if (!(cloop = hive_loop_new()) || !(cfw = hive_fw_client_new(cloop, &co))) {
			log_warn("fatal reason=\"cannot create the control firmware client\"");
			return 1;
		}
		cs.jobs_url = jobs_url(&d.cfg, cs.job_kind);
		cs.arg = cfw;
		cs.loop = cloop;
		if (hive_worker_add_queue(w, &cs, err, sizeof(err)) < 0) {
			log_errx("fatal reason=\"%s\"", err);
			return 1;
		}
	}
	if (spec->attach) {
		if (spec->attach(w, &d, &state) != 0) {
			log_errx("fatal reason=\"%s could not start\"", d.name);
			return 1;
		}
		w->more_counters = spec->counters;
		w->more_state = state;
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
	if (hive_quit)
		hive_worker_goodbye(w);
	hive_worker_stop(w);
	if (spec->detach) {
		w->more_counters = NULL;
		spec->detach(state);
	}
	hive_fw_client_free(cfw);
	hive_fw_client_free(fw);
	hive_worker_free(w);
	hive_loop_free(cloop);
	hive_loop_free(loop);
	hive_daemon_finish(&d);
	return 0;
}
