/* http — apid's HTTP server (civetweb): setup, routing, answers, the query
 * string and body, static files of the dashboard, and every worker thread's
 * own read-only SQLite connection. The handlers are in api_*.c.
 *
 * Every answer leaves in one mg_write (headers and body from one buffer) on
 * a TCP_NODELAY socket: split writes cost two orders of magnitude in
 * request rate through Nagle and delayed ACKs. */
#include "http.h"

#include <civetweb.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "api.h"
#include "apid.h"
#include "auth.h"
#include "hive/cfg.h"
#include "hive/log.h"

#define HTTP_THREADS   "8"
#define HDR_RESERVE    512        /* room left before a body for its headers */
#define STMT_SLOTS     64         /* prepared statements kept per connection */
#define URI_MAX        2048
#define QUERY_MAX      4096
#define OUT_KEEP_MAX   (1u << 20) /* a larger answer buffer is mapped, not kept */
#define JSON_FLAGS     (JSON_COMPACT | JSON_REAL_PRECISION(7))
#define BUSY_TIMEOUT_MS 2000

static const char answer_500[] = "HTTP/1.1 500 Internal Server Error\r\n"
	"Content-Length: 0\r\nConnection: close\r\n\r\n";

struct apid_http {
	struct apid *apid;
	struct mg_context *ctx;
	char token[APID_TOKEN_MAX + 1];
	char db_path[HIVE_CFG_PATH_MAX];
	char web_root[PATH_MAX];   /* resolved; "" while it does not exist */
	char web_root_cfg[HIVE_CFG_PATH_MAX];
	size_t max_body;
	bool open_reads;
};

struct stmt_slot {
	uint64_t hash;
	char *sql;
	sqlite3_stmt *st;
	unsigned long long last;   /* request number of its last use */
};

/* One per civetweb worker thread (init_thread), so nothing here is shared. */
struct api_db {
	const struct apid_http *h;
	sqlite3 *db;
	struct stmt_slot slots[STMT_SLOTS];
	unsigned long long req_no;
	char *out;                 /* answer buffer, reused up to OUT_KEEP_MAX */
	size_t out_cap;
	bool out_mapped;           /* out is an mmap of out_cap bytes */
};

/* ------------------------------------------------------------ answers */

/* Up to OUT_KEEP_MAX the buffer is malloc'd and kept for the next answer;
 * beyond, it is an anonymous mapping (grown by mremap, without a copy)
 * unmapped after its answer. Not malloc: once glibc has freed an mmapped
 * block it raises its mmap threshold, so the next multi-MB buffer comes from
 * the worker's own arena, and free() leaves an arena's top chunk resident
 * below its trim threshold (twice the mmap threshold); malloc_trim(0) does
 * not trim the top of a thread's arena either. Every worker that had served
 * one 7 MB list kept ~9 MB resident. */
static int out_reserve(struct api_db *d, size_t need)
{
	size_t cap = d->out_cap ? d->out_cap : 8192;
	char *p;

	if (need <= d->out_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap <= OUT_KEEP_MAX) {
		p = realloc(d->out, cap);
		if (!p)
			return -1;
	} else if (d->out_mapped) {
		p = mremap(d->out, d->out_cap, cap, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return -1;
	} else {
		p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		if (d->out_cap)
			memcpy(p, d->out, d->out_cap);
		free(d->out);
		d->out_mapped = true;
	}
	d->out = p;
	d->out_cap = cap;
	return 0;
}

static void out_trim(struct api_db *d)
{
	if (d->out_mapped) {
		munmap(d->out, d->out_cap);
		d->out = NULL;
		d->out_cap = 0;
		d->out_mapped = false;
	}
}

static int head_format(struct api_req *r, char *buf, size_t cap, int status,
		       const char *ctype, const char *extra, size_t len)
{
	int n = snprintf(buf, cap,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "%s%s\r\n",
			 status, mg_get_response_code_text(r->conn, status), ctype, len,
			 extra ? extra : "", r->close ? "Connection: close\r\n" : "");

	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The body already sits in d->out at HDR_RESERVE: the headers go right
 * before it and the whole leaves in one write. */
static int send_reserved(struct api_req *r, int status, const char *ctype, const char *extra,
			 size_t len)
{
	char head[HDR_RESERVE];
	int n = head_format(r, head, sizeof(head), status, ctype, extra, len);
	char *start;

	r->status = status;
	if (n < 0) {
		log_errx("http answer headers too long status=%d", status);
		r->status = 500;
		mg_write(r->conn, answer_500, sizeof(answer_500) - 1);
		return 500;
	}
	start = r->db->out + HDR_RESERVE - n;
	memcpy(start, head, (size_t)n);
	mg_write(r->conn, start, (size_t)n + (r->head ? 0 : len));
	out_trim(r->db);
	return status;
}

int api_send(struct api_req *r, int status, const char *ctype, const char *extra,
	     const void *body, size_t len)
{
	if (out_reserve(r->db, HDR_RESERVE + len) < 0) {
		log_errx("http out of memory bytes=%zu", len);
		r->close = true;
		r->status = 500;
		mg_write(r->conn, answer_500, sizeof(answer_500) - 1);
		return 500;
	}
	if (len)
		memcpy(r->db->out + HDR_RESERVE, body, len);
	return send_reserved(r, status, ctype, extra, len);
}

/* Appends the compact text of j (reference stolen) to the body at *len in
 * d->out, leaving a byte for the final newline. Straight into the reused
 * buffer; a second pass only when the text outgrew it. 0 / -1. */
static int out_json(struct api_db *d, size_t *len, json_t *j)
{
	size_t at = HDR_RESERVE + *len, n = 0;

	if (j && out_reserve(d, at + 16384) == 0) {
		n = json_dumpb(j, d->out + at, d->out_cap - at - 1, JSON_FLAGS);
		if (n > d->out_cap - at - 1)
			n = out_reserve(d, at + n + 1) < 0 ? 0 : json_dumpb(j, d->out + at, n, JSON_FLAGS);
	}
	json_decref(j);
	if (n == 0)
		return -1;
	*len += n;
	return 0;
}

static int send_json(struct api_req *r, int status, const char *extra, json_t *body)
{
	size_t len = 0;

	if (out_json(r->db, &len, body) < 0) {
		static const char oom[] = "{\"error\":\"out of memory\"}";
		return api_send(r, 500, "application/json", NULL, oom, sizeof(oom) - 1);
	}
	r->db->out[HDR_RESERVE + len++] = '\n';
	return send_reserved(r, status, "application/json", extra, len);
}

void api_out_start(struct api_req *r)
{
	r->out_len = 0;
	r->out_failed = false;
}

void api_out_raw(struct api_req *r, const char *text, size_t n)
{
	struct api_db *d = r->db;

	if (r->out_failed)
		return;
	if (out_reserve(d, HDR_RESERVE + r->out_len + n + 1) < 0) {
		r->out_failed = true;
		return;
	}
	memcpy(d->out + HDR_RESERVE + r->out_len, text, n);
	r->out_len += n;
}

void api_out_json(struct api_req *r, json_t *j)
{
	if (r->out_failed)
		json_decref(j);
	else if (out_json(r->db, &r->out_len, j) < 0)
		r->out_failed = true;
}

int api_out_send(struct api_req *r, int status)
{
	if (r->out_failed || out_reserve(r->db, HDR_RESERVE + r->out_len + 1) < 0) {
		log_errx("http out of memory building an answer bytes=%zu", r->out_len);
		return api_error(r, 500, "out of memory");
	}
	r->db->out[HDR_RESERVE + r->out_len++] = '\n';
	return send_reserved(r, status, "application/json", NULL, r->out_len);
}

int api_json(struct api_req *r, int status, json_t *body)
{
	if (!body)
		return api_error(r, 500, "out of memory");
	return send_json(r, status, NULL, body);
}

static int verror(struct api_req *r, int status, const char *extra, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return send_json(r, status, extra, json_pack("{s:s}", "error", msg));
}

int api_error(struct api_req *r, int status, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verror(r, status, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

static int error_with(struct api_req *r, int status, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int error_with(struct api_req *r, int status, const char *extra, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verror(r, status, extra, fmt, ap);
	va_end(ap);
	return rc;
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

/* ------------------------------------------------------------ parameters */

const char *api_param(const struct api_req *r, const char *name)
{
	for (int i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return r->params[i].value;
	return NULL;
}

int api_params_allow(struct api_req *r, const char *const allowed[])
{
	for (int i = 0; i < r->nparams; i++) {
		bool ok = false;
		for (size_t k = 0; allowed[k] && !ok; k++)
			ok = strcmp(allowed[k], r->params[i].name) == 0;
		if (!ok) {
			char list[256] = "";
			size_t n = 0;
			for (size_t k = 0; allowed[k]; k++) {
				int w = snprintf(list + n, sizeof(list) - n, "%s%s", k ? ", " : "",
						 allowed[k]);
				if (w < 0 || (size_t)w >= sizeof(list) - n)
					break;
				n += (size_t)w;
			}
			api_error(r, 400, "unknown query parameter '%.64s' (known: %s)",
				  r->params[i].name, n ? list : "none");
			return -1;
		}
	}
	return 0;
}

int api_param_int(struct api_req *r, const char *name, long long min, long long max,
		  long long def, long long *out)
{
	const char *v = api_param(r, name);
	long long x = 0;
	size_t i;

	if (!v) {
		*out = def;
		return 0;
	}
	for (i = 0; v[i]; i++) {
		if (v[i] < '0' || v[i] > '9' || i >= 18)
			break;
		x = x * 10 + (v[i] - '0');
	}
	if (i == 0 || v[i] || x < min || x > max) {
		api_error(r, 400, "%s: must be an integer from %lld to %lld, got '%.32s'", name,
			  min, max, v);
		return -1;
	}
	*out = x;
	return 0;
}

int api_param_bool(struct api_req *r, const char *name, int *out)
{
	const char *v = api_param(r, name);

	*out = -1;
	if (!v)
		return 0;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else {
		api_error(r, 400, "%s: must be true or false, got '%.32s'", name, v);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ body */

json_t *api_body_object(struct api_req *r)
{
	const struct mg_request_info *ri = mg_get_request_info(r->conn);
	const char *ctype = mg_get_header(r->conn, "Content-Type");
	const char *te = mg_get_header(r->conn, "Transfer-Encoding");
	json_error_t jerr;
	json_t *j;
	size_t len = 0;
	char *buf;

	if (ctype && (strncasecmp(ctype, "application/json", 16) != 0 ||
		      (ctype[16] && ctype[16] != ';' && ctype[16] != ' '))) {
		api_error(r, 415, "Content-Type must be application/json");
		return NULL;
	}
	if (ri->content_length > (long long)r->max_body) {
		/* Answer before reading: the rest of the body is never read. */
		r->close = true;
		api_error(r, 413, "request body larger than %zu bytes", r->max_body);
		return NULL;
	}
	if (ri->content_length <= 0 && !te) {
		api_error(r, 400, "a JSON object is required as the request body");
		return NULL;
	}
	buf = malloc(r->max_body + 1);
	if (!buf) {
		api_error(r, 500, "out of memory");
		return NULL;
	}
	for (;;) {
		int n = mg_read(r->conn, buf + len, r->max_body + 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > r->max_body) {
			explicit_bzero(buf, len);
			free(buf);
			r->close = true;
			api_error(r, 413, "request body larger than %zu bytes", r->max_body);
			return NULL;
		}
	}
	if (len == 0) {
		free(buf);
		api_error(r, 400, "a JSON object is required as the request body");
		return NULL;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	explicit_bzero(buf, len);   /* it may hold a password */
	free(buf);
	if (!j) {
		api_error(r, 400, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
			  jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		api_error(r, 400, "the request body must be a JSON object, got %s",
			  json_is_array(j) ? "an array" : "a scalar");
		json_decref(j);
		return NULL;
	}
	return j;
}

int api_body_allow(struct api_req *r, const json_t *obj, const char *const allowed[])
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (size_t k = 0; allowed[k] && !ok; k++)
			ok = strcmp(allowed[k], key) == 0;
		if (!ok) {
			api_error(r, 400, "unknown field '%.64s'", key);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ ids */

int api_mac_parse(const char *in, char *out)
{
	if (strlen(in) != API_MAC_LEN)
		return -1;
	for (int i = 0; i < API_MAC_LEN; i++) {
		char c = in[i];
		if (i % 3 == 2) {
			if (c != ':')
				return -1;
		} else if (hexval((unsigned char)c) < 0) {
			return -1;
		}
		out[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	out[API_MAC_LEN] = '\0';
	return 0;
}

bool api_alias_ok(const char *alias)
{
	size_t n = strlen(alias);

	if (n == 0 || n >= API_ALIAS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = alias[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '+'))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------ database */

/* ip_order(text): a dotted quad as a number, so "ip" sorts 10 after 9. */
static void sql_ip_order(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *s = sqlite3_value_text(argv[0]);
	unsigned long long v = 0, part = 0;
	int dots = 0, digits = 0;

	(void)argc;
	if (!s) {
		sqlite3_result_null(ctx);
		return;
	}
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9' && digits < 3) {
			part = part * 10 + (*s - '0');
			digits++;
		} else if (*s == '.' && digits && dots < 3 && part < 256) {
			v = v * 256 + part;
			part = 0;
			digits = 0;
			dots++;
		} else {
			sqlite3_result_null(ctx);
			return;
		}
	}
	if (dots != 3 || !digits || part > 255) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_int64(ctx, (sqlite3_int64)(v * 256 + part));
}

static int db_open(struct api_db *d)
{
	sqlite3 *db = NULL;
	int rc;

	if (d->db)
		return 0;
	rc = sqlite3_open_v2(d->h->db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		hive_log_complain("http db open", "http database open failed path=%s err=\"%s\"",
				  d->h->db_path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_create_function(db, "ip_order", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				sql_ip_order, NULL, NULL);
	hive_log_recovered("http db open", "http database open path=%s", d->h->db_path);
	d->db = db;
	return 0;
}

static void db_close(struct api_db *d)
{
	for (int i = 0; i < STMT_SLOTS; i++) {
		sqlite3_finalize(d->slots[i].st);
		free(d->slots[i].sql);
	}
	memset(d->slots, 0, sizeof(d->slots));
	sqlite3_close(d->db);
	d->db = NULL;
}

static uint64_t sql_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

sqlite3_stmt *api_stmt(struct api_req *r, const char *sql)
{
	struct api_db *d = r->db;
	struct stmt_slot *slot = NULL, *victim = &d->slots[0];
	uint64_t h = sql_hash(sql);
	sqlite3_stmt *st = NULL;
	char *copy;
	int rc;

	if (db_open(d) < 0) {
		api_error(r, 503, "database not available yet");
		return NULL;
	}
	for (int i = 0; i < STMT_SLOTS; i++) {
		struct stmt_slot *s = &d->slots[i];
		if (s->st && s->hash == h && strcmp(s->sql, sql) == 0) {
			slot = s;
			break;
		}
		if (!s->st || (victim->st && s->last < victim->last))
			victim = s;
	}
	if (slot) {
		sqlite3_reset(slot->st);
		sqlite3_clear_bindings(slot->st);
		slot->last = d->req_no;
		return slot->st;
	}
	rc = sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		const char *msg = sqlite3_errmsg(d->db);
		bool early = strstr(msg, "no such table") || strstr(msg, "no such column");
		hive_log_complain("http db prepare", "http query refused err=\"%s\"", msg);
		api_error(r, early ? 503 : 500, early ? "database not ready (schema missing)"
						      : "database error");
		return NULL;
	}
	copy = strdup(sql);
	if (!copy) {
		sqlite3_finalize(st);
		api_error(r, 500, "out of memory");
		return NULL;
	}
	sqlite3_finalize(victim->st);
	free(victim->sql);
	victim->hash = h;
	victim->sql = copy;
	victim->st = st;
	victim->last = d->req_no;
	return st;
}

int api_db_fail(struct api_req *r, sqlite3_stmt *st)
{
	sqlite3 *db = sqlite3_db_handle(st);
	int code = sqlite3_errcode(db);

	hive_log_complain("http db step", "http query failed err=\"%s\"", sqlite3_errmsg(db));
	sqlite3_reset(st);
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return api_error(r, 503, "database busy, try again");
	return api_error(r, 500, "database error");
}

/* Ends the request's read: every statement it used is reset, so no read
 * transaction stays open to hold back the writer's checkpoints. */
static void db_release(struct api_db *d)
{
	for (int i = 0; i < STMT_SLOTS; i++)
		if (d->slots[i].st && d->slots[i].last == d->req_no) {
			sqlite3_reset(d->slots[i].st);
			sqlite3_clear_bindings(d->slots[i].st);
		}
}

json_t *api_col(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT:
		return json_stringn((const char *)sqlite3_column_text(st, i),
				    (size_t)sqlite3_column_bytes(st, i));
	default:
		return json_null();
	}
}

json_t *api_col_bool(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return json_null();
	return json_boolean(sqlite3_column_int64(st, i) != 0);
}

json_t *api_col_json(sqlite3_stmt *st, int i)
{
	const char *text;
	json_t *j;

	if (sqlite3_column_type(st, i) != SQLITE_TEXT)
		return json_null();
	text = (const char *)sqlite3_column_text(st, i);
	j = json_loadb(text, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY, NULL);
	return j ? j : json_null();
}

void api_set(json_t *o, const char *key, json_t *v)
{
	json_object_set_new_nocheck(o, key, v ? v : json_null());
}

void api_set_cols(json_t *o, sqlite3_stmt *st, int first, const char *const names[])
{
	for (int k = 0; names[k]; k++)
		api_set(o, names[k], api_col(st, first + k));
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
	return error_with(r, 405, extra, "method %s not allowed here (allowed: %s)", r->method,
			  allow);
}

static int bad_mac(struct api_req *r, const char *id)
{
	return api_error(r, 400, "bad miner id '%.40s': expected a MAC like aa:bb:cc:dd:ee:ff",
			 id);
}

static int route_api(struct api_req *r)
{
	struct apid *a = r->apid;
	char mac[API_MAC_LEN + 1];
	int n = r->nsegs;
	const char *what = n > 1 ? r->segs[1] : "";

	if (n == 1 && strcmp(r->segs[0], "metrics") == 0) {
		char *text;
		int st;
		if (!is_read(r))
			return not_allowed(r, "GET, HEAD");
		if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
			return r->status;
		text = apid_metrics(a);
		if (!text)
			return api_error(r, 500, "metrics unavailable");
		st = api_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text,
			      strlen(text));
		free(text);
		return st;
	}
	if (n == 2 && strcmp(what, "health") == 0) {
		json_t *j;
		if (!is_read(r))
			return not_allowed(r, "GET, HEAD");
		if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
			return r->status;
		j = apid_health(a);
		return j ? api_json(r, 200, j) : api_error(r, 500, "health unavailable");
	}
	if (strcmp(what, "miners") == 0) {
		if (n == 2)
			return is_read(r) ? api_miners_list(r) : not_allowed(r, "GET, HEAD");
		if (n >= 3 && n <= 4 && api_mac_parse(r->segs[2], mac) < 0)
			return bad_mac(r, r->segs[2]);
		if (n == 3) {
			if (is_read(r))
				return api_miner_get(r, mac);
			if (is_method(r, "PATCH"))
				return api_miner_patch(r, mac);
			return not_allowed(r, "GET, HEAD, PATCH");
		}
		if (n == 4 && strcmp(r->segs[3], "statuses") == 0)
			return is_read(r) ? api_miner_statuses(r, mac) : not_allowed(r, "GET, HEAD");
		if (n == 4 && strcmp(r->segs[3], "telemetry") == 0)
			return is_read(r) ? api_miner_telemetry(r, mac) : not_allowed(r, "GET, HEAD");
	}
	if (strcmp(what, "models") == 0) {
		if (n == 2)
			return is_read(r) ? api_models_list(r) : not_allowed(r, "GET, HEAD");
		if (n == 3) {
			if (!api_alias_ok(r->segs[2]))
				return api_error(r, 400, "bad model alias '%.40s'", r->segs[2]);
			if (is_read(r))
				return api_model_get(r, r->segs[2]);
			if (is_method(r, "PATCH"))
				return api_model_patch(r, r->segs[2]);
			return not_allowed(r, "GET, HEAD, PATCH");
		}
	}
	return api_error(r, 404, "no such endpoint: %.200s", r->path);
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

static int handle(struct mg_connection *conn, void *cbdata)
{
	struct apid_http *h = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct api_db *d = mg_get_thread_pointer(conn);
	/* Decoded, each parameter takes at most two bytes more than raw. */
	char path[URI_MAX], segbuf[URI_MAX], query[QUERY_MAX + 2 * API_MAX_PARAMS + 2];
	struct api_req r = {
		.conn = conn, .apid = h->apid, .db = d, .method = ri->request_method,
		.max_body = h->max_body, .path = path,
	};
	const char *raw = ri->local_uri_raw;
	bool trailing = false, api;
	long long t0 = 0;
	int rc;

	if (!d) {
		mg_write(conn, answer_500, sizeof(answer_500) - 1);
		return 500;
	}
	d->req_no++;
	if (hive_log_get_level() <= HIVE_LOG_DEBUG) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
	}
	r.head = is_method(&r, "HEAD");
	/* A body over the limit is never read, whatever the answer: the
	 * connection closes after it instead of waiting to drain the body. */
	r.close = ri->content_length > (long long)h->max_body;
	snprintf(r.actor, sizeof(r.actor), "api@%s", ri->remote_addr);

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
	if ((!is_read(&r) || !h->open_reads) &&
	    !apid_auth_bearer_ok(mg_get_header(conn, "Authorization"), h->token)) {
		error_with(&r, 401, "WWW-Authenticate: Bearer realm=\"powerhive\"\r\n",
			   mg_get_header(conn, "Authorization") ? "invalid API token"
								 : "API token required: Authorization: Bearer <token>");
		goto done;
	}
	if (rc == -2) {
		api_error(&r, 404, "no such endpoint: %.200s", raw);
		goto done;
	}
	if (strlen(ri->query_string ? ri->query_string : "") >= QUERY_MAX) {
		api_error(&r, 414, "query string longer than %d bytes", QUERY_MAX - 1);
		goto done;
	}
	if (query_parse(&r, ri->query_string, query, sizeof(query)) == 0)
		route_api(&r);
done:
	db_release(d);
	if (r.close)
		mg_disable_connection_keep_alive(conn);
	if (t0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		log_debug("http request method=%s path=%.200s status=%d us=%lld", r.method,
			  raw ? raw : "-", r.status,
			  ts.tv_sec * 1000000LL + ts.tv_nsec / 1000 - t0);
	}
	return r.status ? r.status : 500;
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

static void *on_thread_start(const struct mg_context *ctx, int thread_type)
{
	struct api_db *d;

	if (thread_type != 1)   /* workers only: they run the handlers */
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d)
		d->h = mg_get_user_data(ctx);
	return d;
}

static void on_thread_stop(const struct mg_context *ctx, int thread_type, void *ptr)
{
	struct api_db *d = ptr;

	(void)ctx;
	(void)thread_type;
	if (!d)
		return;
	db_close(d);
	out_trim(d);
	free(d->out);
	free(d);
}

/* ------------------------------------------------------------ start, stop */

struct apid_http *apid_http_start(struct apid *a, char *err, size_t errlen)
{
	const struct hive_cfg *cfg = apid_cfg(a);
	struct apid_http *h = calloc(1, sizeof(*h));
	struct mg_callbacks cb = {
		.log_message = on_log_message,
		.http_error = on_http_error,
		.init_thread = on_thread_start,
		.exit_thread = on_thread_stop,
	};
	const char *opts[] = {
		"listening_ports", cfg->http.addr,
		"num_threads", HTTP_THREADS,
		"tcp_nodelay", "1",
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "1000",
		"request_timeout_ms", "10000",
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
	h->apid = a;
	h->max_body = cfg->http.max_body_bytes;
	h->open_reads = cfg->http.auth.open_reads;
	snprintf(h->db_path, sizeof(h->db_path), "%s", apid_db_path(a));
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
	log_info("http listening addr=%s threads=%s open_reads=%d web_root=%s", cfg->http.addr,
		 HTTP_THREADS, h->open_reads, h->web_root_cfg);
	return h;
fail:
	explicit_bzero(h->token, sizeof(h->token));
	free(h);
	return NULL;
}

void apid_http_stop(struct apid_http *h)
{
	if (!h)
		return;
	mg_stop(h->ctx);   /* joins the workers; each closes its connection */
	mg_exit_library();
	explicit_bzero(h->token, sizeof(h->token));
	free(h);
	log_info("http stopped");
}
