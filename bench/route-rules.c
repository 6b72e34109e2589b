/*
 * route-rules: install N intermediary rules on a visor over its port 136,
 * as a setup-node would (bench/route.sh measures the visor's memory before
 * and after).  Usage:
 *   route-rules DISCOVERY_URL SEED_HEX VISOR_PK IN_T_ID OUT_T_ID N
 * The key of SEED_HEX must be in the visor's setup_nodes.  Prints the
 * number of rules installed.  Reservations are taken 64 at a time and
 * turned into rules 20 per call (the visor's limits), keep_alive_s 600.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "crypto.h"
#include "dmsg_client.h"
#include "frpc.h"
#include "log.h"

static struct event_base *base;
static int done;
static enum frpc_status st;
static cJSON *res;

static void
answered(enum frpc_status s, const cJSON *result, const char *err, void *arg)
{
	(void)arg;
	done = 1;
	st = s;
	res = result != NULL ? cJSON_Duplicate(result, 1) : NULL;
	if (s != FRPC_OK)
		fprintf(stderr, "route-rules: %s: %s\n", frpc_status_str(s), err);
}

static int
call(struct dmsg_client *c, const uint8_t pk[SW_PK_LEN], const char *method, cJSON *params)
{
	done = 0;
	cJSON_Delete(res);
	res = NULL;
	if (frpc_call(base, c, pk, 136, method, params, 10000, answered, NULL, "route-rules") ==
	    NULL) {
		fprintf(stderr, "route-rules: cannot call %s\n", method);
		cJSON_Delete(params);
		return -1;
	}
	cJSON_Delete(params);
	while (!done && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	return st == FRPC_OK ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct sw_keypair kp;
	struct dmsg_client_opts o = {0};
	struct dmsg_client *c;
	uint8_t vpk[SW_PK_LEN];
	long n, made = 0;
	char err[128];

	if (argc != 7 || sw_crypto_init() == -1 || sw_pk_parse(vpk, argv[3]) == -1 ||
	    sw_keypair_from_hex(&kp, argv[2], NULL, err, sizeof(err)) == -1 || (n = atol(argv[6])) < 1) {
		fprintf(stderr, "usage: route-rules DISCOVERY SEED VISOR_PK IN_T_ID OUT_T_ID N\n");
		return 2;
	}
	sw_log_set_level(SW_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	o.discovery = argv[1];
	c = dmsg_client_new(base, &kp, &o, "route-rules");
	if (c == NULL || dmsg_client_start(c) == -1)
		return 1;
	while (!dmsg_client_registered(c) && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	while (made < n) {
		cJSON *p = cJSON_CreateObject(), *ids, *rules, *q;
		int k = n - made < 60 ? (int)(n - made) : 60;

		cJSON_AddNumberToObject(p, "n", k);
		if (call(c, vpk, "reserve_ids", p) == -1)
			break;
		/* The next call frees res: keep the ids. */
		ids = cJSON_DetachItemFromObjectCaseSensitive(res, "ids");
		for (int i = 0; i < k; i += 20) {
			int cnt = k - i < 20 ? k - i : 20;

			q = cJSON_CreateObject();
			rules = cJSON_AddArrayToObject(q, "rules");
			for (int j = i; j < i + cnt; j++) {
				cJSON *r = cJSON_CreateObject();

				cJSON_AddStringToObject(r, "type", "intermediary");
				cJSON_AddNumberToObject(r, "route_id",
				    cJSON_GetArrayItem(ids, j)->valuedouble);
				cJSON_AddStringToObject(r, "t_id", argv[4]);
				cJSON_AddNumberToObject(r, "next_route_id", 1 + j);
				cJSON_AddStringToObject(r, "next_tp_id", argv[5]);
				cJSON_AddNumberToObject(r, "keep_alive_s", 600);
				cJSON_AddItemToArray(rules, r);
			}
			if (call(c, vpk, "add_intermediary_rules", q) == -1) {
				n = made; /* stop */
				break;
			}
			made += cnt;
		}
		cJSON_Delete(ids);
	}
	printf("%ld\n", made);
	cJSON_Delete(res);
	dmsg_client_free(c);
	event_base_free(base);
	return made == atol(argv[6]) ? 0 : 1;
}
