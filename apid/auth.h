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

/* True when header is "Bearer <token>" (scheme case-insensitive) for this
 * token. The comparison takes the same time wherever it differs. */
bool apid_auth_bearer_ok(const char *header, const char *token);

#endif
