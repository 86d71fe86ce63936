/* log — see hive/log.h.
 *
 * Every line is formatted into one buffer and written with one write(2)
 * under a mutex, so lines from several threads never interleave. Secrets are
 * found with a rolling hash per distinct secret length: a daemon may hold one
 * API key per miner (thousands), and a line must not cost one memmem each.
 */
#include "hive/log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hive/clock.h"

/* A line fits PIPE_BUF, so lines of several daemons sharing one stderr pipe
 * never interleave either. */
#define LOG_LINE_MAX    4096   /* whole line as written */
#define LOG_MSG_MAX     3968   /* formatted message, before redaction */
_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a log line must be one atomic pipe write");
#define SECRET_MASK     "<secret>"
#define HASH_BASE       1099511628211ULL
#define COMPLAIN_MAX    65536  /* keys remembered; the oldest is evicted */
#define COMPLAIN_BUCKETS 16384

struct secret {
	char *text;
	size_t len;
	uint64_t hash;
	int refs;                /* registered this many times */
};

struct secret_len {
	size_t len;
	int count;               /* secrets of this length */
	uint64_t top;            /* HASH_BASE^(len-1), to roll the window */
};

struct complaint {
	char *key;
	uint64_t hash;
	int64_t last_ms;         /* when a line was last written for it */
	unsigned long suppressed;
	struct complaint *next;  /* bucket chain */
	struct complaint *older, *newer;  /* age list, for eviction */
};

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static char log_daemon[32] = "hive";
static int log_level = HIVE_LOG_INFO;   /* read with __atomic */
static FILE *log_out;                   /* NULL: stderr */

/* Open-addressed set of secrets, keyed by the rolling hash of the text. */
static struct secret *secrets;
static size_t secrets_cap, secrets_n;
static struct secret_len *slens;
static size_t slens_n, slens_cap;

static struct complaint *complaints[COMPLAIN_BUCKETS];
static struct complaint *c_oldest, *c_newest;
static size_t complaints_n;
static int complain_interval_s = 300;

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

static uint64_t poly_hash(const unsigned char *s, size_t len)
{
	uint64_t h = 0;

	for (size_t i = 0; i < len; i++)
		h = h * HASH_BASE + s[i];
	return h;
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * HASH_BASE;
	return h;
}

void hive_log_init(const char *daemon, enum hive_log_level level, FILE *out)
{
	pthread_mutex_lock(&log_mtx);
	if (daemon)
		snprintf(log_daemon, sizeof(log_daemon), "%s", daemon);
	log_out = out;
	pthread_mutex_unlock(&log_mtx);
	hive_log_set_level(level);
}

void hive_log_set_level(enum hive_log_level level)
{
	if (level < HIVE_LOG_DEBUG || level > HIVE_LOG_ERROR)
		level = HIVE_LOG_INFO;
	__atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum hive_log_level hive_log_get_level(void)
{
	return (enum hive_log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int hive_log_level_parse(const char *name, enum hive_log_level *out)
{
	static const struct { const char *name; enum hive_log_level level; } tab[] = {
		{ "debug", HIVE_LOG_DEBUG }, { "info", HIVE_LOG_INFO },
		{ "warn", HIVE_LOG_WARN }, { "warning", HIVE_LOG_WARN },
		{ "error", HIVE_LOG_ERROR },
	};

	if (!name)
		return -1;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strcmp(name, tab[i].name) == 0) {
			if (out)
				*out = tab[i].level;
			return 0;
		}
	}
	return -1;
}

const char *hive_log_level_name(enum hive_log_level level)
{
	static const char *const lower[] = { "debug", "info", "warn", "error" };

	if (level < HIVE_LOG_DEBUG || level > HIVE_LOG_ERROR)
		return "unknown";
	return lower[level];
}

/* ---------------------------------------------------------------- secrets */

static struct secret *secret_find(const char *s, size_t len, uint64_t h)
{
	if (secrets_cap == 0)
		return NULL;
	for (size_t i = h & (secrets_cap - 1);; i = (i + 1) & (secrets_cap - 1)) {
		struct secret *e = &secrets[i];

		if (!e->text)
			return NULL;
		if (e->hash == h && e->len == len && memcmp(e->text, s, len) == 0)
			return e;
	}
}

static void secret_place(struct secret *tab, size_t cap, struct secret e)
{
	size_t i = e.hash & (cap - 1);

	while (tab[i].text)
		i = (i + 1) & (cap - 1);
	tab[i] = e;
}

static int secrets_grow(void)
{
	size_t ncap = secrets_cap ? secrets_cap * 2 : 64;
	struct secret *ntab = calloc(ncap, sizeof(*ntab));

	if (!ntab)
		return -1;
	for (size_t i = 0; i < secrets_cap; i++)
		if (secrets[i].text)
			secret_place(ntab, ncap, secrets[i]);
	free(secrets);
	secrets = ntab;
	secrets_cap = ncap;
	return 0;
}

static int slen_add(size_t len)
{
	for (size_t i = 0; i < slens_n; i++) {
		if (slens[i].len == len) {
			slens[i].count++;
			return 0;
		}
	}
	if (slens_n == slens_cap) {
		size_t ncap = slens_cap ? slens_cap * 2 : 8;
		struct secret_len *n = realloc(slens, ncap * sizeof(*n));

		if (!n)
			return -1;
		slens = n;
		slens_cap = ncap;
	}
	uint64_t top = 1;
	for (size_t i = 1; i < len; i++)
		top *= HASH_BASE;
	slens[slens_n++] = (struct secret_len){ len, 1, top };
	return 0;
}

static void slen_del(size_t len)
{
	for (size_t i = 0; i < slens_n; i++) {
		if (slens[i].len == len && --slens[i].count == 0) {
			slens[i] = slens[--slens_n];
			return;
		}
	}
}

/* Takes log_mtx and looks secret up: its entry, or NULL. *len and *h are
 * what adding it takes. The caller unlocks. */
static struct secret *secret_lookup_lock(const char *secret, size_t *len, uint64_t *h)
{
	*len = strlen(secret);
	*h = poly_hash((const unsigned char *)secret, *len);
	pthread_mutex_lock(&log_mtx);
	return secret_find(secret, *len, *h);
}

void hive_log_secret(const char *secret)
{
	size_t len;
	uint64_t h;
	struct secret *e;

	if (!secret || !*secret)
		return;
	if ((e = secret_lookup_lock(secret, &len, &h)) != NULL) {
		/* Saturates: a secret registered that often stays masked for good. */
		if (e->refs < INT_MAX)
			e->refs++;
		goto out;
	}
	/* Keep the table at most half full so probes stay short. */
	if ((secrets_n + 1) * 2 > secrets_cap && secrets_grow() == -1)
		goto out;
	struct secret ne = { strdup(secret), len, h, 1 };
	if (!ne.text)
		goto out;
	if (slen_add(len) == -1) {
		free(ne.text);
		goto out;
	}
	secret_place(secrets, secrets_cap, ne);
	secrets_n++;
out:
	pthread_mutex_unlock(&log_mtx);
}

void hive_log_forget_secret(const char *secret)
{
	size_t len, i, j;
	uint64_t h;
	struct secret *e;

	if (!secret || !*secret)
		return;
	e = secret_lookup_lock(secret, &len, &h);
	if (!e || e->refs == INT_MAX || --e->refs > 0)
		goto out;
	free(e->text);
	e->text = NULL;
	secrets_n--;
	slen_del(len);
	/* Linear probing: re-seat the rest of the cluster after the hole. */
	i = (size_t)(e - secrets);
	for (j = (i + 1) & (secrets_cap - 1); secrets[j].text; j = (j + 1) & (secrets_cap - 1)) {
		struct secret moved = secrets[j];

		secrets[j].text = NULL;
		secret_place(secrets, secrets_cap, moved);
	}
out:
	pthread_mutex_unlock(&log_mtx);
}

/* Marks in mask every byte of s covered by some secret. Overlapping and
 * nested secrets just mark more bytes; the caller masks each marked run. */
static bool secrets_mark(const char *s, size_t n, unsigned char *mask)
{
	const unsigned char *u = (const unsigned char *)s;
	bool any = false;

	for (size_t k = 0; k < slens_n; k++) {
		size_t len = slens[k].len;
		uint64_t top = slens[k].top, h;

		if (len > n)
			continue;
		h = poly_hash(u, len);
		for (size_t i = 0;; i++) {
			if (secret_find(s + i, len, h)) {
				memset(mask + i, 1, len);
				any = true;
			}
			if (i + len >= n)
				break;
			h = (h - u[i] * top) * HASH_BASE + u[i + len];
		}
	}
	return any;
}

/* ---------------------------------------------------------------- output */

/* Appends msg to line at *pos: secrets masked, control characters turned
 * into spaces so that one event stays one line. Called with log_mtx held. */
static void append_redacted(char *line, size_t *pos, size_t cap, const char *msg, size_t n)
{
	unsigned char mask[LOG_MSG_MAX];
	bool any = false;
	size_t p = *pos;

	if (n > sizeof(mask))
		n = sizeof(mask);
	if (slens_n > 0) {
		memset(mask, 0, n);
		any = secrets_mark(msg, n, mask);
	}
	for (size_t i = 0; i < n;) {
		if (any && mask[i]) {
			size_t m = sizeof(SECRET_MASK) - 1;

			if (p + m >= cap)
				break;
			memcpy(line + p, SECRET_MASK, m);
			p += m;
			while (i < n && mask[i])
				i++;
			continue;
		}
		if (p + 1 >= cap)
			break;
		unsigned char c = (unsigned char)msg[i++];
		line[p++] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
	}
	*pos = p;
}

static void write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		n -= (size_t)w;
	}
}

/* Formats the whole line and writes it. Called with log_mtx held. */
static void emit_locked(enum hive_log_level level, const char *msg, size_t n)
{
	char line[LOG_LINE_MAX];
	int64_t now = hive_wall_ms();
	time_t sec = (time_t)(now / 1000);
	struct tm tm;
	size_t pos;
	int r;
	FILE *out = log_out ? log_out : stderr;

	gmtime_r(&sec, &tm);
	pos = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + pos, sizeof(line) - pos, ".%03dZ %s[%ld] %s ",
		     (int)(now % 1000), log_daemon, (long)getpid(), level_names[level]);
	if (r < 0)
		return;
	pos += (size_t)r;
	append_redacted(line, &pos, sizeof(line) - 1, msg, n);
	line[pos++] = '\n';
	fflush(out);  /* anything the caller put through stdio goes first */
	write_all(fileno(out), line, pos);
}

/* vsnprintf into buf, marking truncation; returns the length. */
static size_t format_msg(char *buf, size_t cap, const char *fmt, va_list ap)
{
	int r = vsnprintf(buf, cap, fmt, ap);

	if (r < 0) {
		buf[0] = '\0';
		return 0;
	}
	if ((size_t)r >= cap) {
		memcpy(buf + cap - 4, "...", 4);
		return cap - 1;
	}
	return (size_t)r;
}

static size_t append_fmt(char *buf, size_t cap, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t append_fmt(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (n + 1 >= cap)
		return n;
	va_start(ap, fmt);
	r = vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		return n;
	return (size_t)r >= cap - n ? cap - 1 : n + (size_t)r;
}

static bool enabled(enum hive_log_level level)
{
	if (level < HIVE_LOG_DEBUG || level > HIVE_LOG_ERROR)
		level = HIVE_LOG_ERROR;
	return (int)level >= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static void vlog(enum hive_log_level level, int errnum, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX];
	size_t n;

	if (level < HIVE_LOG_DEBUG || level > HIVE_LOG_ERROR)
		level = HIVE_LOG_ERROR;
	n = format_msg(msg, sizeof(msg), fmt, ap);
	if (errnum != 0) {
		char ebuf[128], qbuf[160];

		n = append_fmt(msg, sizeof(msg), n, " errno=%d err=%s", errnum,
			       hive_log_quote(strerror_r(errnum, ebuf, sizeof(ebuf)), qbuf,
					      sizeof(qbuf)));
	}
	pthread_mutex_lock(&log_mtx);
	emit_locked(level, msg, n);
	pthread_mutex_unlock(&log_mtx);
}

void hive_log(enum hive_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!enabled(level))
		return;
	va_start(ap, fmt);
	vlog(level, 0, fmt, ap);
	va_end(ap);
}

void hive_log_errno(enum hive_log_level level, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (enabled(level)) {
		va_start(ap, fmt);
		vlog(level, saved, fmt, ap);
		va_end(ap);
	}
	errno = saved;
}

/* ---------------------------------------------------------------- complaints */

static struct complaint **c_slot(const char *key, uint64_t h)
{
	struct complaint **pp = &complaints[h % COMPLAIN_BUCKETS];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			return pp;
	return pp;
}

static void c_unlink_age(struct complaint *c)
{
	if (c->older)
		c->older->newer = c->newer;
	else
		c_oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		c_newest = c->older;
	c->older = c->newer = NULL;
}

static void c_push_newest(struct complaint *c)
{
	c->older = c_newest;
	c->newer = NULL;
	if (c_newest)
		c_newest->newer = c;
	else
		c_oldest = c;
	c_newest = c;
}

static void c_remove(struct complaint *c)
{
	struct complaint **pp = c_slot(c->key, c->hash);

	if (*pp == c)
		*pp = c->next;
	c_unlink_age(c);
	complaints_n--;
	free(c->key);
	free(c);
}

/* Writes the line of a complaint or a recovery when level is enabled: the
 * message, then " repeated=N" when lines were held back, then tail.
 * Returns 1 when written. Called with log_mtx held. */
static int emit_repeated(enum hive_log_level level, unsigned long repeated, const char *tail,
			 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static int emit_repeated(enum hive_log_level level, unsigned long repeated, const char *tail,
			 const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX];
	size_t n;

	if (!enabled(level))
		return 0;
	n = format_msg(msg, sizeof(msg), fmt, ap);
	if (repeated > 0)
		n = append_fmt(msg, sizeof(msg), n, " repeated=%lu", repeated);
	if (*tail)
		n = append_fmt(msg, sizeof(msg), n, "%s", tail);
	emit_locked(level, msg, n);
	return 1;
}

void hive_log_complain_interval(int seconds)
{
	pthread_mutex_lock(&log_mtx);
	complain_interval_s = seconds < 0 ? 0 : seconds;
	pthread_mutex_unlock(&log_mtx);
}

int hive_log_complain(const char *key, const char *fmt, ...)
{
	struct complaint **pp, *c;
	uint64_t h = fnv(key ? key : "");
	int64_t now = hive_mono_ms();
	unsigned long repeated = 0;
	va_list ap;
	int written = 0;

	if (!key)
		key = "";
	pthread_mutex_lock(&log_mtx);
	pp = c_slot(key, h);
	if ((c = *pp) != NULL) {
		if (now - c->last_ms < (int64_t)complain_interval_s * 1000) {
			c->suppressed++;
			c_unlink_age(c);
			c_push_newest(c);
			goto out;
		}
		repeated = c->suppressed;
		c->suppressed = 0;
		c->last_ms = now;
		c_unlink_age(c);
		c_push_newest(c);
	} else {
		if (complaints_n >= COMPLAIN_MAX && c_oldest) {
			c_remove(c_oldest);
			pp = c_slot(key, h);
		}
		c = calloc(1, sizeof(*c));
		if (c && (c->key = strdup(key)) == NULL) {
			free(c);
			c = NULL;
		}
		if (c) {
			c->hash = h;
			c->last_ms = now;
			c->next = NULL;
			*pp = c;
			c_push_newest(c);
			complaints_n++;
		}
	}
	va_start(ap, fmt);
	written = emit_repeated(HIVE_LOG_WARN, repeated, "", fmt, ap);
	va_end(ap);
out:
	pthread_mutex_unlock(&log_mtx);
	return written;
}

int hive_log_recovered(const char *key, const char *fmt, ...)
{
	struct complaint *c;
	unsigned long repeated;
	va_list ap;
	int written = 0;

	if (!key)
		key = "";
	pthread_mutex_lock(&log_mtx);
	c = *c_slot(key, fnv(key));
	if (!c)
		goto out;
	repeated = c->suppressed;
	c_remove(c);
	va_start(ap, fmt);
	written = emit_repeated(HIVE_LOG_INFO, repeated, " recovered=1", fmt, ap);
	va_end(ap);
out:
	pthread_mutex_unlock(&log_mtx);
	return written;
}

/* ---------------------------------------------------------------- quoting */

const char *hive_log_quote(const char *s, char *buf, size_t len)
{
	const unsigned char *u;
	size_t p = 0;
	bool plain = true;

	if (len == 0)
		return buf;
	if (!s)
		s = "";
	for (u = (const unsigned char *)s; *u; u++) {
		if (*u <= ' ' || *u == '"' || *u == '=' || *u == 0x7f) {
			plain = false;
			break;
		}
	}
	if (plain && *s) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	if (len < 3) {
		buf[0] = '\0';
		return buf;
	}
	buf[p++] = '"';
	for (u = (const unsigned char *)s; *u; u++) {
		char esc[5];
		size_t m;

		switch (*u) {
		case '"':  memcpy(esc, "\\\"", 3); break;
		case '\\': memcpy(esc, "\\\\", 3); break;
		case '\n': memcpy(esc, "\\n", 3); break;
		case '\r': memcpy(esc, "\\r", 3); break;
		case '\t': memcpy(esc, "\\t", 3); break;
		default:
			if (*u < 0x20 || *u == 0x7f)
				snprintf(esc, sizeof(esc), "\\x%02x", *u);
			else {
				esc[0] = (char)*u;
				esc[1] = '\0';
			}
		}
		m = strlen(esc);
		if (p + m + 2 > len)  /* room for the closing quote and NUL */
			break;
		memcpy(buf + p, esc, m);
		p += m;
	}
	buf[p++] = '"';
	buf[p] = '\0';
	return buf;
}
