/*
 * test_relay: the dmsg relay in-process, on a free port of the test's event
 * base, spoken to by raw clients built on dmsg_session: handshakes good and
 * bad, every REJECT the server sends or relays, ACCEPT checking, DATA,
 * WINDOW, CLOSE and RESET relay, window enforcement, backpressure,
 * max_sessions, session replacement, fuzzing, and GET /sessions.
 *
 * Nothing waits for a fixed time: each step runs the loop until a condition
 * holds, with a deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "crypto.h"
#include "dmsg-server/dmsg_server.h"
#include "dmsg_session.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"
#include "noise.h"
#include "tests/lib/testutil.h"

#define WAIT_MS 3000
#define NTYPES  16
#define NSID    16

struct cli {
	struct sw_keypair kp;
	struct dmsg_session *s;
	int ready;
	int closed;
	int cnt[NTYPES];
	uint32_t last_sid[NTYPES];
	size_t last_len[NTYPES];
	uint8_t last[NTYPES][512];
	unsigned long long data_bytes;
	unsigned long long credit[NSID]; /* initial window + WINDOW grants, per stream id */
	int auto_accept;
	int auto_grant;                  /* grant back every DATA byte at once (a fast reader) */
};

static struct event_base *base;
static struct ds_relay *relay;
static struct sw_keypair server_kp;
static int port;
static struct cli A, B, C;
static struct ds_opts opts;

static long long
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- requests and responses ---------- */

/* A StreamRequest from kp claiming src_pk, to dst, with a timestamp offset. */
static int
make_req(uint8_t *out, size_t cap, const struct sw_keypair *signer, const uint8_t *src_pk,
    const uint8_t *dst_pk, long long ts_off_ms, uint16_t src_port, uint16_t dst_port)
{
	struct dmsg_stream_req r;
	uint8_t noise[48];
	struct sw_keypair k = *signer;

	memset(&r, 0, sizeof(r));
	randombytes_buf(noise, sizeof(noise));
	r.timestamp_ms = (uint64_t)(wall_ms() + ts_off_ms);
	memcpy(r.src_pk, src_pk, SW_PK_LEN);
	memcpy(k.pk, src_pk, SW_PK_LEN); /* encode checks src_pk against kp->pk */
	r.src_port = src_port;
	memcpy(r.dst_pk, dst_pk, SW_PK_LEN);
	r.dst_port = dst_port;
	r.noise_len = sizeof(noise);
	r.noise_msg = noise;
	return dmsg_stream_req_encode(&r, &k, out, cap);
}

static int
make_resp(uint8_t *out, size_t cap, const struct sw_keypair *signer, const uint8_t *req,
    size_t reqlen)
{
	struct dmsg_stream_resp r;
	uint8_t noise[48];

	memset(&r, 0, sizeof(r));
	randombytes_buf(noise, sizeof(noise));
	sw_hash(r.req_hash, req, reqlen);
	r.noise_len = sizeof(noise);
	r.noise_msg = noise;
	return dmsg_stream_resp_encode(&r, signer, out, cap);
}

/* ---------- clients ---------- */

static void
cli_ready(struct dmsg_session *s, void *arg)
{
	struct cli *c = arg;

	(void)s;
	c->ready = 1;
}

static void
cli_frame(struct dmsg_session *s, uint8_t type, uint32_t sid, const uint8_t *p, size_t len,
    void *arg)
{
	struct cli *c = arg;
	uint8_t resp[256];
	int n;

	c->cnt[type]++;
	c->last_sid[type] = sid;
	c->last_len[type] = len;
	memcpy(c->last[type], p, len < sizeof(c->last[type]) ? len : sizeof(c->last[type]));
	if (type == DMSG_DATA)
		c->data_bytes += len;
	if (type == DMSG_WINDOW && sid < NSID && len == 4)
		c->credit[sid] += sw_get_u32(p);
	if (type == DMSG_DATA && c->auto_grant) {
		uint8_t w[4];

		sw_put_u32(w, (uint32_t)len);
		dmsg_session_send(s, DMSG_WINDOW, sid, w, sizeof(w));
	}
	if (type == DMSG_OPEN && c->auto_accept &&
	    (n = make_resp(resp, sizeof(resp), &c->kp, p, len)) > 0)
		dmsg_session_send(s, DMSG_ACCEPT, sid, resp, (size_t)n);
}

static void
cli_closed(struct dmsg_session *s, const char *reason, void *arg)
{
	struct cli *c = arg;

	(void)s;
	(void)reason;
	c->closed = 1;
}

static const struct dmsg_session_cbs cli_cbs = {cli_ready, cli_frame, cli_closed, NULL};

static struct bufferevent *
connect_bev(void)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct sockaddr_in sin;

	assert_non_null(bev);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return bev;
}

static void
cli_start(struct cli *c, const uint8_t *server_pk)
{
	dmsg_session_free(c->s);
	c->s = NULL;
	c->ready = c->closed = 0;
	memset(c->cnt, 0, sizeof(c->cnt));
	c->data_bytes = 0;
	for (int i = 0; i < NSID; i++)
		c->credit[i] = DMSG_INITIAL_WINDOW;
	c->s = dmsg_session_new(base, connect_bev(), 1, &c->kp, server_pk, &cli_cbs, c, NULL,
	    "test-client");
	assert_non_null(c->s);
}

static int
cli_up(void *arg)
{
	struct cli *c = arg;

	return c->ready || c->closed;
}

/* Connect and wait for the server to have registered the session. */
static int
registered(void *arg)
{
	const struct cli *c = arg;

	return c->closed || ds_relay_has_session(relay, c->kp.pk);
}

static void
cli_connect(struct cli *c)
{
	cli_start(c, server_kp.pk);
	assert_int_equal(sw_test_run_until_fn(base, cli_up, c, WAIT_MS), 0);
	assert_true(c->ready);
	assert_false(c->closed);
	/* The server registers on reading message 3, after our ready. */
	assert_int_equal(sw_test_run_until_fn(base, registered, c, WAIT_MS), 0);
	assert_false(c->closed);
}

struct want {
	const struct cli *c;
	int type;
	int n;
};

static int
got(void *arg)
{
	const struct want *w = arg;

	return w->c->cnt[w->type] >= w->n;
}

static void
wait_frame(const struct cli *c, int type, int n)
{
	struct want w = {c, type, n};

	if (sw_test_run_until_fn(base, got, &w, WAIT_MS) != 0)
		fail_msg("no frame type %d (have %d, want %d)", type, c->cnt[type], n);
}

static void
wait_closed(const struct cli *c)
{
	assert_int_equal(sw_test_run_until(base, &c->closed, WAIT_MS), 0);
}

/* ---------- fixture ---------- */

static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	if (base == NULL)
		return -1;
	relay = ds_relay_new(base, "dmsg-server-test", &server_kp, &opts, NULL);
	if (relay == NULL || ds_relay_listen(relay, "127.0.0.1:0") == -1)
		return -1;
	port = ds_relay_port(relay);
	dmsg_session_free(A.s);
	dmsg_session_free(B.s);
	dmsg_session_free(C.s);
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	memset(&C, 0, sizeof(C));
	sw_keypair_generate(&A.kp);
	sw_keypair_generate(&B.kp);
	sw_keypair_generate(&C.kp);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	dmsg_session_free(A.s);
	dmsg_session_free(B.s);
	dmsg_session_free(C.s);
	A.s = B.s = C.s = NULL;
	ds_relay_free(relay);
	relay = NULL;
	event_base_free(base);
	base = NULL;
	return 0;
}

/* A raw TCP client that the test drives byte by byte. */
struct raw {
	struct bufferevent *bev;
	int eof;
};

static void
raw_event(struct bufferevent *bev, short what, void *arg)
{
	struct raw *r = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		r->eof = 1;
}

static void
raw_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
raw_open(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	r->bev = connect_bev();
	bufferevent_setcb(r->bev, raw_read, NULL, raw_event, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

/* The server must hang up on this raw client. */
static void
raw_expect_hangup(struct raw *r)
{
	assert_int_equal(sw_test_run_until(base, &r->eof, WAIT_MS), 0);
	bufferevent_free(r->bev);
	r->bev = NULL;
}

static void
still_serves(void)
{
	struct cli d;
	uint8_t req[512];
	int n;

	memset(&d, 0, sizeof(d));
	sw_keypair_generate(&d.kp);
	cli_connect(&d);
	/* And relays a stream to itself, end to end. */
	d.auto_accept = 1;
	n = make_req(req, sizeof(req), &d.kp, d.kp.pk, d.kp.pk, 0, 50000, 45);
	assert_int_equal(dmsg_session_send(d.s, DMSG_OPEN, 1, req, (size_t)n), 0);
	wait_frame(&d, DMSG_ACCEPT, 1);
	assert_int_equal(d.last_sid[DMSG_ACCEPT], 1);
	dmsg_session_free(d.s);
}

/* ---------- handshakes ---------- */

static void
test_handshake_good(void **state)
{
	(void)state;
	cli_connect(&A);
	assert_int_equal(ds_relay_sessions(relay), 1);
	assert_memory_equal(dmsg_session_remote_pk(A.s), server_kp.pk, SW_PK_LEN);
}

static void
test_handshake_wrong_key(void **state)
{
	struct sw_keypair other;

	(void)state;
	sw_keypair_generate(&other);
	cli_start(&A, other.pk);
	wait_closed(&A);
	assert_false(A.ready);
	assert_int_equal(ds_relay_sessions(relay), 0);
	still_serves();
}

static void
test_handshake_truncated_garbage_stall(void **state)
{
	struct raw r;
	uint8_t junk[300];

	(void)state;
	/* Message 1 cut short, then the client goes quiet: the deadline ends it. */
	raw_open(&r);
	bufferevent_write(r.bev, "\x00\x30", 2);
	bufferevent_write(r.bev, junk, 20);
	raw_expect_hangup(&r);
	/* Garbage: a length that no handshake message has. */
	randombytes_buf(junk, sizeof(junk));
	junk[0] = 0xff;
	raw_open(&r);
	bufferevent_write(r.bev, junk, sizeof(junk));
	raw_expect_hangup(&r);
	/* Garbage of the right length. */
	randombytes_buf(junk, sizeof(junk));
	junk[0] = 0;
	junk[1] = 48;
	raw_open(&r);
	bufferevent_write(r.bev, junk, 50);
	raw_expect_hangup(&r);
	/* Connects and says nothing. */
	raw_open(&r);
	raw_expect_hangup(&r);
	/* A valid message 1, then nothing: the server's deadline ends it. */
	{
		struct noise_hs hs;
		struct noise_hs_params p;
		uint8_t spriv[32], rs[32], msg[2 + 128];
		size_t n;

		assert_int_equal(sw_sk_to_x25519(spriv, &A.kp), 0);
		assert_int_equal(sw_pk_to_x25519(rs, server_kp.pk), 0);
		memset(&p, 0, sizeof(p));
		p.pattern = NOISE_XK;
		p.initiator = true;
		p.prologue = (const uint8_t *)DMSG_PROLOGUE;
		p.prologue_len = strlen(DMSG_PROLOGUE);
		p.s_priv = spriv;
		p.rs = rs;
		assert_int_equal(noise_hs_init(&hs, &p), 0);
		assert_int_equal(noise_hs_write(&hs, NULL, 0, msg + 2, 128, &n), 0);
		sw_put_u16(msg, (uint16_t)n);
		raw_open(&r);
		bufferevent_write(r.bev, msg, n + 2);
		raw_expect_hangup(&r);
		noise_hs_reset(&hs);
	}
	assert_int_equal(ds_relay_sessions(relay), 0);
	still_serves();
}

/* ---------- REJECTs ---------- */

static void
expect_reject(struct cli *c, int n, uint32_t sid, int code)
{
	wait_frame(c, DMSG_REJECT, n);
	assert_int_equal(c->last_sid[DMSG_REJECT], sid);
	assert_int_equal(c->last[DMSG_REJECT][0], code);
}

static void
test_reject_no_session(void **state)
{
	uint8_t req[512];
	int n;

	(void)state;
	cli_connect(&A);
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 1, req, (size_t)n);
	expect_reject(&A, 1, 1, DMSG_REJECT_NO_SESSION);
	assert_int_equal(ds_relay_rejects(relay, 1), 1);
}

static void
test_reject_bad_request(void **state)
{
	uint8_t req[512];
	int n, k = 0;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	/* Bad signature. */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
	req[n - 1] ^= 1;
	dmsg_session_send(A.s, DMSG_OPEN, 1, req, (size_t)n);
	expect_reject(&A, ++k, 1, DMSG_REJECT_BAD_REQUEST);
	/* src_pk is C's (validly signed by C), but the session is A's. */
	n = make_req(req, sizeof(req), &C.kp, C.kp.pk, B.kp.pk, 0, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 3, req, (size_t)n);
	expect_reject(&A, ++k, 3, DMSG_REJECT_BAD_REQUEST);
	/* Stale, and future, timestamps. */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, -31000, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 5, req, (size_t)n);
	expect_reject(&A, ++k, 5, DMSG_REJECT_BAD_REQUEST);
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 31000, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 7, req, (size_t)n);
	expect_reject(&A, ++k, 7, DMSG_REJECT_BAD_REQUEST);
	/* Zero ports. */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 0, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 9, req, (size_t)n);
	expect_reject(&A, ++k, 9, DMSG_REJECT_BAD_REQUEST);
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 0);
	dmsg_session_send(A.s, DMSG_OPEN, 11, req, (size_t)n);
	expect_reject(&A, ++k, 11, DMSG_REJECT_BAD_REQUEST);
	/* An even (server-side) stream id. */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 12, req, (size_t)n);
	expect_reject(&A, ++k, 12, DMSG_REJECT_BAD_REQUEST);
	/* Malformed: truncated request. */
	dmsg_session_send(A.s, DMSG_OPEN, 13, req, (size_t)n - 1);
	expect_reject(&A, ++k, 13, DMSG_REJECT_BAD_REQUEST);
	assert_int_equal(B.cnt[DMSG_OPEN], 0);
	assert_int_equal(ds_relay_streams(relay), 0);
	assert_int_equal(ds_relay_rejects(relay, 4), (unsigned long long)k);
	assert_false(A.closed);
}

static void
test_reject_timeout(void **state)
{
	uint8_t req[512];
	int n;

	(void)state;
	cli_connect(&A);
	cli_connect(&B); /* gets the OPEN, never answers */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 1, req, (size_t)n);
	wait_frame(&B, DMSG_OPEN, 1);
	expect_reject(&A, 1, 1, DMSG_REJECT_TIMEOUT);
	wait_frame(&B, DMSG_RESET, 1);
	assert_int_equal(B.last_sid[DMSG_RESET], B.last_sid[DMSG_OPEN]);
	assert_int_equal(ds_relay_streams(relay), 0);
}

static void
test_reject_relayed_from_dst(void **state)
{
	uint8_t req[512], rej[] = {DMSG_REJECT_NO_LISTENER, 'n', 'o'};
	int n;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	for (int i = 0; i < 2; i++) {
		rej[0] = i == 0 ? DMSG_REJECT_NO_LISTENER : DMSG_REJECT_BACKLOG;
		n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
		dmsg_session_send(A.s, DMSG_OPEN, 1 + 2 * (uint32_t)i, req, (size_t)n);
		wait_frame(&B, DMSG_OPEN, i + 1);
		dmsg_session_send(B.s, DMSG_REJECT, B.last_sid[DMSG_OPEN], rej, sizeof(rej));
		expect_reject(&A, i + 1, 1 + 2 * (uint32_t)i, rej[0]);
		assert_int_equal(A.last_len[DMSG_REJECT], sizeof(rej));
		assert_memory_equal(A.last[DMSG_REJECT], rej, sizeof(rej));
	}
	assert_int_equal(ds_relay_streams(relay), 0);
}

/* ---------- forward and relay ---------- */

/* A opens stream sid to d, d accepts; returns d's id for it. */
static uint32_t
open_stream_to(struct cli *d, uint32_t sid)
{
	uint8_t req[512], resp[256];
	int n, m;
	int opens = d->cnt[DMSG_OPEN], accepts = A.cnt[DMSG_ACCEPT];

	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, d->kp.pk, 0, 50000, 45);
	assert_int_equal(dmsg_session_send(A.s, DMSG_OPEN, sid, req, (size_t)n), 0);
	wait_frame(d, DMSG_OPEN, opens + 1);
	/* Forwarded unchanged, on an even id. */
	assert_int_equal(d->last_len[DMSG_OPEN], (size_t)n);
	assert_memory_equal(d->last[DMSG_OPEN], req, (size_t)n);
	assert_int_equal(d->last_sid[DMSG_OPEN] % 2, 0);
	m = make_resp(resp, sizeof(resp), &d->kp, req, (size_t)n);
	dmsg_session_send(d->s, DMSG_ACCEPT, d->last_sid[DMSG_OPEN], resp, (size_t)m);
	wait_frame(&A, DMSG_ACCEPT, accepts + 1);
	assert_int_equal(A.last_sid[DMSG_ACCEPT], sid);
	assert_memory_equal(A.last[DMSG_ACCEPT], resp, (size_t)m);
	return d->last_sid[DMSG_OPEN];
}

static uint32_t
open_stream(uint32_t sid)
{
	return open_stream_to(&B, sid);
}

static void
test_relay_data_close_reset(void **state)
{
	uint32_t bid, bid2;
	uint8_t w[4];

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	bid = open_stream(1);
	assert_int_equal(ds_relay_streams(relay), 1);
	dmsg_session_send(A.s, DMSG_DATA, 1, "ping", 4);
	wait_frame(&B, DMSG_DATA, 1);
	assert_int_equal(B.last_sid[DMSG_DATA], bid);
	assert_memory_equal(B.last[DMSG_DATA], "ping", 4);
	dmsg_session_send(B.s, DMSG_DATA, bid, "pong!", 5);
	wait_frame(&A, DMSG_DATA, 1);
	assert_memory_equal(A.last[DMSG_DATA], "pong!", 5);
	sw_put_u32(w, 12345);
	dmsg_session_send(B.s, DMSG_WINDOW, bid, w, 4);
	wait_frame(&A, DMSG_WINDOW, 1);
	assert_int_equal(sw_get_u32(A.last[DMSG_WINDOW]), 12345);
	/* Half close each way; the stream is gone after both. */
	dmsg_session_send(A.s, DMSG_CLOSE, 1, NULL, 0);
	wait_frame(&B, DMSG_CLOSE, 1);
	assert_int_equal(B.last_sid[DMSG_CLOSE], bid);
	dmsg_session_send(B.s, DMSG_DATA, bid, "late", 4); /* B may still send */
	wait_frame(&A, DMSG_DATA, 2);
	dmsg_session_send(B.s, DMSG_CLOSE, bid, NULL, 0);
	wait_frame(&A, DMSG_CLOSE, 1);
	assert_int_equal(ds_relay_streams(relay), 0);
	assert_int_equal(ds_relay_relayed_bytes(relay), 13);
	/* RESET, from either side. */
	bid2 = open_stream(3);
	assert_true(bid2 != bid);
	dmsg_session_send(B.s, DMSG_RESET, bid2, NULL, 0);
	wait_frame(&A, DMSG_RESET, 1);
	assert_int_equal(A.last_sid[DMSG_RESET], 3);
	open_stream(5);
	dmsg_session_send(A.s, DMSG_RESET, 5, NULL, 0);
	wait_frame(&B, DMSG_RESET, 1);
	assert_int_equal(ds_relay_streams(relay), 0);
	/* A frame for a stream that does not exist: RESET. */
	dmsg_session_send(A.s, DMSG_DATA, 99, "x", 1);
	wait_frame(&A, DMSG_RESET, 2);
	assert_int_equal(A.last_sid[DMSG_RESET], 99);
	/* A session's end RESETs the other leg. */
	bid = open_stream(7);
	dmsg_session_free(A.s);
	A.s = NULL;
	wait_frame(&B, DMSG_RESET, 2);
	assert_int_equal(B.last_sid[DMSG_RESET], bid);
	assert_int_equal(ds_relay_streams(relay), 0);
}

/*
 * A WINDOW or CLOSE that crosses a stream's end is not a stream error: the
 * relay drops it silently (dmsg.md, as HTTP/2 does).  Frames are handled in
 * order, so the RESET for a never-used id arriving first proves that the
 * late frames before it got none.
 */
static void
test_late_frames_ignored(void **state)
{
	uint32_t bid;
	uint8_t w[4];

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	bid = open_stream(1);
	dmsg_session_send(A.s, DMSG_CLOSE, 1, NULL, 0);
	dmsg_session_send(B.s, DMSG_CLOSE, bid, NULL, 0);
	wait_frame(&A, DMSG_CLOSE, 1);
	wait_frame(&B, DMSG_CLOSE, 1);
	assert_int_equal(ds_relay_streams(relay), 0);
	/* Late from both sides, then a frame on an id that never existed. */
	sw_put_u32(w, 65536);
	dmsg_session_send(A.s, DMSG_WINDOW, 1, w, 4);
	dmsg_session_send(A.s, DMSG_CLOSE, 1, NULL, 0);
	dmsg_session_send(B.s, DMSG_WINDOW, bid, w, 4);
	dmsg_session_send(B.s, DMSG_DATA, bid, "late", 4);
	dmsg_session_send(A.s, DMSG_WINDOW, 77, w, 4);
	dmsg_session_send(B.s, DMSG_WINDOW, 78, w, 4);
	wait_frame(&A, DMSG_RESET, 1);
	wait_frame(&B, DMSG_RESET, 1);
	assert_int_equal(A.last_sid[DMSG_RESET], 77);
	assert_int_equal(B.last_sid[DMSG_RESET], 78);
	assert_int_equal(A.cnt[DMSG_WINDOW] + A.cnt[DMSG_DATA], 0);
	/* A RESET that ends a stream is remembered the same way. */
	bid = open_stream(3);
	dmsg_session_send(A.s, DMSG_RESET, 3, NULL, 0);
	wait_frame(&B, DMSG_RESET, 2);
	dmsg_session_send(B.s, DMSG_WINDOW, bid, w, 4);
	dmsg_session_send(B.s, DMSG_WINDOW, 80, w, 4);
	wait_frame(&B, DMSG_RESET, 3);
	assert_int_equal(B.last_sid[DMSG_RESET], 80);
	assert_int_equal(B.cnt[DMSG_RESET], 3);
}

static void
test_forged_accept(void **state)
{
	uint8_t req[512], req2[512], resp[256];
	int n, n2, m;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	/* Signed by someone other than dst. */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
	dmsg_session_send(A.s, DMSG_OPEN, 1, req, (size_t)n);
	wait_frame(&B, DMSG_OPEN, 1);
	m = make_resp(resp, sizeof(resp), &C.kp, req, (size_t)n);
	dmsg_session_send(B.s, DMSG_ACCEPT, B.last_sid[DMSG_OPEN], resp, (size_t)m);
	expect_reject(&A, 1, 1, DMSG_REJECT_BAD_REQUEST);
	wait_frame(&B, DMSG_RESET, 1);
	assert_int_equal(B.last_sid[DMSG_RESET], B.last_sid[DMSG_OPEN]);
	assert_int_equal(A.cnt[DMSG_ACCEPT], 0);
	/* Signed by dst, for another request. */
	n = make_req(req, sizeof(req), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 45);
	n2 = make_req(req2, sizeof(req2), &A.kp, A.kp.pk, B.kp.pk, 0, 50000, 46);
	dmsg_session_send(A.s, DMSG_OPEN, 3, req, (size_t)n);
	wait_frame(&B, DMSG_OPEN, 2);
	m = make_resp(resp, sizeof(resp), &B.kp, req2, (size_t)n2);
	dmsg_session_send(B.s, DMSG_ACCEPT, B.last_sid[DMSG_OPEN], resp, (size_t)m);
	expect_reject(&A, 2, 3, DMSG_REJECT_BAD_REQUEST);
	wait_frame(&B, DMSG_RESET, 2);
	assert_int_equal(A.cnt[DMSG_ACCEPT], 0);
	assert_int_equal(ds_relay_streams(relay), 0);
}

static void
test_data_beyond_window(void **state)
{
	static uint8_t chunk[DMSG_MAX_DATA];
	uint32_t bid;
	uint8_t w[4];
	size_t sent = 0;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	bid = open_stream(1);
	/* Exactly the initial window passes. */
	while (sent < DMSG_INITIAL_WINDOW) {
		size_t n = DMSG_INITIAL_WINDOW - sent < 60000 ? DMSG_INITIAL_WINDOW - sent : 60000;

		dmsg_session_send(A.s, DMSG_DATA, 1, chunk, n);
		sent += n;
	}
	wait_frame(&B, DMSG_DATA, 5);
	assert_int_equal(B.data_bytes, DMSG_INITIAL_WINDOW);
	assert_int_equal(B.cnt[DMSG_RESET], 0);
	/* A grant of 10 lets 10 more through, the 11th byte is a stream error. */
	sw_put_u32(w, 10);
	dmsg_session_send(B.s, DMSG_WINDOW, bid, w, 4);
	wait_frame(&A, DMSG_WINDOW, 1);
	dmsg_session_send(A.s, DMSG_DATA, 1, chunk, 10);
	wait_frame(&B, DMSG_DATA, 6);
	dmsg_session_send(A.s, DMSG_DATA, 1, chunk, 1);
	wait_frame(&A, DMSG_RESET, 1);
	wait_frame(&B, DMSG_RESET, 1);
	assert_int_equal(A.last_sid[DMSG_RESET], 1);
	assert_int_equal(B.last_sid[DMSG_RESET], bid);
	assert_int_equal(B.data_bytes, DMSG_INITIAL_WINDOW + 10);
	assert_int_equal(ds_relay_streams(relay), 0);
}

/* ---------- backpressure ---------- */

/*
 * An honest sender on A's stream sid: send DATA up to the credit the relay
 * gave (and *sent < limit), keeping A's own queue under 1 MiB.
 */
static void
pump(uint32_t sid, unsigned long long *sent, unsigned long long limit)
{
	static uint8_t chunk[60000];

	while (*sent < limit && *sent < A.credit[sid] && dmsg_session_outbuf(A.s) < 1024 * 1024) {
		unsigned long long n = A.credit[sid] - *sent;

		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (n > limit - *sent)
			n = limit - *sent;
		assert_int_equal(dmsg_session_send(A.s, DMSG_DATA, sid, chunk, (size_t)n), 0);
		*sent += n;
	}
}

/* B announces a window far beyond what it will read on bid, then stops reading. */
static void
grant_then_stall(uint32_t bid)
{
	uint8_t w[4];

	sw_put_u32(w, 0x7fffffff);
	dmsg_session_send(B.s, DMSG_WINDOW, bid, w, 4);
	wait_frame(&A, DMSG_WINDOW, 1);
	dmsg_session_pause(B.s, 1);
}

/* Run until B has everything A sent on stream 1 (A keeps sending its credit). */
static void
drain_to_b(unsigned long long *sent, unsigned long long limit)
{
	long long end = sw_mono_ms() + 10 * WAIT_MS;

	while ((*sent < limit || B.data_bytes < *sent) && sw_mono_ms() < end) {
		pump(1, sent, limit);
		sw_test_run_for(base, 5);
	}
}

/*
 * B announces a window far beyond what it will read, then stops reading:
 * the relay passes on only stream_credit of it while B's output is
 * congested, so what it queues toward B stays bounded and A's stream waits
 * for credit (A is never paused: it sends only what it was granted).
 */
static void
test_backpressure(void **state)
{
	const unsigned long long total = 48ULL * 1024 * 1024;
	unsigned long long sent = 0;
	long long end;
	uint32_t bid;
	size_t bound;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	bid = open_stream(1);
	grant_then_stall(bid);
	bound = opts.high_water + DS_STREAM_CREDIT + 2 * (DMSG_MAX_TRANSPORT + 2);
	/* Until the credit stops coming: far below the window B announced. */
	end = sw_mono_ms() + WAIT_MS;
	while (sw_mono_ms() < end) {
		pump(1, &sent, total);
		sw_test_run_for(base, 20);
		assert_true(ds_relay_queued(relay) <= bound);
	}
	/* Past the relay's bound only the kernel's socket buffers took more. */
	assert_true(A.credit[1] < total / 2);
	assert_true(sent <= A.credit[1]);
	assert_true(B.data_bytes < sent);
	assert_true(ds_relay_queued_peak(relay) <= bound);
	/* B reads again: credit flows, and everything arrives. */
	dmsg_session_pause(B.s, 0);
	drain_to_b(&sent, total);
	assert_int_equal(sent, total);
	assert_int_equal(B.data_bytes, sent);
	assert_int_equal(B.cnt[DMSG_RESET], 0);
	assert_int_equal(A.cnt[DMSG_RESET], 0);
	assert_true(ds_relay_queued_peak(relay) <= bound);
}

/*
 * A has a stream to B, which stops reading after announcing a huge window,
 * and a stream to C, a fast reader: A's stream to C keeps flowing (the
 * relay used to stop reading all of A once B's queue passed high water).
 */
static void
test_slow_reader_slows_only_its_stream(void **state)
{
	const unsigned long long want = 32ULL * 1024 * 1024;
	unsigned long long s1 = 0, s3 = 0, c_stalled;
	long long end;
	uint32_t bid;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	cli_connect(&C);
	C.auto_grant = 1;
	bid = open_stream_to(&B, 1);
	open_stream_to(&C, 3);
	grant_then_stall(bid);
	/* Stream 1 runs into B's stall; stream 3 goes on. */
	end = sw_mono_ms() + 10 * WAIT_MS;
	while (s1 < DMSG_INITIAL_WINDOW + 1 && sw_mono_ms() < end) {
		pump(1, &s1, ~0ULL);
		sw_test_run_for(base, 5);
	}
	c_stalled = C.data_bytes;
	while (C.data_bytes < c_stalled + want && sw_mono_ms() < end) {
		pump(1, &s1, ~0ULL);
		pump(3, &s3, ~0ULL);
		sw_test_run_for(base, 2);
	}
	if (C.data_bytes < c_stalled + want)
		fail_msg("stream to the fast reader got %llu bytes while B stalled, want %llu",
		    C.data_bytes - c_stalled, want);
	assert_true(B.data_bytes < s1);
	assert_true(s1 < want / 2);
	assert_false(A.closed);
	assert_int_equal(C.cnt[DMSG_RESET] + A.cnt[DMSG_RESET], 0);
	/* B comes back and gets all of stream 1. */
	dmsg_session_pause(B.s, 0);
	drain_to_b(&s1, s1 + 8ULL * 1024 * 1024);
	assert_int_equal(B.data_bytes, s1);
	assert_int_equal(B.cnt[DMSG_RESET], 0);
}

/*
 * The last resort (hard_water is tiny in this group): the relay stops
 * reading A while B stalls.  A session the server stopped reading is not
 * idle, however long that lasts (idle_close_ms is 300 ms here).
 */
static void
test_paused_session_not_idle(void **state)
{
	unsigned long long sent = 0;
	long long end;
	uint32_t bid;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	bid = open_stream(1);
	grant_then_stall(bid);
	/* B does not read but still talks (a PING now and then keeps it alive). */
	end = sw_mono_ms() + 4 * opts.idle_close_ms;
	while (sw_mono_ms() < end) {
		pump(1, &sent, ~0ULL);
		dmsg_session_send(B.s, DMSG_PING, 0, "12345678", 8);
		sw_test_run_for(base, 20);
		assert_false(A.closed);
		assert_false(B.closed);
	}
	/* A was really stopped: the relay queued past its hard-water mark toward B. */
	assert_true(ds_relay_queued_peak(relay) > opts.hard_water);
	assert_true(ds_relay_has_session(relay, A.kp.pk));
	dmsg_session_pause(B.s, 0);
	drain_to_b(&sent, sent);
	assert_int_equal(B.data_bytes, sent);
	assert_false(A.closed);
}

/* ---------- sessions ---------- */

static void
test_max_sessions(void **state)
{
	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	assert_int_equal(ds_relay_sessions(relay), 2);
	cli_start(&C, server_kp.pk);
	wait_closed(&C); /* handshake completes, then the server closes it */
	assert_int_equal(ds_relay_sessions(relay), 2);
	/* A reconnecting replaces itself even when full. */
	{
		struct cli a2;

		memset(&a2, 0, sizeof(a2));
		a2.kp = A.kp;
		cli_start(&a2, server_kp.pk);
		assert_int_equal(sw_test_run_until_fn(base, cli_up, &a2, WAIT_MS), 0);
		wait_closed(&A);
		assert_false(a2.closed);
		assert_int_equal(ds_relay_sessions(relay), 2);
		dmsg_session_free(a2.s);
	}
}

static void
test_session_replacement(void **state)
{
	struct cli a2;
	uint8_t req[512];
	int n;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	open_stream(1);
	memset(&a2, 0, sizeof(a2));
	a2.kp = A.kp;
	cli_start(&a2, server_kp.pk);
	assert_int_equal(sw_test_run_until_fn(base, cli_up, &a2, WAIT_MS), 0);
	wait_closed(&A);
	wait_frame(&B, DMSG_RESET, 1); /* the old session's stream */
	assert_int_equal(ds_relay_sessions(relay), 2);
	assert_int_equal(ds_relay_streams(relay), 0);
	/* The new session is the one B's key routes to. */
	B.auto_accept = 1;
	n = make_req(req, sizeof(req), &a2.kp, a2.kp.pk, B.kp.pk, 0, 50000, 45);
	dmsg_session_send(a2.s, DMSG_OPEN, 1, req, (size_t)n);
	wait_frame(&a2, DMSG_ACCEPT, 1);
	dmsg_session_free(a2.s);
}

/* ---------- fuzz ---------- */

static void
test_fuzz(void **state)
{
	static uint8_t buf[70000];
	uint8_t req[512];
	struct raw r;
	int n;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	B.auto_accept = 1;
	A.auto_accept = 1;
	for (int i = 0; i < 4000; i++) {
		struct cli *c = (i & 1) ? &A : &B;
		struct cli *o = (i & 1) ? &B : &A;
		uint32_t rnd = randombytes_random();
		uint8_t type = (uint8_t)(1 + rnd % 9);
		uint32_t sid = 1 + randombytes_uniform(16);
		size_t len;

		if (c->closed) {
			cli_connect(c);
			c->auto_accept = 1;
		}
		if (rnd % 50 == 0)
			type = (uint8_t)randombytes_uniform(256); /* maybe a session error */
		switch (rnd % 7) {
		case 0:
			len = randombytes_uniform(sizeof(buf) < DMSG_MAX_PAYLOAD ? sizeof(buf) :
			    DMSG_MAX_PAYLOAD);
			break;
		case 1:
			len = 4;
			break;
		case 2:
			len = 0;
			break;
		default:
			len = randombytes_uniform(256);
		}
		randombytes_buf(buf, len);
		if (type == DMSG_OPEN && rnd % 3 == 0) {
			/* A valid request now and then, so streams exist to be fuzzed. */
			n = make_req(req, sizeof(req), &c->kp, c->kp.pk, o->kp.pk, 0, 50000, 45);
			memcpy(buf, req, (size_t)n);
			len = (size_t)n;
			sid |= 1;
		}
		dmsg_session_send(c->s, type, sid, buf, len);
		if (i % 64 == 0)
			sw_test_run_for(base, 1);
	}
	sw_test_run_for(base, 200);
	/* Raw random bytes at the TCP level. */
	for (int i = 0; i < 50; i++) {
		raw_open(&r);
		randombytes_buf(buf, 1 + i * 37);
		bufferevent_write(r.bev, buf, 1 + (size_t)i * 37);
		raw_expect_hangup(&r);
	}
	still_serves();
}

/* ---------- HTTP ---------- */

struct http_wait {
	int done;
	int status;
	cJSON *json;
};

static void
http_done(const struct sw_http_resp *resp, void *arg)
{
	struct http_wait *w = arg;

	w->done = 1;
	w->status = resp->status;
	w->json = resp->json != NULL ? cJSON_Duplicate(resp->json, 1) : NULL;
}

static void
test_sessions_http(void **state)
{
	struct sw_http_server *srv;
	struct sw_http_client *hc;
	struct http_wait w = {0};
	char url[128], hex[SW_PK_HEX];
	const cJSON *it;
	int seen = 0;

	(void)state;
	cli_connect(&A);
	cli_connect(&B);
	open_stream(1);
	srv = sw_http_server_new(base, "dmsg-server-test", NULL);
	assert_non_null(srv);
	assert_int_equal(ds_api_routes(srv, relay), 0);
	assert_int_equal(sw_http_server_listen(srv, "127.0.0.1:0"), 0);
	hc = sw_http_client_new(base, "test");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/sessions", sw_http_server_port(srv));
	assert_int_equal(sw_http_request(hc, "GET", url, NULL, 0, NULL, http_done, &w), 0);
	assert_int_equal(sw_test_run_until(base, &w.done, WAIT_MS), 0);
	assert_int_equal(w.status, 200);
	assert_true(cJSON_IsArray(w.json));
	assert_int_equal(cJSON_GetArraySize(w.json), 2);
	sw_hex_encode(hex, A.kp.pk, SW_PK_LEN);
	cJSON_ArrayForEach(it, w.json) {
		const cJSON *pk = cJSON_GetObjectItem(it, "pk");
		const cJSON *st = cJSON_GetObjectItem(it, "streams");
		const cJSON *since = cJSON_GetObjectItem(it, "since");

		assert_true(cJSON_IsString(pk) && cJSON_IsNumber(st) && cJSON_IsNumber(since));
		assert_true(since->valuedouble > 1.6e9);
		assert_int_equal((int)st->valuedouble, 1);
		if (strcmp(pk->valuestring, hex) == 0)
			seen = 1;
	}
	assert_true(seen);
	cJSON_Delete(w.json);
	sw_http_client_free(hc);
	sw_http_server_free(srv);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_handshake_good),
		T(test_handshake_wrong_key),
		T(test_handshake_truncated_garbage_stall),
		T(test_reject_no_session),
		T(test_reject_bad_request),
		T(test_reject_timeout),
		T(test_reject_relayed_from_dst),
		T(test_relay_data_close_reset),
		T(test_late_frames_ignored),
		T(test_forged_accept),
		T(test_data_beyond_window),
		T(test_backpressure),
		T(test_slow_reader_slows_only_its_stream),
		T(test_session_replacement),
		T(test_fuzz),
		T(test_sessions_http),
	};
	const struct CMUnitTest max_tests[] = {
		T(test_max_sessions),
	};
	const struct CMUnitTest idle_tests[] = {
		T(test_paused_session_not_idle),
	};
	int fails;

	if (sw_crypto_init() == -1)
		return 1;
	sw_log_set_level(SW_LOG_WARN);
	sw_keypair_generate(&server_kp);
	opts.handshake_timeout_ms = 300;
	opts.accept_timeout_ms = 300;
	opts.high_water = 256 * 1024;
	fails = cmocka_run_group_tests(tests, NULL, NULL);
	opts.max_sessions = 2;
	fails += cmocka_run_group_tests(max_tests, NULL, NULL);
	opts.max_sessions = 0;
	opts.hard_water = 64 * 1024;
	opts.idle_close_ms = 300;
	opts.ping_after_ms = 100;
	fails += cmocka_run_group_tests(idle_tests, NULL, NULL);
	return fails;
}
