/*
 * rawrpc: bytes sent on a fresh dmsg stream to an frpc server, as a hostile
 * client would (an oversize length, a frame that is not an object), and the
 * error the server answered before closing.  Shared by the frpc and
 * setup-node tests.
 */
#ifndef SW_TEST_RAWRPC_H
#define SW_TEST_RAWRPC_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct dmsg_client;

/*
 * Dial (pk, port) from c, send len bytes, run base until the server closes
 * the stream (at most timeout_ms).  err gets the "error" of the answer frame
 * ("" if none).  1 if the stream was closed in time, 0 if not, -1 if the
 * dial could not start.
 */
int sw_test_rawrpc(struct event_base *base, struct dmsg_client *c, const uint8_t pk[SW_PK_LEN],
    uint16_t port, const uint8_t *bytes, size_t len, int timeout_ms, char *err, size_t errsz);

#endif
