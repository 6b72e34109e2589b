/*
 * crypto: keys, hex, signatures and hashes (crypto.md), all on libsodium.
 *
 * Identity keys are Ed25519; a secret key on disk is the 32-byte seed.  The
 * null PK is never valid.  Hashes are BLAKE2b-256.
 */
#ifndef SW_CRYPTO_H
#define SW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SW_PK_LEN   32
#define SW_SEED_LEN 32
#define SW_SK_LEN   64 /* libsodium's seed||pk form, only in memory */
#define SW_SIG_LEN  64
#define SW_HASH_LEN 32
#define SW_PK_HEX   (2 * SW_PK_LEN + 1)  /* with NUL */
#define SW_SIG_HEX  (2 * SW_SIG_LEN + 1)

struct sw_keypair {
	uint8_t pk[SW_PK_LEN];
	uint8_t sk[SW_SK_LEN];
};

/* sodium_init once; -1 if libsodium cannot start. */
int sw_crypto_init(void);

/* Lowercase hex; out must hold 2*len+1. */
void sw_hex_encode(char *out, const uint8_t *in, size_t len);
/* Exactly 2*len hex chars (either case) into len bytes; -1 otherwise (out untouched). */
int sw_hex_decode(uint8_t *out, size_t len, const char *hex);

void sw_keypair_generate(struct sw_keypair *kp);
int sw_keypair_from_seed(struct sw_keypair *kp, const uint8_t seed[SW_SEED_LEN]);
/*
 * From config strings: seed_hex required; pk_hex may be NULL, else must match
 * the seed.  -1 with err filled ("secret_key is not 64 hex chars", "public_key
 * does not match secret_key").
 */
int sw_keypair_from_hex(struct sw_keypair *kp, const char *seed_hex, const char *pk_hex,
    char *err, size_t errlen);
void sw_keypair_seed_hex(const struct sw_keypair *kp, char out[SW_PK_HEX]);

/*
 * Exactly 64 lowercase hex chars, not all zero; -1 otherwise (pk untouched).
 * Upper case is refused so that one key has one spelling (crypto.md: PKs are
 * lowercase hex), which lets services use the text as a store key.
 */
int sw_pk_parse(uint8_t pk[SW_PK_LEN], const char *hex);
int sw_pk_is_null(const uint8_t pk[SW_PK_LEN]);

void sw_sign(uint8_t sig[SW_SIG_LEN], const uint8_t *msg, size_t len,
    const struct sw_keypair *kp);
/* 0 if valid; -1 for a bad signature, the null PK or a small-order PK. */
int sw_verify(const uint8_t sig[SW_SIG_LEN], const uint8_t *msg, size_t len,
    const uint8_t pk[SW_PK_LEN]);
void sw_hash(uint8_t out[SW_HASH_LEN], const uint8_t *msg, size_t len);

/* Ed25519 -> X25519 for Noise. -1 on a key libsodium refuses. */
int sw_pk_to_x25519(uint8_t out[32], const uint8_t pk[SW_PK_LEN]);
int sw_sk_to_x25519(uint8_t out[32], const struct sw_keypair *kp);

#endif
