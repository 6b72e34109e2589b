/*
 * setup-node as a framework service: its dmsg identity and client, the
 * dial_route_group server on dmsg port 36, and an HTTP port for /health
 * and /metrics only.
 *
 * The one idea: everything a request can be refused for without the
 * network is decided in the handler, synchronously (check.c), and the
 * max_in_flight bound is taken before the request is parsed further, so a
 * flood costs one "busy" frame per stream and no visor call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dmsg_client.h"
#include "frpc.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "setup_node.h"

static const struct sw_cfg_key sn_keys[] = {
	{"public_key", SW_CFG_STR, NULL, "identity; must match secret_key"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars (generated when absent)"},
	{"dmsg_discovery", SW_CFG_STR, "http://127.0.0.1:9090", "dmsg-discovery URL"},
	{"transport_discovery", SW_CFG_STR, "http://127.0.0.1:9091",
	    "transport-discovery URL (each hop's t_id is checked there)"},
	{"transport_discovery_pk", SW_CFG_STR, NULL,
	    "its feed key: hops the feed confirms skip the HTTP check"},
	{"health_listen", SW_CFG_STR, "127.0.0.1:9094", "HTTP /health and /metrics"},
	{"max_in_flight", SW_CFG_INT, "256", "requests being set up at once; more get busy"},
	{NULL, 0, NULL, NULL},
};

static int
copy_cfg(struct sn *sn, const cJSON *cfg, const char *key, char *out, size_t size)
{
	const char *s = sw_cfg_str(cfg, key);

	if (s == NULL || s[0] == '\0' || strlen(s) >= size) {
		sw_log_error(sn->name, "bad config value", "key=%s", key);
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static void *
sn_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct sn *sn = calloc(1, sizeof(*sn));

	if (sn == NULL)
		return NULL;
	sn->svc = svc;
	sn->name = sw_svc_name(svc);
	if (sw_svc_keypair(svc, cfg, &sn->kp) == -1 ||
	    copy_cfg(sn, cfg, "dmsg_discovery", sn->discovery, sizeof(sn->discovery)) == -1 ||
	    copy_cfg(sn, cfg, "transport_discovery", sn->tpd, sizeof(sn->tpd)) == -1 ||
	    copy_cfg(sn, cfg, "health_listen", sn->health_listen, sizeof(sn->health_listen)) == -1)
		goto fail;
	if (sw_cfg_str(cfg, "transport_discovery_pk") != NULL) {
		if (sw_pk_parse(sn->tpd_pk, sw_cfg_str(cfg, "transport_discovery_pk")) == -1) {
			sw_log_error(sn->name, "transport_discovery_pk must be 64 lowercase hex chars",
			    NULL);
			goto fail;
		}
		sn->has_tpd_pk = 1;
	}
	sn->max_in_flight = sw_cfg_int(cfg, "max_in_flight", SN_MAX_IN_FLIGHT);
	if (sn->max_in_flight < 1 || sn->max_in_flight > 100000) {
		sw_log_error(sn->name, "max_in_flight must be 1..100000", NULL);
		goto fail;
	}
	return sn;
fail:
	sodium_memzero(&sn->kp, sizeof(sn->kp));
	free(sn);
	return NULL;
}

static void
refuse(struct sn *sn, struct frpc_req *req, const char *outcome, const char *err)
{
	const char *lv[] = {outcome};

	sw_metric_add(sn->m_requests, lv, 1);
	frpc_reply_error(req, "%s", err);
}

static void
handle(struct frpc_req *req, const char *method, const cJSON *params, void *arg)
{
	struct sn *sn = arg;
	struct sn_ask a;
	char err[256];

	if (strcmp(method, "dial_route_group") != 0) {
		refuse(sn, req, "refused", "unknown method");
		return;
	}
	if (sn->in_flight >= sn->max_in_flight || sn->stopping) {
		refuse(sn, req, "busy", "busy");
		return;
	}
	if (sn_check(params, frpc_req_pk(req), &a, err, sizeof(err)) == -1) {
		const char *lv[] = {"check"};

		sw_metric_add(sn->m_failures, lv, 1);
		refuse(sn, req, "refused", err);
		return;
	}
	sn_setup_start(sn, req, &a);
}

static int
sn_start(void *priv)
{
	struct sn *sn = priv;
	struct sw_metrics *ms = sw_svc_metrics(sn->svc);
	struct dmsg_client_opts o = {.discovery = sn->discovery, .min_sessions = 1};
	static const char *const outcome[] = {"outcome", NULL}, *const step[] = {"step", NULL};
	static const char *const source[] = {"source", NULL};

	sn->m_requests = sw_metric_new(ms, "setup_requests_total",
	    "dial_route_group requests by outcome (ok, refused, failed, busy)", SW_COUNTER,
	    outcome, NULL, 0);
	sn->m_failures = sw_metric_new(ms, "setup_failures_total",
	    "failed requests by step", SW_COUNTER, step, NULL, 0);
	sn->m_latency = sw_metric_new(ms, "setup_latency_seconds",
	    "time from request to answer of successful setups", SW_HISTOGRAM, NULL, NULL, 0);
	sn->m_checks = sw_metric_new(ms, "setup_transport_checks_total",
	    "hops checked, by source (feed: confirmed by the feed; http: asked)", SW_COUNTER,
	    source, NULL, 0);
	sn->m_feed = sw_metric_new(ms, "setup_transport_feed_live",
	    "1 while the transport feed's snapshot is live (checks it holds skip HTTP)", SW_GAUGE,
	    NULL, NULL, 0);
	if ((sn->http = sw_http_client_new(sw_svc_base(sn->svc), sn->name)) == NULL)
		return -1;
	sn->dmsg = dmsg_client_new(sw_svc_base(sn->svc), &sn->kp, &o, sn->name);
	if (sn->dmsg == NULL || dmsg_client_start(sn->dmsg) == -1)
		return -1;
	sn->rpc = frpc_server_new(sw_svc_base(sn->svc), sn->dmsg, SN_PORT, NULL, handle, sn,
	    sn->name);
	sn->pool = frpc_pool_new(sw_svc_base(sn->svc), sn->dmsg, SN_VISOR_PORT, SN_POOL_PER_VISOR,
	    SN_POOL_VISORS, SN_POOL_KEEP_MS, sn->name);
	if (sn->rpc == NULL || sn->pool == NULL || sn_feed_start(sn) == -1)
		return -1;
	sn->hs = sw_http_server_new(sw_svc_base(sn->svc), sn->name, ms);
	if (sn->hs == NULL || sw_svc_http_attach(sn->svc, sn->hs) == -1 ||
	    sw_http_server_listen(sn->hs, sn->health_listen) == -1)
		return -1;
	/* Its HTTP routes on dmsg port 80 too, like every service with a dmsg identity. */
	if ((sn->http_dmsg = sw_http_dmsg_serve(sw_svc_base(sn->svc), sn->hs, sn->dmsg, 0,
	    sn->name)) == NULL)
		return -1;
	{
		char pk[SW_PK_HEX];

		sw_hex_encode(pk, sn->kp.pk, SW_PK_LEN);
		sw_log_info(sn->name, "listening", "pk=%s dmsg_port=%d health=%s", pk, SN_PORT,
		    sn->health_listen);
	}
	return 0;
}

static void
sn_stop(void *priv, sw_svc_stopped *done)
{
	struct sn *sn = priv;

	sn->stopping = 1;
	frpc_server_free(sn->rpc);
	sn->rpc = NULL;
	sn_setup_stop_all(sn);
	frpc_pool_free(sn->pool);
	sn->pool = NULL;
	sn_feed_free(sn);
	sw_svc_drain(sn->svc, done);
}

static int
sn_health(void *priv, cJSON *checks)
{
	struct sn *sn = priv;
	int up = sn->dmsg != NULL && dmsg_client_nsessions(sn->dmsg) >= 1;

	cJSON_AddStringToObject(checks, "dmsg", up ? "ok" : "down");
	return up;
}

static void
sn_destroy(void *priv)
{
	struct sn *sn = priv;

	frpc_server_free(sn->rpc);
	sn_setup_stop_all(sn);
	frpc_pool_free(sn->pool);
	sn_feed_free(sn);
	sw_http_client_free(sn->http); /* late lookups free their requests */
	sw_http_dmsg_server_free(sn->http_dmsg); /* before the dmsg client */
	dmsg_client_free(sn->dmsg);
	sw_http_server_free(sn->hs);
	sodium_memzero(&sn->kp, sizeof(sn->kp));
	free(sn);
}

static void
sn_gen_config(cJSON *inst)
{
	sw_svc_gen_keys(inst);
	/* Written out, not left to the defaults, so that moving a port moves them all. */
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	cJSON_AddStringToObject(inst, "transport_discovery", "http://127.0.0.1:9091");
	cJSON_AddStringToObject(inst, "health_listen", "127.0.0.1:9094");
}

static void
sn_gen_wire(cJSON *inst, const cJSON *services)
{
	sw_svc_gen_link(inst, "transport_discovery_pk", services, "transport-discovery", 0);
}

const struct sw_service_ops setup_node_ops = {
	.type = "setup-node",
	.summary = "sets up route groups: rules on every visor of both paths, or none",
	.keys = sn_keys,
	.deps = (const char *const[]){"dmsg-server", "transport-discovery", NULL},
	.uses_store = 0,
	.create = sn_create,
	.start = sn_start,
	.stop = sn_stop,
	.health = sn_health,
	.destroy = sn_destroy,
	.gen_config = sn_gen_config,
	.gen_wire = sn_gen_wire,
};
