/*
 * fuzz_cxo_conn: the CXO message stream as a publisher reads it (framing,
 * sequence numbers, the SYN handshake, every length), through a bufferevent
 * pair, with a message callback that accepts everything it is given.
 */
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cxo_wire.h"
#include "fuzz.h"
#include "log.h"

static struct event_base *base;
static int closed;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sw_log_set_level(SW_LOG_ERROR);
	return (base = event_base_new()) != NULL ? 0 : -1;
}

static int
on_msg(struct cxo_conn *c, uint8_t type, uint32_t seq, uint32_t rseq, const uint8_t *body,
    size_t len, void *arg)
{
	(void)c;
	(void)type;
	(void)seq;
	(void)rseq;
	(void)arg;
	FUZZ_ASSERT(len <= CXO_MAX_MSG && (len == 0 || body != NULL));
	return 0;
}

static void
on_closed(struct cxo_conn *c, const char *reason, void *arg)
{
	(void)c;
	(void)reason;
	(void)arg;
	closed = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cxo_conn_cbs cbs = {NULL, on_msg, on_closed};
	struct bufferevent *pair[2];
	struct cxo_conn *c;

	closed = 0;
	FUZZ_ASSERT(bufferevent_pair_new(base, 0, pair) == 0);
	c = cxo_conn_new(pair[1], 1, "fuzz", &cbs, NULL);
	FUZZ_ASSERT(c != NULL);
	bufferevent_enable(pair[0], EV_READ | EV_WRITE);
	bufferevent_write(pair[0], data, size);
	for (int i = 0; i < 16 && !closed; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cxo_conn_free(c);
	bufferevent_free(pair[0]);
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
