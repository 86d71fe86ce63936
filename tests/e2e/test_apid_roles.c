/* test_apid_roles — named tokens and roles through the real apid
 * (docs/api.md "Tokens and roles"). Linked with apid's objects, it reads
 * apid's own route table (routes.h): every route must be in this file's
 * list with the same role, and every state-changing route must have a
 * request below, so an endpoint added without a role, or without being
 * tried here, fails the test.
 *
 * apid runs on a database made beforehand (one miner, one model with two
 * presets, one alert, written while apid was stopped). The bootstrap
 * token creates a viewer, an operator and an admin; then each request
 * is sent with every role: 403 below its role, 2xx at it. Requests are
 * sent from chosen loopback addresses (127.0.0.2...) to test the
 * per-address lock-out of failed sign-ins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../apid/auth.h"
#include "../../apid/routes.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define M1 "aa:00:00:00:00:01"

static struct ts_suite s;
static char db_path[1200];
/* tokens by role: [APID_ROLE_VIEWER..APID_ROLE_ADMIN]; [NONE]: no token */
static char tokens[4][80];
static const char *const names[4] = { "", "viewer-1", "operator-1", "admin-1" };

/* ------------------------------------------------------------ HTTP from an address */

/* One request from source address src to apid, Connection: close. The
 * status (0: no answer); the body in *body (malloc'd) when body != NULL. */
static long http_from(const char *src, const char *method, const char *path,
		      const char *token, const char *json, char **body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET }, da = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 10 };
	char head[1024], *buf = NULL;
	size_t len = 0, cap = 0;
	long status = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;

	if (body)
		*body = NULL;
	if (fd < 0)
		return 0;
	inet_pton(AF_INET, src, &sa.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
	da.sin_port = htons((uint16_t)s.http_port);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    connect(fd, (struct sockaddr *)&da, sizeof(da)) != 0) {
		close(fd);
		return 0;
	}
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     method, path, token ? "Authorization: Bearer " : "", token ? token : "",
		     token ? "\r\n" : "", json ? strlen(json) : 0, json ? json : "");
	if (write(fd, head, (size_t)n) != n) {
		close(fd);
		return 0;
	}
	for (;;) {
		ssize_t got;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
		}
		got = read(fd, buf + len, cap - len - 1);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (!buf)
		return 0;
	buf[len] = '\0';
	sscanf(buf, "HTTP/1.1 %ld", &status);
	if (body) {
		char *start = strstr(buf, "\r\n\r\n");
		*body = strdup(start ? start + 4 : "");
	}
	free(buf);
	return status;
}

static long http(const char *method, const char *path, const char *token, const char *json,
		 json_t **out)
{
	char *body = NULL;
	long st = http_from("127.0.0.1", method, path, token, json, out ? &body : NULL);

	if (out) {
		*out = body ? json_loads(body, JSON_DECODE_ANY, NULL) : NULL;
		free(body);
	}
	return st;
}

/* ------------------------------------------------------------ the expected roles */

#define V APID_ROLE_VIEWER
#define O APID_ROLE_OPERATOR
#define A APID_ROLE_ADMIN

/* Every endpoint and its role, as docs/api.md lists them; concrete: a
 * request that route answers 2xx to at its role, in the order sent. */
static const struct want {
	const char *method, *route;
	enum apid_role role;
	const char *path, *body;
} wants[] = {
	{ "PATCH", "/api/miners/{mac}", O, "/api/miners/" M1, "{\"managed\": true}" },
	{ "POST", "/api/miners/{mac}/actions", O, "/api/miners/" M1 "/actions",
	  "{\"action\": \"restart\"}" },
	{ "POST", "/api/actions", O, "/api/actions",
	  "{\"action\": \"reboot\", \"miners\": [\"" M1 "\"]}" },
	{ "PATCH", "/api/power", A, "/api/power", "{\"margin_pct\": 12}" },
	{ "POST", "/api/alerts/{id}/ack", O, "/api/alerts/1/ack", NULL },
	{ "POST", "/api/silences", O, "/api/silences",
	  "{\"rule\": \"miner_offline\", \"seconds\": 600}" },
	{ "DELETE", "/api/silences/{id}", O, "/api/silences/1", NULL },
	{ "PATCH", "/api/models/{alias}", A, "/api/models/m1", "{\"max_preset\": \"p100\"}" },
	{ "POST", "/api/tokens", A, "/api/tokens", "{\"name\": \"made-%s\", \"role\": \"viewer\"}" },
	{ "DELETE", "/api/tokens/{name}", A, "/api/tokens/victim", NULL },
	{ "GET", "/metrics", V, "/metrics", NULL },
	{ "GET", "/api/health", V, "/api/health", NULL },
	{ "GET", "/api/whoami", V, "/api/whoami", NULL },
	{ "GET", "/api/miners", V, "/api/miners", NULL },
	{ "GET", "/api/miners/{mac}", V, "/api/miners/" M1, NULL },
	{ "GET", "/api/miners/{mac}/statuses", V, "/api/miners/" M1 "/statuses", NULL },
	{ "GET", "/api/miners/{mac}/telemetry", V, "/api/miners/" M1 "/telemetry", NULL },
	{ "GET", "/api/miners/{mac}/telemetry/hours", V, "/api/miners/" M1 "/telemetry/hours",
	  NULL },
	{ "GET", "/api/miners/{mac}/history", V, "/api/miners/" M1 "/history", NULL },
	{ "GET", "/api/actions", V, "/api/actions", NULL },
	{ "GET", "/api/actions/{id}", V, "/api/actions/1", NULL },
	{ "GET", "/api/power", V, "/api/power", NULL },
	{ "GET", "/api/power/history", V, "/api/power/history", NULL },
	{ "GET", "/api/power/plan", V, "/api/power/plan", NULL },
	{ "GET", "/api/power/decisions", V, "/api/power/decisions", NULL },
	{ "GET", "/api/power/readings", V, "/api/power/readings", NULL },
	{ "GET", "/api/fleet/history", V, "/api/fleet/history", NULL },
	{ "GET", "/api/notifications", V, "/api/notifications", NULL },
	{ "GET", "/api/alerts/channels", V, "/api/alerts/channels", NULL },
	{ "GET", "/api/alerts", V, "/api/alerts", NULL },
	{ "GET", "/api/silences", V, "/api/silences", NULL },
	{ "GET", "/api/audit", V, "/api/audit", NULL },
	{ "GET", "/api/models", V, "/api/models", NULL },
	{ "GET", "/api/models/{alias}", V, "/api/models/m1", NULL },
	{ "GET", "/api/tokens", A, "/api/tokens", NULL },
};
#define NWANTS (sizeof(wants) / sizeof(wants[0]))

/* ------------------------------------------------------------ setup */

static void sql(const char *text)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("sql: %s: %s", text, err);
	sqlite3_close(db);
}

static long long sql_int(const char *text)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void create_token(const char *name, const char *role, char out[80])
{
	char body[160];
	json_t *j = NULL;
	long st;

	snprintf(body, sizeof(body), "{\"name\": \"%s\", \"role\": \"%s\"}", name, role);
	st = http("POST", "/api/tokens", s.token, body, &j);
	if (st != 201)
		fail_msg("create token %s: %ld", name, st);
	assert_string_equal(json_string_value(json_object_get(j, "name")), name);
	assert_string_equal(json_string_value(json_object_get(j, "role")), role);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "token"))), 64);
	snprintf(out, 80, "%s", json_string_value(json_object_get(j, "token")));
	json_decref(j);
}

static int setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (ts_init(&s, "roles") < 0)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/powerhive.db", s.dir);
	/* first start: apid makes the database, then the fleet is written */
	if (!ts_start(&s, "apid", NULL, NULL, NULL) || ts_stop(&s, "apid", SIGTERM, 10000) != 0)
		return -1;
	sql("INSERT INTO models(alias, name, updated_ms) VALUES('m1', 'Model One', 1);"
	    "INSERT INTO model_presets(model, name, watts, th, ord) VALUES"
	    " ('m1', 'p100', 100, 1.0, 0), ('m1', 'p200', 200, 2.0, 1);"
	    "INSERT INTO miners(mac, ip, model, api_key, online, first_seen_ms, last_seen_ms)"
	    " VALUES('" M1 "', '127.9.0.1', 'm1', 'key-0123456789', 1,"
	    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),"
	    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));"
	    "INSERT INTO alerts(id, rule, subject, mac, state, started_ms, summary)"
	    " VALUES(1, 'miner_offline', '" M1 "', '" M1 "', 'resolved', 1, 'test');");
	if (!ts_start(&s, "apid", NULL, NULL, NULL) || !ts_token(&s))
		return -1;
	create_token(names[V], "viewer", tokens[V]);
	create_token(names[O], "operator", tokens[O]);
	create_token(names[A], "admin", tokens[A]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_down(&s, false);
	return 0;
}

/* ------------------------------------------------------------ tests */

/* apid's route table and this file's list agree, both ways. */
static void test_route_table_listed(void **state)
{
	(void)state;
	for (size_t i = 0; i < apid_routes_count; i++) {
		const struct apid_route *rt = &apid_routes[i];
		bool found = false;

		assert_true(rt->role >= APID_ROLE_VIEWER && rt->role <= APID_ROLE_ADMIN);
		for (size_t k = 0; k < NWANTS && !found; k++)
			if (strcmp(wants[k].method, rt->method) == 0 &&
			    strcmp(wants[k].route, rt->path) == 0) {
				found = true;
				if (wants[k].role != rt->role)
					fail_msg("%s %s: role %s in apid, %s expected", rt->method,
						 rt->path, apid_role_name(rt->role),
						 apid_role_name(wants[k].role));
			}
		if (!found)
			fail_msg("%s %s is not in test_apid_roles' list: give it a role and a "
				 "request there (and in docs/api.md)", rt->method, rt->path);
	}
	assert_int_equal(apid_routes_count, NWANTS);
}

/* Each endpoint: 401 without a token, 403 to each role below its own,
 * 2xx at its own. */
static void test_roles_enforced(void **state)
{
	(void)state;
	for (size_t k = 0; k < NWANTS; k++) {
		const struct want *w = &wants[k];
		char path[256], body[256];
		long st;

		snprintf(path, sizeof(path), "%s", w->path);
		if (strcmp(w->route, "/api/tokens/{name}") == 0) {
			char victim[80];
			create_token("victim", "viewer", victim);
		}
		st = http(w->method, path, NULL, w->body ? "{}" : NULL, NULL);
		if (st != 401)
			fail_msg("%s %s without a token: %ld, 401 expected", w->method, path, st);
		/* each from an address of its own: failures lock one out */
		snprintf(body, sizeof(body), "127.0.1.%zu", k + 1);
		st = http_from(body, w->method, path, "not-a-token-at-all-0000", NULL, NULL);
		if (st != 401)
			fail_msg("%s %s with an unknown token: %ld, 401 expected", w->method, path, st);
		for (int role = V; role < (int)w->role; role++) {
			st = http(w->method, path, tokens[role], w->body ? "{}" : NULL, NULL);
			if (st != 403)
				fail_msg("%s %s as %s: %ld, 403 expected", w->method, path,
					 apid_role_name((enum apid_role)role), st);
		}
		snprintf(body, sizeof(body), w->body ? w->body : "", names[w->role]);
		st = http(w->method, path, tokens[w->role], w->body ? body : NULL, NULL);
		if (st < 200 || st > 299)
			fail_msg("%s %s as %s: %ld, 2xx expected", w->method, path,
				 apid_role_name(w->role), st);
		/* a role above may too */
		if (w->role < A && strcmp(w->method, "GET") == 0) {
			st = http(w->method, path, tokens[A], NULL, NULL);
			assert_true(st >= 200 && st <= 299);
		}
	}
}

/* Fields of PATCH /api/miners that need more than the route's operator. */
static void test_patch_fields(void **state)
{
	(void)state;
	assert_int_equal(http("PATCH", "/api/miners/" M1, tokens[O],
			      "{\"unlock_pass\": \"secret-pass-1\"}", NULL), 403);
	assert_int_equal(http("PATCH", "/api/miners/" M1, tokens[O], "{\"pinned\": true}", NULL),
			 403);
	assert_int_equal(http("PATCH", "/api/miners/" M1, tokens[V], "{\"managed\": false}", NULL),
			 403);
	assert_int_equal(http("PATCH", "/api/miners/" M1, tokens[A],
			      "{\"unlock_pass\": \"secret-pass-1\"}", NULL), 200);
	assert_int_equal(http("PATCH", "/api/miners/" M1, tokens[A], "{\"pinned\": true}", NULL),
			 200);
	assert_int_equal(http("PATCH", "/api/miners/" M1, tokens[O],
			      "{\"managed\": false, \"power_excluded\": false}", NULL), 200);
}

static void test_whoami(void **state)
{
	(void)state;
	for (int role = V; role <= A; role++) {
		json_t *j = NULL;

		assert_int_equal(http("GET", "/api/whoami", tokens[role], NULL, &j), 200);
		assert_string_equal(json_string_value(json_object_get(j, "name")), names[role]);
		assert_string_equal(json_string_value(json_object_get(j, "role")),
				    apid_role_name((enum apid_role)role));
		json_decref(j);
	}
	{
		json_t *j = NULL;

		assert_int_equal(http("GET", "/api/whoami", s.token, NULL, &j), 200);
		assert_string_equal(json_string_value(json_object_get(j, "name")), "bootstrap");
		assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
		json_decref(j);
	}
}

/* The audit names the token that did it: never an address. */
static void test_audit_names(void **state)
{
	static const struct { const char *action, *actor; } rows[] = {
		{ "miner.patch", "operator-1" }, { "miner.action", "operator-1" },
		{ "alert.ack", "operator-1" }, { "silence.create", "operator-1" },
		{ "silence.delete", "operator-1" }, { "model.patch", "admin-1" },
		{ "token.create", "bootstrap" }, { "token.create", "admin-1" },
		{ "token.revoke", "admin-1" },
	};
	char q[256];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(q, sizeof(q), "SELECT count(*) FROM audit WHERE action = '%s'"
			 " AND actor = '%s'", rows[i].action, rows[i].actor);
		if (sql_int(q) < 1)
			fail_msg("no audit row %s by %s", rows[i].action, rows[i].actor);
	}
	assert_int_equal(sql_int("SELECT count(*) FROM audit WHERE actor LIKE 'api@%'"), 0);
	assert_true(sql_int("SELECT count(*) FROM actions WHERE actor = 'operator-1'") >= 2);
	assert_int_equal(sql_int("SELECT count(*) FROM alerts WHERE acked_by = 'operator-1'"), 1);
	/* power settings */
	assert_true(sql_int("SELECT count(*) FROM audit WHERE actor = 'admin-1'"
			    " AND action LIKE 'power%'") >= 1);
}

static void test_revoked_at_once(void **state)
{
	char t[80];
	json_t *j = NULL;

	(void)state;
	create_token("short-lived", "operator", t);
	assert_int_equal(http("GET", "/api/whoami", t, NULL, NULL), 200);
	assert_int_equal(http("DELETE", "/api/tokens/short-lived", tokens[A], NULL, &j), 200);
	assert_true(json_is_integer(json_object_get(json_object_get(j, "token"), "revoked")));
	json_decref(j);
	assert_int_equal(http("GET", "/api/whoami", t, NULL, NULL), 401);
	assert_int_equal(http("POST", "/api/silences", t, "{\"seconds\": 60}", NULL), 401);
	/* the name stays taken; an unknown one is 404; the bootstrap is not here */
	assert_int_equal(http("POST", "/api/tokens", tokens[A],
			      "{\"name\": \"short-lived\", \"role\": \"viewer\"}", NULL), 409);
	assert_int_equal(http("DELETE", "/api/tokens/nobody", tokens[A], NULL, NULL), 404);
	assert_int_equal(http("DELETE", "/api/tokens/bootstrap", tokens[A], NULL, NULL), 400);
}

static void test_reserved_and_bad_names(void **state)
{
	static const char *const bad[] = { "enforcer", "balancer", "alerts", "Enforcer",
					   "bootstrap", "anonymous", "api", "answers",
					   "a b", "x@y", "-lead", "", NULL };
	static const char *const bad_roles[] = { "root", "Admin", "", NULL };
	char body[200];

	(void)state;
	for (int i = 0; bad[i]; i++) {
		snprintf(body, sizeof(body), "{\"name\": \"%s\", \"role\": \"viewer\"}", bad[i]);
		if (http("POST", "/api/tokens", tokens[A], body, NULL) != 400)
			fail_msg("token name '%s' accepted", bad[i]);
	}
	for (int i = 0; bad_roles[i]; i++) {
		snprintf(body, sizeof(body), "{\"name\": \"fine-name\", \"role\": \"%s\"}",
			 bad_roles[i]);
		assert_int_equal(http("POST", "/api/tokens", tokens[A], body, NULL), 400);
	}
	assert_int_equal(sql_int("SELECT count(*) FROM tokens WHERE lower(name) IN"
				 " ('enforcer', 'balancer', 'alerts', 'fine-name')"), 0);
}

/* The database holds the SHA-256 of each token, never the token. */
static void test_not_stored_plain(void **state)
{
	char path[1300], hash[65], q[200];
	json_t *list = NULL;

	(void)state;
	for (int role = V; role <= A; role++) {
		apid_token_hash(tokens[role], hash);
		snprintf(q, sizeof(q), "SELECT count(*) FROM tokens WHERE hash = '%s' AND name = '%s'",
			 hash, names[role]);
		assert_int_equal(sql_int(q), 1);
		for (int f = 0; f < 2; f++) {
			char *text;
			size_t n, tl = strlen(tokens[role]);
			FILE *fp;

			snprintf(path, sizeof(path), "%s%s", db_path, f ? "-wal" : "");
			if (!(fp = fopen(path, "rb")))
				continue;
			text = malloc(64 << 20);
			n = fread(text, 1, 64 << 20, fp);
			fclose(fp);
			for (size_t i = 0; i + tl <= n; i++)
				if (memcmp(text + i, tokens[role], tl) == 0)
					fail_msg("token of %s in plaintext in %s", names[role], path);
			free(text);
		}
	}
	/* the list shows no token and no hash */
	assert_int_equal(http("GET", "/api/tokens", tokens[A], NULL, &list), 200);
	{
		char *dump = json_dumps(list, 0);

		assert_non_null(strstr(dump, "operator-1"));
		assert_null(strstr(dump, tokens[O]));
		apid_token_hash(tokens[O], hash);
		assert_null(strstr(dump, hash));
		free(dump);
	}
	json_decref(list);
	/* last_used was recorded */
	assert_true(sql_int("SELECT count(*) FROM tokens WHERE name = 'operator-1'"
			    " AND last_used_ms > 0") == 1);
}

static void test_signin_rate_limit(void **state)
{
	char *body = NULL, *text;
	long st;

	(void)state;
	for (int i = 0; i < APID_AUTH_FAIL_MAX; i++) {
		st = http_from("127.0.0.2", "GET", "/api/whoami", "wrong-token-0123456789", NULL, NULL);
		assert_int_equal(st, 401);
	}
	/* locked out: even the right token gets 429 from there */
	st = http_from("127.0.0.2", "GET", "/api/whoami", tokens[V], NULL, &body);
	assert_int_equal(st, 429);
	free(body);
	/* another address is unaffected, and one failure there is a 401 */
	assert_int_equal(http_from("127.0.0.3", "GET", "/api/whoami", tokens[V], NULL, NULL), 200);
	assert_int_equal(http_from("127.0.0.3", "GET", "/api/whoami", "wrong-token-0123456789",
				   NULL, NULL), 401);
	assert_int_equal(http_from("127.0.0.3", "GET", "/api/whoami", tokens[V], NULL, NULL), 200);
	/* counted in /metrics */
	assert_int_equal(http_from("127.0.0.1", "GET", "/metrics", tokens[V], NULL, &text), 200);
	{
		const char *f = strstr(text, "\npowerhive_api_signin_failures_total ");
		const char *l = strstr(text, "\npowerhive_api_signin_locked_total ");

		assert_non_null(f);
		assert_non_null(l);
		assert_true(atof(f + 37) >= APID_AUTH_FAIL_MAX);
		assert_true(atof(l + 35) >= 1);
	}
	free(text);
}

/* open_reads: no token is an anonymous viewer, and nothing more. */
static void test_open_reads_anonymous(void **state)
{
	json_t *j = NULL;

	(void)state;
	assert_int_equal(ts_stop(&s, "apid", SIGTERM, 10000), 0);
	assert_int_equal(ts_merge(&s, "{\"http\": {\"auth\": {\"open_reads\": true}}}"), 0);
	assert_non_null(ts_start(&s, "apid", NULL, NULL, NULL));
	assert_int_equal(http("GET", "/api/whoami", NULL, NULL, &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "anonymous");
	assert_string_equal(json_string_value(json_object_get(j, "role")), "viewer");
	json_decref(j);
	assert_int_equal(http("GET", "/api/miners", NULL, NULL, NULL), 200);
	assert_int_equal(http("GET", "/api/tokens", NULL, NULL, NULL), 401);
	assert_int_equal(http("POST", "/api/silences", NULL, "{\"seconds\": 60}", NULL), 401);
	/* tokens made before the restart still work; a wrong one is refused */
	assert_int_equal(http("GET", "/api/tokens", tokens[A], NULL, NULL), 200);
	assert_int_equal(http("GET", "/api/miners", "wrong-token-0123456789", NULL, NULL), 401);
}

/* hivectl tokens create|list|revoke and whoami (docs/hivectl.md). */
static void test_hivectl_tokens(void **state)
{
	char cmd[2048], tok[80];
	char *out = NULL;
	int rc;

	(void)state;
	snprintf(cmd, sizeof(cmd), "%s --url %s --token-file %s/api-token tokens create"
		 " hc-op operator 2>/dev/null", tl_bin("hivectl"), s.api, s.dir);
	assert_int_equal(tl_run(cmd, &out), 0);
	assert_int_equal(sscanf(out, "%79s", tok), 1);
	assert_int_equal(strlen(tok), 64);
	free(out);
	snprintf(cmd, sizeof(cmd), "POWERHIVE_API_TOKEN=%s %s --url %s whoami", tok,
		 tl_bin("hivectl"), s.api);
	assert_int_equal(tl_run(cmd, &out), 0);
	assert_non_null(strstr(out, "hc-op (operator)"));
	free(out);
	/* an operator may not list tokens: exit 4, the role in the message */
	snprintf(cmd, sizeof(cmd), "POWERHIVE_API_TOKEN=%s %s --url %s tokens list 2>&1", tok,
		 tl_bin("hivectl"), s.api);
	rc = tl_run(cmd, &out);
	assert_int_equal(rc, 4);
	assert_non_null(strstr(out, "admin role"));
	assert_null(strstr(out, tok));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s --url %s --token-file %s/api-token tokens list",
		 tl_bin("hivectl"), s.api, s.dir);
	assert_int_equal(tl_run(cmd, &out), 0);
	assert_non_null(strstr(out, "hc-op"));
	assert_non_null(strstr(out, "operator-1"));
	assert_null(strstr(out, tok));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s --url %s --token-file %s/api-token tokens revoke hc-op",
		 tl_bin("hivectl"), s.api, s.dir);
	assert_int_equal(tl_run(cmd, &out), 0);
	free(out);
	snprintf(cmd, sizeof(cmd), "POWERHIVE_API_TOKEN=%s %s --url %s whoami 2>/dev/null", tok,
		 tl_bin("hivectl"), s.api);
	assert_int_equal(tl_run(cmd, &out), 4);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s --url %s --token-file %s/api-token tokens create"
		 " balancer viewer 2>/dev/null", tl_bin("hivectl"), s.api, s.dir);
	assert_int_equal(tl_run(cmd, &out), 1);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table_listed),
		cmocka_unit_test(test_roles_enforced),
		cmocka_unit_test(test_patch_fields),
		cmocka_unit_test(test_whoami),
		cmocka_unit_test(test_audit_names),
		cmocka_unit_test(test_revoked_at_once),
		cmocka_unit_test(test_reserved_and_bad_names),
		cmocka_unit_test(test_not_stored_plain),
		cmocka_unit_test(test_hivectl_tokens),
		cmocka_unit_test(test_signin_rate_limit),
		cmocka_unit_test(test_open_reads_anonymous),
	};

	return cmocka_run_group_tests_name("apid_roles", tests, setup, teardown);
}
