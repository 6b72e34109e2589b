/*
 * fuzz_dmsg_wire: dmsg StreamRequest and StreamResponse (decode, then the
 * signature check on what decoded) and the first Noise handshake message a
 * responder reads (XK as dmsg sessions use it, KK as streams do).
 */
#include <string.h>

#include <sodium.h>

#include "crypto.h"
#include "dmsg_wire.h"
#include "fuzz.h"
#include "noise.h"

static uint8_t s_priv[32], s_pub[32], rs_pub[32];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t other[32];

	(void)argc;
	(void)argv;
	if (sw_crypto_init() == -1)
		return -1;
	memset(s_priv, 7, sizeof(s_priv));
	memset(other, 9, sizeof(other));
	crypto_scalarmult_base(s_pub, s_priv);
	crypto_scalarmult_base(rs_pub, other);
	return 0;
}

static void
hs_read(enum noise_pattern pat, const uint8_t *data, size_t size)
{
	struct noise_hs hs;
	struct noise_hs_params p;
	uint8_t payload[NOISE_MAX_MSG];
	size_t plen = 0;

	memset(&p, 0, sizeof(p));
	p.pattern = pat;
	p.initiator = false;
	p.prologue = (const uint8_t *)"dmsg";
	p.prologue_len = 4;
	p.s_priv = s_priv;
	p.rs = pat == NOISE_KK ? rs_pub : NULL;
	if (noise_hs_init(&hs, &p) == -1)
		return;
	if (noise_hs_read(&hs, data, size, payload, sizeof(payload), &plen) == 0)
		FUZZ_ASSERT(plen <= sizeof(payload));
	noise_hs_reset(&hs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmsg_stream_req rq;
	struct dmsg_stream_resp rp;
	uint8_t pk[SW_PK_LEN] = {0};

	if (dmsg_stream_req_decode(data, size, &rq) == 0) {
		FUZZ_ASSERT(DMSG_REQ_FIXED + (size_t)rq.noise_len == size);
		(void)dmsg_stream_req_verify(data, size, &rq);
	}
	if (dmsg_stream_resp_decode(data, size, &rp) == 0) {
		FUZZ_ASSERT(DMSG_RESP_FIXED + (size_t)rp.noise_len == size);
		(void)dmsg_stream_resp_verify(data, size, &rp, pk);
	}
	hs_read(NOISE_XK, data, size);
	hs_read(NOISE_KK, data, size);
	return 0;
}
