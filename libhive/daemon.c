/* daemon — see hive/daemon.h.
 *
 * Precedence: built-in defaults < config file < environment < command line.
 * The command-line overrides are kept so that a reload applies them again.
 */
#include "hive/daemon.h"
#include "hive/clock.h"
#include "hive/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG "etc/powerhive.json"

volatile sig_atomic_t hive_quit;
volatile sig_atomic_t hive_reload;

/* Command-line overrides, applied after every (re)load. */
static char opt_level[16];
static char opt_http[128];

static void on_quit(int sig)
{
	(void)sig;
	hive_quit = 1;
}

static void on_reload(int sig)
{
	(void)sig;
	hive_reload = 1;
}

static void usage(FILE *f, const struct hive_daemon_spec *spec)
{
	fprintf(f, "usage: %s [-hnV] [-c file] [-l level]%s\n", spec->name,
		spec->http_option ? " [--http addr]" : "");
	if (spec->summary)
		fprintf(f, "%s\n", spec->summary);
	fprintf(f,
		"  -c, --config FILE     configuration file (env POWERHIVE_CONFIG,\n"
		"                        default " DEFAULT_CONFIG ")\n"
		"  -l, --log-level LVL   debug, info, warn or error (env POWERHIVE_LOG_LEVEL)\n"
		"  -n, --check           check the configuration, print the result, exit 0/1\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version\n");
	if (spec->http_option)
		fprintf(f, "      --http ADDR       listen on host:port (env POWERHIVE_HTTP_ADDR)\n");
	if (spec->options)
		fputs(spec->options, f);
}

static void die_usage(const struct hive_daemon_spec *spec)
{
	usage(stderr, spec);
	exit(1);
}

/* Command line over whatever the file and environment said. */
static int apply_options(struct hive_cfg *cfg, char *err, size_t errlen)
{
	if (opt_level[0])
		snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", opt_level);
	if (opt_http[0])
		snprintf(cfg->http.addr, sizeof(cfg->http.addr), "%s", opt_http);
	return hive_cfg_validate(cfg, err, errlen);
}

/* The firmware's factory password is public knowledge; masking every
 * "admin" in every line would only make the logs unreadable. */
static bool password_is_secret(const char *pw)
{
	return strcmp(pw, HIVE_FACTORY_PASSWORD) != 0;
}

static void secrets_register(const struct hive_cfg *cfg)
{
	hive_log_secret(cfg->http.auth.token);
	if (password_is_secret(cfg->network.default_password))
		hive_log_secret(cfg->network.default_password);
	/* Alert channels: Slack and Telegram URLs carry their token. */
	for (size_t i = 0; i < cfg->alerts.n_channels; i++) {
		hive_log_secret(cfg->alerts.channels[i].url);
		hive_log_secret(cfg->alerts.channels[i].secret);
		hive_log_secret(cfg->alerts.channels[i].smtp_url);
	}
}

static void secrets_forget(const struct hive_cfg *cfg)
{
	hive_log_forget_secret(cfg->http.auth.token);
	if (password_is_secret(cfg->network.default_password))
		hive_log_forget_secret(cfg->network.default_password);
	for (size_t i = 0; i < cfg->alerts.n_channels; i++) {
		hive_log_forget_secret(cfg->alerts.channels[i].url);
		hive_log_forget_secret(cfg->alerts.channels[i].secret);
		hive_log_forget_secret(cfg->alerts.channels[i].smtp_url);
	}
}

static void apply_level(const struct hive_cfg *cfg)
{
	enum hive_log_level level;

	if (hive_log_level_parse(cfg->log_level, &level) == 0)
		hive_log_set_level(level);
}

static void signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* poll(2) still returns EINTR, so the loop sees the flag at once. */
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_quit;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

void hive_daemon_start(struct hive_daemon *d, const struct hive_daemon_spec *spec, int argc,
		       char **argv)
{
	enum { OPT_HTTP = 256 };
	struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "check", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "http", required_argument, NULL, OPT_HTTP },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *env;
	bool check = false;
	char err[1024], q[1100];
	enum hive_log_level level;
	int ch;

	memset(d, 0, sizeof(*d));
	d->name = spec->name;
	hive_log_init(spec->name, HIVE_LOG_INFO, NULL);
	opt_level[0] = opt_http[0] = '\0';
	if (!spec->http_option)
		longopts[5] = (struct option){ NULL, 0, NULL, 0 };

	optind = 0;  /* full reset: a test may call this more than once */
	while ((ch = getopt_long(argc, argv, "c:l:nhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (hive_log_level_parse(optarg, &level) == -1) {
				fprintf(stderr, "%s: -l: \"%s\" is not a log level (debug, info, warn, error)\n",
					spec->name, optarg);
				exit(1);
			}
			snprintf(opt_level, sizeof(opt_level), "%s", hive_log_level_name(level));
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout, spec);
			exit(0);
		case 'V':
			printf("%s %s\n", spec->name, HIVE_VERSION);
			exit(0);
		case OPT_HTTP:
			if (strlen(optarg) >= sizeof(opt_http) || hive_cfg_addr_ok(optarg) == -1) {
				fprintf(stderr, "%s: --http: \"%s\" is not host:port\n", spec->name,
					optarg);
				exit(1);
			}
			snprintf(opt_http, sizeof(opt_http), "%s", optarg);
			break;
		default:
			die_usage(spec);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", spec->name, argv[optind]);
		die_usage(spec);
	}
	if (!config)
		config = (env = getenv("POWERHIVE_CONFIG")) && *env ? env : DEFAULT_CONFIG;
	if (strlen(config) >= sizeof(d->config_path)) {
		fprintf(stderr, "%s: -c: file name too long\n", spec->name);
		exit(1);
	}
	snprintf(d->config_path, sizeof(d->config_path), "%s", config);

	/* The level asked for governs the warnings the load itself logs. */
	if (opt_level[0] && hive_log_level_parse(opt_level, &level) == 0)
		hive_log_set_level(level);
	else if ((env = getenv("POWERHIVE_LOG_LEVEL")) && hive_log_level_parse(env, &level) == 0)
		hive_log_set_level(level);

	if (hive_cfg_load(&d->cfg, d->config_path, err, sizeof(err)) == -1 ||
	    apply_options(&d->cfg, err, sizeof(err)) == -1) {
		hive_cfg_free(&d->cfg);
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			log_errx("config invalid problem=%s", hive_log_quote(err, q, sizeof(q)));
		exit(1);
	}
	if (check) {
		printf("%s: configuration OK\n", d->config_path);
		hive_cfg_free(&d->cfg);
		exit(0);
	}
	apply_level(&d->cfg);
	secrets_register(&d->cfg);

	if (gethostname(d->host, sizeof(d->host)) == -1 || !d->host[0])
		snprintf(d->host, sizeof(d->host), "localhost");
	d->host[sizeof(d->host) - 1] = '\0';
	snprintf(d->source, sizeof(d->source), "%s/%.128s/%ld", spec->name, d->host,
		 (long)getpid());
	d->boot = hive_wall_ms();
	hive_quit = hive_reload = 0;
	signals_install();
	log_info("started version=%s config=%s level=%s", HIVE_VERSION,
		 hive_log_quote(d->config_path, q, sizeof(q)), d->cfg.log_level);
}

int hive_daemon_reload(struct hive_daemon *d)
{
	struct hive_cfg next;
	char err[1024], q[1100];

	hive_reload = 0;
	if (hive_cfg_load(&next, d->config_path, err, sizeof(err)) == -1 ||
	    apply_options(&next, err, sizeof(err)) == -1) {
		hive_cfg_free(&next);
		log_errx("reload refused, keeping the running config problem=%s",
			 hive_log_quote(err, q, sizeof(q)));
		return 0;
	}
	/* Register before forgetting: a secret in both stays masked throughout. */
	secrets_register(&next);
	secrets_forget(&d->cfg);
	hive_cfg_free(&d->cfg);
	d->cfg = next;
	apply_level(&d->cfg);
	log_info("reloaded config=%s level=%s", hive_log_quote(d->config_path, q, sizeof(q)),
		 d->cfg.log_level);
	return 1;
}

static int state_path(const struct hive_daemon *d, char *out, size_t len, const char *suffix)
{
	int n;

	if (!d->cfg.health.state_dir[0])
		return -1;
	n = snprintf(out, len, "%s/%s.state%s", d->cfg.health.state_dir, d->name, suffix);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int hive_daemon_write_state(const struct hive_daemon *d, const struct hive_daemon_link *links,
			    int n)
{
	char path[HIVE_CFG_PATH_MAX + 80], tmp[HIVE_CFG_PATH_MAX + 80];
	FILE *f;
	int bad;

	if (state_path(d, path, sizeof(path), "") < 0 ||
	    state_path(d, tmp, sizeof(tmp), ".tmp") < 0)
		return 0;
	if (!(f = fopen(tmp, "w"))) {
		hive_log_complain("state file", "state file not written path=%s err=\"%s\"", tmp,
				  strerror(errno));
		return -1;
	}
	fprintf(f, "pid %ld\nbeat_ms %lld\nheartbeat_seconds %d\n", (long)getpid(),
		(long long)hive_wall_ms(), d->cfg.intervals.heartbeat_seconds);
	for (int i = 0; i < n; i++)
		fprintf(f, "bus.%s %d\n", links[i].key, links[i].peers);
	bad = ferror(f);
	if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
		hive_log_complain("state file", "state file not written path=%s err=\"%s\"", path,
				  strerror(errno));
		unlink(tmp);
		return -1;
	}
	hive_log_recovered("state file", "state file written again path=%s", path);
	return 0;
}

void hive_daemon_remove_state(const struct hive_daemon *d)
{
	char path[HIVE_CFG_PATH_MAX + 80];

	if (state_path(d, path, sizeof(path), "") == 0)
		unlink(path);
}

void hive_daemon_finish(struct hive_daemon *d)
{
	log_info("stopped");
	secrets_forget(&d->cfg);
	hive_cfg_free(&d->cfg);
}
