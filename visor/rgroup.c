/*
 * rgroup.c: a route group once its rules exist (rgroup.h).
 *
 * The one idea: a group is two local rules plus a Noise KK session.  The
 * router hands every packet of the group's consume rule to deliver() and
 * tells gone() when either rule dies; the group sends through its forward
 * rule.  Until the handshake is done there is nothing to decrypt with, so
 * DATA before it is dropped: there is no plaintext mode.  The initiator
 * resends message 1 each second for 5 s; the responder keeps message 2 and
 * answers a repeated message 1 with it, so a lost packet either way costs a
 * resend, not the group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dmsg_client.h"
#include "frpc.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "rgroup_int.h"
#include "str.h"
#include "visor.h"

#define HS_MSG_MAX 128 /* KK messages with empty payloads are 48 bytes */
#define RESPONDER_HS_MS 30000

enum vrg_state {
	VRG_HS = 0,
	VRG_UP,
};

struct vrg {
	struct vrg *prev, *next;
	struct vrg_mgr *m;
	struct vrt_desc desc;
	int initiator;
	enum vrg_state state;
	uint32_t fwd_id, cons_id;
	uint16_t keep_alive_s;
	struct noise_hs hs;
	struct noise_cipher tx, rx;
	uint8_t msg1[HS_MSG_MAX], msg2[HS_MSG_MAX];
	size_t msg1_len, msg2_len;
	struct event *timer;      /* handshake resend and deadline, then keep-alive */
	long long hs_deadline_ms, last_tx_ms;
	const struct vrg_cbs *cbs;
	void *arg;
	vrg_dial_cb *dial_cb;     /* initiator until up */
	void *dial_arg;
	struct vrg_listener *lst; /* responder */
	cJSON *path;
	uint64_t tx_msgs, rx_msgs;
	int broken;               /* a nonce spent on a message that never left: end it */
};

static const char PROLOGUE[] = "skywire-route/1";

struct visor *
vrg_mgr_visor(const struct vrg_mgr *m)
{
	return m->v;
}

static const char *
svc(const struct vrg *g)
{
	return g->m->v->name;
}

static void
count(struct vrg_mgr *m, const char *outcome)
{
	const char *lv[] = {outcome};

	sw_metric_add(m->m_groups, lv, 1);
}

/* Unlink, delete what rules are left (no hooks), free. */
static void
destroy(struct vrg *g)
{
	struct vrg_mgr *m = g->m;
	struct vrt *rt = m->v->rt;

	if (g->prev != NULL)
		g->prev->next = g->next;
	else
		m->head = g->next;
	if (g->next != NULL)
		g->next->prev = g->prev;
	/* Owner cleared first: these deletions are ours, not news for us. */
	if (g->fwd_id != 0 && vrt_set_owner(rt, g->fwd_id, NULL) == 0)
		vrt_delete(rt, g->fwd_id, VRT_GONE_DELETED);
	if (g->cons_id != 0 && vrt_set_owner(rt, g->cons_id, NULL) == 0)
		vrt_delete(rt, g->cons_id, VRT_GONE_DELETED);
	if (g->timer != NULL)
		event_free(g->timer);
	noise_hs_reset(&g->hs);
	noise_cipher_reset(&g->tx);
	noise_cipher_reset(&g->rx);
	cJSON_Delete(g->path);
	free(g);
}

static void
send_close(struct vrg *g, uint8_t code)
{
	vrt_send(g->m->v->rt, g->fwd_id, VTP_PKT_CLOSE, &code, 1);
}

/*
 * The group ends by itself: tell the peer (unless it told us), tell the
 * owner (the dialer if still dialling), free.
 */
static void
end(struct vrg *g, int tell_peer, uint8_t code, const char *why)
{
	char pk[SW_PK_HEX];

	sw_hex_encode(pk, g->initiator ? g->desc.dst_pk : g->desc.src_pk, SW_PK_LEN);
	sw_log_info(svc(g), "route group closed", "peer=%s initiator=%d reason=\"%s\"", pk,
	    g->initiator, why);
	if (tell_peer)
		send_close(g, code);
	if (g->dial_cb != NULL) {
		vrg_dial_cb *cb = g->dial_cb;

		g->dial_cb = NULL;
		count(g->m, "handshake_failed");
		cb(NULL, why, g->dial_arg);
	} else if (g->state == VRG_UP && g->cbs != NULL && g->cbs->closed != NULL) {
		g->cbs->closed(g, why, g->arg);
	}
	destroy(g);
}

static void
timer_tick(evutil_socket_t fd, short what, void *arg)
{
	struct vrg *g = arg;
	long long now = sw_mono_ms(), ka_ms = (long long)g->keep_alive_s * 1000 / 3;

	(void)fd;
	(void)what;
	if (g->broken) {
		end(g, 1, 2, "send failed");
		return;
	}
	if (g->state == VRG_HS) {
		if (now >= g->hs_deadline_ms) {
			end(g, 1, 1, "handshake timeout");
			return;
		}
		if (g->initiator)
			vrt_send(g->m->v->rt, g->fwd_id, VTP_PKT_HANDSHAKE, g->msg1, g->msg1_len);
		sw_timer_in(g->timer, g->initiator ? VRG_HS_RESEND_MS : g->hs_deadline_ms - now);
		return;
	}
	if (ka_ms < 1)
		ka_ms = 1;
	if (now - g->last_tx_ms >= ka_ms) {
		if (vrt_send(g->m->v->rt, g->fwd_id, VTP_PKT_KEEPALIVE, NULL, 0) == -1) {
			end(g, 0, 2, "route lost");
			return;
		}
		g->last_tx_ms = now;
	}
	sw_timer_in(g->timer, ka_ms - (now - g->last_tx_ms));
}

static struct vrg *
group_new(struct vrg_mgr *m, const struct vrt_desc *d, int initiator, uint32_t fwd_id,
    uint32_t cons_id, uint16_t ka)
{
	struct vrg *g = calloc(1, sizeof(*g));
	struct noise_hs_params p = {.pattern = NOISE_KK, .initiator = initiator,
	    .prologue = (const uint8_t *)PROLOGUE, .prologue_len = sizeof(PROLOGUE) - 1};
	uint8_t s_priv[32], rs[32], ss[32], s_pub[32];
	const uint8_t *peer = initiator ? d->dst_pk : d->src_pk;

	if (g == NULL)
		return NULL;
	g->m = m;
	g->desc = *d;
	g->initiator = initiator;
	g->fwd_id = fwd_id;
	g->cons_id = cons_id;
	g->keep_alive_s = ka;
	if (sw_sk_to_x25519(s_priv, &m->v->kp) == -1)
		goto fail;
	if (m->v->dmsg != NULL) { /* the dmsg client's cache: same key, same peers */
		if (dmsg_client_kk_keys(m->v->dmsg, peer, rs, ss, s_pub) == -1)
			goto fail;
		p.ss = ss;
		p.s_pub = s_pub;
	} else if (sw_pk_to_x25519(rs, peer) == -1) {
		goto fail;
	}
	p.s_priv = s_priv;
	p.rs = rs;
	if (noise_hs_init(&g->hs, &p) == -1 ||
	    (g->timer = evtimer_new(sw_svc_base(m->v->svc), timer_tick, g)) == NULL)
		goto fail;
	sodium_memzero(s_priv, sizeof(s_priv));
	sodium_memzero(ss, sizeof(ss));
	g->hs_deadline_ms = sw_mono_ms() + (initiator ? VRG_HS_TIMEOUT_MS : RESPONDER_HS_MS);
	g->next = m->head;
	if (m->head != NULL)
		m->head->prev = g;
	m->head = g;
	vrt_set_owner(m->v->rt, fwd_id, g);
	vrt_set_owner(m->v->rt, cons_id, g);
	return g;
fail:
	sodium_memzero(s_priv, sizeof(s_priv));
	sodium_memzero(ss, sizeof(ss));
	if (g->timer != NULL)
		event_free(g->timer);
	noise_hs_reset(&g->hs);
	free(g);
	return NULL;
}

static void
go_up(struct vrg *g)
{
	g->state = VRG_UP;
	g->last_tx_ms = sw_mono_ms();
	event_del(g->timer);
	sw_timer_in(g->timer, 10);
}

/* ---- packets from the router ---- */

static void
on_handshake(struct vrg *g, const uint8_t *msg, size_t len)
{
	size_t plen;

	if (g->initiator) {
		vrg_dial_cb *cb = g->dial_cb;

		if (g->state == VRG_UP)
			return; /* a repeated message 2 */
		if (noise_hs_read(&g->hs, msg, len, NULL, 0, &plen) == -1 ||
		    noise_hs_split(&g->hs, &g->tx, &g->rx) == -1) {
			end(g, 1, 2, "handshake failed");
			return;
		}
		go_up(g);
		g->dial_cb = NULL;
		count(g->m, "up");
		cb(g, NULL, g->dial_arg);
		return;
	}
	if (g->msg1_len != 0) {
		/* A resend: our message 2 was lost. Anything else is noise. */
		if (len == g->msg1_len && memcmp(msg, g->msg1, len) == 0)
			vrt_send(g->m->v->rt, g->fwd_id, VTP_PKT_HANDSHAKE, g->msg2, g->msg2_len);
		return;
	}
	if (len > sizeof(g->msg1) || noise_hs_read(&g->hs, msg, len, NULL, 0, &plen) == -1 ||
	    noise_hs_write(&g->hs, NULL, 0, g->msg2, sizeof(g->msg2), &g->msg2_len) == -1 ||
	    noise_hs_split(&g->hs, &g->tx, &g->rx) == -1) {
		end(g, 1, 2, "handshake failed");
		return;
	}
	memcpy(g->msg1, msg, len);
	g->msg1_len = len;
	vrt_send(g->m->v->rt, g->fwd_id, VTP_PKT_HANDSHAKE, g->msg2, g->msg2_len);
	go_up(g);
	count(g->m, "accepted");
	if (g->lst != NULL && g->lst->cb != NULL)
		g->lst->cb(g, g->lst->arg);
}

static void
deliver(void *owner, uint8_t type, const uint8_t *payload, size_t len)
{
	struct vrg *g = owner;
	uint8_t *plain = g->m->buf;
	size_t n;

	switch (type) {
	case VTP_PKT_HANDSHAKE:
		on_handshake(g, payload, len);
		return;
	case VTP_PKT_DATA:
		if (g->state != VRG_UP) {
			sw_log_debug(svc(g), "route DATA before the handshake dropped", NULL);
			return;
		}
		if (noise_decrypt(&g->rx, NULL, 0, payload, len, plain, sizeof(g->m->buf), &n) ==
		    -1) {
			end(g, 1, 2, "decryption failed");
			return;
		}
		g->rx_msgs++;
		if (g->cbs != NULL && g->cbs->message != NULL)
			g->cbs->message(g, plain, n, g->arg); /* g may be gone after */
		return;
	default:
		return; /* KEEPALIVE: the router refreshed the rule */
	}
}

static void
gone(void *owner, uint32_t route_id, enum vrt_gone why)
{
	struct vrg *g = owner;
	static const char *const reason[] = {"closed by the peer", "route expired",
	    "transport closed", "rule deleted"};

	/* The consume rule heard a CLOSE: the peer's side is going; close ours. */
	if (route_id == g->cons_id)
		g->cons_id = 0;
	else
		g->fwd_id = 0;
	end(g, g->fwd_id != 0, 0, reason[why]);
}

const struct vrt_hooks vrg_router_hooks = {.deliver = deliver, .gone = gone};

/* ---- what setup (rgroup_dial.c, router_rpc.c) calls ---- */

int
vrg_edge_rules(struct vrg_mgr *m, const struct vrt_rule *consume,
    const struct vrt_rule *forward, char *err, size_t errlen)
{
	struct vrg_listener *l;
	struct vrg *g;

	if (consume->type != VRT_CONSUME || forward->type != VRT_FORWARD ||
	    memcmp(consume->desc->dst_pk, m->v->kp.pk, SW_PK_LEN) != 0 ||
	    memcmp(consume->desc, forward->desc, sizeof(*consume->desc)) != 0) {
		snprintf(err, errlen, "edge rules must be a consume and a forward rule to us");
		return -1;
	}
	for (l = m->listeners; l != NULL && l->port != consume->desc->dst_port; l = l->next)
		;
	if (l == NULL || m->stopping) {
		snprintf(err, errlen, "no listener");
		return -1;
	}
	if (vrt_install(m->v->rt, consume, err, errlen) == -1)
		return -1;
	if (vrt_install(m->v->rt, forward, err, errlen) == -1)
		goto fail;
	if ((g = group_new(m, consume->desc, 0, forward->route_id, consume->route_id,
	    consume->keep_alive_s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	g->lst = l;
	sw_timer_in(g->timer, RESPONDER_HS_MS);
	return 0;
fail:
	vrt_delete(m->v->rt, consume->route_id, VRT_GONE_DELETED);
	vrt_delete(m->v->rt, forward->route_id, VRT_GONE_DELETED);
	return -1;
}

int
vrg_initiate(struct vrg_mgr *m, const struct vrt_rule *forward,
    const struct vrt_rule *consume, cJSON *path, vrg_dial_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct vrg *g;

	if (forward->type != VRT_FORWARD || consume->type != VRT_CONSUME ||
	    memcmp(forward->desc->src_pk, m->v->kp.pk, SW_PK_LEN) != 0 ||
	    memcmp(consume->desc, forward->desc, sizeof(*forward->desc)) != 0) {
		snprintf(err, errlen, "setup-node answered rules that are not ours");
		goto fail;
	}
	if (vrt_install(m->v->rt, forward, err, errlen) == -1)
		goto fail;
	if (vrt_install(m->v->rt, consume, err, errlen) == -1) {
		vrt_delete(m->v->rt, forward->route_id, VRT_GONE_DELETED);
		goto fail;
	}
	if ((g = group_new(m, forward->desc, 1, forward->route_id, consume->route_id,
	    forward->keep_alive_s)) == NULL ||
	    noise_hs_write(&g->hs, NULL, 0, g->msg1, sizeof(g->msg1), &g->msg1_len) == -1) {
		if (g != NULL)
			destroy(g);
		else {
			vrt_delete(m->v->rt, forward->route_id, VRT_GONE_DELETED);
			vrt_delete(m->v->rt, consume->route_id, VRT_GONE_DELETED);
		}
		snprintf(err, errlen, "handshake could not start");
		goto fail;
	}
	g->path = path;
	g->dial_cb = cb;
	g->dial_arg = arg;
	/* Message 1 goes out from the timer, at once and then every second. */
	sw_timer_in(g->timer, 0);
	return 0;
fail:
	cJSON_Delete(path);
	return -1;
}

/* ---- the API of a group ---- */

void
vrg_set_cbs(struct vrg *g, const struct vrg_cbs *cbs, void *arg)
{
	g->cbs = cbs;
	g->arg = arg;
}

int
vrg_room(const struct vrg *g, size_t len)
{
	if (g == NULL || g->state != VRG_UP || g->broken || len > VRG_MAX_MSG)
		return -1;
	return vrt_room(g->m->v->rt, g->fwd_id, len + NOISE_TAGLEN);
}

int
vrg_send(struct vrg *g, const void *data, size_t len)
{
	size_t n;

	/*
	 * Asked before the nonce is spent: a message the first hop cannot take
	 * now is refused with the group whole.  One encrypted and then lost
	 * would leave a gap the peer can only read as a forgery.
	 */
	if (vrg_room(g, len) != 1 ||
	    noise_encrypt(&g->tx, NULL, 0, data, len, g->m->buf, sizeof(g->m->buf), &n) == -1)
		return -1;
	if (vrt_send(g->m->v->rt, g->fwd_id, VTP_PKT_DATA, g->m->buf, n) == -1) {
		g->broken = 1; /* ended from the loop: no callback inside this call */
		event_del(g->timer);
		sw_timer_in(g->timer, 0);
		return -1;
	}
	g->last_tx_ms = sw_mono_ms();
	g->tx_msgs++;
	return 0;
}

void
vrg_close(struct vrg *g)
{
	if (g == NULL)
		return;
	send_close(g, 0);
	destroy(g);
}

const uint8_t *
vrg_remote_pk(const struct vrg *g)
{
	return g->initiator ? g->desc.dst_pk : g->desc.src_pk;
}

const cJSON *
vrg_path(const struct vrg *g)
{
	return g->path;
}

cJSON *
vrg_mgr_json(const struct vrg_mgr *m)
{
	cJSON *a = cJSON_CreateArray();

	for (const struct vrg *g = m != NULL ? m->head : NULL; g != NULL && a != NULL;
	    g = g->next) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL)
			break;
		cJSON_AddItemToObject(o, "desc", vrt_desc_json(&g->desc));
		cJSON_AddStringToObject(o, "state", g->state == VRG_UP ? "up" : "handshake");
		cJSON_AddBoolToObject(o, "initiator", g->initiator);
		cJSON_AddNumberToObject(o, "forward_rule", g->fwd_id);
		cJSON_AddNumberToObject(o, "consume_rule", g->cons_id);
		cJSON_AddNumberToObject(o, "tx_messages", (double)g->tx_msgs);
		cJSON_AddNumberToObject(o, "rx_messages", (double)g->rx_msgs);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

/* ---- listeners and the manager ---- */

int
vrg_listening(const struct vrg_mgr *m, uint16_t port)
{
	for (const struct vrg_listener *l = m->listeners; l != NULL; l = l->next)
		if (l->port == port)
			return 1;
	return 0;
}

int
vrg_listen(struct vrg_mgr *m, uint16_t port, vrg_accept_cb *cb, void *arg)
{
	struct vrg_listener *l;

	if (port == 0 || vrg_listening(m, port) || (l = calloc(1, sizeof(*l))) == NULL)
		return -1;
	l->port = port;
	l->cb = cb;
	l->arg = arg;
	l->next = m->listeners;
	m->listeners = l;
	return 0;
}

struct vrg_mgr *
vrg_mgr_new(struct visor *v)
{
	struct vrg_mgr *m = calloc(1, sizeof(*m));
	const cJSON *sn = cJSON_GetObjectItemCaseSensitive(v->cfg, "setup_nodes"), *it;
	const char *rf = sw_cfg_str(v->cfg, "route_finder");
	static const char *const labels[] = {"outcome", NULL};

	if (m == NULL)
		return NULL;
	m->v = v;
	if (rf == NULL || sw_strlcpy(m->route_finder, rf, sizeof(m->route_finder)) == -1) {
		sw_log_error(v->name, "route_finder must be a URL", NULL);
		goto fail;
	}
	if (cJSON_IsArray(sn) && cJSON_GetArraySize(sn) > 0) {
		m->setup_nodes = calloc((size_t)cJSON_GetArraySize(sn), SW_PK_LEN);
		if (m->setup_nodes == NULL)
			goto fail;
		cJSON_ArrayForEach(it, sn) {
			if (!cJSON_IsString(it) ||
			    sw_pk_parse(m->setup_nodes[m->nsetup], it->valuestring) == -1) {
				sw_log_error(v->name, "setup_nodes must be public keys", NULL);
				goto fail;
			}
			m->nsetup++;
		}
	}
	if ((v->rt = vrt_new(v, &vrg_router_hooks)) == NULL ||
	    (m->http = sw_http_client_new(sw_svc_base(v->svc), v->name)) == NULL)
		goto fail;
	m->m_groups = sw_metric_new(sw_svc_metrics(v->svc), "route_groups_total",
	    "route groups by outcome", SW_COUNTER, labels, NULL, 0);
	return m;
fail:
	vrg_mgr_free(m);
	return NULL;
}

int
vrg_mgr_start(struct vrg_mgr *m)
{
	visor_dmsgfirst_use(m->v, m->http); /* route-finder over dmsg first */
	/*
	 * After a dial, one stream to the first setup-node is opened ahead for
	 * the next (closed unused after VRG_AHEAD_KEEP_MS), so a visor that
	 * dials again soon asks at once instead of dialling first.
	 */
	if (m->nsetup > 0 && (m->ahead = frpc_pool_new(sw_svc_base(m->v->svc), m->v->dmsg,
	    VRG_SETUP_PORT, 1, 1, VRG_AHEAD_KEEP_MS, m->v->name)) == NULL)
		return -1;
	return vrt_start(m->v->rt) == -1 || vrg_rpc_start(m) == -1 ? -1 : 0;
}

void
vrg_mgr_stop(struct vrg_mgr *m)
{
	if (m == NULL)
		return;
	m->stopping = 1;
	frpc_pool_free(m->ahead); /* its streams before the dmsg client goes */
	m->ahead = NULL;
	vrg_rpc_stop(m);
	vrg_dials_stop(m);
	/* Owners hear it (closed callback), so nobody keeps a freed group. */
	while (m->head != NULL)
		end(m->head, 1, 0, "visor stopping");
}

void
vrg_mgr_free(struct vrg_mgr *m)
{
	if (m == NULL)
		return;
	vrg_mgr_stop(m);
	while (m->listeners != NULL) {
		struct vrg_listener *l = m->listeners;

		m->listeners = l->next;
		free(l);
	}
	sw_http_client_free(m->http);
	vrt_free(m->v->rt);
	m->v->rt = NULL;
	free(m->setup_nodes);
	free(m);
}
