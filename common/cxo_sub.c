/*
 * cxo_sub: CXO subscriber.
 *
 * Fetching is a breadth-first walk from the new root's tree hash with at
 * most CXO_SUB_WINDOW requests in flight: a live object (part of the
 * snapshot) ends the walk below it, since everything under it is held; a
 * fetched but not yet live object is walked into; anything else is
 * requested.  Each walk has a generation; a request remembers the last
 * generation that wanted it, so when a newer ROOT supersedes the one being
 * fetched, answers still in flight are kept (content-addressed, they are
 * usually needed again) but only the current walk's outstanding requests
 * decide completion, and an ERR "not found" for an older walk is ignored.
 *
 * On completion the new tree is held, compared with the snapshot by
 * walking both only where hashes differ (so an update costs the changed
 * nodes, not the tree), the callback runs, and then the old snapshot is
 * released and unused fetched objects swept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backoff.h"
#include "clock.h"
#include "cxo_obj.h"
#include "cxo_store.h"
#include "cxo_sub.h"
#include "cxo_wire.h"
#include "dict.h"
#include "dmsg_wire.h"
#include "log.h"

struct slot {
	uint32_t rseq;
	int depth;
	uint64_t want_gen;
	uint8_t hash[SW_HASH_LEN];
};

struct qitem {
	uint8_t hash[SW_HASH_LEN];
	int depth;
};

struct cxo_sub {
	struct event_base *base;
	struct cxo_sub_opts o;
	struct cxo_conn *c;
	struct event *retry;
	struct sw_backoff backoff;
	long long born_ms;          /* created; the first second retries fast (below) */
	uint32_t sub_seq;
	int subscribed;
	struct cxo_store *st;
	int has_snap;
	struct cxo_root snap;
	uint8_t snap_root[CXO_ROOT_LEN];
	uint64_t last_seq;
	int fetching;
	struct cxo_root want;
	uint8_t want_root[CXO_ROOT_LEN];
	uint64_t gen;
	struct slot slots[CXO_SUB_WINDOW];
	size_t nslots;
	size_t outstanding;
	struct qitem *q;
	size_t qhead, qlen, qcap;
	struct sw_dict *seen;
	struct cxo_sub_stats stats;
	int busy;
	int freed;
};

/* A change list under construction: entries and a path arena. */
struct changes {
	struct cxo_change *v;
	size_t n, cap;
	char *arena;
	size_t used, acap;
	size_t *off;
	int oom;
};

static void sub_connect(struct cxo_sub *s);

static void
sub_destroy(struct cxo_sub *s)
{
	cxo_conn_abort(s->c);
	if (s->retry != NULL)
		event_free(s->retry);
	cxo_store_free(s->st);
	sw_dict_free(s->seen);
	free(s->q);
	free(s);
}

void
cxo_sub_free(struct cxo_sub *s)
{
	if (s == NULL)
		return;
	if (s->busy > 0) {
		s->freed = 1;
		return;
	}
	sub_destroy(s);
}

/* Leave a callback: 1 if the subscriber must no longer be touched. */
static int
sub_leave(struct cxo_sub *s)
{
	if (--s->busy == 0 && s->freed) {
		sub_destroy(s);
		return 1;
	}
	return s->freed;
}

static void
walk_reset(struct cxo_sub *s)
{
	s->qhead = s->qlen = 0;
	s->outstanding = 0;
	sw_dict_free(s->seen);
	s->seen = sw_dict_new(NULL);
}

static void
violation(struct cxo_sub *s, const char *why)
{
	char q[96];

	snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%s", why);
	sw_log_warn(s->o.svc, "cxo feed misbehaves, closing", "peer=%s reason=%s",
	    cxo_conn_peer(s->c), sw_log_q(q, sizeof(q), why));
	cxo_conn_fail(s->c, why);
}

static int
q_push(struct cxo_sub *s, const uint8_t *hash, int depth)
{
	if (depth > CXO_MAX_DEPTH) {
		violation(s, "tree deeper than allowed");
		return -1;
	}
	if (s->qlen == s->qcap) {
		size_t cap = s->qcap ? 2 * s->qcap : 64;
		struct qitem *q;

		if (s->qhead > 0) { /* reuse the consumed front first */
			memmove(s->q, s->q + s->qhead, (s->qlen - s->qhead) * sizeof(*s->q));
			s->qlen -= s->qhead;
			s->qhead = 0;
		}
		if (s->qlen == s->qcap) {
			q = realloc(s->q, cap * sizeof(*q));
			if (q == NULL) {
				violation(s, "out of memory");
				return -1;
			}
			s->q = q;
			s->qcap = cap;
		}
	}
	memcpy(s->q[s->qlen].hash, hash, SW_HASH_LEN);
	s->q[s->qlen++].depth = depth;
	return 0;
}

static int
push_children(struct cxo_sub *s, const uint8_t *obj, size_t len, int depth)
{
	struct cxo_obj_iter it;
	struct cxo_entry e;

	cxo_obj_iter_init(&it, obj, len);
	while (cxo_obj_iter_next(&it, &e))
		if (e.kind == CXO_KIND_TREE && q_push(s, e.hash, depth + 1) == -1)
			return -1;
	return 0;
}

static struct slot *
slot_by_hash(struct cxo_sub *s, const uint8_t *hash)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (memcmp(s->slots[i].hash, hash, SW_HASH_LEN) == 0)
			return &s->slots[i];
	return NULL;
}

static struct slot *
slot_by_rseq(struct cxo_sub *s, uint32_t rseq)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].rseq == rseq)
			return &s->slots[i];
	return NULL;
}

/* Changes */

static int
ch_add(struct changes *ch, const char *path, size_t plen, enum cxo_change_kind kind,
    const uint8_t *data, size_t len)
{
	if (ch->oom)
		return -1;
	if (ch->n == ch->cap) {
		size_t cap = ch->cap ? 2 * ch->cap : 16;
		struct cxo_change *v = realloc(ch->v, cap * sizeof(*v));
		size_t *off = realloc(ch->off, cap * sizeof(*off));

		if (v != NULL)
			ch->v = v;
		if (off != NULL)
			ch->off = off;
		if (v == NULL || off == NULL)
			goto oom;
		ch->cap = cap;
	}
	if (ch->used + plen + 1 > ch->acap) {
		size_t acap = ch->acap ? 2 * ch->acap : 1024;
		char *a;

		while (acap < ch->used + plen + 1)
			acap *= 2;
		a = realloc(ch->arena, acap);
		if (a == NULL)
			goto oom;
		ch->arena = a;
		ch->acap = acap;
	}
	memcpy(ch->arena + ch->used, path, plen);
	ch->arena[ch->used + plen] = '\0';
	ch->off[ch->n] = ch->used;
	ch->used += plen + 1;
	ch->v[ch->n].kind = kind;
	ch->v[ch->n].data = data;
	ch->v[ch->n].len = len;
	ch->n++;
	return 0;
oom:
	ch->oom = 1;
	return -1;
}

/* path[0..plen) + "/" + name, in path (CXO_MAX_PATH + 1); new length. */
static size_t
path_push(char *path, size_t plen, const struct cxo_entry *e)
{
	if (plen > 0)
		path[plen++] = '/';
	memcpy(path + plen, e->name, e->name_len);
	return plen + e->name_len;
}

static void diff_obj(struct cxo_sub *s, struct changes *ch, const uint8_t *oh, const uint8_t *nh,
    char *path, size_t plen);

/* Every leaf of one side (the other side has nothing there). */
static void
diff_entry_one(struct cxo_sub *s, struct changes *ch, const struct cxo_entry *e, int added,
    char *path, size_t plen)
{
	size_t l = path_push(path, plen, e);

	if (e->kind == CXO_KIND_LEAF)
		ch_add(ch, path, l, added ? CXO_ADDED : CXO_REMOVED, e->leaf, e->leaf_len);
	else
		diff_obj(s, ch, added ? NULL : e->hash, added ? e->hash : NULL, path, l);
}

static void
diff_obj(struct cxo_sub *s, struct changes *ch, const uint8_t *oh, const uint8_t *nh, char *path,
    size_t plen)
{
	const uint8_t *ob = NULL, *nb = NULL;
	size_t olen = 0, nlen = 0;
	struct cxo_obj_iter oi, ni;
	struct cxo_entry oe, ne;
	int ho, hn;

	if (oh != NULL && (ob = cxo_store_get(s->st, oh, &olen)) == NULL)
		return;
	if (nh != NULL && (nb = cxo_store_get(s->st, nh, &nlen)) == NULL)
		return;
	if (ob != NULL)
		cxo_obj_iter_init(&oi, ob, olen);
	if (nb != NULL)
		cxo_obj_iter_init(&ni, nb, nlen);
	ho = ob != NULL && cxo_obj_iter_next(&oi, &oe);
	hn = nb != NULL && cxo_obj_iter_next(&ni, &ne);
	while (ho || hn) {
		int c = !ho ? 1 : !hn ? -1 : cxo_name_cmp(oe.name, oe.name_len, ne.name,
		    ne.name_len);

		if (c < 0) {
			diff_entry_one(s, ch, &oe, 0, path, plen);
			ho = cxo_obj_iter_next(&oi, &oe);
			continue;
		}
		if (c > 0) {
			diff_entry_one(s, ch, &ne, 1, path, plen);
			hn = cxo_obj_iter_next(&ni, &ne);
			continue;
		}
		if (oe.kind != ne.kind) {
			diff_entry_one(s, ch, &oe, 0, path, plen);
			diff_entry_one(s, ch, &ne, 1, path, plen);
		} else if (oe.kind == CXO_KIND_LEAF) {
			if (oe.leaf_len != ne.leaf_len || memcmp(oe.leaf, ne.leaf, oe.leaf_len) != 0)
				ch_add(ch, path, path_push(path, plen, &ne), CXO_CHANGED, ne.leaf,
				    ne.leaf_len);
		} else if (memcmp(oe.hash, ne.hash, SW_HASH_LEN) != 0) {
			diff_obj(s, ch, oe.hash, ne.hash, path, path_push(path, plen, &ne));
		}
		ho = cxo_obj_iter_next(&oi, &oe);
		hn = cxo_obj_iter_next(&ni, &ne);
	}
}

static void
changes_free(struct changes *ch)
{
	free(ch->v);
	free(ch->off);
	free(ch->arena);
}

/* The walk is done: the new tree is complete. */
static void
complete(struct cxo_sub *s)
{
	struct changes ch = {0};
	uint8_t old[SW_HASH_LEN];
	int had = s->has_snap, same = 0;
	char *path = NULL;

	s->fetching = 0;
	cxo_store_hold(s->st, s->want.tree);
	if (had) {
		memcpy(old, s->snap.tree, SW_HASH_LEN);
		same = memcmp(old, s->want.tree, SW_HASH_LEN) == 0; /* a newer root, same tree */
		if (!same) {
			path = malloc(CXO_MAX_PATH + 1);
			if (path != NULL)
				diff_obj(s, &ch, old, s->want.tree, path, 0);
		}
	}
	s->snap = s->want;
	memcpy(s->snap_root, s->want_root, CXO_ROOT_LEN);
	s->has_snap = 1;
	s->stats.snapshots++;
	walk_reset(s);
	for (size_t i = 0; i < ch.n; i++)
		ch.v[i].path = ch.arena + ch.off[i];
	if (ch.oom || (had && !same && path == NULL))
		sw_log_error(s->o.svc, "cxo update list incomplete: out of memory", NULL);
	sw_log_debug(s->o.svc, "cxo tree complete", "seq=%llu changes=%zu",
	    (unsigned long long)s->snap.seq, ch.n);
	s->busy++;
	if (!had && s->o.cbs.snapshot != NULL)
		s->o.cbs.snapshot(s, s->o.arg);
	else if (had && ch.n > 0 && s->o.cbs.update != NULL)
		s->o.cbs.update(s, ch.v, ch.n, s->o.arg);
	s->busy--;
	changes_free(&ch);
	free(path);
	if (s->freed)
		return;
	if (had)
		cxo_store_release(s->st, old);
	cxo_store_sweep(s->st);
}

/* Advance the walk; complete() when nothing is missing. */
static void
pump(struct cxo_sub *s)
{
	while (s->fetching && s->qhead < s->qlen) {
		struct qitem it = s->q[s->qhead];
		const uint8_t *obj;
		struct slot *sl;
		size_t len;
		uint8_t h[SW_HASH_LEN];

		if (sw_dict_find(s->seen, it.hash, SW_HASH_LEN, NULL) ||
		    cxo_store_live(s->st, it.hash)) {
			s->qhead++;
			continue;
		}
		obj = cxo_store_get(s->st, it.hash, &len);
		sl = obj == NULL ? slot_by_hash(s, it.hash) : NULL;
		if (obj == NULL && sl == NULL && s->nslots == CXO_SUB_WINDOW)
			break;
		if (sw_dict_set(s->seen, it.hash, SW_HASH_LEN, NULL) == -1) {
			violation(s, "out of memory");
			return;
		}
		s->qhead++;
		if (obj != NULL) {
			if (push_children(s, obj, len, it.depth) == -1)
				return;
			continue;
		}
		if (sl != NULL) {
			if (sl->want_gen != s->gen) {
				sl->want_gen = s->gen;
				s->outstanding++;
			}
			sl->depth = it.depth;
			continue;
		}
		memcpy(h, it.hash, SW_HASH_LEN);
		sl = &s->slots[s->nslots];
		sl->rseq = cxo_conn_send(s->c, CXO_RQOBJ, 0, h, SW_HASH_LEN);
		if (sl->rseq == 0)
			return;
		memcpy(sl->hash, h, SW_HASH_LEN);
		sl->depth = it.depth;
		sl->want_gen = s->gen;
		s->nslots++;
		s->outstanding++;
		s->stats.rqobj++;
	}
	if (s->fetching && s->qhead == s->qlen && s->outstanding == 0)
		complete(s);
}

static int
on_root(struct cxo_sub *s, const uint8_t *b, size_t len)
{
	struct cxo_root r;

	if (cxo_root_decode(b, len, &r) == -1) {
		violation(s, "malformed root");
		return -1;
	}
	if (memcmp(r.feed_pk, s->o.feed_pk, SW_PK_LEN) != 0 || r.feed_port != s->o.feed_port) {
		violation(s, "root of another feed");
		return -1;
	}
	if (cxo_root_verify(b, len, &r) == -1) {
		violation(s, "bad root signature");
		return -1;
	}
	/* The root we hold (or are fetching) again, e.g. after a reconnect. */
	if ((s->has_snap && memcmp(b, s->snap_root, CXO_ROOT_LEN) == 0) ||
	    (s->fetching && memcmp(b, s->want_root, CXO_ROOT_LEN) == 0)) {
		sw_backoff_reset(&s->backoff);
		return 0;
	}
	/*
	 * seq must grow; the one exception is the root whose fetch a lost
	 * connection cut short, pushed again after the redial.
	 */
	if (r.seq < s->last_seq || (r.seq == s->last_seq &&
	    memcmp(b, s->want_root, CXO_ROOT_LEN) != 0)) {
		violation(s, "root seq did not grow");
		return -1;
	}
	s->last_seq = r.seq;
	s->stats.roots++;
	sw_backoff_reset(&s->backoff);
	s->want = r;
	memcpy(s->want_root, b, CXO_ROOT_LEN);
	s->gen++;
	s->fetching = 1;
	walk_reset(s);
	if (q_push(s, r.tree, 1) == -1)
		return -1;
	pump(s);
	return 0;
}

static int
on_obj(struct cxo_sub *s, uint32_t rseq, const uint8_t *b, size_t len)
{
	struct slot *sl = slot_by_rseq(s, rseq), got;
	uint8_t h[SW_HASH_LEN];

	if (sl == NULL) {
		violation(s, "OBJ answers no request");
		return -1;
	}
	got = *sl;
	*sl = s->slots[--s->nslots];
	sw_hash(h, b, len);
	if (memcmp(h, got.hash, SW_HASH_LEN) != 0) {
		violation(s, "object hash mismatch");
		return -1;
	}
	if (cxo_obj_check(b, len, NULL) == -1) {
		violation(s, "malformed object");
		return -1;
	}
	s->stats.objs++;
	s->stats.obj_bytes += len;
	if (cxo_store_add(s->st, h, b, len) == -1) {
		violation(s, "out of memory");
		return -1;
	}
	if (cxo_store_pending_bytes(s->st) > CXO_SUB_MAX_PENDING) {
		violation(s, "feed larger than allowed");
		return -1;
	}
	if (s->fetching && got.want_gen == s->gen) {
		s->outstanding--;
		if (push_children(s, b, len, got.depth) == -1)
			return -1;
	}
	pump(s);
	return 0;
}

static int
on_err(struct cxo_sub *s, uint32_t rseq, const uint8_t *b, size_t len)
{
	struct slot *sl = rseq != 0 ? slot_by_rseq(s, rseq) : NULL;
	char why[128];

	if (sl == NULL) {
		/* Not about an object: the publisher refuses us. */
		snprintf(why, sizeof(why), "publisher: %.*s", (int)(len > 100 ? 100 : len),
		    (const char *)b);
		violation(s, why);
		return -1;
	}
	if (sl->want_gen == s->gen && s->fetching) {
		/* Superseded (cxo.md 5): drop this root, the newer one is coming. */
		sw_log_debug(s->o.svc, "cxo root superseded while fetching", "seq=%llu",
		    (unsigned long long)s->want.seq);
		s->fetching = 0;
		walk_reset(s);
	}
	*sl = s->slots[--s->nslots];
	pump(s);
	return 0;
}

static int
on_msg(struct cxo_conn *c, uint8_t type, uint32_t seq, uint32_t rseq, const uint8_t *b,
    size_t len, void *arg)
{
	struct cxo_sub *s = arg;
	int rc = 0;

	(void)c;
	(void)seq;
	s->busy++;
	switch (type) {
	case CXO_OK:
		if (len != 0) {
			violation(s, "bad OK");
			rc = -1;
		} else if (rseq == s->sub_seq) {
			s->subscribed = 1;
		}
		break;
	case CXO_ERR:
		rc = on_err(s, rseq, b, len);
		break;
	case CXO_ROOT:
		if (rseq != 0 || !s->subscribed) {
			violation(s, "unexpected ROOT");
			rc = -1;
			break;
		}
		rc = on_root(s, b, len);
		break;
	case CXO_OBJ:
		rc = on_obj(s, rseq, b, len);
		break;
	default:
		violation(s, "unexpected message");
		rc = -1;
		break;
	}
	if (sub_leave(s))
		return -1;
	return rc;
}

static void
on_ready(struct cxo_conn *c, void *arg)
{
	struct cxo_sub *s = arg;
	uint8_t body[CXO_FEED_LEN];

	memcpy(body, s->o.feed_pk, SW_PK_LEN);
	sw_put_u16(body + SW_PK_LEN, s->o.feed_port);
	s->sub_seq = cxo_conn_send(c, CXO_SUB, 0, body, sizeof(body));
}

/*
 * In a deployment started at once the publisher is often a few ms behind
 * its subscribers (its dmsg session, its first rebuild): until the first
 * snapshot, in the first second, retry every CXO_FIRST_RETRY_MS instead of
 * waiting a whole backoff step, as the dmsg client does for its first
 * session.
 */
#define CXO_FIRST_RETRY_MS 25

static void
schedule_retry(struct cxo_sub *s)
{
	if (!s->has_snap && sw_mono_ms() - s->born_ms < 1000)
		sw_timer_in(s->retry, CXO_FIRST_RETRY_MS);
	else if (!s->has_snap) /* then backoff.h's start window */
		sw_timer_in(s->retry, sw_backoff_next_start(&s->backoff, s->born_ms));
	else
		sw_timer_in(s->retry, sw_backoff_next(&s->backoff));
}

/* The connection is gone: keep the snapshot and what was fetched, redial later. */
static void
lost(struct cxo_sub *s, const char *reason)
{
	if (s->c != NULL) {
		cxo_conn_free(s->c);
		s->c = NULL;
	}
	s->subscribed = 0;
	s->fetching = 0;
	s->nslots = 0;
	walk_reset(s);
	s->stats.closes++;
	if (s->stats.last_error[0] == '\0' || strcmp(reason, "protocol error") != 0)
		snprintf(s->stats.last_error, sizeof(s->stats.last_error), "%s", reason);
	schedule_retry(s);
	if (s->o.cbs.down != NULL)
		s->o.cbs.down(s, reason, s->o.arg);
}

static void
on_closed(struct cxo_conn *c, const char *reason, void *arg)
{
	struct cxo_sub *s = arg;
	char q[160];

	(void)c;
	sw_log_debug(s->o.svc, "cxo feed connection closed", "peer=%s reason=%s",
	    cxo_conn_peer(s->c), sw_log_q(q, sizeof(q), reason));
	s->busy++;
	lost(s, reason);
	sub_leave(s);
}

static const struct cxo_conn_cbs sub_cbs = {
	.ready = on_ready,
	.msg = on_msg,
	.closed = on_closed,
};

static void
sub_connect(struct cxo_sub *s)
{
	struct bufferevent *bev = s->o.dial(s->base, s->o.dial_arg);

	s->stats.connects++;
	if (bev == NULL) {
		lost(s, "cannot dial");
		return;
	}
	s->c = cxo_conn_new(bev, 0, s->o.svc, &sub_cbs, s);
	if (s->c == NULL) {
		bufferevent_free(bev);
		lost(s, "out of memory");
		return;
	}
	cxo_conn_set_ping(s->c, s->o.ping_ms);
}

static void
retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct cxo_sub *s = arg;

	(void)fd;
	(void)what;
	s->busy++;
	sub_connect(s);
	sub_leave(s);
}

struct cxo_sub *
cxo_sub_new(struct event_base *base, const struct cxo_sub_opts *o)
{
	struct cxo_sub *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->o = *o;
	s->born_ms = sw_mono_ms();
	if (s->o.backoff_ms <= 0)
		s->o.backoff_ms = CXO_BACKOFF_MS;
	if (s->o.backoff_max_ms <= 0)
		s->o.backoff_max_ms = CXO_BACKOFF_MAX_MS;
	if (s->o.ping_ms <= 0)
		s->o.ping_ms = CXO_PING_S * 1000;
	sw_backoff_init(&s->backoff, s->o.backoff_ms, s->o.backoff_max_ms);
	s->retry = evtimer_new(base, retry_fire, s);
	s->st = cxo_store_new();
	s->seen = sw_dict_new(NULL);
	if (s->retry == NULL || s->st == NULL || s->seen == NULL) {
		sub_destroy(s);
		return NULL;
	}
	s->busy++;
	sub_connect(s);
	s->busy--;
	return s;
}

void
cxo_sub_unsubscribe(struct cxo_sub *s)
{
	uint8_t body[CXO_FEED_LEN];

	if (s->c == NULL)
		return;
	if (cxo_conn_ready(s->c)) {
		memcpy(body, s->o.feed_pk, SW_PK_LEN);
		sw_put_u16(body + SW_PK_LEN, s->o.feed_port);
		cxo_conn_send(s->c, CXO_UNSUB, 0, body, sizeof(body));
	}
	cxo_conn_free(s->c); /* flushes the UNSUB */
	s->c = NULL;
	s->subscribed = 0;
	s->fetching = 0;
	s->nslots = 0;
}

int
cxo_sub_has_snapshot(const struct cxo_sub *s)
{
	return s->has_snap;
}

int
cxo_sub_connected(const struct cxo_sub *s)
{
	return s->c != NULL && s->subscribed;
}

uint64_t
cxo_sub_seq(const struct cxo_sub *s)
{
	return s->has_snap ? s->snap.seq : 0;
}

/* The entry at path (split on '/') from the snapshot's top; 1 found. */
static int
lookup(const struct cxo_sub *s, const char *path, struct cxo_entry *out, const uint8_t **obj,
    size_t *olen)
{
	const uint8_t *b;
	size_t len;
	const char *p = path;
	struct cxo_entry e;

	if (!s->has_snap)
		return 0;
	b = cxo_store_get(s->st, s->snap.tree, &len);
	if (b == NULL)
		return 0;
	*obj = b;
	*olen = len;
	if (p == NULL || *p == '\0') {
		out->kind = CXO_KIND_TREE;
		out->hash = s->snap.tree;
		return 1;
	}
	for (;;) {
		const char *q = strchr(p, '/');
		size_t l = q != NULL ? (size_t)(q - p) : strlen(p);

		if (!cxo_obj_find(b, len, (const uint8_t *)p, l, &e))
			return 0;
		if (q == NULL) {
			*out = e;
			return 1;
		}
		if (e.kind != CXO_KIND_TREE || (b = cxo_store_get(s->st, e.hash, &len)) == NULL)
			return 0;
		p = q + 1;
	}
}

int
cxo_sub_get(const struct cxo_sub *s, const char *path, const uint8_t **data, size_t *len)
{
	struct cxo_entry e;
	const uint8_t *obj;
	size_t olen;

	if (!lookup(s, path, &e, &obj, &olen) || e.kind != CXO_KIND_LEAF)
		return 0;
	*data = e.leaf;
	*len = e.leaf_len;
	return 1;
}

struct walk {
	cxo_leaf_fn *fn;
	void *arg;
	size_t n;
	int stop;
	char path[CXO_MAX_PATH + 1];
};

static void
walk_obj(const struct cxo_sub *s, struct walk *w, const uint8_t *hash, size_t plen, int depth)
{
	struct cxo_obj_iter it;
	struct cxo_entry e;
	const uint8_t *b;
	size_t len;

	if (depth > CXO_MAX_DEPTH || (b = cxo_store_get(s->st, hash, &len)) == NULL)
		return;
	cxo_obj_iter_init(&it, b, len);
	while (!w->stop && cxo_obj_iter_next(&it, &e)) {
		size_t l = path_push(w->path, plen, &e);

		if (e.kind == CXO_KIND_TREE) {
			walk_obj(s, w, e.hash, l, depth + 1);
			continue;
		}
		w->path[l] = '\0';
		w->n++;
		if (w->fn(w->path, e.leaf, e.leaf_len, w->arg) != 0)
			w->stop = 1;
	}
}

size_t
cxo_sub_walk(const struct cxo_sub *s, const char *prefix, cxo_leaf_fn *fn, void *arg)
{
	struct walk *w;
	struct cxo_entry e;
	const uint8_t *obj;
	size_t olen, plen = prefix != NULL ? strlen(prefix) : 0, n;

	if (plen > CXO_MAX_PATH || !lookup(s, prefix, &e, &obj, &olen))
		return 0;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return 0;
	w->fn = fn;
	w->arg = arg;
	if (plen > 0)
		memcpy(w->path, prefix, plen);
	if (e.kind == CXO_KIND_LEAF) {
		w->path[plen] = '\0';
		w->n = 1;
		fn(w->path, e.leaf, e.leaf_len, arg);
	} else {
		walk_obj(s, w, e.hash, plen, 1);
	}
	n = w->n;
	free(w);
	return n;
}

void
cxo_sub_stats(const struct cxo_sub *s, struct cxo_sub_stats *st)
{
	*st = s->stats;
	st->objects = cxo_store_count(s->st);
}

struct bufferevent *
cxo_tcp_dial(struct event_base *base, void *arg)
{
	return cxo_tcp_connect(base, arg);
}
