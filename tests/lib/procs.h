/*
 * procs: daemons from $SW_BUILD/bin (default build) run by a C test, on
 * free loopback ports, as children that die with the test (Linux).
 *
 * A start returns once the daemon accepts connections on its port, or -1
 * at once if it exits first (at most 10 s either way).  Stopping is SIGKILL,
 * abrupt as a crash would be, so a test can also use it to take a peer away.
 */
#ifndef SW_TEST_PROCS_H
#define SW_TEST_PROCS_H

#include <sys/types.h>

#include "crypto.h"

struct sw_test_proc {
	pid_t pid;                 /* 0 when not running */
	int port;                  /* the main listener */
	int health_port;           /* dmsg-server's --health-listen; 0 otherwise */
	char url[64];              /* dmsg-discovery: "http://127.0.0.1:port" */
	struct sw_keypair kp;      /* dmsg-server: set by the caller, kept over restarts */
};

/* "$SW_BUILD/bin", or "build/bin" without SW_BUILD. */
const char *sw_test_bindir(void);

/*
 * Fork and exec argv[0] with stdin and stdout on /dev/null (stderr stays:
 * the daemon's complaints land in the test log); the child's pid or -1.
 */
pid_t sw_test_spawn(char *const argv[]);

/* dmsg-discovery on the embedded store, log level warn; p->url is its URL. */
int sw_test_dmsg_discovery_start(struct sw_test_proc *p);

/* dmsg-server with key p->kp registering at discovery, log level warn. */
int sw_test_dmsg_server_start(struct sw_test_proc *p, const char *discovery);

/* SIGKILL and reap.  Safe if not running. */
void sw_test_proc_kill(struct sw_test_proc *p);

/*
 * What every test over a real relay starts with: SIGPIPE ignored, libsodium
 * ready, logs at warn, a fresh event base, dmsg-discovery and n dmsg-servers
 * with fresh keys registered there.  0, or -1 (whatever started is left for
 * sw_test_relay_stop).
 */
struct event_base;
int sw_test_relay_start(struct event_base **base, struct sw_test_proc *disc,
    struct sw_test_proc *srv, int n);
/* Kill the servers and discovery, free the base. */
void sw_test_relay_stop(struct event_base *base, struct sw_test_proc *disc,
    struct sw_test_proc *srv, int n);

#endif
