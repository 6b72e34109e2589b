/*
 * cxo_follow: the feed engine (cxo_follow.h).  A record is named by its
 * kind and member ("<kind byte><member>" in the records dict) and remembers
 * its leaf paths, so a new state deletes exactly the leaves it lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "config.h"
#include "cxo_dmsg.h"
#include "cxo_follow.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "dict.h"
#include "log.h"
#include "metrics.h"

#define MGET_CHUNK    500
#define RETRY_MS      1000
#define RECHECK_MS    100  /* a record about to expire: read it again this soon */
#define PARKED_MS     (3600 * 1000) /* an expiry check in flight: far ahead until answered */
#define QUEUE_DEFAULT 4096
#define ROOTS_KEPT    64   /* roots kept in the store: those within this of the newest seq */

/* One record with leaves. */
struct rec {
	size_t kind;
	char *member;
	char *paths; /* npaths NUL-terminated paths, back to back */
	size_t npaths;
	long long expires_ms; /* wall clock */
	unsigned long version; /* bumped by each change, so late reads are ignored */
	struct rec *prev, *next;
};

struct mut {
	size_t kind;
	char *member;
	char *json; /* NULL: gone */
	size_t len;
	long long expires_ms;
};

/* Outlives the engine while store callbacks are pending. */
struct token {
	struct cxo_follow *f;
	int refs;
};

struct cxo_follow {
	struct cxo_follow_opts o;
	const char *name;
	struct cxo_pub *pub;
	struct cxo_dmsg_pub *dmsg;
	struct cxo_feed *feed;
	struct token *tok;
	struct sw_dict *recs;
	struct rec *head, *tail;
	struct event *expiry, *drain, *retry, *periodic;
	struct mut *q;
	size_t qlen;
	int rebuilding, rebuild_again;
	unsigned long gen, rebuilds, overflows;
	/* The shared root sequence (below). */
	char seq_key[CXO_FOLLOW_KEY], roots_key[CXO_FOLLOW_KEY];
	uint64_t known;      /* the store's counter as last read */
	int known_ok;        /* known was read at least once */
	uint64_t floor;      /* of the publication waiting for its seq */
	int asking, tries;   /* a publication waits for its seq; INCRBYs sent for it */
	int seq_down;        /* the last seq was local (logged once) */
	unsigned long adopted, local;
	struct sw_metric *m_overflow, *m_rebuilds, *m_leaves, *m_adopted, *m_local;
};

/* A rebuild in flight: one kind at a time, its members and expiries copied. */
struct rebuild {
	struct token *tok;
	unsigned long gen;
	size_t kind;
	char **members;
	long long *exp_ms;
	size_t n, next;
};

struct check {
	struct token *tok;
	unsigned long gen, version;
	size_t kind;
	char member[];
};

static void rebuild_start(struct cxo_follow *f);
static void index_next(struct cxo_follow *f, struct rebuild *rb);
static void seq_check(struct cxo_follow *f);

static struct token *
tok_ref(struct token *t)
{
	t->refs++;
	return t;
}

/* Drop a reference; the engine, or NULL when it is gone. */
static struct cxo_follow *
tok_unref(struct token *t)
{
	struct cxo_follow *f = t->f;

	if (--t->refs == 0)
		free(t);
	return f;
}

/* "<kind><member>": the dict key of a record; its length, or 0 when too long. */
static size_t
rec_key(char *out, size_t kind, const char *member)
{
	size_t n = strlen(member);

	if (n + 2 > CXO_FOLLOW_KEY)
		return 0;
	out[0] = (char)kind;
	memcpy(out + 1, member, n + 1);
	return n + 1;
}

static void
rec_free(void *v)
{
	struct rec *r = v;

	free(r->member);
	free(r->paths);
	free(r);
}

/* The expiry list */

static void
exp_unlink(struct cxo_follow *f, struct rec *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (f->head == r)
		f->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else if (f->tail == r)
		f->tail = r->prev;
	r->prev = r->next = NULL;
}

static void
exp_arm(struct cxo_follow *f)
{
	if (f->head == NULL) {
		evtimer_del(f->expiry);
		return;
	}
	/* Just after the store's own expiry. */
	sw_timer_in(f->expiry, f->head->expires_ms - sw_wall_ms() + 50);
}

/* Insert in expiry order, walking from the tail (where nearly every write lands). */
static void
exp_insert(struct cxo_follow *f, struct rec *r)
{
	struct rec *at = f->tail;

	while (at != NULL && at->expires_ms > r->expires_ms)
		at = at->prev;
	r->prev = at;
	r->next = at != NULL ? at->next : f->head;
	if (r->next != NULL)
		r->next->prev = r;
	else
		f->tail = r;
	if (at != NULL)
		at->next = r;
	else
		f->head = r;
	if (f->head == r)
		exp_arm(f);
}

/* Applying states to the tree */

static int
has_path(const char (*paths)[CXO_FOLLOW_PATH], size_t n, const char *p)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(paths[i], p) == 0)
			return 1;
	return 0;
}

static void
leaves_gauge(struct cxo_follow *f)
{
	struct cxo_feed_stats st;

	cxo_feed_stats(f->feed, &st);
	sw_metric_set(f->m_leaves, NULL, (double)st.leaves);
}

/* Pack paths[0..n) into one block of NUL-terminated strings; NULL on OOM. */
static char *
pack_paths(const char (*paths)[CXO_FOLLOW_PATH], size_t n)
{
	size_t total = 0, o = 0;
	char *b;

	for (size_t i = 0; i < n; i++)
		total += strlen(paths[i]) + 1;
	if ((b = malloc(total)) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(paths[i]) + 1;

		memcpy(b + o, paths[i], l);
		o += l;
	}
	return b;
}

/* The record (kind, member) is now json (NULL: gone), expiring at expires_ms. */
static void
apply(struct cxo_follow *f, size_t kind, const char *member, const char *json, size_t len,
    long long expires_ms)
{
	char key[CXO_FOLLOW_KEY];
	char (*paths)[CXO_FOLLOW_PATH] = NULL;
	size_t klen = rec_key(key, kind, member), n = 0;
	struct rec *r;

	if (klen == 0)
		return;
	r = sw_dict_get(f->recs, key, klen);
	if (json != NULL) {
		paths = malloc(CXO_FOLLOW_MAX_LEAVES * sizeof(*paths));
		if (paths == NULL) {
			rebuild_start(f);
			return;
		}
		n = f->o.ops->leaves(f->o.ctx, kind, member, json, len, paths,
		    CXO_FOLLOW_MAX_LEAVES);
	}
	if (r != NULL) {
		const char *p = r->paths;

		for (size_t i = 0; i < r->npaths; i++, p += strlen(p) + 1)
			if (!has_path((const char (*)[CXO_FOLLOW_PATH])paths, n, p))
				cxo_feed_delete(f->feed, p);
		exp_unlink(f, r);
	}
	for (size_t i = 0; i < n; i++)
		if (cxo_feed_put(f->feed, paths[i], json, len) == -1)
			sw_log_warn(f->name, "feed put refused", "path=%s", paths[i]);
	if (n == 0) {
		if (r != NULL)
			sw_dict_del(f->recs, key, klen);
		goto out;
	}
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL || (r->member = strdup(member)) == NULL ||
		    sw_dict_set(f->recs, key, klen, r) == -1) {
			/* The leaves are in; only their expiry is lost: rebuild. */
			if (r != NULL)
				rec_free(r);
			free(paths);
			rebuild_start(f);
			return;
		}
		r->kind = kind;
	}
	free(r->paths);
	r->paths = pack_paths((const char (*)[CXO_FOLLOW_PATH])paths, n);
	r->npaths = r->paths != NULL ? n : 0;
	r->expires_ms = expires_ms;
	r->version++;
	exp_insert(f, r);
out:
	free(paths);
	leaves_gauge(f);
}

/* The queue */

static void
mut_clear(struct cxo_follow *f)
{
	for (size_t i = 0; i < f->qlen; i++) {
		free(f->q[i].member);
		free(f->q[i].json);
	}
	f->qlen = 0;
}

static void
drain(evutil_socket_t sock, short what, void *arg)
{
	struct cxo_follow *f = arg;

	(void)sock;
	(void)what;
	if (f->rebuilding)
		return;
	for (size_t i = 0; i < f->qlen; i++) {
		struct mut *m = &f->q[i];

		apply(f, m->kind, m->member, m->json, m->len, m->expires_ms);
	}
	mut_clear(f);
}

static void
enqueue(struct cxo_follow *f, size_t kind, const char *member, const char *json, size_t len,
    long long expires_ms)
{
	struct mut *m;

	if (f->qlen == f->o.queue_max) {
		f->overflows++;
		sw_metric_add(f->m_overflow, NULL, 1);
		sw_log_warn(f->name, "feed queue overflow, rebuilding from the store", "max=%zu",
		    f->o.queue_max);
		mut_clear(f);
		rebuild_start(f);
		return;
	}
	m = &f->q[f->qlen];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->member = strdup(member);
	if (json != NULL) {
		m->json = malloc(len + 1);
		if (m->json != NULL) {
			memcpy(m->json, json, len);
			m->json[len] = '\0';
		}
	}
	if (m->member == NULL || (json != NULL && m->json == NULL)) {
		free(m->member);
		free(m->json);
		rebuild_start(f);
		return;
	}
	m->len = len;
	m->expires_ms = expires_ms;
	f->qlen++;
	if (!f->rebuilding)
		event_active(f->drain, EV_TIMEOUT, 0);
}

void
cxo_follow_put(struct cxo_follow *f, size_t k, const char *member, const char *json,
    size_t len, long long ttl_s)
{
	if (f != NULL)
		enqueue(f, k, member, json, len, sw_wall_ms() + ttl_s * 1000);
}

void
cxo_follow_del(struct cxo_follow *f, size_t k, const char *member)
{
	if (f != NULL)
		enqueue(f, k, member, NULL, 0, 0);
}

/* Expiry checks: GET the record and its TTL; gone, or rewritten elsewhere. */

static void
check_done(const struct sw_reply *r, void *arg)
{
	struct check *ck = arg;
	struct cxo_follow *f = tok_unref(ck->tok);
	char key[CXO_FOLLOW_KEY];
	size_t klen;
	struct rec *rc;
	const struct sw_reply *rec, *ttl;

	if (f == NULL || f->gen != ck->gen || (klen = rec_key(key, ck->kind, ck->member)) == 0)
		goto out;
	rc = sw_dict_get(f->recs, key, klen);
	if (rc == NULL || rc->version != ck->version)
		goto out; /* changed since: the newer state stands */
	if (r->type != SW_REPLY_ARRAY || r->elements != 2) {
		/* Store down: look again later. */
		exp_unlink(f, rc);
		rc->expires_ms = sw_wall_ms() + RETRY_MS;
		exp_insert(f, rc);
		goto out;
	}
	rec = r->element[0];
	ttl = r->element[1];
	if (rec->type != SW_REPLY_STR) {
		apply(f, ck->kind, ck->member, NULL, 0, 0);
		goto out;
	}
	/* TTL is whole seconds: under one, look again soon rather than a second late. */
	apply(f, ck->kind, ck->member, rec->str, rec->len, sw_wall_ms() +
	    (ttl->type == SW_REPLY_INT && ttl->integer > 0 ? ttl->integer * 1000 : RECHECK_MS));
out:
	free(ck);
}

static int
check_send(struct cxo_follow *f, struct rec *r)
{
	size_t mlen = strlen(r->member);
	struct check *ck = calloc(1, sizeof(*ck) + mlen + 1);
	struct sw_store_txn *t = sw_store_txn_new();
	char key[2 * CXO_FOLLOW_KEY];

	if (ck == NULL || t == NULL) {
		free(ck);
		sw_store_txn_free(t);
		return -1;
	}
	f->o.ops->record_prefix(f->o.ctx, r->kind, key, CXO_FOLLOW_KEY);
	strncat(key, r->member, CXO_FOLLOW_KEY - 1);
	sw_store_txn_add(t, "GET", key, NULL);
	sw_store_txn_add(t, "TTL", key, NULL);
	memcpy(ck->member, r->member, mlen + 1);
	ck->kind = r->kind;
	ck->version = r->version;
	ck->gen = f->gen;
	ck->tok = tok_ref(f->tok);
	/* exec takes t, and refuses it when an add failed. */
	if (sw_store_txn_exec(f->o.st, t, check_done, ck) == -1) {
		tok_unref(ck->tok);
		free(ck);
		return -1;
	}
	return 0;
}

static void
expiry_fire(evutil_socket_t sock, short what, void *arg)
{
	struct cxo_follow *f = arg;
	long long now = sw_wall_ms();

	(void)sock;
	(void)what;
	while (f->head != NULL && f->head->expires_ms <= now) {
		struct rec *r = f->head;
		int sent;

		exp_unlink(f, r);
		sent = check_send(f, r) == 0;
		/* Parked until the answer decides; retried soon when not sent. */
		r->expires_ms = now + (sent ? PARKED_MS : RETRY_MS);
		exp_insert(f, r);
		if (!sent)
			break;
	}
	exp_arm(f);
}

/* Rebuild from the store */

static void
rebuild_free(struct rebuild *rb)
{
	free(rb->members);
	free(rb->exp_ms);
	free(rb);
}

static void
rebuild_retry(struct cxo_follow *f)
{
	sw_timer_in(f->retry, RETRY_MS);
}

static void
rebuild_finish(struct cxo_follow *f)
{
	struct cxo_feed_stats st;

	f->rebuilding = 0;
	cxo_feed_stats(f->feed, &st);
	/* A replica rebuilds every follow_ms: that is not news. */
	sw_log(f->o.follow_ms > 0 ? SW_LOG_DEBUG : SW_LOG_INFO, f->name,
	    "feed rebuilt from the store", "leaves=%zu queued=%zu", st.leaves, f->qlen);
	drain(-1, 0, f);
	cxo_feed_hold(f->feed, 0);
	leaves_gauge(f);
	seq_check(f);
	if (f->o.follow_ms > 0)
		sw_timer_in(f->periodic, f->o.follow_ms);
	else if (f->o.rebuild_s > 0)
		sw_timer_in(f->periodic, f->o.rebuild_s * 1000);
	if (f->rebuild_again) {
		f->rebuild_again = 0;
		rebuild_start(f);
	}
}

/* The rebuild's read failed: log, keep what the tree has, and try again soon. */
static void
rebuild_failed(struct cxo_follow *f, struct rebuild *rb)
{
	sw_log_warn(f->name, "feed rebuild: store unavailable, retrying", NULL);
	rebuild_free(rb);
	rebuild_retry(f);
}

static void mget_next(struct cxo_follow *f, struct rebuild *rb);

static void
mget_done(const struct sw_reply *r, void *arg)
{
	struct rebuild *rb = arg;
	struct cxo_follow *f = tok_unref(rb->tok);
	size_t from = rb->next;

	if (f == NULL || f->gen != rb->gen) {
		rebuild_free(rb);
		return;
	}
	if (r->type != SW_REPLY_ARRAY) {
		rebuild_failed(f, rb);
		return;
	}
	for (size_t i = 0; i < r->elements && from + i < rb->n; i++) {
		const struct sw_reply *e = r->element[i];

		if (e->type == SW_REPLY_STR) /* else expired between the two reads */
			apply(f, rb->kind, rb->members[from + i], e->str, e->len,
			    rb->exp_ms[from + i]);
	}
	rb->next = from + MGET_CHUNK < rb->n ? from + MGET_CHUNK : rb->n;
	if (rb->next < rb->n) {
		mget_next(f, rb);
		return;
	}
	rb->kind++;
	index_next(f, rb);
}

static void
mget_next(struct cxo_follow *f, struct rebuild *rb)
{
	const char *argv[MGET_CHUNK + 1];
	char prefix[CXO_FOLLOW_KEY], (*keys)[2 * CXO_FOLLOW_KEY] = NULL;
	size_t k = 0;

	if ((keys = malloc(MGET_CHUNK * sizeof(*keys))) == NULL)
		goto fail;
	f->o.ops->record_prefix(f->o.ctx, rb->kind, prefix, sizeof(prefix));
	argv[0] = "MGET";
	for (size_t i = rb->next; i < rb->n && k < MGET_CHUNK; i++, k++) {
		snprintf(keys[k], sizeof(keys[k]), "%s%s", prefix, rb->members[i]);
		argv[k + 1] = keys[k];
	}
	rb->tok = tok_ref(f->tok);
	if (sw_store_cmdargv(f->o.st, mget_done, rb, (int)k + 1, argv, NULL) == -1) {
		tok_unref(rb->tok);
		goto fail;
	}
	free(keys);
	return;
fail:
	free(keys);
	rebuild_failed(f, rb);
}

/* Copy the members and expiries of a WITHSCORES reply: one block, pointers then text. */
static int
keep_members(struct rebuild *rb, const struct sw_reply *r)
{
	size_t n = r->elements / 2, text = 0;
	char *p;

	free(rb->members);
	free(rb->exp_ms);
	rb->members = NULL;
	rb->n = rb->next = 0;
	for (size_t i = 0; i < n; i++)
		text += r->element[2 * i]->len + 1;
	rb->members = malloc(n * sizeof(*rb->members) + text + 1);
	rb->exp_ms = malloc((n + 1) * sizeof(*rb->exp_ms));
	if (rb->members == NULL || rb->exp_ms == NULL)
		return -1;
	p = (char *)(rb->members + n);
	for (size_t i = 0; i < n; i++) {
		const struct sw_reply *m = r->element[2 * i], *sc = r->element[2 * i + 1];

		if (m->type != SW_REPLY_STR || sc->type != SW_REPLY_STR)
			continue;
		memcpy(p, m->str, m->len);
		p[m->len] = '\0';
		rb->members[rb->n] = p;
		rb->exp_ms[rb->n++] = atoll(sc->str) * 1000;
		p += m->len + 1;
	}
	return 0;
}

static void
index_done(const struct sw_reply *r, void *arg)
{
	struct rebuild *rb = arg;
	struct cxo_follow *f = tok_unref(rb->tok);

	if (f == NULL || f->gen != rb->gen) {
		rebuild_free(rb);
		return;
	}
	if (r->type != SW_REPLY_ARRAY || r->elements % 2 != 0) {
		rebuild_failed(f, rb);
		return;
	}
	if (keep_members(rb, r) == -1) {
		rebuild_failed(f, rb);
		return;
	}
	if (rb->n == 0) {
		rb->kind++;
		index_next(f, rb);
		return;
	}
	mget_next(f, rb);
}

/* Read the live members of the next kind's index, or finish. */
static void
index_next(struct cxo_follow *f, struct rebuild *rb)
{
	char key[CXO_FOLLOW_KEY], min[32];

	if (rb->kind == f->o.ops->nkinds) {
		rebuild_free(rb);
		rebuild_finish(f);
		return;
	}
	f->o.ops->index_key(f->o.ctx, rb->kind, key, sizeof(key));
	/* time(), as the services' own list reads use: one clock for "live" everywhere. */
	snprintf(min, sizeof(min), "(%lld", (long long)time(NULL));
	rb->tok = tok_ref(f->tok);
	if (sw_store_cmd(f->o.st, index_done, rb, "ZRANGEBYSCORE", key, min, "+inf", "WITHSCORES",
	    NULL) == -1) {
		tok_unref(rb->tok);
		rebuild_failed(f, rb);
	}
}

static void
rebuild_start(struct cxo_follow *f)
{
	struct rebuild *rb;

	if (f->rebuilding) {
		f->rebuild_again = 1;
		return;
	}
	f->rebuilding = 1;
	f->gen++;
	f->rebuilds++;
	sw_metric_add(f->m_rebuilds, NULL, 1);
	evtimer_del(f->periodic);
	/*
	 * Hold publication and start from an empty tree: subscribers keep the
	 * old root until the new one is whole, and only then see the difference.
	 */
	cxo_feed_hold(f->feed, 1);
	cxo_feed_clear(f->feed);
	while (f->head != NULL)
		exp_unlink(f, f->head);
	evtimer_del(f->expiry);
	sw_dict_free(f->recs);
	f->recs = sw_dict_new(rec_free);
	rb = calloc(1, sizeof(*rb));
	if (f->recs == NULL || rb == NULL) {
		free(rb);
		rebuild_retry(f);
		return;
	}
	rb->gen = f->gen;
	index_next(f, rb);
}

/* The retry and periodic timers: start over (a failed rebuild left rebuilding set). */
static void
retry_fire(evutil_socket_t sock, short what, void *arg)
{
	struct cxo_follow *f = arg;

	(void)sock;
	(void)what;
	f->rebuilding = 0;
	rebuild_start(f);
}

static void
periodic_fire(evutil_socket_t sock, short what, void *arg)
{
	(void)sock;
	(void)what;
	rebuild_start(arg);
}

/*
 * The root sequence, shared by the replicas of the feed through the store.
 *
 * Replicas publish the same tree (follow_ms), but each numbering its roots
 * itself, a subscriber moving to another replica could see the feed go
 * back.  So every root a replica signs takes its seq from one counter in
 * the store (INCRBY: unique, and above every seq any replica took), and
 * goes into a small zset scored by seq.  A replica whose tree is the tree
 * of a newer root there serves that root's very bytes instead
 * (cxo_feed_adopt: the key is shared, and the objects under the tree are
 * its own): at each publication, at each rebuild when its tree has not
 * changed, and at start, when the newest root of all names the tree it
 * rebuilt.  Once the trees agree, the replicas serve one root, and a
 * subscriber moving between them gets the root it holds, or a newer one;
 * a restart that finds the same tree shows subscribers nothing new.  One
 * round trip per publication (two for a process's first), one read per
 * rebuild.
 *
 * The store down: the feed publishes with its local counter, never back
 * (cxo_pub's floor: its last seq + 1; at start, max(the stored seq + 1,
 * the clock in ms)), and the first read after the store is back puts that
 * root, and the counter, where the other replicas see them.
 */

/* Read the roots from min (a ZRANGEBYSCORE bound) up, and the counter: GET (by 0), or INCRBY by. */
static int
seq_txn(struct cxo_follow *f, const char *min, long long by, sw_store_cb *cb)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char v[24];

	if (t == NULL)
		return -1;
	snprintf(v, sizeof(v), "%lld", by);
	sw_store_txn_add(t, "ZRANGEBYSCORE", f->roots_key, min, "+inf", NULL);
	if (by > 0)
		sw_store_txn_add(t, "INCRBY", f->seq_key, v, NULL);
	else
		sw_store_txn_add(t, "GET", f->seq_key, NULL);
	if (sw_store_txn_exec(f->o.st, t, cb, tok_ref(f->tok)) == -1) {
		tok_unref(f->tok);
		return -1;
	}
	return 0;
}

/* The counter from a reply (INT from INCRBY, STR or NIL from GET) into known: 0, or -1. */
static int
seq_counter(struct cxo_follow *f, const struct sw_reply *r)
{
	if (r->type == SW_REPLY_INT)
		f->known = r->integer > 0 ? (uint64_t)r->integer : 0;
	else if (r->type == SW_REPLY_STR)
		f->known = strtoull(r->str, NULL, 10);
	else if (r->type == SW_REPLY_NIL)
		f->known = 0;
	else
		return -1;
	f->known_ok = 1;
	return 0;
}

static int
seq_reply_ok(const struct sw_reply *r)
{
	return r->type == SW_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == SW_REPLY_ARRAY;
}

/* The root in a zset member (hex); -1 when it is not one. */
static int
seq_member_root(const struct sw_reply *m, uint8_t root[CXO_ROOT_LEN])
{
	return m->type == SW_REPLY_STR && m->len == 2 * CXO_ROOT_LEN &&
	    sw_hex_decode(root, CXO_ROOT_LEN, m->str) == 0 ? 0 : -1;
}

/*
 * Serve the newest of roots (ascending by seq, all newer than ours) that
 * names our tree: 1, or 0.  newest_only: only the newest of all will do
 * (our first root: it is at least anything we published before).
 */
static int
seq_adopt(struct cxo_follow *f, const struct sw_reply *roots, int newest_only)
{
	uint8_t root[CXO_ROOT_LEN];

	for (size_t i = roots->elements; i > 0; i--) {
		int rc;

		if (seq_member_root(roots->element[i - 1], root) == -1)
			continue;
		if ((rc = cxo_feed_adopt(f->feed, root, CXO_ROOT_LEN)) == 1) {
			struct cxo_feed_stats st;

			cxo_feed_stats(f->feed, &st);
			sw_log_debug(f->name, "feed root taken from another replica", "seq=%llu",
			    (unsigned long long)st.seq);
			f->adopted++;
			sw_metric_add(f->m_adopted, NULL, 1);
			return 1;
		}
		if (rc == 0 && newest_only)
			return 0;
	}
	return 0;
}

/*
 * Put our current root where the other replicas look, and raise the
 * counter by raise (when it was below our seq).  Nobody waits for this.
 */
static void
seq_record(struct cxo_follow *f, uint64_t raise)
{
	const uint8_t *root = cxo_feed_root(f->feed);
	struct cxo_feed_stats st;
	struct sw_store_txn *t;
	char hex[2 * CXO_ROOT_LEN + 1], score[24], below[24], by[24];

	if (root == NULL || (t = sw_store_txn_new()) == NULL)
		return;
	cxo_feed_stats(f->feed, &st);
	sw_hex_encode(hex, root, CXO_ROOT_LEN);
	snprintf(score, sizeof(score), "%llu", (unsigned long long)st.seq);
	snprintf(below, sizeof(below), "(%llu", st.seq > ROOTS_KEPT ?
	    (unsigned long long)(st.seq - ROOTS_KEPT) : 0ULL);
	snprintf(by, sizeof(by), "%llu", (unsigned long long)raise);
	sw_store_txn_add(t, "ZADD", f->roots_key, score, hex, NULL);
	sw_store_txn_add(t, "ZREMRANGEBYSCORE", f->roots_key, "-inf", below, NULL);
	if (raise > 0)
		sw_store_txn_add(t, "INCRBY", f->seq_key, by, NULL);
	sw_store_txn_exec(f->o.st, t, NULL, NULL);
}

/* The store did not answer: publish with the local counter (cxo_pub's floor). */
static void
seq_local(struct cxo_follow *f)
{
	f->asking = 0;
	f->local++;
	sw_metric_add(f->m_local, NULL, 1);
	if (!f->seq_down)
		sw_log_warn(f->name, "feed seq: store unavailable, publishing with the local "
		    "counter", NULL);
	f->seq_down = 1;
	cxo_feed_publish_seq(f->feed, 0);
}

static void seq_answered(const struct sw_reply *r, void *arg);

/*
 * Ask the store for the roots above ours and a seq of at least f->floor:
 * INCRBY what the counter lacks (1 when it has enough, or is not known).
 * A process's first root only reads (by 0): it may serve the newest root.
 */
static void
seq_ask_store(struct cxo_follow *f, int read_only)
{
	struct cxo_feed_stats st;
	long long by = 1;
	char min[24];

	if (read_only)
		by = 0;
	else if (f->known_ok && f->floor > f->known)
		by = (long long)(f->floor - f->known);
	cxo_feed_stats(f->feed, &st);
	snprintf(min, sizeof(min), "(%llu", (unsigned long long)st.seq);
	if (++f->tries > 3 || seq_txn(f, min, by, seq_answered) == -1)
		seq_local(f);
}

static void
seq_answered(const struct sw_reply *r, void *arg)
{
	struct cxo_follow *f = tok_unref(arg);
	int first;

	if (f == NULL || !f->asking)
		return;
	if (!seq_reply_ok(r) || seq_counter(f, r->element[1]) == -1) {
		seq_local(f);
		return;
	}
	if (f->seq_down)
		sw_log_info(f->name, "feed seq: store back, seq shared again", NULL);
	f->seq_down = 0;
	first = cxo_feed_root(f->feed) == NULL;
	if (seq_adopt(f, r->element[0], first)) {
		f->asking = 0;
		return;
	}
	/* Read only, or below the floor (a new counter, one a clock floor passed): INCRBY. */
	if (r->element[1]->type != SW_REPLY_INT || f->known < f->floor) {
		seq_ask_store(f, 0);
		return;
	}
	f->asking = 0;
	if (cxo_feed_publish_seq(f->feed, f->known) == 1)
		seq_record(f, 0);
}

/* cxo_pub's sequencer: a committed tree waits for its seq. */
static void
seq_ask(struct cxo_feed *feed, uint64_t floor, void *arg)
{
	struct cxo_follow *f = arg;

	f->asking = 1;
	f->floor = floor;
	f->tries = 0;
	seq_ask_store(f, cxo_feed_root(feed) == NULL);
}

/*
 * After a rebuild: a replica whose tree did not change serves a newer root
 * of it, and puts back what the store lacks (a root published while the
 * store was down, a counter below our seq: the store lost them).
 */
static void
seq_checked(const struct sw_reply *r, void *arg)
{
	struct cxo_follow *f = tok_unref(arg);
	const struct sw_reply *roots;
	struct cxo_feed_stats st;
	const uint8_t *cur;
	uint8_t root[CXO_ROOT_LEN];
	int mine = 0, newer = 0;

	if (f == NULL || f->asking || !seq_reply_ok(r) || seq_counter(f, r->element[1]) == -1 ||
	    (cur = cxo_feed_root(f->feed)) == NULL)
		return;
	roots = r->element[0];
	if (seq_adopt(f, roots, 0))
		return;
	cxo_feed_stats(f->feed, &st);
	for (size_t i = 0; i < roots->elements; i++) {
		if (seq_member_root(roots->element[i], root) == -1)
			continue;
		if (memcmp(root, cur, CXO_ROOT_LEN) == 0)
			mine = 1;
		else
			newer = 1; /* read from our seq up, and not ours: another tree's */
	}
	if ((!mine && !newer) || f->known < st.seq)
		seq_record(f, f->known < st.seq ? st.seq - f->known : 0);
}

static void
seq_check(struct cxo_follow *f)
{
	struct cxo_feed_stats st;
	char min[24];

	if (f->asking || cxo_feed_root(f->feed) == NULL)
		return;
	cxo_feed_stats(f->feed, &st);
	snprintf(min, sizeof(min), "%llu", (unsigned long long)st.seq);
	seq_txn(f, min, 0, seq_checked); /* not sent: the next rebuild asks again */
}

/* At start: the stored counter is the floor of the first root, also if the store goes down. */
static void
seq_loaded(const struct sw_reply *r, void *arg)
{
	struct cxo_follow *f = tok_unref(arg);

	if (f == NULL)
		return;
	if (seq_counter(f, r) == 0 && f->known > 0)
		cxo_feed_set_last_seq(f->feed, f->known);
	rebuild_start(f);
}

static struct sw_metric *
metric(struct cxo_follow *f, const char *suffix, const char *help, enum sw_metric_type type)
{
	char name[128];

	snprintf(name, sizeof(name), "%s_%s", f->o.metric_prefix, suffix);
	return sw_metric_new(sw_svc_metrics(f->o.svc), name, help, type, NULL, NULL, 0);
}

int
cxo_follow_cfg(const char *svc, const cJSON *cfg, char *tcp, char *disc)
{
	const char *t = sw_cfg_str(cfg, "cxo_tcp_addr"), *d = sw_cfg_str(cfg, "dmsg_discovery");

	if (t != NULL && strlen(t) >= CXO_FOLLOW_ADDR) {
		sw_log_error(svc, "cxo_tcp_addr must be host:port", NULL);
		return -1;
	}
	if (d != NULL && (strlen(d) >= CXO_FOLLOW_ADDR || strncmp(d, "http://", 7) != 0)) {
		sw_log_error(svc, "dmsg_discovery must be an http:// URL", NULL);
		return -1;
	}
	snprintf(tcp, CXO_FOLLOW_ADDR, "%s", t != NULL ? t : "");
	snprintf(disc, CXO_FOLLOW_ADDR, "%s", d != NULL ? d : "");
	return 0;
}

struct cxo_follow *
cxo_follow_start(const struct cxo_follow_opts *o)
{
	struct cxo_follow *f = calloc(1, sizeof(*f));
	struct event_base *base = sw_svc_base(o->svc);
	struct cxo_feed_opts fo = {0};
	const char *tcp = o->tcp_addr != NULL ? o->tcp_addr : "";
	const char *disc = o->dmsg_disc != NULL ? o->dmsg_disc : "";
	char pk[SW_PK_HEX];

	if (f == NULL)
		return NULL;
	f->o = *o;
	f->name = sw_svc_name(o->svc);
	if (f->o.queue_max == 0)
		f->o.queue_max = QUEUE_DEFAULT;
	f->q = calloc(f->o.queue_max, sizeof(*f->q));
	f->tok = calloc(1, sizeof(*f->tok));
	f->recs = sw_dict_new(rec_free);
	f->expiry = evtimer_new(base, expiry_fire, f);
	f->drain = evtimer_new(base, drain, f);
	f->retry = evtimer_new(base, retry_fire, f);
	f->periodic = evtimer_new(base, periodic_fire, f);
	f->pub = cxo_pub_new(base, f->name);
	if (f->q == NULL || f->tok == NULL || f->recs == NULL || f->expiry == NULL ||
	    f->drain == NULL || f->retry == NULL || f->periodic == NULL || f->pub == NULL)
		goto fail;
	f->tok->f = f;
	f->tok->refs = 1;
	fo.kp = o->kp;
	fo.port = o->port;
	fo.hold = 1;
	fo.sequence = seq_ask;
	fo.arg = f;
	/* The feed's identity is what its replicas share: (key, port). */
	sw_hex_encode(pk, o->kp->pk, SW_PK_LEN);
	snprintf(f->seq_key, sizeof(f->seq_key), "cxo:%s:%u:seq", pk, (unsigned)o->port);
	snprintf(f->roots_key, sizeof(f->roots_key), "cxo:%s:%u:roots", pk, (unsigned)o->port);
	f->feed = cxo_feed_new(f->pub, &fo);
	if (f->feed == NULL || (tcp[0] != '\0' && cxo_pub_listen(f->pub, tcp) == -1))
		goto fail;
	if (disc[0] != '\0' && (f->dmsg = cxo_dmsg_pub_new(base, o->kp, disc, f->pub, o->port,
	    f->name)) == NULL)
		goto fail;
	f->m_overflow = metric(f, "queue_overflows_total",
	    "feed mutation queue overflows (each followed by a rebuild)", SW_COUNTER);
	f->m_rebuilds = metric(f, "rebuilds_total", "feed rebuilds from the store", SW_COUNTER);
	f->m_leaves = metric(f, "leaves", "leaves in the feed", SW_GAUGE);
	f->m_adopted = metric(f, "roots_adopted_total",
	    "roots another replica signed for this feed's tree, served as they are", SW_COUNTER);
	f->m_local = metric(f, "seq_local_total",
	    "roots numbered by the local counter because the store did not answer", SW_COUNTER);
	sw_metric_add(f->m_overflow, NULL, 0);
	sw_metric_add(f->m_adopted, NULL, 0);
	sw_metric_add(f->m_local, NULL, 0);
	sw_log_info(f->name, "publishing feed", "port=%d tcp=%s tcp_port=%d dmsg=%s rebuild_s=%lld",
	    o->port, tcp[0] != '\0' ? tcp : "-", tcp[0] != '\0' ? cxo_pub_port(f->pub) : 0,
	    disc[0] != '\0' ? "yes" : "no", o->rebuild_s);
	if (sw_store_cmd(o->st, seq_loaded, tok_ref(f->tok), "GET", f->seq_key, NULL) == -1) {
		tok_unref(f->tok);
		rebuild_start(f);
	}
	return f;
fail:
	sw_log_error(f->name, "feed could not start", "port=%d", o->port);
	cxo_follow_free(f);
	return NULL;
}

void
cxo_follow_free(struct cxo_follow *f)
{
	if (f == NULL)
		return;
	if (f->tok != NULL) {
		f->tok->f = NULL;
		tok_unref(f->tok);
	}
	if (f->q != NULL)
		mut_clear(f);
	free(f->q);
	cxo_dmsg_pub_free(f->dmsg);
	cxo_pub_free(f->pub);
	sw_dict_free(f->recs);
	if (f->expiry != NULL)
		event_free(f->expiry);
	if (f->drain != NULL)
		event_free(f->drain);
	if (f->retry != NULL)
		event_free(f->retry);
	if (f->periodic != NULL)
		event_free(f->periodic);
	free(f);
}

struct cxo_feed *
cxo_follow_feed(const struct cxo_follow *f)
{
	return f->feed;
}

int
cxo_follow_tcp_port(const struct cxo_follow *f)
{
	return cxo_pub_port(f->pub);
}

void
cxo_follow_stats(const struct cxo_follow *f, struct cxo_follow_stats *s)
{
	s->records = sw_dict_size(f->recs);
	s->queued = f->qlen;
	s->rebuilds = f->rebuilds;
	s->overflows = f->overflows;
	s->rebuilding = f->rebuilding;
	s->adopted = f->adopted;
	s->local = f->local;
}

struct dmsg_client *
cxo_follow_dmsg(const struct cxo_follow *f)
{
	return f != NULL && f->dmsg != NULL ? cxo_dmsg_pub_client(f->dmsg) : NULL;
}
