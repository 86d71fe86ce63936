/* firmware — what a Vnish miner answers under /api/v1 (the contract is
 * /work/shared/firmware/vnish-api.md), and what the hosts that are not
 * miners answer.
 *
 * Small bodies are built with jansson. /chains and /boards (100+ KB, the
 * bulk of a fleet's traffic) are printed straight into a buffer, pretty
 * like the firmware prints them, without building a tree.
 */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FANS        SIM_FANS
#define FAN_MAX_RPM 6000
#define SENSORS     4

enum auth { AUTH_NONE, AUTH_KEY };

struct route {
	const char *path;        /* under /api/v1/ */
	int ep;
	const char *method;
	enum auth auth;
};

static const struct route routes[] = {
	{ "info", EP_INFO, "GET", AUTH_NONE },
	{ "model", EP_MODEL, "GET", AUTH_NONE },
	{ "status", EP_STATUS, "GET", AUTH_NONE },
	{ "summary", EP_SUMMARY, "GET", AUTH_KEY },
	{ "perf-summary", EP_PERF, "GET", AUTH_NONE },
	{ "chains", EP_CHAINS, "GET", AUTH_NONE },
	{ "boards", EP_BOARDS, "GET", AUTH_NONE },
	{ "autotune/presets", EP_PRESETS, "GET", AUTH_KEY },
	{ "settings", EP_SETTINGS, "POST", AUTH_KEY },
	{ "unlock", EP_UNLOCK, "POST", AUTH_NONE },
	{ "apikeys", EP_APIKEYS, NULL, AUTH_KEY },          /* GET and POST */
	{ "apikeys/delete", EP_APIKEYS_DELETE, "POST", AUTH_KEY },
	{ "mining/restart", EP_RESTART, "POST", AUTH_KEY },
	{ "mining/stop", EP_STOP, "POST", AUTH_KEY },
	{ "mining/start", EP_START, "POST", AUTH_KEY },
	{ "mining/pause", EP_PAUSE, "POST", AUTH_KEY },
	{ "mining/resume", EP_RESUME, "POST", AUTH_KEY },
	{ "system/reboot", EP_REBOOT, "POST", AUTH_KEY },
};

/* ---------------------------------------------------------------- helpers */

static double round2(double v)
{
	return round(v * 100.0) / 100.0;
}

static const struct route *route_find(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	return NULL;
}

static bool authorized(const struct miner *m, const struct sim_req *rq, int64_t now)
{
	return (rq->has_api_key && sim_miner_key_ok(m, rq->api_key)) ||
	       (rq->has_bearer && sim_miner_token_ok(m, rq->bearer, now));
}

/* Body as a JSON object, or NULL (then rs holds a 400). */
static json_t *body_object(const struct sim_req *rq, struct sim_resp *rs)
{
	json_t *j = rq->body_len ? json_loadb(rq->body, rq->body_len, 0, NULL) : NULL;

	if (!json_is_object(j)) {
		json_decref(j);
		sim_resp_err(rs, 400, "err", "Invalid JSON");
		return NULL;
	}
	return j;
}

static bool is_key_format(const char *s)
{
	size_t n = strlen(s);

	if (n != SIM_KEY_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool running(const struct miner *m)
{
	return m->phase == PH_MINING || m->phase == PH_AUTOTUNING;
}

static bool chain_dead(const struct miner *m, int chain)
{
	return m->hw && m->hw->chain == chain;
}

/* A dead board: the firmware finds no chips on it and marks it failed. */
static const char *chain_state(const struct miner *m, int chain)
{
	if (chain_dead(m, chain))
		return "failure";
	switch (m->phase) {
	case PH_MINING:
	case PH_AUTOTUNING:
		return "mining";
	case PH_STOPPED:
		return "stopped";
	default:
		return "initializing";
	}
}

/* Chip quality is fixed per chip: most grey (healthy), a few orange
 * (slow), rare red (nearly dead). */
static double chip_weight(const struct miner *m, int chain, int chip, char *grade)
{
	double u = sim_unit(sim_hash3(m->seed, (uint64_t)chain << 16 | (uint64_t)chip, 0xc41));
	double v = sim_unit(sim_hash3(m->seed, (uint64_t)chain << 16 | (uint64_t)chip, 0xc42));

	if (u < 0.008 || (m->hw && m->hw->red_chain == chain && chip <= m->hw->red)) {
		*grade = 'r';
		return 0.2 + 0.3 * v;
	}
	if (u < 0.05) {
		*grade = 'o';
		return 0.75 + 0.15 * v;
	}
	*grade = 'g';
	return 0.96 + 0.08 * v;
}

static const char *grade_name(char g)
{
	return g == 'r' ? "red" : g == 'o' ? "orange" : "grey";
}

struct chain_figures {
	double hr, ideal, power, chip_min, chip_max, pcb_min, pcb_max;
	int red, orange, grey;
	long long hw_errors;
};

/* The hw_errors fault's errors spread evenly over the boards that hash. */
static long long chain_hw_share(const struct miner *m, int chain, int64_t now)
{
	const struct sim_model *md = sim_miner_model(m);
	long long total = (long long)sim_hw_errors(m, now);
	int dead = m->hw ? m->hw->chain : 0;
	int n = md->chains - (dead ? 1 : 0), k = chain - 1 - (dead && dead < chain ? 1 : 0);

	if (total <= 0 || n <= 0)
		return 0;
	return total * (k + 1) / n - total * k / n;
}

static void chain_figures(const struct miner *m, int chain, int64_t now, struct chain_figures *f)
{
	const struct sim_model *md = sim_miner_model(m);
	double top = sim_miner_chip_temp(m, now) + 1.5 * sim_miner_noise(m, now, 40 + (uint64_t)chain);
	/* the firmware's counters count from the mining process's start */
	uint64_t run = sim_miner_run_s(m, now), red_run = sim_hw_red_s(m, now);
	int red_fault = 0;

	memset(f, 0, sizeof(*f));
	f->ideal = sim_miner_nominal_gh(m) / md->chains;
	if (chain_dead(m, chain))
		return;            /* no chips found: nothing hashes, nothing reads */
	/* sim_miner_hashrate already left the dead board out */
	f->hr = sim_miner_hashrate(m, now) / (md->chains - (m->hw && m->hw->chain ? 1 : 0)) *
		(1.0 + 0.01 * sim_miner_noise(m, now, 20 + (uint64_t)chain));
	f->power = m->metered ? sim_miner_power(m, now) / md->chains : 0;
	f->chip_max = top;
	f->chip_min = top - 9.0 - 2.0 * sim_unit(sim_hash3(m->seed, (uint64_t)chain, 0xc43));
	f->pcb_max = top - 12.0;
	f->pcb_min = f->chip_min - 12.0;
	for (int c = 1; c <= md->chips; c++) {
		char g;
		chip_weight(m, chain, c, &g);
		if (g == 'r')
			f->red++;
		else if (g == 'o')
			f->orange++;
		else
			f->grey++;
		if (g == 'r' && m->hw && m->hw->red_chain == chain && c <= m->hw->red)
			red_fault++;   /* red since the fault: erring since then */
	}
	f->hw_errors = running(m) ? (long long)(run / 97 + (uint64_t)(f->red - red_fault) * (run / 600) +
						(uint64_t)red_fault * (red_run / 600)) +
				    chain_hw_share(m, chain, now) : 0;
}

/* ---------------------------------------------------------------- a growing buffer */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 65536;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* ---------------------------------------------------------------- endpoints */

static void ep_info(struct miner *m, int64_t now, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	uint32_t mask = ~0u << (32 - sim_opts.prefix);
	char mac[18], ip[16], nm[16], gw[16], up[32], host[32], uuid[40], build[64];
	uint64_t h = sim_mix((uint64_t)m->fw * 7919 + m->model);
	int mem_total = m->platform == 1 ? 1011712 : 245760;
	int free_pct = 35 + (int)(10 * sim_unit(sim_hash3(m->seed, (uint64_t)(now / 60000), 9)));
	int buf_pct = 4 + (int)(m->seed % 5);
	json_t *j;

	snprintf(uuid, sizeof(uuid), "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(h >> 32),
		 (unsigned)(h >> 16) & 0xffff, (unsigned)(h >> 4) & 0xfff, (unsigned)h & 0xfff,
		 (unsigned long long)(sim_mix(h) & 0xffffffffffffULL));
	snprintf(build, sizeof(build), "%s-%s-%s", md->code, sim_miner_platform(m),
		 sim_miner_fw_version(m));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
		      "s:{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s, "
		      "s:{s:s, s:b, s:s, s:s, s:s, s:[s], s:s}}}",
		      "miner", md->name, "model", md->code, "fw_name", "Vnish",
		      "fw_version", sim_miner_fw_version(m), "build_uuid", uuid,
		      "build_name", build, "build_time", m->fw ? "2024-03-18 10:12:41" :
		      "2023-09-04 14:55:07", "platform", sim_miner_platform(m),
		      "install_type", m->seed % 10 == 0 ? "sd" : "nand", "algorithm", "sha256d",
		      "hr_measure", "GH/s", "serial", m->serial,
		      "system",
		      "os", "GNU/Linux", "miner_name", md->name,
		      "file_system_version", m->fw ? "Vnish 1.3.2 (2024-03)" : "Vnish 1.2.6 (2023-09)",
		      "mem_total", mem_total, "mem_free", mem_total / 100 * free_pct,
		      "mem_free_percent", free_pct, "mem_buf", mem_total / 100 * buf_pct,
		      "mem_buf_percent", buf_pct,
		      "uptime", sim_uptime_str(sim_miner_uptime_s(m, now), up, sizeof(up)),
		      "network_status",
		      "mac", sim_miner_mac(m, mac), "dhcp", 1, "ip", hive_ipv4_format(m->ip, ip),
		      "netmask", hive_ipv4_format(mask, nm),
		      "gateway", hive_ipv4_format(sim_opts.net + 1, gw),
		      "dns", gw, "hostname", sim_miner_hostname(m, host));
	sim_resp_json(rs, 200, j);
}

static void ep_model(struct miner *m, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	json_t *chips = json_array(), *j;

	for (int r = 0; r < md->rows; r++) {
		json_t *row = json_array();
		for (int c = 0; c < md->cols; c++)
			json_array_append_new(row, json_integer(sim_model_topo_chip(md, r, c)));
		json_array_append_new(chips, row);
	}
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
		      "s:{s:i, s:i, s:i, s:{s:i, s:i, s:o}}, "
		      "s:{s:i, s:i, s:i, s:{s:i, s:i, s:i}}, "
		      "s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}}",
		      "full_name", md->name, "model", md->code, "algorithm", "sha256d",
		      "series", md->series, "platform", sim_miner_platform(m),
		      "install_type", m->seed % 10 == 0 ? "sd" : "nand", "hr_measure", "GH/s",
		      "serial", m->serial,
		      "chain", "num_chains", md->chains, "chips_per_chain", md->chips,
		      "chips_per_domain", md->chips_per_domain,
		      "topology", "num_rows", md->rows, "num_cols", md->cols, "chips", chips,
		      "cooling", "min_fan_pwm", 10, "min_target_temp", 40, "max_target_temp", 90,
		      "fan_min_count", "min", 0, "max", FANS, "default", FANS,
		      "overclock", "min_voltage", md->min_volt, "max_voltage", md->max_volt,
		      "default_voltage", md->stock_volt, "max_voltage_stock_psu",
		      md->max_volt_stock_psu, "min_freq", md->min_freq, "max_freq", md->max_freq,
		      "default_freq", md->stock_freq, "warn_freq", md->warn_freq);
	sim_resp_json(rs, 200, j);
}

static void ep_status(struct miner *m, int64_t now, struct sim_resp *rs)
{
	json_t *j = json_pack("{s:s, s:I, s:b, s:b, s:b, s:b}",
			      "miner_state", sim_miner_state(m),
			      "miner_state_time", (json_int_t)sim_miner_state_secs(m, now),
			      "find_miner", 0, "restart_required", sim_miner_restart_required(m),
			      "reboot_required", 0,
			      "unlocked", sim_miner_unlocked(m, now));

	if (m->paused)
		json_object_set_new(j, "description", json_string("paused"));
	sim_resp_json(rs, 200, j);
}

static json_t *pools_json(const struct miner *m, int64_t now)
{
	uint64_t up = sim_miner_uptime_s(m, now);
	bool on = running(m);
	long long acc = (long long)(up / 4), rej = acc / 700, stale = acc / 2500;
	char user[64], host[32], ls[16];
	json_t *a;

	snprintf(user, sizeof(user), "farm.%s", sim_miner_hostname(m, host));
	snprintf(ls, sizeof(ls), "0:00:%02d", (int)(now / 1000 % 7));
	a = json_pack("[{s:i, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:i},"
		      " {s:i, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:i},"
		      " {s:i, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:i}]",
		      "id", 1, "url", "stratum+tcp://pool.invalid:3333", "pool_type", "UserPool",
		      "user", user, "status", on ? "active" : "offline", "asic_boost", 1,
		      "diff", "131K", "accepted", (json_int_t)acc, "rejected", (json_int_t)rej,
		      "stale", (json_int_t)stale, "ls_diff", (json_int_t)131072, "ls_time", ls,
		      "diffa", (json_int_t)(acc * 131072), "ping", 18 + (int)(m->seed % 30),
		      "id", 2, "url", "stratum+tcp://backup.pool.invalid:3333",
		      "pool_type", "UserPool", "user", user, "status", on ? "working" : "offline",
		      "asic_boost", 1, "diff", "0", "accepted", (json_int_t)0,
		      "rejected", (json_int_t)0, "stale", (json_int_t)0, "ls_diff", (json_int_t)0,
		      "ls_time", "0", "diffa", (json_int_t)0, "ping", 41,
		      "id", 3, "url", "stratum+tcp://devfee.pool.invalid:3333",
		      "pool_type", "DevFee", "user", "devfee", "status", on ? "working" : "offline",
		      "asic_boost", 1, "diff", "65.5K", "accepted", (json_int_t)(acc / 40),
		      "rejected", (json_int_t)0, "stale", (json_int_t)0,
		      "ls_diff", (json_int_t)65536, "ls_time", ls,
		      "diffa", (json_int_t)(acc / 40 * 65536), "ping", 37);
	return a;
}

static void ep_summary(struct miner *m, int64_t now, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	double hr = sim_miner_hashrate(m, now), w = sim_miner_power(m, now);
	double avg = hr * (1.0 + 0.005 * sim_miner_noise(m, now, 5));
	double chip_top = sim_miner_chip_temp(m, now);
	int pw = m->metered ? (int)lround(w) : 0, duty = sim_miner_fan_duty(m, now);
	long long hw = 0;
	json_t *chains = json_array(), *fans = json_array(), *j, *miner, *status;
	char type[64];

	for (int c = 1; c <= md->chains; c++) {
		struct chain_figures f;
		json_t *cj;

		chain_figures(m, c, now, &f);
		hw += f.hw_errors;
		cj = json_pack("{s:i, s:f, s:i, s:i, s:f, s:f, s:f, s:f, s:I, "
			       "s:{s:i, s:i}, s:{s:i, s:i}, s:{s:i, s:i, s:i}, s:{s:s}}",
			       "id", c,
			       "frequency", running(m) ? (double)sim_preset_freq(md, m->preset) : 0.0,
			       "voltage", running(m) ? sim_preset_volt(md, m->preset) : 0,
			       "power_consumption", (int)lround(f.power),
			       "hashrate_ideal", round2(f.ideal), "hashrate_rt", round2(f.hr),
			       "hashrate_percentage", f.ideal > 0 ? round2(f.hr / f.ideal * 100) : 0.0,
			       "hr_error", running(m) ? round2(0.1 + 0.05 * sim_miner_noise(m, now, 60)) : 0.0,
			       "hw_errors", (json_int_t)f.hw_errors,
			       "pcb_temp", "min", (int)lround(f.pcb_min), "max", (int)lround(f.pcb_max),
			       "chip_temp", "min", (int)lround(f.chip_min), "max", (int)lround(f.chip_max),
			       "chip_statuses", "red", f.red, "orange", f.orange, "grey", f.grey,
			       "status", "state", chain_state(m, c));
		if (chain_dead(m, c))
			json_object_set_new(json_object_get(cj, "status"), "description",
					    json_string("no chips found"));
		json_array_append_new(chains, cj);
	}
	for (int i = 1; i <= FANS; i++) {
		bool stopped = m->hw && m->hw->fan == i;

		json_array_append_new(fans, json_pack("{s:i, s:i, s:i, s:s}", "id", i,
			"rpm", stopped ? 0 : (int)lround(FAN_MAX_RPM * duty / 100.0 *
				(1.0 + 0.02 * sim_miner_noise(m, now, 70 + (uint64_t)i))),
			"max_rpm", FAN_MAX_RPM, "status", stopped ? "lost" : "ok"));
	}
	snprintf(type, sizeof(type), "%s (Vnish %s)", md->name, sim_miner_fw_version(m));
	status = json_pack("{s:s, s:I}", "miner_state", sim_miner_state(m),
			   "miner_state_time", (json_int_t)sim_miner_state_secs(m, now));
	if (m->paused)
		json_object_set_new(status, "description", json_string("paused"));
	miner = json_pack("{s:o, s:s, s:f, s:f, s:f, s:f, s:f, s:f, "
			  "s:{s:i, s:i}, s:{s:i, s:i}, s:i, s:i, s:f, "
			  "s:I, s:f, s:f, s:I, s:f, s:i, s:s, s:o, "
			  "s:{s:i, s:i, s:o, s:{s:{s:s}}}, s:o, "
			  "s:{s:{s:i, s:i, s:i}, s:b}}",
			  "miner_status", status, "miner_type", type,
			  "hr_realtime", round2(hr), "hr_average", round2(avg),
			  "hr_nominal", round2(sim_miner_nominal_gh(m)),
			  "hr_stock", round2(md->stock_th * 1000.0),
			  "instant_hashrate", round2(hr / 1000.0), "average_hashrate", round2(avg / 1000.0),
			  "pcb_temp", "min", (int)lround(chip_top - 23), "max", (int)lround(chip_top - 12),
			  "chip_temp", "min", (int)lround(chip_top - 11), "max", (int)lround(chip_top),
			  "power_consumption", pw, "power_usage", pw,
			  "power_efficiency", pw && hr > 0 ? round2(pw / (hr / 1000.0)) : 0.0,
			  "hw_errors", (json_int_t)hw,
			  "hw_errors_percent", running(m) ? 0.01 : 0.0,
			  "hr_error", running(m) ? 0.12 : 0.0,
			  "devfee", (json_int_t)(sim_miner_uptime_s(m, now) / 40), "devfee_percent", 2.5,
			  "found_blocks", 0, "best_share", "4.29G",
			  "pools", pools_json(m, now),
			  "cooling", "fan_num", FANS, "fan_duty", duty, "fans", fans,
			  "settings", "mode", "name", "auto",
			  "chains", chains,
			  "psu", "temps", "llc1_temp", (int)lround(chip_top - 20),
			  "llc2_temp", (int)lround(chip_top - 21), "pfc_temp", (int)lround(chip_top - 18),
			  "psu_power_metering", m->metered);
	j = json_pack("{s:o}", "miner", miner);
	sim_resp_json(rs, 200, j);
}

static json_t *preset_json(const struct miner *m, int p, bool full)
{
	const struct sim_model *md = sim_miner_model(m);
	char name[16], pretty[48];
	bool tuned = m->tuned & (1u << p);
	json_t *j;

	sim_preset_name(md, p, name, sizeof(name));
	if (p == 0)
		snprintf(pretty, sizeof(pretty), "disabled");
	else
		snprintf(pretty, sizeof(pretty), "%d watt ~ %d TH", md->ladder[p - 1].watts,
			 md->ladder[p - 1].th);
	j = json_pack("{s:s, s:s, s:s, s:b}", "name", name, "pretty", pretty,
		      "status", tuned ? "tuned" : "untuned",
		      "modded_psu_required", sim_preset_watts(md, p) > md->modded_psu_w && p > 0);
	if (full && p > 0 && tuned) {
		/* what autotune found per chip: large, and clients ignore it */
		json_t *ts = json_pack("{s:{s:i, s:i}, s:[]}", "globals",
				       "volt", sim_preset_volt(md, p), "freq", sim_preset_freq(md, p),
				       "chains");
		json_t *arr = json_object_get(ts, "chains");
		for (int c = 1; c <= md->chains; c++) {
			json_t *f = json_array();
			for (int i = 1; i <= md->chips; i++)
				json_array_append_new(f, json_integer(sim_preset_freq(md, p) +
					(int)(sim_hash3(m->seed, (uint64_t)(c * 1000 + i), (uint64_t)p) % 41) - 20));
			json_array_append_new(arr, json_pack("{s:i, s:o}", "id", c, "freqs", f));
		}
		json_object_set_new(j, "tune_settings", ts);
	}
	return j;
}

static void ep_perf(struct miner *m, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	const struct sim_ctl *c = m->ctl;
	char lowest[16], top[16];
	json_t *cur, *j;

	/* newer firmware sends null while no autotune preset runs */
	if (m->preset == 0 && m->fw) {
		cur = json_null();
	} else {
		cur = preset_json(m, m->preset, false);
		json_object_set_new(cur, "globals", json_pack("{s:i, s:i}",
				    "volt", sim_preset_volt(md, m->preset),
				    "freq", sim_preset_freq(md, m->preset)));
		if (m->tuning)
			json_object_set_new(cur, "status", json_string("untuned"));
	}
	/* the firmware's own preset switcher (off unless the admin API set it) */
	j = json_pack("{s:o, s:{s:b, s:o, s:s, s:i, s:i, s:i, s:b, s:b, s:i}}",
		      "current_preset", cur,
		      "preset_switcher", "enabled", c && c->switcher,
		      "top_preset", c && c->top ? json_string(sim_preset_name(md, c->top, top,
									     sizeof(top))) : json_null(),
		      "min_preset", sim_preset_name(md, c ? c->min : 1, lowest, sizeof(lowest)),
		      "decrease_temp", 5, "rise_temp", 5, "check_time", c ? c->check_s : 60,
		      "autochange_top_preset", 0, "ignore_fan_speed", 0, "power_delta", 100);
	sim_resp_json(rs, 200, j);
}

static void ep_presets(struct miner *m, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	json_t *a = json_array();

	json_array_append_new(a, preset_json(m, 0, true));
	for (int i = 0; i < md->nladder; i++)
		json_array_append_new(a, preset_json(m, md->order[i] + 1, true));
	sim_resp_json(rs, 200, a);
}

/* /chains (array of chains) and /boards (array of boards, firmware 1.3.x):
 * the same chip records. Shortly after boot every chip reads zero. */
static void ep_chains(struct miner *m, int64_t now, bool boards, struct sim_resp *rs)
{
	const struct sim_model *md = sim_miner_model(m);
	bool zeros = !running(m);
	int freq = sim_preset_freq(md, m->preset);
	int volt = sim_preset_volt(md, m->preset) / (md->chips / md->chips_per_domain);
	struct sbuf b = { 0 };

	sb_printf(&b, "[\n");
	for (int c = 1; c <= md->chains; c++) {
		struct chain_figures f;
		double wsum = 0, w[256];
		char g[256];

		chain_figures(m, c, now, &f);
		for (int i = 1; i <= md->chips && i < 256; i++)
			wsum += w[i] = chip_weight(m, c, i, &g[i]);
		sb_printf(&b, "    {\n        \"id\": %d,\n", c);
		if (boards)
			sb_printf(&b, "        \"serial\": \"%.8s%02d\",\n", m->serial, c);
		if (chain_dead(m, c)) {
			sb_printf(&b, "        \"status\": {\n            \"state\": \"failure\",\n"
				  "            \"failure_message\": \"find 0 asic, expected %d\"\n"
				  "        },\n        \"hr_realtime\": 0.0,\n"
				  "        \"hr_nominal\": %.2f,\n        \"freq\": 0.0,\n"
				  "        \"sensors\": [],\n        \"chips\": []\n    }%s\n",
				  md->chips, f.ideal, c < md->chains ? "," : "");
			continue;
		}
		sb_printf(&b, "        \"status\": {\n            \"state\": \"%s\"\n        },\n"
			  "        \"hr_realtime\": %.2f,\n        \"hr_nominal\": %.2f,\n"
			  "        \"freq\": %.1f,\n        \"sensors\": [\n",
			  chain_state(m, c), zeros ? 0.0 : f.hr, f.ideal, zeros ? 0.0 : (double)freq);
		for (int s = 0; s < SENSORS; s++)
			sb_printf(&b, "            {\n                \"state\": \"measure\",\n"
				  "                \"board\": %d,\n                \"chip\": %d,\n"
				  "                \"loc\": %d\n            }%s\n",
				  (int)lround(f.pcb_min + (f.pcb_max - f.pcb_min) * s / 3.0),
				  (int)lround(f.chip_min + (f.chip_max - f.chip_min) * s / 3.0), s,
				  s + 1 < SENSORS ? "," : "");
		sb_printf(&b, "        ],\n        \"chips\": [\n");
		for (int i = 1; i <= md->chips && i < 256; i++) {
			/* chips nearer the outlet run hotter */
			double pos = (double)((i - 1) % md->cols) / (md->cols - 1);
			double temp = f.chip_min + (f.chip_max - f.chip_min) * pos +
				      0.8 * sim_miner_noise(m, now, 1000 + (uint64_t)(c * 256 + i));
			double hr = f.hr * w[i] / wsum;
			int cf = freq + (int)(sim_hash3(m->seed, (uint64_t)(c * 1000 + i),
						      m->preset) % 41) - 20;
			int errs = (int)(f.hw_errors / md->chips) + (g[i] == 'r' ? 40 : g[i] == 'o' ? 6 : 0);

			if (zeros)
				sb_printf(&b, "            {\n                \"id\": %d,\n"
					  "                \"hr\": 0.0,\n                \"hr_nominal\": 0.0,\n"
					  "                \"freq\": 0,\n                \"volt\": 0,\n"
					  "                \"temp\": 0.0,\n                \"errs\": 0,\n"
					  "                \"grade\": \"%s\",\n"
					  "                \"throttled\": false\n            }%s\n",
					  i, grade_name(g[i]), i < md->chips ? "," : "");
			else
				sb_printf(&b, "            {\n                \"id\": %d,\n"
					  "                \"hr\": %.2f,\n                \"hr_nominal\": %.2f,\n"
					  "                \"freq\": %d,\n                \"volt\": %d,\n"
					  "                \"temp\": %.1f,\n                \"errs\": %d,\n"
					  "                \"grade\": \"%s\",\n"
					  "                \"throttled\": %s\n            }%s\n",
					  i, hr, f.ideal / md->chips, cf, volt, temp, errs,
					  grade_name(g[i]), temp > 88.0 ? "true" : "false",
					  i < md->chips ? "," : "");
		}
		sb_printf(&b, "        ]\n    }%s\n", c < md->chains ? "," : "");
	}
	sb_printf(&b, "]\n");
	if (b.oom) {
		free(b.p);
		sim_resp_err(rs, 500, "err", "out of memory");
		return;
	}
	sim_resp_take(rs, 200, b.p, b.len);
}

static void ep_unlock(struct miner *m, const struct sim_req *rq, int64_t now,
		      struct sim_resp *rs)
{
	char tok[SIM_KEY_LEN + 1], mac[18];
	const char *pw;
	json_t *body;

	m->unlock_attempts++;
	if (now < m->locked_until) {
		sim_resp_err(rs, 429, "err", "Too many attempts, try again later");
		return;
	}
	if (!(body = body_object(rq, rs)))
		return;
	pw = json_string_value(json_object_get(body, "pw"));
	if (!pw) {
		json_decref(body);
		sim_resp_err(rs, 400, "err", "Missing pw");
		return;
	}
	if (strcmp(pw, sim_miner_password(m)) != 0) {
		m->unlock_failures++;
		if (now - m->window_start > (int64_t)sim_opts.lockout_s * 1000 ||
		    m->unlock_fails_window == 0) {
			m->window_start = now;
			m->unlock_fails_window = 0;
		}
		if (m->unlock_fails_window < 255)
			m->unlock_fails_window++;
		if (m->unlock_fails_window >= sim_opts.unlock_limit) {
			m->locked_until = now + (int64_t)sim_opts.lockout_s * 1000;
			m->unlock_fails_window = 0;
			sim_log("unlock_locked mac=%s failures=%u", sim_miner_mac(m, mac),
				m->unlock_failures);
		}
		json_decref(body);
		sim_resp_err(rs, 403, "err", "Wrong password");
		return;
	}
	json_decref(body);
	m->unlock_fails_window = 0;
	if (sim_miner_new_token(m, now, tok) < 0) {
		sim_resp_err(rs, 500, "err", "out of memory");
		return;
	}
	sim_resp_json(rs, 200, json_pack("{s:s}", "token", tok));
}

static void ep_apikeys_list(struct miner *m, struct sim_resp *rs)
{
	json_t *a = json_array();

	for (int i = 0; i < sim_miner_nkeys(m); i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "key", m->creds->keys[i].key,
						   "description", m->creds->keys[i].desc));
	sim_resp_json(rs, 200, a);
}

static void ep_apikeys_add(struct miner *m, const struct sim_req *rq, struct sim_resp *rs)
{
	json_t *body = body_object(rq, rs), *jd;
	const char *key, *desc = "";

	if (!body)
		return;
	key = json_string_value(json_object_get(body, "key"));
	jd = json_object_get(body, "description");
	if (!key || !is_key_format(key)) {
		sim_resp_err(rs, 422, "err", "Wrong apikey format");
		goto out;
	}
	if (jd && !json_is_null(jd)) {
		desc = json_string_value(jd);
		if (!desc || strlen(desc) > SIM_DESC_LEN) {
			sim_resp_err(rs, 422, "err", "Wrong description");
			goto out;
		}
	}
	if (sim_miner_add_key(m, key, desc) < 0) {
		if (errno == ENOSPC)
			sim_resp_err(rs, 400, "err", "Too many apikeys");
		else
			sim_resp_err(rs, 500, "err", "out of memory");
		goto out;
	}
	sim_resp_json(rs, 200, json_pack("{s:s}", "status", "inserted"));
out:
	json_decref(body);
}

static void ep_apikeys_delete(struct miner *m, const struct sim_req *rq, struct sim_resp *rs)
{
	json_t *body = body_object(rq, rs);
	const char *key;
	struct sim_creds *c = m->creds;

	if (!body)
		return;
	key = json_string_value(json_object_get(body, "key"));
	if (!key) {
		sim_resp_err(rs, 400, "err", "Missing key");
		goto out;
	}
	for (int i = 0; c && i < c->nkeys; i++) {
		if (strcmp(c->keys[i].key, key) != 0)
			continue;
		c->keys[i] = c->keys[--c->nkeys];
		sim_resp_json(rs, 200, json_pack("{s:s}", "status", "deleted"));
		goto out;
	}
	sim_resp_err(rs, 404, "err", "Key not found");
out:
	json_decref(body);
}

/* POST /settings: PowerHive only sends the preset. What the reply says and
 * when the preset runs depend on the firmware (enum sim_apply). */
static void ep_settings(struct miner *m, const struct sim_req *rq, int64_t now,
			struct sim_resp *rs)
{
	json_t *body = body_object(rq, rs), *jp;
	const struct sim_model *md = sim_miner_model(m);
	bool restart = false;
	char mac[18], from[16], to[16];

	if (!body)
		return;
	jp = json_object_get(json_object_get(json_object_get(body, "miner"), "overclock"),
			     "preset");
	if (jp) {
		const char *name = json_string_value(jp);
		int p = name ? sim_preset_find(md, name) : -1;

		if (p < 0) {
			sim_resp_err(rs, 400, "err", "Unknown preset");
			goto out;
		}
		if (sim_miner_settings(m, p, now, &restart) < 0) {
			sim_resp_err(rs, 500, "err", "out of memory");
			goto out;
		}
		sim_log("settings mac=%s preset=%s running=%s apply=%s restart_required=%d",
			sim_miner_mac(m, mac), sim_preset_name(md, p, to, sizeof(to)),
			sim_preset_name(md, m->preset, from, sizeof(from)),
			sim_apply_name(sim_miner_apply_mode(m)), restart);
	}
	sim_resp_json(rs, 200, json_pack("{s:b, s:b}", "reboot_required", 0,
					 "restart_required", restart));
out:
	json_decref(body);
}

static void web_ui(const struct sim_req *rq, struct sim_resp *rs)
{
	if (strcmp(rq->path, "/") == 0 || strcmp(rq->path, "/index.html") == 0)
		sim_resp_text(rs, 200, "text/html",
			      "<!DOCTYPE html><html><head><title>Vnish</title></head>"
			      "<body><div id=\"app\"></div></body></html>\n");
	else
		sim_resp_text(rs, 404, "text/html", "<html><body>404 Not Found</body></html>\n");
}

void sim_fw_handle(struct miner *m, const struct sim_req *rq, struct sim_resp *rs)
{
	int64_t now = sim_now_ms();
	const struct route *r;
	bool faulty;
	int ep;

	sim_miner_update(m, now);
	m->requests++;
	if (strncmp(rq->path, "/api/v1/", 8) != 0) {
		web_ui(rq, rs);
		return;
	}
	r = route_find(rq->path + 8);
	/* firmware 1.3.x has /boards in place of /chains */
	if (r && ((r->ep == EP_CHAINS && m->fw) || (r->ep == EP_BOARDS && !m->fw)))
		r = NULL;
	ep = r ? r->ep : EP_OTHER;
	faulty = m->fault > FAULT_OFFLINE && (m->fault_eps & (1u << ep));
	if (sim_opts.verbose) {
		char mac[18];
		sim_debug("request mac=%s method=%s path=%s fault=%s", sim_miner_mac(m, mac),
			  rq->method, rq->path, faulty ? sim_fault_name(m->fault) : "none");
	}
	if (faulty && m->fault == FAULT_HTTP500) {
		sim_resp_err(rs, 500, "err", "Internal server error");
		return;
	}
	if (!r) {
		sim_resp_err(rs, 404, "err", "Not found");
	} else if (r->method && strcmp(rq->method, r->method) != 0) {
		sim_resp_err(rs, 405, "err", "Method not allowed");
	} else if (!r->method && strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0) {
		sim_resp_err(rs, 405, "err", "Method not allowed");
	} else if (r->auth == AUTH_KEY && !authorized(m, rq, now)) {
		sim_resp_err(rs, 401, "err", "Unauthorized");
	} else {
		/* ground truth: control calls the firmware handled */
		struct sim_ctl *c = ep == EP_SETTINGS || (ep >= EP_RESTART && ep <= EP_REBOOT) ?
				    sim_miner_ctl(m) : NULL;
		uint32_t dummy, *ctr = &dummy;

		if (c)
			ctr = ep == EP_SETTINGS ? &c->settings_calls : ep == EP_RESTART ? &c->restarts :
			      ep == EP_STOP ? &c->stops : ep == EP_START ? &c->starts :
			      ep == EP_PAUSE ? &c->pauses : ep == EP_RESUME ? &c->resumes :
			      &c->reboots;
		(*ctr)++;
		if (ep >= EP_RESTART && ep < EP_REBOOT) {
			char mac[18];
			sim_log("mining mac=%s action=%s state=%s", sim_miner_mac(m, mac),
				sim_ep_name(ep), sim_miner_state(m));
		}
		switch (ep) {
		case EP_INFO: ep_info(m, now, rs); break;
		case EP_MODEL: ep_model(m, rs); break;
		case EP_STATUS: ep_status(m, now, rs); break;
		case EP_SUMMARY: ep_summary(m, now, rs); break;
		case EP_PERF: ep_perf(m, rs); break;
		case EP_CHAINS: ep_chains(m, now, false, rs); break;
		case EP_BOARDS: ep_chains(m, now, true, rs); break;
		case EP_PRESETS: ep_presets(m, rs); break;
		case EP_SETTINGS: ep_settings(m, rq, now, rs); break;
		case EP_UNLOCK: ep_unlock(m, rq, now, rs); break;
		case EP_APIKEYS:
			if (strcmp(rq->method, "GET") == 0)
				ep_apikeys_list(m, rs);
			else
				ep_apikeys_add(m, rq, rs);
			break;
		case EP_APIKEYS_DELETE: ep_apikeys_delete(m, rq, rs); break;
		case EP_RESTART:
			sim_miner_restart(m, now);
			sim_resp_take(rs, 200, NULL, 0);
			break;
		case EP_STOP:
			sim_miner_stop(m, now);
			sim_resp_take(rs, 200, NULL, 0);
			break;
		case EP_PAUSE:
			sim_miner_pause(m, now);
			sim_resp_take(rs, 200, NULL, 0);
			break;
		case EP_START:
			sim_miner_start(m, now);
			sim_resp_take(rs, 200, NULL, 0);
			break;
		case EP_RESUME:
			sim_miner_resume(m, now);
			sim_resp_take(rs, 200, NULL, 0);
			break;
		case EP_REBOOT: {
			char mac[18];
			sim_log("reboot mac=%s gone_s=%d", sim_miner_mac(m, mac), sim_opts.reboot_s);
			sim_resp_json(rs, 200, json_pack("{s:i}", "after", 0));
			/* closes the listener: the answer still goes out */
			sim_miner_reboot(m, now);
			break;
		}
		}
	}
	if (faulty)
		sim_fault_apply(m, ep, rs);
}

/* ---------------------------------------------------------------- non-miners */

static const char *const host_kind_names[HOST_KINDS] = {
	[HOST_CLOSED] = "closed",
	[HOST_ROUTER] = "router",
	[HOST_STOCK_404] = "stock_404",
	[HOST_STOCK_HTML] = "stock_html",
};

const char *sim_host_kind_name(int kind)
{
	return kind >= 0 && kind < HOST_KINDS ? host_kind_names[kind] : "unknown";
}

void sim_host_handle(struct sim_host *h, const struct sim_req *rq, struct sim_resp *rs)
{
	bool root = strcmp(rq->path, "/") == 0;

	h->requests++;
	switch (h->kind) {
	case HOST_ROUTER:
		if (root)
			sim_resp_text(rs, 200, "text/html",
				      "<!DOCTYPE html><html><head><title>Router login</title></head>"
				      "<body><form>Password: <input type=password></form></body></html>\n");
		else
			sim_resp_text(rs, 404, "text/html",
				      "<html><head><title>404 Not Found</title></head>"
				      "<body><h1>Not Found</h1></body></html>\n");
		break;
	case HOST_STOCK_404:
		/* stock Bitmain firmware: lighttpd, digest auth, no /api/v1 */
		if (root) {
			sim_resp_text(rs, 401, "text/html",
				      "<html><body><h1>401 Unauthorized</h1></body></html>\n");
			rs->extra_header =
				"WWW-Authenticate: Digest realm=\"antMiner Configuration\", "
				"nonce=\"5f1c0d1e\", qop=\"auth\"";
		} else {
			sim_resp_text(rs, 404, "text/html",
				      "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
				      "<html><head><title>404 - Not Found</title></head>"
				      "<body><h1>404 - Not Found</h1></body></html>\n");
		}
		break;
	default:
		/* a single-page web UI that answers every path with its shell */
		sim_resp_text(rs, 200, "text/html",
			      "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
			      "<title>Antminer</title></head><body><div id=\"root\"></div>"
			      "<script src=\"/static/js/main.js\"></script></body></html>\n");
		break;
	}
}
