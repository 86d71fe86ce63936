/* chips — see chips.h. */
#include "chips.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long clamp(double v, long lo, long hi)
{
	if (!(v == v))          /* NaN */
		return 0;
	if (v < (double)lo)
		return lo;
	if (v > (double)hi)
		return hi;
	return lround(v);
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static char grade_of(char g)
{
	return g == 'r' || g == 'o' || g == 'g' ? g : '?';
}

size_t apid_chips_pack(const struct apid_chip *chips, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct apid_chip *c = &chips[i];
		unsigned char *p = out + i * APID_CHIP_BYTES;
		float hr = isfinite(c->hr_ghs) ? c->hr_ghs : 0.0f;
		uint32_t bits;

		memcpy(&bits, &hr, sizeof(bits));
		put32(p, bits);
		put16(p + 4, (uint16_t)clamp(c->freq, 0, UINT16_MAX));
		put16(p + 6, (uint16_t)clamp(c->volt, 0, UINT16_MAX));
		put16(p + 8, (uint16_t)(int16_t)clamp((double)c->temp * 10.0, INT16_MIN, INT16_MAX));
		p[10] = (unsigned char)grade_of(c->grade);
		p[11] = c->throttled ? 1 : 0;
		put32(p + 12, c->errs);
	}
	return n * APID_CHIP_BYTES;
}

int apid_chips_unpack(const void *blob, size_t len, struct apid_chip *out, size_t max)
{
	const unsigned char *b = blob;
	size_t n = len / APID_CHIP_BYTES;

	if (len % APID_CHIP_BYTES != 0 || n > INT32_MAX)
		return -1;
	for (size_t i = 0; i < n && i < max; i++) {
		const unsigned char *p = b + i * APID_CHIP_BYTES;
		uint32_t bits = get32(p);

		memcpy(&out[i].hr_ghs, &bits, sizeof(bits));
		out[i].freq = get16(p + 4);
		out[i].volt = get16(p + 6);
		out[i].temp = (float)(int16_t)get16(p + 8) / 10.0f;
		out[i].grade = grade_of((char)p[10]);
		out[i].throttled = p[11] != 0;
		out[i].errs = get32(p + 12);
	}
	return (int)n;
}

/* A float32 as the shortest decimal that reads back to it, so that 12.34f
 * becomes 12.34 rather than 12.340000152587891. */
static double short_real(float f)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.7g", (double)f);
	return strtod(buf, NULL);
}

json_t *apid_chips_json(const void *blob, size_t len)
{
	const unsigned char *b = blob;
	size_t n = len / APID_CHIP_BYTES;
	json_t *o = NULL, *hr, *freq, *volt, *temp, *errs;
	char *grade = NULL, *thr = NULL;

	if (len % APID_CHIP_BYTES != 0)
		return NULL;
	grade = malloc(n + 1);
	thr = malloc(n + 1);
	o = json_object();
	/* The object owns the arrays from here on: one decref frees all. */
	if (!grade || !thr || !o ||
	    json_object_set_new(o, "hr", hr = json_array()) ||
	    json_object_set_new(o, "freq", freq = json_array()) ||
	    json_object_set_new(o, "volt", volt = json_array()) ||
	    json_object_set_new(o, "temp", temp = json_array()) ||
	    json_object_set_new(o, "errs", errs = json_array()))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = b + i * APID_CHIP_BYTES;
		uint32_t bits = get32(p);
		float f;

		memcpy(&f, &bits, sizeof(f));
		if (json_array_append_new(hr, json_real(isfinite(f) ? short_real(f) : 0.0)) ||
		    json_array_append_new(freq, json_integer(get16(p + 4))) ||
		    json_array_append_new(volt, json_integer(get16(p + 6))) ||
		    json_array_append_new(temp, json_real((int16_t)get16(p + 8) / 10.0)) ||
		    json_array_append_new(errs, json_integer(get32(p + 12))))
			goto fail;
		grade[i] = grade_of((char)p[10]);
		thr[i] = p[11] ? '1' : '0';
	}
	grade[n] = thr[n] = '\0';
	if (json_object_set_new(o, "grade", json_string(grade)) ||
	    json_object_set_new(o, "throttled", json_string(thr)))
		goto fail;
	free(grade);
	free(thr);
	return o;
fail:
	json_decref(o);
	free(grade);
	free(thr);
	return NULL;
}

/* ------------------------------------------------------------ packed columns */

#define HR_MAX_CENTI 1000000000000LL   /* 10^10 GH/s: beyond any chip */

struct writer {
	unsigned char *p, *end;
	bool full;
};

static void put_varint(struct writer *w, uint64_t v)
{
	do {
		unsigned char b = v & 0x7f;

		v >>= 7;
		if (v)
			b |= 0x80;
		if (w->p >= w->end) {
			w->full = true;
			return;
		}
		*w->p++ = b;
	} while (v);
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* One column: deltas from the previous value, runs of repeats as one token. */
static void put_column(struct writer *w, const int64_t *v, size_t n)
{
	int64_t prev = 0;

	for (size_t i = 0; i < n;) {
		size_t run = 0;

		while (i + run < n && v[i + run] == prev)
			run++;
		if (run >= 2) {
			put_varint(w, (uint64_t)run << 1 | 1);
			i += run;
			continue;
		}
		put_varint(w, zigzag(v[i] - prev) << 1);
		prev = v[i];
		i++;
	}
}

struct reader {
	const unsigned char *p, *end;
};

static int get_varint(struct reader *r, uint64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -1;
		v |= (uint64_t)(*r->p & 0x7f) << shift;
		if (!(*r->p++ & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* n values of one column into v (NULL: skipped). -1 when malformed. */
static int get_column(struct reader *r, int64_t *v, size_t n)
{
	int64_t prev = 0;
	size_t i = 0;

	while (i < n) {
		uint64_t t;

		if (get_varint(r, &t) < 0)
			return -1;
		if (t & 1) {
			uint64_t run = t >> 1;

			if (run == 0 || run > n - i)
				return -1;
			for (; run; run--, i++)
				if (v)
					v[i] = prev;
		} else {
			prev += unzigzag(t >> 1);
			if (v)
				v[i] = prev;
			i++;
		}
	}
	return 0;
}

static int grade_code(char g)
{
	return g == 'g' ? 0 : g == 'o' ? 1 : g == 'r' ? 2 : 3;
}

static char grade_letter(int64_t code)
{
	static const char letters[] = "gor?";

	return letters[code & 3];
}

/* The six columns of n chips, as stored (units above). */
struct columns {
	size_t n;
	int64_t *hr, *freq, *volt, *temp, *errs, *flags;
	int64_t *all;
};

static int columns_alloc(struct columns *c, size_t n, int k)
{
	c->n = n;
	c->all = calloc(n ? n * (size_t)k : 1, sizeof(int64_t));
	if (!c->all)
		return -1;
	c->hr = c->all;
	c->freq = c->hr + n;
	c->volt = c->freq + n;
	c->temp = c->volt + n;
	c->errs = c->temp + n;
	c->flags = c->errs + n;
	return 0;
}

size_t apid_chips_pack_columns(const struct apid_chip *chips, size_t n, unsigned char *out,
			       size_t cap)
{
	struct writer w = { out, out + cap, false };
	struct columns c;

	if (columns_alloc(&c, n, 6) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct apid_chip *x = &chips[i];

		c.hr[i] = clamp(isfinite(x->hr_ghs) ? (double)x->hr_ghs * 100.0 : 0.0, 0,
				HR_MAX_CENTI);
		c.freq[i] = clamp(x->freq, 0, UINT16_MAX);
		c.volt[i] = clamp(x->volt, 0, UINT16_MAX);
		c.temp[i] = clamp((double)x->temp * 10.0, INT16_MIN, INT16_MAX);
		c.errs[i] = x->errs;
		c.flags[i] = grade_code(x->grade) | (x->throttled ? 4 : 0);
	}
	put_varint(&w, n);
	put_column(&w, c.hr, n);
	put_column(&w, c.freq, n);
	put_column(&w, c.volt, n);
	put_column(&w, c.temp, n);
	put_column(&w, c.errs, n);
	put_column(&w, c.flags, n);
	free(c.all);
	return w.full ? 0 : (size_t)(w.p - out);
}

/* A packed blob's columns (c allocated here; free c->all). -1 when malformed. */
static int columns_read(const void *blob, size_t len, struct columns *c)
{
	struct reader r = { blob, (const unsigned char *)blob + len };
	uint64_t n;

	if (get_varint(&r, &n) < 0 || n > APID_CHIPS_MAX)
		return -1;
	if (columns_alloc(c, (size_t)n, 6) < 0)
		return -1;
	if (get_column(&r, c->hr, c->n) < 0 || get_column(&r, c->freq, c->n) < 0 ||
	    get_column(&r, c->volt, c->n) < 0 || get_column(&r, c->temp, c->n) < 0 ||
	    get_column(&r, c->errs, c->n) < 0 || get_column(&r, c->flags, c->n) < 0 ||
	    r.p != r.end) {
		free(c->all);
		return -1;
	}
	return 0;
}

int apid_chips_unpack_any(const void *blob, size_t len, int format, struct apid_chip *out,
			  size_t max)
{
	struct columns c;

	if (format != APID_CHIPS_PACKED)
		return apid_chips_unpack(blob, len, out, max);
	if (columns_read(blob, len, &c) < 0)
		return -1;
	for (size_t i = 0; i < c.n && i < max; i++) {
		out[i].hr_ghs = (float)((double)c.hr[i] / 100.0);
		out[i].freq = (int)c.freq[i];
		out[i].volt = (int)c.volt[i];
		out[i].temp = (float)((double)c.temp[i] / 10.0);
		out[i].grade = grade_letter(c.flags[i]);
		out[i].throttled = (c.flags[i] & 4) != 0;
		out[i].errs = (unsigned)c.errs[i];
	}
	free(c.all);
	return (int)c.n;
}

/* Hundredths and tenths as doubles: a correctly rounded division gives the
 * double nearest the decimal, so 40648 prints as 406.48. */
static double hundredths(int64_t v)
{
	return (double)v / 100.0;
}

static double tenths(int64_t v)
{
	return (double)v / 10.0;
}

/* Appends a column to o under name; scale 0: integers. -1 on failure. */
static int json_column(json_t *o, const char *name, const int64_t *v, size_t n,
		       double (*scale)(int64_t))
{
	json_t *a = json_array();

	if (!a || json_object_set_new(o, name, a))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, scale ? json_real(scale(v[i])) : json_integer(v[i])))
			return -1;
	return 0;
}

json_t *apid_chips_json_any(const void *blob, size_t len, int format)
{
	struct columns c;
	json_t *o;
	char *grade = NULL, *thr = NULL;

	if (format != APID_CHIPS_PACKED)
		return apid_chips_json(blob, len);
	if (columns_read(blob, len, &c) < 0)
		return NULL;
	o = json_object();
	grade = malloc(c.n + 1);
	thr = malloc(c.n + 1);
	if (!o || !grade || !thr || json_column(o, "hr", c.hr, c.n, hundredths) ||
	    json_column(o, "freq", c.freq, c.n, NULL) || json_column(o, "volt", c.volt, c.n, NULL) ||
	    json_column(o, "temp", c.temp, c.n, tenths) || json_column(o, "errs", c.errs, c.n, NULL))
		goto fail;
	for (size_t i = 0; i < c.n; i++) {
		grade[i] = grade_letter(c.flags[i]);
		thr[i] = c.flags[i] & 4 ? '1' : '0';
	}
	grade[c.n] = thr[c.n] = '\0';
	if (json_object_set_new(o, "grade", json_string(grade)) ||
	    json_object_set_new(o, "throttled", json_string(thr)))
		goto fail;
	free(grade);
	free(thr);
	free(c.all);
	return o;
fail:
	json_decref(o);
	free(grade);
	free(thr);
	free(c.all);
	return NULL;
}

/* ------------------------------------------------------------ summaries */

/* Worse grades rank higher; unknown only when nothing else was seen. */
static int grade_rank(char g)
{
	return g == 'r' ? 3 : g == 'o' ? 2 : g == 'g' ? 1 : 0;
}

int apid_chips_acc_add(struct apid_chip_acc *acc, const struct apid_chip *chips, size_t n)
{
	if (n > acc->n_chips) {
		struct apid_chip_sum *nc = realloc(acc->chip, n * sizeof(*nc));

		if (!nc)
			return -1;
		memset(nc + acc->n_chips, 0, (n - acc->n_chips) * sizeof(*nc));
		acc->chip = nc;
		acc->n_chips = n;
	}
	acc->samples++;
	for (size_t i = 0; i < n; i++) {
		struct apid_chip_sum *s = &acc->chip[i];
		const struct apid_chip *c = &chips[i];

		if (s->n == 0 || c->temp > s->temp_max)
			s->temp_max = c->temp;
		if (s->n > 0)
			s->errs_added += c->errs >= s->errs_last ? c->errs - s->errs_last : c->errs;
		s->errs_last = c->errs;
		s->n++;
		s->hr += isfinite(c->hr_ghs) ? c->hr_ghs : 0.0;
		s->freq += c->freq;
		s->volt += c->volt;
		s->temp += c->temp;
		if (!s->grade || grade_rank(c->grade) > grade_rank(s->grade))
			s->grade = c->grade;
		if (c->throttled)
			s->throttled++;
	}
	return 0;
}

unsigned char *apid_chips_acc_pack(const struct apid_chip_acc *acc, size_t *len)
{
	size_t n = acc->n_chips, cap = 20 + n * 8 * 10;
	unsigned char *out = malloc(cap);
	struct writer w = { out, out + cap, false };
	struct columns c;
	int64_t *tmax, *thr;

	if (!out || columns_alloc(&c, n, 8) < 0) {
		free(out);
		return NULL;
	}
	tmax = c.flags + n;
	thr = tmax + n;
	for (size_t i = 0; i < n; i++) {
		const struct apid_chip_sum *s = &acc->chip[i];
		double k = s->n ? (double)s->n : 1.0;

		c.hr[i] = clamp(s->hr / k * 100.0, 0, HR_MAX_CENTI);
		c.freq[i] = clamp(s->freq / k, 0, UINT16_MAX);
		c.volt[i] = clamp(s->volt / k, 0, UINT16_MAX);
		c.temp[i] = clamp(s->temp / k * 10.0, INT16_MIN, INT16_MAX);
		tmax[i] = clamp((double)s->temp_max * 10.0, INT16_MIN, INT16_MAX);
		c.errs[i] = clamp(s->errs_added, 0, 1L << 52);
		c.flags[i] = grade_code(s->grade ? s->grade : '?');
		thr[i] = s->throttled;
	}
	put_varint(&w, n);
	put_varint(&w, acc->samples);
	put_column(&w, c.hr, n);
	put_column(&w, c.freq, n);
	put_column(&w, c.volt, n);
	put_column(&w, c.temp, n);
	put_column(&w, tmax, n);
	put_column(&w, c.errs, n);
	put_column(&w, c.flags, n);
	put_column(&w, thr, n);
	free(c.all);
	if (w.full) {
		free(out);
		return NULL;
	}
	*len = (size_t)(w.p - out);
	return out;
}

void apid_chips_acc_clear(struct apid_chip_acc *acc)
{
	free(acc->chip);
	memset(acc, 0, sizeof(*acc));
}

json_t *apid_chips_summary_json(const void *blob, size_t len, long long *samples)
{
	struct reader r = { blob, (const unsigned char *)blob + len };
	uint64_t n, k;
	struct columns c = { 0 };
	int64_t *tmax, *thr;
	json_t *o = NULL;
	char *grade = NULL;

	if (get_varint(&r, &n) < 0 || n > APID_CHIPS_MAX ||
	    get_varint(&r, &k) < 0 || k > INT32_MAX || columns_alloc(&c, (size_t)n, 8) < 0)
		return NULL;
	tmax = c.flags + n;
	thr = tmax + n;
	if (get_column(&r, c.hr, c.n) < 0 || get_column(&r, c.freq, c.n) < 0 ||
	    get_column(&r, c.volt, c.n) < 0 || get_column(&r, c.temp, c.n) < 0 ||
	    get_column(&r, tmax, c.n) < 0 || get_column(&r, c.errs, c.n) < 0 ||
	    get_column(&r, c.flags, c.n) < 0 || get_column(&r, thr, c.n) < 0 || r.p != r.end)
		goto fail;
	o = json_object();
	grade = malloc(c.n + 1);
	if (!o || !grade || json_column(o, "hr", c.hr, c.n, hundredths) ||
	    json_column(o, "freq", c.freq, c.n, NULL) || json_column(o, "volt", c.volt, c.n, NULL) ||
	    json_column(o, "temp", c.temp, c.n, tenths) ||
	    json_column(o, "temp_max", tmax, c.n, tenths) ||
	    json_column(o, "errs", c.errs, c.n, NULL))
		goto fail;
	for (size_t i = 0; i < c.n; i++)
		grade[i] = grade_letter(c.flags[i]);
	grade[c.n] = '\0';
	if (json_object_set_new(o, "grade", json_string(grade)) ||
	    json_column(o, "throttled", thr, c.n, NULL))
		goto fail;
	free(grade);
	free(c.all);
	if (samples)
		*samples = (long long)k;
	return o;
fail:
	json_decref(o);
	free(grade);
	free(c.all);
	return NULL;
}
