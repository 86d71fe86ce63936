/* bus — PowerHive's nng sockets and the message envelope. The only module
 * that includes nng.h.
 *
 * Wire format of every message: topic '\0' json, where json is
 *   {"v":1,"src":"<daemon>/<host>/<pid>","boot":<ms>,"seq":<n>,"ts":<ms>,"body":{...}}
 * seq counts per (src, boot, topic) from 1, so a subscriber can count every
 * message it never saw (hive_seq_*). apid listens on every socket; the other
 * daemons dial, non-blocking, and reconnect by themselves.
 */
#ifndef HIVE_BUS_H
#define HIVE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HIVE_ENVELOPE_VERSION 1
#define HIVE_TOPIC_MAX 64
#define HIVE_SOURCE_MAX 192

enum hive_bus_role {
	HIVE_BUS_PUBLISH,   /* pub0: daemons' events (dial), apid's feed (listen) */
	HIVE_BUS_SUBSCRIBE, /* sub0: apid's events (listen), feed readers (dial) */
	HIVE_BUS_PUSH,      /* push0: apid's job queues (listen) */
	HIVE_BUS_PULL,      /* pull0: pollerd/telemetryd (dial) */
	HIVE_BUS_REQUEST,   /* req0: discoverd, CLI (dial) */
	HIVE_BUS_REPLY,     /* rep0: apid's control (listen) */
};

struct hive_bus_opts {
	bool listen;              /* listen (apid) or dial (everyone else) */
	int sendbuf;              /* messages; 0 = nng default */
	int recvbuf;              /* messages; 0 = nng default */
	size_t max_message_bytes; /* larger messages are refused; 0 = 1 MiB */
	int send_timeout_ms;      /* -1 = wait forever */
	int recv_timeout_ms;      /* -1 = wait forever */
	const char *source;       /* envelope src, "<daemon>/<host>/<pid>" */
	long long boot;           /* envelope boot, ms at process start */
	/* tls+tcp:// only (bus.tls.*; NULL or "" elsewhere): the farm CA that
	 * signed every peer, this daemon's certificate and its key (PEM). A
	 * listener refuses peers without a certificate the CA signed; a dialer
	 * checks the listener's against the URL's host name. */
	const char *tls_ca_file;
	const char *tls_cert_file;
	const char *tls_key_file;
};

/* Results of send/recv besides 0. */
enum hive_bus_status {
	HIVE_BUS_OK = 0,
	HIVE_BUS_TIMEOUT = -2,    /* nothing within the timeout / would block */
	HIVE_BUS_CLOSED = -3,     /* socket closed */
	HIVE_BUS_REJECTED = -4,   /* a message arrived but was malformed: counted */
	HIVE_BUS_ERROR = -5,      /* anything else (logged) */
};

/* Why an envelope was rejected. */
enum hive_envelope_error {
	HIVE_ENV_OK = 0,
	HIVE_ENV_TOO_LARGE,
	HIVE_ENV_NO_TOPIC,        /* no '\0', empty or overlong topic */
	HIVE_ENV_NOT_JSON,
	HIVE_ENV_MISSING_FIELD,   /* v, src, boot, seq, ts or body absent or mistyped */
	HIVE_ENV_BAD_VERSION,     /* unknown major v */
	HIVE_ENV_ERROR_COUNT
};
const char *hive_envelope_error_name(enum hive_envelope_error e);

struct hive_envelope {
	char topic[HIVE_TOPIC_MAX];
	int v;
	char src[HIVE_SOURCE_MAX];
	long long boot;
	unsigned long long seq;
	long long ts;            /* wall clock ms */
	json_t *body;            /* owned; released by hive_envelope_clear */
	/* Not on the wire: which of the receiving socket's endpoints the
	 * message came in on (hive_bus_recv, hive_bus_request): 0 the URL the
	 * socket was opened with (and always 0 on a dialing socket), n the one
	 * hive_bus_listen_also returned n for, -1 not known. A listener per
	 * role is how apid tells who sent a message (docs/bus.md, Roles). */
	int endpoint;
};
void hive_envelope_clear(struct hive_envelope *env);

/* Serialises an envelope into a malloc'd buffer (caller frees *out). body
 * is borrowed. 0 / -1. */
int hive_envelope_encode(const char *topic, const char *src, long long boot,
			 unsigned long long seq, long long ts, json_t *body,
			 char **out, size_t *out_len);
/* Parses buf; on HIVE_ENV_OK env holds a body the caller clears. Unknown
 * fields are ignored. max_bytes 0 = 1 MiB. */
enum hive_envelope_error hive_envelope_decode(const void *buf, size_t len, size_t max_bytes,
					      struct hive_envelope *env);

struct hive_bus;

/* Does nng accept url as an address to listen on or dial? 0 / -1. (cfg
 * validates bus endpoints with it: only this module knows nng.) */
int hive_bus_url_ok(const char *url);

/* Opens a socket of `role` and listens on or dials url (dial is
 * non-blocking: the peer may come later). NULL with a message in err.
 * Listening on ipc://DIR/NAME makes DIR (0700) when it is missing, refuses
 * a DIR that is not this user's or that group or others may enter, and
 * makes the socket 0600. */
struct hive_bus *hive_bus_open(enum hive_bus_role role, const char *url,
			       const struct hive_bus_opts *opts, char *err, size_t errlen);
void hive_bus_close(struct hive_bus *bus);

/* A listening socket listens on url too, with opts' TLS files (so each
 * endpoint may trust its own CA: only peers with a certificate that CA
 * signed connect there) and ipc directory rules. Returns the endpoint's
 * number (1, 2, ...; at most 3 more), which hive_envelope.endpoint
 * then reports, or -1 with a message in err. */
int hive_bus_listen_also(struct hive_bus *bus, const char *url, const struct hive_bus_opts *opts,
			 char *err, size_t errlen);

/* SUBSCRIBE only: receive topics starting with prefix ("" = all). 0 / -1. */
int hive_bus_subscribe(struct hive_bus *bus, const char *prefix);

/* Sends body (borrowed) under topic with the next seq for that topic.
 * nonblock: return HIVE_BUS_TIMEOUT at once instead of waiting for buffer
 * space or a peer. Thread-safe. */
int hive_bus_send(struct hive_bus *bus, const char *topic, json_t *body, bool nonblock);
/* Sends bytes as they are (tests use it to send malformed messages). */
int hive_bus_send_raw(struct hive_bus *bus, const void *buf, size_t len, bool nonblock);

/* Receives one message; waits at most timeout_ms (-1 = the socket's
 * receive timeout, 0 = do not wait). HIVE_BUS_REJECTED for a malformed
 * message (already counted; env untouched). */
int hive_bus_recv(struct hive_bus *bus, struct hive_envelope *env, int timeout_ms);

/* REQUEST: sends and waits for the reply (REQ/REP). REPLY: answer the last
 * request received with hive_bus_send. */
int hive_bus_request(struct hive_bus *bus, const char *topic, json_t *body,
		     struct hive_envelope *reply, int timeout_ms);

/* A file descriptor that polls readable while a message can be received
 * (for hive_loop); -1 when the role cannot receive. Do not read from it. */
int hive_bus_recv_fd(struct hive_bus *bus);

/* Pipes (connections) currently attached. */
int hive_bus_peers(const struct hive_bus *bus);

struct hive_bus_stats {
	uint64_t sent;
	uint64_t send_failed;     /* timeouts/would-block included */
	uint64_t received;        /* valid envelopes */
	uint64_t rejected;        /* malformed, all reasons */
	uint64_t rejected_by[HIVE_ENV_ERROR_COUNT];
};
void hive_bus_get_stats(const struct hive_bus *bus, struct hive_bus_stats *out);

/* Sequence tracker: per (src, boot, topic), counts messages never received.
 * A new boot of a source starts its sequences again without counting a gap;
 * a repeated or older seq counts as a duplicate, not a gap. */
struct hive_seq_tracker;
struct hive_seq_tracker *hive_seq_new(void);
void hive_seq_free(struct hive_seq_tracker *t);
/* Returns the number of messages missing just before this one (0 when in
 * order). */
uint64_t hive_seq_track(struct hive_seq_tracker *t, const char *src, long long boot,
			const char *topic, unsigned long long seq);
uint64_t hive_seq_lost(const struct hive_seq_tracker *t);
uint64_t hive_seq_duplicates(const struct hive_seq_tracker *t);
/* Calls fn for every source (src) with the messages received and lost for
 * its newest boot, summed over topics. */
void hive_seq_foreach(const struct hive_seq_tracker *t,
		      void (*fn)(const char *src, uint64_t received, uint64_t lost, void *arg),
		      void *arg);

#endif
