/*
 * sudph_rel.c: sequence numbers, cumulative and selective acks, a window,
 * retransmission on timeout, in-order delivery (see sudph_rel.h).
 *
 * The one idea: both sides are rings of SREL_WINDOW slots indexed by
 * seq % SREL_WINDOW, and every sequence number a peer sends is checked
 * against the window before it touches a slot, so a forged or stale ack or
 * seq can only be ignored.  (Sequence numbers compare by signed distance;
 * a transport stops sending before they would wrap.)  Fragments of a long
 * packet are packets of their own to everything here but the last step of
 * delivery, which puts them back together in one reused buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "dmsg_wire.h"
#include "sudph_rel.h"

#define SREL_FAST_AFTER 3 /* later packets acked before a hole is resent at once */

static int32_t
dist(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

void
srel_init(struct srel *r, const struct srel_ops *ops, void *arg)
{
	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->arg = arg;
	r->next_seq = r->una = r->rcv_next = 1;
	r->rto = SREL_RTO_INIT_MS;
	r->cwnd = SREL_CWND_INIT;
	r->ssthresh = SREL_WINDOW;
}

/* Packets that may be in flight now. */
static int32_t
window(const struct srel *r)
{
	return r->cwnd < SREL_WINDOW ? (int32_t)r->cwnd : SREL_WINDOW;
}

static void
slot_clear(struct srel_slot *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
}

void
srel_free(struct srel *r)
{
	for (size_t i = 0; i < SREL_WINDOW; i++) {
		slot_clear(&r->tx[i]);
		slot_clear(&r->rx[i]);
	}
	while (r->qhead != NULL) {
		struct srel_q *q = r->qhead;

		r->qhead = q->next;
		free(q);
	}
	r->qtail = NULL;
	r->queued_bytes = r->inflight_bytes = r->held_bytes = 0;
	free(r->frag);
	r->frag = NULL;
	r->frag_len = r->frag_total = 0;
}

static void
make_hdr(struct srel *r, uint8_t hdr[SREL_HDR], uint32_t seq)
{
	uint32_t sack = 0;

	for (uint32_t i = 0; i < 32; i++) {
		const struct srel_slot *s = &r->rx[(r->rcv_next + 1 + i) % SREL_WINDOW];

		if (s->data != NULL && s->seq == r->rcv_next + 1 + i)
			sack |= 1u << i;
	}
	sw_put_u32(hdr, r->rcv_next);
	sw_put_u32(hdr + 4, sack);
	sw_put_u32(hdr + 8, seq);
	r->ack_due = 0;
}

static int
transmit(struct srel *r, struct srel_slot *s, long long now_ms)
{
	uint8_t hdr[SREL_HDR];

	make_hdr(r, hdr, s->seq);
	s->sent_ms = now_ms;
	s->tries++;
	r->st.sent++;
	return r->ops->out(r->arg, hdr, s->data, s->len);
}

/* Move queued packets into the window while it has room. */
static int
fill_window(struct srel *r, long long now_ms)
{
	while (r->qhead != NULL && dist(r->next_seq, r->una) < window(r) &&
	    r->inflight_bytes + r->qhead->len <= SREL_MAX_INFLIGHT) {
		struct srel_q *q = r->qhead;
		struct srel_slot *s = &r->tx[r->next_seq % SREL_WINDOW];

		if ((s->data = malloc(q->len > 0 ? q->len : 1)) == NULL)
			return -1;
		memcpy(s->data, q->data, q->len);
		s->len = q->len;
		s->seq = r->next_seq++;
		s->tries = 0;
		s->fast = 0;
		r->qhead = q->next;
		if (r->qhead == NULL)
			r->qtail = NULL;
		r->queued_bytes -= q->len;
		r->inflight_bytes += q->len;
		free(q);
		if (transmit(r, s, now_ms) == -1)
			return -1;
	}
	return 0;
}

static struct srel_q *
q_new(const uint8_t *mark, size_t mlen, const uint8_t *p, size_t len)
{
	struct srel_q *q = malloc(sizeof(*q) + mlen + len);

	if (q == NULL)
		return NULL;
	q->next = NULL;
	q->len = mlen + len;
	if (mlen > 0)
		memcpy(q->data, mark, mlen);
	if (len > 0)
		memcpy(q->data + mlen, p, len);
	return q;
}

/* The queue bytes and queue entries a packet of len bytes takes once fragmented. */
static size_t
plan(size_t len, size_t *nq)
{
	size_t per, n;

	if (len <= SREL_MAX_FRAG) {
		*nq = 1;
		return len;
	}
	/* the first fragment carries the whole length, the others a mark */
	per = SREL_MAX_FRAG - SREL_MORE_HDR;
	n = 1 + (len - (SREL_MAX_FRAG - SREL_FIRST_HDR) + per - 1) / per;
	*nq = n;
	return len + SREL_FIRST_HDR + (n - 1) * SREL_MORE_HDR;
}

static int
fits(const struct srel *r, size_t len, size_t *bytes, size_t *nq)
{
	if (len > SREL_MAX_PACKET)
		return 0;
	*bytes = plan(len, nq);
	return r->queued_bytes + *bytes <= SREL_MAX_QUEUED &&
	    r->next_seq < UINT32_MAX - SREL_WINDOW - *nq;
}

int
srel_room(const struct srel *r, size_t len)
{
	size_t bytes, nq;

	return fits(r, len, &bytes, &nq);
}

int
srel_send(struct srel *r, const uint8_t *pkt, size_t len, long long now_ms)
{
	static const uint8_t more[SREL_MORE_HDR] = {SREL_FRAG_MORE};
	uint8_t first[SREL_FIRST_HDR] = {SREL_FRAG_FIRST};
	struct srel_q *head = NULL, *last = NULL, *q;
	size_t bytes, nq, off = 0;

	if ((len > 0 && pkt[0] >= SREL_FRAG_FIRST) || !fits(r, len, &bytes, &nq))
		return -1;
	sw_put_u16(first + 1, (uint16_t)len);
	/* Built aside first: a packet is queued whole or not at all. */
	do {
		const uint8_t *mark = len <= SREL_MAX_FRAG ? NULL : off == 0 ? first : more;
		size_t mlen = mark == NULL ? 0 : mark == first ? sizeof(first) : sizeof(more);
		size_t n = len - off < SREL_MAX_FRAG - mlen ? len - off : SREL_MAX_FRAG - mlen;

		if ((q = q_new(mark, mlen, len > 0 ? pkt + off : NULL, n)) == NULL)
			goto fail;
		if (last != NULL)
			last->next = q;
		else
			head = q;
		last = q;
		off += n;
	} while (off < len);
	if (nq > 1)
		r->st.fragments += nq;
	if (r->qtail != NULL)
		r->qtail->next = head;
	else
		r->qhead = head;
	r->qtail = last;
	r->queued_bytes += bytes;
	return fill_window(r, now_ms);
fail:
	while ((q = head) != NULL) {
		head = q->next;
		free(q);
	}
	return -1;
}

static void
rtt_sample(struct srel *r, long long rtt)
{
	/* RFC 6298 2.2/2.3, in whole ms. */
	if (r->srtt == 0) {
		r->srtt = rtt > 0 ? rtt : 1;
		r->rttvar = rtt / 2;
	} else {
		long long d = r->srtt > rtt ? r->srtt - rtt : rtt - r->srtt;

		r->rttvar = (3 * r->rttvar + d) / 4;
		r->srtt = (7 * r->srtt + rtt) / 8;
	}
	r->rto = r->srtt + 4 * r->rttvar;
	if (r->rto < SREL_RTO_MIN_MS)
		r->rto = SREL_RTO_MIN_MS;
	if (r->rto > SREL_RTO_MAX_MS)
		r->rto = SREL_RTO_MAX_MS;
}

static void
acked(struct srel *r, struct srel_slot *s, long long now_ms)
{
	if (s->tries == 1) /* Karn: no sample from a retransmitted packet */
		rtt_sample(r, now_ms - s->sent_ms);
	r->cwnd += r->cwnd < r->ssthresh ? 1.0 : 1.0 / r->cwnd;
	if (r->cwnd > SREL_WINDOW)
		r->cwnd = SREL_WINDOW;
	r->inflight_bytes -= s->len;
	slot_clear(s);
}

static int
on_ack(struct srel *r, uint32_t ack, uint32_t sack, long long now_ms)
{
	int later = 0;

	/* An ack outside what we have sent is stale or forged: ignored. */
	if (dist(ack, r->una) < 0 || dist(ack, r->next_seq) > 0)
		return 0;
	while (dist(r->una, ack) < 0) {
		struct srel_slot *s = &r->tx[r->una % SREL_WINDOW];

		if (s->data != NULL && s->seq == r->una)
			acked(r, s, now_ms);
		r->una++;
	}
	for (uint32_t i = 0; i < 32; i++) {
		uint32_t seq = ack + 1 + i;
		struct srel_slot *s = &r->tx[seq % SREL_WINDOW];

		if (!(sack & (1u << i)) || dist(seq, r->next_seq) >= 0)
			continue;
		later++;
		if (s->data != NULL && s->seq == seq)
			acked(r, s, now_ms);
	}
	/* The first hole, with enough acknowledged after it: lost, resend now. */
	if (later >= SREL_FAST_AFTER && dist(r->una, r->next_seq) < 0) {
		struct srel_slot *s = &r->tx[r->una % SREL_WINDOW];

		if (s->data != NULL && s->seq == r->una && !s->fast) {
			s->fast = 1;
			r->st.fast_retransmits++;
			r->ssthresh = r->cwnd / 2 > 2 ? r->cwnd / 2 : 2;
			r->cwnd = r->ssthresh;
			if (transmit(r, s, now_ms) == -1)
				return -1;
		}
	}
	return fill_window(r, now_ms);
}

/* A fragment the sender would not have sent: it and the packet in progress go. */
static int
bad_fragment(struct srel *r)
{
	r->st.bad_fragments++;
	r->frag_len = r->frag_total = 0;
	return 0;
}

/*
 * One in-order packet or fragment from the peer.  A reassembled packet's
 * buffer is detached while deliver runs: a deliver that frees the
 * transport frees the srel with it, and must not take the buffer along.
 */
static int
take(struct srel *r, uint8_t *p, size_t len)
{
	uint8_t *buf;
	size_t n;

	if (len == 0 || p[0] < SREL_FRAG_FIRST) {
		if (r->frag_total != 0)
			return bad_fragment(r); /* a whole packet inside another one */
		r->st.delivered++;
		return r->ops->deliver(r->arg, p, len);
	}
	if (p[0] == SREL_FRAG_FIRST) {
		if (r->frag_total != 0 || len <= SREL_FIRST_HDR || r->frag == NULL)
			return bad_fragment(r);
		n = sw_get_u16(p + 1);
		if (n > SREL_MAX_PACKET || n <= len - SREL_FIRST_HDR)
			return bad_fragment(r);
		r->frag_total = n;
		r->frag_len = len - SREL_FIRST_HDR;
		memcpy(r->frag, p + SREL_FIRST_HDR, r->frag_len);
		return 0;
	}
	n = len - SREL_MORE_HDR;
	if (r->frag_total == 0 || n == 0 || n > r->frag_total - r->frag_len)
		return bad_fragment(r);
	memcpy(r->frag + r->frag_len, p + SREL_MORE_HDR, n);
	if ((r->frag_len += n) < r->frag_total)
		return 0;
	buf = r->frag;
	n = r->frag_total;
	r->frag = NULL;
	r->frag_len = r->frag_total = 0;
	r->st.delivered++;
	if (r->ops->deliver(r->arg, buf, n) == -1) {
		free(buf);
		return -1;
	}
	if (r->frag == NULL)
		r->frag = buf;
	else
		free(buf);
	return 0;
}

/* Deliver rcv_next and whatever in-order packets are held after it, unless paused. */
static int
deliver_run(struct srel *r)
{
	while (!r->rx_paused) {
		struct srel_slot *s = &r->rx[r->rcv_next % SREL_WINDOW];
		uint8_t *data;
		size_t len;

		if (s->data == NULL || s->seq != r->rcv_next)
			return 0;
		data = s->data;
		len = s->len;
		s->data = NULL;
		r->held_bytes -= len;
		r->rcv_next++;
		if (take(r, data, len) == -1) {
			free(data);
			return -1;
		}
		free(data);
	}
	return 0;
}

int
srel_pause(struct srel *r, int paused)
{
	r->rx_paused = paused != 0;
	return paused ? 0 : deliver_run(r);
}

int
srel_input(struct srel *r, const uint8_t *dg, size_t len, long long now_ms)
{
	uint32_t ack, sack, seq;
	int32_t ahead;

	if (len < SREL_HDR)
		return 0;
	ack = sw_get_u32(dg);
	sack = sw_get_u32(dg + 4);
	seq = sw_get_u32(dg + 8);
	if (on_ack(r, ack, sack, now_ms) == -1)
		return -1;
	if (seq == 0)
		return 0;
	r->ack_due = 1;
	ahead = dist(seq, r->rcv_next);
	if (ahead < 0) {
		r->st.duplicates++;
		return 0;
	}
	if (ahead >= SREL_WINDOW || r->held_bytes + (len - SREL_HDR) > SREL_MAX_HELD) {
		r->st.out_of_window++;
		return 0;
	}
	{
		struct srel_slot *s = &r->rx[seq % SREL_WINDOW];

		if (s->data != NULL) {
			r->st.duplicates++;
			return 0;
		}
		/* The reassembly buffer exists before a first fragment is taken in. */
		if (len > SREL_HDR && dg[SREL_HDR] == SREL_FRAG_FIRST && r->frag == NULL &&
		    (r->frag = malloc(SREL_MAX_PACKET)) == NULL)
			return 0;
		if ((s->data = malloc(len - SREL_HDR > 0 ? len - SREL_HDR : 1)) == NULL)
			return 0;
		memcpy(s->data, dg + SREL_HDR, len - SREL_HDR);
		s->len = len - SREL_HDR;
		s->seq = seq;
		r->held_bytes += s->len;
	}
	return deliver_run(r);
}

int
srel_flush_ack(struct srel *r)
{
	uint8_t hdr[SREL_HDR];

	if (!r->ack_due)
		return 0;
	make_hdr(r, hdr, 0);
	r->st.acks_sent++;
	return r->ops->out(r->arg, hdr, NULL, 0);
}

long long
srel_tick(struct srel *r, long long now_ms)
{
	long long next = -1;
	int32_t budget = window(r), resent = 0;

	for (uint32_t seq = r->una; dist(seq, r->next_seq) < 0; seq++) {
		struct srel_slot *s = &r->tx[seq % SREL_WINDOW];
		long long rto, due;
		int shift;

		if (s->data == NULL || s->seq != seq)
			continue;
		shift = s->tries > 6 ? 5 : s->tries - 1;
		rto = r->rto << (shift > 0 ? shift : 0);
		if (rto > SREL_RTO_MAX_MS * 4)
			rto = SREL_RTO_MAX_MS * 4;
		due = s->sent_ms + rto;
		if (due <= now_ms && resent >= budget) {
			/* The congestion window's worth went this tick: the rest a round trip later. */
			due = now_ms + (r->srtt > 1 ? r->srtt : 1);
		} else if (due <= now_ms) {
			if (resent++ == 0 && now_ms - r->cut_ms >= r->rto) {
				/* A timeout (once per RTO): the path is congested or the peer slow. */
				r->cut_ms = now_ms;
				r->ssthresh = r->cwnd / 2 > 2 ? r->cwnd / 2 : 2;
				r->cwnd = 2;
				budget = 2;
			}
			r->st.retransmits++;
			if (transmit(r, s, now_ms) == -1)
				return -2;
			due = now_ms + rto;
		}
		if (next == -1 || due - now_ms < next)
			next = due - now_ms;
	}
	return next;
}

size_t
srel_pending(const struct srel *r)
{
	return (size_t)dist(r->next_seq, r->una) + (r->qhead != NULL ? 1 : 0);
}
