/*
 * transport-discovery: the registry of transports between visors
 * (services.md).  transport_discovery.c is the service, api.c the HTTP
 * handlers, store.c the records on the common store (layout in
 * td_schema.h, because route-finder reads it), feed.c the all-transports
 * CXO feed, which the API tells of every committed change.
 */
#ifndef TRANSPORT_DISCOVERY_H
#define TRANSPORT_DISCOVERY_H

#include <stddef.h>

#include "crypto.h"
#include "cxo_follow.h"
#include "httpauth.h"
#include "service.h"
#include "store.h"
#include "tp_entry.h"

#define TPD_MAX_POST 100 /* entries in one POST */

struct sw_http_server;
struct sw_metric;
struct cxo_follow;
struct sw_api_cache;

struct tpd {
	struct sw_svc *svc;
	const char *name;
	struct sw_store *st;
	struct sw_http_server *http;
	struct sw_keypair kp;
	struct sw_httpauth auth;
	char listen[256];
	long long ttl_s;
	long long follow_ms; /* cxo_follow_ms: 0, or refill the feed this often */
	struct sw_metric *m_writes;
	struct sw_metric *m_feed;
	struct sw_api_cache *cache; /* the list answers (svc_api_cache.h) */
	/* The all-transports feed (feed.c), when cxo_tcp_addr or dmsg_discovery is set. */
	char cxo_addr[CXO_FOLLOW_ADDR];
	char dmsg_disc[CXO_FOLLOW_ADDR];
	struct cxo_follow *feed; /* NULL when not published */
	struct sw_http_dmsg_server *http_dmsg; /* the HTTP API on dmsg port 80 */
};

/* One change of the registry: an entry written (or refreshed) or deleted. */
struct tpd_change {
	struct tp_entry e;
	int del;
};

extern const struct sw_service_ops transport_discovery_ops;

/* api.c */
int tpd_api_routes(struct tpd *tpd);

/* store.c.  Callbacks get the store's reply. */
int tpd_store_get(struct tpd *tpd, const char *t_id, sw_store_cb *cb, void *arg);
/* The records of n ids (MGET; nil for the missing). */
int tpd_store_mget(struct tpd *tpd, const char *const *ids, size_t n, sw_store_cb *cb,
    void *arg);
/* The index set of one edge (pk_hex) or of all (NULL). */
void tpd_store_index_key(char *out, size_t size, const char *pk_hex);
/*
 * The one door for every change: write the records and their indexes, bump
 * tpd:version, all in one transaction.  ch must live until cb runs.  Puts
 * expire ttl_s after now.
 */
int tpd_store_apply(struct tpd *tpd, const struct tpd_change *ch, size_t n, long long now,
    sw_store_cb *cb, void *arg);

/*
 * feed.c: the all-transports feed (record kind 0, member the t_id); the
 * API's committed hook hands it each change (cxo_follow_put/del).
 */
int tpd_feed_start(struct tpd *tpd);
/* Stop publishing, then sw_svc_drain(done). */
void tpd_feed_stop(struct tpd *tpd, sw_svc_stopped *done);
void tpd_feed_free(struct tpd *tpd);

#endif
