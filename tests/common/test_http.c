/*
 * test_http: server and client against each other in one event_base.
 *
 * Nothing sleeps: each test runs the loop until a callback sets a flag, with
 * a deadline so a bug shows up as a failed assertion rather than a hang.
 * Malformed or abandoned requests go through a raw bufferevent "socket".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

struct fx {
	struct event_base *base;
	struct sw_metrics *metrics;
	struct sw_http_server *srv;
	struct sw_http_client *cli;
	int port;
	char url[128];
	/* handler side */
	int hits;
	int fail_first;
	struct sw_http_req *held;
	int held_gone;
	int got_request;
	struct event *later;
	size_t body_len;
	/* client side */
	int done;
	int status;
	char body[4096];
	int json_ok;
	cJSON *json_copy;
};

static void
set_flag(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run the loop until *flag or ms pass; returns *flag. */
static int
run_until(struct event_base *base, const int *flag, int ms)
{
	int expired = 0;
	struct event *t = evtimer_new(base, set_flag, &expired);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(t, &tv);
	while (!*flag && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- handlers ---- */

static void
h_echo(struct sw_http_req *req, void *arg)
{
	struct fx *f = arg;
	cJSON *o = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(o, "params");
	const char *names[] = {"pk", "t_id", "edge", "x", "y", "any"};
	const char *q = sw_http_req_query(req, "q");

	f->hits++;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = sw_http_req_param(req, names[i]);

		if (v != NULL)
			cJSON_AddStringToObject(p, names[i], v);
	}
	cJSON_AddStringToObject(o, "method", sw_http_req_method(req));
	cJSON_AddStringToObject(o, "path", sw_http_req_path(req));
	cJSON_AddStringToObject(o, "uri", sw_http_req_uri(req));
	cJSON_AddStringToObject(o, "peer", sw_http_req_peer(req));
	if (q != NULL)
		cJSON_AddStringToObject(o, "q", q);
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
h_body(struct sw_http_req *req, void *arg)
{
	struct fx *f = arg;
	size_t len;
	const unsigned char *b = sw_http_req_body(req, &len);

	assert_non_null(b);
	assert_int_equal(b[len], '\0');
	f->body_len = len;
	sw_http_reply_raw(req, 201, "text/plain", "created", 7);
}

static void
h_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;
	cJSON *o;

	(void)fd;
	(void)what;
	f->held_gone = sw_http_req_gone(f->held);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "answer", "late");
	sw_http_reply_json(f->held, 200, o);
	cJSON_Delete(o);
	f->held = NULL;
}

/* Answers 100 ms later from a timer. */
static void
h_async(struct sw_http_req *req, void *arg)
{
	struct fx *f = arg;
	struct timeval tv = {0, 100 * 1000};

	f->held = req;
	f->got_request = 1;
	f->later = evtimer_new(f->base, h_later_cb, f);
	evtimer_add(f->later, &tv);
}

/* Never answers by itself; the test answers f->held when it is done. */
static void
h_hold(struct sw_http_req *req, void *arg)
{
	struct fx *f = arg;

	f->held = req;
	f->got_request = 1;
}

static void
h_flaky(struct sw_http_req *req, void *arg)
{
	struct fx *f = arg;

	f->hits++;
	if (f->hits <= f->fail_first)
		sw_http_error(req, 503, "try again");
	else
		sw_http_reply_raw(req, 200, "application/json", "{\"ok\":true}", 11);
}

static void
h_teapot(struct sw_http_req *req, void *arg)
{
	struct fx *f = arg;
	cJSON *extra = cJSON_CreateObject();

	f->hits++;
	cJSON_AddNumberToObject(extra, "retry_after", 3);
	sw_http_error_extra(req, 418, "no", extra);
}

static void
h_text(struct sw_http_req *req, void *arg)
{
	(void)arg;
	sw_http_reply_raw(req, 200, "text/plain", "not json", 8);
}

/* ---- fixture ---- */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base = event_base_new();
	f->metrics = sw_metrics_new("t");
	f->srv = sw_http_server_new(f->base, "t", f->metrics);
	f->cli = sw_http_client_new(f->base, "t");
	assert_non_null(f->srv);
	assert_non_null(f->cli);
	assert_int_equal(sw_http_route(f->srv, "GET", "/health", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/entries/{pk}", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "DELETE", "/entries/{pk}", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/transports/{any}", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/transports/id:{t_id}", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/transports/edge:{edge}", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/a/{x}/b/{y}", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/list/", h_echo, f), 0);
	assert_int_equal(sw_http_route(f->srv, "POST", "/body", h_body, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/async", h_async, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/hold", h_hold, f), 0);
	assert_int_equal(sw_http_route(f->srv, "*", "/flaky", h_flaky, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/teapot", h_teapot, f), 0);
	assert_int_equal(sw_http_route(f->srv, "GET", "/text", h_text, f), 0);
	/* Bad patterns are refused. */
	assert_int_equal(sw_http_route(f->srv, "GET", "no-slash", h_echo, f), -1);
	assert_int_equal(sw_http_route(f->srv, "GET", "/x/{a}b", h_echo, f), -1);
	assert_int_equal(sw_http_route(f->srv, "GET", "/x/{}", h_echo, f), -1);
	assert_int_equal(sw_http_server_listen(f->srv, "127.0.0.1:0"), 0);
	f->port = sw_http_server_port(f->srv);
	assert_true(f->port > 0);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->later != NULL)
		event_free(f->later);
	sw_http_client_free(f->cli);
	sw_http_server_free(f->srv);
	/* A request still held survives the server, as gone, until answered. */
	if (f->held != NULL) {
		assert_true(sw_http_req_gone(f->held));
		assert_null(sw_http_req_param(f->held, "pk"));
		assert_non_null(sw_http_req_path(f->held));
		sw_http_error(f->held, 500, "late");
	}
	cJSON_Delete(f->json_copy);
	sw_metrics_free(f->metrics);
	/* Let libevent finish deferred frees before the base goes. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
on_resp(const struct sw_http_resp *resp, void *arg)
{
	struct fx *f = arg;

	assert_int_equal(f->done, 0); /* exactly once */
	f->done = 1;
	f->status = resp->status;
	snprintf(f->body, sizeof(f->body), "%.*s", (int)resp->len, resp->body);
	f->json_ok = resp->json != NULL;
	cJSON_Delete(f->json_copy);
	f->json_copy = resp->json != NULL ? cJSON_Duplicate(resp->json, 1) : NULL;
}

/* One request through our client; returns the status. */
static int
call(struct fx *f, const char *method, const char *path, const void *body, size_t len,
    const struct sw_http_opts *o)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", f->url, path);
	f->done = 0;
	f->status = -1;
	f->body[0] = '\0';
	assert_int_equal(sw_http_request(f->cli, method, url, body, len, o, on_resp, f), 0);
	/* Never synchronously. */
	assert_int_equal(f->done, 0);
	assert_true(run_until(f->base, &f->done, 10000));
	return f->status;
}

static const char *
jstr(struct fx *f, const char *a, const char *b)
{
	cJSON *n = cJSON_GetObjectItemCaseSensitive(f->json_copy, a);

	if (b != NULL)
		n = cJSON_GetObjectItemCaseSensitive(n, b);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* ---- raw socket client ---- */

struct raw {
	struct bufferevent *bev;
	struct evbuffer *in;
	int closed;
};

static void
raw_read(struct bufferevent *bev, void *arg)
{
	struct raw *r = arg;

	evbuffer_add_buffer(r->in, bufferevent_get_input(bev));
}

static void
raw_event(struct bufferevent *bev, short what, void *arg)
{
	struct raw *r = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		evbuffer_add_buffer(r->in, bufferevent_get_input(bev));
		r->closed = 1;
	}
}

static void
raw_open(struct fx *f, struct raw *r)
{
	struct sockaddr_in sin;

	memset(r, 0, sizeof(*r));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)f->port);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	r->in = evbuffer_new();
	r->bev = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(r->bev, raw_read, NULL, raw_event, r);
	bufferevent_enable(r->bev, EV_READ);
	assert_int_equal(bufferevent_socket_connect(r->bev, (struct sockaddr *)&sin,
	    sizeof(sin)), 0);
}

static void
raw_close(struct raw *r)
{
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	r->bev = NULL;
	evbuffer_free(r->in);
}

/* Send data (the request asks to close) and collect everything until EOF. */
static char *
raw_exchange(struct fx *f, const char *data)
{
	size_t len = strlen(data);
	struct raw r;
	size_t n;
	char *out;

	raw_open(f, &r);
	bufferevent_write(r.bev, data, len);
	assert_true(run_until(f->base, &r.closed, 10000));
	n = evbuffer_get_length(r.in);
	out = malloc(n + 1);
	evbuffer_remove(r.in, out, n);
	out[n] = '\0';
	raw_close(&r);
	return out;
}

/* ---- tests ---- */

static void
test_routing_and_captures(void **state)
{
	struct fx *f = *state;

	assert_int_equal(call(f, "GET", "/health", NULL, 0, NULL), 200);
	assert_true(f->json_ok);
	assert_string_equal(jstr(f, "path", NULL), "/health");
	assert_string_equal(jstr(f, "peer", NULL), "127.0.0.1");

	assert_int_equal(call(f, "GET", "/entries/ab%20cd?q=1%202&z", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "pk"), "ab cd");
	assert_string_equal(jstr(f, "q", NULL), "1 2");
	assert_string_equal(jstr(f, "uri", NULL), "/entries/ab%20cd?q=1%202&z");
	assert_string_equal(jstr(f, "path", NULL), "/entries/ab cd");

	/* An encoded slash stays inside its segment. */
	assert_int_equal(call(f, "GET", "/entries/a%2Fb", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "pk"), "a/b");

	assert_int_equal(call(f, "DELETE", "/entries/k1", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "method", NULL), "DELETE");

	assert_int_equal(call(f, "GET", "/a/1/b/2", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "x"), "1");
	assert_string_equal(jstr(f, "params", "y"), "2");

	/* Trailing slash is matched exactly. */
	assert_int_equal(call(f, "GET", "/list/", NULL, 0, NULL), 200);
	assert_int_equal(call(f, "GET", "/list", NULL, 0, NULL), 404);
	assert_int_equal(call(f, "GET", "/health/", NULL, 0, NULL), 404);
	/* Captures need a character. */
	assert_int_equal(call(f, "GET", "/entries/", NULL, 0, NULL), 404);
	assert_int_equal(call(f, "HEAD", "/health", NULL, 0, NULL), 200);
}

static void
test_prefix_capture(void **state)
{
	struct fx *f = *state;

	/* The prefix routes win over /transports/{any}, whatever the order added. */
	assert_int_equal(call(f, "GET", "/transports/id:abc", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "t_id"), "abc");
	assert_null(jstr(f, "params", "any"));
	assert_int_equal(call(f, "GET", "/transports/id%3Axyz", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "t_id"), "xyz");
	assert_int_equal(call(f, "GET", "/transports/edge:02ff", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "edge"), "02ff");
	assert_int_equal(call(f, "GET", "/transports/other", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "any"), "other");
	/* "id:" with nothing after falls to the bare capture. */
	assert_int_equal(call(f, "GET", "/transports/id:", NULL, 0, NULL), 200);
	assert_string_equal(jstr(f, "params", "any"), "id:");
}

static void
test_404_405(void **state)
{
	struct fx *f = *state;
	char *out;

	assert_int_equal(call(f, "GET", "/nope", NULL, 0, NULL), 404);
	assert_true(f->json_ok);
	assert_string_equal(jstr(f, "error", NULL), "not found");
	assert_int_equal(call(f, "POST", "/health", "{}", 2, NULL), 405);
	assert_string_equal(jstr(f, "error", NULL), "method not allowed");
	assert_int_equal(call(f, "PUT", "/entries/x", "{}", 2, NULL), 405);

	out = raw_exchange(f, "PATCH /entries/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(out, "HTTP/1.1 405"));
	assert_non_null(strstr(out, "Allow: GET, DELETE\r\n"));
	assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(out, "{\"error\":\"method not allowed\"}"));
	free(out);

	/* error_extra merges members and cannot override "error". */
	assert_int_equal(call(f, "GET", "/teapot", NULL, 0, NULL), 418);
	assert_string_equal(f->body, "{\"error\":\"no\",\"retry_after\":3}");
	assert_int_equal(f->hits, 1); /* 4xx is not retried */
}

static void
test_body_limit(void **state)
{
	struct fx *f = *state;
	size_t n = SW_HTTP_MAX_BODY + 1;
	char *big = malloc(4 * n);

	memset(big, 'a', 4 * n);
	assert_int_equal(call(f, "POST", "/body", big, SW_HTTP_MAX_BODY, NULL), 201);
	assert_int_equal(f->body_len, SW_HTTP_MAX_BODY);
	assert_string_equal(f->body, "created");
	assert_false(f->json_ok);

	f->body_len = 0;
	assert_int_equal(call(f, "POST", "/body", big, n, NULL), 413);
	assert_true(f->json_ok);
	assert_string_equal(jstr(f, "error", NULL), "request body too large");
	assert_int_equal(f->body_len, 0);

	/* Far past the limit libevent itself refuses; still a 413. */
	assert_int_equal(call(f, "POST", "/body", big, 4 * n, NULL), 413);
	assert_int_equal(f->body_len, 0);

	/* An empty body is a body. */
	assert_int_equal(call(f, "POST", "/body", "", 0, NULL), 201);
	assert_int_equal(f->body_len, 0);
	free(big);
}

static void
test_async_answer(void **state)
{
	struct fx *f = *state;
	double t0 = now_ms();

	assert_int_equal(call(f, "GET", "/async", NULL, 0, NULL), 200);
	assert_true(now_ms() - t0 >= 90);
	assert_string_equal(jstr(f, "answer", NULL), "late");
	assert_int_equal(f->held_gone, 0);
}

static void
test_client_disconnects_before_answer(void **state)
{
	struct fx *f = *state;
	struct raw r;
	const char *req = "GET /async HTTP/1.1\r\nHost: x\r\n\r\n";
	int answered;

	raw_open(f, &r);
	bufferevent_write(r.bev, req, strlen(req));
	assert_true(run_until(f->base, &f->got_request, 5000));
	raw_close(&r);
	/* The timer answers after the client left: dropped, no crash, no leak. */
	answered = 0;
	while (f->held != NULL && run_until(f->base, &answered, 50) == 0)
		;
	assert_null(f->held);
	assert_int_equal(f->held_gone, 1);
	/* The server still serves. */
	assert_int_equal(call(f, "GET", "/health", NULL, 0, NULL), 200);
}

static void
test_client_timeout(void **state)
{
	struct fx *f = *state;
	struct sw_http_opts o = {.timeout_ms = 200};
	double t0 = now_ms();
	int never = 0;

	assert_int_equal(call(f, "GET", "/hold", NULL, 0, &o), 0);
	assert_true(now_ms() - t0 >= 190);
	assert_true(now_ms() - t0 < 2000);
	assert_non_null(f->held);
	/* The client hung up; the server notices without being asked. */
	while (!sw_http_req_gone(f->held) && run_until(f->base, &never, 20) == 0 &&
	    now_ms() - t0 < 5000)
		;
	assert_true(sw_http_req_gone(f->held));
	assert_null(sw_http_req_header(f->held, "Host"));
	sw_http_error(f->held, 500, "too late");
	f->held = NULL;
}

static void
test_client_retry(void **state)
{
	struct fx *f = *state;
	struct sw_http_opts o = {.retries = 3, .backoff_ms = 20};
	double t0;

	f->fail_first = 1;
	assert_int_equal(call(f, "GET", "/flaky", NULL, 0, &o), 200);
	assert_int_equal(f->hits, 2);
	assert_true(f->json_ok);

	/* Without retries the 503 is the answer. */
	f->hits = 0;
	assert_int_equal(call(f, "POST", "/flaky", "{}", 2, NULL), 503);
	assert_string_equal(jstr(f, "error", NULL), "try again");

	/* Out of retries: the last 5xx is returned. */
	f->hits = 0;
	f->fail_first = 10;
	o.retries = 2;
	t0 = now_ms();
	assert_int_equal(call(f, "GET", "/flaky", NULL, 0, &o), 503);
	assert_int_equal(f->hits, 3);
	assert_true(now_ms() - t0 >= 20 + 40 - 5);
}

static void
test_client_connection_refused(void **state)
{
	struct fx *f = *state;
	struct sw_http_opts o = {.retries = 2, .backoff_ms = 10, .timeout_ms = 1000};
	char url[64];
	double t0 = now_ms();

	/* Port 1 on loopback: nothing listens there in the test environment. */
	snprintf(url, sizeof(url), "http://127.0.0.1:1/x");
	f->done = 0;
	assert_int_equal(sw_http_request(f->cli, "GET", url, NULL, 0, &o, on_resp, f), 0);
	assert_true(run_until(f->base, &f->done, 10000));
	assert_int_equal(f->status, 0);
	assert_true(now_ms() - t0 >= 10 + 20 - 5);
}

static void
test_client_json_and_urls(void **state)
{
	struct fx *f = *state;
	char url[128];

	assert_int_equal(call(f, "GET", "/text", NULL, 0, NULL), 200);
	assert_false(f->json_ok);
	assert_string_equal(f->body, "not json");

	assert_int_equal(sw_http_request(f->cli, "GET", "ftp://x/", NULL, 0, NULL, on_resp, f),
	    -1);
	assert_int_equal(sw_http_request(f->cli, "GET", "not a url", NULL, 0, NULL, on_resp, f),
	    -1);
	assert_int_equal(sw_http_request(f->cli, "BREW", f->url, NULL, 0, NULL, on_resp, f), -1);
	/* Host names resolve through evdns. */
	snprintf(url, sizeof(url), "http://localhost:%d/health", f->port);
	f->done = 0;
	assert_int_equal(sw_http_request(f->cli, "GET", url, NULL, 0, NULL, on_resp, f), 0);
	assert_true(run_until(f->base, &f->done, 10000));
	/* localhost may resolve to ::1 first where nothing listens; then 0. */
	assert_true(f->status == 200 || f->status == 0);
}

static void
on_resp_count(const struct sw_http_resp *resp, void *arg)
{
	int *n = arg;

	assert_int_equal(resp->status, 0);
	(*n)++;
}

static void
test_client_free_in_flight(void **state)
{
	struct fx *f = *state;
	char url[256];
	int n = 0;

	snprintf(url, sizeof(url), "%s/hold", f->url);
	assert_int_equal(sw_http_request(f->cli, "GET", url, NULL, 0, NULL, on_resp_count, &n),
	    0);
	assert_true(run_until(f->base, &f->got_request, 5000));
	sw_http_client_free(f->cli);
	f->cli = NULL;
	assert_int_equal(n, 1);
	/* Held request answered by teardown (gone by then). */
}

static void
test_malformed(void **state)
{
	struct fx *f = *state;
	const char *big = "POST /body HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nab";
	struct raw r;
	char *out;

	out = raw_exchange(f, "GARBAGE\r\n\r\n");
	assert_non_null(strstr(out, "400"));
	free(out);
	out = raw_exchange(f, "GET /entries/a%00b HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(out, "HTTP/1.1 400"));
	assert_non_null(strstr(out, "{\"error\":\"bad path\"}"));
	free(out);
	out = raw_exchange(f, "GET /health HTTP/1.1\r\nBad header line\r\n\r\n");
	assert_non_null(strstr(out, "400"));
	free(out);
	/* A Content-Length past the limit and a client that gives up half way. */
	raw_open(f, &r);
	bufferevent_write(r.bev, big, strlen(big));
	run_until(f->base, &r.closed, 100);
	raw_close(&r);
	/* Keep-alive works: two requests on one connection. */
	out = raw_exchange(f, "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
			      "GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(strstr(out, "HTTP/1.1 200") + 1, "HTTP/1.1 200"));
	free(out);
	assert_int_equal(call(f, "GET", "/health", NULL, 0, NULL), 200);
}

/* At the connection cap accept pauses, and resumes when a connection closes. */
static void
test_max_conns(void **state)
{
	struct fx *f = *state;
	struct raw r;
	const char *req = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n";
	char url[256];
	int waited = 0;

	sw_http_server_set_max_conns(f->srv, 1);
	raw_open(f, &r);
	bufferevent_write(r.bev, req, strlen(req));
	assert_true(run_until(f->base, &f->got_request, 5000));
	snprintf(url, sizeof(url), "%s/health", f->url);
	f->done = 0;
	assert_int_equal(sw_http_request(f->cli, "GET", url, NULL, 0, NULL, on_resp, f), 0);
	assert_false(run_until(f->base, &f->done, 200));
	sw_http_error(f->held, 500, "released");
	f->held = NULL;
	run_until(f->base, &waited, 20);
	raw_close(&r);
	assert_true(run_until(f->base, &f->done, 5000));
	assert_int_equal(f->status, 200);
}

/* A connection that never sends a byte counts toward the cap too. */
static void
test_idle_conn_counts(void **state)
{
	struct fx *f = *state;
	struct raw r;
	char url[256];
	int waited = 0;

	sw_http_server_set_max_conns(f->srv, 1);
	raw_open(f, &r);
	run_until(f->base, &waited, 50);
	snprintf(url, sizeof(url), "%s/health", f->url);
	f->done = 0;
	assert_int_equal(sw_http_request(f->cli, "GET", url, NULL, 0, NULL, on_resp, f), 0);
	assert_false(run_until(f->base, &f->done, 300));
	raw_close(&r);
	assert_true(run_until(f->base, &f->done, 5000));
	assert_int_equal(f->status, 200);
}

/* A header trickled in pieces is cut at the whole-header deadline: 408, JSON. */
static void
test_header_deadline(void **state)
{
	struct fx *f = *state;
	struct sw_http_limits lim = {.header_ms = 300};
	struct raw r;
	double t0 = now_ms();
	size_t n;
	char *out;

	sw_http_server_set_limits(f->srv, &lim);
	raw_open(f, &r);
	bufferevent_write(r.bev, "GET /health HTTP/1.1\r\n", 22);
	/* Keep it busy: a line every 100 ms, never the blank line. */
	for (int i = 0; i < 20 && !r.closed; i++) {
		int tick = 0;

		bufferevent_write(r.bev, "X-a: b\r\n", 8);
		run_until(f->base, &tick, 100);
		run_until(f->base, &r.closed, 1);
	}
	assert_true(run_until(f->base, &r.closed, 3000));
	assert_true(now_ms() - t0 < 1500);
	n = evbuffer_get_length(r.in);
	out = malloc(n + 1);
	evbuffer_remove(r.in, out, n);
	out[n] = '\0';
	assert_non_null(strstr(out, "HTTP/1.1 408"));
	assert_non_null(strstr(out, "{\"error\":"));
	free(out);
	raw_close(&r);
}

/* A body that stops half way is cut at the body deadline. */
static void
test_body_deadline(void **state)
{
	struct fx *f = *state;
	struct sw_http_limits lim = {.body_ms = 300};
	const char *req = "POST /body HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
	struct raw r;
	double t0 = now_ms();

	sw_http_server_set_limits(f->srv, &lim);
	raw_open(f, &r);
	bufferevent_write(r.bev, req, strlen(req));
	assert_true(run_until(f->base, &r.closed, 3000));
	assert_true(now_ms() - t0 < 1500);
	assert_true(evbuffer_search(r.in, "HTTP/1.1 408", 12, NULL).pos >= 0);
	raw_close(&r);
}

static void
test_metrics_per_route(void **state)
{
	struct fx *f = *state;
	struct evbuffer *b = evbuffer_new();
	char *text;
	size_t n;

	assert_int_equal(call(f, "GET", "/entries/a", NULL, 0, NULL), 200);
	assert_int_equal(call(f, "GET", "/entries/b", NULL, 0, NULL), 200);
	assert_int_equal(call(f, "GET", "/zzz", NULL, 0, NULL), 404);
	assert_int_equal(call(f, "POST", "/entries/a", "{}", 2, NULL), 405);
	assert_int_equal(sw_metrics_render(f->metrics, b), 0);
	n = evbuffer_get_length(b);
	text = malloc(n + 1);
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	assert_non_null(strstr(text, "sw_http_requests_total{service=\"t\",route=\"/entries/{pk}\","
				     "method=\"GET\",code=\"200\"} 2\n"));
	assert_non_null(strstr(text, "sw_http_requests_total{service=\"t\",route=\"unmatched\","
				     "method=\"GET\",code=\"404\"} 1\n"));
	assert_non_null(strstr(text, "sw_http_requests_total{service=\"t\",route=\"/entries/{pk}\","
				     "method=\"POST\",code=\"405\"} 1\n"));
	assert_non_null(strstr(text, "sw_http_request_duration_seconds_count{service=\"t\","
				     "route=\"/entries/{pk}\"} 3\n"));
	assert_non_null(strstr(text, "# TYPE sw_http_open_connections gauge\n"));
	free(text);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing_and_captures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_404_405, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_disconnects_before_answer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_json_and_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_free_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_conns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_per_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_conn_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_deadline, setup, teardown),
	};

	sw_log_set_level(SW_LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
