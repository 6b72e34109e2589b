/*
 * Path search on the transport graph (graph.h): Yen's k shortest loop-free
 * paths, each spur found by a breadth-first search.
 *
 * The BFS runs backwards from the target and stops as soon as it reaches the
 * spur node: every node one hop closer to the target is known by then (BFS
 * finishes a level before it starts the next), which is all the forward walk
 * needs to pick, hop by hop, the least t_id that gets one hop closer.  So a
 * spur costs about the ball around the target of the spur's distance, not
 * the whole graph.  Stamps instead of cleared arrays: a new search bumps a
 * counter, and a node whose stamp differs is unvisited (or unblocked).
 *
 * With min_hops above 1, Yen's method would have to walk every shorter
 * path first (a dense graph has thousands), so those searches go another
 * way: for each length L from min_hops up, a depth-first walk from the
 * source over the t_id-ordered adjacency meets the paths of exactly L hops
 * in the answer's order, and a BFS distance to the target prunes every
 * branch that cannot reach it in the hops left.  It is exact: any path of
 * length L is on the walk, so one is found whenever it exists, unless the
 * walk looks at more than RF_DFS_BUDGET adjacency entries for the pair
 * (then the paths found so far are returned).  On dense graphs the first
 * branch tried almost always completes, so the cost is about L * degree
 * per path; the budget bounds adversarial sparse ones.
 */
#include <string.h>

#include "graph.h"

/* A fresh stamp for one of the scratch fields; on wrap, forget every old one. */
static uint32_t
next_stamp(struct rf_graph *g, int which)
{
	uint32_t *s = which ? &g->block : &g->seen;

	if (++*s != 0)
		return *s;
	for (uint32_t i = 0; i < g->nnodes; i++) {
		if (which)
			g->nodes[i].block = 0;
		else
			g->nodes[i].seen = 0;
	}
	if (which)
		for (uint32_t i = 0; i < g->nedges; i++)
			g->edges[i].block = 0;
	return *s = 1;
}

static int
usable(const struct rf_graph *g, uint32_t e, long long now)
{
	const struct rf_edge *ed = &g->edges[e];

	return ed->block != g->block && ed->exp > now && (g->types >> ed->type & 1u);
}

static uint32_t
other(const struct rf_edge *ed, uint32_t n)
{
	return ed->a == n ? ed->b : ed->a;
}

/*
 * The least path (fewest hops, then least t_ids) from spur to dst of at most
 * limit hops avoiding blocked nodes and edges, written as hops start.. of p
 * (p->node[start] must be spur).  0, or -1 when there is none.
 */
static int
spur_path(struct rf_graph *g, uint32_t spur, uint32_t dst, uint32_t limit, long long now,
    struct rf_path *p, uint32_t start)
{
	uint32_t seen = next_stamp(g, 0), head = 0, tail = 0, cur, d;
	int found = 0;

	g->nodes[dst].seen = seen;
	g->nodes[dst].dist = 0;
	g->queue[tail++] = dst;
	while (head < tail && !found) {
		uint32_t u = g->queue[head++];
		struct rf_node *un = &g->nodes[u];

		if (un->dist >= limit)
			break; /* BFS order: every later node is at least as far */
		for (uint32_t i = 0; i < un->deg; i++) {
			uint32_t e = un->adj[i], v;
			struct rf_node *vn;

			if (!usable(g, e, now))
				continue;
			v = other(&g->edges[e], u);
			vn = &g->nodes[v];
			if (vn->seen == seen || vn->block == g->block)
				continue;
			vn->seen = seen;
			vn->dist = un->dist + 1;
			if (v == spur) {
				found = 1;
				break;
			}
			g->queue[tail++] = v;
		}
	}
	if (!found)
		return -1;
	cur = spur;
	for (d = g->nodes[spur].dist; d > 0; d--) {
		const struct rf_node *cn = &g->nodes[cur];
		uint32_t best = RF_NONE;

		for (uint32_t i = 0; i < cn->deg; i++) {
			uint32_t e = cn->adj[i];
			const struct rf_node *vn;

			if (!usable(g, e, now))
				continue;
			vn = &g->nodes[other(&g->edges[e], cur)];
			if (vn->seen != seen || vn->dist != d - 1 || vn->block == g->block)
				continue;
			if (best == RF_NONE ||
			    memcmp(g->edges[e].t_id, g->edges[best].t_id, TP_ID_LEN) < 0)
				best = e;
		}
		/* BFS found a way down from every node it reached; there is one. */
		p->edge[start] = best;
		cur = other(&g->edges[best], cur);
		p->node[++start] = cur;
	}
	p->len = start;
	return 0;
}

int
rf_path_cmp(const struct rf_graph *g, const struct rf_path *p, const struct rf_path *q)
{
	if (p->len != q->len)
		return p->len < q->len ? -1 : 1;
	for (uint32_t i = 0; i < p->len; i++) {
		int c = memcmp(g->edges[p->edge[i]].t_id, g->edges[q->edge[i]].t_id, TP_ID_LEN);

		if (c != 0)
			return c;
	}
	return 0;
}

static int
same_edges(const struct rf_path *p, const struct rf_path *q)
{
	return p->len == q->len && memcmp(p->edge, q->edge, p->len * sizeof(p->edge[0])) == 0;
}

static int
known(const struct rf_path *list, size_t n, const struct rf_path *p)
{
	for (size_t i = 0; i < n; i++)
		if (same_edges(&list[i], p))
			return 1;
	return 0;
}

/*
 * Yen's step: the deviations of the last accepted path, one per spur node,
 * into the candidates.
 */
static void
deviations(struct rf_graph *g, size_t nacc, uint32_t dst, uint32_t max_hops, long long now)
{
	const struct rf_path *prev = &g->acc[nacc - 1];

	for (uint32_t i = 0; i < prev->len && i < max_hops; i++) {
		struct rf_path cand;

		next_stamp(g, 1);
		/* Every accepted path with this root already left it by its edge i. */
		for (size_t j = 0; j < nacc; j++) {
			const struct rf_path *a = &g->acc[j];

			if (a->len > i && memcmp(a->edge, prev->edge, i * sizeof(a->edge[0])) == 0)
				g->edges[a->edge[i]].block = g->block;
		}
		/* Loop-free: the spur may not come back through the root. */
		for (uint32_t j = 0; j < i; j++)
			g->nodes[prev->node[j]].block = g->block;
		memcpy(cand.edge, prev->edge, i * sizeof(cand.edge[0]));
		memcpy(cand.node, prev->node, (i + 1) * sizeof(cand.node[0]));
		if (spur_path(g, prev->node[i], dst, max_hops - i, now, &cand, i) == -1)
			continue;
		if (g->ncand == RF_MAX_CAND || known(g->acc, nacc, &cand) ||
		    known(g->cand, g->ncand, &cand))
			continue;
		g->cand[g->ncand++] = cand;
	}
}

/* ---- min_hops > 1: depth-first by exact length ---- */

struct dfs {
	uint32_t dst, len;
	long long now, budget;
	struct rf_path cur;
	struct rf_path *out;
	int nout, k;
};

/* BFS distances to dst over usable edges (seen stamp marks the known ones). */
static uint32_t
distances(struct rf_graph *g, uint32_t dst, uint32_t limit, long long now)
{
	uint32_t seen = next_stamp(g, 0), head = 0, tail = 0;

	g->nodes[dst].seen = seen;
	g->nodes[dst].dist = 0;
	g->queue[tail++] = dst;
	while (head < tail) {
		uint32_t u = g->queue[head++];
		struct rf_node *un = &g->nodes[u];

		if (un->dist >= limit)
			continue;
		for (uint32_t i = 0; i < un->deg; i++) {
			uint32_t e = un->adj[i], v;

			if (!usable(g, e, now))
				continue;
			v = other(&g->edges[e], u);
			if (g->nodes[v].seen == seen)
				continue;
			g->nodes[v].seen = seen;
			g->nodes[v].dist = un->dist + 1;
			g->queue[tail++] = v;
		}
	}
	return seen;
}

/* 1 to stop (k paths, or the budget spent), else 0. */
static int
walk(struct rf_graph *g, struct dfs *w, uint32_t u, uint32_t depth, uint32_t seen)
{
	const struct rf_node *un = &g->nodes[u];

	for (uint32_t i = 0; i < un->deg; i++) {
		uint32_t e = un->adj[i], v;
		struct rf_node *vn;

		if (--w->budget <= 0)
			return 1;
		if (!usable(g, e, w->now))
			continue;
		v = other(&g->edges[e], u);
		vn = &g->nodes[v];
		/* Not on the path yet, and the target reachable in exactly the hops left. */
		if (vn->block == g->block || vn->seen != seen || depth + 1 + vn->dist > w->len)
			continue;
		w->cur.edge[depth] = e;
		w->cur.node[depth + 1] = v;
		if (v == w->dst) {
			if (depth + 1 != w->len)
				continue;
			w->cur.len = w->len;
			w->out[w->nout++] = w->cur;
			if (w->nout == w->k)
				return 1;
			continue;
		}
		vn->block = g->block;
		if (walk(g, w, v, depth + 1, seen))
			return 1;
		vn->block = 0;
	}
	return 0;
}

static int
long_paths(struct rf_graph *g, uint32_t s, uint32_t t, int min_hops, int max_hops,
    long long now, struct rf_path *out, int k)
{
	struct dfs w = {.dst = t, .now = now, .budget = RF_DFS_BUDGET, .out = out, .k = k};
	uint32_t seen;

	next_stamp(g, 1); /* no edge blocked */
	seen = distances(g, t, (uint32_t)max_hops, now);

	if (g->nodes[s].seen != seen)
		return 0; /* no path at all */
	for (int len = min_hops; len <= max_hops && w.nout < k && w.budget > 0; len++) {
		w.len = (uint32_t)len;
		next_stamp(g, 1);
		g->nodes[s].block = g->block;
		w.cur.node[0] = s;
		walk(g, &w, s, 0, seen);
	}
	return w.nout;
}

int
rf_graph_paths(struct rf_graph *g, const uint8_t src[SW_PK_LEN], const uint8_t dst[SW_PK_LEN],
    int min_hops, int max_hops, long long now, struct rf_path *out, int k)
{
	return rf_graph_paths_typed(g, src, dst, min_hops, max_hops, RF_TYPES_ALL, now, out, k);
}

int
rf_graph_paths_typed(struct rf_graph *g, const uint8_t src[SW_PK_LEN],
    const uint8_t dst[SW_PK_LEN], int min_hops, int max_hops, unsigned types, long long now,
    struct rf_path *out, int k)
{
	uint32_t s = rf_graph_node(g, src), t = rf_graph_node(g, dst);
	size_t nacc = 0;
	int nout = 0;

	if (s == RF_NONE || t == RF_NONE || s == t || k <= 0 || min_hops < 1 ||
	    max_hops > RF_MAX_HOPS || min_hops > max_hops)
		return 0;
	if (k > RF_MAX_PATHS)
		k = RF_MAX_PATHS;
	g->types = types;
	if (min_hops > 1)
		return long_paths(g, s, t, min_hops, max_hops, now, out, k);
	g->ncand = 0;
	next_stamp(g, 1);
	g->acc[0].node[0] = s;
	if (spur_path(g, s, t, (uint32_t)max_hops, now, &g->acc[0], 0) == -1)
		return 0;
	nacc = 1;
	for (;;) {
		const struct rf_path *last = &g->acc[nacc - 1];
		size_t best = 0;

		if (last->len >= (uint32_t)min_hops) {
			out[nout++] = *last;
			if (nout == k)
				break;
		}
		if (nacc == RF_MAX_ACCEPTED)
			break;
		deviations(g, nacc, t, (uint32_t)max_hops, now);
		if (g->ncand == 0)
			break;
		for (size_t i = 1; i < g->ncand; i++)
			if (rf_path_cmp(g, &g->cand[i], &g->cand[best]) < 0)
				best = i;
		g->acc[nacc++] = g->cand[best];
		g->cand[best] = g->cand[--g->ncand];
	}
	return nout;
}
