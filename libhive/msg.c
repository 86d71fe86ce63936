/* msg — the field tables of every bus message, and the one codec that
 * reads and writes them (hive/msg.h).
 *
 * A table row says where a field lives in its struct (offsetof), its type,
 * its limits, its unit and what it means; encode, decode, the absent-value
 * initialiser and the documentation all walk the same rows. */
#include "hive/msg.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/cfg.h"
#include "hive/json.h"

#define TEXT_MAX   1024          /* free text: names, versions */
#define NAME_MAX_  64            /* preset, state, kind names */
#define MSG_MAX    65536         /* error messages */
#define CHAINS_MAX 64
#define CHIPS_MAX  4096          /* per chain */
#define PRESETS_MAX 256
#define MACS_MAX   (1 << 20)     /* a sweep's MAC list: the 1 MiB message cap binds first */
#define CHUNKS_MAX 4096          /* parts of one sweep's list (a /8 in 4,096 × 4,096) */
#define FANS_MAX   64
#define COUNTERS_MAX 256

/* ---------------------------------------------------------------- rows */

#define ROW(S, k, t, fl, f, l, h, u, d) \
	{ .key = k, .type = t, .flags = fl, .off = offsetof(S, f), .lo = l, .hi = h, .unit = u, .doc = d }
#define STR(S, k, f, fl, max, d)      ROW(S, k, HIVE_MT_STR, fl, f, 0, max, NULL, d)
#define ENUM(S, k, f, fl, vals, d) \
	{ .key = k, .type = HIVE_MT_STR, .flags = fl, .off = offsetof(S, f), .hi = NAME_MAX_, \
	  .values = vals, .doc = d }
#define MAC(S, k, f, fl, d)           ROW(S, k, HIVE_MT_MAC, fl, f, 0, 0, NULL, d)
#define IPV4(S, k, f, fl, d)          ROW(S, k, HIVE_MT_IPV4, fl, f, 0, 0, NULL, d)
#define CIDR(S, k, f, fl, d)          ROW(S, k, HIVE_MT_CIDR, fl, f, 0, 0, NULL, d)
#define INT(S, k, f, fl, l, h, u, d)  ROW(S, k, HIVE_MT_INT, fl, f, l, h, u, d)
#define NUM(S, k, f, fl, l, h, u, d)  ROW(S, k, HIVE_MT_NUM, fl, f, l, h, u, d)
#define BOOL(S, k, f, fl, d)          ROW(S, k, HIVE_MT_BOOL, fl, f, 0, 0, NULL, d)
#define OBJ(S, k, f, fl, sch, d) \
	{ .key = k, .type = HIVE_MT_OBJ, .flags = fl, .off = offsetof(S, f), .sub = &sch, .doc = d }
#define LIST(S, k, f, n, fl, el, sch, max, u, d) \
	{ .key = k, .type = HIVE_MT_LIST, .flags = fl, .off = offsetof(S, f), \
	  .count_off = offsetof(S, n), .elem = el, .sub = sch, .hi = max, .unit = u, .doc = d }
#define JSON(S, k, f, fl, chk, d) \
	{ .key = k, .type = HIVE_MT_JSON, .flags = fl, .off = offsetof(S, f), .check = chk, .doc = d }
#define SCHEMA(name, S, rows) SCHEMA_CHECKED(name, S, rows, NULL)
#define SCHEMA_CHECKED(name, S, rows, chk) \
	static const struct hive_msg_schema name = { #S, sizeof(S), rows, \
						     sizeof(rows) / sizeof(rows[0]), chk }

/* Generous physical limits: a value outside is a broken sender, not a hot miner. */
#define GHS_MAX 1e9
#define TEMP_LO -100
#define TEMP_HI 1000
#define W_MAX   1e6
#define I_MAX   9e15            /* counters: anything a JSON integer holds exactly */
#define PLANT_W 1e15            /* a plant's power, either sign (hive/plant.c's limit) */

static const char *const ops[] = { "discover", "unlock", "provision", "status", "telemetry",
				   "control", NULL };
static const char *const sources[] = { "chains", "boards", NULL };
static const char *const action_kinds[] = { "set_preset", "restart", "pause", "resume", "reboot",
					    NULL };
static const char *const plant_kinds[] = { "aggregator", "modbus", NULL };
static const char *const plant_tables[] = { "holding", "input", NULL };
static const char *const plant_types[] = { "u16", "s16", "u32", "s32", "float32", NULL };
static const char *const plant_orders[] = { "abcd", "badc", "cdab", "dcba", NULL };
static const char *const plant_errors[] = { "timeout", "refused", "http", "bad_json", "bad_field",
					    "modbus", "internal", NULL };

static int bad(char *err, size_t errlen, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int check_topology_chips(const json_t *v, char *err, size_t errlen);
/* chunk and chunks come together, chunk within chunks, and a list in
 * several chunks names its sweep. */
static int check_sweep(const void *obj, char *err, size_t errlen)
{
	const struct hive_msg_sweep_done *s = obj;

	if (s->chunk == HIVE_MSG_NO_INT && s->chunks == HIVE_MSG_NO_INT)
		return 0;
	if (s->chunks == HIVE_MSG_NO_INT)
		return bad(err, errlen, "chunks", "missing (chunk is set)");
	if (s->chunk == HIVE_MSG_NO_INT)
		return bad(err, errlen, "chunk", "missing (chunks is set)");
	if (s->chunk > s->chunks)
		return bad(err, errlen, "chunk", "%lld is more than chunks (%lld)", s->chunk,
			   s->chunks);
	if (s->chunks > 1 && s->sweep == HIVE_MSG_NO_INT)
		return bad(err, errlen, "sweep", "missing (the list comes in %lld chunks)",
			   s->chunks);
	return 0;
}

static int check_counters(const json_t *v, char *err, size_t errlen);
static int check_topology(const void *obj, char *err, size_t errlen);
static int check_chips(const void *obj, char *err, size_t errlen);
static int check_sweep(const void *obj, char *err, size_t errlen);

/* ---- shared parts ---- */

#define NONCE(S, f, d) STR(S, "nonce", f, 0, HIVE_NONCE_CHARS, d)

#define HEAD(S) \
	INT(S, "job", head.job, 0, 0, I_MAX, NULL, "the job's id (0: none)"), \
	MAC(S, "mac", head.mac, HIVE_MF_REQUIRED, "the miner"), \
	IPV4(S, "ip", head.ip, 0, "where it was asked"), \
	INT(S, "latency_ms", head.latency_ms, 0, 0, I_MAX, "ms", "from pull to result"), \
	NONCE(S, head.nonce, "the job's nonce, echoed (apid refuses a result without it)")

/* ---- hive.miner.seen ---- */
#define S struct hive_msg_miner_seen
static const struct hive_msg_field seen_rows[] = {
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "identity"),
	IPV4(S, "ip", ip, HIVE_MF_REQUIRED, "where it answered"),
	CIDR(S, "subnet", subnet, 0, "the configured subnet it was found in"),
	STR(S, "model", model, 0, TEXT_MAX, "model alias (catalogue key)"),
	STR(S, "miner", miner, 0, TEXT_MAX, "model as the miner names itself"),
	STR(S, "fw_name", fw_name, 0, TEXT_MAX, "firmware name"),
	STR(S, "fw_version", fw_version, 0, TEXT_MAX, "firmware version"),
	STR(S, "hostname", hostname, 0, TEXT_MAX, "the miner's hostname"),
};
#undef S
SCHEMA(seen_schema, struct hive_msg_miner_seen, seen_rows);

/* ---- hive.miner.key ---- */
#define S struct hive_msg_miner_key
static const struct hive_msg_field key_rows[] = {
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "the miner"),
	STR(S, "api_key", api_key, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY | HIVE_MF_SECRET, 512,
	    "the API key that works on it"),
	BOOL(S, "created", created, 0, "true when discoverd created it now"),
};
#undef S
SCHEMA(key_schema, struct hive_msg_miner_key, key_rows);

/* ---- hive.miner.error ---- */
#define S struct hive_msg_miner_error
static const struct hive_msg_field error_rows[] = {
	MAC(S, "mac", mac, HIVE_MF_REQUIRED | HIVE_MF_EMPTY_OK, "the miner; \"\" when unknown"),
	IPV4(S, "ip", ip, HIVE_MF_EMPTY_OK, "the address asked"),
	ENUM(S, "op", op, HIVE_MF_REQUIRED, ops, "what was being done"),
	STR(S, "kind", kind, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY, NAME_MAX_,
	    "error kind (timeout, refused, http, bad_json, ...)"),
	INT(S, "http_status", http_status, 0, 0, 999, NULL, "HTTP status when there was one"),
	STR(S, "message", message, 0, MSG_MAX, "what happened, for people"),
	INT(S, "job", job, 0, 1, I_MAX, NULL, "the job that failed, if any"),
};
#undef S
SCHEMA(error_schema, struct hive_msg_miner_error, error_rows);

/* ---- hive.model.catalogue ---- */
#define S struct hive_msg_preset
static const struct hive_msg_field preset_rows[] = {
	STR(S, "name", name, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY, NAME_MAX_, "preset name"),
	STR(S, "pretty", pretty, 0, 256, "as the firmware shows it"),
	NUM(S, "watts", watts, 0, 0, W_MAX, "W", "expected power"),
	NUM(S, "th", th, 0, 0, 1e6, "TH/s", "expected hashrate"),
	INT(S, "order", order, 0, 0, I_MAX, NULL, "position in the catalogue"),
	BOOL(S, "tuned", tuned, 0, "the firmware has tuned it on this miner"),
	BOOL(S, "modded_psu_required", modded_psu_required, 0, "needs a modified PSU"),
};
#undef S
SCHEMA(preset_schema, struct hive_msg_preset, preset_rows);

#define S struct hive_msg_topology
static const struct hive_msg_field topology_rows[] = {
	INT(S, "rows", rows, HIVE_MF_REQUIRED, 0, 1024, NULL, "rows of the chip map"),
	INT(S, "cols", cols, HIVE_MF_REQUIRED, 0, 1024, NULL, "columns of the chip map"),
	JSON(S, "chips", chips, HIVE_MF_REQUIRED, check_topology_chips,
	     "rows × cols chip ids, -1 for an empty cell"),
};
#undef S
SCHEMA_CHECKED(topology_schema, struct hive_msg_topology, topology_rows, check_topology);

#define S struct hive_msg_overclock
static const struct hive_msg_field overclock_rows[] = {
	INT(S, "min_freq", min_freq, 0, -1, 1e6, "MHz", "lowest chip frequency"),
	INT(S, "max_freq", max_freq, 0, -1, 1e6, "MHz", "highest chip frequency"),
	INT(S, "min_voltage", min_voltage, 0, -1, 1e6, "mV", "lowest voltage"),
	INT(S, "max_voltage", max_voltage, 0, -1, 1e6, "mV", "highest voltage"),
};
#undef S
SCHEMA(overclock_schema, struct hive_msg_overclock, overclock_rows);

#define S struct hive_msg_model_catalogue
static const struct hive_msg_field catalogue_rows[] = {
	STR(S, "model", model, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY, NAME_MAX_, "model alias"),
	STR(S, "full_name", full_name, 0, TEXT_MAX, "model name for people"),
	STR(S, "series", series, 0, TEXT_MAX, "chip series"),
	STR(S, "fw_version", fw_version, 0, 128, "firmware the catalogue came from"),
	INT(S, "num_chains", num_chains, 0, 0, CHAINS_MAX, NULL, "hashboards"),
	INT(S, "chips_per_chain", chips_per_chain, 0, 0, CHIPS_MAX, NULL, "chips per board"),
	INT(S, "chips_per_domain", chips_per_domain, 0, 0, CHIPS_MAX, NULL, "chips per domain"),
	OBJ(S, "topology", topology, 0, topology_schema, "the chip map of a board"),
	LIST(S, "presets", presets, n_presets, HIVE_MF_REQUIRED | HIVE_MF_UNIQUE, HIVE_MT_OBJ,
	     &preset_schema, PRESETS_MAX, NULL, "the preset catalogue, in firmware order"),
	OBJ(S, "overclock", overclock, 0, overclock_schema, "manual tuning limits"),
};
#undef S
SCHEMA(catalogue_schema, struct hive_msg_model_catalogue, catalogue_rows);

/* ---- hive.sweep.done ---- */
#define S struct hive_msg_sweep_done
static const struct hive_msg_field sweep_rows[] = {
	CIDR(S, "subnet", subnet, HIVE_MF_REQUIRED, "the subnet swept"),
	LIST(S, "macs", macs, n_macs, HIVE_MF_REQUIRED, HIVE_MT_MAC, NULL, MACS_MAX, NULL,
	     "every miner seen; the subnet's others are offline"),
	INT(S, "started", started, 0, 0, I_MAX, "ms", "when the sweep began (wall clock)"),
	INT(S, "duration_ms", duration_ms, 0, 0, I_MAX, "ms", "how long it took"),
	INT(S, "probed", probed, 0, 0, I_MAX, NULL, "addresses probed"),
	INT(S, "answered", answered, 0, 0, I_MAX, NULL, "addresses with the port open"),
	INT(S, "miners", miners, 0, 0, I_MAX, NULL, "miners identified (the whole list's)"),
	INT(S, "sweep", sweep, 0, 1, I_MAX, NULL,
	    "the subnet sweep's id, unique per sender and boot (required with chunks > 1)"),
	INT(S, "chunk", chunk, 0, 1, CHUNKS_MAX, NULL, "this part of the list, 1..chunks"),
	INT(S, "chunks", chunks, 0, 1, CHUNKS_MAX, NULL,
	    "parts of the list (absent: 1); apid acts once it has them all"),
};
#undef S
SCHEMA_CHECKED(sweep_schema, struct hive_msg_sweep_done, sweep_rows, check_sweep);

/* ---- hive.status.result ---- */
#define S struct hive_msg_chain_status
static const struct hive_msg_field chain_status_rows[] = {
	INT(S, "id", id, HIVE_MF_REQUIRED, 0, 1024, NULL, "chain index"),
	STR(S, "state", state, 0, NAME_MAX_, "chain state"),
	NUM(S, "hr_rt_ghs", hr_rt_ghs, 0, 0, GHS_MAX, "GH/s", "realtime hashrate"),
	NUM(S, "freq_mhz", freq_mhz, 0, 0, 1e6, "MHz", "chip frequency"),
	NUM(S, "voltage", voltage, 0, 0, 1e6, "mV", "board voltage"),
	NUM(S, "chip_temp_max", chip_temp_max, 0, TEMP_LO, TEMP_HI, "°C", "hottest chip"),
	NUM(S, "pcb_temp_max", pcb_temp_max, 0, TEMP_LO, TEMP_HI, "°C", "hottest PCB sensor"),
	INT(S, "red", red, 0, 0, CHIPS_MAX, NULL, "chips graded red"),
	INT(S, "orange", orange, 0, 0, CHIPS_MAX, NULL, "chips graded orange"),
	INT(S, "grey", grey, 0, 0, CHIPS_MAX, NULL, "chips not graded"),
	INT(S, "hw_errors", hw_errors, 0, 0, I_MAX, NULL, "hardware errors"),
};
#undef S
SCHEMA(chain_status_schema, struct hive_msg_chain_status, chain_status_rows);

#define S struct hive_msg_pools
static const struct hive_msg_field pools_rows[] = {
	INT(S, "total", total, 0, 0, 1024, NULL, "pools configured"),
	INT(S, "working", working, 0, 0, 1024, NULL, "pools alive"),
	INT(S, "accepted", accepted, 0, 0, I_MAX, NULL, "shares accepted"),
	INT(S, "rejected", rejected, 0, 0, I_MAX, NULL, "shares rejected"),
	INT(S, "stale", stale, 0, 0, I_MAX, NULL, "stale shares"),
	STR(S, "url", url, 0, TEXT_MAX, "the active pool"),
	STR(S, "user", user, 0, TEXT_MAX, "the worker name on it"),
};
#undef S
SCHEMA(pools_schema, struct hive_msg_pools, pools_rows);

#define S struct hive_msg_switcher
static const struct hive_msg_field switcher_rows[] = {
	BOOL(S, "enabled", enabled, 0, "the firmware's own preset switcher is on"),
	STR(S, "top_preset", top_preset, 0, NAME_MAX_, "the highest preset it may choose"),
	STR(S, "min_preset", min_preset, 0, NAME_MAX_, "the lowest preset it may choose"),
};
#undef S
SCHEMA(switcher_schema, struct hive_msg_switcher, switcher_rows);

#define S struct hive_msg_status_result
static const struct hive_msg_field status_rows[] = {
	HEAD(S),
	STR(S, "state", state, 0, NAME_MAX_, "mining state (mining, stopped, ...)"),
	STR(S, "state_description", state_description, 0, 256,
	    "why, where the firmware says (\"paused\")"),
	INT(S, "state_time", state_time, 0, 0, I_MAX, "s", "seconds in that state"),
	STR(S, "preset", preset, 0, NAME_MAX_, "current preset; \"disabled\" = stock"),
	STR(S, "preset_pretty", preset_pretty, 0, 256, "as the firmware shows it"),
	BOOL(S, "preset_tuned", preset_tuned, 0, "false while the preset is being tuned"),
	NUM(S, "hr_realtime_ghs", hr_realtime_ghs, 0, 0, GHS_MAX, "GH/s", "realtime hashrate"),
	NUM(S, "hr_average_ghs", hr_average_ghs, 0, 0, GHS_MAX, "GH/s", "average hashrate"),
	NUM(S, "hr_nominal_ghs", hr_nominal_ghs, 0, 0, GHS_MAX, "GH/s", "nominal hashrate"),
	NUM(S, "efficiency_jth", efficiency_jth, 0, 0, 1e6, "J/TH", "measured efficiency"),
	NUM(S, "chip_temp_max", chip_temp_max, 0, TEMP_LO, TEMP_HI, "°C", "hottest chip"),
	NUM(S, "pcb_temp_max", pcb_temp_max, 0, TEMP_LO, TEMP_HI, "°C", "hottest PCB sensor"),
	NUM(S, "power_w", power_w, 0, 0, W_MAX, "W", "power: metered, else the preset's"),
	BOOL(S, "power_metered", power_metered, 0, "power_w was measured by the miner"),
	NUM(S, "preset_watts", preset_watts, 0, 0, W_MAX, "W", "the current preset's watts"),
	NUM(S, "fan_duty", fan_duty, 0, 0, 100, "%", "fan duty"),
	LIST(S, "fans", fans, n_fans, 0, HIVE_MT_NUM, NULL, FANS_MAX, "rpm", "each fan's speed"),
	INT(S, "hw_errors", hw_errors, 0, 0, I_MAX, NULL, "hardware errors"),
	LIST(S, "chains", chains, n_chains, 0, HIVE_MT_OBJ, &chain_status_schema, CHAINS_MAX,
	     NULL, "per hashboard"),
	OBJ(S, "pools", pools, 0, pools_schema, "pool connection"),
	OBJ(S, "switcher", switcher, 0, switcher_schema, "the firmware's preset switcher"),
};
#undef S
SCHEMA(status_schema, struct hive_msg_status_result, status_rows);

/* ---- hive.telemetry.result ---- */
#define S struct hive_msg_chips
static const struct hive_msg_field chips_rows[] = {
	LIST(S, "hr", hr, n_hr, HIVE_MF_REQUIRED, HIVE_MT_NUM, NULL, CHIPS_MAX, "GH/s",
	     "each chip's hashrate"),
	LIST(S, "freq", freq, n_freq, 0, HIVE_MT_NUM, NULL, CHIPS_MAX, "MHz", "frequency"),
	LIST(S, "volt", volt, n_volt, 0, HIVE_MT_NUM, NULL, CHIPS_MAX, "mV", "voltage"),
	LIST(S, "temp", temp, n_temp, 0, HIVE_MT_NUM, NULL, CHIPS_MAX, "°C", "temperature"),
	LIST(S, "errs", errs, n_errs, 0, HIVE_MT_NUM, NULL, CHIPS_MAX, NULL, "errors"),
	STR(S, "grade", grade, 0, CHIPS_MAX, "one letter per chip: r o g ?"),
	STR(S, "throttled", throttled, 0, CHIPS_MAX, "one 0/1 per chip"),
};
#undef S
SCHEMA_CHECKED(chips_schema, struct hive_msg_chips, chips_rows, check_chips);

#define S struct hive_msg_chain_telemetry
static const struct hive_msg_field chain_tel_rows[] = {
	INT(S, "id", id, HIVE_MF_REQUIRED, 0, 1024, NULL, "chain index"),
	STR(S, "state", state, 0, NAME_MAX_, "chain state"),
	NUM(S, "hr_realtime_ghs", hr_realtime_ghs, 0, 0, GHS_MAX, "GH/s", "realtime hashrate"),
	NUM(S, "hr_nominal_ghs", hr_nominal_ghs, 0, 0, GHS_MAX, "GH/s", "nominal hashrate"),
	NUM(S, "freq", freq, 0, 0, 1e6, "MHz", "chain frequency"),
	OBJ(S, "chips", chips, HIVE_MF_REQUIRED, chips_schema,
	    "per-chip columns, all of one length"),
};
#undef S
SCHEMA(chain_tel_schema, struct hive_msg_chain_telemetry, chain_tel_rows);

#define S struct hive_msg_telemetry_result
static const struct hive_msg_field telemetry_rows[] = {
	HEAD(S),
	ENUM(S, "source", source, 0, sources, "the endpoint read (absent: chains)"),
	LIST(S, "chains", chains, n_chains, HIVE_MF_REQUIRED, HIVE_MT_OBJ, &chain_tel_schema,
	     CHAINS_MAX, NULL, "per hashboard"),
};
#undef S
SCHEMA(telemetry_schema, struct hive_msg_telemetry_result, telemetry_rows);

/* ---- hive.action.result ---- */
#define S struct hive_msg_action_result
static const struct hive_msg_field action_result_rows[] = {
	HEAD(S),
	INT(S, "action", action, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "the action's id"),
	ENUM(S, "kind", kind, HIVE_MF_REQUIRED, action_kinds, "what was done"),
	BOOL(S, "restart_required", restart_required, 0, "set_preset: as the firmware answered"),
	BOOL(S, "restarted", restarted, 0, "set_preset: mining restarted to apply it"),
	INT(S, "reboot_after", reboot_after, 0, 0, 86400, "s", "reboot: as the firmware said"),
};
#undef S
SCHEMA(action_result_schema, struct hive_msg_action_result, action_result_rows);

/* ---- hive.plant.reading ---- */
#define S struct hive_msg_plant_reading
static const struct hive_msg_field plant_reading_rows[] = {
	INT(S, "job", job, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "the hive.job.plant it answers"),
	NONCE(S, nonce, "the job's nonce, echoed (apid refuses a reading without it)"),
	ENUM(S, "source", source, HIVE_MF_REQUIRED, plant_kinds, "the kind of source read"),
	BOOL(S, "ok", ok, HIVE_MF_REQUIRED, "the read worked (else error says why)"),
	STR(S, "error", error, 0, TEXT_MAX, "why the read failed (\"http 401: unauthorized\")"),
	ENUM(S, "error_kind", error_kind, 0, plant_errors, "the failure's kind"),
	INT(S, "latency_ms", latency_ms, 0, 0, I_MAX, "ms", "how long the read took"),
	NUM(S, "generation_w", generation_w, 0, -PLANT_W, PLANT_W, "W",
	    "the plant's generation (aggregator: totals.generation_mw; meter: register × scale)"),
	INT(S, "reading_id", reading_id, 0, 0, I_MAX, NULL, "aggregator: the reading's id"),
	INT(S, "collected_ms", collected_ms, 0, 0, I_MAX, "ms",
	    "aggregator: collection_timestamp (wall clock)"),
	NUM(S, "consumption_w", consumption_w, 0, -PLANT_W, PLANT_W, "W",
	    "aggregator: the farm's draw as the plant meters it; absent unless every "
	    "consumption source succeeded"),
	NUM(S, "exported_w", exported_w, 0, -PLANT_W, PLANT_W, "W", "aggregator: sent to the grid"),
	NUM(S, "confidence", confidence, 0, 0, 1, NULL, "aggregator: trust.confidence_score"),
	STR(S, "trust_status", trust_status, 0, NAME_MAX_, "aggregator: trust.status"),
	INT(S, "gen_sources", gen_sources, 0, 0, I_MAX, NULL, "aggregator: generation sources"),
	INT(S, "gen_failed", gen_failed, 0, 0, I_MAX, NULL,
	    "aggregator: generation sources not \"success\""),
	INT(S, "cons_sources", cons_sources, 0, 0, I_MAX, NULL, "aggregator: consumption sources"),
	INT(S, "cons_failed", cons_failed, 0, 0, I_MAX, NULL,
	    "aggregator: consumption sources not \"success\""),
	STR(S, "failed", failed, 0, TEXT_MAX, "aggregator: the failed sources' names, comma separated"),
};
#undef S
SCHEMA(plant_reading_schema, struct hive_msg_plant_reading, plant_reading_rows);

/* ---- hive.job.failed ---- */
#define S struct hive_msg_job_failed
static const struct hive_msg_field job_failed_rows[] = {
	INT(S, "job", job, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "the job"),
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "the miner"),
	STR(S, "kind", kind, 0, NAME_MAX_, "error kind"),
	NONCE(S, nonce, "the job's nonce, echoed (apid refuses a failure without it)"),
};
#undef S
SCHEMA(job_failed_schema, struct hive_msg_job_failed, job_failed_rows);

/* ---- hive.daemon.heartbeat ---- */
#define S struct hive_msg_heartbeat
static const struct hive_msg_field heartbeat_rows[] = {
	STR(S, "daemon", daemon, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY, NAME_MAX_, "daemon name"),
	STR(S, "host", host, 0, 128, "host name"),
	INT(S, "pid", pid, 0, 0, I_MAX, NULL, "process id"),
	INT(S, "started", started, 0, 0, I_MAX, "ms", "process start (wall clock)"),
	JSON(S, "counters", counters, 0, check_counters, "{name: integer}, the daemon's counters"),
	INT(S, "in_flight", in_flight, 0, 0, I_MAX, NULL, "jobs or requests in flight"),
	NUM(S, "latency_ms", latency_ms, 0, 0, 1e9, "ms", "mean job latency"),
};
#undef S
SCHEMA(heartbeat_schema, struct hive_msg_heartbeat, heartbeat_rows);

/* ---- hive.daemon.goodbye ---- */
#define S struct hive_msg_goodbye
static const struct hive_msg_field goodbye_rows[] = {
	STR(S, "daemon", daemon, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY, NAME_MAX_, "daemon name"),
	STR(S, "host", host, 0, 128, "host name"),
	INT(S, "pid", pid, 0, 0, I_MAX, NULL, "process id"),
	INT(S, "started", started, 0, 0, I_MAX, "ms", "process start (wall clock)"),
	STR(S, "reason", reason, 0, NAME_MAX_, "why it stops (\"signal\")"),
};
#undef S
SCHEMA(goodbye_schema, struct hive_msg_goodbye, goodbye_rows);

/* ---- hive.job.status / hive.job.telemetry ---- */
#define S struct hive_msg_job
static const struct hive_msg_field job_rows[] = {
	INT(S, "job", job, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "job id, unique per apid run"),
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "the miner"),
	IPV4(S, "ip", ip, HIVE_MF_REQUIRED, "its address"),
	INT(S, "port", port, 0, 1, 65535, NULL, "its HTTP port (absent: network.port)"),
	STR(S, "api_key", api_key, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY | HIVE_MF_SECRET, 512,
	    "its API key"),
	INT(S, "deadline", deadline, 0, 0, I_MAX, "ms", "drop the job after (wall clock)"),
	ENUM(S, "endpoint", endpoint, 0, sources, "telemetry: the endpoint to read"),
	NONCE(S, nonce, "random, 16 hex digits: the result must echo it"),
};
#undef S
SCHEMA(job_schema, struct hive_msg_job, job_rows);

/* ---- hive.job.control ---- */
#define S struct hive_msg_control_job
static const struct hive_msg_field control_job_rows[] = {
	INT(S, "job", job, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "job id, unique per apid run"),
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "the miner"),
	IPV4(S, "ip", ip, HIVE_MF_REQUIRED, "its address"),
	INT(S, "port", port, 0, 1, 65535, NULL, "its HTTP port (absent: network.port)"),
	STR(S, "api_key", api_key, HIVE_MF_REQUIRED | HIVE_MF_NONEMPTY | HIVE_MF_SECRET, 512,
	    "its API key"),
	INT(S, "deadline", deadline, HIVE_MF_REQUIRED, 0, I_MAX, "ms",
	    "not started after (wall clock)"),
	INT(S, "action", action, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "the action's id"),
	ENUM(S, "kind", kind, HIVE_MF_REQUIRED, action_kinds, "what to do"),
	STR(S, "preset", preset, 0, NAME_MAX_, "set_preset: the preset"),
	NONCE(S, nonce, "random, 16 hex digits: the result must echo it"),
};
#undef S
SCHEMA(control_job_schema, struct hive_msg_control_job, control_job_rows);

/* ---- hive.job.plant ---- */
#define S struct hive_msg_plant_job
static const struct hive_msg_field plant_job_rows[] = {
	INT(S, "job", job, HIVE_MF_REQUIRED, 1, I_MAX, NULL, "job id, unique per apid run"),
	INT(S, "deadline", deadline, 0, 0, I_MAX, "ms", "not started after (wall clock)"),
	ENUM(S, "kind", kind, HIVE_MF_REQUIRED, plant_kinds, "the source's kind"),
	STR(S, "url", url, 0, 511, "aggregator: the reading's URL (plant_id is added)"),
	STR(S, "plant_id", plant_id, 0, 127, "aggregator: the plant"),
	STR(S, "api_key", api_key, HIVE_MF_SECRET, 255, "aggregator: the bearer key"),
	STR(S, "host", host, 0, 255, "modbus: the meter's host"),
	INT(S, "port", port, 0, 1, 65535, NULL, "modbus: its TCP port (absent: 502)"),
	INT(S, "unit", unit, 0, 0, 255, NULL, "modbus: the unit id (absent: 1)"),
	INT(S, "register", reg, 0, 0, 65535, NULL, "modbus: the value's first register, 0-based"),
	ENUM(S, "table", table, 0, plant_tables, "modbus: holding or input registers"),
	ENUM(S, "type", type, 0, plant_types, "modbus: the value's type"),
	ENUM(S, "byte_order", byte_order, 0, plant_orders, "modbus: the order of its bytes"),
	NUM(S, "scale", scale, 0, 0, 1e9, "W", "modbus: watts per unit of the value"),
	INT(S, "timeout_ms", timeout_ms, 0, 100, 60000, "ms", "the read at most (absent: 3000)"),
	NONCE(S, nonce, "random, 16 hex digits: the reading must echo it"),
};
#undef S
SCHEMA(plant_job_schema, struct hive_msg_plant_job, plant_job_rows);

/* ---- control ---- */
#define S struct hive_msg_credentials
static const struct hive_msg_field cred_rows[] = {
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "the miner"),
};
#undef S
SCHEMA(cred_schema, struct hive_msg_credentials, cred_rows);

#define S struct hive_msg_credentials_reply
static const struct hive_msg_field cred_reply_rows[] = {
	MAC(S, "mac", mac, HIVE_MF_REQUIRED, "the miner"),
	BOOL(S, "known", known, HIVE_MF_REQUIRED, "apid knows the miner"),
	STR(S, "api_key", api_key, HIVE_MF_SECRET, 512, "its stored API key"),
	STR(S, "unlock_pass", unlock_pass, HIVE_MF_SECRET, 512, "its unlock password"),
};
#undef S
SCHEMA(cred_reply_schema, struct hive_msg_credentials_reply, cred_reply_rows);

#define S struct hive_msg_recheck_reply
static const struct hive_msg_field recheck_reply_rows[] = {
	LIST(S, "macs", macs, n_macs, HIVE_MF_REQUIRED, HIVE_MT_MAC, NULL, MACS_MAX, NULL,
	     "miners to take the whole path (credentials, key check, seen) at their next sweep"),
	BOOL(S, "all", all, 0, "more than the list holds: every miner should"),
};
#undef S
SCHEMA(recheck_reply_schema, struct hive_msg_recheck_reply, recheck_reply_rows);

#define S struct hive_msg_ctl_error
static const struct hive_msg_field ctl_error_rows[] = {
	STR(S, "error", error, HIVE_MF_REQUIRED, MSG_MAX, "why the request was refused"),
};
#undef S
SCHEMA(ctl_error_schema, struct hive_msg_ctl_error, ctl_error_rows);

static const struct hive_msg_field empty_rows[1];
static const struct hive_msg_schema empty_schema = { "empty", 0, empty_rows, 0, NULL };

/* ---------------------------------------------------------------- topics */

static const struct hive_msg_topic topics[HIVE_MSG_KINDS] = {
	{ HIVE_MSG_MINER_SEEN, HIVE_TOPIC_MINER_SEEN, HIVE_CH_EVENTS, HIVE_ROLE_DISCOVERD,
	  &seen_schema, "A miner answered `/info`" },
	{ HIVE_MSG_MINER_KEY, HIVE_TOPIC_MINER_KEY, HIVE_CH_EVENTS, HIVE_ROLE_DISCOVERD,
	  &key_schema, "The API key that works on a miner" },
	{ HIVE_MSG_MINER_ERROR, HIVE_TOPIC_MINER_ERROR, HIVE_CH_EVENTS, HIVE_ROLE_DAEMONS,
	  &error_schema, "Something failed for one miner" },
	{ HIVE_MSG_MODEL_CATALOGUE, HIVE_TOPIC_MODEL_CATALOGUE, HIVE_CH_EVENTS,
	  HIVE_ROLE_DISCOVERD, &catalogue_schema, "A model's topology and preset catalogue" },
	{ HIVE_MSG_SWEEP_DONE, HIVE_TOPIC_SWEEP_DONE, HIVE_CH_EVENTS, HIVE_ROLE_DISCOVERD,
	  &sweep_schema, "A subnet's sweep is over: every miner it found, in chunks when the list "
	  "does not fit one message; apid marks the subnet's other miners offline unless a status "
	  "or telemetry answered lately (docs/apid.md)" },
	{ HIVE_MSG_STATUS_RESULT, HIVE_TOPIC_STATUS_RESULT, HIVE_CH_EVENTS, HIVE_ROLE_POLLERD,
	  &status_schema, "A status job's result" },
	{ HIVE_MSG_TELEMETRY_RESULT, HIVE_TOPIC_TELEMETRY_RESULT, HIVE_CH_EVENTS,
	  HIVE_ROLE_TELEMETRYD, &telemetry_schema, "A telemetry job's result, chips as columns" },
	{ HIVE_MSG_ACTION_RESULT, HIVE_TOPIC_ACTION_RESULT, HIVE_CH_EVENTS, HIVE_ROLE_POLLERD,
	  &action_result_schema, "The firmware accepted a control job (done only once read back)" },
	{ HIVE_MSG_PLANT_READING, HIVE_TOPIC_PLANT_READING, HIVE_CH_EVENTS, HIVE_ROLE_POLLERD,
	  &plant_reading_schema, "What one read of the plant's power feed found (a hive.job.plant's "
	  "answer, ok or not)" },
	{ HIVE_MSG_JOB_FAILED, HIVE_TOPIC_JOB_FAILED, HIVE_CH_EVENTS, HIVE_ROLE_WORKERS,
	  &job_failed_schema, "A job ended without a result (the error went as hive.miner.error)" },
	{ HIVE_MSG_HEARTBEAT, HIVE_TOPIC_HEARTBEAT, HIVE_CH_EVENTS, HIVE_ROLE_ALL,
	  &heartbeat_schema, "Every daemon, each intervals.heartbeat_seconds" },
	{ HIVE_MSG_GOODBYE, HIVE_TOPIC_GOODBYE, HIVE_CH_EVENTS, HIVE_ROLE_DAEMONS,
	  &goodbye_schema, "A daemon stopping on purpose, just before it closes its sockets: "
	  "apid shows it as stopped, not missing (its heartbeats end without a problem or an "
	  "alert)" },
	{ HIVE_MSG_JOB_STATUS, HIVE_TOPIC_JOB_STATUS, HIVE_CH_JOBS, HIVE_ROLE_APID,
	  &job_schema, "One status job (bus.jobs_status)" },
	{ HIVE_MSG_JOB_TELEMETRY, HIVE_TOPIC_JOB_TELEMETRY, HIVE_CH_JOBS, HIVE_ROLE_APID,
	  &job_schema, "One telemetry job (bus.jobs_telemetry)" },
	{ HIVE_MSG_JOB_CONTROL, HIVE_TOPIC_JOB_CONTROL, HIVE_CH_JOBS, HIVE_ROLE_APID,
	  &control_job_schema, "One action on one miner (bus.jobs_control)" },
	{ HIVE_MSG_JOB_PLANT, HIVE_TOPIC_JOB_PLANT, HIVE_CH_JOBS, HIVE_ROLE_APID,
	  &plant_job_schema, "One read of the plant's power feed (bus.jobs_plant)" },
	{ HIVE_MSG_CTL_CREDENTIALS, HIVE_TOPIC_CTL_CREDENTIALS, HIVE_CH_REQUEST,
	  HIVE_ROLE_DISCOVERD, &cred_schema, "Ask for a miner's credentials" },
	{ HIVE_MSG_CTL_CREDENTIALS_REPLY, HIVE_TOPIC_CTL_CREDENTIALS, HIVE_CH_REPLY,
	  HIVE_ROLE_APID, &cred_reply_schema, "A miner's credentials" },
	{ HIVE_MSG_CTL_RECHECK, HIVE_TOPIC_CTL_RECHECK, HIVE_CH_REQUEST, HIVE_ROLE_DISCOVERD,
	  &empty_schema, "Ask which miners need more than /info at the next sweep (once per "
	  "sweep)" },
	{ HIVE_MSG_CTL_RECHECK_REPLY, HIVE_TOPIC_CTL_RECHECK, HIVE_CH_REPLY, HIVE_ROLE_APID,
	  &recheck_reply_schema, "Online miners without a stored key or whose last status, "
	  "telemetry or control was refused (401/403), and the MACs a sweep listed that apid "
	  "has no online miner for" },
	{ HIVE_MSG_CTL_HEALTH, HIVE_TOPIC_CTL_HEALTH, HIVE_CH_REQUEST, HIVE_ROLE_DAEMONS,
	  &empty_schema, "Ask for health; the reply is the document of `GET /api/health`" },
	{ HIVE_MSG_CTL_ERROR, HIVE_TOPIC_CTL_ERROR, HIVE_CH_REPLY, HIVE_ROLE_APID,
	  &ctl_error_schema, "The reply to a refused request" },
	{ HIVE_MSG_FEED_MINER, HIVE_TOPIC_FEED_MINER, HIVE_CH_FEED, HIVE_ROLE_APID, NULL,
	  "A miner's row as `GET /api/miners/{id}` shows it" },
	{ HIVE_MSG_FEED_STATUS, HIVE_TOPIC_FEED_STATUS, HIVE_CH_FEED, HIVE_ROLE_APID, NULL,
	  "A stored status as `GET /api/miners/{id}/statuses` shows it" },
	{ HIVE_MSG_FEED_MODEL, HIVE_TOPIC_FEED_MODEL, HIVE_CH_FEED, HIVE_ROLE_APID, NULL,
	  "A model as `GET /api/models/{alias}` shows it" },
};

const struct hive_msg_topic *hive_msg_topic(enum hive_msg_kind kind)
{
	return (unsigned)kind < HIVE_MSG_KINDS ? &topics[kind] : NULL;
}

int hive_msg_kind_of(const char *topic, enum hive_msg_channel channel)
{
	for (int k = 0; topic && k < HIVE_MSG_KINDS; k++)
		if (topics[k].channel == channel && strcmp(topics[k].topic, topic) == 0)
			return k;
	return -1;
}

unsigned hive_msg_role(const char *daemon)
{
	static const struct { const char *name; unsigned role; } roles[] = {
		{ "apid", HIVE_ROLE_APID },
		{ "discoverd", HIVE_ROLE_DISCOVERD },
		{ "pollerd", HIVE_ROLE_POLLERD },
		{ "telemetryd", HIVE_ROLE_TELEMETRYD },
	};

	for (size_t i = 0; daemon && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(roles[i].name, daemon) == 0)
			return roles[i].role;
	return 0;
}

/* ---------------------------------------------------------------- checks */

static int check_topology_chips(const json_t *v, char *err, size_t errlen)
{
	json_t *row, *cell;
	size_t i, j;

	if (!json_is_array(v)) {
		snprintf(err, errlen, "expected array, got %s", hive_json_type_name(v));
		return -1;
	}
	json_array_foreach(v, i, row) {
		if (!json_is_array(row)) {
			snprintf(err, errlen, "[%zu]: expected array, got %s", i,
				 hive_json_type_name(row));
			return -1;
		}
		json_array_foreach(row, j, cell) {
			if (!json_is_integer(cell)) {
				snprintf(err, errlen, "[%zu][%zu]: expected integer, got %s", i, j,
					 hive_json_type_name(cell));
				return -1;
			}
		}
	}
	return 0;
}

/* The map has `rows` rows of `cols` ids. */
static int check_topology(const void *obj, char *err, size_t errlen)
{
	const struct hive_msg_topology *t = obj;
	json_t *row;
	size_t i;

	if (json_array_size(t->chips) != (size_t)t->rows)
		return bad(err, errlen, "chips", "expected %lld rows, got %zu", t->rows,
			   json_array_size(t->chips));
	json_array_foreach(t->chips, i, row)
		if (json_array_size(row) != (size_t)t->cols)
			return bad(err, errlen, "chips", "[%zu]: expected an array of %lld ids", i,
				   t->cols);
	return 0;
}

/* Every column has one value per chip: as many as hr. */
static int check_chips(const void *obj, char *err, size_t errlen)
{
	const struct hive_msg_chips *c = obj;
	const size_t n = c->n_hr;
	const struct { const char *key; size_t got; bool present; } cols[] = {
		{ "freq", c->n_freq, c->freq != NULL }, { "volt", c->n_volt, c->volt != NULL },
		{ "temp", c->n_temp, c->temp != NULL }, { "errs", c->n_errs, c->errs != NULL },
		{ "grade", c->grade ? strlen(c->grade) : 0, c->grade != NULL },
		{ "throttled", c->throttled ? strlen(c->throttled) : 0, c->throttled != NULL },
	};

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		if (cols[i].present && cols[i].got != n)
			return bad(err, errlen, cols[i].key, "expected %zu values, got %zu", n,
				   cols[i].got);
	return 0;
}

static int check_counters(const json_t *v, char *err, size_t errlen)
{
	const char *k;
	json_t *n;

	if (!json_is_object(v)) {
		snprintf(err, errlen, "expected object, got %s", hive_json_type_name(v));
		return -1;
	}
	if (json_object_size(v) > COUNTERS_MAX) {
		snprintf(err, errlen, "more than %d", COUNTERS_MAX);
		return -1;
	}
	json_object_foreach((json_t *)v, k, n) {
		if (strlen(k) > NAME_MAX_) {
			snprintf(err, errlen, "name longer than %d characters", NAME_MAX_);
			return -1;
		}
		if (!json_is_integer(n)) {
			snprintf(err, errlen, "%.64s: expected integer, got %s", k,
				 hive_json_type_name(n));
			return -1;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- absent */

static size_t elem_size(const struct hive_msg_field *f)
{
	switch (f->elem) {
	case HIVE_MT_NUM: return sizeof(double);
	case HIVE_MT_INT: return sizeof(long long);
	case HIVE_MT_STR: return sizeof(const char *);
	case HIVE_MT_MAC: return HIVE_MAC_LEN;
	case HIVE_MT_OBJ: return f->sub->size;
	default: return 0;
	}
}

static void init_obj(const struct hive_msg_schema *s, void *p)
{
	memset(p, 0, s->size);
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct hive_msg_field *f = &s->fields[i];
		char *at = (char *)p + f->off;

		switch (f->type) {
		case HIVE_MT_INT: *(long long *)at = HIVE_MSG_NO_INT; break;
		case HIVE_MT_NUM: *(double *)at = NAN; break;
		case HIVE_MT_BOOL: *(int *)at = -1; break;
		case HIVE_MT_OBJ: init_obj(f->sub, at); break;
		default: break;      /* NULL, "", n == 0 */
		}
	}
}

static void free_obj(const struct hive_msg_schema *s, void *p)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct hive_msg_field *f = &s->fields[i];
		char *at = (char *)p + f->off;

		if (f->type == HIVE_MT_OBJ) {
			free_obj(f->sub, at);
		} else if (f->type == HIVE_MT_LIST) {
			char *items = *(char **)at;
			size_t *n = (size_t *)((char *)p + f->count_off);

			if (items && f->elem == HIVE_MT_OBJ)
				for (size_t k = 0; k < *n; k++)
					free_obj(f->sub, items + k * f->sub->size);
			free(items);
			*(char **)at = NULL;
			*n = 0;
		}
	}
}

void hive_msg_init(enum hive_msg_kind kind, void *body)
{
	const struct hive_msg_topic *t = hive_msg_topic(kind);

	if (t && t->body)
		init_obj(t->body, body);
}

void hive_msg_free(enum hive_msg_kind kind, void *out)
{
	const struct hive_msg_topic *t = hive_msg_topic(kind);

	if (t && t->body && out)
		free_obj(t->body, out);
}

/* ---------------------------------------------------------------- encode */

/* A number as the tidiest JSON: whole numbers as integers. */
static json_t *num_json(double v)
{
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *encode_obj(const struct hive_msg_schema *s, const void *p);

/* One value of type t at `at`; NULL when absent (or out of memory, which
 * encode_value's callers tell apart through `absent`). */
static json_t *encode_value(const struct hive_msg_field *f, enum hive_msg_type t,
			    const struct hive_msg_schema *sub, const char *at, const char *base,
			    bool *absent)
{
	*absent = false;
	switch (t) {
	case HIVE_MT_STR: {
		const char *v = *(const char *const *)at;

		if (!v)
			break;
		return json_string(v);
	}
	case HIVE_MT_MAC:
	case HIVE_MT_IPV4:
	case HIVE_MT_CIDR:
		if (!*at && !(f->flags & HIVE_MF_EMPTY_OK))
			break;
		return json_string(at);
	case HIVE_MT_INT: {
		long long v = *(const long long *)at;

		if (v == HIVE_MSG_NO_INT)
			break;
		return json_integer((json_int_t)v);
	}
	case HIVE_MT_NUM: {
		double v = *(const double *)at;

		if (!isfinite(v))
			break;
		return num_json(v);
	}
	case HIVE_MT_BOOL: {
		int v = *(const int *)at;

		if (v < 0)
			break;
		return json_boolean(v);
	}
	case HIVE_MT_OBJ: {
		json_t *o = encode_obj(sub, at);

		if (o && json_object_size(o) == 0) {
			json_decref(o);
			break;
		}
		return o;
	}
	case HIVE_MT_LIST: {
		const char *items = *(const char *const *)at;
		size_t n = *(const size_t *)(base + f->count_off), sz = elem_size(f);
		json_t *a;

		/* an optional list with nothing in it is absent; a required
		 * one is sent empty (a sweep that saw no miner says so) */
		if (n == 0 && !(f->flags & HIVE_MF_REQUIRED))
			break;
		a = json_array();
		for (size_t k = 0; a && k < n; k++) {
			bool gone;
			json_t *v = encode_value(f, f->elem, f->sub, items + k * sz, base, &gone);

			if (gone)
				v = json_null();
			if (!v || json_array_append_new(a, v) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case HIVE_MT_JSON: {
		json_t *v = *(json_t *const *)at;

		if (!v)
			break;
		return json_incref(v);
	}
	}
	*absent = true;
	return NULL;
}

static json_t *encode_obj(const struct hive_msg_schema *s, const void *p)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < s->n_fields; i++) {
		const struct hive_msg_field *f = &s->fields[i];
		bool absent;
		json_t *v = encode_value(f, f->type, f->sub, (const char *)p + f->off, p, &absent);

		if (absent)
			continue;
		if (!v || json_object_set_new(o, f->key, v) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

json_t *hive_msg_encode(enum hive_msg_kind kind, const void *body)
{
	const struct hive_msg_topic *t = hive_msg_topic(kind);

	return t && t->body && body ? encode_obj(t->body, body) : NULL;
}

json_t *hive_msg_encode_part(enum hive_msg_kind kind, const void *body, const void *field)
{
	const struct hive_msg_topic *t = hive_msg_topic(kind);
	size_t off = (size_t)((const char *)field - (const char *)body);
	bool absent;

	for (size_t i = 0; t && t->body && i < t->body->n_fields; i++) {
		const struct hive_msg_field *f = &t->body->fields[i];

		if (f->off == off)
			return encode_value(f, f->type, f->sub, field, body, &absent);
	}
	return NULL;
}

/* ---------------------------------------------------------------- decode */

/* err gets "<key>: <what>"; nested callers prefix their own key. */
static int bad(char *err, size_t errlen, const char *key, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", key, what);
	return -1;
}

static int decode_obj(const struct hive_msg_schema *s, const json_t *j, void *p, char *err,
		      size_t errlen);

static bool in_range(const struct hive_msg_field *f, double v)
{
	return (f->lo == 0 && f->hi == 0) || (v >= f->lo && v <= f->hi);
}

/* Decodes v (present, not null) as type t into at. key names it in errors. */
static int decode_value(const struct hive_msg_field *f, enum hive_msg_type t,
			const json_t *v, char *at, char *base, const char *key, char *err,
			size_t errlen)
{
	switch (t) {
	case HIVE_MT_STR: {
		const char *sv;
		size_t max = f->type == HIVE_MT_LIST ? TEXT_MAX : (size_t)f->hi;

		if (!json_is_string(v))
			return bad(err, errlen, key, "expected string, got %s",
				   hive_json_type_name(v));
		sv = json_string_value(v);
		if (json_string_length(v) > max)
			return bad(err, errlen, key, "longer than %zu characters", max);
		if ((f->flags & HIVE_MF_NONEMPTY) && !*sv)
			return bad(err, errlen, key, "empty");
		if (f->values) {
			int i;

			for (i = 0; f->values[i] && strcmp(f->values[i], sv) != 0; i++)
				;
			if (!f->values[i])
				return bad(err, errlen, key, "unknown value \"%.40s\"", sv);
		}
		*(const char **)at = sv;
		return 0;
	}
	case HIVE_MT_MAC:
	case HIVE_MT_IPV4:
	case HIVE_MT_CIDR: {
		const char *sv;

		if (!json_is_string(v))
			return bad(err, errlen, key, "expected string, got %s",
				   hive_json_type_name(v));
		sv = json_string_value(v);
		if (!*sv && (f->flags & HIVE_MF_EMPTY_OK)) {
			*at = '\0';
			return 0;
		}
		if (t == HIVE_MT_MAC) {
			if (hive_mac_normalise(sv, at) < 0)
				return bad(err, errlen, key, "not a MAC address: \"%.40s\"", sv);
		} else if (t == HIVE_MT_IPV4) {
			struct in_addr a;

			if (inet_pton(AF_INET, sv, &a) != 1)
				return bad(err, errlen, key, "not an IPv4 address: \"%.40s\"", sv);
			hive_ipv4_format(ntohl(a.s_addr), at);
		} else {
			struct hive_subnet sn;

			if (!*sv) {
				*at = '\0';
				if (f->flags & HIVE_MF_REQUIRED)
					return bad(err, errlen, key, "empty");
				return 0;
			}
			if (hive_subnet_parse(sv, &sn) < 0)
				return bad(err, errlen, key, "not a CIDR: \"%.40s\"", sv);
			snprintf(at, HIVE_CIDR_LEN, "%s", sn.text);
		}
		return 0;
	}
	case HIVE_MT_INT: {
		long long n;

		if (!json_is_integer(v))
			return bad(err, errlen, key, "expected integer, got %s",
				   hive_json_type_name(v));
		n = (long long)json_integer_value(v);
		if (f->type == HIVE_MT_INT && !in_range(f, (double)n))
			return bad(err, errlen, key, "%lld is outside %.0f..%.0f", n, f->lo, f->hi);
		*(long long *)at = n;
		return 0;
	}
	case HIVE_MT_NUM: {
		double n;

		if (!json_is_number(v))
			return bad(err, errlen, key, "expected number, got %s",
				   hive_json_type_name(v));
		n = json_number_value(v);
		if (f->type == HIVE_MT_NUM && !in_range(f, n))
			return bad(err, errlen, key, "%g is outside %g..%g", n, f->lo, f->hi);
		*(double *)at = n;
		return 0;
	}
	case HIVE_MT_BOOL:
		if (!json_is_boolean(v))
			return bad(err, errlen, key, "expected boolean, got %s",
				   hive_json_type_name(v));
		*(int *)at = json_is_true(v);
		return 0;
	case HIVE_MT_OBJ: {
		char inner[512];

		if (!json_is_object(v))
			return bad(err, errlen, key, "expected object, got %s",
				   hive_json_type_name(v));
		if (decode_obj(f->sub, v, at, inner, sizeof(inner)) < 0) {
			snprintf(err, errlen, "%s.%s", key, inner);
			return -1;
		}
		return 0;
	}
	case HIVE_MT_LIST: {
		size_t n, sz = elem_size(f);
		char *items;
		json_t *e;

		if (!json_is_array(v))
			return bad(err, errlen, key, "expected array, got %s",
				   hive_json_type_name(v));
		n = json_array_size(v);
		if (n > (size_t)f->hi)
			return bad(err, errlen, key, "more than %.0f values", f->hi);
		if (!(items = calloc(n ? n : 1, sz)))
			return bad(err, errlen, key, "out of memory");
		*(char **)at = items;
		for (size_t k = 0; k < n; k++) {
			char ekey[96];

			e = json_array_get(v, k);
			snprintf(ekey, sizeof(ekey), "%s[%zu]", key, k);
			if (f->elem == HIVE_MT_OBJ)
				init_obj(f->sub, items + k * sz);
			if (json_is_null(e) && f->elem == HIVE_MT_NUM) {
				((double *)items)[k] = NAN;
			} else if (json_is_null(e) ||
				   decode_value(f, f->elem, e, items + k * sz, base, ekey, err,
						errlen) < 0) {
				if (json_is_null(e))
					bad(err, errlen, ekey, "null");
				*(size_t *)(base + f->count_off) = k + (f->elem == HIVE_MT_OBJ);
				return -1;
			}
			*(size_t *)(base + f->count_off) = k + 1;
			if ((f->flags & HIVE_MF_UNIQUE) && f->elem == HIVE_MT_OBJ) {
				const char *me = *(const char **)(items + k * sz + f->sub->fields[0].off);

				for (size_t q = 0; me && q < k; q++) {
					const char *o = *(const char **)(items + q * sz +
									 f->sub->fields[0].off);

					if (o && strcmp(o, me) == 0)
						return bad(err, errlen, ekey, "%s \"%.64s\" listed twice",
							   f->sub->fields[0].key, me);
				}
			}
		}
		return 0;
	}
	case HIVE_MT_JSON: {
		char inner[256];

		if (f->check && f->check(v, inner, sizeof(inner)) < 0) {
			snprintf(err, errlen, "%s%s%s", key, inner[0] == '[' ? "" : ": ", inner);
			return -1;
		}
		*(json_t **)at = (json_t *)v;
		return 0;
	}
	}
	return bad(err, errlen, key, "unsupported type");
}

static int decode_obj(const struct hive_msg_schema *s, const json_t *j, void *p, char *err,
		      size_t errlen)
{
	init_obj(s, p);
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct hive_msg_field *f = &s->fields[i];
		const json_t *v = json_object_get(j, f->key);

		if (!v || json_is_null(v)) {
			if (f->flags & HIVE_MF_REQUIRED)
				return bad(err, errlen, f->key, "missing");
			continue;
		}
		if (decode_value(f, f->type, v, (char *)p + f->off, p, f->key, err, errlen) < 0)
			return -1;
	}
	return s->check ? s->check(p, err, errlen) : 0;
}

int hive_msg_decode(enum hive_msg_kind kind, const json_t *json, void *out, char *err,
		    size_t errlen)
{
	const struct hive_msg_topic *t = hive_msg_topic(kind);

	if (!t || !t->body) {
		snprintf(err, errlen, "no body schema for this message");
		return -1;
	}
	if (!json_is_object(json)) {
		snprintf(err, errlen, "body: expected object, got %s",
			 json ? hive_json_type_name(json) : "nothing");
		return -1;
	}
	if (decode_obj(t->body, json, out, err, errlen) < 0) {
		free_obj(t->body, out);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- doc */

static const char *type_name(const struct hive_msg_field *f, enum hive_msg_type t)
{
	switch (t) {
	case HIVE_MT_STR: return f->values ? "enum" : "string";
	case HIVE_MT_MAC: return "MAC";
	case HIVE_MT_IPV4: return "IPv4";
	case HIVE_MT_CIDR: return "CIDR";
	case HIVE_MT_INT: return "integer";
	case HIVE_MT_NUM: return "number";
	case HIVE_MT_BOOL: return "boolean";
	case HIVE_MT_OBJ: return "object";
	case HIVE_MT_LIST: return "list";
	case HIVE_MT_JSON: return "JSON";
	}
	return "?";
}

static void doc_limits(FILE *out, const struct hive_msg_field *f)
{
	if (f->values) {
		for (int i = 0; f->values[i]; i++)
			fprintf(out, "%s`%s`", i ? ", " : "", f->values[i]);
	} else if (f->type == HIVE_MT_LIST) {
		fprintf(out, "≤ %.0f", f->hi);
	} else if (f->type == HIVE_MT_STR) {
		fprintf(out, "≤ %.0f chars", f->hi);
	} else if ((f->type == HIVE_MT_INT || f->type == HIVE_MT_NUM) && (f->lo || f->hi)) {
		if (f->hi >= I_MAX)
			fprintf(out, "≥ %g", f->lo);
		else
			fprintf(out, "%g..%g", f->lo, f->hi);
	}
}

static void doc_rows(FILE *out, const struct hive_msg_schema *s, const char *prefix)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct hive_msg_field *f = &s->fields[i];
		char path[128];

		snprintf(path, sizeof(path), "%s%s%s", prefix, f->key,
			 f->type == HIVE_MT_LIST ? "[]" : "");
		fprintf(out, "| `%s` | %s", path, type_name(f, f->type));
		if (f->type == HIVE_MT_LIST)
			fprintf(out, " of %s", type_name(f, f->elem));
		fprintf(out, " | %s | %s | ", f->flags & HIVE_MF_REQUIRED ? "yes" : "",
			f->unit ? f->unit : "");
		doc_limits(out, f);
		fprintf(out, " | %s%s |\n", f->doc, f->flags & HIVE_MF_SECRET ? " (secret)" : "");
		if (f->sub && (f->type == HIVE_MT_OBJ || f->elem == HIVE_MT_OBJ)) {
			char sub[160];

			snprintf(sub, sizeof(sub), "%s.", path);
			doc_rows(out, f->sub, sub);
		}
	}
}

static void doc_roles(FILE *out, unsigned roles)
{
	static const char *const names[] = { "apid", "discoverd", "pollerd", "telemetryd" };
	bool first = true;

	for (unsigned i = 0; i < 4; i++) {
		if (roles & (1u << i)) {
			fprintf(out, "%s%s", first ? "" : ", ", names[i]);
			first = false;
		}
	}
}

void hive_msg_doc(FILE *out)
{
	static const char *const channels[] = {
		[HIVE_CH_EVENTS] = "event (bus.events)", [HIVE_CH_JOBS] = "job",
		[HIVE_CH_REQUEST] = "request", [HIVE_CH_REPLY] = "reply (to the request)",
		[HIVE_CH_FEED] = "feed (bus.feed)",
	};

	for (int k = 0; k < HIVE_MSG_KINDS; k++) {
		const struct hive_msg_topic *t = &topics[k];

		const char *where = channels[t->channel];

		/* discoverd has endpoints of its own (docs/bus.md, Roles). */
		if (t->channel == HIVE_CH_EVENTS && (t->senders & HIVE_ROLE_DISCOVERD))
			where = t->senders == HIVE_ROLE_DISCOVERD ? "event (bus.discovery_events)" :
				"event (bus.events; discoverd's on bus.discovery_events)";
		else if (t->channel == HIVE_CH_REQUEST)
			where = t->senders == HIVE_ROLE_DISCOVERD ? "request (bus.discovery_control)" :
				"request (bus.control, bus.discovery_control)";
		fprintf(out, "### `%s` — %s\n\n%s; sent by ", t->topic, where, t->doc);
		doc_roles(out, t->senders);
		fprintf(out, ".\n\n");
		if (!t->body)
			continue;
		if (t->body->n_fields == 0) {
			fprintf(out, "Body: `{}`.\n\n");
			continue;
		}
		fprintf(out, "| field | type | required | unit | limits | meaning |\n");
		fprintf(out, "| --- | --- | --- | --- | --- | --- |\n");
		doc_rows(out, t->body, "");
		fprintf(out, "\n");
	}
}
