/* miner — the fleet: who sits at which address, what each miner is, and
 * how it behaves over time.
 *
 * Everything random derives from --seed: the address plan, each miner's
 * identity (MAC, serial, model, firmware, metering, initial preset) and a
 * per-miner noise stream indexed by (second since start, channel), so a
 * run is reproducible and two requests within the same second agree.
 *
 * State is evaluated lazily: a miner records its phase, when the phase
 * ends, and a linear power/hashrate ramp; reading it at time t applies the
 * transitions that fell due (at the time they fell due, not when noticed).
 * A controlled miner has one more deadline (ctl->due): a saved preset that
 * runs by itself ("quiet" firmware) or a preset switcher step. The fleet
 * tick applies due transitions (so listeners reopen after a reboot).
 */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_DEADLINE     INT64_MAX
#define RAMP_MS         1000
#define IDLE_SHARE      0.04    /* of stock power: control board and fans */
#define STOPPED_SHARE   0.02
#define REBOOT_W        30.0

struct sim_fleet sim_fleet;
static uint64_t token_state;

static const char *const platforms[] = { "xil", "aml", "bb", "cv", "stm" };

/* ---------------------------------------------------------------- addresses */

static uint32_t subnet_size(void)
{
	return 1u << (32 - sim_opts.prefix);
}

bool sim_addr_in_subnet(uint32_t ip)
{
	return ip - sim_opts.net < subnet_size();
}

bool sim_addr_usable(uint32_t ip)
{
	uint32_t off = ip - sim_opts.net;

	return off > 0 && off < subnet_size() - 1;
}

/* ---------------------------------------------------------------- layout */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void miner_identity(struct miner *m, uint32_t index, const uint8_t oui[SIM_NMODELS][3])
{
	uint64_t s = sim_opts.seed;
	uint64_t h = sim_hash3(s, index, 0x1d);
	int allowed[SIM_NMODELS] = { 0 }, nallowed = 0, model;
	const struct sim_model *md;
	uint32_t low;
	static const char b36[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

	for (int i = 0; i < SIM_NMODELS; i++)
		if (sim_opts.models & (1u << i))
			allowed[nallowed++] = i;
	/* a bit more S19 than S19j Pro when both run */
	model = nallowed == 1 ? allowed[0] : sim_unit(sim_hash3(s, index, 0x30)) < 0.55 ?
		allowed[0] : allowed[1];
	md = &sim_models[model];

	m->index = index;
	m->seed = h;
	m->model = (uint8_t)model;
	/* one OUI per model batch; the low 24 bits are a bijection of the
	 * index, so MACs never collide */
	low = (uint32_t)((index * 0x9E3779u + (uint32_t)sim_mix(s)) & 0xFFFFFF);
	memcpy(m->mac, oui[model], 3);
	m->mac[3] = (uint8_t)(low >> 16);
	m->mac[4] = (uint8_t)(low >> 8);
	m->mac[5] = (uint8_t)low;
	m->fw = sim_unit(sim_hash3(s, index, 0x31)) < sim_opts.fw_mix;
	m->metered = sim_unit(sim_hash3(s, index, 0x32)) >= sim_opts.unmetered;
	m->platform = (uint8_t)(sim_hash3(s, index, 0x33) % 4);
	if (sim_unit(sim_hash3(s, index, 0x34)) < 0.05) {
		strcpy(m->serial, "N/A");
	} else {
		uint64_t r = sim_hash3(s, index, 0x35);
		snprintf(m->serial, sizeof(m->serial), "%s", model == 0 ? "JYZZB4" : "JYZZK6");
		for (int i = 6; i < 16; i++, r /= 36)
			m->serial[i] = b36[r % 36];
		m->serial[16] = '\0';
	}
	/* about a third run stock; the others a preset from the middle of
	 * the ladder, as a farm would pick */
	if (sim_unit(sim_hash3(s, index, 0x36)) < 0.35) {
		m->preset = 0;
	} else {
		int lo = md->nladder / 4, span = md->nladder / 2 + 1;
		m->preset = (uint8_t)(1 + lo + (int)(sim_hash3(s, index, 0x37) % (uint64_t)span));
	}
	m->tuned = 1u | (1u << m->preset);
	for (int p = 1; p <= md->nladder; p++)
		if (sim_unit(sim_hash3(s, index, 0x100 + (uint64_t)p)) < 0.3)
			m->tuned |= 1u << p;
	m->uptime_base_s = (uint32_t)(sim_hash3(s, index, 0x38) % (40 * 86400));
	m->phase = PH_MINING;
	m->phase_since = 0;
	m->phase_until = NO_DEADLINE;
	m->to_w = m->from_w = (float)sim_preset_watts(md, m->preset);
	m->to_gh = m->from_gh = (float)(sim_preset_th(md, m->preset) * 1000.0);
	m->ramp_start = m->ramp_end = 0;
	m->ev.type = SIM_EV_MINER;
	m->ev.fd = -1;
	m->ev.owner = m;
}

int sim_fleet_init(char *err, size_t errlen)
{
	uint32_t size = subnet_size(), ncand = 0, total;
	uint32_t *cand = NULL;
	uint8_t *roles = NULL, *kinds = NULL, oui[SIM_NMODELS][3];
	uint64_t rng = sim_mix(sim_opts.seed ^ 0x5eed);
	int mi = 0, hi = 0;

	total = (uint32_t)sim_opts.miners + (uint32_t)sim_opts.non_miners;
	sim_fleet.naddr = size;
	sim_fleet.by_addr = malloc(size * sizeof(int32_t));
	cand = malloc(size * sizeof(uint32_t));
	sim_fleet.miners = calloc((size_t)sim_opts.miners + 1, sizeof(struct miner));
	sim_fleet.hosts = calloc((size_t)sim_opts.non_miners + 1, sizeof(struct sim_host));
	sim_fleet.share_order = malloc(((size_t)sim_opts.miners + 1) * sizeof(uint32_t));
	roles = malloc(total + 1);
	kinds = malloc((size_t)sim_opts.non_miners + 1);
	if (!sim_fleet.by_addr || !cand || !sim_fleet.miners || !sim_fleet.hosts ||
	    !sim_fleet.share_order || !roles || !kinds) {
		snprintf(err, errlen, "out of memory for %u hosts", total);
		goto fail;
	}
	for (uint32_t off = 0; off < size; off++) {
		uint32_t ip = sim_opts.net + off;
		sim_fleet.by_addr[off] = -1;
		if (sim_addr_usable(ip) && ip != sim_opts.admin_ip)
			cand[ncand++] = off;
	}
	if (total > ncand) {
		char a[16];
		snprintf(err, errlen, "subnet %s/%d has %u usable addresses, %u hosts asked "
			 "(--miners + --non-miners)", hive_ipv4_format(sim_opts.net, a),
			 sim_opts.prefix, ncand, total);
		goto fail;
	}
	/* pick `total` addresses (partial Fisher-Yates), in address order */
	for (uint32_t i = 0; i < total; i++) {
		uint32_t j = i + (uint32_t)(sim_rand(&rng) % (ncand - i)), t = cand[i];
		cand[i] = cand[j];
		cand[j] = t;
	}
	qsort(cand, total, sizeof(uint32_t), cmp_u32);
	/* interleave non-miners among miners */
	memset(roles, 1, (size_t)sim_opts.miners);
	memset(roles + sim_opts.miners, 0, (size_t)sim_opts.non_miners);
	for (uint32_t i = total; i > 1; i--) {
		uint32_t j = (uint32_t)(sim_rand(&rng) % i);
		uint8_t t = roles[i - 1];
		roles[i - 1] = roles[j];
		roles[j] = t;
	}
	for (int i = 0; i < sim_opts.non_miners; i++)
		kinds[i] = (uint8_t)(i % HOST_KINDS);
	for (int i = sim_opts.non_miners; i > 1; i--) {
		int j = (int)(sim_rand(&rng) % (uint64_t)i);
		uint8_t t = kinds[i - 1];
		kinds[i - 1] = kinds[j];
		kinds[j] = t;
	}
	for (int i = 0; i < SIM_NMODELS; i++) {
		uint64_t h = sim_rand(&rng);
		/* unicast, globally administered look */
		oui[i][0] = (uint8_t)(h & 0xFC);
		oui[i][1] = (uint8_t)(h >> 8);
		oui[i][2] = (uint8_t)(h >> 16);
	}

	for (uint32_t i = 0; i < total; i++) {
		uint32_t off = cand[i];
		if (roles[i]) {
			struct miner *m = &sim_fleet.miners[mi];
			miner_identity(m, (uint32_t)mi, oui);
			m->ip = sim_opts.net + off;
			sim_fleet.by_addr[off] = mi++;
		} else {
			struct sim_host *h = &sim_fleet.hosts[hi];
			h->ip = sim_opts.net + off;
			h->kind = kinds[hi];
			h->ev.type = SIM_EV_HOST;
			h->ev.fd = -1;
			h->ev.owner = h;
			sim_fleet.by_addr[off] = -2 - hi++;
		}
	}
	sim_fleet.nminers = mi;
	sim_fleet.nhosts = hi;

	/* "share" picks a prefix of this order: 10% ⊂ 20% ⊂ ... */
	for (int i = 0; i < mi; i++)
		sim_fleet.share_order[i] = (uint32_t)i;
	for (int i = mi; i > 1; i--) {
		int j = (int)(sim_rand(&rng) % (uint64_t)i);
		uint32_t t = sim_fleet.share_order[i - 1];
		sim_fleet.share_order[i - 1] = sim_fleet.share_order[j];
		sim_fleet.share_order[j] = t;
	}
	token_state = sim_mix(sim_opts.seed ^ 0x70c3);
	free(cand);
	free(roles);
	free(kinds);
	return 0;
fail:
	free(cand);
	free(roles);
	free(kinds);
	sim_fleet_free();
	return -1;
}

void sim_fleet_free(void)
{
	for (int i = 0; sim_fleet.miners && i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		if (m->ev.fd >= 0)
			sim_http_unlisten(&m->ev);
		sim_miner_free_creds(m);
		free(m->ctl);
		m->ctl = NULL;
		sim_hw_clear(m);
	}
	for (int i = 0; sim_fleet.hosts && i < sim_fleet.nhosts; i++)
		if (sim_fleet.hosts[i].ev.fd >= 0)
			sim_http_unlisten(&sim_fleet.hosts[i].ev);
	free(sim_fleet.miners);
	free(sim_fleet.hosts);
	free(sim_fleet.by_addr);
	free(sim_fleet.share_order);
	memset(&sim_fleet, 0, sizeof(sim_fleet));
}

int sim_fleet_listen(char *err, size_t errlen)
{
	char a[16];

	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		if (sim_http_listen(&m->ev, m->ip, sim_opts.port) < 0)
			goto fail_ip;
		continue;
fail_ip:
		snprintf(err, errlen, "listen %s:%d: %s", hive_ipv4_format(m->ip, a), sim_opts.port,
			 strerror(errno));
		return -1;
	}
	for (int i = 0; i < sim_fleet.nhosts; i++) {
		struct sim_host *h = &sim_fleet.hosts[i];
		if (h->kind == HOST_CLOSED)
			continue;
		if (sim_http_listen(&h->ev, h->ip, sim_opts.port) < 0) {
			snprintf(err, errlen, "listen %s:%d: %s", hive_ipv4_format(h->ip, a),
				 sim_opts.port, strerror(errno));
			return -1;
		}
	}
	return 0;
}

void sim_fleet_tick(int64_t now)
{
	for (int i = 0; i < sim_fleet.nminers; i++) {
		struct miner *m = &sim_fleet.miners[i];
		bool should;

		if (now >= sim_miner_due(m))
			sim_miner_update(m, now);
		should = m->fault != FAULT_OFFLINE && m->phase != PH_GONE;
		if (should != (m->ev.fd >= 0))
			sim_miner_sync_listener(m);
	}
}

/* ---------------------------------------------------------------- lookups */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int parse_mac(const char *s, uint8_t out[6])
{
	int n = 0;

	for (const char *p = s; *p;) {
		int hi = hexval(p[0]), lo = hi >= 0 ? hexval(p[1]) : -1;
		if (hi < 0 || lo < 0 || n == 6)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
		if (*p == ':' || *p == '-')
			p++;
	}
	return n == 6 ? 0 : -1;
}

struct miner *sim_miner_find(const char *s)
{
	uint8_t mac[6];
	unsigned a, b, c, d;
	char tail;

	if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 &&
	    a < 256 && b < 256 && c < 256 && d < 256) {
		uint32_t ip = a << 24 | b << 16 | c << 8 | d;
		int32_t idx;
		if (!sim_addr_in_subnet(ip))
			return NULL;
		idx = sim_fleet.by_addr[ip - sim_opts.net];
		return idx >= 0 ? &sim_fleet.miners[idx] : NULL;
	}
	if (parse_mac(s, mac) < 0)
		return NULL;
	for (int i = 0; i < sim_fleet.nminers; i++)
		if (memcmp(sim_fleet.miners[i].mac, mac, 6) == 0)
			return &sim_fleet.miners[i];
	return NULL;
}

const char *sim_miner_mac(const struct miner *m, char buf[18])
{
	snprintf(buf, 18, "%02X:%02X:%02X:%02X:%02X:%02X", m->mac[0], m->mac[1], m->mac[2],
		 m->mac[3], m->mac[4], m->mac[5]);
	return buf;
}

const struct sim_model *sim_miner_model(const struct miner *m)
{
	return &sim_models[m->model];
}

const char *sim_miner_fw_version(const struct miner *m)
{
	return m->fw ? "1.3.2" : "1.2.6";
}

const char *sim_miner_platform(const struct miner *m)
{
	return platforms[m->platform % 5];
}

const char *sim_miner_hostname(const struct miner *m, char buf[32])
{
	snprintf(buf, 32, "%s-%02x%02x%02x", sim_miner_model(m)->code, m->mac[3], m->mac[4],
		 m->mac[5]);
	return buf;
}

/* ---------------------------------------------------------------- physics */

static void phase_target(const struct miner *m, int phase, float *w, float *gh)
{
	const struct sim_model *md = sim_miner_model(m);

	switch (phase) {
	case PH_MINING:
	case PH_AUTOTUNING:
		*w = (float)sim_preset_watts(md, m->preset);
		*gh = (float)(sim_preset_th(md, m->preset) * 1000.0);
		break;
	case PH_STOPPED:
		*w = (float)(md->stock_w * STOPPED_SHARE);
		*gh = 0;
		break;
	case PH_GONE:
		*w = (float)REBOOT_W;
		*gh = 0;
		break;
	default:   /* restarting, starting, initializing */
		*w = (float)(md->stock_w * IDLE_SHARE);
		*gh = 0;
		break;
	}
}

static double ramp(float from, float to, int64_t start, int64_t end, int64_t t)
{
	if (t >= end || end <= start)
		return to;
	if (t <= start)
		return from;
	return from + (to - from) * (double)(t - start) / (double)(end - start);
}

static void rearm(struct miner *m);

static void enter(struct miner *m, int phase, int64_t at, int64_t dur_ms, int64_t ramp_ms)
{
	float w, gh;

	m->from_w = (float)ramp(m->from_w, m->to_w, m->ramp_start, m->ramp_end, at);
	m->from_gh = (float)ramp(m->from_gh, m->to_gh, m->ramp_start, m->ramp_end, at);
	phase_target(m, phase, &w, &gh);
	m->to_w = w;
	m->to_gh = gh;
	m->ramp_start = at;
	m->ramp_end = at + ramp_ms;
	m->phase = (uint8_t)phase;
	m->phase_since = at;
	m->phase_until = dur_ms < 0 ? NO_DEADLINE : at + dur_ms;
	rearm(m);
}

int64_t sim_tune_ms(bool tuned)
{
	int s = sim_opts.tune_s;

	if (tuned)
		s = sim_opts.tuned_s >= 0 ? sim_opts.tuned_s : s < 30 ? s : 30;
	return (int64_t)s * 1000;
}

/* After a start, a restart, a boot or a preset change: tune first when the
 * preset has not run since it was set. An untuned preset takes
 * --tune-seconds, one tuned before (saved settings) --tuned-seconds; power
 * and hashrate move linearly to the preset's over that time. */
static void resume_mining(struct miner *m, int64_t at)
{
	if (m->tuning) {
		int64_t ms = sim_tune_ms(m->tuned & (1u << m->preset));
		enter(m, PH_AUTOTUNING, at, ms, ms);
	} else {
		enter(m, PH_MINING, at, -1, RAMP_MS);
	}
}

static bool running(const struct miner *m)
{
	return m->phase == PH_MINING || m->phase == PH_AUTOTUNING;
}

/* When the switcher steps next, or NO_DEADLINE: after check_time of steady
 * mining (counted from its last configuration at the earliest). */
int64_t sim_miner_switcher_due(const struct miner *m)
{
	const struct sim_ctl *c = m->ctl;
	int64_t since;

	if (!c || !c->switcher || m->phase != PH_MINING || sim_miner_switcher_next(m) < 0)
		return NO_DEADLINE;
	since = m->phase_since > c->switch_ref ? m->phase_since : c->switch_ref;
	return since + (int64_t)c->check_s * 1000;
}

static int64_t apply_due(const struct miner *m)
{
	const struct sim_ctl *c = m->ctl;

	return c && c->pending && c->pending_at && running(m) ? c->pending_at : NO_DEADLINE;
}

static void rearm(struct miner *m)
{
	int64_t a, b;

	if (!m->ctl)
		return;
	a = apply_due(m);
	b = sim_miner_switcher_due(m);
	m->ctl->due = a < b ? a : b;
}

int64_t sim_miner_due(const struct miner *m)
{
	return m->ctl && m->ctl->due < m->phase_until ? m->ctl->due : m->phase_until;
}

/* The preset p runs from `at` (auto-tuning first when the miner runs). */
static void apply_preset(struct miner *m, int p, int64_t at, int src)
{
	struct sim_ctl *c = m->ctl;

	m->preset = (uint8_t)p;
	m->tuning = true;
	if (c) {
		c->pending = 0;
		c->pending_at = 0;
		c->set_by = (uint8_t)src;
		c->set_at = at;
		if (src == SRC_API)
			c->preset_changes++;
		else if (src == SRC_WEB)
			c->web_changes++;
		else if (src == SRC_SWITCHER)
			c->switcher_changes++;
	}
	if (running(m))
		resume_mining(m, at);
	else
		rearm(m);
}

/* A preset saved by POST /settings comes to run (restart, start, reboot,
 * or its time on "quiet" firmware). */
static void apply_pending(struct miner *m, int64_t at)
{
	if (m->ctl && m->ctl->pending)
		apply_preset(m, m->ctl->pending - 1, at, SRC_API);
}

static void ctl_event(struct miner *m, int64_t at)
{
	char mac[18], name[16];

	if (apply_due(m) <= at) {
		apply_pending(m, at);
	} else if (sim_miner_switcher_due(m) <= at) {
		int p = sim_miner_switcher_next(m);
		sim_log("switcher mac=%s preset=%s", sim_miner_mac(m, mac),
			sim_preset_name(sim_miner_model(m), p, name, sizeof(name)));
		apply_preset(m, p, at, SRC_SWITCHER);
	} else {
		rearm(m);
	}
}

void sim_miner_update(struct miner *m, int64_t now)
{
	/* each step changes state; the bound only guards against a bug */
	for (int guard = 0; guard < 1000; guard++) {
		int64_t due = m->ctl ? m->ctl->due : NO_DEADLINE, at = m->phase_until;

		if (due <= now && due < at) {
			ctl_event(m, due);
			continue;
		}
		if (now < at)
			break;
		switch (m->phase) {
		case PH_AUTOTUNING:
			m->tuned |= 1u << m->preset;
			m->tuning = false;
			enter(m, PH_MINING, at, -1, 0);
			break;
		case PH_GONE:
			m->boot_ms = at;
			m->uptime_base_s = 0;
			enter(m, PH_INITIALIZING, at, (int64_t)sim_opts.init_s * 1000, RAMP_MS);
			break;
		case PH_RESTARTING:
		case PH_STARTING:
		case PH_INITIALIZING:
			m->run_since = at;      /* a new mining process: counters restart */
			resume_mining(m, at);
			break;
		default:
			m->phase_until = NO_DEADLINE;
			break;
		}
	}
}

bool sim_miner_online(const struct miner *m)
{
	return m->ev.fd >= 0;
}

void sim_miner_sync_listener(struct miner *m)
{
	bool should = m->fault != FAULT_OFFLINE && m->phase != PH_GONE;
	char a[16], mac[18];

	if (should && m->ev.fd < 0) {
		if (sim_http_listen(&m->ev, m->ip, sim_opts.port) < 0) {
			if (!m->bind_failed)
				sim_log("listen_failed mac=%s ip=%s port=%d err=\"%s\"",
					sim_miner_mac(m, mac), hive_ipv4_format(m->ip, a),
					sim_opts.port, strerror(errno));
			m->bind_failed = true;
		} else {
			m->bind_failed = false;
		}
	} else if (!should && m->ev.fd >= 0) {
		sim_http_unlisten(&m->ev);
	}
}

static const char *const phase_names[] = {
	[PH_MINING] = "mining",
	[PH_AUTOTUNING] = "auto-tuning",
	[PH_RESTARTING] = "restarting",
	[PH_STARTING] = "starting",
	[PH_STOPPED] = "stopped",
	[PH_GONE] = "shutting-down",
	[PH_INITIALIZING] = "initializing",
};

const char *sim_miner_state(const struct miner *m)
{
	return phase_names[m->phase];
}

const char *sim_miner_truth_state(const struct miner *m)
{
	return m->phase == PH_GONE ? "rebooting" : phase_names[m->phase];
}

int64_t sim_miner_state_secs(const struct miner *m, int64_t now)
{
	if (m->phase == PH_MINING && m->phase_since == 0)
		return (int64_t)sim_miner_uptime_s(m, now);
	return (now - m->phase_since) / 1000;
}

uint64_t sim_miner_uptime_s(const struct miner *m, int64_t now)
{
	return m->uptime_base_s + (uint64_t)((now - m->boot_ms) / 1000);
}

uint64_t sim_miner_run_s(const struct miner *m, int64_t now)
{
	if (!running(m))
		return 0;
	return m->run_since > 0 ? (uint64_t)((now - m->run_since) / 1000)
				: sim_miner_uptime_s(m, now);
}

const char *sim_uptime_str(uint64_t secs, char *buf, size_t len)
{
	unsigned long long days = secs / 86400;
	unsigned h = (unsigned)(secs % 86400 / 3600), mi = (unsigned)(secs % 3600 / 60);

	if (days)
		snprintf(buf, len, "%llu day%s, %u:%02u", days, days == 1 ? "" : "s", h, mi);
	else
		snprintf(buf, len, "%u:%02u", h, mi);
	return buf;
}

double sim_miner_noise(const struct miner *m, int64_t now, uint64_t channel)
{
	return 2.0 * sim_unit(sim_hash3(m->seed, (uint64_t)(now / 1000), channel)) - 1.0;
}

double sim_miner_power(const struct miner *m, int64_t now)
{
	double w = ramp(m->from_w, m->to_w, m->ramp_start, m->ramp_end, now);

	return w * (1.0 + 0.01 * sim_miner_noise(m, now, 1));
}

double sim_miner_hashrate(const struct miner *m, int64_t now)
{
	double gh = ramp(m->from_gh, m->to_gh, m->ramp_start, m->ramp_end, now);
	int chains = sim_miner_model(m)->chains;

	if (m->hw && m->hw->factor > 0)
		gh *= m->hw->factor;
	if (m->hw && m->hw->chain)       /* a dead board hashes nothing */
		gh = gh * (chains - 1) / chains;
	return gh * (1.0 + 0.02 * sim_miner_noise(m, now, 2));
}

double sim_miner_nominal_gh(const struct miner *m)
{
	return sim_preset_th(sim_miner_model(m), m->preset) * 1000.0;
}

/* Chips run hotter and fans faster with the draw. */
double sim_miner_chip_temp(const struct miner *m, int64_t now)
{
	double r = sim_miner_power(m, now) / sim_miner_model(m)->stock_w;

	/* overheating: chips at the fault's temperature while they hash */
	if (m->hw && m->hw->temp > 0 && (m->phase == PH_MINING || m->phase == PH_AUTOTUNING))
		return m->hw->temp;
	return 30.0 + 45.0 * pow(r > 0 ? r : 0, 0.8) + 1.0 * sim_miner_noise(m, now, 3);
}

int sim_miner_fan_duty(const struct miner *m, int64_t now)
{
	double r = sim_miner_power(m, now) / sim_miner_model(m)->stock_w;
	long d = lround(20.0 + 40.0 * r);

	if (m->hw && m->hw->temp > 0 && (m->phase == PH_MINING || m->phase == PH_AUTOTUNING))
		return 100;
	return d < 10 ? 10 : d > 100 ? 100 : (int)d;
}

/* ---------------------------------------------------------------- control */

static const char *const apply_names[APPLY_MODES] = {
	[APPLY_LIVE] = "live",
	[APPLY_RESTART] = "restart",
	[APPLY_QUIET] = "quiet",
	[APPLY_FIRMWARE] = "firmware",
};

const char *sim_apply_name(int mode)
{
	return mode >= 0 && mode < APPLY_MODES ? apply_names[mode] : "default";
}

int sim_apply_parse(const char *name)
{
	for (int i = 0; i < APPLY_MODES; i++)
		if (strcmp(apply_names[i], name) == 0)
			return i;
	return -1;
}

struct sim_ctl *sim_miner_ctl(struct miner *m)
{
	if (!m->ctl && (m->ctl = calloc(1, sizeof(*m->ctl)))) {
		m->ctl->apply = APPLY_DEFAULT;
		m->ctl->min = 1;
		m->ctl->check_s = 60;
		m->ctl->due = NO_DEADLINE;
	}
	return m->ctl;
}

int sim_miner_apply_mode(const struct miner *m)
{
	int mode = m->ctl && m->ctl->apply != APPLY_DEFAULT ? m->ctl->apply : sim_opts.preset_apply;

	if (mode == APPLY_FIRMWARE)
		mode = m->fw ? APPLY_QUIET : APPLY_RESTART;
	return mode;
}

bool sim_miner_restart_required(const struct miner *m)
{
	return m->ctl && m->ctl->pending && sim_miner_apply_mode(m) == APPLY_RESTART;
}

int sim_miner_settings(struct miner *m, int p, int64_t now, bool *restart_required)
{
	struct sim_ctl *c = sim_miner_ctl(m);

	if (!c)
		return -1;
	sim_miner_update(m, now);
	*restart_required = false;
	switch (sim_miner_apply_mode(m)) {
	case APPLY_LIVE:
		if (p != m->preset) {
			apply_preset(m, p, now, SRC_API);
			*restart_required = true;
		} else {
			c->pending = 0;
		}
		break;
	case APPLY_RESTART:
		c->pending = p != m->preset ? (uint8_t)(p + 1) : 0;
		c->pending_at = 0;
		*restart_required = c->pending != 0;
		break;
	default:   /* quiet: saved now, runs apply_s later, says nothing */
		if (p == m->preset) {
			c->pending = 0;
		} else if (c->pending != p + 1) {
			c->pending = (uint8_t)(p + 1);
			c->pending_at = now + (int64_t)sim_opts.apply_s * 1000;
			if (!c->pending_at)     /* 0 means "at a restart" */
				c->pending_at = 1;
		}
		break;
	}
	rearm(m);
	return 0;
}

/* Runs at once, like a preset saved and applied on the web page; a saved
 * POST /settings preset is overridden. The same preset again changes
 * nothing. */
void sim_miner_set_preset(struct miner *m, int preset, int64_t now, int src)
{
	sim_miner_update(m, now);
	if (m->ctl)
		m->ctl->pending = 0;
	if (preset != m->preset)
		apply_preset(m, preset, now, src);
	else
		rearm(m);
}

void sim_miner_switcher_changed(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	if (m->ctl)
		m->ctl->switch_ref = now;
	rearm(m);
}

int sim_miner_switcher_next(const struct miner *m)
{
	const struct sim_ctl *c = m->ctl;

	/* the switcher moves between autotune presets only */
	if (!c || !c->top || m->preset == 0 || m->preset == c->top)
		return -1;
	return m->preset < c->top ? m->preset + 1 : m->preset - 1;
}

void sim_miner_restart(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	m->paused = false;
	apply_pending(m, now);
	enter(m, PH_RESTARTING, now, (int64_t)sim_opts.start_s * 1000, RAMP_MS / 2);
}

void sim_miner_stop(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	m->paused = false;
	if (m->phase != PH_STOPPED)
		enter(m, PH_STOPPED, now, -1, RAMP_MS);
}

/* Pause: hashing stops, the state is "stopped" with description
 * "paused". A miner already stopped stays as it is. */
void sim_miner_pause(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	if (m->phase == PH_STOPPED)
		return;
	m->paused = true;
	enter(m, PH_STOPPED, now, -1, RAMP_MS);
}

/* Start: a stopped (or paused) miner starts, with what was saved. */
void sim_miner_start(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	if (m->phase != PH_STOPPED)
		return;
	m->paused = false;
	apply_pending(m, now);
	enter(m, PH_STARTING, now, (int64_t)sim_opts.start_s * 1000, RAMP_MS / 2);
}

/* Resume: only a paused miner, with the preset it ran. */
void sim_miner_resume(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	if (m->phase != PH_STOPPED || !m->paused)
		return;
	m->paused = false;
	enter(m, PH_STARTING, now, (int64_t)sim_opts.start_s * 1000, RAMP_MS / 2);
}

void sim_miner_reboot(struct miner *m, int64_t now)
{
	sim_miner_update(m, now);
	m->paused = false;
	/* the saved configuration is what boots */
	apply_pending(m, now);
	enter(m, PH_GONE, now, (int64_t)sim_opts.reboot_s * 1000, 0);
	/* sessions do not survive a reboot; keys do */
	if (m->creds)
		memset(m->creds->tokens, 0, sizeof(m->creds->tokens));
	sim_miner_sync_listener(m);
}

/* ---------------------------------------------------------------- credentials */

struct sim_creds *sim_miner_creds(struct miner *m)
{
	if (!m->creds)
		m->creds = calloc(1, sizeof(*m->creds));
	return m->creds;
}

const char *sim_miner_password(const struct miner *m)
{
	return m->creds && m->creds->password ? m->creds->password : "admin";
}

int sim_miner_set_password(struct miner *m, const char *pw)
{
	struct sim_creds *c = sim_miner_creds(m);
	char *copy = strdup(pw);

	if (!c || !copy) {
		free(copy);
		return -1;
	}
	free(c->password);
	c->password = copy;
	return 0;
}

bool sim_miner_key_ok(const struct miner *m, const char *key)
{
	if (!m->creds || strlen(key) != SIM_KEY_LEN)
		return false;
	for (int i = 0; i < m->creds->nkeys; i++)
		if (strcmp(m->creds->keys[i].key, key) == 0)
			return true;
	return false;
}

bool sim_miner_token_ok(const struct miner *m, const char *tok, int64_t now)
{
	if (!m->creds || strlen(tok) != SIM_KEY_LEN)
		return false;
	for (int i = 0; i < SIM_TOKENS; i++)
		if (m->creds->tokens[i].expires_ms > now &&
		    strcmp(m->creds->tokens[i].tok, tok) == 0)
			return true;
	return false;
}

bool sim_miner_unlocked(const struct miner *m, int64_t now)
{
	for (int i = 0; m->creds && i < SIM_TOKENS; i++)
		if (m->creds->tokens[i].expires_ms > now)
			return true;
	return false;
}

int sim_miner_new_token(struct miner *m, int64_t now, char out[SIM_KEY_LEN + 1])
{
	struct sim_creds *c = sim_miner_creds(m);
	struct sim_token *slot;
	static const char hex[] = "0123456789abcdef";

	if (!c)
		return -1;
	slot = &c->tokens[0];
	for (int i = 1; i < SIM_TOKENS; i++)
		if (c->tokens[i].expires_ms < slot->expires_ms)
			slot = &c->tokens[i];
	for (int i = 0; i < SIM_KEY_LEN; i += 16) {
		uint64_t r = sim_rand(&token_state);
		for (int j = 0; j < 16; j++, r >>= 4)
			slot->tok[i + j] = hex[r & 15];
	}
	slot->tok[SIM_KEY_LEN] = '\0';
	slot->expires_ms = now + (int64_t)sim_opts.token_ttl_s * 1000;
	memcpy(out, slot->tok, SIM_KEY_LEN + 1);
	return 0;
}

int sim_miner_nkeys(const struct miner *m)
{
	return m->creds ? m->creds->nkeys : 0;
}

int sim_miner_add_key(struct miner *m, const char *key, const char *desc)
{
	struct sim_creds *c = sim_miner_creds(m);
	int i;

	if (!c) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < c->nkeys; i++)
		if (strcmp(c->keys[i].key, key) == 0)
			break;
	if (i == c->nkeys) {
		if (c->nkeys == SIM_MAX_KEYS) {
			errno = ENOSPC;
			return -1;
		}
		if (c->nkeys == c->capkeys) {
			int cap = c->capkeys ? c->capkeys * 2 : 1;
			struct sim_apikey *k = realloc(c->keys, (size_t)cap * sizeof(*k));
			if (!k) {
				errno = ENOMEM;
				return -1;
			}
			c->keys = k;
			c->capkeys = cap;
		}
		c->nkeys++;
	}
	snprintf(c->keys[i].key, sizeof(c->keys[i].key), "%s", key);
	snprintf(c->keys[i].desc, sizeof(c->keys[i].desc), "%s", desc);
	return 0;
}

void sim_miner_free_creds(struct miner *m)
{
	if (!m->creds)
		return;
	free(m->creds->password);
	free(m->creds->keys);
	free(m->creds);
	m->creds = NULL;
}

/* ---------------------------------------------------------------- moves */

int sim_miner_move(struct miner *m, uint32_t ip, int *status, char *err, size_t errlen)
{
	char a[16], b[16], mac[18];
	int32_t who;

	if (!sim_addr_usable(ip)) {
		*status = 400;
		snprintf(err, errlen, "%s is not a usable address of %s/%d", hive_ipv4_format(ip, a),
			 hive_ipv4_format(sim_opts.net, b), sim_opts.prefix);
		return -1;
	}
	if (ip == m->ip)
		return 0;
	who = sim_fleet.by_addr[ip - sim_opts.net];
	if (who != -1 || (ip == sim_opts.admin_ip && sim_opts.admin_port == sim_opts.port)) {
		*status = 409;
		snprintf(err, errlen, "%s is taken by %s", hive_ipv4_format(ip, a),
			 who >= 0 ? sim_miner_mac(&sim_fleet.miners[who], mac) :
			 who < -1 ? "a non-miner host" : "the admin API");
		return -1;
	}
	sim_http_unlisten(&m->ev);
	sim_fleet.by_addr[m->ip - sim_opts.net] = -1;
	sim_fleet.by_addr[ip - sim_opts.net] = (int32_t)m->index;
	sim_log("move mac=%s from=%s to=%s", sim_miner_mac(m, mac), hive_ipv4_format(m->ip, b),
		hive_ipv4_format(ip, a));
	m->ip = ip;
	sim_miner_sync_listener(m);
	return 0;
}

int sim_miner_swap(struct miner *a, struct miner *b)
{
	uint32_t t;

	if (a == b)
		return 0;
	sim_http_unlisten(&a->ev);
	sim_http_unlisten(&b->ev);
	t = a->ip;
	a->ip = b->ip;
	b->ip = t;
	sim_fleet.by_addr[a->ip - sim_opts.net] = (int32_t)a->index;
	sim_fleet.by_addr[b->ip - sim_opts.net] = (int32_t)b->index;
	sim_miner_sync_listener(a);
	sim_miner_sync_listener(b);
	return 0;
}
