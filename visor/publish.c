/*
 * publish.c: the visor's `publish` services ([{"type","port"}]) in
 * service-discovery (services.md): posted with httpauth at start, re-posted
 * every publish_refresh_s (default 200 s, a third of the service's default
 * 600 s entry timeout, so two posts may fail before an entry expires), and
 * deleted on a graceful stop.  A failed post is retried after 2 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "http.h"
#include "httpauth_client.h"
#include "log.h"
#include "service-discovery/sd_schema.h"
#include "tp_int.h"
#include "visor.h"

#define PUB_MAX      8
#define PUB_RETRY_MS 2000

struct pub_svc {
	char type[12];
	int port;
};

struct visor_pub {
	struct visor *v;
	struct sw_http_client *http;
	struct sw_authclient *sd;
	struct pub_svc svcs[PUB_MAX];
	size_t n;
	int refresh_ms;
	int failed;        /* a post of this round failed */
	size_t outstanding;
	int stopping;
	struct event *timer;
	long long deadline_ms;
	void (*done)(void *arg);
	void *done_arg;
};


static void
posted(const struct sw_http_resp *r, void *arg)
{
	struct visor_pub *p = arg;

	if (r->status != 200) {
		sw_log_warn(p->v->name, "service publication failed", "service_discovery=%s status=%d",
		    sw_authclient_base(p->sd), r->status);
		p->failed = 1;
	}
	if (--p->outstanding > 0 || p->stopping)
		return;
	sw_timer_in(p->timer, p->failed ? PUB_RETRY_MS : p->refresh_ms);
}

static void
post_all(struct visor_pub *p)
{
	char body[256];
	int len;

	p->failed = 0;
	for (size_t i = 0; i < p->n; i++) {
		len = snprintf(body, sizeof(body),
		    "{\"address\":\"%s:%d\",\"type\":\"%s\",\"version\":\"%s\"}", p->v->pk_hex,
		    p->svcs[i].port, p->svcs[i].type, SW_VERSION);
		if (sw_authclient_request(p->sd, "POST", SD_PATH_SERVICES, body, (size_t)len,
		    VTP_HTTP_MS, posted, p) != NULL)
			p->outstanding++;
		else
			p->failed = 1;
	}
	if (p->outstanding == 0)
		sw_timer_in(p->timer, PUB_RETRY_MS);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct visor_pub *p = arg;

	(void)fd;
	(void)what;
	if (p->stopping) {
		/* Wait for the deletes, bounded. */
		if (sw_authclient_pending(p->sd) > 0 && sw_mono_ms() < p->deadline_ms) {
			sw_timer_in(p->timer, 20);
			return;
		}
		void (*done)(void *) = p->done;

		p->done = NULL;
		if (done != NULL)
			done(p->done_arg);
		return;
	}
	post_all(p);
}

struct visor_pub *
visor_pub_new(struct visor *v)
{
	struct visor_pub *p = calloc(1, sizeof(*p));
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(v->cfg, "publish"), *e;
	long long refresh = sw_cfg_int(v->cfg, "publish_refresh_s", 200);

	if (p == NULL)
		return NULL;
	p->v = v;
	if (refresh < 1 || refresh > 86400) {
		sw_log_error(v->name, "publish_refresh_s must be 1..86400", NULL);
		goto fail;
	}
	p->refresh_ms = (int)refresh * 1000;
	if (list != NULL && !cJSON_IsNull(list) && !cJSON_IsArray(list)) {
		sw_log_error(v->name, "publish must be [{\"type\":\"visor|vpn|skysocks\",\"port\":N}]",
		    NULL);
		goto fail;
	}
	cJSON_ArrayForEach(e, list) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
		const cJSON *port = cJSON_GetObjectItemCaseSensitive(e, "port");

		if (p->n == PUB_MAX || !cJSON_IsString(t) ||
		    (strcmp(t->valuestring, "visor") != 0 && strcmp(t->valuestring, "vpn") != 0 &&
		    strcmp(t->valuestring, "skysocks") != 0) || !cJSON_IsNumber(port) ||
		    port->valuedouble < 0 || port->valuedouble > 65535 ||
		    port->valuedouble != (double)(int)port->valuedouble) {
			sw_log_error(v->name, "publish: at most 8 of {\"type\":\"visor|vpn|skysocks\","
			    "\"port\":0..65535}", NULL);
			goto fail;
		}
		snprintf(p->svcs[p->n].type, sizeof(p->svcs[p->n].type), "%s", t->valuestring);
		p->svcs[p->n].port = (int)port->valuedouble;
		p->n++;
	}
	if ((p->http = sw_http_client_new(sw_svc_base(v->svc), v->name)) == NULL)
		goto fail;
	if ((p->sd = sw_authclient_new(p->http, &v->kp, sw_cfg_str(v->cfg, "service_discovery"),
	    v->name)) == NULL) {
		sw_log_error(v->name, "service_discovery must be a URL", NULL);
		goto fail;
	}
	if ((p->timer = evtimer_new(sw_svc_base(v->svc), tick, p)) == NULL)
		goto fail;
	return p;
fail:
	visor_pub_free(p);
	return NULL;
}

int
visor_pub_start(struct visor_pub *p)
{
	visor_dmsgfirst_use(p->v, p->http);
	if (p->n > 0)
		post_all(p);
	return 0;
}

void
visor_pub_stop(struct visor_pub *p, void (*done)(void *arg), void *arg)
{
	char path[128];

	event_del(p->timer);
	p->stopping = 1;
	p->done = done;
	p->done_arg = arg;
	for (size_t i = 0; i < p->n; i++) {
		snprintf(path, sizeof(path), SD_PATH_SERVICE "%s:%d?type=%s", p->v->pk_hex,
		    p->svcs[i].port, p->svcs[i].type);
		sw_authclient_request(p->sd, "DELETE", path, NULL, 0, VTP_HTTP_MS, NULL, NULL);
	}
	p->deadline_ms = sw_mono_ms() + 3000;
	sw_timer_in(p->timer, 0);
}

void
visor_pub_free(struct visor_pub *p)
{
	if (p == NULL)
		return;
	if (p->timer != NULL)
		event_free(p->timer);
	sw_authclient_free(p->sd);
	sw_http_client_free(p->http);
	free(p);
}
