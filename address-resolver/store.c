/*
 * address-resolver's bindings on the common store (keys in ar_schema.h).
 *
 * A binding and its index entry are written in one transaction with one
 * expiry, so GET /transports forgets a binding when it expires.
 */
#include <stdio.h>
#include <time.h>

#include "address_resolver.h"
#include "store_index.h"

#define KEY_MAX 128

static const char *const net_names[] = {"stcpr", "sudph"};

static void
rec_key(char *out, size_t size, enum ar_net net, const char *pk_hex)
{
	snprintf(out, size, AR_PREFIX "%s:%s", net_names[net], pk_hex);
}

static void
idx_key(char *out, size_t size, enum ar_net net)
{
	snprintf(out, size, AR_KEY_INDEX "%s", net_names[net]);
}

int
ar_store_get(struct ar *ar, enum ar_net net, const char *pk_hex, sw_store_cb *cb, void *arg)
{
	char key[KEY_MAX];

	rec_key(key, sizeof(key), net, pk_hex);
	return sw_store_cmd(ar->st, cb, arg, "GET", key, NULL);
}

int
ar_store_get2(struct ar *ar, enum ar_net net, const char *pk1, const char *pk2,
    sw_store_cb *cb, void *arg)
{
	char k1[KEY_MAX], k2[KEY_MAX];

	rec_key(k1, sizeof(k1), net, pk1);
	rec_key(k2, sizeof(k2), net, pk2);
	return sw_store_cmd(ar->st, cb, arg, "MGET", k1, k2, NULL);
}

int
ar_store_put(struct ar *ar, enum ar_net net, const struct ar_binding *b, const char *json,
    sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	long long ttl_s = net == AR_STCPR ? ar->ttl_s : ar->sudph_ttl_s;
	char key[KEY_MAX], ttl[24];
	int bad = 0;

	if (t == NULL)
		return -1;
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	rec_key(key, sizeof(key), net, b->pk_hex);
	bad |= sw_store_txn_add(t, "SET", key, json, "EX", ttl, NULL);
	idx_key(key, sizeof(key), net);
	bad |= sw_store_index_add(t, key, b->pk_hex, (long long)time(NULL), ttl_s);
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(ar->st, t, cb, arg);
}

int
ar_store_del(struct ar *ar, enum ar_net net, const char *pk_hex, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char key[KEY_MAX];
	int bad = 0;

	if (t == NULL)
		return -1;
	rec_key(key, sizeof(key), net, pk_hex);
	bad |= sw_store_txn_add(t, "DEL", key, NULL);
	idx_key(key, sizeof(key), net);
	bad |= sw_store_index_rem(t, key, pk_hex);
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(ar->st, t, cb, arg);
}

int
ar_store_list(struct ar *ar, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	long long now = (long long)time(NULL);
	char key[KEY_MAX];
	int bad = 0;

	if (t == NULL)
		return -1;
	idx_key(key, sizeof(key), AR_STCPR);
	bad |= sw_store_index_live(t, key, now);
	idx_key(key, sizeof(key), AR_SUDPH);
	bad |= sw_store_index_live(t, key, now);
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(ar->st, t, cb, arg);
}
