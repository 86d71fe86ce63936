/* power — the balancer's state (GET /api/power) and its settings that an
 * operator may change (PATCH /api/power): docs/power.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hivectl.h"

static const char *from(const json_t *p, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(p, "settings_from"), key));

	return s && strcmp(s, "api") == 0 ? " (set through the API)" : "";
}

static long long integer(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void show_power(const json_t *p)
{
	const json_t *src = json_object_get(p, "source"), *m = json_object_get(p, "miners");
	const json_t *rd = json_object_get(p, "readings"), *d = json_object_get(p, "last_decision");
	const char *where = NULL;
	char b1[48], b2[48];

	hc_kv("mode", "%s%s", hc_str(p, "mode"), from(p, "mode"));
	hc_kv("state", "%s (%s)", hc_str(p, "state"), hc_str(p, "state_reason"));
	if (json_is_string(json_object_get(src, "url")))
		where = hc_str(src, "url");
	else if (json_is_string(json_object_get(src, "host")))
		where = hc_str(src, "host");
	hc_kv("source", "%s%s%s", hc_str(src, "kind"), where ? " " : "", where ? where : "");
	if (json_is_number(json_object_get(p, "feed_age_s")))
		hc_kv("feed age", "%.1f s", json_number_value(json_object_get(p, "feed_age_s")));
	else
		hc_kv("feed age", "-");
	if (json_is_integer(json_object_get(p, "budget_w")))
		hc_kv("budget", "%s%s", hc_watts(json_object_get(p, "budget_w"), b1, sizeof(b1)),
		      from(p, "budget_w"));
	hc_kv("generation", "%s", hc_watts(json_object_get(p, "generation_w"), b1, sizeof(b1)));
	hc_kv("available", "%s", hc_watts(json_object_get(p, "available_w"), b1, sizeof(b1)));
	hc_kv("margin", "%s %%%s", hc_num(json_object_get(p, "margin_pct"), 1, 1, b1, sizeof(b1)),
	      from(p, "margin_pct"));
	hc_kv("target", "%s", hc_watts(json_object_get(p, "target_w"), b1, sizeof(b1)));
	hc_kv("estimate", "%s (correction %s)", hc_watts(json_object_get(p, "estimate_w"), b1,
	      sizeof(b1)), hc_watts(json_object_get(p, "correction_w"), b2, sizeof(b2)));
	hc_kv("measured", "%s", hc_watts(json_object_get(p, "measured_w"), b1, sizeof(b1)));
	hc_kv("headroom", "%s", hc_watts(json_object_get(p, "headroom_w"), b1, sizeof(b1)));
	hc_kv("fallback", "%s%s", hc_str(p, "fallback"), from(p, "fallback"));
	if (json_is_object(m))
		hc_kv("miners", "%lld managed, %lld planned, %lld pinned, %lld excluded, "
		      "%lld in flight, %lld fixed load", integer(m, "managed"), integer(m, "planned"),
		      integer(m, "pinned"), integer(m, "excluded"), integer(m, "in_flight"),
		      integer(m, "fixed"));
	if (json_is_object(rd) && json_is_string(json_object_get(rd, "last_refused_reason")))
		hc_kv("readings", "%lld accepted, %lld refused (the last as %s)",
		      integer(rd, "accepted"), integer(rd, "refused"),
		      hc_str(rd, "last_refused_reason"));
	else if (json_is_object(rd))
		hc_kv("readings", "%lld accepted, %lld refused", integer(rd, "accepted"),
		      integer(rd, "refused"));
	if (json_is_object(d))
		hc_kv("last decision", "%s: %s (%s)", hc_str(d, "kind"), hc_str(d, "summary"),
		      hc_age(json_object_get(d, "ts"), b1, sizeof(b1)));
}

/* The options of `power set` as the PATCH body; HC_USAGE for a number
 * that is not one. */
static int set_body(const struct hc_opt *opts, json_t *body)
{
	const char *v;
	char *end;

	if ((v = hc_opt(opts, "mode")->value))
		json_object_set_new(body, "mode", json_string(v));
	if ((v = hc_opt(opts, "fallback")->value))
		json_object_set_new(body, "fallback", json_string(v));
	if ((v = hc_opt(opts, "margin")->value)) {
		double d;

		errno = 0;
		d = strtod(v, &end);
		if (!*v || *end || errno || !isfinite(d)) {
			fprintf(stderr, "hivectl power set: --margin: a percentage, not '%s'\n", v);
			return HC_USAGE;
		}
		json_object_set_new(body, "margin_pct", json_real(d));
	}
	if ((v = hc_opt(opts, "budget")->value)) {
		long long w;

		errno = 0;
		w = strtoll(v, &end, 10);
		if (!*v || *end || errno) {
			fprintf(stderr, "hivectl power set: --budget: whole watts, not '%s'\n", v);
			return HC_USAGE;
		}
		json_object_set_new(body, "budget_w", json_integer(w));
	}
	if (!json_object_size(body)) {
		fprintf(stderr, "hivectl power set: nothing to change: give --mode, --margin, "
			"--budget or --fallback\n");
		return HC_USAGE;
	}
	return HC_OK;
}

int hc_cmd_power(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt none[] = { { NULL, false, NULL } };
	struct hc_opt opts[] = { { "mode", false, NULL }, { "margin", false, NULL },
				 { "budget", false, NULL }, { "fallback", false, NULL },
				 { NULL, false, NULL } };
	bool set = argc > 0 && strcmp(argv[0], "set") == 0;
	json_t *body = NULL, *j;
	int rc, npos;

	if (set)
		rc = hc_args(c, "power set", argc - 1, argv + 1, opts, NULL, 0, &npos);
	else
		rc = hc_args(c, cmd, argc, argv, none, NULL, 0, &npos);
	if (rc != HC_OK)
		return rc;
	if (set && (rc = set_body(opts, body = json_object())) != HC_OK) {
		json_decref(body);
		return rc;
	}
	rc = hc_call(c, set ? "PATCH" : "GET", "/api/power", body, &j);
	json_decref(body);
	if (rc != HC_OK)
		return rc;
	if (c->json)
		hc_print_body(c);
	else
		show_power(j);
	json_decref(j);
	return HC_OK;
}
