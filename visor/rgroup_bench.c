/*
 * rgroup_bench.c: a measuring stream over a route group, for bench/route
 * (docs/routing.md).  Route port 2 counts what arrives and acknowledges
 * every VRG_BENCH_ACK messages; POST /api/route-bench
 * {"pk","min_hops","count","size"} dials it, sends count messages of size
 * bytes keeping at most VRG_BENCH_WINDOW unacknowledged, and answers
 * {"path","messages","bytes","ms","setup_ms"} when the last one is acknowledged.
 *
 * The one idea: route groups have no flow control of their own (their
 * transports queue), so the sender paces itself on the receiver's acks;
 * the window is large enough that the route, not the pacing, sets the rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dmsg_wire.h"
#include "http.h"
#include "rgroup.h"
#include "visor.h"

#define VRG_PORT_BENCH   2
#define VRG_BENCH_ACK    16
#define VRG_BENCH_WINDOW 256
#define BENCH_MAX_COUNT  1000000

/* ---- the receiving side ---- */

struct sink {
	uint64_t got;
};

static void
sink_message(struct vrg *g, const uint8_t *data, size_t len, void *arg)
{
	struct sink *s = arg;
	uint8_t ack[8];

	(void)data;
	(void)len;
	if (++s->got % VRG_BENCH_ACK == 0) {
		sw_put_u32(ack, (uint32_t)(s->got >> 32));
		sw_put_u32(ack + 4, (uint32_t)s->got);
		if (vrg_send(g, ack, sizeof(ack)) == -1) {
			vrg_close(g); /* the closed callback does not run: free here */
			free(s);
		}
	}
}

static void
sink_closed(struct vrg *g, const char *why, void *arg)
{
	(void)g;
	(void)why;
	free(arg);
}

static const struct vrg_cbs sink_cbs = {.message = sink_message, .closed = sink_closed};

static void
sink_accept(struct vrg *g, void *arg)
{
	struct sink *s = calloc(1, sizeof(*s));

	(void)arg;
	if (s == NULL) {
		vrg_close(g);
		return;
	}
	vrg_set_cbs(g, &sink_cbs, s);
}

/* ---- the sending side ---- */

struct stream {
	struct sw_http_req *req;
	struct vrg *g;
	uint64_t count, sent, acked;
	size_t size;
	long long t0_ms, up_ms, start_ms;
	uint8_t *buf;
	struct event *retry;      /* the first hop had no room: try again shortly */
	uint64_t waits;
};

static void
stream_end(struct stream *s, const char *err)
{
	if (err != NULL) {
		sw_http_error(s->req, 502, err);
	} else {
		cJSON *o = cJSON_CreateObject();
		const cJSON *path = vrg_path(s->g);

		cJSON_AddItemToObject(o, "path", path != NULL ? cJSON_Duplicate(path, 1) :
		    cJSON_CreateArray());
		cJSON_AddNumberToObject(o, "messages", (double)s->count);
		cJSON_AddNumberToObject(o, "bytes", (double)(s->count * s->size));
		cJSON_AddNumberToObject(o, "ms", (double)(sw_mono_ms() - s->start_ms));
		cJSON_AddNumberToObject(o, "setup_ms", (double)(s->up_ms - s->t0_ms));
		cJSON_AddNumberToObject(o, "room_waits", (double)s->waits);
		sw_http_reply_json(s->req, 200, o);
		cJSON_Delete(o);
	}
	vrg_close(s->g);
	event_free(s->retry);
	free(s->buf);
	free(s);
}

/* Fill the window; 0, or -1 when s is gone. */
static int
pump(struct stream *s)
{
	while (s->sent < s->count && s->sent - s->acked < VRG_BENCH_WINDOW) {
		/*
		 * A first hop with a bounded queue (sudph: 4 MiB) takes fewer than
		 * the window; acks may not come while it drains, so a timer asks again.
		 */
		if (vrg_room(s->g, s->size) == 0) {
			s->waits++;
			if (!evtimer_pending(s->retry, NULL))
				sw_timer_in(s->retry, 1);
			return 0;
		}
		if (vrg_send(s->g, s->buf, s->size) == -1) {
			stream_end(s, "route lost");
			return -1;
		}
		s->sent++;
	}
	return 0;
}

static void
stream_message(struct vrg *g, const uint8_t *data, size_t len, void *arg)
{
	struct stream *s = arg;

	(void)g;
	if (len != 8)
		return;
	s->acked = (uint64_t)sw_get_u32(data) << 32 | sw_get_u32(data + 4);
	if (s->acked >= s->count) {
		stream_end(s, NULL);
		return;
	}
	pump(s);
}

static void
stream_closed(struct vrg *g, const char *why, void *arg)
{
	struct stream *s = arg;

	(void)g;
	s->g = NULL;
	stream_end(s, why);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static const struct vrg_cbs stream_cbs = {.message = stream_message,
    .closed = stream_closed};

static void
stream_dialled(struct vrg *g, const char *err, void *arg)
{
	struct stream *s = arg;

	if (g == NULL) {
		stream_end(s, err);
		return;
	}
	s->g = g;
	s->up_ms = s->start_ms = sw_mono_ms();
	vrg_set_cbs(g, &stream_cbs, s);
	pump(s);
}

static void
api_bench(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);
	cJSON *o = cJSON_ParseWithLength((const char *)body, len);
	const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "pk");
	const cJSON *hops = cJSON_GetObjectItemCaseSensitive(o, "min_hops");
	const cJSON *count = cJSON_GetObjectItemCaseSensitive(o, "count");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
	uint8_t rpk[SW_PK_LEN];
	struct stream *s;

	if (!cJSON_IsObject(o) || !cJSON_IsString(pk) || sw_pk_parse(rpk, pk->valuestring) == -1 ||
	    !cJSON_IsNumber(hops) || hops->valueint < 1 || hops->valueint > 10 ||
	    !cJSON_IsNumber(count) || count->valuedouble < VRG_BENCH_ACK ||
	    count->valuedouble > BENCH_MAX_COUNT || count->valueint % VRG_BENCH_ACK != 0 ||
	    !cJSON_IsNumber(size) ||
	    size->valuedouble < 8 || size->valuedouble > VRG_MAX_MSG) {
		sw_http_error(req, 400, "body must be {\"pk\",\"min_hops\":1..10,"
		    "\"count\":16..1000000 (a multiple of 16),\"size\":8..65498}");
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->buf = malloc((size_t)size->valuedouble)) == NULL ||
	    (s->retry = evtimer_new(sw_svc_base(v->svc), retry_cb, s)) == NULL) {
		if (s != NULL)
			free(s->buf);
		free(s);
		sw_http_error(req, 500, "out of memory");
		goto out;
	}
	s->req = req;
	s->count = (uint64_t)count->valuedouble;
	s->size = (size_t)size->valuedouble;
	s->t0_ms = sw_mono_ms();
	randombytes_buf(s->buf, s->size);
	if (vrg_dial(v->rg, rpk, VRG_PORT_BENCH, hops->valueint, stream_dialled, s) == -1) {
		event_free(s->retry);
		free(s->buf);
		free(s);
		sw_http_error(req, 503, "cannot dial now");
	}
out:
	cJSON_Delete(o);
}

int
vrg_bench_start(struct visor *v)
{
	return vrg_listen(v->rg, VRG_PORT_BENCH, sink_accept, NULL);
}

int
vrg_bench_api(struct visor *v)
{
	return sw_http_route(v->api, "POST", "/api/route-bench", api_bench, v);
}
