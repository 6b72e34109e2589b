/*
 * router.c: the routing table and the per-packet path (router.h).
 *
 * The one idea: a route id is unique in the table because this visor chose
 * it (at random), so a hash table keyed by the id alone finds the rule in
 * one probe, and the ingress check (the rule's t_id against the transport
 * the packet came on) makes the match (ingress, route_id).  A neighbour
 * that guesses an id on another transport is dropped, never forwarded.
 * Forwarding rewrites the id in a 5-byte header on the stack and hands the
 * payload to the egress transport: nothing is allocated per packet.
 *
 * An intermediary rule is one 56-byte record on a hash chain (the ids are
 * random, so their low bits are the hash); the endpoint and the owner of
 * the few edge rules of local route groups live beside, in a dict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dict.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "tp_int.h"
#include "visor.h"

/* Drop reasons, in the order of the counters. */
static const char *const drop_reasons[] = {
	"no_rule", "wrong_transport", "no_egress", "send_failed", "not_routable", "egress_full",
};
enum { DROP_NO_RULE, DROP_WRONG_TP, DROP_NO_EGRESS, DROP_SEND, DROP_NOT_ROUTABLE,
	DROP_EGRESS_FULL, DROP_N };

#define MIN_BUCKETS 64

struct rrec {
	struct rrec *next;          /* hash chain */
	uint32_t route_id, next_route_id;
	uint32_t last_ds;           /* last packet (reserved: when), tenths of a second */
	uint8_t type;               /* enum vrt_type */
	uint8_t edge;               /* has a struct redge */
	uint16_t keep_alive_s;
	uint8_t t_id[TP_ID_LEN];    /* ingress */
	uint8_t next_tp[TP_ID_LEN]; /* egress */
};

struct redge {
	struct vrt_desc desc;
	void *owner;
};

struct vrt {
	struct visor *v;
	struct vrt_hooks hooks;
	struct rrec **b;
	size_t nb, count;            /* nb a power of two */
	struct sw_dict *edges;       /* route_id -> struct redge */
	long long t0_ms;
	struct event *sweep;
	struct sw_metric *m_dropped, *m_forwarded, *m_held;
	uint64_t dropped[DROP_N];
};

static uint32_t
now_ds(const struct vrt *rt)
{
	return (uint32_t)((sw_mono_ms() - rt->t0_ms) / 100);
}

static void
drop(struct vrt *rt, int reason)
{
	const char *lv[] = {drop_reasons[reason]};

	rt->dropped[reason]++;
	sw_metric_add(rt->m_dropped, lv, 1);
}

uint64_t
vrt_dropped(const struct vrt *rt, const char *reason)
{
	for (int i = 0; i < DROP_N; i++)
		if (strcmp(drop_reasons[i], reason) == 0)
			return rt->dropped[i];
	return 0;
}

static struct rrec **
slot(const struct vrt *rt, uint32_t id)
{
	struct rrec **pp = &rt->b[id & (rt->nb - 1)];

	while (*pp != NULL && (*pp)->route_id != id)
		pp = &(*pp)->next;
	return pp;
}

static struct rrec *
lookup(const struct vrt *rt, uint32_t id)
{
	return *slot(rt, id);
}

static struct redge *
edge_of(const struct vrt *rt, const struct rrec *r)
{
	return r->edge ? sw_dict_get(rt->edges, &r->route_id, sizeof(r->route_id)) : NULL;
}

/* Double the buckets when the chains average one; a failed grow only slows lookups. */
static void
grow(struct vrt *rt)
{
	size_t nb = rt->nb * 2;
	struct rrec **b;

	if (rt->count < rt->nb || (b = calloc(nb, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < rt->nb; i++)
		while (rt->b[i] != NULL) {
			struct rrec *r = rt->b[i];

			rt->b[i] = r->next;
			r->next = b[r->route_id & (nb - 1)];
			b[r->route_id & (nb - 1)] = r;
		}
	free(rt->b);
	rt->b = b;
	rt->nb = nb;
}

int
vrt_type_of(const struct vrt *rt, uint32_t route_id)
{
	const struct rrec *r = rt != NULL ? lookup(rt, route_id) : NULL;

	return r != NULL ? r->type : -1;
}

size_t
vrt_count(const struct vrt *rt)
{
	return rt->count;
}

/* Out of the table; the owner hears why (after the rule is gone). */
static void
remove_rule(struct vrt *rt, uint32_t id, enum vrt_gone why)
{
	struct rrec **pp = slot(rt, id), *r = *pp;
	struct redge *e;
	void *owner = NULL;

	if (r == NULL)
		return;
	*pp = r->next;
	rt->count--;
	if (r->edge && sw_dict_take(rt->edges, &id, sizeof(id), (void **)&e) == 1) {
		owner = e->owner;
		free(e);
	}
	free(r);
	if (owner != NULL && rt->hooks.gone != NULL)
		rt->hooks.gone(owner, id, why);
}

int
vrt_delete(struct vrt *rt, uint32_t route_id, enum vrt_gone why)
{
	if (lookup(rt, route_id) == NULL)
		return 0;
	remove_rule(rt, route_id, why);
	return 1;
}

int
vrt_set_owner(struct vrt *rt, uint32_t route_id, void *owner)
{
	struct rrec *r = lookup(rt, route_id);
	struct redge *e = r != NULL ? edge_of(rt, r) : NULL;

	if (e == NULL)
		return -1;
	e->owner = owner;
	return 0;
}

int
vrt_reserve(struct vrt *rt, size_t n, uint32_t *ids)
{
	size_t got = 0;

	if (n == 0 || n > VRT_MAX_RESERVE || rt->count + n > VRT_MAX_RULES)
		return -1;
	while (got < n) {
		struct rrec *r, **pp;
		uint32_t id = randombytes_random();

		if (id == 0 || *(pp = slot(rt, id)) != NULL)
			continue;
		if ((r = calloc(1, sizeof(*r))) == NULL)
			goto fail;
		r->route_id = id;
		r->type = VRT_RESERVED;
		r->last_ds = now_ds(rt);
		*pp = r;
		rt->count++;
		ids[got++] = id;
		grow(rt);
	}
	return 0;
fail:
	while (got > 0)
		vrt_delete(rt, ids[--got], VRT_GONE_DELETED);
	return -1;
}

int
vrt_install(struct vrt *rt, const struct vrt_rule *in, char *err, size_t errlen)
{
	struct rrec *r = lookup(rt, in->route_id);
	struct redge *e = NULL;

	if (r == NULL || r->type != VRT_RESERVED) {
		snprintf(err, errlen, "route id %u is not reserved", in->route_id);
		return -1;
	}
	if (in->type < VRT_FORWARD || in->type > VRT_CONSUME ||
	    (in->type != VRT_INTERMEDIARY) != (in->desc != NULL) ||
	    in->keep_alive_s < 1 || in->keep_alive_s > VRT_KEEPALIVE_MAX ||
	    (in->type != VRT_CONSUME && in->next_route_id == 0)) {
		snprintf(err, errlen, "rule %u is invalid", in->route_id);
		return -1;
	}
	if (in->desc != NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    sw_dict_set(rt->edges, &in->route_id, sizeof(in->route_id), e) == -1) {
			free(e);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		e->desc = *in->desc;
	}
	r->type = in->type;
	r->edge = e != NULL;
	r->next_route_id = in->next_route_id;
	r->keep_alive_s = in->keep_alive_s;
	memcpy(r->t_id, in->t_id, TP_ID_LEN);
	memcpy(r->next_tp, in->next_tp, TP_ID_LEN);
	r->last_ds = now_ds(rt);
	return 0;
}

/* ---- packets ---- */

int
vrt_send(struct vrt *rt, uint32_t route_id, uint8_t type, const void *payload, size_t len)
{
	struct rrec *r = lookup(rt, route_id);
	struct vtp *out;

	if (r == NULL || r->type != VRT_FORWARD ||
	    (out = vtp_find(rt->v->tps, r->next_tp)) == NULL)
		return -1;
	if (vtp_send(out, type, r->next_route_id, payload, len) == -1)
		return -1;
	r->last_ds = now_ds(rt);
	return 0;
}

int
vrt_room(const struct vrt *rt, uint32_t route_id, size_t len)
{
	const struct rrec *r = lookup(rt, route_id);

	if (r == NULL || r->type != VRT_FORWARD)
		return -1;
	return vtp_room(vtp_find(rt->v->tps, r->next_tp), len);
}

void
vrt_rx(struct vrt *rt, struct vtp *t, const struct vtp_pkt *p)
{
	struct rrec *r;
	struct vtp *out;

	if (rt == NULL)
		return;
	r = lookup(rt, p->route_id);
	if (r == NULL || r->type == VRT_RESERVED || r->type == VRT_FORWARD) {
		drop(rt, DROP_NO_RULE);
		return;
	}
	if (memcmp(r->t_id, t->id, TP_ID_LEN) != 0) {
		drop(rt, DROP_WRONG_TP);
		return;
	}
	if (p->type != VTP_PKT_DATA && p->type != VTP_PKT_CLOSE &&
	    p->type != VTP_PKT_KEEPALIVE && p->type != VTP_PKT_HANDSHAKE) {
		drop(rt, DROP_NOT_ROUTABLE);
		return;
	}
	r->last_ds = now_ds(rt);
	if (r->type == VRT_CONSUME) {
		struct redge *e = edge_of(rt, r);

		if (p->type == VTP_PKT_CLOSE) {
			remove_rule(rt, p->route_id, VRT_GONE_CLOSE);
			return;
		}
		if (e == NULL || e->owner == NULL) {
			drop(rt, DROP_NO_RULE);
			return;
		}
		rt->hooks.deliver(e->owner, p->type, p->payload, p->len);
		return;
	}
	/*
	 * Intermediary: the same payload, the next id, the next transport.  An
	 * egress with no room gets the packet later and the ingress stops
	 * reading meanwhile (tp_hold.c); a packet an ingress delivers behind
	 * its held one all the same is dropped (none should come).
	 */
	if ((out = vtp_find(rt->v->tps, r->next_tp)) == NULL) {
		drop(rt, DROP_NO_EGRESS);
	} else if (vtp_holding(t)) {
		drop(rt, DROP_EGRESS_FULL);
	} else if (vtp_room(out, p->len) == 0) {
		if (vtp_hold(t, out, p->type, r->next_route_id, p->payload, p->len) == 0)
			sw_metric_inc(rt->m_held);
		else
			drop(rt, DROP_EGRESS_FULL);
	} else if (vtp_send(out, p->type, r->next_route_id, p->payload, p->len) == -1) {
		drop(rt, DROP_SEND);
	} else {
		sw_metric_inc(rt->m_forwarded);
	}
	if (p->type == VTP_PKT_CLOSE)
		remove_rule(rt, p->route_id, VRT_GONE_CLOSE);
}

void
vrt_held_done(struct vrt *rt, int outcome)
{
	if (rt == NULL)
		return;
	if (outcome == 1)
		sw_metric_inc(rt->m_forwarded);
	else
		drop(rt, outcome == 0 ? DROP_NO_EGRESS : DROP_SEND);
}

/*
 * t is going: every rule in or out of it goes too.  An intermediary tells
 * the other side with a CLOSE: down the route when its ingress closed (the
 * far end's route group learns it), back towards the source on the ingress
 * when its egress closed (harmless there: the neighbour keys nothing by our
 * id, so it counts a drop).
 */
void
vrt_tp_closed(struct vrt *rt, const struct vtp *t)
{
	uint32_t ids[256];
	size_t n;

	if (rt == NULL)
		return;
	do {
		n = 0;
		for (size_t i = 0; i < rt->nb && n < 256; i++)
			for (struct rrec *c = rt->b[i]; c != NULL && n < 256; c = c->next) {
				int in = c->type != VRT_FORWARD && c->type != VRT_RESERVED &&
				    memcmp(c->t_id, t->id, TP_ID_LEN) == 0;
				int out = c->type != VRT_CONSUME && c->type != VRT_RESERVED &&
				    memcmp(c->next_tp, t->id, TP_ID_LEN) == 0;

				if (in || out)
					ids[n++] = c->route_id;
			}
		for (size_t i = 0; i < n; i++) {
			struct rrec *r = lookup(rt, ids[i]);
			uint8_t code = 2;

			if (r == NULL)
				continue;
			if (r->type == VRT_INTERMEDIARY) {
				struct vtp *other;

				if (memcmp(r->t_id, t->id, TP_ID_LEN) == 0) {
					other = vtp_find(rt->v->tps, r->next_tp);
					if (other != NULL && other != t)
						vtp_send(other, VTP_PKT_CLOSE, r->next_route_id, &code, 1);
				} else {
					other = vtp_find(rt->v->tps, r->t_id);
					if (other != NULL && other != t)
						vtp_send(other, VTP_PKT_CLOSE, r->route_id, &code, 1);
				}
			}
			remove_rule(rt, ids[i], VRT_GONE_TRANSPORT);
		}
	} while (n == 256);
}

/* ---- expiry ---- */

static void
sweep(evutil_socket_t fd, short what, void *arg)
{
	struct vrt *rt = arg;
	uint32_t now = now_ds(rt), ids[512];
	size_t n = 0;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < rt->nb && n < 512; i++)
		for (struct rrec *r = rt->b[i]; r != NULL && n < 512; r = r->next) {
			uint32_t ttl = r->type == VRT_RESERVED ? VRT_RESERVE_MS / 100 :
			    (uint32_t)r->keep_alive_s * 10;

			if (now - r->last_ds >= ttl)
				ids[n++] = r->route_id;
		}
	for (size_t i = 0; i < n; i++)
		vrt_delete(rt, ids[i], VRT_GONE_EXPIRED);
	/* A full batch: more may be due, look again soon. */
	sw_timer_in(rt->sweep, n == 512 ? 10 : 250);
}

/* ---- listing ---- */

cJSON *
vrt_json(const struct vrt *rt)
{
	cJSON *a = cJSON_CreateArray();
	uint32_t now = rt != NULL ? now_ds(rt) : 0;
	time_t wall = time(NULL);

	if (a == NULL || rt == NULL)
		return a;
	for (size_t i = 0; i < rt->nb; i++)
		for (const struct rrec *r = rt->b[i]; r != NULL; r = r->next) {
			const struct redge *e = edge_of(rt, r);
			struct vrt_rule out = {.route_id = r->route_id,
			    .next_route_id = r->next_route_id, .type = r->type,
			    .keep_alive_s = r->keep_alive_s, .desc = e != NULL ?
			    (struct vrt_desc *)&e->desc : NULL};
			long long left = (long long)r->keep_alive_s * 10 - (now - r->last_ds);
			cJSON *o;

			if (r->type == VRT_RESERVED)
				continue;
			memcpy(out.t_id, r->t_id, TP_ID_LEN);
			memcpy(out.next_tp, r->next_tp, TP_ID_LEN);
			if ((o = vrt_rule_json(&out)) == NULL)
				continue;
			cJSON_AddNumberToObject(o, "expires",
			    (double)(wall + (left > 0 ? left / 10 : 0)));
			cJSON_AddBoolToObject(o, "local", e != NULL && e->owner != NULL);
			cJSON_AddItemToArray(a, o);
		}
	return a;
}

/* ---- lifecycle ---- */

struct vrt *
vrt_new(struct visor *v, const struct vrt_hooks *hooks)
{
	struct vrt *rt = calloc(1, sizeof(*rt));
	static const char *const labels[] = {"reason", NULL};

	if (rt == NULL)
		return NULL;
	rt->v = v;
	rt->hooks = *hooks;
	rt->nb = MIN_BUCKETS;
	rt->t0_ms = sw_mono_ms();
	if ((rt->b = calloc(rt->nb, sizeof(*rt->b))) == NULL ||
	    (rt->edges = sw_dict_new(free)) == NULL ||
	    (rt->sweep = evtimer_new(sw_svc_base(v->svc), sweep, rt)) == NULL) {
		sw_log_error(v->name, "router: out of memory", NULL);
		vrt_free(rt);
		return NULL;
	}
	rt->m_dropped = sw_metric_new(sw_svc_metrics(v->svc), "router_dropped_total",
	    "packets the router dropped, by reason", SW_COUNTER, labels, NULL, 0);
	rt->m_forwarded = sw_metric_new(sw_svc_metrics(v->svc), "router_forwarded_total",
	    "packets forwarded as an intermediary", SW_COUNTER, NULL, NULL, 0);
	rt->m_held = sw_metric_new(sw_svc_metrics(v->svc), "router_held_total",
	    "forwarded packets held for an egress with no room (their ingress paused)",
	    SW_COUNTER, NULL, NULL, 0);
	return rt;
}

int
vrt_start(struct vrt *rt)
{
	sw_timer_in(rt->sweep, 250);
	return 0;
}

void
vrt_free(struct vrt *rt)
{
	if (rt == NULL)
		return;
	if (rt->sweep != NULL)
		event_free(rt->sweep);
	/* Owners are freed by their own module; no hooks from here on. */
	for (size_t i = 0; rt->b != NULL && i < rt->nb; i++)
		while (rt->b[i] != NULL) {
			struct rrec *r = rt->b[i];

			rt->b[i] = r->next;
			free(r);
		}
	free(rt->b);
	sw_dict_free(rt->edges);
	free(rt);
}
