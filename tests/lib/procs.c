/*
 * procs: see procs.h.  Readiness is "accepts TCP on its port", polled in
 * short steps while checking that the child is still alive, so a daemon that
 * refuses its flags fails the test at once instead of after a timeout.
 */
#include "procs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include <event2/event.h>

#include "log.h"
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "testutil.h"

#define START_MS 10000
#define STEP_MS  10

const char *
sw_test_bindir(void)
{
	static char dir[256];
	const char *b = getenv("SW_BUILD");

	if (dir[0] == '\0')
		snprintf(dir, sizeof(dir), "%s/bin", b != NULL && *b != '\0' ? b : "build");
	return dir;
}

pid_t
sw_test_spawn(char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
		int fd = open("/dev/null", O_RDWR);

		if (fd != -1) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid == -1)
		fprintf(stderr, "procs: fork: %s\n", strerror(errno));
	return pid;
}

/* Spawn argv as p and wait until p->port accepts or the child exits. */
static int
start(struct sw_test_proc *p, char *const argv[])
{
	struct timespec step = {0, STEP_MS * 1000000L};

	if ((p->pid = sw_test_spawn(argv)) <= 0) {
		p->pid = 0;
		return -1;
	}
	for (int waited = 0; waited < START_MS; waited += STEP_MS) {
		if (sw_test_wait_port(p->port, 0) == 0)
			return 0;
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			fprintf(stderr, "procs: %s exited before listening on %d\n", argv[0],
			    p->port);
			return -1;
		}
		nanosleep(&step, NULL);
	}
	fprintf(stderr, "procs: %s does not listen on %d after %d ms\n", argv[0], p->port,
	    START_MS);
	sw_test_proc_kill(p);
	return -1;
}

int
sw_test_dmsg_discovery_start(struct sw_test_proc *p)
{
	char bin[512], listen[64];
	char *argv[] = {bin, "--listen", listen, "--log-level", "warn", NULL};

	snprintf(bin, sizeof(bin), "%s/dmsg-discovery", sw_test_bindir());
	if ((p->port = sw_test_free_port()) == -1)
		return -1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	return start(p, argv);
}

int
sw_test_dmsg_server_start(struct sw_test_proc *p, const char *discovery)
{
	char bin[512], listen[64], health[64], disc[256], seed[SW_PK_HEX], pk[SW_PK_HEX];
	char *argv[] = {bin, "--listen", listen, "--health-listen", health, "--discovery", disc,
	    "--secret-key", seed, "--public-key", pk, "--log-level", "warn", NULL};

	snprintf(bin, sizeof(bin), "%s/dmsg-server", sw_test_bindir());
	snprintf(disc, sizeof(disc), "%s", discovery);
	if ((p->port = sw_test_free_port()) == -1 || (p->health_port = sw_test_free_port()) == -1)
		return -1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
	snprintf(health, sizeof(health), "127.0.0.1:%d", p->health_port);
	sw_keypair_seed_hex(&p->kp, seed);
	sw_hex_encode(pk, p->kp.pk, SW_PK_LEN);
	return start(p, argv);
}

void
sw_test_proc_kill(struct sw_test_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, NULL, 0) == -1 && errno == EINTR)
		;
	p->pid = 0;
}

int
sw_test_relay_start(struct event_base **base, struct sw_test_proc *disc,
    struct sw_test_proc *srv, int n)
{
	signal(SIGPIPE, SIG_IGN);
	if (sw_crypto_init() == -1)
		return -1;
	sw_log_set_level(SW_LOG_WARN);
	if ((*base = event_base_new()) == NULL)
		return -1;
	if (sw_test_dmsg_discovery_start(disc) == -1)
		return -1;
	for (int i = 0; i < n; i++) {
		sw_keypair_generate(&srv[i].kp);
		if (sw_test_dmsg_server_start(&srv[i], disc->url) == -1)
			return -1;
	}
	return 0;
}

void
sw_test_relay_stop(struct event_base *base, struct sw_test_proc *disc,
    struct sw_test_proc *srv, int n)
{
	for (int i = 0; i < n; i++)
		sw_test_proc_kill(&srv[i]);
	sw_test_proc_kill(disc);
	if (base != NULL)
		event_base_free(base);
}
