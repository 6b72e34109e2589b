/*
 * ping.c: route port 48 (routing.md: echoes every DATA message back
 * unchanged) and POST /api/ping {"pk","min_hops","count","size"} →
 * {"path":[hop…],"rtt_ms":[…],"lost":N} (visor.md), plus "setup_ms": from the
 * request to the group being up (route-finder, setup-node, handshake).
 *
 * The one idea: one message in flight at a time, each carrying its
 * sequence number in its first 8 bytes, so an echo that comes back after
 * its timeout is recognised as stale and not counted twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"
#include "rgroup.h"
#include "visor.h"

#define PING_TIMEOUT_MS 2000
#define PING_MAX_COUNT  100
#define PING_MIN_SIZE   8

struct ping {
	struct visor *v;
	struct sw_http_req *req;
	struct vrg *g;
	struct event *timer;
	int count, size, done, lost;
	uint32_t seq;
	long long sent_ms;
	long long t0_us, up_us;   /* setup_ms to a microsecond: setups take a few ms */
	cJSON *rtts;
	uint8_t *buf;
};

static long long
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the echo side ---- */

static void
echo_message(struct vrg *g, const uint8_t *data, size_t len, void *arg)
{
	(void)arg;
	/* no room for the echo now: this one is lost (the pinger's timeout says so) */
	if (vrg_room(g, len) != 0 && vrg_send(g, data, len) == -1)
		vrg_close(g);
}

static const struct vrg_cbs echo_cbs = {.message = echo_message};

static void
echo_accept(struct vrg *g, void *arg)
{
	(void)arg;
	vrg_set_cbs(g, &echo_cbs, NULL);
}

int
vping_start(struct visor *v)
{
	return vrg_listen(v->rg, VRG_PORT_PING, echo_accept, NULL);
}

/* ---- the asking side ---- */

static void
finish(struct ping *p, const char *err)
{
	if (err != NULL) {
		sw_http_error(p->req, 502, err);
	} else {
		cJSON *o = cJSON_CreateObject();
		const cJSON *path = vrg_path(p->g);

		cJSON_AddItemToObject(o, "path", path != NULL ? cJSON_Duplicate(path, 1) :
		    cJSON_CreateArray());
		cJSON_AddItemToObject(o, "rtt_ms", p->rtts);
		p->rtts = NULL;
		cJSON_AddNumberToObject(o, "lost", p->lost);
		cJSON_AddNumberToObject(o, "setup_ms", (double)(p->up_us - p->t0_us) / 1000.0);
		sw_http_reply_json(p->req, 200, o);
		cJSON_Delete(o);
	}
	vrg_close(p->g);
	if (p->timer != NULL)
		event_free(p->timer);
	cJSON_Delete(p->rtts);
	free(p->buf);
	free(p);
}

static void
send_next(struct ping *p)
{
	if (p->done == p->count) {
		finish(p, NULL);
		return;
	}
	sw_put_u32(p->buf, 0);
	sw_put_u32(p->buf + 4, ++p->seq);
	p->sent_ms = sw_mono_ms();
	if (vrg_send(p->g, p->buf, (size_t)p->size) == -1) {
		finish(p, vrg_room(p->g, (size_t)p->size) == 0 ? "route busy" : "route lost");
		return;
	}
	sw_timer_in(p->timer, PING_TIMEOUT_MS);
}

static void
ping_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ping *p = arg;

	(void)fd;
	(void)what;
	p->lost++;
	p->done++;
	send_next(p);
}

static void
ping_message(struct vrg *g, const uint8_t *data, size_t len, void *arg)
{
	struct ping *p = arg;

	(void)g;
	if (len != (size_t)p->size || sw_get_u32(data + 4) != p->seq)
		return; /* late or foreign: its slot already timed out */
	event_del(p->timer);
	cJSON_AddItemToArray(p->rtts, cJSON_CreateNumber((double)(sw_mono_ms() - p->sent_ms)));
	p->done++;
	send_next(p);
}

static void
ping_closed(struct vrg *g, const char *why, void *arg)
{
	struct ping *p = arg;

	(void)g;
	p->g = NULL; /* freed after this callback */
	finish(p, why);
}

static const struct vrg_cbs ping_cbs = {.message = ping_message, .closed = ping_closed};

static void
dialled(struct vrg *g, const char *err, void *arg)
{
	struct ping *p = arg;

	if (g == NULL) {
		finish(p, err);
		return;
	}
	p->g = g;
	p->up_us = mono_us();
	vrg_set_cbs(g, &ping_cbs, p);
	send_next(p);
}

static int
opt_int(const cJSON *o, const char *name, int def, int min, int max, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = def;
	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
	    v->valuedouble != (double)(int)v->valuedouble)
		return -1;
	*out = (int)v->valuedouble;
	return 0;
}

static void
api_ping(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);
	cJSON *o = cJSON_ParseWithLength((const char *)body, len);
	const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "pk");
	uint8_t rpk[SW_PK_LEN];
	struct ping *p = NULL;
	int hops, count, size;

	if (!cJSON_IsObject(o) || !cJSON_IsString(pk) || sw_pk_parse(rpk, pk->valuestring) == -1) {
		sw_http_error(req, 400, "body must be {\"pk\":\"<hex>\",\"min_hops\":N,"
		    "\"count\":N,\"size\":N}");
		goto out;
	}
	if (opt_int(o, "min_hops", 1, 1, 10, &hops) == -1 ||
	    opt_int(o, "count", 1, 1, PING_MAX_COUNT, &count) == -1 ||
	    opt_int(o, "size", 32, PING_MIN_SIZE, VRG_MAX_MSG, &size) == -1) {
		sw_http_error(req, 422, "min_hops 1..10, count 1..100, size 8..65498");
		goto out;
	}
	if (memcmp(rpk, v->kp.pk, SW_PK_LEN) == 0 || sw_pk_is_null(rpk)) {
		sw_http_error(req, 422, "pk must be another visor's key");
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->buf = calloc(1, (size_t)size)) == NULL ||
	    (p->rtts = cJSON_CreateArray()) == NULL ||
	    (p->timer = evtimer_new(sw_svc_base(v->svc), ping_timeout, p)) == NULL)
		goto oom;
	p->v = v;
	p->req = req;
	p->count = count;
	p->size = size;
	p->t0_us = mono_us();
	randombytes_buf(p->buf, (size_t)size);
	if (vrg_dial(v->rg, rpk, VRG_PORT_PING, hops, dialled, p) == -1) {
		sw_http_error(req, 503, "cannot dial now");
		goto free_p;
	}
	goto out;
oom:
	sw_http_error(req, 500, "out of memory");
free_p:
	if (p != NULL) {
		if (p->timer != NULL)
			event_free(p->timer);
		cJSON_Delete(p->rtts);
		free(p->buf);
		free(p);
	}
out:
	cJSON_Delete(o);
}

int
vping_api(struct visor *v)
{
	return sw_http_route(v->api, "POST", "/api/ping", api_ping, v);
}
