/* sink — what a farm's alert receivers look like to a test: a webhook
 * receiver (HTTP/1.1) and an SMTP sink on 127.0.0.1, on threads of their
 * own, that record what apid's notifications delivered.
 *
 *	struct sink *k = sink_start("s3cret");
 *	... channels with url http://127.0.0.1:<sink_http_port(k)>/hook and
 *	    smtp_url smtp://127.0.0.1:<sink_smtp_port(k)> ...
 *	sink_wait(k, 3, 20000);
 *	sink_key(k, 0), sink_verified(k, 0), sink_body(k, 0) ...
 *	sink_stop(k);
 */
#ifndef HIVE_SINK_H
#define HIVE_SINK_H

#include <stdbool.h>
#include <jansson.h>

struct sink;

/* Listens on two ports the OS chooses; hmac_secret (copied; NULL: nothing
 * verifies) is the webhook secret X-PowerHive-Signature is checked with.
 * NULL when it could not listen. */
struct sink *sink_start(const char *hmac_secret);
int sink_http_port(struct sink *s);
int sink_smtp_port(struct sink *s);

/* While down, every HTTP request is answered 503 (and not recorded) and
 * SMTP answers MAIL FROM with 451. */
void sink_set_down(struct sink *s, bool down);
/* A slow receiver: every HTTP answer waits this long first (0: none). */
void sink_set_delay_ms(struct sink *s, int ms);

/* HTTP requests received with 2xx answered. */
int sink_count(struct sink *s);
/* Every HTTP request received, 503s included. */
int sink_requests(struct sink *s);
/* The i-th request answered 2xx (0 <= i < sink_count): its body parsed as
 * JSON (NULL when it was not JSON), its path, its X-PowerHive-Delivery key
 * (NULL when absent) and whether X-PowerHive-Signature is sha256=<hex
 * HMAC-SHA256(body, secret)>. Borrowed: valid until sink_stop. */
json_t *sink_body(struct sink *s, int i);
const char *sink_path(struct sink *s, int i);
const char *sink_key(struct sink *s, int i);
bool sink_verified(struct sink *s, int i);

/* Messages the SMTP sink accepted, and the i-th one's DATA text (headers
 * and body, dot-unstuffed, CRLF line ends; borrowed until sink_stop). */
int sink_mail_count(struct sink *s);
const char *sink_mail(struct sink *s, int i);

/* Waits until sink_count >= n: true, or false after timeout_ms. */
bool sink_wait(struct sink *s, int n, int timeout_ms);
/* The same for sink_mail_count. */
bool sink_wait_mail(struct sink *s, int n, int timeout_ms);

/* Closes every socket, joins every thread, frees everything. */
void sink_stop(struct sink *s);

#endif
