/*
 * dmsg-server as a framework service: configuration, the relay's listener,
 * the HTTP health port, and the server entry in dmsg-discovery.
 *
 * The entry is re-posted every 30 s (dmsg.md) with availableSessions =
 * max_sessions - sessions; a failed post is retried with a doubling delay
 * (1 s up to 30 s).  A discovery that is down is reported as a check but
 * does not make the relay unhealthy: it still serves every client that
 * already has its entry (docs/decisions.md, "dmsg-server").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "backoff.h"
#include "clock.h"
#include "dmsg-discovery/dd_schema.h"
#include "dmsg_entry.h"
#include "dmsg_server.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#define DS_REGISTER_EVERY_MS 30000
#define DS_BACKOFF_MIN_MS    1000
#define DS_ADDR_MAX          256
#define DS_URL_MAX           512

enum reg_state { REG_OFF, REG_PENDING, REG_OK, REG_DOWN };

struct ds {
	struct sw_svc *svc;
	const char *name;
	struct sw_keypair kp;
	struct ds_opts opts;
	struct ds_relay *relay;
	struct sw_http_server *http;
	struct sw_http_client *client;
	struct event *reg_ev;
	char listen[DS_ADDR_MAX];
	char health_listen[DS_ADDR_MAX];
	char public_address[DS_ADDR_MAX];
	char url[DS_URL_MAX];    /* discovery's entry URL, "" when not registering */
	unsigned long long seq;
	struct sw_backoff backoff; /* registration retries */
	long long start_ms;        /* until registered once: backoff.h's start window */
	int registered_once;
	int in_flight;
	int stopping;
	enum reg_state reg;
};

static const struct sw_cfg_key ds_keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:8080", "dmsg sessions (TCP) address"},
	{"public_address", SW_CFG_STR, NULL, "host:port advertised in discovery; default listen"},
	{"public_key", SW_CFG_STR, NULL, "identity; generated when absent"},
	{"secret_key", SW_CFG_STR, NULL, "Ed25519 seed, 64 hex chars"},
	{"discovery", SW_CFG_STR, NULL, "dmsg-discovery URL to register in (none: no entry)"},
	{"max_sessions", SW_CFG_INT, "2048", "sessions served at once"},
	{"health_listen", SW_CFG_STR, "127.0.0.1:8082", "HTTP /health, /metrics, /sessions"},
	{"handshake_timeout_ms", SW_CFG_INT, "5000", "session handshake deadline"},
	{"accept_timeout_ms", SW_CFG_INT, "10000", "a stream not accepted in this time: REJECT 5"},
	{NULL, 0, NULL, NULL},
};

static int
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= cap)
		return -1;
	memcpy(dst, src != NULL ? src : "", n + 1);
	return 0;
}

static void *
ds_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct ds *ds = calloc(1, sizeof(*ds));
	const char *disc = sw_cfg_str(cfg, "discovery");
	const char *pub = sw_cfg_str(cfg, "public_address");
	long long max = sw_cfg_int(cfg, "max_sessions", 2048);
	long long hs = sw_cfg_int(cfg, "handshake_timeout_ms", 5000);
	long long acc = sw_cfg_int(cfg, "accept_timeout_ms", 10000);

	if (ds == NULL)
		return NULL;
	ds->svc = svc;
	ds->name = sw_svc_name(svc);
	if (copy_str(ds->listen, sizeof(ds->listen), sw_cfg_str(cfg, "listen")) == -1 ||
	    ds->listen[0] == '\0') {
		sw_log_error(ds->name, "listen must be ip:port", NULL);
		goto fail;
	}
	if (copy_str(ds->health_listen, sizeof(ds->health_listen),
	    sw_cfg_str(cfg, "health_listen")) == -1) {
		sw_log_error(ds->name, "health_listen too long", NULL);
		goto fail;
	}
	if (pub != NULL && (copy_str(ds->public_address, sizeof(ds->public_address), pub) == -1 ||
	    !dmsg_entry_addr_ok(pub))) {
		sw_log_error(ds->name, "public_address must be host:port", NULL);
		goto fail;
	}
	if (disc != NULL) {
		size_t n = strlen(disc);

		while (n > 0 && disc[n - 1] == '/')
			n--;
		if (strncmp(disc, "http://", 7) != 0 ||
		    snprintf(ds->url, sizeof(ds->url), "%.*s" DD_PATH_ENTRY, (int)n, disc) >=
		    (int)sizeof(ds->url)) {
			sw_log_error(ds->name, "discovery must be an http:// URL", NULL);
			goto fail;
		}
	}
	if (max < 1 || max > 1000000 || hs < 1 || hs > 60000 || acc < 1 || acc > 600000) {
		sw_log_error(ds->name, "max_sessions, handshake_timeout_ms or accept_timeout_ms "
		    "out of range", NULL);
		goto fail;
	}
	ds->opts.max_sessions = (size_t)max;
	ds->opts.handshake_timeout_ms = (int)hs;
	ds->opts.accept_timeout_ms = (int)acc;
	if (sw_svc_keypair(svc, cfg, &ds->kp) == -1)
		goto fail;
	return ds;
fail:
	free(ds);
	return NULL;
}

/* ---------- registration in dmsg-discovery ---------- */

static void reg_send(struct ds *ds);

static void
reg_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reg_send(arg);
}

static void
reg_later(struct ds *ds, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!ds->stopping)
		evtimer_add(ds->reg_ev, &tv);
}

static void
reg_done(const struct sw_http_resp *resp, void *arg)
{
	struct ds *ds = arg;
	char q[128];
	long long retry;

	ds->in_flight = 0;
	if (ds->stopping)
		return;
	if (resp->status == 200) {
		if (ds->reg != REG_OK)
			sw_log_info(ds->name, "registered in discovery", "url=%s address=%s",
			    ds->url, ds->public_address);
		ds->reg = REG_OK;
		ds->registered_once = 1;
		sw_backoff_reset(&ds->backoff);
		reg_later(ds, DS_REGISTER_EVERY_MS);
		return;
	}
	ds->reg = REG_DOWN;
	/* Discovery starting beside us (compose starts all at once): retried quickly, quietly. */
	retry = ds->registered_once ? sw_backoff_next(&ds->backoff) :
	    sw_backoff_next_start(&ds->backoff, ds->start_ms);
	sw_log(retry < DS_BACKOFF_MIN_MS ? SW_LOG_DEBUG : SW_LOG_WARN, ds->name,
	    "discovery registration failed", "url=%s status=%d body=%s retry_ms=%lld", ds->url,
	    resp->status, sw_log_q(q, sizeof(q), resp->body != NULL ? resp->body : ""), retry);
	reg_later(ds, (int)retry);
}

static void
reg_send(struct ds *ds)
{
	struct dmsg_entry e;
	struct sw_http_opts o = {5000, 0, 0, NULL};
	cJSON *obj = NULL;
	char *body = NULL;
	size_t n = ds_relay_sessions(ds->relay), max = ds_relay_max_sessions(ds->relay);
	unsigned long long now_ms = (unsigned long long)time(NULL) * 1000ULL;

	if (ds->in_flight || ds->stopping)
		return;
	memset(&e, 0, sizeof(e));
	memcpy(e.pk, ds->kp.pk, SW_PK_LEN);
	/* Above anything an earlier run of this key posted, without keeping state. */
	ds->seq = ds->seq + 1 > now_ms ? ds->seq + 1 : now_ms;
	e.sequence = ds->seq;
	e.timestamp = (unsigned long long)time(NULL);
	e.has_server = 1;
	memcpy(e.address, ds->public_address, strlen(ds->public_address) + 1);
	e.available_sessions = n < max ? max - n : 0;
	if ((obj = dmsg_entry_to_json(&e, &ds->kp)) == NULL ||
	    (body = cJSON_PrintUnformatted(obj)) == NULL ||
	    sw_http_request(ds->client, "POST", ds->url, body, strlen(body), &o, reg_done,
	    ds) == -1) {
		sw_log_warn(ds->name, "cannot post the server entry", "url=%s", ds->url);
		ds->reg = REG_DOWN;
		reg_later(ds, DS_REGISTER_EVERY_MS);
		goto out;
	}
	ds->in_flight = 1;
out:
	cJSON_Delete(obj);
	free(body);
}

/* ---------- service operations ---------- */

static int
ds_start(void *priv)
{
	struct ds *ds = priv;
	struct event_base *base = sw_svc_base(ds->svc);
	const char *colon;

	ds->relay = ds_relay_new(base, ds->name, &ds->kp, &ds->opts, sw_svc_metrics(ds->svc));
	if (ds->relay == NULL || ds_relay_listen(ds->relay, ds->listen) == -1)
		return -1;
	if (ds->public_address[0] == '\0') {
		/* Advertise listen, with the real port when it was 0. */
		colon = strrchr(ds->listen, ':');
		snprintf(ds->public_address, sizeof(ds->public_address), "%.*s:%d",
		    (int)(colon - ds->listen), ds->listen, ds_relay_port(ds->relay));
	}
	if (ds->health_listen[0] != '\0') {
		ds->http = sw_http_server_new(base, ds->name, sw_svc_metrics(ds->svc));
		if (ds->http == NULL || sw_svc_http_attach(ds->svc, ds->http) == -1 ||
		    ds_api_routes(ds->http, ds->relay) == -1 ||
		    sw_http_server_listen(ds->http, ds->health_listen) == -1)
			return -1;
	}
	sw_log_info(ds->name, "listening", "addr=%s port=%d public_address=%s health=%s",
	    ds->listen, ds_relay_port(ds->relay), ds->public_address, ds->health_listen);
	if (ds->url[0] != '\0') {
		ds->client = sw_http_client_new(base, ds->name);
		ds->reg_ev = evtimer_new(base, reg_timer, ds);
		if (ds->client == NULL || ds->reg_ev == NULL)
			return -1;
		ds->reg = REG_PENDING;
		sw_backoff_init(&ds->backoff, DS_BACKOFF_MIN_MS, DS_REGISTER_EVERY_MS);
		ds->start_ms = sw_mono_ms();
		reg_send(ds);
	}
	return 0;
}

static void
ds_stop(void *priv, sw_svc_stopped *done)
{
	struct ds *ds = priv;

	ds->stopping = 1;
	ds_relay_stop_accepting(ds->relay);
	if (ds->reg_ev != NULL)
		event_del(ds->reg_ev);
	sw_svc_drain(ds->svc, done);
}

static int
ds_health(void *priv, cJSON *checks)
{
	struct ds *ds = priv;
	static const char *const reg_names[] = {"off", "pending", "ok", "down"};
	int up = ds->relay != NULL && ds_relay_port(ds->relay) > 0;

	cJSON_AddStringToObject(checks, "listener", up ? "ok" : "down");
	if (ds->url[0] != '\0')
		cJSON_AddStringToObject(checks, "discovery", reg_names[ds->reg]);
	return up;
}

static void
ds_destroy(void *priv)
{
	struct ds *ds = priv;

	ds->stopping = 1;
	sw_http_client_free(ds->client);
	if (ds->reg_ev != NULL)
		event_free(ds->reg_ev);
	sw_http_server_free(ds->http);
	ds_relay_free(ds->relay);
	sodium_memzero(&ds->kp, sizeof(ds->kp));
	free(ds);
}

static void
ds_gen_config(cJSON *inst)
{
	cJSON_AddStringToObject(inst, "listen", "127.0.0.1:8080");
	cJSON_AddStringToObject(inst, "health_listen", "127.0.0.1:8082");
	cJSON_AddStringToObject(inst, "discovery", "http://127.0.0.1:9090");
	sw_svc_gen_keys(inst);
}

static const char *const ds_deps[] = {"dmsg-discovery", NULL};

const struct sw_service_ops dmsg_server_ops = {
	.type = "dmsg-server",
	.summary = "dmsg relay: sessions and end-to-end encrypted streams",
	.keys = ds_keys,
	.deps = ds_deps,
	.uses_store = 0,
	.create = ds_create,
	.start = ds_start,
	.stop = ds_stop,
	.health = ds_health,
	.destroy = ds_destroy,
	.gen_config = ds_gen_config,
};
