/*
 * test_http_dmsg: HTTP over dmsg (http_dmsg.c) through a real dmsg-discovery
 * and dmsg-server from $SW_BUILD/bin, with a service and a client in this
 * test's event base.
 *
 * One table of requests runs over both carriers and must get the same
 * answers (status and body); the server sees the dmsg caller as its PK and
 * counts requests by carrier; a 64 KiB+ body over dmsg gets 413; httpauth
 * accepts and refuses the same nonces whichever carrier brings them; a PK
 * with no dmsg side falls back to TCP within the 2 s dial limit and the
 * failure is remembered (60 s; a moment only while the PK is not on dmsg
 * at all, so a service that registers late is reached over dmsg soon
 * after); a TCP-only path stays on TCP; a mapping of
 * dmsg-discovery itself does not make the dmsg client's own discovery
 * requests go through the carrier (they would recurse); a local process
 * that connects to the carrier's private listener from a try's loopback
 * address (another port), before or beside the try's own connection, is
 * closed unread and never spliced; and freeing it all misuses no
 * bufferevent (libevent's warnings are counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "crypto.h"
#include "dmsg_client.h"
#include "http.h"
#include "http_dmsg.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tests/lib/procs.h"
#include "tests/lib/testutil.h"

#define WAIT_MS 30000

static struct event_base *base;
static struct sw_test_proc disc, relay;

/* The service: an HTTP server on TCP and on dmsg port 80. */
static struct sw_keypair svc_kp, cli_kp;
static struct dmsg_client *svc_dc, *cli_dc;
static struct sw_http_server *srv;
static struct sw_http_dmsg_server *hds;
static struct sw_metrics *svc_metrics, *cli_metrics;
static struct sw_store *store;
static struct sw_http_client *hc;
static struct sw_http_dmsg *carrier;
static char svc_url[64];
static int svc_port;
static char last_peer[80], last_carrier[16];
static int impostor_seen;  /* requests the service got from an impostor's socket */

static void
h_echo(struct sw_http_req *req, void *arg)
{
	size_t len;
	const unsigned char *b = sw_http_req_body(req, &len);
	char out[256];

	(void)arg;
	if (strstr(sw_http_req_uri(req), "impostor") != NULL)
		impostor_seen++;
	snprintf(last_peer, sizeof(last_peer), "%s", sw_http_req_peer(req));
	snprintf(last_carrier, sizeof(last_carrier), "%s", sw_http_req_carrier(req));
	snprintf(out, sizeof(out), "{\"method\":\"%s\",\"uri\":\"%s\",\"len\":%zu,\"x\":\"%s\"}",
	    sw_http_req_method(req), sw_http_req_uri(req), len,
	    len > 0 && len < 64 ? (const char *)b : "");
	sw_http_reply_raw(req, 200, "application/json", out, strlen(out));
}

static void
auth_done(struct sw_http_req *req, int ok, const uint8_t pk[SW_PK_LEN], void *arg)
{
	(void)pk;
	(void)arg;
	if (ok)
		sw_http_reply_raw(req, 200, "application/json", "{\"ok\":true}", 11);
}

static void
h_auth(struct sw_http_req *req, void *arg)
{
	(void)arg;
	sw_httpauth_check(store, "t:", req, auth_done, NULL);
}

static int
both_registered(void *arg)
{
	(void)arg;
	return dmsg_client_registered(svc_dc) && dmsg_client_registered(cli_dc);
}

static struct dmsg_client *
client_new(struct sw_keypair *kp)
{
	struct dmsg_client_opts o;
	struct dmsg_client *c;

	memset(&o, 0, sizeof(o));
	o.discovery = disc.url;
	o.backoff_min_ms = 100;
	o.backoff_max_ms = 1000;
	c = dmsg_client_new(base, kp, &o, "test");
	if (c == NULL || dmsg_client_start(c) == -1)
		return NULL;
	return c;
}

static struct sw_httpauth auth;

static int
group_setup(void **state)
{
	int port;

	(void)state;
	sw_test_libevent_watch();
	signal(SIGPIPE, SIG_IGN);
	if (sw_crypto_init() == -1)
		return -1;
	sw_log_set_level(SW_LOG_WARN);
	if ((base = event_base_new()) == NULL || sw_test_dmsg_discovery_start(&disc) == -1)
		return -1;
	sw_keypair_generate(&relay.kp);
	if (sw_test_dmsg_server_start(&relay, disc.url) == -1)
		return -1;
	sw_keypair_generate(&svc_kp);
	sw_keypair_generate(&cli_kp);
	if ((svc_dc = client_new(&svc_kp)) == NULL || (cli_dc = client_new(&cli_kp)) == NULL)
		return -1;
	svc_metrics = sw_metrics_new("svc");
	cli_metrics = sw_metrics_new("cli");
	store = sw_store_new(base, NULL, "test");
	auth.st = store;
	auth.prefix = "t:";
	port = sw_test_free_port();
	svc_port = port;
	snprintf(svc_url, sizeof(svc_url), "http://127.0.0.1:%d", port);
	srv = sw_http_server_new(base, "svc", svc_metrics);
	if (srv == NULL || sw_http_route(srv, "*", "/echo/{x}", h_echo, NULL) == -1 ||
	    sw_http_route(srv, "POST", "/auth", h_auth, NULL) == -1 ||
	    sw_httpauth_routes(srv, &auth) == -1 ||
	    sw_http_server_listen(srv, svc_url + 7) == -1)
		return -1;
	if ((hds = sw_http_dmsg_serve(base, srv, svc_dc, 0, "svc")) == NULL)
		return -1;
	if ((hc = sw_http_client_new(base, "cli")) == NULL ||
	    (carrier = sw_http_dmsg_new(base, cli_dc, cli_metrics, "cli")) == NULL ||
	    sw_http_client_set_dmsg(hc, carrier) == -1)
		return -1;
	return sw_test_run_until_fn(base, both_registered, NULL, WAIT_MS);
}

static int
group_teardown(void **state)
{
	(void)state;
	sw_http_client_free(hc);
	sw_http_dmsg_free(carrier);
	sw_http_dmsg_server_free(hds);
	sw_http_server_free(srv);
	dmsg_client_free(cli_dc);
	dmsg_client_free(svc_dc);
	sw_store_free(store);
	sw_metrics_free(svc_metrics);
	sw_metrics_free(cli_metrics);
	sw_test_proc_kill(&relay);
	sw_test_proc_kill(&disc);
	event_base_free(base);
	return 0;
}

/* ---------- one request, run to its answer ---------- */

struct answer {
	int done;
	int status;
	char body[512];
	size_t len;
};

static void
on_resp(const struct sw_http_resp *r, void *arg)
{
	struct answer *a = arg;

	a->done = 1;
	a->status = r->status;
	a->len = r->len;
	snprintf(a->body, sizeof(a->body), "%s", r->body);
}

static void
request(const char *method, const char *path, const void *body, size_t len,
    const char *const *headers, struct answer *a)
{
	char url[256];
	struct sw_http_opts o = {.timeout_ms = 8000, .headers = headers};

	memset(a, 0, sizeof(*a));
	snprintf(url, sizeof(url), "%s%s", svc_url, path);
	assert_int_equal(sw_http_request(hc, method, url, body, len, &o, on_resp, a), 0);
	assert_int_equal(sw_test_run_until(base, &a->done, WAIT_MS), 0);
}

static void
map_service(const uint8_t *pk)
{
	assert_int_equal(sw_http_dmsg_map(carrier, svc_url, pk), 0);
}

/* The same table over TCP (no mapping) and over dmsg: identical answers. */
static void
test_same_answers(void **state)
{
	static const struct {
		const char *method, *path, *body;
		int status;
	} cases[] = {
		{"GET", "/echo/a?q=1", NULL, 200},
		{"POST", "/echo/b", "{\"k\":\"v\"}", 200},
		{"DELETE", "/echo/c%2Fd", NULL, 200},
		{"GET", "/nothing", NULL, 404},
		{"GET", "/auth", NULL, 405},
		{"POST", "/auth", "{}", 401},
	};
	struct answer tcp, dm;
	unsigned long d0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *b = cases[i].body;

		memset(&tcp, 0, sizeof(tcp));
		/* TCP: a client without the carrier. */
		sw_http_client_set_dmsg(hc, NULL);
		request(cases[i].method, cases[i].path, b, b ? strlen(b) : 0, NULL, &tcp);
		assert_int_equal(tcp.status, cases[i].status);
		if (tcp.status == 200)
			assert_string_equal(last_carrier, "tcp");
		assert_int_equal(sw_http_client_set_dmsg(hc, carrier), 0);
		map_service(svc_kp.pk);
		d0 = sw_http_dmsg_count(carrier, 1);
		request(cases[i].method, cases[i].path, b, b ? strlen(b) : 0, NULL, &dm);
		assert_int_equal(sw_http_dmsg_count(carrier, 1), d0 + 1);
		assert_int_equal(dm.status, tcp.status);
		assert_string_equal(dm.body, tcp.body);
		if (dm.status == 200) {
			char pk[SW_PK_HEX];

			sw_hex_encode(pk, cli_kp.pk, SW_PK_LEN);
			assert_string_equal(last_carrier, "dmsg");
			assert_string_equal(last_peer, pk);
		}
	}
	/* The server's metrics say which carrier took them. */
	{
		struct evbuffer *out = evbuffer_new();
		char *text;

		assert_int_equal(sw_metrics_render(svc_metrics, out), 0);
		evbuffer_add(out, "", 1);
		text = (char *)evbuffer_pullup(out, -1);
		assert_non_null(strstr(text,
		    "sw_http_carrier_requests_total{service=\"svc\",carrier=\"dmsg\"}"));
		assert_non_null(strstr(text,
		    "sw_http_carrier_requests_total{service=\"svc\",carrier=\"tcp\"}"));
		evbuffer_free(out);
	}
}

/* Over dmsg the body limit is the same: 64 KiB + 1 gets 413. */
static void
test_body_limit(void **state)
{
	size_t n = SW_HTTP_MAX_BODY + 1;
	char *big = malloc(n);
	struct answer a;
	unsigned long d0 = sw_http_dmsg_count(carrier, 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', n);
	map_service(svc_kp.pk);
	request("POST", "/echo/big", big, n, NULL, &a);
	assert_int_equal(a.status, 413);
	assert_int_equal(sw_http_dmsg_count(carrier, 1), d0 + 1);
	/* ... and exactly the limit is fine. */
	request("POST", "/echo/big", big, SW_HTTP_MAX_BODY, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(sw_http_dmsg_count(carrier, 1), d0 + 2);
	free(big);
}

static void
signed_post(unsigned long long nonce, int dmsg, int bad_sig, struct answer *a)
{
	struct sw_httpauth_hdrs h;
	const char *hdrs[7];

	assert_int_equal(sw_httpauth_sign(&h, &cli_kp, "POST", "/auth", nonce,
	    (const uint8_t *)"{}", 2), 0);
	if (bad_sig)
		h.sig[0] = h.sig[0] == '0' ? '1' : '0';
	hdrs[0] = "SW-Public";
	hdrs[1] = h.pk;
	hdrs[2] = "SW-Nonce";
	hdrs[3] = h.nonce;
	hdrs[4] = "SW-Sig";
	hdrs[5] = h.sig;
	hdrs[6] = NULL;
	if (dmsg) {
		assert_int_equal(sw_http_client_set_dmsg(hc, carrier), 0);
		map_service(svc_kp.pk);
	} else {
		sw_http_client_set_dmsg(hc, NULL);
	}
	request("POST", "/auth", "{}", 2, hdrs, a);
	assert_int_equal(sw_http_client_set_dmsg(hc, carrier), 0);
}

/* One nonce sequence, requests alternating carriers: each nonce is taken once. */
static void
test_httpauth_both_carriers(void **state)
{
	struct answer a;

	(void)state;
	signed_post(0, 1, 0, &a);
	assert_int_equal(a.status, 200);
	signed_post(0, 0, 0, &a); /* replay over TCP */
	assert_int_equal(a.status, 401);
	assert_non_null(strstr(a.body, "\"next_nonce\":1"));
	signed_post(1, 0, 0, &a);
	assert_int_equal(a.status, 200);
	signed_post(1, 1, 0, &a); /* replay over dmsg */
	assert_int_equal(a.status, 401);
	assert_non_null(strstr(a.body, "\"next_nonce\":2"));
	signed_post(2, 1, 1, &a); /* bad signature over dmsg: refused, nonce kept */
	assert_int_equal(a.status, 401);
	signed_post(2, 1, 0, &a);
	assert_int_equal(a.status, 200);
}

/* A PK nobody serves: TCP within the dial limit, then TCP at once for a while. */
static void
test_fallback(void **state)
{
	struct sw_keypair nobody;
	struct answer a;
	long long t0;
	unsigned long d0 = sw_http_dmsg_count(carrier, 1), c0 = sw_http_dmsg_count(carrier, 0);

	(void)state;
	sw_keypair_generate(&nobody);
	map_service(nobody.pk);
	t0 = sw_mono_ms();
	request("GET", "/echo/x", NULL, 0, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(last_carrier, "tcp");
	assert_true(sw_mono_ms() - t0 < SW_HTTP_DMSG_DIAL_MS + 1000);
	assert_int_equal(sw_http_dmsg_count(carrier, 0), c0 + 1);
	assert_int_equal(sw_http_dmsg_count(carrier, 1), d0);
	/* Not on dmsg at all (no entry): remembered, for a moment. */
	assert_true(sw_http_dmsg_tcp_left_ms(carrier, svc_url) > 0);
	assert_true(sw_http_dmsg_tcp_left_ms(carrier, svc_url) <= SW_HTTP_DMSG_UNLISTED_MS);
	/* Remembered: the next one goes to TCP without dialling. */
	t0 = sw_mono_ms();
	request("GET", "/echo/y", NULL, 0, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(last_carrier, "tcp");
	assert_true(sw_mono_ms() - t0 < 500);
	/* A fresh mapping (the right PK) is tried again. */
	map_service(svc_kp.pk);
	request("GET", "/echo/z", NULL, 0, NULL, &a);
	assert_string_equal(last_carrier, "dmsg");
}

/* The service's dmsg side stopped: TCP within the fallback time. */
static void
test_dmsg_side_stopped(void **state)
{
	struct answer a;
	long long t0;

	(void)state;
	map_service(svc_kp.pk);
	sw_http_dmsg_server_free(hds);
	hds = NULL;
	t0 = sw_mono_ms();
	request("GET", "/echo/s", NULL, 0, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(last_carrier, "tcp");
	assert_true(sw_mono_ms() - t0 < SW_HTTP_DMSG_DIAL_MS + 1000);
	/* Listed but not answering: a real failure, remembered the full 60 s. */
	assert_true(sw_http_dmsg_tcp_left_ms(carrier, svc_url) >
	    (SW_HTTP_DMSG_FAIL_S - 10) * 1000LL);
	hds = sw_http_dmsg_serve(base, srv, svc_dc, 0, "svc");
	assert_non_null(hds);
}

static int
registered(void *arg)
{
	return dmsg_client_registered(arg);
}

/*
 * A service whose dmsg side registers after the first request (a fresh
 * deployment): that request goes to TCP and the PK, not on dmsg yet, is
 * remembered a moment only, so the next ones find it over dmsg once it is
 * there, long before the 60 s a failed dial is remembered.
 */
static void
test_registers_late(void **state)
{
	struct sw_keypair late_kp;
	struct dmsg_client *late;
	struct sw_http_dmsg_server *late_hds;
	struct answer a;
	long long t0;

	(void)state;
	sw_keypair_generate(&late_kp);
	map_service(late_kp.pk);
	request("GET", "/echo/early", NULL, 0, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(last_carrier, "tcp");
	assert_true(sw_http_dmsg_tcp_left_ms(carrier, svc_url) <= SW_HTTP_DMSG_UNLISTED_MS);
	/* Now its dmsg side comes up (the same HTTP server, a key of its own). */
	late = client_new(&late_kp);
	assert_non_null(late);
	late_hds = sw_http_dmsg_serve(base, srv, late, 0, "late");
	assert_non_null(late_hds);
	assert_int_equal(sw_test_run_until_fn(base, registered, late, WAIT_MS), 0);
	/* The memory is time: requests, a tenth of a second apart, until one goes over dmsg. */
	t0 = sw_mono_ms();
	do {
		sw_test_run_for(base, 100);
		request("GET", "/echo/late", NULL, 0, NULL, &a);
		assert_int_equal(a.status, 200);
	} while (strcmp(last_carrier, "dmsg") != 0 &&
	    sw_mono_ms() - t0 < (SW_HTTP_DMSG_FAIL_S / 2) * 1000LL);
	assert_string_equal(last_carrier, "dmsg");
	assert_int_equal(sw_http_dmsg_tcp_left_ms(carrier, svc_url), 0);
	sw_http_dmsg_server_free(late_hds);
	dmsg_client_free(late);
}

static void
test_tcp_path(void **state)
{
	char url[128];
	struct answer a;

	(void)state;
	map_service(svc_kp.pk);
	snprintf(url, sizeof(url), "%s/echo/tcp", svc_url);
	assert_int_equal(sw_http_dmsg_tcp_path(carrier, url), 0);
	request("GET", "/echo/tcp", NULL, 0, NULL, &a);
	assert_string_equal(last_carrier, "tcp");
	request("GET", "/echo/other", NULL, 0, NULL, &a);
	assert_string_equal(last_carrier, "dmsg");
}

/*
 * dmsg-discovery's own URL mapped on the carrier (to a PK with no dmsg
 * side): a request to it dials, the dial's discovery lookups go out on the
 * dmsg client's own HTTP client (never through the carrier), fail, and the
 * request ends over TCP.  Had the lookups gone through the carrier they
 * would dial again for every lookup: the carrier's count would grow past 1.
 */
static void
test_no_recursion(void **state)
{
	struct sw_keypair nobody;
	struct answer a;
	char url[128];
	struct sw_http_opts o = {.timeout_ms = 8000};
	unsigned long n0 = sw_http_dmsg_count(carrier, 0) + sw_http_dmsg_count(carrier, 1);

	(void)state;
	sw_keypair_generate(&nobody);
	assert_int_equal(sw_http_dmsg_map(carrier, disc.url, nobody.pk), 0);
	snprintf(url, sizeof(url), "%s/dmsg-discovery/entries", disc.url);
	memset(&a, 0, sizeof(a));
	assert_int_equal(sw_http_request(hc, "GET", url, NULL, 0, &o, on_resp, &a), 0);
	assert_int_equal(sw_test_run_until(base, &a.done, WAIT_MS), 0);
	assert_int_equal(a.status, 200);
	assert_int_equal(sw_http_dmsg_count(carrier, 0) + sw_http_dmsg_count(carrier, 1), n0 + 1);
	assert_int_equal(sw_http_dmsg_count(carrier, 0), n0 + 1 - sw_http_dmsg_count(carrier, 1));
	/* And the dmsg client still works: a dial to the service goes through. */
	map_service(svc_kp.pk);
	request("GET", "/echo/after", NULL, 0, NULL, &a);
	assert_string_equal(last_carrier, "dmsg");
}

/* ---------- impostors on the carrier's private listener ---------- */

/* One raw HTTP/1.1 client on a socket: what it read, and whether it was closed. */
struct peer {
	struct bufferevent *bev;
	struct evbuffer *got;
	int closed;
};

static void
peer_read(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;

	evbuffer_add_buffer(p->got, bufferevent_get_input(bev));
}

static void
peer_event(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		peer_read(bev, p);
		p->closed = 1;
		bufferevent_disable(bev, EV_READ | EV_WRITE);
	}
}

/* fd sends GET path (Connection: close) and reads until it is closed. */
static void
peer_start(struct peer *p, int fd, const char *path)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(evutil_make_socket_nonblocking(fd), 0);
	p->bev = bufferevent_socket_new(base, fd, 0);
	p->got = evbuffer_new();
	assert_non_null(p->bev);
	assert_non_null(p->got);
	bufferevent_setcb(p->bev, peer_read, NULL, peer_event, p);
	assert_int_equal(bufferevent_enable(p->bev, EV_READ | EV_WRITE), 0);
	evbuffer_add_printf(bufferevent_get_output(p->bev),
	    "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
}

/* The socket is closed now, not when libevent finalizes the bufferevent: tests count sockets. */
static void
peer_free(struct peer *p)
{
	evutil_socket_t fd = bufferevent_getfd(p->bev);

	bufferevent_free(p->bev);
	close(fd);
	evbuffer_free(p->got);
}

/* What p read, NUL-terminated (in p->got). */
static const char *
peer_text(struct peer *p)
{
	evbuffer_add(p->got, "", 1);
	return (const char *)evbuffer_pullup(p->got, -1);
}

/*
 * A socket bound to laddr (any port) and connected to the carrier's
 * listener, as a local process could make one.  On loopback the kernel
 * completes the handshake into the listener's queue within connect(), so
 * sockets made one after the other are accepted in that order.
 */
static int
sock_from(const char *laddr, int lport)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, laddr, &sin.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)lport);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

struct try_end {
	int done, ok;
};

static void
try_done(void *arg, int ok)
{
	struct try_end *e = arg;

	e->done = 1;
	e->ok = ok;
}

/* What a test waits for: every one of these closed or done (NULL: not waited for). */
struct waiting {
	struct peer *a, *b;
	struct try_end *e;
	struct answer *ans;
};

static int
all_over(void *arg)
{
	struct waiting *p = arg;

	return p->a->closed && (p->b == NULL || p->b->closed) &&
	    (p->e == NULL || p->e->done) && (p->ans == NULL || p->ans->done);
}

/*
 * The carrier's side of a try, driven as http_client.c drives it, with a
 * raw socket in evhttp's place: an impostor bound to the try's address
 * connects first, so it is the first connection the listener accepts.  It
 * is closed unread; the try's own socket (registered with try_sock) is the
 * one spliced, and its request is answered over dmsg.
 */
static void
test_impostor_first(void **state)
{
	struct sw_http_dmsg_try *t;
	struct try_end e = {0, 0};
	struct peer imp, real;
	struct waiting w = {&imp, &real, &e, NULL};
	char laddr[32], pk[SW_PK_HEX];
	int lport, fd;
	unsigned long s0 = sw_http_dmsg_strays(carrier);

	(void)state;
	map_service(svc_kp.pk);
	impostor_seen = 0;
	t = sw_http_dmsg_try_start(carrier, "127.0.0.1", svc_port, "/echo/real", try_done, &e,
	    laddr, sizeof(laddr), &lport);
	assert_non_null(t);
	peer_start(&imp, sock_from(laddr, lport), "/echo/impostor");
	fd = sock_from(laddr, lport);
	assert_int_equal(sw_http_dmsg_try_sock(t, fd), 0);
	peer_start(&real, fd, "/echo/real");
	assert_int_equal(sw_test_run_until_fn(base, all_over, &w, WAIT_MS), 0);
	assert_int_equal(e.ok, 1);
	assert_int_equal(evbuffer_get_length(imp.got), 0);
	assert_int_equal(impostor_seen, 0);
	assert_int_equal(sw_http_dmsg_strays(carrier), s0 + 1);
	assert_non_null(strstr(peer_text(&real), "HTTP/1.1 200"));
	assert_non_null(strstr(peer_text(&real), "\"uri\":\"/echo/real\""));
	sw_hex_encode(pk, cli_kp.pk, SW_PK_LEN);
	assert_string_equal(last_carrier, "dmsg");
	assert_string_equal(last_peer, pk);
	/* A socket that is not bound to the try's address is refused as its own. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(sw_http_dmsg_try_sock(t, fd), -1);
	close(fd);
	sw_http_dmsg_try_free(t);
	peer_free(&imp);
	peer_free(&real);
}

/* The carrier's listener port: a try tells it (cancelled at once, no callback). */
static int
listener_port(void)
{
	struct sw_http_dmsg_try *t;
	char laddr[32];
	int lport = -1;

	t = sw_http_dmsg_try_start(carrier, "127.0.0.1", svc_port, "/", try_done, NULL, laddr,
	    sizeof(laddr), &lport);
	assert_non_null(t);
	sw_http_dmsg_try_free(t);
	return lport;
}

/* The one socket of this process connected to 127.0.0.1:lport from another address. */
static void
try_socket_addr(int lport, char *laddr, size_t len)
{
	struct sockaddr_in me, peer;
	socklen_t ml, pl;
	int n = 0;

	for (int fd = 3; fd < 4096; fd++) {
		ml = pl = sizeof(me);
		if (getpeername(fd, (struct sockaddr *)&peer, &pl) == -1 ||
		    getsockname(fd, (struct sockaddr *)&me, &ml) == -1 ||
		    peer.sin_family != AF_INET || ntohs(peer.sin_port) != lport ||
		    peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK) ||
		    me.sin_addr.s_addr == htonl(INADDR_LOOPBACK))
			continue;
		assert_non_null(inet_ntop(AF_INET, &me.sin_addr, laddr, (socklen_t)len));
		n++;
	}
	assert_int_equal(n, 1);
}

/*
 * Through the HTTP client: while a request's dmsg try is in flight, an
 * impostor connects from the address the request's socket is bound to.
 * It is closed unread; the request is answered over dmsg.
 */
static void
test_impostor_beside(void **state)
{
	struct sw_http_opts o = {.timeout_ms = 8000};
	struct answer a;
	struct peer imp;
	struct waiting w = {&imp, NULL, NULL, &a};
	char url[128], laddr[INET_ADDRSTRLEN];
	int lport = listener_port();
	unsigned long s0 = sw_http_dmsg_strays(carrier), d0 = sw_http_dmsg_count(carrier, 1);

	(void)state;
	map_service(svc_kp.pk);
	impostor_seen = 0;
	snprintf(url, sizeof(url), "%s/echo/beside", svc_url);
	memset(&a, 0, sizeof(a));
	assert_int_equal(sw_http_request(hc, "GET", url, NULL, 0, &o, on_resp, &a), 0);
	try_socket_addr(lport, laddr, sizeof(laddr));
	peer_start(&imp, sock_from(laddr, lport), "/echo/impostor");
	assert_int_equal(sw_test_run_until_fn(base, all_over, &w, WAIT_MS), 0);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, "\"uri\":\"/echo/beside\""));
	assert_string_equal(last_carrier, "dmsg");
	assert_int_equal(sw_http_dmsg_count(carrier, 1), d0 + 1);
	assert_int_equal(evbuffer_get_length(imp.got), 0);
	assert_int_equal(impostor_seen, 0);
	assert_int_equal(sw_http_dmsg_strays(carrier), s0 + 1);
	peer_free(&imp);
}

/*
 * Last: the client side and then the server side freed under live streams
 * (the carrier's splices free the bufferevents the adapter handed them,
 * then the adapter goes): libevent sees no bufferevent misused (an event
 * on one already freed unlinks it twice: "too few references").
 */
static void
test_free_clean(void **state)
{
	(void)state;
	sw_http_client_free(hc);
	hc = NULL;
	sw_http_dmsg_free(carrier);
	carrier = NULL;
	sw_http_dmsg_server_free(hds);
	hds = NULL;
	sw_test_run_for(base, 50); /* the freed bufferevents finish */
	assert_int_equal(sw_test_libevent_warnings(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_answers),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_httpauth_both_carriers),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_dmsg_side_stopped),
		cmocka_unit_test(test_registers_late),
		cmocka_unit_test(test_tcp_path),
		cmocka_unit_test(test_no_recursion),
		cmocka_unit_test(test_impostor_beside),
		cmocka_unit_test(test_impostor_first),
		cmocka_unit_test(test_free_clean),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
