/* plant — the power feed: where the farm learns how much power it may draw.
 *
 * Three kinds of source (../shared/firmware/plant-api.md, docs/power.md):
 *   aggregator  the plant's HTTP API (one JSON reading in MW);
 *   modbus      a power meter's register over Modbus TCP (libmodbus);
 *   manual      a budget in watts, optionally by time of day.
 * The config's power.source describes one (hive_plant_source_parse); a
 * worker reads aggregator and modbus sources with hive_plant_read (it
 * blocks: call it on a thread of its own) and publishes the reading;
 * apid judges it (confidence, staleness, jumps) and balances on it.
 */
#ifndef HIVE_PLANT_H
#define HIVE_PLANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

enum hive_plant_kind {
	HIVE_PLANT_NONE,         /* no source configured: the balancer must stay off */
	HIVE_PLANT_AGGREGATOR,
	HIVE_PLANT_MODBUS,
	HIVE_PLANT_MANUAL,
	HIVE_PLANT_KINDS
};

enum hive_modbus_table { HIVE_MODBUS_HOLDING, HIVE_MODBUS_INPUT };
enum hive_modbus_type {
	HIVE_MODBUS_U16, HIVE_MODBUS_S16, HIVE_MODBUS_U32, HIVE_MODBUS_S32, HIVE_MODBUS_FLOAT32
};
enum hive_modbus_order { HIVE_MODBUS_ABCD, HIVE_MODBUS_BADC, HIVE_MODBUS_CDAB, HIVE_MODBUS_DCBA };

#define HIVE_PLANT_SCHEDULE_MAX 48
#define HIVE_PLANT_URL_MAX 512

/* One step of a manual budget's day: from minute `from_min` after local
 * midnight, budget_w watts (until the next step, wrapping at midnight). */
struct hive_plant_step {
	int from_min;
	long long budget_w;
};

struct hive_plant_source {
	enum hive_plant_kind kind;
	int timeout_ms;                  /* one read at most (aggregator, modbus): 3000 */
	/* aggregator */
	char url[HIVE_PLANT_URL_MAX];    /* http(s)://…/data/latest */
	char plant_id[128];
	char api_key[256];               /* a secret: never logged */
	double min_confidence;           /* 0.8: readings scored under it are refused */
	/* modbus */
	char host[256];
	int port;                        /* 502 */
	int unit;                        /* 1 */
	int reg;                         /* 0-based protocol address of the first register */
	enum hive_modbus_table table;
	enum hive_modbus_type type;
	enum hive_modbus_order order;
	double scale;                    /* watts per unit of the register: 1 */
	/* manual */
	long long budget_w;
	struct hive_plant_step schedule[HIVE_PLANT_SCHEDULE_MAX];  /* by from_min */
	size_t n_schedule;
};

/* Names as the config and the API write them; NULL / -1 when unknown. */
const char *hive_plant_kind_name(enum hive_plant_kind k);   /* "none", "aggregator", ... */
int hive_plant_kind_parse(const char *s);
const char *hive_modbus_table_name(enum hive_modbus_table t);
const char *hive_modbus_type_name(enum hive_modbus_type t);
const char *hive_modbus_order_name(enum hive_modbus_order o);

/* The defaults of a source of kind (timeout, port 502, unit 1, scale 1,
 * min_confidence 0.8, ...). */
void hive_plant_source_defaults(struct hive_plant_source *s, enum hive_plant_kind kind);

/* Reads power.source (obj: the object) into *out: "kind" is required, and
 * decides which other keys count; a key of another kind is an error, an
 * unknown key a warning (warn is called with its name; may be NULL).
 * Every value is checked (url http(s)://, plant_id non-empty, confidence
 * 0..1, port 1..65535, unit 0..255, register 0..65535, a schedule of
 * "HH:MM" steps in increasing order, budgets >= 0...). 0, or -1 with a
 * message in err naming the key under power.source ("power.source.port:
 * 70000 is out of range (1..65535)"). Never echoes the api_key. */
int hive_plant_source_parse(const json_t *obj, struct hive_plant_source *out,
			    void (*warn)(const char *key, void *arg), void *warn_arg,
			    char *err, size_t errlen);

/* The manual budget in force at local minute-of-day `minute` (0..1439):
 * the schedule's last step at or before it (the day's last step before
 * the first one), else budget_w. */
long long hive_plant_budget_at(const struct hive_plant_source *s, int minute);

/* ---- a reading (blocking; its own thread) ---- */

/* What one read found. Watts are whole watts; NAN / -1 when unknown. */
struct hive_plant_reading {
	bool ok;                         /* false: error says why, nothing else counts */
	char error[256];                 /* "timeout", "http 401: unauthorized", "bad json: …",
					  * "modbus: Connection refused" */
	char error_kind[32];             /* "timeout", "refused", "http", "bad_json", "bad_field",
					  * "modbus", "internal" */
	int latency_ms;
	/* aggregator and modbus */
	double generation_w;             /* aggregator: totals.generation_mw × 10^6; modbus: the
					  * register × scale */
	/* aggregator only */
	long long reading_id;            /* -1 when none */
	long long collected_ms;          /* collection_timestamp, ms since the epoch; -1 when none */
	double consumption_w;            /* totals.consumption_mw × 10^6 when every consumption
					  * source is "success", else NAN */
	double exported_w;               /* NAN when absent */
	double confidence;               /* trust.confidence_score; NAN when absent */
	char trust_status[32];
	int gen_sources, gen_failed;     /* generation sources, and those not "success" */
	int cons_sources, cons_failed;
	char failed[256];                /* names of the sources not "success", comma separated */
	/* modbus only */
	uint16_t regs[2];
	int n_regs;
};

/* Parses an aggregator answer body (the plant-api.md JSON) into *r (ok
 * true), or fills error/error_kind ("bad_json", "bad_field") and returns -1.
 * Pure: the fuzz target and the unit test call it alone. */
int hive_plant_parse_aggregator(const char *body, size_t len, const char *plant_id,
				struct hive_plant_reading *r);

/* Decodes a register pair (or one register) per type, order and scale
 * into watts. -1 when n does not fit the type or the value is not finite. */
int hive_plant_decode_registers(const uint16_t *regs, int n, enum hive_modbus_type type,
				enum hive_modbus_order order, double scale, double *watts);

/* Reads the source once (aggregator: one HTTP GET with the bearer key;
 * modbus: connect, read, close), within s->timeout_ms. Always fills *r;
 * returns 0 when r->ok. Blocks: call it on a thread of its own. */
int hive_plant_read(const struct hive_plant_source *s, struct hive_plant_reading *r);

/* ---- the bus: hive.job.plant and hive.plant.reading (hive/msg.h) ---- */

struct hive_msg_plant_job;
struct hive_msg_plant_reading;

/* The source a hive.job.plant describes, checked as the config's would be
 * (aggregator or modbus only). 0, or -1 with a message naming the job's
 * field ("port: 70000 is out of range (1..65535)"). */
int hive_plant_job_to_source(const struct hive_msg_plant_job *j, struct hive_plant_source *out,
			     char *err, size_t errlen);
/* Fills j (hive_msg_init first) from s; its strings point into s. The
 * caller sets job and deadline. */
void hive_plant_source_to_job(const struct hive_plant_source *s, struct hive_msg_plant_job *j);
/* Fills m (hive_msg_init first) from r: an error's fields, or what was
 * read (a meter's reading carries the generation alone). Its strings point
 * into r; the caller sets job and source. */
void hive_plant_reading_to_msg(const struct hive_plant_reading *r,
			       struct hive_msg_plant_reading *m);

#endif
