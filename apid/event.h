/* event — an event from bus.events, decoded (event.c). */
#ifndef APID_EVENT_H
#define APID_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "hive/bus.h"
#include "hive/mac.h"


#define APID_MAC_LEN HIVE_MAC_LEN
#define APID_IP_LEN  16
#define APID_SUBNET_LEN 24

enum apid_event_kind {
	APID_EV_MINER_SEEN,
	APID_EV_MINER_KEY,
	APID_EV_MINER_ERROR,
	APID_EV_MODEL,
	APID_EV_SWEEP,
	APID_EV_STATUS,
	APID_EV_TELEMETRY,
	APID_EV_JOB_FAILED,
	APID_EV_HEARTBEAT,
};

/* Why an event was not stored. */
enum apid_reject {
	APID_REJ_UNKNOWN_TOPIC,
	APID_REJ_BAD_BODY,
	APID_REJ_UNKNOWN_MINER,
	APID_REJ_DATABASE,
	APID_REJ_COUNT
};
const char *apid_reject_name(enum apid_reject r);

/* Decoded bodies. Strings held as pointers are borrowed from the envelope's
 * body and live as long as it does; "" or NULL means absent. Numbers held
 * as double are NAN when absent. */
struct apid_ev_seen {
	char mac[APID_MAC_LEN], ip[APID_IP_LEN], subnet[APID_SUBNET_LEN];
	const char *model, *miner, *fw_name, *fw_version, *hostname;
};
struct apid_ev_key {
	char mac[APID_MAC_LEN];
	const char *api_key;
};
struct apid_ev_error {
	char mac[APID_MAC_LEN];      /* "" = not attributed to a miner */
	const char *op, *kind, *message;
	double http_status;
};
struct apid_ev_preset {
	const char *name, *pretty;
	double watts, th;
	long long order;
	bool tuned;
};
struct apid_ev_model {
	const char *alias, *full_name, *fw_version;
	double num_chains, chips_per_chain;
	json_t *topology;            /* borrowed; NULL when absent */
	size_t n_presets;
	struct apid_ev_preset *presets; /* owned */
};
struct apid_ev_sweep {
	char subnet[APID_SUBNET_LEN];   /* normalised CIDR */
	json_t *macs;                   /* borrowed array of valid lower-case MACs */
	double started, duration_ms, probed, answered, miners;
};
struct apid_ev_status {
	char mac[APID_MAC_LEN];
	long long job;                  /* 0 when absent */
	const char *state, *preset;
	double state_time, hr_realtime, hr_average, hr_nominal, chip_temp_max,
	       pcb_temp_max, power_w, fan_duty, hw_errors;
	int power_metered;              /* -1 absent, 0, 1 */
	json_t *fans, *chains, *pools;  /* borrowed; NULL when absent */
};
struct apid_ev_chain {
	long long id;
	const char *state;
	double hr_realtime, hr_nominal, freq;
	size_t n_chips;
	unsigned char *chips;           /* owned, APID_CHIP_BYTES * n_chips */
};
struct apid_ev_telemetry {
	char mac[APID_MAC_LEN];
	long long job;
	char source[8];                 /* "chains" | "boards" */
	size_t n_chains;
	struct apid_ev_chain *chains;   /* owned */
};
struct apid_ev_job_failed {
	char mac[APID_MAC_LEN];
	long long job;
	const char *kind;
};
struct apid_ev_heartbeat {
	const char *daemon, *host;
	double pid, started, in_flight, latency_ms;
	json_t *counters;               /* borrowed object or NULL */
};

struct apid_event {
	enum apid_event_kind kind;
	union {
		struct apid_ev_seen seen;
		struct apid_ev_key key;
		struct apid_ev_error error;
		struct apid_ev_model model;
		struct apid_ev_sweep sweep;
		struct apid_ev_status status;
		struct apid_ev_telemetry telemetry;
		struct apid_ev_job_failed job_failed;
		struct apid_ev_heartbeat heartbeat;
	} u;
};

/* Decodes env's body by its topic. On failure returns -1 with the reason
 * (unknown topic or bad body) and a message naming the field in err;
 * nothing needs clearing then. Clear a decoded event with
 * apid_event_clear (env must outlive ev). */
int apid_event_decode(const struct hive_envelope *env, struct apid_event *ev,
		      enum apid_reject *reason, char *err, size_t errlen);
void apid_event_clear(struct apid_event *ev);

#endif
