/* seq — counts the bus messages a subscriber never saw.
 *
 * Every envelope carries a seq that counts from 1 per (src, boot, topic) on
 * the sending socket. The tracker remembers the last seq seen per
 * (src, topic) with the boot it belongs to:
 *   - the first message of a (src, topic), or of a newer boot, sets the
 *     baseline: the tracker cannot tell "published before we listened"
 *     (pub/sub never delivers those) from "lost", so it counts neither;
 *   - seq == last + 1 is in order; seq > last + 1 counts seq - last - 1 lost;
 *   - seq <= last, or an older boot, is a duplicate (or stale) message;
 *   - a jump of more than SEQ_MAX_GAP cannot be messages we missed (no
 *     daemon sends that many): the sender is broken, so the tracker takes
 *     the new seq as a baseline and says so, instead of adding an absurd
 *     number to the lost total.
 * Per source it also sums received/lost over topics for the newest boot, for
 * /api/health. Lost and duplicate totals are kept for the tracker's
 * lifetime (monotonic, fit for /metrics).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hive/bus.h"
#include "hive/log.h"

/* Keys come from the network: cap them so a sender that invents a new src
 * per message cannot grow apid's memory without bound. */
#define SEQ_MAX_KEYS 16384
#define SEQ_MAX_GAP  (1ULL << 32)

struct seq_source {
	struct seq_source *next;
	long long boot;          /* newest boot seen */
	uint64_t received;       /* for that boot, all topics */
	uint64_t lost;
	char src[HIVE_SOURCE_MAX];
};

struct seq_entry {
	struct seq_entry *next;
	struct seq_source *source;
	long long boot;
	unsigned long long last;
	char src[HIVE_SOURCE_MAX];
	char topic[HIVE_TOPIC_MAX];
};

struct hive_seq_tracker {
	pthread_mutex_t mu;
	struct seq_entry **entries;      /* buckets keyed by (src, topic) */
	size_t n_entry_buckets;
	size_t n_entries;
	struct seq_source **sources;     /* buckets keyed by src */
	size_t n_source_buckets;
	size_t n_sources;
	_Atomic uint64_t lost;
	_Atomic uint64_t duplicates;
	bool full_logged;
};

static uint64_t seq_hash(const char *a, const char *b)
{
	uint64_t h = 14695981039346656037ULL;    /* FNV-1a */
	const unsigned char *p;

	for (p = (const unsigned char *)a; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	if (b) {
		h = (h ^ 0xff) * 1099511628211ULL;   /* separator no string holds */
		for (p = (const unsigned char *)b; *p; p++)
			h = (h ^ *p) * 1099511628211ULL;
	}
	return h;
}

/* The mutex is not part of the tracker's logical state: readers taking it
 * through a const pointer change nothing observable. */
static pthread_mutex_t *seq_lock(const struct hive_seq_tracker *t)
{
	return (pthread_mutex_t *)&t->mu;
}

struct hive_seq_tracker *hive_seq_new(void)
{
	struct hive_seq_tracker *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->n_entry_buckets = 64;
	t->n_source_buckets = 16;
	t->entries = calloc(t->n_entry_buckets, sizeof(*t->entries));
	t->sources = calloc(t->n_source_buckets, sizeof(*t->sources));
	if (t->entries == NULL || t->sources == NULL ||
	    pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t->entries);
		free(t->sources);
		free(t);
		return NULL;
	}
	return t;
}

void hive_seq_free(struct hive_seq_tracker *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_entry_buckets; i++) {
		struct seq_entry *e, *next;

		for (e = t->entries[i]; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	for (i = 0; i < t->n_source_buckets; i++) {
		struct seq_source *s, *next;

		for (s = t->sources[i]; s; s = next) {
			next = s->next;
			free(s);
		}
	}
	free(t->entries);
	free(t->sources);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* Doubles the bucket array of entries when the load passes 1; on
 * allocation failure the table keeps working, only slower. */
static void seq_grow_entries(struct hive_seq_tracker *t)
{
	size_t n = t->n_entry_buckets * 2, i;
	struct seq_entry **b;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (i = 0; i < t->n_entry_buckets; i++) {
		struct seq_entry *e, *next;

		for (e = t->entries[i]; e; e = next) {
			size_t h = seq_hash(e->src, e->topic) % n;

			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(t->entries);
	t->entries = b;
	t->n_entry_buckets = n;
}

static void seq_grow_sources(struct hive_seq_tracker *t)
{
	size_t n = t->n_source_buckets * 2, i;
	struct seq_source **b;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (i = 0; i < t->n_source_buckets; i++) {
		struct seq_source *s, *next;

		for (s = t->sources[i]; s; s = next) {
			size_t h = seq_hash(s->src, NULL) % n;

			next = s->next;
			s->next = b[h];
			b[h] = s;
		}
	}
	free(t->sources);
	t->sources = b;
	t->n_source_buckets = n;
}

static struct seq_source *seq_source_get(struct hive_seq_tracker *t, const char *src,
					 long long boot)
{
	size_t h = seq_hash(src, NULL) % t->n_source_buckets;
	struct seq_source *s;

	for (s = t->sources[h]; s; s = s->next)
		if (strcmp(s->src, src) == 0)
			return s;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	strncpy(s->src, src, sizeof(s->src) - 1);
	s->boot = boot;
	s->next = t->sources[h];
	t->sources[h] = s;
	if (++t->n_sources > t->n_source_buckets)
		seq_grow_sources(t);
	return s;
}

/* Finds or adds the entry of (src, topic); NULL when the table is full or
 * memory is short (the message is then not tracked). */
static struct seq_entry *seq_entry_get(struct hive_seq_tracker *t, const char *src,
				       const char *topic, long long boot, bool *created)
{
	size_t h = seq_hash(src, topic) % t->n_entry_buckets;
	struct seq_entry *e;

	*created = false;
	for (e = t->entries[h]; e; e = e->next)
		if (strcmp(e->src, src) == 0 && strcmp(e->topic, topic) == 0)
			return e;
	if (t->n_entries >= SEQ_MAX_KEYS) {
		if (!t->full_logged)
			log_warnx("bus_seq_full keys=%d msg=\"new sources are not tracked\"",
				  SEQ_MAX_KEYS);
		t->full_logged = true;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->source = seq_source_get(t, src, boot)) == NULL) {
		free(e);
		return NULL;
	}
	strncpy(e->src, src, sizeof(e->src) - 1);
	strncpy(e->topic, topic, sizeof(e->topic) - 1);
	e->boot = boot;
	e->next = t->entries[h];
	t->entries[h] = e;
	if (++t->n_entries > t->n_entry_buckets)
		seq_grow_entries(t);
	*created = true;
	return e;
}

/* Counts one received message for its source when it belongs to the
 * source's newest boot; a newer boot starts the source's sums again. */
static void seq_source_count(struct seq_source *s, long long boot, uint64_t lost)
{
	if (boot > s->boot) {
		s->boot = boot;
		s->received = 0;
		s->lost = 0;
	}
	if (boot == s->boot) {
		s->received++;
		s->lost += lost;
	}
}

uint64_t hive_seq_track(struct hive_seq_tracker *t, const char *src, long long boot,
			const char *topic, unsigned long long seq)
{
	struct seq_entry *e;
	uint64_t lost = 0;
	bool created;

	if (t == NULL || src == NULL || topic == NULL)
		return 0;
	pthread_mutex_lock(&t->mu);
	if ((e = seq_entry_get(t, src, topic, boot, &created)) == NULL)
		goto out;
	if (created || boot > e->boot) {
		e->boot = boot;
		e->last = seq;
	} else if (boot < e->boot || seq <= e->last) {
		atomic_fetch_add(&t->duplicates, 1);
		goto out;
	} else if (seq - e->last - 1 > SEQ_MAX_GAP) {
		log_warnx("bus_seq_jump src=%s topic=%s from=%llu to=%llu", src, topic, e->last,
			  seq);
		e->last = seq;
	} else {
		lost = seq - e->last - 1;
		e->last = seq;
	}
	seq_source_count(e->source, boot, lost);
	if (lost)
		atomic_fetch_add(&t->lost, lost);
out:
	pthread_mutex_unlock(&t->mu);
	return lost;
}

uint64_t hive_seq_lost(const struct hive_seq_tracker *t)
{
	return t ? atomic_load(&t->lost) : 0;
}

uint64_t hive_seq_duplicates(const struct hive_seq_tracker *t)
{
	return t ? atomic_load(&t->duplicates) : 0;
}

void hive_seq_foreach(const struct hive_seq_tracker *t,
		      void (*fn)(const char *src, uint64_t received, uint64_t lost, void *arg),
		      void *arg)
{
	size_t i;

	if (t == NULL || fn == NULL)
		return;
	/* fn runs under the lock: it must not call back into the tracker. */
	pthread_mutex_lock(seq_lock(t));
	for (i = 0; i < t->n_source_buckets; i++) {
		const struct seq_source *s;

		for (s = t->sources[i]; s; s = s->next)
			fn(s->src, s->received, s->lost, arg);
	}
	pthread_mutex_unlock(seq_lock(t));
}
