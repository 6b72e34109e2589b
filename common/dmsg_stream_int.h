/*
 * dmsg_stream_int: one dmsg stream's end-to-end half (dmsg.md, "Stream"), kept
 * apart from sessions and discovery so that it can be tested on its own.
 *
 * A stream talks to its session through a struct dmsg_link (send a frame,
 * is the session congested, forget me): dmsg_client.c implements it over a
 * dmsg_session, the tests over an in-memory queue.  This file owns the KK
 * handshake carried in OPEN/ACCEPT, the two windows, the send queue, read
 * pausing, half close, reset and the idle timer.  Internal to libswcommon
 * (dmsg_stream.c, the dmsg client's files and the stream's own test); the
 * public API is dmsg_stream.h.
 */
#ifndef DMSG_STREAM_INT_H
#define DMSG_STREAM_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "crypto.h"
#include "dmsg_client.h"
#include "dmsg_stream.h"
#include "dmsg_wire.h"
#include "noise.h"

struct event_base;
struct event;
struct evbuffer;
struct dmsg_stream;

struct dmsg_link_ops {
	/* Queue one frame toward the peer. 0, or -1 if the session cannot. */
	int (*send)(void *link, uint8_t type, uint32_t id, const void *payload, size_t len);
	/* 1 when the session's output is past its high-water mark. */
	int (*congested)(void *link);
	/* st waits for congestion to clear; the link later calls dmsg_stream_pump(st). */
	void (*wait)(void *link, struct dmsg_stream *st);
	/* st is over on this link: drop it from the id table and the wait list. */
	void (*detach)(void *link, struct dmsg_stream *st);
};

/* What every stream of one client shares. */
struct dmsg_stream_env {
	struct event_base *base;
	const struct sw_keypair *kp;
	const char *svc;
	int idle_ms;
	uint8_t xsk[32];            /* our X25519 secret, for KK */
	uint8_t xpk[32];            /* and its public key, derived once */
	/*
	 * Peers' X25519 keys by Ed25519 PK (direct-mapped): the conversion
	 * costs about 100 us (libsodium checks the point's subgroup), more
	 * than any other step of a stream's KK, and a process talks to the
	 * same few peers over and over.  A collision only costs a miss.  With
	 * it, DH(xsk, x): KK's static-static secret, the same for every
	 * handshake with that peer (one X25519 less per stream at each end).
	 */
	struct {
		uint8_t pk[SW_PK_LEN];
		uint8_t x[32];
		uint8_t ss[32];
		int used;
	} xcache[64];
	/* the owner stops tracking st (freed by the app, or its dial failed) */
	void (*forget)(struct dmsg_stream *st);
	/* st is about to be freed (last reference dropped) */
	void (*gone)(struct dmsg_stream *st);
	/*
	 * st's dial failed with code (a REJECT code or -1), st is off its link:
	 * 0 when the owner tries again (same callback, same deadline), -1 to let
	 * the failure through.  May be NULL.
	 */
	int (*redial)(struct dmsg_stream *st, int code);
	/*
	 * One frame's worth of scratch each way, so that no DATA frame
	 * allocates: rx holds what a read callback is looking at while it
	 * writes (tx), possibly on another stream.
	 */
	uint8_t rx[DMSG_MAX_TRANSPORT];
	uint8_t tx[DMSG_MAX_TRANSPORT];
};

enum dmsg_stream_state {
	DMSG_ST_IDLE = 0, /* allocated, nothing sent */
	DMSG_ST_OPENING,  /* OPEN sent, waiting for ACCEPT/REJECT */
	DMSG_ST_OPEN,
	DMSG_ST_DEAD,     /* ended; off its link */
};

struct dmsg_stream {
	struct dmsg_stream_env *env;
	const struct dmsg_link_ops *ops;
	void *link;                 /* NULL when detached */
	uint32_t id;
	enum dmsg_stream_state state;
	int refs;                   /* app + link + callbacks in progress */
	int app_owned;
	int initiator;

	uint8_t remote_pk[SW_PK_LEN];
	uint16_t remote_port;
	uint16_t local_port;

	struct noise_hs hs;
	struct noise_cipher tx, rx;
	uint8_t req_hash[SW_HASH_LEN];

	struct evbuffer *outq;      /* plaintext not yet sent */
	struct evbuffer *inq;       /* plaintext received while not delivering */
	uint64_t inq_wire;          /* DATA payload bytes behind inq, not yet granted */
	uint64_t tx_window;         /* bytes the peer still lets us send */
	uint64_t rx_window;         /* bytes we still let the peer send */
	uint64_t credit;            /* consumed, not yet granted */
	size_t lowat;
	int above_lowat;

	int read_paused;
	int eof_recv;               /* peer sent CLOSE */
	int eof_done;               /* eof callback delivered (or due) */
	int shut;                   /* shutdown asked */
	int close_sent;
	int waiting;                /* on the link's wait list */
	int end_due;                /* closed callback pending */
	enum dmsg_stream_end end_why;

	struct dmsg_stream_cbs cbs;
	void *cb_arg;
	dmsg_dial_cb *dial_cb;
	void *dial_arg;

	struct event *timer;        /* dial deadline, then idle check */
	struct event *kick;         /* deferred delivery to the application */
	long long last_active_ms;
	long long dial_deadline_ms;

	struct dmsg_stream_stats st;

	/* owner bookkeeping (dmsg_client.c) */
	void *owner;                /* client */
	void *listener;             /* waiting in this listener's backlog */
	TAILQ_ENTRY(dmsg_stream) wait_entry;   /* link's congestion wait list */
	TAILQ_ENTRY(dmsg_stream) owner_entry;  /* client's dial list / listener backlog */
	TAILQ_ENTRY(dmsg_stream) all_entry;    /* every stream of the client */
	int dial_phase;             /* dmsg_client.c's dial progress */
	int dial_cached;            /* the dial's servers came from the peer cache */
	int redialled;              /* it was looked up again after that went astray */
	TAILQ_ENTRY(dmsg_stream) cached_entry; /* client's queue of DIAL_CACHED dials */
	uint8_t via[SW_PK_LEN];     /* the server a dial goes through */
};

/* env's own X25519 keys (xsk, xpk) from kp, once per client. 0, or -1. */
int dmsg_stream_env_keys(struct dmsg_stream_env *env, const struct sw_keypair *kp);
/*
 * pk's X25519 form and, when ss is not NULL, DH(xsk, that form), through
 * env's cache (xcache).  0, or -1 (not a valid key, or a low-order one).
 */
int dmsg_stream_env_peer(struct dmsg_stream_env *env, const uint8_t pk[SW_PK_LEN],
    uint8_t x[32], uint8_t ss[32]);
/* A fresh stream holding one reference (the caller's). NULL on out of memory. */
struct dmsg_stream *dmsg_stream_alloc(struct dmsg_stream_env *env);
void dmsg_stream_ref(struct dmsg_stream *st);
/* Drop one reference; frees at zero. */
void dmsg_stream_unref(struct dmsg_stream *st);

/* Bind to a link under id (the link holds a reference from now on). */
void dmsg_stream_attach(struct dmsg_stream *st, const struct dmsg_link_ops *ops, void *link,
    uint32_t id);

/* Dialer: start KK and send OPEN. 0, or -1 (nothing sent). */
int dmsg_stream_open(struct dmsg_stream *st, const uint8_t remote_pk[SW_PK_LEN],
    uint16_t remote_port, uint16_t local_port);
/*
 * Dialer: the peer's ACCEPT payload.  0 and the stream is open, or -1
 * (bad signature, hash or handshake; the caller resets it).
 */
int dmsg_stream_accepted(struct dmsg_stream *st, const uint8_t *payload, size_t len);
/*
 * Listener: check an OPEN for us (dst is our key, signature, timestamp).
 * 0 ok, else the REJECT code to send.
 */
int dmsg_stream_check_request(const struct dmsg_stream_env *env, const uint8_t *buf,
    size_t len, struct dmsg_stream_req *req);
/* Listener: finish KK on an attached stream and send ACCEPT. 0, or -1 (REJECT 4). */
int dmsg_stream_answer(struct dmsg_stream *st, const uint8_t *buf, size_t len,
    const struct dmsg_stream_req *req);

/* DATA, WINDOW, CLOSE or RESET for this stream. -1: malformed, a session error. */
int dmsg_stream_input(struct dmsg_stream *st, uint8_t type, const uint8_t *payload,
    size_t len);
/* Send what the window and the link allow now. */
void dmsg_stream_pump(struct dmsg_stream *st);
/* The stream ends for why without a frame (session lost); closed runs from the loop. */
void dmsg_stream_end(struct dmsg_stream *st, enum dmsg_stream_end why);
/* Send RESET and end it with why (idle, protocol); closed runs from the loop. */
void dmsg_stream_fail(struct dmsg_stream *st, enum dmsg_stream_end why);
/* Send RESET (if attached) and end it quietly. */
void dmsg_stream_abort(struct dmsg_stream *st);
/*
 * A dial failed: abort, tell the owner to forget it, run the dial callback
 * with NULL and release the application's handle.
 */
void dmsg_stream_dial_fail(struct dmsg_stream *st, int code, const char *err);
/* A dial succeeded (state open): the callback gets the stream, the idle timer starts. */
void dmsg_stream_dial_done(struct dmsg_stream *st);
/* Arm the dial deadline. */
void dmsg_stream_dial_deadline(struct dmsg_stream *st, long long at_ms);

long long dmsg_now_ms(struct event_base *base);

#endif
