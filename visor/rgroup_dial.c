/*
 * rgroup_dial.c: dialling a route group (visor.md, "Routes").
 *
 * The one idea: a dial is a short pipeline: route-finder for both
 * directions in one POST (meanwhile the stream to the first setup-node:
 * the one opened ahead after the last dial, else dialled now), then setup-node after setup-node (the next only when one
 * is unreachable: an answer, even an error, is final), then the
 * initiator's two rules and the handshake (rgroup.c).  The dial record lives on the manager's list until its
 * callback has run, so stopping the visor can end it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "dmsg_client.h"
#include "frpc.h"
#include "http.h"
#include "log.h"
#include "rgroup_int.h"
#include "visor.h"

struct vrg_dial {
	struct vrg_dial *prev, *next;
	struct vrg_mgr *m;
	uint8_t pk[SW_PK_LEN];
	uint16_t port, src_port;
	int min_hops;
	vrg_dial_cb *cb;
	void *arg;
	int http_pending;     /* the route-finder answer is still to come */
	struct frpc_call *call;
	size_t setup_ix;
	cJSON *fwd, *rev;     /* the chosen paths */
	char last_err[160];
};

static void
unlink_dial(struct vrg_dial *d)
{
	struct vrg_mgr *m = d->m;

	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		m->dials = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
}

static void
dial_free(struct vrg_dial *d)
{
	frpc_call_cancel(d->call);
	cJSON_Delete(d->fwd);
	cJSON_Delete(d->rev);
	free(d);
}

/* The dial ends with err; the record goes unless an HTTP answer is due. */
static void
fail(struct vrg_dial *d, const char *err)
{
	char pk[SW_PK_HEX];

	sw_hex_encode(pk, d->pk, SW_PK_LEN);
	sw_log_info(d->m->v->name, "route group dial failed", "pk=%s port=%u reason=\"%s\"", pk,
	    d->port, err);
	unlink_dial(d);
	frpc_call_cancel(d->call); /* the stream opened ahead, if route-finder failed */
	d->call = NULL;
	d->cb(NULL, err, d->arg);
	d->cb = NULL;
	if (!d->http_pending)
		dial_free(d);
}

static void setup_next(struct vrg_dial *d);

static void
setup_done(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct vrg_dial *d = arg;
	struct vrg_mgr *m = d->m;
	struct vrt_rule fr, cr;
	struct vrt_desc fd, cd;
	char why[192];
	cJSON *path;
	vrg_dial_cb *cb;
	void *cb_arg;

	d->call = NULL;
	if (st != FRPC_UNREACHABLE && d->setup_ix == 0 && m->ahead != NULL)
		frpc_pool_fill(m->ahead, m->setup_nodes[0]); /* for the next dial */
	if (st == FRPC_UNREACHABLE) {
		snprintf(d->last_err, sizeof(d->last_err), "setup-node unreachable: %s", err);
		d->setup_ix++;
		setup_next(d);
		return;
	}
	if (st != FRPC_OK) {
		snprintf(why, sizeof(why), "%s", st == FRPC_REMOTE ? err : frpc_status_str(st));
		fail(d, why);
		return;
	}
	if (vrt_rule_parse(cJSON_GetObjectItemCaseSensitive(result, "forward"), &fr, &fd, why,
	    sizeof(why)) == -1 ||
	    vrt_rule_parse(cJSON_GetObjectItemCaseSensitive(result, "consume"), &cr, &cd, why,
	    sizeof(why)) == -1) {
		fail(d, "setup-node answered malformed rules");
		return;
	}
	path = d->fwd;
	d->fwd = NULL;
	cb = d->cb;
	cb_arg = d->arg;
	unlink_dial(d);
	dial_free(d);
	if (vrg_initiate(m, &fr, &cr, path, cb, cb_arg, why, sizeof(why)) == -1)
		cb(NULL, why, cb_arg);
}

static void
setup_next(struct vrg_dial *d)
{
	struct visor *v = d->m->v;
	cJSON *p = cJSON_CreateObject(), *desc;
	char hex[SW_PK_HEX];

	if (d->setup_ix >= d->m->nsetup) {
		fail(d, d->m->nsetup == 0 ? "no setup_nodes configured" : d->last_err);
		cJSON_Delete(p);
		return;
	}
	desc = cJSON_AddObjectToObject(p, "desc");
	cJSON_AddStringToObject(desc, "src_pk", v->pk_hex);
	cJSON_AddNumberToObject(desc, "src_port", d->src_port);
	sw_hex_encode(hex, d->pk, SW_PK_LEN);
	cJSON_AddStringToObject(desc, "dst_pk", hex);
	cJSON_AddNumberToObject(desc, "dst_port", d->port);
	cJSON_AddNumberToObject(p, "keep_alive_s", VRT_KEEPALIVE_DEF);
	cJSON_AddItemReferenceToObject(p, "forward", d->fwd);
	cJSON_AddItemReferenceToObject(p, "reverse", d->rev);
	if (d->call != NULL) { /* the first setup-node's stream, opened ahead */
		if (frpc_call_ask(d->call, "dial_route_group", p, VRG_SETUP_MS, setup_done, d) == -1) {
			frpc_call_cancel(d->call);
			d->call = NULL;
		}
	} else {
		d->call = frpc_call(sw_svc_base(v->svc), v->dmsg, d->m->setup_nodes[d->setup_ix],
		    VRG_SETUP_PORT, "dial_route_group", p, VRG_SETUP_MS, setup_done, d, v->name);
	}
	cJSON_Delete(p);
	if (d->call == NULL)
		fail(d, "out of memory");
}

/* The first path of key in route-finder's answer, or NULL. */
static cJSON *
first_path(const cJSON *ans, const char *key)
{
	const cJSON *paths = cJSON_GetObjectItemCaseSensitive(ans, key);
	const cJSON *p = cJSON_GetArrayItem(paths, 0);

	return cJSON_IsArray(p) && cJSON_GetArraySize(p) > 0 ? cJSON_Duplicate(p, 1) : NULL;
}

static void
routes_done(const struct sw_http_resp *r, void *arg)
{
	struct vrg_dial *d = arg;
	char me[SW_PK_HEX], peer[SW_PK_HEX], key[2 * SW_PK_HEX + 2];

	d->http_pending = 0;
	if (d->cb == NULL) { /* ended while asking */
		dial_free(d);
		return;
	}
	if (r->status == 404) {
		fail(d, "no route");
		return;
	}
	if (r->status != 200 || !cJSON_IsObject(r->json)) {
		snprintf(d->last_err, sizeof(d->last_err), "route-finder answered %d", r->status);
		fail(d, d->last_err);
		return;
	}
	sw_hex_encode(me, d->m->v->kp.pk, SW_PK_LEN);
	sw_hex_encode(peer, d->pk, SW_PK_LEN);
	snprintf(key, sizeof(key), "%s:%s", me, peer);
	d->fwd = first_path(r->json, key);
	snprintf(key, sizeof(key), "%s:%s", peer, me);
	d->rev = first_path(r->json, key);
	if (d->fwd == NULL || d->rev == NULL) {
		fail(d, "no route");
		return;
	}
	setup_next(d);
}

int
vrg_dial(struct vrg_mgr *m, const uint8_t pk[SW_PK_LEN], uint16_t port, int min_hops,
    vrg_dial_cb *cb, void *arg)
{
	struct vrg_dial *d;
	char url[300], me[SW_PK_HEX], peer[SW_PK_HEX], body[512];
	int n;

	if (m == NULL || cb == NULL || port == 0 || min_hops < 1 || min_hops > 10 ||
	    m->stopping || memcmp(pk, m->v->kp.pk, SW_PK_LEN) == 0 || sw_pk_is_null(pk) ||
	    (d = calloc(1, sizeof(*d))) == NULL)
		return -1;
	d->m = m;
	memcpy(d->pk, pk, SW_PK_LEN);
	d->port = port;
	d->min_hops = min_hops;
	d->cb = cb;
	d->arg = arg;
	d->src_port = (uint16_t)(49152 + randombytes_uniform(16384));
	sw_hex_encode(me, m->v->kp.pk, SW_PK_LEN);
	sw_hex_encode(peer, pk, SW_PK_LEN);
	/*
	 * A dmsg transport hides its relay as an uncounted hop: a multi-hop
	 * demand asks for the direct types only (services.md, route-finder).
	 */
	n = snprintf(body, sizeof(body), "{\"edges\":[[\"%s\",\"%s\"],[\"%s\",\"%s\"]],"
	    "\"opts\":{\"min_hops\":%d,\"max_hops\":%d%s}}", me, peer, peer, me, min_hops,
	    min_hops > 5 ? min_hops : 5, min_hops > 1 ? ",\"types\":[\"stcpr\",\"sudph\"]" : "");
	snprintf(url, sizeof(url), "%s/routes", m->route_finder);
	if (sw_http_request(m->http, "POST", url, body, (size_t)n, NULL, routes_done, d) == -1) {
		free(d);
		return -1;
	}
	d->http_pending = 1;
	/*
	 * The first setup-node's stream: the one opened after the last dial,
	 * else dialled now while route-finder answers (nothing is sent on it
	 * before the ask).
	 */
	if (m->ahead != NULL)
		d->call = frpc_pool_take(m->ahead, m->setup_nodes[0]);
	d->next = m->dials;
	if (m->dials != NULL)
		m->dials->prev = d;
	m->dials = d;
	return 0;
}

void
vrg_dials_stop(struct vrg_mgr *m)
{
	while (m->dials != NULL) {
		struct vrg_dial *d = m->dials;

		if (d->call != NULL) {
			frpc_call_cancel(d->call);
			d->call = NULL;
		}
		fail(d, "visor stopping");
	}
}
