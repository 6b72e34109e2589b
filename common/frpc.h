/*
 * frpc: framed JSON RPC over dmsg streams (routing.md, "Route setup"),
 * the one framing of setup-node (dmsg port 36), the visor's routing RPCs
 * (port 136) and transport-setup's visor RPCs (port 47):
 *
 *     len u32 BE | JSON object          1 <= len <= FRPC_MAX_FRAME
 *
 * One request per stream.  The asker dials (pk, port) and sends
 * {"method":M,"params":P}; the server answers {"result":R} or
 * {"error":"<reason>"} and then closes the stream (the asker need not
 * half-close).  A frame that is too long or not a JSON object is answered
 * with an error when it could be read, and the stream is closed.
 *
 * Both sides run on the dmsg client's event loop; every wait has a
 * deadline; callbacks come from the loop, never from inside a call the
 * caller made into this module.
 */
#ifndef FRPC_H
#define FRPC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "log.h"

struct dmsg_client;
struct evbuffer;
struct event_base;

#define FRPC_MAX_FRAME   (1u << 20)
#define FRPC_READ_MS     10000 /* server: the whole request frame, from accept */
#define FRPC_LINGER_MS   5000  /* server: after the answer, wait this long for the asker to close */
#define FRPC_MAX_CONNS   1024  /* server: streams at once (the silent longest makes room) */

/* ---------- frames (also what the fuzz target and the tests drive) ---------- */

/* Append len | JSON of v to out. 0, or -1 (out of memory, or over FRPC_MAX_FRAME). */
int frpc_frame_put(struct evbuffer *out, const cJSON *v);

enum frpc_frame {
	FRPC_FRAME_MORE = 0,   /* not a whole frame yet */
	FRPC_FRAME_OK,         /* *out is a JSON object (the caller's), *used bytes taken */
	FRPC_FRAME_TOO_LONG,   /* len is 0 or past FRPC_MAX_FRAME: close */
	FRPC_FRAME_BAD,        /* a whole frame that is not one JSON object: answer, close */
};
/* Look for one frame at the start of buf. */
enum frpc_frame frpc_frame_get(const uint8_t *buf, size_t len, cJSON **out, size_t *used);

/* ---------- the asking side ---------- */

enum frpc_status {
	FRPC_OK = 0,          /* result is the answer's "result" */
	FRPC_REMOTE,          /* the server answered {"error":…}; err is it */
	FRPC_UNREACHABLE,     /* no stream opened: dial failed or rejected (err says why) */
	FRPC_CLOSED,          /* the stream ended before a whole answer */
	FRPC_TIMEOUT,         /* no whole answer within the deadline */
	FRPC_BAD_ANSWER,      /* the answer was not a frame with "result" or a string "error" */
};
const char *frpc_status_str(enum frpc_status s);

/*
 * Runs once, from the loop.  result is valid during the call only (NULL
 * unless FRPC_OK); err is a short reason for every other status (the
 * server's own text for FRPC_REMOTE), valid during the call.
 */
typedef void frpc_done_cb(enum frpc_status status, const cJSON *result, const char *err,
    void *arg);

struct frpc_call;
/*
 * Call method(params) on (pk, port); params may be NULL ({}), and is not
 * taken; base is c's loop.  timeout_ms bounds dial and answer together.  Returns a handle
 * valid until cb runs, or NULL (no callback) on a bad argument or out of
 * memory.  svc names the caller in logs.
 */
struct frpc_call *frpc_call(struct event_base *base, struct dmsg_client *c,
    const uint8_t pk[SW_PK_LEN], uint16_t port,
    const char *method, const cJSON *params, int timeout_ms, frpc_done_cb *cb, void *arg,
    const char *svc);
/*
 * The same call in two steps, so that the stream's dial (discovery lookup,
 * relay, KK) overlaps other work: frpc_call_open dials (pk, port) now and
 * sends nothing on the stream; frpc_call_ask gives it the request, sent as
 * soon as the stream is open (at once if it is), and starts the answer's
 * deadline.  A stream opened ahead that ended before the ask (the dial
 * failed, timeout_ms of frpc_call_open passed, the server closed it) is
 * dialled again by the ask: the ask fails only as frpc_call would.  One
 * request per stream still: a call is asked once.  frpc_call_cancel ends
 * a call at either step.  frpc_call_ask: 0, or -1 (asked before, bad
 * argument, out of memory: then only frpc_call_cancel is left).
 */
struct frpc_call *frpc_call_open(struct event_base *base, struct dmsg_client *c,
    const uint8_t pk[SW_PK_LEN], uint16_t port, int timeout_ms, const char *svc);
int frpc_call_ask(struct frpc_call *call, const char *method, const cJSON *params,
    int timeout_ms, frpc_done_cb *cb, void *arg);
/* A call not yet asked: 1 its stream is open, 0 being dialled, -1 gone (the ask dials again). */
int frpc_call_ahead_state(const struct frpc_call *call);
/* Cancel: the stream is reset and cb does not run. NULL-safe; not from cb itself. */
void frpc_call_cancel(struct frpc_call *call);

/*
 * Streams opened ahead to the peers a caller talks to again and again
 * (setup-node to the visors it sets routes through): frpc_pool_fill opens
 * up to per_peer (at most 4) calls to pk, not asked; frpc_pool_take hands
 * one out (an open one first, else one being dialled, else a fresh
 * frpc_call_open), to be asked or cancelled like any.  A stream not taken
 * within keep_ms is closed and not opened again until the next fill; at
 * most max_peers peers are kept (least recently used out).  Each stream
 * still carries one request.  NULL on a bad argument or out of memory.
 */
struct frpc_pool;
struct frpc_pool *frpc_pool_new(struct event_base *base, struct dmsg_client *c, uint16_t port,
    int per_peer, int max_peers, int keep_ms, const char *svc);
void frpc_pool_free(struct frpc_pool *p);
struct frpc_call *frpc_pool_take(struct frpc_pool *p, const uint8_t pk[SW_PK_LEN]);
void frpc_pool_fill(struct frpc_pool *p, const uint8_t pk[SW_PK_LEN]);

/* ---------- the answering side ---------- */

struct frpc_server;
struct frpc_req;

/* 1 if pk may use this server; a stream from anyone else is closed unread. */
typedef int frpc_allow_cb(const uint8_t pk[SW_PK_LEN], void *arg);
/*
 * One request.  The handler (or anything later, from the loop) answers it
 * exactly once with frpc_reply or frpc_reply_error; until then req stays
 * valid, even if the asker went away or the server was freed (the answer
 * is then dropped).  method and params are valid during the call only.
 */
typedef void frpc_handler(struct frpc_req *req, const char *method, const cJSON *params,
    void *arg);

/* Listen on port of c (base is c's loop). allow NULL: anyone. NULL if the port is taken. */
struct frpc_server *frpc_server_new(struct event_base *base, struct dmsg_client *c, uint16_t port,
    frpc_allow_cb *allow,
    frpc_handler *h, void *arg, const char *svc);
/* Stop listening and close every stream; requests not yet answered stay valid. NULL-safe. */
void frpc_server_free(struct frpc_server *s);
/* Streams open now (reading a request, waiting for its answer, or lingering). */
size_t frpc_server_conns(const struct frpc_server *s);
/*
 * At most max streams at once (default FRPC_MAX_CONNS).  A new stream past
 * it closes the one that has sent nothing for the longest (a stream opened
 * ahead, frpc_pool), or is refused when every stream has spoken.
 */
void frpc_server_set_max_conns(struct frpc_server *s, size_t max);
/* Streams accepted since the server was made (refused ones not counted). */
unsigned long long frpc_server_accepted(const struct frpc_server *s);

/* The asker's key. */
const uint8_t *frpc_req_pk(const struct frpc_req *req);
/* 1 once the asker's stream is gone (the answer would be dropped). */
int frpc_req_gone(const struct frpc_req *req);
/* Answer {"result":result}; takes result (NULL: {}). Frees req. */
void frpc_reply(struct frpc_req *req, cJSON *result);
/* Answer {"error":"…"}. Frees req. */
void frpc_reply_error(struct frpc_req *req, const char *fmt, ...) SW_PRINTF(2, 3);

#endif
