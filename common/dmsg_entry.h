/*
 * dmsg_entry: the signed discovery entry of a dmsg client or server
 * (services.md, dmsg-discovery).  Parsed and checked by dmsg-discovery,
 * built and signed by dmsg servers and clients.
 */
#ifndef DMSG_ENTRY_H
#define DMSG_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"

#define DMSG_ENTRY_VERSION       "0.0.1"
#define DMSG_ENTRY_MAX_DELEGATED 64
#define DMSG_ENTRY_MAX_ADDR      261 /* 255-byte host, ':', 5-digit port */

struct dmsg_entry {
	uint8_t pk[SW_PK_LEN];
	unsigned long long sequence;
	unsigned long long timestamp;
	int has_client;
	int has_server;
	uint8_t delegated[DMSG_ENTRY_MAX_DELEGATED][SW_PK_LEN];
	size_t ndelegated;
	char address[DMSG_ENTRY_MAX_ADDR + 1];
	unsigned long long available_sessions;
};

/*
 * Check obj's shape and values and its signature by its "static" key.
 * Returns 0, or the HTTP status that fits the fault with err filled:
 * 400 malformed (a member missing or of the wrong type, bad hex),
 * 422 well-formed but invalid (version, address, too many servers),
 * 401 signature missing or wrong.
 */
int dmsg_entry_parse(const cJSON *obj, struct dmsg_entry *e, char *err, size_t errlen);
/*
 * The same checks but the signature's: for entries whose signature was
 * checked when they came in (a store's own records).  0, 400 or 422.
 */
int dmsg_entry_read(const cJSON *obj, struct dmsg_entry *e, char *err, size_t errlen);

/* A signed JSON object for e, by kp (whose pk must be e->pk). NULL on failure. */
cJSON *dmsg_entry_to_json(const struct dmsg_entry *e, const struct sw_keypair *kp);

/* "host:port" with a non-empty host and a port in 1..65535. */
int dmsg_entry_addr_ok(const char *addr);

#endif
