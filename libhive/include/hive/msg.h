/* msg — every message on PowerHive's bus, as code: one C struct and one
 * field table per topic (libhive/msg.c). Senders fill a struct and encode
 * it; apid decodes into the same struct. No body key is spelled anywhere
 * else, so the two sides cannot drift; docs/bus.md's topic list is checked
 * against the tables by tests/unit/test_msg.c.
 *
 * Decoding is lenient about what it does not know (unknown fields are
 * ignored) and strict about what it reads: a missing required field, a
 * wrong type, a value out of its limits or a list that is too long rejects
 * the body with a message naming the field ("chains[2].chips.hr: more
 * than 4096 values").
 *
 * Absent values: strings NULL (or "" for the fixed-size MAC/IP/CIDR
 * buffers), numbers NAN, integers HIVE_MSG_NO_INT, booleans -1, lists
 * n == 0, JSON NULL. Encoding leaves absent fields out.
 *
 * Decoded strings and JSON values are borrowed from the decoded json_t and
 * live as long as it does; lists are allocated and freed by hive_msg_free.
 */
#ifndef HIVE_MSG_H
#define HIVE_MSG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "hive/cfg.h"
#include "hive/mac.h"

#define HIVE_MSG_NO_INT LLONG_MIN
/* HIVE_IPV4_LEN: hive/cfg.h */
#define HIVE_CIDR_LEN ((int)sizeof(((struct hive_subnet *)0)->text))

/* ---------------------------------------------------------------- topics */

#define HIVE_TOPIC_MINER_SEEN       "hive.miner.seen"
#define HIVE_TOPIC_MINER_KEY        "hive.miner.key"
#define HIVE_TOPIC_MINER_ERROR      "hive.miner.error"
#define HIVE_TOPIC_MODEL_CATALOGUE  "hive.model.catalogue"
#define HIVE_TOPIC_SWEEP_DONE       "hive.sweep.done"
#define HIVE_TOPIC_STATUS_RESULT    "hive.status.result"
#define HIVE_TOPIC_TELEMETRY_RESULT "hive.telemetry.result"
#define HIVE_TOPIC_ACTION_RESULT    "hive.action.result"
#define HIVE_TOPIC_PLANT_READING    "hive.plant.reading"
#define HIVE_TOPIC_JOB_FAILED       "hive.job.failed"
#define HIVE_TOPIC_HEARTBEAT        "hive.daemon.heartbeat"
#define HIVE_TOPIC_GOODBYE          "hive.daemon.goodbye"
#define HIVE_TOPIC_JOB_STATUS       "hive.job.status"
#define HIVE_TOPIC_JOB_TELEMETRY    "hive.job.telemetry"
#define HIVE_TOPIC_JOB_CONTROL      "hive.job.control"
#define HIVE_TOPIC_JOB_PLANT        "hive.job.plant"
#define HIVE_TOPIC_CTL_CREDENTIALS  "hive.control.credentials"
#define HIVE_TOPIC_CTL_RECHECK      "hive.control.recheck"
#define HIVE_TOPIC_CTL_HEALTH       "hive.control.health"
#define HIVE_TOPIC_CTL_ERROR        "hive.control.error"
#define HIVE_TOPIC_FEED_MINER       "hive.feed.miner"
#define HIVE_TOPIC_FEED_STATUS      "hive.feed.status"
#define HIVE_TOPIC_FEED_MODEL       "hive.feed.model"

/* One per message kind. A request and its reply share a topic but not a
 * kind. */
enum hive_msg_kind {
	HIVE_MSG_MINER_SEEN,
	HIVE_MSG_MINER_KEY,
	HIVE_MSG_MINER_ERROR,
	HIVE_MSG_MODEL_CATALOGUE,
	HIVE_MSG_SWEEP_DONE,
	HIVE_MSG_STATUS_RESULT,
	HIVE_MSG_TELEMETRY_RESULT,
	HIVE_MSG_ACTION_RESULT,
	HIVE_MSG_PLANT_READING,
	HIVE_MSG_JOB_FAILED,
	HIVE_MSG_HEARTBEAT,
	HIVE_MSG_GOODBYE,
	HIVE_MSG_JOB_STATUS,
	HIVE_MSG_JOB_TELEMETRY,
	HIVE_MSG_JOB_CONTROL,
	HIVE_MSG_JOB_PLANT,
	HIVE_MSG_CTL_CREDENTIALS,
	HIVE_MSG_CTL_CREDENTIALS_REPLY,
	HIVE_MSG_CTL_RECHECK,
	HIVE_MSG_CTL_RECHECK_REPLY,
	HIVE_MSG_CTL_HEALTH,
	HIVE_MSG_CTL_ERROR,
	HIVE_MSG_FEED_MINER,
	HIVE_MSG_FEED_STATUS,
	HIVE_MSG_FEED_MODEL,
	HIVE_MSG_KINDS
};

/* Who may send a kind: apid checks it against the endpoint a message came
 * in on (apid/guard.c, docs/bus.md Roles). */
enum hive_msg_role {
	HIVE_ROLE_APID = 1 << 0,
	HIVE_ROLE_DISCOVERD = 1 << 1,
	HIVE_ROLE_POLLERD = 1 << 2,
	HIVE_ROLE_TELEMETRYD = 1 << 3,
};
#define HIVE_ROLE_WORKERS (HIVE_ROLE_POLLERD | HIVE_ROLE_TELEMETRYD)
#define HIVE_ROLE_DAEMONS (HIVE_ROLE_DISCOVERD | HIVE_ROLE_WORKERS)
#define HIVE_ROLE_ALL (HIVE_ROLE_APID | HIVE_ROLE_DAEMONS)

enum hive_msg_channel {
	HIVE_CH_EVENTS,          /* daemons PUBLISH on bus.events, apid SUBSCRIBEs */
	HIVE_CH_JOBS,            /* apid PUSHes on bus.jobs_*, workers PULL */
	HIVE_CH_REQUEST,         /* REQ → apid's REP on bus.control */
	HIVE_CH_REPLY,           /* apid's answer to a request */
	HIVE_CH_FEED,            /* apid PUBLISHes on bus.feed */
};

/* ---------------------------------------------------------------- bodies */

/* Every job apid sends carries a random 64-bit nonce, 16 lower-case hex
 * digits, that the worker echoes in its result or hive.job.failed; apid
 * accepts a result only with the nonce of a job it issued to that miner,
 * once (docs/apid.md, Refusals). */
#define HIVE_NONCE_CHARS 16

/* The head every job result starts with; the worker fills it in. */
struct hive_msg_result_head {
	long long job;                      /* the job's id */
	char mac[HIVE_MAC_LEN];
	char ip[HIVE_IPV4_LEN];
	long long latency_ms;               /* from pull to result */
	const char *nonce;                  /* the job's nonce, echoed (NULL: none) */
};

struct hive_msg_miner_seen {
	char mac[HIVE_MAC_LEN];
	char ip[HIVE_IPV4_LEN];
	char subnet[HIVE_CIDR_LEN];         /* "" when the sweep had none */
	const char *model, *miner, *fw_name, *fw_version, *hostname;
};

struct hive_msg_miner_key {
	char mac[HIVE_MAC_LEN];
	const char *api_key;
	int created;                        /* -1 absent, 0, 1 */
};

struct hive_msg_miner_error {
	char mac[HIVE_MAC_LEN];             /* "" = not attributed to a miner */
	char ip[HIVE_IPV4_LEN];
	const char *op;                     /* discover|unlock|provision|status|telemetry|control */
	const char *kind;                   /* hive_fw_err_name() */
	long long http_status;
	const char *message;
	long long job;
};

struct hive_msg_preset {
	const char *name, *pretty;
	double watts, th;
	long long order;
	int tuned, modded_psu_required;
};

struct hive_msg_topology {
	long long rows, cols;
	json_t *chips;                      /* rows × cols chip ids (-1 = none) */
};

struct hive_msg_overclock {
	long long min_freq, max_freq, min_voltage, max_voltage;
};

struct hive_msg_model_catalogue {
	const char *model, *full_name, *series, *fw_version;
	long long num_chains, chips_per_chain, chips_per_domain;
	struct hive_msg_topology topology;
	struct hive_msg_preset *presets;
	size_t n_presets;
	struct hive_msg_overclock overclock;
};

/* A subnet's list can come in chunks (one message holds ~50,000 MACs at
 * most): chunk i of chunks, all with the same sweep id and the same
 * figures; absent chunk/chunks = the whole list in one message. */
struct hive_msg_sweep_done {
	char subnet[HIVE_CIDR_LEN];
	char (*macs)[HIVE_MAC_LEN];
	size_t n_macs;
	long long started, duration_ms, probed, answered, miners;
	long long sweep;                    /* id, unique per sender boot */
	long long chunk, chunks;            /* 1..chunks */
};

struct hive_msg_chain_status {
	long long id;
	const char *state;
	double hr_rt_ghs, freq_mhz, voltage, chip_temp_max, pcb_temp_max;
	long long red, orange, grey, hw_errors;
};

struct hive_msg_pools {
	long long total, working, accepted, rejected, stale;
	const char *url, *user;
};

struct hive_msg_switcher {
	int enabled;
	const char *top_preset, *min_preset;
};

struct hive_msg_status_result {
	struct hive_msg_result_head head;
	const char *state;
	const char *state_description;      /* "paused" while paused (state stopped) */
	long long state_time;
	const char *preset, *preset_pretty;
	int preset_tuned;
	double hr_realtime_ghs, hr_average_ghs, hr_nominal_ghs, efficiency_jth;
	double chip_temp_max, pcb_temp_max;
	double power_w;
	int power_metered;
	double preset_watts;
	double fan_duty;
	double *fans;
	size_t n_fans;
	long long hw_errors;
	struct hive_msg_chain_status *chains;
	size_t n_chains;
	struct hive_msg_pools pools;
	struct hive_msg_switcher switcher;
};

struct hive_msg_chips {
	double *hr, *freq, *volt, *temp, *errs;
	size_t n_hr, n_freq, n_volt, n_temp, n_errs;
	const char *grade;                  /* one letter per chip: r o g ? */
	const char *throttled;              /* one '0'/'1' per chip */
};

struct hive_msg_chain_telemetry {
	long long id;
	const char *state;
	double hr_realtime_ghs, hr_nominal_ghs, freq;
	struct hive_msg_chips chips;
};

struct hive_msg_telemetry_result {
	struct hive_msg_result_head head;
	const char *source;                 /* "chains" | "boards" */
	struct hive_msg_chain_telemetry *chains;
	size_t n_chains;
};

/* One action on one miner (apid's actions table), as a job. */
struct hive_msg_control_job {
	long long job;
	char mac[HIVE_MAC_LEN];
	char ip[HIVE_IPV4_LEN];
	long long port;
	const char *api_key;
	long long deadline;                 /* wall clock ms: not started after */
	long long action;                   /* the action's id */
	const char *kind;                   /* set_preset|restart|pause|resume|reboot */
	const char *preset;                 /* set_preset: the preset's name */
	const char *nonce;                  /* HIVE_NONCE_CHARS hex, echoed in the result */
};

/* The firmware accepted an action (what it did is for the read-back). */
struct hive_msg_action_result {
	struct hive_msg_result_head head;
	long long action;
	const char *kind;
	int restart_required;               /* set_preset: as POST /settings said */
	int restarted;                      /* set_preset: followed by /mining/restart */
	long long reboot_after;             /* reboot: seconds, as the firmware said */
};

/* One read of the plant's power feed (bus.jobs_plant): the source as the
 * config's power.source gives it (hive/plant.h converts both ways). */
struct hive_msg_plant_job {
	long long job;
	long long deadline;                 /* wall clock ms: not started after */
	const char *kind;                   /* aggregator | modbus */
	const char *url, *plant_id;         /* aggregator */
	const char *api_key;                /* aggregator: a secret */
	const char *host;                   /* modbus */
	long long port, unit, reg;          /* modbus; reg is "register" on the wire */
	const char *table, *type, *byte_order;
	double scale;                       /* modbus: watts per unit */
	long long timeout_ms;
	const char *nonce;                  /* echoed in the reading */
};

/* What one plant read found: raw facts; apid judges them. */
struct hive_msg_plant_reading {
	long long job;
	const char *nonce;                  /* the job's, echoed */
	const char *source;                 /* aggregator | modbus */
	int ok;
	const char *error, *error_kind;     /* when !ok */
	long long latency_ms;
	double generation_w;
	/* aggregator only */
	long long reading_id, collected_ms;
	double consumption_w, exported_w, confidence;
	const char *trust_status;
	long long gen_sources, gen_failed, cons_sources, cons_failed;
	const char *failed;                 /* names of the sources not "success" */
};

struct hive_msg_job_failed {
	long long job;
	char mac[HIVE_MAC_LEN];
	const char *kind;
	const char *nonce;                  /* the job's, echoed */
};

struct hive_msg_heartbeat {
	const char *daemon, *host;
	long long pid, started, in_flight;
	double latency_ms;
	json_t *counters;                   /* {name: integer} */
};

/* A daemon stopping on purpose (SIGTERM, SIGINT), sent before it closes
 * its sockets: apid then counts it as stopped, not missing. */
struct hive_msg_goodbye {
	const char *daemon, *host;
	long long pid, started;
	const char *reason;
};

struct hive_msg_job {
	long long job;
	char mac[HIVE_MAC_LEN];
	char ip[HIVE_IPV4_LEN];
	long long port;
	const char *api_key;
	long long deadline;                 /* wall clock ms */
	const char *endpoint;               /* telemetry: "chains" | "boards" */
	const char *nonce;                  /* HIVE_NONCE_CHARS hex, echoed in the result */
};

struct hive_msg_credentials {
	char mac[HIVE_MAC_LEN];
};

struct hive_msg_credentials_reply {
	char mac[HIVE_MAC_LEN];
	int known;
	const char *api_key, *unlock_pass;
};

/* The miners apid wants to take discoverd's whole path at their next
 * sweep: no stored key, status or telemetry refused (401/403), or listed
 * by a sweep while apid has no online miner for them (a hive.miner.seen
 * lost). all: more than the list holds, every miner should. */
struct hive_msg_recheck_reply {
	char (*macs)[HIVE_MAC_LEN];
	size_t n_macs;
	int all;
};

struct hive_msg_ctl_error {
	const char *error;
};

/* ---------------------------------------------------------------- tables */

enum hive_msg_type {
	HIVE_MT_STR,     /* const char * */
	HIVE_MT_MAC,     /* char[HIVE_MAC_LEN], normalised */
	HIVE_MT_IPV4,    /* char[HIVE_IPV4_LEN] */
	HIVE_MT_CIDR,    /* char[HIVE_CIDR_LEN], normalised "a.b.c.d/n" */
	HIVE_MT_INT,     /* long long: an integer on the wire */
	HIVE_MT_NUM,     /* double: integer or real on the wire */
	HIVE_MT_BOOL,    /* int: -1 absent, 0, 1 */
	HIVE_MT_OBJ,     /* an embedded struct (sub) */
	HIVE_MT_LIST,    /* pointer + count (count_off) of elem */
	HIVE_MT_JSON,    /* json_t *, borrowed: an object or array checked by check */
};

#define HIVE_MF_REQUIRED  0x1   /* missing or null rejects the body */
#define HIVE_MF_NONEMPTY  0x2   /* strings: "" rejects the body */
#define HIVE_MF_EMPTY_OK  0x4   /* MAC: "" means "none" */
#define HIVE_MF_UNIQUE    0x8   /* list of OBJ: first field's value is unique */
#define HIVE_MF_SECRET    0x10  /* never logged, shown as *** in docs */

struct hive_msg_schema;

struct hive_msg_field {
	const char *key;
	enum hive_msg_type type;
	unsigned flags;
	size_t off;
	size_t count_off;                   /* LIST: offset of the size_t count */
	enum hive_msg_type elem;            /* LIST: element type */
	double lo, hi;                      /* NUM/INT: range; STR: hi = max
					     * length; LIST: hi = max items */
	const struct hive_msg_schema *sub;  /* OBJ, LIST of OBJ */
	const char *const *values;          /* STR: the allowed values, NULL-ended */
	int (*check)(const json_t *v, char *err, size_t errlen); /* JSON */
	const char *unit;                   /* "GH/s", "W", "ms", ... or NULL */
	const char *doc;
};

struct hive_msg_schema {
	const char *name;
	size_t size;
	const struct hive_msg_field *fields;
	size_t n_fields;
	/* Rules across fields (lengths that must agree), after the fields
	 * decoded; NULL when none. */
	int (*check)(const void *obj, char *err, size_t errlen);
};

struct hive_msg_topic {
	enum hive_msg_kind kind;
	const char *topic;
	enum hive_msg_channel channel;
	unsigned senders;                   /* enum hive_msg_role bits */
	const struct hive_msg_schema *body; /* NULL: free-form (documented in doc) */
	const char *doc;
};

/* The table entry of a kind (never NULL for a valid kind). */
const struct hive_msg_topic *hive_msg_topic(enum hive_msg_kind kind);
/* The kind of a topic arriving on a channel; -1 when unknown. */
int hive_msg_kind_of(const char *topic, enum hive_msg_channel channel);
/* The role bit of a daemon name ("pollerd" → HIVE_ROLE_POLLERD); 0 unknown. */
unsigned hive_msg_role(const char *daemon);

/* ---------------------------------------------------------------- codec */

/* Sets every field of body (the kind's struct) to absent: call it before
 * filling a body to send, so what is not set is not sent. */
void hive_msg_init(enum hive_msg_kind kind, void *body);
/* Encodes body (a struct of the kind's type) into a new JSON object; NULL
 * when out of memory. Free-form kinds are not encodable (NULL). */
json_t *hive_msg_encode(enum hive_msg_kind kind, const void *body);
/* The field of body that lives at `field` (a member of *body, e.g.
 * &st->chains), encoded alone: new reference, or NULL when absent. */
json_t *hive_msg_encode_part(enum hive_msg_kind kind, const void *body, const void *field);
/* Decodes json into out (sizeof the kind's struct; zeroed first). 0, or
 * -1 with a message naming the field; nothing to free on -1. */
int hive_msg_decode(enum hive_msg_kind kind, const json_t *json, void *out, char *err,
		    size_t errlen);
/* Frees what decoding allocated (lists); out is left empty. */
void hive_msg_free(enum hive_msg_kind kind, void *out);

/* Writes the Markdown list of every topic and its fields (docs/bus.md
 * holds the same text between its "topics" markers). */
void hive_msg_doc(FILE *out);

#endif
