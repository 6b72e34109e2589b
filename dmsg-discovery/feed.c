/*
 * dmsg-discovery's CXO feed clients-by-server (cxo.md, "The feeds"):
 *
 *   clients-by-server/<server_pk>/<cc>/<client_pk> -> the client's entry JSON
 *
 * One record kind, listed by dmsgd:all; a client entry has one leaf per
 * server it delegates to, a server entry none.  common/cxo_follow does the
 * following (queue, expiry, rebuilds, publication); this file says only
 * where the records are and which leaves one has.
 */
#include <stdio.h>
#include <string.h>

#include "cxo_follow.h"
#include "cxo_obj.h"
#include "dd_schema.h"
#include "dmsg_discovery.h"

static void
index_key(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	(void)k;
	snprintf(out, size, "%s", DD_KEY_ALL);
}

static void
record_prefix(void *ctx, size_t k, char *out, size_t size)
{
	(void)ctx;
	(void)k;
	snprintf(out, size, "%s", DD_KEY_ENTRY);
}

static size_t
leaves(void *ctx, size_t k, const char *member, const char *json, size_t len,
    char (*paths)[CXO_FOLLOW_PATH], size_t max)
{
	struct dmsg_entry e;
	char pk[SW_PK_HEX], server[SW_PK_HEX];
	size_t n = 0;

	(void)ctx;
	(void)k;
	if (dd_entry_from_stored(json, len, &e) == -1)
		return 0;
	sw_hex_encode(pk, e.pk, SW_PK_LEN);
	if (strcmp(pk, member) != 0)
		return 0; /* not the record of this key: show nothing */
	for (size_t i = 0; i < e.ndelegated && n < max; i++) {
		sw_hex_encode(server, e.delegated[i], SW_PK_LEN);
		snprintf(paths[n++], CXO_FOLLOW_PATH, DD_FEED_ROOT "/%s/%.2s/%s", server, pk, pk);
	}
	return n;
}

static const struct cxo_follow_ops ops = {1, index_key, record_prefix, leaves};

int
dd_feed_start(struct dd *dd, const char *addr, const char *dmsg_disc)
{
	struct cxo_follow_opts o = {
		.svc = dd->svc,
		.st = dd->st,
		.kp = &dd->kp,
		.port = CXO_PORT_CLIENTS_BY_SERVER,
		.tcp_addr = addr,
		.dmsg_disc = dmsg_disc,
		.ops = &ops,
		.ctx = dd,
		.queue_max = dd->cxo_queue_max,
		.follow_ms = dd->follow_ms,
		.metric_prefix = "dmsgd_feed",
	};

	dd->feed = cxo_follow_start(&o);
	return dd->feed != NULL ? 0 : -1;
}

void
dd_feed_free(struct dd *dd)
{
	cxo_follow_free(dd->feed);
	dd->feed = NULL;
}
