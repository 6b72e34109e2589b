/*
 * service-discovery's records on the common store (keys in sd_schema.h).
 *
 * The indexes are common/store_index sets, scored by expiry, so a service
 * leaves every index when its record expires; a query reads the one set
 * that answers it (two when it filters on both country and version) and
 * fetches only the records it returns.  A read of one index is one
 * command (only live scores); the writes trim what has expired from the
 * sets they touch.  Every write is one transaction.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service_discovery.h"
#include "store_index.h"
#include "svc_api.h"

#define KEY_MAX 128

static void
type_key(char *out, size_t size, enum sd_type t)
{
	snprintf(out, size, SD_KEY_TYPE "%s", sd_type_name(t));
}

static void
cc_key(char *out, size_t size, enum sd_type t, const char *cc)
{
	snprintf(out, size, SD_KEY_COUNTRY "%s:%s", sd_type_name(t), cc);
}

static void
ver_key(char *out, size_t size, enum sd_type t, const char *ver)
{
	snprintf(out, size, SD_KEY_VERSION "%s:%s", sd_type_name(t), ver);
}

static void
rec_prefix(char *out, size_t size, enum sd_type t)
{
	snprintf(out, size, SD_KEY_SERVICE "%s:", sd_type_name(t));
}

int
sd_store_get(struct sd *sd, enum sd_type t, const char *pk_hex, sw_store_cb *cb, void *arg)
{
	char key[KEY_MAX];

	snprintf(key, sizeof(key), SD_KEY_SERVICE "%s:%s", sd_type_name(t), pk_hex);
	return sw_store_cmd(sd->st, cb, arg, "GET", key, NULL);
}

int
sd_store_put(struct sd *sd, const struct sd_service *s, const char *json,
    const struct sd_service *old, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char key[KEY_MAX], ttl[24];
	long long now = (long long)time(NULL);
	int bad = 0;

	if (t == NULL)
		return -1;
	snprintf(ttl, sizeof(ttl), "%lld", sd->ttl_s);
	snprintf(key, sizeof(key), SD_KEY_SERVICE "%s:%s", sd_type_name(s->type), s->pk_hex);
	bad |= sw_store_txn_add(t, "SET", key, json, "EX", ttl, NULL);
	type_key(key, sizeof(key), s->type);
	bad |= sw_api_index_trim(t, key, now);
	bad |= sw_store_index_add(t, key, s->pk_hex, now, sd->ttl_s);
	if (old != NULL && old->country[0] != '\0' && strcmp(old->country, s->country) != 0) {
		cc_key(key, sizeof(key), old->type, old->country);
		bad |= sw_store_index_rem(t, key, s->pk_hex);
	}
	if (old != NULL && old->version[0] != '\0' && strcmp(old->version, s->version) != 0) {
		ver_key(key, sizeof(key), old->type, old->version);
		bad |= sw_store_index_rem(t, key, s->pk_hex);
	}
	if (s->country[0] != '\0') {
		cc_key(key, sizeof(key), s->type, s->country);
		bad |= sw_api_index_trim(t, key, now);
		bad |= sw_store_index_add(t, key, s->pk_hex, now, sd->ttl_s);
	}
	if (s->version[0] != '\0') {
		ver_key(key, sizeof(key), s->type, s->version);
		bad |= sw_api_index_trim(t, key, now);
		bad |= sw_store_index_add(t, key, s->pk_hex, now, sd->ttl_s);
	}
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(sd->st, t, cb, arg);
}

int
sd_store_del(struct sd *sd, const struct sd_service *old, sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *t = sw_store_txn_new();
	char key[KEY_MAX];
	int bad = 0;

	if (t == NULL)
		return -1;
	snprintf(key, sizeof(key), SD_KEY_SERVICE "%s:%s", sd_type_name(old->type), old->pk_hex);
	bad |= sw_store_txn_add(t, "DEL", key, NULL);
	type_key(key, sizeof(key), old->type);
	bad |= sw_store_index_rem(t, key, old->pk_hex);
	if (old->country[0] != '\0') {
		cc_key(key, sizeof(key), old->type, old->country);
		bad |= sw_store_index_rem(t, key, old->pk_hex);
	}
	if (old->version[0] != '\0') {
		ver_key(key, sizeof(key), old->type, old->version);
		bad |= sw_store_index_rem(t, key, old->pk_hex);
	}
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(sd->st, t, cb, arg);
}

int
sd_store_query(struct sd *sd, enum sd_type t, const char *country, const char *version,
    sw_store_cb *cb, void *arg)
{
	struct sw_store_txn *txn;
	char key[KEY_MAX], min[26];
	long long now = (long long)time(NULL);
	int bad = 0;

	if (country != NULL)
		cc_key(key, sizeof(key), t, country);
	else if (version != NULL)
		ver_key(key, sizeof(key), t, version);
	else
		type_key(key, sizeof(key), t);
	if (country == NULL || version == NULL)
		return sw_api_index_read(sd->st, key, now, cb, arg);
	/* Both filters: the two live reads in one transaction, [country pks, version pks]. */
	if ((txn = sw_store_txn_new()) == NULL)
		return -1;
	snprintf(min, sizeof(min), "(%lld", now);
	bad |= sw_store_txn_add(txn, "ZRANGEBYSCORE", key, min, "+inf", NULL);
	ver_key(key, sizeof(key), t, version);
	bad |= sw_store_txn_add(txn, "ZRANGEBYSCORE", key, min, "+inf", NULL);
	if (bad) {
		sw_store_txn_free(txn);
		return -1;
	}
	return sw_store_txn_exec(sd->st, txn, cb, arg);
}

int
sd_store_mget(struct sd *sd, enum sd_type t, const char *const *pks, size_t n, sw_store_cb *cb,
    void *arg)
{
	char prefix[KEY_MAX];

	rec_prefix(prefix, sizeof(prefix), t);
	return sw_store_mget_prefixed(sd->st, prefix, pks, n, cb, arg);
}
