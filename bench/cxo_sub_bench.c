/*
 * bench/cxo_sub_bench: dmsg-discovery's clients-by-server feed read by the
 * project's own C subscriber (common/cxo_sub), against HTTP GETs of the same
 * lists from the same daemon, in one run:
 *
 *   fill       N client entries over S servers (signed, 64 POSTs in flight)
 *   snapshot   a fresh subscriber: dial -> first complete tree; bytes = OBJs
 *   http       every server's GET /dmsg-discovery/clients-by-server/<s>, one
 *              after the other on one connection pool (what a poller does)
 *   update     one client re-registers: the POST's 200 (committed) -> the
 *              subscriber's update callback naming its leaf
 *
 * Prints one line per figure and "ratio snapshot/http".
 * usage: cxo_sub_bench HTTP_BASE CXO_ADDR FEED_PK_HEX N SERVERS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "crypto.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "cxo_sub.h"
#include "dmsg-discovery/dd_schema.h"
#include "dmsg_entry.h"
#include "http.h"

#define INFLIGHT 64

static struct event_base *base;
static struct sw_http_client *cli;
static const char *http_base;
static size_t n_entries, n_servers, posted, answered, failed;
static struct sw_keypair *clients;
static uint8_t (*servers)[SW_PK_LEN];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
entry_json(size_t i, unsigned long long seq)
{
	struct dmsg_entry e;
	cJSON *o;
	char *s;

	memset(&e, 0, sizeof(e));
	memcpy(e.pk, clients[i].pk, SW_PK_LEN);
	e.sequence = seq;
	e.timestamp = (unsigned long long)time(NULL) * 1000ULL + seq; /* < 2^53 */
	e.has_client = 1;
	e.ndelegated = 1;
	memcpy(e.delegated[0], servers[i % n_servers], SW_PK_LEN);
	o = dmsg_entry_to_json(&e, &clients[i]);
	s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

static void post_next(void);

static void
posted_cb(const struct sw_http_resp *resp, void *arg)
{
	(void)arg;
	answered++;
	if (resp->status != 200)
		failed++;
	post_next();
	if (answered == n_entries)
		event_base_loopbreak(base);
}

static void
post_next(void)
{
	char url[512], *body;

	if (posted == n_entries)
		return;
	body = entry_json(posted, 0);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY, http_base);
	posted++;
	if (body == NULL || sw_http_request(cli, "POST", url, body, strlen(body), NULL, posted_cb,
	    NULL) == -1) {
		fprintf(stderr, "cxo_sub_bench: POST not sent\n");
		exit(1);
	}
	free(body);
}

/* The subscriber */

struct watch {
	struct cxo_sub *s;
	int snap;
	const char *want_path; /* update: the leaf we wait for */
	int updated;
	double t_update;
};

static void
on_snapshot(struct cxo_sub *s, void *arg)
{
	struct watch *w = arg;

	(void)s;
	w->snap = 1;
	event_base_loopbreak(base);
}

static void
on_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	struct watch *w = arg;

	(void)s;
	for (size_t i = 0; w->want_path != NULL && i < n; i++)
		if (strcmp(ch[i].path, w->want_path) == 0 && !w->updated) {
			w->updated = 1;
			w->t_update = now_s();
			event_base_loopbreak(base);
		}
}

static void
on_down(struct cxo_sub *s, const char *reason, void *arg)
{
	(void)s;
	(void)arg;
	fprintf(stderr, "cxo_sub_bench: subscriber down: %s\n", reason);
}

static int
count_leaf(const char *path, const uint8_t *data, size_t len, void *arg)
{
	(void)path;
	(void)data;
	(void)len;
	(*(size_t *)arg)++;
	return 0;
}

static struct cxo_sub *
subscribe(struct watch *w, const uint8_t feed_pk[SW_PK_LEN], char *addr)
{
	struct cxo_sub_opts o;

	memset(&o, 0, sizeof(o));
	o.svc = "cxo-bench";
	memcpy(o.feed_pk, feed_pk, SW_PK_LEN);
	o.feed_port = CXO_PORT_CLIENTS_BY_SERVER;
	o.dial = cxo_tcp_dial;
	o.dial_arg = addr;
	o.cbs.snapshot = on_snapshot;
	o.cbs.update = on_update;
	o.cbs.down = on_down;
	o.arg = w;
	return cxo_sub_new(base, &o);
}

static int
run_until(const int *flag, double timeout_s)
{
	double end = now_s() + timeout_s;
	struct timeval tv = {0, 100000};

	while (!*flag && now_s() < end) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return *flag ? 0 : -1;
}

/* HTTP: every server's list. */
static size_t http_done, http_bytes, http_entries;

static void
list_cb(const struct sw_http_resp *resp, void *arg)
{
	(void)arg;
	if (resp->status != 200) {
		fprintf(stderr, "cxo_sub_bench: list GET %d\n", resp->status);
		exit(1);
	}
	http_bytes += resp->len;
	http_entries += (size_t)cJSON_GetArraySize(resp->json);
	http_done++;
	event_base_loopbreak(base);
}

int
main(int argc, char **argv)
{
	uint8_t feed_pk[SW_PK_LEN];
	struct watch w;
	struct cxo_sub_stats st;
	size_t leaves;
	double t0, t_snap, t_http, t_post, t_sent;
	char url[512], hex[SW_PK_HEX], path[256], *body;

	if (argc != 6 || sw_pk_parse(feed_pk, argv[3]) == -1) {
		fprintf(stderr, "usage: cxo_sub_bench HTTP_BASE CXO_ADDR FEED_PK_HEX N SERVERS\n");
		return 2;
	}
	http_base = argv[1];
	n_entries = strtoul(argv[4], NULL, 10);
	n_servers = strtoul(argv[5], NULL, 10);
	base = event_base_new();
	cli = sw_http_client_new(base, "cxo-bench");
	clients = calloc(n_entries, sizeof(*clients));
	servers = calloc(n_servers, sizeof(*servers));
	if (base == NULL || cli == NULL || clients == NULL || servers == NULL || n_servers == 0)
		return 1;
	for (size_t i = 0; i < n_servers; i++) {
		struct sw_keypair k;

		sw_keypair_generate(&k);
		memcpy(servers[i], k.pk, SW_PK_LEN);
	}
	for (size_t i = 0; i < n_entries; i++)
		sw_keypair_generate(&clients[i]);
	t0 = now_s();
	for (size_t i = 0; i < INFLIGHT && i < n_entries; i++)
		post_next();
	while (answered < n_entries)
		event_base_dispatch(base);
	if (failed > 0) {
		fprintf(stderr, "cxo_sub_bench: %zu POSTs failed\n", failed);
		return 1;
	}
	printf("fill: %zu entries in %.1f s\n", n_entries, now_s() - t0);

	/* Wait until the feed holds them all (its queue drains once per loop pass). */
	for (int tries = 0;; tries++) {
		memset(&w, 0, sizeof(w));
		w.s = subscribe(&w, feed_pk, argv[2]);
		if (w.s == NULL || run_until(&w.snap, 30) == -1)
			return 1;
		leaves = 0;
		cxo_sub_walk(w.s, NULL, count_leaf, &leaves);
		cxo_sub_free(w.s);
		if (leaves == n_entries)
			break;
		if (tries == 100) {
			fprintf(stderr, "cxo_sub_bench: feed has %zu of %zu\n", leaves, n_entries);
			return 1;
		}
	}

	/* A fresh subscriber: dial -> first complete tree. */
	memset(&w, 0, sizeof(w));
	t0 = now_s();
	w.s = subscribe(&w, feed_pk, argv[2]);
	if (w.s == NULL || run_until(&w.snap, 60) == -1)
		return 1;
	t_snap = now_s() - t0;
	cxo_sub_stats(w.s, &st);

	/* HTTP: the same lists, one GET each. */
	t0 = now_s();
	for (size_t i = 0; i < n_servers; i++) {
		sw_hex_encode(hex, servers[i], SW_PK_LEN);
		snprintf(url, sizeof(url), "%s" DD_PATH_CLIENTS "%s", http_base, hex);
		if (sw_http_request(cli, "GET", url, NULL, 0, NULL, list_cb, NULL) == -1)
			return 1;
		while (http_done <= i)
			event_base_dispatch(base);
	}
	t_http = now_s() - t0;
	if (http_entries != n_entries) {
		fprintf(stderr, "cxo_sub_bench: HTTP lists hold %zu of %zu\n", http_entries,
		    n_entries);
		return 1;
	}

	/* One update: committed (the POST's 200) -> the update callback. */
	sw_hex_encode(hex, clients[n_entries / 2].pk, SW_PK_LEN);
	{
		char shex[SW_PK_HEX];

		sw_hex_encode(shex, servers[(n_entries / 2) % n_servers], SW_PK_LEN);
		snprintf(path, sizeof(path), DD_FEED_ROOT "/%s/%.2s/%s", shex, hex, hex);
	}
	w.want_path = path;
	body = entry_json(n_entries / 2, 1);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY, http_base);
	answered = 0;
	n_entries = 1;
	posted = 1;
	t_sent = now_s();
	sw_http_request(cli, "POST", url, body, strlen(body), NULL, posted_cb, NULL);
	free(body);
	while (answered == 0)
		event_base_dispatch(base);
	t_post = now_s();
	if (!w.updated && run_until(&w.updated, 10) == -1)
		return 1;
	printf("CXO snapshot (C subscriber)  %9.1f ms  %10llu bytes of objects  %llu objects\n",
	    t_snap * 1e3, (unsigned long long)st.obj_bytes, (unsigned long long)st.objs);
	printf("HTTP GET of the %zu lists    %9.1f ms  %10zu bytes of bodies\n", n_servers,
	    t_http * 1e3, http_bytes);
	printf("ratio snapshot/http           %9.2f   (target <= 2)\n", t_snap / t_http);
	/* The write is committed before its 200 leaves, so answer -> callback is the bound. */
	printf("committed write -> update cb %9.1f ms  (POST sent -> cb %.1f ms; publish "
	    "interval %d ms)\n", (w.t_update - t_post) * 1e3, (w.t_update - t_sent) * 1e3,
	    CXO_PUBLISH_INTERVAL_MS);
	/* For bench/cxo-c.sh's summary rows. */
	printf("RESULT %.1f %.1f %llu %zu %.1f\n", t_snap * 1e3, t_http * 1e3,
	    (unsigned long long)st.obj_bytes, http_bytes, (w.t_update - t_post) * 1e3);
	cxo_sub_free(w.s);
	sw_http_client_free(cli);
	free(clients);
	free(servers);
	event_base_free(base);
	return 0;
}
