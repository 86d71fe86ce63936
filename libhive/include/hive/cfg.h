/* cfg — the JSON configuration every daemon reads.
 *
 * Order: built-in defaults, then the file, then the environment
 * (POWERHIVE_LOG_LEVEL, POWERHIVE_HTTP_ADDR, POWERHIVE_API_TOKEN,
 * POWERHIVE_DATABASE), then command-line overrides applied by the daemon.
 * Every value is validated; the first problem is reported as
 * "<file>: <key>: <problem>". Unknown keys are logged as warnings.
 * docs/config.md lists every key with its default.
 */
#ifndef HIVE_CFG_H
#define HIVE_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hive/plant.h"

#define HIVE_CFG_URL_MAX  256
#define HIVE_CFG_PATH_MAX 1024
/* A fresh Vnish miner's unlock password. */
#define HIVE_FACTORY_PASSWORD "admin"

struct hive_subnet {
	uint32_t network;        /* host byte order, host bits cleared */
	uint8_t prefix;          /* 0..32 */
	char text[24];           /* as written, normalised: "127.42.0.0/22" */
};

/* The built-in alert rules, in the order of docs/alerts.md. */
enum hive_alert_rule_id {
	HIVE_ALERT_MINER_OFFLINE, HIVE_ALERT_CHIP_TEMP_HIGH, HIVE_ALERT_HASHRATE_LOW,
	HIVE_ALERT_FAN_STOPPED, HIVE_ALERT_CHAIN_DEAD, HIVE_ALERT_RED_CHIPS,
	HIVE_ALERT_HW_ERRORS_HIGH, HIVE_ALERT_PRESET_CONFLICT, HIVE_ALERT_ACTION_FAILED,
	HIVE_ALERT_POWER_OVER_AVAILABLE, HIVE_ALERT_FEED_STALE, HIVE_ALERT_POWER_FALLBACK,
	HIVE_ALERT_DAEMON_MISSING, HIVE_ALERT_BUS_LOSS, HIVE_ALERT_DB_WRITE_FAILED,
	HIVE_ALERT_DISK_LOW,
	HIVE_ALERT_RULES
};
/* "miner_offline" … "disk_low"; NULL / -1 when unknown. */
const char *hive_alert_rule_name(int rule);
int hive_alert_rule_parse(const char *name);

/* A rule's threshold for one model (alerts.rules.<rule>.models.<alias>). */
struct hive_alert_override {
	char model[64];
	double threshold;
	int for_seconds;
};

struct hive_alert_rule {
	bool enabled;                   /* true */
	int for_seconds;                /* the condition must hold so long before it fires */
	double threshold;               /* the rule's figure (docs/alerts.md); NAN: none */
	struct hive_alert_override *models;     /* owned; n_models entries */
	size_t n_models;
};

enum hive_alert_channel_kind {
	HIVE_CHANNEL_WEBHOOK, HIVE_CHANNEL_SLACK, HIVE_CHANNEL_TELEGRAM, HIVE_CHANNEL_EMAIL
};

/* Where notifications go (alerts.channels[]). url, secret and a Telegram
 * bot URL (it carries the token) are secrets: never logged, redacted by
 * the API. */
struct hive_alert_channel {
	char name[64];
	int kind;                       /* enum hive_alert_channel_kind */
	char url[HIVE_CFG_URL_MAX];     /* webhook, slack, telegram (…/bot<token>/sendMessage) */
	char secret[256];               /* webhook: the HMAC-SHA256 key */
	char chat_id[64];               /* telegram */
	char smtp_url[HIVE_CFG_URL_MAX];/* email: smtp://host:port */
	char from[128];                 /* email */
	char to[512];                   /* email: addresses, comma separated */
};

struct hive_cfg {
	char source[HIVE_CFG_PATH_MAX];  /* the file it came from ("" = defaults) */
	char log_level[16];              /* "info" */

	struct {
		char path[HIVE_CFG_PATH_MAX];   /* data/powerhive.db */
		int batch_max;                  /* events per transaction: 500 */
		int batch_ms;                   /* longest an event waits: 200 */
		char secrets_key_file[HIVE_CFG_PATH_MAX]; /* "": secrets.key beside path */
	} database;

	struct {
		struct hive_subnet *subnets;    /* owned; n_subnets entries */
		size_t n_subnets;
		int port;                       /* 80 */
		int miner_probe_timeout_ms;     /* 1500 */
		int probe_concurrency;          /* 2048 connect probes in flight */
		int http_timeout_ms;            /* 5000: any miner HTTP call */
		int http_concurrency;           /* 256 miner requests in flight per process */
		char default_password[64];      /* "admin" */
		/* A sweep that would take more than this share of its subnet's
		 * online miners offline waits for a second sweep: 0.5 (1: never) */
		double sweep_drop_confirm_share;
		int max_clock_skew_seconds;     /* event ts ahead of apid's clock: 60 */
	} network;

	struct {
		int discovery_seconds;          /* 30 */
		int status_seconds;             /* 15 */
		int telemetry_seconds;          /* 60 */
		int heartbeat_seconds;          /* 5 */
	} intervals;

	struct {
		char addr[128];                 /* "127.0.0.1:8080" */
		char web_root[HIVE_CFG_PATH_MAX]; /* "web" */
		size_t max_body_bytes;          /* 65536 */
		struct {
			char token[128];        /* "" = read token_file / generate one */
			char token_file[HIVE_CFG_PATH_MAX]; /* data/api-token */
			bool open_reads;        /* GETs without a token: false */
		} auth;
		int threads;                    /* 256: clients served at once */
		int request_timeout_ms;         /* 5000: a request's head, an answer's send */
	} http;

	struct {
		int failing_seconds;            /* 30: a refused write fails health this long */
		char state_dir[HIVE_CFG_PATH_MAX]; /* "": daemons write no state file */
	} health;

	struct {
		char events[HIVE_CFG_URL_MAX];          /* ipc://data/bus/events */
		char jobs_status[HIVE_CFG_URL_MAX];     /* ipc://data/bus/jobs_status */
		char jobs_telemetry[HIVE_CFG_URL_MAX];  /* ipc://data/bus/jobs_telemetry */
		char jobs_control[HIVE_CFG_URL_MAX];    /* ipc://data/bus/jobs_control */
		char jobs_plant[HIVE_CFG_URL_MAX];      /* ipc://data/bus/jobs_plant */
		char control[HIVE_CFG_URL_MAX];         /* ipc://data/bus/control */
		char feed[HIVE_CFG_URL_MAX];            /* ipc://data/bus/feed */
		/* discoverd's own listeners (its role: sweeps, keys, credentials) */
		char discovery_events[HIVE_CFG_URL_MAX];  /* ipc://data/bus/discovery/events */
		char discovery_control[HIVE_CFG_URL_MAX]; /* ipc://data/bus/discovery/control */
		int sendbuf;                            /* messages: 8192 */
		int recvbuf;                            /* messages: 8192 */
		size_t max_message_bytes;               /* 1 MiB */
		bool require_job_nonce;                 /* results must echo their job's nonce: true */
		struct {                                /* tls+tcp:// endpoints (etc/hive-certs) */
			char ca_file[HIVE_CFG_PATH_MAX];   /* the farm CA: "" */
			char cert_file[HIVE_CFG_PATH_MAX]; /* this daemon's certificate: "" */
			char key_file[HIVE_CFG_PATH_MAX];  /* its private key (0600): "" */
			/* the CA that signs discoverd's certificate only: apid's
			 * discovery_* listeners trust it instead of ca_file: "" */
			char discovery_ca_file[HIVE_CFG_PATH_MAX];
		} tls;
	} bus;

	struct {
		int status_days;                /* 365: hourly status roll-ups, fleet hours */
		int telemetry_days;             /* 7: hourly chip summaries, miner errors */
		int audit_days;                 /* 365 */
		int power_days;                 /* 90: plant readings, power samples, decisions */
		int prune_batch;                /* rows per prune step: 2000 */
		int status_raw_hours;           /* 6: raw statuses */
		int telemetry_raw_hours;        /* 6: raw chip telemetry */
		int minute_days;                /* 7: per-minute status roll-ups, fleet minutes */
		long long max_bytes;            /* 0: no cap on the data kept */
	} retention;

	struct {
		bool managed_only;              /* jobs only for managed miners */
		int job_timeout_seconds;        /* 30 */
	} scheduler;

	struct {
		int action_timeout_seconds;     /* 300: an action not done by then expires */
		int job_timeout_seconds;        /* 10: a control job's answer */
		int max_corrections_per_hour;   /* 3: then the miner is flagged conflict */
	} control;

	/* The power balancer (docs/power.md). */
	struct {
		int mode;                       /* enum hive_power_mode: off */
		double margin_pct;              /* 10: target = available x (1 - margin) */
		int interval_seconds;           /* 5: a feed read, a balancer cycle */
		int stale_seconds;              /* 60: no valid reading for so long -> fallback */
		int raise_after_seconds;        /* 60: available must hold so long before a raise */
		bool allow_pause;               /* false */
		long long max_w;                /* 0: no contract cap */
		int fallback;                   /* enum hive_power_fallback: hold */
		long long fallback_w;           /* fallback "fixed": the available power */
		long long deadband_w;           /* 2000 */
		int min_raise_interval_seconds; /* 300: between two raises of one miner */
		double raise_step_pct;          /* 10: raises in flight at most, % of target */
		double max_jump_pct;            /* 50: a bigger move must be confirmed by the next reading */
		struct hive_plant_source source;
	} power;

	/* Alerts and their notifications (docs/alerts.md). */
	struct {
		bool enabled;                   /* true */
		int evaluate_seconds;           /* 5: how often the rules are checked */
		int group_seconds;              /* 30: firings (resolutions) of one rule within so long
		                                 * go out as one notification */
		int resolve_seconds;            /* 30: a condition clear for so long resolves its alert */
		int retry_max_seconds;          /* 300: the longest wait between two delivery attempts */
		int give_up_hours;              /* 24: a notification undelivered for so long is failed */
		struct hive_alert_rule rules[HIVE_ALERT_RULES];
		struct hive_alert_channel *channels;    /* owned; n_channels entries */
		size_t n_channels;
	} alerts;
};

enum hive_power_mode { HIVE_POWER_OFF, HIVE_POWER_DRY_RUN, HIVE_POWER_ON };
enum hive_power_fallback { HIVE_POWER_HOLD, HIVE_POWER_FIXED, HIVE_POWER_MINIMUM };
/* "off", "dry_run", "on" / "hold", "fixed", "minimum"; NULL / -1 when unknown. */
const char *hive_power_mode_name(int mode);
int hive_power_mode_parse(const char *s);
const char *hive_power_fallback_name(int fallback);
int hive_power_fallback_parse(const char *s);

/* Fills cfg with the defaults above (no subnets). */
void hive_cfg_defaults(struct hive_cfg *cfg);

/* Defaults, then the file at path, then the environment. On failure returns
 * -1 with a message "<file>: <key>: <problem>" in err, and cfg holds nothing
 * that needs freeing. Free a loaded cfg with hive_cfg_free. */
int hive_cfg_load(struct hive_cfg *cfg, const char *path, char *err, size_t errlen);

/* Parses a JSON text instead of a file; `name` stands for the file in
 * messages. Same contract as hive_cfg_load (environment included). */
int hive_cfg_parse(struct hive_cfg *cfg, const char *name, const char *json_text,
		   char *err, size_t errlen);

/* Checks every value of an already filled cfg (used after overrides). */
int hive_cfg_validate(const struct hive_cfg *cfg, char *err, size_t errlen);

void hive_cfg_free(struct hive_cfg *cfg);

/* Deep copy (subnets duplicated). 0 / -1. */
int hive_cfg_copy(struct hive_cfg *dst, const struct hive_cfg *src);

#define HIVE_IPV4_LEN 16   /* "255.255.255.255" + NUL */

/* An address in host byte order → "a.b.c.d" in out; returns out. */
char *hive_ipv4_format(uint32_t addr_host_order, char out[HIVE_IPV4_LEN]);

/* "a.b.c.d/n" → subnet; 0 / -1 (host bits set are an error). */
int hive_subnet_parse(const char *text, struct hive_subnet *out);
bool hive_subnet_contains(const struct hive_subnet *s, uint32_t addr_host_order);
/* Number of addresses to probe (network and broadcast excluded for /0../30). */
uint64_t hive_subnet_hosts(const struct hive_subnet *s);

/* "host:port" (http.addr) → 0 / -1. "ipc://", "inproc://", "tls+tcp://"
 * URLs, and "tcp://" on loopback only, that nng accepts → 0 / -1
 * (hive_cfg_url_ok). */
int hive_cfg_addr_ok(const char *addr);
int hive_cfg_url_ok(const char *url);

#endif
