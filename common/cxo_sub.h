/*
 * cxo_sub: the subscribing side of CXO (cxo.md, "Wire" 3-5).  A cxo_sub
 * keeps one feed in step: it dials (through the owner's dial function, so
 * the transport is anything that yields a connected bufferevent), verifies
 * each ROOT, fetches only the nodes it does not hold, checks every object's
 * hash, and reports the first complete tree as a snapshot and each later
 * one as an update listing exactly the leaves added, changed or removed.
 * Anything wrong closes the connection; the last good snapshot stays, and
 * the subscriber redials with backoff (1 s doubling to 30 s).
 */
#ifndef CXO_SUB_H
#define CXO_SUB_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct bufferevent;
struct cxo_sub;

#define CXO_SUB_WINDOW       64                   /* RQOBJs in flight */
#define CXO_SUB_MAX_PENDING  (256u * 1024 * 1024) /* fetched, not yet in a snapshot */
#define CXO_BACKOFF_MS       1000
#define CXO_BACKOFF_MAX_MS   30000

enum cxo_change_kind {
	CXO_ADDED = 1,
	CXO_CHANGED = 2,
	CXO_REMOVED = 3,
};

struct cxo_change {
	const char *path;
	enum cxo_change_kind kind;
	const uint8_t *data; /* the new value (the old one for CXO_REMOVED) */
	size_t len;
};

/* A connected (or connecting) bufferevent to the publisher, or NULL. */
typedef struct bufferevent *cxo_dial_fn(struct event_base *base, void *arg);

struct cxo_sub_cbs {
	/* The first complete tree. */
	void (*snapshot)(struct cxo_sub *s, void *arg);
	/* Each later tree; changes and their strings live during the call. */
	void (*update)(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg);
	/* The connection failed or closed (a redial follows). */
	void (*down)(struct cxo_sub *s, const char *reason, void *arg);
};

struct cxo_sub_opts {
	const char *svc;
	uint8_t feed_pk[SW_PK_LEN];
	uint16_t feed_port;
	cxo_dial_fn *dial;
	void *dial_arg;
	int backoff_ms;     /* 0: CXO_BACKOFF_MS */
	int backoff_max_ms; /* 0: CXO_BACKOFF_MAX_MS */
	int ping_ms;        /* 0: CXO_PING_S */
	struct cxo_sub_cbs cbs;
	void *arg;
};

/* Dials at once.  Any callback may free the subscriber. */
struct cxo_sub *cxo_sub_new(struct event_base *base, const struct cxo_sub_opts *o);
void cxo_sub_free(struct cxo_sub *s);
/* Send UNSUB and close after it has gone out (then free as usual). */
void cxo_sub_unsubscribe(struct cxo_sub *s);

int cxo_sub_has_snapshot(const struct cxo_sub *s);
/* Connected and subscribed (its snapshot, if any, is live). */
int cxo_sub_connected(const struct cxo_sub *s);
/* seq of the snapshot's root (0 before the first). */
uint64_t cxo_sub_seq(const struct cxo_sub *s);
/* The leaf at path in the snapshot: 1 found, 0 not. */
int cxo_sub_get(const struct cxo_sub *s, const char *path, const uint8_t **data, size_t *len);
/*
 * Every leaf under prefix (NULL or "": all), in path order.  fn returns 0 to
 * go on, non-zero to stop.  Returns the number of leaves visited.
 */
typedef int cxo_leaf_fn(const char *path, const uint8_t *data, size_t len, void *arg);
size_t cxo_sub_walk(const struct cxo_sub *s, const char *prefix, cxo_leaf_fn *fn, void *arg);

struct cxo_sub_stats {
	uint64_t connects;
	uint64_t closes;
	uint64_t roots;     /* verified */
	uint64_t rqobj;     /* RQOBJs sent */
	uint64_t objs;      /* OBJs received */
	uint64_t obj_bytes;
	uint64_t snapshots; /* complete trees, the first included */
	size_t objects;     /* held */
	char last_error[128];
};
void cxo_sub_stats(const struct cxo_sub *s, struct cxo_sub_stats *st);

/* A cxo_dial_fn for TCP: arg is "ip:port" (kept by the caller). */
struct bufferevent *cxo_tcp_dial(struct event_base *base, void *arg);

#endif
