/* answers — big GET answers shared between the clients asking for them.
 *
 * A page of 10,000 miners costs ~70 ms of CPU to write; a dashboard per
 * operator, a Prometheus exporter and scripts asking for it every few
 * seconds would each pay that, and under a busy fleet the answers queue
 * for the CPU (docs/scaling.md). So an answer the handler marks as big is
 * kept, under the request's canonical query, and served to whoever asks
 * the same. A thread of its own rebuilds a kept answer once it is
 * ANSWERS_FRESH_MS old, as long as somebody asked for it within
 * ANSWERS_IDLE_MS, so no request waits for a rebuild; requests get the
 * kept text until it is ANSWERS_STALE_MS old (the rebuild is late), then
 * the first one builds it and the others wait for that build.
 *
 * Read-your-writes: apid_answers_invalidate (every state-changing API
 * request calls it) makes every kept answer unusable at once, even one a
 * rebuild started before the change is bringing back. What changes by
 * itself (statuses arriving, the balancer) shows at most ANSWERS_FRESH_MS
 * late, as the dashboard's own refresh would.
 *
 * Thread-safe.
 */
#ifndef APID_ANSWERS_H
#define APID_ANSWERS_H

#include <stdbool.h>
#include <stddef.h>

#define ANSWERS_FRESH_MS 1000
#define ANSWERS_STALE_MS 3000
#define ANSWERS_IDLE_MS  10000

struct apid_answers;

/* Builds the answer for key and hands it over with apid_answers_put (or
 * apid_answers_abandon). Called on the answers' own thread. */
typedef void (*apid_answers_build_fn)(void *ctx, struct apid_answers *c, const char *key);

/* A kept answer: a JSON body, shared; release it when sent. */
struct apid_answer {
	const char *body;
	size_t len;
};

/* build: the rebuilder (NULL: requests rebuild, none kept ahead). NULL
 * when out of memory or no thread. Free stops the thread first. */
struct apid_answers *apid_answers_new(apid_answers_build_fn build, void *ctx);
void apid_answers_free(struct apid_answers *c);

/* The answer kept for key (a canonical query: "miners?limit=10000"), or
 * NULL. With NULL and *build true, the caller must build the answer and
 * hand it over with apid_answers_put (or apid_answers_abandon when the
 * answer is not one to keep) so that the callers waiting for it go on.
 * With NULL and *build false, nothing is kept and nobody waits: build it
 * and keep nothing. */
const struct apid_answer *apid_answers_get(struct apid_answers *c, const char *key, bool *build);
/* Keeps body (copied) for key; the caller's own apid_answers_get said build. */
void apid_answers_put(struct apid_answers *c, const char *key, const char *body, size_t len);
void apid_answers_abandon(struct apid_answers *c, const char *key);
void apid_answer_release(const struct apid_answer *a);

/* A change was made through the API: nothing kept may be served again. */
void apid_answers_invalidate(struct apid_answers *c);

#endif
