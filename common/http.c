/*
 * http (server): an HTTP/1.1 server on bufferevents, routing, JSON answers
 * and request bookkeeping.
 *
 * The one idea: every byte of a request passes through one small state
 * machine per connection (idle, header, body, handling, writing, closing),
 * and each phase has its own bound: the whole header within 10 s and 16 KiB,
 * the body within 30 s and the body limit (a Content-Length past it gets 413
 * before a byte of the body is read), the answer written within 30 s of
 * inactivity, a closing connection drained for at most 2 s.  Whatever
 * refuses a request (framing, limits, routing, handlers), the answer is the
 * JSON {"error":…}; there is no other error page.  (evhttp, used before,
 * could do none of this: no accept hook, no header deadline, HTML errors.)
 *
 * Connections are accepted through common/listener (descriptor exhaustion,
 * the connection cap and the per-IP cap); one over its IP's cap is read up
 * to its header and answered 503.  sw_http_server_adopt serves a connection
 * that arrived some other way (any bufferevent, e.g. a dmsg stream).
 *
 * A struct sw_http_req is what handlers hold, so an answer given later never
 * touches a connection that has gone: the connection going away (client EOF
 * while an answer is outstanding, a write timeout, the server freed) marks
 * the request gone and the late answer only frees it.
 *
 * Matching allocates nothing: the path is decoded once into the wrapper's
 * buffer, split into segments, and captures point into it.  Patterns are
 * compared segment by segment and the most specific match wins (literal,
 * then capture with the longest literal prefix, then bare capture), so the
 * order routes are added in does not matter.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "str.h"

#define SW_HTTP_MAX_SEGS     32
#define SW_HTTP_MAX_PARAMS   8
#define SW_HTTP_MAX_HEADERS  (16 * 1024) /* request line and header block */
#define SW_HTTP_MAX_LINES    100         /* header lines */
#define SW_HTTP_MAX_METHOD   16
#define SW_HTTP_IDLE_MS      30000       /* keep-alive, between requests */
#define SW_HTTP_WRITE_S      30          /* answer: inactivity while writing */
#define SW_HTTP_LINGER_MS    2000        /* drain after an answer that closes */
#define SW_HTTP_LINGER_MAX   (1024 * 1024) /* a declared rest past this is not waited for */
#define SW_HTTP_INPUT_MAX    (256 * 1024)/* buffered unread input (pipelining) */
#define SW_HTTP_UNMATCHED    "unmatched"

struct seg {
	char *lit;        /* literal text, or the literal prefix of a capture */
	size_t litlen;
	char *cap;        /* capture name, NULL for a literal segment */
};

struct route {
	char method[8];   /* "*" for any */
	char *pattern;
	sw_http_handler *h;
	void *arg;
	size_t nsegs;
	struct seg segs[SW_HTTP_MAX_SEGS];
};

enum conn_state {
	C_IDLE,      /* keep-alive, waiting for the next request */
	C_HEAD,      /* reading the request line and headers */
	C_BODY,      /* reading the body */
	C_HANDLING,  /* the handler has the request */
	C_WRITING,   /* the answer is going out */
	C_CLOSING,   /* answer sent, write side shut, draining until EOF */
	C_STREAM,    /* a streamed answer (sw_http_stream_start) is going out */
};

/* Chunked body decoding. */
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct http_conn {
	struct sw_http_server *srv;
	struct http_conn *prev, *next;
	struct bufferevent *bev;
	struct sw_listener_peer *lpeer; /* NULL when adopted */
	struct event *timer;            /* the deadline of the current phase */
	enum conn_state state;
	int refuse;                     /* over its IP's cap: answer 503 */
	int busy;                       /* inside conn_process: free later */
	int dead;                       /* freed while busy */
	int shut;                       /* our write side is shut */
	int close_after;                /* close once the answer is out */
	char peer[72];
	const char *carrier;            /* "tcp", or what adopted it ("dmsg") */
	char *hbuf;                     /* header lines, each NUL-terminated */
	size_t hlen;
	size_t nlines;
	/* body framing */
	size_t body_left;               /* Content-Length, or of this chunk */
	int chunked;
	enum chunk_state ch;
	struct sw_http_req *pending;    /* the request being read or handled */
};

struct sw_http_server {
	struct event_base *base;
	char *svc;
	struct sw_metrics *metrics;
	struct sw_metric *m_requests, *m_duration, *m_open, *m_carrier;
	struct sw_listener *lis;
	struct sw_http_limits lim;
	size_t max_body;
	size_t max_conns;
	size_t nconns;
	int closing;
	struct http_conn *conns;
	struct route **routes;
	size_t nroutes;
};

struct param {
	const char *name;
	const char *value;
};

struct header {
	const char *name;
	const char *value;
};

struct sw_http_req {
	struct sw_http_server *srv;  /* NULL once gone */
	struct http_conn *conn;      /* NULL once gone */
	const struct route *route;
	char method[SW_HTTP_MAX_METHOD + 1];
	const char *mlabel;          /* method as a metrics label (bounded set) */
	struct timespec t0;
	void *data;
	char *query;      /* decoded pairs, see query_decode */
	const char *rawquery;
	struct evbuffer *body;
	int gone;
	int head;         /* HEAD: the answer has no body */
	int keepalive;
	int body_ready;
	size_t body_len;
	char *uri;
	char *path;
	char allow[96];   /* Allow header of a 405 */
	size_t nparams;
	struct param params[SW_HTTP_MAX_PARAMS];
	size_t nsegs;
	char *segs[SW_HTTP_MAX_SEGS];
	size_t nheaders;
	struct header headers[SW_HTTP_MAX_LINES];
	char peer[72];
	const char *carrier;
	int status;       /* of a streamed answer */
	char buf[];
};

static void conn_free(struct http_conn *c);
static void conn_process(struct http_conn *c);

static const char *
method_label(const char *m)
{
	static const char *const known[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS",
	    "PATCH", "TRACE", "CONNECT"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(m, known[i]) == 0)
			return known[i];
	return "OTHER";
}

static const char *
reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

static double
elapsed_s(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_accept(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    struct sw_listener_peer *peer, int over_cap, void *arg);

struct sw_http_server *
sw_http_server_new(struct event_base *base, const char *svc, struct sw_metrics *metrics)
{
	static const char *const l_req[] = {"route", "method", "code", NULL};
	static const char *const l_route[] = {"route", NULL};
	struct sw_http_server *srv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return NULL;
	srv->base = base;
	srv->metrics = metrics;
	srv->max_body = SW_HTTP_MAX_BODY;
	srv->max_conns = SW_LISTENER_MAX_CONNS;
	srv->lim.header_ms = SW_HTTP_HEADER_MS;
	srv->lim.body_ms = SW_HTTP_BODY_MS;
	srv->lim.max_per_peer = SW_HTTP_MAX_PER_PEER;
	if ((srv->svc = sw_xstrdup(svc != NULL ? svc : "http")) == NULL)
		goto fail;
	if (metrics != NULL) {
		srv->m_requests = sw_metric_new(metrics, "sw_http_requests_total",
		    "HTTP requests by route, method and status code.", SW_COUNTER, l_req, NULL, 0);
		srv->m_duration = sw_metric_new(metrics, "sw_http_request_duration_seconds",
		    "HTTP request latency by route.", SW_HISTOGRAM, l_route, NULL, 0);
		srv->m_open = sw_metric_new(metrics, "sw_http_open_connections",
		    "Open HTTP connections (every accepted one).", SW_GAUGE, NULL, NULL, 0);
		srv->m_carrier = sw_metric_new(metrics, "sw_http_carrier_requests_total",
		    "HTTP requests served, by carrier (tcp, dmsg).", SW_COUNTER,
		    (const char *const[]){"carrier", NULL}, NULL, 0);
	}
	return srv;
fail:
	sw_log_error(svc, "http server setup failed", NULL);
	sw_http_server_free(srv);
	return NULL;
}

void
sw_http_server_free(struct sw_http_server *srv)
{
	if (srv == NULL)
		return;
	srv->closing = 1;
	/* Marks pending requests gone; their late answers only free them. */
	while (srv->conns != NULL)
		conn_free(srv->conns);
	sw_listener_free(srv->lis);
	for (size_t i = 0; i < srv->nroutes; i++) {
		struct route *r = srv->routes[i];

		for (size_t j = 0; j < r->nsegs; j++)
			free(r->segs[j].lit);
		free(r->pattern);
		free(r);
	}
	free(srv->routes);
	free(srv->svc);
	free(srv);
}

int
sw_http_server_listen(struct sw_http_server *srv, const char *addr)
{
	struct sw_listener_opts o = {srv->max_conns, srv->lim.max_per_peer, 1};

	if (srv->lis == NULL &&
	    (srv->lis = sw_listener_new(srv->base, srv->svc, &o, on_accept, srv)) == NULL)
		return -1;
	if (sw_listener_bind(srv->lis, addr) == -1)
		return -1;
	sw_log_info(srv->svc, "listening", "addr=%s port=%d", sw_log_q((char[128]){0}, 128, addr),
	    sw_http_server_port(srv));
	return 0;
}

int
sw_http_server_port(const struct sw_http_server *srv)
{
	return srv != NULL ? sw_listener_port(srv->lis) : -1;
}

void
sw_http_server_set_max_body(struct sw_http_server *srv, size_t max)
{
	srv->max_body = max;
}

void
sw_http_server_set_max_conns(struct sw_http_server *srv, size_t max)
{
	srv->max_conns = max > 0 ? max : 1;
	if (srv->lis != NULL)
		sw_listener_set_max_conns(srv->lis, srv->max_conns);
}

void
sw_http_server_set_limits(struct sw_http_server *srv, const struct sw_http_limits *lim)
{
	if (lim->header_ms > 0)
		srv->lim.header_ms = lim->header_ms;
	if (lim->body_ms > 0)
		srv->lim.body_ms = lim->body_ms;
	if (lim->max_per_peer > 0)
		srv->lim.max_per_peer = lim->max_per_peer;
}

/* ---- connections ---- */

static void
conn_arm(struct http_conn *c, long long ms)
{
	if (ms > 0)
		sw_timer_in(c->timer, ms);
	else
		event_del(c->timer);
}

/* Detach the pending request: its answer, when it comes, only frees it. */
static void
req_orphan(struct sw_http_req *r)
{
	struct sw_http_server *srv = r->srv;

	if (srv != NULL && !srv->closing)
		sw_log_debug(srv->svc, "client gone before the answer", "method=%s path=%s",
		    sw_log_q((char[32]){0}, 32, r->method), sw_log_q((char[256]){0}, 256, r->uri));
	free(r->query);
	r->query = NULL;
	if (r->body != NULL)
		evbuffer_free(r->body);
	r->body = NULL;
	r->nheaders = 0;
	r->conn = NULL;
	r->srv = NULL;
	r->route = NULL;
	/* Capture names live in the routes, which a server free takes along. */
	if (srv != NULL && srv->closing)
		r->nparams = 0;
	r->gone = 1;
}

static void
req_free(struct sw_http_req *r)
{
	free(r->query);
	if (r->body != NULL)
		evbuffer_free(r->body);
	free(r);
}

static void
conn_destroy(struct http_conn *c)
{
	struct sw_http_server *srv = c->srv;
	struct sw_http_req *r = c->pending;

	if (r != NULL) {
		c->pending = NULL;
		/* One still being read was never handed out: ours to free. */
		if (c->state == C_HEAD || c->state == C_BODY)
			req_free(r);
		else
			req_orphan(r);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	sw_listener_release(srv->lis, c->lpeer);
	srv->nconns--;
	if (!srv->closing)
		sw_metric_set(srv->m_open, NULL, (double)srv->nconns);
	free(c->hbuf);
	free(c);
}

/*
 * A handler may answer (and so end the connection) from inside
 * conn_process; the connection then goes when conn_process returns.
 */
static void
conn_free(struct http_conn *c)
{
	if (c->busy && !c->srv->closing)
		c->dead = 1;
	else
		conn_destroy(c);
}

/* Status line and headers for an answer with a body of len bytes. */
static int
write_head(struct evbuffer *out, int status, const char *ctype, const char *allow,
    size_t len, int keepalive)
{
	if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status)) < 0 ||
	    (ctype != NULL && ctype[0] != '\0' &&
	    evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype) < 0) ||
	    (allow != NULL && allow[0] != '\0' &&
	    evbuffer_add_printf(out, "Allow: %s\r\n", allow) < 0) ||
	    evbuffer_add_printf(out, "Content-Length: %zu\r\n%s\r\n", len,
	    keepalive ? "" : "Connection: close\r\n") < 0)
		return -1;
	return 0;
}

/*
 * Closing: the peer may still be sending a body we refused (a 413 from the
 * header).  Its declared rest is read and dropped before our side shuts, so
 * a client that reads only after sending sees the answer rather than a
 * reset; the linger deadline bounds it all.
 */
static void
conn_linger(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);
	int fd;

	evbuffer_drain(in, n);
	c->body_left = n < c->body_left ? c->body_left - n : 0;
	/* A rest too large to drain in time gets our FIN at once (then a reset). */
	if ((c->body_left == 0 || c->body_left > SW_HTTP_LINGER_MAX) && !c->chunked &&
	    !c->shut && (fd = (int)bufferevent_getfd(c->bev)) >= 0) {
		(void)shutdown(fd, SHUT_WR);
		c->shut = 1;
	}
}

/* After the answer: next request, or close. */
static void
conn_answered(struct http_conn *c)
{
	if (c->close_after) {
		if (bufferevent_getfd(c->bev) < 0) {
			conn_free(c);
			return;
		}
		c->state = C_CLOSING;
		bufferevent_enable(c->bev, EV_READ);
		conn_arm(c, SW_HTTP_LINGER_MS);
		conn_linger(c);
		return;
	}
	c->state = C_IDLE;
	conn_arm(c, SW_HTTP_IDLE_MS);
	bufferevent_enable(c->bev, EV_READ);
	conn_process(c);
}

/*
 * An error before there is a request to answer (a header too large, or too
 * slow): the JSON error, then close.
 */
static void
conn_fail(struct http_conn *c, int status, const char *msg)
{
	struct sw_http_server *srv = c->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char body[160], code[16];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);

	if (c->pending != NULL) {
		req_free(c->pending);
		c->pending = NULL;
	}
	snprintf(code, sizeof(code), "%d", status);
	sw_metric_add(srv->m_requests, (const char *const[]){SW_HTTP_UNMATCHED, "OTHER", code}, 1);
	sw_log_debug(srv->svc, "request refused", "status=%d reason=\"%s\" peer=%s", status, msg,
	    c->peer);
	c->close_after = 1;
	c->chunked = 0; /* a refused chunked body has no known rest to drain */
	c->state = C_WRITING;
	event_del(c->timer);
	bufferevent_disable(c->bev, EV_READ);
	if (write_head(out, status, "application/json", NULL, (size_t)n, 0) == -1 ||
	    evbuffer_add(out, body, (size_t)n) == -1)
		conn_free(c);
}

static void
conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case C_HEAD:
		c->body_left = 0;
		c->chunked = 0;
		conn_fail(c, 408, "request header not complete in time");
		break;
	case C_BODY:
		c->body_left = 0;
		c->chunked = 0;
		conn_fail(c, 408, "request body not complete in time");
		break;
	case C_IDLE:
	case C_CLOSING:
	case C_HANDLING:
	case C_WRITING:
	case C_STREAM:
		conn_free(c);
		break;
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	if (c->state == C_WRITING)
		conn_answered(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	/*
	 * EOF with an answer outstanding means the client left (a half-close
	 * after the request counts as leaving): drop the connection now, not
	 * at the answer.
	 */
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_free(c);
}

static struct http_conn *
conn_new(struct sw_http_server *srv, struct bufferevent *bev, const char *peer,
    struct sw_listener_peer *lpeer, const char *carrier)
{
	struct http_conn *c;
	struct timeval wr = {SW_HTTP_WRITE_S, 0};

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->timer = evtimer_new(srv->base, conn_timeout, c)) == NULL) {
		free(c);
		return NULL;
	}
	c->srv = srv;
	c->bev = bev;
	c->lpeer = lpeer;
	c->carrier = carrier != NULL ? carrier : "tcp";
	sw_strlcpy(c->peer, peer != NULL ? peer : "", sizeof(c->peer));
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	sw_metric_set(srv->m_open, NULL, (double)srv->nconns);
	bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(bev, EV_READ, 0, SW_HTTP_INPUT_MAX);
	bufferevent_set_timeouts(bev, NULL, &wr);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* The header deadline runs from accept: a silent connection is a slow header. */
	c->state = C_HEAD;
	conn_arm(c, srv->lim.header_ms);
	return c;
}

static void
on_accept(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    struct sw_listener_peer *peer, int over_cap, void *arg)
{
	struct sw_http_server *srv = arg;
	struct bufferevent *bev;
	struct http_conn *c;
	int one = 1;

	(void)sa;
	(void)salen;
	/*
	 * Nagle off: an answer larger than a segment would otherwise wait for
	 * the client's delayed ACK (40 ms) on every request.
	 */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		sw_listener_release(srv->lis, peer);
		return;
	}
	if ((c = conn_new(srv, bev, sw_listener_peer_ip(peer), peer, "tcp")) == NULL) {
		bufferevent_free(bev);
		sw_listener_release(srv->lis, peer);
		return;
	}
	c->refuse = over_cap;
}

int
sw_http_server_adopt(struct sw_http_server *srv, struct bufferevent *bev, const char *peer)
{
	return sw_http_server_adopt_as(srv, bev, peer, NULL);
}

int
sw_http_server_adopt_as(struct sw_http_server *srv, struct bufferevent *bev, const char *peer,
    const char *carrier)
{
	if (srv->closing || conn_new(srv, bev, peer, NULL, carrier) == NULL) {
		bufferevent_free(bev);
		return -1;
	}
	return 0;
}

/* Parse "/a/{b}/id:{c}" into segments; every '/' starts a segment. */
static int
route_parse(struct route *r, const char *pattern)
{
	const char *p = pattern;

	if (*p != '/')
		return -1;
	while (*p == '/') {
		const char *s = p + 1, *e = strchr(s, '/'), *open, *close;
		struct seg *g;
		size_t n;

		if (e == NULL)
			e = s + strlen(s);
		n = (size_t)(e - s);
		if (r->nsegs == SW_HTTP_MAX_SEGS)
			return -1;
		g = &r->segs[r->nsegs];
		if ((g->lit = malloc(n + 1)) == NULL)
			return -1;
		r->nsegs++;
		memcpy(g->lit, s, n);
		g->lit[n] = '\0';
		open = memchr(s, '{', n);
		if (open != NULL) {
			close = memchr(open, '}', (size_t)(e - open));
			/* One capture per segment, closing the segment, non-empty name. */
			if (close == NULL || close != e - 1 || close == open + 1 ||
			    memchr(open + 1, '{', (size_t)(close - open - 1)) != NULL)
				return -1;
			g->litlen = (size_t)(open - s);
			g->lit[g->litlen] = '\0';
			g->cap = g->lit + g->litlen + 1;
			g->lit[n - 1] = '\0';
		} else {
			if (memchr(s, '}', n) != NULL)
				return -1;
			g->litlen = n;
		}
		p = e;
	}
	return 0;
}

int
sw_http_route(struct sw_http_server *srv, const char *method, const char *pattern,
    sw_http_handler *h, void *arg)
{
	struct route *r = NULL, **rs;
	size_t ncap = 0;

	if (method == NULL || pattern == NULL || h == NULL || strlen(method) >= sizeof(r->method))
		goto bad;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto bad;
	memcpy(r->method, method, strlen(method) + 1);
	r->h = h;
	r->arg = arg;
	if ((r->pattern = sw_xstrdup(pattern)) == NULL || route_parse(r, pattern) == -1)
		goto bad;
	for (size_t i = 0; i < r->nsegs; i++)
		ncap += r->segs[i].cap != NULL;
	if (ncap > SW_HTTP_MAX_PARAMS)
		goto bad;
	if ((rs = realloc(srv->routes, (srv->nroutes + 1) * sizeof(*rs))) == NULL)
		goto bad;
	srv->routes = rs;
	srv->routes[srv->nroutes++] = r;
	return 0;
bad:
	sw_log_error(srv->svc, "bad route", "method=%s pattern=%s",
	    sw_log_q((char[32]){0}, 32, method), sw_log_q((char[256]){0}, 256, pattern));
	if (r != NULL) {
		for (size_t j = 0; j < r->nsegs; j++)
			free(r->segs[j].lit);
		free(r->pattern);
		free(r);
	}
	return -1;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode n bytes of s into out (NUL-terminated); -1 on an encoded NUL. */
static int
pct_decode(char *out, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] == '%' && i + 2 < n &&
		    (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			if (hi == 0 && lo == 0)
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return 0;
}

/*
 * Split the raw path at '/' and decode each segment on its own, so an
 * encoded slash stays inside its segment.  Returns -1 on a bad path, -2 on
 * too many segments (no route can match).
 */
static int
split_path(struct sw_http_req *r, const char *raw, char *space)
{
	const char *p = raw;

	r->nsegs = 0;
	while (*p == '/') {
		const char *s = p + 1, *e = strchr(s, '/');

		if (e == NULL)
			e = s + strlen(s);
		if (r->nsegs == SW_HTTP_MAX_SEGS)
			return -2;
		if (pct_decode(space, s, (size_t)(e - s)) == -1)
			return -1;
		r->segs[r->nsegs++] = space;
		space += strlen(space) + 1;
		p = e;
	}
	return *p == '\0' ? 0 : -1;
}

/* 0 no match; otherwise a match. */
static int
route_match(const struct route *rt, const struct sw_http_req *r)
{
	if (rt->nsegs != r->nsegs)
		return 0;
	for (size_t i = 0; i < rt->nsegs; i++) {
		const struct seg *g = &rt->segs[i];
		const char *s = r->segs[i];

		if (g->cap == NULL) {
			if (strcmp(g->lit, s) != 0)
				return 0;
		} else if (strncmp(g->lit, s, g->litlen) != 0 || s[g->litlen] == '\0') {
			return 0; /* a capture takes at least one character */
		}
	}
	return 1;
}

/* < 0 when a is more specific than b. */
static int
route_cmp(const struct route *a, const struct route *b)
{
	for (size_t i = 0; i < a->nsegs; i++) {
		const struct seg *x = &a->segs[i], *y = &b->segs[i];
		long rx = x->cap == NULL ? 1L << 20 : (long)x->litlen;
		long ry = y->cap == NULL ? 1L << 20 : (long)y->litlen;

		if (rx != ry)
			return rx > ry ? -1 : 1;
	}
	return 0;
}

static int
method_ok(const struct route *rt, const char *method)
{
	return strcmp(rt->method, "*") == 0 || strcmp(rt->method, method) == 0 ||
	    (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

/* ---- reading a request ---- */

static int
is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* A comma-separated header value holds token t (case-insensitive). */
static int
has_token(const char *v, const char *t)
{
	size_t tl = strlen(t);

	while (v != NULL && *v != '\0') {
		size_t n;

		v += strspn(v, " \t,");
		n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(v, t, tl) == 0)
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

/* Strict decimal (no sign, no space), at most 2^62. */
static int
parse_length(const char *s, size_t *out)
{
	size_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > ((size_t)1 << 58))
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/*
 * The request line and headers in c->hbuf become a request.  Returns the
 * request, or NULL with *status and *msg set.
 */
static struct sw_http_req *
req_build(struct http_conn *c, int *status, const char **msg)
{
	const char *line = c->hbuf, *sp1, *sp2, *target, *version;
	size_t mlen, tlen, n;
	struct sw_http_req *r;
	char *p;

	*status = 400;
	*msg = "bad request line";
	if ((sp1 = strchr(line, ' ')) == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
	    strchr(sp2 + 1, ' ') != NULL)
		return NULL;
	mlen = (size_t)(sp1 - line);
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	version = sp2 + 1;
	if (mlen == 0 || mlen > SW_HTTP_MAX_METHOD || tlen == 0)
		return NULL;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)line[i]))
			return NULL;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
			return NULL;
	if (strncmp(version, "HTTP/", 5) != 0 || strlen(version) != 8 ||
	    version[5] < '0' || version[5] > '9' || version[6] != '.' ||
	    version[7] < '0' || version[7] > '9')
		return NULL;
	if (version[5] != '1') {
		*status = 505;
		*msg = "HTTP version not supported";
		return NULL;
	}
	/* Absolute form: keep the path and query. */
	if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
		const char *a = strstr(target, "//") + 2, *slash = memchr(a, '/',
		    tlen - (size_t)(a - target));

		if (slash == NULL)
			return NULL;
		tlen -= (size_t)(slash - target);
		target = slash;
	}
	if (target[0] != '/' && !(tlen == 1 && target[0] == '*'))
		return NULL;
	/* header copy, uri, decoded path, raw path, decoded segments */
	n = c->hlen + 4 * (tlen + 2);
	if ((r = calloc(1, sizeof(*r) + n)) == NULL) {
		*status = 503;
		*msg = "out of memory";
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	memcpy(r->method, line, mlen);
	r->mlabel = method_label(r->method);
	r->head = strcmp(r->method, "HEAD") == 0;
	r->keepalive = version[7] != '0';
	sw_strlcpy(r->peer, c->peer, sizeof(r->peer));
	memcpy(r->buf, c->hbuf, c->hlen);
	p = r->buf + c->hlen;
	r->uri = p;
	memcpy(r->uri, target, tlen);
	r->uri[tlen] = '\0';
	p += tlen + 1;
	r->path = p;
	/* Headers: "name: value", no folding, names are tokens. */
	*msg = "bad header line";
	for (char *h = r->buf + strlen(r->buf) + 1, *next; h < r->buf + c->hlen; h = next) {
		char *colon = strchr(h, ':'), *v, *e;

		next = h + strlen(h) + 1;

		if (colon == NULL || colon == h || r->nheaders == SW_HTTP_MAX_LINES)
			goto fail;
		for (const char *q = h; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				goto fail;
		*colon = '\0';
		v = colon + 1;
		v += strspn(v, " \t");
		e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		for (const char *q = v; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				goto fail;
		r->headers[r->nheaders].name = h;
		r->headers[r->nheaders++].value = v;
	}
	*status = 0;
	return r;
fail:
	free(r);
	return NULL;
}

/* Framing from the headers: body length, chunked, keep-alive, 100-continue. */
static int
req_framing(struct http_conn *c, struct sw_http_req *r, int *status, const char **msg)
{
	const char *cl = NULL, *te = NULL, *expect = NULL;
	size_t len = 0;

	*status = 400;
	for (size_t i = 0; i < r->nheaders; i++) {
		const char *k = r->headers[i].name, *v = r->headers[i].value;

		if (strcasecmp(k, "Content-Length") == 0) {
			size_t l;

			*msg = "bad Content-Length";
			if (parse_length(v, &l) == -1 || (cl != NULL && l != len))
				return -1;
			cl = v;
			len = l;
		} else if (strcasecmp(k, "Transfer-Encoding") == 0) {
			*msg = "more than one Transfer-Encoding";
			if (te != NULL)
				return -1;
			te = v;
		} else if (strcasecmp(k, "Connection") == 0) {
			if (has_token(v, "close"))
				r->keepalive = 0;
			else if (has_token(v, "keep-alive"))
				r->keepalive = 1;
		} else if (strcasecmp(k, "Expect") == 0) {
			expect = v;
		}
	}
	if (te != NULL) {
		*msg = "Transfer-Encoding with Content-Length";
		if (cl != NULL)
			return -1;
		*status = 501;
		*msg = "only the chunked transfer coding is supported";
		if (strcasecmp(te, "chunked") != 0)
			return -1;
		c->chunked = 1;
		c->ch = CH_SIZE;
	}
	/* The limit is ours at every size, and known before the body is read. */
	c->body_left = len;
	if (len > c->srv->max_body) {
		*status = 413;
		*msg = "request body too large";
		return -1;
	}
	if (expect != NULL) {
		*status = 417;
		*msg = "unsupported expectation";
		if (strcasecmp(expect, "100-continue") != 0)
			return -1;
		if (len > 0 || c->chunked)
			evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 100 Continue\r\n\r\n");
	}
	if ((r->body = evbuffer_new()) == NULL) {
		*status = 503;
		*msg = "out of memory";
		return -1;
	}
	return 0;
}

/* Read header lines.  1 complete, 0 need more, -1 answered (and closing). */
static int
read_head(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		size_t eol_len = 0, n;
		struct evbuffer_ptr e = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);

		if (e.pos < 0) {
			if (c->hlen + evbuffer_get_length(in) > SW_HTTP_MAX_HEADERS) {
				conn_fail(c, 431, "request header too large");
				return -1;
			}
			return 0;
		}
		n = (size_t)e.pos;
		if (c->hlen + n + 1 > SW_HTTP_MAX_HEADERS || c->nlines > SW_HTTP_MAX_LINES) {
			conn_fail(c, 431, "request header too large");
			return -1;
		}
		if (n == 0) {
			evbuffer_drain(in, eol_len);
			if (c->nlines == 0)
				continue; /* empty lines before a request are allowed */
			return 1;
		}
		if (c->hbuf == NULL && (c->hbuf = malloc(SW_HTTP_MAX_HEADERS)) == NULL) {
			conn_fail(c, 503, "out of memory");
			return -1;
		}
		evbuffer_remove(in, c->hbuf + c->hlen, n);
		evbuffer_drain(in, eol_len);
		if (memchr(c->hbuf + c->hlen, '\0', n) != NULL ||
		    (c->nlines > 0 && (c->hbuf[c->hlen] == ' ' || c->hbuf[c->hlen] == '\t'))) {
			conn_fail(c, 400, "bad header line");
			return -1;
		}
		c->hbuf[c->hlen + n] = '\0';
		c->hlen += n + 1;
		c->nlines++;
	}
}

/* Move body bytes.  1 complete, 0 need more, -1 answered (and closing). */
static int
read_body(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct sw_http_req *r = c->pending;

	for (;;) {
		size_t eol_len = 0, n;
		struct evbuffer_ptr e;
		char line[64];

		if (!c->chunked || c->ch == CH_DATA) {
			n = evbuffer_get_length(in);
			if (n > c->body_left)
				n = c->body_left;
			if (n > 0 && evbuffer_remove_buffer(in, r->body, n) != (int)n) {
				conn_fail(c, 503, "out of memory");
				return -1;
			}
			c->body_left -= n;
			if (c->body_left > 0)
				return 0;
			if (!c->chunked)
				return 1;
			c->ch = CH_DATA_END;
			continue;
		}
		e = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (e.pos < 0) {
			if (evbuffer_get_length(in) > sizeof(line) && c->ch != CH_TRAILER) {
				conn_fail(c, 400, "bad chunk");
				return -1;
			}
			if (c->ch == CH_TRAILER && evbuffer_get_length(in) > SW_HTTP_MAX_HEADERS) {
				conn_fail(c, 431, "request trailer too large");
				return -1;
			}
			return 0;
		}
		n = (size_t)e.pos;
		if (c->ch == CH_TRAILER) {
			evbuffer_drain(in, n + eol_len);
			if (n == 0)
				return 1;
			continue;
		}
		if (n >= sizeof(line)) {
			conn_fail(c, 400, "bad chunk");
			return -1;
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = '\0';
		if (c->ch == CH_DATA_END) {
			if (n != 0) {
				conn_fail(c, 400, "bad chunk");
				return -1;
			}
			c->ch = CH_SIZE;
			continue;
		}
		{
			size_t sz = 0, i;

			for (i = 0; line[i] != '\0' && line[i] != ';' && line[i] != ' ' &&
			    line[i] != '\t'; i++) {
				int h = hexval(line[i]);

				if (h < 0 || i >= 15) {
					conn_fail(c, 400, "bad chunk size");
					return -1;
				}
				sz = sz * 16 + (size_t)h;
			}
			if (i == 0) {
				conn_fail(c, 400, "bad chunk size");
				return -1;
			}
			if (sz > c->srv->max_body - evbuffer_get_length(r->body)) {
				conn_fail(c, 413, "request body too large");
				return -1;
			}
			c->body_left = sz;
			c->ch = sz == 0 ? CH_TRAILER : CH_DATA;
		}
	}
}

static void dispatch(struct http_conn *c);

/* One step of the connection's state machine: 1 to go on, 0 to wait. */
static int
conn_step(struct http_conn *c, struct evbuffer *in)
{
	int status;
	const char *msg;

	switch (c->state) {
	case C_IDLE:
		if (evbuffer_get_length(in) == 0)
			return 0;
		c->state = C_HEAD;
		conn_arm(c, c->srv->lim.header_ms);
		return 1;
	case C_HEAD:
		if (read_head(c) <= 0)
			return 0;
		if ((c->pending = req_build(c, &status, &msg)) == NULL ||
		    req_framing(c, c->pending, &status, &msg) == -1) {
			conn_fail(c, status, msg);
			return 0;
		}
		c->hlen = 0;
		c->nlines = 0;
		c->state = C_BODY;
		conn_arm(c, c->srv->lim.body_ms);
		return 1;
	case C_BODY:
		if (read_body(c) <= 0)
			return 0;
		c->state = C_HANDLING;
		event_del(c->timer);
		c->chunked = 0;
		dispatch(c);
		return 1;
	case C_CLOSING:
		conn_linger(c);
		return 0;
	case C_HANDLING:
	case C_WRITING:
	case C_STREAM:
		break;
	}
	return 0;
}

static void
conn_process(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	/* Re-entered from an answer given inside the loop: the loop goes on. */
	if (c->busy)
		return;
	c->busy = 1;
	while (!c->dead && conn_step(c, in))
		;
	c->busy = 0;
	if (c->dead)
		conn_destroy(c);
}

/* ---- routing a complete request ---- */

/* Add m to the Allow list unless it is there. */
static void
allow_add(char *allow, size_t size, const char *m)
{
	size_t al = strlen(allow), ml = strlen(m);

	for (const char *p = allow; (p = strstr(p, m)) != NULL; p += ml)
		if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
			return;
	snprintf(allow + al, size - al, "%s%s", al ? ", " : "", m);
}

static void
dispatch(struct http_conn *c)
{
	struct sw_http_server *srv = c->srv;
	struct sw_http_req *r = c->pending;
	const struct route *best = NULL;
	const char *raw = r->uri;
	char *q, *rawpath;
	int rc, other_method = 0, any_method = 0, method_known = 0;

	r->srv = srv;
	r->conn = c;
	r->carrier = c->carrier;
	if (c->refuse) {
		r->keepalive = 0;
		sw_http_error(r, 503, "too many connections from this address");
		return;
	}
	/* The path is what comes before '?'; the query is kept raw. */
	rawpath = r->path + strlen(r->uri) + 1; /* scratch after the decoded path */
	memcpy(rawpath, raw, strlen(raw) + 1);
	if ((q = strpbrk(rawpath, "?#")) != NULL) {
		if (*q == '?') {
			size_t off = (size_t)(q - rawpath) + 1;

			r->rawquery = r->uri + off;
		}
		*q = '\0';
	}
	if (pct_decode(r->path, rawpath, strlen(rawpath)) == -1 ||
	    (rc = split_path(r, rawpath, rawpath + strlen(rawpath) + 1)) == -1) {
		sw_http_error(r, 400, "bad path");
		return;
	}
	for (size_t i = 0; i < srv->nroutes; i++) {
		const struct route *rt = srv->routes[i];

		any_method |= strcmp(rt->method, "*") == 0;
		method_known |= method_ok(rt, r->method);
		if (rc != 0 || !route_match(rt, r))
			continue;
		if (!method_ok(rt, r->method)) {
			allow_add(r->allow, sizeof(r->allow), rt->method);
			if (!other_method)
				r->route = rt; /* the 405 is counted under it */
			other_method = 1;
			continue;
		}
		if (best == NULL || route_cmp(rt, best) < 0)
			best = rt;
	}
	if (best == NULL) {
		if (other_method) {
			sw_http_error(r, 405, "method not allowed");
		} else if (!method_known && !any_method) {
			/* A method no route takes (TRACE, PROPFIND…), whatever the path. */
			for (size_t i = 0; i < srv->nroutes; i++)
				allow_add(r->allow, sizeof(r->allow), srv->routes[i]->method);
			sw_http_error(r, 405, "method not allowed");
		} else {
			sw_http_error(r, 404, "not found");
		}
		return;
	}
	r->route = best;
	for (size_t i = 0; i < best->nsegs; i++)
		if (best->segs[i].cap != NULL) {
			r->params[r->nparams].name = best->segs[i].cap;
			r->params[r->nparams++].value = r->segs[i] + best->segs[i].litlen;
		}
	best->h(r, best->arg);
}

const char *
sw_http_req_method(const struct sw_http_req *req)
{
	return req->method;
}

const char *
sw_http_req_uri(const struct sw_http_req *req)
{
	return req->uri;
}

const char *
sw_http_req_path(const struct sw_http_req *req)
{
	return req->path;
}

const char *
sw_http_req_param(const struct sw_http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

/*
 * Decode "a=1&b&c=x+y" into "a\0" "1\0" "b\0" "\0" "c\0" "x y\0" "\0".
 * Lenient on purpose: a key without '=' has an empty value, where
 * evhttp_parse_query_str would reject the whole string.
 */
static char *
query_decode(const char *q)
{
	size_t n = strlen(q);
	char *out = malloc(2 * n + 3), *o = out;

	if (out == NULL)
		return NULL;
	while (*q != '\0') {
		size_t plen = strcspn(q, "&;"), klen;
		const char *eq = memchr(q, '=', plen);

		klen = eq != NULL ? (size_t)(eq - q) : plen;
		if (plen > 0) {
			if (pct_decode(o, q, klen) == -1)
				*o = '\0';
			o += strlen(o) + 1;
			if (eq == NULL || pct_decode(o, eq + 1, plen - klen - 1) == -1)
				*o = '\0';
			for (char *p = o; *p != '\0'; p++)
				if (*p == '+')
					*p = ' ';
			o += strlen(o) + 1;
		}
		q += plen;
		if (*q != '\0')
			q++;
	}
	*o = '\0';
	return out;
}

const char *
sw_http_req_query(const struct sw_http_req *req, const char *name)
{
	/* Decoded on first use; the cache is not part of the request's meaning. */
	struct sw_http_req *r = (struct sw_http_req *)(uintptr_t)req;

	if (r->gone)
		return NULL;
	if (r->query == NULL &&
	    (r->query = query_decode(r->rawquery != NULL ? r->rawquery : "")) == NULL)
		return NULL;
	for (const char *k = r->query; *k != '\0';) {
		const char *v = k + strlen(k) + 1;

		if (strcmp(k, name) == 0)
			return v;
		k = v + strlen(v) + 1;
	}
	return NULL;
}

const char *
sw_http_req_header(const struct sw_http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

const unsigned char *
sw_http_req_body(const struct sw_http_req *req, size_t *len)
{
	struct sw_http_req *r = (struct sw_http_req *)(uintptr_t)req;
	unsigned char *p;

	if (len != NULL)
		*len = 0;
	if (r->body == NULL)
		return NULL;
	/* A trailing NUL (not counted) lets handlers use C string parsers. */
	if (!r->body_ready) {
		r->body_len = evbuffer_get_length(r->body);
		if (evbuffer_add(r->body, "", 1) == -1)
			return NULL;
		r->body_ready = 1;
	}
	if ((p = evbuffer_pullup(r->body, -1)) == NULL)
		return NULL;
	if (len != NULL)
		*len = r->body_len;
	return p;
}

const char *
sw_http_req_peer(const struct sw_http_req *req)
{
	return req->peer;
}

const char *
sw_http_req_carrier(const struct sw_http_req *req)
{
	return req->carrier != NULL ? req->carrier : "tcp";
}

const char *
sw_http_req_svc(const struct sw_http_req *req)
{
	return req->srv != NULL ? req->srv->svc : NULL;
}

const char *
sw_http_req_route(const struct sw_http_req *req)
{
	return req->route != NULL ? req->route->pattern : NULL;
}

int
sw_http_req_gone(const struct sw_http_req *req)
{
	return req->gone;
}

void
sw_http_req_set_data(struct sw_http_req *req, void *data)
{
	req->data = data;
}

void *
sw_http_req_get_data(const struct sw_http_req *req)
{
	return req->data;
}

/* ---- answers ---- */

/*
 * Write the answer (body is an evbuffer or a pointer), count it, log it,
 * free the wrapper.  The connection goes on once the answer is out.
 */
static void
finish(struct sw_http_req *r, int status, const char *ctype, struct evbuffer *bbody,
    const void *body, size_t len)
{
	struct sw_http_server *srv = r->srv;
	struct http_conn *c = r->conn;
	struct evbuffer *out;
	const char *route;
	double secs;
	char code[16];
	int rc;

	if (r->gone || c == NULL) {
		req_free(r);
		return;
	}
	route = r->route != NULL ? r->route->pattern : SW_HTTP_UNMATCHED;
	if (status < 100 || status > 599)
		status = 500;
	if (bbody != NULL)
		len = evbuffer_get_length(bbody);
	if (srv->closing || status == 413 || status == 400)
		r->keepalive = 0;
	c->pending = NULL;
	c->close_after = !r->keepalive;
	c->state = C_WRITING;
	out = bufferevent_get_output(c->bev);
	rc = write_head(out, status, ctype, r->allow, len, r->keepalive);
	if (rc == 0 && !r->head && len > 0)
		rc = bbody != NULL ? evbuffer_add_buffer(out, bbody) : evbuffer_add(out, body, len);
	else if (rc == 0 && bbody != NULL)
		evbuffer_drain(bbody, len);
	secs = elapsed_s(&r->t0);
	snprintf(code, sizeof(code), "%d", status);
	sw_metric_add(srv->m_carrier, (const char *const[]){r->carrier}, 1);
	sw_metric_add(srv->m_requests, (const char *const[]){route, r->mlabel, code}, 1);
	sw_metric_observe(srv->m_duration, (const char *const[]){route}, secs);
	if (sw_log_get_level() <= SW_LOG_DEBUG)
		sw_log_debug(srv->svc, "request", "method=%s path=%s status=%d ms=%.2f peer=%s",
		    sw_log_q((char[32]){0}, 32, r->method), sw_log_q((char[512]){0}, 512, r->uri),
		    status, secs * 1e3, r->peer);
	req_free(r);
	if (rc == -1)
		conn_free(c);
	else if (evbuffer_get_length(out) == 0)
		conn_answered(c); /* nothing to wait for (a carrier that wrote at once) */
}

/*
 * A streamed answer: no Content-Length, so it ends with the connection.
 * The request stays the connection's pending one, so a client leaving
 * marks it gone like any other.
 */
int
sw_http_stream_start(struct sw_http_req *req, int status, const char *ctype)
{
	struct http_conn *c = req->conn;
	struct evbuffer *out;

	if (req->gone || c == NULL || c->state != C_HANDLING)
		return -1;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Cache-Control: no-cache\r\nConnection: close\r\n\r\n", status, reason(status),
	    ctype != NULL ? ctype : "application/octet-stream") < 0)
		return -1;
	req->status = status;
	c->state = C_STREAM;
	return 0;
}

int
sw_http_stream_write(struct sw_http_req *req, const void *data, size_t len)
{
	if (req->gone || req->conn == NULL || req->conn->state != C_STREAM)
		return -1;
	return evbuffer_add(bufferevent_get_output(req->conn->bev), data, len);
}

size_t
sw_http_stream_queued(const struct sw_http_req *req)
{
	if (req->gone || req->conn == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(req->conn->bev));
}

void
sw_http_stream_end(struct sw_http_req *req)
{
	struct http_conn *c = req->conn;
	char code[16];

	if (req->gone || c == NULL || c->state != C_STREAM) {
		if (!req->gone && c != NULL)
			finish(req, 500, "application/json", NULL, "{\"error\":\"no stream\"}", 21);
		else
			req_free(req);
		return;
	}
	snprintf(code, sizeof(code), "%d", req->status);
	sw_metric_add(c->srv->m_carrier, (const char *const[]){req->carrier}, 1);
	sw_metric_add(c->srv->m_requests, (const char *const[]){req->route != NULL ?
	    req->route->pattern : SW_HTTP_UNMATCHED, req->mlabel, code}, 1);
	c->pending = NULL;
	c->close_after = 1;
	c->state = C_WRITING;
	req_free(req);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_answered(c);
}

void
sw_http_reply_raw(struct sw_http_req *req, int status, const char *ctype, const void *body,
    size_t len)
{
	finish(req, status, ctype, NULL, body, len);
}

void
sw_http_reply_buf(struct sw_http_req *req, int status, const char *ctype,
    struct evbuffer *body)
{
	if (body == NULL)
		finish(req, status, ctype, NULL, NULL, 0);
	else
		finish(req, status, ctype, body, NULL, 0);
}

void
sw_http_reply_json(struct sw_http_req *req, int status, const cJSON *body)
{
	char *s;

	if (req->gone || body == NULL) {
		sw_http_reply_raw(req, status, "application/json", NULL, 0);
		return;
	}
	if ((s = cJSON_PrintUnformatted(body)) == NULL) {
		sw_http_reply_raw(req, 500, "application/json", "{\"error\":\"out of memory\"}",
		    25);
		return;
	}
	sw_http_reply_raw(req, status, "application/json", s, strlen(s));
	cJSON_free(s);
}

void
sw_http_error_extra(struct sw_http_req *req, int status, const char *msg, cJSON *extra)
{
	cJSON *o = NULL, *item;

	if (req->gone)
		goto out;
	if ((o = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o, "error", msg != NULL ? msg : "") == NULL)
		goto out;
	while (extra != NULL && (item = extra->child) != NULL) {
		cJSON_DetachItemViaPointer(extra, item);
		if (item->string != NULL && strcmp(item->string, "error") == 0) {
			cJSON_Delete(item);
			continue;
		}
		cJSON_AddItemToObject(o, item->string, item);
	}
out:
	cJSON_Delete(extra);
	if (o != NULL)
		sw_http_reply_json(req, status, o);
	else
		sw_http_reply_raw(req, status, "application/json", "{\"error\":\"\"}", 12);
	cJSON_Delete(o);
}

void
sw_http_error(struct sw_http_req *req, int status, const char *msg)
{
	sw_http_error_extra(req, status, msg, NULL);
}

int
sw_http_routes(struct sw_http_server *srv, const struct sw_http_route_def *defs, size_t n,
    void *arg)
{
	for (size_t i = 0; i < n; i++)
		if (sw_http_route(srv, defs[i].method, defs[i].pattern, defs[i].h, arg) == -1)
			return -1;
	return 0;
}
