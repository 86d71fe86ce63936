/* log — one line per event, "<daemon>[pid] LEVEL event key=value ...".
 *
 * Lines go to stderr (or the stream given to hive_log_init). Strings
 * registered with hive_log_secret() are replaced by "<secret>" in every line,
 * so an API key or password that slips into a message never reaches the log.
 * hive_log_complain() rate-limits a repeating per-miner error (one miner that
 * is down must not flood the log) and hive_log_recovered() says once that it
 * is over.
 */
#ifndef HIVE_LOG_H
#define HIVE_LOG_H

#include <stdio.h>

enum hive_log_level {
	HIVE_LOG_DEBUG,
	HIVE_LOG_INFO,
	HIVE_LOG_WARN,
	HIVE_LOG_ERROR,
};

/* Sets the daemon name used in the prefix, the threshold and the stream
 * (NULL: stderr). May be called again (a reload changes the level). */
void hive_log_init(const char *daemon, enum hive_log_level level, FILE *out);
void hive_log_set_level(enum hive_log_level level);
enum hive_log_level hive_log_get_level(void);

/* "debug", "info", "warn"/"warning", "error" → 0; anything else → -1. */
int hive_log_level_parse(const char *name, enum hive_log_level *out);
const char *hive_log_level_name(enum hive_log_level level);

/* Never print this string (copied; empty strings ignored). Thread-safe. */
void hive_log_secret(const char *secret);
void hive_log_forget_secret(const char *secret);

/* fmt is "event key=value ..."; values with spaces should be quoted by the
 * caller (hive_log_quote helps). Thread-safe; one write(2) per line. */
void hive_log(enum hive_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Like hive_log, with " errno=<n> err=\"<strerror>\"" appended. */
void hive_log_errno(enum hive_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) hive_log(HIVE_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  hive_log(HIVE_LOG_INFO, __VA_ARGS__)
#define log_warnx(...) hive_log(HIVE_LOG_WARN, __VA_ARGS__)
#define log_warn(...)  hive_log_errno(HIVE_LOG_WARN, __VA_ARGS__)
#define log_errx(...)  hive_log(HIVE_LOG_ERROR, __VA_ARGS__)

/* Repeating-error limiter keyed by a string (e.g. "10:aa:..:ff status").
 * The first complaint for a key is logged at WARN; repeats within
 * `interval_s` (hive_log_complain_interval, default 300 s) are counted and
 * summarised ("repeated=N") on the next logged line. Returns 1 when the line
 * was written, 0 when it was suppressed. */
int hive_log_complain(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* If `key` has complained, logs fmt at INFO with " recovered=1" and forgets
 * the key; otherwise does nothing. Returns 1 when a line was written. */
int hive_log_recovered(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void hive_log_complain_interval(int seconds);

/* Writes `s` into buf as a log value: unchanged when it has no space, quote,
 * '=' or control character, else double-quoted with escapes. Returns buf. */
const char *hive_log_quote(const char *s, char *buf, size_t len);

#endif
