/*
 * route-finder's HTTP API: POST /routes (services.md).  The answer comes
 * from the in-memory graph, synchronously: no store call per request.  The
 * whole request is checked before any search runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "http.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "route_finder.h"

struct rf_query {
	size_t npairs;
	uint8_t pk[RF_MAX_PAIRS][2][SW_PK_LEN];
	int dup[RF_MAX_PAIRS]; /* the same pair as an earlier one: one key in the answer */
	int min_hops, max_hops;
	unsigned types; /* RF_TYPES_ALL, or the bits of opts.types */
};

/* opts.types: absent (any), or a non-empty array of known type names. */
static int
opt_types(const cJSON *opts, unsigned *out, char *msg, size_t msglen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, "types"), *t;

	*out = RF_TYPES_ALL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v))
		return snprintf(msg, msglen, "opts.types must be an array of type names"), 400;
	if (cJSON_GetArraySize(v) == 0 || cJSON_GetArraySize(v) > 8)
		return snprintf(msg, msglen, "opts.types must name 1 to 8 types"), 422;
	*out = 0;
	cJSON_ArrayForEach(t, v) {
		if (!cJSON_IsString(t))
			return snprintf(msg, msglen, "opts.types must be an array of type names"), 400;
		if (rf_type_parse(t->valuestring) == RF_TYPE_OTHER)
			return snprintf(msg, msglen, "opts.types: unknown type (dmsg, stcpr, sudph)"),
			    422;
		*out |= 1u << rf_type_parse(t->valuestring);
	}
	return 0;
}

/* An optional small integer member of opts: 0, or 400 with msg filled. */
static int
opt_int(const cJSON *opts, const char *name, int def, int *out, char *msg, size_t msglen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, name);
	double d;

	*out = def;
	if (v == NULL)
		return 0;
	d = cJSON_IsNumber(v) ? v->valuedouble : 0.5;
	if (d < -1000 || d > 1000 || d != (double)(int)d) {
		snprintf(msg, msglen, "opts.%s must be an integer", name);
		return 400;
	}
	*out = (int)d;
	return 0;
}

/* Parse and check the request; 0, or the HTTP status with msg filled. */
static int
parse_query(const cJSON *body, struct rf_query *q, char *msg, size_t msglen)
{
	const cJSON *edges, *opts, *pair;
	int rc, n;

	if (!cJSON_IsObject(body))
		return snprintf(msg, msglen, "the body must be an object"), 400;
	edges = cJSON_GetObjectItemCaseSensitive(body, "edges");
	if (!cJSON_IsArray(edges))
		return snprintf(msg, msglen, "edges must be an array of [src, dst] pairs"), 400;
	opts = cJSON_GetObjectItemCaseSensitive(body, "opts");
	if (opts != NULL && !cJSON_IsObject(opts) && !cJSON_IsNull(opts))
		return snprintf(msg, msglen, "opts must be an object"), 400;
	if ((rc = opt_int(opts, "min_hops", 1, &q->min_hops, msg, msglen)) != 0 ||
	    (rc = opt_int(opts, "max_hops", RF_DEFAULT_HOPS, &q->max_hops, msg, msglen)) != 0 ||
	    (rc = opt_types(opts, &q->types, msg, msglen)) != 0)
		return rc;
	n = cJSON_GetArraySize(edges);
	cJSON_ArrayForEach(pair, edges) {
		const cJSON *s = cJSON_GetArrayItem(pair, 0), *d = cJSON_GetArrayItem(pair, 1);

		if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(s) ||
		    !cJSON_IsString(d))
			return snprintf(msg, msglen, "each pair must be [src_pk, dst_pk]"), 400;
		if (q->npairs == RF_MAX_PAIRS)
			break; /* counted below */
		if (sw_pk_parse(q->pk[q->npairs][0], s->valuestring) == -1 ||
		    sw_pk_parse(q->pk[q->npairs][1], d->valuestring) == -1)
			return snprintf(msg, msglen, "keys must be 64 lowercase hex chars"), 400;
		q->npairs++;
	}
	if (n > RF_MAX_PAIRS)
		return snprintf(msg, msglen, "at most %d pairs per request", RF_MAX_PAIRS), 413;
	if (n == 0)
		return snprintf(msg, msglen, "edges lists no pair"), 422;
	if (q->max_hops < 1 || q->max_hops > RF_MAX_HOPS)
		return snprintf(msg, msglen, "max_hops must be within 1..%d", RF_MAX_HOPS), 422;
	if (q->min_hops < 1 || q->min_hops > q->max_hops)
		return snprintf(msg, msglen, "min_hops must be within 1..max_hops"), 422;
	for (size_t i = 0; i < q->npairs; i++) {
		if (memcmp(q->pk[i][0], q->pk[i][1], SW_PK_LEN) == 0)
			return snprintf(msg, msglen, "pair %zu goes from a key to itself", i), 422;
		for (size_t j = 0; j < i && !q->dup[i]; j++)
			q->dup[i] = memcmp(q->pk[i], q->pk[j], sizeof(q->pk[i])) == 0;
	}
	return 0;
}

static void
add_path(struct evbuffer *b, const struct rf_graph *g, const struct rf_path *p)
{
	char id[TP_ID_TEXT], from[SW_PK_HEX], to[SW_PK_HEX];

	evbuffer_add(b, "[", 1);
	for (uint32_t h = 0; h < p->len; h++) {
		tp_id_format(id, g->edges[p->edge[h]].t_id);
		sw_hex_encode(from, g->nodes[p->node[h]].pk, SW_PK_LEN);
		sw_hex_encode(to, g->nodes[p->node[h + 1]].pk, SW_PK_LEN);
		evbuffer_add_printf(b, "%s{\"t_id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}",
		    h ? "," : "", id, from, to);
	}
	evbuffer_add(b, "]", 1);
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
post_routes(struct sw_http_req *req, void *arg)
{
	struct rf *rf = arg;
	struct rf_query q = {0};
	struct rf_path paths[RF_MAX_PATHS];
	struct evbuffer *b = NULL;
	const unsigned char *body;
	long long now = (long long)time(NULL);
	cJSON *json;
	char msg[128];
	size_t len, found = 0;
	int rc, first = 1;

	body = sw_http_req_body(req, &len);
	json = sw_json_parse(body, len, NULL);
	if (json == NULL) {
		sw_http_error(req, 400, "malformed JSON");
		return;
	}
	rc = parse_query(json, &q, msg, sizeof(msg));
	cJSON_Delete(json);
	if (rc != 0) {
		sw_http_error(req, rc, msg);
		return;
	}
	if (sw_svc_req_begin(rf->svc, req) == -1)
		return;
	if (!rf->loaded) {
		sw_http_error(req, 503, "transports not loaded yet");
		goto out;
	}
	b = evbuffer_new();
	if (b == NULL) {
		sw_http_error(req, 500, "out of memory");
		goto out;
	}
	evbuffer_add(b, "{", 1);
	for (size_t i = 0; i < q.npairs; i++) {
		char src[SW_PK_HEX], dst[SW_PK_HEX];
		double t0 = mono_s();
		int n;

		if (q.dup[i])
			continue;
		n = rf_graph_paths_typed(rf->g, q.pk[i][0], q.pk[i][1], q.min_hops, q.max_hops,
		    q.types, now, paths, RF_MAX_PATHS);
		sw_metric_observe(rf->m_search, NULL, mono_s() - t0);
		sw_hex_encode(src, q.pk[i][0], SW_PK_LEN);
		sw_hex_encode(dst, q.pk[i][1], SW_PK_LEN);
		evbuffer_add_printf(b, "%s\"%s:%s\":[", first ? "" : ",", src, dst);
		first = 0;
		for (int j = 0; j < n; j++) {
			if (j > 0)
				evbuffer_add(b, ",", 1);
			add_path(b, rf->g, &paths[j]);
		}
		evbuffer_add(b, "]", 1);
		found += n > 0;
	}
	evbuffer_add(b, "}", 1);
	if (found == 0)
		sw_http_error(req, 404, "no route between any of the pairs");
	else
		sw_http_reply_buf(req, 200, "application/json", b);
out:
	if (b != NULL)
		evbuffer_free(b);
	sw_svc_req_end(rf->svc);
}

int
rf_api_routes(struct rf *rf)
{
	if (sw_http_route(rf->http, "POST", "/routes", post_routes, rf) == -1)
		return -1;
	return sw_svc_http_attach(rf->svc, rf->http);
}
