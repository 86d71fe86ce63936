/* plant — the power feed (hive/plant.h): the power.source config, the
 * manual budget, and one read of an aggregator or a Modbus meter.
 *
 * One validator reads a source object, for the config (errors named
 * "power.source.<key>") and for a hive.job.plant body (errors named by the
 * job's field): the job carries the same keys, so a job is encoded and read
 * back through it rather than checked a second way. */
#include "hive/plant.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hive/clock.h"
#include "hive/daemon.h"
#include "hive/json.h"
#include "hive/log.h"
#include "hive/msg.h"

#define BODY_MAX     (1 << 20)       /* an aggregator answer larger than this is broken */
#define TIMEOUT_MIN  100
#define TIMEOUT_MAX  60000
#define W_ABSURD     1e15            /* a petawatt: a broken register or document */
#define BUDGET_MAX   1000000000000LL /* a terawatt, as the config's other watts */
#define SCALE_MAX    1e9

/* ---------------------------------------------------------------- names */

static const char *const kind_names[HIVE_PLANT_KINDS] = { "none", "aggregator", "modbus",
							   "manual" };
static const char *const table_names[] = { "holding", "input", NULL };
static const char *const type_names[] = { "u16", "s16", "u32", "s32", "float32", NULL };
static const char *const order_names[] = { "abcd", "badc", "cdab", "dcba", NULL };

static const char *name_of(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : NULL;
}

static int parse_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n && names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

const char *hive_plant_kind_name(enum hive_plant_kind k)
{
	return name_of(kind_names, HIVE_PLANT_KINDS, (int)k);
}

int hive_plant_kind_parse(const char *s)
{
	return parse_name(kind_names, HIVE_PLANT_KINDS, s);
}

const char *hive_modbus_table_name(enum hive_modbus_table t)
{
	return name_of(table_names, 2, (int)t);
}

const char *hive_modbus_type_name(enum hive_modbus_type t)
{
	return name_of(type_names, 5, (int)t);
}

const char *hive_modbus_order_name(enum hive_modbus_order o)
{
	return name_of(order_names, 4, (int)o);
}

static int type_words(enum hive_modbus_type t)
{
	return t == HIVE_MODBUS_U16 || t == HIVE_MODBUS_S16 ? 1 : 2;
}

void hive_plant_source_defaults(struct hive_plant_source *s, enum hive_plant_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->timeout_ms = 3000;
	s->min_confidence = 0.8;
	s->port = 502;
	s->unit = 1;
	s->table = HIVE_MODBUS_HOLDING;
	s->type = HIVE_MODBUS_U32;
	s->order = HIVE_MODBUS_ABCD;
	s->scale = 1;
}

/* ---------------------------------------------------------------- source */

enum { K_AGG = 1 << HIVE_PLANT_AGGREGATOR, K_MB = 1 << HIVE_PLANT_MODBUS,
       K_MAN = 1 << HIVE_PLANT_MANUAL, K_ALL = 0xff };

/* Every key a source may have, and the kinds it belongs to. */
static const struct skey {
	const char *name;
	unsigned kinds;
} skeys[] = {
	{ "kind", K_ALL },
	{ "timeout_ms", K_AGG | K_MB },
	{ "url", K_AGG }, { "plant_id", K_AGG }, { "api_key", K_AGG }, { "min_confidence", K_AGG },
	{ "host", K_MB }, { "port", K_MB }, { "unit", K_MB }, { "register", K_MB },
	{ "table", K_MB }, { "type", K_MB }, { "byte_order", K_MB }, { "scale", K_MB },
	{ "budget_w", K_MAN }, { "schedule", K_MAN },
};

/* err gets "<prefix><key>: <what>". */
static int bad(char *err, size_t errlen, const char *prefix, const char *key, const char *fmt,
	       ...) __attribute__((format(printf, 5, 6)));

static int bad(char *err, size_t errlen, const char *prefix, const char *key, const char *fmt,
	       ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s%s: %s", prefix, key, what);
	return -1;
}

/* The value of key, NULL when absent or null (null keeps the default, as
 * everywhere in the config). */
static json_t *val(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return v && !json_is_null(v) ? v : NULL;
}

/* Reads an integer key into *out within lo..hi. 0 absent, 1 read, -1 bad. */
static int get_int(const json_t *obj, const char *key, long long lo, long long hi,
		   long long *out, const char *pfx, char *err, size_t errlen)
{
	json_t *v = val(obj, key);
	long long n;

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return bad(err, errlen, pfx, key, "expected integer, got %s", hive_json_type_name(v));
	n = (long long)json_integer_value(v);
	if (n < lo || n > hi)
		return bad(err, errlen, pfx, key, "%lld is out of range (%lld..%lld)", n, lo, hi);
	*out = n;
	return 1;
}

static int get_num(const json_t *obj, const char *key, double *out, const char *pfx, char *err,
		   size_t errlen)
{
	json_t *v = val(obj, key);

	if (!v)
		return 0;
	if (!json_is_number(v))
		return bad(err, errlen, pfx, key, "expected number, got %s", hive_json_type_name(v));
	*out = json_number_value(v);
	return 1;
}

/* A string without control characters, 1..size-1 bytes. Its value is never
 * echoed: a URL may hold credentials, api_key is one. */
static int get_str(const json_t *obj, const char *key, char *buf, size_t size, const char *pfx,
		   char *err, size_t errlen)
{
	json_t *v = val(obj, key);
	const char *s;
	size_t len;

	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad(err, errlen, pfx, key, "expected string, got %s", hive_json_type_name(v));
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0)
		return bad(err, errlen, pfx, key, "empty");
	if (len >= size)
		return bad(err, errlen, pfx, key, "longer than %zu characters", size - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			/* a CR/LF in a header value would be a header of its own */
			return bad(err, errlen, pfx, key, "contains a control character");
	memcpy(buf, s, len + 1);
	return 1;
}

static int get_enum(const json_t *obj, const char *key, const char *const *names, int *out,
		    const char *pfx, char *err, size_t errlen)
{
	json_t *v = val(obj, key);
	char list[128] = "";
	int i;

	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad(err, errlen, pfx, key, "expected string, got %s", hive_json_type_name(v));
	if ((i = parse_name(names, 16, json_string_value(v))) >= 0) {
		*out = i;
		return 1;
	}
	for (i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	return bad(err, errlen, pfx, key, "\"%.40s\" is not one of %s", json_string_value(v), list);
}

/* "HH:MM" → minute of the day; -1 otherwise. */
static int hhmm(const char *s)
{
	int h, m;

	if (!s || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' ||
	    s[1] > '9' || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	return h < 24 && m < 60 ? h * 60 + m : -1;
}

static int get_schedule(const json_t *obj, struct hive_plant_source *s,
			void (*warn)(const char *key, void *arg), void *warn_arg, const char *pfx,
			char *err, size_t errlen)
{
	json_t *a = val(obj, "schedule"), *e;
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return bad(err, errlen, pfx, "schedule", "expected array, got %s",
			   hive_json_type_name(a));
	if (json_array_size(a) > HIVE_PLANT_SCHEDULE_MAX)
		return bad(err, errlen, pfx, "schedule", "more than %d steps",
			   HIVE_PLANT_SCHEDULE_MAX);
	json_array_foreach(a, i, e) {
		struct hive_plant_step *st = &s->schedule[i];
		char key[48];
		const char *k, *from;
		json_t *v;

		snprintf(key, sizeof(key), "schedule[%zu]", i);
		if (!json_is_object(e))
			return bad(err, errlen, pfx, key, "expected object, got %s",
				   hive_json_type_name(e));
		json_object_foreach(e, k, v) {
			if (strcmp(k, "from") != 0 && strcmp(k, "budget_w") != 0 && warn) {
				char full[96];

				snprintf(full, sizeof(full), "%s.%s", key, k);
				warn(full, warn_arg);
			}
		}
		snprintf(key, sizeof(key), "schedule[%zu].from", i);
		v = val(e, "from");
		from = json_string_value(v);
		if (!v)
			return bad(err, errlen, pfx, key, "missing");
		if (!from)
			return bad(err, errlen, pfx, key, "expected string, got %s",
				   hive_json_type_name(v));
		if ((st->from_min = hhmm(from)) < 0)
			return bad(err, errlen, pfx, key, "\"%.16s\" is not HH:MM (00:00..23:59)", from);
		if (i > 0 && st->from_min <= s->schedule[i - 1].from_min)
			return bad(err, errlen, pfx, key, "\"%s\" is not after \"%02d:%02d\" (steps go "
				   "in increasing order)", from, s->schedule[i - 1].from_min / 60,
				   s->schedule[i - 1].from_min % 60);
		{
			char sp[128];

			snprintf(sp, sizeof(sp), "%sschedule[%zu].", pfx, i);
			switch (get_int(e, "budget_w", 0, BUDGET_MAX, &st->budget_w, sp, err, errlen)) {
			case -1:
				return -1;
			case 0:
				return bad(err, errlen, sp, "budget_w", "missing");
			}
		}
		s->n_schedule = i + 1;
	}
	return 0;
}

/* The kinds of a key's mask, for a message ("modbus", "aggregator, modbus"). */
static void kinds_list(unsigned mask, char *buf, size_t len)
{
	buf[0] = '\0';
	for (int k = HIVE_PLANT_AGGREGATOR; k < HIVE_PLANT_KINDS; k++)
		if (mask & (1u << k))
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "",
				 kind_names[k]);
}

#define TRY(x) do { if ((x) < 0) return -1; } while (0)

/* The source in obj into *out; names keys with pfx. 0 / -1. */
static int source_parse(const json_t *obj, struct hive_plant_source *out, const char *pfx,
			void (*warn)(const char *key, void *arg), void *warn_arg, char *err,
			size_t errlen)
{
	struct hive_plant_source s;
	const char *key;
	json_t *v;
	long long n;
	int kind, e;

	if (!json_is_object(obj)) {
		/* "power.source: ..." (the prefix without its dot), or "body: ..." */
		snprintf(err, errlen, "%.*s: expected object, got %s",
			 pfx[0] ? (int)strlen(pfx) - 1 : 4, pfx[0] ? pfx : "body",
			 hive_json_type_name(obj));
		return -1;
	}
	v = val(obj, "kind");
	if (!v)
		return bad(err, errlen, pfx, "kind", "missing (aggregator, modbus or manual)");
	if (!json_is_string(v))
		return bad(err, errlen, pfx, "kind", "expected string, got %s", hive_json_type_name(v));
	if ((kind = hive_plant_kind_parse(json_string_value(v))) < 0)
		return bad(err, errlen, pfx, "kind", "\"%.40s\" is not one of none, aggregator, "
			   "modbus, manual", json_string_value(v));
	hive_plant_source_defaults(&s, (enum hive_plant_kind)kind);

	json_object_foreach((json_t *)obj, key, v) {
		const struct skey *k = NULL;
		char kinds[64];

		for (size_t i = 0; i < sizeof(skeys) / sizeof(skeys[0]); i++)
			if (strcmp(skeys[i].name, key) == 0)
				k = &skeys[i];
		if (!k) {
			if (warn)
				warn(key, warn_arg);
			continue;
		}
		if (!(k->kinds & (1u << kind))) {
			kinds_list(k->kinds, kinds, sizeof(kinds));
			return bad(err, errlen, pfx, key, "not a key of %s %s source (only %s)",
				   kind == HIVE_PLANT_AGGREGATOR ? "an" : "a", kind_names[kind], kinds);
		}
	}

	switch (kind) {
	case HIVE_PLANT_AGGREGATOR:
		TRY(e = get_str(obj, "url", s.url, sizeof(s.url), pfx, err, errlen));
		if (e == 0)
			return bad(err, errlen, pfx, "url", "missing (an aggregator source needs it)");
		if (strncmp(s.url, "http://", 7) != 0 && strncmp(s.url, "https://", 8) != 0)
			return bad(err, errlen, pfx, "url", "must start with http:// or https://");
		if (strchr(s.url, ' ') || strchr(s.url, '#') ||
		    !s.url[strncmp(s.url, "https", 5) == 0 ? 8 : 7])
			return bad(err, errlen, pfx, "url", "not a URL");
		TRY(e = get_str(obj, "plant_id", s.plant_id, sizeof(s.plant_id), pfx, err, errlen));
		if (e == 0)
			return bad(err, errlen, pfx, "plant_id", "missing (an aggregator source needs it)");
		TRY(e = get_str(obj, "api_key", s.api_key, sizeof(s.api_key), pfx, err, errlen));
		if (e == 0)
			return bad(err, errlen, pfx, "api_key", "missing (an aggregator source needs it)");
		hive_log_secret(s.api_key);
		TRY(e = get_num(obj, "min_confidence", &s.min_confidence, pfx, err, errlen));
		if (e && !(s.min_confidence >= 0 && s.min_confidence <= 1))
			return bad(err, errlen, pfx, "min_confidence", "%g is out of range (0..1)",
				   s.min_confidence);
		break;
	case HIVE_PLANT_MODBUS:
		TRY(e = get_str(obj, "host", s.host, sizeof(s.host), pfx, err, errlen));
		if (e == 0)
			return bad(err, errlen, pfx, "host", "missing (a modbus source needs it)");
		if (strchr(s.host, ' ') || strchr(s.host, '/'))
			return bad(err, errlen, pfx, "host", "not a host name or address");
		n = s.port;
		TRY(get_int(obj, "port", 1, 65535, &n, pfx, err, errlen));
		s.port = (int)n;
		n = s.unit;
		TRY(get_int(obj, "unit", 0, 255, &n, pfx, err, errlen));
		s.unit = (int)n;
		TRY(get_enum(obj, "table", table_names, (int *)&s.table, pfx, err, errlen));
		TRY(get_enum(obj, "type", type_names, (int *)&s.type, pfx, err, errlen));
		TRY(get_enum(obj, "byte_order", order_names, (int *)&s.order, pfx, err, errlen));
		n = s.reg;
		TRY(get_int(obj, "register", 0, 65535, &n, pfx, err, errlen));
		s.reg = (int)n;
		if (s.reg + type_words(s.type) - 1 > 65535)
			return bad(err, errlen, pfx, "register", "%d: a %s needs 2 registers, the last "
				   "is 65535", s.reg, type_names[s.type]);
		TRY(e = get_num(obj, "scale", &s.scale, pfx, err, errlen));
		if (e && !(s.scale > 0 && s.scale <= SCALE_MAX))
			return bad(err, errlen, pfx, "scale", "%g is out of range (above 0, at most "
				   "1e9 watts per unit)", s.scale);
		break;
	case HIVE_PLANT_MANUAL:
		TRY(e = get_int(obj, "budget_w", 0, BUDGET_MAX, &s.budget_w, pfx, err, errlen));
		TRY(get_schedule(obj, &s, warn, warn_arg, pfx, err, errlen));
		if (e == 0 && s.n_schedule == 0)
			return bad(err, errlen, pfx, "budget_w", "missing (a manual source needs "
				   "budget_w or a schedule)");
		break;
	default:
		break;
	}
	if (kind == HIVE_PLANT_AGGREGATOR || kind == HIVE_PLANT_MODBUS) {
		n = s.timeout_ms;
		TRY(get_int(obj, "timeout_ms", TIMEOUT_MIN, TIMEOUT_MAX, &n, pfx, err, errlen));
		s.timeout_ms = (int)n;
	}
	*out = s;
	return 0;
}

int hive_plant_source_parse(const json_t *obj, struct hive_plant_source *out,
			    void (*warn)(const char *key, void *arg), void *warn_arg,
			    char *err, size_t errlen)
{
	return source_parse(obj, out, "power.source.", warn, warn_arg, err, errlen);
}

long long hive_plant_budget_at(const struct hive_plant_source *s, int minute)
{
	size_t i;

	if (s->n_schedule == 0)
		return s->budget_w;
	minute = ((minute % 1440) + 1440) % 1440;
	for (i = s->n_schedule; i > 0; i--)
		if (s->schedule[i - 1].from_min <= minute)
			return s->schedule[i - 1].budget_w;
	/* before the day's first step: yesterday's last one still holds */
	return s->schedule[s->n_schedule - 1].budget_w;
}

/* ---------------------------------------------------------------- jobs */

int hive_plant_job_to_source(const struct hive_msg_plant_job *j, struct hive_plant_source *out,
			     char *err, size_t errlen)
{
	json_t *o = hive_msg_encode(HIVE_MSG_JOB_PLANT, j);
	int rc;

	if (!o) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* job and deadline are the job's own: not source keys, so ignored */
	rc = source_parse(o, out, "", NULL, NULL, err, errlen);
	json_decref(o);
	if (rc == 0 && out->kind != HIVE_PLANT_AGGREGATOR && out->kind != HIVE_PLANT_MODBUS) {
		snprintf(err, errlen, "kind: a %s source is not read", kind_names[out->kind]);
		return -1;
	}
	return rc;
}

void hive_plant_source_to_job(const struct hive_plant_source *s, struct hive_msg_plant_job *j)
{
	hive_msg_init(HIVE_MSG_JOB_PLANT, j);
	j->kind = hive_plant_kind_name(s->kind);
	if (s->kind == HIVE_PLANT_AGGREGATOR) {
		j->url = s->url;
		j->plant_id = s->plant_id;
		j->api_key = s->api_key;
	} else if (s->kind == HIVE_PLANT_MODBUS) {
		j->host = s->host;
		j->port = s->port;
		j->unit = s->unit;
		j->reg = s->reg;
		j->table = hive_modbus_table_name(s->table);
		j->type = hive_modbus_type_name(s->type);
		j->byte_order = hive_modbus_order_name(s->order);
		j->scale = s->scale;
	} else {
		return;
	}
	j->timeout_ms = s->timeout_ms;
}

void hive_plant_reading_to_msg(const struct hive_plant_reading *r, struct hive_msg_plant_reading *m)
{
	hive_msg_init(HIVE_MSG_PLANT_READING, m);
	m->ok = r->ok;
	m->latency_ms = r->latency_ms >= 0 ? r->latency_ms : 0;
	if (!r->ok) {
		m->error = r->error;
		m->error_kind = r->error_kind[0] ? r->error_kind : "internal";
		return;
	}
	m->generation_w = r->generation_w;
	if (r->n_regs > 0)
		return;             /* a meter: the generation is all it knows */
	if (r->reading_id >= 0)
		m->reading_id = r->reading_id;
	if (r->collected_ms >= 0)
		m->collected_ms = r->collected_ms;
	m->consumption_w = r->consumption_w;
	m->exported_w = r->exported_w;
	m->confidence = r->confidence;
	m->trust_status = r->trust_status[0] ? r->trust_status : NULL;
	m->gen_sources = r->gen_sources;
	m->gen_failed = r->gen_failed;
	m->cons_sources = r->cons_sources;
	m->cons_failed = r->cons_failed;
	m->failed = r->failed[0] ? r->failed : NULL;
}

/* ---------------------------------------------------------------- aggregator */

static void reading_init(struct hive_plant_reading *r)
{
	memset(r, 0, sizeof(*r));
	r->generation_w = r->consumption_w = r->exported_w = r->confidence = NAN;
	r->reading_id = -1;
	r->collected_ms = -1;
}

/* Replaces what is not UTF-8 with '?': a message cut with %.64s (or a
 * buffer's size) can end mid-character, and a JSON string must be UTF-8. */
static void utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
			: (*p & 0xf8) == 0xf0 ? 4 : 0;
		int i = 1;

		while (i < n && (p[i] & 0xc0) == 0x80)
			i++;
		if (n == 0 || i < n) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

static int fail(struct hive_plant_reading *r, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct hive_plant_reading *r, const char *kind, const char *fmt, ...)
{
	va_list ap;

	r->ok = false;
	snprintf(r->error_kind, sizeof(r->error_kind), "%s", kind);
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	utf8_clean(r->error);
	return -1;
}

static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* RFC 3339 ("2025-01-12T10:30:00Z", fractions and offsets too) → ms since
 * the epoch; -1 when it is not one (or before 1970). */
static long long rfc3339_ms(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, ms = 0, off = 0;
	const char *p;
	long long t;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	p = s + 19;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 3)
				ms = ms * 10 + (*p - '0');
		if (n == 0)
			return -1;
		for (; n < 3; n++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && p[3] == ':') {
		int oh = digits(p + 1, 2), om = digits(p + 4, 2);

		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		off = (*p == '+' ? 1 : -1) * (oh * 60 + om);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = ((long long)timegm(&tm) - off * 60LL) * 1000 + ms;
	return t >= 0 ? t : -1;
}

/* A power in MW at obj[key] as whole watts. 0 absent, 1 read, -1 bad. */
static int get_mw(struct hive_plant_reading *r, const json_t *obj, const char *path,
		  const char *key, double *w)
{
	json_t *v = val(obj, key);
	double mw;

	if (!v)
		return 0;
	if (!json_is_number(v))
		return fail(r, "bad_field", "%s.%s: expected number, got %s", path, key,
			    hive_json_type_name(v));
	mw = json_number_value(v);
	if (!(fabs(mw) * 1e6 <= W_ABSURD))
		return fail(r, "bad_field", "%s.%s: %g MW is not a power", path, key, mw);
	*w = (double)llround(mw * 1e6);
	return 1;
}

/* Counts the sources of group ("generation", "consumption"), and those not
 * "success", whose names go to r->failed. 0 / -1. */
static int count_sources(struct hive_plant_reading *r, const json_t *reading, const char *group,
			 int *n, int *failed)
{
	json_t *g = val(reading, group), *src, *st;
	const char *name;

	*n = *failed = 0;
	if (!g)
		return 0;
	if (!json_is_object(g))
		return fail(r, "bad_field", "reading.%s: expected object, got %s", group,
			    hive_json_type_name(g));
	json_object_foreach(g, name, src) {
		size_t used = strlen(r->failed);

		if (!json_is_object(src))
			return fail(r, "bad_field", "reading.%s.%.64s: expected object, got %s", group,
				    name, hive_json_type_name(src));
		(*n)++;
		st = json_object_get(src, "status");
		if (json_is_string(st) && strcmp(json_string_value(st), "success") == 0)
			continue;
		(*failed)++;
		/* names that do not fit are counted, not listed */
		if (used + strlen(name) + 2 < sizeof(r->failed))
			snprintf(r->failed + used, sizeof(r->failed) - used, "%s%s", used ? "," : "",
				 name);
	}
	return 0;
}

int hive_plant_parse_aggregator(const char *body, size_t len, const char *plant_id,
				struct hive_plant_reading *r)
{
	json_error_t je;
	json_t *doc, *rd, *v, *totals, *trust;
	int rc = -1;

	reading_init(r);
	if (!(doc = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &je)))
		return fail(r, "bad_json", "bad json: %s", je.text);
	rd = json_object_get(doc, "reading");
	if (!json_is_object(rd)) {
		fail(r, "bad_field", "reading: %s", rd ? "expected object" : "missing");
		goto out;
	}
	if ((v = val(rd, "plant_id"))) {
		if (!json_is_string(v)) {
			fail(r, "bad_field", "reading.plant_id: expected string, got %s",
			     hive_json_type_name(v));
			goto out;
		}
		if (plant_id && *plant_id && strcmp(json_string_value(v), plant_id) != 0) {
			fail(r, "bad_field", "reading.plant_id: \"%.64s\" is not \"%.64s\"",
			     json_string_value(v), plant_id);
			goto out;
		}
	}
	if ((v = val(rd, "id"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			fail(r, "bad_field", "reading.id: expected an integer >= 0");
			goto out;
		}
		r->reading_id = (long long)json_integer_value(v);
	}
	if ((v = val(rd, "collection_timestamp"))) {
		if (!json_is_string(v) || (r->collected_ms = rfc3339_ms(json_string_value(v))) < 0) {
			fail(r, "bad_field", "reading.collection_timestamp: not an RFC 3339 time");
			goto out;
		}
	}
	totals = val(rd, "totals");
	if (!json_is_object(totals)) {
		fail(r, "bad_field", "reading.totals: %s", totals ? "expected object" : "missing");
		goto out;
	}
	switch (get_mw(r, totals, "reading.totals", "generation_mw", &r->generation_w)) {
	case -1:
		goto out;
	case 0:
		fail(r, "bad_field", "reading.totals.generation_mw: missing");
		goto out;
	}
	if (get_mw(r, totals, "reading.totals", "consumption_mw", &r->consumption_w) < 0 ||
	    get_mw(r, totals, "reading.totals", "exported_mw", &r->exported_w) < 0)
		goto out;
	if (count_sources(r, rd, "generation", &r->gen_sources, &r->gen_failed) < 0 ||
	    count_sources(r, rd, "consumption", &r->cons_sources, &r->cons_failed) < 0)
		goto out;
	/* a total with a failed part is not a measurement of the farm */
	if (r->cons_failed > 0)
		r->consumption_w = NAN;
	if ((trust = val(rd, "trust"))) {
		if (!json_is_object(trust)) {
			fail(r, "bad_field", "reading.trust: expected object, got %s",
			     hive_json_type_name(trust));
			goto out;
		}
		if ((v = val(trust, "confidence_score"))) {
			if (!json_is_number(v) || !(json_number_value(v) >= 0 &&
						    json_number_value(v) <= 1)) {
				fail(r, "bad_field", "reading.trust.confidence_score: expected a number "
				     "in 0..1");
				goto out;
			}
			r->confidence = json_number_value(v);
		}
		if ((v = val(trust, "status")) && json_is_string(v)) {
			snprintf(r->trust_status, sizeof(r->trust_status), "%s", json_string_value(v));
			utf8_clean(r->trust_status);
		}
	}
	r->ok = true;
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

/* ---------------------------------------------------------------- modbus */

static uint16_t swab16(uint16_t v)
{
	return (uint16_t)((v >> 8) | (v << 8));
}

int hive_plant_decode_registers(const uint16_t *regs, int n, enum hive_modbus_type type,
				enum hive_modbus_order order, double scale, double *watts)
{
	bool swap_bytes = order == HIVE_MODBUS_BADC || order == HIVE_MODBUS_DCBA;
	bool swap_words = order == HIVE_MODBUS_CDAB || order == HIVE_MODBUS_DCBA;
	double v;

	if (!regs || n != type_words(type))
		return -1;
	if (n == 1) {
		/* one register holds "ab": badc and dcba send it as "ba" */
		uint16_t u = swap_bytes ? swab16(regs[0]) : regs[0];

		v = type == HIVE_MODBUS_S16 ? (double)(int16_t)u : (double)u;
	} else {
		uint16_t hi = swap_words ? regs[1] : regs[0], lo = swap_words ? regs[0] : regs[1];
		uint32_t u;

		if (swap_bytes) {
			hi = swab16(hi);
			lo = swab16(lo);
		}
		u = (uint32_t)hi << 16 | lo;
		if (type == HIVE_MODBUS_U32) {
			v = (double)u;
		} else if (type == HIVE_MODBUS_S32) {
			v = (double)(int32_t)u;
		} else {
			float f;

			memcpy(&f, &u, sizeof(f));
			v = (double)f;
		}
	}
	v *= scale;
	if (!isfinite(v) || fabs(v) > W_ABSURD)
		return -1;
	*watts = v;
	return 0;
}

static int read_modbus(const struct hive_plant_source *s, struct hive_plant_reading *r,
		       int64_t start)
{
	char port[8];
	modbus_t *mb;
	int words = type_words(s->type), got, left;
	double w;

	snprintf(port, sizeof(port), "%d", s->port);
	if (!(mb = modbus_new_tcp_pi(s->host, port)))
		return fail(r, "modbus", "modbus: %s", modbus_strerror(errno));
	/* libmodbus waits its response timeout for the connection too: what
	 * the connection leaves is what the answer gets */
	modbus_set_response_timeout(mb, (uint32_t)(s->timeout_ms / 1000),
				    (uint32_t)(s->timeout_ms % 1000) * 1000);
	if (modbus_set_slave(mb, s->unit) < 0 || modbus_connect(mb) < 0) {
		fail(r, "modbus", "modbus: %s", modbus_strerror(errno));
		modbus_free(mb);
		return -1;
	}
	left = s->timeout_ms - (int)(hive_mono_ms() - start);
	if (left < 1)
		left = 1;
	modbus_set_response_timeout(mb, (uint32_t)(left / 1000), (uint32_t)(left % 1000) * 1000);
	got = s->table == HIVE_MODBUS_INPUT ? modbus_read_input_registers(mb, s->reg, words, r->regs)
					    : modbus_read_registers(mb, s->reg, words, r->regs);
	if (got != words) {
		fail(r, "modbus", "modbus: %s", got < 0 ? modbus_strerror(errno) : "short answer");
		modbus_close(mb);
		modbus_free(mb);
		return -1;
	}
	modbus_close(mb);
	modbus_free(mb);
	r->n_regs = words;
	if (hive_plant_decode_registers(r->regs, words, s->type, s->order, s->scale, &w) < 0)
		return fail(r, "bad_field", "register %d: 0x%04x 0x%04x is not a power as %s %s "
			    "(scale %g)", s->reg, r->regs[0], words > 1 ? r->regs[1] : 0,
			    type_names[s->type], order_names[s->order], s->scale);
	r->generation_w = round(w);
	r->ok = true;
	return 0;
}

/* ---------------------------------------------------------------- aggregator (HTTP) */

struct body {
	char *buf;
	size_t len;
	bool overflow;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > BODY_MAX) {
		b->overflow = true;
		return 0;
	}
	if (!(grown = realloc(b->buf, b->len + n + 1)))
		return 0;
	b->buf = grown;
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* A daemon asked to stop does not wait out a slow plant. */
static int progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)arg, (void)dt, (void)dn, (void)ut, (void)un;
	return hive_quit ? 1 : 0;
}

/* "http 401: unauthorized": the answer's "error" when it has one. */
static void http_error(struct hive_plant_reading *r, long status, const struct body *b)
{
	json_t *doc = b->buf ? json_loadb(b->buf, b->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(doc, "error"));

	if (msg)
		fail(r, "http", "http %ld: %.200s", status, msg);
	else
		fail(r, "http", "http %ld", status);
	json_decref(doc);
}

static int read_aggregator(const struct hive_plant_source *s, struct hive_plant_reading *r)
{
	struct body b = { 0 };
	struct curl_slist *hdr = NULL, *h;
	char url[HIVE_PLANT_URL_MAX + 400], auth[sizeof(s->api_key) + 32], *id;
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURL *c;
	CURLcode cc;

	hive_log_secret(s->api_key);
	if (!(c = curl_easy_init()) || !(id = curl_easy_escape(c, s->plant_id, 0))) {
		curl_easy_cleanup(c);
		return fail(r, "internal", "libcurl: cannot initialise");
	}
	snprintf(url, sizeof(url), "%s%cplant_id=%s", s->url, strchr(s->url, '?') ? '&' : '?', id);
	curl_free(id);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->api_key);
	if ((h = curl_slist_append(hdr, auth)))
		hdr = h;
	if ((h = curl_slist_append(hdr, "Accept: application/json")))
		hdr = h;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* as the firmware client: the address configured is the one asked */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	/* the header held the key: clear it before the memory goes back */
	explicit_bzero(auth, sizeof(auth));
	curl_slist_free_all(hdr);

	if (cc == CURLE_OPERATION_TIMEDOUT)
		fail(r, "timeout", "timeout after %d ms", s->timeout_ms);
	else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
		fail(r, "refused", "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
	else if (cc == CURLE_WRITE_ERROR && b.overflow)
		fail(r, "bad_json", "bad json: answer larger than %d bytes", BODY_MAX);
	else if (cc == CURLE_ABORTED_BY_CALLBACK)
		fail(r, "internal", "stopping");
	else if (cc != CURLE_OK)
		fail(r, "http", "http: %s", cerr[0] ? cerr : curl_easy_strerror(cc));
	else if (status != 200)
		http_error(r, status, &b);
	else
		hive_plant_parse_aggregator(b.buf, b.len, s->plant_id, r);
	free(b.buf);
	return r->ok ? 0 : -1;
}

int hive_plant_read(const struct hive_plant_source *s, struct hive_plant_reading *r)
{
	int64_t start = hive_mono_ms();

	reading_init(r);
	if (s->kind == HIVE_PLANT_AGGREGATOR)
		read_aggregator(s, r);
	else if (s->kind == HIVE_PLANT_MODBUS)
		read_modbus(s, r, start);
	else
		fail(r, "internal", "a %s source is not read", hive_plant_kind_name(s->kind) ?
		     hive_plant_kind_name(s->kind) : "?");
	r->latency_ms = (int)(hive_mono_ms() - start);
	return r->ok ? 0 : -1;
}
