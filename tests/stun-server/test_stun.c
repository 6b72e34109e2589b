/*
 * test_stun: the STUN codec against the RFC 5769 test vectors (typed in
 * from the RFC; their FINGERPRINT and MESSAGE-INTEGRITY values were checked
 * with an independent CRC and HMAC when they were), every attribute encoded
 * and decoded back, a table of malformed datagrams and the reason each is
 * dropped for, the replies (420, RFC 3489 form), and the real sockets:
 * CHANGE-REQUEST answered from 127.0.0.2 and from the alternate port, and
 * drops counted in the metrics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "dmsg_wire.h"
#include "metrics.h"
#include "stun-server/stun_server.h"
#include "tests/lib/testutil.h"

/* RFC 5769 2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
 * MESSAGE-INTEGRITY and FINGERPRINT. */
static const uint8_t rfc_request[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,
	0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24,
	0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
	0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68,
	0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
	0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5,
	0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 2.2: XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
static const uint8_t rfc_v4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
	0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
	0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
	0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 2.3: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t rfc_v6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
	0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
	0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02,
	0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6,
	0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static void
sin4(struct sockaddr_storage *ss, const char *ip, int port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
}

static void
sin6(struct sockaddr_storage *ss, const char *ip, int port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
}

static void
assert_addr(const struct sockaddr_storage *ss, const char *want)
{
	char text[64];

	stun_addr_text(text, sizeof(text), (const struct sockaddr *)ss);
	assert_string_equal(text, want);
}

/* The first attribute of type in a whole message (header included); 0 if none. */
static int
find(const uint8_t *msg, size_t len, uint16_t type, struct stun_attr *out)
{
	struct stun_attr a;
	size_t off = 0;

	while (stun_attr_next(msg + STUN_HDR_LEN, len - STUN_HDR_LEN, &off, &a) == 1) {
		if (a.type == type) {
			*out = a;
			return 1;
		}
	}
	return 0;
}

static void
test_crc32(void **state)
{
	(void)state;
	/* The CRC-32/IEEE check value. */
	assert_int_equal(stun_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
	assert_int_equal(stun_crc32(NULL, 0), 0);
}

static void
test_rfc5769_request(void **state)
{
	struct stun_msg m;
	struct stun_addrs sa;
	struct stun_out o;
	struct stun_attr a;
	struct sockaddr_storage peer, got;
	uint8_t bad[sizeof(rfc_request)];
	size_t from;

	(void)state;
	assert_int_equal(stun_parse(rfc_request, sizeof(rfc_request), &m), STUN_OK);
	assert_int_equal(m.type, STUN_BINDING_REQUEST);
	assert_false(m.legacy);
	assert_true(m.fingerprint);
	assert_int_equal(m.nunknown, 0); /* PRIORITY and USERNAME are understood */
	assert_memory_equal(m.txid + 4, rfc_request + 8, 12);
	assert_true(find(rfc_request, sizeof(rfc_request), STUN_A_SOFTWARE, &a));
	assert_int_equal(a.len, 16);
	assert_memory_equal(a.val, "STUN test client", 16);

	/* The answer: success, with a FINGERPRINT because the request had one. */
	memset(&sa, 0, sizeof(sa));
	sa.n = 1;
	sa.concrete = 1;
	sin4(&sa.a[0], "192.0.2.10", 3478);
	sin4(&peer, "192.0.2.1", 32853);
	assert_int_equal(stun_answer(&sa, "test vector", &m, 0, (struct sockaddr *)&peer, &o,
	    &from), 200);
	assert_int_equal(from, 0);
	assert_int_equal(stun_parse(o.buf, o.len, &m), STUN_OK);
	assert_int_equal(m.type, STUN_BINDING_SUCCESS);
	assert_true(m.fingerprint);
	assert_memory_equal(o.buf + 4, rfc_request + 4, 16);
	/* The same XOR-MAPPED-ADDRESS bytes as the RFC's IPv4 response. */
	assert_true(find(o.buf, o.len, STUN_A_XOR_MAPPED_ADDRESS, &a));
	assert_memory_equal(a.val - 4, rfc_v4 + 36, 12);
	assert_true(find(o.buf, o.len, STUN_A_MAPPED_ADDRESS, &a));
	assert_int_equal(stun_get_addr(&a, 0, o.buf + 4, &got), 0);
	assert_addr(&got, "192.0.2.1:32853");
	assert_true(find(o.buf, o.len, STUN_A_RESPONSE_ORIGIN, &a));
	assert_int_equal(stun_get_addr(&a, 0, o.buf + 4, &got), 0);
	assert_addr(&got, "192.0.2.10:3478");
	assert_false(find(o.buf, o.len, STUN_A_OTHER_ADDRESS, &a));

	/* One bit flipped anywhere before it: the FINGERPRINT no longer holds. */
	memcpy(bad, rfc_request, sizeof(bad));
	bad[30] ^= 0x01;
	assert_int_equal(stun_parse(bad, sizeof(bad), &m), STUN_E_FINGERPRINT);
}

static void
check_response(const uint8_t *msg, size_t len, const char *want)
{
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_storage got;
	struct stun_out o;

	assert_int_equal(stun_parse(msg, len, &m), STUN_OK);
	assert_int_equal(m.type, STUN_BINDING_SUCCESS);
	assert_true(m.fingerprint);
	assert_true(find(msg, len, STUN_A_XOR_MAPPED_ADDRESS, &a));
	assert_int_equal(stun_get_addr(&a, 1, m.txid, &got), 0);
	assert_addr(&got, want);
	/* Encoded again from the address: the RFC's bytes. */
	stun_out_init(&o, STUN_BINDING_SUCCESS, m.txid, 0);
	assert_int_equal(stun_put_addr(&o, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&got, 1),
	    0);
	assert_int_equal(o.len - STUN_HDR_LEN, (size_t)a.len + 4);
	assert_memory_equal(o.buf + STUN_HDR_LEN, a.val - 4, (size_t)a.len + 4);
	/* Our FINGERPRINT of everything before the RFC's is the RFC's. */
	assert_int_equal(stun_crc32(msg, len - 8) ^ STUN_FP_XOR, sw_get_u32(msg + len - 4));
}

static void
test_rfc5769_responses(void **state)
{
	(void)state;
	check_response(rfc_v4, sizeof(rfc_v4), "192.0.2.1:32853");
	check_response(rfc_v6, sizeof(rfc_v6), "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
}

/* Every attribute the server writes, written and read back, in both forms. */
static void
test_attrs_roundtrip(void **state)
{
	static const uint8_t txid[16] = {0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
	    11, 12};
	static const uint16_t unk[] = {0x0026, 0x7fff, 0x0002};
	struct sockaddr_storage v4, v6, mapped, got;
	struct stun_out o;
	struct stun_attr a;
	struct stun_msg m;
	uint16_t types[8];
	size_t n, off = 0;
	char reason[64];
	int code;
	uint32_t flags;

	(void)state;
	sin4(&v4, "203.0.113.7", 40000);
	sin6(&v6, "2001:db8::1", 1);
	sin6(&mapped, "::ffff:198.51.100.9", 65535);
	stun_out_init(&o, STUN_BINDING_ERROR, txid, 0);
	assert_int_equal(stun_put_addr(&o, STUN_A_MAPPED_ADDRESS, (struct sockaddr *)&v4, 0), 0);
	assert_int_equal(stun_put_addr(&o, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&v6, 1), 0);
	assert_int_equal(stun_put_addr(&o, STUN_A_RESPONSE_ORIGIN, (struct sockaddr *)&mapped, 0), 0);
	assert_int_equal(stun_put_addr(&o, STUN_A_OTHER_ADDRESS, (struct sockaddr *)&v6, 0), 0);
	assert_int_equal(stun_put_addr(&o, STUN_A_SOURCE_ADDRESS, (struct sockaddr *)&mapped, 1), 0);
	assert_int_equal(stun_put_error(&o, 420, "Unknown Attribute"), 0);
	assert_int_equal(stun_put_unknown(&o, unk, 3), 0);
	assert_int_equal(stun_put_text(&o, STUN_A_SOFTWARE, "abcde"), 0);
	assert_int_equal(stun_put_attr(&o, STUN_A_CHANGE_REQUEST, "\0\0\0\6", 4), 0);
	assert_int_equal(stun_put_fingerprint(&o), 0);
	assert_int_equal(o.len % 4, 0);
	assert_int_equal(stun_parse(o.buf, o.len, &m), STUN_OK);
	assert_true(m.fingerprint);
	assert_true(m.has_change);
	assert_int_equal(m.change, STUN_CHANGE_IP | STUN_CHANGE_PORT);

	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(stun_get_addr(&a, 0, txid, &got), 0);
	assert_addr(&got, "203.0.113.7:40000");
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(stun_get_addr(&a, 1, txid, &got), 0);
	assert_addr(&got, "[2001:db8::1]:1");
	assert_int_equal(stun_get_addr(&a, 0, txid, &got), 0); /* unmasked: something else */
	assert_int_not_equal(memcmp(&got, &v6, sizeof(got)), 0);
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(a.len, 8); /* the v4-mapped peer is named as IPv4 */
	assert_int_equal(stun_get_addr(&a, 0, txid, &got), 0);
	assert_addr(&got, "198.51.100.9:65535");
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(stun_get_addr(&a, 0, txid, &got), 0);
	assert_addr(&got, "[2001:db8::1]:1");
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(stun_get_addr(&a, 1, txid, &got), 0);
	assert_addr(&got, "198.51.100.9:65535");
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(a.type, STUN_A_ERROR_CODE);
	assert_int_equal(stun_get_error(&a, &code, reason, sizeof(reason)), 0);
	assert_int_equal(code, 420);
	assert_string_equal(reason, "Unknown Attribute");
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(stun_get_unknown(&a, types, 8, &n), 0);
	assert_int_equal(n, 3); /* 5389: padded, not repeated */
	assert_memory_equal(types, unk, sizeof(unk));
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(a.type, STUN_A_SOFTWARE);
	assert_int_equal(a.len, 5);
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(stun_get_change(&a, &flags), 0);
	assert_int_equal(flags, 6);
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 1);
	assert_int_equal(a.type, STUN_A_FINGERPRINT);
	assert_int_equal(stun_attr_next(m.attrs, m.len, &off, &a), 0);

	/* RFC 3489 form: text padded with spaces inside its length, odd lists filled. */
	stun_out_init(&o, STUN_BINDING_ERROR, txid, 1);
	assert_int_equal(stun_put_text(&o, STUN_A_SOFTWARE, "abcde"), 0);
	assert_int_equal(stun_put_error(&o, 420, "Unknown Attribute"), 0);
	assert_int_equal(stun_put_unknown(&o, unk, 3), 0);
	off = 0;
	assert_int_equal(stun_attr_next(o.buf + 20, o.len - 20, &off, &a), 1);
	assert_int_equal(a.len, 8);
	assert_memory_equal(a.val, "abcde   ", 8);
	assert_int_equal(stun_attr_next(o.buf + 20, o.len - 20, &off, &a), 1);
	assert_int_equal(a.len, 24);
	assert_int_equal(stun_attr_next(o.buf + 20, o.len - 20, &off, &a), 1);
	assert_int_equal(stun_get_unknown(&a, types, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(types[3], 0x0002);

	/* Decoders refuse what does not add up. */
	a.type = STUN_A_MAPPED_ADDRESS;
	a.val = (const uint8_t *)"\0\1\0\1\1\2\3";
	a.len = 7;
	assert_int_equal(stun_get_addr(&a, 0, txid, &got), -1);
	a.val = (const uint8_t *)"\0\2\0\1\1\2\3\4";
	a.len = 8;
	assert_int_equal(stun_get_addr(&a, 0, txid, &got), -1); /* IPv6 in 4 bytes */
	a.val = (const uint8_t *)"\0\0\4\144";
	a.len = 4;
	assert_int_equal(stun_get_error(&a, &code, reason, sizeof(reason)), -1);
	a.len = 3;
	assert_int_equal(stun_get_unknown(&a, types, 8, &n), -1);
	assert_int_equal(stun_get_change(&a, &flags), -1);
	/* Bounds of the builders. */
	assert_int_equal(stun_put_error(&o, 200, "OK"), -1);
	assert_int_equal(stun_put_unknown(&o, unk, 0), -1);
	{
		char big[STUN_MAX_REPLY + 1];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		n = o.len;
		assert_int_equal(stun_put_text(&o, STUN_A_SOFTWARE, big), -1);
		assert_int_equal(o.len, n);
	}
}

static size_t
msg(uint8_t *buf, uint16_t type, uint32_t cookie, const uint8_t *attrs, size_t alen)
{
	sw_put_u16(buf, type);
	sw_put_u16(buf + 2, (uint16_t)alen);
	sw_put_u32(buf + 4, cookie);
	memset(buf + 8, 0xab, 12);
	if (alen > 0)
		memcpy(buf + 20, attrs, alen);
	return 20 + alen;
}

/* Each malformed datagram and why it is dropped. */
static void
test_parse_bad(void **state)
{
	uint8_t buf[STUN_MAX_DGRAM + 64];
	struct stun_msg m;
	size_t n;

	(void)state;
	n = msg(buf, 1, STUN_MAGIC, NULL, 0);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_int_equal(stun_parse(buf, 19, &m), STUN_E_SHORT);
	assert_int_equal(stun_parse(buf, 0, &m), STUN_E_SHORT);
	buf[0] = 0x40;
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_NOT_STUN);
	buf[0] = 0x80;
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_NOT_STUN);
	/* Length: not a multiple of 4, longer or shorter than the datagram. */
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\x80\x22\0\2ab\0\0", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	sw_put_u16(buf + 2, 6);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_LENGTH);
	sw_put_u16(buf + 2, 12);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_LENGTH);
	sw_put_u16(buf + 2, 4);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_LENGTH);
	assert_int_equal(stun_parse(buf, n - 1, &m), STUN_E_LENGTH);
	/* An attribute running past the message (its padding too). */
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\x80\x22\0\5abcd", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR);
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\x80\x22\0\4abcd\x80\x22\0\0", 12);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	memcpy(buf + 28, "\x80\x22\0\1", 4);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR);
	/* A CHANGE-REQUEST of the wrong size. */
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\0\3\0\0", 4);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR);
	/* FINGERPRINT: wrong value, wrong size, not last. */
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\x80\x28\0\4\0\0\0\0", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_FINGERPRINT);
	sw_put_u32(buf + 24, stun_crc32(buf, 20) ^ STUN_FP_XOR);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_true(m.fingerprint);
	memcpy(buf + 28, "\x80\x22\0\0", 4);
	sw_put_u16(buf + 2, 12);
	sw_put_u32(buf + 24, stun_crc32(buf, 20) ^ STUN_FP_XOR);
	assert_int_equal(stun_parse(buf, n + 4, &m), STUN_E_ATTR);
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\x80\x28\0\10\0\0\0\0\0\0\0\0", 12);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR);
	/* Oversize, whatever it holds. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(stun_parse(buf, STUN_MAX_DGRAM + 1, &m), STUN_E_OVERSIZE);
	/* No magic cookie: an RFC 3489 message, where 0x8028 is just optional. */
	n = msg(buf, 1, 0x01020304, (const uint8_t *)"\x80\x28\0\4\0\0\0\0", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_true(m.legacy);
	assert_false(m.fingerprint);
	assert_string_equal(stun_err_name(STUN_E_FINGERPRINT), "bad_fingerprint");
}

static void
addrs4(struct stun_addrs *sa, int n)
{
	memset(sa, 0, sizeof(*sa));
	sa->n = (size_t)n;
	sa->concrete = 1;
	sin4(&sa->a[0], "127.0.0.1", 3478);
	sin4(&sa->a[1], "127.0.0.1", 3479);
	sin4(&sa->a[2], "127.0.0.2", 3478);
	sin4(&sa->a[3], "127.0.0.2", 3479);
}

static void
test_unknown_420(void **state)
{
	/* PADDING and 0x7fff are comprehension-required and unknown; 0x8fff is optional;
	 * the 0x7ffe after MESSAGE-INTEGRITY is ignored. */
	static const uint8_t attrs[] = {
		0x00, 0x26, 0x00, 0x04, 0, 0, 0, 0,
		0x8f, 0xff, 0x00, 0x01, 1, 0, 0, 0,
		0x7f, 0xff, 0x00, 0x00,
		0x00, 0x08, 0x00, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x7f, 0xfe, 0x00, 0x00,
	};
	uint8_t buf[128];
	struct stun_addrs sa;
	struct sockaddr_storage peer;
	struct stun_msg m, r;
	struct stun_out o;
	struct stun_attr a;
	uint16_t types[8];
	char reason[64];
	size_t n, from;
	int code;

	(void)state;
	addrs4(&sa, 4);
	sin4(&peer, "10.1.2.3", 5555);
	n = msg(buf, 1, STUN_MAGIC, attrs, sizeof(attrs));
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_int_equal(m.nunknown, 2);
	assert_int_equal(stun_answer(&sa, "s", &m, 1, (struct sockaddr *)&peer, &o, &from), 420);
	assert_int_equal(from, 1);
	assert_int_equal(stun_parse(o.buf, o.len, &r), STUN_OK);
	assert_int_equal(r.type, STUN_BINDING_ERROR);
	assert_false(r.fingerprint);
	assert_memory_equal(r.txid, m.txid, 16);
	assert_true(find(o.buf, o.len, STUN_A_ERROR_CODE, &a));
	assert_int_equal(stun_get_error(&a, &code, reason, sizeof(reason)), 0);
	assert_int_equal(code, 420);
	assert_true(find(o.buf, o.len, STUN_A_UNKNOWN_ATTRIBUTES, &a));
	assert_int_equal(stun_get_unknown(&a, types, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(types[0], 0x0026);
	assert_int_equal(types[1], 0x7fff);
	assert_false(find(o.buf, o.len, STUN_A_XOR_MAPPED_ADDRESS, &a));

	/* CHANGE-REQUEST on a server with one address: 420 naming it; flags 0: fine. */
	addrs4(&sa, 1);
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\0\3\0\4\0\0\0\4", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_int_equal(stun_answer(&sa, "s", &m, 0, (struct sockaddr *)&peer, &o, &from), 420);
	assert_true(find(o.buf, o.len, STUN_A_UNKNOWN_ATTRIBUTES, &a));
	assert_int_equal(stun_get_unknown(&a, types, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(types[0], STUN_A_CHANGE_REQUEST);
	n = msg(buf, 1, STUN_MAGIC, (const uint8_t *)"\0\3\0\4\0\0\0\0", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_int_equal(stun_answer(&sa, "s", &m, 0, (struct sockaddr *)&peer, &o, &from), 200);
}

/* Which socket answers, and what the reply names, for each CHANGE-REQUEST. */
static void
test_change_table(void **state)
{
	static const struct {
		size_t in;
		uint8_t flags;
		size_t from;
	} cases[] = {
		{0, 0, 0}, {0, 2, 1}, {0, 4, 2}, {0, 6, 3},
		{3, 0, 3}, {3, 2, 2}, {3, 4, 1}, {3, 6, 0},
		{1, 4, 3}, {2, 2, 3},
	};
	struct stun_addrs sa;
	struct sockaddr_storage peer, got;
	struct stun_msg m;
	struct stun_out o;
	struct stun_attr a;
	uint8_t buf[64], attrs[8] = {0, 3, 0, 4, 0, 0, 0, 0};
	size_t n, from;

	(void)state;
	addrs4(&sa, 4);
	sin4(&peer, "10.1.2.3", 5555);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		attrs[7] = cases[i].flags;
		n = msg(buf, 1, STUN_MAGIC, attrs, sizeof(attrs));
		assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
		assert_int_equal(stun_answer(&sa, "s", &m, cases[i].in, (struct sockaddr *)&peer,
		    &o, &from), 200);
		if (from != cases[i].from)
			fail_msg("case %zu: from %zu want %zu", i, from, cases[i].from);
		assert_true(find(o.buf, o.len, STUN_A_RESPONSE_ORIGIN, &a));
		assert_int_equal(stun_get_addr(&a, 0, NULL, &got), 0);
		assert_memory_equal(&got, &sa.a[from], sizeof(struct sockaddr_in));
		assert_true(find(o.buf, o.len, STUN_A_OTHER_ADDRESS, &a));
		assert_int_equal(stun_get_addr(&a, 0, NULL, &got), 0);
		assert_memory_equal(&got, &sa.a[cases[i].in ^ 3], sizeof(struct sockaddr_in));
	}
}

/* An RFC 3489 request gets the 3489 attributes, each a multiple of 4 long. */
static void
test_legacy_answer(void **state)
{
	struct stun_addrs sa;
	struct sockaddr_storage peer, got;
	struct stun_msg m;
	struct stun_out o;
	struct stun_attr a;
	uint8_t buf[64];
	size_t n, from, off = 0;

	(void)state;
	addrs4(&sa, 4);
	sin4(&peer, "10.1.2.3", 5555);
	n = msg(buf, 1, 0xdeadbeef, (const uint8_t *)"\0\3\0\4\0\0\0\2", 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_OK);
	assert_true(m.legacy);
	assert_int_equal(stun_answer(&sa, "skywire-c stun", &m, 0, (struct sockaddr *)&peer, &o,
	    &from), 200);
	assert_int_equal(from, 1);
	assert_memory_equal(o.buf + 4, buf + 4, 16); /* the whole 128-bit id echoed */
	assert_false(find(o.buf, o.len, STUN_A_XOR_MAPPED_ADDRESS, &a));
	assert_false(find(o.buf, o.len, STUN_A_OTHER_ADDRESS, &a));
	assert_false(find(o.buf, o.len, STUN_A_FINGERPRINT, &a));
	assert_true(find(o.buf, o.len, STUN_A_MAPPED_ADDRESS, &a));
	assert_int_equal(stun_get_addr(&a, 0, NULL, &got), 0);
	assert_addr(&got, "10.1.2.3:5555");
	assert_true(find(o.buf, o.len, STUN_A_SOURCE_ADDRESS, &a));
	assert_int_equal(stun_get_addr(&a, 0, NULL, &got), 0);
	assert_addr(&got, "127.0.0.1:3479");
	assert_true(find(o.buf, o.len, STUN_A_CHANGED_ADDRESS, &a));
	assert_int_equal(stun_get_addr(&a, 0, NULL, &got), 0);
	assert_addr(&got, "127.0.0.2:3479");
	while (stun_attr_next(o.buf + 20, o.len - 20, &off, &a) == 1)
		assert_int_equal(a.len % 4, 0);
}

static void
test_addrs_parse(void **state)
{
	struct stun_addrs sa;
	char err[128];

	(void)state;
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", NULL, -1, err, sizeof(err)), 0);
	assert_int_equal(sa.n, 1);
	assert_true(sa.concrete);
	assert_int_equal(stun_addrs_parse(&sa, "0.0.0.0:3478", NULL, -1, err, sizeof(err)), 0);
	assert_false(sa.concrete);
	assert_int_equal(stun_addrs_parse(&sa, "[::1]:3478", "::2", 3479, err, sizeof(err)), 0);
	assert_int_equal(sa.n, 4);
	assert_addr(&sa.a[3], "[::2]:3479");
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", "127.0.0.2", 3479, err,
	    sizeof(err)), 0);
	assert_addr(&sa.a[1], "127.0.0.1:3479");
	assert_addr(&sa.a[2], "127.0.0.2:3478");
	/* Refused: no port, a name, half a pair, wildcard with a pair, mixed families,
	 * the same IP twice, the same port twice. */
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1", NULL, -1, err, sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, "localhost:3478", NULL, -1, err, sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, NULL, NULL, -1, err, sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", "127.0.0.2", -1, err,
	    sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", NULL, 3479, err, sizeof(err)),
	    -1);
	assert_int_equal(stun_addrs_parse(&sa, "0.0.0.0:3478", "127.0.0.2", 3479, err,
	    sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", "::2", 3479, err, sizeof(err)),
	    -1);
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", "127.0.0.1", 3479, err,
	    sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", "127.0.0.2", 3478, err,
	    sizeof(err)), -1);
	assert_int_equal(stun_addrs_parse(&sa, "127.0.0.1:3478", "127.0.0.2", 65536, err,
	    sizeof(err)), -1);
}

/* ---------- real sockets ---------- */

struct client {
	int fd;
	uint8_t buf[STUN_MAX_DGRAM];
	ssize_t n;
	struct sockaddr_storage from;
};

static int
got_reply(void *arg)
{
	struct client *c = arg;
	socklen_t flen = sizeof(c->from);

	/* Asked again after it held: keep the datagram already read. */
	if (c->n > 0)
		return 1;
	c->n = recvfrom(c->fd, c->buf, sizeof(c->buf), 0, (struct sockaddr *)&c->from, &flen);
	return c->n > 0;
}

static void
client_send(struct client *c, const struct sockaddr_storage *to, const uint8_t *buf, size_t n)
{
	c->n = 0;
	assert_int_equal(sendto(c->fd, buf, n, 0, (const struct sockaddr *)to,
	    sizeof(struct sockaddr_in)), (ssize_t)n);
}

static double
metric(struct sw_metrics *ms, const char *series)
{
	struct evbuffer *out = evbuffer_new();
	char *text, *p;
	double v = 0;

	assert_non_null(out);
	assert_int_equal(sw_metrics_render(ms, out), 0);
	evbuffer_add(out, "", 1);
	text = (char *)evbuffer_pullup(out, -1);
	if ((p = strstr(text, series)) != NULL)
		v = strtod(p + strlen(series), NULL);
	evbuffer_free(out);
	return v;
}

static void
test_sockets(void **state)
{
	struct event_base *base = event_base_new();
	struct sw_metrics *ms = sw_metrics_new("stun-server");
	struct stun_udp *u;
	struct stun_addrs want;
	const struct stun_addrs *got;
	struct client c;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	uint8_t req[64], attrs[8] = {0, 3, 0, 4, 0, 0, 0, 0};
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_storage mapped;
	char err[128];
	size_t n;

	(void)state;
	assert_non_null(base);
	assert_non_null(ms);
	u = stun_udp_new(base, "stun-server", ms, "unit");
	assert_non_null(u);
	assert_false(stun_udp_is_open(u));
	assert_int_equal(stun_addrs_parse(&want, "127.0.0.1:0", "127.0.0.2", 0, err, sizeof(err)),
	    0);
	assert_int_equal(stun_udp_open(u, &want), 0);
	assert_true(stun_udp_is_open(u));
	got = stun_udp_addrs(u);
	assert_int_equal(got->n, 4);
	/* The kernel's ports, the same on both IPs. */
	assert_int_equal(((const struct sockaddr_in *)&got->a[0])->sin_port,
	    ((const struct sockaddr_in *)&got->a[2])->sin_port);
	assert_int_equal(((const struct sockaddr_in *)&got->a[1])->sin_port,
	    ((const struct sockaddr_in *)&got->a[3])->sin_port);
	assert_int_not_equal(((const struct sockaddr_in *)&got->a[0])->sin_port,
	    ((const struct sockaddr_in *)&got->a[1])->sin_port);

	c.fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(c.fd >= 0);
	assert_int_equal(fcntl(c.fd, F_SETFL, O_NONBLOCK), 0);
	sin4(&local, "127.0.0.1", 0);
	assert_int_equal(bind(c.fd, (struct sockaddr *)&local, sizeof(struct sockaddr_in)), 0);
	assert_int_equal(getsockname(c.fd, (struct sockaddr *)&local, &llen), 0);

	for (uint8_t flags = 0; flags <= 6; flags += 2) {
		size_t want_from = (flags & 4 ? 2 : 0) | (flags & 2 ? 1 : 0);

		attrs[7] = flags;
		n = msg(req, 1, STUN_MAGIC, attrs, sizeof(attrs));
		req[8] = flags; /* a transaction id per request */
		client_send(&c, &got->a[0], req, n);
		assert_int_equal(sw_test_run_until_fn(base, got_reply, &c, 3000), 0);
		/* It really comes from the changed IP and/or port. */
		assert_memory_equal(&c.from, &got->a[want_from], sizeof(struct sockaddr_in));
		assert_int_equal(stun_parse(c.buf, (size_t)c.n, &m), STUN_OK);
		assert_int_equal(m.type, STUN_BINDING_SUCCESS);
		assert_int_equal(m.txid[4], flags);
		assert_true(find(c.buf, (size_t)c.n, STUN_A_XOR_MAPPED_ADDRESS, &a));
		assert_int_equal(stun_get_addr(&a, 1, m.txid, &mapped), 0);
		assert_memory_equal(&mapped, &local, sizeof(struct sockaddr_in));
		assert_true(find(c.buf, (size_t)c.n, STUN_A_RESPONSE_ORIGIN, &a));
		assert_int_equal(stun_get_addr(&a, 0, NULL, &mapped), 0);
		assert_memory_equal(&mapped, &got->a[want_from], sizeof(struct sockaddr_in));
		assert_true(find(c.buf, (size_t)c.n, STUN_A_OTHER_ADDRESS, &a));
		assert_int_equal(stun_get_addr(&a, 0, NULL, &mapped), 0);
		assert_memory_equal(&mapped, &got->a[3], sizeof(struct sockaddr_in));
	}
	/* Sent to the secondary IP: OTHER-ADDRESS is the primary IP's alternate port. */
	attrs[7] = 0;
	n = msg(req, 1, STUN_MAGIC, attrs, sizeof(attrs));
	client_send(&c, &got->a[2], req, n);
	assert_int_equal(sw_test_run_until_fn(base, got_reply, &c, 3000), 0);
	assert_memory_equal(&c.from, &got->a[2], sizeof(struct sockaddr_in));
	assert_true(find(c.buf, (size_t)c.n, STUN_A_OTHER_ADDRESS, &a));
	assert_int_equal(stun_get_addr(&a, 0, NULL, &mapped), 0);
	assert_memory_equal(&mapped, &got->a[1], sizeof(struct sockaddr_in));

	/* Garbage, truncated, oversize and responses: dropped, counted, unanswered. */
	client_send(&c, &got->a[0], (const uint8_t *)"hello", 5);
	n = msg(req, 1, STUN_MAGIC, NULL, 0);
	client_send(&c, &got->a[0], req, 12);
	req[0] = 0xff;
	client_send(&c, &got->a[0], req, n);
	{
		uint8_t big[STUN_MAX_DGRAM + 100];

		memset(big, 0, sizeof(big));
		client_send(&c, &got->a[1], big, sizeof(big));
	}
	n = msg(req, STUN_BINDING_SUCCESS, STUN_MAGIC, NULL, 0);
	client_send(&c, &got->a[0], req, n);
	n = msg(req, STUN_BINDING_INDICATION, STUN_MAGIC, NULL, 0);
	client_send(&c, &got->a[0], req, n);
	n = msg(req, 1, STUN_MAGIC, NULL, 0);
	sw_put_u16(req + 2, 4);
	client_send(&c, &got->a[0], req, n);
	sw_test_run_for(base, 100);
	assert_false(got_reply(&c));
	assert_true(metric(ms, "reason=\"short\"} ") == 2);
	assert_true(metric(ms, "reason=\"not_stun\"} ") == 1);
	assert_true(metric(ms, "reason=\"oversize\"} ") == 1);
	assert_true(metric(ms, "reason=\"unsupported\"} ") == 1);
	assert_true(metric(ms, "reason=\"bad_length\"} ") == 1);
	assert_true(metric(ms, "stun_indications_total{service=\"stun-server\"} ") == 1);
	assert_true(metric(ms, "status=\"200\"} ") == 5);
	assert_true(metric(ms, "change=\"ip_port\"} ") == 1);
	assert_true(metric(ms, "version=\"rfc5389\"} ") == 5);

	/* Closed: input that would be answered is counted as a failed send. */
	stun_udp_close(u);
	assert_false(stun_udp_is_open(u));
	n = msg(req, 1, STUN_MAGIC, NULL, 0);
	stun_udp_input(u, 0, req, n, (struct sockaddr *)&local, sizeof(struct sockaddr_in));
	assert_true(metric(ms, "reason=\"send_failed\"} ") == 1);

	close(c.fd);
	stun_udp_free(u);
	stun_udp_free(NULL);
	sw_metrics_free(ms);
	event_base_free(base);
}

/* A port taken on the secondary IP: open fails and leaves nothing open. */
static void
test_open_fails(void **state)
{
	struct event_base *base = event_base_new();
	struct sw_metrics *ms = sw_metrics_new("stun-server");
	struct stun_udp *u = stun_udp_new(base, "stun-server", ms, "unit");
	struct stun_addrs want;
	struct sockaddr_storage taken;
	socklen_t tlen = sizeof(taken);
	char err[128], addr[64];
	int fd;

	(void)state;
	assert_non_null(u);
	assert_null(stun_udp_new(base, "x", ms,
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789"));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sin4(&taken, "127.0.0.2", 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&taken, sizeof(struct sockaddr_in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&taken, &tlen), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&taken)->sin_port));
	assert_int_equal(stun_addrs_parse(&want, addr, "127.0.0.2", 0, err, sizeof(err)), 0);
	assert_int_equal(stun_udp_open(u, &want), -1);
	assert_false(stun_udp_is_open(u));
	close(fd);
	stun_udp_free(u);
	sw_metrics_free(ms);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_responses),
		cmocka_unit_test(test_attrs_roundtrip),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_unknown_420),
		cmocka_unit_test(test_change_table),
		cmocka_unit_test(test_legacy_answer),
		cmocka_unit_test(test_addrs_parse),
		cmocka_unit_test(test_sockets),
		cmocka_unit_test(test_open_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
