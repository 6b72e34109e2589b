/*
 * visor/query.c: the visor's lookups in the discovery services' CXO feeds
 * (cxo.md, "Subscriber patterns"), for its API and for its own code
 * (autoconnect, transports).
 *
 * One subscription manager over the visor's dmsg client (common/cxo_dmsg):
 * the first query of a feed opens its subscription, and until that has a
 * snapshot, or while the publisher cannot be reached, the same question is
 * put to the service's HTTP API.  Every answer says which source gave it.
 * A feed whose publisher PK is not configured is never subscribed to: its
 * queries go to HTTP only.  Leaves are the records' JSON exactly as the
 * services store them, so either source gives the caller the same array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cxo_obj.h"
#include "dmsg-discovery/dd_schema.h"
#include "service-discovery/sd_schema.h"
#include "cxo_dmsg.h"
#include "cxo_mgr.h"
#include "http.h"
#include "log.h"
#include "str.h"
#include "visor.h"

#define HTTP_TIMEOUT_MS 5000

struct feedcfg {
	const char *key; /* config key of the publisher's PK */
	uint16_t port;
	int has_pk;
	uint8_t pk[SW_PK_LEN];
	char url[512];   /* the HTTP API's base URL */
};

struct visor_query {
	struct visor *v;
	struct cxo_dmsg *cd;
	struct cxo_mgr *mgr;
	struct sw_http_client *http; /* for feeds without a publisher PK */
	struct feedcfg feeds[VISOR_FEED_COUNT];
};

struct pending {
	struct visor_query *q;
	visor_query_fn *cb;
	void *arg;
	int has_pk;
	uint8_t pk[SW_PK_LEN];
	uint16_t port;
};

static int
feed_cfg(struct visor *v, struct feedcfg *f, const char *key, uint16_t port, const char *url)
{
	const char *hex = sw_cfg_str(v->cfg, key);

	f->key = key;
	f->port = port;
	if (url == NULL || sw_strlcpy(f->url, url, sizeof(f->url)) == -1) {
		sw_log_error(v->name, "discovery URL missing or too long", "feed=%s", key);
		return -1;
	}
	/* An empty string, like an absent key, means HTTP only. */
	if (hex == NULL || *hex == '\0')
		return 0;
	if (strlen(hex) != 2 * SW_PK_LEN || sw_hex_decode(f->pk, SW_PK_LEN, hex) == -1) {
		sw_log_error(v->name, "publisher key must be 64 hex chars", "key=%s", key);
		return -1;
	}
	f->has_pk = 1;
	return 0;
}

int
visor_query_start(struct visor *v)
{
	struct visor_query *q = calloc(1, sizeof(*q));
	struct cxo_mgr_opts mo;
	struct feedcfg tpd;

	if (q == NULL)
		return -1;
	q->v = v;
	v->query = q;
	if (feed_cfg(v, &q->feeds[VISOR_FEED_CLIENTS], "dmsg_discovery_pk", CXO_PORT_CLIENTS_BY_SERVER,
	    v->discovery) == -1 ||
	    feed_cfg(v, &q->feeds[VISOR_FEED_SERVICES], "service_discovery_pk", CXO_PORT_SERVICES_BY_PK,
	    sw_cfg_str(v->cfg, "service_discovery")) == -1 ||
	    feed_cfg(v, &tpd, "transport_discovery_pk", CXO_PORT_ALL_TRANSPORTS,
	    sw_cfg_str(v->cfg, "transport_discovery")) == -1)
		goto fail; /* the transports feed's key is checked now, used later */
	q->cd = cxo_dmsg_new(sw_svc_base(v->svc), v->dmsg, v->name);
	q->http = sw_http_client_new(sw_svc_base(v->svc), v->name);
	memset(&mo, 0, sizeof(mo));
	mo.svc = v->name;
	mo.dial = cxo_dmsg_dial;
	mo.dial_arg = q->cd;
	mo.http_timeout_ms = HTTP_TIMEOUT_MS;
	if (q->cd == NULL || q->http == NULL || (q->mgr = cxo_mgr_new(sw_svc_base(v->svc), &mo)) ==
	    NULL)
		goto fail;
	visor_dmsgfirst_use(v, q->http);
	visor_dmsgfirst_use(v, cxo_mgr_http(q->mgr));
	return 0;
fail:
	visor_query_free(v);
	return -1;
}

void
visor_query_free(struct visor *v)
{
	struct visor_query *q = v->query;

	if (q == NULL)
		return;
	v->query = NULL;
	/* Pending queries are answered (no source) from inside these frees. */
	cxo_mgr_free(q->mgr);
	sw_http_client_free(q->http);
	cxo_dmsg_free(q->cd); /* before the dmsg client goes */
	free(q);
}

/* Leaves of the feed, each one record's JSON, as one array. */
static cJSON *
leaves_array(const struct cxo_answer *a)
{
	cJSON *arr = cJSON_CreateArray();

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < a->nleaves; i++) {
		cJSON *o = cJSON_ParseWithLength((const char *)a->leaves[i].data, a->leaves[i].len);

		if (o == NULL)
			continue; /* a publisher's bad leaf is its bug; the rest still count */
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static void
answer(struct pending *p, const struct cxo_answer *ca, const struct sw_http_resp *hr)
{
	struct visor_answer a;
	cJSON *list = NULL;
	struct cxo_sub *s;

	memset(&a, 0, sizeof(a));
	a.has_publisher = p->has_pk;
	memcpy(a.publisher, p->pk, SW_PK_LEN);
	a.port = p->port;
	if (ca != NULL && ca->source == CXO_SRC_FEED) {
		list = leaves_array(ca);
		a.source = list != NULL ? "cxo" : NULL;
		a.stale = ca->stale;
		a.seq = ca->seq;
		a.error = list != NULL ? NULL : "out of memory";
	} else {
		int status = ca != NULL ? ca->http_status : hr->status;
		const cJSON *json = ca != NULL ? ca->json : hr->json;

		a.http_status = status;
		if (status == 200 && cJSON_IsArray(json)) {
			list = cJSON_Duplicate(json, 1);
			a.source = list != NULL ? "http" : NULL;
			a.error = list != NULL ? NULL : "out of memory";
		} else {
			a.error = status == 0 ? "neither the feed nor the service answered" :
			    "the service answered with an error";
		}
	}
	if (p->has_pk && p->q->mgr != NULL &&
	    (s = cxo_mgr_sub(p->q->mgr, p->pk, p->port)) != NULL) {
		struct cxo_sub_stats st;

		cxo_sub_stats(s, &st);
		a.feed_connected = cxo_sub_connected(s);
		snprintf(a.feed_error, sizeof(a.feed_error), "%s", st.last_error);
	}
	a.list = list;
	p->cb(&a, p->arg);
	cJSON_Delete(list);
	free(p);
}

static void
on_feed(const struct cxo_answer *ca, void *arg)
{
	answer(arg, ca, NULL);
}

static void
on_http(const struct sw_http_resp *r, void *arg)
{
	answer(arg, NULL, r);
}

int
visor_query(struct visor *v, const struct visor_query_req *r, visor_query_fn *cb, void *arg)
{
	struct visor_query *q = v->query;
	const struct feedcfg *f;
	struct pending *p;
	char url[1024], prefix[256];
	struct sw_http_opts ho = {0};
	struct cxo_query cq;

	if (q == NULL || r->feed < 0 || r->feed >= VISOR_FEED_COUNT || r->key == NULL ||
	    r->key[0] == '\0' || strlen(r->key) > 128 || strpbrk(r->key, "/?&#% ") != NULL)
		return -1;
	f = &q->feeds[r->feed];
	if (r->feed == VISOR_FEED_SERVICES) {
		snprintf(prefix, sizeof(prefix), SD_FEED_ROOT "/%s", r->key);
		snprintf(url, sizeof(url), "%s" SD_PATH_SERVICES "?type=%s", f->url, r->key);
	} else {
		snprintf(prefix, sizeof(prefix), DD_FEED_ROOT "/%s", r->key);
		snprintf(url, sizeof(url), "%s" DD_PATH_CLIENTS "%s", f->url,
		    r->key);
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	p->q = q;
	p->cb = cb;
	p->arg = arg;
	p->port = f->port;
	if (r->publisher != NULL) {
		p->has_pk = 1;
		memcpy(p->pk, r->publisher, SW_PK_LEN);
	} else if (f->has_pk) {
		p->has_pk = 1;
		memcpy(p->pk, f->pk, SW_PK_LEN);
	}
	if (!p->has_pk) {
		ho.timeout_ms = HTTP_TIMEOUT_MS;
		if (sw_http_request(q->http, "GET", url, NULL, 0, &ho, on_http, p) == -1)
			goto fail;
		return 0;
	}
	memset(&cq, 0, sizeof(cq));
	cq.pk = p->pk;
	cq.port = p->port;
	cq.prefix = prefix;
	cq.http_url = url;
	if (cxo_mgr_query(q->mgr, &cq, on_feed, p) == -1)
		goto fail;
	return 0;
fail:
	free(p);
	return -1;
}

int
visor_query_services(struct visor *v, const char *type, visor_query_fn *cb, void *arg)
{
	struct visor_query_req r = {VISOR_FEED_SERVICES, type, NULL};

	return visor_query(v, &r, cb, arg);
}

int
visor_query_clients(struct visor *v, const char *server_hex, visor_query_fn *cb, void *arg)
{
	struct visor_query_req r = {VISOR_FEED_CLIENTS, server_hex, NULL};

	return visor_query(v, &r, cb, arg);
}
