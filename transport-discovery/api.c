/*
 * transport-discovery's HTTP API (services.md).  Reads answer straight from
 * the stored JSON.  A POST is checked in full before its signature is (so a
 * bad body never costs the caller a nonce), then the caller must be an edge
 * of every entry, then no entry may collide with a stored one of other
 * edges or type, and only then is the whole batch written, in one
 * transaction, through tpd_store_apply.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cxo_follow.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "svc_api.h"
#include "svc_api_cache.h"
#include "transport_discovery.h"

/* One write (POST or DELETE) in flight: the state of its sw_api_write. */
struct tpd_write {
	struct tpd *tpd;
	uint8_t caller[SW_PK_LEN]; /* DELETE: whom httpauth vouched for */
	long long now;
	size_t n;
	struct tpd_change ch[TPD_MAX_POST];
	char ids[TPD_MAX_POST][TP_ID_TEXT];
	const char *idp[TPD_MAX_POST];
};

static void
write_free(void *w)
{
	free(w);
}

/* GET /transports/id:{t_id} */

static int
tid_param(struct sw_http_req *req, uint8_t id[TP_ID_LEN], char text[TP_ID_TEXT])
{
	const char *p = sw_http_req_param(req, "t_id");

	if (p == NULL || tp_id_parse(id, p) == -1) {
		sw_http_error(req, 400, "t_id must be a lowercase UUID");
		return -1;
	}
	tp_id_format(text, id);
	return 0;
}

static void
get_one(struct sw_http_req *req, void *arg)
{
	struct tpd *tpd = arg;
	struct sw_api_get *g;
	uint8_t id[TP_ID_LEN];
	char text[TP_ID_TEXT];

	if (tid_param(req, id, text) == -1 ||
	    (g = sw_api_get_begin(tpd->svc, req, "transport not found", NULL, NULL)) == NULL)
		return;
	if (tpd_store_get(tpd, text, sw_api_get_done, g) == -1)
		sw_api_get_fail(g);
}

static int
write_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct tpd_write *w = v;

	return tpd_store_apply(w->tpd, w->ch, w->n, w->now, cb, arg);
}

/* What the store now holds, to the all-transports feed: the one place it is told. */
static void
tell_feed(const struct tpd_write *w)
{
	char json[TP_JSON_MAX];

	for (size_t i = 0; i < w->n; i++) {
		const struct tpd_change *c = &w->ch[i];

		sw_metric_add(w->tpd->m_feed, (const char *[]){c->del ? "delete" : "put"}, 1);
		if (c->del)
			cxo_follow_del(w->tpd->feed, 0, w->ids[i]);
		else
			cxo_follow_put(w->tpd->feed, 0, w->ids[i], json, tp_entry_json(&c->e, json),
			    w->tpd->ttl_s);
	}
}

/* POST /transports/ */

static int
post_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	struct tpd_write *w = v;

	for (size_t i = 0; i < w->n; i++) {
		if (!tp_entry_has_edge(&w->ch[i].e, pk)) {
			char msg[96];

			snprintf(msg, sizeof(msg), "the caller is not an edge of %s", w->ids[i]);
			sw_http_error(req, 403, msg);
			return -1;
		}
	}
	return 0;
}

static int
post_read(void *v, sw_store_cb *cb, void *arg)
{
	struct tpd_write *w = v;

	return tpd_store_mget(w->tpd, w->idp, w->n, cb, arg);
}

/* The stored records of the batch, in its order: none may disagree with it. */
static int
post_decide(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct tpd_write *w = v;

	if (r->type != SW_REPLY_ARRAY || r->elements != w->n) {
		sw_api_store_error(req);
		return -1;
	}
	for (size_t i = 0; i < w->n; i++) {
		const struct sw_reply *o = r->element[i];
		struct tp_entry old;
		char msg[96];

		if (o->type != SW_REPLY_STR)
			continue;
		if (tp_entry_parse_stored(o->str, o->len, &old) == -1) {
			/* Unreadable record: replace it rather than refuse its owners forever. */
			sw_log_warn(w->tpd->name, "stored transport unreadable, replacing it",
			    "t_id=%s", w->ids[i]);
			continue;
		}
		if (!tp_entry_same(&old, &w->ch[i].e)) {
			snprintf(msg, sizeof(msg), "%s is registered with other edges or type",
			    w->ids[i]);
			sw_http_error(req, 409, msg);
			return -1;
		}
	}
	w->now = (long long)time(NULL);
	for (size_t i = 0; i < w->n; i++)
		w->ch[i].e.registered = w->now;
	return 0;
}

static void
post_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct tpd_write *w = v;
	struct evbuffer *b;
	char json[TP_JSON_MAX];

	(void)r;
	tell_feed(w);
	sw_metric_add(w->tpd->m_writes, (const char *[]){"register"}, (double)w->n);
	sw_log_debug(w->tpd->name, "transports registered", "n=%zu first=%s", w->n, w->ids[0]);
	b = evbuffer_new();
	if (b == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return;
	}
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < w->n; i++) {
		size_t len = tp_entry_json(&w->ch[i].e, json);

		if (i > 0)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, json, len);
	}
	evbuffer_add(b, "]", 1);
	sw_http_reply_buf(req, 201, "application/json", b);
	evbuffer_free(b);
}

static const struct sw_api_write_ops post_ops = {
	.auth_prefix = TPD_PREFIX,
	.authed = post_authed,
	.read = post_read,
	.decide = post_decide,
	.txn = write_txn,
	.committed = post_committed,
	.free = write_free,
};

static int SW_PRINTF(4, 5)
batch_error(char *msg, size_t msglen, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return status;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Parse and check the whole batch into w; 0, or the status with msg filled. */
static int
parse_batch(struct tpd_write *w, const cJSON *arr, char *msg, size_t msglen)
{
	const char *sorted[TPD_MAX_POST];
	const cJSON *it;
	char err[128];
	int size = cJSON_GetArraySize(arr), rc;

	if (size == 0)
		return batch_error(msg, msglen, 422, "no entries");
	if (size > TPD_MAX_POST)
		return batch_error(msg, msglen, 413, "at most %d entries per request",
		    TPD_MAX_POST);
	cJSON_ArrayForEach(it, arr) {
		rc = tp_entry_parse(it, &w->ch[w->n].e, err, sizeof(err));
		if (rc != 0)
			return batch_error(msg, msglen, rc, "entry %zu: %s", w->n, err);
		tp_id_format(w->ids[w->n], w->ch[w->n].e.t_id);
		w->idp[w->n] = w->ids[w->n];
		sorted[w->n] = w->ids[w->n];
		w->n++;
	}
	/* One entry per transport: a batch saying two things of one t_id is ambiguous. */
	qsort(sorted, w->n, sizeof(sorted[0]), id_cmp);
	for (size_t i = 1; i < w->n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			return batch_error(msg, msglen, 422, "%s is listed twice", sorted[i]);
	return 0;
}

static void
post_transports(struct sw_http_req *req, void *arg)
{
	struct tpd *tpd = arg;
	struct tpd_write *w = NULL;
	cJSON *arr;
	char msg[192];
	int rc;

	if ((arr = sw_api_body_json(req)) == NULL)
		return;
	if (!cJSON_IsArray(arr)) {
		sw_http_error(req, 400, "the body must be an array of transport entries");
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		goto out;
	}
	rc = parse_batch(w, arr, msg, sizeof(msg));
	if (rc != 0) {
		sw_http_error(req, rc, msg);
		goto out;
	}
	w->tpd = tpd;
	sw_api_write(tpd->svc, tpd->st, req, &post_ops, w, NULL, NULL, 0, NULL);
	w = NULL;
out:
	free(w);
	cJSON_Delete(arr);
}

/* DELETE /transports/id:{t_id} */

static int
del_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	struct tpd_write *w = v;

	(void)req;
	/* Whether the caller is an edge, only the stored record can tell. */
	memcpy(w->caller, pk, SW_PK_LEN);
	return 0;
}

static int
del_read(void *v, sw_store_cb *cb, void *arg)
{
	struct tpd_write *w = v;

	return tpd_store_get(w->tpd, w->ids[0], cb, arg);
}

static int
del_decide(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct tpd_write *w = v;

	if (r->type != SW_REPLY_STR) {
		sw_http_error(req, 404, "transport not found");
		return -1;
	}
	if (tp_entry_parse_stored(r->str, r->len, &w->ch[0].e) == -1) {
		sw_log_warn(w->tpd->name, "stored transport unreadable", "t_id=%s", w->ids[0]);
		sw_api_error(req, 500, "stored transport unreadable", NULL);
		return -1;
	}
	if (!tp_entry_has_edge(&w->ch[0].e, w->caller)) {
		sw_http_error(req, 403, "only an edge of a transport may delete it");
		return -1;
	}
	w->ch[0].del = 1;
	w->now = (long long)time(NULL);
	return 0;
}

static void
del_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct tpd_write *w = v;

	(void)r;
	tell_feed(w);
	sw_http_reply_raw(req, 200, "application/json", "{}", 2);
	sw_metric_add(w->tpd->m_writes, (const char *[]){"delete"}, 1);
	sw_log_debug(w->tpd->name, "transport deleted", "t_id=%s", w->ids[0]);
}

static const struct sw_api_write_ops del_ops = {
	.auth_prefix = TPD_PREFIX,
	.authed = del_authed,
	.read = del_read,
	.decide = del_decide,
	.txn = write_txn,
	.committed = del_committed,
	.free = write_free,
};

static void
del_transport(struct sw_http_req *req, void *arg)
{
	struct tpd *tpd = arg;
	struct tpd_write *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return;
	}
	if (tid_param(req, w->ch[0].e.t_id, w->ids[0]) == -1) {
		free(w);
		return;
	}
	w->tpd = tpd;
	w->n = 1;
	sw_api_write(tpd->svc, tpd->st, req, &del_ops, w, NULL, NULL, 0, NULL);
}

/* Lists: GET /transports/edge:{pk}, GET /all-transports */

static void
start_list(struct tpd *tpd, struct sw_http_req *req, const char *pk_hex)
{
	char index[96], key[96];
	struct sw_api_clist q = {.key = key, .index = {index, NULL}, .prefix = TPD_KEY_ENTRY};

	tpd_store_index_key(index, sizeof(index), pk_hex);
	snprintf(key, sizeof(key), "%s", pk_hex != NULL ? pk_hex : "all");
	sw_api_clist_run(tpd->svc, req, tpd->st, tpd->cache, &q);
}

static void
get_by_edge(struct sw_http_req *req, void *arg)
{
	char hex[SW_PK_HEX];

	if (sw_svc_pk_param(req, "pk", NULL, hex) == -1)
		return;
	start_list(arg, req, hex);
}

static void
get_all(struct sw_http_req *req, void *arg)
{
	start_list(arg, req, NULL);
}

int
tpd_api_routes(struct tpd *tpd)
{
	static const struct sw_http_route_def routes[] = {
		{"POST", TPD_PATH_POST, post_transports},
		{"POST", "/transports", post_transports},
		{"GET", TPD_PATH_BY_ID "{t_id}", get_one},
		{"DELETE", TPD_PATH_BY_ID "{t_id}", del_transport},
		{"GET", TPD_PATH_BY_EDGE "{pk}", get_by_edge},
		{"GET", TPD_PATH_ALL, get_all},
	};

	return sw_svc_api_attach(tpd->svc, tpd->http, routes, sizeof(routes) / sizeof(routes[0]), tpd,
	    &tpd->auth);
}
