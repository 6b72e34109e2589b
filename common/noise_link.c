/*
 * noise_link: Noise XK over a bufferevent with u16 framing (see noise_link.h).
 *
 * The one idea: an idle link must cost almost nothing (a dmsg server holds
 * thousands), so nothing big lives in it.  The handshake state is allocated
 * for the handshake only; a transport message is decrypted (straight from
 * the input evbuffer's memory when it lies in one piece) into one static
 * scratch buffer shared by every link of the process (everything runs on one
 * event loop thread, and a message callback only borrows the plaintext for
 * the duration of the call), and encrypted straight into the output
 * evbuffer's own memory.  A relay that sends a plaintext on re-heads it in
 * the scratch (noise_link_scratch_at): one AEAD pass each way and no copy.  The input side is bounded by a read high-water mark
 * of one maximal message, so a peer can never make us buffer more than that
 * before we decide what its bytes mean.
 *
 * A free from inside a callback is deferred to the end of the callback that
 * is running.  The closed callback always runs from the loop (a zero timeout
 * on the link's single timer event, the same event that enforces the
 * handshake deadline and the keep-alive), never inside a call made by the
 * caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dmsg_wire.h"
#include "log.h"
#include "noise.h"
#include "noise_link.h"

#define HS_MAX_MSG     256 /* every XK message with a 32-byte payload is far below */
#define PEER_LEN       56
#define REASON_LEN     64
#define DEFAULT_LOW    (64 * 1024)
#define FILL_MIN       4096 /* a smaller rest waits for libevent's next read */

struct noise_link {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;      /* handshake deadline, keep-alive, deferred close */
	const struct sw_keypair *kp;
	struct noise_hs *hs;      /* only during the handshake */
	struct noise_cipher tx, rx;
	struct noise_link_cbs cbs;
	void *arg;
	const char *svc;
	struct noise_link_opts opts;
	long long last_rx_ms;
	long long last_quiet_ms;
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

/* One decrypted transport message at a time, for the whole process. */
static uint8_t rx_scratch[NOISE_LINK_MAX_MSG];



static void
peer_fill(struct noise_link *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	evutil_socket_t fd = bufferevent_getfd(l->bev);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(l->peer, sizeof(l->peer), "?");
		return;
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(l->peer, sizeof(l->peer), "%s:%u", ip, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(l->peer, sizeof(l->peer), "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(l->peer, sizeof(l->peer), "local");
	}
}

static void
destroy(struct noise_link *l)
{
	if (l->timer != NULL)
		event_free(l->timer);
	if (l->bev != NULL)
		bufferevent_free(l->bev);
	if (l->hs != NULL) {
		noise_hs_reset(l->hs);
		free(l->hs);
	}
	noise_cipher_reset(&l->tx);
	noise_cipher_reset(&l->rx);
	free(l);
}

void
noise_link_close(struct noise_link *l, const char *reason)
{
	char why[REASON_LEN];

	if (l == NULL || l->closing)
		return;
	l->closing = 1;
	/* reason may be l->reason itself (transport_step fills it): no overlapping copy. */
	snprintf(why, sizeof(why), "%s", reason != NULL ? reason : "closed");
	memcpy(l->reason, why, sizeof(why));
	sw_log_debug(l->svc, "noise link closing", "prologue=%s peer=%s reason=\"%s\"",
	    l->opts.prologue, l->peer, l->reason);
	bufferevent_disable(l->bev, EV_READ);
	event_del(l->timer);
	sw_timer_in(l->timer, 0);
}

/* Write one u16-framed handshake message. */
static int
hs_send(struct noise_link *l, const uint8_t *payload, size_t plen)
{
	uint8_t out[2 + HS_MAX_MSG];
	size_t n;

	if (noise_hs_write(l->hs, payload, plen, out + 2, HS_MAX_MSG, &n) == -1)
		return -1;
	sw_put_u16(out, (uint16_t)n);
	return bufferevent_write(l->bev, out, n + 2);
}

static int
hs_finish(struct noise_link *l)
{
	if (noise_hs_split(l->hs, &l->tx, &l->rx) == -1)
		return -1;
	noise_hs_reset(l->hs);
	free(l->hs);
	l->hs = NULL;
	l->ready = 1;
	l->last_rx_ms = sw_mono_ms();
	l->last_quiet_ms = l->last_rx_ms;
	event_del(l->timer);
	sw_timer_in(l->timer, l->opts.quiet_ms);
	if (l->peer[0] == '?')
		peer_fill(l);
	if (l->cbs.ready != NULL)
		l->cbs.ready(l, l->arg);
	return 0;
}

/* One handshake message of n bytes is in msg. -1 closes the link. */
static int
hs_step(struct noise_link *l, const uint8_t *msg, size_t n)
{
	uint8_t payload[SW_PK_LEN], x[32];
	const uint8_t *rs;
	size_t plen = 0;

	if (noise_hs_read(l->hs, msg, n, payload, sizeof(payload), &plen) == -1)
		return -1;
	if (l->initiator) {
		/* Message 2 read: send message 3 with our Ed25519 PK and finish. */
		if (plen != 0 || hs_send(l, l->kp->pk, SW_PK_LEN) == -1)
			return -1;
		return hs_finish(l);
	}
	if (!noise_hs_done(l->hs)) {
		/* Message 1 read: answer with message 2. */
		if (plen != 0 || hs_send(l, NULL, 0) == -1)
			return -1;
		return 0;
	}
	/* Message 3: the claimed Ed25519 PK must be the Noise static we saw. */
	rs = noise_hs_remote_static(l->hs);
	if (plen != SW_PK_LEN || sw_pk_is_null(payload) || sw_pk_to_x25519(x, payload) == -1 ||
	    rs == NULL || sodium_memcmp(x, rs, sizeof(x)) != 0)
		return -1;
	memcpy(l->remote_pk, payload, SW_PK_LEN);
	return hs_finish(l);
}

/* One transport message of n bytes is at msg. -1 closes the link. */
static int
transport_step(struct noise_link *l, const uint8_t *msg, size_t n)
{
	size_t plen;

	if (noise_decrypt(&l->rx, NULL, 0, msg, n, rx_scratch, sizeof(rx_scratch),
	    &plen) == -1) {
		snprintf(l->reason, sizeof(l->reason), "decryption failed");
		return -1;
	}
	if (plen < l->opts.min_plain) {
		snprintf(l->reason, sizeof(l->reason), "short message");
		return -1;
	}
	l->last_rx_ms = sw_mono_ms();
	if (l->cbs.message != NULL)
		l->cbs.message(l, rx_scratch, plen, l->arg);
	return 0;
}

static void
process(struct noise_link *l)
{
	struct evbuffer *in = bufferevent_get_input(l->bev);
	uint8_t hdr[2];
	uint8_t hsbuf[HS_MAX_MSG];
	struct evbuffer_iovec v;
	size_t avail, n;
	int rc;

	while (!l->closing && !l->paused && !l->freed) {
		avail = evbuffer_get_length(in);
		if (avail < 2)
			break;
		evbuffer_copyout(in, hdr, 2);
		n = sw_get_u16(hdr);
		if (!l->ready && (n == 0 || n > HS_MAX_MSG)) {
			noise_link_close(l, "bad handshake length");
			break;
		}
		if (l->ready && n < NOISE_TAGLEN + l->opts.min_plain) {
			noise_link_close(l, "short transport message");
			break;
		}
		if (avail < 2 + n)
			break;
		evbuffer_drain(in, 2);
		if (!l->ready) {
			evbuffer_remove(in, hsbuf, n);
			if (hs_step(l, hsbuf, n) == -1) {
				noise_link_close(l, "handshake failed");
				break;
			}
			continue;
		}
		l->reason[0] = '\0';
		/* Decrypt straight out of the input buffer when the message is in one piece. */
		if (evbuffer_peek(in, (ev_ssize_t)n, NULL, &v, 1) == 1 && v.iov_len >= n) {
			rc = transport_step(l, v.iov_base, n);
			evbuffer_drain(in, n);
		} else {
			evbuffer_remove(in, rx_scratch, n);
			rc = transport_step(l, rx_scratch, n);
		}
		if (rc == -1) {
			noise_link_close(l, l->reason[0] != '\0' ? l->reason : "send failed");
			break;
		}
	}
}

/*
 * libevent 2.1 reads at most 4 KiB per read event, whatever
 * max_single_read says (its EVBUFFER_MAX_READ), so a 64 KiB message took
 * sixteen trips through the loop and was copied out of the chains to be
 * decrypted.  When the input holds the head of a big frame, read the rest
 * of that frame now, into one contiguous region behind its head.  Only the
 * frame's own bytes: the high-water mark of one message still holds, and
 * an idle link keeps no big buffer.  The input's end is frozen for users of
 * a socket bufferevent, so it is thawed for the append.  EOF and errors are
 * left to libevent's next read, which reports them as it always does.
 */
static int
fill_frame(struct noise_link *l)
{
	struct evbuffer *in = bufferevent_get_input(l->bev);
	evutil_socket_t fd = bufferevent_getfd(l->bev);
	struct evbuffer_iovec v;
	uint8_t hdr[2];
	size_t avail, want;
	ssize_t r = -1;

	avail = evbuffer_get_length(in);
	if (!l->ready || l->paused || l->closing || fd < 0 || avail < 2)
		return 0;
	evbuffer_copyout(in, hdr, 2);
	want = 2 + (size_t)sw_get_u16(hdr);
	if (avail >= want || want - avail < FILL_MIN)
		return 0;
	want -= avail;
	if (evbuffer_expand(in, want) == -1)
		return 0;
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) == 1 && v.iov_len >= want) {
		do
			r = read(fd, v.iov_base, want);
		while (r == -1 && errno == EINTR);
		if (r > 0) {
			v.iov_len = (size_t)r;
			evbuffer_commit_space(in, &v, 1);
		}
	}
	evbuffer_freeze(in, 0);
	return r > 0;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct noise_link *l = arg;

	(void)bev;
	l->in_cb++;
	process(l);
	/* once per event, so one busy link cannot hold the loop */
	if (!l->freed && fill_frame(l))
		process(l);
	l->in_cb--;
	if (l->in_cb == 0 && l->freed)
		destroy(l);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct noise_link *l = arg;

	if (!l->above_low || evbuffer_get_length(bufferevent_get_output(bev)) > l->opts.low_water)
		return;
	l->above_low = 0;
	if (l->cbs.drained == NULL || l->closing)
		return;
	l->in_cb++;
	l->cbs.drained(l, l->arg);
	l->in_cb--;
	if (l->in_cb == 0 && l->freed)
		destroy(l);
}

/*
 * Every message of a link is a whole frame someone waits for (a handshake
 * step, an RPC, a route packet): Nagle would hold the small ones back for
 * the peer's delayed ACK, ~40 ms a round trip.  Not a TCP socket (a
 * socketpair in tests): nothing to do.
 */
static void
nodelay(struct bufferevent *bev)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct noise_link *l = arg;
	char why[REASON_LEN];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		nodelay(bev);
		peer_fill(l);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		noise_link_close(l, "eof");
	} else if (what & BEV_EVENT_ERROR) {
		snprintf(why, sizeof(why), "socket error: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		noise_link_close(l, why);
	} else {
		noise_link_close(l, "socket timeout");
	}
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct noise_link *l = arg;
	long long now, idle, next;

	(void)fd;
	(void)what;
	if (l->closing) {
		if (l->closed_cb_done)
			return;
		l->closed_cb_done = 1;
		/* The callback may free l: nothing after it. */
		if (l->cbs.closed != NULL)
			l->cbs.closed(l, l->reason, l->arg);
		return;
	}
	if (!l->ready) {
		noise_link_close(l, "handshake timeout");
		return;
	}
	now = sw_mono_ms();
	idle = now - l->last_rx_ms;
	/* A link we stopped reading is not idle: its silence is ours. */
	if (!l->paused && idle >= l->opts.idle_close_ms) {
		noise_link_close(l, "idle timeout");
		return;
	}
	/* Ask for traffic when the peer has been quiet; its answer keeps us open. */
	if (idle >= l->opts.quiet_ms && now - l->last_quiet_ms >= l->opts.quiet_ms) {
		l->last_quiet_ms = now;
		if (l->cbs.quiet != NULL) {
			l->in_cb++;
			l->cbs.quiet(l, l->arg);
			l->in_cb--;
			if (l->freed) {
				destroy(l);
				return;
			}
		}
	}
	if (l->closing)
		return;
	next = l->paused ? now + l->opts.quiet_ms : l->last_rx_ms + l->opts.idle_close_ms;
	if (idle >= l->opts.quiet_ms) {
		if (l->last_quiet_ms + l->opts.quiet_ms < next)
			next = l->last_quiet_ms + l->opts.quiet_ms;
	} else if (l->last_rx_ms + l->opts.quiet_ms < next) {
		next = l->last_rx_ms + l->opts.quiet_ms;
	}
	next -= now;
	sw_timer_in(l->timer, next < 10 ? 10 : next);
}

struct noise_link *
noise_link_new(struct event_base *base, struct bufferevent *bev, int initiator,
    const struct sw_keypair *kp, const uint8_t *remote_pk, const struct noise_link_cbs *cbs,
    void *arg, const struct noise_link_opts *opts, const char *svc)
{
	struct noise_link *l = NULL;
	uint8_t s_priv[32], rs[32];
	struct noise_hs_params p;

	if (base == NULL || bev == NULL || kp == NULL || cbs == NULL || opts == NULL ||
	    opts->prologue == NULL || (initiator && remote_pk == NULL))
		goto fail;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto fail;
	l->base = base;
	l->bev = bev;
	nodelay(bev); /* an accepted socket; a connecting one gets it once connected */
	l->kp = kp;
	l->cbs = *cbs;
	l->arg = arg;
	l->svc = svc != NULL ? svc : "noise";
	l->initiator = initiator ? 1 : 0;
	l->opts = *opts;
	if (l->opts.handshake_timeout_ms <= 0)
		l->opts.handshake_timeout_ms = 5000;
	if (l->opts.quiet_ms <= 0)
		l->opts.quiet_ms = 30000;
	if (l->opts.idle_close_ms <= 0)
		l->opts.idle_close_ms = 90000;
	if (l->opts.low_water == 0)
		l->opts.low_water = DEFAULT_LOW;
	if (l->opts.min_plain > NOISE_LINK_MAX_PLAIN)
		goto fail;
	if ((l->timer = evtimer_new(base, timer_cb, l)) == NULL)
		goto fail;
	if ((l->hs = calloc(1, sizeof(*l->hs))) == NULL)
		goto fail;
	if (sw_sk_to_x25519(s_priv, kp) == -1 ||
	    (initiator && sw_pk_to_x25519(rs, remote_pk) == -1))
		goto fail;
	memset(&p, 0, sizeof(p));
	p.pattern = NOISE_XK;
	p.initiator = initiator != 0;
	p.prologue = (const uint8_t *)opts->prologue;
	p.prologue_len = strlen(opts->prologue);
	p.s_priv = s_priv;
	p.rs = initiator ? rs : NULL;
	if (noise_hs_init(l->hs, &p) == -1)
		goto fail;
	sodium_memzero(s_priv, sizeof(s_priv));
	if (initiator)
		memcpy(l->remote_pk, remote_pk, SW_PK_LEN);
	peer_fill(l);
	/* Never hold more than one maximal message from the peer unprocessed. */
	bufferevent_setwatermark(bev, EV_READ, 0, 2 + NOISE_LINK_MAX_MSG);
	/* libevent moves 16 KiB per callback by default: a quarter of one message. */
	bufferevent_set_max_single_read(bev, 2 + NOISE_LINK_MAX_MSG);
	bufferevent_set_max_single_write(bev, 4 * (2 + NOISE_LINK_MAX_MSG));
	bufferevent_setwatermark(bev, EV_WRITE, l->opts.low_water, 0);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, l);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) == -1)
		goto fail;
	if (initiator && hs_send(l, NULL, 0) == -1)
		goto fail;
	sw_timer_in(l->timer, l->opts.handshake_timeout_ms);
	return l;
fail:
	sodium_memzero(s_priv, sizeof(s_priv));
	if (l != NULL) {
		l->bev = NULL; /* not ours on failure */
		if (bev != NULL)
			bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		destroy(l);
	}
	return NULL;
}

void
noise_link_free(struct noise_link *l)
{
	if (l == NULL)
		return;
	if (l->in_cb > 0) {
		/* A callback of this link is on the stack: finish there. */
		l->freed = 1;
		l->closing = 1;
		l->closed_cb_done = 1;
		bufferevent_disable(l->bev, EV_READ | EV_WRITE);
		event_del(l->timer);
		return;
	}
	destroy(l);
}

int
noise_link_send(struct noise_link *l, const void *hdr, size_t hlen, const void *payload,
    size_t plen)
{
	struct evbuffer *out;
	struct evbuffer_iovec v;
	uint8_t *p;
	const uint8_t *src;
	size_t clen, need;

	if (l == NULL || !l->ready || l->closing || hlen > NOISE_LINK_MAX_PLAIN ||
	    plen > NOISE_LINK_MAX_PLAIN - hlen || (hlen > 0 && hdr == NULL) ||
	    (plen > 0 && payload == NULL))
		return -1;
	need = 2 + hlen + plen + NOISE_TAGLEN;
	out = bufferevent_get_output(l->bev);
	/* Encrypt in place inside the output buffer's memory: one copy of the payload. */
	if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) < 1 || v.iov_len < need)
		return -1;
	p = v.iov_base;
	if (plen == 0 || hlen == 0 || (const uint8_t *)hdr + hlen == payload) {
		/* One piece: encrypt from it straight into the buffer, no copy. */
		src = hlen > 0 ? hdr : payload;
	} else {
		if (hlen > 0)
			memcpy(p + 2, hdr, hlen);
		memcpy(p + 2 + hlen, payload, plen);
		src = p + 2;
	}
	if (noise_encrypt(&l->tx, NULL, 0, src, hlen + plen, p + 2, need - 2, &clen) == -1) {
		v.iov_len = 0;
		evbuffer_commit_space(out, &v, 1);
		noise_link_close(l, "encryption failed");
		return -1;
	}
	sw_put_u16(p, (uint16_t)clen);
	v.iov_len = 2 + clen;
	if (evbuffer_commit_space(out, &v, 1) == -1)
		return -1;
	if (evbuffer_get_length(out) > l->opts.low_water)
		l->above_low = 1;
	return 0;
}

uint8_t *
noise_link_scratch_at(const void *p, size_t before, size_t len)
{
	/* Integer compares: p may point anywhere, its object is not ours to know. */
	uintptr_t q = (uintptr_t)p, lo = (uintptr_t)rx_scratch, hi = lo + sizeof(rx_scratch);

	if (q < lo || q > hi || q - lo < before || len > hi - q)
		return NULL;
	return rx_scratch + (q - lo - before);
}

size_t
noise_link_outbuf(const struct noise_link *l)
{
	return l != NULL ? evbuffer_get_length(bufferevent_get_output(l->bev)) : 0;
}

void
noise_link_pause(struct noise_link *l, int paused)
{
	if (l == NULL || l->closing || (paused != 0) == l->paused)
		return;
	l->paused = paused != 0;
	if (l->paused) {
		bufferevent_disable(l->bev, EV_READ);
		return;
	}
	/* The idle clock restarts: the peer could not be heard while paused. */
	l->last_rx_ms = sw_mono_ms();
	bufferevent_enable(l->bev, EV_READ);
	/* Whatever was already read is processed without waiting for new bytes. */
	if (evbuffer_get_length(bufferevent_get_input(l->bev)) > 0)
		bufferevent_trigger(l->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

int
noise_link_ready(const struct noise_link *l)
{
	return l != NULL && l->ready && !l->closing;
}

const uint8_t *
noise_link_remote_pk(const struct noise_link *l)
{
	return l != NULL && l->ready ? l->remote_pk : NULL;
}

int
noise_link_is_initiator(const struct noise_link *l)
{
	return l != NULL && l->initiator;
}

const char *
noise_link_peer(const struct noise_link *l)
{
	return l != NULL ? l->peer : "?";
}

void
noise_link_set_arg(struct noise_link *l, void *arg)
{
	l->arg = arg;
}

void *
noise_link_get_arg(const struct noise_link *l)
{
	return l->arg;
}
