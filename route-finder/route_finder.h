/*
 * route-finder: paths between visors over the transports registered in
 * transport-discovery (services.md).  route_finder.c is the service, api.c
 * POST /routes, store.c keeps the in-memory graph (graph.c, searched by
 * paths.c) in step with transport-discovery's records in the shared store,
 * or feed.c in step with its all-transports feed when the stores are
 * separate (transport_discovery_pk set).
 */
#ifndef ROUTE_FINDER_H
#define ROUTE_FINDER_H

#include <stddef.h>

#include "cxo_dmsg.h"
#include "graph.h"
#include "service.h"
#include "store.h"

#define RF_MAX_PAIRS      32
#define RF_DEFAULT_HOPS   5
/* Ids fetched per MGET while loading, so one reply stays a few hundred KiB. */
#define RF_LOAD_CHUNK     1000
/* Dropping expired transports from memory needs no hurry: searches skip them. */
#define RF_PRUNE_S        10
/* transport-discovery's all-transports feed (cxo.md, "The feeds"). */

struct event;
struct cxo_sub;
struct dmsg_client;
struct sw_http_server;
struct sw_metric;

/* A transport the store has and the graph does not, waiting for its record. */
struct rf_pending {
	char id[TP_ID_TEXT];
	long long exp;
};

struct rf {
	struct sw_svc *svc;
	const char *name;
	struct sw_store *st;
	struct sw_http_server *http;
	struct rf_graph *g;
	char listen[256];
	long long refresh_ms;
	struct event *tick;
	/* The graph holds the store as of tpd:version == version. */
	int loaded;
	int loading;
	long long version;
	long long next_exp;  /* earliest expiry in the graph */
	long long loaded_at; /* Unix s of the last completed load */
	struct rf_pending *pend;
	size_t npend, cappend, pend_pos;
	long long load_version;
	struct sw_metric *m_loads, *m_nodes, *m_edges, *m_search;
	/* Feed mode: tpd_pk set; over TCP to feed_addr, else over dmsg. */
	int feed;
	uint8_t tpd_pk[SW_PK_LEN];
	char feed_addr[64];
	char dmsg_disc[256];
	struct sw_keypair kp; /* the dmsg identity */
	struct dmsg_client *dmsg;
	struct sw_http_dmsg_server *http_dmsg; /* the HTTP API on dmsg port 80 */
	char http_dmsg_disc[256];              /* ...on a dmsg client of its own, there */
	struct cxo_dmsg *cd;
	struct cxo_dmsg_target target;
	struct cxo_sub *sub;
	int feed_dirty;      /* an update failed: rebuild from the whole tree */
	char feed_err[128];  /* why the feed last went down */
};

extern const struct sw_service_ops route_finder_ops;

/* api.c */
int rf_api_routes(struct rf *rf);

/* store.c: check tpd:version and reload what changed; called by the timer. */
void rf_store_tick(struct rf *rf);

/* feed.c: subscribe (the graph follows from the first snapshot on). -1 logged. */
int rf_feed_start(struct rf *rf);
/*
 * stop: unsubscribe (no callback runs afterwards).  free: the dmsg side too,
 * at least one loop pass later: the subscriber's bufferevent is let go of by
 * a libevent finalizer, and cxo_dmsg must not touch it before that has run.
 */
void rf_feed_stop(struct rf *rf);
void rf_feed_free(struct rf *rf);
/* checks.feed: "ok", "connecting" or "down: <why>". */
void rf_feed_health(struct rf *rf, cJSON *checks);

#endif
