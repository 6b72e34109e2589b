/*
 * fuzz_route: route packets (the 5-byte header and the payload a transport
 * hands the router) and routing rules and route descriptors as their JSON
 * arrives over the route-setup RPC, behind the strict JSON parse.  The first
 * byte picks which.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "json.h"
#include "log.h"
#include "visor/router.h"
#include "visor/transport.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sw_log_set_level(SW_LOG_ERROR);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vtp_pkt p;
	struct vrt_rule r;
	struct vrt_desc d;
	char err[256];
	cJSON *v;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (vtp_pkt_parse(data + 1, size - 1, &p) == 0)
			FUZZ_ASSERT(p.len <= size - 1 && p.len <= VTP_MAX_PAYLOAD);
		return 0;
	}
	if ((v = sw_json_parse(data + 1, size - 1, NULL)) == NULL)
		return 0;
	memset(&r, 0, sizeof(r));
	memset(&d, 0, sizeof(d));
	if (vrt_rule_parse(v, &r, &d, err, sizeof(err)) == 0) {
		cJSON *back = vrt_rule_json(&r);

		FUZZ_ASSERT(back != NULL);
		cJSON_Delete(back);
	}
	(void)vrt_desc_parse(v, &d);
	cJSON_Delete(v);
	return 0;
}
