/*
 * cxo_tree: the publisher's in-memory tree.
 *
 * Children are kept in a sorted array (binary search to find, memmove to
 * insert), which is the order objects are encoded in, so a commit writes a
 * node straight from its array with no sort.  Every node keeps the size its
 * encoding would have, so a put that would push a node past CXO_MAX_OBJ is
 * refused at once instead of failing later at publication.
 */
#include <stdlib.h>
#include <string.h>

#include "cxo_obj.h"
#include "cxo_store.h"
#include "cxo_tree.h"
#include "dmsg_wire.h"

struct tnode {
	struct tnode *parent;
	uint8_t *name;
	size_t nlen;
	int kind;
	int dirty;
	uint8_t hash[SW_HASH_LEN];
	size_t enc_size; /* tree: size of its object now */
	struct tnode **kids;
	size_t nkids, cap;
	uint8_t *leaf;
	size_t leaf_len;
};

struct cxo_tree {
	struct tnode top;
	size_t leaves;
	uint8_t *buf; /* encoding scratch, CXO_MAX_OBJ */
};

/* A path split into names (pointers into the path). */
struct path {
	const uint8_t *name[CXO_MAX_DEPTH];
	size_t len[CXO_MAX_DEPTH];
	size_t n;
};

static int
path_split(const char *s, struct path *p)
{
	const char *q;

	p->n = 0;
	if (s == NULL || *s == '\0')
		return -1;
	for (;;) {
		size_t l;

		q = strchr(s, '/');
		l = q != NULL ? (size_t)(q - s) : strlen(s);
		if (p->n == CXO_MAX_DEPTH || !cxo_name_ok((const uint8_t *)s, l))
			return -1;
		p->name[p->n] = (const uint8_t *)s;
		p->len[p->n++] = l;
		if (q == NULL)
			return 0;
		s = q + 1;
	}
}

static size_t
kid_entry_size(const struct tnode *k)
{
	return 2 + k->nlen + 1 + (k->kind == CXO_KIND_TREE ? SW_HASH_LEN : 4 + k->leaf_len);
}

/* Index of name in n's kids, or -(insertion point + 1). */
static long
kid_find(const struct tnode *n, const uint8_t *name, size_t len)
{
	size_t lo = 0, hi = n->nkids;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cxo_name_cmp(n->kids[mid]->name, n->kids[mid]->nlen, name, len);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static void
mark_dirty(struct tnode *n)
{
	for (; n != NULL && !n->dirty; n = n->parent)
		n->dirty = 1;
}

static void
node_free(struct cxo_tree *t, struct tnode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(t, n->kids[i]);
	if (n->kind == CXO_KIND_LEAF)
		t->leaves--;
	free(n->kids);
	free(n->name);
	free(n->leaf);
	free(n);
}

static struct tnode *
kid_insert(struct tnode *n, size_t at, const uint8_t *name, size_t len, int kind)
{
	struct tnode *k;

	if (n->nkids == n->cap) {
		size_t cap = n->cap ? 2 * n->cap : 4;
		struct tnode **kids = realloc(n->kids, cap * sizeof(*kids));

		if (kids == NULL)
			return NULL;
		n->kids = kids;
		n->cap = cap;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL || (k->name = malloc(len)) == NULL) {
		free(k);
		return NULL;
	}
	memcpy(k->name, name, len);
	k->nlen = len;
	k->kind = kind;
	k->parent = n;
	k->enc_size = 4;
	memmove(n->kids + at + 1, n->kids + at, (n->nkids - at) * sizeof(*n->kids));
	n->kids[at] = k;
	n->nkids++;
	n->enc_size += kid_entry_size(k);
	mark_dirty(n);
	return k;
}

/* Unlink n from its parent and free it, then drop ancestors left empty. */
static void
kid_remove(struct cxo_tree *t, struct tnode *n)
{
	while (n->parent != NULL) {
		struct tnode *p = n->parent;
		long i = kid_find(p, n->name, n->nlen);

		p->enc_size -= kid_entry_size(n);
		memmove(p->kids + i, p->kids + i + 1, (p->nkids - (size_t)i - 1) * sizeof(*p->kids));
		p->nkids--;
		node_free(t, n);
		mark_dirty(p);
		if (p->nkids > 0 || p->parent == NULL)
			return;
		n = p;
	}
}

struct cxo_tree *
cxo_tree_new(void)
{
	struct cxo_tree *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->buf = malloc(CXO_MAX_OBJ);
	if (t->buf == NULL) {
		free(t);
		return NULL;
	}
	t->top.kind = CXO_KIND_TREE;
	t->top.enc_size = 4;
	t->top.dirty = 1; /* the empty tree still has to be published */
	return t;
}

void
cxo_tree_clear(struct cxo_tree *t)
{
	for (size_t i = 0; i < t->top.nkids; i++)
		node_free(t, t->top.kids[i]);
	t->top.nkids = 0;
	t->top.enc_size = 4;
	t->top.dirty = 1;
}

void
cxo_tree_free(struct cxo_tree *t)
{
	if (t == NULL)
		return;
	cxo_tree_clear(t);
	free(t->top.kids);
	free(t->buf);
	free(t);
}

size_t
cxo_tree_leaves(const struct cxo_tree *t)
{
	return t->leaves;
}

int
cxo_tree_dirty(const struct cxo_tree *t)
{
	return t->top.dirty;
}

/* Would growing n's object by grow bytes keep it within CXO_MAX_OBJ? */
static int
fits(const struct tnode *n, size_t grow)
{
	return n->enc_size + grow <= CXO_MAX_OBJ;
}

int
cxo_tree_put(struct cxo_tree *t, const char *path, const void *data, size_t len)
{
	struct path p;
	struct tnode *n = &t->top, *k, *made = NULL;
	long i;

	if (path_split(path, &p) == -1 || len > CXO_MAX_LEAF || (len > 0 && data == NULL))
		return -1;
	for (size_t d = 0; d + 1 < p.n; d++) {
		i = kid_find(n, p.name[d], p.len[d]);
		if (i >= 0) {
			n = n->kids[i];
			if (n->kind != CXO_KIND_TREE)
				goto fail;
			continue;
		}
		if (!fits(n, 2 + p.len[d] + 1 + SW_HASH_LEN))
			goto fail;
		k = kid_insert(n, (size_t)(-i - 1), p.name[d], p.len[d], CXO_KIND_TREE);
		if (k == NULL)
			goto fail;
		if (made == NULL)
			made = k;
		n = k;
	}
	i = kid_find(n, p.name[p.n - 1], p.len[p.n - 1]);
	if (i >= 0) {
		uint8_t *copy;

		k = n->kids[i];
		if (k->kind != CXO_KIND_LEAF)
			goto fail;
		if (k->leaf_len == len && (len == 0 || memcmp(k->leaf, data, len) == 0))
			return 0; /* unchanged: nothing to publish */
		if (len > k->leaf_len && !fits(n, len - k->leaf_len))
			goto fail;
		copy = malloc(len ? len : 1);
		if (copy == NULL)
			goto fail;
		memcpy(copy, data, len);
		free(k->leaf);
		n->enc_size = n->enc_size - k->leaf_len + len;
		k->leaf = copy;
		k->leaf_len = len;
		mark_dirty(n);
		return 0;
	}
	if (!fits(n, 2 + p.len[p.n - 1] + 1 + 4 + len))
		goto fail;
	k = kid_insert(n, (size_t)(-i - 1), p.name[p.n - 1], p.len[p.n - 1], CXO_KIND_LEAF);
	if (k == NULL)
		goto fail;
	n->enc_size -= kid_entry_size(k);
	k->leaf = malloc(len ? len : 1);
	if (k->leaf == NULL) {
		n->enc_size += kid_entry_size(k);
		kid_remove(t, k);
		return -1;
	}
	memcpy(k->leaf, data, len);
	k->leaf_len = len;
	n->enc_size += kid_entry_size(k);
	t->leaves++;
	return 0;
fail:
	/* Undo the sub-trees this call made, so a refused put changes nothing. */
	if (made != NULL)
		kid_remove(t, made);
	return -1;
}

static struct tnode *
lookup(struct cxo_tree *t, const char *path)
{
	struct path p;
	struct tnode *n = &t->top;

	if (path_split(path, &p) == -1)
		return NULL;
	for (size_t d = 0; d < p.n; d++) {
		long i;

		if (n->kind != CXO_KIND_TREE)
			return NULL;
		i = kid_find(n, p.name[d], p.len[d]);
		if (i < 0)
			return NULL;
		n = n->kids[i];
	}
	return n;
}

int
cxo_tree_delete(struct cxo_tree *t, const char *path)
{
	struct path p;
	struct tnode *n;

	if (path_split(path, &p) == -1)
		return -1;
	n = lookup(t, path);
	if (n == NULL)
		return 0;
	if (n->kind != CXO_KIND_LEAF)
		return -1;
	kid_remove(t, n);
	return 1;
}

int
cxo_tree_prune(struct cxo_tree *t, const char *prefix)
{
	struct path p;
	struct tnode *n;

	if (path_split(prefix, &p) == -1)
		return -1;
	n = lookup(t, prefix);
	if (n == NULL)
		return 0;
	kid_remove(t, n);
	return 1;
}

static int
commit_node(struct cxo_tree *t, struct tnode *n, struct cxo_store *st)
{
	uint8_t *o = t->buf;

	for (size_t i = 0; i < n->nkids; i++) {
		struct tnode *k = n->kids[i];

		if (k->kind == CXO_KIND_TREE && k->dirty && commit_node(t, k, st) == -1)
			return -1;
	}
	/* Children first: the scratch buffer is free again from here on. */
	sw_put_u32(o, (uint32_t)n->nkids);
	o += 4;
	for (size_t i = 0; i < n->nkids; i++) {
		struct tnode *k = n->kids[i];

		sw_put_u16(o, (uint16_t)k->nlen);
		memcpy(o + 2, k->name, k->nlen);
		o += 2 + k->nlen;
		*o++ = (uint8_t)k->kind;
		if (k->kind == CXO_KIND_TREE) {
			memcpy(o, k->hash, SW_HASH_LEN);
			o += SW_HASH_LEN;
		} else {
			sw_put_u32(o, (uint32_t)k->leaf_len);
			if (k->leaf_len > 0)
				memcpy(o + 4, k->leaf, k->leaf_len);
			o += 4 + k->leaf_len;
		}
	}
	sw_hash(n->hash, t->buf, (size_t)(o - t->buf));
	if (cxo_store_add(st, n->hash, t->buf, (size_t)(o - t->buf)) == -1)
		return -1;
	n->dirty = 0;
	return 0;
}

int
cxo_tree_commit(struct cxo_tree *t, struct cxo_store *st, uint8_t top[SW_HASH_LEN])
{
	if (t->top.dirty && commit_node(t, &t->top, st) == -1)
		return -1;
	memcpy(top, t->top.hash, SW_HASH_LEN);
	return 0;
}
