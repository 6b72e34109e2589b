/*
 * service: the supervisor.  See service.h.
 *
 * Start-up is a small state machine driven by one periodic timer: every
 * tick, each instance whose dependencies are all running is started, and
 * each started instance that reports healthy becomes running.  Stopping is
 * the reverse walk, one instance at a time, each bounded by stop_timeout_s.
 * Signals are libevent events, so nothing runs in signal context.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>
#include <event2/buffer.h>

#include "clock.h"
#include "http.h"
#include "httpauth.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "store.h"

#define SUP_NAME      "supervisor"
#define SUP_TICK_MS   10
#define SVC_NAME_MAX  64
#define SVC_MAX       64

enum svc_state {
	SVC_NEW = 0,
	SVC_STARTING, /* start() returned, waiting to report healthy */
	SVC_RUNNING,
	SVC_FAILED,
	SVC_STOPPING,
	SVC_STOPPED,
};

static const char *const state_names[] = {"new", "starting", "running", "failed", "stopping",
    "stopped"};

struct sw_svc {
	struct sw_supervisor *sup;
	const struct sw_service_ops *ops;
	char name[SVC_NAME_MAX];
	cJSON *cfg;
	struct sw_store *store;
	struct sw_metrics *metrics;
	struct sw_metric *m_up;
	struct sw_metric *m_store_up;
	struct sw_metric *m_store_err;
	unsigned long long store_err_seen;
	void *priv;
	enum svc_state state;
	time_t since;          /* wall clock of the last state change */
	time_t started_at;     /* wall clock of the last start, 0 before */
	long long begun;   /* sw_mono_ms at start, for uptime */
	long long waiting; /* sw_mono_ms: when it began waiting for deps */
	int restarts;
	unsigned inflight;
	int draining;
	sw_svc_stopped *drained;
	size_t deps[SVC_MAX];
	size_t ndeps;
	struct event *stop_timer;
};

struct store_ref {
	char *url;
	struct sw_store *store;
};

struct sw_supervisor {
	struct event_base *base;
	struct sw_supervisor_opts opts;
	struct sw_svc *svcs[SVC_MAX];
	size_t n;
	size_t order[SVC_MAX];
	int planned;
	struct store_ref stores[SVC_MAX];
	size_t nstores;
	struct sw_http_server *mux;
	struct sw_metrics *metrics;
	struct event *tick;
	struct event *step; /* deferred stop step */
	struct event *sigs[3];
	long long begun;
	int started_all;
	int stopping;
	size_t stop_pos; /* index into order, counting down */
	int exit_code;
};

/* Seconds since a sw_mono_ms() reading. */
static double
mono_since(long long t_ms)
{
	return (double)(sw_mono_ms() - t_ms) / 1e3;
}

static void
set_state(struct sw_svc *svc, enum svc_state st)
{
	svc->state = st;
	svc->since = time(NULL);
}

const char *
sw_svc_name(const struct sw_svc *svc)
{
	return svc->name;
}

struct event_base *
sw_svc_base(const struct sw_svc *svc)
{
	return svc->sup->base;
}

struct sw_store *
sw_svc_store(const struct sw_svc *svc)
{
	return svc->store;
}

struct sw_metrics *
sw_svc_metrics(const struct sw_svc *svc)
{
	return svc->metrics;
}

/* The store gauges are read at render time, so /metrics never lags. */
static void
svc_update_gauges(struct sw_svc *svc, int healthy)
{
	unsigned long long e;

	sw_metric_set(svc->m_up, NULL, healthy ? 1 : 0);
	if (!svc->ops->uses_store)
		return;
	sw_metric_set(svc->m_store_up, NULL, sw_store_up(svc->store) ? 1 : 0);
	e = sw_store_errors(svc->store);
	if (e > svc->store_err_seen) {
		sw_metric_add(svc->m_store_err, NULL, (double)(e - svc->store_err_seen));
		svc->store_err_seen = e;
	}
}

static int
svc_healthy(struct sw_svc *svc, cJSON *checks)
{
	int ok = 1;

	if (svc->ops->uses_store) {
		int up = sw_store_up(svc->store);

		if (checks != NULL)
			cJSON_AddStringToObject(checks, "store", up ? "ok" : "down");
		ok = up;
	}
	if (svc->priv != NULL && svc->ops->health != NULL &&
	    (svc->state == SVC_STARTING || svc->state == SVC_RUNNING)) {
		cJSON *scratch = checks != NULL ? checks : cJSON_CreateObject();

		if (!svc->ops->health(svc->priv, scratch))
			ok = 0;
		if (checks == NULL)
			cJSON_Delete(scratch);
	}
	if (svc->state != SVC_RUNNING && svc->state != SVC_STARTING)
		ok = 0;
	return ok;
}

cJSON *
sw_svc_health_json(struct sw_svc *svc, int *healthy)
{
	cJSON *o = cJSON_CreateObject(), *checks = cJSON_CreateObject();
	int ok;

	ok = svc_healthy(svc, checks);
	cJSON_AddStringToObject(o, "status",
	    ok ? "ok" : (svc->state == SVC_RUNNING || svc->state == SVC_STARTING ? "degraded" :
	    state_names[svc->state]));
	cJSON_AddStringToObject(o, "service", svc->name);
	cJSON_AddStringToObject(o, "version", SW_VERSION);
	cJSON_AddNumberToObject(o, "uptime_s", (double)(long long)mono_since(svc->begun));
	cJSON_AddItemToObject(o, "checks", checks);
	svc_update_gauges(svc, ok);
	if (healthy != NULL)
		*healthy = ok;
	return o;
}

static void
svc_health_route(struct sw_http_req *req, void *arg)
{
	struct sw_svc *svc = arg;
	int ok;
	cJSON *o = sw_svc_health_json(svc, &ok);

	sw_http_reply_json(req, ok ? 200 : 503, o);
	cJSON_Delete(o);
}

static void
svc_metrics_route(struct sw_http_req *req, void *arg)
{
	struct sw_svc *svc = arg;
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		sw_http_error(req, 500, "out of memory");
		return;
	}
	svc_update_gauges(svc, svc_healthy(svc, NULL));
	sw_metrics_render(svc->metrics, b);
	sw_http_reply_buf(req, 200, "text/plain; version=0.0.4", b);
	evbuffer_free(b);
}

int
sw_svc_req_begin(struct sw_svc *svc, struct sw_http_req *req)
{
	if (svc->draining) {
		sw_http_error(req, 503, "shutting down");
		return -1;
	}
	svc->inflight++;
	return 0;
}

void
sw_svc_req_end(struct sw_svc *svc)
{
	if (svc->inflight > 0)
		svc->inflight--;
	if (svc->draining && svc->inflight == 0 && svc->drained != NULL) {
		sw_svc_stopped *done = svc->drained;

		svc->drained = NULL;
		done(svc);
	}
}

void
sw_svc_drain(struct sw_svc *svc, sw_svc_stopped *done)
{
	svc->draining = 1;
	if (svc->inflight == 0) {
		done(svc);
		return;
	}
	svc->drained = done;
}

int
sw_svc_stopping(const struct sw_svc *svc)
{
	return svc->draining;
}

int
sw_svc_keypair(struct sw_svc *svc, const cJSON *cfg, struct sw_keypair *kp)
{
	const char *sk = sw_cfg_str(cfg, "secret_key"), *pk = sw_cfg_str(cfg, "public_key");
	char err[128], hex[SW_PK_HEX];

	if (sk == NULL) {
		if (pk != NULL) {
			sw_log_error(svc->name, "public_key given without secret_key", NULL);
			return -1;
		}
		sw_keypair_generate(kp);
		sw_hex_encode(hex, kp->pk, SW_PK_LEN);
		sw_log_info(svc->name, "no secret_key configured, generated a key pair",
		    "public_key=%s", hex);
		return 0;
	}
	if (sw_keypair_from_hex(kp, sk, pk, err, sizeof(err)) == -1) {
		sw_log_error(svc->name, err, NULL);
		return -1;
	}
	return 0;
}

int
sw_svc_api_attach(struct sw_svc *svc, struct sw_http_server *srv,
    const struct sw_http_route_def *defs, size_t n, void *arg, struct sw_httpauth *auth)
{
	if (sw_http_routes(srv, defs, n, arg) == -1)
		return -1;
	if (auth != NULL && sw_httpauth_routes(srv, auth) == -1)
		return -1;
	return sw_svc_http_attach(svc, srv);
}

void
sw_svc_gen_keys(cJSON *inst)
{
	struct sw_keypair kp;
	char hex[SW_PK_HEX];

	sw_keypair_generate(&kp);
	sw_hex_encode(hex, kp.pk, SW_PK_LEN);
	cJSON_AddStringToObject(inst, "public_key", hex);
	sw_keypair_seed_hex(&kp, hex);
	cJSON_AddStringToObject(inst, "secret_key", hex);
	sodium_memzero(&kp, sizeof(kp));
	sodium_memzero(hex, sizeof(hex));
}

int
sw_svc_gen_link(cJSON *inst, const char *key, const cJSON *services, const char *type, int list)
{
	const cJSON *s, *t, *pk, *have = cJSON_GetObjectItemCaseSensitive(inst, key);

	if (have != NULL && !(cJSON_IsArray(have) && cJSON_GetArraySize(have) == 0))
		return 0;
	cJSON_ArrayForEach(s, services) {
		t = cJSON_GetObjectItemCaseSensitive(s, "type");
		pk = cJSON_GetObjectItemCaseSensitive(s, "public_key");
		if (!cJSON_IsString(t) || strcmp(t->valuestring, type) != 0 || !cJSON_IsString(pk))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(inst, key);
		if (list) {
			cJSON *a = cJSON_AddArrayToObject(inst, key);

			cJSON_AddItemToArray(a, cJSON_CreateString(pk->valuestring));
		} else {
			cJSON_AddStringToObject(inst, key, pk->valuestring);
		}
		return 0;
	}
	return -1;
}

int
sw_svc_http_attach(struct sw_svc *svc, struct sw_http_server *srv)
{
	if (sw_http_route(srv, "GET", "/health", svc_health_route, svc) == -1 ||
	    sw_http_route(srv, "GET", "/metrics", svc_metrics_route, svc) == -1)
		return -1;
	return 0;
}

/* The supervisor's shared mux. */

static void
mux_health(struct sw_http_req *req, void *arg)
{
	struct sw_supervisor *sup = arg;
	cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
	int all = 1;

	for (size_t i = 0; i < sup->n; i++) {
		int ok;

		cJSON_AddItemToArray(list, sw_svc_health_json(sup->svcs[i], &ok));
		all &= ok;
	}
	cJSON_AddStringToObject(o, "status", all ? "ok" : "degraded");
	cJSON_AddStringToObject(o, "service", "skywire-svc");
	cJSON_AddStringToObject(o, "version", SW_VERSION);
	cJSON_AddNumberToObject(o, "uptime_s", (double)(long long)mono_since(sup->begun));
	cJSON_AddItemToObject(o, "services", list);
	sw_http_reply_json(req, all ? 200 : 503, o);
	cJSON_Delete(o);
}

static void
mux_metrics(struct sw_http_req *req, void *arg)
{
	struct sw_supervisor *sup = arg;
	const struct sw_metrics *ms[SVC_MAX + 1];
	struct evbuffer *b = evbuffer_new();
	size_t n = 0;

	if (b == NULL) {
		sw_http_error(req, 500, "out of memory");
		return;
	}
	for (size_t i = 0; i < sup->n; i++) {
		svc_update_gauges(sup->svcs[i], svc_healthy(sup->svcs[i], NULL));
		ms[n++] = sup->svcs[i]->metrics;
	}
	ms[n++] = sup->metrics;
	sw_metrics_render_many(ms, n, b);
	sw_http_reply_buf(req, 200, "text/plain; version=0.0.4", b);
	evbuffer_free(b);
}

static void
mux_debug(struct sw_http_req *req, void *arg)
{
	struct sw_supervisor *sup = arg;
	cJSON *list = cJSON_CreateArray();

	for (size_t k = 0; k < sup->n; k++) {
		struct sw_svc *svc = sup->svcs[sup->planned ? sup->order[k] : k];
		cJSON *o = cJSON_CreateObject(), *deps = cJSON_CreateArray();

		cJSON_AddStringToObject(o, "name", svc->name);
		cJSON_AddStringToObject(o, "type", svc->ops->type);
		cJSON_AddStringToObject(o, "state", state_names[svc->state]);
		cJSON_AddNumberToObject(o, "since", (double)svc->since);
		cJSON_AddNumberToObject(o, "started", (double)svc->started_at);
		cJSON_AddNumberToObject(o, "restarts", svc->restarts);
		for (size_t d = 0; d < svc->ndeps; d++)
			cJSON_AddItemToArray(deps,
			    cJSON_CreateString(sup->svcs[svc->deps[d]]->name));
		cJSON_AddItemToObject(o, "depends_on", deps);
		cJSON_AddItemToArray(list, o);
	}
	sw_http_reply_json(req, 200, list);
	cJSON_Delete(list);
}

struct event_base *
sw_event_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

struct sw_supervisor *
sw_supervisor_new(struct event_base *base, const struct sw_supervisor_opts *opts)
{
	struct sw_supervisor *sup = calloc(1, sizeof(*sup));

	if (sup == NULL)
		return NULL;
	sup->base = base;
	if (opts != NULL)
		sup->opts = *opts;
	if (sup->opts.start_timeout_s <= 0)
		sup->opts.start_timeout_s = 10;
	if (sup->opts.stop_timeout_s <= 0)
		sup->opts.stop_timeout_s = 10;
	sup->metrics = sw_metrics_new("supervisor");
	if (sup->metrics == NULL) {
		free(sup);
		return NULL;
	}
	sup->begun = sw_mono_ms();
	return sup;
}

static struct sw_store *
store_for(struct sw_supervisor *sup, const char *url)
{
	const char *key = url != NULL ? url : "";
	struct store_ref *r;

	for (size_t i = 0; i < sup->nstores; i++)
		if (strcmp(sup->stores[i].url, key) == 0)
			return sup->stores[i].store;
	if (sup->nstores == SVC_MAX)
		return NULL;
	r = &sup->stores[sup->nstores];
	r->url = strdup(key);
	if (r->url == NULL)
		return NULL;
	r->store = sw_store_new(sup->base, key[0] != '\0' ? key : NULL, SUP_NAME);
	if (r->store == NULL) {
		free(r->url);
		return NULL;
	}
	sup->nstores++;
	return r->store;
}

struct sw_svc *
sw_supervisor_add(struct sw_supervisor *sup, const struct sw_service_ops *ops, const char *name,
    cJSON *cfg, const char *store_url)
{
	struct sw_svc *svc = NULL;

	if (sup->n == SVC_MAX) {
		sw_log_error(SUP_NAME, "too many services", "max=%d", SVC_MAX);
		goto fail;
	}
	if (name == NULL)
		name = ops->type;
	if (strlen(name) >= SVC_NAME_MAX || name[0] == '\0') {
		sw_log_error(SUP_NAME, "bad service name", "type=%s", ops->type);
		goto fail;
	}
	for (size_t i = 0; i < sup->n; i++)
		if (strcmp(sup->svcs[i]->name, name) == 0) {
			sw_log_error(SUP_NAME, "duplicate service name", "name=%s", name);
			goto fail;
		}
	svc = calloc(1, sizeof(*svc));
	if (svc == NULL)
		goto fail;
	svc->sup = sup;
	svc->ops = ops;
	memcpy(svc->name, name, strlen(name) + 1);
	svc->cfg = cfg;
	svc->since = time(NULL);
	svc->metrics = sw_metrics_new(svc->name);
	if (svc->metrics == NULL)
		goto fail;
	svc->m_up = sw_metric_new(svc->metrics, "sw_service_up",
	    "1 when the service reports healthy", SW_GAUGE, NULL, NULL, 0);
	if (ops->uses_store) {
		svc->store = store_for(sup, store_url);
		if (svc->store == NULL) {
			sw_log_error(svc->name, "cannot set up the store", NULL);
			goto fail;
		}
		svc->m_store_up = sw_metric_new(svc->metrics, "sw_store_up",
		    "1 when the store is reachable", SW_GAUGE, NULL, NULL, 0);
		svc->m_store_err = sw_metric_new(svc->metrics, "sw_store_errors_total",
		    "store calls that failed", SW_COUNTER, NULL, NULL, 0);
	}
	svc->priv = ops->create(svc, cfg);
	if (svc->priv == NULL)
		goto fail;
	sup->svcs[sup->n++] = svc;
	sup->planned = 0;
	return svc;
fail:
	if (svc != NULL) {
		sw_metrics_free(svc->metrics);
		free(svc);
	}
	cJSON_Delete(cfg);
	return NULL;
}

static int
find_svc(struct sw_supervisor *sup, const char *name, size_t *idx)
{
	for (size_t i = 0; i < sup->n; i++)
		if (strcmp(sup->svcs[i]->name, name) == 0) {
			*idx = i;
			return 0;
		}
	return -1;
}

static int
add_dep(struct sw_svc *svc, size_t d)
{
	for (size_t k = 0; k < svc->ndeps; k++)
		if (svc->deps[k] == d)
			return 0;
	if (svc->ndeps == SVC_MAX)
		return -1;
	svc->deps[svc->ndeps++] = d;
	return 0;
}

/*
 * Dependencies are the instance's explicit "depends_on" names plus every
 * instance, in this process, of a type its service type depends on.  A type
 * dependency that does not run here is reached over the network instead.
 */
static int
resolve_deps(struct sw_supervisor *sup, struct sw_svc *svc, char *err, size_t errlen)
{
	const cJSON *dn = cJSON_GetObjectItemCaseSensitive(svc->cfg, "depends_on"), *e;
	size_t idx;

	svc->ndeps = 0;
	cJSON_ArrayForEach(e, dn)
	{
		if (!cJSON_IsString(e) || find_svc(sup, e->valuestring, &idx) == -1) {
			snprintf(err, errlen, "service %s depends on unknown service \"%s\"",
			    svc->name, cJSON_IsString(e) ? e->valuestring : "?");
			return -1;
		}
		if (add_dep(svc, idx) == -1)
			return -1;
	}
	for (const char *const *t = svc->ops->deps; t != NULL && *t != NULL; t++)
		for (size_t i = 0; i < sup->n; i++)
			if (strcmp(sup->svcs[i]->ops->type, *t) == 0 && sup->svcs[i] != svc &&
			    add_dep(svc, i) == -1)
				return -1;
	return 0;
}

/* Kahn's algorithm, taking the lowest index first so the order is stable. */
int
sw_supervisor_plan(struct sw_supervisor *sup, char *err, size_t errlen)
{
	int placed[SVC_MAX] = {0};
	size_t k = 0;

	for (size_t i = 0; i < sup->n; i++)
		if (resolve_deps(sup, sup->svcs[i], err, errlen) == -1)
			return -1;
	while (k < sup->n) {
		int progress = 0;

		for (size_t i = 0; i < sup->n; i++) {
			int ready = !placed[i];

			for (size_t d = 0; ready && d < sup->svcs[i]->ndeps; d++)
				if (!placed[sup->svcs[i]->deps[d]])
					ready = 0;
			if (!ready)
				continue;
			placed[i] = 1;
			sup->order[k++] = i;
			progress = 1;
			break;
		}
		if (!progress) {
			size_t o = 0;

			o += (size_t)snprintf(err, errlen, "dependency cycle among:");
			for (size_t i = 0; i < sup->n && o < errlen; i++)
				if (!placed[i])
					o += (size_t)snprintf(err + o, errlen - o, " %s",
					    sup->svcs[i]->name);
			return -1;
		}
	}
	sup->planned = 1;
	return 0;
}

void
sw_supervisor_print_plan(struct sw_supervisor *sup, FILE *fp)
{
	for (size_t k = 0; k < sup->n; k++) {
		struct sw_svc *svc = sup->svcs[sup->order[k]];
		const char *listen = sw_cfg_str(svc->cfg, "listen");

		fprintf(fp, "%zu. %s (%s)", k + 1, svc->name, svc->ops->type);
		if (listen != NULL)
			fprintf(fp, " listen %s", listen);
		if (svc->ndeps > 0) {
			fprintf(fp, " after");
			for (size_t d = 0; d < svc->ndeps; d++)
				fprintf(fp, " %s", sup->svcs[svc->deps[d]]->name);
		}
		fprintf(fp, "\n");
	}
}

static void begin_stop(struct sw_supervisor *sup, int code);

static void
start_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sw_supervisor *sup = arg;
	int all = 1;

	(void)fd;
	(void)what;
	if (sup->stopping)
		return;
	for (size_t k = 0; k < sup->n; k++) {
		struct sw_svc *svc = sup->svcs[sup->order[k]];

		if (svc->state == SVC_NEW) {
			int ready = 1;
			const char *waiting_for = NULL;

			for (size_t d = 0; d < svc->ndeps; d++)
				if (sup->svcs[svc->deps[d]]->state != SVC_RUNNING) {
					ready = 0;
					waiting_for = sup->svcs[svc->deps[d]]->name;
				}
			if (!ready) {
				all = 0;
				if (mono_since(svc->waiting) > sup->opts.start_timeout_s) {
					sw_log_error(SUP_NAME, "dependency not ready",
					    "service=%s dependency=%s timeout_s=%d", svc->name,
					    waiting_for, sup->opts.start_timeout_s);
					begin_stop(sup, 1);
					return;
				}
				continue;
			}
			svc->begun = sw_mono_ms();
			svc->waiting = sw_mono_ms();
			svc->started_at = time(NULL);
			set_state(svc, SVC_STARTING);
			if (svc->ops->start(svc->priv) == -1) {
				sw_log_error(SUP_NAME, "service failed to start", "service=%s",
				    svc->name);
				set_state(svc, SVC_FAILED);
				begin_stop(sup, 1);
				return;
			}
		}
		if (svc->state == SVC_STARTING) {
			if (svc_healthy(svc, NULL)) {
				set_state(svc, SVC_RUNNING);
				sw_log_info(svc->name, "started", "ms=%.1f",
				    mono_since(svc->begun) * 1000);
			} else {
				all = 0;
				if (mono_since(svc->waiting) > sup->opts.start_timeout_s) {
					/* Logged once per timeout, then it keeps trying. */
					svc->waiting = sw_mono_ms();
					sw_log_warn(SUP_NAME, "service not healthy yet",
					    "service=%s", svc->name);
				}
			}
		}
	}
	if (all && !sup->started_all) {
		sup->started_all = 1;
		sw_log_info(SUP_NAME, "all services running", "services=%zu ms=%.1f", sup->n,
		    mono_since(sup->begun) * 1000);
		event_del(sup->tick);
	}
}

static void stop_step(evutil_socket_t fd, short what, void *arg);

static void
schedule_step(struct sw_supervisor *sup)
{
	event_active(sup->step, EV_TIMEOUT, 0);
}

static void
svc_stopped(struct sw_svc *svc)
{
	if (svc->state != SVC_STOPPING)
		return; /* late call after a stop timeout */
	event_del(svc->stop_timer);
	set_state(svc, SVC_STOPPED);
	sw_log_info(svc->name, "stopped", NULL);
	schedule_step(svc->sup);
}

static void
stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sw_svc *svc = arg;

	(void)fd;
	(void)what;
	sw_log_warn(svc->name, "stop timed out", "timeout_s=%d", svc->sup->opts.stop_timeout_s);
	set_state(svc, SVC_STOPPED);
	svc->sup->exit_code = svc->sup->exit_code ? svc->sup->exit_code : 1;
	schedule_step(svc->sup);
}

/* Stop the next running instance in reverse start order, or finish. */
static void
stop_step(evutil_socket_t fd, short what, void *arg)
{
	struct sw_supervisor *sup = arg;

	(void)fd;
	(void)what;
	while (sup->stop_pos > 0) {
		struct sw_svc *svc = sup->svcs[sup->order[sup->stop_pos - 1]];
		if (svc->state == SVC_STOPPING)
			return; /* still waiting for it */
		if (svc->state != SVC_STARTING && svc->state != SVC_RUNNING &&
		    svc->state != SVC_FAILED) {
			sup->stop_pos--;
			continue;
		}
		set_state(svc, SVC_STOPPING);
		sw_log_info(svc->name, "stopping", NULL);
		sw_timer_in(svc->stop_timer, (long long)sup->opts.stop_timeout_s * 1000);
		svc->ops->stop(svc->priv, svc_stopped);
		return;
	}
	sw_log_info(SUP_NAME, "all services stopped", "exit=%d", sup->exit_code);
	event_base_loopexit(sup->base, NULL);
}

static void
begin_stop(struct sw_supervisor *sup, int code)
{
	if (sup->stopping)
		return;
	sup->stopping = 1;
	sup->exit_code = code;
	sup->stop_pos = sup->n;
	if (sup->tick != NULL)
		event_del(sup->tick);
	schedule_step(sup);
}

void
sw_supervisor_shutdown(struct sw_supervisor *sup)
{
	begin_stop(sup, 0);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sw_supervisor *sup = arg;

	(void)what;
	if (sig == SIGHUP) {
		if (sw_log_reopen() == -1)
			sw_log_warn(SUP_NAME, "cannot reopen the log file", NULL);
		else
			sw_log_info(SUP_NAME, "log reopened", NULL);
		return;
	}
	if (sup->stopping) {
		sw_log_warn(SUP_NAME, "second signal, exiting now", "signal=%d", (int)sig);
		_exit(1);
	}
	sw_log_info(SUP_NAME, "shutting down", "signal=%d", (int)sig);
	begin_stop(sup, 0);
}

int
sw_supervisor_run(struct sw_supervisor *sup)
{
	static const int signals[3] = {SIGTERM, SIGINT, SIGHUP};
	struct timeval tick = {0, SUP_TICK_MS * 1000};
	char err[256];

	if (!sup->planned && sw_supervisor_plan(sup, err, sizeof(err)) == -1) {
		sw_log_error(SUP_NAME, err, NULL);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 3; i++) {
		sup->sigs[i] = evsignal_new(sup->base, signals[i], on_signal, sup);
		if (sup->sigs[i] == NULL || event_add(sup->sigs[i], NULL) == -1)
			return 1;
	}
	sup->step = event_new(sup->base, -1, 0, stop_step, sup);
	sup->tick = event_new(sup->base, -1, EV_PERSIST, start_tick, sup);
	if (sup->step == NULL || sup->tick == NULL)
		return 1;
	for (size_t i = 0; i < sup->n; i++) {
		sup->svcs[i]->stop_timer = evtimer_new(sup->base, stop_timeout, sup->svcs[i]);
		if (sup->svcs[i]->stop_timer == NULL)
			return 1;
		sup->svcs[i]->waiting = sw_mono_ms();
	}
	if (sup->opts.health_addr != NULL && sup->opts.health_addr[0] != '\0') {
		sup->mux = sw_http_server_new(sup->base, SUP_NAME, sup->metrics);
		if (sup->mux == NULL ||
		    sw_http_route(sup->mux, "GET", "/health", mux_health, sup) == -1 ||
		    sw_http_route(sup->mux, "GET", "/metrics", mux_metrics, sup) == -1 ||
		    sw_http_route(sup->mux, "GET", "/debug/services", mux_debug, sup) == -1 ||
		    sw_http_server_listen(sup->mux, sup->opts.health_addr) == -1) {
			sw_log_error(SUP_NAME, "cannot serve the health mux", "addr=%s",
			    sup->opts.health_addr);
			return 1;
		}
		sw_log_info(SUP_NAME, "health mux listening", "addr=%s", sup->opts.health_addr);
	}
	event_add(sup->tick, &tick);
	start_tick(-1, 0, sup);
	event_base_dispatch(sup->base);
	return sup->exit_code;
}

void
sw_supervisor_free(struct sw_supervisor *sup)
{
	if (sup == NULL)
		return;
	/*
	 * Stores first: freeing one calls its pending callbacks (with DOWN), and
	 * those belong to services that must still exist to receive them.
	 */
	for (size_t i = 0; i < sup->nstores; i++) {
		sw_store_free(sup->stores[i].store);
		free(sup->stores[i].url);
	}
	for (size_t i = sup->n; i > 0; i--) {
		struct sw_svc *svc = sup->svcs[i - 1];

		if (svc->ops->destroy != NULL && svc->priv != NULL)
			svc->ops->destroy(svc->priv);
		if (svc->stop_timer != NULL)
			event_free(svc->stop_timer);
		sw_metrics_free(svc->metrics);
		cJSON_Delete(svc->cfg);
		free(svc);
	}
	sw_http_server_free(sup->mux);
	for (int i = 0; i < 3; i++)
		if (sup->sigs[i] != NULL)
			event_free(sup->sigs[i]);
	if (sup->tick != NULL)
		event_free(sup->tick);
	if (sup->step != NULL)
		event_free(sup->step);
	sw_metrics_free(sup->metrics);
	free(sup);
}

const struct sw_service_ops *
sw_registry_find(const struct sw_registry *reg, const char *type)
{
	for (const struct sw_service_ops *const *t = reg->types; *t != NULL; t++)
		if (strcmp((*t)->type, type) == 0)
			return *t;
	return NULL;
}
