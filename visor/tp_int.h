/*
 * Inside the transports: the structs transport.c shares with its two
 * carriers, tp_dmsg.c and tp_stcpr.c.  A carrier moves packets; everything
 * else (registry, registration, keep-alive, pings) is transport.c's.
 */
#ifndef VISOR_TP_INT_H
#define VISOR_TP_INT_H

#include <sys/queue.h>
#include <time.h>

#include "transport.h"

struct event;
struct evbuffer;
struct sw_listener;
struct dmsg_stream;
struct dmsg_listener;
struct noise_link;
struct sw_authclient;
struct sw_authreq;
struct sw_http_client;
struct sudph;
struct sudph_conn;

#define VTP_KEEPALIVE_MS   10000  /* a KEEPALIVE after this long without sending */
#define VTP_LOST_MS        30000  /* nothing received this long: the peer is gone */
#define VTP_DIAL_MS        8000   /* a dmsg dial, a resolve + connect + handshake */
#define VTP_HTTP_MS        5000

enum vtp_state {
	VTP_HANDSHAKE = 0, /* accepted stcpr connection, peer not yet known */
	VTP_OPENING,
	VTP_UP,
};

struct vtp_waiter {
	struct vtp_waiter *next;
	vtp_open_cb *cb;
	void *arg;
};

struct vtp_pinger;
struct vtp_burst;

struct vtp {
	struct vtp *prev, *next;
	struct vtp_mgr *m;
	enum vtp_kind kind;
	enum vtp_state state;
	uint8_t pk[SW_PK_LEN];
	uint8_t id[TP_ID_LEN];
	char id_text[TP_ID_TEXT];
	char label[TP_LABEL_MAX];
	int initiator;
	int created_reported;
	time_t since;
	long long last_rx_ms, last_tx_ms, last_reg_ms;
	uint64_t tx_bytes, rx_bytes, tx_pkts, rx_pkts;
	struct event *timer;          /* keep-alive, loss, registration refresh */
	struct vtp_waiter *waiters;
	struct vtp_pinger *pings;
	struct vtp_burst *burst;      /* tp_burst.c */
	uint32_t ping_seq;
	struct sw_authreq *reg;       /* registration in flight */
	/* dmsg */
	struct dmsg_stream *st;
	struct evbuffer *rxbuf;       /* stream bytes until a whole u16-framed packet */
	/* stcpr */
	struct noise_link *nl;
	struct sw_authreq *resolve;
	/* sudph */
	struct sudph_conn *su;
	/* tp_hold.c: a forwarded packet its egress had no room for; reading stopped */
	struct vtp_held *held;
};

struct vtp_mgr {
	struct visor *v;
	struct vtp *head;
	struct sw_dict *by_id;        /* t_id -> the transport vtp_find answers (not handshaking) */
	struct sw_http_client *http;
	struct sw_authclient *tpd;    /* transport-discovery */
	struct sw_authclient *ar;     /* address-resolver */
	struct dmsg_listener *dl;
	struct sw_listener *lst;
	struct event *bind_timer;
	struct sudph *su;             /* tp_sudph.c: the UDP socket and resolver binding */
	int stcpr_port;
	int refresh_ms;
	int stopping;
	char stcpr_listen[256];
	char stcpr_ip[64];
	struct event *stop_timer;
	struct event *hold_timer;     /* tp_hold.c: asks held packets' egresses for room */
	LIST_HEAD(, vtp_held) held;   /* tp_hold.c: every held packet, newest first */
	long long stop_deadline_ms;
	void (*stop_done)(void *arg);
	void *stop_arg;
};

/* Carriers call these. */
struct vtp *vtp_new(struct vtp_mgr *m, enum vtp_kind kind, const uint8_t *pk, int initiator);
/* An accepted transport's peer is known: 0 to keep it, -1 when refused (t is closed). */
int vtp_incoming(struct vtp *t, const uint8_t pk[SW_PK_LEN]);
void vtp_up(struct vtp *t);
/* One whole packet from the peer. -1 when t is gone afterwards. */
int vtp_rx(struct vtp *t, const uint8_t *pkt, size_t len);
/* The carrier ended (stream or connection lost, dial failed). */
void vtp_lost(struct vtp *t, const char *why);

/* tp_dmsg.c */
int tp_dmsg_start(struct vtp_mgr *m);
void tp_dmsg_dial(struct vtp *t);
int tp_dmsg_send(struct vtp *t, const uint8_t *hdr, const void *payload, size_t len);
int tp_dmsg_room(const struct vtp *t, size_t len);
/* Stop (1) or resume (0) taking packets from the stream; resuming reads what waits (t may go). */
void tp_dmsg_pause(struct vtp *t, int paused);
void tp_dmsg_release(struct vtp *t);
void tp_dmsg_stop(struct vtp_mgr *m);

/* tp_stcpr.c */
int tp_stcpr_start(struct vtp_mgr *m);
void tp_stcpr_dial(struct vtp *t);
int tp_stcpr_send(struct vtp *t, const uint8_t *hdr, const void *payload, size_t len);
int tp_stcpr_room(const struct vtp *t, size_t len);
void tp_stcpr_release(struct vtp *t);
/* Stop listening; unbind from the address-resolver too when asked. */
void tp_stcpr_stop(struct vtp_mgr *m, int unbind);

/* tp_burst.c: a PONG of the running burst (1: taken), and its end when t goes. */
int vtp_burst_pong(struct vtp *t, const uint8_t *p, size_t len);
void vtp_burst_abort(struct vtp *t);

/* tp_hold.c: the held packet of a transport going away; the manager's end. */
void vtp_hold_drop(struct vtp *t);
void vtp_hold_stop(struct vtp_mgr *m);

/* tp_sudph.c */
int tp_sudph_start(struct vtp_mgr *m);
void tp_sudph_dial(struct vtp *t);
int tp_sudph_send(struct vtp *t, const uint8_t *hdr, const void *payload, size_t len);
int tp_sudph_room(const struct vtp *t, size_t len);
/* Stop (1) or resume (0) delivering; resuming delivers what waits (-1: t is gone). */
int tp_sudph_pause(struct vtp *t, int paused);
void tp_sudph_release(struct vtp *t);
void tp_sudph_stop(struct vtp_mgr *m, int unbind);

#endif
