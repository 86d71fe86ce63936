/* test_apid_history — the storage that fits: the packed chip formats, the
 * roll-ups against the raw rows they fold, retention by size and the space
 * given back, the upgrade of a schema-4 database in place, and the history
 * endpoints across the raw/roll-up boundary (through bin/apid).
 *
 * test_storage_figures prints the figures docs/apid.md (Storage) quotes:
 * one miner's day written through the real writer, then its rows copied
 * for 20 miners in the order a farm writes them, measured with dbstat. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "../../apid/apply.h"
#include "../../apid/chips.h"
#include "../../apid/event.h"
#include "../../apid/retention.h"
#include "../../apid/store.h"
#include "../../apid/traffic.h"
#include "../../apid/writer.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL
#define CHIPS   126           /* an S19j Pro's chains */
#define MODEL_MINERS 20       /* the storage model's miners */

struct fx {
	char *dir;
	char path[1024];
	struct apid_traffic *in;
	struct apid_writer *w;
	struct apid_source *src;
	unsigned long long seq;
	uint64_t pushed;
	sqlite3 *ro;
	unsigned rng;
};

/* ------------------------------------------------------------ helpers */

static struct apid_writer_opts opts(struct fx *f)
{
	struct apid_writer_opts o = {
		.db_path = f->path, .batch_max = 500, .batch_ms = 50, .queue_max = 20000,
		.status_raw_hours = 6, .telemetry_raw_hours = 6, .minute_days = 7,
		.status_days = 365, .telemetry_days = 7, .audit_days = 365, .power_days = 90,
		.prune_batch = 2000, .prune_every_ms = 100, .prune_first_ms = 600000,
		.reserve_pages = -1, .traffic = f->in,
	};
	return o;
}

static void start(struct fx *f, const struct apid_writer_opts *o)
{
	char err[512] = "";

	f->w = apid_writer_start(o, err, sizeof(err));
	if (!f->w)
		fail_msg("writer: %s", err);
	f->ro = apid_store_open_readonly(f->path, err, sizeof(err));
	assert_non_null(f->ro);
}

static void stop(struct fx *f)
{
	sqlite3_close(f->ro);
	f->ro = NULL;
	apid_writer_stop(f->w);
	f->w = NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->dir = tl_tmpdir("history");
	snprintf(f->path, sizeof(f->path), "%s/ph.db", f->dir);
	f->in = apid_traffic_new();
	f->src = apid_traffic_source(f->in, "test/host/1");
	f->rng = 7;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->w)
		stop(f);
	apid_traffic_free(f->in);
	tl_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* A small deterministic generator: the same day every run. */
static double rnd(struct fx *f)
{
	f->rng = f->rng * 1103515245u + 12345u;
	return (double)((f->rng >> 8) & 0xffff) / 65536.0;
}

static void push_body(struct fx *f, const char *topic, long long ts, json_t *body)
{
	struct hive_envelope env;
	struct apid_event ev;
	enum apid_reject why;
	char err[256];

	memset(&env, 0, sizeof(env));
	snprintf(env.topic, sizeof(env.topic), "%s", topic);
	snprintf(env.src, sizeof(env.src), "test/host/1");
	env.v = 1;
	env.boot = 1;
	env.seq = ++f->seq;
	env.ts = ts;
	env.body = body;
	if (apid_event_decode(&env, &ev, &why, err, sizeof(err)) < 0)
		fail_msg("%s: %s", topic, err);
	assert_int_equal(apid_writer_push(f->w, &env, &ev, f->src), 0);
	f->pushed++;
}

static void push_text(struct fx *f, const char *topic, long long ts, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void push_text(struct fx *f, const char *topic, long long ts, const char *fmt, ...)
{
	char buf[4096];
	json_error_t je;
	json_t *body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	body = json_loads(buf, 0, &je);
	if (!body)
		fail_msg("bad test json: %s: %s", je.text, buf);
	push_body(f, topic, ts, body);
}

static void seen(struct fx *f, const char *mac, const char *model)
{
	push_text(f, HIVE_TOPIC_MINER_SEEN, hive_wall_ms(),
		  "{\"mac\":\"%s\",\"ip\":\"127.0.0.%d\",\"subnet\":\"127.0.0.0/24\","
		  "\"model\":\"%s\",\"hostname\":\"m\"}", mac, (int)(f->seq % 250) + 1, model);
}

/* A status as pollerd publishes an S19: three chains, four fans, pools.
 * hr < 0: no hashrate in it; power < 0: no power. */
static json_t *status_body(const char *mac, double hr, int power, const char *state)
{
	json_t *chains = json_array(), *b;

	for (int c = 0; c < 3; c++)
		json_array_append_new(chains, json_pack(
			"{s:i,s:s,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "id", c, "state", "mining",
			"hr_rt_ghs", 45123.5 + c, "freq_mhz", 490, "voltage", 1380,
			"chip_temp_max", 71, "pcb_temp_max", 60, "red", 0, "orange", 1, "grey", 0,
			"hw_errors", 12));
	b = json_pack("{s:I,s:s,s:s,s:s,s:i,s:s,s:f,s:f,s:i,s:i,s:b,s:i,"
		      "s:[iiii],s:i,s:o,s:{s:i,s:i,s:i,s:i,s:s,s:s}}",
		      "job", (json_int_t)0, "mac", mac, "ip", "127.0.0.1", "state", state,
		      "state_time", 86400, "preset", "3300", "hr_average_ghs", 135000.1,
		      "hr_nominal_ghs", 136000.0, "chip_temp_max", 71, "pcb_temp_max", 60,
		      "power_metered", 1, "fan_duty", 70, "fans", 5400, 5400, 5300, 5350,
		      "hw_errors", 36, "chains", chains,
		      "pools", "total", 3, "working", 1, "accepted", 12345, "rejected", 3,
		      "url", "stratum+tcp://127.0.0.1:3333", "user", "farm.worker1");
	if (hr >= 0)
		json_object_set_new(b, "hr_realtime_ghs", json_real(hr));
	if (power >= 0)
		json_object_set_new(b, "power_w", json_integer(power));
	return b;
}

/* A /chains telemetry result: three chains of CHIPS chips, values as a
 * Vnish S19j Pro gives them (hr to 0.01 GH/s, temp to 0.1 °C). */
static json_t *telemetry_body(struct fx *f, const char *mac, int sample)
{
	json_t *chains = json_array();

	for (int c = 0; c < 3; c++) {
		json_t *hr = json_array(), *fr = json_array(), *vo = json_array(),
		       *te = json_array(), *er = json_array();
		char grade[CHIPS + 1], thr[CHIPS + 1];

		for (int i = 0; i < CHIPS; i++) {
			json_array_append_new(hr, json_real(round((400 + rnd(f) * 12) * 100) / 100));
			json_array_append_new(fr, json_integer(675));
			json_array_append_new(vo, json_integer(13800 - 10 * (i % 2)));
			json_array_append_new(te, json_real(round((60 + rnd(f) * 9) * 10) / 10));
			json_array_append_new(er, json_integer(sample / 200 + i % 5));
			grade[i] = "ggggggor"[(int)(rnd(f) * 8)];
			thr[i] = rnd(f) < 0.02 ? '1' : '0';
		}
		grade[CHIPS] = thr[CHIPS] = '\0';
		json_array_append_new(chains, json_pack(
			"{s:i,s:s,s:f,s:f,s:f,s:{s:o,s:o,s:o,s:o,s:o,s:s,s:s}}", "id", c + 1,
			"state", "mining", "hr_realtime_ghs", 30301.0 + c, "hr_nominal_ghs", 31000.0,
			"freq", 675.5, "chips", "hr", hr, "freq", fr, "volt", vo, "temp", te,
			"errs", er, "grade", grade, "throttled", thr));
	}
	return json_pack("{s:I,s:s,s:s,s:o}", "job", (json_int_t)0, "mac", mac, "source", "chains",
			 "chains", chains);
}

static bool all_done(void *arg)
{
	struct fx *f = arg;
	struct apid_writer_stats s;

	apid_writer_get_stats(f->w, &s);
	return s.stored + s.rejected == f->pushed && s.depth == 0;
}

static void settle(struct fx *f)
{
	if (tl_wait_until(30000, all_done, f) < 0)
		fail_msg("writer did not settle");
}

static long long qint_db(sqlite3 *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long qint_db(sqlite3 *db, const char *fmt, ...)
{
	char sql[2048];
	sqlite3_stmt *st;
	long long v = -999;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void exec_db(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%.200s: %s", sql, msg ? msg : "?");
}

/* Every status folded, every complete fleet minute totalled, every
 * finished hour of telemetry summarised. */
static bool rolled_up(void *arg)
{
	struct fx *f = arg;
	long long now = hive_wall_ms();

	return qint_db(f->ro, "SELECT (SELECT last_id FROM rollups WHERE name = 'statuses') ="
		       " coalesce((SELECT max(id) FROM statuses), 0)") == 1 &&
	       qint_db(f->ro, "SELECT (SELECT done_ms FROM rollups WHERE name = 'fleet') + 60000 >"
		       " (SELECT done_ms FROM rollups WHERE name = 'statuses')") == 1 &&
	       qint_db(f->ro, "SELECT done_ms + %lld > %lld OR NOT EXISTS (SELECT 1 FROM telemetry"
		       " WHERE ts_ms >= done_ms) FROM rollups WHERE name = 'telemetry'",
		       HOUR_MS + 300000, now) == 1;
}

/* Roll-ups and retention start: the tests queue their rows first (a row
 * queued after its minute was totalled for the fleet would be late). */
static void kick(struct fx *f, const struct apid_writer_opts *o)
{
	apid_writer_configure(f->w, o);
}

static void wait_rolled(struct fx *f)
{
	if (tl_wait_until(60000, rolled_up, f) < 0)
		fail_msg("roll-ups did not catch up: statuses %lld/%lld (done %lld), fleet %lld,"
			 " telemetry %lld, now %lld", qint_db(f->ro, "SELECT last_id FROM rollups"
			 " WHERE name = 'statuses'"), qint_db(f->ro, "SELECT max(id) FROM statuses"),
			 qint_db(f->ro, "SELECT done_ms FROM rollups WHERE name = 'statuses'"),
			 qint_db(f->ro, "SELECT done_ms FROM rollups WHERE name = 'fleet'"),
			 qint_db(f->ro, "SELECT done_ms FROM rollups WHERE name = 'telemetry'"),
			 hive_wall_ms());
}

/* Bytes of a table and its indexes (dbstat), and its rows. */
static long long table_bytes(sqlite3 *db, const char *schema, const char *table)
{
	return qint_db(db, "SELECT coalesce(sum(d.pgsize), 0) FROM dbstat('%s') d"
		       " JOIN %s.sqlite_master m ON m.name = d.name WHERE m.tbl_name = '%s'",
		       schema, schema, table);
}

static double mb(long long b)
{
	return (double)b / 1e6;
}

/* ------------------------------------------------------------ chips */

static void test_chips_packed(void **state)
{
	struct apid_chip in[CHIPS], out[CHIPS];
	unsigned char packed[APID_CHIPS_PACKED_MAX(CHIPS)], records[CHIPS * APID_CHIP_BYTES];
	struct fx f = { .rng = 3 };
	size_t n;
	json_t *a, *b;
	char *sa, *sb;

	(void)state;
	for (int i = 0; i < CHIPS; i++) {
		in[i].hr_ghs = (float)(round((400 + rnd(&f) * 12) * 100) / 100);
		in[i].freq = 675;
		in[i].volt = 13800 - 10 * (i % 2);
		in[i].temp = (float)(round((60 + rnd(&f) * 9) * 10) / 10);
		in[i].grade = "gor?"[i % 4];
		in[i].throttled = i % 9 == 0;
		in[i].errs = (unsigned)(i % 5) + (i == 7 ? 4000000000u : 0);
	}
	n = apid_chips_pack_columns(in, CHIPS, packed, sizeof(packed));
	assert_true(n > 0);
	printf("figure: chips of one %d-chip chain: packed columns %zu bytes, 16-byte records %d"
	       " bytes\n", CHIPS, n, CHIPS * APID_CHIP_BYTES);
	assert_true(n < CHIPS * 7);
	assert_int_equal(apid_chips_unpack_any(packed, n, APID_CHIPS_PACKED, out, CHIPS), CHIPS);
	for (int i = 0; i < CHIPS; i++) {
		assert_true(fabsf(out[i].hr_ghs - in[i].hr_ghs) < 0.006f);
		assert_int_equal(out[i].freq, in[i].freq);
		assert_int_equal(out[i].volt, in[i].volt);
		assert_true(fabsf(out[i].temp - in[i].temp) < 0.051f);
		assert_int_equal(out[i].grade, in[i].grade);
		assert_int_equal(out[i].throttled, in[i].throttled);
		assert_int_equal(out[i].errs, in[i].errs);
	}
	/* Both formats read to the same JSON (hr to 0.01 GH/s). */
	apid_chips_pack(in, CHIPS, records);
	a = apid_chips_json_any(packed, n, APID_CHIPS_PACKED);
	b = apid_chips_json_any(records, sizeof(records), APID_CHIPS_RECORDS);
	assert_non_null(a);
	assert_non_null(b);
	sa = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(7));
	sb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(7));
	assert_string_equal(sa, sb);
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
	/* Broken blobs are refused, not read past their end. */
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(apid_chips_unpack_any(packed, cut, APID_CHIPS_PACKED, out, CHIPS),
				 -1);
	packed[n] = 0;
	assert_int_equal(apid_chips_unpack_any(packed, n + 1, APID_CHIPS_PACKED, out, CHIPS), -1);
	assert_null(apid_chips_json_any(packed, n - 1, APID_CHIPS_PACKED));
	/* A run longer than the chips left. */
	assert_int_equal(apid_chips_unpack_any("\x02\x07", 2, APID_CHIPS_PACKED, out, CHIPS), -1);
	/* Too small a buffer: 0 bytes written. */
	assert_int_equal(apid_chips_pack_columns(in, CHIPS, packed, 10), 0);
	/* No chips. */
	n = apid_chips_pack_columns(in, 0, packed, sizeof(packed));
	assert_int_equal(n, 1);
	assert_int_equal(apid_chips_unpack_any(packed, n, APID_CHIPS_PACKED, out, CHIPS), 0);
}

/* An hour's summary: means, the hottest reading, errors added across a
 * counter reset, the worst grade, samples throttled. */
static void test_chip_summary(void **state)
{
	struct apid_chip s1[2] = { { 100.0f, 500, 1300, 60.0f, 'g', false, 10 },
				   { 200.0f, 500, 1300, 70.0f, '?', true, 5 } };
	struct apid_chip s2[2] = { { 110.0f, 520, 1310, 64.0f, 'o', false, 12 },
				   { 220.0f, 500, 1300, 75.5f, 'g', true, 1 } };
	struct apid_chip s3[2] = { { 120.0f, 540, 1320, 62.0f, 'g', true, 15 },
				   { 240.0f, 500, 1300, 71.0f, 'g', false, 4 } };
	struct apid_chip_acc acc = { 0 };
	unsigned char *blob;
	long long samples = 0;
	size_t len = 0;
	json_t *j;
	char *s;

	(void)state;
	assert_int_equal(apid_chips_acc_add(&acc, s1, 2), 0);
	assert_int_equal(apid_chips_acc_add(&acc, s2, 2), 0);
	assert_int_equal(apid_chips_acc_add(&acc, s3, 2), 0);
	blob = apid_chips_acc_pack(&acc, &len);
	assert_non_null(blob);
	j = apid_chips_summary_json(blob, len, &samples);
	assert_non_null(j);
	assert_int_equal(samples, 3);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(7));
	/* Chip 2: 5 → 1 (a restart: 1 added) → 4 (3 added). */
	assert_string_equal(s, "{\"errs\":[5,4],\"freq\":[520,500],\"grade\":\"og\","
			       "\"hr\":[110.0,220.0],\"temp\":[62.0,72.2],\"temp_max\":[64.0,75.5],"
			       "\"throttled\":[1,2],\"volt\":[1310,1300]}");
	free(s);
	json_decref(j);
	assert_null(apid_chips_summary_json(blob, len - 1, NULL));
	free(blob);
	apid_chips_acc_clear(&acc);
}

/* ------------------------------------------------------------ the v4 format */

/* A database as apid of schema 4 wrote it: the migrations up to 4, then
 * rows as its writer inserted them (JSON columns encoded by libhive as
 * apply.c does; chips as 16-byte records). */
static sqlite3 *v4_open(const char *path)
{
	sqlite3 *db;
	char err[512];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_db(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
	if (apid_store_migrate(db, 4, err, sizeof(err)) < 0)
		fail_msg("v4: %s", err);
	assert_int_equal(apid_store_version(db), 4);
	return db;
}

static void v4_miner(sqlite3 *db, const char *mac, long long ts)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO miners(mac, ip, last_ip, subnet, model, online,"
		 " first_seen_ms, last_seen_ms, api_key) VALUES('%s', '127.0.0.9', '127.0.0.9',"
		 " '127.0.0.0/24', 's19', 1, %lld, %lld, 'k')", mac, ts, ts);
	exec_db(db, sql);
}

static void v4_status(sqlite3 *db, const char *mac, long long ts, json_t *body)
{
	static const char sql[] =
		"INSERT INTO statuses(mac, ts_ms, state, state_time, preset, hr_realtime_ghs,"
		" hr_average_ghs, hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w,"
		" power_metered, fan_duty, fans, chains, pools, hw_errors, state_description)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
		" ?18)";
	struct hive_msg_status_result e;
	char err[256];
	sqlite3_stmt *st;
	json_t *j;

	if (hive_msg_decode(HIVE_MSG_STATUS_RESULT, body, &e, err, sizeof(err)) < 0)
		fail_msg("status: %s", err);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, e.state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, e.state_time);
	sqlite3_bind_text(st, 5, e.preset, -1, SQLITE_STATIC);
	if (!isnan(e.hr_realtime_ghs))
		sqlite3_bind_double(st, 6, e.hr_realtime_ghs);
	sqlite3_bind_double(st, 7, e.hr_average_ghs);
	sqlite3_bind_double(st, 8, e.hr_nominal_ghs);
	sqlite3_bind_int64(st, 9, llround(e.chip_temp_max));
	sqlite3_bind_int64(st, 10, llround(e.pcb_temp_max));
	if (!isnan(e.power_w))
		sqlite3_bind_int64(st, 11, llround(e.power_w));
	sqlite3_bind_int(st, 12, e.power_metered);
	sqlite3_bind_int64(st, 13, llround(e.fan_duty));
	j = hive_msg_encode_part(HIVE_MSG_STATUS_RESULT, &e, &e.fans);
	sqlite3_bind_text(st, 14, json_dumps(j, JSON_COMPACT), -1, free);
	json_decref(j);
	j = hive_msg_encode_part(HIVE_MSG_STATUS_RESULT, &e, &e.chains);
	sqlite3_bind_text(st, 15, json_dumps(j, JSON_COMPACT), -1, free);
	json_decref(j);
	j = hive_msg_encode_part(HIVE_MSG_STATUS_RESULT, &e, &e.pools);
	sqlite3_bind_text(st, 16, json_dumps(j, JSON_COMPACT), -1, free);
	json_decref(j);
	sqlite3_bind_int64(st, 17, e.hw_errors);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE miners SET last_status_id ="
					    " last_insert_rowid() WHERE mac = ?1", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	hive_msg_free(HIVE_MSG_STATUS_RESULT, &e);
}

/* One telemetry sample, chips as 16-byte records. */
static void v4_telemetry(sqlite3 *db, const char *mac, long long ts, json_t *body)
{
	struct hive_envelope env = { .v = 1 };
	struct apid_event ev;
	enum apid_reject why;
	char err[256];
	sqlite3_stmt *st;

	snprintf(env.topic, sizeof(env.topic), "%s", HIVE_TOPIC_TELEMETRY_RESULT);
	env.body = body;
	if (apid_event_decode(&env, &ev, &why, err, sizeof(err)) < 0)
		fail_msg("telemetry: %s", err);
	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO telemetry(mac, ts_ms, chain, state, hr_realtime_ghs, hr_nominal_ghs,"
		" freq, n_chips, chips) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", -1, &st, NULL),
		SQLITE_OK);
	for (size_t i = 0; i < ev.u.telemetry.n_chains; i++) {
		const struct hive_msg_chain_telemetry *c = &ev.u.telemetry.chains[i];
		struct apid_chip chips[512];
		unsigned char rec[512 * APID_CHIP_BYTES];
		int n = apid_chips_unpack_any(ev.packed[i].blob, ev.packed[i].len, APID_CHIPS_PACKED,
					      chips, 512);

		assert_true(n >= 0 && n <= 512);
		apid_chips_pack(chips, (size_t)n, rec);
		sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ts);
		sqlite3_bind_int64(st, 3, c->id);
		sqlite3_bind_text(st, 4, c->state, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 5, c->hr_realtime_ghs);
		sqlite3_bind_double(st, 6, c->hr_nominal_ghs);
		sqlite3_bind_double(st, 7, c->freq);
		sqlite3_bind_int(st, 8, n);
		sqlite3_bind_blob(st, 9, rec, n * APID_CHIP_BYTES, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE miners SET last_telemetry_ms = ?2"
					    " WHERE mac = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ts);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	apid_event_clear(&ev);
}

/* ------------------------------------------------------------ figures */

/* One miner's day, before (schema 4) and after: what a day costs, and
 * what the default retention holds per miner and for 10,000 miners. */
static void test_storage_figures(void **state)
{
	static const char *const mac = "aa:bb:cc:00:00:01";
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	/* A whole day whose last hour is summarised (5 min after it ends). */
	long long t0 = (hive_wall_ms() - 10 * MIN_MS) / HOUR_MS * HOUR_MS - DAY_MS;
	char path4[1100], model[1100], sql[2048], err[512];
	long long st4, te4, raw_st, raw_te, held, fixed = 0;
	sqlite3 *db;

	/* Before: a day of statuses every 15 s and telemetry every 60 s. */
	snprintf(path4, sizeof(path4), "%s/v4.db", f->dir);
	db = v4_open(path4);
	v4_miner(db, mac, t0);
	exec_db(db, "BEGIN");
	for (int i = 0; i < 5760; i++) {
		json_t *b = status_body(mac, 135000 + rnd(f) * 1000, 3310, "mining");

		v4_status(db, mac, t0 + i * 15000LL, b);
		json_decref(b);
	}
	for (int i = 0; i < 1440; i++) {
		json_t *b = telemetry_body(f, mac, i);

		v4_telemetry(db, mac, t0 + i * MIN_MS + 7000, b);
		json_decref(b);
	}
	exec_db(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
	st4 = table_bytes(db, "main", "statuses");
	te4 = table_bytes(db, "main", "telemetry");
	printf("figure: before (schema 4): one miner's day = %.1f MB (statuses %.1f MB, %lld B a"
	       " row; telemetry %.1f MB, %lld B a sample of 3 chains x %d chips)\n",
	       mb(st4 + te4), mb(st4), st4 / 5760, mb(te4), te4 / 1440, CHIPS);
	printf("figure: before: held at its defaults (statuses 30 d, telemetry 7 d) = %.0f MB a"
	       " miner, %.2f TB for 10,000 miners\n", mb(30 * st4 + 7 * te4),
	       (30.0 * st4 + 7.0 * te4) * 10000 / 1e12);
	sqlite3_close(db);

	/* After: the same day through the real writer (raw kept 48 h for the
	 * measure), rolled up. */
	f->rng = 7;
	o.status_raw_hours = 48;
	o.telemetry_raw_hours = 48;
	start(f, &o);
	seen(f, mac, "s19jpro");
	for (int i = 0; i < 5760; i++) {
		push_body(f, HIVE_TOPIC_STATUS_RESULT, t0 + i * 15000LL,
			  status_body(mac, 135000 + rnd(f) * 1000, 3310, "mining"));
		if (i % 4 == 0)
			push_body(f, HIVE_TOPIC_TELEMETRY_RESULT, t0 + (i / 4) * MIN_MS + 7000,
				  telemetry_body(f, mac, i / 4));
	}
	settle(f);
	kick(f, &o);
	wait_rolled(f);
	raw_st = table_bytes(f->ro, "main", "statuses");
	raw_te = table_bytes(f->ro, "main", "telemetry");
	printf("figure: after: a day of raw rows = %.1f MB (statuses %.1f MB, %lld B a row;"
	       " telemetry %.1f MB, %lld B a sample, chips packed)\n", mb(raw_st + raw_te),
	       mb(raw_st), raw_st / 5760, mb(raw_te), raw_te / 1440);
	assert_int_equal(qint_db(f->ro, "SELECT count(*) FROM status_minutes"), 1440);
	assert_int_equal(qint_db(f->ro, "SELECT count(*) FROM status_hours"), 24);
	assert_int_equal(qint_db(f->ro, "SELECT count(*) FROM telemetry_hours"), 24 * 3);
	assert_true(raw_te * 3 < te4);
	stop(f);

	/* The default retention for MODEL_MINERS miners, their rows copied
	 * from this day in time order as a farm writes them: raw 6 h, minutes
	 * 7 d, hours 365 d, chip hours 7 d. */
	snprintf(model, sizeof(model), "%s/model.db", f->dir);
	db = apid_store_open(model, err, sizeof(err));
	assert_non_null(db);
	snprintf(sql, sizeof(sql), "ATTACH '%s' AS src", f->path);
	exec_db(db, sql);
	exec_db(db, "BEGIN");
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < %d)"
		 " INSERT INTO miners(mac, model, first_seen_ms, last_seen_ms, online)"
		 " SELECT printf('aa:bb:cc:00:01:%%02x', x), 's19jpro', 1, 1, 1 FROM k",
		 MODEL_MINERS);
	exec_db(db, sql);
	exec_db(db, "CREATE TEMP TABLE mm AS SELECT num, mac FROM miners");
	fixed = qint_db(db, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
	exec_db(db, "INSERT INTO statuses(mac, ts_ms, state, state_time, preset, hr_realtime_ghs,"
		" hr_average_ghs, hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w,"
		" power_metered, fan_duty, fans, chains, pools, hw_errors, state_description)"
		" SELECT mm.mac, s.ts_ms, state, state_time, preset, hr_realtime_ghs, hr_average_ghs,"
		" hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w, power_metered, fan_duty, fans,"
		" chains, pools, hw_errors, state_description FROM src.statuses s, mm"
		" WHERE s.id > 5760 - 6 * 240 ORDER BY s.ts_ms, mm.num");
	exec_db(db, "INSERT INTO telemetry(mac, ts_ms, chain, state, hr_realtime_ghs,"
		" hr_nominal_ghs, freq, n_chips, chips, chips_format)"
		" SELECT mm.mac, t.ts_ms, chain, state, hr_realtime_ghs, hr_nominal_ghs, freq, n_chips,"
		" chips, chips_format FROM src.telemetry t, mm"
		" WHERE t.ts_ms >= (SELECT max(ts_ms) FROM src.telemetry) - 6 * 3600000"
		" ORDER BY t.ts_ms, mm.num, chain");
	exec_db(db, "WITH RECURSIVE d(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM d WHERE x < 6)"
		" INSERT INTO status_minutes SELECT s.ts_ms + d.x * 86400000, mm.num, n, mining, hr_n,"
		" hr_sum, hr_avg_n, hr_avg_sum, hr_nominal, power_n, power_sum, metered,"
		" chip_temp_max, pcb_temp_max FROM src.status_minutes s, d, mm ORDER BY 1, 2");
	exec_db(db, "WITH RECURSIVE d(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM d WHERE x < 364)"
		" INSERT INTO status_hours SELECT s.ts_ms + d.x * 86400000, mm.num, n, mining, hr_n,"
		" hr_sum, hr_avg_n, hr_avg_sum, hr_nominal, power_n, power_sum, metered,"
		" chip_temp_max, pcb_temp_max FROM src.status_hours s, d, mm ORDER BY 1, 2");
	exec_db(db, "WITH RECURSIVE d(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM d WHERE x < 6)"
		" INSERT INTO telemetry_hours SELECT t.ts_ms + d.x * 86400000, mm.num, chain, samples,"
		" state, hr_realtime_ghs, hr_nominal_ghs, freq, n_chips, chips"
		" FROM src.telemetry_hours t, d, mm ORDER BY 1, 2, 3");
	exec_db(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
	{
		static const char *const tables[] = { "statuses", "telemetry", "status_minutes",
						      "status_hours", "telemetry_hours" };
		long long b[5];

		held = 0;
		for (int i = 0; i < 5; i++) {
			b[i] = table_bytes(db, "main", tables[i]) / MODEL_MINERS;
			held += b[i];
		}
		printf("figure: after: held a miner at the defaults = %.2f MB: raw statuses 6 h"
		       " %.2f MB, raw telemetry 6 h %.2f MB, minutes 7 d %.2f MB (%lld B a row),"
		       " hours 365 d %.2f MB (%lld B a row), chip hours 7 d %.2f MB (%lld B a"
		       " chain-hour)\n", mb(held), mb(b[0]), mb(b[1]), mb(b[2]), b[2] / (7 * 1440),
		       mb(b[3]), b[3] / (365 * 24), mb(b[4]), b[4] / (7 * 24 * 3));
		printf("figure: after: the long tiers add %.0f kB a miner a day (minutes %lld,"
		       " hours %lld, chip hours %lld bytes)\n",
		       (b[2] / 7.0 + b[3] / 365.0 + b[4] / 7.0) / 1e3, b[2] / 7, b[3] / 365,
		       b[4] / 7);
	}
	printf("figure: after: 10,000 miners at the defaults = %.1f GB (was %.0f GB); the file"
	       " for %d miners %.1f MB over %.1f MB empty\n", held * 10000 / 1e9,
	       (30.0 * st4 + 7.0 * te4) * 10000 / 1e9, MODEL_MINERS,
	       mb(qint_db(db, "SELECT page_count * page_size FROM pragma_page_count,"
			  " pragma_page_size")), mb(fixed));
	assert_true(held * 10000 < 50LL * 1000 * 1000 * 1000);
	sqlite3_close(db);

	/* The real writer at the defaults: the day's raw rows beyond 6 h go
	 * (rolled up first) and their pages go back to the file system. */
	o = opts(f);
	start(f, &o);
	kick(f, &o);
	{
		struct stat sb0, sb1;
		long long until = hive_mono_ms() + 30000;

		assert_int_equal(stat(f->path, &sb0), 0);
		while (hive_mono_ms() < until &&
		       qint_db(f->ro, "SELECT count(*) FROM statuses") > 6 * 240 + 1)
			tl_sleep_ms(100);
		tl_sleep_ms(1500);     /* the vacuum and its checkpoint */
		assert_int_equal(stat(f->path, &sb1), 0);
		printf("figure: after: the writer pruned the day to 6 h raw: file %.1f MB → %.1f MB\n",
		       mb(sb0.st_size), mb(sb1.st_size));
		assert_true(qint_db(f->ro, "SELECT count(*) FROM statuses") <= 6 * 240 + 1);
		assert_true(sb1.st_size < sb0.st_size / 2);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------ roll-ups */

/* A roll-up row is exactly the aggregate of the raw rows it folds: counts
 * and sums and maxima, values missing in some statuses, states other than
 * mining, a status that arrives after its minute was folded. The fleet's
 * minutes are the sums of the miners' minute averages. */
static void test_rollups_equal_raw(void **state)
{
	static const char *const macs[] = { "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02",
					     "aa:bb:cc:00:00:03" };
	static const char *const states[] = { "mining", "mining", "auto-tuning", "failure" };
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	long long t0 = hive_wall_ms() - 3 * HOUR_MS, late_ts;
	sqlite3_stmt *st;
	int n = 0;

	o.status_raw_hours = 48;
	start(f, &o);
	seen(f, macs[0], "s19");
	seen(f, macs[1], "s19");
	seen(f, macs[2], "s21");
	for (int i = 0; i < 3 * 240; i++) {
		for (int m = 0; m < 3; m++) {
			double hr = i % 11 == 3 ? -1 : 90000 + rnd(f) * 20000;
			int power = i % 13 == 5 ? -1 : 3000 + (int)(rnd(f) * 400);

			push_body(f, HIVE_TOPIC_STATUS_RESULT, t0 + i * 15000LL + m * 1000,
				  status_body(macs[m], hr, power, states[(i + m) % 4]));
			n++;
		}
	}
	settle(f);
	kick(f, &o);
	wait_rolled(f);
	/* Late: a status for a minute folded long ago. */
	late_ts = t0 + 30 * MIN_MS + 500;
	push_body(f, HIVE_TOPIC_STATUS_RESULT, late_ts, status_body(macs[0], 250000, 9999, "mining"));
	n++;
	settle(f);
	wait_rolled(f);
	assert_int_equal(qint_db(f->ro, "SELECT count(*) FROM statuses"), n);
	assert_int_equal(qint_db(f->ro, "SELECT sum(n) FROM status_minutes"), n);
	assert_int_equal(qint_db(f->ro, "SELECT sum(n) FROM status_hours"), n);
	assert_int_equal(qint_db(f->ro, "SELECT max(power_sum) >= 9999 FROM status_minutes"
				 " WHERE ts_ms = %lld", late_ts / MIN_MS * MIN_MS), 1);

	/* Every row of each roll-up against the aggregate of its raw rows. */
	for (int u = 0; u < 2; u++) {
		char sql[2048];
		long long unit = u ? HOUR_MS : MIN_MS;
		int rows = 0, rc;

		snprintf(sql, sizeof(sql),
			 "SELECT r.n = a.n AND r.mining = a.mining AND r.hr_n = a.hr_n"
			 " AND abs(r.hr_sum - a.hr_sum) <= 1e-9 * a.hr_sum"
			 " AND r.hr_avg_n = a.hr_avg_n AND abs(r.hr_avg_sum - a.hr_avg_sum) <= 1e-9 * a.hr_avg_sum"
			 " AND r.hr_nominal IS a.hr_nominal AND r.power_n = a.power_n"
			 " AND r.power_sum = a.power_sum AND r.metered = a.metered"
			 " AND r.chip_temp_max IS a.chip_temp_max AND r.pcb_temp_max IS a.pcb_temp_max,"
			 " r.ts_ms, r.miner, r.n, a.n"
			 " FROM %s r JOIN (SELECT s.ts_ms / %lld * %lld AS ts, m.num AS miner,"
			 " count(*) AS n, sum(s.state = 'mining') AS mining,"
			 " count(s.hr_realtime_ghs) AS hr_n, total(s.hr_realtime_ghs) AS hr_sum,"
			 " count(s.hr_average_ghs) AS hr_avg_n, total(s.hr_average_ghs) AS hr_avg_sum,"
			 " max(s.hr_nominal_ghs) AS hr_nominal, count(s.power_w) AS power_n,"
			 " coalesce(sum(s.power_w), 0) AS power_sum, sum(s.power_metered = 1) AS metered,"
			 " max(s.chip_temp_max) AS chip_temp_max, max(s.pcb_temp_max) AS pcb_temp_max"
			 " FROM statuses s JOIN miners m ON m.mac = s.mac GROUP BY 1, 2) a"
			 " ON a.ts = r.ts_ms AND a.miner = r.miner",
			 u ? "status_hours" : "status_minutes", unit, unit);
		assert_int_equal(sqlite3_prepare_v2(f->ro, sql, -1, &st, NULL), SQLITE_OK);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			if (!sqlite3_column_int(st, 0))
				fail_msg("%s row ts=%lld miner=%lld differs from its raw rows"
					 " (n %lld vs %lld)", u ? "hour" : "minute",
					 (long long)sqlite3_column_int64(st, 1),
					 (long long)sqlite3_column_int64(st, 2),
					 (long long)sqlite3_column_int64(st, 3),
					 (long long)sqlite3_column_int64(st, 4));
		}
		assert_int_equal(rc, SQLITE_DONE);
		sqlite3_finalize(st);
		assert_int_equal(rows, qint_db(f->ro, "SELECT count(*) FROM %s",
					       u ? "status_hours" : "status_minutes"));
		assert_true(rows > 0);
	}
	/* The fleet: each minute's totals from the miners' minutes (but the
	 * late status's minute: a fleet minute is totalled once). */
	assert_true(qint_db(f->ro, "SELECT count(*) FROM fleet_minutes WHERE model = ''") >= 170);
	assert_int_equal(qint_db(f->ro,
		"SELECT count(*) FROM fleet_minutes fm JOIN (SELECT sm.ts_ms, count(*) AS online,"
		" total(sm.hr_sum / nullif(sm.hr_n, 0)) AS hr FROM status_minutes sm GROUP BY 1) a"
		" ON a.ts_ms = fm.ts_ms WHERE fm.model = '' AND fm.ts_ms <> %lld"
		" AND (fm.online <> a.online OR abs(fm.hashrate_ghs - a.hr) > 1e-6 * a.hr)",
		late_ts / MIN_MS * MIN_MS), 0);
	assert_int_equal(qint_db(f->ro,
		"SELECT count(*) FROM fleet_minutes a JOIN (SELECT ts_ms, sum(online) AS online"
		" FROM fleet_minutes WHERE model <> '' GROUP BY 1) b ON b.ts_ms = a.ts_ms"
		" WHERE a.model = '' AND a.online <> b.online"), 0);
	assert_int_equal(qint_db(f->ro, "SELECT count(DISTINCT model) FROM fleet_minutes"), 3);
	/* Hours of the fleet: sums of its minutes. */
	assert_int_equal(qint_db(f->ro,
		"SELECT count(*) FROM fleet_hours h JOIN (SELECT ts_ms / 3600000 * 3600000 AS t,"
		" model, sum(minutes) AS minutes, sum(online) AS online FROM fleet_minutes GROUP BY 1, 2)"
		" a ON a.t = h.ts_ms AND a.model = h.model WHERE h.minutes <> a.minutes"
		" OR h.online <> a.online"), 0);
	assert_true(qint_db(f->ro, "SELECT count(*) FROM fleet_hours WHERE model = ''") >= 2);
}

/* ------------------------------------------------------------ size cap */

/* Over retention.max_bytes the oldest rows go first, every history
 * losing the same share of its window, and the pages come back to the
 * file system. */
static void test_size_cap(void **state)
{
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	long long t0 = hive_wall_ms() - 10 * HOUR_MS, used0, cap, used1, min0, min1, kept;
	struct stat sb0, sb1;
	struct apid_writer_stats s;
	char mac[32];

	o.status_raw_hours = 48;
	o.telemetry_raw_hours = 48;
	o.prune_batch = 500;
	start(f, &o);
	for (int m = 0; m < 4; m++) {
		snprintf(mac, sizeof(mac), "aa:bb:cc:00:02:%02x", m);
		seen(f, mac, "s19");
	}
	for (int i = 0; i < 8 * 240; i++)
		for (int m = 0; m < 4; m++) {
			snprintf(mac, sizeof(mac), "aa:bb:cc:00:02:%02x", m);
			push_body(f, HIVE_TOPIC_STATUS_RESULT, t0 + i * 15000LL + m,
				  status_body(mac, 100000, 3000, "mining"));
			if (i % 16 == 0)
				push_body(f, HIVE_TOPIC_TELEMETRY_RESULT, t0 + i * 15000LL + m,
					  telemetry_body(f, mac, i));
		}
	settle(f);
	kick(f, &o);
	wait_rolled(f);
	tl_sleep_ms(500);
	used0 = qint_db(f->ro, "SELECT (page_count - freelist_count) * page_size FROM"
			" pragma_page_count, pragma_freelist_count, pragma_page_size");
	min0 = qint_db(f->ro, "SELECT min(ts_ms) FROM statuses");
	assert_int_equal(stat(f->path, &sb0), 0);
	cap = used0 / 2;

	o.max_bytes = cap;
	apid_writer_configure(f->w, &o);
	{
		long long until = hive_mono_ms() + 30000;

		do {
			tl_sleep_ms(100);
			apid_writer_get_stats(f->w, &s);
			used1 = qint_db(f->ro, "SELECT (page_count - freelist_count) * page_size FROM"
					" pragma_page_count, pragma_freelist_count, pragma_page_size");
		} while (hive_mono_ms() < until && (used1 > cap || s.pages_returned == 0));
	}
	tl_sleep_ms(1000);   /* the last vacuum step and its checkpoint */
	assert_int_equal(stat(f->path, &sb1), 0);
	apid_writer_get_stats(f->w, &s);
	printf("figure: size cap %.1f MB: data %.1f MB → %.1f MB, file %.1f MB → %.1f MB"
	       " (pruned raw statuses %llu, telemetry rows %llu, pages returned %llu)\n", mb(cap),
	       mb(used0), mb(used1), mb(sb0.st_size), mb(sb1.st_size),
	       (unsigned long long)s.pruned[APID_RT_STATUSES],
	       (unsigned long long)s.pruned[APID_RT_TELEMETRY],
	       (unsigned long long)s.pages_returned);
	assert_true(used1 <= cap);
	assert_true(s.pages_returned > 0);
	assert_true(sb1.st_size < sb0.st_size * 3 / 4);
	/* Oldest first: what is left of the raw statuses is every row from
	 * some time on (but for the miners' latest, which stay anyway). */
	min1 = qint_db(f->ro, "SELECT min(ts_ms) FROM statuses WHERE id NOT IN"
		       " (SELECT last_status_id FROM miners)");
	assert_true(min1 > min0);
	kept = 0;
	for (int i = 0; i < 8 * 240; i++)
		for (int m = 0; m < 4; m++)
			kept += t0 + i * 15000LL + m >= min1;
	assert_true(kept > 0);
	assert_int_equal(qint_db(f->ro, "SELECT count(*) FROM statuses WHERE ts_ms >= %lld", min1),
			 kept);
	/* The newest hour of raw statuses is all there. */
	assert_int_equal(qint_db(f->ro, "SELECT count(*) FROM statuses WHERE ts_ms >= %lld",
				 t0 + 7 * HOUR_MS), 4 * 240);
	/* Nothing was lost from the history: the roll-ups hold every status. */
	assert_int_equal(qint_db(f->ro, "SELECT sum(n) FROM status_hours"), 4 * 8 * 240);
}

/* ------------------------------------------------------------ VACUUM room */

static void test_vacuum_room(void **state)
{
	char err[512];
	long long gb = 1LL << 30;

	(void)state;
	assert_int_equal(apid_store_vacuum_room(10 * gb, 30 * gb, 30 * gb, true, "/d", "/t", err,
						sizeof(err)), 0);
	assert_int_equal(apid_store_vacuum_room(10 * gb, 15 * gb, 15 * gb, true, "/d", "/t", err,
						sizeof(err)), -1);
	assert_non_null(strstr(err, "not enough free disk"));
	assert_non_null(strstr(err, "21.0 GiB"));      /* twice 10.5 GiB and the slack */
	assert_non_null(strstr(err, "15.0 GiB is free"));
	assert_non_null(strstr(err, "SQLITE_TMPDIR"));
	/* Two file systems: each needs one copy. */
	assert_int_equal(apid_store_vacuum_room(10 * gb, 11 * gb, 11 * gb, false, "/d", "/t", err,
						sizeof(err)), 0);
	assert_int_equal(apid_store_vacuum_room(10 * gb, 11 * gb, 5 * gb, false, "/d", "/t", err,
						sizeof(err)), -1);
	assert_non_null(strstr(err, "/t"));
	assert_int_equal(apid_store_vacuum_room(0, 100LL << 20, 0, true, "/d", "/t", err,
						sizeof(err)), 0);
}

/* ------------------------------------------------------------ through apid */

/* GET path from apid; NULL unless 200 (the status in *status). */
static json_t *get(struct ts_suite *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *get(struct ts_suite *s, const char *fmt, ...)
{
	char path[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return ts_api_get(s, path);
}

static long status_of(struct ts_suite *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static long status_of(struct ts_suite *s, const char *fmt, ...)
{
	char path[512];
	long status = 0;
	json_t *j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	j = ts_api(s, "GET", path, NULL, &status);
	if (status != 200 && !json_is_string(json_object_get(j, "error")))
		fail_msg("%s: %ld without an error message", path, status);
	json_decref(j);
	return status;
}

static int start_apid(struct ts_suite *s, const char *db, int raw_hours, int minute_days)
{
	if (ts_init(s, "history") < 0)
		return -1;
	ts_merge(s, "{\"database\": {\"path\": \"%s\"}, \"http\": {\"auth\": {\"token\":"
		 " \"history-test-token-0123456789\"}}, \"retention\": {\"status_raw_hours\": %d,"
		 " \"telemetry_raw_hours\": %d, \"minute_days\": %d}}", db, raw_hours, raw_hours,
		 minute_days);
	if (!ts_start(s, "apid", NULL, NULL, NULL) || !ts_token(s))
		return -1;
	return 0;
}

/* Sums over a history's points: statuses, and hashrate × statuses. */
static void sum_points(json_t *j, long long *statuses, double *hr)
{
	size_t i;
	json_t *p;

	*statuses = 0;
	*hr = 0;
	json_array_foreach(json_object_get(j, "points"), i, p) {
		long long n = json_integer_value(json_object_get(p, "statuses"));

		*statuses += n;
		*hr += json_number_value(json_object_get(p, "hr_realtime_ghs")) * (double)n;
	}
}

/* A miner's history over three days read at every step: raw rows for the
 * last 2 h, minutes for a day, hours before; each point the aggregate of
 * the statuses in its step, every status counted once across the tiers.
 * Then the fleet's, and the parameter checks. */
static void test_history_api(void **state)
{
	static const char *const m1 = "aa:bb:cc:00:03:01", *const m2 = "aa:bb:cc:00:03:02";
	static const long long steps[] = { 15, 60, 300, 3600, 86400 };
	struct fx *f = *state;
	struct apid_writer_opts o = opts(f);
	long long now = hive_wall_ms(), t0 = now - 3 * DAY_MS, from, to;
	static long long m1_ts[3 * 1440 + 10];
	static double m1_hr[3 * 1440 + 10];
	int n_m1 = 0;
	struct ts_suite s;
	bool ok = false;
	json_t *j;

	o.status_raw_hours = 2;
	o.minute_days = 1;
	start(f, &o);
	seen(f, m1, "s19");
	seen(f, m2, "s21");
	/* m1 every 60 s for three days, m2 every 60 s for the last hour only. */
	for (long long t = t0; t < now - 30000; t += MIN_MS) {
		double hr = 100000 + (double)((t / MIN_MS) % 7) * 1000;

		push_body(f, HIVE_TOPIC_STATUS_RESULT, t, status_body(m1, hr, 3000, "mining"));
		m1_ts[n_m1] = t;
		m1_hr[n_m1++] = hr;
		if (t >= now - HOUR_MS)
			push_body(f, HIVE_TOPIC_STATUS_RESULT, t + 500,
				  status_body(m2, 50000, 1500, "mining"));
	}
	settle(f);
	kick(f, &o);
	wait_rolled(f);
	/* Retention at work: raw beyond 2 h and minutes beyond a day go. */
	{
		long long until = hive_mono_ms() + 30000;

		while (hive_mono_ms() < until &&
		       (qint_db(f->ro, "SELECT count(*) FROM statuses WHERE mac = '%s'", m1) > 125 ||
			qint_db(f->ro, "SELECT min(ts_ms) FROM status_minutes") < now - DAY_MS))
			tl_sleep_ms(100);
	}
	assert_true(qint_db(f->ro, "SELECT count(*) FROM statuses WHERE mac = '%s'", m1) <= 125);
	assert_true(qint_db(f->ro, "SELECT min(ts_ms) FROM status_minutes") >= now - DAY_MS);
	stop(f);

	if (start_apid(&s, f->path, 2, 1) < 0)
		fail_msg("apid did not start");
	to = now + MIN_MS;
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		long long n, step = steps[k], want = 0;
		double hr, want_hr = 0;

		/* The whole three days, or the widest whole hours the step allows
		 * (under 5000 points). */
		from = t0 - HOUR_MS;
		if ((to - from) / (step * 1000) >= 5000)
			from = (to - 4999 * step * 1000) / HOUR_MS * HOUR_MS + HOUR_MS;
		for (int i = 0; i < n_m1; i++)
			if (m1_ts[i] >= from && m1_ts[i] < to) {
				want++;
				want_hr += m1_hr[i];
			}
		j = get(&s, "/api/miners/%s/history?from=%lld&to=%lld&step=%lld", m1, from, to, step);
		if (!j)
			goto out;
		sum_points(j, &n, &hr);
		printf("figure: history of %.1f days at step=%llds: %zu points, %lld statuses of %lld"
		       " (hours before %.1f h ago, raw from %.1f h ago)\n",
		       (double)(to - from) / DAY_MS, step,
		       json_array_size(json_object_get(j, "points")), n, want,
		       (double)(now - json_integer_value(json_object_get(j, "hours_before"))) / HOUR_MS,
		       (double)(now - json_integer_value(json_object_get(j, "raw_from"))) / HOUR_MS);
		/* No gap, no double count: every status once. */
		assert_int_equal(n, want);
		assert_true(fabs(hr - want_hr) < 1e-6 * want_hr);
		assert_true(json_integer_value(json_object_get(j, "hours_before")) <=
			    json_integer_value(json_object_get(j, "raw_from")));
		json_decref(j);
	}
	/* A step of a minute over the last 90 minutes: one status a minute,
	 * each point whole across the minute/raw boundary. */
	j = get(&s, "/api/miners/%s/history?from=%lld&to=%lld&step=60", m1,
		now / MIN_MS * MIN_MS - 91 * MIN_MS, now / MIN_MS * MIN_MS - MIN_MS);
	assert_non_null(j);
	{
		size_t i;
		json_t *p;

		assert_int_equal(json_array_size(json_object_get(j, "points")), 90);
		json_array_foreach(json_object_get(j, "points"), i, p)
			assert_int_equal(json_integer_value(json_object_get(p, "statuses")), 1);
	}
	json_decref(j);
	/* The fleet: both miners in the last hour, m1 alone before. */
	j = get(&s, "/api/fleet/history?from=%lld&to=%lld&step=60", now - 50 * MIN_MS,
		now - 5 * MIN_MS);
	assert_non_null(j);
	{
		json_t *p = json_array_get(json_object_get(j, "points"), 10), *models;

		long long minute;

		assert_non_null(p);
		/* m1's figure in that minute (as pushed above) plus m2's 50000 */
		minute = json_integer_value(json_object_get(p, "ts")) / MIN_MS;
		assert_true(fabs(json_number_value(json_object_get(p, "online")) - 2) < 1e-9);
		assert_true(fabs(json_number_value(json_object_get(p, "hashrate_ghs")) -
				 (150000 + (double)(minute % 7) * 1000)) < 1e-6);
		models = json_object_get(p, "models");
		assert_true(fabs(json_number_value(json_object_get(json_object_get(models, "s21"),
								   "hashrate_ghs")) - 50000) < 1e-6);
		assert_true(fabs(json_number_value(json_object_get(json_object_get(models, "s21"),
								   "power_w")) - 1500) < 1e-6);
	}
	json_decref(j);
	j = get(&s, "/api/fleet/history?from=%lld&to=%lld&step=3600", t0, now);
	assert_non_null(j);
	assert_true(json_array_size(json_object_get(j, "points")) >= 70);
	{
		json_t *p = json_array_get(json_object_get(j, "points"), 5);

		assert_true(fabs(json_number_value(json_object_get(p, "online")) - 1) < 1e-9);
		assert_int_equal(json_integer_value(json_object_get(p, "minutes")), 60);
	}
	json_decref(j);
	/* The same as CSV: a row for the fleet and one per model a point. */
	{
		const char *hdr[] = { s.auth, NULL };
		char url[600], *body = NULL, *line;
		long st = 0;
		int rows = 0, all = 0, s21 = 0;

		snprintf(url, sizeof(url), "%s/api/fleet/history?from=%lld&to=%lld&step=60&format=csv",
			 s.api, now - 50 * MIN_MS, now - 5 * MIN_MS);
		assert_int_equal(tl_http("GET", url, hdr, NULL, &body, &st), 0);
		assert_int_equal(st, 200);
		assert_non_null(body);
		assert_true(strncmp(body, "ts_utc,model,minutes,online,mining,hashrate_ghs,power_w\r\n",
				    56) == 0);
		for (line = strstr(body, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
			rows++;
			all += strncmp(line + 2 + 20, "all,", 4) == 0;
			if (strncmp(line + 2 + 20, "s21,", 4) == 0 && strstr(line, ",50000.0,1500.0\r\n"))
				s21++;
		}
		printf("figure: fleet history CSV: %d rows, %d fleet points, %d s21 rows\n", rows,
		       all, s21);
		assert_true(all >= 40);
		assert_true(s21 >= 40);
		assert_true(rows >= all + s21);
		free(body);
	}
	/* The checks, with clear 400s. */
	assert_int_equal(status_of(&s, "/api/miners/%s/history?step=90", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/%s/history?step=5400", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/%s/history?step=0", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/%s/history?from=10&to=5", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/%s/history?from=0&step=60", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/%s/history?steps=60", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/%s/history?step=ten", m1), 400);
	assert_int_equal(status_of(&s, "/api/miners/aa:bb:cc:00:09:09/history"), 404);
	assert_int_equal(status_of(&s, "/api/fleet/history?step=30"), 400);
	assert_int_equal(status_of(&s, "/api/fleet/history?step=61"), 400);
	assert_int_equal(status_of(&s, "/api/fleet/history?from=abc"), 400);
	assert_int_equal(status_of(&s, "/api/fleet/history?model=s19"), 400);
	ok = true;
out:
	ts_down(&s, !ok);
	if (!ok)
		fail_msg("history request failed");
}

/* ------------------------------------------------------------ upgrade */

/* A database written by schema 4 upgrades in place: migration 5, the one
 * VACUUM that turns incremental vacuum on (timed), the old telemetry read
 * from its 16-byte records, the old statuses folded into the roll-ups and
 * read back through apid's API. UPGRADE_COPIES=N copies the first miner's
 * rows to N more miners first, for the VACUUM's figure on a bigger file. */
static void test_upgrade_v4(void **state)
{
	static const char *const m1 = "aa:bb:cc:00:04:01", *const m2 = "aa:bb:cc:00:04:02";
	struct fx *f = *state;
	long long now = hive_wall_ms(), t0 = now - 2 * DAY_MS, statuses = 0, t, size0, ms;
	char err[512];
	struct ts_suite s;
	struct stat sb;
	bool ok = false;
	sqlite3 *db;
	json_t *j, *tele = NULL;

	db = v4_open(f->path);
	v4_miner(db, m1, t0);
	v4_miner(db, m2, t0);
	exec_db(db, "BEGIN");
	for (t = t0; t < now - MIN_MS; t += 15000) {
		json_t *b = status_body(m1, 120000, 3200, "mining");

		v4_status(db, m1, t, b);
		json_decref(b);
		statuses++;
	}
	for (t = t0; t < now - MIN_MS; t += 20 * MIN_MS) {
		json_t *b = telemetry_body(f, m1, (int)((t - t0) / MIN_MS));

		v4_telemetry(db, m1, t, b);
		json_decref(tele);
		tele = b;              /* the newest, for the API's answer */
	}
	for (int c = 1; c <= tl_env_int("UPGRADE_COPIES", 0); c++) {
		char sql[1024], mac[32];

		snprintf(mac, sizeof(mac), "aa:bb:cc:05:%02x:%02x", c >> 8, c & 255);
		v4_miner(db, mac, t0);
		snprintf(sql, sizeof(sql),
			 "INSERT INTO statuses(mac, ts_ms, state, state_time, preset, hr_realtime_ghs,"
			 " hr_average_ghs, hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w,"
			 " power_metered, fan_duty, fans, chains, pools, hw_errors) SELECT '%s', ts_ms,"
			 " state, state_time, preset, hr_realtime_ghs, hr_average_ghs, hr_nominal_ghs,"
			 " chip_temp_max, pcb_temp_max, power_w, power_metered, fan_duty, fans, chains,"
			 " pools, hw_errors FROM statuses WHERE mac = '%s';"
			 "INSERT INTO telemetry(mac, ts_ms, chain, state, hr_realtime_ghs, hr_nominal_ghs,"
			 " freq, n_chips, chips) SELECT '%s', ts_ms, chain, state, hr_realtime_ghs,"
			 " hr_nominal_ghs, freq, n_chips, chips FROM telemetry WHERE mac = '%s'",
			 mac, m1, mac, m1);
		exec_db(db, sql);
	}
	exec_db(db, "INSERT INTO audit(ts_ms, actor, action, target, detail)"
		" VALUES(1, 'api', 'miner.patch', 'aa:bb:cc:00:04:01', '{}');"
		"INSERT INTO models(alias, name, updated_ms) VALUES('s19', 'Antminer S19', 1);"
		"COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
	assert_int_equal(qint_db(db, "PRAGMA auto_vacuum"), 0);
	sqlite3_close(db);
	assert_int_equal(stat(f->path, &sb), 0);
	size0 = sb.st_size;

	ms = hive_mono_ms();
	db = apid_store_open(f->path, err, sizeof(err));
	ms = hive_mono_ms() - ms;
	if (!db)
		fail_msg("upgrade: %s", err);
	printf("figure: upgrade of a %.1f MB schema-4 database (migration 5 and the VACUUM that"
	       " turns incremental vacuum on): %lld ms, %.0f MB/s\n", mb(size0), ms,
	       mb(size0) / (ms > 0 ? ms / 1000.0 : 0.001));
	assert_int_equal(apid_store_version(db), apid_store_schema_version());
	assert_int_equal(qint_db(db, "PRAGMA auto_vacuum"), 2);
	assert_int_equal(qint_db(db, "SELECT count(*) FROM statuses WHERE mac = '%s'", m1),
			 statuses);
	assert_int_equal(qint_db(db, "SELECT count(DISTINCT num) FROM miners WHERE num > 0"),
			 2 + tl_env_int("UPGRADE_COPIES", 0));
	assert_int_equal(qint_db(db, "SELECT count(*) FROM telemetry WHERE chips_format IS NULL"),
			 qint_db(db, "SELECT count(*) FROM telemetry"));
	assert_int_equal(qint_db(db, "SELECT count(*) FROM audit"), 1);
	sqlite3_close(db);

	/* apid on it: the old rows fold, old raw rows go, the API reads them
	 * back (statuses and the latest status, telemetry, history). */
	if (start_apid(&s, f->path, 6, 7) < 0)
		fail_msg("apid did not start on the upgraded database");
	{
		long long until = hive_mono_ms() + 60000 + 3000LL * tl_env_int("UPGRADE_COPIES", 0);
		static const char mine[] = "SELECT coalesce(sum(n), 0) FROM status_hours h JOIN miners m"
					   " ON m.num = h.miner WHERE m.mac = '%s'";

		db = apid_store_open_readonly(f->path, err, sizeof(err));
		assert_non_null(db);
		while (hive_mono_ms() < until &&
		       (qint_db(db, mine, m1) < statuses ||
			qint_db(db, "SELECT count(*) FROM statuses WHERE mac = '%s'", m1) > 6 * 240 + 2 ||
			qint_db(db, "SELECT done_ms FROM rollups WHERE name = 'telemetry'") <
				now - 2 * HOUR_MS))
			tl_sleep_ms(200);
		assert_int_equal(qint_db(db, mine, m1), statuses);
		assert_true(qint_db(db, "SELECT count(*) FROM statuses WHERE mac = '%s'", m1) <=
			    6 * 240 + 2);
		assert_true(qint_db(db, "SELECT count(*) FROM telemetry_hours") > 0);
		sqlite3_close(db);
	}
	j = get(&s, "/api/miners/%s", m1);
	if (!j)
		goto out;
	assert_true(json_is_object(json_object_get(j, "status")));
	assert_true(fabs(json_number_value(json_object_get(json_object_get(j, "status"),
							   "hr_realtime_ghs")) - 120000) < 1e-6);
	json_decref(j);
	j = get(&s, "/api/miners/%s/history?from=%lld&to=%lld&step=3600", m1, t0 - HOUR_MS, now);
	assert_non_null(j);
	{
		long long n;
		double hr;

		sum_points(j, &n, &hr);
		assert_int_equal(n, statuses);
		assert_true(fabs(hr / (double)n - 120000) < 1e-6);
	}
	json_decref(j);
	/* The old chips, from their 16-byte records, as they were sent. */
	j = get(&s, "/api/miners/%s/telemetry?limit=1", m1);
	assert_non_null(j);
	{
		json_t *chain = json_array_get(json_object_get(json_array_get(
				json_object_get(j, "samples"), 0), "chains"), 1);
		json_t *sent = json_array_get(json_object_get(tele, "chains"), 1);
		json_t *got = json_object_get(chain, "chips");

		assert_non_null(got);
		assert_int_equal(json_array_size(json_object_get(got, "hr")), CHIPS);
		for (int i = 0; i < CHIPS; i++) {
			double a = json_number_value(json_array_get(json_object_get(got, "hr"), i));
			double b = json_number_value(json_array_get(json_object_get(
					json_object_get(sent, "chips"), "hr"), i));

			assert_true(fabs(a - b) < 0.01);
		}
		assert_string_equal(json_string_value(json_object_get(got, "grade")),
				    json_string_value(json_object_get(json_object_get(sent, "chips"),
								      "grade")));
	}
	json_decref(j);
	j = get(&s, "/api/miners/%s/telemetry/hours?from=%lld&to=%lld", m1, now - DAY_MS, now);
	assert_non_null(j);
	assert_true(json_array_size(json_object_get(j, "hours")) >= 20);
	json_decref(j);
	ok = true;
out:
	json_decref(tele);
	ts_down(&s, !ok);
	if (!ok)
		fail_msg("API request failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chips_packed),
		cmocka_unit_test(test_chip_summary),
		cmocka_unit_test(test_vacuum_room),
		cmocka_unit_test_setup_teardown(test_storage_figures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollups_equal_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_api, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_v4, setup, teardown),
	};

	hive_log_init("test_apid_history", HIVE_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
