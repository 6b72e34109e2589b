/*
 * dmsg-discovery's CXO feed clients-by-server (cxo.md, "The feeds"):
 *
 *   clients-by-server/<server_pk>/<cc>/<client_pk> -> the client's entry JSON
 *
 * The feed follows the store through one bounded queue of mutations ("the
 * entry of pk is now this JSON" or "is gone"), filled by the API after each
 * successful write or delete and drained once per loop pass.  Each
 * mutation is a whole state, so applying it twice or late is harmless; that
 * is what lets a rebuild run while writes continue: they queue up and are
 * applied after the rebuilt tree.  Overflow is counted and answered with a
 * rebuild from the store, never with silent drift.  The feed is also
 * rebuilt at start.
 *
 * Expiry: the store drops an entry by TTL and tells nobody, so the feed
 * keeps, per client with leaves, the time its record expires, on a list in
 * expiry order (every client write adds the same TTL, so a write goes to
 * the tail: O(1)).  One timer watches the head; when it passes, the record
 * is read back: gone -> its leaves are deleted; still there (another
 * replica wrote it) -> the feed takes its content and its new expiry.  So
 * expiry costs O(expired entries), with no periodic scan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cxo_obj.h"
#include "cxo_dmsg.h"
#include "cxo_pub.h"
#include "dict.h"
#include "dmsg_discovery.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define FEED_ROOT      "clients-by-server"
#define SEQ_KEY        DD_PREFIX "cxo:seq"
#define MGET_CHUNK     500
#define RETRY_MS       1000
#define PATH_MAX_LEN   (sizeof(FEED_ROOT) + 2 * SW_PK_LEN + 4 + 2 * SW_PK_LEN + 1)

/* What the feed holds for one client with leaves. */
struct fclient {
	uint8_t pk[SW_PK_LEN];
	uint8_t (*servers)[SW_PK_LEN];
	size_t nservers;
	long long expires_ms;
	unsigned long version; /* bumped by each change, so late reads are ignored */
	struct fclient *prev, *next;
};

struct fmut {
	uint8_t pk[SW_PK_LEN];
	char *json; /* NULL: deleted */
	uint8_t (*servers)[SW_PK_LEN];
	size_t nservers;
	long long expires_ms;
};

/* Outlives the feed while store callbacks are pending. */
struct token {
	struct dd_feed *feed;
	int refs;
};

struct dd_feed {
	struct dd *dd;
	struct cxo_pub *pub;
	struct cxo_feed *f;
	struct cxo_dmsg_pub *dmsg; /* the feed on dmsg port 46, when configured */
	struct token *tok;
	struct sw_dict *clients;
	struct fclient *head, *tail;
	struct event *expiry;
	struct event *drain;
	struct event *retry;
	struct fmut *q;
	size_t qlen, qmax;
	int rebuilding;
	int rebuild_again;
	unsigned long gen; /* rebuilds so far */
	struct sw_metric *m_overflow;
	struct sw_metric *m_rebuilds;
	struct sw_metric *m_leaves;
};

/* One rebuild in flight. */
struct rebuild {
	struct token *tok;
	unsigned long gen;
	char **pks;
	long long *exp_ms;
	size_t n, next;
};

/* One expiry check in flight. */
struct check {
	struct token *tok;
	unsigned long gen;
	unsigned long version;
	uint8_t pk[SW_PK_LEN];
};

static void rebuild_start(struct dd_feed *fd);

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct token *
tok_ref(struct token *t)
{
	t->refs++;
	return t;
}

/* Drop a reference; the feed, or NULL when it is gone. */
static struct dd_feed *
tok_unref(struct token *t)
{
	struct dd_feed *fd = t->feed;

	if (--t->refs == 0)
		free(t);
	return fd;
}

static void
leaf_path(char *out, size_t size, const uint8_t server[SW_PK_LEN],
    const uint8_t client[SW_PK_LEN])
{
	char s[SW_PK_HEX], c[SW_PK_HEX];

	sw_hex_encode(s, server, SW_PK_LEN);
	sw_hex_encode(c, client, SW_PK_LEN);
	snprintf(out, size, FEED_ROOT "/%s/%.2s/%s", s, c, c);
}

/* Expiry list */

static void
exp_unlink(struct dd_feed *fd, struct fclient *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		fd->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		fd->tail = c->prev;
	c->prev = c->next = NULL;
}

static void
exp_arm(struct dd_feed *fd)
{
	long long d;
	struct timeval tv;

	if (fd->head == NULL) {
		evtimer_del(fd->expiry);
		return;
	}
	d = fd->head->expires_ms - now_ms() + 50; /* just after the store's own expiry */
	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(fd->expiry, &tv);
}

/* Insert in expiry order, walking from the tail (where nearly every write lands). */
static void
exp_insert(struct dd_feed *fd, struct fclient *c)
{
	struct fclient *at = fd->tail;

	while (at != NULL && at->expires_ms > c->expires_ms)
		at = at->prev;
	c->prev = at;
	c->next = at != NULL ? at->next : fd->head;
	if (c->next != NULL)
		c->next->prev = c;
	else
		fd->tail = c;
	if (at != NULL)
		at->next = c;
	else
		fd->head = c;
	if (fd->head == c)
		exp_arm(fd);
}

static void
fclient_free(void *v)
{
	struct fclient *c = v;

	free(c->servers);
	free(c);
}

/* Applying states to the tree */

static int
has_server(uint8_t (*s)[SW_PK_LEN], size_t n, const uint8_t *pk)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(s[i], pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

static void
leaves_gauge(struct dd_feed *fd)
{
	struct cxo_feed_stats st;

	cxo_feed_stats(fd->f, &st);
	sw_metric_set(fd->m_leaves, NULL, (double)st.leaves);
}

/*
 * The entry of pk is now json with these servers (json NULL: gone).  Takes
 * ownership of servers.
 */
static void
apply(struct dd_feed *fd, const uint8_t pk[SW_PK_LEN], const char *json,
    uint8_t (*servers)[SW_PK_LEN], size_t n, long long expires_ms)
{
	struct fclient *c = sw_dict_get(fd->clients, pk, SW_PK_LEN);
	char path[PATH_MAX_LEN];

	if (json == NULL)
		n = 0;
	if (c != NULL) {
		for (size_t i = 0; i < c->nservers; i++) {
			if (has_server(servers, n, c->servers[i]))
				continue;
			leaf_path(path, sizeof(path), c->servers[i], pk);
			cxo_feed_delete(fd->f, path);
		}
		exp_unlink(fd, c);
	}
	for (size_t i = 0; i < n; i++) {
		leaf_path(path, sizeof(path), servers[i], pk);
		if (cxo_feed_put(fd->f, path, json, strlen(json)) == -1)
			sw_log_error(fd->dd->name, "feed put refused", "path=%s", path);
	}
	if (n == 0) {
		free(servers);
		if (c != NULL)
			sw_dict_del(fd->clients, pk, SW_PK_LEN);
		goto out;
	}
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL || sw_dict_set(fd->clients, pk, SW_PK_LEN, c) == -1) {
			/* The leaves are in; only their expiry is lost: rebuild. */
			free(c);
			free(servers);
			rebuild_start(fd);
			return;
		}
		memcpy(c->pk, pk, SW_PK_LEN);
	}
	free(c->servers);
	c->servers = servers;
	c->nservers = n;
	c->expires_ms = expires_ms;
	c->version++;
	exp_insert(fd, c);
out:
	leaves_gauge(fd);
}

typedef uint8_t pkbuf[SW_PK_LEN];

/* A copy of an entry's servers, or NULL with *n 0 for none (or out of memory). */
static pkbuf *
servers_of(const struct dmsg_entry *e, size_t *n)
{
	pkbuf *s;

	*n = 0;
	if (e->ndelegated == 0)
		return NULL;
	s = malloc(e->ndelegated * SW_PK_LEN);
	if (s == NULL)
		return NULL;
	memcpy(s, e->delegated, e->ndelegated * SW_PK_LEN);
	*n = e->ndelegated;
	return s;
}

/* Apply a stored record (json of len bytes, NUL-terminated by the store). */
static void
apply_stored(struct dd_feed *fd, const uint8_t *pk, const char *json, size_t len,
    long long expires_ms)
{
	struct dmsg_entry *e = malloc(sizeof(*e));
	uint8_t (*s)[SW_PK_LEN] = NULL;
	size_t n = 0;

	if (e != NULL && dd_entry_from_stored(json, len, e) == 0 &&
	    memcmp(e->pk, pk, SW_PK_LEN) == 0)
		s = servers_of(e, &n);
	free(e);
	apply(fd, pk, n > 0 ? json : NULL, s, n, expires_ms);
}

/* The queue */

static void
mut_clear(struct dd_feed *fd)
{
	for (size_t i = 0; i < fd->qlen; i++) {
		free(fd->q[i].json);
		free(fd->q[i].servers);
	}
	fd->qlen = 0;
}

static void
drain(evutil_socket_t sock, short what, void *arg)
{
	struct dd_feed *fd = arg;

	(void)sock;
	(void)what;
	if (fd->rebuilding)
		return;
	for (size_t i = 0; i < fd->qlen; i++) {
		struct fmut *m = &fd->q[i];

		apply(fd, m->pk, m->json, m->servers, m->nservers, m->expires_ms);
		m->servers = NULL;
		free(m->json);
		m->json = NULL;
	}
	fd->qlen = 0;
}

static void
enqueue(struct dd_feed *fd, const uint8_t *pk, const char *json,
    const struct dmsg_entry *e, long long ttl_s)
{
	struct fmut *m;

	if (fd->qlen == fd->qmax) {
		sw_metric_inc(fd->m_overflow);
		sw_log_warn(fd->dd->name, "feed queue overflow, rebuilding from the store",
		    "max=%zu", fd->qmax);
		mut_clear(fd);
		rebuild_start(fd);
		return;
	}
	m = &fd->q[fd->qlen];
	memset(m, 0, sizeof(*m));
	memcpy(m->pk, pk, SW_PK_LEN);
	if (json != NULL && e != NULL && e->ndelegated > 0) {
		m->servers = servers_of(e, &m->nservers);
		m->json = strdup(json);
		if (m->servers == NULL || m->json == NULL) {
			free(m->servers);
			free(m->json);
			rebuild_start(fd);
			return;
		}
		m->expires_ms = now_ms() + ttl_s * 1000;
	}
	fd->qlen++;
	if (!fd->rebuilding)
		event_active(fd->drain, EV_TIMEOUT, 0);
}

void
dd_feed_written(struct dd *dd, const struct dmsg_entry *e, const char *json)
{
	if (dd->feed == NULL)
		return;
	enqueue(dd->feed, e->pk, json, e, e->has_server ? dd->server_ttl_s : dd->client_ttl_s);
}

void
dd_feed_deleted(struct dd *dd, const uint8_t pk[SW_PK_LEN])
{
	if (dd->feed != NULL)
		enqueue(dd->feed, pk, NULL, NULL, 0);
}

/* Expiry checks */

static void
check_done(const struct sw_reply *r, void *arg)
{
	struct check *ck = arg;
	struct dd_feed *fd = tok_unref(ck->tok);
	struct fclient *c;
	const struct sw_reply *rec, *score;

	if (fd == NULL || fd->gen != ck->gen)
		goto out;
	c = sw_dict_get(fd->clients, ck->pk, SW_PK_LEN);
	if (c == NULL || c->version != ck->version)
		goto out; /* changed since: the newer state stands */
	if (r->type != SW_REPLY_ARRAY || r->elements != 2) {
		/* Store down: look again later. */
		exp_unlink(fd, c);
		c->expires_ms = now_ms() + RETRY_MS;
		exp_insert(fd, c);
		goto out;
	}
	rec = r->element[0];
	score = r->element[1];
	if (rec->type != SW_REPLY_STR) {
		apply(fd, ck->pk, NULL, NULL, 0, 0);
		goto out;
	}
	/* Rewritten elsewhere: take its content and its expiry. */
	apply_stored(fd, ck->pk, rec->str, rec->len,
	    score->type == SW_REPLY_STR ? atoll(score->str) * 1000 : now_ms() + RETRY_MS);
out:
	free(ck);
}

static void
expiry_fire(evutil_socket_t sock, short what, void *arg)
{
	struct dd_feed *fd = arg;
	long long now = now_ms();

	(void)sock;
	(void)what;
	while (fd->head != NULL && fd->head->expires_ms <= now) {
		struct fclient *c = fd->head;
		struct check *ck = calloc(1, sizeof(*ck));
		struct sw_store_txn *t = sw_store_txn_new();
		char hex[SW_PK_HEX], key[128];
		int bad = 0;

		exp_unlink(fd, c);
		if (ck == NULL || t == NULL) {
			free(ck);
			sw_store_txn_free(t);
			c->expires_ms = now + RETRY_MS;
			exp_insert(fd, c);
			break;
		}
		sw_hex_encode(hex, c->pk, SW_PK_LEN);
		snprintf(key, sizeof(key), DD_KEY_ENTRY "%s", hex);
		bad |= sw_store_txn_add(t, "GET", key, NULL);
		bad |= sw_store_txn_add(t, "ZSCORE", DD_PREFIX "all", hex, NULL);
		memcpy(ck->pk, c->pk, SW_PK_LEN);
		ck->version = c->version;
		ck->gen = fd->gen;
		ck->tok = tok_ref(fd->tok);
		/* Parked far ahead until the answer decides. */
		c->expires_ms = now + 3600 * 1000;
		exp_insert(fd, c);
		if (bad || sw_store_txn_exec(fd->dd->st, t, check_done, ck) == -1) {
			tok_unref(ck->tok);
			free(ck);
		}
	}
	exp_arm(fd);
}

/* Rebuild from the store */

static void
rebuild_free(struct rebuild *rb)
{
	for (size_t i = 0; i < rb->n; i++)
		free(rb->pks[i]);
	free(rb->pks);
	free(rb->exp_ms);
	free(rb);
}

static void
rebuild_retry(struct dd_feed *fd)
{
	struct timeval tv = {RETRY_MS / 1000, 0};

	evtimer_add(fd->retry, &tv);
}

static void
rebuild_finish(struct dd_feed *fd)
{
	struct cxo_feed_stats st;

	fd->rebuilding = 0;
	cxo_feed_stats(fd->f, &st);
	sw_log_info(fd->dd->name, "feed rebuilt from the store", "leaves=%zu queued=%zu", st.leaves,
	    fd->qlen);
	drain(-1, 0, fd);
	cxo_feed_hold(fd->f, 0);
	if (fd->rebuild_again) {
		fd->rebuild_again = 0;
		rebuild_start(fd);
	}
}

static void mget_next(struct dd_feed *fd, struct rebuild *rb);

static void
mget_done(const struct sw_reply *r, void *arg)
{
	struct rebuild *rb = arg;
	struct dd_feed *fd = tok_unref(rb->tok);
	size_t from = rb->next;

	if (fd == NULL || fd->gen != rb->gen) {
		rebuild_free(rb);
		return;
	}
	if (r->type != SW_REPLY_ARRAY) {
		sw_log_warn(fd->dd->name, "feed rebuild: store unavailable, retrying", NULL);
		rebuild_free(rb);
		rebuild_retry(fd);
		return;
	}
	for (size_t i = 0; i < r->elements && from + i < rb->n; i++) {
		const struct sw_reply *e = r->element[i];
		uint8_t pk[SW_PK_LEN];

		if (e->type != SW_REPLY_STR || sw_hex_decode(pk, SW_PK_LEN, rb->pks[from + i]) == -1)
			continue; /* expired between the two reads */
		apply_stored(fd, pk, e->str, e->len, rb->exp_ms[from + i]);
	}
	rb->next = from + MGET_CHUNK < rb->n ? from + MGET_CHUNK : rb->n;
	if (rb->next == rb->n) {
		rebuild_free(rb);
		rebuild_finish(fd);
		return;
	}
	mget_next(fd, rb);
}

static void
mget_next(struct dd_feed *fd, struct rebuild *rb)
{
	const char *argv[MGET_CHUNK + 1];
	char (*keys)[128] = malloc(MGET_CHUNK * sizeof(*keys));
	size_t k = 0;

	if (keys == NULL)
		goto fail;
	argv[0] = "MGET";
	for (size_t i = rb->next; i < rb->n && k < MGET_CHUNK; i++, k++) {
		snprintf(keys[k], sizeof(keys[k]), DD_KEY_ENTRY "%s", rb->pks[i]);
		argv[k + 1] = keys[k];
	}
	rb->tok = tok_ref(fd->tok);
	if (sw_store_cmdargv(fd->dd->st, mget_done, rb, (int)k + 1, argv, NULL) == -1) {
		tok_unref(rb->tok);
		goto fail;
	}
	free(keys);
	return;
fail:
	free(keys);
	rebuild_free(rb);
	rebuild_retry(fd);
}

static void
index_done(const struct sw_reply *r, void *arg)
{
	struct rebuild *rb = arg;
	struct dd_feed *fd = tok_unref(rb->tok);

	if (fd == NULL || fd->gen != rb->gen) {
		rebuild_free(rb);
		return;
	}
	if (r->type != SW_REPLY_ARRAY || r->elements % 2 != 0) {
		sw_log_warn(fd->dd->name, "feed rebuild: store unavailable, retrying", NULL);
		rebuild_free(rb);
		rebuild_retry(fd);
		return;
	}
	rb->pks = calloc(r->elements / 2 + 1, sizeof(*rb->pks));
	rb->exp_ms = calloc(r->elements / 2 + 1, sizeof(*rb->exp_ms));
	if (rb->pks == NULL || rb->exp_ms == NULL)
		goto fail;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const struct sw_reply *pk = r->element[i], *sc = r->element[i + 1];

		if (pk->type != SW_REPLY_STR || pk->len != 2 * SW_PK_LEN || sc->type != SW_REPLY_STR)
			continue;
		rb->pks[rb->n] = strdup(pk->str);
		if (rb->pks[rb->n] == NULL)
			goto fail;
		rb->exp_ms[rb->n++] = atoll(sc->str) * 1000;
	}
	if (rb->n == 0) {
		rebuild_free(rb);
		rebuild_finish(fd);
		return;
	}
	mget_next(fd, rb);
	return;
fail:
	rebuild_free(rb);
	rebuild_retry(fd);
}

static void
rebuild_start(struct dd_feed *fd)
{
	struct rebuild *rb;
	char min[32];

	if (fd->rebuilding) {
		fd->rebuild_again = 1;
		return;
	}
	fd->rebuilding = 1;
	fd->gen++;
	sw_metric_inc(fd->m_rebuilds);
	/*
	 * Hold publication and start from an empty tree: subscribers keep the
	 * old root until the new one is whole, and only then see the difference.
	 */
	cxo_feed_hold(fd->f, 1);
	cxo_feed_clear(fd->f);
	while (fd->head != NULL)
		exp_unlink(fd, fd->head);
	evtimer_del(fd->expiry);
	sw_dict_free(fd->clients);
	fd->clients = sw_dict_new(fclient_free);
	rb = calloc(1, sizeof(*rb));
	if (fd->clients == NULL || rb == NULL)
		goto fail;
	rb->gen = fd->gen;
	rb->tok = tok_ref(fd->tok);
	snprintf(min, sizeof(min), "(%lld", (long long)time(NULL));
	if (sw_store_cmd(fd->dd->st, index_done, rb, "ZRANGEBYSCORE", DD_PREFIX "all", min, "+inf",
	    "WITHSCORES", NULL) == -1) {
		tok_unref(rb->tok);
		goto fail;
	}
	return;
fail:
	free(rb);
	rebuild_retry(fd);
}

static void
retry_fire(evutil_socket_t sock, short what, void *arg)
{
	struct dd_feed *fd = arg;

	(void)sock;
	(void)what;
	fd->rebuilding = 0;
	rebuild_start(fd);
}

/* seq persistence */

static void
seq_saved(uint64_t seq, void *arg)
{
	struct dd_feed *fd = arg;
	char v[24];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)seq);
	sw_store_cmd(fd->dd->st, NULL, NULL, "SET", SEQ_KEY, v, NULL);
}

static void
seq_loaded(const struct sw_reply *r, void *arg)
{
	struct token *t = arg;
	struct dd_feed *fd = tok_unref(t);

	if (fd == NULL)
		return;
	if (r->type == SW_REPLY_STR)
		cxo_feed_set_last_seq(fd->f, strtoull(r->str, NULL, 10));
	rebuild_start(fd);
}

int
dd_feed_start(struct dd *dd, const char *addr, const char *dmsg_disc)
{
	struct dd_feed *fd = calloc(1, sizeof(*fd));
	struct cxo_feed_opts fo = {0};
	struct event_base *base = sw_svc_base(dd->svc);
	struct sw_metrics *m = sw_svc_metrics(dd->svc);

	if (fd == NULL)
		return -1;
	fd->dd = dd;
	fd->qmax = dd->cxo_queue_max;
	fd->q = calloc(fd->qmax, sizeof(*fd->q));
	fd->tok = calloc(1, sizeof(*fd->tok));
	fd->clients = sw_dict_new(fclient_free);
	fd->expiry = evtimer_new(base, expiry_fire, fd);
	fd->drain = evtimer_new(base, drain, fd);
	fd->retry = evtimer_new(base, retry_fire, fd);
	fd->pub = cxo_pub_new(base, dd->name);
	if (fd->q == NULL || fd->tok == NULL || fd->clients == NULL || fd->expiry == NULL ||
	    fd->drain == NULL || fd->retry == NULL || fd->pub == NULL)
		goto fail;
	fd->tok->feed = fd;
	fd->tok->refs = 1;
	fo.kp = &dd->kp;
	fo.port = CXO_PORT_CLIENTS_BY_SERVER;
	fo.saved = seq_saved;
	fo.arg = fd;
	fo.hold = 1;
	fd->f = cxo_feed_new(fd->pub, &fo);
	if (fd->f == NULL || (addr[0] != '\0' && cxo_pub_listen(fd->pub, addr) == -1))
		goto fail;
	if (dmsg_disc[0] != '\0' && (fd->dmsg = cxo_dmsg_pub_new(base, &dd->kp, dmsg_disc,
	    fd->pub, CXO_PORT_CLIENTS_BY_SERVER, dd->name)) == NULL)
		goto fail;
	fd->m_overflow = sw_metric_new(m, "dmsgd_feed_queue_overflows_total",
	    "feed mutation queue overflows (each followed by a rebuild)", SW_COUNTER, NULL, NULL, 0);
	fd->m_rebuilds = sw_metric_new(m, "dmsgd_feed_rebuilds_total",
	    "clients-by-server feed rebuilds from the store", SW_COUNTER, NULL, NULL, 0);
	fd->m_leaves = sw_metric_new(m, "dmsgd_feed_leaves", "leaves in the clients-by-server feed",
	    SW_GAUGE, NULL, NULL, 0);
	sw_metric_add(fd->m_overflow, NULL, 0);
	dd->feed = fd;
	if (sw_store_cmd(dd->st, seq_loaded, tok_ref(fd->tok), "GET", SEQ_KEY, NULL) == -1) {
		tok_unref(fd->tok);
		rebuild_start(fd);
	}
	if (addr[0] != '\0')
		sw_log_info(dd->name, "cxo feed listening", "addr=%s port=%d feed=%d", addr,
		    cxo_pub_port(fd->pub), CXO_PORT_CLIENTS_BY_SERVER);
	return 0;
fail:
	dd->feed = fd;
	dd_feed_free(dd);
	return -1;
}

void
dd_feed_free(struct dd *dd)
{
	struct dd_feed *fd = dd->feed;

	if (fd == NULL)
		return;
	dd->feed = NULL;
	if (fd->tok != NULL) {
		fd->tok->feed = NULL;
		tok_unref(fd->tok);
	}
	mut_clear(fd);
	free(fd->q);
	cxo_dmsg_pub_free(fd->dmsg);
	cxo_pub_free(fd->pub);
	sw_dict_free(fd->clients);
	if (fd->expiry != NULL)
		event_free(fd->expiry);
	if (fd->drain != NULL)
		event_free(fd->drain);
	if (fd->retry != NULL)
		event_free(fd->retry);
	free(fd);
}

struct dmsg_client *
dd_feed_dmsg(struct dd *dd)
{
	return dd->feed != NULL && dd->feed->dmsg != NULL ? cxo_dmsg_pub_client(dd->feed->dmsg) :
	    NULL;
}
