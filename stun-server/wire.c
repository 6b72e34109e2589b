/*
 * The STUN message format (RFC 5389 section 6, RFC 3489 section 11): a 20
 * byte header (type, length, magic cookie, transaction id) and TLV
 * attributes padded to 4 bytes.
 *
 * Nothing from the wire is believed before its length is checked against
 * what remains: the header against the datagram, each attribute against the
 * message, the padded end of the last attribute against the message's end.
 * A message whose cookie is not the magic one is an RFC 3489 message (its
 * transaction id is 128 bits); it is parsed the same way, and the replies to
 * it keep every attribute length a multiple of 4, since 3489 parsers do not
 * skip padding.
 *
 * FINGERPRINT is the IEEE CRC-32 (reflected, polynomial 0xEDB88320) of the
 * message before it, XORed with 0x5354554E.  libsodium has no CRC, so it is
 * computed here a nibble at a time from a 16-entry table: STUN messages are
 * short, and the table stays small enough to check by eye.
 */
#include <netinet/in.h>
#include <string.h>

#include "dmsg_wire.h"
#include "stun_server.h"

static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
	0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
	0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};

uint32_t
stun_crc32(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 0x0F];
		crc = (crc >> 4) ^ crc_nibble[crc & 0x0F];
	}
	return crc ^ 0xFFFFFFFFu;
}

const char *
stun_err_name(enum stun_err e)
{
	static const char *const names[] = {"ok", "short", "oversize", "not_stun", "bad_length",
	    "bad_attribute", "bad_fingerprint"};

	return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "unknown";
}

/*
 * The comprehension-required attributes a request may carry.  USERNAME,
 * MESSAGE-INTEGRITY and the ICE ones are understood and ignored: this
 * server has no credentials, and an ICE agent's Binding request deserves
 * the same mapping as anyone's (docs/decisions.md).
 */
int
stun_attr_understood(uint16_t type)
{
	switch (type) {
	case STUN_A_CHANGE_REQUEST:
	case STUN_A_USERNAME:
	case STUN_A_MESSAGE_INTEGRITY:
	case STUN_A_PRIORITY:
	case STUN_A_USE_CANDIDATE:
		return 1;
	default:
		return type >= 0x8000;
	}
}

int
stun_attr_next(const uint8_t *attrs, size_t len, size_t *off, struct stun_attr *a)
{
	size_t left, padded;

	if (*off >= len)
		return 0;
	left = len - *off;
	if (left < 4)
		return -1;
	a->type = sw_get_u16(attrs + *off);
	a->len = sw_get_u16(attrs + *off + 2);
	padded = ((size_t)a->len + 3) & ~(size_t)3;
	if (padded > left - 4)
		return -1;
	a->val = attrs + *off + 4;
	*off += 4 + padded;
	return 1;
}

enum stun_err
stun_parse(const uint8_t *buf, size_t len, struct stun_msg *m)
{
	struct stun_attr a;
	size_t off = 0, at = 0;
	int r, after_mi = 0;

	memset(m, 0, sizeof(*m));
	if (len > STUN_MAX_DGRAM)
		return STUN_E_OVERSIZE;
	if (len < STUN_HDR_LEN)
		return STUN_E_SHORT;
	if ((buf[0] & 0xC0) != 0)
		return STUN_E_NOT_STUN;
	m->type = sw_get_u16(buf);
	m->len = sw_get_u16(buf + 2);
	if (m->len % 4 != 0 || (size_t)m->len + STUN_HDR_LEN != len)
		return STUN_E_LENGTH;
	m->legacy = sw_get_u32(buf + 4) != STUN_MAGIC;
	memcpy(m->txid, buf + 4, sizeof(m->txid));
	m->attrs = buf + STUN_HDR_LEN;
	while ((r = stun_attr_next(m->attrs, m->len, &off, &a)) == 1) {
		if (m->fingerprint)
			return STUN_E_ATTR; /* FINGERPRINT must be last */
		if (a.type == STUN_A_FINGERPRINT && !m->legacy) {
			if (a.len != 4)
				return STUN_E_ATTR;
			if ((stun_crc32(buf, STUN_HDR_LEN + at) ^ STUN_FP_XOR) != sw_get_u32(a.val))
				return STUN_E_FINGERPRINT;
			m->fingerprint = 1;
		} else if (after_mi) {
			/* RFC 5389 15.4: what follows MESSAGE-INTEGRITY is ignored. */
		} else if (a.type == STUN_A_CHANGE_REQUEST) {
			if (stun_get_change(&a, &m->change) == -1)
				return STUN_E_ATTR;
			m->has_change = 1;
		} else if (a.type == STUN_A_MESSAGE_INTEGRITY) {
			after_mi = !m->legacy;
		} else if (!stun_attr_understood(a.type) && m->nunknown < STUN_MAX_UNKNOWN) {
			m->unknown[m->nunknown++] = a.type;
		}
		at = off;
	}
	return r == 0 ? STUN_OK : STUN_E_ATTR;
}

void
stun_out_init(struct stun_out *o, uint16_t type, const uint8_t txid[16], int legacy)
{
	memset(o->buf, 0, STUN_HDR_LEN);
	sw_put_u16(o->buf, type);
	memcpy(o->buf + 4, txid, 16);
	o->len = STUN_HDR_LEN;
	o->legacy = legacy;
}

int
stun_put_attr(struct stun_out *o, uint16_t type, const void *val, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;

	if (len > 0xFFFF || padded + 4 > sizeof(o->buf) - o->len)
		return -1;
	sw_put_u16(o->buf + o->len, type);
	sw_put_u16(o->buf + o->len + 2, (uint16_t)len);
	if (len > 0)
		memcpy(o->buf + o->len + 4, val, len);
	memset(o->buf + o->len + 4 + len, 0, padded - len);
	o->len += 4 + padded;
	sw_put_u16(o->buf + 2, (uint16_t)(o->len - STUN_HDR_LEN));
	return 0;
}

/* Text; for a 3489 peer padded with spaces inside its length. */
int
stun_put_text(struct stun_out *o, uint16_t type, const char *s)
{
	uint8_t v[STUN_MAX_REPLY];
	size_t n = strlen(s), len;

	if (n > sizeof(v) - 3)
		return -1;
	memcpy(v, s, n);
	len = o->legacy ? (n + 3) & ~(size_t)3 : n;
	memset(v + n, ' ', len - n);
	return stun_put_attr(o, type, v, len);
}

/*
 * The XOR forms mask the port with the cookie's top half and the address
 * with the cookie and transaction id, which are bytes 4..19 of the header
 * already written.  An IPv4-mapped IPv6 peer (a dual-stack socket) is named
 * as the IPv4 address it is.
 */
int
stun_put_addr(struct stun_out *o, uint16_t type, const struct sockaddr *sa, int xor)
{
	uint8_t v[20];
	const uint8_t *ip;
	size_t iplen;
	uint16_t port;

	memset(v, 0, sizeof(v));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		ip = (const uint8_t *)&in->sin_addr;
		iplen = 4;
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		ip = (const uint8_t *)&in6->sin6_addr;
		iplen = 16;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			ip += 12;
			iplen = 4;
		}
		port = ntohs(in6->sin6_port);
	} else {
		return -1;
	}
	v[1] = iplen == 4 ? 0x01 : 0x02;
	sw_put_u16(v + 2, xor ? port ^ (uint16_t)(STUN_MAGIC >> 16) : port);
	for (size_t i = 0; i < iplen; i++)
		v[4 + i] = xor ? ip[i] ^ o->buf[4 + i] : ip[i];
	return stun_put_attr(o, type, v, 4 + iplen);
}

int
stun_put_error(struct stun_out *o, int code, const char *reason)
{
	uint8_t v[4 + STUN_MAX_SOFTWARE + 4];
	size_t n = strlen(reason), len;

	if (code < 300 || code > 699 || n > STUN_MAX_SOFTWARE)
		return -1;
	v[0] = 0;
	v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, n);
	len = o->legacy ? (n + 3) & ~(size_t)3 : n;
	memset(v + 4 + n, ' ', len - n);
	return stun_put_attr(o, STUN_A_ERROR_CODE, v, 4 + len);
}

/* RFC 3489 fills an odd list by repeating an attribute; 5389 pads. */
int
stun_put_unknown(struct stun_out *o, const uint16_t *types, size_t n)
{
	uint8_t v[2 * (STUN_MAX_UNKNOWN + 1)];
	size_t len;

	if (n == 0 || n > STUN_MAX_UNKNOWN)
		return -1;
	for (size_t i = 0; i < n; i++)
		sw_put_u16(v + 2 * i, types[i]);
	len = 2 * n;
	if (o->legacy && n % 2 == 1) {
		sw_put_u16(v + len, types[n - 1]);
		len += 2;
	}
	return stun_put_attr(o, STUN_A_UNKNOWN_ATTRIBUTES, v, len);
}

int
stun_put_fingerprint(struct stun_out *o)
{
	uint8_t v[4];

	if (sizeof(o->buf) - o->len < 8)
		return -1;
	/* The CRC covers a header whose length already counts the FINGERPRINT. */
	sw_put_u16(o->buf + 2, (uint16_t)(o->len + 8 - STUN_HDR_LEN));
	sw_put_u32(v, stun_crc32(o->buf, o->len) ^ STUN_FP_XOR);
	return stun_put_attr(o, STUN_A_FINGERPRINT, v, sizeof(v));
}

int
stun_get_addr(const struct stun_attr *a, int xor, const uint8_t txid[16],
    struct sockaddr_storage *ss)
{
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (a->len < 4)
		return -1;
	port = sw_get_u16(a->val + 2);
	if (xor)
		port ^= (uint16_t)(STUN_MAGIC >> 16);
	if (a->val[1] == 0x01 && a->len == 8) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		uint8_t *ip = (uint8_t *)&in->sin_addr;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		for (size_t i = 0; i < 4; i++)
			ip[i] = xor ? a->val[4 + i] ^ txid[i] : a->val[4 + i];
		return 0;
	}
	if (a->val[1] == 0x02 && a->len == 20) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		uint8_t *ip = (uint8_t *)&in6->sin6_addr;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		for (size_t i = 0; i < 16; i++)
			ip[i] = xor ? a->val[4 + i] ^ txid[i] : a->val[4 + i];
		return 0;
	}
	return -1;
}

int
stun_get_error(const struct stun_attr *a, int *code, char *reason, size_t size)
{
	size_t n;

	if (a->len < 4 || (a->val[2] & 0x07) < 3 || (a->val[2] & 0x07) > 6 || a->val[3] > 99 ||
	    size == 0)
		return -1;
	*code = (a->val[2] & 0x07) * 100 + a->val[3];
	n = (size_t)a->len - 4 < size - 1 ? (size_t)a->len - 4 : size - 1;
	memcpy(reason, a->val + 4, n);
	reason[n] = '\0';
	return 0;
}

int
stun_get_unknown(const struct stun_attr *a, uint16_t *types, size_t max, size_t *n)
{
	if (a->len % 2 != 0)
		return -1;
	*n = 0;
	for (size_t i = 0; i + 1 < a->len && *n < max; i += 2)
		types[(*n)++] = sw_get_u16(a->val + i);
	return 0;
}

int
stun_get_change(const struct stun_attr *a, uint32_t *flags)
{
	if (a->len != 4)
		return -1;
	*flags = sw_get_u32(a->val);
	return 0;
}
