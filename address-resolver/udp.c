/*
 * sudph over UDP: visors bind, heartbeat and unbind with signed datagrams
 *
 *     type u8 | pk[32] | sig[64] | json      sig over type ‖ pk ‖ json
 *
 * and the resolver answers bind and heartbeat with an ack naming the
 * address it saw, and sends dial datagrams when someone resolves a visor.
 * The resolver's own datagrams have the same layout, with its own key and
 * signature, so a visor that knows the resolver's key can tell its answers
 * from forged ones (docs/decisions.md).
 *
 * Every datagram is checked before anything is believed: its length (at
 * most 1200 bytes, read with MSG_TRUNC so a longer one is seen as such),
 * its type, its signature, then its JSON.  Drops are counted by reason.
 * The socket is non-blocking and read in bounded batches from libevent; a
 * send that would block is dropped and counted, never waited for.  The
 * bindings themselves live in the store, so replicas sharing redis agree.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "address_resolver.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "udp.h"


/* One datagram waiting on the store. */
struct ar_dgram {
	struct ar *ar;
	enum ar_dgram_type type;
	struct ar_binding b;
};

static void
drop(struct ar *ar, const char *reason)
{
	sw_metric_add(ar->m_udp_drop, (const char *[]){reason}, 1);
}

int
ar_udp_send(struct ar *ar, enum ar_dgram_type type, const char *json, const char *ip,
    unsigned port)
{
	static const char *const names[] = {"", "bind", "heartbeat", "unbind", "ack", "dial"};
	uint8_t buf[AR_MAX_DGRAM], msg[AR_MAX_DGRAM];
	size_t jlen = strlen(json);
	struct sockaddr_storage ss;
	int sslen = (int)sizeof(ss);
	char addr[AR_ADDR_TEXT];
	const char *result = "ok";

	memset(&ss, 0, sizeof(ss));
	sw_hostport_format(addr, sizeof(addr), ip, port);
	if (ar->udp_fd == -1 || AR_DGRAM_HDR + jlen > AR_MAX_DGRAM ||
	    evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) == -1) {
		result = "error";
		goto out;
	}
	msg[0] = (uint8_t)type;
	memcpy(msg + 1, ar->kp.pk, SW_PK_LEN);
	memcpy(msg + 1 + SW_PK_LEN, json, jlen);
	memcpy(buf, msg, 1 + SW_PK_LEN);
	sw_sign(buf + 1 + SW_PK_LEN, msg, 1 + SW_PK_LEN + jlen, &ar->kp);
	memcpy(buf + AR_DGRAM_HDR, json, jlen);
	if (sendto(ar->udp_fd, buf, AR_DGRAM_HDR + jlen, 0, (struct sockaddr *)&ss,
	    (socklen_t)sslen) == -1)
		result = "error";
out:
	sw_metric_add(ar->m_udp_out, (const char *[]){names[type], result}, 1);
	return strcmp(result, "ok") == 0 ? 0 : -1;
}

static void
dgram_done(struct ar_dgram *d)
{
	struct ar *ar = d->ar;

	free(d);
	ar->udp_inflight--;
	ar_stop_check(ar);
}

static void
ack(struct ar_dgram *d)
{
	char addr[AR_ADDR_TEXT], json[AR_ADDR_TEXT + 16];

	sw_hostport_format(addr, sizeof(addr), d->b.remote_ip, d->b.remote_port);
	snprintf(json, sizeof(json), "{\"addr\":\"%s\"}", addr);
	ar_udp_send(d->ar, AR_ACK, json, d->b.remote_ip, d->b.remote_port);
}

static void
put_done(const struct sw_reply *r, void *arg)
{
	struct ar_dgram *d = arg;

	if (r->type == SW_REPLY_DOWN || r->type == SW_REPLY_ERROR)
		drop(d->ar, "store_error");
	else
		ack(d);
	dgram_done(d);
}

static void
put_binding(struct ar_dgram *d)
{
	char *json = ar_binding_json(&d->b, AR_VIEW_STORED);

	if (json == NULL || ar_store_put(d->ar, AR_SUDPH, &d->b, json, put_done, d) == -1) {
		drop(d->ar, "store_error");
		dgram_done(d);
	}
	free(json);
}

/* A heartbeat refreshes a live binding, at the address it now comes from. */
static void
heartbeat_have(const struct sw_reply *r, void *arg)
{
	struct ar_dgram *d = arg;
	struct ar_binding old;

	if (r->type == SW_REPLY_DOWN || r->type == SW_REPLY_ERROR) {
		drop(d->ar, "store_error");
		goto fail;
	}
	if (r->type != SW_REPLY_STR || ar_binding_from_stored(r->str, r->len, &old) == -1) {
		/* No ack: the visor notices and binds again. */
		drop(d->ar, "unbound");
		goto fail;
	}
	d->b.port = old.port;
	d->b.nlocal = old.nlocal;
	memcpy(d->b.local, old.local, sizeof(old.local));
	put_binding(d);
	return;
fail:
	dgram_done(d);
}

static void
unbind_done(const struct sw_reply *r, void *arg)
{
	struct ar_dgram *d = arg;

	if (r->type == SW_REPLY_DOWN || r->type == SW_REPLY_ERROR)
		drop(d->ar, "store_error");
	dgram_done(d);
}

/* The checked payload of a datagram, then the store work it asks for. */
static void
dgram_handle(struct ar *ar, enum ar_dgram_type type, const uint8_t pk[SW_PK_LEN],
    const char *json, size_t jlen, const struct sockaddr_storage *from)
{
	static const char *const names[] = {"", "bind", "heartbeat", "unbind"};
	struct ar_dgram *d = NULL;
	cJSON *o = sw_json_parse(json, jlen, NULL);
	char err[128];

	if (!cJSON_IsObject(o)) {
		drop(ar, "malformed");
		goto out;
	}
	if (ar->udp_inflight >= AR_MAX_UDP_INFLIGHT) {
		drop(ar, "busy");
		goto out;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		drop(ar, "busy");
		goto out;
	}
	d->ar = ar;
	d->type = type;
	memcpy(d->b.pk, pk, SW_PK_LEN);
	sw_hex_encode(d->b.pk_hex, pk, SW_PK_LEN);
	if (from->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)from;

		evutil_inet_ntop(AF_INET, &in->sin_addr, d->b.remote_ip, sizeof(d->b.remote_ip));
		d->b.remote_port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)from;

		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, d->b.remote_ip, sizeof(d->b.remote_ip));
		d->b.remote_port = ntohs(in6->sin6_port);
	}
	if (type == AR_BIND && ar_binding_parse_req(o, &d->b, err, sizeof(err)) != 0) {
		drop(ar, "malformed");
		goto out;
	}
	sw_metric_add(ar->m_udp_in, (const char *[]){names[type]}, 1);
	ar->udp_inflight++;
	if (type == AR_BIND) {
		put_binding(d);
	} else if (type == AR_HEARTBEAT) {
		if (ar_store_get(ar, AR_SUDPH, d->b.pk_hex, heartbeat_have, d) == -1) {
			drop(ar, "store_error");
			dgram_done(d);
		}
	} else if (ar_store_del(ar, AR_SUDPH, d->b.pk_hex, unbind_done, d) == -1) {
		drop(ar, "store_error");
		dgram_done(d);
	}
	d = NULL;
out:
	free(d);
	cJSON_Delete(o);
}

/* Length, type, signature: in that order, before any of it is believed. */
static void
dgram_check(struct ar *ar, const uint8_t *buf, size_t n, const struct sockaddr_storage *from)
{
	uint8_t msg[AR_MAX_DGRAM];
	size_t jlen;

	if (n > AR_MAX_DGRAM) {
		drop(ar, "oversize");
		return;
	}
	if (n < AR_DGRAM_HDR || buf[0] < AR_BIND || buf[0] > AR_UNBIND ||
	    (from->ss_family != AF_INET && from->ss_family != AF_INET6)) {
		drop(ar, "malformed");
		return;
	}
	jlen = n - AR_DGRAM_HDR;
	msg[0] = buf[0];
	memcpy(msg + 1, buf + 1, SW_PK_LEN);
	memcpy(msg + 1 + SW_PK_LEN, buf + AR_DGRAM_HDR, jlen);
	if (sw_verify(buf + 1 + SW_PK_LEN, msg, 1 + SW_PK_LEN + jlen, buf + 1) == -1) {
		drop(ar, "bad_signature");
		return;
	}
	dgram_handle(ar, (enum ar_dgram_type)buf[0], buf + 1, (const char *)msg + 1 + SW_PK_LEN,
	    jlen, from);
}

static void
udp_dgram(const uint8_t *buf, size_t n, const struct sockaddr_storage *from, socklen_t flen,
    void *arg)
{
	(void)flen;
	dgram_check(arg, buf, n, from);
}

static void
udp_read(evutil_socket_t fd, short what, void *arg)
{
	struct ar *ar = arg;
	uint8_t buf[AR_MAX_DGRAM + 1];

	(void)what;
	sw_udp_read_batch(fd, ar->name, buf, sizeof(buf), udp_dgram, ar);
}

int
ar_udp_open(struct ar *ar)
{
	int fd;

	if ((fd = sw_udp_listen(ar->udp_listen, NULL)) == -1) {
		sw_log_error(ar->name, "udp listen failed, want ip:port", "addr=%s error=%s",
		    sw_log_q((char[128]){0}, 128, ar->udp_listen),
		    sw_log_q((char[128]){0}, 128, strerror(errno)));
		goto fail;
	}
	ar->udp_ev = event_new(sw_svc_base(ar->svc), fd, EV_READ | EV_PERSIST, udp_read, ar);
	if (ar->udp_ev == NULL || event_add(ar->udp_ev, NULL) == -1)
		goto fail;
	ar->udp_fd = fd;
	sw_log_info(ar->name, "listening", "udp=%s", ar->udp_listen);
	return 0;
fail:
	if (ar->udp_ev != NULL)
		event_free(ar->udp_ev);
	ar->udp_ev = NULL;
	if (fd != -1)
		close(fd);
	return -1;
}

void
ar_udp_close(struct ar *ar)
{
	if (ar->udp_ev != NULL)
		event_free(ar->udp_ev);
	ar->udp_ev = NULL;
	if (ar->udp_fd != -1)
		close(ar->udp_fd);
	ar->udp_fd = -1;
}
