/* test_monitoring — the Prometheus and Grafana wiring of etc/monitoring/.
 *
 * Grafana is not packaged in Debian and no image can be pulled here, so the
 * dashboard is checked statically: every query of grafana/dashboards/
 * powerhive.json (panels and variables) is read for the metric names it
 * selects, and a real apid (minersim with 30 miners, plantsim, apid,
 * discoverd, pollerd, telemetryd) must serve each of them on /metrics. The
 * compose profile's mounts must put each file where the others name it.
 *
 * Prometheus is in Debian: /usr/bin/prometheus runs on loopback with
 * etc/monitoring/prometheus.yml (the same job and token file setting; the
 * target, the token file, the interval rewritten for the suite), scrapes
 * apid, and a per-miner series comes back through its HTTP API, one sample
 * per miner; every dashboard query evaluates there without an error.
 *
 * KEEP_TMP=1 keeps the run directory (configs, database, Prometheus's
 * data, every log).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../lib/suite.h"
#include "../lib/testlib.h"

#define DASHBOARD    "etc/monitoring/grafana/dashboards/powerhive.json"
#define PROM_CONFIG  "etc/monitoring/prometheus.yml"
#define DATASOURCES  "etc/monitoring/grafana/provisioning/datasources/powerhive.yml"
#define PROVIDERS    "etc/monitoring/grafana/provisioning/dashboards/powerhive.yml"
#define PROMETHEUS   "/usr/bin/prometheus"
#define PROMTOOL     "/usr/bin/promtool"
#define SUBNET       "127.91.0.0/26"
#define MINERS       30
#define NAMES_MAX    16          /* metric names in one query */
#define NAME_LEN     128
#define QUERIES_MAX  64

/* ------------------------------------------------------------ PromQL names */

static bool in(const char *w, size_t n, const char *const list[])
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && strncmp(list[i], w, n) == 0)
			return true;
	return false;
}

/* Past the bracket that closes the one at e (strings inside skipped). */
static const char *close_of(const char *e)
{
	char open = *e, shut = open == '(' ? ')' : open == '{' ? '}' : ']';
	int depth = 0;

	for (; *e; e++) {
		if (*e == '"' || *e == '\'' || *e == '`') {
			char q = *e;
			while (e[1] && e[1] != q)
				e += e[1] == '\\' && e[2] ? 2 : 1;
			if (e[1])
				e++;
		} else if (*e == open) {
			depth++;
		} else if (*e == shut && --depth == 0) {
			return e + 1;
		}
	}
	return e;
}

/* The metric names a PromQL expression selects, each once, in order: every
 * identifier that is not a function, an aggregation, a keyword, a label
 * (inside {...}, by/without/on/ignoring/group_x lists) or a number. Grafana's
 * variables ($model, ${model}) are skipped. The count, at most max. */
static int promql_metrics(const char *e, char names[][NAME_LEN], int max)
{
	static const char *const lists[] = { "by", "without", "on", "ignoring", "group_left",
					     "group_right", NULL };
	static const char *const words[] = { "and", "or", "unless", "bool", "offset", "atan2",
					     "inf", "nan", "sum", "min", "max", "avg", "group",
					     "stddev", "stdvar", "count", "count_values",
					     "bottomk", "topk", "quantile", NULL };
	int n = 0;

	while (*e) {
		const char *w = e, *k;
		size_t len;

		if (*e == '"' || *e == '\'' || *e == '`' || *e == '{' || *e == '[') {
			if (*e == '{' || *e == '[') {
				e = close_of(e);
			} else {
				char q = *e++;
				while (*e && *e != q)
					e += *e == '\\' && e[1] ? 2 : 1;
				if (*e)
					e++;
			}
			continue;
		}
		if (*e == '$') {
			e++;
			if (*e == '{')
				e = close_of(e);
			while (isalnum((unsigned char)*e) || *e == '_')
				e++;
			continue;
		}
		if (isdigit((unsigned char)*e) || (*e == '.' && isdigit((unsigned char)e[1]))) {
			while (isalnum((unsigned char)*e) || *e == '.')
				e++;
			continue;
		}
		if (!isalpha((unsigned char)*e) && *e != '_' && *e != ':') {
			e++;
			continue;
		}
		while (isalnum((unsigned char)*e) || *e == '_' || *e == ':')
			e++;
		len = (size_t)(e - w);
		for (k = e; *k == ' ' || *k == '\t' || *k == '\n'; k++)
			;
		if (in(w, len, lists)) {
			if (*k == '(')
				e = close_of(k);
			continue;
		}
		if (in(w, len, words) || *k == '(')
			continue;               /* a keyword, an aggregation, a function */
		bool seen = false;
		for (int i = 0; i < n && !seen; i++)
			seen = strlen(names[i]) == len && strncmp(names[i], w, len) == 0;
		if (!seen && n < max && len < NAME_LEN)
			snprintf(names[n++], NAME_LEN, "%.*s", (int)len, w);
	}
	return n;
}

static void test_promql_names(void **state)
{
	static const struct {
		const char *expr;
		const char *want;         /* the names, space-separated */
	} cases[] = {
		{ "powerhive_fleet_online", "powerhive_fleet_online" },
		{ "sum by (model) (powerhive_miner_online{model=~\"$model\"})",
		  "powerhive_miner_online" },
		{ "quantile by (model) (0.5, a_b / c) / on(model) group_left() d offset 5m "
		  "and on(mac) e{state=\"mining\", x=\"f\"}", "a_b c d e" },
		{ "label_replace(sum(x <= bool 50), \"le\", \"50\", \"\", \"\") or "
		  "label_replace(count(y), \"le\", \"+Inf\", \"\", \"\")", "x y" },
		{ "rate(foo_total[$__rate_interval]) * 1e-3 + ignoring(a, b) foo_total", "foo_total" },
		{ "topk(10, t * on(mac) group_left(ip, hostname) info)", "t info" },
		{ "max(s{state=\"ok\"}) + 2 * max(s{state='a}b'})", "s" },
		{ "{__name__=\"hidden\"} or vector(0) or time()", "" },
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char names[NAMES_MAX][NAME_LEN], got[512] = "";
		int n = promql_metrics(cases[c].expr, names, NAMES_MAX);

		for (int i = 0; i < n; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
				 names[i]);
		if (strcmp(got, cases[c].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[c].expr, got, cases[c].want);
	}
}

/* ------------------------------------------------------------ the dashboard */

/* Every query of the dashboard, for the live tests. */
static struct query {
	char where[160];              /* "panel \"Hottest miners\" A", "variable model" */
	char *expr;
	char names[NAMES_MAX][NAME_LEN];
	int nnames;
} queries[QUERIES_MAX];
static int nqueries;
static bool dashboard_read;

static void add_query(const char *where, const char *expr)
{
	struct query *q;

	if (!expr || !*expr)
		fail_msg("%s: no query", where);
	if (nqueries == QUERIES_MAX)
		fail_msg("more than %d queries: raise QUERIES_MAX", QUERIES_MAX);
	q = &queries[nqueries++];
	snprintf(q->where, sizeof(q->where), "%s", where);
	q->expr = strdup(expr);
	q->nnames = promql_metrics(expr, q->names, NAMES_MAX);
	if (q->nnames == 0)
		fail_msg("%s: the query names no metric: %s", where, expr);
	for (int i = 0; i < q->nnames; i++)
		if (strncmp(q->names[i], "powerhive_", 10) != 0)
			fail_msg("%s: %s is not one of apid's metrics (powerhive_*): %s", where,
				 q->names[i], expr);
}

/* The panel's or target's data source: the dashboard's variable, so that
 * the provisioned Prometheus (or any other one, imported) serves it. */
static void check_datasource(const char *where, const json_t *o)
{
	const json_t *ds = json_object_get(o, "datasource");
	const char *uid = json_string_value(json_object_get(ds, "uid"));
	const char *type = json_string_value(json_object_get(ds, "type"));

	if (!uid || strcmp(uid, "${datasource}") != 0 || !type || strcmp(type, "prometheus") != 0)
		fail_msg("%s: datasource must be {\"type\":\"prometheus\",\"uid\":\"${datasource}\"}",
			 where);
}

static void read_panels(const json_t *panels, json_t *ids)
{
	size_t i, t;
	const json_t *p, *target;

	json_array_foreach(panels, i, p) {
		const char *title = json_string_value(json_object_get(p, "title"));
		const char *type = json_string_value(json_object_get(p, "type"));
		json_int_t id = json_integer_value(json_object_get(p, "id"));
		char where[160], key[32];

		snprintf(where, sizeof(where), "panel \"%s\"", title ? title : "?");
		if (!title || !type || !json_is_object(json_object_get(p, "gridPos")))
			fail_msg("%s: needs a title, a type and a gridPos", where);
		snprintf(key, sizeof(key), "%lld", (long long)id);
		if (id <= 0 || json_object_get(ids, key))
			fail_msg("%s: id %lld missing or not unique", where, (long long)id);
		json_object_set_new(ids, key, json_true());
		if (strcmp(type, "row") == 0) {          /* a collapsed row holds its panels */
			read_panels(json_object_get(p, "panels"), ids);
			continue;
		}
		check_datasource(where, p);
		if (json_array_size(json_object_get(p, "targets")) == 0)
			fail_msg("%s: no query", where);
		json_array_foreach(json_object_get(p, "targets"), t, target) {
			const char *ref = json_string_value(json_object_get(target, "refId"));
			char w[200];

			snprintf(w, sizeof(w), "%s %s", where, ref ? ref : "?");
			check_datasource(w, target);
			add_query(w, json_string_value(json_object_get(target, "expr")));
		}
	}
}

/* A variable's query is Grafana's, not PromQL: label_values(SELECTOR,
 * label) and query_result(EXPR) name a PromQL part, in buf. NULL for any
 * other form (label_values(label) alone reads every series: too broad). */
static const char *variable_selector(const char *q, char *buf, size_t len)
{
	const char *s, *e;

	if (!q)
		return NULL;
	if (strncmp(q, "label_values(", 13) == 0) {
		s = q + 13;
		e = strrchr(q, ',');
	} else if (strncmp(q, "query_result(", 13) == 0) {
		s = q + 13;
		e = strrchr(q, ')');
	} else {
		return NULL;
	}
	if (!e || e < s)
		return NULL;
	snprintf(buf, len, "%.*s", (int)(e - s), s);
	return buf;
}

/* powerhive.json: valid JSON, every panel's and variable's query read. */
static void test_dashboard(void **state)
{
	json_error_t err;
	json_t *d = json_load_file(DASHBOARD, JSON_REJECT_DUPLICATES, &err), *ids, *v;
	size_t i;
	int panels_queries;

	(void)state;
	if (!d)
		fail_msg("%s: line %d: %s", DASHBOARD, err.line, err.text);
	assert_string_equal(json_string_value(json_object_get(d, "uid")), "powerhive");
	ids = json_object();
	read_panels(json_object_get(d, "panels"), ids);
	panels_queries = nqueries;
	json_array_foreach(json_object_get(json_object_get(d, "templating"), "list"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *type = json_string_value(json_object_get(v, "type"));
		const json_t *q = json_object_get(v, "query");
		char where[160], sel[1024];

		snprintf(where, sizeof(where), "variable %s", name ? name : "?");
		if (!type || strcmp(type, "query") != 0)
			continue;
		check_datasource(where, v);
		/* Grafana writes a variable's query as a string or as {"query": ...}. */
		add_query(where, variable_selector(json_is_string(q) ? json_string_value(q)
			  : json_string_value(json_object_get(q, "query")), sel, sizeof(sel)));
	}
	printf("dashboard: %zu panels (rows included), %d panel queries, %d variable queries\n",
	       json_object_size(ids), panels_queries, nqueries - panels_queries);
	assert_true(panels_queries >= 10);
	json_decref(ids);
	json_decref(d);
	dashboard_read = true;
}

/* ------------------------------------------------------------ the compose profile */

/* A Debian program the test runs; fails saying where it comes from. */
static void need(const char *path, const char *package)
{
	if (access(path, X_OK) != 0)
		fail_msg("%s is missing: apt-get install %s (the Makefile's test packages "
			 "include it)", path, package);
}

/* One service's lines in `docker-compose config` output (malloc'd). */
static char *service(const char *normalised, const char *name)
{
	char head[64];
	const char *s = strncmp(normalised, "services:\n", 9) == 0 ? normalised
		: strstr(normalised, "\nservices:\n"), *e;

	snprintf(head, sizeof(head), "\n  %s:\n", name);
	if (!s || !(s = strstr(s, head)))
		return NULL;
	s += strlen(head);
	for (e = s; *e; e++)
		if (e[0] == '\n' && !(e[1] == ' ' && e[2] == ' ' && (e[3] == ' ' || e[3] == '-')))
			break;
	return strndup(s, (size_t)(e - s));
}

/* The container path a service mounts host at ("- HOST:PATH[:mode]"), in
 * buf; NULL when it does not. */
static const char *mount_of(const char *svc, const char *host, char *buf, size_t len)
{
	char head[1100];
	const char *p;

	snprintf(head, sizeof(head), "- %s:", host);
	for (p = svc; (p = strstr(p, head)) != NULL; p++) {
		const char *s = p + strlen(head), *e = s;

		if (p == svc || p[-1] != ' ')
			continue;
		while (*e && *e != ':' && *e != '\n')
			e++;
		snprintf(buf, len, "%.*s", (int)(e - s), s);
		return buf;
	}
	return NULL;
}

/* The value of the first "key: value" line of a YAML file of ours (the key
 * first on its line, or after "- "), quotes off, in buf; NULL when there is
 * none. */
static const char *yaml_value(const char *text, const char *key, char *buf, size_t len)
{
	char head[64];
	const char *p = text;
	size_t n;

	snprintf(head, sizeof(head), "%s:", key);
	while ((p = strstr(p, head)) != NULL) {
		const char *s = p + strlen(head), *e, *b = p;

		while (b > text && (b[-1] == ' ' || b[-1] == '-'))
			b--;
		if (b > text && b[-1] != '\n') {
			p++;
			continue;
		}
		while (*s == ' ')
			s++;
		for (e = s; *e && *e != '\n' && *e != '#'; e++)
			;
		while (e > s && e[-1] == ' ')
			e--;
		if (e > s && (*s == '"' || *s == '\'') && e[-1] == *s) {
			s++;
			e--;
		}
		n = (size_t)(e - s);
		snprintf(buf, len, "%.*s", (int)n, s);
		return buf;
	}
	return NULL;
}

/* The profile's mounts put every file where another names it: Prometheus's
 * config and token under its --config.file's folder, Grafana's
 * provisioning, the dashboards where the provider reads them, the data
 * source at the prometheus service. promtool accepts the scrape config. */
static void test_wiring(void **state)
{
	char *conf = NULL, *prom, *graf, *out = NULL;
	char cwd[512], host[700], cdir[256], ddir[256], v[512], want[600];
	char *pyml = tl_read_file(PROM_CONFIG), *ds = tl_read_file(DATASOURCES),
	     *prov = tl_read_file(PROVIDERS);

	(void)state;
	need("/usr/bin/docker-compose", "docker-compose");
	need(PROMTOOL, "prometheus");
	assert_non_null(pyml);
	assert_non_null(ds);
	assert_non_null(prov);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	if (tl_run("docker-compose -f docker-compose.yml config 2>&1", &conf) != 0)
		fail_msg("docker-compose config refused docker-compose.yml:\n%s", conf);
	prom = service(conf, "prometheus");
	graf = service(conf, "grafana");
	if (!prom || !graf)
		fail_msg("no prometheus or grafana service in docker-compose.yml");
	/* Only with --profile monitoring: a plain `up` starts neither. */
	if (!strstr(prom, "    profiles:\n    - monitoring\n") ||
	    !strstr(graf, "    profiles:\n    - monitoring\n"))
		fail_msg("prometheus and grafana must be in the \"monitoring\" profile only:\n%s\n%s",
			 prom, graf);
	assert_non_null(strstr(prom, "image: prom/prometheus"));
	assert_non_null(strstr(graf, "image: grafana/grafana-oss"));
	assert_non_null(strstr(prom, "- 127.0.0.1:9090:9090/tcp"));   /* no auth: loopback */

	/* Prometheus: ./etc/monitoring at C, --config.file C/prometheus.yml,
	 * the token file in C, the target the apid service's port. */
	snprintf(host, sizeof(host), "%s/etc/monitoring", cwd);
	if (!mount_of(prom, host, cdir, sizeof(cdir)))
		fail_msg("prometheus does not mount %s:\n%s", host, prom);
	snprintf(want, sizeof(want), "- --config.file=%s/prometheus.yml\n", cdir);
	if (!strstr(prom, want))
		fail_msg("prometheus's command lacks %s", want);
	assert_non_null(yaml_value(pyml, "credentials_file", v, sizeof(v)));
	if (strncmp(v, cdir, strlen(cdir)) != 0 || v[strlen(cdir)] != '/')
		fail_msg("credentials_file %s is not in the mounted %s", v, cdir);
	assert_non_null(strstr(pyml, "\"apid:8080\""));
	assert_non_null(yaml_value(pyml, "job_name", v, sizeof(v)));
	assert_string_equal(v, "powerhive");

	/* Grafana: provisioning at its default place, the dashboards where the
	 * provider reads them, the home dashboard among them. */
	snprintf(host, sizeof(host), "%s/etc/monitoring/grafana/provisioning", cwd);
	if (!mount_of(graf, host, cdir, sizeof(cdir)) || strcmp(cdir, "/etc/grafana/provisioning"))
		fail_msg("grafana does not mount %s at /etc/grafana/provisioning:\n%s", host, graf);
	snprintf(host, sizeof(host), "%s/etc/monitoring/grafana/dashboards", cwd);
	if (!mount_of(graf, host, ddir, sizeof(ddir)))
		fail_msg("grafana does not mount %s:\n%s", host, graf);
	assert_non_null(yaml_value(prov, "path", v, sizeof(v)));
	assert_string_equal(v, ddir);
	snprintf(want, sizeof(want), "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: %s/powerhive.json",
		 ddir);
	assert_non_null(strstr(graf, want));
	assert_non_null(yaml_value(ds, "type", v, sizeof(v)));
	assert_string_equal(v, "prometheus");
	assert_non_null(yaml_value(ds, "url", v, sizeof(v)));
	assert_string_equal(v, "http://prometheus:9090");      /* the service's name and port */

	if (tl_run(PROMTOOL " check config --syntax-only " PROM_CONFIG " 2>&1", &out) != 0)
		fail_msg("promtool refused %s:\n%s", PROM_CONFIG, out);
	free(out);
	free(prom);
	free(graf);
	free(conf);
	free(pyml);
	free(ds);
	free(prov);
}

/* ------------------------------------------------------------ the suite */

static struct ts_suite S;
static bool suite_started, suite_failed;
static int live_passed;               /* live tests that got to their end */
static char error_mac[18];            /* the miner given an http500 fault */

/* The faulty miner's last error is in apid. */
static bool error_seen(void *arg)
{
	char path[64];
	json_t *m;
	bool seen;

	(void)arg;
	snprintf(path, sizeof(path), "/api/miners/%s", error_mac);
	m = ts_api(&S, "GET", path, NULL, NULL);
	seen = json_is_object(json_object_get(m, "last_error"));
	json_decref(m);
	if (!seen)
		tl_sleep_ms(200);
	return seen;
}

/* The stack once, for the live tests; 0 / -1. */
static int suite_up(void)
{
	const char *sim_args[] = { "--seed", "15", "--models", "s19,s19jpro", NULL };
	const char *plant_args[] = { "--generation-w", "200000", "--minersim-interval-ms", "500",
				     NULL };
	char body[128];
	json_t *roster;
	long st = 0;

	if (suite_started)
		return suite_failed ? -1 : 0;
	suite_started = suite_failed = true;
	if (ts_init(&S, "monitoring") < 0)
		return -1;
	fprintf(stderr, "monitoring: run directory %s\n", S.dir);
	if (ts_minersim(&S, SUBNET, MINERS, sim_args) < 0 || ts_plantsim(&S, plant_args) < 0)
		return -1;
	/* The feed read every second in dry_run: the power gauges and the
	 * feed state are served, no preset changes. */
	if (ts_merge(&S, "{\"database\": {\"batch_ms\": 50},\n"
		     " \"network\": {\"miner_probe_timeout_ms\": 1000, \"http_timeout_ms\": 2000},\n"
		     " \"intervals\": {\"discovery_seconds\": 3600, \"status_seconds\": 1,\n"
		     "   \"telemetry_seconds\": 2, \"heartbeat_seconds\": 1},\n"
		     " \"scheduler\": {\"job_timeout_seconds\": 5},\n"
		     " \"power\": {\"mode\": \"dry_run\", \"interval_seconds\": 1,\n"
		     "   \"source\": {\"kind\": \"aggregator\", \"url\": \"%s/v1/reading\",\n"
		     "     \"plant_id\": \"plant-1\", \"api_key\": \"%s\", \"timeout_ms\": 2000}}}",
		     S.plant, S.plant_key) < 0)
		return -1;
	if (!ts_start(&S, "apid", NULL, NULL, NULL) || !ts_start(&S, "discoverd", NULL, NULL, NULL) ||
	    !ts_start(&S, "pollerd", NULL, NULL, NULL) ||
	    !ts_start(&S, "telemetryd", NULL, NULL, NULL) || ts_wait_healthy(&S, 20000) < 0)
		return -1;
	if (!ts_token(&S)) {
		fprintf(stderr, "monitoring: no API token\n");
		return -1;
	}
	if (ts_wait_miners(&S, MINERS, 30000) < 0) {
		ts_dump_logs(&S, 20);
		return -1;
	}
	/* One miner answers 500 from now on: the error panels have a row. */
	roster = tl_local_json("GET", S.admin_port, "/sim/miners", NULL, NULL);
	snprintf(error_mac, sizeof(error_mac), "%s",
		 json_string_value(json_object_get(json_array_get(roster, 0), "mac")));
	json_decref(roster);
	snprintf(body, sizeof(body), "{\"target\":\"%s\",\"kind\":\"http500\"}", error_mac);
	json_decref(tl_local_json("POST", S.admin_port, "/sim/fault", body, &st));
	if (st != 200 || tl_wait_until(15000, error_seen, NULL) < 0) {
		fprintf(stderr, "monitoring: no last_error for %s (fault: HTTP %ld)\n", error_mac, st);
		return -1;
	}
	suite_failed = false;
	return 0;
}

/* The metric names of an exposition (samples, not comments), as a JSON
 * object name -> samples. */
static json_t *exposition_names(const char *text)
{
	json_t *names = json_object();

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t n = strcspn(l, "{ \n");
		char name[NAME_LEN];

		if (*l == '#' || *l == '\n' || n == 0 || n >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)n, l);
		json_object_set_new(names, name,
				    json_integer(json_integer_value(json_object_get(names, name)) + 1));
	}
	return names;
}

/* apid's /metrics serves every metric the dashboard names. */
static void test_metrics_served(void **state)
{
	const char *const hdrs[] = { S.auth, NULL };
	char url[128], missing[2048] = "";
	char *text = NULL;
	json_t *served;
	long st = 0;
	int checked = 0;

	(void)state;
	assert_true(dashboard_read);
	assert_int_equal(suite_up(), 0);
	snprintf(url, sizeof(url), "%s/metrics", S.api);
	assert_int_equal(tl_http("GET", url, hdrs, NULL, &text, &st), 0);
	assert_int_equal(st, 200);
	served = exposition_names(text);
	for (int q = 0; q < nqueries; q++)
		for (int i = 0; i < queries[q].nnames; i++) {
			const char *name = queries[q].names[i];
			char entry[NAME_LEN + 8];

			checked++;
			snprintf(entry, sizeof(entry), "  %s (", name);
			if (json_object_get(served, name) || strstr(missing, entry))
				continue;
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s)\n", entry, queries[q].where);
		}
	printf("metrics: %d names in %d queries, /metrics serves %zu names (%zu bytes)\n", checked,
	       nqueries, json_object_size(served), strlen(text));
	json_decref(served);
	free(text);
	if (*missing)
		fail_msg("the dashboard names metrics apid's /metrics does not serve:\n%s", missing);
	live_passed++;
}

/* ------------------------------------------------------------ Prometheus */

/* PROM_CONFIG for the suite: the job as shipped, its target apid's address,
 * its token file the suite's, scraped every second. malloc'd, or NULL with
 * the line that was not found on stderr. */
static char *suite_prometheus_config(const char *shipped, const char *token_file)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *l = shipped;
	bool target = false, token = false, interval = false;

	while (*l) {
		const char *e = strchr(l, '\n'), *at;
		int n = (int)(e ? e - l : (long)strlen(l));
		int indent = (int)strspn(l, " ");
		char line[1024];

		snprintf(line, sizeof(line), "%.*s", n, l);
		if ((at = strstr(line, "\"apid:8080\"")) != NULL) {
			fprintf(f, "%.*s\"127.0.0.1:%d\"%s\n", (int)(at - line), line, S.http_port,
				at + strlen("\"apid:8080\""));
			target = true;
		} else if (strncmp(line + indent, "credentials_file:", 17) == 0) {
			fprintf(f, "%*scredentials_file: %s\n", indent, "", token_file);
			token = true;
		} else if (strncmp(line + indent, "scrape_interval:", 16) == 0) {
			fprintf(f, "%*sscrape_interval: 1s\n", indent, "");
			interval = true;
		} else {
			fprintf(f, "%s\n", line);
		}
		l = e ? e + 1 : l + n;
	}
	fclose(f);
	if (!target || !token || !interval) {
		fprintf(stderr, "%s: no %s line to rewrite\n", PROM_CONFIG,
			!target ? "\"apid:8080\"" : !token ? "credentials_file" : "scrape_interval");
		free(out);
		return NULL;
	}
	return out;
}

static int prom_port;

/* j is the string s (NULL: j is no string at all). */
static bool str_is(const json_t *j, const char *s)
{
	return s ? json_is_string(j) && strcmp(json_string_value(j), s) == 0 : !json_is_string(j);
}

/* GET from Prometheus's API; the "data" member (a new reference), NULL
 * unless it answered "success". */
static json_t *prom_api(const char *path, const char *query)
{
	char url[8192];
	long st = 0;
	json_t *j, *data;

	if (query) {
		char *q = curl_easy_escape(NULL, query, 0);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s?query=%s", prom_port, path, q);
		curl_free(q);
	} else {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", prom_port, path);
	}
	j = tl_http_json("GET", url, NULL, NULL, &st);
	if (!j || st != 200 ||
	    !str_is(json_object_get(j, "status"), "success")) {
		char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
		fprintf(stderr, "prometheus %s%s%s: HTTP %ld %s\n", path, query ? " " : "",
			query ? query : "", st, dump ? dump : "(no JSON)");
		free(dump);
		json_decref(j);
		return NULL;
	}
	data = json_incref(json_object_get(j, "data"));
	json_decref(j);
	return data;
}

/* Prometheus answers /-/ready 200 (503 while it opens its storage). */
static bool prom_ready(void *arg)
{
	char url[64], *body = NULL;
	long st = 0;

	(void)arg;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/-/ready", prom_port);
	tl_http("GET", url, NULL, NULL, &body, &st);
	free(body);
	if (st != 200)
		tl_sleep_ms(100);
	return st == 200;
}

/* The one target is up (its last error in err). */
static bool target_up(void *arg)
{
	char *err = arg;
	json_t *d = prom_api("/api/v1/targets", NULL);
	json_t *t = json_array_get(json_object_get(d, "activeTargets"), 0);
	const char *health = json_string_value(json_object_get(t, "health"));
	bool up = health && strcmp(health, "up") == 0;

	snprintf(err, 256, "%s %s", health ? health : "no target",
		 str_is(json_object_get(t, "lastError"), NULL) ? "" :
		 json_string_value(json_object_get(t, "lastError")));
	json_decref(d);
	if (!up)
		tl_sleep_ms(200);
	return up;
}

/* An instant query's result vector (a new reference) or NULL. */
static json_t *prom_query(const char *q)
{
	json_t *d = prom_api("/api/v1/query", q), *r;

	if (!d)
		return NULL;
	r = json_incref(json_object_get(d, "result"));
	json_decref(d);
	return r;
}

/* Each sample's label key equals value, for every sample of r. */
static bool every_label(const json_t *r, const char *key, const char *value)
{
	size_t i;
	const json_t *s;

	json_array_foreach(r, i, s) {
		const char *v = json_string_value(json_object_get(json_object_get(s, "metric"), key));
		if (!v || (value && strcmp(v, value) != 0))
			return false;
	}
	return true;
}

/* The dashboard's query with its variables at "All". malloc'd. */
static char *all_models(const char *expr)
{
	size_t n = strlen(expr);
	char *out = malloc(n * 2 + 1), *o = out;

	for (const char *p = expr; *p;) {
		if (strncmp(p, "$model", 6) == 0) {
			o += sprintf(o, ".*");
			p += 6;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

static void test_prometheus(void **state)
{
	char *shipped = tl_read_file(PROM_CONFIG), *cfg, *out = NULL;
	char path[1200], token_file[1200], data[1200], log[1200], flag[4][1300], err[256] = "";
	char addr[64];
	json_t *r, *s;
	size_t i;
	pid_t pid;
	int status, hot = -1;
	long long t0;

	(void)state;
	need(PROMETHEUS, "prometheus");
	assert_true(dashboard_read);
	assert_int_equal(suite_up(), 0);
	assert_non_null(shipped);
	snprintf(token_file, sizeof(token_file), "%s/api-token", S.dir);
	cfg = suite_prometheus_config(shipped, token_file);
	assert_non_null(cfg);
	snprintf(path, sizeof(path), "%s/prometheus.yml", S.dir);
	assert_int_equal(tl_write_file(path, cfg), 0);
	free(cfg);
	free(shipped);
	/* The full check: the token file exists too. */
	snprintf(flag[0], sizeof(flag[0]), PROMTOOL " check config %s 2>&1", path);
	if (tl_run(flag[0], &out) != 0)
		fail_msg("promtool refused the suite's config:\n%s", out);
	free(out);

	prom_port = tl_free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", prom_port);
	snprintf(data, sizeof(data), "%s/prometheus-data", S.dir);
	snprintf(log, sizeof(log), "%s/prometheus.log", S.dir);
	snprintf(flag[0], sizeof(flag[0]), "--config.file=%s", path);
	snprintf(flag[1], sizeof(flag[1]), "--storage.tsdb.path=%s", data);
	snprintf(flag[2], sizeof(flag[2]), "--web.listen-address=%s", addr);
	snprintf(flag[3], sizeof(flag[3]), "--log.level=info");
	{
		char *const argv[] = { PROMETHEUS, flag[0], flag[1], flag[2], flag[3], NULL };
		pid = tl_spawn(log, argv, NULL);
	}
	assert_true(pid > 0);
	tl_live_add(pid);
	t0 = hive_mono_ms();
	if (tl_wait_until(15000, prom_ready, NULL) < 0 ||
	    tl_wait_until(30000, target_up, err) < 0) {
		char *l = tl_read_file(log);
		fail_msg("prometheus: the target is not up (%s)\n%s", err, l ? l : "");
	}
	printf("figure: prometheus target up ms=%lld\n", hive_mono_ms() - t0);

	/* The target as shipped: job "powerhive", apid's /metrics. */
	r = prom_api("/api/v1/targets", NULL);
	s = json_array_get(json_object_get(r, "activeTargets"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "labels"), "job")),
			    "powerhive");
	snprintf(path, sizeof(path), "%s/metrics", S.api);
	assert_string_equal(json_string_value(json_object_get(s, "scrapeUrl")), path);
	json_decref(r);

	/* A per-miner series: one sample per miner, by MAC and model. */
	r = prom_query("powerhive_miner_online");
	assert_non_null(r);
	if (json_array_size(r) != MINERS)
		fail_msg("powerhive_miner_online: %zu samples, want %d", json_array_size(r), MINERS);
	assert_true(every_label(r, "mac", NULL) && every_label(r, "model", NULL) &&
		    every_label(r, "job", "powerhive"));
	json_decref(r);
	/* Joined with the info series on the MAC, as the offender tables do. */
	r = prom_query("powerhive_miner_online * on(mac) group_left(ip, hostname) "
		       "powerhive_miner_info");
	assert_non_null(r);
	assert_int_equal(json_array_size(r), MINERS);
	assert_true(every_label(r, "ip", NULL) && every_label(r, "hostname", NULL));
	json_array_foreach(r, i, s)
		assert_int_equal(strncmp(json_string_value(json_object_get(json_object_get(s, "metric"),
								   "ip")), "127.91.0.", 9), 0);
	json_decref(r);

	/* Every dashboard query evaluates; each returns something but the
	 * offline table (every miner answers here). */
	for (int q = 0; q < nqueries; q++) {
		char *expr = all_models(queries[q].expr);

		r = prom_query(expr);
		if (!r)
			fail_msg("%s: prometheus refused %s", queries[q].where, expr);
		printf("query %s: %zu series\n", queries[q].where, json_array_size(r));
		if (json_array_size(r) == 0 && !strstr(queries[q].where, "\"Offline miners\""))
			fail_msg("%s: no result for %s", queries[q].where, expr);
		if (strstr(queries[q].where, "\"Chip temperature\"")) {
			/* The heat map's buckets: cumulative, +Inf the miners with a reading. */
			json_array_foreach(r, i, s) {
				const char *le = json_string_value(
					json_object_get(json_object_get(s, "metric"), "le"));
				assert_non_null(le);
				if (strcmp(le, "+Inf") == 0)
					hot = atoi(json_string_value(
						json_array_get(json_object_get(s, "value"), 1)));
			}
			assert_int_equal(json_array_size(r), 11);
		}
		json_decref(r);
		free(expr);
	}
	if (hot < MINERS - 1 || hot > MINERS)
		fail_msg("chip temperature heat map: %d miners in the +Inf bucket, want %d", hot,
			 MINERS);
	printf("figure: dashboard queries evaluated in prometheus queries=%d\n", nqueries);

	/* A clean stop: SIGTERM, exit 0, its goodbye in the log. */
	status = tl_stop(pid, SIGTERM, 10000);
	tl_live_del(pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *l = tl_read_file(log);
		fail_msg("prometheus did not stop cleanly (status %d)\n%s", status, l ? l : "");
	}
	out = tl_read_file(log);
	assert_non_null(out);
	assert_non_null(strstr(out, "See you next time!"));
	free(out);
	live_passed++;
}

/* ------------------------------------------------------------ main */

static int teardown(void **state)
{
	(void)state;
	tl_live_kill_all();
	if (suite_started)                  /* a failure keeps the run directory */
		ts_down(&S, suite_failed || live_passed != 2);
	for (int q = 0; q < nqueries; q++)
		free(queries[q].expr);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_promql_names),
		cmocka_unit_test(test_dashboard),
		cmocka_unit_test(test_wiring),
		cmocka_unit_test(test_metrics_served),
		cmocka_unit_test(test_prometheus),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests_name("monitoring", tests, NULL, teardown);
}
