/*
 * dmsg_wire: StreamRequest and StreamResponse (dmsg.md) and the big-endian
 * helpers every wire format uses.
 *
 * The one idea: a decoder walks the buffer with a cursor that refuses to
 * move past the end, and the whole buffer must be consumed exactly, so a
 * message has one encoding and a signature covers all of it.
 */
#include <string.h>

#include "dmsg_wire.h"

void
sw_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void
sw_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void
sw_put_u64(uint8_t *p, uint64_t v)
{
	sw_put_u32(p, (uint32_t)(v >> 32));
	sw_put_u32(p + 4, (uint32_t)v);
}

uint16_t
sw_get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

uint32_t
sw_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t
sw_get_u64(const uint8_t *p)
{
	return (uint64_t)sw_get_u32(p) << 32 | sw_get_u32(p + 4);
}

/* A read cursor: take() returns NULL instead of running past the end. */
struct cur {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *
take(struct cur *c, size_t n)
{
	const uint8_t *p = c->p;

	if (n > c->left)
		return NULL;
	c->p += n;
	c->left -= n;
	return p;
}

int
dmsg_stream_req_decode(const uint8_t *buf, size_t len, struct dmsg_stream_req *r)
{
	struct cur c = {buf, len};
	const uint8_t *p;

	if (buf == NULL || len < DMSG_REQ_FIXED)
		return -1;
	p = take(&c, 1);
	r->version = p[0];
	if (r->version != 1)
		return -1;
	r->timestamp_ms = sw_get_u64(take(&c, 8));
	memcpy(r->src_pk, take(&c, SW_PK_LEN), SW_PK_LEN);
	r->src_port = sw_get_u16(take(&c, 2));
	memcpy(r->dst_pk, take(&c, SW_PK_LEN), SW_PK_LEN);
	r->dst_port = sw_get_u16(take(&c, 2));
	r->noise_len = sw_get_u16(take(&c, 2));
	/* What is left must be exactly the noise message and the signature. */
	if (c.left != (size_t)r->noise_len + SW_SIG_LEN)
		return -1;
	r->noise_msg = take(&c, r->noise_len);
	memcpy(r->sig, take(&c, SW_SIG_LEN), SW_SIG_LEN);
	return 0;
}

int
dmsg_stream_resp_decode(const uint8_t *buf, size_t len, struct dmsg_stream_resp *r)
{
	struct cur c = {buf, len};
	const uint8_t *p;

	if (buf == NULL || len < DMSG_RESP_FIXED)
		return -1;
	p = take(&c, 1);
	r->version = p[0];
	if (r->version != 1)
		return -1;
	memcpy(r->req_hash, take(&c, SW_HASH_LEN), SW_HASH_LEN);
	r->noise_len = sw_get_u16(take(&c, 2));
	if (c.left != (size_t)r->noise_len + SW_SIG_LEN)
		return -1;
	r->noise_msg = take(&c, r->noise_len);
	memcpy(r->sig, take(&c, SW_SIG_LEN), SW_SIG_LEN);
	return 0;
}

int
dmsg_stream_req_encode(struct dmsg_stream_req *r, const struct sw_keypair *kp, uint8_t *out,
    size_t outcap)
{
	size_t n = DMSG_REQ_FIXED + (size_t)r->noise_len, off = 0;

	if (out == NULL || outcap < n || (r->noise_len > 0 && r->noise_msg == NULL) ||
	    memcmp(r->src_pk, kp->pk, SW_PK_LEN) != 0)
		return -1;
	r->version = 1;
	out[off++] = r->version;
	sw_put_u64(out + off, r->timestamp_ms);
	off += 8;
	memcpy(out + off, r->src_pk, SW_PK_LEN);
	off += SW_PK_LEN;
	sw_put_u16(out + off, r->src_port);
	off += 2;
	memcpy(out + off, r->dst_pk, SW_PK_LEN);
	off += SW_PK_LEN;
	sw_put_u16(out + off, r->dst_port);
	off += 2;
	sw_put_u16(out + off, r->noise_len);
	off += 2;
	if (r->noise_len > 0)
		memmove(out + off, r->noise_msg, r->noise_len);
	off += r->noise_len;
	sw_sign(r->sig, out, off, kp);
	memcpy(out + off, r->sig, SW_SIG_LEN);
	return (int)(off + SW_SIG_LEN);
}

int
dmsg_stream_resp_encode(struct dmsg_stream_resp *r, const struct sw_keypair *kp,
    uint8_t *out, size_t outcap)
{
	size_t n = DMSG_RESP_FIXED + (size_t)r->noise_len, off = 0;

	if (out == NULL || outcap < n || (r->noise_len > 0 && r->noise_msg == NULL))
		return -1;
	r->version = 1;
	out[off++] = r->version;
	memcpy(out + off, r->req_hash, SW_HASH_LEN);
	off += SW_HASH_LEN;
	sw_put_u16(out + off, r->noise_len);
	off += 2;
	if (r->noise_len > 0)
		memmove(out + off, r->noise_msg, r->noise_len);
	off += r->noise_len;
	sw_sign(r->sig, out, off, kp);
	memcpy(out + off, r->sig, SW_SIG_LEN);
	return (int)(off + SW_SIG_LEN);
}

int
dmsg_stream_req_verify(const uint8_t *buf, size_t len, const struct dmsg_stream_req *r)
{
	if (buf == NULL || len != DMSG_REQ_FIXED + (size_t)r->noise_len)
		return -1;
	return sw_verify(r->sig, buf, len - SW_SIG_LEN, r->src_pk);
}

int
dmsg_stream_resp_verify(const uint8_t *buf, size_t len, const struct dmsg_stream_resp *r,
    const uint8_t dst_pk[SW_PK_LEN])
{
	if (buf == NULL || len != DMSG_RESP_FIXED + (size_t)r->noise_len)
		return -1;
	return sw_verify(r->sig, buf, len - SW_SIG_LEN, dst_pk);
}
