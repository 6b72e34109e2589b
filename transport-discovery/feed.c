/*
 * The all-transports CXO feed (cxo.md: port 49, transports/<cc>/<t_id> ->
 * the entry JSON as stored, <cc> the first two characters of the t_id),
 * published on cxo_tcp_addr when it is set.
 *
 * Every change the store accepted comes through tpd_feed_apply (called only
 * from tpd_store_apply, once the transaction succeeded), so the feed never
 * shows a change the store refused.  Expiry leaves no call, so the feed is
 * also rebuilt from the tpd:all index at start and then every rebuild
 * period: held, cleared, refilled, released; unchanged leaves keep their
 * hashes, so subscribers fetch only what expired.  Store replies come in
 * order, so a change committed while a rebuild's read is in flight lands
 * after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cxo_dmsg.h"
#include "cxo_pub.h"
#include "log.h"
#include "metrics.h"
#include "store_index.h"
#include "transport_discovery.h"

#define TPD_FEED_PORT 49

static void
feed_path(char *out, size_t size, const char *id)
{
	snprintf(out, size, "transports/%.2s/%s", id, id);
}

void
tpd_feed_apply(struct tpd *tpd, const struct tpd_change *ch, size_t n)
{
	char id[TP_ID_TEXT], path[64], json[TP_JSON_MAX];

	for (size_t i = 0; i < n; i++) {
		sw_metric_add(tpd->m_feed, (const char *[]){ch[i].del ? "delete" : "put"}, 1);
		if (tpd->feed == NULL)
			continue;
		tp_id_format(id, ch[i].e.t_id);
		feed_path(path, sizeof(path), id);
		if (ch[i].del) {
			cxo_feed_delete(tpd->feed, path); /* absent already: nothing to do */
			continue;
		}
		if (cxo_feed_put(tpd->feed, path, json, tp_entry_json(&ch[i].e, json)) == -1)
			sw_log_warn(tpd->name, "feed put failed", "path=%s", path);
	}
}

/* Rebuild: the live ids of tpd:all, then their records. */

static void
rebuild_end(struct tpd *tpd, int ok)
{
	sw_svc_stopped *done = tpd->feed_stopped;

	tpd->rebuilding = 0;
	if (!ok)
		sw_log_warn(tpd->name, "feed rebuild failed; keeping what it has", NULL);
	cxo_feed_hold(tpd->feed, 0);
	if (done != NULL) {
		tpd->feed_stopped = NULL;
		sw_svc_drain(tpd->svc, done);
		return;
	}
	if (tpd->rebuild_ev != NULL) {
		struct timeval tv = {tpd->rebuild_s, 0};

		event_add(tpd->rebuild_ev, &tv);
	}
}

static void
rebuild_records(const struct sw_reply *r, void *arg)
{
	struct tpd *tpd = arg;
	char path[64];

	if (r->type != SW_REPLY_ARRAY || r->elements != tpd->nrebuild) {
		rebuild_end(tpd, 0);
		return;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const struct sw_reply *e = r->element[i];

		if (e->type != SW_REPLY_STR)
			continue; /* expired or deleted since the index read */
		feed_path(path, sizeof(path), tpd->rebuild_ids[i]);
		cxo_feed_put(tpd->feed, path, e->str, e->len);
	}
	rebuild_end(tpd, 1);
}

static void
rebuild_index(const struct sw_reply *r, void *arg)
{
	struct tpd *tpd = arg;
	const struct sw_reply *m = sw_store_index_members(r, 0);
	size_t n;

	free(tpd->rebuild_ids);
	free(tpd->rebuild_idp);
	tpd->rebuild_ids = NULL;
	tpd->rebuild_idp = NULL;
	if (m == NULL) {
		rebuild_end(tpd, 0);
		return;
	}
	if ((n = m->elements) == 0) {
		rebuild_end(tpd, 1);
		return;
	}
	/* The reply dies with this callback; the ids must outlive the MGET. */
	tpd->rebuild_ids = calloc(n, sizeof(*tpd->rebuild_ids));
	tpd->rebuild_idp = calloc(n, sizeof(*tpd->rebuild_idp));
	if (tpd->rebuild_ids == NULL || tpd->rebuild_idp == NULL) {
		rebuild_end(tpd, 0);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(tpd->rebuild_ids[i], TP_ID_TEXT, "%.*s", (int)m->element[i]->len,
		    m->element[i]->str);
		tpd->rebuild_idp[i] = tpd->rebuild_ids[i];
	}
	tpd->nrebuild = n;
	if (tpd_store_mget(tpd, tpd->rebuild_idp, n, rebuild_records, tpd) == -1)
		rebuild_end(tpd, 0);
}

static void
rebuild_start(evutil_socket_t fd, short what, void *arg)
{
	struct tpd *tpd = arg;

	(void)fd;
	(void)what;
	if (tpd->rebuilding || tpd->feed_stopped != NULL)
		return;
	tpd->rebuilding = 1;
	cxo_feed_hold(tpd->feed, 1);
	cxo_feed_clear(tpd->feed);
	if (tpd_store_index(tpd, NULL, rebuild_index, tpd) == -1)
		rebuild_end(tpd, 0);
}

int
tpd_feed_start(struct tpd *tpd)
{
	struct cxo_feed_opts o;

	memset(&o, 0, sizeof(o));
	o.kp = &tpd->kp;
	o.port = TPD_FEED_PORT;
	o.hold = 1;
	tpd->pub = cxo_pub_new(sw_svc_base(tpd->svc), tpd->name);
	if (tpd->pub == NULL ||
	    (tpd->cxo_addr[0] != '\0' && cxo_pub_listen(tpd->pub, tpd->cxo_addr) == -1))
		return -1;
	if (tpd->dmsg_disc[0] != '\0' && (tpd->feed_dmsg = cxo_dmsg_pub_new(sw_svc_base(tpd->svc),
	    &tpd->kp, tpd->dmsg_disc, tpd->pub, TPD_FEED_PORT, tpd->name)) == NULL)
		return -1;
	tpd->feed = cxo_feed_new(tpd->pub, &o);
	tpd->rebuild_ev = event_new(sw_svc_base(tpd->svc), -1, 0, rebuild_start, tpd);
	if (tpd->feed == NULL || tpd->rebuild_ev == NULL)
		return -1;
	/* Expired transports linger in the feed at most a quarter of their lifetime. */
	tpd->rebuild_s = tpd->ttl_s / 4 < 1 ? 1 : tpd->ttl_s / 4;
	if (tpd->rebuild_s > 300)
		tpd->rebuild_s = 300;
	sw_log_info(tpd->name, "publishing all-transports", "cxo=%s port=%d rebuild_s=%lld",
	    tpd->cxo_addr, TPD_FEED_PORT, (long long)tpd->rebuild_s);
	rebuild_start(-1, 0, tpd);
	return 0;
}

void
tpd_feed_stop(struct tpd *tpd, sw_svc_stopped *done)
{
	if (tpd->rebuild_ev != NULL)
		event_del(tpd->rebuild_ev);
	if (tpd->rebuilding) {
		tpd->feed_stopped = done; /* drained once the rebuild's read is answered */
		return;
	}
	sw_svc_drain(tpd->svc, done);
}

void
tpd_feed_free(struct tpd *tpd)
{
	if (tpd->rebuild_ev != NULL)
		event_free(tpd->rebuild_ev);
	cxo_dmsg_pub_free(tpd->feed_dmsg);
	tpd->feed_dmsg = NULL;
	cxo_pub_free(tpd->pub);
	free(tpd->rebuild_ids);
	free(tpd->rebuild_idp);
	tpd->rebuild_ev = NULL;
	tpd->pub = NULL;
	tpd->feed = NULL;
}
