/*
 * Route groups (routing.md, "Route groups"): an ordered, reliable,
 * end-to-end encrypted message channel between (src_pk, src_port) and
 * (dst_pk, dst_port) over a forward and a reverse route.  This is the API
 * the rest of the visor uses (ping.c, chat.c, the local API):
 *
 *   vrg_listen(port)   accept groups dialled to that port;
 *   vrg_dial(pk, port) route-finder for both paths, a setup-node from
 *                      setup_nodes (the next one if unreachable), the two
 *                      local rules, the Noise KK handshake;
 *   vrg_send/vrg_close on a group that is up.
 *
 * Every callback runs from the event loop, never from inside a call made
 * into this module.  A group is the caller's from its dial or accept
 * callback until its closed callback returns (then it is freed) or until
 * the caller calls vrg_close() (no callback after that).
 *
 * rgroup.c is the group itself, rgroup_dial.c the dial, router_rpc.c the
 * setup-node's RPCs on dmsg port 136.
 */
#ifndef VISOR_RGROUP_H
#define VISOR_RGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "router.h"

struct visor;
struct vrg;
struct vrg_mgr;

#define VRG_PORT_CHAT      1
#define VRG_PORT_PING      48
#define VRG_SETUP_PORT     36   /* setup-node's dmsg port */
#define VRG_RPC_PORT       136  /* the visor's, for setup-nodes */
#define VRG_MAX_MSG        65498 /* plaintext per DATA */
#define VRG_HS_RESEND_MS   1000
#define VRG_HS_TIMEOUT_MS  5000
#define VRG_SETUP_MS       35000 /* a setup-node answers within its 30 s */
#define VRG_AHEAD_KEEP_MS  5000  /* a stream to setup-node opened ahead, closed unused */

struct vrg_cbs {
	/* One whole message from the peer, valid during the call. */
	void (*message)(struct vrg *g, const uint8_t *data, size_t len, void *arg);
	/* The group is over (peer's CLOSE, rules gone, decryption failure). */
	void (*closed)(struct vrg *g, const char *why, void *arg);
};

/* The manager (creates the router, v->rt): at visor create, start, stop, destroy. */
struct vrg_mgr *vrg_mgr_new(struct visor *v);
int vrg_mgr_start(struct vrg_mgr *m);
/* Close every group (CLOSE sent) and stop serving port 136. */
void vrg_mgr_stop(struct vrg_mgr *m);
void vrg_mgr_free(struct vrg_mgr *m);

typedef void vrg_accept_cb(struct vrg *g, void *arg);
/* Accept groups to port (1..65535). -1 if taken. */
int vrg_listen(struct vrg_mgr *m, uint16_t port, vrg_accept_cb *cb, void *arg);
int vrg_listening(const struct vrg_mgr *m, uint16_t port);

/*
 * Dial (pk, port) over routes of at least min_hops hops (1..10).  cb runs
 * once from the loop: with the group up (set its callbacks then), or NULL
 * and a reason.  -1 (no callback) on a bad argument.
 */
typedef void vrg_dial_cb(struct vrg *g, const char *err, void *arg);
int vrg_dial(struct vrg_mgr *m, const uint8_t pk[SW_PK_LEN], uint16_t port, int min_hops,
    vrg_dial_cb *cb, void *arg);

void vrg_set_cbs(struct vrg *g, const struct vrg_cbs *cbs, void *arg);
/*
 * Encrypt and send one message (<= VRG_MAX_MSG).  -1 when not up, the
 * route is gone, or its first hop has no room now (vrg_room; the group
 * stays whole and the message may be sent again later).
 */
int vrg_send(struct vrg *g, const void *data, size_t len);
/*
 * Would vrg_send() of len bytes go now?  1: yes; 0: not now, the first
 * hop's send queue is full; -1: never (not up, route gone, too long).
 */
int vrg_room(const struct vrg *g, size_t len);
/* CLOSE to the peer, local rules deleted, g freed; no callback. NULL-safe. */
void vrg_close(struct vrg *g);
const uint8_t *vrg_remote_pk(const struct vrg *g);
/* The forward path the dial used (route-finder's hops), or NULL (accepted groups). */
const cJSON *vrg_path(const struct vrg *g);
/* Every group, for the API. */
cJSON *vrg_mgr_json(const struct vrg_mgr *m);

/* ---- inside the module (rgroup.c, rgroup_dial.c, router_rpc.c) ---- */

/*
 * Edge rules from a setup-node on the dst: a responder group owns them.
 * -1 with err ("no listener", …) and nothing installed.
 */
int vrg_edge_rules(struct vrg_mgr *m, const struct vrt_rule *consume,
    const struct vrt_rule *forward, char *err, size_t errlen);
/*
 * The initiator's rules from the setup-node's answer: installs them and
 * starts the handshake; cb/arg hear the outcome.  path is taken.
 */
int vrg_initiate(struct vrg_mgr *m, const struct vrt_rule *forward,
    const struct vrt_rule *consume, cJSON *path, vrg_dial_cb *cb, void *arg, char *err,
    size_t errlen);

struct visor *vrg_mgr_visor(const struct vrg_mgr *m);
/* router_rpc.c */
int vrg_rpc_start(struct vrg_mgr *m);
void vrg_rpc_stop(struct vrg_mgr *m);
/* rgroup_dial.c: dials not yet answered, ended with err "visor stopping". */
void vrg_dials_stop(struct vrg_mgr *m);

/*
 * The visor's own route applications and their API: ping.c (port 48 echo,
 * POST /api/ping), chat.c (port 1, /api/chat), api_route.c (/api/routes).
 * visor_routing_start listens on both ports; visor_routing_free ends them.
 */
int visor_routing_start(struct visor *v);
void visor_routing_free(struct visor *v);
int visor_api_route_routes(struct visor *v);
int vping_start(struct visor *v);
int vping_api(struct visor *v);
int vchat_start(struct visor *v);
int vchat_api(struct visor *v);
void vchat_free(struct visor *v);
/* rgroup_bench.c: route port 2 (counted, acknowledged) and POST /api/route-bench. */
int vrg_bench_start(struct visor *v);
int vrg_bench_api(struct visor *v);

#endif
