/*
 * listener: bounded acceptance for every TCP server.  See listener.h.
 *
 * The one idea: the process must never hold the listening socket readable
 * and unserved.  A connection it cannot take (no descriptor, over a limit) is
 * either not looked at (accept paused, the kernel backlog holds it) or taken
 * and closed at once; nothing in between, so the loop never spins on a
 * readable socket it keeps failing to accept.
 *
 * Peers are counted in a dict keyed by the address text; an entry lives while
 * the peer has connections and is the handle the owner gives back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "clock.h"
#include "dict.h"
#include "listener.h"
#include "log.h"
#include "str.h"

#define PAUSE_MS 250 /* out of descriptors: look again after this long */

struct sw_listener_peer {
	struct sw_listener *l;
	size_t n;
	char ip[INET6_ADDRSTRLEN];
};

struct sw_listener {
	struct event_base *base;
	char *svc;
	sw_listener_cb *cb;
	void *arg;
	struct sw_listener_opts o;
	struct evconnlistener *socks[SW_LISTENER_MAX_SOCKS];
	size_t nsocks;
	struct sw_dict *peers;
	struct event *retry;
	size_t open;
	int reserve;       /* a spare descriptor, -1 when given up */
	int starved;       /* out of descriptors: 1 paused, 2 probing (accept on again) */
	unsigned long shed;/* connections closed unserved in this episode */
	unsigned long refused_peer;
	int full;          /* max_conns reached */
	int dead;          /* freed by its owner, waiting for the last release */
};

static void
set_enabled(struct sw_listener *l)
{
	int on = !l->dead && !l->full && l->starved != 1;

	for (size_t i = 0; i < l->nsocks; i++) {
		if (on)
			evconnlistener_enable(l->socks[i]);
		else
			evconnlistener_disable(l->socks[i]);
	}
}

static void
reserve_take(struct sw_listener *l)
{
	if (l->reserve == -1)
		l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
starve_end(struct sw_listener *l)
{
	if (!l->starved)
		return;
	l->starved = 0;
	reserve_take(l);
	sw_log_info(l->svc, "descriptors available again, accepting", "shed=%lu", l->shed);
	l->shed = 0;
	set_enabled(l);
}

/*
 * Out of descriptors: look again.  The episode (and its log line) lasts
 * until an accept succeeds; a new EMFILE meanwhile brings us back here.
 */
static void
probe(struct sw_listener *l)
{
	reserve_take(l);
	l->starved = l->reserve == -1 ? 1 : 2;
	set_enabled(l);
	if (l->starved == 1)
		sw_timer_in(l->retry, PAUSE_MS);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sw_listener *l = arg;

	(void)fd;
	(void)what;
	if (l->starved == 1)
		probe(l);
}

static void
on_error(struct evconnlistener *lev, void *arg)
{
	struct sw_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	int fd;

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		sw_log_warn(l->svc, "accept failed", "error=%s",
		    sw_log_q((char[96]){0}, 96, strerror(err)));
		return;
	}
	if (l->starved == 0)
		sw_log_warn(l->svc, "out of descriptors, accept paused", "open=%zu error=%s",
		    l->open, sw_log_q((char[96]){0}, 96, strerror(err)));
	l->starved = 1;
	/* Give up the spare to take the oldest waiting peer off the backlog. */
	if (l->reserve != -1) {
		close(l->reserve);
		l->reserve = -1;
		if ((fd = accept(evconnlistener_get_fd(lev), NULL, NULL)) != -1) {
			close(fd);
			l->shed++;
		}
		reserve_take(l);
	}
	set_enabled(l);
	sw_timer_in(l->retry, PAUSE_MS);
}

static struct sw_listener_peer *
peer_get(struct sw_listener *l, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	struct sw_listener_peer *p;

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
		    sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
		    sizeof(ip));
	if ((p = sw_dict_get(l->peers, ip, strlen(ip))) != NULL)
		return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->l = l;
	sw_strlcpy(p->ip, ip, sizeof(p->ip));
	if (sw_dict_add(l->peers, ip, strlen(ip), p) != 1) {
		free(p);
		return NULL;
	}
	return p;
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct sw_listener *l = arg;
	struct sw_listener_peer *p;
	int over;

	(void)lev;
	if (l->starved)
		starve_end(l);
	if ((p = peer_get(l, sa)) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	over = l->o.max_per_peer > 0 && p->n >= l->o.max_per_peer;
	if (over && !l->o.keep_over_cap) {
		if (l->refused_peer++ % 1000 == 0)
			sw_log_warn(l->svc, "peer over its connection cap, closing", "peer=%s cap=%zu "
			    "refused=%lu", p->ip, l->o.max_per_peer, l->refused_peer);
		evutil_closesocket(fd);
		if (p->n == 0)
			sw_dict_del(l->peers, p->ip, strlen(p->ip));
		return;
	}
	p->n++;
	l->open++;
	if (l->open >= l->o.max_conns && !l->full) {
		sw_log_warn(l->svc, "connection limit reached, accept paused", "limit=%zu",
		    l->o.max_conns);
		l->full = 1;
		set_enabled(l);
	}
	l->cb(fd, sa, salen, p, over, l->arg);
}

static void
listener_destroy(struct sw_listener *l)
{
	for (size_t i = 0; i < l->nsocks; i++)
		evconnlistener_free(l->socks[i]);
	if (l->retry != NULL)
		event_free(l->retry);
	sw_dict_free(l->peers);
	if (l->reserve != -1)
		close(l->reserve);
	free(l->svc);
	free(l);
}

struct sw_listener *
sw_listener_new(struct event_base *base, const char *svc, const struct sw_listener_opts *opts,
    sw_listener_cb *cb, void *arg)
{
	struct sw_listener *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->base = base;
	l->cb = cb;
	l->arg = arg;
	l->reserve = -1;
	if (opts != NULL)
		l->o = *opts;
	if (l->o.max_conns == 0)
		l->o.max_conns = SW_LISTENER_MAX_CONNS;
	if ((l->svc = sw_xstrdup(svc != NULL ? svc : "listener")) == NULL ||
	    (l->peers = sw_dict_new(free)) == NULL ||
	    (l->retry = evtimer_new(base, retry_cb, l)) == NULL)
		goto fail;
	reserve_take(l);
	return l;
fail:
	sw_log_error(svc, "listener setup failed", "error=\"out of memory\"");
	listener_destroy(l);
	return NULL;
}

void
sw_listener_free(struct sw_listener *l)
{
	if (l == NULL)
		return;
	l->dead = 1;
	for (size_t i = 0; i < l->nsocks; i++)
		evconnlistener_free(l->socks[i]);
	l->nsocks = 0;
	event_del(l->retry);
	if (l->open == 0)
		listener_destroy(l);
}

/* "host:port", port 0 allowed (evutil_parse_sockaddr_port refuses it). */
static int
parse_addr(const char *addr, struct sockaddr_storage *ss, int *sl)
{
	char tmp[300];
	const char *colon = strrchr(addr, ':');
	char *end;
	long port;

	if (colon == NULL || (size_t)(colon - addr) + 16 > sizeof(tmp))
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535)
		return -1;
	if (colon == addr)
		snprintf(tmp, sizeof(tmp), "0.0.0.0:1");
	else
		snprintf(tmp, sizeof(tmp), "%.*s:1", (int)(colon - addr), addr);
	if (evutil_parse_sockaddr_port(tmp, (struct sockaddr *)ss, sl) == -1)
		return -1;
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	return 0;
}

int
sw_listener_bind(struct sw_listener *l, const char *addr)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	struct evconnlistener *lev;

	memset(&ss, 0, sizeof(ss));
	if (addr == NULL || parse_addr(addr, &ss, &sl) == -1) {
		sw_log_error(l->svc, "bad listen address, want host:port", "addr=%s",
		    sw_log_q((char[128]){0}, 128, addr != NULL ? addr : ""));
		return -1;
	}
	if (l->nsocks == SW_LISTENER_MAX_SOCKS) {
		sw_log_error(l->svc, "too many listening sockets", "addr=%s", addr);
		return -1;
	}
	lev = evconnlistener_new_bind(l->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511, (struct sockaddr *)&ss, sl);
	if (lev == NULL) {
		sw_log_error(l->svc, "listen failed", "addr=%s error=%s", addr,
		    sw_log_q((char[128]){0}, 128, strerror(errno)));
		return -1;
	}
	evconnlistener_set_error_cb(lev, on_error);
	l->socks[l->nsocks++] = lev;
	set_enabled(l);
	return 0;
}

int
sw_listener_sockname(const struct sw_listener *l, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	if (l == NULL || l->nsocks == 0 ||
	    getsockname(evconnlistener_get_fd(l->socks[0]), (struct sockaddr *)ss, &len) == -1)
		return -1;
	return 0;
}

int
sw_listener_port(const struct sw_listener *l)
{
	struct sockaddr_storage ss;

	if (sw_listener_sockname(l, &ss) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

void
sw_listener_release(struct sw_listener *l, struct sw_listener_peer *p)
{
	if (l == NULL || p == NULL)
		return;
	if (--p->n == 0)
		sw_dict_del(l->peers, p->ip, strlen(p->ip));
	l->open--;
	if (l->dead) {
		if (l->open == 0)
			listener_destroy(l);
		return;
	}
	if (l->full && l->open < l->o.max_conns) {
		sw_log_info(l->svc, "below connection limit, accepting again", "open=%zu", l->open);
		l->full = 0;
	}
	/* A descriptor just came free: the starved episode may be over. */
	if (l->starved == 1) {
		event_del(l->retry);
		probe(l);
	}
	set_enabled(l);
}

void
sw_listener_set_max_conns(struct sw_listener *l, size_t max)
{
	l->o.max_conns = max > 0 ? max : 1;
	l->full = l->open >= l->o.max_conns;
	set_enabled(l);
}

size_t
sw_listener_open(const struct sw_listener *l)
{
	return l->open;
}

int
sw_listener_paused(const struct sw_listener *l)
{
	return l->full || l->starved == 1;
}

const char *
sw_listener_peer_ip(const struct sw_listener_peer *p)
{
	return p->ip;
}
