/*
 * http (server): routing, JSON answers and request bookkeeping over evhttp.
 *
 * The one idea: a struct sw_http_req wraps each evhttp_request and is what
 * handlers hold, so an answer given later never touches a request libevent
 * has freed.  libevent 2.1 keeps a pending request alive while the
 * connection lives (it stops reading while the user holds it), so the danger
 * is the connection going away: the client closing (we watch the socket for
 * EOF while an answer is outstanding, and then free the connection early)
 * or the server being freed.  Both pass through the connection's close
 * callback, which marks the wrapper gone; the late answer then only frees the
 * wrapper.
 *
 * Per-connection state lives in a table indexed by file descriptor, filled at
 * a connection's first request: evhttp gives no hook at accept time, so
 * "open connections" counts connections that have sent a request (idle ones
 * are closed by the timeout anyway).
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
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

#define SW_HTTP_MAX_SEGS     32
#define SW_HTTP_MAX_PARAMS   8
#define SW_HTTP_MAX_HEADERS  (16 * 1024)
#define SW_HTTP_TIMEOUT_S    30
#define SW_HTTP_MAX_CONNS    4096
#define SW_HTTP_MAX_LISTENERS 4
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

struct http_conn {
	struct sw_http_server *srv;
	struct evhttp_connection *evcon;
	int fd;
	struct sw_http_req *pending; /* the request being handled, if any */
	struct event *watch;         /* EOF watch while an answer is outstanding */
	const char *carrier;         /* "tcp", or the carrier that connected it */
	char peer[72];               /* the carrier's name for the peer (dmsg: its PK) */
	int stranger;                /* on the carrier's listener, unknown to the carrier */
};

struct sw_http_server {
	struct event_base *base;
	struct evhttp *http;
	char *svc;
	struct sw_metrics *metrics;
	struct sw_metric *m_requests, *m_duration, *m_open;
	size_t max_body;
	size_t max_conns;
	size_t nconns;
	int paused;
	int closing;
	struct http_conn **conns; /* by fd */
	size_t nconnslots;
	struct evhttp_bound_socket *bound[SW_HTTP_MAX_LISTENERS];
	size_t nbound;
	struct route **routes;
	size_t nroutes;
	/* The second carrier (sw_http_server_carrier): its private listener and who is behind it. */
	int carrier_port;
	const char *carrier;
	sw_http_peer_fn *peer_fn;
	void *peer_arg;
	struct sw_metric *m_carrier;
};

struct param {
	const char *name;
	const char *value;
};

struct sw_http_req {
	struct sw_http_server *srv;  /* NULL once gone */
	struct evhttp_request *ev;   /* NULL once gone */
	struct http_conn *conn;      /* NULL once gone */
	const struct route *route;
	const char *method;
	struct timespec t0;
	void *data;
	char *query;      /* decoded pairs, see query_decode */
	int gone;
	int streaming;    /* sw_http_stream_start sent the headers */
	int status;
	int body_ready;
	size_t body_len;
	char *uri;
	char *path;
	size_t nparams;
	struct param params[SW_HTTP_MAX_PARAMS];
	size_t nsegs;
	char *segs[SW_HTTP_MAX_SEGS];
	const char *carrier;
	char peer[72];
	char buf[];
};

static void conn_closed(struct evhttp_connection *evcon, void *arg);
static void carrier_identify(struct sw_http_server *srv, struct http_conn *c);

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static const char *
method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "OTHER";
}

static double
elapsed_s(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* evhttp reads bodies up to its own limit before we see them; ours is checked after. */
static void
apply_body_limit(struct sw_http_server *srv)
{
	size_t ev = srv->max_body * 2;

	if (ev < srv->max_body + 1)
		ev = srv->max_body + 1;
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)ev);
}

static void on_request(struct evhttp_request *ev, void *arg);

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
	srv->max_conns = SW_HTTP_MAX_CONNS;
	if ((srv->svc = xstrdup(svc != NULL ? svc : "http")) == NULL)
		goto fail;
	if ((srv->http = evhttp_new(base)) == NULL)
		goto fail;
	evhttp_set_gencb(srv->http, on_request, srv);
	/* Every method reaches the router, which answers 405 in JSON. */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_PATCH);
	evhttp_set_timeout(srv->http, SW_HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(srv->http, SW_HTTP_MAX_HEADERS);
	/* Read the rest of an oversized body so the client sees libevent's 413, not a reset. */
	evhttp_set_flags(srv->http, EVHTTP_SERVER_LINGERING_CLOSE);
	apply_body_limit(srv);
	if (metrics != NULL) {
		srv->m_requests = sw_metric_new(metrics, "sw_http_requests_total",
		    "HTTP requests by route, method and status code.", SW_COUNTER, l_req, NULL, 0);
		srv->m_duration = sw_metric_new(metrics, "sw_http_request_duration_seconds",
		    "HTTP request latency by route.", SW_HISTOGRAM, l_route, NULL, 0);
		srv->m_open = sw_metric_new(metrics, "sw_http_open_connections",
		    "Open HTTP connections that have sent a request.", SW_GAUGE, NULL, NULL, 0);
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
	/* Closes every connection; their close callbacks mark pending requests gone. */
	if (srv->http != NULL)
		evhttp_free(srv->http);
	for (size_t i = 0; i < srv->nroutes; i++) {
		struct route *r = srv->routes[i];

		for (size_t j = 0; j < r->nsegs; j++)
			free(r->segs[j].lit);
		free(r->pattern);
		free(r);
	}
	free(srv->routes);
	free(srv->conns);
	free(srv->svc);
	free(srv);
}

static void
set_listening(struct sw_http_server *srv, int on)
{
	for (size_t i = 0; i < srv->nbound; i++) {
		struct evconnlistener *l = evhttp_bound_socket_get_listener(srv->bound[i]);

		if (on)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
	}
	srv->paused = !on;
}

int
sw_http_server_listen(struct sw_http_server *srv, const char *addr)
{
	char host[256];
	const char *colon;
	char *end;
	size_t hlen;
	long port;
	struct evhttp_bound_socket *b;

	if (addr == NULL || (colon = strrchr(addr, ':')) == NULL)
		goto bad;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		addr++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		goto bad;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535)
		goto bad;
	if (srv->nbound == SW_HTTP_MAX_LISTENERS) {
		sw_log_error(srv->svc, "too many listeners", "addr=%s", addr);
		return -1;
	}
	b = evhttp_bind_socket_with_handle(srv->http, hlen == 0 ? "0.0.0.0" : host,
	    (ev_uint16_t)port);
	if (b == NULL) {
		sw_log_error(srv->svc, "listen failed", "addr=%s error=%s", addr,
		    sw_log_q((char[128]){0}, 128, strerror(errno)));
		return -1;
	}
	srv->bound[srv->nbound++] = b;
	if (srv->paused)
		evconnlistener_disable(evhttp_bound_socket_get_listener(b));
	sw_log_info(srv->svc, "listening", "addr=%s port=%d", hlen == 0 ? "0.0.0.0" : host,
	    sw_http_server_port(srv));
	return 0;
bad:
	sw_log_error(srv->svc, "bad listen address, want host:port", "addr=%s",
	    sw_log_q((char[128]){0}, 128, addr));
	return -1;
}

int
sw_http_server_port(const struct sw_http_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd;

	if (srv == NULL || srv->nbound == 0)
		return -1;
	fd = evhttp_bound_socket_get_fd(srv->bound[0]);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

void
sw_http_server_set_max_body(struct sw_http_server *srv, size_t max)
{
	srv->max_body = max;
	apply_body_limit(srv);
}

void
sw_http_server_set_max_conns(struct sw_http_server *srv, size_t max)
{
	srv->max_conns = max > 0 ? max : 1;
	if (!srv->paused && srv->nconns >= srv->max_conns)
		set_listening(srv, 0);
	else if (srv->paused && srv->nconns < srv->max_conns)
		set_listening(srv, 1);
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
	if ((r->pattern = xstrdup(pattern)) == NULL || route_parse(r, pattern) == -1)
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

static void
conn_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	char ch;
	ssize_t n;

	(void)what;
	n = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return; /* pipelined data: evhttp reads it after the answer */
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		event_add(c->watch, NULL);
		return;
	}
	/* The client left; drop the connection now instead of at the answer. */
	evhttp_connection_free(c->evcon);
}

static struct http_conn *
conn_get(struct sw_http_server *srv, struct evhttp_request *ev)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct http_conn *c;
	int fd;

	if (evcon == NULL)
		return NULL;
	fd = (int)bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd < 0)
		return NULL;
	if ((size_t)fd < srv->nconnslots && srv->conns[fd] != NULL) {
		if (srv->conns[fd]->evcon == evcon)
			return srv->conns[fd];
		/* A close we never heard of: retire the stale entry. */
		conn_closed(srv->conns[fd]->evcon, srv->conns[fd]);
	}
	if ((size_t)fd >= srv->nconnslots) {
		size_t n = srv->nconnslots ? srv->nconnslots : 64;
		struct http_conn **cs;

		while (n <= (size_t)fd)
			n *= 2;
		if ((cs = realloc(srv->conns, n * sizeof(*cs))) == NULL)
			return NULL;
		memset(cs + srv->nconnslots, 0, (n - srv->nconnslots) * sizeof(*cs));
		srv->conns = cs;
		srv->nconnslots = n;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	/*
	 * evhttp leaves Nagle on: an answer larger than a segment then waits
	 * for the client's delayed ACK (40 ms) on every request.
	 */
	{
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->srv = srv;
	c->evcon = evcon;
	c->fd = fd;
	c->carrier = "tcp";
	carrier_identify(srv, c);
	srv->conns[fd] = c;
	evhttp_connection_set_closecb(evcon, conn_closed, c);
	srv->nconns++;
	sw_metric_set(srv->m_open, NULL, (double)srv->nconns);
	if (!srv->paused && srv->nconns >= srv->max_conns) {
		sw_log_warn(srv->svc, "connection limit reached, pausing accept", "limit=%zu",
		    srv->max_conns);
		set_listening(srv, 0);
	}
	return c;
}

/* A connection on the carrier's private listener: ask the carrier who it is. */
static void
carrier_identify(struct sw_http_server *srv, struct http_conn *c)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (srv->carrier == NULL ||
	    getsockname(c->fd, (struct sockaddr *)&sin, &len) == -1 || sin.sin_family != AF_INET ||
	    ntohs(sin.sin_port) != srv->carrier_port)
		return;
	c->carrier = srv->carrier;
	if (srv->peer_fn == NULL || srv->peer_fn(srv->peer_arg, c->fd, c->peer, sizeof(c->peer)) == -1)
		c->stranger = 1;
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct sw_http_server *srv = c->srv;
	struct sw_http_req *r = c->pending;

	(void)evcon;
	if (r != NULL) {
		if (!srv->closing)
			sw_log_debug(srv->svc, "client gone before the answer", "method=%s path=%s",
			    r->method, sw_log_q((char[256]){0}, 256, r->uri));
		/*
		 * A request libevent detached from the connection is ours to
		 * free; one still queued is freed by libevent right after this.
		 */
		if (evhttp_request_get_connection(r->ev) == NULL)
			evhttp_request_free(r->ev);
		free(r->query);
		r->query = NULL;
		r->ev = NULL;
		r->conn = NULL;
		r->srv = NULL;
		r->route = NULL;
		/* Capture names live in the routes, which a server free takes along. */
		if (srv->closing)
			r->nparams = 0;
		r->gone = 1;
	}
	if (c->watch != NULL)
		event_free(c->watch);
	if ((size_t)c->fd < srv->nconnslots && srv->conns[c->fd] == c)
		srv->conns[c->fd] = NULL;
	srv->nconns--;
	if (!srv->closing) {
		sw_metric_set(srv->m_open, NULL, (double)srv->nconns);
		if (srv->paused && srv->nconns < srv->max_conns) {
			sw_log_info(srv->svc, "below connection limit, accepting again",
			    "open=%zu", srv->nconns);
			set_listening(srv, 1);
		}
	}
	free(c);
}

static void
req_free(struct sw_http_req *r)
{
	free(r->query);
	free(r);
}

static void
on_request(struct evhttp_request *ev, void *arg)
{
	struct sw_http_server *srv = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(ev);
	const char *uri = evhttp_request_get_uri(ev), *raw = NULL;
	const struct route *best = NULL;
	struct sw_http_req *r;
	struct evhttp_connection *evcon;
	struct http_conn *c;
	size_t n;
	int rc, other_method = 0;
	char allow[64] = "";

	if (uri == NULL)
		uri = "";
	if (u != NULL)
		raw = evhttp_uri_get_path(u);
	if (raw == NULL || *raw == '\0')
		raw = "/";
	n = strlen(uri) + 1 + strlen(raw) + 1;
	/* uri copy, decoded path, decoded segments */
	if ((r = calloc(1, sizeof(*r) + n * 2)) == NULL) {
		evhttp_send_error(ev, 503, NULL);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	r->srv = srv;
	r->ev = ev;
	r->method = method_name(evhttp_request_get_command(ev));
	r->uri = r->buf;
	memcpy(r->uri, uri, strlen(uri) + 1);
	r->path = r->uri + strlen(uri) + 1;
	r->conn = conn_get(srv, ev);
	if (r->conn != NULL)
		r->conn->pending = r;
	r->carrier = r->conn != NULL ? r->conn->carrier : "tcp";
	if ((evcon = evhttp_request_get_connection(ev)) != NULL) {
		char *addr = NULL;
		ev_uint16_t port;

		evhttp_connection_get_peer(evcon, &addr, &port);
		if (addr != NULL)
			snprintf(r->peer, sizeof(r->peer), "%s", addr);
	}
	if (r->conn != NULL && srv->carrier != NULL && r->conn->carrier == srv->carrier) {
		snprintf(r->peer, sizeof(r->peer), "%s", r->conn->peer);
		if (r->conn->stranger) {
			sw_http_error(r, 403, "unknown carrier connection");
			return;
		}
	}
	if (pct_decode(r->path, raw, strlen(raw)) == -1 ||
	    (rc = split_path(r, raw, r->path + strlen(r->path) + 1)) == -1) {
		sw_http_error(r, 400, "bad path");
		return;
	}
	if (rc == 0) {
		for (size_t i = 0; i < srv->nroutes; i++) {
			const struct route *rt = srv->routes[i];

			if (!route_match(rt, r))
				continue;
			if (!method_ok(rt, r->method)) {
				size_t al = strlen(allow);

				if (!other_method || strstr(allow, rt->method) == NULL)
					snprintf(allow + al, sizeof(allow) - al, "%s%s",
					    al ? ", " : "", rt->method);
				if (!other_method)
					r->route = rt; /* the 405 is counted under it */
				other_method = 1;
				continue;
			}
			if (best == NULL || route_cmp(rt, best) < 0)
				best = rt;
		}
	}
	if (best == NULL) {
		if (other_method) {
			evhttp_add_header(evhttp_request_get_output_headers(ev), "Allow", allow);
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
	if (evbuffer_get_length(evhttp_request_get_input_buffer(ev)) > srv->max_body) {
		sw_http_error(r, 413, "request body too large");
		return;
	}
	c = r->conn;
	best->h(r, best->arg);
	/*
	 * r may be freed by now.  Still pending means not answered yet: watch
	 * for the client leaving.  The connection is still here because a
	 * close needs the loop to run.
	 */
	if (c != NULL && c->pending != NULL) {
		if (c->watch == NULL)
			c->watch = event_new(srv->base, c->fd, EV_READ, conn_watch_cb, c);
		if (c->watch != NULL)
			event_add(c->watch, NULL);
	}
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

	if (r->ev == NULL)
		return NULL;
	if (r->query == NULL) {
		const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r->ev);
		const char *q = u != NULL ? evhttp_uri_get_query(u) : NULL;

		if ((r->query = query_decode(q != NULL ? q : "")) == NULL)
			return NULL;
	}
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
	if (req->ev == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const unsigned char *
sw_http_req_body(const struct sw_http_req *req, size_t *len)
{
	struct sw_http_req *r = (struct sw_http_req *)(uintptr_t)req;
	struct evbuffer *in;
	unsigned char *p;

	if (len != NULL)
		*len = 0;
	if (r->ev == NULL)
		return NULL;
	in = evhttp_request_get_input_buffer(r->ev);
	/* A trailing NUL (not counted) lets handlers use C string parsers. */
	if (!r->body_ready) {
		r->body_len = evbuffer_get_length(in);
		if (evbuffer_add(in, "", 1) == -1)
			return NULL;
		r->body_ready = 1;
	}
	if ((p = evbuffer_pullup(in, -1)) == NULL)
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
	return req->carrier;
}

int
sw_http_server_carrier(struct sw_http_server *srv, const char *name, sw_http_peer_fn *fn,
    void *arg)
{
	struct evhttp_bound_socket *b;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	/* A carrier going away (fn NULL) leaves the listener: whoever comes is a stranger. */
	srv->peer_fn = fn;
	srv->peer_arg = arg;
	if (srv->carrier != NULL || fn == NULL)
		return srv->carrier != NULL ? srv->carrier_port : -1;
	b = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
	if (b == NULL || getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&sin,
	    &len) == -1) {
		sw_log_error(srv->svc, "carrier listener failed", "carrier=%s", name);
		srv->peer_fn = NULL;
		return -1;
	}
	srv->carrier_port = ntohs(sin.sin_port);
	srv->carrier = name;
	return srv->carrier_port;
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

/* Send what is in the output buffer, count it, log it, free the wrapper. */
static void
finish(struct sw_http_req *r, int status)
{
	struct sw_http_server *srv = r->srv;
	const char *route;
	double secs;
	char code[16];

	if (r->gone) {
		req_free(r);
		return;
	}
	route = r->route != NULL ? r->route->pattern : SW_HTTP_UNMATCHED;
	if (status < 100 || status > 599)
		status = 500;
	if (r->conn != NULL && r->conn->pending == r) {
		r->conn->pending = NULL;
		if (r->conn->watch != NULL)
			event_del(r->conn->watch);
	}
	if (r->streaming)
		evhttp_send_reply_end(r->ev);
	else
		evhttp_send_reply(r->ev, status, NULL, NULL);
	secs = elapsed_s(&r->t0);
	snprintf(code, sizeof(code), "%d", status);
	sw_metric_add(srv->m_requests, (const char *const[]){route, r->method, code}, 1);
	sw_metric_observe(srv->m_duration, (const char *const[]){route}, secs);
	sw_metric_add(srv->m_carrier, (const char *const[]){r->carrier}, 1);
	if (sw_log_get_level() <= SW_LOG_DEBUG)
		sw_log_debug(srv->svc, "request", "method=%s path=%s status=%d ms=%.2f peer=%s",
		    r->method, sw_log_q((char[512]){0}, 512, r->uri), status, secs * 1e3,
		    r->peer);
	req_free(r);
}

static void
set_ctype(struct sw_http_req *r, const char *ctype)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);

	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", ctype);
}

void
sw_http_reply_raw(struct sw_http_req *req, int status, const char *ctype, const void *body,
    size_t len)
{
	if (!req->gone) {
		if (ctype != NULL)
			set_ctype(req, ctype);
		if (len > 0 &&
		    evbuffer_add(evhttp_request_get_output_buffer(req->ev), body, len) == -1)
			status = 500;
	}
	finish(req, status);
}

void
sw_http_reply_buf(struct sw_http_req *req, int status, const char *ctype,
    struct evbuffer *body)
{
	if (!req->gone) {
		if (ctype != NULL)
			set_ctype(req, ctype);
		if (body != NULL &&
		    evbuffer_add_buffer(evhttp_request_get_output_buffer(req->ev), body) == -1)
			status = 500;
	}
	finish(req, status);
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

int
sw_http_stream_start(struct sw_http_req *req, int status, const char *ctype)
{
	if (req->gone || req->streaming)
		return -1;
	if (ctype != NULL)
		set_ctype(req, ctype);
	evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Cache-Control", "no-cache");
	evhttp_send_reply_start(req->ev, status, NULL);
	req->streaming = 1;
	req->status = status;
	return 0;
}

int
sw_http_stream_write(struct sw_http_req *req, const void *data, size_t len)
{
	struct evbuffer *b;
	int ret;

	if (req->gone || !req->streaming || (b = evbuffer_new()) == NULL)
		return -1;
	ret = evbuffer_add(b, data, len);
	if (ret == 0)
		evhttp_send_reply_chunk(req->ev, b);
	evbuffer_free(b);
	return ret;
}

size_t
sw_http_stream_queued(const struct sw_http_req *req)
{
	struct evhttp_connection *evcon;

	if (req->gone || (evcon = evhttp_request_get_connection(req->ev)) == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(evcon)));
}

void
sw_http_stream_end(struct sw_http_req *req)
{
	finish(req, req->streaming ? req->status : 500);
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
