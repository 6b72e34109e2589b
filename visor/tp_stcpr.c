/*
 * tp_stcpr.c: transports over TCP (visor.md "stcpr"): the address comes from
 * the address-resolver, where each visor binds its stcpr_listen port (and
 * re-binds before the binding expires); the connection is a noise_link with
 * prologue "stcpr/1", one packet per Noise message.
 *
 * An accepted connection is a transport with an unknown peer until the
 * handshake names it; at most STCPR_MAX_HANDSHAKES wait at once (past it new
 * connections are closed at once), and each has the link's 5 s deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "http.h"
#include "httpauth_client.h"
#include "address-resolver/ar_schema.h"
#include "json.h"
#include "listener.h"
#include "log.h"
#include "noise_link.h"
#include "tp_int.h"
#include "visor.h"

#define STCPR_PROLOGUE       "stcpr/1"
#define STCPR_MAX_HANDSHAKES 64
#define STCPR_RETRY_MS       2000

static void
on_ready(struct noise_link *l, void *arg)
{
	struct vtp *t = arg;

	if (!noise_link_is_initiator(l) && vtp_incoming(t, noise_link_remote_pk(l)) == -1)
		return;
	vtp_up(t);
}

static void
on_message(struct noise_link *l, const uint8_t *msg, size_t len, void *arg)
{
	(void)l;
	vtp_rx(arg, msg, len);
}

static void
on_closed(struct noise_link *l, const char *reason, void *arg)
{
	(void)l;
	vtp_lost(arg, reason);
}

static const struct noise_link_cbs link_cbs = {
	.ready = on_ready,
	.message = on_message,
	.closed = on_closed,
};

static struct noise_link *
link_new(struct vtp *t, struct bufferevent *bev, int initiator)
{
	/* Loss and keep-alive are transport.c's; the link's idle close is a backstop. */
	struct noise_link_opts o = {
		.prologue = STCPR_PROLOGUE,
		.handshake_timeout_ms = 5000,
		.quiet_ms = VTP_LOST_MS * 2,
		.idle_close_ms = VTP_LOST_MS * 2,
		.min_plain = VTP_PKT_HDR,
	};

	return noise_link_new(sw_svc_base(t->m->v->svc), bev, initiator, &t->m->v->kp,
	    initiator ? t->pk : NULL, &link_cbs, t, &o, t->m->v->name);
}

static size_t
handshaking(const struct vtp_mgr *m)
{
	size_t n = 0;

	for (const struct vtp *t = m->head; t != NULL; t = t->next)
		n += t->state == VTP_HANDSHAKE;
	return n;
}

/*
 * Accepted through common/listener (EMFILE pause, descriptor reserve); the
 * connection is bounded by the handshakes in flight, not by a count kept
 * here, so the listener's count is given back at once.
 */
static void
on_accept(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    struct sw_listener_peer *peer, int over_cap, void *arg)
{
	struct vtp_mgr *m = arg;
	struct bufferevent *bev;
	struct vtp *t;

	(void)sa;
	(void)salen;
	(void)over_cap;
	sw_listener_release(m->lst, peer);
	if (m->stopping || handshaking(m) >= STCPR_MAX_HANDSHAKES) {
		evutil_closesocket(fd);
		return;
	}
	bev = bufferevent_socket_new(sw_svc_base(m->v->svc), fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	if ((t = vtp_new(m, VTP_STCPR, NULL, 0)) == NULL) {
		bufferevent_free(bev);
		return;
	}
	if ((t->nl = link_new(t, bev, 0)) == NULL) {
		bufferevent_free(bev);
		vtp_lost(t, "out of memory");
	}
}

/* ---- the address-resolver binding ---- */

static void bind_post(struct vtp_mgr *m);

static void
bind_done(const struct sw_http_resp *r, void *arg)
{
	struct vtp_mgr *m = arg;
	long long ms = m->refresh_ms;

	if (r->status == 200) {
		sw_log_debug(m->v->name, "stcpr bound", "port=%d", m->stcpr_port);
	} else {
		sw_log_warn(m->v->name, "stcpr bind failed", "resolver=%s status=%d",
		    sw_authclient_base(m->ar), r->status);
		ms = STCPR_RETRY_MS;
	}
	if (m->stopping)
		return;
	sw_timer_in(m->bind_timer, ms);
}

static void
bind_post(struct vtp_mgr *m)
{
	char body[160];
	int n;

	if (m->stcpr_ip[0] != '\0')
		n = snprintf(body, sizeof(body), "{\"port\":%d,\"local_addresses\":[\"%s\"]}",
		    m->stcpr_port, m->stcpr_ip);
	else
		n = snprintf(body, sizeof(body), "{\"port\":%d,\"local_addresses\":[]}",
		    m->stcpr_port);
	if (sw_authclient_request(m->ar, "POST", AR_PATH_BIND_STCPR, body, (size_t)n, VTP_HTTP_MS,
	    bind_done, m) == NULL) {
		struct sw_http_resp none = {0};

		bind_done(&none, m);
	}
}

static void
bind_tick(evutil_socket_t fd, short what, void *arg)
{
	struct vtp_mgr *m = arg;

	(void)fd;
	(void)what;
	bind_post(m);
}

int
tp_stcpr_start(struct vtp_mgr *m)
{
	struct sockaddr_storage ss;
	const char *v = m->v->name;

	/* The listener takes a numeric host:port only (port 0: any free one). */
	memset(&ss, 0, sizeof(ss));
	if ((m->lst = sw_listener_new(sw_svc_base(m->v->svc), v, NULL, on_accept, m)) == NULL ||
	    sw_listener_bind(m->lst, m->stcpr_listen) == -1 ||
	    sw_listener_sockname(m->lst, &ss) == -1) {
		sw_log_error(v, "cannot listen for stcpr (stcpr_listen is a numeric host:port)",
		    "addr=%s", m->stcpr_listen);
		sw_listener_free(m->lst);
		m->lst = NULL;
		return -1;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		m->stcpr_port = ntohs(in->sin_port);
		if (in->sin_addr.s_addr != htonl(INADDR_ANY))
			inet_ntop(AF_INET, &in->sin_addr, m->stcpr_ip, sizeof(m->stcpr_ip));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		m->stcpr_port = ntohs(in6->sin6_port);
		if (!IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			inet_ntop(AF_INET6, &in6->sin6_addr, m->stcpr_ip, sizeof(m->stcpr_ip));
	}
	if ((m->bind_timer = evtimer_new(sw_svc_base(m->v->svc), bind_tick, m)) == NULL)
		return -1;
	sw_log_info(v, "stcpr listening", "addr=%s port=%d", m->stcpr_listen, m->stcpr_port);
	bind_post(m);
	return 0;
}

void
tp_stcpr_stop(struct vtp_mgr *m, int unbind)
{
	if (m->lst == NULL)
		return;
	sw_listener_free(m->lst);
	m->lst = NULL;
	if (m->bind_timer != NULL)
		event_del(m->bind_timer);
	if (unbind)
		sw_authclient_request(m->ar, "DELETE", AR_PATH_BIND_STCPR, NULL, 0, VTP_HTTP_MS, NULL,
		    NULL);
}

/* ---- dialling ---- */

/* Where to connect: the LAN address when the resolver says we share a NAT. */
static int
pick_addr(const cJSON *b, char *out, size_t cap)
{
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(b, "remote_addr");
	const cJSON *loc = cJSON_GetObjectItemCaseSensitive(b, "is_local");
	const cJSON *la = cJSON_GetObjectItemCaseSensitive(b, "local_addresses");
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(b, "port");
	const cJSON *ip = cJSON_IsArray(la) ? cJSON_GetArrayItem(la, 0) : NULL;
	long long pn;
	int n;

	if (cJSON_IsTrue(loc) && cJSON_IsString(ip) && sw_json_int(port, 1, 65535, &pn) == 0) {
		n = snprintf(out, cap, strchr(ip->valuestring, ':') != NULL ? "[%s]:%d" : "%s:%d",
		    ip->valuestring, (int)pn);
		return n > 0 && (size_t)n < cap ? 0 : -1;
	}
	if (!cJSON_IsString(ra) || strlen(ra->valuestring) >= cap)
		return -1;
	memcpy(out, ra->valuestring, strlen(ra->valuestring) + 1);
	return 0;
}

static void
resolve_done(const struct sw_http_resp *r, void *arg)
{
	struct vtp *t = arg;
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	struct bufferevent *bev;
	char addr[128], why[160];

	t->resolve = NULL;
	if (r->status != 200) {
		snprintf(why, sizeof(why), r->status == 404 ? "peer has no stcpr binding" :
		    "address-resolver answered HTTP %d", r->status);
		vtp_lost(t, why);
		return;
	}
	if (r->json == NULL || pick_addr(r->json, addr, sizeof(addr)) == -1 ||
	    evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sl) == -1) {
		vtp_lost(t, "address-resolver gave no usable address");
		return;
	}
	bev = bufferevent_socket_new(sw_svc_base(t->m->v->svc), -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		vtp_lost(t, "out of memory");
		return;
	}
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sl) == -1) {
		bufferevent_free(bev);
		snprintf(why, sizeof(why), "cannot connect to %s", addr);
		vtp_lost(t, why);
		return;
	}
	if ((t->nl = link_new(t, bev, 1)) == NULL) {
		bufferevent_free(bev);
		vtp_lost(t, "out of memory");
	}
}

void
tp_stcpr_dial(struct vtp *t)
{
	char path[96], pk[SW_PK_HEX];

	sw_hex_encode(pk, t->pk, SW_PK_LEN);
	snprintf(path, sizeof(path), AR_PATH_RESOLVE_STCPR "%s", pk);
	t->resolve = sw_authclient_request(t->m->ar, "GET", path, NULL, 0, VTP_HTTP_MS,
	    resolve_done, t);
	if (t->resolve == NULL)
		vtp_lost(t, "cannot ask the address-resolver");
}

int
tp_stcpr_send(struct vtp *t, const uint8_t *hdr, const void *payload, size_t len)
{
	/*
	 * A packet forwarded (or echoed) from an stcpr link still lies in the
	 * link's scratch behind the header it came with: the new header goes
	 * there and the packet is encrypted from one piece, with no copy.
	 */
	uint8_t *h = len > 0 ? noise_link_scratch_at(payload, VTP_PKT_HDR, len) : NULL;

	if (h != NULL) {
		memcpy(h, hdr, VTP_PKT_HDR);
		return noise_link_send(t->nl, h, VTP_PKT_HDR + len, NULL, 0);
	}
	return noise_link_send(t->nl, hdr, VTP_PKT_HDR, payload, len);
}

int
tp_stcpr_room(const struct vtp *t, size_t len)
{
	return t->nl != NULL && noise_link_outbuf(t->nl) + VTP_PKT_HDR + len <= VTP_LOCAL_QUEUE;
}

void
tp_stcpr_release(struct vtp *t)
{
	sw_authreq_cancel(t->resolve);
	t->resolve = NULL;
	noise_link_free(t->nl);
	t->nl = NULL;
}
