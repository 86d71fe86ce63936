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
