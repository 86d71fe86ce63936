/* admin — the /sim API on the HTTP port: the plant's ground truth, and the
 * hand that moves the plant and breaks its feeds. JSON in and out; every
 * change answers the new state and logs one line "admin change=<what> ...";
 * errors are {"error":"..."} (400 bad body, 404 unknown path or source,
 * 405 wrong method, 409 not possible in this setup). One table drives the
 * routing. */
#include "plantsim.h"

#include <civetweb.h>
#include <modbus.h>
#include <stdio.h>
#include <string.h>

#include "hive/json.h"
#include "hive/log.h"

#define ERR_MAX 256

typedef void handler_fn(struct mg_connection *c, json_t *body);

static json_t *state(void)
{
	json_t *j = json_pack("{s:s}", "plant_id", ps_opts.plant_id), *plant = ps_plant_state();

	json_object_update(j, plant);
	json_decref(plant);
	json_object_set_new(json_object_get(j, "consumption"), "minersim", ps_meter_state());
	json_object_set_new(j, "aggregator", ps_agg_state());
	json_object_set_new(j, "modbus", ps_modbus_state());
	return j;
}

static void answer_state(struct mg_connection *c)
{
	ps_http_json(c, 200, state());
}

/* A number member in lo..hi; answers 400 itself when it is not. */
static int number(struct mg_connection *c, json_t *body, const char *key, bool required,
		  double lo, double hi, double *out)
{
	char err[ERR_MAX];
	int rc = hive_json_num(body, key, required, out, err, sizeof(err));

	if (rc == 0 && !(*out >= lo && *out <= hi)) {
		snprintf(err, sizeof(err), "%s: expected a number in %g..%g", key, lo, hi);
		rc = -1;
	}
	if (rc < 0)
		ps_http_error(c, 400, err);
	return rc;
}

static void get_state(struct mg_connection *c, json_t *body)
{
	(void)body;
	answer_state(c);
}

static void post_generation(struct mg_connection *c, json_t *body)
{
	double w, was;

	if (number(c, body, "w", true, 0, 1e10, &w) < 0)
		return;
	ps_plant_set_generation(w, &was);
	log_info("admin change=generation w=%.0f was_w=%.0f", w, was);
	answer_state(c);
}

static void post_ramp(struct mg_connection *c, json_t *body)
{
	double w, seconds, from;

	if (number(c, body, "w", true, 0, 1e10, &w) < 0 ||
	    number(c, body, "seconds", true, 0, 86400, &seconds) < 0)
		return;
	ps_plant_ramp(w, seconds, &from);
	log_info("admin change=ramp from_w=%.0f to_w=%.0f seconds=%g", from, w, seconds);
	answer_state(c);
}

static void post_drop(struct mg_connection *c, json_t *body)
{
	double pct, from, to;

	if (number(c, body, "percent", true, 0, 100, &pct) < 0)
		return;
	if (ps_plant_drop(pct, &from, &to) < 0) {
		ps_http_error(c, 400, "percent: expected a number in 0 (excluded)..100");
		return;
	}
	log_info("admin change=drop percent=%g from_w=%.0f to_w=%.0f", pct, from, to);
	answer_state(c);
}

static void post_noise(struct mg_connection *c, json_t *body)
{
	char err[ERR_MAX];
	double pct;
	long long seed = 1;

	if (number(c, body, "percent", true, 0, 50, &pct) < 0)
		return;
	if (hive_json_int(body, "seed", false, &seed, err, sizeof(err)) < 0 || seed < 0) {
		ps_http_error(c, 400, seed < 0 ? "seed: expected an integer >= 0" : err);
		return;
	}
	ps_plant_noise(pct, (uint64_t)seed);
	log_info("admin change=noise percent=%g seed=%lld", pct, seed);
	answer_state(c);
}

static void post_stale(struct mg_connection *c, json_t *body)
{
	char err[ERR_MAX];
	bool on = true;

	if (hive_json_bool(body, "stale", false, &on, err, sizeof(err)) < 0) {
		ps_http_error(c, 400, err);
		return;
	}
	ps_plant_stale(on);
	log_info("admin change=stale stale=%d", on);
	answer_state(c);
}

static void post_confidence(struct mg_connection *c, json_t *body)
{
	double score;

	if (number(c, body, "score", true, 0, 1, &score) < 0)
		return;
	ps_plant_confidence(score);
	log_info("admin change=confidence score=%g", score);
	answer_state(c);
}

/* A status word like the aggregator's own: "error", "timeout", "stale". */
static bool status_word(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= PS_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void post_source(struct mg_connection *c, json_t *body)
{
	char name[PS_NAME_MAX], status[PS_NAME_MAX] = "error", err[ERR_MAX];

	if (hive_json_str(body, "name", true, name, sizeof(name), err, sizeof(err)) < 0 ||
	    hive_json_str(body, "status", false, status, sizeof(status), err, sizeof(err)) < 0) {
		ps_http_error(c, 400, err);
		return;
	}
	if (!status_word(status)) {
		ps_http_error(c, 400, "status: expected a word of a-z, 0-9, _ or - "
			      "(\"success\" restores the source)");
		return;
	}
	if (ps_plant_source_status(name, status, err, sizeof(err)) < 0) {
		ps_http_error(c, 404, err);
		return;
	}
	log_info("admin change=source name=%s status=%s", name, status);
	answer_state(c);
}

static void post_aggregator(struct mg_connection *c, json_t *body)
{
	char err[ERR_MAX];
	long long status = 200, delay = 0;

	if (hive_json_int(body, "status", false, &status, err, sizeof(err)) < 0 ||
	    hive_json_int(body, "delay_ms", false, &delay, err, sizeof(err)) < 0) {
		ps_http_error(c, 400, err);
		return;
	}
	if ((status != 200 && (status < 500 || status > 599)) || delay < 0 || delay > 60000 ||
	    ps_agg_set_failure((int)status, (int)delay) < 0) {
		ps_http_error(c, 400, "status: expected 200 (healthy) or 500..599; "
			      "delay_ms: expected 0..60000");
		return;
	}
	log_info("admin change=aggregator status=%lld delay_ms=%lld", status, delay);
	answer_state(c);
}

static void post_modbus(struct mg_connection *c, json_t *body)
{
	char mode_s[16] = "", err[ERR_MAX];
	long long exc = MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE;
	int mode;

	if (hive_json_str(body, "mode", true, mode_s, sizeof(mode_s), err, sizeof(err)) < 0 ||
	    hive_json_int(body, "exception", false, &exc, err, sizeof(err)) < 0) {
		ps_http_error(c, 400, err);
		return;
	}
	if ((mode = ps_mb_mode_parse(mode_s)) < 0) {
		ps_http_error(c, 400, "mode: expected ok, silent, exception or closed");
		return;
	}
	if (exc < 1 || exc > 255) {
		ps_http_error(c, 400, "exception: expected a Modbus exception code 1..255");
		return;
	}
	if (ps_modbus_set_mode(mode, (int)exc, err, sizeof(err)) < 0) {
		ps_http_error(c, 409, err);
		return;
	}
	log_info("admin change=modbus mode=%s exception=%lld", mode_s, exc);
	answer_state(c);
}

static void post_zero(struct mg_connection *c, json_t *body)
{
	char feed_s[16] = "generation", err[ERR_MAX];
	double seconds = 0;
	bool on = true;
	int feed;

	if (hive_json_bool(body, "on", false, &on, err, sizeof(err)) < 0 ||
	    hive_json_str(body, "feed", false, feed_s, sizeof(feed_s), err, sizeof(err)) < 0) {
		ps_http_error(c, 400, err);
		return;
	}
	if (number(c, body, "seconds", false, 0, 86400, &seconds) < 0)
		return;
	if (strcmp(feed_s, "generation") == 0)
		feed = PS_FEED_GENERATION;
	else if (strcmp(feed_s, "consumption") == 0)
		feed = PS_FEED_CONSUMPTION;
	else {
		ps_http_error(c, 400, "feed: expected generation or consumption");
		return;
	}
	ps_plant_zero(on, feed, seconds);
	log_info("admin change=zero on=%d feed=%s seconds=%g", on, feed_s, seconds);
	answer_state(c);
}

static void post_consumption(struct mg_connection *c, json_t *body)
{
	double w;

	if (number(c, body, "w", true, 0, 1e10, &w) < 0)
		return;
	if (ps_plant_set_consumption(w) < 0) {
		ps_http_error(c, 409, "consumption follows minersim (--minersim): it cannot be set");
		return;
	}
	log_info("admin change=consumption w=%.0f", w);
	answer_state(c);
}

static void post_reset(struct mg_connection *c, json_t *body)
{
	(void)body;
	ps_plant_reset();
	ps_agg_reset();
	ps_modbus_reset();
	log_info("admin change=reset");
	answer_state(c);
}

static const struct route {
	const char *path;
	const char *method;
	handler_fn *fn;
} routes[] = {
	{ "/sim/state",       "GET",  get_state },
	{ "/sim/generation",  "POST", post_generation },
	{ "/sim/ramp",        "POST", post_ramp },
	{ "/sim/drop",        "POST", post_drop },
	{ "/sim/noise",       "POST", post_noise },
	{ "/sim/stale",       "POST", post_stale },
	{ "/sim/confidence",  "POST", post_confidence },
	{ "/sim/source",      "POST", post_source },
	{ "/sim/aggregator",  "POST", post_aggregator },
	{ "/sim/modbus",      "POST", post_modbus },
	{ "/sim/zero",        "POST", post_zero },
	{ "/sim/consumption", "POST", post_consumption },
	{ "/sim/reset",       "POST", post_reset },
};

void ps_admin_handle(struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *path = ri->local_uri;
	json_t *body = NULL;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (strcmp(path, r->path) != 0)
			continue;
		if (strcmp(ri->request_method, r->method) != 0) {
			ps_http_error(c, 405, strcmp(r->method, "GET") == 0 ? "GET only" : "POST only");
			return;
		}
		if (strcmp(r->method, "POST") == 0 && !(body = ps_http_body_object(c)))
			return;
		r->fn(c, body);
		json_decref(body);
		return;
	}
	ps_http_error(c, 404, "not found (GET /sim/state; POST /sim/generation, ramp, drop, "
		      "noise, stale, confidence, source, aggregator, modbus, zero, consumption, "
		      "reset)");
}
