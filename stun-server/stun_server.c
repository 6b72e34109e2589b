/*
 * stun-server as a framework service: configuration, the STUN sockets, and
 * an HTTP port for /health and /metrics only.
 *
 * The whole configuration is checked in create (addresses parsed, the
 * behaviour-discovery pair complete and of one family), so `-n` catches a
 * bad one before any socket is opened.  The server keeps no state, so a
 * graceful stop closes the sockets and drains the HTTP port.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "netaddr.h"
#include "stun_server.h"

#define STUN_ADDR_MAX 256

struct stun_server {
	struct sw_svc *svc;
	const char *name;
	struct stun_addrs want;
	struct stun_udp *udp;
	struct sw_http_server *http;
	char health_listen[STUN_ADDR_MAX];
	char software[STUN_MAX_SOFTWARE + 1];
};

static const struct sw_cfg_key stun_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:3478", "STUN UDP address (ip:port)"},
	{"secondary_ip", SW_CFG_STR, NULL, "a second IP of this host, for CHANGE-REQUEST"},
	{"alt_port", SW_CFG_INT, NULL, "a second port, for CHANGE-REQUEST (with secondary_ip)"},
	{"health_listen", SW_CFG_STR, "127.0.0.1:9095", "HTTP /health and /metrics"},
	{"software", SW_CFG_STR, "skywire-c stun", "SOFTWARE attribute of replies"},
	{NULL, 0, NULL, NULL},
};

static void *
stun_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct stun_server *ss = calloc(1, sizeof(*ss));
	const char *health = sw_cfg_str(cfg, "health_listen");
	const char *software = sw_cfg_str(cfg, "software");
	long long alt = sw_cfg_int(cfg, "alt_port", -1);
	char err[128];

	if (ss == NULL)
		return NULL;
	ss->svc = svc;
	ss->name = sw_svc_name(svc);
	if (alt > 65535 || stun_addrs_parse(&ss->want, sw_cfg_str(cfg, "listen"),
	    sw_cfg_str(cfg, "secondary_ip"), (int)alt, err, sizeof(err)) == -1) {
		sw_log_error(ss->name, "bad STUN addresses", "reason=%s",
		    sw_log_q((char[160]){0}, 160, alt > 65535 ? "alt_port over 65535" : err));
		goto fail;
	}
	if (health != NULL && strlen(health) >= sizeof(ss->health_listen)) {
		sw_log_error(ss->name, "health_listen too long", NULL);
		goto fail;
	}
	snprintf(ss->health_listen, sizeof(ss->health_listen), "%s", health != NULL ? health : "");
	if (software != NULL && strlen(software) > STUN_MAX_SOFTWARE) {
		sw_log_error(ss->name, "software must be at most 127 bytes", NULL);
		goto fail;
	}
	snprintf(ss->software, sizeof(ss->software), "%s", software != NULL ? software : "");
	return ss;
fail:
	free(ss);
	return NULL;
}

static int
stun_start(void *priv)
{
	struct stun_server *ss = priv;
	const struct stun_addrs *a;
	char addrs[STUN_NSOCK][SW_IP_TEXT + 8];

	ss->udp = stun_udp_new(sw_svc_base(ss->svc), ss->name, sw_svc_metrics(ss->svc),
	    ss->software);
	if (ss->udp == NULL || stun_udp_open(ss->udp, &ss->want) == -1)
		return -1;
	if (ss->health_listen[0] != '\0') {
		ss->http = sw_http_server_new(sw_svc_base(ss->svc), ss->name,
		    sw_svc_metrics(ss->svc));
		if (ss->http == NULL || sw_svc_http_attach(ss->svc, ss->http) == -1 ||
		    sw_http_server_listen(ss->http, ss->health_listen) == -1)
			return -1;
	}
	a = stun_udp_addrs(ss->udp);
	for (size_t i = 0; i < STUN_NSOCK; i++)
		stun_addr_text(addrs[i], sizeof(addrs[i]), (const struct sockaddr *)&a->a[i]);
	if (a->n == STUN_NSOCK)
		sw_log_info(ss->name, "listening", "udp=%s,%s,%s,%s health=%s", addrs[0], addrs[1],
		    addrs[2], addrs[3], ss->health_listen);
	else
		sw_log_info(ss->name, "listening", "udp=%s health=%s", addrs[0],
		    ss->health_listen);
	return 0;
}

static void
stun_stop(void *priv, sw_svc_stopped *done)
{
	struct stun_server *ss = priv;

	if (ss->udp != NULL)
		stun_udp_close(ss->udp);
	sw_svc_drain(ss->svc, done);
}

static int
stun_health(void *priv, cJSON *checks)
{
	struct stun_server *ss = priv;
	int up = ss->udp != NULL && stun_udp_is_open(ss->udp);

	cJSON_AddStringToObject(checks, "udp", up ? "ok" : "down");
	return up;
}

static void
stun_destroy(void *priv)
{
	struct stun_server *ss = priv;

	sw_http_server_free(ss->http);
	stun_udp_free(ss->udp);
	free(ss);
}

static void
stun_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:3478");
	cJSON_AddStringToObject(inst, "health_listen", "127.0.0.1:9095");
}

const struct sw_service_ops stun_server_ops = {
	.type = "stun-server",
	.summary = "STUN Binding (RFC 5389) with RFC 3489/5780 behaviour discovery, over UDP",
	.keys = stun_keys,
	.deps = NULL,
	.uses_store = 0,
	.create = stun_create,
	.start = stun_start,
	.stop = stun_stop,
	.health = stun_health,
	.destroy = stun_destroy,
	.gen_config = stun_gen_config,
};
