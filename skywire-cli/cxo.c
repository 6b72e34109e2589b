/*
 * skywire-cli cxo tree|watch: read a CXO feed straight from its publisher,
 * over dmsg (a dmsg client with a fresh key, found through -d/--discovery,
 * dialling the publisher's PK on the feed port) or, with --addr, from the
 * publisher's TCP port (cxo_tcp_addr).  tree is a cycle read (subscribe,
 * first snapshot, unsubscribe); watch stays subscribed and prints each
 * update.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "crypto.h"
#include "cxo_dmsg.h"
#include "cxo_mgr.h"
#include "cxo_sub.h"
#include "dmsg_client.h"

struct run {
	const struct cli *c;
	int done;
	int rc;
	cJSON *json;
};

static void
print_value(const uint8_t *d, size_t len)
{
	int text = 1;

	for (size_t i = 0; i < len; i++)
		if (d[i] < 0x20 || d[i] == 0x7f)
			text = 0;
	if (text) {
		fwrite(d, 1, len, stdout);
	} else {
		for (size_t i = 0; i < len; i++)
			printf("%02x", d[i]);
	}
}

static int
print_leaf(const char *path, const uint8_t *d, size_t len, void *arg)
{
	struct run *r = arg;

	if (r->json != NULL) {
		char *s = malloc(len + 1);

		if (s == NULL)
			return 1;
		memcpy(s, d, len);
		s[len] = '\0';
		cJSON_AddStringToObject(r->json, path, s);
		free(s);
		return 0;
	}
	printf("%s\t", path);
	print_value(d, len);
	printf("\n");
	return 0;
}

struct tree_arg {
	struct run *r;
	const char *path;
};

static void
tree_done(struct cxo_sub *s, const char *err, void *arg)
{
	struct tree_arg *t = arg;

	t->r->done = 1;
	if (s == NULL) {
		fprintf(stderr, "skywire-cli: cannot read the feed: %s\n", err);
		t->r->rc = 1;
		return;
	}
	if (cxo_sub_walk(s, t->path, print_leaf, t->r) == 0 && t->path != NULL)
		fprintf(stderr, "skywire-cli: nothing at %s\n", t->path);
	t->r->rc = 0;
}

static void
watch_snapshot(struct cxo_sub *s, void *arg)
{
	struct run *r = arg;
	size_t n;

	printf("snapshot seq=%llu\n", (unsigned long long)cxo_sub_seq(s));
	n = cxo_sub_walk(s, NULL, print_leaf, r);
	printf("(%zu leaves)\n", n);
	fflush(stdout);
}

static void
watch_update(struct cxo_sub *s, const struct cxo_change *ch, size_t n, void *arg)
{
	(void)arg;
	printf("update seq=%llu changes=%zu\n", (unsigned long long)cxo_sub_seq(s), n);
	for (size_t i = 0; i < n; i++) {
		printf("%c %s", ch[i].kind == CXO_ADDED ? '+' : ch[i].kind == CXO_CHANGED ? '~' : '-',
		    ch[i].path);
		if (ch[i].kind != CXO_REMOVED) {
			printf("\t");
			print_value(ch[i].data, ch[i].len);
		}
		printf("\n");
	}
	fflush(stdout);
}

static void
watch_down(struct cxo_sub *s, const char *reason, void *arg)
{
	(void)s;
	(void)arg;
	fprintf(stderr, "skywire-cli: feed connection lost (%s), retrying\n", reason);
}

static void
set_flag(void *arg)
{
	*(int *)arg = 1;
}

static int
usage(void)
{
	fprintf(stderr, "usage: skywire-cli cxo tree PK PORT [PATH] [-d URL | --addr HOST:PORT]\n"
			"       skywire-cli cxo watch PK PORT [-d URL | --addr HOST:PORT]\n"
			"  over dmsg by default, found through -d/--discovery URL (default "
			"http://127.0.0.1:9090);\n"
			"  --addr reads the publisher's cxo_tcp_addr instead\n");
	return 2;
}

int
cli_cxo(const struct cli *c, int argc, char **argv)
{
	struct cxo_sub_opts o;
	struct run r = {c, 0, 1, NULL};
	struct event_base *base = NULL;
	struct cxo_sub *s = NULL;
	const char *addr = NULL, *disc = "http://127.0.0.1:9090", *pos[4] = {NULL, NULL, NULL, NULL};
	struct sw_keypair kp;
	struct dmsg_client *dc = NULL;
	struct cxo_dmsg_target t;
	int npos = 0, watch;
	long port;
	char *end;

	if (argc < 1 || (strcmp(argv[0], "tree") != 0 && strcmp(argv[0], "watch") != 0))
		return usage();
	watch = strcmp(argv[0], "watch") == 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strncmp(argv[i], "--addr=", 7) == 0)
			addr = argv[i] + 7;
		else if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--discovery") == 0) &&
		    i + 1 < argc)
			disc = argv[++i];
		else if (strncmp(argv[i], "--discovery=", 12) == 0)
			disc = argv[i] + 12;
		else if (argv[i][0] == '-' || npos == 3)
			return usage();
		else
			pos[npos++] = argv[i];
	}
	memset(&o, 0, sizeof(o));
	memset(&t, 0, sizeof(t));
	if (npos < 2 || (watch && npos > 2) ||
	    sw_pk_parse(o.feed_pk, pos[0]) == -1)
		return usage();
	port = strtol(pos[1], &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL || sw_crypto_init() == -1)
		goto out;
	o.svc = "skywire-cli";
	o.feed_port = (uint16_t)port;
	if (addr != NULL) {
		o.dial = cxo_tcp_dial;
		o.dial_arg = (void *)addr;
	} else {
		struct dmsg_client_opts dopts;

		memset(&dopts, 0, sizeof(dopts));
		dopts.discovery = disc;
		sw_keypair_generate(&kp);
		dc = dmsg_client_new(base, &kp, &dopts, "skywire-cli");
		if (dc == NULL || dmsg_client_start(dc) == -1 ||
		    (t.d = cxo_dmsg_new(base, dc, "skywire-cli")) == NULL) {
			fprintf(stderr, "skywire-cli: cannot start a dmsg client on %s\n", disc);
			goto out;
		}
		memcpy(t.pk, o.feed_pk, SW_PK_LEN);
		t.port = o.feed_port;
		o.dial = cxo_dmsg_sub_dial;
		o.dial_arg = &t;
	}
	if (!watch) {
		struct tree_arg ta = {&r, pos[2]};

		if (c->json)
			r.json = cJSON_CreateObject();
		if (cxo_cycle_read(base, &o, 15000, tree_done, &ta) == -1)
			goto out;
		while (!r.done && event_base_loop(base, EVLOOP_ONCE) == 0)
			;
		if (r.rc == 0 && r.json != NULL)
			r.rc = cli_print_json(r.json);
		/* Let the UNSUB go out. */
		event_base_loop(base, EVLOOP_NONBLOCK);
		goto out;
	}
	o.cbs.snapshot = watch_snapshot;
	o.cbs.update = watch_update;
	o.cbs.down = watch_down;
	o.arg = &r;
	s = cxo_sub_new(base, &o);
	if (s == NULL)
		goto out;
	event_base_dispatch(base);
	r.rc = 0;
out:
	cxo_sub_free(s);
	cJSON_Delete(r.json);
	if (dc != NULL) {
		int drained = 0;

		/* The UNSUB and our CLOSE reach the relay before we go. */
		event_base_loop(base, EVLOOP_NONBLOCK);
		cxo_dmsg_free(t.d);
		if (dmsg_client_drain(dc, 2000, set_flag, &drained) == 0)
			while (!drained && event_base_loop(base, EVLOOP_ONCE) == 0)
				;
		dmsg_client_free(dc);
	}
	if (base != NULL)
		event_base_free(base);
	return r.rc;
}
