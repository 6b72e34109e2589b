/*
 * router_rpc.c: the setup-node's RPCs on the visor's dmsg port 136
 * (routing.md, "Route setup"): reserve_ids, add_intermediary_rules,
 * add_edge_rules, delete_rules.  Only PKs in setup_nodes are served; frpc
 * closes anyone else's stream before reading a byte.
 *
 * The one idea: a call either installs all its rules or none, so a
 * setup-node's rollback (delete_rules on the ids it reserved) always leaves
 * the table as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmsg_client.h"
#include "frpc.h"
#include "log.h"
#include "rgroup_int.h"
#include "visor.h"

#define MAX_RULES_PER_CALL 20 /* 10 hops per path, two paths */

static int
allowed(const uint8_t pk[SW_PK_LEN], void *arg)
{
	const struct vrg_mgr *m = arg;

	for (size_t i = 0; i < m->nsetup; i++)
		if (memcmp(m->setup_nodes[i], pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

static void
reserve_ids(struct vrg_mgr *m, struct frpc_req *req, const cJSON *params)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(params, "n");
	uint32_t ids[VRT_MAX_RESERVE];
	cJSON *res, *arr;
	int k;

	if (!cJSON_IsNumber(n) || n->valuedouble < 1 || n->valuedouble > VRT_MAX_RESERVE ||
	    n->valuedouble != (double)(int)n->valuedouble) {
		frpc_reply_error(req, "n must be 1..%d", VRT_MAX_RESERVE);
		return;
	}
	k = (int)n->valuedouble;
	if (vrt_reserve(m->v->rt, (size_t)k, ids) == -1) {
		frpc_reply_error(req, "routing table full");
		return;
	}
	res = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(res, "ids");
	for (int i = 0; i < k; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
	frpc_reply(req, res);
}

/* Parse params.rules (1..max, each checked) into r/d; count, or -1 with err. */
static int
parse_rules(const cJSON *params, struct vrt_rule *r, struct vrt_desc *d, int max, char *err,
    size_t errlen)
{
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(params, "rules"), *it;
	int n = 0;

	if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) < 1 ||
	    cJSON_GetArraySize(rules) > max) {
		snprintf(err, errlen, "rules must be an array of 1..%d rules", max);
		return -1;
	}
	cJSON_ArrayForEach(it, rules) {
		if (vrt_rule_parse(it, &r[n], &d[n], err, errlen) == -1)
			return -1;
		if (r[n].desc != NULL)
			r[n].desc = &d[n];
		n++;
	}
	return n;
}

static int
has_tp(struct vrg_mgr *m, const uint8_t id[TP_ID_LEN], char *err, size_t errlen)
{
	char text[TP_ID_TEXT];

	if (vtp_find(m->v->tps, id) != NULL)
		return 1;
	tp_id_format(text, id);
	snprintf(err, errlen, "no transport %s", text);
	return 0;
}

static void
add_intermediary(struct vrg_mgr *m, struct frpc_req *req, const cJSON *params)
{
	struct vrt_rule r[MAX_RULES_PER_CALL];
	struct vrt_desc d[MAX_RULES_PER_CALL];
	char err[160];
	int n = parse_rules(params, r, d, MAX_RULES_PER_CALL, err, sizeof(err));

	for (int i = 0; i < n; i++) {
		int cur = vrt_type_of(m->v->rt, r[i].route_id);

		if (r[i].type != VRT_INTERMEDIARY) {
			snprintf(err, sizeof(err), "rule %u is not an intermediary rule", r[i].route_id);
			n = -1;
		} else if (cur != VRT_RESERVED) {
			snprintf(err, sizeof(err), "route id %u is not reserved", r[i].route_id);
			n = -1;
		} else if (!has_tp(m, r[i].t_id, err, sizeof(err)) ||
		    !has_tp(m, r[i].next_tp, err, sizeof(err))) {
			n = -1;
		}
		for (int j = 0; j < i && n != -1; j++)
			if (r[j].route_id == r[i].route_id) {
				snprintf(err, sizeof(err), "route id %u twice", r[i].route_id);
				n = -1;
			}
		if (n == -1)
			break;
	}
	if (n == -1) {
		frpc_reply_error(req, "%s", err);
		return;
	}
	/* Every id was checked reserved: installing cannot fail now. */
	for (int i = 0; i < n; i++)
		vrt_install(m->v->rt, &r[i], err, sizeof(err));
	frpc_reply(req, NULL);
}

static void
add_edge(struct vrg_mgr *m, struct frpc_req *req, const cJSON *params)
{
	struct vrt_rule r[2];
	struct vrt_desc d[2];
	char err[160];
	int n = parse_rules(params, r, d, 2, err, sizeof(err));

	if (n == 2 && r[0].type == VRT_CONSUME && !has_tp(m, r[0].t_id, err, sizeof(err)))
		n = -1;
	if (n == 2 && r[1].type == VRT_FORWARD && !has_tp(m, r[1].next_tp, err, sizeof(err)))
		n = -1;
	if (n == 1) {
		snprintf(err, sizeof(err), "edge rules are a consume and a forward rule");
		n = -1;
	}
	if (n == -1 || vrg_edge_rules(m, &r[0], &r[1], err, sizeof(err)) == -1) {
		frpc_reply_error(req, "%s", err);
		return;
	}
	frpc_reply(req, NULL);
}

static void
delete_rules(struct vrg_mgr *m, struct frpc_req *req, const cJSON *params)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(params, "ids"), *it;

	if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) > 1024) {
		frpc_reply_error(req, "ids must be an array of at most 1024 route ids");
		return;
	}
	cJSON_ArrayForEach(it, ids) {
		if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > UINT32_MAX ||
		    it->valuedouble != (double)(uint32_t)it->valuedouble) {
			frpc_reply_error(req, "ids must be route ids");
			return;
		}
	}
	cJSON_ArrayForEach(it, ids)
		vrt_delete(m->v->rt, (uint32_t)it->valuedouble, VRT_GONE_DELETED);
	frpc_reply(req, NULL);
}

static void
handle(struct frpc_req *req, const char *method, const cJSON *params, void *arg)
{
	struct vrg_mgr *m = arg;

	if (strcmp(method, "reserve_ids") == 0)
		reserve_ids(m, req, params);
	else if (strcmp(method, "add_intermediary_rules") == 0)
		add_intermediary(m, req, params);
	else if (strcmp(method, "add_edge_rules") == 0)
		add_edge(m, req, params);
	else if (strcmp(method, "delete_rules") == 0)
		delete_rules(m, req, params);
	else
		frpc_reply_error(req, "unknown method");
}

int
vrg_rpc_start(struct vrg_mgr *m)
{
	struct visor *v = m->v;

	m->rpc = frpc_server_new(sw_svc_base(v->svc), v->dmsg, VRG_RPC_PORT, allowed, handle, m,
	    v->name);
	if (m->rpc == NULL) {
		sw_log_error(v->name, "cannot listen on dmsg port 136", NULL);
		return -1;
	}
	return 0;
}

void
vrg_rpc_stop(struct vrg_mgr *m)
{
	frpc_server_free(m->rpc);
	m->rpc = NULL;
}
