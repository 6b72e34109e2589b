/* skywire-cli visor pk|info|vpn-servers|proxy-servers|pv */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void
print_list(const char *label, const cJSON *a)
{
	const cJSON *e;

	printf("%-14s %d\n", label, cJSON_GetArraySize(a));
	cJSON_ArrayForEach(e, a)
		if (cJSON_IsString(e))
			printf("  %s\n", e->valuestring);
}

/* Services of one type, from the visor's feed (or its HTTP fallback). */
static int
services(const struct cli *c, const char *type)
{
	char path[64];
	cJSON *v;
	const cJSON *list, *e;
	int status, ret = 1;

	snprintf(path, sizeof(path), "/api/services/%s", type);
	if ((v = cli_call(c, "GET", path, NULL, &status)) == NULL)
		return 1;
	list = cJSON_GetObjectItemCaseSensitive(v, "services");
	if (status != 200 || !cJSON_IsArray(list)) {
		ret = cli_fail(v, status);
		goto out;
	}
	if (c->json) {
		ret = cli_print_json(v);
		goto out;
	}
	printf("%-70s %-8s %-10s %s\n", "ADDRESS", "COUNTRY", "VERSION", "TYPE");
	cJSON_ArrayForEach(e, list) {
		const cJSON *geo = cJSON_GetObjectItemCaseSensitive(e, "geo");

		printf("%-70s %-8s %-10s %s\n", cli_str(e, "address", "-"),
		    cJSON_IsObject(geo) ? cli_str(geo, "country", "-") : "-", cli_str(e, "version", "-"),
		    cli_str(e, "type", "-"));
	}
	printf("%d %s service(s), source: %s\n", cJSON_GetArraySize(list), type,
	    cli_str(v, "source", "-"));
	ret = 0;
out:
	cJSON_Delete(v);
	return ret;
}

int
cli_visor(const struct cli *c, int argc, char **argv)
{
	cJSON *v;
	int status, ret = 1;

	if (argc >= 1 && strcmp(argv[0], "ping") == 0)
		return cli_ping(c, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "vpn-servers") == 0)
		return services(c, "vpn");
	if (argc >= 1 && strcmp(argv[0], "proxy-servers") == 0)
		return services(c, "skysocks");
	if (argc >= 1 && strcmp(argv[0], "pv") == 0)
		return services(c, "visor");
	if (argc < 1 || (strcmp(argv[0], "pk") != 0 && strcmp(argv[0], "info") != 0)) {
		fprintf(stderr, "usage: skywire-cli visor pk|info|vpn-servers|proxy-servers|pv\n");
		return 2;
	}
	v = cli_call(c, "GET", strcmp(argv[0], "pk") == 0 ? "/api/pk" : "/api/summary", NULL,
	    &status);
	if (v == NULL)
		return 1;
	if (status != 200) {
		ret = cli_fail(v, status);
		goto out;
	}
	if (c->json) {
		ret = cli_print_json(v);
		goto out;
	}
	if (strcmp(argv[0], "pk") == 0) {
		const cJSON *pk = cJSON_GetObjectItemCaseSensitive(v, "pk");

		if (!cJSON_IsString(pk)) {
			ret = cli_fail(v, status);
			goto out;
		}
		printf("%s\n", pk->valuestring);
	} else {
		const cJSON *pk = cJSON_GetObjectItemCaseSensitive(v, "pk");
		const cJSON *nat = cJSON_GetObjectItemCaseSensitive(v, "nat_type");

		printf("%-14s %s\n", "pk", cJSON_IsString(pk) ? pk->valuestring : "?");
		printf("%-14s %s\n", "nat", cJSON_IsString(nat) ? nat->valuestring : "?");
		print_list("dmsg servers", cJSON_GetObjectItemCaseSensitive(v, "dmsg_servers"));
		printf("%-14s %d\n", "transports",
		    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "transports")));
		printf("%-14s %d\n", "routes",
		    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "routes")));
	}
	ret = 0;
out:
	cJSON_Delete(v);
	return ret;
}
