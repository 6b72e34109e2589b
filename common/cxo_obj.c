/*
 * cxo_obj: CXO objects and roots, to the byte (cxo.md, "Data model").
 *
 * An object is checked once, completely, by cxo_obj_check before any of it
 * is trusted; the iterator that follows relies on that and does no checks
 * of its own, which keeps the hot walk (diffs, lookups) branch-light.
 */
#include <string.h>

#include "cxo_obj.h"
#include "dmsg_wire.h"

int
cxo_name_ok(const uint8_t *name, size_t len)
{
	if (len < 1 || len > CXO_MAX_NAME)
		return 0;
	return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

int
cxo_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

size_t
cxo_entry_size(const struct cxo_entry *e)
{
	return 2 + e->name_len + 1 + (e->kind == CXO_KIND_TREE ? SW_HASH_LEN : 4 + e->leaf_len);
}

/* One entry at *p with *left bytes remaining; -1 on any fault. */
static int
entry_take(const uint8_t **p, size_t *left, struct cxo_entry *e)
{
	const uint8_t *q = *p;
	size_t n = *left, nlen;

	if (n < 3)
		return -1;
	nlen = sw_get_u16(q);
	if (n < 2 + nlen + 1)
		return -1;
	e->name = q + 2;
	e->name_len = nlen;
	e->kind = q[2 + nlen];
	q += 3 + nlen;
	n -= 3 + nlen;
	if (!cxo_name_ok(e->name, nlen))
		return -1;
	if (e->kind == CXO_KIND_TREE) {
		if (n < SW_HASH_LEN)
			return -1;
		e->hash = q;
		e->leaf = NULL;
		e->leaf_len = 0;
		q += SW_HASH_LEN;
		n -= SW_HASH_LEN;
	} else if (e->kind == CXO_KIND_LEAF) {
		if (n < 4)
			return -1;
		e->leaf_len = sw_get_u32(q);
		if (e->leaf_len > CXO_MAX_LEAF || n - 4 < e->leaf_len)
			return -1;
		e->hash = NULL;
		e->leaf = q + 4;
		q += 4 + e->leaf_len;
		n -= 4 + e->leaf_len;
	} else {
		return -1;
	}
	*p = q;
	*left = n;
	return 0;
}

int
cxo_obj_check(const uint8_t *buf, size_t len, uint32_t *count)
{
	struct cxo_entry e, prev = {0};
	const uint8_t *p;
	size_t left;
	uint32_t n;

	if (len < 4 || len > CXO_MAX_OBJ)
		return -1;
	n = sw_get_u32(buf);
	/* The smallest entry is 8 bytes: a count that cannot fit is refused at once. */
	if (n > (len - 4) / 8)
		return -1;
	p = buf + 4;
	left = len - 4;
	for (uint32_t i = 0; i < n; i++) {
		if (entry_take(&p, &left, &e) == -1)
			return -1;
		if (i > 0 && cxo_name_cmp(prev.name, prev.name_len, e.name, e.name_len) >= 0)
			return -1;
		prev = e;
	}
	if (left != 0)
		return -1;
	if (count != NULL)
		*count = n;
	return 0;
}

void
cxo_obj_iter_init(struct cxo_obj_iter *it, const uint8_t *buf, size_t len)
{
	(void)len;
	it->left = sw_get_u32(buf);
	it->p = buf + 4;
}

int
cxo_obj_iter_next(struct cxo_obj_iter *it, struct cxo_entry *e)
{
	const uint8_t *q = it->p;

	if (it->left == 0)
		return 0;
	it->left--;
	e->name_len = sw_get_u16(q);
	e->name = q + 2;
	e->kind = q[2 + e->name_len];
	q += 3 + e->name_len;
	if (e->kind == CXO_KIND_TREE) {
		e->hash = q;
		e->leaf = NULL;
		e->leaf_len = 0;
		q += SW_HASH_LEN;
	} else {
		e->hash = NULL;
		e->leaf_len = sw_get_u32(q);
		e->leaf = q + 4;
		q += 4 + e->leaf_len;
	}
	it->p = q;
	return 1;
}

int
cxo_obj_find(const uint8_t *buf, size_t len, const uint8_t *name, size_t nlen,
    struct cxo_entry *e)
{
	struct cxo_obj_iter it;

	cxo_obj_iter_init(&it, buf, len);
	while (cxo_obj_iter_next(&it, e)) {
		int c = cxo_name_cmp(e->name, e->name_len, name, nlen);

		if (c == 0)
			return 1;
		if (c > 0)
			return 0; /* sorted: it is not further on */
	}
	return 0;
}

long
cxo_obj_encode(const struct cxo_entry *es, size_t n, uint8_t *out, size_t cap)
{
	size_t total = 4;

	if (n > UINT32_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct cxo_entry *e = &es[i];

		if (!cxo_name_ok(e->name, e->name_len))
			return -1;
		if (e->kind != CXO_KIND_TREE && e->kind != CXO_KIND_LEAF)
			return -1;
		if (e->kind == CXO_KIND_LEAF && e->leaf_len > CXO_MAX_LEAF)
			return -1;
		if (i > 0 && cxo_name_cmp(es[i - 1].name, es[i - 1].name_len, e->name,
		    e->name_len) >= 0)
			return -1;
		total += cxo_entry_size(e);
		if (total > CXO_MAX_OBJ)
			return -1;
	}
	if (total > cap)
		return -1;
	sw_put_u32(out, (uint32_t)n);
	out += 4;
	for (size_t i = 0; i < n; i++) {
		const struct cxo_entry *e = &es[i];

		sw_put_u16(out, (uint16_t)e->name_len);
		memcpy(out + 2, e->name, e->name_len);
		out += 2 + e->name_len;
		*out++ = (uint8_t)e->kind;
		if (e->kind == CXO_KIND_TREE) {
			memcpy(out, e->hash, SW_HASH_LEN);
			out += SW_HASH_LEN;
		} else {
			sw_put_u32(out, (uint32_t)e->leaf_len);
			if (e->leaf_len > 0)
				memcpy(out + 4, e->leaf, e->leaf_len);
			out += 4 + e->leaf_len;
		}
	}
	return (long)total;
}

void
cxo_root_encode(struct cxo_root *r, const struct sw_keypair *kp, uint8_t out[CXO_ROOT_LEN])
{
	uint8_t *p = out;

	*p++ = r->version;
	memcpy(p, r->feed_pk, SW_PK_LEN);
	p += SW_PK_LEN;
	sw_put_u16(p, r->feed_port);
	p += 2;
	sw_put_u64(p, r->seq);
	p += 8;
	sw_put_u64(p, r->time_s);
	p += 8;
	memcpy(p, r->prev, SW_HASH_LEN);
	p += SW_HASH_LEN;
	memcpy(p, r->tree, SW_HASH_LEN);
	p += SW_HASH_LEN;
	sw_sign(r->sig, out, CXO_ROOT_SIGNED, kp);
	memcpy(p, r->sig, SW_SIG_LEN);
}

int
cxo_root_decode(const uint8_t *buf, size_t len, struct cxo_root *r)
{
	const uint8_t *p = buf;

	if (len != CXO_ROOT_LEN || buf[0] != CXO_ROOT_VERSION)
		return -1;
	r->version = *p++;
	memcpy(r->feed_pk, p, SW_PK_LEN);
	p += SW_PK_LEN;
	r->feed_port = sw_get_u16(p);
	p += 2;
	r->seq = sw_get_u64(p);
	p += 8;
	r->time_s = sw_get_u64(p);
	p += 8;
	memcpy(r->prev, p, SW_HASH_LEN);
	p += SW_HASH_LEN;
	memcpy(r->tree, p, SW_HASH_LEN);
	p += SW_HASH_LEN;
	memcpy(r->sig, p, SW_SIG_LEN);
	return 0;
}

int
cxo_root_verify(const uint8_t *buf, size_t len, const struct cxo_root *r)
{
	if (len != CXO_ROOT_LEN)
		return -1;
	return sw_verify(r->sig, buf, CXO_ROOT_SIGNED, r->feed_pk);
}
