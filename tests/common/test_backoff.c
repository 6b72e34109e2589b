/* test_backoff: doubling from min, capped at max, reset on success; the start window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"
#include "clock.h"

static void
test_doubles_to_cap(void **state)
{
	struct sw_backoff b;
	const long long want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};

	(void)state;
	sw_backoff_init(&b, 100, 5000);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(sw_backoff_next(&b), want[i]);
	sw_backoff_reset(&b);
	assert_int_equal(sw_backoff_peek(&b), 100);
	assert_int_equal(sw_backoff_next(&b), 100);
}

static void
test_odd_bounds(void **state)
{
	struct sw_backoff b;

	(void)state;
	/* max below min: the delay is min, always. */
	sw_backoff_init(&b, 300, 10);
	assert_int_equal(sw_backoff_next(&b), 300);
	assert_int_equal(sw_backoff_next(&b), 300);
	/* no overflow near the top of the range */
	sw_backoff_init(&b, 1, 0x7fffffffffffffffLL);
	for (int i = 0; i < 100; i++)
		assert_true(sw_backoff_next(&b) > 0);
	/* min 0 counts as 1 ms: a retry is never immediate in a loop */
	sw_backoff_init(&b, 0, 8);
	assert_int_equal(sw_backoff_next(&b), 1);
	assert_int_equal(sw_backoff_next(&b), 2);
}

static void
test_start_window(void **state)
{
	struct sw_backoff b;
	long long now = sw_mono_ms();

	(void)state;
	/* Born just now, never up: the quick start retry, and no doubling meanwhile. */
	sw_backoff_init(&b, 1000, 30000);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sw_backoff_next_start(&b, now), SW_START_RETRY_MS);
	assert_int_equal(sw_backoff_peek(&b), 1000);
	/* Past the window: the plain doubling. */
	assert_int_equal(sw_backoff_next_start(&b, now - SW_START_WINDOW_MS - 1), 1000);
	assert_int_equal(sw_backoff_next_start(&b, now - SW_START_WINDOW_MS - 1), 2000);
	/* A backoff already quicker than the start retry keeps its own pace. */
	sw_backoff_init(&b, 20, 1000);
	assert_int_equal(sw_backoff_next_start(&b, now), 20);
	assert_int_equal(sw_backoff_next_start(&b, now), 40);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubles_to_cap),
		cmocka_unit_test(test_odd_bounds),
		cmocka_unit_test(test_start_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
