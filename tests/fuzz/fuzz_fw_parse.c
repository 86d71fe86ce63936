/* fuzz_fw_parse — libFuzzer target for every firmware response parser.
 *
 * The first byte picks the parser, the rest is the body. Besides the
 * sanitizers, each run checks the parsers' promises: a known error kind, a
 * message that starts with the endpoint, NUL-terminated strings, counts
 * within the fixed arrays, and preset figures that are never 0. And it is a
 * differential test of fw_parse.c's own JSON reader: a body is bad_json
 * exactly when jansson's json_loadb(body, len, 0) refuses it (bodies with
 * NUL bytes aside: jansson skips them, the reader refuses them).
 * Seeds: tests/fuzz/seeds/fuzz_fw_parse/ (selector byte + a real body).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hive/fw.h"
#include "hive/mac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static struct hive_fw_result res;

static void check_str(const char *s, size_t cap)
{
	CHECK(memchr(s, '\0', cap) != NULL);
}

static void check_ok(enum hive_fw_call call)
{
	switch (call) {
	case HIVE_FW_INFO:
		check_str(res.info.mac, sizeof(res.info.mac));
		CHECK(strlen(res.info.mac) == 17);
		check_str(res.info.hostname, sizeof(res.info.hostname));
		check_str(res.info.miner, sizeof(res.info.miner));
		break;
	case HIVE_FW_MODEL:
		CHECK(res.model.num_chains >= 1);
		CHECK(res.model.topo_rows * res.model.topo_cols <= HIVE_FW_MAX_TOPO);
		break;
	case HIVE_FW_SUMMARY:
		CHECK(res.summary.nchains >= 0 && res.summary.nchains <= HIVE_FW_MAX_CHAINS);
		CHECK(res.summary.nfans >= 0 && res.summary.nfans <= HIVE_FW_MAX_FANS);
		CHECK(res.summary.power_consumption >= 0);
		check_str(res.summary.pools.url, sizeof(res.summary.pools.url));
		break;
	case HIVE_FW_PERF_SUMMARY:
		CHECK(res.perf.preset_watts != 0 && res.perf.preset_th != 0);
		check_str(res.perf.preset_pretty, sizeof(res.perf.preset_pretty));
		break;
	case HIVE_FW_CHAINS:
	case HIVE_FW_BOARDS:
		CHECK(res.chains.nchains >= 0 && res.chains.nchains <= HIVE_FW_MAX_CHAINS);
		for (int i = 0; i < res.chains.nchains; i++) {
			const struct hive_fw_chain *c = &res.chains.chains[i];

			CHECK(c->nchips >= 0 && c->nchips <= HIVE_FW_MAX_CHIPS);
			for (int k = 0; k < c->nchips; k++)
				CHECK(strchr("rog?", c->chips[k].grade) && c->chips[k].grade);
		}
		break;
	case HIVE_FW_PRESETS:
		CHECK(res.presets.n >= 0 && res.presets.n <= HIVE_FW_MAX_PRESETS);
		for (int i = 0; i < res.presets.n; i++) {
			CHECK(res.presets.p[i].name[0] != '\0');
			CHECK(res.presets.p[i].watts != 0 && res.presets.p[i].th != 0);
		}
		break;
	case HIVE_FW_APIKEYS:
		CHECK(res.apikeys.n >= 0 && res.apikeys.n <= HIVE_FW_MAX_APIKEYS);
		CHECK(res.apikeys.n <= res.apikeys.total);
		break;
	case HIVE_FW_UNLOCK:
		CHECK(res.unlock.token[0] != '\0');
		break;
	case HIVE_FW_REBOOT:
		CHECK(res.reboot.after >= -1);
		break;
	default:
		break;
	}
}

static const enum hive_fw_call sel[] = {
	HIVE_FW_INFO, HIVE_FW_MODEL, HIVE_FW_STATUS, HIVE_FW_SUMMARY, HIVE_FW_PERF_SUMMARY,
	HIVE_FW_CHAINS, HIVE_FW_BOARDS, HIVE_FW_PRESETS, HIVE_FW_APIKEYS, HIVE_FW_UNLOCK,
	HIVE_FW_SET_PRESET, HIVE_FW_REBOOT,
};
#define NSEL (sizeof(sel) / sizeof(sel[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	size_t len;
	unsigned pick;

	if (size < 1)
		return 0;
	pick = data[0] % (NSEL + 2);
	/* the body is copied so that reads past len are caught by ASan */
	len = size - 1;
	body = malloc(len ? len : 1);
	if (!body)
		return 0;
	memcpy((char *)body, data + 1, len);

	if (pick < NSEL) {
		enum hive_fw_call call = sel[pick];
		int rc;

		memset(&res, 0, offsetof(struct hive_fw_result, info));
		res.call = call;
		rc = hive_fw_parse(call, body, len, &res);
		CHECK((rc == 0) == (res.err.kind == HIVE_FW_OK));
		{
			json_t *j = json_loadb(body, len, 0, NULL);
			bool blank = true;

			for (size_t i = 0; i < len; i++)
				if (!strchr(" \t\r\n\f\v", body[i]) || !body[i])
					blank = false;
			/* empty settings and reboot answers are fine without JSON;
			 * jansson silently skips NUL bytes, we refuse them */
			if (!(blank && (call == HIVE_FW_SET_PRESET || call == HIVE_FW_REBOOT)) &&
			    !memchr(body, '\0', len))
				CHECK((j != NULL) == (res.err.kind != HIVE_FW_ERR_BAD_JSON));
			json_decref(j);
		}
		if (rc == 0) {
			check_ok(call);
		} else {
			CHECK(res.err.kind > HIVE_FW_OK && res.err.kind < HIVE_FW_ERR_KINDS);
			check_str(res.err.msg, sizeof(res.err.msg));
			CHECK(strncmp(res.err.msg, res.err.endpoint, strlen(res.err.endpoint)) == 0);
		}
	} else {
		/* NUL-terminated copies: preset name '\0' pretty, or a MAC */
		char *s = malloc(len + 2);

		if (s) {
			const char *pretty;
			int w;
			double th;
			char mac[18];

			memcpy(s, body, len);
			s[len] = s[len + 1] = '\0';
			pretty = s + strlen(s) + 1;
			if (pretty > s + len)
				pretty = s + len;
			if (pick == NSEL) {
				int rc = hive_fw_preset_parse(s, pretty, &w, &th);

				CHECK(w == -1 || (w >= 1 && w <= 100000));
				CHECK(th == -1 || (th > 0 && th <= 100000));
				CHECK(rc == 0 ? (w > 0 && th > 0) : (w < 0 || th < 0));
			} else if (hive_mac_normalise(s, mac) == 0) {
				char again[18];

				CHECK(strlen(mac) == 17);
				CHECK(hive_mac_normalise(mac, again) == 0 && strcmp(mac, again) == 0);
			}
			free(s);
		}
	}
	free((char *)body);
	return 0;
}
