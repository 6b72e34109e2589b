/*
 * The services-by-pk CXO feed (cxo.md: port 48, services/<type>/<cc>/<pk>
 * -> the service JSON, <cc> the first two hex characters of the pk),
 * published on cxo_tcp_addr when it is set.
 *
 * Every committed mutation of a record (post, delete) calls
 * sd_feed_changed(), and nothing else changes the feed between rebuilds.
 * Records that expire leave no call, so the feed is rebuilt from the store
 * at start and then every rebuild period: held, cleared, refilled from the
 * type indexes (which list every live record), released.  Unchanged leaves
 * keep their hashes, so subscribers fetch only what expired or changed.
 * Store replies come in order, so a mutation committed while a rebuild's
 * read is in flight still lands after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cxo_dmsg.h"
#include "cxo_pub.h"
#include "log.h"
#include "metrics.h"
#include "service_discovery.h"
#include "store_index.h"

#define SD_FEED_PORT 48

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

/* Rebuild: one type at a time, index then records. */

static void rebuild_next(struct sd *sd);

static void
rebuild_end(struct sd *sd, int ok)
{
	sw_svc_stopped *done = sd->feed_stopped;

	sd->rebuilding = 0;
	if (!ok)
		sw_log_warn(sd->name, "feed rebuild failed; keeping what it has", NULL);
	cxo_feed_hold(sd->feed, 0);
	if (done != NULL) {
		sd->feed_stopped = NULL;
		sw_svc_drain(sd->svc, done);
		return;
	}
	if (sd->rebuild_ev != NULL) {
		struct timeval tv = {sd->rebuild_s, 0};

		event_add(sd->rebuild_ev, &tv);
	}
}

static void
rebuild_records(const struct sw_reply *r, void *arg)
{
	struct sd *sd = arg;
	char path[128];

	if (r->type != SW_REPLY_ARRAY) {
		rebuild_end(sd, 0);
		return;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const struct sw_reply *e = r->element[i];
		const char *pk = sd->rebuild_pks[i];

		if (e->type != SW_REPLY_STR)
			continue; /* expired since the index read */
		feed_path(path, sizeof(path), sd->rebuild_type, pk);
		cxo_feed_put(sd->feed, path, e->str, e->len);
	}
	sd->rebuild_type++;
	rebuild_next(sd);
}

static void
rebuild_index(const struct sw_reply *r, void *arg)
{
	struct sd *sd = arg;
	const struct sw_reply *m = sw_store_index_members(r, 0);
	size_t n;

	free(sd->rebuild_buf);
	sd->rebuild_buf = NULL;
	free(sd->rebuild_pks);
	sd->rebuild_pks = NULL;
	if (m == NULL) {
		rebuild_end(sd, 0);
		return;
	}
	if ((n = m->elements) == 0) {
		sd->rebuild_type++;
		rebuild_next(sd);
		return;
	}
	/* The reply dies with this callback; the PKs must outlive the MGET. */
	sd->rebuild_pks = calloc(n, sizeof(*sd->rebuild_pks));
	sd->rebuild_buf = calloc(n, SW_PK_HEX);
	if (sd->rebuild_pks == NULL || sd->rebuild_buf == NULL) {
		rebuild_end(sd, 0);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *p = sd->rebuild_buf + i * SW_PK_HEX;

		snprintf(p, SW_PK_HEX, "%.*s", (int)m->element[i]->len, m->element[i]->str);
		sd->rebuild_pks[i] = p;
	}
	if (sd_store_mget(sd, sd->rebuild_type, (const char *const *)sd->rebuild_pks, n,
	    rebuild_records, sd) == -1)
		rebuild_end(sd, 0);
}

static void
rebuild_next(struct sd *sd)
{
	if (sd->rebuild_type == SD_NTYPES) {
		rebuild_end(sd, 1);
		return;
	}
	if (sd_store_query(sd, sd->rebuild_type, NULL, NULL, rebuild_index, sd) == -1)
		rebuild_end(sd, 0);
}

static void
rebuild_start(evutil_socket_t fd, short what, void *arg)
{
	struct sd *sd = arg;

	(void)fd;
	(void)what;
	if (sd->rebuilding || sd->feed_stopped != NULL)
		return;
	sd->rebuilding = 1;
	sd->rebuild_type = 0;
	cxo_feed_hold(sd->feed, 1);
	cxo_feed_clear(sd->feed);
	rebuild_next(sd);
}

int
sd_feed_start(struct sd *sd, const char *addr)
{
	struct cxo_feed_opts o;

	memset(&o, 0, sizeof(o));
	o.kp = &sd->kp;
	o.port = SD_FEED_PORT;
	o.hold = 1;
	sd->pub = cxo_pub_new(sw_svc_base(sd->svc), sd->name);
	if (sd->pub == NULL || (addr[0] != '\0' && cxo_pub_listen(sd->pub, addr) == -1))
		return -1;
	if (sd->dmsg_disc[0] != '\0' && (sd->feed_dmsg = cxo_dmsg_pub_new(sw_svc_base(sd->svc),
	    &sd->kp, sd->dmsg_disc, sd->pub, SD_FEED_PORT, sd->name)) == NULL)
		return -1;
	sd->feed = cxo_feed_new(sd->pub, &o);
	sd->rebuild_ev = event_new(sw_svc_base(sd->svc), -1, 0, rebuild_start, sd);
	if (sd->feed == NULL || sd->rebuild_ev == NULL)
		return -1;
	sd->rebuild_s = sd->ttl_s / 4 < 5 ? (sd->ttl_s < 5 ? 1 : 5) : sd->ttl_s / 4;
	if (sd->rebuild_s > 300)
		sd->rebuild_s = 300;
	sw_log_info(sd->name, "publishing services-by-pk", "cxo=%s port=%d rebuild_s=%lld", addr,
	    SD_FEED_PORT, (long long)sd->rebuild_s);
	rebuild_start(-1, 0, sd);
	return 0;
}

void
sd_feed_stop(struct sd *sd, sw_svc_stopped *done)
{
	if (sd->rebuild_ev != NULL)
		event_del(sd->rebuild_ev);
	if (sd->rebuilding) {
		sd->feed_stopped = done; /* drained once the rebuild's read is answered */
		return;
	}
	sw_svc_drain(sd->svc, done);
}

void
sd_feed_free(struct sd *sd)
{
	if (sd->rebuild_ev != NULL)
		event_free(sd->rebuild_ev);
	cxo_dmsg_pub_free(sd->feed_dmsg);
	sd->feed_dmsg = NULL;
	cxo_pub_free(sd->pub);
	free(sd->rebuild_pks);
	free(sd->rebuild_buf);
	sd->rebuild_ev = NULL;
	sd->pub = NULL;
	sd->feed = NULL;
}
