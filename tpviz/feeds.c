/*
 * tpviz/feeds.c: the views, kept current from the feeds.
 *
 * Every poll_ms a tick looks at each view.  On the feed the check is
 * cheap (the subscription's root seq, held in memory); only a new seq, or
 * every 30 s to keep the subscription from closing as idle, costs a full
 * query.  Without a snapshot (before the first one, or with the publisher
 * unreachable) the manager answers from the service's HTTP API instead,
 * asked at most once a second.  dmsg-discovery's clients-by-server has no
 * single HTTP twin, so that view's fallback asks all_servers and then each
 * server's clients.  A change replaces the view's sorted items, renders
 * its answer once, and becomes one event on /api/events.
 *
 * The transports view renders a second, compact answer for the page
 * (/api/graph): each visor's key once, each transport as two indexes into
 * that list and one into the types.  The page's first render of a large
 * network is mostly fetching and parsing: 50,000 transports are 12 MB as
 * records and a quarter of that as a graph, which the page also turns into
 * drawing coordinates without a key lookup per edge (docs/tpviz.md).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "clock.h"
#include "cxo_mgr.h"
#include "cxo_sub.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "tp_entry.h"
#include "tpviz.h"

#define KEEPALIVE_MS   30000 /* a full query at least this often keeps the subscription */
#define HTTP_EVERY_MS  1000  /* fallback polls of a service */
#define SERVERS_MS     5000  /* all_servers refresh */
#define HTTP_TIMEOUT   5000

struct ask {
	struct tpviz *t;
	enum tpviz_view_id id;
};

void
tpviz_items_free(struct tpviz_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].key);
		free(items[i].json);
		free(items[i].tp);
	}
	free(items);
}

static int
item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tpviz_item *)a)->key, ((const struct tpviz_item *)b)->key);
}

/* Items in a, not in b or different there. */
static size_t
diff(const struct tpviz_item *a, size_t na, const struct tpviz_item *b, size_t nb)
{
	size_t i = 0, j = 0, n = 0;

	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].key, b[j].key);

		if (c == 0) {
			n += strcmp(a[i].json, b[j].json) != 0;
			i++;
			j++;
		} else if (c < 0) {
			n++;
			i++;
		} else {
			n++;
			j++;
		}
	}
	return n;
}

static const char *const svc_types[] = {"visor", "vpn", "skysocks"};

static int
pk_ptr_cmp(const void *a, const void *b)
{
	return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, SW_PK_LEN);
}

/* The index of pk in the sorted, distinct list (it is there: the list was made of them). */
static size_t
pk_index(const uint8_t *const *list, size_t n, const uint8_t *pk)
{
	const uint8_t *const *p = bsearch(&pk, list, n, sizeof(*list), pk_ptr_cmp);

	return p != NULL ? (size_t)(p - list) : 0;
}

/*
 * {"source","seq","updated","count","visors":[pk…],"types":[…],"edges":[a0,b0,a1,b1…],
 *  "type":[i…],"t_id":[…]}: transports in /api/transports's order, edges and
 * type as indexes into visors (sorted, distinct) and types.
 */
static struct evbuffer *
render_graph(const struct tpviz_view *v)
{
	static const char *const types[] = {"dmsg", "stcpr", "sudph"};
	const size_t ntypes = sizeof(types) / sizeof(types[0]);
	struct evbuffer *b = evbuffer_new();
	const uint8_t **ends = malloc((2 * v->nitems + 1) * sizeof(*ends));
	size_t n = 0, m = 0, k;
	char hex[SW_PK_HEX], tid[TP_ID_TEXT];

	if (b == NULL || ends == NULL)
		goto fail;
	for (size_t i = 0; i < v->nitems; i++)
		if (v->items[i].tp != NULL) {
			ends[n++] = v->items[i].tp->edges[0];
			ends[n++] = v->items[i].tp->edges[1];
		}
	if (n > 1)
		qsort(ends, n, sizeof(*ends), pk_ptr_cmp);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || memcmp(ends[m - 1], ends[i], SW_PK_LEN) != 0)
			ends[m++] = ends[i];
	evbuffer_add_printf(b, "{\"source\":\"%s\",\"seq\":%llu,\"updated\":%lld,\"count\":%zu,"
	    "\"visors\":[", v->source != NULL ? v->source : "none", (unsigned long long)v->seq,
	    v->updated_s, n / 2);
	for (size_t i = 0; i < m; i++) {
		sw_hex_encode(hex, ends[i], SW_PK_LEN);
		evbuffer_add_printf(b, "%s\"%s\"", i ? "," : "", hex);
	}
	evbuffer_add_printf(b, "],\"types\":[");
	for (size_t i = 0; i < ntypes; i++)
		evbuffer_add_printf(b, "%s\"%s\"", i ? "," : "", types[i]);
	evbuffer_add_printf(b, "],\"edges\":[");
	k = 0;
	for (size_t i = 0; i < v->nitems; i++) {
		const struct tp_entry *e = v->items[i].tp;

		if (e != NULL)
			evbuffer_add_printf(b, "%s%zu,%zu", k++ ? "," : "", pk_index(ends, m, e->edges[0]),
			    pk_index(ends, m, e->edges[1]));
	}
	evbuffer_add_printf(b, "],\"type\":[");
	k = 0;
	for (size_t i = 0; i < v->nitems; i++) {
		size_t ty = 0;

		if (v->items[i].tp == NULL)
			continue;
		while (ty < ntypes && strcmp(v->items[i].tp->type, types[ty]) != 0)
			ty++;
		evbuffer_add_printf(b, "%s%zu", k++ ? "," : "", ty);
	}
	/* The entry's own t_id (the key is the publisher's path, not checked as text). */
	evbuffer_add_printf(b, "],\"t_id\":[");
	k = 0;
	for (size_t i = 0; i < v->nitems; i++)
		if (v->items[i].tp != NULL) {
			tp_id_format(tid, v->items[i].tp->t_id);
			evbuffer_add_printf(b, "%s\"%s\"", k++ ? "," : "", tid);
		}
	evbuffer_add(b, "]}", 2);
	free(ends);
	return b;
fail:
	if (b != NULL)
		evbuffer_free(b);
	free(ends);
	return NULL;
}

/* The evbuffer's bytes as a shared body (refs 1); NULL out of memory. */
static struct tpviz_body *
body_from(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	struct tpviz_body *body = malloc(sizeof(*body) + len);

	if (body == NULL)
		return NULL;
	evbuffer_remove(b, body->data, len);
	body->len = len;
	body->refs = 1;
	return body;
}

static void
render(struct tpviz *t, enum tpviz_view_id id)
{
	struct tpviz_view *v = &t->views[id];
	struct evbuffer *b = evbuffer_new();
	struct tpviz_body *body;

	if (b == NULL)
		return;
	evbuffer_add_printf(b, "{\"source\":\"%s\",\"seq\":%llu,\"updated\":%lld,\"count\":%zu,",
	    v->source != NULL ? v->source : "none", (unsigned long long)v->seq, v->updated_s,
	    v->nitems);
	if (id == TV_TRANSPORTS) {
		evbuffer_add_printf(b, "\"transports\":[");
		for (size_t i = 0; i < v->nitems; i++)
			evbuffer_add_printf(b, "%s%s", i ? "," : "", v->items[i].json);
		evbuffer_add(b, "]}", 2);
	} else if (id != TV_CLIENTS) {
		evbuffer_add_printf(b, "\"type\":\"%s\",\"services\":[", svc_types[id - TV_SVC_VISOR]);
		for (size_t i = 0; i < v->nitems; i++)
			evbuffer_add_printf(b, "%s%s", i ? "," : "", v->items[i].json);
		evbuffer_add(b, "]}", 2);
	} else {
		/* Grouped by server (keys are "server/client", so a server's clients are adjacent). */
		size_t nsrv = 0;

		evbuffer_add_printf(b, "\"servers\":{");
		for (size_t i = 0; i < v->nitems; i++) {
			const char *k = v->items[i].key;
			int first = i == 0 || strncmp(k, v->items[i - 1].key, SW_PK_HEX - 1) != 0;

			if (first)
				evbuffer_add_printf(b, "%s\"%.*s\":[", nsrv++ ? "]," : "", SW_PK_HEX - 1, k);
			else
				evbuffer_add(b, ",", 1);
			evbuffer_add_printf(b, "%s", v->items[i].json);
		}
		if (nsrv > 0)
			evbuffer_add(b, "]", 1);
		/* Servers nobody is delegated to still show, with no clients. */
		for (size_t s = 0; s < t->nservers; s++) {
			int listed = 0;

			for (size_t i = 0; i < v->nitems && !listed; i++)
				listed = strncmp(v->items[i].key, t->servers[s], SW_PK_HEX - 1) == 0;
			if (!listed)
				evbuffer_add_printf(b, "%s\"%s\":[]", nsrv++ ? "," : "", t->servers[s]);
		}
		evbuffer_add(b, "}}", 2);
	}
	if ((body = body_from(b)) != NULL) {
		tpviz_body_unref(v->body);
		v->body = body;
	}
	evbuffer_free(b);
	if (id == TV_TRANSPORTS && (b = render_graph(v)) != NULL) {
		if ((body = body_from(b)) != NULL) {
			tpviz_body_unref(v->graph);
			v->graph = body;
		}
		evbuffer_free(b);
	}
}

void
tpviz_body_unref(struct tpviz_body *b)
{
	if (b != NULL && --b->refs == 0)
		free(b);
}

void
tpviz_view_set(struct tpviz *t, enum tpviz_view_id id, const char *source, uint64_t seq,
    struct tpviz_item *items, size_t n)
{
	struct tpviz_view *v = &t->views[id];
	size_t changed;
	int moved;
	char ev[160];

	if (n > 1)
		qsort(items, n, sizeof(*items), item_cmp);
	changed = diff(items, n, v->items, v->nitems);
	moved = v->source == NULL || strcmp(v->source, source) != 0;
	if (changed == 0 && !moved) {
		/* Another part of the feed changed: keep the new seq, tell nobody. */
		tpviz_items_free(items, n);
		if (strcmp(source, "cxo") == 0 && seq != v->seq) {
			v->seq = seq;
			render(t, id);
		}
		return;
	}
	tpviz_items_free(v->items, v->nitems);
	v->items = items;
	v->nitems = n;
	v->source = source;
	v->seq = strcmp(source, "cxo") == 0 ? seq : v->seq + 1;
	v->updated_s = sw_wall_ms() / 1000;
	render(t, id);
	snprintf(ev, sizeof(ev), "{\"feed\":\"%s\",\"seq\":%llu,\"changed\":%zu}", v->feed,
	    (unsigned long long)v->seq, changed);
	tpviz_sse_send(t, ev);
}

/* "<pk>:<port>", as service-discovery stores it (the page splits it at ':'). */
static int
address_ok(const char *s)
{
	char hex[SW_PK_HEX], *end;
	uint8_t pk[SW_PK_LEN];
	long long port;

	snprintf(hex, sizeof(hex), "%.*s", SW_PK_HEX - 1, s);
	if (sw_pk_parse(pk, hex) == -1 || s[SW_PK_HEX - 1] != ':' ||
	    !isdigit((unsigned char)s[SW_PK_HEX]))
		return 0;
	port = strtoll(s + SW_PK_HEX, &end, 10);
	return *end == '\0' && port <= 65535;
}

/*
 * Why a record does not fit its view, or NULL.  What the page reads must
 * have its documented shape (a service's address); the rest of a record is
 * printed by sw_json_print_safe, whatever it holds.
 */
static const char *
record_misfit(enum tpviz_view_id id, const cJSON *rec)
{
	const cJSON *f;
	uint8_t pk[SW_PK_LEN];

	if (!cJSON_IsObject(rec))
		return "not a JSON object";
	if (id == TV_CLIENTS) {
		f = cJSON_GetObjectItemCaseSensitive(rec, "static");
		return cJSON_IsString(f) && sw_pk_parse(pk, f->valuestring) == 0 ? NULL :
		    "static is not a public key";
	}
	if (id != TV_TRANSPORTS) {
		f = cJSON_GetObjectItemCaseSensitive(rec, "address");
		return cJSON_IsString(f) && address_ok(f->valuestring) ? NULL :
		    "address is not <pk>:<port>";
	}
	return NULL;
}

/*
 * Append one item (a transport's entry parsed too, for the graph); 0, or -1
 * out of memory.  A record that does not fit is left out, with a reason in
 * the log (rate-limited: a hostile feed repeats itself every poll).
 */
static int
push(struct tpviz *t, enum tpviz_view_id id, struct tpviz_item **items, size_t *n,
    size_t *cap, const char *key, size_t klen, const cJSON *rec)
{
	char err[128], q[96];
	const char *why;
	struct tpviz_item *it;

	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct tpviz_item *p = realloc(*items, nc * sizeof(*p));

		if (p == NULL)
			return -1;
		*items = p;
		*cap = nc;
	}
	it = &(*items)[*n];
	it->json = NULL;
	if ((why = record_misfit(id, rec)) != NULL ||
	    (it->json = sw_json_print_safe(rec, NULL, &why)) == NULL) {
		if (why == NULL)
			return -1;
		sw_log_limited(SW_LOG_WARN, t->name, "record left out", "feed=%s key=%s why=%s",
		    t->views[id].feed, sw_log_q(q, sizeof(q), key), sw_log_q(err, sizeof(err), why));
		return 0;
	}
	it->key = strndup(key, klen);
	it->tp = id == TV_TRANSPORTS ? malloc(sizeof(*it->tp)) : NULL;
	if (it->key == NULL || (id == TV_TRANSPORTS && it->tp == NULL)) {
		free(it->key);
		free(it->json);
		free(it->tp);
		return -1;
	}
	/* A record that is not a valid entry is listed but not drawn. */
	if (it->tp != NULL && tp_entry_parse(rec, it->tp, err, sizeof(err)) != 0) {
		free(it->tp);
		it->tp = NULL;
	}
	(*n)++;
	return 0;
}

/* The key of a record from the feed's path. */
static int
path_key(enum tpviz_view_id id, const char *path, char *out, size_t size)
{
	const char *last = strrchr(path, '/');

	if (last == NULL)
		return -1;
	if (id != TV_CLIENTS)
		return snprintf(out, size, "%s", last + 1) < (int)size ? 0 : -1;
	/* clients-by-server/<server>/<cc>/<client>; the server is printed as a JSON key: hex only. */
	if (strncmp(path, "clients-by-server/", 18) != 0 || strlen(path) < 18 + SW_PK_HEX - 1 ||
	    path[18 + SW_PK_HEX - 1] != '/')
		return -1;
	{
		char hex[SW_PK_HEX];
		uint8_t pk[SW_PK_LEN];

		snprintf(hex, sizeof(hex), "%.*s", SW_PK_HEX - 1, path + 18);
		if (sw_pk_parse(pk, hex) == -1)
			return -1;
	}
	return snprintf(out, size, "%.*s/%s", SW_PK_HEX - 1, path + 18, last + 1) < (int)size ?
	    0 : -1;
}

/* The key of a record from a service's HTTP answer (server: the clients' server). */
static int
json_key(enum tpviz_view_id id, const cJSON *o, const char *server, char *out, size_t size)
{
	const cJSON *f;

	if (id == TV_TRANSPORTS) {
		f = cJSON_GetObjectItemCaseSensitive(o, "t_id");
		return cJSON_IsString(f) && snprintf(out, size, "%s", f->valuestring) < (int)size ?
		    0 : -1;
	}
	if (id == TV_CLIENTS) {
		f = cJSON_GetObjectItemCaseSensitive(o, "static");
		return cJSON_IsString(f) && snprintf(out, size, "%s/%s", server, f->valuestring) <
		    (int)size ? 0 : -1;
	}
	f = cJSON_GetObjectItemCaseSensitive(o, "address");
	if (!cJSON_IsString(f))
		return -1;
	return snprintf(out, size, "%.*s", (int)strcspn(f->valuestring, ":"), f->valuestring) <
	    (int)size ? 0 : -1;
}

static void clients_http(struct tpviz *t);

static void
on_answer(const struct cxo_answer *a, void *arg)
{
	struct ask *k = arg;
	struct tpviz *t = k->t;
	enum tpviz_view_id id = k->id;
	struct tpviz_item *items = NULL;
	size_t n = 0, cap = 0;
	char key[160];

	free(k);
	if (t->stopping)
		return;
	t->views[id].inflight = 0;
	if (a->source == CXO_SRC_FEED) {
		for (size_t i = 0; i < a->nleaves; i++) {
			const char *why = NULL;
			/* Strict: no trailing bytes, no key twice (printed twice, read as one). */
			cJSON *o = sw_json_parse(a->leaves[i].data, a->leaves[i].len, &why);
			char q[96], w[64];

			/* A publisher's bad leaf is its bug; the rest still count. */
			if (o == NULL || path_key(id, a->leaves[i].path, key, sizeof(key)) == -1) {
				sw_log_limited(SW_LOG_WARN, t->name, "record left out",
				    "feed=%s path=%s why=%s", t->views[id].feed,
				    sw_log_q(q, sizeof(q), a->leaves[i].path),
				    sw_log_q(w, sizeof(w), o == NULL ? why : "path not of this view"));
			} else if (push(t, id, &items, &n, &cap, key, strlen(key), o) == -1) {
				cJSON_Delete(o);
				goto oom;
			}
			cJSON_Delete(o);
		}
		tpviz_view_set(t, id, "cxo", a->seq, items, n);
		return;
	}
	if (id == TV_CLIENTS) {
		clients_http(t);
		return;
	}
	if (a->source != CXO_SRC_HTTP || a->http_status != 200 || !cJSON_IsArray(a->json)) {
		if (a->source == CXO_SRC_HTTP)
			sw_log_debug(t->name, "fallback answer unusable", "feed=%s status=%d",
			    t->views[id].feed, a->http_status);
		return;
	}
	for (const cJSON *o = a->json->child; o != NULL; o = o->next)
		if (json_key(id, o, NULL, key, sizeof(key)) == 0 &&
		    push(t, id, &items, &n, &cap, key, strlen(key), o) == -1)
			goto oom;
	tpviz_view_set(t, id, "http", 0, items, n);
	return;
oom:
	sw_log_warn(t->name, "out of memory building a view", "feed=%s", t->views[id].feed);
	tpviz_items_free(items, n);
}

/* ---- clients-by-server over HTTP: all_servers, then each server's clients ---- */

struct client_ask {
	struct tpviz *t;
	char server[SW_PK_HEX];
};

static void
clients_round_done(struct tpviz *t)
{
	struct tpviz_item *items = t->clients_acc;
	size_t n = t->nclients_acc;

	t->clients_acc = NULL;
	t->nclients_acc = 0;
	t->clients_cap = 0;
	tpviz_view_set(t, TV_CLIENTS, "http", 0, items, n);
}

static void
on_server_clients(const struct sw_http_resp *r, void *arg)
{
	struct client_ask *c = arg;
	struct tpviz *t = c->t;
	char key[160];

	if (!t->stopping && r->status == 200 && cJSON_IsArray(r->json))
		for (const cJSON *o = r->json->child; o != NULL; o = o->next)
			if (json_key(TV_CLIENTS, o, c->server, key, sizeof(key)) == 0 &&
			    push(t, TV_CLIENTS, &t->clients_acc, &t->nclients_acc, &t->clients_cap, key,
			    strlen(key), o) == -1)
				break;
	free(c);
	if (t->stopping)
		return;
	if (--t->clients_http_pending == 0)
		clients_round_done(t);
}

static void
set_servers(struct tpviz *t, const cJSON *arr)
{
	size_t n = 0;
	char **list;

	for (const cJSON *o = arr->child; o != NULL && n < TPVIZ_MAX_SERVERS; o = o->next)
		n++;
	if ((list = calloc(n + 1, sizeof(*list))) == NULL)
		return;
	n = 0;
	for (const cJSON *o = arr->child; o != NULL && n < TPVIZ_MAX_SERVERS; o = o->next) {
		const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "static");
		uint8_t raw[SW_PK_LEN];

		if (cJSON_IsString(pk) && sw_pk_parse(raw, pk->valuestring) == 0 &&
		    (list[n] = strdup(pk->valuestring)) != NULL)
			n++;
	}
	for (size_t i = 0; i < t->nservers; i++)
		free(t->servers[i]);
	free(t->servers);
	t->servers = list;
	t->nservers = n;
}

static void
on_servers(const struct sw_http_resp *r, void *arg)
{
	struct tpviz *t = arg;

	if (t->stopping)
		return;
	t->servers_inflight = 0;
	if (r->status == 200 && cJSON_IsArray(r->json)) {
		set_servers(t, r->json);
		if (t->views[TV_CLIENTS].source != NULL)
			render(t, TV_CLIENTS);
	}
}

static void
fetch_servers(struct tpviz *t)
{
	char url[640];
	struct sw_http_opts o = {.timeout_ms = HTTP_TIMEOUT};

	if (t->servers_inflight || sw_mono_ms() - t->servers_ms < SERVERS_MS)
		return;
	t->servers_ms = sw_mono_ms();
	snprintf(url, sizeof(url), "%s/dmsg-discovery/all_servers", t->dd_url);
	if (sw_http_request(t->hc, "GET", url, NULL, 0, &o, on_servers, t) == 0)
		t->servers_inflight = 1;
}

static void
clients_http(struct tpviz *t)
{
	struct sw_http_opts o = {.timeout_ms = HTTP_TIMEOUT};
	char url[700];

	if (t->clients_http_pending > 0)
		return;
	t->clients_http_pending = 1; /* held until every request is out */
	for (size_t i = 0; i < t->nservers; i++) {
		struct client_ask *c = calloc(1, sizeof(*c));

		if (c == NULL)
			break;
		c->t = t;
		snprintf(c->server, sizeof(c->server), "%s", t->servers[i]);
		snprintf(url, sizeof(url), "%s/dmsg-discovery/clients-by-server/%s", t->dd_url,
		    c->server);
		if (sw_http_request(t->hc, "GET", url, NULL, 0, &o, on_server_clients, c) == -1) {
			free(c);
			continue;
		}
		t->clients_http_pending++;
	}
	if (--t->clients_http_pending == 0)
		clients_round_done(t);
}

/* ---- the tick ---- */

static void
on_http_view(const struct sw_http_resp *r, void *arg)
{
	struct cxo_answer a = {0};

	a.source = r->status != 0 ? CXO_SRC_HTTP : CXO_SRC_NONE;
	a.http_status = r->status;
	a.json = r->json;
	on_answer(&a, arg);
}

static int
feed_unchanged(struct tpviz *t, const struct tpviz_view *v)
{
	struct cxo_sub *s;

	if (v->source == NULL || strcmp(v->source, "cxo") != 0 ||
	    sw_mono_ms() - v->asked_ms > KEEPALIVE_MS)
		return 0;
	s = cxo_mgr_sub(t->mgr, v->pk, v->port);
	return s != NULL && cxo_sub_connected(s) && cxo_sub_has_snapshot(s) &&
	    cxo_sub_seq(s) == v->seq;
}

static int
feed_ready(struct tpviz *t, const struct tpviz_view *v)
{
	struct cxo_sub *s = v->has_pk ? cxo_mgr_sub(t->mgr, v->pk, v->port) : NULL;

	return s != NULL && cxo_sub_connected(s) && cxo_sub_has_snapshot(s);
}

static void
ask(struct tpviz *t, enum tpviz_view_id id)
{
	struct tpviz_view *v = &t->views[id];
	struct cxo_query q;
	struct ask *k;

	if (v->inflight || feed_unchanged(t, v))
		return;
	/* The fallback's pace, unless the feed can answer now (its first snapshot). */
	if (v->source != NULL && strcmp(v->source, "http") == 0 &&
	    sw_mono_ms() - v->asked_ms < HTTP_EVERY_MS && !feed_ready(t, v))
		return;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return;
	k->t = t;
	k->id = id;
	memset(&q, 0, sizeof(q));
	q.pk = v->has_pk ? v->pk : NULL;
	q.port = v->port;
	q.prefix = v->prefix;
	q.http_url = id == TV_CLIENTS ? NULL : v->url;
	v->asked_ms = sw_mono_ms();
	if (!v->has_pk) {
		/* No publisher configured: HTTP only, through the same answer path. */
		struct sw_http_opts o = {.timeout_ms = HTTP_TIMEOUT};

		if (id == TV_CLIENTS) {
			free(k);
			clients_http(t);
			return;
		}
		v->inflight = 1;
		if (sw_http_request(t->hc, "GET", v->url, NULL, 0, &o, on_http_view, k) == -1) {
			v->inflight = 0;
			free(k);
		}
		return;
	}
	v->inflight = 1;
	if (cxo_mgr_query(t->mgr, &q, on_answer, k) == -1) {
		v->inflight = 0;
		free(k);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tpviz *t = arg;

	(void)fd;
	(void)what;
	fetch_servers(t);
	for (int i = 0; i < TV_COUNT; i++)
		ask(t, (enum tpviz_view_id)i);
	tpviz_sse_send(t, NULL); /* keep-alive, when due */
}

/* A feed's first snapshot: the views move to it now, not at the next tick. */
void
tpviz_feeds_snapshot(const uint8_t *pk, uint16_t port, void *arg)
{
	struct tpviz *t = arg;

	(void)pk;
	(void)port;
	if (!t->stopping && t->tick != NULL)
		on_tick(-1, 0, t);
}

int
tpviz_feeds_start(struct tpviz *t)
{
	struct timeval tv;

	sw_ms_to_tv(t->poll_ms, &tv);
	if ((t->tick = event_new(sw_svc_base(t->svc), -1, EV_PERSIST, on_tick, t)) == NULL ||
	    event_add(t->tick, &tv) == -1)
		return -1;
	on_tick(-1, 0, t);
	return 0;
}

void
tpviz_feeds_free(struct tpviz *t)
{
	t->stopping = 1;
	if (t->tick != NULL)
		event_free(t->tick);
	t->tick = NULL;
	tpviz_items_free(t->clients_acc, t->nclients_acc);
	t->clients_acc = NULL;
	t->nclients_acc = 0;
	t->clients_cap = 0;
}
