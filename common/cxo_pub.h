/*
 * cxo_pub: the publishing side of CXO (cxo.md).  A cxo_pub serves
 * connections (from its TCP listener, or any connected bufferevent handed
 * to cxo_pub_attach); each cxo_feed on it is one (feed key, port) with its
 * own tree.  put/delete/prune change the tree; changes are coalesced into
 * at most one ROOT per publish_interval_ms, pushed to every subscriber.
 * A feed keeps the objects of its current and previous root; older ones
 * are freed as each new root is published.
 */
#ifndef CXO_PUB_H
#define CXO_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct event_base;
struct bufferevent;
struct cxo_pub;
struct cxo_feed;

#define CXO_PUBLISH_INTERVAL_MS 100
#define CXO_PUB_MAX_CONNS       1024
#define CXO_MAX_SUBS_PER_CONN   16

/* svc names the owner in logs. */
struct cxo_pub *cxo_pub_new(struct event_base *base, const char *svc);
/* Frees its feeds too. */
void cxo_pub_free(struct cxo_pub *p);
/* Listen on TCP "ip:port" (port 0: any; see cxo_pub_port).  -1 logged. */
int cxo_pub_listen(struct cxo_pub *p, const char *addr);
int cxo_pub_port(const struct cxo_pub *p);
/* Serve a connected bufferevent (owned from here on, also on failure). */
int cxo_pub_attach(struct cxo_pub *p, struct bufferevent *bev);
size_t cxo_pub_conns(const struct cxo_pub *p);

struct cxo_feed_opts {
	const struct sw_keypair *kp; /* copied */
	uint16_t port;
	int publish_interval_ms;     /* 0: CXO_PUBLISH_INTERVAL_MS */
	/*
	 * Persistence of seq: the last seq published before (0: none); the
	 * first root gets max(last_seq + 1, now in ms).  saved(seq) is called
	 * after each publication, for the owner to store it.
	 */
	uint64_t last_seq;
	void (*saved)(uint64_t seq, void *arg);
	void *arg;
	/*
	 * Sequencing by the owner, for replicas that share a store and must
	 * agree on seq (cxo_follow): when set, a commit whose tree changed is
	 * held, not signed, and sequence(f, floor, arg) asks the owner for its
	 * seq.  The owner answers later, from the loop, with
	 * cxo_feed_publish_seq or cxo_feed_adopt (it may answer inside the
	 * call).  floor is the least seq this publication may have.  Nothing
	 * more is committed until then; changes accumulate.
	 */
	void (*sequence)(struct cxo_feed *f, uint64_t floor, void *arg);
	/* Publish nothing until cxo_feed_hold(f, 0) (for a rebuild at start). */
	int hold;
};

/* NULL if (pk, port) is already served by p, or out of memory. */
struct cxo_feed *cxo_feed_new(struct cxo_pub *p, const struct cxo_feed_opts *o);
void cxo_feed_free(struct cxo_feed *f);
/* Tree changes (cxo_tree.h for the rules); publication follows. */
int cxo_feed_put(struct cxo_feed *f, const char *path, const void *data, size_t len);
int cxo_feed_delete(struct cxo_feed *f, const char *path);
int cxo_feed_prune(struct cxo_feed *f, const char *prefix);
void cxo_feed_clear(struct cxo_feed *f);
/* Stop / resume publishing (changes keep accumulating meanwhile). */
void cxo_feed_hold(struct cxo_feed *f, int on);
/* Raise the persisted last seq (before the first publication). */
void cxo_feed_set_last_seq(struct cxo_feed *f, uint64_t last_seq);
/*
 * Publish now if anything changed: 1 published (with a sequencer: its seq
 * asked for), 0 nothing new or a seq still awaited, -1 failed.
 */
int cxo_feed_publish(struct cxo_feed *f);
/*
 * The answer to sequence(): sign the held tree with max(seq, floor) and
 * publish it.  1, or 0 when no tree waits for a seq.
 */
int cxo_feed_publish_seq(struct cxo_feed *f, uint64_t seq);
/*
 * Make root (len bytes, signed by this feed's key: another replica's) the
 * current root, pushed to every subscriber, when it names the tree this
 * feed holds (the one waiting for a seq, else the current one) and its seq
 * is above the current one.  Before the first root any seq is taken: the
 * owner vouches that it is the newest its replicas published.  This is how
 * replicas end up serving the same bytes for the same tree.  1 taken, 0
 * not this tree or not newer, -1 not a valid root of this feed.
 */
int cxo_feed_adopt(struct cxo_feed *f, const uint8_t *root, size_t len);

struct cxo_feed_stats {
	uint64_t seq;       /* of the current root, 0 before the first */
	uint64_t roots;     /* published by this process */
	uint64_t pushes;    /* ROOT messages sent */
	uint64_t objs_sent; /* OBJ answers */
	size_t objects;     /* held in memory */
	size_t bytes;
	size_t leaves;
	size_t subscribers;
};
void cxo_feed_stats(const struct cxo_feed *f, struct cxo_feed_stats *s);
/* The current root's bytes (CXO_ROOT_LEN), or NULL before the first. */
const uint8_t *cxo_feed_root(const struct cxo_feed *f);
/* An object of the current or previous root, or NULL. */
const uint8_t *cxo_feed_object(const struct cxo_feed *f, const uint8_t hash[SW_HASH_LEN],
    size_t *len);

#endif
