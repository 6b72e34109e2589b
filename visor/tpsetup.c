/*
 * tpsetup.c: the visor's transport-setup RPCs on dmsg port 47 (visor.md,
 * services.md "transport-setup"): add_transport {"to","type"},
 * remove_transport {"t_id"}, list_transports {}, framed JSON (common/frpc).
 *
 * Only the PKs in transport_setup_pks may ask: frpc's allow hook closes a
 * stream from anyone else before a byte of it is read (Go Skywire's visor
 * closes it and then serves it anyway; this one does not).  Transports
 * opened here carry the label "skycoin".  The error texts are part of the
 * contract with transport-setup: "no such transport" becomes its 404.
 */
#include <stdlib.h>
#include <string.h>

#include "frpc.h"
#include "log.h"
#include "transport.h"
#include "visor.h"

#define TPSETUP_PORT 47
#define TPSETUP_MAX_PKS 64

struct visor_tpsetup {
	struct visor *v;
	struct frpc_server *srv;
	size_t npks;
	uint8_t pks[TPSETUP_MAX_PKS][SW_PK_LEN];
};

static int
allowed(const uint8_t pk[SW_PK_LEN], void *arg)
{
	const struct visor_tpsetup *s = arg;

	for (size_t i = 0; i < s->npks; i++)
		if (memcmp(s->pks[i], pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

/* The transport as transport-setup reports it: four fields of vtp_json's. */
static cJSON *
brief(const cJSON *full)
{
	static const char *const keep[] = {"t_id", "remote_pk", "type", "label"};
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; o != NULL && i < sizeof(keep) / sizeof(keep[0]); i++)
		cJSON_AddItemToObject(o, keep[i],
		    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(full, keep[i]), 1));
	return o;
}

static cJSON *
tp_brief(const struct vtp *t)
{
	cJSON *full = vtp_json(t), *o = brief(full);

	cJSON_Delete(full);
	return o;
}

static void
opened(struct vtp *t, int created, const char *err, void *arg)
{
	struct frpc_req *req = arg;

	(void)created;
	if (t == NULL) {
		frpc_reply_error(req, "%s", err != NULL ? err : "transport not opened");
		return;
	}
	frpc_reply(req, tp_brief(t));
}

static void
add(struct visor *v, struct frpc_req *req, const cJSON *params)
{
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(params, "to");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(params, "type");
	uint8_t pk[SW_PK_LEN];
	enum vtp_kind kind;

	if (!cJSON_IsString(to) || sw_pk_parse(pk, to->valuestring) == -1 ||
	    sw_pk_is_null(pk)) {
		frpc_reply_error(req, "params.to must be a PK");
		return;
	}
	if (!cJSON_IsString(type) || vtp_kind_parse(type->valuestring, &kind) == -1) {
		frpc_reply_error(req, "params.type must be dmsg, stcpr or sudph");
		return;
	}
	if (memcmp(pk, v->kp.pk, SW_PK_LEN) == 0) {
		frpc_reply_error(req, "params.to is this visor");
		return;
	}
	if (vtp_open(v->tps, pk, kind, "skycoin", opened, req) == -1)
		frpc_reply_error(req, "cannot open transports now");
}

static void
handle(struct frpc_req *req, const char *method, const cJSON *params, void *arg)
{
	struct visor_tpsetup *s = arg;
	struct visor *v = s->v;
	char hex[SW_PK_HEX];

	sw_hex_encode(hex, frpc_req_pk(req), SW_PK_LEN);
	sw_log_info(v->name, "transport-setup request", "method=%s from=%s", method, hex);
	if (strcmp(method, "add_transport") == 0) {
		add(v, req, params);
	} else if (strcmp(method, "remove_transport") == 0) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(params, "t_id");
		uint8_t tid[TP_ID_LEN];
		struct vtp *t;
		cJSON *o;

		if (!cJSON_IsString(id) || tp_id_parse(tid, id->valuestring) == -1) {
			frpc_reply_error(req, "params.t_id must be a lowercase UUID");
			return;
		}
		if ((t = vtp_find(v->tps, tid)) == NULL) {
			frpc_reply_error(req, "no such transport");
			return;
		}
		vtp_close(t, "removed by transport-setup");
		o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "removed", 1);
		frpc_reply(req, o);
	} else if (strcmp(method, "list_transports") == 0) {
		cJSON *all = vtp_mgr_json(v->tps), *out = cJSON_CreateArray(), *e;

		cJSON_ArrayForEach(e, all)
			cJSON_AddItemToArray(out, brief(e));
		cJSON_Delete(all);
		frpc_reply(req, out);
	} else {
		frpc_reply_error(req, "unknown method");
	}
}

int
visor_tpsetup_start(struct visor *v)
{
	struct visor_tpsetup *s = calloc(1, sizeof(*s));
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(v->cfg, "transport_setup_pks"), *e;

	if (s == NULL)
		return -1;
	s->v = v;
	v->tpsetup = s;
	cJSON_ArrayForEach(e, list) {
		if (!cJSON_IsString(e) || sw_pk_parse(s->pks[s->npks], e->valuestring) == -1) {
			sw_log_error(v->name, "transport_setup_pks: each must be a hex PK", NULL);
			return -1;
		}
		if (++s->npks == TPSETUP_MAX_PKS)
			break;
	}
	s->srv = frpc_server_new(sw_svc_base(v->svc), v->dmsg, TPSETUP_PORT, allowed, handle, s,
	    v->name);
	if (s->srv == NULL) {
		sw_log_error(v->name, "cannot listen on dmsg port 47", NULL);
		return -1;
	}
	return 0;
}

void
visor_tpsetup_free(struct visor *v)
{
	if (v->tpsetup == NULL)
		return;
	frpc_server_free(v->tpsetup->srv);
	free(v->tpsetup);
	v->tpsetup = NULL;
}
