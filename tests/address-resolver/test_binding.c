/*
 * test_binding: what a visor may declare in a bind (a table of bodies and
 * the status each gets), host:port parsing of stored addresses, and the
 * stored form and the two resolve views (same NAT or not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "address-resolver/address_resolver.h"

#define PK "4ee9e5d9a9de9bcd6d6e9e6b7b0a4a0e0e3c9d2a1f1b9c8d7e6f5a4b3c2d1e0f"

static void
test_parse_req(void **state)
{
	static const struct {
		const char *json;
		int rc;
	} cases[] = {
		{"{\"port\":1}", 0},
		{"{\"port\":65535,\"local_addresses\":[\"10.0.0.1\",\"fe80::1\"]}", 0},
		{"{\"port\":1,\"local_addresses\":null}", 0},
		{"{}", 400},
		{"[]", 400},
		{"{\"port\":\"1\"}", 400},
		{"{\"port\":1.5}", 400},
		{"{\"port\":0}", 422},
		{"{\"port\":65536}", 422},
		{"{\"port\":-3}", 422},
		{"{\"port\":1,\"local_addresses\":\"10.0.0.1\"}", 400},
		{"{\"port\":1,\"local_addresses\":[7]}", 400},
		{"{\"port\":1,\"local_addresses\":[\"10.0.0.256\"]}", 422},
		{"{\"port\":1,\"local_addresses\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
		 "\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}", 422},
	};
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ar_binding b;
		cJSON *o = cJSON_Parse(cases[i].json);
		int rc;

		memset(&b, 0, sizeof(b));
		assert_non_null(o);
		rc = ar_binding_parse_req(o, &b, err, sizeof(err));
		cJSON_Delete(o);
		if (rc != cases[i].rc)
			fail_msg("%s: got %d want %d", cases[i].json, rc, cases[i].rc);
	}
}

static void
test_hostport(void **state)
{
	char ip[SW_IP_TEXT];
	unsigned port;

	(void)state;
	assert_int_equal(ar_hostport_parse("1.2.3.4:80", ip, &port), 0);
	assert_string_equal(ip, "1.2.3.4");
	assert_int_equal(port, 80);
	assert_int_equal(ar_hostport_parse("[::1]:0", ip, &port), 0);
	assert_string_equal(ip, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(ar_hostport_parse("1.2.3.4", ip, &port), -1);
	assert_int_equal(ar_hostport_parse("1.2.3.4:", ip, &port), -1);
	assert_int_equal(ar_hostport_parse("1.2.3.4:65536", ip, &port), -1);
	assert_int_equal(ar_hostport_parse("host:80", ip, &port), -1);
	assert_int_equal(ar_hostport_parse(":80", ip, &port), -1);
}

static void
test_views(void **state)
{
	struct ar_binding b, back;
	char *json;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(sw_pk_parse(b.pk, PK), 0);
	memcpy(b.pk_hex, PK, sizeof(PK));
	strcpy(b.remote_ip, "203.0.113.7");
	b.remote_port = 7777;
	b.port = 7777;
	b.nlocal = 1;
	strcpy(b.local[0], "192.168.1.2");
	json = ar_binding_json(&b, AR_VIEW_STORED);
	assert_string_equal(json, "{\"pk\":\"" PK "\",\"remote_addr\":\"203.0.113.7:7777\","
	    "\"port\":7777,\"local_addresses\":[\"192.168.1.2\"]}");
	assert_int_equal(ar_binding_from_stored(json, strlen(json), &back), 0);
	assert_string_equal(back.remote_ip, "203.0.113.7");
	assert_int_equal(back.nlocal, 1);
	free(json);
	json = ar_binding_json(&b, AR_VIEW_REMOTE);
	assert_string_equal(json, "{\"pk\":\"" PK "\",\"remote_addr\":\"203.0.113.7:7777\","
	    "\"port\":7777,\"is_local\":false}");
	free(json);
	json = ar_binding_json(&b, AR_VIEW_LOCAL);
	assert_non_null(strstr(json, "\"local_addresses\":[\"192.168.1.2\"],\"is_local\":true}"));
	free(json);
	strcpy(b.remote_ip, "2001:db8::1");
	json = ar_binding_json(&b, AR_VIEW_STORED);
	assert_non_null(strstr(json, "\"remote_addr\":\"[2001:db8::1]:7777\""));
	assert_int_equal(ar_binding_from_stored(json, strlen(json), &back), 0);
	assert_string_equal(back.remote_ip, "2001:db8::1");
	free(json);
	assert_int_equal(ar_binding_from_stored("{}", 2, &back), -1);
	assert_int_equal(ar_binding_from_stored("nope", 4, &back), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_req),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_views),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
