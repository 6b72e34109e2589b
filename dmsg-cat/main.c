/*
 * dmsg-cat: nc over dmsg.
 *
 *   dmsg-cat [-d URL] [-k SECRET_KEY_HEX] -l PORT     accept one stream
 *   dmsg-cat [-d URL] [-k SECRET_KEY_HEX] PK PORT     dial one
 *
 * stdin goes to the stream, the stream to stdout.  On stdin EOF the stream
 * is half-closed and reading goes on until the peer closes; the program
 * exits when the stream has ended (0 when both sides closed cleanly).
 *
 * The one idea: both ends of the pipe are flow-controlled by the other.
 * stdin is read only while the stream's send queue is short, and the
 * stream's reads pause while stdout has a backlog, so a slow consumer at
 * either end holds the producer back through dmsg windows, with bounded
 * memory.  stdin and stdout may be pipes, terminals or regular files;
 * files cannot be polled, so they are read and written directly (a file
 * never blocks for long).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "crypto.h"
#include "dmsg_client.h"
#include "log.h"

#define SVC          "dmsg-cat"
#define CHUNK        (64 * 1024)
#define STREAM_HWM   (1u << 20)   /* stop reading stdin past this much queued */
#define OUT_HWM      (1u << 20)   /* stop reading the stream past this much for stdout */
#define DIAL_TIMEOUT 20000

struct cat {
	struct event_base *base;
	struct dmsg_client *client;
	struct dmsg_listener *listener;
	struct dmsg_stream *st;
	struct sw_keypair kp;
	int listening;
	uint8_t peer[SW_PK_LEN];
	uint16_t port;
	int announced;
	int dialled;

	struct event *in_ev;     /* stdin readable, or activated by hand for files */
	int in_poll;             /* stdin can be polled */
	int in_eof;
	struct event *out_ev;    /* stdout writable */
	int out_poll;
	struct evbuffer *out;    /* for stdout */
	int out_err;

	int ended;
	enum dmsg_stream_end why;
	int status;
	struct event *sigint, *sigterm;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dmsg-cat [-d DISCOVERY_URL] [-k SECRET_KEY_HEX] [-v] -l PORT\n"
	    "       dmsg-cat [-d DISCOVERY_URL] [-k SECRET_KEY_HEX] [-v] PK PORT\n"
	    "\n"
	    "nc over dmsg: stdin to the stream, the stream to stdout, one stream.\n"
	    "\n"
	    "  -d, --discovery URL   dmsg-discovery (default http://127.0.0.1:9090)\n"
	    "  -k, --secret-key HEX  Ed25519 seed, 64 hex chars (default: a fresh key)\n"
	    "  -l, --listen PORT     accept one stream on PORT instead of dialling\n"
	    "  -v, --verbose         debug logs on stderr\n"
	    "  -h, --help, -V, --version\n"
	    "\n"
	    "Prints its public key on stderr at start. Exits 0 when the stream ended\n"
	    "with both sides closed, 1 otherwise.\n");
}

static int
parse_port(const char *s, uint16_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static void
drained(void *arg)
{
	struct cat *k = arg;

	event_base_loopexit(k->base, NULL);
}

static void
finish(struct cat *k)
{
	/*
	 * Leave once the stream is over and stdout has everything, after the
	 * sessions have handed our last bytes to the relay.
	 */
	if (k->ended && (evbuffer_get_length(k->out) == 0 || k->out_err))
		dmsg_client_drain(k->client, 5000, drained, k);
}

/* ---------- stdout ---------- */

static void
out_flush(struct cat *k)
{
	while (evbuffer_get_length(k->out) > 0 && !k->out_err) {
		int n = evbuffer_write(k->out, STDOUT_FILENO);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (k->out_poll)
					event_add(k->out_ev, NULL);
				break;
			}
			if (errno == EINTR)
				continue;
			fprintf(stderr, "dmsg-cat: stdout: %s\n", strerror(errno));
			k->out_err = 1;
			k->status = 1;
			if (k->st != NULL)
				dmsg_stream_reset(k->st);
			k->ended = 1;
		}
	}
	if (k->out_poll && (evbuffer_get_length(k->out) == 0 || k->out_err))
		event_del(k->out_ev);
	if (k->st != NULL && evbuffer_get_length(k->out) < OUT_HWM)
		dmsg_stream_pause_read(k->st, 0);
	finish(k);
}

static void
out_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	out_flush(arg);
}

/* ---------- stdin ---------- */

static void
in_more(struct cat *k)
{
	if (k->in_eof || k->st == NULL || !dmsg_stream_is_open(k->st))
		return;
	if (k->in_poll)
		event_add(k->in_ev, NULL);
	else
		event_active(k->in_ev, EV_READ, 0);
}

static void
in_ready(evutil_socket_t fd, short what, void *arg)
{
	struct cat *k = arg;
	static uint8_t buf[CHUNK];
	ssize_t n;

	(void)what;
	if (k->st == NULL || k->in_eof)
		return;
	while (dmsg_stream_queued(k->st) < STREAM_HWM) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* persistent event stays */
		if (n <= 0) {
			if (n < 0)
				fprintf(stderr, "dmsg-cat: stdin: %s\n", strerror(errno));
			k->in_eof = 1;
			if (k->in_poll)
				event_del(k->in_ev);
			dmsg_stream_shutdown(k->st);
			return;
		}
		if (dmsg_stream_write(k->st, buf, (size_t)n) == -1) {
			k->in_eof = 1;
			if (k->in_poll)
				event_del(k->in_ev);
			return;
		}
		if (!k->in_poll)
			break; /* a file: one chunk per pass, the loop keeps turning */
	}
	/* the queue is long: wait for writable (files: come back next pass) */
	if (k->in_poll && dmsg_stream_queued(k->st) >= STREAM_HWM)
		event_del(k->in_ev);
	else if (!k->in_poll && dmsg_stream_queued(k->st) < STREAM_HWM)
		event_active(k->in_ev, EV_READ, 0);
}

/* ---------- the stream ---------- */

static void
st_read(struct dmsg_stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct cat *k = arg;

	if (k->out_err)
		return;
	evbuffer_add(k->out, data, len);
	if (evbuffer_get_length(k->out) >= OUT_HWM)
		dmsg_stream_pause_read(st, 1);
	out_flush(k);
}

static void
st_closed(struct dmsg_stream *st, enum dmsg_stream_end why, void *arg)
{
	struct cat *k = arg;

	(void)st;
	k->ended = 1;
	k->why = why;
	if (why != DMSG_END_DONE) {
		fprintf(stderr, "dmsg-cat: stream ended: %s\n", dmsg_stream_end_str(why));
		k->status = 1;
	}
	finish(k);
}

static void
st_writable(struct dmsg_stream *st, void *arg)
{
	(void)st;
	in_more(arg);
}

static const struct dmsg_stream_cbs st_cbs = {
	.read = st_read,
	.closed = st_closed,
	.writable = st_writable,
};

static void
stream_begin(struct cat *k, struct dmsg_stream *st)
{
	char hex[SW_PK_HEX];

	k->st = st;
	sw_hex_encode(hex, dmsg_stream_remote_pk(st), SW_PK_LEN);
	fprintf(stderr, "dmsg-cat: connected %s:%u\n", hex, dmsg_stream_remote_port(st));
	dmsg_stream_set_lowat(st, STREAM_HWM / 2);
	dmsg_stream_set_cbs(st, &st_cbs, k);
	in_more(k);
}

static void
on_accept(struct dmsg_listener *l, struct dmsg_stream *st, void *arg)
{
	struct cat *k = arg;

	/* one stream at a time: later ones wait in the backlog until we exit */
	dmsg_listener_pause(l, 1);
	stream_begin(k, st);
}

static void
on_dial(struct dmsg_stream *st, int reject, const char *err, void *arg)
{
	struct cat *k = arg;

	if (st == NULL) {
		if (reject > 0)
			fprintf(stderr, "dmsg-cat: dial refused: REJECT %d (%s)\n", reject, err);
		else
			fprintf(stderr, "dmsg-cat: dial failed: %s\n", err);
		k->status = 1;
		k->ended = 1;
		finish(k);
		return;
	}
	stream_begin(k, st);
}

static void
on_registered(struct dmsg_client *c, void *arg)
{
	struct cat *k = arg;

	(void)c;
	if (k->announced)
		return;
	k->announced = 1;
	if (k->listening)
		fprintf(stderr, "dmsg-cat: listening on port %u\n", k->port);
	else
		fprintf(stderr, "dmsg-cat: registered\n");
}

static void
on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct cat *k = arg;

	(void)fd;
	(void)what;
	k->status = 1;
	if (k->st != NULL)
		dmsg_stream_reset(k->st);
	event_base_loopexit(k->base, NULL);
}

static void
quiet(int severity, const char *msg)
{
	(void)severity;
	(void)msg;
}

/* Poll fd if it can be polled; a regular file cannot (epoll says EPERM). */
static struct event *
fd_event(struct cat *k, int fd, short what, event_callback_fn cb, int *polled)
{
	struct event *ev = event_new(k->base, fd, what | EV_PERSIST, cb, k);
	struct stat sb;
	int added;

	if (ev == NULL)
		return NULL;
	*polled = 0;
	/* a file is not polled at all; the probe would only log a warning */
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		event_free(ev);
		return event_new(k->base, fd, what, cb, k);
	}
	event_set_log_callback(quiet);
	added = event_add(ev, NULL);
	event_set_log_callback(NULL);
	if (added == 0) {
		event_del(ev);
		*polled = 1;
		return ev;
	}
	event_free(ev);
	return event_new(k->base, fd, what, cb, k);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"discovery", required_argument, NULL, 'd'},
		{"secret-key", required_argument, NULL, 'k'},
		{"listen", required_argument, NULL, 'l'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct dmsg_client_opts o;
	struct cat k;
	const char *disc = "http://127.0.0.1:9090", *sk = NULL;
	char hex[SW_PK_HEX], err[128];
	int ch, in_fl = -1, out_fl = -1;

	memset(&k, 0, sizeof(k));
	while ((ch = getopt_long(argc, argv, "d:k:l:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			disc = optarg;
			break;
		case 'k':
			sk = optarg;
			break;
		case 'l':
			if (parse_port(optarg, &k.port) == -1) {
				fprintf(stderr, "dmsg-cat: bad port %s\n", optarg);
				return 2;
			}
			k.listening = 1;
			break;
		case 'v':
			sw_log_set_level(SW_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dmsg-cat %s\n", SW_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (k.listening ? argc != 0 : argc != 2) {
		usage(stderr);
		return 2;
	}
	if (!k.listening && (sw_pk_parse(k.peer, argv[0]) == -1 ||
	    parse_port(argv[1], &k.port) == -1)) {
		fprintf(stderr, "dmsg-cat: bad address %s %s (PK: 64 lowercase hex; port 1-65535)\n",
		    argv[0], argv[1]);
		return 2;
	}
	if (sw_crypto_init() == -1) {
		fprintf(stderr, "dmsg-cat: libsodium does not start\n");
		return 1;
	}
	if (sk != NULL) {
		if (sw_keypair_from_hex(&k.kp, sk, NULL, err, sizeof(err)) == -1) {
			fprintf(stderr, "dmsg-cat: %s\n", err);
			return 2;
		}
	} else {
		sw_keypair_generate(&k.kp);
	}
	if (sw_log_get_level() > SW_LOG_DEBUG)
		sw_log_set_level(SW_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	sw_hex_encode(hex, k.kp.pk, SW_PK_LEN);
	fprintf(stderr, "dmsg-cat: pk %s\n", hex);

	k.status = 0;
	memset(&o, 0, sizeof(o));
	o.discovery = disc;
	o.registered = on_registered;
	o.registered_arg = &k;
	if ((k.base = event_base_new()) == NULL || (k.out = evbuffer_new()) == NULL ||
	    (k.client = dmsg_client_new(k.base, &k.kp, &o, SVC)) == NULL) {
		fprintf(stderr, "dmsg-cat: cannot start (discovery URL must be http://host:port)\n");
		k.status = 1;
		goto out;
	}
	/* non-blocking stdio, restored at exit (the descriptions may be shared) */
	in_fl = fcntl(STDIN_FILENO, F_GETFL);
	out_fl = fcntl(STDOUT_FILENO, F_GETFL);
	if (in_fl != -1)
		fcntl(STDIN_FILENO, F_SETFL, in_fl | O_NONBLOCK);
	if (out_fl != -1)
		fcntl(STDOUT_FILENO, F_SETFL, out_fl | O_NONBLOCK);
	k.in_ev = fd_event(&k, STDIN_FILENO, EV_READ, in_ready, &k.in_poll);
	k.out_ev = fd_event(&k, STDOUT_FILENO, EV_WRITE, out_ready, &k.out_poll);
	k.sigint = evsignal_new(k.base, SIGINT, on_signal, &k);
	k.sigterm = evsignal_new(k.base, SIGTERM, on_signal, &k);
	if (k.in_ev == NULL || k.out_ev == NULL || k.sigint == NULL || k.sigterm == NULL ||
	    evsignal_add(k.sigint, NULL) == -1 || evsignal_add(k.sigterm, NULL) == -1) {
		fprintf(stderr, "dmsg-cat: event setup failed\n");
		k.status = 1;
		goto out;
	}
	if (dmsg_client_start(k.client) == -1) {
		k.status = 1;
		goto out;
	}
	if (k.listening) {
		if ((k.listener = dmsg_client_listen(k.client, k.port, on_accept, &k)) == NULL) {
			fprintf(stderr, "dmsg-cat: cannot listen on %u\n", k.port);
			k.status = 1;
			goto out;
		}
	} else if (dmsg_client_dial(k.client, k.peer, k.port, DIAL_TIMEOUT, on_dial, &k) == NULL) {
		fprintf(stderr, "dmsg-cat: cannot dial\n");
		k.status = 1;
		goto out;
	}
	event_base_dispatch(k.base);
out:
	if (k.st != NULL)
		dmsg_stream_free(k.st);
	dmsg_listener_free(k.listener);
	dmsg_client_free(k.client);
	if (k.in_ev != NULL)
		event_free(k.in_ev);
	if (k.out_ev != NULL)
		event_free(k.out_ev);
	if (k.sigint != NULL)
		event_free(k.sigint);
	if (k.sigterm != NULL)
		event_free(k.sigterm);
	if (k.out != NULL)
		evbuffer_free(k.out);
	if (k.base != NULL)
		event_base_free(k.base);
	if (in_fl != -1)
		fcntl(STDIN_FILENO, F_SETFL, in_fl);
	if (out_fl != -1)
		fcntl(STDOUT_FILENO, F_SETFL, out_fl);
	sodium_memzero(&k.kp, sizeof(k.kp));
	return k.status;
}
