/*
 * test_dmsg_wire: StreamRequest/StreamResponse round trips, every truncation
 * and extension refused, a wrong version refused, signatures checked over
 * every byte, and the big-endian helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto.h"
#include "dmsg_wire.h"

static struct sw_keypair src, dst;

static int
setup(void **state)
{
	(void)state;
	if (sw_crypto_init() == -1)
		return -1;
	sw_keypair_generate(&src);
	sw_keypair_generate(&dst);
	return 0;
}

static void
test_be_helpers(void **state)
{
	uint8_t b[8];

	(void)state;
	sw_put_u16(b, 0x1234);
	assert_int_equal(b[0], 0x12);
	assert_int_equal(b[1], 0x34);
	assert_int_equal(sw_get_u16(b), 0x1234);
	sw_put_u32(b, 0xdeadbeef);
	assert_int_equal(b[0], 0xde);
	assert_int_equal(b[3], 0xef);
	assert_int_equal(sw_get_u32(b), 0xdeadbeef);
	sw_put_u64(b, 0x0102030405060708ULL);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[7], 8);
	assert_true(sw_get_u64(b) == 0x0102030405060708ULL);
}

static int
make_req(uint8_t *out, size_t cap, uint16_t noise_len)
{
	struct dmsg_stream_req r;
	uint8_t noise[200];

	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (uint8_t)i;
	r.timestamp_ms = 1700000000123ULL;
	memcpy(r.src_pk, src.pk, SW_PK_LEN);
	r.src_port = 49153;
	memcpy(r.dst_pk, dst.pk, SW_PK_LEN);
	r.dst_port = 45;
	r.noise_len = noise_len;
	r.noise_msg = noise;
	return dmsg_stream_req_encode(&r, &src, out, cap);
}

static void
test_req_round_trip(void **state)
{
	uint8_t buf[512];
	struct dmsg_stream_req r;
	int n;

	(void)state;
	n = make_req(buf, sizeof(buf), 48);
	assert_int_equal(n, DMSG_REQ_FIXED + 48);
	/* The layout, byte for byte. */
	assert_int_equal(buf[0], 1);
	assert_true(sw_get_u64(buf + 1) == 1700000000123ULL);
	assert_memory_equal(buf + 9, src.pk, 32);
	assert_int_equal(sw_get_u16(buf + 41), 49153);
	assert_memory_equal(buf + 43, dst.pk, 32);
	assert_int_equal(sw_get_u16(buf + 75), 45);
	assert_int_equal(sw_get_u16(buf + 77), 48);
	assert_int_equal(buf[79], 0);
	assert_int_equal(buf[79 + 47], 47);

	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), 0);
	assert_int_equal(r.version, 1);
	assert_true(r.timestamp_ms == 1700000000123ULL);
	assert_memory_equal(r.src_pk, src.pk, 32);
	assert_memory_equal(r.dst_pk, dst.pk, 32);
	assert_int_equal(r.src_port, 49153);
	assert_int_equal(r.dst_port, 45);
	assert_int_equal(r.noise_len, 48);
	assert_ptr_equal(r.noise_msg, buf + 79);
	assert_int_equal(dmsg_stream_req_verify(buf, (size_t)n, &r), 0);

	/* Empty noise message too. */
	n = make_req(buf, sizeof(buf), 0);
	assert_int_equal(n, DMSG_REQ_FIXED);
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), 0);
	assert_int_equal(dmsg_stream_req_verify(buf, (size_t)n, &r), 0);
}

static void
test_req_truncations_and_extension(void **state)
{
	uint8_t buf[512];
	struct dmsg_stream_req r;
	int n;

	(void)state;
	n = make_req(buf, sizeof(buf), 48);
	for (int len = 0; len < n; len++)
		assert_int_equal(dmsg_stream_req_decode(buf, (size_t)len, &r), -1);
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n + 1, &r), -1);
	assert_int_equal(dmsg_stream_req_decode(NULL, 0, &r), -1);
	/* noise_len pointing past the end, or short of it. */
	sw_put_u16(buf + 77, 49);
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), -1);
	sw_put_u16(buf + 77, 47);
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), -1);
	sw_put_u16(buf + 77, 0xffff);
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), -1);
	/* Output too small for encode. */
	assert_int_equal(make_req(buf, DMSG_REQ_FIXED + 47, 48), -1);
}

static void
test_req_bad_version_and_sig(void **state)
{
	uint8_t buf[512];
	struct dmsg_stream_req r;
	int n;

	(void)state;
	n = make_req(buf, sizeof(buf), 48);
	buf[0] = 2;
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), -1);
	buf[0] = 0;
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), -1);
	buf[0] = 1;
	/* Every byte is covered by the signature (the signature itself included). */
	for (int i = 1; i < n; i++) {
		buf[i] ^= 0x01;
		if (dmsg_stream_req_decode(buf, (size_t)n, &r) == 0)
			assert_int_equal(dmsg_stream_req_verify(buf, (size_t)n, &r), -1);
		buf[i] ^= 0x01;
	}
	assert_int_equal(dmsg_stream_req_decode(buf, (size_t)n, &r), 0);
	assert_int_equal(dmsg_stream_req_verify(buf, (size_t)n, &r), 0);
	/* Signed by someone who is not src. */
	memcpy(r.src_pk, dst.pk, SW_PK_LEN);
	assert_int_equal(dmsg_stream_req_verify(buf, (size_t)n, &r), -1);
	/* Encode refuses a key that is not src's. */
	memcpy(r.src_pk, src.pk, SW_PK_LEN);
	assert_int_equal(dmsg_stream_req_encode(&r, &dst, buf, sizeof(buf)), -1);
}

static int
make_resp(uint8_t *out, size_t cap, const uint8_t *req, size_t reqlen, uint16_t noise_len)
{
	struct dmsg_stream_resp r;
	uint8_t noise[100];

	memset(&r, 0, sizeof(r));
	memset(noise, 0xab, sizeof(noise));
	sw_hash(r.req_hash, req, reqlen);
	r.noise_len = noise_len;
	r.noise_msg = noise;
	return dmsg_stream_resp_encode(&r, &dst, out, cap);
}

static void
test_resp(void **state)
{
	uint8_t req[512], buf[512], h[SW_HASH_LEN];
	struct dmsg_stream_resp r;
	int nreq, n;

	(void)state;
	nreq = make_req(req, sizeof(req), 48);
	n = make_resp(buf, sizeof(buf), req, (size_t)nreq, 48);
	assert_int_equal(n, DMSG_RESP_FIXED + 48);
	assert_int_equal(buf[0], 1);
	sw_hash(h, req, (size_t)nreq);
	assert_memory_equal(buf + 1, h, 32);
	assert_int_equal(sw_get_u16(buf + 33), 48);
	assert_int_equal(dmsg_stream_resp_decode(buf, (size_t)n, &r), 0);
	assert_memory_equal(r.req_hash, h, 32);
	assert_int_equal(r.noise_len, 48);
	assert_ptr_equal(r.noise_msg, buf + 35);
	assert_int_equal(dmsg_stream_resp_verify(buf, (size_t)n, &r, dst.pk), 0);
	assert_int_equal(dmsg_stream_resp_verify(buf, (size_t)n, &r, src.pk), -1);
	for (int len = 0; len < n; len++)
		assert_int_equal(dmsg_stream_resp_decode(buf, (size_t)len, &r), -1);
	assert_int_equal(dmsg_stream_resp_decode(buf, (size_t)n + 1, &r), -1);
	for (int i = 1; i < n; i++) {
		buf[i] ^= 0x80;
		if (dmsg_stream_resp_decode(buf, (size_t)n, &r) == 0)
			assert_int_equal(dmsg_stream_resp_verify(buf, (size_t)n, &r, dst.pk), -1);
		buf[i] ^= 0x80;
	}
	buf[0] = 9;
	assert_int_equal(dmsg_stream_resp_decode(buf, (size_t)n, &r), -1);
	assert_int_equal(make_resp(buf, DMSG_RESP_FIXED, req, (size_t)nreq, 48), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_be_helpers),
		cmocka_unit_test(test_req_round_trip),
		cmocka_unit_test(test_req_truncations_and_extension),
		cmocka_unit_test(test_req_bad_version_and_sig),
		cmocka_unit_test(test_resp),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
