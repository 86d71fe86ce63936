/* hub — the apid.h calls that are plain views of the hub. The hub itself
 * (struct apid, core.h) is filled by apid.c's main. */
#include <stdio.h>

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
	return apid_writer_patch_model(a->writer, alias, max_preset, actor, http_status, err,
				       errlen);
}
