/*
 * test_frpc: the framed JSON RPC of routing.md.  The frame codec on a
 * table of inputs; then calls between real dmsg clients through a
 * dmsg-discovery and dmsg-server from $SW_BUILD/bin: a result, an error
 * answer, a late answer, a key the server does not allow (closed unread),
 * no listener, a server that never answers (the caller's deadline), and
 * raw streams sending an oversize frame and a non-object, each answered
 * with an error and closed while the next request is served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "clock.h"
#include "crypto.h"
#include "dmsg_client.h"
#include "dmsg_wire.h"
#include "frpc.h"
#include "log.h"
#include "tests/lib/procs.h"
#include "tests/lib/rawrpc.h"
#include "tests/lib/testutil.h"

#define WAIT_MS  30000
#define RPC_PORT 136

/* ---------- frames ---------- */

static void
frame(uint8_t *buf, size_t *len, const char *json, uint32_t claim)
{
	size_t n = strlen(json);

	sw_put_u32(buf, claim != 0 ? claim : (uint32_t)n);
	memcpy(buf + 4, json, n);
	*len = 4 + n;
}

static void
test_frame_codec(void **state)
{
	static const struct {
		const char *json;
		uint32_t claim;     /* 0: the JSON's length */
		size_t cut;         /* bytes given (0: all) */
		enum frpc_frame want;
	} cases[] = {
		{"{\"method\":\"x\"}", 0, 0, FRPC_FRAME_OK},
		{"{\"a\":1}  \n", 0, 0, FRPC_FRAME_OK},
		{"{\"a\":1}", 0, 3, FRPC_FRAME_MORE},          /* header cut */
		{"{\"a\":1}", 0, 6, FRPC_FRAME_MORE},          /* body cut */
		{"{\"a\":1}", FRPC_MAX_FRAME + 1, 0, FRPC_FRAME_TOO_LONG},
		{"", 0, 0, FRPC_FRAME_TOO_LONG},               /* len 0 */
		{"[1,2]", 0, 0, FRPC_FRAME_BAD},
		{"{\"a\":1}xyz", 0, 0, FRPC_FRAME_BAD},        /* garbage after the object */
		{"{\"a\":", 0, 0, FRPC_FRAME_BAD},
		{"\"str\"", 0, 0, FRPC_FRAME_BAD},
	};
	uint8_t buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len, used = 0;
		cJSON *v = NULL;

		frame(buf, &len, cases[i].json, cases[i].claim);
		if (cases[i].cut != 0)
			len = cases[i].cut;
		assert_int_equal(frpc_frame_get(buf, len, &v, &used), cases[i].want);
		if (cases[i].want == FRPC_FRAME_OK) {
			assert_non_null(v);
			assert_int_equal(used, len);
		} else {
			assert_null(v);
		}
		cJSON_Delete(v);
	}
}

static void
test_frame_roundtrip(void **state)
{
	struct evbuffer *b = evbuffer_new();
	cJSON *v = cJSON_Parse("{\"method\":\"reserve_ids\",\"params\":{\"n\":3}}"), *back = NULL;
	size_t used = 0, len;
	uint8_t *p;

	(void)state;
	assert_int_equal(frpc_frame_put(b, v), 0);
	len = evbuffer_get_length(b);
	p = evbuffer_pullup(b, -1);
	assert_int_equal(sw_get_u32(p), len - 4);
	assert_int_equal(frpc_frame_get(p, len, &back, &used), FRPC_FRAME_OK);
	assert_true(cJSON_Compare(v, back, 1));
	cJSON_Delete(back);
	cJSON_Delete(v);
	evbuffer_free(b);
}

/* ---------- over dmsg ---------- */

static struct event_base *base;
static struct sw_test_proc disc, srv;

static int
group_setup(void **state)
{
	(void)state;
	return sw_test_relay_start(&base, &disc, &srv, 1);
}

static int
group_teardown(void **state)
{
	(void)state;
	sw_test_relay_stop(base, &disc, &srv, 1);
	return 0;
}

#define NPEERS 3 /* 0 serves, 1 is allowed, 2 is not */
static struct sw_keypair kps[NPEERS];
static struct dmsg_client *cs[NPEERS];

static int
all_registered(void *arg)
{
	(void)arg;
	for (int i = 0; i < NPEERS; i++)
		if (!dmsg_client_registered(cs[i]))
			return 0;
	return 1;
}

static void
peers_start(void)
{
	for (int i = 0; i < NPEERS; i++) {
		struct dmsg_client_opts o;

		memset(&o, 0, sizeof(o));
		o.discovery = disc.url;
		o.backoff_min_ms = 100;
		o.backoff_max_ms = 1000;
		sw_keypair_generate(&kps[i]);
		cs[i] = dmsg_client_new(base, &kps[i], &o, "test");
		assert_non_null(cs[i]);
		assert_int_equal(dmsg_client_start(cs[i]), 0);
	}
	assert_int_equal(sw_test_run_until_fn(base, all_registered, NULL, WAIT_MS), 0);
}

static void
peers_stop(void)
{
	for (int i = 0; i < NPEERS; i++)
		dmsg_client_free(cs[i]);
	sw_test_run_for(base, 50);
}

/* The server: echo, fail, answer late, or never. */
static int handled;
static struct frpc_req *held;        /* "never": kept to answer at the end */
static struct frpc_req *late;
static struct event *late_ev;

static int
allow_peer1(const uint8_t pk[SW_PK_LEN], void *arg)
{
	(void)arg;
	return memcmp(pk, kps[1].pk, SW_PK_LEN) == 0;
}

static void
late_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	frpc_reply(late, cJSON_CreateString("late"));
	late = NULL;
}

static void
handler(struct frpc_req *req, const char *method, const cJSON *params, void *arg)
{
	(void)arg;
	handled++;
	assert_memory_equal(frpc_req_pk(req), kps[1].pk, SW_PK_LEN);
	if (strcmp(method, "echo") == 0) {
		frpc_reply(req, params != NULL ? cJSON_Duplicate(params, 1) : NULL);
	} else if (strcmp(method, "late") == 0) {
		late = req;
		sw_timer_in(late_ev, 200);
	} else if (strcmp(method, "never") == 0) {
		held = req;
	} else {
		frpc_reply_error(req, "no such method: %s", method);
	}
}

struct outcome {
	int done;
	enum frpc_status status;
	char text[256];              /* the result printed, or the error */
};

static void
on_done(enum frpc_status status, const cJSON *result, const char *err, void *arg)
{
	struct outcome *o = arg;

	o->done = 1;
	o->status = status;
	if (status == FRPC_OK) {
		char *s = cJSON_PrintUnformatted(result);

		snprintf(o->text, sizeof(o->text), "%s", s != NULL ? s : "");
		free(s);
	} else {
		snprintf(o->text, sizeof(o->text), "%s", err);
	}
}

static void
call(int from, const char *method, const char *params, int timeout_ms, struct outcome *o)
{
	cJSON *p = params != NULL ? cJSON_Parse(params) : NULL;

	memset(o, 0, sizeof(*o));
	assert_non_null(frpc_call(base, cs[from], kps[0].pk, RPC_PORT, method, p, timeout_ms,
	    on_done, o, "test"));
	cJSON_Delete(p);
	assert_int_equal(sw_test_run_until(base, &o->done, WAIT_MS), 0);
}

/* Send bytes on a fresh stream; the error the server answered, "" if none. */
static void
raw_exchange(const uint8_t *bytes, size_t len, char *err, size_t errsz)
{
	assert_int_equal(sw_test_rawrpc(base, cs[1], kps[0].pk, RPC_PORT, bytes, len, WAIT_MS,
	    err, errsz), 1);
}

static void
test_calls(void **state)
{
	struct frpc_server *s;
	struct outcome o;
	long long t0;
	char err[128];
	uint8_t big[4 + 16];
	size_t n;

	(void)state;
	peers_start();
	late_ev = evtimer_new(base, late_fire, NULL);
	s = frpc_server_new(base, cs[0], RPC_PORT, allow_peer1, handler, NULL, "test");
	assert_non_null(s);
	assert_null(frpc_server_new(base, cs[0], RPC_PORT, NULL, handler, NULL, "test"));

	call(1, "echo", "{\"n\":3,\"ids\":[1,2]}", 5000, &o);
	assert_int_equal(o.status, FRPC_OK);
	assert_string_equal(o.text, "{\"n\":3,\"ids\":[1,2]}");

	call(1, "echo", NULL, 5000, &o); /* params absent: {} */
	assert_int_equal(o.status, FRPC_OK);
	assert_string_equal(o.text, "{}");

	call(1, "nope", NULL, 5000, &o);
	assert_int_equal(o.status, FRPC_REMOTE);
	assert_string_equal(o.text, "no such method: nope");

	call(1, "late", NULL, 5000, &o);
	assert_int_equal(o.status, FRPC_OK);
	assert_string_equal(o.text, "\"late\"");

	/* A key the server does not allow: closed before a byte is read. */
	handled = 0;
	call(2, "echo", NULL, 5000, &o);
	assert_int_equal(o.status, FRPC_CLOSED);
	assert_int_equal(handled, 0);

	/* Nobody listens on that port. */
	memset(&o, 0, sizeof(o));
	assert_non_null(frpc_call(base, cs[1], kps[0].pk, RPC_PORT + 1, "echo", NULL, 5000,
	    on_done, &o, "test"));
	assert_int_equal(sw_test_run_until(base, &o.done, WAIT_MS), 0);
	assert_int_equal(o.status, FRPC_UNREACHABLE);

	/* A server that never answers: the caller's deadline ends it. */
	t0 = sw_mono_ms();
	call(1, "never", NULL, 500, &o);
	assert_int_equal(o.status, FRPC_TIMEOUT);
	assert_true(sw_mono_ms() - t0 >= 450 && sw_mono_ms() - t0 < 5000);
	assert_non_null(held);
	frpc_reply(held, NULL); /* the asker is gone: dropped, freed */
	held = NULL;

	/* An oversize frame: refused from its header, answered, closed. */
	handled = 0;
	sw_put_u32(big, FRPC_MAX_FRAME + 1);
	memset(big + 4, '{', 16);
	raw_exchange(big, sizeof(big), err, sizeof(err));
	assert_string_equal(err, "frame too long");
	/* Not an object. */
	n = 4 + 5;
	sw_put_u32(big, 5);
	memcpy(big + 4, "[1,2]", 5);
	raw_exchange(big, n, err, sizeof(err));
	assert_string_equal(err, "frame is not a JSON object");
	assert_int_equal(handled, 0);
	/* And the next request is served. */
	call(1, "echo", "{\"ok\":true}", 5000, &o);
	assert_int_equal(o.status, FRPC_OK);

	frpc_server_free(s);
	event_free(late_ev);
	peers_stop();
}

static int
conns_n(void *arg)
{
	const struct frpc_server *s = arg;

	return frpc_server_conns(s) == 1;
}

static int
conns_0(void *arg)
{
	return frpc_server_conns(arg) == 0;
}

static int
ahead_open(void *arg)
{
	return frpc_call_ahead_state(arg) == 1;
}

static int
ahead_gone(void *arg)
{
	return frpc_call_ahead_state(arg) == -1;
}

/*
 * A call in two steps (frpc_call_open, then frpc_call_ask): the stream
 * opened ahead carries nothing until the ask; asked while still dialling
 * or once open, it is answered as frpc_call is; a stream that could not be
 * opened ahead (nobody listened yet) is dialled again by the ask; one
 * cancelled before the ask calls nothing back and leaves no stream.
 */
static void
test_open_ahead(void **state)
{
	struct frpc_server *s;
	struct frpc_call *c;
	struct outcome o;
	cJSON *p = cJSON_Parse("{\"x\":1}");

	(void)state;
	peers_start();
	s = frpc_server_new(base, cs[0], RPC_PORT, allow_peer1, handler, NULL, "test");
	assert_non_null(s);
	/* asked at once, while the dial is under way */
	memset(&o, 0, sizeof(o));
	c = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_non_null(c);
	assert_int_equal(frpc_call_ask(c, "echo", p, 5000, on_done, &o), 0);
	assert_int_equal(frpc_call_ask(c, "echo", p, 5000, on_done, &o), -1); /* once */
	assert_int_equal(sw_test_run_until(base, &o.done, WAIT_MS), 0);
	assert_int_equal(o.status, FRPC_OK);
	assert_string_equal(o.text, "{\"x\":1}");
	/* asked once the stream is open at the server, which has read nothing */
	handled = 0;
	assert_int_equal(sw_test_run_until_fn(base, conns_0, s, WAIT_MS), 0);
	memset(&o, 0, sizeof(o));
	c = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_non_null(c);
	assert_int_equal(sw_test_run_until_fn(base, conns_n, s, WAIT_MS), 0);
	assert_int_equal(handled, 0);
	assert_int_equal(sw_test_run_until_fn(base, ahead_open, c, WAIT_MS), 0);
	assert_int_equal(frpc_call_ask(c, "echo", p, 5000, on_done, &o), 0);
	assert_false(o.done); /* never from inside the ask */
	assert_int_equal(sw_test_run_until(base, &o.done, WAIT_MS), 0);
	assert_int_equal(o.status, FRPC_OK);
	assert_int_equal(handled, 1);
	/* cancelled before the ask: the server's stream goes, unread */
	assert_int_equal(sw_test_run_until_fn(base, conns_0, s, WAIT_MS), 0);
	c = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_int_equal(sw_test_run_until_fn(base, conns_n, s, WAIT_MS), 0);
	frpc_call_cancel(c);
	assert_int_equal(sw_test_run_until_fn(base, conns_0, s, WAIT_MS), 0);
	assert_int_equal(handled, 1);
	frpc_server_free(s);
	/* opened ahead while nobody listens (REJECT 2), asked once someone does */
	c = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_non_null(c);
	assert_int_equal(frpc_call_ahead_state(c), 0);
	assert_int_equal(sw_test_run_until_fn(base, ahead_gone, c, WAIT_MS), 0);
	s = frpc_server_new(base, cs[0], RPC_PORT, allow_peer1, handler, NULL, "test");
	memset(&o, 0, sizeof(o));
	assert_int_equal(frpc_call_ask(c, "echo", p, 5000, on_done, &o), 0);
	assert_int_equal(sw_test_run_until(base, &o.done, WAIT_MS), 0);
	assert_int_equal(o.status, FRPC_OK);
	assert_int_equal(handled, 2);
	frpc_server_free(s);
	cJSON_Delete(p);
	peers_stop();
}

struct conns_want {
	const struct frpc_server *s[2];
	size_t n[2];
};

static int
conns_are(void *arg)
{
	struct conns_want *w = arg;

	for (int i = 0; i < 2; i++)
		if (w->s[i] != NULL && frpc_server_conns(w->s[i]) != w->n[i])
			return 0;
	return 1;
}

static void
wait_conns(const struct frpc_server *a, size_t na, const struct frpc_server *b, size_t nb)
{
	struct conns_want w = {{a, b}, {na, nb}};

	assert_int_equal(sw_test_run_until_fn(base, conns_are, &w, WAIT_MS), 0);
}

/*
 * The pool: a fill opens per_peer streams (nothing read by the server);
 * takes hand them out open, then a fresh one; a second peer past
 * max_peers (1 here) pushes the first out, its streams closed; freeing
 * the pool closes the rest.
 */
static void
test_pool(void **state)
{
	struct frpc_server *s, *s2;
	struct frpc_pool *pool;
	struct frpc_call *c, *c2, *c3;
	struct outcome o;

	(void)state;
	peers_start();
	handled = 0;
	s = frpc_server_new(base, cs[0], RPC_PORT, allow_peer1, handler, NULL, "test");
	s2 = frpc_server_new(base, cs[2], RPC_PORT, allow_peer1, handler, NULL, "test");
	assert_non_null(s);
	assert_non_null(s2);
	assert_null(frpc_pool_new(base, cs[1], RPC_PORT, 5, 1, 5000, "test"));
	pool = frpc_pool_new(base, cs[1], RPC_PORT, 2, 1, 5000, "test");
	assert_non_null(pool);
	frpc_pool_fill(pool, kps[0].pk);
	wait_conns(s, 2, NULL, 0);
	c = frpc_pool_take(pool, kps[0].pk);
	assert_non_null(c);
	assert_int_equal(sw_test_run_until_fn(base, ahead_open, c, WAIT_MS), 0);
	memset(&o, 0, sizeof(o));
	assert_int_equal(frpc_call_ask(c, "echo", NULL, 5000, on_done, &o), 0);
	assert_int_equal(sw_test_run_until(base, &o.done, WAIT_MS), 0);
	assert_int_equal(o.status, FRPC_OK);
	assert_int_equal(handled, 1);
	c2 = frpc_pool_take(pool, kps[0].pk);
	assert_non_null(c2);
	assert_int_equal(frpc_call_ahead_state(c2), 1); /* opened with the first */
	c3 = frpc_pool_take(pool, kps[0].pk);           /* none left: a fresh dial */
	assert_non_null(c3);
	assert_int_equal(frpc_call_ahead_state(c3), 0);
	frpc_call_cancel(c2);
	frpc_call_cancel(c3);
	wait_conns(s, 0, NULL, 0);
	/* bounded: a second peer pushes the first out */
	frpc_pool_fill(pool, kps[0].pk);
	wait_conns(s, 2, NULL, 0);
	frpc_pool_fill(pool, kps[2].pk);
	wait_conns(s, 0, s2, 2);
	frpc_pool_free(pool);
	wait_conns(s, 0, s2, 0);
	assert_int_equal(handled, 1);
	frpc_server_free(s);
	frpc_server_free(s2);
	peers_stop();
}

static int
is_held(void *arg)
{
	(void)arg;
	return held != NULL;
}

/*
 * At its stream cap a server closes the stream silent the longest (one
 * opened ahead) to take a new one; a stream whose request it is answering
 * is kept.
 */
static void
test_silent_make_room(void **state)
{
	struct frpc_server *s;
	struct frpc_call *a, *b, *asked;
	struct outcome o;

	(void)state;
	peers_start();
	held = NULL;
	s = frpc_server_new(base, cs[0], RPC_PORT, allow_peer1, handler, NULL, "test");
	assert_non_null(s);
	frpc_server_set_max_conns(s, 2);
	memset(&o, 0, sizeof(o));
	asked = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_non_null(asked);
	assert_int_equal(frpc_call_ask(asked, "never", NULL, 5000, on_done, &o), 0);
	assert_int_equal(sw_test_run_until_fn(base, is_held, NULL, WAIT_MS), 0);
	a = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_non_null(a);
	assert_int_equal(sw_test_run_until_fn(base, ahead_open, a, WAIT_MS), 0);
	assert_int_equal(frpc_server_conns(s), 2);
	/* a third: a (silent) makes room, the one being answered stays */
	b = frpc_call_open(base, cs[1], kps[0].pk, RPC_PORT, 5000, "test");
	assert_non_null(b);
	assert_int_equal(sw_test_run_until_fn(base, ahead_open, b, WAIT_MS), 0);
	assert_int_equal(sw_test_run_until_fn(base, ahead_gone, a, WAIT_MS), 0);
	assert_int_equal(frpc_server_conns(s), 2);
	assert_false(o.done);
	frpc_reply(held, cJSON_CreateString("kept"));
	held = NULL;
	assert_int_equal(sw_test_run_until(base, &o.done, WAIT_MS), 0);
	assert_int_equal(o.status, FRPC_OK);
	assert_string_equal(o.text, "\"kept\"");
	frpc_call_cancel(a);
	frpc_call_cancel(b);
	frpc_server_free(s);
	peers_stop();
}

int
main(void)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_frame_codec),
		cmocka_unit_test(test_frame_roundtrip),
	};
	const struct CMUnitTest net[] = {
		cmocka_unit_test(test_calls),
		cmocka_unit_test(test_open_ahead),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_silent_make_room),
	};
	int failed = cmocka_run_group_tests_name("frpc frames", unit, NULL, NULL);

	return failed + cmocka_run_group_tests_name("frpc over dmsg", net, group_setup,
	    group_teardown);
}
