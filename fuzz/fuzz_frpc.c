/*
 * fuzz_frpc: the framed JSON RPC ("len u32 BE | JSON", routing.md), frame
 * after frame as a stream reader takes them, with the invariant that a
 * frame read and written again reads the same.
 */
#include <event2/buffer.h>

#include <cjson/cJSON.h>

#include "frpc.h"
#include "fuzz.h"
#include "log.h"

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
	size_t off = 0;

	while (off < size) {
		cJSON *v = NULL, *w = NULL;
		size_t used = 0, used2 = 0;
		enum frpc_frame rc = frpc_frame_get(data + off, size - off, &v, &used);
		struct evbuffer *b;

		if (rc != FRPC_FRAME_OK)
			break;
		FUZZ_ASSERT(used > 0 && used <= size - off);
		off += used;
		if ((b = evbuffer_new()) != NULL && frpc_frame_put(b, v) == 0) {
			size_t n = evbuffer_get_length(b);
			const uint8_t *p = evbuffer_pullup(b, -1);

			FUZZ_ASSERT(frpc_frame_get(p, n, &w, &used2) == FRPC_FRAME_OK);
			FUZZ_ASSERT(used2 == n && cJSON_Compare(v, w, 1));
			cJSON_Delete(w);
		}
		evbuffer_free(b);
		cJSON_Delete(v);
	}
	return 0;
}
