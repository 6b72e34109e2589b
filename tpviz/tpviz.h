/*
 * tpviz: the network's picture (services.md, "tpviz"): a web page and a
 * JSON API showing what the three discovery feeds say, live.
 *
 * feeds.c follows the feeds through one CXO subscription manager (HTTP
 * fallback until the first snapshot, or while a publisher is unreachable)
 * and keeps, per view, the items and the answer already rendered, so a GET
 * is a memcpy and never a store or feed round trip (the transports view
 * also keeps its compact form for the page, /api/graph).  api.c serves the
 * views, the page (page.c) and the event stream.  tpviz.c is the service.
 */
#ifndef TPVIZ_H
#define TPVIZ_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "service.h"

struct cxo_mgr;
struct cxo_dmsg;
struct dmsg_client;
struct event;
struct sw_http_client;
struct sw_http_dmsg;
struct sw_http_dmsg_server;
struct sw_http_req;
struct sw_http_server;

#define TPVIZ_MAX_SSE     256
#define TPVIZ_SSE_BACKLOG (1u << 20) /* a reader this far behind is dropped */
#define TPVIZ_MAX_SERVERS 512        /* dmsg servers asked one by one on HTTP fallback */

enum tpviz_view_id {
	TV_TRANSPORTS = 0,
	TV_SVC_VISOR,
	TV_SVC_VPN,
	TV_SVC_SKYSOCKS,
	TV_CLIENTS,
	TV_COUNT,
};

struct tp_entry;

struct tpviz_item {
	char *key;   /* t_id, pk, or "server/client" */
	char *json;  /* the record, compact */
	struct tp_entry *tp; /* transports: the entry parsed, for /api/graph (NULL if invalid) */
};

struct tpviz_view {
	const char *feed;     /* its feed's name (SSE "feed") */
	int has_pk;
	uint8_t pk[SW_PK_LEN];
	uint16_t port;
	char prefix[64];
	char url[600];        /* HTTP fallback (transports, services) */
	int inflight;
	const char *source;   /* "cxo", "http", or NULL before any answer */
	uint64_t seq;         /* cxo: root seq; http: a local counter */
	long long updated_s;  /* wall time of the last change */
	long long asked_ms;   /* last full query (monotonic) */
	struct tpviz_item *items; /* sorted by key */
	size_t nitems;
	struct tpviz_body *body; /* the rendered answer (NULL before any) */
	struct tpviz_body *graph; /* transports: the page's compact form (/api/graph) */
};

/*
 * A rendered answer, shared: the view holds one reference and every answer
 * being sent one more (evbuffer_add_reference), so a GET copies nothing and
 * a change frees the old body only once the last reader has it.
 */
struct tpviz_body {
	int refs;
	size_t len;
	char data[];
};
void tpviz_body_unref(struct tpviz_body *b);

struct tpviz {
	struct sw_svc *svc;
	const char *name;
	struct sw_keypair kp;
	char listen[256];
	char tpd_url[512], sd_url[512], dd_url[512];
	long long poll_ms;
	struct sw_http_server *http;
	struct dmsg_client *dmsg;
	struct cxo_dmsg *cd;
	struct cxo_mgr *mgr;
	struct sw_http_client *hc;      /* own fallback requests (dmsg-discovery) */
	struct sw_http_dmsg *carrier;   /* dmsg first for both HTTP clients */
	struct sw_http_dmsg_server *http_dmsg;
	struct event *tick;
	struct tpviz_view views[TV_COUNT];
	/* dmsg servers known over HTTP (all_servers), for servers without clients */
	char **servers;
	size_t nservers;
	long long servers_ms;
	int servers_inflight;
	int clients_http_pending;       /* per-server requests of an HTTP fallback round */
	struct tpviz_item *clients_acc; /* ... and what they gathered */
	size_t nclients_acc, clients_cap;
	struct sw_http_req *sse[TPVIZ_MAX_SSE];
	size_t nsse;
	long long sse_ping_ms;
	int stopping;
	char *page;      /* tpviz_page_lines joined, built once */
	size_t page_len;
};

extern const struct sw_service_ops tpviz_ops;

/* feeds.c */
int tpviz_feeds_start(struct tpviz *t);
void tpviz_feeds_snapshot(const uint8_t *pk, uint16_t port, void *arg);
void tpviz_feeds_free(struct tpviz *t);
/* Replace a view's items (sorted here); renders, counts changes, tells SSE. */
void tpviz_view_set(struct tpviz *t, enum tpviz_view_id id, const char *source, uint64_t seq,
    struct tpviz_item *items, size_t n);
void tpviz_items_free(struct tpviz_item *items, size_t n);

/* api.c */
int tpviz_api_routes(struct tpviz *t);
/* Send one event to every stream; drop the ones that left or lag. */
void tpviz_sse_send(struct tpviz *t, const char *event_json);
void tpviz_sse_close_all(struct tpviz *t);

/* page.c */
extern const char *const tpviz_page_lines[]; /* NULL-terminated */

#endif
