/*
 * backoff: the one doubling retry delay of the project (store reconnects,
 * CXO re-subscribes, visor autoconnect, dmsg re-dials).
 *
 * Each failed try takes sw_backoff_next, which returns the delay to wait now
 * and doubles the next one up to max; success resets it to min.  The state is
 * two numbers, so it lives inside whatever struct retries.
 */
#ifndef SW_BACKOFF_H
#define SW_BACKOFF_H

struct sw_backoff {
	long long min_ms, max_ms;
	long long next_ms;
};

void sw_backoff_init(struct sw_backoff *b, long long min_ms, long long max_ms);
/* The delay for this try; the one after is twice as long, at most max_ms. */
long long sw_backoff_next(struct sw_backoff *b);
/* Peek at the delay the next sw_backoff_next returns. */
long long sw_backoff_peek(const struct sw_backoff *b);
void sw_backoff_reset(struct sw_backoff *b);

/*
 * A deployment started all at once (compose starts every container in
 * parallel, with no health gates) has its services come up in any order
 * over a few seconds.  A client that has not succeeded once since born_ms
 * (sw_mono_ms) retries every SW_START_RETRY_MS during SW_START_WINDOW_MS,
 * so it is up within that of its dependency instead of one doubled step
 * later; after the window, or with no start, it is sw_backoff_next.
 */
#define SW_START_WINDOW_MS 10000
#define SW_START_RETRY_MS  100
long long sw_backoff_next_start(struct sw_backoff *b, long long born_ms);

#endif
