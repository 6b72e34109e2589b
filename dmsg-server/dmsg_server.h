/*
 * dmsg-server: the dmsg relay (dmsg.md, services.md).  relay.c holds the
 * sessions and streams and can run on its own (the tests and benchmarks use
 * it without the framework); dmsg_server.c makes it a framework service that
 * registers itself in dmsg-discovery; api.c is the HTTP side.
 */
#ifndef DMSG_SERVER_H
#define DMSG_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "service.h"

struct event_base;
struct sw_metrics;
struct sw_http_server;
struct ds_relay;

#define DS_HIGH_WATER      (1024 * 1024) /* per destination session: credit held above */
#define DS_STREAM_CREDIT   (1024 * 1024) /* most credit one sender holds per stream */
#define DS_HARD_WATER      (16 * 1024 * 1024) /* per destination: senders paused above */
#define DS_MAX_HANDSHAKES  1024          /* connections still in the handshake */

struct ds_opts {
	size_t max_sessions;      /* 0: 2048 */
	int handshake_timeout_ms; /* 0: DMSG_HANDSHAKE_TIMEOUT_S */
	int accept_timeout_ms;    /* 0: DMSG_ACCEPT_TIMEOUT_S */
	int stream_idle_ms;       /* 0: DMSG_STREAM_IDLE_S */
	int ping_after_ms;        /* 0: DMSG_PING_AFTER_S */
	int idle_close_ms;        /* 0: DMSG_IDLE_CLOSE_S */
	size_t high_water;        /* 0: DS_HIGH_WATER */
	size_t stream_credit;     /* 0: DS_STREAM_CREDIT (at least the initial window) */
	size_t hard_water;        /* 0: DS_HARD_WATER */
	size_t max_handshakes;    /* 0: DS_MAX_HANDSHAKES */
};

/* relay.c.  kp must outlive the relay; metrics may be NULL. */
struct ds_relay *ds_relay_new(struct event_base *base, const char *svc,
    const struct sw_keypair *kp, const struct ds_opts *opts, struct sw_metrics *metrics);
/* Close every session and the listener. NULL-safe. */
void ds_relay_free(struct ds_relay *r);
/* "host:port" (port 0: any free port).  -1 logged. */
int ds_relay_listen(struct ds_relay *r, const char *addr);
int ds_relay_port(const struct ds_relay *r);
/* Stop accepting new connections (graceful stop). */
void ds_relay_stop_accepting(struct ds_relay *r);

size_t ds_relay_sessions(const struct ds_relay *r);  /* after the handshake */
size_t ds_relay_streams(const struct ds_relay *r);
/* Whether pk has a session (after the handshake) right now. */
int ds_relay_has_session(const struct ds_relay *r, const uint8_t pk[SW_PK_LEN]);
size_t ds_relay_max_sessions(const struct ds_relay *r);
/* Bytes queued toward all peers right now (bounded by backpressure). */
size_t ds_relay_queued(const struct ds_relay *r);
/* The longest queue toward one peer seen after a relayed frame (tests, benchmarks). */
size_t ds_relay_queued_peak(const struct ds_relay *r);
unsigned long long ds_relay_relayed_bytes(const struct ds_relay *r);
unsigned long long ds_relay_rejects(const struct ds_relay *r, int code);
/* [{"pk","streams","since"}] for GET /sessions. */
cJSON *ds_relay_sessions_json(const struct ds_relay *r);

/* api.c: GET /sessions on srv. */
int ds_api_routes(struct sw_http_server *srv, struct ds_relay *r);

extern const struct sw_service_ops dmsg_server_ops;

#endif
