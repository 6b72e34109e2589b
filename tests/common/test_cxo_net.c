/*
 * test_cxo_net: publisher and subscriber over real TCP connections in the
 * test's event base.  A snapshot of 10,000 leaves and single-leaf updates
 * (fetching only the nodes on the changed path), coalescing, object GC,
 * publisher restart, seqs given by the owner and roots adopted from
 * another replica; a hostile publisher (bad signature, wrong feed, lower
 * seq, bad object hash, oversize message, garbage) that must each close
 * the connection while the last good snapshot stays; the manager's idle
 * close, the cycle read and the HTTP fallback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "crypto.h"
#include "cxo_mgr.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "cxo_sub.h"
#include "cxo_wire.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"
#include "tests/lib/testutil.h"

#define PORT 46

static struct event_base *base;
static struct sw_keypair kp, other;

struct seen {
	int snapshots;
	int updates;
	int downs;
	size_t nch;
	char path[256];
	enum cxo_change_kind kind;
	char val[64];
};

static void
on_snapshot(struct cxo_sub *s, void *arg)
{
	struct seen *w = arg;

	(void)s;
	w->snapshots++;
}

static void
on_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	struct seen *w = arg;

	(void)s;
	w->updates++;
	w->nch = n;
	snprintf(w->path, sizeof(w->path), "%s", ch[0].path);
	w->kind = ch[0].kind;
	snprintf(w->val, sizeof(w->val), "%.*s", (int)ch[0].len, (const char *)ch[0].data);
}

static void
on_down(struct cxo_sub *s, const char *reason, void *arg)
{
	struct seen *w = arg;

	(void)s;
	(void)reason;
	w->downs++;
}

static struct cxo_sub *
subscribe(const char *addr, const uint8_t *pk, struct seen *w)
{
	struct cxo_sub_opts o;

	memset(&o, 0, sizeof(o));
	o.svc = "test";
	memcpy(o.feed_pk, pk, SW_PK_LEN);
	o.feed_port = PORT;
	o.dial = cxo_tcp_dial;
	o.dial_arg = (void *)addr;
	o.backoff_ms = 50;
	o.backoff_max_ms = 200;
	o.cbs.snapshot = on_snapshot;
	o.cbs.update = on_update;
	o.cbs.down = on_down;
	o.arg = w;
	return cxo_sub_new(base, &o);
}

static struct cxo_pub *
publisher(char *addr, size_t alen, int port)
{
	struct cxo_pub *p = cxo_pub_new(base, "test");
	char a[64];

	snprintf(a, sizeof(a), "127.0.0.1:%d", port);
	assert_non_null(p);
	assert_int_equal(cxo_pub_listen(p, a), 0);
	snprintf(addr, alen, "127.0.0.1:%d", cxo_pub_port(p));
	return p;
}

static struct cxo_feed *
feed(struct cxo_pub *p, uint64_t last_seq, void (*saved)(uint64_t, void *), void *arg)
{
	struct cxo_feed_opts fo;
	struct cxo_feed *f;

	memset(&fo, 0, sizeof(fo));
	fo.kp = &kp;
	fo.port = PORT;
	fo.last_seq = last_seq;
	fo.saved = saved;
	fo.arg = arg;
	f = cxo_feed_new(p, &fo);
	assert_non_null(f);
	return f;
}

/* clients-by-server/<server>/<cc>/<client> for client i of server s. */
static void
leaf_path(char *out, size_t size, int s, int i)
{
	uint8_t seed[8], h[SW_PK_LEN];
	char sv[SW_PK_HEX], cl[SW_PK_HEX];

	memset(h, 0, sizeof(h));
	h[0] = (uint8_t)(0x10 + s);
	sw_hex_encode(sv, h, SW_PK_LEN);
	sw_put_u32(seed, (uint32_t)s);
	sw_put_u32(seed + 4, (uint32_t)i);
	sw_hash(h, seed, sizeof(seed));
	sw_hex_encode(cl, h, SW_PK_LEN);
	snprintf(out, size, "clients-by-server/%s/%.2s/%s", sv, cl, cl);
}

struct pred {
	struct cxo_sub *s;
	struct seen *w;
	uint64_t seq;
	int n;
};

static int
has_seq(void *arg)
{
	struct pred *p = arg;

	return cxo_sub_seq(p->s) >= p->seq;
}

static int
count_leaf(const char *path, const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)data;
	(void)len;
	(*(size_t *)arg)++;
	return 0;
}

static void
test_snapshot_then_updates(void **state)
{
	char addr[64], path[200];
	struct cxo_pub *p = publisher(addr, sizeof(addr), 0);
	struct cxo_feed *f = feed(p, 0, NULL, NULL);
	struct seen w = {0};
	struct cxo_sub *s;
	struct cxo_sub_stats a, b;
	struct cxo_feed_stats fs;
	size_t n = 0;
	const uint8_t *d;
	size_t dl;

	(void)state;
	for (int i = 0; i < 10000; i++) {
		leaf_path(path, sizeof(path), i % 4, i);
		assert_int_equal(cxo_feed_put(f, path, path + 90, 20), 0);
	}
	s = subscribe(addr, kp.pk, &w);
	assert_int_equal(sw_test_run_until(base, &w.snapshots, 10000), 0);
	assert_int_equal(cxo_sub_walk(s, NULL, count_leaf, &n), 10000);
	assert_int_equal(n, 10000);
	leaf_path(path, sizeof(path), 1, 5);
	assert_int_equal(cxo_sub_get(s, path, &d, &dl), 1);
	assert_int_equal(dl, 20);
	assert_memory_equal(d, path + 90, 20);
	cxo_feed_stats(f, &fs);
	assert_int_equal(cxo_sub_seq(s), fs.seq);

	/* One changed leaf: four nodes fetched (top, clients-by-server, server, cc). */
	cxo_sub_stats(s, &a);
	leaf_path(path, sizeof(path), 2, 6);
	assert_int_equal(cxo_feed_put(f, path, "changed", 7), 0);
	assert_int_equal(sw_test_run_until(base, &w.updates, 5000), 0);
	cxo_sub_stats(s, &b);
	assert_int_equal(b.rqobj - a.rqobj, 4);
	assert_int_equal(w.nch, 1);
	assert_string_equal(w.path, path);
	assert_int_equal(w.kind, CXO_CHANGED);
	assert_string_equal(w.val, "changed");

	/* Added and removed. */
	w.updates = 0;
	leaf_path(path, sizeof(path), 3, 20000);
	assert_int_equal(cxo_feed_put(f, path, "new", 3), 0);
	assert_int_equal(sw_test_run_until(base, &w.updates, 5000), 0);
	assert_int_equal(w.nch, 1);
	assert_int_equal(w.kind, CXO_ADDED);
	assert_string_equal(w.path, path);
	w.updates = 0;
	assert_int_equal(cxo_feed_delete(f, path), 1);
	assert_int_equal(sw_test_run_until(base, &w.updates, 5000), 0);
	assert_int_equal(w.nch, 1);
	assert_int_equal(w.kind, CXO_REMOVED);
	assert_string_equal(w.path, path);
	assert_string_equal(w.val, "new");
	assert_int_equal(cxo_sub_get(s, path, &d, &dl), 0);

	/* Everything under one server pruned: 2,500 removals in one update. */
	w.updates = 0;
	leaf_path(path, sizeof(path), 0, 0);
	path[strlen("clients-by-server/") + 64] = '\0';
	assert_int_equal(cxo_feed_prune(f, path), 1);
	assert_int_equal(sw_test_run_until(base, &w.updates, 5000), 0);
	assert_int_equal(w.nch, 2500);
	n = 0;
	cxo_sub_walk(s, NULL, count_leaf, &n);
	assert_int_equal(n, 7500);
	assert_int_equal(w.downs, 0);
	cxo_sub_free(s);
	cxo_pub_free(p);
}

static void
test_coalescing_and_gc(void **state)
{
	char addr[64], path[200];
	struct cxo_pub *p = publisher(addr, sizeof(addr), 0);
	struct cxo_feed *f = feed(p, 0, NULL, NULL);
	struct seen w = {0};
	struct cxo_sub *s;
	struct cxo_feed_stats fs0, fs1;
	uint8_t t1[SW_HASH_LEN], t2[SW_HASH_LEN], t3[SW_HASH_LEN];
	struct cxo_root r;

	(void)state;
	for (int i = 0; i < 100; i++) {
		leaf_path(path, sizeof(path), i % 2, i);
		assert_int_equal(cxo_feed_put(f, path, "v", 1), 0);
	}
	s = subscribe(addr, kp.pk, &w);
	assert_int_equal(sw_test_run_until(base, &w.snapshots, 5000), 0);
	cxo_feed_stats(f, &fs0);
	/* 500 puts inside one interval: one root, one update listing 50 leaves. */
	for (int k = 0; k < 10; k++) {
		for (int i = 0; i < 50; i++) {
			char v[16];

			leaf_path(path, sizeof(path), i % 2, i);
			snprintf(v, sizeof(v), "%d", k);
			assert_int_equal(cxo_feed_put(f, path, v, strlen(v)), 0);
		}
	}
	assert_int_equal(sw_test_run_until(base, &w.updates, 5000), 0);
	cxo_feed_stats(f, &fs1);
	assert_int_equal(fs1.roots - fs0.roots, 1);
	assert_int_equal(fs1.seq, fs0.seq + 1);
	assert_int_equal(w.nch, 50);
	sw_test_run_for(base, 250);
	assert_int_equal(w.updates, 1);

	/* GC: the current and previous roots' objects stay, older ones go. */
	cxo_root_decode(cxo_feed_root(f), CXO_ROOT_LEN, &r);
	memcpy(t1, r.tree, SW_HASH_LEN);
	leaf_path(path, sizeof(path), 0, 0);
	assert_int_equal(cxo_feed_put(f, path, "gc1", 3), 0);
	assert_int_equal(cxo_feed_publish(f), 1);
	cxo_root_decode(cxo_feed_root(f), CXO_ROOT_LEN, &r);
	memcpy(t2, r.tree, SW_HASH_LEN);
	assert_non_null(cxo_feed_object(f, t1, NULL));
	assert_int_equal(cxo_feed_put(f, path, "gc2", 3), 0);
	assert_int_equal(cxo_feed_publish(f), 1);
	cxo_root_decode(cxo_feed_root(f), CXO_ROOT_LEN, &r);
	memcpy(t3, r.tree, SW_HASH_LEN);
	assert_null(cxo_feed_object(f, t1, NULL));
	assert_non_null(cxo_feed_object(f, t2, NULL));
	assert_non_null(cxo_feed_object(f, t3, NULL));
	/* top + clients-by-server + 2 servers + their cc nodes, twice for the changed path. */
	cxo_feed_stats(f, &fs1);
	assert_int_equal(cxo_feed_publish(f), 0); /* nothing new */
	{
		struct cxo_feed_stats fs2;

		cxo_feed_stats(f, &fs2);
		assert_int_equal(fs2.objects, fs1.objects);
		assert_int_equal(fs2.roots, fs1.roots);
	}
	cxo_sub_free(s);
	cxo_pub_free(p);
}

/* A sequencer that only notes what it was asked; the test answers. */
struct asked {
	int n;
	uint64_t floor;
};

static void
ask_seq(struct cxo_feed *f, uint64_t floor, void *arg)
{
	struct asked *a = arg;

	(void)f;
	a->n++;
	a->floor = floor;
}

static int
asked_twice(void *arg)
{
	return ((struct asked *)arg)->n >= 2;
}

static uint64_t
seq_in(const uint8_t *root)
{
	struct cxo_root r;

	assert_int_equal(cxo_root_decode(root, CXO_ROOT_LEN, &r), 0);
	return r.seq;
}

/*
 * The owner numbers the roots (replicas sharing a store): a commit waits
 * for its seq, never below the floor; a root another replica signed for
 * the same tree with a higher seq is taken as it is, and the subscriber
 * takes it too, with nothing to fetch and nothing to report.
 */
static void
test_sequencer_and_adopt(void **state)
{
	char addr[64], addr2[64], path[200];
	struct cxo_pub *p = publisher(addr, sizeof(addr), 0);
	struct cxo_pub *p2 = publisher(addr2, sizeof(addr2), 0);
	struct cxo_feed_opts fo;
	struct asked a = {0};
	struct cxo_feed *f, *g;
	struct seen w = {0};
	struct cxo_sub *s;
	struct pred pr;
	uint8_t mine[CXO_ROOT_LEN], theirs[CXO_ROOT_LEN], bad[CXO_ROOT_LEN];
	uint64_t seq;

	(void)state;
	memset(&fo, 0, sizeof(fo));
	fo.kp = &kp;
	fo.port = PORT;
	fo.sequence = ask_seq;
	fo.arg = &a;
	assert_non_null(f = cxo_feed_new(p, &fo));
	leaf_path(path, sizeof(path), 0, 1);
	/* The first commit waits for its seq; nothing is published, nothing committed meanwhile. */
	assert_int_equal(cxo_feed_publish(f), 1);
	assert_int_equal(a.n, 1);
	assert_null(cxo_feed_root(f));
	assert_int_equal(cxo_feed_put(f, path, "one", 3), 0);
	assert_int_equal(cxo_feed_publish(f), 0);
	assert_int_equal(a.n, 1);
	/* Answered below the floor: the floor. */
	assert_int_equal(cxo_feed_publish_seq(f, 5), 1);
	assert_int_equal(seq_in(cxo_feed_root(f)), a.floor);
	assert_int_equal(cxo_feed_publish_seq(f, 7), 0); /* nothing waits */
	/* The put made while waiting is the next root, asked for at once. */
	assert_int_equal(sw_test_run_until_fn(base, asked_twice, &a, 5000), 0);
	assert_int_equal(a.floor, seq_in(cxo_feed_root(f)) + 1);
	assert_int_equal(cxo_feed_publish_seq(f, a.floor + 10), 1);
	seq = a.floor + 10;
	assert_int_equal(seq_in(cxo_feed_root(f)), seq);
	s = subscribe(addr, kp.pk, &w);
	assert_int_equal(sw_test_run_until(base, &w.snapshots, 5000), 0);
	/* Another replica (same key and port) with the same tree signs a higher seq. */
	g = feed(p2, seq + 100, NULL, NULL);
	assert_int_equal(cxo_feed_put(g, path, "one", 3), 0);
	assert_int_equal(cxo_feed_publish(g), 1);
	memcpy(theirs, cxo_feed_root(g), CXO_ROOT_LEN);
	memcpy(mine, cxo_feed_root(f), CXO_ROOT_LEN);
	memcpy(bad, theirs, CXO_ROOT_LEN);
	bad[40] ^= 1; /* in seq: the signature no longer matches */
	assert_int_equal(cxo_feed_adopt(f, bad, CXO_ROOT_LEN), -1);
	assert_int_equal(cxo_feed_adopt(f, theirs, CXO_ROOT_LEN - 1), -1);
	assert_int_equal(cxo_feed_adopt(f, theirs, CXO_ROOT_LEN), 1);
	assert_memory_equal(cxo_feed_root(f), theirs, CXO_ROOT_LEN);
	pr.s = s;
	pr.seq = seq_in(theirs);
	assert_int_equal(sw_test_run_until_fn(base, has_seq, &pr, 5000), 0);
	assert_int_equal(w.updates, 0);
	assert_int_equal(w.downs, 0);
	/* The same root again, or an older one: not newer. */
	assert_int_equal(cxo_feed_adopt(f, theirs, CXO_ROOT_LEN), 0);
	assert_int_equal(cxo_feed_adopt(f, mine, CXO_ROOT_LEN), 0);
	/* Another tree: refused, its objects are not ours. */
	assert_int_equal(cxo_feed_put(g, path, "two", 3), 0);
	assert_int_equal(cxo_feed_publish(g), 1);
	assert_int_equal(cxo_feed_adopt(f, cxo_feed_root(g), CXO_ROOT_LEN), 0);
	/* Once f holds that tree and waits for its seq, the other's root answers it. */
	assert_int_equal(cxo_feed_put(f, path, "two", 3), 0);
	assert_int_equal(cxo_feed_publish(f), 1);
	assert_int_equal(cxo_feed_adopt(f, cxo_feed_root(g), CXO_ROOT_LEN), 1);
	assert_int_equal(cxo_feed_publish_seq(f, 1), 0); /* answered already */
	assert_int_equal(sw_test_run_until(base, &w.updates, 5000), 0);
	assert_string_equal(w.val, "two");
	assert_int_equal(cxo_sub_seq(s), seq_in(cxo_feed_root(g)));
	assert_int_equal(w.downs, 0);
	cxo_sub_free(s);
	cxo_pub_free(p2);
	cxo_pub_free(p);
}

static void
saved_seq(uint64_t seq, void *arg)
{
	*(uint64_t *)arg = seq;
}

static void
test_publisher_restart(void **state)
{
	char addr[64], path[200];
	struct cxo_pub *p = publisher(addr, sizeof(addr), 0);
	int port = cxo_pub_port(p);
	uint64_t saved = 0, before;
	struct cxo_feed *f = feed(p, 0, saved_seq, &saved);
	struct seen w = {0};
	struct cxo_sub *s;
	struct pred pr;
	const uint8_t *d;
	size_t dl;

	(void)state;
	leaf_path(path, sizeof(path), 0, 1);
	cxo_feed_put(f, path, "one", 3);
	s = subscribe(addr, kp.pk, &w);
	assert_int_equal(sw_test_run_until(base, &w.snapshots, 5000), 0);
	before = cxo_sub_seq(s);
	assert_int_equal(saved, before);
	cxo_pub_free(p);
	assert_int_equal(sw_test_run_until(base, &w.downs, 5000), 0);
	/* Restarted with its persisted seq far ahead of the clock: seq keeps growing. */
	p = publisher(addr, sizeof(addr), port);
	f = feed(p, before + 1000000, saved_seq, &saved);
	cxo_feed_put(f, path, "two", 3);
	pr.s = s;
	pr.seq = before + 1000001;
	assert_int_equal(sw_test_run_until_fn(base, has_seq, &pr, 5000), 0);
	assert_int_equal(cxo_sub_seq(s), before + 1000001);
	assert_int_equal(w.updates, 1);
	assert_int_equal(cxo_sub_get(s, path, &d, &dl), 1);
	assert_memory_equal(d, "two", 3);
	/*
	 * Restarted without its persisted seq: its clock-based seq is below the
	 * one seen, so the subscriber refuses the root and keeps its snapshot.
	 */
	cxo_pub_free(p);
	p = publisher(addr, sizeof(addr), port);
	f = feed(p, 0, NULL, NULL);
	cxo_feed_put(f, path, "three", 5);
	sw_test_run_for(base, 600);
	/* That root's seq is lower than the one seen: refused, snapshot kept. */
	assert_int_equal(cxo_sub_seq(s), before + 1000001);
	assert_int_equal(cxo_sub_get(s, path, &d, &dl), 1);
	assert_memory_equal(d, "two", 3);
	cxo_sub_free(s);
	cxo_pub_free(p);
}

/* A hostile publisher: real objects from a shadow feed, served with faults. */
enum evil_mode {
	GOOD,
	BAD_SIG,
	WRONG_FEED,
	LOWER_SEQ,
	BAD_HASH,
	OVERSIZE,
	GARBAGE,
};

struct evil {
	struct evconnlistener *lis;
	int port;
	struct cxo_pub *shadow;
	struct cxo_feed *f;
	struct cxo_conn *c;
	enum evil_mode mode;
};

static void
evil_root(struct evil *e, uint8_t out[CXO_ROOT_LEN])
{
	struct cxo_root r;

	memcpy(out, cxo_feed_root(e->f), CXO_ROOT_LEN);
	cxo_root_decode(out, CXO_ROOT_LEN, &r);
	switch (e->mode) {
	case BAD_SIG:
		out[CXO_ROOT_LEN - 1] ^= 0x55;
		break;
	case WRONG_FEED:
		memcpy(r.feed_pk, other.pk, SW_PK_LEN);
		cxo_root_encode(&r, &other, out);
		break;
	case LOWER_SEQ:
		r.seq -= 2;
		cxo_root_encode(&r, &kp, out);
		break;
	default:
		break;
	}
}

static void
evil_push(struct evil *e)
{
	uint8_t root[CXO_ROOT_LEN];
	struct evbuffer *out = bufferevent_get_output(cxo_conn_bev(e->c));
	uint8_t h[CXO_HDR];

	if (e->mode == OVERSIZE) {
		sw_put_u32(h, CXO_MAX_MSG + 1);
		memset(h + 4, 0, CXO_HDR - 4);
		evbuffer_add(out, h, sizeof(h));
		return;
	}
	if (e->mode == GARBAGE) {
		static const char junk[] = "\x00\x00\x00\x09garbage!\x01\x02\xff\xfe";

		evbuffer_add(out, junk, sizeof(junk) - 1);
		return;
	}
	evil_root(e, root);
	cxo_conn_send(e->c, CXO_ROOT, 0, root, CXO_ROOT_LEN);
}

static int
evil_msg(struct cxo_conn *c, uint8_t type, uint32_t seq, uint32_t rseq, const uint8_t *b,
    size_t len, void *arg)
{
	struct evil *e = arg;
	const uint8_t *o;
	size_t olen;

	(void)rseq;
	if (type == CXO_SUB) {
		cxo_conn_send(c, CXO_OK, seq, NULL, 0);
		evil_push(e);
		return 0;
	}
	if (type == CXO_RQOBJ && len == SW_HASH_LEN) {
		o = cxo_feed_object(e->f, b, &olen);
		if (o == NULL) {
			cxo_conn_send(c, CXO_ERR, seq, "not found", 9);
		} else if (e->mode == BAD_HASH) {
			cxo_conn_send(c, CXO_OBJ, seq, "\0\0\0\0", 4);
		} else {
			cxo_conn_send(c, CXO_OBJ, seq, o, olen);
		}
		return 0;
	}
	return 0;
}

static void
evil_closed(struct cxo_conn *c, const char *reason, void *arg)
{
	struct evil *e = arg;

	(void)reason;
	if (e->c == c)
		e->c = NULL;
	cxo_conn_free(c);
}

static const struct cxo_conn_cbs evil_cbs = {NULL, evil_msg, evil_closed};

static void
evil_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int sl,
    void *arg)
{
	struct evil *e = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);

	(void)lis;
	(void)sa;
	(void)sl;
	if (e->c != NULL)
		cxo_conn_free(e->c);
	e->c = cxo_conn_new(bev, 1, "evil", &evil_cbs, e);
}

static int
evil_connected(void *arg)
{
	struct evil *e = arg;

	return e->c != NULL && cxo_conn_ready(e->c);
}

static void
test_hostile_publisher(void **state)
{
	static const struct {
		enum evil_mode mode;
		const char *err;
	} cases[] = {
		{BAD_SIG, "bad root signature"},
		{WRONG_FEED, "root of another feed"},
		{LOWER_SEQ, "root seq did not grow"},
		{BAD_HASH, "object hash mismatch"},
		{OVERSIZE, "message too large"},
		{GARBAGE, "bad message sequence"},
	};
	struct evil e = {0};
	struct sockaddr_in sin;
	char addr[64], path[200];
	struct seen w = {0};
	struct cxo_sub *s;
	struct pred pr;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	e.lis = evconnlistener_new_bind(base, evil_accept, &e, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(e.lis);
	{
		socklen_t l = sizeof(sin);

		getsockname(evconnlistener_get_fd(e.lis), (struct sockaddr *)&sin, &l);
	}
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
	e.shadow = cxo_pub_new(base, "shadow");
	e.f = feed(e.shadow, 0, NULL, NULL);
	for (int i = 0; i < 50; i++) {
		leaf_path(path, sizeof(path), i % 2, i);
		cxo_feed_put(e.f, path, "v", 1);
	}
	assert_int_equal(cxo_feed_publish(e.f), 1);
	s = subscribe(addr, kp.pk, &w);
	assert_int_equal(sw_test_run_until(base, &w.snapshots, 5000), 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct cxo_sub_stats st;
		uint64_t good = cxo_sub_seq(s);
		char v[16];

		assert_int_equal(sw_test_run_until_fn(base, evil_connected, &e, 5000), 0);
		e.mode = cases[k].mode;
		snprintf(v, sizeof(v), "case%zu", k);
		leaf_path(path, sizeof(path), 0, 0);
		cxo_feed_put(e.f, path, v, strlen(v));
		assert_int_equal(cxo_feed_publish(e.f), 1);
		evil_push(&e);
		assert_int_equal(sw_test_run_until(base, &w.downs, 5000), 0);
		cxo_sub_stats(s, &st);
		assert_string_equal(st.last_error, cases[k].err);
		/* The last good snapshot is kept. */
		assert_int_equal(cxo_sub_seq(s), good);
		assert_true(cxo_sub_has_snapshot(s));
		/* Back to honest: the subscriber redials and converges. */
		e.mode = GOOD;
		w.downs = 0;
		pr.s = s;
		pr.seq = good + 1;
		assert_int_equal(sw_test_run_until_fn(base, has_seq, &pr, 5000), 0);
		{
			const uint8_t *d;
			size_t dl;

			assert_int_equal(cxo_sub_get(s, path, &d, &dl), 1);
			assert_int_equal(dl, strlen(v));
			assert_memory_equal(d, v, dl);
		}
	}
	cxo_sub_free(s);
	if (e.c != NULL)
		cxo_conn_free(e.c);
	cxo_pub_free(e.shadow);
	evconnlistener_free(e.lis);
	sw_test_run_for(base, 20);
}

/* Manager, cycle read, HTTP fallback */

struct ans {
	int done;
	enum cxo_source src;
	size_t n;
	int status;
	int stale;
};

static void
on_answer(const struct cxo_answer *a, void *arg)
{
	struct ans *x = arg;

	x->done = 1;
	x->src = a->source;
	x->n = a->nleaves;
	x->status = a->http_status;
	x->stale = a->stale;
}

static struct bufferevent *
mgr_dial(struct event_base *b, const uint8_t *pk, uint16_t port, void *arg)
{
	(void)pk;
	(void)port;
	return cxo_tcp_connect(b, arg);
}

static int
no_subs(void *arg)
{
	return cxo_mgr_subs(arg) == 0;
}

static int
sub_ready(void *arg)
{
	struct cxo_sub *s = arg;

	return s != NULL && cxo_sub_has_snapshot(s) && cxo_sub_connected(s);
}

static void
count_snapshot(const uint8_t *pk, uint16_t port, void *arg)
{
	(void)pk;
	(void)port;
	(*(int *)arg)++;
}

static void
http_list(struct sw_http_req *req, void *arg)
{
	(void)arg;
	sw_http_reply_raw(req, 200, "application/json", "[\"from-http\"]", 13);
}

static void
test_manager(void **state)
{
	char addr[64], path[200], url[128];
	struct cxo_pub *p = publisher(addr, sizeof(addr), 0);
	struct cxo_feed *f = feed(p, 0, NULL, NULL);
	struct sw_http_server *hs = sw_http_server_new(base, "test", NULL);
	struct cxo_mgr_opts mo = {0};
	struct cxo_mgr *m;
	struct cxo_query q = {0};
	struct ans a = {0};
	int snapshots = 0;

	(void)state;
	assert_int_equal(sw_http_route(hs, "GET", "/list", http_list, NULL), 0);
	assert_int_equal(sw_http_server_listen(hs, "127.0.0.1:0"), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/list", sw_http_server_port(hs));
	for (int i = 0; i < 10; i++) {
		leaf_path(path, sizeof(path), i % 2, i);
		cxo_feed_put(f, path, "v", 1);
	}
	mo.svc = "test";
	mo.idle_close_s = 1;
	mo.dial = mgr_dial;
	mo.dial_arg = addr;
	mo.backoff_ms = 50;
	mo.snapshot = count_snapshot;
	mo.snapshot_arg = &snapshots;
	m = cxo_mgr_new(base, &mo);
	q.pk = kp.pk;
	q.port = PORT;
	q.prefix = "clients-by-server";
	q.http_url = url;
	/* First query: opens the subscription, answered by HTTP meanwhile. */
	assert_int_equal(cxo_mgr_query(m, &q, on_answer, &a), 0);
	assert_false(a.done);
	assert_int_equal(cxo_mgr_subs(m), 1);
	assert_int_equal(sw_test_run_until(base, &a.done, 5000), 0);
	assert_int_equal(a.src, CXO_SRC_HTTP);
	assert_int_equal(a.status, 200);
	assert_int_equal(sw_test_run_until_fn(base, sub_ready, cxo_mgr_sub(m, kp.pk, PORT), 5000),
	    0);
	/* The first snapshot is told once, so a poller can move to the feed at once. */
	assert_int_equal(snapshots, 1);
	memset(&a, 0, sizeof(a));
	assert_int_equal(cxo_mgr_query(m, &q, on_answer, &a), 0);
	assert_int_equal(sw_test_run_until(base, &a.done, 5000), 0);
	assert_int_equal(a.src, CXO_SRC_FEED);
	assert_int_equal(a.n, 10);
	assert_int_equal(snapshots, 1);
	assert_int_equal(cxo_mgr_subs(m), 1);
	/* Idle for idle_close_s: closed. */
	assert_int_equal(sw_test_run_until_fn(base, no_subs, m, 3000), 0);
	assert_int_equal(cxo_pub_conns(p), 1); /* the publisher notices next */
	sw_test_run_for(base, 50);
	assert_int_equal(cxo_pub_conns(p), 0);

	/* Publisher gone: the snapshot would be stale, HTTP answers. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(cxo_mgr_query(m, &q, on_answer, &a), 0);
	assert_int_equal(sw_test_run_until_fn(base, sub_ready, cxo_mgr_sub(m, kp.pk, PORT), 5000),
	    0);
	cxo_pub_free(p);
	p = NULL;
	sw_test_run_for(base, 50);
	memset(&a, 0, sizeof(a));
	assert_int_equal(cxo_mgr_query(m, &q, on_answer, &a), 0);
	assert_int_equal(sw_test_run_until(base, &a.done, 5000), 0);
	assert_int_equal(a.src, CXO_SRC_HTTP);
	/* Neither: the last snapshot, marked stale. */
	sw_http_server_free(hs);
	hs = NULL;
	memset(&a, 0, sizeof(a));
	assert_int_equal(cxo_mgr_query(m, &q, on_answer, &a), 0);
	assert_int_equal(sw_test_run_until(base, &a.done, 8000), 0);
	assert_int_equal(a.src, CXO_SRC_FEED);
	assert_true(a.stale);
	assert_int_equal(a.n, 10);
	cxo_mgr_free(m);
	sw_test_run_for(base, 20);
}

struct cyc {
	int done;
	size_t n;
	char err[128];
};

static void
on_cycle(struct cxo_sub *s, const char *err, void *arg)
{
	struct cyc *c = arg;

	c->done = 1;
	if (s != NULL)
		cxo_sub_walk(s, NULL, count_leaf, &c->n);
	snprintf(c->err, sizeof(c->err), "%s", err != NULL ? err : "");
}

static int
pub_idle(void *arg)
{
	return cxo_pub_conns(arg) == 0;
}

static void
test_cycle_read(void **state)
{
	char addr[64], path[200], dead[64];
	struct cxo_pub *p = publisher(addr, sizeof(addr), 0);
	struct cxo_feed *f = feed(p, 0, NULL, NULL);
	struct cxo_sub_opts o;
	struct cyc c = {0};
	struct cxo_feed_stats fs;

	(void)state;
	for (int i = 0; i < 300; i++) {
		leaf_path(path, sizeof(path), i % 3, i);
		cxo_feed_put(f, path, "v", 1);
	}
	memset(&o, 0, sizeof(o));
	o.svc = "test";
	memcpy(o.feed_pk, kp.pk, SW_PK_LEN);
	o.feed_port = PORT;
	o.dial = cxo_tcp_dial;
	o.dial_arg = addr;
	assert_int_equal(cxo_cycle_read(base, &o, 5000, on_cycle, &c), 0);
	assert_int_equal(sw_test_run_until(base, &c.done, 5000), 0);
	assert_string_equal(c.err, "");
	assert_int_equal(c.n, 300);
	/* Unsubscribed and gone. */
	assert_int_equal(sw_test_run_until_fn(base, pub_idle, p, 2000), 0);
	cxo_feed_stats(f, &fs);
	assert_int_equal(fs.subscribers, 0);
	/* A publisher that is not there: an error, quickly. */
	snprintf(dead, sizeof(dead), "127.0.0.1:%d", sw_test_free_port());
	o.dial_arg = dead;
	memset(&c, 0, sizeof(c));
	assert_int_equal(cxo_cycle_read(base, &o, 5000, on_cycle, &c), 0);
	assert_int_equal(sw_test_run_until(base, &c.done, 2000), 0);
	assert_string_not_equal(c.err, "");
	/* Unknown feed: the publisher's ERR ends it. */
	o.dial_arg = addr;
	o.feed_port = PORT + 1;
	memset(&c, 0, sizeof(c));
	assert_int_equal(cxo_cycle_read(base, &o, 5000, on_cycle, &c), 0);
	assert_int_equal(sw_test_run_until(base, &c.done, 2000), 0);
	assert_string_equal(c.err, "publisher: no such feed");
	sw_test_run_for(base, 20);
	cxo_pub_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_then_updates),
		cmocka_unit_test(test_coalescing_and_gc),
		cmocka_unit_test(test_publisher_restart),
		cmocka_unit_test(test_sequencer_and_adopt),
		cmocka_unit_test(test_hostile_publisher),
		cmocka_unit_test(test_manager),
		cmocka_unit_test(test_cycle_read),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	sw_crypto_init();
	sw_log_set_level(SW_LOG_ERROR);
	sw_keypair_generate(&kp);
	sw_keypair_generate(&other);
	base = event_base_new();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	event_base_free(base);
	return rc;
}
