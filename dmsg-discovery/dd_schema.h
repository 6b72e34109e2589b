/*
 * dd_schema: dmsg-discovery's contract, written once (services.md, cxo.md):
 * its HTTP paths, its store keys and its feed's leaf paths.  The service and
 * every client of it (common/dmsg_client.c, dmsg-server, the visor) use
 * these, so a path is never retyped.  Header only: no code, no includes.
 */
#ifndef DD_SCHEMA_H
#define DD_SCHEMA_H

/* HTTP.  Paths ending in '/' take a hex public key after them. */
#define DD_PATH_ENTRY_BASE    "/dmsg-discovery/entry"
#define DD_PATH_ENTRY         DD_PATH_ENTRY_BASE "/"          /* POST; GET, DELETE + pk */
#define DD_PATH_ENTRIES       "/dmsg-discovery/entries"
#define DD_PATH_AVAILABLE     "/dmsg-discovery/available_servers"
#define DD_PATH_ALL_SERVERS   "/dmsg-discovery/all_servers"
#define DD_PATH_CLIENTS       "/dmsg-discovery/clients-by-server/" /* + server pk */

/* Store keys. */
#define DD_PREFIX             "dmsgd:"
#define DD_KEY_ENTRY          DD_PREFIX "entry:"   /* + pk hex: the entry JSON */
#define DD_KEY_ALL            DD_PREFIX "all"      /* zset pk -> expiry: every live entry */
#define DD_KEY_SERVERS        DD_PREFIX "servers"  /* zset pk -> expiry: live servers */
#define DD_KEY_CLIENTS        DD_PREFIX "clients:" /* + server pk: zset of its clients */

/* The clients-by-server feed: FEED_ROOT/<server pk>/<cc>/<client pk>, cc = 2 hex chars. */
#define DD_FEED_ROOT          "clients-by-server"

#endif
