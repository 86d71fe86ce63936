/* loop — see hive/loop.h.
 *
 * poll(2) over a dense array of watched fds (fd → slot index map, so watch
 * and unwatch are O(1)) and a binary min-heap of timers ordered by due time.
 *
 * Callbacks may change anything, so a round first copies what poll reported
 * and then re-checks each entry against the live table: an fd unwatched (or
 * unwatched and watched again) by an earlier callback in the same round is
 * skipped. Timer ids carry their slot and a generation, so cancelling a timer
 * that already ran, or whose slot was reused, does nothing.
 */
#include "hive/loop.h"
#include "hive/clock.h"
#include "hive/log.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct watch {
	int fd;
	int events;
	hive_loop_fd_cb *cb;
	void *arg;
	uint64_t serial;         /* changes when the fd is watched anew */
};

struct ready {
	int fd;
	short revents;
	uint64_t serial;
};

struct timer {
	int64_t id;              /* 0 while the slot is free */
	int64_t due;
	uint64_t seq;            /* ties on due run in the order armed */
	hive_loop_timer_cb *cb;
	void *arg;
	size_t heap_pos;         /* index in heap, or SIZE_MAX when not queued */
	bool running;
	bool cancelled;          /* cancelled from inside its own callback */
	uint32_t gen;
	size_t next_free;
};

struct hive_loop {
	struct watch *w;
	struct pollfd *pfd;
	size_t nw, capw;
	int *slot_of;            /* fd → index in w, -1 */
	size_t nslot;
	uint64_t serial;

	struct ready *ready;
	size_t capready;

	struct timer *t;         /* slots */
	size_t nt, capt;
	size_t free_head;        /* SIZE_MAX: none */
	size_t *heap;            /* slot indices */
	size_t nheap;
	uint64_t seq;

	bool dispatching;
	volatile sig_atomic_t stop;
};

#define NO_SLOT SIZE_MAX

struct hive_loop *hive_loop_new(void)
{
	struct hive_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->free_head = NO_SLOT;
	return loop;
}

void hive_loop_free(struct hive_loop *loop)
{
	if (!loop)
		return;
	free(loop->w);
	free(loop->pfd);
	free(loop->slot_of);
	free(loop->ready);
	free(loop->t);
	free(loop->heap);
	free(loop);
}

/* ---------------------------------------------------------------- fds */

static short poll_events(int events)
{
	return (short)(((events & HIVE_LOOP_READ) ? POLLIN : 0) |
		       ((events & HIVE_LOOP_WRITE) ? POLLOUT : 0));
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;
	void *n;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((n = realloc(*p, ncap * size)) == NULL)
		return -1;
	*p = n;
	*cap = ncap;
	return 0;
}

int hive_loop_watch(struct hive_loop *loop, int fd, int events, hive_loop_fd_cb *cb, void *arg)
{
	struct watch *w;
	size_t i;

	if (!loop || fd < 0 || !cb || (events & ~(HIVE_LOOP_READ | HIVE_LOOP_WRITE))) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)fd >= loop->nslot) {
		size_t n = loop->nslot ? loop->nslot : 64, old = loop->nslot;

		while (n <= (size_t)fd)
			n *= 2;
		int *s = realloc(loop->slot_of, n * sizeof(*s));
		if (!s)
			return -1;
		for (size_t k = old; k < n; k++)
			s[k] = -1;
		loop->slot_of = s;
		loop->nslot = n;
	}
	if (loop->slot_of[fd] >= 0) {
		i = (size_t)loop->slot_of[fd];
		w = &loop->w[i];
		w->events = events;
		w->cb = cb;
		w->arg = arg;
		loop->pfd[i].events = poll_events(events);
		return 0;
	}
	size_t capw = loop->capw, capp = loop->capw;
	if (grow((void **)&loop->w, &capw, loop->nw + 1, sizeof(*loop->w)) == -1 ||
	    grow((void **)&loop->pfd, &capp, loop->nw + 1, sizeof(*loop->pfd)) == -1)
		return -1;
	/* Both arrays grow in step; keep the smaller capacity as the truth. */
	loop->capw = capw < capp ? capw : capp;
	i = loop->nw++;
	loop->w[i] = (struct watch){ fd, events, cb, arg, ++loop->serial };
	loop->pfd[i] = (struct pollfd){ .fd = fd, .events = poll_events(events) };
	loop->slot_of[fd] = (int)i;
	return 0;
}

void hive_loop_unwatch(struct hive_loop *loop, int fd)
{
	size_t i, last;

	if (!loop || fd < 0 || (size_t)fd >= loop->nslot || loop->slot_of[fd] < 0)
		return;
	i = (size_t)loop->slot_of[fd];
	last = --loop->nw;
	if (i != last) {
		loop->w[i] = loop->w[last];
		loop->pfd[i] = loop->pfd[last];
		loop->slot_of[loop->w[i].fd] = (int)i;
	}
	loop->slot_of[fd] = -1;
}

/* ---------------------------------------------------------------- timers */

static bool earlier(const struct hive_loop *loop, size_t a, size_t b)
{
	const struct timer *x = &loop->t[a], *y = &loop->t[b];

	return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static void heap_set(struct hive_loop *loop, size_t pos, size_t slot)
{
	loop->heap[pos] = slot;
	loop->t[slot].heap_pos = pos;
}

static void heap_up(struct hive_loop *loop, size_t pos)
{
	size_t slot = loop->heap[pos];

	while (pos > 0) {
		size_t parent = (pos - 1) / 2;

		if (!earlier(loop, slot, loop->heap[parent]))
			break;
		heap_set(loop, pos, loop->heap[parent]);
		pos = parent;
	}
	heap_set(loop, pos, slot);
}

static void heap_down(struct hive_loop *loop, size_t pos)
{
	size_t slot = loop->heap[pos];

	for (;;) {
		size_t c = 2 * pos + 1;

		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap && earlier(loop, loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!earlier(loop, loop->heap[c], slot))
			break;
		heap_set(loop, pos, loop->heap[c]);
		pos = c;
	}
	heap_set(loop, pos, slot);
}

static void heap_remove(struct hive_loop *loop, size_t slot)
{
	size_t pos = loop->t[slot].heap_pos;
	size_t last = --loop->nheap;

	loop->t[slot].heap_pos = NO_SLOT;
	if (pos == last)
		return;
	heap_set(loop, pos, loop->heap[last]);
	if (pos > 0 && earlier(loop, loop->heap[pos], loop->heap[(pos - 1) / 2]))
		heap_up(loop, pos);
	else
		heap_down(loop, pos);
}

/* The heap always has room: it was grown with the slot table. */
static void heap_push(struct hive_loop *loop, size_t slot, int64_t due)
{
	loop->t[slot].due = due;
	loop->t[slot].seq = loop->seq++;
	loop->heap[loop->nheap] = slot;
	loop->t[slot].heap_pos = loop->nheap++;
	heap_up(loop, loop->nheap - 1);
}

static void slot_release(struct hive_loop *loop, size_t slot)
{
	struct timer *t = &loop->t[slot];

	t->id = 0;
	t->running = t->cancelled = false;
	t->next_free = loop->free_head;
	loop->free_head = slot;
}

int64_t hive_loop_timer(struct hive_loop *loop, int64_t delay_ms, hive_loop_timer_cb *cb, void *arg)
{
	size_t slot;
	struct timer *t;

	if (!loop || !cb) {
		errno = EINVAL;
		return -1;
	}
	if (delay_ms < 0)
		delay_ms = 0;
	if (loop->free_head != NO_SLOT) {
		slot = loop->free_head;
		loop->free_head = loop->t[slot].next_free;
	} else {
		size_t capt = loop->capt, caph = loop->capt;

		/* Slot indices go into the id's low 32 bits. */
		if (loop->nt >= UINT32_MAX) {
			errno = ENOMEM;
			return -1;
		}
		if (grow((void **)&loop->t, &capt, loop->nt + 1, sizeof(*loop->t)) == -1 ||
		    grow((void **)&loop->heap, &caph, loop->nt + 1, sizeof(*loop->heap)) == -1)
			return -1;
		loop->capt = capt < caph ? capt : caph;
		slot = loop->nt++;
		loop->t[slot].gen = 0;
	}
	t = &loop->t[slot];
	/* gen stays below 2^31 so that ids are positive. */
	t->gen = (t->gen + 1) & 0x7fffffff;
	if (t->gen == 0)
		t->gen = 1;
	t->id = ((int64_t)t->gen << 32) | (int64_t)slot;
	t->cb = cb;
	t->arg = arg;
	t->running = t->cancelled = false;
	heap_push(loop, slot, hive_mono_ms() + delay_ms);
	return t->id;
}

void hive_loop_cancel(struct hive_loop *loop, int64_t timer_id)
{
	size_t slot;
	struct timer *t;

	if (!loop || timer_id <= 0)
		return;
	slot = (size_t)(timer_id & 0xffffffff);
	if (slot >= loop->nt || loop->t[slot].id != timer_id)
		return;
	t = &loop->t[slot];
	if (t->running) {
		/* Its callback is on the stack; the round frees the slot after. */
		t->cancelled = true;
		return;
	}
	if (t->heap_pos != NO_SLOT)
		heap_remove(loop, slot);
	slot_release(loop, slot);
}

/* ---------------------------------------------------------------- running */

static int dispatch_fds(struct hive_loop *loop, int nready)
{
	size_t n = 0;
	int ran = 0;

	if (nready <= 0)
		return 0;
	if (grow((void **)&loop->ready, &loop->capready, (size_t)nready, sizeof(*loop->ready)) == -1)
		return 0;  /* the fds stay ready; the next round tries again */
	for (size_t i = 0; i < loop->nw && n < (size_t)nready; i++) {
		if (loop->pfd[i].revents == 0)
			continue;
		loop->ready[n++] = (struct ready){ loop->pfd[i].fd, loop->pfd[i].revents,
						   loop->w[i].serial };
	}
	for (size_t k = 0; k < n; k++) {
		struct ready *r = &loop->ready[k];
		struct watch *w;
		int ev = 0, slot;

		if ((size_t)r->fd >= loop->nslot || (slot = loop->slot_of[r->fd]) < 0)
			continue;
		w = &loop->w[slot];
		if (w->serial != r->serial)
			continue;  /* unwatched and watched again during this round */
		if (r->revents & (POLLERR | POLLNVAL))
			ev = HIVE_LOOP_READ | HIVE_LOOP_WRITE;
		if (r->revents & POLLHUP)
			ev |= HIVE_LOOP_READ | (w->events & HIVE_LOOP_WRITE);
		if (r->revents & POLLIN)
			ev |= HIVE_LOOP_READ;
		if (r->revents & POLLOUT)
			ev |= HIVE_LOOP_WRITE;
		/* An earlier callback may have narrowed what this fd waits for. */
		if (!(r->revents & (POLLERR | POLLNVAL | POLLHUP)) && !(ev & w->events))
			continue;
		w->cb(loop, r->fd, ev, w->arg);
		ran++;
	}
	return ran;
}

static int dispatch_timers(struct hive_loop *loop)
{
	/* Timers armed or re-armed during this round wait for the next one, so
	 * that a callback returning 0 cannot starve the fds. */
	uint64_t limit = loop->seq;
	int64_t now = hive_mono_ms();
	int ran = 0;

	while (loop->nheap > 0) {
		size_t slot = loop->heap[0];
		struct timer *t = &loop->t[slot];
		int64_t again;

		if (t->due > now || t->seq >= limit)
			break;
		heap_remove(loop, slot);
		t->running = true;
		again = t->cb(loop, t->arg);
		ran++;
		t = &loop->t[slot];  /* the slot table may have moved */
		t->running = false;
		if (t->cancelled || again < 0)
			slot_release(loop, slot);
		else
			heap_push(loop, slot, hive_mono_ms() + again);
	}
	return ran;
}

int hive_loop_run_once(struct hive_loop *loop, int max_wait_ms)
{
	int timeout = max_wait_ms, nready, ran;

	if (!loop || loop->dispatching) {
		errno = EINVAL;
		return -1;
	}
	if (loop->nheap > 0) {
		int64_t wait = loop->t[loop->heap[0]].due - hive_mono_ms();

		if (wait < 0)
			wait = 0;
		if (timeout < 0 || wait < timeout)
			timeout = wait > 0x7fffffff ? 0x7fffffff : (int)wait;
	}
	nready = poll(loop->pfd, loop->nw, timeout);
	if (nready < 0) {
		if (errno != EINTR)
			return -1;
		nready = 0;  /* a signal: the caller looks at its flags */
	}
	loop->dispatching = true;
	ran = dispatch_fds(loop, nready);
	ran += dispatch_timers(loop);
	loop->dispatching = false;
	return ran;
}

void hive_loop_run(struct hive_loop *loop, volatile sig_atomic_t *quit)
{
	if (!loop)
		return;
	while (!loop->stop && !(quit && *quit)) {
		if (hive_loop_run_once(loop, 250) == -1) {
			log_warn("loop poll failed fds=%zu", loop->nw);
			break;
		}
	}
	loop->stop = 0;
}

void hive_loop_stop(struct hive_loop *loop)
{
	if (loop)
		loop->stop = 1;
}
