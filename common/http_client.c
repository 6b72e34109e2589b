/*
 * http (client): one request, tried until it gets a definite answer.
 *
 * The one idea: every try gets a fresh evhttp_connection and our own timer,
 * and every way a try can end (response, connection error, our timeout)
 * funnels into try_over(), which only records the outcome and defers the
 * rest to a step run from the loop.  libevent forbids freeing a connection
 * from inside its own request callback, and the user's callback must not
 * run inside sw_http_request(); one deferred step solves both, and makes
 * "callback exactly once" a property of a single function (deliver()).
 *
 * Retried: no answer (connect error, reset, timeout) and 5xx; a 4xx is an
 * answer.  Delays double from backoff_ms.  Names resolve through an
 * evdns_base created with EVDNS_BASE_DISABLE_WHEN_INACTIVE, so an idle
 * client does not keep the event loop alive; numeric hosts never touch DNS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http.h"
#include "http_dmsg.h"
#include "log.h"

#define SW_HTTP_CLIENT_TIMEOUT_MS 5000
#define SW_HTTP_CLIENT_BACKOFF_MS 200
#define SW_HTTP_CLIENT_MAX_BODY   (16 * 1024 * 1024)
#define SW_HTTP_CLIENT_MAX_HEADERS (64 * 1024)
#define SW_HTTP_CLIENT_MAX_DELAY_MS 60000

struct call {
	struct sw_http_client *c;
	struct call *prev, *next;
	enum evhttp_cmd_type cmd;
	char *method;
	char *url;
	char *host;       /* for connecting: no brackets */
	char *authority;  /* Host header */
	int port;
	char *target;     /* path?query */
	unsigned char *body;
	size_t len;
	int has_body;
	char **hdrs;      /* name, value, …, NULL */
	int timeout_ms, retries, backoff_ms, tries;
	struct evhttp_connection *conn;
	struct event *timer;  /* try timeout, then backoff delay */
	struct event *step;   /* deferred end of a try */
	int in_try;
	int status;
	char *rbody;
	size_t rlen;
	const char *err;
	sw_http_client_cb *cb;
	void *arg;
	int tcp_now;                  /* this try: the dmsg stream did not open */
	int fallback;                 /* the try ended because the dial failed */
	int on_dmsg;                  /* the current (last) try went over dmsg */
	struct sw_http_dmsg_try *dt;  /* its dial and splice-to-be */
};

struct sw_http_client {
	struct event_base *base;
	struct evdns_base *dns;
	char *svc;
	struct call *calls;
	int closing;
	struct sw_http_dmsg *dmsg;    /* dmsg-first carrier, or NULL */
};

static void start_try(struct call *k);
static void try_over(struct call *k, int status, const char *err);

struct sw_http_client *
sw_http_client_new(struct event_base *base, const char *svc)
{
	struct sw_http_client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	if ((c->svc = strdup(svc != NULL ? svc : "http")) == NULL)
		goto fail;
	c->dns = evdns_base_new(base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (c->dns == NULL) {
		/* No usable resolv.conf: numeric hosts still work. */
		sw_log_warn(c->svc, "no DNS configuration, numeric hosts only", NULL);
		c->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (c->dns == NULL)
			goto fail;
	}
	return c;
fail:
	sw_log_error(svc, "http client setup failed", NULL);
	free(c->svc);
	free(c);
	return NULL;
}

static void
call_free(struct call *k)
{
	sw_http_dmsg_try_free(k->dt);
	if (k->conn != NULL)
		evhttp_connection_free(k->conn);
	if (k->timer != NULL)
		event_free(k->timer);
	if (k->step != NULL)
		event_free(k->step);
	for (size_t i = 0; k->hdrs != NULL && k->hdrs[i] != NULL; i++)
		free(k->hdrs[i]);
	free(k->hdrs);
	free(k->method);
	free(k->url);
	free(k->host);
	free(k->authority);
	free(k->target);
	free(k->body);
	free(k->rbody);
	free(k);
}

static void
call_unlink(struct call *k)
{
	if (k->prev != NULL)
		k->prev->next = k->next;
	else if (k->c->calls == k)
		k->c->calls = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

/* The one place the user's callback runs; k is freed afterwards. */
static void
deliver(struct call *k)
{
	struct sw_http_resp resp;

	call_unlink(k);
	if (k->conn != NULL) {
		evhttp_connection_free(k->conn);
		k->conn = NULL;
	}
	memset(&resp, 0, sizeof(resp));
	resp.status = k->status;
	resp.body = k->rbody != NULL ? k->rbody : "";
	resp.len = k->rbody != NULL ? k->rlen : 0;
	if (resp.len > 0)
		resp.json = cJSON_ParseWithLength(resp.body, resp.len);
	sw_http_dmsg_note(k->c->dmsg, k->on_dmsg);
	k->cb(&resp, k->arg);
	cJSON_Delete(resp.json);
	call_free(k);
}

void
sw_http_client_free(struct sw_http_client *c)
{
	struct call *k;

	if (c == NULL)
		return;
	/* Calls in flight are answered now with status 0; new ones are refused. */
	c->closing = 1;
	while ((k = c->calls) != NULL) {
		k->status = 0;
		free(k->rbody);
		k->rbody = NULL;
		k->err = "client closed";
		deliver(k);
	}
	if (c->dmsg != NULL)
		sw_http_dmsg_detach(c->dmsg, c);
	if (c->dns != NULL)
		evdns_base_free(c->dns, 1);
	free(c->svc);
	free(c);
}

int
sw_http_client_set_dmsg(struct sw_http_client *c, struct sw_http_dmsg *d)
{
	if (c->dmsg != NULL) {
		sw_http_dmsg_detach(c->dmsg, c);
		sw_http_client_dmsg_gone(c);
	}
	if (d != NULL && sw_http_dmsg_attach(d, c) == -1)
		return -1;
	c->dmsg = d;
	return 0;
}

/* The carrier goes: dials are cancelled; a try on a splice ends with its connection. */
void
sw_http_client_dmsg_gone(struct sw_http_client *c)
{
	for (struct call *k = c->calls; k != NULL; k = k->next) {
		sw_http_dmsg_try_free(k->dt);
		k->dt = NULL;
	}
	c->dmsg = NULL;
}

/* The dmsg dial of k's try is over: spliced (nothing to do) or failed (TCP now). */
static void
dmsg_done(void *arg, int ok)
{
	struct call *k = arg;

	if (ok || !k->in_try)
		return;
	k->fallback = 1;
	try_over(k, 0, "no dmsg stream");
}

static void
try_over(struct call *k, int status, const char *err)
{
	if (!k->in_try)
		return;
	k->in_try = 0;
	k->status = status;
	if (err != NULL)
		k->err = err;
	evtimer_del(k->timer);
	event_active(k->step, EV_TIMEOUT, 1);
}

static void
on_response(struct evhttp_request *req, void *arg)
{
	struct call *k = arg;
	struct evbuffer *in;
	int status;

	if (!k->in_try)
		return;
	if (req == NULL || (status = evhttp_request_get_response_code(req)) == 0) {
		try_over(k, 0, k->err != NULL ? k->err : "connection failed");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	free(k->rbody);
	k->rlen = evbuffer_get_length(in);
	if ((k->rbody = malloc(k->rlen + 1)) == NULL) {
		k->rlen = 0;
		try_over(k, 0, "out of memory");
		return;
	}
	evbuffer_remove(in, k->rbody, k->rlen);
	k->rbody[k->rlen] = '\0';
	try_over(k, status, NULL);
}

static void
on_error(enum evhttp_request_error e, void *arg)
{
	struct call *k = arg;

	switch (e) {
	case EVREQ_HTTP_TIMEOUT:
		k->err = "timeout";
		break;
	case EVREQ_HTTP_EOF:
		k->err = "connection closed";
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		k->err = "bad response";
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		k->err = "response too large";
		break;
	case EVREQ_HTTP_BUFFER_ERROR:
	case EVREQ_HTTP_REQUEST_CANCEL:
	default:
		k->err = "connection failed";
		break;
	}
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct call *k = arg;

	(void)fd;
	(void)what;
	if (k->in_try)
		try_over(k, 0, "timeout");
	else
		start_try(k); /* the backoff delay is over */
}

static int
retriable(const struct call *k)
{
	return k->status == 0 || k->status >= 500;
}

/* From the loop, outside libevent's http callbacks: drop the try's connection, then go on. */
static void
on_step(evutil_socket_t fd, short what, void *arg)
{
	struct call *k = arg;
	struct timeval tv;
	long delay;

	(void)fd;
	(void)what;
	if (k->conn != NULL) {
		evhttp_connection_free(k->conn);
		k->conn = NULL;
	}
	sw_http_dmsg_try_free(k->dt);
	k->dt = NULL;
	if (k->fallback) {
		/* Not a retry: the same try again, over TCP (services.md, dmsgfirst). */
		k->fallback = 0;
		k->tcp_now = 1;
		k->tries--;
		start_try(k);
		return;
	}
	if (!retriable(k) || k->tries > k->retries) {
		if (k->status == 0 || k->status >= 500)
			sw_log_debug(k->c->svc, "http request failed", "method=%s url=%s status=%d "
			    "error=%s tries=%d", k->method, sw_log_q((char[256]){0}, 256, k->url),
			    k->status, sw_log_q((char[64]){0}, 64, k->err ? k->err : ""), k->tries);
		deliver(k);
		return;
	}
	delay = k->backoff_ms;
	for (int i = 1; i < k->tries && delay < SW_HTTP_CLIENT_MAX_DELAY_MS; i++)
		delay *= 2;
	if (delay > SW_HTTP_CLIENT_MAX_DELAY_MS)
		delay = SW_HTTP_CLIENT_MAX_DELAY_MS;
	sw_log_debug(k->c->svc, "http request retry", "method=%s url=%s status=%d error=%s "
	    "try=%d delay_ms=%ld", k->method, sw_log_q((char[256]){0}, 256, k->url), k->status,
	    sw_log_q((char[64]){0}, 64, k->err ? k->err : ""), k->tries, delay);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(k->timer, &tv);
}

static int
has_header(const struct call *k, const char *name)
{
	for (size_t i = 0; k->hdrs != NULL && k->hdrs[i] != NULL; i += 2)
		if (strcasecmp(k->hdrs[i], name) == 0)
			return 1;
	return 0;
}

static void
start_try(struct call *k)
{
	struct evhttp_request *req = NULL;
	struct evkeyvalq *h;
	struct timeval tv;
	char clen[32], laddr[32];
	const char *host = k->host;
	int port = k->port;

	k->tries++;
	k->in_try = 1;
	k->err = NULL;
	k->status = 0;
	free(k->rbody);
	k->rbody = NULL;
	k->rlen = 0;
	tv.tv_sec = k->timeout_ms / 1000;
	tv.tv_usec = (k->timeout_ms % 1000) * 1000;
	evtimer_add(k->timer, &tv);
	k->on_dmsg = 0;
	if (k->c->dmsg != NULL && !k->tcp_now &&
	    (k->dt = sw_http_dmsg_try_start(k->c->dmsg, k->host, k->port, k->target, dmsg_done, k, laddr,
	    sizeof(laddr), &port)) != NULL) {
		host = "127.0.0.1";
		k->on_dmsg = 1;
	}
	k->tcp_now = 0;
	k->conn = evhttp_connection_base_new(k->c->base, k->c->dns, host, (ev_uint16_t)port);
	if (k->conn == NULL)
		goto fail;
	if (k->on_dmsg)
		evhttp_connection_set_local_address(k->conn, laddr);
	/* libevent's own timeout is a backstop; ours bounds the whole try. */
	evhttp_connection_set_timeout_tv(k->conn, &tv);
	evhttp_connection_set_max_body_size(k->conn, SW_HTTP_CLIENT_MAX_BODY);
	evhttp_connection_set_max_headers_size(k->conn, SW_HTTP_CLIENT_MAX_HEADERS);
	if ((req = evhttp_request_new(on_response, k)) == NULL)
		goto fail;
	evhttp_request_set_error_cb(req, on_error);
	h = evhttp_request_get_output_headers(req);
	if (!has_header(k, "Host"))
		evhttp_add_header(h, "Host", k->authority);
	if (!has_header(k, "Connection"))
		evhttp_add_header(h, "Connection", "close");
	for (size_t i = 0; k->hdrs != NULL && k->hdrs[i] != NULL; i += 2)
		evhttp_add_header(h, k->hdrs[i], k->hdrs[i + 1]);
	if (k->has_body) {
		if (!has_header(k, "Content-Type"))
			evhttp_add_header(h, "Content-Type", "application/json");
		if (!has_header(k, "Content-Length")) {
			snprintf(clen, sizeof(clen), "%zu", k->len);
			evhttp_add_header(h, "Content-Length", clen);
		}
		if (k->len > 0 &&
		    evbuffer_add(evhttp_request_get_output_buffer(req), k->body, k->len) == -1) {
			evhttp_request_free(req);
			goto fail;
		}
	}
	/*
	 * A refused connect may call on_response synchronously (try_over
	 * defers).  On -1 libevent 2.1 may or may not have freed req, so it is
	 * left alone: a rare leak beats a double free.
	 */
	if (evhttp_make_request(k->conn, req, k->cmd, k->target) == -1)
		goto fail;
	/*
	 * A new connection is bound and connected inside evhttp_make_request:
	 * its socket has its port now, before the loop can accept it, and the
	 * carrier takes only that (address, port) as this try's.  (evhttp's
	 * own reconnects stay off: one would come from another port.)  A
	 * connect refused at once has ended the try already.
	 */
	if (k->on_dmsg && k->in_try && sw_http_dmsg_try_sock(k->dt,
	    bufferevent_getfd(evhttp_connection_get_bufferevent(k->conn))) == -1)
		goto fail;
	return;
fail:
	try_over(k, 0, "connection setup failed");
}

static int
method_cmd(const char *m, enum evhttp_cmd_type *out)
{
	static const struct {
		const char *name;
		enum evhttp_cmd_type cmd;
	} tab[] = {
		{"GET", EVHTTP_REQ_GET}, {"POST", EVHTTP_REQ_POST}, {"PUT", EVHTTP_REQ_PUT},
		{"DELETE", EVHTTP_REQ_DELETE}, {"HEAD", EVHTTP_REQ_HEAD},
		{"OPTIONS", EVHTTP_REQ_OPTIONS}, {"PATCH", EVHTTP_REQ_PATCH},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(m, tab[i].name) == 0) {
			*out = tab[i].cmd;
			return 0;
		}
	return -1;
}

/* Fill host, authority, port and target of k from url; -1 if it is not http://host… */
static int
parse_url(struct call *k, const char *url)
{
	struct evhttp_uri *u;
	const char *scheme, *host, *path, *query;
	size_t hl, tl;
	int ret = -1;

	if ((u = evhttp_uri_parse(url)) == NULL)
		return -1;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	if (scheme == NULL || strcasecmp(scheme, "http") != 0 || host == NULL || *host == '\0')
		goto fail;
	k->port = evhttp_uri_get_port(u);
	if (k->port == -1)
		k->port = 80;
	if (k->port <= 0 || k->port > 65535)
		goto fail;
	hl = strlen(host);
	if ((k->authority = malloc(hl + 16)) == NULL)
		goto fail;
	/* evhttp keeps an IPv6 literal's brackets; the socket layer wants none. */
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		snprintf(k->authority, hl + 16, "%s:%d", host, k->port);
		k->host = strndup(host + 1, hl - 2);
	} else if (strchr(host, ':') != NULL) {
		snprintf(k->authority, hl + 16, "[%s]:%d", host, k->port);
		k->host = strdup(host);
	} else {
		snprintf(k->authority, hl + 16, "%s:%d", host, k->port);
		k->host = strdup(host);
	}
	if (k->host == NULL)
		goto fail;
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	if (path == NULL || *path == '\0')
		path = "/";
	tl = strlen(path) + (query != NULL ? strlen(query) + 1 : 0) + 1;
	if ((k->target = malloc(tl)) == NULL)
		goto fail;
	snprintf(k->target, tl, "%s%s%s", path, query != NULL ? "?" : "", query ? query : "");
	ret = 0;
fail:
	evhttp_uri_free(u);
	return ret;
}

int
sw_http_request(struct sw_http_client *c, const char *method, const char *url,
    const void *body, size_t len, const struct sw_http_opts *opts, sw_http_client_cb *cb,
    void *arg)
{
	struct call *k;
	size_t nh = 0;

	if (c == NULL || c->closing || method == NULL || url == NULL || cb == NULL)
		return -1;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	k->c = c;
	k->cb = cb;
	k->arg = arg;
	k->timeout_ms = SW_HTTP_CLIENT_TIMEOUT_MS;
	k->backoff_ms = SW_HTTP_CLIENT_BACKOFF_MS;
	if (opts != NULL) {
		if (opts->timeout_ms > 0)
			k->timeout_ms = opts->timeout_ms;
		if (opts->retries > 0)
			k->retries = opts->retries;
		if (opts->backoff_ms > 0)
			k->backoff_ms = opts->backoff_ms;
		for (; opts->headers != NULL && opts->headers[nh] != NULL; nh++)
			;
	}
	if (method_cmd(method, &k->cmd) == -1 || parse_url(k, url) == -1 || nh % 2 != 0) {
		sw_log_warn(c->svc, "bad http request", "method=%s url=%s",
		    sw_log_q((char[32]){0}, 32, method), sw_log_q((char[256]){0}, 256, url));
		goto fail;
	}
	if ((k->method = strdup(method)) == NULL || (k->url = strdup(url)) == NULL)
		goto fail;
	if (nh > 0) {
		if ((k->hdrs = calloc(nh + 1, sizeof(char *))) == NULL)
			goto fail;
		for (size_t i = 0; i < nh; i++)
			if ((k->hdrs[i] = strdup(opts->headers[i])) == NULL)
				goto fail;
	}
	if (body != NULL) {
		k->has_body = 1;
		k->len = len;
		if ((k->body = malloc(len > 0 ? len : 1)) == NULL)
			goto fail;
		memcpy(k->body, body, len);
	}
	if ((k->timer = evtimer_new(c->base, on_timeout, k)) == NULL ||
	    (k->step = evtimer_new(c->base, on_step, k)) == NULL)
		goto fail;
	k->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = k;
	c->calls = k;
	start_try(k);
	return 0;
fail:
	call_free(k);
	return -1;
}
