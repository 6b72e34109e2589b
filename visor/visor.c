/*
 * visor as a framework service: its configuration, its dmsg client and its
 * local API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dmsg_client.h"
#include "http.h"
#include "log.h"
#include "nat.h"
#include "rgroup.h"
#include "str.h"
#include "transport.h"
#include "visor.h"

static const struct sw_cfg_key visor_keys[] = {
	{"public_key", SW_CFG_STR, NULL, "identity; must match secret_key"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars (generated when absent)"},
	{"dmsg", SW_CFG_OBJ, "{\"discovery\":\"http://127.0.0.1:9090\",\"min_sessions\":1}",
	    "{\"discovery\":URL,\"min_sessions\":N}"},
	{"transport_discovery", SW_CFG_STR, "http://127.0.0.1:9091", "transport-discovery URL"},
	{"address_resolver", SW_CFG_STR, "http://127.0.0.1:9093", "address-resolver URL"},
	{"route_finder", SW_CFG_STR, "http://127.0.0.1:9092", "route-finder URL"},
	{"setup_nodes", SW_CFG_LIST, NULL, "setup-node PKs"},
	{"service_discovery", SW_CFG_STR, "http://127.0.0.1:9098", "service-discovery URL"},
	{"dmsg_discovery_pk", SW_CFG_STR, NULL, "clients-by-server feed publisher (absent: HTTP only)"},
	{"service_discovery_pk", SW_CFG_STR, NULL, "services-by-pk feed publisher (absent: HTTP only)"},
	{"transport_discovery_pk", SW_CFG_STR, NULL, "all-transports feed publisher (reserved)"},
	{"address_resolver_pk", SW_CFG_STR, NULL,
	    "address-resolver's key: its HTTP API over dmsg, and its sudph acks and dials checked "
	    "(absent: HTTP over TCP, datagrams known by source address)"},
	{"route_finder_pk", SW_CFG_STR, NULL, "route-finder's dmsg PK (absent: HTTP over TCP)"},
	{"stun_servers", SW_CFG_LIST, NULL, "STUN servers host:port"},
	{"transport_setup_pks", SW_CFG_LIST, NULL, "PKs allowed to add/remove transports"},
	{"stcpr_listen", SW_CFG_STR, "127.0.0.1:0", "stcpr TCP listener"},
	{"sudph_listen", SW_CFG_STR, "0.0.0.0:0", "sudph UDP socket (numeric ip:port)"},
	{"address_resolver_udp", SW_CFG_STR, NULL, "resolver's sudph UDP ip:port (default: its URL's)"},
	{"api_listen", SW_CFG_STR, "127.0.0.1:8000", "local API (loopback only)"},
	{"publish", SW_CFG_OBJ, NULL, "[{\"type\":\"visor|vpn|skysocks\",\"port\":N}]"},
	{"autoconnect", SW_CFG_OBJ, NULL, "{\"enabled\":bool,\"min_transports\":N}"},
	{"transport_refresh_s", SW_CFG_INT, "100", "re-register transports and stcpr binding"},
	{"publish_refresh_s", SW_CFG_INT, "200", "re-post published services"},
	{NULL, 0, NULL, NULL},
};

static int
loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "localhost:", 10) == 0 ||
	    strncmp(addr, "[::1]:", 6) == 0;
}

static void *
visor_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct visor *v = calloc(1, sizeof(*v));
	const cJSON *dmsg = cJSON_GetObjectItemCaseSensitive(cfg, "dmsg");
	const char *api = sw_cfg_str(cfg, "api_listen"), *disc = sw_cfg_str(dmsg, "discovery");

	if (v == NULL)
		return NULL;
	v->svc = svc;
	v->name = sw_svc_name(svc);
	v->cfg = cfg;
	if (sw_svc_keypair(svc, cfg, &v->kp) == -1)
		goto fail;
	sw_hex_encode(v->pk_hex, v->kp.pk, SW_PK_LEN);
	if (!cJSON_IsObject(dmsg) || disc == NULL ||
	    sw_strlcpy(v->discovery, disc, sizeof(v->discovery)) == -1) {
		sw_log_error(v->name, "dmsg.discovery must be set to an http:// URL", NULL);
		goto fail;
	}
	v->min_sessions = (int)sw_cfg_int(dmsg, "min_sessions", 1);
	if (v->min_sessions < 1 || v->min_sessions > 16) {
		sw_log_error(v->name, "dmsg.min_sessions must be 1..16", NULL);
		goto fail;
	}
	if (api == NULL || sw_strlcpy(v->api_listen, api, sizeof(v->api_listen)) == -1 ||
	    !loopback(api)) {
		sw_log_error(v->name, "api_listen must be a loopback host:port", NULL);
		goto fail;
	}
	if ((v->tps = vtp_mgr_new(v)) == NULL || (v->pub = visor_pub_new(v)) == NULL ||
	    (v->autoconn = visor_ac_new(v)) == NULL || (v->nat = visor_nat_new(v)) == NULL ||
	    (v->rg = vrg_mgr_new(v)) == NULL)
		goto fail;
	return v;
fail:
	vrg_mgr_free(v->rg);
	visor_nat_free(v->nat);
	visor_ac_free(v->autoconn);
	visor_pub_free(v->pub);
	vtp_mgr_free(v->tps);
	sodium_memzero(&v->kp, sizeof(v->kp));
	free(v);
	return NULL;
}

static int
visor_start(void *priv)
{
	struct visor *v = priv;
	struct dmsg_client_opts o;

	v->started = time(NULL);
	memset(&o, 0, sizeof(o));
	o.discovery = v->discovery;
	o.min_sessions = v->min_sessions;
	v->dmsg = dmsg_client_new(sw_svc_base(v->svc), &v->kp, &o, v->name);
	if (v->dmsg == NULL || dmsg_client_start(v->dmsg) == -1 ||
	    visor_dmsgfirst_start(v) == -1 || visor_query_start(v) == -1)
		return -1;
	if (visor_nat_start(v->nat) == -1 || vtp_mgr_start(v->tps) == -1 ||
	    visor_tpsetup_start(v) == -1 || visor_pub_start(v->pub) == -1 ||
	    visor_ac_start(v->autoconn) == -1 || vrg_mgr_start(v->rg) == -1 ||
	    visor_routing_start(v) == -1)
		return -1;
	v->api = sw_http_server_new(sw_svc_base(v->svc), v->name, sw_svc_metrics(v->svc));
	/*
	 * The local API takes route-group messages of up to VRG_MAX_MSG bytes
	 * as JSON strings (POST /api/chat), each byte up to six escaped: past
	 * the server's default 64 KiB body limit.
	 */
	if (v->api != NULL)
		sw_http_server_set_max_body(v->api, 6 * (size_t)VRG_MAX_MSG + 4096);
	if (v->api == NULL || visor_api_routes(v) == -1 ||
	    sw_http_server_listen(v->api, v->api_listen) == -1)
		return -1;
	sw_log_info(v->name, "visor up", "pk=%s api=%s discovery=%s", v->pk_hex, v->api_listen,
	    v->discovery);
	return 0;
}

/* Transports deregistered and services deleted (or timed out): let dmsg go. */
static void
visor_stop_step(void *arg)
{
	struct visor *v = arg;

	if (--v->stop_pending > 0)
		return;
	visor_tpsetup_free(v);
	visor_query_free(v); /* its streams before the dmsg client */
	visor_dmsgfirst_free(v);
	/* Sessions close with the client; the entry expires on its own. */
	dmsg_client_free(v->dmsg);
	v->dmsg = NULL;
	v->stop_done(v->svc);
}

static void
visor_stop(void *priv, sw_svc_stopped *done)
{
	struct visor *v = priv;

	visor_ac_free(v->autoconn);
	v->autoconn = NULL;
	v->stop_done = done;
	v->stop_pending = 2;
	vrg_mgr_stop(v->rg); /* route groups send CLOSE while transports are up */
	visor_pub_stop(v->pub, visor_stop_step, v);
	vtp_mgr_stop(v->tps, visor_stop_step, v);
}

static int
visor_health(void *priv, cJSON *checks)
{
	struct visor *v = priv;
	int n = v->dmsg != NULL ? dmsg_client_nsessions(v->dmsg) : 0;

	/*
	 * A visor without a session keeps trying, but it is not healthy: /health
	 * is 200 only when every check is ok (README.md), so a container or a
	 * deployment waiting on it waits for dmsg too.
	 */
	cJSON_AddStringToObject(checks, "dmsg", n >= 1 ? "ok" : "down");
	return n >= 1;
}

static void
visor_destroy(void *priv)
{
	struct visor *v = priv;

	/* Transports hold dmsg streams and API requests: they go first. */
	visor_ac_free(v->autoconn);
	visor_pub_free(v->pub);
	vrg_mgr_stop(v->rg); /* groups' owners hear it before they go */
	visor_routing_free(v);
	vrg_mgr_free(v->rg);
	vtp_mgr_free(v->tps);
	visor_nat_free(v->nat);
	visor_tpsetup_free(v);
	visor_query_free(v);
	visor_dmsgfirst_free(v);
	dmsg_client_free(v->dmsg);
	sw_http_server_free(v->api);
	sodium_memzero(&v->kp, sizeof(v->kp));
	free(v);
}

cJSON *
visor_gen_config(void)
{
	cJSON *c = cJSON_CreateObject(), *dmsg, *ac;
	struct sw_keypair kp;
	char hex[SW_PK_HEX];

	if (c == NULL)
		return NULL;
	sw_keypair_generate(&kp);
	cJSON_AddStringToObject(c, "type", "visor");
	sw_hex_encode(hex, kp.pk, SW_PK_LEN);
	cJSON_AddStringToObject(c, "public_key", hex);
	sw_keypair_seed_hex(&kp, hex);
	cJSON_AddStringToObject(c, "secret_key", hex);
	sodium_memzero(&kp, sizeof(kp));
	dmsg = cJSON_AddObjectToObject(c, "dmsg");
	cJSON_AddStringToObject(dmsg, "discovery", "http://127.0.0.1:9090");
	cJSON_AddNumberToObject(dmsg, "min_sessions", 1);
	cJSON_AddStringToObject(c, "transport_discovery", "http://127.0.0.1:9091");
	cJSON_AddStringToObject(c, "address_resolver", "http://127.0.0.1:9093");
	cJSON_AddStringToObject(c, "route_finder", "http://127.0.0.1:9092");
	cJSON_AddItemToObject(c, "setup_nodes", cJSON_CreateArray());
	cJSON_AddStringToObject(c, "service_discovery", "http://127.0.0.1:9098");
	/* The one-host deployment's stun-server, as for the services above. */
	cJSON_AddItemToObject(c, "stun_servers",
	    cJSON_CreateStringArray((const char *const[]){"127.0.0.1:3478"}, 1));
	cJSON_AddItemToObject(c, "transport_setup_pks", cJSON_CreateArray());
	cJSON_AddStringToObject(c, "stcpr_listen", "127.0.0.1:0");
	cJSON_AddStringToObject(c, "api_listen", "127.0.0.1:8000");
	cJSON_AddItemToObject(c, "publish", cJSON_CreateArray());
	ac = cJSON_AddObjectToObject(c, "autoconnect");
	cJSON_AddBoolToObject(ac, "enabled", 0);
	cJSON_AddNumberToObject(ac, "min_transports", 0);
	return c;
}

static void
visor_gen_instance(cJSON *inst)
{
	cJSON *c = visor_gen_config(), *m;

	if (c == NULL)
		return;
	cJSON_ArrayForEach(m, c)
		if (strcmp(m->string, "type") != 0)
			cJSON_AddItemToObject(inst, m->string, cJSON_Duplicate(m, 1));
	cJSON_Delete(c);
}

/* The deployment's setup-node, transport-setup, feeds and dmsg sides. */
static void
visor_gen_wire(cJSON *inst, const cJSON *services)
{
	sw_svc_gen_link(inst, "setup_nodes", services, "setup-node", 1);
	sw_svc_gen_link(inst, "transport_setup_pks", services, "transport-setup", 1);
	sw_svc_gen_link(inst, "dmsg_discovery_pk", services, "dmsg-discovery", 0);
	sw_svc_gen_link(inst, "service_discovery_pk", services, "service-discovery", 0);
	sw_svc_gen_link(inst, "transport_discovery_pk", services, "transport-discovery", 0);
	sw_svc_gen_link(inst, "address_resolver_pk", services, "address-resolver", 0);
	sw_svc_gen_link(inst, "route_finder_pk", services, "route-finder", 0);
}

const struct sw_service_ops visor_ops = {
	.type = "visor",
	.summary = "a node: dmsg client, transports, routes, local API",
	.keys = visor_keys,
	.deps = (const char *const[]){"dmsg-server", NULL},
	.uses_store = 0,
	.create = visor_create,
	.start = visor_start,
	.stop = visor_stop,
	.health = visor_health,
	.destroy = visor_destroy,
	.gen_config = visor_gen_instance,
	.gen_wire = visor_gen_wire,
};
