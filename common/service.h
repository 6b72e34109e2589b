/*
 * service: the services framework (framework.md).
 *
 * A service type is a table of operations plus its config keys.  The
 * supervisor creates one instance per entry of a deployment, starts them in
 * dependency order on one event base (each after the services it depends on
 * report healthy), serves the shared /health, /metrics and /debug/services,
 * and stops them in reverse order on SIGTERM/SIGINT.  A single-service
 * executable is the same supervisor holding one instance.
 *
 * Nothing in a service calls exit, installs signal handlers or creates an
 * event base; it gets everything it may use through struct sw_svc.
 */
#ifndef SW_SERVICE_H
#define SW_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "crypto.h"

struct event_base;
struct sw_store;
struct sw_metrics;
struct sw_http_server;
struct sw_http_req;
struct sw_svc;
struct sw_supervisor;

/* A service calls this once its graceful stop is complete. */
typedef void sw_svc_stopped(struct sw_svc *svc);

struct sw_service_ops {
	const char *type;
	const char *summary;
	const struct sw_cfg_key *keys;
	/* Types this one depends on when they run in the same process. */
	const char *const *deps;
	/* Whether it uses the store (and so /health checks it). */
	int uses_store;
	/*
	 * Validate cfg (defaults, env and flags already applied) and allocate
	 * the instance.  No sockets yet.  NULL with a logged reason.
	 */
	void *(*create)(struct sw_svc *svc, const cJSON *cfg);
	/* Open listeners and timers on the shared base; non-blocking. 0 / -1. */
	int (*start)(void *priv);
	/* Stop accepting, finish or cut in-flight work, then call done(svc). */
	void (*stop)(void *priv, sw_svc_stopped *done);
	/* Add checks ("name":"ok"|"down"); return 1 if healthy. */
	int (*health)(void *priv, cJSON *checks);
	void (*destroy)(void *priv);
	/* Fill a fresh working instance config for gen-config (keys, ports). */
	void (*gen_config)(cJSON *inst);
	/*
	 * gen-config's second pass, once every instance is made: fill the
	 * keys that name other services of the deployment (their public keys,
	 * sw_svc_gen_link), so a generated deployment uses its feeds and dmsg
	 * sides as compose's does.  NULL: nothing to link.
	 */
	void (*gen_wire)(cJSON *inst, const cJSON *services);
};

/* What a service may use. */
const char *sw_svc_name(const struct sw_svc *svc);
struct event_base *sw_svc_base(const struct sw_svc *svc);
/* The store for this instance (shared per URL in a process); never NULL. */
struct sw_store *sw_svc_store(const struct sw_svc *svc);
struct sw_metrics *sw_svc_metrics(const struct sw_svc *svc);
/*
 * Serve /health and /metrics for this one service on its own HTTP server
 * (every service answers them on its own port, README.md of the spec).
 */
int sw_svc_http_attach(struct sw_svc *svc, struct sw_http_server *srv);
/*
 * In-flight requests and graceful stop.  A handler brackets the work of one
 * request with req_begin/req_end (begin answers 503 and returns -1 once the
 * service is stopping); stop() calls sw_svc_drain(), which calls done when
 * the last request in flight ends (at once if none).
 */
int sw_svc_req_begin(struct sw_svc *svc, struct sw_http_req *req);
void sw_svc_req_end(struct sw_svc *svc);
void sw_svc_drain(struct sw_svc *svc, sw_svc_stopped *done);
int sw_svc_stopping(const struct sw_svc *svc);

/*
 * A service's whole HTTP API in one call: its route table (handlers get
 * arg), GET /security/nonces/{pk} when auth is not NULL, and /health and
 * /metrics.
 */
struct sw_http_route_def;
struct sw_httpauth;
int sw_svc_api_attach(struct sw_svc *svc, struct sw_http_server *srv,
    const struct sw_http_route_def *defs, size_t n, void *arg, struct sw_httpauth *auth);
/* Add a fresh "public_key" and "secret_key" to a generated instance config. */
void sw_svc_gen_keys(cJSON *inst);
/*
 * Set inst's key to the public_key of the first instance of type in
 * services (a one-element array when list), unless inst already has a
 * non-empty value.  0, or -1 when no such instance has a key.
 */
int sw_svc_gen_link(cJSON *inst, const char *key, const cJSON *services, const char *type,
    int list);

/* The /health object of this service (status, service, version, uptime_s, checks). */
cJSON *sw_svc_health_json(struct sw_svc *svc, int *healthy);

/*
 * The process's one event base, tuned for servers (epoll's changelist saves
 * a system call per read toggle, which evhttp does on every request).
 */
struct event_base *sw_event_base_new(void);

/* Supervisor. */
struct sw_supervisor_opts {
	const char *health_addr; /* shared mux; NULL: none */
	int start_timeout_s;
	int stop_timeout_s;
};

struct sw_supervisor *sw_supervisor_new(struct event_base *base,
    const struct sw_supervisor_opts *opts);
void sw_supervisor_free(struct sw_supervisor *sup);
/*
 * Add an instance (cfg: the complete instance object, defaults applied; the
 * supervisor owns it from here on, also on failure).  name NULL: the type.  depends_on: extra instance names.  store_url:
 * NULL/"" for the embedded store.  -1 logged.
 */
struct sw_svc *sw_supervisor_add(struct sw_supervisor *sup, const struct sw_service_ops *ops,
    const char *name, cJSON *cfg, const char *store_url);
/* Order the instances; -1 with err on a cycle or unknown dependency. */
int sw_supervisor_plan(struct sw_supervisor *sup, char *err, size_t errlen);
void sw_supervisor_print_plan(struct sw_supervisor *sup, FILE *fp);
/*
 * Start everything (async, gated on health), install signal events, run the
 * loop until all services have stopped.  Returns the process exit code.
 */
int sw_supervisor_run(struct sw_supervisor *sup);
/* Begin the graceful stop, as SIGTERM does (for tests). */
void sw_supervisor_shutdown(struct sw_supervisor *sup);

/*
 * Loading deployments.  A deployment is {"log","store","health_addr",
 * "start_timeout_s","stop_timeout_s","services":[…]}; see framework.md.
 */
struct sw_registry {
	const struct sw_service_ops *const *types; /* NULL-terminated */
};
const struct sw_service_ops *sw_registry_find(const struct sw_registry *reg, const char *type);

/*
 * main() of a single-service executable and of skywire-svc.  They parse
 * flags, load and check the whole config, then run the supervisor.
 */
int sw_main_single(const struct sw_service_ops *ops, int argc, char **argv);
int sw_main_svc(const struct sw_registry *reg, int argc, char **argv);

/*
 * The instance's identity from "secret_key" (and "public_key", which must
 * match); when absent, a fresh pair is generated and its public key logged.
 * -1 logged on a bad key.
 */
int sw_svc_keypair(struct sw_svc *svc, const cJSON *cfg, struct sw_keypair *kp);

#endif
