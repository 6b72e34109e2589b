/*
 * dmsg-discovery's HTTP API (services.md).  Reads answer straight from the
 * stored JSON, without parsing it; writes check the entry, then its
 * sequence and timestamp against the stored one, then write the record and
 * its indexes in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "cxo_follow.h"
#include "dd_schema.h"
#include "dict.h"
#include "dmsg_discovery.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_index.h"
#include "svc_api.h"

#define BUSY "another update of this entry is in progress"

/* One write in flight: the state of its sw_api_write. */
struct dd_write {
	struct dd *dd;
	struct dmsg_entry e;
	struct dmsg_entry old;
	int has_old;
	long long expires;
	char pk_hex[SW_PK_HEX];
	char *json;
};

/* GET /dmsg-discovery/entry/{pk} */

static void
get_entry(struct sw_http_req *req, void *arg)
{
	struct dd *dd = arg;
	struct sw_api_get *g;
	char hex[SW_PK_HEX];

	if (sw_svc_pk_param(req, "pk", NULL, hex) == -1 ||
	    (g = sw_api_get_begin(dd->svc, req, "entry not found", NULL, NULL)) == NULL)
		return;
	if (dd_store_get(dd, hex, sw_api_get_done, g) == -1)
		sw_api_get_fail(g);
}

static void
write_free(void *v)
{
	struct dd_write *w = v;

	free(w->json);
	free(w);
}

static int
read_old(void *v, sw_store_cb *cb, void *arg)
{
	struct dd_write *w = v;

	return dd_store_get(w->dd, w->pk_hex, cb, arg);
}

/* POST /dmsg-discovery/entry/ */

static int
post_decide(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct dd_write *w = v;

	if (r->type != SW_REPLY_STR)
		return 0;
	if (dd_entry_from_stored(r->str, r->len, &w->old) == -1) {
		/* Unreadable record: replace it rather than refuse its owner forever. */
		sw_log_warn(w->dd->name, "stored entry unreadable, replacing it", "pk=%s",
		    w->pk_hex);
		return 0;
	}
	w->has_old = 1;
	if (w->e.sequence <= w->old.sequence) {
		sw_http_error(req, 409, "sequence is not higher than the stored one");
		return -1;
	}
	if (w->e.timestamp < w->old.timestamp) {
		sw_http_error(req, 409, "timestamp is older than the stored one");
		return -1;
	}
	return 0;
}

static int
post_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct dd_write *w = v;

	w->expires = (long long)time(NULL) +
	    (w->e.has_server ? w->dd->server_ttl_s : w->dd->client_ttl_s);
	return dd_store_put(w->dd, &w->e, w->json, w->has_old ? &w->old : NULL, w->expires, cb,
	    arg);
}

static void
post_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct dd_write *w = v;
	char body[32];

	(void)r;
	cxo_follow_put(w->dd->feed, 0, w->pk_hex, w->json, strlen(w->json),
	    w->e.has_server ? w->dd->server_ttl_s : w->dd->client_ttl_s);
	sw_metric_add(w->dd->m_posts, (const char *[]){w->has_old ? "update" : "create"}, 1);
	snprintf(body, sizeof(body), "{\"created\":%s}", w->has_old ? "false" : "true");
	sw_http_reply_raw(req, 200, "application/json", body, strlen(body));
	sw_log_debug(w->dd->name, w->has_old ? "entry updated" : "entry created",
	    "pk=%s seq=%llu", w->pk_hex, w->e.sequence);
}

static const struct sw_api_write_ops post_ops = {
	.read = read_old,
	.decide = post_decide,
	.txn = post_txn,
	.committed = post_committed,
	.free = write_free,
};

static void
post_entry(struct sw_http_req *req, void *arg)
{
	struct dd *dd = arg;
	struct dd_write *w = NULL;
	cJSON *obj = NULL;
	char err[160];
	int rc;
	long long now = (long long)time(NULL);

	if ((obj = sw_api_body_json(req)) == NULL)
		return;
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		goto out;
	}
	rc = dmsg_entry_parse(obj, &w->e, err, sizeof(err));
	if (rc != 0) {
		sw_http_error(req, rc, err);
		goto out;
	}
	if (w->e.has_server && ((long long)w->e.timestamp < now - DD_TS_PAST_S ||
	    (long long)w->e.timestamp > now + DD_TS_FUTURE_S)) {
		sw_http_error(req, 422, "server entry timestamp is not within [now-60s, now+5s]");
		goto out;
	}
	w->json = cJSON_PrintUnformatted(obj);
	if (w->json == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		goto out;
	}
	w->dd = dd;
	sw_hex_encode(w->pk_hex, w->e.pk, SW_PK_LEN);
	sw_api_write(dd->svc, dd->st, req, &post_ops, w, dd->writing, w->pk_hex, 2 * SW_PK_LEN,
	    BUSY);
	w = NULL;
out:
	if (w != NULL)
		write_free(w);
	cJSON_Delete(obj);
}

/* DELETE /dmsg-discovery/entry/{pk} */

static int
del_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	struct dd_write *w = v;

	if (memcmp(pk, w->e.pk, SW_PK_LEN) != 0) {
		sw_http_error(req, 403, "an entry may only be deleted by its own key");
		return -1;
	}
	return 0;
}

static int
del_decide(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct dd_write *w = v;

	if (r->type != SW_REPLY_STR) {
		sw_http_error(req, 404, "entry not found");
		return -1;
	}
	if (dd_entry_from_stored(r->str, r->len, &w->old) == -1)
		memcpy(w->old.pk, w->e.pk, SW_PK_LEN); /* still remove the record */
	return 0;
}

static int
del_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct dd_write *w = v;

	return dd_store_del(w->dd, &w->old, cb, arg);
}

static void
del_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct dd_write *w = v;

	(void)r;
	cxo_follow_del(w->dd->feed, 0, w->pk_hex);
	sw_http_reply_raw(req, 200, "application/json", "{}", 2);
	sw_log_debug(w->dd->name, "entry deleted", "pk=%s", w->pk_hex);
}

static const struct sw_api_write_ops del_ops = {
	.auth_prefix = DD_PREFIX,
	.authed = del_authed,
	.read = read_old,
	.decide = del_decide,
	.txn = del_txn,
	.committed = del_committed,
	.free = write_free,
};

static void
del_entry(struct sw_http_req *req, void *arg)
{
	struct dd *dd = arg;
	struct dd_write *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return;
	}
	if (sw_svc_pk_param(req, "pk", w->e.pk, w->pk_hex) == -1) {
		free(w);
		return;
	}
	w->dd = dd;
	sw_api_write(dd->svc, dd->st, req, &del_ops, w, dd->writing, w->pk_hex, 2 * SW_PK_LEN,
	    BUSY);
}

/* Lists */

static int
available(const char *json, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "server"), "availableSessions");
	int ok = cJSON_IsNumber(n) && n->valuedouble > 0;

	cJSON_Delete(o);
	return ok;
}

/* Only servers with free sessions, shuffled, at most DD_MAX_AVAILABLE. */
static void
list_available_done(const struct sw_reply *r, void *arg)
{
	struct sw_api_list *l = arg;
	size_t *idx = NULL, n = 0;

	if (sw_svc_store_failed(l->req, r))
		goto out;
	if (r->type != SW_REPLY_ARRAY) {
		sw_api_store_error(l->req);
		goto out;
	}
	idx = calloc(r->elements ? r->elements : 1, sizeof(*idx));
	if (idx == NULL) {
		sw_api_error(l->req, 500, "out of memory", NULL);
		goto out;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const struct sw_reply *e = r->element[i];

		if (e->type == SW_REPLY_STR && available(e->str, e->len))
			idx[n++] = i;
	}
	/* Fisher-Yates, so load spreads over the servers. */
	for (size_t i = n; i > 1; i--) {
		size_t j = randombytes_uniform((uint32_t)i), t = idx[i - 1];

		idx[i - 1] = idx[j];
		idx[j] = t;
	}
	if (n > DD_MAX_AVAILABLE)
		n = DD_MAX_AVAILABLE;
	sw_api_reply_records(l->req, r, idx, n);
out:
	free(idx);
	sw_api_list_end(l);
}

/* GET /dmsg-discovery/entries: the PKs themselves, not their records. */
static void
list_pks_done(const struct sw_reply *r, void *arg)
{
	struct sw_api_list *l = arg;
	const struct sw_reply *pks;
	struct evbuffer *b;

	if (sw_svc_store_failed(l->req, r))
		goto out;
	if ((pks = sw_store_index_members(r, 0)) == NULL) {
		sw_api_store_error(l->req);
		goto out;
	}
	b = evbuffer_new();
	if (b == NULL) {
		sw_api_error(l->req, 500, "out of memory", NULL);
		goto out;
	}
	sw_api_add_members(b, pks);
	sw_http_reply_buf(l->req, 200, "application/json", b);
	evbuffer_free(b);
out:
	sw_api_list_end(l);
}

static void
start_list(struct dd *dd, struct sw_http_req *req, const char *server_hex, int servers,
    sw_store_cb *records, sw_store_cb *cb)
{
	struct sw_api_list *l = sw_api_list_begin(dd->svc, req, dd->st, DD_KEY_ENTRY);

	if (l == NULL)
		return;
	if (records != NULL)
		l->records = records;
	if (dd_store_index(dd, server_hex, servers, cb, l) == -1)
		sw_api_list_fail(l);
}

static void
get_entries(struct sw_http_req *req, void *arg)
{
	start_list(arg, req, NULL, 0, NULL, list_pks_done);
}

static void
get_all_servers(struct sw_http_req *req, void *arg)
{
	start_list(arg, req, NULL, 1, NULL, sw_api_list_index_done);
}

static void
get_available_servers(struct sw_http_req *req, void *arg)
{
	start_list(arg, req, NULL, 1, list_available_done, sw_api_list_index_done);
}

static void
get_clients_by_server(struct sw_http_req *req, void *arg)
{
	char hex[SW_PK_HEX];

	if (sw_svc_pk_param(req, "server_pk", NULL, hex) == -1)
		return;
	start_list(arg, req, hex, 0, NULL, sw_api_list_index_done);
}

int
dd_api_routes(struct dd *dd)
{
	static const struct sw_http_route_def routes[] = {
		{"POST", DD_PATH_ENTRY, post_entry},
		{"POST", DD_PATH_ENTRY_BASE, post_entry},
		{"GET", DD_PATH_ENTRY "{pk}", get_entry},
		{"DELETE", DD_PATH_ENTRY "{pk}", del_entry},
		{"GET", DD_PATH_ENTRIES, get_entries},
		{"GET", DD_PATH_AVAILABLE, get_available_servers},
		{"GET", DD_PATH_ALL_SERVERS, get_all_servers},
		{"GET", DD_PATH_CLIENTS "{server_pk}", get_clients_by_server},
	};

	return sw_svc_api_attach(dd->svc, dd->http, routes, sizeof(routes) / sizeof(routes[0]), dd,
	    &dd->auth);
}
