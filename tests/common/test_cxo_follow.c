/*
 * cxo_follow, the feed engine, on the embedded store: the tree equals what
 * the store holds after a rebuild at start, after puts that move and drop
 * leaves, after deletes, after records expire (or are rewritten
 * elsewhere), and after a queue overflow (answered with a rebuild).
 *
 * Then replicas: engines with one key and port on one redis-server this
 * test starts (cxo.md Replicas).  A subscriber (cxo_sub over TCP) on the
 * replica started later follows when it is moved to the earlier one, and
 * back to the later one restarted, its seq never going back; two replicas
 * publishing the same tree at once end up serving one root; a restart
 * publishes above the stored seq even when that is ahead of the clock; the
 * store stalled, roots are numbered locally and the loop goes on; a store
 * that lost the counter gets it back.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "cxo_follow.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "cxo_sub.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "tests/lib/testutil.h"

#define WAIT_MS 5000

struct env {
	struct event_base *base;
	struct sw_supervisor *sup;
	struct sw_svc *svc;
	struct sw_store *st;
	struct cxo_follow *f;
	struct sw_keypair kp;
};


/* Two kinds; a record has a leaf k<kind>/<member>, and b<kind>/<member> when its JSON says "two". */
static void
index_key(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	snprintf(out, size, "t:idx:%zu", k);
}

static void
record_prefix(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	snprintf(out, size, "t:rec:%zu:", k);
}

static size_t
leaves(void *ctx, size_t k, const char *member, const char *json, size_t len,
    char (*paths)[CXO_FOLLOW_PATH], size_t max)
{
	size_t n = 0;

	(void)ctx;
	(void)len;
	if (strstr(json, "none") != NULL || max < 2)
		return 0;
	snprintf(paths[n++], CXO_FOLLOW_PATH, "k%zu/%s", k, member);
	if (strstr(json, "two") != NULL)
		snprintf(paths[n++], CXO_FOLLOW_PATH, "b%zu/%s", k, member);
	return n;
}

static const struct cxo_follow_ops ops = {2, index_key, record_prefix, leaves};

static int done_flag;

static void
cmd_done(const struct sw_reply *r, void *arg)
{
	(void)r;
	(void)arg;
	done_flag = 1;
}

/* Store the record of member (kind k) as json, expiring in ttl_s, with its index entry. */
static void
store_put(struct env *e, size_t k, const char *member, const char *json, long long ttl_s)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char key[64], idx[64], ttl[24], exp[24];

	snprintf(key, sizeof(key), "t:rec:%zu:%s", k, member);
	snprintf(idx, sizeof(idx), "t:idx:%zu", k);
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	snprintf(exp, sizeof(exp), "%lld", (long long)time(NULL) + ttl_s);
	sw_store_txn_add(t, "SET", key, json, "EX", ttl, NULL);
	sw_store_txn_add(t, "ZADD", idx, exp, member, NULL);
	done_flag = 0;
	assert_int_equal(sw_store_txn_exec(e->st, t, cmd_done, NULL), 0);
	assert_int_equal(sw_test_run_until(e->base, &done_flag, WAIT_MS), 0);
}

static void
store_del(struct env *e, size_t k, const char *member)
{
	char key[64];

	snprintf(key, sizeof(key), "t:rec:%zu:%s", k, member);
	done_flag = 0;
	assert_int_equal(sw_store_cmd(e->st, cmd_done, NULL, "DEL", key, NULL), 0);
	assert_int_equal(sw_test_run_until(e->base, &done_flag, WAIT_MS), 0);
}

struct want {
	struct env *e;
	size_t leaves;
	size_t records;
};

static int
settled(void *arg)
{
	struct want *w = arg;
	struct cxo_follow_stats fs;
	struct cxo_feed_stats st;

	cxo_follow_stats(w->e->f, &fs);
	cxo_feed_stats(cxo_follow_feed(w->e->f), &st);
	return !fs.rebuilding && fs.queued == 0 && st.leaves == w->leaves &&
	    fs.records == w->records;
}

static void
expect(struct env *e, size_t leaves_n, size_t records)
{
	struct want w = {e, leaves_n, records};
	struct cxo_feed_stats st;

	if (sw_test_run_until_fn(e->base, settled, &w, WAIT_MS) == -1) {
		cxo_feed_stats(cxo_follow_feed(e->f), &st);
		fail_msg("want %zu leaves of %zu records, have %zu leaves", leaves_n, records,
		    st.leaves);
	}
}

static struct cxo_follow *
start(struct env *e, size_t queue_max)
{
	struct cxo_follow_opts o = {
		.svc = e->svc,
		.st = e->st,
		.kp = &e->kp,
		.port = 200,
		.ops = &ops,
		.ctx = e,
		.queue_max = queue_max,
		.metric_prefix = "t_feed",
	};

	e->f = cxo_follow_start(&o);
	assert_non_null(e->f);
	return e->f;
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	e->base = event_base_new();
	e->svc = sw_test_svc(e->base, "follow-test", &e->sup);
	assert_non_null(e->svc);
	e->st = sw_svc_store(e->svc);
	sw_keypair_generate(&e->kp);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	cxo_follow_free(e->f);
	sw_supervisor_free(e->sup);
	event_base_free(e->base);
	free(e);
	return 0;
}

static void
test_rebuild_at_start(void **state)
{
	struct env *e = *state;

	store_put(e, 0, "a", "{\"two\":1}", 60);
	store_put(e, 0, "b", "{}", 60);
	store_put(e, 1, "a", "{}", 60);
	store_put(e, 1, "c", "{\"none\":1}", 60); /* stored, but no leaf */
	start(e, 16);
	expect(e, 4, 3);
}

static void
test_put_move_delete(void **state)
{
	struct env *e = *state;

	start(e, 16);
	expect(e, 0, 0);
	store_put(e, 0, "a", "{\"two\":1}", 60);
	cxo_follow_put(e->f, 0, "a", "{\"two\":1}", 9, 60);
	expect(e, 2, 1);
	/* The same record with one leaf: the other one goes. */
	cxo_follow_put(e->f, 0, "a", "{}", 2, 60);
	expect(e, 1, 1);
	/* Same member, other kind: another record. */
	cxo_follow_put(e->f, 1, "a", "{}", 2, 60);
	expect(e, 2, 2);
	cxo_follow_put(e->f, 1, "a", "{\"none\":1}", 10, 60);
	expect(e, 1, 1);
	cxo_follow_del(e->f, 0, "a");
	expect(e, 0, 0);
}

static void
test_expiry(void **state)
{
	struct env *e = *state;

	start(e, 16);
	expect(e, 0, 0);
	/* Expires in the store: its leaves go after the engine reads it back. */
	store_put(e, 0, "gone", "{}", 1);
	cxo_follow_put(e->f, 0, "gone", "{}", 2, 1);
	/* The engine thinks it expires, but another writer refreshed it. */
	store_put(e, 0, "kept", "{\"two\":1}", 60);
	cxo_follow_put(e->f, 0, "kept", "{}", 2, 1);
	expect(e, 2, 2);
	/* After the checks: "gone" left, "kept" has its stored content (two leaves). */
	expect(e, 2, 1);
	store_del(e, 0, "kept");
}

static void
test_overflow_rebuilds(void **state)
{
	struct env *e = *state;
	struct cxo_follow_stats fs;
	unsigned long rebuilds;

	start(e, 2);
	expect(e, 0, 0);
	cxo_follow_stats(e->f, &fs);
	rebuilds = fs.rebuilds;
	store_put(e, 0, "x", "{}", 60);
	store_put(e, 0, "y", "{\"two\":1}", 60);
	/* Three in one loop pass, one more than the queue holds; z is not in the store. */
	cxo_follow_put(e->f, 0, "x", "{}", 2, 60);
	cxo_follow_put(e->f, 0, "y", "{\"two\":1}", 9, 60);
	cxo_follow_put(e->f, 0, "z", "{}", 2, 60);
	cxo_follow_stats(e->f, &fs);
	assert_int_equal(fs.overflows, 1);
	assert_true(fs.rebuilds > rebuilds);
	/* The rebuild shows what the store holds: x and y, not z. */
	expect(e, 3, 2);
}

static void
test_free_with_reads_in_flight(void **state)
{
	struct env *e = *state;

	store_put(e, 0, "a", "{}", 60);
	start(e, 16);
	/* The rebuild's read is in flight: freeing now must not touch the engine later. */
	cxo_follow_free(e->f);
	e->f = NULL;
	sw_test_run_for(e->base, 50);
}

/* Replicas on one redis */

static struct sw_test_redis redis;

struct replica {
	struct sw_supervisor *sup;
	struct sw_svc *svc;
	struct sw_store *st;
	struct cxo_follow *f;
	char addr[32]; /* its CXO TCP listener */
};

/* A subscriber that is moved by changing target; it records any sign of the feed going back. */
struct watch {
	struct cxo_sub *s;
	char target[32];
	uint64_t high;  /* the highest seq it held */
	int back;       /* it held a lower seq after a higher one */
	int refused;    /* it closed on "root seq did not grow" */
	int downs;
};

static struct replica rep[2];
static struct watch watch;

static int
store_up(void *arg)
{
	return sw_store_up(arg);
}

/* The env's store is the test's own connection to redis, emptied: records are written there. */
static int
rsetup(void **state)
{
	struct env *e;

	setup(state);
	e = *state;
	e->st = sw_store_new(e->base, redis.url, "writer");
	assert_non_null(e->st);
	assert_int_equal(sw_test_run_until_fn(e->base, store_up, e->st, WAIT_MS), 0);
	done_flag = 0;
	assert_int_equal(sw_store_cmd(e->st, cmd_done, NULL, "FLUSHDB", NULL), 0);
	assert_int_equal(sw_test_run_until(e->base, &done_flag, WAIT_MS), 0);
	memset(rep, 0, sizeof(rep));
	memset(&watch, 0, sizeof(watch));
	return 0;
}

static void
replica_stop(struct replica *r)
{
	cxo_follow_free(r->f);
	r->f = NULL;
	sw_store_free(r->st);
	r->st = NULL;
	sw_supervisor_free(r->sup);
	r->sup = NULL;
}

static int
rteardown(void **state)
{
	struct env *e = *state;

	if (redis.pid != 0)
		kill(redis.pid, SIGCONT); /* a test that failed while redis was stopped */
	cxo_sub_free(watch.s);
	for (size_t i = 0; i < 2; i++)
		replica_stop(&rep[i]);
	sw_store_free(e->st);
	e->st = NULL;
	return teardown(state);
}

static int
has_root(void *arg)
{
	return cxo_feed_root(cxo_follow_feed(arg)) != NULL;
}

/* A replica of the env's feed (a restart when started again), refilled every follow_ms. */
static void
replica_start(struct env *e, struct replica *r, const char *name, long long follow_ms)
{
	struct cxo_follow_opts o = {
		.kp = &e->kp,
		.port = 200,
		.tcp_addr = "127.0.0.1:0",
		.ops = &ops,
		.ctx = e,
		.follow_ms = follow_ms,
		.metric_prefix = "t_feed",
	};

	r->svc = sw_test_svc(e->base, name, &r->sup);
	assert_non_null(r->svc);
	r->st = sw_store_new(e->base, redis.url, name);
	assert_non_null(r->st);
	assert_int_equal(sw_test_run_until_fn(e->base, store_up, r->st, WAIT_MS), 0);
	o.svc = r->svc;
	o.st = r->st;
	r->f = cxo_follow_start(&o);
	assert_non_null(r->f);
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%d", cxo_follow_tcp_port(r->f));
	assert_int_equal(sw_test_run_until_fn(e->base, has_root, r->f, WAIT_MS), 0);
}

static uint64_t
seq_of(const struct replica *r)
{
	struct cxo_feed_stats st;

	cxo_feed_stats(cxo_follow_feed(r->f), &st);
	return st.seq;
}

static size_t
leaves_of(const struct replica *r)
{
	struct cxo_feed_stats st;

	cxo_feed_stats(cxo_follow_feed(r->f), &st);
	return st.leaves;
}

struct same {
	size_t leaves;
};

/* Both replicas serve the same root bytes, with this many leaves. */
static int
one_root(void *arg)
{
	const struct same *w = arg;
	const uint8_t *a = cxo_feed_root(cxo_follow_feed(rep[0].f));
	const uint8_t *b = cxo_feed_root(cxo_follow_feed(rep[1].f));

	return a != NULL && b != NULL && memcmp(a, b, CXO_ROOT_LEN) == 0 &&
	    leaves_of(&rep[0]) == w->leaves && leaves_of(&rep[1]) == w->leaves;
}

static void
expect_one_root(struct env *e, size_t leaves_n)
{
	struct same w = {leaves_n};

	if (sw_test_run_until_fn(e->base, one_root, &w, WAIT_MS) == -1)
		fail_msg("replicas serve different roots: seq %llu (%zu leaves), %llu (%zu leaves)",
		    (unsigned long long)seq_of(&rep[0]), leaves_of(&rep[0]),
		    (unsigned long long)seq_of(&rep[1]), leaves_of(&rep[1]));
}

static void
watch_seq(struct watch *w)
{
	uint64_t seq = cxo_sub_seq(w->s);

	if (seq < w->high)
		w->back = 1;
	if (seq > w->high)
		w->high = seq;
}

static void
on_snapshot(struct cxo_sub *s, void *arg)
{
	(void)s;
	watch_seq(arg);
}

static void
on_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	(void)s;
	(void)ch;
	(void)n;
	watch_seq(arg);
}

static void
on_down(struct cxo_sub *s, const char *reason, void *arg)
{
	struct watch *w = arg;
	struct cxo_sub_stats st;

	(void)reason;
	w->downs++;
	cxo_sub_stats(s, &st);
	if (strstr(st.last_error, "seq did not grow") != NULL)
		w->refused = 1;
}

static void
watch_start(struct env *e, const struct replica *r)
{
	struct cxo_sub_opts o = {
		.svc = "watch",
		.feed_port = 200,
		.dial = cxo_tcp_dial,
		.dial_arg = watch.target,
		.backoff_ms = 20,
		.backoff_max_ms = 100,
		.cbs = {on_snapshot, on_update, on_down},
		.arg = &watch,
	};

	memcpy(o.feed_pk, e->kp.pk, SW_PK_LEN);
	snprintf(watch.target, sizeof(watch.target), "%s", r->addr);
	watch.s = cxo_sub_new(e->base, &o);
	assert_non_null(watch.s);
}

struct on {
	const struct replica *r;
	size_t leaves;
};

static int
count_leaf(const char *path, const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)data;
	(void)len;
	(void)arg;
	return 0;
}

/* The subscriber is connected and holds r's current root (so it took that root). */
static int
watch_on(void *arg)
{
	const struct on *w = arg;

	watch_seq(&watch);
	return cxo_sub_connected(watch.s) && cxo_sub_seq(watch.s) == seq_of(w->r) &&
	    cxo_sub_walk(watch.s, NULL, count_leaf, NULL) == w->leaves;
}

static void
expect_watch_on(struct env *e, const struct replica *r, size_t leaves_n)
{
	struct on w = {r, leaves_n};
	struct cxo_sub_stats st;

	if (sw_test_run_until_fn(e->base, watch_on, &w, WAIT_MS) == -1) {
		cxo_sub_stats(watch.s, &st);
		fail_msg("subscriber at seq %llu, the replica at %llu; last error: %s",
		    (unsigned long long)cxo_sub_seq(watch.s), (unsigned long long)seq_of(r),
		    st.last_error);
	}
	assert_false(watch.refused);
	assert_false(watch.back);
}

struct downs {
	int above;
};

static int
watch_went_down(void *arg)
{
	const struct downs *d = arg;

	return watch.downs > d->above;
}

/* Stop from (the subscriber's connection breaks) and point the subscriber at to. */
static void
move_watch(struct env *e, struct replica *from, const struct replica *to)
{
	struct downs d = {watch.downs};

	replica_stop(from);
	snprintf(watch.target, sizeof(watch.target), "%s", to->addr);
	assert_int_equal(sw_test_run_until_fn(e->base, watch_went_down, &d, WAIT_MS), 0);
}

/* A record written through r: in the store, then reported to r's engine. */
static void
write_through(struct env *e, struct replica *r, const char *member)
{
	store_put(e, 0, member, "{}", 60);
	cxo_follow_put(r->f, 0, member, "{}", 2, 60);
}

static void
test_replicas_subscriber_moves(void **state)
{
	struct env *e = *state;
	uint64_t b_before;

	replica_start(e, &rep[0], "replica-a", 50);
	replica_start(e, &rep[1], "replica-b", 50); /* later: its clock floor is higher */
	write_through(e, &rep[0], "one");
	expect_one_root(e, 1);
	/* On the later one, then moved to the earlier one: it follows. */
	watch_start(e, &rep[1]);
	expect_watch_on(e, &rep[1], 1);
	b_before = seq_of(&rep[1]);
	move_watch(e, &rep[1], &rep[0]);
	expect_watch_on(e, &rep[0], 1);
	write_through(e, &rep[0], "two");
	expect_watch_on(e, &rep[0], 2);
	assert_true(seq_of(&rep[0]) > b_before);
	/* The later one restarted publishes above what it published before; and back to it. */
	replica_start(e, &rep[1], "replica-b", 50);
	assert_true(seq_of(&rep[1]) > b_before);
	expect_one_root(e, 2);
	move_watch(e, &rep[0], &rep[1]);
	expect_watch_on(e, &rep[1], 2);
	write_through(e, &rep[1], "three");
	expect_watch_on(e, &rep[1], 3);
}

static void
test_replicas_same_tree_at_once(void **state)
{
	struct env *e = *state;
	struct cxo_follow_stats a, b;

	replica_start(e, &rep[0], "replica-a", 50);
	replica_start(e, &rep[1], "replica-b", 50);
	expect_one_root(e, 0);
	watch_start(e, &rep[0]);
	expect_watch_on(e, &rep[0], 0);
	/* Both take the same change in the same loop pass: both publish it at once. */
	store_put(e, 0, "x", "{}", 60);
	cxo_follow_put(rep[0].f, 0, "x", "{}", 2, 60);
	cxo_follow_put(rep[1].f, 0, "x", "{}", 2, 60);
	expect_one_root(e, 1);
	cxo_follow_stats(rep[0].f, &a);
	cxo_follow_stats(rep[1].f, &b);
	assert_true(a.adopted + b.adopted >= 1);
	/* On the replica that took the other's root, the subscriber took it too. */
	expect_watch_on(e, &rep[0], 1);
	move_watch(e, &rep[0], &rep[1]);
	expect_watch_on(e, &rep[1], 1);
}

/* The value of key in the env's store (0 when absent). */
static uint64_t counter_value;

static void
counter_read(const struct sw_reply *r, void *arg)
{
	(void)arg;
	counter_value = r->type == SW_REPLY_STR ? strtoull(r->str, NULL, 10) : 0;
	done_flag = 1;
}

static void
seq_key(const struct env *e, char *out, size_t size, const char *what)
{
	char pk[SW_PK_HEX];

	sw_hex_encode(pk, e->kp.pk, SW_PK_LEN);
	snprintf(out, size, "cxo:%s:200:%s", pk, what);
}

static uint64_t
stored_counter(struct env *e)
{
	char key[128];

	seq_key(e, key, sizeof(key), "seq");
	done_flag = 0;
	assert_int_equal(sw_store_cmd(e->st, counter_read, NULL, "GET", key, NULL), 0);
	assert_int_equal(sw_test_run_until(e->base, &done_flag, WAIT_MS), 0);
	return counter_value;
}

struct grown {
	const struct replica *r;
	uint64_t above;
};

static int
seq_above(void *arg)
{
	const struct grown *g = arg;

	return seq_of(g->r) > g->above;
}

static void
test_restart_above_the_store(void **state)
{
	struct env *e = *state;
	struct grown g = {&rep[0], 0};
	uint8_t before[CXO_ROOT_LEN];
	char key[128], ahead[24];
	uint64_t a;

	replica_start(e, &rep[0], "replica-a", 50);
	a = seq_of(&rep[0]);
	memcpy(before, cxo_feed_root(cxo_follow_feed(rep[0].f)), CXO_ROOT_LEN);
	assert_int_equal(stored_counter(e), a);
	/* The counter ahead of the clock (a clock stepped back, say). */
	seq_key(e, key, sizeof(key), "seq");
	snprintf(ahead, sizeof(ahead), "%llu", (unsigned long long)(a + 1000000000ULL));
	done_flag = 0;
	assert_int_equal(sw_store_cmd(e->st, cmd_done, NULL, "SET", key, ahead, NULL), 0);
	assert_int_equal(sw_test_run_until(e->base, &done_flag, WAIT_MS), 0);
	replica_stop(&rep[0]);
	replica_start(e, &rep[0], "replica-a", 50);
	/* The same tree: the restart serves the root it served, nothing new for subscribers. */
	assert_memory_equal(cxo_feed_root(cxo_follow_feed(rep[0].f)), before, CXO_ROOT_LEN);
	/* Its next root goes above the stored seq, not by the clock. */
	write_through(e, &rep[0], "x");
	g.above = a + 1000000000ULL;
	assert_int_equal(sw_test_run_until_fn(e->base, seq_above, &g, WAIT_MS), 0);
	assert_int_equal(stored_counter(e), seq_of(&rep[0]));
}

static void
test_store_stalled_publishes_locally(void **state)
{
	struct env *e = *state;
	struct cxo_follow_stats fs;
	struct grown g = {&rep[0], 0};
	uint64_t s0;

	/* No refill: a rebuild would hold the feed while the store is away. */
	replica_start(e, &rep[0], "replica-a", 0);
	watch_start(e, &rep[0]);
	expect_watch_on(e, &rep[0], 0);
	s0 = seq_of(&rep[0]);
	/* Stalled: the seq request gets no answer; the store is down within a second. */
	assert_int_equal(kill(redis.pid, SIGSTOP), 0);
	cxo_follow_put(rep[0].f, 0, "x", "{}", 2, 60);
	g.above = s0;
	assert_int_equal(sw_test_run_until_fn(e->base, seq_above, &g, 3 * WAIT_MS), 0);
	assert_int_equal(seq_of(&rep[0]), s0 + 1);
	cxo_follow_stats(rep[0].f, &fs);
	assert_true(fs.local >= 1);
	expect_watch_on(e, &rep[0], 1);
	assert_int_equal(kill(redis.pid, SIGCONT), 0);
	assert_int_equal(sw_test_run_until_fn(e->base, store_up, rep[0].st, 3 * WAIT_MS), 0);
	/* Back: the next root is numbered by the store again, above the local one. */
	cxo_follow_put(rep[0].f, 0, "y", "{}", 2, 60);
	g.above = s0 + 1;
	assert_int_equal(sw_test_run_until_fn(e->base, seq_above, &g, WAIT_MS), 0);
	expect_watch_on(e, &rep[0], 2);
	assert_int_equal(stored_counter(e), seq_of(&rep[0]));
}

/* The counter and roots lost (keys deleted): a replica's next check puts them back. */
static int
counter_back(void *arg)
{
	return stored_counter(arg) == seq_of(&rep[0]);
}

static void
test_lost_counter_put_back(void **state)
{
	struct env *e = *state;
	char seq[128], roots[128];
	uint64_t a;

	replica_start(e, &rep[0], "replica-a", 50);
	a = seq_of(&rep[0]);
	seq_key(e, seq, sizeof(seq), "seq");
	seq_key(e, roots, sizeof(roots), "roots");
	done_flag = 0;
	assert_int_equal(sw_store_cmd(e->st, cmd_done, NULL, "DEL", seq, roots, NULL), 0);
	assert_int_equal(sw_test_run_until(e->base, &done_flag, WAIT_MS), 0);
	assert_int_equal(sw_test_run_until_fn(e->base, counter_back, e, WAIT_MS), 0);
	/* A replica started now finds A's root there (same tree) and serves it. */
	replica_start(e, &rep[1], "replica-b", 50);
	assert_int_equal(seq_of(&rep[1]), a);
	expect_one_root(e, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rebuild_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_move_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow_rebuilds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_reads_in_flight, setup, teardown),
	};
	const struct CMUnitTest replicas[] = {
		cmocka_unit_test_setup_teardown(test_replicas_subscriber_moves, rsetup, rteardown),
		cmocka_unit_test_setup_teardown(test_replicas_same_tree_at_once, rsetup, rteardown),
		cmocka_unit_test_setup_teardown(test_restart_above_the_store, rsetup, rteardown),
		cmocka_unit_test_setup_teardown(test_store_stalled_publishes_locally, rsetup,
		    rteardown),
		cmocka_unit_test_setup_teardown(test_lost_counter_put_back, rsetup, rteardown),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (sw_test_redis_start(&redis, 0) == -1)
		return 1;
	rc |= cmocka_run_group_tests(replicas, NULL, NULL);
	sw_test_redis_stop(&redis);
	return rc;
}
