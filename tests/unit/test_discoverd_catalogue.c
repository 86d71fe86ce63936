/* test_discoverd_catalogue — discoverd's hive.model.catalogue, built from
 * canned /model and /autotune/presets answers (tests/unit/fixtures/fw/):
 * it decodes with the table apid uses, presets keep the miner's order,
 * unknown watts are left out, and a model without a chip map sends none. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "hive/fw.h"
#include "hive/msg.h"
#include "../../discoverd/discoverd.h"
#include "../lib/fwfix.h"

/* discoverd.c (main) is not linked: what the other files call there. */
int disc_publish(struct discoverd *dd, enum hive_msg_kind kind, const void *body)
{
	(void)dd;
	(void)kind;
	(void)body;
	return -1;
}

void disc_miner_error(struct discoverd *dd, const struct miner *m, const char *ip,
		      const char *op, const struct hive_fw_err *err)
{
	(void)dd;
	(void)m;
	(void)ip;
	(void)op;
	(void)err;
}

void disc_sweep_finished(struct discoverd *dd, int64_t started_mono)
{
	(void)dd;
	(void)started_mono;
}

/* Fills, encodes and decodes back into out; fails when the table refuses. */
static json_t *roundtrip(struct disc_catalogue_body *b, const struct hive_fw_model *md,
			 const struct hive_fw_presets *ps, struct hive_msg_model_catalogue *out)
{
	json_t *j;

	assert_int_equal(disc_catalogue_body_fill(b, "s19", "1.2.6", md, ps), 0);
	j = tl_msg_roundtrip(HIVE_MSG_MODEL_CATALOGUE, &b->c, out);
	assert_non_null(j);
	return j;
}

static void catalogue_body(void **state)
{
	struct hive_fw_result *model = tl_fw_fixture(HIVE_FW_MODEL, "model_s19.json");
	struct hive_fw_result *presets = tl_fw_fixture(HIVE_FW_PRESETS, "presets_s19.json");
	const struct hive_fw_presets *ps;
	struct disc_catalogue_body b;
	struct hive_msg_model_catalogue back;
	json_t *j;

	(void)state;
	assert_non_null(model);
	assert_non_null(presets);
	ps = &presets->presets;
	j = roundtrip(&b, &model->model, ps, &back);
	assert_string_equal(back.model, "s19");
	assert_string_equal(back.fw_version, "1.2.6");
	assert_int_equal(back.n_presets, (size_t)ps->n);
	for (int i = 0; i < ps->n; i++) {
		assert_string_equal(back.presets[i].name, ps->p[i].name);
		assert_int_equal(back.presets[i].order, i);
		if (ps->p[i].watts > 0)
			assert_true(back.presets[i].watts == ps->p[i].watts);
		else
			assert_true(isnan(back.presets[i].watts));
	}
	assert_int_equal(back.topology.rows, model->model.topo_rows);
	assert_int_equal(back.topology.cols, model->model.topo_cols);
	assert_int_equal(back.overclock.max_freq, model->model.overclock.max_freq);
	hive_msg_free(HIVE_MSG_MODEL_CATALOGUE, &back);
	json_decref(j);
	json_decref(b.chips);

	/* a /model without a chip map */
	model->model.topo_rows = model->model.topo_cols = 0;
	j = roundtrip(&b, &model->model, ps, &back);
	assert_null(json_object_get(j, "topology"));
	assert_null(b.chips);
	hive_msg_free(HIVE_MSG_MODEL_CATALOGUE, &back);
	json_decref(j);
	free(model);
	free(presets);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(catalogue_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
