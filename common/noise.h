/*
 * noise: the Noise Protocol Framework (revision 34), cut down to the two
 * protocols skywire-c speaks (dmsg.md):
 *
 *   Noise_XK_25519_ChaChaPoly_BLAKE2b   dmsg sessions, client -> server
 *   Noise_KK_25519_ChaChaPoly_BLAKE2b   dmsg streams, end to end
 *
 * The one idea: a handshake is a fixed script of tokens per message, so the
 * state machine is a table, and every length a message can have is known
 * before a byte is written or trusted.  Nothing here allocates; a caller
 * embeds struct noise_hs and struct noise_cipher where it keeps its session.
 *
 * A handshake that has returned -1 once is dead (a truncated or forged message
 * leaves its transcript undefined); noise_hs_reset() wipes it.  Transport
 * ciphers use Noise's implicit counter nonces; a message that fails to decrypt
 * does not consume a nonce, so a peer cannot desynchronise us with garbage,
 * but the caller should drop the connection anyway.
 *
 * No framing here: dmsg puts a u16 big-endian length before every message.
 */
#ifndef SW_NOISE_H
#define SW_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_DHLEN	32	/* X25519 key or shared secret */
#define NOISE_KEYLEN	32	/* ChaChaPoly key */
#define NOISE_HASHLEN	64	/* BLAKE2b-512 */
#define NOISE_TAGLEN	16	/* Poly1305 tag */
#define NOISE_MAX_MSG	65535	/* any Noise message, tag included */
#define NOISE_MAX_PLAIN	(NOISE_MAX_MSG - NOISE_TAGLEN)

enum noise_pattern {
	NOISE_XK = 0,
	NOISE_KK,
};

/* One direction of a transport (or the handshake's own CipherState). */
struct noise_cipher {
	uint8_t		k[NOISE_KEYLEN];
	uint64_t	n;		/* next nonce; UINT64_MAX is never used */
	bool		has_key;
};

/*
 * What a handshake starts from.  Keys are raw X25519, 32 bytes each.
 *   s_priv      our static private key (required)
 *   s_pub       our static public key, or NULL to derive it.  Given, it is
 *               used as it is (one scalar multiplication less per handshake,
 *               ~35 us, twice per dmsg stream): a key that does not match
 *               s_priv makes the handshake fail at the peer, never succeed
 *   rs          the peer's static public key: required for an XK initiator
 *               and both KK sides, must be NULL for an XK responder (it
 *               learns it from message 3)
 *   e_priv      a fixed ephemeral private key, for test vectors only; NULL
 *               draws a fresh one from libsodium
 */
struct noise_hs_params {
	enum noise_pattern	 pattern;
	bool			 initiator;
	const uint8_t		*prologue;
	size_t			 prologue_len;
	const uint8_t		*s_priv;
	const uint8_t		*s_pub;
	const uint8_t		*rs;
	const uint8_t		*e_priv;
	/*
	 * DH(s_priv, rs) when the caller already has it (NULL: computed at
	 * the ss token).  It is the same for every handshake of a pair of
	 * static keys, so a caller that meets the same peers again and again
	 * keeps it and saves one X25519 per handshake at each end.
	 */
	const uint8_t		*ss;
};

/*
 * Handshake state.  The fields are visible only so that it can be embedded
 * without a heap; use the functions.
 */
struct noise_hs {
	struct noise_cipher	cs;
	uint8_t			ck[NOISE_HASHLEN];
	uint8_t			h[NOISE_HASHLEN];
	uint8_t			s_priv[NOISE_DHLEN];
	uint8_t			s_pub[NOISE_DHLEN];
	uint8_t			e_priv[NOISE_DHLEN];
	uint8_t			e_pub[NOISE_DHLEN];
	uint8_t			rs[NOISE_DHLEN];
	uint8_t			re[NOISE_DHLEN];
	uint8_t			ss[NOISE_DHLEN];	/* given: has_ss */
	enum noise_pattern	pattern;
	bool			initiator;
	bool			has_rs;
	bool			has_re;
	bool			fixed_e;
	bool			has_ss;
	unsigned		msg;		/* index of the next message */
	int			state;		/* NOISE_HS_* in noise.c */
};

/* sodium_init() must have succeeded.  -1 on a bad parameter set. */
int noise_hs_init(struct noise_hs *hs, const struct noise_hs_params *p);
/* Wipe every secret; the state must be initialised again before use. */
void noise_hs_reset(struct noise_hs *hs);

/*
 * Write our next handshake message (payload may be NULL if plen is 0) into
 * out[outcap].  -1 if it is not our turn, out is too small, the message would
 * exceed NOISE_MAX_MSG, or DH fails.  Handshake payloads before the first DH
 * are sent in clear (never the case for XK and KK message 1, which carry es).
 */
int noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t outcap, size_t *outlen);
/*
 * Read the peer's next handshake message; its decrypted payload goes to
 * payload[cap] (NULL allowed if cap is 0).  -1 on a message of the wrong
 * length, a failed tag, a bad public key, or a payload larger than cap.
 */
int noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t cap, size_t *plen);

/* Our turn to write (false when done or dead). */
bool noise_hs_my_turn(const struct noise_hs *hs);
/* Every handshake message has been written or read. */
bool noise_hs_done(const struct noise_hs *hs);
/*
 * Derive the transport ciphers: tx encrypts what we send, rx decrypts what we
 * receive.  Only once, after noise_hs_done(); wipes the chaining key and
 * ephemeral keys.  The handshake hash and remote static stay readable.
 */
int noise_hs_split(struct noise_hs *hs, struct noise_cipher *tx, struct noise_cipher *rx);
/* The peer's static public key (32 bytes), or NULL while unknown. */
const uint8_t *noise_hs_remote_static(const struct noise_hs *hs);
/* The handshake hash h (NOISE_HASHLEN bytes) once done, else NULL. */
const uint8_t *noise_hs_hash(const struct noise_hs *hs);

/*
 * Transport.  out needs plen + NOISE_TAGLEN bytes (encrypt) or
 * clen - NOISE_TAGLEN (decrypt), checked against outcap; out may equal the
 * input (in place), but must not otherwise overlap it.  -1 on a message
 * larger than NOISE_MAX_MSG, a short buffer, a cipher without a key, an
 * exhausted nonce, or (decrypt) a failed tag, in which case out is zeroed
 * and the nonce is not consumed.
 */
int noise_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *plain, size_t plen, uint8_t *out, size_t outcap, size_t *outlen);
int noise_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *cipher, size_t clen, uint8_t *out, size_t outcap, size_t *outlen);
/* Noise's REKEY(): a new key from the old one, nonce unchanged. */
int noise_cipher_rekey(struct noise_cipher *c);
void noise_cipher_reset(struct noise_cipher *c);

#endif
