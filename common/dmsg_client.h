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
#include "dmsg_stream.h"

struct event_base;
struct dmsg_client;
struct dmsg_listener;
struct dmsg_stream;

struct dmsg_client_opts {
	const char *discovery;    /* "http://host:port" of dmsg-discovery (required) */
	int min_sessions;         /* default 1 */
	int first_retry_ms;       /* retry before any session was up, default 25, doubling */
	int backoff_min_ms;       /* first reconnect delay, default 1000, doubling */
	int backoff_max_ms;       /* default 60000 */
	int refresh_ms;           /* entry re-post period, default 60000 */
	int http_timeout_ms;      /* per discovery request, default 5000 */
	int stream_idle_ms;       /* default 120000 */
	int peer_cache_max;       /* peers remembered by dials, default 1024; -1: none */
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
 * For a KK handshake with pk under the client's own key (route groups
 * talk to the same peers as its streams): pk's X25519 form, the
 * static-static secret and our X25519 public key, through the cache the
 * client's streams use (the conversion costs ~100 us, the DH ~40).  0, or
 * -1 (not a valid key).
 */
int dmsg_client_kk_keys(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], uint8_t rs[32],
    uint8_t ss[32], uint8_t s_pub[32]);

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

/*
 * The dial's peer cache: a peer's delegated servers are remembered for
 * 30 s after a lookup (at most 1024 peers, least recently used out), so
 * that dialling it again skips the discovery GET.  A dial that went astray
 * through a cached entry (REJECT 1 "no session", or the server could not
 * be reached) drops the entry and looks the peer up again, once.
 */
struct dmsg_dial_stats {
	unsigned long long lookups;     /* discovery GETs of a peer's entry */
	unsigned long long cache_hits;  /* dials that started from the cache */
	unsigned long long redials;     /* stale entries dropped and looked up again */
	size_t cached;                  /* peers in the cache now */
};
void dmsg_client_dial_stats(const struct dmsg_client *c, struct dmsg_dial_stats *out);

#endif
