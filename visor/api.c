/*
 * The visor's local HTTP API (visor.md), for skywire-cli and the operator.
 * It listens on loopback only: the address is refused at start otherwise.
 */
#include <string.h>
#include <time.h>

#include "dmsg_client.h"
#include "http.h"
#include "nat.h"
#include "rgroup.h"
#include "router.h"
#include "transport.h"
#include "visor.h"

static void
api_pk(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "pk", v->pk_hex);
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
api_summary(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	cJSON *o = cJSON_CreateObject(), *servers = cJSON_CreateArray();
	uint8_t pks[32][SW_PK_LEN];
	size_t n = v->dmsg != NULL ? dmsg_client_servers(v->dmsg, pks, 32) : 0;

	cJSON_AddStringToObject(o, "pk", v->pk_hex);
	for (size_t i = 0; i < n; i++) {
		char hex[SW_PK_HEX];

		sw_hex_encode(hex, pks[i], SW_PK_LEN);
		cJSON_AddItemToArray(servers, cJSON_CreateString(hex));
	}
	cJSON_AddItemToObject(o, "dmsg_servers", servers);
	cJSON_AddItemToObject(o, "transports", vtp_mgr_json(v->tps));
	cJSON_AddItemToObject(o, "routes", vrt_json(v->rt));
	cJSON_AddStringToObject(o, "nat_type", visor_nat_type(v->nat));
	cJSON_AddItemToObject(o, "nat", visor_nat_json(v->nat));
	cJSON_AddItemToObject(o, "sudph", vtp_mgr_sudph_json(v->tps));
	cJSON_AddNumberToObject(o, "uptime_s", (double)(time(NULL) - v->started));
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

int
visor_api_routes(struct visor *v)
{
	if (sw_http_route(v->api, "GET", "/api/pk", api_pk, v) == -1 ||
	    visor_api_query_routes(v) == -1 ||
	    sw_http_route(v->api, "GET", "/api/summary", api_summary, v) == -1 ||
	    visor_api_tp_routes(v) == -1 || visor_api_burst_routes(v) == -1 ||
	    visor_api_route_routes(v) == -1)
		return -1;
	return sw_svc_http_attach(v->svc, v->api);
}
