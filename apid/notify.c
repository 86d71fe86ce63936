/* notify — see notify.h.
 *
 * One thread: it looks at the head of each channel's queue (the lowest
 * pending id) every second or when kicked, starts one transfer per
 * channel whose head is due, and waits in curl_multi_poll. When a transfer
 * ends, its outcome is committed through the writer (apid_writer_run,
 * blocking) before the channel's queue is looked at again: the read-only
 * connection then sees the new state, so a row is never sent twice by
 * one run, and a row delivered but not yet committed when apid dies is
 * sent again after the restart with the same key — the receiver
 * recognises it. Only this thread touches the multi handle, the database
 * connection and the channel list it works from; the mutex guards what
 * other threads hand over (kick, stop, a new config) and the counters. */
#include "notify.h"

#include <ctype.h>
#include <curl/curl.h>
#include <mbedtls/md.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "core.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "store.h"
#include "writer.h"

#define POLL_MS          1000     /* the outbox is looked at this often without a kick */
#define TIMEOUT_MS       10000    /* one attempt at most */
#define CONNECT_MS       5000
#define HOLD_MS          5000     /* a state that could not be written: wait, then look again */
#define TEXT_MINERS      20       /* miners named in a chat or mail text */
#define ERROR_MAX        200

static const char *const kind_names[] = {
	[HIVE_CHANNEL_WEBHOOK] = "webhook", [HIVE_CHANNEL_SLACK] = "slack",
	[HIVE_CHANNEL_TELEGRAM] = "telegram", [HIVE_CHANNEL_EMAIL] = "email",
};

static const char *kind_name(int k)
{
	return k >= 0 && k < (int)(sizeof(kind_names) / sizeof(kind_names[0])) ? kind_names[k]
										 : "?";
}

/* One attempt at one outbox row. */
struct xfer {
	struct chan *ch;
	CURL *easy;
	long long id;
	int attempts;            /* before this one */
	int64_t created_ms;
	char key[256];
	char *payload;           /* what is sent: JSON or the mail */
	size_t len, off;
	struct curl_slist *headers, *rcpt;
};

/* A channel as the thread works from it. */
struct chan {
	struct hive_alert_channel c;
	struct xfer *x;          /* in flight, or NULL */
	int64_t hold_until;      /* wall ms: don't start before (a state not written) */
	bool seen;               /* still configured after the last configure */
};

struct settings {
	struct hive_alert_channel *channels;
	size_t n;
	int retry_max_s;
	int give_up_h;
};

struct apid_notify {
	struct apid *a;
	pthread_t thread;
	CURLM *multi;
	pthread_mutex_t mu;
	bool stop, kicked;
	struct settings next;    /* a new config to take (under mu), channels NULL: none */
	bool has_next;
	struct settings cur;     /* thread only, but for channels_json (under mu) */
	struct apid_notify_stats stats;
	/* thread only */
	struct chan *chans;
	size_t nchans;
	sqlite3 *db;
	sqlite3_stmt *heads_st, *row_st, *count_st;
	int64_t next_look;       /* wall ms */
};

/* ------------------------------------------------------------ config */

static void remember_secrets(const struct hive_alert_channel *c)
{
	hive_log_secret(c->url);
	hive_log_secret(c->secret);
	hive_log_secret(c->smtp_url);
	hive_log_secret(c->chat_id);
}

static void forget_secrets(const struct settings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct hive_alert_channel *c = &s->channels[i];

		hive_log_forget_secret(c->url);
		hive_log_forget_secret(c->secret);
		hive_log_forget_secret(c->smtp_url);
		hive_log_forget_secret(c->chat_id);
	}
}

static int copy_settings(struct settings *s, const struct hive_cfg *cfg)
{
	memset(s, 0, sizeof(*s));
	s->retry_max_s = cfg->alerts.retry_max_seconds > 0 ? cfg->alerts.retry_max_seconds : 300;
	s->give_up_h = cfg->alerts.give_up_hours > 0 ? cfg->alerts.give_up_hours : 24;
	s->n = cfg->alerts.n_channels;
	if (s->n == 0)
		return 0;
	if (!(s->channels = calloc(s->n, sizeof(*s->channels))))
		return -1;
	memcpy(s->channels, cfg->alerts.channels, s->n * sizeof(*s->channels));
	for (size_t i = 0; i < s->n; i++)
		remember_secrets(&s->channels[i]);
	return 0;
}

/* Thread: takes a new config: channels kept by name keep their transfer
 * in flight (it finishes with the settings it started with). */
static void take_settings(struct apid_notify *n, struct settings *s)
{
	struct chan *chans = calloc(s->n ? s->n : 1, sizeof(*chans));

	if (!chans) {
		free(s->channels);
		return;
	}
	for (size_t i = 0; i < n->nchans; i++)
		n->chans[i].seen = false;
	for (size_t i = 0; i < s->n; i++) {
		chans[i].c = s->channels[i];
		for (size_t j = 0; j < n->nchans; j++)
			if (strcmp(n->chans[j].c.name, s->channels[i].name) == 0) {
				chans[i].x = n->chans[j].x;
				chans[i].hold_until = n->chans[j].hold_until;
				n->chans[j].seen = true;
				if (chans[i].x)
					chans[i].x->ch = &chans[i];
			}
	}
	/* A channel gone with a transfer in flight: abandoned, its row stays
	 * pending (sent if the channel comes back, else given up in time). */
	for (size_t j = 0; j < n->nchans; j++)
		if (!n->chans[j].seen && n->chans[j].x) {
			curl_multi_remove_handle(n->multi, n->chans[j].x->easy);
			curl_easy_cleanup(n->chans[j].x->easy);
			curl_slist_free_all(n->chans[j].x->headers);
			curl_slist_free_all(n->chans[j].x->rcpt);
			free(n->chans[j].x->payload);
			free(n->chans[j].x);
		}
	free(n->chans);
	n->chans = chans;
	n->nchans = s->n;
	pthread_mutex_lock(&n->mu);
	forget_secrets(&n->cur);     /* the new ones were registered by copy_settings */
	free(n->cur.channels);
	n->cur = *s;
	pthread_mutex_unlock(&n->mu);
}

/* ------------------------------------------------------------ text */

void apid_notify_redact_url(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://"), *host, *end, *at;

	if (!url[0]) {
		snprintf(out, outlen, "%s", "");
		return;
	}
	if (!p) {
		snprintf(out, outlen, "%s", "…");
		return;
	}
	/* After the last '@' anywhere: a password with an unescaped '/' must
	 * not pass for the host. */
	host = p + 3;
	if ((at = strrchr(host, '@')))
		host = at + 1;
	end = host + strcspn(host, "/?#");
	for (const char *c = host; c < end; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-:[]", *c)) {
			end = host;     /* not a host: show none of it */
			break;
		}
	snprintf(out, outlen, "%.*s://%.*s%s", (int)(p - url), url, (int)(end - host), host,
		 *end ? "/…" : "");
}

static void fmt_time(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The text chat and mail show: state, rule, summary, then who. malloc'd. */
static char *render_text(const json_t *body)
{
	const char *rule = json_string_value(json_object_get(body, "rule"));
	const char *state = json_string_value(json_object_get(body, "state"));
	const char *summary = json_string_value(json_object_get(body, "summary"));
	json_t *miners = json_object_get(body, "miners"), *subjects = json_object_get(body, "subjects");
	json_t *started = json_object_get(body, "started"), *ended = json_object_get(body, "ended");
	char *text = NULL, tbuf[40];
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);
	json_t *v;

	if (!f)
		return NULL;
	fprintf(f, "[%s] %s: %s", state && strcmp(state, "resolved") == 0 ? "RESOLVED" : "FIRING",
		rule ? rule : "?", summary ? summary : "");
	if (json_array_size(miners) > 0) {
		fprintf(f, "\nMiners (%zu):", json_array_size(miners));
		json_array_foreach(miners, i, v) {
			if (i == TEXT_MINERS) {
				fprintf(f, " … and %zu more", json_array_size(miners) - i);
				break;
			}
			fprintf(f, "%s %s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
		}
	}
	if (json_array_size(subjects) > 0) {
		fprintf(f, "\nSubjects:");
		json_array_foreach(subjects, i, v) {
			if (i == TEXT_MINERS) {
				fprintf(f, " … and %zu more", json_array_size(subjects) - i);
				break;
			}
			fprintf(f, "%s %s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
		}
	}
	if (json_is_integer(started)) {
		fmt_time(json_integer_value(started), tbuf, sizeof(tbuf));
		fprintf(f, "\nStarted: %s", tbuf);
	}
	if (json_is_integer(ended)) {
		fmt_time(json_integer_value(ended), tbuf, sizeof(tbuf));
		fprintf(f, "\nEnded: %s", tbuf);
	}
	fclose(f);
	return text;
}

/* A header value: CR and LF become spaces (no header injection). */
static void header_safe(char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			*s = ' ';
}

static char *mail_text(const struct hive_alert_channel *c, const json_t *body, const char *key)
{
	const char *rule = json_string_value(json_object_get(body, "rule"));
	const char *state = json_string_value(json_object_get(body, "state"));
	json_int_t count = json_integer_value(json_object_get(body, "count"));
	char *text = render_text(body), *mail = NULL, date[64], subject[256], k[256];
	size_t len = 0;
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;

	if (!text)
		return NULL;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(subject, sizeof(subject), "[PowerHive] %s %s (%lld)",
		 state && strcmp(state, "resolved") == 0 ? "RESOLVED" : "FIRING", rule ? rule : "?",
		 (long long)count);
	header_safe(subject);
	snprintf(k, sizeof(k), "%s", key);
	header_safe(k);
	if (!(f = open_memstream(&mail, &len))) {
		free(text);
		return NULL;
	}
	fprintf(f, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nX-PowerHive-Delivery: %s\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n", date, c->from, c->to, subject, k);
	/* The body with CRLF line ends, as SMTP wants them. */
	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			fputc('\r', f);
		fputc(*p, f);
	}
	fputs("\r\n", f);
	fclose(f);
	free(text);
	return mail;
}

static void hmac_hex(const char *secret, const char *data, size_t n, char out[65])
{
	unsigned char mac[32];

	mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
			(const unsigned char *)secret, strlen(secret), (const unsigned char *)data,
			n, mac);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* ------------------------------------------------------------ transfers */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static size_t read_payload(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t room = size * n, left = x->len - x->off;

	if (room > left)
		room = left;
	memcpy(buf, x->payload + x->off, room);
	x->off += room;
	return room;
}

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->rcpt);
	free(x->payload);
	free(x);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value,
				     bool *ok)
{
	char line[600];
	struct curl_slist *n;

	snprintf(line, sizeof(line), "%s: %s", name, value);
	header_safe(line);
	if (!(n = curl_slist_append(l, line)))
		*ok = false;
	return n ? n : l;
}

/* "ops@x" or "Ops <ops@x>" → "<ops@x>", the envelope's form. */
static void envelope_addr(const char *in, char *out, size_t len)
{
	const char *lt = strchr(in, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	while (*in == ' ' || *in == '\t')
		in++;
	size_t n = strlen(in);
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
		n--;
	if (lt && gt)
		snprintf(out, len, "%.*s", (int)(gt - lt + 1), lt);
	else
		snprintf(out, len, "<%.*s>", (int)n, in);
}

/* The request for x's row (body_text as stored). 0 / -1. */
static int xfer_build(struct xfer *x, const char *body_text)
{
	const struct hive_alert_channel *c = &x->ch->c;
	json_t *body = json_loads(body_text, 0, NULL), *o = NULL;
	CURL *e = x->easy;
	char *text = NULL;
	bool ok = true;

	if (!body)
		return -1;
	switch (c->kind) {
	case HIVE_CHANNEL_WEBHOOK:
		x->payload = strdup(body_text);  /* byte for byte what was signed */
		break;
	case HIVE_CHANNEL_SLACK:
		if ((text = render_text(body)))
			o = json_pack("{s:s}", "text", text);
		break;
	case HIVE_CHANNEL_TELEGRAM:
		if ((text = render_text(body)))
			o = json_pack("{s:s,s:s}", "chat_id", c->chat_id, "text", text);
		break;
	case HIVE_CHANNEL_EMAIL:
		x->payload = mail_text(c, body, x->key);
		break;
	}
	if (o)
		x->payload = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(text);
	if (!x->payload) {
		json_decref(body);
		return -1;
	}
	x->len = strlen(x->payload);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (c->kind == HIVE_CHANNEL_EMAIL) {
		char addr[600];
		char to[sizeof(c->to)];
		char *save = NULL;

		snprintf(to, sizeof(to), "%s", c->to);
		for (char *t = strtok_r(to, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (!strchr(t, '@'))
				continue;
			envelope_addr(t, addr, sizeof(addr));
			struct curl_slist *r = curl_slist_append(x->rcpt, addr);
			if (!r)
				ok = false;
			else
				x->rcpt = r;
		}
		envelope_addr(c->from, addr, sizeof(addr));
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(e, CURLOPT_URL, c->smtp_url);
		curl_easy_setopt(e, CURLOPT_MAIL_FROM, addr);
		curl_easy_setopt(e, CURLOPT_MAIL_RCPT, x->rcpt);
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, read_payload);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
		if (!x->rcpt)
			ok = false;
	} else {
		x->headers = add_header(x->headers, "Content-Type", "application/json", &ok);
		x->headers = add_header(x->headers, "X-PowerHive-Delivery", x->key, &ok);
		/* No "Expect: 100-continue" round trip before a small body. */
		x->headers = add_header(x->headers, "Expect", "", &ok);
		if (c->kind == HIVE_CHANNEL_WEBHOOK && c->secret[0]) {
			char hex[65], sig[80];

			hmac_hex(c->secret, x->payload, x->len, hex);
			snprintf(sig, sizeof(sig), "sha256=%s", hex);
			x->headers = add_header(x->headers, "X-PowerHive-Signature", sig, &ok);
		}
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_URL, c->url);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->payload);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
	}
	json_decref(body);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------ outbox */

static int open_db(struct apid_notify *n)
{
	char err[512];

	if (n->db)
		return 0;
	if (!(n->db = apid_store_open_readonly(n->a->db_path, err, sizeof(err)))) {
		hive_log_complain("notify db", "notify cannot read database err=\"%s\"", err);
		return -1;
	}
	if (sqlite3_prepare_v2(n->db,
			       "SELECT channel, min(id) FROM notifications WHERE status = 'pending'"
			       " GROUP BY channel", -1, &n->heads_st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(n->db,
			       "SELECT key, body, attempts, next_ms, created_ms FROM notifications"
			       " WHERE id = ?1 AND status = 'pending'", -1, &n->row_st,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(n->db,
			       "SELECT count(*) FROM notifications WHERE status = 'pending'", -1,
			       &n->count_st, NULL) != SQLITE_OK) {
		hive_log_complain("notify db", "notify cannot prepare err=\"%s\"",
				  sqlite3_errmsg(n->db));
		sqlite3_finalize(n->heads_st);
		sqlite3_finalize(n->row_st);
		sqlite3_finalize(n->count_st);
		n->heads_st = n->row_st = n->count_st = NULL;
		sqlite3_close(n->db);
		n->db = NULL;
		return -1;
	}
	hive_log_recovered("notify db", "notify reads database");
	return 0;
}

/* A row's new state, written on the writer thread. */
struct outcome {
	long long id;
	const char *status;      /* "pending", "delivered", "failed" */
	int64_t next_ms;
	int64_t delivered_ms;    /* 0: NULL */
	const char *error;       /* NULL: cleared */
};

static int outcome_run(struct apid_apply *ap, void *arg, int *http_status, char *err,
		       size_t errlen)
{
	static const char sql[] =
		"UPDATE notifications SET status = ?2, attempts = attempts + 1, next_ms = ?3,"
		" delivered_ms = ?4, last_error = ?5 WHERE id = ?1 AND status = 'pending'";
	struct outcome *o = arg;
	sqlite3 *db = apid_apply_db(ap);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		*http_status = 503;
		snprintf(err, errlen, "notification %lld: %s", o->id, sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, o->id);
	sqlite3_bind_text(st, 2, o->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, o->next_ms);
	if (o->delivered_ms)
		sqlite3_bind_int64(st, 4, o->delivered_ms);
	if (o->error)
		sqlite3_bind_text(st, 5, o->error, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*http_status = 503;
		snprintf(err, errlen, "notification %lld: %s", o->id, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Commits o; false when it could not be (the row stays pending). */
static bool write_outcome(struct apid_notify *n, struct chan *ch, const struct outcome *o)
{
	char err[256];
	int status = 0;

	if (apid_writer_run(n->a->writer, outcome_run, (void *)o, &status, err, sizeof(err)) == 0)
		return true;
	hive_log_complain("notify write", "notification state not written channel=%s id=%lld"
			  " status=%d err=\"%s\"", ch->c.name, o->id, status, err);
	ch->hold_until = hive_wall_ms() + HOLD_MS;
	return false;
}

/* The wait before attempt number attempts + 1 (attempts >= 1): 1, 2, 4 …
 * seconds, at most retry_max_s. */
static int64_t backoff_ms(int attempts, int retry_max_s)
{
	int64_t s = attempts >= 31 ? (int64_t)1 << 30 : (int64_t)1 << (attempts - 1);

	if (s > retry_max_s)
		s = retry_max_s;
	return s * 1000;
}

/* Attempt number attempts + 1 of row id failed: retried after the backoff,
 * or given up once the row is give_up_hours old. */
static void failed_attempt(struct apid_notify *n, struct chan *ch, long long id, const char *key,
			   int attempts, int64_t created_ms, const char *error)
{
	int64_t now = hive_wall_ms();
	struct outcome o = { .id = id, .next_ms = now, .error = error };
	char complain_key[96];

	pthread_mutex_lock(&n->mu);
	int retry_max_s = n->cur.retry_max_s, give_up_h = n->cur.give_up_h;
	pthread_mutex_unlock(&n->mu);
	if (now >= created_ms + (int64_t)give_up_h * 3600 * 1000) {
		o.status = "failed";
		if (write_outcome(n, ch, &o)) {
			pthread_mutex_lock(&n->mu);
			n->stats.given_up++;
			pthread_mutex_unlock(&n->mu);
			log_warnx("notification given up channel=%s key=%s attempts=%d err=\"%s\"",
				  ch->c.name, key, attempts + 1, error);
		}
		return;
	}
	o.status = "pending";
	o.next_ms = now + backoff_ms(attempts + 1, retry_max_s);
	if (write_outcome(n, ch, &o)) {
		pthread_mutex_lock(&n->mu);
		n->stats.failed_attempts++;
		pthread_mutex_unlock(&n->mu);
		snprintf(complain_key, sizeof(complain_key), "notify %s", ch->c.name);
		hive_log_complain(complain_key, "notification not delivered channel=%s kind=%s"
				  " key=%s attempts=%d retry_in_ms=%lld err=\"%s\"", ch->c.name,
				  kind_name(ch->c.kind), key, attempts + 1,
				  (long long)(o.next_ms - now), error);
	}
}

static void finish(struct apid_notify *n, struct xfer *x, CURLcode res)
{
	struct chan *ch = x->ch;
	int64_t now = hive_wall_ms();
	long code = 0;
	char error[ERROR_MAX] = "";
	struct outcome o = { .id = x->id };
	char complain_key[96];

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	/* curl_easy_strerror only: CURLOPT_ERRORBUFFER's text can hold the host */
	if (res != CURLE_OK && code > 0)
		snprintf(error, sizeof(error), "%s (%s %ld)", curl_easy_strerror(res),
			 ch->c.kind == HIVE_CHANNEL_EMAIL ? "SMTP" : "HTTP", code);
	else if (res != CURLE_OK)
		snprintf(error, sizeof(error), "%s", curl_easy_strerror(res));
	else if (ch->c.kind != HIVE_CHANNEL_EMAIL && (code < 200 || code > 299))
		snprintf(error, sizeof(error), "HTTP %ld", code);
	snprintf(complain_key, sizeof(complain_key), "notify %s", ch->c.name);

	if (!error[0]) {
		o.status = "delivered";
		o.next_ms = now;
		o.delivered_ms = now;
		if (write_outcome(n, ch, &o)) {
			pthread_mutex_lock(&n->mu);
			n->stats.delivered++;
			pthread_mutex_unlock(&n->mu);
			hive_log_recovered(complain_key, "notify channel=%s delivers again", ch->c.name);
			log_info("notification delivered channel=%s key=%s attempts=%d", ch->c.name,
				 x->key, x->attempts + 1);
		}
	} else {
		failed_attempt(n, ch, x->id, x->key, x->attempts, x->created_ms, error);
	}
	curl_multi_remove_handle(n->multi, x->easy);
	ch->x = NULL;
	xfer_free(x);
}

/* A row of a channel no longer configured: given up once it is old
 * enough, else left for a reload that brings the channel back. */
static void orphan(struct apid_notify *n, const char *channel, long long id, int64_t created_ms,
		   int64_t now)
{
	pthread_mutex_lock(&n->mu);
	int give_up_h = n->cur.give_up_h;
	pthread_mutex_unlock(&n->mu);
	if (now < created_ms + (int64_t)give_up_h * 3600 * 1000)
		return;
	struct outcome o = { .id = id, .status = "failed", .next_ms = now,
			     .error = "channel not configured" };
	char err[256];
	int status = 0;

	if (apid_writer_run(n->a->writer, outcome_run, &o, &status, err, sizeof(err)) == 0) {
		pthread_mutex_lock(&n->mu);
		n->stats.given_up++;
		pthread_mutex_unlock(&n->mu);
		log_warnx("notification given up channel=%s id=%lld err=\"channel not configured\"",
			  channel, id);
	}
}

static struct chan *chan_named(struct apid_notify *n, const char *name)
{
	for (size_t i = 0; i < n->nchans; i++)
		if (strcmp(n->chans[i].c.name, name) == 0)
			return &n->chans[i];
	return NULL;
}

/* Starts the head row id of ch when due; else notes when it will be. */
static void start_head(struct apid_notify *n, struct chan *ch, long long id, int64_t now)
{
	sqlite3_stmt *st = n->row_st;
	struct xfer *x = NULL;

	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	int64_t next_ms = sqlite3_column_int64(st, 3);
	if (next_ms > now) {
		if (next_ms < n->next_look)
			n->next_look = next_ms;
		goto out;
	}
	if (!(x = calloc(1, sizeof(*x))) || !(x->easy = curl_easy_init()))
		goto fail;
	x->ch = ch;
	x->id = id;
	snprintf(x->key, sizeof(x->key), "%s", (const char *)sqlite3_column_text(st, 0));
	x->attempts = sqlite3_column_int(st, 2);
	x->created_ms = sqlite3_column_int64(st, 4);
	if (xfer_build(x, (const char *)sqlite3_column_text(st, 1)) < 0 ||
	    curl_multi_add_handle(n->multi, x->easy) != CURLM_OK)
		goto fail;
	ch->x = x;
	x = NULL;
	goto out;
fail:
	/* Out of memory, or a body that is not JSON: a failed attempt like
	 * any other, so that the row is given up in time. */
	if (x && x->key[0]) {
		long long fid = x->id;
		int attempts = x->attempts;
		int64_t created_ms = x->created_ms;
		char key[sizeof(x->key)];

		snprintf(key, sizeof(key), "%s", x->key);
		sqlite3_reset(st);
		xfer_free(x);
		failed_attempt(n, ch, fid, key, attempts, created_ms, "cannot build the request");
		return;
	}
	ch->hold_until = now + HOLD_MS;
out:
	sqlite3_reset(st);
	xfer_free(x);
}

/* Looks at the head of every channel's queue. */
static void look(struct apid_notify *n)
{
	int64_t now = hive_wall_ms();
	struct head { char channel[64]; long long id; } *heads = NULL;
	size_t nh = 0, cap = 0;

	n->next_look = now + POLL_MS;
	if (open_db(n) < 0)
		return;
	while (sqlite3_step(n->heads_st) == SQLITE_ROW) {
		if (nh == cap) {
			cap = cap ? cap * 2 : 8;
			struct head *h = realloc(heads, cap * sizeof(*h));
			if (!h)
				break;
			heads = h;
		}
		snprintf(heads[nh].channel, sizeof(heads[nh].channel), "%s",
			 (const char *)sqlite3_column_text(n->heads_st, 0));
		heads[nh++].id = sqlite3_column_int64(n->heads_st, 1);
	}
	sqlite3_reset(n->heads_st);
	for (size_t i = 0; i < nh; i++) {
		struct chan *ch = chan_named(n, heads[i].channel);

		if (!ch) {
			sqlite3_bind_int64(n->row_st, 1, heads[i].id);
			int64_t created = sqlite3_step(n->row_st) == SQLITE_ROW
						  ? sqlite3_column_int64(n->row_st, 4) : now;
			sqlite3_reset(n->row_st);
			orphan(n, heads[i].channel, heads[i].id, created, now);
			continue;
		}
		if (ch->x)
			continue;
		if (ch->hold_until > now) {
			if (ch->hold_until < n->next_look)
				n->next_look = ch->hold_until;
			continue;
		}
		start_head(n, ch, heads[i].id, now);
	}
	free(heads);
	if (sqlite3_step(n->count_st) == SQLITE_ROW) {
		pthread_mutex_lock(&n->mu);
		n->stats.pending = sqlite3_column_int64(n->count_st, 0);
		pthread_mutex_unlock(&n->mu);
	}
	sqlite3_reset(n->count_st);
}

static void *notify_main(void *arg)
{
	struct apid_notify *n = arg;

	for (;;) {
		struct settings s;
		bool has_next, kicked;

		pthread_mutex_lock(&n->mu);
		if (n->stop) {
			pthread_mutex_unlock(&n->mu);
			break;
		}
		has_next = n->has_next;
		s = n->next;
		n->has_next = false;
		memset(&n->next, 0, sizeof(n->next));
		kicked = n->kicked;
		n->kicked = false;
		pthread_mutex_unlock(&n->mu);
		if (has_next)
			take_settings(n, &s);

		if (kicked || has_next || hive_wall_ms() >= n->next_look)
			look(n);

		int running = 0;
		curl_multi_perform(n->multi, &running);
		CURLMsg *m;
		int left;
		bool ended = false;
		while ((m = curl_multi_info_read(n->multi, &left))) {
			char *priv = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
			finish(n, (struct xfer *)priv, m->data.result);
			ended = true;
		}
		if (ended) {
			/* The channel's next row may go at once. */
			n->next_look = 0;
			continue;
		}
		int64_t wait = n->next_look - hive_wall_ms();
		if (wait > POLL_MS)
			wait = POLL_MS;
		if (wait < 0)
			wait = 0;
		curl_multi_poll(n->multi, NULL, 0, (int)wait, NULL);
	}
	for (size_t i = 0; i < n->nchans; i++)
		if (n->chans[i].x) {
			curl_multi_remove_handle(n->multi, n->chans[i].x->easy);
			xfer_free(n->chans[i].x);
			n->chans[i].x = NULL;
		}
	sqlite3_finalize(n->heads_st);
	sqlite3_finalize(n->row_st);
	sqlite3_finalize(n->count_st);
	sqlite3_close(n->db);
	n->db = NULL;
	return NULL;
}

/* ------------------------------------------------------------ public */

struct apid_notify *apid_notify_start(struct apid *a, char *err, size_t errlen)
{
	struct apid_notify *n = calloc(1, sizeof(*n));

	if (!n) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->a = a;
	n->stats.pending = -1;
	pthread_mutex_init(&n->mu, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(n->multi = curl_multi_init())) {
		snprintf(err, errlen, "notify: cannot start libcurl");
		goto fail;
	}
	if (copy_settings(&n->next, &a->d.cfg) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	n->has_next = true;
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
		snprintf(err, errlen, "notify: cannot start its thread");
		free(n->next.channels);
		goto fail;
	}
	log_info("notify started channels=%zu", a->d.cfg.alerts.n_channels);
	return n;
fail:
	if (n->multi)
		curl_multi_cleanup(n->multi);
	pthread_mutex_destroy(&n->mu);
	free(n);
	return NULL;
}

void apid_notify_kick(struct apid_notify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->kicked = true;
	pthread_mutex_unlock(&n->mu);
	curl_multi_wakeup(n->multi);
}

void apid_notify_configure(struct apid_notify *n, const struct hive_cfg *cfg)
{
	struct settings s;

	if (!n || copy_settings(&s, cfg) < 0)
		return;
	pthread_mutex_lock(&n->mu);
	forget_secrets(&n->next);    /* a config never taken */
	free(n->next.channels);
	n->next = s;
	n->has_next = true;
	pthread_mutex_unlock(&n->mu);
	curl_multi_wakeup(n->multi);
}

void apid_notify_stop(struct apid_notify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	pthread_mutex_unlock(&n->mu);
	curl_multi_wakeup(n->multi);
	pthread_join(n->thread, NULL);
	curl_multi_cleanup(n->multi);
	free(n->chans);
	free(n->cur.channels);
	free(n->next.channels);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

void apid_notify_get_stats(struct apid_notify *n, struct apid_notify_stats *out)
{
	if (!n) {
		memset(out, 0, sizeof(*out));
		out->pending = -1;
		return;
	}
	pthread_mutex_lock(&n->mu);
	*out = n->stats;
	pthread_mutex_unlock(&n->mu);
}

json_t *apid_notify_channels(struct apid_notify *n)
{
	json_t *list = json_array();
	char url[HIVE_CFG_URL_MAX + 8];

	if (!n || !list)
		return list;
	pthread_mutex_lock(&n->mu);
	/* Before the thread took its first config, that config is in next. */
	const struct settings *s = n->cur.channels || !n->has_next ? &n->cur : &n->next;
	for (size_t i = 0; i < s->n; i++) {
		const struct hive_alert_channel *c = &s->channels[i];
		json_t *o = json_object();

		if (!o)
			break;
		json_object_set_new(o, "name", json_string(c->name));
		json_object_set_new(o, "kind", json_string(kind_name(c->kind)));
		if (c->kind == HIVE_CHANNEL_EMAIL) {
			apid_notify_redact_url(c->smtp_url, url, sizeof(url));
			json_object_set_new(o, "smtp_url", json_string(url));
			json_object_set_new(o, "from", json_string(c->from));
			json_object_set_new(o, "to", json_string(c->to));
		} else {
			apid_notify_redact_url(c->url, url, sizeof(url));
			json_object_set_new(o, "url", json_string(url));
		}
		if (c->kind == HIVE_CHANNEL_WEBHOOK)
			json_object_set_new(o, "signed", json_boolean(c->secret[0] != '\0'));
		json_array_append_new(list, o);
	}
	pthread_mutex_unlock(&n->mu);
	return list;
}

int apid_notify_enqueue(sqlite3 *db, const struct hive_cfg *cfg, json_t *body, int64_t now_ms)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO notifications(channel, key, rule, state, body, created_ms,"
		" next_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6)";
	const char *id = json_string_value(json_object_get(body, "id"));
	const char *rule = json_string_value(json_object_get(body, "rule"));
	const char *state = json_string_value(json_object_get(body, "state"));
	sqlite3_stmt *st = NULL;
	char *text = NULL, key[256];
	int added = 0;

	if (!id || !rule || !state)
		return -1;
	if (cfg->alerts.n_channels == 0)
		return 0;
	if (!(text = json_dumps(body, JSON_COMPACT)) ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < cfg->alerts.n_channels; i++) {
		const struct hive_alert_channel *c = &cfg->alerts.channels[i];

		snprintf(key, sizeof(key), "%s/%s", id, c->name);
		sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rule, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now_ms);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
		added += sqlite3_changes(db);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	free(text);
	return added;
fail:
	log_warnx("notification not queued id=%s err=\"%s\"", id, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	free(text);
	return -1;
}
