/*
 * transport-setup as a framework service: configuration (its dmsg identity,
 * dmsg-discovery, trusted_pks), the dmsg client it dials visors with, start,
 * stop, health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dmsg_client.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "str.h"
#include "transport_setup.h"

static const struct sw_cfg_key ts_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9099", "HTTP address"},
	{"public_key", SW_CFG_STR, NULL, "dmsg identity; visors list it in transport_setup_pks"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars (generated when absent)"},
	{"dmsg_discovery", SW_CFG_STR, "http://127.0.0.1:9090", "dmsg-discovery URL"},
	{"trusted_pks", SW_CFG_LIST, NULL, "PKs whose signed requests are served"},
	{NULL, 0, NULL, NULL},
};

static void *
ts_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct ts *ts = calloc(1, sizeof(*ts));
	const char *listen = sw_cfg_str(cfg, "listen"), *disc = sw_cfg_str(cfg, "dmsg_discovery");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(cfg, "trusted_pks"), *e;

	if (ts == NULL)
		return NULL;
	ts->svc = svc;
	ts->name = sw_svc_name(svc);
	ts->auth.st = sw_svc_store(svc);
	ts->auth.prefix = TS_PREFIX;
	if (listen == NULL || sw_strlcpy(ts->listen, listen, sizeof(ts->listen)) == -1) {
		sw_log_error(ts->name, "listen must be host:port", NULL);
		goto fail;
	}
	if (disc == NULL || sw_strlcpy(ts->discovery, disc, sizeof(ts->discovery)) == -1 ||
	    strncmp(disc, "http://", 7) != 0) {
		sw_log_error(ts->name, "dmsg_discovery must be an http:// URL", NULL);
		goto fail;
	}
	cJSON_ArrayForEach(e, list) {
		if (ts->ntrusted == TS_MAX_TRUSTED || !cJSON_IsString(e) ||
		    sw_pk_parse(ts->trusted[ts->ntrusted], e->valuestring) == -1) {
			sw_log_error(ts->name, "trusted_pks: at most 64 hex PKs", NULL);
			goto fail;
		}
		ts->ntrusted++;
	}
	if (ts->ntrusted == 0)
		sw_log_warn(ts->name, "trusted_pks is empty: every request will get 403", NULL);
	if (sw_svc_keypair(svc, cfg, &ts->kp) == -1)
		goto fail;
	ts->m_calls = sw_metric_new(sw_svc_metrics(svc), "transport_setup_visor_calls_total",
	    "RPCs made on visors' port 47, by method and result", SW_COUNTER,
	    (const char *[]){"method", "result", NULL}, NULL, 0);
	return ts;
fail:
	free(ts);
	return NULL;
}

static int
ts_start(void *priv)
{
	struct ts *ts = priv;
	struct dmsg_client_opts o;
	char pk[SW_PK_HEX];

	memset(&o, 0, sizeof(o));
	o.discovery = ts->discovery;
	o.min_sessions = 1;
	ts->dmsg = dmsg_client_new(sw_svc_base(ts->svc), &ts->kp, &o, ts->name);
	if (ts->dmsg == NULL || dmsg_client_start(ts->dmsg) == -1)
		return -1;
	ts->http = sw_http_server_new(sw_svc_base(ts->svc), ts->name, sw_svc_metrics(ts->svc));
	if (ts->http == NULL || ts_api_routes(ts) == -1 ||
	    sw_http_server_listen(ts->http, ts->listen) == -1)
		return -1;
	/* The same API on dmsg port 80, on the client it dials visors with. */
	if ((ts->http_dmsg = sw_http_dmsg_serve(sw_svc_base(ts->svc), ts->http, ts->dmsg, 0,
	    ts->name)) == NULL)
		return -1;
	sw_hex_encode(pk, ts->kp.pk, SW_PK_LEN);
	sw_log_info(ts->name, "listening", "addr=%s pk=%s trusted=%zu", ts->listen, pk,
	    ts->ntrusted);
	return 0;
}

static void
ts_stop(void *priv, sw_svc_stopped *done)
{
	struct ts *ts = priv;

	/* Requests in flight end within their deadline; the client goes at destroy. */
	sw_svc_drain(ts->svc, done);
}

static int
ts_health(void *priv, cJSON *checks)
{
	struct ts *ts = priv;
	int n = ts->dmsg != NULL ? dmsg_client_nsessions(ts->dmsg) : 0;

	cJSON_AddStringToObject(checks, "http", ts->http != NULL ? "ok" : "down");
	/* Without a session visors are unreachable (502), but the service is up and retrying. */
	cJSON_AddStringToObject(checks, "dmsg", n >= 1 ? "ok" : "down");
	return ts->http != NULL;
}

static void
ts_destroy(void *priv)
{
	struct ts *ts = priv;

	sw_http_dmsg_server_free(ts->http_dmsg); /* before the dmsg client */
	sw_http_server_free(ts->http);
	dmsg_client_free(ts->dmsg);
	sodium_memzero(&ts->kp, sizeof(ts->kp));
	free(ts);
}

static void
ts_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9099");
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	cJSON_AddItemToObject(inst, "trusted_pks", cJSON_CreateArray());
	sw_svc_gen_keys(inst);
}

const struct sw_service_ops transport_setup_ops = {
	.type = "transport-setup",
	.summary = "adds and removes transports between visors over dmsg port 47",
	.keys = ts_keys,
	.deps = (const char *const[]){"dmsg-server", NULL},
	.uses_store = 1,
	.create = ts_create,
	.start = ts_start,
	.stop = ts_stop,
	.health = ts_health,
	.destroy = ts_destroy,
	.gen_config = ts_gen_config,
};
