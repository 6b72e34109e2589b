/*
 * test_sudph_rel: the sudph retransmission layer between two ends over an
 * in-memory pipe that loses, duplicates and reorders datagrams on a virtual
 * clock.  10,000 packets arrive complete and in order at 5 % and 20 % loss;
 * so do packets up to 65519 bytes, around the fragment boundary (32767,
 * 32768, 32769), every byte checked, with no datagram over SREL_MAX_FRAG;
 * the send queue is bounded, and srel_room() says exactly what srel_send()
 * will take; a paused receiver delivers and acknowledges nothing, its
 * sender stops at its window, and resuming delivers everything in order; acks and seqs outside the window are ignored;
 * fragment sequences a sender would not produce are dropped and counted.
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
	uint8_t *buf;
};

struct end {
	struct srel r;
	struct end *peer;
	struct dg *q;        /* datagrams on their way to this end */
	size_t nq;
	uint32_t next_expected;
	int bad_order;
	const size_t *sizes; /* packet i is sizes[i % nsizes] long (NULL: 4 bytes) */
	size_t nsizes;
	uint8_t *lost_once;  /* non-NULL: the first datagram of each seq is lost */
};

static long long now;
static unsigned loss_pct, dup_pct;
static uint64_t rng = 88172645463325252ull;
static size_t biggest_dg;

/* Packet i's bytes: its number first, every other byte a function of both. */
static void
pattern(uint8_t *p, uint32_t i, size_t len)
{
	for (size_t j = 0; j < len; j++)
		p[j] = (uint8_t)(i * 131u + j * 7u + (j >> 8));
	if (len >= 5)
		sw_put_u32(p + 1, i);
	if (len >= 1)
		p[0] = (uint8_t)(i % 200); /* a packet never starts with a fragment's mark */
}

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
	/* No datagram carries more than SREL_MAX_FRAG bytes of packet. */
	assert_true(len <= SREL_MAX_FRAG);
	if (len > biggest_dg)
		biggest_dg = len;
	d = &to->q[to->nq++];
	d->at = now + 1 + rnd(4); /* 1..4 ms: some reordering */
	d->buf = malloc(SREL_HDR + len);
	assert_non_null(d->buf);
	memcpy(d->buf, hdr, SREL_HDR);
	if (len > 0)
		memcpy(d->buf + SREL_HDR, p, len);
	d->len = SREL_HDR + len;
}

static int
out(void *arg, const uint8_t *hdr, const uint8_t *p, size_t len)
{
	struct end *e = arg;
	uint32_t seq = sw_get_u32(hdr + 8);

	if (rnd(100) < loss_pct)
		return 0;
	if (e->lost_once != NULL && seq != 0 && !e->lost_once[seq]) {
		e->lost_once[seq] = 1;
		return 0;
	}
	enqueue(e->peer, hdr, p, len);
	if (rnd(100) < dup_pct)
		enqueue(e->peer, hdr, p, len);
	return 0;
}

static int
deliver(void *arg, const uint8_t *pkt, size_t len)
{
	static uint8_t want[SREL_MAX_PACKET];
	struct end *e = arg;

	if (e->sizes == NULL) {
		if (len != 4 || sw_get_u32(pkt) != e->next_expected)
			e->bad_order = 1;
	} else {
		size_t n = e->sizes[e->next_expected % e->nsizes];

		pattern(want, e->next_expected, n);
		if (len != n || memcmp(pkt, want, n) != 0)
			e->bad_order = 1;
	}
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
			free(d.buf);
		} else {
			i++;
		}
	}
	srel_flush_ack(&e->r);
	srel_tick(&e->r, now);
}

static void
drain(struct end *e)
{
	for (size_t i = 0; i < e->nq; i++)
		free(e->q[i].buf);
	free(e->q);
}

/* Two ends joined by the pipe, a sending to b. */
static void
pair_new(struct end **ap, struct end **bp)
{
	struct end *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	assert_non_null(a);
	assert_non_null(b);
	a->q = calloc(MAXQ, sizeof(struct dg));
	b->q = calloc(MAXQ, sizeof(struct dg));
	assert_non_null(a->q);
	assert_non_null(b->q);
	a->peer = b;
	b->peer = a;
	srel_init(&a->r, &ops, a);
	srel_init(&b->r, &ops, b);
	*ap = a;
	*bp = b;
}

static void
pair_free(struct end *a, struct end *b)
{
	srel_free(&a->r);
	srel_free(&b->r);
	drain(a);
	drain(b);
	free(a->lost_once);
	free(a);
	free(b);
}

/* n packets a -> b (4-byte counters, or sizes[]) through the lossy pipe. */
static void
run_sized(unsigned loss, unsigned dup, unsigned n, const size_t *sizes, size_t nsizes,
    int lose_each_once)
{
	static uint8_t p[SREL_MAX_PACKET];
	struct end *a, *b;
	unsigned sent = 0;

	pair_new(&a, &b);
	b->sizes = sizes;
	b->nsizes = nsizes;
	if (lose_each_once)
		assert_non_null(a->lost_once = calloc(4 * (size_t)n + 8, 1));
	b->next_expected = 0;
	loss_pct = loss;
	dup_pct = dup;
	biggest_dg = 0;
	now = 1000;
	for (long long end = now + 600000; now < end; now++) {
		/* Keep the window full without overrunning the queue bound. */
		while (sent < n && srel_pending(&a->r) < SREL_WINDOW) {
			size_t len = sizes != NULL ? sizes[sent % nsizes] : 4;

			if (a->r.queued_bytes + len + 8 > SREL_MAX_QUEUED)
				break;
			if (sizes != NULL)
				pattern(p, sent, len);
			else
				sw_put_u32(p, sent);
			assert_int_equal(srel_send(&a->r, p, len, now), 0);
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
	assert_int_equal(b->r.st.bad_fragments, 0);
	if (loss > 0 || lose_each_once)
		assert_true(a->r.st.retransmits + a->r.st.fast_retransmits > 0);
	for (size_t i = 0; sizes != NULL && i < nsizes; i++)
		if (sizes[i] > SREL_MAX_FRAG) {
			/* Fragments were needed, and a datagram came close to the bound. */
			assert_true(a->r.st.fragments > 0);
			assert_true(biggest_dg > SREL_MAX_FRAG - 16);
		}
	pair_free(a, b);
}

static void
run(unsigned loss, unsigned dup, unsigned n)
{
	run_sized(loss, dup, n, NULL, 0, 0);
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

/* Around the fragment boundary and at the limit, mixed with small ones. */
static const size_t sizes[] = {32767, 32768, 32769, SREL_MAX_PACKET, 5, 32765, 32766, 65518,
    40000, 1};

static void
test_large_lossless(void **state)
{
	(void)state;
	run_sized(0, 0, 400, sizes, sizeof(sizes) / sizeof(sizes[0]), 0);
}

static void
test_large_loss_5(void **state)
{
	(void)state;
	run_sized(5, 1, 400, sizes, sizeof(sizes) / sizeof(sizes[0]), 0);
}

static void
test_large_loss_20(void **state)
{
	(void)state;
	run_sized(20, 2, 200, sizes, sizeof(sizes) / sizeof(sizes[0]), 0);
}

/* Every datagram carrying a packet or fragment is lost once: all of them resent. */
static void
test_largest_each_lost_once(void **state)
{
	static const size_t only[] = {SREL_MAX_PACKET};

	(void)state;
	run_sized(0, 0, 50, only, 1, 1);
}

/* ---- fragment sequences a sender would not produce ---- */

struct rx {
	struct srel r;
	uint32_t seq;
	int delivered;
	size_t last_len;
	int free_in_deliver;
};

static int
rx_out(void *arg, const uint8_t *hdr, const uint8_t *p, size_t len)
{
	(void)arg;
	(void)hdr;
	(void)p;
	(void)len;
	return 0;
}

static int
rx_deliver(void *arg, const uint8_t *pkt, size_t len)
{
	struct rx *x = arg;

	(void)pkt;
	x->delivered++;
	x->last_len = len;
	if (x->free_in_deliver) {
		/* The transport goes away from inside deliver, as vtp_rx may do. */
		srel_free(&x->r);
		return -1;
	}
	return 0;
}

static const struct srel_ops rx_ops = {rx_out, rx_deliver};

/* The next in-order datagram: mark (0: none), then n bytes of body. */
static int
feed(struct rx *x, int mark, int total, size_t n)
{
	static uint8_t dg[SREL_HDR + SREL_MAX_FRAG + 8];
	size_t off = SREL_HDR;

	sw_put_u32(dg, 1);
	sw_put_u32(dg + 4, 0);
	sw_put_u32(dg + 8, ++x->seq);
	if (mark != 0)
		dg[off++] = (uint8_t)mark;
	if (total >= 0) {
		sw_put_u16(dg + off, (uint16_t)total);
		off += 2;
	}
	assert_true(off + n <= sizeof(dg));
	memset(dg + off, 0x11, n);
	if (mark == 0 && n > 0)
		dg[off] = 0; /* a whole packet's first byte: a routing type */
	return srel_input(&x->r, dg, off + n, 1);
}

#define F SREL_FRAG_FIRST
#define M SREL_FRAG_MORE
#define W 0 /* a whole packet */

struct hostile {
	const char *name;
	struct {
		int mark, total; /* total -1: no total field */
		size_t n;
	} dg[4];
	int bad; /* fragments counted as bad */
};

static const struct hostile hostile[] = {
	{"more without a first", {{M, -1, 100}}, 1},
	{"first while one is in progress", {{F, 40000, 100}, {F, 40000, 100}, {M, -1, 100}}, 2},
	{"whole packet inside a fragmented one", {{F, 40000, 100}, {W, -1, 100}}, 1},
	{"total over 65519", {{F, SREL_MAX_PACKET + 1, 32765}, {M, -1, 32755}}, 2},
	{"total 65535", {{F, 65535, 32765}, {M, -1, 32767}}, 2},
	{"first longer than its total", {{F, 10, 20}}, 1},
	{"first exactly its total", {{F, 20, 20}}, 1},
	{"more past the total", {{F, 200, 100}, {M, -1, 101}}, 1},
	{"overflows 65519 in continuations", {{F, SREL_MAX_PACKET, 32765}, {M, -1, 30000},
	    {M, -1, 2755}}, 1},
	{"first with no bytes", {{F, 100, 0}, {M, -1, 100}}, 2},
	{"first too short for its total", {{F, -1, 1}, {M, -1, 10}}, 2},
	{"more with no bytes", {{F, 200, 100}, {M, -1, 0}, {M, -1, 100}}, 2},
};

static void
test_hostile_fragments(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		struct rx *x = calloc(1, sizeof(*x));

		assert_non_null(x);
		srel_init(&x->r, &rx_ops, x);
		for (size_t k = 0; k < 4 && (h->dg[k].mark != 0 || h->dg[k].n != 0); k++)
			assert_int_equal(feed(x, h->dg[k].mark, h->dg[k].total, h->dg[k].n), 0);
		if (x->delivered != 0 || x->r.st.bad_fragments != (uint64_t)h->bad)
			fail_msg("%s: delivered %d, bad %llu (want 0, %d)", h->name, x->delivered,
			    (unsigned long long)x->r.st.bad_fragments, h->bad);
		assert_true(x->r.frag_total <= SREL_MAX_PACKET);
		/* Refused, not stuck: a whole packet, then a fragmented one, arrive. */
		assert_int_equal(feed(x, W, -1, 100), 0);
		assert_int_equal(x->delivered, 1);
		assert_int_equal(x->last_len, 100);
		assert_int_equal(feed(x, F, 40000, 32765), 0);
		assert_int_equal(feed(x, M, -1, 40000 - 32765), 0);
		assert_int_equal(x->delivered, 2);
		assert_int_equal(x->last_len, 40000);
		assert_int_equal(x->r.st.bad_fragments, (uint64_t)h->bad);
		srel_free(&x->r);
		free(x);
	}
}

/* A reassembled packet whose deliver frees the srel: nothing touched after. */
static void
test_deliver_frees(void **state)
{
	struct rx *x = calloc(1, sizeof(*x));

	(void)state;
	assert_non_null(x);
	srel_init(&x->r, &rx_ops, x);
	x->free_in_deliver = 1;
	assert_int_equal(feed(x, F, SREL_MAX_PACKET, 32765), 0);
	assert_int_equal(feed(x, M, -1, SREL_MAX_PACKET - 32765), -1);
	assert_int_equal(x->delivered, 1);
	assert_int_equal(x->last_len, SREL_MAX_PACKET);
	free(x);
}

/* What the sender refuses, and that a refused packet leaves nothing queued. */
static void
test_send_refused(void **state)
{
	static uint8_t big[SREL_MAX_PACKET + 1];
	int outs = 0;
	struct srel *r = calloc(1, sizeof(*r));
	static const struct srel_ops cops = {count_out, no_deliver};

	(void)state;
	assert_non_null(r);
	srel_init(r, &cops, &outs);
	assert_int_equal(srel_send(r, big, SREL_MAX_PACKET + 1, 0), -1);
	big[0] = SREL_FRAG_FIRST;
	assert_int_equal(srel_send(r, big, 100, 0), -1);
	big[0] = SREL_FRAG_MORE;
	assert_int_equal(srel_send(r, big, 100, 0), -1);
	assert_int_equal(outs, 0);
	big[0] = 0;
	assert_int_equal(srel_send(r, big, SREL_MAX_PACKET, 0), 0);
	assert_int_equal(outs, 2); /* two fragments */
	assert_int_equal(r->st.fragments, 2);
	/*
	 * Fill the queue until its room holds a first fragment but not the
	 * whole packet: the packet is refused and nothing of it is queued.
	 */
	while (SREL_MAX_QUEUED - r->queued_bytes >= SREL_MAX_PACKET + 41000)
		assert_int_equal(srel_send(r, big, SREL_MAX_PACKET, 0), 0);
	while (SREL_MAX_QUEUED - r->queued_bytes >= 41000)
		assert_int_equal(srel_send(r, big, 1000, 0), 0);
	assert_true(r->qhead != NULL);
	{
		size_t queued = r->queued_bytes;
		uint32_t next = r->next_seq;
		const struct srel_q *tail = r->qtail;

		assert_true(SREL_MAX_QUEUED - queued >= SREL_MAX_FRAG);
		assert_int_equal(srel_send(r, big, SREL_MAX_PACKET, 0), -1);
		assert_int_equal(r->queued_bytes, queued);
		assert_int_equal(r->next_seq, next);
		assert_ptr_equal(r->qtail, tail);
		assert_null(r->qtail->next);
		/* What fits still goes. */
		assert_int_equal(srel_send(r, big, SREL_MAX_FRAG, 0), 0);
	}
	srel_free(r);
	free(r);
}

/* What a packet of len bytes occupies: fragments of at most SREL_MAX_FRAG with their marks. */
static size_t
occupies(size_t len)
{
	size_t off, total;

	if (len <= SREL_MAX_FRAG)
		return len;
	off = SREL_MAX_FRAG - SREL_FIRST_HDR;
	total = SREL_MAX_FRAG;
	while (off < len) {
		size_t take = len - off < SREL_MAX_FRAG - SREL_MORE_HDR ? len - off :
		    SREL_MAX_FRAG - SREL_MORE_HDR;

		total += take + SREL_MORE_HDR;
		off += take;
	}
	return total;
}

/* Nothing acknowledged, sizes around the fragment boundary: room agrees with every send. */
static void
test_room_predicts_send(void **state)
{
	static uint8_t big[SREL_MAX_PACKET];
	static const struct srel_ops cops = {count_out, no_deliver};
	struct srel *r = calloc(1, sizeof(*r));
	int outs = 0, refused = 0;

	(void)state;
	assert_non_null(r);
	srel_init(r, &cops, &outs);
	assert_false(srel_room(r, SREL_MAX_PACKET + 1));
	for (unsigned i = 0; refused < 40 && i < 100000; i++) {
		size_t len = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		size_t before = r->queued_bytes, held = r->queued_bytes + r->inflight_bytes;
		int room = srel_room(r, len);

		if (srel_send(r, big, len, 0) == 0) {
			assert_true(room);
			assert_int_equal(r->queued_bytes + r->inflight_bytes - held, occupies(len));
		} else {
			if (room)
				fail_msg("room for %zu with %zu queued, send refused", len, before);
			assert_int_equal(r->queued_bytes, before);
			refused++;
		}
	}
	assert_int_equal(refused, 40);
	assert_true(r->queued_bytes <= SREL_MAX_QUEUED);
	srel_free(r);
	free(r);
}

static void
test_pause_holds_back(void **state)
{
	uint8_t p[4];
	struct end *a, *b;
	unsigned sent = 0, n = 1000;

	(void)state;
	pair_new(&a, &b);
	loss_pct = dup_pct = 0;
	now = 1000;
	assert_int_equal(srel_pause(&b->r, 1), 0);
	for (; sent < n; sent++) {
		sw_put_u32(p, sent);
		assert_int_equal(srel_send(&a->r, p, sizeof(p), now), 0);
	}
	for (long long end = now + 5000; now < end; now++) {
		step(b);
		step(a);
	}
	/* nothing delivered, nothing acknowledged: the sender stopped at its window */
	assert_int_equal(b->next_expected, 0);
	assert_int_equal(a->r.una, 1);
	assert_true(a->r.next_seq - a->r.una <= SREL_WINDOW);
	assert_true(a->r.queued_bytes > 0);
	assert_int_equal(srel_pause(&b->r, 0), 0);
	for (long long end = now + 60000; now < end; now++) {
		step(b);
		step(a);
		if (b->next_expected == n && srel_pending(&a->r) == 0)
			break;
	}
	assert_int_equal(b->next_expected, n);
	assert_false(b->bad_order);
	assert_int_equal(srel_pending(&a->r), 0);
	pair_free(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lossless),
		cmocka_unit_test(test_loss_5),
		cmocka_unit_test(test_loss_20),
		cmocka_unit_test(test_bounds_and_forged),
		cmocka_unit_test(test_large_lossless),
		cmocka_unit_test(test_large_loss_5),
		cmocka_unit_test(test_large_loss_20),
		cmocka_unit_test(test_largest_each_lost_once),
		cmocka_unit_test(test_hostile_fragments),
		cmocka_unit_test(test_deliver_frees),
		cmocka_unit_test(test_send_refused),
		cmocka_unit_test(test_room_predicts_send),
		cmocka_unit_test(test_pause_holds_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
