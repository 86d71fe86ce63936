/* fw — the firmware client: talks to Vnish-firmware miners over HTTP.
 *
 * Two layers:
 *  - parsers (fw_parse.c): pure functions from a response body to a typed,
 *    fixed-size struct, or a typed error naming the endpoint and the field
 *    ("summary: miner.chip_temp.max: expected integer, got string");
 *  - the client (fw.c): many asynchronous requests in flight from one thread
 *    on libcurl's multi interface, driven by a hive_loop (the curl sockets
 *    and curl's timer are watched by the loop next to the daemon's other
 *    fds), plus a blocking call for tools and tests.
 *
 * The contract with the miners is /work/shared/firmware/vnish-api.md; the
 * docs are in docs/firmware-client.md.
 *
 * Ownership: every parsed struct is fixed-size (no pointers inside), so a
 * caller keeps a result by copying it. A result handed to a completion
 * callback belongs to the client and is valid until the callback returns.
 */
#ifndef HIVE_FW_H
#define HIVE_FW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hive_loop;

/* ---------------------------------------------------------------- errors */

enum hive_fw_err_kind {
	HIVE_FW_OK = 0,
	HIVE_FW_ERR_TIMEOUT,       /* no complete answer within the timeout */
	HIVE_FW_ERR_REFUSED,       /* connection refused / host unreachable */
	HIVE_FW_ERR_RESET,         /* reset or closed mid-body, truncated transfer */
	HIVE_FW_ERR_HTTP,          /* any other non-2xx status (http_status says which) */
	HIVE_FW_ERR_AUTH,          /* 401 / 403 */
	HIVE_FW_ERR_LOCKED,        /* 429: unlock rate limit */
	HIVE_FW_ERR_NOT_FOUND,     /* 404 */
	HIVE_FW_ERR_BAD_JSON,      /* not JSON (or empty where JSON is due) */
	HIVE_FW_ERR_MISSING_FIELD, /* a needed field is absent or null */
	HIVE_FW_ERR_BAD_FIELD,     /* a field has the wrong type or an impossible value */
	HIVE_FW_ERR_TOO_LARGE,     /* body over the client's cap */
	HIVE_FW_ERR_INTERNAL,      /* our side: allocation, curl setup, cancelled */
};
#define HIVE_FW_ERR_KINDS (HIVE_FW_ERR_INTERNAL + 1)

/* "ok", "timeout", "refused", "reset", "http", "auth", "locked", "not_found",
 * "bad_json", "missing_field", "bad_field", "too_large", "internal". These
 * names go on the bus and into the database; never change them. */
const char *hive_fw_err_name(enum hive_fw_err_kind kind);
/* The reverse of hive_fw_err_name. 0 / -1 for an unknown name. */
int hive_fw_err_parse(const char *name, enum hive_fw_err_kind *out);

struct hive_fw_err {
	enum hive_fw_err_kind kind;
	int http_status;           /* 0 when no HTTP answer arrived */
	char endpoint[24];         /* "summary", "autotune/presets", ... */
	char msg[256];             /* "<endpoint>: <what>", never holds a secret */
};

/* ---------------------------------------------------------------- calls */

enum hive_fw_call {
	HIVE_FW_INFO,              /* GET /info                    → info */
	HIVE_FW_MODEL,             /* GET /model                   → model */
	HIVE_FW_STATUS,            /* GET /status                  → status */
	HIVE_FW_SUMMARY,           /* GET /summary (key)           → summary */
	HIVE_FW_PERF_SUMMARY,      /* GET /perf-summary            → perf */
	HIVE_FW_CHAINS,            /* GET /chains, on 404 /boards  → chains */
	HIVE_FW_PRESETS,           /* GET /autotune/presets (key)  → presets */
	HIVE_FW_UNLOCK,            /* POST /unlock {"pw":arg}      → unlock */
	HIVE_FW_APIKEYS,           /* GET /apikeys                 → apikeys */
	HIVE_FW_APIKEY_CREATE,     /* POST /apikeys {"description","key":arg} */
	HIVE_FW_APIKEY_DELETE,     /* POST /apikeys/delete {"key":arg} */
	HIVE_FW_SET_PRESET,        /* POST /settings {"miner":{"overclock":{"preset":arg}}} → settings */
	HIVE_FW_MINING_RESTART,    /* POST /mining/restart */
	HIVE_FW_MINING_STOP,
	HIVE_FW_MINING_START,
	HIVE_FW_MINING_PAUSE,
	HIVE_FW_MINING_RESUME,
	HIVE_FW_REBOOT,            /* POST /system/reboot          → reboot */
	HIVE_FW_BOARDS,            /* GET /boards (what HIVE_FW_CHAINS falls back to) → chains */
};
#define HIVE_FW_CALLS (HIVE_FW_BOARDS + 1)

/* Short name for logs and the bus: "info", ..., "perf_summary", "chains",
 * "presets", "unlock", "apikeys", "apikey_create", "apikey_delete",
 * "set_preset", "restart", "stop", "start", "pause", "resume", "reboot",
 * "boards". NULL for an unknown call. */
const char *hive_fw_call_name(enum hive_fw_call call);
/* Path under /api/v1 ("summary", "autotune/presets", "mining/restart"...);
 * also the endpoint in hive_fw_err. NULL for an unknown call. */
const char *hive_fw_call_path(enum hive_fw_call call);

/* ---------------------------------------------------------------- results */

#define HIVE_FW_MAX_CHAINS   6
#define HIVE_FW_MAX_CHIPS    256   /* per chain */
#define HIVE_FW_MAX_FANS     8
#define HIVE_FW_MAX_PRESETS  64
#define HIVE_FW_MAX_APIKEYS  32
#define HIVE_FW_MAX_TOPO     1024  /* rows * cols */
#define HIVE_FW_NAME_LEN     32    /* preset names, model codes, states */
#define HIVE_FW_TEXT_LEN     64    /* pretty names, hostnames */

/* GET /info */
struct hive_fw_info {
	char mac[18];                   /* "aa:bb:cc:dd:ee:ff", lower case */
	char ip[46];
	char model[HIVE_FW_NAME_LEN];   /* code: "s19", "s19jpro" */
	char miner[HIVE_FW_TEXT_LEN];   /* pretty: "Antminer S19" */
	char fw_name[HIVE_FW_NAME_LEN]; /* "Vnish" */
	char fw_version[HIVE_FW_NAME_LEN];
	char serial[HIVE_FW_TEXT_LEN];  /* "" when absent; may be "N/A" */
	char hostname[HIVE_FW_TEXT_LEN];/* "" when absent */
	char uptime[HIVE_FW_NAME_LEN];  /* as sent: "3 days, 4:05" */
	char platform[16];              /* "aml", "bb", ... or "" */
};

/* GET /model. Numbers not reported are 0 (none of them is valid at 0). */
struct hive_fw_model {
	char full_name[HIVE_FW_TEXT_LEN];  /* "Antminer S19" */
	char model[HIVE_FW_NAME_LEN];      /* "s19" */
	char series[16];                   /* "x19" or "" */
	int num_chains;
	int chips_per_chain;
	int chips_per_domain;              /* 0 when absent */
	int topo_rows, topo_cols;          /* 0 x 0 when the topology is absent */
	int16_t topo_chips[HIVE_FW_MAX_TOPO]; /* row-major rows*cols chip ids, -1 = empty */
	struct {
		int min_fan_pwm, min_target_temp, max_target_temp;
		int fan_min_count_min, fan_min_count_max, fan_min_count_default;
	} cooling;
	struct {
		int min_voltage, max_voltage, default_voltage, max_voltage_stock_psu;
		int min_freq, max_freq, default_freq, warn_freq;
	} overclock;
};

/* GET /status */
struct hive_fw_status {
	char miner_state[HIVE_FW_NAME_LEN]; /* mining|initializing|auto-tuning|... */
	long long miner_state_time;         /* seconds in that state */
	bool find_miner, restart_required, reboot_required, unlocked;
	char description[HIVE_FW_TEXT_LEN]; /* "" when absent */
	int failure_code;                   /* 0 when absent */
};

struct hive_fw_fan {
	int id;
	int rpm;
	int max_rpm;
	bool ok;                            /* status "ok" (false: "lost"/other) */
};

/* One entry of /summary's miner.chains. */
struct hive_fw_chain_summary {
	int id;                             /* 1-based */
	double frequency;                   /* MHz */
	int voltage;                        /* mV, e.g. 13800 */
	int power;                          /* W, 0 when not reported */
	double hashrate_ideal, hashrate_rt; /* GH/s */
	long long hw_errors;
	int pcb_temp_min, pcb_temp_max, chip_temp_min, chip_temp_max;
	int red, orange, grey;              /* chip counts per grade */
	char state[HIVE_FW_NAME_LEN];       /* mining|initializing|... */
};

/* GET /summary */
struct hive_fw_summary {
	char state[HIVE_FW_NAME_LEN];       /* miner_status.miner_state */
	char state_description[HIVE_FW_TEXT_LEN]; /* miner_status.description ("paused") or "" */
	long long state_time;
	double hr_realtime, hr_average, hr_nominal; /* GH/s */
	int pcb_temp_min, pcb_temp_max, chip_temp_min, chip_temp_max;
	int power_consumption;              /* W; 0 = not metered */
	double efficiency;                  /* J/TH, 0 when absent */
	long long hw_errors;
	int fan_duty;                       /* %, -1 when absent */
	int nfans;
	struct hive_fw_fan fans[HIVE_FW_MAX_FANS];
	int nchains;
	struct hive_fw_chain_summary chains[HIVE_FW_MAX_CHAINS];
	struct {
		int total, working;             /* user pools (DevFee excluded) */
		long long accepted, rejected, stale; /* summed over user pools */
		char url[256];                  /* the active user pool, "" if none */
		char user[128];
	} pools;
};

/* GET /perf-summary */
struct hive_fw_perf {
	bool has_preset;                    /* current_preset present and not null */
	char preset[HIVE_FW_NAME_LEN];      /* "disabled" or e.g. "2620" */
	char preset_pretty[HIVE_FW_TEXT_LEN];
	bool preset_tuned;                  /* status "tuned" */
	bool modded_psu_required;
	int preset_watts;                   /* parsed as hive_fw_preset_parse; -1 = unknown */
	double preset_th;                   /* < 0 = unknown */
	bool has_switcher;                  /* preset_switcher present */
	bool switcher_enabled;
	char top_preset[HIVE_FW_NAME_LEN];  /* "" when null/absent */
	char min_preset[HIVE_FW_NAME_LEN];  /* "" when null/absent */
	int power_delta;                    /* 0 when absent */
};

struct hive_fw_chip {
	int id;                             /* 1-based */
	int freq;                           /* MHz */
	int volt;                           /* mV */
	int errs;
	float hr;                           /* GH/s */
	float temp;                         /* °C */
	char grade;                         /* 'r'ed, 'o'range, 'g'rey, '?' */
	bool throttled;
};

struct hive_fw_chain {
	int id;
	char state[HIVE_FW_NAME_LEN];       /* "" when absent */
	double hr_realtime, hr_nominal;     /* GH/s */
	double freq;                        /* MHz */
	int nchips;
	struct hive_fw_chip chips[HIVE_FW_MAX_CHIPS];
};

/* GET /chains or /boards (~45 KB: allocate it, do not put it on a small stack) */
struct hive_fw_chains {
	bool boards;                        /* the answer came from /boards */
	int nchains;
	struct hive_fw_chain chains[HIVE_FW_MAX_CHAINS];
};

struct hive_fw_preset {
	char name[HIVE_FW_NAME_LEN];        /* what POST /settings takes */
	char pretty[HIVE_FW_TEXT_LEN];      /* "2620 watt ~ 91 TH" */
	int watts;                          /* expected power, -1 = unknown */
	double th;                          /* expected hashrate TH/s, < 0 = unknown */
	bool tuned;                         /* status "tuned" */
	bool modded_psu_required;
};

/* GET /autotune/presets, in the order the miner listed them (never sorted). */
struct hive_fw_presets {
	int n;
	struct hive_fw_preset p[HIVE_FW_MAX_PRESETS];
};

struct hive_fw_apikey {
	char key[HIVE_FW_TEXT_LEN + 1];
	char description[HIVE_FW_TEXT_LEN];
};

/* GET /apikeys */
struct hive_fw_apikeys {
	int n;                              /* entries kept (at most HIVE_FW_MAX_APIKEYS) */
	int total;                          /* entries the miner listed */
	struct hive_fw_apikey k[HIVE_FW_MAX_APIKEYS];
};

/* POST /unlock */
struct hive_fw_unlock {
	char token[256];
};

/* POST /settings */
struct hive_fw_settings {
	bool restart_required;
	bool reboot_required;
};

/* POST /system/reboot */
struct hive_fw_reboot {
	int after;                          /* seconds; -1 when not said */
};

/* What a request produced. The union member matching `call` is valid when
 * err.kind == HIVE_FW_OK; calls with no body to read (mining control, key
 * create/delete) fill nothing. */
struct hive_fw_result {
	enum hive_fw_call call;             /* as asked (HIVE_FW_CHAINS even when /boards answered) */
	struct hive_fw_err err;             /* err.kind == HIVE_FW_OK on success */
	int http_status;                    /* 0 when no answer */
	char ip[46];
	int port;
	bool used_boards;                   /* chains: /boards answered (remember it per miner) */
	int64_t latency_ms;                 /* from start of transfer to completion */
	union {
		struct hive_fw_info info;
		struct hive_fw_model model;
		struct hive_fw_status status;
		struct hive_fw_summary summary;
		struct hive_fw_perf perf;
		struct hive_fw_chains chains;
		struct hive_fw_presets presets;
		struct hive_fw_apikeys apikeys;
		struct hive_fw_unlock unlock;
		struct hive_fw_settings settings;
		struct hive_fw_reboot reboot;
	};
};

/* ---------------------------------------------------------------- parsers
 *
 * Pure functions: body need not be NUL-terminated. Lenient about extra
 * fields and missing optional ones, strict about the types of the fields
 * read: a number sent as a string is HIVE_FW_ERR_BAD_FIELD, null or absent
 * for a needed field HIVE_FW_ERR_MISSING_FIELD, a body that is not JSON
 * HIVE_FW_ERR_BAD_JSON. Each returns 0, or -1 with *err filled (kind,
 * endpoint, msg; http_status left alone). *out is zeroed first and may hold
 * partial data after -1. */
int hive_fw_parse_info(const char *body, size_t len, struct hive_fw_info *out, struct hive_fw_err *err);
int hive_fw_parse_model(const char *body, size_t len, struct hive_fw_model *out, struct hive_fw_err *err);
int hive_fw_parse_status(const char *body, size_t len, struct hive_fw_status *out, struct hive_fw_err *err);
int hive_fw_parse_summary(const char *body, size_t len, struct hive_fw_summary *out, struct hive_fw_err *err);
int hive_fw_parse_perf(const char *body, size_t len, struct hive_fw_perf *out, struct hive_fw_err *err);
/* boards: the body came from /boards (an array, or {"boards":[...]}). */
int hive_fw_parse_chains(const char *body, size_t len, bool boards, struct hive_fw_chains *out,
			 struct hive_fw_err *err);
int hive_fw_parse_presets(const char *body, size_t len, struct hive_fw_presets *out, struct hive_fw_err *err);
int hive_fw_parse_apikeys(const char *body, size_t len, struct hive_fw_apikeys *out, struct hive_fw_err *err);
int hive_fw_parse_unlock(const char *body, size_t len, struct hive_fw_unlock *out, struct hive_fw_err *err);
/* An empty body means both false (some versions answer 200 with nothing);
 * a JSON body must carry restart_required. */
int hive_fw_parse_settings(const char *body, size_t len, struct hive_fw_settings *out, struct hive_fw_err *err);
/* An empty body gives after = -1; a JSON body must carry "after". */
int hive_fw_parse_reboot(const char *body, size_t len, struct hive_fw_reboot *out, struct hive_fw_err *err);

/* Parses a 2xx body of `call` into the matching union member of res
 * (HIVE_FW_BOARDS, or HIVE_FW_CHAINS with res->used_boards set, reads a
 * /boards body; calls with nothing to read succeed on any body). Sets
 * res->err; 0 / -1. */
int hive_fw_parse(enum hive_fw_call call, const char *body, size_t len, struct hive_fw_result *res);

/* The expected power and hashrate of a preset from its name and pretty
 * string: ("2620", "2620 watt ~ 91 TH") → 2620 W, 91 TH. Watts come from a
 * numeric name, else from "<n> watt" in pretty; TH from "<x> TH" in pretty.
 * "disabled", garbage or implausible numbers give -1 W / -1 TH (never 0).
 * Either argument may be NULL. Returns 0 when both were found, else -1. */
int hive_fw_preset_parse(const char *name, const char *pretty, int *watts, double *th);


/* ---------------------------------------------------------------- client */

struct hive_fw_opts {
	int max_in_flight;       /* transfers at once; more are queued FIFO. 0: 256 */
	int timeout_ms;          /* whole request, connect included. 0: 5000 */
	int connect_timeout_ms;  /* 0: timeout_ms */
	size_t max_body;         /* bytes; a larger body aborts → too_large. 0: 1 MiB */
	bool no_keepalive;       /* true: a fresh connection per request */
	int max_connections;     /* connections kept open (in use and idle): a
				  * transfer that starts while more are open
				  * closes its own when done. 0: max_in_flight */
};

struct hive_fw_result;
/* Runs on the loop's thread. res (and everything in it) belongs to the
 * client and is valid until the callback returns; copy what you keep. The
 * callback may submit new requests; it must not free the client. */
typedef void hive_fw_cb(const struct hive_fw_result *res, void *arg);

/* Request flags */
#define HIVE_FW_F_BOARDS 0x1     /* HIVE_FW_CHAINS: ask /boards directly */

struct hive_fw_req {
	const char *ip;          /* IPv4/IPv6 literal, required */
	int port;                /* 0: 80 */
	const char *api_key;     /* sent as x-api-key, or NULL */
	const char *token;       /* sent as Authorization: Bearer, or NULL */
	enum hive_fw_call call;
	const char *arg;         /* preset name (set_preset), password (unlock),
				  * key (apikey_create / apikey_delete) */
	const char *description; /* apikey_create; NULL: "PowerHive" */
	unsigned flags;          /* HIVE_FW_F_* */
	int timeout_ms;          /* 0: the client's */
	hive_fw_cb *cb;
	void *cb_arg;
};

struct hive_fw_stats {
	uint64_t started;        /* transfers started (a /boards fallback counts again) */
	uint64_t completed;      /* callbacks run */
	uint64_t failed;         /* callbacks run with an error */
	uint64_t by_kind[HIVE_FW_ERR_KINDS];
	uint64_t connects;       /* new connections opened (the rest reused one) */
	int connections;         /* open now: in use and idle */
	int in_flight;
	int queued;
};

struct hive_fw_client;

/* A client driving its transfers through loop (which must outlive it).
 * opts may be NULL (defaults). Returns NULL with errno on failure. Free
 * with hive_fw_client_free. */
struct hive_fw_client *hive_fw_client_new(struct hive_loop *loop, const struct hive_fw_opts *opts);
/* Aborts every queued and in-flight request WITHOUT calling its callback
 * (free what cb_arg holds yourself), closes every connection. Not from
 * inside a callback. NULL is fine. */
void hive_fw_client_free(struct hive_fw_client *c);

/* Queues a request. Every string is copied; the key, token and password are
 * registered with hive_log_secret. The callback runs exactly once, later,
 * from the loop, never from inside this call. Returns 0, or -1 (errno
 * EINVAL for a bad request, ENOMEM) and then the callback never runs. */
int hive_fw_request(struct hive_fw_client *c, const struct hive_fw_req *req);

/* Requests queued or in flight. */
int hive_fw_client_pending(const struct hive_fw_client *c);
void hive_fw_client_stats(const struct hive_fw_client *c, struct hive_fw_stats *out);

/* Blocking: runs req (its cb and cb_arg are ignored) on a loop and client
 * of its own and copies the result into *out (caller's storage; ~45 KB).
 * Returns 0 when the call succeeded, -1 with out->err set otherwise. */
int hive_fw_call_sync(const struct hive_fw_opts *opts, const struct hive_fw_req *req,
		      struct hive_fw_result *out);

#endif
