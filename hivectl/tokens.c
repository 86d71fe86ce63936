/* tokens — hivectl tokens list|create|revoke (the API's named tokens,
 * admin only) and hivectl whoami. A new token is printed once, alone on
 * stdout, so that a script can take it: apid keeps only its hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hivectl.h"

static void show_tokens(const json_t *j)
{
	static const char *const heads[] = { "NAME", "ROLE", "CREATED", "BY", "LAST USED",
					     "REVOKED", NULL };
	const json_t *list = json_object_get(j, "tokens"), *t;
	struct hc_table *tab = hc_table_new(heads, "llllll");
	char b1[48], b2[48], b3[48];
	size_t i;

	if (!tab) {
		fprintf(stderr, "hivectl: out of memory\n");
		return;
	}
	json_array_foreach(list, i, t) {
		hc_table_cell(tab, "%s", hc_str(t, "name"));
		hc_table_cell(tab, "%s", hc_str(t, "role"));
		hc_table_cell(tab, "%s", hc_age(json_object_get(t, "created"), b1, sizeof(b1)));
		hc_table_cell(tab, "%s", hc_str(t, "created_by"));
		hc_table_cell(tab, "%s", json_is_integer(json_object_get(t, "last_used"))
				       ? hc_age(json_object_get(t, "last_used"), b2, sizeof(b2))
				       : "never");
		hc_table_cell(tab, "%s", json_is_integer(json_object_get(t, "revoked"))
				       ? hc_age(json_object_get(t, "revoked"), b3, sizeof(b3)) : "-");
	}
	hc_table_print(tab);
}

static int tokens_usage(void)
{
	fprintf(stderr, "hivectl tokens: list | create <name> <viewer|operator|admin> | "
		"revoke <name>\n");
	return HC_USAGE;
}

int hc_cmd_tokens(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt none[] = { { NULL, false, NULL } };
	const char *pos[3];
	json_t *j = NULL, *body;
	char path[256], *name;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, none, pos, 3, &npos)) != HC_OK)
		return rc;
	if (npos == 1 && strcmp(pos[0], "list") == 0) {
		if ((rc = hc_call(c, "GET", "/api/tokens", NULL, &j)) != HC_OK)
			return rc;
		if (c->json)
			hc_print_body(c);
		else
			show_tokens(j);
		json_decref(j);
		return HC_OK;
	}
	if (npos == 3 && strcmp(pos[0], "create") == 0) {
		body = json_pack("{s:s, s:s}", "name", pos[1], "role", pos[2]);
		rc = hc_call(c, "POST", "/api/tokens", body, &j);
		json_decref(body);
		if (rc != HC_OK)
			return rc;
		if (c->json) {
			hc_print_body(c);
		} else {
			printf("%s\n", hc_str(j, "token"));
			fprintf(stderr, "hivectl: token '%s' (%s) created: it is shown this once "
				"only\n", hc_str(j, "name"), hc_str(j, "role"));
		}
		json_decref(j);
		return HC_OK;
	}
	if (npos == 2 && strcmp(pos[0], "revoke") == 0) {
		if (!(name = hc_escape(c, pos[1])))
			return HC_UNREACHABLE;
		snprintf(path, sizeof(path), "/api/tokens/%.200s", name);
		free(name);
		if ((rc = hc_call(c, "DELETE", path, NULL, &j)) != HC_OK)
			return rc;
		if (c->json)
			hc_print_body(c);
		else
			printf("token '%s' revoked\n", hc_str(json_object_get(j, "token"), "name"));
		json_decref(j);
		return HC_OK;
	}
	return tokens_usage();
}

int hc_cmd_whoami(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt none[] = { { NULL, false, NULL } };
	json_t *j = NULL;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, none, NULL, 0, &npos)) != HC_OK)
		return rc;
	if ((rc = hc_call(c, "GET", "/api/whoami", NULL, &j)) != HC_OK)
		return rc;
	if (c->json)
		hc_print_body(c);
	else
		printf("%s (%s)\n", hc_str(j, "name"), hc_str(j, "role"));
	json_decref(j);
	return HC_OK;
}
