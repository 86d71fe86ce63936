/* fw_parse — response parsers of the firmware client; see hive/fw.h.
 *
 * Pure functions, no I/O and no globals, so the fuzzer can call them on
 * anything. Every field read goes through one of the get_* helpers below,
 * which keep the JSON path of the object being read, so that an error says
 * which field of which endpoint was wrong:
 *   "summary: miner.chains[1].hashrate_rt: expected number, got string".
 * Numbers are accepted as integer or real (firmware versions differ); a
 * number sent as a string is a bad_field, a needed field absent or null a
 * missing_field. Optional fields may be absent, but when present they must
 * have the right type: a value of the wrong type is never silently read.
 */
#include "hive/fw.h"
#include "hive/mac.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- names */

static const char *const err_names[HIVE_FW_ERR_KINDS] = {
	[HIVE_FW_OK] = "ok",
	[HIVE_FW_ERR_TIMEOUT] = "timeout",
	[HIVE_FW_ERR_REFUSED] = "refused",
	[HIVE_FW_ERR_RESET] = "reset",
	[HIVE_FW_ERR_HTTP] = "http",
	[HIVE_FW_ERR_AUTH] = "auth",
	[HIVE_FW_ERR_LOCKED] = "locked",
	[HIVE_FW_ERR_NOT_FOUND] = "not_found",
	[HIVE_FW_ERR_BAD_JSON] = "bad_json",
	[HIVE_FW_ERR_MISSING_FIELD] = "missing_field",
	[HIVE_FW_ERR_BAD_FIELD] = "bad_field",
	[HIVE_FW_ERR_TOO_LARGE] = "too_large",
	[HIVE_FW_ERR_INTERNAL] = "internal",
};

const char *hive_fw_err_name(enum hive_fw_err_kind kind)
{
	if ((unsigned)kind >= HIVE_FW_ERR_KINDS)
		return "internal";
	return err_names[kind];
}

int hive_fw_err_parse(const char *name, enum hive_fw_err_kind *out)
{
	if (!name)
		return -1;
	for (int k = 0; k < HIVE_FW_ERR_KINDS; k++) {
		if (strcmp(name, err_names[k]) == 0) {
			*out = (enum hive_fw_err_kind)k;
			return 0;
		}
	}
	return -1;
}

static const struct {
	const char *name;
	const char *path;
} calls[HIVE_FW_CALLS] = {
	[HIVE_FW_INFO] = { "info", "info" },
	[HIVE_FW_MODEL] = { "model", "model" },
	[HIVE_FW_STATUS] = { "status", "status" },
	[HIVE_FW_SUMMARY] = { "summary", "summary" },
	[HIVE_FW_PERF_SUMMARY] = { "perf_summary", "perf-summary" },
	[HIVE_FW_CHAINS] = { "chains", "chains" },
	[HIVE_FW_PRESETS] = { "presets", "autotune/presets" },
	[HIVE_FW_UNLOCK] = { "unlock", "unlock" },
	[HIVE_FW_APIKEYS] = { "apikeys", "apikeys" },
	[HIVE_FW_APIKEY_CREATE] = { "apikey_create", "apikeys" },
	[HIVE_FW_APIKEY_DELETE] = { "apikey_delete", "apikeys/delete" },
	[HIVE_FW_SET_PRESET] = { "set_preset", "settings" },
	[HIVE_FW_MINING_RESTART] = { "restart", "mining/restart" },
	[HIVE_FW_MINING_STOP] = { "stop", "mining/stop" },
	[HIVE_FW_MINING_START] = { "start", "mining/start" },
	[HIVE_FW_MINING_PAUSE] = { "pause", "mining/pause" },
	[HIVE_FW_MINING_RESUME] = { "resume", "mining/resume" },
	[HIVE_FW_REBOOT] = { "reboot", "system/reboot" },
	[HIVE_FW_BOARDS] = { "boards", "boards" },
};

const char *hive_fw_call_name(enum hive_fw_call call)
{
	return (unsigned)call < HIVE_FW_CALLS ? calls[call].name : NULL;
}

const char *hive_fw_call_path(enum hive_fw_call call)
{
	return (unsigned)call < HIVE_FW_CALLS ? calls[call].path : NULL;
}

/* ---------------------------------------------------------------- helpers */

/* ---------------------------------------------------------------- JSON reader
 *
 * A read-only JSON reader for miner bodies. jansson builds a tree of
 * individually allocated, reference-counted values with a hash table per
 * object; for /chains (100-150 KB, ~4,000 values) that was 1.5 ms of a
 * request and the client's ceiling. This one keeps every node in an arena
 * freed at once, points strings without escapes into the body instead of
 * copying them, and finds object members by a linear scan (objects here
 * have a few dozen members at most). It accepts exactly what jansson's
 * json_loadb(body, len, 0) accepts — RFC 8259, an object or array at the
 * top, valid UTF-8, no \u0000, integers that fit in 64 bits, reals that do
 * not overflow, 2048 levels at most, the last of duplicate keys wins — and
 * the fuzzer checks that against jansson on every input. One difference:
 * jansson skips NUL bytes in the input, this reader refuses them.
 */

enum jv_type { JV_NULL, JV_FALSE, JV_TRUE, JV_INT, JV_REAL, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	uint8_t t;                  /* enum jv_type */
	uint32_t n;                 /* containers: members; strings: bytes */
	uint32_t klen;              /* a member of an object: its key */
	const char *key;
	union {
		long long i;
		double d;
		const char *s;      /* not NUL-terminated */
		struct jv **kids;
	} u;
};

#define JV_MAX_DEPTH 2048
#define JV_BLOCK     (64 * 1024)

struct jv_block {
	struct jv_block *next;
	size_t used, cap;
	max_align_t data[];
};

struct jv_doc {
	struct jv_block *blocks;
	struct jv **stack;          /* members of the containers being read */
	size_t nstack, capstack;
	const char *start, *p, *end;
	int depth;
	const char *why;            /* what went wrong, at p */
};

static void *jv_alloc(struct jv_doc *d, size_t size)
{
	struct jv_block *b = d->blocks;
	void *m;

	size = (size + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < size) {
		size_t cap = size > JV_BLOCK ? size : JV_BLOCK;

		if (!(b = malloc(sizeof(*b) + cap)))
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = d->blocks;
		d->blocks = b;
	}
	m = (char *)b->data + b->used;
	b->used += size;
	return m;
}

static void jv_doc_free(struct jv_doc *d)
{
	while (d->blocks) {
		struct jv_block *b = d->blocks;

		d->blocks = b->next;
		free(b);
	}
	free(d->stack);
	d->stack = NULL;
}

static int jv_fail(struct jv_doc *d, const char *why)
{
	if (!d->why)
		d->why = why;
	return -1;
}

static void jv_ws(struct jv_doc *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
		d->p++;
}

static int hex4(const char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int h;

		if (s[i] >= '0' && s[i] <= '9')
			h = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			h = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			h = s[i] - 'A' + 10;
		else
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] < 0xC2)
		return 0;
	if (s[0] < 0xE0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if (s[0] < 0xF0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if (s[0] < 0xF5) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xC0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xE0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*o++ = (char)(0xF0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3F));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	}
	return o;
}

/* A string at p (on its opening quote) into *s / *len: a pointer into the
 * body when it has no escapes, else a decoded copy in the arena. */
static int jv_string(struct jv_doc *d, const char **s, uint32_t *len)
{
	const char *q = ++d->p;
	bool esc = false;
	char *out, *o;

	while (q < d->end && *q != '"') {
		unsigned char c = (unsigned char)*q;
		size_t n;

		if (c < 0x20) {
			d->p = q;
			return jv_fail(d, "control character in a string");
		}
		if (c == '\\') {
			if (d->end - q < 2)
				return jv_fail(d, "unterminated string");
			esc = true;
			q += 2;
			continue;
		}
		if (!(n = utf8_len((const unsigned char *)q, (size_t)(d->end - q)))) {
			d->p = q;
			return jv_fail(d, "invalid UTF-8 in a string");
		}
		q += n;
	}
	if (q >= d->end)
		return jv_fail(d, "unterminated string");
	if ((size_t)(q - d->p) > UINT32_MAX)
		return jv_fail(d, "string too long");
	if (!esc) {
		*s = d->p;
		*len = (uint32_t)(q - d->p);
		d->p = q + 1;
		return 0;
	}
	if (!(out = jv_alloc(d, (size_t)(q - d->p) + 1)))
		return jv_fail(d, "out of memory");
	for (o = out; d->p < q;) {
		int cp;

		if (*d->p != '\\') {
			*o++ = *d->p++;
			continue;
		}
		switch (d->p[1]) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (q - d->p < 6 || (cp = hex4(d->p + 2)) < 0)
				return jv_fail(d, "invalid \\u escape");
			if (cp == 0)
				return jv_fail(d, "\\u0000 in a string");
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return jv_fail(d, "lone low surrogate");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				int lo;

				if (q - d->p < 12 || d->p[6] != '\\' || d->p[7] != 'u' ||
				    (lo = hex4(d->p + 8)) < 0xDC00 || lo > 0xDFFF)
					return jv_fail(d, "lone high surrogate");
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				d->p += 6;
			}
			o = put_utf8(o, (uint32_t)cp);
			d->p += 6;
			continue;
		default:
			return jv_fail(d, "invalid escape");
		}
		d->p += 2;
	}
	*o = '\0';
	*s = out;
	*len = (uint32_t)(o - out);
	d->p = q + 1;
	return 0;
}

/* Reals are read the same whatever locale the daemon runs in. */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale_obj;

static void c_locale_init(void)
{
	c_locale_obj = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static locale_t c_locale(void)
{
	pthread_once(&c_locale_once, c_locale_init);
	return c_locale_obj;
}

/* Exact powers of ten for the fast path of reals. */
static const double pow10_exact[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int jv_number(struct jv_doc *d, struct jv *v)
{
	const char *q = d->p;
	bool real = false, expo = false, neg = false;
	char buf[64], *tmp = NULL, *num;
	uint64_t m = 0;
	int digits = 0, frac = 0;
	size_t n;

	if (q < d->end && *q == '-') {
		neg = true;
		q++;
	}
	if (q < d->end && *q == '0') {
		q++;
		digits++;
	} else if (q < d->end && *q >= '1' && *q <= '9') {
		for (; q < d->end && *q >= '0' && *q <= '9'; q++, digits++)
			if (digits < 19)
				m = m * 10 + (uint64_t)(*q - '0');
	} else {
		return jv_fail(d, "invalid number");
	}
	if (q < d->end && *q == '.') {
		real = true;
		if (++q >= d->end || *q < '0' || *q > '9')
			return jv_fail(d, "invalid number");
		for (; q < d->end && *q >= '0' && *q <= '9'; q++, digits++, frac++)
			if (digits < 19)
				m = m * 10 + (uint64_t)(*q - '0');
	}
	if (q < d->end && (*q == 'e' || *q == 'E')) {
		real = expo = true;
		if (++q < d->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= d->end || *q < '0' || *q > '9')
			return jv_fail(d, "invalid number");
		while (q < d->end && *q >= '0' && *q <= '9')
			q++;
	}
	/* Fast paths, exact: an integer of at most 18 digits; a decimal of at
	 * most 15 digits (mantissa and power of ten both exact doubles, so the
	 * one division rounds like strtod). */
	if (!real && digits <= 18) {
		v->t = JV_INT;
		v->u.i = neg ? -(long long)m : (long long)m;
		d->p = q;
		return 0;
	}
	if (real && !expo && digits <= 15) {
		v->t = JV_REAL;
		v->u.d = (double)m / pow10_exact[frac];
		if (neg)
			v->u.d = -v->u.d;
		d->p = q;
		return 0;
	}
	n = (size_t)(q - d->p);
	num = buf;
	if (n >= sizeof(buf) && !(num = tmp = malloc(n + 1)))
		return jv_fail(d, "out of memory");
	memcpy(num, d->p, n);
	num[n] = '\0';
	errno = 0;
	if (real) {
		v->t = JV_REAL;
		v->u.d = strtod_l(num, NULL, c_locale());
		/* overflow is an error, underflow to a tiny or zero value is not */
		if (errno == ERANGE && (v->u.d > DBL_MAX || v->u.d < -DBL_MAX)) {
			free(tmp);
			return jv_fail(d, "real number overflow");
		}
	} else {
		v->t = JV_INT;
		v->u.i = strtoll(num, NULL, 10);
		if (errno == ERANGE) {
			free(tmp);
			return jv_fail(d, "integer out of range");
		}
	}
	free(tmp);
	d->p = q;
	return 0;
}

static bool jv_word(struct jv_doc *d, const char *w, size_t n)
{
	if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0)
		return false;
	d->p += n;
	return true;
}

static int jv_push(struct jv_doc *d, struct jv *v)
{
	if (d->nstack == d->capstack) {
		size_t cap = d->capstack ? d->capstack * 2 : 256;
		struct jv **s = realloc(d->stack, cap * sizeof(*s));

		if (!s)
			return jv_fail(d, "out of memory");
		d->stack = s;
		d->capstack = cap;
	}
	d->stack[d->nstack++] = v;
	return 0;
}

static struct jv *jv_value(struct jv_doc *d);

/* The members pushed since `base` become v's children. */
static int jv_close(struct jv_doc *d, struct jv *v, size_t base)
{
	size_t n = d->nstack - base;

	v->n = (uint32_t)n;
	v->u.kids = NULL;
	if (n) {
		if (!(v->u.kids = jv_alloc(d, n * sizeof(*v->u.kids))))
			return jv_fail(d, "out of memory");
		memcpy(v->u.kids, d->stack + base, n * sizeof(*v->u.kids));
	}
	d->nstack = base;
	return 0;
}

static int jv_container(struct jv_doc *d, struct jv *v)
{
	bool obj = *d->p == '{';
	char close = obj ? '}' : ']';
	size_t base = d->nstack;

	v->t = obj ? JV_OBJ : JV_ARR;
	d->p++;
	jv_ws(d);
	if (d->p < d->end && *d->p == close) {
		d->p++;
		return jv_close(d, v, base);
	}
	for (;;) {
		const char *key = NULL;
		uint32_t klen = 0;
		struct jv *m;

		if (obj) {
			if (d->p >= d->end || *d->p != '"')
				return jv_fail(d, "string or '}' expected");
			if (jv_string(d, &key, &klen) < 0)
				return -1;
			jv_ws(d);
			if (d->p >= d->end || *d->p != ':')
				return jv_fail(d, "':' expected");
			d->p++;
			jv_ws(d);
		}
		if (!(m = jv_value(d)) || jv_push(d, m) < 0)
			return -1;
		m->key = key;
		m->klen = klen;
		jv_ws(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			jv_ws(d);
			continue;
		}
		if (d->p < d->end && *d->p == close) {
			d->p++;
			return jv_close(d, v, base);
		}
		return jv_fail(d, obj ? "',' or '}' expected" : "',' or ']' expected");
	}
}

static struct jv *jv_value1(struct jv_doc *d);

/* A value at p (whitespace skipped). NULL on error, with d->why. Depth
 * counts every value, containers and scalars, as jansson counts it. */
static struct jv *jv_value(struct jv_doc *d)
{
	struct jv *v;

	if (++d->depth > JV_MAX_DEPTH) {
		jv_fail(d, "nested too deep");
		return NULL;
	}
	v = jv_value1(d);
	d->depth--;
	return v;
}

static struct jv *jv_value1(struct jv_doc *d)
{
	struct jv *v = jv_alloc(d, sizeof(*v));

	if (!v) {
		jv_fail(d, "out of memory");
		return NULL;
	}
	v->n = 0;
	v->key = NULL;
	v->klen = 0;
	if (d->p >= d->end) {
		jv_fail(d, "unexpected end of input");
		return NULL;
	}
	switch (*d->p) {
	case '{':
	case '[':
		return jv_container(d, v) < 0 ? NULL : v;
	case '"':
		v->t = JV_STR;
		return jv_string(d, &v->u.s, &v->n) < 0 ? NULL : v;
	case 't':
		v->t = JV_TRUE;
		return jv_word(d, "true", 4) ? v : (jv_fail(d, "invalid token"), NULL);
	case 'f':
		v->t = JV_FALSE;
		return jv_word(d, "false", 5) ? v : (jv_fail(d, "invalid token"), NULL);
	case 'n':
		v->t = JV_NULL;
		return jv_word(d, "null", 4) ? v : (jv_fail(d, "invalid token"), NULL);
	default:
		if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
			return jv_number(d, v) < 0 ? NULL : v;
		jv_fail(d, "invalid token");
		return NULL;
	}
}

/* Reads a whole body: an object or an array, then nothing but space. */
static struct jv *jv_parse(struct jv_doc *d, const char *body, size_t len)
{
	struct jv *root;

	memset(d, 0, sizeof(*d));
	d->start = d->p = body;
	d->end = body + len;
	jv_ws(d);
	if (d->p >= d->end || (*d->p != '{' && *d->p != '[')) {
		jv_fail(d, "'[' or '{' expected");
		return NULL;
	}
	if (!(root = jv_value(d)))
		return NULL;
	jv_ws(d);
	if (d->p != d->end) {
		jv_fail(d, "end of input expected");
		return NULL;
	}
	return root;
}

/* Where d->p is, as 1-based line and column. */
static void jv_where(const struct jv_doc *d, int *line, int *col)
{
	const char *p = d->p < d->end ? d->p : d->end;

	*line = 1;
	*col = 1;
	for (const char *q = d->start; q < p; q++) {
		if (*q == '\n') {
			++*line;
			*col = 1;
		} else {
			++*col;
		}
	}
}

/* The last member named key (jansson keeps the last of duplicates), or NULL. */
static struct jv *jv_get(const struct jv *obj, const char *key)
{
	size_t klen = strlen(key);

	if (!obj || obj->t != JV_OBJ)
		return NULL;
	for (uint32_t i = obj->n; i-- > 0;) {
		struct jv *m = obj->u.kids[i];

		if (m->klen == klen && memcmp(m->key, key, klen) == 0)
			return m;
	}
	return NULL;
}

static size_t jv_size(const struct jv *arr)
{
	return arr && arr->t == JV_ARR ? arr->n : 0;
}

static struct jv *jv_at(const struct jv *arr, size_t i)
{
	return arr && arr->t == JV_ARR && i < arr->n ? arr->u.kids[i] : NULL;
}

static bool jv_is(const struct jv *v, enum jv_type t)
{
	return v && v->t == t;
}

#define REQ   0x1   /* needed: absent or null is an error */
#define TRUNC 0x2   /* strings: cut to the buffer instead of failing */

/* Parse context: where we are in the document, and where errors go. */
struct pc {
	struct hive_fw_err *err;
	char path[160];
	size_t plen;
	struct jv_doc doc;          /* the body, while it is read */
};

static void pc_init(struct pc *p, struct hive_fw_err *err, const char *endpoint)
{
	memset(&p->doc, 0, sizeof(p->doc));
	p->err = err;
	p->path[0] = '\0';
	p->plen = 0;
	err->kind = HIVE_FW_OK;
	err->msg[0] = '\0';
	snprintf(err->endpoint, sizeof(err->endpoint), "%s", endpoint);
}

/* Appends s to dst (cap bytes), cutting what does not fit. */
static void append(char *dst, size_t cap, size_t *at, const char *s)
{
	size_t n = strlen(s);

	if (*at + 1 >= cap)
		return;
	if (n > cap - 1 - *at)
		n = cap - 1 - *at;
	memcpy(dst + *at, s, n);
	*at += n;
	dst[*at] = '\0';
}

/* Descends into key (or [idx] when key is NULL); returns the length to
 * restore with pc_pop. */
static size_t pc_push(struct pc *p, const char *key, size_t idx)
{
	size_t old = p->plen, at = old;
	char num[24], *d = num + sizeof(num);

	/* once per array element of /chains: no printf here */
	if (key) {
		if (old)
			append(p->path, sizeof(p->path), &at, ".");
		append(p->path, sizeof(p->path), &at, key);
	} else {
		*--d = '\0';
		*--d = ']';
		do
			*--d = (char)('0' + idx % 10);
		while ((idx /= 10) != 0);
		*--d = '[';
		append(p->path, sizeof(p->path), &at, d);
	}
	p->plen = at;
	return old;
}

static void pc_pop(struct pc *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

static int fail(struct pc *p, enum hive_fw_err_kind kind, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fills the error: "<endpoint>: <path>.<key>: <text>". Returns -1. */

static int fail(struct pc *p, enum hive_fw_err_kind kind, const char *key, const char *fmt, ...)
{
	struct hive_fw_err *e = p->err;
	char text[160];
	size_t at = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	e->kind = kind;
	e->msg[0] = '\0';
	append(e->msg, sizeof(e->msg), &at, e->endpoint);
	append(e->msg, sizeof(e->msg), &at, ": ");
	if (p->plen) {
		append(e->msg, sizeof(e->msg), &at, p->path);
		append(e->msg, sizeof(e->msg), &at, key ? "." : ": ");
	}
	if (key) {
		append(e->msg, sizeof(e->msg), &at, key);
		append(e->msg, sizeof(e->msg), &at, ": ");
	}
	append(e->msg, sizeof(e->msg), &at, text);
	return -1;
}

static const char *type_name(const struct jv *j)
{
	static const char *const names[] = {
		[JV_NULL] = "null", [JV_FALSE] = "false", [JV_TRUE] = "true",
		[JV_INT] = "integer", [JV_REAL] = "real", [JV_STR] = "string",
		[JV_ARR] = "array", [JV_OBJ] = "object",
	};

	return j ? names[j->t] : "nothing";
}

static int mistyped(struct pc *p, const char *key, const char *want, const struct jv *got)
{
	return fail(p, HIVE_FW_ERR_BAD_FIELD, key, "expected %s, got %s", want, type_name(got));
}

/* 0: *out is the member; 1: absent or null and optional; -1: error. */
static int field(struct pc *p, const struct jv *obj, const char *key, int flags, struct jv **out)
{
	struct jv *v = jv_get(obj, key);

	if (!v || v->t == JV_NULL) {
		if (flags & REQ)
			return fail(p, HIVE_FW_ERR_MISSING_FIELD, key, v ? "null" : "missing");
		return 1;
	}
	*out = v;
	return 0;
}

static int get_num(struct pc *p, const struct jv *obj, const char *key, int flags, double *out)
{
	struct jv *v = NULL;
	int rc = field(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v->t != JV_INT && v->t != JV_REAL)
		return mistyped(p, key, "number", v);
	*out = v->t == JV_INT ? (double)v->u.i : v->u.d;
	return 0;
}

static int get_ll(struct pc *p, const struct jv *obj, const char *key, int flags, long long *out)
{
	struct jv *v = NULL;
	int rc = field(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v->t == JV_INT) {
		*out = v->u.i;
		return 0;
	}
	if (v->t == JV_REAL) {
		double d = v->u.d;

		if (!(d > -9.0e18 && d < 9.0e18))
			return fail(p, HIVE_FW_ERR_BAD_FIELD, key, "out of range");
		*out = (long long)d;
		return 0;
	}
	return mistyped(p, key, "integer", v);
}

static int get_int(struct pc *p, const struct jv *obj, const char *key, int flags, int *out)
{
	long long v = 0;
	int rc = get_ll(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v < INT_MIN || v > INT_MAX)
		return fail(p, HIVE_FW_ERR_BAD_FIELD, key, "out of range");
	*out = (int)v;
	return 0;
}

/* Like get_int, and the value must lie in [lo, hi]. */
static int get_int_in(struct pc *p, const struct jv *obj, const char *key, int flags, int lo, int hi,
		      int *out)
{
	int v = 0;
	int rc = get_int(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v < lo || v > hi)
		return fail(p, HIVE_FW_ERR_BAD_FIELD, key, "%d not in [%d, %d]", v, lo, hi);
	*out = v;
	return 0;
}

static int get_bool(struct pc *p, const struct jv *obj, const char *key, int flags, bool *out)
{
	struct jv *v = NULL;
	int rc = field(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v->t != JV_TRUE && v->t != JV_FALSE)
		return mistyped(p, key, "boolean", v);
	*out = v->t == JV_TRUE;
	return 0;
}

static int get_str(struct pc *p, const struct jv *obj, const char *key, int flags, char *buf,
		   size_t len)
{
	struct jv *v = NULL;
	size_t n;
	int rc = field(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v->t != JV_STR)
		return mistyped(p, key, "string", v);
	n = v->n;
	if (n >= len) {
		if (!(flags & TRUNC))
			return fail(p, HIVE_FW_ERR_BAD_FIELD, key, "longer than %zu characters",
				    len - 1);
		n = len - 1;
		/* do not leave half a UTF-8 sequence behind */
		while (n > 0 && ((unsigned char)v->u.s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(buf, v->u.s, n);
	buf[n] = '\0';
	return 0;
}

static int get_obj(struct pc *p, const struct jv *obj, const char *key, int flags, struct jv **out)
{
	struct jv *v = NULL;
	int rc = field(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v->t != JV_OBJ)
		return mistyped(p, key, "object", v);
	*out = v;
	return 0;
}

static int get_arr(struct pc *p, const struct jv *obj, const char *key, int flags, struct jv **out)
{
	struct jv *v = NULL;
	int rc = field(p, obj, key, flags, &v);

	if (rc != 0)
		return rc;
	if (v->t != JV_ARR)
		return mistyped(p, key, "array", v);
	*out = v;
	return 0;
}

static bool blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)body[i]))
			return false;
	return true;
}

/* Reads the body into p->doc; the top level must be of type `want`. On
 * failure the document is already freed. */
static struct jv *load(struct pc *p, const char *body, size_t len, enum jv_type want)
{
	struct jv *root;
	int line, col;

	if (!body || blank(body, len)) {
		fail(p, HIVE_FW_ERR_BAD_JSON, NULL, "empty body");
		return NULL;
	}
	if (!(root = jv_parse(&p->doc, body, len))) {
		jv_where(&p->doc, &line, &col);
		fail(p, HIVE_FW_ERR_BAD_JSON, NULL, "invalid JSON at line %d column %d: %s",
		     line, col, p->doc.why ? p->doc.why : "?");
		jv_doc_free(&p->doc);
		return NULL;
	}
	if (root->t != want) {
		fail(p, HIVE_FW_ERR_BAD_FIELD, NULL, "expected %s, got %s",
		     want == JV_OBJ ? "object" : "array", type_name(root));
		jv_doc_free(&p->doc);
		return NULL;
	}
	return root;
}

/* Element idx of an array must be an object. */
static struct jv *elem_obj(struct pc *p, const struct jv *arr, size_t idx)
{
	struct jv *e = jv_at(arr, idx);

	if (!jv_is(e, JV_OBJ)) {
		mistyped(p, NULL, "object", e);
		return NULL;
	}
	return e;
}

/* {min,max} temperature pair. */
static int get_minmax(struct pc *p, const struct jv *obj, const char *key, int flags, int *min,
		      int *max)
{
	struct jv *o;
	size_t at;
	int rc = get_obj(p, obj, key, flags, &o);

	if (rc != 0)
		return rc;
	at = pc_push(p, key, 0);
	if (get_int(p, o, "min", flags & REQ, min) < 0 || get_int(p, o, "max", flags & REQ, max) < 0)
		return -1;
	pc_pop(p, at);
	return 0;
}

/* ---------------------------------------------------------------- MAC, presets */

/* A plain decimal "123" or "12.5" at s; *end past it. -1 when none. */
static double decimal(const char *s, const char **end)
{
	double v = 0, scale = 1;
	const char *q = s;
	int digits = 0;

	while (isdigit((unsigned char)*q) && digits < 12) {
		v = v * 10 + (*q++ - '0');
		digits++;
	}
	if (digits == 0 || isdigit((unsigned char)*q))
		return -1;
	if (*q == '.' && isdigit((unsigned char)q[1])) {
		q++;
		for (int n = 0; isdigit((unsigned char)*q); q++, n++)
			if (n < 9) {
				scale /= 10;
				v += (*q - '0') * scale;
			}
	}
	*end = q;
	return v;
}

/* Does s begin with word (case-insensitive) followed by a non-letter? */
static bool unit_is(const char *s, const char *word)
{
	size_t n = strlen(word);

	if (strncasecmp(s, word, n) != 0)
		return false;
	return !isalpha((unsigned char)s[n]);
}

#define WATTS_MAX 100000
#define TH_MAX    100000.0

int hive_fw_preset_parse(const char *name, const char *pretty, int *watts, double *th)
{
	int w = -1;
	double t = -1;

	if (name && *name) {
		const char *end;
		double v = decimal(name, &end);

		if (v >= 1 && v <= WATTS_MAX && *end == '\0' && v == (int)v)
			w = (int)v;
	}
	for (const char *s = pretty; s && *s; s++) {
		const char *end, *u;
		double v;

		if (!isdigit((unsigned char)*s) ||
		    (s > pretty && (isalnum((unsigned char)s[-1]) || s[-1] == '.')))
			continue;
		v = decimal(s, &end);
		if (v < 0)
			continue;
		for (u = end; *u == ' ' || *u == '\t'; u++)
			;
		if ((unit_is(u, "watt") || unit_is(u, "watts") || unit_is(u, "w")) && w < 0 &&
		    v >= 1 && v <= WATTS_MAX && v == (int)v)
			w = (int)v;
		else if ((unit_is(u, "th") || strncasecmp(u, "th/s", 4) == 0) && t < 0 && v > 0 &&
			 v <= TH_MAX)
			t = v;
		s = end - 1;
	}
	*watts = w;
	*th = t;
	return w > 0 && t > 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- /info */

int hive_fw_parse_info(const char *body, size_t len, struct hive_fw_info *out, struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root, *sys, *net;
	char mac[32];
	unsigned char addr[16];
	size_t at;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "info");
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_str(&p, root, "miner", REQ | TRUNC, out->miner, sizeof(out->miner)) < 0 ||
	    get_str(&p, root, "model", REQ, out->model, sizeof(out->model)) < 0 ||
	    get_str(&p, root, "fw_name", REQ | TRUNC, out->fw_name, sizeof(out->fw_name)) < 0 ||
	    get_str(&p, root, "fw_version", REQ | TRUNC, out->fw_version, sizeof(out->fw_version)) < 0 ||
	    get_str(&p, root, "serial", TRUNC, out->serial, sizeof(out->serial)) < 0 ||
	    get_str(&p, root, "platform", TRUNC, out->platform, sizeof(out->platform)) < 0 ||
	    get_obj(&p, root, "system", REQ, &sys) < 0)
		goto done;
	at = pc_push(&p, "system", 0);
	if (get_str(&p, sys, "uptime", TRUNC, out->uptime, sizeof(out->uptime)) < 0 ||
	    get_obj(&p, sys, "network_status", REQ, &net) < 0)
		goto done;
	pc_push(&p, "network_status", 0);
	if (get_str(&p, net, "mac", REQ, mac, sizeof(mac)) < 0 ||
	    get_str(&p, net, "ip", REQ, out->ip, sizeof(out->ip)) < 0 ||
	    get_str(&p, net, "hostname", TRUNC, out->hostname, sizeof(out->hostname)) < 0)
		goto done;
	if (hive_mac_normalise(mac, out->mac) < 0) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, "mac", "not a MAC address");
		goto done;
	}
	if (inet_pton(AF_INET, out->ip, addr) != 1 && inet_pton(AF_INET6, out->ip, addr) != 1) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, "ip", "not an IP address");
		goto done;
	}
	pc_pop(&p, at);
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- /model */

static int parse_topology(struct pc *p, const struct jv *topo, struct hive_fw_model *out)
{
	struct jv *rows;
	int nr, nc;

	if (get_int_in(p, topo, "num_rows", REQ, 0, HIVE_FW_MAX_TOPO, &nr) < 0 ||
	    get_int_in(p, topo, "num_cols", REQ, 0, HIVE_FW_MAX_TOPO, &nc) < 0 ||
	    get_arr(p, topo, "chips", REQ, &rows) < 0)
		return -1;
	if (nr * nc > HIVE_FW_MAX_TOPO)
		return fail(p, HIVE_FW_ERR_BAD_FIELD, "num_rows", "%d x %d chips, at most %d",
			    nr, nc, HIVE_FW_MAX_TOPO);
	if (jv_size(rows) != (size_t)nr)
		return fail(p, HIVE_FW_ERR_BAD_FIELD, "chips", "%zu rows, num_rows says %d",
			    jv_size(rows), nr);
	size_t at = pc_push(p, "chips", 0);
	for (int r = 0; r < nr; r++) {
		struct jv *row = jv_at(rows, (size_t)r);
		size_t at2 = pc_push(p, NULL, (size_t)r);

		if (!jv_is(row, JV_ARR))
			return mistyped(p, NULL, "array", row);
		if (jv_size(row) != (size_t)nc)
			return fail(p, HIVE_FW_ERR_BAD_FIELD, NULL, "%zu columns, num_cols says %d",
				    jv_size(row), nc);
		for (int col = 0; col < nc; col++) {
			struct jv *cell = jv_at(row, (size_t)col);
			long long id;

			if (!jv_is(cell, JV_INT)) {
				pc_push(p, NULL, (size_t)col);
				return mistyped(p, NULL, "integer", cell);
			}
			id = cell->u.i;
			if (id < -1 || id > INT16_MAX) {
				pc_push(p, NULL, (size_t)col);
				return fail(p, HIVE_FW_ERR_BAD_FIELD, NULL, "chip id %lld", id);
			}
			out->topo_chips[r * nc + col] = (int16_t)id;
		}
		pc_pop(p, at2);
	}
	pc_pop(p, at);
	out->topo_rows = nr;
	out->topo_cols = nc;
	return 0;
}

int hive_fw_parse_model(const char *body, size_t len, struct hive_fw_model *out, struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root, *chain, *topo = NULL, *cool = NULL, *oc = NULL, *fmc = NULL;
	size_t at;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "model");
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_str(&p, root, "full_name", REQ | TRUNC, out->full_name, sizeof(out->full_name)) < 0 ||
	    get_str(&p, root, "model", REQ, out->model, sizeof(out->model)) < 0 ||
	    get_str(&p, root, "series", TRUNC, out->series, sizeof(out->series)) < 0 ||
	    get_obj(&p, root, "chain", REQ, &chain) < 0)
		goto done;
	at = pc_push(&p, "chain", 0);
	if (get_int_in(&p, chain, "num_chains", REQ, 1, 64, &out->num_chains) < 0 ||
	    get_int_in(&p, chain, "chips_per_chain", REQ, 1, 4096, &out->chips_per_chain) < 0 ||
	    get_int_in(&p, chain, "chips_per_domain", 0, 0, 4096, &out->chips_per_domain) < 0 ||
	    get_obj(&p, chain, "topology", 0, &topo) < 0)
		goto done;
	if (topo) {
		size_t at2 = pc_push(&p, "topology", 0);

		if (parse_topology(&p, topo, out) < 0)
			goto done;
		pc_pop(&p, at2);
	}
	pc_pop(&p, at);
	if (get_obj(&p, root, "cooling", 0, &cool) < 0 || get_obj(&p, root, "overclock", 0, &oc) < 0)
		goto done;
	if (cool) {
		at = pc_push(&p, "cooling", 0);
		if (get_int(&p, cool, "min_fan_pwm", 0, &out->cooling.min_fan_pwm) < 0 ||
		    get_int(&p, cool, "min_target_temp", 0, &out->cooling.min_target_temp) < 0 ||
		    get_int(&p, cool, "max_target_temp", 0, &out->cooling.max_target_temp) < 0 ||
		    get_obj(&p, cool, "fan_min_count", 0, &fmc) < 0)
			goto done;
		if (fmc) {
			pc_push(&p, "fan_min_count", 0);
			if (get_int(&p, fmc, "min", 0, &out->cooling.fan_min_count_min) < 0 ||
			    get_int(&p, fmc, "max", 0, &out->cooling.fan_min_count_max) < 0 ||
			    get_int(&p, fmc, "default", 0, &out->cooling.fan_min_count_default) < 0)
				goto done;
		}
		pc_pop(&p, at);
	}
	if (oc) {
		at = pc_push(&p, "overclock", 0);
		if (get_int(&p, oc, "min_voltage", 0, &out->overclock.min_voltage) < 0 ||
		    get_int(&p, oc, "max_voltage", 0, &out->overclock.max_voltage) < 0 ||
		    get_int(&p, oc, "default_voltage", 0, &out->overclock.default_voltage) < 0 ||
		    get_int(&p, oc, "max_voltage_stock_psu", 0, &out->overclock.max_voltage_stock_psu) < 0 ||
		    get_int(&p, oc, "min_freq", 0, &out->overclock.min_freq) < 0 ||
		    get_int(&p, oc, "max_freq", 0, &out->overclock.max_freq) < 0 ||
		    get_int(&p, oc, "default_freq", 0, &out->overclock.default_freq) < 0 ||
		    get_int(&p, oc, "warn_freq", 0, &out->overclock.warn_freq) < 0)
			goto done;
		pc_pop(&p, at);
	}
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- /status */

int hive_fw_parse_status(const char *body, size_t len, struct hive_fw_status *out, struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "status");
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_str(&p, root, "miner_state", REQ, out->miner_state, sizeof(out->miner_state)) < 0 ||
	    get_ll(&p, root, "miner_state_time", REQ, &out->miner_state_time) < 0 ||
	    get_bool(&p, root, "find_miner", 0, &out->find_miner) < 0 ||
	    get_bool(&p, root, "restart_required", 0, &out->restart_required) < 0 ||
	    get_bool(&p, root, "reboot_required", 0, &out->reboot_required) < 0 ||
	    get_bool(&p, root, "unlocked", 0, &out->unlocked) < 0 ||
	    get_str(&p, root, "description", TRUNC, out->description, sizeof(out->description)) < 0 ||
	    get_int(&p, root, "failure_code", 0, &out->failure_code) < 0)
		goto done;
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- /summary */

static int parse_fans(struct pc *p, const struct jv *cool, struct hive_fw_summary *out)
{
	struct jv *fans = NULL;
	size_t at;

	if (get_int(p, cool, "fan_duty", 0, &out->fan_duty) < 0 ||
	    get_arr(p, cool, "fans", 0, &fans) < 0)
		return -1;
	if (!fans)
		return 0;
	at = pc_push(p, "fans", 0);
	for (size_t i = 0; i < jv_size(fans); i++) {
		struct hive_fw_fan f = { .id = (int)i + 1, .max_rpm = 0, .ok = true };
		char status[HIVE_FW_NAME_LEN] = "ok";
		size_t at2 = pc_push(p, NULL, i);
		struct jv *e = elem_obj(p, fans, i);

		if (!e || get_int(p, e, "id", 0, &f.id) < 0 ||
		    get_int(p, e, "rpm", REQ, &f.rpm) < 0 ||
		    get_int(p, e, "max_rpm", 0, &f.max_rpm) < 0 ||
		    get_str(p, e, "status", TRUNC, status, sizeof(status)) < 0)
			return -1;
		f.ok = strcmp(status, "ok") == 0;
		if (out->nfans < HIVE_FW_MAX_FANS)
			out->fans[out->nfans++] = f;
		pc_pop(p, at2);
	}
	pc_pop(p, at);
	return 0;
}

static int parse_pools(struct pc *p, const struct jv *pools, struct hive_fw_summary *out)
{
	size_t at = pc_push(p, "pools", 0);
	bool have_active = false;

	for (size_t i = 0; i < jv_size(pools); i++) {
		char type[HIVE_FW_NAME_LEN] = "", status[HIVE_FW_NAME_LEN] = "";
		char url[sizeof(out->pools.url)] = "", user[sizeof(out->pools.user)] = "";
		long long acc = 0, rej = 0, stale = 0;
		size_t at2 = pc_push(p, NULL, i);
		struct jv *e = elem_obj(p, pools, i);

		if (!e || get_str(p, e, "pool_type", TRUNC, type, sizeof(type)) < 0 ||
		    get_str(p, e, "status", TRUNC, status, sizeof(status)) < 0 ||
		    get_str(p, e, "url", TRUNC, url, sizeof(url)) < 0 ||
		    get_str(p, e, "user", TRUNC, user, sizeof(user)) < 0 ||
		    get_ll(p, e, "accepted", 0, &acc) < 0 ||
		    get_ll(p, e, "rejected", 0, &rej) < 0 ||
		    get_ll(p, e, "stale", 0, &stale) < 0)
			return -1;
		pc_pop(p, at2);
		if (strcmp(type, "DevFee") == 0)
			continue;
		out->pools.total++;
		out->pools.accepted += acc;
		out->pools.rejected += rej;
		out->pools.stale += stale;
		if (strcmp(status, "working") == 0 || strcmp(status, "active") == 0)
			out->pools.working++;
		/* the pool in use: "active" wins, else the first working one */
		if (!have_active && (strcmp(status, "active") == 0 ||
				     (strcmp(status, "working") == 0 && !out->pools.url[0]))) {
			have_active = strcmp(status, "active") == 0;
			memcpy(out->pools.url, url, sizeof(url));
			memcpy(out->pools.user, user, sizeof(user));
		}
	}
	pc_pop(p, at);
	return 0;
}

static int parse_summary_chain(struct pc *p, const struct jv *e, struct hive_fw_chain_summary *c)
{
	struct jv *cs = NULL, *st = NULL;
	size_t at;

	if (get_int(p, e, "id", REQ, &c->id) < 0 ||
	    get_num(p, e, "frequency", 0, &c->frequency) < 0 ||
	    get_int(p, e, "voltage", 0, &c->voltage) < 0 ||
	    get_int(p, e, "power_consumption", 0, &c->power) < 0 ||
	    get_num(p, e, "hashrate_ideal", 0, &c->hashrate_ideal) < 0 ||
	    get_num(p, e, "hashrate_rt", REQ, &c->hashrate_rt) < 0 ||
	    get_ll(p, e, "hw_errors", 0, &c->hw_errors) < 0 ||
	    get_minmax(p, e, "pcb_temp", 0, &c->pcb_temp_min, &c->pcb_temp_max) < 0 ||
	    get_minmax(p, e, "chip_temp", 0, &c->chip_temp_min, &c->chip_temp_max) < 0 ||
	    get_obj(p, e, "chip_statuses", 0, &cs) < 0 ||
	    get_obj(p, e, "status", 0, &st) < 0)
		return -1;
	if (cs) {
		at = pc_push(p, "chip_statuses", 0);
		if (get_int(p, cs, "red", 0, &c->red) < 0 ||
		    get_int(p, cs, "orange", 0, &c->orange) < 0 ||
		    get_int(p, cs, "grey", 0, &c->grey) < 0)
			return -1;
		pc_pop(p, at);
	}
	if (st) {
		at = pc_push(p, "status", 0);
		if (get_str(p, st, "state", TRUNC, c->state, sizeof(c->state)) < 0)
			return -1;
		pc_pop(p, at);
	}
	return 0;
}

int hive_fw_parse_summary(const char *body, size_t len, struct hive_fw_summary *out,
			  struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root, *m, *ms, *chains, *cool = NULL, *pools = NULL;
	size_t at, at2, n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->fan_duty = -1;
	pc_init(&p, err, "summary");
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_obj(&p, root, "miner", REQ, &m) < 0)
		goto done;
	at = pc_push(&p, "miner", 0);
	if (get_obj(&p, m, "miner_status", REQ, &ms) < 0)
		goto done;
	at2 = pc_push(&p, "miner_status", 0);
	if (get_str(&p, ms, "miner_state", REQ, out->state, sizeof(out->state)) < 0 ||
	    get_ll(&p, ms, "miner_state_time", 0, &out->state_time) < 0 ||
	    get_str(&p, ms, "description", TRUNC, out->state_description,
		    sizeof(out->state_description)) < 0)
		goto done;
	pc_pop(&p, at2);
	if (get_num(&p, m, "hr_realtime", REQ, &out->hr_realtime) < 0 ||
	    get_num(&p, m, "hr_average", REQ, &out->hr_average) < 0 ||
	    get_num(&p, m, "hr_nominal", REQ, &out->hr_nominal) < 0 ||
	    get_minmax(&p, m, "pcb_temp", REQ, &out->pcb_temp_min, &out->pcb_temp_max) < 0 ||
	    get_minmax(&p, m, "chip_temp", REQ, &out->chip_temp_min, &out->chip_temp_max) < 0 ||
	    get_int(&p, m, "power_consumption", REQ, &out->power_consumption) < 0 ||
	    get_num(&p, m, "power_efficiency", 0, &out->efficiency) < 0 ||
	    get_ll(&p, m, "hw_errors", 0, &out->hw_errors) < 0 ||
	    get_obj(&p, m, "cooling", 0, &cool) < 0 ||
	    get_arr(&p, m, "pools", 0, &pools) < 0 ||
	    get_arr(&p, m, "chains", REQ, &chains) < 0)
		goto done;
	if (out->power_consumption < 0) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, "power_consumption", "negative");
		goto done;
	}
	if (cool) {
		at2 = pc_push(&p, "cooling", 0);
		if (parse_fans(&p, cool, out) < 0)
			goto done;
		pc_pop(&p, at2);
	}
	if (pools && parse_pools(&p, pools, out) < 0)
		goto done;
	n = jv_size(chains);
	if (n > HIVE_FW_MAX_CHAINS) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, "chains", "%zu entries, at most %d", n,
		     HIVE_FW_MAX_CHAINS);
		goto done;
	}
	at2 = pc_push(&p, "chains", 0);
	for (size_t i = 0; i < n; i++) {
		size_t at3 = pc_push(&p, NULL, i);
		struct jv *e = elem_obj(&p, chains, i);

		if (!e || parse_summary_chain(&p, e, &out->chains[i]) < 0)
			goto done;
		out->nchains++;
		pc_pop(&p, at3);
	}
	pc_pop(&p, at2);
	pc_pop(&p, at);
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- /perf-summary */

int hive_fw_parse_perf(const char *body, size_t len, struct hive_fw_perf *out, struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root, *cp = NULL, *sw = NULL;
	size_t at;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->preset_watts = -1;
	out->preset_th = -1;
	pc_init(&p, err, "perf-summary");
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_obj(&p, root, "current_preset", 0, &cp) < 0 ||
	    get_obj(&p, root, "preset_switcher", 0, &sw) < 0)
		goto done;
	if (cp) {
		char status[HIVE_FW_NAME_LEN] = "";

		at = pc_push(&p, "current_preset", 0);
		if (get_str(&p, cp, "name", REQ, out->preset, sizeof(out->preset)) < 0 ||
		    get_str(&p, cp, "pretty", TRUNC, out->preset_pretty, sizeof(out->preset_pretty)) < 0 ||
		    get_str(&p, cp, "status", TRUNC, status, sizeof(status)) < 0 ||
		    get_bool(&p, cp, "modded_psu_required", 0, &out->modded_psu_required) < 0)
			goto done;
		pc_pop(&p, at);
		out->has_preset = true;
		out->preset_tuned = strcmp(status, "tuned") == 0;
		hive_fw_preset_parse(out->preset, out->preset_pretty, &out->preset_watts,
				     &out->preset_th);
	}
	if (sw) {
		at = pc_push(&p, "preset_switcher", 0);
		if (get_bool(&p, sw, "enabled", REQ, &out->switcher_enabled) < 0 ||
		    get_str(&p, sw, "top_preset", 0, out->top_preset, sizeof(out->top_preset)) < 0 ||
		    get_str(&p, sw, "min_preset", 0, out->min_preset, sizeof(out->min_preset)) < 0 ||
		    get_int(&p, sw, "power_delta", 0, &out->power_delta) < 0)
			goto done;
		pc_pop(&p, at);
		out->has_switcher = true;
	}
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- /chains, /boards */

static char grade_letter(const char *g)
{
	if (strcmp(g, "red") == 0)
		return 'r';
	if (strcmp(g, "orange") == 0)
		return 'o';
	if (strcmp(g, "grey") == 0 || strcmp(g, "gray") == 0)
		return 'g';
	return '?';
}

static int parse_chip(struct pc *p, const struct jv *e, struct hive_fw_chip *c)
{
	char grade[HIVE_FW_NAME_LEN] = "";
	double hr, temp;

	if (get_int(p, e, "id", REQ, &c->id) < 0 ||
	    get_num(p, e, "hr", REQ, &hr) < 0 ||
	    get_int(p, e, "freq", REQ, &c->freq) < 0 ||
	    get_int(p, e, "volt", REQ, &c->volt) < 0 ||
	    get_num(p, e, "temp", REQ, &temp) < 0 ||
	    get_int(p, e, "errs", REQ, &c->errs) < 0 ||
	    get_str(p, e, "grade", TRUNC, grade, sizeof(grade)) < 0 ||
	    get_bool(p, e, "throttled", 0, &c->throttled) < 0)
		return -1;
	c->hr = (float)hr;
	c->temp = (float)temp;
	c->grade = grade_letter(grade);
	return 0;
}

static int parse_chain(struct pc *p, const struct jv *e, struct hive_fw_chain *c)
{
	struct jv *st = NULL, *chips;
	size_t at, n;

	if (get_int(p, e, "id", REQ, &c->id) < 0 ||
	    get_obj(p, e, "status", 0, &st) < 0 ||
	    get_num(p, e, "hr_realtime", REQ, &c->hr_realtime) < 0 ||
	    get_num(p, e, "hr_nominal", 0, &c->hr_nominal) < 0 ||
	    get_num(p, e, "freq", 0, &c->freq) < 0 ||
	    get_arr(p, e, "chips", REQ, &chips) < 0)
		return -1;
	if (st) {
		at = pc_push(p, "status", 0);
		if (get_str(p, st, "state", TRUNC, c->state, sizeof(c->state)) < 0)
			return -1;
		pc_pop(p, at);
	}
	n = jv_size(chips);
	if (n > HIVE_FW_MAX_CHIPS)
		return fail(p, HIVE_FW_ERR_BAD_FIELD, "chips", "%zu entries, at most %d", n,
			    HIVE_FW_MAX_CHIPS);
	at = pc_push(p, "chips", 0);
	for (size_t i = 0; i < n; i++) {
		size_t at2 = pc_push(p, NULL, i);
		struct jv *ce = elem_obj(p, chips, i);

		memset(&c->chips[i], 0, sizeof(c->chips[i]));
		if (!ce || parse_chip(p, ce, &c->chips[i]) < 0)
			return -1;
		c->nchips++;
		pc_pop(p, at2);
	}
	pc_pop(p, at);
	return 0;
}

int hive_fw_parse_chains(const char *body, size_t len, bool boards, struct hive_fw_chains *out,
			 struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root, *arr;
	size_t n, at;
	int rc = -1;

	memset(out, 0, offsetof(struct hive_fw_chains, chains));
	out->boards = boards;
	pc_init(&p, err, boards ? "boards" : "chains");
	if (!boards) {
		if (!(root = load(&p, body, len, JV_ARR)))
			return -1;
		arr = root;
	} else {
		/* /boards is documented loosely: accept the bare array or
		 * {"boards":[...]} */
		size_t i = 0;

		while (body && i < len && isspace((unsigned char)body[i]))
			i++;
		if (!body || i == len || body[i] != '{') {
			if (!(root = load(&p, body, len, JV_ARR)))
				return -1;
			arr = root;
		} else {
			if (!(root = load(&p, body, len, JV_OBJ)))
				return -1;
			if (get_arr(&p, root, "boards", REQ, &arr) < 0)
				goto done;
			pc_push(&p, "boards", 0);
		}
	}
	n = jv_size(arr);
	if (n > HIVE_FW_MAX_CHAINS) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, NULL, "%zu chains, at most %d", n, HIVE_FW_MAX_CHAINS);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct hive_fw_chain *c = &out->chains[i];
		struct jv *e;

		at = pc_push(&p, NULL, i);
		memset(c, 0, offsetof(struct hive_fw_chain, chips));
		if (!(e = elem_obj(&p, arr, i)) || parse_chain(&p, e, c) < 0)
			goto done;
		out->nchains++;
		pc_pop(&p, at);
	}
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- /autotune/presets */

int hive_fw_parse_presets(const char *body, size_t len, struct hive_fw_presets *out,
			  struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root;
	size_t n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "autotune/presets");
	if (!(root = load(&p, body, len, JV_ARR)))
		return -1;
	n = jv_size(root);
	if (n > HIVE_FW_MAX_PRESETS) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, NULL, "%zu presets, at most %d", n, HIVE_FW_MAX_PRESETS);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct hive_fw_preset *ps = &out->p[i];
		char status[HIVE_FW_NAME_LEN] = "";
		size_t at = pc_push(&p, NULL, i);
		struct jv *e = elem_obj(&p, root, i);

		if (!e || get_str(&p, e, "name", REQ, ps->name, sizeof(ps->name)) < 0 ||
		    get_str(&p, e, "pretty", TRUNC, ps->pretty, sizeof(ps->pretty)) < 0 ||
		    get_str(&p, e, "status", TRUNC, status, sizeof(status)) < 0 ||
		    get_bool(&p, e, "modded_psu_required", 0, &ps->modded_psu_required) < 0)
			goto done;
		if (!ps->name[0]) {
			fail(&p, HIVE_FW_ERR_BAD_FIELD, "name", "empty");
			goto done;
		}
		ps->tuned = strcmp(status, "tuned") == 0;
		hive_fw_preset_parse(ps->name, ps->pretty, &ps->watts, &ps->th);
		out->n++;
		pc_pop(&p, at);
	}
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- credentials */

int hive_fw_parse_apikeys(const char *body, size_t len, struct hive_fw_apikeys *out,
			  struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "apikeys");
	if (!(root = load(&p, body, len, JV_ARR)))
		return -1;
	for (size_t i = 0; i < jv_size(root); i++) {
		struct hive_fw_apikey k = { "", "" };
		char key[256];
		size_t at = pc_push(&p, NULL, i);
		struct jv *e = elem_obj(&p, root, i);

		if (!e || get_str(&p, e, "key", REQ | TRUNC, key, sizeof(key)) < 0 ||
		    get_str(&p, e, "description", TRUNC, k.description, sizeof(k.description)) < 0)
			goto done;
		pc_pop(&p, at);
		out->total++;
		/* a key we could not store whole is of no use: skip it */
		if (strlen(key) >= sizeof(k.key) || out->n >= HIVE_FW_MAX_APIKEYS)
			continue;
		memcpy(k.key, key, strlen(key) + 1);
		out->k[out->n++] = k;
	}
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

int hive_fw_parse_unlock(const char *body, size_t len, struct hive_fw_unlock *out, struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "unlock");
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_str(&p, root, "token", REQ, out->token, sizeof(out->token)) < 0)
		goto done;
	if (!out->token[0]) {
		fail(&p, HIVE_FW_ERR_BAD_FIELD, "token", "empty");
		goto done;
	}
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

int hive_fw_parse_settings(const char *body, size_t len, struct hive_fw_settings *out,
			   struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pc_init(&p, err, "settings");
	if (!body || blank(body, len))
		return 0;
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_bool(&p, root, "restart_required", REQ, &out->restart_required) < 0 ||
	    get_bool(&p, root, "reboot_required", 0, &out->reboot_required) < 0)
		goto done;
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

int hive_fw_parse_reboot(const char *body, size_t len, struct hive_fw_reboot *out, struct hive_fw_err *err)
{
	struct pc p;
	struct jv *root;
	int rc = -1;

	out->after = -1;
	pc_init(&p, err, "system/reboot");
	if (!body || blank(body, len))
		return 0;
	if (!(root = load(&p, body, len, JV_OBJ)))
		return -1;
	if (get_int_in(&p, root, "after", REQ, 0, 86400, &out->after) < 0)
		goto done;
	rc = 0;
done:
	jv_doc_free(&p.doc);
	return rc;
}

/* ---------------------------------------------------------------- dispatch */

int hive_fw_parse(enum hive_fw_call call, const char *body, size_t len, struct hive_fw_result *res)
{
	struct hive_fw_err *err = &res->err;
	int rc = 0;

	switch (call) {
	case HIVE_FW_INFO:
		rc = hive_fw_parse_info(body, len, &res->info, err);
		break;
	case HIVE_FW_MODEL:
		rc = hive_fw_parse_model(body, len, &res->model, err);
		break;
	case HIVE_FW_STATUS:
		rc = hive_fw_parse_status(body, len, &res->status, err);
		break;
	case HIVE_FW_SUMMARY:
		rc = hive_fw_parse_summary(body, len, &res->summary, err);
		break;
	case HIVE_FW_PERF_SUMMARY:
		rc = hive_fw_parse_perf(body, len, &res->perf, err);
		break;
	case HIVE_FW_CHAINS:
	case HIVE_FW_BOARDS:
		rc = hive_fw_parse_chains(body, len, call == HIVE_FW_BOARDS || res->used_boards,
					  &res->chains, err);
		break;
	case HIVE_FW_PRESETS:
		rc = hive_fw_parse_presets(body, len, &res->presets, err);
		break;
	case HIVE_FW_UNLOCK:
		rc = hive_fw_parse_unlock(body, len, &res->unlock, err);
		break;
	case HIVE_FW_APIKEYS:
		rc = hive_fw_parse_apikeys(body, len, &res->apikeys, err);
		break;
	case HIVE_FW_SET_PRESET:
		rc = hive_fw_parse_settings(body, len, &res->settings, err);
		break;
	case HIVE_FW_REBOOT:
		rc = hive_fw_parse_reboot(body, len, &res->reboot, err);
		break;
	case HIVE_FW_APIKEY_CREATE:
	case HIVE_FW_APIKEY_DELETE:
	case HIVE_FW_MINING_RESTART:
	case HIVE_FW_MINING_STOP:
	case HIVE_FW_MINING_START:
	case HIVE_FW_MINING_PAUSE:
	case HIVE_FW_MINING_RESUME:
		/* 2xx is the whole answer; bodies vary between versions */
		snprintf(err->endpoint, sizeof(err->endpoint), "%s", hive_fw_call_path(call));
		err->kind = HIVE_FW_OK;
		err->msg[0] = '\0';
		break;
	default:
		snprintf(err->endpoint, sizeof(err->endpoint), "?");
		err->kind = HIVE_FW_ERR_INTERNAL;
		snprintf(err->msg, sizeof(err->msg), "unknown call %d", (int)call);
		return -1;
	}
	return rc;
}
