/*
 * test_store: one table of cases run twice, against the in-memory store and
 * against a redis-server this test starts itself, so the two backends are
 * held to the same replies.  A few cases only make sense on redis (losing
 * and regaining the server, SELECT); they are marked so.
 *
 * Every call goes through helpers that check the callback is not invoked
 * inside the call and exactly once, and that run the loop (bounded) until
 * it is.  Waits for TTLs run the event loop, never sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "tests/lib/testutil.h"

#define WAIT_MS   5000
#define MAX_ARGS  64
#define MAX_KEEP  512

struct fx {
	const struct scase *c;
	struct event_base *base;
	struct sw_store *st;
	int in_call; /* set while a store call runs: a callback then is a bug */
	struct sw_reply *keep[MAX_KEEP];
	int nkeep;
};

struct scase {
	const char *name;
	void (*fn)(struct fx *);
	int redis_only;
};

static struct sw_test_redis redis;
static int use_redis;

/* Replies, copied so they outlive the callback; freed at teardown. */

static struct sw_reply *
reply_dup(const struct sw_reply *r)
{
	struct sw_reply *c;
	char *s;
	size_t i;

	assert_non_null(c = calloc(1, sizeof(*c)));
	*c = *r;
	c->element = NULL;
	if (r->str != NULL) {
		assert_non_null(s = malloc(r->len + 1));
		memcpy(s, r->str, r->len);
		s[r->len] = '\0';
		c->str = s;
	}
	if (r->type == SW_REPLY_ARRAY && r->elements > 0) {
		assert_non_null(c->element = calloc(r->elements, sizeof(*c->element)));
		for (i = 0; i < r->elements; i++)
			c->element[i] = reply_dup(r->element[i]);
	}
	return c;
}

static void
reply_free(struct sw_reply *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; r->element != NULL && i < r->elements; i++)
		reply_free(r->element[i]);
	free(r->element);
	free((char *)(uintptr_t)r->str);
	free(r);
}

static struct sw_reply *
keep(struct fx *f, struct sw_reply *r)
{
	assert_true(f->nkeep < MAX_KEEP);
	f->keep[f->nkeep++] = r;
	return r;
}

struct call {
	struct fx *f;
	struct sw_reply *reply;
	int done;
	int seq; /* order of arrival, for ordering checks */
};

static int arrivals;

static void
call_cb(const struct sw_reply *r, void *arg)
{
	struct call *c = arg;

	assert_false(c->f->in_call);
	assert_false(c->done);
	c->done = 1;
	c->seq = ++arrivals;
	c->reply = keep(c->f, reply_dup(r));
}

static void
wait_call(struct fx *f, struct call *c)
{
	assert_int_equal(sw_test_run_until(f->base, &c->done, WAIT_MS), 0);
}

/* Starts a command without waiting. */
static void
start_argv(struct fx *f, struct call *c, int argc, const char **argv, const size_t *lens)
{
	memset(c, 0, sizeof(*c));
	c->f = f;
	f->in_call = 1;
	assert_int_equal(sw_store_cmdargv(f->st, call_cb, c, argc, argv, lens), 0);
	f->in_call = 0;
	assert_false(c->done);
}

static struct sw_reply *
cmd_argv(struct fx *f, int argc, const char **argv, const size_t *lens)
{
	struct call c;

	start_argv(f, &c, argc, argv, lens);
	wait_call(f, &c);
	return c.reply;
}

static struct sw_reply *
cmd_va(struct fx *f, ...)
{
	const char *argv[MAX_ARGS];
	va_list ap;
	int argc = 0;

	va_start(ap, f);
	while ((argv[argc] = va_arg(ap, const char *)) != NULL) {
		argc++;
		assert_true(argc < MAX_ARGS);
	}
	va_end(ap);
	return cmd_argv(f, argc, argv, NULL);
}

#define CMD(f, ...) cmd_va((f), __VA_ARGS__, (const char *)NULL)

#define EXPECT_INT(r, v)                                                                    \
	do {                                                                                \
		const struct sw_reply *r_ = (r);                                            \
		assert_int_equal(r_->type, SW_REPLY_INT);                                   \
		assert_int_equal(r_->integer, (v));                                         \
	} while (0)
#define EXPECT_STR(r, s)                                                                    \
	do {                                                                                \
		const struct sw_reply *r_ = (r);                                            \
		assert_int_equal(r_->type, SW_REPLY_STR);                                   \
		assert_int_equal(r_->len, strlen(s));                                       \
		assert_string_equal(r_->str, (s));                                          \
	} while (0)
#define EXPECT_STATUS(r, s)                                                                 \
	do {                                                                                \
		const struct sw_reply *r_ = (r);                                            \
		assert_int_equal(r_->type, SW_REPLY_STATUS);                                \
		assert_string_equal(r_->str, (s));                                          \
	} while (0)
#define EXPECT_NIL(r)  assert_int_equal((r)->type, SW_REPLY_NIL)
#define EXPECT_DOWN(r) assert_int_equal((r)->type, SW_REPLY_DOWN)
#define EXPECT_ERR(r, prefix)                                                               \
	do {                                                                                \
		const struct sw_reply *r_ = (r);                                            \
		assert_int_equal(r_->type, SW_REPLY_ERROR);                                 \
		if (strncmp(r_->str, (prefix), strlen(prefix)) != 0)                        \
			fail_msg("error \"%s\" does not start with \"%s\"", r_->str, (prefix));  \
	} while (0)
#define EXPECT_ARRAY(r, n)                                                                  \
	do {                                                                                \
		const struct sw_reply *r_ = (r);                                            \
		assert_int_equal(r_->type, SW_REPLY_ARRAY);                                 \
		assert_int_equal(r_->elements, (n));                                        \
	} while (0)

static int
strcmp_reply(const void *a, const void *b)
{
	const struct sw_reply *ra = *(struct sw_reply *const *)a, *rb = *(struct sw_reply *const *)b;

	return strcmp(ra->str, rb->str);
}

/* Array elements sorted (set order is unspecified), joined with ','. */
static const char *
sorted_join(struct sw_reply *r, char *buf, size_t size)
{
	size_t i, off = 0;

	assert_int_equal(r->type, SW_REPLY_ARRAY);
	if (r->elements > 0)
		qsort(r->element, r->elements, sizeof(*r->element), strcmp_reply);
	buf[0] = '\0';
	for (i = 0; i < r->elements; i++) {
		assert_int_equal(r->element[i]->type, SW_REPLY_STR);
		off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "",
		    r->element[i]->str);
		assert_true(off < size);
	}
	return buf;
}

/* In order, joined with ','. */
static const char *
join(const struct sw_reply *r, char *buf, size_t size)
{
	size_t i, off = 0;

	assert_int_equal(r->type, SW_REPLY_ARRAY);
	buf[0] = '\0';
	for (i = 0; i < r->elements; i++) {
		off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "",
		    r->element[i]->type == SW_REPLY_NIL ? "(nil)" : r->element[i]->str);
		assert_true(off < size);
	}
	return buf;
}

/* Issue GET until key is gone; each round trip and pause runs the loop. */
static void
wait_gone(struct fx *f, const char *key, int timeout_ms)
{
	int waited;

	for (waited = 0; waited <= timeout_ms; waited += 50) {
		if (CMD(f, "EXISTS", key)->integer == 0)
			return;
		sw_test_run_for(f->base, 50);
	}
	fail_msg("key %s still exists after %d ms", key, timeout_ms);
}

/* Cases. */

static void
case_get_set(struct fx *f)
{
	EXPECT_NIL(CMD(f, "GET", "k"));
	EXPECT_STATUS(CMD(f, "SET", "k", "v1"), "OK");
	EXPECT_STR(CMD(f, "GET", "k"), "v1");
	EXPECT_STATUS(CMD(f, "set", "k", "v2"), "OK");
	EXPECT_STR(CMD(f, "get", "k"), "v2");
	EXPECT_STATUS(CMD(f, "SET", "empty", ""), "OK");
	EXPECT_STR(CMD(f, "GET", "empty"), "");
	EXPECT_STR(CMD(f, "PING", "hi"), "hi");
	EXPECT_STATUS(CMD(f, "PING"), "PONG");
}

static void
case_set_options(struct fx *f)
{
	struct sw_reply *r;

	EXPECT_NIL(CMD(f, "SET", "k", "v", "XX"));
	EXPECT_NIL(CMD(f, "GET", "k"));
	EXPECT_STATUS(CMD(f, "SET", "k", "v", "NX"), "OK");
	EXPECT_NIL(CMD(f, "SET", "k", "w", "NX"));
	EXPECT_STR(CMD(f, "GET", "k"), "v");
	EXPECT_STATUS(CMD(f, "SET", "k", "w", "XX"), "OK");
	EXPECT_STR(CMD(f, "GET", "k"), "w");

	EXPECT_STATUS(CMD(f, "SET", "k", "x", "EX", "100"), "OK");
	r = CMD(f, "TTL", "k");
	assert_int_equal(r->type, SW_REPLY_INT);
	assert_in_range(r->integer, 99, 100);
	EXPECT_STATUS(CMD(f, "SET", "k", "y", "px", "100000", "xx"), "OK");
	assert_in_range(CMD(f, "TTL", "k")->integer, 99, 100);
	/* a plain SET drops the TTL */
	EXPECT_STATUS(CMD(f, "SET", "k", "z"), "OK");
	EXPECT_INT(CMD(f, "TTL", "k"), -1);

	EXPECT_ERR(CMD(f, "SET", "k", "v", "EX", "0"), "ERR invalid expire time");
	EXPECT_ERR(CMD(f, "SET", "k", "v", "EX", "-5"), "ERR invalid expire time");
	EXPECT_ERR(CMD(f, "SET", "k", "v", "EX", "abc"), "ERR value is not an integer");
	EXPECT_ERR(CMD(f, "SET", "k", "v", "EX"), "ERR syntax error");
	EXPECT_ERR(CMD(f, "SET", "k", "v", "NX", "XX"), "ERR syntax error");
	EXPECT_ERR(CMD(f, "SET", "k", "v", "BOGUS"), "ERR syntax error");
	EXPECT_ERR(CMD(f, "SET", "k"), "ERR wrong number of arguments");
	EXPECT_STR(CMD(f, "GET", "k"), "z");
}

static void
case_del_exists(struct fx *f)
{
	CMD(f, "SET", "a", "1");
	CMD(f, "SET", "b", "2");
	CMD(f, "SADD", "s", "m");
	EXPECT_INT(CMD(f, "EXISTS", "a"), 1);
	EXPECT_INT(CMD(f, "EXISTS", "s"), 1);
	EXPECT_INT(CMD(f, "EXISTS", "nope"), 0);
	EXPECT_INT(CMD(f, "DEL", "a", "b", "s", "nope"), 3);
	EXPECT_INT(CMD(f, "EXISTS", "a"), 0);
	EXPECT_INT(CMD(f, "DEL", "a"), 0);
	EXPECT_INT(CMD(f, "DBSIZE"), 0);
}

static void
case_expire_ttl(struct fx *f)
{
	EXPECT_INT(CMD(f, "TTL", "k"), -2);
	EXPECT_INT(CMD(f, "EXPIRE", "k", "10"), 0);
	CMD(f, "SET", "k", "v");
	EXPECT_INT(CMD(f, "TTL", "k"), -1);
	EXPECT_INT(CMD(f, "EXPIRE", "k", "100"), 1);
	assert_in_range(CMD(f, "TTL", "k")->integer, 99, 100);
	EXPECT_ERR(CMD(f, "EXPIRE", "k", "1.5"), "ERR value is not an integer");
	EXPECT_ERR(CMD(f, "EXPIRE", "k", "x"), "ERR value is not an integer");
	/* a TTL in the past deletes at once */
	EXPECT_INT(CMD(f, "EXPIRE", "k", "0"), 1);
	EXPECT_NIL(CMD(f, "GET", "k"));
	EXPECT_INT(CMD(f, "TTL", "k"), -2);
	/* EXPIRE works on every type */
	CMD(f, "HSET", "h", "f", "v");
	EXPECT_INT(CMD(f, "EXPIRE", "h", "50"), 1);
	assert_in_range(CMD(f, "TTL", "h")->integer, 49, 50);
}

static void
case_ttl_expiry(struct fx *f)
{
	EXPECT_STATUS(CMD(f, "SET", "str", "v", "EX", "1"), "OK");
	CMD(f, "SADD", "set", "a");
	CMD(f, "ZADD", "zset", "1", "a");
	CMD(f, "HSET", "hash", "f", "v");
	CMD(f, "SET", "keep", "v");
	EXPECT_INT(CMD(f, "EXPIRE", "set", "1"), 1);
	EXPECT_INT(CMD(f, "EXPIRE", "zset", "1"), 1);
	EXPECT_INT(CMD(f, "EXPIRE", "hash", "1"), 1);
	EXPECT_INT(CMD(f, "TTL", "str"), 1);
	EXPECT_STR(CMD(f, "GET", "str"), "v");
	wait_gone(f, "str", 3000);
	wait_gone(f, "set", 1000);
	wait_gone(f, "zset", 1000);
	wait_gone(f, "hash", 1000);
	EXPECT_NIL(CMD(f, "GET", "str"));
	EXPECT_INT(CMD(f, "TTL", "str"), -2);
	EXPECT_INT(CMD(f, "SCARD", "set"), 0);
	EXPECT_INT(CMD(f, "ZCARD", "zset"), 0);
	EXPECT_NIL(CMD(f, "HGET", "hash", "f"));
	EXPECT_STR(CMD(f, "GET", "keep"), "v");
	/* an expired key can be set again, with no TTL left over */
	EXPECT_STATUS(CMD(f, "SET", "str", "w", "NX"), "OK");
	EXPECT_INT(CMD(f, "TTL", "str"), -1);
}

static int
dbsize_is_1(void *arg)
{
	struct fx *f = arg;

	return CMD(f, "DBSIZE")->integer == 1;
}

/* Keys nobody reads are reclaimed by the active sweep. */
static void
case_active_expiry(struct fx *f)
{
	char key[32];
	int i;

	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "tmp:%d", i);
		EXPECT_STATUS(CMD(f, "SET", key, "v", "EX", "1"), "OK");
	}
	CMD(f, "SET", "keep", "v");
	EXPECT_INT(CMD(f, "DBSIZE"), 201);
	/* the predicate issues DBSIZE itself; the run stops after at most 6 s */
	assert_int_equal(sw_test_run_until_fn(f->base, dbsize_is_1, f, 6000), 0);
	EXPECT_STR(CMD(f, "GET", "keep"), "v");
	/* reusing the store after mass expiry still works */
	EXPECT_STATUS(CMD(f, "SET", "tmp:0", "again"), "OK");
	EXPECT_STR(CMD(f, "GET", "tmp:0"), "again");
}

static void
case_incr(struct fx *f)
{
	EXPECT_INT(CMD(f, "INCR", "n"), 1);
	EXPECT_INT(CMD(f, "INCR", "n"), 2);
	EXPECT_INT(CMD(f, "INCRBY", "n", "10"), 12);
	EXPECT_INT(CMD(f, "INCRBY", "n", "-20"), -8);
	EXPECT_STR(CMD(f, "GET", "n"), "-8");
	EXPECT_INT(CMD(f, "INCRBY", "m", "5"), 5);
	EXPECT_ERR(CMD(f, "INCRBY", "n", "x"), "ERR value is not an integer");
	CMD(f, "SET", "s", "abc");
	EXPECT_ERR(CMD(f, "INCR", "s"), "ERR value is not an integer");
	CMD(f, "SET", "s", " 1");
	EXPECT_ERR(CMD(f, "INCR", "s"), "ERR value is not an integer");
	CMD(f, "SET", "s", "9223372036854775807");
	EXPECT_ERR(CMD(f, "INCR", "s"), "ERR increment or decrement would overflow");
	CMD(f, "SET", "s", "-9223372036854775808");
	EXPECT_ERR(CMD(f, "INCRBY", "s", "-1"), "ERR increment or decrement would overflow");
	/* INCR keeps the TTL */
	CMD(f, "SET", "t", "1", "EX", "100");
	EXPECT_INT(CMD(f, "INCR", "t"), 2);
	assert_in_range(CMD(f, "TTL", "t")->integer, 99, 100);
}

static void
case_wrongtype(struct fx *f)
{
	CMD(f, "SET", "str", "v");
	CMD(f, "SADD", "set", "m");
	CMD(f, "ZADD", "zset", "1", "m");
	CMD(f, "HSET", "hash", "f", "v");

	EXPECT_ERR(CMD(f, "GET", "set"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "INCR", "hash"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "INCRBY", "zset", "2"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "SADD", "str", "m"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "SREM", "hash", "m"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "SMEMBERS", "zset"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "SCARD", "str"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "SISMEMBER", "str", "m"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "ZADD", "set", "1", "m"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "ZREM", "str", "m"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "ZSCORE", "hash", "m"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "ZCARD", "set"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "ZRANGEBYSCORE", "str", "-inf", "+inf"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "ZREMRANGEBYSCORE", "str", "-inf", "+inf"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "HSET", "set", "f", "v"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "HGET", "str", "f"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "HDEL", "zset", "f"), "WRONGTYPE");
	EXPECT_ERR(CMD(f, "HGETALL", "set"), "WRONGTYPE");
	/* the failed writes changed nothing */
	EXPECT_STR(CMD(f, "GET", "str"), "v");
	EXPECT_INT(CMD(f, "SCARD", "set"), 1);
	/* MGET answers nil for a non-string, SET replaces any type */
	EXPECT_ARRAY(CMD(f, "MGET", "set"), 1);
	EXPECT_NIL(CMD(f, "MGET", "set")->element[0]);
	EXPECT_STATUS(CMD(f, "SET", "set", "now a string"), "OK");
	EXPECT_STR(CMD(f, "GET", "set"), "now a string");
	/* unknown commands and bad arity are errors, not crashes */
	EXPECT_ERR(CMD(f, "NOSUCHCMD", "x"), "ERR unknown command");
	EXPECT_ERR(CMD(f, "GET"), "ERR wrong number of arguments");
	EXPECT_ERR(CMD(f, "GET", "a", "b"), "ERR wrong number of arguments");
}

static void
case_sets(struct fx *f)
{
	char buf[256];

	EXPECT_ARRAY(CMD(f, "SMEMBERS", "s"), 0);
	EXPECT_INT(CMD(f, "SCARD", "s"), 0);
	EXPECT_INT(CMD(f, "SADD", "s", "a", "b", "a", "c"), 3);
	EXPECT_INT(CMD(f, "SADD", "s", "c", "d"), 1);
	EXPECT_INT(CMD(f, "SCARD", "s"), 4);
	EXPECT_INT(CMD(f, "SISMEMBER", "s", "b"), 1);
	EXPECT_INT(CMD(f, "SISMEMBER", "s", "z"), 0);
	EXPECT_INT(CMD(f, "SISMEMBER", "nokey", "z"), 0);
	assert_string_equal(sorted_join(CMD(f, "SMEMBERS", "s"), buf, sizeof(buf)), "a,b,c,d");
	EXPECT_INT(CMD(f, "SREM", "s", "a", "z"), 1);
	EXPECT_INT(CMD(f, "SREM", "nokey", "a"), 0);
	assert_string_equal(sorted_join(CMD(f, "SMEMBERS", "s"), buf, sizeof(buf)), "b,c,d");
	/* removing the last member removes the key */
	EXPECT_INT(CMD(f, "SREM", "s", "b", "c", "d"), 3);
	EXPECT_INT(CMD(f, "EXISTS", "s"), 0);
}

static void
case_zsets(struct fx *f)
{
	char buf[256];

	EXPECT_INT(CMD(f, "ZADD", "z", "1", "a", "2", "b", "3", "c"), 3);
	EXPECT_INT(CMD(f, "ZADD", "z", "1.5", "a", "4", "d"), 1);
	EXPECT_INT(CMD(f, "ZCARD", "z"), 4);
	EXPECT_STR(CMD(f, "ZSCORE", "z", "a"), "1.5");
	EXPECT_STR(CMD(f, "ZSCORE", "z", "d"), "4");
	EXPECT_NIL(CMD(f, "ZSCORE", "z", "nope"));
	EXPECT_NIL(CMD(f, "ZSCORE", "nokey", "a"));

	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "-inf", "+inf"), buf, sizeof(buf)),
	    "a,b,c,d");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "2", "3"), buf, sizeof(buf)),
	    "b,c");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "(2", "3"), buf, sizeof(buf)), "c");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "(1.5", "(4"), buf, sizeof(buf)),
	    "b,c");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "-inf", "(2"), buf, sizeof(buf)),
	    "a");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "5", "+inf"), buf, sizeof(buf)),
	    "");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "3", "1"), buf, sizeof(buf)), "");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"), buf,
				sizeof(buf)),
	    "a,1.5,b,2,c,3,d,4");
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "2"),
				buf, sizeof(buf)),
	    "b,c");
	EXPECT_ARRAY(CMD(f, "ZRANGEBYSCORE", "nokey", "-inf", "+inf"), 0);

	/* equal scores order by member bytes */
	EXPECT_INT(CMD(f, "ZADD", "t", "5", "y", "5", "x", "5", "xa", "-inf", "lo", "inf", "hi"),
	    5);
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "t", "-inf", "+inf"), buf, sizeof(buf)),
	    "lo,x,xa,y,hi");
	EXPECT_STR(CMD(f, "ZSCORE", "t", "lo"), "-inf");
	EXPECT_STR(CMD(f, "ZSCORE", "t", "hi"), "inf");

	EXPECT_ERR(CMD(f, "ZRANGEBYSCORE", "z", "a", "b"), "ERR min or max is not a float");
	EXPECT_ERR(CMD(f, "ZRANGEBYSCORE", "z", "1", "(x"), "ERR min or max is not a float");
	EXPECT_ERR(CMD(f, "ZADD", "z", "x", "m"), "ERR value is not a valid float");
	EXPECT_ERR(CMD(f, "ZADD", "z", "nan", "m"), "ERR value is not a valid float");
	EXPECT_ERR(CMD(f, "ZADD", "z", "1", "m", "2"), "ERR syntax error");
	/* a bad pair fails the whole ZADD */
	EXPECT_ERR(CMD(f, "ZADD", "z", "9", "new", "bad", "m"), "ERR value is not a valid float");
	EXPECT_NIL(CMD(f, "ZSCORE", "z", "new"));

	EXPECT_INT(CMD(f, "ZREM", "z", "a", "nope"), 1);
	EXPECT_INT(CMD(f, "ZREMRANGEBYSCORE", "z", "(2", "3"), 1);
	assert_string_equal(join(CMD(f, "ZRANGEBYSCORE", "z", "-inf", "+inf"), buf, sizeof(buf)),
	    "b,d");
	EXPECT_INT(CMD(f, "ZREMRANGEBYSCORE", "z", "-inf", "+inf"), 2);
	EXPECT_INT(CMD(f, "EXISTS", "z"), 0);
	EXPECT_INT(CMD(f, "ZREMRANGEBYSCORE", "z", "-inf", "+inf"), 0);
}

static void
case_hashes(struct fx *f)
{
	char buf[256];

	EXPECT_INT(CMD(f, "HSET", "h", "f1", "v1", "f2", "v2"), 2);
	EXPECT_INT(CMD(f, "HSET", "h", "f1", "V1", "f3", "v3"), 1);
	EXPECT_STR(CMD(f, "HGET", "h", "f1"), "V1");
	EXPECT_NIL(CMD(f, "HGET", "h", "nope"));
	EXPECT_NIL(CMD(f, "HGET", "nokey", "f1"));
	assert_string_equal(sorted_join(CMD(f, "HGETALL", "h"), buf, sizeof(buf)),
	    "V1,f1,f2,f3,v2,v3");
	EXPECT_ARRAY(CMD(f, "HGETALL", "nokey"), 0);
	EXPECT_ERR(CMD(f, "HSET", "h", "f1", "v1", "f2"), "ERR wrong number of arguments");
	EXPECT_INT(CMD(f, "HDEL", "h", "f1", "nope"), 1);
	EXPECT_INT(CMD(f, "HDEL", "nokey", "f1"), 0);
	EXPECT_INT(CMD(f, "HDEL", "h", "f2", "f3"), 2);
	EXPECT_INT(CMD(f, "EXISTS", "h"), 0);
}

static void
case_keys_mget(struct fx *f)
{
	char buf[256];

	CMD(f, "SET", "app:1", "a");
	CMD(f, "SET", "app:2", "b");
	CMD(f, "SADD", "app:set", "m");
	CMD(f, "SET", "other", "c");
	assert_string_equal(sorted_join(CMD(f, "KEYS", "app:*"), buf, sizeof(buf)),
	    "app:1,app:2,app:set");
	assert_string_equal(sorted_join(CMD(f, "KEYS", "*"), buf, sizeof(buf)),
	    "app:1,app:2,app:set,other");
	assert_string_equal(sorted_join(CMD(f, "KEYS", "other"), buf, sizeof(buf)), "other");
	EXPECT_ARRAY(CMD(f, "KEYS", "none:*"), 0);
	assert_string_equal(join(CMD(f, "MGET", "app:1", "nope", "app:set", "other"), buf,
				sizeof(buf)),
	    "a,(nil),(nil),c");
}

static void
case_binary(struct fx *f)
{
	static const char key[] = {'k', '\0', 'e', '\xff', 'y'};
	static const char val[] = {'\0', '\r', '\n', '\xff', '\0', 'x', ' '};
	const char *argv[4];
	size_t lens[4];
	struct sw_reply *r;

	argv[0] = "SET", lens[0] = 3;
	argv[1] = key, lens[1] = sizeof(key);
	argv[2] = val, lens[2] = sizeof(val);
	EXPECT_STATUS(cmd_argv(f, 3, argv, lens), "OK");
	argv[0] = "GET";
	r = cmd_argv(f, 2, argv, lens);
	assert_int_equal(r->type, SW_REPLY_STR);
	assert_int_equal(r->len, sizeof(val));
	assert_memory_equal(r->str, val, sizeof(val));
	/* a key differing after the NUL is another key */
	lens[1] = 1;
	EXPECT_NIL(cmd_argv(f, 2, argv, lens));

	argv[0] = "HSET", lens[0] = 4;
	argv[1] = "h", lens[1] = 1;
	argv[2] = key, lens[2] = sizeof(key);
	argv[3] = val, lens[3] = sizeof(val);
	EXPECT_INT(cmd_argv(f, 4, argv, lens), 1);
	argv[0] = "HGET";
	r = cmd_argv(f, 3, argv, lens);
	assert_int_equal(r->len, sizeof(val));
	assert_memory_equal(r->str, val, sizeof(val));

	argv[0] = "SADD", lens[0] = 4;
	argv[1] = "s";
	argv[2] = val, lens[2] = sizeof(val);
	EXPECT_INT(cmd_argv(f, 3, argv, lens), 1);
	argv[0] = "SMEMBERS", lens[0] = 8;
	r = cmd_argv(f, 2, argv, lens);
	EXPECT_ARRAY(r, 1);
	assert_int_equal(r->element[0]->len, sizeof(val));
	assert_memory_equal(r->element[0]->str, val, sizeof(val));
}

#define LARGE (2 * 1024 * 1024 + 7)
#define NMEMBERS 5000

static void
case_large(struct fx *f)
{
	const char *argv[3] = {"SET", "big", NULL};
	size_t lens[3] = {3, 3, LARGE}, i;
	struct sw_reply *r;
	char *v, *m, **mv;
	const char **av;

	assert_non_null(v = malloc(LARGE));
	for (i = 0; i < LARGE; i++)
		v[i] = (char)(i * 7 + 3);
	argv[2] = v;
	EXPECT_STATUS(cmd_argv(f, 3, argv, lens), "OK");
	argv[0] = "GET";
	r = cmd_argv(f, 2, argv, lens);
	assert_int_equal(r->type, SW_REPLY_STR);
	assert_int_equal(r->len, LARGE);
	assert_memory_equal(r->str, v, LARGE);
	free(v);

	/* one SADD with many members, and a SMEMBERS answering them all */
	assert_non_null(av = calloc(NMEMBERS + 2, sizeof(*av)));
	assert_non_null(mv = calloc(NMEMBERS, sizeof(*mv)));
	assert_non_null(m = malloc(NMEMBERS * 16));
	av[0] = "SADD";
	av[1] = "many";
	for (i = 0; i < NMEMBERS; i++) {
		mv[i] = m + i * 16;
		snprintf(mv[i], 16, "member-%zu", i);
		av[i + 2] = mv[i];
	}
	EXPECT_INT(cmd_argv(f, NMEMBERS + 2, av, NULL), NMEMBERS);
	free(av);
	free(mv);
	free(m);
	EXPECT_INT(CMD(f, "SCARD", "many"), NMEMBERS);
	EXPECT_ARRAY(CMD(f, "SMEMBERS", "many"), NMEMBERS);
}

static struct sw_reply *
txn_run(struct fx *f, struct sw_store_txn *t)
{
	struct call c = {.f = f};

	f->in_call = 1;
	assert_int_equal(sw_store_txn_exec(f->st, t, call_cb, &c), 0);
	f->in_call = 0;
	assert_false(c.done);
	wait_call(f, &c);
	return c.reply;
}

static void
case_txn(struct fx *f)
{
	static const char bin[] = {'a', '\0', 'b'};
	const char *argv[3] = {"SET", "bin", bin};
	size_t lens[3] = {3, 3, sizeof(bin)};
	struct sw_store_txn *t;
	struct sw_reply *r;

	CMD(f, "SET", "k", "old");
	assert_non_null(t = sw_store_txn_new());
	assert_int_equal(sw_store_txn_add(t, "GET", "k", NULL), 0);
	assert_int_equal(sw_store_txn_add(t, "SET", "k", "new", NULL), 0);
	assert_int_equal(sw_store_txn_add(t, "INCR", "n", NULL), 0);
	assert_int_equal(sw_store_txn_add(t, "SADD", "k", "m", NULL), 0);
	assert_int_equal(sw_store_txn_addargv(t, 3, argv, lens), 0);
	assert_int_equal(sw_store_txn_add(t, "SMEMBERS", "nokey", NULL), 0);
	r = txn_run(f, t);
	EXPECT_ARRAY(r, 6);
	/* the GET saw the value from before the SET that follows it */
	EXPECT_STR(r->element[0], "old");
	EXPECT_STATUS(r->element[1], "OK");
	EXPECT_INT(r->element[2], 1);
	/* a runtime error fails only its own command */
	EXPECT_ERR(r->element[3], "WRONGTYPE");
	EXPECT_STATUS(r->element[4], "OK");
	EXPECT_ARRAY(r->element[5], 0);
	EXPECT_STR(CMD(f, "GET", "k"), "new");
	r = CMD(f, "GET", "bin");
	assert_int_equal(r->len, sizeof(bin));
	assert_memory_equal(r->str, bin, sizeof(bin));

	/* a malformed command discards the whole transaction */
	assert_non_null(t = sw_store_txn_new());
	assert_int_equal(sw_store_txn_add(t, "SET", "k", "never", NULL), 0);
	assert_int_equal(sw_store_txn_add(t, "NOSUCHCMD", NULL), 0);
	EXPECT_ERR(txn_run(f, t), "EXECABORT");
	EXPECT_STR(CMD(f, "GET", "k"), "new");

	assert_non_null(t = sw_store_txn_new());
	assert_int_equal(sw_store_txn_add(t, "GET", NULL), 0);
	EXPECT_ERR(txn_run(f, t), "EXECABORT");

	/* empty transaction */
	assert_non_null(t = sw_store_txn_new());
	EXPECT_ARRAY(txn_run(f, t), 0);

	/* bad adds are refused, and poison exec (t is freed either way) */
	assert_non_null(t = sw_store_txn_new());
	assert_int_equal(sw_store_txn_add(t, NULL), -1);
	assert_int_equal(sw_store_txn_addargv(t, 0, argv, NULL), -1);
	assert_int_equal(sw_store_txn_exec(f->st, t, call_cb, NULL), -1);
	sw_store_txn_free(NULL);
	sw_store_txn_free(sw_store_txn_new());
}

static void
nonce_start(struct fx *f, struct call *c, const char *key, unsigned long long expected)
{
	memset(c, 0, sizeof(*c));
	c->f = f;
	f->in_call = 1;
	assert_int_equal(sw_store_nonce_take(f->st, key, expected, call_cb, c), 0);
	f->in_call = 0;
	assert_false(c->done);
}

static struct sw_reply *
nonce(struct fx *f, const char *key, unsigned long long expected)
{
	struct call c;

	nonce_start(f, &c, key, expected);
	wait_call(f, &c);
	return c.reply;
}

static void
case_nonce(struct fx *f)
{
	struct call c[4];
	int i;

	/* absent counts as 0 */
	EXPECT_INT(nonce(f, "nonce:a", 0), 1);
	EXPECT_STR(CMD(f, "GET", "nonce:a"), "1");
	/* wrong: reply is -(current+1) and nothing changes */
	EXPECT_INT(nonce(f, "nonce:a", 0), -2);
	EXPECT_INT(nonce(f, "nonce:a", 5), -2);
	EXPECT_INT(nonce(f, "nonce:a", 1), 1);
	EXPECT_STR(CMD(f, "GET", "nonce:a"), "2");
	EXPECT_INT(nonce(f, "nonce:b", 3), -1);
	EXPECT_INT(CMD(f, "EXISTS", "nonce:b"), 0);

	/* large values compare exactly */
	CMD(f, "SET", "nonce:big", "9007199254740993");
	EXPECT_INT(nonce(f, "nonce:big", 9007199254740992ULL), -9007199254740994LL);
	EXPECT_INT(nonce(f, "nonce:big", 9007199254740993ULL), 1);
	EXPECT_STR(CMD(f, "GET", "nonce:big"), "9007199254740994");

	/* not a number, or not a string */
	CMD(f, "SET", "nonce:bad", "abc");
	EXPECT_ERR(nonce(f, "nonce:bad", 0), "ERR");
	CMD(f, "SADD", "nonce:set", "m");
	EXPECT_ERR(nonce(f, "nonce:set", 0), "");

	/* concurrent takes of the same nonce: exactly the first wins, replies in order */
	nonce_start(f, &c[0], "nonce:c", 0);
	nonce_start(f, &c[1], "nonce:c", 0);
	nonce_start(f, &c[2], "nonce:c", 1);
	nonce_start(f, &c[3], "nonce:c", 1);
	for (i = 0; i < 4; i++)
		wait_call(f, &c[i]);
	EXPECT_INT(c[0].reply, 1);
	EXPECT_INT(c[1].reply, -2);
	EXPECT_INT(c[2].reply, 1);
	EXPECT_INT(c[3].reply, -3);
	for (i = 1; i < 4; i++)
		assert_true(c[i].seq == c[i - 1].seq + 1);
	EXPECT_STR(CMD(f, "GET", "nonce:c"), "2");
}

/* Callbacks come later, once, in the order of the calls. */
static void
case_async_order(struct fx *f)
{
	struct call c[50];
	char val[16];
	int i;

	for (i = 0; i < 50; i++) {
		snprintf(val, sizeof(val), "%d", i);
		memset(&c[i], 0, sizeof(c[i]));
		c[i].f = f;
		f->in_call = 1;
		assert_int_equal(sw_store_cmd(f->st, call_cb, &c[i], i % 2 ? "GET" : "SET", "k",
				     val, NULL),
		    0);
		f->in_call = 0;
	}
	for (i = 0; i < 50; i++)
		assert_false(c[i].done);
	for (i = 0; i < 50; i++)
		wait_call(f, &c[i]);
	for (i = 0; i < 50; i++) {
		if (i > 0)
			assert_int_equal(c[i].seq, c[i - 1].seq + 1);
		/* GET k extra -> wrong arity; SET k i -> OK */
		if (i % 2)
			EXPECT_ERR(c[i].reply, "ERR wrong number of arguments");
		else
			EXPECT_STATUS(c[i].reply, "OK");
	}
	EXPECT_STR(CMD(f, "GET", "k"), "48");
}

struct chain {
	struct fx *f;
	int step;
	int done;
};

static void
chain_cb(const struct sw_reply *r, void *arg)
{
	struct chain *ch = arg;

	assert_false(ch->f->in_call);
	if (ch->step == 0)
		assert_int_equal(r->type, SW_REPLY_STATUS);
	else
		assert_int_equal(r->type, SW_REPLY_INT);
	if (++ch->step == 3) {
		ch->done = 1;
		return;
	}
	/* a call from inside a callback is queued like any other */
	ch->f->in_call = 1;
	assert_int_equal(sw_store_cmd(ch->f->st, chain_cb, ch, "INCR", "ctr", NULL), 0);
	ch->f->in_call = 0;
	assert_false(ch->done);
}

static void
case_calls_from_callback(struct fx *f)
{
	struct chain ch = {.f = f};

	assert_int_equal(sw_store_cmd(f->st, chain_cb, &ch, "SET", "ctr", "10", NULL), 0);
	assert_int_equal(sw_test_run_until(f->base, &ch.done, WAIT_MS), 0);
	EXPECT_STR(CMD(f, "GET", "ctr"), "12");
}

static void
case_bad_calls(struct fx *f)
{
	const char *argv[2] = {"GET", NULL};
	unsigned long long errs;
	struct call c = {.f = f};

	assert_int_equal(sw_store_cmdargv(f->st, call_cb, &c, 0, argv, NULL), -1);
	assert_int_equal(sw_store_cmdargv(f->st, call_cb, &c, 2, argv, NULL), -1);
	assert_int_equal(sw_store_cmdargv(f->st, call_cb, &c, 1, NULL, NULL), -1);
	assert_int_equal(sw_store_cmd(f->st, call_cb, &c, NULL), -1);
	assert_int_equal(sw_store_cmdargv(NULL, call_cb, &c, 1, argv, NULL), -1);
	assert_int_equal(sw_store_nonce_take(f->st, NULL, 0, call_cb, &c), -1);
	sw_test_run_for(f->base, 20);
	assert_false(c.done);

	/* a NULL callback is fine */
	assert_int_equal(sw_store_cmd(f->st, NULL, NULL, "SET", "fire", "forget", NULL), 0);
	EXPECT_STR(CMD(f, "GET", "fire"), "forget");

	/* errors are counted */
	errs = sw_store_errors(f->st);
	EXPECT_ERR(CMD(f, "NOSUCHCMD"), "ERR");
	assert_int_equal(sw_store_errors(f->st), errs + 1);

	assert_int_equal(sw_store_up(f->st), 1);
	assert_int_equal(sw_store_is_redis(f->st), use_redis);

	/* bad URLs are refused */
	assert_null(sw_store_new(f->base, "http://127.0.0.1:6379", "test"));
	assert_null(sw_store_new(f->base, "redis://", "test"));
	assert_null(sw_store_new(f->base, "redis://h:99999", "test"));
	assert_null(sw_store_new(f->base, "redis://h:1/x", "test"));
	sw_store_free(NULL);
}

/* Freeing a store answers what it still holds with DOWN, from inside the free. */
static void
case_free_pending(struct fx *f)
{
	struct call c[3];
	int i;

	for (i = 0; i < 3; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].f = f;
	}
	assert_int_equal(sw_store_cmd(f->st, call_cb, &c[0], "SET", "a", "b", NULL), 0);
	assert_int_equal(sw_store_cmd(f->st, call_cb, &c[1], "GET", "a", NULL), 0);
	assert_int_equal(sw_store_nonce_take(f->st, "n", 0, call_cb, &c[2]), 0);
	sw_store_free(f->st);
	f->st = NULL;
	for (i = 0; i < 3; i++) {
		assert_true(c[i].done);
		EXPECT_DOWN(c[i].reply);
	}
}

static int
store_is_up(void *arg)
{
	return sw_store_up(arg);
}

static int
store_is_down(void *arg)
{
	return !sw_store_up(arg);
}

/* Redis goes away: calls fail fast with DOWN; it comes back: the store reconnects. */
static void
case_down_reconnect(struct fx *f)
{
	struct sw_store_txn *t;
	struct call c, pending;
	unsigned long long errs;
	int port = redis.port;

	EXPECT_STATUS(CMD(f, "SET", "k", "v"), "OK");
	/* a call in flight when the server dies is answered DOWN */
	start_argv(f, &pending, 2, (const char *[]){"GET", "k"}, NULL);
	sw_test_redis_stop(&redis);
	wait_call(f, &pending);
	EXPECT_DOWN(pending.reply);
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_down, f->st, WAIT_MS), 0);

	errs = sw_store_errors(f->st);
	EXPECT_DOWN(CMD(f, "GET", "k"));
	EXPECT_DOWN(CMD(f, "SET", "k", "w"));
	EXPECT_DOWN(nonce(f, "n", 0));
	assert_non_null(t = sw_store_txn_new());
	assert_int_equal(sw_store_txn_add(t, "GET", "k", NULL), 0);
	EXPECT_DOWN(txn_run(f, t));
	assert_true(sw_store_errors(f->st) >= errs + 4);
	/* retries go on while it is down, the store stays down */
	sw_test_run_for(f->base, 400);
	assert_int_equal(sw_store_up(f->st), 0);

	assert_int_equal(sw_test_redis_start(&redis, port), 0);
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_up, f->st, 8000), 0);
	/* a fresh server: the old data is gone, the store works */
	EXPECT_NIL(CMD(f, "GET", "k"));
	EXPECT_STATUS(CMD(f, "SET", "k", "again"), "OK");
	EXPECT_STR(CMD(f, "GET", "k"), "again");
	start_argv(f, &c, 2, (const char *[]){"GET", "k"}, NULL);
	wait_call(f, &c);
	EXPECT_STR(c.reply, "again");
}

/* A store whose redis was never there: down from the start, and says so. */
static void
case_never_up(struct fx *f)
{
	char url[64];
	struct sw_store *st;
	int port;

	assert_true((port = sw_test_free_port()) > 0);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
	assert_non_null(st = sw_store_new(f->base, url, "test"));
	assert_int_equal(sw_store_up(st), 0);
	sw_store_free(f->st);
	f->st = st;
	sw_test_run_for(f->base, 200);
	assert_int_equal(sw_store_up(st), 0);
	EXPECT_DOWN(CMD(f, "GET", "k"));
	EXPECT_DOWN(nonce(f, "n", 1));
}

/* "/db" selects the database, on every (re)connection. */
static void
case_select_db(struct fx *f)
{
	char url[80];
	struct sw_store *db0;

	EXPECT_STATUS(CMD(f, "SET", "where", "db0"), "OK");
	snprintf(url, sizeof(url), "%s/3", redis.url);
	db0 = f->st;
	assert_non_null(f->st = sw_store_new(f->base, url, "test"));
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_up, f->st, WAIT_MS), 0);
	EXPECT_NIL(CMD(f, "GET", "where"));
	EXPECT_STATUS(CMD(f, "SET", "where", "db3"), "OK");
	EXPECT_STR(CMD(f, "GET", "where"), "db3");
	CMD(f, "FLUSHDB");
	sw_store_free(f->st);
	f->st = db0;
	EXPECT_STR(CMD(f, "GET", "where"), "db0");
}

/*
 * A stopped redis (SIGSTOP: a stall or a partition) keeps its TCP
 * connections; the store must still say down within about a second (an
 * unanswered PING) and answer DOWN at once, then come back after SIGCONT.
 */
static void
case_stalled(struct fx *f)
{
	struct timespec t0, t1;
	long long ms;

	EXPECT_STATUS(CMD(f, "SET", "k", "v"), "OK");
	assert_int_equal(kill(redis.pid, SIGSTOP), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_down, f->st, 3000), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 2000);
	EXPECT_DOWN(CMD(f, "GET", "k"));
	/* Reconnecting to a stopped redis opens TCP but gets no answer: still down. */
	sw_test_run_for(f->base, 300);
	assert_int_equal(sw_store_up(f->st), 0);
	assert_int_equal(kill(redis.pid, SIGCONT), 0);
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_up, f->st, 8000), 0);
	EXPECT_STR(CMD(f, "GET", "k"), "v");
}

/* Make st the store CMD talks to; returns the one it talked to before. */
static struct sw_store *
use_store(struct fx *f, struct sw_store *st)
{
	struct sw_store *old = f->st;

	f->st = st;
	return old;
}

static int
count_in_file(const char *path, const char *needle)
{
	char line[1024];
	int n = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(fp);
	return n;
}

/*
 * A redis that takes the connection but refuses commands (here: a password
 * we do not send) is down, stays down without flapping, and logs it once;
 * with the password in the URL (AUTH before SELECT) it is up.
 */
static void
case_auth(struct fx *f)
{
	char url[128], logpath[64];
	struct sw_store *st, *main_st = f->st;

	snprintf(logpath, sizeof(logpath), "/tmp/test_store_auth_%d.log", (int)getpid());
	EXPECT_STATUS(CMD(f, "CONFIG", "SET", "requirepass", "s3cr%t"), "OK");
	assert_int_equal(sw_log_set_file(logpath), 0);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/2", redis.port);
	assert_non_null(st = sw_store_new(f->base, url, "test"));
	sw_test_run_for(f->base, 1500);
	assert_int_equal(sw_store_up(st), 0);
	use_store(f, st);
	EXPECT_DOWN(CMD(f, "GET", "k"));
	use_store(f, main_st);
	sw_store_free(st);
	sw_log_set_file(NULL);
	/* Several tries in 1.5 s, one line: the state never changed. */
	assert_int_equal(count_in_file(logpath, "store down"), 1);
	assert_int_equal(count_in_file(logpath, "store up"), 0);
	unlink(logpath);

	snprintf(url, sizeof(url), "redis://:s3cr%%25t@127.0.0.1:%d/2", redis.port);
	assert_non_null(st = sw_store_new(f->base, url, "test"));
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_up, st, WAIT_MS), 0);
	use_store(f, st);
	EXPECT_STATUS(CMD(f, "SET", "authed", "db2"), "OK");
	use_store(f, main_st);
	sw_store_free(st);
	snprintf(url, sizeof(url), "redis://default:s3cr%%25t@127.0.0.1:%d/2", redis.port);
	assert_non_null(st = sw_store_new(f->base, url, "test"));
	assert_int_equal(sw_test_run_until_fn(f->base, store_is_up, st, WAIT_MS), 0);
	use_store(f, st);
	EXPECT_STR(CMD(f, "GET", "authed"), "db2");
	EXPECT_INT(CMD(f, "DEL", "authed"), 1);
	use_store(f, main_st);
	sw_store_free(st);
	/* A wrong password: down. */
	snprintf(url, sizeof(url), "redis://:nope@127.0.0.1:%d/2", redis.port);
	assert_non_null(st = sw_store_new(f->base, url, "test"));
	sw_test_run_for(f->base, 400);
	assert_int_equal(sw_store_up(st), 0);
	sw_store_free(st);
	EXPECT_STATUS(CMD(f, "CONFIG", "SET", "requirepass", ""), "OK");
	/* URL forms */
	assert_null(sw_store_new(f->base, "redis://nocolon@127.0.0.1:1", "test"));
	assert_null(sw_store_new(f->base, "redis://:bad%zz@127.0.0.1:1", "test"));
}

static const struct scase cases[] = {
	{"get_set", case_get_set, 0},
	{"set_options", case_set_options, 0},
	{"del_exists", case_del_exists, 0},
	{"expire_ttl", case_expire_ttl, 0},
	{"ttl_expiry", case_ttl_expiry, 0},
	{"active_expiry", case_active_expiry, 0},
	{"incr", case_incr, 0},
	{"wrongtype", case_wrongtype, 0},
	{"sets", case_sets, 0},
	{"zsets", case_zsets, 0},
	{"hashes", case_hashes, 0},
	{"keys_mget", case_keys_mget, 0},
	{"binary", case_binary, 0},
	{"large", case_large, 0},
	{"txn", case_txn, 0},
	{"nonce", case_nonce, 0},
	{"async_order", case_async_order, 0},
	{"calls_from_callback", case_calls_from_callback, 0},
	{"bad_calls", case_bad_calls, 0},
	{"free_pending", case_free_pending, 0},
	{"select_db", case_select_db, 1},
	{"never_up", case_never_up, 1},
	{"down_reconnect", case_down_reconnect, 1},
	{"stalled", case_stalled, 1},
	{"auth", case_auth, 1},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static int
setup(void **state)
{
	struct fx *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->c = *state;
	if ((f->base = event_base_new()) == NULL)
		goto fail;
	f->st = sw_store_new(f->base, use_redis ? redis.url : NULL, "test");
	if (f->st == NULL)
		goto fail;
	if (use_redis && sw_test_run_until_fn(f->base, store_is_up, f->st, WAIT_MS) == -1)
		goto fail;
	*state = f;
	/* every case starts from an empty store */
	EXPECT_STATUS(CMD(f, "FLUSHDB"), "OK");
	return 0;
fail:
	sw_store_free(f->st);
	if (f->base != NULL)
		event_base_free(f->base);
	free(f);
	return -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int i;

	sw_store_free(f->st);
	for (i = 0; i < f->nkeep; i++)
		reply_free(f->keep[i]);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
run_case(void **state)
{
	struct fx *f = *state;

	f->c->fn(f);
}

static int
redis_group_setup(void **state)
{
	(void)state;
	return sw_test_redis_start(&redis, 0);
}

static int
redis_group_teardown(void **state)
{
	(void)state;
	sw_test_redis_stop(&redis);
	return 0;
}

int
main(void)
{
	struct CMUnitTest mem[NCASES], rds[NCASES];
	size_t i, nmem = 0, nrds = 0;
	int failed;

	for (i = 0; i < NCASES; i++) {
		struct CMUnitTest t = {
			.name = cases[i].name,
			.test_func = run_case,
			.setup_func = setup,
			.teardown_func = teardown,
			.initial_state = (void *)(uintptr_t)&cases[i],
		};
		if (!cases[i].redis_only)
			mem[nmem++] = t;
		rds[nrds++] = t;
	}
	failed = _cmocka_run_group_tests("store_mem", mem, nmem, NULL, NULL);
	use_redis = 1;
	failed += _cmocka_run_group_tests("store_redis", rds, nrds, redis_group_setup,
	    redis_group_teardown);
	return failed;
}
