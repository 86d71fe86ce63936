/* act — set-preset, restart, reboot, pause, resume: on one miner, or on
 * every miner a filter matches, with a yes from the operator first when
 * that is more than one miner.
 *
 * apid carries an action out in the background and marks it done when a
 * status shows the effect: hivectl says what was queued, `hivectl actions`
 * follows it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hivectl.h"

/* "set_preset 2620", "restart": the action for a person, in buf. */
static const char *what(const json_t *body, char *buf, size_t len)
{
	const char *preset = json_string_value(json_object_get(body, "preset"));

	snprintf(buf, len, "%s%s%s", hc_str(body, "action"), preset ? " " : "",
		 preset ? preset : "");
	return buf;
}

/* How many miners filter matches now; -1 with the exit code in *rc. */
static long long count(struct hc *c, const json_t *filter, int *rc)
{
	char *q = hc_query(c, filter), *path = NULL;
	json_t *j = NULL;
	long long n = -1;

	*rc = HC_UNREACHABLE;
	if (!q || asprintf(&path, "/api/miners?%s%slimit=1", q, *q ? "&" : "") < 0) {
		path = NULL;
		fprintf(stderr, "hivectl: out of memory\n");
	} else if ((*rc = hc_call(c, "GET", path, NULL, &j)) == HC_OK) {
		n = json_integer_value(json_object_get(j, "total"));
	}
	json_decref(j);
	free(q);
	free(path);
	return n;
}

/* The operator's yes for a change on n miners: -y, or "y" typed on the
 * terminal. Without a terminal and without -y, no. */
static bool confirmed(const struct hc *c, const char *action, long long n, const char *scope)
{
	char line[16];

	if (c->yes)
		return true;
	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "hivectl: %s on %lld miners (%s) needs a yes: run it on a terminal, "
			"or give -y; nothing sent\n", action, n, scope);
		return false;
	}
	fprintf(stderr, "%s on %lld miners (%s)? [y/N] ", action, n, scope);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y'))
		return true;
	fprintf(stderr, "hivectl: nothing sent\n");
	return false;
}

static int one(struct hc *c, const char *id, const json_t *body)
{
	char path[512], buf[128], *e = hc_escape(c, id);
	json_t *j, *a;
	int rc;

	if (!e)
		return HC_UNREACHABLE;
	snprintf(path, sizeof(path), "/api/miners/%s/actions", e);
	free(e);
	if ((rc = hc_call(c, "POST", path, body, &j)) != HC_OK)
		return rc;
	a = json_object_get(j, "action");
	if (c->json)
		hc_print_body(c);
	else
		printf("action %lld %s: %s on %s\n", (long long)json_integer_value(
		       json_object_get(a, "id")), hc_str(a, "state"), what(body, buf, sizeof(buf)),
		       hc_str(a, "miner"));
	json_decref(j);
	return HC_OK;
}

static int many(struct hc *c, json_t *body, json_t *filter)
{
	char buf[128], text[512];
	const char *scope = hc_filter_text(filter, text, sizeof(text));
	json_t *j, *r;
	long long n;
	size_t i, nrefused;
	int rc;

	if ((n = count(c, filter, &rc)) < 0)
		return rc;
	if (n > 1 && !confirmed(c, what(body, buf, sizeof(buf)), n, scope))
		return HC_USAGE;
	json_object_set(body, "filter", filter);
	if ((rc = hc_call(c, "POST", "/api/actions", body, &j)) != HC_OK)
		return rc;
	nrefused = json_array_size(json_object_get(j, "refused"));
	if (c->json) {
		hc_print_body(c);
	} else {
		json_array_foreach(json_object_get(j, "refused"), i, r)
			fprintf(stderr, "hivectl: refused %s: %s (HTTP %lld)\n", hc_str(r, "miner"),
				hc_str(r, "error"), (long long)json_integer_value(
				json_object_get(r, "status")));
		printf("%s queued on %zu miners (%s), %zu refused\n", what(body, buf, sizeof(buf)),
		       json_array_size(json_object_get(j, "actions")), scope, nrefused);
	}
	json_decref(j);
	return nrefused ? HC_REFUSED : HC_OK;
}

int hc_cmd_act(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { HC_FILTER_OPTS, { "all", true, NULL }, { NULL, false, NULL } };
	bool preset = strcmp(cmd, "set-preset") == 0;
	const char *pos[2], *id;
	json_t *filter = NULL, *body;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, pos, preset ? 2 : 1, &npos)) != HC_OK ||
	    (rc = hc_filter(cmd, opts, &filter)) != HC_OK)
		return rc;
	id = npos > (preset ? 1 : 0) ? pos[npos - 1] : NULL;
	rc = HC_USAGE;
	if (preset && npos < 1)
		fprintf(stderr, "hivectl set-preset: which preset? (hivectl set-preset 2620 <id>)\n");
	else if (id && (json_object_size(filter) || hc_opt(opts, "all")->value))
		fprintf(stderr, "hivectl %s: a miner id or a filter, not both\n", cmd);
	else if (!id && !json_object_size(filter) && !hc_opt(opts, "all")->value)
		fprintf(stderr, "hivectl %s: which miners? a miner id, a filter (--model, --state, "
			"--q, --online, --managed, --conflict, --alerting) or --all\n", cmd);
	else
		rc = HC_OK;
	if (rc != HC_OK) {
		json_decref(filter);
		return rc;
	}
	body = json_pack("{s:s}", "action", preset ? "set_preset" : cmd);
	if (preset)
		json_object_set_new(body, "preset", json_string(pos[0]));
	rc = id ? one(c, id, body) : many(c, body, filter);
	json_decref(body);
	json_decref(filter);
	return rc;
}
