/*
 * test_cxo_dmsg: CXO over dmsg streams through a real dmsg-discovery and
 * dmsg-server from $SW_BUILD/bin (default build), with the clients in this
 * test's event base.  A publisher served on a dmsg port and a subscriber
 * dialling it: a snapshot of 10,000 leaves, then an update, and the
 * manager answering from the feed; the adapter alone against a raw stream:
 * bytes both ways, the peer's CLOSE as EOF, a reset and a failed dial as
 * errors, the caller's free as CLOSE; and backpressure both ways, with the
 * memory the adapter holds bounded while one side does not read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "crypto.h"
#include "cxo_dmsg.h"
#include "cxo_mgr.h"
#include "cxo_pub.h"
#include "cxo_sub.h"
#include "dmsg_client.h"
#include "log.h"
#include "tests/lib/procs.h"
#include "tests/lib/testutil.h"

#define WAIT_MS   30000
#define FEED_PORT 46
#define RAW_PORT  100
#define BIG       (16u << 20)

static struct event_base *base;
static struct sw_test_proc disc, srv;
static const char *disc_url;

/* ---------- processes ---------- */

static int
group_setup(void **state)
{
	(void)state;
	sw_test_libevent_watch();
	if (sw_test_relay_start(&base, &disc, &srv, 1) == -1)
		return -1;
	disc_url = disc.url;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	sw_test_relay_stop(base, &disc, &srv, 1);
	return 0;
}

/* ---------- two clients, each with its adapter registry ---------- */

struct peer {
	struct sw_keypair kp;
	struct dmsg_client *c;
	struct cxo_dmsg *d;
};

static int
both_registered(void *arg)
{
	struct peer *p = arg;

	return dmsg_client_registered(p[0].c) && dmsg_client_registered(p[1].c);
}

static void
peers_start(struct peer p[2])
{
	for (int i = 0; i < 2; i++) {
		struct dmsg_client_opts o;

		memset(&o, 0, sizeof(o));
		o.discovery = disc_url;
		o.backoff_min_ms = 100;
		o.backoff_max_ms = 1000;
		sw_keypair_generate(&p[i].kp);
		p[i].c = dmsg_client_new(base, &p[i].kp, &o, "test");
		assert_non_null(p[i].c);
		assert_int_equal(dmsg_client_start(p[i].c), 0);
		p[i].d = cxo_dmsg_new(base, p[i].c, "test");
		assert_non_null(p[i].d);
	}
	assert_int_equal(sw_test_run_until_fn(base, both_registered, p, WAIT_MS), 0);
}

static int
no_links(void *arg)
{
	struct peer *p = arg;

	return cxo_dmsg_links(p[0].d) == 0 && cxo_dmsg_links(p[1].d) == 0;
}

static void
peers_stop(struct peer p[2])
{
	for (int i = 0; i < 2; i++) {
		cxo_dmsg_free(p[i].d);
		dmsg_client_free(p[i].c);
	}
	sw_test_run_for(base, 50); /* let freed bufferevents finish */
	/* And libevent saw none misused (an event on a freed one, "too few references"). */
	assert_int_equal(sw_test_libevent_warnings(), 0);
}

/* ---------- CXO over dmsg ---------- */

struct seen {
	int snapshots;
	int updates;
	size_t nch;
	char path[128];
};

static void
on_snapshot(struct cxo_sub *s, void *arg)
{
	(void)s;
	((struct seen *)arg)->snapshots++;
}

static void
on_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	struct seen *w = arg;

	(void)s;
	w->updates++;
	w->nch = n;
	snprintf(w->path, sizeof(w->path), "%s", ch[0].path);
}

static int
count_leaf(const char *path, const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)data;
	(void)len;
	(*(size_t *)arg)++;
	return 0;
}

struct qres {
	int done;
	enum cxo_source src;
	size_t n;
};

static void
on_answer(const struct cxo_answer *a, void *arg)
{
	struct qres *r = arg;

	r->done = 1;
	r->src = a->source;
	r->n = a->nleaves;
}

static void
test_cxo_snapshot_and_update(void **state)
{
	struct peer p[2];
	struct cxo_pub *pub;
	struct cxo_feed *f;
	struct cxo_feed_opts fo;
	struct cxo_sub_opts so;
	struct cxo_dmsg_target t;
	struct cxo_sub *s;
	struct seen w = {0};
	struct cxo_mgr_opts mo;
	struct cxo_mgr *m;
	struct cxo_query q;
	struct qres r = {0};
	char path[128];
	size_t n = 0;

	(void)state;
	peers_start(p);
	pub = cxo_pub_new(base, "test");
	assert_non_null(pub);
	memset(&fo, 0, sizeof(fo));
	fo.kp = &p[0].kp;
	fo.port = FEED_PORT;
	f = cxo_feed_new(pub, &fo);
	assert_non_null(f);
	for (int i = 0; i < 10000; i++) {
		snprintf(path, sizeof(path), "leaves/%02x/%08d", (unsigned)(i % 256), i);
		assert_int_equal(cxo_feed_put(f, path, path, strlen(path)), 0);
	}
	assert_int_equal(cxo_dmsg_serve(p[0].d, pub, FEED_PORT), 0);

	memset(&t, 0, sizeof(t));
	t.d = p[1].d;
	memcpy(t.pk, p[0].kp.pk, SW_PK_LEN);
	t.port = FEED_PORT;
	memset(&so, 0, sizeof(so));
	so.svc = "test";
	memcpy(so.feed_pk, p[0].kp.pk, SW_PK_LEN);
	so.feed_port = FEED_PORT;
	so.dial = cxo_dmsg_sub_dial;
	so.dial_arg = &t;
	so.backoff_ms = 100;
	so.cbs.snapshot = on_snapshot;
	so.cbs.update = on_update;
	so.arg = &w;
	s = cxo_sub_new(base, &so);
	assert_non_null(s);
	assert_int_equal(sw_test_run_until(base, &w.snapshots, WAIT_MS), 0);
	assert_int_equal(cxo_sub_walk(s, NULL, count_leaf, &n), 10000);
	assert_int_equal(cxo_dmsg_links(p[0].d), 1);
	assert_int_equal(cxo_dmsg_links(p[1].d), 1);

	assert_int_equal(cxo_feed_put(f, "leaves/07/00000007", "changed", 7), 0);
	assert_int_equal(sw_test_run_until(base, &w.updates, WAIT_MS), 0);
	assert_int_equal(w.nch, 1);
	assert_string_equal(w.path, "leaves/07/00000007");

	/* The manager over the same transport: HTTP-less, so the feed answers once it has it. */
	memset(&mo, 0, sizeof(mo));
	mo.svc = "test";
	mo.dial = cxo_dmsg_dial;
	mo.dial_arg = p[1].d;
	m = cxo_mgr_new(base, &mo);
	assert_non_null(m);
	memset(&q, 0, sizeof(q));
	q.pk = p[0].kp.pk;
	q.port = FEED_PORT;
	q.prefix = "leaves/07";
	for (int tries = 0; tries < 100 && r.src != CXO_SRC_FEED; tries++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(cxo_mgr_query(m, &q, on_answer, &r), 0);
		assert_int_equal(sw_test_run_until(base, &r.done, WAIT_MS), 0);
		if (r.src != CXO_SRC_FEED)
			sw_test_run_for(base, 100);
	}
	assert_int_equal(r.src, CXO_SRC_FEED);
	assert_true(r.n >= 39);

	/* Either side letting go frees both adapters. */
	cxo_mgr_free(m);
	cxo_sub_free(s);
	assert_int_equal(sw_test_run_until_fn(base, no_links, p, WAIT_MS), 0);
	cxo_pub_free(pub);
	peers_stop(p);
}

/* ---------- the adapter against a raw stream ---------- */

struct raw {
	struct dmsg_stream *st;
	struct evbuffer *in;
	int eof;
	int closed;
	enum dmsg_stream_end why;
	int pause;
};

static void
raw_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	(void)st;
	evbuffer_add(((struct raw *)arg)->in, data, len);
}

static void
raw_eof(struct dmsg_stream *st, void *arg)
{
	(void)st;
	((struct raw *)arg)->eof = 1;
}

static void
raw_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	struct raw *r = arg;

	(void)st;
	r->closed = 1;
	r->why = why;
}

static const struct dmsg_stream_cbs raw_cbs = {
	.read = raw_read,
	.eof = raw_eof,
	.closed = raw_closed,
};

static void
raw_accept(struct dmsg_listener *l, struct dmsg_stream *st, void *arg)
{
	struct raw *r = arg;

	(void)l;
	r->st = st;
	dmsg_stream_pause_read(st, r->pause);
	dmsg_stream_set_cbs(st, &raw_cbs, r);
}

struct user {
	struct evbuffer *in;
	int eof;
	int error;
	int err;
};

static void
user_read(struct bufferevent *bev, void *arg)
{
	evbuffer_add_buffer(((struct user *)arg)->in, bufferevent_get_input(bev));
}

static void
user_event(struct bufferevent *bev, short what, void *arg)
{
	struct user *u = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF)
		u->eof = 1;
	if (what & BEV_EVENT_ERROR) {
		u->error = 1;
		u->err = errno;
	}
}

static struct bufferevent *
user_dial(struct peer *p, const uint8_t *pk, struct user *u)
{
	struct bufferevent *bev = cxo_dmsg_dial(base, pk, RAW_PORT, p->d);

	assert_non_null(bev);
	memset(u, 0, sizeof(*u));
	u->in = evbuffer_new();
	bufferevent_setcb(bev, user_read, NULL, user_event, u);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return bev;
}

static void
raw_reset(struct raw *r)
{
	struct evbuffer *in = r->in;

	evbuffer_drain(in, evbuffer_get_length(in));
	memset(r, 0, sizeof(*r));
	r->in = in;
}

static int
raw_has(void *arg)
{
	struct raw *r = arg;

	return r->st != NULL && evbuffer_get_length(r->in) >= 5;
}

static void
test_ends(void **state)
{
	struct peer p[2];
	struct raw r;
	struct user u;
	struct bufferevent *bev;
	struct dmsg_listener *l;
	uint8_t nobody[SW_PK_LEN];
	char buf[16];

	(void)state;
	peers_start(p);
	memset(&r, 0, sizeof(r));
	r.in = evbuffer_new();
	l = dmsg_client_listen(p[0].c, RAW_PORT, raw_accept, &r);
	assert_non_null(l);

	/* Bytes both ways; the peer's CLOSE arrives as EOF after its last byte. */
	bev = user_dial(&p[1], p[0].kp.pk, &u);
	bufferevent_write(bev, "hello", 5);
	assert_int_equal(sw_test_run_until_fn(base, raw_has, &r, WAIT_MS), 0);
	assert_int_equal(evbuffer_remove(r.in, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	dmsg_stream_write(r.st, "world", 5);
	dmsg_stream_shutdown(r.st);
	assert_int_equal(sw_test_run_until(base, &u.eof, WAIT_MS), 0);
	assert_int_equal(evbuffer_remove(u.in, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(u.error, 0);
	/* The caller's free is our CLOSE: the stream ends cleanly, both adapters go. */
	bufferevent_free(bev);
	assert_int_equal(sw_test_run_until(base, &r.closed, WAIT_MS), 0);
	assert_int_equal(r.eof, 1);
	assert_int_equal(r.why, DMSG_END_DONE);
	assert_int_equal(sw_test_run_until_fn(base, no_links, p, WAIT_MS), 0);
	dmsg_stream_free(r.st);
	evbuffer_free(u.in);

	/* The caller frees first: the peer gets its last bytes, then EOF. */
	raw_reset(&r);
	bev = user_dial(&p[1], p[0].kp.pk, &u);
	bufferevent_write(bev, "hi!!!", 5);
	assert_int_equal(sw_test_run_until_fn(base, raw_has, &r, WAIT_MS), 0);
	bufferevent_write(bev, "bye!!", 5);
	bufferevent_free(bev);
	assert_int_equal(sw_test_run_until(base, &r.eof, WAIT_MS), 0);
	assert_int_equal(evbuffer_get_length(r.in), 10);
	dmsg_stream_shutdown(r.st);
	assert_int_equal(sw_test_run_until(base, &r.closed, WAIT_MS), 0);
	assert_int_equal(r.why, DMSG_END_DONE);
	assert_int_equal(sw_test_run_until_fn(base, no_links, p, WAIT_MS), 0);
	dmsg_stream_free(r.st);
	evbuffer_free(u.in);

	/* A reset by the peer is an error event. */
	raw_reset(&r);
	bev = user_dial(&p[1], p[0].kp.pk, &u);
	bufferevent_write(bev, "12345", 5);
	assert_int_equal(sw_test_run_until_fn(base, raw_has, &r, WAIT_MS), 0);
	dmsg_stream_free(r.st); /* resets */
	assert_int_equal(sw_test_run_until(base, &u.error, WAIT_MS), 0);
	assert_int_equal(u.err, ECONNRESET);
	assert_int_equal(cxo_dmsg_links(p[1].d), 1); /* until the caller frees its end */
	bufferevent_free(bev);
	assert_int_equal(sw_test_run_until_fn(base, no_links, p, WAIT_MS), 0);
	evbuffer_free(u.in);

	/* Our reset reaches the peer: the owner frees the registry under a live stream. */
	raw_reset(&r);
	bev = user_dial(&p[1], p[0].kp.pk, &u);
	bufferevent_write(bev, "12345", 5);
	assert_int_equal(sw_test_run_until_fn(base, raw_has, &r, WAIT_MS), 0);
	cxo_dmsg_free(p[1].d);
	p[1].d = cxo_dmsg_new(base, p[1].c, "test");
	assert_int_equal(sw_test_run_until(base, &r.closed, WAIT_MS), 0);
	assert_int_equal(r.why, DMSG_END_RESET);
	assert_int_equal(sw_test_run_until(base, &u.error, WAIT_MS), 0);
	bufferevent_free(bev);
	dmsg_stream_free(r.st);
	evbuffer_free(u.in);

	/*
	 * The caller frees its end and, before the loop runs (so before its
	 * free hook tells the adapter), the owner frees the registry: the
	 * peer's stream ends, and the adapter does not touch the end its
	 * caller freed (an event on it would unlink it twice: libevent's "too
	 * few references" warning).  The link goes with the hook (no leak).
	 */
	raw_reset(&r);
	bev = user_dial(&p[1], p[0].kp.pk, &u);
	bufferevent_write(bev, "12345", 5);
	assert_int_equal(sw_test_run_until_fn(base, raw_has, &r, WAIT_MS), 0);
	bufferevent_free(bev);
	cxo_dmsg_free(p[1].d);
	p[1].d = cxo_dmsg_new(base, p[1].c, "test");
	assert_int_equal(sw_test_run_until(base, &r.closed, WAIT_MS), 0);
	assert_int_equal(r.why, DMSG_END_RESET);
	assert_int_equal(u.error, 0);
	assert_int_equal(sw_test_libevent_warnings(), 0);
	dmsg_stream_free(r.st);
	evbuffer_free(u.in);

	/* A dial nobody answers is an error event too. */
	randombytes_buf(nobody, sizeof(nobody));
	bev = user_dial(&p[1], nobody, &u);
	assert_int_equal(sw_test_run_until(base, &u.error, WAIT_MS), 0);
	assert_int_equal(u.err, ECONNREFUSED);
	bufferevent_free(bev);
	assert_int_equal(sw_test_run_until_fn(base, no_links, p, WAIT_MS), 0);
	evbuffer_free(u.in);

	evbuffer_free(r.in);
	dmsg_listener_free(l);
	peers_stop(p);
}

/* ---------- backpressure ---------- */

static uint8_t *big;

struct feeder {
	struct dmsg_stream *st;
	size_t off;
};

static void
feed_more(struct dmsg_stream *st, struct feeder *fd)
{
	(void)st;
	while (fd->off < BIG && dmsg_stream_queued(fd->st) < (1u << 20)) {
		size_t n = BIG - fd->off < 65536 ? BIG - fd->off : 65536;

		assert_int_equal(dmsg_stream_write(fd->st, big + fd->off, n), 0);
		fd->off += n;
	}
}

static int
user_got_all(void *arg)
{
	return evbuffer_get_length(((struct user *)arg)->in) == BIG;
}

static int
raw_got_all(void *arg)
{
	return evbuffer_get_length(((struct raw *)arg)->in) == BIG;
}

static void
test_backpressure(void **state)
{
	struct peer p[2];
	struct raw r;
	struct user u;
	struct bufferevent *bev;
	struct dmsg_listener *l;
	struct dmsg_stream_stats ss;
	struct feeder fd = {0};

	(void)state;
	big = malloc(BIG);
	assert_non_null(big);
	randombytes_buf(big, BIG);
	peers_start(p);
	memset(&r, 0, sizeof(r));
	r.in = evbuffer_new();
	l = dmsg_client_listen(p[0].c, RAW_PORT, raw_accept, &r);
	assert_non_null(l);

	/* Peer -> caller while the caller does not read: the peer is held back. */
	bev = user_dial(&p[1], p[0].kp.pk, &u);
	bufferevent_write(bev, "go!!!", 5);
	assert_int_equal(sw_test_run_until_fn(base, raw_has, &r, WAIT_MS), 0);
	bufferevent_disable(bev, EV_READ);
	fd.st = r.st;
	for (int i = 0; i < 75; i++) {
		feed_more(r.st, &fd);
		sw_test_run_for(base, 20);
	}
	dmsg_stream_stats(r.st, &ss);
	/* Held: the adapter (256 KiB + 64 KiB), one window and the session's buffers. */
	assert_true(ss.sent < (4u << 20));
	assert_true(ss.queued > 0);
	bufferevent_enable(bev, EV_READ);
	for (int i = 0; i < 600 && !user_got_all(&u); i++) {
		feed_more(r.st, &fd);
		sw_test_run_for(base, 20);
	}
	assert_int_equal(evbuffer_get_length(u.in), BIG);
	assert_int_equal(memcmp(evbuffer_pullup(u.in, -1), big, BIG), 0);

	/* Caller -> peer while the peer does not read: the caller's output is held. */
	dmsg_stream_pause_read(r.st, 1);
	evbuffer_drain(r.in, evbuffer_get_length(r.in));
	bufferevent_write(bev, big, BIG);
	sw_test_run_for(base, 1500);
	assert_true(evbuffer_get_length(bufferevent_get_output(bev)) > BIG - (4u << 20));
	dmsg_stream_pause_read(r.st, 0);
	assert_int_equal(sw_test_run_until_fn(base, raw_got_all, &r, WAIT_MS), 0);
	assert_int_equal(memcmp(evbuffer_pullup(r.in, -1), big, BIG), 0);

	bufferevent_free(bev);
	dmsg_stream_shutdown(r.st);
	assert_int_equal(sw_test_run_until(base, &r.closed, WAIT_MS), 0);
	assert_int_equal(sw_test_run_until_fn(base, no_links, p, WAIT_MS), 0);
	dmsg_stream_free(r.st);
	evbuffer_free(u.in);
	evbuffer_free(r.in);
	dmsg_listener_free(l);
	peers_stop(p);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cxo_snapshot_and_update),
		cmocka_unit_test(test_ends),
		cmocka_unit_test(test_backpressure),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
