/* metrics — see metrics.h. The fleet's plumbing and totals are rendered
 * from the health document, so /metrics and /api/health never disagree;
 * the per-miner families, last, come from one query of their own, written
 * straight into the text (no JSON in between: a 10,000-miner scrape is
 * ~130,000 lines). docs/apid.md lists every family. */
#include "metrics.h"

#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core.h"
#include "health.h"
#include "http.h"
#include "hive/cfg.h"
#include "hive/log.h"
#include "store.h"

/* ------------------------------------------------------------ text format */

/* The text format escapes three characters in a label value. */
static const char *label_escape(char c)
{
	return c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : NULL;
}

static void put_label_value(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		const char *e = label_escape(*s);

		if (e)
			fputs(e, f);
		else
			fputc(*s, f);
	}
}

/* s escaped at out, which has room for 2 * strlen(s) + 1; the new end. */
static char *escape_to(char *out, const char *s)
{
	for (; *s; s++) {
		const char *e = label_escape(*s);

		if (e) {
			*out++ = e[0];
			*out++ = e[1];
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
	return out;
}

/* v in b[32], in the fewest digits that read back the same (a hashrate of
 * 45123.1 stays "45123.1", not "45123.099999999999"), infinities spelled
 * as Prometheus (Go) parses them. Returns b. */
static char *format_real(char b[32], double v)
{
	if (isinf(v))
		return strcpy(b, v > 0 ? "+Inf" : "-Inf");
	if (isnan(v))
		return strcpy(b, "NaN");
	snprintf(b, 32, "%.15g", v);
	if (strtod(b, NULL) != v)
		snprintf(b, 32, "%.17g", v);
	return b;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t num(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : json_is_real(v)
		? (json_int_t)json_real_value(v) : 0;
}

static void sample(FILE *f, const char *name, const char *label, const char *value, double v)
{
	char b[32];

	fputs(name, f);
	if (label) {
		fprintf(f, "{%s=\"", label);
		put_label_value(f, value);
		fputs("\"}", f);
	}
	fprintf(f, " %s\n", format_real(b, v));
}

/* One family with a sample per element of arr (label from key lab). */
static void per(FILE *f, const char *name, const char *type, const char *help, const json_t *arr,
		const char *label, const char *lab_key, const char *val_key)
{
	const json_t *e;
	size_t i;

	family(f, name, type, help);
	json_array_foreach(arr, i, e)
		sample(f, name, label, json_string_value(json_object_get(e, lab_key)),
		       (double)num(e, val_key));
}

static void per_kind(FILE *f, const char *name, const char *type, const char *help,
		     const json_t *sched, const char *key)
{
	family(f, name, type, help);
	sample(f, name, "queue", "status", (double)num(json_object_get(sched, "status"), key));
	sample(f, name, "queue", "telemetry",
	       (double)num(json_object_get(sched, "telemetry"), key));
}

/* ------------------------------------------------------------ per miner */

/*
 * The per-miner families grow in buffers of their own (up to ~3 MB each at
 * 10,000 miners), mapped and not malloc'd for the reason api.c's
 * out_reserve gives: once glibc frees an mmapped block it raises its mmap
 * threshold, and later multi-MB buffers stay resident in the HTTP
 * threads' arenas. A write that finds no memory sets failed and is
 * dropped; the scrape then leaves the families out.
 */
struct text {
	char *p;
	size_t len, cap;         /* cap: the mapping's size, 0 before the first write */
	bool failed;
};

#define TEXT_MIN (64 * 1024)

static bool text_reserve(struct text *t, size_t n)
{
	size_t cap = t->cap ? t->cap : TEXT_MIN;
	void *p;

	if (t->failed)
		return false;
	if (t->len + n <= t->cap)
		return true;
	while (cap < t->len + n)
		cap *= 2;
	p = t->cap ? mremap(t->p, t->cap, cap, MREMAP_MAYMOVE)
		   : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		t->failed = true;
		return false;
	}
	t->p = p;
	t->cap = cap;
	return true;
}

static void text_free(struct text *t)
{
	if (t->cap)
		munmap(t->p, t->cap);
	memset(t, 0, sizeof(*t));
}

static void text_put(struct text *t, const char *s, size_t n)
{
	if (text_reserve(t, n)) {
		memcpy(t->p + t->len, s, n);
		t->len += n;
	}
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* s as a label value, escaped. */
static void text_label(struct text *t, const char *s)
{
	if (text_reserve(t, 2 * strlen(s) + 1))
		t->len = (size_t)(escape_to(t->p + t->len, s) - t->p);
}

/* "name{<labels>": the caller adds its own labels, then "} value\n". */
static void text_open(struct text *t, const char *name, const struct text *labels)
{
	text_str(t, name);
	text_put(t, "{", 1);
	text_put(t, labels->p, labels->len);
}

/* A column's number: an integer exactly, a real as format_real writes it. */
static void text_number(struct text *t, sqlite3_stmt *st, int col)
{
	char b[32];

	if (sqlite3_column_type(st, col) == SQLITE_INTEGER)
		snprintf(b, sizeof(b), "%lld", (long long)sqlite3_column_int64(st, col));
	else
		format_real(b, sqlite3_column_double(st, col));
	text_str(t, b);
}

/*
 * One pass over miners, each joined to its latest status by primary key
 * through last_status_id, and to its running preset's catalogue entry by
 * primary key: like health's fleet totals, the cost follows the number of
 * miners, never the history. A last error counts when it is newer than
 * the latest status (or there is no status), as in fleet.errors. The
 * columns follow enum miner_col.
 */
static const char miners_sql[] =
	"SELECT m.mac, coalesce(m.model, ''), coalesce(m.last_ip, m.ip, ''),"
	" coalesce(m.hostname, ''), m.online != 0, m.managed != 0,"
	" CASE WHEN m.online = 0 THEN 'offline' ELSE coalesce(s.state, 'unknown') END,"
	" s.hr_realtime_ghs, s.power_w, s.power_metered != 0, p.watts,"
	" s.chip_temp_max, s.pcb_temp_max, s.fans,"
	" CASE WHEN coalesce(m.last_error_ms > s.ts_ms, m.last_error_ms IS NOT NULL)"
	"  THEN coalesce(m.last_error_kind, 'unknown') END"
	" FROM miners m LEFT JOIN statuses s ON s.id = m.last_status_id"
	" LEFT JOIN model_presets p ON p.model = m.model AND p.name = s.preset";

enum miner_col {
	C_MAC, C_MODEL, C_IP, C_HOSTNAME, C_ONLINE, C_MANAGED, C_STATE, C_HASHRATE, C_POWER,
	C_MEASURED, C_PRESET_W, C_CHIP, C_PCB, C_FANS, C_ERROR_KIND
};

enum miner_family {
	F_INFO, F_ONLINE, F_MANAGED, F_HASHRATE, F_POWER, F_MEASURED, F_PRESET_W, F_CHIP,
	F_PCB, F_FAN, F_STATE, F_ERROR, F_COUNT
};

/*
 * Every per-miner family, in the order written: gauges labelled mac and
 * model. IP and hostname, which change with DHCP, are labels of
 * powerhive_miner_info only, so the other series keep their identity.
 * col: the column a family's value is read from (-1: written by hand);
 * status: only for online miners (an offline miner hashes nothing: its
 * last status is history), and only when the status has the value.
 */
static const struct {
	const char *name, *help;
	int col;
	bool status;
} miner_families[F_COUNT] = {
	[F_INFO] = { "powerhive_miner_info", "1 per miner; labels ip (last known) and hostname"
		     " to join on.", -1, false },
	[F_ONLINE] = { "powerhive_miner_online", "1 while the miner answers sweeps.",
		       C_ONLINE, false },
	[F_MANAGED] = { "powerhive_miner_managed", "1 when PowerHive manages the miner.",
			C_MANAGED, false },
	[F_HASHRATE] = { "powerhive_miner_hashrate_ghs",
			 "Realtime hashrate of the latest status, in GH/s.", C_HASHRATE, true },
	[F_POWER] = { "powerhive_miner_power_watts",
		      "Power of the latest status, metered or estimated.", C_POWER, true },
	[F_MEASURED] = { "powerhive_miner_power_measured",
			 "1: the PSU meters powerhive_miner_power_watts; 0: the firmware"
			 " estimates it.", C_MEASURED, true },
	[F_PRESET_W] = { "powerhive_miner_preset_watts",
			 "Watts of the running preset in the model's catalogue.", C_PRESET_W,
			 true },
	[F_CHIP] = { "powerhive_miner_chip_temp_celsius", "Hottest chip of the latest status.",
		     C_CHIP, true },
	[F_PCB] = { "powerhive_miner_pcb_temp_celsius", "Hottest board of the latest status.",
		    C_PCB, true },
	[F_FAN] = { "powerhive_miner_fan_rpm", "Each fan's speed (label fan: its position"
		    " from 0).", -1, true },
	[F_STATE] = { "powerhive_miner_state", "1 for the miner's state: the latest status's,"
		      " offline, or unknown before a first status.", -1, false },
	[F_ERROR] = { "powerhive_miner_last_error", "1 for the kind of the miner's last error,"
		      " while it is newer than its latest status.", -1, false },
};

/* statuses.fans holds a JSON array of rpm (hive_msg's encoding): a sample
 * per number, labelled with its position; a null keeps its position. */
static void text_fans(struct text *t, const struct text *labels, const char *fans)
{
	const char *p = fans;
	char *end, b[48];

	if (!p || *p++ != '[')
		return;
	for (int i = 0;; i++) {
		double v;

		p += strspn(p, " \t\r\n");
		if (*p == ']' || !*p)
			return;
		v = strtod(p, &end);
		if (end != p) {
			text_open(t, "powerhive_miner_fan_rpm", labels);
			snprintf(b, sizeof(b), ",fan=\"%d\"} ", i);
			text_str(t, b);
			text_str(t, format_real(b, v));
			text_put(t, "\n", 1);
			p = end;
		} else {
			p += strcspn(p, ",]");
		}
		p += strspn(p, " \t\r\n");
		if (*p++ != ',')
			return;
	}
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s ? s : "";
}

/* One miner's samples, each into its family's text. */
static void miner_samples(sqlite3_stmt *st, struct text fam[F_COUNT], const struct text *labels)
{
	bool online = sqlite3_column_int(st, C_ONLINE) != 0;

	text_open(&fam[F_INFO], "powerhive_miner_info", labels);
	text_str(&fam[F_INFO], ",ip=\"");
	text_label(&fam[F_INFO], col_text(st, C_IP));
	text_str(&fam[F_INFO], "\",hostname=\"");
	text_label(&fam[F_INFO], col_text(st, C_HOSTNAME));
	text_str(&fam[F_INFO], "\"} 1\n");
	for (int k = 0; k < F_COUNT; k++) {
		int col = miner_families[k].col;

		if (col < 0 || (miner_families[k].status && !online) ||
		    sqlite3_column_type(st, col) == SQLITE_NULL)
			continue;
		text_open(&fam[k], miner_families[k].name, labels);
		text_put(&fam[k], "} ", 2);
		text_number(&fam[k], st, col);
		text_put(&fam[k], "\n", 1);
	}
	if (online)
		text_fans(&fam[F_FAN], labels, (const char *)sqlite3_column_text(st, C_FANS));
	text_open(&fam[F_STATE], "powerhive_miner_state", labels);
	text_str(&fam[F_STATE], ",state=\"");
	text_label(&fam[F_STATE], col_text(st, C_STATE));
	text_str(&fam[F_STATE], "\"} 1\n");
	if (sqlite3_column_type(st, C_ERROR_KIND) != SQLITE_NULL) {
		text_open(&fam[F_ERROR], "powerhive_miner_last_error", labels);
		text_str(&fam[F_ERROR], ",kind=\"");
		text_label(&fam[F_ERROR], col_text(st, C_ERROR_KIND));
		text_str(&fam[F_ERROR], "\"} 1\n");
	}
}

/*
 * The per-miner families, each with its HELP and TYPE, in fam (freed by
 * the caller with text_free). The text format wants a family's samples
 * together, so each row goes into one text per family: one pass over the
 * rows. The connection is the scrape's own (opening one costs about a
 * millisecond, a scrape comes every 15 s or so and takes ~100 ms at
 * 10,000 miners, and concurrent scrapes share nothing). 0, or -1 (logged,
 * rate-limited).
 */
static int miner_texts(const char *db_path, struct text fam[F_COUNT])
{
	struct text labels = { 0 };
	char err[512] = "out of memory", q[600], head[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	for (int k = 0; k < F_COUNT; k++) {
		snprintf(head, sizeof(head), "# HELP %s %s\n# TYPE %s gauge\n",
			 miner_families[k].name, miner_families[k].help, miner_families[k].name);
		text_str(&fam[k], head);
	}
	if (!(db = apid_store_open_readonly(db_path, err, sizeof(err))))
		goto done;
	if (sqlite3_prepare_v2(db, miners_sql, -1, &st, NULL) != SQLITE_OK)
		goto sql_error;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		labels.len = 0;
		text_str(&labels, "mac=\"");
		text_label(&labels, col_text(st, C_MAC));
		text_str(&labels, "\",model=\"");
		text_label(&labels, col_text(st, C_MODEL));
		text_put(&labels, "\"", 1);
		miner_samples(st, fam, &labels);
	}
	if (step != SQLITE_DONE)
		goto sql_error;
	rc = labels.failed ? -1 : 0;
	for (int k = 0; k < F_COUNT; k++)
		if (fam[k].failed)
			rc = -1;
	goto done;
sql_error:
	snprintf(err, sizeof(err), "%s", sqlite3_errmsg(db));
done:
	text_free(&labels);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc < 0)
		hive_log_complain("metrics miners", "per-miner metrics unavailable err=%s",
				  hive_log_quote(err, q, sizeof(q)));
	else
		hive_log_recovered("metrics miners", "per-miner metrics available again");
	return rc;
}

/* The rest of the text (buf, len; taken) followed by the per-miner
 * families (none when the database cannot be read), in one mapping of its
 * own: at 10,000 miners the text is ~10 MB, and a malloc'd block that size,
 * once freed, raises glibc's mmap threshold and leaves apid ~40 MiB larger
 * for good. The mapping's size is kept just before the text
 * (apid_metrics_free). NULL when out of memory. */
static char *with_miners(char *buf, size_t len, const char *db_path)
{
	struct text fam[F_COUNT] = { 0 };
	size_t total = len, size;
	char *out = NULL, *p;
	void *m;

	bool miners = miner_texts(db_path, fam) == 0;

	for (int k = 0; miners && k < F_COUNT; k++)
		total += fam[k].len;
	size = sizeof(size_t) + total + 1;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED) {
		memcpy(m, &size, sizeof(size));
		out = (char *)m + sizeof(size_t);
		p = mempcpy(out, buf, len);
		for (int k = 0; miners && k < F_COUNT; k++)
			p = mempcpy(p, fam[k].p, fam[k].len);
		*p = '\0';
	}
	free(buf);
	for (int k = 0; k < F_COUNT; k++)
		text_free(&fam[k]);
	return out;
}

/* ------------------------------------------------------------ the text */

void apid_metrics_free(char *text)
{
	size_t size;

	if (!text)
		return;
	memcpy(&size, text - sizeof(size_t), sizeof(size));
	munmap(text - sizeof(size_t), size);
}

char *apid_metrics(struct apid *a)
{
	json_t *h = apid_health(a), *ev, *sched, *db, *q, *d, *w, *fl;
	char *buf = NULL;
	size_t len = 0, i;
	const char *k;
	FILE *f;

	if (!h)
		return NULL;
	f = open_memstream(&buf, &len);
	if (!f) {
		json_decref(h);
		return NULL;
	}
	ev = json_object_get(h, "events");
	sched = json_object_get(h, "scheduler");
	db = json_object_get(h, "database");
	q = json_object_get(h, "queues");

	family(f, "powerhive_up", "gauge", "1 while apid runs.");
	sample(f, "powerhive_up", NULL, NULL, 1);
	family(f, "powerhive_start_time_seconds", "gauge", "When apid started (Unix time).");
	sample(f, "powerhive_start_time_seconds", NULL, NULL, (double)a->started_ms / 1000.0);

	fl = json_object_get(h, "fleet");
	if (json_is_object(fl)) {
		family(f, "powerhive_fleet_miners", "gauge", "Miners known.");
		sample(f, "powerhive_fleet_miners", NULL, NULL, (double)num(fl, "miners"));
		family(f, "powerhive_fleet_online", "gauge", "Miners online.");
		sample(f, "powerhive_fleet_online", NULL, NULL, (double)num(fl, "online"));
		family(f, "powerhive_fleet_mining", "gauge",
		       "Online miners whose latest status says mining.");
		sample(f, "powerhive_fleet_mining", NULL, NULL, (double)num(fl, "mining"));
		family(f, "powerhive_fleet_hashrate_ghs", "gauge",
		       "Sum of the online miners' latest realtime hashrate, in GH/s.");
		sample(f, "powerhive_fleet_hashrate_ghs", NULL, NULL,
		       json_number_value(json_object_get(fl, "hashrate_ghs")));
		family(f, "powerhive_fleet_power_watts", "gauge",
		       "Sum of the online miners' latest power, metered and estimated.");
		sample(f, "powerhive_fleet_power_watts", NULL, NULL, (double)num(fl, "power_w"));
		family(f, "powerhive_fleet_power_estimated_watts", "gauge",
		       "The part of powerhive_fleet_power_watts estimated from running presets.");
		sample(f, "powerhive_fleet_power_estimated_watts", NULL, NULL,
		       (double)num(fl, "power_estimated_w"));
		family(f, "powerhive_fleet_errors", "gauge",
		       "Online miners whose last error is newer than their latest status.");
		sample(f, "powerhive_fleet_errors", NULL, NULL, (double)num(fl, "errors"));
		family(f, "powerhive_fleet_failure", "gauge",
		       "Online miners in state failure not counted in powerhive_fleet_errors.");
		sample(f, "powerhive_fleet_failure", NULL, NULL, (double)num(fl, "failure"));
		family(f, "powerhive_fleet_managed", "gauge", "Miners managed by PowerHive.");
		sample(f, "powerhive_fleet_managed", NULL, NULL, (double)num(fl, "managed"));
		family(f, "powerhive_fleet_conflicts", "gauge",
		       "Managed miners flagged conflict: they keep raising their preset above"
		       " the limit by themselves.");
		sample(f, "powerhive_fleet_conflicts", NULL, NULL, (double)num(fl, "conflicts"));
	}

	per(f, "powerhive_events_received_total", "counter", "Events received from the bus.",
	    json_object_get(ev, "sources"), "source", "src", "received");
	per(f, "powerhive_events_stored_total", "counter",
	    "Events applied and committed (heartbeats and job failures included).",
	    json_object_get(ev, "sources"), "source", "src", "stored");
	per(f, "powerhive_events_rejected_total", "counter",
	    "Events refused (bad body, unknown miner...): nothing written.",
	    json_object_get(ev, "sources"), "source", "src", "rejected");
	per(f, "powerhive_events_lost_total", "counter",
	    "Events never received (gaps in the senders' sequence numbers).",
	    json_object_get(ev, "sources"), "source", "src", "lost");
	family(f, "powerhive_events_rejected_reason_total", "counter",
	       "Events refused, by reason (malformed envelopes included).");
	json_object_foreach(json_object_get(ev, "rejected_by"), k, d)
		sample(f, "powerhive_events_rejected_reason_total", "reason", k,
		       (double)json_integer_value(d));
	family(f, "powerhive_events_refused_total", "counter",
	       "Events not believed (outside network.subnets, a result without its job's nonce,"
	       " a future timestamp, an unconfirmed sweep), by reason: nothing written.");
	json_object_foreach(json_object_get(ev, "refused"), k, d)
		sample(f, "powerhive_events_refused_total", "reason", k,
		       (double)json_integer_value(d));
	family(f, "powerhive_events_duplicates_total", "counter",
	       "Events received twice (repeated sequence numbers).");
	sample(f, "powerhive_events_duplicates_total", NULL, NULL, (double)num(ev, "duplicates"));
	family(f, "powerhive_miner_errors_unattributed_total", "counter",
	       "hive.miner.error events without a MAC: counted, not stored.");
	sample(f, "powerhive_miner_errors_unattributed_total", NULL, NULL,
	       (double)num(ev, "unattributed_errors"));

	family(f, "powerhive_daemon_heartbeat_age_seconds", "gauge",
	       "Seconds since the daemon's last heartbeat.");
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		fputs("powerhive_daemon_heartbeat_age_seconds{source=\"", f);
		put_label_value(f, json_string_value(json_object_get(d, "src")));
		fputs("\",daemon=\"", f);
		put_label_value(f, json_string_value(json_object_get(d, "daemon")));
		fprintf(f, "\"} %.3f\n", (double)num(d, "heartbeat_age_ms") / 1000.0);
	}
	family(f, "powerhive_daemon_value", "gauge",
	       "The counters a daemon reported in its last heartbeat.");
	json_array_foreach(json_object_get(h, "daemons"), i, d) {
		json_t *v;

		json_object_foreach(json_object_get(d, "counters"), k, v) {
			fputs("powerhive_daemon_value{source=\"", f);
			put_label_value(f, json_string_value(json_object_get(d, "src")));
			fputs("\",name=\"", f);
			put_label_value(f, k);
			fprintf(f, "\"} %.17g\n", json_number_value(v));
		}
	}

	w = json_object_get(h, "workers");
	family(f, "powerhive_workers_connected", "gauge", "Workers connected to a job queue.");
	sample(f, "powerhive_workers_connected", "queue", "status", (double)num(w, "status"));
	sample(f, "powerhive_workers_connected", "queue", "telemetry",
	       (double)num(w, "telemetry"));

	family(f, "powerhive_writer_queue_depth", "gauge", "Events waiting for the writer.");
	sample(f, "powerhive_writer_queue_depth", NULL, NULL,
	       (double)num(json_object_get(q, "writer"), "depth"));
	family(f, "powerhive_writer_queue_capacity", "gauge", "Size of the writer queue.");
	sample(f, "powerhive_writer_queue_capacity", NULL, NULL,
	       (double)num(json_object_get(q, "writer"), "max"));
	family(f, "powerhive_writer_batches_total", "counter", "Transactions committed.");
	sample(f, "powerhive_writer_batches_total", NULL, NULL, (double)num(db, "batches"));
	family(f, "powerhive_writer_commit_failures_total", "counter",
	       "Transactions that failed to commit.");
	sample(f, "powerhive_writer_commit_failures_total", NULL, NULL,
	       (double)num(db, "commit_failures"));
	family(f, "powerhive_retention_pruned_rows_total", "counter",
	       "Rows deleted by retention, per table.");
	json_object_foreach(json_object_get(db, "pruned"), k, d)
		sample(f, "powerhive_retention_pruned_rows_total", "table", k,
		       (double)json_integer_value(d));
	family(f, "powerhive_retention_pages_returned_total", "counter",
	       "Free database pages handed back to the file system (incremental vacuum).");
	sample(f, "powerhive_retention_pages_returned_total", NULL, NULL,
	       (double)num(db, "pages_returned"));
	family(f, "powerhive_rollup_rows_total", "counter",
	       "Rows rolled up: raw statuses folded, fleet minutes totalled, chain-hours of chips"
	       " summarised.");
	json_object_foreach(json_object_get(db, "rolled_up"), k, d)
		sample(f, "powerhive_rollup_rows_total", "kind", k, (double)json_integer_value(d));
	family(f, "powerhive_database_size_bytes", "gauge", "Size of the database files.");
	sample(f, "powerhive_database_size_bytes", "file", "main", (double)num(db, "size_bytes"));
	sample(f, "powerhive_database_size_bytes", "file", "wal", (double)num(db, "wal_bytes"));
	family(f, "powerhive_feed_published_total", "counter", "Messages published on the feed.");
	sample(f, "powerhive_feed_published_total", NULL, NULL,
	       (double)num(json_object_get(q, "feed"), "published"));
	family(f, "powerhive_feed_dropped_total", "counter",
	       "Feed updates dropped because the feed queue was full.");
	sample(f, "powerhive_feed_dropped_total", NULL, NULL,
	       (double)num(json_object_get(q, "feed"), "dropped"));

	per_kind(f, "powerhive_jobs_sent_total", "counter", "Jobs handed to a worker.", sched,
		 "sent");
	per_kind(f, "powerhive_jobs_done_total", "counter", "Jobs whose result arrived.", sched,
		 "done");
	per_kind(f, "powerhive_jobs_failed_total", "counter", "Jobs a worker reported failed.",
		 sched, "failed");
	per_kind(f, "powerhive_jobs_timed_out_total", "counter",
		 "Jobs with neither result nor failure within the job timeout.", sched,
		 "timed_out");
	per_kind(f, "powerhive_jobs_not_sent_total", "counter",
		 "Jobs not sent: no worker connected or ready.", sched, "not_sent");
	per_kind(f, "powerhive_jobs_skipped_busy_total", "counter",
		 "Slots skipped because the miner's previous job was still out.", sched,
		 "skipped_busy");
	per_kind(f, "powerhive_jobs_outstanding", "gauge", "Jobs out now.", sched, "outstanding");
	family(f, "powerhive_scheduler_miners", "gauge",
	       "Online miners with an API key (the roster).");
	sample(f, "powerhive_scheduler_miners", NULL, NULL, (double)num(sched, "miners"));
	family(f, "powerhive_scheduler_eligible_miners", "gauge",
	       "Miners of the roster that get jobs (scheduler.managed_only applied).");
	sample(f, "powerhive_scheduler_eligible_miners", NULL, NULL,
	       (double)num(sched, "eligible"));

	family(f, "powerhive_sweep_last_timestamp_seconds", "gauge",
	       "When a subnet's last sweep ended (Unix time).");
	json_array_foreach(json_object_get(h, "sweeps"), i, d)
		sample(f, "powerhive_sweep_last_timestamp_seconds", "subnet",
		       json_string_value(json_object_get(d, "subnet")),
		       (double)num(d, "ts_ms") / 1000.0);
	family(f, "powerhive_sweep_duration_seconds", "gauge", "How long a subnet's last sweep took.");
	json_array_foreach(json_object_get(h, "sweeps"), i, d)
		sample(f, "powerhive_sweep_duration_seconds", "subnet",
		       json_string_value(json_object_get(d, "subnet")),
		       (double)num(d, "duration_ms") / 1000.0);
	per(f, "powerhive_sweep_miners", "gauge", "Miners a subnet's last sweep found.",
	    json_object_get(h, "sweeps"), "subnet", "subnet", "miners");
	per(f, "powerhive_sweep_offline_miners", "gauge",
	    "Miners a subnet's last sweep marked offline.", json_object_get(h, "sweeps"), "subnet",
	    "subnet", "offline");
	per(f, "powerhive_sweep_kept_miners", "gauge",
	    "Miners a subnet's last sweep did not list that stayed online: their polls answered.",
	    json_object_get(h, "sweeps"), "subnet", "subnet", "kept");
	per(f, "powerhive_sweep_incomplete_total", "counter",
	    "Sweeps whose chunked list never arrived whole (nobody was marked offline).",
	    json_object_get(h, "sweeps"), "subnet", "subnet", "incomplete");
	{
		static const char *const ends[] = { "done", "failed", "expired", "superseded" };
		json_t *ac = json_object_get(h, "actions");

		family(f, "powerhive_actions_created_total", "counter",
		       "Actions recorded (operators and the enforcer).");
		sample(f, "powerhive_actions_created_total", NULL, NULL, (double)num(ac, "created"));
		family(f, "powerhive_actions_ended_total", "counter",
		       "Actions that reached a final state, by state.");
		for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++)
			sample(f, "powerhive_actions_ended_total", "state", ends[e],
			       (double)num(ac, ends[e]));
		family(f, "powerhive_actions_open", "gauge",
		       "Actions queued, sent or confirming now.");
		sample(f, "powerhive_actions_open", NULL, NULL, (double)num(ac, "open"));
		family(f, "powerhive_actions_enforced_total", "counter",
		       "set_preset actions the max-preset enforcer created.");
		sample(f, "powerhive_actions_enforced_total", NULL, NULL,
		       (double)num(ac, "enforced"));
	}
	{
		static const char *const states[] = { "ok", "stale", "fallback" };
		static const char *const gauges[][2] = {
			{ "target_w", "The balancer's target: available x (1 - margin), watts." },
			{ "estimate_w", "The estimated draw of the farm, watts." },
			{ "measured_w", "The farm's draw as the plant meters it, watts." },
			{ "available_w", "The power the farm may draw, watts." },
		};
		json_t *pw = json_object_get(h, "power");
		const char *state = json_string_value(json_object_get(pw, "state"));
		char name[64];

		for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
			json_t *v = json_object_get(pw, gauges[g][0]);

			if (!json_is_number(v))
				continue;
			snprintf(name, sizeof(name), "powerhive_power_%s", gauges[g][0]);
			family(f, name, "gauge", gauges[g][1]);
			sample(f, name, NULL, NULL, json_number_value(v));
		}
		family(f, "powerhive_power_state", "gauge", "1 for the feed's state now.");
		for (size_t st = 0; st < 3; st++)
			sample(f, "powerhive_power_state", "state", states[st],
			       state && strcmp(state, states[st]) == 0);
		family(f, "powerhive_power_readings_refused_total", "counter",
		       "Plant readings the balancer refused.");
		sample(f, "powerhive_power_readings_refused_total", NULL, NULL,
		       (double)num(pw, "readings_refused"));
	}
	{
		json_t *al = json_object_get(h, "alerts"), *no = json_object_get(al, "notifications_out");
		json_t *by = json_object_get(al, "by_rule");

		family(f, "powerhive_alerts_firing", "gauge", "Alerts firing now, by rule.");
		for (int r = 0; r < HIVE_ALERT_RULES; r++)
			sample(f, "powerhive_alerts_firing", "rule", hive_alert_rule_name(r),
			       (double)num(by, hive_alert_rule_name(r)));
		family(f, "powerhive_alerts_pending", "gauge",
		       "Alert conditions true now that have not held for their for_seconds yet.");
		sample(f, "powerhive_alerts_pending", NULL, NULL, (double)num(al, "pending"));
		family(f, "powerhive_notifications_delivered_total", "counter",
		       "Notifications delivered to a channel.");
		sample(f, "powerhive_notifications_delivered_total", NULL, NULL,
		       (double)num(no, "delivered"));
		family(f, "powerhive_notifications_failed_total", "counter",
		       "Delivery attempts that failed (each retried later).");
		sample(f, "powerhive_notifications_failed_total", NULL, NULL,
		       (double)num(no, "failed_attempts"));
		family(f, "powerhive_notifications_given_up_total", "counter",
		       "Notifications never delivered within alerts.give_up_hours.");
		sample(f, "powerhive_notifications_given_up_total", NULL, NULL,
		       (double)num(no, "given_up"));
		family(f, "powerhive_notifications_pending", "gauge",
		       "Notifications in the outbox waiting for delivery.");
		sample(f, "powerhive_notifications_pending", NULL, NULL,
		       (double)(num(no, "pending") > 0 ? num(no, "pending") : 0));
	}
	{
		unsigned long long failed, refused;

		apid_http_auth_counts(a->http, &failed, &refused);
		family(f, "powerhive_api_signin_failures_total", "counter",
		       "API requests with an unknown or revoked token.");
		sample(f, "powerhive_api_signin_failures_total", NULL, NULL, (double)failed);
		family(f, "powerhive_api_signin_locked_total", "counter",
		       "API requests refused 429: their address failed to sign in too often.");
		sample(f, "powerhive_api_signin_locked_total", NULL, NULL, (double)refused);
	}
	family(f, "powerhive_control_requests_total", "counter", "Requests on bus.control.");
	sample(f, "powerhive_control_requests_total", NULL, NULL,
	       (double)num(json_object_get(h, "control"), "requests"));
	family(f, "powerhive_control_refused_total", "counter",
	       "Credentials or recheck requests refused: not on bus.discovery_control.");
	sample(f, "powerhive_control_refused_total", NULL, NULL,
	       (double)num(json_object_get(h, "control"), "refused"));
	json_decref(h);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return with_miners(buf, len, a->db_path);
}
