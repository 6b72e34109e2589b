/*
 * udp: bound, non-blocking, close-on-exec UDP sockets (see udp.h).  The
 * address is parsed by libevent, which takes numeric addresses only, so
 * opening a listener never waits on a resolver.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/util.h>

#include "udp.h"

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
	int sslen = (int)sizeof(ss), fd, saved;
	socklen_t blen = sizeof(*bound);

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) == -1) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = sw_udp_bind((struct sockaddr *)&ss, (socklen_t)sslen)) == -1)
		return -1;
	if (bound != NULL && getsockname(fd, (struct sockaddr *)bound, &blen) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
