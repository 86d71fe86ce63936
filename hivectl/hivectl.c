/* hivectl — PowerHive from a terminal or a script: every command is one or
 * two requests to apid's HTTP API (docs/api.md), printed as aligned tables
 * or "key: value" lines for people, or as the API's JSON with --json.
 *
 * main reads the global options, finds the command in the table below and
 * returns its exit code (hivectl.h: 0 ok, 1 refused, 2 usage, 3 no answer,
 * 4 token refused). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hivectl.h"
#include "hive/daemon.h"          /* HIVE_VERSION */

#define DEFAULT_URL "http://127.0.0.1:8080"

static const struct command {
	const char *name;
	int (*run)(struct hc *c, const char *cmd, int argc, char **argv);
	const char *usage;
	const char *help;             /* after the usage line in `hivectl <command> --help` */
} commands[] = {
	{ "miners", hc_cmd_miners,
	  "miners [--model M] [--state S] [--online yes|no] [--managed yes|no]\n"
	  "              [--conflict yes|no] [--alerting yes|no] [--q TEXT]\n"
	  "              [--limit N] [--offset N] [--sort COLUMN] [--order asc|desc]",
	  "Every miner with its latest status, one line each: id (MAC), IP, model, state\n"
	  "(\"offline\" when the last sweep missed it; its last known IP is shown), preset,\n"
	  "realtime hashrate in TH/s, power in W (\"~\": the firmware's estimate, not a\n"
	  "PSU's measurement), hottest chip in °C, managed. The filters and sorting are\n"
	  "the API's (GET /api/miners): --q matches part of a MAC or an IP, --alerting\n"
	  "yes those with an alert firing, --sort takes mac ip model hostname state\n"
	  "preset hashrate power temp fan managed online last_seen ... Without --limit,\n"
	  "up to 10,000 miners (the API's largest page).\n" },
	{ "miner", hc_cmd_miner, "miner <id>",
	  "One miner in detail: identity, state, preset, hashrate, power, temperatures,\n"
	  "fans, pools, its last error, and its chains. <id> is its MAC.\n" },
	{ "models", hc_cmd_models, "models",
	  "Every model: miners, online, managed, its max preset, miners in conflict, and\n"
	  "its preset names by watts (the names set-preset and max-preset take).\n" },
	{ "max-preset", hc_cmd_max_preset, "max-preset <model> <preset|none>",
	  "Sets the highest preset PowerHive may run on the model's managed miners (none:\n"
	  "no limit). Managed miners above it are brought down to it by the enforcer.\n" },
	{ "set-preset", hc_cmd_act, "set-preset <preset> <id | filter options | --all>",
	  "Sets a preset on one miner, or on every miner the filter matches (--model\n"
	  "--state --q --online --managed --conflict --alerting, as for miners; --all:\n"
	  "the whole fleet). More than one miner needs a yes on the terminal, or -y.\n" },
	{ "restart", hc_cmd_act, "restart <id | filter options | --all>",
	  "Restarts mining on one miner or on a filter's miners (see set-preset).\n" },
	{ "reboot", hc_cmd_act, "reboot <id | filter options | --all>",
	  "Reboots one miner or a filter's miners (see set-preset).\n" },
	{ "pause", hc_cmd_act, "pause <id | filter options | --all>",
	  "Pauses mining on one miner or on a filter's miners (see set-preset).\n" },
	{ "resume", hc_cmd_act, "resume <id | filter options | --all>",
	  "Resumes mining on one miner or on a filter's miners (see set-preset).\n" },
	{ "actions", hc_cmd_actions, "actions [--miner ID] [--state S|open] [--limit N]",
	  "The actions, newest first, and their states: an action is done only when a\n"
	  "status read back shows its effect. --state open: queued, sent or confirming.\n" },
	{ "power", hc_cmd_power,
	  "power [set [--mode off|dry_run|on] [--margin PCT] [--budget W]\n"
	  "              [--fallback hold|fixed|minimum]]",
	  "power: the balancer's mode and state, the feed and its age, the available power,\n"
	  "the target, the estimated and measured draw (docs/power.md).\n"
	  "power set: changes the mode, the safety margin, the manual budget or the\n"
	  "fallback (PATCH /api/power, audited), then shows the state.\n" },
	{ "health", hc_cmd_health, "health",
	  "The suite's health: ok or degraded and why, the fleet's totals, workers,\n"
	  "events, the daemons and their heartbeats, the last sweep of every subnet.\n" },
	{ "alerts", hc_cmd_alerts,
	  "alerts [--state firing|resolved] [--rule R] [--miner MAC] [--limit N]\n"
	  "              [--before ID]",
	  "Alerts, newest first (docs/alerts.md): id, state (\"silenced\": not notified),\n"
	  "rule, subject (a miner's MAC, or what a farm rule is about), when it started,\n"
	  "how long it lasted or has lasted, who acknowledged it, its summary; then how\n"
	  "many fire now by rule. An answer that fills --limit ends with the --before\n"
	  "that shows the next, older page.\n" },
	{ "ack", hc_cmd_ack, "ack <id> [--comment TEXT]",
	  "Acknowledges an alert (POST /api/alerts/{id}/ack, audited with the token's\n"
	  "actor): it shows who took it on. It still resolves by itself.\n" },
	{ "silence", hc_cmd_silence,
	  "silence --rule R|--miner MAC --for DURATION [--comment TEXT]",
	  "Silences a rule, a miner, or a rule on one miner (both given) for a time:\n"
	  "DURATION is seconds or 90s, 30m, 2h, 1d, 1w. Alerts it covers are recorded and\n"
	  "shown but not notified. Audited with the token's actor.\n" },
	{ "silences", hc_cmd_silences, "silences [--all]",
	  "The silences in force (--all: the ended ones too): id, rule, miner, time left,\n"
	  "who made it, comment.\n" },
	{ "unsilence", hc_cmd_unsilence, "unsilence <id>",
	  "Ends a silence now (DELETE /api/silences/{id}, audited).\n" },
	{ "tokens", hc_cmd_tokens, "tokens list | create <name> <viewer|operator|admin> | revoke <name>",
	  "The API's named tokens (admin only; docs/api.md \"Tokens and roles\"). list: name,\n"
	  "role, when made and by whom, last use (to the minute), when revoked. create\n"
	  "prints the new token alone on stdout, this once: apid keeps only its SHA-256.\n"
	  "revoke stops it at once; its name stays taken.\n" },
	{ "whoami", hc_cmd_whoami, "whoami",
	  "The name and role of the token hivectl uses (GET /api/whoami).\n" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: hivectl [--url URL] [--token-file FILE] [--json] [-y] <command> [args]\n"
		"\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  hivectl %s\n", commands[i].usage);
	fprintf(f, "\n"
		"  --url URL          apid's address (env POWERHIVE_URL, default " DEFAULT_URL ")\n"
		"  --token-file FILE  the API token's file; without it POWERHIVE_API_TOKEN,\n"
		"                     else data/api-token\n"
		"  --json             print the API's JSON answers as they are (for scripts)\n"
		"  -y, --yes          no confirmation for a change on more than one miner\n"
		"  -h, --help         this; hivectl <command> --help for one command\n"
		"  -V, --version\n"
		"\nexit codes: 0 ok, 1 the API refused the request (its message on stderr),\n"
		"2 usage error or a bulk change not confirmed, 3 no answer from the API, a\n"
		"server error or an answer that is not JSON, 4 the token was refused.\n");
}

static void command_help(const struct command *k)
{
	printf("usage: hivectl %s\n\n%s", k->usage, k->help);
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* The base URL: http(s)://host[:port], without trailing slashes. */
static int set_url(struct hc *c, const char *url)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
	    n >= sizeof(c->url)) {
		fprintf(stderr, "hivectl: --url: an http:// or https:// address, not '%s'\n", url);
		return HC_USAGE;
	}
	memcpy(c->url, url, n);
	c->url[n] = '\0';
	return HC_OK;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: the value, or NULL when the
 * argument is not that option. */
static const char *value_of(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int main(int argc, char **argv)
{
	static struct hc c;
	const char *url = getenv("POWERHIVE_URL"), *token_file = NULL, *v;
	const struct command *k;
	bool missing = false;
	int i, rc, help;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if ((v = value_of(argc, argv, &i, "--url", &missing)))
			url = v;
		else if ((v = value_of(argc, argv, &i, "--token-file", &missing)))
			token_file = v;
		else if (missing)
			break;
		else if (strcmp(a, "--json") == 0)
			c.json = true;
		else if (strcmp(a, "-y") == 0 || strcmp(a, "--yes") == 0)
			c.yes = true;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return usage(stdout), HC_OK;
		else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
			return printf("hivectl %s\n", HIVE_VERSION), HC_OK;
		else {
			fprintf(stderr, "hivectl: unknown option %s (hivectl --help)\n", a);
			return HC_USAGE;
		}
	}
	if (missing) {
		fprintf(stderr, "hivectl: %s needs a value\n", argv[i]);
		return HC_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return HC_USAGE;
	}
	help = strcmp(argv[i], "help") == 0;
	if (help && i + 1 >= argc)
		return usage(stdout), HC_OK;
	if (!(k = find(argv[i + help]))) {
		fprintf(stderr, "hivectl: unknown command '%s' (hivectl --help)\n", argv[i + help]);
		return HC_USAGE;
	}
	if (help)
		return command_help(k), HC_OK;
	if ((rc = set_url(&c, url && *url ? url : DEFAULT_URL)) != HC_OK)
		return rc;
	c.token_file = token_file;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = k->run(&c, k->name, argc - i - 1, argv + i + 1);
	if (rc == HC_HELP) {
		command_help(k);
		rc = HC_OK;
	}
	hc_close(&c);
	curl_global_cleanup();
	return rc;
}
