/* test_notify — alert notifications delivered by a real bin/apid to a
 * webhook receiver and an SMTP sink on loopback (tests/lib/sink.h).
 *
 * Four channels point at the sink: a signed webhook, a Slack-shaped and a
 * Telegram-shaped webhook (each on a path of its own, the secret in the
 * path) and e-mail. Notifications are put in the outbox the way the alerts
 * engine does (rows of the notifications table, one per channel, key =
 * id/channel), written by the test into apid's database while apid runs
 * (it looks at the outbox every second), and at the end made by the engine
 * itself from minersim faults (when the engine fires).
 *
 *   1. every channel gets each notification once, in order, the webhook's
 *      HMAC verifies, chat and mail texts carry the summary and the key;
 *   2. the receiver down for a while: the head row of each channel is
 *      retried (backoff capped at retry_max_seconds), the rows behind it
 *      wait; a row older than give_up_hours is given up, so is one whose
 *      body cannot be sent; back up, every
 *      other notification arrives, in order, each once;
 *   3. apid killed -9 with notifications undelivered: delivered after the
 *      restart, each once;
 *   4. GET /api/notifications shows the states, GET /api/alerts/channels
 *      no secret, no token, no chat id; the log neither;
 *   5. a reload (SIGHUP) with the Slack hook rotated: the next one goes to
 *      the new URL;
 *   6. real alerts: minersim's offline fault on a few miners → grouped
 *      miner_offline notifications naming each miner once, signed, on
 *      the webhook, the chat and by mail; resolved when they are back.
 *
 * Figures are printed as "figure: notify: ..." lines. KEEP_TMP=1 keeps the
 * run directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/sink.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define SECRET       "whsec-5d1c9a7e-notify-test"
#define SLACK_PATH   "/slack/T0FARM/B0HIVE/slacksecretpath42"
#define SLACK_PATH2  "/slack/T0FARM/B0HIVE/rotatedsecret77"
#define TG_TOKEN     "987654:tgsecrettokenXYZ"
#define TG_CHAT      "-100777123"
#define MAIL_PASS    "mailpass99"
#define RETRY_MAX_S  2
#define NCHAN        4
#define SUBNET       "127.88.0.0/24"
#define MINERS       12
#define OFFLINE      4            /* miners the offline fault takes down */

static const char *const chan_names[NCHAN] = { "hook", "slack", "tg", "mail" };

static struct ts_suite S;
static struct sink *K;
static int passed;
#define NTESTS 6

/* Every notification the test put in the outbox, in order. */
static char made[64][48];
static int nmade;

/* ------------------------------------------------------------ the outbox */

static char *db_path(void)
{
	static char p[1200];

	snprintf(p, sizeof(p), "%s/powerhive.db", S.dir);
	return p;
}

/* The generic body of one notification, as the engine makes it. */
static char *body_text(const char *id, const char *state, int64_t started)
{
	json_t *b = json_pack("{s:s,s:s,s:s,s:[s,s],s:i,s:[],s:s,s:I,s:n,s:[i],s:{s:{s:i}}}",
			      "id", id, "rule", "miner_offline", "state", state, "miners",
			      "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "count", 2, "subjects",
			      "summary", "2 miners offline (127.42.0.0/24: 2)", "started",
			      (json_int_t)started, "ended", "alerts", 7, "groups", "subnet",
			      "127.42.0.0/24", 2);
	char *t = json_dumps(b, JSON_COMPACT);

	json_decref(b);
	return t;
}

/* One row per channel for notification id, created at created_ms, with
 * body (NULL: the generic body). */
static void put_body(const char *id, int64_t created_ms, const char *raw)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *body = raw ? strdup(raw) : body_text(id, "firing", created_ms);

	assert_int_equal(sqlite3_open_v2(db_path(), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO notifications(channel, key, rule, state,"
					    " body, created_ms, next_ms) VALUES(?1, ?2,"
					    " 'miner_offline', 'firing', ?3, ?4, ?4)", -1, &st,
					    NULL), SQLITE_OK);
	for (int c = 0; c < NCHAN; c++) {
		char key[96];

		snprintf(key, sizeof(key), "%s/%s", id, chan_names[c]);
		sqlite3_bind_text(st, 1, chan_names[c], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, created_ms);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(body);
}

static void put(const char *id, int64_t created_ms)
{
	put_body(id, created_ms, NULL);
}

static void make(const char *id)
{
	put(id, hive_wall_ms());
	snprintf(made[nmade++], sizeof(made[0]), "%s", id);
}

/* ------------------------------------------------------------ what arrived */

static int chan_of_path(const char *path)
{
	if (strcmp(path, "/hook") == 0)
		return 0;
	if (strcmp(path, SLACK_PATH) == 0 || strcmp(path, SLACK_PATH2) == 0)
		return 1;
	if (strcmp(path, "/bot" TG_TOKEN "/sendMessage") == 0)
		return 2;
	return -1;
}

/* The X-PowerHive-Delivery header of a mail, into key. */
static void mail_key(const char *mail, char *key, size_t len)
{
	const char *h = strstr(mail, "X-PowerHive-Delivery: ");

	key[0] = '\0';
	if (h)
		snprintf(key, len, "%.*s", (int)strcspn(h + 22, "\r\n"), h + 22);
}

/* Keys that arrived on channel c, in order of arrival. */
static int arrived(int c, char keys[][96], int max)
{
	int n = 0;

	if (c == 3) {
		for (int i = 0; i < sink_mail_count(K) && n < max; i++)
			mail_key(sink_mail(K, i), keys[n++], 96);
		return n;
	}
	for (int i = 0; i < sink_count(K) && n < max; i++)
		if (chan_of_path(sink_path(K, i)) == c)
			snprintf(keys[n++], 96, "%s", sink_key(K, i) ? sink_key(K, i) : "");
	return n;
}

/* Every channel holds exactly the keys of made[0..nmade), in order, each
 * once. */
static void assert_all_in_order(void)
{
	static char keys[256][96];

	for (int c = 0; c < NCHAN; c++) {
		int n = arrived(c, keys, 256);

		if (n != nmade)
			fprintf(stderr, "channel %s: %d arrived, %d made\n", chan_names[c], n, nmade);
		assert_int_equal(n, nmade);
		for (int i = 0; i < n; i++) {
			char want[96];

			snprintf(want, sizeof(want), "%.47s/%s", made[i], chan_names[c]);
			if (strcmp(keys[i], want) != 0)
				fprintf(stderr, "channel %s #%d: %s, expected %s\n", chan_names[c], i,
					keys[i], want);
			assert_string_equal(keys[i], want);
		}
	}
}

static bool all_arrived(void *arg)
{
	(void)arg;
	return sink_count(K) >= 3 * nmade && sink_mail_count(K) >= nmade;
}

/* /api/notifications?<query>: the list (new reference). */
static json_t *notifications(const char *query)
{
	char path[256];
	json_t *j, *list;

	snprintf(path, sizeof(path), "/api/notifications%s", query);
	j = ts_api_get(&S, path);
	assert_non_null(j);
	list = json_incref(json_object_get(j, "notifications"));
	json_decref(j);
	assert_true(json_is_array(list));
	return list;
}

static json_t *row_of(json_t *list, const char *key)
{
	size_t i;
	json_t *r;

	json_array_foreach(list, i, r)
		if (strcmp(json_string_value(json_object_get(r, "key")), key) == 0)
			return r;
	return NULL;
}

/* ------------------------------------------------------------ the stack */

/* The four channels, Slack's on slack_path. */
static int channels(const char *slack_path)
{
	return ts_merge(&S, "{\"alerts\": {\"retry_max_seconds\": %d, \"give_up_hours\": 1,"
			" \"channels\": ["
			"{\"name\": \"hook\", \"kind\": \"webhook\","
			" \"url\": \"http://127.0.0.1:%d/hook\", \"secret\": \"" SECRET "\"},"
			"{\"name\": \"slack\", \"kind\": \"slack\","
			" \"url\": \"http://127.0.0.1:%d%s\"},"
			"{\"name\": \"tg\", \"kind\": \"telegram\","
			" \"url\": \"http://127.0.0.1:%d/bot" TG_TOKEN "/sendMessage\","
			" \"chat_id\": \"" TG_CHAT "\"},"
			"{\"name\": \"mail\", \"kind\": \"email\","
			" \"smtp_url\": \"smtp://notifier:" MAIL_PASS "@127.0.0.1:%d\","
			" \"from\": \"PowerHive <powerhive@farm.example>\","
			" \"to\": \"ops@farm.example, oncall@farm.example\"}]}}",
			RETRY_MAX_S, sink_http_port(K), sink_http_port(K), slack_path,
			sink_http_port(K), sink_smtp_port(K));
}

static int setup(void **state)
{
	(void)state;
	if (!(K = sink_start(SECRET)) || ts_init(&S, "notify") < 0)
		return -1;
	if (channels(SLACK_PATH) < 0)
		return -1;
	if (!ts_start(&S, "apid", NULL, NULL, NULL) || !ts_token(&S))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_down(&S, passed != NTESTS);
	sink_stop(K);
	return 0;
}

/* ------------------------------------------------------------ 1 */

static void delivered_signed_and_rendered(void **state)
{
	(void)state;
	int64_t t0 = hive_mono_ms();

	make("n-1");
	make("n-2");
	assert_int_equal(tl_wait_until(15000, all_arrived, NULL), 0);
	printf("figure: notify: 2 notifications x 4 channels delivered in %lld ms\n",
	       (long long)(hive_mono_ms() - t0));
	tl_sleep_ms(300);              /* nothing more comes */
	assert_all_in_order();

	for (int i = 0; i < sink_count(K); i++) {
		int c = chan_of_path(sink_path(K, i));
		json_t *b = sink_body(K, i);

		assert_true(c >= 0);
		assert_non_null(b);
		if (c == 0) {
			/* the generic body as the engine made it, signed */
			assert_true(sink_verified(K, i));
			assert_string_equal(json_string_value(json_object_get(b, "rule")),
					    "miner_offline");
			assert_int_equal(json_integer_value(json_object_get(b, "count")), 2);
			assert_int_equal(json_array_size(json_object_get(b, "miners")), 2);
		} else {
			const char *text = json_string_value(json_object_get(b, "text"));

			assert_false(sink_verified(K, i));   /* only the webhook is signed */
			assert_non_null(text);
			assert_non_null(strstr(text, "2 miners offline"));
			assert_non_null(strstr(text, "aa:bb:cc:00:00:02"));
			assert_non_null(strstr(text, "FIRING"));
			if (c == 2)
				assert_string_equal(json_string_value(json_object_get(b, "chat_id")),
						    TG_CHAT);
		}
	}
	for (int i = 0; i < sink_mail_count(K); i++) {
		const char *m = sink_mail(K, i);

		assert_non_null(strstr(m, "Subject: [PowerHive] FIRING miner_offline (2)\r\n"));
		assert_non_null(strstr(m, "From: PowerHive <powerhive@farm.example>\r\n"));
		assert_non_null(strstr(m, "2 miners offline"));
	}

	/* the outbox says delivered, at the first attempt */
	json_t *list = notifications("?limit=1000");
	assert_int_equal(json_array_size(list), 2 * NCHAN);
	size_t i;
	json_t *r;
	json_array_foreach(list, i, r) {
		assert_string_equal(json_string_value(json_object_get(r, "status")), "delivered");
		assert_int_equal(json_integer_value(json_object_get(r, "attempts")), 1);
		assert_true(json_is_integer(json_object_get(r, "delivered")));
		assert_true(json_is_null(json_object_get(r, "next_attempt")));
	}
	json_decref(list);
	passed++;
}

/* ------------------------------------------------------------ 2 */

static bool heads_retried(void *arg)
{
	json_t *list = notifications("?status=pending&limit=1000");
	const char *first = arg;
	bool ok = true;

	for (int c = 0; c < NCHAN && ok; c++) {
		char key[96];
		json_t *r;

		snprintf(key, sizeof(key), "%s/%s", first, chan_names[c]);
		r = row_of(list, key);
		ok = r && json_integer_value(json_object_get(r, "attempts")) >= 3;
	}
	json_decref(list);
	return ok;
}

static void receiver_down_then_all_in_order(void **state)
{
	(void)state;
	int before = sink_count(K), mails = sink_mail_count(K);

	sink_set_down(K, true);
	/* An old one first: given up at its first failed attempt, the rows
	 * behind it go on. */
	put("n-old", hive_wall_ms() - 2 * 3600 * 1000LL);
	put_body("n-bad", hive_wall_ms() - 2 * 3600 * 1000LL, "{not json");
	make("n-3");
	make("n-4");
	make("n-5");
	int64_t t0 = hive_mono_ms();
	assert_int_equal(tl_wait_until(20000, heads_retried, "n-3"), 0);
	printf("figure: notify: 3 attempts on the head while down in %lld ms (retry_max %d s)\n",
	       (long long)(hive_mono_ms() - t0), RETRY_MAX_S);

	json_t *list = notifications("?limit=1000");
	for (int c = 0; c < NCHAN; c++) {
		char key[96];
		json_t *r;

		snprintf(key, sizeof(key), "n-old/%s", chan_names[c]);
		r = row_of(list, key);
		assert_non_null(r);
		assert_string_equal(json_string_value(json_object_get(r, "status")), "failed");
		assert_int_equal(json_integer_value(json_object_get(r, "attempts")), 1);
		assert_non_null(json_string_value(json_object_get(r, "last_error")));
		/* a body that cannot be sent holds up nobody either */
		snprintf(key, sizeof(key), "n-bad/%s", chan_names[c]);
		r = row_of(list, key);
		assert_non_null(r);
		assert_string_equal(json_string_value(json_object_get(r, "status")), "failed");
		assert_string_equal(json_string_value(json_object_get(r, "last_error")),
				    "cannot build the request");
		/* head of line: the rows behind the head were never tried */
		snprintf(key, sizeof(key), "n-3/%s", chan_names[c]);
		r = row_of(list, key);
		assert_string_equal(json_string_value(json_object_get(r, "status")), "pending");
		assert_true(json_is_integer(json_object_get(r, "next_attempt")));
		if (c < 3)
			assert_string_equal(json_string_value(json_object_get(r, "last_error")),
					    "HTTP 503");
		for (int k = 4; k <= 5; k++) {
			snprintf(key, sizeof(key), "n-%d/%s", k, chan_names[c]);
			r = row_of(list, key);
			assert_int_equal(json_integer_value(json_object_get(r, "attempts")), 0);
		}
	}
	json_decref(list);
	assert_int_equal(sink_count(K), before);
	assert_int_equal(sink_mail_count(K), mails);

	sink_set_down(K, false);
	t0 = hive_mono_ms();
	assert_int_equal(tl_wait_until(20000, all_arrived, NULL), 0);
	printf("figure: notify: receiver back -> 3 notifications x 4 channels in %lld ms\n",
	       (long long)(hive_mono_ms() - t0));
	tl_sleep_ms(RETRY_MAX_S * 1000 + 500);   /* no late duplicate */
	assert_all_in_order();
	passed++;
}

/* ------------------------------------------------------------ 3 */

static bool attempted(void *arg)
{
	json_t *list = notifications("?status=pending&limit=1000");
	char key[96];
	json_t *r;
	bool ok;

	snprintf(key, sizeof(key), "%s/hook", (const char *)arg);
	r = row_of(list, key);
	ok = r && json_integer_value(json_object_get(r, "attempts")) >= 1;
	json_decref(list);
	return ok;
}

static void restart_delivers_pending(void **state)
{
	(void)state;
	sink_set_down(K, true);
	make("n-6");
	make("n-7");
	assert_int_equal(tl_wait_until(15000, attempted, "n-6"), 0);
	assert_true(ts_stop(&S, "apid", SIGKILL, 5000) >= 0);
	sink_set_down(K, false);

	int64_t t0 = hive_mono_ms();
	assert_non_null(ts_start(&S, "apid", NULL, NULL, NULL));
	assert_int_equal(tl_wait_until(20000, all_arrived, NULL), 0);
	printf("figure: notify: after kill -9 and restart, 2 notifications x 4 channels in"
	       " %lld ms\n", (long long)(hive_mono_ms() - t0));
	tl_sleep_ms(RETRY_MAX_S * 1000 + 500);
	assert_all_in_order();

	for (int i = 0; i < sink_count(K); i++)
		if (chan_of_path(sink_path(K, i)) == 0)
			assert_true(sink_verified(K, i));
	json_t *list = notifications("?status=pending");
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	passed++;
}

/* ------------------------------------------------------------ 4 */

static void api_shows_states_not_secrets(void **state)
{
	(void)state;
	long status = 0;
	char *text = NULL;
	json_t *j, *list;

	/* states and paging */
	list = notifications("?status=failed");
	assert_int_equal(json_array_size(list), 2 * NCHAN);    /* n-old, n-bad */
	json_decref(list);
	j = ts_api_get(&S, "/api/notifications?limit=3");
	assert_int_equal(json_array_size(json_object_get(j, "notifications")), 3);
	json_int_t next = json_integer_value(json_object_get(j, "next_before"));
	assert_true(next > 0);
	json_decref(j);
	char path[128];
	snprintf(path, sizeof(path), "/api/notifications?limit=1000&before=%lld", (long long)next);
	j = ts_api_get(&S, path);
	assert_int_equal((long long)json_array_size(json_object_get(j, "notifications")),
			 (long long)((nmade + 2) * NCHAN - 3));
	assert_true(json_is_null(json_object_get(j, "next_before")));
	json_decref(j);
	j = ts_api(&S, "GET", "/api/notifications?status=sent", NULL, &status);
	assert_int_equal(status, 400);
	json_decref(j);

	/* channels: kinds and redacted urls, no secret */
	snprintf(path, sizeof(path), "%s/api/alerts/channels", S.api);
	assert_int_equal(tl_http("GET", path, (const char *const[]){ S.auth, NULL }, NULL, &text,
				 &status), 0);
	assert_int_equal(status, 200);
	assert_non_null(text);
	printf("channels: %s", text);
	assert_null(strstr(text, SECRET));
	assert_null(strstr(text, "slacksecretpath42"));
	assert_null(strstr(text, "tgsecrettoken"));
	assert_null(strstr(text, TG_CHAT));
	assert_null(strstr(text, MAIL_PASS));
	j = json_loads(text, 0, NULL);
	free(text);
	list = json_object_get(j, "channels");
	assert_int_equal(json_array_size(list), NCHAN);
	char want[64];
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/…", sink_http_port(K));
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "url")),
			    want);
	assert_true(json_is_true(json_object_get(json_array_get(list, 0), "signed")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "kind")),
			    "telegram");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 3), "kind")),
			    "email");
	snprintf(want, sizeof(want), "smtp://127.0.0.1:%d", sink_smtp_port(K));
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 3),
							      "smtp_url")), want);
	json_decref(j);

	/* the counters: everything delivered since the restart, nothing waits */
	snprintf(path, sizeof(path), "%s/metrics", S.api);
	assert_int_equal(tl_http("GET", path, (const char *const[]){ S.auth, NULL }, NULL, &text,
				 &status), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(text, "\npowerhive_notifications_pending 0\n"));
	assert_non_null(strstr(text, "\npowerhive_notifications_delivered_total "));
	assert_null(strstr(text, "\npowerhive_notifications_delivered_total 0\n"));
	free(text);

	/* nor in the log */
	struct ts_proc *p = ts_find(&S, "apid");
	char *log = tl_read_file(p->log);
	assert_non_null(log);
	assert_null(strstr(log, SECRET));
	assert_null(strstr(log, "slacksecretpath42"));
	assert_null(strstr(log, "tgsecrettoken"));
	assert_null(strstr(log, MAIL_PASS));
	assert_non_null(strstr(log, "notification delivered channel=hook"));
	free(log);
	passed++;
}

/* ------------------------------------------------------------ reload */

static bool on_new_path(void *arg)
{
	(void)arg;
	for (int i = 0; i < sink_count(K); i++)
		if (strcmp(sink_path(K, i), SLACK_PATH2) == 0)
			return true;
	return false;
}

/* SIGHUP with the Slack hook rotated: the next notification goes to the
 * new URL, none is lost, the old one is not used again. */
static void reload_takes_new_channels(void **state)
{
	(void)state;
	struct ts_proc *p = ts_find(&S, "apid");
	int before = sink_count(K);

	assert_int_equal(channels(SLACK_PATH2), 0);
	assert_int_equal(ts_write_config(&S), 0);
	assert_int_equal(kill(p->pid, SIGHUP), 0);
	assert_int_equal(tl_wait_log(p->pid, p->log, "reloaded config=", 10000), 0);
	make("n-8");
	assert_int_equal(tl_wait_until(15000, all_arrived, NULL), 0);
	assert_true(on_new_path(NULL));
	for (int i = before; i < sink_count(K); i++)
		assert_string_not_equal(sink_path(K, i), SLACK_PATH);
	assert_all_in_order();

	char *log = tl_read_file(p->log);
	assert_non_null(log);
	assert_null(strstr(log, "rotatedsecret77"));
	free(log);
	passed++;
}

/* ------------------------------------------------------------ 5 */

/* The miners of the webhook's miner_offline notifications in state want
 * from request from on, added up; *n (may be NULL) how many there were. */
static int offline_miners(int from, const char *want, int *n)
{
	int sum = 0, k = 0;

	for (int i = from; i < sink_count(K); i++) {
		json_t *b = sink_body(K, i);
		const char *rule = json_string_value(json_object_get(b, "rule"));
		const char *st = json_string_value(json_object_get(b, "state"));

		if (chan_of_path(sink_path(K, i)) == 0 && rule && st &&
		    strcmp(rule, "miner_offline") == 0 && strcmp(st, want) == 0) {
			assert_true(sink_verified(K, i));
			sum += (int)json_integer_value(json_object_get(b, "count"));
			k++;
		}
	}
	if (n)
		*n = k;
	return sum;
}

static bool all_firing(void *arg)
{
	return offline_miners(*(int *)arg, "firing", NULL) >= OFFLINE;
}

static bool all_resolved(void *arg)
{
	return offline_miners(*(int *)arg, "resolved", NULL) >= OFFLINE;
}

static void real_alerts_are_delivered(void **state)
{
	(void)state;
	int from = sink_count(K), mails = sink_mail_count(K);

	assert_int_equal(ts_minersim(&S, SUBNET, MINERS, NULL), 0);
	assert_int_equal(ts_merge(&S, "{\"intervals\": {\"status_seconds\": 1},"
				  " \"alerts\": {\"evaluate_seconds\": 1, \"group_seconds\": 2, \"resolve_seconds\": 2,"
				  " \"rules\": {\"miner_offline\": {\"for_seconds\": 2}}}}"), 0);
	assert_int_equal(ts_stop(&S, "apid", SIGTERM, 10000) >= 0, 1);
	assert_non_null(ts_start(&S, "apid", NULL, NULL, NULL));
	assert_non_null(ts_start(&S, "discoverd", NULL, NULL, NULL));
	assert_non_null(ts_start(&S, "pollerd", NULL, NULL, NULL));
	assert_int_equal(ts_wait_miners(&S, MINERS, 30000), 0);

	json_t *miners = ts_sim_get(&S, S.admin, "/sim/miners");
	assert_non_null(miners);
	json_t *arr = json_is_array(miners) ? miners : json_object_get(miners, "miners");
	char body[512];
	int64_t t0 = hive_mono_ms();
	for (int i = 0; i < OFFLINE; i++) {
		const char *mac = json_string_value(json_object_get(json_array_get(arr, i), "mac"));

		snprintf(body, sizeof(body), "{\"target\": \"%s\", \"kind\": \"offline\"}", mac);
		assert_int_equal(ts_sim_post(&S, S.admin, "/sim/fault", body), 200);
	}
	json_decref(miners);
	assert_int_equal(tl_wait_until(45000, all_firing, &from), 0);
	printf("figure: notify: %d miners offline -> webhook notified in %lld ms\n", OFFLINE,
	       (long long)(hive_mono_ms() - t0));
	/* Grouped (one notification for the lot is test_alerts's to judge;
	 * here: each miner notified once, signed, on every channel). */
	tl_sleep_ms(2 * 1000 + 500);
	int nfiring;
	assert_int_equal(offline_miners(from, "firing", &nfiring), OFFLINE);
	printf("figure: notify: %d miners offline -> %d firing notification(s)\n", OFFLINE,
	       nfiring);
	assert_true(sink_wait_mail(K, mails + nfiring, 10000));
	assert_non_null(strstr(sink_mail(K, mails), "Subject: [PowerHive] FIRING miner_offline ("));
	bool chat = false;
	for (int i = from; i < sink_count(K); i++) {
		const char *text = json_string_value(json_object_get(sink_body(K, i), "text"));

		if (chan_of_path(sink_path(K, i)) == 1 && text &&
		    strstr(text, "[FIRING] miner_offline"))
			chat = true;
	}
	assert_true(chat);

	/* back online: resolved */
	from = sink_count(K);
	t0 = hive_mono_ms();
	assert_int_equal(ts_sim_post(&S, S.admin, "/sim/reset", "{}"), 200);
	assert_int_equal(tl_wait_until(45000, all_resolved, &from), 0);
	printf("figure: notify: back online -> resolved notified in %lld ms\n",
	       (long long)(hive_mono_ms() - t0));
	for (int i = from; i < sink_count(K); i++) {
		json_t *b = sink_body(K, i);
		const char *st = json_string_value(json_object_get(b, "state"));

		if (chan_of_path(sink_path(K, i)) == 0 && st && strcmp(st, "resolved") == 0)
			assert_true(json_is_integer(json_object_get(b, "ended")));
	}
	passed++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delivered_signed_and_rendered),
		cmocka_unit_test(receiver_down_then_all_in_order),
		cmocka_unit_test(restart_delivers_pending),
		cmocka_unit_test(api_shows_states_not_secrets),
		cmocka_unit_test(reload_takes_new_channels),
		cmocka_unit_test(real_alerts_are_delivered),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
