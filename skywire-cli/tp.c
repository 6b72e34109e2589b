/* skywire-cli tp ls | add PK [--type dmsg|stcpr|sudph] | rm ID | ping ID */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void
print_row(const cJSON *t)
{
	printf("%-36s  %-5s  %-64s  %-9s  %-7s  %12.0f  %12.0f\n", cli_str(t, "t_id", "?"), cli_str(t, "type", "?"),
	    cli_str(t, "remote_pk", "?"), cli_str(t, "label", "?"), cli_str(t, "state", "?"), cli_num(t, "tx_bytes"),
	    cli_num(t, "rx_bytes"));
}

static void
print_header(void)
{
	printf("%-36s  %-5s  %-64s  %-9s  %-7s  %12s  %12s\n", "t_id", "type", "remote_pk",
	    "label", "state", "tx_bytes", "rx_bytes");
}

static int
usage(void)
{
	fprintf(stderr, "usage: skywire-cli tp ls | add PK [--type dmsg|stcpr|sudph] | rm T_ID |"
			" ping T_ID\n");
	return 2;
}

int
cli_tp(const struct cli *c, int argc, char **argv)
{
	cJSON *v = NULL, *body = NULL;
	const char *method, *type = NULL;
	char path[128];
	int status, ret = 1;

	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "ls") == 0 && argc == 1) {
		method = "GET";
		snprintf(path, sizeof(path), "/api/transports");
	} else if (strcmp(argv[0], "add") == 0 && argc >= 2) {
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
				type = argv[++i];
			else if (strncmp(argv[i], "--type=", 7) == 0)
				type = argv[i] + 7;
			else
				return usage();
		}
		method = "POST";
		snprintf(path, sizeof(path), "/api/transports");
		body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "remote_pk", argv[1]);
		cJSON_AddStringToObject(body, "type", type != NULL ? type : "dmsg");
	} else if ((strcmp(argv[0], "rm") == 0 || strcmp(argv[0], "ping") == 0) && argc == 2) {
		if (strlen(argv[1]) != 36)
			return usage();
		method = strcmp(argv[0], "rm") == 0 ? "DELETE" : "POST";
		snprintf(path, sizeof(path), "/api/transports/%s%s", argv[1],
		    strcmp(argv[0], "rm") == 0 ? "" : "/ping");
	} else {
		return usage();
	}
	v = cli_call(c, method, path, body, &status);
	cJSON_Delete(body);
	if (v == NULL)
		return 1;
	if (status < 200 || status > 299) {
		ret = cli_fail(v, status);
		goto out;
	}
	if (c->json) {
		ret = cli_print_json(v);
		goto out;
	}
	if (strcmp(argv[0], "ls") == 0) {
		const cJSON *t;

		print_header();
		cJSON_ArrayForEach(t, v)
			print_row(t);
	} else if (strcmp(argv[0], "add") == 0) {
		print_header();
		print_row(v);
	} else if (strcmp(argv[0], "rm") == 0) {
		printf("removed %s\n", argv[1]);
	} else {
		printf("rtt %.0f ms\n", cli_num(v, "rtt_ms"));
	}
	ret = 0;
out:
	cJSON_Delete(v);
	return ret;
}
