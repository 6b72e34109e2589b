/*
 * cxo_follow, the feed engine, on the embedded store: the tree equals what
 * the store holds after a rebuild at start, after puts that move and drop
 * leaves, after deletes, after records expire (or are rewritten
 * elsewhere), and after a queue overflow (answered with a rebuild).
 */
#include <setjmp.h>
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
#include "cxo_pub.h"
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
		.seq_key = "t:seq",
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

	return cmocka_run_group_tests(tests, NULL, NULL);
}
