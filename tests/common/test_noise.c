/*
 * test_noise: common/noise.c against the published Noise test vectors for
 * Noise_XK/KK_25519_ChaChaPoly_BLAKE2b (tests/vectors/noise.json, see
 * tests/vectors/README.md for their sources), then against what a hostile
 * peer sends: truncated, bit-flipped, oversized and misaddressed messages,
 * replays and exhausted nonces.
 * tests/lib/vectors.h finds the file ($SW_VECTORS names a directory holding it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "noise.h"
#include "tests/lib/vectors.h"

#define MAXMSG       NOISE_MAX_MSG

static const uint8_t PROLOGUE[] = "dmsg/1";

/* ---------- helpers ---------- */

/* A vector's hex field, or NULL if absent; if want > 0 it must be that long. */
static uint8_t *
field(const cJSON *v, const char *name, size_t want, size_t *len)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, name);
	size_t n;
	uint8_t *b;

	if (f == NULL)
		return NULL;
	assert_true(cJSON_IsString(f));
	b = sw_test_unhex(f->valuestring, &n);
	if (want > 0)
		assert_int_equal(n, want);
	if (len != NULL)
		*len = n;
	return b;
}

static void
keypair(uint8_t priv[32], uint8_t pub[32])
{
	randombytes_buf(priv, 32);
	crypto_scalarmult_base(pub, priv);
}

/* Two parties and their keys, for the synthetic tests. */
struct pair {
	enum noise_pattern	pattern;
	uint8_t			is[32], ip[32], rs[32], rp[32];	/* statics */
	uint8_t			ie[32], re[32];			/* fixed ephemerals */
	struct noise_hs		i, r;
	uint8_t			msg[MAXMSG];
	size_t			mlen;
};

static void
pair_keys(struct pair *p, enum noise_pattern pat)
{
	memset(p, 0, sizeof(*p));
	p->pattern = pat;
	keypair(p->is, p->ip);
	keypair(p->rs, p->rp);
	randombytes_buf(p->ie, 32);
	randombytes_buf(p->re, 32);
}

/* (Re)start both sides; the initiator believes the responder is irs. */
static void
pair_init(struct pair *p, const uint8_t *irs)
{
	struct noise_hs_params ip = {
		p->pattern, true, PROLOGUE, sizeof(PROLOGUE) - 1, p->is, p->ip,
		irs != NULL ? irs : p->rp, p->ie, NULL,
	};
	struct noise_hs_params rp = {
		p->pattern, false, PROLOGUE, sizeof(PROLOGUE) - 1, p->rs, p->rp,
		p->pattern == NOISE_KK ? p->ip : NULL, p->re, NULL,
	};

	assert_int_equal(noise_hs_init(&p->i, &ip), 0);
	assert_int_equal(noise_hs_init(&p->r, &rp), 0);
}

static unsigned
nmsgs(enum noise_pattern pat)
{
	return pat == NOISE_XK ? 3 : 2;
}

/* Message k's writer and reader. */
static struct noise_hs *
writer(struct pair *p, unsigned k)
{
	return k % 2 == 0 ? &p->i : &p->r;
}

static struct noise_hs *
reader(struct pair *p, unsigned k)
{
	return k % 2 == 0 ? &p->r : &p->i;
}

/* Run messages 0..k-1 honestly, then write message k into p->msg. */
static void
pair_upto(struct pair *p, unsigned k, const uint8_t *payload, size_t plen)
{
	uint8_t buf[64];
	size_t n;

	pair_init(p, NULL);
	for (unsigned j = 0; j < k; j++) {
		assert_int_equal(noise_hs_write(writer(p, j), NULL, 0, p->msg, sizeof(p->msg),
		    &p->mlen), 0);
		assert_int_equal(noise_hs_read(reader(p, j), p->msg, p->mlen, buf, sizeof(buf),
		    &n), 0);
		assert_int_equal(n, 0);
	}
	assert_int_equal(noise_hs_write(writer(p, k), payload, plen, p->msg, sizeof(p->msg),
	    &p->mlen), 0);
}

/* ---------- the published vectors ---------- */

struct party {
	struct noise_hs		hs;
	struct noise_cipher	tx, rx;
};

/* KK with the static-static secret given (noise_hs_params.ss), as dmsg streams do. */
static bool given_ss;

static void
party_init(struct party *pt, const cJSON *v, enum noise_pattern pat, bool initiator)
{
	const char *pre = initiator ? "init_" : "resp_";
	char name[64];
	uint8_t *prologue, *s, *e, *rs, ss[32];
	size_t plen = 0;
	struct noise_hs_params p;

	snprintf(name, sizeof(name), "%sprologue", pre);
	prologue = field(v, name, 0, &plen);
	snprintf(name, sizeof(name), "%sstatic", pre);
	s = field(v, name, 32, NULL);
	snprintf(name, sizeof(name), "%sephemeral", pre);
	e = field(v, name, 32, NULL);
	snprintf(name, sizeof(name), "%sremote_static", pre);
	rs = field(v, name, 32, NULL);
	assert_non_null(s);
	assert_non_null(e);

	p = (struct noise_hs_params){ pat, initiator, prologue, plen, s, NULL, rs, e, NULL };
	if (given_ss && pat == NOISE_KK) {
		assert_int_equal(crypto_scalarmult(ss, s, rs), 0);
		p.ss = ss;
	}
	assert_int_equal(noise_hs_init(&pt->hs, &p), 0);
	free(prologue);
	free(s);
	free(e);
	free(rs);
}

static void
run_vector(const cJSON *v, enum noise_pattern pat)
{
	static uint8_t out[MAXMSG], got[MAXMSG];
	struct party ini, res;
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(v, "messages"), *m;
	unsigned k = 0;
	uint8_t *hh;
	size_t olen, glen;

	party_init(&ini, v, pat, true);
	party_init(&res, v, pat, false);
	assert_true(cJSON_IsArray(msgs));
	assert_true(cJSON_GetArraySize(msgs) >= (int)nmsgs(pat));

	cJSON_ArrayForEach(m, msgs) {
		struct party *w = k % 2 == 0 ? &ini : &res, *r = k % 2 == 0 ? &res : &ini;
		size_t plen = 0, clen = 0;
		uint8_t *pl = field(m, "payload", 0, &plen), *ct = field(m, "ciphertext", 0, &clen);

		assert_non_null(pl);
		assert_non_null(ct);
		if (k < nmsgs(pat)) {
			assert_true(noise_hs_my_turn(&w->hs));
			assert_int_equal(noise_hs_write(&w->hs, pl, plen, out, sizeof(out), &olen),
			    0);
			assert_int_equal(olen, clen);
			assert_memory_equal(out, ct, clen);
			assert_int_equal(noise_hs_read(&r->hs, ct, clen, got, sizeof(got), &glen),
			    0);
			if (k + 1 == nmsgs(pat)) {
				assert_true(noise_hs_done(&ini.hs));
				assert_true(noise_hs_done(&res.hs));
				assert_int_equal(noise_hs_split(&ini.hs, &ini.tx, &ini.rx), 0);
				assert_int_equal(noise_hs_split(&res.hs, &res.tx, &res.rx), 0);
			}
		} else {
			assert_int_equal(noise_encrypt(&w->tx, NULL, 0, pl, plen, out, sizeof(out),
			    &olen), 0);
			assert_int_equal(olen, clen);
			assert_memory_equal(out, ct, clen);
			assert_int_equal(noise_decrypt(&r->rx, NULL, 0, ct, clen, got, sizeof(got),
			    &glen), 0);
		}
		assert_int_equal(glen, plen);
		assert_memory_equal(got, pl, plen);
		free(pl);
		free(ct);
		k++;
	}

	/* both sides agree on h, and with the vector when it gives one */
	assert_non_null(noise_hs_hash(&ini.hs));
	assert_memory_equal(noise_hs_hash(&ini.hs), noise_hs_hash(&res.hs), NOISE_HASHLEN);
	if ((hh = field(v, "handshake_hash", NOISE_HASHLEN, NULL)) != NULL) {
		assert_memory_equal(noise_hs_hash(&ini.hs), hh, NOISE_HASHLEN);
		free(hh);
	}
	noise_hs_reset(&ini.hs);
	noise_hs_reset(&res.hs);
}

static void
test_vectors(void **state)
{
	const cJSON *doc = *state, *vs = cJSON_GetObjectItemCaseSensitive(doc, "vectors"), *v;
	unsigned nxk = 0, nkk = 0;

	assert_true(cJSON_IsArray(vs));
	cJSON_ArrayForEach(v, vs) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "protocol_name");

		assert_true(cJSON_IsString(name));
		if (strcmp(name->valuestring, "Noise_XK_25519_ChaChaPoly_BLAKE2b") == 0) {
			run_vector(v, NOISE_XK);
			nxk++;
		} else if (strcmp(name->valuestring, "Noise_KK_25519_ChaChaPoly_BLAKE2b") == 0) {
			run_vector(v, NOISE_KK);
			given_ss = true; /* the same bytes with ss computed ahead */
			run_vector(v, NOISE_KK);
			given_ss = false;
			nkk++;
		} else {
			fail_msg("unexpected vector %s", name->valuestring);
		}
	}
	/* the file holds four of each (README.md); none may be skipped silently */
	assert_int_equal(nxk, 4);
	assert_int_equal(nkk, 4);
}

/* ---------- hostile handshake input ---------- */

/* A KK responder given the wrong static-static secret refuses message 1. */
static void
test_kk_wrong_ss(void **state)
{
	static struct pair p;
	uint8_t bad[32], buf[64];
	struct noise_hs_params rp;
	size_t n;

	(void)state;
	pair_keys(&p, NOISE_KK);
	pair_init(&p, NULL);
	randombytes_buf(bad, sizeof(bad));
	rp = (struct noise_hs_params){ NOISE_KK, false, PROLOGUE, sizeof(PROLOGUE) - 1, p.rs,
	    p.rp, p.ip, p.re, bad };
	assert_int_equal(noise_hs_init(&p.r, &rp), 0);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);
	noise_hs_reset(&p.i);
	noise_hs_reset(&p.r);
}

static void
test_truncated(void **state)
{
	static struct pair p;
	static uint8_t msg[MAXMSG];
	const uint8_t payload[] = "hello";
	uint8_t buf[64];
	size_t full, n;

	(void)state;
	for (int pat = NOISE_XK; pat <= NOISE_KK; pat++) {
		pair_keys(&p, (enum noise_pattern)pat);
		for (unsigned k = 0; k < nmsgs(p.pattern); k++) {
			pair_upto(&p, k, payload, sizeof(payload));
			memcpy(msg, p.msg, p.mlen);
			full = p.mlen;
			for (size_t cut = 0; cut < full; cut++) {
				pair_upto(&p, k, payload, sizeof(payload));
				assert_int_equal(noise_hs_read(reader(&p, k), msg, cut, buf,
				    sizeof(buf), &n), -1);
				assert_int_equal(n, 0);
				assert_false(noise_hs_done(reader(&p, k)));
				/* dead: even the honest message is refused now */
				assert_int_equal(noise_hs_read(reader(&p, k), msg, full, buf,
				    sizeof(buf), &n), -1);
				assert_null(noise_hs_remote_static(reader(&p, k)));
			}
			/* one trailing byte too many fails the payload tag */
			pair_upto(&p, k, payload, sizeof(payload));
			msg[full] = 0;
			assert_int_equal(noise_hs_read(reader(&p, k), msg, full + 1, buf,
			    sizeof(buf), &n), -1);
			/* and the untouched message still passes */
			pair_upto(&p, k, payload, sizeof(payload));
			assert_int_equal(noise_hs_read(reader(&p, k), msg, full, buf, sizeof(buf),
			    &n), 0);
			assert_int_equal(n, sizeof(payload));
			assert_memory_equal(buf, payload, n);
		}
	}
}

static void
test_oversize(void **state)
{
	static struct pair p;
	static uint8_t big[NOISE_MAX_MSG + 2], pl[NOISE_MAX_MSG];
	const size_t maxpl = NOISE_MAX_MSG - 32 - NOISE_TAGLEN;	/* XK message 1 */
	uint8_t small[4];
	size_t n;

	(void)state;
	pair_keys(&p, NOISE_XK);
	/* a payload that would make message 1 exceed 65535 bytes is not written */
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, pl, maxpl + 1, big, sizeof(big), &n), -1);
	assert_int_equal(n, 0);

	/* the largest legal one is written and read, but not into a short buffer */
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, pl, maxpl, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(p.mlen, NOISE_MAX_MSG);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, pl, maxpl - 1, &n), -1);
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, pl, maxpl, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, pl, sizeof(pl), &n), 0);
	assert_int_equal(n, maxpl);

	/* a reader refuses anything longer than a Noise message, whatever cap says */
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_read(&p.r, big, NOISE_MAX_MSG + 1, big, sizeof(big), &n), -1);
	/* writing into a buffer too small refuses instead of overflowing */
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, small, sizeof(small), &n), -1);
	assert_int_equal(n, 0);
	/* a NULL payload with a length is a caller bug, refused */
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, NULL, 1, p.msg, sizeof(p.msg), &n), -1);
}

static void
test_bitflip(void **state)
{
	static struct pair p;
	static uint8_t msg[MAXMSG];
	const uint8_t payload[] = "payload";
	uint8_t buf[64];
	size_t full, n;

	(void)state;
	for (int pat = NOISE_XK; pat <= NOISE_KK; pat++) {
		pair_keys(&p, (enum noise_pattern)pat);
		for (unsigned k = 0; k < nmsgs(p.pattern); k++) {
			pair_upto(&p, k, payload, sizeof(payload));
			memcpy(msg, p.msg, p.mlen);
			full = p.mlen;
			for (size_t bit = 0; bit < full * 8; bit++) {
				pair_upto(&p, k, payload, sizeof(payload));
				msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				assert_int_equal(noise_hs_read(reader(&p, k), msg, full, buf,
				    sizeof(buf), &n), -1);
				msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
		}
	}
}

/* A peer's e that is a low-order point gives an all-zero DH: refused. */
static void
test_low_order_point(void **state)
{
	static struct pair p;
	uint8_t buf[64];
	size_t n;

	(void)state;
	pair_keys(&p, NOISE_XK);
	pair_upto(&p, 0, NULL, 0);
	memset(p.msg, 0, 32);	/* e = 0 */
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);
	pair_keys(&p, NOISE_KK);
	pair_upto(&p, 1, NULL, 0);
	memset(p.msg, 0, 32);
	p.msg[0] = 1;		/* e = 1, order 1 */
	assert_int_equal(noise_hs_read(&p.i, p.msg, p.mlen, buf, sizeof(buf), &n), -1);
}

/*
 * XK: an initiator with the wrong server key is refused by the real server at
 * message 1 (es differs, so the tag fails).  An impostor server (another key)
 * that ignores that and answers is caught by the initiator at message 2.  A
 * tampered initiator static is caught by the responder at message 3, and the
 * static it accepts is the one the application must check.
 */
static void
test_xk_wrong_remote_static(void **state)
{
	static struct pair p, shadow;
	uint8_t other_priv[32], other_pub[32], buf[64];
	size_t n;

	(void)state;
	keypair(other_priv, other_pub);

	/* initiator believes the server is `other` */
	pair_keys(&p, NOISE_XK);
	pair_init(&p, other_pub);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);

	/*
	 * Impostor: a responder holding `other` answers the initiator's e.  It
	 * is fed a message 1 from a shadow initiator with the same ephemeral
	 * aimed at `other`, which is what ignoring the tag amounts to.
	 */
	pair_keys(&p, NOISE_XK);
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	shadow = p;
	memcpy(shadow.rs, other_priv, 32);
	memcpy(shadow.rp, other_pub, 32);
	pair_init(&shadow, NULL);
	assert_int_equal(noise_hs_write(&shadow.i, NULL, 0, shadow.msg, sizeof(shadow.msg),
	    &shadow.mlen), 0);
	assert_memory_equal(shadow.msg, p.msg, 32);	/* same e on the wire */
	assert_int_equal(noise_hs_read(&shadow.r, shadow.msg, shadow.mlen, buf, sizeof(buf), &n),
	    0);
	assert_int_equal(noise_hs_write(&shadow.r, NULL, 0, shadow.msg, sizeof(shadow.msg),
	    &shadow.mlen), 0);
	assert_int_equal(noise_hs_read(&p.i, shadow.msg, shadow.mlen, buf, sizeof(buf), &n), -1);

	/* message 3 with its encrypted s altered: the responder refuses it */
	pair_keys(&p, NOISE_XK);
	pair_upto(&p, 2, NULL, 0);
	p.msg[5] ^= 0x40;
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);
	assert_null(noise_hs_remote_static(&p.r));

	/* honest message 3: the responder learns exactly the initiator's key */
	pair_upto(&p, 2, NULL, 0);
	assert_null(noise_hs_remote_static(&p.r));
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), 0);
	assert_non_null(noise_hs_remote_static(&p.r));
	assert_memory_equal(noise_hs_remote_static(&p.r), p.ip, 32);
	assert_memory_not_equal(noise_hs_remote_static(&p.r), other_pub, 32);
	assert_memory_equal(noise_hs_remote_static(&p.i), p.rp, 32);
}

/* KK: either side holding the wrong static for its peer fails at message 1 or 2. */
static void
test_kk_wrong_remote_static(void **state)
{
	static struct pair p;
	uint8_t other_priv[32], other_pub[32], buf[64];
	size_t n;
	struct noise_hs_params rp;

	(void)state;
	keypair(other_priv, other_pub);

	pair_keys(&p, NOISE_KK);
	pair_init(&p, other_pub);	/* initiator aims at `other` */
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);

	pair_init(&p, NULL);		/* responder expects `other` as initiator */
	rp = (struct noise_hs_params){ NOISE_KK, false, PROLOGUE, sizeof(PROLOGUE) - 1, p.rs,
		NULL, other_pub, NULL, NULL };
	assert_int_equal(noise_hs_init(&p.r, &rp), 0);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);

	/* a different prologue is a different transcript */
	pair_init(&p, NULL);
	rp = (struct noise_hs_params){ NOISE_KK, false, (const uint8_t *)"dmsg/2", 6, p.rs,
		NULL, p.ip, NULL, NULL };
	assert_int_equal(noise_hs_init(&p.r, &rp), 0);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);
}

/* ---------- API misuse ---------- */

static void
test_misuse(void **state)
{
	static struct pair p;
	struct noise_hs hs;
	struct noise_hs_params prm;
	struct noise_cipher tx, rx;
	uint8_t buf[128], wrong_pub[32];
	size_t n;

	(void)state;
	pair_keys(&p, NOISE_XK);

	/* XK initiator must know rs; XK responder must not be given one; KK needs it */
	prm = (struct noise_hs_params){ NOISE_XK, true, NULL, 0, p.is, NULL, NULL, NULL, NULL };
	assert_int_equal(noise_hs_init(&hs, &prm), -1);
	prm = (struct noise_hs_params){ NOISE_XK, false, NULL, 0, p.rs, NULL, p.ip, NULL, NULL };
	assert_int_equal(noise_hs_init(&hs, &prm), -1);
	prm = (struct noise_hs_params){ NOISE_KK, false, NULL, 0, p.rs, NULL, NULL, NULL, NULL };
	assert_int_equal(noise_hs_init(&hs, &prm), -1);
	prm = (struct noise_hs_params){ (enum noise_pattern)7, true, NULL, 0, p.is, NULL, p.rp,
		NULL, NULL };
	assert_int_equal(noise_hs_init(&hs, &prm), -1);
	prm = (struct noise_hs_params){ NOISE_XK, true, NULL, 3, p.is, NULL, p.rp, NULL, NULL };
	assert_int_equal(noise_hs_init(&hs, &prm), -1);
	/*
	 * A public key that is not ours is taken as given (it saves the
	 * derivation), and the handshake then fails at the responder: XK's
	 * message 3 carries it, and the se DH no longer agrees.
	 */
	memcpy(wrong_pub, p.ip, 32);
	wrong_pub[0] ^= 1;
	pair_init(&p, NULL);
	prm = (struct noise_hs_params){ NOISE_XK, true, PROLOGUE, sizeof(PROLOGUE) - 1, p.is,
		wrong_pub, p.rp, p.ie, NULL };
	assert_int_equal(noise_hs_init(&p.i, &prm), 0);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), 0);
	assert_int_equal(noise_hs_write(&p.r, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.i, p.msg, p.mlen, buf, sizeof(buf), &n), 0);
	assert_int_equal(noise_hs_write(&p.i, NULL, 0, p.msg, sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), -1);
	/* the right one, given: the same handshake succeeds */
	pair_upto(&p, 2, NULL, 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), 0);

	/* out of turn */
	pair_init(&p, NULL);
	assert_true(noise_hs_my_turn(&p.i));
	assert_false(noise_hs_my_turn(&p.r));
	assert_int_equal(noise_hs_write(&p.r, NULL, 0, buf, sizeof(buf), &n), -1);
	assert_int_equal(noise_hs_read(&p.i, buf, 48, buf, sizeof(buf), &n), -1);

	/* split before done; hash before done */
	pair_init(&p, NULL);
	assert_null(noise_hs_hash(&p.i));
	assert_int_equal(noise_hs_split(&p.i, &tx, &rx), -1);

	/* payload larger than the reader's buffer */
	pair_init(&p, NULL);
	assert_int_equal(noise_hs_write(&p.i, (const uint8_t *)"0123456789", 10, p.msg,
	    sizeof(p.msg), &p.mlen), 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, 9, &n), -1);

	/* nothing more after done; a second split is refused */
	pair_upto(&p, 2, NULL, 0);
	assert_int_equal(noise_hs_read(&p.r, p.msg, p.mlen, buf, sizeof(buf), &n), 0);
	assert_true(noise_hs_done(&p.i));
	assert_false(noise_hs_my_turn(&p.i));
	assert_int_equal(noise_hs_split(&p.i, &tx, &rx), 0);
	assert_non_null(noise_hs_hash(&p.i));
	assert_int_equal(noise_hs_split(&p.i, &tx, &rx), -1);

	/* reset wipes everything */
	noise_hs_reset(&p.r);
	for (size_t i = 0; i < sizeof(p.r); i++)
		assert_int_equal(((const uint8_t *)&p.r)[i], 0);
	noise_hs_reset(NULL);
	noise_cipher_reset(&tx);
	for (size_t i = 0; i < sizeof(tx); i++)
		assert_int_equal(((const uint8_t *)&tx)[i], 0);
	noise_cipher_reset(NULL);
	/* a wiped cipher has no key */
	assert_int_equal(noise_encrypt(&tx, NULL, 0, buf, 1, buf, sizeof(buf), &n), -1);
}

/* ---------- transport ---------- */

/* Handshake a pair to the end and split; empty payloads. */
static void
pair_complete(struct pair *p, struct noise_cipher *itx, struct noise_cipher *irx,
    struct noise_cipher *rtx, struct noise_cipher *rrx)
{
	uint8_t buf[64];
	size_t n;

	pair_init(p, NULL);
	for (unsigned k = 0; k < nmsgs(p->pattern); k++) {
		assert_int_equal(noise_hs_write(writer(p, k), NULL, 0, p->msg, sizeof(p->msg),
		    &p->mlen), 0);
		assert_int_equal(noise_hs_read(reader(p, k), p->msg, p->mlen, buf, sizeof(buf),
		    &n), 0);
	}
	assert_int_equal(noise_hs_split(&p->i, itx, irx), 0);
	assert_int_equal(noise_hs_split(&p->r, rtx, rrx), 0);
}

static void
test_nonce(void **state)
{
	static struct pair p;
	struct noise_cipher itx, irx, rtx, rrx, save;
	uint8_t c0[64], c1[64], c2[64], out[64], ref[64], nonce[12] = { 0 };
	size_t n0, n1, n, rn;

	(void)state;
	pair_keys(&p, NOISE_KK);
	pair_complete(&p, &itx, &irx, &rtx, &rrx);

	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"zero", 4, c0, sizeof(c0),
	    &n0), 0);
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"one!", 4, c1, sizeof(c1),
	    &n1), 0);
	assert_int_equal(itx.n, 2);
	/* same plaintext, different nonce, different bytes */
	assert_memory_not_equal(c0, c1, n0);

	/* out of order: message 1 first fails and does not consume nonce 0 */
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c1, n1, out, sizeof(out), &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(rrx.n, 0);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, n0, out, sizeof(out), &n), 0);
	assert_memory_equal(out, "zero", 4);
	/* replay of message 0 fails */
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, n0, out, sizeof(out), &n), -1);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c1, n1, out, sizeof(out), &n), 0);
	assert_memory_equal(out, "one!", 4);
	/* a message meant for the other direction is refused */
	assert_int_equal(noise_encrypt(&rtx, NULL, 0, (const uint8_t *)"back", 4, c2, sizeof(c2),
	    &n), 0);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c2, n, out, sizeof(out), &n), -1);

	/* the nonce is 4 zero bytes then the counter little-endian */
	save = itx;
	itx.n = 0x0102030405060708ull;
	assert_int_equal(noise_encrypt(&itx, (const uint8_t *)"ad", 2, (const uint8_t *)"x", 1,
	    c2, sizeof(c2), &n), 0);
	memcpy(nonce + 4, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	crypto_aead_chacha20poly1305_ietf_encrypt(ref, NULL, (const uint8_t *)"x", 1,
	    (const uint8_t *)"ad", 2, NULL, nonce, save.k);
	assert_memory_equal(c2, ref, 1 + NOISE_TAGLEN);

	/* 2^64-1 is reserved: the last usable nonce is 2^64-2 */
	itx = save;
	rrx.n = itx.n = UINT64_MAX - 1;
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"last", 4, c2, sizeof(c2),
	    &n), 0);
	assert_int_equal(itx.n, UINT64_MAX);
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"more", 4, c0, sizeof(c0),
	    &n0), -1);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c2, n, out, sizeof(out), &rn), 0);
	assert_int_equal(rrx.n, UINT64_MAX);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c2, n, out, sizeof(out), &rn), -1);

	/* lengths: short ciphertext, short output, oversize plaintext */
	pair_complete(&p, &itx, &irx, &rtx, &rrx);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, NOISE_TAGLEN - 1, out, sizeof(out), &n),
	    -1);
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"abcd", 4, c0, 4 + 15, &n),
	    -1);
	assert_int_equal(itx.n, 0);
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"abcd", 4, c0, sizeof(c0),
	    &n0), 0);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, n0, out, 3, &n), -1);
	assert_int_equal(rrx.n, 0);
	/* wrong associated data */
	assert_int_equal(noise_decrypt(&rrx, (const uint8_t *)"x", 1, c0, n0, out, sizeof(out),
	    &n), -1);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, n0, out, sizeof(out), &n), 0);
	{
		static uint8_t big[NOISE_MAX_MSG + 16];

		assert_int_equal(noise_encrypt(&itx, NULL, 0, big, NOISE_MAX_PLAIN + 1, big,
		    sizeof(big), &n), -1);
		assert_int_equal(noise_encrypt(&itx, NULL, 0, big, NOISE_MAX_PLAIN, big,
		    sizeof(big), &n), 0);	/* in place */
		assert_int_equal(n, NOISE_MAX_MSG);
		assert_int_equal(noise_decrypt(&rrx, NULL, 0, big, n, big, sizeof(big), &n), 0);
		assert_int_equal(n, NOISE_MAX_PLAIN);
		assert_int_equal(noise_decrypt(&rrx, NULL, 0, big, NOISE_MAX_MSG + 1, big,
		    sizeof(big), &n), -1);
	}

	/* rekey on both ends keeps them in step; on one end only breaks them */
	assert_int_equal(noise_cipher_rekey(&itx), 0);
	assert_int_equal(noise_cipher_rekey(&rrx), 0);
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"rk", 2, c0, sizeof(c0),
	    &n0), 0);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, n0, out, sizeof(out), &n), 0);
	assert_int_equal(noise_cipher_rekey(&itx), 0);
	assert_int_equal(noise_encrypt(&itx, NULL, 0, (const uint8_t *)"rk", 2, c0, sizeof(c0),
	    &n0), 0);
	assert_int_equal(noise_decrypt(&rrx, NULL, 0, c0, n0, out, sizeof(out), &n), -1);
}

/* Random keys, random payloads, both directions, 1000 transport messages. */
static void
full_session(enum noise_pattern pat)
{
	static struct pair p;
	static uint8_t plain[4096], ct[4096 + NOISE_TAGLEN], got[4096];
	struct noise_cipher itx, irx, rtx, rrx;
	const uint8_t hello[] = "pk-of-the-initiator";
	uint8_t buf[64];
	size_t n, cn;

	pair_keys(&p, pat);
	pair_init(&p, NULL);
	p.pattern = pat;
	/* handshake with fresh random ephemerals this time */
	{
		struct noise_hs_params ip = { pat, true, PROLOGUE, sizeof(PROLOGUE) - 1, p.is,
			p.ip, p.rp, NULL, NULL };
		struct noise_hs_params rp = { pat, false, PROLOGUE, sizeof(PROLOGUE) - 1, p.rs,
			NULL, pat == NOISE_KK ? p.ip : NULL, NULL, NULL };

		assert_int_equal(noise_hs_init(&p.i, &ip), 0);
		assert_int_equal(noise_hs_init(&p.r, &rp), 0);
	}
	for (unsigned k = 0; k < nmsgs(pat); k++) {
		bool last = k + 1 == nmsgs(pat);

		assert_int_equal(noise_hs_write(writer(&p, k), last ? hello : NULL,
		    last ? sizeof(hello) : 0, p.msg, sizeof(p.msg), &p.mlen), 0);
		assert_int_equal(noise_hs_read(reader(&p, k), p.msg, p.mlen, buf, sizeof(buf),
		    &n), 0);
		if (last) {
			assert_int_equal(n, sizeof(hello));
			assert_memory_equal(buf, hello, n);
		}
	}
	assert_true(noise_hs_done(&p.i) && noise_hs_done(&p.r));
	assert_memory_equal(noise_hs_remote_static(&p.r), p.ip, 32);
	assert_memory_equal(noise_hs_remote_static(&p.i), p.rp, 32);
	assert_int_equal(noise_hs_split(&p.i, &itx, &irx), 0);
	assert_int_equal(noise_hs_split(&p.r, &rtx, &rrx), 0);
	assert_memory_equal(noise_hs_hash(&p.i), noise_hs_hash(&p.r), NOISE_HASHLEN);
	/* the two directions have different keys */
	assert_memory_not_equal(itx.k, irx.k, NOISE_KEYLEN);
	assert_memory_equal(itx.k, rrx.k, NOISE_KEYLEN);
	assert_memory_equal(irx.k, rtx.k, NOISE_KEYLEN);

	for (unsigned i = 0; i < 1000; i++) {
		bool from_i = randombytes_uniform(2) == 0;
		struct noise_cipher *tx = from_i ? &itx : &rtx, *rx = from_i ? &rrx : &irx;
		size_t len = randombytes_uniform(sizeof(plain) + 1);
		uint8_t ad[8];

		randombytes_buf(plain, len);
		randombytes_buf(ad, sizeof(ad));
		assert_int_equal(noise_encrypt(tx, ad, i % 2 ? sizeof(ad) : 0, plain, len, ct,
		    sizeof(ct), &cn), 0);
		assert_int_equal(cn, len + NOISE_TAGLEN);
		assert_int_equal(noise_decrypt(rx, ad, i % 2 ? sizeof(ad) : 0, ct, cn, got,
		    sizeof(got), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(got, plain, len);
	}
	assert_int_equal(itx.n + rtx.n, 1000);
	assert_int_equal(itx.n, rrx.n);
	assert_int_equal(rtx.n, irx.n);
	noise_hs_reset(&p.i);
	noise_hs_reset(&p.r);
}

static void
test_xk_session(void **state)
{
	(void)state;
	full_session(NOISE_XK);
}

static void
test_kk_session(void **state)
{
	(void)state;
	full_session(NOISE_KK);
}

static int
setup_vectors(void **state)
{
	*state = sw_test_load_vectors("noise.json");
	return *state == NULL ? -1 : 0;
}

static int
teardown_vectors(void **state)
{
	cJSON_Delete(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vectors, setup_vectors, teardown_vectors),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_kk_wrong_ss),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_bitflip),
		cmocka_unit_test(test_low_order_point),
		cmocka_unit_test(test_xk_wrong_remote_static),
		cmocka_unit_test(test_kk_wrong_remote_static),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_xk_session),
		cmocka_unit_test(test_kk_session),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
