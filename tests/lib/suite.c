/* suite — see suite.h. */
#include "suite.h"
#include "testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every bus endpoint a config names. Each gets a free port of its own. */
const char *const ts_bus_keys[] = {
	"events", "jobs_status", "jobs_telemetry", "jobs_control", "jobs_plant", "control", "feed",
	"discovery_events", "discovery_control",
};
const size_t ts_nbus = sizeof(ts_bus_keys) / sizeof(ts_bus_keys[0]);

#define APID_START_MS 20000
#define SIM_START_MS  20000
#define STOP_MS       10000

/* A free port not handed out before in this suite: two endpoints on one
 * port would make the second daemon's listen fail. */
static int ts_port(struct ts_suite *s)
{
	for (int tries = 0; tries < 50; tries++) {
		int port = tl_free_port(), seen = 0;

		if (port <= 0)
			continue;
		for (int i = 0; i < s->nports; i++)
			seen |= s->ports[i] == port;
		if (seen || s->nports == TS_PORTS_MAX)
			continue;
		s->ports[s->nports++] = port;
		return port;
	}
	return -1;
}

int ts_init(struct ts_suite *s, const char *tag)
{
	char path[1200], token_file[1200], web[1200], addr[32], url[64];
	json_t *bus;

	memset(s, 0, sizeof(*s));
	if (!(s->dir = tl_tmpdir(tag)))
		return -1;
	snprintf(s->cfg, sizeof(s->cfg), "%s/powerhive.json", s->dir);
	s->http_port = ts_port(s);
	s->miner_port = ts_port(s);
	s->admin_port = ts_port(s);
	snprintf(s->api, sizeof(s->api), "http://127.0.0.1:%d", s->http_port);
	snprintf(s->admin, sizeof(s->admin), "http://127.0.0.1:%d", s->admin_port);
	snprintf(path, sizeof(path), "%s/powerhive.db", s->dir);
	snprintf(web, sizeof(web), "%s/web", s->dir);
	snprintf(token_file, sizeof(token_file), "%s/api-token", s->dir);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", s->http_port);
	bus = json_object();
	for (size_t i = 0; i < ts_nbus; i++) {
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", ts_port(s));
		json_object_set_new(bus, ts_bus_keys[i], json_string(url));
	}
	s->config = json_pack("{s:s, s:{s:s}, s:{s:[], s:i}, s:{s:s, s:s, s:{s:s}}, s:o}",
			      "log_level", "info",
			      "database", "path", path,
			      "network", "subnets", "port", s->miner_port,
			      "http", "addr", addr, "web_root", web,
			      "auth", "token_file", token_file,
			      "bus", bus);
	if (!s->config || s->nports < 3 + (int)ts_nbus) {
		fprintf(stderr, "ts_init: no config or not enough free ports\n");
		ts_down(s, false);
		return -1;
	}
	s->dirty = true;
	return 0;
}

int ts_merge(struct ts_suite *s, const char *fmt, ...)
{
	json_error_t jerr;
	json_t *x;
	va_list ap;
	char *text;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if (!(x = json_loads(text, 0, &jerr)) || !json_is_object(x)) {
		fprintf(stderr, "ts_merge: %s: %s\n", x ? "not an object" : jerr.text, text);
		json_decref(x);
		free(text);
		return -1;
	}
	free(text);
	n = json_object_update_recursive(s->config, x);
	json_decref(x);
	s->dirty = true;
	return n == 0 ? 0 : -1;
}

const char *ts_bus(const struct ts_suite *s, const char *key)
{
	json_t *bus = json_object_get(s->config, "bus");
	const char *url = json_string_value(json_object_get(bus, key));

	if (!url) {
		fprintf(stderr, "ts_bus: the config has no bus.%s\n", key);
		abort();
	}
	return url;
}

int ts_write_config(struct ts_suite *s)
{
	const char *addr = json_string_value(json_object_get(json_object_get(s->config, "http"),
							     "addr"));
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char *text = json_dumps(s->config, JSON_INDENT(2)), *line = NULL;
	int rc;

	if (colon)
		s->http_port = atoi(colon + 1);
	snprintf(s->api, sizeof(s->api), "http://127.0.0.1:%d", s->http_port);
	if (!text || asprintf(&line, "%s\n", text) < 0) {
		free(text);
		return -1;
	}
	rc = tl_write_file(s->cfg, line);
	free(line);
	free(text);
	if (rc < 0)
		fprintf(stderr, "ts_write_config: cannot write %s\n", s->cfg);
	else
		s->dirty = false;
	return rc;
}

/* ------------------------------------------------------------ processes */

/* The entry for name: its own if started before, else a new one, else one
 * that no longer runs. */
static struct ts_proc *slot(struct ts_suite *s, const char *name)
{
	struct ts_proc *p = ts_find(s, name);

	if (p)
		return p;
	if (s->nprocs < TS_PROCS_MAX)
		return &s->procs[s->nprocs++];
	for (int i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid <= 0)
			return &s->procs[i];
	return NULL;
}

static void tail(const char *path, int lines)
{
	char *text = tl_read_file(path);
	const char *p;
	int n = 0;

	fprintf(stderr, "---- %s\n", path);
	if (!text) {
		fprintf(stderr, "(no log)\n");
		return;
	}
	p = text + strlen(text);
	if (p > text && p[-1] == '\n')
		p--;
	while (p > text && n < lines)
		if (*--p == '\n')
			n++;
	if (*p == '\n')
		p++;
	fprintf(stderr, "%s%s", p, *p && p[strlen(p) - 1] != '\n' ? "\n" : "");
	free(text);
}

/* apid answers on its HTTP port (it opens it last), or has died. */
static int wait_apid(struct ts_proc *p, int port)
{
	long long deadline = hive_mono_ms() + APID_START_MS;

	while (hive_mono_ms() < deadline) {
		if (!tl_alive(p->pid)) {
			p->pid = 0;
			fprintf(stderr, "ts_start: %s exited\n", p->name);
			return -1;
		}
		if (tl_wait_port("127.0.0.1", port, 100) == 0)
			return 0;
	}
	fprintf(stderr, "ts_start: %s not on port %d within %d ms\n", p->name, port,
		APID_START_MS);
	return -1;
}

/* Starts bin/<prog> [-c <cfg>] [args...]; see ts_start. */
static struct ts_proc *spawn(struct ts_suite *s, const char *prog, const char *name,
			     bool with_cfg, const char *const args[], char *const env[])
{
	const char *argv[64] = { tl_bin(prog) };
	size_t n = 1;
	struct ts_proc *p;

	if (!name)
		name = prog;
	if (s->dirty && ts_write_config(s) < 0)
		return NULL;
	if (!(p = slot(s, name))) {
		fprintf(stderr, "ts_start: more than %d processes\n", TS_PROCS_MAX);
		return NULL;
	}
	if (p->pid > 0) {
		fprintf(stderr, "ts_start: %s is already running (pid %d)\n", name, (int)p->pid);
		return NULL;
	}
	snprintf(p->prog, sizeof(p->prog), "%s", prog);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->log, sizeof(p->log), "%s/%s.log", s->dir, name);
	if (with_cfg) {
		argv[n++] = "-c";
		argv[n++] = s->cfg;
	}
	for (size_t i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], "POWERHIVE_API_TOKEN=", 20) == 0)
			snprintf(s->env_token, sizeof(s->env_token), "%s", env[i] + 20);
	p->pid = tl_spawn(p->log, (char *const *)argv, env);
	if (p->pid <= 0) {
		p->pid = 0;
		fprintf(stderr, "ts_start: cannot start %s\n", argv[0]);
		return NULL;
	}
	return p;
}

struct ts_proc *ts_start(struct ts_suite *s, const char *prog, const char *name,
			 const char *const args[], char *const env[])
{
	struct ts_proc *p = spawn(s, prog, name, true, args, env);

	if (p && strcmp(prog, "apid") == 0 && wait_apid(p, s->http_port) < 0) {
		tail(p->log, 30);
		return NULL;
	}
	return p;
}

int ts_minersim(struct ts_suite *s, const char *subnet, int miners, const char *const args[])
{
	char port[16], admin[32], count[16];
	const char *argv[48] = { "--subnet", subnet, "--miners", count, "--port", port,
				 "--admin", admin };
	size_t n = 8;
	struct ts_proc *p;
	long long deadline = hive_mono_ms() + SIM_START_MS;

	snprintf(port, sizeof(port), "%d", s->miner_port);
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", s->admin_port);
	snprintf(count, sizeof(count), "%d", miners);
	for (size_t i = 0; args && args[i] && n < 47; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	json_object_set_new(json_object_get(s->config, "network"), "subnets",
			    json_pack("[s]", subnet));
	s->dirty = true;
	if (!(p = spawn(s, "minersim", NULL, false, argv, NULL)))
		return -1;
	while (hive_mono_ms() < deadline) {
		if (!tl_alive(p->pid)) {
			p->pid = 0;
			break;
		}
		if (tl_wait_port("127.0.0.1", s->admin_port, 100) == 0)
			return 0;
	}
	fprintf(stderr, "ts_minersim: no admin API on port %d\n", s->admin_port);
	tail(p->log, 30);
	return -1;
}

/* A random key of 32 hex digits in out (33 bytes). 0 / -1. */
static int random_key(char *out)
{
	unsigned char raw[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, raw, sizeof(raw)) : -1;

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof(raw))
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

int ts_plantsim(struct ts_suite *s, const char *const args[])
{
	char http[32], modbus[32], minersim[64], keyfile[1200], line[128];
	const char *argv[48] = { "--http", http, "--api-key-file", keyfile, "--modbus", modbus };
	size_t n = 6, from;
	struct ts_proc *p;
	long long deadline = hive_mono_ms() + SIM_START_MS;
	char *text;

	snprintf(keyfile, sizeof(keyfile), "%s/plant-key", s->dir);
	if (!s->plant_port) {
		char key[33];

		s->plant_port = ts_port(s);
		s->modbus_port = ts_port(s);
		if (s->plant_port <= 0 || s->modbus_port <= 0 || random_key(key) < 0) {
			fprintf(stderr, "ts_plantsim: no free port or no random key\n");
			s->plant_port = 0;
			return -1;
		}
		snprintf(s->plant_key, sizeof(s->plant_key), "pk-%s", key);
		snprintf(line, sizeof(line), "%s\n", s->plant_key);
		if (tl_write_file(keyfile, line) < 0) {
			fprintf(stderr, "ts_plantsim: cannot write %s\n", keyfile);
			return -1;
		}
		chmod(keyfile, 0600);
		snprintf(s->plant, sizeof(s->plant), "http://127.0.0.1:%d", s->plant_port);
	}
	snprintf(http, sizeof(http), "127.0.0.1:%d", s->plant_port);
	snprintf(modbus, sizeof(modbus), "127.0.0.1:%d", s->modbus_port);
	if (ts_pid(s, "minersim") > 0) {
		snprintf(minersim, sizeof(minersim), "http://127.0.0.1:%d", s->admin_port);
		argv[n++] = "--minersim";
		argv[n++] = minersim;
	}
	for (size_t i = 0; args && args[i] && n < 47; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	/* A restart appends to the same log: look for the ready line past its end. */
	text = tl_read_file(ts_find(s, "plantsim") ? ts_find(s, "plantsim")->log : "");
	from = text ? strlen(text) : 0;
	free(text);
	if (!(p = spawn(s, "plantsim", NULL, false, argv, NULL)))
		return -1;
	while (hive_mono_ms() < deadline) {
		bool ready;

		text = tl_read_file(p->log);
		ready = text && strlen(text) > from && strstr(text + from, "plantsim ready ");
		free(text);
		if (ready)
			return 0;
		if (!tl_alive(p->pid)) {
			p->pid = 0;
			break;
		}
		tl_sleep_ms(20);
	}
	fprintf(stderr, "ts_plantsim: no ready line from plantsim (http %s, modbus %s)\n", http,
		modbus);
	tail(p->log, 30);
	if (p->pid > 0) {
		tl_stop(p->pid, SIGKILL, 2000);
		p->pid = 0;
	}
	return -1;
}

struct ts_proc *ts_find(struct ts_suite *s, const char *name)
{
	for (int i = 0; i < s->nprocs; i++)
		if (strcmp(s->procs[i].name, name) == 0)
			return &s->procs[i];
	return NULL;
}

pid_t ts_pid(struct ts_suite *s, const char *name)
{
	struct ts_proc *p = ts_find(s, name);

	return p ? p->pid : 0;
}

int ts_stop(struct ts_suite *s, const char *name, int sig, int timeout_ms)
{
	struct ts_proc *p = ts_find(s, name);
	int st;

	if (!p || p->pid <= 0)
		return -1;
	st = tl_stop(p->pid, sig, timeout_ms);
	p->pid = 0;
	return st;
}

/* ------------------------------------------------------------ HTTP */

json_t *ts_http(struct ts_suite *s, const char *method, const char *base, const char *path,
		const char *body, bool auth, long *status)
{
	const char *const hdrs[] = { s->auth, NULL };
	char url[600];

	snprintf(url, sizeof(url), "%s%s", base, path);
	return tl_http_json(method, url, auth ? hdrs : NULL, body, status);
}

json_t *ts_api(struct ts_suite *s, const char *method, const char *path, const char *body,
	       long *status)
{
	return ts_http(s, method, s->api, path, body, true, status);
}

static json_t *get_200(struct ts_suite *s, const char *base, const char *path, bool auth)
{
	long st = 0;
	json_t *j = ts_http(s, "GET", base, path, NULL, auth, &st);

	if (j && st != 200) {
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *ts_api_get(struct ts_suite *s, const char *path)
{
	return get_200(s, s->api, path, true);
}

json_t *ts_sim_get(struct ts_suite *s, const char *base, const char *path)
{
	return get_200(s, base, path, false);
}

json_t *ts_sim_miner(struct ts_suite *s, const char *mac)
{
	char path[64];

	if (snprintf(path, sizeof(path), "/sim/miners/%s", mac) >= (int)sizeof(path))
		return NULL;
	return get_200(s, s->admin, path, false);
}

long ts_sim_post(struct ts_suite *s, const char *base, const char *path, const char *body)
{
	long st = 0;
	json_t *j = ts_http(s, "POST", base, path, body, false, &st);

	if (st != 200) {
		char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

		fprintf(stderr, "ts_sim_post: POST %s%s %s: %ld %s\n", base, path,
			body ? body : "", st, text ? text : "-");
		free(text);
	}
	json_decref(j);
	return st;
}

/* ------------------------------------------------------------ health */

const char *ts_token(struct ts_suite *s)
{
	json_t *auth = json_object_get(json_object_get(s->config, "http"), "auth");
	const char *tok = json_string_value(json_object_get(auth, "token"));
	const char *file = json_string_value(json_object_get(auth, "token_file"));
	char *text = NULL;

	if (!tok || !*tok)
		tok = s->env_token;
	if (!*tok && file && (text = tl_read_file(file))) {
		text[strcspn(text, "\r\n")] = '\0';
		tok = text;
	}
	if (*tok) {
		snprintf(s->token, sizeof(s->token), "%s", tok);
		snprintf(s->auth, sizeof(s->auth), "Authorization: Bearer %s", s->token);
	}
	free(text);
	return s->token[0] ? s->token : NULL;
}

/* The name of a running daemon apid has not heard from, "" when none, or
 * "/api/health" when apid does not answer. */
static const char *missing(struct ts_suite *s)
{
	long status = 0;
	json_t *h, *d;
	size_t k;
	const char *who = "";

	ts_token(s);
	h = ts_http(s, "GET", s->api, "/api/health", NULL, s->auth[0] != '\0', &status);
	if (!h || status != 200) {
		json_decref(h);
		return "/api/health";
	}
	for (int i = 0; i < s->nprocs && !*who; i++) {
		const struct ts_proc *p = &s->procs[i];
		bool seen = false;

		if (p->pid <= 0 || strcmp(p->prog, "apid") == 0 ||
		    strcmp(p->prog, "minersim") == 0 || strcmp(p->prog, "plantsim") == 0)
			continue;
		json_array_foreach(json_object_get(h, "daemons"), k, d)
			seen |= json_integer_value(json_object_get(d, "pid")) == p->pid;
		if (!seen)
			who = p->name;
	}
	json_decref(h);
	return who;
}

int ts_wait_healthy(struct ts_suite *s, int timeout_ms)
{
	long long deadline = hive_mono_ms() + timeout_ms;
	const char *who;

	while (*(who = missing(s)) && hive_mono_ms() < deadline)
		tl_sleep_ms(100);
	if (!*who)
		return 0;
	if (strcmp(who, "/api/health") == 0)
		fprintf(stderr, "ts_wait_healthy: GET /api/health not 200 within %d ms\n",
			timeout_ms);
	else
		fprintf(stderr, "ts_wait_healthy: no heartbeat of %s within %d ms\n", who,
			timeout_ms);
	ts_dump_logs(s, 15);
	return -1;
}

struct miners_wait {
	struct ts_suite *s;
	int want, have;
};

static bool miners_ready(void *arg)
{
	struct miners_wait *w = arg;
	json_t *list = ts_api_get(w->s, "/api/miners?limit=5000"), *m;
	size_t i;

	w->have = 0;
	json_array_foreach(json_object_get(list, "miners"), i, m)
		w->have += json_is_true(json_object_get(m, "online")) &&
			   json_is_true(json_object_get(m, "has_api_key")) &&
			   json_is_object(json_object_get(m, "status"));
	json_decref(list);
	if (w->have < w->want)
		tl_sleep_ms(250);        /* a listing of every miner: not every 50 ms */
	return w->have == w->want;
}

int ts_wait_miners(struct ts_suite *s, int n, int timeout_ms)
{
	struct miners_wait w = { s, n, 0 };

	if (tl_wait_until(timeout_ms, miners_ready, &w) == 0)
		return 0;
	fprintf(stderr, "ts_wait_miners: %d of %d miners online with a key and a status within "
		"%d ms\n", w.have, n, timeout_ms);
	return -1;
}

void ts_dump_logs(const struct ts_suite *s, int lines)
{
	for (int i = 0; i < s->nprocs; i++)
		if (s->procs[i].log[0])
			tail(s->procs[i].log, lines);
}

void ts_down(struct ts_suite *s, bool failed)
{
	const char *keep = getenv("KEEP_TMP"), *fleet_keep = getenv("FLEET_KEEP");

	for (int i = s->nprocs - 1; i >= 0; i--)
		if (s->procs[i].pid > 0) {
			tl_stop(s->procs[i].pid, SIGTERM, STOP_MS);
			s->procs[i].pid = 0;
		}
	if (s->dir) {
		if (failed || (keep && *keep && strcmp(keep, "0") != 0) ||
		    (fleet_keep && strcmp(fleet_keep, "1") == 0))
			fprintf(stderr, "ts: kept %s\n", s->dir);
		else
			tl_rmrf(s->dir);
	}
	free(s->dir);
	s->dir = NULL;
	json_decref(s->config);
	s->config = NULL;
	s->nprocs = 0;
}
