/* hub — apid.h: the hub as the HTTP handlers see it. The hub itself
 * (struct apid, core.h) is filled by apid.c's main. */
#include "apid.h"

#include <stdio.h>

#include "actions.h"
#include "core.h"
#include "writer.h"

const struct hive_cfg *apid_cfg(struct apid *a)
{
	return &a->d.cfg;
}

const char *apid_db_path(struct apid *a)
{
	return a->db_path;
}

int apid_patch_miner(struct apid *a, const char *mac, int managed, const char *unlock_pass,
		     const char *actor, int *http_status, char *err, size_t errlen)
{
	if (!a->writer) {
		*http_status = 503;
		snprintf(err, errlen, "database not open");
		return -1;
	}
	return apid_writer_patch_miner(a->writer, mac, managed, unlock_pass, actor, http_status,
				       err, errlen);
}

int apid_patch_model(struct apid *a, const char *alias, const char *max_preset,
		     const char *actor, int *http_status, char *err, size_t errlen)
{
	if (!a->writer) {
		*http_status = 503;
		snprintf(err, errlen, "database not open");
		return -1;
	}
	if (apid_writer_patch_model(a->writer, alias, max_preset, actor, http_status, err,
				    errlen) < 0)
		return -1;
	/* A lower limit acts on all the model's managed miners at once. */
	if (a->actions && max_preset)
		apid_actions_model_changed(a->actions, alias);
	return 0;
}

int apid_request_actions(struct apid *a, const struct apid_action_request *req, size_t n,
			 long long *ids, int *http_status, char *err, size_t errlen)
{
	if (!a->writer || !a->actions) {
		*http_status = 503;
		snprintf(err, errlen, "database not open");
		return -1;
	}
	return apid_actions_request(a->actions, req, n, ids, http_status, err, errlen);
}
