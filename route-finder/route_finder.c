/*
 * route-finder as a framework service: configuration, start (the graph's
 * refresh timer and the HTTP API), stop, health.  It is healthy once the
 * graph has been loaded from the store the first time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "route_finder.h"
#include "store.h"

static const struct sw_cfg_key rf_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9092", "HTTP address"},
	{"refresh_ms", SW_CFG_INT, "500",
	    "how often to check transport-discovery's store for changes"},
	{NULL, 0, NULL, NULL},
};

static const char *const rf_deps[] = {"transport-discovery", NULL};

static void *
rf_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct rf *rf = calloc(1, sizeof(*rf));
	const char *listen = sw_cfg_str(cfg, "listen");
	struct sw_metrics *m = sw_svc_metrics(svc);

	if (rf == NULL)
		return NULL;
	rf->svc = svc;
	rf->name = sw_svc_name(svc);
	rf->st = sw_svc_store(svc);
	rf->refresh_ms = sw_cfg_int(cfg, "refresh_ms", 500);
	if (rf->refresh_ms < 10 || rf->refresh_ms > 60000) {
		sw_log_error(rf->name, "refresh_ms must be within 10..60000", NULL);
		goto fail;
	}
	if (listen == NULL || strlen(listen) >= sizeof(rf->listen)) {
		sw_log_error(rf->name, "listen must be host:port", NULL);
		goto fail;
	}
	memcpy(rf->listen, listen, strlen(listen) + 1);
	rf->g = rf_graph_new();
	if (rf->g == NULL)
		goto fail;
	rf->m_loads = sw_metric_new(m, "rf_graph_loads_total",
	    "loads of changed transports from the store", SW_COUNTER, NULL, NULL, 0);
	rf->m_nodes = sw_metric_new(m, "rf_graph_visors", "visors in the graph", SW_GAUGE, NULL,
	    NULL, 0);
	rf->m_edges = sw_metric_new(m, "rf_graph_transports", "transports in the graph",
	    SW_GAUGE, NULL, NULL, 0);
	rf->m_search = sw_metric_new(m, "rf_search_seconds", "time to find the paths of one pair",
	    SW_HISTOGRAM, NULL, NULL, 0);
	return rf;
fail:
	free(rf);
	return NULL;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rf_store_tick(arg);
}

static int
rf_start(void *priv)
{
	struct rf *rf = priv;
	struct timeval tv = {rf->refresh_ms / 1000, (rf->refresh_ms % 1000) * 1000};

	rf->tick = event_new(sw_svc_base(rf->svc), -1, EV_PERSIST, on_tick, rf);
	if (rf->tick == NULL || event_add(rf->tick, &tv) == -1)
		return -1;
	rf->http = sw_http_server_new(sw_svc_base(rf->svc), rf->name, sw_svc_metrics(rf->svc));
	if (rf->http == NULL || rf_api_routes(rf) == -1 ||
	    sw_http_server_listen(rf->http, rf->listen) == -1)
		return -1;
	rf_store_tick(rf);
	sw_log_info(rf->name, "listening", "addr=%s store=%s refresh_ms=%lld", rf->listen,
	    sw_store_is_redis(rf->st) ? "redis" : "memory", rf->refresh_ms);
	return 0;
}

static void
rf_stop(void *priv, sw_svc_stopped *done)
{
	struct rf *rf = priv;

	/* A load under way notices the stop at its next step and ends there. */
	if (rf->tick != NULL)
		event_del(rf->tick);
	sw_svc_drain(rf->svc, done);
}

static int
rf_health(void *priv, cJSON *checks)
{
	struct rf *rf = priv;

	cJSON_AddStringToObject(checks, "http", rf->http != NULL ? "ok" : "down");
	cJSON_AddStringToObject(checks, "graph", rf->loaded ? "ok" : "loading");
	return rf->http != NULL && rf->loaded;
}

static void
rf_destroy(void *priv)
{
	struct rf *rf = priv;

	if (rf->tick != NULL)
		event_free(rf->tick);
	sw_http_server_free(rf->http);
	rf_graph_free(rf->g);
	free(rf->pend);
	free(rf);
}

static void
rf_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9092");
}

const struct sw_service_ops route_finder_ops = {
	.type = "route-finder",
	.summary = "paths between visors over the registered transports",
	.keys = rf_keys,
	.deps = rf_deps,
	.uses_store = 1,
	.create = rf_create,
	.start = rf_start,
	.stop = rf_stop,
	.health = rf_health,
	.destroy = rf_destroy,
	.gen_config = rf_gen_config,
};
