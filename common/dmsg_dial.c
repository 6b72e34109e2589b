/*
 * dmsg_dial: the dial state machine (see dmsg_client_int.h): lookup (GET
 * the peer's entry) -> server (GET a delegated server's entry, open a
 * session) -> wait (for that handshake) -> opening (OPEN sent), all under
 * one deadline.
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
	struct sw_http_opts o = dmsgc_http_opts(c);
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
			if ((conn = dmsgc_conn_find(c, e->delegated[i])) != NULL &&
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
	struct sw_http_opts o = dmsgc_http_opts(c);
	struct dmsg_stream *st;
	char url[512], hex[SW_PK_HEX];

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
	st->dial_phase = DIAL_LOOKUP;
	TAILQ_INSERT_TAIL(&c->dials, st, owner_entry);
	sw_hex_encode(hex, pk, SW_PK_LEN);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY "%s", c->discovery, hex);
	/* the request holds its own reference: a cancelled dial outlives its handle */
	dmsg_stream_ref(st);
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, peer_entry_fetched, st) == -1) {
		dmsg_stream_unref(st);
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
