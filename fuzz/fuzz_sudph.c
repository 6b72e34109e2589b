/*
 * fuzz_sudph: the sudph reliability layer's receiving side (visor
 * sudph_rel.c), datagram after datagram as a peer sends them after the
 * Noise layer: sequence numbers, acks, windows and what is held for order.
 * Input: u16 length-prefixed datagrams.  Invariants: what is delivered is
 * no longer than the longest datagram so far (a packet held out of order
 * may be delivered on a shorter one's arrival) or, reassembled from
 * fragments, than SREL_MAX_PACKET; a packet in progress stays within its
 * total and the total within SREL_MAX_PACKET; what is held stays within
 * its bound.
 */
#include <string.h>

#include "dmsg_wire.h"
#include "fuzz.h"
#include "log.h"
#include "visor/sudph_rel.h"

static size_t maxlen;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sw_log_set_level(SW_LOG_ERROR);
	return 0;
}

static int
out(void *arg, const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	(void)arg;
	(void)hdr;
	(void)payload;
	(void)len;
	return 0;
}

static int
deliver(void *arg, const uint8_t *pkt, size_t len)
{
	(void)arg;
	(void)pkt;
	FUZZ_ASSERT(len <= SREL_MAX_PACKET || SREL_HDR + len <= maxlen);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct srel_ops ops = {out, deliver};
	struct srel r;
	size_t off = 0;
	long long now = 1000;

	srel_init(&r, &ops, NULL);
	maxlen = 0;
	while (off + 2 <= size) {
		size_t n = sw_get_u16(data + off);

		off += 2;
		if (n > size - off)
			n = size - off;
		if (n > maxlen)
			maxlen = n;
		if (srel_input(&r, data + off, n, now) == -1)
			break;
		FUZZ_ASSERT(r.frag_total <= SREL_MAX_PACKET && r.frag_len <= r.frag_total);
		FUZZ_ASSERT(r.frag_total == 0 || r.frag_len < r.frag_total);
		FUZZ_ASSERT(r.held_bytes <= SREL_MAX_HELD);
		(void)srel_flush_ack(&r);
		now += 7;
		(void)srel_tick(&r, now);
		off += n;
	}
	srel_free(&r);
	return 0;
}
