/* plantsim — a simulated power plant beside the farm, on loopback.
 *
 * It publishes the plant's power the three ways ../shared/firmware/plant-api.md
 * describes a farm meets it: the energy aggregator's HTTP reading and a
 * Modbus TCP power meter (the fixed budget needs no simulator). The mining
 * containers' consumption is the simulated fleet's true draw, polled from
 * minersim's ground truth. An admin API under /sim/ sets the plant's
 * generation and injects the faults a power balancer must survive.
 *
 * Threads: main (options, the once-a-second jobs, minersim polling),
 * civetweb's workers (aggregator and admin), one Modbus thread. Every piece
 * of shared state lives behind the plant's mutex or its module's own.
 * Files by role:
 *   plantsim.c    main: options, start and stop, the periodic jobs
 *   plant.c       the plant model: generation, ramp, noise, sources, faults
 *   http.c        the HTTP server (civetweb): routing, bodies, answers
 *   aggregator.c  GET {path}?plant_id=: the reading document, auth, 5xx
 *   modbus.c      the Modbus TCP meter (libmodbus), its layouts and faults
 *   meter.c       the containers' consumption, polled from minersim
 *   admin.c       the /sim admin API
 */
#ifndef PLANTSIM_H
#define PLANTSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#define PS_VERSION      "1.0.0"
#define PS_MAX_SOURCES  16
#define PS_NAME_MAX     32
#define PS_KEY_MAX      256
/* Every body is dumped with this: 1 W in MW needs 7 digits after the point
 * up to 100 MW, and 0.045 must print as 0.045. */
#define PS_JSON_FLAGS   (JSON_COMPACT | JSON_REAL_PRECISION(12))

/* ---------------------------------------------------------------- options */

enum ps_mb_table { PS_MB_HOLDING, PS_MB_INPUT };
enum ps_mb_type { PS_MB_U16, PS_MB_S16, PS_MB_U32, PS_MB_S32, PS_MB_F32 };
enum ps_mb_order { PS_MB_ABCD, PS_MB_BADC, PS_MB_CDAB, PS_MB_DCBA };

/* Where and how the meter holds the power. */
struct ps_mb_layout {
	int table;               /* enum ps_mb_table */
	int reg;                 /* protocol address of the first register */
	int type;                /* enum ps_mb_type */
	int order;               /* enum ps_mb_order */
	double scale;            /* watts per unit */
	int unit;                /* unit id answered (0 and 255 always are) */
};

struct ps_opts {
	char http_addr[64];      /* 127.x.y.z:port */
	char path[256];          /* the reading's path */
	char plant_id[64];
	char api_key[PS_KEY_MAX];
	double generation_w;
	double consumption_w;    /* without minersim */
	double confidence;
	int generators;
	int containers;
	char minersim[256];      /* base URL of minersim's admin API, or "" */
	int minersim_ms;         /* polling period */
	bool modbus;             /* --modbus given */
	char modbus_addr[64];
	struct ps_mb_layout mb;
	bool verbose;
};

extern struct ps_opts ps_opts;

/* ---------------------------------------------------------------- plantsim.c */

/* True once SIGINT/SIGTERM arrived: long waits in handlers end early. */
bool ps_stopping(void);
/* Milliseconds since start (monotonic). */
int64_t ps_now_ms(void);
/* "2025-01-12T10:30:00Z" into buf[21]. */
const char *ps_rfc3339(time_t t, char buf[21]);
/* Splits "127.x.y.z:port"; 0, or -1 with a message (loopback only). */
int ps_parse_loopback_addr(const char *s, char ip[16], int *port, char *err, size_t errlen);

/* ---------------------------------------------------------------- plant.c */

enum ps_kind { PS_GENERATION, PS_CONSUMPTION };
enum ps_feed { PS_FEED_GENERATION, PS_FEED_CONSUMPTION };

struct ps_source_reading {
	char name[PS_NAME_MAX];
	int kind;                /* enum ps_kind */
	char status[PS_NAME_MAX];
	double w;
	time_t ts;               /* source_timestamp */
};

/* One reading of the aggregator, in watts. */
struct ps_reading {
	long long id;
	time_t collected;
	int nsources;
	struct ps_source_reading src[PS_MAX_SOURCES];
	double generation_w, consumption_w;   /* sums of the sources */
	double confidence;
};

int ps_plant_init(char *err, size_t errlen);

/* The aggregator's next reading: fresh with the next id, or the frozen one
 * while stale. */
void ps_plant_read(struct ps_reading *r);
/* What the Modbus meter shows now (W): generation with noise, 0 while the
 * generation feed jumps to zero. */
double ps_plant_meter_w(void);
/* Once a second: overdraw bookkeeping, the end of a timed zero glitch. */
void ps_plant_tick(void);
/* Ground truth for GET /sim/state (new reference). */
json_t *ps_plant_state(void);

/* Admin changes. Each returns 0, or -1 with a message for a 4xx. */
int ps_plant_set_generation(double w, double *was_w);
int ps_plant_ramp(double w, double seconds, double *from_w);
int ps_plant_drop(double percent, double *from_w, double *to_w);
int ps_plant_noise(double percent, uint64_t seed);
void ps_plant_stale(bool on);
void ps_plant_confidence(double score);
/* status "success" restores the source; 404-ish error when unknown. */
int ps_plant_source_status(const char *name, const char *status, char *err, size_t errlen);
/* seconds <= 0: until cleared. */
void ps_plant_zero(bool on, int feed, double seconds);
/* Consumption set by hand; -1 while it follows minersim. */
int ps_plant_set_consumption(double w);
/* From the meter: the fleet's draw (ok) or a failed poll (!ok). */
void ps_plant_metered(double w, bool ok);
/* Clears stale, zero, failed sources; confidence back to its flag. */
void ps_plant_reset(void);

/* ---------------------------------------------------------------- http.c */

struct mg_connection;

int ps_http_start(char *err, size_t errlen);
void ps_http_stop(void);
/* Answers: one write each, Connection kept alive. j is stolen. */
void ps_http_json(struct mg_connection *c, int status, json_t *j);
void ps_http_error(struct mg_connection *c, int status, const char *msg);
/* Reads the request body (up to 64 KiB) as a JSON object; NULL after
 * answering 400/413 itself. */
json_t *ps_http_body_object(struct mg_connection *c);

/* ---------------------------------------------------------------- aggregator.c */

void ps_agg_handle(struct mg_connection *c);
/* Failure: status 200 = healthy, else 500..599; delay before any answer. */
int ps_agg_set_failure(int status, int delay_ms);
void ps_agg_reset(void);
json_t *ps_agg_state(void);

/* ---------------------------------------------------------------- modbus.c */

enum ps_mb_mode { PS_MB_OK, PS_MB_SILENT, PS_MB_EXCEPTION, PS_MB_CLOSED };

int ps_modbus_start(char *err, size_t errlen);
void ps_modbus_stop(void);
/* Registers holding watts under layout l; returns how many (1 or 2). */
int ps_modbus_encode(double watts, const struct ps_mb_layout *l, uint16_t regs[2]);
/* Changes the fault mode and returns once the Modbus thread applied it
 * (a test may connect right after). 0, or -1 with a message. */
int ps_modbus_set_mode(int mode, int exception, char *err, size_t errlen);
void ps_modbus_reset(void);
json_t *ps_modbus_state(void);     /* null when no --modbus */
const char *ps_mb_mode_name(int mode);
int ps_mb_mode_parse(const char *s);
/* Names of the layout words and back; -1 when unknown. */
const char *ps_mb_table_name(int t);
const char *ps_mb_type_name(int t);
const char *ps_mb_order_name(int o);
int ps_mb_table_parse(const char *s);
int ps_mb_type_parse(const char *s);
int ps_mb_order_parse(const char *s);

/* ---------------------------------------------------------------- meter.c */

/* Validates --minersim (http://127.x.y.z:port only). 0 / -1 with a message. */
int ps_meter_check_url(const char *url, char *err, size_t errlen);
int ps_meter_init(char *err, size_t errlen);
void ps_meter_free(void);
/* One GET /sim/fleet; hands power_w to the plant. */
void ps_meter_poll(void);
json_t *ps_meter_state(void);      /* null when not following minersim */

/* ---------------------------------------------------------------- admin.c */

void ps_admin_handle(struct mg_connection *c);

#endif
