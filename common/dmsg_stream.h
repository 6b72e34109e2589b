/*
 * dmsg_stream: the public API of a dmsg stream (dmsg.md, "Stream"): what an
 * application does with a stream it got from dmsg_client_dial, an accept
 * callback or dmsg_listener_accept (dmsg_client.h).  Ownership and callback
 * rules are in dmsg_client.h; the internals are in dmsg_stream_int.h.
 */
#ifndef DMSG_STREAM_H
#define DMSG_STREAM_H

#include <stddef.h>
#include <stdint.h>

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
