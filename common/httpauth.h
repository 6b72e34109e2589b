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
 * Called once, never inside sw_httpauth_check() on success (the nonce is
 * taken from the store first), possibly inside it on failure.  On success
 * ok=1, req is the request (not yet answered) and pk is the caller.  On
 * failure the request has already been answered (401, with next_nonce for a
 * wrong nonce, or 503 when the store is down), req is NULL (it is gone) and
 * pk is the null PK: the callback only frees what arg holds.
 */
typedef void sw_httpauth_cb(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN],
    void *arg);

/*
 * prefix: the service's store key prefix ("dmsgd:"); the nonce lives at
 * "<prefix>nonce:<pk hex>".  SW-Public must be 64 lowercase hex chars,
 * SW-Nonce plain decimal below 2^53 without sign or leading zeros, SW-Sig 128
 * hex chars.  The signature is checked before the store is touched, so a
 * refused request changes nothing.
 */
void sw_httpauth_check(struct sw_store *st, const char *prefix, struct sw_http_req *req,
    sw_httpauth_cb *cb, void *arg);

/*
 * What GET /security/nonces/{pk} needs: the service's store and key prefix.
 * Owned by the caller (embed it in the service's struct); it and prefix must
 * outlive the server, which keeps a pointer to it.
 */
struct sw_httpauth {
	struct sw_store *st;
	const char *prefix;
};

/* Register GET /security/nonces/{pk} on srv.  -1 if the route cannot be added. */
int sw_httpauth_routes(struct sw_http_server *srv, struct sw_httpauth *auth);

#define SW_HTTPAUTH_MAX_NONCE 9007199254740991ULL /* 2^53 - 1: nonces travel as JSON numbers */

struct sw_httpauth_hdrs {
	char pk[SW_PK_HEX];
	char nonce[24];
	char sig[SW_SIG_HEX];
};

/*
 * Fill the three header values for a request.  The message is built from
 * exactly these bytes (method as given, so pass it upper case).  -1 (out
 * zeroed) when nonce is past SW_HTTPAUTH_MAX_NONCE or memory runs out.
 */
int sw_httpauth_sign(struct sw_httpauth_hdrs *out, const struct sw_keypair *kp,
    const char *method, const char *path_and_query, unsigned long long nonce,
    const void *body, size_t len);

#endif
