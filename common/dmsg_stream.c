/*
 * dmsg_stream: one stream's end-to-end half (see dmsg_stream.h).
 *
 * The one idea: the application never re-enters itself.  Frames arrive
 * from the session and may call the read callback directly (the common,
 * fast case), but everything the application triggers by calling in
 * (resuming reads, setting callbacks, a stream ending) is delivered later
 * by one "kick" event per stream.  References (application, link, a
 * callback in progress) keep the struct alive across any of those calls,
 * so dmsg_stream_free() is safe from every callback.
 *
 * Windows count DATA payload bytes (KK ciphertext with its tag).  The
 * receiver grants a window's quarter at a time, once the application has
 * taken the data: bytes buffered while reads are paused are not granted,
 * which is what holds a fast writer back.
 */
#include "dmsg_stream_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "log.h"

#define GRANT_STEP   (DMSG_INITIAL_WINDOW / 4)
#define DEFAULT_LOWAT (64 * 1024)

static void stream_kick(struct dmsg_stream *st);
static void stream_check_done(struct dmsg_stream *st);

long long
dmsg_now_ms(struct event_base *base)
{
	struct timeval tv;

	if (base == NULL || event_base_gettimeofday_cached(base, &tv) == -1)
		gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static long long
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *
dmsg_stream_end_str(enum dmsg_stream_end why)
{
	switch (why) {
	case DMSG_END_DONE:
		return "done";
	case DMSG_END_RESET:
		return "reset";
	case DMSG_END_SESSION_LOST:
		return "session lost";
	case DMSG_END_IDLE:
		return "idle";
	case DMSG_END_PROTOCOL:
		return "protocol error";
	}
	return "?";
}

static void
stream_touch(struct dmsg_stream *st)
{
	st->last_active_ms = dmsg_now_ms(st->env->base);
}

static void
timer_arm(struct dmsg_stream *st, long long at_ms)
{
	long long d = at_ms - dmsg_now_ms(st->env->base);
	struct timeval tv;

	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(st->timer, &tv);
}

static void
stream_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_stream *st = arg;
	long long now = dmsg_now_ms(st->env->base);

	(void)fd;
	(void)what;
	if (st->state == DMSG_ST_DEAD)
		return;
	if (st->dial_cb != NULL) {
		/* still dialling: the deadline is the dial's */
		if (now >= st->dial_deadline_ms) {
			dmsg_stream_dial_fail(st, -1, "timeout");
			return;
		}
		timer_arm(st, st->dial_deadline_ms);
		return;
	}
	if (now - st->last_active_ms >= st->env->idle_ms) {
		sw_log_debug(st->env->svc, "stream idle", "id=%u", st->id);
		dmsg_stream_fail(st, DMSG_END_IDLE);
		return;
	}
	timer_arm(st, st->last_active_ms + st->env->idle_ms);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg);

struct dmsg_stream *
dmsg_stream_alloc(struct dmsg_stream_env *env)
{
	struct dmsg_stream *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->env = env;
	st->refs = 1;
	st->tx_window = DMSG_INITIAL_WINDOW;
	st->rx_window = DMSG_INITIAL_WINDOW;
	st->st.tx_granted = DMSG_INITIAL_WINDOW;
	st->st.rx_granted = DMSG_INITIAL_WINDOW;
	st->lowat = DEFAULT_LOWAT;
	if ((st->outq = evbuffer_new()) == NULL || (st->inq = evbuffer_new()) == NULL ||
	    (st->timer = evtimer_new(env->base, stream_timer, st)) == NULL ||
	    (st->kick = event_new(env->base, -1, 0, kick_cb, st)) == NULL)
		goto fail;
	stream_touch(st);
	return st;
fail:
	if (st->outq != NULL)
		evbuffer_free(st->outq);
	if (st->inq != NULL)
		evbuffer_free(st->inq);
	if (st->timer != NULL)
		event_free(st->timer);
	free(st);
	return NULL;
}

void
dmsg_stream_ref(struct dmsg_stream *st)
{
	st->refs++;
}

void
dmsg_stream_unref(struct dmsg_stream *st)
{
	if (--st->refs > 0)
		return;
	if (st->env->gone != NULL)
		st->env->gone(st);
	event_free(st->timer);
	event_free(st->kick);
	evbuffer_free(st->outq);
	evbuffer_free(st->inq);
	noise_hs_reset(&st->hs);
	noise_cipher_reset(&st->tx);
	noise_cipher_reset(&st->rx);
	free(st);
}

void
dmsg_stream_attach(struct dmsg_stream *st, const struct dmsg_link_ops *ops, void *link,
    uint32_t id)
{
	st->ops = ops;
	st->link = link;
	st->id = id;
	dmsg_stream_ref(st);
}

static void
stream_detach(struct dmsg_stream *st)
{
	void *link = st->link;

	if (link == NULL)
		return;
	st->ops->detach(link, st);
	st->link = NULL;
	st->waiting = 0;
	dmsg_stream_unref(st);
}

static int
stream_send(struct dmsg_stream *st, uint8_t type, const void *p, size_t len)
{
	if (st->link == NULL)
		return -1;
	stream_touch(st);
	return st->ops->send(st->link, type, st->id, p, len);
}

/* Ends the stream: off its link, closed callback from the loop. */
static void
stream_end(struct dmsg_stream *st, enum dmsg_stream_end why, int send_reset)
{
	if (st->state == DMSG_ST_DEAD)
		return;
	if (send_reset)
		stream_send(st, DMSG_RESET, NULL, 0);
	st->state = DMSG_ST_DEAD;
	evtimer_del(st->timer);
	stream_detach(st);
	st->end_why = why;
	st->end_due = 1;
	if (why != DMSG_END_DONE)
		evbuffer_drain(st->inq, evbuffer_get_length(st->inq));
	stream_kick(st);
}

void
dmsg_stream_end(struct dmsg_stream *st, enum dmsg_stream_end why)
{
	stream_end(st, why, 0);
}

void
dmsg_stream_fail(struct dmsg_stream *st, enum dmsg_stream_end why)
{
	stream_end(st, why, 1);
}

void
dmsg_stream_abort(struct dmsg_stream *st)
{
	if (st->state == DMSG_ST_DEAD)
		return;
	if (st->state == DMSG_ST_OPENING || st->state == DMSG_ST_OPEN)
		stream_send(st, DMSG_RESET, NULL, 0);
	st->state = DMSG_ST_DEAD;
	evtimer_del(st->timer);
	stream_detach(st);
	evbuffer_drain(st->inq, evbuffer_get_length(st->inq));
	evbuffer_drain(st->outq, evbuffer_get_length(st->outq));
}

void
dmsg_stream_dial_fail(struct dmsg_stream *st, int code, const char *err)
{
	dmsg_dial_cb *cb = st->dial_cb;
	void *arg = st->dial_arg;

	st->dial_cb = NULL;
	dmsg_stream_abort(st);
	if (cb != NULL && st->app_owned && st->env->redial != NULL) {
		st->dial_cb = cb;
		if (st->env->redial(st, code) == 0)
			return;
		st->dial_cb = NULL;
	}
	if (st->env->forget != NULL)
		st->env->forget(st);
	if (!st->app_owned)
		return;
	/* the handle dies with the callback */
	st->app_owned = 0;
	if (cb != NULL)
		cb(NULL, code, err, arg);
	dmsg_stream_unref(st);
}

void
dmsg_stream_dial_deadline(struct dmsg_stream *st, long long at_ms)
{
	st->dial_deadline_ms = at_ms;
	timer_arm(st, at_ms);
}

void
dmsg_stream_dial_done(struct dmsg_stream *st)
{
	dmsg_dial_cb *cb = st->dial_cb;

	st->dial_cb = NULL;
	timer_arm(st, st->last_active_ms + st->env->idle_ms);
	if (cb != NULL)
		cb(st, 0, NULL, st->dial_arg);
}

/* ---------- handshake ---------- */

int
dmsg_stream_env_keys(struct dmsg_stream_env *env, const struct sw_keypair *kp)
{
	/* the public half is derived here once, not in every stream's KK */
	if (sw_sk_to_x25519(env->xsk, kp) == -1 || crypto_scalarmult_base(env->xpk, env->xsk) != 0)
		return -1;
	return 0;
}

int
dmsg_stream_env_peer(struct dmsg_stream_env *env, const uint8_t pk[SW_PK_LEN], uint8_t x[32],
    uint8_t ss[32])
{
	size_t n = sizeof(env->xcache) / sizeof(env->xcache[0]);
	/* a PK is a point encoding: its last bytes are as good as a hash */
	size_t i = (size_t)(pk[SW_PK_LEN - 2] | (unsigned)pk[SW_PK_LEN - 3] << 8) % n;
	uint8_t nx[32], nss[32];

	if (!env->xcache[i].used || memcmp(env->xcache[i].pk, pk, SW_PK_LEN) != 0) {
		/* both or neither: a key whose secret is all zeros fails every KK anyway */
		if (sw_pk_to_x25519(nx, pk) == -1 || crypto_scalarmult(nss, env->xsk, nx) != 0) {
			sodium_memzero(nss, sizeof(nss));
			return -1;
		}
		memcpy(env->xcache[i].pk, pk, SW_PK_LEN);
		memcpy(env->xcache[i].x, nx, 32);
		memcpy(env->xcache[i].ss, nss, 32);
		env->xcache[i].used = 1;
		sodium_memzero(nss, sizeof(nss));
	}
	memcpy(x, env->xcache[i].x, 32);
	if (ss != NULL)
		memcpy(ss, env->xcache[i].ss, 32);
	return 0;
}

static int
kk_init(struct dmsg_stream *st, int initiator)
{
	struct noise_hs_params p;
	uint8_t rs[32], ss[32];
	int ret;

	if (dmsg_stream_env_peer(st->env, st->remote_pk, rs, ss) == -1)
		return -1;
	memset(&p, 0, sizeof(p));
	p.pattern = NOISE_KK;
	p.initiator = initiator != 0;
	p.prologue = (const uint8_t *)DMSG_STREAM_PROLOGUE;
	p.prologue_len = strlen(DMSG_STREAM_PROLOGUE);
	p.s_priv = st->env->xsk;
	p.s_pub = st->env->xpk;
	p.rs = rs;
	p.ss = ss;
	ret = noise_hs_init(&st->hs, &p);
	sodium_memzero(ss, sizeof(ss));
	return ret;
}

int
dmsg_stream_open(struct dmsg_stream *st, const uint8_t remote_pk[SW_PK_LEN],
    uint16_t remote_port, uint16_t local_port)
{
	struct dmsg_stream_req r;
	uint8_t msg[128];
	uint8_t *out = st->env->tx;
	size_t mlen;
	int n;

	memcpy(st->remote_pk, remote_pk, SW_PK_LEN);
	st->remote_port = remote_port;
	st->local_port = local_port;
	st->initiator = 1;
	if (kk_init(st, 1) == -1 || noise_hs_write(&st->hs, NULL, 0, msg, sizeof(msg), &mlen) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	r.version = 1;
	r.timestamp_ms = (uint64_t)wall_ms();
	memcpy(r.src_pk, st->env->kp->pk, SW_PK_LEN);
	r.src_port = local_port;
	memcpy(r.dst_pk, remote_pk, SW_PK_LEN);
	r.dst_port = remote_port;
	r.noise_len = (uint16_t)mlen;
	r.noise_msg = msg;
	if ((n = dmsg_stream_req_encode(&r, st->env->kp, out, DMSG_MAX_PAYLOAD)) == -1)
		return -1;
	sw_hash(st->req_hash, out, (size_t)n);
	if (stream_send(st, DMSG_OPEN, out, (size_t)n) == -1)
		return -1;
	st->state = DMSG_ST_OPENING;
	return 0;
}

static void
stream_opened(struct dmsg_stream *st)
{
	st->state = DMSG_ST_OPEN;
	stream_touch(st);
	if (st->dial_cb == NULL)
		timer_arm(st, st->last_active_ms + st->env->idle_ms);
}

int
dmsg_stream_accepted(struct dmsg_stream *st, const uint8_t *payload, size_t len)
{
	struct dmsg_stream_resp r;
	size_t plen;

	if (st->state != DMSG_ST_OPENING)
		return -1;
	if (dmsg_stream_resp_decode(payload, len, &r) == -1 ||
	    dmsg_stream_resp_verify(payload, len, &r, st->remote_pk) == -1 ||
	    sodium_memcmp(r.req_hash, st->req_hash, SW_HASH_LEN) != 0 ||
	    noise_hs_read(&st->hs, r.noise_msg, r.noise_len, NULL, 0, &plen) == -1 ||
	    !noise_hs_done(&st->hs) || noise_hs_split(&st->hs, &st->tx, &st->rx) == -1)
		return -1;
	noise_hs_reset(&st->hs);
	stream_opened(st);
	return 0;
}

int
dmsg_stream_check_request(const struct dmsg_stream_env *env, const uint8_t *buf, size_t len,
    struct dmsg_stream_req *req)
{
	long long skew;

	if (dmsg_stream_req_decode(buf, len, req) == -1 ||
	    memcmp(req->dst_pk, env->kp->pk, SW_PK_LEN) != 0 || req->src_port == 0 ||
	    req->dst_port == 0 || dmsg_stream_req_verify(buf, len, req) == -1)
		return DMSG_REJECT_BAD_REQUEST;
	skew = wall_ms() - (long long)req->timestamp_ms;
	if (req->timestamp_ms > (uint64_t)1 << 62 || skew > DMSG_REQ_MAX_SKEW_MS ||
	    skew < -DMSG_REQ_MAX_SKEW_MS)
		return DMSG_REJECT_BAD_REQUEST;
	return 0;
}

int
dmsg_stream_answer(struct dmsg_stream *st, const uint8_t *buf, size_t len,
    const struct dmsg_stream_req *req)
{
	struct dmsg_stream_resp r;
	uint8_t msg[128];
	uint8_t *out = st->env->tx;
	size_t mlen, plen;
	int n;

	memcpy(st->remote_pk, req->src_pk, SW_PK_LEN);
	st->remote_port = req->src_port;
	st->local_port = req->dst_port;
	st->initiator = 0;
	if (kk_init(st, 0) == -1 ||
	    noise_hs_read(&st->hs, req->noise_msg, req->noise_len, NULL, 0, &plen) == -1 ||
	    noise_hs_write(&st->hs, NULL, 0, msg, sizeof(msg), &mlen) == -1 ||
	    !noise_hs_done(&st->hs) || noise_hs_split(&st->hs, &st->tx, &st->rx) == -1)
		return -1;
	noise_hs_reset(&st->hs);
	memset(&r, 0, sizeof(r));
	r.version = 1;
	sw_hash(r.req_hash, buf, len);
	r.noise_len = (uint16_t)mlen;
	r.noise_msg = msg;
	if ((n = dmsg_stream_resp_encode(&r, st->env->kp, out, DMSG_MAX_PAYLOAD)) == -1)
		return -1;
	if (stream_send(st, DMSG_ACCEPT, out, (size_t)n) == -1)
		return -1;
	stream_opened(st);
	return 0;
}

/* ---------- data path ---------- */

static int
can_deliver(const struct dmsg_stream *st)
{
	return st->app_owned && st->cbs.read != NULL && !st->read_paused;
}

static void
maybe_grant(struct dmsg_stream *st, int force)
{
	uint8_t p[4];
	uint64_t n = st->credit;

	if (st->link == NULL || st->eof_recv || n == 0 || (!force && n < GRANT_STEP))
		return;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	sw_put_u32(p, (uint32_t)n);
	if (stream_send(st, DMSG_WINDOW, p, sizeof(p)) == -1)
		return;
	st->credit -= n;
	st->rx_window += n;
	st->st.rx_granted += n;
}

void
dmsg_stream_pump(struct dmsg_stream *st)
{
	uint8_t *buf = st->env->tx;
	size_t qlen, n, clen;

	while (st->state == DMSG_ST_OPEN && st->link != NULL &&
	    (qlen = evbuffer_get_length(st->outq)) > 0 && st->tx_window > NOISE_TAGLEN) {
		if (st->ops->congested(st->link)) {
			if (!st->waiting) {
				st->waiting = 1;
				st->ops->wait(st->link, st);
			}
			break;
		}
		n = qlen;
		if (n > DMSG_MAX_DATA_PLAIN)
			n = DMSG_MAX_DATA_PLAIN;
		if (n > st->tx_window - NOISE_TAGLEN)
			n = (size_t)(st->tx_window - NOISE_TAGLEN);
		evbuffer_remove(st->outq, buf, n);
		if (noise_encrypt(&st->tx, NULL, 0, buf, n, buf, DMSG_MAX_DATA, &clen) == -1) {
			dmsg_stream_fail(st, DMSG_END_PROTOCOL);
			return;
		}
		if (stream_send(st, DMSG_DATA, buf, clen) == -1)
			return;
		st->tx_window -= clen;
		st->st.tx_wire += clen;
		st->st.sent += n;
	}
	if (st->state != DMSG_ST_OPEN)
		return;
	if (st->above_lowat && evbuffer_get_length(st->outq) <= st->lowat)
		stream_kick(st);
	if (st->shut && !st->close_sent && evbuffer_get_length(st->outq) == 0) {
		st->close_sent = 1;
		stream_send(st, DMSG_CLOSE, NULL, 0);
		stream_check_done(st);
	}
}

static void
stream_check_done(struct dmsg_stream *st)
{
	if (st->state == DMSG_ST_OPEN && st->eof_recv && st->close_sent)
		stream_end(st, DMSG_END_DONE, 0);
}

/* Hand buffered data to the application while it takes it. */
static void
deliver_buffered(struct dmsg_stream *st)
{
	uint8_t *buf = st->env->rx;
	size_t n;

	while (can_deliver(st) && (n = evbuffer_get_length(st->inq)) > 0) {
		if (n > DMSG_MAX_DATA_PLAIN)
			n = DMSG_MAX_DATA_PLAIN;
		evbuffer_remove(st->inq, buf, n);
		/* grant what the ciphertext cost once the whole backlog is taken */
		if (evbuffer_get_length(st->inq) == 0) {
			st->credit += st->inq_wire;
			st->inq_wire = 0;
		}
		st->cbs.read(st, buf, n, st->cb_arg);
	}
	maybe_grant(st, 0);
}

static int
input_data(struct dmsg_stream *st, const uint8_t *p, size_t len)
{
	uint8_t *buf = st->env->rx;
	size_t plen;

	if (st->eof_recv || len > st->rx_window || len < NOISE_TAGLEN ||
	    noise_decrypt(&st->rx, NULL, 0, p, len, buf, DMSG_MAX_TRANSPORT, &plen) == -1) {
		sw_log_warn(st->env->svc, "stream protocol error, reset", "id=%u len=%zu window=%llu",
		    st->id, len, (unsigned long long)st->rx_window);
		dmsg_stream_fail(st, DMSG_END_PROTOCOL);
		return 0;
	}
	st->rx_window -= len;
	st->st.rx_wire += len;
	st->st.received += plen;
	if (can_deliver(st) && evbuffer_get_length(st->inq) == 0) {
		st->credit += len;
		st->cbs.read(st, buf, plen, st->cb_arg);
		if (st->state != DMSG_ST_DEAD)
			maybe_grant(st, 0);
		return 0;
	}
	if (plen > 0)
		evbuffer_add(st->inq, buf, plen);
	st->inq_wire += len;
	return 0;
}

int
dmsg_stream_input(struct dmsg_stream *st, uint8_t type, const uint8_t *payload, size_t len)
{
	int rc = 0;

	if (st->state != DMSG_ST_OPEN)
		return 0;
	stream_touch(st);
	dmsg_stream_ref(st);
	switch (type) {
	case DMSG_DATA:
		rc = input_data(st, payload, len);
		break;
	case DMSG_WINDOW:
		if (len != 4) {
			rc = -1;
			break;
		}
		st->tx_window += sw_get_u32(payload);
		st->st.tx_granted += sw_get_u32(payload);
		dmsg_stream_pump(st);
		break;
	case DMSG_CLOSE:
		if (st->eof_recv)
			break;
		st->eof_recv = 1;
		stream_kick(st);
		stream_check_done(st);
		break;
	case DMSG_RESET:
		stream_end(st, DMSG_END_RESET, 0);
		break;
	default:
		rc = -1;
		break;
	}
	dmsg_stream_unref(st);
	return rc;
}

/* ---------- deferred delivery ---------- */

static void
stream_kick(struct dmsg_stream *st)
{
	event_active(st->kick, 0, 0);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_stream *st = arg;

	(void)fd;
	(void)what;
	if (!st->app_owned)
		return;
	dmsg_stream_ref(st);
	deliver_buffered(st);
	if (st->app_owned && st->eof_recv && !st->eof_done && st->cbs.read != NULL &&
	    evbuffer_get_length(st->inq) == 0) {
		st->eof_done = 1;
		if (st->cbs.eof != NULL)
			st->cbs.eof(st, st->cb_arg);
	}
	if (st->app_owned && st->above_lowat && evbuffer_get_length(st->outq) <= st->lowat &&
	    st->state == DMSG_ST_OPEN) {
		st->above_lowat = 0;
		if (st->cbs.writable != NULL)
			st->cbs.writable(st, st->cb_arg);
	}
	if (st->app_owned && st->end_due && (st->end_why != DMSG_END_DONE || st->eof_done)) {
		st->end_due = 0;
		if (st->cbs.closed != NULL)
			st->cbs.closed(st, st->end_why, st->cb_arg);
	}
	dmsg_stream_unref(st);
}

/* ---------- application calls ---------- */

void
dmsg_stream_set_cbs(struct dmsg_stream *st, const struct dmsg_stream_cbs *cbs, void *arg)
{
	if (cbs != NULL)
		st->cbs = *cbs;
	else
		memset(&st->cbs, 0, sizeof(st->cbs));
	st->cb_arg = arg;
	stream_kick(st);
}

int
dmsg_stream_write(struct dmsg_stream *st, const void *data, size_t len)
{
	size_t q;

	if (st->state != DMSG_ST_OPEN || st->shut)
		return -1;
	q = evbuffer_get_length(st->outq);
	if (len > DMSG_STREAM_MAX_QUEUE || q > DMSG_STREAM_MAX_QUEUE - len)
		return -1;
	if (len == 0)
		return 0;
	if (evbuffer_add(st->outq, data, len) == -1)
		return -1;
	st->st.written += len;
	if (q + len > st->lowat)
		st->above_lowat = 1;
	/* the application is not re-entered: pump sends, it calls nothing back */
	dmsg_stream_pump(st);
	return 0;
}

size_t
dmsg_stream_queued(const struct dmsg_stream *st)
{
	return evbuffer_get_length(st->outq);
}

void
dmsg_stream_set_lowat(struct dmsg_stream *st, size_t lowat)
{
	st->lowat = lowat;
}

void
dmsg_stream_pause_read(struct dmsg_stream *st, int paused)
{
	st->read_paused = paused != 0;
	if (!st->read_paused)
		stream_kick(st);
}

int
dmsg_stream_shutdown(struct dmsg_stream *st)
{
	if (st->state != DMSG_ST_OPEN)
		return -1;
	if (st->shut)
		return 0;
	st->shut = 1;
	dmsg_stream_ref(st);
	dmsg_stream_pump(st);
	dmsg_stream_unref(st);
	return 0;
}

void
dmsg_stream_reset(struct dmsg_stream *st)
{
	dmsg_stream_abort(st);
	st->end_due = 0;
}

void
dmsg_stream_free(struct dmsg_stream *st)
{
	if (st == NULL || !st->app_owned)
		return;
	st->dial_cb = NULL;
	dmsg_stream_abort(st);
	if (st->env->forget != NULL)
		st->env->forget(st);
	st->app_owned = 0;
	memset(&st->cbs, 0, sizeof(st->cbs));
	event_del(st->kick);
	evtimer_del(st->timer);
	dmsg_stream_unref(st);
}

const uint8_t *
dmsg_stream_remote_pk(const struct dmsg_stream *st)
{
	return st->remote_pk;
}

uint16_t
dmsg_stream_remote_port(const struct dmsg_stream *st)
{
	return st->remote_port;
}

uint16_t
dmsg_stream_local_port(const struct dmsg_stream *st)
{
	return st->local_port;
}

int
dmsg_stream_is_open(const struct dmsg_stream *st)
{
	return st->state == DMSG_ST_OPEN;
}

void
dmsg_stream_stats(const struct dmsg_stream *st, struct dmsg_stream_stats *out)
{
	*out = st->st;
	out->queued = evbuffer_get_length(st->outq);
	out->buffered = evbuffer_get_length(st->inq);
}
