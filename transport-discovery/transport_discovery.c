/*
 * transport-discovery as a framework service: configuration, start, stop,
 * health.  Its key pair is the identity of its all-transports feed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cxo_follow.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "svc_api_cache.h"
#include "transport_discovery.h"

static const struct sw_cfg_key tpd_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9091", "HTTP address"},
	{"public_key", SW_CFG_STR, NULL, "identity (feed key); generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{"cxo_tcp_addr", SW_CFG_STR, NULL, "also serve the CXO feed on this TCP address"},
	{"dmsg_discovery", SW_CFG_STR, NULL,
	    "also serve the CXO feed on its dmsg port, registered at this dmsg-discovery URL"},
	{"cxo_follow_ms", SW_CFG_INT, NULL,
	    "replicas on one redis: refill the feed from the store this often, so it follows "
	    "writes other replicas took (cxo.md Replicas)"},
	{"entry_timeout_s", SW_CFG_INT, "300", "transports expire this long after their last post"},
	{"list_cache_bytes", SW_CFG_INT, "16777216",
	    "bytes of list answers kept between reads (0: none); exact across replicas"},
	{NULL, 0, NULL, NULL},
};

static void *
tpd_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct tpd *tpd = calloc(1, sizeof(*tpd));
	const char *listen = sw_cfg_str(cfg, "listen");

	if (tpd == NULL)
		return NULL;
	tpd->svc = svc;
	tpd->name = sw_svc_name(svc);
	tpd->st = sw_svc_store(svc);
	tpd->auth.st = tpd->st;
	tpd->auth.prefix = TPD_PREFIX;
	tpd->ttl_s = sw_cfg_int(cfg, "entry_timeout_s", 300);
	tpd->follow_ms = sw_cfg_int(cfg, "cxo_follow_ms", 0);
	if (tpd->ttl_s < 1) {
		sw_log_error(tpd->name, "entry_timeout_s must be at least 1", NULL);
		goto fail;
	}
	if (listen == NULL || strlen(listen) >= sizeof(tpd->listen)) {
		sw_log_error(tpd->name, "listen must be host:port", NULL);
		goto fail;
	}
	memcpy(tpd->listen, listen, strlen(listen) + 1);
	if (sw_svc_keypair(svc, cfg, &tpd->kp) == -1)
		goto fail;
	if (cxo_follow_cfg(tpd->name, cfg, tpd->cxo_addr, tpd->dmsg_disc) == -1)
		goto fail;
	tpd->m_writes = sw_metric_new(sw_svc_metrics(svc), "tpd_transport_writes_total",
	    "transports written, by operation", SW_COUNTER, (const char *[]){"op", NULL}, NULL,
	    0);
	tpd->m_feed = sw_metric_new(sw_svc_metrics(svc), "tpd_feed_changes_total",
	    "changes handed to the all-transports feed", SW_COUNTER,
	    (const char *[]){"op", NULL}, NULL, 0);
	if ((tpd->cache = sw_api_cache_cfg(svc, cfg)) == NULL)
		goto fail;
	return tpd;
fail:
	free(tpd);
	return NULL;
}

static int
tpd_start(void *priv)
{
	struct tpd *tpd = priv;

	tpd->http = sw_http_server_new(sw_svc_base(tpd->svc), tpd->name, sw_svc_metrics(tpd->svc));
	if (tpd->http == NULL || tpd_api_routes(tpd) == -1 ||
	    sw_http_server_listen(tpd->http, tpd->listen) == -1)
		return -1;
	if ((tpd->cxo_addr[0] != '\0' || tpd->dmsg_disc[0] != '\0') && tpd_feed_start(tpd) == -1)
		return -1;
	/* The HTTP API on dmsg port 80, on the feed's dmsg client. */
	if (cxo_follow_dmsg(tpd->feed) != NULL &&
	    (tpd->http_dmsg = sw_http_dmsg_serve(sw_svc_base(tpd->svc), tpd->http,
	    cxo_follow_dmsg(tpd->feed), 0, tpd->name)) == NULL)
		return -1;
	sw_log_info(tpd->name, "listening", "addr=%s store=%s ttl_s=%lld", tpd->listen,
	    sw_store_is_redis(tpd->st) ? "redis" : "memory", tpd->ttl_s);
	return 0;
}

static void
tpd_stop(void *priv, sw_svc_stopped *done)
{
	struct tpd *tpd = priv;

	sw_http_dmsg_server_free(tpd->http_dmsg); /* before the feed's dmsg client */
	tpd->http_dmsg = NULL;
	tpd_feed_stop(tpd, done);
}

static int
tpd_health(void *priv, cJSON *checks)
{
	struct tpd *tpd = priv;

	cJSON_AddStringToObject(checks, "http", tpd->http != NULL ? "ok" : "down");
	return tpd->http != NULL;
}

static void
tpd_destroy(void *priv)
{
	struct tpd *tpd = priv;

	sw_http_dmsg_server_free(tpd->http_dmsg);
	sw_http_server_free(tpd->http);
	tpd_feed_free(tpd);
	sw_api_cache_free(tpd->cache);
	sodium_memzero(&tpd->kp, sizeof(tpd->kp));
	free(tpd);
}

static void
tpd_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9091");
	/* its feeds (and its HTTP) on dmsg too, as in compose */
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	sw_svc_gen_keys(inst);
}

const struct sw_service_ops transport_discovery_ops = {
	.type = "transport-discovery",
	.summary = "HTTP registry of transports between visors",
	.keys = tpd_keys,
	.deps = NULL,
	.uses_store = 1,
	.create = tpd_create,
	.start = tpd_start,
	.stop = tpd_stop,
	.health = tpd_health,
	.destroy = tpd_destroy,
	.gen_config = tpd_gen_config,
};
