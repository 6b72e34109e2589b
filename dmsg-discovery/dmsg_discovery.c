/*
 * dmsg-discovery as a framework service: configuration, start, stop, health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cxo_follow.h"
#include "dict.h"
#include "dmsg_discovery.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include <sodium.h>

static const struct sw_cfg_key dd_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9090", "HTTP address"},
	{"public_key", SW_CFG_STR, NULL, "identity (feed and dmsg key); generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{"cxo_tcp_addr", SW_CFG_STR, NULL, "also serve the CXO feed on this TCP address"},
	{"dmsg_discovery", SW_CFG_STR, NULL,
	    "also serve the CXO feed on dmsg port 46, registered at this dmsg-discovery URL"},
	{"cxo_follow_ms", SW_CFG_INT, NULL,
	    "replicas on one redis: refill the feed from the store this often, so it follows "
	    "writes other replicas took (cxo.md Replicas)"},
	{"cxo_queue_max", SW_CFG_INT, "4096", "feed mutations queued before a rebuild"},
	{"entry_timeout_s", SW_CFG_INT, "180", "client entries expire this long after a write"},
	{"server_entry_timeout_s", SW_CFG_INT, "90", "server entries expire this long after a write"},
	{NULL, 0, NULL, NULL},
};

static void *
dd_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct dd *dd = calloc(1, sizeof(*dd));
	const char *listen = sw_cfg_str(cfg, "listen");

	if (dd == NULL)
		return NULL;
	dd->svc = svc;
	dd->name = sw_svc_name(svc);
	dd->st = sw_svc_store(svc);
	dd->auth.st = dd->st;
	dd->auth.prefix = DD_PREFIX;
	dd->client_ttl_s = sw_cfg_int(cfg, "entry_timeout_s", 180);
	dd->server_ttl_s = sw_cfg_int(cfg, "server_entry_timeout_s", 90);
	if (dd->client_ttl_s < 1 || dd->server_ttl_s < 1) {
		sw_log_error(dd->name, "entry timeouts must be at least 1 s", NULL);
		goto fail;
	}
	if (listen == NULL || strlen(listen) >= sizeof(dd->listen)) {
		sw_log_error(dd->name, "listen must be host:port", NULL);
		goto fail;
	}
	memcpy(dd->listen, listen, strlen(listen) + 1);
	if (cxo_follow_cfg(dd->name, cfg, dd->cxo_addr, dd->dmsg_disc) == -1)
		goto fail;
	if (sw_cfg_int(cfg, "cxo_queue_max", 4096) < 1) {
		sw_log_error(dd->name, "cxo_queue_max must be at least 1", NULL);
		goto fail;
	}
	dd->cxo_queue_max = (size_t)sw_cfg_int(cfg, "cxo_queue_max", 4096);
	dd->follow_ms = sw_cfg_int(cfg, "cxo_follow_ms", 0);
	if (sw_svc_keypair(svc, cfg, &dd->kp) == -1)
		goto fail;
	dd->writing = sw_dict_new(NULL);
	if (dd->writing == NULL)
		goto fail;
	dd->m_posts = sw_metric_new(sw_svc_metrics(svc), "dmsgd_entry_writes_total",
	    "entries written, by kind", SW_COUNTER, (const char *[]){"kind", NULL}, NULL, 0);
	return dd;
fail:
	sw_dict_free(dd->writing);
	free(dd);
	return NULL;
}

static int
dd_start(void *priv)
{
	struct dd *dd = priv;

	dd->http = sw_http_server_new(sw_svc_base(dd->svc), dd->name, sw_svc_metrics(dd->svc));
	if (dd->http == NULL || dd_api_routes(dd) == -1 ||
	    sw_http_server_listen(dd->http, dd->listen) == -1)
		return -1;
	sw_log_info(dd->name, "listening", "addr=%s store=%s", dd->listen,
	    sw_store_is_redis(dd->st) ? "redis" : "memory");
	if ((dd->cxo_addr[0] != '\0' || dd->dmsg_disc[0] != '\0') &&
	    dd_feed_start(dd, dd->cxo_addr, dd->dmsg_disc) == -1)
		return -1;
	/* The HTTP API on dmsg port 80, on the feed's dmsg client. */
	if (cxo_follow_dmsg(dd->feed) != NULL &&
	    (dd->http_dmsg = sw_http_dmsg_serve(sw_svc_base(dd->svc), dd->http,
	    cxo_follow_dmsg(dd->feed), 0, dd->name)) == NULL)
		return -1;
	return 0;
}

static void
dd_stop(void *priv, sw_svc_stopped *done)
{
	struct dd *dd = priv;

	sw_http_dmsg_server_free(dd->http_dmsg); /* before the feed's dmsg client */
	dd->http_dmsg = NULL;
	dd_feed_free(dd);
	sw_svc_drain(dd->svc, done);
}

static int
dd_health(void *priv, cJSON *checks)
{
	struct dd *dd = priv;

	cJSON_AddStringToObject(checks, "http", dd->http != NULL ? "ok" : "down");
	return dd->http != NULL;
}

static void
dd_destroy(void *priv)
{
	struct dd *dd = priv;

	sw_http_dmsg_server_free(dd->http_dmsg);
	dd_feed_free(dd);
	sw_http_server_free(dd->http);
	sw_dict_free(dd->writing);
	sodium_memzero(&dd->kp, sizeof(dd->kp));
	free(dd);
}

static void
dd_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9090");
	/* its feeds (and its HTTP) on dmsg too, as in compose */
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	sw_svc_gen_keys(inst);
}

const struct sw_service_ops dmsg_discovery_ops = {
	.type = "dmsg-discovery",
	.summary = "HTTP registry of dmsg clients and servers",
	.keys = dd_keys,
	.deps = NULL,
	.uses_store = 1,
	.create = dd_create,
	.start = dd_start,
	.stop = dd_stop,
	.health = dd_health,
	.destroy = dd_destroy,
	.gen_config = dd_gen_config,
};
