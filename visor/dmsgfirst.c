/*
 * visor/dmsgfirst.c: the visor reaches the deployment's HTTP APIs over dmsg
 * first (services.md, "HTTP over dmsg").
 *
 * One carrier (common/http_dmsg) over the visor's dmsg client, shared by
 * every HTTP client of the visor (transports, publishing, queries and the
 * feed manager's fallback).  Each service URL is mapped to the PK the
 * config gives for it; a service without a PK in the config is reached
 * over TCP only.  address-resolver's /bind/ stays on TCP: the binding
 * records the IP the resolver sees, which a dmsg stream does not show.
 * The dmsg client's own discovery requests never pass through here (it
 * has its own HTTP client), so a dial cannot recurse into itself.
 */
#include <string.h>

#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "visor.h"

static const struct {
	const char *url_key;
	const char *pk_key;
	const char *tcp_path; /* stays on TCP, or NULL */
} services[] = {
	{"transport_discovery", "transport_discovery_pk", NULL},
	{"service_discovery", "service_discovery_pk", NULL},
	{"address_resolver", "address_resolver_pk", "/bind/"},
	{"route_finder", "route_finder_pk", NULL},
};

static int
map_one(struct visor *v, const char *url, const char *pk_key, const char *tcp_path)
{
	const char *hex = sw_cfg_str(v->cfg, pk_key);
	uint8_t pk[SW_PK_LEN];
	char path_url[640];

	if (url == NULL || hex == NULL || *hex == '\0')
		return 0;
	if (sw_pk_parse(pk, hex) == -1) {
		sw_log_error(v->name, "a service key must be 64 lowercase hex chars", "key=%s",
		    pk_key);
		return -1;
	}
	if (sw_http_dmsg_map(v->http_dmsg, url, pk) == -1) {
		sw_log_error(v->name, "cannot map a service URL to dmsg", "key=%s", pk_key);
		return -1;
	}
	if (tcp_path != NULL) {
		snprintf(path_url, sizeof(path_url), "%s%s", url, tcp_path);
		if (sw_http_dmsg_tcp_path(v->http_dmsg, path_url) == -1)
			return -1;
	}
	return 0;
}

int
visor_dmsgfirst_start(struct visor *v)
{
	v->http_dmsg = sw_http_dmsg_new(sw_svc_base(v->svc), v->dmsg, sw_svc_metrics(v->svc),
	    v->name);
	if (v->http_dmsg == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (map_one(v, sw_cfg_str(v->cfg, services[i].url_key), services[i].pk_key,
		    services[i].tcp_path) == -1)
			return -1;
	/* The visor's own lookups at dmsg-discovery (clients-by-server), not its dmsg client's. */
	return map_one(v, v->discovery, "dmsg_discovery_pk", NULL);
}

void
visor_dmsgfirst_use(struct visor *v, struct sw_http_client *c)
{
	if (v->http_dmsg != NULL && c != NULL && sw_http_client_set_dmsg(c, v->http_dmsg) == -1)
		sw_log_warn(v->name, "an HTTP client stays on TCP", NULL);
}

void
visor_dmsgfirst_free(struct visor *v)
{
	sw_http_dmsg_free(v->http_dmsg); /* detaches every client */
	v->http_dmsg = NULL;
}
