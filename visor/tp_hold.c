/*
 * tp_hold: back-pressure for forwarding (docs/routing.md, "Intermediary
 * back-pressure").
 *
 * A route group is reliable because its transports are, and it has no
 * window of its own: a packet an intermediary drops is a nonce gap the far
 * end reads as a forgery.  So when a forwarded packet's egress has no room
 * (a sudph queue at 4 MiB, an stcpr link with VTP_LOCAL_QUEUE unsent), the
 * ingress transport holds that one packet and stops reading; the bytes
 * behind it wait in the kernel and TCP slows the sender down, as it would
 * for any slow reader; a sudph ingress stops delivering, so what follows
 * waits unacknowledged in its receive window and its sender stops when the
 * window is full.  A timer asks every HOLD_RETRY_MS whether the egress
 * has room again, only while something is held.  A held packet whose
 * egress closed, or can never take it, is dropped and the ingress reads on.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "noise_link.h"
#include "router.h"
#include "tp_int.h"
#include "visor.h"

#define HOLD_RETRY_MS 2

struct vtp_held {
	struct vtp *in;           /* the ingress holding it */
	LIST_ENTRY(vtp_held) entry; /* the manager's list: retry walks only these */
	uint8_t out[TP_ID_LEN];
	uint8_t type;
	uint32_t route_id;
	int resume;               /* released: reading starts again */
	size_t len;
	uint8_t payload[];
};

static void
read_pause(struct vtp *t, int paused)
{
	if (t->kind == VTP_STCPR)
		noise_link_pause(t->nl, paused);
	else if (t->kind == VTP_DMSG && t->st != NULL)
		tp_dmsg_pause(t, paused);
	else if (t->kind == VTP_SUDPH)
		(void)tp_sudph_pause(t, paused); /* t may be gone after a resume */
}

int
vtp_holding(const struct vtp *t)
{
	return t != NULL && t->held != NULL;
}

static void retry(evutil_socket_t fd, short what, void *arg);

int
vtp_hold(struct vtp *in, const struct vtp *out, uint8_t type, uint32_t route_id,
    const void *payload, size_t len)
{
	struct vtp_mgr *m = in->m;
	struct vtp_held *h;

	if (in->held != NULL || len > VTP_MAX_PAYLOAD)
		return -1;
	if (m->hold_timer == NULL &&
	    (m->hold_timer = evtimer_new(sw_svc_base(m->v->svc), retry, m)) == NULL)
		return -1;
	if ((h = malloc(sizeof(*h) + len)) == NULL)
		return -1;
	h->in = in;
	LIST_INSERT_HEAD(&m->held, h, entry);
	memcpy(h->out, out->id, TP_ID_LEN);
	h->type = type;
	h->route_id = route_id;
	h->resume = 0;
	h->len = len;
	if (len > 0)
		memcpy(h->payload, payload, len);
	in->held = h;
	read_pause(in, 1);
	if (!evtimer_pending(m->hold_timer, NULL))
		sw_timer_in(m->hold_timer, HOLD_RETRY_MS);
	return 0;
}

void
vtp_hold_drop(struct vtp *t)
{
	struct vtp_held *h = t->held;

	if (h == NULL)
		return;
	LIST_REMOVE(h, entry);
	free(h);
	t->held = NULL;
}

/*
 * Two passes over the held packets only: first every one that can go goes
 * (or is given up), then the released ingresses read again one by one,
 * from the list's head each time, since reading may close a transport or
 * hold a packet again (a new hold goes in at the head, not released).
 */
static void
retry(evutil_socket_t fd, short what, void *arg)
{
	struct vtp_mgr *m = arg;
	struct vtp_held *h;

	(void)fd;
	(void)what;
	LIST_FOREACH(h, &m->held, entry) {
		struct vtp *out;
		int room;

		if (h->resume)
			continue;
		out = vtp_find(m, h->out);
		room = vtp_room(out, h->len);
		if (room == 0)
			continue;
		if (out == NULL) {
			vrt_held_done(m->v->rt, 0);
		} else if (room == -1 ||
		    vtp_send(out, h->type, h->route_id, h->payload, h->len) == -1) {
			sw_log_debug(m->v->name, "held packet dropped", "t_id=%s", h->in->id_text);
			vrt_held_done(m->v->rt, -1);
		} else {
			vrt_held_done(m->v->rt, 1);
		}
		h->resume = 1;
	}
	for (;;) {
		struct vtp *t;

		LIST_FOREACH(h, &m->held, entry)
			if (h->resume)
				break;
		if (h == NULL)
			break;
		t = h->in;
		vtp_hold_drop(t);
		t->last_rx_ms = sw_mono_ms(); /* the peer could not be heard meanwhile */
		read_pause(t, 0);
	}
	if (!LIST_EMPTY(&m->held))
		sw_timer_in(m->hold_timer, HOLD_RETRY_MS);
}

void
vtp_hold_stop(struct vtp_mgr *m)
{
	if (m->hold_timer != NULL)
		event_free(m->hold_timer);
	m->hold_timer = NULL;
}
