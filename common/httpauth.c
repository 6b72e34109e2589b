/*
 * httpauth: signed HTTP requests (crypto.md).
 *
 * The one idea: a request is checked in two steps, cheap and stateless first,
 * then one atomic store command.  The headers are parsed and the signature
 * verified over the method, the request target exactly as sent, the nonce and
 * the raw body before the store is touched, so a refused request (forged,
 * tampered, malformed) changes nothing; only a correctly signed request
 * reaches sw_store_nonce_take(), which accepts the nonce and advances the
 * counter in one step, so two replicas sharing a redis never accept one nonce
 * twice.  A wrong nonce is answered with the stored one, so a client can
 * resync.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "store.h"

#define LOG_SVC "httpauth"

/* Longest store key: prefix (bounded here) + "nonce:" + 64 hex. */
#define KEY_MAX 256

struct check {
	struct sw_http_req *req;
	sw_httpauth_cb *cb;
	void *arg;
	uint8_t pk[SW_PK_LEN];
};

struct nonces_get {
	struct sw_http_req *req;
	char pk[SW_PK_HEX];
};

static const uint8_t null_pk[SW_PK_LEN];

/* METHOD " " PATH_AND_QUERY "\n" NONCE "\n" BODY, malloc'd; NULL if out of memory. */
static uint8_t *
build_msg(const char *method, const char *uri, const char *nonce, const void *body,
    size_t blen, size_t *len)
{
	size_t ml = strlen(method), ul = strlen(uri), nl = strlen(nonce), n;
	uint8_t *m, *p;

	n = ml + 1 + ul + 1 + nl + 1;
	if (blen > SIZE_MAX - n)
		return NULL;
	if ((m = malloc(n + blen + 1)) == NULL)
		return NULL;
	p = m;
	memcpy(p, method, ml);
	p += ml;
	*p++ = ' ';
	memcpy(p, uri, ul);
	p += ul;
	*p++ = '\n';
	memcpy(p, nonce, nl);
	p += nl;
	*p++ = '\n';
	if (blen > 0)
		memcpy(p, body, blen);
	*len = n + blen;
	return m;
}

int
sw_httpauth_sign(struct sw_httpauth_hdrs *out, const struct sw_keypair *kp, const char *method,
    const char *path_and_query, unsigned long long nonce, const void *body, size_t len)
{
	uint8_t sig[SW_SIG_LEN], *msg = NULL;
	size_t mlen;

	memset(out, 0, sizeof(*out));
	if (nonce > SW_HTTPAUTH_MAX_NONCE)
		return -1;
	snprintf(out->nonce, sizeof(out->nonce), "%llu", nonce);
	if ((msg = build_msg(method, path_and_query, out->nonce, body, len, &mlen)) == NULL) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	sw_sign(sig, msg, mlen, kp);
	free(msg);
	sw_hex_encode(out->pk, kp->pk, SW_PK_LEN);
	sw_hex_encode(out->sig, sig, SW_SIG_LEN);
	return 0;
}

/*
 * Plain decimal only: one spelling per nonce ("007" and "+7" are refused),
 * so the signed text and the number agree, and nothing at or past 2^53.
 */
static int
parse_nonce(const char *s, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 16)
			return -1;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (v > SW_HTTPAUTH_MAX_NONCE)
		return -1;
	*out = v;
	return 0;
}

static int
nonce_key(char *key, size_t size, const char *prefix, const uint8_t pk[SW_PK_LEN])
{
	char hex[SW_PK_HEX];
	int n;

	sw_hex_encode(hex, pk, SW_PK_LEN);
	n = snprintf(key, size, "%snonce:%s", prefix ? prefix : "", hex);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Answer a refusal and tell the handler, which only frees its arg then. */
static void
refuse(struct sw_http_req *req, int status, const char *msg, sw_httpauth_cb *cb, void *arg)
{
	char peer[64];

	sw_log_debug(LOG_SVC, "request refused", "peer=%s status=%d reason=%s",
	    sw_log_q(peer, sizeof(peer), sw_http_req_peer(req)), status, msg);
	sw_http_error(req, status, msg);
	cb(NULL, 0, null_pk, arg);
}

static void
refuse_nonce(struct sw_http_req *req, unsigned long long next, sw_httpauth_cb *cb, void *arg)
{
	cJSON *body;

	if ((body = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(body, "error", "wrong nonce") == NULL ||
	    cJSON_AddNumberToObject(body, "next_nonce", (double)next) == NULL) {
		cJSON_Delete(body);
		refuse(req, 500, "out of memory", cb, arg);
		return;
	}
	sw_http_reply_json(req, 401, body);
	cJSON_Delete(body);
	cb(NULL, 0, null_pk, arg);
}

static void
take_done(const struct sw_reply *r, void *arg)
{
	struct check *c = arg;
	struct sw_http_req *req = c->req;
	sw_httpauth_cb *cb = c->cb;
	void *cbarg = c->arg;
	uint8_t pk[SW_PK_LEN];

	memcpy(pk, c->pk, sizeof(pk));
	free(c);
	if (sw_store_unavailable(r)) {
		sw_log_limited(SW_LOG_WARN, LOG_SVC, "store unavailable, request refused", "cause=%s",
		    sw_log_q((char[128]){0}, 128, r->str != NULL ? r->str : "down"));
		refuse(req, 503, "store unavailable", cb, cbarg);
	} else if (r->type == SW_REPLY_INT && r->integer == 1) {
		cb(req, 1, pk, cbarg);
	} else if (r->type == SW_REPLY_INT && r->integer < 0 &&
	    (unsigned long long)(-(r->integer + 1)) <= SW_HTTPAUTH_MAX_NONCE) {
		refuse_nonce(req, (unsigned long long)(-(r->integer + 1)), cb, cbarg);
	} else {
		sw_log_error(LOG_SVC, "unexpected nonce reply", "type=%d", (int)r->type);
		refuse(req, 500, "nonce check failed", cb, cbarg);
	}
}

void
sw_httpauth_check(struct sw_store *st, const char *prefix, struct sw_http_req *req,
    sw_httpauth_cb *cb, void *arg)
{
	const char *method = sw_http_req_method(req), *uri = sw_http_req_uri(req);
	const char *hpk = sw_http_req_header(req, "SW-Public");
	const char *hnonce = sw_http_req_header(req, "SW-Nonce");
	const char *hsig = sw_http_req_header(req, "SW-Sig");
	const unsigned char *body;
	uint8_t pk[SW_PK_LEN], sig[SW_SIG_LEN], *msg;
	unsigned long long nonce;
	char key[KEY_MAX];
	struct check *c;
	size_t blen = 0, mlen;
	int bad;

	if (hpk == NULL || hnonce == NULL || hsig == NULL) {
		refuse(req, 401, hpk == NULL ? "missing SW-Public header" :
		    hnonce == NULL ? "missing SW-Nonce header" : "missing SW-Sig header", cb, arg);
		return;
	}
	if (sw_pk_parse(pk, hpk) == -1) {
		refuse(req, 401, "bad SW-Public header", cb, arg);
		return;
	}
	if (parse_nonce(hnonce, &nonce) == -1) {
		refuse(req, 401, "bad SW-Nonce header", cb, arg);
		return;
	}
	if (sw_hex_decode(sig, sizeof(sig), hsig) == -1) {
		refuse(req, 401, "bad SW-Sig header", cb, arg);
		return;
	}
	if (method == NULL || uri == NULL) {
		refuse(req, 400, "bad request", cb, arg);
		return;
	}
	if ((body = sw_http_req_body(req, &blen)) == NULL)
		blen = 0;
	if ((msg = build_msg(method, uri, hnonce, body, blen, &mlen)) == NULL) {
		refuse(req, 500, "out of memory", cb, arg);
		return;
	}
	bad = sw_verify(sig, msg, mlen, pk);
	free(msg);
	if (bad) {
		refuse(req, 401, "invalid signature", cb, arg);
		return;
	}
	if (nonce_key(key, sizeof(key), prefix, pk) == -1) {
		sw_log_error(LOG_SVC, "store key prefix too long", NULL);
		refuse(req, 500, "nonce check failed", cb, arg);
		return;
	}
	if ((c = malloc(sizeof(*c))) == NULL) {
		refuse(req, 500, "out of memory", cb, arg);
		return;
	}
	c->req = req;
	c->cb = cb;
	c->arg = arg;
	memcpy(c->pk, pk, sizeof(pk));
	if (sw_store_nonce_take(st, key, nonce, take_done, c) == -1) {
		free(c);
		refuse(req, 503, "store unavailable", cb, arg);
	}
}

/* The stored counter as written by INCR/SET: plain decimal. */
static int
parse_stored(const struct sw_reply *r, unsigned long long *out)
{
	char *end;

	if (r->type == SW_REPLY_NIL) {
		*out = 0;
		return 0;
	}
	if (r->type == SW_REPLY_INT && r->integer >= 0) {
		*out = (unsigned long long)r->integer;
		return 0;
	}
	if (r->type != SW_REPLY_STR || r->str == NULL || r->len == 0 || r->str[0] < '0' ||
	    r->str[0] > '9')
		return -1;
	*out = strtoull(r->str, &end, 10);
	return end == r->str + r->len && *out <= SW_HTTPAUTH_MAX_NONCE ? 0 : -1;
}

static void
nonces_got(const struct sw_reply *r, void *arg)
{
	struct nonces_get *g = arg;
	unsigned long long n;
	cJSON *body = NULL;

	if (sw_store_unavailable(r)) {
		sw_http_error(g->req, 503, "store unavailable");
		goto done;
	}
	if (parse_stored(r, &n) == -1) {
		sw_log_error(LOG_SVC, "stored nonce unreadable", "type=%d", (int)r->type);
		sw_http_error(g->req, 500, "stored nonce unreadable");
		goto done;
	}
	if ((body = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(body, "edge", g->pk) == NULL ||
	    cJSON_AddNumberToObject(body, "next_nonce", (double)n) == NULL) {
		sw_http_error(g->req, 500, "out of memory");
		goto done;
	}
	sw_http_reply_json(g->req, 200, body);
done:
	cJSON_Delete(body);
	free(g);
}

static void
nonces_get(struct sw_http_req *req, void *arg)
{
	struct sw_httpauth *auth = arg;
	const char *hex = sw_http_req_param(req, "pk");
	struct nonces_get *g = NULL;
	uint8_t pk[SW_PK_LEN];
	char key[KEY_MAX];

	if (hex == NULL || sw_pk_parse(pk, hex) == -1) {
		sw_http_error(req, 400, "bad public key");
		return;
	}
	if (nonce_key(key, sizeof(key), auth->prefix, pk) == -1) {
		sw_http_error(req, 500, "store key prefix too long");
		return;
	}
	if ((g = malloc(sizeof(*g))) == NULL) {
		sw_http_error(req, 500, "out of memory");
		return;
	}
	g->req = req;
	sw_hex_encode(g->pk, pk, SW_PK_LEN);
	if (sw_store_cmd(auth->st, nonces_got, g, "GET", key, (char *)NULL) == -1) {
		free(g);
		sw_http_error(req, 503, "store unavailable");
	}
}

int
sw_httpauth_routes(struct sw_http_server *srv, struct sw_httpauth *auth)
{
	if (sw_http_route(srv, "GET", "/security/nonces/{pk}", nonces_get, auth) == -1) {
		sw_log_error(LOG_SVC, "cannot add route", "route=/security/nonces/{pk}");
		return -1;
	}
	return 0;
}
