/*
 * setup-node: sets up route groups (routing.md, "Route setup").  It serves
 * dial_route_group on dmsg port 36 and drives each visor's port 136.
 * setup_node.c is the service, check.c the checks made before any visor is
 * touched, setup.c one request from reservation to answer or rollback,
 * feed.c the copy of transport-discovery's feed that spares the
 * transport check its round trip.
 */
#ifndef SETUP_NODE_H
#define SETUP_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "cxo_dmsg.h"
#include "service.h"
#include "tp_entry.h"

#define SN_PORT            36
#define SN_VISOR_PORT      136
#define SN_MAX_HOPS        10
#define SN_CALL_MS         10000 /* per visor call */
#define SN_REQUEST_MS      30000 /* per request */
#define SN_ROLLBACK_MS     5000
/*
 * After a setup, each of its visors gets SN_POOL_PER_VISOR streams opened
 * ahead (its reserve_ids and its next call), for at most SN_POOL_VISORS
 * visors; one not used within SN_POOL_KEEP_MS is closed (a visor gives a
 * stream 10 s for its request) and not opened again until the next setup.
 */
#define SN_POOL_PER_VISOR  2
#define SN_POOL_VISORS     256
#define SN_POOL_KEEP_MS    5000
#define SN_MAX_IN_FLIGHT   256
/*
 * transport-discovery lookups at once (the rest wait in order): an HTTP
 * server takes at most 256 connections from one address.
 */
#define SN_MAX_LOOKUPS     64
/* Every visor on both paths: at most 11 + 11, src and dst shared. */
#define SN_MAX_VISORS      (2 * (SN_MAX_HOPS + 1))

struct frpc_req;
struct frpc_server;
struct dmsg_client;
struct sw_http_client;
struct sw_http_dmsg_server;
struct sw_http_server;
struct sw_metric;
struct tp_check;
struct cxo_sub;

struct sn {
	struct sw_svc *svc;
	const char *name;
	struct sw_keypair kp;
	char discovery[256];
	char tpd[256];
	int has_tpd_pk;               /* transport_discovery_pk given: feed.c */
	uint8_t tpd_pk[SW_PK_LEN];
	struct cxo_dmsg *cd;
	struct cxo_dmsg_target target;
	struct cxo_sub *feed;
	long long feed_born_ms;
	int feed_was_live, feed_warned; /* for what on_down says (feed.c) */
	char health_listen[256];
	long long max_in_flight;
	long long in_flight;
	struct dmsg_client *dmsg;
	struct frpc_server *rpc;
	struct frpc_pool *pool;       /* streams to visors opened ahead (setup.c) */
	struct sw_http_client *http;
	struct sw_http_server *hs;
	struct sw_http_dmsg_server *http_dmsg; /* hs on dmsg port 80 */
	struct sn_req *reqs;          /* in flight */
	struct tp_check *lookups;     /* waiting for a slot, oldest first */
	struct tp_check **lookups_tail;
	int lookups_out;              /* being asked now */
	struct sw_metric *m_requests; /* {outcome} */
	struct sw_metric *m_failures; /* {step} */
	struct sw_metric *m_latency;
	struct sw_metric *m_checks;   /* transport checks {source} */
	struct sw_metric *m_feed;     /* 1 while the feed's snapshot is live */
	int stopping;
};

struct sn_hop {
	uint8_t t_id[TP_ID_LEN];
	uint8_t from[SW_PK_LEN], to[SW_PK_LEN];
};

struct sn_path {
	size_t n;
	struct sn_hop hop[SN_MAX_HOPS];
};

/* A dial_route_group request, checked. */
struct sn_ask {
	uint8_t src_pk[SW_PK_LEN], dst_pk[SW_PK_LEN];
	uint16_t src_port, dst_port;
	int keep_alive_s;
	struct sn_path fwd, rev;
};

extern const struct sw_service_ops setup_node_ops;

/*
 * check.c: parse params and make every check that needs no network
 * (requester, ports, keep_alive_s, contiguity, hop counts, repeats).
 * 0, or -1 with err filled.
 */
int sn_check(const cJSON *params, const uint8_t requester[SW_PK_LEN], struct sn_ask *a,
    char *err, size_t errlen);

/*
 * feed.c: with transport_discovery_pk, follow the all-transports feed over
 * dmsg (0, or -1 logged).  sn_feed_confirms: 1 when the live snapshot holds
 * t_id with edges {a, b}; 0 means ask transport-discovery.
 */
int sn_feed_start(struct sn *sn);
/* 1 when {a, b} and {x, y} are the same two keys, in either order. */
int sn_same_edges(const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN],
    const uint8_t x[SW_PK_LEN], const uint8_t y[SW_PK_LEN]);
void sn_feed_free(struct sn *sn);
int sn_feed_confirms(const struct sn *sn, const uint8_t t_id[TP_ID_LEN],
    const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN]);

/* setup.c: run one checked request to its answer. */
void sn_setup_start(struct sn *sn, struct frpc_req *req, const struct sn_ask *a);
/* Stopping: every request in flight is answered and cut. */
void sn_setup_stop_all(struct sn *sn);

#endif
