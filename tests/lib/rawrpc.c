/* rawrpc: see rawrpc.h. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "dmsg_client.h"
#include "frpc.h"
#include "tests/lib/rawrpc.h"
#include "tests/lib/testutil.h"

struct raw {
	struct dmsg_stream *st;
	struct evbuffer *in;
	const uint8_t *send;
	size_t send_len;
	int closed;
};

static void
raw_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	(void)st;
	evbuffer_add(((struct raw *)arg)->in, data, len);
}

static void
raw_end(struct dmsg_stream *st, void *arg)
{
	(void)st;
	((struct raw *)arg)->closed = 1;
}

static void
raw_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	(void)why;
	raw_end(st, arg);
}

static const struct dmsg_stream_cbs raw_cbs = {raw_read, raw_end, raw_closed, NULL};

static void
raw_dialled(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct raw *r = arg;

	(void)reject;
	(void)err;
	if (st == NULL) {
		r->st = NULL;
		r->closed = 1;
		return;
	}
	dmsg_stream_set_cbs(st, &raw_cbs, r);
	dmsg_stream_write(st, r->send, r->send_len);
}

int
sw_test_rawrpc(struct event_base *base, struct dmsg_client *c, const uint8_t pk[SW_PK_LEN],
    uint16_t port, const uint8_t *bytes, size_t len, int timeout_ms, char *err, size_t errsz)
{
	struct raw r;
	cJSON *v = NULL;
	size_t used;
	uint8_t *p;
	int closed;

	memset(&r, 0, sizeof(r));
	err[0] = '\0';
	if ((r.in = evbuffer_new()) == NULL)
		return -1;
	r.send = bytes;
	r.send_len = len;
	if ((r.st = dmsg_client_dial(c, pk, port, 5000, raw_dialled, &r)) == NULL) {
		evbuffer_free(r.in);
		return -1;
	}
	closed = sw_test_run_until(base, &r.closed, timeout_ms) == 0;
	p = evbuffer_pullup(r.in, -1);
	if (p != NULL && frpc_frame_get(p, evbuffer_get_length(r.in), &v, &used) ==
	    FRPC_FRAME_OK) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "error");

		if (cJSON_IsString(e))
			snprintf(err, errsz, "%s", e->valuestring);
	}
	cJSON_Delete(v);
	dmsg_stream_free(r.st);
	evbuffer_free(r.in);
	return closed;
}
