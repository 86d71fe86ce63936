/* daemon — what every PowerHive daemon does before and around its loop:
 * common options, logging, config, signals.
 *
 *   -c, --config FILE     (env POWERHIVE_CONFIG, default etc/powerhive.json)
 *   -l, --log-level LVL   (env POWERHIVE_LOG_LEVEL)
 *   -n, --check           validate the config, print the problem, exit 0/1
 *   -h, --help            -V, --version
 *       --http ADDR       (apid only; env POWERHIVE_HTTP_ADDR)
 *
 * Signal handlers only set flags: SIGINT/SIGTERM set hive_quit, SIGHUP sets
 * hive_reload. SIGPIPE is ignored.
 */
#ifndef HIVE_DAEMON_H
#define HIVE_DAEMON_H

#include <signal.h>
#include <stdbool.h>
#include "hive/cfg.h"

#define HIVE_VERSION "0.1.0"

extern volatile sig_atomic_t hive_quit;
extern volatile sig_atomic_t hive_reload;

struct hive_daemon {
	const char *name;        /* "apid", "pollerd", ... */
	char config_path[4096];
	struct hive_cfg cfg;     /* loaded and validated */
	char host[128];          /* gethostname() */
	char source[192];        /* "<name>/<host>/<pid>": the bus envelope's src */
	long long boot;          /* start time in ms: the bus envelope's boot */
};

struct hive_daemon_spec {
	const char *name;
	const char *summary;     /* one line for --help */
	bool http_option;        /* accepts --http ADDR */
	const char *options;     /* --help lines of the daemon's own options
				  * (it takes them out of argv itself) */
};

/* Parses argv, initialises logging, loads and validates the config, installs
 * signal handlers. Handles -h, -V and -n itself (prints and exits the
 * process with 0 or 1). On a bad option or config prints one clear message
 * and exits 1 — it is called before the daemon owns anything. */
void hive_daemon_start(struct hive_daemon *d, const struct hive_daemon_spec *spec,
		       int argc, char **argv);

/* On SIGHUP: parses the config again. When the new one is valid it replaces
 * d->cfg (the old one is freed) and returns 1; when it is bad it logs the
 * problem, keeps the old one and returns 0. Clears hive_reload. */
int hive_daemon_reload(struct hive_daemon *d);

/* One bus socket as the state file lists it: its config key ("events",
 * "jobs_status", ...) and how many peers it is connected to. */
struct hive_daemon_link {
	const char *key;
	int peers;
};

/* With health.state_dir set, writes <state_dir>/<name>.state (replaced
 * whole, by rename) for the container's health check
 * (etc/docker/healthcheck.sh, docs/operations.md): lines "pid N",
 * "beat_ms N" (wall clock), "heartbeat_seconds N" and "bus.<key> N" (peers)
 * per link. Call it with each heartbeat. 0, or -1 (logged, rate-limited). */
int hive_daemon_write_state(const struct hive_daemon *d, const struct hive_daemon_link *links,
			    int n);
/* Removes the state file (a daemon stopping on purpose): the health check
 * then fails at once instead of after three missed beats. */
void hive_daemon_remove_state(const struct hive_daemon *d);

/* Frees the config; logs "stopped". */
void hive_daemon_finish(struct hive_daemon *d);

#endif
