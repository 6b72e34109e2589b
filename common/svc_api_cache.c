/*
 * svc_api_cache: cached list answers kept exact by index tags
 * (svc_api_cache.h).
 *
 * A read is: MGET the tags -> a kept answer with the same tags and no
 * member expired is the answer; else read the index (WITHSCORES, for the
 * earliest expiry), MGET every record, keep the answer under the tags read
 * first, and answer.  The tags are read before the index, on the same
 * store connection, so a write landing in between makes the kept answer
 * newer than its tags say: the next read misses, never the reverse.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "config.h"
#include "crypto.h"
#include "dict.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "store.h"
#include "store_index.h"
#include "svc_api.h"
#include "svc_api_cache.h"

#define TAG_MAX        64  /* bytes of a tag value (ours are 32) */
#define TAG_RAND       16  /* random bytes of a tag, hex-encoded */
#define TAG_MARGIN_S   60  /* a tag outlives its set's members by this (clock skew) */
#define KEY_MAX        256 /* index, tag and cache keys */
#define NO_EXPIRY      LLONG_MAX

/* One kept answer: one allocation, the records inside body at off[i], len[i]. */
struct centry {
	struct centry *prev, *next; /* least recently used last */
	struct sw_api_cache *c;
	size_t size;                /* bytes accounted */
	long long exp;              /* valid while now < exp */
	int ntag;
	int tnil[2];
	size_t tlen[2];
	char tag[2][TAG_MAX];
	size_t nrec;
	size_t *off, *len;
	char *body;                 /* "[r0,r1,...]" */
	size_t bodylen;
	size_t klen;
	char key[];
};

struct sw_api_cache {
	struct sw_dict *d;
	struct centry *head, *tail;
	size_t bytes, max_bytes;
	unsigned long long hits, misses;
	struct sw_metric *m_reads;  /* NULL: not counted in /metrics */
	size_t *scratch;            /* the sample's shuffle */
	size_t scratch_n;
};

/* One list read in flight. */
struct clist {
	struct sw_svc *svc;
	struct sw_http_req *req;
	struct sw_store *st;
	struct sw_api_cache *c;
	long long quantity;
	int nindex;
	int tnil[2];
	size_t tlen[2];
	char tag[2][TAG_MAX];
	int keep;                   /* the answer will be kept: read scores, fetch every record */
	long long exp;
	char **members;             /* the members read (sw_api_members_copy) */
	char key[KEY_MAX];
	char index[2][KEY_MAX];
	char prefix[KEY_MAX];
};

static void
centry_unlink(struct centry *e)
{
	struct sw_api_cache *c = e->c;

	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

/* The dict's free function: an entry replaced, evicted or freed with the cache. */
static void
centry_free(void *v)
{
	struct centry *e = v;

	centry_unlink(e);
	e->c->bytes -= e->size;
	free(e);
}

struct sw_api_cache *
sw_api_cache_new(size_t max_bytes)
{
	struct sw_api_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->max_bytes = max_bytes;
	if ((c->d = sw_dict_new(centry_free)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

struct sw_api_cache *
sw_api_cache_cfg(struct sw_svc *svc, const cJSON *cfg)
{
	long long v = sw_cfg_int(cfg, "list_cache_bytes", SW_API_CACHE_BYTES);
	struct sw_api_cache *c;

	if (v < 0) {
		sw_log_error(sw_svc_name(svc), "list_cache_bytes must be 0 or more", NULL);
		return NULL;
	}
	if ((c = sw_api_cache_new((size_t)v)) == NULL) {
		sw_log_error(sw_svc_name(svc), "out of memory", NULL);
		return NULL;
	}
	c->m_reads = sw_metric_new(sw_svc_metrics(svc), "sw_list_cache_reads_total",
	    "list reads, answered from the list cache (hit) or from the store (miss)",
	    SW_COUNTER, (const char *[]){"result", NULL}, NULL, 0);
	return c;
}

void
sw_api_cache_free(struct sw_api_cache *c)
{
	if (c == NULL)
		return;
	sw_dict_free(c->d);
	free(c->scratch);
	free(c);
}

unsigned long long
sw_api_cache_hits(const struct sw_api_cache *c)
{
	return c->hits;
}

unsigned long long
sw_api_cache_misses(const struct sw_api_cache *c)
{
	return c->misses;
}

/* "svc:rest" -> "svc:tag:rest"; -1 when it does not fit or has no prefix. */
static int
tag_key(char *out, size_t size, const char *index_key)
{
	const char *colon = strchr(index_key, ':');
	int n;

	if (colon == NULL)
		return -1;
	n = snprintf(out, size, "%.*stag:%s", (int)(colon - index_key + 1), index_key,
	    colon + 1);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
sw_api_index_tag(struct sw_store_txn *t, const char *index_key, long long ttl_s)
{
	uint8_t rnd[TAG_RAND];
	char key[KEY_MAX], val[2 * TAG_RAND + 1], ex[24];

	if (tag_key(key, sizeof(key), index_key) == -1) {
		/* a transaction must not run with a command missing */
		sw_store_txn_add(t, NULL);
		return -1;
	}
	randombytes_buf(rnd, sizeof(rnd));
	sw_hex_encode(val, rnd, sizeof(rnd));
	snprintf(ex, sizeof(ex), "%lld", ttl_s + TAG_MARGIN_S);
	return sw_store_txn_add(t, "SET", key, val, "EX", ex, NULL);
}

static void
clist_end(struct clist *l)
{
	struct sw_svc *svc = l->svc;

	free(l->members);
	free(l);
	sw_svc_req_end(svc);
}

/* Answer from a kept (or just built) entry: all of it, or a uniform sample. */
static void
answer_entry(struct clist *l, const struct centry *e)
{
	struct sw_api_cache *c = l->c;
	struct evbuffer *b;
	size_t n = e->nrec, k, *ix;

	if (l->quantity <= 0 || (unsigned long long)l->quantity >= n) {
		sw_http_reply_raw(l->req, 200, "application/json", e->body, e->bodylen);
		return;
	}
	k = (size_t)l->quantity;
	if (c->scratch_n < n) {
		if ((ix = realloc(c->scratch, n * sizeof(*ix))) == NULL) {
			sw_api_error(l->req, 500, "out of memory", NULL);
			return;
		}
		c->scratch = ix;
		c->scratch_n = n;
	}
	ix = c->scratch;
	for (size_t i = 0; i < n; i++)
		ix[i] = i;
	if ((b = evbuffer_new()) == NULL) {
		sw_api_error(l->req, 500, "out of memory", NULL);
		return;
	}
	evbuffer_add(b, "[", 1);
	/* A partial Fisher-Yates: the first k slots are a uniform sample, in random order. */
	for (size_t i = 0; i < k; i++) {
		size_t j = i + randombytes_uniform((uint32_t)(n - i)), t = ix[i];

		ix[i] = ix[j];
		ix[j] = t;
		if (i > 0)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, e->body + e->off[ix[i]], e->len[ix[i]]);
	}
	evbuffer_add(b, "]", 1);
	sw_http_reply_buf(l->req, 200, "application/json", b);
	evbuffer_free(b);
}

static int
tags_equal(const struct clist *l, const struct centry *e)
{
	if (e->ntag != l->nindex)
		return 0;
	for (int i = 0; i < l->nindex; i++) {
		if (e->tnil[i] != l->tnil[i] || e->tlen[i] != l->tlen[i] ||
		    memcmp(e->tag[i], l->tag[i], l->tlen[i]) != 0)
			return 0;
	}
	return 1;
}

/* Make room for size bytes: evict from the least recently used end. */
static int
cache_room(struct sw_api_cache *c, size_t size)
{
	if (c->max_bytes == 0 || size > c->max_bytes / 4)
		return -1;
	while (c->tail != NULL && c->bytes + size > c->max_bytes)
		sw_dict_del(c->d, c->tail->key, c->tail->klen);
	return 0;
}

static void
cache_touch(struct sw_api_cache *c, struct centry *e)
{
	if (c->head == e)
		return;
	centry_unlink(e);
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/*
 * The entry of an MGET reply's records (nil ones, gone between the reads,
 * left out), kept in the cache when it may be; NULL on OOM.  *kept says
 * whether the cache owns it.
 */
static struct centry *
entry_build(struct clist *l, const struct sw_reply *r, int *kept)
{
	struct sw_api_cache *c = l->c;
	size_t klen = strlen(l->key), nrec = 0, text = 2, size, off;
	struct centry *e;

	*kept = 0;
	for (size_t i = 0; i < r->elements; i++) {
		if (r->element[i]->type != SW_REPLY_STR)
			continue;
		if (r->element[i]->len > SIZE_MAX / 4 - text)
			return NULL;
		text += r->element[i]->len + 1;
		nrec++;
	}
	size = sizeof(*e) + klen + 1 + 2 * nrec * sizeof(size_t) + sizeof(size_t) + text;
	if ((e = malloc(size)) == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->c = c;
	e->size = size;
	e->exp = l->exp;
	e->ntag = l->nindex;
	memcpy(e->tnil, l->tnil, sizeof(e->tnil));
	memcpy(e->tlen, l->tlen, sizeof(e->tlen));
	memcpy(e->tag, l->tag, sizeof(e->tag));
	e->klen = klen;
	memcpy(e->key, l->key, klen + 1);
	/* size_t arrays after the key, aligned */
	off = (sizeof(*e) + klen + 1 + sizeof(size_t) - 1) / sizeof(size_t) * sizeof(size_t);
	e->off = (size_t *)(void *)((char *)e + off);
	e->len = e->off + nrec;
	e->body = (char *)(e->len + nrec);
	e->nrec = nrec;
	off = 0;
	e->body[off++] = '[';
	for (size_t i = 0, j = 0; i < r->elements; i++) {
		const struct sw_reply *x = r->element[i];

		if (x->type != SW_REPLY_STR)
			continue;
		if (j > 0)
			e->body[off++] = ',';
		e->off[j] = off;
		e->len[j++] = x->len;
		memcpy(e->body + off, x->str, x->len);
		off += x->len;
	}
	e->body[off++] = ']';
	e->bodylen = off;
	if (l->keep && cache_room(c, size) == 0) {
		int rc = sw_dict_set(c->d, e->key, klen, e);

		if (rc != -1) {
			c->bytes += size;
			e->next = c->head;
			if (c->head != NULL)
				c->head->prev = e;
			c->head = e;
			if (c->tail == NULL)
				c->tail = e;
			*kept = 1;
		}
	}
	return e;
}

static void
records_done(const struct sw_reply *r, void *arg)
{
	struct clist *l = arg;
	struct centry *e;
	int kept;

	if (sw_svc_store_failed(l->req, r))
		goto out;
	if (r->type != SW_REPLY_ARRAY) {
		sw_api_store_error(l->req);
		goto out;
	}
	if ((e = entry_build(l, r, &kept)) == NULL) {
		sw_api_error(l->req, 500, "out of memory", NULL);
		goto out;
	}
	answer_entry(l, e);
	if (!kept)
		free(e);
out:
	clist_end(l);
}

/* An index read: [m0, s0, m1, s1, ...] (WITHSCORES, stride 2) or [m0, m1, ...], all strings. */
static int
scored_ok(const struct sw_reply *r, size_t stride)
{
	if (r == NULL || r->type != SW_REPLY_ARRAY || r->elements % stride != 0)
		return 0;
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type != SW_REPLY_STR)
			return 0;
	return 1;
}

/* A score as whole seconds, rounded down (scores are integers we wrote). */
static long long
score_of(const struct sw_reply *s)
{
	char buf[32];
	double v;

	if (s->len >= sizeof(buf))
		return 0;
	memcpy(buf, s->str, s->len);
	buf[s->len] = '\0';
	v = strtod(buf, NULL);
	return v >= (double)LLONG_MAX ? NO_EXPIRY : v <= 0 ? 0 : (long long)v;
}

static void
index_done(const struct sw_reply *r, void *arg)
{
	struct clist *l = arg;
	const struct sw_reply *a, *b = NULL;
	struct sw_dict *in_b = NULL;
	struct sw_reply pick, **el = NULL;
	size_t n = 0, stride = l->keep ? 2 : 1;

	if (sw_svc_store_failed(l->req, r))
		goto fail;
	if (l->nindex == 1) {
		a = r;
	} else {
		a = r->type == SW_REPLY_ARRAY && r->elements == 2 ? r->element[0] : NULL;
		b = a != NULL ? sw_api_index_members(r->element[1]) : NULL;
	}
	if (!scored_ok(a, stride) || (l->nindex == 2 && b == NULL)) {
		sw_api_store_error(l->req);
		goto fail;
	}
	/* The members answered (those of a also in b), as a members array to copy. */
	memset(&pick, 0, sizeof(pick));
	pick.type = SW_REPLY_ARRAY;
	if (a->elements > 0 && (el = malloc(a->elements / stride * sizeof(*el))) == NULL)
		goto oom;
	if (b != NULL) {
		if ((in_b = sw_dict_new(NULL)) == NULL)
			goto oom;
		for (size_t i = 0; i < b->elements; i++)
			if (sw_dict_set(in_b, b->element[i]->str, b->element[i]->len, in_b) == -1)
				goto oom;
	}
	l->exp = NO_EXPIRY;
	for (size_t i = 0; i + stride - 1 < a->elements; i += stride) {
		long long s;

		if (in_b != NULL &&
		    !sw_dict_find(in_b, a->element[i]->str, a->element[i]->len, NULL))
			continue;
		s = stride == 2 ? score_of(a->element[i + 1]) : NO_EXPIRY;
		if (s < l->exp)
			l->exp = s;
		el[n++] = a->element[i];
	}
	/*
	 * Not kept: fetch only the records answered, a uniform sample when a
	 * quantity is asked (a partial Fisher-Yates; their order is random).
	 */
	if (!l->keep && l->quantity > 0 && (unsigned long long)l->quantity < n) {
		for (size_t i = 0; i < (size_t)l->quantity; i++) {
			size_t j = i + randombytes_uniform((uint32_t)(n - i));
			struct sw_reply *t = el[i];

			el[i] = el[j];
			el[j] = t;
		}
		n = (size_t)l->quantity;
	}
	pick.elements = n;
	pick.element = el;
	if (n == 0) {
		struct sw_reply none = {.type = SW_REPLY_ARRAY};

		sw_dict_free(in_b);
		free(el);
		records_done(&none, l);
		return;
	}
	if ((l->members = sw_api_members_copy(&pick)) == NULL)
		goto oom;
	if (sw_store_mget_prefixed(l->st, l->prefix, (const char *const *)l->members, n,
	    records_done, l) == -1) {
		sw_api_store_error(l->req);
		goto fail;
	}
	sw_dict_free(in_b);
	free(el);
	return;
oom:
	sw_api_error(l->req, 500, "out of memory", NULL);
fail:
	sw_dict_free(in_b);
	free(el);
	clist_end(l);
}

static int
index_read(struct clist *l)
{
	struct sw_store_txn *t;
	char min[26];

	snprintf(min, sizeof(min), "(%lld", (long long)time(NULL));
	/* The scores only for an answer to keep (its earliest expiry). */
	if (l->nindex == 1)
		return sw_store_cmd(l->st, index_done, l, "ZRANGEBYSCORE", l->index[0], min, "+inf",
		    l->keep ? "WITHSCORES" : NULL, NULL);
	/* Both sets in one transaction, so they are read at one moment. */
	if ((t = sw_store_txn_new()) == NULL)
		return -1;
	sw_store_txn_add(t, "ZRANGEBYSCORE", l->index[0], min, "+inf",
	    l->keep ? "WITHSCORES" : NULL, NULL);
	sw_store_txn_add(t, "ZRANGEBYSCORE", l->index[1], min, "+inf", NULL);
	return sw_store_txn_exec(l->st, t, index_done, l);
}

static void
tags_done(const struct sw_reply *r, void *arg)
{
	struct clist *l = arg;
	struct sw_api_cache *c = l->c;
	struct centry *e;

	if (sw_svc_store_failed(l->req, r))
		goto fail;
	if (r->type != SW_REPLY_ARRAY || r->elements != (size_t)l->nindex) {
		sw_api_store_error(l->req);
		goto fail;
	}
	for (int i = 0; i < l->nindex; i++) {
		const struct sw_reply *t = r->element[i];

		l->tnil[i] = t->type != SW_REPLY_STR;
		if (t->type == SW_REPLY_STR && t->len <= TAG_MAX) {
			l->tlen[i] = t->len;
			memcpy(l->tag[i], t->str, t->len);
		} else if (t->type == SW_REPLY_STR) {
			l->keep = 0; /* not one of ours: answer, but keep nothing */
		}
	}
	if (l->keep && (e = sw_dict_get(c->d, l->key, strlen(l->key))) != NULL &&
	    tags_equal(l, e) && (long long)time(NULL) < e->exp) {
		c->hits++;
		sw_metric_add(c->m_reads, (const char *[]){"hit"}, 1);
		cache_touch(c, e);
		answer_entry(l, e);
		clist_end(l);
		return;
	}
	c->misses++;
	sw_metric_add(c->m_reads, (const char *[]){"miss"}, 1);
	if (index_read(l) == -1) {
		sw_api_store_error(l->req);
		goto fail;
	}
	return;
fail:
	clist_end(l);
}

static int
copy_str(char *out, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n >= KEY_MAX)
		return -1;
	memcpy(out, s != NULL ? s : "", n + 1);
	return 0;
}

void
sw_api_clist_run(struct sw_svc *svc, struct sw_http_req *req, struct sw_store *st,
    struct sw_api_cache *c, const struct sw_api_clist *q)
{
	const char *argv[3] = {"MGET"};
	char tags[2][KEY_MAX];
	struct clist *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		sw_api_error(req, 500, "out of memory", NULL);
		return;
	}
	l->nindex = q->index[1] != NULL ? 2 : 1;
	if (copy_str(l->key, q->key) == -1 || copy_str(l->prefix, q->prefix) == -1 ||
	    copy_str(l->index[0], q->index[0]) == -1 ||
	    (l->nindex == 2 && copy_str(l->index[1], q->index[1]) == -1)) {
		free(l);
		sw_api_store_error(req);
		return;
	}
	for (int i = 0; i < l->nindex; i++) {
		if (tag_key(tags[i], sizeof(tags[i]), l->index[i]) == -1) {
			free(l);
			sw_api_store_error(req);
			return;
		}
		argv[i + 1] = tags[i];
	}
	if (sw_svc_req_begin(svc, req) == -1) {
		free(l);
		return;
	}
	l->svc = svc;
	l->req = req;
	l->st = st;
	l->c = c;
	l->quantity = q->quantity;
	/* A cache that keeps nothing: no tags to read, the plain read of before. */
	if (c->max_bytes == 0) {
		if (index_read(l) == -1) {
			sw_api_store_error(req);
			clist_end(l);
		}
		return;
	}
	l->keep = 1;
	if (sw_store_cmdargv(st, tags_done, l, l->nindex + 1, argv, NULL) == -1) {
		sw_api_store_error(req);
		clist_end(l);
	}
}
