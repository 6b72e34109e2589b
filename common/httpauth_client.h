/*
 * httpauth_client: signed requests (crypto.md) to one service, in order.
 *
 * The one idea: a service accepts a key's nonces strictly one after the
 * other, and two requests in flight on two connections may arrive in either
 * order, so a key talks to one service through one queue with one request
 * in flight.  The next nonce is fetched (GET /security/nonces/{pk}) when
 * unknown, taken from a 401's "next_nonce" once per request, advanced on
 * 2xx, and forgotten after anything else (the service may or may not have
 * used it).
 */
#ifndef SW_HTTPAUTH_CLIENT_H
#define SW_HTTPAUTH_CLIENT_H

#include <stddef.h>

#include "crypto.h"
#include "http.h"

struct sw_authclient;
struct sw_authreq;

/* base: "http://host:port" of the service (copied).  kp must outlive it. */
struct sw_authclient *sw_authclient_new(struct sw_http_client *hc, const struct sw_keypair *kp,
    const char *base, const char *svc);
/*
 * Drop every queued request without callbacks.  A request in flight ends
 * quietly when its answer (or the HTTP client's free) comes.  NULL-safe.
 */
void sw_authclient_free(struct sw_authclient *ac);

/*
 * Queue METHOD base+path with body (copied; may be NULL).  cb (may be NULL)
 * runs once from the loop with the answer (status 0: none within
 * timeout_ms); it must not free the client.  Returns a handle valid until cb runs, for
 * sw_authreq_cancel(); NULL on a bad argument or out of memory.
 */
struct sw_authreq *sw_authclient_request(struct sw_authclient *ac, const char *method,
    const char *path, const void *body, size_t len, int timeout_ms, sw_http_client_cb *cb,
    void *arg);
/* Forget the callback; the request itself still goes out. NULL-safe. */
void sw_authreq_cancel(struct sw_authreq *r);
/* Requests queued or in flight. */
size_t sw_authclient_pending(const struct sw_authclient *ac);
const char *sw_authclient_base(const struct sw_authclient *ac);

#endif
