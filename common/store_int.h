/*
 * store_int: what store.c shares with its two backends, store_mem.c and
 * store_redis.c.  A store is a vtable plus the state both backends need
 * (the loop, the service name for logs, the error count).
 */
#ifndef SW_STORE_INT_H
#define SW_STORE_INT_H

#include <stddef.h>

#include "store.h"

/* One command of a transaction: argv[i] points into the same allocation. */
struct sw_store_argv {
	int argc;
	const char **argv;
	const size_t *argvlen;
};

struct sw_store_txn {
	int ncmd;
	int cap;
	int bad; /* an add failed: exec replies ERROR */
	struct sw_store_argv *cmd;
};

struct sw_store_ops {
	int (*cmd)(struct sw_store *st, sw_store_cb *cb, void *arg, int argc, const char **argv,
	    const size_t *argvlen);
	int (*txn)(struct sw_store *st, const struct sw_store_txn *t, sw_store_cb *cb, void *arg);
	int (*nonce)(struct sw_store *st, const char *key, unsigned long long expected,
	    sw_store_cb *cb, void *arg);
	int (*up)(const struct sw_store *st);
	void (*free)(struct sw_store *st);
};

struct sw_store {
	const struct sw_store_ops *ops;
	struct event_base *base;
	char *svc;
	unsigned long long errors;
	int is_redis;
	void *impl;
};

/* Every reply reaches the caller through here, so errors are counted once. */
void sw_store_deliver(struct sw_store *st, sw_store_cb *cb, void *arg,
    const struct sw_reply *reply);
/* The DOWN reply, shared. */
extern const struct sw_reply sw_store_reply_down;

int sw_store_mem_init(struct sw_store *st);
int sw_store_redis_init(struct sw_store *st, const char *url);

#endif
