/*
 * The STUN sockets: one, or four with behaviour discovery (the index of
 * each is explained in stun_server.h), read in bounded batches from
 * libevent.  Every datagram is parsed before anything in it is believed;
 * what is not a well-formed STUN message, or not a request this server
 * answers, is dropped and counted by reason in stun_dropped_total.  A reply
 * goes out of the socket the answer names, so a reply "from the changed IP"
 * really comes from it; a send that would block is dropped and counted.
 *
 * The server keeps no state per client: a reply is a function of the
 * request and its source, so there is nothing to drain at stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "stun_server.h"
#include "udp.h"


struct stun_sock {
	struct stun_udp *u;
	size_t idx;
	int fd;
	struct event *ev;
};

struct stun_udp {
	struct event_base *base;
	const char *name;
	char software[STUN_MAX_SOFTWARE + 1];
	struct stun_addrs addrs;
	struct stun_sock s[STUN_NSOCK];
	struct sw_metric *m_req;
	struct sw_metric *m_resp;
	struct sw_metric *m_change;
	struct sw_metric *m_drop;
	struct sw_metric *m_ind;
};

static void
drop(struct stun_udp *u, const char *reason)
{
	sw_metric_add(u->m_drop, (const char *[]){reason}, 1);
}

struct stun_udp *
stun_udp_new(struct event_base *base, const char *name, struct sw_metrics *metrics,
    const char *software)
{
	struct stun_udp *u;
	size_t n = strlen(software);

	if (n > STUN_MAX_SOFTWARE || (u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->base = base;
	u->name = name;
	memcpy(u->software, software, n + 1);
	for (size_t i = 0; i < STUN_NSOCK; i++) {
		u->s[i].u = u;
		u->s[i].idx = i;
		u->s[i].fd = -1;
	}
	u->m_req = sw_metric_new(metrics, "stun_requests_total",
	    "Binding requests answered, by protocol", SW_COUNTER,
	    (const char *[]){"version", NULL}, NULL, 0);
	u->m_resp = sw_metric_new(metrics, "stun_responses_total", "replies sent, by status",
	    SW_COUNTER, (const char *[]){"status", NULL}, NULL, 0);
	u->m_change = sw_metric_new(metrics, "stun_change_requests_total",
	    "replies sent from a changed address, by change", SW_COUNTER,
	    (const char *[]){"change", NULL}, NULL, 0);
	u->m_drop = sw_metric_new(metrics, "stun_dropped_total",
	    "datagrams dropped unanswered, by reason", SW_COUNTER,
	    (const char *[]){"reason", NULL}, NULL, 0);
	u->m_ind = sw_metric_new(metrics, "stun_indications_total",
	    "Binding indications (keepalives) received", SW_COUNTER, NULL, NULL, 0);
	return u;
}

static const char *
change_name(uint32_t flags)
{
	flags &= STUN_CHANGE_IP | STUN_CHANGE_PORT;
	if (flags == (STUN_CHANGE_IP | STUN_CHANGE_PORT))
		return "ip_port";
	return flags == STUN_CHANGE_IP ? "ip" : flags == STUN_CHANGE_PORT ? "port" : NULL;
}

void
stun_udp_input(struct stun_udp *u, size_t in, const uint8_t *buf, size_t n,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct stun_msg m;
	struct stun_out o;
	enum stun_err err;
	size_t from;
	int status;
	char code[8];
	const char *change;

	if ((err = stun_parse(buf, n, &m)) != STUN_OK) {
		drop(u, stun_err_name(err));
		return;
	}
	if (m.type == STUN_BINDING_INDICATION && !m.legacy) {
		sw_metric_inc(u->m_ind);
		return;
	}
	if (m.type != STUN_BINDING_REQUEST) {
		/* Responses, other methods: nothing this server answers. */
		drop(u, "unsupported");
		return;
	}
	if (peer->sa_family != AF_INET && peer->sa_family != AF_INET6) {
		drop(u, "bad_peer");
		return;
	}
	sw_metric_add(u->m_req, (const char *[]){m.legacy ? "rfc3489" : "rfc5389"}, 1);
	if ((status = stun_answer(&u->addrs, u->software, &m, in, peer, &o, &from)) == -1) {
		drop(u, "reply_too_large");
		return;
	}
	if (from >= STUN_NSOCK || u->s[from].fd == -1 ||
	    sendto(u->s[from].fd, o.buf, o.len, 0, peer, peerlen) == -1) {
		drop(u, "send_failed");
		return;
	}
	snprintf(code, sizeof(code), "%d", status);
	sw_metric_add(u->m_resp, (const char *[]){code}, 1);
	if (status == 200 && m.has_change && (change = change_name(m.change)) != NULL)
		sw_metric_add(u->m_change, (const char *[]){change}, 1);
}

static void
sock_dgram(const uint8_t *buf, size_t n, const struct sockaddr_storage *from, socklen_t flen,
    void *arg)
{
	struct stun_sock *s = arg;

	stun_udp_input(s->u, s->idx, buf, n, (const struct sockaddr *)from, flen);
}

static void
sock_read(evutil_socket_t fd, short what, void *arg)
{
	struct stun_sock *s = arg;
	uint8_t buf[STUN_MAX_DGRAM + 1];

	(void)what;
	sw_udp_read_batch(fd, s->u->name, buf, sizeof(buf), sock_dgram, s);
}

static int
is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static void
set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int
get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static socklen_t
ss_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

int
stun_addrs_parse(struct stun_addrs *sa, const char *listen, const char *secondary_ip,
    int alt_port, char *err, size_t errlen)
{
	struct sockaddr_storage *a = sa->a;
	void *ip;

	memset(sa, 0, sizeof(*sa));
	if (sw_udp_addr_parse(listen, &a[0]) == 0) {
		snprintf(err, errlen, "listen must be ip:port or [ip6]:port");
		return -1;
	}
	sa->n = 1;
	sa->concrete = !is_wildcard(&a[0]);
	if (secondary_ip == NULL && alt_port < 0)
		return 0;
	if (secondary_ip == NULL || alt_port < 0 || alt_port > 65535) {
		snprintf(err, errlen, "secondary_ip and alt_port (0-65535) go together");
		return -1;
	}
	if (!sa->concrete) {
		/* Replies "from the other IP" need both IPs named, never a wildcard. */
		snprintf(err, errlen, "with secondary_ip, listen must name a specific IP");
		return -1;
	}
	a[2] = a[0];
	ip = a[2].ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&a[2])->sin_addr :
	    (void *)&((struct sockaddr_in6 *)&a[2])->sin6_addr;
	if (inet_pton(a[2].ss_family, secondary_ip, ip) != 1 || is_wildcard(&a[2]) ||
	    memcmp(&a[0], &a[2], sizeof(a[0])) == 0) {
		snprintf(err, errlen, "secondary_ip must be another IP of listen's family");
		return -1;
	}
	if (alt_port != 0 && alt_port == get_port(&a[0])) {
		snprintf(err, errlen, "alt_port must differ from listen's port");
		return -1;
	}
	a[1] = a[0];
	a[3] = a[2];
	set_port(&a[1], alt_port);
	set_port(&a[3], alt_port);
	sa->n = STUN_NSOCK;
	return 0;
}

/*
 * Bind in index order, so a port 0 picked by the kernel for the primary IP
 * (index 0, 1) is the one asked for on the secondary IP (index 2, 3).
 */
int
stun_udp_open(struct stun_udp *u, const struct stun_addrs *want)
{
	char text[SW_IP_TEXT + 8], q[128];

	u->addrs = *want;
	for (size_t i = 0; i < u->addrs.n; i++) {
		struct stun_sock *s = &u->s[i];
		struct sockaddr_storage *a = &u->addrs.a[i];
		socklen_t alen = sizeof(*a);

		if (i >= 2)
			set_port(a, get_port(&u->addrs.a[i - 2]));
		if ((s->fd = sw_udp_bind((struct sockaddr *)a, ss_len(a))) == -1 ||
		    getsockname(s->fd, (struct sockaddr *)a, &alen) == -1) {
			stun_addr_text(text, sizeof(text), (struct sockaddr *)a);
			sw_log_error(u->name, "udp listen failed", "addr=%s error=%s", text,
			    sw_log_q(q, sizeof(q), strerror(errno)));
			goto fail;
		}
		s->ev = event_new(u->base, s->fd, EV_READ | EV_PERSIST, sock_read, s);
		if (s->ev == NULL || event_add(s->ev, NULL) == -1) {
			sw_log_error(u->name, "cannot watch the udp socket", NULL);
			goto fail;
		}
	}
	return 0;
fail:
	stun_udp_close(u);
	return -1;
}

void
stun_udp_close(struct stun_udp *u)
{
	for (size_t i = 0; i < STUN_NSOCK; i++) {
		if (u->s[i].ev != NULL)
			event_free(u->s[i].ev);
		u->s[i].ev = NULL;
		if (u->s[i].fd != -1)
			close(u->s[i].fd);
		u->s[i].fd = -1;
	}
}

int
stun_udp_is_open(const struct stun_udp *u)
{
	for (size_t i = 0; i < u->addrs.n; i++)
		if (u->s[i].fd == -1)
			return 0;
	return u->addrs.n > 0;
}

const struct stun_addrs *
stun_udp_addrs(const struct stun_udp *u)
{
	return &u->addrs;
}

void
stun_addr_text(char *out, size_t size, const struct sockaddr *sa)
{
	char ip[SW_IP_TEXT] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		evutil_inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	sw_hostport_format(out, size, ip, port);
}

void
stun_udp_free(struct stun_udp *u)
{
	if (u == NULL)
		return;
	stun_udp_close(u);
	free(u);
}
