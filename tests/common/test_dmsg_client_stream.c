/*
 * test_dmsg_client_stream: the stream half of the dmsg client
 * (common/dmsg_stream.c) on its own, two ends joined by an in-memory link
 * instead of sessions and a relay: the KK handshake carried in OPEN and
 * ACCEPT, windows, pausing, half close, and what a hostile peer sends
 * (tampered requests and responses, DATA past the window, bad ciphertext,
 * malformed WINDOW).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "dmsg_stream_int.h"
#include "log.h"

/* One direction of the link: frames queued as type u8 | id u32 | len u32 | payload. */
struct link {
	struct evbuffer *q;
	int congested;
	int detached;
	int waits;
	struct dmsg_stream *waiting;
	uint8_t last_type;
};

static int
l_send(void *arg, uint8_t type, uint32_t id, const void *p, size_t len)
{
	struct link *l = arg;
	uint8_t h[9];

	h[0] = type;
	sw_put_u32(h + 1, id);
	sw_put_u32(h + 5, (uint32_t)len);
	evbuffer_add(l->q, h, sizeof(h));
	evbuffer_add(l->q, p, len);
	l->last_type = type;
	return 0;
}

static int
l_congested(void *arg)
{
	return ((struct link *)arg)->congested;
}

static void
l_wait(void *arg, struct dmsg_stream *st)
{
	struct link *l = arg;

	l->waits++;
	l->waiting = st;
}

static void
l_detach(void *arg, struct dmsg_stream *st)
{
	struct link *l = arg;

	(void)st;
	l->detached = 1;
	l->waiting = NULL;
}

static const struct dmsg_link_ops ops = {l_send, l_congested, l_wait, l_detach};

struct side {
	struct sw_keypair kp;
	struct dmsg_stream_env *env;
	struct link out;
	struct dmsg_stream *st;
	/* application view */
	uint64_t rx;
	crypto_generichash_state h;
	int eof, closed;
	enum dmsg_stream_end why;
};

static struct event_base *base;
static struct side A, B;

static void
a_read(struct dmsg_stream *st, const uint8_t *d, size_t n, void *arg)
{
	struct side *s = arg;

	(void)st;
	s->rx += n;
	crypto_generichash_update(&s->h, d, n);
}

static void
a_eof(struct dmsg_stream *st, void *arg)
{
	(void)st;
	((struct side *)arg)->eof = 1;
}

static void
a_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	struct side *s = arg;

	(void)st;
	s->closed = 1;
	s->why = why;
}

static const struct dmsg_stream_cbs cbs = {a_read, a_eof, a_closed, NULL};

static void
side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	sw_keypair_generate(&s->kp);
	s->env = calloc(1, sizeof(*s->env));
	assert_non_null(s->env);
	s->env->base = base;
	s->env->kp = &s->kp;
	s->env->svc = "test";
	s->env->idle_ms = 120000;
	assert_int_equal(dmsg_stream_env_keys(s->env, &s->kp), 0);
	s->out.q = evbuffer_new();
	crypto_generichash_init(&s->h, NULL, 0, 32);
}

static void
side_free(struct side *s)
{
	if (s->st != NULL) {
		dmsg_stream_free(s->st);
		s->st = NULL;
	}
	evbuffer_free(s->out.q);
	free(s->env);
}

/* Take one frame off a link; 0 when empty. buf holds the payload. */
static int
next_frame(struct link *l, uint8_t *type, uint32_t *id, uint8_t *buf, size_t *len)
{
	uint8_t h[9];

	if (evbuffer_get_length(l->q) < sizeof(h))
		return 0;
	evbuffer_remove(l->q, h, sizeof(h));
	*type = h[0];
	*id = sw_get_u32(h + 1);
	*len = sw_get_u32(h + 5);
	assert_true(*len <= DMSG_MAX_PAYLOAD);
	evbuffer_remove(l->q, buf, *len);
	return 1;
}

static uint8_t fbuf[DMSG_MAX_TRANSPORT];

/* Deliver B's frames to A (the dialer); ACCEPT completes the dial. */
static void
to_a(void)
{
	uint8_t type;
	uint32_t id;
	size_t len;

	while (next_frame(&B.out, &type, &id, fbuf, &len)) {
		if (type == DMSG_ACCEPT)
			assert_int_equal(dmsg_stream_accepted(A.st, fbuf, len), 0);
		else
			assert_int_equal(dmsg_stream_input(A.st, type, fbuf, len), 0);
	}
}

/* Deliver A's frames to B; an OPEN creates B's stream. */
static void
to_b(void)
{
	struct dmsg_stream_req req;
	uint8_t type;
	uint32_t id;
	size_t len;

	while (next_frame(&A.out, &type, &id, fbuf, &len)) {
		if (type == DMSG_OPEN) {
			assert_int_equal(dmsg_stream_check_request(B.env, fbuf, len, &req), 0);
			B.st = dmsg_stream_alloc(B.env);
			assert_non_null(B.st);
			B.st->app_owned = 1;
			dmsg_stream_attach(B.st, &ops, &B.out, 2);
			assert_int_equal(dmsg_stream_answer(B.st, fbuf, len, &req), 0);
			dmsg_stream_set_cbs(B.st, &cbs, &B);
		} else {
			assert_int_equal(dmsg_stream_input(B.st, type, fbuf, len), 0);
		}
	}
}

static void
spin(void)
{
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Move frames both ways until nothing moves. */
static void
settle(void)
{
	for (int i = 0; i < 10000; i++) {
		if (evbuffer_get_length(A.out.q) == 0 && evbuffer_get_length(B.out.q) == 0) {
			spin();
			if (evbuffer_get_length(A.out.q) == 0 &&
			    evbuffer_get_length(B.out.q) == 0)
				return;
		}
		to_b();
		to_a();
		spin();
	}
	fail_msg("link never settles");
}

static int
setup(void **state)
{
	(void)state;
	if (sw_crypto_init() == -1 || (base = event_base_new()) == NULL)
		return -1;
	sw_log_set_level(SW_LOG_ERROR);
	side_init(&A);
	side_init(&B);
	A.st = dmsg_stream_alloc(A.env);
	assert_non_null(A.st);
	A.st->app_owned = 1;
	dmsg_stream_attach(A.st, &ops, &A.out, 1);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	side_free(&A);
	side_free(&B);
	event_base_free(base);
	return 0;
}

static void
open_pair(void)
{
	assert_int_equal(dmsg_stream_open(A.st, B.kp.pk, 10, 50000), 0);
	assert_int_equal(A.out.last_type, DMSG_OPEN);
	to_b();
	assert_non_null(B.st);
	assert_true(dmsg_stream_is_open(B.st));
	assert_memory_equal(dmsg_stream_remote_pk(B.st), A.kp.pk, SW_PK_LEN);
	assert_int_equal(dmsg_stream_remote_port(B.st), 50000);
	assert_int_equal(dmsg_stream_local_port(B.st), 10);
	to_a();
	assert_true(dmsg_stream_is_open(A.st));
	dmsg_stream_set_cbs(A.st, &cbs, &A);
}

static void
test_handshake_and_windows(void **state)
{
	static uint8_t data[3 * 1024 * 1024 + 11];
	struct dmsg_stream_stats sa, sb;
	uint8_t h1[32], h2[32];
	crypto_generichash_state hs;

	(void)state;
	open_pair();
	randombytes_buf(data, sizeof(data));
	crypto_generichash_init(&hs, NULL, 0, 32);
	crypto_generichash_update(&hs, data, sizeof(data));
	assert_int_equal(dmsg_stream_write(A.st, data, sizeof(data)), 0);
	/* one window leaves at once, in DATA frames of at most 65514 bytes */
	dmsg_stream_stats(A.st, &sa);
	assert_true(sa.tx_wire <= DMSG_INITIAL_WINDOW);
	assert_true(sa.tx_wire > DMSG_INITIAL_WINDOW - DMSG_MAX_DATA);
	assert_int_equal(sa.tx_wire - sa.sent, 16 * ((sa.sent + DMSG_MAX_DATA_PLAIN - 1) /
	    DMSG_MAX_DATA_PLAIN));
	/* every round: in flight never above the window */
	for (int i = 0; i < 10000 && B.rx < sizeof(data); i++) {
		to_b();
		to_a();
		dmsg_stream_stats(A.st, &sa);
		assert_true(sa.tx_wire - (sa.tx_granted - DMSG_INITIAL_WINDOW) <=
		    DMSG_INITIAL_WINDOW);
	}
	assert_int_equal(B.rx, sizeof(data));
	crypto_generichash_final(&hs, h1, 32);
	crypto_generichash_final(&B.h, h2, 32);
	assert_memory_equal(h1, h2, 32);
	dmsg_stream_stats(A.st, &sa);
	dmsg_stream_stats(B.st, &sb);
	assert_int_equal(sa.tx_wire, sb.rx_wire);
	assert_int_equal(sa.tx_granted, sb.rx_granted);
	assert_int_equal(sb.received, sizeof(data));
}

static void
test_pause_holds_writer(void **state)
{
	static uint8_t data[1024 * 1024];
	struct dmsg_stream_stats sa, sb;

	(void)state;
	dmsg_stream_pause_read(B.st, 1);
	B.rx = 0;
	assert_int_equal(dmsg_stream_write(A.st, data, sizeof(data)), 0);
	settle();
	dmsg_stream_stats(A.st, &sa);
	dmsg_stream_stats(B.st, &sb);
	/* nothing consumed, nothing granted: A is stuck at the window */
	assert_int_equal(B.rx, 0);
	assert_true(sa.tx_granted - sa.tx_wire <= 16);
	assert_true(sb.buffered <= DMSG_INITIAL_WINDOW);
	assert_true(sa.queued > 0);
	dmsg_stream_pause_read(B.st, 0);
	settle();
	assert_int_equal(B.rx, sizeof(data));
	dmsg_stream_stats(A.st, &sa);
	assert_int_equal(sa.queued, 0);
}

static void
test_half_close(void **state)
{
	(void)state;
	B.rx = 0;
	assert_int_equal(dmsg_stream_write(A.st, "last", 4), 0);
	assert_int_equal(dmsg_stream_shutdown(A.st), 0);
	assert_int_equal(dmsg_stream_write(A.st, "x", 1), -1);
	settle();
	assert_int_equal(B.rx, 4);
	assert_true(B.eof);
	assert_false(B.closed);
	/* B can still talk */
	A.rx = 0;
	assert_int_equal(dmsg_stream_write(B.st, "reply", 5), 0);
	assert_int_equal(dmsg_stream_shutdown(B.st), 0);
	settle();
	assert_int_equal(A.rx, 5);
	assert_true(A.eof && A.closed && B.closed);
	assert_int_equal(A.why, DMSG_END_DONE);
	assert_int_equal(B.why, DMSG_END_DONE);
	assert_true(A.out.detached && B.out.detached);
}

/* A fresh pair for each hostile case. */
static void
fresh(void)
{
	teardown(NULL);
	setup(NULL);
	open_pair();
}

static void
test_data_past_window(void **state)
{
	static uint8_t data[400000];
	struct dmsg_stream_stats sa;
	uint8_t junk[200] = {0};

	(void)state;
	fresh();
	dmsg_stream_pause_read(B.st, 1);
	assert_int_equal(dmsg_stream_write(A.st, data, sizeof(data)), 0);
	to_b();
	dmsg_stream_stats(A.st, &sa);
	assert_true(sa.tx_granted - sa.tx_wire < sizeof(junk));
	/* a peer ignoring the window: B resets the stream */
	assert_int_equal(dmsg_stream_input(B.st, DMSG_DATA, junk, sizeof(junk)), 0);
	assert_int_equal(B.out.last_type, DMSG_RESET);
	spin();
	assert_true(B.closed);
	assert_int_equal(B.why, DMSG_END_PROTOCOL);
	to_a();
	spin();
	assert_true(A.closed);
	assert_int_equal(A.why, DMSG_END_RESET);
}

static void
test_bad_ciphertext_and_frames(void **state)
{
	uint8_t junk[64] = {1, 2, 3};

	(void)state;
	fresh();
	/* a WINDOW of the wrong size is malformed: a session error */
	assert_int_equal(dmsg_stream_input(A.st, DMSG_WINDOW, junk, 3), -1);
	assert_int_equal(dmsg_stream_input(A.st, DMSG_ACCEPT, junk, 3), -1);
	assert_true(dmsg_stream_is_open(A.st));
	/* forged DATA: reset */
	assert_int_equal(dmsg_stream_input(A.st, DMSG_DATA, junk, sizeof(junk)), 0);
	assert_int_equal(A.out.last_type, DMSG_RESET);
	spin();
	assert_int_equal(A.why, DMSG_END_PROTOCOL);
}

static void
test_tampered_open_and_accept(void **state)
{
	struct dmsg_stream_req req;
	struct side C;
	uint8_t type, open[512];
	uint32_t id;
	size_t len, olen;

	(void)state;
	teardown(NULL);
	setup(NULL);
	assert_int_equal(dmsg_stream_open(A.st, B.kp.pk, 10, 50000), 0);
	assert_int_equal(next_frame(&A.out, &type, &id, open, &olen), 1);
	assert_int_equal(type, DMSG_OPEN);
	/* for someone else */
	side_init(&C);
	assert_int_equal(dmsg_stream_check_request(C.env, open, olen, &req), DMSG_REJECT_BAD_REQUEST);
	/* any flipped bit */
	for (size_t i = 0; i < olen; i += 7) {
		open[i] ^= 0x10;
		assert_int_equal(dmsg_stream_check_request(B.env, open, olen, &req),
		    DMSG_REJECT_BAD_REQUEST);
		open[i] ^= 0x10;
	}
	assert_int_equal(dmsg_stream_check_request(B.env, open, olen, &req), 0);
	/* an ACCEPT signed by C, and one with a flipped bit, are refused */
	B.st = dmsg_stream_alloc(C.env);
	B.st->app_owned = 1;
	dmsg_stream_attach(B.st, &ops, &B.out, 2);
	{
		/* C answers a request addressed to B: it cannot pass A's checks */
		struct dmsg_stream_req fake = req;

		memcpy(fake.dst_pk, C.kp.pk, SW_PK_LEN);
		assert_int_equal(dmsg_stream_answer(B.st, open, olen, &fake), -1);
	}
	dmsg_stream_free(B.st);
	B.st = dmsg_stream_alloc(B.env);
	B.st->app_owned = 1;
	dmsg_stream_attach(B.st, &ops, &B.out, 2);
	assert_int_equal(dmsg_stream_answer(B.st, open, olen, &req), 0);
	assert_int_equal(next_frame(&B.out, &type, &id, fbuf, &len), 1);
	assert_int_equal(type, DMSG_ACCEPT);
	fbuf[40] ^= 1;
	assert_int_equal(dmsg_stream_accepted(A.st, fbuf, len), -1);
	side_free(&C);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_windows),
		cmocka_unit_test(test_pause_holds_writer),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_data_past_window),
		cmocka_unit_test(test_bad_ciphertext_and_frames),
		cmocka_unit_test(test_tampered_open_and_accept),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
