/*
 * The services-by-pk CXO feed (cxo.md: port 48, services/<type>/<cc>/<pk>
 * -> the service JSON, <cc> the first two hex characters of the pk).
 *
 * Every committed mutation of a record (post, delete) calls
 * sd_feed_changed(), and nothing else touches the feed, so when the common
 * publisher (put/delete/prune) lands this is the one function to connect.
 * Until then the changes are only counted.  Records that expire leave no
 * call here; the publisher will need a periodic rebuild from the store
 * (the type indexes list every live record) to drop them.
 */
#include <stdio.h>

#include "log.h"
#include "metrics.h"
#include "service_discovery.h"

/* services/<type>/<cc>/<pk>: the leaf path of s in the feed. */
static void
feed_path(char *out, size_t size, const struct sd_service *s)
{
	snprintf(out, size, "services/%s/%.2s/%s", sd_type_name(s->type), s->pk_hex, s->pk_hex);
}

void
sd_feed_changed(struct sd *sd, const struct sd_service *s, const char *json)
{
	char path[128];

	feed_path(path, sizeof(path), s);
	sw_metric_add(sd->m_feed, (const char *[]){json != NULL ? "put" : "delete"}, 1);
	sw_log_debug(sd->name, json != NULL ? "feed put" : "feed delete", "path=%s", path);
}
