/* aggregator — the hydro plant's "energy aggregator" as plant-api.md gives
 * it: GET {path}?plant_id=... with a bearer key answers one reading in MW.
 * The order of the checks is the one a proxy in front of a sick service
 * shows: an unwell aggregator fails every call (5xx) before auth is looked
 * at; then 401 for a wrong key, then 400 for an unknown plant. */
#include "plantsim.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hive/log.h"

#define DELAY_MAX_MS 60000

static int fail_status = 200;   /* __atomic: civetweb workers read it */
static int delay_ms;
static long long n_requests, n_served, n_unauthorized, n_bad_request, n_failed;

static void count(long long *n)
{
	__atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

/* Compares every byte whatever the first difference: a test double should
 * not teach a client that timing leaks are fine. */
static bool key_ok(const char *auth)
{
	const char *k;
	size_t klen = strlen(ps_opts.api_key), len;
	unsigned char diff = 0;

	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	for (k = auth + 7; *k == ' '; k++)
		;
	len = strlen(k);
	while (len && k[len - 1] == ' ')
		len--;
	if (len != klen)
		return false;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(k[i] ^ ps_opts.api_key[i]);
	return diff == 0;
}

static json_t *source_json(const struct ps_source_reading *s)
{
	char ts[21];

	return json_pack("{s:f, s:s, s:s}", "value_mw", s->w / 1e6, "status", s->status,
			 "source_timestamp", ps_rfc3339(s->ts, ts));
}

/* A source whose status is not success makes the reading untrustworthy;
 * the score is the admin's own (faults stay independent). */
static json_t *trust_json(const struct ps_reading *r)
{
	char summary[512] = "";
	size_t n = 0;

	for (int i = 0; i < r->nsources; i++) {
		const struct ps_source_reading *s = &r->src[i];
		if (strcmp(s->status, "success") == 0)
			continue;
		n += (size_t)snprintf(summary + n, n < sizeof(summary) ? sizeof(summary) - n : 0,
				      "%s%s %s", n ? ", " : "", s->name, s->status);
		if (n >= sizeof(summary))
			n = sizeof(summary) - 1;
	}
	if (n)
		return json_pack("{s:f, s:s, s:s}", "confidence_score", r->confidence,
				 "status", "degraded", "summary", summary);
	if (r->confidence <= 0.8)
		return json_pack("{s:f, s:s, s:s}", "confidence_score", r->confidence,
				 "status", "low", "summary", "low confidence in the collected values");
	return json_pack("{s:f, s:s, s:s}", "confidence_score", r->confidence,
			 "status", "ok", "summary", "all sources fresh");
}

static json_t *document(const struct ps_reading *r)
{
	json_t *gen = json_object(), *cons = json_object();
	char ts[21];

	for (int i = 0; i < r->nsources; i++)
		json_object_set_new(r->src[i].kind == PS_GENERATION ? gen : cons, r->src[i].name,
				    source_json(&r->src[i]));
	return json_pack("{s:{s:I, s:s, s:s, s:o, s:o, s:{s:f, s:f, s:f}, s:o}}", "reading",
			 "id", (json_int_t)r->id,
			 "plant_id", ps_opts.plant_id,
			 "collection_timestamp", ps_rfc3339(r->collected, ts),
			 "generation", gen,
			 "consumption", cons,
			 "totals",
			 "generation_mw", r->generation_w / 1e6,
			 "consumption_mw", r->consumption_w / 1e6,
			 "exported_mw", (r->generation_w - r->consumption_w) / 1e6,
			 "trust", trust_json(r));
}

static void hold(int ms)
{
	struct timespec slice = { 0, 50 * 1000000L };

	for (; ms > 0 && !ps_stopping(); ms -= 50)
		nanosleep(&slice, NULL);
}

void ps_agg_handle(struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *q = ri->query_string;
	char plant[128];
	struct ps_reading r;
	int status;

	if (strcmp(ri->request_method, "GET") != 0) {
		ps_http_error(c, 405, "GET only");
		return;
	}
	count(&n_requests);
	hold(__atomic_load_n(&delay_ms, __ATOMIC_RELAXED));
	if ((status = __atomic_load_n(&fail_status, __ATOMIC_RELAXED)) != 200) {
		count(&n_failed);
		ps_http_error(c, status, "aggregator unavailable");
		return;
	}
	if (!key_ok(mg_get_header(c, "Authorization"))) {
		count(&n_unauthorized);
		ps_http_error(c, 401, "unauthorized");
		return;
	}
	if (!q || mg_get_var(q, strlen(q), "plant_id", plant, sizeof(plant)) < 0) {
		count(&n_bad_request);
		ps_http_error(c, 400, "plant_id: missing");
		return;
	}
	if (strcmp(plant, ps_opts.plant_id) != 0) {
		count(&n_bad_request);
		ps_http_error(c, 400, "plant_id: unknown plant");
		return;
	}
	ps_plant_read(&r);
	count(&n_served);
	ps_http_json(c, 200, document(&r));
}

int ps_agg_set_failure(int status, int delay)
{
	if (!(status == 200 || (status >= 500 && status <= 599)) || delay < 0 ||
	    delay > DELAY_MAX_MS)
		return -1;
	__atomic_store_n(&fail_status, status, __ATOMIC_RELAXED);
	__atomic_store_n(&delay_ms, delay, __ATOMIC_RELAXED);
	return 0;
}

void ps_agg_reset(void)
{
	ps_agg_set_failure(200, 0);
}

json_t *ps_agg_state(void)
{
	return json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I}",
			 "path", ps_opts.path,
			 "status", __atomic_load_n(&fail_status, __ATOMIC_RELAXED),
			 "delay_ms", __atomic_load_n(&delay_ms, __ATOMIC_RELAXED),
			 "requests", (json_int_t)__atomic_load_n(&n_requests, __ATOMIC_RELAXED),
			 "served", (json_int_t)__atomic_load_n(&n_served, __ATOMIC_RELAXED),
			 "unauthorized", (json_int_t)__atomic_load_n(&n_unauthorized, __ATOMIC_RELAXED),
			 "bad_request", (json_int_t)__atomic_load_n(&n_bad_request, __ATOMIC_RELAXED),
			 "failed", (json_int_t)__atomic_load_n(&n_failed, __ATOMIC_RELAXED));
}
