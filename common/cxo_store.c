/*
 * cxo_store: reference-counted object store (see cxo_store.h for the rule).
 * Pending objects sit on a list so a sweep costs only what it frees.  The
 * recursion in hold/release follows tree depth, which both ends bound by
 * CXO_MAX_DEPTH.
 */
#include <stdlib.h>
#include <string.h>

#include "cxo_obj.h"
#include "cxo_store.h"
#include "dict.h"

struct sobj {
	struct sobj *prev, *next; /* the pending list, while refs == 0 */
	size_t refs;
	size_t len;
	uint8_t hash[SW_HASH_LEN];
	uint8_t data[];
};

struct cxo_store {
	struct sw_dict *objs;
	struct sobj *pending;
	size_t bytes;
	size_t pending_bytes;
};

struct cxo_store *
cxo_store_new(void)
{
	struct cxo_store *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->objs = sw_dict_new(free);
	if (st->objs == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

void
cxo_store_free(struct cxo_store *st)
{
	if (st == NULL)
		return;
	sw_dict_free(st->objs);
	free(st);
}

static void
pending_unlink(struct cxo_store *st, struct sobj *o)
{
	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		st->pending = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
	o->prev = o->next = NULL;
	st->pending_bytes -= o->len;
}

static void
pending_link(struct cxo_store *st, struct sobj *o)
{
	o->prev = NULL;
	o->next = st->pending;
	if (st->pending != NULL)
		st->pending->prev = o;
	st->pending = o;
	st->pending_bytes += o->len;
}

int
cxo_store_add(struct cxo_store *st, const uint8_t hash[SW_HASH_LEN], const uint8_t *buf,
    size_t len)
{
	struct sobj *o;

	if (sw_dict_find(st->objs, hash, SW_HASH_LEN, NULL))
		return 0;
	o = malloc(sizeof(*o) + len);
	if (o == NULL)
		return -1;
	o->refs = 0;
	o->len = len;
	memcpy(o->hash, hash, SW_HASH_LEN);
	memcpy(o->data, buf, len);
	if (sw_dict_set(st->objs, hash, SW_HASH_LEN, o) == -1) {
		free(o);
		return -1;
	}
	pending_link(st, o);
	st->bytes += len;
	return 1;
}

const uint8_t *
cxo_store_get(const struct cxo_store *st, const uint8_t hash[SW_HASH_LEN], size_t *len)
{
	struct sobj *o = sw_dict_get(st->objs, hash, SW_HASH_LEN);

	if (o == NULL)
		return NULL;
	if (len != NULL)
		*len = o->len;
	return o->data;
}

int
cxo_store_live(const struct cxo_store *st, const uint8_t hash[SW_HASH_LEN])
{
	struct sobj *o = sw_dict_get(st->objs, hash, SW_HASH_LEN);

	return o != NULL && o->refs > 0;
}

static void
hold_obj(struct cxo_store *st, struct sobj *o)
{
	struct cxo_obj_iter it;
	struct cxo_entry e;

	if (o->refs++ > 0)
		return;
	pending_unlink(st, o);
	cxo_obj_iter_init(&it, o->data, o->len);
	while (cxo_obj_iter_next(&it, &e)) {
		struct sobj *c;

		if (e.kind != CXO_KIND_TREE)
			continue;
		c = sw_dict_get(st->objs, e.hash, SW_HASH_LEN);
		if (c != NULL)
			hold_obj(st, c);
	}
}

static void
release_obj(struct cxo_store *st, struct sobj *o)
{
	struct cxo_obj_iter it;
	struct cxo_entry e;

	if (o->refs == 0 || --o->refs > 0)
		return;
	cxo_obj_iter_init(&it, o->data, o->len);
	while (cxo_obj_iter_next(&it, &e)) {
		struct sobj *c;

		if (e.kind != CXO_KIND_TREE)
			continue;
		c = sw_dict_get(st->objs, e.hash, SW_HASH_LEN);
		if (c != NULL)
			release_obj(st, c);
	}
	st->bytes -= o->len;
	sw_dict_del(st->objs, o->hash, SW_HASH_LEN);
}

void
cxo_store_hold(struct cxo_store *st, const uint8_t hash[SW_HASH_LEN])
{
	struct sobj *o = sw_dict_get(st->objs, hash, SW_HASH_LEN);

	if (o != NULL)
		hold_obj(st, o);
}

void
cxo_store_release(struct cxo_store *st, const uint8_t hash[SW_HASH_LEN])
{
	struct sobj *o = sw_dict_get(st->objs, hash, SW_HASH_LEN);

	if (o != NULL)
		release_obj(st, o);
}

void
cxo_store_sweep(struct cxo_store *st)
{
	while (st->pending != NULL) {
		struct sobj *o = st->pending;

		pending_unlink(st, o);
		st->bytes -= o->len;
		sw_dict_del(st->objs, o->hash, SW_HASH_LEN);
	}
}

size_t
cxo_store_count(const struct cxo_store *st)
{
	return sw_dict_size(st->objs);
}

size_t
cxo_store_bytes(const struct cxo_store *st)
{
	return st->bytes;
}

size_t
cxo_store_pending_bytes(const struct cxo_store *st)
{
	return st->pending_bytes;
}
