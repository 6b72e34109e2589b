/*
 * tp_burst.c: POST /api/transports/{t_id}/burst {"count","size","window"}:
 * count PINGs of size bytes each over one transport, at most window
 * unanswered at a time, and the PONGs counted and checked for order.  It
 * answers {"count","received","in_order","ms","bytes_per_s"} when every
 * PONG is back or after BURST_DEADLINE_MS.
 *
 * What it is for: showing that a transport (sudph above all) delivers every
 * packet in order under loss, and measuring throughput (bench/sudph.sh),
 * from the outside, with the transport's own packets.  Each PING's payload
 * starts with BURST_MAGIC and its sequence number; the peer echoes it as
 * any PING, so the far side needs nothing special.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "dmsg_wire.h"
#include "http.h"
#include "tp_int.h"
#include "visor.h"

#define BURST_MAGIC       "BRST"
#define BURST_MIN_SIZE    8
#define BURST_MAX_SIZE    16384
#define BURST_MAX_COUNT   1000000
#define BURST_MAX_WINDOW  4096
#define BURST_DEADLINE_MS 120000

struct vtp_burst {
	struct vtp *t;
	struct sw_http_req *req;
	struct event *timer;
	uint32_t count, size, window, sent, received, next;
	int in_order;
	long long start_ms;
	uint8_t *buf;
};

static void
finish(struct vtp_burst *b, const char *err)
{
	long long ms = sw_mono_ms() - b->start_ms;
	cJSON *o;

	b->t->burst = NULL;
	if (err != NULL) {
		sw_http_error(b->req, 502, err);
	} else {
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "count", b->count);
		cJSON_AddNumberToObject(o, "sent", b->sent);
		cJSON_AddNumberToObject(o, "received", b->received);
		cJSON_AddBoolToObject(o, "in_order", b->in_order);
		cJSON_AddNumberToObject(o, "ms", (double)ms);
		/* Both directions carry size bytes per packet. */
		cJSON_AddNumberToObject(o, "bytes_per_s", ms > 0 ?
		    2.0 * b->received * b->size * 1000.0 / (double)ms : 0);
		sw_http_reply_json(b->req, 200, o);
		cJSON_Delete(o);
	}
	event_free(b->timer);
	free(b->buf);
	free(b);
}

/* Fill the window; -1 when t could not take a packet (answered). */
static int
pump(struct vtp_burst *b)
{
	while (b->sent < b->count && b->sent - b->received < b->window) {
		sw_put_u32(b->buf + 4, b->sent);
		if (vtp_send(b->t, VTP_PKT_PING, 0, b->buf, b->size) == -1) {
			/* A full send queue is back-pressure, not an error: wait for PONGs. */
			if (b->sent > b->received)
				return 0;
			finish(b, "the transport refused a packet");
			return -1;
		}
		b->sent++;
	}
	return 0;
}

int
vtp_burst_pong(struct vtp *t, const uint8_t *p, size_t len)
{
	struct vtp_burst *b = t->burst;

	if (b == NULL || len != b->size || memcmp(p, BURST_MAGIC, 4) != 0)
		return 0;
	if (sw_get_u32(p + 4) != b->next)
		b->in_order = 0;
	b->next = sw_get_u32(p + 4) + 1;
	b->received++;
	if (b->received == b->count) {
		finish(b, NULL);
		return 1;
	}
	pump(b);
	return 1;
}

void
vtp_burst_abort(struct vtp *t)
{
	if (t->burst != NULL)
		finish(t->burst, "the transport closed during the burst");
}

static void
deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, NULL); /* received < count says what was lost */
}

static void
burst(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	uint8_t id[TP_ID_LEN];
	struct vtp *t;
	struct vtp_burst *b;
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);
	cJSON *o = body != NULL ? cJSON_ParseWithLength((const char *)body, len) : NULL;
	double count = sw_cfg_int(o, "count", 1000), size = sw_cfg_int(o, "size", 64);
	double window = sw_cfg_int(o, "window", 256);

	if (tp_id_parse(id, sw_http_req_param(req, "t_id")) == -1 ||
	    (t = vtp_find(v->tps, id)) == NULL || t->state != VTP_UP) {
		sw_http_error(req, 404, "no such transport up");
		goto out;
	}
	if (count < 1 || count > BURST_MAX_COUNT || size < BURST_MIN_SIZE ||
	    size > BURST_MAX_SIZE || window < 1 || window > BURST_MAX_WINDOW) {
		sw_http_error(req, 422, "count 1..1000000, size 8..16384, window 1..4096");
		goto out;
	}
	if (t->burst != NULL) {
		sw_http_error(req, 409, "a burst is running on this transport");
		goto out;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL || (b->buf = calloc(1, (size_t)size)) == NULL ||
	    (b->timer = evtimer_new(sw_svc_base(v->svc), deadline, b)) == NULL) {
		if (b != NULL)
			free(b->buf);
		free(b);
		sw_http_error(req, 500, "out of memory");
		goto out;
	}
	memcpy(b->buf, BURST_MAGIC, 4);
	b->t = t;
	b->req = req;
	b->count = (uint32_t)count;
	b->size = (uint32_t)size;
	b->window = (uint32_t)window;
	b->in_order = 1;
	b->start_ms = sw_mono_ms();
	t->burst = b;
	sw_timer_in(b->timer, BURST_DEADLINE_MS);
	pump(b);
out:
	cJSON_Delete(o);
}

int
visor_api_burst_routes(struct visor *v)
{
	return sw_http_route(v->api, "POST", "/api/transports/{t_id}/burst", burst, v);
}
