/*
 * sd_schema: service-discovery's contract, written once (services.md,
 * cxo.md): its HTTP paths, its store keys and its feed's leaf paths, used
 * by the service and by its clients (the visor).  Header only.
 */
#ifndef SD_SCHEMA_H
#define SD_SCHEMA_H

/* HTTP: POST and GET ?type=… on the collection, GET and DELETE on "<pk>:<port>?type=…". */
#define SD_PATH_SERVICES "/api/services"
#define SD_PATH_SERVICE  SD_PATH_SERVICES "/" /* + "<pk>:<port>" */

/*
 * Store keys:
 *   sd:svc:<type>:<pk>          the service JSON, with the entry TTL
 *   sd:type:<type>              zset pk -> expiry: every live service of a type
 *   sd:cc:<type>:<CC>           zset pk -> expiry: those in one country
 *   sd:ver:<type>:<version>     zset pk -> expiry: those of one version
 *   sd:tag:<index without sd:>  a random value every write of that index set
 *                               replaces: the list cache's check (svc_api_cache.h)
 */
#define SD_PREFIX        "sd:"
#define SD_KEY_SERVICE   SD_PREFIX "svc:"  /* + type ":" pk */
#define SD_KEY_TYPE      SD_PREFIX "type:" /* + type */
#define SD_KEY_COUNTRY   SD_PREFIX "cc:"   /* + type ":" CC */
#define SD_KEY_VERSION   SD_PREFIX "ver:"  /* + type ":" version */

/* The services-by-pk feed: SD_FEED_ROOT/<type>/<cc>/<pk>, cc the pk's first two hex chars. */
#define SD_FEED_ROOT     "services"

#endif
