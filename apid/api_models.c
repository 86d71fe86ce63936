/* api_models — /api/models: each model's catalogue (presets in the order
 * the firmware listed them), its max preset, and how many miners it has;
 * PATCH sets or clears the max preset through the writer. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "apid.h"
#include "hive/log.h"

#define MODEL_COLS \
	"alias, name, fw_version, num_chains, chips_per_chain, topology, max_preset, updated_ms"
#define PRESET_COLS "model, name, pretty, watts, th, ord, tuned"
#define PRESET_ORDER " ORDER BY model, ord, name"
/* Per model: miners, online, managed, managed miners above max_preset by
 * their latest status (stock "disabled" counts as above), conflicts. */
#define COUNT_SQL \
	"SELECT m.model, count(*), coalesce(sum(m.online), 0), coalesce(sum(m.managed), 0)," \
	" coalesce(sum(m.managed AND m.online AND lim.watts IS NOT NULL AND s.preset IS NOT NULL" \
	"  AND (s.preset = 'disabled' OR cur.watts > lim.watts)), 0)," \
	" coalesce(sum(m.conflict IS NOT NULL), 0)" \
	" FROM miners m LEFT JOIN statuses s ON s.id = m.last_status_id" \
	" LEFT JOIN models mo ON mo.alias = m.model" \
	" LEFT JOIN model_presets lim ON lim.model = m.model AND lim.name = mo.max_preset" \
	" LEFT JOIN model_presets cur ON cur.model = m.model AND cur.name = s.preset"

static json_t *model_json(sqlite3_stmt *st)
{
	static const char *const cols[] = { "alias", "name", "fw_version", "num_chains",
					    "chips_per_chain", NULL };
	json_t *m = json_object();

	if (!m)
		return NULL;
	api_set_cols(m, st, 0, cols);
	api_set(m, "topology", api_col_json(st, 5));
	api_set(m, "max_preset", api_col(st, 6));
	api_set(m, "updated", api_col(st, 7));
	api_set(m, "presets", json_array());
	api_set(m, "miners", json_integer(0));
	api_set(m, "miners_online", json_integer(0));
	api_set(m, "managed", json_integer(0));
	api_set(m, "managed_above_limit", json_integer(0));
	api_set(m, "conflicts", json_integer(0));
	return m;
}

/* A row of model_presets (PRESET_COLS) into its model m. 0 / -1. */
static int add_preset(json_t *m, sqlite3_stmt *st)
{
	static const char *const cols[] = { "name", "pretty", "watts", "th", "order", NULL };
	json_t *p = json_object();

	if (!p)
		return -1;
	api_set_cols(p, st, 1, cols);
	api_set(p, "tuned", api_col_bool(st, 6));
	json_array_append_new(json_object_get(m, "presets"), p);
	return 0;
}

/* A row of COUNT_SQL into its model m. 0. */
static int add_counts(json_t *m, sqlite3_stmt *st)
{
	static const char *const cols[] = { "miners", "miners_online", "managed",
					    "managed_above_limit", "conflicts", NULL };

	api_set_cols(m, st, 1, cols);
	return 0;
}

/* Runs all_sql, or one_sql with alias as its parameter, and hands each row
 * whose first column is a model of byalias to add. 0 / -1 after an error
 * answer (a failed add counts as a failed step). */
static int models_add(struct api_req *r, json_t *byalias, const char *alias,
		      const char *all_sql, const char *one_sql,
		      int (*add)(json_t *m, sqlite3_stmt *st))
{
	sqlite3_stmt *st = api_stmt(r, alias ? one_sql : all_sql);
	int rc;

	if (!st)
		return -1;
	if (alias)
		sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *m = json_object_get(byalias, (const char *)sqlite3_column_text(st, 0));

		if (m && add(m, st) < 0)
			break;
	}
	if (rc != SQLITE_DONE) {
		api_db_fail(r, st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

/* Fills the models of `byalias` (alias → model object) with their presets
 * and miner counts; `alias` NULL = all. 0 / -1 after an error answer. */
static int models_fill(struct api_req *r, json_t *byalias, const char *alias)
{
	static const char all_presets[] = "SELECT " PRESET_COLS " FROM model_presets" PRESET_ORDER;
	static const char one_presets[] =
		"SELECT " PRESET_COLS " FROM model_presets WHERE model = ?" PRESET_ORDER;
	static const char all_counts[] = COUNT_SQL " WHERE m.model IS NOT NULL GROUP BY m.model";
	static const char one_counts[] = COUNT_SQL " WHERE m.model = ? GROUP BY m.model";

	if (models_add(r, byalias, alias, all_presets, one_presets, add_preset) < 0 ||
	    models_add(r, byalias, alias, all_counts, one_counts, add_counts) < 0)
		return -1;
	return 0;
}

int api_models_list(struct api_req *r)
{
	sqlite3_stmt *st;
	json_t *list, *byalias;
	int rc;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	st = api_stmt(r, "SELECT " MODEL_COLS " FROM models ORDER BY alias");
	if (!st)
		return r->status;
	list = json_array();
	byalias = json_object();
	if (!list || !byalias) {
		json_decref(list);
		json_decref(byalias);
		return api_error(r, 500, "out of memory");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *m = model_json(st);
		if (!m)
			break;
		json_object_set(byalias, (const char *)sqlite3_column_text(st, 0), m);
		json_array_append_new(list, m);
	}
	if (rc != SQLITE_DONE) {
		json_decref(list);
		json_decref(byalias);
		return api_db_fail(r, st);
	}
	sqlite3_reset(st);
	rc = models_fill(r, byalias, NULL);
	json_decref(byalias);
	if (rc < 0) {
		json_decref(list);
		return r->status;
	}
	return api_json(r, 200, json_pack("{s:o}", "models", list));
}

/* The model as JSON (new reference); NULL after an answer (404 included). */
static json_t *model_load(struct api_req *r, const char *alias)
{
	sqlite3_stmt *st = api_stmt(r, "SELECT " MODEL_COLS " FROM models WHERE alias = ?");
	json_t *m, *byalias;
	int rc;

	if (!st)
		return NULL;
	sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		api_error(r, 404, "no model %s", alias);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		api_db_fail(r, st);
		return NULL;
	}
	m = model_json(st);
	sqlite3_reset(st);
	byalias = json_object();
	if (!m || !byalias || json_object_set(byalias, alias, m) < 0) {
		json_decref(m);
		json_decref(byalias);
		api_error(r, 500, "out of memory");
		return NULL;
	}
	rc = models_fill(r, byalias, alias);
	json_decref(byalias);
	if (rc < 0) {
		json_decref(m);
		return NULL;
	}
	return m;
}

int api_model_get(struct api_req *r, const char *alias)
{
	json_t *m;

	if (api_params_allow(r, (const char *const[]){ NULL }) < 0)
		return r->status;
	m = model_load(r, alias);
	return m ? api_json(r, 200, m) : r->status;
}

int api_model_patch(struct api_req *r, const char *alias)
{
	static const char *const allowed[] = { "max_preset", NULL };
	json_t *body = api_body_object(r), *v, *m = NULL, *p;
	const char *preset = NULL;
	char err[256] = "", names[512] = "";
	size_t i, n = 0;
	bool known = false;
	int status = 0;

	if (!body)
		return r->status;
	if (api_params_allow(r, (const char *const[]){ NULL }) < 0 ||
	    api_body_allow(r, body, allowed) < 0)
		goto out;
	v = json_object_get(body, "max_preset");
	if (!v) {
		api_error(r, 400, "max_preset: missing (a preset name, or null for no limit)");
		goto out;
	}
	if (!json_is_null(v) && !json_is_string(v)) {
		api_error(r, 400, "max_preset: expected a preset name or null");
		goto out;
	}
	preset = json_is_string(v) ? json_string_value(v) : NULL;

	/* Checked here for a useful message; the writer checks again. */
	m = model_load(r, alias);
	if (!m)
		goto out;
	json_array_foreach(json_object_get(m, "presets"), i, p) {
		const char *name = json_string_value(json_object_get(p, "name"));
		int w;
		if (!name)
			continue;
		if (preset && strcmp(name, preset) == 0)
			known = true;
		w = snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", name);
		if (w > 0 && (size_t)w < sizeof(names) - n)
			n += (size_t)w;
	}
	json_decref(m);
	if (preset && !known) {
		api_error(r, 422, "max_preset: '%.64s' is not a preset of model %s (presets: %s)",
			  preset, alias, n ? names : "none known yet");
		goto out;
	}
	if (apid_patch_model(r->apid, alias, preset, r->actor, &status, err, sizeof(err)) < 0) {
		api_error(r, status >= 400 && status < 600 ? status : 500, "%s",
			  err[0] ? err : "change refused");
		goto out;
	}
	log_info("api model patched model=%s actor=%s max_preset=%s", alias, r->actor,
		 preset ? preset : "none");
	json_decref(body);
	return api_model_get(r, alias);
out:
	json_decref(body);
	return r->status;
}
