/*
 * stun-server: RFC 5389 Binding over UDP, with the RFC 3489/5780 behaviour
 * discovery parts (services.md).  wire.c is the message format (parse,
 * attributes, FINGERPRINT), answer.c decides the reply to one request,
 * udp.c holds the sockets and the read loop, stun_server.c is the service
 * (configuration, the HTTP health port).
 *
 * The one idea: with secondary_ip and alt_port the server holds four
 * sockets, indexed ip * 2 + port (bit 1: the secondary IP, bit 0: the
 * alternate port), so CHANGE-REQUEST is an XOR on the index of the socket a
 * request came in on, and OTHER-ADDRESS is always the socket at index ^ 3.
 */
#ifndef STUN_SERVER_H
#define STUN_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "service.h"

#define STUN_HDR_LEN      20
#define STUN_MAGIC        0x2112A442u
#define STUN_FP_XOR       0x5354554Eu  /* FINGERPRINT is CRC-32 ^ "STUN" */
#define STUN_MAX_DGRAM    1500         /* a longer datagram is dropped unread */
#define STUN_MAX_REPLY    548          /* RFC 3489's bound; ours stay far below */
#define STUN_MAX_UNKNOWN  8            /* unknown attributes named in a 420 */
#define STUN_MAX_SOFTWARE 127          /* RFC 5389: fewer than 128 characters */
#define STUN_NSOCK        4

/* Message types: method Binding (0x001) in each class. */
#define STUN_BINDING_REQUEST    0x0001
#define STUN_BINDING_INDICATION 0x0011
#define STUN_BINDING_SUCCESS    0x0101
#define STUN_BINDING_ERROR      0x0111

/* Attributes (RFC 3489, 5389, 5780; PRIORITY and USE-CANDIDATE: RFC 8445). */
#define STUN_A_MAPPED_ADDRESS     0x0001
#define STUN_A_RESPONSE_ADDRESS   0x0002
#define STUN_A_CHANGE_REQUEST     0x0003
#define STUN_A_SOURCE_ADDRESS     0x0004
#define STUN_A_CHANGED_ADDRESS    0x0005
#define STUN_A_USERNAME           0x0006
#define STUN_A_MESSAGE_INTEGRITY  0x0008
#define STUN_A_ERROR_CODE         0x0009
#define STUN_A_UNKNOWN_ATTRIBUTES 0x000A
#define STUN_A_XOR_MAPPED_ADDRESS 0x0020
#define STUN_A_PRIORITY           0x0024
#define STUN_A_USE_CANDIDATE      0x0025
#define STUN_A_SOFTWARE           0x8022
#define STUN_A_FINGERPRINT        0x8028
#define STUN_A_RESPONSE_ORIGIN    0x802B
#define STUN_A_OTHER_ADDRESS      0x802C

#define STUN_CHANGE_IP   0x04
#define STUN_CHANGE_PORT 0x02

/* Why a datagram was dropped by the parser; the names are metric labels. */
enum stun_err {
	STUN_OK = 0,
	STUN_E_SHORT,       /* under 20 bytes */
	STUN_E_OVERSIZE,    /* over STUN_MAX_DGRAM */
	STUN_E_NOT_STUN,    /* top bits of the type set */
	STUN_E_LENGTH,      /* length field not a multiple of 4 or not the datagram's */
	STUN_E_ATTR,        /* an attribute overruns, or follows FINGERPRINT */
	STUN_E_FINGERPRINT, /* FINGERPRINT present and wrong */
};
const char *stun_err_name(enum stun_err e);

/* One attribute as found in a message. */
struct stun_attr {
	uint16_t type;
	uint16_t len;
	const uint8_t *val;
};

/* A parsed message; pointers into the buffer given to stun_parse. */
struct stun_msg {
	uint16_t type;
	uint16_t len;                    /* bytes of attributes */
	int legacy;                      /* no magic cookie: an RFC 3489 message */
	uint8_t txid[16];                /* bytes 4..19: cookie and id (3489: all id) */
	const uint8_t *attrs;
	int fingerprint;                 /* carried a FINGERPRINT (checked) */
	int has_change;
	uint32_t change;                 /* CHANGE-REQUEST flags */
	size_t nunknown;
	uint16_t unknown[STUN_MAX_UNKNOWN]; /* comprehension-required, not understood */
};

/* A message being built. */
struct stun_out {
	uint8_t buf[STUN_MAX_REPLY];
	size_t len;
	int legacy; /* RFC 3489 peer: text padded with spaces inside its length */
};

/* wire.c */
uint32_t stun_crc32(const uint8_t *p, size_t n);
/* 1 if this server understands attribute type in a request. */
int stun_attr_understood(uint16_t type);
/* The next attribute at *off (start at 0): 1 and a filled, 0 at the end, -1 malformed. */
int stun_attr_next(const uint8_t *attrs, size_t len, size_t *off, struct stun_attr *a);
/* Check every length, the FINGERPRINT, and collect what the server must know. */
enum stun_err stun_parse(const uint8_t *buf, size_t len, struct stun_msg *m);

void stun_out_init(struct stun_out *o, uint16_t type, const uint8_t txid[16], int legacy);
/* Each put returns 0, or -1 when the attribute would not fit (o unchanged). */
int stun_put_attr(struct stun_out *o, uint16_t type, const void *val, size_t len);
int stun_put_text(struct stun_out *o, uint16_t type, const char *s);
/* An address attribute; xor for the XOR- forms (5389 only). */
int stun_put_addr(struct stun_out *o, uint16_t type, const struct sockaddr *sa, int xor);
int stun_put_error(struct stun_out *o, int code, const char *reason);
int stun_put_unknown(struct stun_out *o, const uint16_t *types, size_t n);
/* Last: over everything before it, with the length already counting it. */
int stun_put_fingerprint(struct stun_out *o);

/* Decoders for the attributes the server sends (tests, clients). -1 when malformed. */
int stun_get_addr(const struct stun_attr *a, int xor, const uint8_t txid[16],
    struct sockaddr_storage *ss);
int stun_get_error(const struct stun_attr *a, int *code, char *reason, size_t size);
int stun_get_unknown(const struct stun_attr *a, uint16_t *types, size_t max, size_t *n);
int stun_get_change(const struct stun_attr *a, uint32_t *flags);

/* answer.c */

/* The addresses of the server's sockets, by index (see the top of this file). */
struct stun_addrs {
	size_t n;                                  /* 1, or 4 with behaviour discovery */
	struct sockaddr_storage a[STUN_NSOCK];
	int concrete;                              /* not a wildcard: may be named */
};

/*
 * The reply to Binding request m, which came in on socket in from peer:
 * fills o and *from (the socket to send it from) and returns the status
 * (200, or the error code: 420), or -1 when it cannot be built.
 */
int stun_answer(const struct stun_addrs *sa, const char *software, const struct stun_msg *m,
    size_t in, const struct sockaddr *peer, struct stun_out *o, size_t *from);

/* udp.c */
struct sw_metrics;
struct event_base;
struct stun_udp;

struct stun_udp *stun_udp_new(struct event_base *base, const char *name,
    struct sw_metrics *metrics, const char *software);
/*
 * The socket addresses from the configuration: listen alone, or with
 * secondary_ip and alt_port (>= 0; -1: none) all four pairs.  -1 with err.
 */
int stun_addrs_parse(struct stun_addrs *sa, const char *listen, const char *secondary_ip,
    int alt_port, char *err, size_t errlen);
/* "ip:port" or "[ip6]:port" (out: at least SW_IP_TEXT + 8). */
void stun_addr_text(char *out, size_t size, const struct sockaddr *sa);
/* Bind every address of want (port 0: a free one, the same on both IPs).  -1 logged. */
int stun_udp_open(struct stun_udp *u, const struct stun_addrs *want);
void stun_udp_close(struct stun_udp *u);
int stun_udp_is_open(const struct stun_udp *u);
/* The bound addresses (real ports), for logs and tests. */
const struct stun_addrs *stun_udp_addrs(const struct stun_udp *u);
/* One datagram as if it had arrived on socket in (the read loop's body). */
void stun_udp_input(struct stun_udp *u, size_t in, const uint8_t *buf, size_t n,
    const struct sockaddr *peer, socklen_t peerlen);
void stun_udp_free(struct stun_udp *u);

extern const struct sw_service_ops stun_server_ops;

#endif
