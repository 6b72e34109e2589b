/*
 * The all-transports CXO feed (cxo.md: port 49, transports/<cc>/<t_id> ->
 * the entry JSON as stored, <cc> the first two characters of the t_id),
 * published on cxo_tcp_addr when it is set.
 *
 * Every change the store accepted comes through tpd_feed_apply (called only
 * from tpd_store_apply, once the transaction succeeded), so the feed never
 * shows a change the store refused.  Expiry leaves no call, so the feed is
 * also rebuilt from the tpd:all index at start and then every rebuild
 * period, by common/cxo_rebuild.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cxo_obj.h"
#include "cxo_dmsg.h"
#include "cxo_pub.h"
#include "cxo_rebuild.h"
#include "log.h"
#include "metrics.h"
#include "transport_discovery.h"


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

/* Rebuild: the live ids of tpd:all, then their records (cxo_rebuild). */

static int
rebuild_index(void *ctx, size_t i, sw_store_cb *cb, void *arg)
{
	(void)i;
	return tpd_store_index(ctx, NULL, cb, arg);
}

static int
rebuild_mget(void *ctx, size_t i, const char *const *ids, size_t n, sw_store_cb *cb, void *arg)
{
	(void)i;
	return tpd_store_mget(ctx, ids, n, cb, arg);
}

static void
rebuild_path(void *ctx, size_t i, const char *id, char *out, size_t size)
{
	(void)ctx;
	(void)i;
	feed_path(out, size, id);
}

static const struct cxo_rebuild_ops rebuild_ops = {
	1, rebuild_index, rebuild_mget, rebuild_path,
};

int
tpd_feed_start(struct tpd *tpd)
{
	struct cxo_feed_opts o;
	long long rebuild_s;

	memset(&o, 0, sizeof(o));
	o.kp = &tpd->kp;
	o.port = CXO_PORT_ALL_TRANSPORTS;
	o.hold = 1;
	tpd->pub = cxo_pub_new(sw_svc_base(tpd->svc), tpd->name);
	if (tpd->pub == NULL ||
	    (tpd->cxo_addr[0] != '\0' && cxo_pub_listen(tpd->pub, tpd->cxo_addr) == -1))
		return -1;
	if (tpd->dmsg_disc[0] != '\0' && (tpd->feed_dmsg = cxo_dmsg_pub_new(sw_svc_base(tpd->svc),
	    &tpd->kp, tpd->dmsg_disc, tpd->pub, CXO_PORT_ALL_TRANSPORTS, tpd->name)) == NULL)
		return -1;
	/* Expired transports linger in the feed at most a quarter of their lifetime. */
	rebuild_s = tpd->ttl_s / 4 < 1 ? 1 : tpd->ttl_s / 4;
	if (rebuild_s > 300)
		rebuild_s = 300;
	tpd->feed = cxo_feed_new(tpd->pub, &o);
	if (tpd->feed == NULL || (tpd->rebuild = cxo_rebuild_new(tpd->svc, tpd->feed, rebuild_s,
	    &rebuild_ops, tpd)) == NULL)
		return -1;
	cxo_rebuild_follow(tpd->rebuild, tpd->follow_ms);
	sw_log_info(tpd->name, "publishing all-transports", "cxo=%s port=%d rebuild_s=%lld",
	    tpd->cxo_addr, CXO_PORT_ALL_TRANSPORTS, rebuild_s);
	cxo_rebuild_start(tpd->rebuild);
	return 0;
}

void
tpd_feed_stop(struct tpd *tpd, sw_svc_stopped *done)
{
	if (tpd->rebuild != NULL)
		cxo_rebuild_stop(tpd->rebuild, done);
	else
		sw_svc_drain(tpd->svc, done);
}

void
tpd_feed_free(struct tpd *tpd)
{
	cxo_rebuild_free(tpd->rebuild);
	tpd->rebuild = NULL;
	cxo_dmsg_pub_free(tpd->feed_dmsg);
	tpd->feed_dmsg = NULL;
	cxo_pub_free(tpd->pub);
	tpd->pub = NULL;
	tpd->feed = NULL;
}
