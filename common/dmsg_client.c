/*
 * dmsg_client: sessions, discovery and stream routing for a dmsg client
 * (dmsg.md); the per-stream end-to-end work is in dmsg_stream.c.
 *
 * The one idea: every wait is a small state machine driven by the loop.
 * The pool of sessions is kept at min_sessions by a maintenance timer
 * (fetch available_servers, open sessions to servers that have not failed
 * lately, back off 1 s doubling to 60 s); each change of the set of ready
 * sessions bumps a generation and posts the entry, one POST at a time; a
 * dial walks lookup (GET the peer's entry) -> server (GET a delegated
 * server's entry, open a session) -> wait (for that handshake) -> opening
 * (OPEN sent) under one deadline.  A session is a dmsg_link for its
 * streams: frames are dispatched by stream id, the client's own legs odd,
 * the server-opened (incoming) legs even.
 *
 * The client is five files along those lines (dmsg_client_int.h lists
 * them); this one holds the client itself: new, start, free, drain and
 * the helpers the others share.
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

/* ---------- small helpers ---------- */

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}


struct sw_http_opts
dmsgc_http_opts(const struct dmsg_client *c)
{
	struct sw_http_opts o;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = c->o.http_timeout_ms;
	o.retries = 1;
	return o;
}

static int
port_taken(const struct dmsg_client *c, unsigned p)
{
	return (c->ports[p / 8] >> (p % 8)) & 1;
}

static void
port_set(struct dmsg_client *c, unsigned p, int on)
{
	if (on)
		c->ports[p / 8] |= (uint8_t)(1u << (p % 8));
	else
		c->ports[p / 8] &= (uint8_t)~(1u << (p % 8));
}

/* A free ephemeral port, or 0 when all 16384 are in use. */
uint16_t
dmsgc_port_alloc(struct dmsg_client *c)
{
	for (unsigned i = 0; i < NPORTS; i++) {
		unsigned p = (c->next_port + i) % NPORTS;

		if (!port_taken(c, p)) {
			port_set(c, p, 1);
			c->next_port = (p + 1) % NPORTS;
			return (uint16_t)(DMSG_EPHEMERAL_MIN + p);
		}
	}
	return 0;
}

struct dmsg_conn *
dmsgc_conn_find(const struct dmsg_client *c, const uint8_t pk[SW_PK_LEN])
{
	struct dmsg_conn *conn;

	TAILQ_FOREACH(conn, &c->conns, entry)
		if (!conn->dead && memcmp(conn->pk, pk, SW_PK_LEN) == 0)
			return conn;
	return NULL;
}

int
dmsgc_penalized(const struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], long long now)
{
	for (int i = 0; i < MAX_PENALTIES; i++)
		if (c->penalties[i].until_ms > now &&
		    memcmp(c->penalties[i].pk, pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

void
dmsgc_penalize(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN])
{
	long long now = dmsg_now_ms(c->base);
	int slot = 0;

	/* same key, else a free slot, else the one expiring first */
	for (int i = 0; i < MAX_PENALTIES; i++) {
		if (memcmp(c->penalties[i].pk, pk, SW_PK_LEN) == 0) {
			slot = i;
			break;
		}
		if (c->penalties[i].until_ms < c->penalties[slot].until_ms)
			slot = i;
	}
	memcpy(c->penalties[slot].pk, pk, SW_PK_LEN);
	c->penalties[slot].until_ms = now + PENALTY_MS;
}

/* ---------- stream env hooks ---------- */

void
dmsgc_stream_forget(struct dmsg_stream *st)
{
	struct dmsg_client *c = st->owner;

	if (st->dial_phase == DIAL_CACHED)
		TAILQ_REMOVE(&c->cached, st, cached_entry);
	if (st->dial_phase >= DIAL_CACHED && st->dial_phase <= DIAL_WAIT)
		TAILQ_REMOVE(&c->dials, st, owner_entry);
	st->dial_phase = DIAL_NONE;
}

static void
stream_gone(struct dmsg_stream *st)
{
	struct dmsg_client *c = st->owner;

	if (c == NULL)
		return;
	TAILQ_REMOVE(&c->all, st, all_entry);
	if (st->initiator && st->local_port >= DMSG_EPHEMERAL_MIN)
		port_set(c, (unsigned)(st->local_port - DMSG_EPHEMERAL_MIN), 0);
}

struct dmsg_stream *
dmsgc_stream_new(struct dmsg_client *c)
{
	struct dmsg_stream *st = dmsg_stream_alloc(c->env);

	if (st == NULL)
		return NULL;
	st->owner = c;
	TAILQ_INSERT_TAIL(&c->all, st, all_entry);
	return st;
}

/* ---------- graceful end ---------- */

/*
 * Polled every few milliseconds: a drain is a short, bounded shutdown path
 * and the session has no "output empty" callback (only low water).
 */
#define DRAIN_POLL_MS 5

static void
drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_client *c = arg;
	struct dmsg_conn *conn;
	struct timeval tv;
	void (*done)(void *);

	(void)fd;
	(void)what;
	TAILQ_FOREACH(conn, &c->conns, entry) {
		if (conn->half_closed || conn->dead)
			continue;
		/* not yet connected, or nothing to say: no need to wait */
		if (!conn->ready || dmsg_session_outbuf(conn->s) == 0) {
			conn->half_closed = 1;
			if (conn->ready)
				shutdown(bufferevent_getfd(conn->bev), SHUT_WR);
			else
				dmsg_session_close(conn->s, "client draining");
		}
	}
	if (c->nconns > 0 && dmsg_now_ms(c->base) < c->drain_deadline_ms) {
		sw_ms_to_tv(DRAIN_POLL_MS, &tv);
		evtimer_add(c->drain_timer, &tv);
		return;
	}
	done = c->drain_done;
	c->drain_done = NULL;
	if (done != NULL)
		done(c->drain_arg);
}

int
dmsg_client_drain(struct dmsg_client *c, int timeout_ms, void (*done)(void *arg), void *arg)
{
	if (c->draining)
		return -1;
	c->draining = 1;
	c->drain_done = done;
	c->drain_arg = arg;
	c->drain_deadline_ms = dmsg_now_ms(c->base) + (timeout_ms > 0 ? timeout_ms : 5000);
	evtimer_del(c->maint_timer);
	evtimer_del(c->refresh_timer);
	evtimer_del(c->post_timer);
	event_active(c->drain_timer, EV_TIMEOUT, 0);
	return 0;
}

/* ---------- the client ---------- */

struct dmsg_client *
dmsg_client_new(struct event_base *base, const struct sw_keypair *kp,
    const struct dmsg_client_opts *opts, const char *svc)
{
	struct dmsg_client *c;
	size_t n;

	if (opts == NULL || opts->discovery == NULL ||
	    strncmp(opts->discovery, "http://", 7) != 0 || opts->min_sessions < 0 ||
	    opts->min_sessions > MAX_CONNS)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->kp = kp;
	c->o = *opts;
	if (c->o.min_sessions == 0)
		c->o.min_sessions = 1;
	if (c->o.backoff_min_ms <= 0)
		c->o.backoff_min_ms = DEF_BACKOFF_MIN;
	if (c->o.backoff_max_ms < c->o.backoff_min_ms)
		c->o.backoff_max_ms = c->o.backoff_min_ms > DEF_BACKOFF_MAX ? c->o.backoff_min_ms :
		    DEF_BACKOFF_MAX;
	if (c->o.refresh_ms <= 0)
		c->o.refresh_ms = DEF_REFRESH;
	if (c->o.http_timeout_ms <= 0)
		c->o.http_timeout_ms = DEF_HTTP_TIMEOUT;
	if (c->o.stream_idle_ms <= 0)
		c->o.stream_idle_ms = DEF_IDLE;
	if (c->o.session_hwm == 0)
		c->o.session_hwm = DEF_HWM;
	if (c->o.first_retry_ms <= 0 || c->o.first_retry_ms > c->o.backoff_min_ms)
		c->o.first_retry_ms = DEF_FIRST_RETRY < c->o.backoff_min_ms ? DEF_FIRST_RETRY :
		    c->o.backoff_min_ms;
	sw_backoff_init(&c->backoff, c->o.backoff_min_ms, c->o.backoff_max_ms);
	TAILQ_INIT(&c->conns);
	TAILQ_INIT(&c->dials);
	TAILQ_INIT(&c->all);
	c->next_port = randombytes_uniform(NPORTS);
	if ((c->svc = xstrdup(svc != NULL ? svc : "dmsg-client")) == NULL ||
	    (c->discovery = xstrdup(opts->discovery)) == NULL)
		goto fail;
	/* no trailing slash: paths are appended */
	n = strlen(c->discovery);
	while (n > 7 && c->discovery[n - 1] == '/')
		c->discovery[--n] = '\0';
	c->o.discovery = c->discovery;
	if ((c->env = calloc(1, sizeof(*c->env))) == NULL)
		goto fail;
	c->env->base = base;
	c->env->kp = kp;
	c->env->svc = c->svc;
	c->env->idle_ms = c->o.stream_idle_ms;
	c->env->forget = dmsgc_stream_forget;
	c->env->gone = stream_gone;
	c->env->redial = dmsgc_redial;
	if (dmsg_stream_env_keys(c->env, kp) == -1)
		goto fail;
	if (dmsgc_peers_init(c) == -1 ||
	    (c->http = sw_http_client_new(base, c->svc)) == NULL ||
	    (c->listeners = sw_dict_new(NULL)) == NULL ||
	    (c->ended = dmsg_ended_new(0, 0)) == NULL ||
	    (c->maint_timer = evtimer_new(base, dmsgc_maint_timer_cb, c)) == NULL ||
	    (c->refresh_timer = evtimer_new(base, dmsgc_refresh_cb, c)) == NULL ||
	    (c->post_timer = evtimer_new(base, dmsgc_post_timer_cb, c)) == NULL ||
	    (c->drain_timer = evtimer_new(base, drain_check, c)) == NULL)
		goto fail;
	c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (c->dns == NULL &&
	    (c->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL)
		goto fail;
	return c;
fail:
	sw_log_error(svc, "dmsg client setup failed", NULL);
	dmsg_client_free(c);
	return NULL;
}

int
dmsg_client_start(struct dmsg_client *c)
{
	struct timeval tv;

	if (c->started)
		return -1;
	c->started = 1;
	c->start_ms = sw_mono_ms();
	sw_ms_to_tv(c->o.refresh_ms, &tv);
	evtimer_add(c->refresh_timer, &tv);
	dmsgc_maintain(c);
	return 0;
}

void
dmsg_client_free(struct dmsg_client *c)
{
	struct dmsg_conn *conn;
	struct dmsg_stream *st;
	struct sw_dict_iter it;
	void *val;

	if (c == NULL)
		return;
	c->freeing = 1;
	/* in-flight requests answer now with status 0 and drop their references */
	sw_http_client_free(c->http);
	c->http = NULL;
	while ((conn = TAILQ_FIRST(&c->conns)) != NULL) {
		TAILQ_REMOVE(&c->conns, conn, entry);
		conn->dead = 1;
		sw_dict_iter_init(&it, conn->streams);
		while (sw_dict_next(&it, NULL, NULL, &val))
			dmsg_stream_abort(val);
		dmsgc_conn_free(conn);
	}
	if (c->listeners != NULL) {
		sw_dict_iter_init(&it, c->listeners);
		while (sw_dict_next(&it, NULL, NULL, &val))
			dmsgc_listener_drop(val);
		sw_dict_free(c->listeners);
	}
	/* what is left is held by the application: those handles die here */
	while ((st = TAILQ_FIRST(&c->all)) != NULL) {
		TAILQ_REMOVE(&c->all, st, all_entry);
		st->owner = NULL;
		st->app_owned = 0;
		st->refs = 1;
		dmsg_stream_unref(st);
	}
	if (c->maint_timer != NULL)
		event_free(c->maint_timer);
	if (c->refresh_timer != NULL)
		event_free(c->refresh_timer);
	if (c->post_timer != NULL)
		event_free(c->post_timer);
	if (c->drain_timer != NULL)
		event_free(c->drain_timer);
	if (c->dns != NULL)
		evdns_base_free(c->dns, 0);
	if (c->env != NULL) {
		sodium_memzero(c->env->xsk, sizeof(c->env->xsk));
		sodium_memzero(c->env->xcache, sizeof(c->env->xcache)); /* the ss secrets */
	}
	free(c->env);
	dmsg_ended_free(c->ended);
	dmsgc_peers_free(c);
	free(c->svc);
	free(c->discovery);
	free(c);
}

int
dmsg_client_nsessions(const struct dmsg_client *c)
{
	const struct dmsg_conn *conn;
	int n = 0;

	TAILQ_FOREACH(conn, &c->conns, entry)
		n += conn->ready;
	return n;
}

size_t
dmsg_client_servers(const struct dmsg_client *c, uint8_t (*out)[SW_PK_LEN], size_t max)
{
	const struct dmsg_conn *conn;
	size_t n = 0;

	TAILQ_FOREACH(conn, &c->conns, entry)
		if (conn->ready && n < max)
			memcpy(out[n++], conn->pk, SW_PK_LEN);
	return n;
}

int
dmsg_client_registered(const struct dmsg_client *c)
{
	return c->posted && c->posted_gen == c->gen && dmsg_client_nsessions(c) > 0;
}

int
dmsg_client_kk_keys(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], uint8_t rs[32],
    uint8_t ss[32], uint8_t s_pub[32])
{
	if (dmsg_stream_env_peer(c->env, pk, rs, ss) == -1)
		return -1;
	memcpy(s_pub, c->env->xpk, 32);
	return 0;
}

const uint8_t *
dmsg_client_pk(const struct dmsg_client *c)
{
	return c->kp->pk;
}
