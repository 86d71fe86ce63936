/* identify — what a host that accepted a connection is.
 *
 * GET /info: a Vnish miner answers with its MAC, which is its identity
 * (its IP is only where it is today). Anything else that listens on the
 * port — a router, a camera, a miner on stock firmware answering 404 or
 * HTML — is skipped quietly: a debug line and a counter.
 *
 * A miner that answers at the address we knew, says what it said last
 * time and whose key worked needs nothing else: it goes on the sweep's
 * list without hive.miner.seen, credentials or a key check (unchanged()
 * says exactly when). Anything else takes the whole path.
 *
 * A miner we know at this IP whose /info fails in a way a miner fails
 * (timeout, reset, 500, bad JSON) is kept in the sweep's list for up to
 * DISC_HOLD_MAX sweeps with a hive.miner.error, so one bad answer does not
 * mark it offline; a refused connection never holds it.
 */
#include "discoverd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/log.h"
#include "hive/msg.h"

static void on_info(const struct hive_fw_result *res, void *arg);

int disc_host_start(struct discoverd *dd, uint32_t addr)
{
	struct host *h;
	struct hive_fw_req req;

	if (!(h = calloc(1, sizeof(*h))))
		return -1;
	h->dd = dd;
	h->addr = addr;
	hive_ipv4_format(addr, h->ip);
	memset(&req, 0, sizeof(req));
	req.ip = h->ip;
	req.port = dd->d.cfg.network.port;
	req.call = HIVE_FW_INFO;
	req.cb = on_info;
	req.cb_arg = h;
	if (hive_fw_request(dd->fw, &req) < 0) {
		free(h);
		return -1;
	}
	h->next = dd->hosts;
	if (dd->hosts)
		dd->hosts->prev = h;
	dd->hosts = h;
	dd->nhosts++;
	return 0;
}

static void host_unlink(struct host *h)
{
	struct discoverd *dd = h->dd;

	if (h->prev)
		h->prev->next = h->next;
	else
		dd->hosts = h->next;
	if (h->next)
		h->next->prev = h->prev;
	dd->nhosts--;
}

static void host_free(struct host *h)
{
	free(h->presets);
	free(h);
}

void disc_host_end(struct host *h)
{
	struct discoverd *dd = h->dd;

	if (h->catalogue && h->m)
		disc_catalogue_release(dd->catalogue, h->m->model, h->m->fw_version);
	if (h->m)
		h->m->busy = false;
	host_unlink(h);
	host_free(h);
	disc_sweep_host_done(dd);
}

void disc_hosts_free(struct discoverd *dd)
{
	struct host *h;

	while ((h = dd->hosts)) {
		host_unlink(h);
		host_free(h);
	}
}

/* A known miner's /info failed: keep it listed for a few sweeps. */
static bool hold(struct host *h, const struct hive_fw_err *err)
{
	struct discoverd *dd = h->dd;
	struct miner *m = disc_miners_at(dd->miners, h->addr);

	if (!m || m->busy)
		return false;
	switch (err->kind) {
	case HIVE_FW_ERR_REFUSED:
	case HIVE_FW_ERR_NOT_FOUND:
	case HIVE_FW_ERR_AUTH:
		return false;     /* something else lives at this address now */
	default:
		break;
	}
	if (m->held >= DISC_HOLD_MAX)
		return false;
	if (m->seen_sweep != dd->c.subnet_sweeps)
		m->held++;
	dd->c.info_errors++;
	disc_miner_error(dd, m, h->ip, "discover", err);
	disc_sweep_saw(dd, m);
	return true;
}

/* FNV-1a over what hive.miner.seen tells apid: the same value means the
 * same message. Never 0 (0 = nothing published yet). */
static uint64_t seen_hash(const struct host *h)
{
	const struct hive_fw_info *in = &h->info;
	const char *parts[] = { h->ip, disc_sweep_subnet(h->dd), in->model, in->miner,
				in->fw_name, in->fw_version, in->hostname };
	uint64_t x = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (const char *c = parts[i]; *c; c++)
			x = (x ^ (unsigned char)*c) * 0x100000001b3ULL;
		x = (x ^ 0xff) * 0x100000001b3ULL;       /* field separator */
	}
	return x ? x : 1;
}

/* Whether m, which answered /info at the address we knew and said what it
 * said last time, needs nothing more this sweep: its key worked and
 * nobody refused it since, it was in the previous sweep's list (apid has
 * it online), its catalogue is out, apid did not ask for its key to be
 * checked, and it is not its turn for the whole path (every
 * DISC_REFRESH_SWEEPS sweeps, staggered by MAC, so that anything lost on
 * the way to apid heals). */
static bool unchanged(const struct discoverd *dd, const struct miner *m, uint64_t hash)
{
	return m->key_ok && m->seen_hash == hash && m->listed_sweep + 1 == dd->sweep_no &&
	       m->recheck_sweep != dd->sweep_no && dd->recheck_all != dd->sweep_no &&
	       (m->id + dd->sweep_no) % DISC_REFRESH_SWEEPS != 0 &&
	       disc_catalogue_published(dd->catalogue, m->model, m->fw_version);
}

/* hive.miner.seen for h; the strings are borrowed from h. 0 / -1. */
static int publish_seen(struct host *h)
{
	const struct hive_fw_info *in = &h->info;
	struct hive_msg_miner_seen b;

	hive_msg_init(HIVE_MSG_MINER_SEEN, &b);
	snprintf(b.mac, sizeof(b.mac), "%s", in->mac);
	snprintf(b.ip, sizeof(b.ip), "%s", h->ip);
	snprintf(b.subnet, sizeof(b.subnet), "%s", disc_sweep_subnet(h->dd));
	b.model = in->model;
	b.miner = in->miner;
	b.fw_name = in->fw_name;
	b.fw_version = in->fw_version;
	b.hostname = in->hostname;
	return disc_publish(h->dd, HIVE_MSG_MINER_SEEN, &b);
}

static void on_info(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;
	struct discoverd *dd = h->dd;
	struct miner *m;
	char q[300], old[HIVE_IPV4_LEN];
	uint64_t hash;
	bool same_place;

	if (res->err.kind != HIVE_FW_OK) {
		if (!hold(h, &res->err)) {
			dd->c.not_miners++;
			log_debug("not_a_miner ip=%s kind=%s http_status=%d reason=%s", h->ip,
				  hive_fw_err_name(res->err.kind), res->err.http_status,
				  hive_log_quote(res->err.msg, q, sizeof(q)));
		}
		disc_host_end(h);
		return;
	}
	h->info = res->info;
	dd->c.identified++;
	dd->c.info_latency_sum += (double)res->latency_ms;
	dd->c.info_latency_n++;
	if (!(m = disc_miners_get(dd->miners, h->info.mac, true))) {
		log_warnx("miner_table_full mac=%s ip=%s", h->info.mac, h->ip);
		disc_host_end(h);
		return;
	}
	same_place = m->addr == h->addr;
	if (m->addr && m->addr != h->addr) {
		log_info("miner_moved mac=%s from=%s to=%s", m->mac, hive_ipv4_format(m->addr, old),
			 h->ip);
	} else if (!m->addr) {
		log_debug("miner_found mac=%s ip=%s model=%s fw=%s", m->mac, h->ip, h->info.model,
			  h->info.fw_version);
	}
	disc_miners_move(dd->miners, m, h->addr);
	if (m->held) {
		char key[64];

		snprintf(key, sizeof(key), "%s discover", m->mac);
		hive_log_recovered(key, "miner_ok mac=%s ip=%s op=discover", m->mac, h->ip);
	}
	m->held = 0;
	snprintf(m->model, sizeof(m->model), "%s", h->info.model);
	snprintf(m->fw_version, sizeof(m->fw_version), "%s", h->info.fw_version);
	hash = seen_hash(h);
	if (same_place && !m->busy && unchanged(dd, m, hash)) {
		dd->c.unchanged++;
		disc_sweep_saw(dd, m);
		disc_host_end(h);
		return;
	}
	disc_sweep_saw(dd, m);
	if (publish_seen(h) == 0)
		m->seen_hash = hash;

	/* The same MAC answering twice in one sweep (a move caught halfway)
	 * is provisioned once. */
	if (m->busy) {
		disc_host_end(h);
		return;
	}
	m->busy = true;
	h->m = m;
	if (disc_control_ask(dd->control, h) < 0) {
		struct disc_creds none = { 0 };

		disc_host_creds(h, &none);
	}
}

void disc_host_creds(struct host *h, const struct disc_creds *creds)
{
	h->creds = *creds;
	disc_provision_start(h);
}
