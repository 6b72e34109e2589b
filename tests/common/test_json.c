/*
 * test_json: the strict parse (trailing data, duplicate keys at any depth and
 * any object size), the range-checked integer conversion and the HTML-safe
 * print, as tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

static void
test_parse_table(void **state)
{
	static const struct {
		const char *in;
		int ok;
	} cases[] = {
		{"{}", 1},
		{" {\"a\":1} \n\t\r", 1},
		{"[1,2,{\"a\":[{\"b\":1,\"c\":2}]}]", 1},
		{"{\"a\":1}xyz", 0},
		{"{\"a\":1}{\"b\":2}", 0},
		{"{\"a\":1} 1", 0},
		{"{\"a\":1,\"a\":2}", 0},
		{"{\"a\":{\"x\":1,\"y\":2,\"x\":3}}", 0},
		{"[{\"k\":1},{\"k\":2,\"k\":3}]", 0},
		{"{\"a\":1,\"A\":2}", 1},
		{"", 0},
		{"   ", 0},
		{"{\"a\":", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		cJSON *v = sw_json_parse(cases[i].in, strlen(cases[i].in), &why);

		if ((v != NULL) != cases[i].ok)
			fail_msg("case %zu %s: got %s", i, cases[i].in, v != NULL ? "ok" : why);
		if (v == NULL)
			assert_non_null(why);
		cJSON_Delete(v);
	}
	/* A NUL inside the length is data after the value. */
	assert_null(sw_json_parse("{}\0x", 4, NULL));
	assert_null(sw_json_parse(NULL, 0, NULL));
}

/* Objects past the pairwise size: the dict path finds the same duplicates. */
static void
test_parse_big_objects(void **state)
{
	char *buf = malloc(64 * 1024), *p;
	const char *why;
	cJSON *v;

	(void)state;
	p = buf + sprintf(buf, "{");
	for (int i = 0; i < 3000; i++)
		p += sprintf(p, "%s\"k%d\":%d", i ? "," : "", i, i);
	sprintf(p, "}");
	assert_non_null(v = sw_json_parse(buf, strlen(buf), NULL));
	cJSON_Delete(v);
	sprintf(p, ",\"k1234\":0}");
	assert_null(sw_json_parse(buf, strlen(buf), &why));
	assert_string_equal(why, "malformed JSON: duplicate key");
	free(buf);
}

static void
test_int_table(void **state)
{
	static const struct {
		const char *in;
		long long min, max;
		int ok;
		long long want;
	} cases[] = {
		{"80", 1, 65535, 1, 80},
		{"65535", 1, 65535, 1, 65535},
		{"65536", 1, 65535, 0, 0},
		{"0", 1, 65535, 0, 0},
		{"1e300", 1, 65535, 0, 0},
		{"-1e300", -SW_JSON_INT_LIMIT, SW_JSON_INT_LIMIT, 0, 0},
		{"1e300", -SW_JSON_INT_LIMIT, SW_JSON_INT_LIMIT, 0, 0},
		{"1e400", 0, 10, 0, 0},
		{"1.5", 0, 10, 0, 0},
		{"2.0", 0, 10, 1, 2},
		{"9007199254740991", 0, 9223372036854775807LL, 1, 9007199254740991LL},
		{"9007199254740992", 0, 9223372036854775807LL, 0, 0},
		{"-5", -10, 10, 1, -5},
		{"\"5\"", 0, 10, 0, 0},
		{"null", 0, 10, 0, 0},
		{"true", 0, 10, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *v = cJSON_Parse(cases[i].in);
		long long out = -777;
		int rc = sw_json_int(v, cases[i].min, cases[i].max, &out);

		if ((rc == 0) != cases[i].ok)
			fail_msg("case %zu %s: rc %d", i, cases[i].in, rc);
		if (rc == 0)
			assert_int_equal(out, cases[i].want);
		else
			assert_int_equal(out, -777);
		cJSON_Delete(v);
	}
	assert_int_equal(sw_json_int(NULL, 0, 1, &(long long){0}), -1);
}

static void
test_print_safe_table(void **state)
{
	static const struct {
		const char *in, *want; /* want NULL: refused (not UTF-8) */
	} cases[] = {
		{"{\"a\":[1,\"x\"]}", "{\"a\":[1,\"x\"]}"},
		{"\"</script><!--&\"", "\"\\u003c/script\\u003e\\u003c!--\\u0026\""},
		{"{\"<k>\":\"\\\"\\\\\\u0001\"}", "{\"\\u003ck\\u003e\":\"\\\"\\\\\\u0001\"}"},
		{"\"a\xe2\x80\xa8" "b\xe2\x80\xa9\xc3\xa9\"", "\"a\\u2028b\\u2029\xc3\xa9\""},
		{"[1e999,-1e999]", "[null,null]"},
		{"9004011111111111", "9004011111111111"},
		{"{\"n\":123456789012345678901234567890,\"m\":[9004011111111111]}",
		    "{\"n\":1.2345678901234568e+29,\"m\":[9004011111111111]}"},
		{"\"\xff\"", NULL},
		{"\"\xc0\xaf\"", NULL},
		{"\"\xed\xa0\x80\"", NULL},
		{"{\"\xe2\x80\"", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *v = cJSON_Parse(cases[i].in);
		const char *why = "unset";
		size_t len = 0;
		char *out;

		if (v == NULL)
			continue; /* cJSON refused it already: nothing to print */
		out = sw_json_print_safe(v, &len, &why);
		if (cases[i].want == NULL) {
			if (out != NULL || why == NULL)
				fail_msg("case %zu: printed %s", i, out);
		} else {
			if (out == NULL || strcmp(out, cases[i].want) != 0 || len != strlen(out))
				fail_msg("case %zu: %s, want %s", i, out, cases[i].want);
			assert_null(why);
		}
		free(out);
		cJSON_Delete(v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_big_objects),
		cmocka_unit_test(test_int_table),
		cmocka_unit_test(test_print_safe_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
