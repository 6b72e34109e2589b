/*
 * The all-transports CXO feed (cxo.md: port 49, transports/<cc>/<t_id> ->
 * the entry JSON as stored, <cc> the first two characters of the t_id),
 * published on cxo_tcp_addr and/or dmsg when set.
 *
 * One record kind, listed by tpd:all, one leaf per record.  The API's
 * committed hook reports every change the store accepted; common/cxo_follow
 * does the rest (expiry, rebuilds from tpd:all at start and every quarter
 * of an entry's lifetime as a safety net, publication).
 */
#include <stdio.h>

#include "cxo_follow.h"
#include "cxo_obj.h"
#include "transport_discovery.h"

static void
index_key(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	(void)k;
	snprintf(out, size, "%s", TPD_KEY_ALL);
}

static void
record_prefix(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	(void)k;
	snprintf(out, size, "%s", TPD_KEY_ENTRY);
}

static size_t
leaves(void *ctx, size_t k, const char *id, const char *json, size_t len,
    char (*paths)[CXO_FOLLOW_PATH], size_t max)
{
	(void)ctx;
	(void)k;
	(void)json;
	(void)len;
	if (max == 0)
		return 0;
	snprintf(paths[0], CXO_FOLLOW_PATH, TPD_FEED_ROOT "/%.2s/%s", id, id);
	return 1;
}

static const struct cxo_follow_ops ops = {1, index_key, record_prefix, leaves};

int
tpd_feed_start(struct tpd *tpd)
{
	struct cxo_follow_opts o = {
		.svc = tpd->svc,
		.st = tpd->st,
		.kp = &tpd->kp,
		.port = CXO_PORT_ALL_TRANSPORTS,
		.tcp_addr = tpd->cxo_addr,
		.dmsg_disc = tpd->dmsg_disc,
		.ops = &ops,
		.ctx = tpd,
		.metric_prefix = "tpd_feed",
		.follow_ms = tpd->follow_ms,
	};

	/* Expired transports linger at most a quarter of their lifetime if an expiry read fails. */
	o.rebuild_s = tpd->ttl_s / 4 < 1 ? 1 : tpd->ttl_s / 4;
	if (o.rebuild_s > 300)
		o.rebuild_s = 300;
	o.follow_ms = tpd->follow_ms;
	tpd->feed = cxo_follow_start(&o);
	return tpd->feed != NULL ? 0 : -1;
}

void
tpd_feed_stop(struct tpd *tpd, sw_svc_stopped *done)
{
	tpd_feed_free(tpd);
	sw_svc_drain(tpd->svc, done);
}

void
tpd_feed_free(struct tpd *tpd)
{
	cxo_follow_free(tpd->feed);
	tpd->feed = NULL;
}
