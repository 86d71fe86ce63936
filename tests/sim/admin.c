/* admin — the /sim API: ground truth for tests, and the hand of fate
 * (faults, a person changing a password or deleting keys, DHCP moves).
 * JSON in and out; errors are {"error":"..."}. */
#include "sim.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "/sim/miners/"

static void fail(struct sim_resp *rs, int status, const char *msg)
{
	sim_resp_err(rs, status, "error", msg);
}

static const char *const src_names[] = { "initial", "api", "web", "switcher" };

static json_t *preset_or_null(const struct sim_model *md, int p)
{
	char name[16];

	return p < 0 ? json_null() : json_string(sim_preset_name(md, p, name, sizeof(name)));
}

/* Control ground truth: counters, the saved preset, the switcher. */
static void control_json(const struct miner *m, int64_t now, json_t *j)
{
	static const struct sim_ctl none = { .apply = APPLY_DEFAULT, .min = 1, .check_s = 60,
					     .due = INT64_MAX };
	const struct sim_ctl *c = m->ctl ? m->ctl : &none;
	const struct sim_model *md = sim_miner_model(m);
	int next = sim_miner_switcher_next(m);
	json_t *sw;

	json_object_set_new(j, "state_s", json_integer(sim_miner_state_secs(m, now)));
	json_object_set_new(j, "preset_status", json_string(
		!m->tuning && (m->tuned & (1u << m->preset)) ? "tuned" : "untuned"));
	json_object_set_new(j, "preset_set_by", json_string(src_names[c->set_by & 3]));
	json_object_set_new(j, "pending_preset", preset_or_null(md, c->pending ? c->pending - 1 : -1));
	json_object_set_new(j, "preset_apply", json_string(sim_apply_name(sim_miner_apply_mode(m))));
	json_object_set_new(j, "restart_required", json_boolean(sim_miner_restart_required(m)));
	json_object_set_new(j, "settings_calls", json_integer(c->settings_calls));
	json_object_set_new(j, "preset_changes", json_integer(c->preset_changes));
	json_object_set_new(j, "web_preset_changes", json_integer(c->web_changes));
	json_object_set_new(j, "switcher_preset_changes", json_integer(c->switcher_changes));
	json_object_set_new(j, "restarts", json_integer(c->restarts));
	json_object_set_new(j, "stops", json_integer(c->stops));
	json_object_set_new(j, "starts", json_integer(c->starts));
	json_object_set_new(j, "pauses", json_integer(c->pauses));
	json_object_set_new(j, "resumes", json_integer(c->resumes));
	json_object_set_new(j, "reboots", json_integer(c->reboots));
	json_object_set_new(j, "power_cycles", json_integer(c->power_cycles));
	sw = json_pack("{s:b, s:o, s:o, s:i, s:o}", "enabled", c->switcher,
		       "top_preset", preset_or_null(md, c->top ? c->top : -1),
		       "min_preset", preset_or_null(md, c->min),
		       "check_time", c->check_s,
		       "next_preset", preset_or_null(md, c->switcher ? next : -1));
	/* when it steps next (seconds from now), null when it will not */
	if (sim_miner_switcher_due(m) != INT64_MAX)
		json_object_set_new(sw, "next_in_s",
				    json_real((double)(sim_miner_switcher_due(m) - now) / 1000.0));
	else
		json_object_set_new(sw, "next_in_s", json_null());
	json_object_set_new(j, "switcher", sw);
}

static json_t *miner_json(struct miner *m, int64_t now)
{
	const struct sim_model *md = sim_miner_model(m);
	char ip[16], mac[18], preset[16], host[32];
	json_t *j, *eps = json_array(), *descs = json_array();
	bool online = sim_miner_online(m);

	sim_miner_update(m, now);
	for (int e = 0; e < EP_COUNT; e++)
		if (m->fault_eps & (1u << e))
			json_array_append_new(eps, json_string(sim_ep_name(e)));
	for (int i = 0; i < sim_miner_nkeys(m); i++)
		json_array_append_new(descs, json_string(m->creds->keys[i].desc));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:I, s:I, s:I, s:i, s:s, s:s, s:b, "
		      "s:i, s:s, s:s, s:b, s:b, s:b, s:i, s:f, s:f, s:I, s:o, s:I, s:o, s:b}",
		      "ip", hive_ipv4_format(m->ip, ip), "mac", sim_miner_mac(m, mac),
		      "model", md->code, "preset", sim_preset_name(md, m->preset, preset, sizeof(preset)),
		      "state", sim_miner_truth_state(m),
		      "power_w", (json_int_t)lround(sim_miner_power(m, now)),
		      "hashrate_ghs", round(sim_miner_hashrate(m, now) * 100.0) / 100.0,
		      "requests", (json_int_t)m->requests,
		      "unlock_attempts", (json_int_t)m->unlock_attempts,
		      "unlock_failures", (json_int_t)m->unlock_failures,
		      "api_keys", sim_miner_nkeys(m),
		      "fault", sim_fault_name(m->fault),
		      "firmware", sim_miner_fw_version(m), "metered", m->metered,
		      "index", (int)m->index, "serial", m->serial,
		      "hostname", sim_miner_hostname(m, host),
		      "online", online, "tuning", m->tuning, "paused", m->paused,
		      "preset_watts", sim_preset_watts(md, m->preset),
		      "preset_th", sim_preset_th(md, m->preset),
		      "stock_th", md->stock_th,
		      "uptime_s", (json_int_t)sim_miner_uptime_s(m, now),
		      "fault_endpoints", eps,
		      "fault_ms", (json_int_t)m->fault_ms,
		      "api_key_descriptions", descs,
		      "password_changed", m->creds && m->creds->password);
	json_object_set_new(j, "hw_faults", sim_hw_json(m));
	control_json(m, now, j);
	return j;
}

static void get_miners(struct sim_resp *rs)
{
	int64_t now = sim_now_ms();
	json_t *a = json_array();

	for (int i = 0; i < sim_fleet.nminers; i++)
		json_array_append_new(a, miner_json(&sim_fleet.miners[i], now));
	sim_resp_json(rs, 200, a);
	/* the tree of a large fleet is tens of MB: give it back, so RSS stays
	 * a measure of the fleet */
	malloc_trim(0);
}

static void get_hosts(struct sim_resp *rs)
{
	json_t *a = json_array();
	char ip[16];

	for (int i = 0; i < sim_fleet.nhosts; i++) {
		struct sim_host *h = &sim_fleet.hosts[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:I}",
						   "ip", hive_ipv4_format(h->ip, ip),
						   "kind", sim_host_kind_name(h->kind),
						   "requests", (json_int_t)h->requests));
	}
	sim_resp_json(rs, 200, a);
}

static void get_fleet(struct sim_resp *rs)
{
	int64_t now = sim_now_ms();
	long long power = 0, requests = 0;
	double hr = 0;
	int online = 0, mining = 0, tuning = 0, stopped = 0, paused = 0, rebooting = 0;
	json_t *j;

	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		sim_miner_update(m, now);
		online += sim_miner_online(m);
		mining += m->phase == PH_MINING;
		tuning += m->phase == PH_AUTOTUNING;
		stopped += m->phase == PH_STOPPED;
		paused += m->phase == PH_STOPPED && m->paused;
		rebooting += m->phase == PH_GONE;
		power += lround(sim_miner_power(m, now));
		hr += round(sim_miner_hashrate(m, now) * 100.0) / 100.0;
		requests += m->requests;
	}
	j = json_pack("{s:i, s:i, s:i, s:I, s:f, s:I, s:i, s:i}",
		      "miners", sim_fleet.nminers, "online", online,
		      "mining", mining, "power_w", (json_int_t)power,
		      "hashrate_ghs", round(hr * 100.0) / 100.0,
		      "requests", (json_int_t)requests,
		      "non_miners", sim_fleet.nhosts,
		      "connections", sim_http_conns());
	json_object_set_new(j, "auto_tuning", json_integer(tuning));
	json_object_set_new(j, "stopped", json_integer(stopped));
	json_object_set_new(j, "paused", json_integer(paused));
	json_object_set_new(j, "rebooting", json_integer(rebooting));
	sim_resp_json(rs, 200, j);
}

/* Timings and the fleet's preset-apply mode, changeable while running
 * (they act on transitions that start afterwards). */
static json_t *config_json(void)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:s}",
			 "tune_seconds", sim_opts.tune_s,
			 "tuned_seconds", (int)(sim_tune_ms(true) / 1000),
			 "start_seconds", sim_opts.start_s,
			 "apply_seconds", sim_opts.apply_s,
			 "reboot_seconds", sim_opts.reboot_s,
			 "init_seconds", sim_opts.init_s,
			 "preset_apply", sim_apply_name(sim_opts.preset_apply));
}

static json_t *body_object(const struct sim_req *rq, struct sim_resp *rs)
{
	json_error_t e;
	json_t *j = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, &e);

	if (!json_is_object(j)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "body: expected a JSON object (%s)",
			 j ? "got another type" : e.text);
		json_decref(j);
		fail(rs, 400, msg);
		return NULL;
	}
	return j;
}

/* The smallest board count and chips per board of the catalogue: a
 * hardware fault's index must fit every miner "all" may pick. */
static void hw_limits(int *chains, int *chips)
{
	*chains = *chips = 1 << 30;
	for (int i = 0; i < SIM_NMODELS; i++) {
		if (sim_models[i].chains < *chains)
			*chains = sim_models[i].chains;
		if (sim_models[i].chips < *chips)
			*chips = sim_models[i].chips;
	}
}

/* A number member in lo..hi, def when absent. false: answered 400. */
static bool hw_number(json_t *body, const char *key, double def, double lo, double hi,
		      bool integer, double *out, struct sim_resp *rs)
{
	json_t *v = json_object_get(body, key);
	char msg[128];

	*out = def;
	if (!v || json_is_null(v))
		return true;
	*out = json_number_value(v);
	if (!json_is_number(v) || *out < lo || *out > hi || (integer && *out != (int)*out)) {
		snprintf(msg, sizeof(msg), "%s: expected %s in %g..%g", key,
			 integer ? "an integer" : "a number", lo, hi);
		fail(rs, 400, msg);
		return false;
	}
	return true;
}

/* The hardware fault's value from the body: "temp", "fan", "chain",
 * "factor", "count" (+ "chain" for red chips) or "per_minute". false:
 * answered 400. */
static bool hw_args(json_t *body, int kind, double *value, int *chain, struct sim_resp *rs)
{
	int chains, chips;
	double c = 1;

	hw_limits(&chains, &chips);
	*chain = 0;
	switch (kind) {
	case HW_OVERHEAT:
		return hw_number(body, "temp", 100, 20, 150, false, value, rs);
	case HW_FAN_STOPPED:
		return hw_number(body, "fan", 1, 1, SIM_FANS, true, value, rs);
	case HW_CHAIN_DEAD:
		return hw_number(body, "chain", 1, 1, chains, true, value, rs);
	case HW_HASHRATE_DROP:
		return hw_number(body, "factor", 0.3, 0.01, 0.99, false, value, rs);
	case HW_RED_CHIPS:
		if (!hw_number(body, "count", 20, 1, chips, true, value, rs) ||
		    !hw_number(body, "chain", 1, 1, chains, true, &c, rs))
			return false;
		*chain = (int)c;
		return true;
	case HW_ERRORS:
		return hw_number(body, "per_minute", 1000, 1, 1000000, false, value, rs);
	}
	return false;
}

/* A hardware fault adds to what the miner has; "none" clears both kinds. */
static int set_one(struct miner *m, int kind, int hw, double value, int chain, double seconds,
		   uint32_t eps)
{
	if (hw >= 0)
		return sim_hw_set(m, hw, value, chain);
	if (kind == FAULT_NONE)
		sim_hw_clear(m);
	sim_fault_set(m, kind, (uint32_t)lround(seconds * 1000), eps);
	return 0;
}

static void post_fault(const struct sim_req *rq, struct sim_resp *rs)
{
	json_t *body = body_object(rq, rs), *jshare, *jsec, *jeps, *applied;
	const char *target, *kind_s;
	double share = 1.0, seconds = 3.0;
	uint32_t eps = SIM_EP_ALL;
	int kind, hw = -1, n, chain = 0;
	double value = 0;
	char mac[18], msg[160];

	if (!body)
		return;
	target = json_string_value(json_object_get(body, "target"));
	kind_s = json_string_value(json_object_get(body, "kind"));
	jshare = json_object_get(body, "share");
	jsec = json_object_get(body, "seconds");
	jeps = json_object_get(body, "endpoints");
	if (!target) {
		fail(rs, 400, "target: expected a MAC, an IP or \"all\"");
		goto out;
	}
	if (!kind_s || ((kind = sim_fault_parse(kind_s)) < 0 && (hw = sim_hw_parse(kind_s)) < 0)) {
		fail(rs, 400, "kind: expected one of offline, slow, reset, http500, invalid_json, "
		     "truncated, missing_fields, null_fields, strings, oversized, overheat, "
		     "fan_stopped, chain_dead, hashrate_drop, red_chips, hw_errors, none");
		goto out;
	}
	if (hw >= 0 && !hw_args(body, hw, &value, &chain, rs))
		goto out;
	if (jshare && !json_is_null(jshare)) {
		share = json_number_value(jshare);
		if (!json_is_number(jshare) || share < 0 || share > 1) {
			fail(rs, 400, "share: expected a number in 0..1");
			goto out;
		}
		if (strcmp(target, "all") != 0) {
			fail(rs, 400, "share: only with target \"all\"");
			goto out;
		}
	}
	if (jsec && !json_is_null(jsec)) {
		seconds = json_number_value(jsec);
		if (!json_is_number(jsec) || seconds < 0 || seconds > 3600) {
			fail(rs, 400, "seconds: expected a number in 0..3600");
			goto out;
		}
	}
	if (jeps && !json_is_null(jeps)) {
		size_t i;
		json_t *v;

		if (!json_is_array(jeps) || json_array_size(jeps) == 0) {
			fail(rs, 400, "endpoints: expected a non-empty array of endpoint names");
			goto out;
		}
		eps = 0;
		json_array_foreach(jeps, i, v) {
			int bits = json_is_string(v) ? sim_ep_parse(json_string_value(v)) : 0;
			if (!bits) {
				snprintf(msg, sizeof(msg), "endpoints[%zu]: unknown endpoint "
					 "(e.g. summary, chains, autotune/presets, mining)", i);
				fail(rs, 400, msg);
				goto out;
			}
			eps |= (uint32_t)bits;
		}
	}

	if (hw >= 0)
		sim_log("fault target=%s kind=%s share=%g value=%g",
			strcmp(target, "all") ? "miner" : "all", kind_s, share, value);
	else if (kind == FAULT_SLOW)
		sim_log("fault target=%s kind=%s share=%g seconds=%g",
			strcmp(target, "all") ? "miner" : "all", kind_s, share, seconds);
	else
		sim_log("fault target=%s kind=%s share=%g", strcmp(target, "all") ? "miner" : "all",
			kind_s, share);
	applied = json_array();
	if (strcmp(target, "all") == 0) {
		n = (int)lround(share * sim_fleet.nminers);
		for (int i = 0; i < n; i++) {
			struct miner *m = &sim_fleet.miners[sim_fleet.share_order[i]];
			if (set_one(m, kind, hw, value, chain, seconds, eps) < 0) {
				json_decref(applied);
				fail(rs, 500, "out of memory");
				goto out;
			}
			json_array_append_new(applied, json_string(sim_miner_mac(m, mac)));
		}
	} else {
		struct miner *m = sim_miner_find(target);
		if (!m) {
			json_decref(applied);
			snprintf(msg, sizeof(msg), "target: no miner with MAC or IP \"%.64s\"", target);
			fail(rs, 404, msg);
			goto out;
		}
		if (set_one(m, kind, hw, value, chain, seconds, eps) < 0) {
			json_decref(applied);
			fail(rs, 500, "out of memory");
			goto out;
		}
		json_array_append_new(applied, json_string(sim_miner_mac(m, mac)));
	}
	sim_resp_json(rs, 200, json_pack("{s:o}", "applied", applied));
out:
	json_decref(body);
}

static void post_config(const struct sim_req *rq, struct sim_resp *rs)
{
	static const struct {
		const char *key;
		int *val;
	} ints[] = {
		{ "tune_seconds", &sim_opts.tune_s },
		{ "tuned_seconds", &sim_opts.tuned_s },
		{ "start_seconds", &sim_opts.start_s },
		{ "apply_seconds", &sim_opts.apply_s },
		{ "reboot_seconds", &sim_opts.reboot_s },
		{ "init_seconds", &sim_opts.init_s },
	};
	json_t *body = body_object(rq, rs), *v;
	int vals[6], mode = sim_opts.preset_apply;
	const char *key;
	char msg[160];

	if (!body)
		return;
	for (size_t i = 0; i < 6; i++)
		vals[i] = *ints[i].val;
	json_object_foreach(body, key, v) {
		size_t i;

		for (i = 0; i < 6 && strcmp(ints[i].key, key) != 0; i++)
			;
		if (i < 6) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 86400) {
				snprintf(msg, sizeof(msg), "%s: expected an integer in 0..86400", key);
				fail(rs, 400, msg);
				goto out;
			}
			vals[i] = (int)json_integer_value(v);
		} else if (strcmp(key, "preset_apply") == 0) {
			if (!json_is_string(v) || (mode = sim_apply_parse(json_string_value(v))) < 0) {
				fail(rs, 400, "preset_apply: expected live, restart, quiet or firmware");
				goto out;
			}
		} else {
			snprintf(msg, sizeof(msg), "%.40s: unknown (tune_seconds, tuned_seconds, "
				 "start_seconds, apply_seconds, reboot_seconds, init_seconds, "
				 "preset_apply)", key);
			fail(rs, 400, msg);
			goto out;
		}
	}
	for (size_t i = 0; i < 6; i++)
		*ints[i].val = vals[i];
	sim_opts.preset_apply = mode;
	sim_log("config tune_s=%d tuned_s=%d start_s=%d apply_s=%d reboot_s=%d init_s=%d "
		"preset_apply=%s", sim_opts.tune_s, sim_opts.tuned_s, sim_opts.start_s,
		sim_opts.apply_s, sim_opts.reboot_s, sim_opts.init_s, sim_apply_name(mode));
	sim_resp_json(rs, 200, config_json());
out:
	json_decref(body);
}

static void post_counters_reset(struct sim_resp *rs)
{
	int n = 0;

	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct sim_ctl *c = sim_fleet.miners[i].ctl;
		if (!c)
			continue;
		c->settings_calls = c->preset_changes = c->web_changes = c->switcher_changes = 0;
		c->restarts = c->stops = c->starts = c->pauses = c->resumes = c->reboots = 0;
		c->power_cycles = 0;
		n++;
	}
	sim_resp_json(rs, 200, json_pack("{s:i}", "reset", n));
}

static void post_reset(struct sim_resp *rs)
{
	int n = 0;

	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		bool had = sim_hw_clear(m);

		if (m->fault != FAULT_NONE) {
			sim_fault_set(m, FAULT_NONE, 0, 0);
			had = true;
		}
		n += had;
	}
	sim_resp_json(rs, 200, json_pack("{s:i}", "cleared", n));
}

static int parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

static void post_swap(const struct sim_req *rq, struct sim_resp *rs)
{
	json_t *body = body_object(rq, rs);
	struct miner *a, *b;
	char ipa[16], ipb[16], maca[18], macb[18];
	const char *sa, *sb;

	if (!body)
		return;
	sa = json_string_value(json_object_get(body, "a"));
	sb = json_string_value(json_object_get(body, "b"));
	if (!sa || !sb) {
		fail(rs, 400, "a, b: expected two MACs");
		goto out;
	}
	a = sim_miner_find(sa);
	b = sim_miner_find(sb);
	if (!a || !b) {
		fail(rs, 404, !a ? "a: no such miner" : "b: no such miner");
		goto out;
	}
	sim_miner_swap(a, b);
	sim_log("swap a=%s b=%s", sim_miner_mac(a, maca), sim_miner_mac(b, macb));
	sim_resp_json(rs, 200, json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}",
					 "a", "mac", maca, "ip", hive_ipv4_format(a->ip, ipa),
					 "b", "mac", macb, "ip", hive_ipv4_format(b->ip, ipb)));
out:
	json_decref(body);
}

/* A ladder preset of m's model by name, "" for none (when nullable); -1
 * with rs set on error. */
static int ladder_preset(const struct miner *m, json_t *v, const char *what, bool nullable,
			 struct sim_resp *rs)
{
	const char *name = json_string_value(v);
	int p = name ? sim_preset_find(sim_miner_model(m), name) : -1;
	char msg[160];

	if (nullable && json_is_null(v))
		return 0;
	if (p <= 0) {
		snprintf(msg, sizeof(msg), "%s: expected an autotune preset of this model "
			 "(e.g. \"2100\"; not \"disabled\")", what);
		fail(rs, 400, msg);
		return -1;
	}
	return p;
}

/* A person on the miner's web page (or the firmware itself) sets the
 * preset: it runs at once, no API call is counted. */
static void post_preset(struct miner *m, json_t *body, struct sim_resp *rs)
{
	const char *name = json_string_value(json_object_get(body, "preset"));
	const char *by = json_string_value(json_object_get(body, "by"));
	int pr = name ? sim_preset_find(sim_miner_model(m), name) : -1;
	int src = !by || strcmp(by, "web") == 0 ? SRC_WEB :
		  strcmp(by, "switcher") == 0 ? SRC_SWITCHER : -1;
	char mac[18];

	if (pr < 0) {
		fail(rs, 400, "preset: not a preset of this model");
	} else if (src < 0) {
		fail(rs, 400, "by: expected \"web\" (a person, the default) or \"switcher\"");
	} else if (!sim_miner_ctl(m)) {
		fail(rs, 500, "out of memory");
	} else {
		sim_log("preset_by_hand mac=%s preset=%s by=%s", sim_miner_mac(m, mac), name,
			src_names[src]);
		sim_miner_set_preset(m, pr, sim_now_ms(), src);
		sim_resp_json(rs, 200, miner_json(m, sim_now_ms()));
	}
}

/* The firmware's preset switcher: {"enabled", "top_preset", "min_preset",
 * "check_time"}, each optional. */
static void post_switcher(struct miner *m, json_t *body, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	json_t *je = json_object_get(body, "enabled"), *jt = json_object_get(body, "top_preset");
	json_t *jm = json_object_get(body, "min_preset"), *jc = json_object_get(body, "check_time");
	struct sim_ctl *c = sim_miner_ctl(m);
	int top, min, check;
	bool enabled;
	char mac[18], tn[16];

	if (!c) {
		fail(rs, 500, "out of memory");
		return;
	}
	enabled = c->switcher;
	top = c->top;
	min = c->min;
	check = c->check_s;
	if (je && !json_is_boolean(je)) {
		fail(rs, 400, "enabled: expected true or false");
		return;
	}
	if (je)
		enabled = json_is_true(je);
	if (jt && (top = ladder_preset(m, jt, "top_preset", true, rs)) < 0)
		return;
	if (jm && (min = ladder_preset(m, jm, "min_preset", false, rs)) < 0)
		return;
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1 ||
		   json_integer_value(jc) > 86400)) {
		fail(rs, 400, "check_time: expected seconds, 1..86400");
		return;
	}
	if (jc)
		check = (int)json_integer_value(jc);
	/* switched on without a top: the preset it runs, or the highest one a
	 * stock PSU carries */
	if (enabled && !top && !jt) {
		if (m->preset > 0) {
			top = m->preset;
		} else {
			top = md->nladder;
			while (top > 1 && md->ladder[top - 1].watts > md->modded_psu_w)
				top--;
		}
	}
	if (top && min > top) {
		fail(rs, 400, "min_preset: above top_preset");
		return;
	}
	c->switcher = enabled;
	c->top = (uint8_t)top;
	c->min = (uint8_t)min;
	c->check_s = (uint16_t)check;
	sim_log("switcher_config mac=%s enabled=%d top=%s check_time=%d", sim_miner_mac(m, mac),
		enabled, top ? sim_preset_name(md, top, tn, sizeof(tn)) : "null", check);
	sim_miner_switcher_changed(m, sim_now_ms());
	sim_resp_json(rs, 200, miner_json(m, sim_now_ms()));
}

/* /sim/miners/{mac}[/action] */
static void miner_route(const struct sim_req *rq, struct sim_resp *rs)
{
	char id[64], msg[160], mac[18], ip[16];
	const char *p = rq->path + strlen(PREFIX), *action = strchr(p, '/');
	size_t n = action ? (size_t)(action - p) : strlen(p);
	bool post = strcmp(rq->method, "POST") == 0;
	struct miner *m;
	json_t *body = NULL;

	if (n == 0 || n >= sizeof(id)) {
		fail(rs, 404, "no such miner");
		return;
	}
	memcpy(id, p, n);
	id[n] = '\0';
	if (!(m = sim_miner_find(id))) {
		snprintf(msg, sizeof(msg), "no miner with MAC or IP \"%s\"", id);
		fail(rs, 404, msg);
		return;
	}
	if (!action) {
		if (strcmp(rq->method, "GET") != 0)
			fail(rs, 405, "GET only");
		else
			sim_resp_json(rs, 200, miner_json(m, sim_now_ms()));
		return;
	}
	if (!post) {
		fail(rs, 405, "POST only");
		return;
	}
	if (strcmp(action, "/apikeys/delete") == 0) {
		int k = sim_miner_nkeys(m);
		if (m->creds)
			m->creds->nkeys = 0;
		sim_log("apikeys_deleted mac=%s count=%d", sim_miner_mac(m, mac), k);
		sim_resp_json(rs, 200, json_pack("{s:i}", "deleted", k));
		return;
	}
	if (strcmp(action, "/reboot") == 0) {
		struct sim_ctl *c = sim_miner_ctl(m);
		if (c)
			c->power_cycles++;
		sim_log("power_cycle mac=%s gone_s=%d", sim_miner_mac(m, mac), sim_opts.reboot_s);
		sim_miner_reboot(m, sim_now_ms());
		sim_resp_json(rs, 200, json_pack("{s:s}", "state", sim_miner_truth_state(m)));
		return;
	}
	if (!(body = body_object(rq, rs)))
		return;
	if (strcmp(action, "/password") == 0) {
		const char *pw = json_string_value(json_object_get(body, "password"));
		if (!pw || !*pw || strlen(pw) > 64) {
			fail(rs, 400, "password: expected a string of 1..64 characters");
		} else if (sim_miner_set_password(m, pw) < 0) {
			fail(rs, 500, "out of memory");
		} else {
			sim_log("password_changed mac=%s", sim_miner_mac(m, mac));
			sim_resp_json(rs, 200, json_pack("{s:s}", "mac", mac));
		}
	} else if (strcmp(action, "/move") == 0) {
		uint32_t to;
		int status = 400;
		if (parse_ip(json_string_value(json_object_get(body, "ip")), &to) < 0) {
			fail(rs, 400, "ip: expected an IPv4 address of the subnet");
		} else if (sim_miner_move(m, to, &status, msg, sizeof(msg)) < 0) {
			fail(rs, status, msg);
		} else {
			sim_resp_json(rs, 200, json_pack("{s:s, s:s}", "mac", sim_miner_mac(m, mac),
							 "ip", hive_ipv4_format(m->ip, ip)));
		}
	} else if (strcmp(action, "/preset") == 0) {
		post_preset(m, body, rs);
	} else if (strcmp(action, "/switcher") == 0) {
		post_switcher(m, body, rs);
	} else if (strcmp(action, "/preset-apply") == 0) {
		json_t *jm = json_object_get(body, "mode");
		int mode = json_is_string(jm) ? sim_apply_parse(json_string_value(jm)) : -1;
		struct sim_ctl *c;

		if (!json_is_null(jm) && mode < 0) {
			fail(rs, 400, "mode: expected live, restart, quiet, firmware or null "
			     "(the fleet's)");
		} else if (!(c = sim_miner_ctl(m))) {
			fail(rs, 500, "out of memory");
		} else {
			c->apply = (uint8_t)(mode < 0 ? APPLY_DEFAULT : mode);
			sim_log("preset_apply mac=%s mode=%s", sim_miner_mac(m, mac),
				sim_apply_name(sim_miner_apply_mode(m)));
			sim_resp_json(rs, 200, miner_json(m, sim_now_ms()));
		}
	} else {
		fail(rs, 404, "unknown action (password, apikeys/delete, move, preset, switcher, "
		     "preset-apply, reboot)");
	}
	json_decref(body);
}

void sim_admin_handle(const struct sim_req *rq, struct sim_resp *rs)
{
	bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
	const char *p = rq->path;

	if (strcmp(p, "/sim/miners") == 0 && get)
		get_miners(rs);
	else if (strcmp(p, "/sim/fleet") == 0 && get)
		get_fleet(rs);
	else if (strcmp(p, "/sim/hosts") == 0 && get)
		get_hosts(rs);
	else if (strcmp(p, "/sim/fault") == 0 && post)
		post_fault(rq, rs);
	else if (strcmp(p, "/sim/reset") == 0 && post)
		post_reset(rs);
	else if (strcmp(p, "/sim/swap") == 0 && post)
		post_swap(rq, rs);
	else if (strcmp(p, "/sim/config") == 0 && get)
		sim_resp_json(rs, 200, config_json());
	else if (strcmp(p, "/sim/config") == 0 && post)
		post_config(rq, rs);
	else if (strcmp(p, "/sim/counters/reset") == 0 && post)
		post_counters_reset(rs);
	else if (strncmp(p, PREFIX, strlen(PREFIX)) == 0)
		miner_route(rq, rs);
	else if (strcmp(p, "/sim/miners") == 0 || strcmp(p, "/sim/fleet") == 0 ||
		 strcmp(p, "/sim/hosts") == 0 || strcmp(p, "/sim/fault") == 0 ||
		 strcmp(p, "/sim/reset") == 0 || strcmp(p, "/sim/swap") == 0 ||
		 strcmp(p, "/sim/config") == 0 || strcmp(p, "/sim/counters/reset") == 0)
		fail(rs, 405, "method not allowed");
	else
		fail(rs, 404, "not found");
}
