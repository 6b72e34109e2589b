/*
 * cxo_rebuild: refill a CXO feed from the store's indexes, periodically.
 *
 * A feed fed by committed mutations never hears of records that expire, so
 * at start and then every period it is held, cleared, refilled from one or
 * more indexes (each: its live members, then an MGET of their records, each
 * record one leaf) and released.  Unchanged leaves keep their hashes, so
 * subscribers fetch only what expired or changed.  Store replies come in
 * order, so a mutation committed while a rebuild's read is in flight still
 * lands after it.
 */
#ifndef CXO_REBUILD_H
#define CXO_REBUILD_H

#include <stddef.h>

#include "service.h"
#include "store.h"

struct cxo_feed;
struct cxo_rebuild;

struct cxo_rebuild_ops {
	size_t nindexes;
	/* Read index i: its live members at reply element 0 (sw_store_index_members). */
	int (*index)(void *ctx, size_t i, sw_store_cb *cb, void *arg);
	/* MGET the records of n members of index i. */
	int (*mget)(void *ctx, size_t i, const char *const *members, size_t n, sw_store_cb *cb,
	    void *arg);
	/* The leaf path of a member of index i. */
	void (*path)(void *ctx, size_t i, const char *member, char *out, size_t size);
};

/* ops must outlive the rebuild; NULL on OOM. */
struct cxo_rebuild *cxo_rebuild_new(struct sw_svc *svc, struct cxo_feed *feed, long long period_s,
    const struct cxo_rebuild_ops *ops, void *ctx);
/* Rebuild now, then every period_s. */
void cxo_rebuild_start(struct cxo_rebuild *rb);
/*
 * Replicas sharing one store (cxo.md Replicas): rebuild every period_ms
 * instead, so this feed shows writes another replica took within about that
 * long.  A rebuild that finds nothing new publishes no root.
 */
void cxo_rebuild_follow(struct cxo_rebuild *rb, long long period_ms);
/* No more rebuilds; sw_svc_drain(svc, done) once no rebuild read is in flight. */
void cxo_rebuild_stop(struct cxo_rebuild *rb, sw_svc_stopped *done);
void cxo_rebuild_free(struct cxo_rebuild *rb);

#endif
