/*
 * fuzz_http: the HTTP/1.1 server's request reader (request line, headers,
 * Content-Length and chunked bodies, pipelining, every refusal) and the
 * httpauth header check, fed through a bufferevent pair exactly as a socket
 * would feed them.  The first byte sets the size of the pieces the rest is
 * written in, so headers and bodies also arrive split at every boundary.
 * Invariant: whatever the input, the server answers only in HTTP (every
 * answer starts "HTTP/1.1 ").
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "crypto.h"
#include "fuzz.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "store.h"

static struct event_base *base;
static struct sw_store *st;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sw_log_set_level(SW_LOG_ERROR);
	if (sw_crypto_init() == -1 || (base = event_base_new()) == NULL ||
	    (st = sw_store_new(base, NULL, "fuzz")) == NULL)
		return -1;
	return 0;
}

static void
h_get(struct sw_http_req *req, void *arg)
{
	(void)arg;
	(void)sw_http_req_query(req, "x");
	(void)sw_http_req_param(req, "id");
	(void)sw_http_req_header(req, "Host");
	sw_http_reply_raw(req, 200, "text/plain", "ok", 2);
}

static void
h_body(struct sw_http_req *req, void *arg)
{
	size_t len;
	const unsigned char *b = sw_http_req_body(req, &len);

	(void)arg;
	FUZZ_ASSERT(b == NULL || b[len] == '\0');
	sw_http_reply_raw(req, 201, "application/json", "{}", 2);
}

static void
authed(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN], void *arg)
{
	(void)pk;
	(void)arg;
	if (ok)
		sw_http_reply_raw(req, 200, "application/json", "{}", 2);
}

static void
h_auth(struct sw_http_req *req, void *arg)
{
	(void)arg;
	sw_httpauth_check(st, "fuzz:", req, authed, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sw_http_route_def routes[] = {
		{"GET", "/a/{id}", h_get},
		{"POST", "/body", h_body},
		{"PUT", "/x/id:{id}/", h_body},
		{"POST", "/auth", h_auth},
	};
	struct sw_http_server *srv;
	struct bufferevent *pair[2];
	struct evbuffer *in;
	size_t piece, off;

	if (size < 1)
		return 0;
	piece = data[0] == 0 ? size : data[0];
	data++;
	size--;
	srv = sw_http_server_new(base, "fuzz", NULL);
	FUZZ_ASSERT(srv != NULL);
	FUZZ_ASSERT(sw_http_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), NULL) == 0);
	FUZZ_ASSERT(bufferevent_pair_new(base, 0, pair) == 0);
	FUZZ_ASSERT(sw_http_server_adopt(srv, pair[1], "fuzz") == 0);
	bufferevent_enable(pair[0], EV_READ | EV_WRITE);
	for (off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		bufferevent_write(pair[0], data + off, n);
		for (int i = 0; i < 4; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	for (int i = 0; i < 16; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	in = bufferevent_get_input(pair[0]);
	if (evbuffer_get_length(in) > 0) {
		const char *p = (const char *)evbuffer_pullup(in, 9);

		FUZZ_ASSERT(p == NULL || evbuffer_get_length(in) < 9 ||
		    memcmp(p, "HTTP/1.1 ", 9) == 0);
	}
	sw_http_server_free(srv);
	bufferevent_free(pair[0]);
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
