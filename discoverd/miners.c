/* miners — what discoverd remembers per miner, found by MAC (its identity)
 * and by the IP it last answered at (to recognise a known miner whose
 * /info fails). Two open-addressed tables with linear probing and
 * backward-shift deletion; records are never freed before the process
 * ends, so pointers to them stay valid.
 */
#include "discoverd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	uint64_t key;                  /* 0 = empty (MAC 00:..:00 and IP 0 are never stored) */
	struct miner *m;
};

struct table {
	struct slot *s;
	size_t cap, n;                 /* cap: power of two */
};

struct disc_miners {
	struct table by_mac;
	struct table by_addr;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static struct slot *t_find(const struct table *t, uint64_t key)
{
	size_t i;

	if (!t->cap)
		return NULL;
	for (i = mix(key) & (t->cap - 1); t->s[i].key; i = (i + 1) & (t->cap - 1))
		if (t->s[i].key == key)
			return &t->s[i];
	return NULL;
}

static int t_put(struct table *t, uint64_t key, struct miner *m);

static int t_grow(struct table *t)
{
	struct table n = { 0 };

	n.cap = t->cap ? t->cap * 2 : 64;
	if (!(n.s = calloc(n.cap, sizeof(*n.s))))
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->s[i].key)
			t_put(&n, t->s[i].key, t->s[i].m);
	free(t->s);
	*t = n;
	return 0;
}

static int t_put(struct table *t, uint64_t key, struct miner *m)
{
	size_t i;

	if ((t->n + 1) * 4 > t->cap * 3 && t_grow(t) < 0)
		return -1;
	for (i = mix(key) & (t->cap - 1); t->s[i].key; i = (i + 1) & (t->cap - 1)) {
		if (t->s[i].key == key) {
			t->s[i].m = m;
			return 0;
		}
	}
	t->s[i].key = key;
	t->s[i].m = m;
	t->n++;
	return 0;
}

static void t_del(struct table *t, uint64_t key)
{
	struct slot *s = t_find(t, key);
	size_t i, j, home;

	if (!s)
		return;
	i = (size_t)(s - t->s);
	t->s[i].key = 0;
	t->n--;
	/* Backward shift: pull later entries of the run into the hole when
	 * their home slot does not lie between the hole and them. */
	for (j = (i + 1) & (t->cap - 1); t->s[j].key; j = (j + 1) & (t->cap - 1)) {
		home = mix(t->s[j].key) & (t->cap - 1);
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			t->s[i] = t->s[j];
			t->s[j].key = 0;
			i = j;
		}
	}
}

static uint64_t mac_id(const char *mac)
{
	unsigned b[6];
	uint64_t id = 0;

	if (sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return 0;
	for (int i = 0; i < 6; i++)
		id = id << 8 | b[i];
	/* 00:00:00:00:00:00 is no miner; keep key 0 free for "empty". */
	return id;
}

struct disc_miners *disc_miners_new(void)
{
	return calloc(1, sizeof(struct disc_miners));
}

void disc_miners_free(struct disc_miners *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->by_mac.cap; i++)
		if (t->by_mac.s[i].key) {
			free(t->by_mac.s[i].m->unlock);
			free(t->by_mac.s[i].m);
		}
	free(t->by_mac.s);
	free(t->by_addr.s);
	free(t);
}

struct miner *disc_miners_get(struct disc_miners *t, const char *mac, bool create)
{
	uint64_t id = mac_id(mac);
	struct slot *s;
	struct miner *m;

	if (!id)
		return NULL;
	if ((s = t_find(&t->by_mac, id)))
		return s->m;
	if (!create || !(m = calloc(1, sizeof(*m))))
		return NULL;
	m->id = id;
	snprintf(m->mac, sizeof(m->mac), "%s", mac);
	if (t_put(&t->by_mac, id, m) < 0) {
		free(m);
		return NULL;
	}
	return m;
}

struct miner *disc_miners_at(struct disc_miners *t, uint32_t addr)
{
	struct slot *s = addr ? t_find(&t->by_addr, addr) : NULL;

	return s ? s->m : NULL;
}

void disc_miners_move(struct disc_miners *t, struct miner *m, uint32_t addr)
{
	struct slot *s;

	if (m->addr == addr)
		return;
	/* The old address forgets m only if it still points at m: in a swap
	 * the other miner may already have claimed it. */
	if (m->addr && (s = t_find(&t->by_addr, m->addr)) && s->m == m)
		t_del(&t->by_addr, m->addr);
	m->addr = addr;
	if (addr)
		t_put(&t->by_addr, addr, m);
}

size_t disc_miners_count(const struct disc_miners *t)
{
	return t->by_mac.n;
}
