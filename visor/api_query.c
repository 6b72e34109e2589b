/*
 * The visor API's lookups (visor.md, "Local API"): services by type and
 * the clients of a dmsg server, answered by query.c from the CXO feeds,
 * or from the services' HTTP APIs until a feed has its first snapshot or
 * while its publisher cannot be reached.  Each answer names its source:
 *
 *   GET /api/services/{vpn|skysocks|visor}
 *       -> {"source":"cxo"|"http","services":[…],"feed":{…}}
 *   GET /api/dmsg/clients-by-server/{server_pk}
 *       -> {"source":"cxo"|"http","clients":[…],"feed":{…}}
 *
 * "feed" says what the subscription is doing (publisher, port, connected,
 * seq, stale, last error), so an operator sees why HTTP answered.  A
 * diagnostic ?publisher=PK asks that publisher's feed instead of the
 * configured one (to check a mirror or a new key before configuring it);
 * a publisher nobody reaches is answered from HTTP like any other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "visor.h"

struct areq {
	struct sw_http_req *req;
	const char *field; /* "services" or "clients" */
};

static void
api_answer(const struct visor_answer *a, void *arg)
{
	struct sw_http_req *req = ((struct areq *)arg)->req;
	const char *field = ((struct areq *)arg)->field;
	cJSON *o, *feed;
	char hex[SW_PK_HEX];

	free(arg);
	if (a->source == NULL) {
		cJSON *extra = cJSON_CreateObject();

		if (a->http_status != 0)
			cJSON_AddNumberToObject(extra, "http_status", a->http_status);
		sw_http_error_extra(req, 502, a->error != NULL ? a->error : "no answer", extra);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "source", a->source);
	cJSON_AddItemToObject(o, field, cJSON_Duplicate(a->list, 1));
	if (a->has_publisher) {
		feed = cJSON_AddObjectToObject(o, "feed");
		sw_hex_encode(hex, a->publisher, SW_PK_LEN);
		cJSON_AddStringToObject(feed, "publisher", hex);
		cJSON_AddNumberToObject(feed, "port", a->port);
		cJSON_AddBoolToObject(feed, "connected", a->feed_connected);
		if (strcmp(a->source, "cxo") == 0) {
			cJSON_AddNumberToObject(feed, "seq", (double)a->seq);
			cJSON_AddBoolToObject(feed, "stale", a->stale);
		}
		if (a->feed_error[0] != '\0')
			cJSON_AddStringToObject(feed, "last_error", a->feed_error);
	}
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
api_query(struct sw_http_req *req, struct visor *v, enum visor_feed feed, const char *key,
    const char *field)
{
	const char *pub = sw_http_req_query(req, "publisher");
	uint8_t pk[SW_PK_LEN];
	struct visor_query_req r = {feed, key, NULL};
	struct areq *ar;

	if (pub != NULL) {
		if (strlen(pub) != 2 * SW_PK_LEN || sw_hex_decode(pk, SW_PK_LEN, pub) == -1) {
			sw_http_error(req, 400, "publisher must be a public key (64 hex chars)");
			return;
		}
		r.publisher = pk;
	}
	if (v->query == NULL) {
		sw_http_error(req, 503, "visor stopping");
		return;
	}
	if ((ar = malloc(sizeof(*ar))) == NULL) {
		sw_http_error(req, 500, "out of memory");
		return;
	}
	ar->req = req;
	ar->field = field;
	if (visor_query(v, &r, api_answer, ar) == -1) {
		free(ar);
		sw_http_error(req, 500, "cannot query");
	}
}

static void
api_services(struct sw_http_req *req, void *arg)
{
	const char *type = sw_http_req_param(req, "type");

	if (strcmp(type, "vpn") != 0 && strcmp(type, "skysocks") != 0 &&
	    strcmp(type, "visor") != 0) {
		sw_http_error(req, 400, "type must be vpn, skysocks or visor");
		return;
	}
	api_query(req, arg, VISOR_FEED_SERVICES, type, "services");
}

static void
api_clients(struct sw_http_req *req, void *arg)
{
	const char *hex = sw_http_req_param(req, "pk");
	uint8_t pk[SW_PK_LEN];
	char norm[SW_PK_HEX];

	if (strlen(hex) != 2 * SW_PK_LEN || sw_hex_decode(pk, SW_PK_LEN, hex) == -1) {
		sw_http_error(req, 400, "server_pk must be a public key (64 hex chars)");
		return;
	}
	sw_hex_encode(norm, pk, SW_PK_LEN); /* feed paths are lower-case hex */
	api_query(req, arg, VISOR_FEED_CLIENTS, norm, "clients");
}

int
visor_api_query_routes(struct visor *v)
{
	if (sw_http_route(v->api, "GET", "/api/services/{type}", api_services, v) == -1 ||
	    sw_http_route(v->api, "GET", "/api/dmsg/clients-by-server/{pk}", api_clients, v) ==
	    -1)
		return -1;
	return 0;
}
