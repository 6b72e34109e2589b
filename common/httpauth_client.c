/*
 * httpauth_client: one ordered queue of signed requests per (key, service)
 * (see httpauth_client.h).  A small state machine: idle, fetching the
 * nonce, or one signed request in flight; each answer pumps the queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpauth.h"
#include "httpauth_client.h"
#include "log.h"

#define BASE_MAX 512
#define PATH_MAX_LEN 512

struct sw_authreq {
	struct sw_authreq *next;
	struct sw_authclient *ac; /* NULL once the client is gone */
	char method[8];
	char path[PATH_MAX_LEN];
	char *body;
	size_t len;
	int timeout_ms;
	int resynced;             /* a 401 already gave us next_nonce once */
	sw_http_client_cb *cb;
	void *arg;
};

/* A nonce GET in flight; outlives the client if that is freed first. */
struct fetch {
	struct sw_authclient *ac; /* NULL once the client is gone */
};

struct sw_authclient {
	struct sw_http_client *hc;
	const struct sw_keypair *kp;
	char base[BASE_MAX];
	char pk_hex[SW_PK_HEX];
	const char *svc;
	struct sw_authreq *head, *tail;
	struct sw_authreq *inflight;   /* head, while its request is out */
	struct fetch *fetch;           /* the nonce GET out, if any */
	int nonce_known;
	unsigned long long nonce;
	size_t n;
};

static void pump(struct sw_authclient *ac);

static void
req_free(struct sw_authreq *r)
{
	free(r->body);
	free(r);
}

static void
pop_head(struct sw_authclient *ac)
{
	struct sw_authreq *r = ac->head;

	ac->head = r->next;
	if (ac->head == NULL)
		ac->tail = NULL;
	ac->n--;
}

static void
nonce_done(const struct sw_http_resp *resp, void *arg)
{
	struct fetch *f = arg;
	struct sw_authclient *ac = f->ac;
	const cJSON *n;

	free(f);
	if (ac == NULL)
		return;
	ac->fetch = NULL;
	n = resp->json != NULL ? cJSON_GetObjectItemCaseSensitive(resp->json, "next_nonce") : NULL;
	if (resp->status == 200 && cJSON_IsNumber(n) && n->valuedouble >= 0 &&
	    n->valuedouble <= (double)SW_HTTPAUTH_MAX_NONCE) {
		ac->nonce = (unsigned long long)n->valuedouble;
		ac->nonce_known = 1;
		pump(ac);
		return;
	}
	/* The service is not answering: fail the head request, keep the rest going. */
	sw_log_warn(ac->svc, "cannot get httpauth nonce", "service=%s status=%d", ac->base,
	    resp->status);
	if (ac->head != NULL) {
		struct sw_authreq *r = ac->head;
		struct sw_http_resp none = {0};

		pop_head(ac);
		if (r->cb != NULL)
			r->cb(&none, r->arg);
		req_free(r);
	}
	pump(ac);
}

static void
req_done(const struct sw_http_resp *resp, void *arg)
{
	struct sw_authreq *r = arg;
	struct sw_authclient *ac = r->ac;
	const cJSON *n;

	if (ac == NULL) {
		req_free(r); /* the client was freed while this was out */
		return;
	}
	ac->inflight = NULL;
	n = resp->json != NULL ? cJSON_GetObjectItemCaseSensitive(resp->json, "next_nonce") : NULL;
	if (resp->status == 401 && !r->resynced && cJSON_IsNumber(n) && n->valuedouble >= 0 &&
	    n->valuedouble <= (double)SW_HTTPAUTH_MAX_NONCE) {
		/* Someone else used our nonce (another process with our key): resync once. */
		r->resynced = 1;
		ac->nonce = (unsigned long long)n->valuedouble;
		ac->nonce_known = 1;
		pump(ac);
		return;
	}
	if (resp->status >= 200 && resp->status < 300)
		ac->nonce++;
	else
		ac->nonce_known = 0;
	pop_head(ac);
	if (r->cb != NULL)
		r->cb(resp, r->arg);
	req_free(r);
	pump(ac);
}

static void
pump(struct sw_authclient *ac)
{
	struct sw_authreq *r = ac->head;
	struct sw_httpauth_hdrs h;
	struct sw_http_opts o;
	char url[BASE_MAX + PATH_MAX_LEN];
	const char *hdrs[7];

	if (r == NULL || ac->inflight != NULL || ac->fetch != NULL)
		return;
	memset(&o, 0, sizeof(o));
	o.timeout_ms = r->timeout_ms;
	if (!ac->nonce_known) {
		struct fetch *f = malloc(sizeof(*f));

		if (f == NULL)
			return;
		f->ac = ac;
		snprintf(url, sizeof(url), "%s/security/nonces/%s", ac->base, ac->pk_hex);
		ac->fetch = f;
		if (sw_http_request(ac->hc, "GET", url, NULL, 0, &o, nonce_done, f) == -1) {
			ac->fetch = NULL;
			free(f);
			sw_log_warn(ac->svc, "bad service URL", "url=%s", ac->base);
		}
		return;
	}
	if (sw_httpauth_sign(&h, ac->kp, r->method, r->path, ac->nonce, r->body, r->len) == -1)
		return;
	hdrs[0] = "SW-Public";
	hdrs[1] = h.pk;
	hdrs[2] = "SW-Nonce";
	hdrs[3] = h.nonce;
	hdrs[4] = "SW-Sig";
	hdrs[5] = h.sig;
	hdrs[6] = NULL;
	o.headers = hdrs;
	snprintf(url, sizeof(url), "%s%s", ac->base, r->path);
	ac->inflight = r;
	if (sw_http_request(ac->hc, r->method, url, r->body, r->len, &o, req_done, r) == -1) {
		struct sw_http_resp none = {0};

		ac->inflight = NULL;
		pop_head(ac);
		if (r->cb != NULL)
			r->cb(&none, r->arg);
		req_free(r);
	}
}

struct sw_authclient *
sw_authclient_new(struct sw_http_client *hc, const struct sw_keypair *kp, const char *base,
    const char *svc)
{
	struct sw_authclient *ac;
	size_t bl = base != NULL ? strlen(base) : 0;

	if (hc == NULL || kp == NULL || bl == 0 || bl >= BASE_MAX)
		return NULL;
	if ((ac = calloc(1, sizeof(*ac))) == NULL)
		return NULL;
	ac->hc = hc;
	ac->kp = kp;
	/* "http://x/" and "http://x" name the same service. */
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	memcpy(ac->base, base, bl);
	ac->base[bl] = '\0';
	sw_hex_encode(ac->pk_hex, kp->pk, SW_PK_LEN);
	ac->svc = svc != NULL ? svc : "httpauth";
	return ac;
}

void
sw_authclient_free(struct sw_authclient *ac)
{
	struct sw_authreq *r, *next;

	if (ac == NULL)
		return;
	if (ac->fetch != NULL)
		ac->fetch->ac = NULL;
	for (r = ac->head; r != NULL; r = next) {
		next = r->next;
		if (r == ac->inflight) {
			r->ac = NULL;
			r->cb = NULL;
		} else {
			req_free(r);
		}
	}
	free(ac);
}

struct sw_authreq *
sw_authclient_request(struct sw_authclient *ac, const char *method, const char *path,
    const void *body, size_t len, int timeout_ms, sw_http_client_cb *cb, void *arg)
{
	struct sw_authreq *r;

	if (ac == NULL || method == NULL || path == NULL || strlen(method) >= sizeof(r->method) ||
	    strlen(path) >= sizeof(r->path) || (len > 0 && body == NULL))
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (len > 0) {
		if ((r->body = malloc(len)) == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->body, body, len);
	}
	r->len = len;
	r->ac = ac;
	memcpy(r->method, method, strlen(method) + 1);
	memcpy(r->path, path, strlen(path) + 1);
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	r->cb = cb;
	r->arg = arg;
	if (ac->tail != NULL)
		ac->tail->next = r;
	else
		ac->head = r;
	ac->tail = r;
	ac->n++;
	pump(ac);
	return r;
}

void
sw_authreq_cancel(struct sw_authreq *r)
{
	if (r != NULL)
		r->cb = NULL;
}

size_t
sw_authclient_pending(const struct sw_authclient *ac)
{
	return ac != NULL ? ac->n : 0;
}

const char *
sw_authclient_base(const struct sw_authclient *ac)
{
	return ac->base;
}
