/* routes — see routes.h. */
#include "routes.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "core.h"
#include "health.h"
#include "metrics.h"

static int get_metrics(struct api_req *r)
{
	char *text;
	int st;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	text = apid_metrics(r->apid);
	if (!text)
		return api_error(r, 500, "metrics unavailable");
	st = api_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text,
		      strlen(text));
	apid_metrics_free(text);
	return st;
}

static int get_health(struct api_req *r)
{
	const struct apid_health_text *t;
	int st;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	t = apid_health_text(r->apid);
	if (!t)
		return api_error(r, 500, "health unavailable");
	st = api_send(r, t->http_status, "application/json", NULL, t->body, t->len);
	apid_health_text_release(t);
	return st;
}

#define V APID_ROLE_VIEWER
#define O APID_ROLE_OPERATOR
#define A APID_ROLE_ADMIN

/* The methods of one path stay together, reads first: a 405 lists them
 * in this order. */
const struct apid_route apid_routes[] = {
	{ "GET", "/metrics", V, get_metrics, NULL },
	{ "GET", "/api/health", V, get_health, NULL },
	{ "GET", "/api/whoami", V, api_whoami, NULL },
	{ "GET", "/api/miners", V, api_miners_list, NULL },
	{ "GET", "/api/miners/{mac}", V, NULL, api_miner_get },
	/* managed; unlock_pass and pinned also need admin (api_miner_patch) */
	{ "PATCH", "/api/miners/{mac}", O, NULL, api_miner_patch },
	{ "GET", "/api/miners/{mac}/statuses", V, NULL, api_miner_statuses },
	{ "GET", "/api/miners/{mac}/telemetry", V, NULL, api_miner_telemetry },
	{ "GET", "/api/miners/{mac}/telemetry/hours", V, NULL, api_miner_chip_hours },
	{ "GET", "/api/miners/{mac}/history", V, NULL, api_miner_history },
	{ "POST", "/api/miners/{mac}/actions", O, NULL, api_miner_action },
	{ "GET", "/api/actions", V, api_actions_list, NULL },
	{ "POST", "/api/actions", O, api_actions_post, NULL },
	{ "GET", "/api/actions/{id}", V, NULL, api_action_get },
	{ "GET", "/api/power", V, api_power_get, NULL },
	{ "PATCH", "/api/power", A, api_power_patch, NULL },
	{ "GET", "/api/power/history", V, api_power_history, NULL },
	{ "GET", "/api/power/plan", V, api_power_plan, NULL },
	{ "GET", "/api/power/decisions", V, api_power_decisions, NULL },
	{ "GET", "/api/power/readings", V, api_power_readings, NULL },
	{ "GET", "/api/fleet/history", V, api_fleet_history, NULL },
	{ "GET", "/api/notifications", V, api_notifications, NULL },
	{ "GET", "/api/alerts/channels", V, api_alert_channels, NULL },
	{ "GET", "/api/alerts", V, api_alerts_list, NULL },
	{ "POST", "/api/alerts/{id}/ack", O, NULL, api_alert_ack },
	{ "GET", "/api/silences", V, api_silences_list, NULL },
	{ "POST", "/api/silences", O, api_silences_post, NULL },
	{ "DELETE", "/api/silences/{id}", O, NULL, api_silence_delete },
	{ "GET", "/api/audit", V, api_audit_list, NULL },
	{ "GET", "/api/models", V, api_models_list, NULL },
	{ "GET", "/api/models/{alias}", V, NULL, api_model_get },
	{ "PATCH", "/api/models/{alias}", A, NULL, api_model_patch },
	{ "GET", "/api/tokens", A, api_tokens_list, NULL },
	{ "POST", "/api/tokens", A, api_tokens_post, NULL },
	{ "DELETE", "/api/tokens/{name}", A, NULL, api_token_revoke },
};
const size_t apid_routes_count = sizeof(apid_routes) / sizeof(apid_routes[0]);

/* True when r's segments fit path; *arg is the segment of its {…}, *kind
 * its name ("mac", "alias", ...). */
static bool path_match(const struct api_req *r, const char *path, const char **arg,
		       const char **kind, size_t *kind_len)
{
	const char *p = path + 1;
	int i = 0;

	*arg = NULL;
	for (; *p; i++) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (i >= r->nsegs)
			return false;
		if (p[0] == '{') {
			*arg = r->segs[i];
			*kind = p + 1;
			*kind_len = n - 2;
		} else if (strlen(r->segs[i]) != n || memcmp(r->segs[i], p, n) != 0) {
			return false;
		}
		p += n + (end ? 1 : 0);
	}
	return i == r->nsegs;
}

static bool method_fits(const struct api_req *r, const char *method)
{
	if (strcmp(method, "GET") == 0)
		return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	return strcmp(r->method, method) == 0;
}

int apid_route(struct api_req *r)
{
	const struct apid_route *hit = NULL;
	const char *arg = NULL, *kind = "";
	char allow[96] = "", mac[API_MAC_LEN + 1];
	size_t kind_len = 0, used = 0;

	for (size_t i = 0; i < apid_routes_count && !hit; i++) {
		const struct apid_route *rt = &apid_routes[i];
		const char *a, *k = "";
		size_t kl = 0;
		int w;

		if (!path_match(r, rt->path, &a, &k, &kl))
			continue;
		if (method_fits(r, rt->method)) {
			hit = rt;
			arg = a;
			kind = k;
			kind_len = kl;
			break;
		}
		w = snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
			     strcmp(rt->method, "GET") == 0 ? "GET, HEAD" : rt->method);
		if (w > 0 && (size_t)w < sizeof(allow) - used)
			used += (size_t)w;
	}
	if (!hit && used) {
		char extra[128];

		snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
		return api_error_with(r, 405, extra, "method %s not allowed here (allowed: %s)",
				      r->method, allow);
	}
	if (!hit)
		return api_error(r, 404, "no such endpoint: %.200s", r->path);
	if (r->role < hit->role) {
		if (r->anonymous)
			return api_error_with(r, 401, "WWW-Authenticate: Bearer realm=\"powerhive\"\r\n",
					      "API token required: Authorization: Bearer <token>"
					      " (%s %s needs the %s role)", hit->method, hit->path,
					      apid_role_name(hit->role));
		return api_error(r, 403, "%s %s needs the %s role; token '%s' is %s", hit->method,
				 hit->path, apid_role_name(hit->role), r->actor,
				 apid_role_name(r->role));
	}
	if (!arg)
		return hit->fn(r);
	if (kind_len == 3 && memcmp(kind, "mac", 3) == 0) {
		if (api_mac_parse(arg, mac) < 0)
			return api_error(r, 400,
					 "bad miner id '%.40s': expected a MAC like aa:bb:cc:dd:ee:ff",
					 arg);
		arg = mac;
	} else if (kind_len == 5 && memcmp(kind, "alias", 5) == 0 && !api_alias_ok(arg)) {
		return api_error(r, 400, "bad model alias '%.40s'", arg);
	}
	return hit->fn_on(r, arg);
}
