/* clock: time helpers shared by every module.  See clock.h. */
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"

long long
sw_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
sw_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sw_ms_to_tv(long long ms, struct timeval *tv)
{
	if (ms < 0)
		ms = 0;
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

int
sw_timer_in(struct event *ev, long long ms)
{
	struct timeval tv;

	sw_ms_to_tv(ms, &tv);
	return evtimer_add(ev, &tv);
}
