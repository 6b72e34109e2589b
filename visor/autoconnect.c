/*
 * autoconnect.c: when `autoconnect.enabled`, keep at least
 * `autoconnect.min_transports` transports up by opening dmsg transports
 * (label "automatic") to public visors: services of type "visor" other than
 * ourselves and peers we already have a transport with, in random order.
 * Checked every 10 s; after a round that fell short, again after a backoff
 * of 1 s doubling to 60 s.
 *
 * The list comes from query.c (the services-by-pk CXO feed, with HTTP
 * fallback), in one function, list_visors().  A query or open still in
 * flight when autoconnect is freed keeps the struct alive (dead) until its
 * callback has run.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "tp_int.h"
#include "visor.h"

#define AC_CHECK_MS      10000
#define AC_BACKOFF_MIN   1000
#define AC_BACKOFF_MAX   60000
#define AC_MAX_CANDIDATES 256

struct visor_ac {
	struct visor *v;
	struct event *timer;
	int min;
	struct sw_backoff backoff;
	int listing;
	int opening;      /* opens in flight */
	int dead;         /* freed while opens were in flight */
};


static void round_over(struct visor_ac *a);
static void candidates(struct visor_ac *a, uint8_t (*pks)[SW_PK_LEN], size_t n);

static void
listed(const struct visor_answer *ans, void *arg)
{
	struct visor_ac *a = arg;
	static uint8_t pks[AC_MAX_CANDIDATES][SW_PK_LEN];
	const cJSON *e;
	size_t n = 0;

	a->listing = 0;
	if (a->dead) {
		if (a->opening == 0)
			free(a);
		return;
	}
	if (ans->source == NULL || !cJSON_IsArray(ans->list)) {
		sw_log_warn(a->v->name, "autoconnect: cannot list public visors", "error=\"%s\"",
		    ans->error != NULL ? ans->error : "?");
		round_over(a);
		return;
	}
	cJSON_ArrayForEach(e, ans->list) {
		const cJSON *addr = cJSON_GetObjectItemCaseSensitive(e, "address");
		char hex[SW_PK_HEX];

		if (n == AC_MAX_CANDIDATES)
			break;
		if (!cJSON_IsString(addr) || strlen(addr->valuestring) < SW_PK_HEX ||
		    addr->valuestring[SW_PK_HEX - 1] != ':')
			continue;
		memcpy(hex, addr->valuestring, SW_PK_HEX - 1);
		hex[SW_PK_HEX - 1] = '\0';
		if (sw_pk_parse(pks[n], hex) == 0)
			n++;
	}
	candidates(a, pks, n);
}

/* The one place that knows where public visors come from: query.c (CXO, else HTTP). */
static void
list_visors(struct visor_ac *a)
{
	a->listing = 1;
	if (visor_query_services(a->v, "visor", listed, a) == -1) {
		a->listing = 0;
		round_over(a);
	}
}

static void
opened(struct vtp *t, int created, const char *err, void *arg)
{
	struct visor_ac *a = arg;

	(void)created;
	a->opening--;
	if (a->dead) {
		if (a->opening == 0 && !a->listing)
			free(a);
		return;
	}
	if (t == NULL)
		sw_log_info(a->v->name, "autoconnect: transport not opened", "reason=\"%s\"",
		    err != NULL ? err : "?");
	if (a->opening == 0)
		round_over(a);
}

static void
candidates(struct visor_ac *a, uint8_t (*pks)[SW_PK_LEN], size_t n)
{
	int want = a->min - (int)vtp_mgr_count(a->v->tps);

	/* Fisher–Yates: spread visors over the public ones. */
	for (size_t i = n; i > 1; i--) {
		size_t j = randombytes_uniform((uint32_t)i);
		uint8_t tmp[SW_PK_LEN];

		memcpy(tmp, pks[i - 1], SW_PK_LEN);
		memcpy(pks[i - 1], pks[j], SW_PK_LEN);
		memcpy(pks[j], tmp, SW_PK_LEN);
	}
	a->opening++; /* held over the loop: an open failing at once must not end the round */
	for (size_t i = 0; i < n && want > 0; i++) {
		if (memcmp(pks[i], a->v->kp.pk, SW_PK_LEN) == 0 ||
		    vtp_mgr_has_peer(a->v->tps, pks[i]))
			continue;
		a->opening++;
		if (vtp_open(a->v->tps, pks[i], VTP_DMSG, "automatic", opened, a) == -1) {
			a->opening--;
			continue;
		}
		want--;
	}
	if (--a->opening == 0)
		round_over(a);
}

static void
round_over(struct visor_ac *a)
{
	if ((int)vtp_mgr_count(a->v->tps) >= a->min) {
		sw_backoff_reset(&a->backoff);
		sw_timer_in(a->timer, AC_CHECK_MS);
		return;
	}
	sw_timer_in(a->timer, sw_backoff_next(&a->backoff));
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct visor_ac *a = arg;

	(void)fd;
	(void)what;
	if (a->listing || a->opening > 0)
		return; /* the round in progress re-arms the timer */
	if ((int)vtp_mgr_count(a->v->tps) >= a->min) {
		round_over(a);
		return;
	}
	list_visors(a);
}

struct visor_ac *
visor_ac_new(struct visor *v)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(v->cfg, "autoconnect");
	struct visor_ac *a;
	long long min;

	if (c != NULL && !cJSON_IsNull(c) && !cJSON_IsObject(c)) {
		sw_log_error(v->name, "autoconnect must be {\"enabled\":bool,\"min_transports\":N}",
		    NULL);
		return NULL;
	}
	min = sw_cfg_int(c, "min_transports", 0);
	if (min < 0 || min > 64) {
		sw_log_error(v->name, "autoconnect.min_transports must be 0..64", NULL);
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->v = v;
	a->min = sw_cfg_bool(c, "enabled", 0) ? (int)min : 0;
	sw_backoff_init(&a->backoff, AC_BACKOFF_MIN, AC_BACKOFF_MAX);
	if ((a->timer = evtimer_new(sw_svc_base(v->svc), tick, a)) == NULL) {
		visor_ac_free(a);
		return NULL;
	}
	return a;
}

int
visor_ac_start(struct visor_ac *a)
{
	if (a->min > 0) {
		sw_log_info(a->v->name, "autoconnect on", "min_transports=%d", a->min);
		sw_timer_in(a->timer, AC_BACKOFF_MIN);
	}
	return 0;
}

void
visor_ac_free(struct visor_ac *a)
{
	if (a == NULL)
		return;
	a->dead = 1;
	if (a->timer != NULL)
		event_free(a->timer);
	a->timer = NULL;
	/* A query or opens still in flight end in listed()/opened(), which free a. */
	if (a->opening == 0 && !a->listing)
		free(a);
}
