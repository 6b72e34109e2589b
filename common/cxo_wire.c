/*
 * cxo_wire: framing, numbering, handshake and keep-alive of CXO messages.
 *
 * Input is parsed in place: a message is made contiguous with
 * evbuffer_pullup only once all of it has arrived, handed to the owner,
 * then drained, so a message costs no allocation of ours.  len is checked
 * before anything waits for the body, so a peer cannot make us buffer more
 * than one CXO_MAX_MSG; output past CXO_OUT_HIGH stops reading until the
 * peer catches up, so a peer that asks without reading cannot grow it.
 *
 * Callbacks may free the connection: while one runs, cxo_conn_free only
 * marks it, and the read loop finishes the job when the callback returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "cxo_wire.h"
#include "cxo_obj.h"
#include "dmsg_wire.h"
#include "log.h"

#define LINGER_S 5

struct cxo_conn {
	struct bufferevent *bev;
	int abort;  /* drop the output on free */
	const char *svc;
	struct cxo_conn_cbs cbs;
	void *arg;
	int server;
	int ready;
	int dead;   /* closed or failing: no more input handled */
	int busy;   /* inside a callback */
	int freed;  /* cxo_conn_free called while busy */
	int paused; /* reading stopped for output backpressure */
	uint32_t tx_seq;
	uint32_t rx_seq;
	uint32_t syn_seq;
	int ping_ms;
	struct event *ping;
	char peer[64];
};

static void conn_read(struct bufferevent *bev, void *arg);

static void
set_timeouts(struct cxo_conn *c, int read_s)
{
	struct timeval r = {read_s, 0}, w = {CXO_IDLE_S, 0};

	bufferevent_set_timeouts(c->bev, &r, &w);
}

/* Close the socket once what is queued has gone out. */
static void
linger_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
linger_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
bev_release(struct bufferevent *bev)
{
	struct timeval t = {LINGER_S, 0};

	if (bev == NULL)
		return;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_free(bev);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &t);
	bufferevent_setcb(bev, NULL, linger_write, linger_event, NULL);
	bufferevent_enable(bev, EV_WRITE);
}

static void
conn_destroy(struct cxo_conn *c)
{
	if (c->ping != NULL)
		event_free(c->ping);
	if (c->abort)
		bufferevent_free(c->bev);
	else
		bev_release(c->bev);
	free(c);
}

void
cxo_conn_free(struct cxo_conn *c)
{
	if (c == NULL)
		return;
	if (c->busy > 0) {
		c->freed = 1;
		c->dead = 1;
		return;
	}
	conn_destroy(c);
}

/* The connection died: tell the owner once. */
static void
conn_close(struct cxo_conn *c, const char *reason)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (c->ping != NULL)
		event_del(c->ping);
	bufferevent_disable(c->bev, EV_READ);
	c->busy++;
	if (c->cbs.closed != NULL)
		c->cbs.closed(c, reason, c->arg);
	c->busy--;
}

uint32_t
cxo_conn_send(struct cxo_conn *c, uint8_t type, uint32_t rseq, const void *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t h[CXO_HDR];

	if (c->dead || len > CXO_MAX_MSG - (CXO_HDR - 4))
		return 0;
	if (++c->tx_seq == 0)
		c->tx_seq = 1; /* 2^32 messages: never 0, which means "none" */
	sw_put_u32(h, (uint32_t)(len + CXO_HDR - 4));
	sw_put_u32(h + 4, c->tx_seq);
	sw_put_u32(h + 8, rseq);
	h[12] = type;
	if (evbuffer_add(out, h, sizeof(h)) == -1 || (len > 0 && evbuffer_add(out, body,
	    len) == -1))
		return 0;
	if (!c->paused && evbuffer_get_length(out) > CXO_OUT_HIGH) {
		c->paused = 1;
		bufferevent_disable(c->bev, EV_READ);
	}
	return c->tx_seq;
}

void
cxo_conn_fail(struct cxo_conn *c, const char *reason)
{
	if (c->dead)
		return;
	if (c->server && reason != NULL)
		cxo_conn_send(c, CXO_ERR, 0, reason, strlen(reason));
	conn_close(c, reason != NULL ? reason : "protocol error");
}

static void
ping_fire(evutil_socket_t fd, short what, void *arg)
{
	struct cxo_conn *c = arg;

	(void)fd;
	(void)what;
	cxo_conn_send(c, CXO_PING, 0, NULL, 0);
	sw_timer_in(c->ping, c->ping_ms);
}

void
cxo_conn_set_ping(struct cxo_conn *c, int ping_ms)
{
	c->ping_ms = ping_ms;
	if (c->ping != NULL && c->ready && !c->dead)
		sw_timer_in(c->ping, ping_ms);
}

static void
became_ready(struct cxo_conn *c)
{
	c->ready = 1;
	set_timeouts(c, CXO_IDLE_S);
	if (c->ping != NULL)
		cxo_conn_set_ping(c, c->ping_ms);
	if (c->cbs.ready != NULL)
		c->cbs.ready(c, c->arg);
}

/* The handshake, before anything else is allowed. */
static int
handshake(struct cxo_conn *c, uint8_t type, uint32_t seq, uint32_t rseq, const uint8_t *b,
    size_t len)
{
	if (c->server) {
		if (type != CXO_SYN || len != 2) {
			cxo_conn_fail(c, "expected SYN");
			return -1;
		}
		if (sw_get_u16(b) != CXO_PROTO_VERSION) {
			cxo_conn_fail(c, "unsupported protocol version");
			return -1;
		}
		cxo_conn_send(c, CXO_ACK, seq, NULL, 0);
		became_ready(c);
		return 0;
	}
	if (type == CXO_ERR) {
		char why[160];

		snprintf(why, sizeof(why), "handshake refused: %.*s", (int)(len > 100 ? 100 : len),
		    (const char *)b);
		conn_close(c, why);
		return -1;
	}
	if (type != CXO_ACK || len != 0 || rseq != c->syn_seq) {
		conn_close(c, "expected ACK");
		return -1;
	}
	became_ready(c);
	return 0;
}

static int
dispatch(struct cxo_conn *c, const uint8_t *m, size_t mlen)
{
	uint32_t seq = sw_get_u32(m + 4), rseq = sw_get_u32(m + 8);
	uint8_t type = m[12];
	const uint8_t *body = m + CXO_HDR;
	size_t len = mlen - CXO_HDR;

	/* seq counts from 1 without gaps (cxo.md); anything else is a broken peer. */
	if (seq != c->rx_seq + 1 || seq == 0) {
		cxo_conn_fail(c, "bad message sequence");
		return -1;
	}
	c->rx_seq = seq;
	if (!c->ready)
		return handshake(c, type, seq, rseq, body, len);
	switch (type) {
	case CXO_PING:
		if (len != 0) {
			cxo_conn_fail(c, "bad PING");
			return -1;
		}
		cxo_conn_send(c, CXO_PONG, seq, NULL, 0);
		return 0;
	case CXO_PONG:
		return 0;
	case CXO_SYN:
	case CXO_ACK:
		cxo_conn_fail(c, "handshake repeated");
		return -1;
	default:
		if (c->cbs.msg(c, type, seq, rseq, body, len, c->arg) == -1) {
			cxo_conn_fail(c, "protocol error");
			return -1;
		}
		return c->dead ? -1 : 0;
	}
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct cxo_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->busy++;
	while (!c->dead) {
		uint8_t h[4];
		size_t have = evbuffer_get_length(in);
		uint32_t mlen;
		const uint8_t *m;

		if (have < 4)
			break;
		evbuffer_copyout(in, h, 4);
		mlen = sw_get_u32(h);
		if (mlen < CXO_HDR - 4 || mlen > CXO_MAX_MSG) {
			cxo_conn_fail(c, mlen > CXO_MAX_MSG ? "message too large" :
			    "message too short");
			break;
		}
		if (have < 4 + (size_t)mlen)
			break;
		m = evbuffer_pullup(in, 4 + (ssize_t)mlen);
		if (m == NULL) {
			conn_close(c, "out of memory");
			break;
		}
		if (dispatch(c, m, 4 + (size_t)mlen) == -1 || c->freed)
			break;
		evbuffer_drain(in, 4 + (size_t)mlen);
	}
	c->busy--;
	if (c->freed && c->busy == 0)
		conn_destroy(c);
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct cxo_conn *c = arg;

	if (c->paused && !c->dead &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <= CXO_OUT_HIGH / 2) {
		c->paused = 0;
		bufferevent_enable(bev, EV_READ);
	}
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct cxo_conn *c = arg;
	char why[128];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "timeout");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "peer closed");
	else
		snprintf(why, sizeof(why), "connection error: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	/* Nothing more can reach a peer that is gone: do not linger on its output. */
	c->abort = 1;
	c->busy++;
	conn_close(c, why);
	c->busy--;
	if (c->freed && c->busy == 0)
		conn_destroy(c);
}

static void
peer_name(struct cxo_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	char host[48] = "?";

	snprintf(c->peer, sizeof(c->peer), "?");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, (unsigned)ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
		    (unsigned)ntohs(s6->sin6_port));
	}
}

struct cxo_conn *
cxo_conn_new(struct bufferevent *bev, int server, const char *svc,
    const struct cxo_conn_cbs *cbs, void *arg)
{
	struct cxo_conn *c = calloc(1, sizeof(*c));
	uint8_t proto[2];

	if (c == NULL)
		return NULL;
	c->bev = bev;
	c->svc = svc;
	c->cbs = *cbs;
	c->arg = arg;
	c->server = server;
	c->ping_ms = CXO_PING_S * 1000;
	if (!server) {
		c->ping = evtimer_new(bufferevent_get_base(bev), ping_fire, c);
		if (c->ping == NULL) {
			free(c);
			return NULL;
		}
	}
	peer_name(c);
	bufferevent_setwatermark(bev, EV_READ, 0, 4 + (size_t)CXO_MAX_MSG);
	bufferevent_setwatermark(bev, EV_WRITE, CXO_OUT_HIGH / 2, 0);
	bufferevent_setcb(bev, conn_read, conn_write, conn_event, c);
	set_timeouts(c, CXO_HANDSHAKE_S);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (!server) {
		sw_put_u16(proto, CXO_PROTO_VERSION);
		c->syn_seq = cxo_conn_send(c, CXO_SYN, 0, proto, sizeof(proto));
	}
	return c;
}

void
cxo_conn_abort(struct cxo_conn *c)
{
	if (c == NULL)
		return;
	c->abort = 1;
	cxo_conn_free(c);
}

int
cxo_conn_ready(const struct cxo_conn *c)
{
	return c->ready && !c->dead;
}

size_t
cxo_conn_out_len(const struct cxo_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

struct bufferevent *
cxo_conn_bev(const struct cxo_conn *c)
{
	return c->bev;
}

const char *
cxo_conn_peer(const struct cxo_conn *c)
{
	return c->peer;
}

struct bufferevent *
cxo_tcp_connect(struct event_base *base, const char *addr)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	struct bufferevent *bev;
	const char *a = addr;
	char buf[64];

	/* "localhost" is common in flags; map it without a resolver. */
	if (strncmp(addr, "localhost:", 10) == 0) {
		snprintf(buf, sizeof(buf), "127.0.0.1:%s", addr + 10);
		a = buf;
	}
	if (evutil_parse_sockaddr_port(a, (struct sockaddr *)&ss, &sl) == -1)
		return NULL;
	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sl) == -1) {
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}
