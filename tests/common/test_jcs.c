/*
 * test_jcs: canonical JSON and signed objects against Python's json.dumps and
 * PyNaCl (crypto.json, see tests/lib/vectors.h), and the inputs the
 * canonical form must refuse (floats, negatives, 2^53, duplicates, bad UTF-8).
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

#include "crypto.h"
#include "jcs.h"
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

/* Canonical form of a JSON text, or NULL if parsing or encoding refuses it. */
static char *
canon(const char *text, const char *skip, size_t *len)
{
	cJSON *v = cJSON_Parse(text);
	char *out;

	assert_non_null(v);
	out = sw_jcs_encode(v, skip, len);
	cJSON_Delete(v);
	return out;
}

static void
test_vectors(void **state)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, sw_test_list(*state, "jcs")) {
		const char *hex = sw_test_str(v, "canonical_hex");
		size_t want_len = strlen(hex) / 2, len = 0;
		uint8_t *want = malloc(want_len + 1);
		char *out;

		assert_non_null(want);
		assert_int_equal(sw_hex_decode(want, want_len, hex), 0);
		out = canon(sw_test_str(v, "input"), NULL, &len);
		assert_non_null(out);
		if (len != want_len || memcmp(out, want, len) != 0)
			fail_msg("input %s\n  got  %s\n  want %s", sw_test_str(v, "input"), out,
			    sw_test_str(v, "canonical"));
		assert_int_equal(out[len], '\0');
		/* Canonical is a fixed point. */
		free(out);
		out = canon(sw_test_str(v, "canonical"), NULL, &len);
		assert_non_null(out);
		assert_string_equal(out, sw_test_str(v, "canonical"));
		free(out);
		free(want);
	}
}

static void
keypair(void **state, const cJSON *v, struct sw_keypair *kp)
{
	const cJSON *k = cJSON_GetArrayItem(sw_test_list(*state, "keys"),
	    cJSON_GetObjectItemCaseSensitive(v, "key")->valueint);

	assert_non_null(k);
	assert_int_equal(sw_keypair_from_hex(kp, sw_test_str(k, "seed"), sw_test_str(k, "pk"),
	    NULL, 0), 0);
}

static void
test_signed_vectors(void **state)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, sw_test_list(*state, "signed")) {
		struct sw_keypair kp, other;
		cJSON *obj = cJSON_Parse(sw_test_str(v, "object"));
		char *out;
		size_t len;

		keypair(state, v, &kp);
		assert_non_null(obj);
		out = sw_jcs_encode(obj, "signature", &len);
		assert_non_null(out);
		assert_string_equal(out, sw_test_str(v, "canonical"));
		assert_int_equal(len, strlen(sw_test_str(v, "canonical")));
		free(out);
		assert_int_equal(sw_signed_verify(obj, kp.pk), 0);

		sw_keypair_generate(&other);
		assert_int_equal(sw_signed_verify(obj, other.pk), -1);

		/* Ed25519 is deterministic: re-signing gives the vector's signature. */
		cJSON_ReplaceItemInObjectCaseSensitive(obj, "signature", cJSON_CreateString("x"));
		assert_int_equal(sw_signed_verify(obj, kp.pk), -1);
		assert_int_equal(sw_signed_sign(obj, &kp), 0);
		assert_string_equal(sw_test_str(obj, "signature"), sw_test_str(v, "signature"));
		assert_int_equal(sw_signed_verify(obj, kp.pk), 0);

		/* Tampering with any member breaks it. */
		cJSON_ReplaceItemInObjectCaseSensitive(obj, "sequence", cJSON_CreateNumber(8));
		assert_int_equal(sw_signed_verify(obj, kp.pk), -1);
		cJSON_ReplaceItemInObjectCaseSensitive(obj, "sequence", cJSON_CreateNumber(7));
		assert_int_equal(sw_signed_verify(obj, kp.pk), 0);
		cJSON_AddNumberToObject(obj, "extra", 1);
		assert_int_equal(sw_signed_verify(obj, kp.pk), -1);
		cJSON_Delete(obj);
	}
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
		"1.5", "0.1", "[1,2.5]", "{\"a\":{\"b\":1e-3}}", "4503599627370495.5",
		"-1", "{\"a\":-5}", "-0", "[-9007199254740991]",
		"9007199254740992", "9007199254740993", "18446744073709551616", "1e300",
		"1e400", "[0,1e999]",
		"{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":2,\"a\":1}", "{\"x\":{\"b\":1,\"b\":1}}",
		"[{\"k\":[],\"k\":[]}]",
		/* Invalid UTF-8, which cJSON passes through unchecked. */
		"\"\xff\"", "\"\x80\"", "\"a\xc0\xaf\"", "\"\xc1\xbf\"", "\"\xe0\x80\xaf\"",
		"\"\xed\xa0\x80\"", "\"\xed\xbf\xbf\"", "\"\xf0\x80\x80\xaf\"",
		"\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xf8\x88\x80\x80\x80\"",
		"\"\xe6\x97\"", "\"\xe6\x97x\"", "\"\xf0\x9f\x98\"", "\"\xc3\"",
		"{\"\xff\":1}", "[\"ok\",\"\xfe\"]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = 12345;
		char *out = canon(bad[i], NULL, &len);

		if (out != NULL)
			fail_msg("accepted %s as %s", bad[i], out);
		assert_int_equal(len, 12345); /* untouched on failure */
	}
	assert_null(sw_jcs_encode(NULL, NULL, NULL));
}

static void
test_accepted_edges(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"9007199254740991", "9007199254740991"},
		{"0", "0"},
		{" [ 1 , 2 ] ", "[1,2]"},
		/* cJSON keeps only a double, so these integral spellings are integers. */
		{"1.0", "1"},
		{"1e2", "100"},
		{"\"\\u00e9\\ud83d\\ude00\"", "\"\xc3\xa9\xf0\x9f\x98\x80\""},
		{"\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xc2\x80\"",
		    "\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xc2\x80\""},
		{"\"\\/\\u001F\\u007f\"", "\"/\\u001f\x7f\""},
		{"{\"b\":1,\"a\":{\"d\":[true,false,null],\"c\":\"\"}}",
		    "{\"a\":{\"c\":\"\",\"d\":[true,false,null]},\"b\":1}"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *out = canon(cases[i].in, NULL, &len);

		assert_non_null(out);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(len, strlen(cases[i].out));
		free(out);
	}
}

static void
test_skip(void **state)
{
	char *out;
	size_t len;

	(void)state;
	/* Only the top level is skipped. */
	out = canon("{\"signature\":1,\"a\":{\"signature\":2},\"z\":3}", "signature", &len);
	assert_non_null(out);
	assert_string_equal(out, "{\"a\":{\"signature\":2},\"z\":3}");
	free(out);
	out = canon("{\"signature\":1}", "signature", &len);
	assert_string_equal(out, "{}");
	free(out);
	out = canon("{\"a\":1}", "signature", NULL);
	assert_string_equal(out, "{\"a\":1}");
	free(out);
	/* A doubled skipped member is still a duplicate. */
	assert_null(canon("{\"signature\":\"a\",\"x\":1,\"signature\":\"b\"}", "signature",
	    &len));
	/* skip on a non-object is harmless. */
	out = canon("[{\"signature\":1}]", "signature", &len);
	assert_string_equal(out, "[{\"signature\":1}]");
	free(out);
}

static void
test_odd_trees(void **state)
{
	cJSON *v;
	char *out;
	size_t len;
	int i;

	(void)state;
	/* Raw JSON is not data the encoder can vouch for. */
	v = cJSON_CreateObject();
	cJSON_AddRawToObject(v, "r", "1");
	assert_null(sw_jcs_encode(v, NULL, &len));
	cJSON_Delete(v);

	/* A built tree too deep for a signed object is refused, not a stack overflow. */
	v = cJSON_CreateArray();
	for (i = 0; i < 10000; i++) {
		cJSON *outer = cJSON_CreateArray();

		cJSON_AddItemToArray(outer, v);
		v = outer;
	}
	assert_null(sw_jcs_encode(v, NULL, &len));
	cJSON_Delete(v);
	v = cJSON_Parse("[[[[[[[[[[{\"a\":[[[[[[[[[[1]]]]]]]]]]}]]]]]]]]]]");
	out = sw_jcs_encode(v, NULL, &len);
	assert_string_equal(out, "[[[[[[[[[[{\"a\":[[[[[[[[[[1]]]]]]]]]]}]]]]]]]]]]");
	free(out);
	cJSON_Delete(v);
}

/* Many members and a long string: sorted once, appended once, so this is quick. */
static void
test_large(void **state)
{
	enum { N = 100000 };
	cJSON *v = cJSON_CreateObject();
	char key[16], *big, *out;
	size_t len;
	int i;

	(void)state;
	for (i = N - 1; i >= 0; i--) {
		snprintf(key, sizeof(key), "k%06d", i);
		cJSON_AddNumberToObject(v, key, i);
	}
	big = malloc(1 << 20);
	assert_non_null(big);
	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	big[7] = '\n';
	cJSON_AddStringToObject(v, "~big", big);
	out = sw_jcs_encode(v, NULL, &len);
	assert_non_null(out);
	assert_memory_equal(out, "{\"k000000\":0,\"k000001\":1,", 25);
	/*
	 * Braces, N commas, N members "k000123":123 (10 chars + digits; the
	 * digits of 0..99999 sum to 488890), and "~big":"…" with its \n escaped.
	 */
	assert_int_equal(len, 2 + (size_t)N + 10 * (size_t)N + 488890 + 8 + (1 << 20) + 1);
	free(out);
	free(big);
	cJSON_Delete(v);
}

static void
test_signed_refused(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1}",
		"{\"a\":1,\"signature\":5}",
		"{\"a\":1,\"signature\":\"abcd\"}",
		"[\"signature\"]",
		"\"signature\"",
	};
	struct sw_keypair kp;
	cJSON *v;
	char *before, *after, *sig;

	(void)state;
	sw_keypair_generate(&kp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = cJSON_Parse(bad[i]);
		assert_int_equal(sw_signed_verify(v, kp.pk), -1);
		cJSON_Delete(v);
	}
	assert_int_equal(sw_signed_verify(NULL, kp.pk), -1);

	/* Sign: adds a signature, replaces an old one, refuses and leaves a float. */
	v = cJSON_Parse("{\"b\":[1,\"\xc3\xa9\"],\"a\":null}");
	assert_int_equal(sw_signed_sign(v, &kp), 0);
	assert_int_equal(sw_signed_verify(v, kp.pk), 0);
	sig = strdup(cJSON_GetObjectItemCaseSensitive(v, "signature")->valuestring);
	assert_int_equal(strlen(sig), 128);
	/* Upper-case hex is the same signature. */
	for (char *p = cJSON_GetObjectItemCaseSensitive(v, "signature")->valuestring; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(sw_signed_verify(v, kp.pk), 0);
	assert_int_equal(sw_signed_sign(v, &kp), 0);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(v, "signature")->valuestring, sig);
	assert_int_equal(cJSON_GetArraySize(v), 3);
	/* Signed with the null PK claimed: refused. */
	{
		uint8_t null_pk[SW_PK_LEN] = {0};

		assert_int_equal(sw_signed_verify(v, null_pk), -1);
	}
	/* A second "signature" member makes the object refused. */
	cJSON_AddStringToObject(v, "signature", sig);
	assert_int_equal(sw_signed_verify(v, kp.pk), -1);
	cJSON_Delete(v);
	free(sig);

	v = cJSON_Parse("{\"a\":1.5,\"signature\":\"keep\"}");
	before = cJSON_PrintUnformatted(v);
	assert_int_equal(sw_signed_sign(v, &kp), -1);
	after = cJSON_PrintUnformatted(v);
	assert_string_equal(before, after);
	free(before);
	free(after);
	cJSON_Delete(v);
	v = cJSON_Parse("[1]");
	assert_int_equal(sw_signed_sign(v, &kp), -1);
	cJSON_Delete(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_signed_vectors),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_accepted_edges),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_odd_trees),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_signed_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
