/*
 * service-discovery's records on the common store (keys in sd_schema.h).
 *
 * The indexes are common/store_index sets, scored by expiry, so a service
 * leaves every index when its record expires; a query reads the one set
 * that answers it (two when it filters on both country and version) and
 * keeps the answer (every record of the query) in the list cache, which
 * samples quantity of them per read (svc_api_cache.h).  Every write is
 * one transaction: the record, its indexes (trimmed of what has expired)
 * and the indexes' tags, sd:tag:<index>, which keep the cache exact.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service_discovery.h"
#include "store_index.h"
#include "svc_api.h"
#include "svc_api_cache.h"

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

/*
 * A record joins or leaves an index set: the change, and a new tag for the
 * set, so no kept list answer of it is served again (svc_api_cache.h).
 */
static int
index_put(struct sd *sd, struct sw_store_txn *t, const char *key, const char *pk_hex,
    long long now)
{
	int bad = 0;

	bad |= sw_api_index_trim(t, key, now);
	bad |= sw_store_index_add(t, key, pk_hex, now, sd->ttl_s);
	bad |= sw_api_index_tag(t, key, sd->ttl_s);
	return bad ? -1 : 0;
}

static int
index_del(struct sd *sd, struct sw_store_txn *t, const char *key, const char *pk_hex)
{
	int bad = 0;

	bad |= sw_store_index_rem(t, key, pk_hex);
	bad |= sw_api_index_tag(t, key, sd->ttl_s);
	return bad ? -1 : 0;
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
	bad |= index_put(sd, t, key, s->pk_hex, now);
	if (old != NULL && old->country[0] != '\0' && strcmp(old->country, s->country) != 0) {
		cc_key(key, sizeof(key), old->type, old->country);
		bad |= index_del(sd, t, key, s->pk_hex);
	}
	if (old != NULL && old->version[0] != '\0' && strcmp(old->version, s->version) != 0) {
		ver_key(key, sizeof(key), old->type, old->version);
		bad |= index_del(sd, t, key, s->pk_hex);
	}
	if (s->country[0] != '\0') {
		cc_key(key, sizeof(key), s->type, s->country);
		bad |= index_put(sd, t, key, s->pk_hex, now);
	}
	if (s->version[0] != '\0') {
		ver_key(key, sizeof(key), s->type, s->version);
		bad |= index_put(sd, t, key, s->pk_hex, now);
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
	bad |= index_del(sd, t, key, old->pk_hex);
	if (old->country[0] != '\0') {
		cc_key(key, sizeof(key), old->type, old->country);
		bad |= index_del(sd, t, key, old->pk_hex);
	}
	if (old->version[0] != '\0') {
		ver_key(key, sizeof(key), old->type, old->version);
		bad |= index_del(sd, t, key, old->pk_hex);
	}
	if (bad) {
		sw_store_txn_free(t);
		return -1;
	}
	return sw_store_txn_exec(sd->st, t, cb, arg);
}

void
sd_list(struct sd *sd, struct sw_http_req *req, enum sd_type t, const char *country,
    const char *version, long long quantity)
{
	char a[KEY_MAX], b[KEY_MAX], prefix[KEY_MAX], key[KEY_MAX * 2 + 8];
	struct sw_api_clist q = {.key = key, .index = {a, NULL}, .prefix = prefix,
	    .quantity = quantity};

	/* The one index that answers, or country's and version's to intersect. */
	if (country != NULL)
		cc_key(a, sizeof(a), t, country);
	else if (version != NULL)
		ver_key(a, sizeof(a), t, version);
	else
		type_key(a, sizeof(a), t);
	if (country != NULL && version != NULL) {
		ver_key(b, sizeof(b), t, version);
		q.index[1] = b;
	}
	/* The query without its quantity: the kept answer is every record, sampled per read. */
	snprintf(key, sizeof(key), "%s|%s", a, q.index[1] != NULL ? b : "");
	rec_prefix(prefix, sizeof(prefix), t);
	sw_api_clist_run(sd->svc, req, sd->st, sd->cache, &q);
}
