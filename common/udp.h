/*
 * udp: the one way a daemon opens a UDP socket for the event loop:
 * non-blocking (reads are batched from libevent, a send that would block is
 * dropped, never waited for), close-on-exec, bound to a numeric address.
 */
#ifndef SW_UDP_H
#define SW_UDP_H

#include <sys/socket.h>

/*
 * "ip:port" or "[ip6]:port", numeric only, port 0-65535 (0: any free one)
 * into ss.  Returns the length of the address, or 0 when it does not parse.
 */
socklen_t sw_udp_addr_parse(const char *text, struct sockaddr_storage *ss);

/* A bound socket, or -1 with errno set (nothing left open). */
int sw_udp_bind(const struct sockaddr *sa, socklen_t len);

/*
 * The same from "ip:port" or "[ip6]:port"; *bound (may be NULL) gets the
 * address as bound, with the real port when port 0 was asked for.  -1 with
 * errno (EINVAL for an address that does not parse).
 */
int sw_udp_listen(const char *addr, struct sockaddr_storage *bound);

#endif
