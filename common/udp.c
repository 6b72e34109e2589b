/*
 * udp: bound, non-blocking, close-on-exec UDP sockets (see udp.h).  The
 * address is numeric only (inet_pton), so opening a listener never waits
 * on a resolver, and port 0 is allowed, so tests can ask for a free port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/util.h>

#include "log.h"
#include "udp.h"

socklen_t
sw_udp_addr_parse(const char *text, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon, *start = text;
	size_t hlen;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (text == NULL || (colon = strrchr(text, ':')) == NULL)
		return 0;
	hlen = (size_t)(colon - text);
	if (text[0] == '[') {
		/* [ip6]:port: the bracket must close right before the colon. */
		if (hlen < 2 || text[hlen - 1] != ']')
			return 0;
		start = text + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return 0;
	memcpy(host, start, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port > 65535)
		return 0;
	if (text[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return 0;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		return sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return 0;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return sizeof(*in6);
	}
}

int
sw_udp_bind(const struct sockaddr *sa, socklen_t len)
{
	int fd, saved;

	if ((fd = socket(sa->sa_family, SOCK_DGRAM, 0)) == -1)
		return -1;
	if (evutil_make_socket_nonblocking(fd) == -1 || evutil_make_socket_closeonexec(fd) == -1 ||
	    bind(fd, sa, len) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
sw_udp_listen(const char *addr, struct sockaddr_storage *bound)
{
	struct sockaddr_storage ss;
	socklen_t sslen, blen = sizeof(*bound);
	int fd, saved;

	if ((sslen = sw_udp_addr_parse(addr, &ss)) == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = sw_udp_bind((struct sockaddr *)&ss, sslen)) == -1)
		return -1;
	if (bound != NULL && getsockname(fd, (struct sockaddr *)bound, &blen) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

void
sw_udp_read_batch(int fd, const char *svc, uint8_t *buf, size_t cap, sw_udp_dgram_cb *cb,
    void *arg)
{
	for (int i = 0; i < SW_UDP_READ_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n;

		memset(&from, 0, sizeof(from));
		n = recvfrom(fd, buf, cap, MSG_TRUNC, (struct sockaddr *)&from, &flen);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				sw_log_warn(svc, "udp receive failed", "error=%s",
				    sw_log_q((char[96]){0}, 96, strerror(errno)));
			return;
		}
		cb(buf, (size_t)n, &from, flen, arg);
	}
}
