/*
 * http_dmsg: HTTP's dmsg carrier (see http_dmsg.h for the shape).
 *
 * Three parts: the server (streams on port 80 handed to the HTTP server),
 * the client carrier (a private listener that each dmsg try's evhttp
 * connection reaches, spliced to the try's dial), and the splice between
 * a loopback socket's bufferevent and a stream's.
 *
 * A try's connection is recognised by the address AND port of the try's
 * own client socket, read with getsockname once evhttp has bound and
 * connected it (inside evhttp_make_request, before the loop can accept
 * it).  That cannot be forged: the kernel keeps a TCP 4-tuple unique, so
 * while our socket is open no other socket reaches the listener from the
 * same (address, port).  A connection that matches no try is closed
 * unread and counted.  The 127.x.y.z each try binds names nothing (any
 * local process may bind it); it only gives every try its own ports.
 *
 * A splice ends the way TCP would: EOF on one side is passed on once what
 * came before it has been written (a socket gets shutdown(SHUT_WR), the
 * stream its CLOSE), an error on either side drops both.  Reading one side
 * stops while the other holds SW_HTTP_DMSG_HIGH unsent bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "clock.h"
#include "cxo_dmsg.h"
#include "dmsg_client.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"

#define MAX_MAPS    16
#define MAX_CLIENTS 16
#define TRY_IDS     (1u << 24)

/* ---- splice ---- */

struct splice {
	struct splice *prev, *next;
	struct splice **head;           /* the carrier's list, so its free takes them along */
	struct bufferevent *sock, *dm;  /* NULL once closed */
	int sock_eof, dm_eof;           /* that side sent EOF */
	int sock_shut;                  /* our write side of sock is shut */
};

static void splice_check(struct splice *sp);

static void
splice_free(struct splice *sp)
{
	if (sp->prev != NULL)
		sp->prev->next = sp->next;
	else if (sp->head != NULL)
		*sp->head = sp->next;
	if (sp->next != NULL)
		sp->next->prev = sp->prev;
	if (sp->sock != NULL)
		bufferevent_free(sp->sock);
	if (sp->dm != NULL)
		bufferevent_free(sp->dm);
	free(sp);
}

/* Move what src has read into dst; stop src while dst is full. */
static void
splice_move(struct bufferevent *src, struct bufferevent *dst)
{
	struct evbuffer *out = bufferevent_get_output(dst);

	evbuffer_add_buffer(out, bufferevent_get_input(src));
	if (evbuffer_get_length(out) >= SW_HTTP_DMSG_HIGH)
		bufferevent_disable(src, EV_READ);
}

static void
splice_read(struct bufferevent *bev, void *arg)
{
	struct splice *sp = arg;

	if (bev == sp->sock && sp->dm != NULL)
		splice_move(sp->sock, sp->dm);
	else if (bev == sp->dm && sp->sock != NULL)
		splice_move(sp->dm, sp->sock);
}

/* dst's output fell to the low-water mark: let its source read again. */
static void
splice_write(struct bufferevent *bev, void *arg)
{
	struct splice *sp = arg;

	if (bev == sp->dm && sp->sock != NULL && !sp->sock_eof)
		bufferevent_enable(sp->sock, EV_READ);
	else if (bev == sp->sock && sp->dm != NULL && !sp->dm_eof)
		bufferevent_enable(sp->dm, EV_READ);
	splice_check(sp);
}

/* Pass each EOF on once its side's bytes are out; free when nothing is left to move. */
static void
splice_check(struct splice *sp)
{
	if (sp->sock_eof && sp->dm != NULL &&
	    evbuffer_get_length(bufferevent_get_output(sp->dm)) == 0) {
		/* The socket side is done: the stream's CLOSE follows what it wrote. */
		bufferevent_free(sp->dm);
		sp->dm = NULL;
	}
	if (sp->dm_eof && sp->sock != NULL && !sp->sock_shut &&
	    evbuffer_get_length(bufferevent_get_output(sp->sock)) == 0) {
		shutdown(bufferevent_getfd(sp->sock), SHUT_WR);
		sp->sock_shut = 1;
	}
	if (sp->dm == NULL || (sp->sock_shut && sp->sock_eof))
		splice_free(sp);
}

static void
splice_event(struct bufferevent *bev, short what, void *arg)
{
	struct splice *sp = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		splice_read(bev, sp);
		/* From now on the other side's write callback means "all written". */
		if (bev == sp->sock) {
			sp->sock_eof = 1;
			if (sp->dm != NULL)
				bufferevent_setwatermark(sp->dm, EV_WRITE, 0, 0);
		} else {
			sp->dm_eof = 1;
			if (sp->sock != NULL)
				bufferevent_setwatermark(sp->sock, EV_WRITE, 0, 0);
		}
		bufferevent_disable(bev, EV_READ);
		splice_check(sp);
		return;
	}
	splice_free(sp); /* error, timeout: both sides go */
}

static struct splice *
splice_new(struct bufferevent *sock, struct bufferevent *dm, struct splice **head)
{
	struct splice *sp = calloc(1, sizeof(*sp));

	if (sp == NULL)
		return NULL;
	sp->head = head;
	sp->next = *head;
	if (*head != NULL)
		(*head)->prev = sp;
	*head = sp;
	sp->sock = sock;
	sp->dm = dm;
	bufferevent_setcb(sock, splice_read, splice_write, splice_event, sp);
	bufferevent_setcb(dm, splice_read, splice_write, splice_event, sp);
	bufferevent_setwatermark(sock, EV_WRITE, SW_HTTP_DMSG_HIGH / 2, 0);
	bufferevent_setwatermark(dm, EV_WRITE, SW_HTTP_DMSG_HIGH / 2, 0);
	bufferevent_enable(sock, EV_READ | EV_WRITE);
	bufferevent_enable(dm, EV_READ | EV_WRITE);
	return sp;
}

/* ---- server ---- */

struct sw_http_dmsg_server {
	struct event_base *base;
	struct sw_http_server *srv;
	const char *svc;
	struct cxo_dmsg *cd;
	struct dmsg_listener *l;
	struct dmsg_client *own;  /* serve_as: ours to free */
};

/* Each stream becomes one more connection of the HTTP server, its peer the stream's PK. */
static void
server_accept(struct dmsg_listener *l, struct dmsg_stream *st, void *arg)
{
	struct sw_http_dmsg_server *s = arg;
	struct bufferevent *dm, *srv_bev;
	char pk[SW_PK_HEX];

	(void)l;
	sw_hex_encode(pk, dmsg_stream_remote_pk(st), SW_PK_LEN);
	if (cxo_dmsg_links(s->cd) >= SW_HTTP_DMSG_MAX_CONNS) {
		sw_log_warn(s->svc, "http over dmsg: too many streams, refusing", "peer=%s", pk);
		dmsg_stream_free(st);
		return;
	}
	if ((dm = cxo_dmsg_wrap(s->cd, st)) == NULL) {
		dmsg_stream_free(st);
		return;
	}
	/*
	 * The adapter runs its callbacks inside the write that caused them; the
	 * server expects them from the loop, as a socket gives them: one more
	 * pass-through layer, with deferred callbacks.
	 */
	if ((srv_bev = bufferevent_filter_new(dm, NULL, NULL,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, NULL, NULL)) == NULL) {
		bufferevent_free(dm);
		return;
	}
	if (sw_http_server_adopt_as(s->srv, srv_bev, pk, "dmsg") == -1)
		sw_log_warn(s->svc, "http over dmsg: server refused the stream", "peer=%s", pk);
}

struct sw_http_dmsg_server *
sw_http_dmsg_serve(struct event_base *base, struct sw_http_server *srv,
    struct dmsg_client *dc, uint16_t port, const char *svc)
{
	struct sw_http_dmsg_server *s = calloc(1, sizeof(*s));

	if (s == NULL || srv == NULL || dc == NULL)
		goto fail;
	s->svc = svc != NULL ? svc : "http";
	s->base = base;
	s->srv = srv;
	if ((s->cd = cxo_dmsg_new(s->base, dc, s->svc)) == NULL ||
	    (s->l = dmsg_client_listen(dc, port != 0 ? port : SW_HTTP_DMSG_PORT, server_accept,
	    s)) == NULL)
		goto fail;
	sw_log_info(s->svc, "http api on dmsg", "port=%u", port != 0 ? port : SW_HTTP_DMSG_PORT);
	return s;
fail:
	sw_log_error(svc, "http over dmsg: setup failed", NULL);
	sw_http_dmsg_server_free(s);
	return NULL;
}

void
sw_http_dmsg_server_free(struct sw_http_dmsg_server *s)
{
	if (s == NULL)
		return;
	dmsg_listener_free(s->l);
	/* The server's connections on our streams see an error and go. */
	cxo_dmsg_free(s->cd);
	dmsg_client_free(s->own);
	free(s);
}

size_t
sw_http_dmsg_server_conns(const struct sw_http_dmsg_server *s)
{
	return s != NULL ? cxo_dmsg_links(s->cd) : 0;
}

struct sw_http_dmsg_server *
sw_http_dmsg_serve_as(struct event_base *base, struct sw_http_server *srv,
    const struct sw_keypair *kp, const char *discovery, const char *svc)
{
	struct dmsg_client_opts o;
	struct dmsg_client *dc;
	struct sw_http_dmsg_server *s;

	memset(&o, 0, sizeof(o));
	o.discovery = discovery;
	if ((dc = dmsg_client_new(base, kp, &o, svc)) == NULL || dmsg_client_start(dc) == -1) {
		dmsg_client_free(dc);
		return NULL;
	}
	if ((s = sw_http_dmsg_serve(base, srv, dc, 0, svc)) == NULL) {
		dmsg_client_free(dc);
		return NULL;
	}
	s->own = dc;
	return s;
}

/* ---- client carrier ---- */

#define MAX_TCP_PATHS 4

struct map {
	char authority[128];
	char tcp_paths[MAX_TCP_PATHS][64];
	size_t ntcp;
	uint8_t pk[SW_PK_LEN];
	long long failed_until_ms;
	long long unlisted_ms;    /* the last "not on dmsg yet" memory; 0 after a stream */
};

struct sw_http_dmsg_try {
	struct sw_http_dmsg *d;         /* NULL once the carrier is gone */
	struct sw_http_dmsg_try *prev, *next;
	uint32_t id;                    /* our loopback address 127.id */
	struct sockaddr_in from;        /* the client socket's own address; port 0 until known */
	struct map *m;
	struct dmsg_stream *dialing;
	struct bufferevent *dm;         /* the opened stream */
	evutil_socket_t fd;             /* the accepted evhttp connection */
	struct event *kick;             /* done() from the loop */
	int ok;
	sw_http_dmsg_done *done;
	void *arg;
};

struct sw_http_dmsg {
	struct event_base *base;
	struct dmsg_client *dc;
	const char *svc;
	struct cxo_dmsg *cd;
	struct evconnlistener *l;
	int port;
	uint32_t next_id;
	struct sw_http_dmsg_try *tries;
	struct splice *splices;
	struct map maps[MAX_MAPS];
	size_t nmaps;
	struct sw_http_client *clients[MAX_CLIENTS];
	size_t nclients;
	struct sw_metric *m_req;
	unsigned long count[2];
	unsigned long strays;           /* accepted, no try's socket: closed */
};

static void
try_unlink(struct sw_http_dmsg_try *t)
{
	if (t->d == NULL)
		return;
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->d->tries = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

static void
try_kick(evutil_socket_t fd, short what, void *arg)
{
	struct sw_http_dmsg_try *t = arg;

	(void)fd;
	(void)what;
	t->done(t->arg, t->ok);
}

static void
try_finish(struct sw_http_dmsg_try *t, int ok)
{
	t->ok = ok;
	event_active(t->kick, EV_TIMEOUT, 1);
}

/* Both halves are here: hand them to a splice, which lives on its own. */
static void
try_splice(struct sw_http_dmsg_try *t)
{
	struct bufferevent *sock;

	if (t->fd == -1 || t->dm == NULL)
		return;
	evutil_make_socket_nonblocking(t->fd);
	/* Nagle off: an answer in several writes would wait for evhttp's delayed ACK. */
	(void)setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	sock = bufferevent_socket_new(t->d->base, t->fd, BEV_OPT_CLOSE_ON_FREE);
	if (sock == NULL || splice_new(sock, t->dm, &t->d->splices) == NULL) {
		if (sock != NULL)
			bufferevent_free(sock);
		else
			evutil_closesocket(t->fd);
		bufferevent_free(t->dm);
		t->fd = -1;
		t->dm = NULL;
		try_finish(t, 0);
		return;
	}
	t->fd = -1;
	t->dm = NULL;
	try_finish(t, 1);
}

/*
 * The dial failed because the service is not on dmsg (yet): discovery has
 * no entry for its PK, or one without a server.  That is what a service
 * whose dmsg side starts a moment after its callers looks like, so it is
 * not punished like a dial that failed on the way (the error texts are
 * dmsg_dial.c's; test_http_dmsg's test_registers_late fails if they change).
 */
static int
dial_unlisted(int reject, const char *err)
{
	return reject == -1 && err != NULL &&
	    (strcmp(err, "no entry for the peer in discovery") == 0 ||
	    strcmp(err, "the peer has no dmsg server") == 0);
}

/*
 * Remember a failed dial: TCP for 60 s; when the service is only not
 * listed yet, for 1 s, doubling with each such failure up to the 60 s (one
 * discovery lookup per period: a PK that never registers costs what it did).
 * Tries that were in flight together count once.
 */
static void
remember_failure(struct sw_http_dmsg *d, struct map *m, int reject, const char *err)
{
	long long now = sw_mono_ms(), ms = SW_HTTP_DMSG_FAIL_S * 1000LL;
	char pk[SW_PK_HEX];

	if (dial_unlisted(reject, err)) {
		if (m->failed_until_ms > now)
			return;
		ms = m->unlisted_ms == 0 ? SW_HTTP_DMSG_UNLISTED_MS : 2 * m->unlisted_ms;
		if (ms > SW_HTTP_DMSG_FAIL_S * 1000LL)
			ms = SW_HTTP_DMSG_FAIL_S * 1000LL;
		m->unlisted_ms = ms;
	}
	m->failed_until_ms = now + ms;
	sw_hex_encode(pk, m->pk, SW_PK_LEN);
	sw_log_info(d->svc, "no dmsg stream to the service, TCP for a while",
	    "authority=%s pk=%s ms=%lld reject=%d error=%s", m->authority, pk, ms, reject,
	    sw_log_q((char[96]){0}, 96, err != NULL ? err : ""));
}

static void
try_dialed(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct sw_http_dmsg_try *t = arg;

	t->dialing = NULL;
	if (st == NULL || t->d == NULL || (t->dm = cxo_dmsg_wrap(t->d->cd, st)) == NULL) {
		if (st != NULL)
			dmsg_stream_free(st);
		if (t->d != NULL)
			remember_failure(t->d, t->m, reject, err);
		try_finish(t, 0);
		return;
	}
	t->m->unlisted_ms = 0;
	try_splice(t);
}

/*
 * A connection is a try's only if it comes from the very address and port
 * the try's own client socket holds: the kernel gives one (address, port)
 * to one socket connected to our listener, so no other process can show
 * them while ours is open.  Anything else is closed unread.
 */
static void
carrier_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct sw_http_dmsg *d = arg;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)sa;
	int inet = sa->sa_family == AF_INET && salen >= (int)sizeof(*sin);
	char ip[INET_ADDRSTRLEN];

	(void)l;
	if (inet)
		for (struct sw_http_dmsg_try *t = d->tries; t != NULL; t = t->next)
			if (t->from.sin_port != 0 && t->from.sin_port == sin->sin_port &&
			    t->from.sin_addr.s_addr == sin->sin_addr.s_addr &&
			    t->fd == -1 && !t->ok) {
				t->fd = fd;
				try_splice(t);
				return;
			}
	/* A try given up while its connect was queued looks the same: debug only. */
	d->strays++;
	if (!inet || inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	sw_log_limited(SW_LOG_DEBUG, d->svc, "http over dmsg: connection from no try, closed",
	    "from=%s:%u strays=%lu", ip, inet ? ntohs(sin->sin_port) : 0u, d->strays);
	evutil_closesocket(fd);
}

struct sw_http_dmsg *
sw_http_dmsg_new(struct event_base *base, struct dmsg_client *dc, struct sw_metrics *metrics,
    const char *svc)
{
	struct sw_http_dmsg *d = calloc(1, sizeof(*d));
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	if (d == NULL || dc == NULL)
		goto fail;
	d->base = base;
	d->dc = dc;
	d->svc = svc != NULL ? svc : "http";
	d->next_id = 2;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d->l = evconnlistener_new_bind(base, carrier_accept, d,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, (struct sockaddr *)&sin,
	    sizeof(sin));
	if (d->l == NULL || getsockname(evconnlistener_get_fd(d->l), (struct sockaddr *)&sin,
	    &sl) == -1)
		goto fail;
	d->port = ntohs(sin.sin_port);
	if ((d->cd = cxo_dmsg_new(base, dc, d->svc)) == NULL)
		goto fail;
	if (metrics != NULL)
		d->m_req = sw_metric_new(metrics, "sw_http_client_requests_total",
		    "HTTP requests made, by the carrier that took the last try (dmsg, tcp).",
		    SW_COUNTER, (const char *const[]){"carrier", NULL}, NULL, 0);
	return d;
fail:
	sw_log_error(svc, "http over dmsg: client carrier setup failed", NULL);
	sw_http_dmsg_free(d);
	return NULL;
}

void
sw_http_dmsg_free(struct sw_http_dmsg *d)
{
	if (d == NULL)
		return;
	/* Clients drop their tries (each try_free unlinks itself). */
	while (d->nclients > 0)
		sw_http_client_dmsg_gone(d->clients[--d->nclients]);
	while (d->tries != NULL) {
		struct sw_http_dmsg_try *t = d->tries;

		try_unlink(t);
		t->d = NULL;
	}
	while (d->splices != NULL)
		splice_free(d->splices);
	if (d->l != NULL)
		evconnlistener_free(d->l);
	cxo_dmsg_free(d->cd);
	free(d);
}

/* "host:port" of an http:// URL, as http_client.c spells it for connecting. */
static int
url_authority(const char *url, char *out, size_t len)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *host;
	int port, ret = -1;

	if (u == NULL)
		return -1;
	host = evhttp_uri_get_host(u);
	port = evhttp_uri_get_port(u);
	if (host != NULL && *host != '\0') {
		size_t hl = strlen(host);

		if (host[0] == '[' && hl > 2)
			ret = snprintf(out, len, "%.*s:%d", (int)(hl - 2), host + 1,
			    port == -1 ? 80 : port);
		else
			ret = snprintf(out, len, "%s:%d", host, port == -1 ? 80 : port);
		ret = ret > 0 && (size_t)ret < len ? 0 : -1;
	}
	evhttp_uri_free(u);
	return ret;
}

int
sw_http_dmsg_map(struct sw_http_dmsg *d, const char *url, const uint8_t pk[SW_PK_LEN])
{
	char a[128];
	struct map *m = NULL;

	if (d == NULL || url == NULL || url_authority(url, a, sizeof(a)) == -1)
		return -1;
	for (size_t i = 0; i < d->nmaps; i++)
		if (strcmp(d->maps[i].authority, a) == 0)
			m = &d->maps[i];
	if (m == NULL) {
		if (d->nmaps == MAX_MAPS)
			return -1;
		m = &d->maps[d->nmaps++];
	}
	memset(m, 0, sizeof(*m));
	memcpy(m->authority, a, strlen(a) + 1);
	memcpy(m->pk, pk, SW_PK_LEN);
	return 0;
}

static struct map *
map_find(struct sw_http_dmsg *d, const char *authority)
{
	for (size_t i = 0; i < d->nmaps; i++)
		if (strcmp(d->maps[i].authority, authority) == 0)
			return &d->maps[i];
	return NULL;
}

int
sw_http_dmsg_tcp_path(struct sw_http_dmsg *d, const char *url)
{
	char a[128];
	struct evhttp_uri *u;
	const char *path;
	struct map *m;
	int ret = -1;

	if (d == NULL || url == NULL || url_authority(url, a, sizeof(a)) == -1 ||
	    (m = map_find(d, a)) == NULL || m->ntcp == MAX_TCP_PATHS ||
	    (u = evhttp_uri_parse(url)) == NULL)
		return -1;
	path = evhttp_uri_get_path(u);
	if (path != NULL && *path != '\0' && strlen(path) < sizeof(m->tcp_paths[0])) {
		memcpy(m->tcp_paths[m->ntcp++], path, strlen(path) + 1);
		ret = 0;
	}
	evhttp_uri_free(u);
	return ret;
}

long long
sw_http_dmsg_tcp_left_ms(const struct sw_http_dmsg *d, const char *url)
{
	char a[128];
	long long left;

	if (d == NULL || url == NULL || url_authority(url, a, sizeof(a)) == -1)
		return 0;
	for (size_t i = 0; i < d->nmaps; i++)
		if (strcmp(d->maps[i].authority, a) == 0) {
			left = d->maps[i].failed_until_ms - sw_mono_ms();
			return left > 0 ? left : 0;
		}
	return 0;
}

static int
id_taken(const struct sw_http_dmsg *d, uint32_t id)
{
	for (const struct sw_http_dmsg_try *t = d->tries; t != NULL; t = t->next)
		if (t->id == id)
			return 1;
	return 0;
}

/* A loopback address no try of ours holds: 127.0.0.2 .. 127.255.255.254. */
static uint32_t
next_id(struct sw_http_dmsg *d)
{
	for (;;) {
		uint32_t id = d->next_id++;

		if (d->next_id >= TRY_IDS - 1)
			d->next_id = 2;
		if ((id & 0xff) != 0 && (id & 0xff) != 0xff && !id_taken(d, id))
			return id;
	}
}

struct sw_http_dmsg_try *
sw_http_dmsg_try_start(struct sw_http_dmsg *d, const char *host, int port,
    const char *target, sw_http_dmsg_done *done, void *arg, char *laddr, size_t laddrlen, int *lport)
{
	struct sw_http_dmsg_try *t;
	struct map *m = NULL;
	char a[160];

	if (d == NULL || host == NULL)
		return NULL;
	snprintf(a, sizeof(a), "%s:%d", host, port);
	for (size_t i = 0; i < d->nmaps; i++)
		if (strcmp(d->maps[i].authority, a) == 0)
			m = &d->maps[i];
	if (m == NULL || m->failed_until_ms > sw_mono_ms())
		return NULL;
	for (size_t i = 0; i < m->ntcp; i++)
		if (target != NULL &&
		    strncmp(target, m->tcp_paths[i], strlen(m->tcp_paths[i])) == 0)
			return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->d = d;
	t->m = m;
	t->fd = -1;
	t->done = done;
	t->arg = arg;
	t->id = next_id(d);
	t->from.sin_family = AF_INET;
	t->from.sin_addr.s_addr = htonl(0x7f000000u | t->id);
	if ((t->kick = evtimer_new(d->base, try_kick, t)) == NULL)
		goto fail;
	t->dialing = dmsg_client_dial(d->dc, m->pk, SW_HTTP_DMSG_PORT, SW_HTTP_DMSG_DIAL_MS,
	    try_dialed, t);
	if (t->dialing == NULL)
		goto fail;
	snprintf(laddr, laddrlen, "127.%u.%u.%u", (t->id >> 16) & 0xff, (t->id >> 8) & 0xff,
	    t->id & 0xff);
	*lport = d->port;
	t->next = d->tries;
	if (d->tries != NULL)
		d->tries->prev = t;
	d->tries = t;
	return t;
fail:
	if (t->kick != NULL)
		event_free(t->kick);
	free(t);
	return NULL;
}

int
sw_http_dmsg_try_sock(struct sw_http_dmsg_try *t, int fd)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	if (t == NULL || t->d == NULL)
		return -1;
	if (fd == -1 || getsockname(fd, (struct sockaddr *)&sin, &sl) == -1 ||
	    sl < sizeof(sin) || sin.sin_family != AF_INET ||
	    sin.sin_addr.s_addr != t->from.sin_addr.s_addr || sin.sin_port == 0) {
		sw_log_warn(t->d->svc, "http over dmsg: not the socket made for the try",
		    "fd=%d", fd);
		return -1;
	}
	t->from.sin_port = sin.sin_port;
	return 0;
}

void
sw_http_dmsg_try_free(struct sw_http_dmsg_try *t)
{
	if (t == NULL)
		return;
	try_unlink(t);
	if (t->dialing != NULL)
		dmsg_stream_free(t->dialing); /* cancels the dial, no callback */
	if (t->dm != NULL)
		bufferevent_free(t->dm);
	if (t->fd != -1)
		evutil_closesocket(t->fd);
	event_free(t->kick);
	free(t);
}

void
sw_http_dmsg_note(struct sw_http_dmsg *d, int dmsg)
{
	if (d == NULL)
		return;
	d->count[dmsg ? 1 : 0]++;
	sw_metric_add(d->m_req, (const char *const[]){dmsg ? "dmsg" : "tcp"}, 1);
}

unsigned long
sw_http_dmsg_count(const struct sw_http_dmsg *d, int dmsg)
{
	return d != NULL ? d->count[dmsg ? 1 : 0] : 0;
}

unsigned long
sw_http_dmsg_strays(const struct sw_http_dmsg *d)
{
	return d != NULL ? d->strays : 0;
}

int
sw_http_dmsg_attach(struct sw_http_dmsg *d, struct sw_http_client *c)
{
	if (d->nclients == MAX_CLIENTS) {
		sw_log_error(d->svc, "http over dmsg: too many clients on one carrier", NULL);
		return -1;
	}
	d->clients[d->nclients++] = c;
	return 0;
}

void
sw_http_dmsg_detach(struct sw_http_dmsg *d, struct sw_http_client *c)
{
	for (size_t i = 0; i < d->nclients; i++)
		if (d->clients[i] == c) {
			d->clients[i] = d->clients[--d->nclients];
			return;
		}
}
