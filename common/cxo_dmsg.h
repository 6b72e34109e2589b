/*
 * cxo_dmsg: CXO over dmsg streams (cxo.md: "in the deployment it is a dmsg
 * stream to the publisher's feed port").  Each stream is adapted to a
 * libevent bufferevent, so cxo_conn, cxo_pub_attach and cxo_sub's dial
 * function work unchanged: the caller gets one end of a bufferevent pair
 * (behind a pass-through filter whose free hook tells us when the caller
 * has let go), and the adapter moves bytes between the other end and the
 * stream with flow control both ways; EOF, close and reset cross in both
 * directions.
 *
 * A struct cxo_dmsg belongs to one dmsg client and owns every adapter made
 * through it; free it before the client (dmsg_client_free frees streams
 * without telling anyone).
 */
#ifndef CXO_DMSG_H
#define CXO_DMSG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct bufferevent;
struct dmsg_client;
struct dmsg_stream;
struct cxo_pub;
struct cxo_dmsg;

/* Stop reading the stream while this much waits for the bufferevent side. */
#define CXO_DMSG_IN_HIGH   (256u * 1024)
/* Stop reading the bufferevent side while the stream has this much queued. */
#define CXO_DMSG_OUT_HIGH  (256u * 1024)
#define CXO_DMSG_DIAL_MS   20000

struct cxo_dmsg *cxo_dmsg_new(struct event_base *base, struct dmsg_client *c, const char *svc);
/*
 * Free every stream (the bufferevents handed out see an error, and their
 * owners free them: this never does); their adapters go when those
 * bufferevents are freed.  NULL-safe.
 */
void cxo_dmsg_free(struct cxo_dmsg *d);
/* Adapters alive (for tests and metrics). */
size_t cxo_dmsg_links(const struct cxo_dmsg *d);

/* Take over an open stream; the returned bufferevent carries its bytes.  NULL on failure. */
struct bufferevent *cxo_dmsg_wrap(struct cxo_dmsg *d, struct dmsg_stream *st);

/*
 * Dial (pk, port): a bufferevent at once, whose bytes flow once the dial
 * succeeds; a failed dial is an error event on it.  A cxo_mgr_dial_fn: arg
 * is the struct cxo_dmsg.
 */
struct bufferevent *cxo_dmsg_dial(struct event_base *base, const uint8_t *pk, uint16_t port,
    void *arg);

/* A cxo_dial_fn (cxo_sub_opts.dial): arg is one of these, kept by the caller. */
struct cxo_dmsg_target {
	struct cxo_dmsg *d;
	uint8_t pk[SW_PK_LEN];
	uint16_t port;
};
struct bufferevent *cxo_dmsg_sub_dial(struct event_base *base, void *arg);

/* Serve p on a dmsg port: each accepted stream is attached to p.  -1 logged. */
int cxo_dmsg_serve(struct cxo_dmsg *d, struct cxo_pub *p, uint16_t port);

/*
 * A publisher's whole dmsg side in one call (the discovery services use
 * it): a dmsg client with the feed key registered at discovery_url, and
 * p served on port.  kp must outlive it.  NULL logged.
 */
struct cxo_dmsg_pub;
struct cxo_dmsg_pub *cxo_dmsg_pub_new(struct event_base *base, const struct sw_keypair *kp,
    const char *discovery_url, struct cxo_pub *p, uint16_t port, const char *svc);
/* Before the cxo_pub.  NULL-safe. */
void cxo_dmsg_pub_free(struct cxo_dmsg_pub *dp);
struct dmsg_client *cxo_dmsg_pub_client(const struct cxo_dmsg_pub *dp);

#endif
