/*
 * visor: a node of the network (visor.md).  This first version keeps a dmsg
 * client up (sessions and discovery entry) and answers its operator on the
 * local API; transports, routes and services come with later issues.
 * visor.c is the service, api.c the local HTTP API.
 */
#ifndef VISOR_H
#define VISOR_H

#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "service.h"

struct sw_http_server;
struct visor_query;
struct dmsg_client;
struct vtp_mgr;
struct visor_pub;
struct visor_ac;
struct visor_nat;
struct visor_tpsetup;
struct vrt;
struct vrg_mgr;
struct vchat;

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
	struct sw_http_dmsg *http_dmsg; /* dmsgfirst.c: HTTP over dmsg for every client */
	struct visor_query *query; /* query.c */
	time_t started;
	struct vtp_mgr *tps;       /* transport.c */
	struct visor_pub *pub;     /* publish.c */
	struct visor_ac *autoconn; /* autoconnect.c */
	struct visor_nat *nat;     /* nat.c */
	struct visor_tpsetup *tpsetup; /* tpsetup.c: dmsg port 47 */
	struct vrt *rt;            /* router.c: the routing table */
	struct vrg_mgr *rg;        /* rgroup.c: route groups, listeners, port 136 */
	struct vchat *chat;        /* chat.c */
	sw_svc_stopped *stop_done;
	int stop_pending;
};

extern const struct sw_service_ops visor_ops;

/*
 * dmsgfirst.c: start after the dmsg client (maps each service URL with a
 * configured PK), use on each HTTP client in its start, free before the
 * dmsg client.
 */
struct sw_http_client;
struct sw_http_dmsg;
int visor_dmsgfirst_start(struct visor *v);
void visor_dmsgfirst_use(struct visor *v, struct sw_http_client *c);
void visor_dmsgfirst_free(struct visor *v);

/* tpsetup.c: transport-setup's RPCs on dmsg port 47 (transport_setup_pks only). */
int visor_tpsetup_start(struct visor *v);
void visor_tpsetup_free(struct visor *v);

/* api.c */
int visor_api_routes(struct visor *v);

/*
 * query.c: lookups in the discovery services' CXO feeds over dmsg, with
 * HTTP fallback (cxo.md, "Subscriber patterns").  Keys: services of a
 * type (VISOR_FEED_SERVICES, key "vpn"|"skysocks"|"visor"), the clients
 * of a dmsg server (VISOR_FEED_CLIENTS, key its PK in hex).  cb runs once,
 * later, from the loop (also with source NULL when nothing answered, and
 * when the visor stops).  -1 (no callback) on a bad key or out of memory.
 */
enum visor_feed {
	VISOR_FEED_CLIENTS = 0,  /* dmsg-discovery's clients-by-server, port 46 */
	VISOR_FEED_SERVICES,     /* service-discovery's services-by-pk, port 48 */
	VISOR_FEED_COUNT,
};

struct visor_answer {
	const char *source;     /* "cxo", "http", or NULL: neither answered */
	const cJSON *list;      /* the records (an array), valid during the call */
	int stale;              /* cxo: publisher unreachable, last snapshot */
	uint64_t seq;           /* cxo: the snapshot's root seq */
	int http_status;        /* http: the service's status (0: no answer) */
	const char *error;      /* source NULL: why */
	int has_publisher;      /* a feed was asked (its PK configured or given) */
	uint8_t publisher[SW_PK_LEN];
	uint16_t port;
	int feed_connected;     /* the subscription is connected now */
	char feed_error[128];   /* its last error, "" if none */
};
typedef void visor_query_fn(const struct visor_answer *a, void *arg);

struct visor_query_req {
	enum visor_feed feed;
	const char *key;
	const uint8_t *publisher; /* NULL: the configured one (diagnostic override) */
};

int visor_query_start(struct visor *v);
void visor_query_free(struct visor *v);
int visor_query(struct visor *v, const struct visor_query_req *r, visor_query_fn *cb,
    void *arg);
int visor_query_services(struct visor *v, const char *type, visor_query_fn *cb, void *arg);
int visor_query_clients(struct visor *v, const char *server_hex, visor_query_fn *cb, void *arg);

/* api_query.c: GET /api/services/{type}, GET /api/dmsg/clients-by-server/{pk}. */
int visor_api_query_routes(struct visor *v);

/* A fresh visor config with new keys (visor gen-config). */
cJSON *visor_gen_config(void);

#endif
