/*
 * The services-by-pk CXO feed (cxo.md: port 48, services/<type>/<cc>/<pk>
 * -> the service JSON, <cc> the first two hex characters of the pk),
 * published on cxo_tcp_addr and/or dmsg when set.
 *
 * One record kind per service type, each listed by its type index, one
 * leaf per record.  The API's committed hook reports every mutation;
 * common/cxo_follow does the rest (expiry, rebuilds from the type indexes
 * at start and periodically as a safety net, publication).
 */
#include <stdio.h>

#include "cxo_follow.h"
#include "cxo_obj.h"
#include "service_discovery.h"

static void
index_key(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	snprintf(out, size, SD_KEY_TYPE "%s", sd_type_name((enum sd_type)k));
}

static void
record_prefix(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	snprintf(out, size, SD_KEY_SERVICE "%s:", sd_type_name((enum sd_type)k));
}

static size_t
leaves(void *ctx, size_t k, const char *pk, const char *json, size_t len,
    char (*paths)[CXO_FOLLOW_PATH], size_t max)
{
	(void)ctx;
	(void)json;
	(void)len;
	if (max == 0)
		return 0;
	snprintf(paths[0], CXO_FOLLOW_PATH, SD_FEED_ROOT "/%s/%.2s/%s",
	    sd_type_name((enum sd_type)k), pk, pk);
	return 1;
}

static const struct cxo_follow_ops ops = {SD_NTYPES, index_key, record_prefix, leaves};

int
sd_feed_start(struct sd *sd, const char *addr)
{
	struct cxo_follow_opts o = {
		.svc = sd->svc,
		.st = sd->st,
		.kp = &sd->kp,
		.port = CXO_PORT_SERVICES_BY_PK,
		.tcp_addr = addr,
		.dmsg_disc = sd->dmsg_disc,
		.ops = &ops,
		.ctx = sd,
		.metric_prefix = "sd_feed",
		.follow_ms = sd->follow_ms,
	};

	o.rebuild_s = sd->ttl_s / 4 < 5 ? (sd->ttl_s < 5 ? 1 : 5) : sd->ttl_s / 4;
	if (o.rebuild_s > 300)
		o.rebuild_s = 300;
	o.follow_ms = sd->follow_ms;
	sd->feed = cxo_follow_start(&o);
	return sd->feed != NULL ? 0 : -1;
}

void
sd_feed_stop(struct sd *sd, sw_svc_stopped *done)
{
	sd_feed_free(sd);
	sw_svc_drain(sd->svc, done);
}

void
sd_feed_free(struct sd *sd)
{
	cxo_follow_free(sd->feed);
	sd->feed = NULL;
}
