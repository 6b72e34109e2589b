/*
 * feed.c: setup-node's copy of transport-discovery's all-transports feed
 * (cxo.md: port 49, transports/<cc>/<t_id> -> the entry JSON), when
 * transport_discovery_pk names its publisher.
 *
 * The one idea: the feed only confirms.  A hop whose t_id the live
 * snapshot holds with the hop's edges passes the transport check without
 * a round trip to transport-discovery; anything else (not in the
 * snapshot, other edges, no snapshot yet, the feed down) is asked over
 * HTTP as before, so a transport registered a moment ago is still found
 * and nothing is refused on the word of a copy.  What the copy can get
 * wrong is a transport deregistered less than one feed update ago: it
 * passes, and the visors it names refuse or lose the route when the
 * transport goes (docs/routing.md).
 */
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "cxo_dmsg.h"
#include "cxo_obj.h"
#include "cxo_sub.h"
#include "log.h"
#include "metrics.h"
#include "setup_node.h"

static void
on_snapshot(struct cxo_sub *s, void *arg)
{
	struct sn *sn = arg;

	sw_log_info(sn->name, "transports loaded from the feed", "seq=%llu",
	    (unsigned long long)cxo_sub_seq(s));
	sn->feed_was_live = 1;
	sn->feed_warned = 0;
	sw_metric_set(sn->m_feed, NULL, 1);
}

static void
on_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	struct sn *sn = arg;

	(void)s;
	(void)ch;
	(void)n;
	sn->feed_was_live = 1;
	sn->feed_warned = 0;
	sw_metric_set(sn->m_feed, NULL, 1); /* live again after a redial */
}

static void
on_down(struct cxo_sub *s, const char *reason, void *arg)
{
	struct sn *sn = arg;

	(void)s;
	sw_metric_set(sn->m_feed, NULL, 0);
	/*
	 * In a deployment started all at once the publisher is often not up
	 * yet: that is said once the start window has passed, a loss at once.
	 */
	if (!sn->feed_warned && (sn->feed_was_live ||
	    sw_mono_ms() - sn->feed_born_ms >= SW_START_WINDOW_MS)) {
		sw_log_warn(sn->name, "transport feed down; checking over HTTP, redialing",
		    "why=%s", reason);
		sn->feed_warned = 1; /* the redials that fail after it are not news */
		sn->feed_was_live = 0;
		return;
	}
	sw_log_debug(sn->name, "transport feed still down", "why=%s", reason);
}

int
sn_feed_start(struct sn *sn)
{
	struct cxo_sub_opts o;

	if (!sn->has_tpd_pk)
		return 0;
	sn->feed_born_ms = sw_mono_ms();
	if ((sn->cd = cxo_dmsg_new(sw_svc_base(sn->svc), sn->dmsg, sn->name)) == NULL)
		goto fail;
	sn->target.d = sn->cd;
	memcpy(sn->target.pk, sn->tpd_pk, SW_PK_LEN);
	sn->target.port = CXO_PORT_ALL_TRANSPORTS;
	memset(&o, 0, sizeof(o));
	o.svc = sn->name;
	memcpy(o.feed_pk, sn->tpd_pk, SW_PK_LEN);
	o.feed_port = CXO_PORT_ALL_TRANSPORTS;
	o.dial = cxo_dmsg_sub_dial;
	o.dial_arg = &sn->target;
	o.cbs.snapshot = on_snapshot;
	o.cbs.update = on_update;
	o.cbs.down = on_down;
	o.arg = sn;
	if ((sn->feed = cxo_sub_new(sw_svc_base(sn->svc), &o)) == NULL)
		goto fail;
	return 0;
fail:
	sw_log_error(sn->name, "cannot subscribe to the transport feed", NULL);
	return -1;
}

void
sn_feed_free(struct sn *sn)
{
	cxo_sub_free(sn->feed);
	sn->feed = NULL;
	cxo_dmsg_free(sn->cd); /* its streams before the dmsg client goes */
	sn->cd = NULL;
}

int
sn_feed_confirms(const struct sn *sn, const uint8_t t_id[TP_ID_LEN],
    const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN])
{
	char id[TP_ID_TEXT], path[sizeof(TPD_FEED_ROOT) + 4 + TP_ID_TEXT];
	const uint8_t *data;
	size_t len;
	struct tp_entry te;

	if (sn->feed == NULL || !cxo_sub_connected(sn->feed) || !cxo_sub_has_snapshot(sn->feed))
		return 0;
	tp_id_format(id, t_id);
	snprintf(path, sizeof(path), TPD_FEED_ROOT "/%.2s/%s", id, id);
	if (!cxo_sub_get(sn->feed, path, &data, &len) || len >= TP_JSON_MAX ||
	    tp_entry_parse_stored((const char *)data, len, &te) == -1 ||
	    memcmp(te.t_id, t_id, TP_ID_LEN) != 0)
		return 0;
	return sn_same_edges(te.edges[0], te.edges[1], a, b);
}

int
sn_same_edges(const uint8_t a[SW_PK_LEN], const uint8_t b[SW_PK_LEN],
    const uint8_t x[SW_PK_LEN], const uint8_t y[SW_PK_LEN])
{
	return (memcmp(a, x, SW_PK_LEN) == 0 && memcmp(b, y, SW_PK_LEN) == 0) ||
	    (memcmp(a, y, SW_PK_LEN) == 0 && memcmp(b, x, SW_PK_LEN) == 0);
}
