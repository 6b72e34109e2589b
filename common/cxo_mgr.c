/*
 * cxo_mgr: subscription manager, HTTP fallback and cycle read.
 *
 * Each open subscription has its own idle timer, re-armed by every query,
 * so closing idle feeds costs nothing while they are used.  A query is
 * always answered from the loop, never inside cxo_mgr_query, whichever
 * source answers, so callers see one behaviour.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "cxo_mgr.h"
#include "cxo_sub.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"

struct msub {
	struct cxo_mgr *m;
	struct msub *next;
	uint8_t pk[SW_PK_LEN];
	uint16_t port;
	struct cxo_sub *s;
	struct event *idle;
};

struct mquery {
	struct cxo_mgr *m;
	struct mquery *prev, *next;
	struct msub *ms;
	char *prefix;
	char *url;
	cxo_answer_fn *cb;
	void *arg;
	struct event *ev;
	int http_pending;
};

struct cxo_mgr {
	struct event_base *base;
	struct cxo_mgr_opts o;
	struct msub *subs;
	size_t nsubs;
	struct mquery *queries;
	struct sw_http_client *http;
};

static struct bufferevent *
msub_dial(struct event_base *base, void *arg)
{
	struct msub *ms = arg;

	return ms->m->o.dial(base, ms->pk, ms->port, ms->m->o.dial_arg);
}

static void
msub_free(struct msub *ms)
{
	struct cxo_mgr *m = ms->m;
	struct msub **pp;

	for (pp = &m->subs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ms) {
			*pp = ms->next;
			break;
		}
	}
	for (struct mquery *q = m->queries; q != NULL; q = q->next)
		if (q->ms == ms)
			q->ms = NULL;
	m->nsubs--;
	cxo_sub_free(ms->s);
	event_free(ms->idle);
	free(ms);
}

static void
msub_idle(evutil_socket_t fd, short what, void *arg)
{
	struct msub *ms = arg;
	char hex[SW_PK_HEX];

	(void)fd;
	(void)what;
	sw_hex_encode(hex, ms->pk, SW_PK_LEN);
	sw_log_debug(ms->m->o.svc, "cxo subscription idle, closing", "pk=%s port=%u", hex,
	    (unsigned)ms->port);
	msub_free(ms);
}

static void
msub_snapshot(struct cxo_sub *s, void *arg)
{
	struct msub *ms = arg;

	(void)s;
	if (ms->m->o.snapshot != NULL)
		ms->m->o.snapshot(ms->pk, ms->port, ms->m->o.snapshot_arg);
}

static struct msub *
msub_get(struct cxo_mgr *m, const uint8_t *pk, uint16_t port)
{
	struct msub *ms;
	struct cxo_sub_opts so;

	for (ms = m->subs; ms != NULL; ms = ms->next)
		if (ms->port == port && memcmp(ms->pk, pk, SW_PK_LEN) == 0)
			goto touch;
	ms = calloc(1, sizeof(*ms));
	if (ms == NULL)
		return NULL;
	ms->m = m;
	memcpy(ms->pk, pk, SW_PK_LEN);
	ms->port = port;
	ms->idle = evtimer_new(m->base, msub_idle, ms);
	memset(&so, 0, sizeof(so));
	so.svc = m->o.svc;
	memcpy(so.feed_pk, pk, SW_PK_LEN);
	so.feed_port = port;
	so.dial = msub_dial;
	so.dial_arg = ms;
	so.backoff_ms = m->o.backoff_ms;
	so.cbs.snapshot = msub_snapshot;
	so.arg = ms;
	if (ms->idle == NULL || (ms->s = cxo_sub_new(m->base, &so)) == NULL) {
		if (ms->idle != NULL)
			event_free(ms->idle);
		free(ms);
		return NULL;
	}
	ms->next = m->subs;
	m->subs = ms;
	m->nsubs++;
touch:
	sw_timer_in(ms->idle, (long long)m->o.idle_close_s * 1000);
	return ms;
}

struct cxo_mgr *
cxo_mgr_new(struct event_base *base, const struct cxo_mgr_opts *o)
{
	struct cxo_mgr *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->base = base;
	m->o = *o;
	if (m->o.idle_close_s <= 0)
		m->o.idle_close_s = CXO_IDLE_CLOSE_S;
	if (m->o.http_timeout_ms <= 0)
		m->o.http_timeout_ms = 5000;
	m->http = sw_http_client_new(base, o->svc);
	if (m->http == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

static void
query_free(struct mquery *q)
{
	struct cxo_mgr *m = q->m;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		m->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	if (q->ev != NULL)
		event_free(q->ev);
	free(q->prefix);
	free(q->url);
	free(q);
}

static void
answer_none(struct mquery *q)
{
	struct cxo_answer a = {0};

	a.source = CXO_SRC_NONE;
	q->cb(&a, q->arg);
	query_free(q);
}

void
cxo_mgr_free(struct cxo_mgr *m)
{
	if (m == NULL)
		return;
	/* The HTTP client answers its requests (status 0) as it goes. */
	sw_http_client_free(m->http);
	m->http = NULL;
	while (m->queries != NULL)
		answer_none(m->queries);
	while (m->subs != NULL)
		msub_free(m->subs);
	free(m);
}

struct collect {
	struct cxo_leaf *v;
	size_t n, cap;
	char *arena;
	size_t used, acap;
	size_t *off;
	int oom;
};

static int
collect_leaf(const char *path, const uint8_t *data, size_t len, void *arg)
{
	struct collect *c = arg;
	size_t pl = strlen(path) + 1;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct cxo_leaf *v = realloc(c->v, cap * sizeof(*v));
		size_t *off = realloc(c->off, cap * sizeof(*off));

		if (v != NULL)
			c->v = v;
		if (off != NULL)
			c->off = off;
		if (v == NULL || off == NULL)
			goto oom;
		c->cap = cap;
	}
	if (c->used + pl > c->acap) {
		size_t acap = c->acap ? 2 * c->acap : 4096;
		char *a;

		while (acap < c->used + pl)
			acap *= 2;
		a = realloc(c->arena, acap);
		if (a == NULL)
			goto oom;
		c->arena = a;
		c->acap = acap;
	}
	memcpy(c->arena + c->used, path, pl);
	c->off[c->n] = c->used;
	c->used += pl;
	c->v[c->n].data = data;
	c->v[c->n].len = len;
	c->n++;
	return 0;
oom:
	c->oom = 1;
	return 1;
}

static void
answer_feed(struct mquery *q, struct cxo_sub *s, int stale)
{
	struct cxo_answer a = {0};
	struct collect c = {0};

	cxo_sub_walk(s, q->prefix, collect_leaf, &c);
	for (size_t i = 0; i < c.n; i++)
		c.v[i].path = c.arena + c.off[i];
	a.source = c.oom ? CXO_SRC_NONE : CXO_SRC_FEED;
	a.stale = stale;
	a.seq = cxo_sub_seq(s);
	a.leaves = c.v;
	a.nleaves = c.n;
	q->cb(&a, q->arg);
	free(c.v);
	free(c.off);
	free(c.arena);
	query_free(q);
}

static void
http_done(const struct sw_http_resp *r, void *arg)
{
	struct mquery *q = arg;
	struct cxo_answer a = {0};

	q->http_pending = 0;
	if (r->status == 0 && q->ms != NULL && cxo_sub_has_snapshot(q->ms->s)) {
		/* Neither is live: the last verified snapshot beats nothing. */
		answer_feed(q, q->ms->s, 1);
		return;
	}
	a.source = r->status != 0 ? CXO_SRC_HTTP : CXO_SRC_NONE;
	a.http_status = r->status;
	a.body = r->body;
	a.body_len = r->len;
	a.json = r->json;
	q->cb(&a, q->arg);
	query_free(q);
}

static void
query_run(evutil_socket_t fd, short what, void *arg)
{
	struct mquery *q = arg;
	struct sw_http_opts ho = {0};

	(void)fd;
	(void)what;
	if (q->ms != NULL && cxo_sub_has_snapshot(q->ms->s) && cxo_sub_connected(q->ms->s)) {
		answer_feed(q, q->ms->s, 0);
		return;
	}
	if (q->url == NULL) {
		if (q->ms != NULL && cxo_sub_has_snapshot(q->ms->s))
			answer_feed(q, q->ms->s, 1);
		else
			answer_none(q);
		return;
	}
	ho.timeout_ms = q->m->o.http_timeout_ms;
	q->http_pending = 1;
	if (sw_http_request(q->m->http, "GET", q->url, NULL, 0, &ho, http_done, q) == -1) {
		q->http_pending = 0;
		answer_none(q);
	}
}

int
cxo_mgr_query(struct cxo_mgr *m, const struct cxo_query *cq, cxo_answer_fn *cb, void *arg)
{
	struct mquery *q = calloc(1, sizeof(*q));
	struct timeval now = {0, 0};

	if (q == NULL)
		return -1;
	q->m = m;
	q->cb = cb;
	q->arg = arg;
	q->ms = msub_get(m, cq->pk, cq->port);
	q->prefix = cq->prefix != NULL ? strdup(cq->prefix) : NULL;
	q->url = cq->http_url != NULL ? strdup(cq->http_url) : NULL;
	q->ev = evtimer_new(m->base, query_run, q);
	if (q->ev == NULL || (cq->prefix != NULL && q->prefix == NULL) ||
	    (cq->http_url != NULL && q->url == NULL)) {
		if (q->ev != NULL)
			event_free(q->ev);
		free(q->prefix);
		free(q->url);
		free(q);
		return -1;
	}
	q->next = m->queries;
	if (m->queries != NULL)
		m->queries->prev = q;
	m->queries = q;
	evtimer_add(q->ev, &now);
	return 0;
}

size_t
cxo_mgr_subs(const struct cxo_mgr *m)
{
	return m->nsubs;
}

struct cxo_sub *
cxo_mgr_sub(const struct cxo_mgr *m, const uint8_t *pk, uint16_t port)
{
	for (struct msub *ms = m->subs; ms != NULL; ms = ms->next)
		if (ms->port == port && memcmp(ms->pk, pk, SW_PK_LEN) == 0)
			return ms->s;
	return NULL;
}

/* Cycle read */

struct cycle {
	struct cxo_sub *s;
	struct event *timeout;
	cxo_cycle_fn *cb;
	void *arg;
	int started;
	char early[128]; /* a failure inside cxo_sub_new, answered from the loop */
};

static void
cycle_end(struct cycle *cy, struct cxo_sub *s, const char *err)
{
	cy->cb(s, err, cy->arg);
	cxo_sub_unsubscribe(cy->s);
	cxo_sub_free(cy->s);
	event_free(cy->timeout);
	free(cy);
}

static void
cycle_snapshot(struct cxo_sub *s, void *arg)
{
	cycle_end(arg, s, NULL);
}

static void
cycle_down(struct cxo_sub *s, const char *reason, void *arg)
{
	struct cycle *cy = arg;

	(void)s;
	if (!cy->started) {
		snprintf(cy->early, sizeof(cy->early), "%s", reason);
		return;
	}
	cycle_end(cy, NULL, reason);
}

static void
cycle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cycle *cy = arg;

	(void)fd;
	(void)what;
	cycle_end(cy, NULL, cy->early[0] != '\0' ? cy->early : "timeout");
}

int
cxo_cycle_read(struct event_base *base, const struct cxo_sub_opts *o, int timeout_ms,
    cxo_cycle_fn *cb, void *arg)
{
	struct cycle *cy = calloc(1, sizeof(*cy));
	struct cxo_sub_opts so = *o;

	if (cy == NULL)
		return -1;
	cy->cb = cb;
	cy->arg = arg;
	cy->timeout = evtimer_new(base, cycle_timeout, cy);
	if (cy->timeout == NULL) {
		free(cy);
		return -1;
	}
	so.cbs.snapshot = cycle_snapshot;
	so.cbs.update = NULL;
	so.cbs.down = cycle_down;
	so.arg = cy;
	cy->s = cxo_sub_new(base, &so);
	if (cy->s == NULL) {
		event_free(cy->timeout);
		free(cy);
		return -1;
	}
	cy->started = 1;
	/* An early answer (already failed) is given from the loop, at once. */
	sw_timer_in(cy->timeout, cy->early[0] != '\0' ? 0 : timeout_ms);
	return 0;
}

struct sw_http_client *
cxo_mgr_http(struct cxo_mgr *m)
{
	return m->http;
}
