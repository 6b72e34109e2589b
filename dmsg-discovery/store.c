/*
 * dmsg-discovery's records on the common store.
 *
 *   dmsgd:entry:<pk>          the entry JSON, with the entry's TTL
 *   dmsgd:all                 zset pk -> expiry time (s): every live entry
 *   dmsgd:servers             zset pk -> expiry: live server entries
 *   dmsgd:clients:<server>    zset client pk -> expiry: clients delegating to server
 *
 * The indexes are sorted sets scored by expiry so an expired entry leaves
 * every index at the same moment as its record, without a sweep: readers
 * ask only for scores in the future and trim the past.  Every write is one
 * transaction, so record and indexes never disagree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmsg_discovery.h"
#include "log.h"
#include "store.h"

#define KEY_MAX 128

static void
entry_key(char *out, size_t size, const char *pk_hex)
{
	snprintf(out, size, DD_KEY_ENTRY "%s", pk_hex);
}

static void
clients_key(char *out, size_t size, const uint8_t pk[SW_PK_LEN])
{
	char hex[SW_PK_HEX];

	sw_hex_encode(hex, pk, SW_PK_LEN);
	snprintf(out, size, DD_KEY_CLIENTS "%s", hex);
}

int
dd_store_get(struct dd *dd, const char *pk_hex, sw_store_cb *cb, void *arg)
{
	char key[KEY_MAX];

	entry_key(key, sizeof(key), pk_hex);
	return sw_store_cmd(dd->st, cb, arg, "GET", key, NULL);
}

static int
delegates(const struct dmsg_entry *e, const uint8_t pk[SW_PK_LEN])
{
	for (size_t i = 0; i < e->ndelegated; i++)
		if (memcmp(e->delegated[i], pk, SW_PK_LEN) == 0)
			return 1;
	return 0;
}

int
dd_store_put(struct dd *dd, const struct dmsg_entry *e, const char *json,
    const struct dmsg_entry *old, long long expires, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char hex[SW_PK_HEX], key[KEY_MAX], ttl[24], exp[24];
	long long ttl_s = e->has_server ? dd->server_ttl_s : dd->client_ttl_s;
	int bad = 0;

	if (t == NULL)
		return -1;
	sw_hex_encode(hex, e->pk, SW_PK_LEN);
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	snprintf(exp, sizeof(exp), "%lld", expires);
	entry_key(key, sizeof(key), hex);
	bad |= sw_store_txn_add(t, "SET", key, json, "EX", ttl, NULL);
	bad |= sw_store_txn_add(t, "ZADD", DD_KEY_ALL, exp, hex, NULL);
	if (e->has_server)
		bad |= sw_store_txn_add(t, "ZADD", DD_KEY_SERVERS, exp, hex, NULL);
	else if (old != NULL && old->has_server)
		bad |= sw_store_txn_add(t, "ZREM", DD_KEY_SERVERS, hex, NULL);
	for (size_t i = 0; old != NULL && i < old->ndelegated; i++) {
		if (delegates(e, old->delegated[i]))
			continue;
		clients_key(key, sizeof(key), old->delegated[i]);
		bad |= sw_store_txn_add(t, "ZREM", key, hex, NULL);
	}
	for (size_t i = 0; i < e->ndelegated; i++) {
		clients_key(key, sizeof(key), e->delegated[i]);
		bad |= sw_store_txn_add(t, "ZADD", key, exp, hex, NULL);
		/* Every client has the same TTL, so the newest write outlives the rest. */
		bad |= sw_store_txn_add(t, "EXPIRE", key, ttl, NULL);
	}
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(dd->st, t, cb, arg);
}

int
dd_store_del(struct dd *dd, const struct dmsg_entry *old, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char hex[SW_PK_HEX], key[KEY_MAX];
	int bad = 0;

	if (t == NULL)
		return -1;
	sw_hex_encode(hex, old->pk, SW_PK_LEN);
	entry_key(key, sizeof(key), hex);
	bad |= sw_store_txn_add(t, "DEL", key, NULL);
	bad |= sw_store_txn_add(t, "ZREM", DD_KEY_ALL, hex, NULL);
	bad |= sw_store_txn_add(t, "ZREM", DD_KEY_SERVERS, hex, NULL);
	for (size_t i = 0; i < old->ndelegated; i++) {
		clients_key(key, sizeof(key), old->delegated[i]);
		bad |= sw_store_txn_add(t, "ZREM", key, hex, NULL);
	}
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(dd->st, t, cb, arg);
}

/*
 * Trim what has expired, then read what is live, in one transaction: the
 * reply's second element is the array of PKs.
 */
int
dd_store_index(struct dd *dd, const char *server_hex, int servers, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char key[KEY_MAX], now[24], min[26];
	int bad = 0;

	if (t == NULL)
		return -1;
	if (server_hex != NULL)
		snprintf(key, sizeof(key), DD_KEY_CLIENTS "%s", server_hex);
	else
		snprintf(key, sizeof(key), "%s", servers ? DD_KEY_SERVERS : DD_KEY_ALL);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	snprintf(min, sizeof(min), "(%s", now);
	bad |= sw_store_txn_add(t, "ZREMRANGEBYSCORE", key, "-inf", now, NULL);
	bad |= sw_store_txn_add(t, "ZRANGEBYSCORE", key, min, "+inf", NULL);
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(dd->st, t, cb, arg);
}


int
dd_entry_from_stored(const char *json, size_t len, struct dmsg_entry *e)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	char err[128];
	int rc;

	if (o == NULL)
		return -1;
	/* A stored entry was verified when written: only its shape is read here. */
	rc = dmsg_entry_read(o, e, err, sizeof(err));
	cJSON_Delete(o);
	return rc == 0 ? 0 : -1;
}
