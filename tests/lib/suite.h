/* suite — one PowerHive stack for a test, on loopback: a temp dir that
 * holds the config, the database and every log; free ports for HTTP, the
 * miners and every bus endpoint; minersim and the daemons started from that
 * config and stopped in reverse order.
 *
 * This is the one place a test's config gets its bus endpoints: a new
 * endpoint is one line in ts_bus_keys (suite.c).
 *
 *	struct ts_suite s;
 *	ts_init(&s, "fleet");
 *	ts_merge(&s, "{\"intervals\": {\"status_seconds\": %d}}", 3);
 *	ts_minersim(&s, "127.60.0.0/22", 1000, (const char *[]){ "--seed", "7", NULL });
 *	ts_plantsim(&s, (const char *[]){ "--generation-w", "600000", NULL });  (optional)
 *	ts_start(&s, "apid", NULL, NULL, NULL);
 *	ts_start(&s, "pollerd", "pollerd0", NULL, NULL);
 *	ts_wait_healthy(&s, 20000);
 *	... ts_api_get(&s, "/api/miners"), ts_sim_get(&s, s.admin, "/sim/miners")
 *	    (minersim), ts_sim_get(&s, s.plant, "/sim/state") (plantsim) ...
 *	ts_down(&s, false);
 */
#ifndef HIVE_SUITE_H
#define HIVE_SUITE_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#define TS_PROCS_MAX 40
#define TS_PORTS_MAX 24

/* The keys of the config's "bus" object ("events", "jobs_status", ...), in
 * the order a test that lays them out itself gives them ports. */
extern const char *const ts_bus_keys[];
extern const size_t ts_nbus;

struct ts_proc {
	char prog[32];           /* "apid", "pollerd", "minersim" */
	char name[32];           /* distinct per suite; its log is <dir>/<name>.log */
	char log[1100];
	pid_t pid;               /* 0: not running. A test that reaps it itself sets 0. */
};

struct ts_suite {
	char *dir;               /* the temp dir (malloc'd) */
	char cfg[1100];          /* <dir>/powerhive.json */
	json_t *config;          /* what is written to cfg; see ts_merge */
	int http_port;           /* apid's, from http.addr as last written */
	char api[64];            /* "http://127.0.0.1:<http_port>" */
	int miner_port;          /* network.port: where minersim's miners listen */
	int admin_port;          /* minersim's admin API */
	char admin[64];          /* "http://127.0.0.1:<admin_port>" */
	char token[256];         /* set by ts_token */
	char auth[300];          /* "Authorization: Bearer <token>", set by ts_token */
	struct ts_proc procs[TS_PROCS_MAX];  /* in the order they were first started */
	int nprocs;
	int ports[TS_PORTS_MAX]; /* handed out, so that none is handed out twice */
	int nports;
	bool dirty;              /* config changed since it was written */
	char env_token[256];     /* POWERHIVE_API_TOKEN given to apid, if any */
	/* plantsim, once ts_plantsim started it (0 / "" before): */
	int plant_port;          /* its HTTP port: the aggregator's reading and /sim/ */
	char plant[64];          /* "http://127.0.0.1:<plant_port>" */
	int modbus_port;         /* its Modbus TCP meter */
	char plant_key[72];      /* the aggregator's bearer key (in <dir>/plant-key too) */
};

/* A fresh suite: temp dir "powerhive-<tag>-XXXXXX", free loopback ports,
 * and the base config in s->config:
 *   log_level info; database.path <dir>/powerhive.db;
 *   network.subnets [], network.port miner_port;
 *   http.addr 127.0.0.1:<http_port>, http.web_root <dir>/web,
 *   http.auth.token_file <dir>/api-token;
 *   bus.<every endpoint> tcp://127.0.0.1:<free port>.
 * Everything else is the daemons' default. 0 / -1 (nothing left to free). */
int ts_init(struct ts_suite *s, const char *tag);

/* Merges a JSON object (printf format) into the config, recursively: an
 * object adds or replaces keys, any other value (arrays too) replaces.
 * The config is written again before the next ts_start. 0 / -1 on a JSON
 * error (said on stderr). */
int ts_merge(struct ts_suite *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* bus.<key> of the config ("events", "jobs_status", ...); aborts on a key
 * the config does not have (a test's mistake). */
const char *ts_bus(const struct ts_suite *s, const char *key);

/* Writes s->config to s->cfg (after a test edited s->config itself) and
 * takes http_port / api from http.addr. 0 / -1. */
int ts_write_config(struct ts_suite *s);

/* Starts bin/minersim with `miners` miners on `subnet` (loopback), its
 * miners on miner_port and its admin API on admin_port, then args (NULL-
 * terminated, may be NULL); log <dir>/minersim.log. Points network.subnets
 * at that subnet. Waits for the admin API. 0 / -1. */
int ts_minersim(struct ts_suite *s, const char *subnet, int miners, const char *const args[]);

/* Starts bin/plantsim (docs/plantsim.md) on loopback: the aggregator and
 * its admin API on a free port (s->plant, reading at "/v1/reading",
 * plant_id "plant-1" unless args say otherwise), the Modbus meter on
 * another (s->modbus_port), a fresh random bearer key in <dir>/plant-key
 * (s->plant_key); when minersim runs (ts_minersim first), its consumption
 * follows minersim's /sim/fleet power_w. Then args (NULL-terminated, may
 * be NULL: --generation-w, --modbus-type, --minersim-interval-ms...); log
 * <dir>/plantsim.log. Waits for its "plantsim ready" line (20 s). The
 * config is not touched: a test points power.source at s->plant itself.
 * Started again after a stop, it keeps its ports and key. 0 / -1. */
int ts_plantsim(struct ts_suite *s, const char *const args[]);

/* Starts bin/<prog> -c <cfg> [args...] with env (NULL-terminated "K=V"
 * list, may be NULL), its output appended to <dir>/<name>.log (name NULL:
 * prog); writes the config first when it changed. Starting a name again
 * (apid after a restart) reuses its entry and log. For apid, waits until it
 * answers on its HTTP port (20 s). The entry, or NULL with the log's tail
 * on stderr. */
struct ts_proc *ts_start(struct ts_suite *s, const char *prog, const char *name,
			 const char *const args[], char *const env[]);

/* The entry of name, or NULL; its pid, or 0 when it is not running. */
struct ts_proc *ts_find(struct ts_suite *s, const char *name);
pid_t ts_pid(struct ts_suite *s, const char *name);

/* Sends sig to name and waits up to timeout_ms (then SIGKILL). The exit
 * status as waitpid gives it, or -1 when name is not running. */
int ts_stop(struct ts_suite *s, const char *name, int sig, int timeout_ms);

/* The API token: http.auth.token of the config, else POWERHIVE_API_TOKEN
 * as given to apid, else the first line of http.auth.token_file (apid
 * writes it when it generates one). Fills s->token and s->auth; NULL when
 * there is none yet. */
const char *ts_token(struct ts_suite *s);

/* One request to base + path (base: s->api, s->admin, s->plant), with the
 * token (s->auth) when auth; the answer as JSON, NULL when none or not
 * JSON. status may be NULL. */
json_t *ts_http(struct ts_suite *s, const char *method, const char *base, const char *path,
		const char *body, bool auth, long *status);
/* ts_http to apid, with the token. */
json_t *ts_api(struct ts_suite *s, const char *method, const char *path, const char *body,
	       long *status);
/* GET from apid with the token, or from a simulator's base without; NULL
 * unless 200. */
json_t *ts_api_get(struct ts_suite *s, const char *path);
json_t *ts_sim_get(struct ts_suite *s, const char *base, const char *path);
/* minersim's view of one miner, GET /sim/miners/<mac>; NULL unless 200. */
json_t *ts_sim_miner(struct ts_suite *s, const char *mac);
/* POST to a simulator's admin API, the answer dropped: the status, said on
 * stderr with the answer unless 200. */
long ts_sim_post(struct ts_suite *s, const char *base, const char *path, const char *body);

/* Waits until GET /api/health answers 200 (with the token when there is
 * one) and lists every running daemon but apid (by pid: its heartbeats
 * reached apid); the simulators send none. 0, or -1 with what is missing and the logs' tails on
 * stderr. */
int ts_wait_healthy(struct ts_suite *s, int timeout_ms);

/* Waits until apid lists n miners online with an API key and a status:
 * discovered, keyed and polled. 0, or -1 with how many were on stderr. */
int ts_wait_miners(struct ts_suite *s, int n, int timeout_ms);

/* The last `lines` lines of every log of the suite, on stderr. */
void ts_dump_logs(const struct ts_suite *s, int lines);

/* Stops whatever still runs, in reverse order of start (SIGTERM, 10 s
 * each), and removes the temp dir, unless failed is true or KEEP_TMP (or
 * FLEET_KEEP=1) is set: then it stays and its path is said on stderr.
 * Safe to call again. */
void ts_down(struct ts_suite *s, bool failed);

#endif
