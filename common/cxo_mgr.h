/*
 * cxo_mgr: the subscriber patterns of cxo.md.
 *
 * - Subscription manager: the first query of a feed opens a subscription;
 *   each query keeps it; idle_close_s (default 120) without a query closes
 *   it.
 * - HTTP fallback: a query the feed cannot answer yet (no first snapshot,
 *   or the publisher is unreachable) is answered from an HTTP URL instead;
 *   the answer says which source it came from.
 * - Cycle read: subscribe, wait for the first snapshot, unsubscribe.
 */
#ifndef CXO_MGR_H
#define CXO_MGR_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "cxo_sub.h"

struct event_base;
struct bufferevent;
struct cxo_mgr;

#define CXO_IDLE_CLOSE_S 120

/* Dial the publisher of (pk, port): a connected/connecting bufferevent or NULL. */
typedef struct bufferevent *cxo_mgr_dial_fn(struct event_base *base, const uint8_t *pk,
    uint16_t port, void *arg);

struct cxo_mgr_opts {
	const char *svc;
	int idle_close_s;     /* 0: CXO_IDLE_CLOSE_S */
	cxo_mgr_dial_fn *dial;
	void *dial_arg;
	int backoff_ms;       /* for its subscriptions (0: default) */
	int http_timeout_ms;  /* 0: 5000 */
	/*
	 * NULL, or told when a subscription has its first snapshot: from then
	 * on a query is answered from the feed, so a caller that polls need
	 * not wait for its next poll.  It may query from inside the call.
	 */
	void (*snapshot)(const uint8_t *pk, uint16_t port, void *arg);
	void *snapshot_arg;
};

enum cxo_source {
	CXO_SRC_NONE = 0, /* neither answered */
	CXO_SRC_FEED,
	CXO_SRC_HTTP,
};

struct cxo_leaf {
	const char *path;
	const uint8_t *data;
	size_t len;
};

struct cxo_answer {
	enum cxo_source source;
	int stale;                     /* FEED: publisher unreachable, last snapshot used */
	uint64_t seq;                  /* FEED: the snapshot's root seq */
	const struct cxo_leaf *leaves; /* FEED: the leaves under the prefix, in path order */
	size_t nleaves;
	int http_status;               /* HTTP */
	const char *body;
	size_t body_len;
	const cJSON *json;             /* HTTP: the parsed body, or NULL */
};
/* Everything in the answer lives during the call only. */
typedef void cxo_answer_fn(const struct cxo_answer *a, void *arg);

struct cxo_query {
	const uint8_t *pk;
	uint16_t port;
	const char *prefix;   /* leaves under this path (NULL: the whole tree) */
	const char *http_url; /* the fallback (NULL: none) */
};

struct cxo_mgr *cxo_mgr_new(struct event_base *base, const struct cxo_mgr_opts *o);
/* Pending queries are answered with CXO_SRC_NONE from inside the free. */
void cxo_mgr_free(struct cxo_mgr *m);
/* cb runs once, later, from the loop.  -1 (no callback) out of memory. */
int cxo_mgr_query(struct cxo_mgr *m, const struct cxo_query *q, cxo_answer_fn *cb, void *arg);
/* The HTTP client of the fallback (to give it a carrier, http_dmsg.h). */
struct sw_http_client *cxo_mgr_http(struct cxo_mgr *m);
/* Open subscriptions. */
size_t cxo_mgr_subs(const struct cxo_mgr *m);
/* The subscription of a feed, if open (for stats in tests). */
struct cxo_sub *cxo_mgr_sub(const struct cxo_mgr *m, const uint8_t *pk, uint16_t port);

/*
 * Cycle read.  cb gets the subscriber holding the first snapshot (read it
 * with cxo_sub_get/cxo_sub_walk during the call), or NULL and a reason when
 * the publisher cannot be reached, the connection fails before the
 * snapshot, or timeout_ms passes.  The subscription is then unsubscribed
 * and freed.  o's callbacks are not used.  -1 (no callback) on failure to
 * start.
 */
typedef void cxo_cycle_fn(struct cxo_sub *s, const char *err, void *arg);
int cxo_cycle_read(struct event_base *base, const struct cxo_sub_opts *o, int timeout_ms,
    cxo_cycle_fn *cb, void *arg);

#endif
