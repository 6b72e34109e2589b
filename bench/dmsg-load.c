/*
 * dmsg-load: the load generator of bench/dmsg-*.sh, built on dmsg_session
 * alone (raw frames, no stream crypto: the relay never reads DATA anyway,
 * so a DATA payload of random bytes costs it exactly what a KK message does).
 *
 *   dmsg-load keygen                    a seed and its public key, hex
 *   dmsg-load aead                      ChaCha20-Poly1305 MB/s on 64 KiB messages
 *   dmsg-load tcp BYTES                 plain TCP echo through a forked echo child, MB/s
 *   dmsg-load relay PORT SPK BYTES      one stream A -> server -> B (B forked), MB/s
 *   dmsg-load sessions PORT SPK N       N idle sessions; handshakes/s; holds them until
 *                                       stdin closes
 *   dmsg-load churn PORT SPK N ROUNDS   ROUNDS times: N sessions up ("up R"), then all
 *                                       closed ("down R"); each step waits for a line
 *                                       on stdin (the script measures in between)
 *
 * Results go to stdout as "key value" lines for the scripts.
 */
#include <errno.h>
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>

#include "crypto.h"
#include "dmsg_session.h"
#include "dmsg_wire.h"

#define CHUNK 60000

static struct event_base *base;
static int port;
static uint8_t spk[SW_PK_LEN];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct bufferevent *
connect_bev(void)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bev == NULL || bufferevent_socket_connect(bev, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1) {
		perror("connect");
		exit(1);
	}
	return bev;
}

/* ---------- aead ---------- */

static int
run_aead(void)
{
	static uint8_t m[65536 + 16];
	uint8_t k[32], n[12] = {0};
	unsigned long long clen, total = 0;
	double t0 = now_s(), dt;

	randombytes_buf(k, sizeof(k));
	do {
		for (int i = 0; i < 256; i++) {
			crypto_aead_chacha20poly1305_ietf_encrypt(m, &clen, m, 65536, NULL, 0, NULL,
			    n, k);
			n[0]++;
			total += 65536;
		}
		dt = now_s() - t0;
	} while (dt < 1.0);
	printf("aead_mbps %.1f\n", (double)total / dt / 1e6);
	return 0;
}

/* ---------- tcp echo ---------- */

static unsigned long long want, got_bytes;
static double t_start;

static void
echo_child(int lfd)
{
	static char buf[65536];
	int c = accept(lfd, NULL, NULL);
	ssize_t n;

	while ((n = read(c, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(c, buf + off, (size_t)(n - off));

			if (w <= 0)
				_exit(1);
			off += w;
		}
	_exit(0);
}

static void
tcp_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	got_bytes += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (got_bytes >= want)
		event_base_loopbreak(base);
}

static unsigned long long sent_bytes;

static void
tcp_write(struct bufferevent *bev, void *arg)
{
	static uint8_t chunk[CHUNK];

	(void)arg;
	while (sent_bytes < want && evbuffer_get_length(bufferevent_get_output(bev)) < 1 << 20) {
		bufferevent_write(bev, chunk, sizeof(chunk));
		sent_bytes += sizeof(chunk);
	}
}

static int
run_tcp(unsigned long long bytes)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct bufferevent *bev;
	pid_t pid;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) == -1)
		return 1;
	port = ntohs(sin.sin_port);
	if ((pid = fork()) == 0)
		echo_child(lfd);
	close(lfd);
	want = bytes;
	bev = connect_bev();
	bufferevent_setcb(bev, tcp_read, tcp_write, NULL, NULL);
	bufferevent_setwatermark(bev, EV_WRITE, 256 * 1024, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	t_start = now_s();
	tcp_write(bev, NULL);
	event_base_dispatch(base);
	printf("tcp_echo_mbps %.1f\n", (double)got_bytes / (now_s() - t_start) / 1e6);
	bufferevent_free(bev);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return 0;
}

/* ---------- relay ---------- */

struct peer {
	struct sw_keypair kp;
	struct dmsg_session *s;
	int ready;
	int accepted;
	uint32_t sid;
	unsigned long long window; /* sender: bytes it may still send */
	unsigned long long since_grant;
	int notify_fd;
};

static struct peer A, B;

static void
fill(struct peer *p)
{
	static uint8_t chunk[CHUNK];

	while (p->accepted && sent_bytes < want && p->window >= CHUNK &&
	    dmsg_session_outbuf(p->s) < 1 << 20) {
		if (dmsg_session_send(p->s, DMSG_DATA, p->sid, chunk, CHUNK) == -1)
			break;
		p->window -= CHUNK;
		sent_bytes += CHUNK;
	}
}

static void
send_open(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_session *s = arg;
	uint8_t req[256];
	struct dmsg_stream_req r;
	uint8_t noise[48];
	int n;

	(void)fd;
	(void)what;
	memset(&r, 0, sizeof(r));
	randombytes_buf(noise, sizeof(noise));
	r.timestamp_ms = (uint64_t)time(NULL) * 1000;
	memcpy(r.src_pk, A.kp.pk, SW_PK_LEN);
	memcpy(r.dst_pk, B.kp.pk, SW_PK_LEN);
	r.src_port = 50000;
	r.dst_port = 45;
	r.noise_len = sizeof(noise);
	r.noise_msg = noise;
	n = dmsg_stream_req_encode(&r, &A.kp, req, sizeof(req));
	A.sid += 2;
	dmsg_session_send(s, DMSG_OPEN, A.sid, req, (size_t)n);
}

static void
p_ready(struct dmsg_session *s, void *arg)
{
	struct peer *p = arg;

	p->ready = 1;
	if (p == &B) {
		if (write(p->notify_fd, "r", 1) != 1)
			exit(1);
		return;
	}
	A.sid = 1;
	send_open(-1, 0, s);
}

static void
p_frame(struct dmsg_session *s, uint8_t type, uint32_t sid, const uint8_t *pl, size_t len,
    void *arg)
{
	struct peer *p = arg;
	uint8_t resp[256], w[4];
	struct dmsg_stream_resp r;
	uint8_t noise[48];
	int n;

	if (p == &B && type == DMSG_OPEN) {
		memset(&r, 0, sizeof(r));
		randombytes_buf(noise, sizeof(noise));
		sw_hash(r.req_hash, pl, len);
		r.noise_len = sizeof(noise);
		r.noise_msg = noise;
		n = dmsg_stream_resp_encode(&r, &B.kp, resp, sizeof(resp));
		B.sid = sid;
		dmsg_session_send(s, DMSG_ACCEPT, sid, resp, (size_t)n);
		/* A receive window of 4 MiB beyond the initial one, as a bulk reader would. */
		sw_put_u32(w, 4u << 20);
		dmsg_session_send(s, DMSG_WINDOW, sid, w, 4);
	} else if (p == &B && type == DMSG_DATA) {
		if (got_bytes == 0)
			t_start = now_s();
		got_bytes += len;
		p->since_grant += len;
		if (p->since_grant >= 128 * 1024) {
			sw_put_u32(w, (uint32_t)p->since_grant);
			dmsg_session_send(s, DMSG_WINDOW, sid, w, 4);
			p->since_grant = 0;
		}
		if (got_bytes >= want) {
			printf("relay_mbps %.1f\n", (double)got_bytes / (now_s() - t_start) / 1e6);
			fflush(stdout);
			event_base_loopbreak(base);
		}
	} else if (p == &A && type == DMSG_ACCEPT) {
		A.accepted = 1;
		A.sid = sid;
		A.window = DMSG_INITIAL_WINDOW;
		fill(&A);
	} else if (p == &A && type == DMSG_WINDOW) {
		A.window += sw_get_u32(pl);
		fill(&A);
	} else if (p == &A && type == DMSG_REJECT && len > 0 && pl[0] == DMSG_REJECT_NO_SESSION) {
		/* B's handshake is done on its side, maybe not yet on the server's: retry. */
		struct timeval tv = {0, 10000};

		event_base_once(base, -1, EV_TIMEOUT, send_open, s, &tv);
	} else if (p == &A && sent_bytes >= want) {
		/* The receiver is done and gone; its exit status is the result. */
		int st;

		wait(&st);
		exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	} else if (type == DMSG_REJECT || type == DMSG_RESET) {
		fprintf(stderr, "dmsg-load: stream ended type=%u code=%u\n", type,
		    len > 0 ? pl[0] : 0);
		exit(1);
	}
}

static void
p_closed(struct dmsg_session *s, const char *reason, void *arg)
{
	int st;

	(void)s;
	if (arg == &A && sent_bytes >= want) {
		/* B hung up after counting everything: its status is ours. */
		wait(&st);
		exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	fprintf(stderr, "dmsg-load: session closed: %s\n", reason);
	exit(1);
}

static void
p_drained(struct dmsg_session *s, void *arg)
{
	(void)s;
	if (arg == &A)
		fill(&A);
}

static const struct dmsg_session_cbs peer_cbs = {p_ready, p_frame, p_closed, p_drained};

static int
run_relay(unsigned long long bytes)
{
	int pfd[2];
	char c;
	pid_t pid;
	int st;

	want = bytes;
	sw_keypair_generate(&A.kp);
	sw_keypair_generate(&B.kp);
	if (pipe(pfd) == -1)
		return 1;
	if ((pid = fork()) == 0) {
		event_reinit(base);
		B.notify_fd = pfd[1];
		B.s = dmsg_session_new(base, connect_bev(), 1, &B.kp, spk, &peer_cbs, &B, NULL,
		    "bench");
		event_base_dispatch(base);
		_exit(0);
	}
	if (read(pfd[0], &c, 1) != 1)
		return 1;
	A.s = dmsg_session_new(base, connect_bev(), 1, &A.kp, spk, &peer_cbs, &A, NULL, "bench");
	while (waitpid(pid, &st, WNOHANG) == 0)
		event_base_loop(base, EVLOOP_ONCE);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* ---------- sessions ---------- */

static int nready;

static void
s_ready(struct dmsg_session *s, void *arg)
{
	(void)s;
	(void)arg;
	nready++;
}

static void
s_frame(struct dmsg_session *s, uint8_t type, uint32_t sid, const uint8_t *pl, size_t len,
    void *arg)
{
	(void)s, (void)type, (void)sid, (void)pl, (void)len, (void)arg;
}

static void
s_closed(struct dmsg_session *s, const char *reason, void *arg)
{
	(void)s;
	(void)arg;
	fprintf(stderr, "dmsg-load: session closed: %s\n", reason);
	exit(1);
}

static const struct dmsg_session_cbs sess_cbs = {s_ready, s_frame, s_closed, NULL};

static void
stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	(void)what;
	(void)arg;
	if (read(fd, buf, sizeof(buf)) <= 0)
		event_base_loopbreak(base);
}

/* Open n sessions with fresh keys (in batches) and wait until all are ready. */
static struct dmsg_session **
open_sessions(int n, double *secs)
{
	struct sw_keypair *kps = calloc((size_t)n, sizeof(*kps));
	struct dmsg_session **ss = calloc((size_t)n, sizeof(*ss));
	int base_ready = nready;
	double t0;

	if (kps == NULL || ss == NULL)
		exit(1);
	for (int i = 0; i < n; i++)
		sw_keypair_generate(&kps[i]);
	t0 = now_s();
	/* In batches, so the server's accept queue and handshake cap are not the test. */
	for (int i = 0; i < n; i++) {
		if ((ss[i] = dmsg_session_new(base, connect_bev(), 1, &kps[i], spk, &sess_cbs, NULL,
		    NULL, "bench")) == NULL)
			exit(1);
		if (i % 200 == 199)
			while (nready - base_ready < i + 1)
				event_base_loop(base, EVLOOP_ONCE);
	}
	while (nready - base_ready < n)
		event_base_loop(base, EVLOOP_ONCE);
	*secs = now_s() - t0;
	/* The keys must outlive the sessions: kept until the process ends. */
	return ss;
}

static int got_line;

static void
line_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	(void)what;
	(void)arg;
	if (read(fd, buf, sizeof(buf)) <= 0)
		exit(0);
	got_line = 1;
}

/* Run the loop (our last handshake messages still have to go out) until stdin says go. */
static void
wait_line(void)
{
	struct event *ev = event_new(base, 0, EV_READ, line_cb, NULL);

	got_line = 0;
	event_add(ev, NULL);
	while (!got_line)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

static int
run_churn(int n, int rounds)
{
	for (int r = 1; r <= rounds; r++) {
		double secs;
		struct dmsg_session **ss = open_sessions(n, &secs);

		printf("up %d\n", r);
		fflush(stdout);
		wait_line();
		for (int i = 0; i < n; i++)
			dmsg_session_free(ss[i]);
		free(ss);
		printf("down %d\n", r);
		fflush(stdout);
		wait_line();
	}
	return 0;
}

static int
run_sessions(int n)
{
	struct event *ev;
	double secs;

	open_sessions(n, &secs);
	printf("handshakes_per_s %.0f\n", n / secs);
	printf("ready %d\n", nready);
	fflush(stdout);
	ev = event_new(base, 0, EV_READ | EV_PERSIST, stdin_cb, NULL);
	event_add(ev, NULL);
	event_base_dispatch(base);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || sw_crypto_init() == -1)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (strcmp(argv[1], "keygen") == 0) {
		struct sw_keypair kp;
		char hex[SW_PK_HEX];

		sw_keypair_generate(&kp);
		sw_keypair_seed_hex(&kp, hex);
		printf("%s ", hex);
		sw_hex_encode(hex, kp.pk, SW_PK_LEN);
		printf("%s\n", hex);
		return 0;
	}
	if (strcmp(argv[1], "aead") == 0)
		return run_aead();
	if (strcmp(argv[1], "tcp") == 0 && argc == 3)
		return run_tcp(strtoull(argv[2], NULL, 10));
	if (argc != 5 && argc != 6)
		goto usage;
	port = atoi(argv[2]);
	if (sw_hex_decode(spk, SW_PK_LEN, argv[3]) == -1)
		goto usage;
	if (strcmp(argv[1], "relay") == 0)
		return run_relay(strtoull(argv[4], NULL, 10));
	if (strcmp(argv[1], "churn") == 0 && argc == 6)
		return run_churn(atoi(argv[4]), atoi(argv[5]));
	if (strcmp(argv[1], "sessions") == 0)
		return run_sessions(atoi(argv[4]));
usage:
	fprintf(stderr, "usage: dmsg-load aead | tcp BYTES | relay PORT SPK BYTES | "
	    "sessions PORT SPK N | churn PORT SPK N ROUNDS\n");
	return 2;
}
