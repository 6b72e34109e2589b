/*
 * test_dmsg_session: two sessions over a socketpair in one event loop: the
 * handshake, frames both ways, the keep-alive, a wrong server key, garbage,
 * malformed frames, the handshake deadline, pause/resume, the drained
 * callback, and big frames arriving cut anywhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "crypto.h"
#include "dmsg_session.h"
#include "dmsg_wire.h"
#include "noise.h"
#include "tests/lib/testutil.h"

struct end {
	struct dmsg_session *s;
	int ready;
	int closed;
	char reason[64];
	int frames;
	uint8_t last_type;
	uint32_t last_sid;
	size_t last_len;
	size_t bytes;
	int drained;
	int check;     /* frames carry their index and a pattern: count the bad ones */
	int bad;
};

static struct sw_keypair ckp, skp;

static void
on_ready(struct dmsg_session *s, void *arg)
{
	struct end *e = arg;

	(void)s;
	e->ready = 1;
}

/* Frame i: its index, then bytes (i * 7 + k) & 0xff; sizes cycle through big and small. */
static size_t
frame_len(uint32_t i)
{
	static const size_t lens[] = {DMSG_MAX_PAYLOAD, 5, DMSG_MAX_PAYLOAD, 4093, 4099, 30000};

	return lens[i % (sizeof(lens) / sizeof(lens[0]))];
}

static void
frame_fill(uint8_t *p, uint32_t i)
{
	size_t len = frame_len(i);

	sw_put_u32(p, i);
	for (size_t k = 4; k < len; k++)
		p[k] = (uint8_t)(i * 7 + k);
}

static int
frame_bad(const uint8_t *p, size_t len, uint32_t i)
{
	if (len != frame_len(i) || sw_get_u32(p) != i)
		return 1;
	for (size_t k = 4; k < len; k++)
		if (p[k] != (uint8_t)(i * 7 + k))
			return 1;
	return 0;
}

static void
on_frame(struct dmsg_session *s, uint8_t type, uint32_t sid, const uint8_t *p, size_t len,
    void *arg)
{
	struct end *e = arg;

	(void)s;
	(void)p;
	e->frames++;
	e->last_type = type;
	e->last_sid = sid;
	e->last_len = len;
	e->bytes += len;
	if (e->check)
		e->bad += frame_bad(p, len, (uint32_t)e->frames - 1);
}

static void
on_closed(struct dmsg_session *s, const char *reason, void *arg)
{
	struct end *e = arg;

	(void)s;
	e->closed = 1;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static void
on_drained(struct dmsg_session *s, void *arg)
{
	struct end *e = arg;

	(void)s;
	e->drained++;
}

static const struct dmsg_session_cbs cbs = {on_ready, on_frame, on_closed, on_drained};

struct pair {
	struct event_base *base;
	struct end c, s;
	int fd[2];
};

static int
setup(void **state)
{
	(void)state;
	if (sw_crypto_init() == -1)
		return -1;
	sw_keypair_generate(&ckp);
	sw_keypair_generate(&skp);
	return 0;
}

static void
pair_open(struct pair *p, const uint8_t *server_pk, const struct dmsg_session_opts *opts)
{
	struct bufferevent *a, *b;

	memset(p, 0, sizeof(*p));
	p->base = event_base_new();
	assert_non_null(p->base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	evutil_make_socket_nonblocking(p->fd[0]);
	evutil_make_socket_nonblocking(p->fd[1]);
	a = bufferevent_socket_new(p->base, p->fd[0], BEV_OPT_CLOSE_ON_FREE);
	b = bufferevent_socket_new(p->base, p->fd[1], BEV_OPT_CLOSE_ON_FREE);
	p->c.s = dmsg_session_new(p->base, a, 1, &ckp, server_pk, &cbs, &p->c, opts, "test");
	p->s.s = dmsg_session_new(p->base, b, 0, &skp, NULL, &cbs, &p->s, opts, "test");
	assert_non_null(p->c.s);
	assert_non_null(p->s.s);
}

static void
pair_close(struct pair *p)
{
	dmsg_session_free(p->c.s);
	dmsg_session_free(p->s.s);
	event_base_free(p->base);
}

static int
both_ready(void *arg)
{
	struct pair *p = arg;

	return p->c.ready && p->s.ready;
}

static void
test_handshake_and_frames(void **state)
{
	struct pair p;
	uint8_t win[4];

	(void)state;
	pair_open(&p, skp.pk, NULL);
	assert_int_equal(dmsg_session_send(p.c.s, DMSG_DATA, 1, "x", 1), -1); /* not ready */
	assert_int_equal(sw_test_run_until_fn(p.base, both_ready, &p, 2000), 0);
	assert_memory_equal(dmsg_session_remote_pk(p.s.s), ckp.pk, SW_PK_LEN);
	assert_memory_equal(dmsg_session_remote_pk(p.c.s), skp.pk, SW_PK_LEN);
	assert_true(dmsg_session_is_initiator(p.c.s));
	assert_false(dmsg_session_is_initiator(p.s.s));

	sw_put_u32(win, 1000);
	assert_int_equal(dmsg_session_send(p.c.s, DMSG_WINDOW, 7, win, 4), 0);
	assert_int_equal(dmsg_session_send(p.s.s, DMSG_DATA, 8, "hello", 5), 0);
	assert_int_equal(sw_test_run_until(p.base, &p.s.frames, 2000), 0);
	assert_int_equal(p.s.last_type, DMSG_WINDOW);
	assert_int_equal(p.s.last_sid, 7);
	assert_int_equal(sw_test_run_until(p.base, &p.c.frames, 2000), 0);
	assert_int_equal(p.c.last_type, DMSG_DATA);
	assert_int_equal(p.c.last_len, 5);
	/* Largest payload passes, one more byte is refused. */
	{
		static uint8_t big[DMSG_MAX_PAYLOAD + 1];

		assert_int_equal(dmsg_session_send(p.c.s, DMSG_OPEN, 9, big, DMSG_MAX_PAYLOAD), 0);
		assert_int_equal(dmsg_session_send(p.c.s, DMSG_OPEN, 9, big, DMSG_MAX_PAYLOAD + 1),
		    -1);
		p.s.frames = 0;
		assert_int_equal(sw_test_run_until(p.base, &p.s.frames, 2000), 0);
		assert_int_equal(p.s.last_len, DMSG_MAX_PAYLOAD);
	}
	pair_close(&p);
}

static void
test_wrong_server_key(void **state)
{
	struct pair p;
	struct sw_keypair other;

	(void)state;
	sw_keypair_generate(&other);
	pair_open(&p, other.pk, NULL);
	assert_int_equal(sw_test_run_until(p.base, &p.s.closed, 2000), 0);
	assert_false(p.s.ready);
	pair_close(&p);
}

static void
test_keepalive(void **state)
{
	struct pair p;
	struct dmsg_session_opts o = {0, 50, 300, 0};

	(void)state;
	pair_open(&p, skp.pk, &o);
	assert_int_equal(sw_test_run_until_fn(p.base, both_ready, &p, 2000), 0);
	/* PINGs and PONGs keep both open well past the idle limit. */
	sw_test_run_for(p.base, 700);
	assert_false(p.c.closed);
	assert_false(p.s.closed);
	assert_int_equal(p.c.frames + p.s.frames, 0); /* handled inside */
	/*
	 * A session we stopped reading is not idle, however long: its silence
	 * is ours (the server pauses a sender behind a congested destination).
	 * Its own PINGs keep the peer's end open too.
	 */
	dmsg_session_pause(p.c.s, 1);
	sw_test_run_for(p.base, 700);
	assert_false(p.c.closed);
	assert_false(p.s.closed);
	/* Reading again restarts the idle clock: still open a full period on. */
	dmsg_session_pause(p.c.s, 0);
	sw_test_run_for(p.base, 200);
	assert_false(p.c.closed);
	assert_false(p.s.closed);
	pair_close(&p);
}

static void
test_handshake_deadline(void **state)
{
	struct pair p;
	struct dmsg_session_opts o = {200, 0, 0, 0};

	(void)state;
	pair_open(&p, skp.pk, &o);
	dmsg_session_pause(p.s.s, 1); /* the responder never reads message 1 */
	assert_int_equal(sw_test_run_until(p.base, &p.c.closed, 2000), 0);
	assert_string_equal(p.c.reason, "handshake timeout");
	pair_close(&p);
}

static void
test_garbage_and_bad_frames(void **state)
{
	struct pair p;
	struct bufferevent *raw;
	int fd[2];
	struct end e = {0};
	struct event_base *base;
	const uint8_t junk[] = {0x00, 0x30, 1, 2, 3};

	(void)state;
	/* Garbage instead of a handshake. */
	base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	evutil_make_socket_nonblocking(fd[1]);
	raw = bufferevent_socket_new(base, fd[1], BEV_OPT_CLOSE_ON_FREE);
	e.s = dmsg_session_new(base, raw, 0, &skp, NULL, &cbs, &e, NULL, "test");
	assert_int_equal(write(fd[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_int_equal(write(fd[0], "\x00\x30", 2), 2);
	for (int i = 0; i < 48; i++)
		assert_int_equal(write(fd[0], "A", 1), 1);
	assert_int_equal(sw_test_run_until(base, &e.closed, 2000), 0);
	assert_false(e.ready);
	dmsg_session_free(e.s);
	close(fd[0]);
	event_base_free(base);

	/* Malformed frames close the session: WINDOW with 3 bytes, stream 0 DATA, type 0x0a. */
	for (int k = 0; k < 3; k++) {
		pair_open(&p, skp.pk, NULL);
		assert_int_equal(sw_test_run_until_fn(p.base, both_ready, &p, 2000), 0);
		if (k == 0)
			dmsg_session_send(p.c.s, DMSG_WINDOW, 1, "abc", 3);
		else if (k == 1)
			dmsg_session_send(p.c.s, DMSG_DATA, 0, "abc", 3);
		else
			dmsg_session_send(p.c.s, 0x0a, 1, NULL, 0);
		assert_int_equal(sw_test_run_until(p.base, &p.s.closed, 2000), 0);
		assert_int_equal(p.s.frames, 0);
		pair_close(&p);
	}
}

static size_t want_bytes;

static int
got_all(void *arg)
{
	const struct end *e = arg;

	return e->bytes >= want_bytes;
}

static void
test_pause_and_drained(void **state)
{
	struct pair p;
	static uint8_t chunk[60000];
	size_t sent = 0;

	(void)state;
	pair_open(&p, skp.pk, NULL);
	assert_int_equal(sw_test_run_until_fn(p.base, both_ready, &p, 2000), 0);
	dmsg_session_pause(p.s.s, 1);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(dmsg_session_send(p.c.s, DMSG_DATA, 1, chunk, 60000), 0);
		sent += 60000;
	}
	assert_true(dmsg_session_outbuf(p.c.s) > 64 * 1024);
	sw_test_run_for(p.base, 100);
	assert_int_equal(p.s.frames, 0);
	dmsg_session_pause(p.s.s, 0);
	assert_int_equal(sw_test_run_until(p.base, &p.c.drained, 3000), 0);
	want_bytes = sent;
	assert_int_equal(sw_test_run_until_fn(p.base, got_all, &p.s, 3000), 0);
	assert_int_equal(p.s.bytes, sent);
	pair_close(&p);
}

/*
 * Between the two sessions a pump passes the client's bytes on in pieces of
 * 1, 4095, 4097, 30001, 65537 and 7 bytes, one piece per loop turn, so
 * frames arrive cut at every kind of place (inside the length, just past a
 * 4 KiB read, several frames at once); the server's bytes pass whole.
 */
struct pump {
	struct bufferevent *c, *s; /* the pump's ends of the two socketpairs */
	struct event *next;
	unsigned piece;
};

static void
pump_piece(evutil_socket_t fd, short what, void *arg)
{
	static const size_t pieces[] = {1, 4095, 4097, 30001, 65537, 7};
	struct pump *pu = arg;
	struct evbuffer *in = bufferevent_get_input(pu->c);

	(void)fd;
	(void)what;
	evbuffer_remove_buffer(in, bufferevent_get_output(pu->s),
	    pieces[pu->piece++ % (sizeof(pieces) / sizeof(pieces[0]))]);
	if (evbuffer_get_length(in) > 0)
		event_active(pu->next, EV_TIMEOUT, 0);
}

static void
pump_c_read(struct bufferevent *bev, void *arg)
{
	struct pump *pu = arg;

	(void)bev;
	if (!event_pending(pu->next, EV_TIMEOUT, NULL))
		event_active(pu->next, EV_TIMEOUT, 0);
}

static void
pump_s_read(struct bufferevent *bev, void *arg)
{
	struct pump *pu = arg;

	evbuffer_add_buffer(bufferevent_get_output(pu->c), bufferevent_get_input(bev));
}

static int
got_frames(void *arg)
{
	const struct end *e = arg;

	return e->frames >= 60 || e->closed;
}

static void
test_big_frames_in_pieces(void **state)
{
	static uint8_t buf[DMSG_MAX_PAYLOAD];
	struct event_base *base;
	struct end c = {0}, s = {0};
	struct pump pu = {0};
	int cfd[2], sfd[2];
	struct bufferevent *cb, *sb;

	(void)state;
	base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cfd), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sfd), 0);
	for (int i = 0; i < 2; i++) {
		evutil_make_socket_nonblocking(cfd[i]);
		evutil_make_socket_nonblocking(sfd[i]);
	}
	pu.c = bufferevent_socket_new(base, cfd[1], BEV_OPT_CLOSE_ON_FREE);
	pu.s = bufferevent_socket_new(base, sfd[0], BEV_OPT_CLOSE_ON_FREE);
	pu.next = event_new(base, -1, 0, pump_piece, &pu);
	assert_non_null(pu.next);
	bufferevent_setcb(pu.c, pump_c_read, NULL, NULL, &pu);
	bufferevent_setcb(pu.s, pump_s_read, NULL, NULL, &pu);
	bufferevent_enable(pu.c, EV_READ | EV_WRITE);
	bufferevent_enable(pu.s, EV_READ | EV_WRITE);
	cb = bufferevent_socket_new(base, cfd[0], BEV_OPT_CLOSE_ON_FREE);
	sb = bufferevent_socket_new(base, sfd[1], BEV_OPT_CLOSE_ON_FREE);
	c.s = dmsg_session_new(base, cb, 1, &ckp, skp.pk, &cbs, &c, NULL, "test");
	s.s = dmsg_session_new(base, sb, 0, &skp, NULL, &cbs, &s, NULL, "test");
	assert_non_null(c.s);
	assert_non_null(s.s);
	assert_int_equal(sw_test_run_until(base, &s.ready, 2000), 0);
	assert_int_equal(sw_test_run_until(base, &c.ready, 2000), 0);
	s.check = 1;
	for (uint32_t i = 0; i < 60; i++) {
		frame_fill(buf, i);
		assert_int_equal(dmsg_session_send(c.s, DMSG_DATA, 1, buf, frame_len(i)), 0);
	}
	assert_int_equal(sw_test_run_until_fn(base, got_frames, &s, 5000), 0);
	assert_false(s.closed);
	assert_int_equal(s.frames, 60);
	assert_int_equal(s.bad, 0);
	dmsg_session_free(c.s);
	dmsg_session_free(s.s);
	bufferevent_free(pu.c);
	bufferevent_free(pu.s);
	event_free(pu.next);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_frames),
		cmocka_unit_test(test_wrong_server_key),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_handshake_deadline),
		cmocka_unit_test(test_garbage_and_bad_frames),
		cmocka_unit_test(test_pause_and_drained),
		cmocka_unit_test(test_big_frames_in_pieces),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
