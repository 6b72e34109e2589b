/*
 * visor: `visor gen-config` prints a fresh config; `visor run -c FILE` (or
 * just `visor -c FILE`) runs the node under the supervisor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "visor.h"

static int
gen_config(int argc, char **argv)
{
	cJSON *c;
	char *text;
	FILE *fp = stdout;

	if (sw_crypto_init() == -1)
		return 1;
	c = visor_gen_config();
	text = c != NULL ? cJSON_Print(c) : NULL;
	cJSON_Delete(c);
	if (text == NULL)
		return 1;
	if (argc >= 3 && (strcmp(argv[1], "-o") == 0 || strcmp(argv[1], "--output") == 0)) {
		fp = fopen(argv[2], "w");
		if (fp == NULL) {
			perror(argv[2]);
			free(text);
			return 1;
		}
	}
	fprintf(fp, "%s\n", text);
	free(text);
	if (fp != stdout)
		fclose(fp);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "gen-config") == 0)
		return gen_config(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "run") == 0) {
		argv[1] = argv[0];
		return sw_main_single(&visor_ops, argc - 1, argv + 1);
	}
	return sw_main_single(&visor_ops, argc, argv);
}
