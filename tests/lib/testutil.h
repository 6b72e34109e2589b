/*
 * testutil: helpers shared by the test programs.
 *
 * - sw_test_free_port: a port on 127.0.0.1 free for TCP and UDP right now, below
 *   the ephemeral range (no connect() elsewhere can take it), once per process.
 * - sw_test_redis_*: a private redis-server child (no persistence, loopback
 *   only) on a port of our choosing, started and stopped by the test.
 * - sw_test_run_until*: run an event_base until a condition holds or a
 *   timeout passes, so tests wait for events, never for a fixed time.
 *
 * All waits are bounded; every function returns 0 on success, -1 on failure
 * (with a line on stderr saying why).
 */
#ifndef SW_TESTUTIL_H
#define SW_TESTUTIL_H

#include <sys/types.h>

struct event_base;

/* A free port (bound to 0 and released), or -1. */
int sw_test_free_port(void);

/*
 * 0 once something accepts TCP connections on 127.0.0.1:port, -1 after
 * timeout_ms (0: try once).  Blocks: for use before an event loop runs.
 */
int sw_test_wait_port(int port, int timeout_ms);

struct sw_test_redis {
	pid_t pid;     /* 0 when not running */
	int port;
	char url[64];  /* "redis://127.0.0.1:port" */
};

/*
 * Start redis-server on port (0: a free port; the same port again to
 * restart) and wait until it accepts connections (at most 10 s; fails at
 * once if the child exits).  r->url is then its redis:// URL.  The child
 * dies with the test process (Linux).  SW_TEST_REDIS_SERVER overrides the
 * binary (default "redis-server" from PATH).
 */
int sw_test_redis_start(struct sw_test_redis *r, int port);
/* Stop it (SIGKILL: abrupt, as a crash would be) and reap it.  Safe if not running. */
void sw_test_redis_stop(struct sw_test_redis *r);

/*
 * A bare service instance named name (no listeners, the embedded store) for
 * units that need a struct sw_svc; *sup owns it (sw_supervisor_free).
 * NULL on failure.
 */
struct sw_svc;
struct sw_supervisor;
struct sw_svc *sw_test_svc(struct event_base *base, const char *name,
    struct sw_supervisor **sup);

/* Run base until pred(arg) is true (checked after each loop pass); -1 after timeout_ms. */
int sw_test_run_until_fn(struct event_base *base, int (*pred)(void *), void *arg,
    int timeout_ms);
/* Run base until *flag is non-zero; -1 after timeout_ms. */
int sw_test_run_until(struct event_base *base, const int *flag, int timeout_ms);
/* Run base for ms milliseconds, handling whatever events come. */
void sw_test_run_for(struct event_base *base, int ms);

/*
 * From now on libevent's own warnings and errors (event_warnx: a misuse
 * such as a bufferevent freed twice) are counted, and still printed on
 * stderr; sw_test_libevent_warnings is how many so far.  A test asserting
 * it is 0 fails on them.
 */
void sw_test_libevent_watch(void);
unsigned sw_test_libevent_warnings(void);

#endif
