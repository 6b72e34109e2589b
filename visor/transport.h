/*
 * Transports (visor.md): the visor's edges to other visors, each carrying
 * packets `type u8 | route_id u32 BE | payload`, over a dmsg stream to the
 * peer's port 45 or over stcpr (TCP + Noise XK, prologue "stcpr/1").  One
 * transport per (peer, type).  The visor that opened a transport registers it
 * in transport-discovery and keeps the entry fresh; either end deregisters it
 * when it closes.  Also the visor's other presence in the network: its
 * published services (publish.c) and autoconnect (autoconnect.c).
 */
#ifndef VISOR_TRANSPORT_H
#define VISOR_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "tp_entry.h"

struct visor;
struct vtp_mgr;
struct vtp;

enum vtp_kind {
	VTP_DMSG = 0,
	VTP_STCPR,
	VTP_SUDPH,
};

/* Packet types. */
enum {
	VTP_PKT_DATA = 0,
	VTP_PKT_CLOSE = 1,
	VTP_PKT_KEEPALIVE = 2,
	VTP_PKT_PING = 3,
	VTP_PKT_PONG = 4,
	VTP_PKT_HANDSHAKE = 5, /* a route group's Noise KK message (routing.md) */
};

#define VTP_DMSG_PORT    45
#define VTP_PKT_HDR      5
/* One packet is one Noise message on stcpr (65535 with the tag). */
#define VTP_MAX_PACKET   (65535 - 16)
#define VTP_MAX_PAYLOAD  (VTP_MAX_PACKET - VTP_PKT_HDR)
#define VTP_PING_LEN     8
#define VTP_LOCAL_QUEUE  (4u << 20) /* an stcpr link's output a local sender may fill */

struct vtp_pkt {
	uint8_t type;
	uint32_t route_id;
	const uint8_t *payload; /* points into the parsed buffer */
	size_t len;
};

/* Packet codec: the header into out; a whole packet parsed (-1: short, long, unknown type). */
void vtp_pkt_hdr(uint8_t out[VTP_PKT_HDR], uint8_t type, uint32_t route_id);
int vtp_pkt_parse(const uint8_t *buf, size_t len, struct vtp_pkt *p);

const char *vtp_kind_str(enum vtp_kind k);
int vtp_kind_parse(const char *s, enum vtp_kind *k);

/* The manager, one per visor: reads its config keys at new, listens at start. */
struct vtp_mgr *vtp_mgr_new(struct visor *v);
int vtp_mgr_start(struct vtp_mgr *m);
/*
 * Graceful end: close every transport, deregister them and unbind stcpr;
 * done runs from the loop when the services have answered or after 3 s.
 */
void vtp_mgr_stop(struct vtp_mgr *m, void (*done)(void *arg), void *arg);
void vtp_mgr_free(struct vtp_mgr *m);
/* Transports up. */
size_t vtp_mgr_count(const struct vtp_mgr *m);
/* 1 if a transport (up or being opened) to pk of any type exists. */
int vtp_mgr_has_peer(const struct vtp_mgr *m, const uint8_t pk[SW_PK_LEN]);
/* The sudph socket and resolver binding: {"port","bound","public_addr"}. */
cJSON *vtp_mgr_sudph_json(const struct vtp_mgr *m);
/* Array of every transport (vtp_json each), up or opening. */
cJSON *vtp_mgr_json(const struct vtp_mgr *m);

/*
 * Open a transport to pk (or join the opening of one).  cb runs once from
 * the loop: with the transport when it is up (created=0 if it already was),
 * or with NULL and a reason.  -1 (no callback) on a bad argument.
 */
typedef void vtp_open_cb(struct vtp *t, int created, const char *err, void *arg);
int vtp_open(struct vtp_mgr *m, const uint8_t pk[SW_PK_LEN], enum vtp_kind kind,
    const char *label, vtp_open_cb *cb, void *arg);
struct vtp *vtp_find(const struct vtp_mgr *m, const uint8_t id[TP_ID_LEN]);
/* Close and deregister now (the peer notices the stream or connection end). */
void vtp_close(struct vtp *t, const char *why);
cJSON *vtp_json(const struct vtp *t);

/* A PING round trip: cb(rtt_ms) from the loop, or cb(-1) on timeout or close. */
typedef void vtp_ping_cb(long long rtt_ms, void *arg);
int vtp_ping(struct vtp *t, int timeout_ms, vtp_ping_cb *cb, void *arg);
/* Send one packet (for the router). -1 if the transport is not up or payload too long. */
int vtp_send(struct vtp *t, uint8_t type, uint32_t route_id, const void *payload, size_t len);
/*
 * Would vtp_send() take a packet with len payload bytes now?  1: yes; 0:
 * not now, its send queue is full (sudph's 4 MiB, a dmsg stream's,
 * VTP_LOCAL_QUEUE of an stcpr link's output); -1: never (not up, too
 * long).  For senders that must not start what cannot go.
 */
int vtp_room(const struct vtp *t, size_t len);
/*
 * tp_hold.c, for the router: hold one forwarded packet for out, which has
 * no room now, and stop reading from in until it has gone (it is sent when
 * out has room, dropped if out closes).  -1 when in holds one already.
 */
int vtp_hold(struct vtp *in, const struct vtp *out, uint8_t type, uint32_t route_id,
    const void *payload, size_t len);
int vtp_holding(const struct vtp *t);

/* api_tp.c: /api/transports... on the visor's local API. */
int visor_api_tp_routes(struct visor *v);
/* tp_burst.c: POST /api/transports/{t_id}/burst. */
int visor_api_burst_routes(struct visor *v);

/* publish.c: the `publish` services in service-discovery. */
struct visor_pub;
struct visor_pub *visor_pub_new(struct visor *v);
int visor_pub_start(struct visor_pub *p);
/* Delete the services, then done (from the loop; bounded to 3 s). */
void visor_pub_stop(struct visor_pub *p, void (*done)(void *arg), void *arg);
void visor_pub_free(struct visor_pub *p);

/* autoconnect.c: keep min_transports transports to public visors. */
struct visor_ac;
struct visor_ac *visor_ac_new(struct visor *v);
int visor_ac_start(struct visor_ac *a);
void visor_ac_free(struct visor_ac *a);

#endif
