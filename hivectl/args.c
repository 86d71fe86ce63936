/* args — a command's own options, and the miner filters that miners and
 * the actions share (one list, so that both speak the API's filters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hivectl.h"

/* The filters: the API's names, and which take yes|no (sent as booleans). */
static const struct {
	const char *name;
	bool yesno;
} filters[] = {
	{ "model", false }, { "state", false }, { "q", false },
	{ "online", true }, { "managed", true }, { "conflict", true }, { "alerting", true },
};
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))

static struct hc_opt *find(struct hc_opt *opts, const char *name, size_t len)
{
	for (; opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

const struct hc_opt *hc_opt(const struct hc_opt *opts, const char *name)
{
	return find((struct hc_opt *)opts, name, strlen(name));
}

int hc_args(struct hc *c, const char *cmd, int argc, char **argv, struct hc_opt *opts,
	    const char **pos, int maxpos, int *npos)
{
	bool options = true;

	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *eq;
		struct hc_opt *o;

		if (options && strcmp(a, "--") == 0) {
			options = false;
		} else if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			return HC_HELP;
		} else if (options && (strcmp(a, "-y") == 0 || strcmp(a, "--yes") == 0)) {
			c->yes = true;            /* global options work after the command too */
		} else if (options && strcmp(a, "--json") == 0) {
			c->json = true;
		} else if (options && a[0] == '-' && a[1]) {
			eq = strchr(a, '=');
			o = a[1] == '-' ? find(opts, a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2))
					: NULL;
			if (!o) {
				fprintf(stderr, "hivectl %s: unknown option %.*s (hivectl %s --help)\n",
					cmd, eq ? (int)(eq - a) : (int)strlen(a), a, cmd);
				return HC_USAGE;
			}
			if (o->flag && eq) {
				fprintf(stderr, "hivectl %s: --%s takes no value\n", cmd, o->name);
				return HC_USAGE;
			}
			if (!o->flag && !eq && i + 1 >= argc) {
				fprintf(stderr, "hivectl %s: --%s needs a value\n", cmd, o->name);
				return HC_USAGE;
			}
			if (o->value) {
				fprintf(stderr, "hivectl %s: --%s given twice\n", cmd, o->name);
				return HC_USAGE;
			}
			o->value = o->flag ? "" : eq ? eq + 1 : argv[++i];
		} else if (*npos < maxpos) {
			pos[(*npos)++] = a;
		} else {
			fprintf(stderr, "hivectl %s: unexpected argument '%s' (hivectl %s --help)\n",
				cmd, a, cmd);
			return HC_USAGE;
		}
	}
	return HC_OK;
}

int hc_filter(const char *cmd, const struct hc_opt *opts, json_t **filter)
{
	json_t *f = json_object();

	for (size_t i = 0; i < NFILTERS; i++) {
		const char *v = hc_opt(opts, filters[i].name)->value;

		if (!v)
			continue;
		if (!filters[i].yesno) {
			json_object_set_new(f, filters[i].name, json_string(v));
		} else if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
			json_object_set_new(f, filters[i].name, json_true());
		} else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
			json_object_set_new(f, filters[i].name, json_false());
		} else {
			fprintf(stderr, "hivectl %s: --%s: yes or no, not '%s'\n", cmd,
				filters[i].name, v);
			json_decref(f);
			return HC_USAGE;
		}
	}
	*filter = f;
	return HC_OK;
}

char *hc_query(struct hc *c, const json_t *params)
{
	char *q = NULL, *e;
	size_t len = 0;
	FILE *f = open_memstream(&q, &len);
	const char *key;
	json_t *v;
	bool ok = f != NULL, first = true;

	json_object_foreach((json_t *)params, key, v) {
		if (!ok)
			break;
		e = json_is_string(v) ? hc_escape(c, json_string_value(v))
				      : strdup(json_is_true(v) ? "true" : "false");
		ok = e && fprintf(f, "%s%s=%s", first ? "" : "&", key, e) > 0;
		first = false;
		free(e);
	}
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok) {
		free(q);
		return NULL;
	}
	return q;
}

const char *hc_filter_text(const json_t *filter, char *buf, size_t len)
{
	size_t at = 0;
	const char *key;
	json_t *v;

	buf[0] = '\0';
	json_object_foreach((json_t *)filter, key, v) {
		const char *s = json_is_string(v) ? json_string_value(v)
						  : json_is_true(v) ? "yes" : "no";
		int n = snprintf(buf + at, len - at, "%s%s=%s", at ? " " : "", key, s);

		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
	return at ? buf : "every miner";
}
