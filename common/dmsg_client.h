/*
 * dmsg_client: the client side of dmsg (dmsg.md) on one libevent base.
 *
 * A client keeps sessions to at least min_sessions dmsg servers taken from
 * dmsg-discovery, advertises them in its signed discovery entry, and runs
 * end-to-end encrypted streams (Noise KK per stream) over those sessions:
 * it dials (pk, port) and accepts on listening ports.  Everything is
 * callbacks from the loop; nothing blocks and every wait has a deadline.
 *
 * Ownership: the application owns a stream from the moment it is handed
 * out (dial callback, accept callback or dmsg_listener_accept) until it
 * calls dmsg_stream_free(), which resets the stream if it is still open.
 * A stream that has ended (closed callback) stays valid, inert, until freed.
 * Stream callbacks never run inside a call the application made into this
 * library; they come from the loop.  dmsg_stream_free() may be called from
 * any callback; dmsg_client_free() from none of them.
 */
#ifndef DMSG_CLIENT_H
#define DMSG_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "dmsg_session.h"

struct event_base;
struct dmsg_client;
struct dmsg_listener;
struct dmsg_stream;

/* Why a stream ended (closed callback). */
enum dmsg_stream_end {
	DMSG_END_DONE = 0,     /* both sides closed; everything sent was delivered to the session */
	DMSG_END_RESET,        /* the peer or the relay reset it */
	DMSG_END_SESSION_LOST, /* the session carrying it ended */
	DMSG_END_IDLE,         /* nothing sent or received for stream_idle_ms */
	DMSG_END_PROTOCOL,     /* the peer broke the protocol (window, decryption); we reset it */
};
const char *dmsg_stream_end_str(enum dmsg_stream_end why);

struct dmsg_stream_cbs {
	/* Plaintext from the peer, valid during the call. */
	void (*read)(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg);
	/* The peer half-closed (after its last byte was read). May be NULL. */
	void (*eof)(struct dmsg_stream *st, void *arg);
	/* The stream is over; write/read are dead from now on. May be NULL. */
	void (*closed)(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg);
	/* The send queue fell to the low-water mark after being above it. May be NULL. */
	void (*writable)(struct dmsg_stream *st, void *arg);
};

struct dmsg_client_opts {
	const char *discovery;    /* "http://host:port" of dmsg-discovery (required) */
	int min_sessions;         /* default 1 */
	int first_retry_ms;       /* retry before any session was up, default 25, doubling */
	int backoff_min_ms;       /* first reconnect delay, default 1000, doubling */
	int backoff_max_ms;       /* default 60000 */
	int refresh_ms;           /* entry re-post period, default 60000 */
	int http_timeout_ms;      /* per discovery request, default 5000 */
	int stream_idle_ms;       /* default 120000 */
	size_t session_hwm;       /* session output past which streams hold DATA, default 1 MiB */
	struct dmsg_session_opts session; /* zeros: dmsg_session's defaults */
	/* Each time discovery has taken our entry (may be NULL). */
	void (*registered)(struct dmsg_client *c, void *arg);
	void *registered_arg;
};

/*
 * kp must outlive the client; opts is copied (discovery string too).  svc
 * names the owner in logs.  NULL on a bad option or out of memory.
 */
struct dmsg_client *dmsg_client_new(struct event_base *base, const struct sw_keypair *kp,
    const struct dmsg_client_opts *opts, const char *svc);
/* Start finding servers and opening sessions. 0, or -1 if already started. */
int dmsg_client_start(struct dmsg_client *c);
/* Close every session, stream, listener and request; no callbacks run. NULL-safe. */
void dmsg_client_free(struct dmsg_client *c);
/*
 * Graceful end: stop looking for servers and posting, let every session
 * send what it has queued, half-close each TCP connection and wait for the
 * servers to close them, so that the last bytes of finished streams reach
 * the relay.  done runs once from the loop when all sessions are gone or
 * after timeout_ms; then free the client.  -1 if a drain is under way.
 */
int dmsg_client_drain(struct dmsg_client *c, int timeout_ms, void (*done)(void *arg),
    void *arg);
/* Sessions past their handshake. */
int dmsg_client_nsessions(const struct dmsg_client *c);
/* Up to max PKs of the servers we have ready sessions with; returns how many. */
size_t dmsg_client_servers(const struct dmsg_client *c, uint8_t (*out)[SW_PK_LEN], size_t max);
/* 1 when discovery holds our entry listing exactly the current sessions (at least one). */
int dmsg_client_registered(const struct dmsg_client *c);
const uint8_t *dmsg_client_pk(const struct dmsg_client *c);

/*
 * Listen on port (1..65535, below the ephemeral range by convention).
 * accept_cb gets each accepted stream while the listener is not paused;
 * while paused, up to DMSG_BACKLOG streams wait (handshake done) for
 * dmsg_listener_accept(), and further ones are refused with REJECT 3.
 * NULL if the port is taken or 0.
 */
typedef void dmsg_accept_cb(struct dmsg_listener *l, struct dmsg_stream *st, void *arg);
struct dmsg_listener *dmsg_client_listen(struct dmsg_client *c, uint16_t port,
    dmsg_accept_cb *cb, void *arg);
void dmsg_listener_pause(struct dmsg_listener *l, int paused);
/* The oldest waiting stream (now the caller's), or NULL. */
struct dmsg_stream *dmsg_listener_accept(struct dmsg_listener *l);
size_t dmsg_listener_pending(const struct dmsg_listener *l);
/* Stop listening; waiting streams are reset, handed-out ones live on. NULL-safe. */
void dmsg_listener_free(struct dmsg_listener *l);

/*
 * Dial (pk, port) from a fresh ephemeral port.  cb runs once from the loop:
 * with the stream on success, else with NULL, the REJECT code the remote
 * or relay sent (1..6), or -1 and a reason (no entry, no reachable server,
 * timeout, ...).  timeout_ms bounds the whole dial (0: 10000 + discovery).
 * Returns the stream being dialled, valid until cb runs; dmsg_stream_free()
 * on it cancels the dial without a callback.  NULL (no callback) on a bad
 * argument or out of memory.
 */
typedef void dmsg_dial_cb(struct dmsg_stream *st, int reject, const char *err, void *arg);
struct dmsg_stream *dmsg_client_dial(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN],
    uint16_t port, int timeout_ms, dmsg_dial_cb *cb, void *arg);

/* Callbacks; buffered data and a pending eof are delivered from the loop afterwards. */
void dmsg_stream_set_cbs(struct dmsg_stream *st, const struct dmsg_stream_cbs *cbs, void *arg);
/*
 * Queue data; it leaves as the peer's window allows (one KK message of at
 * most DMSG_MAX_DATA_PLAIN plaintext bytes per DATA frame).  -1 after
 * shutdown, on an ended stream, or past DMSG_STREAM_MAX_QUEUE queued bytes.
 */
#define DMSG_STREAM_MAX_QUEUE (64u << 20)
int dmsg_stream_write(struct dmsg_stream *st, const void *data, size_t len);
/* Bytes queued and not yet sent. */
size_t dmsg_stream_queued(const struct dmsg_stream *st);
/* Low-water mark for the writable callback (default 64 KiB). */
void dmsg_stream_set_lowat(struct dmsg_stream *st, size_t lowat);
/*
 * Stop (1) or resume (0) delivering data.  While paused no window is
 * granted, so the peer stops after at most one window of buffered data.
 */
void dmsg_stream_pause_read(struct dmsg_stream *st, int paused);
/* Half close: CLOSE goes out after the queued data. 0, or -1 on an ended stream. */
int dmsg_stream_shutdown(struct dmsg_stream *st);
/* Abort both directions now (RESET); the closed callback does not run. */
void dmsg_stream_reset(struct dmsg_stream *st);
/* Reset if still open, then release. NULL-safe. */
void dmsg_stream_free(struct dmsg_stream *st);

const uint8_t *dmsg_stream_remote_pk(const struct dmsg_stream *st);
uint16_t dmsg_stream_remote_port(const struct dmsg_stream *st);
uint16_t dmsg_stream_local_port(const struct dmsg_stream *st);
/* 1 while data can still move in some direction. */
int dmsg_stream_is_open(const struct dmsg_stream *st);

struct dmsg_stream_stats {
	uint64_t written;    /* plaintext bytes accepted by dmsg_stream_write */
	uint64_t sent;       /* plaintext bytes sent in DATA */
	uint64_t received;   /* plaintext bytes received in DATA */
	uint64_t tx_wire;    /* DATA payload bytes sent (ciphertext) */
	uint64_t tx_granted; /* window the peer has given us in all, initial included */
	uint64_t rx_wire;    /* DATA payload bytes received */
	uint64_t rx_granted; /* window we have given the peer in all */
	size_t queued;       /* waiting to be sent */
	size_t buffered;     /* received, not yet delivered */
};
void dmsg_stream_stats(const struct dmsg_stream *st, struct dmsg_stream_stats *out);

#endif
