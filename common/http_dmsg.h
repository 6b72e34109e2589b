/*
 * http_dmsg: HTTP over dmsg ("dmsgfirst", services.md), the second carrier
 * of the one HTTP layer in http.c / http_client.c.
 *
 * The one idea: the HTTP code stays the same on both ends.  Server: each
 * stream accepted on dmsg port 80 is adapted to a bufferevent (cxo_dmsg)
 * and adopted by the service's own sw_http_server, its peer the stream's
 * remote PK, so routes, limits, deadlines and httpauth are the ones TCP
 * gets.  Client: evhttp only speaks TCP, so each dmsg try connects evhttp
 * to a private loopback listener from its own address 127.x.y.z; the
 * connection accepted from exactly that socket's address and port is
 * spliced to the try's dmsg stream.
 *
 *   server: dmsg (pk,80) stream -> bufferevent -> sw_http_server_adopt_as
 *   client: evhttp -> 127.x.y.z:port => 127.0.0.1:private <-> splice <-> stream
 */
#ifndef SW_HTTP_DMSG_H
#define SW_HTTP_DMSG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct dmsg_client;
struct sw_http_server;
struct sw_metrics;

#define SW_HTTP_DMSG_PORT       80
#define SW_HTTP_DMSG_DIAL_MS    2000   /* no stream by then: TCP */
#define SW_HTTP_DMSG_FAIL_S     60     /* a failed dial sends that PK's requests to TCP this long */
#define SW_HTTP_DMSG_UNLISTED_MS 1000  /* ... unless the PK is not on dmsg yet: this, doubling */
#define SW_HTTP_DMSG_MAX_CONNS  1024   /* dmsg streams served at once, per server */
#define SW_HTTP_DMSG_HIGH       (256u * 1024) /* bytes queued one way before reading pauses */

/*
 * Server: serve srv's routes on dmsg port on dc (port 0: 80).  dc must
 * outlive it; free it before dc.  NULL logged.
 */
struct sw_http_dmsg_server;
struct sw_http_dmsg_server *sw_http_dmsg_serve(struct event_base *base,
    struct sw_http_server *srv, struct dmsg_client *dc, uint16_t port, const char *svc);
void sw_http_dmsg_server_free(struct sw_http_dmsg_server *s);
/*
 * For a service that has no dmsg client of its own: one with kp (which must
 * outlive it), registered at discovery (an http:// URL), serving srv on
 * port 80; freed with it.  NULL logged.
 */
struct sw_http_dmsg_server *sw_http_dmsg_serve_as(struct event_base *base,
    struct sw_http_server *srv, const struct sw_keypair *kp, const char *discovery,
    const char *svc);
/* Streams being served now. */
size_t sw_http_dmsg_server_conns(const struct sw_http_dmsg_server *s);

/*
 * Client carrier: one per dmsg client, shared by every sw_http_client that
 * is given it (sw_http_client_set_dmsg).  A request to a URL whose
 * "host:port" was mapped to a PK goes to (pk, 80) first.  metrics (may be
 * NULL) gets sw_http_client_requests_total{carrier}.  Freeing it detaches
 * every client (their dmsg tries in flight fail and go to TCP); free it
 * before dc.
 */
struct sw_http_dmsg;
struct sw_http_dmsg *sw_http_dmsg_new(struct event_base *base, struct dmsg_client *dc,
    struct sw_metrics *metrics, const char *svc);
void sw_http_dmsg_free(struct sw_http_dmsg *d);
/* url: "http://host:port…"; its authority is what is matched.  -1 on a bad URL or full table. */
int sw_http_dmsg_map(struct sw_http_dmsg *d, const char *url, const uint8_t pk[SW_PK_LEN]);
/*
 * Requests to url's authority whose target starts with url's path stay on
 * TCP (e.g. address-resolver's /bind/stcpr: the server must see the
 * caller's IP).  Map the authority first.  -1 on a bad URL or full table.
 */
int sw_http_dmsg_tcp_path(struct sw_http_dmsg *d, const char *url);
/*
 * How long url's authority still goes to TCP because of a failure
 * remembered (ms; 0: dmsg is tried).  A dial that found no entry for the
 * PK (the service not on dmsg yet) is remembered SW_HTTP_DMSG_UNLISTED_MS,
 * doubling with each one up to SW_HTTP_DMSG_FAIL_S (a stream resets it);
 * any other failure SW_HTTP_DMSG_FAIL_S.
 */
long long sw_http_dmsg_tcp_left_ms(const struct sw_http_dmsg *d, const char *url);
/* Requests that ended (answer or not) per carrier, since start. */
unsigned long sw_http_dmsg_count(const struct sw_http_dmsg *d, int dmsg);
/* Connections to the private listener that were no try's (closed at once), since start. */
unsigned long sw_http_dmsg_strays(const struct sw_http_dmsg *d);

/*
 * For http_client.c.  A try: dial (pk, 80) for host:port and accept the
 * connection made from laddr (filled in) to 127.0.0.1:*lport (the carrier's
 * listener); splice them when both are there.  done(arg, 0) runs (from the
 * loop) if no stream opened within SW_HTTP_DMSG_DIAL_MS; done(arg, 1) once
 * spliced.  NULL when this authority goes over TCP (no mapping, a TCP path,
 * a failure remembered).
 */
struct sw_http_dmsg_try;
typedef void sw_http_dmsg_done(void *arg, int ok);
struct sw_http_dmsg_try *sw_http_dmsg_try_start(struct sw_http_dmsg *d, const char *host,
    int port, const char *target, sw_http_dmsg_done *done, void *arg, char *laddr, size_t laddrlen, int *lport);
/*
 * fd is the try's client socket, bound to laddr (connecting or connected):
 * only a connection from its address and port is accepted as the try's.
 * Until then none is.  -1 (logged) if fd is not bound to laddr.
 */
int sw_http_dmsg_try_sock(struct sw_http_dmsg_try *t, int fd);
/* Cancel (no callback); a try already spliced lives on in its splice.  NULL-safe. */
void sw_http_dmsg_try_free(struct sw_http_dmsg_try *t);
/* One request ended; carrier 1 = dmsg. */
void sw_http_dmsg_note(struct sw_http_dmsg *d, int dmsg);
/* The client holding d is gone; http_client.c keeps the list of its users. */
struct sw_http_client;
int sw_http_dmsg_attach(struct sw_http_dmsg *d, struct sw_http_client *c);
void sw_http_dmsg_detach(struct sw_http_dmsg *d, struct sw_http_client *c);
/* http_client.c: d is going away; drop it (and its tries). */
void sw_http_client_dmsg_gone(struct sw_http_client *c);

#endif
