/* feed — re-publishes on bus.feed what the writer committed: miner changes
 * (the row as the API shows it: secrets as has_api_key/has_unlock_pass),
 * statuses (the stored result with its row id) and model changes (with
 * presets).
 *
 * Its own thread and a bounded queue: the writer never waits for the feed;
 * when the queue is full the update is dropped and counted. With no
 * subscriber connected nothing is built or sent. */
#include "feed.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/bus.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "store.h"

#define FEED_QUEUE 8192

enum item_kind { FEED_MINER, FEED_MODEL, FEED_STATUS };

struct item {
	enum item_kind kind;
	char key[128];
	long long id, ts;
	json_t *body;
};

struct apid_feed {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item q[FEED_QUEUE];
	size_t head, len;
	bool stop;
	pthread_t thread;
	struct hive_bus *pub;
	char db_path[4096];
	sqlite3 *db;                 /* feed thread only */
	sqlite3_stmt *miner_st, *model_st, *presets_st;
	uint64_t published, dropped;
};

static void push(struct apid_feed *f, enum item_kind kind, const char *key, long long id,
		 long long ts, json_t *body)
{
	pthread_mutex_lock(&f->mu);
	if (f->len == FEED_QUEUE || f->stop) {
		f->dropped++;
		pthread_mutex_unlock(&f->mu);
		json_decref(body);
		return;
	}
	struct item *it = &f->q[(f->head + f->len) % FEED_QUEUE];

	it->kind = kind;
	snprintf(it->key, sizeof(it->key), "%s", key);
	it->id = id;
	it->ts = ts;
	it->body = body;
	f->len++;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void apid_feed_status(struct apid_feed *f, const char *mac, long long id, long long ts_ms,
		      json_t *body)
{
	push(f, FEED_STATUS, mac, id, ts_ms, body);
}

void apid_feed_miner(struct apid_feed *f, const char *mac)
{
	push(f, FEED_MINER, mac, 0, 0, NULL);
}

void apid_feed_model(struct apid_feed *f, const char *alias)
{
	push(f, FEED_MODEL, alias, 0, 0, NULL);
}

void apid_feed_stats(struct apid_feed *f, uint64_t *published, uint64_t *dropped)
{
	pthread_mutex_lock(&f->mu);
	*published = f->published;
	*dropped = f->dropped;
	pthread_mutex_unlock(&f->mu);
}

/* A column as JSON: integer, real, text or null. */
static json_t *column(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:   return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT:    return json_string((const char *)sqlite3_column_text(st, i));
	default:             return json_null();
	}
}

static int open_db(struct apid_feed *f)
{
	char err[512];

	if (f->db)
		return 0;
	f->db = apid_store_open_readonly(f->db_path, err, sizeof(err));
	if (!f->db) {
		hive_log_complain("feed db", "feed cannot read database err=\"%s\"", err);
		return -1;
	}
	if (sqlite3_prepare_v2(f->db,
			       "SELECT mac, ip, last_ip, subnet, model, miner_name, fw_name,"
			       " fw_version, hostname, coalesce(api_key, '')<>'',"
			       " coalesce(unlock_pass, '')<>'', managed, online, first_seen_ms,"
			       " last_seen_ms, last_error, last_error_kind, last_error_op,"
			       " last_error_ms, last_status_id, last_telemetry_ms, telemetry_source"
			       " FROM miners WHERE mac=?1", -1, &f->miner_st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(f->db,
			       "SELECT alias, name, fw_version, num_chains, chips_per_chain,"
			       " topology, max_preset, updated_ms FROM models WHERE alias=?1",
			       -1, &f->model_st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(f->db,
			       "SELECT name, pretty, watts, th, ord, tuned FROM model_presets"
			       " WHERE model=?1 ORDER BY ord", -1, &f->presets_st, NULL) != SQLITE_OK) {
		hive_log_complain("feed db", "feed cannot prepare err=\"%s\"", sqlite3_errmsg(f->db));
		sqlite3_finalize(f->miner_st);
		sqlite3_finalize(f->model_st);
		sqlite3_finalize(f->presets_st);
		f->miner_st = f->model_st = f->presets_st = NULL;
		sqlite3_close(f->db);
		f->db = NULL;
		return -1;
	}
	return 0;
}

static json_t *miner_body(struct apid_feed *f, const char *mac)
{
	static const char *const names[] = {
		"mac", "ip", "last_ip", "subnet", "model", "miner_name", "fw_name", "fw_version",
		"hostname", "has_api_key", "has_unlock_pass", "managed", "online",
		"first_seen_ms", "last_seen_ms",
	};
	sqlite3_stmt *st = f->miner_st;
	json_t *o = NULL;
	int i;

	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	o = json_object();
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (i >= 9 && i <= 12)     /* flags */
			json_object_set_new(o, names[i], json_boolean(sqlite3_column_int(st, i)));
		else
			json_object_set_new(o, names[i], column(st, i));
	}
	if (sqlite3_column_type(st, 15) != SQLITE_NULL)
		json_object_set_new(o, "last_error",
				    json_pack("{s:o,s:o,s:o,s:o}", "message", column(st, 15),
					      "kind", column(st, 16), "op", column(st, 17),
					      "ts_ms", column(st, 18)));
	else
		json_object_set_new(o, "last_error", json_null());
	json_object_set_new(o, "last_status_id", column(st, 19));
	json_object_set_new(o, "last_telemetry_ms", column(st, 20));
	json_object_set_new(o, "telemetry_source", column(st, 21));
out:
	sqlite3_reset(st);
	return o;
}

static json_t *model_body(struct apid_feed *f, const char *alias)
{
	static const char *const names[] = { "alias", "name", "fw_version", "num_chains",
					     "chips_per_chain", "topology", "max_preset",
					     "updated_ms" };
	sqlite3_stmt *st = f->model_st;
	json_t *o = NULL, *presets;

	sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	o = json_object();
	for (int i = 0; i < 8; i++) {
		if (i == 5 && sqlite3_column_type(st, i) == SQLITE_TEXT)
			json_object_set_new(o, names[i],
					    json_loads((const char *)sqlite3_column_text(st, i), 0,
						       NULL));
		else
			json_object_set_new(o, names[i], column(st, i));
	}
	presets = json_array();
	sqlite3_bind_text(f->presets_st, 1, alias, -1, SQLITE_STATIC);
	while (sqlite3_step(f->presets_st) == SQLITE_ROW)
		json_array_append_new(presets, json_pack(
			"{s:o,s:o,s:o,s:o,s:o,s:b}", "name", column(f->presets_st, 0),
			"pretty", column(f->presets_st, 1), "watts", column(f->presets_st, 2),
			"th", column(f->presets_st, 3), "order", column(f->presets_st, 4),
			"tuned", sqlite3_column_int(f->presets_st, 5)));
	sqlite3_reset(f->presets_st);
	json_object_set_new(o, "presets", presets);
out:
	sqlite3_reset(st);
	return o;
}

static void publish(struct apid_feed *f, struct item *it)
{
	json_t *body = NULL;
	const char *topic;

	switch (it->kind) {
	case FEED_STATUS:
		topic = HIVE_TOPIC_FEED_STATUS;
		body = it->body;
		it->body = NULL;
		if (body) {
			json_object_set_new(body, "mac", json_string(it->key));
			json_object_set_new(body, "id", json_integer(it->id));
			json_object_set_new(body, "ts_ms", json_integer(it->ts));
		}
		break;
	case FEED_MINER:
		topic = HIVE_TOPIC_FEED_MINER;
		if (open_db(f) == 0)
			body = miner_body(f, it->key);
		break;
	default:
		topic = HIVE_TOPIC_FEED_MODEL;
		if (open_db(f) == 0)
			body = model_body(f, it->key);
		break;
	}
	if (!body)
		return;
	if (hive_bus_send(f->pub, topic, body, true) == HIVE_BUS_OK) {
		pthread_mutex_lock(&f->mu);
		f->published++;
		pthread_mutex_unlock(&f->mu);
	}
	json_decref(body);
}

static void *feed_main(void *arg)
{
	struct apid_feed *f = arg;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		struct item it;

		while (f->len == 0 && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->len == 0)
			break;
		it = f->q[f->head];
		f->head = (f->head + 1) % FEED_QUEUE;
		f->len--;
		pthread_mutex_unlock(&f->mu);
		if (hive_bus_peers(f->pub) > 0)
			publish(f, &it);
		json_decref(it.body);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

struct apid_feed *apid_feed_start(const char *db_path, struct hive_bus *pub, char *err,
				  size_t errlen)
{
	struct apid_feed *f = calloc(1, sizeof(*f));
	int rc;

	if (!f) {
		snprintf(err, errlen, "feed: out of memory");
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->pub = pub;
	snprintf(f->db_path, sizeof(f->db_path), "%s", db_path);
	rc = pthread_create(&f->thread, NULL, feed_main, f);
	if (rc != 0) {
		snprintf(err, errlen, "feed thread: %s", strerror(rc));
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return NULL;
	}
	return f;
}

void apid_feed_stop(struct apid_feed *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	sqlite3_finalize(f->miner_st);
	sqlite3_finalize(f->model_st);
	sqlite3_finalize(f->presets_st);
	sqlite3_close(f->db);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
