/*
 * The transport graph of route-finder and its path search.
 *
 * Visors are nodes, transports undirected edges (a transport carries
 * packets both ways).  Both live in arrays addressed by index, found by key
 * through dicts (PK -> node, t_id -> edge), so a refresh touches one edge in
 * O(1) and a search walks adjacency arrays without hashing.  Freed slots go
 * on free lists; a node leaves with its last edge.
 *
 * The search (paths.c) is Yen's k shortest loop-free paths with breadth-first
 * search (every hop costs 1).  Paths are ordered by hop count, then by their
 * t_id sequences compared hop by hop from the source, each t_id compared as
 * its 16 bytes (the same as comparing the lowercase UUID text).  That order
 * extends a prefix consistently, which is what Yen's method needs, and the
 * BFS returns the least path of that order (a BFS from the target gives
 * distances, then a walk from the source takes the least t_id that gets one
 * hop closer).  Search scratch (stamps, queue, candidate paths) belongs to
 * the graph and is reused: a query allocates nothing.
 *
 * Fields are for graph.c and paths.c; everyone else uses the functions.
 */
#ifndef RF_GRAPH_H
#define RF_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "tp_entry.h"

#define RF_MAX_HOPS    10  /* the API's ceiling for max_hops */
#define RF_MAX_PATHS   5   /* paths per pair */
/*
 * min_hops 1: Yen's list holds the returned paths only.  min_hops > 1: a
 * depth-first search by exact length (paths.c), bounded by RF_DFS_BUDGET
 * adjacency entries looked at per pair.
 */
#define RF_MAX_ACCEPTED RF_MAX_PATHS
#define RF_DFS_BUDGET  250000
#define RF_MAX_CAND    (RF_MAX_ACCEPTED * RF_MAX_HOPS)
#define RF_NONE        UINT32_MAX

struct rf_path {
	uint32_t len;                     /* hops */
	uint32_t edge[RF_MAX_HOPS];       /* edge indices, source first */
	uint32_t node[RF_MAX_HOPS + 1];   /* node indices, node[0] the source */
};

struct rf_node {
	uint8_t pk[SW_PK_LEN];
	uint32_t *adj; /* edge indices */
	uint32_t deg, cap;
	uint32_t seen;  /* == graph's seen stamp: dist is valid in this search */
	uint32_t block; /* == graph's block stamp: not to be used in this search */
	uint32_t dist;
};

struct rf_edge {
	uint8_t t_id[TP_ID_LEN];
	uint32_t a, b; /* node indices; a == RF_NONE on a free slot */
	long long exp; /* Unix s; usable while exp > now */
	uint32_t mark; /* refresh generation that last saw it */
	uint32_t block;
	uint8_t type;  /* enum rf_type */
};

/* Transport types, as bits of a search's type mask. */
enum rf_type {
	RF_TYPE_DMSG = 0,
	RF_TYPE_STCPR,
	RF_TYPE_SUDPH,
	RF_TYPE_OTHER,
};
#define RF_TYPES_ALL 0xffu
/* The bit of a type name; RF_TYPE_OTHER for one we do not know. */
enum rf_type rf_type_parse(const char *name);

struct sw_dict;

struct rf_graph {
	struct sw_dict *node_ix; /* pk -> index + 1 */
	struct sw_dict *edge_ix; /* t_id -> index + 1 */
	struct rf_node *nodes;
	uint32_t nnodes, capnodes; /* slots in use (live or free), allocated */
	uint32_t *free_nodes, nfree_nodes;
	struct rf_edge *edges;
	uint32_t nedges, capedges;
	uint32_t *free_edges, nfree_edges;
	uint32_t live_nodes, live_edges;
	uint32_t mark; /* refresh generation */
	/* search scratch */
	uint32_t seen, block;
	unsigned types;  /* the search's type mask */
	uint32_t *queue; /* capnodes long */
	struct rf_path *acc;  /* RF_MAX_ACCEPTED */
	struct rf_path *cand; /* RF_MAX_CAND */
	size_t ncand;
};

struct rf_graph *rf_graph_new(void);
void rf_graph_free(struct rf_graph *g);

/*
 * Add a transport, or refresh the expiry of a known one (its edges never
 * change: they make its id).  1 added, 0 refreshed, -1 out of memory or a
 * transport from a visor to itself.  Either way it is marked seen by the
 * current refresh.
 */
int rf_graph_put(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN], const uint8_t a[SW_PK_LEN],
    const uint8_t b[SW_PK_LEN], long long exp);
/* The same with the transport's type ("dmsg", "stcpr", …; NULL: other). */
int rf_graph_put_type(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN],
    const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN], const char *type, long long exp);
/* 1 deleted, 0 unknown. */
int rf_graph_del(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN]);

/*
 * A refresh: mark_begin, then touch (known: new expiry, 1) or put every
 * transport the store holds, then sweep deletes the ones not seen and
 * returns the earliest expiry left (LLONG_MAX when empty).
 */
void rf_graph_mark_begin(struct rf_graph *g);
int rf_graph_touch(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN], long long exp);
long long rf_graph_sweep(struct rf_graph *g);

uint32_t rf_graph_nodes(const struct rf_graph *g);
uint32_t rf_graph_edges(const struct rf_graph *g);
/* Node index of pk, or RF_NONE. */
uint32_t rf_graph_node(const struct rf_graph *g, const uint8_t pk[SW_PK_LEN]);

/*
 * Up to k (<= RF_MAX_PATHS) loop-free paths from src to dst of min_hops to
 * max_hops hops (1 <= min_hops <= max_hops <= RF_MAX_HOPS) over transports
 * alive at now, least first in the order above.  Returns how many were
 * written to out; 0 when src or dst is unknown or src == dst.
 */
int rf_graph_paths(struct rf_graph *g, const uint8_t src[SW_PK_LEN], const uint8_t dst[SW_PK_LEN],
    int min_hops, int max_hops, long long now, struct rf_path *out, int k);
/* The same over transports whose type bit is in types (RF_TYPES_ALL: any). */
int rf_graph_paths_typed(struct rf_graph *g, const uint8_t src[SW_PK_LEN],
    const uint8_t dst[SW_PK_LEN], int min_hops, int max_hops, unsigned types, long long now,
    struct rf_path *out, int k);

/* The order of paths (negative, 0, positive). */
int rf_path_cmp(const struct rf_graph *g, const struct rf_path *p, const struct rf_path *q);

#endif
