/*
 * service-discovery's HTTP API (services.md).  Writes check the body, then
 * the caller's signature (httpauth), then replace the stored record and its
 * indexes in one transaction.  Reads answer from the stored JSON without
 * parsing it: a query reads the index that answers it, picks the PKs it
 * will return (at random when a quantity is asked), and fetches only those.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cxo_follow.h"
#include "dict.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "service_discovery.h"
#include "store.h"
#include "store_index.h"
#include "svc_api.h"

#define SD_MAX_QUANTITY 1000000000LL
#define WKEY_MAX        (16 + SW_PK_HEX)

/* One write (post or delete) in flight: the state of its sw_api_write. */
struct sd_write {
	struct sd *sd;
	struct sd_service s;
	struct sd_service old;
	int has_old;
	char wkey[WKEY_MAX];
	size_t wlen;
	char addr[SD_ADDR_TEXT];
	char *json;
};

static void
write_free(void *v)
{
	struct sd_write *w = v;

	free(w->json);
	free(w);
}

/* Run the write w of req, one at a time per (type, pk) (sw_api_write). */
static void
write_run(struct sd *sd, struct sd_write *w, struct sw_http_req *req,
    const struct sw_api_write_ops *ops)
{
	w->sd = sd;
	w->wlen = (size_t)snprintf(w->wkey, sizeof(w->wkey), "%s:%s", sd_type_name(w->s.type),
	    w->s.pk_hex);
	sw_api_write(sd->svc, sd->st, req, ops, w, sd->writing, w->wkey, w->wlen,
	    "another update of this service is in progress");
}

/* The type=T query parameter, required: 400 and -1 when absent or unknown. */
static int
type_param(struct sw_http_req *req, enum sd_type *t)
{
	const char *q = sw_http_req_query(req, "type");

	if (q == NULL || q[0] == '\0') {
		sw_http_error(req, 400, "type is required");
		return -1;
	}
	if (sd_type_parse(q, t) == -1) {
		sw_http_error(req, 400, "type must be visor, vpn, skysocks or proxy");
		return -1;
	}
	return 0;
}

/* The {addr} capture "<pk>:<port>": 400 and -1 when malformed. */
static int
addr_param(struct sw_http_req *req, struct sd_service *s, char *addr)
{
	const char *p = sw_http_req_param(req, "addr");

	if (p == NULL || sd_addr_parse(p, s->pk, &s->port) != 0) {
		sw_http_error(req, 400, "address must be \"<pk>:<port>\" with a lowercase hex key");
		return -1;
	}
	sw_hex_encode(s->pk_hex, s->pk, SW_PK_LEN);
	snprintf(addr, SD_ADDR_TEXT, "%s:%u", s->pk_hex, s->port);
	return 0;
}

/* The caller must be the key in the service's address. */
static int
check_caller(struct sd_write *w, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN],
    const char *msg)
{
	if (memcmp(pk, w->s.pk, SW_PK_LEN) != 0) {
		sw_http_error(req, 403, msg);
		return -1;
	}
	return 0;
}

static int
read_old(void *v, sw_store_cb *cb, void *arg)
{
	struct sd_write *w = v;

	return sd_store_get(w->sd, w->s.type, w->s.pk_hex, cb, arg);
}

/* POST /api/services */

static int
post_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	return check_caller(v, req, pk,
	    "a service may only be registered by the key in its address");
}

static int
post_decide(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct sd_write *w = v;

	if (r->type == SW_REPLY_STR) {
		if (sd_service_from_stored(r->str, r->len, &w->old) == 0)
			w->has_old = 1;
		else
			sw_log_warn(w->sd->name, "stored service unreadable, replacing it", "pk=%s",
			    w->s.pk_hex);
	}
	w->json = sd_service_json(&w->s);
	if (w->json == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return -1;
	}
	return 0;
}

static int
post_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct sd_write *w = v;

	return sd_store_put(w->sd, &w->s, w->json, w->has_old ? &w->old : NULL, cb, arg);
}

static void
post_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct sd_write *w = v;
	size_t len = strlen(w->json);

	(void)r;
	sw_metric_add(w->sd->m_feed, (const char *[]){"put"}, 1);
	cxo_follow_put(w->sd->feed, w->s.type, w->s.pk_hex, w->json, len,
	    w->sd->ttl_s);
	sw_metric_add(w->sd->m_writes, (const char *[]){w->has_old ? "update" : "create"}, 1);
	sw_http_reply_raw(req, 200, "application/json", w->json, len);
	sw_log_debug(w->sd->name, w->has_old ? "service updated" : "service registered",
	    "type=%s pk=%s", sd_type_name(w->s.type), w->s.pk_hex);
}

static const struct sw_api_write_ops post_ops = {
	.auth_prefix = SD_PREFIX,
	.authed = post_authed,
	.read = read_old,
	.decide = post_decide,
	.txn = post_txn,
	.committed = post_committed,
	.free = write_free,
};

static void
post_service(struct sw_http_req *req, void *arg)
{
	struct sd *sd = arg;
	struct sd_write *w = NULL;
	cJSON *obj;
	char err[160];
	int rc;

	if ((obj = sw_api_body_json(req)) == NULL)
		return;
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		goto out;
	}
	rc = sd_service_parse(obj, &w->s, err, sizeof(err));
	if (rc != 0) {
		sw_http_error(req, rc, err);
		free(w);
		goto out;
	}
	w->s.registered = (long long)time(NULL);
	write_run(sd, w, req, &post_ops);
out:
	cJSON_Delete(obj);
}

/* DELETE /api/services/{addr}?type=T */

static int
del_authed(void *v, struct sw_http_req *req, const uint8_t pk[SW_PK_LEN])
{
	return check_caller(v, req, pk, "a service may only be deleted by the key in its address");
}

static int
del_decide(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct sd_write *w = v;

	if (r->type != SW_REPLY_STR || !sd_stored_has_addr(r->str, r->len, w->addr)) {
		sw_http_error(req, 404, "service not found");
		return -1;
	}
	if (sd_service_from_stored(r->str, r->len, &w->old) == -1) {
		/* Unreadable: still remove the record and its type index entry. */
		w->old = w->s;
	}
	return 0;
}

static int
del_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct sd_write *w = v;

	return sd_store_del(w->sd, &w->old, cb, arg);
}

static void
del_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct sd_write *w = v;

	(void)r;
	sw_metric_add(w->sd->m_feed, (const char *[]){"delete"}, 1);
	cxo_follow_del(w->sd->feed, w->old.type, w->old.pk_hex);
	sw_metric_add(w->sd->m_writes, (const char *[]){"delete"}, 1);
	sw_http_reply_raw(req, 200, "application/json", "{}", 2);
	sw_log_debug(w->sd->name, "service deleted", "type=%s pk=%s", sd_type_name(w->s.type),
	    w->s.pk_hex);
}

static const struct sw_api_write_ops del_ops = {
	.auth_prefix = SD_PREFIX,
	.authed = del_authed,
	.read = read_old,
	.decide = del_decide,
	.txn = del_txn,
	.committed = del_committed,
	.free = write_free,
};

static void
del_service(struct sw_http_req *req, void *arg)
{
	struct sd *sd = arg;
	struct sd_write *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return;
	}
	if (addr_param(req, &w->s, w->addr) == -1 || type_param(req, &w->s.type) == -1) {
		free(w);
		return;
	}
	write_run(sd, w, req, &del_ops);
}

/* GET /api/services/{addr}?type=T */

static int
has_addr(const char *json, size_t len, const void *addr)
{
	return sd_stored_has_addr(json, len, addr);
}

static void
get_service(struct sw_http_req *req, void *arg)
{
	struct sd *sd = arg;
	struct sd_service s;
	struct sw_api_get *g;
	char addr[SD_ADDR_TEXT];

	memset(&s, 0, sizeof(s));
	if (addr_param(req, &s, addr) == -1 || type_param(req, &s.type) == -1)
		return;
	/* The capture is canonical (no leading zeros), so the stored prefix compares. */
	g = sw_api_get_begin(sd->svc, req, "service not found", has_addr,
	    sw_http_req_param(req, "addr"));
	if (g != NULL && sd_store_get(sd, s.type, s.pk_hex, sw_api_get_done, g) == -1)
		sw_api_get_fail(g);
}

/* GET /api/services?type=T[&country=XX][&version=V][&quantity=N] */

/* quantity=N: a positive decimal; 0 when absent, -1 (400 sent) when bad. */
static long long
quantity_param(struct sw_http_req *req)
{
	const char *s = sw_http_req_query(req, "quantity");
	long long v = 0;

	if (s == NULL || s[0] == '\0')
		return 0;
	if (strlen(s) > 10 || strspn(s, "0123456789") != strlen(s))
		goto bad;
	for (; *s != '\0'; s++)
		v = v * 10 + (*s - '0');
	if (v < 1 || v > SD_MAX_QUANTITY)
		goto bad;
	return v;
bad:
	sw_http_error(req, 400, "quantity must be a positive integer");
	return -1;
}

static void
list_services(struct sw_http_req *req, void *arg)
{
	struct sd *sd = arg;
	enum sd_type t;
	const char *cc_q, *ver;
	char cc[3];
	long long quantity;

	if (type_param(req, &t) == -1 || (quantity = quantity_param(req)) == -1)
		return;
	cc_q = sw_http_req_query(req, "country");
	ver = sw_http_req_query(req, "version");
	if (cc_q != NULL && cc_q[0] == '\0')
		cc_q = NULL;
	if (ver != NULL && ver[0] == '\0')
		ver = NULL;
	if (cc_q != NULL && sd_country_parse(cc_q, cc) == -1) {
		sw_http_error(req, 400, "country must be a two-letter country code");
		return;
	}
	if (ver != NULL && !sd_version_valid(ver)) {
		sw_http_error(req, 400, "version must be at most 32 bytes of [0-9A-Za-z.+_-]");
		return;
	}
	sd_list(sd, req, t, cc_q != NULL ? cc : NULL, ver, quantity);
}

int
sd_api_routes(struct sd *sd)
{
	static const struct sw_http_route_def routes[] = {
		{"POST", SD_PATH_SERVICES, post_service},
		{"POST", SD_PATH_SERVICE, post_service},
		{"GET", SD_PATH_SERVICES, list_services},
		{"GET", SD_PATH_SERVICE, list_services},
		{"GET", SD_PATH_SERVICE "{addr}", get_service},
		{"DELETE", SD_PATH_SERVICE "{addr}", del_service},
	};

	return sw_svc_api_attach(sd->svc, sd->http, routes, sizeof(routes) / sizeof(routes[0]), sd,
	    &sd->auth);
}
