/* event — an event from bus.events, decoded once (event.c) by the receive
 * thread and applied by the writer thread.
 *
 * The bodies are libhive's message structs (hive/msg.h): strings and JSON
 * values are borrowed from the envelope's body, so the envelope must
 * outlive the event. Telemetry chips are also packed into apid's storage
 * format here, so the writer only binds blobs. */
#ifndef APID_EVENT_H
#define APID_EVENT_H

#include <stddef.h>

#include "hive/bus.h"
#include "hive/msg.h"

/* Why an event was not stored. */
enum apid_reject {
	APID_REJ_UNKNOWN_TOPIC,
	APID_REJ_BAD_BODY,
	APID_REJ_UNKNOWN_MINER,
	APID_REJ_DATABASE,
	/* refusals (guard.c, docs/apid.md): forged or not believed */
	APID_REJ_OUTSIDE_SUBNETS,
	APID_REJ_NO_NONCE,
	APID_REJ_NOT_ISSUED,
	APID_REJ_FUTURE,
	APID_REJ_SWEEP_UNCONFIRMED,
	APID_REJ_WRONG_ROLE,            /* a topic the endpoint's role may not send */
	APID_REJ_NO_JOB,                /* a worker's miner error for no job it holds */
	APID_REJ_COUNT
};
const char *apid_reject_name(enum apid_reject r);
/* The first refusal reason: APID_REJ_REFUSED_FIRST..APID_REJ_COUNT-1. */
#define APID_REJ_REFUSED_FIRST APID_REJ_OUTSIDE_SUBNETS

/* One chain's chips in the storage format (chips.h: packed columns). */
struct apid_packed_chips {
	size_t n_chips;
	unsigned char *blob;            /* len bytes, owned */
	size_t len;
};

struct apid_event {
	enum hive_msg_kind kind;        /* one of the HIVE_CH_EVENTS kinds */
	union {
		struct hive_msg_miner_seen seen;
		struct hive_msg_miner_key key;
		struct hive_msg_miner_error error;
		struct hive_msg_model_catalogue model;
		struct hive_msg_sweep_done sweep;
		struct hive_msg_status_result status;
		struct hive_msg_telemetry_result telemetry;
		struct hive_msg_action_result action_result;
		struct hive_msg_job_failed job_failed;
		struct hive_msg_heartbeat heartbeat;
		struct hive_msg_goodbye goodbye;
		struct hive_msg_plant_reading plant;
	} u;
	struct apid_packed_chips *packed; /* telemetry: one per chain, owned */
};

/* Decodes env's body by its topic. On failure returns -1 with the reason
 * (unknown topic or bad body) and a message naming the field in err;
 * nothing needs clearing then. Clear a decoded event with
 * apid_event_clear (env must outlive ev). */
int apid_event_decode(const struct hive_envelope *env, struct apid_event *ev,
		      enum apid_reject *reason, char *err, size_t errlen);
void apid_event_clear(struct apid_event *ev);

#endif
