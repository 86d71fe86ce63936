/* test_plant_read — libhive's hive_plant_read against bin/plantsim, and
 * pollerd's plant reader on the bus.
 *
 * The aggregator: a good reading matching plantsim's ground truth
 * (/sim/state), a wrong key (http 401), a wrong plant_id (http 400), a sick
 * aggregator (5xx), a slow one (timeout), no one listening (refused), a low
 * confidence, failed sources. The Modbus meter: u32 abcd on holding
 * registers and float32 cdab on input registers, both following the plant;
 * a wrong unit, a wrong register, a silent and a closed meter.
 *
 * pollerd: the test plays apid (PUSH on bus.jobs_plant, SUB on bus.events)
 * and reads every event with apid's tables: an aggregator job and a Modbus
 * job come back as hive.plant.reading with their job ids and the plant's
 * generation; a failing read as ok:false; a job past its deadline and a bad
 * job come back as nothing but the heartbeat's plant_* counters; the key
 * never reaches pollerd's log. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "hive/bus.h"
#include "hive/msg.h"
#include "hive/plant.h"
#include "../lib/apidfake.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define KEY      "pk-test-plant-read-5c1e9a"
#define PLANT_ID "plant-9"
#define GEN_W    500000
#define CONS_W   100000
#define MB_REG   40
#define MB_UNIT  3
#define JOBS_MAX 64

struct plantsim {
	struct tl_sim sim;
	int http, modbus;
};

static struct plantsim P;            /* u32 abcd on holding registers */
static struct ts_suite ts;           /* pollerd, and the test as apid */
static struct {
	struct hive_bus *sub, *push;
	/* what came back, by job id */
	struct got {
		int n;
		bool ok;
		char source[16], error[256], error_kind[32], trust[32];
		double generation_w, consumption_w, confidence;
		long long reading_id, gen_failed, cons_failed;
	} got[JOBS_MAX];
	json_t *counters;                /* pollerd's last heartbeat's */
	int readings;
} S;
static bool passed;

/* ---------------------------------------------------------------- plantsim */

static int plantsim_start(struct plantsim *p, const char *const extra[])
{
	char http[64], mb[64];
	const char *argv[64] = { "--http", http, "--modbus", mb, "--plant-id", PLANT_ID,
				 "--api-key", KEY, "--generation-w", "500000",
				 "--consumption-w", "100000" };
	int n = 12;

	memset(p, 0, sizeof(*p));
	p->http = tl_free_port();
	do
		p->modbus = tl_free_port();
	while (p->modbus == p->http);
	if (p->http < 0 || p->modbus < 0)
		return -1;
	snprintf(http, sizeof(http), "127.0.0.1:%d", p->http);
	snprintf(mb, sizeof(mb), "127.0.0.1:%d", p->modbus);
	for (int i = 0; extra && extra[i] && n < 63; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return tl_sim_start(&p->sim, "plantsim", "plant-read", argv);
}

/* POST that must succeed (its state answer dropped). */
static void change(const struct plantsim *p, const char *path, const char *body)
{
	long st;
	json_t *j = tl_local_json("POST", p->http, path, body, &st);

	if (st != 200)
		fail_msg("POST %s %s: %ld", path, body ? body : "", st);
	json_decref(j);
}

static void reset(const struct plantsim *p)
{
	change(p, "/sim/reset", NULL);
	change(p, "/sim/generation", "{\"w\":500000}");
}

/* A number of GET /sim/state: a.b */
static double state_num(const struct plantsim *p, const char *a, const char *b)
{
	long st;
	json_t *j = tl_local_json("GET", p->http, "/sim/state", NULL, &st), *v;
	double d;

	assert_int_equal(st, 200);
	v = json_object_get(json_object_get(j, a), b);
	assert_true(json_is_number(v));
	d = json_number_value(v);
	json_decref(j);
	return d;
}

/* ---------------------------------------------------------------- sources */

static struct hive_plant_source aggregator(const struct plantsim *p, const char *key,
					   const char *plant_id)
{
	struct hive_plant_source s;

	hive_plant_source_defaults(&s, HIVE_PLANT_AGGREGATOR);
	snprintf(s.url, sizeof(s.url), "http://127.0.0.1:%d/v1/reading", p->http);
	snprintf(s.plant_id, sizeof(s.plant_id), "%s", plant_id);
	snprintf(s.api_key, sizeof(s.api_key), "%s", key);
	s.timeout_ms = 2000;
	return s;
}

static struct hive_plant_source meter(const struct plantsim *p, int unit, int reg,
				      enum hive_modbus_table table, enum hive_modbus_type type,
				      enum hive_modbus_order order, double scale)
{
	struct hive_plant_source s;

	hive_plant_source_defaults(&s, HIVE_PLANT_MODBUS);
	snprintf(s.host, sizeof(s.host), "127.0.0.1");
	s.port = p->modbus;
	s.unit = unit;
	s.reg = reg;
	s.table = table;
	s.type = type;
	s.order = order;
	s.scale = scale;
	s.timeout_ms = 2000;
	return s;
}

/* Reads s, which must fail with kind and a message starting with msg. */
static void read_fails(const struct hive_plant_source *s, const char *kind, const char *msg)
{
	struct hive_plant_reading r;

	assert_int_equal(hive_plant_read(s, &r), -1);
	assert_false(r.ok);
	if (strcmp(r.error_kind, kind) != 0 || strncmp(r.error, msg, strlen(msg)) != 0)
		fail_msg("expected %s \"%s...\", got %s \"%s\"", kind, msg, r.error_kind, r.error);
	assert_null(strstr(r.error, KEY));
	assert_true(r.latency_ms >= 0 && r.latency_ms <= s->timeout_ms + 1000);
}

/* ---------------------------------------------------------------- aggregator */

static void aggregator_reading(void **state)
{
	struct hive_plant_source s = aggregator(&P, KEY, PLANT_ID);
	struct hive_plant_reading r;
	long long now = hive_wall_ms();

	(void)state;
	reset(&P);
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.ok);
	/* the ground truth: what the plant produces and what the farm draws */
	assert_true(r.generation_w == state_num(&P, "generation", "actual_w"));
	assert_true(r.generation_w == GEN_W);
	assert_true(r.consumption_w == CONS_W);
	assert_true(r.exported_w == GEN_W - CONS_W);
	assert_true(r.confidence == 0.95);
	assert_string_equal(r.trust_status, "ok");
	assert_true(r.reading_id >= 1);
	/* to the second, taken now */
	assert_true(r.collected_ms > now - 2000 && r.collected_ms < now + 2000);
	assert_int_equal(r.gen_sources, 2);
	assert_int_equal(r.cons_sources, 2);
	assert_int_equal(r.gen_failed + r.cons_failed, 0);
	assert_true(r.latency_ms >= 0 && r.latency_ms < 2000);
	/* a fresh reading has the next id */
	{
		long long id = r.reading_id;

		assert_int_equal(hive_plant_read(&s, &r), 0);
		assert_int_equal(r.reading_id, id + 1);
	}
	/* the plant moves, the reading follows */
	change(&P, "/sim/generation", "{\"w\":412345}");
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.generation_w == 412345);
}

static void aggregator_errors(void **state)
{
	struct hive_plant_source s;
	int closed = tl_free_port();

	(void)state;
	reset(&P);
	s = aggregator(&P, "not-the-key", PLANT_ID);
	read_fails(&s, "http", "http 401: unauthorized");
	s = aggregator(&P, KEY, "plant-0");
	read_fails(&s, "http", "http 400: plant_id: unknown plant");

	s = aggregator(&P, KEY, PLANT_ID);
	change(&P, "/sim/aggregator", "{\"status\":503}");
	read_fails(&s, "http", "http 503: aggregator unavailable");
	change(&P, "/sim/aggregator", "{\"status\":500}");
	read_fails(&s, "http", "http 500: aggregator unavailable");

	/* slower than the timeout */
	change(&P, "/sim/aggregator", "{\"status\":200,\"delay_ms\":1500}");
	s.timeout_ms = 300;
	read_fails(&s, "timeout", "timeout after 300 ms");
	reset(&P);

	/* nobody listens */
	snprintf(s.url, sizeof(s.url), "http://127.0.0.1:%d/v1/reading", closed);
	read_fails(&s, "refused", "");
	/* a path that is not the reading's */
	s = aggregator(&P, KEY, PLANT_ID);
	snprintf(s.url, sizeof(s.url), "http://127.0.0.1:%d/v2/nothing", P.http);
	read_fails(&s, "http", "http 404");
}

static void aggregator_trust(void **state)
{
	struct hive_plant_source s = aggregator(&P, KEY, PLANT_ID);
	struct hive_plant_reading r;

	(void)state;
	reset(&P);
	change(&P, "/sim/confidence", "{\"score\":0.5}");
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.confidence == 0.5);
	assert_string_equal(r.trust_status, "low");
	assert_true(r.consumption_w == CONS_W);

	/* a failed container: its total is no measurement of the farm */
	reset(&P);
	change(&P, "/sim/source", "{\"name\":\"container_2\",\"status\":\"error\"}");
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(isnan(r.consumption_w));
	assert_int_equal(r.cons_failed, 1);
	assert_int_equal(r.gen_failed, 0);
	assert_string_equal(r.failed, "container_2");
	assert_string_equal(r.trust_status, "degraded");
	assert_true(r.generation_w == GEN_W);

	/* a failed generator: reported, for apid to judge */
	change(&P, "/sim/source", "{\"name\":\"gen_b\",\"status\":\"timeout\"}");
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_int_equal(r.gen_failed, 1);
	assert_int_equal(r.gen_sources, 2);
	assert_string_equal(r.failed, "gen_b,container_2");
	reset(&P);
}

/* ---------------------------------------------------------------- modbus */

static void modbus_u32(void **state)
{
	struct hive_plant_source s = meter(&P, MB_UNIT, MB_REG, HIVE_MODBUS_HOLDING, HIVE_MODBUS_U32,
					   HIVE_MODBUS_ABCD, 1);
	struct hive_plant_reading r;

	(void)state;
	reset(&P);
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.ok);
	assert_int_equal(r.n_regs, 2);
	assert_true(r.generation_w == GEN_W);
	assert_true(r.generation_w == state_num(&P, "modbus", "value_w"));
	assert_int_equal(r.reading_id, -1);
	assert_true(isnan(r.consumption_w));
	change(&P, "/sim/generation", "{\"w\":54321}");
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.generation_w == 54321);
	/* what a badly configured client reads: the words swapped */
	s.order = HIVE_MODBUS_CDAB;
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.generation_w == (double)(54321u << 16));
	reset(&P);
}

static void modbus_float32_cdab(void **state)
{
	struct plantsim f;
	const char *extra[] = { "--modbus-type", "float32", "--modbus-order", "cdab",
				"--modbus-table", "input", "--modbus-register", "100",
				"--modbus-scale", "1000", NULL };
	struct hive_plant_source s;
	struct hive_plant_reading r;

	(void)state;
	assert_int_equal(plantsim_start(&f, extra), 0);
	s = meter(&f, 1, 100, HIVE_MODBUS_INPUT, HIVE_MODBUS_FLOAT32, HIVE_MODBUS_CDAB, 1000);
	assert_int_equal(hive_plant_read(&s, &r), 0);
	assert_true(r.generation_w == GEN_W);
	assert_true(r.generation_w == state_num(&f, "modbus", "value_w"));
	change(&f, "/sim/generation", "{\"w\":123457}");
	assert_int_equal(hive_plant_read(&s, &r), 0);
	/* 123.457 kW as float32, in whole watts */
	assert_true(r.generation_w == 123457);
	/* the holding table holds nothing there */
	s.table = HIVE_MODBUS_HOLDING;
	read_fails(&s, "modbus", "modbus: Illegal data address");
	tl_sim_stop(&f.sim, false);
}

static void modbus_errors(void **state)
{
	struct hive_plant_source s = meter(&P, MB_UNIT, MB_REG, HIVE_MODBUS_HOLDING, HIVE_MODBUS_U32,
					   HIVE_MODBUS_ABCD, 1);
	int64_t t0;

	(void)state;
	reset(&P);
	s.reg = MB_REG + 1;
	read_fails(&s, "modbus", "modbus: Illegal data address");
	s.reg = MB_REG;
	s.unit = 9;
	read_fails(&s, "modbus", "modbus: Target device failed to respond");
	s.unit = MB_UNIT;
	change(&P, "/sim/modbus", "{\"mode\":\"exception\",\"exception\":4}");
	read_fails(&s, "modbus", "modbus: Slave device or server failure");

	/* a silent meter: the timeout is the job's */
	change(&P, "/sim/modbus", "{\"mode\":\"silent\"}");
	s.timeout_ms = 400;
	t0 = hive_mono_ms();
	read_fails(&s, "modbus", "modbus: Connection timed out");
	assert_true(hive_mono_ms() - t0 < 1500);

	change(&P, "/sim/modbus", "{\"mode\":\"closed\"}");
	read_fails(&s, "modbus", "modbus: Connection refused");
	reset(&P);
}

/* ---------------------------------------------------------------- pollerd */

static void on_event(int kind, const void *body, const struct hive_envelope *env, void *arg)
{
	(void)env;
	(void)arg;
	if (kind == HIVE_MSG_PLANT_READING) {
		const struct hive_msg_plant_reading *m = body;
		struct got *g;

		if (m->job <= 0 || m->job >= JOBS_MAX)
			fail_msg("hive.plant.reading for job %lld, never sent", m->job);
		g = &S.got[m->job];
		g->n++;
		g->ok = m->ok == 1;
		snprintf(g->source, sizeof(g->source), "%s", m->source);
		snprintf(g->error, sizeof(g->error), "%s", m->error ? m->error : "");
		snprintf(g->error_kind, sizeof(g->error_kind), "%s", m->error_kind ? m->error_kind : "");
		snprintf(g->trust, sizeof(g->trust), "%s", m->trust_status ? m->trust_status : "");
		g->generation_w = m->generation_w;
		g->consumption_w = m->consumption_w;
		g->confidence = m->confidence;
		g->reading_id = m->reading_id;
		g->gen_failed = m->gen_failed;
		g->cons_failed = m->cons_failed;
		S.readings++;
	} else if (kind == HIVE_MSG_HEARTBEAT) {
		const struct hive_msg_heartbeat *hb = body;

		if (strcmp(hb->daemon, "pollerd") == 0 && hb->counters) {
			json_decref(S.counters);
			S.counters = json_deep_copy(hb->counters);
		}
	}
}

static void drain(void)
{
	char err[512];

	if (tl_apid_drain(S.sub, on_event, NULL, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static bool connected(void *arg)
{
	(void)arg;
	drain();
	return hive_bus_peers(S.push) > 0 && hive_bus_peers(S.sub) > 0 && S.counters;
}

/* Pushes s as job id with a deadline deadline_in_ms from now. */
static void push(long long id, const struct hive_plant_source *s, long long deadline_in_ms)
{
	struct hive_msg_plant_job j;
	json_t *body;

	hive_plant_source_to_job(s, &j);
	j.job = id;
	j.deadline = hive_wall_ms() + deadline_in_ms;
	body = hive_msg_encode(HIVE_MSG_JOB_PLANT, &j);
	assert_non_null(body);
	if (hive_bus_send(S.push, HIVE_TOPIC_JOB_PLANT, body, false) != HIVE_BUS_OK)
		fail_msg("could not push plant job %lld", id);
	json_decref(body);
}

static bool answered(void *arg)
{
	drain();
	return S.got[*(long long *)arg].n > 0;
}

static const struct got *wait_reading(long long id)
{
	if (tl_wait_until(10000, answered, &id) < 0)
		fail_msg("no hive.plant.reading for job %lld; see %s", id, ts_find(&ts, "pollerd")->log);
	return &S.got[id];
}

static long long counter(const char *name)
{
	json_t *v = json_object_get(S.counters, name);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

struct want {
	const char *name;
	long long n;
};

static bool counted(void *arg)
{
	const struct want *w = arg;

	drain();
	for (; w->name; w++)
		if (counter(w->name) != w->n)
			return false;
	return true;
}

static void pollerd_reads(void **state)
{
	struct hive_plant_source agg = aggregator(&P, KEY, PLANT_ID);
	struct hive_plant_source mb = meter(&P, MB_UNIT, MB_REG, HIVE_MODBUS_HOLDING,
					    HIVE_MODBUS_U32, HIVE_MODBUS_ABCD, 1);
	struct hive_plant_source wrong = aggregator(&P, "wrong-key", PLANT_ID);
	const struct got *g;
	char *log;

	(void)state;
	reset(&P);
	push(1, &agg, 5000);
	g = wait_reading(1);
	assert_true(g->ok);
	assert_string_equal(g->source, "aggregator");
	assert_true(g->generation_w == GEN_W);
	assert_true(g->consumption_w == CONS_W);
	assert_true(g->confidence == 0.95);
	assert_string_equal(g->trust, "ok");
	assert_true(g->reading_id >= 1);
	assert_int_equal(g->gen_failed, 0);

	push(2, &mb, 5000);
	g = wait_reading(2);
	assert_true(g->ok);
	assert_string_equal(g->source, "modbus");
	assert_true(g->generation_w == GEN_W);
	assert_true(isnan(g->consumption_w));
	assert_int_equal(g->reading_id, HIVE_MSG_NO_INT);

	push(3, &wrong, 5000);
	g = wait_reading(3);
	assert_false(g->ok);
	assert_string_equal(g->error_kind, "http");
	assert_string_equal(g->error, "http 401: unauthorized");
	assert_true(isnan(g->generation_w));

	/* past its deadline: never read */
	push(4, &agg, -1000);
	/* a job pollerd cannot read: a meter without a host */
	{
		json_t *body = json_pack("{s:I, s:s, s:i}", "job", (json_int_t)5, "kind", "modbus",
					 "port", 502);

		assert_int_equal(hive_bus_send(S.push, HIVE_TOPIC_JOB_PLANT, body, false), HIVE_BUS_OK);
		json_decref(body);
		body = json_pack("{s:s}", "kind", "aggregator");   /* no job id */
		assert_int_equal(hive_bus_send(S.push, HIVE_TOPIC_JOB_PLANT, body, false), HIVE_BUS_OK);
		json_decref(body);
	}
	/* one more good one: the others were taken before it */
	push(6, &agg, 5000);
	g = wait_reading(6);
	assert_true(g->ok);
	{
		struct want w[] = {
			{ "plant_jobs_received", 5 }, { "plant_readings_ok", 3 },
			{ "plant_readings_failed", 1 }, { "plant_jobs_expired", 1 },
			{ "plant_jobs_bad", 2 }, { NULL, 0 },
		};

		if (tl_wait_until(5000, counted, w) < 0) {
			char *c = json_dumps(S.counters, JSON_SORT_KEYS);

			fail_msg("pollerd's counters: %s", c);
			free(c);
		}
	}
	assert_int_equal(S.got[4].n + S.got[5].n, 0);
	assert_int_equal(S.readings, 4);

	/* the key never reaches the log */
	log = tl_read_file(ts_find(&ts, "pollerd")->log);
	assert_non_null(log);
	assert_null(strstr(log, KEY));
	assert_non_null(strstr(log, "plant_reader_ready"));
	free(log);
	passed = true;
}

/* ---------------------------------------------------------------- fixture */

static int setup(void **state)
{
	struct hive_bus_opts o = { .sendbuf = 64, .recvbuf = 1024, .send_timeout_ms = 1000,
				   .source = "test_plant_read/hub/1", .boot = hive_wall_ms() };
	const char *extra[] = { "--modbus-register", "40", "--modbus-unit", "3", NULL };

	(void)state;
	if (plantsim_start(&P, extra) < 0)
		return -1;
	if (ts_init(&ts, "plant-read") < 0 ||
	    ts_merge(&ts, "{\"intervals\": {\"heartbeat_seconds\": 1}}") < 0)
		return -1;
	/* the test is apid: it listens, pollerd dials */
	if (!(S.sub = tl_apid_listen(&ts, "events", &o)) ||
	    !(S.push = tl_apid_listen(&ts, "jobs_plant", &o)) ||
	    !ts_start(&ts, "pollerd", NULL, NULL, NULL))
		return -1;
	if (tl_wait_until(10000, connected, NULL) < 0) {
		fprintf(stderr, "pollerd did not connect; see %s\n", ts_find(&ts, "pollerd")->log);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_down(&ts, !passed);
	hive_bus_close(S.push);
	hive_bus_close(S.sub);
	json_decref(S.counters);
	tl_sim_stop(&P.sim, !passed);
	tl_live_kill_all();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aggregator_reading),
		cmocka_unit_test(aggregator_errors),
		cmocka_unit_test(aggregator_trust),
		cmocka_unit_test(modbus_u32),
		cmocka_unit_test(modbus_float32_cdab),
		cmocka_unit_test(modbus_errors),
		cmocka_unit_test(pollerd_reads),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("plant_read", tests, setup, teardown);
}
