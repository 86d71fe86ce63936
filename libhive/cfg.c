/* cfg — see hive/cfg.h and docs/config.md.
 *
 * One table lists every key: its JSON path, where it lives in struct
 * hive_cfg, its type and its limits. Parsing walks the JSON object against
 * the table (so an unknown key anywhere is noticed), validation walks the
 * table. The environment is applied after the file and each value it sets is
 * checked on its own, so a bad variable is named as such.
 */
#include "hive/cfg.h"
#include "hive/bus.h"
#include "hive/json.h"
#include "hive/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_FILE_MAX (1024 * 1024)  /* a config larger than this is a mistake */
#define MIB (1024LL * 1024)

enum key_type { T_INT, T_LLONG, T_SIZE, T_NUM, T_STR, T_BOOL, T_ENUM, T_SUBNETS, T_SOURCE,
		T_RULES, T_CHANNELS };
enum key_check { C_NONE, C_NONEMPTY, C_LEVEL, C_URL, C_ADDR, C_TOKEN };

struct key {
	const char *path;
	enum key_type type;
	size_t off;
	size_t size;             /* T_STR: buffer size */
	long long min, max;      /* T_INT, T_LLONG, T_SIZE, T_NUM */
	enum key_check check;
	const char *const *names; /* T_ENUM: the names, by value; NULL-terminated */
};

#define F(field) offsetof(struct hive_cfg, field)
#define INT(p, field, lo, hi) { p, T_INT, F(field), sizeof(int), lo, hi, C_NONE, NULL }
#define SIZE(p, field, lo, hi) { p, T_SIZE, F(field), sizeof(size_t), lo, hi, C_NONE, NULL }
#define STR(p, field, chk) { p, T_STR, F(field), sizeof(((struct hive_cfg *)0)->field), 0, 0, chk, NULL }
#define BOOL(p, field) { p, T_BOOL, F(field), sizeof(bool), 0, 0, C_NONE, NULL }
#define LLONG(p, field, lo, hi) { p, T_LLONG, F(field), sizeof(long long), lo, hi, C_NONE, NULL }
#define NUM(p, field, lo, hi) { p, T_NUM, F(field), sizeof(double), lo, hi, C_NONE, NULL }
#define ENUM(p, field, list) { p, T_ENUM, F(field), sizeof(int), 0, 0, C_NONE, list }

static const char *const power_modes[] = { "off", "dry_run", "on", NULL };
static const char *const power_fallbacks[] = { "hold", "fixed", "minimum", NULL };
#define WATTS_MAX 1000000000000LL    /* a terawatt: anything above is a typo */

static const struct key keys[] = {
	STR("log_level", log_level, C_LEVEL),

	STR("database.path", database.path, C_NONEMPTY),
	INT("database.batch_max", database.batch_max, 1, 100000),
	INT("database.batch_ms", database.batch_ms, 1, 60000),
	STR("database.secrets_key_file", database.secrets_key_file, C_NONE),

	{ "network.subnets", T_SUBNETS, F(network.subnets), 0, 0, 0, C_NONE, NULL },
	INT("network.port", network.port, 1, 65535),
	INT("network.miner_probe_timeout_ms", network.miner_probe_timeout_ms, 1, 60000),
	INT("network.probe_concurrency", network.probe_concurrency, 1, 65535),
	INT("network.http_timeout_ms", network.http_timeout_ms, 1, 300000),
	INT("network.http_concurrency", network.http_concurrency, 1, 16384),
	STR("network.default_password", network.default_password, C_NONE),
	NUM("network.sweep_drop_confirm_share", network.sweep_drop_confirm_share, 0, 1),
	INT("network.max_clock_skew_seconds", network.max_clock_skew_seconds, 1, 86400),
	BOOL("bus.require_job_nonce", bus.require_job_nonce),

	INT("intervals.discovery_seconds", intervals.discovery_seconds, 1, 86400),
	INT("intervals.status_seconds", intervals.status_seconds, 1, 86400),
	INT("intervals.telemetry_seconds", intervals.telemetry_seconds, 1, 86400),
	INT("intervals.heartbeat_seconds", intervals.heartbeat_seconds, 1, 3600),

	STR("http.addr", http.addr, C_ADDR),
	STR("http.web_root", http.web_root, C_NONEMPTY),
	SIZE("http.max_body_bytes", http.max_body_bytes, 1, 64 * MIB),
	STR("http.auth.token", http.auth.token, C_TOKEN),
	STR("http.auth.token_file", http.auth.token_file, C_NONEMPTY),
	BOOL("http.auth.open_reads", http.auth.open_reads),
	INT("http.threads", http.threads, 1, 4096),
	INT("http.request_timeout_ms", http.request_timeout_ms, 100, 600000),

	INT("health.failing_seconds", health.failing_seconds, 1, 3600),
	STR("health.state_dir", health.state_dir, C_NONE),

	STR("bus.events", bus.events, C_URL),
	STR("bus.jobs_status", bus.jobs_status, C_URL),
	STR("bus.jobs_telemetry", bus.jobs_telemetry, C_URL),
	STR("bus.jobs_control", bus.jobs_control, C_URL),
	STR("bus.jobs_plant", bus.jobs_plant, C_URL),
	STR("bus.control", bus.control, C_URL),
	STR("bus.feed", bus.feed, C_URL),
	STR("bus.discovery_events", bus.discovery_events, C_URL),
	STR("bus.discovery_control", bus.discovery_control, C_URL),
	/* nng refuses socket buffers deeper than 8192 messages. */
	INT("bus.sendbuf", bus.sendbuf, 1, 8192),
	INT("bus.recvbuf", bus.recvbuf, 1, 8192),
	SIZE("bus.max_message_bytes", bus.max_message_bytes, 1024, 256 * MIB),
	STR("bus.tls.ca_file", bus.tls.ca_file, C_NONE),
	STR("bus.tls.cert_file", bus.tls.cert_file, C_NONE),
	STR("bus.tls.key_file", bus.tls.key_file, C_NONE),
	STR("bus.tls.discovery_ca_file", bus.tls.discovery_ca_file, C_NONE),

	INT("retention.status_days", retention.status_days, 1, 36500),
	INT("retention.telemetry_days", retention.telemetry_days, 1, 36500),
	INT("retention.audit_days", retention.audit_days, 1, 36500),
	INT("retention.power_days", retention.power_days, 1, 36500),
	INT("retention.prune_batch", retention.prune_batch, 1, 1000000),
	INT("retention.status_raw_hours", retention.status_raw_hours, 1, 8760),
	INT("retention.telemetry_raw_hours", retention.telemetry_raw_hours, 1, 8760),
	INT("retention.minute_days", retention.minute_days, 1, 36500),
	/* 0 is no cap; a petabyte is beyond any farm's database. */
	LLONG("retention.max_bytes", retention.max_bytes, 0, 1LL << 50),

	BOOL("scheduler.managed_only", scheduler.managed_only),
	INT("scheduler.job_timeout_seconds", scheduler.job_timeout_seconds, 1, 3600),

	INT("control.action_timeout_seconds", control.action_timeout_seconds, 5, 86400),
	INT("control.job_timeout_seconds", control.job_timeout_seconds, 1, 600),
	INT("control.max_corrections_per_hour", control.max_corrections_per_hour, 1, 1000),

	ENUM("power.mode", power.mode, power_modes),
	NUM("power.margin_pct", power.margin_pct, 0, 90),
	INT("power.interval_seconds", power.interval_seconds, 1, 3600),
	INT("power.stale_seconds", power.stale_seconds, 2, 86400),
	INT("power.raise_after_seconds", power.raise_after_seconds, 0, 86400),
	BOOL("power.allow_pause", power.allow_pause),
	LLONG("power.max_w", power.max_w, 0, WATTS_MAX),
	ENUM("power.fallback", power.fallback, power_fallbacks),
	LLONG("power.fallback_w", power.fallback_w, 0, WATTS_MAX),
	LLONG("power.deadband_w", power.deadband_w, 0, WATTS_MAX),
	INT("power.min_raise_interval_seconds", power.min_raise_interval_seconds, 0, 86400),
	NUM("power.raise_step_pct", power.raise_step_pct, 1, 100),
	NUM("power.max_jump_pct", power.max_jump_pct, 1, 1000),
	{ "power.source", T_SOURCE, F(power.source), 0, 0, 0, C_NONE, NULL },

	BOOL("alerts.enabled", alerts.enabled),
	INT("alerts.evaluate_seconds", alerts.evaluate_seconds, 1, 3600),
	INT("alerts.group_seconds", alerts.group_seconds, 0, 3600),
	INT("alerts.resolve_seconds", alerts.resolve_seconds, 0, 86400),
	INT("alerts.retry_max_seconds", alerts.retry_max_seconds, 1, 86400),
	INT("alerts.give_up_hours", alerts.give_up_hours, 1, 8760),
	{ "alerts.rules", T_RULES, F(alerts.rules), 0, 0, 0, C_NONE, NULL },
	{ "alerts.channels", T_CHANNELS, F(alerts.channels), 0, 0, 0, C_NONE, NULL },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct {
	const char *var;
	const char *key;
} env_keys[] = {
	{ "POWERHIVE_LOG_LEVEL", "log_level" },
	{ "POWERHIVE_HTTP_ADDR", "http.addr" },
	{ "POWERHIVE_API_TOKEN", "http.auth.token" },
	{ "POWERHIVE_DATABASE", "database.path" },
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Always double-quoted, control characters escaped, long values cut: a value
 * quoted in an error message must stay on one readable line. */
static const char *quoted(const char *s, char *buf, size_t len)
{
	size_t p = 0;

	buf[p++] = '"';
	for (; *s && p + 8 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[p++] = '\\';
			buf[p++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			p += (size_t)snprintf(buf + p, len - p, "\\x%02x", c);
		} else {
			buf[p++] = (char)c;
		}
	}
	if (*s) {
		memcpy(buf + p, "...", 3);
		p += 3;
	}
	buf[p++] = '"';
	buf[p] = '\0';
	return buf;
}

static const struct key *key_find(const char *path)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].path, path) == 0)
			return &keys[i];
	return NULL;
}

static bool is_section(const char *path)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < NKEYS; i++)
		if (strncmp(keys[i].path, path, n) == 0 && keys[i].path[n] == '.')
			return true;
	return false;
}

static void *field(struct hive_cfg *cfg, const struct key *k)
{
	return (char *)cfg + k->off;
}

static const void *cfield(const struct hive_cfg *cfg, const struct key *k)
{
	return (const char *)cfg + k->off;
}

/* ---------------------------------------------------------------- subnets */

/* Strict dotted quad: four decimal octets, no leading zeros, no signs. */
static int parse_ipv4(const char *s, size_t n, uint32_t *out)
{
	uint32_t addr = 0;
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start = i;

		while (i < n && isdigit((unsigned char)s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return -1;
		addr = addr << 8 | v;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
	}
	if (i != n)
		return -1;
	*out = addr;
	return 0;
}

char *hive_ipv4_format(uint32_t addr, char out[HIVE_IPV4_LEN])
{
	snprintf(out, HIVE_IPV4_LEN, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255,
		 (addr >> 8) & 255, addr & 255);
	return out;
}

static uint32_t prefix_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

/* Like hive_subnet_parse but says why: -1 malformed, -2 host bits set. */
static int subnet_parse(const char *text, struct hive_subnet *out)
{
	const char *slash = strchr(text, '/');
	const char *p;
	unsigned prefix = 0;
	uint32_t addr;
	char ip[HIVE_IPV4_LEN];

	if (!slash || parse_ipv4(text, (size_t)(slash - text), &addr) == -1)
		return -1;
	p = slash + 1;
	if (!*p || strlen(p) > 2 || (p[0] == '0' && p[1]))
		return -1;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	if (prefix > 32)
		return -1;
	if (addr & ~prefix_mask(prefix))
		return -2;
	out->network = addr;
	out->prefix = (uint8_t)prefix;
	snprintf(out->text, sizeof(out->text), "%s/%u", hive_ipv4_format(addr, ip), prefix);
	return 0;
}

int hive_subnet_parse(const char *text, struct hive_subnet *out)
{
	struct hive_subnet s;

	if (!text || !out || subnet_parse(text, &s) != 0)
		return -1;
	*out = s;
	return 0;
}

bool hive_subnet_contains(const struct hive_subnet *s, uint32_t addr_host_order)
{
	uint32_t mask = prefix_mask(s->prefix > 32 ? 32 : s->prefix);

	return (addr_host_order & mask) == (s->network & mask);
}

uint64_t hive_subnet_hosts(const struct hive_subnet *s)
{
	unsigned prefix = s->prefix > 32 ? 32 : s->prefix;
	uint64_t all = (uint64_t)1 << (32 - prefix);

	/* /31 point-to-point and /32 single hosts have no network/broadcast. */
	return prefix >= 31 ? all : all - 2;
}

static int parse_subnets(struct hive_cfg *cfg, const json_t *arr, const char *file,
			 char *err, size_t errlen)
{
	struct hive_subnet *list = NULL;
	size_t n = json_array_size(arr), i;
	json_t *v;
	char q[96];

	if (n > 0 && (list = calloc(n, sizeof(*list))) == NULL)
		return fail(err, errlen, "%s: network.subnets: out of memory", file);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			fail(err, errlen, "%s: network.subnets[%zu]: expected string, got %s", file, i,
			     hive_json_type_name(v));
			goto fail;
		}
		switch (subnet_parse(json_string_value(v), &list[i])) {
		case -1:
			fail(err, errlen, "%s: network.subnets[%zu]: %s is not a CIDR (a.b.c.d/n)",
			     file, i, quoted(json_string_value(v), q, sizeof(q)));
			goto fail;
		case -2:
			fail(err, errlen, "%s: network.subnets[%zu]: %s has host bits set", file, i,
			     quoted(json_string_value(v), q, sizeof(q)));
			goto fail;
		}
	}
	free(cfg->network.subnets);
	cfg->network.subnets = list;
	cfg->network.n_subnets = n;
	return 0;
fail:
	free(list);
	return -1;
}

/* ---------------------------------------------------------------- alerts */

#define FOR_MAX (7 * 86400)     /* a week: a longer wait is no alert */

/* The built-in rules: name, defaults (docs/alerts.md) and the range of
 * the threshold (has_threshold false: the rule has none). */
static const struct rule_spec {
	const char *name;
	int for_seconds;
	bool has_threshold;
	double threshold, lo, hi;
} rule_specs[HIVE_ALERT_RULES] = {
	[HIVE_ALERT_MINER_OFFLINE] = { "miner_offline", 120, false, NAN, 0, 0 },
	[HIVE_ALERT_CHIP_TEMP_HIGH] = { "chip_temp_high", 60, true, 90, 20, 200 },     /* °C */
	[HIVE_ALERT_HASHRATE_LOW] = { "hashrate_low", 600, true, 70, 1, 100 },        /* % of the preset's TH */
	[HIVE_ALERT_FAN_STOPPED] = { "fan_stopped", 60, true, 0, 0, 100000 },        /* rpm at or under */
	[HIVE_ALERT_CHAIN_DEAD] = { "chain_dead", 120, false, NAN, 0, 0 },
	[HIVE_ALERT_RED_CHIPS] = { "red_chips", 300, true, 10, 0, 100000 },          /* red chips above */
	[HIVE_ALERT_HW_ERRORS_HIGH] = { "hw_errors_high", 300, true, 100, 0, 1e9 },   /* per minute */
	[HIVE_ALERT_PRESET_CONFLICT] = { "preset_conflict", 0, false, NAN, 0, 0 },
	[HIVE_ALERT_ACTION_FAILED] = { "action_failed", 0, true, 60, 1, 10080 },     /* minutes shown */
	[HIVE_ALERT_POWER_OVER_AVAILABLE] = { "power_over_available", 30, true, 0, 0, 100 }, /* % over */
	[HIVE_ALERT_FEED_STALE] = { "feed_stale", 0, false, NAN, 0, 0 },
	[HIVE_ALERT_POWER_FALLBACK] = { "power_fallback", 0, false, NAN, 0, 0 },
	[HIVE_ALERT_DAEMON_MISSING] = { "daemon_missing", 60, false, NAN, 0, 0 },
	[HIVE_ALERT_BUS_LOSS] = { "bus_loss", 0, true, 0, 0, 1e9 },                  /* events lost a minute, above */
	[HIVE_ALERT_DB_WRITE_FAILED] = { "db_write_failed", 0, false, NAN, 0, 0 },
	[HIVE_ALERT_DISK_LOW] = { "disk_low", 0, true, 5, 0, 100 },                  /* % free, at or under */
};

static const char *const channel_kinds[] = { "webhook", "slack", "telegram", "email", NULL };

const char *hive_alert_rule_name(int rule)
{
	return rule >= 0 && rule < HIVE_ALERT_RULES ? rule_specs[rule].name : NULL;
}

int hive_alert_rule_parse(const char *name)
{
	for (int i = 0; name && i < HIVE_ALERT_RULES; i++)
		if (strcmp(name, rule_specs[i].name) == 0)
			return i;
	return -1;
}

static void rules_defaults(struct hive_cfg *cfg)
{
	for (int i = 0; i < HIVE_ALERT_RULES; i++) {
		struct hive_alert_rule *r = &cfg->alerts.rules[i];

		r->enabled = true;
		r->for_seconds = rule_specs[i].for_seconds;
		r->threshold = rule_specs[i].threshold;
		r->models = NULL;
		r->n_models = 0;
	}
}

static void rules_free(struct hive_cfg *cfg)
{
	for (int i = 0; i < HIVE_ALERT_RULES; i++) {
		free(cfg->alerts.rules[i].models);
		cfg->alerts.rules[i].models = NULL;
		cfg->alerts.rules[i].n_models = 0;
	}
	free(cfg->alerts.channels);
	cfg->alerts.channels = NULL;
	cfg->alerts.n_channels = 0;
}

/* A threshold read from v for rule i at path; -1 with the message. */
static int read_threshold(int i, const json_t *v, double *out, const char *file,
			  const char *path, char *err, size_t errlen)
{
	const struct rule_spec *sp = &rule_specs[i];
	double d;

	if (!sp->has_threshold)
		return fail(err, errlen, "%s: %s: rule %s has no threshold", file, path, sp->name);
	if (!json_is_number(v))
		return fail(err, errlen, "%s: %s: expected number, got %s", file, path,
			    hive_json_type_name(v));
	d = json_number_value(v);
	if (!(d >= sp->lo && d <= sp->hi))
		return fail(err, errlen, "%s: %s: %g is out of range (%g..%g)", file, path, d,
			    sp->lo, sp->hi);
	*out = d;
	return 0;
}

static int read_for(const json_t *v, int *out, const char *file, const char *path, char *err,
		    size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v))
		return fail(err, errlen, "%s: %s: expected integer, got %s", file, path,
			    hive_json_type_name(v));
	n = json_integer_value(v);
	if (n < 0 || n > FOR_MAX)
		return fail(err, errlen, "%s: %s: %lld is out of range (0..%d)", file, path,
			    (long long)n, FOR_MAX);
	*out = (int)n;
	return 0;
}

static void warn_unknown(const char *file, const char *path)
{
	char qf[300], q[300];

	log_warnx("config unknown key file=%s key=%s", hive_log_quote(file, qf, sizeof(qf)),
		  hive_log_quote(path, q, sizeof(q)));
}

/* alerts.rules.<rule>.models: {"<alias>": {"threshold": n, "for_seconds": n}} */
static int parse_overrides(struct hive_alert_rule *r, int i, const json_t *obj,
			   const char *file, const char *prefix, char *err, size_t errlen)
{
	struct hive_alert_override *list = NULL;
	size_t n = json_object_size(obj), k = 0;
	const char *alias, *key;
	json_t *o, *v;
	char path[384];

	if (n > 0 && (list = calloc(n, sizeof(*list))) == NULL)
		return fail(err, errlen, "%s: %s: out of memory", file, prefix);
	json_object_foreach((json_t *)obj, alias, o) {
		struct hive_alert_override *ov = &list[k++];

		snprintf(path, sizeof(path), "%.200s.%.80s", prefix, alias);
		if (!*alias || strlen(alias) >= sizeof(ov->model)) {
			fail(err, errlen, "%s: %s: a model alias of 1 to %zu characters", file, path,
			     sizeof(ov->model) - 1);
			goto fail;
		}
		if (!json_is_object(o)) {
			fail(err, errlen, "%s: %s: expected object, got %s", file, path,
			     hive_json_type_name(o));
			goto fail;
		}
		snprintf(ov->model, sizeof(ov->model), "%s", alias);
		ov->threshold = NAN;    /* the rule's */
		ov->for_seconds = -1;   /* the rule's */
		json_object_foreach(o, key, v) {
			snprintf(path, sizeof(path), "%.200s.%.80s.%.80s", prefix, alias, key);
			if (json_is_null(v))
				continue;
			if (strcmp(key, "threshold") == 0) {
				if (read_threshold(i, v, &ov->threshold, file, path, err, errlen) < 0)
					goto fail;
			} else if (strcmp(key, "for_seconds") == 0) {
				if (read_for(v, &ov->for_seconds, file, path, err, errlen) < 0)
					goto fail;
			} else {
				warn_unknown(file, path);
			}
		}
	}
	free(r->models);
	r->models = list;
	r->n_models = n;
	return 0;
fail:
	free(list);
	return -1;
}

static int parse_rules(struct hive_cfg *cfg, const json_t *obj, const char *file, char *err,
		       size_t errlen)
{
	const char *name, *key;
	json_t *ro, *v;
	char path[384];

	json_object_foreach((json_t *)obj, name, ro) {
		int i = hive_alert_rule_parse(name);
		struct hive_alert_rule *r;

		snprintf(path, sizeof(path), "alerts.rules.%.200s", name);
		if (i < 0) {
			warn_unknown(file, path);
			continue;
		}
		if (json_is_null(ro))
			continue;
		if (!json_is_object(ro))
			return fail(err, errlen, "%s: %s: expected object, got %s", file, path,
				    hive_json_type_name(ro));
		r = &cfg->alerts.rules[i];
		json_object_foreach(ro, key, v) {
			snprintf(path, sizeof(path), "alerts.rules.%.100s.%.100s", name, key);
			if (json_is_null(v))
				continue;
			if (strcmp(key, "enabled") == 0) {
				if (!json_is_boolean(v))
					return fail(err, errlen, "%s: %s: expected true or false, got %s",
						    file, path, hive_json_type_name(v));
				r->enabled = json_is_true(v);
			} else if (strcmp(key, "for_seconds") == 0) {
				if (read_for(v, &r->for_seconds, file, path, err, errlen) < 0)
					return -1;
			} else if (strcmp(key, "threshold") == 0) {
				if (read_threshold(i, v, &r->threshold, file, path, err, errlen) < 0)
					return -1;
			} else if (strcmp(key, "models") == 0) {
				if (!json_is_object(v))
					return fail(err, errlen, "%s: %s: expected object, got %s", file,
						    path, hive_json_type_name(v));
				if (parse_overrides(r, i, v, file, path, err, errlen) < 0)
					return -1;
			} else {
				warn_unknown(file, path);
			}
		}
	}
	return 0;
}

/* alerts.channels: [{"name", "kind", "url", "secret", "chat_id", "smtp_url",
 * "from", "to"}]. Values are not quoted in messages: urls and secrets may
 * carry a token. */
static int parse_channels(struct hive_cfg *cfg, const json_t *arr, const char *file, char *err,
			  size_t errlen)
{
	static const struct {
		const char *key;
		size_t off, size;
	} fields[] = {
#define CH(f) { #f, offsetof(struct hive_alert_channel, f), sizeof(((struct hive_alert_channel *)0)->f) }
		CH(name), CH(url), CH(secret), CH(chat_id), CH(smtp_url), CH(from), CH(to),
#undef CH
	};
	struct hive_alert_channel *list = NULL;
	size_t n = json_array_size(arr), i;
	const char *key;
	json_t *o, *v;
	char path[384];

	if (n > 0 && (list = calloc(n, sizeof(*list))) == NULL)
		return fail(err, errlen, "%s: alerts.channels: out of memory", file);
	json_array_foreach(arr, i, o) {
		struct hive_alert_channel *c = &list[i];

		c->kind = -1;
		if (!json_is_object(o)) {
			fail(err, errlen, "%s: alerts.channels[%zu]: expected object, got %s", file, i,
			     hive_json_type_name(o));
			goto fail;
		}
		json_object_foreach(o, key, v) {
			size_t f;

			snprintf(path, sizeof(path), "alerts.channels[%zu].%.200s", i, key);
			if (json_is_null(v))
				continue;
			if (strcmp(key, "kind") == 0) {
				const char *s = json_string_value(v);

				for (int k = 0; s && channel_kinds[k]; k++)
					if (strcmp(s, channel_kinds[k]) == 0)
						c->kind = k;
				if (c->kind < 0) {
					fail(err, errlen, "%s: %s: expected one of webhook, slack, telegram,"
					     " email", file, path);
					goto fail;
				}
				continue;
			}
			for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
				if (strcmp(key, fields[f].key) == 0)
					break;
			if (f == sizeof(fields) / sizeof(fields[0])) {
				warn_unknown(file, path);
				continue;
			}
			if (!json_is_string(v)) {
				fail(err, errlen, "%s: %s: expected string, got %s", file, path,
				     hive_json_type_name(v));
				goto fail;
			}
			if (json_string_length(v) >= fields[f].size ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				fail(err, errlen, "%s: %s: longer than %zu characters (or holds a NUL)",
				     file, path, fields[f].size - 1);
				goto fail;
			}
			memcpy((char *)c + fields[f].off, json_string_value(v),
			       json_string_length(v) + 1);
		}
		if (c->kind < 0) {
			fail(err, errlen, "%s: alerts.channels[%zu].kind: missing (webhook, slack,"
			     " telegram, email)", file, i);
			goto fail;
		}
	}
	free(cfg->alerts.channels);
	cfg->alerts.channels = list;
	cfg->alerts.n_channels = n;
	return 0;
fail:
	free(list);
	return -1;
}

/* A URL of one of the schemes, with a host, no spaces or controls. */
static bool url_with_scheme(const char *url, const char *const schemes[])
{
	const char *rest = NULL;

	for (int i = 0; schemes[i] && !rest; i++) {
		size_t n = strlen(schemes[i]);

		if (strncmp(url, schemes[i], n) == 0)
			rest = url + n;
	}
	if (!rest || !*rest || *rest == '/')
		return false;
	for (; *rest; rest++)
		if ((unsigned char)*rest <= ' ' || *rest == 0x7f)
			return false;
	return true;
}

static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* What the alerts section needs beyond each value's type and range. */
static int check_alerts(const struct hive_cfg *cfg, const char *file, char *err, size_t errlen)
{
	static const char *const web[] = { "http://", "https://", NULL };
	static const char *const smtp[] = { "smtp://", "smtps://", NULL };
	char q[96];

	if (cfg->alerts.retry_max_seconds < 1 || cfg->alerts.give_up_hours < 1)
		return fail(err, errlen, "%s: alerts: retry_max_seconds and give_up_hours must be"
			    " at least 1", file);
	for (int i = 0; i < HIVE_ALERT_RULES; i++) {
		const struct hive_alert_rule *r = &cfg->alerts.rules[i];
		const struct rule_spec *sp = &rule_specs[i];

		if (r->for_seconds < 0 || r->for_seconds > FOR_MAX)
			return fail(err, errlen, "%s: alerts.rules.%s.for_seconds: %d is out of range"
				    " (0..%d)", file, sp->name, r->for_seconds, FOR_MAX);
		if (sp->has_threshold && !(r->threshold >= sp->lo && r->threshold <= sp->hi))
			return fail(err, errlen, "%s: alerts.rules.%s.threshold: %g is out of range"
				    " (%g..%g)", file, sp->name, r->threshold, sp->lo, sp->hi);
	}
	for (size_t i = 0; i < cfg->alerts.n_channels; i++) {
		const struct hive_alert_channel *c = &cfg->alerts.channels[i];
		const char *kind = c->kind >= 0 && c->kind <= HIVE_CHANNEL_EMAIL
			? channel_kinds[c->kind] : NULL;

		if (!kind)
			return fail(err, errlen, "%s: alerts.channels[%zu].kind: expected one of"
				    " webhook, slack, telegram, email", file, i);
		if (!name_ok(c->name))
			return fail(err, errlen, "%s: alerts.channels[%zu].name: %s must be 1 to %zu"
				    " of A-Z a-z 0-9 . _ -", file, i, quoted(c->name, q, sizeof(q)),
				    sizeof(c->name) - 1);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->name, cfg->alerts.channels[j].name) == 0)
				return fail(err, errlen, "%s: alerts.channels[%zu].name: %s is also"
					    " alerts.channels[%zu]", file, i, quoted(c->name, q, sizeof(q)),
					    j);
		if (c->kind == HIVE_CHANNEL_EMAIL) {
			if (!url_with_scheme(c->smtp_url, smtp))
				return fail(err, errlen, "%s: alerts.channels[%zu].smtp_url: an email"
					    " channel needs smtp://host[:port] or smtps://host[:port]",
					    file, i);
			if (!strchr(c->from, '@'))
				return fail(err, errlen, "%s: alerts.channels[%zu].from: an email"
					    " channel needs a sender address", file, i);
			if (!strchr(c->to, '@'))
				return fail(err, errlen, "%s: alerts.channels[%zu].to: an email channel"
					    " needs one or more addresses, comma separated", file, i);
			continue;
		}
		/* The URL itself is never quoted: Slack and Telegram carry a token in it. */
		if (!url_with_scheme(c->url, web))
			return fail(err, errlen, "%s: alerts.channels[%zu].url: a %s channel needs an"
				    " http:// or https:// URL", file, i, kind);
		if (c->kind == HIVE_CHANNEL_TELEGRAM && !c->chat_id[0])
			return fail(err, errlen, "%s: alerts.channels[%zu].chat_id: a telegram"
				    " channel needs the chat id", file, i);
	}
	return 0;
}

/* ---------------------------------------------------------------- checks */

int hive_cfg_addr_ok(const char *addr)
{
	const char *colon, *host_end, *p;
	long port = 0;

	if (!addr || !*addr)
		return -1;
	if (addr[0] == '[') {
		/* "[v6]:port" */
		host_end = strchr(addr, ']');
		if (!host_end || host_end == addr + 1 || host_end[1] != ':')
			return -1;
		for (p = addr + 1; p < host_end; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return -1;
		colon = host_end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || colon == addr)
			return -1;
		for (p = addr; p < colon; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
				return -1;
	}
	p = colon + 1;
	if (!*p || strlen(p) > 5 || *p == '0')
		return -1;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		port = port * 10 + (*p - '0');
	}
	return port >= 1 && port <= 65535 ? 0 : -1;
}

/* Plain TCP carries the bus in the clear to anybody who connects: it is
 * allowed on loopback only (127.0.0.0/8, ::1, localhost). */
static bool tcp_loopback(const char *hostport)
{
	size_t n = strcspn(hostport, ":");

	if (strncmp(hostport, "[::1]:", 6) == 0 ||
	    (n == 9 && strncmp(hostport, "localhost", 9) == 0))
		return true;
	if (strncmp(hostport, "127.", 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (!isdigit((unsigned char)hostport[i]) && hostport[i] != '.')
			return false;
	return true;
}

int hive_cfg_url_ok(const char *url)
{
	if (!url || strlen(url) >= HIVE_CFG_URL_MAX)
		return -1;
	if (strncmp(url, "tcp://", 6) == 0) {
		if (hive_cfg_addr_ok(url + 6) == -1 || !tcp_loopback(url + 6))
			return -1;
	} else if (strncmp(url, "tls+tcp://", 10) == 0) {
		if (hive_cfg_addr_ok(url + 10) == -1)
			return -1;
	} else if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0) {
		const char *rest = strstr(url, "://") + 3;

		if (!*rest)
			return -1;
		for (; *rest; rest++)
			if ((unsigned char)*rest < 0x21 || *rest == 0x7f)
				return -1;
	} else {
		return -1;
	}
	/* The final word is nng's own parser. */
	return hive_bus_url_ok(url);
}

/* One key's value against its limits; the problem goes to buf. */
static int check_key(const struct hive_cfg *cfg, const struct key *k, char *buf, size_t len)
{
	const void *f = cfield(cfg, k);
	char q[96];

	switch (k->type) {
	case T_INT: {
		int v = *(const int *)f;

		if (v < k->min || v > k->max)
			return fail(buf, len, "%d is out of range (%lld..%lld)", v, k->min, k->max);
		return 0;
	}
	case T_LLONG: {
		long long v = *(const long long *)f;

		if (v < k->min || v > k->max)
			return fail(buf, len, "%lld is out of range (%lld..%lld)", v, k->min, k->max);
		return 0;
	}
	case T_NUM: {
		double v = *(const double *)f;

		if (!(v >= (double)k->min && v <= (double)k->max))
			return fail(buf, len, "%g is out of range (%lld..%lld)", v, k->min, k->max);
		return 0;
	}
	case T_ENUM:
	case T_SOURCE:
	case T_RULES:
	case T_CHANNELS:
		return 0;   /* checked as read, and by check_alerts */
	case T_SIZE: {
		size_t v = *(const size_t *)f;

		if (v < (size_t)k->min || v > (size_t)k->max)
			return fail(buf, len, "%zu is out of range (%lld..%lld)", v, k->min, k->max);
		return 0;
	}
	case T_BOOL:
		return 0;
	case T_SUBNETS:
		for (size_t i = 0; i < cfg->network.n_subnets; i++) {
			const struct hive_subnet *s = &cfg->network.subnets[i];

			if (s->prefix > 32 || (s->network & ~prefix_mask(s->prefix)))
				return fail(buf, len, "[%zu]: %s has host bits set", i,
					    quoted(s->text, q, sizeof(q)));
			if (s->prefix < 8)
				return fail(buf, len,
					    "[%zu]: %s is wider than /8 (a sweep that size is a mistake)",
					    i, quoted(s->text, q, sizeof(q)));
			for (size_t j = 0; j < i; j++) {
				const struct hive_subnet *o = &cfg->network.subnets[j];

				if (hive_subnet_contains(s, o->network) ||
				    hive_subnet_contains(o, s->network))
					return fail(buf, len, "[%zu]: %s overlaps network.subnets[%zu] %s",
						    i, quoted(s->text, q, sizeof(q)), j, o->text);
			}
		}
		return 0;
	case T_STR:
		break;
	}

	const char *s = f;
	switch (k->check) {
	case C_NONE:
		return 0;
	case C_NONEMPTY:
		return *s ? 0 : fail(buf, len, "must not be empty");
	case C_LEVEL:
		if (hive_log_level_parse(s, NULL) == -1)
			return fail(buf, len, "%s is not a log level (debug, info, warn, error)",
				    quoted(s, q, sizeof(q)));
		return 0;
	case C_URL:
		if (strncmp(s, "tcp://", 6) == 0 && hive_cfg_addr_ok(s + 6) == 0 &&
		    !tcp_loopback(s + 6))
			return fail(buf, len,
				    "%s: plain tcp:// is unauthenticated and allowed on loopback "
				    "(127.0.0.0/8) only; use tls+tcp:// with bus.tls.* across hosts, "
				    "or ipc:// on one host", quoted(s, q, sizeof(q)));
		if (hive_cfg_url_ok(s) == -1)
			return fail(buf, len,
				    "%s is not a bus URL (ipc://path, tls+tcp://host:port, "
				    "tcp://127.x.x.x:port or inproc://name)", quoted(s, q, sizeof(q)));
		return 0;
	case C_ADDR:
		if (hive_cfg_addr_ok(s) == -1)
			return fail(buf, len, "%s is not host:port", quoted(s, q, sizeof(q)));
		return 0;
	case C_TOKEN:
		/* Never echo a token. */
		for (; *s; s++)
			if ((unsigned char)*s <= ' ' || *s == 0x7f)
				return fail(buf, len, "contains a space or control character");
		return 0;
	}
	return 0;
}

/* Problems that involve two keys. */
static int check_cross(const struct hive_cfg *cfg, const char *file, char *err, size_t errlen)
{
	static const char *const urls[] = {
		"bus.events", "bus.jobs_status", "bus.jobs_telemetry", "bus.jobs_control",
		"bus.jobs_plant", "bus.control", "bus.feed", "bus.discovery_events",
		"bus.discovery_control",
	};
	char q[96];
	const char *mode = hive_power_mode_name(cfg->power.mode);

	/* Each bus role is its own socket; two on one endpoint cannot both listen. */
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		const char *a = cfield(cfg, key_find(urls[i]));

		for (size_t j = 0; j < i; j++) {
			if (strcmp(a, cfield(cfg, key_find(urls[j]))) == 0)
				return fail(err, errlen, "%s: %s: %s is also %s", file, urls[i],
					    quoted(a, q, sizeof(q)), urls[j]);
		}
	}
	/* A TLS endpoint needs the whole identity; a daemon finds out only
	 * when it opens the socket otherwise. */
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		const char *u = cfield(cfg, key_find(urls[i]));

		if (strncmp(u, "tls+tcp://", 10) == 0 &&
		    (!cfg->bus.tls.ca_file[0] || !cfg->bus.tls.cert_file[0] ||
		     !cfg->bus.tls.key_file[0]))
			return fail(err, errlen, "%s: %s: %s needs bus.tls.ca_file, "
				    "bus.tls.cert_file and bus.tls.key_file (etc/hive-certs makes them)",
				    file, urls[i], quoted(u, q, sizeof(q)));
	}
	/* Unmanaged miners are the balancer's fixed load: it must see them. */
	if (cfg->power.mode != HIVE_POWER_OFF && cfg->scheduler.managed_only)
		return fail(err, errlen,
			    "%s: scheduler.managed_only: cannot be on while power.mode is %s (the "
			    "balancer counts unmanaged miners as fixed load and must poll them)",
			    file, mode);
	if (cfg->power.mode != HIVE_POWER_OFF && cfg->power.source.kind == HIVE_PLANT_NONE)
		return fail(err, errlen, "%s: power.mode: %s needs a power.source", file, mode);
	if (cfg->power.fallback == HIVE_POWER_FIXED && cfg->power.fallback_w <= 0)
		return fail(err, errlen, "%s: power.fallback_w: fallback \"fixed\" needs a power in watts "
			    "above 0", file);
	if (cfg->power.stale_seconds <= cfg->power.interval_seconds)
		return fail(err, errlen, "%s: power.stale_seconds: %d must exceed power.interval_seconds (%d)",
			    file, cfg->power.stale_seconds, cfg->power.interval_seconds);
	return check_alerts(cfg, file, err, errlen);
}

static int validate(const struct hive_cfg *cfg, const char *file, char *err, size_t errlen)
{
	char problem[512];

	for (size_t i = 0; i < NKEYS; i++) {
		if (check_key(cfg, &keys[i], problem, sizeof(problem)) == -1) {
			/* Subnet problems name their index: "network.subnets[2]: ...". */
			return fail(err, errlen, "%s: %s%s%s", file, keys[i].path,
				    keys[i].type == T_SUBNETS ? "" : ": ", problem);
		}
	}
	return check_cross(cfg, file, err, errlen);
}

int hive_cfg_validate(const struct hive_cfg *cfg, char *err, size_t errlen)
{
	return validate(cfg, cfg->source[0] ? cfg->source : "(defaults)", err, errlen);
}

/* ---------------------------------------------------------------- parsing */

void hive_cfg_defaults(struct hive_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->log_level, sizeof(cfg->log_level), "info");

	snprintf(cfg->database.path, sizeof(cfg->database.path), "data/powerhive.db");
	cfg->database.batch_max = 500;
	cfg->database.batch_ms = 200;

	cfg->network.port = 80;
	cfg->network.miner_probe_timeout_ms = 1500;
	cfg->network.probe_concurrency = 2048;
	cfg->network.http_timeout_ms = 5000;
	cfg->network.http_concurrency = 256;
	snprintf(cfg->network.default_password, sizeof(cfg->network.default_password), HIVE_FACTORY_PASSWORD);
	cfg->network.sweep_drop_confirm_share = 0.5;
	cfg->network.max_clock_skew_seconds = 60;
	cfg->bus.require_job_nonce = true;

	cfg->intervals.discovery_seconds = 30;
	cfg->intervals.status_seconds = 15;
	cfg->intervals.telemetry_seconds = 60;
	cfg->intervals.heartbeat_seconds = 5;

	snprintf(cfg->http.addr, sizeof(cfg->http.addr), "127.0.0.1:8080");
	snprintf(cfg->http.web_root, sizeof(cfg->http.web_root), "web");
	cfg->http.max_body_bytes = 65536;
	snprintf(cfg->http.auth.token_file, sizeof(cfg->http.auth.token_file), "data/api-token");
	cfg->http.auth.open_reads = false;
	cfg->http.threads = 256;
	cfg->http.request_timeout_ms = 5000;
	cfg->health.failing_seconds = 30;

	snprintf(cfg->bus.events, sizeof(cfg->bus.events), "ipc://data/bus/events");
	snprintf(cfg->bus.jobs_status, sizeof(cfg->bus.jobs_status), "ipc://data/bus/jobs_status");
	snprintf(cfg->bus.jobs_telemetry, sizeof(cfg->bus.jobs_telemetry), "ipc://data/bus/jobs_telemetry");
	snprintf(cfg->bus.jobs_control, sizeof(cfg->bus.jobs_control), "ipc://data/bus/jobs_control");
	snprintf(cfg->bus.control, sizeof(cfg->bus.control), "ipc://data/bus/control");
	snprintf(cfg->bus.feed, sizeof(cfg->bus.feed), "ipc://data/bus/feed");
	snprintf(cfg->bus.discovery_events, sizeof(cfg->bus.discovery_events),
		 "ipc://data/bus/discovery/events");
	snprintf(cfg->bus.discovery_control, sizeof(cfg->bus.discovery_control),
		 "ipc://data/bus/discovery/control");
	cfg->bus.sendbuf = 8192;
	cfg->bus.recvbuf = 8192;
	cfg->bus.max_message_bytes = 1024 * 1024;

	cfg->retention.status_days = 365;
	cfg->retention.telemetry_days = 7;
	cfg->retention.audit_days = 365;
	cfg->retention.prune_batch = 2000;
	cfg->retention.status_raw_hours = 6;
	cfg->retention.telemetry_raw_hours = 6;
	cfg->retention.minute_days = 7;
	cfg->retention.max_bytes = 0;

	cfg->scheduler.managed_only = false;
	cfg->scheduler.job_timeout_seconds = 30;

	cfg->control.action_timeout_seconds = 300;
	cfg->control.job_timeout_seconds = 10;
	cfg->control.max_corrections_per_hour = 3;

	cfg->retention.power_days = 90;
	snprintf(cfg->bus.jobs_plant, sizeof(cfg->bus.jobs_plant), "ipc://data/bus/jobs_plant");
	cfg->power.mode = HIVE_POWER_OFF;
	cfg->power.margin_pct = 10;
	cfg->power.interval_seconds = 5;
	cfg->power.stale_seconds = 60;
	cfg->power.raise_after_seconds = 60;
	cfg->power.allow_pause = false;
	cfg->power.max_w = 0;
	cfg->power.fallback = HIVE_POWER_HOLD;
	cfg->power.fallback_w = 0;
	cfg->power.deadband_w = 2000;
	cfg->power.min_raise_interval_seconds = 300;
	cfg->power.raise_step_pct = 10;
	cfg->power.max_jump_pct = 50;
	hive_plant_source_defaults(&cfg->power.source, HIVE_PLANT_NONE);

	cfg->alerts.enabled = true;
	cfg->alerts.evaluate_seconds = 5;
	cfg->alerts.group_seconds = 30;
	cfg->alerts.resolve_seconds = 30;
	cfg->alerts.retry_max_seconds = 300;
	cfg->alerts.give_up_hours = 24;
	rules_defaults(cfg);
}

const char *hive_power_mode_name(int mode)
{
	return mode >= 0 && mode <= HIVE_POWER_ON ? power_modes[mode] : NULL;
}

int hive_power_mode_parse(const char *s)
{
	for (int i = 0; s && power_modes[i]; i++)
		if (strcmp(s, power_modes[i]) == 0)
			return i;
	return -1;
}

const char *hive_power_fallback_name(int fallback)
{
	return fallback >= 0 && fallback <= HIVE_POWER_MINIMUM ? power_fallbacks[fallback] : NULL;
}

int hive_power_fallback_parse(const char *s)
{
	for (int i = 0; s && power_fallbacks[i]; i++)
		if (strcmp(s, power_fallbacks[i]) == 0)
			return i;
	return -1;
}

struct source_warn {
	const char *file;
};

static void source_warn(const char *key, void *arg)
{
	const struct source_warn *sw = arg;
	char qf[300], q[300];

	log_warnx("config unknown key file=%s key=%s", hive_log_quote(sw->file, qf, sizeof(qf)),
		  hive_log_quote(key, q, sizeof(q)));
}

/* Reads obj[name] (full path `path`) into the field of k. */
static int read_key(struct hive_cfg *cfg, const struct key *k, const json_t *obj,
		    const char *name, const json_t *v, const char *file, const char *path,
		    char *err, size_t errlen)
{
	char jerr[256];
	const char *dot = strrchr(path, '.');
	int prefix = dot ? (int)(dot - path + 1) : 0;
	long long ll;
	int rc = 0;

	if (json_is_null(v))
		return 0;  /* null keeps the default */
	switch (k->type) {
	case T_INT:
	case T_LLONG:
	case T_SIZE:
		rc = hive_json_int(obj, name, false, &ll, jerr, sizeof(jerr));
		if (rc != 0)
			break;
		/* Checked before the store: the number may not fit the field. */
		if (ll < k->min || ll > k->max)
			return fail(err, errlen, "%s: %s: %lld is out of range (%lld..%lld)", file,
				    path, ll, k->min, k->max);
		if (k->type == T_INT)
			*(int *)field(cfg, k) = (int)ll;
		else if (k->type == T_LLONG)
			*(long long *)field(cfg, k) = ll;
		else
			*(size_t *)field(cfg, k) = (size_t)ll;
		break;
	case T_NUM: {
		double d;

		if (!json_is_number(v))
			return fail(err, errlen, "%s: %s: expected number, got %s", file, path,
				    hive_json_type_name(v));
		d = json_number_value(v);
		if (!(d >= (double)k->min && d <= (double)k->max))
			return fail(err, errlen, "%s: %s: %g is out of range (%lld..%lld)", file,
				    path, d, k->min, k->max);
		*(double *)field(cfg, k) = d;
		break;
	}
	case T_ENUM: {
		char q[96], list[160] = "";
		const char *sv = json_string_value(v);

		for (int i = 0; sv && k->names[i]; i++)
			if (strcmp(sv, k->names[i]) == 0) {
				*(int *)field(cfg, k) = i;
				return 0;
			}
		for (int i = 0; k->names[i]; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", k->names[i]);
		if (!sv)
			return fail(err, errlen, "%s: %s: expected string, got %s", file, path,
				    hive_json_type_name(v));
		return fail(err, errlen, "%s: %s: %s is not one of %s", file, path,
			    quoted(sv, q, sizeof(q)), list);
	}
	case T_SOURCE: {
		char perr[256];
		struct source_warn sw = { file };

		if (!json_is_object(v))
			return fail(err, errlen, "%s: %s: expected object, got %s", file, path,
				    hive_json_type_name(v));
		if (hive_plant_source_parse(v, &cfg->power.source, source_warn, &sw, perr,
					    sizeof(perr)) == -1)
			return fail(err, errlen, "%s: %s", file, perr);
		return 0;
	}
	case T_STR:
		rc = hive_json_str(obj, name, false, field(cfg, k), k->size, jerr, sizeof(jerr));
		break;
	case T_BOOL:
		rc = hive_json_bool(obj, name, false, field(cfg, k), jerr, sizeof(jerr));
		break;
	case T_SUBNETS:
		if (!json_is_array(v))
			return fail(err, errlen, "%s: %s: expected array, got %s", file, path,
				    hive_json_type_name(v));
		return parse_subnets(cfg, v, file, err, errlen);
	case T_RULES:
		if (!json_is_object(v))
			return fail(err, errlen, "%s: %s: expected object, got %s", file, path,
				    hive_json_type_name(v));
		return parse_rules(cfg, v, file, err, errlen);
	case T_CHANNELS:
		if (!json_is_array(v))
			return fail(err, errlen, "%s: %s: expected array, got %s", file, path,
				    hive_json_type_name(v));
		return parse_channels(cfg, v, file, err, errlen);
	}
	if (rc == -1)
		return fail(err, errlen, "%s: %.*s%s", file, prefix, path, jerr);
	return 0;
}

static int walk(struct hive_cfg *cfg, const json_t *obj, const char *prefix, const char *file,
		char *err, size_t errlen)
{
	const char *name;
	json_t *v;
	char path[256], q[300];

	json_object_foreach((json_t *)obj, name, v) {
		const struct key *k;

		if (snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name) >=
		    (int)sizeof(path)) {
			log_warnx("config unknown key file=%s key=%s", hive_log_quote(file, q, sizeof(q)),
				  "(too long)");
			continue;
		}
		if ((k = key_find(path)) != NULL) {
			if (read_key(cfg, k, obj, name, v, file, path, err, errlen) == -1)
				return -1;
		} else if (is_section(path)) {
			if (json_is_null(v))
				continue;
			if (!json_is_object(v))
				return fail(err, errlen, "%s: %s: expected object, got %s", file, path,
					    hive_json_type_name(v));
			if (walk(cfg, v, path, file, err, errlen) == -1)
				return -1;
		} else {
			char qf[300];

			log_warnx("config unknown key file=%s key=%s",
				  hive_log_quote(file, qf, sizeof(qf)), hive_log_quote(path, q, sizeof(q)));
		}
	}
	return 0;
}

/* The environment overrides the file; each variable is checked on its own so
 * that the message names the variable rather than the file. */
static int apply_env(struct hive_cfg *cfg, char *err, size_t errlen)
{
	char problem[512];

	for (size_t i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++) {
		const char *val = getenv(env_keys[i].var);
		const struct key *k = key_find(env_keys[i].key);

		if (!val || !*val)
			continue;
		if (strlen(val) >= k->size)
			return fail(err, errlen, "%s: %s: longer than %zu characters", env_keys[i].var,
				    k->path, k->size - 1);
		memcpy(field(cfg, k), val, strlen(val) + 1);
		if (check_key(cfg, k, problem, sizeof(problem)) == -1)
			return fail(err, errlen, "%s: %s: %s", env_keys[i].var, k->path, problem);
	}
	return 0;
}

static int parse_text(struct hive_cfg *cfg, const char *name, const char *text, size_t len,
		      char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc = -1;

	hive_cfg_defaults(cfg);
	if (strlen(name) >= sizeof(cfg->source))
		return fail(err, errlen, "%.64s...: file name too long", name);
	snprintf(cfg->source, sizeof(cfg->source), "%s", name);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fail(err, errlen, "%s: line %d column %d: %s", name, jerr.line, jerr.column,
			    jerr.text);
	if (!json_is_object(root)) {
		fail(err, errlen, "%s: top level: expected object, got %s", name,
		     hive_json_type_name(root));
		goto out;
	}
	if (walk(cfg, root, "", name, err, errlen) == -1 ||
	    validate(cfg, name, err, errlen) == -1 ||
	    apply_env(cfg, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc == -1)
		hive_cfg_free(cfg);
	return rc;
}

int hive_cfg_parse(struct hive_cfg *cfg, const char *name, const char *json_text, char *err,
		   size_t errlen)
{
	if (!name)
		name = "(text)";
	if (!json_text) {
		hive_cfg_defaults(cfg);
		return fail(err, errlen, "%s: no text", name);
	}
	return parse_text(cfg, name, json_text, strlen(json_text), err, errlen);
}

int hive_cfg_load(struct hive_cfg *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc;

	hive_cfg_defaults(cfg);
	if (!path || !*path)
		return fail(err, errlen, "(no file): no configuration file given");
	if ((f = fopen(path, "rb")) == NULL)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	for (;;) {
		if (n == cap) {
			char *nb;

			if (cap >= CFG_FILE_MAX) {
				fail(err, errlen, "%s: larger than %d bytes", path, CFG_FILE_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL) {
				fail(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				fail(err, errlen, "%s: %s", path, strerror(errno));
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	rc = parse_text(cfg, path, buf, n, err, errlen);
	free(buf);
	return rc;
fail:
	fclose(f);
	free(buf);
	return -1;
}

void hive_cfg_free(struct hive_cfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->network.subnets);
	cfg->network.subnets = NULL;
	cfg->network.n_subnets = 0;
	rules_free(cfg);
}

int hive_cfg_copy(struct hive_cfg *dst, const struct hive_cfg *src)
{
	struct hive_subnet *list = NULL;

	if (src->network.n_subnets > 0) {
		list = calloc(src->network.n_subnets, sizeof(*list));
		if (!list)
			return -1;
		memcpy(list, src->network.subnets, src->network.n_subnets * sizeof(*list));
	}
	*dst = *src;
	dst->network.subnets = list;
	/* Nothing below is shared with src, so a failure frees dst whole. */
	for (int i = 0; i < HIVE_ALERT_RULES; i++)
		dst->alerts.rules[i].models = NULL;
	dst->alerts.channels = NULL;
	for (int i = 0; i < HIVE_ALERT_RULES; i++) {
		const struct hive_alert_rule *r = &src->alerts.rules[i];

		if (r->n_models == 0)
			continue;
		if (!(dst->alerts.rules[i].models = calloc(r->n_models, sizeof(*r->models))))
			goto fail;
		memcpy(dst->alerts.rules[i].models, r->models, r->n_models * sizeof(*r->models));
	}
	if (src->alerts.n_channels > 0) {
		size_t n = src->alerts.n_channels;

		if (!(dst->alerts.channels = calloc(n, sizeof(*dst->alerts.channels))))
			goto fail;
		memcpy(dst->alerts.channels, src->alerts.channels, n * sizeof(*dst->alerts.channels));
	}
	return 0;
fail:
	for (int i = 0; i < HIVE_ALERT_RULES; i++)
		dst->alerts.rules[i].n_models = 0;
	dst->alerts.n_channels = 0;
	hive_cfg_free(dst);
	return -1;
}
