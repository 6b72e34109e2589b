/*
 * address-resolver: where visors can be reached for the stcpr and sudph
 * transports (services.md).  address_resolver.c is the service, api.c the
 * HTTP handlers, udp.c the sudph datagrams, binding.c a binding's parse and
 * encode, store.c the bindings on the common store.
 *
 * Both kinds of binding live in the store, so replicas sharing one redis
 * agree on them: stcpr bindings expire after entry_timeout_s unless
 * re-posted, sudph bindings after sudph_timeout_s without a heartbeat.
 */
#ifndef ADDRESS_RESOLVER_H
#define ADDRESS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cjson/cJSON.h>

#include "ar_schema.h"
#include "crypto.h"
#include "httpauth.h"
#include "netaddr.h"
#include "service.h"
#include "store.h"

#define AR_MAX_LOCAL     16   /* local addresses in a binding */
#define AR_MAX_DGRAM     1200 /* bytes of a sudph datagram, header included */
#define AR_DGRAM_HDR     (1 + SW_PK_LEN + SW_SIG_LEN)
#define AR_MAX_UDP_INFLIGHT 4096 /* datagrams waiting on the store; past it, drop */
#define AR_ADDR_TEXT     (SW_IP_TEXT + 8) /* "[ip]:port" */

/* sudph datagram types (services.md). */
enum ar_dgram_type {
	AR_BIND = 1,
	AR_HEARTBEAT = 2,
	AR_UNBIND = 3,
	AR_ACK = 4,
	AR_DIAL = 5,
};

enum ar_net {
	AR_STCPR = 0,
	AR_SUDPH,
};

/* A binding: where a visor says it listens and where the resolver saw it. */
struct ar_binding {
	uint8_t pk[SW_PK_LEN];
	char pk_hex[SW_PK_HEX];
	char remote_ip[SW_IP_TEXT]; /* the address the resolver saw */
	unsigned remote_port;       /* stcpr: the declared port; sudph: the port seen */
	unsigned port;              /* the port the visor declared */
	size_t nlocal;
	char local[AR_MAX_LOCAL][SW_IP_TEXT];
};

struct sw_http_server;
struct sw_metric;
struct event;

struct ar {
	struct sw_svc *svc;
	const char *name;
	struct sw_store *st;
	struct sw_http_server *http;
	struct sw_http_dmsg_server *http_dmsg; /* the HTTP API on dmsg port 80 */
	char dmsg_disc[256];                   /* ...registered there ("": no dmsg) */
	struct sw_keypair kp;
	struct sw_httpauth auth;
	char listen[256];
	char udp_listen[256];
	long long ttl_s;       /* stcpr bindings */
	long long sudph_ttl_s; /* sudph bindings without a heartbeat */
	int udp_fd;
	struct event *udp_ev;
	unsigned udp_inflight;
	sw_svc_stopped *stopped; /* set while stopping, until UDP work ends */
	struct sw_metric *m_udp_in;
	struct sw_metric *m_udp_drop;
	struct sw_metric *m_udp_out;
	struct sw_metric *m_binds;
};

extern const struct sw_service_ops address_resolver_ops;

/* binding.c */
/* {"port":N,"local_addresses":[…]}: 0, or 400/422 with err filled. */
int ar_binding_parse_req(const cJSON *o, struct ar_binding *b, char *err, size_t errlen);
/*
 * JSON of b: the stored form ({"pk","remote_addr","port","local_addresses"}),
 * or an answer to a resolve (is_local 1: plus "is_local":true; 0: without
 * the local addresses and "is_local":false).  malloc'd, NULL on OOM.
 */
enum ar_view {
	AR_VIEW_STORED,
	AR_VIEW_LOCAL,
	AR_VIEW_REMOTE,
};
char *ar_binding_json(const struct ar_binding *b, enum ar_view view);
int ar_binding_from_stored(const char *json, size_t len, struct ar_binding *b);
/* "ip:port" into ip and port ("[v6]:port" too); -1 if malformed. */
int ar_hostport_parse(const char *s, char ip[SW_IP_TEXT], unsigned *port);

/* store.c */
int ar_store_get(struct ar *ar, enum ar_net net, const char *pk_hex, sw_store_cb *cb,
    void *arg);
/* MGET of two PKs' bindings of one kind. */
int ar_store_get2(struct ar *ar, enum ar_net net, const char *pk1, const char *pk2,
    sw_store_cb *cb, void *arg);
int ar_store_put(struct ar *ar, enum ar_net net, const struct ar_binding *b, const char *json,
    sw_store_cb *cb, void *arg);
/* Reply: ARRAY [deleted records, removed index entries]. */
int ar_store_del(struct ar *ar, enum ar_net net, const char *pk_hex, sw_store_cb *cb,
    void *arg);
/* Live PKs: index members at 0 (stcpr) and 2 (sudph). */
int ar_store_list(struct ar *ar, sw_store_cb *cb, void *arg);

/* udp.c */
int ar_udp_open(struct ar *ar);
void ar_udp_close(struct ar *ar);
/* Send a resolver datagram (signed with its key) to ip:port; -1 (counted) on failure. */
int ar_udp_send(struct ar *ar, enum ar_dgram_type type, const char *json, const char *ip,
    unsigned port);
/* After a datagram's work ends: go on with a pending stop once none is left. */
void ar_stop_check(struct ar *ar);

/* api.c */
int ar_api_routes(struct ar *ar);

#endif
