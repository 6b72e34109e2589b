/*
 * router.c: the routing table and the per-packet path (router.h).
 *
 * The one idea: a route id is unique in the table because this visor chose
 * it, so one dict keyed by the 4-byte id finds the rule, and the ingress
 * check (the rule's t_id against the transport the packet came on) makes
 * the match (ingress, route_id).  A neighbour that guesses an id on another
 * transport is dropped, never forwarded.  Forwarding rewrites the id in a
 * 5-byte header on the stack and hands the payload to the egress transport:
 * nothing is allocated per packet.
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
	"no_rule", "wrong_transport", "no_egress", "send_failed", "not_routable",
};
enum { DROP_NO_RULE, DROP_WRONG_TP, DROP_NO_EGRESS, DROP_SEND, DROP_NOT_ROUTABLE, DROP_N };

struct vrt {
	struct visor *v;
	struct vrt_hooks hooks;
	struct sw_dict *rules; /* route_id (4 bytes) -> struct vrt_rule */
	struct event *sweep;
	struct sw_metric *m_dropped, *m_forwarded;
	uint64_t dropped[DROP_N];
};

static void
rule_free(void *p)
{
	struct vrt_rule *r = p;

	if (r != NULL)
		free(r->desc);
	free(r);
}

const char *
vrt_type_str(uint8_t type)
{
	switch (type) {
	case VRT_FORWARD:
		return "forward";
	case VRT_INTERMEDIARY:
		return "intermediary";
	case VRT_CONSUME:
		return "consume";
	default:
		return "reserved";
	}
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

static struct vrt_rule *
lookup(const struct vrt *rt, uint32_t id)
{
	return sw_dict_get(rt->rules, &id, sizeof(id));
}

const struct vrt_rule *
vrt_get(const struct vrt *rt, uint32_t route_id)
{
	return lookup(rt, route_id);
}

size_t
vrt_count(const struct vrt *rt)
{
	return sw_dict_size(rt->rules);
}

/* Out of the table; the owner hears why (after the rule is gone). */
static void
remove_rule(struct vrt *rt, struct vrt_rule *r, enum vrt_gone why)
{
	uint32_t id = r->route_id;
	void *owner = r->owner;
	void *val;

	if (sw_dict_take(rt->rules, &id, sizeof(id), &val) != 1)
		return;
	rule_free(val);
	if (owner != NULL && rt->hooks.gone != NULL)
		rt->hooks.gone(owner, id, why);
}

int
vrt_delete(struct vrt *rt, uint32_t route_id, enum vrt_gone why)
{
	struct vrt_rule *r = lookup(rt, route_id);

	if (r == NULL)
		return 0;
	remove_rule(rt, r, why);
	return 1;
}

int
vrt_set_owner(struct vrt *rt, uint32_t route_id, void *owner)
{
	struct vrt_rule *r = lookup(rt, route_id);

	if (r == NULL || r->type == VRT_RESERVED)
		return -1;
	r->owner = owner;
	return 0;
}

int
vrt_reserve(struct vrt *rt, size_t n, uint32_t *ids)
{
	size_t got = 0;

	if (n == 0 || n > VRT_MAX_RESERVE || sw_dict_size(rt->rules) + n > VRT_MAX_RULES)
		return -1;
	while (got < n) {
		struct vrt_rule *r;
		uint32_t id = randombytes_random();

		if (id == 0 || lookup(rt, id) != NULL)
			continue;
		if ((r = calloc(1, sizeof(*r))) == NULL)
			goto fail;
		r->route_id = id;
		r->type = VRT_RESERVED;
		r->last_ms = sw_mono_ms();
		if (sw_dict_add(rt->rules, &id, sizeof(id), r) != 1) {
			free(r);
			goto fail;
		}
		ids[got++] = id;
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
	struct vrt_rule *r = lookup(rt, in->route_id);
	struct vrt_desc *d = NULL;

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
		if ((d = malloc(sizeof(*d))) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		*d = *in->desc;
	}
	*r = *in;
	r->desc = d;
	r->owner = NULL;
	r->last_ms = sw_mono_ms();
	return 0;
}

/* ---- packets ---- */

int
vrt_send(struct vrt *rt, uint32_t route_id, uint8_t type, const void *payload, size_t len)
{
	struct vrt_rule *r = lookup(rt, route_id);
	struct vtp *out;

	if (r == NULL || r->type != VRT_FORWARD ||
	    (out = vtp_find(rt->v->tps, r->next_tp)) == NULL)
		return -1;
	if (vtp_send(out, type, r->next_route_id, payload, len) == -1)
		return -1;
	r->last_ms = sw_mono_ms();
	return 0;
}

void
vrt_rx(struct vrt *rt, struct vtp *t, const struct vtp_pkt *p)
{
	struct vrt_rule *r = rt != NULL ? lookup(rt, p->route_id) : NULL;
	struct vtp *out;

	if (rt == NULL)
		return;
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
	r->last_ms = sw_mono_ms();
	if (r->type == VRT_CONSUME) {
		void *owner = r->owner;

		if (p->type == VTP_PKT_CLOSE) {
			remove_rule(rt, r, VRT_GONE_CLOSE);
			return;
		}
		if (owner == NULL) {
			drop(rt, DROP_NO_RULE);
			return;
		}
		rt->hooks.deliver(owner, p->type, p->payload, p->len);
		return;
	}
	/* Intermediary: the same payload, the next id, the next transport. */
	if ((out = vtp_find(rt->v->tps, r->next_tp)) == NULL)
		drop(rt, DROP_NO_EGRESS);
	else if (vtp_send(out, p->type, r->next_route_id, p->payload, p->len) == -1)
		drop(rt, DROP_SEND);
	else
		sw_metric_inc(rt->m_forwarded);
	if (p->type == VTP_PKT_CLOSE)
		remove_rule(rt, r, VRT_GONE_CLOSE);
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
	struct sw_dict_iter it;
	uint32_t ids[256];
	size_t n;

	if (rt == NULL)
		return;
	do {
		struct vrt_rule *c;

		n = 0;
		for (sw_dict_iter_init(&it, rt->rules);
		    n < 256 && sw_dict_next(&it, NULL, NULL, (void **)&c);) {
			int in = c->type != VRT_FORWARD && c->type != VRT_RESERVED &&
			    memcmp(c->t_id, t->id, TP_ID_LEN) == 0;
			int out = c->type != VRT_CONSUME && c->type != VRT_RESERVED &&
			    memcmp(c->next_tp, t->id, TP_ID_LEN) == 0;

			if (in || out)
				ids[n++] = c->route_id;
		}
		for (size_t i = 0; i < n; i++) {
			struct vrt_rule *r = lookup(rt, ids[i]);
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
			remove_rule(rt, r, VRT_GONE_TRANSPORT);
		}
	} while (n == 256);
}

/* ---- expiry ---- */

static void
sweep(evutil_socket_t fd, short what, void *arg)
{
	struct vrt *rt = arg;
	long long now = sw_mono_ms();
	struct sw_dict_iter it;
	struct vrt_rule *r;
	uint32_t ids[512];
	size_t n = 0;

	(void)fd;
	(void)what;
	for (sw_dict_iter_init(&it, rt->rules); n < 512 && sw_dict_next(&it, NULL, NULL,
	    (void **)&r);) {
		long long ttl = r->type == VRT_RESERVED ? VRT_RESERVE_MS :
		    (long long)r->keep_alive_s * 1000;

		if (now - r->last_ms >= ttl)
			ids[n++] = r->route_id;
	}
	for (size_t i = 0; i < n; i++)
		vrt_delete(rt, ids[i], VRT_GONE_EXPIRED);
	/* A full batch: more may be due, look again soon. */
	sw_timer_in(rt->sweep, n == 512 ? 10 : 250);
}

/* ---- JSON ---- */

cJSON *
vrt_desc_json(const struct vrt_desc *d)
{
	cJSON *o = cJSON_CreateObject();
	char hex[SW_PK_HEX];

	if (o == NULL)
		return NULL;
	sw_hex_encode(hex, d->src_pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "src_pk", hex);
	cJSON_AddNumberToObject(o, "src_port", d->src_port);
	sw_hex_encode(hex, d->dst_pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "dst_pk", hex);
	cJSON_AddNumberToObject(o, "dst_port", d->dst_port);
	return o;
}

static int
json_u32(const cJSON *o, const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
	    v->valuedouble != (double)(uint32_t)v->valuedouble)
		return -1;
	*out = (uint32_t)v->valuedouble;
	return 0;
}

int
vrt_desc_parse(const cJSON *j, struct vrt_desc *d)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "src_pk");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "dst_pk");
	uint32_t sp, dp;

	if (!cJSON_IsObject(j) || !cJSON_IsString(s) || !cJSON_IsString(t) ||
	    sw_pk_parse(d->src_pk, s->valuestring) == -1 ||
	    sw_pk_parse(d->dst_pk, t->valuestring) == -1 ||
	    json_u32(j, "src_port", 0, 65535, &sp) == -1 ||
	    json_u32(j, "dst_port", 0, 65535, &dp) == -1)
		return -1;
	d->src_port = (uint16_t)sp;
	d->dst_port = (uint16_t)dp;
	return 0;
}

cJSON *
vrt_rule_json(const struct vrt_rule *r)
{
	cJSON *o = cJSON_CreateObject();
	char id[TP_ID_TEXT];

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "type", vrt_type_str(r->type));
	cJSON_AddNumberToObject(o, "route_id", r->route_id);
	if (r->type == VRT_INTERMEDIARY || r->type == VRT_CONSUME) {
		tp_id_format(id, r->t_id);
		cJSON_AddStringToObject(o, "t_id", id);
	}
	if (r->type == VRT_FORWARD || r->type == VRT_INTERMEDIARY) {
		cJSON_AddNumberToObject(o, "next_route_id", r->next_route_id);
		tp_id_format(id, r->next_tp);
		cJSON_AddStringToObject(o, "next_tp_id", id);
	}
	if (r->desc != NULL)
		cJSON_AddItemToObject(o, "desc", vrt_desc_json(r->desc));
	cJSON_AddNumberToObject(o, "keep_alive_s", r->keep_alive_s);
	return o;
}

static int
json_tp(const cJSON *o, const char *name, uint8_t out[TP_ID_LEN])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? tp_id_parse(out, v->valuestring) : -1;
}

int
vrt_rule_parse(const cJSON *j, struct vrt_rule *r, struct vrt_desc *desc, char *err,
    size_t errlen)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "desc");
	uint32_t ka = VRT_KEEPALIVE_DEF;

	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(j) || !cJSON_IsString(type))
		goto fail;
	if (strcmp(type->valuestring, "forward") == 0)
		r->type = VRT_FORWARD;
	else if (strcmp(type->valuestring, "intermediary") == 0)
		r->type = VRT_INTERMEDIARY;
	else if (strcmp(type->valuestring, "consume") == 0)
		r->type = VRT_CONSUME;
	else
		goto fail;
	if (json_u32(j, "route_id", 1, UINT32_MAX, &r->route_id) == -1)
		goto fail;
	if (cJSON_GetObjectItemCaseSensitive(j, "keep_alive_s") != NULL &&
	    json_u32(j, "keep_alive_s", 1, VRT_KEEPALIVE_MAX, &ka) == -1)
		goto fail;
	r->keep_alive_s = (uint16_t)ka;
	if (r->type != VRT_FORWARD && json_tp(j, "t_id", r->t_id) == -1)
		goto fail;
	if (r->type != VRT_CONSUME &&
	    (json_u32(j, "next_route_id", 1, UINT32_MAX, &r->next_route_id) == -1 ||
	    json_tp(j, "next_tp_id", r->next_tp) == -1))
		goto fail;
	if (r->type == VRT_INTERMEDIARY) {
		if (d != NULL)
			goto fail; /* an intermediary learns no endpoint */
	} else {
		if (vrt_desc_parse(d, desc) == -1)
			goto fail;
		r->desc = desc;
	}
	return 0;
fail:
	snprintf(err, errlen, "malformed rule");
	return -1;
}

cJSON *
vrt_json(const struct vrt *rt)
{
	cJSON *a = cJSON_CreateArray();
	struct sw_dict_iter it;
	struct vrt_rule *r;
	long long now = sw_mono_ms();
	time_t wall = time(NULL);

	if (a == NULL || rt == NULL)
		return a;
	for (sw_dict_iter_init(&it, (struct sw_dict *)rt->rules);
	    sw_dict_next(&it, NULL, NULL, (void **)&r);) {
		cJSON *o;
		long long left;

		if (r->type == VRT_RESERVED || (o = vrt_rule_json(r)) == NULL)
			continue;
		left = (long long)r->keep_alive_s * 1000 - (now - r->last_ms);
		cJSON_AddNumberToObject(o, "expires", (double)(wall + (left > 0 ? left / 1000 : 0)));
		cJSON_AddBoolToObject(o, "local", r->owner != NULL);
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
	if ((rt->rules = sw_dict_new(rule_free)) == NULL ||
	    (rt->sweep = evtimer_new(sw_svc_base(v->svc), sweep, rt)) == NULL) {
		sw_log_error(v->name, "router: out of memory", NULL);
		vrt_free(rt);
		return NULL;
	}
	rt->m_dropped = sw_metric_new(sw_svc_metrics(v->svc), "router_dropped_total",
	    "packets the router dropped, by reason", SW_COUNTER, labels, NULL, 0);
	rt->m_forwarded = sw_metric_new(sw_svc_metrics(v->svc), "router_forwarded_total",
	    "packets forwarded as an intermediary", SW_COUNTER, NULL, NULL, 0);
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
	rt->hooks.gone = NULL;
	sw_dict_free(rt->rules);
	free(rt);
}
