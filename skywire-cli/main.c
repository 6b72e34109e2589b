/*
 * skywire-cli [--api URL] [--json] GROUP COMMAND [ARGS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "http.h"
#include "log.h"

struct call {
	int done;
	int status;
	cJSON *json;
};

static void
call_done(const struct sw_http_resp *r, void *arg)
{
	struct call *k = arg;

	k->done = 1;
	k->status = r->status;
	k->json = r->json != NULL ? cJSON_Duplicate(r->json, 1) : NULL;
}

cJSON *
cli_call(const struct cli *c, const char *method, const char *path, const cJSON *body,
    int *status)
{
	struct event_base *base = event_base_new();
	struct sw_http_client *hc = NULL;
	struct sw_http_opts o = {.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 10000};
	struct call k = {0};
	char url[1024], *text = NULL;

	if (base == NULL || (hc = sw_http_client_new(base, "skywire-cli")) == NULL)
		goto out;
	snprintf(url, sizeof(url), "%s%s", c->api, path);
	text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
	if (sw_http_request(hc, method, url, text, text != NULL ? strlen(text) : 0, &o, call_done,
	    &k) == -1) {
		fprintf(stderr, "skywire-cli: bad API URL %s\n", url);
		goto out;
	}
	while (!k.done && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	if (k.status == 0)
		fprintf(stderr, "skywire-cli: cannot reach the visor at %s\n", c->api);
out:
	free(text);
	sw_http_client_free(hc);
	if (base != NULL)
		event_base_free(base);
	*status = k.status;
	if (k.status == 0) {
		cJSON_Delete(k.json);
		return NULL;
	}
	return k.json;
}

int
cli_print_json(const cJSON *v)
{
	char *t = cJSON_Print(v);

	if (t == NULL)
		return 1;
	printf("%s\n", t);
	free(t);
	return 0;
}

int
cli_fail(const cJSON *v, int status)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "error");

	fprintf(stderr, "skywire-cli: %s (HTTP %d)\n",
	    cJSON_IsString(e) ? e->valuestring : "unexpected answer", status);
	return 1;
}

const char *
cli_str(const cJSON *o, const char *k, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : dflt;
}

double
cli_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: skywire-cli [--api URL] [--json] COMMAND\n\n"
		    "  visor pk          the visor's public key\n"
		    "  visor info        summary: pk, dmsg servers, transports, routes, NAT type\n"
		    "  visor vpn-servers | proxy-servers | pv\n"
		    "                    vpn / skysocks / visor services (from the CXO feed or HTTP)\n"
		    "  tp ls             the visor's transports\n"
		    "  tp add PK [--type dmsg|stcpr]\n"
		    "                    open a transport (default dmsg) and wait until it is up\n"
		    "  tp rm T_ID        close a transport (deregistered from transport-discovery)\n"
		    "  tp ping T_ID      a ping/pong round trip over a transport\n"
		    "  route ls          the visor's routing rules\n"
		    "  route rm ID       delete a rule (its route group closes)\n"
		    "  route find PK [--hops N]\n"
		    "                    route-finder's paths to PK (at most N hops, default 5)\n"
		    "  visor ping PK [--hops N] [--count C] [--size B]\n"
		    "                    round trips over a route group to PK's port 48\n"
		    "  chat send PK MSG  one chat message over a route group to PK's port 1\n"
		    "  chat ls           the chat messages sent and received\n"
		    "  cxo tree PK PORT [PATH] [-d URL | --addr HOST:PORT]\n"
		    "                    one-off read of a CXO feed over dmsg (discovery URL,\n"
		    "                    default http://127.0.0.1:9090) or the publisher's TCP address\n"
		    "  cxo watch PK PORT [-d URL | --addr HOST:PORT]\n"
		    "                    print the feed, then each update\n\n"
		    "  --api URL         the visor's local API (default http://127.0.0.1:8000)\n"
		    "  --json            print the raw JSON answer\n");
}

int
main(int argc, char **argv)
{
	struct cli c = {.api = "http://127.0.0.1:8000", .json = 0};
	int i = 1;
	const char *env = getenv("SKYWIRE_API");

	if (env != NULL && env[0] != '\0')
		c.api = env;
	sw_log_set_level(SW_LOG_ERROR);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("skywire-cli %s\n", SW_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--json") == 0) {
			c.json = 1;
		} else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
			c.api = argv[++i];
		} else if (strncmp(argv[i], "--api=", 6) == 0) {
			c.api = argv[i] + 6;
		} else {
			fprintf(stderr, "skywire-cli: unknown flag %s\n", argv[i]);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "visor") == 0)
		return cli_visor(&c, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "cxo") == 0)
		return cli_cxo(&c, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "tp") == 0)
		return cli_tp(&c, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "route") == 0)
		return cli_route(&c, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "chat") == 0)
		return cli_chat(&c, argc - i - 1, argv + i + 1);
	fprintf(stderr, "skywire-cli: unknown command %s (see --help)\n", argv[i]);
	return 2;
}
