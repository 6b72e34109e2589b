/*
 * clock: the few time helpers every event-driven module needs, in one place:
 * monotonic milliseconds for deadlines and intervals, wall-clock
 * milliseconds for what goes on the wire, and arming a libevent timer in
 * milliseconds.
 */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H

struct event;
struct timeval;

long long sw_mono_ms(void);
long long sw_wall_ms(void);
/* ms < 0 counts as 0. */
void sw_ms_to_tv(long long ms, struct timeval *tv);
/*
 * evtimer_add in ms from now (ms < 0: at once); also the period of an
 * EV_PERSIST event.  event_add's result: 0, or -1.
 */
int sw_timer_in(struct event *ev, long long ms);

#endif
