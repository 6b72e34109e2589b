/*
 * route-finder as a framework service: configuration, start (the graph's
 * source and the HTTP API), stop, health.  The source is the shared store
 * (a refresh timer, store.c) unless transport_discovery_pk names the
 * publisher of the all-transports feed (feed.c: over TCP to feed_addr, else
 * over dmsg through dmsg_discovery).  It is healthy once the graph has been
 * loaded the first time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/util.h>
#include <sodium.h>

#include "clock.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "route_finder.h"
#include "store.h"
#include "str.h"

static const struct sw_cfg_key rf_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9092", "HTTP address"},
	{"refresh_ms", SW_CFG_INT, "500",
	    "how often to check transport-discovery's store for changes"},
	{"transport_discovery_pk", SW_CFG_STR, NULL,
	    "all-transports feed publisher: follow its feed instead of the store"},
	{"feed_addr", SW_CFG_STR, NULL, "the feed over TCP (its cxo_tcp_addr), ip:port"},
	{"dmsg_discovery", SW_CFG_STR, NULL, "the feed over dmsg, through this dmsg-discovery URL"},
	{"http_dmsg_discovery", SW_CFG_STR, NULL,
	    "serve the HTTP API on dmsg port 80 too, registered at this dmsg-discovery URL"},
	{"public_key", SW_CFG_STR, NULL, "dmsg identity; generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{NULL, 0, NULL, NULL},
};

static const char *const rf_deps[] = {"transport-discovery", NULL};

/* A numeric ip:port (or localhost:port), as cxo_tcp_dial takes it. */
static int
tcp_addr_valid(const char *addr)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char buf[64];

	if (strncmp(addr, "localhost:", 10) == 0) {
		snprintf(buf, sizeof(buf), "127.0.0.1:%s", addr + 10);
		addr = buf;
	}
	return evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sl) == 0;
}

/* HTTP over dmsg without the feed on dmsg: a dmsg client with the service's key. */
static int
http_dmsg_config(struct rf *rf, const cJSON *cfg)
{
	const char *u = sw_cfg_str(cfg, "http_dmsg_discovery");

	if (u == NULL || *u == '\0' || rf->dmsg_disc[0] != '\0')
		return 0;
	if (strlen(u) >= sizeof(rf->http_dmsg_disc) || strncmp(u, "http://", 7) != 0) {
		sw_log_error(rf->name, "http_dmsg_discovery must be an http:// URL", NULL);
		return -1;
	}
	memcpy(rf->http_dmsg_disc, u, strlen(u) + 1);
	return sw_svc_keypair(rf->svc, cfg, &rf->kp);
}

/* The source of transports: 0, or -1 logged. */
static int
feed_config(struct rf *rf, const cJSON *cfg)
{
	const char *pk = sw_cfg_str(cfg, "transport_discovery_pk");
	const char *addr = sw_cfg_str(cfg, "feed_addr"), *dd = sw_cfg_str(cfg, "dmsg_discovery");

	/* "" like absent: a deployment template may leave the keys empty. */
	if (addr != NULL && *addr == '\0')
		addr = NULL;
	if (dd != NULL && *dd == '\0')
		dd = NULL;
	if (pk == NULL || *pk == '\0') {
		if (addr != NULL || dd != NULL) {
			sw_log_error(rf->name, "feed_addr and dmsg_discovery need "
			    "transport_discovery_pk (the feed key)", NULL);
			return -1;
		}
		return 0;
	}
	if (sw_pk_parse(rf->tpd_pk, pk) == -1) {
		sw_log_error(rf->name, "transport_discovery_pk must be 64 lowercase hex chars", NULL);
		return -1;
	}
	rf->feed = 1;
	if (addr != NULL) {
		if (sw_strlcpy(rf->feed_addr, addr, sizeof(rf->feed_addr)) == -1 ||
		    !tcp_addr_valid(addr)) {
			sw_log_error(rf->name, "feed_addr must be a numeric ip:port", NULL);
			return -1;
		}
		return 0;
	}
	if (dd == NULL || sw_strlcpy(rf->dmsg_disc, dd, sizeof(rf->dmsg_disc)) == -1 ||
	    strncmp(dd, "http://", 7) != 0) {
		sw_log_error(rf->name, "with transport_discovery_pk, set feed_addr or "
		    "dmsg_discovery (an http:// URL)", NULL);
		return -1;
	}
	return sw_svc_keypair(rf->svc, cfg, &rf->kp);
}

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
	if (listen == NULL || sw_strlcpy(rf->listen, listen, sizeof(rf->listen)) == -1) {
		sw_log_error(rf->name, "listen must be host:port", NULL);
		goto fail;
	}
	if (feed_config(rf, cfg) == -1)
		goto fail;
	if (http_dmsg_config(rf, cfg) == -1)
		goto fail;
	rf->g = rf_graph_new();
	if (rf->g == NULL)
		goto fail;
	rf->m_loads = sw_metric_new(m, "rf_graph_loads_total",
	    "loads of changed transports from the store or the feed", SW_COUNTER, NULL, NULL, 0);
	rf->m_nodes = sw_metric_new(m, "rf_graph_visors", "visors in the graph", SW_GAUGE, NULL,
	    NULL, 0);
	rf->m_edges = sw_metric_new(m, "rf_graph_transports", "transports in the graph",
	    SW_GAUGE, NULL, NULL, 0);
	rf->m_search = sw_metric_new(m, "rf_search_seconds", "time to find the paths of one pair",
	    SW_HISTOGRAM, NULL, NULL, 0);
	return rf;
fail:
	sodium_memzero(&rf->kp, sizeof(rf->kp));
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
	if (rf->feed) {
		if (rf_feed_start(rf) == -1)
			return -1;
	} else {
		rf->tick = event_new(sw_svc_base(rf->svc), -1, EV_PERSIST, on_tick, rf);
		if (rf->tick == NULL || sw_timer_in(rf->tick, rf->refresh_ms) == -1)
			return -1;
	}
	rf->http = sw_http_server_new(sw_svc_base(rf->svc), rf->name, sw_svc_metrics(rf->svc));
	if (rf->http == NULL || rf_api_routes(rf) == -1 ||
	    sw_http_server_listen(rf->http, rf->listen) == -1)
		return -1;
	/* HTTP over dmsg: on the feed's dmsg client, or on one of its own. */
	if (rf->dmsg != NULL)
		rf->http_dmsg = sw_http_dmsg_serve(sw_svc_base(rf->svc), rf->http, rf->dmsg, 0,
		    rf->name);
	else if (rf->http_dmsg_disc[0] != '\0')
		rf->http_dmsg = sw_http_dmsg_serve_as(sw_svc_base(rf->svc), rf->http, &rf->kp,
		    rf->http_dmsg_disc, rf->name);
	if ((rf->dmsg != NULL || rf->http_dmsg_disc[0] != '\0') && rf->http_dmsg == NULL)
		return -1;
	if (rf->feed) {
		sw_log_info(rf->name, "listening", "addr=%s source=feed", rf->listen);
		return 0;
	}
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
	/* Searches go on over the graph while requests drain; it no longer changes. */
	rf_feed_stop(rf);
	sw_svc_drain(rf->svc, done);
}

static int
rf_health(void *priv, cJSON *checks)
{
	struct rf *rf = priv;

	cJSON_AddStringToObject(checks, "http", rf->http != NULL ? "ok" : "down");
	cJSON_AddStringToObject(checks, "graph", rf->loaded ? "ok" : "loading");
	/* A feed down is reported, not unhealthy: the last graph still answers. */
	if (rf->feed)
		rf_feed_health(rf, checks);
	return rf->http != NULL && rf->loaded;
}

static void
rf_destroy(void *priv)
{
	struct rf *rf = priv;

	if (rf->tick != NULL)
		event_free(rf->tick);
	sw_http_dmsg_server_free(rf->http_dmsg); /* before the dmsg client and the server */
	rf_feed_free(rf);
	sodium_memzero(&rf->kp, sizeof(rf->kp));
	sw_http_server_free(rf->http);
	rf_graph_free(rf->g);
	free(rf->pend);
	free(rf);
}

static void
rf_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9092");
	/* its HTTP on dmsg port 80 too (visors get its key: route_finder_pk) */
	cJSON_AddStringToObject(inst, "http_dmsg_discovery", "http://127.0.0.1:9090");
	sw_svc_gen_keys(inst);
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
