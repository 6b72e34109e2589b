/*
 * test_dmsg_ended: the table of recently ended streams: an entry answers
 * for its TTL and not after, keys are (owner, id), the table forgets the
 * oldest when full and gives its memory back when every entry expired.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dmsg_ended.h"

static void
test_ttl_and_keys(void **state)
{
	struct dmsg_ended *e = dmsg_ended_new(0, 10000);

	(void)state;
	assert_non_null(e);
	assert_false(dmsg_ended_has(e, 1, 3, 0));
	dmsg_ended_add(e, 1, 3, 1000);
	assert_true(dmsg_ended_has(e, 1, 3, 1000));
	assert_true(dmsg_ended_has(e, 1, 3, 11000));
	assert_false(dmsg_ended_has(e, 1, 3, 11001));
	assert_false(dmsg_ended_has(e, 2, 3, 1000)); /* another session's id 3 */
	assert_false(dmsg_ended_has(e, 1, 5, 1000));
	/* Ended again later (an id reused after an OPEN): the later time counts. */
	dmsg_ended_add(e, 1, 3, 9000);
	assert_true(dmsg_ended_has(e, 1, 3, 15000));
	dmsg_ended_free(e);
}

static void
test_bounded(void **state)
{
	struct dmsg_ended *e = dmsg_ended_new(100, 10000);

	(void)state;
	assert_non_null(e);
	for (uint32_t i = 0; i < 1000; i++)
		dmsg_ended_add(e, 7, i, 5000 + i / 100);
	assert_int_equal(dmsg_ended_count(e), 100);
	assert_false(dmsg_ended_has(e, 7, 0, 5010));
	assert_false(dmsg_ended_has(e, 7, 899, 5010));
	for (uint32_t i = 900; i < 1000; i++)
		assert_true(dmsg_ended_has(e, 7, i, 5010));
	/* Everything expired: the next add starts from an empty table. */
	dmsg_ended_add(e, 8, 1, 60000);
	assert_int_equal(dmsg_ended_count(e), 1);
	assert_false(dmsg_ended_has(e, 7, 999, 60000));
	assert_true(dmsg_ended_has(e, 8, 1, 60000));
	dmsg_ended_free(e);
	dmsg_ended_free(NULL);
	assert_false(dmsg_ended_has(NULL, 1, 1, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_and_keys),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
