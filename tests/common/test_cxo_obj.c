/*
 * test_cxo_obj: CXO objects and roots to the byte, every malformed form
 * refused; the publisher tree's path rules; the object store's reference
 * counts (a released root frees exactly what nothing else names).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"
#include "cxo_obj.h"
#include "cxo_store.h"
#include "cxo_tree.h"
#include "dmsg_wire.h"

static uint8_t buf[CXO_MAX_OBJ + 64];

static struct cxo_entry
leaf(const char *name, const char *val)
{
	struct cxo_entry e = {(const uint8_t *)name, strlen(name), CXO_KIND_LEAF, NULL,
	    (const uint8_t *)val, strlen(val)};
	return e;
}

static struct cxo_entry
tree(const char *name, const uint8_t *hash)
{
	struct cxo_entry e = {(const uint8_t *)name, strlen(name), CXO_KIND_TREE, hash, NULL, 0};
	return e;
}

static void
test_obj_roundtrip(void **state)
{
	uint8_t h[SW_HASH_LEN];
	struct cxo_entry es[3], e;
	struct cxo_obj_iter it;
	uint32_t count;
	long n;

	(void)state;
	memset(h, 0xab, sizeof(h));
	es[0] = leaf("a", "x");
	es[1] = tree("ab", h);
	es[2] = leaf("b", "");
	n = cxo_obj_encode(es, 3, buf, sizeof(buf));
	/* 4 + (2+1+1+4+1) + (2+2+1+32) + (2+1+1+4) */
	assert_int_equal(n, 4 + 9 + 37 + 8);
	assert_int_equal(sw_get_u32(buf), 3);
	assert_int_equal(sw_get_u16(buf + 4), 1);
	assert_int_equal(buf[6], 'a');
	assert_int_equal(buf[7], CXO_KIND_LEAF);
	assert_int_equal(sw_get_u32(buf + 8), 1);
	assert_int_equal(cxo_obj_check(buf, (size_t)n, &count), 0);
	assert_int_equal(count, 3);
	cxo_obj_iter_init(&it, buf, (size_t)n);
	for (int i = 0; i < 3; i++) {
		assert_true(cxo_obj_iter_next(&it, &e));
		assert_int_equal(e.name_len, es[i].name_len);
		assert_memory_equal(e.name, es[i].name, e.name_len);
		assert_int_equal(e.kind, es[i].kind);
	}
	assert_false(cxo_obj_iter_next(&it, &e));
	assert_true(cxo_obj_find(buf, (size_t)n, (const uint8_t *)"ab", 2, &e));
	assert_memory_equal(e.hash, h, SW_HASH_LEN);
	assert_false(cxo_obj_find(buf, (size_t)n, (const uint8_t *)"aa", 2, &e));
	/* The empty tree: count 0. */
	assert_int_equal(cxo_obj_encode(NULL, 0, buf, sizeof(buf)), 4);
	assert_int_equal(cxo_obj_check(buf, 4, &count), 0);
	assert_int_equal(count, 0);
}

static void
test_obj_encode_refuses(void **state)
{
	uint8_t h[SW_HASH_LEN] = {0};
	struct cxo_entry es[2];
	static char big[CXO_MAX_LEAF + 2];
	char name[300];

	(void)state;
	es[0] = leaf("b", "1");
	es[1] = leaf("a", "2");
	assert_int_equal(cxo_obj_encode(es, 2, buf, sizeof(buf)), -1); /* unsorted */
	es[1] = leaf("b", "2");
	assert_int_equal(cxo_obj_encode(es, 2, buf, sizeof(buf)), -1); /* duplicate */
	es[0] = leaf("a/b", "1");
	assert_int_equal(cxo_obj_encode(es, 1, buf, sizeof(buf)), -1);
	es[0] = leaf("", "1");
	assert_int_equal(cxo_obj_encode(es, 1, buf, sizeof(buf)), -1);
	memset(name, 'n', sizeof(name));
	name[256] = '\0';
	es[0] = leaf(name, "1");
	assert_int_equal(cxo_obj_encode(es, 1, buf, sizeof(buf)), -1);
	name[255] = '\0';
	es[0] = leaf(name, "1");
	assert_true(cxo_obj_encode(es, 1, buf, sizeof(buf)) > 0);
	memset(big, 'x', sizeof(big) - 1);
	big[CXO_MAX_LEAF + 1] = '\0';
	es[0] = leaf("a", big);
	assert_int_equal(cxo_obj_encode(es, 1, buf, sizeof(buf)), -1);
	big[CXO_MAX_LEAF] = '\0';
	es[0] = leaf("a", big);
	assert_true(cxo_obj_encode(es, 1, buf, sizeof(buf)) > 0);
	es[0] = tree("a", h);
	es[0].kind = 2;
	assert_int_equal(cxo_obj_encode(es, 1, buf, sizeof(buf)), -1);
	es[0] = leaf("a", "1");
	assert_int_equal(cxo_obj_encode(es, 1, buf, 5), -1); /* does not fit cap */
}

/* Build raw objects by hand, as a hostile peer would. */
static size_t
raw(uint8_t *o, uint32_t count, const char *name, uint8_t kind, uint32_t leaf_len)
{
	size_t n = strlen(name), l = 0;

	sw_put_u32(o, count);
	sw_put_u16(o + 4, (uint16_t)n);
	memcpy(o + 6, name, n);
	o[6 + n] = kind;
	l = 7 + n;
	if (kind == CXO_KIND_LEAF) {
		sw_put_u32(o + l, leaf_len);
		memset(o + l + 4, 'v', leaf_len);
		l += 4 + leaf_len;
	} else {
		memset(o + l, 1, SW_HASH_LEN);
		l += SW_HASH_LEN;
	}
	return l;
}

static void
test_obj_check_refuses(void **state)
{
	struct cxo_entry es[2];
	size_t n;
	long good;

	(void)state;
	es[0] = leaf("a", "xy");
	es[1] = leaf("b", "z");
	good = cxo_obj_encode(es, 2, buf, sizeof(buf));
	assert_true(good > 0);
	/* Every truncation, and a trailing byte. */
	for (long cut = 0; cut < good; cut++)
		assert_int_equal(cxo_obj_check(buf, (size_t)cut, NULL), -1);
	buf[good] = 0;
	assert_int_equal(cxo_obj_check(buf, (size_t)good + 1, NULL), -1);
	/* Count larger than the entries. */
	sw_put_u32(buf, 3);
	assert_int_equal(cxo_obj_check(buf, (size_t)good, NULL), -1);
	sw_put_u32(buf, 0xffffffffu);
	assert_int_equal(cxo_obj_check(buf, (size_t)good, NULL), -1);
	/* Unsorted and duplicate names. */
	sw_put_u32(buf, 2);
	buf[10 + 2 + 3] = 'a'; /* the second name "b" -> "a" */
	assert_int_equal(cxo_obj_check(buf, (size_t)good, NULL), -1);
	buf[10 + 2 + 3] = '0';
	assert_int_equal(cxo_obj_check(buf, (size_t)good, NULL), -1);
	/* Bad kinds, bad names. */
	n = raw(buf, 1, "a", 2, 0);
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
	n = raw(buf, 1, "a", 0, 0);
	assert_int_equal(cxo_obj_check(buf, n, NULL), 0);
	n = raw(buf, 1, "a/b", 1, 1);
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
	n = raw(buf, 1, "", 1, 1);
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
	n = raw(buf, 1, "a", 1, 1);
	buf[6] = '\0';
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
	/* Leaf length past the end, oversize leaf, oversize object. */
	n = raw(buf, 1, "a", 1, 4);
	sw_put_u32(buf + 8, 5);
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
	n = raw(buf, 1, "a", 1, CXO_MAX_LEAF + 1);
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
	n = raw(buf, 1, "a", 1, CXO_MAX_LEAF);
	assert_int_equal(cxo_obj_check(buf, n, NULL), 0);
	assert_int_equal(cxo_obj_check(buf, CXO_MAX_OBJ + 1, NULL), -1);
	/* Name length past the end. */
	n = raw(buf, 1, "a", 1, 0);
	sw_put_u16(buf + 4, 200);
	assert_int_equal(cxo_obj_check(buf, n, NULL), -1);
}

static void
test_root(void **state)
{
	struct sw_keypair kp, other;
	struct cxo_root r = {0}, d;
	uint8_t b[CXO_ROOT_LEN];

	(void)state;
	sw_keypair_generate(&kp);
	sw_keypair_generate(&other);
	r.version = CXO_ROOT_VERSION;
	memcpy(r.feed_pk, kp.pk, SW_PK_LEN);
	r.feed_port = 46;
	r.seq = 0x0102030405060708ull;
	r.time_s = 1700000000;
	memset(r.prev, 2, SW_HASH_LEN);
	memset(r.tree, 3, SW_HASH_LEN);
	cxo_root_encode(&r, &kp, b);
	assert_int_equal(CXO_ROOT_LEN, 179);
	assert_int_equal(b[0], 1);
	assert_memory_equal(b + 1, kp.pk, SW_PK_LEN);
	assert_int_equal(sw_get_u16(b + 33), 46);
	assert_int_equal(sw_get_u64(b + 35), r.seq);
	assert_int_equal(sw_get_u64(b + 43), r.time_s);
	assert_int_equal(b[51], 2);
	assert_int_equal(b[83], 3);
	assert_int_equal(cxo_root_decode(b, sizeof(b), &d), 0);
	assert_int_equal(d.seq, r.seq);
	assert_int_equal(d.feed_port, 46);
	assert_memory_equal(d.tree, r.tree, SW_HASH_LEN);
	assert_int_equal(cxo_root_verify(b, sizeof(b), &d), 0);
	for (size_t cut = 0; cut < sizeof(b); cut++)
		assert_int_equal(cxo_root_decode(b, cut, &d), -1);
	b[0] = 2;
	assert_int_equal(cxo_root_decode(b, sizeof(b), &d), -1);
	b[0] = 1;
	/* Any flipped byte breaks the signature; another key's signature too. */
	for (size_t i = 1; i < sizeof(b); i += 7) {
		b[i] ^= 1;
		assert_int_equal(cxo_root_decode(b, sizeof(b), &d), 0);
		assert_int_equal(cxo_root_verify(b, sizeof(b), &d), -1);
		b[i] ^= 1;
	}
	cxo_root_encode(&r, &other, b); /* feed_pk says kp, signed by other */
	assert_int_equal(cxo_root_decode(b, sizeof(b), &d), 0);
	assert_int_equal(cxo_root_verify(b, sizeof(b), &d), -1);
}

static void
test_tree_paths(void **state)
{
	struct cxo_tree *t = cxo_tree_new();
	struct cxo_store *st = cxo_store_new();
	uint8_t h1[SW_HASH_LEN], h2[SW_HASH_LEN], h3[SW_HASH_LEN];
	static char big[CXO_MAX_LEAF + 1];
	char path[CXO_MAX_DEPTH * 2 + 8];

	(void)state;
	assert_int_equal(cxo_tree_commit(t, st, h1), 0);
	/* The empty tree is a node with count 0. */
	{
		uint8_t e[4] = {0}, eh[SW_HASH_LEN];

		sw_hash(eh, e, 4);
		assert_memory_equal(h1, eh, SW_HASH_LEN);
	}
	assert_int_equal(cxo_tree_put(t, "a/b/c", "1", 1), 0);
	assert_int_equal(cxo_tree_put(t, "a/b/c/d", "1", 1), -1); /* crosses a leaf */
	assert_int_equal(cxo_tree_put(t, "a/b", "1", 1), -1);     /* names a sub-tree */
	assert_int_equal(cxo_tree_put(t, "", "1", 1), -1);
	assert_int_equal(cxo_tree_put(t, "/a", "1", 1), -1);
	assert_int_equal(cxo_tree_put(t, "a//b", "1", 1), -1);
	assert_int_equal(cxo_tree_put(t, "a/", "1", 1), -1);
	assert_int_equal(cxo_tree_put(t, "x", big, CXO_MAX_LEAF + 1), -1);
	path[0] = '\0';
	for (int i = 0; i <= CXO_MAX_DEPTH; i++)
		strcat(path, i ? "/p" : "p");
	assert_int_equal(cxo_tree_put(t, path, "1", 1), -1);
	assert_int_equal(cxo_tree_leaves(t), 1);
	assert_int_equal(cxo_tree_commit(t, st, h2), 0);
	assert_memory_not_equal(h1, h2, SW_HASH_LEN);
	/* Same value again: nothing changes. */
	assert_int_equal(cxo_tree_put(t, "a/b/c", "1", 1), 0);
	assert_false(cxo_tree_dirty(t));
	assert_int_equal(cxo_tree_delete(t, "a/b"), -1);
	assert_int_equal(cxo_tree_delete(t, "a/b/zz"), 0);
	assert_int_equal(cxo_tree_delete(t, "a/b/c"), 1);
	assert_int_equal(cxo_tree_leaves(t), 0);
	/* Empty sub-trees go with their last leaf: back to the empty tree. */
	assert_int_equal(cxo_tree_commit(t, st, h3), 0);
	assert_memory_equal(h1, h3, SW_HASH_LEN);
	assert_int_equal(cxo_tree_put(t, "a/b/c", "1", 1), 0);
	assert_int_equal(cxo_tree_put(t, "a/b/d", "2", 1), 0);
	assert_int_equal(cxo_tree_put(t, "a/e", "3", 1), 0);
	assert_int_equal(cxo_tree_prune(t, "a/b"), 1);
	assert_int_equal(cxo_tree_leaves(t), 1);
	assert_int_equal(cxo_tree_prune(t, "a"), 1);
	assert_int_equal(cxo_tree_commit(t, st, h3), 0);
	assert_memory_equal(h1, h3, SW_HASH_LEN);
	/* A node may not pass 1 MiB: the fifth 256 KiB leaf in one node is refused. */
	for (int i = 0; i < 5; i++) {
		char n[16];

		snprintf(n, sizeof(n), "big%d", i);
		assert_int_equal(cxo_tree_put(t, n, big, CXO_MAX_LEAF), i < 3 ? 0 : -1);
	}
	assert_int_equal(cxo_tree_commit(t, st, h3), 0);
	cxo_tree_free(t);
	cxo_store_free(st);
}

static void
test_store_refcount(void **state)
{
	struct cxo_tree *t = cxo_tree_new();
	struct cxo_store *st = cxo_store_new();
	uint8_t r1[SW_HASH_LEN], r2[SW_HASH_LEN], r3[SW_HASH_LEN];

	(void)state;
	for (int i = 0; i < 100; i++) {
		char p[32];

		snprintf(p, sizeof(p), "s%d/c%02d", i % 4, i);
		assert_int_equal(cxo_tree_put(t, p, p, strlen(p)), 0);
	}
	assert_int_equal(cxo_tree_commit(t, st, r1), 0);
	cxo_store_hold(st, r1);
	cxo_store_sweep(st);
	assert_int_equal(cxo_store_count(st), 5); /* top + 4 */
	assert_int_equal(cxo_tree_put(t, "s1/c01", "new", 3), 0);
	assert_int_equal(cxo_tree_commit(t, st, r2), 0);
	cxo_store_hold(st, r2);
	assert_int_equal(cxo_store_count(st), 7);
	/* Releasing r1 frees its top and old s1, keeps the shared s0, s2, s3. */
	cxo_store_release(st, r1);
	assert_int_equal(cxo_store_count(st), 5);
	assert_null(cxo_store_get(st, r1, NULL));
	assert_true(cxo_store_live(st, r2));
	/* Pending objects live until a sweep. */
	assert_int_equal(cxo_tree_put(t, "s2/c02", "new", 3), 0);
	assert_int_equal(cxo_tree_commit(t, st, r3), 0);
	assert_int_equal(cxo_store_count(st), 7);
	assert_false(cxo_store_live(st, r3));
	assert_true(cxo_store_pending_bytes(st) > 0);
	cxo_store_sweep(st);
	assert_int_equal(cxo_store_count(st), 5);
	assert_int_equal(cxo_store_pending_bytes(st), 0);
	cxo_store_release(st, r2);
	assert_int_equal(cxo_store_count(st), 0);
	assert_int_equal(cxo_store_bytes(st), 0);
	cxo_tree_free(t);
	cxo_store_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_obj_roundtrip),
		cmocka_unit_test(test_obj_encode_refuses),
		cmocka_unit_test(test_obj_check_refuses),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_tree_paths),
		cmocka_unit_test(test_store_refcount),
	};

	sw_crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
