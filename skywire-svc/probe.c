/*
 * skywire-svc probe: the containers' health check.  `skywire-svc probe
 * PORT` asks http://127.0.0.1:PORT/health and exits 0 on a 200, 1 otherwise.
 *
 * Docker runs the check as an exec in the container every interval, for
 * every container: curl costs tens of ms of CPU per run (its library set-up),
 * which on two cores was a good part of a core for the whole deployment.
 * This is one connect, one request and one status line on plain sockets,
 * bounded by a deadline; it is a command-line client, so blocking is fine.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "probe.h"

#define PROBE_TIMEOUT_S 2 /* per connect, write and read: docker's timeout is the bound */

int
svc_probe(const char *port_arg)
{
	static const char req[] = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	struct sockaddr_in sin;
	struct timeval tv = {PROBE_TIMEOUT_S, 0};
	char line[64];
	size_t got = 0;
	char *end;
	long port = strtol(port_arg, &end, 10);
	int fd = -1, ok = 0;

	if (*port_arg == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "probe: bad port \"%s\"\n", port_arg);
		return 2;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		perror("probe");
		goto out;
	}
	/* "HTTP/1.x 200 ": the status line's first 13 bytes are all it needs. */
	while (got < 13) {
		ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	line[got] = '\0';
	ok = got >= 13 && strncmp(line, "HTTP/1.", 7) == 0 && strncmp(line + 8, " 200 ", 5) == 0;
	if (!ok)
		fprintf(stderr, "probe: 127.0.0.1:%ld/health: %.*s\n", port,
		    (int)strcspn(line, "\r\n"), got > 0 ? line : "no answer");
out:
	if (fd != -1)
		close(fd);
	return ok ? 0 : 1;
}
