/*
 * udp: the one way a daemon opens a UDP socket for the event loop:
 * non-blocking (reads are batched from libevent, a send that would block is
 * dropped, never waited for), close-on-exec, bound to a numeric address.
 */
#ifndef SW_UDP_H
#define SW_UDP_H

#include <stddef.h>
#include <stdint.h>
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

/*
 * What a daemon's read event does: read up to SW_UDP_READ_BATCH datagrams
 * (so one busy UDP port cannot starve the loop's other events) into buf,
 * handing each to cb with its real length (MSG_TRUNC: a datagram larger than
 * cap shows as n > cap, so the caller counts it as oversize) and its sender.
 * A read error other than "nothing more" is logged at warn under svc.
 */
#define SW_UDP_READ_BATCH 64
typedef void sw_udp_dgram_cb(const uint8_t *buf, size_t n, const struct sockaddr_storage *from,
    socklen_t fromlen, void *arg);
void sw_udp_read_batch(int fd, const char *svc, uint8_t *buf, size_t cap, sw_udp_dgram_cb *cb,
    void *arg);

#endif
