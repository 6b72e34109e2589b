/*
 * tpviz as a framework service: its configuration, its dmsg client (the
 * feeds' carrier, and its own HTTP API on dmsg port 80), start, stop,
 * health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cxo_dmsg.h"
#include "cxo_obj.h"
#include "cxo_mgr.h"
#include "dmsg_client.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "tpviz.h"

static const struct sw_cfg_key tpviz_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9096", "HTTP address (the page and the JSON API)"},
	{"public_key", SW_CFG_STR, NULL, "dmsg identity; generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{"dmsg_discovery", SW_CFG_STR, "http://127.0.0.1:9090", "dmsg-discovery URL"},
	{"transport_discovery", SW_CFG_STR, "http://127.0.0.1:9091", "transport-discovery URL"},
	{"service_discovery", SW_CFG_STR, "http://127.0.0.1:9098", "service-discovery URL"},
	{"dmsg_discovery_pk", SW_CFG_STR, NULL, "clients-by-server feed publisher (absent: HTTP)"},
	{"transport_discovery_pk", SW_CFG_STR, NULL, "all-transports feed publisher (absent: HTTP)"},
	{"service_discovery_pk", SW_CFG_STR, NULL, "services-by-pk feed publisher (absent: HTTP)"},
	{"poll_ms", SW_CFG_INT, "250", "how often the views look for a new snapshot"},
	{NULL, 0, NULL, NULL},
};

static int
copy_url(struct tpviz *t, char *dst, size_t size, const cJSON *cfg, const char *key)
{
	const char *s = sw_cfg_str(cfg, key);

	if (s == NULL || strncmp(s, "http://", 7) != 0 || strlen(s) >= size) {
		sw_log_error(t->name, "must be an http:// URL", "key=%s", key);
		return -1;
	}
	memcpy(dst, s, strlen(s) + 1);
	/* Paths are appended: no trailing slash. */
	while (strlen(dst) > 7 && dst[strlen(dst) - 1] == '/')
		dst[strlen(dst) - 1] = '\0';
	return 0;
}

static int
view_pk(struct tpviz *t, struct tpviz_view *v, const cJSON *cfg, const char *key)
{
	const char *hex = sw_cfg_str(cfg, key);

	if (hex == NULL || *hex == '\0')
		return 0;
	if (sw_pk_parse(v->pk, hex) == -1) {
		sw_log_error(t->name, "publisher key must be 64 lowercase hex chars", "key=%s", key);
		return -1;
	}
	v->has_pk = 1;
	return 0;
}

static void *
tpviz_create(struct sw_svc *svc, const cJSON *cfg)
{
	static const char *const types[] = {"visor", "vpn", "skysocks"};
	struct tpviz *t = calloc(1, sizeof(*t));
	const char *listen = sw_cfg_str(cfg, "listen");

	if (t == NULL)
		return NULL;
	t->svc = svc;
	t->name = sw_svc_name(svc);
	t->poll_ms = sw_cfg_int(cfg, "poll_ms", 250);
	if (t->poll_ms < 20 || t->poll_ms > 60000) {
		sw_log_error(t->name, "poll_ms must be 20..60000", NULL);
		goto fail;
	}
	if (listen == NULL || strlen(listen) >= sizeof(t->listen)) {
		sw_log_error(t->name, "listen must be host:port", NULL);
		goto fail;
	}
	memcpy(t->listen, listen, strlen(listen) + 1);
	if (copy_url(t, t->dd_url, sizeof(t->dd_url), cfg, "dmsg_discovery") == -1 ||
	    copy_url(t, t->tpd_url, sizeof(t->tpd_url), cfg, "transport_discovery") == -1 ||
	    copy_url(t, t->sd_url, sizeof(t->sd_url), cfg, "service_discovery") == -1)
		goto fail;
	t->views[TV_TRANSPORTS].feed = "all-transports";
	t->views[TV_TRANSPORTS].port = CXO_PORT_ALL_TRANSPORTS;
	snprintf(t->views[TV_TRANSPORTS].prefix, sizeof(t->views[0].prefix), "transports");
	snprintf(t->views[TV_TRANSPORTS].url, sizeof(t->views[0].url), "%s/all-transports",
	    t->tpd_url);
	if (view_pk(t, &t->views[TV_TRANSPORTS], cfg, "transport_discovery_pk") == -1)
		goto fail;
	for (int i = 0; i < 3; i++) {
		struct tpviz_view *v = &t->views[TV_SVC_VISOR + i];

		v->feed = "services-by-pk";
		v->port = CXO_PORT_SERVICES_BY_PK;
		snprintf(v->prefix, sizeof(v->prefix), "services/%s", types[i]);
		snprintf(v->url, sizeof(v->url), "%s/api/services?type=%s", t->sd_url, types[i]);
		if (view_pk(t, v, cfg, "service_discovery_pk") == -1)
			goto fail;
	}
	t->views[TV_CLIENTS].feed = "clients-by-server";
	t->views[TV_CLIENTS].port = CXO_PORT_CLIENTS_BY_SERVER;
	snprintf(t->views[TV_CLIENTS].prefix, sizeof(t->views[0].prefix), "clients-by-server");
	if (view_pk(t, &t->views[TV_CLIENTS], cfg, "dmsg_discovery_pk") == -1)
		goto fail;
	if (sw_svc_keypair(svc, cfg, &t->kp) == -1)
		goto fail;
	return t;
fail:
	free(t);
	return NULL;
}

/* Each service URL goes over dmsg to the PK its feed is published with. */
static int
map_services(struct tpviz *t)
{
	const struct {
		const char *url;
		enum tpviz_view_id v;
	} m[] = {
		{t->tpd_url, TV_TRANSPORTS}, {t->sd_url, TV_SVC_VISOR}, {t->dd_url, TV_CLIENTS},
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (t->views[m[i].v].has_pk &&
		    sw_http_dmsg_map(t->carrier, m[i].url, t->views[m[i].v].pk) == -1)
			return -1;
	return 0;
}

static int
tpviz_start(void *priv)
{
	struct tpviz *t = priv;
	struct event_base *base = sw_svc_base(t->svc);
	struct dmsg_client_opts o;
	struct cxo_mgr_opts mo;

	t->http = sw_http_server_new(base, t->name, sw_svc_metrics(t->svc));
	if (t->http == NULL || tpviz_api_routes(t) == -1 ||
	    sw_http_server_listen(t->http, t->listen) == -1)
		return -1;
	memset(&o, 0, sizeof(o));
	o.discovery = t->dd_url;
	if ((t->dmsg = dmsg_client_new(base, &t->kp, &o, t->name)) == NULL ||
	    dmsg_client_start(t->dmsg) == -1 || (t->cd = cxo_dmsg_new(base, t->dmsg, t->name)) ==
	    NULL)
		return -1;
	memset(&mo, 0, sizeof(mo));
	mo.svc = t->name;
	mo.dial = cxo_dmsg_dial;
	mo.dial_arg = t->cd;
	mo.snapshot = tpviz_feeds_snapshot;
	mo.snapshot_arg = t;
	if ((t->mgr = cxo_mgr_new(base, &mo)) == NULL ||
	    (t->hc = sw_http_client_new(base, t->name)) == NULL ||
	    (t->carrier = sw_http_dmsg_new(base, t->dmsg, sw_svc_metrics(t->svc), t->name)) ==
	    NULL || map_services(t) == -1 ||
	    sw_http_client_set_dmsg(t->hc, t->carrier) == -1 ||
	    sw_http_client_set_dmsg(cxo_mgr_http(t->mgr), t->carrier) == -1)
		return -1;
	if ((t->http_dmsg = sw_http_dmsg_serve(base, t->http, t->dmsg, 0, t->name)) == NULL ||
	    tpviz_feeds_start(t) == -1)
		return -1;
	sw_log_info(t->name, "listening", "page=http://%s/ transport_discovery=%s", t->listen,
	    t->tpd_url);
	return 0;
}

/* Everything that holds dmsg streams, then the dmsg client. */
static void
tpviz_release(struct tpviz *t)
{
	tpviz_feeds_free(t);
	tpviz_sse_close_all(t);
	sw_http_dmsg_server_free(t->http_dmsg);
	t->http_dmsg = NULL;
	cxo_mgr_free(t->mgr);
	t->mgr = NULL;
	sw_http_client_free(t->hc);
	t->hc = NULL;
	sw_http_dmsg_free(t->carrier);
	t->carrier = NULL;
	cxo_dmsg_free(t->cd);
	t->cd = NULL;
	dmsg_client_free(t->dmsg);
	t->dmsg = NULL;
}

static void
tpviz_stop(void *priv, sw_svc_stopped *done)
{
	struct tpviz *t = priv;

	t->stopping = 1;
	tpviz_release(t);
	sw_svc_drain(t->svc, done);
}

static int
tpviz_health(void *priv, cJSON *checks)
{
	struct tpviz *t = priv;
	int ok = t->http != NULL;
	/* Each feed: its first snapshot (or, without a publisher key, its service's answer). */
	static const enum tpviz_view_id ids[] = {TV_TRANSPORTS, TV_SVC_VISOR, TV_CLIENTS};

	cJSON_AddStringToObject(checks, "http", ok ? "ok" : "down");
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct tpviz_view *v = &t->views[ids[i]];
		int up = v->source != NULL && (!v->has_pk || strcmp(v->source, "cxo") == 0);

		cJSON_AddStringToObject(checks, v->feed, up ? "ok" : "down");
		ok = ok && up;
	}
	return ok;
}

static void
tpviz_destroy(void *priv)
{
	struct tpviz *t = priv;

	tpviz_release(t);
	sw_http_server_free(t->http);
	for (int i = 0; i < TV_COUNT; i++) {
		tpviz_items_free(t->views[i].items, t->views[i].nitems);
		tpviz_body_unref(t->views[i].body);
		tpviz_body_unref(t->views[i].graph);
	}
	for (size_t i = 0; i < t->nservers; i++)
		free(t->servers[i]);
	free(t->servers);
	free(t->page);
	sodium_memzero(&t->kp, sizeof(t->kp));
	free(t);
}

static void
tpviz_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9096");
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	cJSON_AddStringToObject(inst, "transport_discovery", "http://127.0.0.1:9091");
	cJSON_AddStringToObject(inst, "service_discovery", "http://127.0.0.1:9098");
	sw_svc_gen_keys(inst);
}

static void
tpviz_gen_wire(cJSON *inst, const cJSON *services)
{
	sw_svc_gen_link(inst, "dmsg_discovery_pk", services, "dmsg-discovery", 0);
	sw_svc_gen_link(inst, "transport_discovery_pk", services, "transport-discovery", 0);
	sw_svc_gen_link(inst, "service_discovery_pk", services, "service-discovery", 0);
}

const struct sw_service_ops tpviz_ops = {
	.type = "tpviz",
	.summary = "the network's picture: a live web page and JSON API over the feeds",
	.keys = tpviz_keys,
	.deps = (const char *const[]){"transport-discovery", "service-discovery",
	    "dmsg-discovery", NULL},
	.uses_store = 0,
	.create = tpviz_create,
	.start = tpviz_start,
	.stop = tpviz_stop,
	.health = tpviz_health,
	.destroy = tpviz_destroy,
	.gen_config = tpviz_gen_config,
	.gen_wire = tpviz_gen_wire,
};
