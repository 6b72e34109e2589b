/*
 * visor: a node of the network (visor.md).  This first version keeps a dmsg
 * client up (sessions and discovery entry) and answers its operator on the
 * local API; transports, routes and services come with later issues.
 * visor.c is the service, api.c the local HTTP API.
 */
#ifndef VISOR_H
#define VISOR_H

#include <time.h>

#include "crypto.h"
#include "service.h"

struct sw_http_server;
struct dmsg_client;

struct visor {
	struct sw_svc *svc;
	const char *name;
	struct sw_keypair kp;
	char pk_hex[SW_PK_HEX];
	char api_listen[256];
	char discovery[512];
	int min_sessions;
	const cJSON *cfg;
	struct sw_http_server *api;
	struct dmsg_client *dmsg;
	time_t started;
};

extern const struct sw_service_ops visor_ops;

/* api.c */
int visor_api_routes(struct visor *v);

/* A fresh visor config with new keys (visor gen-config). */
cJSON *visor_gen_config(void);

#endif
