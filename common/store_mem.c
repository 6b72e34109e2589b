/*
 * store_mem: the embedded backend, a small redis in the process.
 *
 * The one idea: a call does not run, it is queued.  Each call is packed
 * (callback, argv bytes) into a grow-only byte buffer and one libevent event
 * is made active; its callback runs the whole batch in order and calls each
 * callback as soon as its command has run.  Because nothing changes the
 * data while a callback runs (its own calls are only queued), a reply can
 * point straight into the stored values: a GET copies nothing and, once the
 * buffers have grown, allocates nothing.  Arrays and formatted numbers come
 * from an arena reset after each reply.  Inside a transaction a later
 * command may change what an earlier reply points at, so there strings are
 * copied into the arena.
 *
 * Expiry: every key with a TTL is also in a second dict, `expires`.  A read
 * of an expired key deletes it (lazy); a 100 ms timer walks `expires` a few
 * buckets at a time and deletes what has expired, repeating while most of
 * what it sees is expired and for at most a couple of milliseconds, so
 * unread keys are reclaimed without a pause proportional to the key count.
 *
 * Sorted sets are a dict (member -> score) plus an array sorted by
 * (score, member): range queries are a binary search, inserts a memmove.
 * That suits the small sets the services keep; a skip list would be the
 * next step if one grew to many thousands of members.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "dict.h"
#include "log.h"
#include "store_int.h"

#define QALIGN(n)          (((n) + 15) & ~(size_t)15)
#define ARENA_MIN          4096
#define SWEEP_INTERVAL_MS  100
#define SWEEP_BUCKETS      64
#define SWEEP_ROUNDS       16
#define SWEEP_BUDGET_MS    2

enum { Q_CMD, Q_TXN, Q_NONCE };
enum { O_STR, O_SET, O_ZSET, O_HASH };

static const char ERR_WRONGTYPE[] =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
static const char ERR_SYNTAX[] = "ERR syntax error";
static const char ERR_NOTINT[] = "ERR value is not an integer or out of range";
static const char ERR_NOTFLOAT[] = "ERR value is not a valid float";
static const char ERR_RANGE[] = "ERR min or max is not a float";
static const char ERR_OVERFLOW[] = "ERR increment or decrement would overflow";
static const char ERR_OOM[] = "ERR out of memory";
static const char ERR_EXECABORT[] = "EXECABORT Transaction discarded because of previous errors.";
static const char ERR_NONCE[] = "ERR nonce is not a non-negative integer";

struct mobj {
	int type;
	long long expire; /* monotonic ms, 0: none */
	union {
		struct sw_dict *d; /* O_SET (no values), O_HASH (values: struct mstr) */
		struct zset *z;
	} v;
	size_t len; /* O_STR */
	char data[];
};

struct mstr {
	size_t len;
	char data[];
};

struct zmember {
	double score;
	size_t len;
	char m[];
};

struct zset {
	struct sw_dict *d; /* member -> struct zmember, owned */
	struct zmember **arr;
	size_t n, cap;
};

struct qbuf {
	unsigned char *p;
	size_t len, cap;
};

struct qhdr {
	sw_store_cb *cb;
	void *arg;
	unsigned long long nonce;
	size_t size; /* of the whole entry, aligned */
	int kind;
	int ncmd;
};

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
};

struct mem {
	struct sw_store *st;
	struct sw_dict *keys;    /* key -> struct mobj */
	struct sw_dict *expires; /* keys with a TTL, no values */
	struct event *ev_run;
	struct event *ev_sweep;
	size_t sweep_cursor;
	struct qbuf queue, running;
	int scheduled;
	int copy; /* replies must not point into the data (in a transaction) */
	const char **av;
	size_t avcap;
	struct arena_blk *arena;
	size_t arena_total;
};

struct mem_cmd {
	const char *name;
	int arity; /* redis convention: -n means at least n */
	void (*fn)(struct mem *, int, const char **, const size_t *, struct sw_reply *);
};


/* Arena: bump allocation in blocks; reset keeps one block big enough for the last use. */

static void *
arena_alloc(struct mem *m, size_t n)
{
	struct arena_blk *b = m->arena;
	size_t hdr = QALIGN(sizeof(*b)), cap;
	void *p;

	n = QALIGN(n);
	if (b == NULL || b->cap - b->used < n) {
		cap = n > ARENA_MIN ? n : ARENA_MIN;
		if ((b = malloc(hdr + cap)) == NULL)
			return NULL;
		b->next = m->arena;
		b->used = 0;
		b->cap = cap;
		m->arena = b;
	}
	p = (unsigned char *)b + hdr + b->used;
	b->used += n;
	m->arena_total += n;
	return p;
}

static void
arena_reset(struct mem *m)
{
	struct arena_blk *b, *next;
	size_t want = m->arena_total;

	if (m->arena == NULL)
		return;
	if (m->arena->next == NULL) {
		m->arena->used = 0;
		m->arena_total = 0;
		return;
	}
	for (b = m->arena; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	m->arena = NULL;
	m->arena_total = 0;
	/* one block as big as this reply needed, so the next one needs no malloc */
	if (arena_alloc(m, want) != NULL)
		arena_reset(m);
}

/* Replies. */

static void
r_int(struct sw_reply *r, long long v)
{
	r->type = SW_REPLY_INT;
	r->integer = v;
}

static void
r_nil(struct sw_reply *r)
{
	r->type = SW_REPLY_NIL;
}

static void
r_status(struct sw_reply *r, const char *s)
{
	r->type = SW_REPLY_STATUS;
	r->str = s;
	r->len = strlen(s);
}

static void
r_err(struct sw_reply *r, const char *s)
{
	r->type = SW_REPLY_ERROR;
	r->str = s;
	r->len = strlen(s);
}

static void
r_errf(struct mem *m, struct sw_reply *r, const char *fmt, const char *name)
{
	char *buf;
	size_t n = strlen(fmt) + strlen(name) + 1;

	if ((buf = arena_alloc(m, n)) == NULL) {
		r_err(r, ERR_OOM);
		return;
	}
	snprintf(buf, n, fmt, name);
	r_err(r, buf);
}

static void
r_str(struct mem *m, struct sw_reply *r, const char *p, size_t len)
{
	char *c;

	r->type = SW_REPLY_STR;
	r->len = len;
	r->str = p;
	if (!m->copy)
		return;
	if ((c = arena_alloc(m, len + 1)) == NULL) {
		r_err(r, ERR_OOM);
		return;
	}
	memcpy(c, p, len);
	c[len] = '\0';
	r->str = c;
}

static void
fmt_double(char *buf, size_t size, double d)
{
	if (isinf(d))
		snprintf(buf, size, "%s", d > 0 ? "inf" : "-inf");
	else
		snprintf(buf, size, "%.17g", d);
}

static void
r_double(struct mem *m, struct sw_reply *r, double d)
{
	char *buf;

	if ((buf = arena_alloc(m, 32)) == NULL) {
		r_err(r, ERR_OOM);
		return;
	}
	fmt_double(buf, 32, d);
	r->type = SW_REPLY_STR;
	r->str = buf;
	r->len = strlen(buf);
}

/* An array of n zeroed replies; -1 (r set to an error) when out of memory. */
static int
r_array(struct mem *m, struct sw_reply *r, size_t n)
{
	struct sw_reply *el;
	size_t i;

	r->type = SW_REPLY_ARRAY;
	r->elements = n;
	r->element = NULL;
	if (n == 0)
		return 0;
	if (n > SIZE_MAX / (sizeof(*el) + sizeof(el))) {
		r_err(r, ERR_OOM);
		return -1;
	}
	r->element = arena_alloc(m, n * sizeof(el));
	el = arena_alloc(m, n * sizeof(*el));
	if (r->element == NULL || el == NULL) {
		r_err(r, ERR_OOM);
		return -1;
	}
	memset(el, 0, n * sizeof(*el));
	for (i = 0; i < n; i++)
		r->element[i] = &el[i];
	return 0;
}

/* Parsing, with redis's strictness. */

static int
parse_ll(const char *s, size_t len, long long *out)
{
	unsigned long long v = 0;
	size_t i = 0;
	int neg = 0;

	if (len == 0 || len > 20)
		return -1;
	if (len == 1 && s[0] == '0') {
		*out = 0;
		return 0;
	}
	if (s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == len || s[i] < '1' || s[i] > '9')
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (ULLONG_MAX - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return -1;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return -1;
		*out = (long long)v;
	}
	return 0;
}

/* argv strings are NUL-terminated copies, so strtod may read them. */
static int
parse_double(const char *s, size_t len, double *out)
{
	char *end;

	if (len == 0 || strlen(s) != len || s[0] == ' ' || s[0] == '\t')
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (*end != '\0' || isnan(*out) || (errno == ERANGE && !isinf(*out)))
		return -1;
	return 0;
}

struct zrange {
	double min, max;
	int minex, maxex;
};

static int
parse_bound(const char *s, size_t len, double *v, int *ex)
{
	*ex = 0;
	if (len > 0 && s[0] == '(') {
		*ex = 1;
		s++;
		len--;
	}
	return parse_double(s, len, v);
}

static int
zr_gte_min(const struct zrange *zr, double s)
{
	return zr->minex ? s > zr->min : s >= zr->min;
}

static int
zr_lte_max(const struct zrange *zr, double s)
{
	return zr->maxex ? s < zr->max : s <= zr->max;
}

/* Objects and the key space. */

static void
mobj_free(void *p)
{
	struct mobj *o = p;

	if (o == NULL)
		return;
	if (o->type == O_SET || o->type == O_HASH) {
		sw_dict_free(o->v.d);
	} else if (o->type == O_ZSET) {
		sw_dict_free(o->v.z->d);
		free(o->v.z->arr);
		free(o->v.z);
	}
	free(o);
}

static struct mobj *
mobj_str(const char *p, size_t len, long long expire)
{
	struct mobj *o;

	if (len > SIZE_MAX - sizeof(*o) - 1 || (o = malloc(sizeof(*o) + len + 1)) == NULL)
		return NULL;
	o->type = O_STR;
	o->expire = expire;
	o->len = len;
	memcpy(o->data, p, len);
	o->data[len] = '\0';
	return o;
}

static struct mobj *
mobj_coll(int type)
{
	struct mobj *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->type = type;
	if (type == O_ZSET) {
		if ((o->v.z = calloc(1, sizeof(*o->v.z))) == NULL)
			goto fail;
		if ((o->v.z->d = sw_dict_new(free)) == NULL)
			goto fail;
	} else if ((o->v.d = sw_dict_new(type == O_HASH ? free : NULL)) == NULL) {
		goto fail;
	}
	return o;
fail:
	if (type == O_ZSET && o->v.z != NULL)
		free(o->v.z);
	free(o);
	return NULL;
}

/* key may be owned by the expires dict (the sweep): it is read before any free. */
static void
mem_delkey(struct mem *m, const char *key, size_t klen)
{
	struct mobj *o;

	if (!sw_dict_take(m->keys, key, klen, (void **)&o))
		return;
	if (o->expire != 0)
		sw_dict_del(m->expires, key, klen);
	mobj_free(o);
}

static struct mobj *
mem_lookup(struct mem *m, const char *key, size_t klen)
{
	struct mobj *o = sw_dict_get(m->keys, key, klen);

	if (o != NULL && o->expire != 0 && o->expire <= sw_mono_ms()) {
		mem_delkey(m, key, klen);
		return NULL;
	}
	return o;
}

/* Replaces whatever is at key by o (which it takes); -1 out of memory (o freed). */
static int
mem_setkey(struct mem *m, const char *key, size_t klen, struct mobj *o)
{
	if (sw_dict_set(m->keys, key, klen, o) == -1) {
		mobj_free(o);
		return -1;
	}
	/* a failure here only loses the active sweep of this key, not its expiry */
	if (o->expire != 0)
		sw_dict_add(m->expires, key, klen, NULL);
	else
		sw_dict_del(m->expires, key, klen);
	return 0;
}

static void
mem_setexpire(struct mem *m, const char *key, size_t klen, struct mobj *o, long long at)
{
	o->expire = at;
	sw_dict_add(m->expires, key, klen, NULL);
}

/* Looks up key expecting type; 0 ok (*o may be NULL), -1 wrong type (r set). */
static int
mem_typed(struct mem *m, const char *key, size_t klen, int type, struct mobj **o,
    struct sw_reply *r)
{
	*o = mem_lookup(m, key, klen);
	if (*o != NULL && (*o)->type != type) {
		r_err(r, ERR_WRONGTYPE);
		return -1;
	}
	return 0;
}

/* Like mem_typed, creating an empty collection when absent. */
static int
mem_typed_create(struct mem *m, const char *key, size_t klen, int type, struct mobj **o,
    struct sw_reply *r)
{
	if (mem_typed(m, key, klen, type, o, r) == -1)
		return -1;
	if (*o != NULL)
		return 0;
	if ((*o = mobj_coll(type)) == NULL || mem_setkey(m, key, klen, *o) == -1) {
		r_err(r, ERR_OOM);
		return -1;
	}
	return 0;
}

static size_t
mobj_size(const struct mobj *o)
{
	return o->type == O_ZSET ? o->v.z->n : sw_dict_size(o->v.d);
}

static void
mem_delifempty(struct mem *m, const char *key, size_t klen, struct mobj *o)
{
	if (mobj_size(o) == 0)
		mem_delkey(m, key, klen);
}

/* Sorted sets. */

static int
zcmp(double s1, const char *m1, size_t l1, const struct zmember *b)
{
	int c;

	if (s1 != b->score)
		return s1 < b->score ? -1 : 1;
	c = memcmp(m1, b->m, l1 < b->len ? l1 : b->len);
	if (c != 0)
		return c;
	return l1 < b->len ? -1 : l1 > b->len;
}

/* First index whose element is not before (score, m). */
static size_t
zlower(const struct zset *z, double score, const char *m, size_t len)
{
	size_t lo = 0, hi = z->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (zcmp(score, m, len, z->arr[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First index with a score inside the range's lower bound. */
static size_t
zfirst(const struct zset *z, const struct zrange *zr)
{
	size_t lo = 0, hi = z->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (!zr_gte_min(zr, z->arr[mid]->score))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
zinsert(struct zset *z, struct zmember *zm)
{
	struct zmember **na;
	size_t i, cap;

	if (z->n == z->cap) {
		cap = z->cap ? z->cap * 2 : 4;
		if ((na = realloc(z->arr, cap * sizeof(*na))) == NULL)
			return -1;
		z->arr = na;
		z->cap = cap;
	}
	i = zlower(z, zm->score, zm->m, zm->len);
	memmove(&z->arr[i + 1], &z->arr[i], (z->n - i) * sizeof(*z->arr));
	z->arr[i] = zm;
	z->n++;
	return 0;
}

static void
zunlink(struct zset *z, const struct zmember *zm)
{
	size_t i = zlower(z, zm->score, zm->m, zm->len);

	if (i < z->n && z->arr[i] == zm) {
		memmove(&z->arr[i], &z->arr[i + 1], (z->n - i - 1) * sizeof(*z->arr));
		z->n--;
	}
}

/* Commands.  argv[0] is the command name. */

static void
c_get(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_STR, &o, r) == -1)
		return;
	if (o == NULL)
		r_nil(r);
	else
		r_str(m, r, o->data, o->len);
}

static void
c_set(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;
	long long ttl = 0, unit, now;
	int i, nx = 0, xx = 0, exists;

	for (i = 3; i < argc; i++) {
		if (strcasecmp(av[i], "NX") == 0 && !xx) {
			nx = 1;
		} else if (strcasecmp(av[i], "XX") == 0 && !nx) {
			xx = 1;
		} else if ((strcasecmp(av[i], "EX") == 0 || strcasecmp(av[i], "PX") == 0) &&
		    ttl == 0 && i + 1 < argc) {
			unit = (av[i][0] | 0x20) == 'e' ? 1000 : 1;
			i++;
			if (parse_ll(av[i], al[i], &ttl) == -1) {
				r_err(r, ERR_NOTINT);
				return;
			}
			if (ttl <= 0 || ttl > LLONG_MAX / 1000 / 2) {
				r_err(r, "ERR invalid expire time in 'set' command");
				return;
			}
			ttl *= unit;
		} else {
			r_err(r, ERR_SYNTAX);
			return;
		}
	}
	exists = mem_lookup(m, av[1], al[1]) != NULL;
	if ((nx && exists) || (xx && !exists)) {
		r_nil(r);
		return;
	}
	now = ttl != 0 ? sw_mono_ms() : 0;
	if ((o = mobj_str(av[2], al[2], ttl != 0 ? now + ttl : 0)) == NULL ||
	    mem_setkey(m, av[1], al[1], o) == -1) {
		r_err(r, ERR_OOM);
		return;
	}
	r_status(r, "OK");
}

static void
c_del(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	long long n = 0;
	int i;

	for (i = 1; i < argc; i++) {
		if (mem_lookup(m, av[i], al[i]) != NULL) {
			mem_delkey(m, av[i], al[i]);
			n++;
		}
	}
	r_int(r, n);
}

static void
c_exists(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	long long n = 0;
	int i;

	for (i = 1; i < argc; i++)
		n += mem_lookup(m, av[i], al[i]) != NULL;
	r_int(r, n);
}

static void
c_expire(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;
	long long s, now;

	(void)argc;
	if (parse_ll(av[2], al[2], &s) == -1) {
		r_err(r, ERR_NOTINT);
		return;
	}
	if ((o = mem_lookup(m, av[1], al[1])) == NULL) {
		r_int(r, 0);
		return;
	}
	if (s <= 0) {
		mem_delkey(m, av[1], al[1]);
		r_int(r, 1);
		return;
	}
	now = sw_mono_ms();
	if (s > (LLONG_MAX - now) / 1000) {
		r_err(r, "ERR invalid expire time in 'expire' command");
		return;
	}
	mem_setexpire(m, av[1], al[1], o, now + s * 1000);
	r_int(r, 1);
}

static void
c_ttl(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;

	(void)argc;
	if ((o = mem_lookup(m, av[1], al[1])) == NULL)
		r_int(r, -2);
	else if (o->expire == 0)
		r_int(r, -1);
	else
		r_int(r, (o->expire - sw_mono_ms() + 500) / 1000);
}

/* The integer stored at key (0 when absent); -1 with r set on a wrong type or value. */
static int
mem_getint(struct mem *m, const char *key, size_t klen, struct mobj **o, long long *v,
    struct sw_reply *r)
{
	*v = 0;
	if (mem_typed(m, key, klen, O_STR, o, r) == -1)
		return -1;
	if (*o != NULL && parse_ll((*o)->data, (*o)->len, v) == -1) {
		r_err(r, ERR_NOTINT);
		return -1;
	}
	return 0;
}

/* Stores v at key, keeping its TTL as INCR does. */
static int
mem_setint(struct mem *m, const char *key, size_t klen, struct mobj *old, long long v)
{
	struct mobj *o;
	char buf[24];
	int n;

	n = snprintf(buf, sizeof(buf), "%lld", v);
	if ((o = mobj_str(buf, (size_t)n, old != NULL ? old->expire : 0)) == NULL)
		return -1;
	return mem_setkey(m, key, klen, o);
}

static void
mem_incr(struct mem *m, const char *key, size_t klen, long long by, struct sw_reply *r)
{
	struct mobj *o;
	long long v;

	if (mem_getint(m, key, klen, &o, &v, r) == -1)
		return;
	if ((by > 0 && v > LLONG_MAX - by) || (by < 0 && v < LLONG_MIN - by)) {
		r_err(r, ERR_OVERFLOW);
		return;
	}
	if (mem_setint(m, key, klen, o, v + by) == -1) {
		r_err(r, ERR_OOM);
		return;
	}
	r_int(r, v + by);
}

static void
c_incr(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	(void)argc;
	mem_incr(m, av[1], al[1], 1, r);
}

static void
c_incrby(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	long long by;

	(void)argc;
	if (parse_ll(av[2], al[2], &by) == -1) {
		r_err(r, ERR_NOTINT);
		return;
	}
	mem_incr(m, av[1], al[1], by, r);
}

static void
c_sadd(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;
	long long n = 0;
	int i, rc;

	if (mem_typed_create(m, av[1], al[1], O_SET, &o, r) == -1)
		return;
	for (i = 2; i < argc; i++) {
		if ((rc = sw_dict_add(o->v.d, av[i], al[i], NULL)) == -1) {
			mem_delifempty(m, av[1], al[1], o);
			r_err(r, ERR_OOM);
			return;
		}
		n += rc;
	}
	r_int(r, n);
}

/* SREM and HDEL: remove members of a dict-backed collection. */
static void
mem_dictrem(struct mem *m, int type, int argc, const char **av, const size_t *al,
    struct sw_reply *r)
{
	struct mobj *o;
	long long n = 0;
	int i;

	if (mem_typed(m, av[1], al[1], type, &o, r) == -1)
		return;
	if (o != NULL) {
		for (i = 2; i < argc; i++)
			n += sw_dict_del(o->v.d, av[i], al[i]);
		mem_delifempty(m, av[1], al[1], o);
	}
	r_int(r, n);
}

static void
c_srem(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	mem_dictrem(m, O_SET, argc, av, al, r);
}

static void
c_smembers(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct sw_dict_iter it;
	struct mobj *o;
	const char *k;
	size_t kl, i = 0;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_SET, &o, r) == -1)
		return;
	if (r_array(m, r, o != NULL ? sw_dict_size(o->v.d) : 0) == -1 || o == NULL)
		return;
	for (sw_dict_iter_init(&it, o->v.d); sw_dict_next(&it, &k, &kl, NULL); i++)
		r_str(m, r->element[i], k, kl);
}

static void
c_scard(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_SET, &o, r) == -1)
		return;
	r_int(r, o != NULL ? (long long)sw_dict_size(o->v.d) : 0);
}

static void
c_sismember(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_SET, &o, r) == -1)
		return;
	r_int(r, o != NULL && sw_dict_find(o->v.d, av[2], al[2], NULL));
}

static int
zset_put(struct zset *z, const char *mem, size_t len, double score)
{
	struct zmember *zm;

	if (sw_dict_find(z->d, mem, len, (void **)&zm)) {
		if (zm->score != score) {
			zunlink(z, zm);
			zm->score = score;
			/* the array has room: zm was just taken out of it */
			zinsert(z, zm);
		}
		return 0;
	}
	if (len > SIZE_MAX - sizeof(*zm) || (zm = malloc(sizeof(*zm) + len)) == NULL)
		return -1;
	zm->score = score;
	zm->len = len;
	memcpy(zm->m, mem, len);
	if (zinsert(z, zm) == -1) {
		free(zm);
		return -1;
	}
	if (sw_dict_add(z->d, mem, len, zm) == -1) {
		zunlink(z, zm);
		free(zm);
		return -1;
	}
	return 1;
}

static void
c_zadd(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;
	double score;
	long long n = 0;
	int i, rc;

	if ((argc - 2) % 2 != 0) {
		r_err(r, ERR_SYNTAX);
		return;
	}
	/* all scores are checked before anything changes, as redis does */
	for (i = 2; i < argc; i += 2) {
		if (parse_double(av[i], al[i], &score) == -1) {
			r_err(r, ERR_NOTFLOAT);
			return;
		}
	}
	if (mem_typed_create(m, av[1], al[1], O_ZSET, &o, r) == -1)
		return;
	for (i = 2; i < argc; i += 2) {
		parse_double(av[i], al[i], &score);
		if ((rc = zset_put(o->v.z, av[i + 1], al[i + 1], score)) == -1) {
			mem_delifempty(m, av[1], al[1], o);
			r_err(r, ERR_OOM);
			return;
		}
		n += rc;
	}
	r_int(r, n);
}

static void
c_zrem(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct zmember *zm;
	struct mobj *o;
	long long n = 0;
	int i;

	if (mem_typed(m, av[1], al[1], O_ZSET, &o, r) == -1)
		return;
	if (o != NULL) {
		for (i = 2; i < argc; i++) {
			if (sw_dict_take(o->v.z->d, av[i], al[i], (void **)&zm)) {
				zunlink(o->v.z, zm);
				free(zm);
				n++;
			}
		}
		mem_delifempty(m, av[1], al[1], o);
	}
	r_int(r, n);
}

static void
c_zscore(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct zmember *zm;
	struct mobj *o;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_ZSET, &o, r) == -1)
		return;
	if (o == NULL || !sw_dict_find(o->v.z->d, av[2], al[2], (void **)&zm))
		r_nil(r);
	else
		r_double(m, r, zm->score);
}

static void
c_zcard(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_ZSET, &o, r) == -1)
		return;
	r_int(r, o != NULL ? (long long)o->v.z->n : 0);
}

static int
mem_zrange(const char **av, const size_t *al, struct zrange *zr, struct sw_reply *r)
{
	if (parse_bound(av[2], al[2], &zr->min, &zr->minex) == -1 ||
	    parse_bound(av[3], al[3], &zr->max, &zr->maxex) == -1) {
		r_err(r, ERR_RANGE);
		return -1;
	}
	return 0;
}

/* ZRANGEBYSCORE k min max [WITHSCORES] [LIMIT offset count] */
static void
c_zrangebyscore(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct zrange zr;
	struct mobj *o;
	struct zset *z;
	long long off = 0, cnt = -1;
	size_t i, j, n = 0, per;
	int a, withscores = 0;

	if (mem_zrange(av, al, &zr, r) == -1)
		return;
	for (a = 4; a < argc; a++) {
		if (strcasecmp(av[a], "WITHSCORES") == 0) {
			withscores = 1;
		} else if (strcasecmp(av[a], "LIMIT") == 0 && a + 2 < argc) {
			if (parse_ll(av[a + 1], al[a + 1], &off) == -1 ||
			    parse_ll(av[a + 2], al[a + 2], &cnt) == -1) {
				r_err(r, ERR_NOTINT);
				return;
			}
			a += 2;
		} else {
			r_err(r, ERR_SYNTAX);
			return;
		}
	}
	if (mem_typed(m, av[1], al[1], O_ZSET, &o, r) == -1)
		return;
	if (o == NULL || off < 0) {
		r_array(m, r, 0);
		return;
	}
	z = o->v.z;
	i = zfirst(z, &zr);
	if ((unsigned long long)off >= z->n - i) {
		r_array(m, r, 0);
		return;
	}
	i += (size_t)off;
	for (j = i; j < z->n && zr_lte_max(&zr, z->arr[j]->score); j++) {
		if (cnt >= 0 && n == (unsigned long long)cnt)
			break;
		n++;
	}
	per = withscores ? 2 : 1;
	if (r_array(m, r, n * per) == -1)
		return;
	for (j = 0; j < n; j++) {
		r_str(m, r->element[j * per], z->arr[i + j]->m, z->arr[i + j]->len);
		if (withscores)
			r_double(m, r->element[j * per + 1], z->arr[i + j]->score);
	}
}

static void
c_zremrangebyscore(struct mem *m, int argc, const char **av, const size_t *al,
    struct sw_reply *r)
{
	struct zrange zr;
	struct mobj *o;
	struct zset *z;
	size_t i, j, k;

	(void)argc;
	if (mem_zrange(av, al, &zr, r) == -1)
		return;
	if (mem_typed(m, av[1], al[1], O_ZSET, &o, r) == -1)
		return;
	if (o == NULL) {
		r_int(r, 0);
		return;
	}
	z = o->v.z;
	i = zfirst(z, &zr);
	for (j = i; j < z->n && zr_lte_max(&zr, z->arr[j]->score); j++)
		;
	/* the dict owns the members: drop them there, then close the gap */
	for (k = i; k < j; k++)
		sw_dict_del(z->d, z->arr[k]->m, z->arr[k]->len);
	memmove(&z->arr[i], &z->arr[j], (z->n - j) * sizeof(*z->arr));
	z->n -= j - i;
	mem_delifempty(m, av[1], al[1], o);
	r_int(r, (long long)(j - i));
}

static void
c_hset(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mstr *v;
	struct mobj *o;
	long long n = 0;
	int i, rc;

	if ((argc - 2) % 2 != 0) {
		r_err(r, "ERR wrong number of arguments for 'hset' command");
		return;
	}
	if (mem_typed_create(m, av[1], al[1], O_HASH, &o, r) == -1)
		return;
	for (i = 2; i < argc; i += 2) {
		rc = -1;
		if ((v = malloc(sizeof(*v) + al[i + 1] + 1)) != NULL) {
			v->len = al[i + 1];
			memcpy(v->data, av[i + 1], v->len);
			v->data[v->len] = '\0';
			if ((rc = sw_dict_set(o->v.d, av[i], al[i], v)) == -1)
				free(v);
		}
		if (rc == -1) {
			mem_delifempty(m, av[1], al[1], o);
			r_err(r, ERR_OOM);
			return;
		}
		n += rc;
	}
	r_int(r, n);
}

static void
c_hget(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;
	struct mstr *v;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_HASH, &o, r) == -1)
		return;
	if (o == NULL || !sw_dict_find(o->v.d, av[2], al[2], (void **)&v))
		r_nil(r);
	else
		r_str(m, r, v->data, v->len);
}

static void
c_hdel(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	mem_dictrem(m, O_HASH, argc, av, al, r);
}

static void
c_hgetall(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct sw_dict_iter it;
	struct mobj *o;
	struct mstr *v;
	const char *k;
	size_t kl, i = 0;

	(void)argc;
	if (mem_typed(m, av[1], al[1], O_HASH, &o, r) == -1)
		return;
	if (r_array(m, r, o != NULL ? 2 * sw_dict_size(o->v.d) : 0) == -1 || o == NULL)
		return;
	for (sw_dict_iter_init(&it, o->v.d); sw_dict_next(&it, &k, &kl, (void **)&v); i += 2) {
		r_str(m, r->element[i], k, kl);
		r_str(m, r->element[i + 1], v->data, v->len);
	}
}

/* Only "prefix*" and exact patterns: the services never need more. */
static void
c_keys(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct sw_dict_iter it;
	struct mobj *o;
	const char *k;
	size_t kl, plen = al[1], n = 0, i, pass;
	long long now = sw_mono_ms();
	int prefix = 0;

	(void)argc;
	for (i = 0; i < plen; i++) {
		if (strchr("*?[\\", av[1][i]) == NULL)
			continue;
		if (av[1][i] == '*' && i == plen - 1) {
			prefix = 1;
			plen--;
			break;
		}
		r_err(r, "ERR only 'prefix*' patterns are supported");
		return;
	}
	/* count, then fill; expired keys are skipped here and left to the sweep */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1 && r_array(m, r, n) == -1)
			return;
		i = 0;
		for (sw_dict_iter_init(&it, m->keys); sw_dict_next(&it, &k, &kl, (void **)&o);) {
			if (o->expire != 0 && o->expire <= now)
				continue;
			if (kl < plen || (!prefix && kl != plen) || memcmp(k, av[1], plen) != 0)
				continue;
			if (pass == 0)
				n++;
			else if (i < n)
				r_str(m, r->element[i++], k, kl);
		}
	}
}

static void
c_mget(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct mobj *o;
	int i;

	if (r_array(m, r, (size_t)argc - 1) == -1)
		return;
	for (i = 1; i < argc; i++) {
		o = mem_lookup(m, av[i], al[i]);
		if (o == NULL || o->type != O_STR)
			r_nil(r->element[i - 1]);
		else
			r_str(m, r->element[i - 1], o->data, o->len);
	}
}

static void
c_dbsize(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	(void)argc;
	(void)av;
	(void)al;
	/* like redis: expired keys count until they are reclaimed */
	r_int(r, (long long)sw_dict_size(m->keys));
}

static void
c_flushdb(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	struct sw_dict *keys, *expires;

	(void)argc;
	(void)av;
	(void)al;
	if ((keys = sw_dict_new(mobj_free)) == NULL || (expires = sw_dict_new(NULL)) == NULL) {
		sw_dict_free(keys);
		r_err(r, ERR_OOM);
		return;
	}
	sw_dict_free(m->keys);
	sw_dict_free(m->expires);
	m->keys = keys;
	m->expires = expires;
	m->sweep_cursor = 0;
	r_status(r, "OK");
}

static void
c_ping(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	if (argc == 2)
		r_str(m, r, av[1], al[1]);
	else if (argc == 1)
		r_status(r, "PONG");
	else
		r_err(r, "ERR wrong number of arguments for 'ping' command");
}

static const struct mem_cmd mem_cmds[] = {
	{"get", 2, c_get},
	{"set", -3, c_set},
	{"del", -2, c_del},
	{"exists", -2, c_exists},
	{"expire", 3, c_expire},
	{"ttl", 2, c_ttl},
	{"incr", 2, c_incr},
	{"incrby", 3, c_incrby},
	{"sadd", -3, c_sadd},
	{"srem", -3, c_srem},
	{"smembers", 2, c_smembers},
	{"scard", 2, c_scard},
	{"sismember", 3, c_sismember},
	{"zadd", -4, c_zadd},
	{"zrem", -3, c_zrem},
	{"zscore", 3, c_zscore},
	{"zcard", 2, c_zcard},
	{"zrangebyscore", -4, c_zrangebyscore},
	{"zremrangebyscore", 4, c_zremrangebyscore},
	{"hset", -4, c_hset},
	{"hget", 3, c_hget},
	{"hdel", -3, c_hdel},
	{"hgetall", 2, c_hgetall},
	{"keys", 2, c_keys},
	{"mget", -2, c_mget},
	{"dbsize", 1, c_dbsize},
	{"flushdb", 1, c_flushdb},
	{"ping", -1, c_ping},
};

/* The command, or NULL with r set to redis's error. */
static const struct mem_cmd *
mem_findcmd(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	const struct mem_cmd *c;
	size_t i;

	for (i = 0; i < sizeof(mem_cmds) / sizeof(mem_cmds[0]); i++) {
		c = &mem_cmds[i];
		if (strlen(c->name) != al[0] || strcasecmp(c->name, av[0]) != 0)
			continue;
		if ((c->arity > 0 && argc != c->arity) || (c->arity < 0 && argc < -c->arity)) {
			r_errf(m, r, "ERR wrong number of arguments for '%s' command", c->name);
			return NULL;
		}
		return c;
	}
	r_errf(m, r, "ERR unknown command '%s'", strlen(av[0]) == al[0] ? av[0] : "?");
	return NULL;
}

static void
mem_exec(struct mem *m, int argc, const char **av, const size_t *al, struct sw_reply *r)
{
	const struct mem_cmd *c;

	if ((c = mem_findcmd(m, argc, av, al, r)) != NULL)
		c->fn(m, argc, av, al, r);
}

static void
mem_nonce(struct mem *m, const char *key, size_t klen, unsigned long long expected,
    struct sw_reply *r)
{
	struct mobj *o;
	long long v;

	if (mem_getint(m, key, klen, &o, &v, r) == -1) {
		if (r->str == ERR_NOTINT)
			r_err(r, ERR_NONCE);
		return;
	}
	if (v < 0) {
		r_err(r, ERR_NONCE);
		return;
	}
	if ((unsigned long long)v != expected) {
		r_int(r, -v - 1);
		return;
	}
	if (v == LLONG_MAX) {
		r_err(r, ERR_OVERFLOW);
		return;
	}
	if (mem_setint(m, key, klen, o, v + 1) == -1) {
		r_err(r, ERR_OOM);
		return;
	}
	r_int(r, 1);
}

/* The queue. */

static size_t
q_cmdsize(int argc, const char **argv, const size_t *argvlen)
{
	size_t n = sizeof(size_t) * (1 + (size_t)argc);
	int i;

	for (i = 0; i < argc; i++)
		n += (argvlen != NULL ? argvlen[i] : strlen(argv[i])) + 1;
	return QALIGN(n);
}

static unsigned char *
q_putcmd(unsigned char *p, int argc, const char **argv, const size_t *argvlen)
{
	size_t *lens = (size_t *)p, len;
	char *bytes = (char *)(lens + 1 + argc);
	unsigned char *start = p;
	int i;

	lens[0] = (size_t)argc;
	for (i = 0; i < argc; i++) {
		len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
		lens[1 + i] = len;
		memcpy(bytes, argv[i], len);
		bytes[len] = '\0';
		bytes += len + 1;
	}
	return start + QALIGN((size_t)((unsigned char *)bytes - start));
}

/* Decodes one packed command; NULL when argv cannot grow. */
static const unsigned char *
q_getcmd(struct mem *m, const unsigned char *p, int *argc, const size_t **al)
{
	const size_t *lens = (const size_t *)(const void *)p;
	const char *bytes;
	const char **nav;
	size_t n = lens[0], i;

	if (n > m->avcap) {
		if ((nav = realloc(m->av, n * sizeof(*nav))) == NULL)
			return NULL;
		m->av = nav;
		m->avcap = n;
	}
	bytes = (const char *)(lens + 1 + n);
	for (i = 0; i < n; i++) {
		m->av[i] = bytes;
		bytes += lens[1 + i] + 1;
	}
	*argc = (int)n;
	*al = lens + 1;
	return p + QALIGN((size_t)((const unsigned char *)bytes - p));
}

static int
mem_push(struct mem *m, sw_store_cb *cb, void *arg, int kind, unsigned long long nonce,
    int ncmd, const struct sw_store_argv *cmds)
{
	struct qhdr *h;
	unsigned char *p, *np;
	size_t size = QALIGN(sizeof(*h)), cap;
	int i;

	for (i = 0; i < ncmd; i++)
		size += q_cmdsize(cmds[i].argc, cmds[i].argv, cmds[i].argvlen);
	if (m->queue.cap - m->queue.len < size) {
		cap = m->queue.cap ? m->queue.cap : 4096;
		while (cap - m->queue.len < size)
			cap *= 2;
		if ((np = realloc(m->queue.p, cap)) == NULL) {
			sw_log_error(m->st->svc, "store queue out of memory", NULL);
			return -1;
		}
		m->queue.p = np;
		m->queue.cap = cap;
	}
	h = (struct qhdr *)(void *)(m->queue.p + m->queue.len);
	h->cb = cb;
	h->arg = arg;
	h->nonce = nonce;
	h->size = size;
	h->kind = kind;
	h->ncmd = ncmd;
	p = m->queue.p + m->queue.len + QALIGN(sizeof(*h));
	for (i = 0; i < ncmd; i++)
		p = q_putcmd(p, cmds[i].argc, cmds[i].argv, cmds[i].argvlen);
	m->queue.len += size;
	if (!m->scheduled) {
		m->scheduled = 1;
		event_active(m->ev_run, EV_TIMEOUT, 0);
	}
	return 0;
}

/* Runs one queued entry into r. */
static void
mem_run_entry(struct mem *m, const struct qhdr *h, struct sw_reply *r)
{
	const unsigned char *p = (const unsigned char *)h + QALIGN(sizeof(*h)), *q;
	const size_t *al;
	int argc, i;

	memset(r, 0, sizeof(*r));
	if (h->kind == Q_CMD || h->kind == Q_NONCE) {
		if (q_getcmd(m, p, &argc, &al) == NULL)
			r_err(r, ERR_OOM);
		else if (h->kind == Q_CMD)
			mem_exec(m, argc, m->av, al, r);
		else
			mem_nonce(m, m->av[0], al[0], h->nonce, r);
		return;
	}
	/* like redis, a malformed command aborts the transaction before any runs */
	for (i = 0, q = p; i < h->ncmd; i++) {
		if ((q = q_getcmd(m, q, &argc, &al)) == NULL) {
			r_err(r, ERR_OOM);
			return;
		}
		if (mem_findcmd(m, argc, m->av, al, r) == NULL) {
			r_err(r, ERR_EXECABORT);
			return;
		}
	}
	if (r_array(m, r, (size_t)h->ncmd) == -1)
		return;
	m->copy = 1;
	for (i = 0, q = p; i < h->ncmd; i++) {
		q = q_getcmd(m, q, &argc, &al);
		mem_exec(m, argc, m->av, al, r->element[i]);
	}
	m->copy = 0;
}

static void
mem_run(evutil_socket_t fd, short what, void *arg)
{
	struct mem *m = arg;
	struct sw_reply r;
	struct qbuf tmp;
	const struct qhdr *h;
	size_t off;

	(void)fd;
	(void)what;
	/* callbacks queue into the other buffer, run by the next activation */
	tmp = m->running;
	m->running = m->queue;
	m->queue = tmp;
	m->queue.len = 0;
	m->scheduled = 0;
	for (off = 0; off < m->running.len; off += h->size) {
		h = (const struct qhdr *)(const void *)(m->running.p + off);
		mem_run_entry(m, h, &r);
		sw_store_deliver(m->st, h->cb, h->arg, &r);
		arena_reset(m);
	}
	m->running.len = 0;
}

struct sweep {
	struct mem *m;
	long long now;
	size_t seen, expired;
};

static void
mem_sweep_one(const char *key, size_t klen, void *val, void *arg)
{
	struct sweep *sw = arg;
	struct mobj *o;

	(void)val;
	sw->seen++;
	o = sw_dict_get(sw->m->keys, key, klen);
	if (o == NULL || o->expire == 0) {
		/* stale entry (cannot normally happen): drop it */
		sw_dict_del(sw->m->expires, key, klen);
	} else if (o->expire <= sw->now) {
		sw->expired++;
		mem_delkey(sw->m, key, klen);
	}
}

static void
mem_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct sweep sw = {.m = arg};
	long long start = sw_mono_ms();
	int round;

	(void)fd;
	(void)what;
	for (round = 0; round < SWEEP_ROUNDS; round++) {
		sw.now = sw_mono_ms();
		sw.seen = sw.expired = 0;
		sw.m->sweep_cursor = sw_dict_scan(sw.m->expires, sw.m->sweep_cursor, SWEEP_BUCKETS,
		    mem_sweep_one, &sw);
		if (sw.m->sweep_cursor == 0 || sw.expired * 4 < sw.seen)
			break;
		if (sw_mono_ms() - start >= SWEEP_BUDGET_MS)
			break;
	}
	sw_dict_compact(sw.m->keys);
	sw_dict_compact(sw.m->expires);
}

/* Backend entry points. */

static int
mem_cmd(struct sw_store *st, sw_store_cb *cb, void *arg, int argc, const char **argv,
    const size_t *argvlen)
{
	struct sw_store_argv c = {argc, argv, argvlen};

	return mem_push(st->impl, cb, arg, Q_CMD, 0, 1, &c);
}

static int
mem_txn(struct sw_store *st, const struct sw_store_txn *t, sw_store_cb *cb, void *arg)
{
	return mem_push(st->impl, cb, arg, Q_TXN, 0, t->ncmd, t->cmd);
}

static int
mem_nonce_take(struct sw_store *st, const char *key, unsigned long long expected,
    sw_store_cb *cb, void *arg)
{
	struct sw_store_argv c = {1, &key, NULL};

	return mem_push(st->impl, cb, arg, Q_NONCE, expected, 1, &c);
}

static int
mem_up(const struct sw_store *st)
{
	(void)st;
	return 1;
}

static void
mem_free(struct sw_store *st)
{
	struct mem *m = st->impl;
	const struct qhdr *h;
	struct arena_blk *b, *next;
	size_t off;

	if (m == NULL)
		return;
	/* the interface promises every callback once: DOWN for what never ran */
	for (off = 0; off < m->queue.len; off += h->size) {
		h = (const struct qhdr *)(const void *)(m->queue.p + off);
		sw_store_deliver(st, h->cb, h->arg, &sw_store_reply_down);
	}
	if (m->ev_run != NULL)
		event_free(m->ev_run);
	if (m->ev_sweep != NULL)
		event_free(m->ev_sweep);
	sw_dict_free(m->keys);
	sw_dict_free(m->expires);
	free(m->queue.p);
	free(m->running.p);
	free(m->av);
	for (b = m->arena; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(m);
	st->impl = NULL;
}

static const struct sw_store_ops mem_ops = {
	.cmd = mem_cmd,
	.txn = mem_txn,
	.nonce = mem_nonce_take,
	.up = mem_up,
	.free = mem_free,
};

int
sw_store_mem_init(struct sw_store *st)
{
	struct mem *m;

	st->ops = &mem_ops;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	st->impl = m;
	m->st = st;
	if ((m->keys = sw_dict_new(mobj_free)) == NULL || (m->expires = sw_dict_new(NULL)) == NULL)
		goto fail;
	if ((m->ev_run = event_new(st->base, -1, 0, mem_run, m)) == NULL)
		goto fail;
	if ((m->ev_sweep = event_new(st->base, -1, EV_PERSIST, mem_sweep, m)) == NULL ||
	    sw_timer_in(m->ev_sweep, SWEEP_INTERVAL_MS) == -1)
		goto fail;
	return 0;
fail:
	mem_free(st);
	return -1;
}
