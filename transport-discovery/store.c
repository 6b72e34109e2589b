/*
 * transport-discovery's records on the common store (layout in td_schema.h):
 *
 *   tpd:tp:<t_id>    the entry JSON, expiring entry_timeout_s after its last post
 *   tpd:all          zset t_id -> expiry: every live entry
 *   tpd:edge:<pk>    zset t_id -> expiry: the entries with that edge
 *   tpd:version      INCRed by every write, so route-finder notices change cheaply
 *
 * The indexes are common/store_index sets scored by expiry, so an expired
 * entry leaves them at the same moment as its record, on both stores, with
 * no sweeper.  A list read asks only for live scores (svc_api_cache.c);
 * the writes trim what has expired from the sets they touch.  Every change
 * passes through tpd_store_apply: one transaction for the records, their
 * indexes, the indexes' tags (tpd:tag:edge:<pk>, tpd:tag:all: the list
 * cache's, svc_api_cache.h) and the version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"
#include "store_index.h"
#include "svc_api.h"
#include "svc_api_cache.h"
#include "transport_discovery.h"

#define KEY_MAX 96

static void
entry_key(char *out, size_t size, const uint8_t id[TP_ID_LEN])
{
	char text[TP_ID_TEXT];

	tp_id_format(text, id);
	snprintf(out, size, TPD_KEY_ENTRY "%s", text);
}

static void
edge_key(char *out, size_t size, const uint8_t pk[SW_PK_LEN])
{
	char hex[SW_PK_HEX];

	sw_hex_encode(hex, pk, SW_PK_LEN);
	snprintf(out, size, TPD_KEY_EDGE "%s", hex);
}

int
tpd_store_get(struct tpd *tpd, const char *t_id, sw_store_cb *cb, void *arg)
{
	char key[KEY_MAX];

	snprintf(key, sizeof(key), TPD_KEY_ENTRY "%s", t_id);
	return sw_store_cmd(tpd->st, cb, arg, "GET", key, NULL);
}

int
tpd_store_mget(struct tpd *tpd, const char *const *ids, size_t n, sw_store_cb *cb, void *arg)
{
	return sw_store_mget_prefixed(tpd->st, TPD_KEY_ENTRY, ids, n, cb, arg);
}

void
tpd_store_index_key(char *out, size_t size, const char *pk_hex)
{
	if (pk_hex != NULL)
		snprintf(out, size, TPD_KEY_EDGE "%s", pk_hex);
	else
		snprintf(out, size, "%s", TPD_KEY_ALL);
}

static int
add_change(struct sw_store_txn *t, const struct tpd_change *c, long long now, long long ttl_s)
{
	char key[KEY_MAX], id[TP_ID_TEXT], ttl[24], json[TP_JSON_MAX];
	int bad = 0;

	tp_id_format(id, c->e.t_id);
	entry_key(key, sizeof(key), c->e.t_id);
	if (c->del) {
		bad |= sw_store_txn_add(t, "DEL", key, NULL);
		bad |= sw_store_index_rem(t, TPD_KEY_ALL, id);
		for (int i = 0; i < 2; i++) {
			edge_key(key, sizeof(key), c->e.edges[i]);
			bad |= sw_store_index_rem(t, key, id);
		}
		return bad ? -1 : 0;
	}
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	tp_entry_json(&c->e, json);
	bad |= sw_store_txn_add(t, "SET", key, json, "EX", ttl, NULL);
	bad |= sw_store_index_add(t, TPD_KEY_ALL, id, now, ttl_s);
	for (int i = 0; i < 2; i++) {
		edge_key(key, sizeof(key), c->e.edges[i]);
		bad |= sw_api_index_trim(t, key, now);
		bad |= sw_store_index_add(t, key, id, now, ttl_s);
	}
	return bad ? -1 : 0;
}

/* A new tag for every index set the changes touch, each once (svc_api_cache). */
static int
add_tags(struct sw_store_txn *t, const struct tpd_change *ch, size_t n, long long ttl_s)
{
	const uint8_t *done[2 * TPD_MAX_POST];
	char key[KEY_MAX];
	size_t ndone = 0, j;
	int bad = 0;

	bad |= sw_api_index_tag(t, TPD_KEY_ALL, ttl_s);
	for (size_t i = 0; i < n && ndone < 2 * TPD_MAX_POST; i++) {
		for (int k = 0; k < 2; k++) {
			const uint8_t *pk = ch[i].e.edges[k];

			/* a batch is posted by one edge of every entry: few distinct pks */
			for (j = 0; j < ndone && memcmp(done[j], pk, SW_PK_LEN) != 0; j++)
				;
			if (j < ndone)
				continue;
			done[ndone++] = pk;
			edge_key(key, sizeof(key), pk);
			bad |= sw_api_index_tag(t, key, ttl_s);
		}
	}
	return bad ? -1 : 0;
}

int
tpd_store_apply(struct tpd *tpd, const struct tpd_change *ch, size_t n, long long now,
    sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();

	if (t == NULL || n > TPD_MAX_POST)
		goto fail;
	/* Reads do not trim the indexes (one command each): writes do. */
	if (sw_api_index_trim(t, TPD_KEY_ALL, now) == -1)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (add_change(t, &ch[i], now, tpd->ttl_s) == -1)
			goto fail;
	if (add_tags(t, ch, n, tpd->ttl_s) == -1)
		goto fail;
	if (sw_store_txn_add(t, "INCR", TPD_KEY_VERSION, NULL) == -1)
		goto fail;
	return sw_store_txn_exec(tpd->st, t, cb, arg);
fail:
	sw_store_txn_free(t);
	return -1;
}
