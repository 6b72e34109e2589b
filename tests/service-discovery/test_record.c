/*
 * test_record: a service record's parse and encode, as a table of inputs
 * and the status each must get (README conventions: 400 malformed, 422
 * invalid), plus the round trip through the stored form the indexes trust.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service-discovery/service_discovery.h"

#define PK "4ee9e5d9a9de9bcd6d6e9e6b7b0a4a0e0e3c9d2a1f1b9c8d7e6f5a4b3c2d1e0f"

static void
test_addr(void **state)
{
	static const struct {
		const char *in;
		int rc;
		unsigned port;
	} cases[] = {
		{PK ":3", 0, 3},
		{PK ":0", 0, 0},
		{PK ":65535", 0, 65535},
		{PK ":65536", 422, 0},
		{PK ":999999", 422, 0},
		{PK ":03", 400, 0},
		{PK ":", 400, 0},
		{PK ":-1", 400, 0},
		{PK ":+1", 400, 0},
		{PK ":1a", 400, 0},
		{PK, 400, 0},
		{"4EE9" PK ":3", 400, 0},
		{"00000000000000000000000000000000000000000000000000000000000000000:1", 400, 0},
		{"0000000000000000000000000000000000000000000000000000000000000000:1", 400, 0},
		{"", 400, 0},
	};
	uint8_t pk[SW_PK_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned port = 12345;
		int rc = sd_addr_parse(cases[i].in, pk, &port);

		if (rc != cases[i].rc)
			fail_msg("%s: got %d want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0)
			assert_int_equal(port, cases[i].port);
	}
	assert_int_equal(sd_addr_parse(NULL, pk, &(unsigned){0}), 400);
}

static void
test_type_country_version(void **state)
{
	enum sd_type t;
	char cc[3];

	(void)state;
	assert_int_equal(sd_type_parse("proxy", &t), 0);
	assert_int_equal(t, SD_SKYSOCKS);
	assert_string_equal(sd_type_name(t), "skysocks");
	assert_int_equal(sd_type_parse("vpn", &t), 0);
	assert_int_equal(t, SD_VPN);
	assert_int_equal(sd_type_parse("VPN", &t), -1);
	assert_int_equal(sd_type_parse("", &t), -1);
	assert_int_equal(sd_country_parse("de", cc), 0);
	assert_string_equal(cc, "DE");
	assert_int_equal(sd_country_parse("D1", cc), -1);
	assert_int_equal(sd_country_parse("DEU", cc), -1);
	assert_int_equal(sd_country_parse("\xc3\xa9", cc), -1);
	assert_true(sd_version_valid("1.2.3-rc1+b_2"));
	assert_false(sd_version_valid(""));
	assert_false(sd_version_valid("1 2"));
	assert_false(sd_version_valid("v/1"));
	assert_true(sd_version_valid("123456789012345678901234567890ab"));
	assert_false(sd_version_valid("123456789012345678901234567890abc"));
}

static void
test_parse_table(void **state)
{
	static const struct {
		const char *json;
		int rc;
	} cases[] = {
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\"}", 0},
		{"{\"address\":\"" PK ":3\",\"type\":\"proxy\",\"version\":null,\"geo\":null}", 0},
		{"[]", 400},
		{"{\"type\":\"vpn\"}", 400},
		{"{\"address\":\"" PK ":3\"}", 400},
		{"{\"address\":\"" PK ":3\",\"type\":\"web\"}", 422},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"version\":7}", 400},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"geo\":[]}", 400},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"geo\":{\"country\":\"XYZ\"}}", 422},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"local_ips\":[\"::1\",\"1.2.3.4\"]}", 0},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"local_ips\":[\"localhost\"]}", 422},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"local_ips\":{}}", 400},
		{"{\"address\":\"" PK ":3\",\"type\":\"vpn\",\"display_node_ip\":1}", 400},
	};
	struct sd_service s;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *o = cJSON_Parse(cases[i].json);
		int rc;

		assert_non_null(o);
		rc = sd_service_parse(o, &s, err, sizeof(err));
		cJSON_Delete(o);
		if (rc != cases[i].rc)
			fail_msg("%s: got %d want %d (%s)", cases[i].json, rc, cases[i].rc, err);
		if (rc != 0)
			assert_true(err[0] != '\0');
	}
}

static void
test_round_trip(void **state)
{
	const char *in = "{\"address\":\"" PK ":44\",\"type\":\"proxy\",\"version\":\"1.0\","
	    "\"geo\":{\"country\":\"nl\",\"region\":\"North\"},\"local_ips\":[\"10.0.0.1\"],"
	    "\"display_node_ip\":true,\"registered\":5,\"x\":1}";
	struct sd_service s, back;
	cJSON *o = cJSON_Parse(in);
	char err[160], *json;

	(void)state;
	assert_int_equal(sd_service_parse(o, &s, err, sizeof(err)), 0);
	cJSON_Delete(o);
	s.registered = 1700000000;
	json = sd_service_json(&s);
	assert_non_null(json);
	assert_string_equal(json, "{\"address\":\"" PK ":44\",\"type\":\"skysocks\","
	    "\"version\":\"1.0\",\"geo\":{\"country\":\"NL\",\"region\":\"North\"},"
	    "\"local_ips\":[\"10.0.0.1\"],\"display_node_ip\":true,\"registered\":1700000000}");
	assert_true(sd_stored_has_addr(json, strlen(json), PK ":44"));
	assert_false(sd_stored_has_addr(json, strlen(json), PK ":4"));
	assert_int_equal(sd_service_from_stored(json, strlen(json), &back), 0);
	assert_int_equal(back.type, SD_SKYSOCKS);
	assert_int_equal(back.port, 44);
	assert_string_equal(back.country, "NL");
	assert_int_equal(back.registered, 1700000000);
	free(json);
}

/* The address is found wherever it stands in the record, and only as the address. */
static void
test_has_addr_any_order(void **state)
{
	const char *late = "{\"type\":\"vpn\",\"geo\":{\"region\":\"\\\"address\\\":\\\"" PK
	    ":1\\\"\"},\"address\":\"" PK ":44\"}";

	(void)state;
	assert_true(sd_stored_has_addr(late, strlen(late), PK ":44"));
	assert_false(sd_stored_has_addr(late, strlen(late), PK ":1"));
	assert_false(sd_stored_has_addr("{\"type\":\"vpn\"}", 15, PK ":44"));
	assert_false(sd_stored_has_addr("not json", 8, PK ":44"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_type_country_version),
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_has_addr_any_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
