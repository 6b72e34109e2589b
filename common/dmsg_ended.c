/*
 * dmsg_ended: recently ended streams (see dmsg_ended.h).
 *
 * Ends come in time order, so a ring of (owner, id, time) in end order is
 * also the expiry order: adding pops the expired (and, when full, the
 * oldest) from the head.  A dict from the 12-byte key to the ring slot
 * answers lookups.  The ring grows by doubling up to max and shrinks back
 * when it empties, so a quiet peer table costs nothing.
 */
#include "dmsg_ended.h"

#include <stdlib.h>

#include "dict.h"
#include "dmsg_wire.h"

#define MIN_SLOTS 16

struct ended_slot {
	uint64_t owner;
	uint32_t id;
	long long at_ms;
};

struct dmsg_ended {
	struct ended_slot *ring;
	size_t cap, head, n, max;
	long long ttl_ms;
	struct sw_dict *by_key;  /* key -> slot index + 1 */
};

static void
ended_key(uint8_t key[12], uint64_t owner, uint32_t id)
{
	sw_put_u64(key, owner);
	sw_put_u32(key + 8, id);
}

struct dmsg_ended *
dmsg_ended_new(size_t max, long long ttl_ms)
{
	struct dmsg_ended *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->max = max > 0 ? max : DMSG_ENDED_MAX;
	e->ttl_ms = ttl_ms > 0 ? ttl_ms : DMSG_ENDED_TTL_MS;
	if ((e->by_key = sw_dict_new(NULL)) == NULL) {
		free(e);
		return NULL;
	}
	return e;
}

void
dmsg_ended_free(struct dmsg_ended *e)
{
	if (e == NULL)
		return;
	sw_dict_free(e->by_key);
	free(e->ring);
	free(e);
}

/* Forget the oldest entry (its dict entry only if it still points here). */
static void
pop_head(struct dmsg_ended *e)
{
	struct ended_slot *s = &e->ring[e->head];
	uint8_t key[12];
	void *v;

	ended_key(key, s->owner, s->id);
	if (sw_dict_find(e->by_key, key, sizeof(key), &v) &&
	    (size_t)(uintptr_t)v == e->head + 1)
		sw_dict_take(e->by_key, key, sizeof(key), NULL);
	e->head = (e->head + 1) % e->cap;
	e->n--;
}

static void
expire(struct dmsg_ended *e, long long now_ms)
{
	while (e->n > 0 && now_ms - e->ring[e->head].at_ms > e->ttl_ms)
		pop_head(e);
	if (e->n == 0 && e->cap > MIN_SLOTS) {
		/* Quiet again: give the memory back. */
		free(e->ring);
		e->ring = NULL;
		e->cap = e->head = 0;
		sw_dict_compact(e->by_key);
	}
}

/* Room for one more slot: double the ring (in order) up to max. */
static int
grow(struct dmsg_ended *e)
{
	size_t ncap = e->cap == 0 ? MIN_SLOTS : e->cap * 2;
	struct ended_slot *r;
	uint8_t key[12];

	if (ncap > e->max)
		ncap = e->max;
	if (ncap <= e->cap || (r = malloc(ncap * sizeof(*r))) == NULL)
		return -1;
	for (size_t i = 0; i < e->n; i++) {
		r[i] = e->ring[(e->head + i) % e->cap];
		ended_key(key, r[i].owner, r[i].id);
		sw_dict_set(e->by_key, key, sizeof(key), (void *)(uintptr_t)(i + 1));
	}
	free(e->ring);
	e->ring = r;
	e->cap = ncap;
	e->head = 0;
	return 0;
}

void
dmsg_ended_add(struct dmsg_ended *e, uint64_t owner, uint32_t id, long long now_ms)
{
	uint8_t key[12];
	size_t slot;

	if (e == NULL)
		return;
	expire(e, now_ms);
	if (e->n == e->cap && grow(e) == -1) {
		if (e->n == 0)
			return;
		pop_head(e);
	}
	slot = (e->head + e->n) % e->cap;
	e->ring[slot].owner = owner;
	e->ring[slot].id = id;
	e->ring[slot].at_ms = now_ms;
	ended_key(key, owner, id);
	if (sw_dict_set(e->by_key, key, sizeof(key), (void *)(uintptr_t)(slot + 1)) == -1)
		return; /* no memory: the slot stays unreachable and expires */
	e->n++;
}

int
dmsg_ended_has(struct dmsg_ended *e, uint64_t owner, uint32_t id, long long now_ms)
{
	uint8_t key[12];
	void *v;

	if (e == NULL)
		return 0;
	ended_key(key, owner, id);
	if (!sw_dict_find(e->by_key, key, sizeof(key), &v))
		return 0;
	return now_ms - e->ring[(size_t)(uintptr_t)v - 1].at_ms <= e->ttl_ms;
}

size_t
dmsg_ended_count(const struct dmsg_ended *e)
{
	return e != NULL ? e->n : 0;
}
