/* test_apid_parts — apid's bus-facing parts wired as in apid.c, over real
 * TCP sockets on loopback: the receive thread and its counters (sequence
 * gaps, malformed envelopes, heartbeats), the feed, the control socket,
 * health/metrics (checked with promtool when it is installed) and the
 * fleet totals of health (known values, and the cost at 10,000 miners). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../apid/apid.h"
#include "../../apid/auth.h"
#include "../../apid/control.h"
#include "../../apid/core.h"
#include "../../apid/feed.h"
#include "../../apid/guard.h"
#include "../../apid/health.h"
#include "../../apid/metrics.h"
#include "../../apid/ingest.h"
#include "../../apid/traffic.h"
#include "../../apid/sched.h"
#include "../../apid/writer.h"
#include "hive/bus.h"
#include "hive/cfg.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/mac.h"
#include "hive/msg.h"
#include "../lib/testlib.h"

struct fx {
	char *dir;
	struct apid *a;
	char url_events[64], url_control[64], url_feed[64], url_discovery_control[64];
	struct hive_bus *pub, *feed_sub, *req, *req_worker;
};

static struct hive_bus *bus(enum hive_bus_role role, const char *url, bool listen,
			    const char *src)
{
	struct hive_bus_opts o = { .listen = listen, .sendbuf = 8192, .recvbuf = 8192,
				   .send_timeout_ms = 2000, .recv_timeout_ms = 2000,
				   .source = src, .boot = 42 };
	char err[256];
	struct hive_bus *b = hive_bus_open(role, url, &o, err, sizeof(err));

	if (!b)
		fail_msg("bus %s: %s", url, err);
	return b;
}

static bool peers(void *arg)
{
	struct fx *f = arg;

	return hive_bus_peers(f->pub) > 0 && hive_bus_peers(f->feed_sub) > 0 &&
	       hive_bus_peers(f->a->feed_bus) > 0 && hive_bus_peers(f->req) > 0 &&
	       hive_bus_peers(f->req_worker) > 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct apid *a = calloc(1, sizeof(*a));
	struct apid_writer_opts wo = { .batch_max = 100, .batch_ms = 20, .queue_max = 4096,
				       .status_days = 30, .telemetry_days = 7, .audit_days = 365,
				       .prune_batch = 100, .prune_every_ms = 60000 };
	struct apid_sched_opts so = { .interval_ms = { 15000, 60000 }, .job_timeout_ms = 30000,
				      .port = 80 };
	char err[512], url[64];

	f->a = a;
	f->dir = tl_tmpdir("parts");
	hive_cfg_defaults(&a->d.cfg);
	snprintf(a->d.source, sizeof(a->d.source), "apid/test/1");
	snprintf(a->db_path, sizeof(a->db_path), "%s/ph.db", f->dir);
	a->started_ms = hive_wall_ms();
	a->traffic = apid_traffic_new();
	a->ingest = apid_ingest_new(a->traffic);
	a->health = apid_health_new(a->db_path);
	assert_non_null(a->health);
	wo.db_path = a->db_path;
	wo.traffic = a->traffic;
	a->writer = apid_writer_start(&wo, err, sizeof(err));
	assert_non_null(a->writer);

	snprintf(f->url_events, sizeof(f->url_events), "tcp://127.0.0.1:%d", tl_free_port());
	snprintf(f->url_control, sizeof(f->url_control), "tcp://127.0.0.1:%d", tl_free_port());
	snprintf(f->url_feed, sizeof(f->url_feed), "tcp://127.0.0.1:%d", tl_free_port());
	a->events = bus(HIVE_BUS_SUBSCRIBE, f->url_events, true, a->d.source);
	a->control_bus = bus(HIVE_BUS_REPLY, f->url_control, true, a->d.source);
	snprintf(f->url_discovery_control, sizeof(f->url_discovery_control), "tcp://127.0.0.1:%d",
		 tl_free_port());
	assert_int_equal(hive_bus_listen_also(a->control_bus, f->url_discovery_control,
					      &(struct hive_bus_opts){ .listen = true }, err,
					      sizeof(err)), APID_ENDPOINT_DISCOVERY);
	a->feed_bus = bus(HIVE_BUS_PUBLISH, f->url_feed, true, a->d.source);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tl_free_port());
	a->jobs_status = bus(HIVE_BUS_PUSH, url, true, a->d.source);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tl_free_port());
	a->jobs_telemetry = bus(HIVE_BUS_PUSH, url, true, a->d.source);
	a->sched = apid_sched_new(&so, a->jobs_status, a->jobs_telemetry);
	a->feed = apid_feed_start(a->db_path, a->feed_bus, err, sizeof(err));
	assert_non_null(a->feed);
	apid_writer_attach(a->writer, a->sched, a->feed);
	assert_int_equal(apid_ingest_start(a->ingest, a->events, a->writer, err, sizeof(err)), 0);
	a->control = apid_control_start(a, a->control_bus, err, sizeof(err));
	assert_non_null(a->control);

	f->pub = bus(HIVE_BUS_PUBLISH, f->url_events, false, "pollerd/test/7");
	f->feed_sub = bus(HIVE_BUS_SUBSCRIBE, f->url_feed, false, "test/feed/1");
	assert_int_equal(hive_bus_subscribe(f->feed_sub, "hive.feed."), 0);
	f->req = bus(HIVE_BUS_REQUEST, f->url_discovery_control, false, "discoverd/test/3");
	f->req_worker = bus(HIVE_BUS_REQUEST, f->url_control, false, "pollerd/test/8");
	assert_int_equal(tl_wait_until(3000, peers, f), 0);
	usleep(100 * 1000);   /* let the subscriptions settle on both ends */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct apid *a = f->a;

	hive_bus_close(f->pub);
	hive_bus_close(f->feed_sub);
	hive_bus_close(f->req);
	hive_bus_close(f->req_worker);
	apid_ingest_stop(a->ingest);
	apid_control_stop(a->control);
	apid_writer_stop(a->writer);
	apid_feed_stop(a->feed);
	apid_sched_free(a->sched);
	apid_health_free(a->health);
	hive_bus_close(a->events);
	hive_bus_close(a->control_bus);
	hive_bus_close(a->feed_bus);
	hive_bus_close(a->jobs_status);
	hive_bus_close(a->jobs_telemetry);
	apid_ingest_free(a->ingest);
	apid_traffic_free(a->traffic);
	hive_cfg_free(&a->d.cfg);
	free(a);
	tl_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void publish(struct fx *f, const char *topic, const char *body)
{
	json_t *b = json_loads(body, 0, NULL);

	assert_non_null(b);
	assert_int_equal(hive_bus_send(f->pub, topic, b, false), HIVE_BUS_OK);
	json_decref(b);
}

/* An envelope with the seq we choose, to make gaps. */
static void publish_seq(struct fx *f, const char *src, const char *topic,
			unsigned long long seq, const char *body)
{
	json_t *b = json_loads(body, 0, NULL);
	char *buf;
	size_t len;

	assert_int_equal(hive_envelope_encode(topic, src, 7, seq, hive_wall_ms(), b, &buf, &len), 0);
	assert_int_equal(hive_bus_send_raw(f->pub, buf, len, false), HIVE_BUS_OK);
	free(buf);
	json_decref(b);
}

/* An envelope stamped ts (the sender's clock), from a source of its own. */
static void publish_at(struct fx *f, const char *src, const char *topic, long long ts,
		       const char *body)
{
	json_t *b = json_loads(body, 0, NULL);
	char *buf;
	size_t len;

	assert_non_null(b);
	assert_int_equal(hive_envelope_encode(topic, src, 7, 1, ts, b, &buf, &len), 0);
	assert_int_equal(hive_bus_send_raw(f->pub, buf, len, false), HIVE_BUS_OK);
	free(buf);
	json_decref(b);
}

struct want {
	struct fx *f;
	const char *path[3];
	long long value;
};

/* health[path...] == value */
static bool health_is(void *arg)
{
	struct want *w = arg;
	json_t *h = apid_health(w->f->a), *v = h;
	bool ok;

	for (int i = 0; i < 3 && w->path[i]; i++)
		v = json_object_get(v, w->path[i]);
	ok = json_integer_value(v) == w->value;
	json_decref(h);
	return ok;
}

static void wait_health(struct fx *f, const char *p0, const char *p1, long long value)
{
	struct want w = { f, { p0, p1, NULL }, value };

	if (tl_wait_until(5000, health_is, &w) < 0) {
		json_t *h = apid_health(f->a);
		char *s = json_dumps(h, JSON_INDENT(1));

		fail_msg("health %s.%s != %lld:\n%s", p0, p1 ? p1 : "", value, s);
	}
}

static json_t *source(json_t *h, const char *src)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(h, "events"), "sources"), i, s)
		if (strcmp(json_string_value(json_object_get(s, "src")), src) == 0)
			return s;
	return NULL;
}

/* Sequence gaps become lost events of their source; malformed envelopes
 * are counted by reason; heartbeats show in the daemons list. */
static void test_counts(void **state)
{
	struct fx *f = *state;
	const char *seen = "{\"mac\":\"aa:bb:cc:00:00:01\",\"ip\":\"127.0.0.1\"}";
	json_t *h, *s, *d;

	publish_seq(f, "discoverd/x/9", HIVE_TOPIC_MINER_SEEN, 1, seen);
	publish_seq(f, "discoverd/x/9", HIVE_TOPIC_MINER_SEEN, 2, seen);
	publish_seq(f, "discoverd/x/9", HIVE_TOPIC_MINER_SEEN, 3, seen);
	publish_seq(f, "discoverd/x/9", HIVE_TOPIC_MINER_SEEN, 7, seen);   /* 4..6 lost */
	publish_seq(f, "discoverd/x/9", HIVE_TOPIC_MINER_SEEN, 8, seen);
	assert_int_equal(hive_bus_send_raw(f->pub, "hive.x\0{not json", 16, false), HIVE_BUS_OK);
	publish(f, HIVE_TOPIC_HEARTBEAT, "{\"daemon\":\"pollerd\",\"host\":\"test\",\"pid\":7,"
		"\"started\":1,\"counters\":{\"jobs_done\":12,\"http_errors\":1},\"in_flight\":3,"
		"\"latency_ms\":4.5}");
	wait_health(f, "events", "stored", 6);
	h = apid_health(f->a);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "events"), "lost")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "events"),
							    "malformed")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
				 json_object_get(h, "events"), "rejected_by"),
				 "malformed envelope: not_json")), 1);
	s = source(h, "discoverd/x/9");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "received")), 5);
	assert_int_equal(json_integer_value(json_object_get(s, "stored")), 5);
	assert_int_equal(json_integer_value(json_object_get(s, "lost")), 3);
	s = source(h, "pollerd/test/7");
	assert_int_equal(json_integer_value(json_object_get(s, "received")), 1);
	d = json_array_get(json_object_get(h, "daemons"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "daemon")), "pollerd");
	assert_string_equal(json_string_value(json_object_get(d, "src")), "pollerd/test/7");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "counters"),
							    "jobs_done")), 12);
	assert_true(json_integer_value(json_object_get(d, "heartbeat_age_ms")) < 5000);
	json_decref(h);
}

/* Receives the next feed message of topic (skipping others). */
static json_t *feed_next(struct fx *f, const char *topic)
{
	for (int i = 0; i < 20; i++) {
		struct hive_envelope env = { 0 };
		json_t *b;

		if (hive_bus_recv(f->feed_sub, &env, 3000) != HIVE_BUS_OK)
			break;
		if (strcmp(env.topic, topic) == 0) {
			b = json_incref(env.body);
			hive_envelope_clear(&env);
			return b;
		}
		hive_envelope_clear(&env);
	}
	fail_msg("no %s on the feed", topic);
	return NULL;
}

/* What was stored comes out on the feed, secrets as flags only. */
static void test_feed(void **state)
{
	struct fx *f = *state;
	json_t *m;
	char *s;

	publish(f, HIVE_TOPIC_MINER_SEEN, "{\"mac\":\"aa:bb:cc:00:00:02\",\"ip\":\"127.0.0.2\","
		"\"subnet\":\"127.0.0.0/24\",\"model\":\"s19\"}");
	m = feed_next(f, HIVE_TOPIC_FEED_MINER);
	assert_string_equal(json_string_value(json_object_get(m, "mac")), "aa:bb:cc:00:00:02");
	assert_string_equal(json_string_value(json_object_get(m, "ip")), "127.0.0.2");
	assert_true(json_is_true(json_object_get(m, "online")));
	assert_true(json_is_false(json_object_get(m, "has_api_key")));
	json_decref(m);

	publish(f, HIVE_TOPIC_MINER_KEY, "{\"mac\":\"aa:bb:cc:00:00:02\",\"api_key\":\"topsecret-1\"}");
	m = feed_next(f, HIVE_TOPIC_FEED_MINER);
	assert_true(json_is_true(json_object_get(m, "has_api_key")));
	s = json_dumps(m, 0);
	assert_null(strstr(s, "topsecret-1"));
	free(s);
	json_decref(m);

	publish(f, HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:00:00:02\",\"state\":\"mining\","
		"\"power_w\":3000}");
	m = feed_next(f, HIVE_TOPIC_FEED_STATUS);
	assert_string_equal(json_string_value(json_object_get(m, "mac")), "aa:bb:cc:00:00:02");
	assert_true(json_integer_value(json_object_get(m, "id")) > 0);
	assert_true(json_integer_value(json_object_get(m, "ts_ms")) > 0);
	assert_int_equal(json_integer_value(json_object_get(m, "power_w")), 3000);
	json_decref(m);

	publish(f, HIVE_TOPIC_MODEL_CATALOGUE, "{\"model\":\"s19\",\"full_name\":\"Antminer S19\","
		"\"presets\":[{\"name\":\"2620\",\"watts\":2620,\"th\":95.5}]}");
	m = feed_next(f, HIVE_TOPIC_FEED_MODEL);
	assert_string_equal(json_string_value(json_object_get(m, "alias")), "s19");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(m, "presets"), 0), "name")), "2620");
	json_decref(m);
}

static json_t *ask_on(struct hive_bus *req, const char *topic, const char *body,
		      char *reply_topic)
{
	struct hive_envelope env = { 0 };
	json_t *b = json_loads(body, 0, NULL), *r;

	assert_int_equal(hive_bus_request(req, topic, b, &env, 3000), HIVE_BUS_OK);
	json_decref(b);
	strcpy(reply_topic, env.topic);
	r = json_incref(env.body);
	hive_envelope_clear(&env);
	return r;
}

/* On discoverd's endpoint, bus.discovery_control. */
static json_t *ask(struct fx *f, const char *topic, const char *body, char *reply_topic)
{
	return ask_on(f->req, topic, body, reply_topic);
}

static void test_control(void **state)
{
	struct fx *f = *state;
	char topic[HIVE_TOPIC_MAX];
	char err[256];
	int http;
	json_t *r;

	publish(f, HIVE_TOPIC_MINER_SEEN, "{\"mac\":\"aa:bb:cc:00:00:03\",\"ip\":\"127.0.0.3\"}");
	publish(f, HIVE_TOPIC_MINER_KEY, "{\"mac\":\"aa:bb:cc:00:00:03\",\"api_key\":\"key-3\"}");
	wait_health(f, "events", "stored", 2);
	assert_int_equal(apid_patch_miner(f->a, "aa:bb:cc:00:00:03", -1, "pass-3", "test", &http,
					  err, sizeof(err)), 0);

	r = ask(f, HIVE_TOPIC_CTL_CREDENTIALS, "{\"mac\":\"AA:BB:CC:00:00:03\"}", topic);
	assert_string_equal(topic, HIVE_TOPIC_CTL_CREDENTIALS);
	assert_string_equal(json_string_value(json_object_get(r, "mac")), "aa:bb:cc:00:00:03");
	assert_true(json_is_true(json_object_get(r, "known")));
	assert_string_equal(json_string_value(json_object_get(r, "api_key")), "key-3");
	assert_string_equal(json_string_value(json_object_get(r, "unlock_pass")), "pass-3");
	json_decref(r);

	/* Not on bus.control, where the workers are: an error, no secret. */
	r = ask_on(f->req_worker, HIVE_TOPIC_CTL_CREDENTIALS, "{\"mac\":\"aa:bb:cc:00:00:03\"}",
		   topic);
	assert_string_equal(topic, HIVE_TOPIC_CTL_ERROR);
	assert_null(json_object_get(r, "api_key"));
	assert_null(json_object_get(r, "unlock_pass"));
	json_decref(r);

	r = ask(f, HIVE_TOPIC_CTL_CREDENTIALS, "{\"mac\":\"aa:bb:cc:00:00:99\"}", topic);
	assert_true(json_is_false(json_object_get(r, "known")));
	assert_null(json_object_get(r, "api_key"));      /* absent: none stored */
	assert_null(json_object_get(r, "unlock_pass"));
	json_decref(r);

	r = ask(f, HIVE_TOPIC_CTL_CREDENTIALS, "{\"mac\":\"bogus\"}", topic);
	assert_string_equal(topic, HIVE_TOPIC_CTL_ERROR);
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "mac"));
	json_decref(r);

	r = ask(f, "hive.control.dance", "{}", topic);
	assert_string_equal(topic, HIVE_TOPIC_CTL_ERROR);
	json_decref(r);

	r = ask_on(f->req_worker, HIVE_TOPIC_CTL_HEALTH, "{}", topic);  /* anyone's */
	assert_string_equal(topic, HIVE_TOPIC_CTL_HEALTH);
	assert_true(json_integer_value(json_object_get(json_object_get(r, "events"), "stored")) >= 2);
	assert_true(json_integer_value(json_object_get(json_object_get(r, "control"), "requests")) >= 4);
	json_decref(r);
}

/* promtool finds nothing to say about the metrics text m. */
static void promtool_check(struct fx *f, const char *m)
{
	char path[1100], cmd[1300];

	snprintf(path, sizeof(path), "%s/metrics.txt", f->dir);
	assert_int_equal(tl_write_file(path, m), 0);
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
		if (system(cmd) != 0)
			fail_msg("promtool check metrics failed on:\n%s", m);
	} else {
		print_message("promtool not installed: metrics text not linted\n");
	}
}

/* /metrics text passes promtool's checks and carries the figures. */
static void test_metrics(void **state)
{
	struct fx *f = *state;
	char *m;

	publish(f, HIVE_TOPIC_MINER_SEEN, "{\"mac\":\"aa:bb:cc:00:00:04\",\"ip\":\"127.0.0.4\","
		"\"subnet\":\"127.0.0.0/24\",\"hostname\":\"rig \\\"7\\\"\\\\x\"}");
	publish(f, HIVE_TOPIC_SWEEP_DONE, "{\"subnet\":\"127.0.0.0/24\",\"macs\":[],\"started\":1,"
		"\"duration_ms\":1500,\"probed\":254,\"answered\":0,\"miners\":0}");
	publish(f, HIVE_TOPIC_HEARTBEAT, "{\"daemon\":\"pollerd\",\"host\":\"h \\\"q\\\"\","
		"\"counters\":{\"jobs\":1}}");
	publish(f, HIVE_TOPIC_STATUS_RESULT, "{\"mac\":\"aa:bb:cc:00:00:77\"}");   /* unknown */
	wait_health(f, "events", "rejected", 1);
	wait_health(f, "events", "stored", 3);
	m = apid_metrics(f->a);
	assert_non_null(m);
	assert_non_null(strstr(m, "powerhive_events_received_total{source=\"pollerd/test/7\"} 4\n"));
	assert_non_null(strstr(m, "powerhive_events_rejected_reason_total{reason=\"unknown miner\"} 1\n"));
	assert_non_null(strstr(m, "powerhive_sweep_duration_seconds{subnet=\"127.0.0.0/24\"} 1.5\n"));
	assert_non_null(strstr(m, "powerhive_daemon_value{source=\"pollerd/test/7\",name=\"jobs\"} 1\n"));
	assert_non_null(strstr(m, "powerhive_jobs_sent_total{queue=\"status\"} 0\n"));
	assert_non_null(strstr(m, "powerhive_workers_connected{queue=\"telemetry\"} 0\n"));
	/* A hostname's quotes and backslash, escaped; no model yet: ""; the
	 * sweep that found nobody took the miner offline. */
	assert_non_null(strstr(m, "\npowerhive_miner_info{mac=\"aa:bb:cc:00:00:04\",model=\"\","
			       "ip=\"127.0.0.4\",hostname=\"rig \\\"7\\\"\\\\x\"} 1\n"));
	assert_non_null(strstr(m, "\npowerhive_miner_state{mac=\"aa:bb:cc:00:00:04\",model=\"\","
			       "state=\"offline\"} 1\n"));
	promtool_check(f, m);
	apid_metrics_free(m);
}

/* ------------------------------------------------------------ fleet totals */

static json_int_t fleet_int(json_t *h, const char *key)
{
	json_t *v = json_object_get(json_object_get(h, "fleet"), key);

	if (!json_is_integer(v))
		fail_msg("fleet.%s is not an integer", key);
	return json_integer_value(v);
}

static double fleet_num(json_t *h, const char *key)
{
	json_t *v = json_object_get(json_object_get(h, "fleet"), key);

	if (!json_is_number(v))
		fail_msg("fleet.%s is not a number", key);
	return json_number_value(v);
}

/* Spaced publishing: the envelope ts orders an error against a status. */
static void publish_then_wait(struct fx *f, const char *topic, const char *body)
{
	publish(f, topic, body);
	usleep(5000);
}

static void seen_at(struct fx *f, int n)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"mac\":\"aa:bb:cc:00:01:%02d\",\"ip\":\"127.0.1.%d\","
		 "\"subnet\":\"127.0.1.0/24\",\"model\":\"s19\"}", n, n);
	publish_then_wait(f, HIVE_TOPIC_MINER_SEEN, body);
}

static void status_of(struct fx *f, int n, const char *state, double hr, int power,
		      const char *metered)
{
	char body[300];

	snprintf(body, sizeof(body), "{\"mac\":\"aa:bb:cc:00:01:%02d\",\"state\":\"%s\","
		 "\"hr_realtime_ghs\":%.2f,\"power_w\":%d%s%s}", n, state, hr, power,
		 metered ? ",\"power_metered\":" : "", metered ? metered : "");
	publish_then_wait(f, HIVE_TOPIC_STATUS_RESULT, body);
}

static void error_of(struct fx *f, int n, const char *op)
{
	char body[200];

	snprintf(body, sizeof(body), "{\"mac\":\"aa:bb:cc:00:01:%02d\",\"op\":\"%s\","
		 "\"kind\":\"timeout\",\"message\":\"no answer\"}", n, op);
	publish_then_wait(f, HIVE_TOPIC_MINER_ERROR, body);
}

/*
 * Seven miners, each a case of the definitions (docs/apid.md):
 *   01 mining, 100000.5 GH/s, 3000 W metered, managed
 *   02 mining, 50000.25 GH/s, 2000 W estimated
 *   03 state failure, 0 GH/s, 100 W (metering not said: counted metered)
 *   04 mining, 1000 GH/s, 500 W metered, then an error: errors
 *   05 an error, then a status (auto-tuning, 10 GH/s, 10 W estimated): no error
 *   06 a status (7777 GH/s, 999 W), then left out of the sweep: offline
 *   07 an error and never a status: errors
 */
static void test_fleet(void **state)
{
	struct fx *f = *state;
	char err[256], *m;
	const char *p;
	struct apid *b;
	int http;
	json_t *h;

	/* Before any miner: zeros, not null. */
	h = apid_health(f->a);
	assert_true(json_is_object(json_object_get(h, "fleet")));
	assert_int_equal(fleet_int(h, "miners"), 0);
	assert_true(fleet_num(h, "hashrate_ghs") == 0);
	json_decref(h);

	for (int n = 1; n <= 7; n++)
		seen_at(f, n);
	status_of(f, 1, "mining", 100000.5, 3000, "true");
	status_of(f, 2, "mining", 50000.25, 2000, "false");
	status_of(f, 3, "failure", 0, 100, NULL);
	status_of(f, 4, "mining", 1000, 500, "true");
	error_of(f, 4, "status");
	error_of(f, 5, "telemetry");
	status_of(f, 5, "auto-tuning", 10, 10, "false");
	status_of(f, 6, "mining", 7777, 999, "true");
	error_of(f, 7, "discover");
	/* A sweep that does not list 6 takes it offline only when its status
	 * is older than two status intervals: this one comes 10 min later. */
	{
		char body[400];
		long long later = hive_wall_ms() + 600000;

		snprintf(body, sizeof(body), "{\"subnet\":\"127.0.1.0/24\",\"macs\":["
			 "\"aa:bb:cc:00:01:01\",\"aa:bb:cc:00:01:02\",\"aa:bb:cc:00:01:03\","
			 "\"aa:bb:cc:00:01:04\",\"aa:bb:cc:00:01:05\",\"aa:bb:cc:00:01:07\"],"
			 "\"started\":%lld,\"duration_ms\":10,\"probed\":254,\"answered\":6,"
			 "\"miners\":6}", later - 10);
		publish_at(f, "discoverd/test/8", HIVE_TOPIC_SWEEP_DONE, later, body);
	}
	wait_health(f, "events", "stored", 17);
	assert_int_equal(apid_patch_miner(f->a, "aa:bb:cc:00:01:01", 1, NULL, "test", &http, err,
					  sizeof(err)), 0);
	/* Figures are cached for up to a second. */
	wait_health(f, "fleet", "managed", 1);
	h = apid_health(f->a);
	assert_int_equal(fleet_int(h, "miners"), 7);
	assert_int_equal(fleet_int(h, "online"), 6);
	assert_int_equal(fleet_int(h, "mining"), 3);
	assert_true(fabs(fleet_num(h, "hashrate_ghs") - 151010.75) < 1e-6);
	assert_int_equal(fleet_int(h, "power_w"), 5610);
	assert_int_equal(fleet_int(h, "power_estimated_w"), 2010);
	assert_int_equal(fleet_int(h, "errors"), 2);
	assert_int_equal(fleet_int(h, "failure"), 1);
	assert_int_equal(fleet_int(h, "managed"), 1);
	assert_true(fleet_int(h, "ts_ms") > 0);
	assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
	json_decref(h);

	m = apid_metrics(f->a);
	assert_non_null(m);
	assert_non_null(strstr(m, "\npowerhive_fleet_miners 7\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_online 6\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_mining 3\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_hashrate_ghs 151010.75\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_power_watts 5610\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_power_estimated_watts 2010\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_errors 2\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_failure 1\n"));
	assert_non_null(strstr(m, "\npowerhive_fleet_managed 1\n"));
	/* The same cases per miner: status figures for online miners only,
	 * the state of an offline miner and of one without a status, a last
	 * error while newer than the status. */
#define MINER(n) "{mac=\"aa:bb:cc:00:01:0" #n "\",model=\"s19\""
	{
		static const char *const has[] = {
			"powerhive_miner_info" MINER(1) ",ip=\"127.0.1.1\",hostname=\"\"} 1",
			"powerhive_miner_info" MINER(6) ",ip=\"127.0.1.6\",hostname=\"\"} 1",
			"powerhive_miner_managed" MINER(1) "} 1",
			"powerhive_miner_managed" MINER(2) "} 0",
			"powerhive_miner_online" MINER(6) "} 0",
			"powerhive_miner_online" MINER(7) "} 1",
			"powerhive_miner_hashrate_ghs" MINER(1) "} 100000.5",
			"powerhive_miner_hashrate_ghs" MINER(2) "} 50000.25",
			"powerhive_miner_power_watts" MINER(1) "} 3000",
			"powerhive_miner_power_measured" MINER(1) "} 1",
			"powerhive_miner_power_measured" MINER(2) "} 0",
			"powerhive_miner_state" MINER(1) ",state=\"mining\"} 1",
			"powerhive_miner_state" MINER(3) ",state=\"failure\"} 1",
			"powerhive_miner_state" MINER(5) ",state=\"auto-tuning\"} 1",
			"powerhive_miner_state" MINER(6) ",state=\"offline\"} 1",
			"powerhive_miner_state" MINER(7) ",state=\"unknown\"} 1",
			"powerhive_miner_last_error" MINER(4) ",kind=\"timeout\"} 1",
			"powerhive_miner_last_error" MINER(7) ",kind=\"timeout\"} 1",
		};
		static const char *const hasnt[] = {
			"powerhive_miner_hashrate_ghs" MINER(6) "}",
			"powerhive_miner_power_watts" MINER(7) "}",
			"powerhive_miner_power_measured" MINER(3) "}",
			"powerhive_miner_last_error" MINER(5) "}",
		};
		char line[200];

		for (size_t i = 0; i < sizeof(has) / sizeof(has[0]); i++) {
			snprintf(line, sizeof(line), "\n%s\n", has[i]);
			if (!strstr(m, line))
				fail_msg("no line %s in:\n%s", has[i], m);
		}
		for (size_t i = 0; i < sizeof(hasnt) / sizeof(hasnt[0]); i++)
			if (strstr(m, hasnt[i]))
				fail_msg("a line %s... in:\n%s", hasnt[i], m);
	}
#undef MINER
	promtool_check(f, m);
	apid_metrics_free(m);

	/* A newer status clears 04's error from the count; 03 recovers. */
	status_of(f, 4, "mining", 1000, 500, "true");
	status_of(f, 3, "mining", 20000, 1500, NULL);
	wait_health(f, "fleet", "errors", 1);
	wait_health(f, "fleet", "failure", 0);
	wait_health(f, "fleet", "mining", 4);   /* 05 is auto-tuning */

	/* A database health cannot read: fleet null, said in problems, no
	 * fleet metrics; then the real one again. */
	b = malloc(sizeof(*b));
	assert_non_null(b);
	memcpy(b, f->a, sizeof(*b));
	snprintf(b->db_path, sizeof(b->db_path), "%s/missing/ph.db", f->dir);
	b->health = apid_health_new(b->db_path);
	assert_non_null(b->health);
	h = apid_health(b);
	assert_true(json_is_null(json_object_get(h, "fleet")));
	assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
	p = json_string_value(json_array_get(json_object_get(h, "problems"), 0));
	assert_non_null(p);
	assert_non_null(strstr(p, "fleet totals unavailable: "));
	assert_non_null(strstr(p, "missing/ph.db"));
	json_decref(h);
	m = apid_metrics(b);
	assert_non_null(m);
	assert_null(strstr(m, "powerhive_fleet_"));
	assert_null(strstr(m, "powerhive_miner_info"));
	assert_non_null(strstr(m, "powerhive_up 1\n"));
	apid_metrics_free(m);
	apid_health_free(b->health);
	free(b);
	h = apid_health(f->a);
	assert_int_equal(fleet_int(h, "miners"), 7);
	json_decref(h);
}

static double ms_since(int64_t t0_us)
{
	return (double)(hive_mono_us() - t0_us) / 1e3;
}

/* 10,000 miners with 10 statuses each: the totals come from one pass
 * over miners joined by primary key, not from the history. The rows go
 * in through a connection of the test's own (the bus would take longer
 * than the measurement). */
static void test_fleet_large(void **state)
{
	struct fx *f = *state;
	enum { MINERS = 10000, HISTORY = 10 };
	sqlite3 *db;
	sqlite3_stmt *mi, *si, *up;
	int64_t t0;
	long long now = hive_wall_ms(), id = 0;
	double cold, warm, cached;
	json_t *h;

	assert_int_equal(sqlite3_open_v2(f->a->db_path, &db, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO miners(mac, ip, online, managed,"
					    " first_seen_ms, last_seen_ms) VALUES (?, '127.0.0.1', ?, ?, ?, ?)",
					    -1, &mi, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO statuses(id, mac, ts_ms, state,"
					    " hr_realtime_ghs, power_w, power_metered)"
					    " VALUES (?, ?, ?, 'mining', 100.5, 3000, ?)", -1, &si, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE miners SET last_status_id = ?"
					    " WHERE mac = ?", -1, &up, NULL), SQLITE_OK);
	for (int i = 0; i < MINERS; i++) {
		char mac[HIVE_MAC_LEN];

		snprintf(mac, sizeof(mac), "aa:bb:%02x:%02x:00:00", i >> 8, i & 0xff);
		sqlite3_bind_text(mi, 1, mac, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(mi, 2, i % 10 != 0);       /* 9,000 online */
		sqlite3_bind_int(mi, 3, i % 4 == 0);        /* 2,500 managed */
		sqlite3_bind_int64(mi, 4, now);
		sqlite3_bind_int64(mi, 5, now);
		assert_int_equal(sqlite3_step(mi), SQLITE_DONE);
		sqlite3_reset(mi);
		for (int k = 0; k < HISTORY; k++) {
			sqlite3_bind_int64(si, 1, ++id);
			sqlite3_bind_text(si, 2, mac, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(si, 3, now - (HISTORY - k) * 1000);
			sqlite3_bind_int(si, 4, i % 2);           /* even ones estimated */
			assert_int_equal(sqlite3_step(si), SQLITE_DONE);
			sqlite3_reset(si);
		}
		sqlite3_bind_int64(up, 1, id);
		sqlite3_bind_text(up, 2, mac, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(up), SQLITE_DONE);
		sqlite3_reset(up);
	}
	sqlite3_finalize(mi);
	sqlite3_finalize(si);
	sqlite3_finalize(up);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	usleep(1100 * 1000);   /* past the cache of the setup's figures, if any */
	t0 = hive_mono_us();
	h = apid_health(f->a);
	cold = ms_since(t0);
	assert_int_equal(fleet_int(h, "miners"), MINERS);
	assert_int_equal(fleet_int(h, "online"), 9000);
	assert_int_equal(fleet_int(h, "mining"), 9000);
	assert_true(fabs(fleet_num(h, "hashrate_ghs") - 9000 * 100.5) < 1e-3);
	assert_int_equal(fleet_int(h, "power_w"), 9000 * 3000);
	assert_int_equal(fleet_int(h, "power_estimated_w"), 4000 * 3000);
	assert_int_equal(fleet_int(h, "managed"), 2500);
	assert_int_equal(fleet_int(h, "errors"), 0);
	json_decref(h);
	t0 = hive_mono_us();
	h = apid_health(f->a);
	cached = ms_since(t0);
	json_decref(h);
	usleep(1100 * 1000);   /* the cache expires: computed again, connection open */
	t0 = hive_mono_us();
	h = apid_health(f->a);
	warm = ms_since(t0);
	assert_int_equal(fleet_int(h, "miners"), MINERS);
	json_decref(h);
	printf("figure: health with fleet totals over %d miners (%d statuses each): "
	       "%.1f ms first (opens the connection), %.1f ms computed, %.3f ms cached\n",
	       MINERS, HISTORY, cold, warm, cached);
	/* ~12 ms on an idle 2-core machine. The speed target (250 ms) is in
	 * tests/bench/bench_apid.c; this bound only catches a plan that reads
	 * the history per miner (10,000 x 100,000 rows: many seconds), with
	 * room for sanitizers on a loaded machine. */
	assert_true(cold < 5000 && warm < 5000);
}

/* An operator's token must be at least APID_TOKEN_MIN characters, from the
 * config (or POWERHIVE_API_TOKEN) and from the token file alike. */
static void test_token_length(void **state)
{
	struct hive_cfg cfg;
	char token[APID_TOKEN_MAX + 1], err[256], dir[] = "/tmp/ph-token-XXXXXX", path[64];
	FILE *f;

	(void)state;
	hive_cfg_defaults(&cfg);
	snprintf(cfg.http.auth.token, sizeof(cfg.http.auth.token), "x");
	assert_int_equal(apid_auth_resolve(&cfg, token, sizeof(token), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "shorter than 16"));
	snprintf(cfg.http.auth.token, sizeof(cfg.http.auth.token), "0123456789abcdef");
	assert_int_equal(apid_auth_resolve(&cfg, token, sizeof(token), err, sizeof(err)), 0);
	assert_string_equal(token, "0123456789abcdef");
	cfg.http.auth.token[0] = '\0';
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	snprintf(cfg.http.auth.token_file, sizeof(cfg.http.auth.token_file), "%s", path);
	assert_non_null(f = fopen(path, "w"));
	fputs("short-token\n", f);
	fclose(f);
	assert_int_equal(apid_auth_resolve(&cfg, token, sizeof(token), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "shorter than 16"));
	unlink(path);
	rmdir(dir);
	hive_cfg_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fleet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fleet_large, setup, teardown),
		cmocka_unit_test(test_token_length),
	};

	hive_log_init("test_apid_parts", HIVE_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
