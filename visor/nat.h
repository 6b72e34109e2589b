/*
 * nat: the visor's NAT type (visor.md), found with the classic RFC 3489
 * tests against its stun_servers: I (a plain Binding request), II (with
 * CHANGE-REQUEST ip+port), I again to the server's other address, III (with
 * CHANGE-REQUEST port).  Run at start, again every 10 minutes and whenever
 * the host's addresses change; each run is bounded (docs/visor.md).
 */
#ifndef VISOR_NAT_H
#define VISOR_NAT_H

#include <cjson/cJSON.h>

struct visor;
struct visor_nat;

struct visor_nat *visor_nat_new(struct visor *v);
int visor_nat_start(struct visor_nat *n);
void visor_nat_free(struct visor_nat *n);
/* "open", "full-cone", ..., "udp-blocked", "unknown" (also while the first run goes on). */
const char *visor_nat_type(const struct visor_nat *n);
/* 1 when the last run found a symmetric NAT (sudph is not tried then). */
int visor_nat_symmetric(const struct visor_nat *n);
/* {"type","mapped","server","checked","duration_ms","running","runs"} */
cJSON *visor_nat_json(const struct visor_nat *n);

#endif
