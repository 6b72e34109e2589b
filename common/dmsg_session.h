/*
 * dmsg_session: one dmsg session (dmsg.md) over a libevent bufferevent, for
 * both ends: the client as Noise XK initiator, the server as responder.
 *
 * It does the handshake (u16-framed messages, prologue "dmsg/1", message 3
 * carrying the initiator's Ed25519 PK, checked against the Noise remote
 * static; 5 s deadline), then turns the byte stream into frames and frames
 * into Noise transport messages, and keeps the session alive (PING after
 * 30 s without traffic, close after 90 s with nothing received; PONG
 * answered here).  What a frame means is the caller's business: the server
 * relays, the client runs streams.
 *
 * Backpressure: dmsg_session_outbuf() says how much is queued for the peer;
 * dmsg_session_pause() stops reading from it (the server pauses the source
 * session of a leg whose destination is over its high-water mark), and the
 * drained callback says when the queue fell below the low-water mark.
 */
#ifndef DMSG_SESSION_H
#define DMSG_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct bufferevent;
struct dmsg_session;

struct dmsg_session_cbs {
	/* Handshake done; the peer's PK is known. */
	void (*ready)(struct dmsg_session *s, void *arg);
	/*
	 * One decrypted frame other than PING/PONG.  payload is valid only
	 * during the call.  The type is one of enum dmsg_type; unknown types
	 * close the session before they get here.
	 */
	void (*frame)(struct dmsg_session *s, uint8_t type, uint32_t stream_id,
	    const uint8_t *payload, size_t len, void *arg);
	/* The session is over (reason for logs); free it from here or later. */
	void (*closed)(struct dmsg_session *s, const char *reason, void *arg);
	/* Output queue fell below the low-water mark (may be NULL). */
	void (*drained)(struct dmsg_session *s, void *arg);
};

struct dmsg_session_opts {
	int handshake_timeout_ms; /* default 5000 */
	int ping_after_ms;        /* default 30000 */
	int idle_close_ms;        /* default 90000 */
	size_t low_water;         /* default 64 KiB */
};

/*
 * Take ownership of bev (connected, or connecting for the initiator).
 * remote_pk: the server's PK for the initiator, NULL for the responder.
 * kp must outlive the session.  svc names the service in logs.
 */
struct dmsg_session *dmsg_session_new(struct event_base *base, struct bufferevent *bev,
    int initiator, const struct sw_keypair *kp, const uint8_t *remote_pk,
    const struct dmsg_session_cbs *cbs, void *arg, const struct dmsg_session_opts *opts,
    const char *svc);
/* Close (no callback) and free. NULL-safe. */
void dmsg_session_free(struct dmsg_session *s);

/* Encrypt and queue one frame. -1 if the session is not ready or payload too large. */
int dmsg_session_send(struct dmsg_session *s, uint8_t type, uint32_t stream_id,
    const void *payload, size_t len);
/*
 * dmsg_session_send for a payload handed to a frame callback (of any
 * session), during that callback: the frame is re-headed where it lies and
 * encrypted from there, without a copy (the relay's DATA path).  Any other
 * payload is simply sent.
 */
int dmsg_session_forward(struct dmsg_session *s, uint8_t type, uint32_t stream_id,
    const uint8_t *payload, size_t len);
/* Bytes queued toward the peer. */
size_t dmsg_session_outbuf(const struct dmsg_session *s);
void dmsg_session_pause(struct dmsg_session *s, int paused);
int dmsg_session_ready(const struct dmsg_session *s);
const uint8_t *dmsg_session_remote_pk(const struct dmsg_session *s); /* NULL before ready */
int dmsg_session_is_initiator(const struct dmsg_session *s);
/* The peer's address for logs ("ip:port"). */
const char *dmsg_session_peer(const struct dmsg_session *s);
void dmsg_session_set_arg(struct dmsg_session *s, void *arg);
void *dmsg_session_get_arg(const struct dmsg_session *s);
/* Close with a reason: the closed callback runs from the loop, not inside this call. */
void dmsg_session_close(struct dmsg_session *s, const char *reason);

#endif
