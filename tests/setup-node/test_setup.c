/*
 * test_setup: setup-node as a process, driven over dmsg (routing.md,
 * "Route setup").  Three fake visors A, B, C (dmsg clients in this process
 * serving port 136, each counting what it is asked) and a fake
 * transport-discovery (an HTTP server here) that knows A-B and B-C.
 *
 * - every refusal (requester not src, broken contiguity, a repeated visor,
 *   0 or 11 hops, a zero port, a t_id not registered or with other edges)
 *   reaches no visor;
 * - A -> B -> C is set up: B gets two intermediary rules, C the edge rules,
 *   A the answer, each rule keyed by an id its holder reserved;
 * - C with no listener: "add_edge_rules on C: no listener", and every
 *   visor gets delete_rules for exactly the ids it reserved;
 * - 257 requests while B never answers: one "busy" at once, the rest
 *   "reserve_ids on B: timeout" after about 10 s, A and C rolled back;
 * - an oversize and a malformed frame on port 36 are refused and the next
 *   request is served;
 * - with transport_discovery_pk, a hop the feed holds with its edges is not
 *   asked over HTTP, one the feed holds with other edges is (a fake
 *   publisher here serves the all-transports feed over dmsg).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "clock.h"
#include "crypto.h"
#include "dmsg_client.h"
#include "dmsg_wire.h"
#include "frpc.h"
#include "cxo_dmsg.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "http.h"
#include "log.h"
#include "tests/lib/procs.h"
#include "tests/lib/rawrpc.h"
#include "tests/lib/testutil.h"
#include "tp_entry.h"

#define WAIT_MS   30000
#define NV        3
#define MAX_HELD  1024
#define MAX_IDS   4096

enum fv_mode { FV_NORMAL = 0, FV_HANG, FV_NO_LISTENER };

struct fv {
	struct sw_keypair kp;
	char hex[SW_PK_HEX];
	struct dmsg_client *c;
	struct frpc_server *srv;
	enum fv_mode mode;
	int calls, reserve, inter, edge, del;
	int inter_rules, edge_rules;
	uint32_t reserved[MAX_IDS], deleted[MAX_IDS];
	size_t nres, ndel;
	struct frpc_req *held[MAX_HELD];
	size_t nheld;
};

static struct event_base *base;
static struct sw_test_proc disc, srv;
static pid_t sn_pid;
static struct sw_keypair sn_kp;
static int sn_health;
static struct fv fv[NV];
static struct sw_http_server *tpd;
static uint8_t t_ab[TP_ID_LEN], t_bc[TP_ID_LEN], t_ac[TP_ID_LEN];
static int tpd_asked_ab, tpd_asked_bc;
/* transport-discovery's feed: t_ab as registered, t_bc with A-C's edges */
static struct {
	struct sw_keypair kp;
	struct dmsg_client *c;
	struct cxo_dmsg *d;
	struct cxo_pub *p;
	struct cxo_feed *f;
} feed;
enum { A = 0, B = 1, C = 2 };

/* ---- the fake visors ---- */

static void
fv_handle(struct frpc_req *req, const char *method, const cJSON *params, void *arg)
{
	struct fv *v = arg;
	const cJSON *it;

	v->calls++;
	if (strcmp(method, "reserve_ids") == 0) {
		int n = cJSON_GetObjectItemCaseSensitive(params, "n")->valueint;
		cJSON *res, *ids;

		v->reserve++;
		if (v->mode == FV_HANG && v->nheld < MAX_HELD) {
			v->held[v->nheld++] = req;
			return;
		}
		res = cJSON_CreateObject();
		ids = cJSON_AddArrayToObject(res, "ids");
		for (int i = 0; i < n && v->nres < MAX_IDS; i++) {
			uint32_t id = 1 + randombytes_uniform(0xfffffffe);

			v->reserved[v->nres++] = id;
			cJSON_AddItemToArray(ids, cJSON_CreateNumber(id));
		}
		frpc_reply(req, res);
	} else if (strcmp(method, "add_intermediary_rules") == 0) {
		v->inter++;
		v->inter_rules += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(params,
		    "rules"));
		frpc_reply(req, NULL);
	} else if (strcmp(method, "add_edge_rules") == 0) {
		v->edge++;
		v->edge_rules += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(params,
		    "rules"));
		if (v->mode == FV_NO_LISTENER)
			frpc_reply_error(req, "no listener");
		else
			frpc_reply(req, NULL);
	} else if (strcmp(method, "delete_rules") == 0) {
		v->del++;
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(params, "ids"))
			if (v->ndel < MAX_IDS)
				v->deleted[v->ndel++] = (uint32_t)it->valuedouble;
		frpc_reply(req, NULL);
	} else {
		frpc_reply_error(req, "unknown method");
	}
}

static int
only_setup_node(const uint8_t pk[SW_PK_LEN], void *arg)
{
	(void)arg;
	return memcmp(pk, sn_kp.pk, SW_PK_LEN) == 0;
}

static void
fv_reset(enum fv_mode b_mode, enum fv_mode c_mode)
{
	for (int i = 0; i < NV; i++) {
		struct fv *v = &fv[i];

		for (size_t k = 0; k < v->nheld; k++)
			frpc_reply_error(v->held[k], "test over");
		v->nheld = 0;
		v->calls = v->reserve = v->inter = v->edge = v->del = 0;
		v->inter_rules = v->edge_rules = 0;
		v->nres = v->ndel = 0;
		v->mode = FV_NORMAL;
	}
	fv[B].mode = b_mode;
	fv[C].mode = c_mode;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Deleted exactly what it reserved (as sets; both sorted here). */
static int
rolled_back(void *arg)
{
	struct fv *v = arg;

	if (v->ndel != v->nres)
		return 0;
	qsort(v->reserved, v->nres, sizeof(uint32_t), cmp_u32);
	qsort(v->deleted, v->ndel, sizeof(uint32_t), cmp_u32);
	return memcmp(v->reserved, v->deleted, v->nres * sizeof(uint32_t)) == 0;
}

/* ---- the fake transport-discovery ---- */

static void
tpd_get(struct sw_http_req *req, void *arg)
{
	const char *id = sw_http_req_param(req, "t_id");
	uint8_t t[TP_ID_LEN];
	const uint8_t *a = NULL, *b = NULL;
	char body[512], lo[SW_PK_HEX], hi[SW_PK_HEX];

	(void)arg;
	if (tp_id_parse(t, id) == 0) {
		if (memcmp(t, t_ab, TP_ID_LEN) == 0)
			a = fv[A].kp.pk, b = fv[B].kp.pk;
		else if (memcmp(t, t_bc, TP_ID_LEN) == 0)
			a = fv[B].kp.pk, b = fv[C].kp.pk;
		else if (memcmp(t, t_ac, TP_ID_LEN) == 0)
			a = fv[A].kp.pk, b = fv[C].kp.pk;
	}
	tpd_asked_ab += a != NULL && memcmp(t, t_ab, TP_ID_LEN) == 0;
	tpd_asked_bc += a != NULL && memcmp(t, t_bc, TP_ID_LEN) == 0;
	if (a == NULL) {
		sw_http_error(req, 404, "no such transport");
		return;
	}
	if (memcmp(a, b, SW_PK_LEN) > 0) {
		const uint8_t *x = a;

		a = b;
		b = x;
	}
	sw_hex_encode(lo, a, SW_PK_LEN);
	sw_hex_encode(hi, b, SW_PK_LEN);
	snprintf(body, sizeof(body), "{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],"
	    "\"type\":\"stcpr\",\"label\":\"user\",\"registered\":1}", id, lo, hi);
	sw_http_reply_raw(req, 200, "application/json", body, strlen(body));
}

/* ---- setup ---- */

static int
all_registered(void *arg)
{
	(void)arg;
	for (int i = 0; i < NV; i++)
		if (!dmsg_client_registered(fv[i].c))
			return 0;
	return 1;
}

struct hc {
	int done, status;
};

static void
health_done(const struct sw_http_resp *r, void *arg)
{
	struct hc *h = arg;

	h->done = 1;
	h->status = r->status;
}

struct mres {
	int done;
	char body[32768];
};

static void
metrics_done(const struct sw_http_resp *r, void *arg)
{
	struct mres *m = arg;

	m->done = 1;
	snprintf(m->body, sizeof(m->body), "%s", r->body != NULL ? r->body : "");
}

/* setup-node's /metrics into m. */
static void
metrics_get(struct mres *m)
{
	struct sw_http_client *c = sw_http_client_new(base, "test");
	char url[64];

	memset(m, 0, sizeof(*m));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", sn_health);
	assert_int_equal(sw_http_request(c, "GET", url, NULL, 0, NULL, metrics_done, m), 0);
	assert_int_equal(sw_test_run_until(base, &m->done, WAIT_MS), 0);
	sw_http_client_free(c);
}

static int
feed_live(void *arg)
{
	static struct mres m;

	(void)arg;
	metrics_get(&m);
	if (strstr(m.body, "setup_transport_feed_live{service=\"setup-node\"} 1") != NULL)
		return 1;
	sw_test_run_for(base, 50);
	return 0;
}

static void
feed_put(const uint8_t t[TP_ID_LEN], int a, int b)
{
	char id[TP_ID_TEXT], path[128], leaf[512], lo[SW_PK_HEX], hi[SW_PK_HEX];

	if (memcmp(fv[a].kp.pk, fv[b].kp.pk, SW_PK_LEN) > 0) {
		int x = a;

		a = b;
		b = x;
	}
	tp_id_format(id, t);
	sw_hex_encode(lo, fv[a].kp.pk, SW_PK_LEN);
	sw_hex_encode(hi, fv[b].kp.pk, SW_PK_LEN);
	snprintf(path, sizeof(path), "transports/%.2s/%s", id, id);
	snprintf(leaf, sizeof(leaf), "{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],"
	    "\"type\":\"stcpr\",\"label\":\"user\",\"registered\":1}", id, lo, hi);
	assert_int_equal(cxo_feed_put(feed.f, path, leaf, strlen(leaf)), 0);
}

static int
feed_start(char tpd_pk[SW_PK_HEX])
{
	struct dmsg_client_opts o = {.discovery = disc.url, .backoff_min_ms = 100,
	    .backoff_max_ms = 1000};
	struct cxo_feed_opts fo = {.kp = &feed.kp, .port = CXO_PORT_ALL_TRANSPORTS,
	    .publish_interval_ms = 20};

	sw_keypair_generate(&feed.kp);
	sw_hex_encode(tpd_pk, feed.kp.pk, SW_PK_LEN);
	if ((feed.p = cxo_pub_new(base, "fake-tpd")) == NULL ||
	    (feed.f = cxo_feed_new(feed.p, &fo)) == NULL)
		return -1;
	feed_put(t_ab, A, B);
	feed_put(t_bc, A, C); /* not the edges transport-discovery has */
	if ((feed.c = dmsg_client_new(base, &feed.kp, &o, "fake-tpd")) == NULL ||
	    dmsg_client_start(feed.c) == -1 ||
	    (feed.d = cxo_dmsg_new(base, feed.c, "fake-tpd")) == NULL ||
	    cxo_dmsg_serve(feed.d, feed.p, CXO_PORT_ALL_TRANSPORTS) == -1)
		return -1;
	return 0;
}

/* setup-node's /health is 200 once its dmsg session is up. */
static int
sn_healthy(void)
{
	struct sw_http_client *hc = sw_http_client_new(base, "test");
	char url[64];
	long long end = sw_mono_ms() + WAIT_MS;
	int ok = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", sn_health);
	while (!ok && sw_mono_ms() < end) {
		struct hc h = {0};

		if (sw_http_request(hc, "GET", url, NULL, 0, NULL, health_done, &h) == -1)
			break;
		sw_test_run_until(base, &h.done, 5000);
		ok = h.status == 200;
		if (!ok)
			sw_test_run_for(base, 100);
	}
	sw_http_client_free(hc);
	return ok ? 0 : -1;
}

static int
group_setup(void **state)
{
	char bin[512], health[64], tpd_url[64], seed[SW_PK_HEX], pk[SW_PK_HEX];
	char tpd_pk[SW_PK_HEX];
	char *argv[] = {bin, "--health-listen", health, "--dmsg-discovery", disc.url,
	    "--transport-discovery", tpd_url, "--transport-discovery-pk", tpd_pk,
	    "--secret-key", seed, "--public-key", pk, "--log-level", "warn", NULL};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (sw_crypto_init() == -1 || (base = event_base_new()) == NULL)
		return -1;
	sw_log_set_level(SW_LOG_WARN);
	if (sw_test_dmsg_discovery_start(&disc) == -1)
		return -1;
	sw_keypair_generate(&srv.kp);
	if (sw_test_dmsg_server_start(&srv, disc.url) == -1)
		return -1;
	for (int i = 0; i < NV; i++) {
		struct dmsg_client_opts o = {.discovery = disc.url, .backoff_min_ms = 100,
		    .backoff_max_ms = 1000};

		sw_keypair_generate(&fv[i].kp);
		sw_hex_encode(fv[i].hex, fv[i].kp.pk, SW_PK_LEN);
		fv[i].c = dmsg_client_new(base, &fv[i].kp, &o, "fake-visor");
		if (fv[i].c == NULL || dmsg_client_start(fv[i].c) == -1)
			return -1;
		fv[i].srv = frpc_server_new(base, fv[i].c, 136, only_setup_node, fv_handle, &fv[i],
		    "fake-visor");
		if (fv[i].srv == NULL)
			return -1;
	}
	tp_id_derive(t_ab, fv[A].kp.pk, fv[B].kp.pk, "stcpr");
	tp_id_derive(t_bc, fv[B].kp.pk, fv[C].kp.pk, "stcpr");
	tp_id_derive(t_ac, fv[A].kp.pk, fv[C].kp.pk, "stcpr");
	if ((tpd = sw_http_server_new(base, "fake-tpd", NULL)) == NULL ||
	    sw_http_route(tpd, "GET", "/transports/id:{t_id}", tpd_get, NULL) == -1 ||
	    sw_http_server_listen(tpd, "127.0.0.1:0") == -1)
		return -1;
	snprintf(tpd_url, sizeof(tpd_url), "http://127.0.0.1:%d", sw_http_server_port(tpd));
	if (feed_start(tpd_pk) == -1)
		return -1;
	sw_keypair_generate(&sn_kp);
	sw_keypair_seed_hex(&sn_kp, seed);
	sw_hex_encode(pk, sn_kp.pk, SW_PK_LEN);
	snprintf(bin, sizeof(bin), "%s/setup-node", sw_test_bindir());
	if ((sn_health = sw_test_free_port()) == -1)
		return -1;
	snprintf(health, sizeof(health), "127.0.0.1:%d", sn_health);
	if ((sn_pid = sw_test_spawn(argv)) == -1)
		return -1;
	if (sw_test_run_until_fn(base, all_registered, NULL, WAIT_MS) == -1 || sn_healthy() == -1)
		return -1;
	return sw_test_run_until_fn(base, feed_live, NULL, WAIT_MS);
}

static int
group_teardown(void **state)
{
	(void)state;
	fv_reset(FV_NORMAL, FV_NORMAL);
	if (sn_pid > 0) {
		kill(sn_pid, SIGKILL);
		waitpid(sn_pid, NULL, 0);
	}
	for (int i = 0; i < NV; i++) {
		frpc_server_free(fv[i].srv);
		dmsg_client_free(fv[i].c);
	}
	sw_http_server_free(tpd);
	cxo_dmsg_free(feed.d);
	dmsg_client_free(feed.c);
	cxo_feed_free(feed.f);
	cxo_pub_free(feed.p);
	sw_test_run_for(base, 50);
	sw_test_proc_kill(&srv);
	sw_test_proc_kill(&disc);
	event_base_free(base);
	return 0;
}

/* ---- requests ---- */

struct ask {
	int done;
	enum frpc_status st;
	char err[512];
	cJSON *result;
	long long at_ms;
};

static void
asked(enum frpc_status st, const cJSON *result, const char *err, void *arg)
{
	struct ask *a = arg;

	a->done = 1;
	a->st = st;
	a->at_ms = sw_mono_ms();
	snprintf(a->err, sizeof(a->err), "%s", err != NULL ? err : "");
	a->result = result != NULL ? cJSON_Duplicate(result, 1) : NULL;
}

static void
hop(cJSON *path, const uint8_t *t, int from, int to)
{
	cJSON *h = cJSON_CreateObject();
	char id[TP_ID_TEXT];

	tp_id_format(id, t);
	cJSON_AddStringToObject(h, "t_id", id);
	cJSON_AddStringToObject(h, "from", fv[from].hex);
	cJSON_AddStringToObject(h, "to", fv[to].hex);
	cJSON_AddItemToArray(path, h);
}

/* A -> B -> C and back, ports 1000 -> 1; the caller edits it. */
static cJSON *
params_abc(void)
{
	cJSON *p = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(p, "desc");
	cJSON *f = cJSON_AddArrayToObject(p, "forward"), *r = cJSON_AddArrayToObject(p, "reverse");

	cJSON_AddStringToObject(d, "src_pk", fv[A].hex);
	cJSON_AddNumberToObject(d, "src_port", 1000);
	cJSON_AddStringToObject(d, "dst_pk", fv[C].hex);
	cJSON_AddNumberToObject(d, "dst_port", 1);
	cJSON_AddNumberToObject(p, "keep_alive_s", 30);
	hop(f, t_ab, A, B);
	hop(f, t_bc, B, C);
	hop(r, t_bc, C, B);
	hop(r, t_ab, B, A);
	return p;
}

static void
ask_start(struct ask *a, int from, const cJSON *params)
{
	memset(a, 0, sizeof(*a));
	assert_non_null(frpc_call(base, fv[from].c, sn_kp.pk, 36, "dial_route_group", params,
	    WAIT_MS, asked, a, "test"));
}

static void
ask_run(struct ask *a, int from, cJSON *params)
{
	ask_start(a, from, params);
	cJSON_Delete(params);
	assert_int_equal(sw_test_run_until(base, &a->done, WAIT_MS), 0);
}

static int
calls_total(void)
{
	return fv[A].calls + fv[B].calls + fv[C].calls;
}

static void
test_refusals(void **state)
{
	static const char *const want[] = {
		"requester", "does not start", "twice", "1 to 10", "1 to 10", "non-zero",
		"not registered", "other edges", "keep_alive_s", "same",
	};
	struct ask a;
	cJSON *p, *f;
	uint8_t stranger[TP_ID_LEN];

	(void)state;
	fv_reset(FV_NORMAL, FV_NORMAL);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int from = A;

		p = params_abc();
		f = cJSON_GetObjectItemCaseSensitive(p, "forward");
		switch (i) {
		case 0: /* B asks for a group from A */
			from = B;
			break;
		case 1: /* the second hop starts at A, not where the first ended */
			cJSON_DeleteItemFromArray(f, 1);
			hop(f, t_ac, A, C);
			break;
		case 2: /* A -> B -> A -> B -> C */
			cJSON_DeleteItemFromArray(f, 1);
			hop(f, t_ab, B, A);
			hop(f, t_ab, A, B);
			hop(f, t_bc, B, C);
			break;
		case 3:
			cJSON_ReplaceItemInObject(p, "forward", cJSON_CreateArray());
			break;
		case 4: /* 11 hops */
			cJSON_DeleteItemFromArray(f, 1);
			for (int k = 0; k < 5; k++) {
				hop(f, t_ab, B, A);
				hop(f, t_ab, A, B);
			}
			hop(f, t_bc, B, C);
			break;
		case 5:
			cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(p, "desc"),
			    "src_port", cJSON_CreateNumber(0));
			break;
		case 6: /* a t_id nobody registered */
			randombytes_buf(stranger, sizeof(stranger));
			cJSON_DeleteItemFromArray(f, 0);
			cJSON_DeleteItemFromArray(f, 0);
			hop(f, stranger, A, B);
			hop(f, t_bc, B, C);
			break;
		case 7: /* A-C's t_id used as a hop A -> B */
			cJSON_DeleteItemFromArray(f, 0);
			cJSON_DeleteItemFromArray(f, 0);
			hop(f, t_ac, A, B);
			hop(f, t_bc, B, C);
			break;
		case 8:
			cJSON_ReplaceItemInObject(p, "keep_alive_s", cJSON_CreateNumber(601));
			break;
		case 9:
			cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(p, "desc"),
			    "dst_pk", cJSON_CreateString(fv[A].hex));
			break;
		}
		ask_run(&a, from, p);
		if (a.st != FRPC_REMOTE || strstr(a.err, want[i]) == NULL)
			fail_msg("case %zu: status %d err \"%s\", want \"%s\"", i, a.st, a.err,
			    want[i]);
		cJSON_Delete(a.result);
	}
	sw_test_run_for(base, 200);
	assert_int_equal(calls_total(), 0);
}

static void
test_setup_ok(void **state)
{
	struct ask a;
	const cJSON *fw, *co;
	char ab[TP_ID_TEXT];
	uint32_t fid, cid;

	int ab0 = tpd_asked_ab, bc0 = tpd_asked_bc;

	(void)state;
	fv_reset(FV_NORMAL, FV_NORMAL);
	ask_run(&a, A, params_abc());
	if (a.st != FRPC_OK)
		fail_msg("setup failed: %s", a.err);
	/* A-B confirmed by the feed; B-C, which the feed gives other edges, asked */
	assert_int_equal(tpd_asked_ab, ab0);
	assert_int_equal(tpd_asked_bc, bc0 + 1);
	fw = cJSON_GetObjectItemCaseSensitive(a.result, "forward");
	co = cJSON_GetObjectItemCaseSensitive(a.result, "consume");
	tp_id_format(ab, t_ab);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(fw, "type")->valuestring, "forward");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(fw, "next_tp_id")->valuestring, ab);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(co, "type")->valuestring, "consume");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(co, "t_id")->valuestring, ab);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(co, "desc"));
	fid = (uint32_t)cJSON_GetObjectItemCaseSensitive(fw, "route_id")->valuedouble;
	cid = (uint32_t)cJSON_GetObjectItemCaseSensitive(co, "route_id")->valuedouble;
	/* A's own two rules use the two ids A reserved. */
	assert_int_equal(fv[A].nres, 2);
	assert_true((fid == fv[A].reserved[0] && cid == fv[A].reserved[1]) ||
	    (fid == fv[A].reserved[1] && cid == fv[A].reserved[0]));
	assert_int_equal(fv[A].inter + fv[A].edge + fv[A].del, 0);
	assert_int_equal(fv[B].inter, 1);
	assert_int_equal(fv[B].inter_rules, 2);
	assert_int_equal(fv[C].edge, 1);
	assert_int_equal(fv[C].edge_rules, 2);
	assert_int_equal(fv[B].del + fv[C].del, 0);
	cJSON_Delete(a.result);
}

static void
test_no_listener(void **state)
{
	struct ask a;
	char want[256];

	(void)state;
	fv_reset(FV_NORMAL, FV_NO_LISTENER);
	ask_run(&a, A, params_abc());
	snprintf(want, sizeof(want), "add_edge_rules on %s: no listener", fv[C].hex);
	assert_int_equal(a.st, FRPC_REMOTE);
	assert_string_equal(a.err, want);
	for (int i = 0; i < NV; i++) {
		assert_int_equal(sw_test_run_until_fn(base, rolled_back, &fv[i], WAIT_MS), 0);
		assert_int_equal(fv[i].nres, 2);
	}
}

#define FLOOD 257

static void
test_middle_hangs_and_busy(void **state)
{
	static struct ask asks[FLOOD];
	cJSON *p = params_abc();
	char want[256];
	long long t0, busy_at = 0, first_timeout = 0;
	int busy = 0, timeouts = 0, done;

	(void)state;
	fv_reset(FV_HANG, FV_NORMAL);
	t0 = sw_mono_ms();
	for (int i = 0; i < FLOOD; i++)
		ask_start(&asks[i], A, p);
	cJSON_Delete(p);
	snprintf(want, sizeof(want), "reserve_ids on %s: timeout", fv[B].hex);
	do {
		event_base_loop(base, EVLOOP_ONCE);
		done = 0;
		for (int i = 0; i < FLOOD; i++)
			done += asks[i].done;
	} while (done < FLOOD && sw_mono_ms() - t0 < 28000);
	assert_int_equal(done, FLOOD);
	for (int i = 0; i < FLOOD; i++) {
		if (strcmp(asks[i].err, "busy") == 0) {
			busy++;
			busy_at = asks[i].at_ms;
		} else if (strcmp(asks[i].err, want) == 0) {
			timeouts++;
			/* 10 s per visor call; the upper bound leaves room for a slow (ASan) run. */
			assert_true(asks[i].at_ms - t0 >= 9900 && asks[i].at_ms - t0 < 20000);
			if (first_timeout == 0 || asks[i].at_ms < first_timeout)
				first_timeout = asks[i].at_ms;
		} else {
			fail_msg("request %d: status %d \"%s\"", i, asks[i].st, asks[i].err);
		}
		cJSON_Delete(asks[i].result);
	}
	assert_int_equal(busy, 1);
	assert_int_equal(timeouts, FLOOD - 1);
	/* "busy" at once: before any of the others' deadlines ran out. */
	assert_true(busy_at < first_timeout);
	/* A and C reserved and get exactly those back; B never answered. */
	assert_int_equal(sw_test_run_until_fn(base, rolled_back, &fv[A], WAIT_MS), 0);
	assert_int_equal(sw_test_run_until_fn(base, rolled_back, &fv[C], WAIT_MS), 0);
	assert_int_equal(fv[A].nres, 2 * (FLOOD - 1));
	assert_int_equal(fv[B].del, 0);
	assert_int_equal(fv[A].inter + fv[B].inter + fv[C].edge, 0);
}

/* ---- raw frames on port 36 ---- */

/* Bytes on a fresh stream to port 36: 1 if it was closed, err the error answered. */
static int
raw_exchange(const uint8_t *bytes, size_t len, char *err, size_t errsz)
{
	return sw_test_rawrpc(base, fv[A].c, sn_kp.pk, 36, bytes, len, 15000, err, errsz) == 1;
}

static void
test_bad_frames(void **state)
{
	uint8_t big[4], bad[4 + 7];
	char err[256];
	struct ask a;

	(void)state;
	fv_reset(FV_NORMAL, FV_NORMAL);
	sw_put_u32(big, FRPC_MAX_FRAME + 1);
	assert_true(raw_exchange(big, sizeof(big), err, sizeof(err)));
	sw_put_u32(bad, 7);
	memcpy(bad + 4, "[1,2,3]", 7);
	assert_true(raw_exchange(bad, sizeof(bad), err, sizeof(err)));
	assert_true(err[0] != '\0');
	/* Still serving. */
	ask_run(&a, A, params_abc());
	assert_int_equal(a.st, FRPC_OK);
	cJSON_Delete(a.result);
	assert_int_equal(calls_total() > 0, 1);
}

/* /metrics: requests by outcome, failures by step, the latency histogram. */

static void
test_metrics(void **state)
{
	static struct mres m;
	static const char *const want[] = {
		"setup_requests_total{service=\"setup-node\",outcome=\"ok\"}",
		"setup_requests_total{service=\"setup-node\",outcome=\"refused\"}",
		"setup_requests_total{service=\"setup-node\",outcome=\"failed\"}",
		"setup_requests_total{service=\"setup-node\",outcome=\"busy\"}",
		"setup_failures_total{service=\"setup-node\",step=\"check\"}",
		"setup_failures_total{service=\"setup-node\",step=\"add_edge_rules\"}",
		"setup_failures_total{service=\"setup-node\",step=\"reserve_ids\"}",
		"setup_latency_seconds_count{service=\"setup-node\"}",
		"setup_transport_checks_total{service=\"setup-node\",source=\"feed\"}",
		"setup_transport_checks_total{service=\"setup-node\",source=\"http\"}",
	};
	(void)state;
	metrics_get(&m);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *p = strstr(m.body, want[i]);

		if (p == NULL || strtol(p + strlen(want[i]), NULL, 10) < 1)
			fail_msg("metric %s missing or zero", want[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_setup_ok),
		cmocka_unit_test(test_no_listener),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_middle_hangs_and_busy),
		cmocka_unit_test(test_metrics),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
