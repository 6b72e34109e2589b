/*
 * test_sudph_rel: the sudph retransmission layer between two ends over an
 * in-memory pipe that loses, duplicates and reorders datagrams on a virtual
 * clock.  10,000 packets arrive complete and in order at 5 % and 20 % loss;
 * the send queue is bounded; acks and seqs outside the window are ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dmsg_wire.h"
#include "visor/sudph_rel.h"

#define MAXQ 200000

struct dg {
	long long at;
	size_t len;
	uint8_t buf[64];
};

struct end {
	struct srel r;
	struct end *peer;
	struct dg *q;        /* datagrams on their way to this end */
	size_t nq;
	uint32_t next_expected;
	int bad_order;
};

static long long now;
static unsigned loss_pct, dup_pct;
static uint64_t rng = 88172645463325252ull;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void
enqueue(struct end *to, const uint8_t *hdr, const uint8_t *p, size_t len)
{
	struct dg *d;

	assert_true(to->nq < MAXQ);
	assert_true(SREL_HDR + len <= sizeof(d->buf));
	d = &to->q[to->nq++];
	d->at = now + 1 + rnd(4); /* 1..4 ms: some reordering */
	memcpy(d->buf, hdr, SREL_HDR);
	if (len > 0)
		memcpy(d->buf + SREL_HDR, p, len);
	d->len = SREL_HDR + len;
}

static int
out(void *arg, const uint8_t *hdr, const uint8_t *p, size_t len)
{
	struct end *e = arg;

	if (rnd(100) < loss_pct)
		return 0;
	enqueue(e->peer, hdr, p, len);
	if (rnd(100) < dup_pct)
		enqueue(e->peer, hdr, p, len);
	return 0;
}

static int
deliver(void *arg, const uint8_t *pkt, size_t len)
{
	struct end *e = arg;

	if (len != 4 || sw_get_u32(pkt) != e->next_expected)
		e->bad_order = 1;
	e->next_expected++;
	return 0;
}

static const struct srel_ops ops = {out, deliver};

/* Deliver every datagram due by now; then acks, then retransmissions. */
static void
step(struct end *e)
{
	size_t i = 0;

	while (i < e->nq) {
		if (e->q[i].at <= now) {
			struct dg d = e->q[i];

			e->q[i] = e->q[--e->nq];
			assert_int_equal(srel_input(&e->r, d.buf, d.len, now), 0);
		} else {
			i++;
		}
	}
	srel_flush_ack(&e->r);
	srel_tick(&e->r, now);
}

static void
run(unsigned loss, unsigned dup, unsigned n)
{
	struct end *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	unsigned sent = 0;

	assert_non_null(a);
	assert_non_null(b);
	a->q = calloc(MAXQ, sizeof(struct dg));
	b->q = calloc(MAXQ, sizeof(struct dg));
	a->peer = b;
	b->peer = a;
	srel_init(&a->r, &ops, a);
	srel_init(&b->r, &ops, b);
	b->next_expected = 0;
	loss_pct = loss;
	dup_pct = dup;
	now = 1000;
	for (long long end = now + 600000; now < end; now++) {
		/* Keep the window full without overrunning the queue bound. */
		while (sent < n && srel_pending(&a->r) < SREL_WINDOW) {
			uint8_t p[4];

			sw_put_u32(p, sent);
			assert_int_equal(srel_send(&a->r, p, 4, now), 0);
			sent++;
		}
		step(b);
		step(a);
		if (sent == n && b->next_expected == n && srel_pending(&a->r) == 0)
			break;
	}
	assert_int_equal(b->next_expected, n);
	assert_false(b->bad_order);
	assert_int_equal(srel_pending(&a->r), 0);
	if (loss > 0)
		assert_true(a->r.st.retransmits + a->r.st.fast_retransmits > 0);
	srel_free(&a->r);
	srel_free(&b->r);
	free(a->q);
	free(b->q);
	free(a);
	free(b);
}

static void
test_lossless(void **state)
{
	(void)state;
	run(0, 0, 10000);
}

static void
test_loss_5(void **state)
{
	(void)state;
	run(5, 1, 10000);
}

static void
test_loss_20(void **state)
{
	(void)state;
	run(20, 2, 10000);
}

static int
count_out(void *arg, const uint8_t *hdr, const uint8_t *p, size_t len)
{
	(void)hdr;
	(void)p;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

static int
no_deliver(void *arg, const uint8_t *pkt, size_t len)
{
	(void)arg;
	(void)pkt;
	(void)len;
	fail_msg("nothing should be delivered");
	return 0;
}

static void
test_bounds_and_forged(void **state)
{
	static const struct srel_ops cops = {count_out, no_deliver};
	struct srel *r = calloc(1, sizeof(*r));
	static uint8_t big[65000];
	uint8_t dg[SREL_HDR + 4];
	int outs = 0, full = 0;

	(void)state;
	assert_non_null(r);
	srel_init(r, &cops, &outs);
	/* Nothing acknowledged: the window fills, then the queue, then -1. */
	for (int i = 0; i < 1000 && !full; i++)
		full = srel_send(r, big, sizeof(big), 0) == -1;
	assert_true(full);
	assert_true(r->inflight_bytes <= SREL_MAX_INFLIGHT);
	assert_true(r->queued_bytes <= SREL_MAX_QUEUED);
	/* An ack far beyond what was sent is ignored: nothing is freed. */
	{
		size_t before = r->inflight_bytes;

		sw_put_u32(dg, 1000000);
		sw_put_u32(dg + 4, 0xffffffffu);
		sw_put_u32(dg + 8, 0);
		assert_int_equal(srel_input(r, dg, SREL_HDR, 1), 0);
		assert_int_equal(r->inflight_bytes, before);
	}
	/* A seq beyond the receive window is dropped and counted. */
	sw_put_u32(dg, 1);
	sw_put_u32(dg + 4, 0);
	sw_put_u32(dg + 8, 1 + SREL_WINDOW + 5);
	assert_int_equal(srel_input(r, dg, sizeof(dg), 1), 0);
	assert_int_equal(r->st.out_of_window, 1);
	/* Retransmission on timeout, with backoff. */
	outs = 0;
	srel_tick(r, SREL_RTO_INIT_MS + 1);
	assert_true(outs > 0);
	srel_free(r);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lossless),
		cmocka_unit_test(test_loss_5),
		cmocka_unit_test(test_loss_20),
		cmocka_unit_test(test_bounds_and_forged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
