/*
 * testutil: see testutil.h.  Waiting is done by polling with short bounded
 * steps (connect attempts) or by the event loop itself (a timeout event
 * ends the wait), never by one long sleep.
 */
#include "testutil.h"
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <event2/event.h>

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
loopback(struct sockaddr_in *sin, int port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Whether port binds on 127.0.0.1 as a socket of type, right now. */
static int
port_binds(int type, int port)
{
	struct sockaddr_in sin;
	int fd, ok;

	if ((fd = socket(AF_INET, type, 0)) == -1)
		return 0;
	loopback(&sin, port);
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/*
 * Below the kernel's ephemeral range (32768 and up by default): a port the
 * kernel gave for bind(0) comes from that range, where any process's
 * outgoing connect() can take it as its local port before the test's
 * daemon listens on it. Down here only a listener can hold it. Each port is
 * given once per process.
 */
int
sw_test_free_port(void)
{
	static unsigned char given[65536 / 8];
	static int seeded;
	int i, port;

	if (!seeded) {
		srandom((unsigned)getpid() ^ (unsigned)time(NULL));
		seeded = 1;
	}
	for (i = 0; i < 1000; i++) {
		port = 10000 + (int)(random() % 22000);
		if (given[port / 8] & (1 << (port % 8)))
			continue;
		if (!port_binds(SOCK_STREAM, port) || !port_binds(SOCK_DGRAM, port))
			continue;
		given[port / 8] |= (unsigned char)(1 << (port % 8));
		return port;
	}
	fprintf(stderr, "testutil: no free port below the ephemeral range\n");
	return -1;
}

int
sw_test_wait_port(int port, int timeout_ms)
{
	struct sockaddr_in sin;
	long long deadline = mono_ms() + timeout_ms;
	int fd, ok;

	loopback(&sin, port);
	for (;;) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return -1;
		ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return 0;
		if (mono_ms() >= deadline)
			break;
		sleep_ms(10);
	}
	if (timeout_ms > 0)
		fprintf(stderr, "testutil: nothing listens on port %d after %d ms\n", port,
		    timeout_ms);
	return -1;
}

int
sw_test_redis_start(struct sw_test_redis *r, int port)
{
	const char *bin = getenv("SW_TEST_REDIS_SERVER");
	char portstr[16];
	long long deadline;
	pid_t pid;
	int fd;

	if (port == 0 && (port = sw_test_free_port()) == -1)
		return -1;
	if (bin == NULL || *bin == '\0')
		bin = "redis-server";
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "testutil: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		execlp(bin, bin, "--port", portstr, "--save", "", "--appendonly", "no", "--bind",
		    "127.0.0.1", "--loglevel", "warning", (char *)NULL);
		fprintf(stderr, "testutil: exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	r->pid = pid;
	r->port = port;
	snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", port);
	/* short connect polls, giving up at once if the child died (no binary, port taken) */
	for (deadline = mono_ms() + 10000; mono_ms() < deadline;) {
		if (sw_test_wait_port(port, 0) == 0)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			r->pid = 0;
			fprintf(stderr, "testutil: %s exited before listening on %d\n", bin, port);
			return -1;
		}
		sleep_ms(10);
	}
	sw_test_redis_stop(r);
	return -1;
}

void
sw_test_redis_stop(struct sw_test_redis *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	while (waitpid(r->pid, NULL, 0) == -1 && errno == EINTR)
		;
	r->pid = 0;
}

static void
run_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

int
sw_test_run_until_fn(struct event_base *base, int (*pred)(void *), void *arg, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct event *ev;
	int timedout = 0;

	if ((ev = evtimer_new(base, run_timeout, &timedout)) == NULL || evtimer_add(ev, &tv) == -1) {
		if (ev != NULL)
			event_free(ev);
		return -1;
	}
	/* the timer guarantees EVLOOP_ONCE returns */
	while (!pred(arg) && !timedout)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	return pred(arg) ? 0 : -1;
}

static int
flag_set(void *arg)
{
	return *(const int *)arg != 0;
}

int
sw_test_run_until(struct event_base *base, const int *flag, int timeout_ms)
{
	/* flag is only read */
	union {
		const int *c;
		void *v;
	} u = {.c = flag};

	return sw_test_run_until_fn(base, flag_set, u.v, timeout_ms);
}

static int
never(void *arg)
{
	(void)arg;
	return 0;
}

void
sw_test_run_for(struct event_base *base, int ms)
{
	sw_test_run_until_fn(base, never, NULL, ms);
}

/* The bare service of sw_test_svc: nothing to start or stop. */
static void *
bare_create(struct sw_svc *svc, const cJSON *cfg)
{
	(void)cfg;
	return svc;
}

static int
bare_start(void *priv)
{
	(void)priv;
	return 0;
}

static void
bare_stop(void *priv, sw_svc_stopped *done)
{
	done(priv);
}

static void
bare_destroy(void *priv)
{
	(void)priv;
}

static const struct sw_cfg_key bare_keys[] = {{NULL, 0, NULL, NULL}};

static const struct sw_service_ops bare_ops = {
	.type = "test",
	.summary = "a bare service for unit tests",
	.keys = bare_keys,
	.uses_store = 1,
	.create = bare_create,
	.start = bare_start,
	.stop = bare_stop,
	.destroy = bare_destroy,
};

struct sw_svc *
sw_test_svc(struct event_base *base, const char *name, struct sw_supervisor **sup)
{
	*sup = sw_supervisor_new(base, NULL);
	if (*sup == NULL) {
		fprintf(stderr, "testutil: no supervisor\n");
		return NULL;
	}
	/* The supervisor takes the config. */
	return sw_supervisor_add(*sup, &bare_ops, name, cJSON_CreateObject(), NULL);
}

static unsigned libevent_warnings;

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		libevent_warnings++;
	fprintf(stderr, "libevent: %s\n", msg);
}

void
sw_test_libevent_watch(void)
{
	event_set_log_callback(libevent_log);
}

unsigned
sw_test_libevent_warnings(void)
{
	return libevent_warnings;
}
