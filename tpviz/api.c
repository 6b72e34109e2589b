/*
 * tpviz/api.c: the page, the JSON API and the event stream.
 *
 * Every JSON answer is a view's body, rendered when the view changed
 * (feeds.c): a request costs a copy, never a feed or store round trip.
 * /api/events streams Server-Sent Events, one per view change
 * ({"feed","seq","changed"}); a reader more than TPVIZ_SSE_BACKLOG behind
 * is dropped (it reconnects and refetches), and a comment every 15 s keeps
 * proxies from closing an idle stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "tpviz.h"

#define PING_MS 15000

static void
body_done(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	tpviz_body_unref(arg);
}

static void
send_body(struct sw_http_req *req, struct tpviz_body *body)
{
	struct evbuffer *b;

	if (body == NULL) {
		sw_http_error(req, 503, "no answer from the feed or the service yet");
		return;
	}
	/* The answer refers to the rendered bytes; the connection's buffer takes the reference. */
	if ((b = evbuffer_new()) == NULL ||
	    evbuffer_add_reference(b, body->data, body->len, body_done, body) == -1) {
		if (b != NULL)
			evbuffer_free(b);
		sw_http_error(req, 503, "out of memory");
		return;
	}
	body->refs++;
	sw_http_reply_buf(req, 200, "application/json", b);
	evbuffer_free(b);
}

static void
send_view(struct tpviz *t, struct sw_http_req *req, enum tpviz_view_id id)
{
	send_body(req, t->views[id].body);
}

static void
get_transports(struct sw_http_req *req, void *arg)
{
	send_view(arg, req, TV_TRANSPORTS);
}

/* The transports view for the page: visors once, transports as indexes (feeds.c). */
static void
get_graph(struct sw_http_req *req, void *arg)
{
	struct tpviz *t = arg;

	send_body(req, t->views[TV_TRANSPORTS].graph);
}

static void
get_services(struct sw_http_req *req, void *arg)
{
	static const char *const types[] = {"visor", "vpn", "skysocks"};
	const char *type = sw_http_req_query(req, "type");

	if (type == NULL || *type == '\0') {
		sw_http_error(req, 400, "type is required");
		return;
	}
	if (strcmp(type, "proxy") == 0)
		type = "skysocks";
	for (int i = 0; i < 3; i++)
		if (strcmp(type, types[i]) == 0) {
			send_view(arg, req, (enum tpviz_view_id)(TV_SVC_VISOR + i));
			return;
		}
	sw_http_error(req, 422, "type must be visor, vpn, skysocks or proxy");
}

static void
get_clients(struct sw_http_req *req, void *arg)
{
	send_view(arg, req, TV_CLIENTS);
}

static void
get_page(struct sw_http_req *req, void *arg)
{
	struct tpviz *t = arg;

	sw_http_reply_raw(req, 200, "text/html; charset=utf-8", t->page, t->page_len);
}

static int
page_build(struct tpviz *t)
{
	size_t n = 0, o = 0;

	for (size_t i = 0; tpviz_page_lines[i] != NULL; i++)
		n += strlen(tpviz_page_lines[i]);
	if ((t->page = malloc(n + 1)) == NULL)
		return -1;
	for (size_t i = 0; tpviz_page_lines[i] != NULL; i++) {
		memcpy(t->page + o, tpviz_page_lines[i], strlen(tpviz_page_lines[i]));
		o += strlen(tpviz_page_lines[i]);
	}
	t->page[o] = '\0';
	t->page_len = o;
	return 0;
}

static void
sse_drop(struct tpviz *t, size_t i)
{
	sw_http_stream_end(t->sse[i]);
	t->sse[i] = t->sse[--t->nsse];
}

static void
get_events(struct sw_http_req *req, void *arg)
{
	struct tpviz *t = arg;
	static const char hello[] = "retry: 1000\n\n";

	if (t->nsse == TPVIZ_MAX_SSE) {
		sw_http_error(req, 503, "too many event streams");
		return;
	}
	if (sw_http_stream_start(req, 200, "text/event-stream") == -1 ||
	    sw_http_stream_write(req, hello, sizeof(hello) - 1) == -1) {
		sw_http_stream_end(req);
		return;
	}
	t->sse[t->nsse++] = req;
}

void
tpviz_sse_send(struct tpviz *t, const char *event_json)
{
	char buf[256];
	int n;
	long long now = sw_mono_ms();

	if (event_json != NULL)
		n = snprintf(buf, sizeof(buf), "data: %s\n\n", event_json);
	else if (now - t->sse_ping_ms >= PING_MS)
		n = snprintf(buf, sizeof(buf), ": ping\n\n");
	else
		n = -1;
	if (n > 0)
		t->sse_ping_ms = now;
	for (size_t i = 0; i < t->nsse;) {
		struct sw_http_req *r = t->sse[i];

		if (sw_http_req_gone(r) || sw_http_stream_queued(r) > TPVIZ_SSE_BACKLOG ||
		    (n > 0 && sw_http_stream_write(r, buf, (size_t)n) == -1)) {
			sse_drop(t, i);
			continue;
		}
		i++;
	}
}

void
tpviz_sse_close_all(struct tpviz *t)
{
	while (t->nsse > 0)
		sse_drop(t, t->nsse - 1);
}

int
tpviz_api_routes(struct tpviz *t)
{
	static const struct sw_http_route_def routes[] = {
		{"GET", "/", get_page},
		{"GET", "/api/transports", get_transports},
		{"GET", "/api/graph", get_graph},
		{"GET", "/api/services", get_services},
		{"GET", "/api/dmsg/servers/clients", get_clients},
		{"GET", "/api/events", get_events},
	};

	if (t->page == NULL && page_build(t) == -1)
		return -1;
	return sw_svc_api_attach(t->svc, t->http, routes, sizeof(routes) / sizeof(routes[0]), t,
	    NULL);
}
