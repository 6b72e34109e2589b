/*
 * store: the public face of the store; it checks the arguments, collects
 * variadic calls into argv form and hands every call to the backend chosen
 * by the URL (store_mem.c or store_redis.c).  Transactions are built here,
 * so both backends see the same copied argv.
 */
#include "store.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_int.h"

/* Variadic calls with more strings than this are a bug, not a use. */
#define STORE_MAX_VARARGS 1024

const struct sw_reply sw_store_reply_down = {
	.type = SW_REPLY_DOWN,
	.str = "store unavailable",
	.len = sizeof("store unavailable") - 1,
};

struct sw_store *
sw_store_new(struct event_base *base, const char *url, const char *svc)
{
	struct sw_store *st = NULL;

	if (base == NULL)
		goto fail;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		goto fail;
	st->base = base;
	if ((st->svc = strdup(svc != NULL ? svc : "store")) == NULL)
		goto fail;
	if (url == NULL || *url == '\0') {
		if (sw_store_mem_init(st) == -1)
			goto fail;
	} else {
		st->is_redis = 1;
		if (sw_store_redis_init(st, url) == -1)
			goto fail;
	}
	return st;
fail:
	sw_log_error(svc, "store init failed", NULL);
	if (st != NULL)
		free(st->svc);
	free(st);
	return NULL;
}

void
sw_store_free(struct sw_store *st)
{
	if (st == NULL)
		return;
	st->ops->free(st);
	free(st->svc);
	free(st);
}

int
sw_store_up(const struct sw_store *st)
{
	return st->ops->up(st);
}

int
sw_store_is_redis(const struct sw_store *st)
{
	return st->is_redis;
}

unsigned long long
sw_store_errors(const struct sw_store *st)
{
	return st->errors;
}

void
sw_store_deliver(struct sw_store *st, sw_store_cb *cb, void *arg, const struct sw_reply *reply)
{
	if (reply->type == SW_REPLY_DOWN || reply->type == SW_REPLY_ERROR)
		st->errors++;
	if (cb != NULL)
		cb(reply, arg);
}

static int
store_argv_ok(int argc, const char **argv)
{
	int i;

	if (argc < 1 || argv == NULL)
		return 0;
	for (i = 0; i < argc; i++)
		if (argv[i] == NULL)
			return 0;
	return 1;
}

int
sw_store_cmdargv(struct sw_store *st, sw_store_cb *cb, void *arg, int argc, const char **argv,
    const size_t *argvlen)
{
	if (st == NULL || !store_argv_ok(argc, argv))
		return -1;
	return st->ops->cmd(st, cb, arg, argc, argv, argvlen);
}

/* Collects the NULL-terminated strings of ap into a malloc'ed argv. */
static int
store_collect(va_list ap, const char ***out)
{
	va_list aq;
	const char **argv;
	int n = 0, i;

	va_copy(aq, ap);
	while (va_arg(aq, const char *) != NULL) {
		if (++n > STORE_MAX_VARARGS) {
			va_end(aq);
			return -1;
		}
	}
	va_end(aq);
	if (n == 0 || (argv = malloc(n * sizeof(*argv))) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		argv[i] = va_arg(ap, const char *);
	*out = argv;
	return n;
}

int
sw_store_cmd(struct sw_store *st, sw_store_cb *cb, void *arg, ...)
{
	const char **argv;
	va_list ap;
	int argc, ret;

	va_start(ap, arg);
	argc = store_collect(ap, &argv);
	va_end(ap);
	if (argc == -1)
		return -1;
	ret = sw_store_cmdargv(st, cb, arg, argc, argv, NULL);
	free(argv);
	return ret;
}

struct sw_store_txn *
sw_store_txn_new(void)
{
	return calloc(1, sizeof(struct sw_store_txn));
}

void
sw_store_txn_free(struct sw_store_txn *t)
{
	int i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncmd; i++)
		free(t->cmd[i].argv);
	free(t->cmd);
	free(t);
}

/* One allocation per command: the pointers, the lengths, then the bytes. */
int
sw_store_txn_addargv(struct sw_store_txn *t, int argc, const char **argv, const size_t *argvlen)
{
	struct sw_store_argv *c, *ncmd;
	size_t total = 0, len, off, *lens;
	char *p, *bytes;
	int i;

	if (t == NULL)
		return -1;
	if (!store_argv_ok(argc, argv))
		goto fail;
	for (i = 0; i < argc; i++) {
		len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
		if (len > SIZE_MAX / 2 - total)
			goto fail;
		total += len + 1;
	}
	if (t->ncmd == t->cap) {
		if (t->cap > INT_MAX / 2)
			goto fail;
		ncmd = realloc(t->cmd, (t->cap ? t->cap * 2 : 4) * sizeof(*ncmd));
		if (ncmd == NULL)
			goto fail;
		t->cmd = ncmd;
		t->cap = t->cap ? t->cap * 2 : 4;
	}
	off = argc * (sizeof(char *) + sizeof(size_t));
	if ((p = malloc(off + total)) == NULL)
		goto fail;
	c = &t->cmd[t->ncmd++];
	c->argc = argc;
	c->argv = (const char **)p;
	lens = (size_t *)(p + argc * sizeof(char *));
	c->argvlen = lens;
	bytes = p + off;
	for (i = 0; i < argc; i++) {
		len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
		memcpy(bytes, argv[i], len);
		bytes[len] = '\0';
		c->argv[i] = bytes;
		lens[i] = len;
		bytes += len + 1;
	}
	return 0;
fail:
	/* exec must not run a transaction with a command missing */
	t->bad = 1;
	return -1;
}

int
sw_store_unavailable(const struct sw_reply *r)
{
	/* The error codes redis gives while it cannot serve (its own first words). */
	static const char *const busy[] = {"LOADING", "BUSY", "MASTERDOWN", "MISCONF",
	    "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "OOM", "EXECABORT",
	    "NOAUTH", "NOPERM", "SHUTDOWN"};

	if (r->type == SW_REPLY_DOWN)
		return 1;
	if (r->type != SW_REPLY_ERROR || r->str == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++) {
		size_t n = strlen(busy[i]);

		if (r->len >= n && strncmp(r->str, busy[i], n) == 0 &&
		    (r->len == n || r->str[n] == ' '))
			return 1;
	}
	return 0;
}

int
sw_store_txn_add(struct sw_store_txn *t, ...)
{
	const char **argv;
	va_list ap;
	int argc, ret;

	va_start(ap, t);
	argc = store_collect(ap, &argv);
	va_end(ap);
	if (argc == -1) {
		if (t != NULL)
			t->bad = 1;
		return -1;
	}
	ret = sw_store_txn_addargv(t, argc, argv, NULL);
	free(argv);
	return ret;
}

int
sw_store_txn_exec(struct sw_store *st, struct sw_store_txn *t, sw_store_cb *cb, void *arg)
{
	int ret = -1;

	if (st == NULL || t == NULL || t->bad)
		goto done;
	ret = st->ops->txn(st, t, cb, arg);
done:
	sw_store_txn_free(t);
	return ret;
}

int
sw_store_nonce_take(struct sw_store *st, const char *key, unsigned long long expected,
    sw_store_cb *cb, void *arg)
{
	if (st == NULL || key == NULL)
		return -1;
	return st->ops->nonce(st, key, expected, cb, arg);
}
