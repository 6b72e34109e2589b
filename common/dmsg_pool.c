/*
 * dmsg_pool: the client's sessions (see dmsg_client_int.h): each session
 * is a link for its streams, frames are dispatched by stream id (the
 * client's own legs odd, the server-opened incoming ones even), and a
 * session's end fails what depended on it and schedules the pool's repair.
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

static const struct dmsg_link_ops conn_link_ops;

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

struct dmsg_stream *
dmsgc_conn_stream(struct dmsg_conn *conn, uint32_t id)
{
	uint8_t key[4];

	sw_put_u32(key, id);
	return sw_dict_get(conn->streams, key, sizeof(key));
}

int
dmsgc_conn_attach(struct dmsg_conn *conn, struct dmsg_stream *st, uint32_t id)
{
	uint8_t key[4];

	sw_put_u32(key, id);
	if (sw_dict_add(conn->streams, key, sizeof(key), st) != 1)
		return -1;
	dmsg_stream_attach(st, &conn_link_ops, conn, id);
	return 0;
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
		dmsgc_on_open(conn, id, p, len);
		return;
	}
	st = dmsgc_conn_stream(conn, id);
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
	sw_backoff_reset(&c->backoff);
	c->gen++;
	sw_hex_encode(hex, conn->pk, SW_PK_LEN);
	sw_log_info(c->svc, "dmsg session up", "server=%s addr=%s", hex, dmsg_session_peer(s));
	for (st = TAILQ_FIRST(&c->dials); st != NULL; st = next) {
		next = TAILQ_NEXT(st, owner_entry);
		if (st->dial_phase == DIAL_WAIT && memcmp(st->via, conn->pk, SW_PK_LEN) == 0)
			dmsgc_dial_start_open(conn, st);
	}
	dmsgc_post_entry(c);
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

void
dmsgc_schedule_maintain(struct dmsg_client *c, int ms)
{
	struct timeval tv;

	if (c->freeing || c->draining)
		return;
	sw_ms_to_tv(ms, &tv);
	evtimer_add(c->maint_timer, &tv);
}

void
dmsgc_conn_free(struct dmsg_conn *conn)
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
 * of backoff is what kept it from being healthy.  Then, until a session was
 * up once, the start window of backoff.h (servers started in parallel with
 * their clients register any time in the first seconds).
 */
int
dmsgc_retry_delay(struct dmsg_client *c)
{
	if (c->ever_ready)
		return (int)sw_backoff_next(&c->backoff);
	if (sw_mono_ms() - c->start_ms < c->o.backoff_min_ms)
		return c->o.first_retry_ms;
	return (int)sw_backoff_next_start(&c->backoff, c->start_ms);
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
	dmsgc_penalize(c, conn->pk);
	conn_fail_streams(conn, was_ready ? "session lost" : "session to the server failed");
	TAILQ_REMOVE(&c->conns, conn, entry);
	c->nconns--;
	dmsgc_conn_free(conn);
	if (was_ready) {
		c->gen++;
		dmsgc_post_entry(c);
		dmsgc_schedule_maintain(c, (int)sw_backoff_peek(&c->backoff));
		return;
	}
	dmsgc_schedule_maintain(c, dmsgc_retry_delay(c));
}

static const struct dmsg_session_cbs conn_cbs = {
	.ready = conn_ready,
	.frame = conn_frame,
	.closed = conn_closed,
	.drained = conn_drained,
};

/* Open a session to the server pk at addr ("host:port"). */
struct dmsg_conn *
dmsgc_conn_open(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], const char *addr)
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
	dmsgc_penalize(c, pk);
	return NULL;
}
