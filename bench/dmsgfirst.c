/*
 * bench/dmsgfirst: one request's latency over dmsg vs TCP on loopback.
 *
 * In one process: a service (an HTTP server answering GET /x with a small
 * JSON body, also on dmsg port 80) and a client whose HTTP client has the
 * dmsg-first carrier.  N sequential requests each way, as the visor makes
 * them (a fresh connection per request: over dmsg that is a stream dial
 * with its handshake); prints p50/p99/mean per carrier and the ratio.
 *
 *   dmsgfirst DISCOVERY_URL N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "crypto.h"
#include "dmsg_client.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"

static struct event_base *base;
static int done, status;

static void
h_x(struct sw_http_req *req, void *arg)
{
	(void)arg;
	sw_http_reply_raw(req, 200, "application/json", "{\"ok\":true}", 11);
}

static void
on_resp(const struct sw_http_resp *r, void *arg)
{
	(void)arg;
	status = r->status;
	done = 1;
	event_base_loopbreak(base);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* N requests to url; sorted latencies in ms into lat; -1 on a failed one. */
static int
run(struct sw_http_client *hc, const char *url, int n, double *lat)
{
	struct sw_http_opts o = {.timeout_ms = 10000};

	for (int i = 0; i < n; i++) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		done = 0;
		if (sw_http_request(hc, "GET", url, NULL, 0, &o, on_resp, NULL) == -1)
			return -1;
		while (!done)
			event_base_dispatch(base);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (status != 200)
			return -1;
		lat[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	return 0;
}

static double
mean(const double *v, int n)
{
	double s = 0;

	for (int i = 0; i < n; i++)
		s += v[i];
	return s / n;
}

static int
registered(struct dmsg_client *a, struct dmsg_client *b)
{
	struct event *t = evtimer_new(base, on_tick, NULL);
	struct timeval tv = {0, 20000};
	int ok = 0;

	for (int i = 0; i < 1000 && !(ok = dmsg_client_registered(a) && dmsg_client_registered(b));
	    i++) {
		evtimer_add(t, &tv);
		event_base_dispatch(base);
	}
	event_free(t);
	return ok;
}

int
main(int argc, char **argv)
{
	struct sw_keypair skp, ckp;
	struct dmsg_client_opts o;
	struct dmsg_client *sdc, *cdc;
	struct sw_http_server *srv;
	struct sw_http_dmsg_server *hds;
	struct sw_http_client *tcp, *dm;
	struct sw_http_dmsg *carrier;
	char url[64];
	double *lt, *ld;
	int n, port;

	if (argc != 3 || (n = atoi(argv[2])) < 10)
		return fprintf(stderr, "usage: dmsgfirst DISCOVERY_URL N(>=10)\n"), 2;
	if (sw_crypto_init() == -1 || (base = event_base_new()) == NULL)
		return 1;
	sw_log_set_level(SW_LOG_WARN);
	memset(&o, 0, sizeof(o));
	o.discovery = argv[1];
	sw_keypair_generate(&skp);
	sw_keypair_generate(&ckp);
	sdc = dmsg_client_new(base, &skp, &o, "svc");
	cdc = dmsg_client_new(base, &ckp, &o, "cli");
	srv = sw_http_server_new(base, "svc", NULL);
	if (sdc == NULL || cdc == NULL || srv == NULL || dmsg_client_start(sdc) == -1 ||
	    dmsg_client_start(cdc) == -1 || sw_http_route(srv, "GET", "/x", h_x, NULL) == -1 ||
	    sw_http_server_listen(srv, "127.0.0.1:0") == -1)
		return 1;
	port = sw_http_server_port(srv);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	hds = sw_http_dmsg_serve(base, srv, sdc, 0, "svc");
	tcp = sw_http_client_new(base, "tcp");
	dm = sw_http_client_new(base, "dmsg");
	carrier = sw_http_dmsg_new(base, cdc, NULL, "dmsg");
	if (hds == NULL || tcp == NULL || dm == NULL || carrier == NULL ||
	    sw_http_client_set_dmsg(dm, carrier) == -1 || sw_http_dmsg_map(carrier, url, skp.pk) ==
	    -1 || !registered(sdc, cdc))
		return fprintf(stderr, "dmsgfirst: setup failed\n"), 1;
	lt = calloc((size_t)n, sizeof(double));
	ld = calloc((size_t)n, sizeof(double));
	if (lt == NULL || ld == NULL || run(tcp, url, n, lt) == -1 || run(dm, url, n, ld) == -1 ||
	    sw_http_dmsg_count(carrier, 1) != (unsigned long)n)
		return fprintf(stderr, "dmsgfirst: a request failed or did not go over dmsg\n"), 1;
	printf("%-44s p50 %7.3f ms  p99 %7.3f ms  mean %7.3f ms\n", "dmsgfirst request over TCP",
	    lt[n / 2], lt[n * 99 / 100], mean(lt, n));
	printf("%-44s p50 %7.3f ms  p99 %7.3f ms  mean %7.3f ms\n", "dmsgfirst request over dmsg",
	    ld[n / 2], ld[n * 99 / 100], mean(ld, n));
	printf("%-44s %.1fx (p50), %.1fx (mean)\n", "dmsgfirst latency dmsg / TCP",
	    ld[n / 2] / lt[n / 2], mean(ld, n) / mean(lt, n));
	/* bench/lib.sh's summary row: value, reference, ratio as a percentage. */
	printf("SUMMARY|dmsgfirst request p50 over dmsg|%.3f|ms|TCP p50 %.3f ms|%.0f%%|-\n",
	    ld[n / 2], lt[n / 2], 100 * ld[n / 2] / lt[n / 2]);
	free(lt);
	free(ld);
	sw_http_client_free(dm);
	sw_http_client_free(tcp);
	sw_http_dmsg_free(carrier);
	sw_http_dmsg_server_free(hds);
	sw_http_server_free(srv);
	dmsg_client_free(cdc);
	dmsg_client_free(sdc);
	event_base_free(base);
	return 0;
}
