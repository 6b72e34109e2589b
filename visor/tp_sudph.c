/*
 * tp_sudph.c: transports over UDP hole-punched through the address-resolver
 * (visor.md "sudph"; the design is in docs/visor.md).
 *
 * One UDP socket per visor carries everything: the signed bind, heartbeat
 * and unbind datagrams to the resolver and its acks and dials, and every
 * sudph transport's datagrams, which start with a kind byte:
 *
 *   0x11 HS1    sid_i u32 | Noise XK message 1            (initiator, resent)
 *   0x12 HS2    sid_i u32 | sid_r u32 | message 2         (responder, per HS1)
 *   0x13 HS3    sid_r u32 | message 3 (payload: our PK)   (initiator, resent)
 *   0x14 DATA   sid u32 | nonce u64 | ChaChaPoly(sudph_rel header ‖ packet)
 *               (or a fragment of one: sudph_rel.h)
 *   0x15 PUNCH  anything: opens our NAT toward a peer; ignored on receipt
 *
 * The one idea: the receiver's session id picks the transport, the explicit
 * nonce (authenticated with the header as associated data) lets datagrams
 * be decrypted in any order and is checked against a sliding replay window,
 * and above the cipher sudph_rel makes the packets arrive once each, in
 * order and whole (one over 32768 bytes travels as fragments).  A datagram
 * is believed only after all of that: its length, its kind, its session,
 * its replay window, its tag.  Drops are counted by reason in
 * visor_sudph_dropped_total.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "dmsg_wire.h"
#include "httpauth_client.h"
#include "log.h"
#include "metrics.h"
#include "nat.h"
#include "netaddr.h"
#include "noise.h"
#include "sudph_rel.h"
#include "tp_int.h"
#include "udp.h"
#include "visor.h"

#define SU_PROLOGUE      "sudph/1"
#define SU_HS1           0x11
#define SU_HS2           0x12
#define SU_HS3           0x13
#define SU_DATA          0x14
#define SU_PUNCH         0x15
#define SU_HS_MS         5000   /* the whole handshake */
#define SU_RESEND_MS     200    /* handshake messages and punches */
#define SU_MAX_HANDSHAKES 64
#define SU_DATA_HDR      13     /* kind, sid, nonce: the associated data */
#define SU_MAX_DGRAM     (SU_DATA_HDR + NOISE_TAGLEN + SREL_HDR + SREL_MAX_FRAG)
#define SU_MAX_CANDIDATES 4
#define SU_MAX_PUNCHES   32
#define SU_READ_BATCH    64
/* The resolver (services.md): type u8 | pk[32] | sig[64] | json. */
#define AR_HDR           (1 + SW_PK_LEN + SW_SIG_LEN)
#define AR_MAX           1200
#define AR_BIND          1
#define AR_HEARTBEAT     2
#define AR_UNBIND        3
#define AR_ACK           4
#define AR_DIAL          5
#define AR_HEARTBEAT_MS  10000
#define AR_REBIND_MS     25000  /* no ack this long: bind again */
#define AR_RETRY_MS      1000

enum su_state {
	SU_RESOLVING = 0, /* initiator: asking the resolver */
	SU_SENT_HS1,      /* initiator: HS1 out, waiting for HS2 */
	SU_SENT_HS2,      /* responder: HS2 out, waiting for HS3 */
	SU_UNCONFIRMED,   /* initiator: keys ready, HS3 resent until the peer speaks */
	SU_UP,
};

struct su_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct sudph_conn {
	struct vtp *t;
	struct sudph *s;
	enum su_state state;
	uint32_t sid_local, sid_remote;
	struct su_addr peer;
	struct su_addr cand[SU_MAX_CANDIDATES];
	size_t ncand;
	struct noise_hs hs;
	struct noise_cipher tx, rx;
	uint64_t rx_max;          /* highest nonce accepted + 1 (0: none yet) */
	uint64_t rx_bits;         /* bit i: nonce rx_max - 1 - i seen */
	uint8_t hsmsg[128];       /* our last handshake datagram, for resends */
	size_t hslen;
	long long deadline_ms;
	struct event *timer, *ack_ev;
	struct sw_authreq *resolve;
	struct srel rel;
	int rel_on;
};

struct su_punch {
	struct su_addr to;
	int left;
	long long next_ms;
};

struct sudph {
	struct vtp_mgr *m;
	int fd;
	struct event *rd, *bind_timer, *punch_timer;
	struct su_addr resolver;
	int has_resolver_pk;
	uint8_t resolver_pk[SW_PK_LEN];
	int bound_port;
	long long last_ack_ms;
	char public_addr[64];
	struct su_punch punches[SU_MAX_PUNCHES];
	struct sw_metric *m_drop, *m_rtx;
};

/*
 * One process, one thread: static buffers, one per direction and step, so
 * that sending from inside a receive (an ack, a PONG) never overwrites a
 * datagram still being read.
 */
static uint8_t rxbuf[SU_MAX_DGRAM + 64], rxplain[SU_MAX_DGRAM];
static uint8_t txbuf[SU_MAX_DGRAM], txplain[SU_MAX_DGRAM], sendpkt[VTP_MAX_PACKET];

/* sudph_rel carries any packet routing.md allows, fragmented past a datagram. */
_Static_assert(SREL_MAX_PACKET == VTP_MAX_PACKET, "sudph must carry every packet");

static void
drop(struct sudph *s, const char *why)
{
	sw_metric_add(s->m_drop, (const char *[]){why}, 1);
}

static const char *
vname(const struct sudph *s)
{
	return s->m->v->name;
}

static int
addr_eq(const struct su_addr *a, const struct sockaddr_storage *b, socklen_t blen)
{
	return a->len == blen && memcmp(&a->ss, b, blen) == 0;
}

static int
addr_parse(const char *text, struct su_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->len = sw_udp_addr_parse(text, &a->ss);
	return a->len == 0 ? -1 : 0;
}

static void
send_to(struct sudph *s, const struct su_addr *to, const void *buf, size_t len)
{
	/* A datagram that cannot go now is a lost one: the layers above resend. */
	if (s->fd != -1 && sendto(s->fd, buf, len, 0, (const struct sockaddr *)&to->ss,
	    to->len) == -1)
		drop(s, "send_failed");
}

/* ---- the conn's lifecycle ---- */

static struct sudph_conn *
conn_by_sid(const struct vtp_mgr *m, uint32_t sid)
{
	for (struct vtp *t = m->head; t != NULL; t = t->next)
		if (t->kind == VTP_SUDPH && t->su != NULL && t->su->sid_local == sid)
			return t->su;
	return NULL;
}

static uint32_t
fresh_sid(const struct vtp_mgr *m)
{
	uint32_t sid;

	do
		sid = randombytes_random();
	while (sid == 0 || conn_by_sid(m, sid) != NULL);
	return sid;
}

static int rel_out(void *arg, const uint8_t *hdr, const uint8_t *payload, size_t len);
static int rel_deliver(void *arg, const uint8_t *pkt, size_t len);
static const struct srel_ops rel_ops = {rel_out, rel_deliver};

static void conn_tick(evutil_socket_t fd, short what, void *arg);

static void
ack_flush(evutil_socket_t fd, short what, void *arg)
{
	struct sudph_conn *c = arg;

	(void)fd;
	(void)what;
	srel_flush_ack(&c->rel);
}

static struct sudph_conn *
conn_new(struct vtp *t)
{
	struct sudph_conn *c = calloc(1, sizeof(*c));
	struct event_base *base = sw_svc_base(t->m->v->svc);

	if (c == NULL)
		return NULL;
	c->t = t;
	c->s = t->m->su;
	c->sid_local = fresh_sid(t->m);
	c->timer = evtimer_new(base, conn_tick, c);
	c->ack_ev = event_new(base, -1, 0, ack_flush, c);
	if (c->timer == NULL || c->ack_ev == NULL) {
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->ack_ev != NULL)
			event_free(c->ack_ev);
		free(c);
		return NULL;
	}
	c->deadline_ms = sw_mono_ms() + SU_HS_MS;
	t->su = c;
	return c;
}

void
tp_sudph_release(struct vtp *t)
{
	struct sudph_conn *c = t->su;

	if (c == NULL)
		return;
	sw_authreq_cancel(c->resolve);
	event_free(c->timer);
	event_free(c->ack_ev);
	if (c->rel_on)
		srel_free(&c->rel);
	noise_hs_reset(&c->hs);
	sodium_memzero(&c->tx, sizeof(c->tx));
	sodium_memzero(&c->rx, sizeof(c->rx));
	free(c);
	t->su = NULL;
}

static int
hs_init(struct sudph_conn *c, int initiator)
{
	uint8_t spriv[32], rs[32];
	struct noise_hs_params p = {
		.pattern = NOISE_XK,
		.initiator = initiator,
		.prologue = (const uint8_t *)SU_PROLOGUE,
		.prologue_len = strlen(SU_PROLOGUE),
		.s_priv = spriv,
	};
	int r;

	if (sw_sk_to_x25519(spriv, &c->t->m->v->kp) == -1)
		return -1;
	if (initiator) {
		if (sw_pk_to_x25519(rs, c->t->pk) == -1)
			return -1;
		p.rs = rs;
	}
	r = noise_hs_init(&c->hs, &p);
	sodium_memzero(spriv, sizeof(spriv));
	return r;
}

/* Keys are ready: the retransmission layer starts. */
static int
keys_ready(struct sudph_conn *c)
{
	if (noise_hs_split(&c->hs, &c->tx, &c->rx) == -1)
		return -1;
	noise_hs_reset(&c->hs);
	srel_init(&c->rel, &rel_ops, c);
	c->rel_on = 1;
	return 0;
}

static void
arm(struct sudph_conn *c, long long ms)
{
	sw_timer_in(c->timer, ms < 1 ? 1 : ms);
}

/* ---- the transport's datagrams ---- */

static int
rel_out(void *arg, const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	struct sudph_conn *c = arg;
	uint8_t *d = txbuf;
	size_t n;

	if (len > SREL_MAX_FRAG)
		return -1;
	memcpy(txplain, hdr, SREL_HDR);
	if (len > 0)
		memcpy(txplain + SREL_HDR, payload, len);
	d[0] = SU_DATA;
	sw_put_u32(d + 1, c->sid_remote);
	sw_put_u32(d + 5, (uint32_t)(c->tx.n >> 32));
	sw_put_u32(d + 9, (uint32_t)c->tx.n);
	if (noise_encrypt(&c->tx, d, SU_DATA_HDR, txplain, SREL_HDR + len, d + SU_DATA_HDR,
	    sizeof(txbuf) - SU_DATA_HDR, &n) == -1)
		return -1;
	send_to(c->s, &c->peer, d, SU_DATA_HDR + n);
	return 0;
}

static int
rel_deliver(void *arg, const uint8_t *pkt, size_t len)
{
	struct sudph_conn *c = arg;

	return vtp_rx(c->t, pkt, len);
}

int
tp_sudph_room(const struct vtp *t, size_t len)
{
	const struct sudph_conn *c = t->su;

	return c != NULL && c->rel_on && srel_room(&c->rel, VTP_PKT_HDR + len);
}

int
tp_sudph_pause(struct vtp *t, int paused)
{
	struct sudph_conn *c = t->su;

	if (c == NULL || !c->rel_on)
		return 0;
	if (srel_pause(&c->rel, paused) == -1)
		return -1;
	if (!paused && c->rel.ack_due)
		event_active(c->ack_ev, 0, 0); /* the window opens at the peer */
	return 0;
}

int
tp_sudph_send(struct vtp *t, const uint8_t *hdr, const void *payload, size_t len)
{
	struct sudph_conn *c = t->su;
	uint8_t *pkt = sendpkt;
	long long next;

	if (c == NULL || !c->rel_on || VTP_PKT_HDR + len > VTP_MAX_PACKET)
		return -1;
	memcpy(pkt, hdr, VTP_PKT_HDR);
	if (len > 0)
		memcpy(pkt + VTP_PKT_HDR, payload, len);
	if (srel_send(&c->rel, pkt, VTP_PKT_HDR + len, sw_mono_ms()) == -1)
		return -1;
	if (c->state == SU_UP && !evtimer_pending(c->timer, NULL)) {
		next = c->rel.rto;
		arm(c, next);
	}
	return 0;
}

/* Replay window: 64 nonces behind the highest seen. */
static int
replay_ok(const struct sudph_conn *c, uint64_t n)
{
	if (n >= c->rx_max)
		return 1;
	if (c->rx_max - 1 - n >= 64)
		return 0;
	return !(c->rx_bits & (1ull << (c->rx_max - 1 - n)));
}

static void
replay_mark(struct sudph_conn *c, uint64_t n)
{
	if (n >= c->rx_max) {
		uint64_t shift = n + 1 - c->rx_max;

		/* Bit i stands for nonce rx_max - 1 - i: shift, then n is bit 0. */
		c->rx_bits = (shift >= 64 ? 0 : c->rx_bits << shift) | 1;
		c->rx_max = n + 1;
		return;
	}
	c->rx_bits |= 1ull << (c->rx_max - 1 - n);
}

static void
on_data(struct sudph *s, const uint8_t *d, size_t n, const struct sockaddr_storage *from,
    socklen_t flen)
{
	struct sudph_conn *c;
	uint64_t nonce, bad;
	size_t plen;
	long long next;

	if (n < SU_DATA_HDR + NOISE_TAGLEN + SREL_HDR) {
		drop(s, "malformed");
		return;
	}
	if ((c = conn_by_sid(s->m, sw_get_u32(d + 1))) == NULL) {
		drop(s, "unknown_session");
		return;
	}
	if (!c->rel_on || c->state == SU_SENT_HS2) {
		drop(s, "not_ready");
		return;
	}
	nonce = ((uint64_t)sw_get_u32(d + 5) << 32) | sw_get_u32(d + 9);
	if (nonce == UINT64_MAX || !replay_ok(c, nonce)) {
		drop(s, "replay");
		return;
	}
	c->rx.n = nonce;
	if (noise_decrypt(&c->rx, d, SU_DATA_HDR, d + SU_DATA_HDR, n - SU_DATA_HDR, rxplain,
	    sizeof(rxplain), &plen) == -1) {
		drop(s, "bad_auth");
		return;
	}
	replay_mark(c, nonce);
	/* The peer's NAT may have moved it: follow authenticated datagrams. */
	if (!addr_eq(&c->peer, from, flen)) {
		memcpy(&c->peer.ss, from, flen);
		c->peer.len = flen;
	}
	if (c->state == SU_UNCONFIRMED) {
		c->state = SU_UP;
		event_del(c->timer);
	}
	bad = c->rel.st.bad_fragments;
	if (srel_input(&c->rel, rxplain, plen, sw_mono_ms()) == -1)
		return; /* the transport is gone */
	if (c->rel.st.bad_fragments > bad)
		sw_metric_add(s->m_drop, (const char *[]){"bad_fragment"},
		    (double)(c->rel.st.bad_fragments - bad));
	if (c->rel.ack_due)
		event_active(c->ack_ev, 0, 0);
	next = srel_tick(&c->rel, sw_mono_ms());
	if (next >= 0 && !evtimer_pending(c->timer, NULL))
		arm(c, next);
}

/* ---- handshake ---- */

static void
send_hs(struct sudph_conn *c)
{
	if (c->state == SU_SENT_HS1) {
		for (size_t i = 0; i < c->ncand; i++)
			send_to(c->s, &c->cand[i], c->hsmsg, c->hslen);
	} else {
		send_to(c->s, &c->peer, c->hsmsg, c->hslen);
	}
}

/* Initiator: the resolver said where the peer is. */
static void
start_hs1(struct sudph_conn *c)
{
	uint8_t *d = c->hsmsg;
	size_t n;

	if (hs_init(c, 1) == -1 ||
	    noise_hs_write(&c->hs, NULL, 0, d + 5, sizeof(c->hsmsg) - 5, &n) == -1) {
		vtp_lost(c->t, "sudph handshake setup failed");
		return;
	}
	d[0] = SU_HS1;
	sw_put_u32(d + 1, c->sid_local);
	c->hslen = 5 + n;
	c->state = SU_SENT_HS1;
	c->deadline_ms = sw_mono_ms() + SU_HS_MS;
	send_hs(c);
	arm(c, SU_RESEND_MS);
}

static size_t
handshakes(const struct vtp_mgr *m)
{
	size_t k = 0;

	for (const struct vtp *t = m->head; t != NULL; t = t->next)
		k += t->kind == VTP_SUDPH && t->su != NULL && t->su->state == SU_SENT_HS2;
	return k;
}

static void
on_hs1(struct sudph *s, const uint8_t *d, size_t n, const struct sockaddr_storage *from,
    socklen_t flen)
{
	uint32_t sid_i = sw_get_u32(d + 1);
	struct vtp *t;
	struct sudph_conn *c;
	size_t w;

	if (n != 5 + 48) {
		drop(s, "malformed");
		return;
	}
	/* A resent HS1: answer with the same HS2. */
	for (t = s->m->head; t != NULL; t = t->next)
		if (t->kind == VTP_SUDPH && t->su != NULL && !t->initiator &&
		    t->su->sid_remote == sid_i && addr_eq(&t->su->peer, from, flen)) {
			if (t->su->state == SU_SENT_HS2)
				send_hs(t->su);
			return;
		}
	if (s->m->stopping || handshakes(s->m) >= SU_MAX_HANDSHAKES) {
		drop(s, "busy");
		return;
	}
	if ((t = vtp_new(s->m, VTP_SUDPH, NULL, 0)) == NULL)
		return;
	if ((c = conn_new(t)) == NULL) {
		vtp_lost(t, "out of memory");
		return;
	}
	c->sid_remote = sid_i;
	memcpy(&c->peer.ss, from, flen);
	c->peer.len = flen;
	if (hs_init(c, 0) == -1 || noise_hs_read(&c->hs, d + 5, 48, NULL, 0, &w) == -1 ||
	    noise_hs_write(&c->hs, NULL, 0, c->hsmsg + 9, sizeof(c->hsmsg) - 9, &w) == -1) {
		drop(s, "bad_handshake");
		vtp_lost(t, "bad sudph handshake");
		return;
	}
	c->hsmsg[0] = SU_HS2;
	sw_put_u32(c->hsmsg + 1, sid_i);
	sw_put_u32(c->hsmsg + 5, c->sid_local);
	c->hslen = 9 + w;
	c->state = SU_SENT_HS2;
	send_hs(c);
	arm(c, SU_HS_MS);
}

static void
on_hs2(struct sudph *s, const uint8_t *d, size_t n, const struct sockaddr_storage *from,
    socklen_t flen)
{
	struct sudph_conn *c = n == 9 + 48 ? conn_by_sid(s->m, sw_get_u32(d + 1)) : NULL;
	size_t w;

	if (n != 9 + 48) {
		drop(s, "malformed");
		return;
	}
	if (c == NULL || !c->t->initiator) {
		drop(s, "unknown_session");
		return;
	}
	if (c->state != SU_SENT_HS1)
		return; /* a resent HS2: our HS3 is being resent anyway */
	if (noise_hs_read(&c->hs, d + 9, 48, NULL, 0, &w) == -1) {
		/* A forged HS2 kills this handshake: start it again, same sid. */
		drop(s, "bad_handshake");
		noise_hs_reset(&c->hs);
		start_hs1(c);
		return;
	}
	if (noise_hs_write(&c->hs, c->t->m->v->kp.pk, SW_PK_LEN, c->hsmsg + 5,
	    sizeof(c->hsmsg) - 5, &w) == -1 || keys_ready(c) == -1) {
		vtp_lost(c->t, "sudph handshake failed");
		return;
	}
	c->sid_remote = sw_get_u32(d + 5);
	memcpy(&c->peer.ss, from, flen);
	c->peer.len = flen;
	c->hsmsg[0] = SU_HS3;
	sw_put_u32(c->hsmsg + 1, c->sid_remote);
	c->hslen = 5 + w;
	c->state = SU_UNCONFIRMED;
	c->deadline_ms = sw_mono_ms() + SU_HS_MS;
	send_hs(c);
	arm(c, SU_RESEND_MS);
	vtp_up(c->t);
}

static void
on_hs3(struct sudph *s, const uint8_t *d, size_t n)
{
	struct sudph_conn *c = n >= 5 ? conn_by_sid(s->m, sw_get_u32(d + 1)) : NULL;
	uint8_t pk[SW_PK_LEN], x[32];
	const uint8_t *rs;
	size_t plen;
	struct vtp *t;

	if (n != 5 + 96) {
		drop(s, "malformed");
		return;
	}
	if (c == NULL || c->t->initiator) {
		drop(s, "unknown_session");
		return;
	}
	if (c->state == SU_UP) {
		/* Our confirming ack was lost: send another. */
		c->rel.ack_due = 1;
		srel_flush_ack(&c->rel);
		return;
	}
	if (c->state != SU_SENT_HS2)
		return;
	if (noise_hs_read(&c->hs, d + 5, 96, pk, sizeof(pk), &plen) == -1 || plen != SW_PK_LEN ||
	    (rs = noise_hs_remote_static(&c->hs)) == NULL || sw_pk_to_x25519(x, pk) == -1 ||
	    sodium_memcmp(x, rs, 32) != 0 || keys_ready(c) == -1) {
		drop(s, "bad_handshake");
		vtp_lost(c->t, "bad sudph handshake");
		return;
	}
	t = c->t;
	c->state = SU_UP;
	event_del(c->timer);
	if (vtp_incoming(t, pk) == -1)
		return;
	/* The ack that confirms the handshake goes before anyone hears of t. */
	c->rel.ack_due = 1;
	srel_flush_ack(&c->rel);
	vtp_up(t);
}

static void
conn_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sudph_conn *c = arg;
	long long now = sw_mono_ms(), next;

	(void)fd;
	(void)what;
	switch (c->state) {
	case SU_RESOLVING:
		return;
	case SU_SENT_HS1:
	case SU_SENT_HS2:
	case SU_UNCONFIRMED:
		if (now >= c->deadline_ms) {
			vtp_lost(c->t, c->state == SU_SENT_HS1 ?
			    "sudph: no answer from the peer (NAT not punched)" :
			    "sudph handshake timeout");
			return;
		}
		if (c->state != SU_SENT_HS2)
			send_hs(c);
		arm(c, c->state == SU_SENT_HS2 ? c->deadline_ms - now : SU_RESEND_MS);
		if (c->state != SU_UNCONFIRMED)
			return;
		break;
	case SU_UP:
		break;
	}
	{
		uint64_t before = c->rel.st.retransmits;

		next = srel_tick(&c->rel, now);
		if (c->rel.st.retransmits > before)
			sw_metric_add(c->s->m_rtx, NULL, (double)(c->rel.st.retransmits - before));
	}
	if (next == -2) {
		vtp_lost(c->t, "sudph send failed");
		return;
	}
	if (next >= 0 && c->state == SU_UP)
		arm(c, next);
}

/* ---- dialling ---- */

static void
add_candidate(struct sudph_conn *c, const char *ip, unsigned port)
{
	char text[80];

	if (c->ncand >= SU_MAX_CANDIDATES)
		return;
	sw_hostport_format(text, sizeof(text), ip, port);
	if (addr_parse(text, &c->cand[c->ncand]) == 0)
		c->ncand++;
}

static void
resolve_done(const struct sw_http_resp *r, void *arg)
{
	struct vtp *t = arg;
	struct sudph_conn *c = t->su;
	const cJSON *ra, *la, *port, *e;
	char why[128];

	c->resolve = NULL;
	if (r->status != 200) {
		snprintf(why, sizeof(why), r->status == 404 ? "peer has no sudph binding" :
		    "address-resolver answered HTTP %d", r->status);
		vtp_lost(t, why);
		return;
	}
	ra = cJSON_GetObjectItemCaseSensitive(r->json, "remote_addr");
	la = cJSON_GetObjectItemCaseSensitive(r->json, "local_addresses");
	port = cJSON_GetObjectItemCaseSensitive(r->json, "port");
	if (cJSON_IsString(ra) && addr_parse(ra->valuestring, &c->cand[0]) == 0)
		c->ncand = 1;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->json, "is_local")) &&
	    cJSON_IsNumber(port) && port->valuedouble >= 1 && port->valuedouble <= 65535)
		cJSON_ArrayForEach(e, la)
			if (cJSON_IsString(e))
				add_candidate(c, e->valuestring, (unsigned)port->valuedouble);
	if (c->ncand == 0) {
		vtp_lost(t, "address-resolver gave no usable sudph address");
		return;
	}
	start_hs1(c);
}

void
tp_sudph_dial(struct vtp *t)
{
	struct sudph *s = t->m->su;
	char path[96], pk[SW_PK_HEX];
	struct sudph_conn *c;

	if (visor_nat_symmetric(t->m->v->nat)) {
		vtp_lost(t, "sudph not tried: this visor is behind a symmetric NAT");
		return;
	}
	if (s == NULL || s->fd == -1) {
		vtp_lost(t, "sudph is not available (no UDP socket)");
		return;
	}
	if ((c = conn_new(t)) == NULL) {
		vtp_lost(t, "out of memory");
		return;
	}
	sw_hex_encode(pk, t->pk, SW_PK_LEN);
	snprintf(path, sizeof(path), "/resolve/sudph/%s", pk);
	c->resolve = sw_authclient_request(t->m->ar, "GET", path, NULL, 0, VTP_HTTP_MS,
	    resolve_done, t);
	if (c->resolve == NULL)
		vtp_lost(t, "cannot ask the address-resolver");
}

/* ---- the resolver ---- */

static void
ar_send(struct sudph *s, int type, const char *json)
{
	uint8_t buf[AR_MAX], msg[AR_MAX];
	size_t jlen = strlen(json);

	if (s->resolver.len == 0 || AR_HDR + jlen > sizeof(buf))
		return;
	msg[0] = (uint8_t)type;
	memcpy(msg + 1, s->m->v->kp.pk, SW_PK_LEN);
	memcpy(msg + 1 + SW_PK_LEN, json, jlen);
	memcpy(buf, msg, 1 + SW_PK_LEN);
	sw_sign(buf + 1 + SW_PK_LEN, msg, 1 + SW_PK_LEN + jlen, &s->m->v->kp);
	memcpy(buf + AR_HDR, json, jlen);
	send_to(s, &s->resolver, buf, AR_HDR + jlen);
}

/* Our IPv4 addresses but loopback, for peers behind the same NAT. */
static void
bind_json(struct sudph *s, char *out, size_t cap)
{
	struct ifaddrs *ifs;
	size_t used = (size_t)snprintf(out, cap, "{\"local_addresses\":[");
	int k = 0;

	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i != NULL && k < 4; i = i->ifa_next) {
			char ip[INET_ADDRSTRLEN];

			if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip,
			    sizeof(ip));
			if (strncmp(ip, "127.", 4) == 0)
				continue;
			used += (size_t)snprintf(out + used, cap - used, "%s\"%s\"", k++ ? "," : "",
			    ip);
		}
		freeifaddrs(ifs);
	}
	snprintf(out + used, cap - used, "],\"port\":%d}", s->bound_port);
}

static void
bind_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sudph *s = arg;
	long long now = sw_mono_ms();
	char json[512];

	(void)fd;
	(void)what;
	if (s->last_ack_ms == 0 || now - s->last_ack_ms >= AR_REBIND_MS) {
		bind_json(s, json, sizeof(json));
		ar_send(s, AR_BIND, json);
		sw_timer_in(s->bind_timer, AR_RETRY_MS);
		return;
	}
	ar_send(s, AR_HEARTBEAT, "{}");
	sw_timer_in(s->bind_timer, AR_HEARTBEAT_MS);
}

static void
punch_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sudph *s = arg;
	long long now = sw_mono_ms(), next = -1;
	uint8_t p[8] = {SU_PUNCH};

	(void)fd;
	(void)what;
	for (size_t i = 0; i < SU_MAX_PUNCHES; i++) {
		struct su_punch *q = &s->punches[i];

		if (q->left == 0)
			continue;
		if (q->next_ms <= now) {
			send_to(s, &q->to, p, sizeof(p));
			q->left--;
			q->next_ms = now + SU_RESEND_MS;
		}
		if (q->left > 0 && (next == -1 || q->next_ms - now < next))
			next = q->next_ms - now;
	}
	if (next >= 0)
		sw_timer_in(s->punch_timer, next);
}

/* Someone resolved us: punch toward them for a second (HS1 does the rest). */
static void
on_dial(struct sudph *s, const cJSON *o)
{
	const cJSON *addr = cJSON_GetObjectItemCaseSensitive(o, "addr");
	struct su_punch *q = NULL;

	if (!cJSON_IsString(addr))
		return;
	for (size_t i = 0; i < SU_MAX_PUNCHES && q == NULL; i++)
		if (s->punches[i].left == 0)
			q = &s->punches[i];
	if (q == NULL) {
		drop(s, "busy");
		return;
	}
	if (addr_parse(addr->valuestring, &q->to) == -1)
		return;
	q->left = 5;
	q->next_ms = 0;
	punch_tick(-1, 0, s);
}

static void
on_resolver(struct sudph *s, const uint8_t *d, size_t n)
{
	uint8_t msg[AR_MAX];
	size_t jlen;
	cJSON *o;

	if (n < AR_HDR || n > AR_MAX || (d[0] != AR_ACK && d[0] != AR_DIAL)) {
		drop(s, "malformed");
		return;
	}
	jlen = n - AR_HDR;
	msg[0] = d[0];
	memcpy(msg + 1, d + 1, SW_PK_LEN);
	memcpy(msg + 1 + SW_PK_LEN, d + AR_HDR, jlen);
	if ((s->has_resolver_pk && memcmp(d + 1, s->resolver_pk, SW_PK_LEN) != 0) ||
	    sw_verify(d + 1 + SW_PK_LEN, msg, 1 + SW_PK_LEN + jlen, d + 1) == -1) {
		drop(s, "bad_resolver_signature");
		return;
	}
	if ((o = cJSON_ParseWithLength((const char *)d + AR_HDR, jlen)) == NULL) {
		drop(s, "malformed");
		return;
	}
	if (d[0] == AR_ACK) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "addr");

		if (s->last_ack_ms == 0 || sw_mono_ms() - s->last_ack_ms >= AR_REBIND_MS) {
			/* Bound (again): heartbeats from now on. */
			sw_timer_in(s->bind_timer, AR_HEARTBEAT_MS);
			sw_log_info(vname(s), "sudph bound", "addr=%s",
			    cJSON_IsString(a) ? a->valuestring : "?");
		}
		s->last_ack_ms = sw_mono_ms();
		if (cJSON_IsString(a))
			snprintf(s->public_addr, sizeof(s->public_addr), "%s", a->valuestring);
	} else {
		on_dial(s, o);
	}
	cJSON_Delete(o);
}

/* ---- the socket ---- */

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct sudph *s = arg;

	(void)what;
	for (int i = 0; i < SU_READ_BATCH && s->fd != -1; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n;

		memset(&from, 0, sizeof(from));
		n = recvfrom(fd, rxbuf, sizeof(rxbuf), MSG_TRUNC, (struct sockaddr *)&from,
		    &flen);
		if (n == -1)
			return;
		if ((size_t)n > SU_MAX_DGRAM) {
			drop(s, "oversize");
			continue;
		}
		if (n < 1) {
			drop(s, "malformed");
			continue;
		}
		if (addr_eq(&s->resolver, &from, flen)) {
			on_resolver(s, rxbuf, (size_t)n);
			continue;
		}
		switch (rxbuf[0]) {
		case SU_DATA:
			on_data(s, rxbuf, (size_t)n, &from, flen);
			break;
		case SU_HS1:
			on_hs1(s, rxbuf, (size_t)n, &from, flen);
			break;
		case SU_HS2:
			on_hs2(s, rxbuf, (size_t)n, &from, flen);
			break;
		case SU_HS3:
			on_hs3(s, rxbuf, (size_t)n);
			break;
		case SU_PUNCH:
			break;
		default:
			drop(s, "malformed");
			break;
		}
	}
}

/* The resolver's UDP address: address_resolver_udp, else the HTTP URL's host:port. */
static int
resolver_addr(struct sudph *s)
{
	const char *udp = sw_cfg_str(s->m->v->cfg, "address_resolver_udp");
	const char *url = sw_cfg_str(s->m->v->cfg, "address_resolver");
	char hp[128];
	size_t n;

	if (udp == NULL) {
		if (url == NULL || strncmp(url, "http://", 7) != 0)
			return -1;
		url += 7;
		n = strcspn(url, "/");
		if (n >= sizeof(hp))
			return -1;
		if (strncmp(url, "localhost:", 10) == 0)
			snprintf(hp, sizeof(hp), "127.0.0.1:%.*s", (int)(n - 10), url + 10);
		else
			snprintf(hp, sizeof(hp), "%.*s", (int)n, url);
		udp = hp;
	}
	return addr_parse(udp, &s->resolver);
}

int
tp_sudph_start(struct vtp_mgr *m)
{
	struct sudph *s = calloc(1, sizeof(*s));
	const char *listen = sw_cfg_str(m->v->cfg, "sudph_listen");
	const char *rpk = sw_cfg_str(m->v->cfg, "address_resolver_pk");
	struct sockaddr_storage bound;
	struct event_base *base = sw_svc_base(m->v->svc);

	if (s == NULL)
		return -1;
	s->m = m;
	s->fd = -1;
	m->su = s;
	s->m_drop = sw_metric_new(sw_svc_metrics(m->v->svc), "visor_sudph_dropped_total",
	    "sudph datagrams dropped, by reason", SW_COUNTER, (const char *[]){"reason", NULL},
	    NULL, 0);
	s->m_rtx = sw_metric_new(sw_svc_metrics(m->v->svc), "visor_sudph_retransmits_total",
	    "sudph packets sent again after their timeout", SW_COUNTER, NULL, NULL, 0);
	if (rpk != NULL) {
		if (sw_pk_parse(s->resolver_pk, rpk) == -1) {
			sw_log_error(vname(s), "address_resolver_pk must be a hex PK", NULL);
			return -1;
		}
		s->has_resolver_pk = 1;
	}
	if (resolver_addr(s) == -1)
		sw_log_warn(vname(s), "sudph: no numeric address-resolver UDP address "
		    "(address_resolver_udp): not bound", NULL);
	if ((s->fd = sw_udp_listen(listen != NULL ? listen : "0.0.0.0:0", &bound)) == -1) {
		sw_log_error(vname(s), "sudph: cannot open the UDP socket", "addr=%s error=\"%s\"",
		    listen != NULL ? listen : "0.0.0.0:0", strerror(errno));
		return -1;
	}
	{
		/* Room for a window of 16 KiB datagrams; the kernel caps it at rmem_max. */
		int sz = 4 << 20;

		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	s->bound_port = bound.ss_family == AF_INET ?
	    ntohs(((struct sockaddr_in *)&bound)->sin_port) :
	    ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	s->rd = event_new(base, s->fd, EV_READ | EV_PERSIST, on_read, s);
	s->bind_timer = evtimer_new(base, bind_tick, s);
	s->punch_timer = evtimer_new(base, punch_tick, s);
	if (s->rd == NULL || s->bind_timer == NULL || s->punch_timer == NULL ||
	    event_add(s->rd, NULL) == -1)
		return -1;
	sw_log_info(vname(s), "sudph listening", "port=%d", s->bound_port);
	if (s->resolver.len != 0)
		bind_tick(-1, 0, s);
	return 0;
}

void
tp_sudph_stop(struct vtp_mgr *m, int unbind)
{
	struct sudph *s = m->su;

	if (s == NULL)
		return;
	if (unbind && s->last_ack_ms != 0)
		ar_send(s, AR_UNBIND, "{}");
	if (s->rd != NULL)
		event_free(s->rd);
	if (s->bind_timer != NULL)
		event_free(s->bind_timer);
	if (s->punch_timer != NULL)
		event_free(s->punch_timer);
	if (s->fd != -1)
		close(s->fd);
	free(s);
	m->su = NULL;
}

cJSON *
vtp_mgr_sudph_json(const struct vtp_mgr *m)
{
	cJSON *o = cJSON_CreateObject();
	const struct sudph *s;

	if (o == NULL || m == NULL || (s = m->su) == NULL)
		return o;
	cJSON_AddNumberToObject(o, "port", s->bound_port);
	cJSON_AddBoolToObject(o, "bound", s->last_ack_ms != 0 &&
	    sw_mono_ms() - s->last_ack_ms < AR_REBIND_MS);
	cJSON_AddStringToObject(o, "public_addr", s->public_addr);
	return o;
}
