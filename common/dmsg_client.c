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
 */
#include "clock.h"
#include "dmsg_client.h"

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

#include "dict.h"
#include "dmsg-discovery/dd_schema.h"
#include "dmsg_ended.h"
#include "dmsg_entry.h"
#include "dmsg_stream.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"

#define DEF_FIRST_RETRY   25      /* at start-up the server may register any moment now */
#define DEF_BACKOFF_MIN   1000
#define DEF_BACKOFF_MAX   60000
#define DEF_REFRESH       60000
#define DEF_HTTP_TIMEOUT  5000
#define DEF_IDLE          (DMSG_STREAM_IDLE_S * 1000)
#define DEF_HWM           (1u << 20)
#define DEF_DIAL_TIMEOUT  20000
#define PENALTY_MS        30000   /* a failed server is avoided this long while others exist */
#define MAX_CANDIDATES    512
#define MAX_CONNS         64      /* an entry lists at most 64 servers */
#define MAX_PENALTIES     64
#define NPORTS            (65536 - DMSG_EPHEMERAL_MIN)
#define POST_RETRY_MS     2000
#define MAX_POST_SYNCS    3

enum dial_phase {
	DIAL_NONE = 0,
	DIAL_LOOKUP,  /* GET the peer's entry */
	DIAL_SERVER,  /* GET a delegated server's entry */
	DIAL_WAIT,    /* waiting for the session to via */
	DIAL_OPENING, /* OPEN sent on a session */
};

struct dmsg_conn {
	struct dmsg_client *c;
	uint8_t pk[SW_PK_LEN];
	struct dmsg_session *s;
	struct bufferevent *bev;           /* the session's, for the half close of a drain */
	int half_closed;
	int ready;
	int dead;
	struct sw_dict *streams;           /* id (u32 BE) -> stream */
	uint64_t serial;                   /* names it in c->ended */
	uint32_t next_id;                  /* odd */
	TAILQ_HEAD(, dmsg_stream) waitq;   /* streams held back by congestion */
	TAILQ_ENTRY(dmsg_conn) entry;
};

struct dmsg_listener {
	struct dmsg_client *c;
	uint16_t port;
	dmsg_accept_cb *cb;
	void *arg;
	int paused;
	size_t npending;
	TAILQ_HEAD(, dmsg_stream) backlog;
	struct event *kick;
};

struct penalty {
	uint8_t pk[SW_PK_LEN];
	long long until_ms;
};

struct dmsg_client {
	struct event_base *base;
	const struct sw_keypair *kp;
	struct dmsg_client_opts o;
	char *discovery;
	char *svc;
	struct sw_http_client *http;
	struct evdns_base *dns;
	struct dmsg_stream_env *env;
	int started;
	int freeing;

	/* drain */
	int draining;
	struct event *drain_timer;
	long long drain_deadline_ms;
	void (*drain_done)(void *arg);
	void *drain_arg;

	TAILQ_HEAD(, dmsg_conn) conns;
	int nconns;
	uint64_t conn_serial;
	struct dmsg_ended *ended;          /* streams that ended lately, by (conn serial, id) */
	struct sw_dict *listeners;         /* port (u16 BE) -> listener */
	TAILQ_HEAD(, dmsg_stream) dials;   /* dials in lookup, server or wait */
	TAILQ_HEAD(, dmsg_stream) all;
	uint8_t ports[NPORTS / 8];         /* ephemeral ports in use */
	unsigned next_port;

	/* pool maintenance */
	struct event *maint_timer;
	int backoff_ms;
	int ever_ready;                    /* a session was up once: no more quick retries */
	long long start_ms;                /* sw_mono_ms() at dmsg_client_start */
	int fetching;
	struct penalty penalties[MAX_PENALTIES];

	/* entry */
	struct event *refresh_timer;
	struct event *post_timer;
	unsigned long long seq;
	int seq_known;                     /* seq continues the stored entry */
	int posting;
	int post_again;
	int syncs;
	unsigned long long gen;            /* bumped on each change of ready sessions */
	unsigned long long posted_gen;
	unsigned long long inflight_gen;
	int posted;
};

static const struct dmsg_link_ops conn_link_ops;

static void maintain(struct dmsg_client *c);
static void post_entry(struct dmsg_client *c);
static void dial_start_open(struct dmsg_conn *conn, struct dmsg_stream *st);

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


static struct sw_http_opts
http_opts(const struct dmsg_client *c)
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
static uint16_t
port_alloc(struct dmsg_client *c)
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

static struct dmsg_conn *
conn_find(const struct dmsg_client *c, const uint8_t pk[SW_PK_LEN])
{
	struct dmsg_conn *conn;

	TAILQ_FOREACH(conn, &c->conns, entry)
		if (!conn->dead && memcmp(conn->pk, pk, SW_PK_LEN) == 0)
			return conn;
	return NULL;
}

static int
penalized(const struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], long long now)
{
	for (int i = 0; i < MAX_PENALTIES; i++)
		if (c->penalties[i].until_ms > now &&
		    memcmp(c->penalties[i].pk, pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

static void
penalize(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN])
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

static void
stream_forget(struct dmsg_stream *st)
{
	struct dmsg_client *c = st->owner;

	if (st->dial_phase >= DIAL_LOOKUP && st->dial_phase <= DIAL_WAIT)
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

static struct dmsg_stream *
stream_new(struct dmsg_client *c)
{
	struct dmsg_stream *st = dmsg_stream_alloc(c->env);

	if (st == NULL)
		return NULL;
	st->owner = c;
	TAILQ_INSERT_TAIL(&c->all, st, all_entry);
	return st;
}

/* ---------- the session as a link ---------- */

static int
link_send(void *link, uint8_t type, uint32_t id, const void *p, size_t len)
{
	struct dmsg_conn *conn = link;

	if (conn->dead || !conn->ready)
		return -1;
	return dmsg_session_send(conn->s, type, id, p, len);
}

static int
link_congested(void *link)
{
	struct dmsg_conn *conn = link;

	return dmsg_session_outbuf(conn->s) > conn->c->o.session_hwm;
}

static void
link_wait(void *link, struct dmsg_stream *st)
{
	struct dmsg_conn *conn = link;

	TAILQ_INSERT_TAIL(&conn->waitq, st, wait_entry);
}

static void
link_detach(void *link, struct dmsg_stream *st)
{
	struct dmsg_conn *conn = link;
	uint8_t key[4];

	if (st->waiting)
		TAILQ_REMOVE(&conn->waitq, st, wait_entry);
	st->waiting = 0;
	sw_put_u32(key, st->id);
	if (sw_dict_take(conn->streams, key, sizeof(key), NULL))
		dmsg_ended_add(conn->c->ended, conn->serial, st->id, sw_mono_ms());
}

static const struct dmsg_link_ops conn_link_ops = {
	.send = link_send,
	.congested = link_congested,
	.wait = link_wait,
	.detach = link_detach,
};

static struct dmsg_stream *
conn_stream(struct dmsg_conn *conn, uint32_t id)
{
	uint8_t key[4];

	sw_put_u32(key, id);
	return sw_dict_get(conn->streams, key, sizeof(key));
}

static int
conn_attach(struct dmsg_conn *conn, struct dmsg_stream *st, uint32_t id)
{
	uint8_t key[4];

	sw_put_u32(key, id);
	if (sw_dict_add(conn->streams, key, sizeof(key), st) != 1)
		return -1;
	dmsg_stream_attach(st, &conn_link_ops, conn, id);
	return 0;
}

/* ---------- incoming streams ---------- */

static void
reject(struct dmsg_conn *conn, uint32_t id, int code, const char *why)
{
	uint8_t p[64];
	size_t n = strlen(why);

	if (n > sizeof(p) - 1)
		n = sizeof(p) - 1;
	p[0] = (uint8_t)code;
	memcpy(p + 1, why, n);
	dmsg_session_send(conn->s, DMSG_REJECT, id, p, n + 1);
}

static void
listener_hand_out(struct dmsg_listener *l, struct dmsg_stream *st)
{
	st->app_owned = 1;
	l->cb(l, st, l->arg);
}

/* Waiting streams that were reset or lost free their backlog slots. */
static void
listener_purge(struct dmsg_listener *l)
{
	struct dmsg_stream *st, *next;

	for (st = TAILQ_FIRST(&l->backlog); st != NULL; st = next) {
		next = TAILQ_NEXT(st, owner_entry);
		if (st->state == DMSG_ST_DEAD && st->end_why != DMSG_END_DONE) {
			TAILQ_REMOVE(&l->backlog, st, owner_entry);
			l->npending--;
			st->listener = NULL;
			dmsg_stream_unref(st);
		}
	}
}

static void
on_open(struct dmsg_conn *conn, uint32_t id, const uint8_t *p, size_t len)
{
	struct dmsg_client *c = conn->c;
	struct dmsg_stream_req req;
	struct dmsg_listener *l;
	struct dmsg_stream *st;
	uint8_t key[2];
	int code;

	if ((id & 1) != 0 || conn_stream(conn, id) != NULL) {
		dmsg_session_close(conn->s, "OPEN on a client-side or busy stream id");
		return;
	}
	if ((code = dmsg_stream_check_request(c->env, p, len, &req)) != 0) {
		reject(conn, id, code, "bad request");
		return;
	}
	sw_put_u16(key, req.dst_port);
	if ((l = sw_dict_get(c->listeners, key, sizeof(key))) == NULL) {
		reject(conn, id, DMSG_REJECT_NO_LISTENER, "no listener");
		return;
	}
	if ((l->paused || l->cb == NULL) && l->npending >= DMSG_BACKLOG)
		listener_purge(l);
	if ((l->paused || l->cb == NULL) && l->npending >= DMSG_BACKLOG) {
		reject(conn, id, DMSG_REJECT_BACKLOG, "backlog full");
		return;
	}
	if ((st = stream_new(c)) == NULL) {
		reject(conn, id, DMSG_REJECT_POLICY, "out of memory");
		return;
	}
	if (conn_attach(conn, st, id) == -1 || dmsg_stream_answer(st, p, len, &req) == -1) {
		/* the handshake failed: nothing was sent, so REJECT, not RESET */
		st->state = DMSG_ST_IDLE;
		dmsg_stream_abort(st);
		reject(conn, id, DMSG_REJECT_BAD_REQUEST, "handshake failed");
		dmsg_stream_unref(st);
		return;
	}
	if (!l->paused && l->cb != NULL) {
		listener_hand_out(l, st);
		return;
	}
	/* the listener keeps the creator's reference while it waits */
	st->listener = l;
	TAILQ_INSERT_TAIL(&l->backlog, st, owner_entry);
	l->npending++;
}

/* ---------- frames ---------- */

static void
on_accept(struct dmsg_conn *conn, struct dmsg_stream *st, const uint8_t *p, size_t len)
{
	dmsg_stream_ref(st);
	if (dmsg_stream_accepted(st, p, len) == -1) {
		sw_log_warn(conn->c->svc, "bad ACCEPT, reset", "id=%u", st->id);
		dmsg_stream_dial_fail(st, -1, "bad ACCEPT (signature, hash or handshake)");
	} else {
		st->dial_phase = DIAL_NONE;
		dmsg_stream_dial_done(st);
	}
	dmsg_stream_unref(st);
}

static void
on_reject(struct dmsg_stream *st, const uint8_t *p, size_t len)
{
	char why[80];
	size_t n = len > 1 ? len - 1 : 0;
	int code = len > 0 ? p[0] : -1;

	if (n > sizeof(why) - 1)
		n = sizeof(why) - 1;
	/* keep the reason printable: it came from the network */
	for (size_t i = 0; i < n; i++)
		why[i] = p[1 + i] >= 0x20 && p[1 + i] < 0x7f ? (char)p[1 + i] : '?';
	why[n] = '\0';
	/* the leg is gone on the relay already: no RESET */
	st->state = DMSG_ST_IDLE;
	dmsg_stream_ref(st);
	dmsg_stream_dial_fail(st, code, n > 0 ? why : "rejected");
	dmsg_stream_unref(st);
}

static void
conn_frame(struct dmsg_session *s, uint8_t type, uint32_t id, const uint8_t *p, size_t len,
    void *arg)
{
	struct dmsg_conn *conn = arg;
	struct dmsg_stream *st;

	(void)s;
	if (conn->dead)
		return;
	if (id == 0) {
		dmsg_session_close(conn->s, "frame on stream 0");
		return;
	}
	if (type == DMSG_OPEN) {
		on_open(conn, id, p, len);
		return;
	}
	st = conn_stream(conn, id);
	if (st == NULL) {
		/* late for a stream that just ended: ignored (dmsg.md) */
		if (dmsg_ended_has(conn->c->ended, conn->serial, id, sw_mono_ms()))
			return;
		/* a stream error: say so, unless it is a RESET or REJECT itself */
		if (type != DMSG_RESET && type != DMSG_REJECT)
			dmsg_session_send(conn->s, DMSG_RESET, id, NULL, 0);
		return;
	}
	if (st->state == DMSG_ST_OPENING) {
		switch (type) {
		case DMSG_ACCEPT:
			on_accept(conn, st, p, len);
			break;
		case DMSG_REJECT:
			on_reject(st, p, len);
			break;
		case DMSG_RESET:
			st->state = DMSG_ST_IDLE;
			dmsg_stream_ref(st);
			dmsg_stream_dial_fail(st, -1, "reset while opening");
			dmsg_stream_unref(st);
			break;
		default:
			dmsg_stream_ref(st);
			dmsg_stream_dial_fail(st, -1, "unexpected frame while opening");
			dmsg_stream_unref(st);
			break;
		}
		return;
	}
	switch (type) {
	case DMSG_DATA:
	case DMSG_WINDOW:
	case DMSG_CLOSE:
	case DMSG_RESET:
		if (dmsg_stream_input(st, type, p, len) == -1)
			dmsg_session_close(conn->s, "malformed frame");
		break;
	default:
		/* ACCEPT or REJECT on an open stream */
		dmsg_stream_fail(st, DMSG_END_PROTOCOL);
		break;
	}
}

/* ---------- sessions ---------- */

static void
conn_ready(struct dmsg_session *s, void *arg)
{
	struct dmsg_conn *conn = arg;
	struct dmsg_client *c = conn->c;
	struct dmsg_stream *st, *next;
	char hex[SW_PK_HEX];

	(void)s;
	conn->ready = 1;
	c->ever_ready = 1;
	c->backoff_ms = c->o.backoff_min_ms;
	c->gen++;
	sw_hex_encode(hex, conn->pk, SW_PK_LEN);
	sw_log_info(c->svc, "dmsg session up", "server=%s addr=%s", hex, dmsg_session_peer(s));
	for (st = TAILQ_FIRST(&c->dials); st != NULL; st = next) {
		next = TAILQ_NEXT(st, owner_entry);
		if (st->dial_phase == DIAL_WAIT && memcmp(st->via, conn->pk, SW_PK_LEN) == 0)
			dial_start_open(conn, st);
	}
	post_entry(c);
}

static void
conn_drained(struct dmsg_session *s, void *arg)
{
	struct dmsg_conn *conn = arg;
	struct dmsg_stream *st;

	(void)s;
	while (!conn->dead && (st = TAILQ_FIRST(&conn->waitq)) != NULL &&
	    !link_congested(conn)) {
		TAILQ_REMOVE(&conn->waitq, st, wait_entry);
		st->waiting = 0;
		dmsg_stream_ref(st);
		dmsg_stream_pump(st);
		dmsg_stream_unref(st);
	}
}

static void
schedule_maintain(struct dmsg_client *c, int ms)
{
	struct timeval tv;

	if (c->freeing || c->draining)
		return;
	sw_ms_to_tv(ms, &tv);
	evtimer_add(c->maint_timer, &tv);
}

static void
conn_free(struct dmsg_conn *conn)
{
	dmsg_session_free(conn->s);
	sw_dict_free(conn->streams);
	free(conn);
}

/* End every stream and dial that depended on conn. */
static void
conn_fail_streams(struct dmsg_conn *conn, const char *why)
{
	struct dmsg_client *c = conn->c;
	struct dmsg_stream **v = NULL, *st, *next;
	struct sw_dict_iter it;
	size_t n = 0, cap = sw_dict_size(conn->streams);
	void *val;

	if (cap > 0 && (v = calloc(cap, sizeof(*v))) != NULL) {
		sw_dict_iter_init(&it, conn->streams);
		while (n < cap && sw_dict_next(&it, NULL, NULL, &val)) {
			v[n] = val;
			dmsg_stream_ref(v[n++]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		st = v[i];
		if (st->state == DMSG_ST_OPENING) {
			st->state = DMSG_ST_IDLE;
			dmsg_stream_dial_fail(st, -1, why);
		} else {
			dmsg_stream_end(st, DMSG_END_SESSION_LOST);
		}
		dmsg_stream_unref(st);
	}
	free(v);
	/* if calloc failed, detach what is left without callbacks */
	sw_dict_iter_init(&it, conn->streams);
	while (sw_dict_next(&it, NULL, NULL, &val))
		dmsg_stream_end(val, DMSG_END_SESSION_LOST);
	for (st = TAILQ_FIRST(&c->dials); st != NULL; st = next) {
		next = TAILQ_NEXT(st, owner_entry);
		if (st->dial_phase == DIAL_WAIT && memcmp(st->via, conn->pk, SW_PK_LEN) == 0)
			dmsg_stream_dial_fail(st, -1, why);
	}
}

/*
 * The wait before the next try to find or reach a server, and the next
 * backoff step.  In the first backoff_min_ms after start, before any session
 * was up, the wait is first_retry_ms: a deployment that starts at once finds
 * no server for the few ms before the servers registered, and a full second
 * of backoff is what kept it from being healthy.
 */
static int
retry_delay(struct dmsg_client *c)
{
	int ms = c->backoff_ms;

	if (!c->ever_ready && sw_mono_ms() - c->start_ms < c->o.backoff_min_ms)
		return c->o.first_retry_ms;
	if (c->backoff_ms < c->o.backoff_max_ms) {
		c->backoff_ms *= 2;
		if (c->backoff_ms > c->o.backoff_max_ms)
			c->backoff_ms = c->o.backoff_max_ms;
	}
	return ms;
}

static void
conn_closed(struct dmsg_session *s, const char *reason, void *arg)
{
	struct dmsg_conn *conn = arg;
	struct dmsg_client *c = conn->c;
	char hex[SW_PK_HEX], q[128];
	int was_ready = conn->ready;

	(void)s;
	sw_hex_encode(hex, conn->pk, SW_PK_LEN);
	sw_log(c->draining ? SW_LOG_DEBUG : SW_LOG_WARN,
	    c->svc, was_ready ? "dmsg session lost" : "dmsg session failed",
	    "server=%s reason=%s", hex, sw_log_q(q, sizeof(q), reason));
	conn->dead = 1;
	conn->ready = 0;
	penalize(c, conn->pk);
	conn_fail_streams(conn, was_ready ? "session lost" : "session to the server failed");
	TAILQ_REMOVE(&c->conns, conn, entry);
	c->nconns--;
	conn_free(conn);
	if (was_ready) {
		c->gen++;
		post_entry(c);
		schedule_maintain(c, c->backoff_ms);
		return;
	}
	schedule_maintain(c, retry_delay(c));
}

static const struct dmsg_session_cbs conn_cbs = {
	.ready = conn_ready,
	.frame = conn_frame,
	.closed = conn_closed,
	.drained = conn_drained,
};

/* Open a session to the server pk at addr ("host:port"). */
static struct dmsg_conn *
conn_open(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], const char *addr)
{
	struct dmsg_conn *conn = NULL;
	struct bufferevent *bev = NULL;
	char host[DMSG_ENTRY_MAX_ADDR + 1], hex[SW_PK_HEX];
	const char *colon;
	long port;

	if (c->nconns >= MAX_CONNS || !dmsg_entry_addr_ok(addr) ||
	    (colon = strrchr(addr, ':')) == NULL || (size_t)(colon - addr) >= sizeof(host))
		goto fail;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	/* "[::1]:8080" */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
	}
	port = strtol(colon + 1, NULL, 10);
	if ((conn = calloc(1, sizeof(*conn))) == NULL ||
	    (conn->streams = sw_dict_new(NULL)) == NULL)
		goto fail;
	conn->c = c;
	conn->serial = ++c->conn_serial;
	memcpy(conn->pk, pk, SW_PK_LEN);
	conn->next_id = 1;
	TAILQ_INIT(&conn->waitq);
	if ((bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	if (bufferevent_socket_connect_hostname(bev, c->dns, AF_UNSPEC, host, (int)port) == -1)
		goto fail;
	conn->s = dmsg_session_new(c->base, bev, 1, c->kp, pk, &conn_cbs, conn, &c->o.session,
	    c->svc);
	conn->bev = bev;
	bev = NULL; /* the session owns it, also on failure */
	if (conn->s == NULL)
		goto fail;
	TAILQ_INSERT_TAIL(&c->conns, conn, entry);
	c->nconns++;
	sw_hex_encode(hex, pk, SW_PK_LEN);
	sw_log_debug(c->svc, "dmsg session opening", "server=%s addr=%s", hex, addr);
	return conn;
fail:
	sw_hex_encode(hex, pk, SW_PK_LEN);
	sw_log_warn(c->svc, "cannot open a dmsg session", "server=%s", hex);
	if (bev != NULL)
		bufferevent_free(bev);
	if (conn != NULL) {
		sw_dict_free(conn->streams);
		free(conn);
	}
	penalize(c, pk);
	return NULL;
}

/* ---------- pool maintenance ---------- */

static void
servers_fetched(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_client *c = arg;
	struct dmsg_entry *cand = NULL;
	const cJSON *item;
	char err[128];
	size_t n = 0, opened = 0;
	long long now;
	int need;

	c->fetching = 0;
	if (c->freeing)
		return;
	need = c->o.min_sessions - c->nconns;
	if (resp->status != 200 || !cJSON_IsArray(resp->json)) {
		sw_log_warn(c->svc, "cannot fetch available servers", "status=%d", resp->status);
		goto retry;
	}
	if (need <= 0)
		return;
	if ((cand = calloc(MAX_CANDIDATES, sizeof(*cand))) == NULL)
		goto retry;
	now = dmsg_now_ms(c->base);
	/* first the servers that have not failed lately; the rest only if needed */
	for (int pass = 0; pass < 2 && opened < (size_t)need; pass++) {
		n = 0;
		cJSON_ArrayForEach(item, resp->json) {
			struct dmsg_entry *e = &cand[n];

			if (n >= MAX_CANDIDATES)
				break;
			if (dmsg_entry_parse(item, e, err, sizeof(err)) != 0 || !e->has_server ||
			    conn_find(c, e->pk) != NULL || penalized(c, e->pk, now) != pass)
				continue;
			n++;
		}
		/* random order spreads clients over servers */
		for (size_t i = n; i > 1; i--) {
			size_t j = randombytes_uniform((uint32_t)i);
			struct dmsg_entry t = cand[i - 1];

			cand[i - 1] = cand[j];
			cand[j] = t;
		}
		for (size_t i = 0; i < n && opened < (size_t)need; i++)
			if (conn_open(c, cand[i].pk, cand[i].address) != NULL)
				opened++;
	}
	free(cand);
	if (opened > 0)
		return;
	sw_log_warn(c->svc, "no dmsg server to connect to", "need=%d", need);
retry:
	schedule_maintain(c, retry_delay(c));
}

static void
maintain(struct dmsg_client *c)
{
	struct sw_http_opts o = http_opts(c);
	char url[512];

	if (c->freeing || c->draining || c->fetching || c->nconns >= c->o.min_sessions)
		return;
	snprintf(url, sizeof(url), "%s" DD_PATH_AVAILABLE, c->discovery);
	c->fetching = 1;
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, servers_fetched, c) == -1) {
		c->fetching = 0;
		schedule_maintain(c, retry_delay(c));
	}
}

static void
maint_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	maintain(arg);
}

/* ---------- our entry ---------- */

static void post_entry_now(struct dmsg_client *c);

static void
post_later(struct dmsg_client *c, int ms)
{
	struct timeval tv;

	sw_ms_to_tv(ms, &tv);
	evtimer_add(c->post_timer, &tv);
}

static void
entry_synced(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_client *c = arg;
	struct dmsg_entry e;
	char err[128];

	c->posting = 0;
	if (c->freeing)
		return;
	if (resp->status == 404) {
		c->seq_known = 1;
	} else if (resp->status == 200 && resp->json != NULL &&
	    dmsg_entry_parse(resp->json, &e, err, sizeof(err)) == 0 &&
	    memcmp(e.pk, c->kp->pk, SW_PK_LEN) == 0) {
		if (e.sequence > c->seq)
			c->seq = e.sequence;
		c->seq_known = 1;
	} else {
		post_later(c, POST_RETRY_MS);
		return;
	}
	post_entry_now(c);
}

/* Learn the stored sequence (first post, or after a 409). */
static void
entry_sync(struct dmsg_client *c)
{
	struct sw_http_opts o = http_opts(c);
	char url[512], hex[SW_PK_HEX];

	sw_hex_encode(hex, c->kp->pk, SW_PK_LEN);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY "%s", c->discovery, hex);
	c->posting = 1;
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, entry_synced, c) == -1) {
		c->posting = 0;
		post_later(c, POST_RETRY_MS);
	}
}

static void
entry_posted(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_client *c = arg;

	c->posting = 0;
	if (c->freeing)
		return;
	if (resp->status == 200) {
		c->posted_gen = c->inflight_gen;
		c->posted = 1;
		c->syncs = 0;
		if (c->post_again || c->posted_gen != c->gen)
			post_entry_now(c);
		else if (c->o.registered != NULL)
			c->o.registered(c, c->o.registered_arg);
		return;
	}
	if (resp->status == 409 && c->syncs < MAX_POST_SYNCS) {
		c->syncs++;
		c->seq_known = 0;
		entry_sync(c);
		return;
	}
	sw_log_warn(c->svc, "cannot post the dmsg entry", "status=%d", resp->status);
	c->syncs = 0;
	post_later(c, POST_RETRY_MS);
}

static void
post_entry_now(struct dmsg_client *c)
{
	struct sw_http_opts o = http_opts(c);
	struct dmsg_entry e;
	struct dmsg_conn *conn;
	cJSON *json = NULL;
	char url[512], *body = NULL;

	c->post_again = 0;
	if (!c->seq_known) {
		entry_sync(c);
		return;
	}
	memset(&e, 0, sizeof(e));
	memcpy(e.pk, c->kp->pk, SW_PK_LEN);
	e.sequence = ++c->seq;
	e.timestamp = (unsigned long long)time(NULL);
	e.has_client = 1;
	TAILQ_FOREACH(conn, &c->conns, entry)
		if (conn->ready && e.ndelegated < DMSG_ENTRY_MAX_DELEGATED)
			memcpy(e.delegated[e.ndelegated++], conn->pk, SW_PK_LEN);
	if ((json = dmsg_entry_to_json(&e, c->kp)) == NULL ||
	    (body = cJSON_PrintUnformatted(json)) == NULL)
		goto fail;
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY, c->discovery);
	c->inflight_gen = c->gen;
	if (sw_http_request(c->http, "POST", url, body, strlen(body), &o, entry_posted, c) == -1)
		goto fail;
	c->posting = 1;
	sw_log_debug(c->svc, "posting dmsg entry", "seq=%llu servers=%zu", e.sequence,
	    e.ndelegated);
	cJSON_Delete(json);
	free(body);
	return;
fail:
	cJSON_Delete(json);
	free(body);
	post_later(c, POST_RETRY_MS);
}

static void
post_entry(struct dmsg_client *c)
{
	if (!c->started || c->freeing || c->draining)
		return;
	if (c->posting) {
		c->post_again = 1;
		return;
	}
	post_entry_now(c);
}

static void
post_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	post_entry(arg);
}

static void
refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_client *c = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (c->posted || dmsg_client_nsessions(c) > 0)
		post_entry(c);
	maintain(c);
	sw_ms_to_tv(c->o.refresh_ms, &tv);
	evtimer_add(c->refresh_timer, &tv);
}

/* ---------- dialling ---------- */

static void
dial_start_open(struct dmsg_conn *conn, struct dmsg_stream *st)
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
		if (conn_stream(conn, cand) == NULL) {
			id = cand;
			break;
		}
	}
	if (id == 0 || conn_attach(conn, st, id) == -1) {
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
	struct dmsg_conn *conn = conn_find(c, via);

	memcpy(st->via, via, SW_PK_LEN);
	if (conn != NULL && conn->ready) {
		dial_start_open(conn, st);
		return;
	}
	st->dial_phase = DIAL_WAIT;
	if (conn == NULL && conn_open(c, via, addr) == NULL)
		dmsg_stream_dial_fail(st, -1, "cannot open a session to the peer's server");
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

static void
peer_entry_fetched(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_stream *st = arg;
	struct dmsg_client *c = st->owner;
	struct sw_http_opts o = http_opts(c);
	struct dmsg_conn *conn;
	struct dmsg_entry *e = NULL;
	char err[128], url[512], hex[SW_PK_HEX];
	size_t pick;

	if (!dial_alive(c, st))
		goto out;
	if (resp->status == 404) {
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
		dmsg_stream_dial_fail(st, -1, "the peer has no dmsg server");
		goto out;
	}
	/* a session we have (ready first, then one being opened) to one of its servers */
	for (int want_ready = 1; want_ready >= 0; want_ready--)
		for (size_t i = 0; i < e->ndelegated; i++)
			if ((conn = conn_find(c, e->delegated[i])) != NULL &&
			    conn->ready == want_ready) {
				dial_via(c, st, e->delegated[i], NULL);
				goto out;
			}
	pick = randombytes_uniform((uint32_t)e->ndelegated);
	memcpy(st->via, e->delegated[pick], SW_PK_LEN);
	st->dial_phase = DIAL_SERVER;
	sw_hex_encode(hex, st->via, SW_PK_LEN);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY "%s", c->discovery, hex);
	dmsg_stream_ref(st);
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, server_entry_fetched, st) == -1) {
		dmsg_stream_unref(st);
		dmsg_stream_dial_fail(st, -1, "cannot ask discovery");
	}
out:
	free(e);
	dmsg_stream_unref(st);
}

struct dmsg_stream *
dmsg_client_dial(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], uint16_t port,
    int timeout_ms, dmsg_dial_cb *cb, void *arg)
{
	struct sw_http_opts o = http_opts(c);
	struct dmsg_stream *st;
	char url[512], hex[SW_PK_HEX];

	if (cb == NULL || port == 0 || sw_pk_is_null(pk) || !c->started || c->freeing)
		return NULL;
	if ((st = stream_new(c)) == NULL)
		return NULL;
	if ((st->local_port = port_alloc(c)) == 0) {
		dmsg_stream_unref(st);
		return NULL;
	}
	st->initiator = 1;
	memcpy(st->remote_pk, pk, SW_PK_LEN);
	st->remote_port = port;
	st->app_owned = 1;
	st->dial_cb = cb;
	st->dial_arg = arg;
	st->dial_phase = DIAL_LOOKUP;
	TAILQ_INSERT_TAIL(&c->dials, st, owner_entry);
	sw_hex_encode(hex, pk, SW_PK_LEN);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY "%s", c->discovery, hex);
	/* the request holds its own reference: a cancelled dial outlives its handle */
	dmsg_stream_ref(st);
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, peer_entry_fetched, st) == -1) {
		dmsg_stream_unref(st);
		stream_forget(st);
		st->app_owned = 0;
		st->dial_cb = NULL;
		dmsg_stream_unref(st);
		return NULL;
	}
	dmsg_stream_dial_deadline(st, dmsg_now_ms(c->base) +
	    (timeout_ms > 0 ? timeout_ms : DEF_DIAL_TIMEOUT));
	return st;
}

/* ---------- listeners ---------- */

static void
listener_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_listener *l = arg;
	struct dmsg_stream *st;

	(void)fd;
	(void)what;
	while (!l->paused && l->cb != NULL && (st = dmsg_listener_accept(l)) != NULL)
		l->cb(l, st, l->arg);
}

struct dmsg_listener *
dmsg_client_listen(struct dmsg_client *c, uint16_t port, dmsg_accept_cb *cb, void *arg)
{
	struct dmsg_listener *l;
	uint8_t key[2];

	sw_put_u16(key, port);
	if (port == 0 || sw_dict_find(c->listeners, key, sizeof(key), NULL))
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->c = c;
	l->port = port;
	l->cb = cb;
	l->arg = arg;
	TAILQ_INIT(&l->backlog);
	if ((l->kick = event_new(c->base, -1, 0, listener_kick, l)) == NULL ||
	    sw_dict_add(c->listeners, key, sizeof(key), l) != 1) {
		if (l->kick != NULL)
			event_free(l->kick);
		free(l);
		return NULL;
	}
	return l;
}

void
dmsg_listener_pause(struct dmsg_listener *l, int paused)
{
	l->paused = paused != 0;
	if (!l->paused && l->npending > 0)
		event_active(l->kick, 0, 0);
}

struct dmsg_stream *
dmsg_listener_accept(struct dmsg_listener *l)
{
	struct dmsg_stream *st;

	while ((st = TAILQ_FIRST(&l->backlog)) != NULL) {
		TAILQ_REMOVE(&l->backlog, st, owner_entry);
		l->npending--;
		st->listener = NULL;
		/* hand out live ones and the ended ones that still have data */
		if (st->state == DMSG_ST_OPEN || st->end_why == DMSG_END_DONE) {
			st->app_owned = 1;
			return st;
		}
		dmsg_stream_unref(st);
	}
	return NULL;
}

size_t
dmsg_listener_pending(const struct dmsg_listener *l)
{
	return l->npending;
}

static void
listener_drop(struct dmsg_listener *l)
{
	struct dmsg_stream *st;

	while ((st = TAILQ_FIRST(&l->backlog)) != NULL) {
		TAILQ_REMOVE(&l->backlog, st, owner_entry);
		st->listener = NULL;
		dmsg_stream_abort(st);
		dmsg_stream_unref(st);
	}
	l->npending = 0;
	event_free(l->kick);
	free(l);
}

void
dmsg_listener_free(struct dmsg_listener *l)
{
	uint8_t key[2];

	if (l == NULL)
		return;
	sw_put_u16(key, l->port);
	sw_dict_take(l->c->listeners, key, sizeof(key), NULL);
	listener_drop(l);
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
	c->backoff_ms = c->o.backoff_min_ms;
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
	c->env->forget = stream_forget;
	c->env->gone = stream_gone;
	if (sw_sk_to_x25519(c->env->xsk, kp) == -1)
		goto fail;
	if ((c->http = sw_http_client_new(base, c->svc)) == NULL ||
	    (c->listeners = sw_dict_new(NULL)) == NULL ||
	    (c->ended = dmsg_ended_new(0, 0)) == NULL ||
	    (c->maint_timer = evtimer_new(base, maint_timer_cb, c)) == NULL ||
	    (c->refresh_timer = evtimer_new(base, refresh_cb, c)) == NULL ||
	    (c->post_timer = evtimer_new(base, post_timer_cb, c)) == NULL ||
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
	maintain(c);
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
		conn_free(conn);
	}
	if (c->listeners != NULL) {
		sw_dict_iter_init(&it, c->listeners);
		while (sw_dict_next(&it, NULL, NULL, &val))
			listener_drop(val);
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
	if (c->env != NULL)
		sodium_memzero(c->env->xsk, sizeof(c->env->xsk));
	free(c->env);
	dmsg_ended_free(c->ended);
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

const uint8_t *
dmsg_client_pk(const struct dmsg_client *c)
{
	return c->kp->pk;
}
