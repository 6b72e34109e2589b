/*
 * fuzz_sudph: the sudph reliability layer's receiving side (visor
 * sudph_rel.c), datagram after datagram as a peer sends them after the
 * Noise layer: sequence numbers, acks, windows and what is held for order.
 * Input: u16 length-prefixed datagrams.  Invariants: what is delivered is
 * no longer than a datagram, and what is held stays within the window.
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
	FUZZ_ASSERT(len <= maxlen);
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
	while (off + 2 <= size) {
		size_t n = sw_get_u16(data + off);

		off += 2;
		if (n > size - off)
			n = size - off;
		maxlen = n;
		if (srel_input(&r, data + off, n, now) == -1)
			break;
		(void)srel_flush_ack(&r);
		now += 7;
		(void)srel_tick(&r, now);
		off += n;
	}
	srel_free(&r);
	return 0;
}
