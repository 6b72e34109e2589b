/*
 * dmsg_client_int: what the files of the dmsg client share, private to
 * them (as store_int.h is to the store): the client, its sessions and
 * listeners, and the functions one file calls in another.
 *
 *   dmsg_client.c  the client: new, start, free, drain, accessors, helpers
 *   dmsg_pool.c    the session pool: sessions as links, frames, session ends
 *   dmsg_disc.c    discovery I/O: available servers, our entry
 *   dmsg_dial.c    the dial state machine
 *   dmsg_listen.c  listeners and incoming streams
 */
#ifndef DMSG_CLIENT_INT_H
#define DMSG_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/util.h>

#include "backoff.h"
#include "dmsg_client.h"
#include "dmsg_stream_int.h"
#include "http.h"

struct bufferevent;
struct evdns_base;
struct sw_dict;
struct sw_http_client;
struct dmsg_ended;

#define DEF_FIRST_RETRY   25      /* at start-up the server may register any moment now */
#define DEF_BACKOFF_MIN   1000
#define DEF_BACKOFF_MAX   60000
#define DEF_REFRESH       60000
#define DEF_HTTP_TIMEOUT  5000
#define DEF_IDLE          (DMSG_STREAM_IDLE_S * 1000)
#define DEF_HWM           (1u << 20)
#define DEF_DIAL_TIMEOUT  20000
#define PENALTY_MS        30000   /* a failed server is avoided this long while others exist */
#define MAX_CANDIDATES    512
#define MAX_CONNS         64      /* an entry lists at most 64 servers */
#define MAX_PENALTIES     64
#define NPORTS            (65536 - DMSG_EPHEMERAL_MIN)
#define POST_RETRY_MS     2000
#define MAX_POST_SYNCS    3
#define PEER_CACHE_MAX    1024    /* peers whose delegated servers are remembered */
#define PEER_CACHE_TTL    30000   /* a server re-posts every 30 s, a client on change */
#define PEER_CACHE_SERVERS 8      /* of a peer's delegated servers, the first 8 */

enum dial_phase {
	DIAL_NONE = 0,
	DIAL_CACHED,  /* the peer's servers are cached: picked up from the loop */
	DIAL_LOOKUP,  /* GET the peer's entry */
	DIAL_SERVER,  /* GET a delegated server's entry */
	DIAL_WAIT,    /* waiting for the session to via */
	DIAL_OPENING, /* OPEN sent on a session */
};

struct dmsg_conn {
	struct dmsg_client *c;
	uint8_t pk[SW_PK_LEN];
	struct dmsg_session *s;
	struct bufferevent *bev;           /* the session's, for the half close of a drain */
	int half_closed;
	int ready;
	int dead;
	struct sw_dict *streams;           /* id (u32 BE) -> stream */
	uint64_t serial;                   /* names it in c->ended */
	uint32_t next_id;                  /* odd */
	TAILQ_HEAD(, dmsg_stream) waitq;   /* streams held back by congestion */
	TAILQ_ENTRY(dmsg_conn) entry;
};

struct dmsg_listener {
	struct dmsg_client *c;
	uint16_t port;
	dmsg_accept_cb *cb;
	void *arg;
	int paused;
	size_t npending;
	TAILQ_HEAD(, dmsg_stream) backlog;
	struct event *kick;
};

struct dmsgc_peer {
	uint8_t pk[SW_PK_LEN];
	long long expires_ms;
	size_t n;
	uint8_t servers[PEER_CACHE_SERVERS][SW_PK_LEN];
	TAILQ_ENTRY(dmsgc_peer) lru;
};

struct penalty {
	uint8_t pk[SW_PK_LEN];
	long long until_ms;
};

struct dmsg_client {
	struct event_base *base;
	const struct sw_keypair *kp;
	struct dmsg_client_opts o;
	char *discovery;
	char *svc;
	struct sw_http_client *http;
	struct evdns_base *dns;
	struct dmsg_stream_env *env;
	int started;
	int freeing;

	/* drain */
	int draining;
	struct event *drain_timer;
	long long drain_deadline_ms;
	void (*drain_done)(void *arg);
	void *drain_arg;

	TAILQ_HEAD(, dmsg_conn) conns;
	int nconns;
	uint64_t conn_serial;
	struct dmsg_ended *ended;          /* streams that ended lately, by (conn serial, id) */
	struct sw_dict *listeners;         /* port (u16 BE) -> listener */
	TAILQ_HEAD(, dmsg_stream) dials;   /* dials in cached, lookup, server or wait */

	/*
	 * The peer cache (dmsg_dial.c): pk -> its delegated servers, so that a
	 * dial to a peer dialled lately skips the discovery GET.  LRU-bounded,
	 * with a TTL; an entry that led a dial astray is dropped and the dial
	 * looks the peer up afresh, once.
	 */
	struct sw_dict *peers;             /* pk -> struct dmsgc_peer */
	TAILQ_HEAD(, dmsgc_peer) peer_lru; /* least recently used first */
	TAILQ_HEAD(, dmsg_stream) cached;  /* DIAL_CACHED dials, for cached_kick */
	struct event *cached_kick;
	struct dmsg_dial_stats dstats;
	TAILQ_HEAD(, dmsg_stream) all;
	uint8_t ports[NPORTS / 8];         /* ephemeral ports in use */
	unsigned next_port;

	/* pool maintenance */
	struct event *maint_timer;
	struct sw_backoff backoff;         /* reconnects: backoff_min_ms doubling */
	int ever_ready;                    /* a session was up once: no more quick retries */
	long long start_ms;                /* sw_mono_ms() at dmsg_client_start */
	int fetching;
	struct penalty penalties[MAX_PENALTIES];

	/* entry */
	struct event *refresh_timer;
	struct event *post_timer;
	unsigned long long seq;
	int seq_known;                     /* seq continues the stored entry */
	int posting;
	int post_again;
	int syncs;
	unsigned long long gen;            /* bumped on each change of ready sessions */
	unsigned long long posted_gen;
	unsigned long long inflight_gen;
	int posted;
};


/* dmsg_client.c */
uint16_t dmsgc_port_alloc(struct dmsg_client *c);
struct sw_http_opts dmsgc_http_opts(const struct dmsg_client *c);
struct dmsg_conn *dmsgc_conn_find(const struct dmsg_client *c, const uint8_t pk[SW_PK_LEN]);
int dmsgc_penalized(const struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], long long now);
void dmsgc_penalize(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN]);
void dmsgc_stream_forget(struct dmsg_stream *st);
struct dmsg_stream *dmsgc_stream_new(struct dmsg_client *c);

/* dmsg_pool.c */
struct dmsg_stream *dmsgc_conn_stream(struct dmsg_conn *conn, uint32_t id);
int dmsgc_conn_attach(struct dmsg_conn *conn, struct dmsg_stream *st, uint32_t id);
void dmsgc_schedule_maintain(struct dmsg_client *c, int ms);
void dmsgc_conn_free(struct dmsg_conn *conn);
int dmsgc_retry_delay(struct dmsg_client *c);
struct dmsg_conn *dmsgc_conn_open(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN],
    const char *addr);

/* dmsg_disc.c */
void dmsgc_maintain(struct dmsg_client *c);
void dmsgc_maint_timer_cb(evutil_socket_t fd, short what, void *arg);
void dmsgc_post_entry(struct dmsg_client *c);
void dmsgc_post_timer_cb(evutil_socket_t fd, short what, void *arg);
void dmsgc_refresh_cb(evutil_socket_t fd, short what, void *arg);

/* dmsg_dial.c */
void dmsgc_dial_start_open(struct dmsg_conn *conn, struct dmsg_stream *st);
int dmsgc_peers_init(struct dmsg_client *c);
void dmsgc_peers_free(struct dmsg_client *c);
int dmsgc_redial(struct dmsg_stream *st, int code);

/* dmsg_listen.c */
void dmsgc_on_open(struct dmsg_conn *conn, uint32_t id, const uint8_t *p, size_t len);
void dmsgc_listener_drop(struct dmsg_listener *l);

#endif
