/* backoff: a doubling delay with a cap.  See backoff.h. */
#include "backoff.h"
#include "clock.h"

void
sw_backoff_init(struct sw_backoff *b, long long min_ms, long long max_ms)
{
	b->min_ms = min_ms > 0 ? min_ms : 1;
	b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
	b->next_ms = b->min_ms;
}

long long
sw_backoff_next(struct sw_backoff *b)
{
	long long d = b->next_ms;

	b->next_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
	return d;
}

long long
sw_backoff_peek(const struct sw_backoff *b)
{
	return b->next_ms;
}

long long
sw_backoff_next_start(struct sw_backoff *b, long long born_ms)
{
	long long since = sw_mono_ms() - born_ms;

	if (since >= 0 && since < SW_START_WINDOW_MS && SW_START_RETRY_MS < b->next_ms)
		return SW_START_RETRY_MS;
	return sw_backoff_next(b);
}

void
sw_backoff_reset(struct sw_backoff *b)
{
	b->next_ms = b->min_ms;
}
