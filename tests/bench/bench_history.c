/* bench_history — the long history at a farm's size: 30-day charts of one
 * miner and of the whole fleet, answered by the real bin/apid from
 * 10,000 miners' worth of roll-ups.
 *
 * The database is made by apid (its schema), then filled straight with
 * SQL as the roll-ups would have left it after 30 days of a farm: every
 * miner's hourly roll-ups for BENCH_DAYS (30) days and its per-minute ones
 * for the last BENCH_MINUTE_HOURS (24; the default keeps 7 days, which at
 * 10,000 miners is ~100 million rows: too long to write for a bench) hours,
 * in time order as the writer appends them; the fleet's minutes for 7 days
 * and hours for 30, four models; raw statuses for the last 6 h of the
 * miners measured. apid then answers, over HTTP (libcurl, the client on
 * the same machine):
 *   - GET /api/miners/{id}/history over 30 days at step 3600 (720 points,
 *     hours) and 900 (2,880 points: minutes for the last day, hours
 *     before) for BENCH_SAMPLE (10) miners taken across the fleet,
 *     BENCH_ROUNDS (5) rounds;
 *   - GET /api/fleet/history over 30 days at steps 3600 and 900, and over
 *     24 h at step 60 (1,440 minutes).
 * Least, median and most of each. Target: every median ≤ 200 ms (the
 * bench exits non-zero otherwise). BENCH_MINERS (10000) sets the fleet;
 * KEEP_TMP=1 keeps the directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "hive/clock.h"
#include "../lib/suite.h"
#include "../lib/testlib.h"

#define TARGET_MS 200.0
#define HOUR_MS   3600000LL
#define DAY_MS    86400000LL

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "bench_history: %.120s: %s\n", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Times n requests of path (printf'd with the miner number when it has
 * %d); prints least, median, most; returns the median (ms), -1 on error. */
static double measure(struct ts_suite *s, const char *label, const char *fmt, int miners,
		      int sample, int rounds, long long *bytes)
{
	double ms[512];
	int n = 0;
	char url[512], path[400];
	const char *hdr[] = { s->auth, NULL };

	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < sample && n < 512; k++) {
			char *body = NULL;
			long status = 0;
			int64_t t0;

			snprintf(path, sizeof(path), fmt, 1 + (int)((long long)k * miners / sample));
			snprintf(url, sizeof(url), "%s%s", s->api, path);
			t0 = hive_mono_us();
			if (tl_http("GET", url, hdr, NULL, &body, &status) < 0 || status != 200) {
				fprintf(stderr, "bench_history: %s: %ld %.200s\n", path, status,
					body ? body : "");
				free(body);
				return -1;
			}
			ms[n++] = (double)(hive_mono_us() - t0) / 1000.0;
			*bytes = (long long)strlen(body);
			free(body);
		}
	}
	qsort(ms, (size_t)n, sizeof(ms[0]), cmp);
	printf("figure: bench history %s: least %.1f ms, median %.1f ms, most %.1f ms (%d requests,"
	       " %lld bytes)\n", label, ms[0], ms[n / 2], ms[n - 1], n, *bytes);
	fflush(stdout);
	return ms[n / 2];
}

int main(void)
{
	int miners = tl_env_int("BENCH_MINERS", 10000), days = tl_env_int("BENCH_DAYS", 30);
	int minute_hours = tl_env_int("BENCH_MINUTE_HOURS", 24);
	int sample = tl_env_int("BENCH_SAMPLE", 10), rounds = tl_env_int("BENCH_ROUNDS", 5);
	long long now = hive_wall_ms(), hour0 = now / HOUR_MS * HOUR_MS, bytes = 0;
	struct ts_suite s;
	char db_path[1200], sql[4096], path[256];
	double worst = 0, m;
	int64_t t0;
	sqlite3 *db;
	struct stat sb;
	int rc = 1;

	if (ts_init(&s, "bench-history") < 0)
		return 1;
	snprintf(db_path, sizeof(db_path), "%s/powerhive.db", s.dir);
	ts_merge(&s, "{\"http\": {\"auth\": {\"token\": \"bench-history-token-0123456789\"}}}");
	/* apid makes the schema, then stops: the bench fills it. No API keys:
	 * plaintext ones would be encrypted at the next start, with a rewrite
	 * of the whole database (apid/secrets.h), and no job goes anywhere. */
	if (!ts_start(&s, "apid", NULL, NULL, NULL) || ts_stop(&s, "apid", 15, 10000) != 0)
		goto out;
	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		goto out;
	t0 = hive_mono_ms();
	snprintf(sql, sizeof(sql),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;"
		 " BEGIN;"
		 " WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < %d)"
		 " INSERT INTO miners(mac, ip, model, online, first_seen_ms, last_seen_ms)"
		 " SELECT printf('aa:bb:%%02x:%%02x:%%02x:%%02x', x >> 24, (x >> 16) & 255,"
		 " (x >> 8) & 255, x & 255), printf('127.%%d.%%d.%%d', (x >> 16) & 255,"
		 " (x >> 8) & 255, x & 255), 's' || (x %% 4), 1, 1, 1 FROM k;"
		 " CREATE TEMP TABLE mm AS SELECT num, mac FROM miners;"
		 " COMMIT;", miners);
	if (exec(db, sql) < 0)
		goto out_db;
	/* Hours, in time order as they are appended (the fold writes an hour's
	 * rows for every miner as its statuses arrive). */
	snprintf(sql, sizeof(sql),
		 "BEGIN;"
		 " WITH RECURSIVE h(t) AS (SELECT %lld UNION ALL SELECT t + 3600000 FROM h"
		 " WHERE t < %lld)"
		 " INSERT INTO status_hours SELECT h.t, mm.num, 240, 236, 240,"
		 " 240 * (130000 + (mm.num %% 97) * 100 + (h.t / 3600000 %% 13) * 10), 240,"
		 " 240 * 130000.0, 136000, 240, 240 * 3300, 240, 75, 61 FROM h, mm ORDER BY 1, 2;"
		 " COMMIT;", hour0 - (long long)days * DAY_MS, hour0 - HOUR_MS);
	if (exec(db, sql) < 0)
		goto out_db;
	printf("figure: bench history fill: %d miners x %d days of hours in %.1f s\n", miners, days,
	       (double)(hive_mono_ms() - t0) / 1000);
	fflush(stdout);
	snprintf(sql, sizeof(sql),
		 "BEGIN;"
		 " WITH RECURSIVE h(t) AS (SELECT %lld UNION ALL SELECT t + 60000 FROM h"
		 " WHERE t < %lld)"
		 " INSERT INTO status_minutes SELECT h.t, mm.num, 4, 4, 4,"
		 " 4 * (130000 + (mm.num %% 97) * 100 + (h.t / 60000 %% 13) * 10), 4, 4 * 130000.0,"
		 " 136000, 4, 4 * 3300, 4, 75, 61 FROM h, mm ORDER BY 1, 2;"
		 /* The fleet: 7 days of minutes, 30 of hours, four models. */
		 " WITH RECURSIVE h(t) AS (SELECT %lld UNION ALL SELECT t + 60000 FROM h"
		 " WHERE t < %lld), md(model, n) AS (VALUES ('', %d), ('s0', %d), ('s1', %d),"
		 " ('s2', %d), ('s3', %d))"
		 " INSERT INTO fleet_minutes SELECT t, model, 1, n, n, n * 130000.0, n * 3300.0"
		 " FROM h, md ORDER BY 1, 2;"
		 " WITH RECURSIVE h(t) AS (SELECT %lld UNION ALL SELECT t + 3600000 FROM h"
		 " WHERE t < %lld), md(model, n) AS (VALUES ('', %d), ('s0', %d), ('s1', %d),"
		 " ('s2', %d), ('s3', %d))"
		 " INSERT INTO fleet_hours SELECT t, model, 60, 60 * n, 60 * n, 60 * n * 130000.0,"
		 " 60 * n * 3300.0 FROM h, md ORDER BY 1, 2;"
		 " UPDATE rollups SET done_ms = %lld WHERE name = 'statuses';"
		 " UPDATE rollups SET done_ms = %lld WHERE name = 'minutes';"
		 " UPDATE rollups SET done_ms = %lld WHERE name = 'raw';"
		 " UPDATE rollups SET done_ms = %lld WHERE name = 'fleet';"
		 " UPDATE rollups SET done_ms = %lld WHERE name = 'fleet_minutes';"
		 " COMMIT;",
		 hour0 - (long long)minute_hours * HOUR_MS, hour0 - 60000,
		 hour0 - 7 * DAY_MS, hour0 - 60000, miners, miners / 4, miners / 4, miners / 4,
		 miners - 3 * (miners / 4),
		 hour0 - (long long)days * DAY_MS, hour0 - HOUR_MS, miners, miners / 4, miners / 4,
		 miners / 4, miners - 3 * (miners / 4),
		 hour0, hour0 - (long long)minute_hours * HOUR_MS, hour0 - 6 * HOUR_MS,
		 hour0, hour0 - 7 * DAY_MS);
	if (exec(db, sql) < 0)
		goto out_db;
	/* Raw statuses of the miners measured: the last 6 h, every 15 s. */
	for (int k = 0; k < sample; k++) {
		snprintf(sql, sizeof(sql),
			 "WITH RECURSIVE h(t) AS (SELECT %lld UNION ALL SELECT t + 15000 FROM h"
			 " WHERE t < %lld)"
			 " INSERT INTO statuses(mac, ts_ms, state, hr_realtime_ghs, hr_average_ghs,"
			 " hr_nominal_ghs, chip_temp_max, pcb_temp_max, power_w, power_metered)"
			 " SELECT mac, t, 'mining', 131000, 130000, 136000, 75, 61, 3300, 1"
			 " FROM h, mm WHERE mm.num = %d",
			 hour0 - 6 * HOUR_MS, now, 1 + (int)((long long)k * miners / sample));
		if (exec(db, sql) < 0)
			goto out_db;
	}
	if (exec(db, "UPDATE rollups SET last_id = (SELECT max(id) FROM statuses)"
		     " WHERE name = 'statuses'; PRAGMA wal_checkpoint(TRUNCATE)") < 0)
		goto out_db;
	sqlite3_close(db);
	db = NULL;
	stat(db_path, &sb);
	printf("figure: bench history database: %d miners, %d days of hours, %d hours of minutes:"
	       " %.2f GB, written in %.1f s\n", miners, days, minute_hours, (double)sb.st_size / 1e9,
	       (double)(hive_mono_ms() - t0) / 1000);
	fflush(stdout);

	if (!ts_start(&s, "apid", NULL, NULL, NULL) || !ts_token(&s))
		goto out;
	{
		struct { const char *label, *fmt; } reqs[] = {
			{ "miner 30 d step 3600 (720 points)",
			  "/api/miners/%s/history?from=%lld&to=%lld&step=3600" },
			{ "miner 30 d step 900 (2880 points)",
			  "/api/miners/%s/history?from=%lld&to=%lld&step=900" },
			{ "miner 24 h step 60 (1440 points)",
			  "/api/miners/%s/history?from=%lld&to=%lld&step=60" },
		};

		for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			double ms[512];
			int n = 0;

			for (int r = 0; r < rounds; r++)
				for (int k = 0; k < sample; k++) {
					int num = 1 + (int)((long long)k * miners / sample);
					char mac[32], url[512], p[400];
					const char *hdr[] = { s.auth, NULL };
					char *body = NULL;
					long status = 0;
					int64_t t1;

					snprintf(mac, sizeof(mac), "aa:bb:%02x:%02x:%02x:%02x", num >> 24,
						 (num >> 16) & 255, (num >> 8) & 255, num & 255);
					snprintf(p, sizeof(p), reqs[i].fmt, mac,
						 i == 2 ? now - DAY_MS : now - 30 * DAY_MS, now);
					snprintf(url, sizeof(url), "%s%s", s.api, p);
					t1 = hive_mono_us();
					if (tl_http("GET", url, hdr, NULL, &body, &status) < 0 ||
					    status != 200) {
						fprintf(stderr, "bench_history: %s: %ld %.200s\n", p, status,
							body ? body : "");
						free(body);
						goto out;
					}
					ms[n++] = (double)(hive_mono_us() - t1) / 1000.0;
					bytes = (long long)strlen(body);
					free(body);
				}
			qsort(ms, (size_t)n, sizeof(ms[0]), cmp);
			printf("figure: bench history %s: least %.1f ms, median %.1f ms, most %.1f ms"
			       " (%d requests, %lld bytes)\n", reqs[i].label, ms[0], ms[n / 2],
			       ms[n - 1], n, bytes);
			fflush(stdout);
			if (ms[n / 2] > worst)
				worst = ms[n / 2];
		}
	}
	{
		struct { const char *label; long long span, step; } fl[] = {
			{ "fleet 30 d step 3600 (720 points)", 30 * DAY_MS, 3600 },
			{ "fleet 30 d step 900 (2880 points)", 30 * DAY_MS, 900 },
			{ "fleet 24 h step 60 (1440 points)", DAY_MS, 60 },
		};

		for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
			snprintf(path, sizeof(path), "/api/fleet/history?from=%lld&to=%lld&step=%lld",
				 now - fl[i].span, now, fl[i].step);
			if ((m = measure(&s, fl[i].label, path, miners, 1, rounds * 2, &bytes)) < 0)
				goto out;
			if (m > worst)
				worst = m;
		}
	}
	printf("figure: bench history worst median %.1f ms (target %.0f ms)\n", worst, TARGET_MS);
	rc = worst <= TARGET_MS ? 0 : 1;
	if (rc)
		fprintf(stderr, "bench_history: a median over %.0f ms\n", TARGET_MS);
	goto out;
out_db:
	sqlite3_close(db);
out:
	ts_down(&s, rc != 0);
	return rc;
}
