/*
 * svc_main: the command lines of the daemons and of skywire-svc.
 *
 * Both follow the same fixed order (OpenSMTPD's smtpd.c): parse flags, load
 * and check the whole configuration (file < SKYWIRE_* env < flags), print
 * "configuration OK" for a check, and only then hand the instances to the
 * supervisor, which opens sockets and runs the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "crypto.h"
#include "log.h"
#include "service.h"

#define MAIN_NAME "skywire"
#define MAX_FLAGS 64

/* Keys every deployment may have at the top level. */
static const struct sw_cfg_key deploy_keys[] = {
	{"log", SW_CFG_OBJ, NULL, "{\"level\":\"info\",\"format\":\"text\",\"file\":…}"},
	{"store", SW_CFG_OBJ, NULL, "{\"redis\":\"redis://host:port/db\"}; omit for memory"},
	{"health_addr", SW_CFG_STR, NULL, "shared /health /metrics /debug/services address"},
	{"start_timeout_s", SW_CFG_INT, "10", "how long a service may wait for its deps"},
	{"stop_timeout_s", SW_CFG_INT, "10", "how long a service may take to stop"},
	{"services", SW_CFG_OBJ, NULL, "the service instances"},
	{NULL, 0, NULL, NULL},
};

/* Global settings, also as flags and env on every executable. */
static const struct sw_cfg_key global_flags[] = {
	{"log_level", SW_CFG_STR, NULL, "debug, info, warn or error"},
	{"log_format", SW_CFG_STR, NULL, "text or json"},
	{"log_file", SW_CFG_STR, NULL, "log to this file instead of stderr (reopened on SIGHUP)"},
	{"redis", SW_CFG_STR, NULL, "redis URL (store.redis); empty for the embedded store"},
	{"health_addr", SW_CFG_STR, NULL, "shared health/metrics address"},
	{"start_timeout_s", SW_CFG_INT, NULL, "start timeout per service"},
	{"stop_timeout_s", SW_CFG_INT, NULL, "stop timeout per service"},
	{NULL, 0, NULL, NULL},
};

static const char *const instance_extra[] = {"type", "name", "depends_on", "store", NULL};
static const char *const single_extra[] = {"type", "name", "depends_on", "store", "log",
    "health_addr", "start_timeout_s", "stop_timeout_s", NULL};

struct flag {
	char name[128]; /* without dashes, '_' written '-' */
	const char *value;
};

struct cli {
	const char *config;
	const char *name;
	const char *only;
	const char *out;
	int check;
	int single; /* a single-service executable */
	int redis_given; /* --redis or SKYWIRE_REDIS: beats every file's store.redis */
	struct flag flags[MAX_FLAGS];
	size_t nflags;
	cJSON *globals; /* log_level, log_format, log_file, redis, health_addr, … */
};

static void
die(const char *msg)
{
	sw_log_error(MAIN_NAME, msg, NULL);
	exit(1);
}

/*
 * Collect "--key value" and "--key=value" pairs; framework flags are taken
 * here, the rest is checked against the key tables later.
 */
static int
parse_args(struct cli *c, int argc, char **argv, int first, const struct sw_cfg_key *keys,
    char *err, size_t errlen)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *v = NULL, *eq;
		char name[128];
		size_t n;

		if (a[0] != '-') {
			snprintf(err, errlen, "unexpected argument \"%s\"", a);
			return -1;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", a);
				return -1;
			}
			if (a[1] == 'c')
				c->config = argv[++i];
			else
				c->out = argv[++i];
			continue;
		}
		if (strcmp(a, "-n") == 0) {
			c->check = 1;
			continue;
		}
		while (*a == '-')
			a++;
		eq = strchr(a, '=');
		n = eq != NULL ? (size_t)(eq - a) : strlen(a);
		if (n == 0 || n >= sizeof(name)) {
			snprintf(err, errlen, "bad flag \"%s\"", argv[i]);
			return -1;
		}
		memcpy(name, a, n);
		name[n] = '\0';
		for (size_t k = 0; k < n; k++)
			if (name[k] == '_')
				name[k] = '-';
		if (strcmp(name, "check") == 0) {
			c->check = 1;
			continue;
		}
		if (eq != NULL)
			v = eq + 1;
		else {
			const struct sw_cfg_key *k = sw_cfg_key_for_flag(keys, name);

			/* A bare boolean flag means true. */
			if (k != NULL && k->type == SW_CFG_BOOL &&
			    (i + 1 >= argc || argv[i + 1][0] == '-'))
				v = "true";
			else if (i + 1 < argc)
				v = argv[++i];
			else {
				snprintf(err, errlen, "--%s needs a value", name);
				return -1;
			}
		}
		if (strcmp(name, "config") == 0)
			c->config = v;
		else if (strcmp(name, "name") == 0)
			c->name = v;
		else if (strcmp(name, "only") == 0)
			c->only = v;
		else if (strcmp(name, "output") == 0)
			c->out = v;
		else {
			if (c->nflags == MAX_FLAGS) {
				snprintf(err, errlen, "too many flags");
				return -1;
			}
			memcpy(c->flags[c->nflags].name, name, n + 1);
			c->flags[c->nflags].value = v;
			c->nflags++;
		}
	}
	return 0;
}

static void
flag_key(const struct flag *f, char *out, size_t size)
{
	snprintf(out, size, "%s", f->name);
}

/*
 * Apply flags whose key is in keys; with strict, a flag found in neither keys
 * nor the global flags is an error.
 */
static int
apply_flags(struct cli *c, cJSON *obj, const struct sw_cfg_key *keys, int strict, char *err,
    size_t errlen)
{
	for (size_t i = 0; i < c->nflags; i++) {
		char name[128];
		const struct sw_cfg_key *k;

		flag_key(&c->flags[i], name, sizeof(name));
		k = sw_cfg_key_for_flag(keys, name);
		if (k == NULL) {
			if (strict && sw_cfg_key_for_flag(global_flags, name) == NULL) {
				snprintf(err, errlen, "unknown flag --%s", name);
				return -1;
			}
			continue;
		}
		if (sw_cfg_set_text(obj, k, c->flags[i].value, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* Globals: deployment file < env < flags, flattened into c->globals. */
static int
load_globals(struct cli *c, const cJSON *file, char *err, size_t errlen)
{
	const cJSON *log = cJSON_GetObjectItemCaseSensitive(file, "log");
	const cJSON *store = cJSON_GetObjectItemCaseSensitive(file, "store");
	const cJSON *v;
	static const char *const log_keys[] = {"level", "format", "file", NULL};
	static const char *const plain[] = {"health_addr", "start_timeout_s", "stop_timeout_s",
	    NULL};

	c->globals = cJSON_CreateObject();
	if (log != NULL) {
		if (!cJSON_IsObject(log)) {
			snprintf(err, errlen, "%s: \"log\" must be an object", c->config);
			return -1;
		}
		cJSON_ArrayForEach(v, log)
		{
			char key[32];
			int known = 0;

			for (const char *const *k = log_keys; *k != NULL; k++)
				known |= strcmp(*k, v->string) == 0;
			if (!known || !cJSON_IsString(v)) {
				snprintf(err, errlen, "%s: unknown or non-string key \"log.%s\"",
				    c->config, v->string);
				return -1;
			}
			snprintf(key, sizeof(key), "log_%s", v->string);
			cJSON_AddStringToObject(c->globals, key, v->valuestring);
		}
	}
	if (store != NULL) {
		if (!cJSON_IsObject(store)) {
			snprintf(err, errlen, "%s: \"store\" must be an object", c->config);
			return -1;
		}
		cJSON_ArrayForEach(v, store)
		{
			if (strcmp(v->string, "redis") != 0 || !cJSON_IsString(v)) {
				snprintf(err, errlen, "%s: unknown key \"store.%s\"", c->config,
				    v->string);
				return -1;
			}
			cJSON_AddStringToObject(c->globals, "redis", v->valuestring);
		}
	}
	for (const char *const *k = plain; *k != NULL; k++) {
		/*
		 * A deployment's health_addr is the one-process mux: a daemon
		 * running one instance of it (split mode, compose) must not
		 * take that port too.
		 */
		if (c->single && strcmp(*k, "health_addr") == 0 &&
		    cJSON_GetObjectItemCaseSensitive(file, "services") != NULL)
			continue;
		v = cJSON_GetObjectItemCaseSensitive(file, *k);
		if (v != NULL)
			cJSON_AddItemToObject(c->globals, *k, cJSON_Duplicate(v, 1));
	}
	if (sw_cfg_check(c->globals, global_flags, NULL, c->config ? c->config : "config", err,
	    errlen) == -1)
		return -1;
	if (sw_cfg_apply_env(c->globals, global_flags, err, errlen) == -1)
		return -1;
	c->redis_given = getenv("SKYWIRE_REDIS") != NULL;
	for (size_t i = 0; i < c->nflags; i++)
		c->redis_given |= strcmp(c->flags[i].name, "redis") == 0;
	return apply_flags(c, c->globals, global_flags, 0, err, errlen);
}

static int
setup_log(struct cli *c, char *err, size_t errlen)
{
	const char *lv = sw_cfg_str(c->globals, "log_level");
	const char *fm = sw_cfg_str(c->globals, "log_format");
	const char *file = sw_cfg_str(c->globals, "log_file");
	enum sw_log_level level;
	enum sw_log_format format;

	if (lv != NULL) {
		if (sw_log_parse_level(lv, &level) == -1) {
			snprintf(err, errlen, "unknown log level \"%s\"", lv);
			return -1;
		}
		sw_log_set_level(level);
	}
	if (fm != NULL) {
		if (sw_log_parse_format(fm, &format) == -1) {
			snprintf(err, errlen, "unknown log format \"%s\"", fm);
			return -1;
		}
		sw_log_set_format(format);
	}
	if (file != NULL && sw_log_set_file(file) == -1) {
		snprintf(err, errlen, "cannot open log file %s", file);
		return -1;
	}
	return 0;
}

/*
 * The instance's redis: file < env < flag holds here too, so an instance's
 * own store.redis (in a deployment, or at the top of a single-instance file)
 * gives way to --redis and SKYWIRE_REDIS.
 */
static const char *
instance_store(const cJSON *inst, const struct cli *c)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(inst, "store");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "redis");

	if (!c->redis_given && cJSON_IsString(r))
		return r->valuestring[0] != '\0' ? r->valuestring : NULL;
	return sw_cfg_str(c->globals, "redis");
}

static int
check_instance_store(const cJSON *inst, const char *where, char *err, size_t errlen)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(inst, "store"), *v;

	if (st == NULL)
		return 0;
	if (!cJSON_IsObject(st)) {
		snprintf(err, errlen, "%s: \"store\" must be an object", where);
		return -1;
	}
	cJSON_ArrayForEach(v, st)
		if (strcmp(v->string, "redis") != 0 || !cJSON_IsString(v)) {
			snprintf(err, errlen, "%s: unknown key \"store.%s\"", where, v->string);
			return -1;
		}
	return 0;
}

static struct sw_supervisor *
new_supervisor(struct cli *c, struct event_base *base)
{
	struct sw_supervisor_opts o = {
		.health_addr = sw_cfg_str(c->globals, "health_addr"),
		.start_timeout_s = (int)sw_cfg_int(c->globals, "start_timeout_s", 10),
		.stop_timeout_s = (int)sw_cfg_int(c->globals, "stop_timeout_s", 10),
	};

	return sw_supervisor_new(base, &o);
}

/*
 * libevent finishes freeing a bufferevent (and what hangs off it) from the
 * loop; after the services are freed the loop has stopped, so give it a few
 * non-blocking turns, or those objects would leak at exit.
 */
static void
drain_base(struct event_base *base)
{
	for (int i = 0; base != NULL && i < 8; i++)
		if (event_base_loop(base, EVLOOP_NONBLOCK) != 0)
			break;
}

static void
usage_single(const struct sw_service_ops *ops, FILE *fp)
{
	fprintf(fp, "usage: %s [-c FILE] [--name NAME] [-n|--check] [--KEY VALUE …]\n\n%s\n\n",
	    ops->type, ops->summary);
	fprintf(fp, "  -c, --config FILE        deployment.json (instance --name, default the type)\n"
		    "                           or a file holding just this instance's object\n"
		    "  --name NAME              which instance of the deployment to run\n"
		    "  -n, --check              check the configuration and exit\n"
		    "  -h, --help, -V, --version\n\n"
		    "Service keys (file < env SKYWIRE_KEY < flag):\n");
	sw_cfg_usage(ops->keys, fp);
	fprintf(fp, "\nGlobal keys:\n");
	sw_cfg_usage(global_flags, fp);
}

static int
wants(int argc, char **argv, const char *a, const char *b)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], a) == 0 || (b != NULL && strcmp(argv[i], b) == 0))
			return 1;
	return 0;
}

/* Pick this executable's instance out of a deployment or a single-instance file. */
static cJSON *
pick_instance(struct cli *c, const struct sw_service_ops *ops, cJSON *file, char *err,
    size_t errlen)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(file, "services"), *e;
	const char *want = c->name != NULL ? c->name : ops->type;

	if (list == NULL) {
		cJSON *inst = cJSON_Duplicate(file, 1);

		if (sw_cfg_check(inst, ops->keys, single_extra, c->config, err, errlen) == -1) {
			cJSON_Delete(inst);
			return NULL;
		}
		/* Top-level-only keys live in globals now. */
		for (const char *const *k = single_extra + 4; *k != NULL; k++)
			cJSON_DeleteItemFromObjectCaseSensitive(inst, *k);
		return inst;
	}
	if (sw_cfg_check(file, deploy_keys, NULL, c->config, err, errlen) == -1)
		return NULL;
	cJSON_ArrayForEach(e, list)
	{
		const char *type = sw_cfg_str(e, "type");
		const char *name = sw_cfg_str(e, "name");

		if (name == NULL)
			name = type;
		if (type != NULL && name != NULL && strcmp(name, want) == 0) {
			if (strcmp(type, ops->type) != 0) {
				snprintf(err, errlen, "%s: instance %s is a %s, not a %s",
				    c->config, want, type, ops->type);
				return NULL;
			}
			return cJSON_Duplicate(e, 1);
		}
	}
	snprintf(err, errlen, "%s: no %s instance named %s", c->config, ops->type, want);
	return NULL;
}

int
sw_main_single(const struct sw_service_ops *ops, int argc, char **argv)
{
	struct cli c;
	char err[512], where[256];
	cJSON *file = NULL, *inst = NULL;
	struct event_base *base = NULL;
	struct sw_supervisor *sup = NULL;
	int ret = 1;

	memset(&c, 0, sizeof(c));
	c.single = 1;
	if (wants(argc, argv, "--help", "-h")) {
		usage_single(ops, stdout);
		return 0;
	}
	if (wants(argc, argv, "--version", "-V")) {
		printf("%s %s\n", ops->type, SW_VERSION);
		return 0;
	}
	if (sw_crypto_init() == -1)
		die("libsodium failed to initialise");
	if (parse_args(&c, argc, argv, 1, ops->keys, err, sizeof(err)) == -1)
		goto fail;
	if (c.config != NULL) {
		file = sw_cfg_load_file(c.config, err, sizeof(err));
		if (file == NULL)
			goto fail;
		inst = pick_instance(&c, ops, file, err, sizeof(err));
		if (inst == NULL)
			goto fail;
		/* A single-instance file carries its globals at the top too. */
		if (load_globals(&c, file, err, sizeof(err)) == -1)
			goto fail;
	} else {
		inst = cJSON_CreateObject();
		if (load_globals(&c, NULL, err, sizeof(err)) == -1)
			goto fail;
	}
	if (setup_log(&c, err, sizeof(err)) == -1)
		goto fail;
	snprintf(where, sizeof(where), "%s, service %s", c.config ? c.config : "flags",
	    c.name ? c.name : ops->type);
	if (sw_cfg_check(inst, ops->keys, instance_extra, where, err, sizeof(err)) == -1 ||
	    check_instance_store(inst, where, err, sizeof(err)) == -1 ||
	    sw_cfg_apply_env(inst, ops->keys, err, sizeof(err)) == -1 ||
	    apply_flags(&c, inst, ops->keys, 1, err, sizeof(err)) == -1 ||
	    sw_cfg_apply_defaults(inst, ops->keys, err, sizeof(err)) == -1)
		goto fail;
	/* Alone, there is nothing in this process to wait for. */
	cJSON_DeleteItemFromObjectCaseSensitive(inst, "depends_on");
	base = sw_event_base_new();
	if (base == NULL) {
		snprintf(err, sizeof(err), "cannot create the event base");
		goto fail;
	}
	sup = new_supervisor(&c, base);
	if (sup == NULL) {
		snprintf(err, sizeof(err), "cannot create the supervisor");
		goto fail;
	}
	{
		const char *store = instance_store(inst, &c);
		cJSON *owned = inst;

		inst = NULL;
		if (sw_supervisor_add(sup, ops, c.name, owned, store) == NULL) {
			snprintf(err, sizeof(err), "invalid configuration");
			goto fail;
		}
	}
	if (sw_supervisor_plan(sup, err, sizeof(err)) == -1)
		goto fail;
	if (c.check) {
		printf("configuration OK\n");
		ret = 0;
		goto out;
	}
	ret = sw_supervisor_run(sup);
	goto out;
fail:
	sw_log_error(ops->type, err, NULL);
	ret = 1;
out:
	sw_supervisor_free(sup);
	drain_base(base);
	if (base != NULL)
		event_base_free(base);
	cJSON_Delete(inst);
	cJSON_Delete(file);
	cJSON_Delete(c.globals);
	return ret;
}

/* skywire-svc */

static void
usage_svc(const struct sw_registry *reg, FILE *fp)
{
	fprintf(fp,
	    "usage: skywire-svc run --config FILE [--only NAME,…]   run services in one process\n"
	    "       skywire-svc check --config FILE                 check config, print the plan\n"
	    "       skywire-svc list                                the service types known\n"
	    "       skywire-svc gen-config [-o FILE] [--redis URL]  a working one-host deployment\n"
	    "       skywire-svc probe PORT                          exit 0 if 127.0.0.1:PORT/health is 200\n"
	    "       skywire-svc --help | --version\n\n"
	    "Global flags (also SKYWIRE_<KEY> in the environment):\n");
	sw_cfg_usage(global_flags, fp);
	fprintf(fp, "\nService types:\n");
	for (const struct sw_service_ops *const *t = reg->types; *t != NULL; t++)
		fprintf(fp, "  %-22s %s\n", (*t)->type, (*t)->summary);
}

static int
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p = e != NULL ? e + 1 : NULL;
	}
	return 0;
}

/* Drop depends_on names that are not run here (--only): they are external. */
static void
prune_depends(cJSON *inst, const char *only)
{
	cJSON *dn = cJSON_GetObjectItemCaseSensitive(inst, "depends_on");
	int i = 0;

	if (only == NULL || !cJSON_IsArray(dn))
		return;
	while (i < cJSON_GetArraySize(dn)) {
		cJSON *e = cJSON_GetArrayItem(dn, i);

		if (cJSON_IsString(e) && !in_list(only, e->valuestring))
			cJSON_DeleteItemFromArray(dn, i);
		else
			i++;
	}
}

static int
add_deployment(struct cli *c, const struct sw_registry *reg, struct sw_supervisor *sup,
    const cJSON *file, char *err, size_t errlen)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(file, "services"), *e;
	int n = 0;

	if (!cJSON_IsArray(list)) {
		snprintf(err, errlen, "%s: \"services\" must be an array", c->config);
		return -1;
	}
	cJSON_ArrayForEach(e, list)
	{
		const char *type = sw_cfg_str(e, "type");
		const char *name = sw_cfg_str(e, "name");
		const struct sw_service_ops *ops;
		char where[256];
		cJSON *inst;

		if (type == NULL) {
			snprintf(err, errlen, "%s: a service has no \"type\"", c->config);
			return -1;
		}
		ops = sw_registry_find(reg, type);
		if (ops == NULL) {
			snprintf(err, errlen, "%s: unknown service type \"%s\"", c->config, type);
			return -1;
		}
		if (name == NULL)
			name = type;
		if (c->only != NULL && !in_list(c->only, name))
			continue;
		snprintf(where, sizeof(where), "%s, service %s", c->config, name);
		inst = cJSON_Duplicate(e, 1);
		if (sw_cfg_check(inst, ops->keys, instance_extra, where, err, errlen) == -1 ||
		    check_instance_store(inst, where, err, errlen) == -1 ||
		    sw_cfg_apply_defaults(inst, ops->keys, err, errlen) == -1) {
			cJSON_Delete(inst);
			return -1;
		}
		prune_depends(inst, c->only);
		if (sw_supervisor_add(sup, ops, name, inst, instance_store(e, c)) ==
		    NULL) {
			snprintf(err, errlen, "%s: invalid configuration", where);
			return -1;
		}
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no services to run", c->config);
		return -1;
	}
	return 0;
}

static int
gen_config(const struct sw_registry *reg, struct cli *c)
{
	cJSON *d = cJSON_CreateObject(), *log = cJSON_CreateObject(), *list;
	const char *redis = sw_cfg_str(c->globals, "redis");
	char *text;
	FILE *fp = stdout;
	int ret = 1;

	cJSON_AddStringToObject(log, "level", "info");
	cJSON_AddStringToObject(log, "format", "text");
	cJSON_AddItemToObject(d, "log", log);
	if (redis != NULL) {
		cJSON *st = cJSON_CreateObject();

		cJSON_AddStringToObject(st, "redis", redis);
		cJSON_AddItemToObject(d, "store", st);
	}
	cJSON_AddStringToObject(d, "health_addr", "127.0.0.1:9100");
	list = cJSON_AddArrayToObject(d, "services");
	for (const struct sw_service_ops *const *t = reg->types; *t != NULL; t++) {
		cJSON *inst = cJSON_CreateObject();

		cJSON_AddStringToObject(inst, "type", (*t)->type);
		if ((*t)->gen_config != NULL)
			(*t)->gen_config(inst);
		cJSON_AddItemToArray(list, inst);
	}
	/* then each links to the others (their keys), now that all exist */
	{
		cJSON *inst = list->child;

		for (const struct sw_service_ops *const *t = reg->types; *t != NULL && inst != NULL;
		    t++, inst = inst->next)
			if ((*t)->gen_wire != NULL)
				(*t)->gen_wire(inst, list);
	}
	text = cJSON_Print(d);
	if (text == NULL)
		goto out;
	if (c->out != NULL && (fp = fopen(c->out, "w")) == NULL) {
		sw_log_error(MAIN_NAME, "cannot write", "file=%s", c->out);
		goto out;
	}
	fprintf(fp, "%s\n", text);
	ret = 0;
	if (fp != stdout && fclose(fp) != 0)
		ret = 1;
out:
	free(text);
	cJSON_Delete(d);
	return ret;
}

int
sw_main_svc(const struct sw_registry *reg, int argc, char **argv)
{
	struct cli c;
	char err[512];
	const char *cmd;
	cJSON *file = NULL;
	struct event_base *base = NULL;
	struct sw_supervisor *sup = NULL;
	int ret = 1;

	memset(&c, 0, sizeof(c));
	if (argc < 2 || wants(argc, argv, "--help", "-h") || strcmp(argv[1], "help") == 0) {
		usage_svc(reg, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (wants(argc, argv, "--version", "-V") || strcmp(argv[1], "version") == 0) {
		printf("skywire-svc %s\n", SW_VERSION);
		return 0;
	}
	if (sw_crypto_init() == -1)
		die("libsodium failed to initialise");
	cmd = argv[1];
	if (parse_args(&c, argc, argv, 2, global_flags, err, sizeof(err)) == -1)
		goto fail;
	if (strcmp(cmd, "list") == 0) {
		for (const struct sw_service_ops *const *t = reg->types; *t != NULL; t++)
			printf("%-22s %s\n", (*t)->type, (*t)->summary);
		return 0;
	}
	if (strcmp(cmd, "gen-config") == 0) {
		if (load_globals(&c, NULL, err, sizeof(err)) == -1)
			goto fail;
		ret = gen_config(reg, &c);
		cJSON_Delete(c.globals);
		return ret;
	}
	if (strcmp(cmd, "run") != 0 && strcmp(cmd, "check") != 0) {
		snprintf(err, sizeof(err), "unknown command \"%s\" (see --help)", cmd);
		goto fail;
	}
	if (c.config == NULL) {
		snprintf(err, sizeof(err), "%s needs --config FILE", cmd);
		goto fail;
	}
	for (size_t i = 0; i < c.nflags; i++) {
		char name[128];

		flag_key(&c.flags[i], name, sizeof(name));
		if (sw_cfg_key_for_flag(global_flags, name) == NULL) {
			snprintf(err, sizeof(err), "unknown flag --%s", name);
			goto fail;
		}
	}
	file = sw_cfg_load_file(c.config, err, sizeof(err));
	if (file == NULL)
		goto fail;
	if (sw_cfg_check(file, deploy_keys, NULL, c.config, err, sizeof(err)) == -1 ||
	    load_globals(&c, file, err, sizeof(err)) == -1 ||
	    setup_log(&c, err, sizeof(err)) == -1)
		goto fail;
	base = sw_event_base_new();
	if (base == NULL) {
		snprintf(err, sizeof(err), "cannot create the event base");
		goto fail;
	}
	sup = new_supervisor(&c, base);
	if (sup == NULL) {
		snprintf(err, sizeof(err), "cannot create the supervisor");
		goto fail;
	}
	if (add_deployment(&c, reg, sup, file, err, sizeof(err)) == -1 ||
	    sw_supervisor_plan(sup, err, sizeof(err)) == -1)
		goto fail;
	if (strcmp(cmd, "check") == 0) {
		sw_supervisor_print_plan(sup, stdout);
		printf("configuration OK\n");
		ret = 0;
		goto out;
	}
	ret = sw_supervisor_run(sup);
	goto out;
fail:
	sw_log_error("skywire-svc", err, NULL);
	ret = 1;
out:
	sw_supervisor_free(sup);
	drain_base(base);
	if (base != NULL)
		event_base_free(base);
	cJSON_Delete(file);
	cJSON_Delete(c.globals);
	return ret;
}
