/*
 * test_transport: the visor's transport wire pieces.  The packet codec (a
 * table of cases), and the stcpr handshake (noise_link with the visor's
 * "stcpr/1" options) over a socketpair: a good handshake carrying packets
 * both ways, a wrong responder key, a dmsg/1 initiator (another prologue),
 * garbage, a truncated handshake (deadline) and a truncated transport message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "crypto.h"
#include "dmsg_wire.h"
#include "noise_link.h"
#include "tests/lib/testutil.h"
#include "visor/transport.h"

static struct sw_keypair ikp, rkp, other;

struct end {
	struct noise_link *l;
	int ready, closed, msgs;
	char reason[64];
	struct vtp_pkt last;
	uint8_t buf[VTP_MAX_PACKET];
	uint8_t peer[SW_PK_LEN];
};

static void
on_ready(struct noise_link *l, void *arg)
{
	struct end *e = arg;

	e->ready = 1;
	memcpy(e->peer, noise_link_remote_pk(l), SW_PK_LEN);
}

static void
on_message(struct noise_link *l, const uint8_t *msg, size_t len, void *arg)
{
	struct end *e = arg;

	memcpy(e->buf, msg, len);
	if (vtp_pkt_parse(e->buf, len, &e->last) == -1) {
		noise_link_close(l, "malformed packet");
		return;
	}
	e->msgs++;
}

static void
on_closed(struct noise_link *l, const char *reason, void *arg)
{
	struct end *e = arg;

	(void)l;
	e->closed = 1;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static const struct noise_link_cbs cbs = {.ready = on_ready, .message = on_message,
    .closed = on_closed};

static struct noise_link *
link_new(struct event_base *base, int fd, int initiator, const struct sw_keypair *kp,
    const uint8_t *rpk, struct end *e, const char *prologue, int hs_ms)
{
	struct noise_link_opts o = {.prologue = prologue, .handshake_timeout_ms = hs_ms,
	    .min_plain = VTP_PKT_HDR};
	struct bufferevent *b;

	evutil_make_socket_nonblocking(fd);
	b = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(b);
	return noise_link_new(base, b, initiator, kp, rpk, &cbs, e, &o, "test");
}

static int
setup(void **state)
{
	(void)state;
	if (sw_crypto_init() == -1)
		return -1;
	sw_keypair_generate(&ikp);
	sw_keypair_generate(&rkp);
	sw_keypair_generate(&other);
	return 0;
}

static void
test_packet_codec(void **state)
{
	static const struct {
		const char *name;
		size_t len;
		uint8_t type;
		int ok;
	} cases[] = {
		{"empty", 0, 0, 0},
		{"short header", 4, 0, 0},
		{"data, no payload", 5, VTP_PKT_DATA, 1},
		{"keepalive", 5, VTP_PKT_KEEPALIVE, 1},
		{"ping", 5 + 8, VTP_PKT_PING, 1},
		{"pong", 5 + 8, VTP_PKT_PONG, 1},
		{"close", 5, VTP_PKT_CLOSE, 1},
		{"handshake (routing.md)", 5 + 48, VTP_PKT_HANDSHAKE, 1},
		{"unknown type", 5, 6, 0},
		{"type 0xff", 9, 0xff, 0},
		{"largest", VTP_MAX_PACKET, VTP_PKT_DATA, 1},
		{"too long", VTP_MAX_PACKET + 1, VTP_PKT_DATA, 0},
	};
	static uint8_t buf[VTP_MAX_PACKET + 1];
	struct vtp_pkt p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 0xab, sizeof(buf));
		if (cases[i].len >= VTP_PKT_HDR)
			vtp_pkt_hdr(buf, cases[i].type, 0x01020304);
		else if (cases[i].len > 0)
			buf[0] = cases[i].type;
		int r = vtp_pkt_parse(buf, cases[i].len, &p);

		if (r != (cases[i].ok ? 0 : -1))
			fail_msg("case %s: parse returned %d", cases[i].name, r);
		if (r == 0) {
			assert_int_equal(p.type, cases[i].type);
			assert_int_equal(p.route_id, 0x01020304);
			assert_int_equal(p.len, cases[i].len - VTP_PKT_HDR);
			assert_ptr_equal(p.payload, buf + VTP_PKT_HDR);
		}
	}
	/* Big-endian route id on the wire. */
	vtp_pkt_hdr(buf, VTP_PKT_DATA, 0xdeadbeef);
	assert_memory_equal(buf, "\x00\xde\xad\xbe\xef", 5);
	assert_int_equal(vtp_pkt_parse(NULL, 5, &p), -1);
	enum vtp_kind k;
	assert_int_equal(vtp_kind_parse("stcpr", &k), 0);
	assert_int_equal(k, VTP_STCPR);
	assert_int_equal(vtp_kind_parse("sudph", &k), 0);
	assert_int_equal(k, VTP_SUDPH);
	assert_string_equal(vtp_kind_str(VTP_SUDPH), "sudph");
	assert_int_equal(vtp_kind_parse("udp", &k), -1);
	assert_string_equal(vtp_kind_str(VTP_DMSG), "dmsg");
}

static int
both_ready(void *arg)
{
	struct end *e = arg;

	return e[0].ready && e[1].ready;
}

static int
both_closed(void *arg)
{
	struct end *e = arg;

	return e[0].closed && e[1].closed;
}

static void
test_stcpr_good(void **state)
{
	struct event_base *base = event_base_new();
	struct end *e = calloc(2, sizeof(*e));
	uint8_t hdr[VTP_PKT_HDR], payload[1000];
	int fd[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	e[0].l = link_new(base, fd[0], 1, &ikp, rkp.pk, &e[0], "stcpr/1", 2000);
	e[1].l = link_new(base, fd[1], 0, &rkp, NULL, &e[1], "stcpr/1", 2000);
	assert_int_equal(sw_test_run_until_fn(base, both_ready, e, 2000), 0);
	/* Each side knows the other's Ed25519 key: message 3 proved the initiator's. */
	assert_memory_equal(e[1].peer, ikp.pk, SW_PK_LEN);
	assert_memory_equal(e[0].peer, rkp.pk, SW_PK_LEN);
	memset(payload, 7, sizeof(payload));
	vtp_pkt_hdr(hdr, VTP_PKT_PING, 0);
	assert_int_equal(noise_link_send(e[0].l, hdr, sizeof(hdr), payload, 8), 0);
	vtp_pkt_hdr(hdr, VTP_PKT_DATA, 77);
	assert_int_equal(noise_link_send(e[1].l, hdr, sizeof(hdr), payload, sizeof(payload)), 0);
	assert_int_equal(sw_test_run_until(base, &e[1].msgs, 2000), 0);
	assert_int_equal(sw_test_run_until(base, &e[0].msgs, 2000), 0);
	assert_int_equal(e[1].last.type, VTP_PKT_PING);
	assert_int_equal(e[1].last.len, 8);
	assert_int_equal(e[0].last.type, VTP_PKT_DATA);
	assert_int_equal(e[0].last.route_id, 77);
	assert_int_equal(e[0].last.len, sizeof(payload));
	/* Too large for one Noise message: refused, the link stays up. */
	assert_int_equal(noise_link_send(e[0].l, hdr, sizeof(hdr), payload, NOISE_LINK_MAX_PLAIN),
	    -1);
	assert_true(noise_link_ready(e[0].l));
	noise_link_free(e[0].l);
	assert_int_equal(sw_test_run_until(base, &e[1].closed, 2000), 0);
	noise_link_free(e[1].l);
	event_base_free(base);
	free(e);
}

/* The initiator expects another key, or speaks another prologue: both ends close. */
static void
test_stcpr_wrong_key_and_prologue(void **state)
{
	for (int k = 0; k < 2; k++) {
		struct event_base *base = event_base_new();
		struct end *e = calloc(2, sizeof(*e));
		int fd[2];

		(void)state;
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
		e[0].l = link_new(base, fd[0], 1, &ikp, k == 0 ? other.pk : rkp.pk, &e[0],
		    k == 0 ? "stcpr/1" : "dmsg/1", 1000);
		e[1].l = link_new(base, fd[1], 0, &rkp, NULL, &e[1], "stcpr/1", 1000);
		assert_int_equal(sw_test_run_until_fn(base, both_closed, e, 3000), 0);
		assert_false(e[0].ready);
		assert_false(e[1].ready);
		noise_link_free(e[0].l);
		noise_link_free(e[1].l);
		event_base_free(base);
		free(e);
	}
}

/*
 * A raw peer against a responder: garbage (a bad length), a truncated
 * message 1 then silence (the deadline), and, after a good handshake, a
 * transport message cut short and a forged one.
 */
static void
test_stcpr_garbage_and_truncated(void **state)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
		const char *reason;
	} cases[] = {
		{"zero length", "\x00\x00", 2, "bad handshake length"},
		{"huge length", "\xff\xff" "abc", 5, "bad handshake length"},
		{"message 1 of junk", "\x00\x30" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 50,
		    "handshake failed"},
		{"truncated message 1", "\x00\x30" "AAAA", 6, "handshake timeout"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct event_base *base = event_base_new();
		struct end e;
		int fd[2];

		memset(&e, 0, sizeof(e));
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
		e.l = link_new(base, fd[1], 0, &rkp, NULL, &e, "stcpr/1", 300);
		assert_int_equal(write(fd[0], cases[i].bytes, cases[i].len), (ssize_t)cases[i].len);
		if (sw_test_run_until(base, &e.closed, 2000) != 0)
			fail_msg("case %s: not closed", cases[i].name);
		assert_false(e.ready);
		if (strcmp(e.reason, cases[i].reason) != 0)
			fail_msg("case %s: reason %s", cases[i].name, e.reason);
		noise_link_free(e.l);
		close(fd[0]);
		event_base_free(base);
	}

	/* After the handshake: a short transport message and a forged one. */
	for (int k = 0; k < 2; k++) {
		struct event_base *base = event_base_new();
		struct end *e = calloc(2, sizeof(*e));
		int fd[2];
		uint8_t forged[2 + 40];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
		e[0].l = link_new(base, fd[0], 1, &ikp, rkp.pk, &e[0], "stcpr/1", 1000);
		e[1].l = link_new(base, dup(fd[1]), 0, &rkp, NULL, &e[1], "stcpr/1", 1000);
		assert_int_equal(sw_test_run_until_fn(base, both_ready, e, 2000), 0);
		memset(forged, 0x55, sizeof(forged));
		/* k 0: 4 bytes, shorter than a tag and a header; k 1: 40 bytes of noise. */
		forged[0] = 0;
		forged[1] = k == 0 ? 4 : 40;
		assert_int_equal(write(fd[0], forged, k == 0 ? 6 : sizeof(forged)),
		    k == 0 ? 6 : (ssize_t)sizeof(forged));
		assert_int_equal(sw_test_run_until(base, &e[1].closed, 2000), 0);
		assert_string_equal(e[1].reason, k == 0 ? "short transport message" :
		    "decryption failed");
		assert_int_equal(e[1].msgs, 0);
		noise_link_free(e[0].l);
		noise_link_free(e[1].l);
		close(fd[1]);
		event_base_free(base);
		free(e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packet_codec),
		cmocka_unit_test(test_stcpr_good),
		cmocka_unit_test(test_stcpr_wrong_key_and_prologue),
		cmocka_unit_test(test_stcpr_garbage_and_truncated),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
