/*
 * dmsg-server's HTTP side (dmsg.md, "What the server offers over HTTP"):
 * GET /sessions; /health and /metrics come from the framework.
 */
#include <cjson/cJSON.h>

#include "dmsg_server.h"
#include "http.h"

static void
get_sessions(struct sw_http_req *req, void *arg)
{
	struct ds_relay *r = arg;
	cJSON *arr = ds_relay_sessions_json(r);

	if (arr == NULL) {
		sw_http_error(req, 500, "out of memory");
		return;
	}
	sw_http_reply_json(req, 200, arr);
	cJSON_Delete(arr);
}

int
ds_api_routes(struct sw_http_server *srv, struct ds_relay *r)
{
	return sw_http_route(srv, "GET", "/sessions", get_sessions, r);
}
