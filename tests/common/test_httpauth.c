/*
 * test_httpauth: signed requests.
 *
 * sw_httpauth_sign is checked against PyNaCl's vectors (crypto.json, see
 * tests/lib/vectors.h) and against libsodium directly.  The server
 * side runs for real: an sw_http_server on a free port with a route behind
 * sw_httpauth_check on the in-memory store, driven by the http client, so
 * each case is what a remote caller would see.
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
#include <event2/event.h>
#include <sodium.h>

#include "crypto.h"
#include "http.h"
#include "httpauth.h"
#include "store.h"
#include "tests/lib/vectors.h"

#define PREFIX  "test:"

static void
test_sign_vectors(void **state)
{
	cJSON *doc = sw_test_load_vectors("crypto.json");
	const cJSON *keys, *v;

	(void)state;
	assert_non_null(doc);
	keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc, "httpauth")) {
		const cJSON *k = cJSON_GetArrayItem(keys,
		    cJSON_GetObjectItemCaseSensitive(v, "key")->valueint);
		struct sw_httpauth_hdrs h;
		struct sw_keypair kp;
		uint8_t *body, *msg, sig[SW_SIG_LEN];
		size_t blen, mlen;
		char nonce[24];

		assert_int_equal(sw_keypair_from_hex(&kp, sw_test_str(k, "seed"), NULL, NULL, 0),
		    0);
		body = sw_test_unhex(sw_test_str(v, "body"), &blen);
		msg = sw_test_unhex(sw_test_str(v, "msg"), &mlen);
		assert_int_equal(sw_httpauth_sign(&h, &kp, sw_test_str(v, "method"),
		    sw_test_str(v, "path"),
		    (unsigned long long)cJSON_GetObjectItemCaseSensitive(v, "nonce")->valuedouble,
		    body, blen), 0);
		snprintf(nonce, sizeof(nonce), "%.0f",
		    cJSON_GetObjectItemCaseSensitive(v, "nonce")->valuedouble);
		assert_string_equal(h.nonce, nonce);
		assert_string_equal(h.pk, sw_test_str(v, "pk"));
		assert_string_equal(h.sig, sw_test_str(v, "sig"));
		/* The signature is over exactly the vector's message bytes. */
		assert_int_equal(sw_hex_decode(sig, sizeof(sig), h.sig), 0);
		assert_int_equal(crypto_sign_verify_detached(sig, msg, mlen, kp.pk), 0);
		free(body);
		free(msg);
	}
	cJSON_Delete(doc);
}

static void
test_sign_message(void **state)
{
	static const char want[] = "DELETE /a/b?c=%20d\n123\n{\"x\":1}";
	struct sw_httpauth_hdrs h;
	struct sw_keypair kp;
	uint8_t sig[SW_SIG_LEN];

	(void)state;
	sw_keypair_generate(&kp);
	assert_int_equal(sw_httpauth_sign(&h, &kp, "DELETE", "/a/b?c=%20d", 123, "{\"x\":1}", 7),
	    0);
	assert_string_equal(h.nonce, "123");
	assert_int_equal(sw_hex_decode(sig, sizeof(sig), h.sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)want,
	    sizeof(want) - 1, kp.pk), 0);

	/* No body: the message ends with the nonce's newline. */
	assert_int_equal(sw_httpauth_sign(&h, &kp, "GET", "/", 0, NULL, 0), 0);
	assert_string_equal(h.nonce, "0");
	assert_int_equal(sw_hex_decode(sig, sizeof(sig), h.sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"GET /\n0\n", 8,
	    kp.pk), 0);

	assert_int_equal(sw_httpauth_sign(&h, &kp, "GET", "/", SW_HTTPAUTH_MAX_NONCE, NULL, 0), 0);
	assert_string_equal(h.nonce, "9007199254740991");
	assert_int_equal(sw_httpauth_sign(&h, &kp, "GET", "/", SW_HTTPAUTH_MAX_NONCE + 1, NULL,
	    0), -1);
	assert_string_equal(h.sig, "");
}

/* The server side, end to end. */

struct env {
	struct event_base *base;
	struct sw_store *st;
	struct sw_store *down;
	struct sw_http_server *srv;
	struct sw_http_client *cli;
	struct sw_httpauth auth;
	int port;
	struct sw_keypair kp, kp2;
	/* What the protected handler saw. */
	int accepted;
	int refused;
	uint8_t caller[SW_PK_LEN];
	/* The last response. */
	int done;
	int status;
	cJSON *json;
};

static void
on_auth(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN], void *arg)
{
	struct env *e = arg;

	if (!ok) {
		assert_null(req);
		assert_true(sw_pk_is_null(pk));
		e->refused++;
		return;
	}
	e->accepted++;
	memcpy(e->caller, pk, SW_PK_LEN);
	sw_http_reply_raw(req, 200, "application/json", "{\"ok\":true}", 11);
}

static void
protected(struct sw_http_req *req, void *arg)
{
	struct env *e = arg;

	sw_httpauth_check(e->st, PREFIX, req, on_auth, e);
}

static void
protected_down(struct sw_http_req *req, void *arg)
{
	struct env *e = arg;

	sw_httpauth_check(e->down, PREFIX, req, on_auth, e);
}

static void
got(const struct sw_http_resp *resp, void *arg)
{
	struct env *e = arg;

	e->done = 1;
	e->status = resp->status;
	cJSON_Delete(e->json);
	e->json = resp->json ? cJSON_Duplicate(resp->json, 1) : NULL;
	event_base_loopbreak(e->base);
}

/* One request, headers as name/value pairs ending with NULL; waits for the answer. */
static int
call(struct env *e, const char *method, const char *path, const char *body,
    const char *const *headers)
{
	struct sw_http_opts opts = {.timeout_ms = 3000, .headers = headers};
	char url[512];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->port, path);
	e->done = 0;
	assert_int_equal(sw_http_request(e->cli, method, url, body, body ? strlen(body) : 0,
	    &opts, got, e), 0);
	while (!e->done)
		assert_int_not_equal(event_base_loop(e->base, 0), -1);
	return e->status;
}

/* Sign (sm, sp, sbody, nonce) but send (method, path, body). */
static int
signed_call(struct env *e, const struct sw_keypair *kp, const char *method, const char *path,
    const char *body, unsigned long long nonce, const char *sm, const char *sp,
    const char *sbody)
{
	struct sw_httpauth_hdrs h;
	const char *hdrs[7];

	assert_int_equal(sw_httpauth_sign(&h, kp, sm ? sm : method, sp ? sp : path, nonce,
	    sbody ? sbody : body, (sbody ? sbody : body) ? strlen(sbody ? sbody : body) : 0), 0);
	hdrs[0] = "SW-Public";
	hdrs[1] = h.pk;
	hdrs[2] = "SW-Nonce";
	hdrs[3] = h.nonce;
	hdrs[4] = "SW-Sig";
	hdrs[5] = h.sig;
	hdrs[6] = NULL;
	return call(e, method, path, body, hdrs);
}

static long long
json_int(const struct env *e, const char *name)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(e->json, name);

	assert_true(cJSON_IsNumber(n));
	return (long long)n->valuedouble;
}

static const char *
json_str(const struct env *e, const char *name)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(e->json, name);

	assert_true(cJSON_IsString(s));
	return s->valuestring;
}

static long long
next_nonce(struct env *e, const struct sw_keypair *kp)
{
	char path[128], hex[SW_PK_HEX];

	sw_hex_encode(hex, kp->pk, SW_PK_LEN);
	snprintf(path, sizeof(path), "/security/nonces/%s", hex);
	assert_int_equal(call(e, "GET", path, NULL, NULL), 200);
	assert_string_equal(json_str(e, "edge"), hex);
	return json_int(e, "next_nonce");
}

static int
env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	/* Teardown runs even when setup fails, and frees what was made. */
	*state = e;
	if (e == NULL || (e->base = event_base_new()) == NULL)
		return -1;
	e->st = sw_store_new(e->base, NULL, "test");
	/* Nothing listens on port 1: every command answers DOWN. */
	e->down = sw_store_new(e->base, "redis://127.0.0.1:1", "test");
	e->srv = sw_http_server_new(e->base, "test", NULL);
	e->cli = sw_http_client_new(e->base, "test");
	if (e->st == NULL || e->down == NULL || e->srv == NULL || e->cli == NULL)
		return -1;
	e->auth.st = e->st;
	e->auth.prefix = PREFIX;
	if (sw_httpauth_routes(e->srv, &e->auth) == -1 ||
	    sw_http_route(e->srv, "*", "/protected/{x}", protected, e) == -1 ||
	    sw_http_route(e->srv, "POST", "/down", protected_down, e) == -1 ||
	    sw_http_server_listen(e->srv, "127.0.0.1:0") == -1)
		return -1;
	e->port = sw_http_server_port(e->srv);
	sw_keypair_generate(&e->kp);
	sw_keypair_generate(&e->kp2);
	return 0;
}

static int
env_teardown(void **state)
{
	struct env *e = *state;

	if (e == NULL)
		return 0;
	sw_http_client_free(e->cli);
	sw_http_server_free(e->srv);
	sw_store_free(e->down);
	sw_store_free(e->st);
	if (e->base != NULL)
		event_base_free(e->base);
	cJSON_Delete(e->json);
	free(e);
	return 0;
}

static void
test_nonces_route(void **state)
{
	struct env *e = *state;
	char path[128], hex[SW_PK_HEX];

	assert_int_equal(next_nonce(e, &e->kp), 0);
	assert_int_equal(call(e, "GET", "/security/nonces/zz", NULL, NULL), 400);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(e->json, "error"));
	assert_int_equal(call(e, "GET", "/security/nonces/"
	    "0000000000000000000000000000000000000000000000000000000000000000", NULL, NULL), 400);
	sw_hex_encode(hex, e->kp.pk, SW_PK_LEN);
	for (char *p = hex; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	snprintf(path, sizeof(path), "/security/nonces/%s", hex);
	assert_int_equal(call(e, "GET", path, NULL, NULL), 400);
	assert_string_equal(json_str(e, "error"), "bad public key");
}

static void
test_accept_and_replay(void **state)
{
	struct env *e = *state;
	const char *body = "{\"a\":1}";
	struct sw_httpauth_hdrs h;
	const char *hdrs[7];

	assert_int_equal(signed_call(e, &e->kp, "POST", "/protected/a?x=1", body, 0, NULL, NULL,
	    NULL), 200);
	assert_int_equal(e->accepted, 1);
	assert_memory_equal(e->caller, e->kp.pk, SW_PK_LEN);
	assert_int_equal(next_nonce(e, &e->kp), 1);

	/* The same headers again: a replay, told the nonce to use. */
	assert_int_equal(sw_httpauth_sign(&h, &e->kp, "POST", "/protected/a?x=1", 0, body,
	    strlen(body)), 0);
	hdrs[0] = "SW-Public", hdrs[1] = h.pk, hdrs[2] = "SW-Nonce", hdrs[3] = h.nonce;
	hdrs[4] = "SW-Sig", hdrs[5] = h.sig, hdrs[6] = NULL;
	assert_int_equal(call(e, "POST", "/protected/a?x=1", body, hdrs), 401);
	assert_string_equal(json_str(e, "error"), "wrong nonce");
	assert_int_equal(json_int(e, "next_nonce"), 1);
	assert_int_equal(e->accepted, 1);

	/* Signed correctly but ahead of the counter. */
	assert_int_equal(signed_call(e, &e->kp, "POST", "/protected/a", body, 5, NULL, NULL,
	    NULL), 401);
	assert_int_equal(json_int(e, "next_nonce"), 1);
	assert_int_equal(next_nonce(e, &e->kp), 1);

	/* Each key has its own counter; no body and GET are fine. */
	assert_int_equal(signed_call(e, &e->kp2, "GET", "/protected/b", NULL, 0, NULL, NULL,
	    NULL), 200);
	assert_memory_equal(e->caller, e->kp2.pk, SW_PK_LEN);
	assert_int_equal(next_nonce(e, &e->kp2), 1);
	assert_int_equal(next_nonce(e, &e->kp), 1);

	assert_int_equal(signed_call(e, &e->kp, "DELETE", "/protected/a", NULL, 1, NULL, NULL,
	    NULL), 200);
	assert_int_equal(next_nonce(e, &e->kp), 2);
	assert_int_equal(e->accepted, 3);
}

/* Every refusal is 401 without next_nonce, and leaves the counter alone. */
static void
expect_refused(struct env *e, int status)
{
	assert_int_equal(status, 401);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(e->json, "error"));
	assert_null(cJSON_GetObjectItemCaseSensitive(e->json, "next_nonce"));
}

static void
test_tampered(void **state)
{
	struct env *e = *state;
	long long n = next_nonce(e, &e->kp);
	int accepted = e->accepted, refused = e->refused;

	/* Body, path, query, method changed after signing. */
	expect_refused(e, signed_call(e, &e->kp, "POST", "/protected/a", "{\"a\":2}",
	    (unsigned long long)n, NULL, NULL, "{\"a\":1}"));
	expect_refused(e, signed_call(e, &e->kp, "POST", "/protected/a", "{\"a\":1} ",
	    (unsigned long long)n, NULL, NULL, "{\"a\":1}"));
	expect_refused(e, signed_call(e, &e->kp, "POST", "/protected/a", "",
	    (unsigned long long)n, NULL, NULL, "x"));
	expect_refused(e, signed_call(e, &e->kp, "POST", "/protected/b", NULL,
	    (unsigned long long)n, NULL, "/protected/a", NULL));
	expect_refused(e, signed_call(e, &e->kp, "POST", "/protected/a?x=2", NULL,
	    (unsigned long long)n, NULL, "/protected/a?x=1", NULL));
	expect_refused(e, signed_call(e, &e->kp, "POST", "/protected/a?x=1", NULL,
	    (unsigned long long)n, NULL, "/protected/a", NULL));
	expect_refused(e, signed_call(e, &e->kp, "PUT", "/protected/a", NULL,
	    (unsigned long long)n, "POST", NULL, NULL));
	/* Signed by another key than the one claimed. */
	{
		struct sw_httpauth_hdrs h;
		char pk[SW_PK_HEX], nonce[24];
		const char *hdrs[7];

		sw_hex_encode(pk, e->kp.pk, SW_PK_LEN);
		snprintf(nonce, sizeof(nonce), "%lld", n);
		assert_int_equal(sw_httpauth_sign(&h, &e->kp2, "POST", "/protected/a",
		    (unsigned long long)n, NULL, 0), 0);
		hdrs[0] = "SW-Public", hdrs[1] = pk, hdrs[2] = "SW-Nonce", hdrs[3] = nonce;
		hdrs[4] = "SW-Sig", hdrs[5] = h.sig, hdrs[6] = NULL;
		expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
		/* A flipped bit in the signature. */
		assert_int_equal(sw_httpauth_sign(&h, &e->kp, "POST", "/protected/a",
		    (unsigned long long)n, NULL, 0), 0);
		h.sig[5] = h.sig[5] == '0' ? '1' : '0';
		hdrs[5] = h.sig;
		expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
		assert_string_equal(json_str(e, "error"), "invalid signature");
	}
	assert_int_equal(e->accepted, accepted);
	assert_int_equal(e->refused, refused + 9);
	assert_int_equal(next_nonce(e, &e->kp), n);
}

static void
test_bad_headers(void **state)
{
	struct env *e = *state;
	struct sw_httpauth_hdrs h;
	long long n = next_nonce(e, &e->kp);
	char upper[SW_PK_HEX];
	const char *hdrs[7];
	static const char *const bad_nonces[] = {
		"", "01", "-1", "+1", " 1", "1 ", "1x", "0x1", "9007199254740992",
		"99999999999999999999", "1.0",
	};

	assert_int_equal(sw_httpauth_sign(&h, &e->kp, "POST", "/protected/a",
	    (unsigned long long)n, NULL, 0), 0);
	/* Each header missing in turn. */
	for (int skip = 0; skip < 3; skip++) {
		const char *all[6] = {"SW-Public", h.pk, "SW-Nonce", h.nonce, "SW-Sig", h.sig};
		int j = 0;

		for (int i = 0; i < 3; i++)
			if (i != skip) {
				hdrs[j++] = all[2 * i];
				hdrs[j++] = all[2 * i + 1];
			}
		hdrs[j] = NULL;
		expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
		assert_non_null(strstr(json_str(e, "error"), "missing"));
	}
	expect_refused(e, call(e, "POST", "/protected/a", NULL, NULL));

	hdrs[0] = "SW-Public", hdrs[1] = h.pk, hdrs[2] = "SW-Nonce", hdrs[3] = h.nonce;
	hdrs[4] = "SW-Sig", hdrs[5] = h.sig, hdrs[6] = NULL;
	for (size_t i = 0; i < sizeof(bad_nonces) / sizeof(bad_nonces[0]); i++) {
		hdrs[3] = bad_nonces[i];
		expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
	}
	hdrs[3] = h.nonce;
	/* Upper-case, short, and null PKs. */
	snprintf(upper, sizeof(upper), "%s", h.pk);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	hdrs[1] = upper;
	expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
	hdrs[1] = "abcd";
	expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
	hdrs[1] = "0000000000000000000000000000000000000000000000000000000000000000";
	expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
	hdrs[1] = h.pk;
	hdrs[5] = "00";
	expect_refused(e, call(e, "POST", "/protected/a", NULL, hdrs));
	assert_string_equal(json_str(e, "error"), "bad SW-Sig header");
	hdrs[5] = h.sig;
	/* The untouched headers still work, so nothing above moved the counter. */
	assert_int_equal(call(e, "POST", "/protected/a", NULL, hdrs), 200);
	assert_int_equal(next_nonce(e, &e->kp), n + 1);
}

static void
test_store_down(void **state)
{
	struct env *e = *state;
	int refused = e->refused;

	assert_int_equal(signed_call(e, &e->kp, "POST", "/down", NULL, 0, NULL, NULL, NULL), 503);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(e->json, "error"));
	assert_int_equal(e->refused, refused + 1);
}

int
main(void)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_sign_vectors),
		cmocka_unit_test(test_sign_message),
	};
	const struct CMUnitTest server[] = {
		cmocka_unit_test(test_nonces_route),
		cmocka_unit_test(test_accept_and_replay),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_store_down),
	};
	int failed;

	if (sw_crypto_init() == -1)
		return 1;
	failed = cmocka_run_group_tests_name("sign", unit, NULL, NULL);
	failed += cmocka_run_group_tests_name("server", server, env_setup, env_teardown);
	return failed ? 1 : 0;
}
