/* alerts — alerts, their acknowledgement and silences (docs/alerts.md):
 * alerts, ack, silence, silences, unsilence. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hivectl.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* A positive whole id ("12"); -1 when it is not one. */
static long long parse_id(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return *s && !*end && !errno && v > 0 ? v : -1;
}

/* "90", "90s", "30m", "2h", "1d", "1w": seconds, or -1. */
static long long parse_for(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno || v <= 0)
		return -1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': v *= 60; break;
	case 'h': v *= 3600; break;
	case 'd': v *= 86400; break;
	case 'w': v *= 7 * 86400; break;
	default: return -1;
	}
	return *end && end[1] ? -1 : v;
}

/* GET or POST/DELETE path; prints the answer (--json) or hands it to show. */
static int call_show(struct hc *c, const char *method, const char *path, const json_t *body,
		     void (*show)(const json_t *))
{
	json_t *j;
	int rc = hc_call(c, method, path, body, &j);

	if (rc != HC_OK)
		return rc;
	if (c->json)
		hc_print_body(c);
	else
		show(j);
	json_decref(j);
	return HC_OK;
}

/* ------------------------------------------------------------ alerts */

static void show_alerts(const json_t *j)
{
	static const char *const heads[] = { "ID", "STATE", "RULE", "SUBJECT", "STARTED", "LASTED",
					     "ACK", "SUMMARY", NULL };
	const json_t *list = json_object_get(j, "alerts"), *a, *by = json_object_get(j, "firing_by_rule");
	struct hc_table *t = hc_table_new(heads, "rllllrll");
	const char *rule;
	json_t *n;
	char b1[48], b2[48], rules[512] = "";
	size_t i, at = 0;

	if (!t) {
		fprintf(stderr, "hivectl: out of memory\n");
		return;
	}
	json_array_foreach(list, i, a) {
		const json_t *st = json_object_get(a, "started"), *en = json_object_get(a, "ended");
		bool silenced = json_is_true(json_object_get(a, "silenced"));

		hc_table_cell(t, "%lld", (long long)json_integer_value(json_object_get(a, "id")));
		hc_table_cell(t, "%s%s", hc_str(a, "state"), silenced ? " (silenced)" : "");
		hc_table_cell(t, "%s", hc_str(a, "rule"));
		hc_table_cell(t, "%s", json_is_string(json_object_get(a, "mac")) ? hc_str(a, "mac")
										  : hc_str(a, "subject"));
		hc_table_cell(t, "%s", hc_age(st, b1, sizeof(b1)));
		hc_table_cell(t, "%s", json_is_number(st) ? hc_duration(((json_is_number(en)
			? json_number_value(en) : now_ms()) - json_number_value(st)) / 1000.0, b2,
			sizeof(b2)) : "-");
		hc_table_cell(t, "%s", json_is_string(json_object_get(a, "acked_by"))
			      ? hc_str(a, "acked_by") : "-");
		hc_table_cell(t, "%s", hc_str(a, "summary"));
	}
	hc_table_print(t);
	json_object_foreach((json_t *)by, rule, n)
		if (json_integer_value(n) > 0 && at < sizeof(rules))
			at += (size_t)snprintf(rules + at, sizeof(rules) - at, "%s%s %lld",
					       at ? ", " : "", rule, (long long)json_integer_value(n));
	printf("firing: %lld%s%s%s\n", (long long)json_integer_value(json_object_get(j, "firing")),
	       at ? " (" : "", rules, at ? ")" : "");
	if (json_is_integer(json_object_get(j, "next_before")))
		printf("older: --before %lld\n",
		       (long long)json_integer_value(json_object_get(j, "next_before")));
}

int hc_cmd_alerts(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { "state", false, NULL }, { "rule", false, NULL },
				 { "miner", false, NULL }, { "limit", false, NULL },
				 { "before", false, NULL }, { NULL, false, NULL } };
	char *q = NULL, *path = NULL;
	json_t *query = json_object();
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK) {
		json_decref(query);
		return rc;
	}
	for (const struct hc_opt *o = opts; o->name; o++)
		if (o->value)
			json_object_set_new(query, o->name, json_string(o->value));
	rc = HC_UNREACHABLE;
	if (!(q = hc_query(c, query)) ||
	    asprintf(&path, "/api/alerts%s%s", *q ? "?" : "", q) < 0) {
		path = NULL;
		fprintf(stderr, "hivectl: out of memory\n");
	} else {
		rc = call_show(c, "GET", path, NULL, show_alerts);
	}
	free(q);
	free(path);
	json_decref(query);
	return rc;
}

/* ------------------------------------------------------------ ack */

static void show_acked(const json_t *j)
{
	const json_t *a = json_object_get(j, "alert");

	printf("alert %lld (%s, %s) acknowledged by %s\n",
	       (long long)json_integer_value(json_object_get(a, "id")), hc_str(a, "rule"),
	       json_is_string(json_object_get(a, "mac")) ? hc_str(a, "mac") : hc_str(a, "subject"),
	       hc_str(a, "acked_by"));
}

int hc_cmd_ack(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { "comment", false, NULL }, { NULL, false, NULL } };
	const char *pos[1], *comment;
	char path[64];
	json_t *body = NULL;
	long long id;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, pos, 1, &npos)) != HC_OK)
		return rc;
	if (npos != 1 || (id = parse_id(pos[0])) < 0) {
		fprintf(stderr, "hivectl ack: give one alert id (hivectl alerts shows them)\n");
		return HC_USAGE;
	}
	if ((comment = hc_opt(opts, "comment")->value))
		body = json_pack("{s:s}", "comment", comment);
	snprintf(path, sizeof(path), "/api/alerts/%lld/ack", id);
	rc = call_show(c, "POST", path, body, show_acked);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------ silences */

static void silence_line(const json_t *s, const char *what)
{
	char b[48];
	double ends = json_number_value(json_object_get(s, "ends"));

	printf("silence %lld %s: rule %s, miner %s, for %s more%s%s\n",
	       (long long)json_integer_value(json_object_get(s, "id")), what,
	       json_is_string(json_object_get(s, "rule")) ? hc_str(s, "rule") : "any",
	       json_is_string(json_object_get(s, "miner")) ? hc_str(s, "miner") : "any",
	       hc_duration(ends > now_ms() ? (ends - now_ms()) / 1000.0 : 0, b, sizeof(b)),
	       json_is_string(json_object_get(s, "comment")) ? ": " : "",
	       json_is_string(json_object_get(s, "comment")) ? hc_str(s, "comment") : "");
}

static void show_created(const json_t *j)
{
	silence_line(json_object_get(j, "silence"), "created");
}

static void show_deleted(const json_t *j)
{
	silence_line(json_object_get(j, "silence"), "ended");
}

int hc_cmd_silence(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { "rule", false, NULL }, { "miner", false, NULL },
				 { "for", false, NULL }, { "comment", false, NULL },
				 { NULL, false, NULL } };
	const char *v;
	json_t *body;
	long long secs;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK)
		return rc;
	if (!hc_opt(opts, "rule")->value && !hc_opt(opts, "miner")->value) {
		fprintf(stderr, "hivectl silence: give --rule, --miner or both\n");
		return HC_USAGE;
	}
	if (!(v = hc_opt(opts, "for")->value) || (secs = parse_for(v)) < 0) {
		fprintf(stderr, "hivectl silence: --for: how long, e.g. 90s, 30m, 2h, 1d%s%s%s\n",
			v ? " (not '" : "", v ? v : "", v ? "')" : "");
		return HC_USAGE;
	}
	body = json_pack("{s:I}", "seconds", (json_int_t)secs);
	for (const char *const *k = (const char *const[]){ "rule", "miner", "comment", NULL }; *k; k++)
		if ((v = hc_opt(opts, *k)->value))
			json_object_set_new(body, *k, json_string(v));
	rc = call_show(c, "POST", "/api/silences", body, show_created);
	json_decref(body);
	return rc;
}

static void show_silences(const json_t *j)
{
	static const char *const heads[] = { "ID", "RULE", "MINER", "ENDS IN", "BY", "COMMENT", NULL };
	const json_t *list = json_object_get(j, "silences"), *s;
	struct hc_table *t = hc_table_new(heads, "rlllll");
	char b[48];
	size_t i;

	if (!t) {
		fprintf(stderr, "hivectl: out of memory\n");
		return;
	}
	json_array_foreach(list, i, s) {
		double ends = json_number_value(json_object_get(s, "ends"));

		hc_table_cell(t, "%lld", (long long)json_integer_value(json_object_get(s, "id")));
		hc_table_cell(t, "%s", json_is_string(json_object_get(s, "rule")) ? hc_str(s, "rule") : "any");
		hc_table_cell(t, "%s", json_is_string(json_object_get(s, "miner")) ? hc_str(s, "miner") : "any");
		hc_table_cell(t, "%s", ends > now_ms() ? hc_duration((ends - now_ms()) / 1000.0, b, sizeof(b))
						       : "ended");
		hc_table_cell(t, "%s", hc_str(s, "created_by"));
		hc_table_cell(t, "%s", json_is_string(json_object_get(s, "comment")) ? hc_str(s, "comment") : "");
	}
	hc_table_print(t);
}

int hc_cmd_silences(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt opts[] = { { "all", true, NULL }, { NULL, false, NULL } };
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, opts, NULL, 0, &npos)) != HC_OK)
		return rc;
	return call_show(c, "GET", hc_opt(opts, "all")->value ? "/api/silences?all=true"
							      : "/api/silences", NULL, show_silences);
}

int hc_cmd_unsilence(struct hc *c, const char *cmd, int argc, char **argv)
{
	struct hc_opt none[] = { { NULL, false, NULL } };
	const char *pos[1];
	char path[64];
	long long id;
	int rc, npos;

	if ((rc = hc_args(c, cmd, argc, argv, none, pos, 1, &npos)) != HC_OK)
		return rc;
	if (npos != 1 || (id = parse_id(pos[0])) < 0) {
		fprintf(stderr, "hivectl unsilence: give one silence id (hivectl silences shows them)\n");
		return HC_USAGE;
	}
	snprintf(path, sizeof(path), "/api/silences/%lld", id);
	return call_show(c, "DELETE", path, NULL, show_deleted);
}
