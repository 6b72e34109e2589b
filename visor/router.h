/*
 * router: the visor's routing table (routing.md, "Rules and the routing
 * table").  Every rule is found by its route id, which the visor chose
 * itself (random, non-zero, unique in the table); a rule that has an
 * ingress transport matches only packets arriving on that transport, so the
 * lookup is by (ingress t_id, route_id) as the spec says, with one hash
 * probe.  Intermediary rules rewrite 4 bytes and send the packet on; consume
 * and forward rules belong to a local route group (rgroup.h), which the
 * router tells about packets and about rules going away.
 *
 * Reserved ids (reserve_ids from a setup-node) hold a table slot for 30 s;
 * a rule that carries no packet for keep_alive_s expires.  Rules die with
 * their transports.  Drops are counted by reason in
 * router_dropped_total{reason}.
 */
#ifndef VISOR_ROUTER_H
#define VISOR_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "tp_entry.h"

struct visor;
struct vtp;
struct vtp_pkt;
struct vrt;

#define VRT_RESERVE_MS      30000
#define VRT_KEEPALIVE_DEF   30
#define VRT_KEEPALIVE_MAX   600
#define VRT_MAX_RESERVE     64     /* ids per reserve_ids call */
#define VRT_MAX_RULES       100000 /* table bound (reserved ids included) */

enum vrt_type {
	VRT_RESERVED = 0,
	VRT_FORWARD,
	VRT_INTERMEDIARY,
	VRT_CONSUME,
};

struct vrt_desc {
	uint8_t src_pk[SW_PK_LEN];
	uint8_t dst_pk[SW_PK_LEN];
	uint16_t src_port, dst_port;
};

/* Why a rule went away (told to its owner). */
enum vrt_gone {
	VRT_GONE_CLOSE = 0,    /* a CLOSE came along the route */
	VRT_GONE_EXPIRED,      /* keep_alive_s without a packet */
	VRT_GONE_TRANSPORT,    /* its transport closed */
	VRT_GONE_DELETED,      /* delete_rules, the API, or the owner */
};

/* A rule as the RPCs carry it (the table keeps its own compact form). */
struct vrt_rule {
	uint32_t route_id;
	uint32_t next_route_id;
	uint8_t type;              /* enum vrt_type */
	uint16_t keep_alive_s;
	uint8_t t_id[TP_ID_LEN];   /* ingress (intermediary, consume) */
	uint8_t next_tp[TP_ID_LEN];/* egress (forward, intermediary) */
	struct vrt_desc *desc;     /* forward and consume only */
};

/*
 * The owner of edge rules hears about them here: a packet on a consume rule
 * (after the rule was refreshed), and any owned rule going away (the rule
 * is already out of the table; route_id names it).
 */
struct vrt_hooks {
	void (*deliver)(void *owner, uint8_t type, const uint8_t *payload, size_t len);
	void (*gone)(void *owner, uint32_t route_id, enum vrt_gone why);
};

struct vrt *vrt_new(struct visor *v, const struct vrt_hooks *hooks);
int vrt_start(struct vrt *rt);
void vrt_free(struct vrt *rt);

/* Reserve n fresh ids (1..VRT_MAX_RESERVE) into ids. -1 when full. */
int vrt_reserve(struct vrt *rt, size_t n, uint32_t *ids);
/*
 * Install a rule over a reservation of its route_id (copied; desc too).
 * -1 with err filled when the id is not reserved, or the rule is invalid.
 */
int vrt_install(struct vrt *rt, const struct vrt_rule *r, char *err, size_t errlen);
/* Delete a rule or reservation; the owner hears why. 1 deleted, 0 unknown. */
int vrt_delete(struct vrt *rt, uint32_t route_id, enum vrt_gone why);
/* Set the owner of an installed forward or consume rule. -1 if there is none. */
int vrt_set_owner(struct vrt *rt, uint32_t route_id, void *owner);
/* The enum vrt_type of an id in the table, or -1. */
int vrt_type_of(const struct vrt *rt, uint32_t route_id);
/* Rules and reservations. */
size_t vrt_count(const struct vrt *rt);

/* Send through a local forward rule (refreshes it). -1 when gone or down. */
int vrt_send(struct vrt *rt, uint32_t route_id, uint8_t type, const void *payload, size_t len);
/* Would vrt_send() of len payload bytes go now: vtp_room() of its egress, -1 without one. */
int vrt_room(const struct vrt *rt, uint32_t route_id, size_t len);

/*
 * transport.c's hooks: a packet with a non-zero route id arrived on t
 * (p->type DATA, CLOSE, KEEPALIVE or HANDSHAKE); t is closing.
 */
void vrt_rx(struct vrt *rt, struct vtp *t, const struct vtp_pkt *p);
void vrt_tp_closed(struct vrt *rt, const struct vtp *t);
/* tp_hold.c: a held packet went (1), found its egress gone (0) or could not go (-1). */
void vrt_held_done(struct vrt *rt, int outcome);

/* router_json.c: rules as routing.md's JSON; a rule parsed from it (-1 with err filled). */
cJSON *vrt_rule_json(const struct vrt_rule *r);
int vrt_rule_parse(const cJSON *j, struct vrt_rule *r, struct vrt_desc *desc, char *err,
    size_t errlen);
int vrt_desc_parse(const cJSON *j, struct vrt_desc *d);
cJSON *vrt_desc_json(const struct vrt_desc *d);
/* Every rule (reservations left out), with its expiry, for the API. */
cJSON *vrt_json(const struct vrt *rt);
const char *vrt_type_str(uint8_t type);

/* Drops so far with that reason (tests, metrics). */
uint64_t vrt_dropped(const struct vrt *rt, const char *reason);

#endif
