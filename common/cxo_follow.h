/*
 * cxo_follow: a CXO feed that follows the store, the one feed engine of the
 * discovery services (cxo.md, "The feeds").
 *
 * A service describes its records with a small table (which indexes list
 * them, where they are stored, which leaf paths a record has; every leaf
 * holds the record's JSON as stored) and reports each committed write and
 * delete.  The engine does the rest:
 *
 *   - one bounded queue of mutations ("record r is now this JSON, expiring
 *     then" or "is gone"), drained once per loop pass.  Each is a whole
 *     state, so applying one late or twice is harmless, which is what lets
 *     a rebuild run while writes continue: they queue and are applied after
 *     the rebuilt tree.  Overflow is counted and answered with a rebuild,
 *     never with silent drift.
 *   - expiry: the store drops a record by TTL and tells nobody, so the
 *     engine keeps, per record with leaves, its expiry time on a list in
 *     expiry order (a write lands at the tail: O(1)); one timer watches the
 *     head and reads the record back (GET + TTL): gone -> its leaves go;
 *     rewritten elsewhere (another replica) -> its new content and expiry.
 *   - rebuilds from the store's indexes (zsets scored by expiry, read with
 *     their scores, then MGETs of the records) at start, on overflow and,
 *     when asked, every rebuild_s as a safety net.  Publication is held
 *     meanwhile, so subscribers see the old root until the new one is whole,
 *     and unchanged leaves keep their hashes.
 *   - the publisher: TCP and/or dmsg.
 *   - the root sequence, one per feed in the store (cxo:<pk>:<port>:seq),
 *     taken by every publication of every replica, with the roots signed
 *     kept beside it (cxo:<pk>:<port>:roots): replicas that have the same
 *     tree serve the same root, so a subscriber moving between them never
 *     sees the feed go back; a restart publishes a higher seq.  With the
 *     store down, the local counter (never back).
 *
 * Store callbacks hold a reference token, not the engine, so it may be freed
 * with reads in flight.
 */
#ifndef CXO_FOLLOW_H
#define CXO_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "service.h"
#include "store.h"

#define CXO_FOLLOW_PATH       192 /* bytes of a leaf path, NUL included */
#define CXO_FOLLOW_MAX_LEAVES 64  /* leaves of one record */
#define CXO_FOLLOW_KEY        256 /* bytes of a store key, NUL included */

struct cxo_follow;
struct cxo_feed;

/* The records of a feed: nkinds kinds, each listed by one index. */
struct cxo_follow_ops {
	size_t nkinds;
	/* The zset of live records of kind k: member -> expiry (Unix s). */
	void (*index_key)(void *ctx, size_t k, char *out, size_t size);
	/* The key prefix of kind k's records: the record of m is prefix + m. */
	void (*record_prefix)(void *ctx, size_t k, char *out, size_t size);
	/*
	 * The leaf paths of the record of member (kind k) stored as json (len
	 * bytes, NUL-terminated): written to paths[0..n), n <= max, returned.
	 * 0 for a record the feed does not show (or cannot read).
	 */
	size_t (*leaves)(void *ctx, size_t k, const char *member, const char *json, size_t len,
	    char (*paths)[CXO_FOLLOW_PATH], size_t max);
};

struct cxo_follow_opts {
	struct sw_svc *svc;
	struct sw_store *st;
	const struct sw_keypair *kp; /* must outlive the engine */
	uint16_t port;               /* the CXO feed port (cxo.md) */
	const char *tcp_addr;        /* "" or NULL: not on TCP */
	const char *dmsg_disc;       /* "" or NULL: not on dmsg */
	const struct cxo_follow_ops *ops;
	void *ctx;
	size_t queue_max;            /* 0: 4096 */
	long long rebuild_s;         /* 0: rebuild only at start and on overflow */
	/*
	 * Replicas sharing one store (cxo.md Replicas): another replica's writes
	 * reach this feed only through the store, so rebuild every follow_ms
	 * (instead of rebuild_s) and every replica's tree is the same within
	 * about that long.  A rebuild that finds nothing new publishes no root.
	 * 0: off.
	 */
	long long follow_ms;
	const char *metric_prefix;   /* <p>_queue_overflows_total, <p>_rebuilds_total, <p>_leaves */
};

/*
 * Where an instance publishes its feed, from its config: cxo_tcp_addr into
 * tcp and dmsg_discovery (an http:// URL) into disc, each "" when unset,
 * each buffer CXO_FOLLOW_ADDR bytes.  -1 logged when one is malformed.
 */
#define CXO_FOLLOW_ADDR 256
int cxo_follow_cfg(const char *svc, const cJSON *cfg, char *tcp, char *disc);

/* Publish and start following (the first rebuild runs at once).  NULL logged. */
struct cxo_follow *cxo_follow_start(const struct cxo_follow_opts *o);
void cxo_follow_free(struct cxo_follow *f);

/*
 * A committed write: member (kind k) is now json (len bytes), stored with a
 * TTL of ttl_s (counted from now, in ms, so the expiry check lands just
 * after the store's own expiry).
 */
void cxo_follow_put(struct cxo_follow *f, size_t k, const char *member, const char *json,
    size_t len, long long ttl_s);
/* A committed delete. */
void cxo_follow_del(struct cxo_follow *f, size_t k, const char *member);

/* For tests and metrics. */
struct cxo_feed *cxo_follow_feed(const struct cxo_follow *f);
/* The publisher's dmsg client (NULL when not on dmsg), which also carries HTTP over dmsg. */
struct dmsg_client *cxo_follow_dmsg(const struct cxo_follow *f);
int cxo_follow_tcp_port(const struct cxo_follow *f);
struct cxo_follow_stats {
	size_t records;      /* with leaves, followed for expiry */
	size_t queued;
	unsigned long rebuilds;
	unsigned long overflows;
	int rebuilding;
	unsigned long adopted; /* roots another replica signed, served as they are */
	unsigned long local;   /* roots numbered locally: the store did not answer */
};
void cxo_follow_stats(const struct cxo_follow *f, struct cxo_follow_stats *s);

#endif
