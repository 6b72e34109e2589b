/*
 * transport-setup's HTTP API (services.md):
 *   POST /add                {"from","to","type"}  -> visor from: add_transport {to,type}
 *   POST /remove             {"from","t_id"}       -> visor from: remove_transport {t_id}
 *   GET  /{pk}/transports                          -> visor pk: list_transports
 *
 * The one idea: nothing is sent to a visor before the caller is known and
 * trusted.  Each request is httpauth-checked first (401), then its PK must
 * be in trusted_pks (403), then its fields are checked (400/422), and only
 * then is the visor dialled, with what is left of the 15 s deadline.  A
 * visor that cannot be reached or cannot do it is a 502 naming the cause.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frpc.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "svc_api.h"
#include "tp_entry.h"
#include "transport_setup.h"

enum ts_op {
	TS_ADD = 0,
	TS_REMOVE,
	TS_LIST,
};

static const char *const op_method[] = {"add_transport", "remove_transport",
    "list_transports"};

struct ts_q {
	struct ts *ts;
	struct sw_http_req *req;
	enum ts_op op;
	long long start_ms;
	uint8_t visor[SW_PK_LEN];
};

static void
q_end(struct ts_q *q)
{
	sw_svc_req_end(q->ts->svc);
	free(q);
}

static void
count(struct ts_q *q, const char *result)
{
	sw_metric_add(q->ts->m_calls, (const char *[]){op_method[q->op], result}, 1);
}

/* The visor's answer, or why there is none. */
static void
answered(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct ts_q *q = arg;
	char why[300];

	count(q, frpc_status_str(st));
	switch (st) {
	case FRPC_OK:
		sw_http_reply_json(q->req, 200, result);
		break;
	case FRPC_REMOTE:
		if (q->op == TS_REMOVE && err != NULL && strcmp(err, "no such transport") == 0) {
			sw_http_error(q->req, 404, "the visor has no such transport");
			break;
		}
		snprintf(why, sizeof(why), "the visor could not do it: %s", err);
		sw_http_error(q->req, 502, why);
		break;
	case FRPC_UNREACHABLE:
		snprintf(why, sizeof(why), "visor unreachable over dmsg: %s", err);
		sw_http_error(q->req, 502, why);
		break;
	case FRPC_CLOSED:
		sw_http_error(q->req, 502, "the visor closed the stream unanswered (is "
		    "transport-setup's key in its transport_setup_pks?)");
		break;
	case FRPC_TIMEOUT:
		sw_http_error(q->req, 502, "the visor did not answer within the 15 s deadline");
		break;
	default:
		snprintf(why, sizeof(why), "bad answer from the visor: %s", err != NULL ? err : "?");
		sw_http_error(q->req, 502, why);
		break;
	}
	q_end(q);
}

static int
pk_field(const cJSON *o, const char *name, uint8_t pk[SW_PK_LEN])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) && sw_pk_parse(pk, v->valuestring) == 0 && !sw_pk_is_null(pk) ?
	    0 : -1;
}

/* The RPC's params from the body; -1 when the request was answered (400/422). */
static int
params_of(struct ts_q *q, cJSON **params)
{
	size_t len;
	const unsigned char *body = sw_http_req_body(q->req, &len);
	cJSON *o = body != NULL ? cJSON_ParseWithLength((const char *)body, len) : NULL;
	uint8_t to[SW_PK_LEN], tid[TP_ID_LEN];
	const cJSON *type, *id;
	char hex[SW_PK_HEX];

	*params = NULL;
	if (!cJSON_IsObject(o)) {
		sw_http_error(q->req, 400, "body must be a JSON object");
		goto fail;
	}
	if (pk_field(o, "from", q->visor) == -1) {
		sw_http_error(q->req, 422, "from must be a visor's PK");
		goto fail;
	}
	*params = cJSON_CreateObject();
	if (q->op == TS_ADD) {
		type = cJSON_GetObjectItemCaseSensitive(o, "type");
		if (pk_field(o, "to", to) == -1) {
			sw_http_error(q->req, 422, "to must be a visor's PK");
			goto fail;
		}
		if (memcmp(to, q->visor, SW_PK_LEN) == 0) {
			sw_http_error(q->req, 422, "from and to are the same visor");
			goto fail;
		}
		if (!cJSON_IsString(type) || (strcmp(type->valuestring, "dmsg") != 0 &&
		    strcmp(type->valuestring, "stcpr") != 0 && strcmp(type->valuestring, "sudph") != 0)) {
			sw_http_error(q->req, 422, "type must be dmsg, stcpr or sudph");
			goto fail;
		}
		sw_hex_encode(hex, to, SW_PK_LEN);
		cJSON_AddStringToObject(*params, "to", hex);
		cJSON_AddStringToObject(*params, "type", type->valuestring);
	} else {
		id = cJSON_GetObjectItemCaseSensitive(o, "t_id");
		if (!cJSON_IsString(id) || tp_id_parse(tid, id->valuestring) == -1) {
			sw_http_error(q->req, 422, "t_id must be a lowercase UUID");
			goto fail;
		}
		cJSON_AddStringToObject(*params, "t_id", id->valuestring);
	}
	cJSON_Delete(o);
	return 0;
fail:
	cJSON_Delete(o);
	cJSON_Delete(*params);
	*params = NULL;
	return -1;
}

static int
trusted(const struct ts *ts, const uint8_t pk[SW_PK_LEN])
{
	for (size_t i = 0; i < ts->ntrusted; i++)
		if (memcmp(ts->trusted[i], pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

static void
authed(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN], void *arg)
{
	struct ts_q *q = arg;
	struct ts *ts = q->ts;
	cJSON *params = NULL;
	long long left;

	if (!ok) {
		q_end(q); /* answered already (401 or 503) */
		return;
	}
	if (!trusted(ts, pk)) {
		sw_http_error(req, 403, "caller is not in trusted_pks");
		goto end;
	}
	if (q->op != TS_LIST && params_of(q, &params) == -1)
		goto end;
	left = TS_DEADLINE_MS - 500 - (sw_mono_ms() - q->start_ms);
	if (left < 100) {
		sw_http_error(req, 502, "deadline spent before the visor was asked");
		goto end;
	}
	if (frpc_call(sw_svc_base(ts->svc), ts->dmsg, q->visor, TS_VISOR_PORT,
	    op_method[q->op], params, (int)left, answered, q, ts->name) == NULL) {
		sw_http_error(req, 500, "cannot start the visor call");
		goto end;
	}
	cJSON_Delete(params);
	return;
end:
	cJSON_Delete(params);
	q_end(q);
}

static void
begin(struct ts *ts, struct sw_http_req *req, enum ts_op op)
{
	struct ts_q *q;

	if (sw_svc_req_begin(ts->svc, req) == -1)
		return;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sw_http_error(req, 500, "out of memory");
		sw_svc_req_end(ts->svc);
		return;
	}
	q->ts = ts;
	q->req = req;
	q->op = op;
	q->start_ms = sw_mono_ms();
	if (op == TS_LIST && sw_svc_pk_param(req, "pk", q->visor, NULL) == -1) {
		q_end(q);
		return;
	}
	sw_httpauth_check(ts->auth.st, ts->auth.prefix, req, authed, q);
}

static void
h_add(struct sw_http_req *req, void *arg)
{
	begin(arg, req, TS_ADD);
}

static void
h_remove(struct sw_http_req *req, void *arg)
{
	begin(arg, req, TS_REMOVE);
}

static void
h_list(struct sw_http_req *req, void *arg)
{
	begin(arg, req, TS_LIST);
}

int
ts_api_routes(struct ts *ts)
{
	static const struct sw_http_route_def routes[] = {
		{"POST", "/add", h_add},
		{"POST", "/remove", h_remove},
		{"GET", "/{pk}/transports", h_list},
	};

	return sw_svc_api_attach(ts->svc, ts->http, routes, sizeof(routes) / sizeof(routes[0]), ts,
	    &ts->auth);
}
