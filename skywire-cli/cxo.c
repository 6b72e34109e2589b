/*
 * skywire-cli cxo tree|watch: read a CXO feed straight from its publisher's
 * TCP port (cxo_tcp_addr).  tree is a cycle read (subscribe, first
 * snapshot, unsubscribe); watch stays subscribed and prints each update.
 * Over dmsg comes later; for now --addr is required.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "crypto.h"
#include "cxo_mgr.h"
#include "cxo_sub.h"

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

static int
usage(void)
{
	fprintf(stderr, "usage: skywire-cli cxo tree PK PORT [PATH] --addr HOST:PORT\n"
			"       skywire-cli cxo watch PK PORT --addr HOST:PORT\n"
			"  --addr is the publisher's cxo_tcp_addr (required: dmsg is not yet "
			"supported)\n");
	return 2;
}

int
cli_cxo(const struct cli *c, int argc, char **argv)
{
	struct cxo_sub_opts o;
	struct run r = {c, 0, 1, NULL};
	struct event_base *base = NULL;
	struct cxo_sub *s = NULL;
	const char *addr = NULL, *pos[4] = {NULL, NULL, NULL, NULL};
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
		else if (argv[i][0] == '-' || npos == 3)
			return usage();
		else
			pos[npos++] = argv[i];
	}
	memset(&o, 0, sizeof(o));
	if (addr == NULL || npos < 2 || (watch && npos > 2) ||
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
	o.dial = cxo_tcp_dial;
	o.dial_arg = (void *)addr;
	if (!watch) {
		struct tree_arg t = {&r, pos[2]};

		if (c->json)
			r.json = cJSON_CreateObject();
		if (cxo_cycle_read(base, &o, 15000, tree_done, &t) == -1)
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
	if (base != NULL)
		event_base_free(base);
	return r.rc;
}
