/*
 * frpc: framed JSON RPC over dmsg streams (frpc.h has the wire format).
 *
 * The one idea: a stream carries exactly one request and one answer, so
 * each side is a tiny state machine around one evbuffer: read until one
 * frame is whole (refusing a length past the limit from the header alone,
 * before buffering a byte of it), act, then let the stream end.  Every
 * phase has a timer: the asker's whole call, the server's request read, and
 * the server's linger after it answered (so that the answer is not cut by
 * a RESET while it still sits in the stream's window).
 *
 * A request outlives its stream and its server: the handler may answer
 * late (after calls of its own to other visors), and the answer is then
 * dropped.  That keeps the handler's side free of "is it still there"
 * checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "clock.h"
#include "dict.h"
#include "dmsg_client.h"
#include "dmsg_wire.h"
#include "frpc.h"
#include "json.h"

/* ---------- frames ---------- */

int
frpc_frame_put(struct evbuffer *out, const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	uint8_t hdr[4];
	size_t n;
	int ret = -1;

	if (s == NULL)
		return -1;
	n = strlen(s);
	if (n == 0 || n > FRPC_MAX_FRAME)
		goto fail;
	sw_put_u32(hdr, (uint32_t)n);
	if (evbuffer_add(out, hdr, 4) == -1 || evbuffer_add(out, s, n) == -1)
		goto fail;
	ret = 0;
fail:
	free(s);
	return ret;
}

enum frpc_frame
frpc_frame_get(const uint8_t *buf, size_t len, cJSON **out, size_t *used)
{
	uint32_t n;
	cJSON *v;

	*out = NULL;
	if (len < 4)
		return FRPC_FRAME_MORE;
	n = sw_get_u32(buf);
	if (n == 0 || n > FRPC_MAX_FRAME)
		return FRPC_FRAME_TOO_LONG;
	if (len - 4 < n)
		return FRPC_FRAME_MORE;
	*used = 4 + (size_t)n;
	/* One object, nothing after it but white space, no key twice. */
	v = sw_json_parse(buf + 4, n, NULL);
	if (v == NULL || !cJSON_IsObject(v))
		goto bad;
	*out = v;
	return FRPC_FRAME_OK;
bad:
	cJSON_Delete(v);
	return FRPC_FRAME_BAD;
}

const char *
frpc_status_str(enum frpc_status s)
{
	switch (s) {
	case FRPC_OK: return "ok";
	case FRPC_REMOTE: return "error";
	case FRPC_UNREACHABLE: return "unreachable";
	case FRPC_CLOSED: return "closed";
	case FRPC_TIMEOUT: return "timeout";
	case FRPC_BAD_ANSWER: return "bad answer";
	}
	return "?";
}

/*
 * Take what a stream delivered into in, bounded: never more than one
 * frame's worth.  Returns the frame state once in holds a whole frame or
 * cannot become one.
 */
static enum frpc_frame
frame_feed(struct evbuffer *in, const uint8_t *data, size_t len, cJSON **out)
{
	size_t have = evbuffer_get_length(in), used = 0;
	uint8_t hdr[4];
	uint8_t *p;

	*out = NULL;
	if (have + len > 4 + (size_t)FRPC_MAX_FRAME)
		len = 4 + (size_t)FRPC_MAX_FRAME - have; /* the rest cannot belong to the frame */
	if (len > 0 && evbuffer_add(in, data, len) == -1)
		return FRPC_FRAME_TOO_LONG;
	have = evbuffer_get_length(in);
	if (have < 4)
		return FRPC_FRAME_MORE;
	evbuffer_copyout(in, hdr, 4);
	if (sw_get_u32(hdr) == 0 || sw_get_u32(hdr) > FRPC_MAX_FRAME)
		return FRPC_FRAME_TOO_LONG;
	if (have < 4 + (size_t)sw_get_u32(hdr))
		return FRPC_FRAME_MORE;
	if ((p = evbuffer_pullup(in, (ev_ssize_t)(4 + sw_get_u32(hdr)))) == NULL)
		return FRPC_FRAME_TOO_LONG;
	return frpc_frame_get(p, have, out, &used);
}

/* ---------- the asking side ---------- */

struct frpc_call {
	struct event_base *base;
	struct dmsg_client *c;
	uint8_t pk[SW_PK_LEN];
	uint16_t port;
	int dial_ms;
	struct dmsg_stream *st;
	int open;                  /* st is dialled */
	int asked;                 /* cb and req are set */
	struct event *timer;
	struct evbuffer *in;
	struct evbuffer *req;      /* the request frame, sent once the stream opens */
	frpc_done_cb *cb;
	void *arg;
	char method[64];
	const char *svc;
	struct event *kick;        /* runs a failure found before the loop ran */
	enum frpc_status kick_status;
	char kick_err[128];
};

static void
call_free(struct frpc_call *call)
{
	if (call->st != NULL)
		dmsg_stream_free(call->st);
	if (call->timer != NULL)
		event_free(call->timer);
	if (call->kick != NULL)
		event_free(call->kick);
	if (call->in != NULL)
		evbuffer_free(call->in);
	if (call->req != NULL)
		evbuffer_free(call->req);
	free(call);
}

/*
 * Deliver once and free: the only way a call ends.  A call opened ahead
 * and not asked yet has no one to tell: it just loses its stream (the ask
 * dials again).
 */
static void
call_done(struct frpc_call *call, enum frpc_status status, const cJSON *result,
    const char *err)
{
	frpc_done_cb *cb = call->cb;
	void *arg = call->arg;

	if (call->st != NULL) {
		dmsg_stream_free(call->st);
		call->st = NULL;
	}
	call->open = 0;
	if (!call->asked) {
		event_del(call->timer);
		return;
	}
	if (status != FRPC_OK && status != FRPC_REMOTE) {
		char q[96];

		sw_log_debug(call->svc, "rpc failed", "method=%s status=%s err=%s", call->method,
		    frpc_status_str(status), sw_log_q(q, sizeof(q), err != NULL ? err : ""));
	}
	cb(status, result, err != NULL ? err : frpc_status_str(status), arg);
	call_free(call);
}

static void
call_answer(struct frpc_call *call, cJSON *v)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(v, "result");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(v, "error");

	if (!call->asked) /* an answer to nothing: the stream is not ours to use */
		call_done(call, FRPC_BAD_ANSWER, NULL, NULL);
	else if (res != NULL)
		call_done(call, FRPC_OK, res, NULL);
	else if (cJSON_IsString(err))
		call_done(call, FRPC_REMOTE, NULL, err->valuestring);
	else
		call_done(call, FRPC_BAD_ANSWER, NULL, "answer has neither result nor error");
	cJSON_Delete(v);
}

static void
call_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct frpc_call *call = arg;
	cJSON *v = NULL;

	(void)st;
	switch (frame_feed(call->in, data, len, &v)) {
	case FRPC_FRAME_MORE:
		return;
	case FRPC_FRAME_OK:
		call_answer(call, v);
		return;
	case FRPC_FRAME_TOO_LONG:
		call_done(call, FRPC_BAD_ANSWER, NULL, "answer frame too long");
		return;
	case FRPC_FRAME_BAD:
		call_done(call, FRPC_BAD_ANSWER, NULL, "answer is not a JSON object");
		return;
	}
}

static void
call_eof(struct dmsg_stream *st, void *arg)
{
	(void)st;
	call_done(arg, FRPC_CLOSED, NULL, "stream closed before the answer");
}

static void
call_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	(void)st;
	call_done(arg, FRPC_CLOSED, NULL, dmsg_stream_end_str(why));
}

static const struct dmsg_stream_cbs call_cbs = {
	.read = call_read,
	.eof = call_eof,
	.closed = call_closed,
};

/* The stream is open and the call asked: send the request. 0, or -1. */
static int
call_send(struct frpc_call *call)
{
	size_t n = evbuffer_get_length(call->req);
	unsigned char *p;

	if ((p = evbuffer_pullup(call->req, -1)) == NULL ||
	    dmsg_stream_write(call->st, p, n) == -1)
		return -1;
	evbuffer_drain(call->req, n);
	return 0;
}

static void
call_dialled(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct frpc_call *call = arg;

	if (st == NULL) {
		char why[128];

		call->st = NULL; /* gone with the failed dial */
		if (reject > 0)
			snprintf(why, sizeof(why), "dial rejected (%d)", reject);
		else
			snprintf(why, sizeof(why), "%s", err != NULL ? err : "dial failed");
		call_done(call, FRPC_UNREACHABLE, NULL, why);
		return;
	}
	call->st = st;
	call->open = 1;
	dmsg_stream_set_cbs(st, &call_cbs, call);
	if (call->asked && call_send(call) == -1)
		call_done(call, FRPC_CLOSED, NULL, "cannot send the request");
}

static void
call_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	call_done(arg, FRPC_TIMEOUT, NULL, "timeout");
}

static void
call_kick(evutil_socket_t fd, short what, void *arg)
{
	struct frpc_call *call = arg;

	(void)fd;
	(void)what;
	call_done(call, call->kick_status, NULL, call->kick_err);
}

/* Dial (pk, port) for call; the timer bounds it. 0, or -1. */
static int
call_dial(struct frpc_call *call, int timeout_ms)
{
	call->st = dmsg_client_dial(call->c, call->pk, call->port, timeout_ms, call_dialled, call);
	if (call->st == NULL)
		return -1;
	sw_timer_in(call->timer, timeout_ms);
	return 0;
}

struct frpc_call *
frpc_call_open(struct event_base *base, struct dmsg_client *c, const uint8_t pk[SW_PK_LEN],
    uint16_t port, int timeout_ms, const char *svc)
{
	struct frpc_call *call;

	if (base == NULL || c == NULL || pk == NULL || port == 0 || timeout_ms <= 0)
		return NULL;
	if ((call = calloc(1, sizeof(*call))) == NULL)
		return NULL;
	call->base = base;
	call->c = c;
	memcpy(call->pk, pk, SW_PK_LEN);
	call->port = port;
	call->dial_ms = timeout_ms;
	call->svc = svc;
	if ((call->in = evbuffer_new()) == NULL || (call->req = evbuffer_new()) == NULL ||
	    (call->timer = evtimer_new(base, call_timeout, call)) == NULL ||
	    (call->kick = event_new(base, -1, 0, call_kick, call)) == NULL ||
	    call_dial(call, timeout_ms) == -1) {
		call_free(call);
		return NULL;
	}
	return call;
}

int
frpc_call_ask(struct frpc_call *call, const char *method, const cJSON *params, int timeout_ms,
    frpc_done_cb *cb, void *arg)
{
	cJSON *req = NULL;

	if (call == NULL || call->asked || method == NULL || cb == NULL || timeout_ms <= 0 ||
	    strlen(method) >= sizeof(call->method))
		return -1;
	if ((req = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(req, "method", method) == NULL ||
	    !cJSON_AddItemToObject(req, "params",
	    params != NULL ? cJSON_Duplicate(params, 1) : cJSON_CreateObject()) ||
	    frpc_frame_put(call->req, req) == -1) {
		cJSON_Delete(req);
		return -1;
	}
	cJSON_Delete(req);
	memcpy(call->method, method, strlen(method) + 1);
	call->cb = cb;
	call->arg = arg;
	call->asked = 1;
	sw_timer_in(call->timer, timeout_ms);
	/* a failure now is told from the loop, as every other */
	if (call->open && call_send(call) == -1) {
		call->kick_status = FRPC_CLOSED;
		snprintf(call->kick_err, sizeof(call->kick_err), "cannot send the request");
		event_active(call->kick, EV_TIMEOUT, 0);
	} else if (call->st == NULL && call_dial(call, timeout_ms) == -1) {
		/* the stream opened ahead ended (or never opened) before the ask: dial again */
		call->kick_status = FRPC_UNREACHABLE;
		snprintf(call->kick_err, sizeof(call->kick_err), "cannot dial");
		event_active(call->kick, EV_TIMEOUT, 0);
	}
	return 0;
}

struct frpc_call *
frpc_call(struct event_base *base, struct dmsg_client *c, const uint8_t pk[SW_PK_LEN],
    uint16_t port, const char *method, const cJSON *params, int timeout_ms, frpc_done_cb *cb,
    void *arg, const char *svc)
{
	struct frpc_call *call;

	if (method == NULL || cb == NULL || strlen(method) >= sizeof(call->method))
		return NULL;
	if ((call = frpc_call_open(base, c, pk, port, timeout_ms, svc)) == NULL)
		return NULL;
	if (frpc_call_ask(call, method, params, timeout_ms, cb, arg) == -1) {
		call_free(call);
		return NULL;
	}
	return call;
}

int
frpc_call_ahead_state(const struct frpc_call *call)
{
	return call->open ? 1 : call->st != NULL ? 0 : -1;
}

void
frpc_call_cancel(struct frpc_call *call)
{
	if (call != NULL)
		call_free(call);
}

/* ---------- streams opened ahead, by peer ---------- */

#define POOL_MAX_PER_PEER 4
/*
 * A fill waits this long: the caller has just sent its answer, and what
 * the answer sets off (a route's handshake, hop by hop through the
 * visors just called) is the latency someone waits for; dials built
 * meanwhile (a signature, a KK and three verifications each, over the
 * same two or so cores) would slow it down.  20 ms is past a handshake
 * on a loaded machine, and still well before a next request that would
 * want the streams.
 */
#define POOL_FILL_DELAY_MS 20

static void pool_fill_cb(evutil_socket_t fd, short what, void *arg);

struct pool_peer {
	uint8_t pk[SW_PK_LEN];
	struct frpc_call *calls[POOL_MAX_PER_PEER]; /* not asked; NULL or any state */
	int wanted;                        /* a fill is due */
	TAILQ_ENTRY(pool_peer) lru;
};

struct frpc_pool {
	struct event_base *base;
	struct dmsg_client *c;
	uint16_t port;
	int per_peer, max_peers, keep_ms;
	const char *svc;
	struct sw_dict *peers;             /* pk -> pool_peer */
	TAILQ_HEAD(, pool_peer) lru;       /* least recently used first */
	struct event *fill_timer;
};

static void
peer_free(void *val)
{
	struct pool_peer *pp = val;

	for (int i = 0; i < POOL_MAX_PER_PEER; i++)
		frpc_call_cancel(pp->calls[i]);
	free(pp);
}

struct frpc_pool *
frpc_pool_new(struct event_base *base, struct dmsg_client *c, uint16_t port, int per_peer,
    int max_peers, int keep_ms, const char *svc)
{
	struct frpc_pool *p;

	if (base == NULL || c == NULL || port == 0 || per_peer < 1 ||
	    per_peer > POOL_MAX_PER_PEER || max_peers < 1 || keep_ms <= 0 ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->base = base;
	p->c = c;
	p->port = port;
	p->per_peer = per_peer;
	p->max_peers = max_peers;
	p->keep_ms = keep_ms;
	p->svc = svc;
	TAILQ_INIT(&p->lru);
	if ((p->peers = sw_dict_new(peer_free)) == NULL ||
	    (p->fill_timer = evtimer_new(base, pool_fill_cb, p)) == NULL) {
		sw_dict_free(p->peers);
		free(p);
		return NULL;
	}
	return p;
}

void
frpc_pool_free(struct frpc_pool *p)
{
	if (p == NULL)
		return;
	sw_dict_free(p->peers); /* cancels every call */
	event_free(p->fill_timer);
	free(p);
}

/* pk's entry, made the most recent; with make, created (evicting the oldest). */
static struct pool_peer *
pool_peer(struct frpc_pool *p, const uint8_t pk[SW_PK_LEN], int make)
{
	struct pool_peer *pp = sw_dict_get(p->peers, pk, SW_PK_LEN);

	if (pp != NULL) {
		TAILQ_REMOVE(&p->lru, pp, lru);
		TAILQ_INSERT_TAIL(&p->lru, pp, lru);
		return pp;
	}
	if (!make)
		return NULL;
	if (sw_dict_size(p->peers) >= (size_t)p->max_peers) {
		struct pool_peer *old = TAILQ_FIRST(&p->lru);

		TAILQ_REMOVE(&p->lru, old, lru);
		sw_dict_del(p->peers, old->pk, SW_PK_LEN);
	}
	if ((pp = calloc(1, sizeof(*pp))) == NULL)
		return NULL;
	memcpy(pp->pk, pk, SW_PK_LEN);
	if (sw_dict_add(p->peers, pp->pk, SW_PK_LEN, pp) != 1) {
		free(pp);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&p->lru, pp, lru);
	return pp;
}

struct frpc_call *
frpc_pool_take(struct frpc_pool *p, const uint8_t pk[SW_PK_LEN])
{
	struct pool_peer *pp = pool_peer(p, pk, 0);
	struct frpc_call *call;
	int best = -1;

	for (int i = 0; pp != NULL && i < p->per_peer; i++) {
		if (pp->calls[i] == NULL)
			continue;
		if (frpc_call_ahead_state(pp->calls[i]) < 0) { /* its stream is gone */
			frpc_call_cancel(pp->calls[i]);
			pp->calls[i] = NULL;
		} else if (best < 0 || frpc_call_ahead_state(pp->calls[i]) >
		    frpc_call_ahead_state(pp->calls[best])) {
			best = i;
		}
	}
	if (best >= 0) {
		call = pp->calls[best];
		pp->calls[best] = NULL;
		return call;
	}
	return frpc_call_open(p->base, p->c, pk, p->port, p->keep_ms, p->svc);
}

static void
pool_fill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct frpc_pool *p = arg;
	struct pool_peer *pp;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(pp, &p->lru, lru) {
		if (!pp->wanted)
			continue;
		pp->wanted = 0;
		for (int i = 0; i < p->per_peer; i++) {
			if (pp->calls[i] != NULL && frpc_call_ahead_state(pp->calls[i]) >= 0)
				continue;
			frpc_call_cancel(pp->calls[i]);
			pp->calls[i] = frpc_call_open(p->base, p->c, pp->pk, p->port, p->keep_ms,
			    p->svc);
		}
	}
}

void
frpc_pool_fill(struct frpc_pool *p, const uint8_t pk[SW_PK_LEN])
{
	struct pool_peer *pp = pool_peer(p, pk, 1);

	if (pp == NULL)
		return;
	pp->wanted = 1;
	if (!evtimer_pending(p->fill_timer, NULL))
		sw_timer_in(p->fill_timer, POOL_FILL_DELAY_MS);
}

/* ---------- the answering side ---------- */

struct frpc_server {
	struct dmsg_listener *l;
	frpc_allow_cb *allow;
	frpc_handler *h;
	void *arg;
	const char *svc;
	struct event_base *base;
	struct conn *conns;
	size_t nconns, max_conns;
	unsigned long long accepted;
	TAILQ_HEAD(, conn) silent;  /* accepted, no byte read yet: oldest first */
};

/* One accepted stream: reading its request, waiting for the answer, or lingering. */
struct conn {
	struct frpc_server *s;
	struct conn *prev, *next;
	struct dmsg_stream *st;
	struct evbuffer *in;
	struct event *timer;
	struct frpc_req *req;      /* handed to the handler, not answered yet */
	int answered;
	int is_silent;             /* on s->silent */
	TAILQ_ENTRY(conn) silent_q;
};

struct frpc_req {
	struct conn *conn;         /* NULL once the stream is gone */
	uint8_t pk[SW_PK_LEN];
};

static void
conn_free(struct conn *k)
{
	struct frpc_server *s = k->s;

	if (s != NULL) {
		if (k->prev != NULL)
			k->prev->next = k->next;
		else
			s->conns = k->next;
		if (k->next != NULL)
			k->next->prev = k->prev;
		if (k->is_silent)
			TAILQ_REMOVE(&s->silent, k, silent_q);
		s->nconns--;
	}
	if (k->req != NULL)
		k->req->conn = NULL; /* the handler's answer will be dropped */
	if (k->st != NULL)
		dmsg_stream_free(k->st);
	if (k->timer != NULL)
		event_free(k->timer);
	if (k->in != NULL)
		evbuffer_free(k->in);
	free(k);
}

static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *k = arg;

	(void)fd;
	(void)what;
	if (!k->answered && k->req == NULL && k->s != NULL)
		sw_log_debug(k->s->svc, "rpc request not read in time", NULL);
	conn_free(k);
}

/* Send one frame and half-close; the stream lingers until the asker closes. */
static void
conn_send(struct conn *k, cJSON *v)
{
	struct evbuffer *out = evbuffer_new();
	unsigned char *p;
	size_t n;

	k->answered = 1;
	if (out == NULL || frpc_frame_put(out, v) == -1 ||
	    (p = evbuffer_pullup(out, -1)) == NULL ||
	    (n = evbuffer_get_length(out),
	    dmsg_stream_write(k->st, p, n) == -1) || dmsg_stream_shutdown(k->st) == -1) {
		if (out != NULL)
			evbuffer_free(out);
		conn_free(k);
		return;
	}
	evbuffer_free(out);
	sw_timer_in(k->timer, FRPC_LINGER_MS);
}

static void
conn_error(struct conn *k, const char *msg)
{
	cJSON *v = cJSON_CreateObject();

	if (v == NULL || cJSON_AddStringToObject(v, "error", msg) == NULL) {
		cJSON_Delete(v);
		conn_free(k);
		return;
	}
	conn_send(k, v);
	cJSON_Delete(v);
}

static void
conn_request(struct conn *k, cJSON *v)
{
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(v, "method");
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(v, "params");
	struct frpc_req *req;

	if (!cJSON_IsString(method) || (params != NULL && !cJSON_IsObject(params))) {
		conn_error(k, "request needs a string method and object params");
		return;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL) {
		conn_error(k, "out of memory");
		return;
	}
	req->conn = k;
	memcpy(req->pk, dmsg_stream_remote_pk(k->st), SW_PK_LEN);
	k->req = req;
	event_del(k->timer); /* the handler has its own deadlines; later bytes are dropped */
	k->s->h(req, method->valuestring, params, k->s->arg);
}

static void
conn_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct conn *k = arg;
	cJSON *v = NULL;

	(void)st;
	if (k->answered || k->req != NULL)
		return;
	if (k->is_silent) {
		TAILQ_REMOVE(&k->s->silent, k, silent_q);
		k->is_silent = 0;
	}
	switch (frame_feed(k->in, data, len, &v)) {
	case FRPC_FRAME_MORE:
		return;
	case FRPC_FRAME_OK:
		conn_request(k, v);
		cJSON_Delete(v);
		return;
	case FRPC_FRAME_TOO_LONG:
		conn_error(k, "frame too long");
		return;
	case FRPC_FRAME_BAD:
		conn_error(k, "frame is not a JSON object");
		return;
	}
}

static void
conn_eof(struct dmsg_stream *st, void *arg)
{
	struct conn *k = arg;

	(void)st;
	/*
	 * The asker may half-close after its request, and after our answer:
	 * then the answer may still be queued, and closed (DONE) ends it.
	 * Before a whole request it has given up.
	 */
	if (!k->answered && k->req == NULL)
		conn_free(k);
}

static void
conn_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	(void)st;
	(void)why;
	conn_free(arg);
}

static const struct dmsg_stream_cbs conn_cbs = {
	.read = conn_read,
	.eof = conn_eof,
	.closed = conn_closed,
};

static void
server_accept(struct dmsg_listener *l, struct dmsg_stream *st, void *arg)
{
	struct frpc_server *s = arg;
	struct conn *k;

	(void)l;
	if (s->allow != NULL && !s->allow(dmsg_stream_remote_pk(st), s->arg)) {
		char hex[SW_PK_LEN * 2 + 1];

		sw_hex_encode(hex, dmsg_stream_remote_pk(st), SW_PK_LEN);
		sw_log_info(s->svc, "rpc stream from a key not allowed closed", "pk=%s port=%u", hex,
		    (unsigned)dmsg_stream_local_port(st));
		dmsg_stream_free(st);
		return;
	}
	/*
	 * At the cap, the stream silent the longest makes room: askers open
	 * streams ahead (frpc_pool), and one of those is the cheapest to lose
	 * (its asker dials again).  Only when every stream is busy is the new
	 * one refused.
	 */
	if (s->nconns >= s->max_conns && !TAILQ_EMPTY(&s->silent)) {
		sw_log_debug(s->svc, "rpc stream silent the longest closed to make room", NULL);
		conn_free(TAILQ_FIRST(&s->silent));
	}
	if (s->nconns >= s->max_conns) {
		sw_log_warn(s->svc, "rpc stream refused: too many at once", "max=%zu",
		    s->max_conns);
		dmsg_stream_free(st);
		return;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto fail;
	k->s = s;
	k->st = st;
	if ((k->in = evbuffer_new()) == NULL ||
	    (k->timer = evtimer_new(s->base, conn_timer, k)) == NULL)
		goto fail;
	k->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = k;
	s->conns = k;
	s->nconns++;
	s->accepted++;
	TAILQ_INSERT_TAIL(&s->silent, k, silent_q);
	k->is_silent = 1;
	dmsg_stream_set_cbs(st, &conn_cbs, k);
	sw_timer_in(k->timer, FRPC_READ_MS);
	return;
fail:
	if (k != NULL) {
		k->s = NULL;
		conn_free(k); /* frees st */
	} else {
		dmsg_stream_free(st);
	}
}

struct frpc_server *
frpc_server_new(struct event_base *base, struct dmsg_client *c, uint16_t port,
    frpc_allow_cb *allow, frpc_handler *h, void *arg, const char *svc)
{
	struct frpc_server *s;

	if (base == NULL || c == NULL || h == NULL || port == 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->allow = allow;
	s->h = h;
	s->arg = arg;
	s->svc = svc;
	TAILQ_INIT(&s->silent);
	s->max_conns = FRPC_MAX_CONNS;
	if ((s->l = dmsg_client_listen(c, port, server_accept, s)) == NULL) {
		sw_log_error(svc, "cannot listen for rpc on dmsg", "port=%u", (unsigned)port);
		free(s);
		return NULL;
	}
	return s;
}

void
frpc_server_free(struct frpc_server *s)
{
	if (s == NULL)
		return;
	dmsg_listener_free(s->l);
	while (s->conns != NULL)
		conn_free(s->conns);
	free(s);
}

unsigned long long
frpc_server_accepted(const struct frpc_server *s)
{
	return s->accepted;
}

void
frpc_server_set_max_conns(struct frpc_server *s, size_t max)
{
	s->max_conns = max > 0 ? max : FRPC_MAX_CONNS;
}

size_t
frpc_server_conns(const struct frpc_server *s)
{
	return s->nconns;
}

const uint8_t *
frpc_req_pk(const struct frpc_req *req)
{
	return req->pk;
}

int
frpc_req_gone(const struct frpc_req *req)
{
	return req->conn == NULL;
}

void
frpc_reply(struct frpc_req *req, cJSON *result)
{
	struct conn *k = req->conn;
	cJSON *v;

	if (k == NULL) {
		cJSON_Delete(result);
		free(req);
		return;
	}
	k->req = NULL;
	free(req);
	if ((v = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(result);
		conn_free(k);
		return;
	}
	cJSON_AddItemToObject(v, "result", result != NULL ? result : cJSON_CreateObject());
	conn_send(k, v);
	cJSON_Delete(v);
}

void
frpc_reply_error(struct frpc_req *req, const char *fmt, ...)
{
	struct conn *k = req->conn;
	char msg[512];
	va_list ap;

	if (k == NULL) {
		free(req);
		return;
	}
	k->req = NULL;
	free(req);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conn_error(k, msg);
}
