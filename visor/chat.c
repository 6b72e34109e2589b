/*
 * chat.c: route port 1 (visor.md): POST /api/chat {"pk","message"} sends
 * one DATA message over a route group to (pk, 1); GET /api/chat lists the
 * messages sent and received, oldest first.
 *
 * The one idea: one group per peer, reused, and messages for a peer queued
 * in order while its group is being dialled, so what one client posts in
 * order arrives in order.  A group the peer dialled to us serves our
 * messages to it as well.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "rgroup.h"
#include "visor.h"

#define CHAT_LOG_MAX   1000
#define CHAT_QUEUE_MAX 1000

struct chat_msg {
	struct chat_msg *next;
	struct sw_http_req *req;
	size_t len;
	char text[];
};

struct chat_peer {
	struct chat_peer *next;
	struct vchat *c;
	uint8_t pk[SW_PK_LEN];
	struct vrg *g;
	int dialling;
	struct chat_msg *q, **qtail;
	size_t nq;
};

struct vchat {
	struct visor *v;
	struct chat_peer *peers;
	cJSON *log;
};

static struct chat_peer *
peer_get(struct vchat *c, const uint8_t pk[SW_PK_LEN])
{
	struct chat_peer *p;

	for (p = c->peers; p != NULL; p = p->next)
		if (memcmp(p->pk, pk, SW_PK_LEN) == 0)
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->c = c;
	memcpy(p->pk, pk, SW_PK_LEN);
	p->qtail = &p->q;
	p->next = c->peers;
	c->peers = p;
	return p;
}

static void
log_add(struct vchat *c, const char *dir, const uint8_t pk[SW_PK_LEN], const char *text,
    size_t len)
{
	cJSON *o = cJSON_CreateObject();
	char hex[SW_PK_HEX], *s = malloc(len + 1);

	if (o == NULL || s == NULL) {
		cJSON_Delete(o);
		free(s);
		return;
	}
	memcpy(s, text, len);
	s[len] = '\0';
	sw_hex_encode(hex, pk, SW_PK_LEN);
	cJSON_AddStringToObject(o, "direction", dir);
	cJSON_AddStringToObject(o, "pk", hex);
	cJSON_AddStringToObject(o, "message", s);
	cJSON_AddNumberToObject(o, "time", (double)time(NULL));
	free(s);
	if (cJSON_GetArraySize(c->log) >= CHAT_LOG_MAX)
		cJSON_DeleteItemFromArray(c->log, 0);
	cJSON_AddItemToArray(c->log, o);
}

/* Send what is queued (group up), or fail all of it (err). */
static void
flush(struct chat_peer *p, const char *err)
{
	int status = 502;

	while (p->q != NULL) {
		struct chat_msg *m = p->q;

		p->q = m->next;
		p->nq--;
		/* the ones behind a refused message are refused too: order is kept */
		if (err == NULL && vrg_room(p->g, m->len) == 0) {
			err = "route busy (its first hop's send queue is full): send again";
			status = 503;
		} else if (err == NULL && vrg_send(p->g, m->text, m->len) == -1) {
			err = "route lost";
		}
		if (err != NULL) {
			sw_http_error(m->req, status, err);
		} else {
			cJSON *o = cJSON_CreateObject();

			log_add(p->c, "sent", p->pk, m->text, m->len);
			cJSON_AddBoolToObject(o, "sent", 1);
			sw_http_reply_json(m->req, 200, o);
			cJSON_Delete(o);
		}
		free(m);
	}
	p->qtail = &p->q;
}

static void
chat_message(struct vrg *g, const uint8_t *data, size_t len, void *arg)
{
	struct chat_peer *p = arg;

	(void)g;
	log_add(p->c, "received", p->pk, (const char *)data, len);
}

static void
chat_closed(struct vrg *g, const char *why, void *arg)
{
	struct chat_peer *p = arg;

	(void)why;
	if (p->g == g)
		p->g = NULL;
}

static const struct vrg_cbs chat_cbs = {.message = chat_message, .closed = chat_closed};

static void
dialled(struct vrg *g, const char *err, void *arg)
{
	struct chat_peer *p = arg;

	p->dialling = 0;
	if (g == NULL) {
		flush(p, err);
		return;
	}
	/* The peer may have dialled us meanwhile: that group still delivers, ours sends. */
	p->g = g;
	vrg_set_cbs(g, &chat_cbs, p);
	flush(p, NULL);
}

static void
accepted(struct vrg *g, void *arg)
{
	struct vchat *c = arg;
	struct chat_peer *p = peer_get(c, vrg_remote_pk(g));

	if (p == NULL) {
		vrg_close(g);
		return;
	}
	vrg_set_cbs(g, &chat_cbs, p);
	if (p->g == NULL && !p->dialling)
		p->g = g;
}

static void
api_send(struct sw_http_req *req, void *arg)
{
	struct vchat *c = arg;
	size_t len;
	const unsigned char *body = sw_http_req_body(req, &len);
	cJSON *o = cJSON_ParseWithLength((const char *)body, len);
	const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "pk");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
	uint8_t rpk[SW_PK_LEN];
	struct chat_peer *p;
	struct chat_msg *m;
	size_t n;

	if (!cJSON_IsObject(o) || !cJSON_IsString(pk) || !cJSON_IsString(msg) ||
	    sw_pk_parse(rpk, pk->valuestring) == -1) {
		sw_http_error(req, 400, "body must be {\"pk\":\"<hex>\",\"message\":\"…\"}");
		goto out;
	}
	n = strlen(msg->valuestring);
	if (n == 0 || n > VRG_MAX_MSG || memcmp(rpk, c->v->kp.pk, SW_PK_LEN) == 0) {
		sw_http_error(req, 422, "message must be 1..65498 bytes, to another visor");
		goto out;
	}
	if ((p = peer_get(c, rpk)) == NULL || p->nq >= CHAT_QUEUE_MAX ||
	    (m = malloc(sizeof(*m) + n)) == NULL) {
		sw_http_error(req, 503, "too many messages waiting");
		goto out;
	}
	m->next = NULL;
	m->req = req;
	m->len = n;
	memcpy(m->text, msg->valuestring, n);
	*p->qtail = m;
	p->qtail = &m->next;
	p->nq++;
	if (p->g != NULL)
		flush(p, NULL);
	else if (!p->dialling) {
		p->dialling = 1;
		if (vrg_dial(c->v->rg, rpk, VRG_PORT_CHAT, 1, dialled, p) == -1) {
			p->dialling = 0;
			flush(p, "cannot dial now");
		}
	}
out:
	cJSON_Delete(o);
}

static void
api_list(struct sw_http_req *req, void *arg)
{
	struct vchat *c = arg;

	sw_http_reply_json(req, 200, c->log);
}

int
vchat_start(struct visor *v)
{
	struct vchat *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->log = cJSON_CreateArray()) == NULL) {
		free(c);
		return -1;
	}
	c->v = v;
	v->chat = c;
	return vrg_listen(v->rg, VRG_PORT_CHAT, accepted, c);
}

int
vchat_api(struct visor *v)
{
	if (v->chat == NULL)
		return -1;
	if (sw_http_route(v->api, "POST", "/api/chat", api_send, v->chat) == -1 ||
	    sw_http_route(v->api, "GET", "/api/chat", api_list, v->chat) == -1)
		return -1;
	return 0;
}

void
vchat_free(struct visor *v)
{
	struct vchat *c = v->chat;

	if (c == NULL)
		return;
	while (c->peers != NULL) {
		struct chat_peer *p = c->peers;

		c->peers = p->next;
		flush(p, "visor stopping");
		free(p);
	}
	cJSON_Delete(c->log);
	free(c);
	v->chat = NULL;
}
