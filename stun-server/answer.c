/*
 * The reply to one Binding request, decided without touching a socket (so
 * the tests can check every case): which attributes, and which of the
 * server's sockets sends it.
 *
 * An RFC 5389 request gets XOR-MAPPED-ADDRESS and MAPPED-ADDRESS, then the
 * RFC 5780 RESPONSE-ORIGIN and OTHER-ADDRESS.  An RFC 3489 request (no magic
 * cookie) gets MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS instead:
 * a 3489 client fails a transaction on any comprehension-required attribute
 * it does not know, and 0x0020 is one for it, as 0x0004/0x0005 are for a
 * 5389 client.  The addresses of the server are named only when they are
 * concrete (not a wildcard listen address); the alternate ones only when the
 * server has them.  SOFTWARE is always sent; FINGERPRINT when the request
 * carried one.
 *
 * CHANGE-REQUEST with a flag set, on a server without alternates, is
 * answered 420 naming it (RFC 5780 7.2): the client learns at once that
 * this server cannot run its test, rather than timing out.
 */
#include <string.h>

#include "stun_server.h"

static int
put_tail(struct stun_out *o, const char *software, const struct stun_msg *m)
{
	if (software[0] != '\0' && stun_put_text(o, STUN_A_SOFTWARE, software) == -1)
		return -1;
	if (m->fingerprint && stun_put_fingerprint(o) == -1)
		return -1;
	return 0;
}

static int
answer_error(const char *software, const struct stun_msg *m, const uint16_t *unknown,
    size_t n, struct stun_out *o)
{
	stun_out_init(o, STUN_BINDING_ERROR, m->txid, m->legacy);
	if (stun_put_error(o, 420, "Unknown Attribute") == -1 ||
	    stun_put_unknown(o, unknown, n) == -1 || put_tail(o, software, m) == -1)
		return -1;
	return 420;
}

int
stun_answer(const struct stun_addrs *sa, const char *software, const struct stun_msg *m,
    size_t in, const struct sockaddr *peer, struct stun_out *o, size_t *from)
{
	static const uint16_t change_req[] = {STUN_A_CHANGE_REQUEST};
	uint32_t flags = m->has_change ? m->change & (STUN_CHANGE_IP | STUN_CHANGE_PORT) : 0;
	const struct sockaddr *origin, *other;

	*from = in;
	if (m->nunknown > 0)
		return answer_error(software, m, m->unknown, m->nunknown, o);
	if (flags != 0 && sa->n < STUN_NSOCK)
		return answer_error(software, m, change_req, 1, o);
	if (flags & STUN_CHANGE_IP)
		*from ^= 2;
	if (flags & STUN_CHANGE_PORT)
		*from ^= 1;
	origin = sa->concrete ? (const struct sockaddr *)&sa->a[*from] : NULL;
	other = sa->n == STUN_NSOCK ? (const struct sockaddr *)&sa->a[in ^ 3] : NULL;
	stun_out_init(o, STUN_BINDING_SUCCESS, m->txid, m->legacy);
	if (m->legacy) {
		if (stun_put_addr(o, STUN_A_MAPPED_ADDRESS, peer, 0) == -1 ||
		    (origin != NULL && stun_put_addr(o, STUN_A_SOURCE_ADDRESS, origin, 0) == -1) ||
		    (other != NULL && stun_put_addr(o, STUN_A_CHANGED_ADDRESS, other, 0) == -1))
			return -1;
	} else {
		if (stun_put_addr(o, STUN_A_XOR_MAPPED_ADDRESS, peer, 1) == -1 ||
		    stun_put_addr(o, STUN_A_MAPPED_ADDRESS, peer, 0) == -1 ||
		    (origin != NULL && stun_put_addr(o, STUN_A_RESPONSE_ORIGIN, origin, 0) == -1) ||
		    (other != NULL && stun_put_addr(o, STUN_A_OTHER_ADDRESS, other, 0) == -1))
			return -1;
	}
	if (put_tail(o, software, m) == -1)
		return -1;
	return 200;
}
