/*
 * cxo_tree: a publisher's mutable tree.  Paths are '/'-separated names;
 * intermediate sub-trees are made by put and removed again when they
 * become empty, so a feed never carries empty nodes it did not ask for.
 * A node remembers the hash of its last encoding and whether anything under
 * it changed since, so a commit re-encodes only the nodes on changed paths.
 */
#ifndef CXO_TREE_H
#define CXO_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct cxo_tree;
struct cxo_store;

struct cxo_tree *cxo_tree_new(void);
void cxo_tree_free(struct cxo_tree *t);
/*
 * Set a leaf.  -1 on a bad path (empty name, '/', NUL, deeper than
 * CXO_MAX_DEPTH), a leaf over CXO_MAX_LEAF, a node that would pass
 * CXO_MAX_OBJ, or a path crossing a leaf / naming a sub-tree.
 */
int cxo_tree_put(struct cxo_tree *t, const char *path, const void *data, size_t len);
/* Remove a leaf: 1 removed, 0 absent, -1 bad path or a sub-tree. */
int cxo_tree_delete(struct cxo_tree *t, const char *path);
/* Remove the node at prefix (leaf or sub-tree, with all under it): 1 / 0 / -1. */
int cxo_tree_prune(struct cxo_tree *t, const char *prefix);
/* Remove everything. */
void cxo_tree_clear(struct cxo_tree *t);
size_t cxo_tree_leaves(const struct cxo_tree *t);
int cxo_tree_dirty(const struct cxo_tree *t);
/*
 * Encode the changed nodes into st (as pending objects) and give the hash
 * of the top node.  0, or -1 out of memory (the tree stays dirty).
 */
int cxo_tree_commit(struct cxo_tree *t, struct cxo_store *st, uint8_t top[SW_HASH_LEN]);

#endif
