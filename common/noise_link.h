/*
 * noise_link: Noise_XK_25519_ChaChaPoly_BLAKE2b over a libevent bufferevent,
 * every message framed with a u16 big-endian length, for both ends.  It is
 * what a dmsg session (dmsg.md, prologue "dmsg/1") and a visor's stcpr
 * transport (visor.md, prologue "stcpr/1") have in common: the initiator
 * knows the responder's key, message 3 carries the initiator's Ed25519 PK,
 * checked against the Noise remote static, the handshake has a deadline,
 * then each transport message is one plaintext handed to the caller.
 *
 * What a plaintext means is the caller's business (a dmsg frame, a visor
 * packet); so is the keep-alive message: the link says when the peer has been
 * quiet (quiet callback) and closes after idle_close_ms with nothing
 * received; a link the caller paused is never idle (its silence is ours), and
 * its idle clock restarts when reading resumes.  Callbacks may free or close any link, this one included; the
 * closed callback always runs from the loop, never inside a caller's call.
 */
#ifndef SW_NOISE_LINK_H
#define SW_NOISE_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct bufferevent;
struct noise_link;

#define NOISE_LINK_MAX_MSG 65535 /* one transport message, tag included */
#define NOISE_LINK_MAX_PLAIN (NOISE_LINK_MAX_MSG - 16)

struct noise_link_cbs {
	/* Handshake done; the peer's PK is known. */
	void (*ready)(struct noise_link *l, void *arg);
	/*
	 * One decrypted message, valid only during the call (one scratch
	 * buffer serves every link of the process).  Callers must not run
	 * the event loop from here.
	 */
	void (*message)(struct noise_link *l, const uint8_t *msg, size_t len, void *arg);
	/* The link is over (reason for logs); free it from here or later. */
	void (*closed)(struct noise_link *l, const char *reason, void *arg);
	/* Output queue fell below the low-water mark (may be NULL). */
	void (*drained)(struct noise_link *l, void *arg);
	/* Nothing received for quiet_ms, at most once per quiet_ms (may be NULL). */
	void (*quiet)(struct noise_link *l, void *arg);
};

struct noise_link_opts {
	const char *prologue;     /* required, e.g. "dmsg/1" */
	int handshake_timeout_ms; /* default 5000 */
	int quiet_ms;             /* default 30000 */
	int idle_close_ms;        /* default 90000 */
	size_t low_water;         /* default 64 KiB */
	size_t min_plain;         /* shorter plaintexts close the link; default 0 */
};

/*
 * Take ownership of bev (connected, or connecting for the initiator).
 * remote_pk: the responder's PK for the initiator, NULL for the responder.
 * kp and opts->prologue must outlive the link.  svc names it in logs.
 */
struct noise_link *noise_link_new(struct event_base *base, struct bufferevent *bev,
    int initiator, const struct sw_keypair *kp, const uint8_t *remote_pk,
    const struct noise_link_cbs *cbs, void *arg, const struct noise_link_opts *opts,
    const char *svc);
/* Close (no callback) and free. NULL-safe. */
void noise_link_free(struct noise_link *l);

/*
 * Encrypt hdr ‖ payload as one message and queue it (encrypted into the
 * output buffer's memory: one copy, none when hdr ‖ payload is one piece of
 * memory or plen is 0).  -1 if not ready, closing, or over
 * NOISE_LINK_MAX_PLAIN.
 */
int noise_link_send(struct noise_link *l, const void *hdr, size_t hlen, const void *payload,
    size_t plen);
/*
 * The scratch buffer a message callback's plaintext lives in, writable:
 * p - before if [p - before, p + len) lies inside it, else NULL.  Lets a
 * caller rewrite a header in front of a plaintext it got and send it on
 * without a copy (the dmsg relay), during the callback only.
 */
uint8_t *noise_link_scratch_at(const void *p, size_t before, size_t len);
/* Bytes queued toward the peer. */
size_t noise_link_outbuf(const struct noise_link *l);
void noise_link_pause(struct noise_link *l, int paused);
int noise_link_ready(const struct noise_link *l);
const uint8_t *noise_link_remote_pk(const struct noise_link *l); /* NULL before ready */
int noise_link_is_initiator(const struct noise_link *l);
/* The peer's address for logs ("ip:port"). */
const char *noise_link_peer(const struct noise_link *l);
void noise_link_set_arg(struct noise_link *l, void *arg);
void *noise_link_get_arg(const struct noise_link *l);
/* Close with a reason: the closed callback runs from the loop, not inside this call. */
void noise_link_close(struct noise_link *l, const char *reason);

#endif
