/* test_plantsim — the plant simulator through its three doors.
 *
 * Starts bin/plantsim on loopback and checks the aggregator's reading
 * (shape, sums, ids, timestamps, 401/400/404/405), every admin change and
 * fault as the aggregator and the Modbus meter show it, every Modbus layout
 * (5 types × 4 byte orders, read back with a libmodbus client and decoded
 * here by hand), Modbus protocol errors and faults, consumption following a
 * real minersim (down when its miners reboot, back up, kept when minersim
 * dies), and the refusal of anything but loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <modbus.h>

#include "../lib/testlib.h"

#define KEY        "pk-7f3a9c1e5b2d4f60a8e1"
#define PLANT_ID   "plant-7"
#define GEN_W      500000
#define CONS_W     100000
#define MB_REG     40
#define MB_UNIT    3
/* minersim's fleet for the consumption test: a subnet no other test uses */
#define FLEET_SUBNET "127.79.5.0/28"
#define FLEET_MINERS 6

struct proc {
	struct tl_sim sim;
	int http;
	int modbus;
	int admin;               /* minersim: its admin port */
};

static struct proc plant;    /* the shared plant */

/* ---------------------------------------------------------------- helpers */

static int other_port(int a, int b)
{
	int p;

	do
		p = tl_free_port();
	while (p == a || p == b);
	return p;
}

/* plantsim with the shared defaults, plus extra flags; modbus when asked. */
static int plant_start(struct proc *p, bool modbus, const char *const extra[])
{
	char http[64], mb[64];
	const char *argv[64] = { "--http", http, "--plant-id", PLANT_ID };
	int n = 4;

	memset(p, 0, sizeof(*p));
	p->http = tl_free_port();
	p->modbus = modbus ? other_port(p->http, -1) : 0;
	if (p->http < 0 || p->modbus < 0)
		return -1;
	snprintf(http, sizeof(http), "127.0.0.1:%d", p->http);
	snprintf(mb, sizeof(mb), "127.0.0.1:%d", p->modbus);
	if (modbus) {
		argv[n++] = "--modbus";
		argv[n++] = mb;
	}
	for (int i = 0; extra && extra[i] && n < 63; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return tl_sim_start(&p->sim, "plantsim", "plantsim", argv);
}

/* SIGTERM must be a clean stop: exit status 0, not killed. */
static bool clean_exit(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static json_t *admin(const struct proc *p, const char *method, const char *path,
		     const char *body, long *status)
{
	return tl_local_json(method, p->http, path, body, status);
}

/* POST that must succeed; the state it answers is dropped. */
static void change(const struct proc *p, const char *path, const char *body)
{
	long st;
	json_t *j = admin(p, "POST", path, body, &st);

	if (st != 200)
		fprintf(stderr, "POST %s %s: %ld %s\n", path, body, st,
			json_string_value(json_object_get(j, "error")));
	assert_int_equal(st, 200);
	json_decref(j);
}

static json_t *reading_as(const struct proc *p, const char *key, const char *plant_id,
			  long *status)
{
	char url[256], auth[128];
	const char *hdr[] = { auth, NULL };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/reading%s%s", p->http,
		 plant_id ? "?plant_id=" : "", plant_id ? plant_id : "");
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	return tl_http_json("GET", url, key ? hdr : NULL, NULL, status);
}

/* The "reading" object of a 200 answer (new reference). */
static json_t *reading(const struct proc *p)
{
	long st;
	json_t *doc = reading_as(p, KEY, PLANT_ID, &st), *r;

	assert_int_equal(st, 200);
	r = json_incref(json_object_get(doc, "reading"));
	json_decref(doc);
	assert_non_null(r);
	return r;
}

static json_t *jpath(json_t *j, const char *a, const char *b)
{
	j = json_object_get(j, a);
	return b ? json_object_get(j, b) : j;
}

static double jnum(json_t *j, const char *a, const char *b)
{
	json_t *v = jpath(j, a, b);

	assert_true(json_is_number(v));
	return json_number_value(v);
}

static const char *jstr(json_t *j, const char *a, const char *b)
{
	json_t *v = jpath(j, a, b);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static double total(json_t *r, const char *what)
{
	return jnum(json_object_get(r, "totals"), what, NULL);
}

static double source_mw(json_t *r, const char *group, const char *name)
{
	return jnum(json_object_get(r, group), name, "value_mw");
}

static const char *source_status(json_t *r, const char *group, const char *name)
{
	return jstr(json_object_get(r, group), name, "status");
}

/* An RFC 3339 UTC second ("2025-01-12T10:30:00Z") as time_t; -1 otherwise. */
static time_t rfc3339(const char *s)
{
	struct tm tm = { 0 };
	const char *end;

	if (!s || strlen(s) != 20)
		return -1;
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -1;
	return timegm(&tm);
}

static bool near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

static void plant_reset(void)
{
	change(&plant, "/sim/reset", NULL);
	change(&plant, "/sim/noise", "{\"percent\":0}");
	change(&plant, "/sim/generation", "{\"w\":500000}");
	change(&plant, "/sim/consumption", "{\"w\":100000}");
}

static int count_in_log(const char *log, const char *needle)
{
	char *text = tl_read_file(log), *p = text;
	int n = 0;

	while (p && (p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	free(text);
	return n;
}

/* ---------------------------------------------------------------- modbus */

static modbus_t *mb_open(int port, int unit)
{
	modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);

	assert_non_null(ctx);
	modbus_set_slave(ctx, unit);
	modbus_set_response_timeout(ctx, 1, 0);
	if (modbus_connect(ctx) < 0) {
		modbus_free(ctx);
		return NULL;
	}
	return ctx;
}

static void mb_close(modbus_t *ctx)
{
	if (!ctx)
		return;
	modbus_close(ctx);
	modbus_free(ctx);
}

static int mb_read(modbus_t *ctx, bool input, int addr, int n, uint16_t *regs)
{
	return input ? modbus_read_input_registers(ctx, addr, n, regs)
		     : modbus_read_registers(ctx, addr, n, regs);
}

static const char *const types[] = { "u16", "s16", "u32", "s32", "float32" };
static const char *const orders[] = { "abcd", "badc", "cdab", "dcba" };

static uint16_t swap16(uint16_t r)
{
	return (uint16_t)((r << 8) | (r >> 8));
}

/* The 32 bits of a value from two registers in byte order `order`: what a
 * meter's manual says, written from the definition, not from plantsim. */
static uint32_t bits32(const uint16_t *r, const char *order)
{
	uint16_t hi, lo;

	if (strcmp(order, "abcd") == 0) {
		hi = r[0];
		lo = r[1];
	} else if (strcmp(order, "badc") == 0) {
		hi = swap16(r[0]);
		lo = swap16(r[1]);
	} else if (strcmp(order, "cdab") == 0) {
		hi = r[1];
		lo = r[0];
	} else {
		hi = swap16(r[1]);
		lo = swap16(r[0]);
	}
	return (uint32_t)hi << 16 | lo;
}

/* The value in units of the scale. */
static double decode(const uint16_t *r, const char *type, const char *order)
{
	bool swapped = strcmp(order, "badc") == 0 || strcmp(order, "dcba") == 0;
	uint16_t w = swapped ? swap16(r[0]) : r[0];
	uint32_t x;
	float f;

	if (strcmp(type, "u16") == 0)
		return w;
	if (strcmp(type, "s16") == 0)
		return (int16_t)w;
	x = bits32(r, order);
	if (strcmp(type, "u32") == 0)
		return x;
	if (strcmp(type, "s32") == 0)
		return (int32_t)x;
	memcpy(&f, &x, sizeof(f));
	return f;
}

/* libmodbus's own float readers (their setters are wrong in 3.1.6, the
 * getters are right): a second, independent decoding. */
static double libmodbus_float(const uint16_t *r, const char *order)
{
	if (strcmp(order, "abcd") == 0)
		return modbus_get_float_abcd(r);
	if (strcmp(order, "badc") == 0)
		return modbus_get_float_badc(r);
	if (strcmp(order, "cdab") == 0)
		return modbus_get_float_cdab(r);
	return modbus_get_float_dcba(r);
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
	static const char *const extra[] = {
		"--api-key", KEY, "--generation-w", "500000", "--consumption-w", "100000",
		"--modbus-register", "40", "--modbus-unit", "3", NULL,
	};

	(void)state;
	return plant_start(&plant, true, extra);
}

static int teardown(void **state)
{
	int status;

	(void)state;
	status = tl_sim_stop(&plant.sim, false);
	tl_live_kill_all();
	return clean_exit(status) ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_reading_document(void **state)
{
	json_t *r1, *r2, *gen, *cons, *src, *trust;
	const char *name;
	time_t collected, now;

	(void)state;
	plant_reset();
	r1 = reading(&plant);
	r2 = reading(&plant);
	now = time(NULL);

	/* ids increase by one per reading */
	assert_true(json_is_integer(json_object_get(r1, "id")));
	assert_int_equal(json_integer_value(json_object_get(r2, "id")),
			 json_integer_value(json_object_get(r1, "id")) + 1);
	assert_string_equal(jstr(r2, "plant_id", NULL), PLANT_ID);
	collected = rfc3339(jstr(r2, "collection_timestamp", NULL));
	assert_true(collected > 0 && labs((long)(now - collected)) <= 2);

	/* two generators and two containers, each a full source record */
	gen = json_object_get(r2, "generation");
	cons = json_object_get(r2, "consumption");
	assert_int_equal(json_object_size(gen), 2);
	assert_int_equal(json_object_size(cons), 2);
	assert_non_null(json_object_get(gen, "gen_a"));
	assert_non_null(json_object_get(gen, "gen_b"));
	assert_non_null(json_object_get(cons, "container_1"));
	assert_non_null(json_object_get(cons, "container_2"));
	json_object_foreach(gen, name, src) {
		time_t ts = rfc3339(jstr(src, "source_timestamp", NULL));
		assert_int_equal(json_object_size(src), 3);
		assert_string_equal(jstr(src, "status", NULL), "success");
		assert_true(near(jnum(src, "value_mw", NULL), 0.25, 1e-9));
		assert_true(ts > 0 && ts <= collected && collected - ts <= 3);
	}
	json_object_foreach(cons, name, src) {
		assert_string_equal(jstr(src, "status", NULL), "success");
		assert_true(near(jnum(src, "value_mw", NULL), 0.05, 1e-9));
	}

	/* totals in MW, the sums of the sources */
	assert_int_equal(json_object_size(json_object_get(r2, "totals")), 3);
	assert_true(near(total(r2, "generation_mw"), 0.5, 1e-9));
	assert_true(near(total(r2, "consumption_mw"), 0.1, 1e-9));
	assert_true(near(total(r2, "exported_mw"), 0.4, 1e-9));

	trust = json_object_get(r2, "trust");
	assert_true(near(jnum(trust, "confidence_score", NULL), 0.95, 1e-9));
	assert_string_equal(jstr(trust, "status", NULL), "ok");
	assert_string_equal(jstr(trust, "summary", NULL), "all sources fresh");
	json_decref(r1);
	json_decref(r2);
}

static void test_auth_and_errors(void **state)
{
	char url[256], *body = NULL, *text, cmdline[64];
	json_t *j, *st;
	long status;
	long long before_unauth, before_bad;

	(void)state;
	plant_reset();
	st = admin(&plant, "GET", "/sim/state", NULL, NULL);
	before_unauth = json_integer_value(jpath(st, "aggregator", "unauthorized"));
	before_bad = json_integer_value(jpath(st, "aggregator", "bad_request"));
	json_decref(st);

	j = reading_as(&plant, NULL, PLANT_ID, &status);         /* no header */
	assert_int_equal(status, 401);
	assert_string_equal(jstr(j, "error", NULL), "unauthorized");
	json_decref(j);
	j = reading_as(&plant, "pk-wrong", PLANT_ID, &status);
	assert_int_equal(status, 401);
	json_decref(j);
	j = reading_as(&plant, KEY "x", PLANT_ID, &status);     /* a prefix is not the key */
	assert_int_equal(status, 401);
	json_decref(j);
	{
		const char *hdr[] = { "Authorization: Basic " KEY, NULL };
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/reading?plant_id=%s",
			 plant.http, PLANT_ID);
		json_decref(tl_http_json("GET", url, hdr, NULL, &status));
		assert_int_equal(status, 401);
	}
	j = reading_as(&plant, KEY, "plant-8", &status);
	assert_int_equal(status, 400);
	assert_non_null(strstr(jstr(j, "error", NULL), "plant_id"));
	json_decref(j);
	j = reading_as(&plant, KEY, NULL, &status);              /* no plant_id at all */
	assert_int_equal(status, 400);
	json_decref(j);

	/* other paths and methods */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/other", plant.http);
	assert_int_equal(tl_http("GET", url, NULL, NULL, &body, &status), 0);
	assert_int_equal(status, 404);
	free(body);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/reading?plant_id=%s", plant.http,
		 PLANT_ID);
	assert_int_equal(tl_http("POST", url, NULL, "{}", &body, &status), 0);
	assert_int_equal(status, 405);
	free(body);

	st = admin(&plant, "GET", "/sim/state", NULL, NULL);
	assert_int_equal(json_integer_value(jpath(st, "aggregator", "unauthorized")),
			 before_unauth + 4);
	assert_int_equal(json_integer_value(jpath(st, "aggregator", "bad_request")), before_bad + 2);
	json_decref(st);

	/* the key is in neither the log nor the command line */
	text = tl_read_file(plant.sim.log);
	assert_non_null(text);
	assert_null(strstr(text, KEY));
	free(text);
	snprintf(cmdline, sizeof(cmdline), "/proc/%d/cmdline", (int)plant.sim.pid);
	{
		FILE *f = fopen(cmdline, "rb");
		char buf[4096];
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		for (size_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		assert_true(n > 0);
		assert_null(strstr(buf, KEY));
	}
}

static void test_generation_ramp_drop(void **state)
{
	json_t *r, *st;
	long long t0;
	double mid;

	(void)state;
	plant_reset();
	change(&plant, "/sim/generation", "{\"w\":400000}");
	r = reading(&plant);
	assert_true(near(total(r, "generation_mw"), 0.4, 1e-9));
	assert_true(near(source_mw(r, "generation", "gen_a"), 0.2, 1e-9));
	json_decref(r);

	/* a ramp moves linearly, then holds at its target */
	t0 = hive_mono_ms();
	change(&plant, "/sim/ramp", "{\"w\":800000,\"seconds\":2}");
	st = admin(&plant, "GET", "/sim/state", NULL, NULL);
	assert_true(json_is_object(jpath(st, "generation", "ramp")));
	assert_int_equal(json_integer_value(jpath(jpath(st, "generation", "ramp"), "to_w", NULL)),
			 800000);
	json_decref(st);
	tl_sleep_ms(1000);
	r = reading(&plant);
	mid = total(r, "generation_mw");
	json_decref(r);
	if (hive_mono_ms() - t0 < 1900)
		assert_true(mid > 0.45 && mid < 0.79);
	tl_sleep_ms(1300);
	r = reading(&plant);
	assert_true(near(total(r, "generation_mw"), 0.8, 1e-9));
	json_decref(r);
	st = admin(&plant, "GET", "/sim/state", NULL, NULL);
	assert_true(json_is_null(jpath(st, "generation", "ramp")));
	json_decref(st);

	/* a drop is at once */
	change(&plant, "/sim/drop", "{\"percent\":25}");
	r = reading(&plant);
	assert_true(near(total(r, "generation_mw"), 0.6, 1e-9));
	assert_true(near(total(r, "exported_mw"), 0.5, 1e-9));
	json_decref(r);

	/* one log line per change */
	assert_true(count_in_log(plant.sim.log,
				 "admin change=ramp from_w=400000 to_w=800000") == 1);
	assert_true(count_in_log(plant.sim.log, "admin change=drop percent=25 from_w=800000 "
				 "to_w=600000") == 1);
}

/* Offsets seen per noise second, -1000 where none was seen. */
static void sample_noise(double *off, int seconds)
{
	long long t0 = hive_mono_ms();

	for (int i = 0; i < seconds; i++)
		off[i] = -1000;
	while (hive_mono_ms() - t0 < seconds * 1000 - 200) {
		json_t *st = admin(&plant, "GET", "/sim/state", NULL, NULL);
		json_t *n = jpath(st, "generation", "noise");
		long sec = (long)json_integer_value(json_object_get(n, "second"));
		double o = json_number_value(json_object_get(n, "offset_percent"));
		double actual = (double)json_integer_value(jpath(st, "generation", "actual_w"));

		assert_true(fabs(o) <= 5.0);
		assert_true(near(actual, 500000 * (1 + o / 100), 1.0));
		if (sec >= 0 && sec < seconds)
			off[sec] = o;
		json_decref(st);
		tl_sleep_ms(150);
	}
}

static void test_noise_reproducible(void **state)
{
	double a[2], b[2];
	int compared = 0, moved = 0;
	json_t *r;

	(void)state;
	plant_reset();
	change(&plant, "/sim/noise", "{\"percent\":5,\"seed\":42}");
	sample_noise(a, 2);
	/* the same seed replays the same walk, second for second */
	change(&plant, "/sim/noise", "{\"percent\":5,\"seed\":42}");
	sample_noise(b, 2);
	for (int i = 0; i < 2; i++) {
		if (a[i] > -1000 && b[i] > -1000) {
			assert_true(near(a[i], b[i], 1e-9));
			compared++;
		}
		if (i && a[i] > -1000 && a[i - 1] > -1000 && a[i] != a[i - 1])
			moved++;
	}
	assert_true(compared >= 2);
	assert_true(moved >= 1);
	assert_true(a[0] == 0);                  /* the walk starts at the base */
	/* the reading carries the noisy figure, within the band */
	r = reading(&plant);
	assert_true(total(r, "generation_mw") >= 0.475 - 1e-9 &&
		    total(r, "generation_mw") <= 0.525 + 1e-9);
	json_decref(r);
	change(&plant, "/sim/noise", "{\"percent\":0}");
}

static void test_stale(void **state)
{
	json_t *r1, *r2, *r3;
	long long id;
	time_t t;

	(void)state;
	plant_reset();
	change(&plant, "/sim/stale", "{\"stale\":true}");
	r1 = reading(&plant);
	tl_sleep_ms(1300);
	change(&plant, "/sim/generation", "{\"w\":200000}");
	r2 = reading(&plant);
	/* the same frozen reading: id, timestamp and values, while HTTP answers 200 */
	id = json_integer_value(json_object_get(r1, "id"));
	assert_int_equal(json_integer_value(json_object_get(r2, "id")), id);
	assert_string_equal(jstr(r1, "collection_timestamp", NULL),
			    jstr(r2, "collection_timestamp", NULL));
	t = rfc3339(jstr(r2, "collection_timestamp", NULL));
	assert_true(time(NULL) - t >= 1);
	assert_true(near(total(r2, "generation_mw"), 0.5, 1e-9));
	assert_string_equal(jstr(json_object_get(r2, "trust"), "status", NULL), "ok");

	change(&plant, "/sim/stale", "{\"stale\":false}");
	r3 = reading(&plant);
	assert_true(json_integer_value(json_object_get(r3, "id")) > id);
	assert_true(rfc3339(jstr(r3, "collection_timestamp", NULL)) >= time(NULL) - 1);
	assert_true(near(total(r3, "generation_mw"), 0.2, 1e-9));
	json_decref(r1);
	json_decref(r2);
	json_decref(r3);
}

static void test_confidence(void **state)
{
	json_t *r, *trust;

	(void)state;
	plant_reset();
	change(&plant, "/sim/confidence", "{\"score\":0.5}");
	r = reading(&plant);
	trust = json_object_get(r, "trust");
	assert_true(near(jnum(trust, "confidence_score", NULL), 0.5, 1e-9));
	assert_string_equal(jstr(trust, "status", NULL), "low");
	/* the values themselves are untouched */
	assert_true(near(total(r, "generation_mw"), 0.5, 1e-9));
	json_decref(r);
	change(&plant, "/sim/confidence", "{\"score\":0.81}");
	r = reading(&plant);
	assert_string_equal(jstr(json_object_get(r, "trust"), "status", NULL), "ok");
	json_decref(r);
	/* reset restores --confidence */
	change(&plant, "/sim/reset", NULL);
	r = reading(&plant);
	assert_true(near(jnum(json_object_get(r, "trust"), "confidence_score", NULL), 0.95, 1e-9));
	json_decref(r);
}

static void test_source_failure(void **state)
{
	json_t *r, *gen, *trust, *j;
	time_t collected, frozen;
	long st;

	(void)state;
	plant_reset();
	change(&plant, "/sim/source", "{\"name\":\"gen_b\",\"status\":\"error\"}");
	change(&plant, "/sim/source", "{\"name\":\"container_2\",\"status\":\"timeout\"}");
	tl_sleep_ms(1200);
	change(&plant, "/sim/generation", "{\"w\":600000}");
	change(&plant, "/sim/consumption", "{\"w\":200000}");
	r = reading(&plant);
	gen = json_object_get(r, "generation");
	/* the failed ones keep their last value and timestamp */
	assert_string_equal(source_status(r, "generation", "gen_b"), "error");
	assert_string_equal(source_status(r, "generation", "gen_a"), "success");
	assert_string_equal(source_status(r, "consumption", "container_2"), "timeout");
	assert_true(near(source_mw(r, "generation", "gen_b"), 0.25, 1e-9));
	assert_true(near(source_mw(r, "generation", "gen_a"), 0.3, 1e-9));
	assert_true(near(source_mw(r, "consumption", "container_2"), 0.05, 1e-9));
	assert_true(near(source_mw(r, "consumption", "container_1"), 0.1, 1e-9));
	collected = rfc3339(jstr(r, "collection_timestamp", NULL));
	frozen = rfc3339(jstr(json_object_get(gen, "gen_b"), "source_timestamp", NULL));
	assert_true(collected - frozen >= 2);
	/* totals still add every source, as the plant's aggregator does */
	assert_true(near(total(r, "generation_mw"), 0.55, 1e-9));
	assert_true(near(total(r, "consumption_mw"), 0.15, 1e-9));
	trust = json_object_get(r, "trust");
	assert_string_equal(jstr(trust, "status", NULL), "degraded");
	assert_string_equal(jstr(trust, "summary", NULL), "gen_b error, container_2 timeout");
	assert_true(near(jnum(trust, "confidence_score", NULL), 0.95, 1e-9));
	json_decref(r);

	/* an unknown source, a bad status word */
	j = admin(&plant, "POST", "/sim/source", "{\"name\":\"gen_z\"}", &st);
	assert_int_equal(st, 404);
	json_decref(j);
	j = admin(&plant, "POST", "/sim/source", "{\"name\":\"gen_a\",\"status\":\"no way\"}", &st);
	assert_int_equal(st, 400);
	json_decref(j);

	change(&plant, "/sim/source", "{\"name\":\"gen_b\",\"status\":\"success\"}");
	r = reading(&plant);
	assert_true(near(source_mw(r, "generation", "gen_b"), 0.3, 1e-9));
	assert_string_equal(source_status(r, "consumption", "container_2"), "timeout");
	json_decref(r);
	change(&plant, "/sim/reset", NULL);
	r = reading(&plant);
	assert_string_equal(source_status(r, "consumption", "container_2"), "success");
	assert_string_equal(jstr(json_object_get(r, "trust"), "status", NULL), "ok");
	json_decref(r);
}

static void test_aggregator_failure(void **state)
{
	json_t *j, *r;
	long st;
	long long t0;

	(void)state;
	plant_reset();
	change(&plant, "/sim/aggregator", "{\"status\":503}");
	j = reading_as(&plant, KEY, PLANT_ID, &st);
	assert_int_equal(st, 503);
	assert_non_null(json_object_get(j, "error"));
	json_decref(j);
	j = reading_as(&plant, "pk-wrong", PLANT_ID, &st);   /* unwell before auth */
	assert_int_equal(st, 503);
	json_decref(j);
	j = admin(&plant, "GET", "/sim/state", NULL, &st);   /* the admin API still answers */
	assert_int_equal(st, 200);
	assert_int_equal(json_integer_value(jpath(j, "aggregator", "status")), 503);
	json_decref(j);
	change(&plant, "/sim/aggregator", "{\"status\":500}");
	json_decref(reading_as(&plant, KEY, PLANT_ID, &st));
	assert_int_equal(st, 500);

	/* a slow aggregator answers after the delay */
	change(&plant, "/sim/aggregator", "{\"status\":200,\"delay_ms\":600}");
	t0 = hive_mono_ms();
	r = reading(&plant);
	assert_true(hive_mono_ms() - t0 >= 550);
	json_decref(r);

	j = admin(&plant, "POST", "/sim/aggregator", "{\"status\":404}", &st);
	assert_int_equal(st, 400);
	json_decref(j);
	change(&plant, "/sim/reset", NULL);
	t0 = hive_mono_ms();
	r = reading(&plant);
	assert_true(hive_mono_ms() - t0 < 500);
	json_decref(r);
}

static void test_zero_glitch(void **state)
{
	modbus_t *mb = mb_open(plant.modbus, MB_UNIT);
	uint16_t regs[2];
	json_t *r, *st;

	(void)state;
	plant_reset();
	assert_non_null(mb);
	change(&plant, "/sim/zero", "{\"seconds\":1.5}");
	r = reading(&plant);
	assert_true(total(r, "generation_mw") == 0);
	assert_true(source_mw(r, "generation", "gen_a") == 0);
	assert_string_equal(source_status(r, "generation", "gen_a"), "success");
	assert_true(near(total(r, "consumption_mw"), 0.1, 1e-9));
	assert_true(near(total(r, "exported_mw"), -0.1, 1e-9));
	json_decref(r);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), 2);
	assert_int_equal(bits32(regs, "abcd"), 0);
	st = admin(&plant, "GET", "/sim/state", NULL, NULL);
	assert_int_equal(json_integer_value(jpath(st, "generation", "actual_w")), 500000);
	assert_int_equal(json_integer_value(jpath(st, "generation", "reported_w")), 0);
	json_decref(st);
	tl_sleep_ms(1700);
	r = reading(&plant);
	assert_true(near(total(r, "generation_mw"), 0.5, 1e-9));
	json_decref(r);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), 2);
	assert_int_equal(bits32(regs, "abcd"), 500000);

	/* the consumption feed, until cleared */
	change(&plant, "/sim/zero", "{\"feed\":\"consumption\"}");
	r = reading(&plant);
	assert_true(total(r, "consumption_mw") == 0);
	assert_true(near(total(r, "generation_mw"), 0.5, 1e-9));
	json_decref(r);
	change(&plant, "/sim/zero", "{\"on\":false}");
	r = reading(&plant);
	assert_true(near(total(r, "consumption_mw"), 0.1, 1e-9));
	json_decref(r);
	mb_close(mb);
}

static void test_modbus_layouts(void **state)
{
	const double gen = 123456;
	const double scales[] = { 10, 10, 1, 0.1, 1000 };   /* per type */
	int runs = 0;

	(void)state;
	for (int t = 0; t < 5; t++) {
		for (int o = 0; o < 4; o++) {
			struct proc p;
			char reg[16], scale[32];
			bool input = (t + o) % 2;
			int addr = 100 + t * 40 + o * 7, words = t < 2 ? 1 : 2;
			const char *extra[] = {
				"--api-key", KEY, "--generation-w", "123456",
				"--modbus-table", input ? "input" : "holding",
				"--modbus-register", reg, "--modbus-type", types[t],
				"--modbus-order", orders[o], "--modbus-scale", scale, NULL,
			};
			uint16_t regs[2] = { 0, 0 };
			modbus_t *mb;
			json_t *st, *sregs;
			double v;

			snprintf(reg, sizeof(reg), "%d", addr);
			snprintf(scale, sizeof(scale), "%g", scales[t]);
			assert_int_equal(plant_start(&p, true, extra), 0);
			mb = mb_open(p.modbus, 1);
			assert_non_null(mb);
			assert_int_equal(mb_read(mb, input, addr, words, regs), words);
			v = decode(regs, types[t], orders[o]);
			if (t == 4) {
				assert_true(near(v * scales[t], gen, 0.01));
				assert_true(near(libmodbus_float(regs, orders[o]), v, 0));
			} else {
				assert_true(near(v, round(gen / scales[t]), 0));
			}
			/* the state shows the same registers */
			st = admin(&p, "GET", "/sim/state", NULL, NULL);
			sregs = jpath(st, "modbus", "registers");
			assert_int_equal(json_array_size(sregs), words);
			for (int i = 0; i < words; i++)
				assert_int_equal(json_integer_value(json_array_get(sregs, (size_t)i)),
						 regs[i]);
			assert_string_equal(jstr(json_object_get(st, "modbus"), "type", NULL), types[t]);
			json_decref(st);

			/* and follow the plant */
			change(&p, "/sim/generation", "{\"w\":54321}");
			assert_int_equal(mb_read(mb, input, addr, words, regs), words);
			v = decode(regs, types[t], orders[o]);
			if (t == 4)
				assert_true(near(v * scales[t], 54321, 0.01));
			else
				assert_true(near(v, round(54321 / scales[t]), 0));
			mb_close(mb);
			assert_true(clean_exit(tl_sim_stop(&p.sim, false)));
			runs++;
		}
	}
	assert_int_equal(runs, 20);
}

static void test_modbus_errors(void **state)
{
	modbus_t *mb, *other;
	uint16_t regs[4];
	struct proc p;
	const char *extra[] = {
		"--api-key", KEY, "--generation-w", "500000", "--modbus-type", "u16", NULL,
	};

	(void)state;
	plant_reset();
	mb = mb_open(plant.modbus, MB_UNIT);
	assert_non_null(mb);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), 2);
	/* outside the block, the other table: illegal data address */
	assert_int_equal(mb_read(mb, false, MB_REG + 1, 2, regs), -1);
	assert_int_equal(errno, EMBXILADD);
	assert_int_equal(mb_read(mb, false, MB_REG - 1, 1, regs), -1);
	assert_int_equal(errno, EMBXILADD);
	assert_int_equal(mb_read(mb, true, MB_REG, 2, regs), -1);
	assert_int_equal(errno, EMBXILADD);
	/* a meter is read-only */
	assert_int_equal(modbus_write_register(mb, MB_REG, 7), -1);
	assert_int_equal(errno, EMBXILFUN);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), 2);
	assert_int_equal(bits32(regs, "abcd"), 500000);
	mb_close(mb);
	/* another unit id: gateway target failed; 255 is anyone */
	other = mb_open(plant.modbus, 9);
	assert_int_equal(mb_read(other, false, MB_REG, 2, regs), -1);
	assert_int_equal(errno, EMBXGTAR);
	mb_close(other);
	other = mb_open(plant.modbus, 255);
	assert_int_equal(mb_read(other, false, MB_REG, 2, regs), 2);
	mb_close(other);

	/* an integer saturates at its type's range */
	assert_int_equal(plant_start(&p, true, extra), 0);
	mb = mb_open(p.modbus, 1);
	assert_int_equal(mb_read(mb, false, 0, 1, regs), 1);
	assert_int_equal(regs[0], 65535);
	mb_close(mb);
	assert_true(clean_exit(tl_sim_stop(&p.sim, false)));
}

static void test_modbus_faults(void **state)
{
	modbus_t *mb, *held;
	uint16_t regs[2];
	json_t *st, *j;
	long status;

	(void)state;
	plant_reset();
	held = mb_open(plant.modbus, MB_UNIT);
	assert_non_null(held);

	change(&plant, "/sim/modbus", "{\"mode\":\"exception\"}");
	mb = mb_open(plant.modbus, MB_UNIT);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), -1);
	assert_int_equal(errno, EMBXSFAIL);
	mb_close(mb);
	change(&plant, "/sim/modbus", "{\"mode\":\"exception\",\"exception\":6}");
	mb = mb_open(plant.modbus, MB_UNIT);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), -1);
	assert_int_equal(errno, EMBXSBUSY);
	mb_close(mb);

	/* silent: the request is taken and never answered */
	change(&plant, "/sim/modbus", "{\"mode\":\"silent\"}");
	mb = mb_open(plant.modbus, MB_UNIT);
	modbus_set_response_timeout(mb, 0, 300000);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), -1);
	assert_int_equal(errno, ETIMEDOUT);
	mb_close(mb);

	/* closed: refused, and the connection held so far is gone */
	change(&plant, "/sim/modbus", "{\"mode\":\"closed\"}");
	assert_null(mb_open(plant.modbus, MB_UNIT));
	assert_int_equal(mb_read(held, false, MB_REG, 2, regs), -1);
	mb_close(held);
	st = admin(&plant, "GET", "/sim/state", NULL, NULL);
	assert_string_equal(jstr(json_object_get(st, "modbus"), "mode", NULL), "closed");
	assert_true(json_is_false(jpath(st, "modbus", "listening")));
	json_decref(st);

	j = admin(&plant, "POST", "/sim/modbus", "{\"mode\":\"broken\"}", &status);
	assert_int_equal(status, 400);
	json_decref(j);

	/* back: the same port answers again */
	change(&plant, "/sim/modbus", "{\"mode\":\"ok\"}");
	mb = mb_open(plant.modbus, MB_UNIT);
	assert_non_null(mb);
	assert_int_equal(mb_read(mb, false, MB_REG, 2, regs), 2);
	assert_int_equal(bits32(regs, "abcd"), 500000);
	mb_close(mb);
	assert_true(count_in_log(plant.sim.log, "admin change=modbus mode=closed") == 1);
}

static void test_admin_errors(void **state)
{
	static const char *const bad[][2] = {
		{ "/sim/generation", "{\"w\":\"lots\"}" },
		{ "/sim/generation", "{\"w\":-1}" },
		{ "/sim/generation", "{}" },
		{ "/sim/generation", "not json" },
		{ "/sim/ramp", "{\"w\":1000}" },
		{ "/sim/drop", "{\"percent\":0}" },
		{ "/sim/drop", "{\"percent\":150}" },
		{ "/sim/noise", "{\"percent\":80}" },
		{ "/sim/confidence", "{\"score\":1.5}" },
		{ "/sim/zero", "{\"feed\":\"both\"}" },
		{ "/sim/stale", "{\"stale\":\"yes\"}" },
		{ "/sim/aggregator", "{\"delay_ms\":-5}" },
	};
	json_t *j;
	long st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = admin(&plant, "POST", bad[i][0], bad[i][1], &st);
		if (st != 400)
			fprintf(stderr, "POST %s %s: %ld\n", bad[i][0], bad[i][1], st);
		assert_int_equal(st, 400);
		assert_true(json_is_string(json_object_get(j, "error")));
		json_decref(j);
	}
	j = admin(&plant, "GET", "/sim/generation", NULL, &st);
	assert_int_equal(st, 405);
	json_decref(j);
	j = admin(&plant, "POST", "/sim/state", "{}", &st);
	assert_int_equal(st, 405);
	json_decref(j);
	j = admin(&plant, "GET", "/sim/nothing", NULL, &st);
	assert_int_equal(st, 404);
	json_decref(j);
	/* nothing changed */
	j = admin(&plant, "GET", "/sim/state", NULL, &st);
	assert_int_equal(st, 200);
	assert_int_equal(json_integer_value(jpath(j, "generation", "target_w")), GEN_W);
	json_decref(j);
}

/* minersim's helpers for the consumption test */
static int fleet_start(struct proc *m)
{
	char port[16], admin_addr[64], miners[16];
	const char *argv[] = { "--subnet", FLEET_SUBNET, "--miners", miners, "--port", port,
			       "--admin", admin_addr, "--seed", "11", "--reboot-seconds", "2",
			       "--init-seconds", "1", NULL };
	int fw_port;

	memset(m, 0, sizeof(*m));
	fw_port = tl_free_port();
	m->admin = other_port(fw_port, -1);
	snprintf(port, sizeof(port), "%d", fw_port);
	snprintf(admin_addr, sizeof(admin_addr), "127.0.0.1:%d", m->admin);
	snprintf(miners, sizeof(miners), "%d", FLEET_MINERS);
	return tl_sim_start(&m->sim, "minersim", "plantsim-fleet", argv);
}

static double fleet_power(const struct proc *m)
{
	char url[128];
	long st;
	json_t *j;
	double w;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sim/fleet", m->admin);
	j = tl_http_json("GET", url, NULL, NULL, &st);
	assert_int_equal(st, 200);
	w = json_number_value(json_object_get(j, "power_w"));
	json_decref(j);
	return w;
}

static double plant_consumption_w(const struct proc *p)
{
	json_t *r = reading(p);
	double w = total(r, "consumption_mw") * 1e6;

	json_decref(r);
	return w;
}

struct follow {
	const struct proc *p;
	double lo, hi;
};

static bool consumption_within(void *arg)
{
	struct follow *f = arg;
	double w = plant_consumption_w(f->p);

	return w >= f->lo && w <= f->hi;
}

static void test_minersim_consumption(void **state)
{
	struct proc fleet, p;
	char url[128], minersim_url[64], path[128];
	const char *extra[] = {
		"--api-key", KEY, "--containers", "3", "--minersim", minersim_url,
		"--minersim-interval-ms", "300", NULL,
	};
	double before, truth, w;
	json_t *all, *m, *r, *st, *j;
	struct follow f;
	size_t i;
	long status;

	(void)state;
	assert_int_equal(fleet_start(&fleet), 0);
	snprintf(minersim_url, sizeof(minersim_url), "http://127.0.0.1:%d", fleet.admin);
	assert_int_equal(plant_start(&p, false, extra), 0);

	/* the containers draw what the fleet draws (minersim's noise is ±1 %) */
	truth = fleet_power(&fleet);
	assert_true(truth > FLEET_MINERS * 1000);
	before = plant_consumption_w(&p);
	assert_true(near(before, truth, truth * 0.03));
	r = reading(&p);
	assert_int_equal(json_object_size(json_object_get(r, "consumption")), 3);
	{
		double c1 = source_mw(r, "consumption", "container_1") * 1e6;
		double c3 = source_mw(r, "consumption", "container_3") * 1e6;
		assert_true(near(c1, total(r, "consumption_mw") * 1e6 / 3, 1.0));
		assert_true(near(c3, total(r, "consumption_mw") * 1e6 / 3, 1.0));
	}
	json_decref(r);
	st = admin(&p, "GET", "/sim/state", NULL, NULL);
	assert_string_equal(jstr(json_object_get(st, "consumption"), "source", NULL), "minersim");
	assert_true(json_is_true(jpath(st, "consumption", "meter_ok")));
	assert_true(json_integer_value(jpath(jpath(st, "consumption", "minersim"), "polls", NULL)) >= 1);
	json_decref(st);
	/* it cannot be set by hand */
	j = admin(&p, "POST", "/sim/consumption", "{\"w\":5}", &status);
	assert_int_equal(status, 409);
	json_decref(j);

	/* every miner reboots: 30 W each while gone */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sim/miners", fleet.admin);
	all = tl_http_json("GET", url, NULL, NULL, &status);
	assert_int_equal(json_array_size(all), FLEET_MINERS);
	json_array_foreach(all, i, m) {
		snprintf(path, sizeof(path), "http://127.0.0.1:%d/sim/miners/%s/reboot", fleet.admin,
			 json_string_value(json_object_get(m, "mac")));
		json_decref(tl_http_json("POST", path, NULL, NULL, &status));
		assert_int_equal(status, 200);
	}
	json_decref(all);
	f = (struct follow){ .p = &p, .lo = 0, .hi = FLEET_MINERS * 30 + 1 };
	assert_int_equal(tl_wait_until(1500, consumption_within, &f), 0);
	w = plant_consumption_w(&p);
	assert_true(near(w, FLEET_MINERS * 30, 1));
	/* and back up once they mine again */
	f = (struct follow){ .p = &p, .lo = before * 0.9, .hi = before * 1.1 };
	assert_int_equal(tl_wait_until(8000, consumption_within, &f), 0);

	/* minersim gone: the last value stays, the state says the meter failed */
	assert_true(clean_exit(tl_sim_stop(&fleet.sim, false)));
	w = plant_consumption_w(&p);
	tl_sleep_ms(1000);
	st = admin(&p, "GET", "/sim/state", NULL, NULL);
	assert_true(json_is_false(jpath(st, "consumption", "meter_ok")));
	assert_true(json_integer_value(jpath(jpath(st, "consumption", "minersim"), "errors", NULL)) >= 1);
	json_decref(st);
	assert_true(near(plant_consumption_w(&p), w, 0));
	/* said once, not once a poll */
	assert_int_equal(count_in_log(p.sim.log, "poll_failed"), 1);
	assert_true(clean_exit(tl_sim_stop(&p.sim, false)));
}

static void test_key_file_and_check(void **state)
{
	struct proc p;
	char *dir = tl_tmpdir("plantsim-key"), keyfile[512], log[512], *text;
	const char *extra[] = { "--api-key-file", keyfile, NULL };
	const char *check[] = { tl_bin("plantsim"), "-n", "--api-key", "x", NULL };
	long st;
	pid_t pid;
	int status;

	(void)state;
	snprintf(keyfile, sizeof(keyfile), "%s/key", dir);
	assert_int_equal(tl_write_file(keyfile, "pk-from-a-file\n"), 0);
	assert_int_equal(plant_start(&p, false, extra), 0);
	json_decref(reading_as(&p, "pk-from-a-file", PLANT_ID, &st));
	assert_int_equal(st, 200);
	json_decref(reading_as(&p, KEY, PLANT_ID, &st));
	assert_int_equal(st, 401);
	text = tl_read_file(p.sim.log);
	assert_null(strstr(text, "pk-from-a-file"));
	free(text);
	assert_true(clean_exit(tl_sim_stop(&p.sim, false)));

	snprintf(log, sizeof(log), "%s/check.log", dir);
	pid = tl_spawn(log, (char *const *)check, NULL);
	status = tl_stop(pid, 0, 5000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tl_rmrf(dir);
	free(dir);
}

static void test_refuses_non_loopback(void **state)
{
	/* TEST-NET ranges and the wildcard: never bound, never contacted */
	static const char *const bad[][3] = {
		{ "--http", "0.0.0.0:18090", "loopback" },
		{ "--http", "192.0.2.10:18090", "loopback" },
		{ "--modbus", "198.51.100.7:502", "loopback" },
		{ "--modbus", "0.0.0.0:1502", "loopback" },
		{ "--minersim", "http://203.0.113.5:18081", "loopback" },
		{ "--minersim", "http://localhost:18081", "loopback" },
		{ "--api-key-file", "/nonexistent/key", "api-key-file" },
	};
	char *dir = tl_tmpdir("plantsim-bad"), log[512], *text;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = { tl_bin("plantsim"), "--api-key", "k", bad[i][0], bad[i][1],
				       NULL };
		int status;
		pid_t pid;

		snprintf(log, sizeof(log), "%s/log%zu", dir, i);
		pid = tl_spawn(log, (char *const *)argv, NULL);
		status = tl_stop(pid, 0, 5000);   /* signal 0: just wait */
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
		text = tl_read_file(log);
		if (!strstr(text, bad[i][2]))
			fprintf(stderr, "%s %s: %s\n", bad[i][0], bad[i][1], text);
		assert_non_null(strstr(text, bad[i][2]));
		free(text);
	}
	{
		/* no key at all */
		const char *argv[] = { tl_bin("plantsim"), "--http", "127.0.0.1:1", NULL };
		int status;
		pid_t pid;

		snprintf(log, sizeof(log), "%s/nokey", dir);
		pid = tl_spawn(log, (char *const *)argv, NULL);
		status = tl_stop(pid, 0, 5000);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
		text = tl_read_file(log);
		assert_non_null(strstr(text, "API key is required"));
		free(text);
	}
	tl_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reading_document),
		cmocka_unit_test(test_auth_and_errors),
		cmocka_unit_test(test_generation_ramp_drop),
		cmocka_unit_test(test_noise_reproducible),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_confidence),
		cmocka_unit_test(test_source_failure),
		cmocka_unit_test(test_aggregator_failure),
		cmocka_unit_test(test_zero_glitch),
		cmocka_unit_test(test_modbus_errors),
		cmocka_unit_test(test_modbus_faults),
		cmocka_unit_test(test_admin_errors),
		/* these start runs of their own */
		cmocka_unit_test(test_modbus_layouts),
		cmocka_unit_test(test_minersim_consumption),
		cmocka_unit_test(test_key_file_and_check),
		cmocka_unit_test(test_refuses_non_loopback),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("plantsim", tests, setup, teardown);
}
