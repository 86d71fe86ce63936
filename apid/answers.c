/* answers — big GET answers shared between clients (answers.h). */
#include "answers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hive/clock.h"

/* A handful of distinct big queries at once is what a farm has (the
 * dashboard's page, an exporter's); each text is ~1 KB per miner. */
#define SLOTS   4
#define KEY_MAX 512

struct text {
	struct apid_answer pub;
	atomic_int refs;       /* the slot's, and each caller's until released */
	char body[];
};

struct slot {
	char key[KEY_MAX];     /* "" = free */
	struct text *text;     /* the last answer built, or NULL */
	int64_t built_ms;
	uint64_t gen;          /* the generation text was built in */
	bool building;         /* a caller is building it */
	uint64_t building_gen; /* the generation that build started in */
	int64_t used_ms;
};

struct apid_answers {
	pthread_mutex_t lock;
	pthread_cond_t built;
	pthread_cond_t wake;   /* the rebuilder: stop */
	uint64_t gen;          /* bumped by every change made through the API */
	struct slot slots[SLOTS];
	apid_answers_build_fn build;
	void *ctx;
	pthread_t thread;
	bool running, stop;
};

/* A kept answer due for its rebuild: valid, asked for lately, FRESH old. */
static struct slot *due(struct apid_answers *c, int64_t now)
{
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &c->slots[i];
		if (s->key[0] && s->text && !s->building && s->gen == c->gen &&
		    now - s->used_ms < ANSWERS_IDLE_MS && now - s->built_ms >= ANSWERS_FRESH_MS)
			return s;
	}
	return NULL;
}

static void *rebuilder(void *arg)
{
	struct apid_answers *c = arg;
	char key[KEY_MAX];

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct slot *s = due(c, hive_mono_ms());
		if (!s) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000L;   /* due times are coarse: 50 ms */
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->wake, &c->lock, &ts);
			continue;
		}
		s->building = true;
		s->building_gen = c->gen;
		memcpy(key, s->key, sizeof(key));
		pthread_mutex_unlock(&c->lock);
		c->build(c->ctx, c, key);   /* puts or abandons */
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct apid_answers *apid_answers_new(apid_answers_build_fn build, void *ctx)
{
	struct apid_answers *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->built, NULL);
	pthread_cond_init(&c->wake, NULL);
	c->build = build;
	c->ctx = ctx;
	if (build) {
		if (pthread_create(&c->thread, NULL, rebuilder, c) != 0) {
			apid_answers_free(c);
			return NULL;
		}
		c->running = true;
	}
	return c;
}

void apid_answer_release(const struct apid_answer *a)
{
	struct text *t = (struct text *)a;

	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		free(t);
}

void apid_answers_free(struct apid_answers *c)
{
	if (!c)
		return;
	if (c->running) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	for (int i = 0; i < SLOTS; i++)
		apid_answer_release(c->slots[i].text ? &c->slots[i].text->pub : NULL);
	pthread_cond_destroy(&c->built);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct slot *find(struct apid_answers *c, const char *key)
{
	for (int i = 0; i < SLOTS; i++)
		if (strcmp(c->slots[i].key, key) == 0)
			return &c->slots[i];
	return NULL;
}

/* A free slot, or the least recently used one nobody is building (its
 * text goes); NULL when every slot is being built. */
static struct slot *take(struct apid_answers *c, const char *key)
{
	struct slot *best = NULL;

	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &c->slots[i];
		if (s->building)
			continue;
		if (!s->key[0]) {
			best = s;
			break;
		}
		if (!best || s->used_ms < best->used_ms)
			best = s;
	}
	if (!best)
		return NULL;
	apid_answer_release(best->text ? &best->text->pub : NULL);
	memset(best, 0, sizeof(*best));
	snprintf(best->key, sizeof(best->key), "%s", key);
	return best;
}

const struct apid_answer *apid_answers_get(struct apid_answers *c, const char *key, bool *build)
{
	struct text *t = NULL;
	struct slot *s;

	*build = false;
	if (!c || !key[0] || strlen(key) >= KEY_MAX)
		return NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		int64_t now = hive_mono_ms();
		s = find(c, key);
		if (s && s->text && s->gen == c->gen) {
			int64_t age = now - s->built_ms;
			/* Fresh; or the previous one while it is rebuilt: by the
			 * rebuilder, or by another caller. */
			if (age < ANSWERS_FRESH_MS ||
			    ((s->building || c->running) && age < ANSWERS_STALE_MS)) {
				t = s->text;
				atomic_fetch_add(&t->refs, 1);
				s->used_ms = now;
				break;
			}
		}
		if (s && s->building) {
			pthread_cond_wait(&c->built, &c->lock);   /* the first one is on its way */
			continue;
		}
		if (!s && !(s = take(c, key)))
			break;   /* every slot busy: build it, keep nothing */
		s->building = true;
		s->building_gen = c->gen;
		s->used_ms = now;
		*build = true;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return t ? &t->pub : NULL;
}

static void done(struct apid_answers *c, const char *key, struct text *t)
{
	struct text *old = NULL;
	struct slot *s;

	pthread_mutex_lock(&c->lock);
	s = find(c, key);
	if (s && s->building) {
		s->building = false;
		/* Built before a change made through the API: not to be served. */
		if (t && s->building_gen == c->gen) {
			old = s->text;
			s->text = t;
			s->gen = s->building_gen;
			s->built_ms = hive_mono_ms();
			t = NULL;
		}
	}
	pthread_cond_broadcast(&c->built);
	pthread_mutex_unlock(&c->lock);
	apid_answer_release(old ? &old->pub : NULL);
	apid_answer_release(t ? &t->pub : NULL);
}

void apid_answers_put(struct apid_answers *c, const char *key, const char *body, size_t len)
{
	/* The copy happens outside the lock; a JSON answer ends with a newline. */
	struct text *t = malloc(sizeof(*t) + len + 1);

	if (t) {
		memcpy(t->body, body, len);
		t->body[len] = '\n';
		t->pub.body = t->body;
		t->pub.len = len + 1;
		atomic_init(&t->refs, 1);
	}
	done(c, key, t);
}

void apid_answers_abandon(struct apid_answers *c, const char *key)
{
	done(c, key, NULL);
}

void apid_answers_invalidate(struct apid_answers *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->gen++;
	pthread_mutex_unlock(&c->lock);
}
