/* hivectl — the command-line client of apid's HTTP API (docs/hivectl.md).
 *
 * hivectl.c  main: global options, the command table, help, dispatch
 * http.c     the API: base URL, the token, one request, what its answer means
 * args.c     a command's own options and the miner filters they share
 * table.c    aligned tables and "key: value" lines for people
 * miners.c   miners, miner, models, max-preset, actions (the log)
 * act.c      set-preset, restart, reboot, pause, resume (one miner or a filter)
 * power.c    power, power set
 * health.c   health
 * alerts.c   alerts, ack, silence, silences, unsilence
 * tokens.c   tokens (list, create, revoke), whoami
 */
#ifndef HIVECTL_H
#define HIVECTL_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* Exit codes: what a script can rely on (docs/hivectl.md). */
enum {
	HC_OK = 0,
	HC_REFUSED = 1,          /* the API refused the request (4xx but 401/403) */
	HC_USAGE = 2,            /* bad command line; a bulk change not confirmed */
	HC_UNREACHABLE = 3,      /* no answer, a 5xx, or an answer that is not JSON */
	HC_AUTH = 4,             /* 401/403: the token was refused, or its role may not */
	HC_HELP = -1,            /* not an exit code: a command was asked for its help */
};

/* One run of hivectl. */
struct hc {
	char url[1024];          /* the API's base, no trailing '/' */
	const char *token_file;  /* --token-file, or NULL */
	bool token_loaded;       /* read at the first request: help needs none */
	char token[516];         /* "" when there is none; never printed */
	char token_from[1100];   /* where it came from, for a refusal's hint */
	bool json;               /* --json: print the API's answers as they are */
	bool yes;                /* -y: no confirmation for bulk changes */
	void *curl;              /* one handle, kept alive between requests */
	char *body;              /* the last answer as received (malloc'd) */
	size_t body_len;
};

/* ------------------------------------------------------------ http.c */

/* One request to c->url + path (path and query already escaped); body is
 * sent as JSON when not NULL. The first request reads the token: the file
 * of --token-file, else POWERHIVE_API_TOKEN, else data/api-token when it
 * exists, else none (a token that cannot be read is HC_USAGE). On a 2xx
 * answer: HC_OK, *out its JSON (new reference; out may be NULL) and
 * c->body the text as received. Otherwise the error on stderr (never the
 * token) and the exit code it means. */
int hc_call(struct hc *c, const char *method, const char *path, const json_t *body,
	    json_t **out);

/* The last answer as received, on stdout (--json). */
void hc_print_body(const struct hc *c);

/* s escaped for a path segment or a query value (malloc'd; NULL on no
 * memory). */
char *hc_escape(struct hc *c, const char *s);

void hc_close(struct hc *c);

/* ------------------------------------------------------------ args.c */

/* One option of a command: "--name VALUE", "--name=VALUE" or a flag. */
struct hc_opt {
	const char *name;
	bool flag;               /* takes no value */
	const char *value;       /* what was given ("" for a flag), NULL if not */
};

/* Reads argv (the command's name excluded) into opts (an array ending with
 * a NULL name) and up to maxpos positional arguments into pos; -y and
 * --json are taken here too, after the command. HC_OK, HC_HELP for -h or
 * --help, or HC_USAGE with the reason on stderr. */
int hc_args(struct hc *c, const char *cmd, int argc, char **argv, struct hc_opt *opts,
	    const char **pos, int maxpos, int *npos);

/* The miner filters of GET /api/miners and of POST /api/actions' "filter":
 * --model --state --q (text) and --online --managed --conflict --alerting
 * (yes|no).
 * HC_FILTER_OPTS goes into a command's hc_opt list; hc_filter reads them
 * back into a JSON object (*filter, new reference, {} when none given). */
#define HC_FILTER_OPTS \
	{ "model", false, NULL }, { "state", false, NULL }, { "q", false, NULL }, \
	{ "online", false, NULL }, { "managed", false, NULL }, { "conflict", false, NULL }, \
	{ "alerting", false, NULL }
int hc_filter(const char *cmd, const struct hc_opt *opts, json_t **filter);

/* opts' entry for name (it must be there). */
const struct hc_opt *hc_opt(const struct hc_opt *opts, const char *name);

/* An object of strings and booleans as a query string
 * "model=s19&online=true" (malloc'd; NULL on no memory), values escaped. */
char *hc_query(struct hc *c, const json_t *params);

/* filter for a person: "model=s19 online=yes" ("every miner" when empty),
 * in buf. */
const char *hc_filter_text(const json_t *filter, char *buf, size_t len);

/* ------------------------------------------------------------ table.c */

struct hc_table;

/* A table with these column heads (NULL-terminated); align has one letter
 * per column, 'l' or 'r'. NULL on no memory. */
struct hc_table *hc_table_new(const char *const heads[], const char *align);
/* The next cell, left to right, row after row (printf format). */
void hc_table_cell(struct hc_table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints the table on stdout and frees it. */
void hc_table_print(struct hc_table *t);

/* "key:            value" on stdout (printf format for the value). */
void hc_kv(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formatting for cells (each into buf, which it returns; "-" for a missing
 * value). */
const char *hc_watts(const json_t *w, char *buf, size_t len);     /* 812.4 kW */
const char *hc_duration(double seconds, char *buf, size_t len);  /* 12s 5m 3h 36d */
const char *hc_age(const json_t *ts_ms, char *buf, size_t len);   /* 12s ago */
const char *hc_num(const json_t *v, int decimals, double scale, char *buf, size_t len);
const char *hc_str(const json_t *o, const char *key);             /* "-" when not a string */

/* ------------------------------------------------------------ commands */

int hc_cmd_miners(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_miner(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_models(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_max_preset(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_actions(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_act(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_power(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_health(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_alerts(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_ack(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_silence(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_silences(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_unsilence(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_tokens(struct hc *c, const char *cmd, int argc, char **argv);
int hc_cmd_whoami(struct hc *c, const char *cmd, int argc, char **argv);

#endif
