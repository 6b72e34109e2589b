/*
 * dmsg_listen: listening ports (see dmsg_client_int.h): an OPEN checked and
 * answered, the stream handed to the accept callback or held in a backlog
 * of DMSG_BACKLOG while the listener is paused.
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

void
dmsgc_on_open(struct dmsg_conn *conn, uint32_t id, const uint8_t *p, size_t len)
{
	struct dmsg_client *c = conn->c;
	struct dmsg_stream_req req;
	struct dmsg_listener *l;
	struct dmsg_stream *st;
	uint8_t key[2];
	int code;

	if ((id & 1) != 0 || dmsgc_conn_stream(conn, id) != NULL) {
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
	if ((st = dmsgc_stream_new(c)) == NULL) {
		reject(conn, id, DMSG_REJECT_POLICY, "out of memory");
		return;
	}
	if (dmsgc_conn_attach(conn, st, id) == -1 || dmsg_stream_answer(st, p, len, &req) == -1) {
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

void
dmsgc_listener_drop(struct dmsg_listener *l)
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
	dmsgc_listener_drop(l);
}
