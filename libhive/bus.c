/* bus — PowerHive's nng sockets and the message envelope (see hive/bus.h
 * and docs/bus.md). The only file that includes nng.h.
 *
 * What nng 1.5 does underneath, and why the code below is shaped by it:
 *   - pub0 never blocks: a subscriber whose queue is full loses the oldest
 *     message. sub0 does the same on its receive queue (we ask for
 *     "prefer new" explicitly so the newest state survives and the last
 *     message of a burst always arrives, which lets seq count every gap).
 *   - push0 queues up to SENDBUF jobs for the socket and hands them round
 *     robin to the connections that are ready (written into the kernel's
 *     socket buffer counts as ready); pull0 keeps RECVBUF jobs (default 1)
 *     plus one per connection. A worker that dies loses what it holds and
 *     what is still in its socket buffers: workers keep RECVBUF at 1.
 *   - A message larger than RECVMAXSZ makes nng drop the connection without
 *     telling us, so the transport limit is set above the envelope limit:
 *     a message a little too large is received, counted and refused here.
 *   - nng caps RECVBUF at 8192 messages, and sub0 reads its connections
 *     eagerly (no back-pressure reaches the publishers' SENDBUF). Decoding
 *     JSON costs ~20 us a message, so a subscriber that decoded as it
 *     received would overflow in a burst. A SUBSCRIBE socket therefore
 *     drains nng's queue from an aio callback (on nng's threads, ~1 us a
 *     message) into a backlog of its own, BUS_BACKLOG_FACTOR x recvbuf
 *     messages and at most BUS_BACKLOG_BYTES; hive_bus_recv decodes from
 *     there. When even that is full the oldest message goes, and the
 *     subscriber's seq tracker counts it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "hive/bus.h"
#include "hive/clock.h"
#include "hive/log.h"

#define BUS_DEFAULT_MAX   (1024 * 1024)
#define BUS_TOPICS_MAX    128      /* distinct topics one socket sends */
#define BUS_PEERS_MAX     1024     /* pipe ids remembered for the count */
#define BUS_RECONN_MIN_MS 100      /* dialers retry fast after apid restarts */
#define BUS_RECONN_MAX_MS 2000
#define BUS_BACKLOG_FACTOR 4       /* SUBSCRIBE backlog, in recvbufs */
#define BUS_BACKLOG_BYTES (64 * 1024 * 1024)
#define BUS_NNG_RECVBUF   128      /* nng's default, when opts ask for 0 */
#define BUS_PEM_MAX       (1024 * 1024)  /* a certificate chain or key file */
#define BUS_IPC_MODE      0600     /* ipc sockets: apid's user only */
#define BUS_ENDPOINTS_MAX 4        /* URLs one listening socket listens on */

struct bus_topic_seq {
	char topic[HIVE_TOPIC_MAX];
	unsigned long long seq;
};

/* A ring of received, not yet decoded messages (SUBSCRIBE). */
struct bus_backlog {
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* hive_cond_init_mono */
	nng_aio *aio;                 /* the receive that refills it */
	nng_msg **ring;
	size_t cap, head, n;          /* ring grows up to max */
	size_t max, bytes, max_bytes;
	int efd;                      /* eventfd, readable while n > 0 */
	bool closed;
	bool ready;                   /* mu, cv, efd initialised */
};

struct hive_bus {
	nng_socket sock;
	bool sock_open;
	enum hive_bus_role role;
	bool listen;
	char url[256];
	char src[HIVE_SOURCE_MAX];
	long long boot;
	size_t max_bytes;
	int send_timeout_ms;
	int recv_timeout_ms;
	int recv_fd;

	/* Peers: counted from pipe events, which nng runs on its own threads.
	 * A pipe refused during its handshake gets REM_POST without ADD_POST,
	 * so the ids counted are remembered and only those are uncounted. */
	pthread_mutex_t peers_mu;
	uint32_t peer_ids[BUS_PEERS_MAX];
	int n_peer_ids;
	atomic_int peers;

	/* Sequence numbers per topic; the lock also keeps seq order on the
	 * wire for sends that cannot block (see hive_bus_send). */
	pthread_mutex_t send_mu;
	struct bus_topic_seq topics[BUS_TOPICS_MAX];
	int n_topics;

	/* A receive aio kept for the common single-reader case. */
	pthread_mutex_t recv_mu;
	nng_aio *recv_aio;

	struct bus_backlog backlog;   /* SUBSCRIBE only */

	/* Listening: the listener of each endpoint (0: the URL opened with),
	 * so a message tells which one it came in on (hive_envelope.endpoint).
	 * Written before the first message of an endpoint can arrive. */
	_Atomic uint32_t listener_ids[BUS_ENDPOINTS_MAX];
	int n_endpoints;

	_Atomic uint64_t sent;
	_Atomic uint64_t send_failed;
	_Atomic uint64_t received;
	_Atomic uint64_t rejected;
	_Atomic uint64_t rejected_by[HIVE_ENV_ERROR_COUNT];
};

static const char *role_names[] = {
	[HIVE_BUS_PUBLISH] = "pub",
	[HIVE_BUS_SUBSCRIBE] = "sub",
	[HIVE_BUS_PUSH] = "push",
	[HIVE_BUS_PULL] = "pull",
	[HIVE_BUS_REQUEST] = "req",
	[HIVE_BUS_REPLY] = "rep",
};

static const char *env_error_names[HIVE_ENV_ERROR_COUNT] = {
	[HIVE_ENV_OK] = "ok",
	[HIVE_ENV_TOO_LARGE] = "too_large",
	[HIVE_ENV_NO_TOPIC] = "no_topic",
	[HIVE_ENV_NOT_JSON] = "not_json",
	[HIVE_ENV_MISSING_FIELD] = "missing_field",
	[HIVE_ENV_BAD_VERSION] = "bad_version",
};

const char *hive_envelope_error_name(enum hive_envelope_error e)
{
	if ((int)e < 0 || e >= HIVE_ENV_ERROR_COUNT)
		return "unknown";
	return env_error_names[e];
}

/* Topics are short printable words without spaces: "hive.miner.seen". */
static bool topic_ok(const char *t, size_t len)
{
	size_t i;

	if (len == 0 || len >= HIVE_TOPIC_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (t[i] <= ' ' || t[i] > '~')
			return false;
	return true;
}

/* src ends up in logs and in /api/health: no control characters. */
static bool source_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= HIVE_SOURCE_MAX)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return false;
	return true;
}

void hive_envelope_clear(struct hive_envelope *env)
{
	if (env == NULL)
		return;
	json_decref(env->body);
	memset(env, 0, sizeof(*env));
}

int hive_envelope_encode(const char *topic, const char *src, long long boot,
			 unsigned long long seq, long long ts, json_t *body,
			 char **out, size_t *out_len)
{
	json_t *root = NULL;
	char *json = NULL, *buf;
	size_t tlen, jlen;

	*out = NULL;
	*out_len = 0;
	if (topic == NULL || !topic_ok(topic, tlen = strlen(topic)) ||
	    src == NULL || !source_ok(src, strlen(src)) ||
	    seq == 0 || seq > (unsigned long long)LLONG_MAX ||
	    (body != NULL && !json_is_object(body)))
		return -1;
	/* "o" steals the reference: a new one for the borrowed body. */
	root = json_pack("{s:i, s:s, s:I, s:I, s:I, s:o}", "v", HIVE_ENVELOPE_VERSION,
			 "src", src, "boot", (json_int_t)boot, "seq", (json_int_t)seq,
			 "ts", (json_int_t)ts, "body", body ? json_incref(body) : json_object());
	if (root == NULL)
		return -1;
	json = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (json == NULL)
		return -1;
	jlen = strlen(json);
	if ((buf = malloc(tlen + 1 + jlen)) == NULL) {
		free(json);
		return -1;
	}
	memcpy(buf, topic, tlen);
	buf[tlen] = '\0';
	memcpy(buf + tlen + 1, json, jlen);
	free(json);
	*out = buf;
	*out_len = tlen + 1 + jlen;
	return 0;
}

/* Reads an integer member; false when absent or not an integer. */
static bool env_int(json_t *root, const char *key, long long *out)
{
	json_t *j = json_object_get(root, key);

	if (!json_is_integer(j))
		return false;
	*out = json_integer_value(j);
	return true;
}

enum hive_envelope_error hive_envelope_decode(const void *buf, size_t len, size_t max_bytes,
					      struct hive_envelope *env)
{
	const char *p = buf, *nul;
	json_t *root, *src, *body;
	json_error_t jerr;
	long long v, boot, seq, ts;
	size_t tlen, slen;
	enum hive_envelope_error rc;

	if (max_bytes == 0)
		max_bytes = BUS_DEFAULT_MAX;
	if (len > max_bytes)
		return HIVE_ENV_TOO_LARGE;
	if (buf == NULL || (nul = memchr(p, '\0', len)) == NULL)
		return HIVE_ENV_NO_TOPIC;
	tlen = (size_t)(nul - p);
	if (!topic_ok(p, tlen))
		return HIVE_ENV_NO_TOPIC;
	root = json_loadb(nul + 1, len - tlen - 1, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return HIVE_ENV_NOT_JSON;
	}
	/* The version first: another major may have changed every other field. */
	rc = HIVE_ENV_MISSING_FIELD;
	if (!env_int(root, "v", &v))
		goto fail;
	if (v != HIVE_ENVELOPE_VERSION) {
		rc = HIVE_ENV_BAD_VERSION;
		goto fail;
	}
	src = json_object_get(root, "src");
	body = json_object_get(root, "body");
	/* source_ok refuses control characters, an escaped NUL included. */
	if (!json_is_string(src) || !source_ok(json_string_value(src),
					       slen = json_string_length(src)) ||
	    !env_int(root, "boot", &boot) || !env_int(root, "seq", &seq) || seq < 1 ||
	    !env_int(root, "ts", &ts) || !json_is_object(body))
		goto fail;

	memset(env, 0, sizeof(*env));
	memcpy(env->topic, p, tlen);
	env->v = (int)v;
	memcpy(env->src, json_string_value(src), slen);
	env->boot = boot;
	env->seq = (unsigned long long)seq;
	env->ts = ts;
	env->body = json_incref(body);
	json_decref(root);
	return HIVE_ENV_OK;
fail:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------ sockets */

static void bus_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct hive_bus *bus = arg;
	uint32_t id = (uint32_t)nng_pipe_id(pipe);
	bool found = false;
	int i;

	/* nng's thread: touch only our own counters, never the socket. */
	pthread_mutex_lock(&bus->peers_mu);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		if (bus->n_peer_ids < BUS_PEERS_MAX)
			bus->peer_ids[bus->n_peer_ids++] = id;
		atomic_fetch_add(&bus->peers, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		for (i = 0; i < bus->n_peer_ids; i++) {
			if (bus->peer_ids[i] == id) {
				bus->peer_ids[i] = bus->peer_ids[--bus->n_peer_ids];
				found = true;
				break;
			}
		}
		/* Past BUS_PEERS_MAX ids were not remembered: trust the event. */
		if (found || atomic_load(&bus->peers) > bus->n_peer_ids)
			atomic_fetch_sub(&bus->peers, 1);
	}
	pthread_mutex_unlock(&bus->peers_mu);
}

static int bus_open_socket(enum hive_bus_role role, nng_socket *s)
{
	switch (role) {
	case HIVE_BUS_PUBLISH:
		return nng_pub0_open(s);
	case HIVE_BUS_SUBSCRIBE:
		return nng_sub0_open(s);
	case HIVE_BUS_PUSH:
		return nng_push0_open(s);
	case HIVE_BUS_PULL:
		return nng_pull0_open(s);
	case HIVE_BUS_REQUEST:
		return nng_req0_open(s);
	case HIVE_BUS_REPLY:
		return nng_rep0_open(s);
	}
	return NNG_EINVAL;
}

/* A protocol without the buffer option answers ENOTSUP: not an error, it
 * simply has no such queue. */
static int bus_set_buf(struct hive_bus *bus, const char *opt, int n)
{
	int rv;

	if (n <= 0)
		return 0;
	rv = nng_socket_set_int(bus->sock, opt, n);
	if (rv == NNG_ENOTSUP) {
		log_debug("bus_option_unsupported url=%s role=%s option=%s", bus->url,
			  role_names[bus->role], opt);
		return 0;
	}
	return rv;
}

static nng_duration bus_duration(int ms)
{
	return ms < 0 ? NNG_DURATION_INFINITE : (nng_duration)ms;
}

static bool role_receives(enum hive_bus_role role)
{
	return role == HIVE_BUS_SUBSCRIBE || role == HIVE_BUS_PULL || role == HIVE_BUS_REPLY;
}

/* ------------------------------------------------------------ backlog */

/* Readable while the backlog holds a message. The counter only ever goes
 * 0 -> 1 -> 0 under the backlog lock, so neither call can fail in a way
 * that matters (EAGAIN on a clear counter). */
static void bus_efd_set(int efd, bool readable)
{
	uint64_t v = 1;
	ssize_t r;

	if (readable)
		r = write(efd, &v, sizeof(v));
	else
		r = read(efd, &v, sizeof(v));
	(void)r;
}

static void bus_backlog_drop_oldest(struct bus_backlog *q)
{
	nng_msg *m = q->ring[q->head];

	q->bytes -= nng_msg_len(m);
	nng_msg_free(m);
	q->head = (q->head + 1) % q->cap;
	q->n--;
}

/* Makes room for one more message by growing the ring (up to max).
 * false when it cannot grow. */
static bool bus_backlog_grow(struct bus_backlog *q)
{
	size_t cap = q->cap ? q->cap * 2 : 1024, i;
	nng_msg **ring;

	if (cap > q->max)
		cap = q->max;
	if (cap <= q->cap || (ring = malloc(cap * sizeof(*ring))) == NULL)
		return false;
	for (i = 0; i < q->n; i++)
		ring[i] = q->ring[(q->head + i) % q->cap];
	free(q->ring);
	q->ring = ring;
	q->cap = cap;
	q->head = 0;
	return true;
}

static void bus_backlog_push(struct hive_bus *bus, nng_msg *m)
{
	struct bus_backlog *q = &bus->backlog;
	size_t len = nng_msg_len(m), dropped = 0;
	char key[300];

	pthread_mutex_lock(&q->mu);
	while (q->n > 0 && (q->n >= q->max || q->bytes + len > q->max_bytes)) {
		bus_backlog_drop_oldest(q);
		dropped++;
	}
	if (q->n == q->cap && !bus_backlog_grow(q)) {
		if (q->n == 0) {             /* no memory for even one slot */
			pthread_mutex_unlock(&q->mu);
			nng_msg_free(m);
			return;
		}
		bus_backlog_drop_oldest(q);
		dropped++;
	}
	q->ring[(q->head + q->n) % q->cap] = m;
	q->n++;
	q->bytes += len;
	if (q->n == 1)
		bus_efd_set(q->efd, true);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (dropped) {
		/* The seq tracker of whoever reads will count these as lost. */
		snprintf(key, sizeof(key), "bus %s backlog full", bus->url);
		hive_log_complain(key, "bus_backlog_full url=%s dropped=%zu max=%zu",
				  bus->url, dropped, q->max);
	}
}

/* nng's thread: takes what arrived and asks for the next one at once. */
static void bus_backlog_cb(void *arg)
{
	struct hive_bus *bus = arg;
	struct bus_backlog *q = &bus->backlog;
	int rv = nng_aio_result(q->aio);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		pthread_mutex_lock(&q->mu);
		q->closed = true;
		pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
		return;
	}
	if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(q->aio);

		nng_aio_set_msg(q->aio, NULL);
		bus_backlog_push(bus, m);
	}
	nng_recv_aio(bus->sock, q->aio);
}

static int bus_backlog_init(struct hive_bus *bus, int recvbuf)
{
	struct bus_backlog *q = &bus->backlog;
	int rv;

	q->max = (size_t)(recvbuf > 0 ? recvbuf : BUS_NNG_RECVBUF) * BUS_BACKLOG_FACTOR;
	q->max_bytes = BUS_BACKLOG_BYTES;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return NNG_ENOMEM;
	hive_cond_init_mono(&q->cv);
	pthread_mutex_init(&q->mu, NULL);
	q->ready = true;
	if ((rv = nng_aio_alloc(&q->aio, bus_backlog_cb, bus)) != 0)
		return rv;
	bus->recv_fd = q->efd;
	nng_recv_aio(bus->sock, q->aio);
	return 0;
}

/* Called after nng_close: the callback has seen ECLOSED or is about to. */
static void bus_backlog_fini(struct bus_backlog *q)
{
	if (q->aio) {
		nng_aio_stop(q->aio);
		nng_aio_free(q->aio);
	}
	if (!q->ready)
		return;
	while (q->n > 0)
		bus_backlog_drop_oldest(q);
	free(q->ring);
	close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

/* Takes the oldest message, waiting up to timeout_ms (-1: for ever). */
static int bus_backlog_pop(struct hive_bus *bus, int timeout_ms, nng_msg **out)
{
	struct bus_backlog *q = &bus->backlog;
	int64_t deadline = hive_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int rv = 0;

	pthread_mutex_lock(&q->mu);
	while (q->n == 0 && !q->closed && rv == 0) {
		if (timeout_ms == 0)
			rv = ETIMEDOUT;
		else if (timeout_ms < 0)
			pthread_cond_wait(&q->cv, &q->mu);
		else
			rv = hive_cond_wait_until(&q->cv, &q->mu, deadline);
	}
	if (q->n == 0) {
		pthread_mutex_unlock(&q->mu);
		return q->closed ? NNG_ECLOSED : NNG_ETIMEDOUT;
	}
	*out = q->ring[q->head];
	q->ring[q->head] = NULL;
	q->head = (q->head + 1) % q->cap;
	q->n--;
	q->bytes -= nng_msg_len(*out);
	if (q->n == 0)
		bus_efd_set(q->efd, false);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* ------------------------------------------------------------ open, close */

/* nng 1.5.2 can hang in nng_close for ever when a message arrives on a
 * connection at the moment it is being closed (a race in its TCP transport,
 * fixed in nng 1.6: nanomsg/nng#1636); after that every later close in the
 * process hangs too. Two defences:
 *   - a SUBSCRIBE or REPLY socket first lowers RECVMAXSZ to 1 byte (nng
 *     applies it to live connections): the next message that arrives makes
 *     the transport drop that connection from its own receive path, where
 *     the race cannot happen (up to BUS_DRAIN_MS for that). A PULL socket
 *     that stops receiving parks its connections instead (queue full, no
 *     read pending), which is as safe: it waits BUS_PULL_SETTLE_MS;
 *   - the close runs on a thread of its own and is given BUS_CLOSE_WAIT_MS:
 *     past that the socket is abandoned (its memory leaks, which at
 *     shutdown, the only time daemons close sockets, costs nothing) rather
 *     than hanging the daemon's exit. */
#define BUS_DRAIN_MS      100
#define BUS_PULL_SETTLE_MS 25
#define BUS_CLOSE_WAIT_MS 2000

struct bus_closer {
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* hive_cond_init_mono */
	nng_socket sock;
	bool done, abandoned;
};

static void bus_closer_free(struct bus_closer *c)
{
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void *bus_closer_main(void *arg)
{
	struct bus_closer *c = arg;
	bool abandoned;

	nng_close(c->sock);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	abandoned = c->abandoned;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (abandoned)
		bus_closer_free(c);
	return NULL;
}

/* Closes the socket; false when nng did not finish in time. */
static bool bus_close_socket(struct hive_bus *bus)
{
	struct bus_closer *c;
	pthread_attr_t ta;
	pthread_t t;
	int64_t deadline;
	bool done;
	int rv = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		nng_close(bus->sock);
		return true;
	}
	pthread_mutex_init(&c->mu, NULL);
	hive_cond_init_mono(&c->cv);
	c->sock = bus->sock;
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	rv = pthread_create(&t, &ta, bus_closer_main, c);
	pthread_attr_destroy(&ta);
	if (rv != 0) {
		bus_closer_free(c);
		nng_close(bus->sock);
		return true;
	}
	deadline = hive_mono_ms() + BUS_CLOSE_WAIT_MS;
	rv = 0;
	pthread_mutex_lock(&c->mu);
	while (!c->done && rv == 0)
		rv = hive_cond_wait_until(&c->cv, &c->mu, deadline);
	done = c->done;
	c->abandoned = !done;
	pthread_mutex_unlock(&c->mu);
	if (done)
		bus_closer_free(c);
	return done;
}

/* Lets the connections of a receiving socket go quiet (see above). */
static void bus_drain(struct hive_bus *bus)
{
	struct timespec tick = { 0, 5 * 1000000L };
	int waited, wait = BUS_DRAIN_MS;

	if (!role_receives(bus->role) || atomic_load(&bus->peers) == 0)
		return;
	/* Not for PULL: on a parked pull0 connection the lowered limit makes
	 * nng 1.5.2 corrupt memory (seen crashing the PUSH side). Its wait is
	 * short, as jobs pushed meanwhile are lost with the socket. */
	if (bus->role != HIVE_BUS_PULL)
		nng_socket_set_size(bus->sock, NNG_OPT_RECVMAXSZ, 1);
	else
		wait = BUS_PULL_SETTLE_MS;
	for (waited = 0; waited < wait && atomic_load(&bus->peers) > 0; waited += 5)
		nanosleep(&tick, NULL);
}

/* ---------------------------------------------------------------- security */

static bool bus_has(const char *s)
{
	return s && *s;
}

static bool bus_url_is(const char *url, const char *scheme)
{
	return strncmp(url, scheme, strlen(scheme)) == 0;
}

/* The directory of an ipc socket: made 0700 (with any missing parents) when
 * absent; refused when it is not a directory of ours that only we may
 * enter. The socket itself gets BUS_IPC_MODE, but a socket file is briefly
 * bound with the umask's mode first, and a 0700 directory keeps everyone
 * else away from it for good. 0 / -1 with the reason in why. */
static int bus_ipc_dir(const char *path, char *why, size_t n)
{
	char dir[256];
	char *slash;
	struct stat st;

	if (strlen(path) >= sizeof(dir)) {
		snprintf(why, n, "socket path too long");
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';                      /* "/name": the root */
	else
		*slash = '\0';
	for (char *p = dir + 1; *p; p++) {          /* the parents first */
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(why, n, "cannot create the socket directory %s: %s", dir,
				 strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, n, "cannot create the socket directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) != 0) {
		snprintf(why, n, "socket directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, n, "socket directory %s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, n, "socket directory %s belongs to uid %u, not to this user (uid %u)",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(why, n, "socket directory %s has mode %04o: group and others must have no "
			 "access (chmod 700 %s)", dir, (unsigned)(st.st_mode & 07777), dir);
		return -1;
	}
	return 0;
}

/* A PEM file, NUL-terminated, in a buffer the caller wipes and frees. */
static char *bus_read_pem(const char *path, bool secret, char *why, size_t n)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > BUS_PEM_MAX) {
		snprintf(why, n, "%s is not a PEM file (empty, not a regular file or over %d bytes)",
			 path, BUS_PEM_MAX);
		close(fd);
		return NULL;
	}
	if (secret && (st.st_mode & 077)) {
		snprintf(why, n, "%s has mode %04o: a private key must be readable by its owner "
			 "only (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return NULL;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		snprintf(why, n, "out of memory");
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size &&
	       ((r = read(fd, buf + got, (size_t)st.st_size - got)) > 0 ||
		(r < 0 && errno == EINTR)))
		if (r > 0)
			got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	if (got == 0) {
		snprintf(why, n, "cannot read %s", path);
		free(buf);
		return NULL;
	}
	return buf;
}

static void bus_wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* The TLS side of a tls+tcp:// socket: the farm CA verifies the peer in
 * both directions (NNG_TLS_AUTH_MODE_REQUIRED: a listener's default is
 * NONE, i.e. anybody), and this daemon shows its own certificate. A dialer
 * checks the listener's certificate against host (its subjectAltName). nng
 * cannot change a config once a listener uses it: a new CA or revocation
 * means opening the socket again, i.e. restarting the daemon. */
static nng_tls_config *bus_tls_config(const struct hive_bus_opts *o, bool listen,
				      const char *host, char *why, size_t n)
{
	nng_tls_config *tc = NULL;
	char *cert = NULL, *key = NULL;
	int rv;

	if (!bus_has(o->tls_ca_file) || !bus_has(o->tls_cert_file) || !bus_has(o->tls_key_file)) {
		snprintf(why, n, "tls+tcp:// needs bus.tls.ca_file, bus.tls.cert_file and "
			 "bus.tls.key_file");
		return NULL;
	}
	if (access(o->tls_ca_file, R_OK) != 0) {
		snprintf(why, n, "cannot read the CA file %s: %s", o->tls_ca_file, strerror(errno));
		return NULL;
	}
	if (!(cert = bus_read_pem(o->tls_cert_file, false, why, n)) ||
	    !(key = bus_read_pem(o->tls_key_file, true, why, n)))
		goto fail;
	if ((rv = nng_tls_config_alloc(&tc, listen ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT))) {
		snprintf(why, n, "tls: %s", nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_ca_file(tc, o->tls_ca_file))) {
		snprintf(why, n, "CA file %s: not a PEM certificate (%s)", o->tls_ca_file,
			 nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_own_cert(tc, cert, key, NULL))) {
		snprintf(why, n, "certificate %s with key %s: not a PEM certificate and its "
			 "unencrypted key (%s)", o->tls_cert_file, o->tls_key_file,
			 nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED)) ||
	    (!listen && (rv = nng_tls_config_server_name(tc, host)))) {
		snprintf(why, n, "tls: %s", nng_strerror(rv));
		goto fail;
	}
	bus_wipe(cert);
	bus_wipe(key);
	return tc;
fail:
	if (tc)
		nng_tls_config_free(tc);
	bus_wipe(cert);
	bus_wipe(key);
	return NULL;
}

/* Listens on or dials url, with what its scheme needs: the TLS config on
 * tls+tcp://, the socket directory and mode on ipc://. Options go between
 * create and start: nng refuses IPC permissions on a started listener
 * ("resource busy"). nng's error in *rv, or ours in why (*rv = 0). */
static int bus_attach(struct hive_bus *bus, const char *url, const struct hive_bus_opts *o,
		      int *rv, char *why, size_t n)
{
	nng_tls_config *tc = NULL;
	nng_listener l;
	nng_dialer d;
	nng_url *u = NULL;

	*rv = 0;
	if (bus_url_is(url, "tls+tcp://")) {
		if ((*rv = nng_url_parse(&u, url)))
			return -1;
		tc = bus_tls_config(o, o->listen, u->u_hostname, why, n);
		nng_url_free(u);
		if (!tc)
			return -1;
	}
	if (o->listen) {
		if (bus_url_is(url, "ipc://") && bus_ipc_dir(url + 6, why, n) != 0)
			goto fail;
		if ((*rv = nng_listener_create(&l, bus->sock, url)))
			goto fail;
		/* Known before the first connection can come in on it. */
		atomic_store(&bus->listener_ids[bus->n_endpoints], (uint32_t)nng_listener_id(l));
		if ((tc && (*rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tc))) ||
		    (bus_url_is(url, "ipc://") &&
		     (*rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, BUS_IPC_MODE))) ||
		    (*rv = nng_listener_start(l, 0)))
			goto fail;
	} else {
		if ((*rv = nng_dialer_create(&d, bus->sock, url)) ||
		    (tc && (*rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc))))
			goto fail;
		nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, BUS_RECONN_MIN_MS);
		nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, BUS_RECONN_MAX_MS);
		if ((*rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)))
			goto fail;
	}
	if (tc)
		nng_tls_config_free(tc);       /* the listener or dialer holds it */
	return 0;
fail:
	if (tc)
		nng_tls_config_free(tc);
	return -1;
}

/* Undoes whatever hive_bus_open got to. */
static void bus_free(struct hive_bus *bus)
{
	if (bus->sock_open) {
		bus_drain(bus);
		/* nng_close waits for the pipes, whose removal calls
		 * bus_pipe_event: bus must outlive it. */
		if (!bus_close_socket(bus)) {
			log_warnx("bus_close_stuck url=%s role=%s wait_ms=%d msg=\"nng did not "
				  "finish closing (nng 1.5 bug); socket abandoned\"",
				  bus->url, role_names[bus->role], BUS_CLOSE_WAIT_MS);
			return;
		}
	}
	bus_backlog_fini(&bus->backlog);
	if (bus->recv_aio)
		nng_aio_free(bus->recv_aio);
	pthread_mutex_destroy(&bus->peers_mu);
	pthread_mutex_destroy(&bus->send_mu);
	pthread_mutex_destroy(&bus->recv_mu);
	free(bus);
}

struct hive_bus *hive_bus_open(enum hive_bus_role role, const char *url,
			       const struct hive_bus_opts *opts, char *err, size_t errlen)
{
	static const struct hive_bus_opts defaults = {
		.send_timeout_ms = -1, .recv_timeout_ms = -1,
	};
	struct hive_bus *bus;
	const char *what = "open";
	char why[1200];
	size_t transport_max;
	char sink[1];
	int rv;

	if (err == NULL || errlen == 0) {
		err = sink;             /* the caller does not want the reason */
		errlen = sizeof(sink);
	}
	if (opts == NULL)
		opts = &defaults;
	if ((int)role < HIVE_BUS_PUBLISH || role > HIVE_BUS_REPLY || url == NULL ||
	    strlen(url) >= sizeof(bus->url)) {
		snprintf(err, errlen, "bus: %s: invalid role or url", url ? url : "(null)");
		return NULL;
	}
	if (opts->source && !source_ok(opts->source, strlen(opts->source))) {
		snprintf(err, errlen, "bus: %s: invalid source name", url);
		return NULL;
	}
	if ((bus = calloc(1, sizeof(*bus))) == NULL) {
		snprintf(err, errlen, "bus: %s: out of memory", url);
		return NULL;
	}
	bus->role = role;
	bus->listen = opts->listen;
	bus->recv_fd = -1;
	snprintf(bus->url, sizeof(bus->url), "%s", url);
	snprintf(bus->src, sizeof(bus->src), "%s", opts->source ? opts->source : "unknown");
	bus->boot = opts->boot;
	bus->max_bytes = opts->max_message_bytes ? opts->max_message_bytes : BUS_DEFAULT_MAX;
	bus->send_timeout_ms = opts->send_timeout_ms;
	bus->recv_timeout_ms = opts->recv_timeout_ms;
	pthread_mutex_init(&bus->peers_mu, NULL);
	pthread_mutex_init(&bus->send_mu, NULL);
	pthread_mutex_init(&bus->recv_mu, NULL);

	if ((rv = bus_open_socket(role, &bus->sock)) != 0)
		goto fail;
	bus->sock_open = true;
	what = "options";
	if ((rv = nng_pipe_notify(bus->sock, NNG_PIPE_EV_ADD_POST, bus_pipe_event, bus)) ||
	    (rv = nng_pipe_notify(bus->sock, NNG_PIPE_EV_REM_POST, bus_pipe_event, bus)) ||
	    (rv = nng_socket_set_ms(bus->sock, NNG_OPT_SENDTIMEO,
				    bus_duration(opts->send_timeout_ms))) ||
	    (rv = nng_socket_set_ms(bus->sock, NNG_OPT_RECVTIMEO,
				    bus_duration(opts->recv_timeout_ms))))
		goto fail;
	if (role == HIVE_BUS_PUBLISH || role == HIVE_BUS_PUSH) {
		if ((rv = bus_set_buf(bus, NNG_OPT_SENDBUF, opts->sendbuf)))
			goto fail;
	}
	if (role_receives(role) || role == HIVE_BUS_REQUEST) {
		if ((rv = bus_set_buf(bus, NNG_OPT_RECVBUF, opts->recvbuf)))
			goto fail;
		/* Twice the envelope cap, so a message just over it is refused
		 * (and counted) by hive_envelope_decode, while a huge one cannot
		 * make us allocate more than that. */
		transport_max = bus->max_bytes > SIZE_MAX / 2 ? SIZE_MAX : bus->max_bytes * 2;
		if ((rv = nng_socket_set_size(bus->sock, NNG_OPT_RECVMAXSZ, transport_max)))
			goto fail;
	}
	if (role == HIVE_BUS_SUBSCRIBE) {
		/* The default in 1.5, asked for anyway: drops must hit the
		 * oldest messages, never the last one of a burst. */
		rv = nng_socket_set_bool(bus->sock, NNG_OPT_SUB_PREFNEW, true);
		if (rv != 0 && rv != NNG_ENOTSUP)
			goto fail;
		what = "backlog";
		if ((rv = bus_backlog_init(bus, opts->recvbuf)) != 0)
			goto fail;
	} else if (role_receives(role)) {
		what = "recv fd";
		if ((rv = nng_socket_get_int(bus->sock, NNG_OPT_RECVFD, &bus->recv_fd)) != 0)
			goto fail;
		what = "aio";
		if ((rv = nng_aio_alloc(&bus->recv_aio, NULL, NULL)) != 0)
			goto fail;
	}

	what = opts->listen ? "listen" : "dial";
	if (bus_attach(bus, url, opts, &rv, why, sizeof(why)) != 0) {
		if (rv == 0) {
			snprintf(err, errlen, "bus: %s: %s (%s): %s", url, what, role_names[role],
				 why);
			bus_free(bus);
			return NULL;
		}
		goto fail;
	}
	if (opts->listen)
		bus->n_endpoints = 1;
	log_debug("bus_open url=%s role=%s mode=%s", url, role_names[role],
		  opts->listen ? "listen" : "dial");
	return bus;

fail:
	snprintf(err, errlen, "bus: %s: %s (%s): %s", url, what, role_names[role],
		 nng_strerror(rv));
	bus_free(bus);
	return NULL;
}

int hive_bus_listen_also(struct hive_bus *bus, const char *url, const struct hive_bus_opts *opts,
			 char *err, size_t errlen)
{
	char why[1200], sink[1];
	int rv, ep;

	if (err == NULL || errlen == 0) {
		err = sink;
		errlen = sizeof(sink);
	}
	if (bus == NULL || url == NULL || opts == NULL || !opts->listen || !bus->listen) {
		snprintf(err, errlen, "bus: %s: only a listening socket listens on more URLs",
			 url ? url : "(null)");
		return -1;
	}
	if (bus->n_endpoints == BUS_ENDPOINTS_MAX) {
		snprintf(err, errlen, "bus: %s: at most %d endpoints a socket", url,
			 BUS_ENDPOINTS_MAX);
		return -1;
	}
	if (bus_attach(bus, url, opts, &rv, why, sizeof(why)) != 0) {
		atomic_store(&bus->listener_ids[bus->n_endpoints], 0);
		snprintf(err, errlen, "bus: %s: listen (%s): %s", url, role_names[bus->role],
			 rv ? nng_strerror(rv) : why);
		return -1;
	}
	ep = bus->n_endpoints++;
	log_debug("bus_listen_also url=%s role=%s endpoint=%d", url, role_names[bus->role], ep);
	return ep;
}

void hive_bus_close(struct hive_bus *bus)
{
	if (bus != NULL)
		bus_free(bus);
}

int hive_bus_subscribe(struct hive_bus *bus, const char *prefix)
{
	int rv;

	if (bus == NULL || bus->role != HIVE_BUS_SUBSCRIBE || prefix == NULL)
		return -1;
	if ((rv = nng_socket_set(bus->sock, NNG_OPT_SUB_SUBSCRIBE, prefix, strlen(prefix)))) {
		log_warnx("bus_subscribe_failed url=%s prefix=%s err=\"%s\"", bus->url, prefix,
			  nng_strerror(rv));
		return -1;
	}
	return 0;
}

static int bus_status(struct hive_bus *bus, int rv, const char *op)
{
	switch (rv) {
	case 0:
		return HIVE_BUS_OK;
	case NNG_ETIMEDOUT:
	case NNG_EAGAIN:
		return HIVE_BUS_TIMEOUT;
	case NNG_ECLOSED:
		return HIVE_BUS_CLOSED;
	default:
		log_warnx("bus_%s_failed url=%s role=%s err=\"%s\"", op, bus->url,
			  role_names[bus->role], nng_strerror(rv));
		return HIVE_BUS_ERROR;
	}
}

static int bus_send_bytes(struct hive_bus *bus, const void *buf, size_t len, bool nonblock)
{
	nng_msg *m;
	int rv;

	if ((rv = nng_msg_alloc(&m, len)) != 0) {
		atomic_fetch_add(&bus->send_failed, 1);
		return bus_status(bus, rv, "send");
	}
	memcpy(nng_msg_body(m), buf, len);
	if ((rv = nng_sendmsg(bus->sock, m, nonblock ? NNG_FLAG_NONBLOCK : 0)) != 0) {
		nng_msg_free(m);
		atomic_fetch_add(&bus->send_failed, 1);
		return bus_status(bus, rv, "send");
	}
	atomic_fetch_add(&bus->sent, 1);
	return HIVE_BUS_OK;
}

/* The seq counter of topic, added on first use; NULL when full. Called
 * with send_mu held. */
static unsigned long long *bus_topic_seq(struct hive_bus *bus, const char *topic)
{
	int i;

	for (i = 0; i < bus->n_topics; i++)
		if (strcmp(bus->topics[i].topic, topic) == 0)
			return &bus->topics[i].seq;
	if (bus->n_topics == BUS_TOPICS_MAX)
		return NULL;
	snprintf(bus->topics[i].topic, sizeof(bus->topics[i].topic), "%s", topic);
	bus->topics[i].seq = 0;
	bus->n_topics++;
	return &bus->topics[i].seq;
}

/* Encodes body under topic with the topic's next seq; on success *seqp
 * points at the counter (send_mu held by the caller). */
static int bus_encode_next(struct hive_bus *bus, const char *topic, json_t *body,
			   unsigned long long **seqp, char **buf, size_t *len)
{
	unsigned long long *seq;

	if (topic == NULL || !topic_ok(topic, strlen(topic))) {
		log_warnx("bus_send_refused url=%s reason=bad_topic", bus->url);
		return -1;
	}
	if ((seq = bus_topic_seq(bus, topic)) == NULL) {
		log_warnx("bus_send_refused url=%s topic=%s reason=too_many_topics max=%d",
			  bus->url, topic, BUS_TOPICS_MAX);
		return -1;
	}
	if (hive_envelope_encode(topic, bus->src, bus->boot, *seq + 1, hive_wall_ms(), body,
				 buf, len) != 0) {
		log_warnx("bus_send_refused url=%s topic=%s reason=encode", bus->url, topic);
		return -1;
	}
	if (*len > bus->max_bytes) {
		log_warnx("bus_send_refused url=%s topic=%s reason=too_large bytes=%zu max=%zu",
			  bus->url, topic, *len, bus->max_bytes);
		free(*buf);
		*buf = NULL;
		return -1;
	}
	++*seq;
	*seqp = seq;
	return 0;
}

int hive_bus_send(struct hive_bus *bus, const char *topic, json_t *body, bool nonblock)
{
	unsigned long long *seq;
	char *buf;
	size_t len;
	bool hold;
	int rc;

	if (bus == NULL || bus->role == HIVE_BUS_SUBSCRIBE || bus->role == HIVE_BUS_PULL ||
	    bus->role == HIVE_BUS_REQUEST)
		return HIVE_BUS_ERROR;
	/* Sends that cannot wait keep the lock until the message is queued,
	 * so two threads never put one topic's seqs on the wire out of order
	 * (a subscriber would count a gap and a duplicate), and a refused send
	 * gives its seq back. A blocking send must not hold others up: its seq
	 * is spent even if the send then fails. */
	hold = nonblock || bus->role == HIVE_BUS_PUBLISH || bus->role == HIVE_BUS_REPLY;
	pthread_mutex_lock(&bus->send_mu);
	if (bus_encode_next(bus, topic, body, &seq, &buf, &len) != 0) {
		pthread_mutex_unlock(&bus->send_mu);
		atomic_fetch_add(&bus->send_failed, 1);
		return HIVE_BUS_ERROR;
	}
	if (!hold)
		pthread_mutex_unlock(&bus->send_mu);
	rc = bus_send_bytes(bus, buf, len, nonblock);
	if (hold) {
		if (rc != HIVE_BUS_OK)
			--*seq;
		pthread_mutex_unlock(&bus->send_mu);
	}
	free(buf);
	return rc;
}

int hive_bus_send_raw(struct hive_bus *bus, const void *buf, size_t len, bool nonblock)
{
	if (bus == NULL || (buf == NULL && len > 0))
		return HIVE_BUS_ERROR;
	return bus_send_bytes(bus, buf, len, nonblock);
}

/* Counts a refused envelope and says so, once per reason and socket in a
 * while: a sender gone wrong must not flood the log. */
static void bus_reject(struct hive_bus *bus, enum hive_envelope_error e, size_t len)
{
	char key[320];

	atomic_fetch_add(&bus->rejected, 1);
	atomic_fetch_add(&bus->rejected_by[e], 1);
	snprintf(key, sizeof(key), "bus %s %s", bus->url, hive_envelope_error_name(e));
	hive_log_complain(key, "bus_envelope_rejected url=%s role=%s reason=%s bytes=%zu",
			  bus->url, role_names[bus->role], hive_envelope_error_name(e), len);
}

/* Which of the socket's endpoints m came in on: the index of its pipe's
 * listener; 0 on a dialing socket; -1 when not known. */
static int bus_endpoint_of(struct hive_bus *bus, nng_msg *m)
{
	nng_pipe p = nng_msg_get_pipe(m);
	nng_listener l;
	uint32_t id;

	if (!bus->listen)
		return 0;
	if (nng_pipe_id(p) < 0)
		return -1;
	l = nng_pipe_listener(p);
	if (nng_listener_id(l) <= 0)
		return -1;
	id = (uint32_t)nng_listener_id(l);
	for (int i = 0; i < BUS_ENDPOINTS_MAX; i++)
		if (atomic_load(&bus->listener_ids[i]) == id)
			return i;
	return -1;
}

static int bus_decode_msg(struct hive_bus *bus, nng_msg *m, struct hive_envelope *env)
{
	enum hive_envelope_error e;
	size_t len = nng_msg_len(m);
	int endpoint = bus_endpoint_of(bus, m);

	e = hive_envelope_decode(nng_msg_body(m), len, bus->max_bytes, env);
	nng_msg_free(m);
	if (e == HIVE_ENV_OK)
		env->endpoint = endpoint;
	if (e != HIVE_ENV_OK) {
		bus_reject(bus, e, len);
		return HIVE_BUS_REJECTED;
	}
	atomic_fetch_add(&bus->received, 1);
	return HIVE_BUS_OK;
}

/* Receives one nng message within timeout (nng duration). */
static int bus_recv_msg(struct hive_bus *bus, nng_duration timeout, nng_msg **out)
{
	nng_aio *aio = NULL;
	bool shared;
	int rv;

	/* A second reader (rare) gets an aio of its own. */
	shared = pthread_mutex_trylock(&bus->recv_mu) == 0;
	if (shared) {
		aio = bus->recv_aio;
	} else if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		return rv;
	}
	nng_aio_set_timeout(aio, timeout);
	nng_recv_aio(bus->sock, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) == 0)
		*out = nng_aio_get_msg(aio);
	nng_aio_set_msg(aio, NULL);
	if (shared)
		pthread_mutex_unlock(&bus->recv_mu);
	else
		nng_aio_free(aio);
	return rv;
}

int hive_bus_recv(struct hive_bus *bus, struct hive_envelope *env, int timeout_ms)
{
	nng_msg *m = NULL;
	int rv;

	if (bus == NULL || env == NULL || !role_receives(bus->role))
		return HIVE_BUS_ERROR;
	if (timeout_ms < 0)
		timeout_ms = bus->recv_timeout_ms;
	if (bus->role == HIVE_BUS_SUBSCRIBE)
		rv = bus_backlog_pop(bus, timeout_ms, &m);
	else
		rv = bus_recv_msg(bus, bus_duration(timeout_ms), &m);
	if (rv != 0)
		return bus_status(bus, rv, "recv");
	return bus_decode_msg(bus, m, env);
}

int hive_bus_request(struct hive_bus *bus, const char *topic, json_t *body,
		     struct hive_envelope *reply, int timeout_ms)
{
	unsigned long long *seq;
	nng_ctx ctx;
	nng_aio *aio = NULL;
	nng_msg *m = NULL;
	char *buf = NULL;
	size_t len;
	int64_t deadline = 0;
	int rv, rc;

	if (bus == NULL || reply == NULL || bus->role != HIVE_BUS_REQUEST)
		return HIVE_BUS_ERROR;
	if (timeout_ms < 0)
		timeout_ms = bus->recv_timeout_ms;
	if (timeout_ms >= 0)
		deadline = hive_mono_ms() + timeout_ms;

	pthread_mutex_lock(&bus->send_mu);
	rc = bus_encode_next(bus, topic, body, &seq, &buf, &len);
	pthread_mutex_unlock(&bus->send_mu);
	if (rc != 0) {
		atomic_fetch_add(&bus->send_failed, 1);
		return HIVE_BUS_ERROR;
	}
	/* A context per request: threads may ask at the same time. */
	if ((rv = nng_ctx_open(&ctx, bus->sock)) != 0) {
		free(buf);
		atomic_fetch_add(&bus->send_failed, 1);
		return bus_status(bus, rv, "request");
	}
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 || (rv = nng_msg_alloc(&m, len)) != 0) {
		atomic_fetch_add(&bus->send_failed, 1);
		goto out;
	}
	memcpy(nng_msg_body(m), buf, len);
	nng_aio_set_msg(aio, m);
	nng_aio_set_timeout(aio, bus_duration(timeout_ms));
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(aio));   /* still ours when refused */
		atomic_fetch_add(&bus->send_failed, 1);
		goto out;
	}
	atomic_fetch_add(&bus->sent, 1);
	nng_aio_set_msg(aio, NULL);
	if (timeout_ms >= 0) {
		nng_aio_set_timeout(aio, (nng_duration)hive_ms_left(deadline));
	}
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) == 0) {
		m = nng_aio_get_msg(aio);
		nng_aio_set_msg(aio, NULL);
	}
out:
	if (aio)
		nng_aio_free(aio);
	nng_ctx_close(ctx);
	free(buf);
	if (rv != 0)
		return bus_status(bus, rv, "request");
	return bus_decode_msg(bus, m, reply);
}

int hive_bus_recv_fd(struct hive_bus *bus)
{
	return bus ? bus->recv_fd : -1;
}

int hive_bus_peers(const struct hive_bus *bus)
{
	return bus ? atomic_load(&bus->peers) : 0;
}

void hive_bus_get_stats(const struct hive_bus *bus, struct hive_bus_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	if (bus == NULL)
		return;
	out->sent = atomic_load(&bus->sent);
	out->send_failed = atomic_load(&bus->send_failed);
	out->received = atomic_load(&bus->received);
	out->rejected = atomic_load(&bus->rejected);
	for (i = 0; i < HIVE_ENV_ERROR_COUNT; i++)
		out->rejected_by[i] = atomic_load(&bus->rejected_by[i]);
}

int hive_bus_url_ok(const char *url)
{
	nng_url *u = NULL;
	int rc;

	if (!url)
		return -1;
	rc = nng_url_parse(&u, url);
	if (u)
		nng_url_free(u);
	return rc == 0 ? 0 : -1;
}
