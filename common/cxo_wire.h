/*
 * cxo_wire: CXO messages over any connected libevent bufferevent (TCP for
 * tools and tests, a dmsg stream adapted by a bufferevent pair in the
 * deployment).  A cxo_conn frames messages, numbers them, checks the
 * peer's numbering and every length, does the SYN/ACK handshake and
 * answers PING itself; the publisher and subscriber see only the messages
 * that carry meaning.
 *
 * Lifetime: closed() is called once when the connection dies for any
 * reason other than cxo_conn_free; the owner then calls cxo_conn_free.
 * cxo_conn_free may be called from inside any callback.
 */
#ifndef CXO_WIRE_H
#define CXO_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct bufferevent;

enum cxo_msg {
	CXO_PING = 1,
	CXO_PONG = 2,
	CXO_SYN = 3,
	CXO_ACK = 4,
	CXO_OK = 5,
	CXO_ERR = 6,
	CXO_SUB = 7,
	CXO_UNSUB = 8,
	CXO_ROOT = 11,
	CXO_RQOBJ = 12,
	CXO_OBJ = 13,
};

#define CXO_HDR            13                /* len | seq | rseq | type */
#define CXO_MAX_MSG        (4 * 1024 * 1024) /* the largest len */
#define CXO_FEED_LEN       34                /* feed_pk | feed_port */
#define CXO_HANDSHAKE_S    10
#define CXO_IDLE_S         90                /* nothing read for this long: dead */
#define CXO_PING_S         30                /* subscribers ping this often */
#define CXO_OUT_HIGH       (8 * 1024 * 1024) /* stop reading while this much is unsent */

struct cxo_conn;

struct cxo_conn_cbs {
	/* The handshake completed. */
	void (*ready)(struct cxo_conn *c, void *arg);
	/*
	 * A message after the handshake (PING/PONG are handled here; ERR is
	 * passed on).  Return -1 for a protocol error: the connection closes
	 * (a publisher first sends ERR with reason, when not NULL).
	 */
	int (*msg)(struct cxo_conn *c, uint8_t type, uint32_t seq, uint32_t rseq,
	    const uint8_t *body, size_t len, void *arg);
	void (*closed)(struct cxo_conn *c, const char *reason, void *arg);
};

/*
 * Take over bev (connected or still connecting).  server: answer SYN
 * (publisher); else send SYN at once and ping every ping_s (0: default).
 */
struct cxo_conn *cxo_conn_new(struct bufferevent *bev, int server, const char *svc,
    const struct cxo_conn_cbs *cbs, void *arg);
/* Queue one message; returns its seq, 0 if the connection is closing. */
uint32_t cxo_conn_send(struct cxo_conn *c, uint8_t type, uint32_t rseq, const void *body,
    size_t len);
/*
 * A protocol error found by the owner: send ERR reason (publisher side),
 * then close; closed() follows.
 */
void cxo_conn_fail(struct cxo_conn *c, const char *reason);
/*
 * Free the connection; what is queued is still flushed (at most 5 s) unless
 * the event base goes first.  No callbacks after this.
 */
void cxo_conn_free(struct cxo_conn *c);
/* The same, discarding what is queued (a subscriber going away). */
void cxo_conn_abort(struct cxo_conn *c);
int cxo_conn_ready(const struct cxo_conn *c);
void cxo_conn_set_ping(struct cxo_conn *c, int ping_ms);
size_t cxo_conn_out_len(const struct cxo_conn *c);
/* The bufferevent underneath (tests write raw bytes on it). */
struct bufferevent *cxo_conn_bev(const struct cxo_conn *c);
/* The peer's address for logs ("127.0.0.1:5555", or "?"). */
const char *cxo_conn_peer(const struct cxo_conn *c);

/* A TCP dialer: a bufferevent connecting to "ip:port" (numeric), or NULL. */
struct event_base;
struct bufferevent *cxo_tcp_connect(struct event_base *base, const char *addr);

#endif
