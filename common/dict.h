/*
 * dict: a hash table from byte-string keys to pointers.
 *
 * Keys are copied in (binary-safe, any length, stored NUL-terminated so a
 * text key can be read back as a C string).  Values are the caller's
 * pointers; the dict frees them with the function given to sw_dict_new when
 * an entry is replaced, deleted or the dict is freed.
 *
 * Keys often come from the network (public keys, paths), so the hash is a
 * keyed SipHash with a per-process random key: a peer cannot choose keys
 * that collide.
 *
 * The table only resizes on insert (and in sw_dict_compact), never on
 * delete, so deleting the entry being visited by sw_dict_next or
 * sw_dict_scan is safe; inserting while iterating is not.
 */
#ifndef SW_DICT_H
#define SW_DICT_H

#include <stddef.h>

struct sw_dict;
typedef void sw_dict_free_fn(void *val);

/* free_val may be NULL (values are not owned).  NULL on out of memory. */
struct sw_dict *sw_dict_new(sw_dict_free_fn *free_val);
void sw_dict_free(struct sw_dict *d);
size_t sw_dict_size(const struct sw_dict *d);

/* 1 and *val set (if val not NULL) when key is present, else 0. */
int sw_dict_find(const struct sw_dict *d, const void *key, size_t klen, void **val);
/* The value, or NULL when absent (ambiguous if NULL values are stored). */
void *sw_dict_get(const struct sw_dict *d, const void *key, size_t klen);
/*
 * Insert or replace (the old value is freed).  1 added, 0 replaced,
 * -1 out of memory (the dict is unchanged and val is not taken).
 */
int sw_dict_set(struct sw_dict *d, const void *key, size_t klen, void *val);
/* Insert only if absent: 1 added, 0 present (val not taken), -1 out of memory. */
int sw_dict_add(struct sw_dict *d, const void *key, size_t klen, void *val);
/* 1 deleted (value freed), 0 absent. */
int sw_dict_del(struct sw_dict *d, const void *key, size_t klen);
/* Remove without freeing the value: 1 and *val set, or 0 when absent. */
int sw_dict_take(struct sw_dict *d, const void *key, size_t klen, void **val);
/* The stored copy of the key (valid while the entry lives), or NULL. */
const char *sw_dict_key(const struct sw_dict *d, const void *key, size_t klen);
/* Shrink the table if it is mostly empty (after mass deletion). */
void sw_dict_compact(struct sw_dict *d);

/* Full iteration: for (sw_dict_iter_init(&it, d); sw_dict_next(&it, …);) */
struct sw_dict_iter {
	struct sw_dict *d;
	size_t bucket;
	void *next;
};
void sw_dict_iter_init(struct sw_dict_iter *it, struct sw_dict *d);
/* 1 with key/klen/val set (each may be NULL), 0 at the end. */
int sw_dict_next(struct sw_dict_iter *it, const char **key, size_t *klen, void **val);

/*
 * Bounded incremental walk, for background work such as expiry sweeps:
 * visits every entry of at most max_buckets buckets starting at cursor and
 * returns the cursor for the next call (0 when the walk wrapped around).
 * fn may delete the entry it is given.  A resize between calls can make a
 * walk skip or repeat entries; callers that loop forever do not mind.
 */
typedef void sw_dict_scan_fn(const char *key, size_t klen, void *val, void *arg);
size_t sw_dict_scan(struct sw_dict *d, size_t cursor, size_t max_buckets, sw_dict_scan_fn *fn,
    void *arg);

#endif
