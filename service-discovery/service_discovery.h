/*
 * service-discovery: the registry of visor apps (visors, vpn and skysocks
 * servers) by (type, pk), with country and version filters (services.md).
 * service_discovery.c is the service, api.c the HTTP handlers, record.c a
 * service's parse and encode, store.c the records on the common store,
 * feed.c the services-by-pk CXO feed, which the API tells of every
 * committed mutation.
 */
#ifndef SERVICE_DISCOVERY_H
#define SERVICE_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"
#include "cxo_follow.h"
#include "httpauth.h"
#include "netaddr.h"
#include "sd_schema.h"
#include "service.h"
#include "store.h"

#define SD_MAX_VERSION   32  /* bytes of a version string */
#define SD_MAX_REGION    64
#define SD_MAX_LOCAL_IPS 16
#define SD_ADDR_TEXT     (2 * SW_PK_LEN + 7) /* "<pk>:65535" and NUL */

enum sd_type {
	SD_VISOR = 0,
	SD_VPN,
	SD_SKYSOCKS,
	SD_NTYPES,
};

/* One service, parsed and checked; the stored JSON is made from this. */
struct sd_service {
	uint8_t pk[SW_PK_LEN];
	char pk_hex[SW_PK_HEX];
	unsigned port;
	enum sd_type type;
	char version[SD_MAX_VERSION + 1]; /* "" when absent */
	char country[3];                  /* ISO 3166 alpha-2, upper case; "" when absent */
	char region[SD_MAX_REGION + 1];
	int has_geo;
	size_t nlocal;
	char local_ips[SD_MAX_LOCAL_IPS][SW_IP_TEXT];
	int display_node_ip;
	long long registered; /* Unix s of the last post */
};

struct sw_http_server;
struct sw_metric;
struct sw_dict;
struct cxo_follow;
struct sw_http_req;
struct sw_api_cache;

struct sd {
	struct sw_svc *svc;
	const char *name;
	struct sw_store *st;
	struct sw_http_server *http;
	struct sw_keypair kp;
	struct sw_httpauth auth;
	char listen[256];
	long long ttl_s;
	long long follow_ms; /* cxo_follow_ms: 0, or refill the feed this often */
	struct sw_dict *writing; /* "<type>:<pk>" with a write in flight */
	struct sw_metric *m_writes;
	struct sw_metric *m_feed;
	struct sw_api_cache *cache; /* the list answers (svc_api_cache.h) */
	/* The services-by-pk feed (feed.c), when cxo_tcp_addr or dmsg_discovery is set. */
	char cxo_addr[CXO_FOLLOW_ADDR];
	char dmsg_disc[CXO_FOLLOW_ADDR];
	struct cxo_follow *feed; /* NULL when not published */
	struct sw_http_dmsg_server *http_dmsg; /* the HTTP API on dmsg port 80 */
};

extern const struct sw_service_ops service_discovery_ops;

/* record.c */
/* "visor", "vpn", "skysocks" or its alias "proxy"; -1 otherwise. */
int sd_type_parse(const char *s, enum sd_type *t);
const char *sd_type_name(enum sd_type t);
/* "<64 lowercase hex pk>:<port 0-65535>": 0, else 400 (malformed) or 422 (port too big). */
int sd_addr_parse(const char *s, uint8_t pk[SW_PK_LEN], unsigned *port);
/* A version as stored and as a filter: 1..32 bytes of [0-9A-Za-z.+_-]. */
int sd_version_valid(const char *s);
/* Two ASCII letters, upper-cased into out[3]; -1 otherwise. */
int sd_country_parse(const char *s, char out[3]);
/* 0, or 400/422 with err filled (README conventions). */
int sd_service_parse(const cJSON *o, struct sd_service *s, char *err, size_t errlen);
/* The stored form (members in a fixed order, "registered" last); malloc'd, NULL on OOM. */
char *sd_service_json(const struct sd_service *s);
/* Whether a stored record is the one at addr ("<pk>:<port>", canonical). */
int sd_stored_has_addr(const char *json, size_t len, const char *addr);
/* The fields of a stored record (written by us, so only its shape is checked). */
int sd_service_from_stored(const char *json, size_t len, struct sd_service *s);

/* store.c */
int sd_store_get(struct sd *sd, enum sd_type t, const char *pk_hex, sw_store_cb *cb, void *arg);
/* Write s (stored as json) and its indexes, replacing old (NULL when new). */
int sd_store_put(struct sd *sd, const struct sd_service *s, const char *json,
    const struct sd_service *old, sw_store_cb *cb, void *arg);
int sd_store_del(struct sd *sd, const struct sd_service *old, sw_store_cb *cb, void *arg);
/*
 * Answer req with the services of type t, narrowed by country and version
 * (either may be NULL), all or a random sample of quantity (0: all), from
 * the list cache while it is exact (svc_api_cache.h).
 */
void sd_list(struct sd *sd, struct sw_http_req *req, enum sd_type t, const char *country,
    const char *version, long long quantity);

/*
 * feed.c: the services-by-pk feed (record kind = the type, member the pk
 * hex); the API's committed hook hands it each mutation
 * (cxo_follow_put/del).  Published on addr (TCP) and/or dmsg.  -1 logged.
 */
int sd_feed_start(struct sd *sd, const char *addr);
/* Stop publishing, then sw_svc_drain(done). */
void sd_feed_stop(struct sd *sd, sw_svc_stopped *done);
void sd_feed_free(struct sd *sd);

/* api.c */
int sd_api_routes(struct sd *sd);

#endif
