/*
 * Inside the route groups: the manager that rgroup.c, rgroup_dial.c and
 * router_rpc.c share.
 */
#ifndef VISOR_RGROUP_INT_H
#define VISOR_RGROUP_INT_H

#include "noise.h"
#include "rgroup.h"
#include "transport.h"

struct event;
struct frpc_pool;
struct frpc_server;
struct sw_http_client;
struct sw_metric;
struct vrg_dial;

struct vrg_listener {
	struct vrg_listener *next;
	uint16_t port;
	vrg_accept_cb *cb;
	void *arg;
};

struct vrg_mgr {
	struct visor *v;
	struct vrg *head;
	struct vrg_listener *listeners;
	struct vrg_dial *dials;
	struct sw_http_client *http;   /* route-finder */
	struct frpc_server *rpc;       /* port 136 */
	struct frpc_pool *ahead;       /* a stream to the first setup-node, opened ahead */
	uint8_t (*setup_nodes)[SW_PK_LEN];
	size_t nsetup;
	char route_finder[256];
	int stopping;
	struct sw_metric *m_groups;    /* route groups by outcome */
	/* One packet being encrypted or decrypted: groups share it (one loop). */
	uint8_t buf[VTP_MAX_PAYLOAD];
};

#endif
