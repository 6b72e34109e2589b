/*
 * store_index: sorted sets scored by expiry time, the indexes that expire
 * with their records (store_index.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_index.h"

#define MEMBER_MAX 200
#define KEY_MAX    (MEMBER_MAX + 56)

int
sw_store_index_add(struct sw_store_txn *t, const char *key, const char *member, long long now,
    long long ttl_s)
{
	char exp[24], ttl[24];
	int bad = 0;

	snprintf(exp, sizeof(exp), "%lld", now + ttl_s);
	snprintf(ttl, sizeof(ttl), "%lld", ttl_s);
	bad |= sw_store_txn_add(t, "ZADD", key, exp, member, NULL);
	/* Every member has the same TTL, so the newest write outlives the rest. */
	bad |= sw_store_txn_add(t, "EXPIRE", key, ttl, NULL);
	return bad ? -1 : 0;
}

int
sw_store_index_rem(struct sw_store_txn *t, const char *key, const char *member)
{
	return sw_store_txn_add(t, "ZREM", key, member, NULL);
}

int
sw_store_index_live(struct sw_store_txn *t, const char *key, long long now)
{
	char max[24], min[26];
	int bad = 0;

	snprintf(max, sizeof(max), "%lld", now);
	snprintf(min, sizeof(min), "(%lld", now);
	bad |= sw_store_txn_add(t, "ZREMRANGEBYSCORE", key, "-inf", max, NULL);
	bad |= sw_store_txn_add(t, "ZRANGEBYSCORE", key, min, "+inf", NULL);
	return bad ? -1 : 0;
}

const struct sw_reply *
sw_store_index_members(const struct sw_reply *r, size_t i)
{
	const struct sw_reply *m;

	if (r == NULL || r->type != SW_REPLY_ARRAY || i + 1 >= r->elements)
		return NULL;
	m = r->element[i + 1];
	if (m->type != SW_REPLY_ARRAY)
		return NULL;
	for (size_t j = 0; j < m->elements; j++)
		if (m->element[j]->type != SW_REPLY_STR)
			return NULL;
	return m;
}

/*
 * One block: the argv pointers, their lengths, then the keys back to back
 * (the store takes lengths, so no key needs a terminator or a fixed slot).
 */
int
sw_store_mget_prefixed(struct sw_store *st, const char *prefix, const char *const *members,
    size_t n, sw_store_cb *cb, void *arg)
{
	size_t plen = strlen(prefix), text = 0, *lens;
	const char **argv;
	char *p;
	int ret;

	if (n == 0 || n > (size_t)0x7fffffff - 1 || plen > KEY_MAX - MEMBER_MAX - 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t mlen = strlen(members[i]);

		if (mlen > MEMBER_MAX)
			return -1;
		text += plen + mlen;
	}
	if ((argv = malloc((n + 1) * (sizeof(*argv) + sizeof(*lens)) + text)) == NULL)
		return -1;
	lens = (size_t *)(void *)(argv + n + 1);
	p = (char *)(lens + n + 1);
	argv[0] = "MGET";
	lens[0] = 4;
	for (size_t i = 0; i < n; i++) {
		size_t mlen = strlen(members[i]);

		memcpy(p, prefix, plen);
		memcpy(p + plen, members[i], mlen);
		argv[i + 1] = p;
		lens[i + 1] = plen + mlen;
		p += plen + mlen;
	}
	ret = sw_store_cmdargv(st, cb, arg, (int)n + 1, argv, lens);
	free(argv);
	return ret;
}
