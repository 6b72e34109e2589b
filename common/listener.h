/*
 * listener: accepting TCP connections without letting a crowd or a
 * descriptor shortage take the process down.
 *
 * Every server socket of the project (HTTP, CXO, stcpr, dmsg) accepts through
 * this one module, which gives each the same three guarantees:
 *  - out of descriptors (EMFILE/ENFILE), accept pauses instead of spinning:
 *    one spare descriptor held in reserve is given up to accept and close the
 *    oldest waiting connection (the peer sees a clean close, not a backlog it
 *    waits in forever), then accepting resumes when a connection of ours
 *    closes or after a short pause.  One log line when an episode starts, one
 *    when it ends;
 *  - at most max_conns accepted connections are open at once: past it accept
 *    pauses until one is released;
 *  - at most max_per_peer connections from one IP address: one more is closed
 *    at once, or handed over marked over_cap so the protocol can say why (the
 *    HTTP server answers 503).
 *
 * Each accepted connection comes with a peer handle; the owner gives it back
 * with sw_listener_release when it closes the descriptor.  A listener freed
 * while connections are out stops accepting at once and goes away with the
 * last release, so owners may free in either order.
 */
#ifndef SW_LISTENER_H
#define SW_LISTENER_H

#include <stddef.h>
#include <event2/util.h>

struct event_base;
struct sockaddr;
struct sw_listener;
struct sw_listener_peer;

#define SW_LISTENER_MAX_CONNS 4096
#define SW_LISTENER_MAX_SOCKS 4

struct sw_listener_opts {
	size_t max_conns;    /* 0: SW_LISTENER_MAX_CONNS */
	size_t max_per_peer; /* 0: no cap */
	int keep_over_cap;   /* 1: over-cap connections reach the callback, flagged */
};

/*
 * fd is non-blocking and close-on-exec and now belongs to the callback, as
 * does peer (give it back with sw_listener_release after closing fd).
 */
typedef void sw_listener_cb(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    struct sw_listener_peer *peer, int over_cap, void *arg);

/* opts may be NULL for the defaults.  Nothing is bound yet. */
struct sw_listener *sw_listener_new(struct event_base *base, const char *svc,
    const struct sw_listener_opts *opts, sw_listener_cb *cb, void *arg);
void sw_listener_free(struct sw_listener *l);
/* "host:port" or "[v6]:port", port 0 for any free port; "" host is 0.0.0.0. -1 logged. */
int sw_listener_bind(struct sw_listener *l, const char *addr);
/* The port of the first bound socket, -1 if none. */
int sw_listener_port(const struct sw_listener *l);
/* The address of the first bound socket; -1 if none. */
struct sockaddr_storage;
int sw_listener_sockname(const struct sw_listener *l, struct sockaddr_storage *ss);
void sw_listener_release(struct sw_listener *l, struct sw_listener_peer *peer);
void sw_listener_set_max_conns(struct sw_listener *l, size_t max);
/* Accepted connections not released yet. */
size_t sw_listener_open(const struct sw_listener *l);
/* 1 while accepting is paused (limit reached or out of descriptors). */
int sw_listener_paused(const struct sw_listener *l);
/* The peer's IP address as text. */
const char *sw_listener_peer_ip(const struct sw_listener_peer *peer);

#endif
