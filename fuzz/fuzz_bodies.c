/*
 * fuzz_bodies: each service's request-body parser behind the strict JSON
 * parse, as the handlers call them: a dmsg-discovery entry (signed JSON,
 * verified), a transport-discovery entry, a service-discovery record, an
 * address-resolver binding, and the signed-object check.  The first byte
 * picks the parser so one corpus covers all.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "address-resolver/address_resolver.h"
#include "crypto.h"
#include "dmsg_entry.h"
#include "fuzz.h"
#include "jcs.h"
#include "json.h"
#include "log.h"
#include "service-discovery/service_discovery.h"
#include "tp_entry.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sw_log_set_level(SW_LOG_ERROR);
	return sw_crypto_init();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	uint8_t pk[SW_PK_LEN] = {0};
	cJSON *v;

	if (size < 1 || (v = sw_json_parse(data + 1, size - 1, NULL)) == NULL)
		return 0;
	switch (data[0] % 5) {
	case 0: {
		struct dmsg_entry e;

		memset(&e, 0, sizeof(e));
		(void)dmsg_entry_parse(v, &e, err, sizeof(err));
		break;
	}
	case 1: {
		struct tp_entry e;

		memset(&e, 0, sizeof(e));
		(void)tp_entry_parse(v, &e, err, sizeof(err));
		break;
	}
	case 2: {
		struct sd_service s;

		memset(&s, 0, sizeof(s));
		(void)sd_service_parse(v, &s, err, sizeof(err));
		break;
	}
	case 3: {
		struct ar_binding b;

		memset(&b, 0, sizeof(b));
		(void)ar_binding_parse_req(v, &b, err, sizeof(err));
		break;
	}
	default:
		(void)sw_signed_verify(v, pk);
		break;
	}
	cJSON_Delete(v);
	return 0;
}
