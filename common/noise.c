/*
 * noise: Noise revision 34 handshakes XK and KK over X25519, ChaChaPoly
 * (IETF, 96-bit nonce) and BLAKE2b, written from the specification on
 * libsodium's primitives.  See noise.h.
 *
 * The one idea: each pattern is a table of token lists, and the sizes of a
 * message follow from the table alone (a key exists after the first DH token,
 * and from then on every encrypted field carries a 16-byte tag).  So write and
 * read compute the exact length first and refuse anything else before they
 * touch the transcript; a failure after that point kills the handshake and
 * wipes it, so no half-updated state is ever reused.
 */
#include <string.h>

#include <sodium.h>

#include "noise.h"

#define BLAKE2B_BLOCKLEN 128

/* hs->state: 0 is a zeroed (never initialised or reset) state. */
enum {
	NOISE_HS_NONE = 0,
	NOISE_HS_ACTIVE,
	NOISE_HS_DONE,
	NOISE_HS_SPLIT,
	NOISE_HS_FAILED,
};

enum token {
	TOK_END = 0,
	TOK_E,
	TOK_S,
	TOK_EE,
	TOK_ES,
	TOK_SE,
	TOK_SS,
};

#define MAX_TOKENS 4
#define MAX_MSGS   3

struct pattern {
	const char	*name;
	unsigned	 nmsgs;
	uint8_t		 msgs[MAX_MSGS][MAX_TOKENS];
};

/* Pre-messages (XK: <- s; KK: -> s, <- s) are handled in noise_hs_init(). */
static const struct pattern patterns[] = {
	[NOISE_XK] = {
		"Noise_XK_25519_ChaChaPoly_BLAKE2b", 3,
		{ { TOK_E, TOK_ES }, { TOK_E, TOK_EE }, { TOK_S, TOK_SE } },
	},
	[NOISE_KK] = {
		"Noise_KK_25519_ChaChaPoly_BLAKE2b", 2,
		{ { TOK_E, TOK_ES, TOK_SS }, { TOK_E, TOK_EE, TOK_SE } },
	},
};

/* Noise's nonce for ChaChaPoly: 32 zero bits, then the counter little-endian. */
static void
put_nonce(uint8_t out[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t n)
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(n >> (8 * i));
}

static void
hash2(uint8_t out[NOISE_HASHLEN], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, a, alen);
	if (blen > 0)
		crypto_generichash_blake2b_update(&st, b, blen);
	crypto_generichash_blake2b_final(&st, out, NOISE_HASHLEN);
	sodium_memzero(&st, sizeof(st));
}

/*
 * HMAC-BLAKE2b (RFC 2104) over a||b.  Noise only ever keys it with HASHLEN
 * bytes, below BLOCKLEN, so the key is zero-padded and never hashed first.
 */
static void
hmac(uint8_t out[NOISE_HASHLEN], const uint8_t key[NOISE_HASHLEN], const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen)
{
	crypto_generichash_blake2b_state st;
	uint8_t pad[BLAKE2B_BLOCKLEN], inner[NOISE_HASHLEN];

	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < NOISE_HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	if (alen > 0)
		crypto_generichash_blake2b_update(&st, a, alen);
	if (blen > 0)
		crypto_generichash_blake2b_update(&st, b, blen);
	crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < NOISE_HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	crypto_generichash_blake2b_update(&st, inner, sizeof(inner));
	crypto_generichash_blake2b_final(&st, out, NOISE_HASHLEN);

	sodium_memzero(&st, sizeof(st));
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

/* Noise's HKDF with two outputs (the three-output form is only for psk). */
static void
hkdf2(const uint8_t ck[NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
    uint8_t out1[NOISE_HASHLEN], uint8_t out2[NOISE_HASHLEN])
{
	uint8_t temp[NOISE_HASHLEN];
	const uint8_t one = 0x01, two = 0x02;

	hmac(temp, ck, ikm, ikmlen, NULL, 0);
	hmac(out1, temp, &one, 1, NULL, 0);
	hmac(out2, temp, out1, NOISE_HASHLEN, &two, 1);
	sodium_memzero(temp, sizeof(temp));
}

static void
mix_hash(struct noise_hs *hs, const uint8_t *data, size_t len)
{
	hash2(hs->h, hs->h, NOISE_HASHLEN, data, len);
}

static void
mix_key(struct noise_hs *hs, const uint8_t ikm[NOISE_DHLEN])
{
	uint8_t ck[NOISE_HASHLEN], k[NOISE_HASHLEN];

	hkdf2(hs->ck, ikm, NOISE_DHLEN, ck, k);
	memcpy(hs->ck, ck, NOISE_HASHLEN);
	memcpy(hs->cs.k, k, NOISE_KEYLEN);	/* HASHLEN 64: truncate to 32 */
	hs->cs.n = 0;
	hs->cs.has_key = true;
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(k, sizeof(k));
}

/* The AEAD itself; callers have checked the key, the nonce and the lengths. */
static void
aead_encrypt(const uint8_t k[NOISE_KEYLEN], uint64_t n, const uint8_t *ad, size_t adlen,
    const uint8_t *plain, size_t plen, uint8_t *out)
{
	static const uint8_t empty[1];
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

	/* libsodium is handed real pointers even for empty inputs */
	put_nonce(nonce, n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain != NULL ? plain : empty, plen,
	    ad != NULL ? ad : empty, adlen, NULL, nonce, k);
}

static int
aead_decrypt(const uint8_t k[NOISE_KEYLEN], uint64_t n, const uint8_t *ad, size_t adlen,
    const uint8_t *cipher, size_t clen, uint8_t *out)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], empty[1] = { 0 };

	put_nonce(nonce, n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out != NULL ? out : empty, NULL, NULL,
	    cipher, clen, ad != NULL ? ad : empty, adlen, nonce, k) != 0) {
		/* never hand out unauthenticated bytes */
		if (out != NULL && clen > NOISE_TAGLEN)
			sodium_memzero(out, clen - NOISE_TAGLEN);
		return -1;
	}
	return 0;
}

/* EncryptAndHash: out holds plen (+ tag once keyed) bytes; returns its length. */
static size_t
encrypt_and_hash(struct noise_hs *hs, const uint8_t *plain, size_t plen, uint8_t *out)
{
	size_t clen = plen;

	if (hs->cs.has_key) {
		aead_encrypt(hs->cs.k, hs->cs.n, hs->h, NOISE_HASHLEN, plain, plen, out);
		hs->cs.n++;
		clen += NOISE_TAGLEN;
	} else if (plen > 0) {
		memmove(out, plain, plen);
	}
	mix_hash(hs, out, clen);
	return clen;
}

/* DecryptAndHash over exactly clen bytes (the caller computed clen). */
static int
decrypt_and_hash(struct noise_hs *hs, const uint8_t *cipher, size_t clen, uint8_t *out)
{
	uint8_t h[NOISE_HASHLEN];
	int ret = 0;

	/* hash the ciphertext first so that out may overlap it */
	hash2(h, hs->h, NOISE_HASHLEN, cipher, clen);
	if (hs->cs.has_key) {
		if (aead_decrypt(hs->cs.k, hs->cs.n, hs->h, NOISE_HASHLEN, cipher, clen, out) != 0)
			ret = -1;
		else
			hs->cs.n++;
	} else if (clen > 0) {
		/* unreachable for XK and KK (a DH precedes every payload), kept exact */
		if (out == NULL)
			ret = -1;
		else
			memmove(out, cipher, clen);
	}
	if (ret == 0)
		memcpy(hs->h, h, NOISE_HASHLEN);
	return ret;
}

/* X25519, refusing a peer key that yields the all-zero secret (low order). */
static int
dh(uint8_t out[NOISE_DHLEN], const uint8_t priv[NOISE_DHLEN], const uint8_t pub[NOISE_DHLEN])
{
	return crypto_scalarmult(out, priv, pub) == 0 ? 0 : -1;
}

static int
mix_dh(struct noise_hs *hs, enum token tok)
{
	const uint8_t *priv, *pub;
	bool need_re, need_rs;
	uint8_t secret[NOISE_DHLEN];
	int ret;

	/* es: initiator's e with responder's s; se: initiator's s with responder's e */
	switch (tok) {
	case TOK_EE:
		priv = hs->e_priv, pub = hs->re, need_re = true;
		break;
	case TOK_ES:
		if (hs->initiator)
			priv = hs->e_priv, pub = hs->rs, need_re = false;
		else
			priv = hs->s_priv, pub = hs->re, need_re = true;
		break;
	case TOK_SE:
		if (hs->initiator)
			priv = hs->s_priv, pub = hs->re, need_re = true;
		else
			priv = hs->e_priv, pub = hs->rs, need_re = false;
		break;
	case TOK_SS:
		priv = hs->s_priv, pub = hs->rs, need_re = false;
		break;
	default:
		return -1;
	}
	need_rs = !need_re;
	if ((need_re && !hs->has_re) || (need_rs && !hs->has_rs))
		return -1;
	if (tok == TOK_SS && hs->has_ss) {
		mix_key(hs, hs->ss);
		return 0;
	}
	ret = dh(secret, priv, pub);
	if (ret == 0)
		mix_key(hs, secret);
	sodium_memzero(secret, sizeof(secret));
	return ret;
}

/*
 * Bytes of message hs->msg before its payload, and whether its payload is
 * encrypted (has a tag), without changing any state.
 */
static size_t
msg_prefix_len(const struct noise_hs *hs, bool *keyed)
{
	const uint8_t *t = patterns[hs->pattern].msgs[hs->msg];
	bool k = hs->cs.has_key;
	size_t len = 0;

	for (int i = 0; i < MAX_TOKENS && t[i] != TOK_END; i++) {
		if (t[i] == TOK_E)
			len += NOISE_DHLEN;
		else if (t[i] == TOK_S)
			len += NOISE_DHLEN + (k ? NOISE_TAGLEN : 0);
		else
			k = true;
	}
	*keyed = k;
	return len;
}

static void
hs_fail(struct noise_hs *hs)
{
	sodium_memzero(hs, sizeof(*hs));
	hs->state = NOISE_HS_FAILED;
}

static void
hs_advance(struct noise_hs *hs)
{
	if (++hs->msg == patterns[hs->pattern].nmsgs)
		hs->state = NOISE_HS_DONE;
}

static void
new_ephemeral(struct noise_hs *hs)
{
	if (!hs->fixed_e)
		randombytes_buf(hs->e_priv, NOISE_DHLEN);
	crypto_scalarmult_base(hs->e_pub, hs->e_priv);
}

int
noise_hs_init(struct noise_hs *hs, const struct noise_hs_params *p)
{
	const struct pattern *pat;
	uint8_t pub[NOISE_DHLEN];
	size_t nlen;

	sodium_memzero(hs, sizeof(*hs));
	if (p->pattern != NOISE_XK && p->pattern != NOISE_KK)
		goto fail;
	if (p->s_priv == NULL || (p->prologue == NULL && p->prologue_len > 0))
		goto fail;
	/* XK's responder learns rs in message 3; everyone else must know it */
	if ((p->rs == NULL) != (p->pattern == NOISE_XK && !p->initiator))
		goto fail;
	pat = &patterns[p->pattern];
	hs->pattern = p->pattern;
	hs->initiator = p->initiator;

	memcpy(hs->s_priv, p->s_priv, NOISE_DHLEN);
	if (p->s_pub != NULL)
		memcpy(pub, p->s_pub, NOISE_DHLEN);
	else if (crypto_scalarmult_base(pub, hs->s_priv) != 0)
		goto fail;
	memcpy(hs->s_pub, pub, NOISE_DHLEN);
	if (p->rs != NULL) {
		memcpy(hs->rs, p->rs, NOISE_DHLEN);
		hs->has_rs = true;
	}
	if (p->e_priv != NULL) {
		memcpy(hs->e_priv, p->e_priv, NOISE_DHLEN);
		hs->fixed_e = true;
	}
	if (p->ss != NULL && p->rs != NULL) {
		memcpy(hs->ss, p->ss, NOISE_DHLEN);
		hs->has_ss = true;
	}

	/* InitializeSymmetric: the name fits in HASHLEN, so h is it zero-padded */
	nlen = strlen(pat->name);
	memcpy(hs->h, pat->name, nlen);
	memcpy(hs->ck, hs->h, NOISE_HASHLEN);
	mix_hash(hs, p->prologue, p->prologue_len);

	/* pre-messages, initiator's first */
	if (hs->pattern == NOISE_KK)
		mix_hash(hs, hs->initiator ? hs->s_pub : hs->rs, NOISE_DHLEN);
	mix_hash(hs, hs->initiator ? hs->rs : hs->s_pub, NOISE_DHLEN);

	hs->state = NOISE_HS_ACTIVE;
	return 0;
fail:
	hs_fail(hs);
	return -1;
}

void
noise_hs_reset(struct noise_hs *hs)
{
	if (hs != NULL)
		sodium_memzero(hs, sizeof(*hs));
}

bool
noise_hs_my_turn(const struct noise_hs *hs)
{
	/* the initiator writes the even messages */
	return hs->state == NOISE_HS_ACTIVE && (hs->msg % 2 == 0) == hs->initiator;
}

bool
noise_hs_done(const struct noise_hs *hs)
{
	return hs->state == NOISE_HS_DONE || hs->state == NOISE_HS_SPLIT;
}

int
noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t plen, uint8_t *out,
    size_t outcap, size_t *outlen)
{
	const uint8_t *t;
	size_t need, off = 0;
	bool keyed;

	*outlen = 0;
	if (!noise_hs_my_turn(hs) || (payload == NULL && plen > 0) || plen > NOISE_MAX_MSG)
		goto fail;
	need = msg_prefix_len(hs, &keyed) + plen + (keyed ? NOISE_TAGLEN : 0);
	if (need > NOISE_MAX_MSG || need > outcap)
		goto fail;

	t = patterns[hs->pattern].msgs[hs->msg];
	for (int i = 0; i < MAX_TOKENS && t[i] != TOK_END; i++) {
		switch (t[i]) {
		case TOK_E:
			new_ephemeral(hs);
			memcpy(out + off, hs->e_pub, NOISE_DHLEN);
			off += NOISE_DHLEN;
			mix_hash(hs, hs->e_pub, NOISE_DHLEN);
			break;
		case TOK_S:
			off += encrypt_and_hash(hs, hs->s_pub, NOISE_DHLEN, out + off);
			break;
		default:
			if (mix_dh(hs, t[i]) != 0)
				goto fail;
		}
	}
	off += encrypt_and_hash(hs, payload, plen, out + off);
	hs_advance(hs);
	*outlen = off;
	return 0;
fail:
	hs_fail(hs);
	return -1;
}

int
noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t mlen, uint8_t *payload,
    size_t cap, size_t *plen)
{
	const uint8_t *t;
	size_t prefix, tag, body, off = 0, slen;
	bool keyed;

	*plen = 0;
	if (noise_hs_my_turn(hs) || hs->state != NOISE_HS_ACTIVE || mlen > NOISE_MAX_MSG)
		goto fail;
	prefix = msg_prefix_len(hs, &keyed);
	tag = keyed ? NOISE_TAGLEN : 0;
	if (mlen < prefix + tag)
		goto fail;
	body = mlen - prefix - tag;
	if (body > cap || (payload == NULL && body > 0))
		goto fail;

	t = patterns[hs->pattern].msgs[hs->msg];
	for (int i = 0; i < MAX_TOKENS && t[i] != TOK_END; i++) {
		switch (t[i]) {
		case TOK_E:
			memcpy(hs->re, msg + off, NOISE_DHLEN);
			hs->has_re = true;
			off += NOISE_DHLEN;
			mix_hash(hs, hs->re, NOISE_DHLEN);
			break;
		case TOK_S:
			slen = NOISE_DHLEN + (hs->cs.has_key ? NOISE_TAGLEN : 0);
			if (decrypt_and_hash(hs, msg + off, slen, hs->rs) != 0)
				goto fail;
			hs->has_rs = true;
			off += slen;
			break;
		default:
			if (mix_dh(hs, t[i]) != 0)
				goto fail;
		}
	}
	if (decrypt_and_hash(hs, msg + off, body + tag, payload) != 0)
		goto fail;
	hs_advance(hs);
	*plen = body;
	return 0;
fail:
	hs_fail(hs);
	return -1;
}

int
noise_hs_split(struct noise_hs *hs, struct noise_cipher *tx, struct noise_cipher *rx)
{
	uint8_t k1[NOISE_HASHLEN], k2[NOISE_HASHLEN];
	struct noise_cipher *c1 = hs->initiator ? tx : rx, *c2 = hs->initiator ? rx : tx;

	if (hs->state != NOISE_HS_DONE) {
		hs_fail(hs);
		return -1;
	}
	hkdf2(hs->ck, NULL, 0, k1, k2);
	memcpy(c1->k, k1, NOISE_KEYLEN);
	memcpy(c2->k, k2, NOISE_KEYLEN);
	c1->n = c2->n = 0;
	c1->has_key = c2->has_key = true;
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));

	/* the session needs only h and rs from here on */
	sodium_memzero(&hs->cs, sizeof(hs->cs));
	sodium_memzero(hs->ck, sizeof(hs->ck));
	sodium_memzero(hs->s_priv, sizeof(hs->s_priv));
	sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
	hs->state = NOISE_HS_SPLIT;
	return 0;
}

const uint8_t *
noise_hs_remote_static(const struct noise_hs *hs)
{
	if (hs->state == NOISE_HS_NONE || hs->state == NOISE_HS_FAILED || !hs->has_rs)
		return NULL;
	return hs->rs;
}

const uint8_t *
noise_hs_hash(const struct noise_hs *hs)
{
	return noise_hs_done(hs) ? hs->h : NULL;
}

int
noise_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *plain,
    size_t plen, uint8_t *out, size_t outcap, size_t *outlen)
{
	*outlen = 0;
	if (!c->has_key || c->n == UINT64_MAX)
		return -1;
	if (out == NULL || (plain == NULL && plen > 0) || (ad == NULL && adlen > 0))
		return -1;
	if (plen > NOISE_MAX_PLAIN || outcap < plen + NOISE_TAGLEN)
		return -1;
	aead_encrypt(c->k, c->n, ad, adlen, plain, plen, out);
	c->n++;
	*outlen = plen + NOISE_TAGLEN;
	return 0;
}

int
noise_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *cipher,
    size_t clen, uint8_t *out, size_t outcap, size_t *outlen)
{
	*outlen = 0;
	if (!c->has_key || c->n == UINT64_MAX)
		return -1;
	if (cipher == NULL || (ad == NULL && adlen > 0) || (out == NULL && clen > NOISE_TAGLEN))
		return -1;
	if (clen < NOISE_TAGLEN || clen > NOISE_MAX_MSG || outcap < clen - NOISE_TAGLEN)
		return -1;
	if (aead_decrypt(c->k, c->n, ad, adlen, cipher, clen, out) != 0)
		return -1;
	c->n++;
	*outlen = clen - NOISE_TAGLEN;
	return 0;
}

int
noise_cipher_rekey(struct noise_cipher *c)
{
	static const uint8_t zeros[NOISE_KEYLEN];
	uint8_t out[NOISE_KEYLEN + NOISE_TAGLEN];

	if (!c->has_key)
		return -1;
	/* REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zeros) */
	aead_encrypt(c->k, UINT64_MAX, NULL, 0, zeros, sizeof(zeros), out);
	memcpy(c->k, out, NOISE_KEYLEN);
	sodium_memzero(out, sizeof(out));
	return 0;
}

void
noise_cipher_reset(struct noise_cipher *c)
{
	if (c != NULL)
		sodium_memzero(c, sizeof(*c));
}
