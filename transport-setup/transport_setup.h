/*
 * transport-setup (services.md): lets trusted operators add and remove
 * transports between visors they do not run.  Its HTTP API (api.c) takes
 * httpauth by a PK in trusted_pks; each request becomes one framed JSON RPC
 * (common/frpc) on the visor's dmsg port 47, dialled with transport-setup's
 * own key through its dmsg client.  transport_setup.c is the service.
 */
#ifndef TRANSPORT_SETUP_H
#define TRANSPORT_SETUP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "httpauth.h"
#include "service.h"

#define TS_PREFIX      "tps:"
#define TS_VISOR_PORT  47
#define TS_DEADLINE_MS 15000 /* per HTTP request, visor call included */
#define TS_MAX_TRUSTED 64

struct sw_http_dmsg_server;
struct sw_http_server;
struct sw_metric;
struct dmsg_client;

struct ts {
	struct sw_svc *svc;
	const char *name;
	struct sw_keypair kp;
	struct sw_httpauth auth;
	char listen[256];
	char discovery[512];
	size_t ntrusted;
	uint8_t trusted[TS_MAX_TRUSTED][SW_PK_LEN];
	struct sw_http_server *http;
	struct dmsg_client *dmsg;
	struct sw_http_dmsg_server *http_dmsg; /* the HTTP API on dmsg port 80 */
	struct sw_metric *m_calls;
};

extern const struct sw_service_ops transport_setup_ops;

/* api.c */
int ts_api_routes(struct ts *ts);

#endif
