/*
 * cxo_pub: CXO publisher (cxo.md, "Wire" 1-4).
 *
 * Publication is driven by one timer per feed: the first change after a
 * publication arms it for publish_interval_ms after that publication, and
 * every change until it fires rides along, so a burst of puts costs one
 * commit, one signature and one ROOT per subscriber.  A commit whose top
 * hash equals the current root's publishes nothing.
 *
 * The store holds the current and the previous root's trees; publishing a
 * new root holds it first and then releases the one before the previous,
 * so shared sub-trees are never freed and rebuilt.
 *
 * With a sequencer (replicas sharing a store) the commit is held while the
 * owner fetches its seq, and an owner may install a root another replica
 * signed for the same tree (adopt): same key, same tree, so the objects a
 * subscriber asks for are ours already.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "cxo_store.h"
#include "cxo_tree.h"
#include "cxo_wire.h"
#include "dmsg_wire.h"
#include "listener.h"
#include "log.h"

struct pconn {
	struct cxo_pub *p;
	struct cxo_conn *c;
	struct cxo_feed *subs[CXO_MAX_SUBS_PER_CONN];
	size_t nsubs;
	struct pconn *prev, *next;
	struct sw_listener_peer *lpeer; /* accepted over TCP: give back on close */
};

struct cxo_feed {
	struct cxo_pub *p;
	struct cxo_feed *next;
	struct sw_keypair kp;
	uint16_t port;
	int interval_ms;
	uint64_t last_seq;
	void (*saved)(uint64_t seq, void *arg);
	void (*sequence)(struct cxo_feed *f, uint64_t floor, void *arg);
	void *arg;
	int hold;
	int waiting;                  /* a committed tree waits for its seq */
	uint8_t held[SW_HASH_LEN];    /* that tree (held in st) */
	uint64_t floor;               /* and the least seq it may have */
	struct cxo_tree *tree;
	struct cxo_store *st;
	int has_root, has_prev;
	struct cxo_root cur;
	uint8_t root[CXO_ROOT_LEN];
	uint8_t prev_tree[SW_HASH_LEN];
	long long last_pub_ms;
	struct event *timer;
	struct pconn **subs;
	size_t nsubs, cap;
	struct cxo_feed_stats stats;
};

struct cxo_pub {
	struct event_base *base;
	const char *svc;
	struct sw_listener *lis;
	int port;
	struct pconn *conns;
	size_t nconns;
	struct cxo_feed *feeds;
};



/* Subscriptions */

static void
sub_remove(struct cxo_feed *f, struct pconn *pc)
{
	for (size_t i = 0; i < f->nsubs; i++) {
		if (f->subs[i] == pc) {
			f->subs[i] = f->subs[--f->nsubs];
			break;
		}
	}
	for (size_t i = 0; i < pc->nsubs; i++) {
		if (pc->subs[i] == f) {
			pc->subs[i] = pc->subs[--pc->nsubs];
			break;
		}
	}
}

static int
sub_add(struct cxo_feed *f, struct pconn *pc)
{
	if (f->nsubs == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct pconn **s = realloc(f->subs, cap * sizeof(*s));

		if (s == NULL)
			return -1;
		f->subs = s;
		f->cap = cap;
	}
	f->subs[f->nsubs++] = pc;
	pc->subs[pc->nsubs++] = f;
	return 0;
}

static struct cxo_feed *
feed_find(struct cxo_pub *p, const uint8_t *pk, uint16_t port)
{
	for (struct cxo_feed *f = p->feeds; f != NULL; f = f->next)
		if (f->port == port && memcmp(f->kp.pk, pk, SW_PK_LEN) == 0)
			return f;
	return NULL;
}

/* Connections */

static void
pconn_free(struct pconn *pc, int hard)
{
	struct cxo_pub *p = pc->p;

	while (pc->nsubs > 0)
		sub_remove(pc->subs[0], pc);
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		p->conns = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	if (hard)
		cxo_conn_abort(pc->c);
	else
		cxo_conn_free(pc->c);
	sw_listener_release(p->lis, pc->lpeer);
	free(pc);
	p->nconns--;
}

static int
on_msg(struct cxo_conn *c, uint8_t type, uint32_t seq, uint32_t rseq, const uint8_t *b,
    size_t len, void *arg)
{
	struct pconn *pc = arg;
	struct cxo_feed *f;

	(void)rseq;
	switch (type) {
	case CXO_SUB:
		if (len != CXO_FEED_LEN)
			return -1;
		f = feed_find(pc->p, b, sw_get_u16(b + SW_PK_LEN));
		if (f == NULL) {
			cxo_conn_send(c, CXO_ERR, seq, "no such feed", 12);
			return 0;
		}
		for (size_t i = 0; i < pc->nsubs; i++)
			if (pc->subs[i] == f)
				goto ok; /* again: answer as if new, with the current root */
		if (pc->nsubs == CXO_MAX_SUBS_PER_CONN) {
			cxo_conn_send(c, CXO_ERR, seq, "too many subscriptions", 22);
			return 0;
		}
		if (sub_add(f, pc) == -1) {
			cxo_conn_send(c, CXO_ERR, seq, "out of memory", 13);
			return 0;
		}
ok:
		cxo_conn_send(c, CXO_OK, seq, NULL, 0);
		if (f->has_root) {
			cxo_conn_send(c, CXO_ROOT, 0, f->root, CXO_ROOT_LEN);
			f->stats.pushes++;
		}
		return 0;
	case CXO_UNSUB:
		if (len != CXO_FEED_LEN)
			return -1;
		f = feed_find(pc->p, b, sw_get_u16(b + SW_PK_LEN));
		if (f != NULL)
			sub_remove(f, pc);
		cxo_conn_send(c, CXO_OK, seq, NULL, 0);
		return 0;
	case CXO_RQOBJ:
		if (len != SW_HASH_LEN)
			return -1;
		for (size_t i = 0; i < pc->nsubs; i++) {
			size_t olen;
			const uint8_t *o = cxo_store_get(pc->subs[i]->st, b, &olen);

			if (o != NULL) {
				cxo_conn_send(c, CXO_OBJ, seq, o, olen);
				pc->subs[i]->stats.objs_sent++;
				return 0;
			}
		}
		cxo_conn_send(c, CXO_ERR, seq, "not found", 9);
		return 0;
	default:
		return -1;
	}
}

static void
on_closed(struct cxo_conn *c, const char *reason, void *arg)
{
	struct pconn *pc = arg;
	char q[160];

	(void)c;
	sw_log_debug(pc->p->svc, "cxo subscriber gone", "peer=%s reason=%s", cxo_conn_peer(pc->c),
	    sw_log_q(q, sizeof(q), reason));
	pconn_free(pc, 0);
}

static const struct cxo_conn_cbs pub_cbs = {
	.ready = NULL,
	.msg = on_msg,
	.closed = on_closed,
};

static struct pconn *
pconn_new(struct cxo_pub *p, struct bufferevent *bev)
{
	struct pconn *pc = calloc(1, sizeof(*pc));

	if (pc == NULL)
		goto fail;
	pc->p = p;
	pc->c = cxo_conn_new(bev, 1, p->svc, &pub_cbs, pc);
	if (pc->c == NULL)
		goto fail;
	pc->next = p->conns;
	if (p->conns != NULL)
		p->conns->prev = pc;
	p->conns = pc;
	p->nconns++;
	return pc;
fail:
	free(pc);
	bufferevent_free(bev);
	return NULL;
}

int
cxo_pub_attach(struct cxo_pub *p, struct bufferevent *bev)
{
	return pconn_new(p, bev) != NULL ? 0 : -1;
}

static void
on_accept(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    struct sw_listener_peer *peer, int over_cap, void *arg)
{
	struct cxo_pub *p = arg;
	struct bufferevent *bev;
	struct pconn *pc;

	(void)sa;
	(void)salen;
	(void)over_cap;
	bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		sw_listener_release(p->lis, peer);
		return;
	}
	if ((pc = pconn_new(p, bev)) == NULL)
		sw_listener_release(p->lis, peer);
	else
		pc->lpeer = peer;
}

struct cxo_pub *
cxo_pub_new(struct event_base *base, const char *svc)
{
	struct cxo_pub *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->base = base;
	p->svc = svc;
	return p;
}

int
cxo_pub_listen(struct cxo_pub *p, const char *addr)
{
	struct sw_listener_opts o = {.max_conns = CXO_PUB_MAX_CONNS};

	if (p->lis == NULL &&
	    (p->lis = sw_listener_new(p->base, p->svc, &o, on_accept, p)) == NULL)
		return -1;
	if (sw_listener_bind(p->lis, addr) == -1) {
		sw_log_error(p->svc, "cxo listen failed", "addr=%s",
		    sw_log_q((char[128]){0}, 128, addr));
		return -1;
	}
	p->port = sw_listener_port(p->lis);
	return 0;
}

int
cxo_pub_port(const struct cxo_pub *p)
{
	return p->port;
}

size_t
cxo_pub_conns(const struct cxo_pub *p)
{
	return p->nconns;
}

void
cxo_pub_free(struct cxo_pub *p)
{
	if (p == NULL)
		return;
	while (p->feeds != NULL)
		cxo_feed_free(p->feeds);
	/* Shutting down: what is queued for subscribers is dropped, not flushed. */
	while (p->conns != NULL)
		pconn_free(p->conns, 1);
	sw_listener_free(p->lis);
	free(p);
}

/* Feeds */

static void
feed_changed(struct cxo_feed *f)
{
	long long delay;

	if (f->hold || f->waiting || evtimer_pending(f->timer, NULL))
		return;
	delay = f->last_pub_ms + f->interval_ms - sw_mono_ms();
	if (delay < 0 || f->last_pub_ms == 0)
		delay = 0;
	sw_timer_in(f->timer, delay);
}

/* The least seq the next root may have: never back, across restarts too (cxo.md). */
static uint64_t
seq_floor(const struct cxo_feed *f)
{
	uint64_t now;

	if (f->has_root)
		return f->cur.seq + 1;
	now = (uint64_t)sw_wall_ms();
	return f->last_seq + 1 > now ? f->last_seq + 1 : now;
}

/*
 * r (encoded in bytes) becomes the current root and goes to every
 * subscriber.  A root for the current tree (adopted) keeps the holds as
 * they are; a tree that waited for its seq is held already.
 */
static void
root_install(struct cxo_feed *f, const struct cxo_root *r, const uint8_t *bytes)
{
	int same = f->has_root && memcmp(r->tree, f->cur.tree, SW_HASH_LEN) == 0;

	if (!same) {
		if (!f->waiting)
			cxo_store_hold(f->st, r->tree);
		if (f->has_prev)
			cxo_store_release(f->st, f->prev_tree);
		if (f->has_root) {
			memcpy(f->prev_tree, f->cur.tree, SW_HASH_LEN);
			f->has_prev = 1;
		}
	}
	f->waiting = 0;
	memcpy(f->root, bytes, CXO_ROOT_LEN);
	f->cur = *r;
	f->has_root = 1;
	cxo_store_sweep(f->st);
	f->stats.roots++;
	if (f->saved != NULL)
		f->saved(r->seq, f->arg);
	for (size_t i = 0; i < f->nsubs; i++) {
		cxo_conn_send(f->subs[i]->c, CXO_ROOT, 0, f->root, CXO_ROOT_LEN);
		f->stats.pushes++;
	}
	sw_log_debug(f->p->svc, "cxo root published", "port=%u seq=%llu leaves=%zu objects=%zu",
	    (unsigned)f->port, (unsigned long long)r->seq, cxo_tree_leaves(f->tree),
	    cxo_store_count(f->st));
	/* Changes made while the seq was awaited: the next root. */
	if (cxo_tree_dirty(f->tree))
		feed_changed(f);
}

/* Sign tree as root seq and publish it. */
static void
root_sign(struct cxo_feed *f, const uint8_t tree[SW_HASH_LEN], uint64_t seq)
{
	struct cxo_root r;
	uint8_t bytes[CXO_ROOT_LEN];

	memset(&r, 0, sizeof(r));
	r.version = CXO_ROOT_VERSION;
	memcpy(r.feed_pk, f->kp.pk, SW_PK_LEN);
	r.feed_port = f->port;
	r.seq = seq;
	if (f->has_root)
		sw_hash(r.prev, f->root, CXO_ROOT_LEN);
	r.time_s = (uint64_t)time(NULL);
	memcpy(r.tree, tree, SW_HASH_LEN);
	cxo_root_encode(&r, &f->kp, bytes);
	root_install(f, &r, bytes);
}

int
cxo_feed_publish(struct cxo_feed *f)
{
	uint8_t top[SW_HASH_LEN];

	if (f->waiting)
		return 0; /* committed again once that tree has its seq */
	if (cxo_tree_commit(f->tree, f->st, top) == -1) {
		sw_log_error(f->p->svc, "cxo commit failed: out of memory", "port=%u",
		    (unsigned)f->port);
		return -1;
	}
	f->last_pub_ms = sw_mono_ms();
	if (f->has_root && memcmp(top, f->cur.tree, SW_HASH_LEN) == 0) {
		cxo_store_sweep(f->st);
		return 0;
	}
	if (f->sequence == NULL) {
		root_sign(f, top, seq_floor(f));
		return 1;
	}
	/*
	 * The floor is fixed now: the seq the owner takes from its store is at
	 * least this, and signing with exactly that keeps the store's counter
	 * equal to what was published.
	 */
	cxo_store_hold(f->st, top);
	memcpy(f->held, top, SW_HASH_LEN);
	f->floor = seq_floor(f);
	f->waiting = 1;
	f->sequence(f, f->floor, f->arg);
	return 1;
}

int
cxo_feed_publish_seq(struct cxo_feed *f, uint64_t seq)
{
	if (!f->waiting)
		return 0;
	root_sign(f, f->held, seq > f->floor ? seq : f->floor);
	return 1;
}

int
cxo_feed_adopt(struct cxo_feed *f, const uint8_t *root, size_t len)
{
	struct cxo_root r;

	if (cxo_root_decode(root, len, &r) == -1 ||
	    memcmp(r.feed_pk, f->kp.pk, SW_PK_LEN) != 0 || r.feed_port != f->port ||
	    cxo_root_verify(root, len, &r) == -1)
		return -1;
	if (!f->waiting && !f->has_root)
		return 0; /* no tree committed yet */
	if ((f->has_root && r.seq <= f->cur.seq) ||
	    memcmp(r.tree, f->waiting ? f->held : f->cur.tree, SW_HASH_LEN) != 0)
		return 0;
	root_install(f, &r, root);
	return 1;
}

static void
feed_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cxo_feed *f = arg;

	(void)fd;
	(void)what;
	if (!f->hold)
		cxo_feed_publish(f);
}

struct cxo_feed *
cxo_feed_new(struct cxo_pub *p, const struct cxo_feed_opts *o)
{
	struct cxo_feed *f;

	if (feed_find(p, o->kp->pk, o->port) != NULL)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->p = p;
	f->kp = *o->kp;
	f->port = o->port;
	f->interval_ms = o->publish_interval_ms > 0 ? o->publish_interval_ms :
	    CXO_PUBLISH_INTERVAL_MS;
	f->last_seq = o->last_seq;
	f->saved = o->saved;
	f->sequence = o->sequence;
	f->arg = o->arg;
	f->hold = o->hold;
	f->tree = cxo_tree_new();
	f->st = cxo_store_new();
	f->timer = evtimer_new(p->base, feed_timer, f);
	if (f->tree == NULL || f->st == NULL || f->timer == NULL) {
		cxo_tree_free(f->tree);
		cxo_store_free(f->st);
		if (f->timer != NULL)
			event_free(f->timer);
		free(f);
		return NULL;
	}
	f->next = p->feeds;
	p->feeds = f;
	feed_changed(f); /* the first root, even of an empty tree */
	return f;
}

void
cxo_feed_free(struct cxo_feed *f)
{
	struct cxo_feed **pp;

	if (f == NULL)
		return;
	while (f->nsubs > 0)
		sub_remove(f, f->subs[0]);
	for (pp = &f->p->feeds; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	event_free(f->timer);
	cxo_tree_free(f->tree);
	cxo_store_free(f->st);
	free(f->subs);
	free(f);
}

int
cxo_feed_put(struct cxo_feed *f, const char *path, const void *data, size_t len)
{
	if (cxo_tree_put(f->tree, path, data, len) == -1)
		return -1;
	if (cxo_tree_dirty(f->tree))
		feed_changed(f);
	return 0;
}

int
cxo_feed_delete(struct cxo_feed *f, const char *path)
{
	int rc = cxo_tree_delete(f->tree, path);

	if (rc == 1)
		feed_changed(f);
	return rc;
}

int
cxo_feed_prune(struct cxo_feed *f, const char *prefix)
{
	int rc = cxo_tree_prune(f->tree, prefix);

	if (rc == 1)
		feed_changed(f);
	return rc;
}

void
cxo_feed_clear(struct cxo_feed *f)
{
	cxo_tree_clear(f->tree);
	feed_changed(f);
}

void
cxo_feed_hold(struct cxo_feed *f, int on)
{
	f->hold = on;
	if (on)
		evtimer_del(f->timer);
	else if (cxo_tree_dirty(f->tree) || !f->has_root)
		feed_changed(f);
}

void
cxo_feed_set_last_seq(struct cxo_feed *f, uint64_t last_seq)
{
	if (last_seq > f->last_seq)
		f->last_seq = last_seq;
}

void
cxo_feed_stats(const struct cxo_feed *f, struct cxo_feed_stats *s)
{
	*s = f->stats;
	s->seq = f->has_root ? f->cur.seq : 0;
	s->objects = cxo_store_count(f->st);
	s->bytes = cxo_store_bytes(f->st);
	s->leaves = cxo_tree_leaves(f->tree);
	s->subscribers = f->nsubs;
}

const uint8_t *
cxo_feed_root(const struct cxo_feed *f)
{
	return f->has_root ? f->root : NULL;
}

const uint8_t *
cxo_feed_object(const struct cxo_feed *f, const uint8_t hash[SW_HASH_LEN], size_t *len)
{
	return cxo_store_get(f->st, hash, len);
}
