/*
 * store_index: indexes that expire with their records, on the common store.
 *
 * An index is a sorted set whose members are record names and whose scores
 * are the records' expiry times (Unix seconds).  A record and its index
 * entries are written in one transaction with the same expiry, so when the
 * record's TTL runs out every index forgets it at the same moment, on both
 * backends, without a sweeper: readers trim scores in the past and read only
 * scores in the future.  The set itself carries the TTL of its newest
 * member, so an index nobody writes to disappears too.
 *
 * The helpers add commands to a caller's transaction, so a service composes
 * one atomic write of a record and all its indexes.
 */
#ifndef SW_STORE_INDEX_H
#define SW_STORE_INDEX_H

#include <stddef.h>

#include "store.h"

/* ZADD key exp member; EXPIRE key ttl_s (exp = now + ttl_s).  -1 if an add failed. */
int sw_store_index_add(struct sw_store_txn *t, const char *key, const char *member,
    long long now, long long ttl_s);
/* ZREM key member. */
int sw_store_index_rem(struct sw_store_txn *t, const char *key, const char *member);
/*
 * Trim the expired members of key, then read the live ones: two replies in
 * the transaction's array, the second an ARRAY of members (see
 * sw_store_index_members).
 */
int sw_store_index_live(struct sw_store_txn *t, const char *key, long long now);
/*
 * The members array of the live read whose trim is reply element i of a
 * transaction's reply r (i.e. element i + 1), or NULL when r is not shaped so.
 */
const struct sw_reply *sw_store_index_members(const struct sw_reply *r, size_t i);

/*
 * MGET prefix+member for each of the n members (NUL-terminated strings of at
 * most 200 bytes).  -1 on a bad call (cb will not run).
 */
int sw_store_mget_prefixed(struct sw_store *st, const char *prefix, const char *const *members,
    size_t n, sw_store_cb *cb, void *arg);

#endif
