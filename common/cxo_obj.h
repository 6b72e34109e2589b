/*
 * cxo_obj: the bytes of CXO (cxo.md) that are hashed or signed: tree
 * objects and roots.  Encoders refuse what decoders would refuse, so a
 * publisher can never emit an object a subscriber must reject.  Decoders
 * check every length against what remains and the whole object before
 * anything is used; decoded entries point into the caller's buffer.
 */
#ifndef CXO_OBJ_H
#define CXO_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define CXO_PROTO_VERSION 1
#define CXO_ROOT_VERSION  1
#define CXO_MAX_OBJ       (1024 * 1024)
#define CXO_MAX_LEAF      (256 * 1024)
#define CXO_MAX_NAME      255
/*
 * cxo.md sets no depth limit; we refuse trees deeper than this on both ends
 * so that every walk is bounded (a hostile publisher could otherwise chain
 * objects a million levels deep).
 */
#define CXO_MAX_DEPTH     32

/* The feeds of cxo.md, by the dmsg port their publisher serves them on. */
#define CXO_PORT_CLIENTS_BY_SERVER 46 /* dmsg-discovery */
#define CXO_PORT_SERVICES_BY_PK    48 /* service-discovery */
#define CXO_PORT_ALL_TRANSPORTS    49 /* transport-discovery */
#define CXO_MAX_PATH      (CXO_MAX_DEPTH * (CXO_MAX_NAME + 1))
#define CXO_ROOT_LEN      (1 + SW_PK_LEN + 2 + 8 + 8 + SW_HASH_LEN + SW_HASH_LEN + SW_SIG_LEN)
#define CXO_ROOT_SIGNED   (CXO_ROOT_LEN - SW_SIG_LEN)

enum cxo_kind {
	CXO_KIND_TREE = 0,
	CXO_KIND_LEAF = 1,
};

struct cxo_entry {
	const uint8_t *name;
	size_t name_len;
	int kind;
	const uint8_t *hash; /* CXO_KIND_TREE: SW_HASH_LEN bytes */
	const uint8_t *leaf; /* CXO_KIND_LEAF */
	size_t leaf_len;
};

/* 1 if name is 1..255 bytes with no '/' and no NUL. */
int cxo_name_ok(const uint8_t *name, size_t len);
/* Bytewise order, a proper prefix first (memcmp, then length). */
int cxo_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Encoded size of one entry. */
size_t cxo_entry_size(const struct cxo_entry *e);

/*
 * Check a whole object: exact length, names valid, strictly sorted (so no
 * duplicates), kinds 0/1, leaf and object limits.  0 with *count set, or -1.
 */
int cxo_obj_check(const uint8_t *buf, size_t len, uint32_t *count);

/* Iterate a checked object. */
struct cxo_obj_iter {
	const uint8_t *p;
	uint32_t left;
};
void cxo_obj_iter_init(struct cxo_obj_iter *it, const uint8_t *buf, size_t len);
int cxo_obj_iter_next(struct cxo_obj_iter *it, struct cxo_entry *e);
/* The entry named name in a checked object: 1 found, 0 not. */
int cxo_obj_find(const uint8_t *buf, size_t len, const uint8_t *name, size_t nlen,
    struct cxo_entry *e);

/*
 * Encode n entries (sorted, unique, valid, within limits) into out (size
 * cap); returns the length, or -1 when the entries break a rule or the
 * object would not fit cap or CXO_MAX_OBJ.
 */
long cxo_obj_encode(const struct cxo_entry *es, size_t n, uint8_t *out, size_t cap);

struct cxo_root {
	uint8_t version;
	uint8_t feed_pk[SW_PK_LEN];
	uint16_t feed_port;
	uint64_t seq;
	uint64_t time_s;
	uint8_t prev[SW_HASH_LEN];
	uint8_t tree[SW_HASH_LEN];
	uint8_t sig[SW_SIG_LEN];
};

/* Encode r and sign it with kp (r->sig filled, r->feed_pk must be kp's). */
void cxo_root_encode(struct cxo_root *r, const struct sw_keypair *kp,
    uint8_t out[CXO_ROOT_LEN]);
/* Exact length and version 1; the signature is not checked. 0 / -1. */
int cxo_root_decode(const uint8_t *buf, size_t len, struct cxo_root *r);
/* The signature by r->feed_pk over every byte before it. 0 / -1. */
int cxo_root_verify(const uint8_t *buf, size_t len, const struct cxo_root *r);

#endif
