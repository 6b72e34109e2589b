/*
 * nat.c: the NAT type from the RFC 3489 tests (section 10.1) against the
 * visor's stun_servers, on a UDP socket of its own.
 *
 *   I    Binding request to the server           no answer from any: udp-blocked
 *        mapped == one of our addresses and our port:
 *   II     with CHANGE-REQUEST ip+port          answer: open, else port-restricted-cone
 *        else (behind a NAT):
 *   II     with CHANGE-REQUEST ip+port          answer: full-cone
 *   I'     to the server's other IP                other mapping: symmetric
 *   III    with CHANGE-REQUEST port             answer: restricted-cone, else
 *                                               port-restricted-cone
 *
 * The one idea: a run is a small state machine driven by one timer and the
 * socket's read event; each test is a fresh transaction id, resent every
 * NAT_RESEND_MS and given up after NAT_TEST_MS, so a whole run ends within
 * a few seconds whatever the network does (none of it blocks the loop).
 * Answers are believed only with our transaction id, the right type, and
 * attributes whose lengths fit.  A "symmetric UDP firewall" (no NAT, but
 * nothing from an address we did not send to) filters as a port-restricted
 * cone does and is reported as one (docs/visor.md).
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
#include "log.h"
#include "nat.h"
#include "udp.h"
#include "visor.h"

#define NAT_MAX_SERVERS  8
#define NAT_RESEND_MS    100
#define NAT_TEST_MS      700
#define NAT_RECHECK_MS   (10 * 60 * 1000)
#define NAT_WATCH_MS     5000   /* how often the host's addresses are compared */
#define NAT_MAX_DGRAM    1500

#define STUN_MAGIC       0x2112A442u
#define STUN_REQ         0x0001
#define STUN_OK          0x0101
#define A_MAPPED         0x0001
#define A_CHANGE_REQ     0x0003
#define A_CHANGED        0x0005
#define A_XOR_MAPPED     0x0020
#define A_OTHER          0x802C
#define CHANGE_IP        0x04
#define CHANGE_PORT      0x02

enum nat_phase {
	PH_IDLE = 0,
	PH_T1,      /* test I to servers[cur] */
	PH_T2,      /* test II */
	PH_T1B,     /* test I to the other address */
	PH_T3,      /* test III */
};

struct visor_nat {
	struct visor *v;
	struct sockaddr_storage servers[NAT_MAX_SERVERS];
	socklen_t server_len[NAT_MAX_SERVERS];
	size_t nservers, cur;
	int fd;
	struct event *rd, *timer, *watch;
	enum nat_phase phase;
	uint8_t txid[12];
	long long test_start_ms, run_start_ms, last_run_ms;
	int open;                         /* test I: mapped is our own address */
	struct sockaddr_storage mapped;   /* from test I */
	struct sockaddr_storage other;    /* the server's other address (test I) */
	struct sockaddr_storage other_ip; /* its other IP with the first port (test I') */
	int has_other;
	char type[32];
	char mapped_text[64];
	char server_text[64];
	long long duration_ms;
	time_t checked;
	unsigned runs;                    /* finished runs */
	char ifsig[1024];                 /* the host's addresses at the last run */
};

/* ---- STUN, the client's half ---- */

static size_t
stun_request(uint8_t *out, const uint8_t txid[12], uint32_t change)
{
	size_t len = 20;

	sw_put_u16(out, STUN_REQ);
	sw_put_u32(out + 4, STUN_MAGIC);
	memcpy(out + 8, txid, 12);
	if (change != 0) {
		sw_put_u16(out + 20, A_CHANGE_REQ);
		sw_put_u16(out + 22, 4);
		sw_put_u32(out + 24, change);
		len += 8;
	}
	sw_put_u16(out + 2, (uint16_t)(len - 20));
	return len;
}

/* An address attribute; xor with the cookie (and the id for IPv6) when asked. */
static int
stun_addr(const uint8_t *val, size_t len, int xor, const uint8_t *hdr,
    struct sockaddr_storage *ss)
{
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (len < 4)
		return -1;
	port = sw_get_u16(val + 2) ^ (xor ? (uint16_t)(STUN_MAGIC >> 16) : 0);
	if (val[1] == 1 && len == 8) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		uint32_t ip = sw_get_u32(val + 4) ^ (xor ? STUN_MAGIC : 0);

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = htonl(ip);
		return 0;
	}
	if (val[1] == 2 && len == 20) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, val + 4, 16);
		for (int i = 0; xor && i < 16; i++)
			in6->sin6_addr.s6_addr[i] ^= hdr[4 + i];
		return 0;
	}
	return -1;
}

/*
 * A Binding success for txid: its mapped address (XOR- preferred) and the
 * server's other address if named.  -1 for anything else.
 */
static int
stun_parse_answer(const uint8_t *buf, size_t n, const uint8_t txid[12],
    struct sockaddr_storage *mapped, struct sockaddr_storage *other, int *has_other)
{
	size_t len, off = 20;
	int have_xor = 0, have_plain = 0;
	struct sockaddr_storage plain;

	*has_other = 0;
	if (n < 20 || sw_get_u16(buf) != STUN_OK || sw_get_u32(buf + 4) != STUN_MAGIC ||
	    memcmp(buf + 8, txid, 12) != 0)
		return -1;
	len = sw_get_u16(buf + 2);
	if (len % 4 != 0 || 20 + len != n)
		return -1;
	while (off + 4 <= n) {
		uint16_t type = sw_get_u16(buf + off), alen = sw_get_u16(buf + off + 2);
		const uint8_t *val = buf + off + 4;

		if (off + 4 + alen > n)
			return -1;
		if (type == A_XOR_MAPPED && stun_addr(val, alen, 1, buf, mapped) == 0)
			have_xor = 1;
		else if (type == A_MAPPED && stun_addr(val, alen, 0, buf, &plain) == 0)
			have_plain = 1;
		else if ((type == A_OTHER || (type == A_CHANGED && !*has_other)) &&
		    stun_addr(val, alen, 0, buf, other) == 0)
			*has_other = 1;
		off += 4 + (((size_t)alen + 3) & ~(size_t)3);
	}
	if (!have_xor && !have_plain)
		return -1;
	if (!have_xor)
		*mapped = plain;
	return 0;
}

/* ---- addresses ---- */

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b, int port)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_addr.s_addr == y->sin_addr.s_addr &&
		    (!port || x->sin_port == y->sin_port);
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 &&
		    (!port || x->sin6_port == y->sin6_port);
	}
	return 0;
}

static void
addr_text(char *out, size_t cap, const struct sockaddr_storage *ss)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, cap, "?");
	}
}

/* mapped is one of the host's addresses with our socket's port: no NAT. */
static int
mapped_is_local(const struct visor_nat *n)
{
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);
	struct ifaddrs *ifs, *i;
	int local = 0;

	if (getsockname(n->fd, (struct sockaddr *)&bound, &bl) == -1 ||
	    getifaddrs(&ifs) == -1)
		return 0;
	for (i = ifs; i != NULL && !local; i = i->ifa_next) {
		struct sockaddr_storage a;

		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6))
			continue;
		memset(&a, 0, sizeof(a));
		memcpy(&a, i->ifa_addr, i->ifa_addr->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		local = same_addr(&a, &n->mapped, 0);
	}
	freeifaddrs(ifs);
	if (!local)
		return 0;
	if (bound.ss_family == AF_INET)
		return ((struct sockaddr_in *)&bound)->sin_port ==
		    ((struct sockaddr_in *)&n->mapped)->sin_port;
	return ((struct sockaddr_in6 *)&bound)->sin6_port ==
	    ((struct sockaddr_in6 *)&n->mapped)->sin6_port;
}

/* The host's addresses as one string, to notice when they change. */
static void
if_signature(char *out, size_t cap)
{
	struct ifaddrs *ifs;
	size_t used = 0;

	out[0] = '\0';
	if (getifaddrs(&ifs) == -1)
		return;
	for (struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
		char ip[INET6_ADDRSTRLEN];
		const void *src;
		int w;

		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			src = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		else if (i->ifa_addr->sa_family == AF_INET6)
			src = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
		else
			continue;
		inet_ntop(i->ifa_addr->sa_family, src, ip, sizeof(ip));
		w = snprintf(out + used, cap - used, "%s,", ip);
		if (w < 0 || (size_t)w >= cap - used)
			break;
		used += (size_t)w;
	}
	freeifaddrs(ifs);
}

/* ---- the run ---- */

static void
finish(struct visor_nat *n, const char *type)
{
	char prev[sizeof(n->type)];

	memcpy(prev, n->type, sizeof(prev));
	n->phase = PH_IDLE;
	snprintf(n->type, sizeof(n->type), "%s", type);
	n->duration_ms = sw_mono_ms() - n->run_start_ms;
	n->checked = time(NULL);
	n->runs++;
	n->last_run_ms = sw_mono_ms();
	if (n->fd != -1) {
		event_free(n->rd);
		n->rd = NULL;
		close(n->fd);
		n->fd = -1;
	}
	if (strcmp(prev, type) != 0)
		sw_log_info(n->v->name, "nat type", "type=%s mapped=%s server=%s ms=%lld", type,
		    n->mapped_text[0] != '\0' ? n->mapped_text : "-", n->server_text,
		    n->duration_ms);
	if (strcmp(type, "symmetric") == 0 && strcmp(prev, type) != 0)
		sw_log_warn(n->v->name, "behind a symmetric NAT: sudph transports are not tried",
		    NULL);
	sw_timer_in(n->timer, NAT_WATCH_MS);
}

static const struct sockaddr_storage *
target(const struct visor_nat *n, socklen_t *len)
{
	if (n->phase == PH_T1B) {
		*len = n->other.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6);
		return &n->other_ip;
	}
	*len = n->server_len[n->cur];
	return &n->servers[n->cur];
}

static void
send_test(struct visor_nat *n)
{
	uint8_t buf[32];
	uint32_t change = n->phase == PH_T2 ? CHANGE_IP | CHANGE_PORT :
	    n->phase == PH_T3 ? CHANGE_PORT : 0;
	size_t len = stun_request(buf, n->txid, change);
	socklen_t sl;
	const struct sockaddr_storage *to = target(n, &sl);

	/* A send that fails (no route, would block) is one lost request: it is resent. */
	if (sendto(n->fd, buf, len, 0, (const struct sockaddr *)to, sl) == -1)
		sw_log_debug(n->v->name, "stun send failed", "error=\"%s\"", strerror(errno));
}

static void
begin_test(struct visor_nat *n, enum nat_phase ph)
{
	n->phase = ph;
	randombytes_buf(n->txid, sizeof(n->txid));
	n->test_start_ms = sw_mono_ms();
	send_test(n);
	sw_timer_in(n->timer, NAT_RESEND_MS);
}

/* The current test has given up. */
static void
test_timeout(struct visor_nat *n)
{
	switch (n->phase) {
	case PH_T1:
		if (++n->cur < n->nservers) {
			begin_test(n, PH_T1);
			return;
		}
		finish(n, "udp-blocked");
		return;
	case PH_T2:
		if (n->open) {
			finish(n, "port-restricted-cone");
			return;
		}
		if (!n->has_other) {
			finish(n, "unknown");
			return;
		}
		begin_test(n, PH_T1B);
		return;
	case PH_T1B:
		/* The other address never answered: nothing more can be told. */
		finish(n, "unknown");
		return;
	case PH_T3:
		finish(n, "port-restricted-cone");
		return;
	default:
		return;
	}
}

/*
 * Test I' goes to the other IP at the first port, not to the other
 * address: test II's answer came from there, and on a Linux NAT that
 * unsolicited datagram leaves a conntrack entry holding our mapped port
 * for that peer, so the NAT would have to pick another port and a cone
 * would look symmetric (RFC 5780 section 4.3 tests the same way).
 */
static void
other_ip(struct visor_nat *n)
{
	n->other_ip = n->other;
	if (n->other.ss_family == AF_INET)
		((struct sockaddr_in *)&n->other_ip)->sin_port =
		    ((struct sockaddr_in *)&n->servers[n->cur])->sin_port;
	else if (n->other.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&n->other_ip)->sin6_port =
		    ((struct sockaddr_in6 *)&n->servers[n->cur])->sin6_port;
}

static void
answered(struct visor_nat *n, const struct sockaddr_storage *mapped,
    const struct sockaddr_storage *other, int has_other)
{
	switch (n->phase) {
	case PH_T1:
		n->mapped = *mapped;
		n->other = *other;
		n->has_other = has_other && other->ss_family == n->servers[n->cur].ss_family;
		other_ip(n);
		addr_text(n->mapped_text, sizeof(n->mapped_text), mapped);
		addr_text(n->server_text, sizeof(n->server_text), &n->servers[n->cur]);
		n->open = mapped_is_local(n);
		if (!has_other) {
			finish(n, n->open ? "open" : "unknown");
			return;
		}
		begin_test(n, PH_T2);
		return;
	case PH_T2:
		finish(n, n->open ? "open" : "full-cone");
		return;
	case PH_T1B:
		if (!same_addr(mapped, &n->mapped, 1)) {
			finish(n, "symmetric");
			return;
		}
		begin_test(n, PH_T3);
		return;
	case PH_T3:
		finish(n, "restricted-cone");
		return;
	default:
		return;
	}
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct visor_nat *n = arg;
	uint8_t buf[NAT_MAX_DGRAM];

	(void)what;
	for (int i = 0; i < 16 && n->phase != PH_IDLE; i++) {
		struct sockaddr_storage mapped, other;
		int has_other;
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_TRUNC);

		if (r == -1)
			return;
		if ((size_t)r > sizeof(buf) ||
		    stun_parse_answer(buf, (size_t)r, n->txid, &mapped, &other, &has_other) == -1)
			continue;
		answered(n, &mapped, &other, has_other);
	}
}

static void
start_run(struct visor_nat *n)
{
	struct sockaddr_storage any;
	socklen_t al;

	if_signature(n->ifsig, sizeof(n->ifsig));
	n->run_start_ms = sw_mono_ms();
	n->mapped_text[0] = '\0';
	n->has_other = 0;
	n->open = 0;
	n->cur = 0;
	if (n->nservers == 0) {
		finish(n, "unknown");
		return;
	}
	/* One socket per run: a fresh mapping, of the family of the servers. */
	al = sw_udp_addr_parse(n->servers[0].ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0",
	    &any);
	if ((n->fd = sw_udp_bind((struct sockaddr *)&any, al)) == -1) {
		sw_log_warn(n->v->name, "nat: no UDP socket", "error=\"%s\"", strerror(errno));
		finish(n, "unknown");
		return;
	}
	n->rd = event_new(sw_svc_base(n->v->svc), n->fd, EV_READ | EV_PERSIST, on_read, n);
	if (n->rd == NULL || event_add(n->rd, NULL) == -1) {
		finish(n, "unknown");
		return;
	}
	begin_test(n, PH_T1);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct visor_nat *n = arg;
	long long now = sw_mono_ms();
	char sig[sizeof(n->ifsig)];

	(void)fd;
	(void)what;
	if (n->phase != PH_IDLE) {
		if (now - n->test_start_ms >= NAT_TEST_MS) {
			test_timeout(n);
			return;
		}
		send_test(n);
		sw_timer_in(n->timer, NAT_RESEND_MS);
		return;
	}
	if_signature(sig, sizeof(sig));
	if (strcmp(sig, n->ifsig) != 0) {
		sw_log_info(n->v->name, "host addresses changed: checking the NAT again", NULL);
		start_run(n);
		return;
	}
	if (now - n->last_run_ms >= NAT_RECHECK_MS) {
		start_run(n);
		return;
	}
	sw_timer_in(n->timer, NAT_WATCH_MS);
}

/* "ip:port", "[ip6]:port" or "localhost:port". */
static socklen_t
server_parse(const char *text, struct sockaddr_storage *ss)
{
	char tmp[80];

	if (strncmp(text, "localhost:", 10) == 0) {
		snprintf(tmp, sizeof(tmp), "127.0.0.1:%s", text + 10);
		text = tmp;
	}
	return sw_udp_addr_parse(text, ss);
}

struct visor_nat *
visor_nat_new(struct visor *v)
{
	struct visor_nat *n = calloc(1, sizeof(*n));
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(v->cfg, "stun_servers"), *e;

	if (n == NULL)
		return NULL;
	n->v = v;
	n->fd = -1;
	snprintf(n->type, sizeof(n->type), "unknown");
	cJSON_ArrayForEach(e, list) {
		socklen_t l;

		if (!cJSON_IsString(e) || (l = server_parse(e->valuestring,
		    &n->servers[n->nservers])) == 0) {
			sw_log_error(v->name, "stun_servers: each must be a numeric ip:port", NULL);
			free(n);
			return NULL;
		}
		n->server_len[n->nservers] = l;
		if (++n->nservers == NAT_MAX_SERVERS)
			break;
	}
	return n;
}

int
visor_nat_start(struct visor_nat *n)
{
	if ((n->timer = evtimer_new(sw_svc_base(n->v->svc), on_timer, n)) == NULL)
		return -1;
	start_run(n);
	return 0;
}

void
visor_nat_free(struct visor_nat *n)
{
	if (n == NULL)
		return;
	if (n->rd != NULL)
		event_free(n->rd);
	if (n->fd != -1)
		close(n->fd);
	if (n->timer != NULL)
		event_free(n->timer);
	free(n);
}

const char *
visor_nat_type(const struct visor_nat *n)
{
	return n != NULL ? n->type : "unknown";
}

int
visor_nat_symmetric(const struct visor_nat *n)
{
	return n != NULL && strcmp(n->type, "symmetric") == 0;
}

cJSON *
visor_nat_json(const struct visor_nat *n)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || n == NULL)
		return o;
	cJSON_AddStringToObject(o, "type", n->type);
	cJSON_AddStringToObject(o, "mapped", n->mapped_text);
	cJSON_AddStringToObject(o, "server", n->server_text);
	cJSON_AddNumberToObject(o, "checked", (double)n->checked);
	cJSON_AddNumberToObject(o, "duration_ms", (double)n->duration_ms);
	cJSON_AddBoolToObject(o, "running", n->phase != PH_IDLE);
	cJSON_AddNumberToObject(o, "runs", n->runs);
	return o;
}
