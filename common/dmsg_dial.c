/*
 * dmsg_dial: the dial state machine (see dmsg_client_int.h): lookup (GET
 * the peer's entry) -> server (GET a delegated server's entry, open a
 * session) -> wait (for that handshake) -> opening (OPEN sent), all under
 * one deadline.
 *
 * The peer cache: a route setup is several dials in sequence to the same
 * few peers, and each lookup was a discovery round trip (about a fifth of
 * a dial on loopback).  So the delegated servers of a peer looked up are
 * kept for PEER_CACHE_TTL, and a dial to it starts at "server" from the
 * loop (cached_kick: the dial callback never runs inside dmsg_client_dial).
 * The spec's lookup still happens whenever the cache cannot be trusted:
 * a cached dial that fails with REJECT 1 (the peer is not on that server
 * any more) or -1 (the server could not be reached, the session was lost)
 * drops the entry and starts again at "lookup", once, under the same
 * deadline; REJECT 2, 3 and 6 came from the peer itself and keep it.
 */
#include "dmsg_client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <sodium.h>

#include "backoff.h"
#include "clock.h"
#include "dict.h"
#include "dmsg-discovery/dd_schema.h"
#include "dmsg_ended.h"
#include "dmsg_entry.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"

static void cached_kick_cb(evutil_socket_t fd, short what, void *arg);

/* ---------- dialling ---------- */

void
dmsgc_dial_start_open(struct dmsg_conn *conn, struct dmsg_stream *st)
{
	struct dmsg_client *c = conn->c;
	uint32_t id = 0;

	TAILQ_REMOVE(&c->dials, st, owner_entry);
	st->dial_phase = DIAL_OPENING;
	for (unsigned tries = 0; tries < 1024; tries++) {
		uint32_t cand = conn->next_id;

		conn->next_id += 2;
		if (conn->next_id < 2) /* wrapped past 2^32 - 1 */
			conn->next_id = 1;
		if (dmsgc_conn_stream(conn, cand) == NULL) {
			id = cand;
			break;
		}
	}
	if (id == 0 || dmsgc_conn_attach(conn, st, id) == -1) {
		dmsg_stream_dial_fail(st, -1, "no free stream id");
		return;
	}
	if (dmsg_stream_open(st, st->remote_pk, st->remote_port, st->local_port) == -1) {
		st->state = DMSG_ST_IDLE;
		dmsg_stream_dial_fail(st, -1, "cannot build OPEN");
	}
}

/* Use or open a session to via; st is in c->dials. */
static void
dial_via(struct dmsg_client *c, struct dmsg_stream *st, const uint8_t via[SW_PK_LEN],
    const char *addr)
{
	struct dmsg_conn *conn = dmsgc_conn_find(c, via);

	memcpy(st->via, via, SW_PK_LEN);
	if (conn != NULL && conn->ready) {
		dmsgc_dial_start_open(conn, st);
		return;
	}
	st->dial_phase = DIAL_WAIT;
	if (conn == NULL && dmsgc_conn_open(c, via, addr) == NULL)
		dmsg_stream_dial_fail(st, -1, "cannot open a session to the peer's server");
}

/* ---------- the peer cache ---------- */

static void
peer_free(void *val)
{
	free(val);
}

int
dmsgc_peers_init(struct dmsg_client *c)
{
	TAILQ_INIT(&c->peer_lru);
	TAILQ_INIT(&c->cached);
	if (c->o.peer_cache_max == 0)
		c->o.peer_cache_max = PEER_CACHE_MAX;
	if ((c->peers = sw_dict_new(peer_free)) == NULL ||
	    (c->cached_kick = event_new(c->base, -1, 0, cached_kick_cb, c)) == NULL)
		return -1;
	return 0;
}

void
dmsgc_peers_free(struct dmsg_client *c)
{
	if (c->cached_kick != NULL)
		event_free(c->cached_kick);
	sw_dict_free(c->peers); /* frees the entries, the LRU list with them */
}

static void
peer_drop(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN])
{
	struct dmsgc_peer *p;

	if (c->peers == NULL || !sw_dict_take(c->peers, pk, SW_PK_LEN, (void **)&p))
		return;
	TAILQ_REMOVE(&c->peer_lru, p, lru);
	free(p);
}

/* The fresh entry of pk (now the most recently used), or NULL. */
static struct dmsgc_peer *
peer_get(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN])
{
	struct dmsgc_peer *p = sw_dict_get(c->peers, pk, SW_PK_LEN);

	if (p == NULL)
		return NULL;
	if (dmsg_now_ms(c->base) >= p->expires_ms) {
		peer_drop(c, pk);
		return NULL;
	}
	TAILQ_REMOVE(&c->peer_lru, p, lru);
	TAILQ_INSERT_TAIL(&c->peer_lru, p, lru);
	return p;
}

/* Remember e's delegated servers; out of memory just means no entry. */
static void
peer_put(struct dmsg_client *c, const struct dmsg_entry *e)
{
	struct dmsgc_peer *p;

	if (c->o.peer_cache_max < 0)
		return;
	if ((p = sw_dict_get(c->peers, e->pk, SW_PK_LEN)) != NULL) {
		TAILQ_REMOVE(&c->peer_lru, p, lru);
	} else {
		while (sw_dict_size(c->peers) >= (size_t)c->o.peer_cache_max &&
		    !TAILQ_EMPTY(&c->peer_lru))
			peer_drop(c, TAILQ_FIRST(&c->peer_lru)->pk);
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return;
		memcpy(p->pk, e->pk, SW_PK_LEN);
		if (sw_dict_add(c->peers, p->pk, SW_PK_LEN, p) != 1) {
			free(p);
			return;
		}
	}
	p->n = e->ndelegated < PEER_CACHE_SERVERS ? e->ndelegated : PEER_CACHE_SERVERS;
	memcpy(p->servers, e->delegated, p->n * SW_PK_LEN);
	p->expires_ms = dmsg_now_ms(c->base) + PEER_CACHE_TTL;
	TAILQ_INSERT_TAIL(&c->peer_lru, p, lru);
}

void
dmsg_client_dial_stats(const struct dmsg_client *c, struct dmsg_dial_stats *out)
{
	*out = c->dstats;
	out->cached = c->peers != NULL ? sw_dict_size(c->peers) : 0;
}

/* ---------- the steps ---------- */

/* GET pk's discovery entry for st's dial. 0, or -1 (nothing asked). */
static int
get_entry(struct dmsg_client *c, struct dmsg_stream *st, const uint8_t pk[SW_PK_LEN],
    sw_http_client_cb *cb)
{
	struct sw_http_opts o = dmsgc_http_opts(c);
	char url[512], hex[SW_PK_HEX];

	sw_hex_encode(hex, pk, SW_PK_LEN);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY "%s", c->discovery, hex);
	/* the request holds its own reference: a cancelled dial outlives its handle */
	dmsg_stream_ref(st);
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, cb, st) == -1) {
		dmsg_stream_unref(st);
		return -1;
	}
	return 0;
}

/* A dial's HTTP answer arrived: is the dial still wanted? */
static int
dial_alive(struct dmsg_client *c, struct dmsg_stream *st)
{
	return !c->freeing && st->dial_cb != NULL && st->app_owned;
}

static void
server_entry_fetched(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_stream *st = arg;
	struct dmsg_client *c = st->owner;
	struct dmsg_entry e;
	char err[128];

	if (!dial_alive(c, st))
		goto out;
	if (resp->status != 200 || resp->json == NULL ||
	    dmsg_entry_parse(resp->json, &e, err, sizeof(err)) != 0 ||
	    memcmp(e.pk, st->via, SW_PK_LEN) != 0 || !e.has_server) {
		dmsg_stream_dial_fail(st, -1, "the peer's server has no valid entry");
		goto out;
	}
	dial_via(c, st, e.pk, e.address);
out:
	dmsg_stream_unref(st);
}

/* Go through one of the peer's servers: a session we have, else a new one. */
static void
dial_servers(struct dmsg_client *c, struct dmsg_stream *st, const uint8_t (*servers)[SW_PK_LEN],
    size_t n)
{
	struct dmsg_conn *conn;
	size_t pick;

	/* a session we have (ready first, then one being opened) to one of its servers */
	for (int want_ready = 1; want_ready >= 0; want_ready--)
		for (size_t i = 0; i < n; i++)
			if ((conn = dmsgc_conn_find(c, servers[i])) != NULL &&
			    conn->ready == want_ready) {
				dial_via(c, st, servers[i], NULL);
				return;
			}
	pick = randombytes_uniform((uint32_t)n);
	memcpy(st->via, servers[pick], SW_PK_LEN);
	st->dial_phase = DIAL_SERVER;
	if (get_entry(c, st, st->via, server_entry_fetched) == -1)
		dmsg_stream_dial_fail(st, -1, "cannot ask discovery");
}

static void
peer_entry_fetched(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_stream *st = arg;
	struct dmsg_client *c = st->owner;
	struct dmsg_entry *e = NULL;
	char err[128];

	if (!dial_alive(c, st))
		goto out;
	if (resp->status == 404) {
		peer_drop(c, st->remote_pk);
		dmsg_stream_dial_fail(st, -1, "no entry for the peer in discovery");
		goto out;
	}
	if ((e = malloc(sizeof(*e))) == NULL || resp->status != 200 || resp->json == NULL ||
	    dmsg_entry_parse(resp->json, e, err, sizeof(err)) != 0 ||
	    memcmp(e->pk, st->remote_pk, SW_PK_LEN) != 0) {
		dmsg_stream_dial_fail(st, -1, "cannot get the peer's entry");
		goto out;
	}
	if (!e->has_client || e->ndelegated == 0) {
		peer_drop(c, st->remote_pk);
		dmsg_stream_dial_fail(st, -1, "the peer has no dmsg server");
		goto out;
	}
	peer_put(c, e);
	dial_servers(c, st, (const uint8_t (*)[SW_PK_LEN])e->delegated, e->ndelegated);
out:
	free(e);
	dmsg_stream_unref(st);
}

/* GET the peer's entry (st is in c->dials). 0, or -1 (nothing asked). */
static int
lookup(struct dmsg_client *c, struct dmsg_stream *st)
{
	st->dial_phase = DIAL_LOOKUP;
	if (get_entry(c, st, st->remote_pk, peer_entry_fetched) == -1)
		return -1;
	c->dstats.lookups++;
	return 0;
}

/* Dials that start from the cache, from the loop. */
static void
cached_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_client *c = arg;
	struct dmsg_stream *st;
	struct dmsgc_peer *p;

	(void)fd;
	(void)what;
	while ((st = TAILQ_FIRST(&c->cached)) != NULL) {
		TAILQ_REMOVE(&c->cached, st, cached_entry);
		st->dial_phase = DIAL_LOOKUP; /* still in c->dials */
		dmsg_stream_ref(st);
		if ((p = peer_get(c, st->remote_pk)) != NULL) {
			dial_servers(c, st, (const uint8_t (*)[SW_PK_LEN])p->servers, p->n);
		} else { /* dropped or expired since */
			st->dial_cached = 0;
			if (lookup(c, st) == -1)
				dmsg_stream_dial_fail(st, -1, "cannot ask discovery");
		}
		dmsg_stream_unref(st);
	}
}

/*
 * The env's redial hook: a dial failed.  A cached entry that did not lead
 * to the peer goes; the dial starts again at the lookup, once, when the
 * failure may be the cache's (REJECT 1, or -1 before the deadline).
 */
int
dmsgc_redial(struct dmsg_stream *st, int code)
{
	struct dmsg_client *c = st->owner;
	int was_cached = st->dial_cached;

	if (c == NULL || c->freeing || !st->initiator)
		return -1;
	st->dial_cached = 0;
	if (code == DMSG_REJECT_NO_LISTENER || code == DMSG_REJECT_BACKLOG ||
	    code == DMSG_REJECT_POLICY)
		return -1; /* the peer answered: the entry was right */
	peer_drop(c, st->remote_pk);
	if (!was_cached || st->redialled ||
	    (code != -1 && code != DMSG_REJECT_NO_SESSION) ||
	    dmsg_now_ms(c->base) >= st->dial_deadline_ms)
		return -1;
	st->redialled = 1;
	st->state = DMSG_ST_IDLE;
	/* in c->dials unless it had sent OPEN (or never got there) */
	if (st->dial_phase == DIAL_NONE || st->dial_phase == DIAL_OPENING)
		TAILQ_INSERT_TAIL(&c->dials, st, owner_entry);
	if (lookup(c, st) == -1) {
		TAILQ_REMOVE(&c->dials, st, owner_entry);
		st->dial_phase = DIAL_NONE;
		return -1;
	}
	c->dstats.redials++;
	dmsg_stream_dial_deadline(st, st->dial_deadline_ms);
	return 0;
}

struct dmsg_stream *
dmsg_client_dial(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], uint16_t port,
    int timeout_ms, dmsg_dial_cb *cb, void *arg)
{
	struct dmsg_stream *st;

	if (cb == NULL || port == 0 || sw_pk_is_null(pk) || !c->started || c->freeing)
		return NULL;
	if ((st = dmsgc_stream_new(c)) == NULL)
		return NULL;
	if ((st->local_port = dmsgc_port_alloc(c)) == 0) {
		dmsg_stream_unref(st);
		return NULL;
	}
	st->initiator = 1;
	memcpy(st->remote_pk, pk, SW_PK_LEN);
	st->remote_port = port;
	st->app_owned = 1;
	st->dial_cb = cb;
	st->dial_arg = arg;
	TAILQ_INSERT_TAIL(&c->dials, st, owner_entry);
	if (peer_get(c, pk) != NULL) {
		st->dial_phase = DIAL_CACHED;
		st->dial_cached = 1;
		TAILQ_INSERT_TAIL(&c->cached, st, cached_entry);
		event_active(c->cached_kick, EV_TIMEOUT, 0);
		c->dstats.cache_hits++;
	} else if (lookup(c, st) == -1) {
		dmsgc_stream_forget(st);
		st->app_owned = 0;
		st->dial_cb = NULL;
		dmsg_stream_unref(st);
		return NULL;
	}
	dmsg_stream_dial_deadline(st, dmsg_now_ms(c->base) +
	    (timeout_ms > 0 ? timeout_ms : DEF_DIAL_TIMEOUT));
	return st;
}
