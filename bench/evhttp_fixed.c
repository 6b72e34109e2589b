/*
 * The reference server for bench/discovery-http: bare evhttp answering every
 * request with one fixed JSON body, so the benchmark can say how much of the
 * cost is evhttp itself and how much is ours.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

static void
fixed(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evhttp_request_get_output_buffer(req);

	(void)arg;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evbuffer_add(b, "{\"ok\":true}", 11);
	evhttp_send_reply(req, 200, "OK", NULL);
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct evhttp *http;

	if (argc != 2) {
		fprintf(stderr, "usage: evhttp-fixed PORT\n");
		return 2;
	}
	base = event_base_new();
	http = evhttp_new(base);
	if (base == NULL || http == NULL ||
	    evhttp_bind_socket(http, "127.0.0.1", (unsigned short)atoi(argv[1])) != 0) {
		fprintf(stderr, "evhttp-fixed: cannot listen\n");
		return 1;
	}
	evhttp_set_gencb(http, fixed, NULL);
	event_base_dispatch(base);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
