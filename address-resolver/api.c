/*
 * address-resolver's HTTP API (services.md).  Every call but GET
 * /transports is signed (httpauth): binds act for the caller's key, and a
 * resolve must name its caller, since the stcpr answer depends on where the
 * caller is (same NAT: the local addresses too) and the sudph one sends the
 * resolved visor a dial naming the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "address_resolver.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_index.h"
#include "str.h"
#include "svc_api.h"

/* One request in flight. */
struct ar_req {
	struct ar *ar;
	struct sw_http_req *req;
	struct ar_binding b;              /* the binding being written or read */
	char target_hex[SW_PK_HEX];      /* resolve: whom */
	char caller_hex[SW_PK_HEX];
	enum ar_net net;                  /* resolve: which binding */
	char *json;
};

static struct ar_req *
req_new(struct ar *ar, struct sw_http_req *req)
{
	struct ar_req *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return NULL;
	}
	if (sw_svc_req_begin(ar->svc, req) == -1) {
		free(q);
		return NULL;
	}
	q->ar = ar;
	q->req = req;
	return q;
}

static void
req_free(struct ar_req *q)
{
	struct ar *ar = q->ar;

	free(q->json);
	free(q);
	sw_svc_req_end(ar->svc);
}

/* A write's state: its sw_api_write frees it. */
static void
write_free(void *v)
{
	struct ar_req *q = v;

	free(q->json);
	free(q);
}

static struct ar_req *
write_new(struct ar *ar, struct sw_http_req *req)
{
	struct ar_req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		sw_api_error(req, 500, "out of memory", NULL);
	else
		q->ar = ar;
	return q;
}

/* POST /bind/stcpr */

static int
bind_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	struct ar_req *q = v;
	const char *peer = sw_http_req_peer(req);

	if (peer == NULL || sw_strlcpy(q->b.remote_ip, peer, sizeof(q->b.remote_ip)) == -1) {
		sw_api_error(req, 500, "peer address unknown", NULL);
		return -1;
	}
	memcpy(q->b.pk, pk, SW_PK_LEN);
	sw_hex_encode(q->b.pk_hex, pk, SW_PK_LEN);
	q->b.remote_port = q->b.port;
	q->json = ar_binding_json(&q->b, AR_VIEW_STORED);
	if (q->json == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return -1;
	}
	return 0;
}

static int
bind_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct ar_req *q = v;

	return ar_store_put(q->ar, AR_STCPR, &q->b, q->json, cb, arg);
}

static void
bind_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct ar_req *q = v;

	(void)r;
	sw_metric_add(q->ar->m_binds, (const char *[]){"stcpr"}, 1);
	sw_http_reply_raw(req, 200, "application/json", q->json, strlen(q->json));
	sw_log_debug(q->ar->name, "stcpr bound", "pk=%s addr=%s", q->b.pk_hex, q->b.remote_ip);
}

static const struct sw_api_write_ops bind_ops = {
	.auth_prefix = AR_PREFIX,
	.authed = bind_authed,
	.txn = bind_txn,
	.committed = bind_committed,
	.free = write_free,
};

static void
bind_stcpr(struct sw_http_req *req, void *arg)
{
	struct ar *ar = arg;
	struct ar_binding b;
	cJSON *obj;
	char err[160];
	int rc;
	struct ar_req *q;

	if ((obj = sw_api_body_json(req)) == NULL)
		return;
	memset(&b, 0, sizeof(b));
	rc = ar_binding_parse_req(obj, &b, err, sizeof(err));
	cJSON_Delete(obj);
	if (rc != 0) {
		sw_http_error(req, rc, err);
		return;
	}
	if ((q = write_new(ar, req)) == NULL)
		return;
	q->b = b;
	sw_api_write(ar->svc, ar->st, req, &bind_ops, q, NULL, NULL, 0, NULL);
}

/* DELETE /bind/stcpr */

static int
unbind_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	struct ar_req *q = v;

	(void)req;
	sw_hex_encode(q->caller_hex, pk, SW_PK_LEN);
	return 0;
}

static int
unbind_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct ar_req *q = v;

	return ar_store_del(q->ar, AR_STCPR, q->caller_hex, cb, arg);
}

static void
unbind_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	int deleted = r->type == SW_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == SW_REPLY_INT && r->element[0]->integer > 0;

	(void)v;
	sw_http_reply_raw(req, 200, "application/json",
	    deleted ? "{\"deleted\":true}" : "{\"deleted\":false}", deleted ? 16 : 17);
}

static const struct sw_api_write_ops unbind_ops = {
	.auth_prefix = AR_PREFIX,
	.authed = unbind_authed,
	.txn = unbind_txn,
	.committed = unbind_committed,
	.free = write_free,
};

static void
unbind_stcpr(struct sw_http_req *req, void *arg)
{
	struct ar *ar = arg;
	struct ar_req *q = write_new(ar, req);

	if (q != NULL)
		sw_api_write(ar->svc, ar->st, req, &unbind_ops, q, NULL, NULL, 0, NULL);
}

/* GET /resolve/{stcpr,sudph}/{pk} */

/* Answer with b as the caller at peer may see it (the same-NAT rule). */
static void
reply_binding(struct ar_req *q, const struct ar_binding *b)
{
	const char *peer = sw_http_req_peer(q->req);
	int local = peer != NULL && strcmp(peer, b->remote_ip) == 0;
	char *json = ar_binding_json(b, local ? AR_VIEW_LOCAL : AR_VIEW_REMOTE);

	if (json == NULL) {
		sw_api_error(q->req, 500, "out of memory", NULL);
		return;
	}
	sw_http_reply_raw(q->req, 200, "application/json", json, strlen(json));
	free(json);
}

static void
resolve_stcpr_done(const struct sw_reply *r, void *arg)
{
	struct ar_req *q = arg;
	struct ar_binding b;

	if (sw_svc_store_failed(q->req, r))
		goto out;
	if (r->type != SW_REPLY_STR || ar_binding_from_stored(r->str, r->len, &b) == -1) {
		sw_http_error(q->req, 404, "no stcpr binding for this key");
		goto out;
	}
	reply_binding(q, &b);
out:
	req_free(q);
}

/*
 * The reply is [target's binding, caller's binding].  The dial names the
 * caller and where to punch to: its own sudph binding's address when it has
 * one, else its IP as seen over HTTP with port 0 (unknown).
 */
static void
resolve_sudph_done(const struct sw_reply *r, void *arg)
{
	struct ar_req *q = arg;
	struct ar_binding b, caller;
	char addr[AR_ADDR_TEXT], json[AR_ADDR_TEXT + SW_PK_HEX + 32];
	const char *peer;

	if (sw_svc_store_failed(q->req, r))
		goto out;
	if (r->type != SW_REPLY_ARRAY || r->elements != 2) {
		sw_api_store_error(q->req);
		goto out;
	}
	if (r->element[0]->type != SW_REPLY_STR ||
	    ar_binding_from_stored(r->element[0]->str, r->element[0]->len, &b) == -1) {
		sw_http_error(q->req, 404, "no sudph binding for this key");
		goto out;
	}
	if (r->element[1]->type == SW_REPLY_STR &&
	    ar_binding_from_stored(r->element[1]->str, r->element[1]->len, &caller) == 0) {
		sw_hostport_format(addr, sizeof(addr), caller.remote_ip, caller.remote_port);
	} else {
		peer = sw_http_req_peer(q->req);
		sw_hostport_format(addr, sizeof(addr), peer != NULL ? peer : "0.0.0.0", 0);
	}
	snprintf(json, sizeof(json), "{\"pk\":\"%s\",\"addr\":\"%s\"}", q->caller_hex, addr);
	ar_udp_send(q->ar, AR_DIAL, json, b.remote_ip, b.remote_port);
	reply_binding(q, &b);
out:
	req_free(q);
}

static void
resolve_authed(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN], void *arg)
{
	struct ar_req *q = arg;
	int rc;

	if (!ok)
		goto fail;
	sw_hex_encode(q->caller_hex, pk, SW_PK_LEN);
	if (q->net == AR_SUDPH)
		rc = ar_store_get2(q->ar, AR_SUDPH, q->target_hex, q->caller_hex,
		    resolve_sudph_done, q);
	else
		rc = ar_store_get(q->ar, AR_STCPR, q->target_hex, resolve_stcpr_done, q);
	if (rc == -1) {
		sw_api_store_error(req);
		goto fail;
	}
	return;
fail:
	req_free(q);
}

static void
resolve(struct ar *ar, struct sw_http_req *req, enum ar_net net)
{
	char hex[SW_PK_HEX];
	struct ar_req *q;

	if (sw_svc_pk_param(req, "pk", NULL, hex) == -1 || (q = req_new(ar, req)) == NULL)
		return;
	memcpy(q->target_hex, hex, sizeof(hex));
	q->net = net;
	sw_httpauth_check(ar->st, AR_PREFIX, req, resolve_authed, q);
}

static void
resolve_stcpr(struct sw_http_req *req, void *arg)
{
	resolve(arg, req, AR_STCPR);
}

static void
resolve_sudph(struct sw_http_req *req, void *arg)
{
	resolve(arg, req, AR_SUDPH);
}

/* GET /transports */

static void
add_pks(struct evbuffer *b, const char *name, const struct sw_reply *pks)
{
	evbuffer_add_printf(b, "\"%s\":", name);
	sw_api_add_members(b, pks);
}

static void
transports_done(const struct sw_reply *r, void *arg)
{
	struct ar_req *q = arg;
	const struct sw_reply *stcpr, *sudph;
	struct evbuffer *b;

	if (sw_svc_store_failed(q->req, r))
		goto out;
	stcpr = sw_store_index_members(r, 0);
	sudph = sw_store_index_members(r, 2);
	if (stcpr == NULL || sudph == NULL) {
		sw_api_store_error(q->req);
		goto out;
	}
	if ((b = evbuffer_new()) == NULL) {
		sw_api_error(q->req, 500, "out of memory", NULL);
		goto out;
	}
	evbuffer_add(b, "{", 1);
	add_pks(b, "stcpr", stcpr);
	evbuffer_add(b, ",", 1);
	add_pks(b, "sudph", sudph);
	evbuffer_add(b, "}", 1);
	sw_http_reply_buf(q->req, 200, "application/json", b);
	evbuffer_free(b);
out:
	req_free(q);
}

static void
transports(struct sw_http_req *req, void *arg)
{
	struct ar_req *q = req_new(arg, req);

	if (q != NULL && ar_store_list(q->ar, transports_done, q) == -1) {
		sw_api_store_error(req);
		req_free(q);
	}
}

int
ar_api_routes(struct ar *ar)
{
	static const struct sw_http_route_def routes[] = {
		{"POST", AR_PATH_BIND_STCPR, bind_stcpr},
		{"DELETE", AR_PATH_BIND_STCPR, unbind_stcpr},
		{"GET", AR_PATH_RESOLVE_STCPR "{pk}", resolve_stcpr},
		{"GET", AR_PATH_RESOLVE_SUDPH "{pk}", resolve_sudph},
		{"GET", AR_PATH_TRANSPORTS, transports},
	};

	return sw_svc_api_attach(ar->svc, ar->http, routes, sizeof(routes) / sizeof(routes[0]), ar,
	    &ar->auth);
}
