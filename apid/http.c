/* http — apid's HTTP server (civetweb): start and stop, the worker
 * threads' state, the request at the door (path and query decoded, the
 * request signed in: bootstrap or named token, open reads, the failed
 * sign-in lock-out), routing through routes.c to the handlers (api_*.c),
 * and the dashboard's static files. Answers are built by api.c.
 *
 * The socket is TCP_NODELAY and every answer leaves in one write: split
 * writes cost two orders of magnitude in request rate through Nagle and
 * delayed ACKs. */
#include "http.h"

#include <civetweb.h>
#include <stdatomic.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "answers.h"
#include "api.h"
#include "apid.h"
#include "auth.h"
#include "health.h"
#include "hive/cfg.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "metrics.h"
#include "routes.h"

#define URI_MAX        2048
#define QUERY_MAX      4096

struct apid_http {
	struct apid *apid;
	struct mg_context *ctx;
	char token[APID_TOKEN_MAX + 1];
	char db_path[HIVE_CFG_PATH_MAX];
	char web_root[PATH_MAX];   /* resolved; "" while it does not exist */
	char web_root_cfg[HIVE_CFG_PATH_MAX];
	size_t max_body;
	bool open_reads;
	atomic_bool routed;          /* handle() registered with civetweb */
	struct apid_auth_limit *limit;  /* failed sign-ins per address */
	struct apid_answers *answers;   /* big GET answers, shared (answers.h) */
	struct api_worker *rebuilder;   /* answers' thread's reader and buffer */
};

/* answers.h's rebuilder: the miners list is the one answer kept. */
static void rebuild(void *ctx, struct apid_answers *c, const char *key)
{
	struct apid_http *h = ctx;

	if (strncmp(key, "miners?", 7) == 0)
		api_miners_rebuild(h->apid, h->rebuilder, c, key);
	else
		apid_answers_abandon(c, key);
}

/* ------------------------------------------------------------ decoding */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes src[0..n) into dst[cap]; with form, '+' is a space.
 * -1 on a broken escape, an encoded NUL or no room. */
static int url_decode(const char *src, size_t n, char *dst, size_t cap, bool form)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)src[i];

		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = hexval((unsigned char)src[i + 1]);
			lo = hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (form && c == '+') {
			c = ' ';
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* Splits the decoded path into segments. A "." or ".." segment, an empty
 * one inside the path, a backslash or a control character refuses it. */
static int path_split(struct api_req *r, char *path, bool *trailing)
{
	char *p = path + 1;

	r->nsegs = 0;
	*trailing = false;
	for (const char *c = path; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
			return -1;
	if (*p == '\0')
		return 0;
	for (;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (*p == '\0') {
			if (slash)            /* "//" */
				return -1;
			*trailing = true;
			return 0;
		}
		if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
			return -1;
		if (r->nsegs == API_MAX_SEGS)
			return -2;
		r->segs[r->nsegs++] = p;
		if (!slash)
			return 0;
		p = slash + 1;
		if (*p == '\0') {
			*trailing = true;
			return 0;
		}
	}
}

static int query_parse(struct api_req *r, const char *qs, char *buf, size_t cap)
{
	size_t used = 0;

	r->nparams = 0;
	while (qs && *qs) {
		const char *amp = strchr(qs, '&');
		size_t n = amp ? (size_t)(amp - qs) : strlen(qs);
		const char *eq = memchr(qs, '=', n);
		size_t kn = eq ? (size_t)(eq - qs) : n;
		char *name = buf + used, *value;

		if (n > 0) {
			if (r->nparams == API_MAX_PARAMS)
				return api_error(r, 400, "too many query parameters (at most %d)",
						 API_MAX_PARAMS), -1;
			if (url_decode(qs, kn, name, cap - used, true) < 0)
				return api_error(r, 400, "bad query string: broken %%-escape"), -1;
			used += strlen(name) + 1;
			value = buf + used;
			if (url_decode(eq ? eq + 1 : qs + n, eq ? n - kn - 1 : 0, value,
				       cap - used, true) < 0)
				return api_error(r, 400, "bad query string: broken %%-escape"), -1;
			used += strlen(value) + 1;
			if (!name[0])
				return api_error(r, 400, "bad query string: empty parameter name"), -1;
			if (api_param(r, name))
				return api_error(r, 400, "query parameter '%.64s' given twice", name), -1;
			r->params[r->nparams].name = name;
			r->params[r->nparams].value = value;
			r->nparams++;
		}
		if (!amp)
			break;
		qs = amp + 1;
	}
	return 0;
}

/* ------------------------------------------------------------ routing */

static bool is_method(const struct api_req *r, const char *m)
{
	return strcmp(r->method, m) == 0;
}

static bool is_read(const struct api_req *r)
{
	return is_method(r, "GET") || is_method(r, "HEAD");
}

static int not_allowed(struct api_req *r, const char *allow)
{
	char extra[96];

	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	return api_error_with(r, 405, extra, "method %s not allowed here (allowed: %s)",
			      r->method, allow);
}

/* Who r is: the bootstrap token (admin, compared in constant time), a
 * named token from the tokens table, or under open_reads an anonymous
 * viewer when there is no Authorization header. 0 with r->actor and
 * r->role set; -1 after an answer: 429 while the client's address is
 * locked out, 401 for no or an unknown token (counted against the
 * address when a token was given), 503 when the table cannot be read. */
static int sign_in(struct api_req *r, struct apid_http *h, const char *addr)
{
	const char *header = mg_get_header(r->conn, "Authorization");
	char token[APID_TOKEN_MAX + 1];
	long wait = apid_auth_limit_locked(h->limit, addr, hive_wall_ms());
	int rc = 0;

	if (wait > 0) {
		char extra[64];

		r->close = true;
		snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", wait);
		return api_error_with(r, 429, extra, "too many failed sign-ins from %.48s: "
				      "try again in %ld s", addr, wait), -1;
	}
	if (!header && h->open_reads) {
		snprintf(r->actor, sizeof(r->actor), "%s", APID_TOKEN_ANONYMOUS);
		r->role = APID_ROLE_VIEWER;
		r->anonymous = true;
		return 0;
	}
	if (apid_auth_bearer_ok(header, h->token)) {
		snprintf(r->actor, sizeof(r->actor), "%s", APID_TOKEN_BOOTSTRAP);
		r->role = APID_ROLE_ADMIN;
		return 0;
	}
	if (header && apid_auth_bearer_token(header, token, sizeof(token)))
		rc = api_token_lookup(r, token);
	explicit_bzero(token, sizeof(token));
	if (rc < 0)
		return -1;
	if (rc > 0)
		return 0;
	if (header)
		apid_auth_limit_fail(h->limit, addr, hive_wall_ms());
	api_error_with(r, 401, "WWW-Authenticate: Bearer realm=\"powerhive\"\r\n",
		       header ? "invalid API token"
			      : "API token required: Authorization: Bearer <token>");
	return -1;
}

/* ------------------------------------------------------------ static files */

static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "ico", "image/x-icon" },
	{ "woff2", "font/woff2" },
	{ "woff", "font/woff" },
	{ "ttf", "font/ttf" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "wasm", "application/wasm" },
};

static const char *mime_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');

	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
			if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
				return mime_types[i].type;
	return "application/octet-stream";
}

/* The resolved web root into out[PATH_MAX]. web/ may be installed after
 * apid started: then it is resolved per request (static files are few),
 * and nothing shared is written from the worker threads. */
static bool web_root_resolve(const struct apid_http *h, char *out)
{
	if (h->web_root[0]) {
		memcpy(out, h->web_root, strlen(h->web_root) + 1);
		return true;
	}
	return realpath(h->web_root_cfg, out) != NULL;
}

/* The path is already decoded and free of ".", ".." and empty segments;
 * realpath then keeps symlinks from leading out of the web root. */
static int serve_static(struct api_req *r, const struct apid_http *h, bool trailing,
			bool too_deep)
{
	char root[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
	struct stat st;
	size_t rootlen;
	int n;

	if (!is_read(r))
		return not_allowed(r, "GET, HEAD");
	if (too_deep)
		return api_error(r, 404, "not found: %.200s", r->path);
	for (int i = 0; i < r->nsegs; i++)
		if (r->segs[i][0] == '.')   /* no dot-files (.git, .env ...) */
			return api_error(r, 404, "not found: %.200s", r->path);
	if (!web_root_resolve(h, root))
		return api_error(r, 404, "no dashboard installed (http.web_root %s is missing)",
				 h->web_root_cfg);
	rootlen = strlen(root);
	n = snprintf(full, sizeof(full), "%s%s%s", root, r->path,
		     trailing || r->nsegs == 0 ? "index.html" : "");
	if (n < 0 || (size_t)n >= sizeof(full))
		return api_error(r, 414, "path too long");
	if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
		if ((size_t)n + 11 >= sizeof(full))
			return api_error(r, 414, "path too long");
		strcat(full, "/index.html");
	}
	if (!realpath(full, real) || strncmp(real, root, rootlen) != 0 ||
	    real[rootlen] != '/' || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
		return api_error(r, 404, "not found: %.200s", r->path);
	r->status = 200;
	mg_send_mime_file2(r->conn, real, mime_type(real), "X-Content-Type-Options: nosniff\r\n");
	return 200;
}

/* ------------------------------------------------------------ requests */

/* Two Content-Length headers, or one with a Transfer-Encoding. */
static bool framing_ambiguous(const struct mg_request_info *ri)
{
	int lengths = 0, encodings = 0;

	for (int i = 0; i < ri->num_headers; i++) {
		if (strcasecmp(ri->http_headers[i].name, "Content-Length") == 0)
			lengths++;
		else if (strcasecmp(ri->http_headers[i].name, "Transfer-Encoding") == 0)
			encodings++;
	}
	return lengths > 1 || (lengths && encodings);
}

/* GET /api/live: apid answers and can store what it is sent, judged
 * without the database and without a token (the container's health
 * check); the reason stays in GET /api/health. */
static int serve_live(struct api_req *r, const char *query)
{
	static const char ok[] = "{\"status\":\"live\"}\n";
	static const char failing[] = "{\"status\":\"failing\",\"error\":\"apid cannot store "
				      "data (GET /api/health says why)\"}\n";
	char why[400];

	if (!is_read(r))
		return not_allowed(r, "GET, HEAD");
	if (query && *query)
		return api_error(r, 400, "GET /api/live takes no query parameters");
	if (apid_health_failing(r->apid, why, sizeof(why)))
		return api_send(r, 503, "application/json", NULL, failing, sizeof(failing) - 1);
	return api_send(r, 200, "application/json", NULL, ok, sizeof(ok) - 1);
}

static int handle(struct mg_connection *conn, void *cbdata)
{
	struct apid_http *h = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct api_worker *w = mg_get_thread_pointer(conn);
	/* Decoded, each parameter takes at most two bytes more than raw. */
	char path[URI_MAX], segbuf[URI_MAX], query[QUERY_MAX + 2 * API_MAX_PARAMS + 2];
	struct api_req r = {
		.conn = conn, .apid = h->apid, .worker = w, .method = ri->request_method,
		.max_body = h->max_body, .path = path, .answers = h->answers,
	};
	const char *raw = ri->local_uri_raw;
	bool trailing = false, api;
	long long t0 = 0;
	int rc;

	if (!w) {
		api_answer_500(conn);
		return 500;
	}
	api_request_begin(&r);
	if (hive_log_get_level() <= HIVE_LOG_DEBUG)
		t0 = hive_mono_us();
	r.head = is_method(&r, "HEAD");
	/* A body over the limit is never read, whatever the answer: the
	 * connection closes after it instead of waiting to drain the body. */
	r.close = ri->content_length > (long long)h->max_body;

	/* civetweb takes the first of two Content-Length headers; a proxy in
	 * front may take the other and see a second request in the body. */
	if (framing_ambiguous(ri)) {
		r.close = true;
		api_error(&r, 400, "more than one Content-Length, or Content-Length with "
			  "Transfer-Encoding");
		goto done;
	}

	if (!raw || raw[0] != '/') {
		api_error(&r, 400, "bad request target");
		goto done;
	}
	if (strlen(raw) >= URI_MAX) {
		api_error(&r, 414, "path longer than %d bytes", URI_MAX - 1);
		goto done;
	}
	if (url_decode(raw, strlen(raw), path, sizeof(path), false) < 0) {
		api_error(&r, 400, "bad path: broken %%-escape or encoded NUL");
		goto done;
	}
	/* Segments are cut from a copy: path stays whole for file names and
	 * messages. */
	memcpy(segbuf, path, strlen(path) + 1);
	rc = path_split(&r, segbuf, &trailing);
	if (rc == -1) {
		api_error(&r, 400, "bad path: '.', '..', '//', '\\' and control characters are refused");
		goto done;
	}
	api = r.nsegs > 0 && (strcmp(r.segs[0], "api") == 0 ||
			      (r.nsegs == 1 && rc == 0 && strcmp(r.segs[0], "metrics") == 0));
	if (!api) {
		serve_static(&r, h, trailing, rc == -2);
		goto done;
	}
	if (rc == 0 && r.nsegs == 2 && strcmp(r.segs[1], "live") == 0) {
		serve_live(&r, ri->query_string);
		goto done;
	}
	if (sign_in(&r, h, ri->remote_addr) < 0)
		goto done;
	if (rc == -2) {
		api_error(&r, 404, "no such endpoint: %.200s", raw);
		goto done;
	}
	if (strlen(ri->query_string ? ri->query_string : "") >= QUERY_MAX) {
		api_error(&r, 414, "query string longer than %d bytes", QUERY_MAX - 1);
		goto done;
	}
	if (query_parse(&r, ri->query_string, query, sizeof(query)) == 0)
		apid_route(&r);
done:
	/* A change made through the API shows in the next answer (answers.h). */
	if (!is_read(&r) && r.status >= 200 && r.status < 300)
		apid_answers_invalidate(h->answers);
	api_request_end(&r);
	if (r.close)
		mg_disable_connection_keep_alive(conn);
	if (t0)
		log_debug("http request method=%s path=%.200s status=%d us=%lld", r.method,
			  raw ? raw : "-", r.status, (long long)(hive_mono_us() - t0));
	return r.status ? r.status : 500;
}

/* civetweb accepts connections from mg_start2 on, before handle() can be
 * registered with it (with a few hundred threads that is milliseconds):
 * until then a request would get civetweb's own 404, so it is answered
 * here, the same way. */
static int on_begin_request(struct mg_connection *conn)
{
	struct apid_http *h = mg_get_user_data(mg_get_context(conn));

	if (atomic_load(&h->routed))
		return 0;       /* civetweb calls handle() */
	return handle(conn, h);
}

/* civetweb's own errors (malformed request, headers too large...) as JSON. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
	char body[512], out[1024];
	json_t *j = json_pack("{s:s}", "error", msg && *msg ? msg :
			      mg_get_response_code_text(conn, status));
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int n;

	snprintf(body, sizeof(body), "%s\n", text ? text : "{\"error\":\"error\"}");
	free(text);
	json_decref(j);
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		     status, mg_get_response_code_text(conn, status), strlen(body), body);
	if (n > 0 && (size_t)n < sizeof(out))
		mg_write(conn, out, (size_t)n);
	return 0;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warnx("http civetweb message=\"%.300s\"", message);
	return 1;
}

/* Workers only: they run the handlers. h outlives them (mg_stop joins
 * them before apid_http_stop frees it). */
static void *on_thread_start(const struct mg_context *ctx, int thread_type)
{
	const struct apid_http *h = mg_get_user_data(ctx);

	if (thread_type != 1)
		return NULL;
	return api_worker_new(h->db_path);
}

static void on_thread_stop(const struct mg_context *ctx, int thread_type, void *ptr)
{
	(void)ctx;
	(void)thread_type;
	api_worker_free(ptr);
}

/* ------------------------------------------------------------ start, stop */

struct apid_http *apid_http_start(struct apid *a, char *err, size_t errlen)
{
	const struct hive_cfg *cfg = apid_cfg(a);
	struct apid_http *h = calloc(1, sizeof(*h));
	struct mg_callbacks cb = {
		.begin_request = on_begin_request,
		.log_message = on_log_message,
		.http_error = on_http_error,
		.init_thread = on_thread_start,
		.exit_thread = on_thread_stop,
	};
	char threads[16], timeout[16];
	/* civetweb serves each connection on a worker thread from accept to
	 * close, and queues the rest in order: a client that trickles its
	 * request head holds a thread until request_timeout_ms. More threads
	 * than slow clients keep a thread free for everyone else
	 * (tests/e2e/test_slow_clients). */
	const char *opts[] = {
		"listening_ports", cfg->http.addr,
		"num_threads", threads,
		"tcp_nodelay", "1",
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "1000",
		"request_timeout_ms", timeout,
		"decode_url", "no",
		"enable_directory_listing", "no",
		"static_file_max_age", "0",
		NULL,
	};
	char cwerr[256] = "";
	unsigned cwcode = 0;
	struct mg_error_data ed = { .code = &cwcode, .text = cwerr, .text_buffer_size = sizeof(cwerr) };
	struct mg_init_data init = { .callbacks = &cb, .user_data = h, .configuration_options = opts };

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(threads, sizeof(threads), "%d", cfg->http.threads);
	snprintf(timeout, sizeof(timeout), "%d", cfg->http.request_timeout_ms);
	h->apid = a;
	h->max_body = cfg->http.max_body_bytes;
	h->open_reads = cfg->http.auth.open_reads;
	snprintf(h->db_path, sizeof(h->db_path), "%s", apid_db_path(a));
	if (!(h->limit = apid_auth_limit_new()) || !(h->rebuilder = api_worker_new(h->db_path)) ||
	    !(h->answers = apid_answers_new(rebuild, h))) {
		snprintf(err, errlen, "out of memory");
		api_worker_free(h->rebuilder);
		apid_auth_limit_free(h->limit);
		free(h);
		return NULL;
	}
	snprintf(h->web_root_cfg, sizeof(h->web_root_cfg), "%s", cfg->http.web_root);
	if (apid_auth_resolve(cfg, h->token, sizeof(h->token), err, errlen) < 0)
		goto fail;
	if (!realpath(h->web_root_cfg, h->web_root)) {
		h->web_root[0] = '\0';   /* realpath leaves it undefined */
		log_warnx("http web root missing path=%s (the dashboard answers 404 until it exists)",
			  h->web_root_cfg);
	}
	mg_init_library(0);
	h->ctx = mg_start2(&init, &ed);
	if (!h->ctx) {
		snprintf(err, errlen, "http.addr: cannot serve on %s: %s", cfg->http.addr,
			 cwerr[0] ? cwerr : "civetweb failed to start");
		mg_exit_library();
		goto fail;
	}
	mg_set_request_handler(h->ctx, "/", handle, h);
	atomic_store(&h->routed, true);
	log_info("http listening addr=%s threads=%s request_timeout_ms=%s open_reads=%d"
		 " web_root=%s", cfg->http.addr, threads, timeout, h->open_reads, h->web_root_cfg);
	return h;
fail:
	explicit_bzero(h->token, sizeof(h->token));
	apid_answers_free(h->answers);
	api_worker_free(h->rebuilder);
	apid_auth_limit_free(h->limit);
	free(h);
	return NULL;
}

void apid_http_auth_counts(struct apid_http *h, unsigned long long *failed,
			   unsigned long long *refused)
{
	apid_auth_limit_counts(h ? h->limit : NULL, failed, refused);
}

void apid_http_stop(struct apid_http *h)
{
	if (!h)
		return;
	mg_stop(h->ctx);   /* joins the workers; each closes its connection */
	mg_exit_library();
	explicit_bzero(h->token, sizeof(h->token));
	apid_answers_free(h->answers);   /* joins the rebuilder */
	api_worker_free(h->rebuilder);
	apid_auth_limit_free(h->limit);
	free(h);
	log_info("http stopped");
}
