/*
 * cxo_store: content-addressed CXO objects with reference counts, shared by
 * the publisher (the objects of its current and previous root) and the
 * subscriber (its snapshot, and what it has fetched for the next one).
 *
 * An object's count is the number of live objects that name it plus the
 * holds on it (a root); an object becomes live when its count leaves 0 and
 * then holds its children once, so holding a new root costs only its new
 * objects and releasing an old one frees only what nothing else names.
 * Objects added but never held are "pending": kept (a subscriber reuses
 * them after a dropped root) until cxo_store_sweep.
 */
#ifndef CXO_STORE_H
#define CXO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct cxo_store;

struct cxo_store *cxo_store_new(void);
void cxo_store_free(struct cxo_store *st);
/*
 * Copy in a checked object under its hash (the caller hashed it).  1 added
 * (pending), 0 already present, -1 out of memory.
 */
int cxo_store_add(struct cxo_store *st, const uint8_t hash[SW_HASH_LEN], const uint8_t *buf,
    size_t len);
/* The object's bytes, or NULL. */
const uint8_t *cxo_store_get(const struct cxo_store *st, const uint8_t hash[SW_HASH_LEN],
    size_t *len);
/* 1 if present and live (held, so every object under it is present too). */
int cxo_store_live(const struct cxo_store *st, const uint8_t hash[SW_HASH_LEN]);
/* Take / drop a hold on a present object (a root's tree). */
void cxo_store_hold(struct cxo_store *st, const uint8_t hash[SW_HASH_LEN]);
void cxo_store_release(struct cxo_store *st, const uint8_t hash[SW_HASH_LEN]);
/* Free every pending object. */
void cxo_store_sweep(struct cxo_store *st);
size_t cxo_store_count(const struct cxo_store *st);
size_t cxo_store_bytes(const struct cxo_store *st);
size_t cxo_store_pending_bytes(const struct cxo_store *st);

#endif
