/* catalogue — a model's topology (/model) and preset ladder
 * (/autotune/presets, with the expected watts and TH parsed from each
 * preset's name and pretty string), published once per model and firmware
 * version by this process.
 *
 * One miner of a model fetches it while the others wait their turn: the
 * first host to claim a (model, firmware) pair owns the fetch; a failed
 * fetch gives the claim back so the next miner of that model tries.
 */
#include "discoverd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/log.h"
#include "hive/msg.h"

struct cat_entry {
	struct cat_entry *next;
	char model[HIVE_FW_NAME_LEN];
	char fw_version[HIVE_FW_NAME_LEN];
	bool published;
	bool fetching;
};

struct disc_catalogue {
	struct cat_entry *list;
};

struct disc_catalogue *disc_catalogue_new(void)
{
	return calloc(1, sizeof(struct disc_catalogue));
}

void disc_catalogue_free(struct disc_catalogue *cat)
{
	struct cat_entry *e;

	if (!cat)
		return;
	while ((e = cat->list)) {
		cat->list = e->next;
		free(e);
	}
	free(cat);
}

static struct cat_entry *find(struct disc_catalogue *cat, const char *model, const char *fw,
			      bool create)
{
	struct cat_entry *e;

	for (e = cat->list; e; e = e->next)
		if (strcmp(e->model, model) == 0 && strcmp(e->fw_version, fw) == 0)
			return e;
	if (!create || !(e = calloc(1, sizeof(*e))))
		return NULL;
	snprintf(e->model, sizeof(e->model), "%s", model);
	snprintf(e->fw_version, sizeof(e->fw_version), "%s", fw);
	e->next = cat->list;
	cat->list = e;
	return e;
}

bool disc_catalogue_claim(struct disc_catalogue *cat, const char *model, const char *fw_version)
{
	struct cat_entry *e;

	if (!model[0] || !(e = find(cat, model, fw_version, true)) || e->published || e->fetching)
		return false;
	e->fetching = true;
	return true;
}

bool disc_catalogue_published(struct disc_catalogue *cat, const char *model,
			      const char *fw_version)
{
	struct cat_entry *e;

	if (!model[0])
		return true;      /* nothing to fetch for a miner without a model */
	e = find(cat, model, fw_version, false);
	return e && e->published;
}

void disc_catalogue_release(struct disc_catalogue *cat, const char *model, const char *fw_version)
{
	struct cat_entry *e = find(cat, model, fw_version, false);

	if (e)
		e->fetching = false;
}

static void published(struct disc_catalogue *cat, const char *model, const char *fw_version)
{
	struct cat_entry *e = find(cat, model, fw_version, false);

	if (e) {
		e->fetching = false;
		e->published = true;
	}
}

/* ---------------------------------------------------------------- body */

/* rows × cols chip ids; NULL when out of memory. */
static json_t *topology_chips(const struct hive_fw_model *md)
{
	json_t *rows, *row;

	if (!(rows = json_array()))
		return NULL;
	for (int r = 0; r < md->topo_rows; r++) {
		if (!(row = json_array()) || json_array_append_new(rows, row))
			goto fail;
		for (int c = 0; c < md->topo_cols; c++)
			if (json_array_append_new(row,
						  json_integer(md->topo_chips[r * md->topo_cols + c])))
				goto fail;
	}
	return rows;
fail:
	json_decref(rows);
	return NULL;
}

int disc_catalogue_body_fill(struct disc_catalogue_body *b, const char *model,
			     const char *fw_version, const struct hive_fw_model *md,
			     const struct hive_fw_presets *ps)
{
	struct hive_msg_model_catalogue *c = &b->c;
	int n = ps->n < HIVE_FW_MAX_PRESETS ? ps->n : HIVE_FW_MAX_PRESETS;

	hive_msg_init(HIVE_MSG_MODEL_CATALOGUE, c);
	b->chips = NULL;
	c->model = model;
	c->full_name = md->full_name;
	c->series = md->series;
	c->fw_version = fw_version;
	c->num_chains = md->num_chains;
	c->chips_per_chain = md->chips_per_chain;
	c->chips_per_domain = md->chips_per_domain;
	if (md->topo_rows > 0 && md->topo_cols > 0 &&
	    md->topo_rows * md->topo_cols <= HIVE_FW_MAX_TOPO) {
		if (!(b->chips = topology_chips(md)))
			return -1;
		c->topology.rows = md->topo_rows;
		c->topology.cols = md->topo_cols;
		c->topology.chips = b->chips;
	}
	for (int i = 0; i < n; i++) {
		const struct hive_fw_preset *x = &ps->p[i];
		struct hive_msg_preset *p = &b->presets[i];

		p->name = x->name;
		p->pretty = x->pretty;
		p->watts = x->watts > 0 ? x->watts : NAN;
		p->th = x->th > 0 ? x->th : NAN;
		p->order = i;
		p->tuned = x->tuned;
		p->modded_psu_required = x->modded_psu_required;
	}
	c->presets = b->presets;
	c->n_presets = n > 0 ? (size_t)n : 0;
	c->overclock.min_freq = md->overclock.min_freq;
	c->overclock.max_freq = md->overclock.max_freq;
	c->overclock.min_voltage = md->overclock.min_voltage;
	c->overclock.max_voltage = md->overclock.max_voltage;
	return 0;
}

/* ---------------------------------------------------------------- fetching */

static void fetch_failed(struct host *h, const struct hive_fw_err *err)
{
	h->dd->c.catalogue_errors++;
	disc_miner_error(h->dd, h->m, h->ip, "discover", err);
	disc_host_end(h);           /* gives the claim back */
}

static void on_model(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;
	struct discoverd *dd = h->dd;
	struct miner *m = h->m;
	struct disc_catalogue_body b;
	int rc;

	if (res->err.kind != HIVE_FW_OK) {
		fetch_failed(h, &res->err);
		return;
	}
	if (disc_catalogue_body_fill(&b, m->model, m->fw_version, &res->model, h->presets) < 0) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(e.msg, sizeof(e.msg), "model: out of memory building the catalogue");
		fetch_failed(h, &e);
		return;
	}
	rc = disc_publish(dd, HIVE_MSG_MODEL_CATALOGUE, &b.c);
	json_decref(b.chips);
	if (rc == 0) {
		dd->c.catalogues++;
		published(dd->catalogue, m->model, m->fw_version);
		h->catalogue = false;
		log_info("model_catalogue model=%s fw=%s presets=%d chains=%d chips=%d", m->model,
			 m->fw_version, h->presets->n, res->model.num_chains,
			 res->model.chips_per_chain);
	}
	disc_host_end(h);
}

static int ask(struct host *h, enum hive_fw_call call, hive_fw_cb *cb)
{
	struct hive_fw_req req;

	memset(&req, 0, sizeof(req));
	req.ip = h->ip;
	req.port = h->dd->d.cfg.network.port;
	req.call = call;
	req.api_key = h->key;
	req.cb = cb;
	req.cb_arg = h;
	return hive_fw_request(h->dd->fw, &req);
}

static void ask_or_fail(struct host *h, enum hive_fw_call call, hive_fw_cb *cb)
{
	if (ask(h, call, cb) < 0) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(e.msg, sizeof(e.msg), "%s: could not queue the request",
			 hive_fw_call_path(call));
		fetch_failed(h, &e);
	}
}

static void on_presets(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;

	if (res->err.kind != HIVE_FW_OK) {
		fetch_failed(h, &res->err);
		return;
	}
	if (!(h->presets = malloc(sizeof(*h->presets)))) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

		snprintf(e.msg, sizeof(e.msg), "autotune/presets: out of memory");
		fetch_failed(h, &e);
		return;
	}
	*h->presets = res->presets;
	ask_or_fail(h, HIVE_FW_MODEL, on_model);
}

void disc_catalogue_fetch(struct host *h)
{
	if (h->presets)
		ask_or_fail(h, HIVE_FW_MODEL, on_model);
	else
		ask_or_fail(h, HIVE_FW_PRESETS, on_presets);
}
