/*
 * api_tp.c: the transports on the visor's local API (visor.md):
 *   GET    /api/transports              every transport
 *   POST   /api/transports              {"remote_pk","type"}: open, answer when up
 *   GET    /api/transports/{t_id}       one
 *   DELETE /api/transports/{t_id}       close and deregister
 *   POST   /api/transports/{t_id}/ping  a PING/PONG round trip: {"rtt_ms":N}
 * A POST waits for the transport: 201 when it was opened, 200 when it was
 * already up, 502 with the reason when the peer could not be reached.
 */
#include <string.h>

#include "http.h"
#include "json.h"
#include "transport.h"
#include "visor.h"

static void
tp_list(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	cJSON *a = vtp_mgr_json(v->tps);

	sw_http_reply_json(req, 200, a);
	cJSON_Delete(a);
}

static void
opened(struct vtp *t, int created, const char *err, void *arg)
{
	struct sw_http_req *req = arg;
	cJSON *o;

	if (t == NULL) {
		sw_http_error(req, 502, err != NULL ? err : "transport not opened");
		return;
	}
	o = vtp_json(t);
	sw_http_reply_json(req, created ? 201 : 200, o);
	cJSON_Delete(o);
}

static void
tp_add(struct sw_http_req *req, void *arg)
{
	struct visor *v = arg;
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);
	cJSON *o = sw_json_parse(body, len, NULL);
	const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "remote_pk");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
	uint8_t rpk[SW_PK_LEN];
	enum vtp_kind kind = VTP_DMSG;

	if (!cJSON_IsObject(o) || !cJSON_IsString(pk) || sw_pk_parse(rpk, pk->valuestring) == -1 ||
	    (type != NULL && !cJSON_IsString(type))) {
		sw_http_error(req, 400, "body must be {\"remote_pk\":\"<hex>\",\"type\":\"dmsg|stcpr|sudph\"}");
		goto out;
	}
	if (type != NULL && vtp_kind_parse(type->valuestring, &kind) == -1) {
		sw_http_error(req, 422, "type must be dmsg, stcpr or sudph");
		goto out;
	}
	if (sw_pk_is_null(rpk) || memcmp(rpk, v->kp.pk, SW_PK_LEN) == 0) {
		sw_http_error(req, 422, "remote_pk must be another visor's key");
		goto out;
	}
	if (vtp_open(v->tps, rpk, kind, "user", opened, req) == -1)
		sw_http_error(req, 503, "cannot open transports now");
out:
	cJSON_Delete(o);
}

static struct vtp *
tp_param(struct visor *v, struct sw_http_req *req)
{
	uint8_t id[TP_ID_LEN];
	struct vtp *t;

	if (tp_id_parse(id, sw_http_req_param(req, "t_id")) == -1) {
		sw_http_error(req, 400, "t_id must be a lowercase UUID");
		return NULL;
	}
	if ((t = vtp_find(v->tps, id)) == NULL)
		sw_http_error(req, 404, "no such transport");
	return t;
}

static void
tp_get(struct sw_http_req *req, void *arg)
{
	struct vtp *t = tp_param(arg, req);
	cJSON *o;

	if (t == NULL)
		return;
	o = vtp_json(t);
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
tp_del(struct sw_http_req *req, void *arg)
{
	struct vtp *t = tp_param(arg, req);
	cJSON *o;

	if (t == NULL)
		return;
	vtp_close(t, "removed by the operator");
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "deleted", 1);
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
pinged(long long rtt_ms, void *arg)
{
	struct sw_http_req *req = arg;
	cJSON *o;

	if (rtt_ms < 0) {
		sw_http_error(req, 504, "no pong");
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "rtt_ms", (double)rtt_ms);
	sw_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
tp_ping(struct sw_http_req *req, void *arg)
{
	struct vtp *t = tp_param(arg, req);

	if (t == NULL)
		return;
	if (vtp_ping(t, 5000, pinged, req) == -1)
		sw_http_error(req, 409, "transport not up");
}

int
visor_api_tp_routes(struct visor *v)
{
	if (sw_http_route(v->api, "GET", "/api/transports", tp_list, v) == -1 ||
	    sw_http_route(v->api, "POST", "/api/transports", tp_add, v) == -1 ||
	    sw_http_route(v->api, "GET", "/api/transports/{t_id}", tp_get, v) == -1 ||
	    sw_http_route(v->api, "DELETE", "/api/transports/{t_id}", tp_del, v) == -1 ||
	    sw_http_route(v->api, "POST", "/api/transports/{t_id}/ping", tp_ping, v) == -1)
		return -1;
	return 0;
}
