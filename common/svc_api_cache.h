/*
 * svc_api_cache: list answers kept by the service, exact across replicas.
 *
 * A list answer is the records of the live members of a store_index set
 * (or of the members two sets share), the whole list or a random sample of
 * it.  Reading it costs an index read and an MGET of every record; most
 * reads of a list find it unchanged since the last one.  So each index set
 * has a tag (its key with "tag:" after the service's prefix: tpd:edge:<pk>
 * -> tpd:tag:edge:<pk>) that every write touching the set replaces, in the
 * write's own transaction, with a fresh random value (sw_api_index_tag).
 * An answer is kept with the tags read before its index read and the
 * earliest expiry score of its members, and is served again while
 *
 *   - one MGET of the tags returns the same values (no write on any
 *     replica sharing the store has touched the sets since), and
 *   - that earliest expiry has not passed (no member has expired: a read
 *     would not return it any more).
 *
 * Tags are random, never counters, so a tag that expires and is written
 * again cannot come back to a value an old answer holds; a tag lives one
 * TTL (plus a margin for clock skew) past the last write of its set, at
 * least as long as the set's members.
 *
 * The cache is bounded (max_bytes, least recently used evicted; an answer
 * over a quarter of it is not kept) and works the same on both stores.
 */
#ifndef SW_SVC_API_CACHE_H
#define SW_SVC_API_CACHE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "store.h"

struct sw_svc;
struct sw_http_req;
struct sw_api_cache;

#define SW_API_CACHE_BYTES (16u << 20) /* the services' default */

/*
 * The cache of a service's config: "list_cache_bytes" (default
 * SW_API_CACHE_BYTES; 0 keeps nothing), counted in its /metrics as
 * sw_list_cache_reads_total{result="hit"|"miss"}.  NULL (logged) when
 * negative or on OOM.
 */
struct sw_api_cache *sw_api_cache_cfg(struct sw_svc *svc, const cJSON *cfg);
/* max_bytes 0: nothing is kept (every read goes to the store).  NULL on OOM. */
struct sw_api_cache *sw_api_cache_new(size_t max_bytes);
void sw_api_cache_free(struct sw_api_cache *c);
/* Answers served from the cache, and reads that were not. */
unsigned long long sw_api_cache_hits(const struct sw_api_cache *c);
unsigned long long sw_api_cache_misses(const struct sw_api_cache *c);

/* One list query. */
struct sw_api_clist {
	const char *key;      /* the cache key: what identifies the query */
	const char *index[2]; /* the index set, or two to intersect (index[1] NULL: one) */
	const char *prefix;   /* records are prefix+member */
	long long quantity;   /* 0: every record, in the index's order; else a random sample */
};

/*
 * Answer req with the list q (200 and a JSON array, 503/500 on a store
 * failure), from the cache when still exact, else from st.  The strings of
 * q are copied.
 */
void sw_api_clist_run(struct sw_svc *svc, struct sw_http_req *req, struct sw_store *st,
    struct sw_api_cache *c, const struct sw_api_clist *q);

/* In a write's transaction: a new tag for the index set index_key (SET tag EX ttl_s + margin). */
int sw_api_index_tag(struct sw_store_txn *t, const char *index_key, long long ttl_s);

#endif
