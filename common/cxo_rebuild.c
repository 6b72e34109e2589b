/*
 * cxo_rebuild: a CXO feed refilled from store indexes (cxo_rebuild.h).  One
 * index at a time: its members, copied (the reply dies with its callback
 * and the names must outlive the MGET), then their records.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cxo_pub.h"
#include "cxo_rebuild.h"
#include "log.h"
#include "store_index.h"

#define PATH_MAX_LEN 256

struct cxo_rebuild {
	struct sw_svc *svc;
	struct cxo_feed *feed;
	const struct cxo_rebuild_ops *ops;
	void *ctx;
	struct event *ev;
	long long period_ms;
	int running;
	sw_svc_stopped *stopped; /* stop waiting for a rebuild's read */
	size_t index;            /* the one being read */
	char **members;          /* its members, one block with their text */
	size_t n;
};

static void next_index(struct cxo_rebuild *rb);

static void
rebuild_end(struct cxo_rebuild *rb, int ok)
{
	sw_svc_stopped *done = rb->stopped;

	rb->running = 0;
	if (!ok)
		sw_log_warn(sw_svc_name(rb->svc), "feed rebuild failed; keeping what it has", NULL);
	cxo_feed_hold(rb->feed, 0);
	if (done != NULL) {
		rb->stopped = NULL;
		sw_svc_drain(rb->svc, done);
		return;
	}
	if (rb->ev != NULL) {
		struct timeval tv = {(time_t)(rb->period_ms / 1000),
		    (suseconds_t)(rb->period_ms % 1000) * 1000};

		event_add(rb->ev, &tv);
	}
}

static void
records_done(const struct sw_reply *r, void *arg)
{
	struct cxo_rebuild *rb = arg;
	char path[PATH_MAX_LEN];

	if (r->type != SW_REPLY_ARRAY || r->elements != rb->n) {
		rebuild_end(rb, 0);
		return;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const struct sw_reply *e = r->element[i];

		if (e->type != SW_REPLY_STR)
			continue; /* expired or deleted since the index read */
		rb->ops->path(rb->ctx, rb->index, rb->members[i], path, sizeof(path));
		cxo_feed_put(rb->feed, path, e->str, e->len);
	}
	rb->index++;
	next_index(rb);
}

/* Copy the members of m into rb->members: one block, pointers then text. */
static int
keep_members(struct cxo_rebuild *rb, const struct sw_reply *m)
{
	size_t n = m->elements, text = 0;
	char *p;

	for (size_t i = 0; i < n; i++)
		text += m->element[i]->len + 1;
	rb->members = malloc(n * sizeof(*rb->members) + text);
	if (rb->members == NULL)
		return -1;
	p = (char *)(rb->members + n);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, m->element[i]->str, m->element[i]->len);
		p[m->element[i]->len] = '\0';
		rb->members[i] = p;
		p += m->element[i]->len + 1;
	}
	rb->n = n;
	return 0;
}

static void
index_done(const struct sw_reply *r, void *arg)
{
	struct cxo_rebuild *rb = arg;
	const struct sw_reply *m = sw_store_index_members(r, 0);

	free(rb->members);
	rb->members = NULL;
	rb->n = 0;
	if (m == NULL) {
		rebuild_end(rb, 0);
		return;
	}
	if (m->elements == 0) {
		rb->index++;
		next_index(rb);
		return;
	}
	if (keep_members(rb, m) == -1 ||
	    rb->ops->mget(rb->ctx, rb->index, (const char *const *)rb->members, rb->n,
	    records_done, rb) == -1)
		rebuild_end(rb, 0);
}

static void
next_index(struct cxo_rebuild *rb)
{
	if (rb->index == rb->ops->nindexes) {
		rebuild_end(rb, 1);
		return;
	}
	if (rb->ops->index(rb->ctx, rb->index, index_done, rb) == -1)
		rebuild_end(rb, 0);
}

static void
rebuild_fire(evutil_socket_t fd, short what, void *arg)
{
	struct cxo_rebuild *rb = arg;

	(void)fd;
	(void)what;
	if (rb->running || rb->stopped != NULL)
		return;
	rb->running = 1;
	rb->index = 0;
	cxo_feed_hold(rb->feed, 1);
	cxo_feed_clear(rb->feed);
	next_index(rb);
}

struct cxo_rebuild *
cxo_rebuild_new(struct sw_svc *svc, struct cxo_feed *feed, long long period_s,
    const struct cxo_rebuild_ops *ops, void *ctx)
{
	struct cxo_rebuild *rb = calloc(1, sizeof(*rb));

	if (rb == NULL)
		return NULL;
	rb->svc = svc;
	rb->feed = feed;
	rb->period_ms = period_s * 1000;
	rb->ops = ops;
	rb->ctx = ctx;
	rb->ev = event_new(sw_svc_base(svc), -1, 0, rebuild_fire, rb);
	if (rb->ev == NULL) {
		free(rb);
		return NULL;
	}
	return rb;
}

void
cxo_rebuild_start(struct cxo_rebuild *rb)
{
	rebuild_fire(-1, 0, rb);
}

void
cxo_rebuild_follow(struct cxo_rebuild *rb, long long period_ms)
{
	if (period_ms > 0 && period_ms < rb->period_ms)
		rb->period_ms = period_ms;
}

void
cxo_rebuild_stop(struct cxo_rebuild *rb, sw_svc_stopped *done)
{
	event_del(rb->ev);
	if (rb->running) {
		rb->stopped = done; /* drained once the rebuild's read is answered */
		return;
	}
	sw_svc_drain(rb->svc, done);
}

void
cxo_rebuild_free(struct cxo_rebuild *rb)
{
	if (rb == NULL)
		return;
	event_free(rb->ev);
	free(rb->members);
	free(rb);
}
