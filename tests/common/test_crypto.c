/*
 * test_crypto: common/crypto.c against vectors from an independent
 * implementation (tests/vectors/crypto.json, made by PyNaCl and hashlib), and
 * against the inputs it must refuse.  tests/lib/vectors.h finds the file
 * ($SW_VECTORS names a directory holding it).
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

#include "crypto.h"
#include "tests/lib/vectors.h"

static int
setup(void **state)
{
	if (sw_crypto_init() == -1)
		return -1;
	*state = sw_test_load_vectors("crypto.json");
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	cJSON_Delete(*state);
	return 0;
}

static void
test_keys(void **state)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, sw_test_list(*state, "keys")) {
		struct sw_keypair kp, kp2;
		uint8_t seed[SW_SEED_LEN], pk[SW_PK_LEN], x[32];
		char hex[SW_PK_HEX], err[128];

		assert_int_equal(sw_hex_decode(seed, sizeof(seed), sw_test_str(v, "seed")), 0);
		assert_int_equal(sw_keypair_from_seed(&kp, seed), 0);
		sw_hex_encode(hex, kp.pk, SW_PK_LEN);
		assert_string_equal(hex, sw_test_str(v, "pk"));
		sw_keypair_seed_hex(&kp, hex);
		assert_string_equal(hex, sw_test_str(v, "seed"));

		assert_int_equal(sw_pk_parse(pk, sw_test_str(v, "pk")), 0);
		assert_memory_equal(pk, kp.pk, SW_PK_LEN);

		assert_int_equal(sw_keypair_from_hex(&kp2, sw_test_str(v, "seed"),
		    sw_test_str(v, "pk"), err, sizeof(err)), 0);
		assert_memory_equal(&kp2, &kp, sizeof(kp));
		assert_int_equal(sw_keypair_from_hex(&kp2, sw_test_str(v, "seed"), NULL, err,
		    sizeof(err)), 0);
		assert_memory_equal(&kp2, &kp, sizeof(kp));

		assert_int_equal(sw_pk_to_x25519(x, kp.pk), 0);
		sw_hex_encode(hex, x, 32);
		assert_string_equal(hex, sw_test_str(v, "x25519_pk"));
		assert_int_equal(sw_sk_to_x25519(x, &kp), 0);
		sw_hex_encode(hex, x, 32);
		assert_string_equal(hex, sw_test_str(v, "x25519_sk"));
	}
}

static void
test_signatures(void **state)
{
	const cJSON *keys = sw_test_list(*state, "keys");
	const cJSON *v;

	cJSON_ArrayForEach(v, sw_test_list(*state, "signatures")) {
		const cJSON *k = cJSON_GetArrayItem(keys,
		    cJSON_GetObjectItemCaseSensitive(v, "key")->valueint);
		struct sw_keypair kp;
		uint8_t sig[SW_SIG_LEN], want[SW_SIG_LEN], *msg;
		size_t len;

		assert_non_null(k);
		assert_int_equal(sw_keypair_from_hex(&kp, sw_test_str(k, "seed"), NULL, NULL, 0),
		    0);
		msg = sw_test_unhex(sw_test_str(v, "msg"), &len);
		assert_int_equal(sw_hex_decode(want, sizeof(want), sw_test_str(v, "sig")), 0);
		sw_sign(sig, msg, len, &kp);
		assert_memory_equal(sig, want, SW_SIG_LEN);
		assert_int_equal(sw_verify(sig, msg, len, kp.pk), 0);

		/* Any flipped bit in signature, message or key is refused. */
		sig[len % SW_SIG_LEN] ^= 0x01;
		assert_int_equal(sw_verify(sig, msg, len, kp.pk), -1);
		sig[len % SW_SIG_LEN] ^= 0x01;
		if (len > 0) {
			msg[len - 1] ^= 0x80;
			assert_int_equal(sw_verify(sig, msg, len, kp.pk), -1);
			msg[len - 1] ^= 0x80;
		}
		kp.pk[3] ^= 0x04;
		assert_int_equal(sw_verify(sig, msg, len, kp.pk), -1);
		free(msg);
	}
}

static void
test_hashes(void **state)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, sw_test_list(*state, "hashes")) {
		uint8_t h[SW_HASH_LEN], *msg;
		char hex[2 * SW_HASH_LEN + 1];
		size_t len;

		msg = sw_test_unhex(sw_test_str(v, "msg"), &len);
		sw_hash(h, msg, len);
		sw_hex_encode(hex, h, sizeof(h));
		assert_string_equal(hex, sw_test_str(v, "hash"));
		free(msg);
	}
}

static void
test_hex(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		int ok;
	} cases[] = {
		{"", 0, 1},
		{"00", 1, 1},
		{"aB", 1, 1},
		{"0123456789abcdefABCDEF", 11, 1},
		{"0", 1, -1},      /* odd */
		{"000", 1, -1},    /* trailing */
		{"0000", 1, -1},   /* too long */
		{"00", 2, -1},     /* too short */
		{"0g", 1, -1},
		{"g0", 1, -1},
		{" 00", 1, -1},
		{"00 ", 1, -1},
		{"0x00", 2, -1},
		{"+0", 1, -1},
		{"\xc3\xa9", 1, -1},
		{"", 1, -1},
	};
	uint8_t out[16];
	char enc[33];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 0xee, sizeof(out));
		assert_int_equal(sw_hex_decode(out, cases[i].len, cases[i].in),
		    cases[i].ok == 1 ? 0 : -1);
		if (cases[i].ok != 1) /* refused: untouched */
			assert_int_equal(out[0], 0xee);
	}
	assert_int_equal(sw_hex_decode(out, 1, NULL), -1);
	assert_int_equal(sw_hex_decode(out, 11, "0123456789abcdefABCDEF"), 0);
	sw_hex_encode(enc, out, 11);
	assert_string_equal(enc, "0123456789abcdefabcdef"); /* lowercase out */
	sw_hex_encode(enc, out, 0);
	assert_string_equal(enc, "");
}

static void
test_pk_parse(void **state)
{
	const cJSON *k = cJSON_GetArrayItem(sw_test_list(*state, "keys"), 0);
	char good[SW_PK_HEX], bad[SW_PK_HEX + 2];
	uint8_t pk[SW_PK_LEN], before[SW_PK_LEN];

	snprintf(good, sizeof(good), "%s", sw_test_str(k, "pk"));
	assert_int_equal(sw_pk_parse(pk, good), 0);
	assert_false(sw_pk_is_null(pk));
	memcpy(before, pk, sizeof(pk));

	/* null PK */
	assert_int_equal(sw_pk_parse(pk, "0000000000000000000000000000000000000000000000000000000000000000"), -1);
	memset(bad, 0, sizeof(bad));
	assert_int_equal(sw_pk_is_null((uint8_t *)bad), 1);
	/* short, long, non-hex, upper case, NULL */
	snprintf(bad, sizeof(bad), "%.63s", good);
	assert_int_equal(sw_pk_parse(pk, bad), -1);
	snprintf(bad, sizeof(bad), "%s0", good);
	assert_int_equal(sw_pk_parse(pk, bad), -1);
	snprintf(bad, sizeof(bad), "%s", good);
	bad[10] = 'z';
	assert_int_equal(sw_pk_parse(pk, bad), -1);
	snprintf(bad, sizeof(bad), "%s", good);
	for (char *p = bad; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(sw_pk_parse(pk, bad), -1);
	assert_int_equal(sw_pk_parse(pk, NULL), -1);
	assert_int_equal(sw_pk_parse(pk, ""), -1);
	assert_memory_equal(pk, before, sizeof(pk));
}

static void
test_keypair_from_hex_errors(void **state)
{
	const cJSON *k0 = cJSON_GetArrayItem(sw_test_list(*state, "keys"), 0);
	const cJSON *k1 = cJSON_GetArrayItem(sw_test_list(*state, "keys"), 1);
	struct sw_keypair kp;
	char err[128];

	err[0] = '\0';
	assert_int_equal(sw_keypair_from_hex(&kp, "abcd", NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "secret_key is not 64 hex chars");
	assert_int_equal(sw_keypair_from_hex(&kp, NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(sw_keypair_from_hex(&kp, sw_test_str(k0, "seed"), sw_test_str(k1, "pk"),
	    err, sizeof(err)), -1);
	assert_string_equal(err, "public_key does not match secret_key");
	assert_true(sodium_is_zero((const unsigned char *)&kp, sizeof(kp)));
	assert_int_equal(sw_keypair_from_hex(&kp, sw_test_str(k0, "seed"), "xyz", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "public_key is not 64 hex chars");
	/* A small err buffer is cut, not overrun; NULL err is allowed. */
	assert_int_equal(sw_keypair_from_hex(&kp, "", NULL, err, 6), -1);
	assert_string_equal(err, "secre");
	assert_int_equal(sw_keypair_from_hex(&kp, "", NULL, NULL, 0), -1);
}

static void
test_verify_refuses(void **state)
{
	struct sw_keypair kp;
	uint8_t sig[SW_SIG_LEN], null_pk[SW_PK_LEN] = {0}, x[32];
	const uint8_t msg[] = "m";

	(void)state;
	sw_keypair_generate(&kp);
	sw_sign(sig, msg, 1, &kp);
	assert_int_equal(sw_verify(sig, msg, 1, kp.pk), 0);
	assert_int_equal(sw_verify(sig, msg, 1, null_pk), -1);
	memset(sig, 0, sizeof(sig));
	assert_int_equal(sw_verify(sig, msg, 1, kp.pk), -1);
	assert_int_equal(sw_verify(sig, msg, 1, null_pk), -1);
	/* A small-order point has no X25519 twin worth having. */
	assert_int_equal(sw_pk_to_x25519(x, null_pk), -1);
}

static void
test_generate_differs(void **state)
{
	struct sw_keypair a, b;
	uint8_t seed[SW_SEED_LEN];
	char hex[SW_PK_HEX];

	(void)state;
	sw_keypair_generate(&a);
	sw_keypair_generate(&b);
	assert_memory_not_equal(a.pk, b.pk, SW_PK_LEN);
	/* The seed round-trips to the same key. */
	sw_keypair_seed_hex(&a, hex);
	assert_int_equal(sw_hex_decode(seed, sizeof(seed), hex), 0);
	assert_int_equal(sw_keypair_from_seed(&b, seed), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_signatures),
		cmocka_unit_test(test_hashes),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_pk_parse),
		cmocka_unit_test(test_keypair_from_hex_errors),
		cmocka_unit_test(test_verify_refuses),
		cmocka_unit_test(test_generate_differs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
