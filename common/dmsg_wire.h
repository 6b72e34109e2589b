/*
 * dmsg_wire: the bytes of dmsg (dmsg.md) and nothing else: frame headers,
 * StreamRequest and StreamResponse (encode, decode, sign, verify).  Every
 * decoder checks every length against what remains before reading; decoded
 * structs point into the caller's buffer.
 */
#ifndef DMSG_WIRE_H
#define DMSG_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

enum dmsg_type {
	DMSG_OPEN = 0x01,
	DMSG_ACCEPT = 0x02,
	DMSG_REJECT = 0x03,
	DMSG_DATA = 0x04,
	DMSG_WINDOW = 0x05,
	DMSG_CLOSE = 0x06,
	DMSG_RESET = 0x07,
	DMSG_PING = 0x08,
	DMSG_PONG = 0x09,
};

enum dmsg_reject {
	DMSG_REJECT_NO_SESSION = 1,
	DMSG_REJECT_NO_LISTENER = 2,
	DMSG_REJECT_BACKLOG = 3,
	DMSG_REJECT_BAD_REQUEST = 4,
	DMSG_REJECT_TIMEOUT = 5,
	DMSG_REJECT_POLICY = 6,
};

#define DMSG_PROLOGUE          "dmsg/1"
#define DMSG_STREAM_PROLOGUE   "dmsg-stream/1"
#define DMSG_FRAME_HDR         5       /* type u8 | stream_id u32 */
#define DMSG_MAX_TRANSPORT     65535   /* one Noise message on the session */
#define DMSG_MAX_FRAME         (DMSG_MAX_TRANSPORT - 16) /* frame plaintext */
#define DMSG_MAX_PAYLOAD       (DMSG_MAX_FRAME - DMSG_FRAME_HDR)
#define DMSG_MAX_DATA          65514   /* one KK transport message in DATA */
#define DMSG_MAX_DATA_PLAIN    (DMSG_MAX_DATA - 16)
#define DMSG_INITIAL_WINDOW    262144
#define DMSG_HANDSHAKE_TIMEOUT_S 5
#define DMSG_PING_AFTER_S      30
#define DMSG_IDLE_CLOSE_S      90
#define DMSG_ACCEPT_TIMEOUT_S  10
#define DMSG_STREAM_IDLE_S     120
#define DMSG_REQ_MAX_SKEW_MS   30000
#define DMSG_BACKLOG           20
#define DMSG_EPHEMERAL_MIN     49152
#define DMSG_REQ_FIXED         (1 + 8 + 32 + 2 + 32 + 2 + 2 + 64) /* without noise_msg */
#define DMSG_RESP_FIXED        (1 + 32 + 2 + 64)

struct dmsg_stream_req {
	uint8_t version;
	uint64_t timestamp_ms;
	uint8_t src_pk[SW_PK_LEN];
	uint16_t src_port;
	uint8_t dst_pk[SW_PK_LEN];
	uint16_t dst_port;
	uint16_t noise_len;
	const uint8_t *noise_msg; /* into the decoded buffer */
	uint8_t sig[SW_SIG_LEN];
};

struct dmsg_stream_resp {
	uint8_t version;
	uint8_t req_hash[SW_HASH_LEN];
	uint16_t noise_len;
	const uint8_t *noise_msg;
	uint8_t sig[SW_SIG_LEN];
};

/* Big-endian helpers used by every wire format. */
void sw_put_u16(uint8_t *p, uint16_t v);
void sw_put_u32(uint8_t *p, uint32_t v);
void sw_put_u64(uint8_t *p, uint64_t v);
uint16_t sw_get_u16(const uint8_t *p);
uint32_t sw_get_u32(const uint8_t *p);
uint64_t sw_get_u64(const uint8_t *p);

/*
 * Decode without checking the signature: -1 on a wrong version or any
 * length that does not add up exactly.
 */
int dmsg_stream_req_decode(const uint8_t *buf, size_t len, struct dmsg_stream_req *r);
int dmsg_stream_resp_decode(const uint8_t *buf, size_t len, struct dmsg_stream_resp *r);

/*
 * Encode and sign (r->sig is filled; src/dst key must be kp's).  out must
 * hold DMSG_REQ_FIXED + noise_len (DMSG_RESP_FIXED + noise_len); returns
 * the length written, or -1.
 */
int dmsg_stream_req_encode(struct dmsg_stream_req *r, const struct sw_keypair *kp, uint8_t *out,
    size_t outcap);
int dmsg_stream_resp_encode(struct dmsg_stream_resp *r, const struct sw_keypair *kp,
    uint8_t *out, size_t outcap);

/* Signature over every byte before it, by src_pk (req) or by the given dst pk (resp). 0 ok. */
int dmsg_stream_req_verify(const uint8_t *buf, size_t len, const struct dmsg_stream_req *r);
int dmsg_stream_resp_verify(const uint8_t *buf, size_t len, const struct dmsg_stream_resp *r,
    const uint8_t dst_pk[SW_PK_LEN]);

#endif
