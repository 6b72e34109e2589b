/*
 * http: an HTTP/1.1 server and client on libevent.
 *
 * Server: routes by method and path pattern, a body limit (64 KiB default,
 * 413 past it, from the Content-Length before the body is read), JSON
 * replies and {"error":"…"} errors from every layer (framing, limits,
 * routing, handlers), per-route metrics
 * (requests by route and status, latency histogram, open connections) and an
 * access log at debug level.  Handlers may answer later (after a store
 * callback): a request stays valid until it is answered; if the client goes
 * away first, the answer is dropped safely (sw_http_req_gone() tells).
 *
 * Patterns are literal segments and {name} captures, a capture may follow a
 * literal prefix inside one segment ("/transports/id:{t_id}") and a trailing
 * "/" in the pattern is matched exactly.  A path that matches a pattern with
 * another method gets 405, no pattern 404.  Query strings are not part of the
 * match.  When several patterns match, the most specific wins whatever the
 * order they were added in: per segment, literal beats a capture with a
 * literal prefix (longer prefix first) beats a bare capture.  A capture
 * matches one non-empty, percent-decoded segment ("%2F" stays inside it).
 * GET routes also answer HEAD.  A method no route takes (TRACE, PROPFIND)
 * gets 405 with an Allow header whatever the path.  Metrics label requests
 * with the pattern (404s with route="unmatched"; a 405 with the pattern whose
 * path matched).
 *
 * Deadlines per phase: the whole header within header_ms of accept (or of
 * its first byte on a kept-alive connection), the body within body_ms of the
 * header; 408 and a close past either.  Every accepted connection counts
 * toward the connection cap; one IP address gets max_per_peer at once, the
 * next ones are answered 503.  The client leaving while an answer is pending
 * is noticed (EOF on the socket) and the connection dropped at once; a
 * client that half-closes after its request is treated as gone.
 *
 * Client: one async request with a timeout and retries with backoff
 * (connection failures and 5xx are retried; 4xx are not), JSON in and out.
 * Host names are resolved with evdns, never blocking.
 */
#ifndef SW_HTTP_H
#define SW_HTTP_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct event_base;
struct evbuffer;
struct sw_metrics;
struct sw_http_server;
struct sw_http_req;

#define SW_HTTP_MAX_BODY (64 * 1024)

typedef void sw_http_handler(struct sw_http_req *req, void *arg);

/* metrics may be NULL.  svc names the service in logs. */
struct sw_http_server *sw_http_server_new(struct event_base *base, const char *svc,
    struct sw_metrics *metrics);
void sw_http_server_free(struct sw_http_server *srv);
/* "host:port" (port 0: any free port; see sw_http_server_port). -1 logged on failure. */
int sw_http_server_listen(struct sw_http_server *srv, const char *addr);
int sw_http_server_port(const struct sw_http_server *srv);
void sw_http_server_set_max_body(struct sw_http_server *srv, size_t max);
/*
 * Connections served at once (default 4096); past it accept pauses until one
 * closes.  Every accepted connection counts, from accept.
 */
void sw_http_server_set_max_conns(struct sw_http_server *srv, size_t max);

#define SW_HTTP_HEADER_MS    10000
#define SW_HTTP_BODY_MS      30000
#define SW_HTTP_MAX_PER_PEER 256
/* Zero members keep the current value.  Before the first listen. */
struct sw_http_limits {
	long long header_ms;
	long long body_ms;
	size_t max_per_peer;
};
void sw_http_server_set_limits(struct sw_http_server *srv, const struct sw_http_limits *lim);
/*
 * Serve a connection that arrived another way (a dmsg stream behind a
 * bufferevent, a socketpair in a test): the server owns bev from now, also
 * on failure (-1).  peer names the client in logs and sw_http_req_peer.
 */
struct bufferevent;
int sw_http_server_adopt(struct sw_http_server *srv, struct bufferevent *bev, const char *peer);
/* The same, counted in /metrics under carrier (NULL: "tcp"; http_dmsg.c: "dmsg"). */
int sw_http_server_adopt_as(struct sw_http_server *srv, struct bufferevent *bev, const char *peer,
    const char *carrier);
/* method: "GET", "POST", "DELETE", "PUT", or "*" for any. */
int sw_http_route(struct sw_http_server *srv, const char *method, const char *pattern,
    sw_http_handler *h, void *arg);

/* A route table, registered in one call (every handler gets the same arg). */
struct sw_http_route_def {
	const char *method;
	const char *pattern;
	sw_http_handler *h;
};
int sw_http_routes(struct sw_http_server *srv, const struct sw_http_route_def *defs, size_t n,
    void *arg);

/*
 * Request accessors.  Strings stay valid until the answer.  Once the
 * request is gone, method/uri/path/param/peer still answer (param not after
 * sw_http_server_free); header, query and body return NULL.
 */
const char *sw_http_req_method(const struct sw_http_req *req);
/* The request target exactly as sent: path and query ("/transports/?x=1"). */
const char *sw_http_req_uri(const struct sw_http_req *req);
const char *sw_http_req_path(const struct sw_http_req *req);  /* decoded path, no query */
const char *sw_http_req_param(const struct sw_http_req *req, const char *name); /* {name} */
const char *sw_http_req_query(const struct sw_http_req *req, const char *name); /* ?name= */
const char *sw_http_req_header(const struct sw_http_req *req, const char *name);
/* Followed by a NUL not counted in *len, so C string parsers may read it. */
const unsigned char *sw_http_req_body(const struct sw_http_req *req, size_t *len);
/* The peer's IP address as text; over dmsg, the peer's PK in hex. */
const char *sw_http_req_peer(const struct sw_http_req *req);
/* "tcp", or the carrier that adopted the connection ("dmsg"). */
const char *sw_http_req_carrier(const struct sw_http_req *req);
int sw_http_req_gone(const struct sw_http_req *req);
/* For logs: the server's service name (NULL once gone) and the matched pattern (or NULL). */
const char *sw_http_req_svc(const struct sw_http_req *req);
const char *sw_http_req_route(const struct sw_http_req *req);
void sw_http_req_set_data(struct sw_http_req *req, void *data);
void *sw_http_req_get_data(const struct sw_http_req *req);

/*
 * Answers.  Each request must be answered exactly once; the req is freed by
 * the answer (also when it is gone: then nothing is sent).  body NULL for
 * reply_json sends an empty body.  ctype NULL sends no Content-Type.
 * reply_buf moves the contents of body; the caller still frees the evbuffer.
 */
void sw_http_reply_json(struct sw_http_req *req, int status, const cJSON *body);
void sw_http_reply_raw(struct sw_http_req *req, int status, const char *ctype,
    const void *body, size_t len);
void sw_http_reply_buf(struct sw_http_req *req, int status, const char *ctype,
    struct evbuffer *body);
/*
 * A streamed answer (Server-Sent Events): start sends status and headers
 * (no length: the stream ends with the connection), each write appends;
 * end finishes and frees req (call it also once sw_http_req_gone says the
 * client left).  -1 when gone or not streaming.  queued: bytes written and
 * not yet sent (a slow reader's backlog).
 */
int sw_http_stream_start(struct sw_http_req *req, int status, const char *ctype);
int sw_http_stream_write(struct sw_http_req *req, const void *data, size_t len);
size_t sw_http_stream_queued(const struct sw_http_req *req);
void sw_http_stream_end(struct sw_http_req *req);
/*
 * {"error":msg}; extra (may be NULL) adds its members to the object and is
 * consumed (freed); an "error" member in extra is ignored.
 */
void sw_http_error(struct sw_http_req *req, int status, const char *msg);
void sw_http_error_extra(struct sw_http_req *req, int status, const char *msg, cJSON *extra);

/*
 * Client.  sw_http_client_free answers every request still in flight with
 * status 0 before it returns (from inside the free, not from the loop); a
 * callback run then cannot start new requests on that client.
 */
struct sw_http_client;
struct sw_http_client *sw_http_client_new(struct event_base *base, const char *svc);
void sw_http_client_free(struct sw_http_client *c);

struct sw_http_resp {
	int status;       /* 0 when no answer (connection, timeout) */
	const char *body; /* NUL-terminated (body may still hold NULs) */
	size_t len;
	cJSON *json;      /* parsed body, or NULL; owned by the client */
};
typedef void sw_http_client_cb(const struct sw_http_resp *resp, void *arg);

struct sw_http_opts {
	int timeout_ms; /* per try; default 5000 */
	int retries;    /* extra tries after the first; default 0 */
	int backoff_ms; /* first delay, doubling; default 200 */
	const char *const *headers; /* NULL-terminated name, value, name, value, … */
};

/*
 * dmsg first (common/http_dmsg.h): requests to a URL mapped in d go to the
 * service's (pk, 80) first and to TCP when no stream opens in 2 s.  d NULL
 * detaches.  -1 when d has no room for another client.
 */
struct sw_http_dmsg;
int sw_http_client_set_dmsg(struct sw_http_client *c, struct sw_http_dmsg *d);

/*
 * url: "http://host[:port]/path?query".  body may be NULL; with a body,
 * Content-Length is sent and Content-Type defaults to application/json.
 * cb runs exactly once, from the event loop.  Returns -1 (no callback) on a
 * bad URL or method, or when out of memory.
 */
int sw_http_request(struct sw_http_client *c, const char *method, const char *url,
    const void *body, size_t len, const struct sw_http_opts *opts, sw_http_client_cb *cb,
    void *arg);

#endif
