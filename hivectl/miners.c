/* miners — the fleet as the API lists it: miners, one miner, the models
 * and their max preset, the actions log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hivectl.h"

#define LIST_LIMIT "10000"        /* the API's most per page: a whole farm */

static const char *yesno(const json_t *v)
{
	return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

/* GET path; on success the answer is printed as is (--json) or handed to
 * show. */
static int get_show(struct hc *c, const char *path, void (*show)(const json_t *))
{
	json_t *j;
	int rc = hc_call(c, "GET", path, NULL, &j);

	if (rc != HC_OK)
		return rc;
	if (c->json)
		hc_print_body(c);
	else
		show(j);
	json_decref(j);
	return HC_OK;
}

/* "/api/<what>/<escaped name><rest>" into buf; -1 on no memory. */
static int path_of(struct hc *c, char *buf, size_t len, const char *what, const char *name,
		   const char *rest)
{
	char *e = hc_escape(c, name);

	if (!e)
		return -1;
	snprintf(buf, len, "/api/%s/%s%s", what, e, rest);
	free(e);
	return 0;
}

/* ------------------------------------------------------------ miners */

static void show_miners(const json_t *j)
{
	static const char *const heads[] = { "ID", "IP", "MODEL", "STATE", "PRESET", "TH/s",
					     "POWER W", "CHIP °C", "MANAGED", NULL };
	struct hc_table *t = hc_table_new(heads, "lllllrrrl");
	json_t *miners = json_object_get(j, "miners"), *m;
	size_t i;
	char b1[32], b2[32], b3[32];

	json_array_foreach(miners, i, m) {
		const json_t *st = json_object_get(m, "status");
		const json_t *ip = json_object_get(m, "ip");
		bool online = json_is_true(json_object_get(m, "online"));

		hc_table_cell(t, "%s", hc_str(m, "id"));
		hc_table_cell(t, "%s", json_is_string(ip) ? json_string_value(ip)
							  : hc_str(m, "last_ip"));
		hc_table_cell(t, "%s", hc_str(m, "model"));
		hc_table_cell(t, "%s", online ? hc_str(st, "state") : "offline");
		hc_table_cell(t, "%s", hc_str(st, "preset"));
		hc_table_cell(t, "%s", hc_num(json_object_get(st, "hr_realtime_ghs"), 1, 1e-3, b1,
					      sizeof(b1)));
		/* "~": the firmware's estimate, not a PSU's measurement. */
		hc_table_cell(t, "%s%s", json_is_number(json_object_get(st, "power_w")) &&
			      json_is_false(json_object_get(st, "power_metered")) ? "~" : "",
			      hc_num(json_object_get(st, "power_w"), 0, 1, b2, sizeof(b2)));
		hc_table_cell(t, "%s", hc_num(json_object_get(st, "chip_temp_max"), 0, 1, b3,
					      sizeof(b3)));
		hc_table_cell(t, "%s", yesno(json_object_get(m, "managed")));
	}
	hc_table_print(t);
	if ((json_int_t)json_array_size(miners) +
	    json_integer_value(json_object_get(j, "offset")) <
	    json_integer_value(json_object_get(j, "total")))
		fprintf(stderr, "hivectl: %zu of %lld miners from offset %lld (--limit, --offset)\n",
			json_array_size(miners),
			(long long)json_integer_value(json_object_get(j, "total")),
			(long long)json_integer_value(json_object_get(j, "offset")));
}

int hc_cmd_miners(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { HC_FILTER_OPTS, { "limit", false, NULL }, { "offset", false, NULL },
				 { "sort", false, NULL }, { "order", false, NULL }, { NULL, false, NULL } };
	static const char *const paging[] = { "limit", "offset", "sort", "order" };
	char *q = NULL, *path = NULL;
	json_t *query = NULL;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK ||
	    (rc = hc_filter(cmd, opts, &query)) != HC_OK)
		return rc;
	/* The filters, then the paging: the API checks every value. */
	for (size_t i = 0; i < sizeof(paging) / sizeof(paging[0]); i++) {
		const char *v = hc_opt(opts, paging[i])->value;

		if (v || i == 0)
			json_object_set_new(query, paging[i], json_string(v ? v : LIST_LIMIT));
	}
	rc = HC_UNREACHABLE;
	if (!(q = hc_query(c, query)) || asprintf(&path, "/api/miners?%s", q) < 0) {
		path = NULL;
		fprintf(stderr, "hivectl: out of memory\n");
	} else {
		rc = get_show(c, path, show_miners);
	}
	free(q);
	free(path);
	json_decref(query);
	return rc;
}

/* ------------------------------------------------------------ miner */

static void show_miner(const json_t *m)
{
	static const char *const heads[] = { "CHAIN", "STATE", "TH/s", "FREQ MHz", "VOLTAGE",
					     "CHIP °C", "PCB °C", "HW ERRORS", NULL };
	const json_t *st = json_object_get(m, "status"), *v, *e, *ch, *pools;
	bool online = json_is_true(json_object_get(m, "online"));
	char b1[48], b2[48], b3[48], b4[48];
	struct hc_table *t;
	size_t i;

	hc_kv("id", "%s", hc_str(m, "id"));
	hc_kv("hostname", "%s", hc_str(m, "hostname"));
	if (online)
		hc_kv("ip", "%s", hc_str(m, "ip"));
	else
		hc_kv("ip", "offline (last known %s, last seen %s)", hc_str(m, "last_ip"),
		      hc_age(json_object_get(m, "last_seen"), b1, sizeof(b1)));
	hc_kv("model", "%s (%s)", hc_str(m, "model"), hc_str(m, "miner_name"));
	hc_kv("firmware", "%s %s", hc_str(m, "fw_name"), hc_str(m, "fw_version"));
	hc_kv("managed", "%s", yesno(json_object_get(m, "managed")));
	hc_kv("pinned", "%s", yesno(json_object_get(m, "pinned")));
	if (json_is_object(v = json_object_get(m, "conflict")))
		hc_kv("conflict", "%s (since %s)", hc_str(v, "reason"),
		      hc_age(json_object_get(v, "since"), b1, sizeof(b1)));
	if (json_is_object(v = json_object_get(m, "power_excluded")))
		hc_kv("power excluded", "%s (since %s)", hc_str(v, "reason"),
		      hc_age(json_object_get(v, "since"), b1, sizeof(b1)));
	if (json_is_object(st)) {
		const char *desc = json_string_value(json_object_get(st, "state_description"));

		hc_kv("state", "%s%s%s%s for %s (status %s)", hc_str(st, "state"),
		      desc && *desc ? " (" : "", desc && *desc ? desc : "", desc && *desc ? ")" : "",
		      json_is_number(json_object_get(st, "state_time")) ? hc_duration(
		      json_number_value(json_object_get(st, "state_time")), b1, sizeof(b1)) : "-",
		      hc_age(json_object_get(st, "ts"), b2, sizeof(b2)));
		hc_kv("preset", "%s (max preset of the model: %s)", hc_str(st, "preset"),
		      json_is_string(json_object_get(m, "max_preset")) ? hc_str(m, "max_preset")
								     : "none");
		hc_kv("hashrate", "%s TH/s (average %s, nominal %s)",
		      hc_num(json_object_get(st, "hr_realtime_ghs"), 1, 1e-3, b1, sizeof(b1)),
		      hc_num(json_object_get(st, "hr_average_ghs"), 1, 1e-3, b2, sizeof(b2)),
		      hc_num(json_object_get(st, "hr_nominal_ghs"), 1, 1e-3, b3, sizeof(b3)));
		hc_kv("power", "%s (%s)", hc_watts(json_object_get(st, "power_w"), b1, sizeof(b1)),
		      json_is_true(json_object_get(st, "power_metered")) ? "measured"
									 : "firmware estimate");
		hc_kv("temperature", "chip %s °C, board %s °C",
		      hc_num(json_object_get(st, "chip_temp_max"), 0, 1, b1, sizeof(b1)),
		      hc_num(json_object_get(st, "pcb_temp_max"), 0, 1, b2, sizeof(b2)));
		b1[0] = '\0';
		json_array_foreach(json_object_get(st, "fans"), i, v)
			snprintf(b1 + strlen(b1), sizeof(b1) - strlen(b1), "%s%s", i ? " " : "",
				 hc_num(v, 0, 1, b4, sizeof(b4)));
		hc_kv("fans", "%s rpm (duty %s %%)", b1[0] ? b1 : "-",
		      hc_num(json_object_get(st, "fan_duty"), 0, 1, b2, sizeof(b2)));
		hc_kv("hw errors", "%s", hc_num(json_object_get(st, "hw_errors"), 0, 1, b1,
						 sizeof(b1)));
		if (json_is_object(pools = json_object_get(st, "pools")))
			hc_kv("pools", "%s of %s working, %s", hc_num(json_object_get(pools, "working"),
			      0, 1, b1, sizeof(b1)), hc_num(json_object_get(pools, "total"), 0, 1, b2,
			      sizeof(b2)), hc_str(pools, "url"));
	} else {
		hc_kv("state", "no status yet");
	}
	hc_kv("first seen", "%s", hc_age(json_object_get(m, "first_seen"), b1, sizeof(b1)));
	if (json_is_object(e = json_object_get(m, "last_error")))
		hc_kv("last error", "%s %s: %s (%s)", hc_str(e, "op"), hc_str(e, "kind"),
		      hc_str(e, "message"), hc_age(json_object_get(e, "ts"), b1, sizeof(b1)));
	if (!json_array_size(ch = json_object_get(st, "chains")))
		return;
	putchar('\n');
	t = hc_table_new(heads, "rlrrrrrr");
	json_array_foreach(ch, i, v) {
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "id"), 0, 1, b1, sizeof(b1)));
		hc_table_cell(t, "%s", hc_str(v, "state"));
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "hr_rt_ghs"), 1, 1e-3, b1,
					      sizeof(b1)));
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "freq_mhz"), 0, 1, b1, sizeof(b1)));
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "voltage"), 0, 1, b1, sizeof(b1)));
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "chip_temp_max"), 0, 1, b1,
					      sizeof(b1)));
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "pcb_temp_max"), 0, 1, b1,
					      sizeof(b1)));
		hc_table_cell(t, "%s", hc_num(json_object_get(v, "hw_errors"), 0, 1, b1, sizeof(b1)));
	}
	hc_table_print(t);
}

int hc_cmd_miner(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { NULL, false, NULL } };
	const char *id;
	char path[512];
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, &id, 1, &npos)) != HC_OK)
		return rc;
	if (npos != 1) {
		fprintf(stderr, "hivectl miner: which miner? (hivectl miner <id>)\n");
		return HC_USAGE;
	}
	if (path_of(c, path, sizeof(path), "miners", id, "") < 0)
		return HC_UNREACHABLE;
	return get_show(c, path, show_miner);
}

/* ------------------------------------------------------------ models */

static int by_watts(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const json_t *wx = json_object_get(x, "watts"), *wy = json_object_get(y, "watts");

	if (!json_is_number(wx) || !json_is_number(wy))
		return json_is_number(wx) - json_is_number(wy);   /* no watts (disabled) first */
	return (json_number_value(wx) > json_number_value(wy)) -
	       (json_number_value(wx) < json_number_value(wy));
}

/* The model's preset names by watts (the firmware lists some out of
 * order), in buf. */
static const char *preset_names(const json_t *model, char *buf, size_t len)
{
	const json_t *presets = json_object_get(model, "presets");
	size_t n = json_array_size(presets), at = 0;
	const json_t **p = calloc(n ? n : 1, sizeof(*p));

	buf[0] = '\0';
	if (!p)
		return "-";
	for (size_t i = 0; i < n; i++)
		p[i] = json_array_get(presets, i);
	qsort(p, n, sizeof(*p), by_watts);
	for (size_t i = 0; i < n && at < len; i++) {
		int k = snprintf(buf + at, len - at, "%s%s", i ? " " : "", hc_str(p[i], "name"));

		at += k > 0 ? (size_t)k : 0;
	}
	free(p);
	return n ? buf : "-";
}

static void show_models(const json_t *j)
{
	static const char *const heads[] = { "MODEL", "NAME", "MINERS", "ONLINE", "MANAGED",
					     "MAX PRESET", "CONFLICTS", "PRESETS (by watts)", NULL };
	struct hc_table *t = hc_table_new(heads, "llrrrlrl");
	json_t *m;
	size_t i;
	char b[2048];

	json_array_foreach(json_object_get(j, "models"), i, m) {
		hc_table_cell(t, "%s", hc_str(m, "alias"));
		hc_table_cell(t, "%s", hc_str(m, "name"));
		hc_table_cell(t, "%s", hc_num(json_object_get(m, "miners"), 0, 1, b, sizeof(b)));
		hc_table_cell(t, "%s", hc_num(json_object_get(m, "miners_online"), 0, 1, b,
					      sizeof(b)));
		hc_table_cell(t, "%s", hc_num(json_object_get(m, "managed"), 0, 1, b, sizeof(b)));
		hc_table_cell(t, "%s", hc_str(m, "max_preset"));
		hc_table_cell(t, "%s", hc_num(json_object_get(m, "conflicts"), 0, 1, b, sizeof(b)));
		hc_table_cell(t, "%s", preset_names(m, b, sizeof(b)));
	}
	hc_table_print(t);
}

int hc_cmd_models(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { NULL, false, NULL } };
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK)
		return rc;
	return get_show(c, "/api/models", show_models);
}

int hc_cmd_max_preset(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { NULL, false, NULL } };
	const char *pos[2];
	char path[512];
	json_t *body, *j;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, pos, 2, &npos)) != HC_OK)
		return rc;
	if (npos != 2) {
		fprintf(stderr, "hivectl max-preset: give a model and a preset, or none "
			"(hivectl max-preset s19 2620)\n");
		return HC_USAGE;
	}
	if (path_of(c, path, sizeof(path), "models", pos[0], "") < 0)
		return HC_UNREACHABLE;
	body = json_pack("{s:o}", "max_preset", strcmp(pos[1], "none") == 0 ? json_null()
									 : json_string(pos[1]));
	rc = hc_call(c, "PATCH", path, body, &j);
	json_decref(body);
	if (rc != HC_OK)
		return rc;
	if (c->json)
		hc_print_body(c);
	else if (json_is_string(json_object_get(j, "max_preset")))
		printf("%s: max preset %s\n", hc_str(j, "alias"), hc_str(j, "max_preset"));
	else
		printf("%s: no max preset\n", hc_str(j, "alias"));
	json_decref(j);
	return HC_OK;
}

/* ------------------------------------------------------------ actions */

static void show_actions(const json_t *j)
{
	static const char *const heads[] = { "ID", "MINER", "ACTION", "STATE", "ACTOR", "CREATED",
					     "ERROR", NULL };
	struct hc_table *t = hc_table_new(heads, "rllllll");
	json_t *a, *err;
	size_t i;
	char b[48];

	json_array_foreach(json_object_get(j, "actions"), i, a) {
		hc_table_cell(t, "%s", hc_num(json_object_get(a, "id"), 0, 1, b, sizeof(b)));
		hc_table_cell(t, "%s", hc_str(a, "miner"));
		hc_table_cell(t, "%s%s%s", hc_str(a, "action"),
			      json_is_string(json_object_get(a, "preset")) ? " " : "",
			      json_is_string(json_object_get(a, "preset")) ? hc_str(a, "preset") : "");
		hc_table_cell(t, "%s", hc_str(a, "state"));
		hc_table_cell(t, "%s", hc_str(a, "actor"));
		hc_table_cell(t, "%s", hc_age(json_object_get(a, "created"), b, sizeof(b)));
		err = json_object_get(a, "error");
		hc_table_cell(t, "%s", json_is_object(err) ? hc_str(err, "message") : "");
	}
	hc_table_print(t);
}

int hc_cmd_actions(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { "miner", false, NULL }, { "state", false, NULL },
				 { "limit", false, NULL }, { NULL, false, NULL } };
	char *q = NULL, *path = NULL;
	json_t *query = json_object();
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK) {
		json_decref(query);
		return rc;
	}
	for (const struct hc_opt *o = opts; o->name; o++)
		if (o->value)
			json_object_set_new(query, o->name, json_string(o->value));
	rc = HC_UNREACHABLE;
	if (!(q = hc_query(c, query)) ||
	    asprintf(&path, "/api/actions%s%s", *q ? "?" : "", q) < 0) {
		path = NULL;
		fprintf(stderr, "hivectl: out of memory\n");
	} else {
		rc = get_show(c, path, show_actions);
	}
	free(q);
	free(path);
	json_decref(query);
	return rc;
}
