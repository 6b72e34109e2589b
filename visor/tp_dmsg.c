/*
 * tp_dmsg.c: transports carried by a dmsg stream to the peer's port 45.
 *
 * A dmsg stream is a byte stream (DATA frames are cut where windows allow,
 * not where packets end), so each packet travels behind a u16 big-endian
 * length, as on stcpr; the receiver collects bytes until a whole packet is
 * there.  At most one maximal packet is ever held.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "dmsg_client.h"
#include "dmsg_wire.h"
#include "log.h"
#include "tp_int.h"
#include "visor.h"

/* Every whole packet waiting, until one is held (tp_hold.c).  -1 when t is gone. */
static int
parse(struct vtp *t)
{
	uint8_t hdr[2];
	size_t n;

	while (t->held == NULL && evbuffer_get_length(t->rxbuf) >= 2) {
		uint8_t *p;

		evbuffer_copyout(t->rxbuf, hdr, 2);
		n = sw_get_u16(hdr);
		if (n < VTP_PKT_HDR || n > VTP_MAX_PACKET) {
			vtp_lost(t, "bad packet length");
			return -1;
		}
		if (evbuffer_get_length(t->rxbuf) < 2 + n)
			break;
		if ((p = evbuffer_pullup(t->rxbuf, (ev_ssize_t)(2 + n))) == NULL) {
			vtp_lost(t, "out of memory");
			return -1;
		}
		if (vtp_rx(t, p + 2, n) == -1)
			return -1;
		evbuffer_drain(t->rxbuf, 2 + n);
	}
	return 0;
}

static void
on_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct vtp *t = arg;

	(void)st;
	if (evbuffer_add(t->rxbuf, data, len) == -1) {
		vtp_lost(t, "out of memory");
		return;
	}
	(void)parse(t);
}

void
tp_dmsg_pause(struct vtp *t, int paused)
{
	if (t->st == NULL)
		return;
	if (paused) {
		dmsg_stream_pause_read(t->st, 1);
		return;
	}
	/* What waits here came before what the stream holds; t may go meanwhile. */
	if (parse(t) == -1 || t->held != NULL)
		return;
	dmsg_stream_pause_read(t->st, 0);
}

static void
on_eof(struct dmsg_stream *st, void *arg)
{
	(void)st;
	vtp_lost(arg, "stream closed by the peer");
}

static void
on_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	(void)st;
	vtp_lost(arg, dmsg_stream_end_str(why));
}

static const struct dmsg_stream_cbs stream_cbs = {
	.read = on_read,
	.eof = on_eof,
	.closed = on_closed,
};

static int
attach(struct vtp *t, struct dmsg_stream *st)
{
	t->st = st;
	if ((t->rxbuf = evbuffer_new()) == NULL)
		return -1;
	dmsg_stream_set_cbs(st, &stream_cbs, t);
	return 0;
}

static void
on_accept(struct dmsg_listener *l, struct dmsg_stream *st, void *arg)
{
	struct vtp_mgr *m = arg;
	struct vtp *t;

	(void)l;
	if (m->stopping || (t = vtp_new(m, VTP_DMSG, NULL, 0)) == NULL) {
		dmsg_stream_free(st);
		return;
	}
	if (attach(t, st) == -1) {
		vtp_lost(t, "out of memory");
		return;
	}
	if (vtp_incoming(t, dmsg_stream_remote_pk(st)) == -1)
		return;
	vtp_up(t);
}

static void
on_dial(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct vtp *t = arg;
	char why[160];

	if (st == NULL) {
		t->st = NULL; /* the library is done with it */
		if (reject > 0)
			snprintf(why, sizeof(why), "dmsg dial refused (code %d): %s", reject,
			    err != NULL ? err : "");
		else
			snprintf(why, sizeof(why), "dmsg dial failed: %s",
			    err != NULL ? err : "unknown");
		vtp_lost(t, why);
		return;
	}
	if (attach(t, st) == -1) {
		vtp_lost(t, "out of memory");
		return;
	}
	vtp_up(t);
}

int
tp_dmsg_start(struct vtp_mgr *m)
{
	m->dl = dmsg_client_listen(m->v->dmsg, VTP_DMSG_PORT, on_accept, m);
	if (m->dl == NULL) {
		sw_log_error(m->v->name, "cannot listen on dmsg port 45", NULL);
		return -1;
	}
	return 0;
}

void
tp_dmsg_dial(struct vtp *t)
{
	t->st = dmsg_client_dial(t->m->v->dmsg, t->pk, VTP_DMSG_PORT, VTP_DIAL_MS, on_dial, t);
	if (t->st == NULL)
		vtp_lost(t, "dmsg dial failed");
}

int
tp_dmsg_room(const struct vtp *t, size_t len)
{
	return t->st != NULL &&
	    dmsg_stream_queued(t->st) + 2 + VTP_PKT_HDR + len <= DMSG_STREAM_MAX_QUEUE;
}

int
tp_dmsg_send(struct vtp *t, const uint8_t *hdr, const void *payload, size_t len)
{
	uint8_t pre[2 + VTP_PKT_HDR];

	/* Both parts or neither: a half-queued packet would desynchronise the peer. */
	if (!tp_dmsg_room(t, len))
		return -1;
	sw_put_u16(pre, (uint16_t)(VTP_PKT_HDR + len));
	memcpy(pre + 2, hdr, VTP_PKT_HDR);
	if (dmsg_stream_write(t->st, pre, sizeof(pre)) == -1 ||
	    (len > 0 && dmsg_stream_write(t->st, payload, len) == -1))
		return -1;
	return 0;
}

void
tp_dmsg_release(struct vtp *t)
{
	dmsg_stream_free(t->st);
	t->st = NULL;
	if (t->rxbuf != NULL)
		evbuffer_free(t->rxbuf);
	t->rxbuf = NULL;
}

void
tp_dmsg_stop(struct vtp_mgr *m)
{
	dmsg_listener_free(m->dl);
	m->dl = NULL;
}
