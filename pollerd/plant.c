/* plant — pollerd's plant reader: hive.job.plant jobs from bus.jobs_plant,
 * one at a time, each a blocking hive_plant_read (libcurl easy or
 * libmodbus, up to the job's timeout_ms), answered with hive.plant.reading
 * on the worker's events socket.
 *
 * It has a thread and a PULL socket of its own (one job buffered): a read
 * blocks for up to seconds, which neither the status loop nor the control
 * thread may wait for, and with one job buffered another pollerd takes the
 * next while this one reads. It reads and reports; apid judges the reading
 * (confidence, staleness, jumps). */
#include "pollerd.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/plant.h"

#define COMPLAIN_KEY "plant read"

struct pollerd_plant {
	struct hive_worker *w;
	struct hive_bus *jobs;           /* PULL, bus.jobs_plant */
	int jobs_fd;                     /* readable while a job waits */
	int wake_fd;                     /* eventfd: stop */
	char url[HIVE_CFG_URL_MAX];
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* counters: the heartbeat reads them on the main thread */
	_Atomic uint64_t received, ok, failed, expired, bad;
};

static void bad_job(struct pollerd_plant *p, const struct hive_envelope *env, const char *why)
{
	char q[300];

	atomic_fetch_add(&p->bad, 1);
	hive_log_complain("plant bad job", "job_rejected topic=%s reason=%s", env->topic,
			  hive_log_quote(why, q, sizeof(q)));
}

/* One job: read the source it names and publish what was found. */
static void take(struct pollerd_plant *p, const struct hive_envelope *env)
{
	struct hive_msg_plant_job j;
	struct hive_msg_plant_reading m;
	struct hive_plant_source src;
	struct hive_plant_reading r;
	char err[256], q[300];
	long long now = hive_wall_ms();

	if (hive_msg_kind_of(env->topic, HIVE_CH_JOBS) != HIVE_MSG_JOB_PLANT) {
		bad_job(p, env, "unexpected topic, want " HIVE_TOPIC_JOB_PLANT);
		return;
	}
	if (hive_msg_decode(HIVE_MSG_JOB_PLANT, env->body, &j, err, sizeof(err)) < 0) {
		bad_job(p, env, err);
		return;
	}
	if (hive_plant_job_to_source(&j, &src, err, sizeof(err)) < 0) {
		bad_job(p, env, err);
		goto out;
	}
	atomic_fetch_add(&p->received, 1);
	/* a reading taken late would only look fresher than it is */
	if (j.deadline != HIVE_MSG_NO_INT && j.deadline > 0 && now > j.deadline) {
		atomic_fetch_add(&p->expired, 1);
		log_debug("job_expired job=%lld op=plant late_ms=%lld", j.job, now - j.deadline);
		goto out;
	}
	hive_plant_read(&src, &r);
	hive_plant_reading_to_msg(&r, &m);
	m.job = j.job;
	m.source = j.kind;
	m.nonce = j.nonce;
	hive_worker_publish(p->w, HIVE_MSG_PLANT_READING, &m);
	if (r.ok) {
		atomic_fetch_add(&p->ok, 1);
		hive_log_recovered(COMPLAIN_KEY, "plant_ok source=%s generation_w=%.0f", j.kind,
				   r.generation_w);
	} else {
		atomic_fetch_add(&p->failed, 1);
		hive_log_complain(COMPLAIN_KEY, "plant_error source=%s kind=%s message=%s", j.kind,
				  r.error_kind, hive_log_quote(r.error, q, sizeof(q)));
	}
out:
	hive_msg_free(HIVE_MSG_JOB_PLANT, &j);
	/* the source held the key; nothing else keeps it on this stack */
	explicit_bzero(&src, sizeof(src));
}

/* Waits for a job or the stop, takes the jobs there are. */
static void *plant_main(void *arg)
{
	struct pollerd_plant *p = arg;
	struct pollfd pfd[2] = { { .fd = p->jobs_fd, .events = POLLIN },
				 { .fd = p->wake_fd, .events = POLLIN } };
	struct hive_envelope env;

	while (!atomic_load(&p->stop)) {
		int rc;

		/* woken at stop; the timeout is only a safety net */
		if (poll(pfd, 2, 1000) < 0 && errno != EINTR) {
			log_warn("plant_reader_poll_failed");
			break;
		}
		for (;;) {
			memset(&env, 0, sizeof(env));
			rc = hive_bus_recv(p->jobs, &env, 0);
			if (rc == HIVE_BUS_REJECTED) {
				atomic_fetch_add(&p->bad, 1);
				continue;
			}
			if (rc != HIVE_BUS_OK || atomic_load(&p->stop))
				break;
			take(p, &env);
			hive_envelope_clear(&env);
		}
		if (rc == HIVE_BUS_OK)
			hive_envelope_clear(&env);
	}
	return NULL;
}

int pollerd_plant_attach(struct hive_worker *w, const struct hive_daemon *d, void **state)
{
	struct pollerd_plant *p = calloc(1, sizeof(*p));
	struct hive_bus_opts o = { 0 };
	sigset_t all, old;
	char err[256];
	int rc;

	if (!p) {
		log_errx("plant_reader_failed reason=\"out of memory\"");
		return -1;
	}
	p->w = w;
	p->wake_fd = -1;
	atomic_init(&p->stop, false);
	snprintf(p->url, sizeof(p->url), "%s", d->cfg.bus.jobs_plant);
	o.listen = false;
	o.max_message_bytes = d->cfg.bus.max_message_bytes;
	o.send_timeout_ms = 1000;
	o.source = d->source;
	o.boot = d->boot;
	o.recvbuf = 1;                   /* one job buffered: the rest go to other pollerd */
	o.tls_ca_file = d->cfg.bus.tls.ca_file;
	o.tls_cert_file = d->cfg.bus.tls.cert_file;
	o.tls_key_file = d->cfg.bus.tls.key_file;
	if (!(p->jobs = hive_bus_open(HIVE_BUS_PULL, p->url, &o, err, sizeof(err)))) {
		log_errx("plant_reader_failed jobs=%s reason=\"%s\"", p->url, err);
		free(p);
		return -1;
	}
	if ((p->jobs_fd = hive_bus_recv_fd(p->jobs)) < 0 ||
	    (p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_warn("plant_reader_failed jobs=%s reason=\"no descriptor to wait on\"", p->url);
		goto fail;
	}
	/* signals are the main thread's */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&p->thread, NULL, plant_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_errx("plant_reader_failed reason=\"cannot start its thread: %s\"", strerror(rc));
		goto fail;
	}
	p->running = true;
	log_info("plant_reader_ready jobs=%s", p->url);
	*state = p;
	return 0;
fail:
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	hive_bus_close(p->jobs);
	free(p);
	return -1;
}

void pollerd_plant_detach(void *state)
{
	struct pollerd_plant *p = state;

	if (!p)
		return;
	/* a read in flight ends first: an aggregator's at once (libcurl sees
	 * hive_quit), a meter's within its timeout_ms */
	atomic_store(&p->stop, true);
	if (write(p->wake_fd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		log_warn("plant_reader_wake_failed");
	if (p->running)
		pthread_join(p->thread, NULL);
	close(p->wake_fd);
	hive_bus_close(p->jobs);
	log_info("plant_reader_stopped jobs=%llu ok=%llu failed=%llu expired=%llu bad=%llu",
		 (unsigned long long)atomic_load(&p->received), (unsigned long long)atomic_load(&p->ok),
		 (unsigned long long)atomic_load(&p->failed),
		 (unsigned long long)atomic_load(&p->expired), (unsigned long long)atomic_load(&p->bad));
	free(p);
}

json_t *pollerd_plant_counters(void *state)
{
	struct pollerd_plant *p = state;

	return json_pack("{s:I, s:I, s:I, s:I, s:I}",
			 "plant_jobs_received", (json_int_t)atomic_load(&p->received),
			 "plant_readings_ok", (json_int_t)atomic_load(&p->ok),
			 "plant_readings_failed", (json_int_t)atomic_load(&p->failed),
			 "plant_jobs_expired", (json_int_t)atomic_load(&p->expired),
			 "plant_jobs_bad", (json_int_t)atomic_load(&p->bad));
}
