/*
 * svc_api's guarded write (sw_api_write) and store-failure answers, over
 * real HTTP on loopback with the embedded store: decide refuses or lets
 * through, committed runs only after the transaction succeeded, one write
 * per key at a time (409 busy), a store that cannot serve is 503 (down,
 * LOADING), a bad command or an unsendable call 500, and the write's state
 * is freed exactly once whatever happens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dict.h"
#include "http.h"
#include "service.h"
#include "store.h"
#include "svc_api.h"
#include "tests/lib/testutil.h"

#define WAIT_MS 5000

static struct event_base *base;
static struct sw_supervisor *sup;
static struct sw_svc *svc;
static struct sw_store *st;
static struct sw_http_server *srv;
static struct sw_http_client *cli;
static struct sw_dict *writing;
static char url[64];

static int frees, commits, allocs;

/* A read held back by the test (key "slow"): its callback, to run later. */
static sw_store_cb *held_cb;
static void *held_arg;
/* What the read of key "fail" answers. */
static struct sw_reply fail_reply;

struct w {
	char key[32];
	char body[64];
	int had_old;
};

static void
w_free(void *v)
{
	frees++;
	free(v);
}

static void
deliver_fail(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	held_cb(&fail_reply, arg);
}

static int
w_read(void *v, sw_store_cb *cb, void *arg)
{
	struct w *w = v;
	char key[64];

	if (strcmp(w->key, "slow") == 0) {
		held_cb = cb;
		held_arg = arg;
		return 0;
	}
	if (strcmp(w->key, "fail") == 0) {
		held_cb = cb;
		return event_base_once(base, -1, EV_TIMEOUT, deliver_fail, arg, NULL);
	}
	snprintf(key, sizeof(key), "r:%s", w->key);
	return sw_store_cmd(st, cb, arg, "GET", key, NULL);
}

static int
w_decide(void *v, struct sw_http_req *req, const struct sw_reply *old)
{
	struct w *w = v;

	w->had_old = old->type == SW_REPLY_STR;
	if (strcmp(w->body, "refuse") == 0 || (w->had_old && strcmp(w->body, "new-only") == 0)) {
		sw_http_error(req, 409, "refused");
		return -1;
	}
	return 0;
}

static int
w_txn(void *v, sw_store_cb *cb, void *arg)
{
	struct w *w = v;
	struct sw_store_txn *t;
	char key[64];

	if (strcmp(w->body, "unsent") == 0)
		return -1;
	t = sw_store_txn_new();
	snprintf(key, sizeof(key), "r:%s", w->key);
	sw_store_txn_add(t, "SET", key, w->body, NULL);
	/* a command that fails inside the transaction, after the SET ran */
	if (strcmp(w->body, "half") == 0)
		sw_store_txn_add(t, "ZADD", key, "1", "m", NULL);
	return sw_store_txn_exec(st, t, cb, arg);
}

static void
w_committed(void *v, struct sw_http_req *req, const struct sw_reply *r)
{
	struct w *w = v;

	(void)r;
	commits++;
	sw_http_reply_raw(req, w->had_old ? 200 : 201, "application/json", "{}", 2);
}

static const struct sw_api_write_ops ops = {
	.read = w_read,
	.decide = w_decide,
	.txn = w_txn,
	.committed = w_committed,
	.free = w_free,
};

static void
post(struct sw_http_req *req, void *arg)
{
	struct w *w = calloc(1, sizeof(*w));
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);

	(void)arg;
	allocs++;
	snprintf(w->key, sizeof(w->key), "%s", sw_http_req_param(req, "k"));
	snprintf(w->body, sizeof(w->body), "%.*s", (int)len, (const char *)body);
	sw_api_write(svc, st, req, &ops, w, writing, w->key, strlen(w->key), "busy");
}

struct call {
	int done;
	int status;
	char body[256];
};

static void
call_done(const struct sw_http_resp *resp, void *arg)
{
	struct call *c = arg;

	c->status = resp->status;
	snprintf(c->body, sizeof(c->body), "%s", resp->body != NULL ? resp->body : "");
	c->done = 1;
}

static void
send_post(struct call *c, const char *key, const char *body)
{
	char u[128];

	memset(c, 0, sizeof(*c));
	snprintf(u, sizeof(u), "%s/w/%s", url, key);
	assert_int_equal(sw_http_request(cli, "POST", u, body, strlen(body), NULL, call_done, c),
	    0);
}

static int
do_post(const char *key, const char *body)
{
	struct call c;

	send_post(&c, key, body);
	assert_int_equal(sw_test_run_until(base, &c.done, WAIT_MS), 0);
	return c.status;
}


static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	svc = sw_test_svc(base, "svc-api-test", &sup);
	st = sw_svc_store(svc);
	srv = sw_http_server_new(base, "svc-api-test", NULL);
	writing = sw_dict_new(NULL);
	cli = sw_http_client_new(base, "test");
	if (svc == NULL || srv == NULL || writing == NULL || cli == NULL ||
	    sw_http_route(srv, "POST", "/w/{k}", post, NULL) == -1 ||
	    sw_http_server_listen(srv, "127.0.0.1:0") == -1)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", sw_http_server_port(srv));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sw_http_client_free(cli);
	sw_http_server_free(srv);
	sw_dict_free(writing);
	sw_supervisor_free(sup);
	event_base_free(base);
	return 0;
}

static void
test_create_update_refuse(void **state)
{
	(void)state;
	commits = 0;
	assert_int_equal(do_post("a", "one"), 201);
	assert_int_equal(do_post("a", "two"), 200);
	assert_int_equal(commits, 2);
	/* decide refuses: 409, nothing committed. */
	assert_int_equal(do_post("a", "refuse"), 409);
	assert_int_equal(do_post("a", "new-only"), 409);
	assert_int_equal(do_post("b", "new-only"), 201);
	assert_int_equal(commits, 3);
	assert_int_equal(frees, allocs);
}

static int
is_held(void *arg)
{
	(void)arg;
	return held_cb != NULL;
}

static void
test_one_write_per_key(void **state)
{
	static const struct sw_reply nil = {.type = SW_REPLY_NIL};
	struct call first, second;

	(void)state;
	held_cb = NULL;
	commits = 0;
	send_post(&first, "slow", "x");
	assert_int_equal(sw_test_run_until_fn(base, is_held, NULL, WAIT_MS), 0);
	/* The first write holds "slow" while its read is out: a second one is refused. */
	send_post(&second, "slow", "y");
	assert_int_equal(sw_test_run_until(base, &second.done, WAIT_MS), 0);
	assert_int_equal(second.status, 409);
	assert_non_null(strstr(second.body, "busy"));
	/* Another key is not held up. */
	assert_int_equal(do_post("other", "z"), 201);
	held_cb(&nil, held_arg);
	assert_int_equal(sw_test_run_until(base, &first.done, WAIT_MS), 0);
	assert_int_equal(first.status, 201);
	assert_int_equal(commits, 2);
	assert_int_equal(frees, allocs);
}

static void
test_store_failures(void **state)
{
	(void)state;
	commits = 0;
	fail_reply = (struct sw_reply){.type = SW_REPLY_DOWN, .str = "store unavailable",
	    .len = 17};
	assert_int_equal(do_post("fail", "x"), 503);
	fail_reply = (struct sw_reply){.type = SW_REPLY_ERROR,
	    .str = "LOADING Redis is loading the dataset in memory", .len = 46};
	assert_int_equal(do_post("fail", "x"), 503);
	fail_reply = (struct sw_reply){.type = SW_REPLY_ERROR,
	    .str = "WRONGTYPE Operation against a key holding the wrong kind of value", .len = 65};
	assert_int_equal(do_post("fail", "x"), 500);
	/* The transaction cannot be sent. */
	assert_int_equal(do_post("c", "unsent"), 500);
	/* One of its commands fails at EXEC: the write is not acknowledged. */
	assert_int_equal(do_post("d", "half"), 500);
	assert_int_equal(commits, 0);
	assert_int_equal(frees, allocs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_update_refuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_write_per_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failures, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
