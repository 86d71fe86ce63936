/* http.h — apid's HTTP server (civetweb): the JSON API under /api, /metrics,
 * and the dashboard's static files from http.web_root. */
#ifndef APID_HTTP_H
#define APID_HTTP_H

#include <stddef.h>

struct apid;
struct apid_http;

/* Resolves the API token (config, env POWERHIVE_API_TOKEN, token file, or a
 * new one written 0600 to http.auth.token_file), starts civetweb on
 * http.addr. NULL with a message in err. */
struct apid_http *apid_http_start(struct apid *a, char *err, size_t errlen);
void apid_http_stop(struct apid_http *h);
/* Failed sign-ins, and requests refused 429 for them, since start. */
void apid_http_auth_counts(struct apid_http *h, unsigned long long *failed,
			   unsigned long long *refused);

#endif
