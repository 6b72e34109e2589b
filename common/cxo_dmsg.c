/*
 * cxo_dmsg: a dmsg stream adapted to a libevent bufferevent, so that CXO
 * (cxo_conn, cxo_pub, cxo_sub) runs over dmsg unchanged.
 *
 * The shape, per stream ("link"):
 *
 *   caller <-> F (filter, pass-through) <-> U ==pair== B <-> dmsg stream
 *
 * U and B are a bufferevent pair; F is a filter with no filter functions
 * on top of U, handed to the caller.  F exists for one reason: a pair end
 * gives no sign when it is freed, but a filter calls its free_context
 * hook, so the link learns the caller let go and can close the stream
 * and free itself.  Nothing else is added.
 *
 * Who frees what, each once: B is the link's (link_free); U is F's
 * (BEV_OPT_CLOSE_ON_FREE); F is its taker's (cxo_conn, the HTTP server's
 * filter over it, a splice), never freed here once handed out: an end of
 * ours (a reset, cxo_dmsg_free) is an event on F, and its owner frees it.
 *
 * Flow control: bytes from the stream are written into B; the pair moves
 * them to U only while the caller reads (U's read high-water mark bounds
 * what U holds).  When B's output reaches CXO_DMSG_IN_HIGH the stream's
 * reads are paused, so the peer stops at one window; B's write callback
 * (output drained to half) resumes them.  The other way, B reads only
 * (B_READ_HIGH at a time) while the stream's send queue is under
 * CXO_DMSG_OUT_HIGH; U's write high-water mark then stops F, so the caller's own output grows and
 * cxo_conn's backpressure applies.  The stream's writable callback
 * re-enables B.
 *
 * Ends: the peer's CLOSE becomes EOF on the caller's side once every byte
 * before it was handed over; a reset, a lost session, an idle stream or a
 * failed dial becomes an error event (ECONNRESET / ECONNREFUSED).  The
 * caller freeing its bufferevent becomes CLOSE after what it wrote; if the
 * peer does not close its side within CXO_DMSG_LINGER_MS the stream is
 * reset.  A link is freed when both its stream and its caller's end are
 * gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "cxo_dmsg.h"
#include "cxo_pub.h"
#include "dmsg_client.h"
#include "log.h"

#define U_READ_HIGH        (64u * 1024) /* what U holds for the filter */
#define U_WRITE_HIGH       (64u * 1024) /* what U takes from the caller while B is off */
#define B_READ_HIGH        (64u * 1024) /* what one pass moves into the stream */
#define CXO_DMSG_LINGER_MS 5000
#define PEEK_VECS          16

struct serve {
	struct serve *next;
	struct cxo_dmsg *d;
	struct cxo_pub *p;
	struct dmsg_listener *l;
	uint16_t port;
};

struct link {
	struct cxo_dmsg *d;       /* NULL once the owner freed it */
	struct link *prev, *next;
	struct dmsg_stream *st;   /* NULL once freed */
	struct bufferevent *b;    /* our end of the pair */
	struct bufferevent *u;    /* U, the other end: F's (freed with it) */
	struct bufferevent *user; /* F, handed out, its taker's; NULL once its free hook ran */
	struct event *linger;
	int dialing;
	int in_paused;            /* stream reads paused: B's output is high */
	int out_paused;           /* B not reading: the stream's queue is high */
	int eof_in;               /* the peer closed its side */
	int eof_done;             /* ...and the caller was told */
};

struct cxo_dmsg {
	struct event_base *base;
	struct dmsg_client *c;
	const char *svc;
	struct link *links;
	size_t nlinks;
	struct serve *serves;
};

struct cxo_dmsg_pub {
	struct dmsg_client *c;
	struct cxo_dmsg *d;
};

static void link_maybe_free(struct link *l);

struct cxo_dmsg *
cxo_dmsg_new(struct event_base *base, struct dmsg_client *c, const char *svc)
{
	struct cxo_dmsg *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->base = base;
	d->c = c;
	d->svc = svc;
	return d;
}

size_t
cxo_dmsg_links(const struct cxo_dmsg *d)
{
	return d->nlinks;
}

static void
link_unlist(struct link *l)
{
	if (l->d == NULL)
		return;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		l->d->links = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->d->nlinks--;
	l->d = NULL;
	l->prev = l->next = NULL;
}

static void
link_free(struct link *l)
{
	link_unlist(l);
	if (l->linger != NULL)
		event_free(l->linger);
	bufferevent_free(l->b);
	free(l);
}

static void
link_maybe_free(struct link *l)
{
	if (l->st == NULL && l->user == NULL)
		link_free(l);
}

/*
 * F still the caller's, not freed.  Its free hook (user_gone) runs only
 * once libevent finalizes it, from the loop; until then l->user is set
 * though the caller may have freed it.  Freeing F unlinked it at once,
 * and so freed U (CLOSE_ON_FREE), which cleared U's callbacks, set by F
 * while it lives.  A freed F must not be touched: an event triggered on
 * it takes and drops a reference, which unlinks it a second time
 * (libevent's "BEV_OPT_CLOSE_ON_FREE set on an bufferevent with too few
 * references") and finalizes it again.
 */
static int
user_alive(const struct link *l)
{
	bufferevent_event_cb ecb = NULL;

	if (l->user == NULL)
		return 0;
	bufferevent_getcb(l->u, NULL, NULL, &ecb, NULL);
	return ecb != NULL;
}

/* Tell the caller the stream is gone (an error event, from the loop); its owner frees F. */
static void
user_error(struct link *l, int err)
{
	if (!user_alive(l))
		return;
	evbuffer_drain(bufferevent_get_output(l->b), evbuffer_get_length(
	    bufferevent_get_output(l->b)));
	errno = err; /* what the caller's event callback reads as the socket error */
	bufferevent_trigger_event(l->user, BEV_EVENT_ERROR | BEV_EVENT_READING,
	    BEV_TRIG_DEFER_CALLBACKS);
}

/* EOF to the caller, after everything before it (the pair keeps the order). */
static void
user_eof(struct link *l)
{
	if (l->eof_done || !user_alive(l))
		return;
	l->eof_done = 1;
	bufferevent_flush(l->b, EV_WRITE, BEV_FINISHED);
}

static void
stream_drop(struct link *l)
{
	dmsg_stream_free(l->st);
	l->st = NULL;
	bufferevent_disable(l->b, EV_READ);
}

/* ---------- stream -> caller ---------- */

static void
st_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct link *l = arg;

	if (!user_alive(l))
		return; /* closing: nobody to give it to */
	if (bufferevent_write(l->b, data, len) == -1) {
		dmsg_stream_reset(st);
		stream_drop(l);
		user_error(l, ENOMEM);
		return;
	}
	if (!l->in_paused && evbuffer_get_length(bufferevent_get_output(l->b)) >= CXO_DMSG_IN_HIGH) {
		l->in_paused = 1;
		dmsg_stream_pause_read(st, 1);
	}
}

static void
st_eof(struct dmsg_stream *st, void *arg)
{
	struct link *l = arg;

	(void)st;
	l->eof_in = 1;
	if (evbuffer_get_length(bufferevent_get_output(l->b)) == 0)
		user_eof(l);
}

static void
st_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	struct link *l = arg;

	(void)st;
	if (l->d != NULL)
		sw_log_debug(l->d->svc, "cxo dmsg stream ended", "why=%s",
		    dmsg_stream_end_str(why));
	stream_drop(l);
	if (why == DMSG_END_DONE) {
		l->eof_in = 1;
		if (evbuffer_get_length(bufferevent_get_output(l->b)) == 0)
			user_eof(l);
	} else {
		user_error(l, ECONNRESET);
	}
	link_maybe_free(l);
}

static void
st_writable(struct dmsg_stream *st, void *arg)
{
	struct link *l = arg;

	(void)st;
	if (l->out_paused && l->st != NULL) {
		l->out_paused = 0;
		bufferevent_enable(l->b, EV_READ);
	}
}

static const struct dmsg_stream_cbs link_cbs = {
	.read = st_read,
	.eof = st_eof,
	.closed = st_closed,
	.writable = st_writable,
};

/* B's output drained to its low-water mark: the caller took data. */
static void
b_write(struct bufferevent *b, void *arg)
{
	struct link *l = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(b));

	if (l->in_paused && l->st != NULL && left <= CXO_DMSG_IN_HIGH / 2) {
		l->in_paused = 0;
		dmsg_stream_pause_read(l->st, 0);
	}
	if (l->eof_in && left == 0)
		user_eof(l);
}

/* ---------- caller -> stream ---------- */

/* Move what B holds into the stream's queue: 0, or -1 if the stream refused. */
static int
b_flush(struct link *l)
{
	struct evbuffer *in = bufferevent_get_input(l->b);
	struct evbuffer_iovec v[PEEK_VECS];

	while (evbuffer_get_length(in) > 0) {
		int n = evbuffer_peek(in, -1, NULL, v, PEEK_VECS);
		size_t done = 0;

		if (n > PEEK_VECS)
			n = PEEK_VECS;
		for (int i = 0; i < n; i++) {
			if (l->st == NULL || dmsg_stream_write(l->st, v[i].iov_base,
			    v[i].iov_len) == -1)
				return -1;
			done += v[i].iov_len;
		}
		evbuffer_drain(in, done);
	}
	return 0;
}

static void
b_read(struct bufferevent *b, void *arg)
{
	struct link *l = arg;

	if (l->st == NULL || l->dialing) {
		evbuffer_drain(bufferevent_get_input(b), evbuffer_get_length(
		    bufferevent_get_input(b)));
		return;
	}
	if (b_flush(l) == -1) {
		dmsg_stream_reset(l->st);
		stream_drop(l);
		user_error(l, ECONNRESET);
		return;
	}
	if (dmsg_stream_queued(l->st) >= CXO_DMSG_OUT_HIGH) {
		l->out_paused = 1;
		bufferevent_disable(b, EV_READ);
	}
}

static void
b_event(struct bufferevent *b, short what, void *arg)
{
	(void)b;
	(void)what;
	(void)arg; /* a pair end gets events only from flushes nobody makes */
}

/* The peer did not close its side in time after ours. */
static void
linger_fire(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;

	(void)fd;
	(void)what;
	stream_drop(l);
	link_maybe_free(l);
}

/* F's free hook: the caller let go of its end (runs from the loop). */
static void
user_gone(void *arg)
{
	struct link *l = arg;
	l->user = NULL;
	if (l->st != NULL && l->dialing) {
		stream_drop(l); /* cancels the dial, no callback */
	} else if (l->st != NULL) {
		/* The caller's last bytes may still sit in B: they go before CLOSE. */
		if (b_flush(l) == -1 || dmsg_stream_shutdown(l->st) == -1 ||
		    (l->linger = evtimer_new(bufferevent_get_base(l->b), linger_fire, l)) ==
		    NULL || sw_timer_in(l->linger, CXO_DMSG_LINGER_MS) == -1)
			stream_drop(l);
	}
	link_maybe_free(l);
}

/* A link with its pair and filter, no stream yet.  NULL on failure. */
static struct link *
link_new(struct cxo_dmsg *d)
{
	struct link *l = calloc(1, sizeof(*l));
	struct bufferevent *pair[2] = {NULL, NULL};

	if (l == NULL)
		return NULL;
	if (bufferevent_pair_new(d->base, 0, pair) == -1)
		goto fail;
	l->b = pair[0];
	l->u = pair[1];
	l->user = bufferevent_filter_new(pair[1], NULL, NULL, BEV_OPT_CLOSE_ON_FREE, user_gone, l);
	if (l->user == NULL)
		goto fail;
	bufferevent_setwatermark(pair[1], EV_READ, 0, U_READ_HIGH);
	bufferevent_setwatermark(pair[1], EV_WRITE, 0, U_WRITE_HIGH);
	bufferevent_setwatermark(l->b, EV_WRITE, CXO_DMSG_IN_HIGH / 2, 0);
	/*
	 * Without a bound here the pair hands B all of U's output at once and
	 * the filter refills U as fast, so the caller's whole output would land
	 * in the stream's queue before we could say stop.
	 */
	bufferevent_setwatermark(l->b, EV_READ, 0, B_READ_HIGH);
	bufferevent_setcb(l->b, b_read, b_write, b_event, l);
	bufferevent_disable(l->b, EV_READ); /* until the stream is open */
	bufferevent_enable(l->b, EV_WRITE);
	l->d = d;
	l->next = d->links;
	if (d->links != NULL)
		d->links->prev = l;
	d->links = l;
	d->nlinks++;
	return l;
fail:
	if (pair[1] != NULL)
		bufferevent_free(pair[1]);
	if (pair[0] != NULL)
		bufferevent_free(pair[0]);
	free(l);
	return NULL;
}

/* Give up on a link before its bufferevent was handed out. */
static void
link_abandon(struct link *l)
{
	stream_drop(l);
	bufferevent_free(l->user); /* user_gone frees the link */
}

static void
link_open(struct link *l, struct dmsg_stream *st)
{
	l->st = st;
	l->dialing = 0;
	dmsg_stream_set_cbs(st, &link_cbs, l);
	bufferevent_enable(l->b, EV_READ);
}

struct bufferevent *
cxo_dmsg_wrap(struct cxo_dmsg *d, struct dmsg_stream *st)
{
	struct link *l = link_new(d);

	if (l == NULL) {
		dmsg_stream_free(st);
		return NULL;
	}
	link_open(l, st);
	return l->user;
}

static void
dial_done(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct link *l = arg;

	if (st == NULL) {
		char q[128];

		if (l->d != NULL)
			sw_log_debug(l->d->svc, "cxo dial over dmsg failed", "reject=%d err=%s",
			    reject, sw_log_q(q, sizeof(q), err != NULL ? err : ""));
		l->st = NULL;
		l->dialing = 0;
		user_error(l, ECONNREFUSED);
		link_maybe_free(l);
		return;
	}
	link_open(l, st);
}

struct bufferevent *
cxo_dmsg_dial(struct event_base *base, const uint8_t *pk, uint16_t port, void *arg)
{
	struct cxo_dmsg *d = arg;
	struct link *l;

	(void)base;
	if ((l = link_new(d)) == NULL)
		return NULL;
	l->dialing = 1;
	l->st = dmsg_client_dial(d->c, pk, port, CXO_DMSG_DIAL_MS, dial_done, l);
	if (l->st == NULL) {
		link_abandon(l);
		return NULL;
	}
	return l->user;
}

struct bufferevent *
cxo_dmsg_sub_dial(struct event_base *base, void *arg)
{
	struct cxo_dmsg_target *t = arg;

	return cxo_dmsg_dial(base, t->pk, t->port, t->d);
}

/* ---------- publisher side ---------- */

static void
serve_accept(struct dmsg_listener *dl, struct dmsg_stream *st, void *arg)
{
	struct serve *s = arg;
	struct bufferevent *bev;

	(void)dl;
	if (cxo_pub_conns(s->p) >= CXO_PUB_MAX_CONNS) {
		dmsg_stream_free(st); /* bounded acceptance: the cap of TCP applies here too */
		return;
	}
	if ((bev = cxo_dmsg_wrap(s->d, st)) == NULL)
		return;
	cxo_pub_attach(s->p, bev);
}

int
cxo_dmsg_serve(struct cxo_dmsg *d, struct cxo_pub *p, uint16_t port)
{
	struct serve *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	s->d = d;
	s->p = p;
	s->port = port;
	s->l = dmsg_client_listen(d->c, port, serve_accept, s);
	if (s->l == NULL) {
		sw_log_error(d->svc, "cannot listen for cxo on dmsg", "port=%u", (unsigned)port);
		free(s);
		return -1;
	}
	s->next = d->serves;
	d->serves = s;
	return 0;
}

void
cxo_dmsg_free(struct cxo_dmsg *d)
{
	if (d == NULL)
		return;
	while (d->serves != NULL) {
		struct serve *s = d->serves;

		d->serves = s->next;
		dmsg_listener_free(s->l);
		free(s);
	}
	while (d->links != NULL) {
		struct link *l = d->links;

		link_unlist(l);
		stream_drop(l);
		user_error(l, ECONNRESET); /* not to an F its caller freed already */
		link_maybe_free(l); /* else freed with the caller's end */
	}
	free(d);
}

struct cxo_dmsg_pub *
cxo_dmsg_pub_new(struct event_base *base, const struct sw_keypair *kp,
    const char *discovery_url, struct cxo_pub *p, uint16_t port, const char *svc)
{
	struct cxo_dmsg_pub *dp = calloc(1, sizeof(*dp));
	struct dmsg_client_opts o;
	char hex[SW_PK_HEX];

	if (dp == NULL)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.discovery = discovery_url;
	dp->c = dmsg_client_new(base, kp, &o, svc);
	if (dp->c == NULL || (dp->d = cxo_dmsg_new(base, dp->c, svc)) == NULL ||
	    cxo_dmsg_serve(dp->d, p, port) == -1 || dmsg_client_start(dp->c) == -1)
		goto fail;
	sw_hex_encode(hex, kp->pk, SW_PK_LEN);
	sw_log_info(svc, "cxo feed on dmsg", "pk=%s port=%u discovery=%s", hex, (unsigned)port,
	    discovery_url);
	return dp;
fail:
	sw_log_error(svc, "cannot serve the cxo feed over dmsg", "discovery=%s", discovery_url);
	cxo_dmsg_pub_free(dp);
	return NULL;
}

void
cxo_dmsg_pub_free(struct cxo_dmsg_pub *dp)
{
	if (dp == NULL)
		return;
	cxo_dmsg_free(dp->d);
	dmsg_client_free(dp->c);
	free(dp);
}

struct dmsg_client *
cxo_dmsg_pub_client(const struct cxo_dmsg_pub *dp)
{
	return dp->c;
}
