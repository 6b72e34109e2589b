/*
 * test_dmsg_client: the dmsg client library against real processes: one
 * dmsg-discovery and two dmsg-servers from $SW_BUILD/bin (default build),
 * on free ports, and pairs of clients in this test's event base.
 *
 * Each test makes fresh clients (fresh keys), so tests do not share
 * sessions.  Nothing sleeps: the loop runs until a condition holds, with a
 * deadline.  The session-drop tests kill a server (and start it again) and
 * so run last; one of them while a bulk stream runs through it.
 *
 * SW_DMSG_BULK_MB sets the echo size (default 100 MiB: about 2 s here,
 * 12 s under ASan+UBSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sodium.h>

#include "crypto.h"
#include "dmsg_client.h"
#include "dmsg_wire.h"
#include "log.h"
#include "tests/lib/procs.h"
#include "tests/lib/testutil.h"

#define BULK_MB_DEFAULT 100

#define WAIT_MS 30000

static struct event_base *base;
static struct sw_test_proc disc;
static struct sw_test_proc srv[2];
static const char *disc_url;

/* ---------- processes ---------- */

static int
group_setup(void **state)
{
	(void)state;
	if (sw_test_relay_start(&base, &disc, srv, 2) == -1)
		return -1;
	disc_url = disc.url;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	sw_test_relay_stop(base, &disc, srv, 2);
	return 0;
}

/* ---------- clients ---------- */

struct peer {
	struct sw_keypair kp;
	struct dmsg_client *c;
};

static int idle_ms; /* stream idle timeout of the next clients (0: default) */
static int cache_max; /* peer cache bound of the next clients (0: default) */

/* A client with p's key as it is (a restart of the same visor). */
static void
peer_restart(struct peer *p)
{
	struct dmsg_client_opts o;

	memset(&o, 0, sizeof(o));
	o.discovery = disc_url;
	o.stream_idle_ms = idle_ms;
	o.peer_cache_max = cache_max;
	o.backoff_min_ms = 100;
	o.backoff_max_ms = 1000;
	o.http_timeout_ms = 3000;
	p->c = dmsg_client_new(base, &p->kp, &o, "test-client");
	assert_non_null(p->c);
	assert_int_equal(dmsg_client_start(p->c), 0);
}

static void
peer_start(struct peer *p)
{
	sw_keypair_generate(&p->kp);
	peer_restart(p);
}

static int
both_registered(void *arg)
{
	struct peer *p = arg;

	return dmsg_client_registered(p[0].c) && dmsg_client_registered(p[1].c);
}

static void
pair_start(struct peer p[2])
{
	peer_start(&p[0]);
	peer_start(&p[1]);
	assert_int_equal(sw_test_run_until_fn(base, both_registered, p, WAIT_MS), 0);
}

static void
pair_stop(struct peer p[2])
{
	dmsg_client_free(p[0].c);
	dmsg_client_free(p[1].c);
}

/* ---------- one stream end: counts, hashes, echoes ---------- */

struct end {
	struct dmsg_stream *st;
	int echo;                 /* write back what is read */
	int shut_on_eof;          /* shutdown when the peer does (after the echo) */
	size_t echo_hwm;          /* pause reads past this much queued */
	crypto_generichash_state rx_hash;
	uint64_t rx;
	int eof;
	int closed;
	enum dmsg_stream_end why;
	/* sender side */
	const uint8_t *src;       /* pattern to send, src_len bytes repeating */
	size_t src_len;
	uint64_t to_send;
	uint64_t written;
	crypto_generichash_state tx_hash;
	int shut_when_sent;
	int max_inflight_ok;      /* in-flight never exceeded the window */
};

static void end_fill(struct end *e);

static void
end_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct end *e = arg;

	crypto_generichash_update(&e->rx_hash, data, len);
	e->rx += len;
	if (e->echo) {
		assert_int_equal(dmsg_stream_write(st, data, len), 0);
		if (dmsg_stream_queued(st) > e->echo_hwm)
			dmsg_stream_pause_read(st, 1);
	}
}

static void
end_eof(struct dmsg_stream *st, void *arg)
{
	struct end *e = arg;

	e->eof = 1;
	if (e->shut_on_eof)
		dmsg_stream_shutdown(st);
}

static void
end_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	struct end *e = arg;

	(void)st;
	e->closed = 1;
	e->why = why;
}

static void
end_writable(struct dmsg_stream *st, void *arg)
{
	struct end *e = arg;

	if (e->echo)
		dmsg_stream_pause_read(st, 0);
	if (e->src != NULL)
		end_fill(e);
}

static const struct dmsg_stream_cbs end_cbs = {
	.read = end_read,
	.eof = end_eof,
	.closed = end_closed,
	.writable = end_writable,
};

static void
end_init(struct end *e, struct dmsg_stream *st)
{
	memset(e, 0, sizeof(*e));
	e->st = st;
	e->echo_hwm = 1 << 20;
	e->max_inflight_ok = 1;
	crypto_generichash_init(&e->rx_hash, NULL, 0, 32);
	crypto_generichash_init(&e->tx_hash, NULL, 0, 32);
	dmsg_stream_set_cbs(st, &end_cbs, e);
}

/* Write the pattern while the queue is short; shutdown when all is written. */
static void
end_fill(struct end *e)
{
	while (e->written < e->to_send && dmsg_stream_queued(e->st) < (1u << 20)) {
		size_t off = (size_t)(e->written % e->src_len);
		size_t n = e->src_len - off;

		if (n > e->to_send - e->written)
			n = (size_t)(e->to_send - e->written);
		if (n > 256 * 1024)
			n = 256 * 1024;
		assert_int_equal(dmsg_stream_write(e->st, e->src + off, n), 0);
		crypto_generichash_update(&e->tx_hash, e->src + off, n);
		e->written += n;
	}
	if (e->written == e->to_send && e->shut_when_sent)
		dmsg_stream_shutdown(e->st);
}

static void
hash_final(crypto_generichash_state *h, uint8_t out[32])
{
	crypto_generichash_final(h, out, 32);
}

/* ---------- accepting side ---------- */

#define MAX_ENDS 256

struct server {
	struct end ends[MAX_ENDS];
	int n;
	int echo;
	int shut_on_eof;
	int pause_reads;
};

static void
on_accept(struct dmsg_listener *l, struct dmsg_stream *st, void *arg)
{
	struct server *s = arg;
	struct end *e;

	(void)l;
	assert_true(s->n < MAX_ENDS);
	e = &s->ends[s->n++];
	end_init(e, st);
	e->echo = s->echo;
	e->shut_on_eof = s->shut_on_eof;
	if (s->pause_reads)
		dmsg_stream_pause_read(st, 1);
}

static void
server_free(struct server *s)
{
	for (int i = 0; i < s->n; i++)
		dmsg_stream_free(s->ends[i].st);
	s->n = 0;
}

/* ---------- dialling side ---------- */

struct dial {
	struct dmsg_stream *st;
	int done;
	int reject;
	char err[128];
};

static void
on_dial(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct dial *d = arg;

	d->done = 1;
	d->st = st;
	d->reject = reject;
	snprintf(d->err, sizeof(d->err), "%s", err != NULL ? err : "");
}

static struct dmsg_stream *
dial_ok(struct peer *from, struct peer *to, uint16_t port)
{
	struct dial d = {0};

	assert_non_null(dmsg_client_dial(from->c, to->kp.pk, port, 15000, on_dial, &d));
	assert_int_equal(sw_test_run_until(base, &d.done, WAIT_MS), 0);
	if (d.st == NULL)
		fail_msg("dial failed: reject=%d err=%s", d.reject, d.err);
	return d.st;
}

/* ---------- tests ---------- */

static void
test_register_dial_echo(void **state)
{
	struct peer p[2];
	struct server s = {.echo = 1, .shut_on_eof = 1};
	struct dmsg_listener *l;
	struct end a;
	uint8_t got[32], want[32];

	(void)state;
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 10, on_accept, &s);
	assert_non_null(l);
	assert_null(dmsg_client_listen(p[1].c, 10, on_accept, &s));
	end_init(&a, dial_ok(&p[0], &p[1], 10));
	assert_memory_equal(dmsg_stream_remote_pk(a.st), p[1].kp.pk, SW_PK_LEN);
	assert_int_equal(dmsg_stream_remote_port(a.st), 10);
	assert_true(dmsg_stream_local_port(a.st) >= DMSG_EPHEMERAL_MIN);
	a.src = (const uint8_t *)"hello, dmsg";
	a.src_len = 11;
	a.to_send = 11;
	a.shut_when_sent = 1;
	end_fill(&a);
	assert_int_equal(sw_test_run_until(base, &a.closed, WAIT_MS), 0);
	assert_int_equal(a.why, DMSG_END_DONE);
	assert_int_equal(a.rx, 11);
	hash_final(&a.rx_hash, got);
	hash_final(&a.tx_hash, want);
	assert_memory_equal(got, want, 32);
	assert_int_equal(s.n, 1);
	assert_memory_equal(dmsg_stream_remote_pk(s.ends[0].st), p[0].kp.pk, SW_PK_LEN);
	assert_int_equal(dmsg_stream_local_port(s.ends[0].st), 10);
	assert_int_equal(sw_test_run_until(base, &s.ends[0].closed, WAIT_MS), 0);
	assert_int_equal(s.ends[0].why, DMSG_END_DONE);
	dmsg_stream_free(a.st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

static uint64_t
bulk_bytes(void)
{
	const char *v = getenv("SW_DMSG_BULK_MB");
	long mb = v != NULL ? strtol(v, NULL, 10) : BULK_MB_DEFAULT;

	return (uint64_t)(mb > 0 ? mb : BULK_MB_DEFAULT) << 20;
}

static void
test_bulk_echo(void **state)
{
	static uint8_t pattern[(1 << 20) + 7];
	struct peer p[2];
	struct server *s = calloc(1, sizeof(*s));
	struct dmsg_listener *l;
	struct end a;
	uint8_t h1[32], h2[32], h3[32];
	uint64_t n = bulk_bytes();

	(void)state;
	assert_non_null(s);
	s->echo = 1;
	s->shut_on_eof = 1;
	randombytes_buf(pattern, sizeof(pattern));
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 11, on_accept, s);
	end_init(&a, dial_ok(&p[0], &p[1], 11));
	a.src = pattern;
	a.src_len = sizeof(pattern);
	a.to_send = n;
	a.shut_when_sent = 1;
	end_fill(&a);
	assert_int_equal(sw_test_run_until(base, &a.closed, 300000), 0);
	assert_int_equal(a.why, DMSG_END_DONE);
	assert_int_equal(a.rx, n);
	assert_int_equal(s->ends[0].rx, n);
	hash_final(&a.tx_hash, h1);
	hash_final(&a.rx_hash, h2);
	hash_final(&s->ends[0].rx_hash, h3);
	assert_memory_equal(h1, h2, 32);
	assert_memory_equal(h1, h3, 32);
	fprintf(stderr, "bulk: %llu MiB echoed\n", (unsigned long long)(n >> 20));
	dmsg_stream_free(a.st);
	server_free(s);
	dmsg_listener_free(l);
	pair_stop(p);
	free(s);
}

#define NCONC 200
#define CONC_BYTES (64 * 1024 + 13)

struct conc {
	struct dial d[NCONC];
	struct end e[NCONC];
	int started[NCONC];
	uint8_t pattern[CONC_BYTES];
};

static int
conc_dialled(void *arg)
{
	struct conc *k = arg;

	for (int i = 0; i < NCONC; i++)
		if (!k->d[i].done)
			return 0;
	return 1;
}

static int
conc_closed(void *arg)
{
	struct conc *k = arg;

	for (int i = 0; i < NCONC; i++)
		if (!k->e[i].closed)
			return 0;
	return 1;
}

static void
test_concurrent_streams(void **state)
{
	struct peer p[2];
	struct server *s = calloc(1, sizeof(*s));
	struct conc *k = calloc(1, sizeof(*k));
	struct dmsg_listener *l;

	(void)state;
	assert_non_null(s);
	assert_non_null(k);
	s->echo = 1;
	s->shut_on_eof = 1;
	randombytes_buf(k->pattern, sizeof(k->pattern));
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 12, on_accept, s);
	for (int i = 0; i < NCONC; i++)
		assert_non_null(dmsg_client_dial(p[0].c, p[1].kp.pk, 12, 20000, on_dial, &k->d[i]));
	assert_int_equal(sw_test_run_until_fn(base, conc_dialled, k, WAIT_MS), 0);
	for (int i = 0; i < NCONC; i++) {
		if (k->d[i].st == NULL)
			fail_msg("dial %d failed: %d %s", i, k->d[i].reject, k->d[i].err);
		end_init(&k->e[i], k->d[i].st);
		k->e[i].src = k->pattern;
		k->e[i].src_len = sizeof(k->pattern);
		k->e[i].to_send = sizeof(k->pattern);
		k->e[i].shut_when_sent = 1;
		end_fill(&k->e[i]);
	}
	assert_int_equal(sw_test_run_until_fn(base, conc_closed, k, 60000), 0);
	assert_int_equal(s->n, NCONC);
	for (int i = 0; i < NCONC; i++) {
		uint8_t h1[32], h2[32];

		assert_int_equal(k->e[i].why, DMSG_END_DONE);
		assert_int_equal(k->e[i].rx, sizeof(k->pattern));
		hash_final(&k->e[i].tx_hash, h1);
		hash_final(&k->e[i].rx_hash, h2);
		assert_memory_equal(h1, h2, 32);
		dmsg_stream_free(k->e[i].st);
	}
	server_free(s);
	dmsg_listener_free(l);
	pair_stop(p);
	free(s);
	free(k);
}

/* The dialer half-closes; the listener still gets every byte, then answers. */
static void
test_half_close(void **state)
{
	static uint8_t pattern[3 * 1024 * 1024 + 1];
	struct peer p[2];
	struct server s = {0};
	struct dmsg_listener *l;
	struct end a;
	struct end *b;
	uint8_t h1[32], h2[32];

	(void)state;
	randombytes_buf(pattern, sizeof(pattern));
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 13, on_accept, &s);
	end_init(&a, dial_ok(&p[0], &p[1], 13));
	a.src = pattern;
	a.src_len = sizeof(pattern);
	a.to_send = sizeof(pattern);
	a.shut_when_sent = 1;
	end_fill(&a);
	assert_int_equal(sw_test_run_until(base, &s.n, WAIT_MS), 0);
	b = &s.ends[0];
	assert_int_equal(sw_test_run_until(base, &b->eof, WAIT_MS), 0);
	assert_int_equal(b->rx, sizeof(pattern));
	hash_final(&a.tx_hash, h1);
	hash_final(&b->rx_hash, h2);
	assert_memory_equal(h1, h2, 32);
	/* the other direction is still open */
	assert_false(a.closed);
	assert_int_equal(dmsg_stream_write(a.st, "x", 1), -1);
	assert_int_equal(dmsg_stream_write(b->st, "reply", 5), 0);
	assert_int_equal(dmsg_stream_shutdown(b->st), 0);
	assert_int_equal(sw_test_run_until(base, &a.closed, WAIT_MS), 0);
	assert_int_equal(a.why, DMSG_END_DONE);
	assert_true(a.eof);
	assert_int_equal(a.rx, 5);
	assert_int_equal(sw_test_run_until(base, &b->closed, WAIT_MS), 0);
	assert_int_equal(b->why, DMSG_END_DONE);
	dmsg_stream_free(a.st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

static void
test_reset(void **state)
{
	struct peer p[2];
	struct server s = {0};
	struct dmsg_listener *l;
	struct end a;
	struct end *b;

	(void)state;
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 14, on_accept, &s);
	end_init(&a, dial_ok(&p[0], &p[1], 14));
	assert_int_equal(dmsg_stream_write(a.st, "abc", 3), 0);
	assert_int_equal(sw_test_run_until(base, &s.n, WAIT_MS), 0);
	b = &s.ends[0];
	dmsg_stream_reset(a.st);
	assert_false(dmsg_stream_is_open(a.st));
	assert_int_equal(dmsg_stream_write(a.st, "x", 1), -1);
	assert_int_equal(sw_test_run_until(base, &b->closed, WAIT_MS), 0);
	assert_int_equal(b->why, DMSG_END_RESET);
	assert_int_equal(dmsg_stream_write(b->st, "x", 1), -1);
	/* a reset from our side does not call our own closed callback */
	sw_test_run_for(base, 50);
	assert_false(a.closed);
	dmsg_stream_free(a.st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

static void
test_reject_no_listener(void **state)
{
	struct peer p[2];
	struct dial d = {0};

	(void)state;
	pair_start(p);
	assert_non_null(dmsg_client_dial(p[0].c, p[1].kp.pk, 99, 15000, on_dial, &d));
	assert_int_equal(sw_test_run_until(base, &d.done, WAIT_MS), 0);
	assert_null(d.st);
	assert_int_equal(d.reject, DMSG_REJECT_NO_LISTENER);
	pair_stop(p);
}

#define NBACKLOG (DMSG_BACKLOG + 1)

struct backlog {
	struct dial d[NBACKLOG];
};

static int
backlog_done(void *arg)
{
	struct backlog *k = arg;

	for (int i = 0; i < NBACKLOG; i++)
		if (!k->d[i].done)
			return 0;
	return 1;
}

static void
test_reject_backlog(void **state)
{
	struct peer p[2];
	struct server s = {0};
	struct backlog k;
	struct dmsg_listener *l;
	struct dmsg_stream *st;
	int ok = 0, full = 0;

	(void)state;
	memset(&k, 0, sizeof(k));
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 15, on_accept, &s);
	dmsg_listener_pause(l, 1);
	for (int i = 0; i < NBACKLOG; i++)
		assert_non_null(dmsg_client_dial(p[0].c, p[1].kp.pk, 15, 15000, on_dial, &k.d[i]));
	assert_int_equal(sw_test_run_until_fn(base, backlog_done, &k, WAIT_MS), 0);
	for (int i = 0; i < NBACKLOG; i++) {
		if (k.d[i].st != NULL)
			ok++;
		else if (k.d[i].reject == DMSG_REJECT_BACKLOG)
			full++;
		else
			print_message("dial %d: reject=%d err=%s\n", i, k.d[i].reject, k.d[i].err);
	}
	assert_int_equal(ok, DMSG_BACKLOG);
	assert_int_equal(full, 1);
	assert_int_equal(dmsg_listener_pending(l), DMSG_BACKLOG);
	/* taking one makes room for one more */
	st = dmsg_listener_accept(l);
	assert_non_null(st);
	assert_int_equal(dmsg_listener_pending(l), DMSG_BACKLOG - 1);
	dmsg_stream_free(st);
	memset(&k.d[0], 0, sizeof(k.d[0]));
	assert_non_null(dmsg_client_dial(p[0].c, p[1].kp.pk, 15, 15000, on_dial, &k.d[0]));
	assert_int_equal(sw_test_run_until(base, &k.d[0].done, WAIT_MS), 0);
	assert_non_null(k.d[0].st);
	/* unpausing hands the waiting ones to the callback */
	dmsg_listener_pause(l, 0);
	assert_int_equal(sw_test_run_until_fn(base, backlog_done, &k, WAIT_MS), 0);
	for (int i = 0; i < 200 && s.n < DMSG_BACKLOG; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(s.n, DMSG_BACKLOG);
	for (int i = 0; i < NBACKLOG; i++)
		dmsg_stream_free(k.d[i].st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

struct window {
	struct end *a;
	struct server *s;
	uint64_t max_inflight;
};

static int
window_blocked(void *arg)
{
	struct window *w = arg;
	struct dmsg_stream_stats st;
	uint64_t inflight;

	dmsg_stream_stats(w->a->st, &st);
	/* in flight: sent, minus what the reader consumed (granted beyond the first window) */
	inflight = st.tx_wire - (st.tx_granted - DMSG_INITIAL_WINDOW);
	if (inflight > w->max_inflight)
		w->max_inflight = inflight;
	return w->s->n == 1 && st.tx_granted - st.tx_wire <= 16 && st.queued > 0;
}

static int
window_drained(void *arg)
{
	struct window *w = arg;

	window_blocked(arg);
	return w->s->ends[0].eof;
}

static void
test_window_pause(void **state)
{
	static uint8_t pattern[4 * 1024 * 1024];
	struct peer p[2];
	struct server s = {.pause_reads = 1};
	struct dmsg_listener *l;
	struct dmsg_stream_stats sa, sb;
	struct end a;
	struct window w = {&a, &s, 0};
	uint64_t wire;
	uint8_t h1[32], h2[32];

	(void)state;
	randombytes_buf(pattern, sizeof(pattern));
	pair_start(p);
	l = dmsg_client_listen(p[1].c, 16, on_accept, &s);
	end_init(&a, dial_ok(&p[0], &p[1], 16));
	dmsg_stream_set_lowat(a.st, 0);
	assert_int_equal(dmsg_stream_write(a.st, pattern, sizeof(pattern)), 0);
	crypto_generichash_update(&a.tx_hash, pattern, sizeof(pattern));
	assert_int_equal(dmsg_stream_shutdown(a.st), 0);
	assert_int_equal(sw_test_run_until_fn(base, window_blocked, &w, WAIT_MS), 0);
	dmsg_stream_stats(a.st, &sa);
	wire = sa.tx_wire;
	assert_true(wire <= DMSG_INITIAL_WINDOW);
	assert_true(wire > DMSG_INITIAL_WINDOW - DMSG_MAX_DATA);
	/* more loop passes send nothing more and grant nothing */
	sw_test_run_for(base, 300);
	dmsg_stream_stats(a.st, &sa);
	assert_int_equal(sa.tx_wire, wire);
	assert_int_equal(sa.tx_granted, DMSG_INITIAL_WINDOW);
	dmsg_stream_stats(s.ends[0].st, &sb);
	assert_int_equal(sb.rx_wire, wire);
	assert_true(sb.buffered <= DMSG_INITIAL_WINDOW);
	assert_int_equal(s.ends[0].rx, 0);
	/* the reader resumes: everything arrives, in-flight stayed within the window */
	dmsg_stream_pause_read(s.ends[0].st, 0);
	assert_int_equal(sw_test_run_until_fn(base, window_drained, &w, WAIT_MS), 0);
	assert_true(w.max_inflight <= DMSG_INITIAL_WINDOW);
	assert_int_equal(s.ends[0].rx, sizeof(pattern));
	hash_final(&a.tx_hash, h1);
	hash_final(&s.ends[0].rx_hash, h2);
	assert_memory_equal(h1, h2, 32);
	dmsg_stream_free(a.st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

static void
test_dial_unknown_peer(void **state)
{
	struct peer p[2];
	struct dial d = {0};
	struct sw_keypair nobody;

	(void)state;
	pair_start(p);
	sw_keypair_generate(&nobody);
	assert_non_null(dmsg_client_dial(p[0].c, nobody.pk, 10, 15000, on_dial, &d));
	assert_int_equal(sw_test_run_until(base, &d.done, WAIT_MS), 0);
	assert_null(d.st);
	assert_int_equal(d.reject, -1);
	assert_true(strlen(d.err) > 0);
	/* a dial cancelled before it completes calls nothing back */
	memset(&d, 0, sizeof(d));
	dmsg_stream_free(dmsg_client_dial(p[0].c, p[1].kp.pk, 10, 15000, on_dial, &d));
	sw_test_run_for(base, 100);
	assert_false(d.done);
	pair_stop(p);
}

static int
both_closed(void *arg)
{
	struct end *e = arg;

	return e[0].closed && e[1].closed;
}

static void
test_idle_timeout(void **state)
{
	struct peer p[2];
	struct server s = {0};
	struct dmsg_listener *l;
	struct end e[2];

	(void)state;
	idle_ms = 300;
	pair_start(p);
	idle_ms = 0;
	l = dmsg_client_listen(p[1].c, 18, on_accept, &s);
	end_init(&e[0], dial_ok(&p[0], &p[1], 18));
	assert_int_equal(sw_test_run_until(base, &s.n, WAIT_MS), 0);
	e[1] = s.ends[0];
	dmsg_stream_set_cbs(e[1].st, &end_cbs, &e[1]);
	assert_int_equal(sw_test_run_until_fn(base, both_closed, e, WAIT_MS), 0);
	/* whichever timed out first reset the other */
	assert_true(e[0].why == DMSG_END_IDLE || e[1].why == DMSG_END_IDLE);
	assert_true(e[0].why == DMSG_END_IDLE || e[0].why == DMSG_END_RESET);
	assert_true(e[1].why == DMSG_END_IDLE || e[1].why == DMSG_END_RESET);
	dmsg_stream_free(e[0].st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

static struct sw_test_proc *
server_of(struct dmsg_client *c)
{
	uint8_t pks[4][SW_PK_LEN];
	size_t n = dmsg_client_servers(c, pks, 4);

	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < n; j++)
			if (memcmp(srv[i].kp.pk, pks[j], SW_PK_LEN) == 0)
				return &srv[i];
	return NULL;
}

struct moved {
	struct peer *p;
	struct sw_test_proc *gone;
};

static int
moved_away(void *arg)
{
	struct moved *m = arg;
	struct sw_test_proc *now = server_of(m->p->c);

	return now != NULL && now != m->gone && dmsg_client_registered(m->p->c);
}

static int
got_five(void *arg)
{
	return ((struct end *)arg)->rx >= 5;
}

/* Kill A's server: streams through it end, A moves to the other and is reachable again. */
static void
test_session_drop_reconnect(void **state)
{
	struct peer p[2];
	struct server s = {.echo = 1};
	struct dmsg_listener *l;
	struct sw_test_proc *gone;
	struct moved m;
	struct end b, b2;

	(void)state;
	pair_start(p);
	l = dmsg_client_listen(p[0].c, 17, on_accept, &s);
	/* B dials A, so the stream goes through A's only server */
	end_init(&b, dial_ok(&p[1], &p[0], 17));
	assert_int_equal(sw_test_run_until(base, &s.n, WAIT_MS), 0);
	gone = server_of(p[0].c);
	assert_non_null(gone);
	sw_test_proc_kill(gone);
	assert_int_equal(sw_test_run_until(base, &b.closed, WAIT_MS), 0);
	assert_int_equal(b.why, DMSG_END_SESSION_LOST);
	assert_int_equal(sw_test_run_until(base, &s.ends[0].closed, WAIT_MS), 0);
	assert_int_equal(s.ends[0].why, DMSG_END_SESSION_LOST);
	m.p = &p[0];
	m.gone = gone;
	assert_int_equal(sw_test_run_until_fn(base, moved_away, &m, WAIT_MS), 0);
	/* and it can be dialled again */
	end_init(&b2, dial_ok(&p[1], &p[0], 17));
	assert_int_equal(dmsg_stream_write(b2.st, "again", 5), 0);
	assert_int_equal(sw_test_run_until_fn(base, got_five, &b2, WAIT_MS), 0);
	dmsg_stream_free(b.st);
	dmsg_stream_free(b2.st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
	/* bring the server back for anything after */
	assert_int_equal(sw_test_dmsg_server_start(gone, disc_url), 0);
}

static int
echoed_1mib(void *arg)
{
	return ((struct end *)arg)->rx >= (1u << 20);
}

/*
 * A dmsg-server killed (SIGKILL) while a bulk stream runs through it: both
 * ends see the session lost, the listener's client moves to the other server
 * and registers it, and a new dial carries a full bulk echo again.
 */
static void
test_server_killed_under_load(void **state)
{
	static uint8_t pattern[(1 << 16) + 7];
	struct peer p[2];
	struct server *s = calloc(1, sizeof(*s));
	struct dmsg_listener *l;
	struct sw_test_proc *gone;
	struct moved m;
	struct end a, a2;
	uint8_t h1[32], h2[32];

	(void)state;
	assert_non_null(s);
	s->echo = 1;
	s->shut_on_eof = 1;
	randombytes_buf(pattern, sizeof(pattern));
	pair_start(p);
	l = dmsg_client_listen(p[0].c, 18, on_accept, s);
	end_init(&a, dial_ok(&p[1], &p[0], 18));
	a.src = pattern;
	a.src_len = sizeof(pattern);
	a.to_send = UINT64_MAX; /* until the server dies */
	end_fill(&a);
	assert_int_equal(sw_test_run_until_fn(base, echoed_1mib, &a, WAIT_MS), 0);
	gone = server_of(p[0].c);
	assert_non_null(gone);
	sw_test_proc_kill(gone);
	assert_int_equal(sw_test_run_until(base, &a.closed, WAIT_MS), 0);
	assert_int_equal(a.why, DMSG_END_SESSION_LOST);
	assert_int_equal(sw_test_run_until(base, &s->ends[0].closed, WAIT_MS), 0);
	assert_int_equal(s->ends[0].why, DMSG_END_SESSION_LOST);
	m.p = &p[0];
	m.gone = gone;
	assert_int_equal(sw_test_run_until_fn(base, moved_away, &m, WAIT_MS), 0);
	/* Re-dial: a whole bulk echo through the other server. */
	end_init(&a2, dial_ok(&p[1], &p[0], 18));
	a2.src = pattern;
	a2.src_len = sizeof(pattern);
	a2.to_send = 16u << 20;
	a2.shut_when_sent = 1;
	end_fill(&a2);
	assert_int_equal(sw_test_run_until(base, &a2.closed, 60000), 0);
	assert_int_equal(a2.why, DMSG_END_DONE);
	assert_int_equal(a2.rx, a2.to_send);
	hash_final(&a2.tx_hash, h1);
	hash_final(&a2.rx_hash, h2);
	assert_memory_equal(h1, h2, 32);
	dmsg_stream_free(a.st);
	dmsg_stream_free(a2.st);
	server_free(s);
	dmsg_listener_free(l);
	pair_stop(p);
	free(s);
	/* bring the server back for anything after */
	assert_int_equal(sw_test_dmsg_server_start(gone, disc_url), 0);
}

static int
registered(void *arg)
{
	return dmsg_client_registered(((struct peer *)arg)->c);
}

/*
 * The dial cache: B dials A (a lookup, A's server cached); A restarts
 * (same key) on the other server; B's next dial goes to the cached server,
 * is refused (REJECT 1, no session), drops the entry, looks A up again
 * and reaches it.  A third dial starts from the cache and needs no lookup.
 */
static void
test_cache_peer_moved(void **state)
{
	struct peer p[2];
	struct server s = {.echo = 1};
	struct dmsg_listener *l;
	struct sw_test_proc *first;
	struct dmsg_dial_stats ds;
	struct end b, b2, b3;
	int tries = 0;

	(void)state;
	pair_start(p);
	l = dmsg_client_listen(p[0].c, 19, on_accept, &s);
	end_init(&b, dial_ok(&p[1], &p[0], 19));
	dmsg_client_dial_stats(p[1].c, &ds);
	assert_int_equal(ds.lookups, 1);
	assert_int_equal(ds.cache_hits, 0);
	assert_int_equal(ds.cached, 1);
	first = server_of(p[0].c);
	assert_non_null(first);
	dmsg_stream_free(b.st);
	server_free(&s);
	dmsg_listener_free(l);
	/* A comes back with the same key until it is on the other server */
	do {
		assert_true(tries++ < 64); /* each try lands there with p = 1/2 */
		dmsg_client_free(p[0].c);
		peer_restart(&p[0]);
		assert_int_equal(sw_test_run_until_fn(base, registered, &p[0], WAIT_MS), 0);
	} while (server_of(p[0].c) == first);
	l = dmsg_client_listen(p[0].c, 19, on_accept, &s);
	end_init(&b2, dial_ok(&p[1], &p[0], 19));
	assert_int_equal(dmsg_stream_write(b2.st, "again", 5), 0);
	assert_int_equal(sw_test_run_until_fn(base, got_five, &b2, WAIT_MS), 0);
	dmsg_client_dial_stats(p[1].c, &ds);
	assert_int_equal(ds.cache_hits, 1);
	assert_int_equal(ds.redials, 1);
	assert_int_equal(ds.lookups, 2);
	/* the fresh entry is cached again */
	end_init(&b3, dial_ok(&p[1], &p[0], 19));
	dmsg_client_dial_stats(p[1].c, &ds);
	assert_int_equal(ds.cache_hits, 2);
	assert_int_equal(ds.lookups, 2);
	assert_int_equal(ds.redials, 1);
	dmsg_stream_free(b2.st);
	dmsg_stream_free(b3.st);
	server_free(&s);
	dmsg_listener_free(l);
	pair_stop(p);
}

/*
 * The cache is bounded (2 peers here): dialling a third peer pushes out
 * the least recently used, whose next dial is a lookup again.  A failed
 * lookup (an unknown peer) caches nothing.
 */
static void
test_cache_bounded(void **state)
{
	struct peer p[4], nobody;
	struct server s = {0};
	struct dmsg_listener *l[3];
	struct dmsg_stream *st[5];
	struct dmsg_dial_stats ds;
	struct dial d = {0};

	(void)state;
	cache_max = 2;
	peer_start(&p[0]);
	cache_max = 0;
	for (int i = 1; i < 4; i++) {
		peer_start(&p[i]);
		assert_int_equal(sw_test_run_until_fn(base, registered, &p[i], WAIT_MS), 0);
		l[i - 1] = dmsg_client_listen(p[i].c, 20, on_accept, &s);
	}
	assert_int_equal(sw_test_run_until_fn(base, registered, &p[0], WAIT_MS), 0);
	st[0] = dial_ok(&p[0], &p[1], 20);
	st[1] = dial_ok(&p[0], &p[2], 20);
	st[2] = dial_ok(&p[0], &p[1], 20); /* a hit: p[1] is now the most recent */
	st[3] = dial_ok(&p[0], &p[3], 20); /* p[2] goes */
	dmsg_client_dial_stats(p[0].c, &ds);
	assert_int_equal(ds.lookups, 3);
	assert_int_equal(ds.cache_hits, 1);
	assert_int_equal(ds.cached, 2);
	st[4] = dial_ok(&p[0], &p[2], 20);
	dmsg_client_dial_stats(p[0].c, &ds);
	assert_int_equal(ds.lookups, 4);
	assert_int_equal(ds.cached, 2);
	sw_keypair_generate(&nobody.kp);
	assert_non_null(dmsg_client_dial(p[0].c, nobody.kp.pk, 20, 15000, on_dial, &d));
	assert_int_equal(sw_test_run_until(base, &d.done, WAIT_MS), 0);
	assert_null(d.st);
	dmsg_client_dial_stats(p[0].c, &ds);
	assert_int_equal(ds.lookups, 5);
	assert_int_equal(ds.cached, 2);
	for (int i = 0; i < 5; i++)
		dmsg_stream_free(st[i]);
	server_free(&s);
	for (int i = 0; i < 3; i++)
		dmsg_listener_free(l[i]);
	for (int i = 0; i < 4; i++)
		dmsg_client_free(p[i].c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_dial_echo),
		cmocka_unit_test(test_reject_no_listener),
		cmocka_unit_test(test_dial_unknown_peer),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_window_pause),
		cmocka_unit_test(test_reject_backlog),
		cmocka_unit_test(test_concurrent_streams),
		cmocka_unit_test(test_bulk_echo),
		cmocka_unit_test(test_cache_peer_moved),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_server_killed_under_load),
		cmocka_unit_test(test_session_drop_reconnect),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
