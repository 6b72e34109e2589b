/*
 * test_feeds: tpviz reading hostile leaves from its CXO feeds (the path
 * test_hostile.py's HTTP fallback does not take).  A publisher in this
 * process serves the three feeds over dmsg (a real dmsg-discovery and
 * dmsg-server from $SW_BUILD/bin) with leaves a service would never
 * write: quotes, "</script>", U+2028, bad UTF-8, 1e999, a key twice,
 * bytes after the value, a record that is no object, a service address
 * and a client key of the wrong shape, a clients-by-server path whose
 * server is not hex.  Every rendered answer must be strict JSON without
 * "<", ">" or "&" in its bytes; the misfits are left out, the rest kept.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "crypto.h"
#include "cxo_dmsg.h"
#include "cxo_obj.h"
#include "cxo_pub.h"
#include "dmsg_client.h"
#include "json.h"
#include "log.h"
#include "service.h"
#include "tp_entry.h"
#include "tpviz/tpviz.h"
#include "tests/lib/procs.h"
#include "tests/lib/testutil.h"

#define WAIT_MS 30000
/* As JSON spells it in a leaf, and the string it is. */
#define EVIL       "\\\"</script><script>pwned=1</script><!-- \xe2\x80\xa8 &amp;"
#define EVIL_VALUE "\"</script><script>pwned=1</script><!-- \xe2\x80\xa8 &amp;"

static struct event_base *base;
static struct sw_test_proc disc, srv;

struct pub {
	struct sw_keypair kp;
	struct cxo_pub *p;
	struct cxo_feed *f[3];
	struct dmsg_client *c;
	struct cxo_dmsg *d;
};

static void
put(struct cxo_feed *f, const char *path, const char *leaf)
{
	assert_int_equal(cxo_feed_put(f, path, leaf, strlen(leaf)), 0);
}

/* The three feeds, each with good leaves and hostile ones. */
static void
pub_start(struct pub *p, const uint8_t srv_pk[SW_PK_LEN], char good_tid[TP_ID_TEXT])
{
	static const uint16_t ports[3] = {CXO_PORT_ALL_TRANSPORTS, CXO_PORT_SERVICES_BY_PK,
	    CXO_PORT_CLIENTS_BY_SERVER};
	struct dmsg_client_opts o;
	struct sw_keypair a, b;
	char ha[SW_PK_HEX], hb[SW_PK_HEX], hs[SW_PK_HEX], path[256], leaf[1024];
	uint8_t tid[TP_ID_LEN];

	sw_keypair_generate(&p->kp);
	assert_non_null(p->p = cxo_pub_new(base, "pub"));
	for (int i = 0; i < 3; i++) {
		struct cxo_feed_opts fo = {.kp = &p->kp, .port = ports[i], .publish_interval_ms = 20};

		assert_non_null(p->f[i] = cxo_feed_new(p->p, &fo));
	}
	sw_keypair_generate(&a);
	sw_keypair_generate(&b);
	if (memcmp(a.pk, b.pk, SW_PK_LEN) > 0) {
		struct sw_keypair t = a;

		a = b;
		b = t;
	}
	sw_hex_encode(ha, a.pk, SW_PK_LEN);
	sw_hex_encode(hb, b.pk, SW_PK_LEN);
	sw_hex_encode(hs, srv_pk, SW_PK_LEN);
	tp_id_derive(tid, a.pk, b.pk, "dmsg");
	tp_id_format(good_tid, tid);
	/* transports: one to draw, one kept but not drawn, the rest left out. */
	snprintf(path, sizeof(path), "transports/%s", good_tid);
	snprintf(leaf, sizeof(leaf), "{\"t_id\":\"%s\",\"edges\":[\"%s\",\"%s\"],\"type\":\"dmsg\","
	    "\"label\":\"user\",\"note\":\"%s\",\"n\":1e999}", good_tid, ha, hb, EVIL);
	put(p->f[0], path, leaf);
	put(p->f[0], "transports/kept", "{\"t_id\":\"" EVIL "\",\"big\":-1e400}");
	put(p->f[0], "transports/dup", "{\"t_id\":\"d\",\"a\":1,\"a\":2}");
	put(p->f[0], "transports/trailing", "{\"t_id\":\"t\"} </script>");
	put(p->f[0], "transports/utf8", "{\"t_id\":\"u\",\"s\":\"\xff\xc0\xaf\"}");
	put(p->f[0], "transports/array", "[\"</script>\"]");
	put(p->f[0], "transports/number", "1e999");
	/* services: the page splits the address; one of the wrong shape is left out. */
	snprintf(path, sizeof(path), "services/vpn/%s", ha);
	snprintf(leaf, sizeof(leaf), "{\"address\":\"%s:44\",\"type\":\"vpn\",\"geo\":{\"country\":"
	    "{\"toString\":1}},\"note\":\"%s\"}", ha, EVIL);
	put(p->f[1], path, leaf);
	snprintf(path, sizeof(path), "services/vpn/%s", hb);
	put(p->f[1], path, "{\"address\":\"" EVIL "\",\"type\":\"vpn\"}");
	/* clients-by-server: a good client, one whose key is not a key, a server not hex. */
	snprintf(path, sizeof(path), "clients-by-server/%s/00/%s", hs, ha);
	snprintf(leaf, sizeof(leaf), "{\"static\":\"%s\",\"delegated\":[\"%s\"]}", ha, EVIL);
	put(p->f[2], path, leaf);
	snprintf(path, sizeof(path), "clients-by-server/%s/00/%s", hs, hb);
	put(p->f[2], path, "{\"static\":\"" EVIL "\"}");
	for (size_t i = 0; i < SW_PK_HEX - 1; i++)
		hs[i] = (char)toupper((unsigned char)hs[i]);
	snprintf(path, sizeof(path), "clients-by-server/%s/00/%s", hs, hb);
	snprintf(leaf, sizeof(leaf), "{\"static\":\"%s\"}", hb);
	put(p->f[2], path, leaf);

	memset(&o, 0, sizeof(o));
	o.discovery = disc.url;
	o.backoff_min_ms = 100;
	o.backoff_max_ms = 1000;
	assert_non_null(p->c = dmsg_client_new(base, &p->kp, &o, "pub"));
	assert_int_equal(dmsg_client_start(p->c), 0);
	assert_non_null(p->d = cxo_dmsg_new(base, p->c, "pub"));
	for (int i = 0; i < 3; i++)
		assert_int_equal(cxo_dmsg_serve(p->d, p->p, ports[i]), 0);
}

static void
pub_stop(struct pub *p)
{
	cxo_dmsg_free(p->d);
	dmsg_client_free(p->c);
	for (int i = 0; i < 3; i++)
		cxo_feed_free(p->f[i]);
	cxo_pub_free(p->p);
}

static int
all_from_feed(void *arg)
{
	const struct tpviz *t = arg;
	static const enum tpviz_view_id ids[] = {TV_TRANSPORTS, TV_SVC_VPN, TV_CLIENTS};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct tpviz_view *v = &t->views[ids[i]];

		if (v->source == NULL || strcmp(v->source, "cxo") != 0 || v->nitems == 0)
			return 0;
	}
	return 1;
}

/* The body as strict JSON, with no byte that could end an HTML or script context. */
static cJSON *
strict(const struct tpviz_body *b)
{
	cJSON *v;

	assert_non_null(b);
	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] == '<' || b->data[i] == '>' || b->data[i] == '&')
			fail_msg("byte %zu of %.*s", i, (int)b->len, b->data);
	v = sw_json_parse(b->data, b->len, NULL);
	if (v == NULL)
		fail_msg("not strict JSON: %.*s", (int)b->len, b->data);
	return v;
}

static const cJSON *
get(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_non_null(v);
	return v;
}

static void
test_hostile_leaves(void **state)
{
	struct pub p;
	struct sw_supervisor *sup;
	struct sw_svc *svc;
	struct tpviz *t;
	cJSON *cfg, *v;
	const cJSON *a, *s;
	char hex[SW_PK_HEX], listen[32], good_tid[TP_ID_TEXT];

	(void)state;
	assert_int_equal(sw_test_relay_start(&base, &disc, &srv, 1), 0);
	pub_start(&p, srv.kp.pk, good_tid);
	assert_non_null(svc = sw_test_svc(base, "tpviz", &sup));
	sw_hex_encode(hex, p.kp.pk, SW_PK_LEN);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", sw_test_free_port());
	cfg = cJSON_CreateObject();
	cJSON_AddStringToObject(cfg, "listen", listen);
	cJSON_AddStringToObject(cfg, "dmsg_discovery", disc.url);
	/* Nothing answers the fallback: only the feeds can fill the views. */
	cJSON_AddStringToObject(cfg, "transport_discovery", "http://127.0.0.1:1");
	cJSON_AddStringToObject(cfg, "service_discovery", "http://127.0.0.1:1");
	cJSON_AddStringToObject(cfg, "transport_discovery_pk", hex);
	cJSON_AddStringToObject(cfg, "service_discovery_pk", hex);
	cJSON_AddStringToObject(cfg, "dmsg_discovery_pk", hex);
	cJSON_AddNumberToObject(cfg, "poll_ms", 50);
	assert_non_null(t = tpviz_ops.create(svc, cfg));
	assert_int_equal(tpviz_ops.start(t), 0);
	assert_int_equal(sw_test_run_until_fn(base, all_from_feed, t, WAIT_MS), 0);
	sw_test_run_for(base, 300); /* a later snapshot would say the same */

	v = strict(t->views[TV_TRANSPORTS].body);
	a = get(v, "transports");
	assert_int_equal(cJSON_GetArraySize(a), 2);
	for (const cJSON *e = a->child; e != NULL; e = e->next) {
		/* Numbers JSON cannot spell are null; strings come back as they were. */
		if (strcmp(get(e, "t_id")->valuestring, good_tid) == 0) {
			assert_true(cJSON_IsNull(get(e, "n")));
			assert_string_equal(get(e, "note")->valuestring, EVIL_VALUE);
		} else {
			assert_string_equal(get(e, "t_id")->valuestring, EVIL_VALUE);
			assert_true(cJSON_IsNull(get(e, "big")));
		}
	}
	cJSON_Delete(v);
	v = strict(t->views[TV_TRANSPORTS].graph);
	assert_int_equal(get(v, "count")->valueint, 1);
	assert_string_equal(cJSON_GetArrayItem(get(v, "t_id"), 0)->valuestring, good_tid);
	cJSON_Delete(v);

	v = strict(t->views[TV_SVC_VPN].body);
	a = get(v, "services");
	assert_int_equal(cJSON_GetArraySize(a), 1);
	assert_string_equal(get(cJSON_GetArrayItem(a, 0), "note")->valuestring, EVIL_VALUE);
	cJSON_Delete(v);

	v = strict(t->views[TV_CLIENTS].body);
	s = get(v, "servers");
	sw_hex_encode(hex, srv.kp.pk, SW_PK_LEN);
	assert_int_equal(cJSON_GetArraySize(s), 1);
	assert_int_equal(cJSON_GetArraySize(get(s, hex)), 1);
	cJSON_Delete(v);

	tpviz_ops.destroy(t);
	cJSON_Delete(cfg);
	sw_supervisor_free(sup);
	pub_stop(&p);
	sw_test_run_for(base, 50);
	sw_test_relay_stop(base, &disc, &srv, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_leaves),
	};

	sw_log_set_level(SW_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
