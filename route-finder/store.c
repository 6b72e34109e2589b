/*
 * route-finder's view of transport-discovery's records (layout in
 * common/tp_entry.h), kept in the in-memory graph.
 *
 * A timer reads tpd:version (one cheap GET); only when it moved does a load
 * run: one transaction reads the version and every live t_id with its
 * expiry (the tpd:all index, scored by expiry), then only the records of
 * t_ids the graph does not know are fetched, in chunks.  A transport's edges
 * are part of its id, so a known t_id needs nothing but its new expiry.
 * Transports no longer listed are swept.  Expiry does not move the version:
 * searches skip transports whose expiry has passed, and a load every
 * RF_PRUNE_S at most also drops them from memory.
 *
 * Searches keep running on the graph while a load is under way; a load that
 * fails half way (store down) leaves the version unchanged, so the next tick
 * starts it again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "route_finder.h"
#include "store.h"
#include "store_index.h"
#include "tp_entry.h"

static void fetch_next(struct rf *rf);

static void
load_end(struct rf *rf, const char *why)
{
	rf->loading = 0;
	if (why != NULL)
		sw_log_warn(rf->name, "transport load abandoned", "why=%s", why);
}

/* An integer reply or bulk string; NIL is 0 (no write yet); -1 if neither. */
static long long
reply_ll(const struct sw_reply *r)
{
	char *end;
	long long v;

	if (r->type == SW_REPLY_NIL)
		return 0;
	if (r->type == SW_REPLY_INT)
		return r->integer;
	if (r->type != SW_REPLY_STR || r->len == 0 || r->len > 20)
		return -1;
	errno = 0;
	v = strtoll(r->str, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return -1;
	return v;
}

static void
finish(struct rf *rf)
{
	rf->next_exp = rf_graph_sweep(rf->g);
	rf->version = rf->load_version;
	rf->loaded_at = (long long)time(NULL);
	if (!rf->loaded)
		sw_log_info(rf->name, "transports loaded", "transports=%u visors=%u version=%lld",
		    rf_graph_edges(rf->g), rf_graph_nodes(rf->g), rf->version);
	rf->loaded = 1;
	sw_metric_inc(rf->m_loads);
	sw_metric_set(rf->m_edges, NULL, rf_graph_edges(rf->g));
	sw_metric_set(rf->m_nodes, NULL, rf_graph_nodes(rf->g));
	load_end(rf, NULL);
}

static void
mget_done(const struct sw_reply *r, void *arg)
{
	struct rf *rf = arg;
	size_t n = rf->npend - rf->pend_pos;

	if (n > RF_LOAD_CHUNK)
		n = RF_LOAD_CHUNK;
	if (r->type != SW_REPLY_ARRAY || r->elements != n) {
		load_end(rf, r->type == SW_REPLY_DOWN ? "store down" : "bad MGET reply");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rf_pending *p = &rf->pend[rf->pend_pos + i];
		const struct sw_reply *e = r->element[i];
		struct tp_entry te;
		char id[TP_ID_TEXT];

		if (e->type != SW_REPLY_STR)
			continue; /* deleted or expired since the index was read */
		if (tp_entry_parse_stored(e->str, e->len, &te) == -1) {
			sw_log_warn(rf->name, "stored transport unreadable, skipped", "t_id=%s", p->id);
			continue;
		}
		tp_id_format(id, te.t_id);
		if (strcmp(id, p->id) != 0) {
			sw_log_warn(rf->name, "stored transport under another id, skipped",
			    "t_id=%s", p->id);
			continue;
		}
		if (rf_graph_put_type(rf->g, te.t_id, te.edges[0], te.edges[1], te.type, p->exp) == -1) {
			load_end(rf, "out of memory");
			return;
		}
	}
	rf->pend_pos += n;
	fetch_next(rf);
}

static void
fetch_next(struct rf *rf)
{
	const char *ids[RF_LOAD_CHUNK];
	size_t n = rf->npend - rf->pend_pos;

	if (sw_svc_stopping(rf->svc)) {
		load_end(rf, NULL);
		return;
	}
	if (n == 0) {
		finish(rf);
		return;
	}
	if (n > RF_LOAD_CHUNK)
		n = RF_LOAD_CHUNK;
	for (size_t i = 0; i < n; i++)
		ids[i] = rf->pend[rf->pend_pos + i].id;
	if (sw_store_mget_prefixed(rf->st, TPD_KEY_ENTRY, ids, n, mget_done, rf) == -1)
		load_end(rf, "store error");
}

static int
pend_push(struct rf *rf, const struct sw_reply *id, long long exp)
{
	if (rf->npend == rf->cappend) {
		size_t cap = rf->cappend ? 2 * rf->cappend : 1024;
		struct rf_pending *p = realloc(rf->pend, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		rf->pend = p;
		rf->cappend = cap;
	}
	memcpy(rf->pend[rf->npend].id, id->str, TP_ID_TEXT);
	rf->pend[rf->npend++].exp = exp;
	return 0;
}

/* [version, [t_id, expiry, t_id, expiry, …]] */
static void
snapshot_done(const struct sw_reply *r, void *arg)
{
	struct rf *rf = arg;
	const struct sw_reply *ids;
	long long v;

	if (r->type != SW_REPLY_ARRAY || r->elements != 2) {
		load_end(rf, r->type == SW_REPLY_DOWN ? "store down" : "bad snapshot reply");
		return;
	}
	v = reply_ll(r->element[0]);
	ids = r->element[1];
	if (v < 0 || ids->type != SW_REPLY_ARRAY || ids->elements % 2 != 0) {
		load_end(rf, "bad snapshot reply");
		return;
	}
	rf_graph_mark_begin(rf->g);
	rf->npend = 0;
	rf->pend_pos = 0;
	rf->load_version = v;
	for (size_t i = 0; i < ids->elements; i += 2) {
		const struct sw_reply *m = ids->element[i], *sc = ids->element[i + 1];
		uint8_t id[TP_ID_LEN];
		char *end;
		long long exp;

		if (m->type != SW_REPLY_STR || sc->type != SW_REPLY_STR ||
		    tp_id_parse(id, m->str) == -1)
			continue;
		exp = (long long)strtod(sc->str, &end);
		if (end == sc->str)
			continue;
		if (rf_graph_touch(rf->g, id, exp))
			continue;
		if (pend_push(rf, m, exp) == -1) {
			load_end(rf, "out of memory");
			return;
		}
	}
	fetch_next(rf);
}

static void
version_done(const struct sw_reply *r, void *arg)
{
	struct rf *rf = arg;
	struct sw_store_txn *t;
	long long v = reply_ll(r), now = (long long)time(NULL);
	char min[26];

	if (v < 0) {
		load_end(rf, r->type == SW_REPLY_DOWN ? NULL : "bad version reply");
		return;
	}
	if (rf->loaded && v == rf->version &&
	    (now < rf->next_exp || now - rf->loaded_at < RF_PRUNE_S)) {
		load_end(rf, NULL);
		return;
	}
	/* The version and the index in one transaction: the graph matches that version. */
	t = sw_store_txn_new();
	snprintf(min, sizeof(min), "(%lld", now);
	if (t == NULL || sw_store_txn_add(t, "GET", TPD_KEY_VERSION, NULL) == -1 ||
	    sw_store_txn_add(t, "ZRANGEBYSCORE", TPD_KEY_ALL, min, "+inf", "WITHSCORES",
	    NULL) == -1) {
		sw_store_txn_free(t);
		load_end(rf, "out of memory");
		return;
	}
	if (sw_store_txn_exec(rf->st, t, snapshot_done, rf) == -1)
		load_end(rf, "store error");
}

void
rf_store_tick(struct rf *rf)
{
	if (rf->loading || sw_svc_stopping(rf->svc))
		return;
	rf->loading = 1;
	if (sw_store_cmd(rf->st, version_done, rf, "GET", TPD_KEY_VERSION, NULL) == -1)
		load_end(rf, "store error");
}
