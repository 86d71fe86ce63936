/* control — asking apid for a miner's credentials (hive.control.credentials
 * over REQ/REP), and once per sweep which keys to check again
 * (hive.control.recheck), without stalling the loop.
 *
 * A REQ round trip blocks, so a thread of its own does them one after the
 * other and hands each answer back through an eventfd the loop watches.
 * When apid does not answer (not running, restarting, overloaded) the
 * thread says so at once for the next APID_DOWN_MS instead of waiting a
 * timeout per miner: a sweep of a thousand miners must not take a thousand
 * timeouts. Miners then go on as if apid knew nothing (provision.c makes
 * sure that does not create a key per sweep).
 */
#include "discoverd.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"

#define APID_TIMEOUT_MS 2000
#define APID_DOWN_MS    5000

struct creq {
	struct creq *next;
	struct host *h;                 /* NULL: the sweep's recheck request */
	char mac[HIVE_MAC_LEN];
	struct disc_creds creds;
	struct hive_msg_recheck_reply recheck; /* when creds.answered, for h == NULL */
};

struct disc_control {
	struct discoverd *dd;
	struct hive_bus *req;
	char url[HIVE_CFG_URL_MAX];     /* a copy: the thread must not read the live config */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct creq *todo, *todo_tail;  /* for the thread */
	struct creq *done, *done_tail;  /* for the loop */
	int efd;
	int64_t down_until;             /* thread-only */
	bool said_down;                 /* thread-only */
};

static void push(struct creq **head, struct creq **tail, struct creq *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static struct creq *pop(struct creq **head, struct creq **tail)
{
	struct creq *r = *head;

	if (r && !(*head = r->next))
		*tail = NULL;
	return r;
}

/* Copies a string of apid's answer into a buffer of ours; -1 when it does
 * not fit (a key or password longer than we use is a bad answer). */
static int copy_secret(char *out, size_t len, const char *v)
{
	if (v && strlen(v) >= len)
		return -1;
	snprintf(out, len, "%s", v ? v : "");
	return 0;
}

/* Reads apid's answer into r->creds. 0 / -1. */
static int parse_answer(struct creq *r, const struct hive_envelope *env)
{
	struct hive_msg_credentials_reply a;
	char err[256];
	int rc = -1;

	if (strcmp(env->topic, HIVE_TOPIC_CTL_ERROR) == 0) {
		struct hive_msg_ctl_error e;
		char q[300];

		if (hive_msg_decode(HIVE_MSG_CTL_ERROR, env->body, &e, err, sizeof(err)) < 0) {
			log_warnx("credentials_refused mac=%s problem=%s", r->mac,
				  hive_log_quote(err, q, sizeof(q)));
			return -1;
		}
		log_warnx("credentials_refused mac=%s error=%s", r->mac,
			  hive_log_quote(e.error, q, sizeof(q)));
		hive_msg_free(HIVE_MSG_CTL_ERROR, &e);
		return -1;
	}
	if (hive_msg_decode(HIVE_MSG_CTL_CREDENTIALS_REPLY, env->body, &a, err, sizeof(err)) < 0) {
		log_warnx("credentials_bad_answer mac=%s problem=\"%s\"", r->mac, err);
		return -1;
	}
	if (strcmp(a.mac, r->mac) != 0) {
		log_warnx("credentials_bad_answer mac=%s problem=\"answer for %s\"", r->mac, a.mac);
	} else if (copy_secret(r->creds.api_key, sizeof(r->creds.api_key), a.api_key) < 0 ||
		   copy_secret(r->creds.unlock_pass, sizeof(r->creds.unlock_pass),
			       a.unlock_pass) < 0) {
		log_warnx("credentials_bad_answer mac=%s problem=\"key or password too long\"",
			  r->mac);
	} else {
		r->creds.known = a.known == 1;
		hive_log_secret(r->creds.api_key);
		hive_log_secret(r->creds.unlock_pass);
		rc = 0;
	}
	if (rc < 0)
		r->creds.api_key[0] = r->creds.unlock_pass[0] = '\0';
	hive_msg_free(HIVE_MSG_CTL_CREDENTIALS_REPLY, &a);
	return rc;
}

/* Reads apid's answer to a recheck request into r->recheck. 0 / -1. */
static int parse_recheck(struct creq *r, const struct hive_envelope *env)
{
	char err[256];

	if (strcmp(env->topic, HIVE_TOPIC_CTL_RECHECK) != 0 ||
	    hive_msg_decode(HIVE_MSG_CTL_RECHECK_REPLY, env->body, &r->recheck, err,
			    sizeof(err)) < 0) {
		log_warnx("recheck_bad_answer topic=%s problem=\"%s\"", env->topic,
			  strcmp(env->topic, HIVE_TOPIC_CTL_RECHECK) ? "not a recheck reply" : err);
		return -1;
	}
	return 0;
}

static void ask(struct disc_control *c, struct creq *r)
{
	struct hive_envelope env;
	struct hive_msg_credentials q;
	json_t *body;
	int64_t now = hive_mono_ms();
	int rc;

	memset(&r->creds, 0, sizeof(r->creds));
	hive_msg_init(HIVE_MSG_CTL_RECHECK_REPLY, &r->recheck);
	if (now < c->down_until)
		return;
	if (hive_bus_peers(c->req) == 0) {
		c->down_until = now + 250;  /* not connected: look again soon */
		if (!c->said_down)
			log_warnx("apid_unavailable url=%s reason=\"not connected\"",
				  c->url);
		c->said_down = true;
		return;
	}
	memset(&env, 0, sizeof(env));
	if (r->h) {
		hive_msg_init(HIVE_MSG_CTL_CREDENTIALS, &q);
		snprintf(q.mac, sizeof(q.mac), "%s", r->mac);
		body = hive_msg_encode(HIVE_MSG_CTL_CREDENTIALS, &q);
	} else {
		body = json_object();
	}
	if (!body)
		return;
	rc = hive_bus_request(c->req, r->h ? HIVE_TOPIC_CTL_CREDENTIALS : HIVE_TOPIC_CTL_RECHECK,
			      body, &env, APID_TIMEOUT_MS);
	json_decref(body);
	if (rc != HIVE_BUS_OK) {
		c->down_until = hive_mono_ms() + APID_DOWN_MS;
		if (!c->said_down)
			log_warnx("apid_unavailable url=%s rc=%d retry_ms=%d",
				  c->url, rc, APID_DOWN_MS);
		c->said_down = true;
		return;
	}
	if (c->said_down)
		log_info("apid_available url=%s", c->url);
	c->said_down = false;
	r->creds.answered = (r->h ? parse_answer(r, &env) : parse_recheck(r, &env)) == 0;
	hive_envelope_clear(&env);
}

static void *run(void *arg)
{
	struct disc_control *c = arg;
	struct creq *r;
	uint64_t one = 1;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && !c->todo)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		r = pop(&c->todo, &c->todo_tail);
		pthread_mutex_unlock(&c->mu);
		ask(c, r);
		pthread_mutex_lock(&c->mu);
		push(&c->done, &c->done_tail, r);
		if (write(c->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("control_wake_failed");
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void on_answers(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct disc_control *c = arg;
	struct creq *list, *r;
	uint64_t n;

	(void)loop;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("control_read_failed");
	pthread_mutex_lock(&c->mu);
	list = c->done;
	c->done = c->done_tail = NULL;
	pthread_mutex_unlock(&c->mu);
	while ((r = list)) {
		list = r->next;
		if (!r->creds.answered)
			c->dd->c.apid_unavailable++;
		if (r->h) {
			disc_host_creds(r->h, &r->creds);
		} else {
			disc_sweep_recheck(c->dd, r->creds.answered ? &r->recheck : NULL);
			hive_msg_free(HIVE_MSG_CTL_RECHECK_REPLY, &r->recheck);
		}
		free(r);
	}
}

struct disc_control *disc_control_start(struct discoverd *dd, char *err, size_t errlen)
{
	struct disc_control *c;
	struct hive_bus_opts o = { 0 };

	if (!(c = calloc(1, sizeof(*c)))) {
		snprintf(err, errlen, "control: out of memory");
		return NULL;
	}
	c->dd = dd;
	c->efd = -1;
	snprintf(c->url, sizeof(c->url), "%s", dd->d.cfg.bus.discovery_control);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	o.max_message_bytes = dd->d.cfg.bus.max_message_bytes;
	o.send_timeout_ms = APID_TIMEOUT_MS;
	o.recv_timeout_ms = APID_TIMEOUT_MS;
	o.source = dd->d.source;
	o.boot = dd->d.boot;
	o.tls_ca_file = dd->d.cfg.bus.tls.ca_file;
	o.tls_cert_file = dd->d.cfg.bus.tls.cert_file;
	o.tls_key_file = dd->d.cfg.bus.tls.key_file;
	if (!(c->req = hive_bus_open(HIVE_BUS_REQUEST, c->url, &o, err, errlen)))
		goto fail;
	if ((c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "control: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (hive_loop_watch(dd->loop, c->efd, HIVE_LOOP_READ, on_answers, c) < 0) {
		snprintf(err, errlen, "control: cannot watch the eventfd");
		goto fail;
	}
	if ((errno = pthread_create(&c->thread, NULL, run, c)) != 0) {
		snprintf(err, errlen, "control: thread: %s", strerror(errno));
		hive_loop_unwatch(dd->loop, c->efd);
		goto fail;
	}
	c->started = true;
	return c;
fail:
	if (c->efd >= 0)
		close(c->efd);
	hive_bus_close(c->req);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	return NULL;
}

int disc_control_ask(struct disc_control *c, struct host *h)
{
	struct creq *r;

	if (!(r = calloc(1, sizeof(*r))))
		return -1;
	r->h = h;
	snprintf(r->mac, sizeof(r->mac), "%s", h->m->mac);
	pthread_mutex_lock(&c->mu);
	push(&c->todo, &c->todo_tail, r);
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

int disc_control_recheck(struct disc_control *c)
{
	struct creq *r;

	if (!(r = calloc(1, sizeof(*r))))
		return -1;
	pthread_mutex_lock(&c->mu);
	push(&c->todo, &c->todo_tail, r);
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

void disc_control_stop(struct disc_control *c)
{
	struct creq *r;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->started)
		pthread_join(c->thread, NULL);
	hive_loop_unwatch(c->dd->loop, c->efd);
	close(c->efd);
	while ((r = pop(&c->todo, &c->todo_tail)))
		free(r);
	while ((r = pop(&c->done, &c->done_tail))) {
		hive_msg_free(HIVE_MSG_CTL_RECHECK_REPLY, &r->recheck);
		free(r);
	}
	hive_bus_close(c->req);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
