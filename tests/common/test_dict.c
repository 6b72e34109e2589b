/*
 * test_dict: the hash table under its documented promises: binary keys,
 * replace/delete freeing values once, growth and shrinking keeping every
 * entry, deletion while iterating or scanning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dict.h"

static int freed;

static void
count_free(void *p)
{
	freed++;
	free(p);
}

static char *
dupstr(const char *s)
{
	char *p = malloc(strlen(s) + 1);

	assert_non_null(p);
	strcpy(p, s);
	return p;
}

static void
test_basic(void **state)
{
	struct sw_dict *d;
	void *v;

	(void)state;
	freed = 0;
	assert_non_null(d = sw_dict_new(count_free));
	assert_int_equal(sw_dict_size(d), 0);
	assert_null(sw_dict_get(d, "a", 1));
	assert_int_equal(sw_dict_set(d, "a", 1, dupstr("one")), 1);
	assert_int_equal(sw_dict_add(d, "b", 1, dupstr("two")), 1);
	assert_int_equal(sw_dict_size(d), 2);
	assert_string_equal(sw_dict_get(d, "a", 1), "one");
	assert_true(sw_dict_find(d, "b", 1, &v));
	assert_string_equal(v, "two");
	assert_false(sw_dict_find(d, "c", 1, NULL));

	/* add does not replace (nor take the value), set does and frees the old one */
	v = dupstr("x");
	assert_int_equal(sw_dict_add(d, "a", 1, v), 0);
	free(v);
	assert_int_equal(freed, 0);
	assert_int_equal(sw_dict_set(d, "a", 1, dupstr("uno")), 0);
	assert_int_equal(freed, 1);
	assert_string_equal(sw_dict_get(d, "a", 1), "uno");
	assert_string_equal(sw_dict_key(d, "a", 1), "a");

	assert_int_equal(sw_dict_del(d, "a", 1), 1);
	assert_int_equal(freed, 2);
	assert_int_equal(sw_dict_del(d, "a", 1), 0);
	assert_int_equal(sw_dict_take(d, "b", 1, &v), 1);
	assert_int_equal(freed, 2);
	assert_string_equal(v, "two");
	free(v);
	assert_int_equal(sw_dict_size(d), 0);

	assert_int_equal(sw_dict_set(d, "z", 1, dupstr("last")), 1);
	sw_dict_free(d);
	assert_int_equal(freed, 3);
	sw_dict_free(NULL);
}

static void
test_binary_keys(void **state)
{
	static const char k1[] = {'a', '\0', 'b'}, k2[] = {'a', '\0', 'c'}, k3[] = {'a'};
	struct sw_dict *d;
	int one = 1, two = 2, three = 3, empty = 4;

	(void)state;
	assert_non_null(d = sw_dict_new(NULL));
	assert_int_equal(sw_dict_set(d, k1, 3, &one), 1);
	assert_int_equal(sw_dict_set(d, k2, 3, &two), 1);
	assert_int_equal(sw_dict_set(d, k3, 1, &three), 1);
	assert_int_equal(sw_dict_set(d, "", 0, &empty), 1);
	assert_ptr_equal(sw_dict_get(d, k1, 3), &one);
	assert_ptr_equal(sw_dict_get(d, k2, 3), &two);
	assert_ptr_equal(sw_dict_get(d, k3, 1), &three);
	assert_ptr_equal(sw_dict_get(d, "", 0), &empty);
	assert_null(sw_dict_get(d, k1, 2));
	assert_memory_equal(sw_dict_key(d, k2, 3), k2, 3);
	assert_int_equal(sw_dict_size(d), 4);
	sw_dict_free(d);
}

#define MANY 50000

static void
test_grow_shrink(void **state)
{
	struct sw_dict *d;
	char key[32];
	uintptr_t i;
	int n;

	(void)state;
	assert_non_null(d = sw_dict_new(NULL));
	for (i = 1; i <= MANY; i++) {
		n = snprintf(key, sizeof(key), "key:%lu", (unsigned long)i);
		assert_int_equal(sw_dict_set(d, key, (size_t)n, (void *)i), 1);
	}
	assert_int_equal(sw_dict_size(d), MANY);
	for (i = 1; i <= MANY; i++) {
		n = snprintf(key, sizeof(key), "key:%lu", (unsigned long)i);
		assert_true((uintptr_t)sw_dict_get(d, key, (size_t)n) == i);
	}
	/* delete all but ten, then shrink: the survivors must still be found */
	for (i = 11; i <= MANY; i++) {
		n = snprintf(key, sizeof(key), "key:%lu", (unsigned long)i);
		assert_int_equal(sw_dict_del(d, key, (size_t)n), 1);
	}
	sw_dict_compact(d);
	assert_int_equal(sw_dict_size(d), 10);
	for (i = 1; i <= 10; i++) {
		n = snprintf(key, sizeof(key), "key:%lu", (unsigned long)i);
		assert_true((uintptr_t)sw_dict_get(d, key, (size_t)n) == i);
	}
	sw_dict_free(d);
}

static void
test_iterate_delete(void **state)
{
	struct sw_dict_iter it;
	struct sw_dict *d;
	const char *k;
	size_t kl;
	void *v;
	char key[16], seen[1000] = {0};
	int i, n, count = 0;

	(void)state;
	freed = 0;
	assert_non_null(d = sw_dict_new(count_free));
	for (i = 0; i < 1000; i++) {
		n = snprintf(key, sizeof(key), "%d", i);
		assert_int_equal(sw_dict_set(d, key, (size_t)n, dupstr(key)), 1);
	}
	/* every entry exactly once; deleting the current one (odd keys) is allowed */
	for (sw_dict_iter_init(&it, d); sw_dict_next(&it, &k, &kl, &v);) {
		i = atoi(k);
		assert_string_equal(v, k);
		assert_int_equal(seen[i], 0);
		seen[i] = 1;
		count++;
		if (i % 2)
			assert_int_equal(sw_dict_del(d, k, kl), 1);
	}
	assert_int_equal(count, 1000);
	assert_int_equal(sw_dict_size(d), 500);
	assert_int_equal(freed, 500);
	sw_dict_free(d);
	assert_int_equal(freed, 1000);
}

struct scanctx {
	struct sw_dict *d;
	int visits;
};

static void
scan_del(const char *key, size_t klen, void *val, void *arg)
{
	struct scanctx *c = arg;

	(void)val;
	c->visits++;
	assert_int_equal(sw_dict_del(c->d, key, klen), 1);
}

static void
test_scan(void **state)
{
	struct scanctx c = {0};
	size_t cursor = 0;
	char key[16];
	int i, n, calls = 0;

	(void)state;
	assert_non_null(c.d = sw_dict_new(NULL));
	for (i = 0; i < 300; i++) {
		n = snprintf(key, sizeof(key), "s%d", i);
		assert_int_equal(sw_dict_set(c.d, key, (size_t)n, NULL), 1);
	}
	/* bounded steps that together cover the table once, deleting as they go */
	do {
		cursor = sw_dict_scan(c.d, cursor, 4, scan_del, &c);
		calls++;
	} while (cursor != 0);
	assert_true(calls > 1);
	assert_int_equal(c.visits, 300);
	assert_int_equal(sw_dict_size(c.d), 0);
	sw_dict_free(c.d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_binary_keys),
		cmocka_unit_test(test_grow_shrink),
		cmocka_unit_test(test_iterate_delete),
		cmocka_unit_test(test_scan),
	};

	return cmocka_run_group_tests_name("dict", tests, NULL, NULL);
}
