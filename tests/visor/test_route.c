/*
 * test_route: the visor's router and route groups, black-box.  A visor
 * process; this test is everything around it: two neighbours N1 and N2
 * (stcpr transports: TCP + Noise XK straight to its stcpr_listen), the
 * setup-node in its setup_nodes (a dmsg client calling port 136 and
 * serving port 36), a fake route-finder, and the far end of route groups
 * (Noise KK by hand).
 *
 * Router: a packet with a rule's id on the wrong transport is dropped and
 * counted, not forwarded; a CLOSE forged by a neighbour not on the route
 * closes nothing, the real one closes the rule and goes on; port 136
 * from a key not in setup_nodes is closed unanswered; a rule expires after
 * keep_alive_s without traffic and traffic keeps it; a reservation unused
 * for 30 s is released.
 * Route groups: the visor's dial survives a lost first handshake message,
 * fails cleanly (CLOSE sent, rules gone) when no answer comes in 5 s;
 * as responder it ignores DATA before the handshake, echoes on port 48
 * after it, sends KEEPALIVEs when idle, and closes the group on a DATA
 * that fails decryption; edge
 * rules to a port nobody listens on are refused with "no listener".
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "crypto.h"
#include "dmsg_client.h"
#include "dmsg_wire.h"
#include "frpc.h"
#include "http.h"
#include "log.h"
#include "noise.h"
#include "noise_link.h"
#include "tests/lib/procs.h"
#include "tests/lib/testutil.h"
#include "tp_entry.h"
#include "visor/rgroup.h"
#include "visor/transport.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define WAIT_MS 20000
#define QMAX    64

struct pkt {
	uint8_t type;
	uint32_t id;
	size_t len;
	uint8_t data[256];
};

/* A neighbour: one stcpr transport to the visor, packets it got queued. */
struct nb {
	struct sw_keypair kp;
	char hex[SW_PK_HEX];
	struct noise_link *l;
	uint8_t t_id[TP_ID_LEN];
	char t_text[TP_ID_TEXT];
	int ready, closed;
	struct pkt q[QMAX];
	size_t nq;
	/* the far end of a route group, when this neighbour plays it */
	int play, drop_first, silent, hs_seen;
	struct noise_hs hs;
	struct noise_cipher tx, rx;
	int hs_done;
	uint8_t msg2[128];
	size_t msg2_len;
	uint32_t reply_id; /* where the group's packets go back (our consume id at the visor) */
	int echoed, closes;
	/* packets with this id are counted and their sequence checked, not queued */
	uint32_t count_id, seq_next;
	int seq_bad;
};

static struct event_base *base;
static struct sw_test_proc disc, srv;
static pid_t vpid;
static struct sw_keypair vkp, skp, xkp;
static char vhex[SW_PK_HEX], cfg_path[256];
static int api_port, stcpr_port;
static struct dmsg_client *sc, *xc; /* the setup-node, a stranger */
static struct frpc_server *s36;
static struct sw_http_server *rf;
static struct sw_http_client *hc;
static struct nb n1, n2, n3; /* n3: N1 connecting again (test_peer_reconnects) */
static struct dmsg_stream *d45; /* a dmsg transport into the visor (port 45) */
static int d45_done;
static struct event *ka_ev; /* the neighbours' keep-alives */

/* ---- neighbours ---- */

static void
nb_send(struct nb *n, uint8_t type, uint32_t id, const void *p, size_t len)
{
	uint8_t hdr[VTP_PKT_HDR];

	vtp_pkt_hdr(hdr, type, id);
	assert_int_equal(noise_link_send(n->l, hdr, sizeof(hdr), p, len), 0);
}

/* Playing the dialled end: answer message 1, echo what decrypts. */
static void
play(struct nb *n, const struct vtp_pkt *p)
{
	uint8_t buf[512];
	size_t len;

	if (p->type == VTP_PKT_HANDSHAKE) {
		n->hs_seen++;
		if (n->silent || (n->drop_first && n->hs_seen == 1))
			return;
		if (!n->hs_done) {
			uint8_t s[32], rs[32];
			struct noise_hs_params hp = {.pattern = NOISE_KK, .initiator = false,
			    .prologue = (const uint8_t *)"skywire-route/1", .prologue_len = 15,
			    .s_priv = s, .rs = rs};

			assert_int_equal(sw_sk_to_x25519(s, &n->kp), 0);
			assert_int_equal(sw_pk_to_x25519(rs, vkp.pk), 0);
			assert_int_equal(noise_hs_init(&n->hs, &hp), 0);
			assert_int_equal(noise_hs_read(&n->hs, p->payload, p->len, NULL, 0, &len), 0);
			assert_int_equal(noise_hs_write(&n->hs, NULL, 0, n->msg2, sizeof(n->msg2),
			    &n->msg2_len), 0);
			assert_int_equal(noise_hs_split(&n->hs, &n->tx, &n->rx), 0);
			n->hs_done = 1;
		}
		nb_send(n, VTP_PKT_HANDSHAKE, n->reply_id, n->msg2, n->msg2_len);
	} else if (p->type == VTP_PKT_DATA && n->hs_done) {
		size_t out;

		if (noise_decrypt(&n->rx, NULL, 0, p->payload, p->len, buf, sizeof(buf), &len) == 0 &&
		    noise_encrypt(&n->tx, NULL, 0, buf, len, buf, sizeof(buf), &out) == 0) {
			nb_send(n, VTP_PKT_DATA, n->reply_id, buf, out);
			n->echoed++;
		}
	} else if (p->type == VTP_PKT_CLOSE) {
		n->closes++;
	}
}

static void
nb_ready(struct noise_link *l, void *arg)
{
	(void)l;
	((struct nb *)arg)->ready = 1;
}

static void
nb_message(struct noise_link *l, const uint8_t *msg, size_t len, void *arg)
{
	struct nb *n = arg;
	struct vtp_pkt p;

	(void)l;
	assert_int_equal(vtp_pkt_parse(msg, len, &p), 0);
	if (p.route_id == 0)
		return; /* the transport's own keep-alives */
	if (n->count_id != 0 && p.route_id == n->count_id) {
		if (p.len < 4 || sw_get_u32(p.payload) != n->seq_next)
			n->seq_bad++;
		n->seq_next++;
		return;
	}
	if (n->play)
		play(n, &p);
	if (n->nq < QMAX) {
		struct pkt *q = &n->q[n->nq++];

		q->type = p.type;
		q->id = p.route_id;
		q->len = p.len < sizeof(q->data) ? p.len : sizeof(q->data);
		memcpy(q->data, p.payload, q->len);
	}
}

static void
nb_closed(struct noise_link *l, const char *reason, void *arg)
{
	(void)l;
	(void)reason;
	((struct nb *)arg)->closed = 1;
}

static const struct noise_link_cbs nb_cbs = {.ready = nb_ready, .message = nb_message,
    .closed = nb_closed};

/*
 * A real neighbour sends a KEEPALIVE after 10 s without sending, and the visor ends a
 * transport after 30 s of silence (visor/tp_int.h).  Ours send one every 5 s, so no
 * test depends on how long the tests before it took (under ASan the slow-egress tests
 * alone can leave N2 silent for most of the 30 s).
 */
static void
nb_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct nb *ns[] = {&n1, &n2};

	(void)fd;
	(void)what;
	(void)arg;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		if (ns[i]->l != NULL && ns[i]->ready && !ns[i]->closed)
			nb_send(ns[i], VTP_PKT_KEEPALIVE, 0, NULL, 0);
}

static void
nb_connect(struct nb *n)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)stcpr_port)};
	struct noise_link_opts o = {.prologue = "stcpr/1", .handshake_timeout_ms = 5000,
	    .min_plain = VTP_PKT_HDR};
	struct bufferevent *b;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	evutil_make_socket_nonblocking(fd);
	b = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	n->l = noise_link_new(base, b, 1, &n->kp, vkp.pk, &nb_cbs, n, &o, "test");
	assert_non_null(n->l);
	assert_int_equal(sw_test_run_until(base, &n->ready, WAIT_MS), 0);
	tp_id_derive(n->t_id, vkp.pk, n->kp.pk, "stcpr");
	tp_id_format(n->t_text, n->t_id);
}

/* Wait for a packet of that type and id; its index or -1. */
static int
nb_wait(struct nb *n, uint8_t type, uint32_t id, int ms)
{
	long long end = sw_mono_ms() + ms;
	size_t from = 0;

	for (;;) {
		for (; from < n->nq; from++)
			if (n->q[from].type == type && n->q[from].id == id)
				return (int)from;
		if (sw_mono_ms() >= end)
			return -1;
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* ---- RPCs as the setup-node ---- */

struct call {
	int done;
	enum frpc_status st;
	char err[256];
	cJSON *res;
};

static void
called(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct call *c = arg;

	c->done = 1;
	c->st = st;
	snprintf(c->err, sizeof(c->err), "%s", err != NULL ? err : "");
	c->res = result != NULL ? cJSON_Duplicate(result, 1) : NULL;
}

static void
rpc(struct dmsg_client *from, const char *method, cJSON *params, struct call *c)
{
	memset(c, 0, sizeof(*c));
	assert_non_null(frpc_call(base, from, vkp.pk, 136, method, params, 10000, called, c,
	    "test"));
	cJSON_Delete(params);
	assert_int_equal(sw_test_run_until(base, &c->done, WAIT_MS), 0);
}

static void
reserve(uint32_t *ids, int n)
{
	struct call c;
	cJSON *p = cJSON_CreateObject();

	cJSON_AddNumberToObject(p, "n", n);
	rpc(sc, "reserve_ids", p, &c);
	assert_int_equal(c.st, FRPC_OK);
	for (int i = 0; i < n; i++)
		ids[i] = (uint32_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c.res, "ids"),
		    i)->valuedouble;
	cJSON_Delete(c.res);
}

static cJSON *
rule(const char *type, uint32_t id, const struct nb *in, uint32_t next, const struct nb *out,
    int ka)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "type", type);
	cJSON_AddNumberToObject(r, "route_id", id);
	if (in != NULL)
		cJSON_AddStringToObject(r, "t_id", in->t_text);
	if (out != NULL) {
		cJSON_AddNumberToObject(r, "next_route_id", next);
		cJSON_AddStringToObject(r, "next_tp_id", out->t_text);
	}
	cJSON_AddNumberToObject(r, "keep_alive_s", ka);
	return r;
}

static cJSON *
desc(const char *src, int sport, const char *dst, int dport)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddStringToObject(d, "src_pk", src);
	cJSON_AddNumberToObject(d, "src_port", sport);
	cJSON_AddStringToObject(d, "dst_pk", dst);
	cJSON_AddNumberToObject(d, "dst_port", dport);
	return d;
}

static struct call
add_rules(const char *method, cJSON *r1, cJSON *r2)
{
	struct call c;
	cJSON *p = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(p, "rules");

	cJSON_AddItemToArray(a, r1);
	if (r2 != NULL)
		cJSON_AddItemToArray(a, r2);
	rpc(sc, method, p, &c);
	return c;
}

/* ---- the visor's local API ---- */

struct hres {
	int done, status;
	char body[8192];
};

static void
http_done(const struct sw_http_resp *r, void *arg)
{
	struct hres *h = arg;

	h->done = 1;
	h->status = r->status;
	snprintf(h->body, sizeof(h->body), "%s", r->body != NULL ? r->body : "");
}

static void
api_start(struct hres *h, const char *method, const char *path, const char *body)
{
	char url[256];
	struct sw_http_opts o = {.timeout_ms = 30000};

	memset(h, 0, sizeof(*h));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", api_port, path);
	assert_int_equal(sw_http_request(hc, method, url, body, body != NULL ? strlen(body) : 0,
	    &o, http_done, h), 0);
}

static void
api(struct hres *h, const char *method, const char *path, const char *body)
{
	api_start(h, method, path, body);
	assert_int_equal(sw_test_run_until(base, &h->done, 40000), 0);
}

/* 1 if /api/routes lists route id. */
static int
has_rule(uint32_t id)
{
	struct hres h;
	char want[32];

	api(&h, "GET", "/api/routes", NULL);
	snprintf(want, sizeof(want), "\"route_id\":%u,", id);
	return strstr(h.body, want) != NULL;
}

static int
no_rule(void *arg)
{
	return !has_rule(*(uint32_t *)arg);
}

/* The first sample of name whose labels hold label (NULL: any), or 0 if there is none. */
static long
metric(const char *name, const char *label)
{
	struct hres h;
	char want[96];
	const char *p, *sp, *l;

	api(&h, "GET", "/metrics", NULL);
	snprintf(want, sizeof(want), "\n%s{", name); /* a sample, not its # HELP line */
	for (p = strstr(h.body, want); p != NULL; p = strstr(p + 1, want)) {
		if ((sp = strchr(p + 1, ' ')) == NULL)
			break;
		if (label == NULL || ((l = strstr(p, label)) != NULL && l < sp))
			return strtol(sp + 1, NULL, 10);
	}
	return 0;
}

static long
dropped(const char *reason)
{
	char label[64];

	snprintf(label, sizeof(label), "reason=\"%s\"", reason);
	return metric("router_dropped_total", label);
}

/* ---- the fake route-finder: one hop each way through N1 ---- */

static void
rf_routes(struct sw_http_req *req, void *arg)
{
	char body[1024];

	(void)arg;
	snprintf(body, sizeof(body), "{\"%s:%s\":[[{\"t_id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}]],"
	    "\"%s:%s\":[[{\"t_id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}]]}", vhex, n1.hex,
	    n1.t_text, vhex, n1.hex, n1.hex, vhex, n1.t_text, n1.hex, vhex);
	sw_http_reply_raw(req, 200, "application/json", body, strlen(body));
}

/* ---- the fake setup-node's port 36: reserve on the visor, answer its two rules ---- */

static uint32_t dial_ids[2];
static int dials;

struct pending_dial {
	struct frpc_req *req;
	cJSON *desc;
	struct call c;
};

static struct pending_dial pend;
static struct event *pend_ev;

static void
dial_reserved(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct pending_dial *pd = arg;
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(result, "ids");
	cJSON *res, *fw, *co;

	(void)err;
	if (st != FRPC_OK) {
		frpc_reply_error(pd->req, "reserve failed");
		cJSON_Delete(pd->desc);
		return;
	}
	dial_ids[0] = (uint32_t)cJSON_GetArrayItem(ids, 0)->valuedouble;
	dial_ids[1] = (uint32_t)cJSON_GetArrayItem(ids, 1)->valuedouble;
	n1.reply_id = dial_ids[1];
	res = cJSON_CreateObject();
	fw = rule("forward", dial_ids[0], NULL, 5001, &n1, 30);
	cJSON_AddItemToObject(fw, "desc", cJSON_Duplicate(pd->desc, 1));
	co = rule("consume", dial_ids[1], &n1, 0, NULL, 30);
	cJSON_AddItemToObject(co, "desc", pd->desc);
	cJSON_AddItemToObject(res, "forward", fw);
	cJSON_AddItemToObject(res, "consume", co);
	frpc_reply(pd->req, res);
}

static void
s36_handle(struct frpc_req *req, const char *method, const cJSON *params, void *arg)
{
	cJSON *p = cJSON_CreateObject();

	(void)arg;
	(void)method;
	dials++;
	pend.req = req;
	pend.desc = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(params, "desc"), 1);
	cJSON_AddNumberToObject(p, "n", 2);
	assert_non_null(frpc_call(base, sc, vkp.pk, 136, "reserve_ids", p, 10000, dial_reserved,
	    &pend, "test"));
	cJSON_Delete(p);
}

/* ---- setup ---- */

static int
reachable(void *arg)
{
	struct call c;
	cJSON *p = cJSON_CreateObject();

	(void)arg;
	cJSON_AddNumberToObject(p, "n", 1);
	memset(&c, 0, sizeof(c));
	if (frpc_call(base, sc, vkp.pk, 136, "reserve_ids", p, 3000, called, &c, "test") == NULL)
		return 0;
	cJSON_Delete(p);
	sw_test_run_until(base, &c.done, 5000);
	cJSON_Delete(c.res);
	return c.st == FRPC_OK;
}

static int
clients_registered(void *arg)
{
	(void)arg;
	return dmsg_client_registered(sc) && dmsg_client_registered(xc);
}

static struct dmsg_client *
client(struct sw_keypair *kp)
{
	struct dmsg_client_opts o = {.discovery = disc.url, .backoff_min_ms = 100,
	    .backoff_max_ms = 1000};
	struct dmsg_client *c;

	sw_keypair_generate(kp);
	c = dmsg_client_new(base, kp, &o, "test");
	assert_non_null(c);
	assert_int_equal(dmsg_client_start(c), 0);
	return c;
}

static int
group_setup(void **state)
{
	char bin[512], seed[SW_PK_HEX], shex[SW_PK_HEX];
	char *argv[] = {bin, "run", "-c", cfg_path, "--log-level", "error", NULL};
	FILE *f;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (sw_crypto_init() == -1 || (base = event_base_new()) == NULL)
		return -1;
	sw_log_set_level(SW_LOG_ERROR);
	if (sw_test_dmsg_discovery_start(&disc) == -1)
		return -1;
	sw_keypair_generate(&srv.kp);
	if (sw_test_dmsg_server_start(&srv, disc.url) == -1)
		return -1;
	sc = client(&skp);
	xc = client(&xkp);
	if ((s36 = frpc_server_new(base, sc, 36, NULL, s36_handle, NULL, "test")) == NULL)
		return -1;
	hc = sw_http_client_new(base, "test");
	rf = sw_http_server_new(base, "fake-rf", NULL);
	if (hc == NULL || rf == NULL || sw_http_route(rf, "POST", "/routes", rf_routes, NULL) ==
	    -1 || sw_http_server_listen(rf, "127.0.0.1:0") == -1)
		return -1;
	sw_keypair_generate(&vkp);
	sw_keypair_generate(&n1.kp);
	sw_keypair_generate(&n2.kp);
	sw_hex_encode(vhex, vkp.pk, SW_PK_LEN);
	sw_hex_encode(n1.hex, n1.kp.pk, SW_PK_LEN);
	sw_hex_encode(n2.hex, n2.kp.pk, SW_PK_LEN);
	sw_keypair_seed_hex(&vkp, seed);
	sw_hex_encode(shex, skp.pk, SW_PK_LEN);
	api_port = sw_test_free_port();
	stcpr_port = sw_test_free_port();
	snprintf(cfg_path, sizeof(cfg_path), "%s/test_route_visor_%d.json",
	    getenv("SW_TMP") != NULL ? getenv("SW_TMP") : "/tmp", (int)getpid());
	if ((f = fopen(cfg_path, "w")) == NULL)
		return -1;
	fprintf(f, "{\"type\":\"visor\",\"public_key\":\"%s\",\"secret_key\":\"%s\","
	    "\"dmsg\":{\"discovery\":\"%s\",\"min_sessions\":1},"
	    "\"transport_discovery\":\"http://127.0.0.1:9\",\"address_resolver\":\"http://127.0.0.1:9\","
	    "\"service_discovery\":\"http://127.0.0.1:9\",\"route_finder\":\"http://127.0.0.1:%d\","
	    "\"setup_nodes\":[\"%s\"],\"stcpr_listen\":\"127.0.0.1:%d\",\"api_listen\":\"127.0.0.1:%d\","
	    "\"log\":{\"level\":\"warn\"}}\n", vhex, seed, disc.url, sw_http_server_port(rf), shex,
	    stcpr_port, api_port);
	fclose(f);
	snprintf(bin, sizeof(bin), "%s/visor", sw_test_bindir());
	if ((vpid = sw_test_spawn(argv)) == -1 || sw_test_wait_port(api_port, 10000) == -1)
		return -1;
	if (sw_test_run_until_fn(base, clients_registered, NULL, WAIT_MS) == -1 ||
	    sw_test_run_until_fn(base, reachable, NULL, WAIT_MS) == -1)
		return -1;
	nb_connect(&n1);
	nb_connect(&n2);
	if ((ka_ev = event_new(base, -1, EV_PERSIST, nb_keepalive, NULL)) == NULL ||
	    event_add(ka_ev, &(struct timeval){.tv_sec = 5}) == -1)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (vpid > 0) {
		kill(vpid, SIGKILL);
		waitpid(vpid, NULL, 0);
	}
	unlink(cfg_path);
	if (ka_ev != NULL)
		event_free(ka_ev);
	noise_link_free(n1.l);
	noise_link_free(n2.l);
	noise_link_free(n3.l);
	dmsg_stream_free(d45);
	frpc_server_free(s36);
	dmsg_client_free(sc);
	dmsg_client_free(xc);
	sw_http_client_free(hc);
	sw_http_server_free(rf);
	sw_test_run_for(base, 50);
	sw_test_proc_kill(&srv);
	sw_test_proc_kill(&disc);
	if (pend_ev != NULL)
		event_free(pend_ev);
	event_base_free(base);
	return 0;
}

/* ---- router ---- */

static long want_drops;

static int
drops_reach(void *reason)
{
	return dropped(reason) >= want_drops;
}

static void
test_forward_and_drops(void **state)
{
	uint32_t r;
	struct call c;
	long wrong, norule;
	size_t before;
	uint8_t code = 0;

	(void)state;
	reserve(&r, 1);
	c = add_rules("add_intermediary_rules", rule("intermediary", r, &n1, 777, &n2, 30), NULL);
	assert_int_equal(c.st, FRPC_OK);
	cJSON_Delete(c.res);
	nb_send(&n1, VTP_PKT_DATA, r, "hello", 5);
	assert_true(nb_wait(&n2, VTP_PKT_DATA, 777, 5000) >= 0);
	assert_memory_equal(n2.q[n2.nq - 1].data, "hello", 5);

	/* The right id on the wrong transport: dropped and counted. */
	wrong = dropped("wrong_transport");
	before = n1.nq + n2.nq;
	nb_send(&n2, VTP_PKT_DATA, r, "sneak", 5);
	nb_send(&n2, VTP_PKT_CLOSE, r, &code, 1); /* a forged CLOSE */
	want_drops = wrong + 2;
	assert_int_equal(sw_test_run_until_fn(base, drops_reach, "wrong_transport", 5000), 0);
	assert_int_equal(n1.nq + n2.nq, before);
	assert_true(has_rule(r));
	/* The rule still forwards, and a real CLOSE closes it and goes on. */
	nb_send(&n1, VTP_PKT_DATA, r, "again", 5);
	assert_true(nb_wait(&n2, VTP_PKT_DATA, 777, 5000) >= 0);
	nb_send(&n1, VTP_PKT_CLOSE, r, &code, 1);
	assert_true(nb_wait(&n2, VTP_PKT_CLOSE, 777, 5000) >= 0);
	assert_int_equal(sw_test_run_until_fn(base, no_rule, &r, 5000), 0);
	/* No rule: dropped. */
	norule = dropped("no_rule");
	nb_send(&n1, VTP_PKT_DATA, r, "late", 4);
	nb_send(&n1, VTP_PKT_DATA, 12345, "none", 4);
	want_drops = norule + 2;
	assert_int_equal(sw_test_run_until_fn(base, drops_reach, "no_rule", 5000), 0);
}

static long
rss_kb(pid_t pid)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static int
held_more(void *arg)
{
	return metric("router_held_total", NULL) > *(const long *)arg;
}

static int
all_counted(void *arg)
{
	return n2.seq_next >= *(uint32_t *)arg;
}

/* What a slow-egress test measures against: taken before, checked after. */
struct hold_check {
	long held0, rss0, full0, send0, fwd0;
	uint32_t total;
};

/* A rule from in to N2 (next id next), N2 stopped reading, the baselines taken. */
static void
hold_begin(struct hold_check *h, const struct nb *in, uint32_t next, uint32_t total,
    uint32_t *r)
{
	struct call c;

	h->held0 = metric("router_held_total", NULL);
	h->full0 = dropped("egress_full");
	h->send0 = dropped("send_failed");
	h->fwd0 = metric("router_forwarded_total", NULL);
	h->total = total;
	reserve(r, 1);
	c = add_rules("add_intermediary_rules", rule("intermediary", *r, in, next, &n2, 30), NULL);
	assert_int_equal(c.st, FRPC_OK);
	cJSON_Delete(c.res);
	n2.count_id = next;
	n2.seq_next = 0;
	noise_link_pause(n2.l, 1);
	h->rss0 = rss_kb(vpid);
}

/* The visor held a packet and did not buffer what it was sent. */
static void
hold_seen(struct hold_check *h)
{
	long rss1;

	assert_int_equal(sw_test_run_until_fn(base, held_more, &h->held0, WAIT_MS), 0);
	rss1 = rss_kb(vpid);
	/* Under ASan freed memory stays in its quarantine: RSS there counts traffic, not what is held. */
	if (!UNDER_ASAN && rss1 - h->rss0 > 32 * 1024)
		fail_msg("the visor grew by %ld kB holding a stalled egress", rss1 - h->rss0);
}

/* N2 reads again: every packet arrives, in order, none dropped, each counted forwarded. */
static void
hold_end(struct hold_check *h)
{
	noise_link_pause(n2.l, 0);
	assert_int_equal(sw_test_run_until_fn(base, all_counted, &h->total, WAIT_MS), 0);
	assert_int_equal(n2.seq_bad, 0);
	assert_int_equal(dropped("egress_full"), h->full0);
	assert_int_equal(dropped("send_failed"), h->send0);
	assert_int_equal(metric("router_forwarded_total", NULL) - h->fwd0, h->total);
}

/*
 * An egress that does not drain (N2 stops reading): the visor queues at
 * most VTP_LOCAL_QUEUE for it, then holds the packet it cannot queue and
 * stops reading from N1, so the 96 MB N1 sends are not buffered in the
 * visor (without the hold it would hold all but the ~10 MB the kernel's
 * socket buffers take; not checked under ASan, whose quarantine keeps
 * what was freed); when N2 reads again every packet
 * arrives, in order, none dropped.
 */
static void
test_slow_egress_holds(void **state)
{
	static uint8_t big[60000];
	struct hold_check h;
	uint32_t r;

	(void)state;
	hold_begin(&h, &n1, 778, 1600, &r);
	for (uint32_t i = 0; i < h.total; i++) {
		sw_put_u32(big, i);
		nb_send(&n1, VTP_PKT_DATA, r, big, sizeof(big));
	}
	hold_seen(&h);
	assert_true(noise_link_outbuf(n1.l) > 0); /* the visor stopped reading from N1 */
	hold_end(&h);
}

/* ---- the same through a dmsg transport (port 45) from the stranger's client ---- */

static void
d45_dialled(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	(void)reject;
	(void)err;
	(void)arg;
	d45 = st;
	d45_done = 1;
}

static int
d45_listed(void *arg)
{
	struct hres h;

	api(&h, "GET", "/api/transports", NULL);
	return strstr(h.body, (const char *)arg) != NULL;
}

/*
 * The ingress is a dmsg transport: the visor stops taking from the stream
 * (no window goes back, so the relay and then the sender hold the rest),
 * the same bounds and outcome as over stcpr.  60 MB: a stream queues at
 * most 64 MiB at the sender.
 */
static void
test_slow_egress_holds_dmsg(void **state)
{
	static uint8_t big[60000];
	uint8_t pre[2 + VTP_PKT_HDR], tid[TP_ID_LEN];
	struct nb in = {0};
	struct hold_check h;
	uint32_t r;

	(void)state;
	assert_non_null(dmsg_client_dial(xc, vkp.pk, VTP_DMSG_PORT, 10000, d45_dialled, NULL));
	assert_int_equal(sw_test_run_until(base, &d45_done, WAIT_MS), 0);
	assert_non_null(d45);
	tp_id_derive(tid, vkp.pk, xkp.pk, "dmsg");
	tp_id_format(in.t_text, tid);
	assert_int_equal(sw_test_run_until_fn(base, d45_listed, in.t_text, WAIT_MS), 0);
	hold_begin(&h, &in, 779, 1000, &r);
	for (uint32_t i = 0; i < h.total; i++) {
		sw_put_u16(pre, (uint16_t)(VTP_PKT_HDR + sizeof(big)));
		vtp_pkt_hdr(pre + 2, VTP_PKT_DATA, r);
		sw_put_u32(big, i);
		assert_int_equal(dmsg_stream_write(d45, pre, sizeof(pre)), 0);
		assert_int_equal(dmsg_stream_write(d45, big, sizeof(big)), 0);
	}
	hold_seen(&h);
	assert_true(dmsg_stream_queued(d45) > 0); /* the visor stopped taking from the stream */
	hold_end(&h);
}

/* Whatever happened above, N2 reads again and counts nothing, for the tests after. */
static int
slow_egress_teardown(void **state)
{
	(void)state;
	noise_link_pause(n2.l, 0);
	n2.count_id = 0;
	return 0;
}

/* Port 136 from a key not in setup_nodes: closed, nothing answered. */
static void
test_rpc_stranger(void **state)
{
	struct call c;
	cJSON *p = cJSON_CreateObject();

	(void)state;
	cJSON_AddNumberToObject(p, "n", 1);
	rpc(xc, "reserve_ids", p, &c);
	assert_int_equal(c.st, FRPC_CLOSED);
	assert_null(c.res);
}

static int
rule_present(void *arg)
{
	return has_rule(*(uint32_t *)arg);
}

/* keep_alive_s 2: traffic every 0.5 s keeps it 3 s; then it expires. */
static void
test_expiry(void **state)
{
	uint32_t r;
	struct call c;
	long long t0;

	(void)state;
	reserve(&r, 1);
	c = add_rules("add_intermediary_rules", rule("intermediary", r, &n1, 778, &n2, 2), NULL);
	assert_int_equal(c.st, FRPC_OK);
	cJSON_Delete(c.res);
	t0 = sw_mono_ms();
	while (sw_mono_ms() - t0 < 3000) {
		nb_send(&n1, VTP_PKT_KEEPALIVE, r, NULL, 0);
		sw_test_run_for(base, 500);
	}
	assert_true(rule_present(&r));
	t0 = sw_mono_ms();
	assert_int_equal(sw_test_run_until_fn(base, no_rule, &r, 5000), 0);
	assert_true(sw_mono_ms() - t0 >= 1000); /* it lived on the last packet's 2 s */
}

/* ---- route groups: the visor dials ---- */

static void
nb_play(struct nb *n, int drop_first, int silent)
{
	noise_hs_reset(&n->hs);
	n->play = 1;
	n->drop_first = drop_first;
	n->silent = silent;
	n->hs_seen = n->hs_done = n->echoed = n->closes = 0;
	n->nq = 0;
}

static void
test_dial_first_message_lost(void **state)
{
	struct hres h;
	char body[256];
	long long t0 = sw_mono_ms();

	(void)state;
	nb_play(&n1, 1, 0);
	snprintf(body, sizeof(body), "{\"pk\":\"%s\",\"count\":2}", n1.hex);
	api(&h, "POST", "/api/ping", body);
	assert_int_equal(h.status, 200);
	assert_non_null(strstr(h.body, "\"lost\":0"));
	assert_true(n1.hs_seen >= 2);       /* message 1 came again after the loss */
	assert_true(sw_mono_ms() - t0 >= 900); /* ... about a second later */
	assert_int_equal(n1.echoed, 2);
	/* The ping closes its group: CLOSE on the forward route, rules gone. */
	assert_true(nb_wait(&n1, VTP_PKT_CLOSE, 5001, 5000) >= 0);
	assert_int_equal(sw_test_run_until_fn(base, no_rule, &dial_ids[0], 5000), 0);
	assert_false(has_rule(dial_ids[1]));
	n1.play = 0;
}

static int
s36_ahead(void *arg)
{
	return frpc_server_conns(s36) == 1 && frpc_server_accepted(s36) >= *(unsigned long long *)arg;
}

static int
s36_idle(void *arg)
{
	(void)arg;
	return frpc_server_conns(s36) == 0;
}

/*
 * After a dial the visor holds one stream to its setup-node, opened ahead
 * and silent; the next dial asks on it (no other stream is accepted but
 * the one opened ahead after it), and one left unused is closed after
 * VRG_AHEAD_KEEP_MS.
 */
static void
test_dial_stream_ahead(void **state)
{
	struct hres h;
	char body[256];
	unsigned long long a0, want;
	int d0 = dials;
	long long t0;

	(void)state;
	want = frpc_server_accepted(s36);
	assert_int_equal(sw_test_run_until_fn(base, s36_ahead, &want, 5000), 0);
	a0 = frpc_server_accepted(s36);
	assert_int_equal(dials, d0);            /* it has asked nothing */
	nb_play(&n1, 0, 0);
	snprintf(body, sizeof(body), "{\"pk\":\"%s\",\"count\":1}", n1.hex);
	api(&h, "POST", "/api/ping", body);
	assert_int_equal(h.status, 200);
	assert_int_equal(dials, d0 + 1);
	want = a0 + 1;
	assert_int_equal(sw_test_run_until_fn(base, s36_ahead, &want, 8000), 0);
	assert_int_equal(frpc_server_accepted(s36), a0 + 1); /* asked on the one opened ahead */
	assert_true(nb_wait(&n1, VTP_PKT_CLOSE, 5001, 5000) >= 0);
	n1.play = 0;
	t0 = sw_mono_ms();
	assert_int_equal(sw_test_run_until_fn(base, s36_idle, NULL, VRG_AHEAD_KEEP_MS + 3000), 0);
	assert_true(sw_mono_ms() - t0 >= VRG_AHEAD_KEEP_MS - 1000);
	assert_int_equal(dials, d0 + 1);
}

static void
test_dial_no_answer(void **state)
{
	struct hres h;
	char body[256];
	long long t0 = sw_mono_ms(), took;

	(void)state;
	nb_play(&n1, 0, 1);
	snprintf(body, sizeof(body), "{\"pk\":\"%s\",\"count\":1}", n1.hex);
	api(&h, "POST", "/api/ping", body);
	took = sw_mono_ms() - t0;
	assert_int_equal(h.status, 502);
	assert_non_null(strstr(h.body, "handshake timeout"));
	assert_true(took >= 4500 && took < 9000);
	assert_true(n1.hs_seen >= 4); /* resent each second */
	assert_true(nb_wait(&n1, VTP_PKT_CLOSE, 5001, 5000) >= 0);
	assert_false(has_rule(dial_ids[0]));
	assert_false(has_rule(dial_ids[1]));
	n1.play = 0;
}

/* ---- route groups: the visor answers ---- */

static void
test_responder(void **state)
{
	uint32_t ids[2];
	struct call c;
	cJSON *co, *fw;
	uint8_t s[32], rs[32], m1[128], buf[256], junk[40];
	size_t m1len, len, n;
	struct noise_hs hs;
	struct noise_cipher tx, rx;
	struct noise_hs_params hp = {.pattern = NOISE_KK, .initiator = true,
	    .prologue = (const uint8_t *)"skywire-route/1", .prologue_len = 15, .s_priv = s,
	    .rs = rs};
	int i;

	(void)state;
	n1.play = 0;
	n1.nq = 0;
	/* Nobody listens on 4444. */
	reserve(ids, 2);
	co = rule("consume", ids[0], &n1, 0, NULL, 30);
	cJSON_AddItemToObject(co, "desc", desc(n1.hex, 777, vhex, 4444));
	fw = rule("forward", ids[1], NULL, 6001, &n1, 30);
	cJSON_AddItemToObject(fw, "desc", desc(n1.hex, 777, vhex, 4444));
	c = add_rules("add_edge_rules", co, fw);
	assert_int_equal(c.st, FRPC_REMOTE);
	assert_string_equal(c.err, "no listener");
	assert_false(has_rule(ids[0]));
	/* Port 48 (ping) listens; keep_alive_s 3: a KEEPALIVE after 1 s without sending. */
	co = rule("consume", ids[0], &n1, 0, NULL, 3);
	cJSON_AddItemToObject(co, "desc", desc(n1.hex, 777, vhex, 48));
	fw = rule("forward", ids[1], NULL, 6001, &n1, 3);
	cJSON_AddItemToObject(fw, "desc", desc(n1.hex, 777, vhex, 48));
	c = add_rules("add_edge_rules", co, fw);
	assert_int_equal(c.st, FRPC_OK);
	cJSON_Delete(c.res);
	/* DATA before the handshake: nothing comes back, the group waits. */
	randombytes_buf(junk, sizeof(junk));
	nb_send(&n1, VTP_PKT_DATA, ids[0], junk, sizeof(junk));
	sw_test_run_for(base, 300);
	assert_int_equal(n1.nq, 0);
	assert_true(has_rule(ids[0]));
	/* The handshake, then an echo. */
	assert_int_equal(sw_sk_to_x25519(s, &n1.kp), 0);
	assert_int_equal(sw_pk_to_x25519(rs, vkp.pk), 0);
	assert_int_equal(noise_hs_init(&hs, &hp), 0);
	assert_int_equal(noise_hs_write(&hs, NULL, 0, m1, sizeof(m1), &m1len), 0);
	nb_send(&n1, VTP_PKT_HANDSHAKE, ids[0], m1, m1len);
	assert_true((i = nb_wait(&n1, VTP_PKT_HANDSHAKE, 6001, 5000)) >= 0);
	assert_int_equal(noise_hs_read(&hs, n1.q[i].data, n1.q[i].len, NULL, 0, &n), 0);
	assert_int_equal(noise_hs_split(&hs, &tx, &rx), 0);
	/* A repeated message 1 is answered with the same message 2. */
	nb_send(&n1, VTP_PKT_HANDSHAKE, ids[0], m1, m1len);
	sw_test_run_for(base, 200);
	assert_int_equal(n1.q[n1.nq - 1].type, VTP_PKT_HANDSHAKE);
	assert_memory_equal(n1.q[n1.nq - 1].data, n1.q[i].data, n1.q[i].len);
	assert_int_equal(noise_encrypt(&tx, NULL, 0, (const uint8_t *)"ping!", 5, buf, sizeof(buf),
	    &len), 0);
	nb_send(&n1, VTP_PKT_DATA, ids[0], buf, len);
	assert_true((i = nb_wait(&n1, VTP_PKT_DATA, 6001, 5000)) >= 0);
	assert_int_equal(noise_decrypt(&rx, NULL, 0, n1.q[i].data, n1.q[i].len, buf, sizeof(buf),
	    &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "ping!", 5);
	/* Idle for a third of keep_alive_s: the group keeps its route alive. */
	assert_true(nb_wait(&n1, VTP_PKT_KEEPALIVE, 6001, 3000) >= 0);
	/* DATA that does not decrypt closes the group: CLOSE (error) to us, rules gone. */
	nb_send(&n1, VTP_PKT_DATA, ids[0], junk, sizeof(junk));
	assert_true((i = nb_wait(&n1, VTP_PKT_CLOSE, 6001, 5000)) >= 0);
	assert_int_equal(n1.q[i].data[0], 2);
	assert_int_equal(sw_test_run_until_fn(base, no_rule, &ids[0], 5000), 0);
	assert_false(has_rule(ids[1]));
	noise_hs_reset(&hs);
}

/* A reservation no rule used within 30 s is released: the id cannot be installed. */
static void
test_reservation_expires(void **state)
{
	uint32_t r;
	struct call c;

	(void)state;
	reserve(&r, 1);
	sw_test_run_for(base, 30600); /* the neighbours' keep-alives hold the transports */
	c = add_rules("add_intermediary_rules", rule("intermediary", r, &n1, 779, &n2, 30), NULL);
	assert_int_equal(c.st, FRPC_REMOTE);
	assert_non_null(strstr(c.err, "not reserved"));
	assert_false(has_rule(r));
	/* the reservation went, not the transports it would have used */
	sw_test_run_for(base, 100);
	assert_false(n1.closed);
	assert_false(n2.closed);
}

/*
 * N1 connects again (it lost its side): the visor replaces the old transport
 * by the new one under the same t_id, and a rule whose egress is that t_id
 * forwards over the new connection.  Last: N1's old link is gone after it.
 */
static void
test_peer_reconnects(void **state)
{
	uint32_t r;
	struct call c;
	long egress0 = dropped("no_egress");

	(void)state;
	reserve(&r, 1);
	c = add_rules("add_intermediary_rules", rule("intermediary", r, &n2, 780, &n1, 30), NULL);
	assert_int_equal(c.st, FRPC_OK);
	cJSON_Delete(c.res);
	n3.kp = n1.kp;
	memcpy(n3.hex, n1.hex, sizeof(n3.hex));
	nb_connect(&n3);
	assert_memory_equal(n3.t_id, n1.t_id, TP_ID_LEN);
	/* the visor ends the old connection once the new one is up */
	assert_int_equal(sw_test_run_until(base, &n1.closed, WAIT_MS), 0);
	nb_send(&n2, VTP_PKT_DATA, r, "again", 5);
	assert_true(nb_wait(&n3, VTP_PKT_DATA, 780, 5000) >= 0);
	assert_int_equal(dropped("no_egress"), egress0);
	assert_true(has_rule(r));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forward_and_drops),
		cmocka_unit_test_teardown(test_slow_egress_holds, slow_egress_teardown),
		cmocka_unit_test_teardown(test_slow_egress_holds_dmsg, slow_egress_teardown),
		cmocka_unit_test(test_rpc_stranger),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_dial_first_message_lost),
		cmocka_unit_test(test_dial_stream_ahead),
		cmocka_unit_test(test_dial_no_answer),
		cmocka_unit_test(test_responder),
		cmocka_unit_test(test_reservation_expires),
		cmocka_unit_test(test_peer_reconnects),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
