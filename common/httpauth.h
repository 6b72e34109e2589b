/*
 * httpauth: signed HTTP requests (crypto.md).  Headers SW-Public, SW-Nonce,
 * SW-Sig; the signature covers METHOD " " PATH_AND_QUERY "\n" NONCE "\n" BODY.
 *
 * Server side: sw_httpauth_check() parses and verifies the headers, then
 * takes the nonce atomically from the store (key "<prefix>nonce:<pk>"), and
 * calls back with the verdict.  It also serves GET /security/nonces/{pk}.
 * Client side: sw_httpauth_sign() makes the three headers.
 */
#ifndef SW_HTTPAUTH_H
#define SW_HTTPAUTH_H

#include <stdint.h>
#include <stddef.h>

#include "crypto.h"

struct sw_store;
struct sw_http_req;
struct sw_http_server;

/*
 * Called once.  On success ok=1 and pk is the caller.  On failure the
 * request has already been answered (401, with next_nonce for a wrong nonce,
 * or 503 when the store is down) and the handler must not touch req again.
 */
typedef void sw_httpauth_cb(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN],
    void *arg);

/* prefix: the service's store key prefix ("dmsgd:"). */
void sw_httpauth_check(struct sw_store *st, const char *prefix, struct sw_http_req *req,
    sw_httpauth_cb *cb, void *arg);

/* Register GET /security/nonces/{pk} on srv. */
int sw_httpauth_routes(struct sw_http_server *srv, struct sw_store *st, const char *prefix);

struct sw_httpauth_hdrs {
	char pk[SW_PK_HEX];
	char nonce[24];
	char sig[SW_SIG_HEX];
};

/* The message is built from exactly these bytes. */
void sw_httpauth_sign(struct sw_httpauth_hdrs *out, const struct sw_keypair *kp,
    const char *method, const char *path_and_query, unsigned long long nonce,
    const void *body, size_t len);

#endif
