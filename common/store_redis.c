/*
 * store_redis: the store on a redis server, through hiredis's async API and
 * its libevent adapter.
 *
 * The one idea: the store is either up, and every call goes straight into
 * hiredis's output buffer, or it is not, and every call is answered DOWN at
 * once (from an event, never inside the call) while a timer retries the
 * connection with backoff, 100 ms doubling to 5 s.  Nothing is queued for a
 * redis that may never come back: callers answer 503 and retry.
 *
 * "Up" means redis answers, not that a TCP connection opened: a new
 * connection sends AUTH (when the URL has a password), SELECT and PING, and
 * the store is up only once all of them succeeded.  A redis that accepts
 * connections but refuses commands (protected mode, a wrong password, ACL)
 * therefore stays down, the backoff keeps growing, and there is one log line
 * per change of state, not one per try.  While up, a PING goes out every
 * half second; one not answered within 1 s (a stopped or partitioned redis)
 * takes the store down at once, so /health and every request say 503 within
 * a second instead of waiting on a reply that is not coming.
 *
 * hiredis calls every pending callback with a NULL reply when a connection
 * drops (or is freed); that NULL becomes DOWN.  The watchdog timer carries
 * the deadlines, since hiredis 0.14 has no timeouts of its own.
 *
 * Host names are resolved by hiredis with a blocking getaddrinfo; a
 * deployment names redis by address or by a name its resolver answers
 * locally (/etc/hosts, the container runtime's DNS).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "store_int.h"

#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 3000  /* TCP connect, AUTH, SELECT and the first PING */
#define REPLY_TIMEOUT_MS   10000
#define PING_EVERY_MS      500
#define PING_TIMEOUT_MS    1000
#define WATCHDOG_MS        100
#define FREE_REQS          1024

/*
 * Compare-and-increment in one step on the server, so replicas sharing a
 * redis cannot both take the same nonce.  The value is compared as a string
 * (Lua numbers are doubles and would round large nonces); for the same
 * reason a mismatch returns the current value as a string and the reply
 * -(current+1) is computed here.
 */
static const char NONCE_LUA[] =
    "local cur = redis.call('GET', KEYS[1]) or '0'\n"
    "if string.find(cur, '^%d+$') == nil then\n"
    "  return redis.error_reply('ERR nonce is not a non-negative integer')\n"
    "end\n"
    "if cur == ARGV[1] then\n"
    "  redis.call('INCR', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "return cur\n";

struct rreq {
	struct rds *r;
	sw_store_cb *cb;
	void *arg;
	int nonce; /* a STR reply is the current nonce */
	struct rreq *next; /* free list */
};

struct rdown {
	sw_store_cb *cb;
	void *arg;
};

struct rdownq {
	struct rdown *v;
	size_t n, cap;
};

struct rds {
	struct sw_store *st;
	char *host;
	int port;
	int db;
	char *user, *pass;     /* AUTH [user] pass, NULL when the URL has none */
	redisAsyncContext *ac;
	int connected;         /* up: the handshake's commands all succeeded */
	int hello_left;        /* handshake replies still to come */
	int warned; /* the current outage was logged */
	int freeing;
	struct sw_backoff backoff;
	long long since_ms;    /* connect started, or last reply */
	long long ping_ms;     /* last PING sent */
	int ping_out;          /* a PING is waiting for its answer */
	unsigned long inflight; /* requests waiting for a reply */
	struct event *ev_retry;
	struct event *ev_watchdog;
	struct event *ev_down;
	struct rdownq down, downrun;
	struct rreq *freereqs;
	size_t nfree;
	char *fmt;             /* the command being formatted (rds_format) */
	size_t fmtcap;
	/* What requests get while down: "store unavailable" and the last cause. */
	struct sw_reply down_reply;
	char down_str[192];
};

static void rds_connect(struct rds *r);

/* The answer of a request the store cannot serve, naming the outage's cause when known. */
static const struct sw_reply *
rds_down_reply(struct rds *r)
{
	return r->down_reply.str != NULL ? &r->down_reply : &sw_store_reply_down;
}


static struct rreq *
rreq_new(struct rds *r, sw_store_cb *cb, void *arg)
{
	struct rreq *q;

	if ((q = r->freereqs) != NULL) {
		r->freereqs = q->next;
		r->nfree--;
	} else if ((q = malloc(sizeof(*q))) == NULL) {
		return NULL;
	}
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->nonce = 0;
	q->next = NULL;
	return q;
}

static void
rreq_free(struct rds *r, struct rreq *q)
{
	if (r->nfree >= FREE_REQS || r->freeing) {
		free(q);
		return;
	}
	q->next = r->freereqs;
	r->freereqs = q;
	r->nfree++;
}

/* DOWN answers, always from ev_down. */
static int
rds_defer_down(struct rds *r, sw_store_cb *cb, void *arg)
{
	struct rdown *nv;
	size_t cap;

	if (r->down.n == r->down.cap) {
		cap = r->down.cap ? r->down.cap * 2 : 16;
		if ((nv = realloc(r->down.v, cap * sizeof(*nv))) == NULL)
			return -1;
		r->down.v = nv;
		r->down.cap = cap;
	}
	r->down.v[r->down.n].cb = cb;
	r->down.v[r->down.n].arg = arg;
	if (r->down.n++ == 0)
		event_active(r->ev_down, EV_TIMEOUT, 0);
	return 0;
}

static void
rds_run_down(evutil_socket_t fd, short what, void *arg)
{
	struct rds *r = arg;
	struct rdownq tmp;
	size_t i;

	(void)fd;
	(void)what;
	tmp = r->downrun;
	r->downrun = r->down;
	r->down = tmp;
	r->down.n = 0;
	for (i = 0; i < r->downrun.n; i++)
		sw_store_deliver(r->st, r->downrun.v[i].cb, r->downrun.v[i].arg,
		    rds_down_reply(r));
	r->downrun.n = 0;
}

/*
 * Replies are built by hiredis's reader straight into sw_reply nodes
 * (redisReplyObjectFunctions), all the nodes and strings of one reply in
 * one arena: usually one malloc per reply, where hiredis's own objects cost
 * a malloc and a copy per element, a free of each, and then a second tree.
 *
 * A node starts with a redisReply whose type, str and len are kept right,
 * because hiredis's async layer itself looks at a reply nobody waits for
 * (the error of a server refusing the connection) and the handshake
 * callbacks here read those fields too; the rest is the sw_reply handed to
 * the caller.
 */
struct rchunk {
	struct rchunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct rarena {
	struct rchunk *cur;  /* the chunk being filled; older ones follow cur->next */
};

struct rnode {
	redisReply hr;
	struct sw_reply r;
	struct rarena *arena;
};

#define ARENA_ALIGN     sizeof(max_align_t)
#define ARENA_FIRST_MIN 512
#define ARENA_GUESS_MAX 65536 /* bytes guessed for the strings of the first chunk */

static size_t
arena_round(size_t n)
{
	return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

static struct rchunk *
chunk_new(size_t cap)
{
	struct rchunk *c;

	if (cap > SIZE_MAX - sizeof(*c) || (c = malloc(sizeof(*c) + cap)) == NULL)
		return NULL;
	c->next = NULL;
	c->used = 0;
	c->cap = cap;
	return c;
}

static void *
arena_alloc(struct rarena *a, size_t n)
{
	struct rchunk *c = a->cur;
	void *p;

	if (n > SIZE_MAX / 4)
		return NULL;
	n = arena_round(n);
	if (c->cap - c->used < n) {
		if ((c = chunk_new(n > c->cap * 2 ? n : c->cap * 2)) == NULL)
			return NULL;
		c->next = a->cur;
		a->cur = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

/*
 * A node of task's reply, followed by extra bytes: the root opens the
 * arena, sized for what the reader holds of the reply already (its strings
 * are at most that), the others come from their root's arena.
 */
static struct rnode *
node_new(const redisReadTask *task, size_t extra, size_t guess)
{
	struct rnode *parent = NULL;
	struct rchunk *c;
	struct rarena *a;
	struct rnode *n;
	size_t head = arena_round(sizeof(*a)) + arena_round(sizeof(*n));

	if (task->parent == NULL) {
		if (extra > SIZE_MAX / 4 || guess > SIZE_MAX / 4)
			return NULL;
		if ((c = chunk_new(head + arena_round(extra) + guess)) == NULL)
			return NULL;
		a = (struct rarena *)(void *)c->data;
		a->cur = c;
		c->used = head + arena_round(extra);
		n = (struct rnode *)(void *)((char *)c->data + arena_round(sizeof(*a)));
	} else {
		parent = task->parent->obj;
		a = parent->arena;
		if ((n = arena_alloc(a, sizeof(*n) + extra)) == NULL)
			return NULL;
	}
	memset(n, 0, sizeof(*n));
	n->arena = a;
	if (parent != NULL)
		parent->r.element[task->idx] = &n->r;
	return n;
}

/* The reply bytes the reader holds past the current item, for the first chunk's size. */
static size_t
reader_ahead(const redisReadTask *task)
{
	const struct rds *r = task->privdata;
	const redisReader *rd;

	if (r == NULL || r->ac == NULL || (rd = r->ac->c.reader) == NULL || rd->pos > rd->len)
		return 0;
	return rd->len - rd->pos;
}

static void *
rn_string(const redisReadTask *task, char *str, size_t len)
{
	struct rnode *n;
	char *s;

	if (len > SIZE_MAX / 4 || (n = node_new(task, len + 1, 0)) == NULL)
		return NULL;
	s = (char *)(n + 1);
	memcpy(s, str, len);
	s[len] = '\0';
	n->hr.type = task->type;
	n->hr.str = s;
	n->hr.len = len;
	n->r.type = task->type == REDIS_REPLY_STRING ? SW_REPLY_STR
	    : task->type == REDIS_REPLY_STATUS       ? SW_REPLY_STATUS
						     : SW_REPLY_ERROR;
	n->r.str = s;
	n->r.len = len;
	return n;
}

static void *
rn_array(const redisReadTask *task, int elements)
{
	size_t ne = elements > 0 ? (size_t)elements : 0, guess = 0;
	struct rnode *n;

	if (ne > SIZE_MAX / 4 / (sizeof(struct rnode) + ARENA_ALIGN + sizeof(void *)))
		return NULL;
	if (task->parent == NULL) {
		/* the nodes, their padding, and the strings the reader already holds */
		guess = reader_ahead(task);
		if (guess > ARENA_GUESS_MAX)
			guess = ARENA_GUESS_MAX;
		guess += ne * (arena_round(sizeof(struct rnode)) + ARENA_ALIGN) + ARENA_FIRST_MIN;
	}
	if ((n = node_new(task, ne * sizeof(struct sw_reply *), guess)) == NULL)
		return NULL;
	n->hr.type = REDIS_REPLY_ARRAY;
	n->hr.elements = ne;
	n->r.type = SW_REPLY_ARRAY;
	n->r.elements = ne;
	if (ne > 0) {
		n->r.element = (struct sw_reply **)(void *)(n + 1);
		/* every element is filled in by its own create call before the reply is done */
		memset(n->r.element, 0, ne * sizeof(struct sw_reply *));
	}
	return n;
}

static void *
rn_integer(const redisReadTask *task, long long v)
{
	struct rnode *n = node_new(task, 0, 0);

	if (n == NULL)
		return NULL;
	n->hr.type = REDIS_REPLY_INTEGER;
	n->hr.integer = v;
	n->r.type = SW_REPLY_INT;
	n->r.integer = v;
	return n;
}

static void *
rn_nil(const redisReadTask *task)
{
	struct rnode *n = node_new(task, 0, 0);

	if (n == NULL)
		return NULL;
	n->hr.type = REDIS_REPLY_NIL;
	n->r.type = SW_REPLY_NIL;
	return n;
}

/* hiredis frees only roots (a whole reply, or the part of one read before an error). */
static void
rn_free(void *obj)
{
	struct rnode *n = obj;
	struct rchunk *c, *next;

	if (n == NULL)
		return;
	/* the first chunk, which holds the arena itself, is the last of the list */
	for (c = n->arena->cur; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
}

static redisReplyObjectFunctions rds_reply_fns = {
	.createString = rn_string,
	.createArray = rn_array,
	.createInteger = rn_integer,
	.createNil = rn_nil,
	.freeObject = rn_free,
};

/* The script's "current" string becomes INT -(current+1), as in store_mem. */
static void
rds_nonce_reply(struct sw_reply *out)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(out->str, &end, 10);
	memset(out, 0, sizeof(*out));
	if (errno != 0 || *end != '\0' || v < 0) {
		out->type = SW_REPLY_ERROR;
		out->str = "ERR nonce is not a non-negative integer";
		out->len = strlen(out->str);
		return;
	}
	out->type = SW_REPLY_INT;
	out->integer = -v - 1;
}

static void
rds_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rreq *q = privdata;
	struct rds *r = q->r;
	const struct rnode *rn = reply;
	struct sw_reply out;

	(void)ac;
	r->inflight--;
	if (rn == NULL) {
		sw_store_deliver(r->st, q->cb, q->arg, rds_down_reply(r));
		goto done;
	}
	r->since_ms = sw_mono_ms();
	out = rn->r;
	if (q->nonce && out.type == SW_REPLY_STR)
		rds_nonce_reply(&out);
	sw_store_deliver(r->st, q->cb, q->arg, &out);
done:
	rreq_free(r, q);
}

/* Connection management. */

static void
rds_schedule(struct rds *r)
{
	if (r->freeing || evtimer_pending(r->ev_retry, NULL))
		return;
	sw_timer_in(r->ev_retry, sw_backoff_next(&r->backoff));
}

/* The connection is gone (ac is being or has been freed by hiredis). */
static void
rds_lost(struct rds *r, const char *why)
{
	char buf[128];

	r->ac = NULL;
	r->connected = 0;
	r->hello_left = 0;
	r->ping_out = 0;
	if (r->freeing)
		return;
	snprintf(r->down_str, sizeof(r->down_str), "%s: %s", sw_store_reply_down.str, why);
	r->down_reply.type = SW_REPLY_DOWN;
	r->down_reply.str = r->down_str;
	r->down_reply.len = strlen(r->down_str);
	if (!r->warned) {
		sw_log_warn(r->st->svc, "store down", "host=%s port=%d err=%s", r->host, r->port,
		    sw_log_q(buf, sizeof(buf), why));
		r->warned = 1;
	}
	rds_schedule(r);
}

/* A reply of the handshake or of a PING: an error reply is a refusal. */
static int
rds_refused(struct rds *r, redisAsyncContext *ac, const redisReply *rr)
{
	char why[160];

	if (rr == NULL || ac != r->ac)
		return 1; /* the connection went; rds_lost has run */
	if (rr->type != REDIS_REPLY_ERROR)
		return 0;
	snprintf(why, sizeof(why), "%.*s", (int)(rr->len < 150 ? rr->len : 150), rr->str);
	rds_lost(r, why);
	/* From inside a callback hiredis frees it once the callback returns. */
	redisAsyncFree(ac);
	return 1;
}

static void
rds_on_hello(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds *r = privdata;

	if (rds_refused(r, ac, reply) || --r->hello_left > 0)
		return;
	r->connected = 1;
	r->warned = 0;
	r->ping_ms = r->since_ms = sw_mono_ms();
	sw_backoff_reset(&r->backoff);
	sw_log_info(r->st->svc, "store up", "host=%s port=%d db=%d", r->host, r->port, r->db);
}

static void
rds_on_ping(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds *r = privdata;

	if (rds_refused(r, ac, reply))
		return;
	r->ping_out = 0;
}

static void
rds_hello(struct rds *r, redisAsyncContext *ac, int argc, const char **argv)
{
	if (redisAsyncCommandArgv(ac, rds_on_hello, r, argc, argv, NULL) == REDIS_OK)
		r->hello_left++;
}

static void
rds_on_connect(const redisAsyncContext *ac, int status)
{
	struct rds *r = ac->data;

	if (r == NULL || ac != r->ac)
		return;
	/* hiredis frees ac after this callback */
	if (status != REDIS_OK)
		rds_lost(r, ac->errstr[0] ? ac->errstr : "connect failed");
}

/*
 * Queued as the connection opens, ahead of any command: AUTH before SELECT
 * (a protected redis refuses SELECT), PING last.
 */
static void
rds_hello_all(struct rds *r)
{
	char db[16];

	snprintf(db, sizeof(db), "%d", r->db);
	if (r->pass != NULL && r->user != NULL)
		rds_hello(r, r->ac, 3, (const char *[]){"AUTH", r->user, r->pass});
	else if (r->pass != NULL)
		rds_hello(r, r->ac, 2, (const char *[]){"AUTH", r->pass});
	if (r->db != 0)
		rds_hello(r, r->ac, 2, (const char *[]){"SELECT", db});
	rds_hello(r, r->ac, 1, (const char *[]){"PING"});
}

/*
 * Commands go out while up, and also during the very first handshake (no
 * outage declared yet): they are pipelined behind AUTH/SELECT/PING, so a
 * service starting with its store is not refused for the one round trip
 * the handshake takes.  If the handshake fails they are answered DOWN.
 */
static int
rds_accepts(const struct rds *r)
{
	return r->connected || (r->ac != NULL && !r->warned && r->hello_left > 0);
}

static void
rds_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rds *r = ac->data;

	(void)status;
	if (r == NULL || ac != r->ac)
		return;
	rds_lost(r, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void
rds_connect(struct rds *r)
{
	redisAsyncContext *ac;

	ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL || ac->err) {
		rds_lost(r, ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		return;
	}
	ac->data = r;
	ac->c.reader->fn = &rds_reply_fns;
	ac->c.reader->privdata = r;
	if (redisLibeventAttach(ac, r->st->base) != REDIS_OK) {
		redisAsyncFree(ac);
		rds_lost(r, "libevent attach failed");
		return;
	}
	r->ac = ac;
	r->inflight = 0;
	r->hello_left = 0;
	r->since_ms = sw_mono_ms();
	redisAsyncSetConnectCallback(ac, rds_on_connect);
	redisAsyncSetDisconnectCallback(ac, rds_on_disconnect);
	rds_hello_all(r);
}

static void
rds_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rds_connect(arg);
}

/* Drops a connection that does not open, or that holds requests without answering. */
static void
rds_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct rds *r = arg;
	redisAsyncContext *ac = r->ac;
	long long idle;

	(void)fd;
	(void)what;
	const char *why = NULL;
	long long now = sw_mono_ms();

	if (ac == NULL)
		return;
	idle = now - r->since_ms;
	if (!r->connected && idle > CONNECT_TIMEOUT_MS)
		why = "no answer to the handshake";
	else if (r->connected && r->inflight > 0 && idle > REPLY_TIMEOUT_MS)
		why = "reply timeout";
	else if (r->connected && r->ping_out && now - r->ping_ms > PING_TIMEOUT_MS)
		why = "no answer to PING within 1 s";
	if (why != NULL) {
		rds_lost(r, why);
		/* ac no longer matches r->ac, so its callbacks are ignored; requests get DOWN */
		redisAsyncFree(ac);
		return;
	}
	if (r->connected && !r->ping_out && now - r->ping_ms >= PING_EVERY_MS &&
	    redisAsyncCommand(ac, rds_on_ping, r, "PING") == REDIS_OK) {
		r->ping_out = 1;
		r->ping_ms = now;
	}
}

/* Backend entry points. */

/* Decimal digits of v at p; their count. */
static size_t
fmt_uint(char *p, size_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* The most bytes argv can take in RESP, or 0 when too large. */
static size_t
fmt_size(int argc, const char **argv, const size_t *argvlen)
{
	size_t total = 1 + 20 + 2, len;
	int i;

	for (i = 0; i < argc; i++) {
		len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
		if (len > SIZE_MAX / 4 - total)
			return 0;
		total += 1 + 20 + 2 + len + 2;
	}
	return total + 1; /* the NUL after the command (rds_format) */
}

/* r->fmt holds at least size bytes: 0, or -1 on OOM. */
static int
fmt_reserve(struct rds *r, size_t size)
{
	char *p;

	if (size == 0)
		return -1;
	if (size <= r->fmtcap)
		return 0;
	if ((p = realloc(r->fmt, size)) == NULL)
		return -1;
	r->fmt = p;
	r->fmtcap = size;
	return 0;
}

/*
 * The command in RESP, into r->fmt (reused, grown to fit): its size is
 * bounded first, so the bytes are written once, with no per-argument
 * append as hiredis's own formatter does.  The length, or -1 on OOM.
 */
static long long
rds_format(struct rds *r, int argc, const char **argv, const size_t *argvlen)
{
	size_t len, off = 0;
	char *p;
	int i;

	if (fmt_reserve(r, fmt_size(argc, argv, argvlen)) == -1)
		return -1;
	p = r->fmt;
	p[off++] = '*';
	off += fmt_uint(p + off, (size_t)argc);
	p[off++] = '\r';
	p[off++] = '\n';
	for (i = 0; i < argc; i++) {
		len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
		p[off++] = '$';
		off += fmt_uint(p + off, len);
		p[off++] = '\r';
		p[off++] = '\n';
		memcpy(p + off, argv[i], len);
		off += len;
		p[off++] = '\r';
		p[off++] = '\n';
	}
	/* hiredis reads one byte past a command's first argument, as in its own sds */
	p[off] = '\0';
	return (long long)off;
}

/* One command to hiredis's output buffer; REDIS_OK or REDIS_ERR as hiredis. */
static int
rds_queue(struct rds *r, redisCallbackFn *fn, void *priv, int argc, const char **argv,
    const size_t *argvlen)
{
	long long len = rds_format(r, argc, argv, argvlen);

	if (len == -1)
		return REDIS_ERR;
	return redisAsyncFormattedCommand(r->ac, fn, priv, r->fmt, (size_t)len);
}


static int
rds_send(struct sw_store *st, sw_store_cb *cb, void *arg, int nonce, int argc,
    const char **argv, const size_t *argvlen)
{
	struct rds *r = st->impl;
	struct rreq *q;

	if (!rds_accepts(r))
		return rds_defer_down(r, cb, arg);
	if ((q = rreq_new(r, cb, arg)) == NULL)
		return -1;
	q->nonce = nonce;
	if (rds_queue(r, rds_on_reply, q, argc, argv, argvlen) != REDIS_OK) {
		rreq_free(r, q);
		return rds_defer_down(r, cb, arg);
	}
	if (r->inflight++ == 0)
		r->since_ms = sw_mono_ms();
	return 0;
}

static int
rds_cmd(struct sw_store *st, sw_store_cb *cb, void *arg, int argc, const char **argv,
    const size_t *argvlen)
{
	return rds_send(st, cb, arg, 0, argc, argv, argvlen);
}

/* MULTI, the commands, EXEC in one write; only EXEC's reply is kept. */
static int
rds_txn(struct sw_store *st, const struct sw_store_txn *t, sw_store_cb *cb, void *arg)
{
	static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
	struct rds *r = st->impl;
	struct rreq *q;
	int i;

	if (!rds_accepts(r))
		return rds_defer_down(r, cb, arg);
	/* Room for the largest command first: once MULTI is out, nothing may fail on OOM. */
	for (i = 0; i < t->ncmd; i++)
		if (fmt_reserve(r, fmt_size(t->cmd[i].argc, t->cmd[i].argv,
		    t->cmd[i].argvlen)) == -1)
			return -1;
	if ((q = rreq_new(r, cb, arg)) == NULL)
		return -1;
	if (rds_queue(r, NULL, NULL, 1, multi, NULL) != REDIS_OK)
		goto down;
	for (i = 0; i < t->ncmd; i++) {
		if (rds_queue(r, NULL, NULL, t->cmd[i].argc, t->cmd[i].argv,
			t->cmd[i].argvlen) != REDIS_OK)
			goto down;
	}
	if (rds_queue(r, rds_on_reply, q, 1, exec, NULL) != REDIS_OK)
		goto down;
	if (r->inflight++ == 0)
		r->since_ms = sw_mono_ms();
	return 0;
down:
	/* only a closing context refuses a command, and it takes the MULTI with it */
	rreq_free(r, q);
	return rds_defer_down(r, cb, arg);
}

static int
rds_nonce(struct sw_store *st, const char *key, unsigned long long expected, sw_store_cb *cb,
    void *arg)
{
	char num[24];
	const char *argv[5] = {"EVAL", NONCE_LUA, "1", key, num};

	snprintf(num, sizeof(num), "%llu", expected);
	return rds_send(st, cb, arg, 1, 5, argv, NULL);
}

static int
rds_up(const struct sw_store *st)
{
	const struct rds *r = st->impl;

	return r->connected;
}

static void
rds_free(struct sw_store *st)
{
	struct rds *r = st->impl;
	struct rreq *q;

	if (r == NULL)
		return;
	r->freeing = 1;
	/* hiredis answers every pending request with NULL, which becomes DOWN */
	if (r->ac != NULL)
		redisAsyncFree(r->ac);
	r->ac = NULL;
	if (r->ev_down != NULL)
		rds_run_down(-1, 0, r);
	if (r->ev_retry != NULL)
		event_free(r->ev_retry);
	if (r->ev_watchdog != NULL)
		event_free(r->ev_watchdog);
	if (r->ev_down != NULL)
		event_free(r->ev_down);
	while ((q = r->freereqs) != NULL) {
		r->freereqs = q->next;
		free(q);
	}
	free(r->down.v);
	free(r->downrun.v);
	free(r->fmt);
	free(r->host);
	free(r->user);
	if (r->pass != NULL)
		sodium_memzero(r->pass, strlen(r->pass));
	free(r->pass);
	free(r);
	st->impl = NULL;
}

static const struct sw_store_ops rds_ops = {
	.cmd = rds_cmd,
	.txn = rds_txn,
	.nonce = rds_nonce,
	.up = rds_up,
	.free = rds_free,
};

/* Percent-decoded copy of n bytes; NULL on a bad escape or an encoded NUL. */
static char *
pct_dup(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned int c;

		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= n || sscanf(s + i + 1, "%2x", &c) != 1 || c == 0 ||
		    !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) {
			free(out);
			return NULL;
		}
		*o++ = (char)c;
		i += 2;
	}
	*o = '\0';
	return out;
}

/*
 * "redis://[[user]:password@]host[:port][/db]", host may be "[v6addr]",
 * user and password percent-encoded.
 */
static int
rds_parse_url(struct rds *r, const char *url)
{
	const char *p, *hend, *rest, *at, *colon;
	char *end;
	long v;

	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	if ((at = strrchr(p, '@')) != NULL) {
		if ((colon = memchr(p, ':', (size_t)(at - p))) == NULL)
			return -1;
		if (colon > p && (r->user = pct_dup(p, (size_t)(colon - p))) == NULL)
			return -1;
		if ((r->pass = pct_dup(colon + 1, (size_t)(at - colon - 1))) == NULL)
			return -1;
		p = at + 1;
	}
	if (*p == '[') {
		if ((hend = strchr(p, ']')) == NULL)
			return -1;
		p++;
		rest = hend + 1;
	} else {
		hend = p + strcspn(p, ":/");
		rest = hend;
	}
	if (hend == p)
		return -1;
	if ((r->host = strndup(p, (size_t)(hend - p))) == NULL)
		return -1;
	r->port = 6379;
	if (*rest == ':') {
		errno = 0;
		v = strtol(rest + 1, &end, 10);
		if (errno != 0 || end == rest + 1 || v < 1 || v > 65535)
			return -1;
		r->port = (int)v;
		rest = end;
	}
	if (*rest == '/' && rest[1] != '\0') {
		errno = 0;
		v = strtol(rest + 1, &end, 10);
		if (errno != 0 || end == rest + 1 || *end != '\0' || v < 0 || v > INT_MAX)
			return -1;
		r->db = (int)v;
	} else if (*rest == '/') {
		r->db = 0;
	} else if (*rest != '\0') {
		return -1;
	}
	return 0;
}

int
sw_store_redis_init(struct sw_store *st, const char *url)
{
	char buf[256];
	struct rds *r;

	st->ops = &rds_ops;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	st->impl = r;
	r->st = st;
	sw_backoff_init(&r->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	if (rds_parse_url(r, url) == -1) {
		const char *at = strrchr(url, '@');

		/* Never the password in a log. */
		sw_log_error(st->svc, "bad redis url, want redis://[[user]:password@]host[:port][/db]",
		    "url=%s%s", at != NULL ? "redis://…@" : "",
		    sw_log_q(buf, sizeof(buf), at != NULL ? at + 1 : url));
		goto fail;
	}
	r->ev_retry = evtimer_new(st->base, rds_retry, r);
	r->ev_down = event_new(st->base, -1, 0, rds_run_down, r);
	r->ev_watchdog = event_new(st->base, -1, EV_PERSIST, rds_watchdog, r);
	if (r->ev_retry == NULL || r->ev_down == NULL || r->ev_watchdog == NULL ||
	    sw_timer_in(r->ev_watchdog, WATCHDOG_MS) == -1)
		goto fail;
	rds_connect(r);
	return 0;
fail:
	rds_free(st);
	return -1;
}
