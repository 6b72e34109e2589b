/*
 * dmsg_ended: the streams of a dmsg peer that ended lately (dmsg.md: a
 * frame other than OPEN for a stream that ended in the last 10 s is
 * ignored, as HTTP/2 does for WINDOW_UPDATE, RFC 9113 §6.9).  A WINDOW or
 * CLOSE that crossed our end on the wire is no stream error: answering it
 * with RESET would tell a peer that closed cleanly that it was aborted.
 *
 * Keys are (owner, stream id): the relay's session serial, or the client's
 * session number.  The memory is bounded (max entries, the oldest forgotten
 * first); a stream forgotten early only gets the RESET it used to.
 */
#ifndef DMSG_ENDED_H
#define DMSG_ENDED_H

#include <stddef.h>
#include <stdint.h>

#define DMSG_ENDED_TTL_MS 10000
#define DMSG_ENDED_MAX    16384

struct dmsg_ended;

/* max 0: DMSG_ENDED_MAX; ttl_ms 0: DMSG_ENDED_TTL_MS.  NULL on no memory. */
struct dmsg_ended *dmsg_ended_new(size_t max, long long ttl_ms);
void dmsg_ended_free(struct dmsg_ended *e); /* NULL-safe */
/* Stream id of owner ended at now_ms (monotonic).  Best effort: no memory, no entry. */
void dmsg_ended_add(struct dmsg_ended *e, uint64_t owner, uint32_t id, long long now_ms);
/* 1 if it ended within the TTL. */
int dmsg_ended_has(struct dmsg_ended *e, uint64_t owner, uint32_t id, long long now_ms);
size_t dmsg_ended_count(const struct dmsg_ended *e);

#endif
