/*
 * route-finder's graph from transport-discovery's all-transports feed
 * (cxo.md: port 49, transports/<cc>/<t_id> -> the entry JSON), for when the
 * two do not share a store.  The subscriber (common/cxo_sub) does the
 * protocol, the backoff and the diffing; this file only turns leaves into
 * edges.  The first snapshot fills the graph; each update lists exactly the
 * leaves added, changed or removed, and only those edges are touched, so an
 * update costs its changes, not the size of the graph.
 *
 * Leaves carry no expiry: transport-discovery drops expired transports from
 * its feed itself (its periodic rebuild), so an edge lives here until its
 * leaf goes.  While the feed is down the subscriber redials with backoff and
 * searches go on over the last graph.  Should an update fail to apply (out
 * of memory), the graph is rebuilt from the subscriber's whole tree at the
 * next update instead of drifting.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cxo_obj.h"
#include "cxo_dmsg.h"
#include "cxo_sub.h"
#include "dmsg_client.h"
#include "log.h"
#include "metrics.h"
#include "route_finder.h"

#define FEED_PREFIX     TPD_FEED_ROOT
#define FEED_PREFIX_LEN (sizeof(FEED_PREFIX) - 1)

/* The t_id a leaf path names: "transports/<cc>/<t_id>", cc its first two characters. */
static int
leaf_id(const char *path, uint8_t id[TP_ID_LEN])
{
	const char *cc, *name;

	if (strncmp(path, FEED_PREFIX "/", FEED_PREFIX_LEN + 1) != 0)
		return -1;
	cc = path + FEED_PREFIX_LEN + 1;
	if (strlen(cc) != 3 + TP_ID_TEXT - 1 || cc[2] != '/')
		return -1;
	name = cc + 3;
	if (memcmp(cc, name, 2) != 0)
		return -1;
	return tp_id_parse(id, name);
}

/* One leaf into the graph: 0 put, 1 skipped (not a transport), -1 out of memory. */
static int
leaf_put(struct rf *rf, const char *path, const uint8_t *data, size_t len)
{
	struct tp_entry te;
	uint8_t id[TP_ID_LEN];

	if (leaf_id(path, id) == -1 || len >= TP_JSON_MAX ||
	    tp_entry_parse_stored((const char *)data, len, &te) == -1 ||
	    memcmp(te.t_id, id, TP_ID_LEN) != 0) {
		sw_log_warn(rf->name, "feed leaf is not a transport entry, skipped", "path=%.80s",
		    path);
		return 1;
	}
	if (rf_graph_put_type(rf->g, te.t_id, te.edges[0], te.edges[1], te.type, LLONG_MAX) == -1)
		return -1;
	return 0;
}

static void
publish_counts(struct rf *rf)
{
	sw_metric_set(rf->m_edges, NULL, rf_graph_edges(rf->g));
	sw_metric_set(rf->m_nodes, NULL, rf_graph_nodes(rf->g));
}

static int
walk_leaf(const char *path, const uint8_t *data, size_t len, void *arg)
{
	struct rf *rf = arg;

	if (leaf_put(rf, path, data, len) == -1) {
		rf->feed_dirty = 1;
		return 1;
	}
	return 0;
}

/*
 * The graph from the whole tree: every leaf put (which marks it seen), the
 * rest swept.  A walk cut short keeps its marks unswept: dropping what it
 * did not reach would empty the graph for a passing shortage.
 */
static void
resync(struct rf *rf, struct cxo_sub *s)
{
	rf->feed_dirty = 0;
	rf_graph_mark_begin(rf->g);
	cxo_sub_walk(s, FEED_PREFIX, walk_leaf, rf);
	if (rf->feed_dirty)
		sw_log_error(rf->name, "feed snapshot not applied: out of memory; retried at the "
		    "next update", NULL);
	else
		rf_graph_sweep(rf->g);
	publish_counts(rf);
}

static void
on_snapshot(struct cxo_sub *s, void *arg)
{
	struct rf *rf = arg;

	resync(rf, s);
	rf->loaded = 1;
	rf->feed_err[0] = '\0';
	sw_metric_inc(rf->m_loads);
	sw_log_info(rf->name, "transports loaded from the feed", "transports=%u visors=%u seq=%llu",
	    rf_graph_edges(rf->g), rf_graph_nodes(rf->g), (unsigned long long)cxo_sub_seq(s));
}

static void
on_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	struct rf *rf = arg;
	size_t added = 0, removed = 0;

	if (rf->feed_err[0] != '\0')
		sw_log_info(rf->name, "transport feed back", "changes=%zu", n);
	rf->feed_err[0] = '\0';
	sw_metric_inc(rf->m_loads);
	if (rf->feed_dirty) {
		resync(rf, s);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t id[TP_ID_LEN];

		if (ch[i].kind == CXO_REMOVED) {
			/* Not ours (a malformed leaf skipped when it came): nothing to drop. */
			if (leaf_id(ch[i].path, id) == 0)
				removed += (size_t)rf_graph_del(rf->g, id);
			continue;
		}
		/* A changed leaf is the same transport (its id is its edges): put refreshes it. */
		switch (leaf_put(rf, ch[i].path, ch[i].data, ch[i].len)) {
		case 0:
			added++;
			break;
		case -1:
			sw_log_error(rf->name, "feed update not applied: out of memory; rebuilding "
			    "from the tree", NULL);
			resync(rf, s);
			return;
		default:
			break;
		}
	}
	publish_counts(rf);
	sw_log_debug(rf->name, "feed update", "changes=%zu put=%zu removed=%zu seq=%llu", n, added,
	    removed, (unsigned long long)cxo_sub_seq(s));
}

static void
on_down(struct cxo_sub *s, const char *reason, void *arg)
{
	struct rf *rf = arg;

	(void)s;
	snprintf(rf->feed_err, sizeof(rf->feed_err), "%s", reason);
	sw_log_warn(rf->name, "transport feed down; keeping the last graph, redialing",
	    "why=%s loaded=%d", reason, rf->loaded);
}

int
rf_feed_start(struct rf *rf)
{
	struct event_base *base = sw_svc_base(rf->svc);
	struct cxo_sub_opts o;
	struct dmsg_client_opts dc;
	char hex[SW_PK_HEX];

	memset(&o, 0, sizeof(o));
	o.svc = rf->name;
	memcpy(o.feed_pk, rf->tpd_pk, SW_PK_LEN);
	o.feed_port = CXO_PORT_ALL_TRANSPORTS;
	if (rf->feed_addr[0] != '\0') {
		o.dial = cxo_tcp_dial;
		o.dial_arg = rf->feed_addr;
	} else {
		memset(&dc, 0, sizeof(dc));
		dc.discovery = rf->dmsg_disc;
		rf->dmsg = dmsg_client_new(base, &rf->kp, &dc, rf->name);
		if (rf->dmsg == NULL || dmsg_client_start(rf->dmsg) == -1 ||
		    (rf->cd = cxo_dmsg_new(base, rf->dmsg, rf->name)) == NULL)
			goto fail;
		rf->target.d = rf->cd;
		memcpy(rf->target.pk, rf->tpd_pk, SW_PK_LEN);
		rf->target.port = CXO_PORT_ALL_TRANSPORTS;
		o.dial = cxo_dmsg_sub_dial;
		o.dial_arg = &rf->target;
	}
	o.cbs.snapshot = on_snapshot;
	o.cbs.update = on_update;
	o.cbs.down = on_down;
	o.arg = rf;
	if ((rf->sub = cxo_sub_new(base, &o)) == NULL)
		goto fail;
	sw_hex_encode(hex, rf->tpd_pk, SW_PK_LEN);
	sw_log_info(rf->name, "following the all-transports feed", "publisher=%s port=%d via=%s",
	    hex, CXO_PORT_ALL_TRANSPORTS, rf->feed_addr[0] != '\0' ? rf->feed_addr : rf->dmsg_disc);
	return 0;
fail:
	sw_log_error(rf->name, "cannot subscribe to the transport feed", NULL);
	return -1;
}

void
rf_feed_stop(struct rf *rf)
{
	cxo_sub_free(rf->sub);
	rf->sub = NULL;
}

void
rf_feed_free(struct rf *rf)
{
	rf_feed_stop(rf);
	cxo_dmsg_free(rf->cd); /* its streams before the dmsg client goes */
	rf->cd = NULL;
	dmsg_client_free(rf->dmsg);
	rf->dmsg = NULL;
}

void
rf_feed_health(struct rf *rf, cJSON *checks)
{
	char msg[160];

	if (rf->sub != NULL && cxo_sub_connected(rf->sub)) {
		cJSON_AddStringToObject(checks, "feed", "ok");
		return;
	}
	if (rf->feed_err[0] == '\0') {
		cJSON_AddStringToObject(checks, "feed", rf->sub != NULL ? "connecting" : "down");
		return;
	}
	snprintf(msg, sizeof(msg), "down: %s", rf->feed_err);
	cJSON_AddStringToObject(checks, "feed", msg);
}
