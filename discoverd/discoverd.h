/* discoverd — finds the miners on the configured subnets, provisions an
 * API key on each, publishes what it saw. One process, one hive_loop.
 *
 *   discoverd.c  main: options, config, sockets, the sweep and heartbeat
 *                timers, reload, shutdown
 *   sweep.c      one sweep: every subnet in turn, non-blocking connect
 *                probes with a cap in flight, hive.sweep.done per subnet
 *   identify.c   GET /info on the hosts that answered; hive.miner.seen;
 *                hosts that are not miners; asking apid for credentials
 *   control.c    the credentials requests to apid (REQ) on a thread of
 *                their own, so a slow or absent apid never stalls the loop
 *   provision.c  checking the key, unlocking with backoff, reusing or
 *                creating the PowerHive key; hive.miner.key
 *   catalogue.c  /model and /autotune/presets once per model and firmware;
 *                hive.model.catalogue
 *   miners.c     what discoverd remembers per miner (by MAC and by IP)
 *
 * Per address nothing is allocated: a sweep walks its subnet with a cursor
 * and holds only the probes in flight. Per miner found, one small record.
 * docs/discoverd.md has the story.
 */
#ifndef DISCOVERD_H
#define DISCOVERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "hive/cfg.h"
#include "hive/daemon.h"
#include "hive/fw.h"
#include "hive/loop.h"
#include "hive/msg.h"

#define DISC_KEY_MAX   64          /* API keys we accept from apid or a miner */
#define DISC_PASS_MAX  128
#define DISC_HOLD_MAX  3           /* sweeps a known miner's /info may fail */
/* An unchanged miner is confirmed by /info alone; every this many sweeps
 * (staggered by MAC) it takes the whole path again: credentials, key
 * check, hive.miner.seen. */
#define DISC_REFRESH_SWEEPS 10

/* ---------------------------------------------------------------- miners */

/* Why a miner's last unlock failed: apart from struct miner, which a /16
 * full of miners holds 65,000 of, because few miners ever fail one. */
struct miner_unlock {
	char failed_pass[DISC_PASS_MAX + 1]; /* the password that failed (never logged) */
	struct hive_fw_err err;
};

struct miner {
	uint64_t id;                   /* the MAC as a 48-bit number */
	char mac[HIVE_MAC_LEN];
	uint32_t addr;                 /* where it answered last (host order), 0 */
	char model[HIVE_FW_NAME_LEN];
	char fw_version[HIVE_FW_NAME_LEN];
	char api_key[DISC_KEY_MAX + 1];/* the key that worked last, "" */
	bool key_ok;                   /* api_key worked and nothing refused it since */
	bool busy;                     /* a host pipeline works on it */
	uint64_t seen_sweep;           /* subnet sweep (c.subnet_sweeps) it was last listed in */
	uint64_t listed_sweep;         /* sweep (sweep_no) it was last listed in */
	uint64_t seen_hash;            /* what its last hive.miner.seen said (ip, names), 0 */
	uint64_t recheck_sweep;        /* sweep in which apid asked to check its key */
	int held;                      /* sweeps in a row listed on a failed /info */
	int unlock_failures;           /* 403/429 in a row */
	uint64_t unlock_after;         /* first sweep number that may unlock again */
	struct miner_unlock *unlock;   /* after a failed unlock, until one works; owned */
};

struct disc_miners;

struct disc_miners *disc_miners_new(void);
void disc_miners_free(struct disc_miners *t);
/* The miner with this (normalised) MAC, created when create is set. NULL
 * when absent or out of memory. */
struct miner *disc_miners_get(struct disc_miners *t, const char *mac, bool create);
/* The miner last seen at addr, or NULL. */
struct miner *disc_miners_at(struct disc_miners *t, uint32_t addr);
/* Records that m answered at addr (a DHCP move or swap updates both maps). */
void disc_miners_move(struct disc_miners *t, struct miner *m, uint32_t addr);
size_t disc_miners_count(const struct disc_miners *t);

/* ---------------------------------------------------------------- counters */

struct disc_counters {
	uint64_t sweeps;               /* complete sweeps (every subnet) */
	uint64_t subnet_sweeps;         /* subnet sweeps started (ids MACs listed per subnet) */
	uint64_t subnet_sweeps_done;
	uint64_t probed, answered;     /* connect probes sent / accepted */
	uint64_t probe_errors;         /* socket() or connect() failing on our side */
	uint64_t identified;           /* /info answers from miners */
	uint64_t unchanged;            /* of those, confirmed by /info alone */
	uint64_t rechecks_asked;       /* miners apid listed for a key check */
	uint64_t sweep_chunks;         /* hive.sweep.done messages sent */
	uint64_t not_miners;           /* answered but not a Vnish miner */
	uint64_t info_errors;          /* a known miner's /info failed */
	uint64_t keys_verified;        /* a known key still worked */
	uint64_t keys_created, keys_reused;
	uint64_t keys_published;
	uint64_t unlock_attempts, unlock_failures, unlock_deferred;
	uint64_t provision_errors;
	uint64_t apid_unavailable;     /* credentials asked without an answer */
	uint64_t catalogues;           /* hive.model.catalogue published */
	uint64_t catalogue_errors;
	uint64_t publish_failed;
	uint64_t miners;               /* miners in the last complete sweep */
	int64_t last_sweep_ms;
	double info_latency_sum;       /* /info answers since the last heartbeat */
	uint64_t info_latency_n;
	double info_latency_ms;
};

/* ---------------------------------------------------------------- hosts */

/* Answer of apid to a credentials request. */
struct disc_creds {
	bool answered;                 /* apid answered (else: unavailable) */
	bool known;
	char api_key[DISC_KEY_MAX + 1];/* "" = none */
	char unlock_pass[DISC_PASS_MAX + 1]; /* "" = none */
};

/* One host that answered a probe, from /info to the end of provisioning. */
struct host {
	struct discoverd *dd;
	struct host *prev, *next;      /* dd->hosts */
	uint32_t addr;
	char ip[HIVE_IPV4_LEN];
	struct miner *m;               /* once /info said which miner */
	struct disc_creds creds;
	char cand[2][DISC_KEY_MAX + 1];/* keys to try: apid's, then ours */
	int ncand, icand;
	char key[DISC_KEY_MAX + 1];    /* the key that works */
	char token[256];               /* bearer token after an unlock */
	char new_key[33];
	char password[DISC_PASS_MAX + 1];
	bool catalogue;                /* this host fetches its model's catalogue */
	struct hive_fw_presets *presets; /* fetched with the key, for the catalogue */
	struct hive_fw_info info;
};

/* ---------------------------------------------------------------- the daemon */

struct disc_sweep;
struct disc_control;
struct disc_catalogue;

struct discoverd {
	struct hive_daemon d;
	struct hive_loop *loop;
	struct hive_fw_client *fw;
	struct hive_bus *events;       /* PUBLISH, dial bus.events */
	struct disc_control *control;  /* REQ bus.control on its own thread */
	struct disc_miners *miners;
	struct disc_catalogue *catalogue;
	struct disc_sweep *sweep;      /* the sweep running, or NULL */
	struct host *hosts;            /* pipelines in flight */
	int nhosts;
	uint64_t sweep_no;             /* sweeps started */
	uint64_t recheck_all;          /* sweep in which every key is checked (apid's list was cut) */
	int probe_cap;                 /* probes in flight at most (fd budget applied) */
	int64_t sweep_timer;
	int64_t beat_timer;
	struct disc_counters c;
};

/* discoverd.c */
/* Encodes body (the struct of kind, hive/msg.h) and publishes it on the
 * events bus. 0 / -1 (counted as publish_failed). */
int disc_publish(struct discoverd *dd, enum hive_msg_kind kind, const void *body);
/* hive.miner.error for a miner (m may be NULL: then only the IP is known). */
void disc_miner_error(struct discoverd *dd, const struct miner *m, const char *ip,
		      const char *op, const struct hive_fw_err *err);
/* A sweep finished: arms the next one. */
void disc_sweep_finished(struct discoverd *dd, int64_t started_mono);

/* sweep.c */
/* Starts a sweep over every configured subnet. 0 / -1 (nothing to sweep or
 * out of memory; the caller arms the next attempt). */
int disc_sweep_start(struct discoverd *dd);
/* Lists m's MAC in the running subnet sweep (once per sweep). */
void disc_sweep_saw(struct discoverd *dd, struct miner *m);
/* apid's answer to the sweep's hive.control.recheck (NULL: no answer);
 * the sweep starts probing after it. */
void disc_sweep_recheck(struct discoverd *dd, const struct hive_msg_recheck_reply *r);
/* A host pipeline ended; the subnet may be done. */
void disc_sweep_host_done(struct discoverd *dd);
/* Closes the probes in flight and forgets the sweep (shutdown). */
void disc_sweep_abort(struct discoverd *dd);
/* The subnet being swept ("" between sweeps). */
const char *disc_sweep_subnet(const struct discoverd *dd);
int disc_sweep_probes_in_flight(const struct discoverd *dd);

/* identify.c */
/* A probe to addr was accepted: starts its pipeline. 0 / -1. */
int disc_host_start(struct discoverd *dd, uint32_t addr);
/* Ends h's pipeline and frees it. */
void disc_host_end(struct host *h);
/* Frees every pipeline left, without callbacks (shutdown, after the
 * firmware client and the control thread are gone). */
void disc_hosts_free(struct discoverd *dd);
/* apid's answer for h (called on the loop). */
void disc_host_creds(struct host *h, const struct disc_creds *creds);

/* control.c */
struct disc_control *disc_control_start(struct discoverd *dd, char *err, size_t errlen);
/* Asks apid for h's credentials; disc_host_creds(h, ...) runs later on the
 * loop, also when apid does not answer. 0 / -1 (the caller goes on as if
 * apid were unavailable). */
int disc_control_ask(struct disc_control *c, struct host *h);
/* Asks apid which miners' keys to check again; disc_sweep_recheck runs
 * later on the loop, also when apid does not answer. 0 / -1. */
int disc_control_recheck(struct disc_control *c);
/* Stops the thread; requests not answered are dropped (their hosts stay
 * the caller's). NULL is fine. */
void disc_control_stop(struct disc_control *c);

/* provision.c */
/* After the credentials: checks the key, provisions one if needed, then
 * hands over to the catalogue. */
void disc_provision_start(struct host *h);
/* The unlock backoff in sweeps after `failures` failures in a row. */
uint64_t disc_unlock_backoff(int failures, int discovery_seconds);

/* catalogue.c */
struct disc_catalogue *disc_catalogue_new(void);
void disc_catalogue_free(struct disc_catalogue *cat);
/* Whether m's model/firmware still needs a catalogue and nobody fetches
 * it; when true the caller now owns the fetch. */
bool disc_catalogue_claim(struct disc_catalogue *cat, const char *model, const char *fw_version);
/* Whether this process has published that catalogue already. */
bool disc_catalogue_published(struct disc_catalogue *cat, const char *model,
			      const char *fw_version);
/* Gives a claim back without publishing (the fetch failed). */
void disc_catalogue_release(struct disc_catalogue *cat, const char *model, const char *fw_version);
/* With the key working: fetches what is missing and publishes; ends h. */
void disc_catalogue_fetch(struct host *h);
/* A hive.model.catalogue body and what it points to. */
struct disc_catalogue_body {
	struct hive_msg_model_catalogue c;
	struct hive_msg_preset presets[HIVE_FW_MAX_PRESETS];
	json_t *chips;                 /* topology.chips, owned: json_decref it */
};
/* Fills b from /model and /autotune/presets (strings borrowed from the
 * arguments). 0, or -1 out of memory. */
int disc_catalogue_body_fill(struct disc_catalogue_body *b, const char *model,
			     const char *fw_version, const struct hive_fw_model *md,
			     const struct hive_fw_presets *ps);

#endif
