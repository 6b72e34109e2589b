/*
 * setup.c: one dial_route_group request (routing.md, steps 2-6).
 *
 * The one idea: a request is a list of the visors on its two paths, each
 * with the ids it reserved, and four phases, each a fan-out that waits for
 * every answer (or its deadline) before the next: transport-discovery
 * lookups, reserve_ids, add_intermediary_rules, add_edge_rules.  The first
 * failure is remembered; when its phase has settled, every visor that
 * reserved ids gets delete_rules for exactly those ids (fire and forget,
 * each with its own 5 s deadline) and the asker gets the failure.  So a
 * failed setup leaves no rule behind, and nothing is sent to any visor
 * until every check has passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "frpc.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "setup_node.h"

#define MAX_IDS 2 /* a visor holds at most one rule per path */

enum phase {
	PH_TRANSPORTS = 0,
	PH_RESERVE,
	PH_INTERMEDIARY,
	PH_EDGE,
	PH_DONE,
};

static const char *const phase_method[] = {
	"transport check", "reserve_ids", "add_intermediary_rules", "add_edge_rules", "done",
};

struct sn_req;

struct sn_visor {
	struct sn_req *r;
	uint8_t pk[SW_PK_LEN];
	int want;                 /* ids it must reserve */
	int got;                  /* ids it did reserve (kept even from a bad answer) */
	int used;                 /* ids given to rules so far */
	uint32_t ids[MAX_IDS];
	struct frpc_call *call;
	struct frpc_call *ahead;  /* the stream of its phase 2 or 3 call, opened in phase 1 */
	cJSON *inter;             /* its intermediary rules */
};

struct sn_req {
	struct sn_req *prev, *next;
	struct sn *sn;
	struct frpc_req *req;     /* NULL once answered */
	struct sn_ask a;
	struct sn_visor v[SN_MAX_VISORS];
	size_t nv, src, dst;
	enum phase phase;
	int pending;              /* calls of this phase not yet answered */
	int http_pending;         /* lookups not yet answered (cannot be cancelled) */
	int failed;
	char err[320];
	long long t0_ms;
	struct event *timer;
	cJSON *fwd_rule, *cons_rule, *edge;
};

static void next_phase(struct sn_req *r);

static size_t
visor_ix(struct sn_req *r, const uint8_t pk[SW_PK_LEN])
{
	for (size_t i = 0; i < r->nv; i++)
		if (memcmp(r->v[i].pk, pk, SW_PK_LEN) == 0)
			return i;
	memcpy(r->v[r->nv].pk, pk, SW_PK_LEN);
	r->v[r->nv].r = r;
	return r->nv++;
}

static void
count(struct sw_metric *m, const char *label)
{
	const char *lv[] = {label};

	sw_metric_add(m, lv, 1);
}

/* The first failure wins: "<method> on <pk>: <reason>" (or a check's text). */
static void
fail_on(struct sn_req *r, const struct sn_visor *v, const char *reason)
{
	char pk[SW_PK_HEX];

	if (r->failed)
		return;
	r->failed = 1;
	count(r->sn->m_failures, phase_method[r->phase]);
	if (v == NULL) {
		snprintf(r->err, sizeof(r->err), "%s", reason);
		return;
	}
	sw_hex_encode(pk, v->pk, SW_PK_LEN);
	snprintf(r->err, sizeof(r->err), "%s on %s: %s", phase_method[r->phase], pk, reason);
}

static void
req_free(struct sn_req *r)
{
	struct sn *sn = r->sn;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (sn->reqs == r)
		sn->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	for (size_t i = 0; i < r->nv; i++) {
		frpc_call_cancel(r->v[i].call);
		frpc_call_cancel(r->v[i].ahead);
		cJSON_Delete(r->v[i].inter);
	}
	if (r->timer != NULL)
		event_free(r->timer);
	cJSON_Delete(r->fwd_rule);
	cJSON_Delete(r->cons_rule);
	cJSON_Delete(r->edge);
	free(r);
}

static void
forgot(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	(void)st;
	(void)result;
	(void)err;
	(void)arg;
}

/* delete_rules to every visor that reserved ids for this request. */
static void
rollback(struct sn_req *r)
{
	struct sn *sn = r->sn;

	for (size_t i = 0; i < r->nv; i++) {
		struct sn_visor *v = &r->v[i];
		cJSON *p, *ids;

		if (v->got == 0)
			continue;
		p = cJSON_CreateObject();
		ids = cJSON_AddArrayToObject(p, "ids");
		for (int k = 0; k < v->got; k++)
			cJSON_AddItemToArray(ids, cJSON_CreateNumber(v->ids[k]));
		frpc_call(sw_svc_base(sn->svc), sn->dmsg, v->pk, SN_VISOR_PORT, "delete_rules", p,
		    SN_ROLLBACK_MS, forgot, NULL, sn->name);
		cJSON_Delete(p);
	}
}

/* Answer the asker; the record goes when no lookup can still call back. */
static void
finish(struct sn_req *r)
{
	struct sn *sn = r->sn;
	double secs = (double)(sw_mono_ms() - r->t0_ms) / 1000.0;

	if (r->req != NULL) {
		if (r->failed) {
			if (r->phase > PH_TRANSPORTS)
				rollback(r);
			frpc_reply_error(r->req, "%s", r->err);
			count(sn->m_requests, r->phase > PH_TRANSPORTS ? "failed" : "refused");
		} else {
			cJSON *res = cJSON_CreateObject();

			cJSON_AddItemToObject(res, "forward", r->fwd_rule);
			cJSON_AddItemToObject(res, "consume", r->cons_rule);
			r->fwd_rule = r->cons_rule = NULL;
			frpc_reply(r->req, res);
			count(sn->m_requests, "ok");
			sw_metric_observe(sn->m_latency, NULL, secs);
			/* the next request through these visors finds streams open */
			for (size_t i = 0; sn->pool != NULL && i < r->nv; i++)
				frpc_pool_fill(sn->pool, r->v[i].pk);
		}
		r->req = NULL;
		sn->in_flight--;
	}
	r->phase = PH_DONE;
	for (size_t i = 0; i < r->nv; i++) {
		frpc_call_cancel(r->v[i].call);
		frpc_call_cancel(r->v[i].ahead);
		r->v[i].call = r->v[i].ahead = NULL;
	}
	if (r->http_pending == 0)
		req_free(r);
}

static void
settle(struct sn_req *r)
{
	if (--r->pending > 0)
		return;
	if (r->failed)
		finish(r);
	else
		next_phase(r);
}

static void
deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sn_req *r = arg;

	(void)fd;
	(void)what;
	/* Calls still out are cut; those that reserved are rolled back. */
	for (size_t i = 0; i < r->nv; i++)
		if (r->v[i].call != NULL)
			fail_on(r, &r->v[i], "timeout");
	fail_on(r, NULL, "timeout");
	finish(r);
}

/* ---- phase 0: every t_id registered with the hop's edges ---- */

struct tp_check {
	struct tp_check *next;        /* in sn->lookups while waiting */
	struct sn_req *r;
	uint8_t t_id[TP_ID_LEN];
	uint8_t lo[SW_PK_LEN], hi[SW_PK_LEN];
};

static void tp_pump(struct sn *sn);

/* A lookup is over (answered, or dropped unasked): the request may go. */
static void
tp_settled(struct tp_check *c, const char *why)
{
	struct sn_req *r = c->r;

	r->http_pending--;
	if (why != NULL)
		fail_on(r, NULL, why);
	free(c);
	if (r->phase == PH_DONE) {
		if (r->http_pending == 0)
			req_free(r);
		return;
	}
	settle(r);
}

static void
tp_answer(const struct sw_http_resp *resp, void *arg)
{
	struct tp_check *c = arg;
	struct sn *sn = c->r->sn;
	const cJSON *edges = cJSON_GetObjectItemCaseSensitive(resp->json, "edges");
	const cJSON *e0 = cJSON_GetArrayItem(edges, 0), *e1 = cJSON_GetArrayItem(edges, 1);
	uint8_t a[SW_PK_LEN], b[SW_PK_LEN];
	char id[TP_ID_TEXT], why[128];
	const char *bad = NULL;

	sn->lookups_out--;
	tp_id_format(id, c->t_id);
	if (resp->status == 404) {
		snprintf(why, sizeof(why), "transport %s is not registered", id);
		bad = why;
	} else if (resp->status != 200) {
		snprintf(why, sizeof(why), "transport-discovery answered %d for %s", resp->status,
		    id);
		bad = why;
	} else if (cJSON_GetArraySize(edges) != 2 || !cJSON_IsString(e0) || !cJSON_IsString(e1) ||
	    sw_pk_parse(a, e0->valuestring) == -1 || sw_pk_parse(b, e1->valuestring) == -1 ||
	    !sn_same_edges(a, b, c->lo, c->hi)) {
		snprintf(why, sizeof(why), "transport %s has other edges", id);
		bad = why;
	}
	tp_settled(c, bad);
	tp_pump(sn);
}

/* Start waiting lookups while there are slots; those of ended requests are dropped. */
static void
tp_pump(struct sn *sn)
{
	while (sn->lookups != NULL && sn->lookups_out < SN_MAX_LOOKUPS) {
		struct tp_check *c = sn->lookups;
		char url[400], id[TP_ID_TEXT];

		if ((sn->lookups = c->next) == NULL)
			sn->lookups_tail = &sn->lookups;
		if (c->r->phase == PH_DONE) {
			tp_settled(c, NULL);
			continue;
		}
		tp_id_format(id, c->t_id);
		snprintf(url, sizeof(url), "%s/transports/id:%s", sn->tpd, id);
		if (sw_http_request(sn->http, "GET", url, NULL, 0,
		    &(struct sw_http_opts){.timeout_ms = SN_CALL_MS}, tp_answer, c) == -1) {
			tp_settled(c, "cannot ask transport-discovery");
			continue;
		}
		sn->lookups_out++;
	}
}

static void
check_hop(struct sn_req *r, const struct sn_hop *h)
{
	struct sn *sn = r->sn;
	struct tp_check *c;
	const char *lv[] = {"feed"};

	if (sn_feed_confirms(sn, h->t_id, h->from, h->to)) {
		sw_metric_add(sn->m_checks, lv, 1);
		return;
	}
	lv[0] = "http";
	sw_metric_add(sn->m_checks, lv, 1);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		fail_on(r, NULL, "out of memory");
		return;
	}
	c->r = r;
	memcpy(c->t_id, h->t_id, TP_ID_LEN);
	memcpy(c->lo, h->from, SW_PK_LEN);
	memcpy(c->hi, h->to, SW_PK_LEN);
	if (sn->lookups_tail == NULL)
		sn->lookups_tail = &sn->lookups;
	*sn->lookups_tail = c;
	sn->lookups_tail = &c->next;
	r->pending++;
	r->http_pending++;
}

static int
hop_seen(const struct sn_req *r, const struct sn_path *p, size_t upto, const uint8_t *id)
{
	for (size_t i = 0; i < upto; i++)
		if (memcmp(p->hop[i].t_id, id, TP_ID_LEN) == 0)
			return 1;
	if (p == &r->a.rev)
		for (size_t i = 0; i < r->a.fwd.n; i++)
			if (memcmp(r->a.fwd.hop[i].t_id, id, TP_ID_LEN) == 0)
				return 1;
	return 0;
}

static void
phase_transports(struct sn_req *r)
{
	r->pending = 1; /* held until every lookup is out */
	for (size_t i = 0; i < r->a.fwd.n; i++)
		if (!hop_seen(r, &r->a.fwd, i, r->a.fwd.hop[i].t_id))
			check_hop(r, &r->a.fwd.hop[i]);
	for (size_t i = 0; i < r->a.rev.n; i++)
		if (!hop_seen(r, &r->a.rev, i, r->a.rev.hop[i].t_id))
			check_hop(r, &r->a.rev.hop[i]);
	tp_pump(r->sn); /* answers come from the loop, so r lives through this */
	settle(r);
}

/* ---- phase 1: reserve_ids on every visor, in parallel ---- */

/*
 * A stream to a visor's port 136, not asked yet: one setup-node opened
 * ahead after an earlier request through that visor (sn->pool, see
 * setup_node.c), else dialled now.
 */
static struct frpc_call *
take(struct sn *sn, const uint8_t pk[SW_PK_LEN])
{
	if (sn->pool != NULL)
		return frpc_pool_take(sn->pool, pk);
	return frpc_call_open(sw_svc_base(sn->svc), sn->dmsg, pk, SN_VISOR_PORT, SN_CALL_MS,
	    sn->name);
}

/* call (NULL: none) asked method(p); NULL when it could not be. */
static struct frpc_call *
visor_call(struct frpc_call *call, const char *method, const cJSON *p, frpc_done_cb *cb,
    void *arg)
{
	if (call != NULL && frpc_call_ask(call, method, p, SN_CALL_MS, cb, arg) == -1) {
		frpc_call_cancel(call);
		call = NULL;
	}
	return call;
}

/*
 * Each visor but src gets one more call after reserve_ids (a middle one
 * add_intermediary_rules, dst add_edge_rules).  Its stream is opened now,
 * with the reserve_ids ones, and asked when its phase comes: the dial's
 * lookup, relay and KK round trip then overlap this phase instead of
 * adding to the next one.  Nothing is sent on it before the ask (one
 * request per stream), and a stream that is gone by then is dialled again.
 */
static void
open_ahead(struct sn_req *r)
{
	for (size_t i = 0; i < r->nv; i++)
		if (i != r->src)
			r->v[i].ahead = take(r->sn, r->v[i].pk);
}

static void
reserved(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct sn_visor *v = arg;
	struct sn_req *r = v->r;
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(result, "ids"), *it;
	int bad = 0;

	v->call = NULL;
	if (st != FRPC_OK) {
		fail_on(r, v, st == FRPC_REMOTE ? err : frpc_status_str(st));
		settle(r);
		return;
	}
	cJSON_ArrayForEach(it, ids) {
		uint32_t id;

		if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > UINT32_MAX ||
		    it->valuedouble != (double)(uint32_t)it->valuedouble) {
			bad = 1;
			continue;
		}
		id = (uint32_t)it->valuedouble;
		for (int k = 0; k < v->got; k++)
			bad |= v->ids[k] == id;
		if (v->got < MAX_IDS)
			v->ids[v->got++] = id;
		else
			bad = 1;
	}
	if (bad || !cJSON_IsArray(ids) || v->got != v->want)
		fail_on(r, v, "wrong ids in the answer");
	settle(r);
}

static void
phase_reserve(struct sn_req *r)
{
	struct sn *sn = r->sn;

	r->pending = (int)r->nv + 1; /* held until every call is out */
	for (size_t i = 0; i < r->nv; i++) {
		struct sn_visor *v = &r->v[i];
		cJSON *p = cJSON_CreateObject();

		cJSON_AddNumberToObject(p, "n", v->want);
		v->call = visor_call(take(sn, v->pk), "reserve_ids", p, reserved, v);
		cJSON_Delete(p);
	}
	open_ahead(r);
	/* Calls that could not even start fail their visor (after the others are out). */
	for (size_t i = 0; i < r->nv; i++)
		if (r->v[i].call == NULL) {
			fail_on(r, &r->v[i], "out of memory");
			r->pending--;
		}
	settle(r);
}

/* ---- the rules ---- */

static cJSON *
desc_json(const struct sn_ask *a)
{
	cJSON *d = cJSON_CreateObject();
	char hex[SW_PK_HEX];

	sw_hex_encode(hex, a->src_pk, SW_PK_LEN);
	cJSON_AddStringToObject(d, "src_pk", hex);
	cJSON_AddNumberToObject(d, "src_port", a->src_port);
	sw_hex_encode(hex, a->dst_pk, SW_PK_LEN);
	cJSON_AddStringToObject(d, "dst_pk", hex);
	cJSON_AddNumberToObject(d, "dst_port", a->dst_port);
	return d;
}

static void
add_tp(cJSON *o, const char *name, const uint8_t id[TP_ID_LEN])
{
	char text[TP_ID_TEXT];

	tp_id_format(text, id);
	cJSON_AddStringToObject(o, name, text);
}

/*
 * The rules of one path: node i (0 = its source) holds rule i, keyed by an
 * id it reserved; each rule's next id is the next node's.  Returns the
 * source's forward rule and the end's consume rule; intermediaries go to
 * their visors' lists.
 */
static void
path_rules(struct sn_req *r, const struct sn_path *p, cJSON **first, cJSON **last)
{
	uint32_t id[SN_MAX_HOPS + 1];
	struct sn_visor *node[SN_MAX_HOPS + 1];

	for (size_t i = 0; i <= p->n; i++) {
		node[i] = &r->v[visor_ix(r, i < p->n ? p->hop[i].from : p->hop[p->n - 1].to)];
		id[i] = node[i]->ids[node[i]->used++];
	}
	for (size_t i = 0; i <= p->n; i++) {
		cJSON *o = cJSON_CreateObject();
		const char *type = i == 0 ? "forward" : i == p->n ? "consume" : "intermediary";

		cJSON_AddStringToObject(o, "type", type);
		cJSON_AddNumberToObject(o, "route_id", id[i]);
		if (i > 0)
			add_tp(o, "t_id", p->hop[i - 1].t_id);
		if (i < p->n) {
			cJSON_AddNumberToObject(o, "next_route_id", id[i + 1]);
			add_tp(o, "next_tp_id", p->hop[i].t_id);
		}
		if (i == 0 || i == p->n)
			cJSON_AddItemToObject(o, "desc", desc_json(&r->a));
		cJSON_AddNumberToObject(o, "keep_alive_s", r->a.keep_alive_s);
		if (i == 0)
			*first = o;
		else if (i == p->n)
			*last = o;
		else {
			if (node[i]->inter == NULL)
				node[i]->inter = cJSON_CreateArray();
			cJSON_AddItemToArray(node[i]->inter, o);
		}
	}
}

/* ---- phases 2 and 3 ---- */

static void
installed(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct sn_visor *v = arg;

	(void)result;
	v->call = NULL;
	if (st != FRPC_OK)
		fail_on(v->r, v, st == FRPC_REMOTE ? err : frpc_status_str(st));
	settle(v->r);
}

static void
send_rules(struct sn_req *r, struct sn_visor *v, const char *method, cJSON *rules)
{
	struct sn *sn = r->sn;
	cJSON *p = cJSON_CreateObject();

	cJSON_AddItemReferenceToObject(p, "rules", rules);
	v->call = visor_call(v->ahead != NULL ? v->ahead : take(sn, v->pk), method, p, installed,
	    v);
	v->ahead = NULL;
	cJSON_Delete(p);
	if (v->call != NULL)
		r->pending++;
	else
		fail_on(r, v, "out of memory");
}

static void
phase_intermediary(struct sn_req *r)
{
	cJSON *fwd_consume = NULL, *rev_forward = NULL;

	path_rules(r, &r->a.fwd, &r->fwd_rule, &fwd_consume);
	path_rules(r, &r->a.rev, &rev_forward, &r->cons_rule);
	r->edge = cJSON_CreateArray();
	cJSON_AddItemToArray(r->edge, fwd_consume);
	cJSON_AddItemToArray(r->edge, rev_forward);
	r->pending = 1;
	for (size_t i = 0; i < r->nv; i++)
		if (r->v[i].inter != NULL)
			send_rules(r, &r->v[i], "add_intermediary_rules", r->v[i].inter);
	settle(r);
}

static void
phase_edge(struct sn_req *r)
{
	r->pending = 1;
	send_rules(r, &r->v[r->dst], "add_edge_rules", r->edge);
	settle(r);
}

static void
next_phase(struct sn_req *r)
{
	r->phase++;
	switch (r->phase) {
	case PH_RESERVE:
		phase_reserve(r);
		break;
	case PH_INTERMEDIARY:
		phase_intermediary(r);
		break;
	case PH_EDGE:
		phase_edge(r);
		break;
	default:
		finish(r);
		break;
	}
}

void
sn_setup_start(struct sn *sn, struct frpc_req *req, const struct sn_ask *a)
{
	struct sn_req *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->timer = evtimer_new(sw_svc_base(sn->svc), deadline, r)) == NULL) {
		free(r);
		frpc_reply_error(req, "out of memory");
		return;
	}
	r->sn = sn;
	r->req = req;
	r->a = *a;
	r->t0_ms = sw_mono_ms();
	sn->in_flight++;
	r->next = sn->reqs;
	if (sn->reqs != NULL)
		sn->reqs->prev = r;
	sn->reqs = r;
	/* Visors in path order; src holds 2 ids, dst 2, each middle one per path. */
	r->src = visor_ix(r, a->src_pk);
	r->dst = visor_ix(r, a->dst_pk);
	r->v[r->src].want = 2;
	r->v[r->dst].want = 2;
	for (size_t i = 1; i < a->fwd.n; i++)
		r->v[visor_ix(r, a->fwd.hop[i].from)].want++;
	for (size_t i = 1; i < a->rev.n; i++)
		r->v[visor_ix(r, a->rev.hop[i].from)].want++;
	sw_timer_in(r->timer, SN_REQUEST_MS);
	phase_transports(r);
}

void
sn_setup_stop_all(struct sn *sn)
{
	while (sn->reqs != NULL) {
		struct sn_req *r = sn->reqs;

		fail_on(r, NULL, "setup-node stopping");
		finish(r);
		if (sn->reqs == r) { /* lookups still out: forget it from the list */
			sn->reqs = r->next;
			if (r->next != NULL)
				r->next->prev = NULL;
			r->prev = r->next = NULL;
		}
	}
}
