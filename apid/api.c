/* api — see api.h: what the HTTP handlers share. The answer buffer and
 * the read-only connection belong to one civetweb worker thread (struct
 * api_worker, made by http.c's thread callbacks), so nothing here is
 * shared between threads.
 *
 * Every answer leaves in one mg_write (headers and body from one buffer):
 * split writes cost two orders of magnitude in request rate through Nagle
 * and delayed ACKs. */
#include "api.h"

#include <civetweb.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>

#include "hive/log.h"
#include "store.h"

#define HDR_RESERVE    512        /* room left before a body for its headers */
#define STMT_SLOTS     64         /* prepared statements kept per connection */
#define OUT_KEEP_MAX   (1u << 20) /* a larger answer buffer is mapped, not kept */
/* JSON_ENCODE_ANY: api_out_col_json dumps whatever its column held. */
/* Shorter than the store's default: a client waiting gets a 503 sooner. */
#define BUSY_TIMEOUT_MS 2000

static const char answer_500[] = "HTTP/1.1 500 Internal Server Error\r\n"
	"Content-Length: 0\r\nConnection: close\r\n\r\n";

struct stmt_slot {
	uint64_t hash;
	char *sql;
	sqlite3_stmt *st;
	unsigned long long last;   /* request number of its last use */
};

struct api_worker {
	const char *db_path;
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
 * one 7 MB list kept ~9 MB resident. A mapping is populated as it is made
 * or grown (MAP_POPULATE, MADV_POPULATE_WRITE): a fault per 4 KiB page was
 * ~15% of a 10,000-miner list's time (on a VM, where faults are dear), and
 * the pages are about to be written anyway (less than half of the buffer
 * stays unwritten, for the time of one answer). */
static int out_reserve(struct api_worker *d, size_t need)
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
#ifdef MADV_POPULATE_WRITE
		/* Linux 5.14+; an older kernel refuses it: faults as before. */
		madvise(p + d->out_cap, cap - d->out_cap, MADV_POPULATE_WRITE);
#endif
	} else {
		p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
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

static void out_trim(struct api_worker *d)
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
			 status, r->conn ? mg_get_response_code_text(r->conn, status) : "",
			 ctype, len,
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
	if (!r->conn) {
		out_trim(r->worker);   /* built for answers.h, not for a client */
		return status;
	}
	if (n < 0) {
		log_errx("http answer headers too long status=%d", status);
		r->status = 500;
		mg_write(r->conn, answer_500, sizeof(answer_500) - 1);
		return 500;
	}
	start = r->worker->out + HDR_RESERVE - n;
	memcpy(start, head, (size_t)n);
	mg_write(r->conn, start, (size_t)n + (r->head ? 0 : len));
	out_trim(r->worker);
	return status;
}

int api_send(struct api_req *r, int status, const char *ctype, const char *extra,
	     const void *body, size_t len)
{
	if (out_reserve(r->worker, HDR_RESERVE + len) < 0) {
		log_errx("http out of memory bytes=%zu", len);
		r->close = true;
		r->status = 500;
		if (r->conn)
			mg_write(r->conn, answer_500, sizeof(answer_500) - 1);
		return 500;
	}
	if (len)
		memcpy(r->worker->out + HDR_RESERVE, body, len);
	return send_reserved(r, status, ctype, extra, len);
}

/* Appends the compact text of j (reference stolen) to the body at *len in
 * d->out, leaving a byte for the final newline. Straight into the reused
 * buffer; a second pass only when the text outgrew it. 0 / -1. */
static int out_json(struct api_worker *d, size_t *len, json_t *j)
{
	size_t at = HDR_RESERVE + *len, n = 0;

	if (j && out_reserve(d, at + 16384) == 0) {
		n = json_dumpb(j, d->out + at, d->out_cap - at - 1, API_JSON_FLAGS);
		if (n > d->out_cap - at - 1)
			n = out_reserve(d, at + n + 1) < 0 ? 0 : json_dumpb(j, d->out + at, n, API_JSON_FLAGS);
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

	if (out_json(r->worker, &len, body) < 0) {
		static const char oom[] = "{\"error\":\"out of memory\"}";
		return api_send(r, 500, "application/json", NULL, oom, sizeof(oom) - 1);
	}
	r->worker->out[HDR_RESERVE + len++] = '\n';
	return send_reserved(r, status, "application/json", extra, len);
}

void api_out_start(struct api_req *r)
{
	r->out_len = 0;
	r->out_failed = false;
}

/* Room for n more bytes of body (and the final newline): where they go,
 * or NULL once an append has failed. The caller adds what it wrote to
 * r->out_len. */
static char *out_room(struct api_req *r, size_t n)
{
	struct api_worker *d = r->worker;

	if (r->out_failed)
		return NULL;
	if (out_reserve(d, HDR_RESERVE + r->out_len + n + 1) < 0) {
		r->out_failed = true;
		return NULL;
	}
	return d->out + HDR_RESERVE + r->out_len;
}

void api_out_raw(struct api_req *r, const char *text, size_t n)
{
	char *p = out_room(r, n);

	if (!p)
		return;
	memcpy(p, text, n);
	r->out_len += n;
}

void api_out_json(struct api_req *r, json_t *j)
{
	if (r->out_failed)
		json_decref(j);
	else if (out_json(r->worker, &r->out_len, j) < 0)
		r->out_failed = true;
}

static int out_send(struct api_req *r, int status, const char *ctype, const char *extra)
{
	if (r->out_failed || out_reserve(r->worker, HDR_RESERVE + r->out_len) < 0) {
		log_errx("http out of memory building an answer bytes=%zu", r->out_len);
		return api_error(r, 500, "out of memory");
	}
	return send_reserved(r, status, ctype, extra, r->out_len);
}

const char *api_out_body(const struct api_req *r, size_t *len)
{
	if (r->out_failed || !r->worker->out)
		return NULL;
	*len = r->out_len;
	return r->worker->out + HDR_RESERVE;
}

int api_out_send(struct api_req *r, int status)
{
	api_out_raw(r, "\n", 1);
	return out_send(r, status, "application/json", NULL);
}

/* ------------------------------------------------------------ JSON as text */

void api_out_key(struct api_req *r, const char *key)
{
	size_t n = strlen(key);
	char *p = out_room(r, n + 4), *at = p;

	if (!p)
		return;
	if (r->out_len && p[-1] != '{')
		*p++ = ',';
	*p++ = '"';
	memcpy(p, key, n);
	p += n;
	*p++ = '"';
	*p++ = ':';
	r->out_len += (size_t)(p - at);
}

void api_out_null(struct api_req *r)
{
	api_out_raw(r, "null", 4);
}

void api_out_bool(struct api_req *r, bool v)
{
	api_out_raw(r, v ? "true" : "false", v ? 4 : 5);
}

void api_out_int(struct api_req *r, long long v)
{
	char buf[24], *end = buf + sizeof(buf), *p = end;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	api_out_raw(r, p, (size_t)(end - p));
}

/* jansson 2.14's jsonp_dtostr (strconv.c, the snprintf build Debian
 * ships), in the C locale apid runs in. */
void api_out_real(struct api_req *r, double v)
{
	char buf[64], *e;
	int n;

	if (!isfinite(v)) {
		api_out_null(r);
		return;
	}
	n = snprintf(buf, sizeof(buf) - 3, "%.*g", API_REAL_PRECISION, v);
	if (n < 0 || n >= (int)sizeof(buf) - 3) {
		api_out_null(r);
		return;
	}
	e = strchr(buf, 'e');
	if (!e && !strchr(buf, '.')) {
		/* so that it reads back as a real, not an integer */
		memcpy(buf + n, ".0", 3);
		n += 2;
	} else if (e) {
		/* "1e+20" → "1e20", "1e-05" → "1e-5" */
		char *start = e + 1, *end = e + 2;

		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)(buf + n - end) + 1);
			n -= (int)(end - start);
		}
	}
	api_out_raw(r, buf, (size_t)n);
}

/* The length of the UTF-8 sequence at p (2 to 4 bytes, lead byte >= 0x80),
 * 0 when it is not one jansson accepts (utf8_check_first/_full): no
 * overlong form, no surrogate, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
	unsigned char u = p[0];
	uint32_t v;
	size_t n;

	if (u >= 0xC2 && u <= 0xDF) {
		n = 2;
		v = u & 0x1F;
	} else if (u >= 0xE0 && u <= 0xEF) {
		n = 3;
		v = u & 0x0F;
	} else if (u >= 0xF0 && u <= 0xF4) {
		n = 4;
		v = u & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
	    (n == 4 && v < 0x10000))
		return 0;
	return n;
}

/* jansson's dump_string with no flags: written in place (6 bytes at most
 * for each byte in), and taken back for a null at the first bad byte. */
void api_out_str(struct api_req *r, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char *o = out_room(r, n * 6 + 2), *at = o;

	if (!o)
		return;
	*o++ = '"';
	while (p < end) {
		unsigned char c = *p;
		size_t k;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*o++ = (char)c;
			p++;
			continue;
		}
		if (c >= 0x80) {
			if (!(k = utf8_seq(p, (size_t)(end - p)))) {
				api_out_null(r);
				return;
			}
			memcpy(o, p, k);
			o += k;
			p += k;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
		p++;
	}
	*o++ = '"';
	r->out_len += (size_t)(o - at);
}

void api_out_col(struct api_req *r, sqlite3_stmt *st, int i)
{
	const char *t;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		api_out_int(r, sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		api_out_real(r, sqlite3_column_double(st, i));
		break;
	case SQLITE_TEXT:
		t = (const char *)sqlite3_column_text(st, i);
		if (t)
			api_out_str(r, t, (size_t)sqlite3_column_bytes(st, i));
		else
			api_out_null(r);
		break;
	default:
		api_out_null(r);
	}
}

void api_out_col_bool(struct api_req *r, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		api_out_null(r);
	else
		api_out_bool(r, sqlite3_column_int64(st, i) != 0);
}

/* 1 when t is a flat array of integers and nulls exactly as jansson dumps
 * it compact (what apid stores for fans): no space, no leading zero, no
 * "-0", at most 18 digits (always in range). Such text is its own dump. */
static bool int_array_text(const char *t, size_t n)
{
	size_t i = 1;

	if (n < 2 || t[0] != '[' || t[n - 1] != ']')
		return false;
	if (n == 2)
		return true;
	for (;;) {
		if (n - i >= 5 && memcmp(t + i, "null", 4) == 0) {
			i += 4;
		} else {
			size_t d = i + (t[i] == '-'), k = d;

			while (k < n && t[k] >= '0' && t[k] <= '9')
				k++;
			if (k == d || k - d > 18 || (t[d] == '0' && (k - d > 1 || d > i)))
				return false;
			i = k;
		}
		if (i == n - 1)
			return true;
		if (t[i] != ',')
			return false;
		i++;
	}
}

void api_out_col_json(struct api_req *r, sqlite3_stmt *st, int i)
{
	const char *t;
	size_t n;

	if (sqlite3_column_type(st, i) != SQLITE_TEXT ||
	    !(t = (const char *)sqlite3_column_text(st, i))) {
		api_out_null(r);
		return;
	}
	n = (size_t)sqlite3_column_bytes(st, i);
	if (int_array_text(t, n)) {
		api_out_raw(r, t, n);
		return;
	}
	api_out_json(r, api_col_json(st, i));
}

void api_out_fields(struct api_req *r, sqlite3_stmt *st, int first,
		    const struct api_col_field fields[])
{
	for (int k = 0; fields[k].key; k++) {
		api_out_key(r, fields[k].key);
		switch (fields[k].kind) {
		case API_COL:
			api_out_col(r, st, first + k);
			break;
		case API_COL_BOOL:
			api_out_col_bool(r, st, first + k);
			break;
		case API_COL_JSON:
			api_out_col_json(r, st, first + k);
			break;
		}
	}
}

/* ------------------------------------------------------------ CSV */

int api_want_csv(struct api_req *r)
{
	const char *format = api_param(r, "format");
	const char *accept = r->conn ? mg_get_header(r->conn, "Accept") : NULL;

	if (format) {
		if (strcmp(format, "csv") == 0)
			return 1;
		if (strcmp(format, "json") == 0)
			return 0;
		api_error(r, 400, "format: must be json or csv, got '%.16s'", format);
		return -1;
	}
	return accept && strcasestr(accept, "text/csv") ? 1 : 0;
}

/* One field, after a comma unless it is the first. Text that a spreadsheet
 * would run as a formula (a hostname or an error message comes from the
 * miner) gets a leading apostrophe, as OWASP advises for CSV injection. */
static void csv_field(struct api_req *r, const char *text, size_t n, bool first, bool is_text)
{
	const char *end;
	bool quoted, formula;

	if (!first)
		api_out_raw(r, ",", 1);
	if (!text)
		return;
	end = text + n;
	quoted = strcspn(text, ",\"\r\n") < n;
	formula = is_text && n && text[0] && strchr("=+-@\t\r", text[0]);
	if (quoted)
		api_out_raw(r, "\"", 1);
	if (formula)
		api_out_raw(r, "'", 1);
	while (text < end) {
		const char *q = memchr(text, '"', (size_t)(end - text));
		size_t k = q ? (size_t)(q - text) + 1 : (size_t)(end - text);

		api_out_raw(r, text, k);
		if (q)
			api_out_raw(r, "\"", 1);   /* a quote is doubled */
		text += k;
	}
	if (quoted)
		api_out_raw(r, "\"", 1);
}

void api_out_csv_header(struct api_req *r, sqlite3_stmt *st)
{
	int n = sqlite3_column_count(st);

	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);

		csv_field(r, name, name ? strlen(name) : 0, i == 0, false);
	}
	api_out_raw(r, "\r\n", 2);
}

void api_out_csv_row(struct api_req *r, sqlite3_stmt *st)
{
	int n = sqlite3_column_count(st);

	for (int i = 0; i < n; i++) {
		int type = sqlite3_column_type(st, i);
		const char *t = type == SQLITE_NULL ? NULL
						    : (const char *)sqlite3_column_text(st, i);

		csv_field(r, t, t ? (size_t)sqlite3_column_bytes(st, i) : 0, i == 0,
			  type == SQLITE_TEXT);
	}
	api_out_raw(r, "\r\n", 2);
}

void api_out_csv_text(struct api_req *r, const char *text, bool first)
{
	csv_field(r, text, text ? strlen(text) : 0, first, true);
}

int api_out_send_csv(struct api_req *r, int status, const char *stem)
{
	char extra[192], stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	snprintf(extra, sizeof(extra),
		 "Content-Disposition: attachment; filename=\"%s-%s.csv\"\r\n", stem, stamp);
	return out_send(r, status, "text/csv; charset=utf-8", extra);
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
	json_t *body;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A message echoing what the client sent (a path with %ff) may not be
	 * UTF-8, which JSON cannot carry: such bytes become '?'. */
	if (!(body = json_pack("{s:s}", "error", msg))) {
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		body = json_pack("{s:s}", "error", msg);
	}
	return send_json(r, status, extra, body);
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

int api_error_with(struct api_req *r, int status, const char *extra, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verror(r, status, extra, fmt, ap);
	va_end(ap);
	return rc;
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
		} else if (!isxdigit((unsigned char)c)) {
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

static int db_open(struct api_worker *d)
{
	char err[512];
	sqlite3 *db;

	if (d->db)
		return 0;
	db = apid_store_open_readonly(d->db_path, err, sizeof(err));
	if (!db) {
		hive_log_complain("http db open", "http database open failed path=%s err=\"%s\"",
				  d->db_path, err);
		return -1;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_create_function(db, "ip_order", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				sql_ip_order, NULL, NULL);
	hive_log_recovered("http db open", "http database open path=%s", d->db_path);
	d->db = db;
	return 0;
}

static void db_close(struct api_worker *d)
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
	struct api_worker *d = r->worker;
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
	int code = sqlite3_errcode(db) & 0xff;   /* the store turns on extended codes */

	hive_log_complain("http db step", "http query failed err=\"%s\"", sqlite3_errmsg(db));
	sqlite3_reset(st);
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return api_error(r, 503, "database busy, try again");
	return api_error(r, 500, "database error");
}

int api_send_rows(struct api_req *r, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *st),
		  const char *key)
{
	json_t *list = json_array();
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(list, row(st));
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return api_db_fail(r, st);
	}
	sqlite3_reset(st);
	return api_json(r, 200, json_pack("{s:o}", key, list));
}

/* ------------------------------------------------------------ the worker */

struct api_worker *api_worker_new(const char *db_path)
{
	struct api_worker *d = calloc(1, sizeof(*d));

	if (d)
		d->db_path = db_path;
	return d;
}

void api_worker_free(struct api_worker *d)
{
	if (!d)
		return;
	db_close(d);
	out_trim(d);
	free(d->out);
	free(d);
}

void api_request_begin(struct api_req *r)
{
	r->worker->req_no++;
}

void api_request_end(struct api_req *r)
{
	struct api_worker *d = r->worker;

	for (int i = 0; i < STMT_SLOTS; i++)
		if (d->slots[i].st && d->slots[i].last == d->req_no) {
			sqlite3_reset(d->slots[i].st);
			sqlite3_clear_bindings(d->slots[i].st);
		}
}

void api_answer_500(struct mg_connection *conn)
{
	mg_write(conn, answer_500, sizeof(answer_500) - 1);
}

/* ------------------------------------------------------------ columns */

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

