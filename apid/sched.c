/* sched — see sched.h.
 *
 * The roster is an array sorted by MAC: the writer's "job done" finds a
 * miner by binary search, and a new roster is merged with the old one so
 * that miners keep their slot and their job out. A tick walks the array;
 * at 10,000 miners that is a few microseconds of comparisons.
 */
#include "sched.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "hive/clock.h"
#include "hive/log.h"
#include "hive/mac.h"
#include "hive/msg.h"
#include "secrets.h"

#define TICK_MAX_MS 1000
#define GUARD_SLACK_MS 10000     /* a result's way back, on top of its job's time */
#define CONTROL_KEEP_MS 300000   /* a control job's result, after its deadline */

struct miner {
	char mac[HIVE_MAC_LEN];
	char ip[INET_ADDRSTRLEN];
	char *api_key;
	bool managed;
	char endpoint[8];
	int64_t next[APID_JOB_KINDS];      /* monotonic ms of the next slot */
	long long job[APID_JOB_KINDS];     /* job out, 0 = none */
	int64_t deadline[APID_JOB_KINDS];  /* monotonic ms it times out */
	bool soon;                         /* a status read-back is wanted now */
};

struct apid_sched {
	pthread_mutex_t mu;
	struct apid_sched_opts o;
	struct hive_bus *push[APID_JOB_KINDS];
	struct hive_bus *push_control;
	struct apid_guard *guard;          /* nonces of the jobs sent; may be NULL */
	const struct apid_secrets *secrets; /* opens the roster's keys */
	uint64_t control_sent, control_not_sent;
	struct miner *m;
	size_t n;
	long long last_job;
	struct apid_sched_counts c[APID_JOB_KINDS];
	uint64_t roster_loads;
};

static const char *const kind_names[APID_JOB_KINDS] = { "status", "telemetry" };
static const char *const kind_topics[APID_JOB_KINDS] = { HIVE_TOPIC_JOB_STATUS,
							 HIVE_TOPIC_JOB_TELEMETRY };
static const enum hive_msg_kind kind_msgs[APID_JOB_KINDS] = { HIVE_MSG_JOB_STATUS,
							      HIVE_MSG_JOB_TELEMETRY };

int64_t apid_sched_slot(const char *mac, int64_t interval_ms)
{
	uint64_t h = 1469598103934665603ULL;

	if (interval_ms <= 0)
		return 0;
	for (; *mac; mac++)
		h = (h ^ (unsigned char)*mac) * 1099511628211ULL;
	/* FNV's low bits are weak on short keys: fold the high half in. */
	h ^= h >> 29;
	return (int64_t)(h % (uint64_t)interval_ms);
}

/* The first moment >= now that falls on the miner's slot. */
static int64_t next_slot(const char *mac, int64_t interval, int64_t now)
{
	int64_t slot = apid_sched_slot(mac, interval);
	int64_t off = ((slot - now) % interval + interval) % interval;

	return now + off;
}

static void miners_free(struct miner *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].api_key);
	free(m);
}

struct apid_sched *apid_sched_new(const struct apid_sched_opts *o,
				  struct hive_bus *push_status, struct hive_bus *push_telemetry)
{
	struct apid_sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	s->o = *o;
	for (int k = 0; k < APID_JOB_KINDS; k++)
		if (s->o.interval_ms[k] < 1)
			s->o.interval_ms[k] = 1000;
	s->push[APID_JOB_STATUS] = push_status;
	s->push[APID_JOB_TELEMETRY] = push_telemetry;
	/* Job ids differ across restarts, so a late result of a previous
	 * apid never frees a miner by accident. */
	s->last_job = (long long)(hive_wall_ms() % 1000000000LL) * 1000;
	return s;
}

void apid_sched_free(struct apid_sched *s)
{
	if (!s)
		return;
	miners_free(s->m, s->n);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int64_t apid_sched_interval_ms(struct apid_sched *s, enum apid_job_kind k)
{
	int64_t iv;

	if (!s || (unsigned)k >= APID_JOB_KINDS)
		return 0;
	pthread_mutex_lock(&s->mu);
	iv = s->o.interval_ms[k];
	pthread_mutex_unlock(&s->mu);
	return iv;
}

void apid_sched_configure(struct apid_sched *s, const struct apid_sched_opts *o)
{
	int64_t now = hive_mono_ms();

	pthread_mutex_lock(&s->mu);
	for (int k = 0; k < APID_JOB_KINDS; k++) {
		int64_t iv = o->interval_ms[k] < 1 ? 1000 : o->interval_ms[k];

		if (iv != s->o.interval_ms[k])
			for (size_t i = 0; i < s->n; i++)
				s->m[i].next[k] = next_slot(s->m[i].mac, iv, now);
		s->o.interval_ms[k] = iv;
	}
	s->o.job_timeout_ms = o->job_timeout_ms;
	s->o.managed_only = o->managed_only;
	s->o.port = o->port;
	pthread_mutex_unlock(&s->mu);
}

static int cmp_miner(const void *a, const void *b)
{
	return strcmp(((const struct miner *)a)->mac, ((const struct miner *)b)->mac);
}

static struct miner *find(struct miner *m, size_t n, const char *mac)
{
	struct miner key;

	snprintf(key.mac, sizeof(key.mac), "%s", mac);
	return n ? bsearch(&key, m, n, sizeof(*m), cmp_miner) : NULL;
}

/* Takes over m (n entries): sorts it, carries over the state of miners
 * already known, frees the old roster. */
static void install(struct apid_sched *s, struct miner *m, size_t n, int64_t now)
{
	if (n > 1)
		qsort(m, n, sizeof(*m), cmp_miner);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		struct miner *old = find(s->m, s->n, m[i].mac);

		m[i].soon = old && old->soon;

		for (int k = 0; k < APID_JOB_KINDS; k++) {
			if (old) {
				m[i].next[k] = old->next[k];
				m[i].job[k] = old->job[k];
				m[i].deadline[k] = old->deadline[k];
			} else {
				m[i].next[k] = next_slot(m[i].mac, s->o.interval_ms[k], now);
				m[i].job[k] = 0;
			}
		}
	}
	miners_free(s->m, s->n);
	s->m = m;
	s->n = n;
	s->roster_loads++;
	pthread_mutex_unlock(&s->mu);
}

static int fill(struct miner *d, const char *mac, const char *ip, const char *key,
		bool managed, const char *endpoint)
{
	memset(d, 0, sizeof(*d));
	if (!mac || hive_mac_normalise(mac, d->mac) < 0 || !ip || strlen(ip) >= sizeof(d->ip) ||
	    !key || !*key)
		return -1;
	snprintf(d->ip, sizeof(d->ip), "%s", ip);
	snprintf(d->endpoint, sizeof(d->endpoint), "%s",
		 endpoint && strcmp(endpoint, "boards") == 0 ? "boards" : "chains");
	d->managed = managed;
	d->api_key = strdup(key);
	return d->api_key ? 0 : -1;
}

int apid_sched_set_roster(struct apid_sched *s, const struct apid_roster_miner *r, size_t n,
			  int64_t now_ms)
{
	struct miner *m = calloc(n ? n : 1, sizeof(*m));
	size_t k = 0;

	if (!m)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (fill(&m[k], r[i].mac, r[i].ip, r[i].api_key, r[i].managed, r[i].endpoint) == 0)
			k++;
	install(s, m, k, now_ms);
	return 0;
}

int apid_sched_load_roster(struct apid_sched *s, sqlite3 *db, int64_t now_ms, char *err,
			   size_t errlen)
{
	static const char sql[] =
		"SELECT mac, ip, api_key, managed, telemetry_source FROM miners"
		" WHERE online=1 AND ip IS NOT NULL AND api_key IS NOT NULL AND api_key<>''";
	sqlite3_stmt *st = NULL;
	struct miner *m = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(st, 0);
		char key[APID_SECRET_MAX + 1], why[200], what[64];

		if (apid_secrets_reveal(s->secrets, "api_key", mac,
					(const char *)sqlite3_column_text(st, 2), key, sizeof(key), why,
					sizeof(why)) < 0) {
			snprintf(what, sizeof(what), "roster key %s", mac ? mac : "?");
			hive_log_complain(what, "miner left out of the roster: its key does not"
					  " open mac=%s err=\"%s\"", mac ? mac : "?", why);
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct miner *nm = realloc(m, nc * sizeof(*nm));

			if (!nm)
				goto fail;
			m = nm;
			cap = nc;
		}
		if (fill(&m[n], mac, (const char *)sqlite3_column_text(st, 1), key,
			 sqlite3_column_int(st, 3) != 0,
			 (const char *)sqlite3_column_text(st, 4)) == 0)
			n++;
		else
			free(m[n].api_key);
		explicit_bzero(key, sizeof(key));
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	install(s, m, n, now_ms);
	return 0;
fail:
	snprintf(err, errlen, "roster: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	miners_free(m, n);
	return -1;
}

/* Sends one job; called with mu held. */
static void send_job(struct apid_sched *s, struct miner *m, int k, int64_t now)
{
	long long id = ++s->last_job;
	struct hive_msg_job job;
	char nonce[HIVE_NONCE_CHARS + 1];
	json_t *body;
	int rc = HIVE_BUS_TIMEOUT;

	/* A PUSH socket buffers while no worker is connected: that is no
	 * worker, not a job sent. */
	if (s->push[k] && hive_bus_peers(s->push[k]) > 0) {
		hive_msg_init(kind_msgs[k], &job);
		job.job = id;
		snprintf(job.mac, sizeof(job.mac), "%s", m->mac);
		snprintf(job.ip, sizeof(job.ip), "%s", m->ip);
		job.port = s->o.port;
		job.api_key = m->api_key;
		job.deadline = hive_wall_ms() + s->o.job_timeout_ms;
		if (k == APID_JOB_TELEMETRY)
			job.endpoint = m->endpoint;
		/* A late result is still taken (stored, not freeing the miner)
		 * for a second job timeout. */
		apid_guard_issue(s->guard,
				 k == APID_JOB_STATUS ? APID_GUARD_STATUS : APID_GUARD_TELEMETRY, id,
				 m->mac, nonce, 2 * s->o.job_timeout_ms + GUARD_SLACK_MS);
		job.nonce = nonce;
		body = hive_msg_encode(kind_msgs[k], &job);
		rc = body ? hive_bus_send(s->push[k], kind_topics[k], body, true) : HIVE_BUS_ERROR;
		json_decref(body);
	}
	if (rc == HIVE_BUS_OK) {
		m->job[k] = id;
		m->deadline[k] = now + s->o.job_timeout_ms;
		s->c[k].sent++;
		hive_log_recovered(kind_names[k], "jobs sent again queue=%s", kind_names[k]);
	} else {
		s->c[k].not_sent++;
		hive_log_complain(kind_names[k], "job not sent queue=%s reason=%s", kind_names[k],
				  rc == HIVE_BUS_TIMEOUT ? "no worker ready" : "bus error");
	}
}

int64_t apid_sched_tick(struct apid_sched *s, int64_t now)
{
	int64_t wake = now + TICK_MAX_MS;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++) {
		struct miner *m = &s->m[i];
		bool eligible = !s->o.managed_only || m->managed;

		for (int k = 0; k < APID_JOB_KINDS; k++) {
			int64_t iv = s->o.interval_ms[k];

			if (m->job[k] && now >= m->deadline[k]) {
				s->c[k].timed_out++;
				log_debug("job timed out queue=%s mac=%s job=%lld", kind_names[k],
					  m->mac, m->job[k]);
				m->job[k] = 0;
			}
			if (k == APID_JOB_STATUS && m->soon && !m->job[k] && eligible) {
				m->soon = false;
				send_job(s, m, k, now);
			}
			if (now >= m->next[k]) {
				/* The slot after now: a stalled loop skips, never bursts. */
				m->next[k] += iv * ((now - m->next[k]) / iv + 1);
				if (!eligible)
					;
				else if (m->job[k])
					s->c[k].skipped_busy++;
				else
					send_job(s, m, k, now);
			}
			if (m->next[k] < wake)
				wake = m->next[k];
			if (m->job[k] && m->deadline[k] < wake)
				wake = m->deadline[k];
		}
	}
	pthread_mutex_unlock(&s->mu);
	return wake > now ? wake - now : 0;
}

void apid_sched_job_done(struct apid_sched *s, const char *mac, long long job, bool ok)
{
	struct miner *m;

	pthread_mutex_lock(&s->mu);
	m = find(s->m, s->n, mac);
	for (int k = 0; m && k < APID_JOB_KINDS; k++) {
		if (m->job[k] != job || job == 0)
			continue;
		m->job[k] = 0;
		if (ok)
			s->c[k].done++;
		else
			s->c[k].failed++;
	}
	pthread_mutex_unlock(&s->mu);
}

void apid_sched_set_guard(struct apid_sched *s, struct apid_guard *g)
{
	pthread_mutex_lock(&s->mu);
	s->guard = g;
	pthread_mutex_unlock(&s->mu);
}

void apid_sched_set_secrets(struct apid_sched *s, const struct apid_secrets *secrets)
{
	pthread_mutex_lock(&s->mu);
	s->secrets = secrets;
	pthread_mutex_unlock(&s->mu);
}

void apid_sched_set_control_bus(struct apid_sched *s, struct hive_bus *push_control)
{
	pthread_mutex_lock(&s->mu);
	s->push_control = push_control;
	pthread_mutex_unlock(&s->mu);
}

int apid_sched_control(struct apid_sched *s, const char *mac, long long action, const char *kind,
		       const char *preset, int64_t deadline_wall_ms, long long *job)
{
	struct hive_msg_control_job cj;
	char nonce[HIVE_NONCE_CHARS + 1];
	struct miner *m;
	json_t *body = NULL;
	int rc = -1;

	pthread_mutex_lock(&s->mu);
	m = find(s->m, s->n, mac);
	if (m && s->push_control) {
		if (hive_bus_peers(s->push_control) == 0) {
			rc = 1;
		} else {
			hive_msg_init(HIVE_MSG_JOB_CONTROL, &cj);
			cj.job = ++s->last_job;
			snprintf(cj.mac, sizeof(cj.mac), "%s", m->mac);
			snprintf(cj.ip, sizeof(cj.ip), "%s", m->ip);
			cj.port = s->o.port;
			cj.api_key = m->api_key;
			cj.deadline = deadline_wall_ms;
			cj.action = action;
			cj.kind = kind;
			cj.preset = preset;
			apid_guard_issue(s->guard, APID_GUARD_CONTROL, cj.job, m->mac, nonce,
					 deadline_wall_ms - hive_wall_ms() + CONTROL_KEEP_MS);
			cj.nonce = nonce;
			body = hive_msg_encode(HIVE_MSG_JOB_CONTROL, &cj);
			rc = body ? hive_bus_send(s->push_control, HIVE_TOPIC_JOB_CONTROL, body, true)
				  : HIVE_BUS_ERROR;
			if (rc == HIVE_BUS_OK) {
				*job = cj.job;
				s->control_sent++;
				rc = 0;
			} else {
				s->control_not_sent++;
				rc = rc == HIVE_BUS_TIMEOUT ? 1 : -1;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	json_decref(body);
	return rc;
}

void apid_sched_poll_soon(struct apid_sched *s, const char *mac)
{
	struct miner *m;

	pthread_mutex_lock(&s->mu);
	if ((m = find(s->m, s->n, mac)))
		m->soon = true;   /* the next tick, off the miner's slot: the slot stays */
	pthread_mutex_unlock(&s->mu);
}

void apid_sched_get_stats(struct apid_sched *s, struct apid_sched_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	for (int k = 0; k < APID_JOB_KINDS; k++)
		out->kind[k] = s->c[k];
	for (size_t i = 0; i < s->n; i++) {
		if (!s->o.managed_only || s->m[i].managed)
			out->eligible++;
		for (int k = 0; k < APID_JOB_KINDS; k++)
			if (s->m[i].job[k])
				out->kind[k].outstanding++;
	}
	out->miners = s->n;
	out->roster_loads = s->roster_loads;
	pthread_mutex_unlock(&s->mu);
}
