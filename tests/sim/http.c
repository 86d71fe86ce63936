/* http — the event-driven HTTP/1.1 server every simulated host shares.
 *
 * One epoll set holds every listener (one per loopback address) and every
 * connection; all level-triggered. A connection is in one of four states:
 * reading (EPOLLIN), holding a delayed answer (fault "slow": only hang-up
 * is watched), writing (EPOLLOUT) or lingering (after Connection: close we
 * shut our side and read until the client closes, so the answer is never
 * lost to an RST). Requests are assembled in one static buffer; only the
 * bytes left over between reads are kept per connection, so an idle
 * keep-alive connection costs ~150 bytes.
 *
 * Connections closed while an epoll batch is being served go to a
 * graveyard and are freed after the batch, so a pending event never
 * touches freed memory.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_TARGET       2048
#define MAX_HEADERS      100
#define IDLE_MS          60000   /* keep-alive connection with no request */
#define PARTIAL_MS       10000   /* request started but not finished */
#define WRITE_MS         60000   /* answer not drained by the client */
#define LINGER_MS        2000
#define ACCEPT_BURST     64
#define EVENTS_MAX       256

struct sim_conn {
	struct sim_ev ev;        /* type SIM_EV_CONN; owner = the listener's */
	int kind;                /* the listener's type */
	char *in;                /* leftover input between reads */
	size_t in_len;
	char *out;               /* answer being written */
	size_t out_len, out_off, out_limit;
	int64_t last_active;
	int64_t send_at;         /* > 0: answer held until then */
	int64_t linger_until;
	uint32_t events;
	bool reset_after;        /* RST once out_limit bytes are out */
	bool close_after;
	bool force_close;        /* the owner went away while answering */
	bool peer_closed;
	bool lingering;
	bool continue_sent;
	struct sim_conn *prev, *next;
	struct sim_conn *gnext;  /* graveyard */
};

static int epfd = -1;
static int reserve_fd = -1;
static struct sim_conn *head, *tail;     /* least recently active first */
static struct sim_conn *graveyard;
static struct sim_conn *current;         /* whose request is being answered */
static int nconns, ndelayed;
static int64_t last_sweep;
static char rbuf[SIM_MAX_HEADER + SIM_MAX_BODY];

/* ---------------------------------------------------------------- parser */

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Copies a header value (already trimmed) into dst, truncating. */
static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool token_in_list(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i < n;) {
		size_t j;
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		for (j = i; j < n && v[j] != ','; j++)
			;
		size_t e = j;
		while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - i == tl && strncasecmp(v + i, tok, tl) == 0)
			return true;
		i = j;
	}
	return false;
}

static int parse_request_line(const char *l, size_t n, struct sim_req *rq)
{
	const char *sp1 = memchr(l, ' ', n), *sp2, *t, *q;
	size_t mlen, tlen;

	if (!sp1)
		return -400;
	mlen = (size_t)(sp1 - l);
	if (mlen == 0 || mlen >= sizeof(rq->method))
		return -400;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			return -400;
	memcpy(rq->method, l, mlen);
	rq->method[mlen] = '\0';

	t = sp1 + 1;
	sp2 = memchr(t, ' ', n - (size_t)(t - l));
	if (!sp2)
		return -400;
	tlen = (size_t)(sp2 - t);
	if (tlen == 0)
		return -400;
	if (tlen > MAX_TARGET)
		return -414;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return -400;
	/* absolute-form: keep the path */
	if (tlen > 7 && strncasecmp(t, "http://", 7) == 0) {
		const char *p = memchr(t + 7, '/', tlen - 7);
		if (!p)
			return -400;
		tlen -= (size_t)(p - t);
		t = p;
	}
	if (t[0] != '/')
		return -400;
	q = memchr(t, '?', tlen);
	if (q)
		tlen = (size_t)(q - t);
	if (tlen >= sizeof(rq->path))
		return -414;
	memcpy(rq->path, t, tlen);
	rq->path[tlen] = '\0';

	t = sp2 + 1;
	tlen = n - (size_t)(t - l);
	if (tlen != 8 || strncmp(t, "HTTP/", 5) != 0 || t[6] != '.' ||
	    t[5] < '0' || t[5] > '9' || t[7] < '0' || t[7] > '9')
		return -400;
	if (t[5] != '1' || (t[7] != '0' && t[7] != '1'))
		return -505;
	rq->minor = t[7] - '0';
	rq->keep_alive = rq->minor == 1;
	return 0;
}

static int parse_header(const char *l, size_t n, struct sim_req *rq, bool *have_cl)
{
	const char *colon = memchr(l, ':', n), *v;
	size_t nlen, vlen;

	if (!colon || colon == l)
		return -400;
	nlen = (size_t)(colon - l);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			return -400;
	v = colon + 1;
	vlen = n - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	for (size_t i = 0; i < vlen; i++) {
		unsigned char ch = (unsigned char)v[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -400;
	}

#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(l, name, nlen) == 0)
	if (IS("content-length")) {
		size_t cl = 0;
		if (vlen == 0 || vlen > 10)
			return vlen > 10 ? -413 : -400;
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -400;
			cl = cl * 10 + (size_t)(v[i] - '0');
		}
		if (*have_cl && cl != rq->content_length)
			return -400;
		if (cl > SIM_MAX_BODY)
			return -413;
		rq->content_length = cl;
		*have_cl = true;
	} else if (IS("transfer-encoding")) {
		return -501;
	} else if (IS("connection")) {
		if (token_in_list(v, vlen, "close"))
			rq->keep_alive = false;
		else if (token_in_list(v, vlen, "keep-alive"))
			rq->keep_alive = true;
	} else if (IS("expect")) {
		if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
			rq->expect_continue = true;
	} else if (IS("x-api-key")) {
		rq->has_api_key = true;
		copy_value(rq->api_key, sizeof(rq->api_key), v, vlen);
	} else if (IS("authorization")) {
		if (vlen > 7 && strncasecmp(v, "bearer ", 7) == 0) {
			rq->has_bearer = true;
			v += 7;
			vlen -= 7;
			while (vlen && *v == ' ') {
				v++;
				vlen--;
			}
			copy_value(rq->bearer, sizeof(rq->bearer), v, vlen);
		}
	}
#undef IS
	return 0;
}

long sim_http_parse(const char *buf, size_t len, struct sim_req *rq)
{
	size_t i = 0, end = 0, ls;
	int nlines = 0, rc;
	bool have_cl = false;

	memset(rq, 0, sizeof(*rq));
	/* a client may send stray line breaks between requests */
	while (i < len && i < 8 && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	/* find the blank line that ends the head */
	for (size_t j = i; j < len && j < SIM_MAX_HEADER; j++) {
		if (buf[j] == '\0')
			return -400;
		if (buf[j] != '\n')
			continue;
		if ((j >= 1 && buf[j - 1] == '\n') ||
		    (j >= 2 && buf[j - 1] == '\r' && buf[j - 2] == '\n')) {
			end = j + 1;
			break;
		}
	}
	if (!end)
		return len >= SIM_MAX_HEADER ? -431 : 0;
	if (i >= end - 2)
		return -400;

	for (ls = i; ls < end;) {
		const char *nl = memchr(buf + ls, '\n', end - ls);
		size_t le = (size_t)(nl - buf), n = le - ls;

		if (n && buf[le - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (memchr(buf + ls, '\r', n))
			return -400;
		if (nlines == 0) {
			rc = parse_request_line(buf + ls, n, rq);
		} else {
			if (buf[ls] == ' ' || buf[ls] == '\t')
				return -400;   /* obsolete line folding */
			if (nlines > MAX_HEADERS)
				return -431;
			rc = parse_header(buf + ls, n, rq, &have_cl);
		}
		if (rc < 0)
			return rc;
		nlines++;
		ls = le + 1;
	}
	rq->head_len = end;
	if (len - end < rq->content_length)
		return 0;
	rq->body = buf + end;
	rq->body_len = rq->content_length;
	return (long)(end + rq->content_length);
}

/* ---------------------------------------------------------------- responses */

void sim_resp_take(struct sim_resp *rs, int status, char *body, size_t len)
{
	free(rs->body);
	rs->status = status;
	rs->body = body;
	rs->len = len;
}

void sim_resp_json(struct sim_resp *rs, int status, json_t *j)
{
	char *text = j ? json_dumps(j, SIM_JSON_FLAGS | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	if (!text) {
		sim_resp_text(rs, 500, NULL, "{\"err\":\"out of memory\"}");
		return;
	}
	sim_resp_take(rs, status, text, strlen(text));
	rs->ctype = NULL;
}

void sim_resp_err(struct sim_resp *rs, int status, const char *key, const char *msg)
{
	json_t *j = json_object();

	json_object_set_new(j, key, json_string(msg));
	sim_resp_json(rs, status, j);
}

void sim_resp_text(struct sim_resp *rs, int status, const char *ctype, const char *text)
{
	char *copy = strdup(text);

	sim_resp_take(rs, status, copy, copy ? strlen(copy) : 0);
	rs->ctype = ctype;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* ---------------------------------------------------------------- connections */

static void list_unlink(struct sim_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		tail = c->prev;
	c->prev = c->next = NULL;
}

static void list_append(struct sim_conn *c)
{
	c->prev = tail;
	c->next = NULL;
	if (tail)
		tail->next = c;
	else
		head = c;
	tail = c;
}

static void touch(struct sim_conn *c)
{
	c->last_active = sim_now_ms();
	if (c != tail) {
		list_unlink(c);
		list_append(c);
	}
}

static void set_events(struct sim_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &c->ev };

	if (c->events == events)
		return;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->ev.fd, &ev) == 0)
		c->events = events;
}

static void conn_close(struct sim_conn *c, bool rst)
{
	if (c->ev.fd < 0)
		return;
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->ev.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->ev.fd);
	c->ev.fd = -1;
	if (c->send_at)
		ndelayed--;
	c->send_at = 0;
	list_unlink(c);
	nconns--;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->gnext = graveyard;
	graveyard = c;
}

static void conn_linger(struct sim_conn *c)
{
	shutdown(c->ev.fd, SHUT_WR);
	c->lingering = true;
	c->linger_until = sim_now_ms() + LINGER_MS;
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	set_events(c, EPOLLIN | EPOLLRDHUP);
}

static bool conn_busy(const struct sim_conn *c)
{
	return c->ev.fd < 0 || c->out || c->lingering;
}

/* Writes what the socket takes. After the whole answer: RST (fault reset),
 * lingering close, or back to reading. */
static void conn_flush(struct sim_conn *c)
{
	size_t limit = c->reset_after ? c->out_limit : c->out_len;

	while (c->out_off < limit) {
		ssize_t n = send(c->ev.fd, c->out + c->out_off, limit - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_events(c, EPOLLOUT);
			return;
		}
		conn_close(c, false);
		return;
	}
	free(c->out);
	c->out = NULL;
	touch(c);
	if (c->reset_after) {
		conn_close(c, true);
		return;
	}
	if (c->peer_closed) {
		conn_close(c, false);
		return;
	}
	if (c->close_after) {
		conn_linger(c);
		return;
	}
	set_events(c, EPOLLIN | EPOLLRDHUP);
}

static void conn_respond(struct sim_conn *c, const struct sim_req *rq, struct sim_resp *rs)
{
	char head_buf[512];
	bool keep = rq && rq->keep_alive && !rs->close && !c->force_close && !c->peer_closed;
	int n;

	n = snprintf(head_buf, sizeof(head_buf),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Connection: %s\r\n%s%s\r\n",
		     rs->status, reason(rs->status),
		     rs->ctype ? rs->ctype : "application/json", rs->len,
		     keep ? "keep-alive" : "close",
		     rs->extra_header ? rs->extra_header : "", rs->extra_header ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head_buf) ||
	    !(c->out = malloc((size_t)n + rs->len + 1))) {
		free(rs->body);
		conn_close(c, false);
		return;
	}
	memcpy(c->out, head_buf, (size_t)n);
	if (rs->len)
		memcpy(c->out + n, rs->body, rs->len);
	free(rs->body);
	rs->body = NULL;
	c->out_len = (size_t)n + rs->len;
	c->out_off = 0;
	c->reset_after = rs->reset;
	c->out_limit = (size_t)n + rs->len / 2;
	c->close_after = !keep;
	c->continue_sent = false;
	if (rs->delay_ms > 0) {
		c->send_at = sim_now_ms() + rs->delay_ms;
		ndelayed++;
		set_events(c, EPOLLRDHUP);
		return;
	}
	conn_flush(c);
}

static void conn_handle(struct sim_conn *c, const struct sim_req *rq)
{
	struct sim_resp rs = { .status = 500 };

	current = c;
	c->force_close = false;
	switch (c->kind) {
	case SIM_EV_MINER:
		sim_fw_handle(c->ev.owner, rq, &rs);
		break;
	case SIM_EV_HOST:
		sim_host_handle(c->ev.owner, rq, &rs);
		break;
	case SIM_EV_ADMIN:
		sim_admin_handle(rq, &rs);
		break;
	}
	current = NULL;
	if (c->ev.fd >= 0)
		conn_respond(c, rq, &rs);
	else
		free(rs.body);
}

/* Reads what the socket holds (when readable) and answers every complete
 * request until an answer has to wait for the socket or a delay. */
static void conn_input(struct sim_conn *c, bool readable)
{
	size_t len = c->in_len, off = 0;
	struct sim_req rq;

	if (len)
		memcpy(rbuf, c->in, len);
	free(c->in);
	c->in = NULL;
	c->in_len = 0;

	for (;;) {
		bool full = false;

		while (readable && !c->peer_closed && len < sizeof(rbuf)) {
			ssize_t n = recv(c->ev.fd, rbuf + len, sizeof(rbuf) - len, 0);
			if (n > 0) {
				len += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			c->peer_closed = true;   /* EOF or error */
		}
		full = len == sizeof(rbuf);
		if (len > off)
			touch(c);

		while (!conn_busy(c) && off < len) {
			long r = sim_http_parse(rbuf + off, len - off, &rq);
			if (r == 0) {
				if (rq.head_len && rq.expect_continue && !c->continue_sent) {
					static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
					(void)!send(c->ev.fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
					c->continue_sent = true;
				}
				break;
			}
			if (r < 0) {
				struct sim_resp rs = { 0 };
				char msg[64];

				snprintf(msg, sizeof(msg), "%s", reason((int)-r));
				sim_resp_err(&rs, (int)-r, "err", msg);
				rs.close = true;
				sim_debug("bad_request status=%ld", -r);
				off = len;
				conn_respond(c, NULL, &rs);
				break;
			}
			conn_handle(c, &rq);
			off += (size_t)r;
		}
		if (c->ev.fd < 0)
			return;
		/* keep reading only when we stopped because the buffer was full */
		if (!full || conn_busy(c) || off == 0)
			break;
		memmove(rbuf, rbuf + off, len - off);
		len -= off;
		off = 0;
	}
	if (c->ev.fd < 0 || c->lingering)
		return;
	if (len > off) {
		c->in = malloc(len - off);
		if (!c->in) {
			conn_close(c, false);
			return;
		}
		memcpy(c->in, rbuf + off, len - off);
		c->in_len = len - off;
	}
	if (c->peer_closed && !conn_busy(c))
		conn_close(c, false);
}

static void conn_linger_read(struct sim_conn *c)
{
	for (;;) {
		ssize_t n = recv(c->ev.fd, rbuf, sizeof(rbuf), 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c, false);
		return;
	}
}

/* Frees the least recently active idle connection to make room. */
static bool evict_idle(void)
{
	for (struct sim_conn *c = head; c; c = c->next) {
		if (c != current && !c->out && !c->in_len && !c->lingering) {
			conn_close(c, false);
			return true;
		}
	}
	return false;
}

static void on_accept(struct sim_ev *lev)
{
	for (int i = 0; i < ACCEPT_BURST && lev->fd >= 0; i++) {
		struct epoll_event ev;
		struct sim_conn *c;
		int fd = accept4(lev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				if (evict_idle())
					continue;
				/* nothing to evict: refuse this one so the listener
				 * does not spin */
				if (reserve_fd >= 0) {
					close(reserve_fd);
					fd = accept(lev->fd, NULL, NULL);
					if (fd >= 0)
						close(fd);
					reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				}
				sim_log("accept_refused reason=\"out of descriptors\" conns=%d",
					nconns);
			}
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->ev.type = SIM_EV_CONN;
		c->ev.fd = fd;
		c->ev.owner = lev->owner;
		c->kind = lev->type;
		c->events = EPOLLIN | EPOLLRDHUP;
		c->last_active = sim_now_ms();
		ev.events = c->events;
		ev.data.ptr = &c->ev;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		list_append(c);
		nconns++;
	}
}

static void on_conn(struct sim_conn *c, uint32_t events)
{
	if (c->lingering) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_linger_read(c);
		return;
	}
	if (events & EPOLLERR) {
		conn_close(c, false);
		return;
	}
	if (c->send_at) {
		/* the client gave up while we held the answer back */
		if (events & (EPOLLRDHUP | EPOLLHUP))
			conn_close(c, false);
		return;
	}
	if (c->out) {
		if (events & (EPOLLOUT | EPOLLHUP)) {
			conn_flush(c);
			if (c->ev.fd >= 0 && !conn_busy(c) && c->in_len)
				conn_input(c, false);
		}
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		conn_input(c, true);
}

/* ---------------------------------------------------------------- public */

int sim_http_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -1;
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return 0;
}

void sim_http_shutdown(void)
{
	while (head)
		conn_close(head, false);
	while (graveyard) {
		struct sim_conn *n = graveyard->gnext;
		free(graveyard);
		graveyard = n;
	}
	if (reserve_fd >= 0)
		close(reserve_fd);
	if (epfd >= 0)
		close(epfd);
	epfd = reserve_fd = -1;
}

int sim_http_listen(struct sim_ev *lev, uint32_t ip, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = lev };
	int one = 1, fd, saved;

	sa.sin_addr.s_addr = htonl(ip);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* reopened after a reboot while old connections sit in TIME_WAIT */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	lev->fd = fd;
	return 0;
}

void sim_http_drop_owner(const void *owner)
{
	struct sim_conn *c = head, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->ev.owner != owner || c->kind == SIM_EV_ADMIN)
			continue;
		if (c == current)
			c->force_close = true;
		else
			conn_close(c, false);
	}
}

void sim_http_unlisten(struct sim_ev *lev)
{
	if (lev->fd >= 0) {
		close(lev->fd);
		lev->fd = -1;
	}
	sim_http_drop_owner(lev->owner);
}

void sim_http_poll(int timeout_ms)
{
	struct epoll_event evs[EVENTS_MAX];
	int n = epoll_wait(epfd, evs, EVENTS_MAX, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct sim_ev *ev = evs[i].data.ptr;

		if (ev->fd < 0)
			continue;
		if (ev->type == SIM_EV_CONN)
			on_conn((struct sim_conn *)ev, evs[i].events);
		else
			on_accept(ev);
	}
	while (graveyard) {
		struct sim_conn *next = graveyard->gnext;
		free(graveyard);
		graveyard = next;
	}
}

void sim_http_tick(int64_t now)
{
	struct sim_conn *c, *next;
	bool sweep = now - last_sweep >= 1000;

	if (!ndelayed && !sweep)
		return;
	if (sweep)
		last_sweep = now;
	for (c = head; c; c = next) {
		next = c->next;
		if (c->send_at && now >= c->send_at) {
			c->send_at = 0;
			ndelayed--;
			conn_flush(c);
			if (c->ev.fd >= 0 && !conn_busy(c) && c->in_len)
				conn_input(c, false);
			continue;
		}
		if (!sweep || c->send_at)
			continue;
		if (c->lingering ? now >= c->linger_until :
		    c->out ? now - c->last_active > WRITE_MS :
		    now - c->last_active > (c->in_len ? PARTIAL_MS : IDLE_MS))
			conn_close(c, false);
	}
	/* next may have been closed by conn_input above (its next is then
	 * NULL and the walk ends early); the graveyard keeps it valid */
	while (graveyard) {
		next = graveyard->gnext;
		free(graveyard);
		graveyard = next;
	}
}

int sim_http_conns(void)
{
	return nconns;
}
