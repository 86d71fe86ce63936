/* health — the suite's health as apid sees it (GET /api/health): the
 * verdict and its problems first, then the fleet, the daemons, the sweeps. */
#include <stdio.h>

#include "hivectl.h"

static long long integer(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* Milliseconds as seconds, in buf. */
static const char *secs(const json_t *ms, char *buf, size_t len)
{
	return hc_num(ms, 1, 1e-3, buf, len);
}

static void show_health(const json_t *h)
{
	static const char *const dheads[] = { "DAEMON", "HOST", "PID", "STARTED", "HEARTBEAT s",
					      "IN FLIGHT", NULL };
	static const char *const sheads[] = { "SUBNET", "SWEPT", "TOOK s", "PROBED", "ANSWERED",
					      "MINERS", NULL };
	const json_t *a = json_object_get(h, "apid"), *f = json_object_get(h, "fleet");
	const json_t *w = json_object_get(h, "workers"), *e = json_object_get(h, "events");
	const json_t *p = json_object_get(h, "power"), *v;
	struct hc_table *t;
	char b1[48], b2[48], b3[48];
	size_t i;

	hc_kv("status", "%s", hc_str(h, "status"));
	json_array_foreach(json_object_get(h, "problems"), i, v)
		hc_kv("problem", "%s", json_string_value(v) ? json_string_value(v) : "-");
	hc_kv("apid", "%s, pid %lld, up %lld s", hc_str(a, "version"), integer(a, "pid"),
	      integer(a, "uptime_s"));
	if (json_is_object(f)) {
		hc_kv("miners", "%lld known, %lld online, %lld mining, %lld managed", integer(f,
		      "miners"), integer(f, "online"), integer(f, "mining"), integer(f, "managed"));
		hc_kv("failing", "%lld with errors, %lld in failure", integer(f, "errors"),
		      integer(f, "failure"));
		hc_kv("hashrate", "%s TH/s", hc_num(json_object_get(f, "hashrate_ghs"), 1, 1e-3, b1,
						    sizeof(b1)));
		hc_kv("draw", "%s (%s of it estimated)", hc_watts(json_object_get(f, "power_w"),
		      b1, sizeof(b1)), hc_watts(json_object_get(f, "power_estimated_w"), b2,
		      sizeof(b2)));
	}
	hc_kv("workers", "%lld status, %lld telemetry, %lld control", integer(w, "status"),
	      integer(w, "telemetry"), integer(w, "control"));
	hc_kv("events", "%lld received, %lld stored, %lld rejected, %lld lost",
	      integer(e, "received"), integer(e, "stored"), integer(e, "rejected"),
	      integer(e, "lost"));
	hc_kv("actions", "%lld open", integer(json_object_get(h, "actions"), "open"));
	if (json_is_object(p))
		hc_kv("balancer", "mode %s, state %s", hc_str(p, "mode"), hc_str(p, "state"));
	if (json_array_size(json_object_get(h, "daemons"))) {
		putchar('\n');
		t = hc_table_new(dheads, "llrlrr");
		json_array_foreach(json_object_get(h, "daemons"), i, v) {
			hc_table_cell(t, "%s", hc_str(v, "daemon"));
			hc_table_cell(t, "%s", hc_str(v, "host"));
			hc_table_cell(t, "%lld", integer(v, "pid"));
			hc_table_cell(t, "%s", hc_age(json_object_get(v, "started"), b1, sizeof(b1)));
			hc_table_cell(t, "%s", secs(json_object_get(v, "heartbeat_age_ms"), b2,
						    sizeof(b2)));
			hc_table_cell(t, "%lld", integer(v, "in_flight"));
		}
		hc_table_print(t);
	}
	if (json_array_size(json_object_get(h, "sweeps"))) {
		putchar('\n');
		t = hc_table_new(sheads, "llrrrr");
		json_array_foreach(json_object_get(h, "sweeps"), i, v) {
			hc_table_cell(t, "%s", hc_str(v, "subnet"));
			hc_table_cell(t, "%s", hc_age(json_object_get(v, "ts_ms"), b1, sizeof(b1)));
			hc_table_cell(t, "%s", secs(json_object_get(v, "duration_ms"), b3, sizeof(b3)));
			hc_table_cell(t, "%lld", integer(v, "probed"));
			hc_table_cell(t, "%lld", integer(v, "answered"));
			hc_table_cell(t, "%lld", integer(v, "miners"));
		}
		hc_table_print(t);
	}
}

int hc_cmd_health(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { NULL, false, NULL } };
	json_t *j;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK ||
	    (rc = hc_call(c, "GET", "/api/health", NULL, &j)) != HC_OK)
		return rc;
	if (c->json)
		hc_print_body(c);
	else
		show_health(j);
	json_decref(j);
	return HC_OK;
}
