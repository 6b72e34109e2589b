/*
 * check.c: everything setup-node can refuse before it touches a visor
 * (routing.md, step 2), except the transport-discovery lookups (setup.c).
 * The request is hostile until this returns 0.
 */
#include <stdio.h>
#include <string.h>

#include "setup_node.h"

static int
port_of(const cJSON *o, const char *name, uint16_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 65535 ||
	    v->valuedouble != (double)(int)v->valuedouble)
		return -1;
	*out = (uint16_t)v->valuedouble;
	return 0;
}

static int
pk_of(const cJSON *o, const char *name, uint8_t out[SW_PK_LEN])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? sw_pk_parse(out, v->valuestring) : -1;
}

/* One path: hops contiguous from `from` to `to`, no visor twice. */
static int
path_of(const cJSON *arr, const char *name, const uint8_t from[SW_PK_LEN],
    const uint8_t to[SW_PK_LEN], struct sn_path *p, char *err, size_t errlen)
{
	const cJSON *h;
	int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;

	if (n < 0) {
		snprintf(err, errlen, "%s must be an array of hops", name);
		return -1;
	}
	if (n < 1 || n > SN_MAX_HOPS) {
		snprintf(err, errlen, "%s must have 1 to %d hops", name, SN_MAX_HOPS);
		return -1;
	}
	p->n = 0;
	cJSON_ArrayForEach(h, arr) {
		struct sn_hop *x = &p->hop[p->n];
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "t_id");

		if (!cJSON_IsObject(h) || !cJSON_IsString(t) || tp_id_parse(x->t_id,
		    t->valuestring) == -1 || pk_of(h, "from", x->from) == -1 ||
		    pk_of(h, "to", x->to) == -1) {
			snprintf(err, errlen, "%s hop %zu must be {\"t_id\",\"from\",\"to\"}", name, p->n);
			return -1;
		}
		if (memcmp(x->from, p->n == 0 ? from : p->hop[p->n - 1].to, SW_PK_LEN) != 0) {
			snprintf(err, errlen, "%s hop %zu does not start where the path is", name, p->n);
			return -1;
		}
		p->n++;
	}
	if (memcmp(p->hop[p->n - 1].to, to, SW_PK_LEN) != 0) {
		snprintf(err, errlen, "%s does not end at its destination", name);
		return -1;
	}
	/* Loop-free: every visor of the path (from of each hop, then the end) once. */
	for (size_t i = 0; i <= p->n; i++) {
		const uint8_t *a = i < p->n ? p->hop[i].from : p->hop[p->n - 1].to;

		for (size_t j = i + 1; j <= p->n; j++) {
			const uint8_t *b = j < p->n ? p->hop[j].from : p->hop[p->n - 1].to;

			if (memcmp(a, b, SW_PK_LEN) == 0) {
				snprintf(err, errlen, "%s visits a visor twice", name);
				return -1;
			}
		}
	}
	return 0;
}

int
sn_check(const cJSON *params, const uint8_t requester[SW_PK_LEN], struct sn_ask *a,
    char *err, size_t errlen)
{
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(params, "desc");
	const cJSON *ka = cJSON_GetObjectItemCaseSensitive(params, "keep_alive_s");

	memset(a, 0, sizeof(*a));
	if (!cJSON_IsObject(params) || !cJSON_IsObject(desc) ||
	    pk_of(desc, "src_pk", a->src_pk) == -1 || pk_of(desc, "dst_pk", a->dst_pk) == -1 ||
	    port_of(desc, "src_port", &a->src_port) == -1 ||
	    port_of(desc, "dst_port", &a->dst_port) == -1) {
		snprintf(err, errlen, "desc must be {\"src_pk\",\"src_port\",\"dst_pk\",\"dst_port\"}");
		return -1;
	}
	if (memcmp(requester, a->src_pk, SW_PK_LEN) != 0) {
		snprintf(err, errlen, "the requester is not desc.src_pk");
		return -1;
	}
	if (memcmp(a->src_pk, a->dst_pk, SW_PK_LEN) == 0) {
		snprintf(err, errlen, "src_pk and dst_pk are the same");
		return -1;
	}
	if (a->src_port == 0 || a->dst_port == 0) {
		snprintf(err, errlen, "ports must be non-zero");
		return -1;
	}
	a->keep_alive_s = 30;
	if (ka != NULL) {
		if (!cJSON_IsNumber(ka) || ka->valuedouble < 1 || ka->valuedouble > 600 ||
		    ka->valuedouble != (double)(int)ka->valuedouble) {
			snprintf(err, errlen, "keep_alive_s must be 1..600");
			return -1;
		}
		a->keep_alive_s = (int)ka->valuedouble;
	}
	if (path_of(cJSON_GetObjectItemCaseSensitive(params, "forward"), "forward", a->src_pk,
	    a->dst_pk, &a->fwd, err, errlen) == -1 ||
	    path_of(cJSON_GetObjectItemCaseSensitive(params, "reverse"), "reverse", a->dst_pk,
	    a->src_pk, &a->rev, err, errlen) == -1)
		return -1;
	return 0;
}
