/*
 * The services-by-pk CXO feed (cxo.md: port 48, services/<type>/<cc>/<pk>
 * -> the service JSON, <cc> the first two hex characters of the pk),
 * published on cxo_tcp_addr when it is set.
 *
 * Every committed mutation of a record (post, delete) calls
 * sd_feed_changed(), and nothing else changes the feed between rebuilds.
 * Records that expire leave no call, so the feed is also rebuilt from the
 * type indexes (which list every live record) at start and then every
 * rebuild period, by common/cxo_rebuild.
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
#include "service_discovery.h"


/* services/<type>/<cc>/<pk>: the leaf path of a service in the feed. */
static void
feed_path(char *out, size_t size, enum sd_type t, const char *pk_hex)
{
	snprintf(out, size, "services/%s/%.2s/%s", sd_type_name(t), pk_hex, pk_hex);
}

void
sd_feed_changed(struct sd *sd, const struct sd_service *s, const char *json)
{
	char path[128];

	sw_metric_add(sd->m_feed, (const char *[]){json != NULL ? "put" : "delete"}, 1);
	if (sd->feed == NULL)
		return;
	feed_path(path, sizeof(path), s->type, s->pk_hex);
	if ((json != NULL ? cxo_feed_put(sd->feed, path, json, strlen(json)) :
	    cxo_feed_delete(sd->feed, path)) == -1)
		sw_log_warn(sd->name, "feed change failed", "path=%s", path);
}

/* Rebuild: one type index at a time (cxo_rebuild). */

static int
rebuild_index(void *ctx, size_t i, sw_store_cb *cb, void *arg)
{
	return sd_store_query(ctx, (enum sd_type)i, NULL, NULL, cb, arg);
}

static int
rebuild_mget(void *ctx, size_t i, const char *const *pks, size_t n, sw_store_cb *cb, void *arg)
{
	return sd_store_mget(ctx, (enum sd_type)i, pks, n, cb, arg);
}

static void
rebuild_path(void *ctx, size_t i, const char *pk, char *out, size_t size)
{
	(void)ctx;
	feed_path(out, size, (enum sd_type)i, pk);
}

static const struct cxo_rebuild_ops rebuild_ops = {
	SD_NTYPES, rebuild_index, rebuild_mget, rebuild_path,
};

int
sd_feed_start(struct sd *sd, const char *addr)
{
	struct cxo_feed_opts o;
	long long rebuild_s;

	memset(&o, 0, sizeof(o));
	o.kp = &sd->kp;
	o.port = CXO_PORT_SERVICES_BY_PK;
	o.hold = 1;
	sd->pub = cxo_pub_new(sw_svc_base(sd->svc), sd->name);
	if (sd->pub == NULL || (addr[0] != '\0' && cxo_pub_listen(sd->pub, addr) == -1))
		return -1;
	if (sd->dmsg_disc[0] != '\0' && (sd->feed_dmsg = cxo_dmsg_pub_new(sw_svc_base(sd->svc),
	    &sd->kp, sd->dmsg_disc, sd->pub, CXO_PORT_SERVICES_BY_PK, sd->name)) == NULL)
		return -1;
	rebuild_s = sd->ttl_s / 4 < 5 ? (sd->ttl_s < 5 ? 1 : 5) : sd->ttl_s / 4;
	if (rebuild_s > 300)
		rebuild_s = 300;
	sd->feed = cxo_feed_new(sd->pub, &o);
	if (sd->feed == NULL ||
	    (sd->rebuild = cxo_rebuild_new(sd->svc, sd->feed, rebuild_s, &rebuild_ops, sd)) == NULL)
		return -1;
	cxo_rebuild_follow(sd->rebuild, sd->follow_ms);
	sw_log_info(sd->name, "publishing services-by-pk", "cxo=%s port=%d rebuild_s=%lld", addr,
	    CXO_PORT_SERVICES_BY_PK, rebuild_s);
	cxo_rebuild_start(sd->rebuild);
	return 0;
}

void
sd_feed_stop(struct sd *sd, sw_svc_stopped *done)
{
	if (sd->rebuild != NULL)
		cxo_rebuild_stop(sd->rebuild, done);
	else
		sw_svc_drain(sd->svc, done);
}

void
sd_feed_free(struct sd *sd)
{
	cxo_rebuild_free(sd->rebuild);
	sd->rebuild = NULL;
	cxo_dmsg_pub_free(sd->feed_dmsg);
	sd->feed_dmsg = NULL;
	cxo_pub_free(sd->pub);
	sd->pub = NULL;
	sd->feed = NULL;
}
