/* sink — see sink.h. A plain socket server: one thread accepts on both
 * ports, each connection gets a thread of its own (libcurl keeps its
 * connections alive, and a test's slow-receiver case must not hold up the
 * others). Small and strict enough for what apid sends: Content-Length
 * bodies, "Expect: 100-continue", keep-alive. */
#include "sink.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <mbedtls/md.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SINK_MAX_CONNS 256
#define SINK_MAX_MSG   (4 << 20)

struct sink_req {
	json_t *body;
	char *path;
	char *key;
	bool verified;
};

struct sink_conn {
	struct sink *s;
	int fd;
	bool smtp;
	pthread_t th;
	bool done;               /* its thread has finished (under s->mu) */
	char *buf;               /* what was read and not yet consumed */
	size_t len, cap;
};

struct sink {
	char *secret;
	int http_fd, smtp_fd, http_port, smtp_port;
	int wake[2];
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping, down;
	int delay_ms;
	int requests;
	struct sink_req *reqs;
	int nreqs, capreqs;
	char **mails;
	int nmails, capmails;
	struct sink_conn *conns[SINK_MAX_CONNS];
	int nconns;
};

static int listen_local(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static bool stopping(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	bool st = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return st;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more into c->buf: 0, or -1 at EOF / error / too much. */
static int fill(struct sink_conn *c)
{
	if (c->len + 4096 + 1 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8192;
		if (cap > SINK_MAX_MSG)
			return -1;
		char *b = realloc(c->buf, cap);
		if (!b)
			return -1;
		c->buf = b;
		c->cap = cap;
	}
	for (;;) {
		ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
		return 0;
	}
}

static void consume(struct sink_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	if (c->buf)
		c->buf[c->len] = '\0';
}

/* The next CRLF-ended line (CRLF cut off; malloc'd), or NULL at EOF. */
static char *read_line(struct sink_conn *c)
{
	for (;;) {
		char *eol = c->buf ? memmem(c->buf, c->len, "\r\n", 2) : NULL;
		if (eol) {
			size_t n = (size_t)(eol - c->buf);
			char *line = strndup(c->buf, n);
			consume(c, n + 2);
			return line;
		}
		if (fill(c) < 0)
			return NULL;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* True when header is "sha256=<hex HMAC-SHA256(body, secret)>". */
static bool signature_ok(const char *secret, const char *header, const char *body, size_t n)
{
	unsigned char mac[32];
	char hex[sizeof(mac) * 2 + 1];

	if (!secret || !header || strncmp(header, "sha256=", 7) != 0)
		return false;
	if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
			    (const unsigned char *)secret, strlen(secret),
			    (const unsigned char *)body, n, mac) != 0)
		return false;
	for (size_t i = 0; i < sizeof(mac); i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return strcasecmp(header + 7, hex) == 0;
}

static char *trimmed_dup(const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return strndup(v, n);
}

static void record_req(struct sink *s, const char *path, const char *key, const char *body,
		       size_t n, bool verified)
{
	pthread_mutex_lock(&s->mu);
	if (s->nreqs == s->capreqs) {
		int cap = s->capreqs ? s->capreqs * 2 : 64;
		struct sink_req *r = realloc(s->reqs, (size_t)cap * sizeof(*r));
		if (!r) {
			pthread_mutex_unlock(&s->mu);
			return;
		}
		s->reqs = r;
		s->capreqs = cap;
	}
	struct sink_req *r = &s->reqs[s->nreqs++];
	r->body = json_loadb(body, n, 0, NULL);
	r->path = strdup(path);
	r->key = key ? strdup(key) : NULL;
	r->verified = verified;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* One HTTP request on c: 0 to go on with the connection, -1 to close it. */
static int http_one(struct sink_conn *c)
{
	struct sink *s = c->s;
	char *sig = NULL, *key = NULL, *path = NULL;
	size_t clen = 0, head;
	bool close_after = false, expect = false;
	int rc = -1;
	char *end;

	while (!(end = c->buf ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL))
		if (fill(c) < 0)
			return -1;
	head = (size_t)(end - c->buf) + 4;
	end[2] = '\0';           /* the header block as one string, CRLF-separated */

	char *save = NULL, *line = strtok_r(c->buf, "\r\n", &save);
	char method[16], target[2048], version[16];
	if (!line || sscanf(line, "%15s %2047s %15s", method, target, version) != 3)
		goto out;
	path = strdup(target);
	close_after = strcmp(version, "HTTP/1.0") == 0;
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		if (!strcasecmp(line, "Content-Length"))
			clen = strtoul(v, NULL, 10);
		else if (!strcasecmp(line, "X-PowerHive-Signature"))
			sig = trimmed_dup(v);
		else if (!strcasecmp(line, "X-PowerHive-Delivery"))
			key = trimmed_dup(v);
		else if (!strcasecmp(line, "Expect") && strcasestr(v, "100-continue"))
			expect = true;
		else if (!strcasecmp(line, "Connection") && strcasestr(v, "close"))
			close_after = true;
		else if (!strcasecmp(line, "Transfer-Encoding"))
			goto out;       /* apid sends Content-Length; anything else is a bug */
	}
	consume(c, head);
	if (clen > SINK_MAX_MSG)
		goto out;
	if (expect && send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		goto out;
	while (c->len < clen)
		if (fill(c) < 0)
			goto out;

	pthread_mutex_lock(&s->mu);
	s->requests++;
	int delay = s->delay_ms;
	pthread_mutex_unlock(&s->mu);
	if (delay > 0)
		sleep_ms(delay);
	pthread_mutex_lock(&s->mu);
	bool down = s->down;
	pthread_mutex_unlock(&s->mu);

	char resp[256];
	if (down) {
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
			 "Content-Length: 5\r\n%s\r\ndown\n", close_after ? "Connection: close\r\n" : "");
	} else {
		record_req(s, path, key, c->buf, clen, signature_ok(s->secret, sig, c->buf, clen));
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "Content-Length: 12\r\n%s\r\n{\"ok\":true}\n", close_after ? "Connection: close\r\n" : "");
	}
	consume(c, clen);
	if (send_all(c->fd, resp, strlen(resp)) == 0 && !close_after)
		rc = 0;
out:
	free(sig);
	free(key);
	free(path);
	return rc;
}

static int reply(struct sink_conn *c, const char *text)
{
	return send_all(c->fd, text, strlen(text));
}

/* The DATA part of a message, up to the lone ".": 0 once recorded. */
static int smtp_data(struct sink_conn *c)
{
	size_t n = 0, cap = 4096;
	char *text = malloc(cap), *line;

	if (!text)
		return -1;
	text[0] = '\0';
	while ((line = read_line(c))) {
		if (!strcmp(line, ".")) {
			free(line);
			struct sink *s = c->s;
			pthread_mutex_lock(&s->mu);
			if (s->nmails == s->capmails) {
				int mcap = s->capmails ? s->capmails * 2 : 16;
				char **m = realloc(s->mails, (size_t)mcap * sizeof(*m));
				if (m) {
					s->mails = m;
					s->capmails = mcap;
				}
			}
			if (s->nmails < s->capmails) {
				s->mails[s->nmails++] = text;
				text = NULL;
			}
			pthread_cond_broadcast(&s->cv);
			pthread_mutex_unlock(&s->mu);
			free(text);
			return 0;
		}
		const char *l = line[0] == '.' ? line + 1 : line;  /* dot-unstuffing */
		size_t ln = strlen(l);
		if (n + ln + 3 > cap) {
			while (n + ln + 3 > cap)
				cap *= 2;
			char *t = cap <= SINK_MAX_MSG ? realloc(text, cap) : NULL;
			if (!t) {
				free(line);
				break;
			}
			text = t;
		}
		memcpy(text + n, l, ln);
		memcpy(text + n + ln, "\r\n", 3);
		n += ln + 2;
		free(line);
	}
	free(text);
	return -1;
}

static void smtp_session(struct sink_conn *c)
{
	char *line;

	if (reply(c, "220 sink ESMTP\r\n") < 0)
		return;
	while ((line = read_line(c))) {
		int rc;
		if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4)) {
			rc = reply(c, "250 sink\r\n");
		} else if (!strncasecmp(line, "MAIL FROM:", 10)) {
			pthread_mutex_lock(&c->s->mu);
			bool down = c->s->down;
			pthread_mutex_unlock(&c->s->mu);
			rc = reply(c, down ? "451 down\r\n" : "250 OK\r\n");
		} else if (!strncasecmp(line, "RCPT TO:", 8) || !strncasecmp(line, "RSET", 4) ||
			   !strncasecmp(line, "NOOP", 4)) {
			rc = reply(c, "250 OK\r\n");
		} else if (!strncasecmp(line, "DATA", 4)) {
			rc = reply(c, "354 go on\r\n");
			if (rc == 0)
				rc = smtp_data(c) == 0 ? reply(c, "250 OK queued\r\n") : -1;
		} else if (!strncasecmp(line, "QUIT", 4)) {
			reply(c, "221 bye\r\n");
			rc = -1;
		} else {
			rc = reply(c, "502 not here\r\n");
		}
		free(line);
		if (rc < 0)
			return;
	}
}

static void *conn_main(void *arg)
{
	struct sink_conn *c = arg;

	if (c->smtp)
		smtp_session(c);
	else
		while (!stopping(c->s) && http_one(c) == 0)
			;
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&c->s->mu);
	c->done = true;
	pthread_mutex_unlock(&c->s->mu);
	return NULL;
}

static void conn_free(struct sink_conn *c)
{
	pthread_join(c->th, NULL);
	close(c->fd);
	free(c->buf);
	free(c);
}

/* Frees the connections that have ended, so a long test never runs out. */
static void reap(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nconns;) {
		if (s->conns[i]->done) {
			struct sink_conn *c = s->conns[i];
			s->conns[i] = s->conns[--s->nconns];
			pthread_mutex_unlock(&s->mu);
			conn_free(c);
			pthread_mutex_lock(&s->mu);
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

static void *acceptor_main(void *arg)
{
	struct sink *s = arg;
	struct pollfd p[3] = {
		{ .fd = s->http_fd, .events = POLLIN },
		{ .fd = s->smtp_fd, .events = POLLIN },
		{ .fd = s->wake[0], .events = POLLIN },
	};

	while (!stopping(s)) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			reap(s);
			int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			struct sink_conn *c = calloc(1, sizeof(*c));
			pthread_mutex_lock(&s->mu);
			bool room = c && s->nconns < SINK_MAX_CONNS;
			if (room) {
				c->s = s;
				c->fd = fd;
				c->smtp = i == 1;
				if (pthread_create(&c->th, NULL, conn_main, c) == 0)
					s->conns[s->nconns++] = c;
				else
					room = false;
			}
			pthread_mutex_unlock(&s->mu);
			if (!room) {
				close(fd);
				free(c);
			}
		}
	}
	return NULL;
}

struct sink *sink_start(const char *hmac_secret)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->http_fd = s->smtp_fd = s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (hmac_secret)
		s->secret = strdup(hmac_secret);
	if ((s->http_fd = listen_local(&s->http_port)) < 0 ||
	    (s->smtp_fd = listen_local(&s->smtp_port)) < 0 || pipe(s->wake) < 0 ||
	    pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
		if (s->http_fd >= 0)
			close(s->http_fd);
		if (s->smtp_fd >= 0)
			close(s->smtp_fd);
		if (s->wake[0] >= 0) {
			close(s->wake[0]);
			close(s->wake[1]);
		}
		free(s->secret);
		free(s);
		return NULL;
	}
	return s;
}

int sink_http_port(struct sink *s) { return s->http_port; }
int sink_smtp_port(struct sink *s) { return s->smtp_port; }

void sink_set_down(struct sink *s, bool down)
{
	pthread_mutex_lock(&s->mu);
	s->down = down;
	pthread_mutex_unlock(&s->mu);
}

void sink_set_delay_ms(struct sink *s, int ms)
{
	pthread_mutex_lock(&s->mu);
	s->delay_ms = ms;
	pthread_mutex_unlock(&s->mu);
}

int sink_count(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->nreqs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int sink_requests(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* The record's fields never change once written; only s->reqs may move. */
json_t *sink_body(struct sink *s, int i)
{
	pthread_mutex_lock(&s->mu);
	json_t *v = i >= 0 && i < s->nreqs ? s->reqs[i].body : NULL;
	pthread_mutex_unlock(&s->mu);
	return v;
}

const char *sink_path(struct sink *s, int i)
{
	pthread_mutex_lock(&s->mu);
	const char *v = i >= 0 && i < s->nreqs ? s->reqs[i].path : NULL;
	pthread_mutex_unlock(&s->mu);
	return v;
}

const char *sink_key(struct sink *s, int i)
{
	pthread_mutex_lock(&s->mu);
	const char *v = i >= 0 && i < s->nreqs ? s->reqs[i].key : NULL;
	pthread_mutex_unlock(&s->mu);
	return v;
}

bool sink_verified(struct sink *s, int i)
{
	pthread_mutex_lock(&s->mu);
	bool v = i >= 0 && i < s->nreqs && s->reqs[i].verified;
	pthread_mutex_unlock(&s->mu);
	return v;
}

int sink_mail_count(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->nmails;
	pthread_mutex_unlock(&s->mu);
	return n;
}

const char *sink_mail(struct sink *s, int i)
{
	pthread_mutex_lock(&s->mu);
	const char *v = i >= 0 && i < s->nmails ? s->mails[i] : NULL;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static bool wait_for(struct sink *s, const int *counter, int n, int timeout_ms)
{
	struct timespec dl;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (*counter < n && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0)
		;
	ok = *counter >= n;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

bool sink_wait(struct sink *s, int n, int timeout_ms)
{
	return wait_for(s, &s->nreqs, n, timeout_ms);
}

bool sink_wait_mail(struct sink *s, int n, int timeout_ms)
{
	return wait_for(s, &s->nmails, n, timeout_ms);
}

void sink_stop(struct sink *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	if (write(s->wake[1], "x", 1) < 0) {
		/* the acceptor also sees stopping on its next wake-up */
	}
	pthread_join(s->acceptor, NULL);
	/* No new connection now: wake every reader and wait for it. */
	for (int i = 0; i < s->nconns; i++)
		shutdown(s->conns[i]->fd, SHUT_RDWR);
	for (int i = 0; i < s->nconns; i++)
		conn_free(s->conns[i]);
	close(s->http_fd);
	close(s->smtp_fd);
	close(s->wake[0]);
	close(s->wake[1]);
	for (int i = 0; i < s->nreqs; i++) {
		json_decref(s->reqs[i].body);
		free(s->reqs[i].path);
		free(s->reqs[i].key);
	}
	free(s->reqs);
	for (int i = 0; i < s->nmails; i++)
		free(s->mails[i]);
	free(s->mails);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->secret);
	free(s);
}
