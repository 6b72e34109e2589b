/*
 * crypto: keys, hex, signatures and hashes on libsodium (crypto.md).
 *
 * The one idea: every text form that names a key has exactly one spelling.
 * Hex decoding is strict about length (no trailing junk, no short input), and
 * a PK must be lowercase and not the null key, so a PK string can be used as
 * a store key or set member without two spellings aliasing one identity.
 * Seeds and secret keys are wiped from the stack after use.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto.h"
#include "log.h"

int
sw_crypto_init(void)
{
	if (sodium_init() < 0) {
		sw_log_error("crypto", "libsodium failed to start", NULL);
		return -1;
	}
	return 0;
}

void
sw_hex_encode(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* 0..15, or -1; upper case only when allowed. */
static int
hex_nibble(char c, int upper_ok)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (upper_ok && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Validate all of hex before writing out, so a refused input leaves out
 * untouched.  The length scan stops at 2*len+1, so a huge string costs no
 * more than a right one.
 */
static int
hex_decode(uint8_t *out, size_t len, const char *hex, int upper_ok)
{
	size_t i;

	if (hex == NULL)
		return -1;
	for (i = 0; i < 2 * len; i++)
		if (hex[i] == '\0' || hex_nibble(hex[i], upper_ok) < 0)
			return -1;
	if (hex[i] != '\0')
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (uint8_t)(hex_nibble(hex[2 * i], upper_ok) << 4 |
		    hex_nibble(hex[2 * i + 1], upper_ok));
	return 0;
}

int
sw_hex_decode(uint8_t *out, size_t len, const char *hex)
{
	return hex_decode(out, len, hex, 1);
}

void
sw_keypair_generate(struct sw_keypair *kp)
{
	crypto_sign_keypair(kp->pk, kp->sk);
}

int
sw_keypair_from_seed(struct sw_keypair *kp, const uint8_t seed[SW_SEED_LEN])
{
	if (crypto_sign_seed_keypair(kp->pk, kp->sk, seed) != 0)
		return -1;
	return 0;
}

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

int
sw_keypair_from_hex(struct sw_keypair *kp, const char *seed_hex, const char *pk_hex,
    char *err, size_t errlen)
{
	uint8_t seed[SW_SEED_LEN];
	uint8_t pk[SW_PK_LEN];
	int ret = -1;

	if (hex_decode(seed, sizeof(seed), seed_hex, 1) == -1) {
		set_err(err, errlen, "secret_key is not 64 hex chars");
		goto fail;
	}
	if (sw_keypair_from_seed(kp, seed) == -1) {
		set_err(err, errlen, "secret_key is refused by libsodium");
		goto fail;
	}
	if (pk_hex != NULL) {
		if (hex_decode(pk, sizeof(pk), pk_hex, 1) == -1) {
			set_err(err, errlen, "public_key is not 64 hex chars");
			goto fail;
		}
		if (sodium_memcmp(pk, kp->pk, sizeof(pk)) != 0) {
			set_err(err, errlen, "public_key does not match secret_key");
			goto fail;
		}
	}
	ret = 0;
fail:
	if (ret == -1)
		sodium_memzero(kp, sizeof(*kp));
	sodium_memzero(seed, sizeof(seed));
	return ret;
}

void
sw_keypair_seed_hex(const struct sw_keypair *kp, char out[SW_PK_HEX])
{
	/* libsodium's sk is seed || pk. */
	sw_hex_encode(out, kp->sk, SW_SEED_LEN);
}

int
sw_pk_parse(uint8_t pk[SW_PK_LEN], const char *hex)
{
	uint8_t tmp[SW_PK_LEN];

	if (hex_decode(tmp, sizeof(tmp), hex, 0) == -1 || sw_pk_is_null(tmp))
		return -1;
	memcpy(pk, tmp, sizeof(tmp));
	return 0;
}

int
sw_pk_is_null(const uint8_t pk[SW_PK_LEN])
{
	return sodium_is_zero(pk, SW_PK_LEN);
}

void
sw_sign(uint8_t sig[SW_SIG_LEN], const uint8_t *msg, size_t len, const struct sw_keypair *kp)
{
	crypto_sign_detached(sig, NULL, msg, len, kp->sk);
}

int
sw_verify(const uint8_t sig[SW_SIG_LEN], const uint8_t *msg, size_t len,
    const uint8_t pk[SW_PK_LEN])
{
	/* libsodium already refuses small-order keys; the null PK is one, but say it. */
	if (sw_pk_is_null(pk))
		return -1;
	if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
		return -1;
	return 0;
}

void
sw_hash(uint8_t out[SW_HASH_LEN], const uint8_t *msg, size_t len)
{
	crypto_generichash(out, SW_HASH_LEN, msg, len, NULL, 0);
}

int
sw_pk_to_x25519(uint8_t out[32], const uint8_t pk[SW_PK_LEN])
{
	if (crypto_sign_ed25519_pk_to_curve25519(out, pk) != 0)
		return -1;
	return 0;
}

int
sw_sk_to_x25519(uint8_t out[32], const struct sw_keypair *kp)
{
	if (crypto_sign_ed25519_sk_to_curve25519(out, kp->sk) != 0)
		return -1;
	return 0;
}
