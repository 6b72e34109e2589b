/* fuzz_stun: a STUN datagram, and every attribute reader on what parsed. */
#include <string.h>

#include "fuzz.h"
#include "stun-server/stun_server.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stun_msg m;
	struct stun_attr a;
	size_t off = 0;

	memset(&m, 0, sizeof(m));
	if (stun_parse(data, size, &m) != STUN_OK)
		return 0;
	FUZZ_ASSERT((size_t)m.len + 20 <= size);
	while (stun_attr_next(m.attrs, m.len, &off, &a) == 1) {
		struct sockaddr_storage ss;
		uint16_t types[16];
		size_t n;
		uint32_t flags;
		int code;
		char reason[128];

		(void)stun_get_addr(&a, 1, m.txid, &ss);
		(void)stun_get_addr(&a, 0, m.txid, &ss);
		(void)stun_get_error(&a, &code, reason, sizeof(reason));
		(void)stun_get_unknown(&a, types, 16, &n);
		(void)stun_get_change(&a, &flags);
	}
	return 0;
}
