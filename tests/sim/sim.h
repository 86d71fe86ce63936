/* minersim — a fleet of simulated Vnish-firmware Antminers on loopback.
 *
 * One process, one thread, one epoll loop. Every miner listens on its own
 * 127.x.y.z address at the same port; an admin HTTP server on another
 * address injects faults and reports ground truth. Files by role:
 *   sim.c       main, options, loop, randomness, logging
 *   http.c      the event-driven HTTP/1.1 server (listeners, connections)
 *   miner.c     fleet layout, miner identity, state machine and physics
 *   firmware.c  the /api/v1 endpoints and the non-miner hosts
 *   faults.c    fault selection and response corruption
 *   admin.c     the /sim admin API
 *   models.c    model catalogue: preset ladders, topologies, limits
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "hive/cfg.h"     /* hive_ipv4_format */

#define SIM_VERSION "1.0.0"

/* ---------------------------------------------------------------- options */

struct sim_opts {
	uint32_t net;            /* subnet address, host order */
	int prefix;              /* /16 .. /30 */
	int miners;
	int non_miners;
	int port;
	uint32_t admin_ip;       /* host order */
	int admin_port;
	uint64_t seed;
	int tune_s;              /* auto-tuning an untuned preset */
	int tuned_s;             /* auto-tuning a preset tuned before; -1: min(tune_s, 30) */
	int apply_s;             /* "quiet" firmware: a saved preset runs after this */
	int start_s;             /* restarting / starting before mining */
	int reboot_s;
	int init_s;
	int token_ttl_s;
	int unlock_limit;
	int lockout_s;
	double fw_mix;           /* share of miners on firmware 1.3.x */
	double unmetered;        /* share of miners without power metering */
	unsigned models;         /* bit i = sim_models[i] in use */
	int preset_apply;        /* enum sim_apply: the fleet's default */
	bool verbose;
};

/* How a firmware treats POST /settings (a preset change). */
enum sim_apply {
	APPLY_LIVE,              /* runs at once (auto-tuning), answers restart_required true */
	APPLY_RESTART,           /* saved; runs at the next restart/start/reboot; answers true */
	APPLY_QUIET,             /* answers false; runs by itself after apply_s */
	APPLY_FIRMWARE,          /* 1.2.6 restart, 1.3.x quiet */
	APPLY_MODES,
	APPLY_DEFAULT = 255,     /* per miner: the fleet's mode */
};

const char *sim_apply_name(int mode);
int sim_apply_parse(const char *name);               /* -1 unknown */
/* Auto-tuning time (ms) of preset p on a miner that has (not) tuned it. */
int64_t sim_tune_ms(bool tuned);

extern struct sim_opts sim_opts;

/* ---------------------------------------------------------------- sim.c */

/* Milliseconds since the simulator started (monotonic). */
int64_t sim_now_ms(void);
/* Stateless mixing: the same inputs always give the same 64 bits. */
uint64_t sim_mix(uint64_t x);
uint64_t sim_hash3(uint64_t a, uint64_t b, uint64_t c);
/* [0, 1) from 64 random bits. */
double sim_unit(uint64_t h);
/* A seeded stream (splitmix64). */
uint64_t sim_rand(uint64_t *state);

void sim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- models.c */

struct sim_preset {
	int watts;
	int th;
};

struct sim_model {
	const char *code;        /* "s19" */
	const char *name;        /* "Antminer S19" */
	const char *series;
	int chains;
	int chips;               /* per chain */
	int chips_per_domain;
	int rows, cols;          /* board topology */
	double stock_th;         /* "disabled" = stock clocks */
	int stock_w;
	int stock_freq;          /* MHz */
	int stock_volt;          /* chain mV */
	int min_volt, max_volt, max_volt_stock_psu;
	int min_freq, max_freq, warn_freq;
	int modded_psu_w;        /* presets above this need a modded PSU */
	const struct sim_preset *ladder;   /* ascending by watts */
	int nladder;
	const uint8_t *order;    /* the order /autotune/presets lists them in */
};

#define SIM_NMODELS 2
extern const struct sim_model sim_models[SIM_NMODELS];

/* Index of the model with this code, or -1. */
int sim_model_find(const char *code);
/* Chip id at row r, column c of the board (-1 = empty slot). */
int sim_model_topo_chip(const struct sim_model *md, int r, int c);
/* Expected power / hashrate of preset index p (0 = disabled = stock,
 * 1..nladder = ladder[p-1]). */
int sim_preset_watts(const struct sim_model *md, int p);
double sim_preset_th(const struct sim_model *md, int p);
/* Preset name into buf ("disabled", "2620"). */
const char *sim_preset_name(const struct sim_model *md, int p, char *buf, size_t len);
/* Preset index from its name, or -1. */
int sim_preset_find(const struct sim_model *md, const char *name);
/* Chip clock (MHz) and chain voltage (mV) of preset p. */
int sim_preset_freq(const struct sim_model *md, int p);
int sim_preset_volt(const struct sim_model *md, int p);

/* ---------------------------------------------------------------- http.c */

enum sim_ev_type {
	SIM_EV_MINER,            /* a miner's listening socket */
	SIM_EV_HOST,             /* a non-miner's listening socket */
	SIM_EV_ADMIN,
	SIM_EV_CONN,
};

/* Embedded in whatever owns a socket; epoll's data.ptr points here. */
struct sim_ev {
	int type;
	int fd;
	void *owner;
};

#define SIM_MAX_HEADER 8192
#define SIM_MAX_BODY   65536

struct sim_req {
	char method[16];
	char path[512];          /* target without the query */
	int minor;               /* HTTP/1.<minor> */
	bool keep_alive;
	bool expect_continue;
	bool has_api_key, has_bearer;
	char api_key[80];        /* x-api-key (truncated when longer) */
	char bearer[80];         /* Authorization: Bearer <token> */
	size_t content_length;
	const char *body;        /* points into the connection's buffer */
	size_t body_len;
	size_t head_len;
};

struct sim_resp {
	int status;
	const char *ctype;       /* NULL: application/json */
	char *body;              /* malloc'd, owned by the response */
	size_t len;
	int delay_ms;            /* fault "slow": wait before answering */
	bool reset;              /* fault "reset": RST after half the body */
	bool close;              /* Connection: close */
	const char *extra_header;/* one "Name: value" line, or NULL */
};

/* Parses one request at the start of buf. Returns the bytes it spans
 * (headers and body) when complete, 0 when more bytes are needed, or
 * -<HTTP status> (400, 413, 414, 431, 501, 505) for a bad request. */
long sim_http_parse(const char *buf, size_t len, struct sim_req *rq);

int sim_http_init(void);
void sim_http_shutdown(void);
/* Opens a non-blocking listening socket on ip:port into ev->fd. 0 / -1 with
 * errno (EADDRINUSE when someone else holds it). */
int sim_http_listen(struct sim_ev *ev, uint32_t ip, int port);
/* Closes ev's listener and every connection accepted by it, except the one
 * whose request is being answered right now (that one closes after its
 * answer). */
void sim_http_unlisten(struct sim_ev *ev);
/* Closes every connection of owner, except the current one. */
void sim_http_drop_owner(const void *owner);
/* Waits for events up to timeout_ms and serves them. */
void sim_http_poll(int timeout_ms);
/* Timeouts and delayed answers; call a few times a second. */
void sim_http_tick(int64_t now);
int sim_http_conns(void);

/* Response helpers: each replaces rs->body. */
void sim_resp_json(struct sim_resp *rs, int status, json_t *j);   /* steals j */
void sim_resp_err(struct sim_resp *rs, int status, const char *key, const char *msg);
void sim_resp_text(struct sim_resp *rs, int status, const char *ctype, const char *text);
void sim_resp_take(struct sim_resp *rs, int status, char *body, size_t len);
/* jansson dump flags used for every body. */
#define SIM_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

/* ---------------------------------------------------------------- miner.c */

enum sim_phase {
	PH_MINING,
	PH_AUTOTUNING,
	PH_RESTARTING,
	PH_STARTING,
	PH_STOPPED,
	PH_GONE,                 /* rebooting: no listener */
	PH_INITIALIZING,
};

enum sim_fault {
	FAULT_NONE,
	FAULT_OFFLINE,
	FAULT_SLOW,
	FAULT_RESET,
	FAULT_HTTP500,
	FAULT_INVALID_JSON,
	FAULT_TRUNCATED,
	FAULT_MISSING,
	FAULT_NULL,
	FAULT_STRINGS,
	FAULT_OVERSIZED,
	FAULT_KINDS,
};

/* Endpoints, as bits for a fault's "endpoints". */
enum sim_ep {
	EP_INFO,
	EP_MODEL,
	EP_STATUS,
	EP_SUMMARY,
	EP_PERF,
	EP_CHAINS,
	EP_BOARDS,
	EP_PRESETS,
	EP_SETTINGS,
	EP_UNLOCK,
	EP_APIKEYS,
	EP_APIKEYS_DELETE,
	EP_RESTART,
	EP_STOP,
	EP_START,
	EP_PAUSE,
	EP_RESUME,
	EP_REBOOT,
	EP_OTHER,
	EP_COUNT,
};
#define SIM_EP_ALL ((1u << EP_COUNT) - 1)

#define SIM_KEY_LEN   32
#define SIM_DESC_LEN  64
#define SIM_MAX_KEYS  16
#define SIM_TOKENS    4

struct sim_apikey {
	char key[SIM_KEY_LEN + 1];
	char desc[SIM_DESC_LEN + 1];
};

struct sim_token {
	char tok[SIM_KEY_LEN + 1];
	int64_t expires_ms;
};

/* Who set the running preset. */
enum sim_src {
	SRC_INITIAL,
	SRC_API,                 /* POST /settings */
	SRC_WEB,                 /* a person on the miner's web page (admin) */
	SRC_SWITCHER,            /* the firmware's own preset switcher */
};

/* Control state and ground-truth counters, allocated on the first control
 * call (most miners of a large fleet are never controlled). */
struct sim_ctl {
	uint32_t settings_calls;     /* POST /settings handled */
	uint32_t preset_changes;     /* of those, changes that came to run */
	uint32_t web_changes;        /* presets set by a person (admin /preset) */
	uint32_t switcher_changes;   /* presets the firmware moved by itself */
	uint32_t restarts, stops, starts, pauses, resumes, reboots;   /* API calls */
	uint32_t power_cycles;       /* admin /reboot */
	uint8_t pending;             /* saved preset + 1 not running yet; 0 none */
	uint8_t apply;               /* enum sim_apply (APPLY_DEFAULT: the fleet's) */
	uint8_t set_by;              /* enum sim_src of the running preset */
	bool switcher;               /* preset_switcher.enabled */
	uint8_t top, min;            /* switcher presets (ladder index + 1); top 0 = null */
	uint16_t check_s;            /* switcher check_time */
	int64_t pending_at;          /* quiet: when the saved preset runs; 0: at a restart */
	int64_t switch_ref;          /* the switcher was last (re)configured at */
	int64_t set_at;              /* the running preset was set at */
	int64_t due;                 /* next timed event (apply, switcher) */
};

/* Hardware faults: what the firmware reports about a sick machine, apart
 * from the protocol fault above (a miner may overheat and answer slowly at
 * once) and combinable with each other. Allocated on first use. */
#define SIM_FANS 4

struct sim_hw {
	double temp;             /* overheat: chip temperature max (°C); 0 off */
	double factor;           /* hashrate_drop: share of normal hashrate; 0 off */
	double errs_rate;        /* hw_errors: hardware errors a minute; 0 off */
	double errs;             /* hw_errors: errors counted up to errs_at */
	int64_t errs_at;         /* ms; the rate runs from here */
	int64_t red_at;          /* red_chips: when they went red (ms) */
	uint16_t red;            /* red_chips: extra red chips on red_chain; 0 off */
	uint8_t red_chain;       /* 1-based */
	uint8_t fan;             /* fan_stopped: 1-based fan reading 0 rpm; 0 off */
	uint8_t chain;           /* chain_dead: 1-based dead hashboard; 0 off */
};

/* Credentials live apart, allocated on first use: most miners hold one
 * key and no password of their own. */
struct sim_creds {
	char *password;          /* NULL: "admin" */
	int nkeys, capkeys;
	struct sim_apikey *keys;
	struct sim_token tokens[SIM_TOKENS];
};

struct miner {
	struct sim_ev ev;        /* listener; fd -1 when not listening */
	uint32_t ip;
	uint32_t index;
	uint64_t seed;           /* per-miner stream: noise, chips */
	uint8_t mac[6];
	uint8_t model;
	uint8_t preset;          /* 0 = disabled, else ladder index + 1 */
	uint8_t fw;              /* 0 = 1.2.6, 1 = 1.3.x */
	uint8_t platform;
	bool metered;
	bool paused;
	bool tuning;             /* a preset change waits for its auto-tune */
	bool bind_failed;
	uint8_t phase;
	uint8_t fault;
	uint8_t unlock_fails_window;
	uint32_t fault_ms;       /* slow: delay */
	uint32_t fault_eps;      /* endpoint mask */
	uint32_t tuned;          /* bit p: preset p tuned on this miner */
	int64_t phase_since;
	int64_t phase_until;     /* 0: no timed transition */
	int64_t run_since;       /* the mining process (re)started; 0: at boot */
	int64_t boot_ms;         /* when the current uptime started */
	uint32_t uptime_base_s;
	/* power / hashrate ramp: from → to between ramp_start and ramp_end */
	float from_w, to_w, from_gh, to_gh;
	uint32_t requests;
	int64_t ramp_start, ramp_end;
	uint32_t unlock_attempts;
	uint32_t unlock_failures;
	int64_t window_start;
	int64_t locked_until;
	char serial[18];
	struct sim_creds *creds; /* NULL until a key, token or password exists */
	struct sim_ctl *ctl;     /* NULL until a control call or admin setting */
	struct sim_hw *hw;       /* NULL while the hardware is healthy */
};

enum sim_host_kind {
	HOST_CLOSED,
	HOST_ROUTER,
	HOST_STOCK_404,
	HOST_STOCK_HTML,
	HOST_KINDS,
};

struct sim_host {
	struct sim_ev ev;
	uint32_t ip;
	uint8_t kind;
	uint32_t requests;
};

struct sim_fleet {
	struct miner *miners;
	int nminers;
	struct sim_host *hosts;
	int nhosts;
	int32_t *by_addr;        /* per subnet offset: miner i, -2-h host h, -1 free */
	uint32_t naddr;
	uint32_t *share_order;   /* seeded permutation of miners, for "share" */
};

extern struct sim_fleet sim_fleet;

int sim_fleet_init(char *err, size_t errlen);
void sim_fleet_free(void);
/* Opens every listener; 0 / -1 with a message. */
int sim_fleet_listen(char *err, size_t errlen);
/* Periodic: due state transitions, listeners to reopen. */
void sim_fleet_tick(int64_t now);

/* Lookups: MAC in any case and separator, or an IP. NULL if none. */
struct miner *sim_miner_find(const char *mac_or_ip);
const char *sim_miner_mac(const struct miner *m, char buf[18]);
const struct sim_model *sim_miner_model(const struct miner *m);
const char *sim_miner_fw_version(const struct miner *m);
const char *sim_miner_platform(const struct miner *m);
const char *sim_miner_hostname(const struct miner *m, char buf[32]);

/* Applies transitions that fell due by now. */
void sim_miner_update(struct miner *m, int64_t now);
/* Opens or closes the listener to match the state (faults, reboots). */
void sim_miner_sync_listener(struct miner *m);
bool sim_miner_online(const struct miner *m);

const char *sim_miner_state(const struct miner *m);      /* firmware's name */
const char *sim_miner_truth_state(const struct miner *m); /* + "rebooting" */
int64_t sim_miner_state_secs(const struct miner *m, int64_t now);
uint64_t sim_miner_uptime_s(const struct miner *m, int64_t now);
/* How long the mining process has run (s): since its last start, restart
 * or boot; 0 while it does not run. Its counters (hardware errors) count
 * from there. */
uint64_t sim_miner_run_s(const struct miner *m, int64_t now);
const char *sim_uptime_str(uint64_t secs, char *buf, size_t len);

/* Actual draw (W) and hashrate (GH/s) with noise, at now. */
double sim_miner_power(const struct miner *m, int64_t now);
double sim_miner_hashrate(const struct miner *m, int64_t now);
/* Nominal hashrate of the running preset (GH/s). */
double sim_miner_nominal_gh(const struct miner *m);
/* Chip temperature max and fan duty (%) that go with the current draw. */
double sim_miner_chip_temp(const struct miner *m, int64_t now);
int sim_miner_fan_duty(const struct miner *m, int64_t now);
/* Noise in [-1, 1) for (second, channel): the same per seed. */
double sim_miner_noise(const struct miner *m, int64_t now, uint64_t channel);

/* Control (each does what the firmware would). */
struct sim_ctl *sim_miner_ctl(struct miner *m);      /* allocates; NULL on ENOMEM */
int sim_miner_apply_mode(const struct miner *m);     /* effective: live, restart, quiet */
/* POST /settings with a preset: 0 and *restart_required, -1 on ENOMEM. */
int sim_miner_settings(struct miner *m, int preset, int64_t now, bool *restart_required);
/* A preset that runs at once (src: web page, switcher). */
void sim_miner_set_preset(struct miner *m, int preset, int64_t now, int src);
/* Switcher (re)configured: rearms its timer. */
void sim_miner_switcher_changed(struct miner *m, int64_t now);
/* The ladder preset the switcher would step to next, or -1. */
int sim_miner_switcher_next(const struct miner *m);
/* When it steps there (ms since start), INT64_MAX when it will not. */
int64_t sim_miner_switcher_due(const struct miner *m);
/* True when a preset saved by POST /settings waits for a restart. */
bool sim_miner_restart_required(const struct miner *m);
/* Next time the miner changes by itself (phase end, apply, switcher). */
int64_t sim_miner_due(const struct miner *m);
void sim_miner_restart(struct miner *m, int64_t now);
void sim_miner_stop(struct miner *m, int64_t now);
void sim_miner_pause(struct miner *m, int64_t now);
void sim_miner_start(struct miner *m, int64_t now);
void sim_miner_resume(struct miner *m, int64_t now);
void sim_miner_reboot(struct miner *m, int64_t now);

/* Credentials. */
struct sim_creds *sim_miner_creds(struct miner *m);   /* allocates; NULL on ENOMEM */
const char *sim_miner_password(const struct miner *m);
int sim_miner_set_password(struct miner *m, const char *pw);
bool sim_miner_key_ok(const struct miner *m, const char *key);
bool sim_miner_token_ok(const struct miner *m, const char *tok, int64_t now);
bool sim_miner_unlocked(const struct miner *m, int64_t now);
/* New token into out[33]; -1 on ENOMEM. */
int sim_miner_new_token(struct miner *m, int64_t now, char out[SIM_KEY_LEN + 1]);
int sim_miner_nkeys(const struct miner *m);
/* Adds (or re-describes) a key. 0, or -1: ENOSPC at SIM_MAX_KEYS, ENOMEM. */
int sim_miner_add_key(struct miner *m, const char *key, const char *desc);
void sim_miner_free_creds(struct miner *m);

/* Moves a miner to another free address of the subnet. 0, or -1 with a
 * message and an HTTP status (400 bad address, 409 taken). */
int sim_miner_move(struct miner *m, uint32_t ip, int *status, char *err, size_t errlen);
int sim_miner_swap(struct miner *a, struct miner *b);

/* Address helpers. */
bool sim_addr_in_subnet(uint32_t ip);
bool sim_addr_usable(uint32_t ip);   /* in subnet, not network/broadcast */

/* ---------------------------------------------------------------- firmware.c */

void sim_fw_handle(struct miner *m, const struct sim_req *rq, struct sim_resp *rs);
void sim_host_handle(struct sim_host *h, const struct sim_req *rq, struct sim_resp *rs);
const char *sim_host_kind_name(int kind);

/* ---------------------------------------------------------------- faults.c */

const char *sim_fault_name(int kind);
int sim_fault_parse(const char *name);               /* -1 unknown */
int sim_ep_parse(const char *name);                  /* bit mask; 0 unknown */
const char *sim_ep_name(int ep);
/* Sets (or clears, FAULT_NONE) one miner's fault. */
void sim_fault_set(struct miner *m, int kind, uint32_t ms, uint32_t eps);
/* Hardware fault kinds (kept apart from enum sim_fault: they combine). */
enum sim_hw_kind {
	HW_OVERHEAT,
	HW_FAN_STOPPED,
	HW_CHAIN_DEAD,
	HW_HASHRATE_DROP,
	HW_RED_CHIPS,
	HW_ERRORS,
	HW_KINDS,
};
const char *sim_hw_name(int kind);
int sim_hw_parse(const char *name);                  /* -1 unknown */
/* Sets one hardware fault (value: °C, fan/chain index, factor, chip count,
 * errors a minute; chain: red chips' board). 0, or -1 on ENOMEM. */
int sim_hw_set(struct miner *m, int kind, double value, int chain);
/* The hardware errors the hw_errors fault added to the mining process's
 * counter by now (0 without it, or while the miner does not mine). */
double sim_hw_errors(const struct miner *m, int64_t now);
/* Seconds the red_chips fault's chips have been red in this run of the
 * mining process. */
uint64_t sim_hw_red_s(const struct miner *m, int64_t now);
/* Clears every hardware fault; true when there was one. */
bool sim_hw_clear(struct miner *m);
/* The hardware faults as ground truth: {"overheat": 100, ...}. */
json_t *sim_hw_json(const struct miner *m);
/* Corrupts a response the firmware produced, per m's fault. */
void sim_fault_apply(const struct miner *m, int ep, struct sim_resp *rs);

/* ---------------------------------------------------------------- admin.c */

void sim_admin_handle(const struct sim_req *rq, struct sim_resp *rs);

#endif
