/*
 * transport.c: the visor's transports, whatever carries them (tp_dmsg.c,
 * tp_stcpr.c).  The registry (one transport per peer and type), the packet
 * codec, keep-alive and loss detection, pings, and the transport-discovery
 * entry.
 *
 * The one idea: a transport's identity is its t_id, derived from the two
 * keys and the type, so both ends agree on it without talking.  Only the
 * end that opened it registers the entry (its label is the opener's) and
 * re-posts it before it expires; both ends DELETE it when the transport
 * ends, so it leaves transport-discovery even when the opener has vanished.
 *
 * When both ends open at once, the transport opened by the lower key wins:
 * an incoming one is refused while we have an outgoing one and our key is
 * lower, and replaces ours otherwise (also when the peer reconnects after
 * losing its side), so both ends settle on the same single transport.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dict.h"
#include "dmsg_wire.h"
#include "http.h"
#include "httpauth_client.h"
#include "log.h"
#include "router.h"
#include "str.h"
#include "tp_int.h"
#include "transport-discovery/td_schema.h"
#include "visor.h"

struct vtp_pinger {
	struct vtp_pinger *next;
	struct vtp *t;
	uint8_t token[VTP_PING_LEN];
	long long start_ms;
	struct event *timer;
	vtp_ping_cb *cb;
	void *arg;
};

static void destroy(struct vtp *t, const char *why);

void
vtp_pkt_hdr(uint8_t out[VTP_PKT_HDR], uint8_t type, uint32_t route_id)
{
	out[0] = type;
	sw_put_u32(out + 1, route_id);
}

int
vtp_pkt_parse(const uint8_t *buf, size_t len, struct vtp_pkt *p)
{
	if (buf == NULL || len < VTP_PKT_HDR || len > VTP_MAX_PACKET || buf[0] > VTP_PKT_HANDSHAKE)
		return -1;
	p->type = buf[0];
	p->route_id = sw_get_u32(buf + 1);
	p->payload = buf + VTP_PKT_HDR;
	p->len = len - VTP_PKT_HDR;
	return 0;
}

const char *
vtp_kind_str(enum vtp_kind k)
{
	return k == VTP_STCPR ? "stcpr" : k == VTP_SUDPH ? "sudph" : "dmsg";
}

int
vtp_kind_parse(const char *s, enum vtp_kind *k)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "dmsg") == 0)
		*k = VTP_DMSG;
	else if (strcmp(s, "stcpr") == 0)
		*k = VTP_STCPR;
	else if (strcmp(s, "sudph") == 0)
		*k = VTP_SUDPH;
	else
		return -1;
	return 0;
}


static void
timer_in(struct event *ev, long long ms)
{
	/* A floor, so a deadline already past cannot spin the loop. */
	sw_timer_in(ev, ms < 10 ? 10 : ms);
}

static const char *
svc_name(const struct vtp_mgr *m)
{
	return m->v->name;
}

static void
set_peer(struct vtp *t, const uint8_t pk[SW_PK_LEN])
{
	memcpy(t->pk, pk, SW_PK_LEN);
	tp_id_derive(t->id, t->m->v->kp.pk, pk, vtp_kind_str(t->kind));
	tp_id_format(t->id_text, t->id);
}

/*
 * The t_id index: every packet a visor forwards looks its egress up by t_id, so
 * vtp_find is a hash lookup, not a walk of the list.  A t_id is a function of the
 * two keys and the kind, and there is one live transport per t_id: vtp_open reuses
 * the one there is, vtp_incoming refuses the newcomer or replaces the old one
 * (indexing the newcomer once the old one is gone).
 */
static int
index_add(struct vtp *t)
{
	if (sw_dict_set(t->m->by_id, t->id, TP_ID_LEN, t) == -1) {
		sw_log_error(svc_name(t->m), "out of memory indexing a transport", "t_id=%s",
		    t->id_text);
		return -1;
	}
	return 0;
}

static void
index_del(struct vtp *t)
{
	if (sw_dict_get(t->m->by_id, t->id, TP_ID_LEN) == t)
		sw_dict_del(t->m->by_id, t->id, TP_ID_LEN);
}

/* The live transport of that peer and kind, unless it is skip. */
static struct vtp *
find_peer(const struct vtp_mgr *m, const uint8_t pk[SW_PK_LEN], enum vtp_kind kind,
    const struct vtp *skip)
{
	uint8_t id[TP_ID_LEN];
	struct vtp *t;

	tp_id_derive(id, m->v->kp.pk, pk, vtp_kind_str(kind));
	t = vtp_find(m, id);
	return t != skip ? t : NULL;
}

/* ---- transport-discovery ---- */

static void
reg_done(const struct sw_http_resp *r, void *arg)
{
	struct vtp *t = arg;

	t->reg = NULL;
	if (r->status == 201) {
		sw_log_debug(svc_name(t->m), "transport registered", "t_id=%s", t->id_text);
		return;
	}
	sw_log_warn(svc_name(t->m), "transport registration failed", "t_id=%s status=%d",
	    t->id_text, r->status);
	/* Try again in about two seconds rather than a whole refresh period. */
	t->last_reg_ms = sw_mono_ms() - t->m->refresh_ms + 2000;
}

static void
reg_post(struct vtp *t)
{
	char lo[SW_PK_HEX], hi[SW_PK_HEX], body[TP_JSON_MAX + 16];
	const uint8_t *a = t->m->v->kp.pk, *b = t->pk;
	int n;

	if (memcmp(a, b, SW_PK_LEN) > 0) {
		a = t->pk;
		b = t->m->v->kp.pk;
	}
	sw_hex_encode(lo, a, SW_PK_LEN);
	sw_hex_encode(hi, b, SW_PK_LEN);
	n = snprintf(body, sizeof(body),
	    "[{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],\"type\":\"%s\",\"label\":\"%s\"}]",
	    t->id_text, lo, hi, vtp_kind_str(t->kind), t->label);
	if (n < 0 || (size_t)n >= sizeof(body))
		return;
	t->last_reg_ms = sw_mono_ms();
	t->reg = sw_authclient_request(t->m->tpd, "POST", TPD_PATH_POST, body, (size_t)n,
	    VTP_HTTP_MS, reg_done, t);
}

static void
dereg(struct vtp *t)
{
	char path[64];

	snprintf(path, sizeof(path), TPD_PATH_BY_ID "%s", t->id_text);
	sw_authclient_request(t->m->tpd, "DELETE", path, NULL, 0, VTP_HTTP_MS, NULL, NULL);
}

/* ---- lifecycle ---- */

static void
answer_waiters(struct vtp *t, struct vtp_waiter *w, const char *err)
{
	while (w != NULL) {
		struct vtp_waiter *next = w->next;

		if (err != NULL)
			w->cb(NULL, 0, err, w->arg);
		else
			w->cb(t, !t->created_reported, NULL, w->arg);
		free(w);
		w = next;
	}
}

static void
ping_end(struct vtp_pinger *p, long long rtt)
{
	struct vtp_pinger **pp;

	for (pp = &p->t->pings; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	event_free(p->timer);
	p->cb(rtt, p->arg);
	free(p);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct vtp *t = arg;
	long long now = sw_mono_ms(), next;

	(void)fd;
	(void)what;
	if (t->state != VTP_UP) {
		/* The opening deadline (carriers have their own; this is the backstop). */
		vtp_close(t, "open timeout");
		return;
	}
	/* a transport holding a packet stopped reading: its silence is ours */
	if (t->held == NULL && now - t->last_rx_ms >= VTP_LOST_MS) {
		vtp_close(t, "peer lost: nothing received");
		return;
	}
	if (now - t->last_tx_ms >= VTP_KEEPALIVE_MS &&
	    vtp_send(t, VTP_PKT_KEEPALIVE, 0, NULL, 0) == -1) {
		vtp_close(t, "keepalive send failed");
		return;
	}
	if (t->initiator && t->reg == NULL && now - t->last_reg_ms >= t->m->refresh_ms)
		reg_post(t);
	next = VTP_KEEPALIVE_MS / 2;
	if (t->initiator && t->m->refresh_ms < next)
		next = t->m->refresh_ms;
	timer_in(t->timer, next);
}

struct vtp *
vtp_new(struct vtp_mgr *m, enum vtp_kind kind, const uint8_t *pk, int initiator)
{
	struct vtp *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->m = m;
	t->kind = kind;
	t->initiator = initiator;
	t->state = pk != NULL ? VTP_OPENING : VTP_HANDSHAKE;
	snprintf(t->label, sizeof(t->label), "automatic");
	if ((t->timer = evtimer_new(sw_svc_base(m->v->svc), tick, t)) == NULL) {
		free(t);
		return NULL;
	}
	if (pk != NULL) {
		set_peer(t, pk);
		if (index_add(t) == -1) {
			event_free(t->timer);
			free(t);
			return NULL;
		}
	}
	t->next = m->head;
	if (m->head != NULL)
		m->head->prev = t;
	m->head = t;
	timer_in(t->timer, VTP_DIAL_MS + 2000);
	return t;
}

/* Unlink and free; waiters and pings hear err.  No deregistration here. */
static void
destroy(struct vtp *t, const char *why)
{
	struct vtp_mgr *m = t->m;
	struct vtp_waiter *w = t->waiters;

	index_del(t);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		m->head = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->waiters = NULL;
	if (t->kind == VTP_DMSG)
		tp_dmsg_release(t);
	else if (t->kind == VTP_SUDPH)
		tp_sudph_release(t);
	else
		tp_stcpr_release(t);
	sw_authreq_cancel(t->reg);
	vtp_burst_abort(t);
	vtp_hold_drop(t);
	event_free(t->timer);
	while (t->pings != NULL)
		ping_end(t->pings, -1);
	answer_waiters(t, w, why);
	free(t);
}

void
vtp_close(struct vtp *t, const char *why)
{
	if (t == NULL)
		return;
	if (t->state == VTP_UP) {
		sw_log_info(svc_name(t->m), "transport closed", "t_id=%s type=%s reason=\"%s\"",
		    t->id_text, vtp_kind_str(t->kind), why);
		dereg(t);
		vrt_tp_closed(t->m->v->rt, t); /* its rules go with it */
	} else if (t->state == VTP_OPENING) {
		sw_log_info(svc_name(t->m), "transport not opened", "t_id=%s type=%s reason=\"%s\"",
		    t->id_text, vtp_kind_str(t->kind), why);
	}
	destroy(t, why);
}

void
vtp_lost(struct vtp *t, const char *why)
{
	vtp_close(t, why);
}

int
vtp_incoming(struct vtp *t, const uint8_t pk[SW_PK_LEN])
{
	struct vtp *old;

	if (sw_pk_is_null(pk) || memcmp(pk, t->m->v->kp.pk, SW_PK_LEN) == 0) {
		destroy(t, "bad peer");
		return -1;
	}
	t->state = VTP_OPENING;
	set_peer(t, pk);
	if ((old = find_peer(t->m, pk, t->kind, t)) == NULL)
		goto indexed;
	if (old->initiator && memcmp(t->m->v->kp.pk, pk, SW_PK_LEN) < 0) {
		/* Crossed opens: ours (the lower key's) wins; the peer drops its own. */
		sw_log_debug(svc_name(t->m), "incoming transport refused: ours wins", "t_id=%s",
		    t->id_text);
		destroy(t, "duplicate");
		return -1;
	}
	/*
	 * The peer's open wins, or the peer reconnected after losing its side:
	 * the new one takes over whoever waits for the old, and the entry
	 * (the same t_id) stays.
	 */
	sw_log_info(svc_name(t->m), "transport replaced by the peer's", "t_id=%s type=%s",
	    t->id_text, vtp_kind_str(t->kind));
	t->waiters = old->waiters;
	old->waiters = NULL;
	if (old->initiator) {
		snprintf(t->label, sizeof(t->label), "%s", old->label);
		t->created_reported = old->created_reported;
	}
	destroy(old, "replaced");
indexed:
	if (index_add(t) == -1) {
		destroy(t, "out of memory");
		return -1;
	}
	return 0;
}

void
vtp_up(struct vtp *t)
{
	struct vtp_waiter *w = t->waiters;
	char pk[SW_PK_HEX];

	t->state = VTP_UP;
	t->since = time(NULL);
	t->last_rx_ms = t->last_tx_ms = sw_mono_ms();
	sw_hex_encode(pk, t->pk, SW_PK_LEN);
	sw_log_info(svc_name(t->m), "transport up", "t_id=%s type=%s peer=%s initiator=%d",
	    t->id_text, vtp_kind_str(t->kind), pk, t->initiator);
	if (t->initiator)
		reg_post(t);
	event_del(t->timer);
	timer_in(t->timer, 100);
	t->waiters = NULL;
	answer_waiters(t, w, NULL);
	t->created_reported = 1;
}

int
vtp_rx(struct vtp *t, const uint8_t *buf, size_t len)
{
	struct vtp_pkt p;

	if (vtp_pkt_parse(buf, len, &p) == -1) {
		vtp_close(t, "malformed packet");
		return -1;
	}
	t->last_rx_ms = sw_mono_ms();
	t->rx_bytes += len;
	t->rx_pkts++;
	switch (p.type) {
	case VTP_PKT_PING:
		if (vtp_send(t, VTP_PKT_PONG, p.route_id, p.payload, p.len) == -1) {
			vtp_close(t, "send failed");
			return -1;
		}
		break;
	case VTP_PKT_PONG:
		if (vtp_burst_pong(t, p.payload, p.len))
			break;
		for (struct vtp_pinger *q = t->pings; q != NULL; q = q->next)
			if (p.len == VTP_PING_LEN && memcmp(q->token, p.payload, VTP_PING_LEN) == 0) {
				ping_end(q, sw_mono_ms() - q->start_ms);
				break;
			}
		break;
	case VTP_PKT_CLOSE:
		if (p.route_id == 0) {
			vtp_close(t, "closed by the peer");
			return -1;
		}
		vrt_rx(t->m->v->rt, t, &p);
		break;
	default:
		/* KEEPALIVE on route 0 only counts as traffic; the rest is routed. */
		if (p.route_id != 0)
			vrt_rx(t->m->v->rt, t, &p);
		break;
	}
	return 0;
}

/* ---- what the API and the rest of the visor call ---- */

int
vtp_send(struct vtp *t, uint8_t type, uint32_t route_id, const void *payload, size_t len)
{
	uint8_t hdr[VTP_PKT_HDR];
	int r;

	if (t == NULL || t->state != VTP_UP || len > VTP_MAX_PAYLOAD)
		return -1;
	vtp_pkt_hdr(hdr, type, route_id);
	r = t->kind == VTP_DMSG ? tp_dmsg_send(t, hdr, payload, len) :
	    t->kind == VTP_SUDPH ? tp_sudph_send(t, hdr, payload, len) :
	    tp_stcpr_send(t, hdr, payload, len);
	if (r == -1)
		return -1;
	t->last_tx_ms = sw_mono_ms();
	t->tx_bytes += VTP_PKT_HDR + len;
	t->tx_pkts++;
	return 0;
}

int
vtp_room(const struct vtp *t, size_t len)
{
	if (t == NULL || t->state != VTP_UP || len > VTP_MAX_PAYLOAD)
		return -1;
	return t->kind == VTP_DMSG ? tp_dmsg_room(t, len) :
	    t->kind == VTP_SUDPH ? tp_sudph_room(t, len) : tp_stcpr_room(t, len);
}

static void
ping_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ping_end(arg, -1);
}

int
vtp_ping(struct vtp *t, int timeout_ms, vtp_ping_cb *cb, void *arg)
{
	struct vtp_pinger *p;

	if (t == NULL || t->state != VTP_UP || cb == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	if ((p->timer = evtimer_new(sw_svc_base(t->m->v->svc), ping_timeout, p)) == NULL) {
		free(p);
		return -1;
	}
	p->t = t;
	p->cb = cb;
	p->arg = arg;
	sw_put_u32(p->token, ++t->ping_seq);
	randombytes_buf(p->token + 4, 4);
	p->start_ms = sw_mono_ms();
	if (vtp_send(t, VTP_PKT_PING, 0, p->token, VTP_PING_LEN) == -1) {
		event_free(p->timer);
		free(p);
		return -1;
	}
	p->next = t->pings;
	t->pings = p;
	timer_in(p->timer, timeout_ms > 0 ? timeout_ms : 5000);
	return 0;
}

int
vtp_open(struct vtp_mgr *m, const uint8_t pk[SW_PK_LEN], enum vtp_kind kind,
    const char *label, vtp_open_cb *cb, void *arg)
{
	struct vtp *t;
	struct vtp_waiter *w;

	if (m == NULL || cb == NULL || m->stopping || sw_pk_is_null(pk) ||
	    memcmp(pk, m->v->kp.pk, SW_PK_LEN) == 0 || !tp_label_valid(label))
		return -1;
	if ((t = find_peer(m, pk, kind, NULL)) != NULL && t->state == VTP_UP) {
		cb(t, 0, NULL, arg);
		return 0;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->cb = cb;
	w->arg = arg;
	if (t == NULL) {
		if ((t = vtp_new(m, kind, pk, 1)) == NULL) {
			free(w);
			return -1;
		}
		snprintf(t->label, sizeof(t->label), "%s", label);
		t->waiters = w;
		/* May fail at once: then t is gone and w has been answered. */
		if (kind == VTP_DMSG)
			tp_dmsg_dial(t);
		else if (kind == VTP_SUDPH)
			tp_sudph_dial(t);
		else
			tp_stcpr_dial(t);
		return 0;
	}
	w->next = t->waiters;
	t->waiters = w;
	return 0;
}

struct vtp *
vtp_find(const struct vtp_mgr *m, const uint8_t id[TP_ID_LEN])
{
	return sw_dict_get(m->by_id, id, TP_ID_LEN);
}

cJSON *
vtp_json(const struct vtp *t)
{
	cJSON *o = cJSON_CreateObject();
	char pk[SW_PK_HEX];

	if (o == NULL)
		return NULL;
	sw_hex_encode(pk, t->pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "t_id", t->id_text);
	cJSON_AddStringToObject(o, "remote_pk", pk);
	cJSON_AddStringToObject(o, "type", vtp_kind_str(t->kind));
	cJSON_AddStringToObject(o, "label", t->label);
	cJSON_AddStringToObject(o, "state", t->state == VTP_UP ? "up" : "opening");
	cJSON_AddBoolToObject(o, "initiator", t->initiator);
	cJSON_AddNumberToObject(o, "since", (double)t->since);
	cJSON_AddNumberToObject(o, "tx_bytes", (double)t->tx_bytes);
	cJSON_AddNumberToObject(o, "rx_bytes", (double)t->rx_bytes);
	cJSON_AddNumberToObject(o, "tx_packets", (double)t->tx_pkts);
	cJSON_AddNumberToObject(o, "rx_packets", (double)t->rx_pkts);
	return o;
}

cJSON *
vtp_mgr_json(const struct vtp_mgr *m)
{
	cJSON *a = cJSON_CreateArray();

	if (a == NULL || m == NULL)
		return a;
	for (const struct vtp *t = m->head; t != NULL; t = t->next)
		if (t->state != VTP_HANDSHAKE)
			cJSON_AddItemToArray(a, vtp_json(t));
	return a;
}

size_t
vtp_mgr_count(const struct vtp_mgr *m)
{
	size_t n = 0;

	for (const struct vtp *t = m != NULL ? m->head : NULL; t != NULL; t = t->next)
		n += t->state == VTP_UP;
	return n;
}

int
vtp_mgr_has_peer(const struct vtp_mgr *m, const uint8_t pk[SW_PK_LEN])
{
	for (const struct vtp *t = m->head; t != NULL; t = t->next)
		if (t->state != VTP_HANDSHAKE && memcmp(t->pk, pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

/* ---- the manager ---- */

struct vtp_mgr *
vtp_mgr_new(struct visor *v)
{
	struct vtp_mgr *m = calloc(1, sizeof(*m));
	const char *tpd = sw_cfg_str(v->cfg, "transport_discovery");
	const char *ar = sw_cfg_str(v->cfg, "address_resolver");
	const char *sl = sw_cfg_str(v->cfg, "stcpr_listen");
	long long refresh = sw_cfg_int(v->cfg, "transport_refresh_s", 100);

	if (m == NULL)
		return NULL;
	m->v = v;
	LIST_INIT(&m->held);
	if (refresh < 1 || refresh > 86400) {
		sw_log_error(v->name, "transport_refresh_s must be 1..86400", NULL);
		goto fail;
	}
	m->refresh_ms = (int)refresh * 1000;
	if ((m->by_id = sw_dict_new(NULL)) == NULL)
		goto fail;
	if (sl == NULL || sw_strlcpy(m->stcpr_listen, sl, sizeof(m->stcpr_listen)) == -1) {
		sw_log_error(v->name, "stcpr_listen must be host:port", NULL);
		goto fail;
	}
	if ((m->http = sw_http_client_new(sw_svc_base(v->svc), v->name)) == NULL)
		goto fail;
	m->tpd = sw_authclient_new(m->http, &v->kp, tpd, v->name);
	m->ar = sw_authclient_new(m->http, &v->kp, ar, v->name);
	if (m->tpd == NULL || m->ar == NULL) {
		sw_log_error(v->name, "transport_discovery and address_resolver must be URLs",
		    NULL);
		goto fail;
	}
	return m;
fail:
	vtp_mgr_free(m);
	return NULL;
}

int
vtp_mgr_start(struct vtp_mgr *m)
{
	visor_dmsgfirst_use(m->v, m->http);
	if (tp_dmsg_start(m) == -1 || tp_stcpr_start(m) == -1 || tp_sudph_start(m) == -1)
		return -1;
	return 0;
}

static void
stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct vtp_mgr *m = arg;
	void (*done)(void *) = m->stop_done;

	(void)fd;
	(void)what;
	if (sw_authclient_pending(m->tpd) + sw_authclient_pending(m->ar) > 0 &&
	    sw_mono_ms() < m->stop_deadline_ms) {
		timer_in(m->stop_timer, 20);
		return;
	}
	m->stop_done = NULL;
	if (done != NULL)
		done(m->stop_arg);
}

void
vtp_mgr_stop(struct vtp_mgr *m, void (*done)(void *arg), void *arg)
{
	m->stopping = 1;
	while (m->head != NULL)
		vtp_close(m->head, "visor stopping");
	tp_dmsg_stop(m);
	tp_stcpr_stop(m, 1);
	tp_sudph_stop(m, 1);
	m->stop_done = done;
	m->stop_arg = arg;
	m->stop_deadline_ms = sw_mono_ms() + 3000;
	if (m->stop_timer == NULL &&
	    (m->stop_timer = evtimer_new(sw_svc_base(m->v->svc), stop_poll, m)) == NULL) {
		m->stop_done = NULL;
		done(arg);
		return;
	}
	timer_in(m->stop_timer, 0);
}

void
vtp_mgr_free(struct vtp_mgr *m)
{
	if (m == NULL)
		return;
	m->stopping = 1;
	while (m->head != NULL)
		destroy(m->head, "visor stopping");
	tp_dmsg_stop(m);
	tp_stcpr_stop(m, 0);
	tp_sudph_stop(m, 0);
	if (m->stop_timer != NULL)
		event_free(m->stop_timer);
	vtp_hold_stop(m);
	if (m->bind_timer != NULL)
		event_free(m->bind_timer);
	sw_authclient_free(m->tpd);
	sw_authclient_free(m->ar);
	sw_http_client_free(m->http);
	sw_dict_free(m->by_id);
	free(m);
}
