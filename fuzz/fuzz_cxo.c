/*
 * fuzz_cxo: CXO objects (check, then iterate and look up what the check
 * passed, with the invariant that encoding the entries gives the same
 * bytes) and signed roots (decode, verify).
 */
#include <string.h>

#include "crypto.h"
#include "cxo_obj.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sw_crypto_init();
}

#define MAXE 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cxo_entry es[MAXE];
	static uint8_t out[8 * 1024 * 1024];
	struct cxo_obj_iter it;
	struct cxo_root r;
	uint32_t count, n = 0;

	if (cxo_root_decode(data, size, &r) == 0)
		(void)cxo_root_verify(data, size, &r);
	if (cxo_obj_check(data, size, &count) == -1)
		return 0;
	cxo_obj_iter_init(&it, data, size);
	while (n < MAXE && cxo_obj_iter_next(&it, &es[n]) == 1) {
		struct cxo_entry f;

		FUZZ_ASSERT(cxo_name_ok(es[n].name, es[n].name_len));
		FUZZ_ASSERT(cxo_obj_find(data, size, es[n].name, es[n].name_len, &f) == 1);
		n++;
	}
	if (n == count && n < MAXE) {
		long len = cxo_obj_encode(es, n, out, sizeof(out));

		FUZZ_ASSERT(len == (long)size && memcmp(out, data, size) == 0);
	}
	return 0;
}
