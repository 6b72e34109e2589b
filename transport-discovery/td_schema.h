/*
 * td_schema: transport-discovery's contract, written once (services.md,
 * cxo.md): its HTTP paths, its store keys (route-finder reads them too,
 * through common/tp_entry.h) and its feed's leaf paths.  Header only.
 */
#ifndef TD_SCHEMA_H
#define TD_SCHEMA_H

/* HTTP */
#define TPD_PATH_POST      "/transports/"    /* also without the '/' */
#define TPD_PATH_BY_ID     "/transports/id:" /* + t_id: GET, DELETE */
#define TPD_PATH_BY_EDGE   "/transports/edge:" /* + pk: GET */
#define TPD_PATH_ALL       "/all-transports"

/*
 * Store keys (prefix "tpd:"):
 *   tpd:tp:<t_id>     the entry JSON (tp_entry_json), with the entry's TTL
 *   tpd:all           zset t_id -> expiry (Unix s) of every live entry
 *   tpd:edge:<pk>     zset t_id -> expiry of the entries with that edge
 *   tpd:version       integer, INCRed by every write (not by expiry): readers
 *                     poll it to notice changes; expiry they see in the scores
 *   tpd:tag:all, tpd:tag:edge:<pk>
 *                     a random value replaced by every write of that index
 *                     set: the list cache's check (common/svc_api_cache.h)
 *   tpd:nonce:<pk>    httpauth nonces
 */
#define TPD_PREFIX      "tpd:"
#define TPD_KEY_ENTRY   TPD_PREFIX "tp:"
#define TPD_KEY_ALL     TPD_PREFIX "all"
#define TPD_KEY_EDGE    TPD_PREFIX "edge:"
#define TPD_KEY_VERSION TPD_PREFIX "version"

/* The all-transports feed: TPD_FEED_ROOT/<cc>/<t_id>, cc its first two characters. */
#define TPD_FEED_ROOT   "transports"

#endif
