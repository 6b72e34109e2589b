/*
 * sudph_rel: the retransmission layer of a sudph transport (visor.md,
 * docs/visor.md "sudph"): over datagrams that may be lost, duplicated or
 * reordered, packets arrive once each, in order, none lost.
 *
 * Every datagram's plaintext starts with SREL_HDR bytes
 *
 *     ack u32 BE | sack u32 BE | seq u32 BE | packet
 *
 * ack: the next sequence number the sender of the datagram expects (every
 * lower one has arrived); sack bit i: seq ack+1+i has arrived too; seq 0:
 * no packet (a pure ack).  The sender keeps at most SREL_WINDOW packets in
 * flight (and SREL_MAX_INFLIGHT bytes), fewer while its congestion window
 * (Reno-like: slow start, +1/cwnd per ack, halved on a fast retransmit,
 * back to 2 on a timeout) is smaller, retransmits each after its RTO
 * (RFC 6298 estimate, doubling per try) or at once when three later ones
 * are acknowledged, and queues at most SREL_MAX_QUEUED bytes behind the
 * window; the receiver holds at most SREL_WINDOW out-of-order packets.  So
 * the state of one transport is bounded whatever the peer does.
 *
 * A datagram carries at most SREL_MAX_FRAG bytes of packet (datagrams stay
 * under ~33 KB, so IP fragmentation stays bounded); a longer packet, up to
 * SREL_MAX_PACKET, goes as fragments, each with a seq of its own, so they
 * are retransmitted, acked and ordered like any packet:
 *
 *     first: 0xfe | total u16 BE | the packet's first bytes
 *     more:  0xff | the bytes that follow
 *
 * The receiver copies them into one buffer per srel (SREL_MAX_PACKET,
 * allocated at the first fragment and kept) and delivers the packet when
 * total bytes are in: whole or not at all.  A packet that fits one datagram
 * goes as it is (as before fragments existed), so it must not start with
 * 0xfe or 0xff: srel_send refuses one that does (a routing packet starts
 * with its type, 0..5).  A fragment that does not continue the packet in
 * progress the way the sender would have sent it (a continuation without a
 * first, a first or a whole packet while one is in progress, a total over
 * SREL_MAX_PACKET or one the first fragment already exceeds, bytes past
 * total, an empty fragment) is dropped with the packet in progress and
 * counted in st.bad_fragments; the next first starts afresh.
 *
 * No sockets, no crypto, no clock of its own: the caller passes now_ms and
 * moves datagrams (out), and gets packets (deliver), so it is unit-tested
 * with a lossy in-memory pipe.
 */
#ifndef VISOR_SUDPH_REL_H
#define VISOR_SUDPH_REL_H

#include <stddef.h>
#include <stdint.h>

#define SREL_HDR          12
#define SREL_WINDOW       256
#define SREL_MAX_INFLIGHT (2u << 20)
#define SREL_MAX_QUEUED   (4u << 20)
#define SREL_MAX_HELD     (4u << 20)
#define SREL_RTO_MIN_MS   40
#define SREL_RTO_MAX_MS   2000
#define SREL_RTO_INIT_MS  250
#define SREL_CWND_INIT    16
#define SREL_MAX_FRAG     32768          /* packet bytes in one datagram */
#define SREL_MAX_PACKET   (65535 - 16)   /* routing.md's packet limit */
#define SREL_FRAG_FIRST   0xfe
#define SREL_FRAG_MORE    0xff
#define SREL_FIRST_HDR    3              /* 0xfe | total u16 */
#define SREL_MORE_HDR     1

struct srel_slot {
	uint8_t *data;     /* NULL: empty */
	size_t len;
	uint32_t seq;
	long long sent_ms;
	int tries;
	int fast;          /* already fast-retransmitted once */
};

struct srel_q {
	struct srel_q *next;
	size_t len;
	uint8_t data[];
};

/*
 * out: send one datagram, hdr (SREL_HDR bytes) then payload (len may be 0).
 * deliver: one packet, in order; return -1 when the transport is gone (the
 * srel with it): srel stops at once without touching itself again.
 */
struct srel_ops {
	int (*out)(void *arg, const uint8_t *hdr, const uint8_t *payload, size_t len);
	int (*deliver)(void *arg, const uint8_t *pkt, size_t len);
};

struct srel_stats {
	uint64_t sent, retransmits, fast_retransmits, delivered, duplicates, out_of_window,
	    acks_sent, fragments, bad_fragments;
};

struct srel {
	const struct srel_ops *ops;
	void *arg;
	/* sending */
	uint32_t next_seq;           /* next to assign; starts at 1 */
	uint32_t una;                /* oldest unacknowledged */
	size_t inflight_bytes;
	struct srel_slot tx[SREL_WINDOW];
	struct srel_q *qhead, *qtail;
	size_t queued_bytes;
	long long srtt, rttvar, rto;
	double cwnd, ssthresh;       /* packets */
	long long cut_ms;            /* the last cut of cwnd on a timeout */
	/* receiving */
	uint32_t rcv_next;
	size_t held_bytes;
	struct srel_slot rx[SREL_WINDOW];
	int ack_due;
	int rx_paused;               /* srel_pause: in-order packets wait, unacknowledged */
	uint8_t *frag;               /* the packet being reassembled; NULL until needed */
	size_t frag_len, frag_total; /* frag_total 0: none in progress */
	struct srel_stats st;
};

void srel_init(struct srel *r, const struct srel_ops *ops, void *arg);
void srel_free(struct srel *r);
/*
 * Queue one packet (at most SREL_MAX_PACKET bytes, fragmented past
 * SREL_MAX_FRAG): sent now if the window allows.  -1 when the packet is
 * too long, starts with a fragment's mark or does not fit in the queue
 * (then none of it is queued), or when out fails.
 */
int srel_send(struct srel *r, const uint8_t *pkt, size_t len, long long now_ms);
/*
 * One datagram's plaintext from the peer.  0, or -1 when the transport is
 * gone (deliver said so) or a send failed.  Afterwards srel_flush_ack()
 * sends a pure ack if nothing carried one meanwhile.
 */
int srel_input(struct srel *r, const uint8_t *dg, size_t len, long long now_ms);
int srel_flush_ack(struct srel *r);
/*
 * Retransmit what is due.  Returns the ms until the next deadline (-1:
 * nothing in flight), or -2 when out failed.
 */
long long srel_tick(struct srel *r, long long now_ms);
/* Packets sent and not yet acknowledged, plus queued. */
size_t srel_pending(const struct srel *r);
/*
 * Stop (1) delivering: in-order packets wait in the receive window
 * unacknowledged, so the sender stops once its window is full (its
 * retransmissions meanwhile are duplicates).  Resuming (0) delivers what
 * waits: -1 when a deliver said the transport is gone, else 0.
 */
int srel_pause(struct srel *r, int paused);
/* Would srel_send() take a packet of len bytes now (1), or refuse it (0)? */
int srel_room(const struct srel *r, size_t len);

#endif
