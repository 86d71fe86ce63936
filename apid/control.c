/* control — apid's REP socket on bus.control, answered on its own thread:
 *
 *   hive.control.credentials {"mac"} → {"mac","known","api_key","unlock_pass"}
 *   hive.control.recheck     {}      → {"macs","all"}: online miners with
 *                                      no key, or whose status, telemetry
 *                                      or control was refused, and what the
 *                                      last sweeps listed that apid has no
 *                                      online miner for (traffic.h)
 *   hive.control.health      {}      → the GET /api/health document
 *   anything else, or a malformed request → hive.control.error {"error"}
 *
 * Credentials and the recheck list are discoverd's alone: answered only to
 * a request that came in on bus.discovery_control (apid.c listens there
 * with discoverd's CA); on bus.control they get hive.control.error,
 * counted (apid_control_refused) and logged, and nothing is read.
 *
 * Credentials are read through the thread's own read-only connection;
 * they are secrets and never logged. */
#include "control.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "guard.h"
#include "health.h"
#include "hive/bus.h"
#include "hive/log.h"
#include "hive/msg.h"
#include "secrets.h"
#include "store.h"
#include "traffic.h"
#include "writer.h"

struct apid_control {
	struct apid *a;
	struct hive_bus *rep;
	pthread_t thread;
	atomic_bool stop;
	atomic_uint_least64_t requests;
	atomic_uint_least64_t refused;   /* discoverd's requests on another endpoint */
	sqlite3 *db;
	sqlite3_stmt *cred_st;
	sqlite3_stmt *recheck_st;
	size_t recheck_max;          /* MACs that fit one reply */
};

/* A MAC takes this much of a reply ("aa:bb:cc:dd:ee:ff",), the rest at
 * most RECHECK_ROOM. */
#define MAC_JSON_BYTES 20
#define RECHECK_ROOM   4096

static const char recheck_sql[] =
	"SELECT mac FROM miners WHERE online=1 AND ip IS NOT NULL AND (api_key IS NULL"
	" OR api_key='' OR (last_error_kind='auth'"
	" AND last_error_op IN ('status','telemetry','control')))";

static json_t *error_body(const char *fmt, const char *arg)
{
	struct hive_msg_ctl_error e;
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, arg);
	e.error = msg;
	return hive_msg_encode(HIVE_MSG_CTL_ERROR, &e);
}

/* The read-only connection and its statements, opened on first use. 0 / -1. */
static int db_ready(struct apid_control *c)
{
	char err[200];

	if (c->db)
		return 0;
	c->db = apid_store_open_readonly(c->a->db_path, err, sizeof(err));
	if (!c->db ||
	    sqlite3_prepare_v2(c->db, "SELECT api_key, unlock_pass FROM miners WHERE mac=?1", -1,
			       &c->cred_st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, recheck_sql, -1, &c->recheck_st, NULL) != SQLITE_OK) {
		log_errx("control cannot read database err=\"%s\"",
			 c->db ? sqlite3_errmsg(c->db) : err);
		sqlite3_finalize(c->cred_st);
		sqlite3_finalize(c->recheck_st);
		c->cred_st = c->recheck_st = NULL;
		sqlite3_close(c->db);
		c->db = NULL;
		return -1;
	}
	return 0;
}

/* The reply's list as it grows: at most max MACs, then all. */
struct recheck_list {
	char (*macs)[HIVE_MAC_LEN];
	size_t n, cap, max;
	bool all, oom;
};

static void recheck_add(const char *mac, void *arg)
{
	struct recheck_list *l = arg;

	if (l->n == l->max) {
		l->all = true;
		return;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		char (*m)[HIVE_MAC_LEN] = realloc(l->macs, ncap * sizeof(*m));

		if (!m) {
			l->oom = true;
			return;
		}
		l->macs = m;
		l->cap = ncap;
	}
	snprintf(l->macs[l->n++], HIVE_MAC_LEN, "%s", mac ? mac : "");
}

/* The miners discoverd should take the whole path for at their next sweep:
 * every MAC that fits one reply, "all" when there are more. */
static json_t *recheck(struct apid_control *c, const char **topic)
{
	struct hive_msg_recheck_reply r;
	struct recheck_list l = { .max = c->recheck_max };
	json_t *out = NULL;
	int rc;

	if (db_ready(c) < 0) {
		*topic = HIVE_TOPIC_CTL_ERROR;
		return error_body("database unavailable%s", "");
	}
	hive_msg_init(HIVE_MSG_CTL_RECHECK_REPLY, &r);
	while ((rc = sqlite3_step(c->recheck_st)) == SQLITE_ROW && !l.all && !l.oom)
		recheck_add((const char *)sqlite3_column_text(c->recheck_st, 0), &l);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_errx("control recheck query failed err=\"%s\"", sqlite3_errmsg(c->db));
		*topic = HIVE_TOPIC_CTL_ERROR;
		out = error_body("database error%s", "");
		goto out;
	}
	if (c->a->traffic && !l.all)
		apid_traffic_strangers_each(c->a->traffic, recheck_add, &l);
	if (l.oom) {
		*topic = HIVE_TOPIC_CTL_ERROR;
		out = error_body("out of memory%s", "");
		goto out;
	}
	r.all = l.all;
	r.macs = l.macs;
	r.n_macs = l.n;
	out = hive_msg_encode(HIVE_MSG_CTL_RECHECK_REPLY, &r);
out:
	sqlite3_reset(c->recheck_st);
	free(l.macs);
	return out;
}

static json_t *credentials(struct apid_control *c, const json_t *req, const char **topic)
{
	struct hive_msg_credentials q;
	struct hive_msg_credentials_reply r;
	char err[200];
	const char *mac = q.mac;
	json_t *out;
	int rc;

	if (hive_msg_decode(HIVE_MSG_CTL_CREDENTIALS, req, &q, err, sizeof(err)) < 0) {
		*topic = HIVE_TOPIC_CTL_ERROR;
		return error_body("%s", err);
	}
	if (db_ready(c) < 0) {
		*topic = HIVE_TOPIC_CTL_ERROR;
		return error_body("database unavailable%s", "");
	}
	sqlite3_bind_text(c->cred_st, 1, mac, -1, SQLITE_STATIC);
	rc = sqlite3_step(c->cred_st);
	if (rc == SQLITE_ROW) {
		/* Opened here, for this reply only; one that does not open is
		 * left out, as if none were stored (the log says why). */
		const struct apid_secrets *s = c->a->writer ? apid_writer_secrets(c->a->writer) : NULL;
		char key[APID_SECRET_MAX + 1], pass[APID_SECRET_MAX + 1], why[200];
		static const char *const col[2] = { "api_key", "unlock_pass" };
		char *plain[2] = { key, pass };

		hive_msg_init(HIVE_MSG_CTL_CREDENTIALS_REPLY, &r);
		snprintf(r.mac, sizeof(r.mac), "%s", mac);
		r.known = 1;
		for (int i = 0; i < 2; i++)
			if (apid_secrets_reveal(s, col[i], mac,
						(const char *)sqlite3_column_text(c->cred_st, i),
						plain[i], APID_SECRET_MAX + 1, why, sizeof(why)) < 0) {
				char what[64];

				snprintf(what, sizeof(what), "credentials %s %s", col[i], mac);
				hive_log_complain(what, "control credentials: stored %s does not"
						  " open mac=%s err=\"%s\"", col[i], mac, why);
			}
		r.api_key = key[0] ? key : NULL;
		r.unlock_pass = pass[0] ? pass : NULL;
		out = hive_msg_encode(HIVE_MSG_CTL_CREDENTIALS_REPLY, &r);
		explicit_bzero(key, sizeof(key));
		explicit_bzero(pass, sizeof(pass));
	} else if (rc == SQLITE_DONE) {
		hive_msg_init(HIVE_MSG_CTL_CREDENTIALS_REPLY, &r);
		snprintf(r.mac, sizeof(r.mac), "%s", mac);
		r.known = 0;
		out = hive_msg_encode(HIVE_MSG_CTL_CREDENTIALS_REPLY, &r);
	} else {
		log_errx("control credentials query failed mac=%s err=\"%s\"", mac,
			 sqlite3_errmsg(c->db));
		*topic = HIVE_TOPIC_CTL_ERROR;
		out = error_body("database error%s", "");
	}
	sqlite3_reset(c->cred_st);
	return out;
}

static void answer(struct apid_control *c, const struct hive_envelope *req)
{
	const char *topic = req->topic;
	json_t *body;

	bool discoverds = strcmp(req->topic, HIVE_TOPIC_CTL_CREDENTIALS) == 0 ||
			  strcmp(req->topic, HIVE_TOPIC_CTL_RECHECK) == 0;

	if (discoverds && req->endpoint != APID_ENDPOINT_DISCOVERY) {
		atomic_fetch_add(&c->refused, 1);
		hive_log_complain("control refused", "control request refused topic=%s src=%s"
				  " reason=\"discoverd's request, not on bus.discovery_control\"",
				  req->topic, req->src);
		topic = HIVE_TOPIC_CTL_ERROR;
		body = error_body("%s is answered on bus.discovery_control only (discoverd's"
				  " endpoint): refused", req->topic);
	} else if (strcmp(req->topic, HIVE_TOPIC_CTL_CREDENTIALS) == 0) {
		body = credentials(c, req->body, &topic);
	} else if (strcmp(req->topic, HIVE_TOPIC_CTL_RECHECK) == 0) {
		body = recheck(c, &topic);
	} else if (strcmp(req->topic, HIVE_TOPIC_CTL_HEALTH) == 0) {
		body = apid_health(c->a);
	} else {
		topic = HIVE_TOPIC_CTL_ERROR;
		body = error_body("unknown control topic \"%.64s\"", req->topic);
	}
	if (!body) {
		topic = HIVE_TOPIC_CTL_ERROR;
		body = error_body("out of memory%s", "");
	}
	if (hive_bus_send(c->rep, topic, body, false) != HIVE_BUS_OK)
		hive_log_complain("control reply", "control reply failed topic=%s", topic);
	json_decref(body);
}

static void *control_main(void *arg)
{
	struct apid_control *c = arg;

	while (!atomic_load(&c->stop)) {
		struct hive_envelope env;
		int rc;

		memset(&env, 0, sizeof(env));
		rc = hive_bus_recv(c->rep, &env, 200);
		if (rc == HIVE_BUS_OK) {
			atomic_fetch_add(&c->requests, 1);
			answer(c, &env);
			hive_envelope_clear(&env);
		} else if (rc == HIVE_BUS_REJECTED) {
			/* The requester still waits for an answer. */
			json_t *body = error_body("malformed request%s", "");

			atomic_fetch_add(&c->requests, 1);
			hive_bus_send(c->rep, HIVE_TOPIC_CTL_ERROR, body, false);
			json_decref(body);
		} else if (rc == HIVE_BUS_CLOSED) {
			break;
		}
	}
	return NULL;
}

struct apid_control *apid_control_start(struct apid *a, struct hive_bus *rep, char *err,
					size_t errlen)
{
	struct apid_control *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		snprintf(err, errlen, "control: out of memory");
		return NULL;
	}
	c->a = a;
	c->rep = rep;
	c->recheck_max = a->d.cfg.bus.max_message_bytes > RECHECK_ROOM + MAC_JSON_BYTES ?
			 (size_t)(a->d.cfg.bus.max_message_bytes - RECHECK_ROOM) / MAC_JSON_BYTES : 1;
	rc = pthread_create(&c->thread, NULL, control_main, c);
	if (rc != 0) {
		snprintf(err, errlen, "control thread: %s", strerror(rc));
		free(c);
		return NULL;
	}
	return c;
}

void apid_control_stop(struct apid_control *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
	sqlite3_finalize(c->cred_st);
	sqlite3_finalize(c->recheck_st);
	sqlite3_close(c->db);
	free(c);
}

uint64_t apid_control_requests(struct apid_control *c)
{
	return c ? atomic_load(&c->requests) : 0;
}

uint64_t apid_control_refused(struct apid_control *c)
{
	return c ? atomic_load(&c->refused) : 0;
}
