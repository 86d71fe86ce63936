/* provision — making sure every miner has a working PowerHive API key.
 *
 * A miner that comes here (identify.c sends the unchanged ones straight
 * to the sweep's list) has its known key checked with one cheap keyed call
 * (/autotune/presets when this miner also brings its model's catalogue,
 * else /apikeys). Only a 401 sends the miner to provisioning: unlock with
 * its password (apid's stored unlock_pass, else network.default_password),
 * then reuse a key described "PowerHive" already on the miner, or create a
 * new random one. A timeout or a 500 while checking says nothing about the
 * key, so nothing is provisioned then.
 *
 * The firmware rate-limits unlocks and a wrong password must never be
 * retried in a loop: after a 403 or 429 the miner's unlock waits 1 sweep,
 * then 2, 4, ... up to an hour of sweeps; the wait is forgotten when apid's
 * stored password for it changes. While it waits, the last unlock error is
 * published again each sweep so the miner keeps showing it.
 *
 * Keys come from getrandom(2): 16 bytes as 32 lower-case hex characters,
 * the only format the firmware accepts.
 */
#include "discoverd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hive/log.h"
#include "hive/msg.h"

#define POWERHIVE_KEY_DESC "PowerHive"
#define BACKOFF_MAX_S      3600

static void verify(struct host *h);
static void unlock(struct host *h);

uint64_t disc_unlock_backoff(int failures, int discovery_seconds)
{
	uint64_t skip, max;

	if (failures <= 0)
		return 0;
	max = discovery_seconds > 0 ? (uint64_t)(BACKOFF_MAX_S / discovery_seconds) : 1;
	if (max < 1)
		max = 1;
	skip = failures > 30 ? max : (uint64_t)1 << (failures - 1);
	return skip < max ? skip : max;
}

/* A key we can send in a header: printable, no spaces, not too long. */
static bool key_usable(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > DISC_KEY_MAX)
		return false;
	for (; *k; k++)
		if ((unsigned char)*k <= 0x20 || (unsigned char)*k >= 0x7f)
			return false;
	return true;
}

/* The firmware's own key format: 32 lower-case hex characters. */
static bool key_powerhive_format(const char *k)
{
	size_t i;

	for (i = 0; k[i]; i++)
		if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return false;
	return i == 32;
}

static int new_key(char out[33])
{
	unsigned char b[16];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(b)) {
		n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

static void fail(struct host *h, const char *op, const struct hive_fw_err *err)
{
	if (strcmp(op, "unlock") != 0)
		h->dd->c.provision_errors++;
	disc_miner_error(h->dd, h->m, h->ip, op, err);
	disc_host_end(h);
}

static void fail_internal(struct host *h, const char *op, const char *what)
{
	struct hive_fw_err e = { .kind = HIVE_FW_ERR_INTERNAL };

	snprintf(e.msg, sizeof(e.msg), "%s: %s", op, what);
	fail(h, op, &e);
}

static int request(struct host *h, enum hive_fw_call call, const char *key, const char *token,
		   const char *arg, hive_fw_cb *cb)
{
	struct hive_fw_req req;

	memset(&req, 0, sizeof(req));
	req.ip = h->ip;
	req.port = h->dd->d.cfg.network.port;
	req.call = call;
	req.api_key = key;
	req.token = token;
	req.arg = arg;
	req.description = call == HIVE_FW_APIKEY_CREATE ? POWERHIVE_KEY_DESC : NULL;
	req.cb = cb;
	req.cb_arg = h;
	return hive_fw_request(h->dd->fw, &req);
}

static void recovered(const struct miner *m, const char *ip, const char *op)
{
	char key[64];

	snprintf(key, sizeof(key), "%s %s", m->mac, op);
	hive_log_recovered(key, "miner_ok mac=%s ip=%s op=%s", m->mac, ip, op);
}

/* The key works: remember it, tell apid when it does not know it, then
 * the catalogue (if this host brings it). */
static void key_works(struct host *h, const char *key, bool provisioned, bool created)
{
	struct discoverd *dd = h->dd;
	struct miner *m = h->m;
	struct hive_msg_miner_key b;

	snprintf(h->key, sizeof(h->key), "%s", key);
	snprintf(m->api_key, sizeof(m->api_key), "%s", key);
	m->key_ok = true;
	hive_log_secret(key);
	if (provisioned || !h->creds.answered || strcmp(h->creds.api_key, key) != 0) {
		hive_msg_init(HIVE_MSG_MINER_KEY, &b);
		snprintf(b.mac, sizeof(b.mac), "%s", m->mac);
		b.api_key = key;
		b.created = created;
		if (disc_publish(dd, HIVE_MSG_MINER_KEY, &b) == 0)
			dd->c.keys_published++;
	}
	if (provisioned)
		log_info("miner_key mac=%s ip=%s key=%s", m->mac, h->ip,
			 created ? "created" : "reused");
	recovered(m, h->ip, "unlock");
	recovered(m, h->ip, "provision");
	if (h->catalogue)
		disc_catalogue_fetch(h);
	else
		disc_host_end(h);
}

/* ---------------------------------------------------------------- checking */

static void on_verify(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;

	if (res->err.kind == HIVE_FW_OK) {
		h->dd->c.keys_verified++;
		if (res->call == HIVE_FW_PRESETS) {
			if ((h->presets = malloc(sizeof(*h->presets))))
				*h->presets = res->presets;
		}
		key_works(h, h->cand[h->icand], false, false);
		return;
	}
	if (res->err.kind == HIVE_FW_ERR_AUTH) {
		log_debug("key_rejected mac=%s ip=%s http_status=%d", h->m->mac, h->ip,
			  res->err.http_status);
		if (++h->icand < h->ncand)
			verify(h);
		else
			unlock(h);
		return;
	}
	fail(h, "provision", &res->err);
}

static void verify(struct host *h)
{
	enum hive_fw_call call = h->catalogue ? HIVE_FW_PRESETS : HIVE_FW_APIKEYS;

	if (request(h, call, h->cand[h->icand], NULL, NULL, on_verify) < 0)
		fail_internal(h, "provision", "could not queue the key check");
}

/* ---------------------------------------------------------------- provisioning */

static void on_created(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;

	if (res->err.kind != HIVE_FW_OK) {
		fail(h, "provision", &res->err);
		return;
	}
	h->dd->c.keys_created++;
	key_works(h, h->new_key, true, true);
}

static void on_keys(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;

	if (res->err.kind != HIVE_FW_OK) {
		fail(h, "provision", &res->err);
		return;
	}
	for (int i = 0; i < res->apikeys.n; i++) {
		const struct hive_fw_apikey *k = &res->apikeys.k[i];

		if (strcmp(k->description, POWERHIVE_KEY_DESC) == 0 &&
		    key_powerhive_format(k->key)) {
			h->dd->c.keys_reused++;
			key_works(h, k->key, true, false);
			return;
		}
	}
	if (new_key(h->new_key) < 0) {
		fail_internal(h, "provision", "no random bytes for a key");
		return;
	}
	hive_log_secret(h->new_key);
	if (request(h, HIVE_FW_APIKEY_CREATE, NULL, h->token, h->new_key, on_created) < 0)
		fail_internal(h, "provision", "could not queue the key creation");
}

static void on_unlock(const struct hive_fw_result *res, void *arg)
{
	struct host *h = arg;
	struct discoverd *dd = h->dd;
	struct miner *m = h->m;
	char q[300];

	if (res->err.kind == HIVE_FW_OK) {
		if (m->unlock_failures)
			log_info("unlock_ok mac=%s ip=%s after_failures=%d", m->mac, h->ip,
				 m->unlock_failures);
		m->unlock_failures = 0;
		m->unlock_after = 0;
		free(m->unlock);
		m->unlock = NULL;
		snprintf(h->token, sizeof(h->token), "%s", res->unlock.token);
		hive_log_secret(h->token);
		if (request(h, HIVE_FW_APIKEYS, NULL, h->token, NULL, on_keys) < 0)
			fail_internal(h, "provision", "could not queue the key listing");
		return;
	}
	if (res->err.kind == HIVE_FW_ERR_AUTH || res->err.kind == HIVE_FW_ERR_LOCKED) {
		uint64_t wait;

		m->unlock_failures++;
		wait = disc_unlock_backoff(m->unlock_failures, dd->d.cfg.intervals.discovery_seconds);
		m->unlock_after = dd->sweep_no + wait + 1;
		if (m->unlock || (m->unlock = calloc(1, sizeof(*m->unlock)))) {
			snprintf(m->unlock->failed_pass, sizeof(m->unlock->failed_pass), "%s",
				 h->password);
			m->unlock->err = res->err;
		}
		dd->c.unlock_failures++;
		log_warnx("unlock_failed mac=%s ip=%s kind=%s failures=%d skip_sweeps=%llu reason=%s",
			  m->mac, h->ip, hive_fw_err_name(res->err.kind), m->unlock_failures,
			  (unsigned long long)wait, hive_log_quote(res->err.msg, q, sizeof(q)));
	}
	fail(h, "unlock", &res->err);
}

static void unlock(struct host *h)
{
	struct discoverd *dd = h->dd;
	struct miner *m = h->m;
	const char *pw;

	m->key_ok = false;      /* every key we had was refused, or there was none */
	pw = h->creds.unlock_pass[0] ? h->creds.unlock_pass : dd->d.cfg.network.default_password;
	snprintf(h->password, sizeof(h->password), "%s", pw);
	/* A new password from apid is worth a try at once. */
	if (m->unlock_failures && h->creds.answered &&
	    strcmp(pw, m->unlock ? m->unlock->failed_pass : "") != 0) {
		log_info("unlock_backoff_reset mac=%s reason=\"stored password changed\"", m->mac);
		m->unlock_failures = 0;
		m->unlock_after = 0;
	}
	if (dd->sweep_no < m->unlock_after) {
		struct hive_fw_err e = { .kind = HIVE_FW_ERR_AUTH };
		uint64_t left = m->unlock_after - dd->sweep_no;

		dd->c.unlock_deferred++;
		if (m->unlock)
			e = m->unlock->err;
		snprintf(e.msg, sizeof(e.msg), "%.180s (next unlock in %llu sweep%s)",
			 m->unlock ? m->unlock->err.msg : "unlock: refused", (unsigned long long)left,
			 left == 1 ? "" : "s");
		disc_miner_error(dd, m, h->ip, "unlock", &e);
		disc_host_end(h);
		return;
	}
	dd->c.unlock_attempts++;
	if (request(h, HIVE_FW_UNLOCK, NULL, NULL, h->password, on_unlock) < 0)
		fail_internal(h, "unlock", "could not queue the unlock");
}

void disc_provision_start(struct host *h)
{
	struct miner *m = h->m;

	h->catalogue = disc_catalogue_claim(h->dd->catalogue, m->model, m->fw_version);
	h->ncand = h->icand = 0;
	if (key_usable(h->creds.api_key))
		snprintf(h->cand[h->ncand++], sizeof(h->cand[0]), "%s", h->creds.api_key);
	if (key_usable(m->api_key) && (h->ncand == 0 || strcmp(m->api_key, h->cand[0]) != 0))
		snprintf(h->cand[h->ncand++], sizeof(h->cand[0]), "%s", m->api_key);
	if (h->ncand > 0)
		verify(h);
	else
		unlock(h);
}
