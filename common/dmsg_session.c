/*
 * dmsg_session: one dmsg session over a bufferevent (see dmsg_session.h).
 *
 * The handshake, the u16 framing, the in-place encryption, the shared
 * decryption scratch and the deadlines are common/noise_link's (the visor's
 * stcpr transports use the same); what is dmsg's is here: the prologue, the
 * frame header and which frames are well formed, PING/PONG as the
 * keep-alive.  A session is a thin wrapper that owns its link; callbacks may
 * free the session (the link defers its own free to the end of the callback
 * running, and never calls back after it), so nothing here touches the
 * session after calling the application.
 */
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "dmsg_session.h"
#include "dmsg_wire.h"
#include "noise_link.h"

struct dmsg_session {
	struct noise_link *l;
	struct dmsg_session_cbs cbs;
	void *arg;
};

/* Whether a decrypted frame is well formed for the session layer. */
static int
frame_ok(uint8_t type, uint32_t sid, size_t plen)
{
	switch (type) {
	case DMSG_PING:
	case DMSG_PONG:
		return sid == 0 && plen == 8;
	case DMSG_OPEN:
	case DMSG_ACCEPT:
		return sid != 0;
	case DMSG_REJECT:
		return sid != 0 && plen >= 1;
	case DMSG_DATA:
		return sid != 0 && plen <= DMSG_MAX_DATA;
	case DMSG_WINDOW:
		return sid != 0 && plen == 4;
	case DMSG_CLOSE:
	case DMSG_RESET:
		return sid != 0 && plen == 0;
	default:
		return 0;
	}
}

static void
on_ready(struct noise_link *l, void *arg)
{
	struct dmsg_session *s = arg;

	(void)l;
	if (s->cbs.ready != NULL)
		s->cbs.ready(s, s->arg);
}

static void
on_message(struct noise_link *l, const uint8_t *msg, size_t len, void *arg)
{
	struct dmsg_session *s = arg;
	char why[48];
	uint8_t type = msg[0];
	uint32_t sid = sw_get_u32(msg + 1);
	size_t plen = len - DMSG_FRAME_HDR; /* the link enforces min_plain */

	if (!frame_ok(type, sid, plen)) {
		snprintf(why, sizeof(why), "malformed frame type=%u", type);
		noise_link_close(l, why);
		return;
	}
	if (type == DMSG_PING) {
		if (dmsg_session_send(s, DMSG_PONG, 0, msg + DMSG_FRAME_HDR, 8) == -1)
			noise_link_close(l, "send failed");
		return;
	}
	if (type == DMSG_PONG)
		return;
	if (s->cbs.frame != NULL)
		s->cbs.frame(s, type, sid, msg + DMSG_FRAME_HDR, plen, s->arg);
}

static void
on_closed(struct noise_link *l, const char *reason, void *arg)
{
	struct dmsg_session *s = arg;

	(void)l;
	if (s->cbs.closed != NULL)
		s->cbs.closed(s, reason, s->arg);
}

static void
on_drained(struct noise_link *l, void *arg)
{
	struct dmsg_session *s = arg;

	(void)l;
	if (s->cbs.drained != NULL)
		s->cbs.drained(s, s->arg);
}

/* The peer has been quiet: ask for traffic; its PONG keeps us open. */
static void
on_quiet(struct noise_link *l, void *arg)
{
	struct dmsg_session *s = arg;
	uint8_t nonce[8];

	randombytes_buf(nonce, sizeof(nonce));
	if (dmsg_session_send(s, DMSG_PING, 0, nonce, sizeof(nonce)) == -1)
		noise_link_close(l, "send failed");
}

struct dmsg_session *
dmsg_session_new(struct event_base *base, struct bufferevent *bev, int initiator,
    const struct sw_keypair *kp, const uint8_t *remote_pk, const struct dmsg_session_cbs *cbs,
    void *arg, const struct dmsg_session_opts *opts, const char *svc)
{
	static const struct noise_link_cbs lcbs = {
		.ready = on_ready,
		.message = on_message,
		.closed = on_closed,
		.drained = on_drained,
		.quiet = on_quiet,
	};
	struct dmsg_session *s;
	struct noise_link_opts lo = {
		.prologue = DMSG_PROLOGUE,
		.handshake_timeout_ms = DMSG_HANDSHAKE_TIMEOUT_S * 1000,
		.quiet_ms = DMSG_PING_AFTER_S * 1000,
		.idle_close_ms = DMSG_IDLE_CLOSE_S * 1000,
		.min_plain = DMSG_FRAME_HDR,
	};

	if (cbs == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL; /* bev is not ours on failure */
	s->cbs = *cbs;
	s->arg = arg;
	if (opts != NULL) {
		if (opts->handshake_timeout_ms > 0)
			lo.handshake_timeout_ms = opts->handshake_timeout_ms;
		if (opts->ping_after_ms > 0)
			lo.quiet_ms = opts->ping_after_ms;
		if (opts->idle_close_ms > 0)
			lo.idle_close_ms = opts->idle_close_ms;
		lo.low_water = opts->low_water;
	}
	s->l = noise_link_new(base, bev, initiator, kp, remote_pk, &lcbs, s, &lo,
	    svc != NULL ? svc : "dmsg");
	if (s->l == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void
dmsg_session_free(struct dmsg_session *s)
{
	if (s == NULL)
		return;
	noise_link_free(s->l);
	free(s);
}

int
dmsg_session_send(struct dmsg_session *s, uint8_t type, uint32_t stream_id,
    const void *payload, size_t len)
{
	uint8_t hdr[DMSG_FRAME_HDR];

	if (s == NULL || len > DMSG_MAX_PAYLOAD)
		return -1;
	hdr[0] = type;
	sw_put_u32(hdr + 1, stream_id);
	return noise_link_send(s->l, hdr, sizeof(hdr), payload, len);
}

int
dmsg_session_forward(struct dmsg_session *s, uint8_t type, uint32_t stream_id,
    const uint8_t *payload, size_t len)
{
	uint8_t *hdr;

	if (s == NULL || len > DMSG_MAX_PAYLOAD)
		return -1;
	/* A frame we just received: its own header in front is ours to rewrite. */
	if (payload == NULL ||
	    (hdr = noise_link_scratch_at(payload, DMSG_FRAME_HDR, len)) == NULL)
		return dmsg_session_send(s, type, stream_id, payload, len);
	hdr[0] = type;
	sw_put_u32(hdr + 1, stream_id);
	return noise_link_send(s->l, hdr, DMSG_FRAME_HDR + len, NULL, 0);
}

size_t
dmsg_session_outbuf(const struct dmsg_session *s)
{
	return s != NULL ? noise_link_outbuf(s->l) : 0;
}

void
dmsg_session_pause(struct dmsg_session *s, int paused)
{
	if (s != NULL)
		noise_link_pause(s->l, paused);
}

int
dmsg_session_ready(const struct dmsg_session *s)
{
	return s != NULL && noise_link_ready(s->l);
}

const uint8_t *
dmsg_session_remote_pk(const struct dmsg_session *s)
{
	return s != NULL ? noise_link_remote_pk(s->l) : NULL;
}

int
dmsg_session_is_initiator(const struct dmsg_session *s)
{
	return s != NULL && noise_link_is_initiator(s->l);
}

const char *
dmsg_session_peer(const struct dmsg_session *s)
{
	return s != NULL ? noise_link_peer(s->l) : "?";
}

void
dmsg_session_set_arg(struct dmsg_session *s, void *arg)
{
	s->arg = arg;
}

void *
dmsg_session_get_arg(const struct dmsg_session *s)
{
	return s->arg;
}

void
dmsg_session_close(struct dmsg_session *s, const char *reason)
{
	if (s != NULL)
		noise_link_close(s->l, reason);
}
