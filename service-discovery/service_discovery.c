/*
 * service-discovery as a framework service: configuration, start, stop,
 * health.  Its key pair is the identity of its services-by-pk feed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dict.h"
#include "cxo_follow.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "service_discovery.h"
#include "store.h"
#include "svc_api_cache.h"

static const struct sw_cfg_key sd_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9098", "HTTP address"},
	{"public_key", SW_CFG_STR, NULL, "identity (feed key); generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{"cxo_tcp_addr", SW_CFG_STR, NULL, "also serve the CXO feed on this TCP address"},
	{"dmsg_discovery", SW_CFG_STR, NULL,
	    "also serve the CXO feed on its dmsg port, registered at this dmsg-discovery URL"},
	{"cxo_follow_ms", SW_CFG_INT, NULL,
	    "replicas on one redis: refill the feed from the store this often, so it follows "
	    "writes other replicas took (cxo.md Replicas)"},
	{"entry_timeout_s", SW_CFG_INT, "600", "services expire this long after their last post"},
	{"list_cache_bytes", SW_CFG_INT, "16777216",
	    "bytes of list answers kept between reads (0: none); exact across replicas"},
	{NULL, 0, NULL, NULL},
};

static void *
sd_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct sd *sd = calloc(1, sizeof(*sd));
	const char *listen = sw_cfg_str(cfg, "listen");

	if (sd == NULL)
		return NULL;
	sd->svc = svc;
	sd->name = sw_svc_name(svc);
	sd->st = sw_svc_store(svc);
	sd->auth.st = sd->st;
	sd->auth.prefix = SD_PREFIX;
	sd->ttl_s = sw_cfg_int(cfg, "entry_timeout_s", 600);
	sd->follow_ms = sw_cfg_int(cfg, "cxo_follow_ms", 0);
	if (sd->ttl_s < 1) {
		sw_log_error(sd->name, "entry_timeout_s must be at least 1", NULL);
		goto fail;
	}
	if (listen == NULL || strlen(listen) >= sizeof(sd->listen)) {
		sw_log_error(sd->name, "listen must be host:port", NULL);
		goto fail;
	}
	memcpy(sd->listen, listen, strlen(listen) + 1);
	if (cxo_follow_cfg(sd->name, cfg, sd->cxo_addr, sd->dmsg_disc) == -1 ||
	    sw_svc_keypair(svc, cfg, &sd->kp) == -1)
		goto fail;
	sd->writing = sw_dict_new(NULL);
	if (sd->writing == NULL || (sd->cache = sw_api_cache_cfg(svc, cfg)) == NULL)
		goto fail;
	sd->m_writes = sw_metric_new(sw_svc_metrics(svc), "sd_service_writes_total",
	    "services written, by kind", SW_COUNTER, (const char *[]){"kind", NULL}, NULL, 0);
	sd->m_feed = sw_metric_new(sw_svc_metrics(svc), "sd_feed_changes_total",
	    "mutations handed to the services-by-pk feed", SW_COUNTER,
	    (const char *[]){"op", NULL}, NULL, 0);
	return sd;
fail:
	sw_dict_free(sd->writing);
	sw_api_cache_free(sd->cache);
	sodium_memzero(&sd->kp, sizeof(sd->kp));
	free(sd);
	return NULL;
}

static int
sd_start(void *priv)
{
	struct sd *sd = priv;

	sd->http = sw_http_server_new(sw_svc_base(sd->svc), sd->name, sw_svc_metrics(sd->svc));
	if (sd->http == NULL || sd_api_routes(sd) == -1 ||
	    sw_http_server_listen(sd->http, sd->listen) == -1)
		return -1;
	if ((sd->cxo_addr[0] != '\0' || sd->dmsg_disc[0] != '\0') &&
	    sd_feed_start(sd, sd->cxo_addr) == -1)
		return -1;
	/* The HTTP API on dmsg port 80, on the feed's dmsg client. */
	if (cxo_follow_dmsg(sd->feed) != NULL &&
	    (sd->http_dmsg = sw_http_dmsg_serve(sw_svc_base(sd->svc), sd->http,
	    cxo_follow_dmsg(sd->feed), 0, sd->name)) == NULL)
		return -1;
	sw_log_info(sd->name, "listening", "addr=%s store=%s", sd->listen,
	    sw_store_is_redis(sd->st) ? "redis" : "memory");
	return 0;
}

static void
sd_stop(void *priv, sw_svc_stopped *done)
{
	struct sd *sd = priv;

	sw_http_dmsg_server_free(sd->http_dmsg); /* before the feed's dmsg client */
	sd->http_dmsg = NULL;
	sd_feed_stop(sd, done);
}

static int
sd_health(void *priv, cJSON *checks)
{
	struct sd *sd = priv;

	cJSON_AddStringToObject(checks, "http", sd->http != NULL ? "ok" : "down");
	return sd->http != NULL;
}

static void
sd_destroy(void *priv)
{
	struct sd *sd = priv;

	sw_http_dmsg_server_free(sd->http_dmsg);
	sd_feed_free(sd);
	sw_http_server_free(sd->http);
	sw_dict_free(sd->writing);
	sw_api_cache_free(sd->cache);
	sodium_memzero(&sd->kp, sizeof(sd->kp));
	free(sd);
}

static void
sd_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9098");
	/* its feeds (and its HTTP) on dmsg too, as in compose */
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	sw_svc_gen_keys(inst);
}

const struct sw_service_ops service_discovery_ops = {
	.type = "service-discovery",
	.summary = "registry of visor services (visor, vpn, skysocks) by type and key",
	.keys = sd_keys,
	.deps = NULL,
	.uses_store = 1,
	.create = sd_create,
	.start = sd_start,
	.stop = sd_stop,
	.health = sd_health,
	.destroy = sd_destroy,
	.gen_config = sd_gen_config,
};
