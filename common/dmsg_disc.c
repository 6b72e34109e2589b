/*
 * dmsg_disc: the client's discovery I/O (see dmsg_client_int.h): the pool
 * maintenance fetch of available_servers, and our own entry, posted on each
 * change of ready sessions and every refresh period, one POST at a time.
 */
#include "dmsg_client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <sodium.h>

#include "backoff.h"
#include "clock.h"
#include "dict.h"
#include "dmsg-discovery/dd_schema.h"
#include "dmsg_ended.h"
#include "dmsg_entry.h"
#include "dmsg_wire.h"
#include "http.h"
#include "log.h"

/* ---------- pool maintenance ---------- */

static void
servers_fetched(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_client *c = arg;
	struct dmsg_entry *cand = NULL;
	const cJSON *item;
	char err[128];
	size_t n = 0, opened = 0;
	long long now;
	int need;

	c->fetching = 0;
	if (c->freeing)
		return;
	need = c->o.min_sessions - c->nconns;
	if (resp->status != 200 || !cJSON_IsArray(resp->json)) {
		sw_log_warn(c->svc, "cannot fetch available servers", "status=%d", resp->status);
		goto retry;
	}
	if (need <= 0)
		return;
	if ((cand = calloc(MAX_CANDIDATES, sizeof(*cand))) == NULL)
		goto retry;
	now = dmsg_now_ms(c->base);
	/* first the servers that have not failed lately; the rest only if needed */
	for (int pass = 0; pass < 2 && opened < (size_t)need; pass++) {
		n = 0;
		cJSON_ArrayForEach(item, resp->json) {
			struct dmsg_entry *e = &cand[n];

			if (n >= MAX_CANDIDATES)
				break;
			if (dmsg_entry_parse(item, e, err, sizeof(err)) != 0 || !e->has_server ||
			    dmsgc_conn_find(c, e->pk) != NULL || dmsgc_penalized(c, e->pk, now) != pass)
				continue;
			n++;
		}
		/* random order spreads clients over servers */
		for (size_t i = n; i > 1; i--) {
			size_t j = randombytes_uniform((uint32_t)i);
			struct dmsg_entry t = cand[i - 1];

			cand[i - 1] = cand[j];
			cand[j] = t;
		}
		for (size_t i = 0; i < n && opened < (size_t)need; i++)
			if (dmsgc_conn_open(c, cand[i].pk, cand[i].address) != NULL)
				opened++;
	}
	free(cand);
	if (opened > 0)
		return;
	/* Expected while the servers start beside us (backoff.h's start window): quiet then. */
	sw_log(!c->ever_ready && sw_mono_ms() - c->start_ms < SW_START_WINDOW_MS ? SW_LOG_DEBUG :
	    SW_LOG_WARN, c->svc, "no dmsg server to connect to", "need=%d", need);
retry:
	dmsgc_schedule_maintain(c, dmsgc_retry_delay(c));
}

void
dmsgc_maintain(struct dmsg_client *c)
{
	struct sw_http_opts o = dmsgc_http_opts(c);
	char url[512];

	if (c->freeing || c->draining || c->fetching || c->nconns >= c->o.min_sessions)
		return;
	snprintf(url, sizeof(url), "%s" DD_PATH_AVAILABLE, c->discovery);
	c->fetching = 1;
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, servers_fetched, c) == -1) {
		c->fetching = 0;
		dmsgc_schedule_maintain(c, dmsgc_retry_delay(c));
	}
}

void
dmsgc_maint_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dmsgc_maintain(arg);
}

/* ---------- our entry ---------- */

static void post_entry_now(struct dmsg_client *c);

static void
post_later(struct dmsg_client *c, int ms)
{
	struct timeval tv;

	sw_ms_to_tv(ms, &tv);
	evtimer_add(c->post_timer, &tv);
}

static void
entry_synced(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_client *c = arg;
	struct dmsg_entry e;
	char err[128];

	c->posting = 0;
	if (c->freeing)
		return;
	if (resp->status == 404) {
		c->seq_known = 1;
	} else if (resp->status == 200 && resp->json != NULL &&
	    dmsg_entry_parse(resp->json, &e, err, sizeof(err)) == 0 &&
	    memcmp(e.pk, c->kp->pk, SW_PK_LEN) == 0) {
		if (e.sequence > c->seq)
			c->seq = e.sequence;
		c->seq_known = 1;
	} else {
		post_later(c, POST_RETRY_MS);
		return;
	}
	post_entry_now(c);
}

/* Learn the stored sequence (first post, or after a 409). */
static void
entry_sync(struct dmsg_client *c)
{
	struct sw_http_opts o = dmsgc_http_opts(c);
	char url[512], hex[SW_PK_HEX];

	sw_hex_encode(hex, c->kp->pk, SW_PK_LEN);
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY "%s", c->discovery, hex);
	c->posting = 1;
	if (sw_http_request(c->http, "GET", url, NULL, 0, &o, entry_synced, c) == -1) {
		c->posting = 0;
		post_later(c, POST_RETRY_MS);
	}
}

static void
entry_posted(const struct sw_http_resp *resp, void *arg)
{
	struct dmsg_client *c = arg;

	c->posting = 0;
	if (c->freeing)
		return;
	if (resp->status == 200) {
		c->posted_gen = c->inflight_gen;
		c->posted = 1;
		c->syncs = 0;
		if (c->post_again || c->posted_gen != c->gen)
			post_entry_now(c);
		else if (c->o.registered != NULL)
			c->o.registered(c, c->o.registered_arg);
		return;
	}
	if (resp->status == 409 && c->syncs < MAX_POST_SYNCS) {
		c->syncs++;
		c->seq_known = 0;
		entry_sync(c);
		return;
	}
	sw_log_warn(c->svc, "cannot post the dmsg entry", "status=%d", resp->status);
	c->syncs = 0;
	post_later(c, POST_RETRY_MS);
}

static void
post_entry_now(struct dmsg_client *c)
{
	struct sw_http_opts o = dmsgc_http_opts(c);
	struct dmsg_entry e;
	struct dmsg_conn *conn;
	cJSON *json = NULL;
	char url[512], *body = NULL;

	c->post_again = 0;
	if (!c->seq_known) {
		entry_sync(c);
		return;
	}
	memset(&e, 0, sizeof(e));
	memcpy(e.pk, c->kp->pk, SW_PK_LEN);
	e.sequence = ++c->seq;
	e.timestamp = (unsigned long long)time(NULL);
	e.has_client = 1;
	TAILQ_FOREACH(conn, &c->conns, entry)
		if (conn->ready && e.ndelegated < DMSG_ENTRY_MAX_DELEGATED)
			memcpy(e.delegated[e.ndelegated++], conn->pk, SW_PK_LEN);
	if ((json = dmsg_entry_to_json(&e, c->kp)) == NULL ||
	    (body = cJSON_PrintUnformatted(json)) == NULL)
		goto fail;
	snprintf(url, sizeof(url), "%s" DD_PATH_ENTRY, c->discovery);
	c->inflight_gen = c->gen;
	if (sw_http_request(c->http, "POST", url, body, strlen(body), &o, entry_posted, c) == -1)
		goto fail;
	c->posting = 1;
	sw_log_debug(c->svc, "posting dmsg entry", "seq=%llu servers=%zu", e.sequence,
	    e.ndelegated);
	cJSON_Delete(json);
	free(body);
	return;
fail:
	cJSON_Delete(json);
	free(body);
	post_later(c, POST_RETRY_MS);
}

void
dmsgc_post_entry(struct dmsg_client *c)
{
	if (!c->started || c->freeing || c->draining)
		return;
	if (c->posting) {
		c->post_again = 1;
		return;
	}
	post_entry_now(c);
}

void
dmsgc_post_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dmsgc_post_entry(arg);
}

void
dmsgc_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmsg_client *c = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (c->posted || dmsg_client_nsessions(c) > 0)
		dmsgc_post_entry(c);
	dmsgc_maintain(c);
	sw_ms_to_tv(c->o.refresh_ms, &tv);
	evtimer_add(c->refresh_timer, &tv);
}
