/* faults — the ways a miner's answer goes wrong, on demand.
 *
 * A miner carries at most one fault: a kind, a delay (slow) and the set of
 * endpoints it hits. "offline" closes the listener (connection refused);
 * "http500" replaces the answer before the request acts; every other kind
 * lets the request act and then spoils the answer on its way out, as a
 * flaky network or a buggy firmware build would.
 *
 * Hardware faults (overheat, fan_stopped, chain_dead, hashrate_drop,
 * red_chips, hw_errors) are apart: they change the figures the firmware
 * reports, not the protocol, combine with each other and with a protocol
 * fault, and "none" clears them all.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERSIZE_BYTES (4u << 20)

static const char *const fault_names[FAULT_KINDS] = {
	[FAULT_NONE] = "none",
	[FAULT_OFFLINE] = "offline",
	[FAULT_SLOW] = "slow",
	[FAULT_RESET] = "reset",
	[FAULT_HTTP500] = "http500",
	[FAULT_INVALID_JSON] = "invalid_json",
	[FAULT_TRUNCATED] = "truncated",
	[FAULT_MISSING] = "missing_fields",
	[FAULT_NULL] = "null_fields",
	[FAULT_STRINGS] = "strings",
	[FAULT_OVERSIZED] = "oversized",
};

static const char *const ep_names[EP_COUNT] = {
	[EP_INFO] = "info",
	[EP_MODEL] = "model",
	[EP_STATUS] = "status",
	[EP_SUMMARY] = "summary",
	[EP_PERF] = "perf-summary",
	[EP_CHAINS] = "chains",
	[EP_BOARDS] = "boards",
	[EP_PRESETS] = "autotune/presets",
	[EP_SETTINGS] = "settings",
	[EP_UNLOCK] = "unlock",
	[EP_APIKEYS] = "apikeys",
	[EP_APIKEYS_DELETE] = "apikeys/delete",
	[EP_RESTART] = "mining/restart",
	[EP_STOP] = "mining/stop",
	[EP_START] = "mining/start",
	[EP_PAUSE] = "mining/pause",
	[EP_RESUME] = "mining/resume",
	[EP_REBOOT] = "system/reboot",
	[EP_OTHER] = "other",
};

/* The fields a client cannot do without, per endpoint: what
 * missing_fields removes and null_fields nulls. "[]" walks an array. */
static const char *const required[EP_COUNT][6] = {
	[EP_INFO] = { "model", "fw_version", "system.network_status.mac" },
	[EP_MODEL] = { "model", "chain" },
	[EP_STATUS] = { "miner_state", "miner_state_time" },
	[EP_SUMMARY] = { "miner.miner_status", "miner.hr_realtime", "miner.power_consumption",
			 "miner.chip_temp", "miner.chains[].hashrate_rt" },
	[EP_PERF] = { "current_preset.name", "preset_switcher.enabled" },
	[EP_CHAINS] = { "[].hr_realtime", "[].chips[].hr", "[].chips[].temp" },
	[EP_BOARDS] = { "[].hr_realtime", "[].chips[].hr", "[].chips[].temp" },
	[EP_PRESETS] = { "[].name", "[].pretty" },
	[EP_SETTINGS] = { "restart_required" },
	[EP_UNLOCK] = { "token" },
	[EP_APIKEYS] = { "[].key" },
	[EP_REBOOT] = { "after" },
};

const char *sim_fault_name(int kind)
{
	return kind >= 0 && kind < FAULT_KINDS ? fault_names[kind] : "unknown";
}

int sim_fault_parse(const char *name)
{
	for (int i = 0; i < FAULT_KINDS; i++)
		if (strcmp(fault_names[i], name) == 0)
			return i;
	return -1;
}

const char *sim_ep_name(int ep)
{
	return ep >= 0 && ep < EP_COUNT ? ep_names[ep] : "unknown";
}

int sim_ep_parse(const char *name)
{
	static const struct {
		const char *alias;
		uint32_t mask;
	} aliases[] = {
		{ "all", SIM_EP_ALL },
		{ "presets", 1u << EP_PRESETS },
		{ "perf_summary", 1u << EP_PERF },
		{ "reboot", 1u << EP_REBOOT },
		{ "mining", 1u << EP_RESTART | 1u << EP_STOP | 1u << EP_START |
			    1u << EP_PAUSE | 1u << EP_RESUME },
	};

	if (name[0] == '/')
		name++;
	if (strncmp(name, "api/v1/", 7) == 0)
		name += 7;
	for (int i = 0; i < EP_COUNT; i++)
		if (strcmp(ep_names[i], name) == 0)
			return (int)(1u << i);
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(aliases[i].alias, name) == 0)
			return (int)aliases[i].mask;
	return 0;
}

void sim_fault_set(struct miner *m, int kind, uint32_t ms, uint32_t eps)
{
	char mac[18];

	if (kind != m->fault || kind != FAULT_NONE)
		sim_debug("fault mac=%s kind=%s ms=%u", sim_miner_mac(m, mac), sim_fault_name(kind),
			  ms);
	m->fault = (uint8_t)kind;
	m->fault_ms = kind == FAULT_SLOW ? ms : 0;
	m->fault_eps = kind == FAULT_NONE ? 0 : eps;
	sim_miner_sync_listener(m);
}

/* ---------------------------------------------------------------- hardware */

static const char *const hw_names[HW_KINDS] = {
	[HW_OVERHEAT] = "overheat",
	[HW_FAN_STOPPED] = "fan_stopped",
	[HW_CHAIN_DEAD] = "chain_dead",
	[HW_HASHRATE_DROP] = "hashrate_drop",
	[HW_RED_CHIPS] = "red_chips",
	[HW_ERRORS] = "hw_errors",
};

const char *sim_hw_name(int kind)
{
	return kind >= 0 && kind < HW_KINDS ? hw_names[kind] : "unknown";
}

int sim_hw_parse(const char *name)
{
	for (int i = 0; i < HW_KINDS; i++)
		if (strcmp(hw_names[i], name) == 0)
			return i;
	/* the names the rules' authors reach for first */
	if (strcmp(name, "fan_stop") == 0)
		return HW_FAN_STOPPED;
	if (strcmp(name, "dead_chain") == 0)
		return HW_CHAIN_DEAD;
	return -1;
}

static bool mining(const struct miner *m)
{
	return m->phase == PH_MINING || m->phase == PH_AUTOTUNING;
}

/* The errors the hw_errors fault added: from when it was set (or its rate
 * last changed), or from the mining process's start when that came later
 * (a restart starts the firmware's counter over). */
double sim_hw_errors(const struct miner *m, int64_t now)
{
	const struct sim_hw *h = m->hw;

	if (!h || h->errs_rate <= 0 || !mining(m))
		return 0;
	if (m->run_since > h->errs_at)
		return h->errs_rate * (double)(now - m->run_since) / 60000.0;
	return h->errs + h->errs_rate * (double)(now - h->errs_at) / 60000.0;
}

uint64_t sim_hw_red_s(const struct miner *m, int64_t now)
{
	const struct sim_hw *h = m->hw;
	int64_t from;

	if (!h || !h->red || !mining(m))
		return 0;
	from = m->run_since > h->red_at ? m->run_since : h->red_at;
	return now > from ? (uint64_t)((now - from) / 1000) : 0;
}

int sim_hw_set(struct miner *m, int kind, double value, int chain)
{
	int64_t now = sim_now_ms();
	char mac[18];

	if (!m->hw && !(m->hw = calloc(1, sizeof(*m->hw))))
		return -1;
	switch (kind) {
	case HW_OVERHEAT: m->hw->temp = value; break;
	case HW_FAN_STOPPED: m->hw->fan = (uint8_t)value; break;
	case HW_CHAIN_DEAD: m->hw->chain = (uint8_t)value; break;
	case HW_HASHRATE_DROP: m->hw->factor = value; break;
	case HW_RED_CHIPS:
		if (!m->hw->red)
			m->hw->red_at = now;   /* their errors count from here */
		m->hw->red = (uint16_t)value;
		m->hw->red_chain = (uint8_t)chain;
		break;
	case HW_ERRORS:
		/* a new rate goes on from what the old one counted */
		m->hw->errs = sim_hw_errors(m, now);
		m->hw->errs_at = now;
		m->hw->errs_rate = value;
		break;
	default: return 0;
	}
	sim_debug("hw_fault mac=%s kind=%s value=%g", sim_miner_mac(m, mac), sim_hw_name(kind),
		  value);
	return 0;
}

bool sim_hw_clear(struct miner *m)
{
	bool had = m->hw != NULL;

	free(m->hw);
	m->hw = NULL;
	return had;
}

json_t *sim_hw_json(const struct miner *m)
{
	const struct sim_hw *h = m->hw;
	json_t *j = json_object();

	if (!h)
		return j;
	if (h->temp > 0)
		json_object_set_new(j, "overheat", json_real(h->temp));
	if (h->fan)
		json_object_set_new(j, "fan_stopped", json_integer(h->fan));
	if (h->chain)
		json_object_set_new(j, "chain_dead", json_integer(h->chain));
	if (h->factor > 0)
		json_object_set_new(j, "hashrate_drop", json_real(h->factor));
	if (h->red)
		json_object_set_new(j, "red_chips", json_pack("{s:i, s:i}", "count", h->red,
							       "chain", h->red_chain));
	if (h->errs_rate > 0)
		json_object_set_new(j, "hw_errors", json_pack("{s:f, s:I}", "per_minute",
			h->errs_rate, "errors", (json_int_t)sim_hw_errors(m, sim_now_ms())));
	return j;
}

/* ---------------------------------------------------------------- transforms */

static void walk(json_t *j, const char *path, bool null)
{
	char key[64];
	size_t n;
	const char *rest;

	if (strncmp(path, "[]", 2) == 0) {
		size_t i;
		json_t *v;

		rest = path[2] == '.' ? path + 3 : path + 2;
		if (!json_is_array(j))
			return;
		json_array_foreach(j, i, v)
			walk(v, rest, null);
		return;
	}
	n = strcspn(path, ".[");
	if (n == 0 || n >= sizeof(key) || !json_is_object(j))
		return;
	memcpy(key, path, n);
	key[n] = '\0';
	rest = path + n;
	if (*rest == '.')
		rest++;
	if (*rest == '\0') {
		if (!json_object_get(j, key))
			return;
		if (null)
			json_object_set_new(j, key, json_null());
		else
			json_object_del(j, key);
		return;
	}
	walk(json_object_get(j, key), rest, null);
}

static json_t *as_string(const json_t *num)
{
	char buf[64];

	if (json_is_integer(num))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(num));
	else
		snprintf(buf, sizeof(buf), "%.10g", json_real_value(num));
	return json_string(buf);
}

static void stringify(json_t *j)
{
	const char *key;
	json_t *v;
	void *tmp;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach_safe(j, tmp, key, v) {
			if (json_is_number(v))
				json_object_set_new(j, key, as_string(v));
			else
				stringify(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (json_is_number(v))
				json_array_set_new(j, i, as_string(v));
			else
				stringify(v);
		}
	}
}

/* Keeps the first part of the body and ends it so no parser accepts it. */
static void make_invalid(struct sim_resp *rs)
{
	size_t keep = rs->len / 2;
	char *p = malloc(keep + 3);

	if (!p)
		return;
	memcpy(p, rs->body, keep);
	memcpy(p + keep, ",}", 3);
	sim_resp_take(rs, rs->status, p, keep + 2);
}

/* A valid document of several MB, in the shape of the real one: a padding
 * member first in the top-level object, or in the first element of a
 * top-level array. */
static void make_oversized(struct sim_resp *rs)
{
	static const char member[] = "\"debug_log\":\"";
	const char *b = rs->body;
	size_t at = 0, len = rs->len, total;
	bool element = false, empty;
	char *p, *q;

	if (len && b[0] == '[') {
		at = 1;
		while (at < len && strchr(" \t\r\n", b[at]))
			at++;
		element = at >= len || b[at] != '{';
	} else if (!len || b[0] != '{') {
		return;
	}
	if (!element)
		at++;                  /* just after the '{' */
	empty = at < len && (b[at] == '}' || b[at] == ']');
	for (size_t i = at; !empty && i < len && strchr(" \t\r\n}", b[i]); i++)
		empty = b[i] == '}';
	total = len + sizeof(member) + OVERSIZE_BYTES + 8;
	if (!(p = malloc(total)))
		return;
	memcpy(p, b, at);
	q = p + at;
	if (element)
		*q++ = '{';
	memcpy(q, member, sizeof(member) - 1);
	q += sizeof(member) - 1;
	for (size_t i = 0; i < OVERSIZE_BYTES; i++)
		q[i] = "0123456789abcdef"[i & 15];
	q += OVERSIZE_BYTES;
	*q++ = '"';
	if (element)
		*q++ = '}';
	if (!empty)
		*q++ = ',';
	memcpy(q, b + at, len - at);
	q += len - at;
	sim_resp_take(rs, rs->status, p, (size_t)(q - p));
}

void sim_fault_apply(const struct miner *m, int ep, struct sim_resp *rs)
{
	json_t *j;
	char *text;

	switch (m->fault) {
	case FAULT_SLOW:
		rs->delay_ms = (int)m->fault_ms;
		return;
	case FAULT_RESET:
		rs->reset = true;
		rs->close = true;
		return;
	default:
		break;
	}
	/* the rest spoils JSON answers */
	if (rs->status < 200 || rs->status > 299 || !rs->len)
		return;
	switch (m->fault) {
	case FAULT_INVALID_JSON:
		make_invalid(rs);
		return;
	case FAULT_TRUNCATED:
		rs->len /= 2;
		return;
	case FAULT_OVERSIZED:
		make_oversized(rs);
		return;
	case FAULT_MISSING:
	case FAULT_NULL:
	case FAULT_STRINGS:
		break;
	default:
		return;
	}
	j = json_loadb(rs->body, rs->len, JSON_DECODE_ANY, NULL);
	if (!j)
		return;
	if (m->fault == FAULT_STRINGS) {
		stringify(j);
	} else {
		for (int i = 0; i < 6 && required[ep][i]; i++)
			walk(j, required[ep][i], m->fault == FAULT_NULL);
	}
	text = json_dumps(j, SIM_JSON_FLAGS | JSON_ENCODE_ANY);
	json_decref(j);
	if (text)
		sim_resp_take(rs, rs->status, text, strlen(text));
}
