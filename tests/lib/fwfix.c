/* fwfix — see fwfix.h. */
#include "fwfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

struct hive_fw_result *tl_fw_fixture(enum hive_fw_call call, const char *name)
{
	struct hive_fw_result *r = calloc(1, sizeof(*r));
	char path[256], *body;
	int rc;

	if (!r) {
		fprintf(stderr, "tl_fw_fixture: %s: out of memory\n", name);
		return NULL;
	}
	snprintf(path, sizeof(path), TL_FW_FIXTURES "%s", name);
	if (!(body = tl_read_file(path))) {
		fprintf(stderr, "tl_fw_fixture: cannot read %s (tests run from the top of the tree)\n",
			path);
		free(r);
		return NULL;
	}
	r->call = call;
	rc = hive_fw_parse(call, body, strlen(body), r);
	free(body);
	if (rc != 0 || r->err.kind != HIVE_FW_OK) {
		fprintf(stderr, "tl_fw_fixture: %s: %s (%s)\n", name, r->err.msg,
			hive_fw_err_name(r->err.kind));
		free(r);
		return NULL;
	}
	return r;
}

json_t *tl_msg_roundtrip(enum hive_msg_kind kind, const void *body, void *back)
{
	const char *topic = hive_msg_topic(kind)->topic;
	json_t *j = hive_msg_encode(kind, body);
	char err[256];

	if (!j) {
		fprintf(stderr, "tl_msg_roundtrip: %s: encoding gave nothing\n", topic);
		return NULL;
	}
	if (hive_msg_decode(kind, j, back, err, sizeof(err)) != 0) {
		fprintf(stderr, "tl_msg_roundtrip: %s: apid would refuse it: %s\n", topic, err);
		json_decref(j);
		return NULL;
	}
	return j;
}
