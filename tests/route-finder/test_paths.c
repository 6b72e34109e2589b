/*
 * test_paths: route-finder's path search against a brute-force reference.
 * On hundreds of random multigraphs (parallel transports, expired ones,
 * deletions and re-adds through the free lists), for every ordered pair and
 * random hop bounds, the reference enumerates every simple path by DFS,
 * sorts them by (hops, t_id sequence) and keeps the first five of at least
 * min_hops; the search must return exactly those.  Every returned path is
 * also checked on its own: it joins src to dst, uses live transports, never
 * visits a visor twice and respects the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route-finder/graph.h"

#define NOW       1000000LL
#define RAND_N    10  /* random graphs: at most this many visors */
#define RAND_M    24  /* and transports */
#define MAXN      12  /* the dense graphs (K12 with parallel transports) */
#define MAXM      132
#define REF_MAX   200000

struct tedge {
	uint8_t id[TP_ID_LEN];
	int a, b;
	long long exp;
	int live; /* in the graph (not deleted) */
};

struct tgraph {
	int n, m;
	uint8_t pk[MAXN][SW_PK_LEN];
	struct tedge e[MAXM];
};

/* Reference paths: edge lists (indices into tgraph.e). */
struct rpath {
	int len;
	int edge[RF_MAX_HOPS];
};

static struct rpath *ref;
static size_t nref;
static const struct tgraph *cur_tg;

static uint32_t rng = 12345;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void
make_graph(struct tgraph *tg, struct rf_graph *g)
{
	tg->n = 2 + (int)(rnd() % (RAND_N - 1));
	tg->m = (int)(rnd() % (RAND_M + 1));
	for (int i = 0; i < tg->n; i++) {
		for (int j = 0; j < SW_PK_LEN; j++)
			tg->pk[i][j] = (uint8_t)rnd();
		tg->pk[i][0] = (uint8_t)i; /* distinct */
	}
	for (int i = 0; i < tg->m; i++) {
		struct tedge *e = &tg->e[i];

		for (int j = 0; j < TP_ID_LEN; j++)
			e->id[j] = (uint8_t)rnd();
		/* Few distinct leading bytes, so ties in the order need the later bytes. */
		e->id[0] = (uint8_t)(rnd() % 3);
		e->a = (int)(rnd() % (unsigned)tg->n);
		do
			e->b = (int)(rnd() % (unsigned)tg->n);
		while (e->b == e->a);
		e->exp = rnd() % 8 == 0 ? NOW - 1 : NOW + 100; /* some already expired */
		e->live = 1;
		assert_int_equal(rf_graph_put(g, e->id, tg->pk[e->a], tg->pk[e->b], e->exp), 1);
	}
	/* Churn through the free lists: delete some, re-add some of those. */
	for (int i = 0; i < tg->m; i++) {
		struct tedge *e = &tg->e[i];

		if (rnd() % 5 != 0)
			continue;
		assert_int_equal(rf_graph_del(g, e->id), 1);
		e->live = 0;
		if (rnd() % 2) {
			assert_int_equal(rf_graph_put(g, e->id, tg->pk[e->b], tg->pk[e->a], e->exp),
			    1);
			e->live = 1;
		}
	}
}

static int
usable(const struct tedge *e)
{
	return e->live && e->exp > NOW;
}

static void
dfs(const struct tgraph *tg, int u, int t, int *visited, struct rpath *p, int max_hops)
{
	if (u == t) {
		assert_true(nref < REF_MAX);
		ref[nref++] = *p;
		return;
	}
	if (p->len == max_hops)
		return;
	for (int i = 0; i < tg->m; i++) {
		const struct tedge *e = &tg->e[i];
		int v;

		if (!usable(e) || (e->a != u && e->b != u))
			continue;
		v = e->a == u ? e->b : e->a;
		if (visited[v])
			continue;
		visited[v] = 1;
		p->edge[p->len++] = i;
		dfs(tg, v, t, visited, p, max_hops);
		p->len--;
		visited[v] = 0;
	}
}

static int
rpath_cmp(const void *x, const void *y)
{
	const struct rpath *p = x, *q = y;

	if (p->len != q->len)
		return p->len < q->len ? -1 : 1;
	for (int i = 0; i < p->len; i++) {
		int c = memcmp(cur_tg->e[p->edge[i]].id, cur_tg->e[q->edge[i]].id, TP_ID_LEN);

		if (c != 0)
			return c;
	}
	return 0;
}

/* One path returned by the search, checked on its own. */
static void
check_path(const struct rf_graph *g, const struct tgraph *tg, const struct rf_path *p, int s,
    int t, int min_hops, int max_hops)
{
	uint32_t seen[RF_MAX_HOPS + 1];

	assert_true(p->len >= (uint32_t)min_hops && p->len <= (uint32_t)max_hops);
	assert_memory_equal(g->nodes[p->node[0]].pk, tg->pk[s], SW_PK_LEN);
	assert_memory_equal(g->nodes[p->node[p->len]].pk, tg->pk[t], SW_PK_LEN);
	for (uint32_t i = 0; i <= p->len; i++) {
		for (uint32_t j = 0; j < i; j++)
			assert_true(seen[j] != p->node[i]); /* loop-free */
		seen[i] = p->node[i];
	}
	for (uint32_t i = 0; i < p->len; i++) {
		const struct rf_edge *e = &g->edges[p->edge[i]];

		assert_true((e->a == p->node[i] && e->b == p->node[i + 1]) ||
		    (e->b == p->node[i] && e->a == p->node[i + 1]));
		assert_true(e->exp > NOW);
	}
}

static size_t pairs_checked, paths_checked, bounded_pairs;

static void
check_pair(struct rf_graph *g, const struct tgraph *tg, int s, int t, int min_hops,
    int max_hops)
{
	struct rf_path out[RF_MAX_PATHS];
	struct rpath p = {0};
	int visited[MAXN] = {0};
	size_t nshort = 0, first = 0, want;
	int n;

	nref = 0;
	visited[s] = 1;
	dfs(tg, s, t, visited, &p, max_hops);
	cur_tg = tg;
	qsort(ref, nref, sizeof(*ref), rpath_cmp);
	while (first < nref && ref[first].len < min_hops)
		first++;
	nshort = first;
	want = nref - first < RF_MAX_PATHS ? nref - first : RF_MAX_PATHS;

	n = rf_graph_paths(g, tg->pk[s], tg->pk[t], min_hops, max_hops, NOW, out, RF_MAX_PATHS);
	assert_true(n >= 0 && n <= RF_MAX_PATHS);
	for (int i = 0; i < n; i++) {
		check_path(g, tg, &out[i], s, t, min_hops, max_hops);
		if (i > 0)
			assert_true(rf_path_cmp(g, &out[i - 1], &out[i]) < 0);
	}
	if (nshort > 0)
		bounded_pairs++; /* answered by the depth-first search: must be exact too */
	assert_int_equal((size_t)n, want);
	for (int i = 0; i < n; i++) {
		assert_int_equal(out[i].len, (uint32_t)ref[first + (size_t)i].len);
		for (uint32_t h = 0; h < out[i].len; h++)
			assert_memory_equal(g->edges[out[i].edge[h]].t_id,
			    tg->e[ref[first + (size_t)i].edge[h]].id, TP_ID_LEN);
		paths_checked++;
	}
	pairs_checked++;
}

static void
test_random_vs_bruteforce(void **state)
{
	(void)state;
	ref = malloc(REF_MAX * sizeof(*ref));
	assert_non_null(ref);
	for (int round = 0; round < 400; round++) {
		struct rf_graph *g = rf_graph_new();
		struct tgraph tg;

		assert_non_null(g);
		make_graph(&tg, g);
		for (int s = 0; s < tg.n; s++) {
			for (int t = 0; t < tg.n; t++) {
				int min_hops = 1 + (int)(rnd() % 3), max_hops;

				if (s == t)
					continue;
				max_hops = min_hops + (int)(rnd() % (RF_MAX_HOPS - min_hops + 1));
				check_pair(g, &tg, s, t, min_hops, max_hops);
			}
		}
		rf_graph_free(g);
	}
	free(ref);
	printf("pairs compared %zu, paths %zu, pairs with shorter paths passed over %zu\n",
	    pairs_checked, paths_checked, bounded_pairs);
	assert_true(pairs_checked > 10000);
	assert_true(paths_checked > 10000);
}

/* K_n, each pair joined by `parallel` transports. */
static void
make_complete(struct tgraph *tg, struct rf_graph *g, int n, int parallel)
{
	tg->n = n;
	tg->m = 0;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < SW_PK_LEN; j++)
			tg->pk[i][j] = (uint8_t)rnd();
		tg->pk[i][0] = (uint8_t)i;
	}
	for (int a = 0; a < n; a++)
		for (int b = a + 1; b < n; b++)
			for (int k = 0; k < parallel; k++) {
				struct tedge *e = &tg->e[tg->m++];

				for (int j = 0; j < TP_ID_LEN; j++)
					e->id[j] = (uint8_t)rnd();
				e->a = a;
				e->b = b;
				e->exp = NOW + 100;
				e->live = 1;
				assert_int_equal(rf_graph_put(g, e->id, tg->pk[a], tg->pk[b], e->exp), 1);
			}
}

/*
 * The bug an independent client found: dense graphs and a high min_hops
 * (K7 from 6, K8/K10/K12 from 5, K12 with parallel transports from 4)
 * answered too few paths or none.  Up to K10 the answer is compared with
 * the brute force; on K12 (too many paths to enumerate) every answer must
 * still be five valid paths in order, the first of exactly min_hops.
 */
static void
test_dense_min_hops(void **state)
{
	static const int sizes[] = {7, 8, 9, 10};

	(void)state;
	ref = malloc(REF_MAX * sizeof(*ref));
	assert_non_null(ref);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct rf_graph *g = rf_graph_new();
		struct tgraph tg;
		int n = sizes[i], max = n - 1 < RF_MAX_HOPS ? n - 1 : RF_MAX_HOPS;

		make_complete(&tg, g, n, 1);
		for (int min = 1; min <= max; min++)
			check_pair(g, &tg, 0, 1 + min % (n - 1), min, max);
		rf_graph_free(g);
	}
	free(ref);
	for (int parallel = 1; parallel <= 2; parallel++) {
		struct rf_graph *g = rf_graph_new();
		struct tgraph tg;
		struct rf_path out[RF_MAX_PATHS];

		make_complete(&tg, g, 12, parallel);
		for (int min = 1; min <= RF_MAX_HOPS; min++) {
			int got = rf_graph_paths(g, tg.pk[3], tg.pk[7], min, RF_MAX_HOPS, NOW, out,
			    RF_MAX_PATHS);

			if (got != RF_MAX_PATHS)
				fail_msg("K12 x%d from %d hops: %d paths", parallel, min, got);
			assert_int_equal(out[0].len, (uint32_t)min);
			for (int k = 0; k < got; k++) {
				check_path(g, &tg, &out[k], 3, 7, min, RF_MAX_HOPS);
				if (k > 0)
					assert_true(rf_path_cmp(g, &out[k - 1], &out[k]) < 0);
			}
		}
		rf_graph_free(g);
	}
}

/* A square a-b-c-d-a with a parallel a-b: the order is fixed by hand. */
static void
test_ties_by_tid(void **state)
{
	struct rf_graph *g = rf_graph_new();
	uint8_t pk[4][SW_PK_LEN], id[5][TP_ID_LEN];
	struct rf_path out[RF_MAX_PATHS];
	int n;

	(void)state;
	for (int i = 0; i < 4; i++)
		memset(pk[i], 0x10 + i, SW_PK_LEN);
	for (int i = 0; i < 5; i++)
		memset(id[i], 0x50 - 0x10 * i, TP_ID_LEN); /* id[4] least */
	rf_graph_put(g, id[0], pk[0], pk[1], NOW + 10); /* a-b */
	rf_graph_put(g, id[4], pk[1], pk[0], NOW + 10); /* a-b again, least id */
	rf_graph_put(g, id[1], pk[1], pk[2], NOW + 10); /* b-c */
	rf_graph_put(g, id[2], pk[2], pk[3], NOW + 10); /* c-d */
	rf_graph_put(g, id[3], pk[3], pk[0], NOW + 10); /* d-a */
	/* a -> c: a-b-c twice (by id[4], then id[0]) and a-d-c; id[3] < id[0]. */
	n = rf_graph_paths(g, pk[0], pk[2], 1, 5, NOW, out, RF_MAX_PATHS);
	assert_int_equal(n, 3);
	assert_memory_equal(g->edges[out[0].edge[0]].t_id, id[4], TP_ID_LEN);
	assert_memory_equal(g->edges[out[1].edge[0]].t_id, id[3], TP_ID_LEN);
	assert_memory_equal(g->edges[out[2].edge[0]].t_id, id[0], TP_ID_LEN);
	/* Hop bounds: a -> b directly (x2), or the long way round (3 hops). */
	n = rf_graph_paths(g, pk[0], pk[1], 2, 5, NOW, out, RF_MAX_PATHS);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].len, 3);
	n = rf_graph_paths(g, pk[0], pk[1], 1, 1, NOW, out, RF_MAX_PATHS);
	assert_int_equal(n, 2);
	/* Expired transports are not used; unknown keys and src == dst give nothing. */
	n = rf_graph_paths(g, pk[0], pk[2], 1, 5, NOW + 10, out, RF_MAX_PATHS);
	assert_int_equal(n, 0);
	assert_int_equal(rf_graph_paths(g, pk[0], pk[0], 1, 5, NOW, out, RF_MAX_PATHS), 0);
	memset(pk[3], 0x77, SW_PK_LEN);
	assert_int_equal(rf_graph_paths(g, pk[0], pk[3], 1, 5, NOW, out, RF_MAX_PATHS), 0);
	rf_graph_free(g);
}

/* A refresh: touched and re-put transports stay, the rest go, nodes with them. */
static void
test_mark_sweep(void **state)
{
	struct rf_graph *g = rf_graph_new();
	uint8_t pk[3][SW_PK_LEN], id[3][TP_ID_LEN];

	(void)state;
	for (int i = 0; i < 3; i++) {
		memset(pk[i], 0x20 + i, SW_PK_LEN);
		memset(id[i], 0x60 + i, TP_ID_LEN);
	}
	assert_int_equal(rf_graph_put(g, id[0], pk[0], pk[1], NOW + 5), 1);
	assert_int_equal(rf_graph_put(g, id[1], pk[1], pk[2], NOW + 5), 1);
	assert_int_equal(rf_graph_put(g, id[1], pk[1], pk[2], NOW + 6), 0);
	assert_int_equal(rf_graph_put(g, id[2], pk[2], pk[2], NOW + 5), -1); /* self-loop */
	assert_int_equal(rf_graph_nodes(g), 3);
	assert_int_equal(rf_graph_edges(g), 2);
	rf_graph_mark_begin(g);
	assert_int_equal(rf_graph_touch(g, id[0], NOW + 9), 1);
	assert_int_equal(rf_graph_touch(g, id[2], NOW + 9), 0);
	assert_int_equal(rf_graph_sweep(g), NOW + 9);
	assert_int_equal(rf_graph_edges(g), 1);
	assert_int_equal(rf_graph_nodes(g), 2);
	assert_int_equal(rf_graph_node(g, pk[2]), RF_NONE);
	rf_graph_mark_begin(g);
	rf_graph_sweep(g);
	assert_int_equal(rf_graph_edges(g), 0);
	assert_int_equal(rf_graph_nodes(g), 0);
	/* Slots are reused. */
	assert_int_equal(rf_graph_put(g, id[2], pk[0], pk[2], NOW + 5), 1);
	assert_int_equal(g->nedges, 2);
	rf_graph_free(g);
}

/* A long chain: max_hops is a ceiling, RF_MAX_HOPS the longest path found. */
static void
test_chain_bounds(void **state)
{
	struct rf_graph *g = rf_graph_new();
	uint8_t pk[12][SW_PK_LEN], id[TP_ID_LEN];
	struct rf_path out[RF_MAX_PATHS];

	(void)state;
	for (int i = 0; i < 12; i++)
		memset(pk[i], 0x30 + i, SW_PK_LEN);
	for (int i = 0; i < 11; i++) {
		memset(id, 0x40 + i, TP_ID_LEN);
		assert_int_equal(rf_graph_put(g, id, pk[i], pk[i + 1], NOW + 5), 1);
	}
	assert_int_equal(rf_graph_paths(g, pk[0], pk[10], 1, 10, NOW, out, 5), 1);
	assert_int_equal(out[0].len, 10);
	assert_int_equal(rf_graph_paths(g, pk[0], pk[10], 1, 9, NOW, out, 5), 0);
	assert_int_equal(rf_graph_paths(g, pk[0], pk[11], 1, 10, NOW, out, 5), 0);
	assert_int_equal(rf_graph_paths(g, pk[0], pk[11], 1, 11, NOW, out, 5), 0); /* > max */
	assert_int_equal(rf_graph_paths(g, pk[10], pk[0], 1, 10, NOW, out, 5), 1);
	rf_graph_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ties_by_tid),
		cmocka_unit_test(test_mark_sweep),
		cmocka_unit_test(test_chain_bounds),
		cmocka_unit_test(test_random_vs_bruteforce),
		cmocka_unit_test(test_dense_min_hops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
