/* guard — see guard.h.
 *
 * Issued jobs live in a hash table by job id (chained) and in a list in
 * the order they were issued; the oldest leave when answered or expired
 * (looked at on every issue and claim), and past GUARD_JOBS_MAX the
 * oldest go regardless, so a flood of jobs cannot grow apid's memory.
 * At 10,000 miners (status every 15 s, telemetry every 60 s, a job kept
 * twice its timeout) about 60,000 jobs are remembered: ~5 MB. */
#include "guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hive/clock.h"
#include "hive/log.h"

#define GUARD_BUCKETS   65536           /* power of two */
#define GUARD_JOBS_MAX  (1 << 18)
#define GUARD_SWEEPS_MAX 1024           /* subnets with a sweep held */

struct issued {
	struct issued *hnext;           /* same bucket */
	struct issued *fnext;           /* issued after this one */
	long long job;
	int64_t expires;                /* monotonic ms */
	unsigned char kind;             /* enum apid_guard_job */
	bool claimed;                   /* answered: out of the table, still in the list */
	char mac[HIVE_MAC_LEN];
	char nonce[HIVE_NONCE_CHARS + 1];
};

struct held_sweep {
	char subnet[HIVE_CIDR_LEN];
};

struct apid_guard {
	pthread_mutex_t mu;
	/* settings */
	struct hive_subnet *subnets;
	size_t n_subnets;
	int64_t skew_ms;
	double drop_share;
	bool require_nonce;
	/* issued jobs */
	struct issued **bucket;
	struct issued *head, *tail;     /* the list, oldest first */
	size_t n_jobs;                  /* in the list, claimed ones included */
	size_t n_open;                  /* not claimed */
	uint64_t dropped;               /* forgotten past GUARD_JOBS_MAX */
	/* random bits for nonces */
	unsigned char pool[512];
	size_t pool_left;
	/* sweeps held for confirmation */
	struct held_sweep held[GUARD_SWEEPS_MAX];
	size_t n_held;
};

static size_t bucket_of(long long job)
{
	uint64_t h = (uint64_t)job * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 48) & (GUARD_BUCKETS - 1);
}

struct apid_guard *apid_guard_new(const struct hive_cfg *cfg)
{
	struct apid_guard *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	if (!(g->bucket = calloc(GUARD_BUCKETS, sizeof(*g->bucket)))) {
		free(g);
		return NULL;
	}
	pthread_mutex_init(&g->mu, NULL);
	g->require_nonce = true;
	g->drop_share = 0.5;
	g->skew_ms = 60000;
	if (cfg)
		apid_guard_configure(g, cfg);
	return g;
}

void apid_guard_free(struct apid_guard *g)
{
	if (!g)
		return;
	while (g->head) {
		struct issued *e = g->head;

		g->head = e->fnext;
		free(e);
	}
	free(g->bucket);
	free(g->subnets);
	explicit_bzero(g->pool, sizeof(g->pool));
	pthread_mutex_destroy(&g->mu);
	free(g);
}

void apid_guard_configure(struct apid_guard *g, const struct hive_cfg *cfg)
{
	struct hive_subnet *sn = NULL;
	size_t n = cfg->network.n_subnets;

	if (n && (sn = malloc(n * sizeof(*sn))))
		memcpy(sn, cfg->network.subnets, n * sizeof(*sn));
	pthread_mutex_lock(&g->mu);
	if (!n || sn) {
		free(g->subnets);
		g->subnets = sn;
		g->n_subnets = n;
	}
	g->skew_ms = (int64_t)cfg->network.max_clock_skew_seconds * 1000;
	g->drop_share = cfg->network.sweep_drop_confirm_share;
	g->require_nonce = cfg->bus.require_job_nonce;
	pthread_mutex_unlock(&g->mu);
	if (!cfg->bus.require_job_nonce)
		log_warnx("bus.require_job_nonce is false: results are accepted without their"
			  " job's nonce (tests and benchmarks only)");
}

/* ---------------------------------------------------------------- jobs */

/* Takes e out of its bucket; with mu held. */
static void unhash(struct apid_guard *g, struct issued *e)
{
	struct issued **pp = &g->bucket[bucket_of(e->job)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	e->claimed = true;
	g->n_open--;
}

/* Lets go of the oldest jobs that are answered or expired, and of any
 * past the cap; with mu held. */
static void prune(struct apid_guard *g, int64_t now)
{
	while (g->head && (g->head->claimed || g->head->expires <= now ||
			   g->n_jobs > GUARD_JOBS_MAX)) {
		struct issued *e = g->head;

		if (!e->claimed) {
			if (e->expires > now)
				g->dropped++;
			unhash(g, e);
		}
		g->head = e->fnext;
		if (!g->head)
			g->tail = NULL;
		g->n_jobs--;
		free(e);
	}
}

/* 8 random bytes from the pool; with mu held. */
static void random8(struct apid_guard *g, unsigned char out[8])
{
	if (g->pool_left < 8) {
		size_t got = 0;

		while (got < sizeof(g->pool)) {
			ssize_t r = getrandom(g->pool + got, sizeof(g->pool) - got, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				/* Never seen on Linux ≥ 3.17 once booted; a nonce
				 * must not be guessable, so this is fatal. */
				log_errx("getrandom failed: %s", strerror(errno));
				abort();
			}
			got += (size_t)r;
		}
		g->pool_left = sizeof(g->pool);
	}
	g->pool_left -= 8;
	memcpy(out, g->pool + g->pool_left, 8);
	explicit_bzero(g->pool + g->pool_left, 8);
}

static void make_nonce(struct apid_guard *g, char nonce[HIVE_NONCE_CHARS + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[8];

	random8(g, b);
	for (int i = 0; i < 8; i++) {
		nonce[2 * i] = hex[b[i] >> 4];
		nonce[2 * i + 1] = hex[b[i] & 15];
	}
	nonce[HIVE_NONCE_CHARS] = '\0';
}

void apid_guard_issue(struct apid_guard *g, enum apid_guard_job kind, long long job,
		      const char *mac, char nonce[HIVE_NONCE_CHARS + 1], int64_t keep_ms)
{
	static pthread_mutex_t alone = PTHREAD_MUTEX_INITIALIZER;
	struct issued *e;
	int64_t now = hive_mono_ms();

	if (!g) {
		/* No guard (unit tests of a part): a nonce all the same. */
		static struct apid_guard solo;

		pthread_mutex_lock(&alone);
		make_nonce(&solo, nonce);
		pthread_mutex_unlock(&alone);
		return;
	}
	pthread_mutex_lock(&g->mu);
	make_nonce(g, nonce);
	prune(g, now);
	if ((e = calloc(1, sizeof(*e)))) {
		size_t b = bucket_of(job);

		e->job = job;
		e->kind = (unsigned char)kind;
		e->expires = now + (keep_ms > 0 ? keep_ms : 60000);
		snprintf(e->mac, sizeof(e->mac), "%s", mac ? mac : "");
		memcpy(e->nonce, nonce, sizeof(e->nonce));
		e->hnext = g->bucket[b];
		g->bucket[b] = e;
		if (g->tail)
			g->tail->fnext = e;
		else
			g->head = e;
		g->tail = e;
		g->n_jobs++;
		g->n_open++;
	}
	pthread_mutex_unlock(&g->mu);
}

size_t apid_guard_outstanding(struct apid_guard *g)
{
	size_t n;

	pthread_mutex_lock(&g->mu);
	prune(g, hive_mono_ms());
	n = g->n_open;
	pthread_mutex_unlock(&g->mu);
	return n;
}

/* Uses up the job's nonce: 0, or -1 with why. any_miner_job: a
 * hive.job.failed, which does not say the job's kind (status, telemetry
 * and control share their ids). */
static int claim(struct apid_guard *g, enum apid_guard_job kind, bool any_miner_job,
		 long long job, const char *mac, const char *nonce, enum apid_reject *why,
		 char *err, size_t errlen)
{
	struct issued *e;
	int64_t now = hive_mono_ms();
	int rc = -1;

	if (!nonce || !*nonce) {
		*why = APID_REJ_NO_NONCE;
		snprintf(err, errlen, "job %lld: no nonce (a worker older than apid?)", job);
		return -1;
	}
	pthread_mutex_lock(&g->mu);
	prune(g, now);
	for (e = g->bucket[bucket_of(job)]; e; e = e->hnext) {
		if (e->job != job || e->expires <= now)
			continue;
		if (any_miner_job ? e->kind == APID_GUARD_PLANT : e->kind != kind)
			continue;
		if (strcmp(e->mac, mac) != 0 || strcmp(e->nonce, nonce) != 0)
			continue;
		unhash(g, e);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&g->mu);
	if (rc < 0) {
		*why = APID_REJ_NOT_ISSUED;
		snprintf(err, errlen, "job %lld%s%s: not a job apid has out (unknown, answered,"
			 " expired, another miner's, or a wrong nonce)", job, *mac ? " mac=" : "",
			 mac);
	}
	return rc;
}

/* ---------------------------------------------------------------- addresses */

static bool ip_ok_locked(struct apid_guard *g, const char *ip)
{
	struct in_addr a;

	if (g->n_subnets == 0)
		return true;
	if (!ip || inet_pton(AF_INET, ip, &a) != 1)
		return false;
	for (size_t i = 0; i < g->n_subnets; i++)
		if (hive_subnet_contains(&g->subnets[i], ntohl(a.s_addr)))
			return true;
	return false;
}

bool apid_guard_ip_ok(struct apid_guard *g, const char *ip)
{
	bool ok;

	pthread_mutex_lock(&g->mu);
	ok = ip_ok_locked(g, ip);
	pthread_mutex_unlock(&g->mu);
	return ok;
}

/* Is subnet (a normalised CIDR) one of network.subnets? True when none
 * are set; with mu held. */
static bool subnet_ok_locked(struct apid_guard *g, const char *subnet)
{
	struct hive_subnet s;

	if (g->n_subnets == 0)
		return true;
	if (hive_subnet_parse(subnet, &s) < 0)
		return false;
	for (size_t i = 0; i < g->n_subnets; i++)
		if (g->subnets[i].network == s.network && g->subnets[i].prefix == s.prefix)
			return true;
	return false;
}

/* ---------------------------------------------------------------- events */

int apid_guard_check(struct apid_guard *g, const struct hive_envelope *env,
		     const struct apid_event *ev, enum apid_reject *why, char *err,
		     size_t errlen)
{
	const struct hive_msg_result_head *h = NULL;
	enum apid_guard_job kind = APID_GUARD_STATUS;
	int64_t skew, now = hive_wall_ms();
	bool nonce, ok = true;

	if (!g)
		return 0;
	pthread_mutex_lock(&g->mu);
	skew = g->skew_ms;
	nonce = g->require_nonce;
	if (ev->kind == HIVE_MSG_MINER_SEEN) {
		ok = ip_ok_locked(g, ev->u.seen.ip) &&
		     (!ev->u.seen.subnet[0] || subnet_ok_locked(g, ev->u.seen.subnet));
		if (!ok)
			snprintf(err, errlen, "mac=%s ip=%s subnet=%s: outside network.subnets",
				 ev->u.seen.mac, ev->u.seen.ip,
				 ev->u.seen.subnet[0] ? ev->u.seen.subnet : "-");
	} else if (ev->kind == HIVE_MSG_SWEEP_DONE) {
		ok = subnet_ok_locked(g, ev->u.sweep.subnet);
		if (!ok)
			snprintf(err, errlen, "subnet=%s: not one of network.subnets",
				 ev->u.sweep.subnet);
	}
	pthread_mutex_unlock(&g->mu);
	if (!ok) {
		*why = APID_REJ_OUTSIDE_SUBNETS;
		return -1;
	}
	/* Refused, not clamped: a time moved to now would still store what a
	 * forger wrote, and a sender whose clock runs ahead needs fixing,
	 * which a counted, logged refusal shows. */
	if (env->ts > now + skew) {
		*why = APID_REJ_FUTURE;
		snprintf(err, errlen, "ts=%lld is %lld ms ahead of apid's clock (allowed %lld)",
			 env->ts, env->ts - now, (long long)skew);
		return -1;
	}
	if (!nonce)
		return 0;
	switch (ev->kind) {
	case HIVE_MSG_STATUS_RESULT:
		h = &ev->u.status.head;
		kind = APID_GUARD_STATUS;
		break;
	case HIVE_MSG_TELEMETRY_RESULT:
		h = &ev->u.telemetry.head;
		kind = APID_GUARD_TELEMETRY;
		break;
	case HIVE_MSG_ACTION_RESULT:
		h = &ev->u.action_result.head;
		kind = APID_GUARD_CONTROL;
		break;
	case HIVE_MSG_PLANT_READING:
		return claim(g, APID_GUARD_PLANT, false, ev->u.plant.job, "", ev->u.plant.nonce,
			     why, err, errlen);
	case HIVE_MSG_JOB_FAILED:
		return claim(g, APID_GUARD_STATUS, true, ev->u.job_failed.job,
			     ev->u.job_failed.mac, ev->u.job_failed.nonce, why, err, errlen);
	default:
		return 0;
	}
	return claim(g, kind, false, h->job, h->mac, h->nonce, why, err, errlen);
}

/* ---------------------------------------------------------------- roles */

/* Does apid have a status, telemetry or control job out for mac with this
 * id? Leaves it out. With mu held. */
static bool holds_job_locked(struct apid_guard *g, long long job, const char *mac)
{
	int64_t now = hive_mono_ms();

	for (struct issued *e = g->bucket[bucket_of(job)]; e; e = e->hnext)
		if (e->job == job && e->expires > now && e->kind != APID_GUARD_PLANT &&
		    strcmp(e->mac, mac) == 0)
			return true;
	return false;
}

static const char *role_name(unsigned roles)
{
	return roles == HIVE_ROLE_DISCOVERD ? "discoverd" : roles ? "a worker" : "an unknown endpoint";
}

int apid_guard_check_role(struct apid_guard *g, const struct hive_envelope *env,
			  const struct apid_event *ev, enum apid_reject *why, char *err,
			  size_t errlen)
{
	unsigned roles = env->endpoint == APID_ENDPOINT_DISCOVERY ? HIVE_ROLE_DISCOVERD :
			 env->endpoint == APID_ENDPOINT_WORKERS ? HIVE_ROLE_WORKERS : 0;
	const char *daemon = NULL;
	const struct hive_msg_miner_error *e = &ev->u.error;
	bool ok;

	if (!g)
		return 0;
	*why = APID_REJ_WRONG_ROLE;
	if (!(hive_msg_topic(ev->kind)->senders & roles)) {
		snprintf(err, errlen, "%s may not send %s (endpoint %d)", role_name(roles),
			 env->topic, env->endpoint);
		return -1;
	}
	if (ev->kind == HIVE_MSG_HEARTBEAT)
		daemon = ev->u.heartbeat.daemon;
	else if (ev->kind == HIVE_MSG_GOODBYE)
		daemon = ev->u.goodbye.daemon;
	if (daemon && !(hive_msg_role(daemon) & roles)) {
		snprintf(err, errlen, "%s may not speak for %.64s", role_name(roles), daemon);
		return -1;
	}
	if (ev->kind != HIVE_MSG_MINER_ERROR || roles != HIVE_ROLE_WORKERS)
		return 0;
	/* A worker only ever reports on a miner it was sent to. */
	*why = APID_REJ_NO_JOB;
	if (!e->op || (strcmp(e->op, "status") && strcmp(e->op, "telemetry") &&
		       strcmp(e->op, "control"))) {
		snprintf(err, errlen, "mac=%s op=%s: not a worker's operation", e->mac,
			 e->op ? e->op : "-");
		return -1;
	}
	pthread_mutex_lock(&g->mu);
	ok = !g->require_nonce || (e->mac[0] && e->job > 0 && holds_job_locked(g, e->job, e->mac));
	pthread_mutex_unlock(&g->mu);
	if (!ok)
		snprintf(err, errlen, "mac=%s job=%lld: apid has no such job out for this miner",
			 e->mac[0] ? e->mac : "-", e->job);
	return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- sweeps */

bool apid_guard_sweep_hold(struct apid_guard *g, const char *subnet, long long would_drop,
			   long long online)
{
	bool big, hold = false;
	size_t i;

	if (!g)
		return false;
	pthread_mutex_lock(&g->mu);
	big = g->drop_share < 1.0 && online > 0 && would_drop > 0 &&
	      (double)would_drop > g->drop_share * (double)online;
	for (i = 0; i < g->n_held; i++)
		if (strcmp(g->held[i].subnet, subnet) == 0)
			break;
	if (i < g->n_held) {
		/* The sweep after a held one decides: it confirms, or clears. */
		g->held[i] = g->held[--g->n_held];
	} else if (big && g->n_held < GUARD_SWEEPS_MAX) {
		snprintf(g->held[g->n_held].subnet, sizeof(g->held[0].subnet), "%s", subnet);
		g->n_held++;
		hold = true;
	}
	pthread_mutex_unlock(&g->mu);
	return hold;
}
