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
		      "ip", sim_ip_str(m->ip, ip), "mac", sim_miner_mac(m, mac),
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
		json_array_append_new(a, json_pack("{s:s, s:s, s:I}", "ip", sim_ip_str(h->ip, ip),
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
	int online = 0, mining = 0;

	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		sim_miner_update(m, now);
		online += sim_miner_online(m);
		mining += m->phase == PH_MINING;
		power += lround(sim_miner_power(m, now));
		hr += round(sim_miner_hashrate(m, now) * 100.0) / 100.0;
		requests += m->requests;
	}
	sim_resp_json(rs, 200, json_pack("{s:i, s:i, s:i, s:I, s:f, s:I, s:i, s:i}",
					 "miners", sim_fleet.nminers, "online", online,
					 "mining", mining, "power_w", (json_int_t)power,
					 "hashrate_ghs", round(hr * 100.0) / 100.0,
					 "requests", (json_int_t)requests,
					 "non_miners", sim_fleet.nhosts,
					 "connections", sim_http_conns()));
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

static void post_fault(const struct sim_req *rq, struct sim_resp *rs)
{
	json_t *body = body_object(rq, rs), *jshare, *jsec, *jeps, *applied;
	const char *target, *kind_s;
	double share = 1.0, seconds = 3.0;
	uint32_t eps = SIM_EP_ALL;
	int kind, n;
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
	if (!kind_s || (kind = sim_fault_parse(kind_s)) < 0) {
		fail(rs, 400, "kind: expected one of offline, slow, reset, http500, invalid_json, "
		     "truncated, missing_fields, null_fields, strings, oversized, none");
		goto out;
	}
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

	if (kind == FAULT_SLOW)
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
			sim_fault_set(m, kind, (uint32_t)lround(seconds * 1000), eps);
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
		sim_fault_set(m, kind, (uint32_t)lround(seconds * 1000), eps);
		json_array_append_new(applied, json_string(sim_miner_mac(m, mac)));
	}
	sim_resp_json(rs, 200, json_pack("{s:o}", "applied", applied));
out:
	json_decref(body);
}

static void post_reset(struct sim_resp *rs)
{
	int n = 0;

	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		if (m->fault != FAULT_NONE) {
			sim_fault_set(m, FAULT_NONE, 0, 0);
			n++;
		}
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
					 "a", "mac", maca, "ip", sim_ip_str(a->ip, ipa),
					 "b", "mac", macb, "ip", sim_ip_str(b->ip, ipb)));
out:
	json_decref(body);
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
							 "ip", sim_ip_str(m->ip, ip)));
		}
	} else if (strcmp(action, "/preset") == 0) {
		/* the firmware moving its own preset (switcher, downscale) */
		const char *name = json_string_value(json_object_get(body, "preset"));
		int pr = name ? sim_preset_find(sim_miner_model(m), name) : -1;
		if (pr < 0) {
			fail(rs, 400, "preset: not a preset of this model");
		} else {
			sim_miner_set_preset(m, pr, sim_now_ms());
			sim_resp_json(rs, 200, miner_json(m, sim_now_ms()));
		}
	} else {
		fail(rs, 404, "unknown action (password, apikeys/delete, move, preset, reboot)");
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
	else if (strncmp(p, PREFIX, strlen(PREFIX)) == 0)
		miner_route(rq, rs);
	else if (strcmp(p, "/sim/miners") == 0 || strcmp(p, "/sim/fleet") == 0 ||
		 strcmp(p, "/sim/hosts") == 0 || strcmp(p, "/sim/fault") == 0 ||
		 strcmp(p, "/sim/reset") == 0 || strcmp(p, "/sim/swap") == 0)
		fail(rs, 405, "method not allowed");
	else
		fail(rs, 404, "not found");
}
