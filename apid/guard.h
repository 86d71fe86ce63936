/* guard — what apid checks in an event before it believes it (docs/apid.md,
 * Refusals):
 *
 *   - the sender's role, told by the endpoint the event came in on
 *     (apid_guard_check_role): discoverd's topics only on its own;
 *     a worker's miner error only for a job apid has out for that miner;
 *   - an address outside network.subnets (hive.miner.seen, its subnet,
 *     a sweep's subnet);
 *   - a result (status, telemetry, action, plant reading, hive.job.failed)
 *     for a job apid did not issue: every job carries a random 64-bit
 *     nonce; a result is accepted once, for the miner the job was for, and
 *     only with that nonce;
 *   - an envelope time more than network.max_clock_skew_seconds ahead of
 *     apid's clock;
 *   - a sweep that would take more than network.sweep_drop_confirm_share
 *     of its subnet's online miners offline, until a second sweep says the
 *     same.
 *
 * The senders (sched.c, power.c) issue nonces here; the receive thread
 * checks each decoded event (apid_guard_check); the writer asks about
 * sweeps. Thread-safe. */
#ifndef APID_GUARD_H
#define APID_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "hive/cfg.h"
#include "hive/msg.h"

/* The endpoints of apid's events and control sockets, in the order apid.c
 * opens them: who sent a message (hive_envelope.endpoint). */
enum apid_endpoint {
	APID_ENDPOINT_WORKERS = 0,      /* bus.events, bus.control */
	APID_ENDPOINT_DISCOVERY = 1,    /* bus.discovery_events, bus.discovery_control */
};

enum apid_guard_job {
	APID_GUARD_STATUS,
	APID_GUARD_TELEMETRY,
	APID_GUARD_CONTROL,
	APID_GUARD_PLANT,
	APID_GUARD_JOB_KINDS
};

/* NULL on allocation failure. Takes the settings of cfg (see configure). */
struct apid_guard *apid_guard_new(const struct hive_cfg *cfg);
void apid_guard_free(struct apid_guard *g);
/* network.subnets, network.max_clock_skew_seconds,
 * network.sweep_drop_confirm_share, bus.require_job_nonce (a reload). */
void apid_guard_configure(struct apid_guard *g, const struct hive_cfg *cfg);

/* Fills nonce (HIVE_NONCE_CHARS hex digits + NUL) with fresh random bits
 * and remembers the job: kind, id, mac ("" for plant jobs), accepted
 * until keep_ms from now. g may be NULL (then only the nonce is made). */
void apid_guard_issue(struct apid_guard *g, enum apid_guard_job kind, long long job,
		      const char *mac, char nonce[HIVE_NONCE_CHARS + 1], int64_t keep_ms);

/* Checks a decoded event before it is queued for the writer: 0 to accept,
 * or -1 with the reason and a message for the log. A result accepted here
 * has used up its job's nonce. */
int apid_guard_check(struct apid_guard *g, const struct hive_envelope *env,
		     const struct apid_event *ev, enum apid_reject *why, char *err,
		     size_t errlen);

/* Checks that the role of the endpoint env came in on may send ev (the
 * senders of its topic in libhive's message table; docs/bus.md, Roles):
 * discoverd's endpoint carries discoverd's topics only, bus.events the
 * workers' (an unknown endpoint, none). A heartbeat or goodbye must name
 * a daemon of that role. A worker's hive.miner.error is believed only for
 * a job apid has out for that miner, named by its job id (with
 * bus.require_job_nonce; the job stays out: its hive.job.failed follows).
 * 0, or -1 with the reason (wrong role, no job held) and a message. */
int apid_guard_check_role(struct apid_guard *g, const struct hive_envelope *env,
			  const struct apid_event *ev, enum apid_reject *why, char *err,
			  size_t errlen);

/* Is ip (dotted quad) inside network.subnets? True when none are set. */
bool apid_guard_ip_ok(struct apid_guard *g, const char *ip);

/* The writer, before a sweep of subnet marks anybody offline: would_drop
 * of online miners would go. True when the sweep must wait for a second
 * one that says the same (the first such sweep of the subnet); false when
 * it may act (few enough, or confirmed). */
bool apid_guard_sweep_hold(struct apid_guard *g, const char *subnet, long long would_drop,
			   long long online);

/* Jobs remembered now (issued and not yet answered or expired). */
size_t apid_guard_outstanding(struct apid_guard *g);

#endif
