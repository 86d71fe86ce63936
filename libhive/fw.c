/* fw — the asynchronous firmware client; see hive/fw.h.
 *
 * One curl multi handle per client, driven by the caller's hive_loop:
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to wake it (CURLMOPT_TIMERFUNCTION); the loop calls back into
 * curl_multi_socket_action. Nothing here blocks, so thousands of requests
 * share one thread with the daemon's other fds.
 *
 * At most opts.max_in_flight transfers run at once; later requests wait in a
 * FIFO queue and start as earlier ones finish. Easy handles are recycled
 * (up to max_in_flight idle ones).
 *
 * Thousands of distinct hosts. What libcurl 7.88 (Debian 12) does with
 * them, and what it cost at 10,000 miners (docs/firmware-client.md has
 * the figures):
 *  - DNS cache: every finished transfer walks the whole cache
 *    (multi_done -> Curl_hostcache_prune), one entry per host asked in the
 *    last CURLOPT_DNS_CACHE_TIMEOUT (60 s): 10,000 entries per transfer.
 *    Hosts here are IP literals, so the cache saves nothing; with a timeout
 *    of 0 each prune empties it and the walk stays a few entries long.
 *  - Connection cache: a connection evicted because the cache is full
 *    (CURLMOPT_MAXCONNECTS, also MAX_TOTAL_CONNECTIONS and
 *    MAX_HOST_CONNECTIONS) leaves its host's empty bundle behind
 *    (Curl_conncache_extract_oldest does not remove it), and every later
 *    eviction walks all bundles: one per host ever evicted. So curl must
 *    never evict. A transfer that starts while more than max_connections
 *    connections are open (in use and idle) gets CURLOPT_FORBID_REUSE (it
 *    may still reuse an idle one, and closes its own when done).
 *    MAXCONNECTS is max_connections + 3 x max_in_flight, above the most
 *    that rule lets the cache hold: the connections open when the last
 *    keeper started, those opened by transfers then in flight, and those
 *    in use (max_connections + 2 x max_in_flight). The sockets are opened
 *    and closed through callbacks that count them (st.connections).
 *
 * User callbacks run only from drain(), never from inside a curl callback,
 * so they may submit new requests.
 */
#include "hive/fw.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#define DEF_IN_FLIGHT 256
#define DEF_TIMEOUT   5000
#define DEF_MAX_BODY  (1024 * 1024)
#define BODY_CHUNK    16384

struct fw_xfer {
	struct fw_xfer *next, *prev;    /* queue (next only) or live list */
	struct hive_fw_client *c;
	CURL *easy;
	struct curl_slist *hdrs;
	enum hive_fw_call call;         /* as asked */
	bool boards;                    /* asking /boards */
	bool too_large;                 /* the write callback refused the body */
	int timeout_ms;
	int port;
	char ip[46];
	char *api_key, *token, *arg, *desc;
	char *post;                     /* request body, NULL for GET */
	char *buf;                      /* response body */
	size_t len, cap;
	int64_t started;
	hive_fw_cb *cb;
	void *cb_arg;
	char errbuf[CURL_ERROR_SIZE];
};

struct hive_fw_client {
	struct hive_loop *loop;
	CURLM *multi;
	struct hive_fw_opts o;
	int64_t timer_id;               /* curl's wake-up, 0 when none */
	struct fw_xfer *qhead, *qtail;  /* waiting for a slot */
	struct fw_xfer *live;           /* in flight */
	CURL **idle;                    /* recycled easy handles */
	int nidle;
	struct hive_fw_result *res;     /* handed to callbacks, one at a time */
	struct hive_fw_stats st;
	uint8_t *watched;               /* fd → 1 while the loop watches it for us */
	size_t nwatched;
	char **secrets;                 /* registered with hive_log_secret (open addressing) */
	size_t nsecrets, capsecrets;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void drain(struct hive_fw_client *c);

/* ---------------------------------------------------------------- loop glue */

static void on_fd(struct hive_loop *loop, int fd, int events, void *arg)
{
	struct hive_fw_client *c = arg;
	int flags = 0, running;

	(void)loop;
	if (events & HIVE_LOOP_READ)
		flags |= CURL_CSELECT_IN;
	if (events & HIVE_LOOP_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	drain(c);
}

static int64_t on_timer(struct hive_loop *loop, void *arg)
{
	struct hive_fw_client *c = arg;
	int running;

	(void)loop;
	c->timer_id = 0;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(c);
	return -1;
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct hive_fw_client *c = userp;
	int ev = 0;

	(void)easy;
	(void)socketp;
	switch (what) {
	case CURL_POLL_IN:
		ev = HIVE_LOOP_READ;
		break;
	case CURL_POLL_OUT:
		ev = HIVE_LOOP_WRITE;
		break;
	case CURL_POLL_INOUT:
		ev = HIVE_LOOP_READ | HIVE_LOOP_WRITE;
		break;
	case CURL_POLL_REMOVE:
	default:
		hive_loop_unwatch(c->loop, s);
		if ((size_t)s < c->nwatched)
			c->watched[s] = 0;
		return 0;
	}
	if ((size_t)s >= c->nwatched) {
		size_t n = c->nwatched ? c->nwatched : 256;
		uint8_t *w;

		while (n <= (size_t)s)
			n *= 2;
		if (!(w = realloc(c->watched, n)))
			return -1;
		memset(w + c->nwatched, 0, n - c->nwatched);
		c->watched = w;
		c->nwatched = n;
	}
	if (hive_loop_watch(c->loop, s, ev, on_fd, c) < 0) {
		log_warn("fw_watch_failed fd=%d", (int)s);
		return -1;
	}
	c->watched[s] = 1;
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct hive_fw_client *c = userp;

	(void)multi;
	if (c->timer_id > 0) {
		hive_loop_cancel(c->loop, c->timer_id);
		c->timer_id = 0;
	}
	if (timeout_ms < 0)
		return 0;
	c->timer_id = hive_loop_timer(c->loop, timeout_ms, on_timer, c);
	if (c->timer_id < 0) {
		c->timer_id = 0;
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- transfers */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct fw_xfer *x = arg;
	size_t n = size * nmemb;
	size_t max = x->c->o.max_body;

	if (n > max || x->len > max - n) {
		x->too_large = true;
		return 0;
	}
	if (x->len + n + 1 > x->cap) {
		size_t ncap = x->cap ? x->cap : BODY_CHUNK;
		char *nb;

		while (ncap < x->len + n + 1)
			ncap *= 2;
		if (ncap > max + 1)
			ncap = max + 1;
		if (!(nb = realloc(x->buf, ncap)))
			return 0;
		x->buf = nb;
		x->cap = ncap;
	}
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	x->buf[x->len] = '\0';
	return n;
}

static void xfer_free(struct fw_xfer *x)
{
	if (!x)
		return;
	curl_slist_free_all(x->hdrs);
	free(x->api_key);
	free(x->token);
	free(x->arg);
	free(x->desc);
	free(x->post);
	free(x->buf);
	free(x);
}

/* Gives the easy handle back to the pool (or frees it). */
static void easy_release(struct hive_fw_client *c, CURL *easy)
{
	if (!easy)
		return;
	if (c->nidle < c->o.max_in_flight) {
		curl_easy_reset(easy);
		c->idle[c->nidle++] = easy;
	} else {
		curl_easy_cleanup(easy);
	}
}

static int set_url(struct fw_xfer *x)
{
	char url[160];
	const char *path = hive_fw_call_path(x->boards ? HIVE_FW_BOARDS : x->call);
	bool v6 = strchr(x->ip, ':') != NULL;

	snprintf(url, sizeof(url), "http://%s%s%s:%d/api/v1/%s", v6 ? "[" : "", x->ip,
		 v6 ? "]" : "", x->port, path);
	return curl_easy_setopt(x->easy, CURLOPT_URL, url) == CURLE_OK ? 0 : -1;
}

static int add_header(struct fw_xfer *x, const char *name, const char *value)
{
	char line[512];
	struct curl_slist *l;

	/* "Name:" with nothing after it removes a header curl would add */
	snprintf(line, sizeof(line), "%s:%s%s", name, *value ? " " : "", value);
	if (!(l = curl_slist_append(x->hdrs, line)))
		return -1;
	x->hdrs = l;
	return 0;
}

/* Every connection to a miner is opened and closed here, so that
 * st.connections counts them (in use and idle). */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct hive_fw_client *c = arg;
	curl_socket_t s;

	(void)purpose;
	if ((s = socket(a->family, a->socktype, a->protocol)) != CURL_SOCKET_BAD)
		c->st.connections++;
	return s;
}

static int on_close_socket(void *arg, curl_socket_t s)
{
	struct hive_fw_client *c = arg;

	c->st.connections--;
	return close(s);
}

/* Sets up the easy handle of x. 0 / -1. */
static int xfer_setup(struct hive_fw_client *c, struct fw_xfer *x)
{
	CURL *e;
	CURLcode rc = CURLE_OK;

	if (c->nidle > 0)
		e = c->idle[--c->nidle];
	else if (!(e = curl_easy_init()))
		return -1;
	x->easy = e;
	if (set_url(x) < 0)
		return -1;
	if (x->api_key && add_header(x, "x-api-key", x->api_key) < 0)
		return -1;
	if (x->token) {
		char bearer[300];

		snprintf(bearer, sizeof(bearer), "Bearer %s", x->token);
		if (add_header(x, "Authorization", bearer) < 0)
			return -1;
	}
	if (add_header(x, "Accept", "application/json") < 0 || add_header(x, "Expect", "") < 0)
		return -1;
	if (x->post && add_header(x, "Content-Type", "application/json") < 0)
		return -1;

	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			       (long)(c->o.connect_timeout_ms < x->timeout_ms ?
				      c->o.connect_timeout_ms : x->timeout_ms));
	rc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->o.max_body);
	/* IP literals only: a DNS cache entry saves nothing, and curl walks the
	 * whole cache after every transfer (see the top of the file) */
	rc |= curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	rc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
	rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
	if (c->o.no_keepalive) {
		rc |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
		rc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	} else if (c->st.connections > c->o.max_connections) {
		/* enough open: reuse what is there, keep nothing new */
		rc |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	}
	if (x->post) {
		rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(x->post));
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->post);
	}
	return rc == CURLE_OK ? 0 : -1;
}

static void live_link(struct hive_fw_client *c, struct fw_xfer *x)
{
	x->prev = NULL;
	x->next = c->live;
	if (c->live)
		c->live->prev = x;
	c->live = x;
}

static void live_unlink(struct hive_fw_client *c, struct fw_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		c->live = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
}

/* Starts x; on failure completes it with an internal error from drain. */
static int xfer_start(struct hive_fw_client *c, struct fw_xfer *x)
{
	x->started = hive_mono_ms();
	if (xfer_setup(c, x) < 0 || curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
		return -1;
	live_link(c, x);
	c->st.in_flight++;
	c->st.started++;
	return 0;
}

/* ---------------------------------------------------------------- results */

static void http_error_text(const struct fw_xfer *x, char *out, size_t len)
{
	json_t *j, *e;

	out[0] = '\0';
	if (!x->buf || x->len == 0 || x->len > 4096)
		return;
	if (!(j = json_loadb(x->buf, x->len, 0, NULL)))
		return;
	e = json_object_get(j, "err");
	if (json_is_string(e)) {
		size_t i;

		snprintf(out, len, ": %s", json_string_value(e));
		for (i = 0; out[i]; i++)
			if ((unsigned char)out[i] < 0x20)
				out[i] = ' ';
	}
	json_decref(j);
}

static void set_err(struct hive_fw_result *r, enum hive_fw_err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(struct hive_fw_result *r, enum hive_fw_err_kind kind, const char *fmt, ...)
{
	char text[200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	r->err.kind = kind;
	r->err.http_status = r->http_status;
	n = snprintf(r->err.msg, sizeof(r->err.msg), "%.23s: %.200s", r->err.endpoint, text);
	(void)n;
}

/* Turns a finished transfer into c->res. */
static void classify(struct hive_fw_client *c, struct fw_xfer *x, CURLcode cc, long status)
{
	struct hive_fw_result *r = c->res;
	enum hive_fw_call pcall = x->boards ? HIVE_FW_BOARDS : x->call;
	char detail[160];

	memset(r, 0, offsetof(struct hive_fw_result, info));
	r->call = x->call;
	r->http_status = (int)status;
	snprintf(r->ip, sizeof(r->ip), "%s", x->ip);
	r->port = x->port;
	r->used_boards = x->boards;
	r->latency_ms = hive_mono_ms() - x->started;
	snprintf(r->err.endpoint, sizeof(r->err.endpoint), "%s", hive_fw_call_path(pcall));

	if (cc != CURLE_OK) {
		r->http_status = 0;
		switch (cc) {
		case CURLE_OPERATION_TIMEDOUT:
			set_err(r, HIVE_FW_ERR_TIMEOUT, "timed out after %d ms", x->timeout_ms);
			break;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
			set_err(r, HIVE_FW_ERR_REFUSED, "connection refused: %s", x->errbuf);
			break;
		case CURLE_FILESIZE_EXCEEDED:
			set_err(r, HIVE_FW_ERR_TOO_LARGE, "body over %zu bytes", c->o.max_body);
			break;
		case CURLE_WRITE_ERROR:
			if (x->too_large)
				set_err(r, HIVE_FW_ERR_TOO_LARGE, "body over %zu bytes", c->o.max_body);
			else
				set_err(r, HIVE_FW_ERR_INTERNAL, "out of memory for the body");
			break;
		case CURLE_GOT_NOTHING:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2_STREAM:
			set_err(r, HIVE_FW_ERR_RESET, "connection reset: %s", x->errbuf);
			break;
		case CURLE_WEIRD_SERVER_REPLY:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_BAD_CONTENT_ENCODING:
			set_err(r, HIVE_FW_ERR_HTTP, "not a usable HTTP answer: %s", x->errbuf);
			break;
		default:
			set_err(r, HIVE_FW_ERR_INTERNAL, "curl error %d: %s", (int)cc,
				x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
			break;
		}
		return;
	}
	if (status < 200 || status > 299) {
		http_error_text(x, detail, sizeof(detail));
		if (status == 401 || status == 403)
			set_err(r, HIVE_FW_ERR_AUTH, "HTTP %ld%s", status, detail);
		else if (status == 404)
			set_err(r, HIVE_FW_ERR_NOT_FOUND, "HTTP 404%s", detail);
		else if (status == 429)
			set_err(r, HIVE_FW_ERR_LOCKED, "HTTP 429%s", detail);
		else
			set_err(r, HIVE_FW_ERR_HTTP, "HTTP %ld%s", status, detail);
		return;
	}
	if (hive_fw_parse(pcall, x->buf ? x->buf : "", x->len, r) < 0) {
		r->err.http_status = (int)status;
		r->call = x->call;
		return;
	}
	r->err.http_status = (int)status;
	r->call = x->call;
}

/* Takes a finished transfer off the multi handle and either retries it on
 * /boards or runs its callback. */
static void finish(struct hive_fw_client *c, struct fw_xfer *x, CURLcode cc)
{
	long status = 0, connects = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		c->st.connects += (uint64_t)connects;
	curl_multi_remove_handle(c->multi, x->easy);
	if (cc == CURLE_OK && status == 404 && x->call == HIVE_FW_CHAINS && !x->boards) {
		x->boards = true;
		x->len = 0;
		x->too_large = false;
		if (set_url(x) == 0 && curl_multi_add_handle(c->multi, x->easy) == CURLM_OK) {
			c->st.started++;
			return;
		}
	}
	live_unlink(c, x);
	c->st.in_flight--;
	classify(c, x, cc, status);
	easy_release(c, x->easy);
	x->easy = NULL;
	c->st.completed++;
	if (c->res->err.kind != HIVE_FW_OK)
		c->st.failed++;
	c->st.by_kind[c->res->err.kind]++;
	x->cb(c->res, x->cb_arg);
	xfer_free(x);
}

/* Runs a callback with an internal error for a request that never ran. */
static void fail_unstarted(struct hive_fw_client *c, struct fw_xfer *x, const char *why)
{
	struct hive_fw_result *r = c->res;

	if (x->easy) {
		easy_release(c, x->easy);
		x->easy = NULL;
	}
	memset(r, 0, offsetof(struct hive_fw_result, info));
	r->call = x->call;
	snprintf(r->ip, sizeof(r->ip), "%s", x->ip);
	r->port = x->port;
	snprintf(r->err.endpoint, sizeof(r->err.endpoint), "%s", hive_fw_call_path(x->call));
	set_err(r, HIVE_FW_ERR_INTERNAL, "%s", why);
	c->st.completed++;
	c->st.failed++;
	c->st.by_kind[HIVE_FW_ERR_INTERNAL]++;
	x->cb(r, x->cb_arg);
	xfer_free(x);
}

/* Completes what curl finished, then starts queued requests while slots
 * are free. Re-entry (a callback running the loop) is harmless: the inner
 * call does the work and the outer one finds nothing left. */
static void drain(struct hive_fw_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct fw_xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			finish(c, x, m->data.result);
	}
	while (c->qhead && c->st.in_flight < c->o.max_in_flight) {
		struct fw_xfer *x = c->qhead;

		c->qhead = x->next;
		if (!c->qhead)
			c->qtail = NULL;
		x->next = NULL;
		c->st.queued--;
		if (xfer_start(c, x) < 0)
			fail_unstarted(c, x, "could not start the transfer");
	}
}

/* ---------------------------------------------------------------- public */

struct hive_fw_client *hive_fw_client_new(struct hive_loop *loop, const struct hive_fw_opts *opts)
{
	struct hive_fw_client *c;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK || !loop) {
		errno = loop ? EIO : EINVAL;
		return NULL;
	}
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	if (opts)
		c->o = *opts;
	if (c->o.max_in_flight <= 0)
		c->o.max_in_flight = DEF_IN_FLIGHT;
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = DEF_TIMEOUT;
	if (c->o.connect_timeout_ms <= 0 || c->o.connect_timeout_ms > c->o.timeout_ms)
		c->o.connect_timeout_ms = c->o.timeout_ms;
	if (c->o.max_body == 0)
		c->o.max_body = DEF_MAX_BODY;
	if (c->o.max_connections <= 0)
		c->o.max_connections = c->o.max_in_flight;
	c->loop = loop;
	if (!(c->idle = calloc((size_t)c->o.max_in_flight, sizeof(*c->idle))) ||
	    !(c->res = malloc(sizeof(*c->res))) || !(c->multi = curl_multi_init()))
		goto fail;
	if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
			      (long)c->o.max_connections + 3L * c->o.max_in_flight) != CURLM_OK)
		goto fail;
	return c;
fail:
	if (c->multi)
		curl_multi_cleanup(c->multi);
	free(c->res);
	free(c->idle);
	free(c);
	errno = ENOMEM;
	return NULL;
}

void hive_fw_client_free(struct hive_fw_client *c)
{
	struct fw_xfer *x;

	if (!c)
		return;
	while ((x = c->live) != NULL) {
		live_unlink(c, x);
		curl_multi_remove_handle(c->multi, x->easy);
		curl_easy_cleanup(x->easy);
		xfer_free(x);
	}
	while ((x = c->qhead) != NULL) {
		c->qhead = x->next;
		xfer_free(x);
	}
	for (int i = 0; i < c->nidle; i++)
		curl_easy_cleanup(c->idle[i]);
	curl_multi_cleanup(c->multi);
	if (c->timer_id > 0)
		hive_loop_cancel(c->loop, c->timer_id);
	/* whatever curl did not say goodbye to must not call us back */
	for (size_t fd = 0; fd < c->nwatched; fd++)
		if (c->watched[fd])
			hive_loop_unwatch(c->loop, (int)fd);
	free(c->watched);
	/* the secrets stay registered with the log: they are still secret */
	for (size_t i = 0; i < c->capsecrets; i++)
		free(c->secrets[i]);
	free(c->secrets);
	free(c->idle);
	free(c->res);
	free(c);
}

/* A header value must not smuggle in another header. */
static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Inserts s into the client's set; true when it was there already. */
static bool secret_seen(struct hive_fw_client *c, const char *s)
{
	size_t i;

	if ((c->nsecrets + 1) * 2 > c->capsecrets) {
		size_t ncap = c->capsecrets ? c->capsecrets * 2 : 64;
		char **nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return false;
		for (size_t k = 0; k < c->capsecrets; k++) {
			if (!c->secrets[k])
				continue;
			for (i = fnv1a(c->secrets[k]) & (ncap - 1); nt[i]; i = (i + 1) & (ncap - 1))
				;
			nt[i] = c->secrets[k];
		}
		free(c->secrets);
		c->secrets = nt;
		c->capsecrets = ncap;
	}
	for (i = fnv1a(s) & (c->capsecrets - 1); c->secrets[i]; i = (i + 1) & (c->capsecrets - 1))
		if (strcmp(c->secrets[i], s) == 0)
			return true;
	if ((c->secrets[i] = strdup(s)) != NULL)
		c->nsecrets++;
	return false;
}

/* Each distinct secret goes to hive_log_secret once per client, not once
 * per request: a poller sends the same key every few seconds for months. */
static void keep_secret(struct hive_fw_client *c, const char *s)
{
	if (s && *s && !secret_seen(c, s))
		hive_log_secret(s);
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*oom = true;
	return d;
}

static char *post_body(const struct hive_fw_req *req)
{
	json_t *j = NULL;
	char *s;

	switch (req->call) {
	case HIVE_FW_UNLOCK:
		j = json_pack("{s:s}", "pw", req->arg);
		break;
	case HIVE_FW_APIKEY_CREATE:
		j = json_pack("{s:s,s:s}", "description",
			      req->description ? req->description : "PowerHive", "key", req->arg);
		break;
	case HIVE_FW_APIKEY_DELETE:
		j = json_pack("{s:s}", "key", req->arg);
		break;
	case HIVE_FW_SET_PRESET:
		j = json_pack("{s:{s:{s:s}}}", "miner", "overclock", "preset", req->arg);
		break;
	default:
		return strdup("");
	}
	if (!j)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static bool is_post(enum hive_fw_call call)
{
	switch (call) {
	case HIVE_FW_UNLOCK:
	case HIVE_FW_APIKEY_CREATE:
	case HIVE_FW_APIKEY_DELETE:
	case HIVE_FW_SET_PRESET:
	case HIVE_FW_MINING_RESTART:
	case HIVE_FW_MINING_STOP:
	case HIVE_FW_MINING_START:
	case HIVE_FW_MINING_PAUSE:
	case HIVE_FW_MINING_RESUME:
	case HIVE_FW_REBOOT:
		return true;
	default:
		return false;
	}
}

static bool needs_arg(enum hive_fw_call call)
{
	return call == HIVE_FW_UNLOCK || call == HIVE_FW_APIKEY_CREATE ||
	       call == HIVE_FW_APIKEY_DELETE || call == HIVE_FW_SET_PRESET;
}

int hive_fw_request(struct hive_fw_client *c, const struct hive_fw_req *req)
{
	struct fw_xfer *x;
	unsigned char addr[16];
	bool oom = false;

	if (!c || !req || !req->cb || !req->ip || strlen(req->ip) >= sizeof(x->ip) ||
	    (inet_pton(AF_INET, req->ip, addr) != 1 && inet_pton(AF_INET6, req->ip, addr) != 1) ||
	    req->port < 0 || req->port > 65535 || (unsigned)req->call >= HIVE_FW_CALLS ||
	    (needs_arg(req->call) && (!req->arg || !*req->arg)) ||
	    (req->api_key && (!header_safe(req->api_key) || strlen(req->api_key) > 256)) ||
	    (req->token && (!header_safe(req->token) || strlen(req->token) > 256))) {
		errno = EINVAL;
		return -1;
	}
	if (!(x = calloc(1, sizeof(*x))))
		return -1;
	x->c = c;
	x->call = req->call;
	x->boards = req->call == HIVE_FW_BOARDS ||
		    (req->call == HIVE_FW_CHAINS && (req->flags & HIVE_FW_F_BOARDS));
	x->port = req->port ? req->port : 80;
	x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : c->o.timeout_ms;
	x->cb = req->cb;
	x->cb_arg = req->cb_arg;
	memcpy(x->ip, req->ip, strlen(req->ip) + 1);
	x->api_key = dup_or_null(req->api_key, &oom);
	x->token = dup_or_null(req->token, &oom);
	x->arg = dup_or_null(req->arg, &oom);
	x->desc = dup_or_null(req->description, &oom);
	if (is_post(req->call) && !(x->post = post_body(req)))
		oom = true;
	if (oom) {
		xfer_free(x);
		errno = ENOMEM;
		return -1;
	}
	keep_secret(c, req->api_key);
	keep_secret(c, req->token);
	if (req->call == HIVE_FW_UNLOCK || req->call == HIVE_FW_APIKEY_CREATE ||
	    req->call == HIVE_FW_APIKEY_DELETE)
		keep_secret(c, req->arg);

	/* FIFO: nothing overtakes a queued request */
	if (c->qhead || c->st.in_flight >= c->o.max_in_flight) {
		if (c->qtail)
			c->qtail->next = x;
		else
			c->qhead = x;
		c->qtail = x;
		c->st.queued++;
		return 0;
	}
	if (xfer_start(c, x) < 0) {
		if (x->easy) {
			easy_release(c, x->easy);
			x->easy = NULL;
		}
		xfer_free(x);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int hive_fw_client_pending(const struct hive_fw_client *c)
{
	return c ? c->st.in_flight + c->st.queued : 0;
}

void hive_fw_client_stats(const struct hive_fw_client *c, struct hive_fw_stats *out)
{
	*out = c->st;
}

/* ---------------------------------------------------------------- blocking */

struct sync_wait {
	bool done;
	struct hive_fw_result *out;
};

static void sync_done(const struct hive_fw_result *res, void *arg)
{
	struct sync_wait *w = arg;

	memcpy(w->out, res, sizeof(*res));
	w->done = true;
}

int hive_fw_call_sync(const struct hive_fw_opts *opts, const struct hive_fw_req *req,
		      struct hive_fw_result *out)
{
	struct sync_wait w = { false, out };
	struct hive_fw_req r;
	struct hive_loop *loop = NULL;
	struct hive_fw_client *c = NULL;

	memset(out, 0, offsetof(struct hive_fw_result, info));
	out->call = req ? req->call : HIVE_FW_INFO;
	if (req && (unsigned)req->call < HIVE_FW_CALLS)
		snprintf(out->err.endpoint, sizeof(out->err.endpoint), "%s",
			 hive_fw_call_path(req->call));
	if (!req || !(loop = hive_loop_new()) || !(c = hive_fw_client_new(loop, opts)))
		goto fail;
	r = *req;
	r.cb = sync_done;
	r.cb_arg = &w;
	if (hive_fw_request(c, &r) < 0)
		goto fail;
	while (!w.done)
		if (hive_loop_run_once(loop, 1000) < 0 && errno != EINTR)
			break;
	if (!w.done)
		goto fail;
	hive_fw_client_free(c);
	hive_loop_free(loop);
	return out->err.kind == HIVE_FW_OK ? 0 : -1;
fail:
	out->err.kind = HIVE_FW_ERR_INTERNAL;
	snprintf(out->err.msg, sizeof(out->err.msg), "%s: cannot run the request: %s",
		 out->err.endpoint, strerror(errno ? errno : EINVAL));
	hive_fw_client_free(c);
	hive_loop_free(loop);
	return -1;
}
