/*
 * skywire-cli: the operator's command line, speaking to a visor's local API
 * (visor.md).  main.c parses the global flags and dispatches; each command
 * group has its own file.
 */
#ifndef SKYWIRE_CLI_H
#define SKYWIRE_CLI_H

#include <cjson/cJSON.h>

struct cli {
	const char *api; /* default http://127.0.0.1:8000 */
	int json;        /* print raw JSON */
	int timeout_ms;  /* per API call; 0: 10 s */
};

/*
 * One request to the visor's API, run to completion on a private event
 * loop.  Returns the parsed JSON (caller frees) with *status set, or NULL
 * with a message on stderr when the visor cannot be reached.
 */
cJSON *cli_call(const struct cli *c, const char *method, const char *path, const cJSON *body,
    int *status);
/* Print v as JSON, or fail with its "error" (returns the exit code). */
int cli_print_json(const cJSON *v);
/* An answer that is not 2xx: its "error" (or "unexpected answer") on stderr; returns 1. */
int cli_fail(const cJSON *v, int status);
/* o's string member k, or dflt; o's number member k, or 0: for printing tables. */
const char *cli_str(const cJSON *o, const char *k, const char *dflt);
double cli_num(const cJSON *o, const char *k);

int cli_visor(const struct cli *c, int argc, char **argv);
int cli_cxo(const struct cli *c, int argc, char **argv);
int cli_tp(const struct cli *c, int argc, char **argv);
/* route.c: route ls|rm|find, chat send|ls, visor ping */
int cli_route(const struct cli *c, int argc, char **argv);
int cli_chat(const struct cli *c, int argc, char **argv);
int cli_ping(const struct cli *c, int argc, char **argv);

#endif
