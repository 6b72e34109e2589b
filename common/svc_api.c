/*
 * svc_api: the discovery services' shared handler shapes (svc_api.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "crypto.h"
#include "dict.h"
#include "http.h"
#include "json.h"
#include "httpauth.h"
#include "log.h"
#include "service.h"
#include "store_index.h"
#include "svc_api.h"

void
sw_api_error(struct sw_http_req *req, int status, const char *msg, const char *cause)
{
	const char *route = sw_http_req_route(req);
	char q[256];

	if (status >= 500)
		sw_log_limited(SW_LOG_WARN, sw_http_req_svc(req), "request failed",
		    "route=%s status=%d cause=%s", route != NULL ? route : "-", status,
		    sw_log_q(q, sizeof(q), cause != NULL ? cause : msg));
	sw_http_error(req, status, msg);
}

int
sw_svc_store_failed(struct sw_http_req *req, const struct sw_reply *r)
{
	char cause[160];
	const char *where = "";
	size_t i;

	/*
	 * A transaction's answer is an array, one reply per command, and a
	 * command can fail in it (WRONGTYPE, OOM) while the others run: that
	 * write is not acknowledged, or a client would take a half-applied
	 * write for a done one.
	 */
	if (r->type == SW_REPLY_ARRAY) {
		for (i = 0; i < r->elements; i++)
			if (r->element[i]->type == SW_REPLY_ERROR || r->element[i]->type == SW_REPLY_DOWN)
				break;
		if (i == r->elements)
			return 0;
		r = r->element[i];
		where = "in a transaction: ";
	}
	if (r->type != SW_REPLY_DOWN && r->type != SW_REPLY_ERROR)
		return 0;
	snprintf(cause, sizeof(cause), "store: %s%.*s", where, r->str != NULL ? (int)r->len : 7,
	    r->str != NULL ? r->str : "no text");
	if (sw_store_unavailable(r))
		sw_api_error(req, 503, "store unavailable", cause);
	else
		sw_api_error(req, 500, "store error", cause);
	return 1;
}

void
sw_api_store_error(struct sw_http_req *req)
{
	sw_api_error(req, 500, "store error", "store call refused or reply out of shape");
}

int
sw_svc_pk_param(struct sw_http_req *req, const char *name, uint8_t *pk, char *hex)
{
	const char *p = sw_http_req_param(req, name);
	uint8_t tmp[SW_PK_LEN];

	if (p == NULL || sw_pk_parse(pk != NULL ? pk : tmp, p) == -1) {
		sw_http_error(req, 400, "invalid public key");
		return -1;
	}
	if (hex != NULL)
		sw_hex_encode(hex, pk != NULL ? pk : tmp, SW_PK_LEN);
	return 0;
}

cJSON *
sw_api_body_json(struct sw_http_req *req)
{
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);
	const char *why;
	cJSON *obj = sw_json_parse(body, len, &why);

	if (obj == NULL)
		sw_http_error(req, 400, why);
	return obj;
}

struct sw_api_get {
	struct sw_svc *svc;
	struct sw_http_req *req;
	const char *notfound;
	sw_api_accept *accept;
	const void *accept_arg;
};

/* A request's zeroed state of size bytes, its request begun; NULL when answered (500, 503). */
static void *
begin_alloc(struct sw_svc *svc, struct sw_http_req *req, size_t size)
{
	void *p = calloc(1, size);

	if (p == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return NULL;
	}
	if (sw_svc_req_begin(svc, req) == -1) {
		free(p);
		return NULL;
	}
	return p;
}

struct sw_api_get *
sw_api_get_begin(struct sw_svc *svc, struct sw_http_req *req, const char *notfound,
    sw_api_accept *accept, const void *accept_arg)
{
	struct sw_api_get *g = begin_alloc(svc, req, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->svc = svc;
	g->req = req;
	g->notfound = notfound;
	g->accept = accept;
	g->accept_arg = accept_arg;
	return g;
}

static void
get_end(struct sw_api_get *g)
{
	struct sw_svc *svc = g->svc;

	free(g);
	sw_svc_req_end(svc);
}

void
sw_api_get_done(const struct sw_reply *r, void *arg)
{
	struct sw_api_get *g = arg;

	if (sw_svc_store_failed(g->req, r))
		goto out;
	if (r->type != SW_REPLY_STR ||
	    (g->accept != NULL && !g->accept(r->str, r->len, g->accept_arg))) {
		sw_http_error(g->req, 404, g->notfound);
		goto out;
	}
	sw_http_reply_raw(g->req, 200, "application/json", r->str, r->len);
out:
	get_end(g);
}

void
sw_api_get_fail(struct sw_api_get *g)
{
	sw_api_store_error(g->req);
	get_end(g);
}

struct sw_api_list *
sw_api_list_begin(struct sw_svc *svc, struct sw_http_req *req, struct sw_store *st,
    const char *prefix)
{
	struct sw_api_list *l = begin_alloc(svc, req, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->svc = svc;
	l->req = req;
	l->st = st;
	l->prefix = prefix;
	l->records = sw_api_list_records_done;
	return l;
}

void
sw_api_list_end(struct sw_api_list *l)
{
	struct sw_svc *svc = l->svc;

	free(l->data);
	free(l);
	sw_svc_req_end(svc);
}

void
sw_api_list_fail(struct sw_api_list *l)
{
	sw_api_store_error(l->req);
	sw_api_list_end(l);
}

char **
sw_api_members_copy(const struct sw_reply *m)
{
	size_t n = m->elements, text = 0;
	char **v, *p;

	for (size_t i = 0; i < n; i++)
		text += m->element[i]->len + 1;
	if ((v = malloc((n + 1) * sizeof(*v) + text)) == NULL)
		return NULL;
	p = (char *)(v + n + 1);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, m->element[i]->str, m->element[i]->len);
		p[m->element[i]->len] = '\0';
		v[i] = p;
		p += m->element[i]->len + 1;
	}
	v[n] = NULL;
	return v;
}

/* The records of the members m, by one MGET; the list ends here unless it was sent. */
static void
list_members(struct sw_api_list *l, const struct sw_reply *m)
{
	char **members = NULL;

	if (m == NULL) {
		sw_api_store_error(l->req);
		goto fail;
	}
	if (m->elements == 0) {
		sw_http_reply_raw(l->req, 200, "application/json", "[]", 2);
		goto fail;
	}
	if ((members = sw_api_members_copy(m)) == NULL) {
		sw_api_error(l->req, 500, "out of memory", NULL);
		goto fail;
	}
	if (sw_store_mget_prefixed(l->st, l->prefix, (const char *const *)members, m->elements,
	    l->records, l) == -1) {
		sw_api_store_error(l->req);
		goto fail;
	}
	free(members);
	return;
fail:
	free(members);
	sw_api_list_end(l);
}

void
sw_api_list_index_done(const struct sw_reply *r, void *arg)
{
	struct sw_api_list *l = arg;

	if (sw_svc_store_failed(l->req, r)) {
		sw_api_list_end(l);
		return;
	}
	list_members(l, sw_store_index_members(r, 0));
}

int
sw_api_index_trim(struct sw_store_txn *t, const char *key, long long now)
{
	char max[24];

	snprintf(max, sizeof(max), "%lld", now);
	return sw_store_txn_add(t, "ZREMRANGEBYSCORE", key, "-inf", max, NULL);
}

const struct sw_reply *
sw_api_index_members(const struct sw_reply *r)
{
	if (r == NULL || r->type != SW_REPLY_ARRAY)
		return NULL;
	for (size_t j = 0; j < r->elements; j++)
		if (r->element[j]->type != SW_REPLY_STR)
			return NULL;
	return r;
}

void
sw_api_list_records_done(const struct sw_reply *r, void *arg)
{
	struct sw_api_list *l = arg;

	sw_api_reply_records(l->req, r, NULL, 0);
	sw_api_list_end(l);
}

void
sw_api_reply_records(struct sw_http_req *req, const struct sw_reply *r, const size_t *pick,
    size_t npick)
{
	struct evbuffer *b;
	size_t n = 0, count;

	if (sw_svc_store_failed(req, r))
		return;
	if (r->type != SW_REPLY_ARRAY) {
		sw_api_store_error(req);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return;
	}
	count = pick != NULL ? npick : r->elements;
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < count; i++) {
		const struct sw_reply *e = r->element[pick != NULL ? pick[i] : i];

		if (e->type != SW_REPLY_STR)
			continue; /* expired or deleted between the two reads */
		if (n++ > 0)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, e->str, e->len);
	}
	evbuffer_add(b, "]", 1);
	sw_http_reply_buf(req, 200, "application/json", b);
	evbuffer_free(b);
}

void
sw_api_add_members(struct evbuffer *b, const struct sw_reply *members)
{
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < members->elements; i++)
		evbuffer_add_printf(b, "%s\"%.*s\"", i ? "," : "", (int)members->element[i]->len,
		    members->element[i]->str);
	evbuffer_add(b, "]", 1);
}

int
sw_api_write_begin(struct sw_svc *svc, struct sw_dict *writing, struct sw_http_req *req,
    const char *key, size_t klen, const char *busy)
{
	int rc = sw_dict_add(writing, key, klen, svc);

	if (rc != 1) {
		sw_http_error(req, rc == 0 ? 409 : 500, rc == 0 ? busy : "out of memory");
		return -1;
	}
	if (sw_svc_req_begin(svc, req) == -1) {
		sw_dict_del(writing, key, klen);
		return -1;
	}
	return 0;
}

void
sw_api_write_end(struct sw_svc *svc, struct sw_dict *writing, const char *key, size_t klen)
{
	sw_dict_del(writing, key, klen);
	sw_svc_req_end(svc);
}

/* The guarded write */

struct api_write {
	struct sw_svc *svc;
	struct sw_http_req *req;
	const struct sw_api_write_ops *ops;
	void *w;
	struct sw_dict *writing;
	size_t klen;
	char key[];
};

static void
aw_end(struct api_write *a)
{
	if (a->writing != NULL)
		sw_api_write_end(a->svc, a->writing, a->key, a->klen);
	else
		sw_svc_req_end(a->svc);
	a->ops->free(a->w);
	free(a);
}

static void
aw_committed(const struct sw_reply *r, void *arg)
{
	struct api_write *a = arg;

	if (!sw_svc_store_failed(a->req, r))
		a->ops->committed(a->w, a->req, r);
	aw_end(a);
}

static void
aw_txn(struct api_write *a)
{
	if (a->ops->txn(a->w, aw_committed, a) == -1) {
		sw_api_store_error(a->req);
		aw_end(a);
	}
}

static void
aw_read_done(const struct sw_reply *r, void *arg)
{
	struct api_write *a = arg;

	if (sw_svc_store_failed(a->req, r) || a->ops->decide(a->w, a->req, r) == -1) {
		aw_end(a);
		return;
	}
	aw_txn(a);
}

static void
aw_read(struct api_write *a)
{
	if (a->ops->read == NULL) {
		aw_txn(a);
		return;
	}
	if (a->ops->read(a->w, aw_read_done, a) == -1) {
		sw_api_store_error(a->req);
		aw_end(a);
	}
}

static void
aw_authed(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN], void *arg)
{
	struct api_write *a = arg;

	if (!ok || (a->ops->authed != NULL && a->ops->authed(a->w, req, pk) == -1)) {
		aw_end(a);
		return;
	}
	aw_read(a);
}

void
sw_api_write(struct sw_svc *svc, struct sw_store *st, struct sw_http_req *req,
    const struct sw_api_write_ops *ops, void *w, struct sw_dict *writing, const char *key,
    size_t klen, const char *busy)
{
	struct api_write *a = calloc(1, sizeof(*a) + (writing != NULL ? klen : 0) + 1);

	if (a == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		ops->free(w);
		return;
	}
	if ((writing != NULL ? sw_api_write_begin(svc, writing, req, key, klen, busy) :
	    sw_svc_req_begin(svc, req)) == -1) {
		ops->free(w);
		free(a);
		return;
	}
	*a = (struct api_write){svc, req, ops, w, writing, writing != NULL ? klen : 0};
	if (writing != NULL)
		memcpy(a->key, key, klen);
	if (ops->auth_prefix != NULL)
		sw_httpauth_check(st, ops->auth_prefix, req, aw_authed, a);
	else
		aw_read(a);
}
