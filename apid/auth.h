/* auth.h — the API's bearer token: where it comes from and how a request's
 * Authorization header is checked. */
#ifndef APID_AUTH_H
#define APID_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct hive_cfg;

#define APID_TOKEN_MAX 512
/* A token an operator chose must not be guessable by trying: 16 characters
 * at least (the generated one has 64 hex digits). */
#define APID_TOKEN_MIN 16

/* Resolves the token into token[len]: http.auth.token (the config or env
 * POWERHIVE_API_TOKEN, already applied by hive_cfg) as given; else the
 * content of http.auth.token_file; else 32 random bytes as 64 hex digits,
 * written 0600 to the token file (parent created 0700, never overwriting a
 * file another process wrote first). The token is registered with
 * hive_log_secret; the log says where it came from, never what it is.
 * A given or read token shorter than APID_TOKEN_MIN is refused.
 * 0 / -1 with a message in err. */
int apid_auth_resolve(const struct hive_cfg *cfg, char *token, size_t len,
		      char *err, size_t errlen);

/* ---- roles and named tokens (docs/api.md "Tokens and roles") ----
 * Each role may do what the ones below it may. */
enum apid_role {
	APID_ROLE_NONE = 0,      /* no valid token (anonymous without open_reads) */
	APID_ROLE_VIEWER,        /* reads, /metrics */
	APID_ROLE_OPERATOR,      /* actions, managed flag, acks and silences */
	APID_ROLE_ADMIN,         /* limits, power settings, unlock passwords, tokens */
};
/* "viewer", "operator", "admin" ("none" for APID_ROLE_NONE). */
const char *apid_role_name(enum apid_role role);
/* APID_ROLE_VIEWER.. from its name, APID_ROLE_NONE when it is none. */
enum apid_role apid_role_parse(const char *name);

/* The bootstrap token's name (http.auth.token, POWERHIVE_API_TOKEN or the
 * token file), and the name of an anonymous reader under open_reads. */
#define APID_TOKEN_BOOTSTRAP "bootstrap"
#define APID_TOKEN_ANONYMOUS "anonymous"
#define APID_TOKEN_NAME_MAX  64

/* NULL when name may be a token's: 1..APID_TOKEN_NAME_MAX of
 * [A-Za-z0-9._-], beginning with a letter or digit, and none of the
 * reserved names (apid's own actors: enforcer, balancer, alerts...,
 * compared ignoring case). Else why not, for a 400/409 message. */
const char *apid_token_name_refused(const char *name);

/* SHA-256 of the token as 64 lowercase hex digits in hex[65]: what the
 * tokens table keeps instead of the token. */
void apid_token_hash(const char *token, char hex[65]);
/* A new token: 32 random bytes as 64 hex digits in token[65]. 0 / -1. */
int apid_token_generate(char token[65]);
/* The token of an "Authorization: Bearer <token>" header into out[len]
 * (spaces around cut); false when the header is not one. */
bool apid_auth_bearer_token(const char *header, char *out, size_t len);

/* ---- failed sign-ins, per client address ----
 * APID_AUTH_FAIL_MAX failures within APID_AUTH_FAIL_WINDOW_MS from one
 * address lock it out for APID_AUTH_LOCK_MS: its API requests answer 429
 * without their token being looked at. Other addresses are not affected.
 * Thread-safe. */
#define APID_AUTH_FAIL_MAX       10
#define APID_AUTH_FAIL_WINDOW_MS 60000
#define APID_AUTH_LOCK_MS        60000
struct apid_auth_limit;
struct apid_auth_limit *apid_auth_limit_new(void);
void apid_auth_limit_free(struct apid_auth_limit *l);
/* Seconds until addr may try again (>= 1), 0 when it is not locked out. */
long apid_auth_limit_locked(struct apid_auth_limit *l, const char *addr, long long now_ms);
/* Counts a failed sign-in from addr. */
void apid_auth_limit_fail(struct apid_auth_limit *l, const char *addr, long long now_ms);
/* Failed sign-ins and requests refused 429 since start. */
void apid_auth_limit_counts(struct apid_auth_limit *l, unsigned long long *failed,
			    unsigned long long *refused);

/* True when header is "Bearer <token>" (scheme case-insensitive) for this
 * token. The comparison takes the same time wherever it differs. */
bool apid_auth_bearer_ok(const char *header, const char *token);

#endif
