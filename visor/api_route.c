/*
 * api_route.c: routes on the visor's local API (visor.md):
 *   GET    /api/routes              every rule: type, ids, transports, desc, expiry
 *   DELETE /api/routes/{id}         delete one rule (its route group closes)
 *   GET    /api/routes/find/{pk}    route-finder's paths to pk (?max_hops=N, ?min_hops=N)
 *   GET    /api/route-groups        the local route groups
 *   POST   /api/route-bench         a measured stream to a peer's port 2 (rgroup_bench.c)
 * and the route applications' endpoints (ping.c, chat.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "rgroup_int.h"
#include "svc_api.h"
#include "visor.h"

static void
routes_list(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	cJSON *a = vrt_json(v->rt);

	sw_http_reply_json(req, 200, a);
	cJSON_Delete(a);
}

static void
groups_list(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	cJSON *a = vrg_mgr_json(v->rg);

	sw_http_reply_json(req, 200, a);
	cJSON_Delete(a);
}

static void
route_rm(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	const char *s = sw_http_req_param(req, "id");
	char *end = NULL;
	unsigned long long id = strtoull(s, &end, 10);

	if (*s < '0' || *s > '9' || *end != '\0' || id == 0 || id > UINT32_MAX) {
		sw_http_error(req, 400, "id must be a route id");
		return;
	}
	if (vrt_delete(v->rt, (uint32_t)id, VRT_GONE_DELETED) == 0) {
		sw_http_error(req, 404, "no such rule");
		return;
	}
	sw_http_reply_json(req, 200, NULL);
}

static void
found(const struct sw_http_resp *r, void *arg)
{
	struct sw_http_req *req = arg;

	if (r->status == 0)
		sw_http_error(req, 502, "route-finder did not answer");
	else
		sw_http_reply_raw(req, r->status, "application/json", r->body, r->len);
}

static int
query_hops(struct sw_http_req *req, const char *name, int def)
{
	const char *s = sw_http_req_query(req, name);
	char *end = NULL;
	long n;

	if (s == NULL)
		return def;
	n = strtol(s, &end, 10);
	return *s != '\0' && *end == '\0' && n >= 1 && n <= 10 ? (int)n : -1;
}

static void
route_find(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	uint8_t pk[SW_PK_LEN];
	char hex[SW_PK_HEX], url[300], body[256];
	int max = query_hops(req, "max_hops", 5), min = query_hops(req, "min_hops", 1), n;

	if (sw_svc_pk_param(req, "pk", pk, hex) == -1)
		return;
	if (max == -1 || min == -1) {
		sw_http_error(req, 422, "min_hops and max_hops must be 1..10");
		return;
	}
	n = snprintf(body, sizeof(body),
	    "{\"edges\":[[\"%s\",\"%s\"]],\"opts\":{\"min_hops\":%d,\"max_hops\":%d}}", v->pk_hex,
	    hex, min, max);
	snprintf(url, sizeof(url), "%s/routes", v->rg->route_finder);
	if (sw_http_request(v->rg->http, "POST", url, body, (size_t)n, NULL, found, req) == -1)
		sw_http_error(req, 500, "cannot ask route-finder");
}

int
visor_api_route_routes(struct visor *v)
{
	if (sw_http_route(v->api, "GET", "/api/routes", routes_list, v) == -1 ||
	    sw_http_route(v->api, "DELETE", "/api/routes/{id}", route_rm, v) == -1 ||
	    sw_http_route(v->api, "GET", "/api/routes/find/{pk}", route_find, v) == -1 ||
	    sw_http_route(v->api, "GET", "/api/route-groups", groups_list, v) == -1 ||
	    vping_api(v) == -1 || vchat_api(v) == -1 || vrg_bench_api(v) == -1)
		return -1;
	return 0;
}

int
visor_routing_start(struct visor *v)
{
	return vping_start(v) == -1 || vchat_start(v) == -1 || vrg_bench_start(v) == -1 ? -1 :
	    0;
}

void
visor_routing_free(struct visor *v)
{
	vchat_free(v);
}
