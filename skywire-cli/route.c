/*
 * skywire-cli route ls | rm ID | find PK [--hops N]
 *             visor ping PK [--hops N] [--count C] [--size B]
 *             chat send PK MSG | chat ls
 * Tables by default, the API's JSON with --json (visor.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Run one call; print JSON or hand the answer to table().  The exit code. */
static int
run(const struct cli *c, const char *method, const char *path, const cJSON *body,
    void (*table)(const cJSON *v))
{
	int status, ret;
	cJSON *v = cli_call(c, method, path, body, &status);

	if (v == NULL && status == 0)
		return 1;
	if (status < 200 || status > 299)
		ret = cli_fail(v, status);
	else if (c->json)
		ret = cli_print_json(v);
	else {
		table(v);
		ret = 0;
	}
	cJSON_Delete(v);
	return ret;
}

/* A flag's integer value within min..max, or -1. */
static int
int_flag(const char *s, int min, int max)
{
	char *end = NULL;
	long n = strtol(s, &end, 10);

	return *s != '\0' && *end == '\0' && n >= min && n <= max ? (int)n : -1;
}

static void
print_hops(const cJSON *path)
{
	const cJSON *h;
	int i = 0;

	cJSON_ArrayForEach(h, path)
		printf("  %d  %s  %.8s… -> %.8s…\n", ++i, cli_str(h, "t_id", "-"), cli_str(h, "from", "-"),
		    cli_str(h, "to", "-"));
}

/* ---- route ---- */

static void
rules_table(const cJSON *v)
{
	const cJSON *r;

	printf("%-12s  %-10s  %-36s  %-10s  %-36s  %-10s\n", "type", "route_id", "t_id",
	    "next_id", "next_tp_id", "expires");
	cJSON_ArrayForEach(r, v) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "desc");

		printf("%-12s  %-10.0f  %-36s  %-10.0f  %-36s  %-10.0f\n", cli_str(r, "type", "-"),
		    cli_num(r, "route_id"), cli_str(r, "t_id", "-"), cli_num(r, "next_route_id"),
		    cli_str(r, "next_tp_id", "-"), cli_num(r, "expires"));
		if (d != NULL)
			printf("    %s:%.0f -> %s:%.0f\n", cli_str(d, "src_pk", "-"), cli_num(d, "src_port"),
			    cli_str(d, "dst_pk", "-"), cli_num(d, "dst_port"));
	}
}

static void
removed(const cJSON *v)
{
	(void)v;
	printf("removed\n");
}

static void
paths_table(const cJSON *v)
{
	const cJSON *pair, *p;

	cJSON_ArrayForEach(pair, v) {
		int i = 0;

		cJSON_ArrayForEach(p, pair) {
			printf("path %d (%d hops)\n", ++i, cJSON_GetArraySize(p));
			print_hops(p);
		}
	}
}

static int
route_usage(void)
{
	fprintf(stderr, "usage: skywire-cli route ls | rm ID | find PK [--hops N]\n");
	return 2;
}

int
cli_route(const struct cli *c, int argc, char **argv)
{
	char path[256];
	int hops = 5;

	if (argc == 1 && strcmp(argv[0], "ls") == 0)
		return run(c, "GET", "/api/routes", NULL, rules_table);
	if (argc == 2 && strcmp(argv[0], "rm") == 0) {
		if (argv[1][0] == '\0' || strspn(argv[1], "0123456789") != strlen(argv[1]))
			return route_usage();
		snprintf(path, sizeof(path), "/api/routes/%s", argv[1]);
		return run(c, "DELETE", path, NULL, removed);
	}
	if (argc >= 2 && strcmp(argv[0], "find") == 0 && strlen(argv[1]) == 64) {
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--hops") == 0 && i + 1 < argc)
				hops = int_flag(argv[++i], 1, 10);
			else
				return route_usage();
			if (hops == -1)
				return route_usage();
		}
		snprintf(path, sizeof(path), "/api/routes/find/%s?max_hops=%d", argv[1], hops);
		return run(c, "GET", path, NULL, paths_table);
	}
	return route_usage();
}

/* ---- visor ping ---- */

static void
ping_table(const cJSON *v)
{
	const cJSON *rtt = cJSON_GetObjectItemCaseSensitive(v, "rtt_ms"), *r;
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(v, "path");
	int i = 0;

	printf("path (%d hops)\n", cJSON_GetArraySize(path));
	print_hops(path);
	cJSON_ArrayForEach(r, rtt)
		printf("seq %d  rtt %.0f ms\n", ++i, cJSON_IsNumber(r) ? r->valuedouble : -1);
	printf("lost %.0f\n", cli_num(v, "lost"));
}

static int
ping_usage(void)
{
	fprintf(stderr, "usage: skywire-cli visor ping PK [--hops N] [--count C] [--size B]\n");
	return 2;
}

int
cli_ping(const struct cli *c, int argc, char **argv)
{
	struct cli slow = *c;
	cJSON *body;
	int hops = 1, count = 3, size = 32, ret;

	if (argc < 2 || strlen(argv[1]) != 64)
		return ping_usage();
	for (int i = 2; i < argc; i++) {
		int *dst = NULL, min = 1, max = 10;

		if (i + 1 >= argc)
			return ping_usage();
		if (strcmp(argv[i], "--hops") == 0)
			dst = &hops;
		else if (strcmp(argv[i], "--count") == 0)
			dst = &count, max = 100;
		else if (strcmp(argv[i], "--size") == 0)
			dst = &size, min = 8, max = 65498;
		if (dst == NULL || (*dst = int_flag(argv[++i], min, max)) == -1)
			return ping_usage();
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "pk", argv[1]);
	cJSON_AddNumberToObject(body, "min_hops", hops);
	cJSON_AddNumberToObject(body, "count", count);
	cJSON_AddNumberToObject(body, "size", size);
	/* Setup (up to 35 s) plus up to 2 s per lost echo. */
	slow.timeout_ms = 40000 + count * 2000;
	ret = run(&slow, "POST", "/api/ping", body, ping_table);
	cJSON_Delete(body);
	return ret;
}

/* ---- chat ---- */

static void
sent(const cJSON *v)
{
	(void)v;
	printf("sent\n");
}

static void
chat_table(const cJSON *v)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, v)
		printf("%-8s  %.16s…  %s\n", cli_str(m, "direction", "-"), cli_str(m, "pk", "-"), cli_str(m, "message", "-"));
}

int
cli_chat(const struct cli *c, int argc, char **argv)
{
	struct cli slow = *c;
	cJSON *body;
	int ret;

	if (argc == 1 && strcmp(argv[0], "ls") == 0)
		return run(c, "GET", "/api/chat", NULL, chat_table);
	if (argc != 3 || strcmp(argv[0], "send") != 0 || strlen(argv[1]) != 64) {
		fprintf(stderr, "usage: skywire-cli chat send PK MSG | chat ls\n");
		return 2;
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "pk", argv[1]);
	cJSON_AddStringToObject(body, "message", argv[2]);
	slow.timeout_ms = 40000; /* the first message dials the route group */
	ret = run(&slow, "POST", "/api/chat", body, sent);
	cJSON_Delete(body);
	return ret;
}
