/*
 * address-resolver as a framework service: configuration, start, stop,
 * health.  It listens twice: HTTP for stcpr binds and all resolves, UDP for
 * sudph.  Its key pair signs the datagrams it sends (acks and dials).
 *
 * A graceful stop closes the UDP socket, drains HTTP requests, and finishes
 * only when the datagrams already waiting on the store are done too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "address_resolver.h"
#include "http.h"
#include "http_dmsg.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

static const struct sw_cfg_key ar_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9093", "HTTP address"},
	{"udp_listen", SW_CFG_STR, NULL, "sudph UDP address (default: the listen address)"},
	{"public_key", SW_CFG_STR, NULL, "identity (signs acks and dials); generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{"dmsg_discovery", SW_CFG_STR, NULL, "serve the HTTP API on dmsg port 80 too (dmsg-discovery URL)"},
	{"entry_timeout_s", SW_CFG_INT, "300", "stcpr bindings expire this long after a bind"},
	{"sudph_timeout_s", SW_CFG_INT, "30", "sudph bindings expire this long after a heartbeat"},
	{NULL, 0, NULL, NULL},
};

static int
copy_addr(struct ar *ar, char *dst, size_t size, const char *src, const char *what)
{
	if (src == NULL || strlen(src) >= size) {
		sw_log_error(ar->name, "address must be host:port", "key=%s", what);
		return -1;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static void *
ar_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct ar *ar = calloc(1, sizeof(*ar));
	const char *udp = sw_cfg_str(cfg, "udp_listen");

	if (ar == NULL)
		return NULL;
	ar->svc = svc;
	ar->name = sw_svc_name(svc);
	ar->st = sw_svc_store(svc);
	ar->auth.st = ar->st;
	ar->auth.prefix = AR_PREFIX;
	ar->udp_fd = -1;
	ar->ttl_s = sw_cfg_int(cfg, "entry_timeout_s", 300);
	ar->sudph_ttl_s = sw_cfg_int(cfg, "sudph_timeout_s", 30);
	if (ar->ttl_s < 1 || ar->sudph_ttl_s < 1) {
		sw_log_error(ar->name, "entry_timeout_s and sudph_timeout_s must be at least 1",
		    NULL);
		goto fail;
	}
	if (copy_addr(ar, ar->listen, sizeof(ar->listen), sw_cfg_str(cfg, "listen"),
	    "listen") == -1 ||
	    copy_addr(ar, ar->udp_listen, sizeof(ar->udp_listen),
	    udp != NULL ? udp : ar->listen, "udp_listen") == -1)
		goto fail;
	if (sw_svc_keypair(svc, cfg, &ar->kp) == -1)
		goto fail;
	if (sw_cfg_str(cfg, "dmsg_discovery") != NULL)
		snprintf(ar->dmsg_disc, sizeof(ar->dmsg_disc), "%s", sw_cfg_str(cfg, "dmsg_discovery"));
	ar->m_udp_in = sw_metric_new(sw_svc_metrics(svc), "ar_udp_datagrams_total",
	    "sudph datagrams accepted, by type", SW_COUNTER, (const char *[]){"type", NULL},
	    NULL, 0);
	ar->m_udp_drop = sw_metric_new(sw_svc_metrics(svc), "ar_udp_dropped_total",
	    "sudph datagrams dropped, by reason", SW_COUNTER, (const char *[]){"reason", NULL},
	    NULL, 0);
	ar->m_udp_out = sw_metric_new(sw_svc_metrics(svc), "ar_udp_sent_total",
	    "datagrams sent by the resolver", SW_COUNTER,
	    (const char *[]){"type", "result", NULL}, NULL, 0);
	ar->m_binds = sw_metric_new(sw_svc_metrics(svc), "ar_binds_total",
	    "bindings written over HTTP", SW_COUNTER, (const char *[]){"net", NULL}, NULL, 0);
	return ar;
fail:
	sodium_memzero(&ar->kp, sizeof(ar->kp));
	free(ar);
	return NULL;
}

static int
ar_start(void *priv)
{
	struct ar *ar = priv;
	char pk[SW_PK_HEX];

	ar->http = sw_http_server_new(sw_svc_base(ar->svc), ar->name, sw_svc_metrics(ar->svc));
	if (ar->http == NULL || ar_api_routes(ar) == -1 ||
	    sw_http_server_listen(ar->http, ar->listen) == -1 || ar_udp_open(ar) == -1)
		return -1;
	if (ar->dmsg_disc[0] != '\0' && (ar->http_dmsg = sw_http_dmsg_serve_as(sw_svc_base(ar->svc),
	    ar->http, &ar->kp, ar->dmsg_disc, ar->name)) == NULL)
		return -1;
	sw_hex_encode(pk, ar->kp.pk, SW_PK_LEN);
	sw_log_info(ar->name, "listening", "addr=%s udp=%s store=%s pk=%s", ar->listen,
	    ar->udp_listen, sw_store_is_redis(ar->st) ? "redis" : "memory", pk);
	return 0;
}

/*
 * The HTTP drain starts once no datagram waits on the store (a few ms after
 * the UDP socket closes), so done runs when both kinds of work are over.
 */
void
ar_stop_check(struct ar *ar)
{
	sw_svc_stopped *done = ar->stopped;

	if (done != NULL && ar->udp_inflight == 0) {
		ar->stopped = NULL;
		sw_svc_drain(ar->svc, done);
	}
}

static void
ar_stop(void *priv, sw_svc_stopped *done)
{
	struct ar *ar = priv;

	ar_udp_close(ar);
	ar->stopped = done;
	ar_stop_check(ar);
}

static int
ar_health(void *priv, cJSON *checks)
{
	struct ar *ar = priv;

	cJSON_AddStringToObject(checks, "http", ar->http != NULL ? "ok" : "down");
	cJSON_AddStringToObject(checks, "udp", ar->udp_fd != -1 ? "ok" : "down");
	return ar->http != NULL && ar->udp_fd != -1;
}

static void
ar_destroy(void *priv)
{
	struct ar *ar = priv;

	ar_udp_close(ar);
	sw_http_dmsg_server_free(ar->http_dmsg);
	sw_http_server_free(ar->http);
	sodium_memzero(&ar->kp, sizeof(ar->kp));
	free(ar);
}

static void
ar_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:9093");
	/* its feeds (and its HTTP) on dmsg too, as in compose */
	cJSON_AddStringToObject(inst, "dmsg_discovery", "http://127.0.0.1:9090");
	sw_svc_gen_keys(inst);
}

const struct sw_service_ops address_resolver_ops = {
	.type = "address-resolver",
	.summary = "where visors are reachable for stcpr and sudph (HTTP and UDP)",
	.keys = ar_keys,
	.deps = NULL,
	.uses_store = 1,
	.create = ar_create,
	.start = ar_start,
	.stop = ar_stop,
	.health = ar_health,
	.destroy = ar_destroy,
	.gen_config = ar_gen_config,
};
