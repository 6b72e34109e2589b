/*
 * test_listener: the per-peer cap, the connection cap and the pause on
 * EMFILE, against real loopback sockets in one event_base.
 *
 * The EMFILE case lowers RLIMIT_NOFILE below what the waiting connections
 * need, so accept fails with EMFILE: the listener must pause (the loop goes
 * quiet instead of spinning on a readable socket) and pick up the rest once
 * descriptors come free.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "listener.h"
#include "log.h"

#define NCLI 20

struct fx {
	struct event_base *base;
	struct sw_listener *l;
	int fds[NCLI * 2];
	struct sw_listener_peer *peers[NCLI * 2];
	int nacc;
	int over;
	int cli[NCLI];
};

static void
on_conn(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    struct sw_listener_peer *peer, int over_cap, void *arg)
{
	struct fx *f = arg;

	(void)sa;
	(void)salen;
	f->over += over_cap;
	f->peers[f->nacc] = peer;
	f->fds[f->nacc++] = fd;
}

static int
dial(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void
expired_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run the loop until f->nacc reaches n or ms pass; returns loop turns. */
static int
run_until(struct fx *f, int n, int ms)
{
	int expired = 0, turns = 0;
	struct event *t = evtimer_new(f->base, expired_cb, &expired);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(t, &tv);
	while (f->nacc < n && !expired) {
		event_base_loop(f->base, EVLOOP_ONCE);
		turns++;
	}
	event_free(t);
	return turns;
}

static int
setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	f.base = event_base_new();
	*state = &f;
	return f.base == NULL;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < f->nacc; i++) {
		if (f->fds[i] >= 0)
			close(f->fds[i]);
		sw_listener_release(f->l, f->peers[i]);
	}
	for (int i = 0; i < NCLI; i++)
		if (f->cli[i] > 0)
			close(f->cli[i]);
	sw_listener_free(f->l);
	event_base_free(f->base);
	return 0;
}

/* Is fd closed by the other side (EOF), waiting at most ms? */
static int
peer_closed(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	char c;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(fd, &c, 1, 0) == 0;
}

static void
test_per_peer_cap(void **state)
{
	struct fx *f = *state;
	struct sw_listener_opts o = {.max_per_peer = 2};
	int port;

	f->l = sw_listener_new(f->base, "t", &o, on_conn, f);
	assert_non_null(f->l);
	assert_int_equal(sw_listener_bind(f->l, "127.0.0.1:0"), 0);
	port = sw_listener_port(f->l);
	for (int i = 0; i < 3; i++)
		f->cli[i] = dial(port);
	run_until(f, 3, 300);
	assert_int_equal(f->nacc, 2);
	assert_int_equal(sw_listener_open(f->l), 2);
	/* The third was closed at once, not left in the backlog. */
	assert_true(peer_closed(f->cli[2], 2000));
	/* One given back: the peer may connect again. */
	close(f->fds[0]);
	sw_listener_release(f->l, f->peers[0]);
	f->fds[0] = f->fds[1];
	f->peers[0] = f->peers[1];
	f->nacc = 1;
	f->cli[3] = dial(port);
	run_until(f, 2, 2000);
	assert_int_equal(f->nacc, 2);
	assert_int_equal(f->over, 0);
}

/* keep_over_cap hands the extra connection over, flagged. */
static void
test_over_cap_flagged(void **state)
{
	struct fx *f = *state;
	struct sw_listener_opts o = {.max_per_peer = 1, .keep_over_cap = 1};
	int port;

	f->l = sw_listener_new(f->base, "t", &o, on_conn, f);
	assert_int_equal(sw_listener_bind(f->l, "127.0.0.1:0"), 0);
	port = sw_listener_port(f->l);
	f->cli[0] = dial(port);
	f->cli[1] = dial(port);
	run_until(f, 2, 2000);
	assert_int_equal(f->nacc, 2);
	assert_int_equal(f->over, 1);
}

static void
test_max_conns_pauses(void **state)
{
	struct fx *f = *state;
	struct sw_listener_opts o = {.max_conns = 2};
	int port;

	f->l = sw_listener_new(f->base, "t", &o, on_conn, f);
	assert_int_equal(sw_listener_bind(f->l, "127.0.0.1:0"), 0);
	port = sw_listener_port(f->l);
	for (int i = 0; i < 3; i++)
		f->cli[i] = dial(port);
	run_until(f, 3, 300);
	assert_int_equal(f->nacc, 2);
	assert_true(sw_listener_paused(f->l));
	close(f->fds[0]);
	sw_listener_release(f->l, f->peers[0]);
	f->fds[0] = -1;
	f->peers[0] = NULL; /* given back: teardown skips it */
	run_until(f, 3, 2000);
	assert_int_equal(f->nacc, 3);
}

static void
test_emfile_pauses(void **state)
{
	struct fx *f = *state;
	struct rlimit old, low;
	int port, turns, maxfd = 0, before, shed = 0;

	f->l = sw_listener_new(f->base, "t", NULL, on_conn, f);
	assert_int_equal(sw_listener_bind(f->l, "127.0.0.1:0"), 0);
	port = sw_listener_port(f->l);
	for (int i = 0; i < NCLI; i++) {
		f->cli[i] = dial(port);
		if (f->cli[i] > maxfd)
			maxfd = f->cli[i];
	}
	/* Room for two more descriptors: the rest of the accepts fail. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)maxfd + 3;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	turns = run_until(f, NCLI, 600);
	assert_true(f->nacc < NCLI);
	assert_true(sw_listener_paused(f->l) || f->nacc == 0);
	/* A spinning listener turns the loop thousands of times in 600 ms. */
	assert_true(turns < 40);
	/* Descriptors come back: the waiting connections are served. */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	before = f->nacc;
	for (int i = 0; i < f->nacc; i++) {
		close(f->fds[i]);
		sw_listener_release(f->l, f->peers[i]);
	}
	f->nacc = 0;
	/*
	 * The reserve shed the oldest waiting peer at each try; they and the
	 * ones served and closed above see EOF.  Every other one gets in now.
	 */
	for (int i = 0; i < NCLI; i++) {
		struct timeval tv = {0, 1000};
		char c;

		setsockopt(f->cli[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		shed += recv(f->cli[i], &c, 1, MSG_DONTWAIT) == 0;
	}
	assert_true(shed >= before + 1);
	run_until(f, NCLI - shed, 3000);
	assert_int_equal(f->nacc, NCLI - shed);
	assert_false(sw_listener_paused(f->l));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_per_peer_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_over_cap_flagged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_conns_pauses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_pauses, setup, teardown),
	};

	sw_log_set_level(SW_LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
