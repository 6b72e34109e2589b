/*
 * The transport graph's storage (graph.h): nodes and edges in arrays with
 * free lists, found through dicts, adjacency as arrays of edge indices.
 * Changes cost O(1) plus the degree of the two visors (an edge leaves its
 * adjacency arrays by swap-remove); a refresh's sweep is the only walk over
 * every edge, and it runs only when the store changed.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "graph.h"

static void *
ix_val(uint32_t i)
{
	return (void *)(uintptr_t)((uintptr_t)i + 1);
}

static uint32_t
ix_get(const struct sw_dict *d, const void *key, size_t klen)
{
	void *v;

	if (!sw_dict_find(d, key, klen, &v))
		return RF_NONE;
	return (uint32_t)((uintptr_t)v - 1);
}

/* The capacity to grow cap to for want slots (doubling); 0 past 2^31. */
static uint32_t
next_cap(uint32_t cap, uint32_t want)
{
	uint32_t n = cap ? cap : 16;

	while (n < want) {
		if (n > UINT32_MAX / 4)
			return 0;
		n *= 2;
	}
	return n;
}

static int
resize(void **arr, uint32_t n, size_t sz)
{
	void *p = realloc(*arr, (size_t)n * sz);

	if (p == NULL)
		return -1;
	*arr = p;
	return 0;
}

/*
 * Room for one more edge and two more nodes, free lists and BFS queue
 * included, before anything changes: an insert then only fails in the
 * dicts or an adjacency array, which are undone cleanly.
 */
static int
reserve(struct rf_graph *g)
{
	uint32_t cap;

	if (g->nnodes + 2 > g->capnodes) {
		cap = next_cap(g->capnodes, g->nnodes + 2);
		if (cap == 0 || resize((void **)&g->nodes, cap, sizeof(*g->nodes)) == -1 ||
		    resize((void **)&g->queue, cap, sizeof(*g->queue)) == -1 ||
		    resize((void **)&g->free_nodes, cap, sizeof(*g->free_nodes)) == -1)
			return -1;
		g->capnodes = cap;
	}
	if (g->nedges + 1 > g->capedges) {
		cap = next_cap(g->capedges, g->nedges + 1);
		if (cap == 0 || resize((void **)&g->edges, cap, sizeof(*g->edges)) == -1 ||
		    resize((void **)&g->free_edges, cap, sizeof(*g->free_edges)) == -1)
			return -1;
		g->capedges = cap;
	}
	return 0;
}

struct rf_graph *
rf_graph_new(void)
{
	struct rf_graph *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->node_ix = sw_dict_new(NULL);
	g->edge_ix = sw_dict_new(NULL);
	g->acc = calloc(RF_MAX_ACCEPTED, sizeof(*g->acc));
	g->cand = calloc(RF_MAX_CAND, sizeof(*g->cand));
	if (g->node_ix == NULL || g->edge_ix == NULL || g->acc == NULL || g->cand == NULL) {
		rf_graph_free(g);
		return NULL;
	}
	g->mark = 1;
	return g;
}

void
rf_graph_free(struct rf_graph *g)
{
	if (g == NULL)
		return;
	for (uint32_t i = 0; i < g->nnodes; i++)
		free(g->nodes[i].adj);
	sw_dict_free(g->node_ix);
	sw_dict_free(g->edge_ix);
	free(g->nodes);
	free(g->free_nodes);
	free(g->edges);
	free(g->free_edges);
	free(g->queue);
	free(g->acc);
	free(g->cand);
	free(g);
}

uint32_t
rf_graph_nodes(const struct rf_graph *g)
{
	return g->live_nodes;
}

uint32_t
rf_graph_edges(const struct rf_graph *g)
{
	return g->live_edges;
}

uint32_t
rf_graph_node(const struct rf_graph *g, const uint8_t pk[SW_PK_LEN])
{
	return ix_get(g->node_ix, pk, SW_PK_LEN);
}

/* The node of pk, made if new (room reserved); RF_NONE when out of memory. */
static uint32_t
node_get(struct rf_graph *g, const uint8_t pk[SW_PK_LEN])
{
	uint32_t i = ix_get(g->node_ix, pk, SW_PK_LEN);

	if (i != RF_NONE)
		return i;
	i = g->nfree_nodes > 0 ? g->free_nodes[g->nfree_nodes - 1] : g->nnodes;
	memset(&g->nodes[i], 0, sizeof(g->nodes[i]));
	memcpy(g->nodes[i].pk, pk, SW_PK_LEN);
	if (sw_dict_set(g->node_ix, pk, SW_PK_LEN, ix_val(i)) == -1)
		return RF_NONE;
	if (i == g->nnodes)
		g->nnodes++;
	else
		g->nfree_nodes--;
	g->live_nodes++;
	return i;
}

static void
node_release(struct rf_graph *g, uint32_t i)
{
	struct rf_node *n = &g->nodes[i];

	if (n->deg > 0)
		return;
	sw_dict_del(g->node_ix, n->pk, SW_PK_LEN);
	free(n->adj);
	memset(n, 0, sizeof(*n));
	g->free_nodes[g->nfree_nodes++] = i;
	g->live_nodes--;
}

/*
 * Adjacency is kept in t_id order, so a depth-first walk meets paths in
 * the answer's order (paths.c).  id is the new edge's t_id (not yet in
 * the edge array).
 */
static int
adj_add(struct rf_graph *g, struct rf_node *n, uint32_t e, const uint8_t id[TP_ID_LEN])
{
	uint32_t at = n->deg;

	if (n->deg == n->cap) {
		uint32_t cap = next_cap(n->cap ? n->cap : 4, n->deg + 1);

		if (cap == 0 || resize((void **)&n->adj, cap, sizeof(*n->adj)) == -1)
			return -1;
		n->cap = cap;
	}
	while (at > 0 && memcmp(g->edges[n->adj[at - 1]].t_id, id, TP_ID_LEN) > 0)
		at--;
	memmove(&n->adj[at + 1], &n->adj[at], (n->deg - at) * sizeof(*n->adj));
	n->adj[at] = e;
	n->deg++;
	return 0;
}

static void
adj_del(struct rf_node *n, uint32_t e)
{
	for (uint32_t i = 0; i < n->deg; i++) {
		if (n->adj[i] == e) {
			memmove(&n->adj[i], &n->adj[i + 1], (n->deg - i - 1) * sizeof(*n->adj));
			n->deg--;
			return;
		}
	}
}

enum rf_type
rf_type_parse(const char *name)
{
	if (name == NULL)
		return RF_TYPE_OTHER;
	if (strcmp(name, "dmsg") == 0)
		return RF_TYPE_DMSG;
	if (strcmp(name, "stcpr") == 0)
		return RF_TYPE_STCPR;
	if (strcmp(name, "sudph") == 0)
		return RF_TYPE_SUDPH;
	return RF_TYPE_OTHER;
}

int
rf_graph_put(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN], const uint8_t a[SW_PK_LEN],
    const uint8_t b[SW_PK_LEN], long long exp)
{
	return rf_graph_put_type(g, t_id, a, b, NULL, exp);
}

int
rf_graph_put_type(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN],
    const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN], const char *type, long long exp)
{
	uint32_t e = ix_get(g->edge_ix, t_id, TP_ID_LEN), na = RF_NONE, nb = RF_NONE;
	struct rf_edge *ed;

	if (e != RF_NONE) {
		g->edges[e].exp = exp;
		g->edges[e].mark = g->mark;
		return 0;
	}
	if (memcmp(a, b, SW_PK_LEN) == 0 || reserve(g) == -1)
		return -1;
	na = node_get(g, a);
	nb = na == RF_NONE ? RF_NONE : node_get(g, b);
	if (nb == RF_NONE)
		goto fail;
	e = g->nfree_edges > 0 ? g->free_edges[g->nfree_edges - 1] : g->nedges;
	if (adj_add(g, &g->nodes[na], e, t_id) == -1)
		goto fail;
	if (adj_add(g, &g->nodes[nb], e, t_id) == -1) {
		adj_del(&g->nodes[na], e);
		goto fail;
	}
	if (sw_dict_set(g->edge_ix, t_id, TP_ID_LEN, ix_val(e)) == -1) {
		adj_del(&g->nodes[na], e);
		adj_del(&g->nodes[nb], e);
		goto fail;
	}
	if (e == g->nedges)
		g->nedges++;
	else
		g->nfree_edges--;
	ed = &g->edges[e];
	memset(ed, 0, sizeof(*ed));
	memcpy(ed->t_id, t_id, TP_ID_LEN);
	ed->a = na;
	ed->b = nb;
	ed->exp = exp;
	ed->mark = g->mark;
	ed->type = (uint8_t)rf_type_parse(type);
	g->live_edges++;
	return 1;
fail:
	/* A node made for this edge and left without one goes again. */
	if (na != RF_NONE)
		node_release(g, na);
	if (nb != RF_NONE)
		node_release(g, nb);
	return -1;
}

static void
edge_release(struct rf_graph *g, uint32_t e)
{
	struct rf_edge *ed = &g->edges[e];

	sw_dict_del(g->edge_ix, ed->t_id, TP_ID_LEN);
	adj_del(&g->nodes[ed->a], e);
	adj_del(&g->nodes[ed->b], e);
	node_release(g, ed->a);
	node_release(g, ed->b);
	ed->a = ed->b = RF_NONE;
	g->free_edges[g->nfree_edges++] = e;
	g->live_edges--;
}

int
rf_graph_del(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN])
{
	uint32_t e = ix_get(g->edge_ix, t_id, TP_ID_LEN);

	if (e == RF_NONE)
		return 0;
	edge_release(g, e);
	return 1;
}

void
rf_graph_mark_begin(struct rf_graph *g)
{
	/* Generation 0 is never current, so a wrap cannot make old marks look fresh. */
	if (++g->mark == 0) {
		for (uint32_t i = 0; i < g->nedges; i++)
			g->edges[i].mark = 0;
		g->mark = 1;
	}
}

int
rf_graph_touch(struct rf_graph *g, const uint8_t t_id[TP_ID_LEN], long long exp)
{
	uint32_t e = ix_get(g->edge_ix, t_id, TP_ID_LEN);

	if (e == RF_NONE)
		return 0;
	g->edges[e].exp = exp;
	g->edges[e].mark = g->mark;
	return 1;
}

long long
rf_graph_sweep(struct rf_graph *g)
{
	long long min = LLONG_MAX;

	for (uint32_t i = 0; i < g->nedges; i++) {
		struct rf_edge *ed = &g->edges[i];

		if (ed->a == RF_NONE)
			continue;
		if (ed->mark != g->mark) {
			edge_release(g, i);
			continue;
		}
		if (ed->exp < min)
			min = ed->exp;
	}
	if (g->live_edges == 0) {
		sw_dict_compact(g->node_ix);
		sw_dict_compact(g->edge_ix);
	}
	return min;
}
