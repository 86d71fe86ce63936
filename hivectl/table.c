/* table — what people read: columns aligned to their widest cell (counted
 * in characters, so "°C" is two), numbers on the right, and "key: value"
 * lines for one thing in detail. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hivectl.h"

#define KEY_WIDTH 16

struct hc_table {
	size_t ncols;
	const char *align;
	char **cell;             /* heads first, then row after row */
	size_t n, cap;
	bool broken;             /* out of memory: print what there is */
};

/* Characters in a UTF-8 string: bytes that do not continue one. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void push(struct hc_table *t, char *s)
{
	char **nc;

	if (s && t->n == t->cap) {
		nc = realloc(t->cell, (t->cap ? t->cap * 2 : 64) * sizeof(*nc));
		if (nc) {
			t->cell = nc;
			t->cap = t->cap ? t->cap * 2 : 64;
		}
	}
	if (!s || t->n == t->cap) {
		t->broken = true;
		free(s);
		return;
	}
	t->cell[t->n++] = s;
}

struct hc_table *hc_table_new(const char *const heads[], const char *align)
{
	struct hc_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	while (heads[t->ncols])
		push(t, strdup(heads[t->ncols++]));
	t->align = align;
	return t;
}

void hc_table_cell(struct hc_table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (!t || t->broken)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	push(t, s);
}

void hc_table_print(struct hc_table *t)
{
	size_t *w, len = 0;
	char *line = NULL;
	FILE *f;

	if (!t)
		return;
	if (t->broken)
		fprintf(stderr, "hivectl: out of memory: the table is cut short\n");
	if ((w = calloc(t->ncols, sizeof(*w)))) {
		for (size_t i = 0; i < t->n; i++)
			if (width(t->cell[i]) > w[i % t->ncols])
				w[i % t->ncols] = width(t->cell[i]);
		for (size_t i = 0; i + t->ncols <= t->n; i += t->ncols) {
			if (!(f = open_memstream(&line, &len)))
				break;
			for (size_t k = 0; k < t->ncols; k++) {
				const char *s = t->cell[i + k];
				int pad = (int)(w[k] - width(s));

				fprintf(f, "%*s%s%*s", t->align[k] == 'r' ? pad : 0, "", s,
					t->align[k] == 'r' ? 2 : pad + 2, "");
			}
			fclose(f);
			while (len > 0 && line[len - 1] == ' ')   /* an empty last column */
				len--;
			printf("%.*s\n", (int)len, line);
			free(line);
			line = NULL;
		}
		free(w);
	}
	for (size_t i = 0; i < t->n; i++)
		free(t->cell[i]);
	free(t->cell);
	free(t);
}

void hc_kv(const char *key, const char *fmt, ...)
{
	int pad = KEY_WIDTH - (int)strlen(key);
	va_list ap;

	printf("%s:%*s", key, pad > 1 ? pad : 1, "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

const char *hc_watts(const json_t *w, char *buf, size_t len)
{
	double v = json_number_value(w);

	if (!json_is_number(w))
		snprintf(buf, len, "-");
	else if (v >= 1e6 || v <= -1e6)
		snprintf(buf, len, "%.2f MW", v / 1e6);
	else if (v >= 1e4 || v <= -1e4)
		snprintf(buf, len, "%.1f kW", v / 1e3);
	else
		snprintf(buf, len, "%.0f W", v);
	return buf;
}

const char *hc_duration(double s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%.0fh", s / 3600);
	else
		snprintf(buf, len, "%.0fd", s / 86400);
	return buf;
}

const char *hc_age(const json_t *ts_ms, char *buf, size_t len)
{
	struct timespec now;
	char d[32];

	if (!json_is_integer(ts_ms) || json_integer_value(ts_ms) <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	hc_duration(((double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6 -
		     (double)json_integer_value(ts_ms)) / 1e3, d, sizeof(d));
	snprintf(buf, len, "%s ago", d);
	return buf;
}

const char *hc_num(const json_t *v, int decimals, double scale, char *buf, size_t len)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.*f", decimals, json_number_value(v) * scale);
	else
		snprintf(buf, len, "-");
	return buf;
}

const char *hc_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}
