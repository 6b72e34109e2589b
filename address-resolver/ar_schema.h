/*
 * ar_schema: address-resolver's contract, written once (services.md): its
 * HTTP paths and store keys, used by the service and by the visor.  Header
 * only.
 */
#ifndef AR_SCHEMA_H
#define AR_SCHEMA_H

/* HTTP */
#define AR_PATH_BIND_STCPR    "/bind/stcpr"     /* POST, DELETE */
#define AR_PATH_RESOLVE_STCPR "/resolve/stcpr/" /* + pk: GET */
#define AR_PATH_RESOLVE_SUDPH "/resolve/sudph/" /* + pk: GET */
#define AR_PATH_TRANSPORTS    "/transports"

/*
 * Store keys:
 *   ar:stcpr:<pk>     the stcpr binding JSON, TTL entry_timeout_s
 *   ar:sudph:<pk>     the sudph binding JSON, TTL sudph_timeout_s (a heartbeat rewrites it)
 *   ar:idx:stcpr      zset pk -> expiry (common/store_index): live stcpr bindings
 *   ar:idx:sudph      zset pk -> expiry: live sudph bindings
 */
#define AR_PREFIX        "ar:"
#define AR_KEY_INDEX     AR_PREFIX "idx:" /* + net */

#endif
