/*
 * dmsg_session: one dmsg session over a bufferevent (see dmsg_session.h).
 *
 * The one idea: an idle session must cost almost nothing (a server holds
 * thousands), so nothing big lives in it.  The handshake state is allocated
 * for the handshake only; a transport message is decrypted in one static
 * scratch buffer shared by every session of the process (everything runs on
 * one event loop thread, and a frame callback only borrows the payload for
 * the duration of the call), and encrypted in place inside the output
 * evbuffer's own memory.  The input side is bounded by a read high-water mark
 * of one maximal message, so a peer can never make us buffer more than that
 * before we decide what its bytes mean.
 *
 * Callbacks may free or close any session, this one included: a free from
 * inside a callback is deferred to the end of the callback that is running.
 * The closed callback always runs from the loop (a zero timeout on the
 * session's single timer event, the same event that enforces the handshake
 * deadline and the keep-alive), never inside a call made by the caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "dmsg_session.h"
#include "dmsg_wire.h"
#include "log.h"
#include "noise.h"

#define HS_MAX_MSG     256 /* every XK message with a 32-byte payload is far below */
#define PEER_LEN       56
#define REASON_LEN     64
#define DEFAULT_LOW    (64 * 1024)

struct dmsg_session {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;      /* handshake deadline, keep-alive, deferred close */
	const struct sw_keypair *kp;
	struct noise_hs *hs;      /* only during the handshake */
	struct noise_cipher tx, rx;
	struct dmsg_session_cbs cbs;
	void *arg;
	const char *svc;
	struct dmsg_session_opts opts;
	long long last_rx_ms;
	long long last_ping_ms;
	unsigned in_cb;           /* depth of our callbacks running */
	unsigned initiator : 1;
	unsigned ready : 1;
	unsigned closing : 1;
	unsigned closed_cb_done : 1;
	unsigned paused : 1;
	unsigned freed : 1;       /* free requested from inside a callback */
	unsigned above_low : 1;   /* output went past low water since the last drained */
	uint8_t remote_pk[SW_PK_LEN];
	char peer[PEER_LEN];
	char reason[REASON_LEN];
};

/*
 * One decrypted transport message at a time, for the whole process (see the
 * top of the file).  Frame callbacks must not run the event loop.
 */
static uint8_t rx_scratch[DMSG_MAX_TRANSPORT];

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
timer_in(struct dmsg_session *s, long long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(s->timer, &tv);
}

static void
peer_fill(struct dmsg_session *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	evutil_socket_t fd = bufferevent_getfd(s->bev);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(s->peer, sizeof(s->peer), "?");
		return;
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(s->peer, sizeof(s->peer), "%s:%u", ip, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(s->peer, sizeof(s->peer), "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(s->peer, sizeof(s->peer), "local");
	}
}

static void
destroy(struct dmsg_session *s)
{
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->hs != NULL) {
		noise_hs_reset(s->hs);
		free(s->hs);
	}
	noise_cipher_reset(&s->tx);
	noise_cipher_reset(&s->rx);
	free(s);
}

void
dmsg_session_close(struct dmsg_session *s, const char *reason)
{
	if (s == NULL || s->closing)
		return;
	s->closing = 1;
	snprintf(s->reason, sizeof(s->reason), "%s", reason != NULL ? reason : "closed");
	sw_log_debug(s->svc, "dmsg session closing", "peer=%s reason=\"%s\"", s->peer, s->reason);
	bufferevent_disable(s->bev, EV_READ);
	event_del(s->timer);
	timer_in(s, 0);
}

/* Write one u16-framed handshake message. */
static int
hs_send(struct dmsg_session *s, const uint8_t *payload, size_t plen)
{
	uint8_t out[2 + HS_MAX_MSG];
	size_t n;

	if (noise_hs_write(s->hs, payload, plen, out + 2, HS_MAX_MSG, &n) == -1)
		return -1;
	sw_put_u16(out, (uint16_t)n);
	return bufferevent_write(s->bev, out, n + 2);
}

static int
hs_finish(struct dmsg_session *s)
{
	if (noise_hs_split(s->hs, &s->tx, &s->rx) == -1)
		return -1;
	noise_hs_reset(s->hs);
	free(s->hs);
	s->hs = NULL;
	s->ready = 1;
	s->last_rx_ms = now_ms();
	s->last_ping_ms = s->last_rx_ms;
	event_del(s->timer);
	timer_in(s, s->opts.ping_after_ms);
	if (s->peer[0] == '?')
		peer_fill(s);
	if (s->cbs.ready != NULL)
		s->cbs.ready(s, s->arg);
	return 0;
}

/* One handshake message of n bytes is in msg. -1 closes the session. */
static int
hs_step(struct dmsg_session *s, const uint8_t *msg, size_t n)
{
	uint8_t payload[SW_PK_LEN], x[32];
	const uint8_t *rs;
	size_t plen = 0;

	if (noise_hs_read(s->hs, msg, n, payload, sizeof(payload), &plen) == -1)
		return -1;
	if (s->initiator) {
		/* Message 2 read: send message 3 with our Ed25519 PK and finish. */
		if (plen != 0 || hs_send(s, s->kp->pk, SW_PK_LEN) == -1)
			return -1;
		return hs_finish(s);
	}
	if (!noise_hs_done(s->hs)) {
		/* Message 1 read: answer with message 2. */
		if (plen != 0 || hs_send(s, NULL, 0) == -1)
			return -1;
		return 0;
	}
	/* Message 3: the claimed Ed25519 PK must be the Noise static we saw. */
	rs = noise_hs_remote_static(s->hs);
	if (plen != SW_PK_LEN || sw_pk_is_null(payload) || sw_pk_to_x25519(x, payload) == -1 ||
	    rs == NULL || sodium_memcmp(x, rs, sizeof(x)) != 0)
		return -1;
	memcpy(s->remote_pk, payload, SW_PK_LEN);
	return hs_finish(s);
}

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

/* One transport message of n bytes sits in rx_scratch. -1 closes the session. */
static int
transport_step(struct dmsg_session *s, size_t n)
{
	size_t plen;
	uint8_t type;
	uint32_t sid;

	if (noise_decrypt(&s->rx, NULL, 0, rx_scratch, n, rx_scratch, sizeof(rx_scratch),
	    &plen) == -1) {
		snprintf(s->reason, sizeof(s->reason), "decryption failed");
		return -1;
	}
	if (plen < DMSG_FRAME_HDR) {
		snprintf(s->reason, sizeof(s->reason), "short frame");
		return -1;
	}
	type = rx_scratch[0];
	sid = sw_get_u32(rx_scratch + 1);
	plen -= DMSG_FRAME_HDR;
	if (!frame_ok(type, sid, plen)) {
		snprintf(s->reason, sizeof(s->reason), "malformed frame type=%u", type);
		return -1;
	}
	s->last_rx_ms = now_ms();
	if (type == DMSG_PING)
		return dmsg_session_send(s, DMSG_PONG, 0, rx_scratch + DMSG_FRAME_HDR, 8) == -1 ?
		    -1 : 0;
	if (type == DMSG_PONG)
		return 0;
	if (s->cbs.frame != NULL)
		s->cbs.frame(s, type, sid, rx_scratch + DMSG_FRAME_HDR, plen, s->arg);
	return 0;
}

static void
process(struct dmsg_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	uint8_t hdr[2];
	uint8_t hsbuf[HS_MAX_MSG];
	size_t avail, n;

	while (!s->closing && !s->paused && !s->freed) {
		avail = evbuffer_get_length(in);
		if (avail < 2)
			break;
		evbuffer_copyout(in, hdr, 2);
		n = sw_get_u16(hdr);
		if (!s->ready && (n == 0 || n > HS_MAX_MSG)) {
			dmsg_session_close(s, "bad handshake length");
			break;
		}
		if (s->ready && n < NOISE_TAGLEN + DMSG_FRAME_HDR) {
			dmsg_session_close(s, "short transport message");
			break;
		}
		if (avail < 2 + n)
			break;
		evbuffer_drain(in, 2);
		if (!s->ready) {
			evbuffer_remove(in, hsbuf, n);
			if (hs_step(s, hsbuf, n) == -1) {
				dmsg_session_close(s, "handshake failed");
				break;
			}
			continue;
		}
		evbuffer_remove(in, rx_scratch, n);
		s->reason[0] = '\0';
		if (transport_step(s, n) == -1) {
			dmsg_session_close(s, s->reason[0] != '\0' ? s->reason : "send failed");
			break;
		}
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct dmsg_session *s = arg;

	(void)bev;
	s->in_cb++;
	process(s);
	s->in_cb--;
	if (s->in_cb == 0 && s->freed)
		destroy(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct dmsg_session *s = arg;

	if (!s->above_low || evbuffer_get_length(bufferevent_get_output(bev)) > s->opts.low_water)
		return;
	s->above_low = 0;
	if (s->cbs.drained == NULL || s->closing)
		return;
	s->in_cb++;
	s->cbs.drained(s, s->arg);
	s->in_cb--;
	if (s->in_cb == 0 && s->freed)
		destroy(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dmsg_session *s = arg;
	char why[REASON_LEN];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		peer_fill(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		dmsg_session_close(s, "eof");
	} else if (what & BEV_EVENT_ERROR) {
		snprintf(why, sizeof(why), "socket error: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		dmsg_session_close(s, why);
	} else {
		dmsg_session_close(s, "socket timeout");
	}
}

static void
ping(struct dmsg_session *s, long long now)
{
	uint8_t nonce[8];

	randombytes_buf(nonce, sizeof(nonce));
	if (dmsg_session_send(s, DMSG_PING, 0, nonce, sizeof(nonce)) == -1)
		dmsg_session_close(s, "send failed");
	s->last_ping_ms = now;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_session *s = arg;
	long long now, idle, next;

	(void)fd;
	(void)what;
	if (s->closing) {
		if (s->closed_cb_done)
			return;
		s->closed_cb_done = 1;
		/* The callback may free s: nothing after it. */
		if (s->cbs.closed != NULL)
			s->cbs.closed(s, s->reason, s->arg);
		return;
	}
	if (!s->ready) {
		dmsg_session_close(s, "handshake timeout");
		return;
	}
	now = now_ms();
	idle = now - s->last_rx_ms;
	if (idle >= s->opts.idle_close_ms) {
		dmsg_session_close(s, "idle timeout");
		return;
	}
	/* Ask for traffic when the peer has been quiet; its PONG keeps us open. */
	if (idle >= s->opts.ping_after_ms && now - s->last_ping_ms >= s->opts.ping_after_ms)
		ping(s, now);
	if (s->closing)
		return;
	next = s->last_rx_ms + s->opts.idle_close_ms;
	if (idle >= s->opts.ping_after_ms) {
		if (s->last_ping_ms + s->opts.ping_after_ms < next)
			next = s->last_ping_ms + s->opts.ping_after_ms;
	} else if (s->last_rx_ms + s->opts.ping_after_ms < next) {
		next = s->last_rx_ms + s->opts.ping_after_ms;
	}
	next -= now;
	timer_in(s, next < 10 ? 10 : next);
}

struct dmsg_session *
dmsg_session_new(struct event_base *base, struct bufferevent *bev, int initiator,
    const struct sw_keypair *kp, const uint8_t *remote_pk, const struct dmsg_session_cbs *cbs,
    void *arg, const struct dmsg_session_opts *opts, const char *svc)
{
	struct dmsg_session *s = NULL;
	uint8_t s_priv[32], rs[32];
	struct noise_hs_params p;

	if (base == NULL || bev == NULL || kp == NULL || cbs == NULL ||
	    (initiator && remote_pk == NULL))
		goto fail;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto fail;
	s->base = base;
	s->bev = bev;
	s->kp = kp;
	s->cbs = *cbs;
	s->arg = arg;
	s->svc = svc != NULL ? svc : "dmsg";
	s->initiator = initiator ? 1 : 0;
	if (opts != NULL)
		s->opts = *opts;
	if (s->opts.handshake_timeout_ms <= 0)
		s->opts.handshake_timeout_ms = DMSG_HANDSHAKE_TIMEOUT_S * 1000;
	if (s->opts.ping_after_ms <= 0)
		s->opts.ping_after_ms = DMSG_PING_AFTER_S * 1000;
	if (s->opts.idle_close_ms <= 0)
		s->opts.idle_close_ms = DMSG_IDLE_CLOSE_S * 1000;
	if (s->opts.low_water == 0)
		s->opts.low_water = DEFAULT_LOW;
	if ((s->timer = evtimer_new(base, timer_cb, s)) == NULL)
		goto fail;
	if ((s->hs = calloc(1, sizeof(*s->hs))) == NULL)
		goto fail;
	if (sw_sk_to_x25519(s_priv, kp) == -1 ||
	    (initiator && sw_pk_to_x25519(rs, remote_pk) == -1))
		goto fail;
	memset(&p, 0, sizeof(p));
	p.pattern = NOISE_XK;
	p.initiator = initiator != 0;
	p.prologue = (const uint8_t *)DMSG_PROLOGUE;
	p.prologue_len = strlen(DMSG_PROLOGUE);
	p.s_priv = s_priv;
	p.rs = initiator ? rs : NULL;
	if (noise_hs_init(s->hs, &p) == -1)
		goto fail;
	sodium_memzero(s_priv, sizeof(s_priv));
	if (initiator)
		memcpy(s->remote_pk, remote_pk, SW_PK_LEN);
	peer_fill(s);
	/* Never hold more than one maximal message from the peer unprocessed. */
	bufferevent_setwatermark(bev, EV_READ, 0, 2 + DMSG_MAX_TRANSPORT);
	/* libevent moves 16 KiB per callback by default: a quarter of one message. */
	bufferevent_set_max_single_read(bev, 2 + DMSG_MAX_TRANSPORT);
	bufferevent_set_max_single_write(bev, 4 * (2 + DMSG_MAX_TRANSPORT));
	bufferevent_setwatermark(bev, EV_WRITE, s->opts.low_water, 0);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) == -1)
		goto fail;
	if (initiator && hs_send(s, NULL, 0) == -1)
		goto fail;
	timer_in(s, s->opts.handshake_timeout_ms);
	return s;
fail:
	sodium_memzero(s_priv, sizeof(s_priv));
	if (s != NULL) {
		s->bev = NULL; /* not ours on failure */
		if (bev != NULL)
			bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		destroy(s);
	}
	return NULL;
}

void
dmsg_session_free(struct dmsg_session *s)
{
	if (s == NULL)
		return;
	if (s->in_cb > 0) {
		/* A callback of this session is on the stack: finish there. */
		s->freed = 1;
		s->closing = 1;
		s->closed_cb_done = 1;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		event_del(s->timer);
		return;
	}
	destroy(s);
}

int
dmsg_session_send(struct dmsg_session *s, uint8_t type, uint32_t stream_id,
    const void *payload, size_t len)
{
	struct evbuffer *out;
	struct evbuffer_iovec v;
	uint8_t *p;
	size_t clen, need = 2 + DMSG_FRAME_HDR + len + NOISE_TAGLEN;

	if (s == NULL || !s->ready || s->closing || len > DMSG_MAX_PAYLOAD ||
	    (len > 0 && payload == NULL))
		return -1;
	out = bufferevent_get_output(s->bev);
	/* Encrypt in place inside the output buffer's memory: one copy of the payload. */
	if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) < 1 || v.iov_len < need)
		return -1;
	p = v.iov_base;
	p[2] = type;
	sw_put_u32(p + 3, stream_id);
	if (len > 0)
		memcpy(p + 2 + DMSG_FRAME_HDR, payload, len);
	if (noise_encrypt(&s->tx, NULL, 0, p + 2, DMSG_FRAME_HDR + len, p + 2, need - 2,
	    &clen) == -1) {
		v.iov_len = 0;
		evbuffer_commit_space(out, &v, 1);
		dmsg_session_close(s, "encryption failed");
		return -1;
	}
	sw_put_u16(p, (uint16_t)clen);
	v.iov_len = 2 + clen;
	if (evbuffer_commit_space(out, &v, 1) == -1)
		return -1;
	if (evbuffer_get_length(out) > s->opts.low_water)
		s->above_low = 1;
	return 0;
}

size_t
dmsg_session_outbuf(const struct dmsg_session *s)
{
	return s != NULL ? evbuffer_get_length(bufferevent_get_output(s->bev)) : 0;
}

void
dmsg_session_pause(struct dmsg_session *s, int paused)
{
	if (s == NULL || s->closing || (paused != 0) == s->paused)
		return;
	s->paused = paused != 0;
	if (s->paused) {
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	/* Whatever was already read is processed without waiting for new bytes. */
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
		bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

int
dmsg_session_ready(const struct dmsg_session *s)
{
	return s != NULL && s->ready && !s->closing;
}

const uint8_t *
dmsg_session_remote_pk(const struct dmsg_session *s)
{
	return s != NULL && s->ready ? s->remote_pk : NULL;
}

int
dmsg_session_is_initiator(const struct dmsg_session *s)
{
	return s != NULL && s->initiator;
}

const char *
dmsg_session_peer(const struct dmsg_session *s)
{
	return s != NULL ? s->peer : "?";
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
