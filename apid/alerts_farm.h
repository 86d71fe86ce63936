/* alerts_farm — the conditions of the rules that are about the farm and the
 * suite rather than one miner: power_over_available, feed_stale,
 * power_fallback (the balancer, power.h), daemon_missing, bus_loss,
 * db_write_failed (health.h, traffic.h, writer.h) and disk_low (the
 * database's file system). The alerts engine (alerts.h) asks for them every
 * evaluation and runs their lifecycle like any other rule's.
 */
#ifndef APID_ALERTS_FARM_H
#define APID_ALERTS_FARM_H

#include <stdint.h>

#include "hive/cfg.h"

struct apid;

/* One condition true now on one subject. */
struct apid_alert_cond {
	int rule;                /* enum hive_alert_rule_id */
	char subject[64];        /* a MAC, a daemon ("pollerd@host:pid"), "farm", "database" */
	char mac[18];            /* the miner's MAC; "" when the subject is not a miner */
	double value;            /* the figure that fired it (NAN: none) */
	double threshold;        /* what it was compared with (NAN: none) */
	char summary[192];       /* one line for people: "pollerd@h1 silent for 42 s" */
};

/* Appends the farm and suite conditions true now to out (at most max, of
 * rules enabled in cfg->alerts.rules); returns how many. Called from the
 * alerts thread; reads only thread-safe state of a. */
int apid_alerts_farm(struct apid *a, const struct hive_cfg *cfg, int64_t now_ms,
		     struct apid_alert_cond *out, int max);

#endif
