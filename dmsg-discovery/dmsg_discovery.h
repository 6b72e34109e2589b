/*
 * dmsg-discovery: the HTTP registry of dmsg clients and servers
 * (services.md).  dmsg_discovery.c is the service, api.c the HTTP handlers,
 * store.c the records on the common store.
 */
#ifndef DMSG_DISCOVERY_H
#define DMSG_DISCOVERY_H

#include <stddef.h>

#include "crypto.h"
#include "cxo_follow.h"
#include "dd_schema.h"
#include "dmsg_entry.h"
#include "httpauth.h"
#include "service.h"
#include "store.h"

#define DD_MAX_AVAILABLE      512
#define DD_TS_PAST_S          60
#define DD_TS_FUTURE_S        5

struct sw_http_server;
struct sw_metric;
struct sw_dict;
struct cxo_follow;

struct dd {
	struct sw_svc *svc;
	struct sw_http_dmsg_server *http_dmsg; /* the HTTP API on dmsg port 80 */
	const char *name;
	struct sw_store *st;
	struct sw_http_server *http;
	struct sw_keypair kp;
	struct sw_httpauth auth;
	char listen[256];
	long long client_ttl_s;
	long long server_ttl_s;
	struct sw_dict *writing; /* PKs with a write in flight */
	struct sw_metric *m_posts;
	struct sw_metric *m_entries;
	char cxo_addr[CXO_FOLLOW_ADDR];       /* "" when the feed is not served on TCP */
	char dmsg_disc[CXO_FOLLOW_ADDR];      /* "" when the feed is not served on dmsg */
	size_t cxo_queue_max;
	long long follow_ms;      /* cxo_follow_ms: 0, or rebuild the feed this often */
	struct cxo_follow *feed;  /* feed.c; NULL when not published */
};

extern const struct sw_service_ops dmsg_discovery_ops;

/* api.c */
int dd_api_routes(struct dd *dd);

/*
 * feed.c: the clients-by-server CXO feed, served on cxo_tcp_addr and/or on
 * dmsg port 46 (registered at dmsg_discovery, often this service itself).  The API
 * reports each committed write and delete (cxo_follow_put/del, record kind 0,
 * member the pk hex); the feed follows (and expires) them.
 */
int dd_feed_start(struct dd *dd, const char *addr, const char *dmsg_disc);
void dd_feed_free(struct dd *dd);

/* store.c: the records.  Callbacks get the store's reply. */
int dd_store_get(struct dd *dd, const char *pk_hex, sw_store_cb *cb, void *arg);
/* Write e (stored as json, expiring at expires, Unix s) replacing old (NULL when new). */
int dd_store_put(struct dd *dd, const struct dmsg_entry *e, const char *json,
    const struct dmsg_entry *old, long long expires, sw_store_cb *cb, void *arg);
int dd_store_del(struct dd *dd, const struct dmsg_entry *old, sw_store_cb *cb, void *arg);
/* Live PKs of an index: "all", "servers", or a server's clients (server_hex). */
int dd_store_index(struct dd *dd, const char *server_hex, int servers, sw_store_cb *cb,
    void *arg);
/* A stored entry's fields, without re-checking its signature (we checked it on write). */
int dd_entry_from_stored(const char *json, size_t len, struct dmsg_entry *e);

#endif
