/*
 * store: the one storage interface of every service, with two backends that
 * behave the same:
 *   - embedded in-memory (the default when no redis URL is configured), and
 *   - redis, through hiredis's async libevent adapter.
 *
 * The interface is a subset of redis commands, so one sequence of commands
 * means the same on both, and the same test suite runs against both.  The
 * in-memory backend implements exactly the commands listed below, with
 * redis's semantics (replies, TTLs, errors on wrong types).
 *
 *   GET k                 SET k v [EX s] [NX|XX]   DEL k [k…]   EXISTS k
 *   EXPIRE k s            TTL k                    INCR k       INCRBY k n
 *   SADD k m [m…]         SREM k m [m…]            SMEMBERS k   SCARD k   SISMEMBER k m
 *   ZADD k score m [score m…]  ZREM k m [m…]  ZSCORE k m  ZCARD k
 *   ZRANGEBYSCORE k min max     ZREMRANGEBYSCORE k min max   (min/max: number, -inf, +inf,
 *                                                              "(" exclusive prefix)
 *   HSET k f v [f v…]     HGET k f   HDEL k f [f…]  HGETALL k
 *   KEYS pattern          (only "prefix*" patterns; for tests and rebuilds, never per request)
 *   MGET k [k…]
 *   ZRANGEBYSCORE also takes [WITHSCORES] [LIMIT offset count]; SET also PX ms.
 *   PING, DBSIZE, FLUSHDB (for health checks and tests)
 *
 * Every call is asynchronous: the callback runs later from the event loop,
 * never inside the call (both backends), exactly once, unless the store is
 * freed first (then pending callbacks are called with SW_REPLY_DOWN).
 * When redis is unreachable, calls fail fast with SW_REPLY_DOWN and the
 * backend reconnects with backoff (100 ms doubling to 5 s); sw_store_up()
 * says whether it is connected, for /health.
 *
 * A callback may issue further calls (they are queued as usual) but must not
 * free the store; free it from outside any store callback.
 */
#ifndef SW_STORE_H
#define SW_STORE_H

#include <stddef.h>

struct event_base;
struct sw_store;

enum sw_reply_type {
	SW_REPLY_DOWN = 0, /* store unreachable: answer 503 */
	SW_REPLY_ERROR,    /* the command failed (wrong type, syntax): a bug */
	SW_REPLY_NIL,
	SW_REPLY_INT,
	SW_REPLY_STR,      /* bulk string */
	SW_REPLY_STATUS,   /* "OK", "QUEUED" */
	SW_REPLY_ARRAY,
};

struct sw_reply {
	enum sw_reply_type type;
	long long integer;
	const char *str; /* STR, STATUS, ERROR, DOWN: NUL-terminated, len bytes */
	size_t len;
	size_t elements;
	struct sw_reply **element;
};

/* reply is only valid during the callback. */
typedef void sw_store_cb(const struct sw_reply *reply, void *arg);

/*
 * url: NULL or "" for the in-memory store, else "redis://host:port[/db]".
 * svc names the service in logs.  Returns NULL (logged) on a bad URL.
 */
struct sw_store *sw_store_new(struct event_base *base, const char *url, const char *svc);
void sw_store_free(struct sw_store *st);
int sw_store_up(const struct sw_store *st);
int sw_store_is_redis(const struct sw_store *st);
/* Errors (DOWN or ERROR replies) seen so far, for /metrics. */
unsigned long long sw_store_errors(const struct sw_store *st);

/*
 * One command.  argv[i] is argvlen[i] bytes (argvlen NULL: all NUL-terminated).
 * Returns 0 when queued (cb will run), -1 on a bad call (cb will not run).
 * cb may be NULL when the reply does not matter.
 */
int sw_store_cmdargv(struct sw_store *st, sw_store_cb *cb, void *arg, int argc,
    const char **argv, const size_t *argvlen);
/* NUL-terminated strings ending with NULL: sw_store_cmd(st, cb, arg, "GET", key, NULL). */
int sw_store_cmd(struct sw_store *st, sw_store_cb *cb, void *arg, ...)
    __attribute__((sentinel));

/*
 * A transaction: ncmd commands applied atomically (redis MULTI/EXEC; the
 * in-memory backend runs them back to back).  The reply is an ARRAY of the
 * commands' replies, or DOWN.
 */
struct sw_store_txn;
struct sw_store_txn *sw_store_txn_new(void);
/* Same argument conventions as sw_store_cmdargv / sw_store_cmd; -1 on a bad call. */
int sw_store_txn_addargv(struct sw_store_txn *t, int argc, const char **argv,
    const size_t *argvlen);
int sw_store_txn_add(struct sw_store_txn *t, ...) __attribute__((sentinel));
/*
 * Takes ownership of t (freed whatever happens).  -1 (cb will not run) if an
 * add to t failed, so a transaction never runs with a command missing.
 */
int sw_store_txn_exec(struct sw_store *st, struct sw_store_txn *t, sw_store_cb *cb, void *arg);
void sw_store_txn_free(struct sw_store_txn *t);

/*
 * Whether a failed reply means the store cannot serve just now (DOWN, or a
 * redis error of a server that is loading, read-only, busy, out of memory
 * or shutting down) rather than a bad command: the first is answered 503,
 * the second 500.
 */
int sw_store_unavailable(const struct sw_reply *r);

/*
 * Nonce check for httpauth: if the integer at key (0 when absent) equals
 * expected, set it to expected+1 and reply INT 1; else reply INT -(current+1)
 * (so current = -reply-1).  Atomic across replicas sharing one redis (a Lua
 * script there).
 */
int sw_store_nonce_take(struct sw_store *st, const char *key, unsigned long long expected,
    sw_store_cb *cb, void *arg);

#endif
