/*
 * dict: chained hash table, power-of-two buckets, one allocation per entry
 * (the key lives at the end of its entry).
 *
 * Chaining rather than open addressing so that deleting during a walk is
 * trivial, which the store's expiry sweep relies on.  The table doubles
 * when the load reaches 1 and halves when it falls under 1/8; both are a
 * full rehash done on insert, so a delete never moves entries under an
 * iterator.  A full rehash of a large table is a pause proportional to its
 * size; incremental rehashing would remove it at the cost of two tables on
 * every lookup, which our table sizes do not justify.
 */
#include "dict.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DICT_MIN_BUCKETS 8

struct dict_entry {
	struct dict_entry *next;
	uint64_t hash;
	void *val;
	size_t klen;
	char key[];
};

struct sw_dict {
	struct dict_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	sw_dict_free_fn *free_val;
};

static unsigned char dict_seed[crypto_shorthash_KEYBYTES];
static int dict_seeded;

static uint64_t
dict_hash(const void *key, size_t klen)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	if (!dict_seeded) {
		/* sodium_init is idempotent; a failure leaves a zero seed, still a hash */
		if (sodium_init() >= 0)
			randombytes_buf(dict_seed, sizeof(dict_seed));
		dict_seeded = 1;
	}
	crypto_shorthash(out, key, klen, dict_seed);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct sw_dict *
sw_dict_new(sw_dict_free_fn *free_val)
{
	struct sw_dict *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	if ((d->buckets = calloc(DICT_MIN_BUCKETS, sizeof(*d->buckets))) == NULL) {
		free(d);
		return NULL;
	}
	d->nbuckets = DICT_MIN_BUCKETS;
	d->free_val = free_val;
	return d;
}

void
sw_dict_free(struct sw_dict *d)
{
	struct dict_entry *e, *next;
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->nbuckets; i++) {
		for (e = d->buckets[i]; e != NULL; e = next) {
			next = e->next;
			if (d->free_val != NULL)
				d->free_val(e->val);
			free(e);
		}
	}
	free(d->buckets);
	free(d);
}

size_t
sw_dict_size(const struct sw_dict *d)
{
	return d->count;
}

static struct dict_entry **
dict_slot(const struct sw_dict *d, const void *key, size_t klen, uint64_t h)
{
	struct dict_entry **pe;

	for (pe = &d->buckets[h & (d->nbuckets - 1)]; *pe != NULL; pe = &(*pe)->next) {
		if ((*pe)->hash == h && (*pe)->klen == klen && memcmp((*pe)->key, key, klen) == 0)
			break;
	}
	return pe;
}

/* Failure to resize is harmless: the table just stays at its load. */
static void
dict_resize(struct sw_dict *d, size_t n)
{
	struct dict_entry **nb, *e, *next;
	size_t i;

	if (n < DICT_MIN_BUCKETS || n == d->nbuckets)
		return;
	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < d->nbuckets; i++) {
		for (e = d->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(d->buckets);
	d->buckets = nb;
	d->nbuckets = n;
}

void
sw_dict_compact(struct sw_dict *d)
{
	size_t n = d->nbuckets;

	while (n > DICT_MIN_BUCKETS && d->count < n / 8)
		n /= 2;
	dict_resize(d, n);
}

int
sw_dict_find(const struct sw_dict *d, const void *key, size_t klen, void **val)
{
	struct dict_entry *e;

	e = *dict_slot(d, key, klen, dict_hash(key, klen));
	if (e == NULL)
		return 0;
	if (val != NULL)
		*val = e->val;
	return 1;
}

void *
sw_dict_get(const struct sw_dict *d, const void *key, size_t klen)
{
	void *val = NULL;

	sw_dict_find(d, key, klen, &val);
	return val;
}

const char *
sw_dict_key(const struct sw_dict *d, const void *key, size_t klen)
{
	struct dict_entry *e;

	e = *dict_slot(d, key, klen, dict_hash(key, klen));
	return e != NULL ? e->key : NULL;
}

static int
dict_insert(struct sw_dict *d, const void *key, size_t klen, void *val, int replace)
{
	struct dict_entry **pe, *e;
	uint64_t h;

	h = dict_hash(key, klen);
	pe = dict_slot(d, key, klen, h);
	if (*pe != NULL) {
		if (!replace)
			return 0;
		if (d->free_val != NULL && (*pe)->val != val)
			d->free_val((*pe)->val);
		(*pe)->val = val;
		return 0;
	}
	if (klen > SIZE_MAX - sizeof(*e) - 1)
		return -1;
	if ((e = malloc(sizeof(*e) + klen + 1)) == NULL)
		return -1;
	e->hash = h;
	e->val = val;
	e->klen = klen;
	if (klen > 0)
		memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	e->next = NULL;
	*pe = e;
	d->count++;
	if (d->count >= d->nbuckets)
		dict_resize(d, d->nbuckets * 2);
	else if (d->count < d->nbuckets / 8)
		sw_dict_compact(d);
	return 1;
}

int
sw_dict_set(struct sw_dict *d, const void *key, size_t klen, void *val)
{
	return dict_insert(d, key, klen, val, 1);
}

int
sw_dict_add(struct sw_dict *d, const void *key, size_t klen, void *val)
{
	return dict_insert(d, key, klen, val, 0);
}

int
sw_dict_take(struct sw_dict *d, const void *key, size_t klen, void **val)
{
	struct dict_entry **pe, *e;

	pe = dict_slot(d, key, klen, dict_hash(key, klen));
	if ((e = *pe) == NULL)
		return 0;
	*pe = e->next;
	if (val != NULL)
		*val = e->val;
	free(e);
	d->count--;
	return 1;
}

int
sw_dict_del(struct sw_dict *d, const void *key, size_t klen)
{
	void *val;

	if (!sw_dict_take(d, key, klen, &val))
		return 0;
	if (d->free_val != NULL)
		d->free_val(val);
	return 1;
}

void
sw_dict_iter_init(struct sw_dict_iter *it, struct sw_dict *d)
{
	it->d = d;
	it->bucket = 0;
	it->next = d->nbuckets > 0 ? d->buckets[0] : NULL;
}

int
sw_dict_next(struct sw_dict_iter *it, const char **key, size_t *klen, void **val)
{
	struct dict_entry *e;

	while (it->next == NULL) {
		if (++it->bucket >= it->d->nbuckets)
			return 0;
		it->next = it->d->buckets[it->bucket];
	}
	e = it->next;
	/* taken before returning, so the caller may delete e */
	it->next = e->next;
	if (key != NULL)
		*key = e->key;
	if (klen != NULL)
		*klen = e->klen;
	if (val != NULL)
		*val = e->val;
	return 1;
}

size_t
sw_dict_scan(struct sw_dict *d, size_t cursor, size_t max_buckets, sw_dict_scan_fn *fn,
    void *arg)
{
	struct dict_entry *e, *next;

	if (cursor >= d->nbuckets)
		cursor = 0;
	while (max_buckets-- > 0) {
		for (e = d->buckets[cursor]; e != NULL; e = next) {
			next = e->next;
			fn(e->key, e->klen, e->val, arg);
		}
		if (++cursor >= d->nbuckets)
			return 0;
	}
	return cursor;
}
