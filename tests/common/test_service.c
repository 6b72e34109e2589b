/*
 * The supervisor with fake services: start order follows dependencies and
 * waits for health, a failing start stops what already runs, SIGTERM stops
 * in reverse order and run() returns 0, plans with cycles or unknown
 * dependencies are refused before anything starts.
 */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "log.h"
#include "service.h"

struct fake {
	struct sw_svc *svc;
	char name[16];
	int fail_start;
	int unhealthy_ticks; /* health says no this many times after start */
	int never_healthy;
	int terminate_when_healthy;
	int started;
	int healthy;
};

static char events[64][24];
static int nevents;
static struct fake *fakes[8];
static int nfakes;

static void
record(const char *what, const char *name)
{
	snprintf(events[nevents++], sizeof(events[0]), "%s %s", what, name);
}

static void *
fake_create(struct sw_svc *svc, const cJSON *cfg)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->svc = svc;
	snprintf(f->name, sizeof(f->name), "%s", sw_svc_name(svc));
	f->fail_start = sw_cfg_bool(cfg, "fail_start", 0);
	f->unhealthy_ticks = (int)sw_cfg_int(cfg, "unhealthy_ticks", 0);
	f->never_healthy = sw_cfg_bool(cfg, "never_healthy", 0);
	f->terminate_when_healthy = sw_cfg_bool(cfg, "terminate", 0);
	fakes[nfakes++] = f;
	return f;
}

static int
fake_start(void *priv)
{
	struct fake *f = priv;

	/* Every dependency must already report healthy. */
	for (int i = 0; i < nfakes; i++)
		if (fakes[i] != f && fakes[i]->started && !fakes[i]->healthy &&
		    strcmp(f->name, "a") != 0)
			fail_msg("%s started while %s was not healthy", f->name, fakes[i]->name);
	record("start", f->name);
	f->started = 1;
	return f->fail_start ? -1 : 0;
}

static void
terminate_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	raise(SIGTERM);
}

static int
fake_health(void *priv, cJSON *checks)
{
	struct fake *f = priv;

	(void)checks;
	if (f->never_healthy)
		return 0;
	if (f->unhealthy_ticks > 0) {
		f->unhealthy_ticks--;
		return 0;
	}
	if (!f->healthy && f->terminate_when_healthy)
		event_base_once(sw_svc_base(f->svc), -1, EV_TIMEOUT, terminate_now, NULL, NULL);
	f->healthy = 1;
	return 1;
}

static void
fake_stop(void *priv, sw_svc_stopped *done)
{
	struct fake *f = priv;

	record("stop", f->name);
	done(f->svc);
}

static void
fake_destroy(void *priv)
{
	free(priv);
}

static const struct sw_cfg_key fake_keys[] = {
	{"fail_start", SW_CFG_BOOL, NULL, ""},
	{"unhealthy_ticks", SW_CFG_INT, NULL, ""},
	{"never_healthy", SW_CFG_BOOL, NULL, ""},
	{"terminate", SW_CFG_BOOL, NULL, ""},
	{NULL, 0, NULL, NULL},
};

static const struct sw_service_ops fake_ops = {
	.type = "fake",
	.summary = "a fake",
	.keys = fake_keys,
	.create = fake_create,
	.start = fake_start,
	.stop = fake_stop,
	.health = fake_health,
	.destroy = fake_destroy,
};

static int
setup(void **state)
{
	(void)state;
	nevents = 0;
	nfakes = 0;
	sw_log_set_level(SW_LOG_ERROR);
	return 0;
}

/* Add instance name with JSON cfg text. */
static struct sw_svc *
add(struct sw_supervisor *sup, const char *name, const char *json)
{
	cJSON *cfg = cJSON_Parse(json);

	assert_non_null(cfg);
	return sw_supervisor_add(sup, &fake_ops, name, cfg, NULL);
}

static void
test_order_health_and_sigterm(void **state)
{
	struct event_base *base = event_base_new();
	struct sw_supervisor_opts o = {.start_timeout_s = 5, .stop_timeout_s = 5};
	struct sw_supervisor *sup = sw_supervisor_new(base, &o);
	char err[256];

	(void)state;
	/* Added in the wrong order on purpose: c needs b needs a. */
	assert_non_null(add(sup, "c", "{\"depends_on\":[\"b\"],\"terminate\":true}"));
	assert_non_null(add(sup, "b", "{\"depends_on\":[\"a\"],\"unhealthy_ticks\":3}"));
	assert_non_null(add(sup, "a", "{\"unhealthy_ticks\":5}"));
	assert_int_equal(sw_supervisor_plan(sup, err, sizeof(err)), 0);
	assert_int_equal(sw_supervisor_run(sup), 0);
	assert_int_equal(nevents, 6);
	assert_string_equal(events[0], "start a");
	assert_string_equal(events[1], "start b");
	assert_string_equal(events[2], "start c");
	assert_string_equal(events[3], "stop c");
	assert_string_equal(events[4], "stop b");
	assert_string_equal(events[5], "stop a");
	sw_supervisor_free(sup);
	event_base_free(base);
}

static void
test_failing_start(void **state)
{
	struct event_base *base = event_base_new();
	struct sw_supervisor_opts o = {.start_timeout_s = 5, .stop_timeout_s = 5};
	struct sw_supervisor *sup = sw_supervisor_new(base, &o);

	(void)state;
	assert_non_null(add(sup, "a", "{}"));
	assert_non_null(add(sup, "b", "{\"depends_on\":[\"a\"],\"fail_start\":true}"));
	assert_non_null(add(sup, "c", "{\"depends_on\":[\"b\"]}"));
	assert_int_equal(sw_supervisor_run(sup), 1);
	/* c never starts; a (running) and b (failed) are stopped, b first. */
	assert_int_equal(nevents, 4);
	assert_string_equal(events[0], "start a");
	assert_string_equal(events[1], "start b");
	assert_string_equal(events[2], "stop b");
	assert_string_equal(events[3], "stop a");
	sw_supervisor_free(sup);
	event_base_free(base);
}

static void
test_dependency_never_ready(void **state)
{
	struct event_base *base = event_base_new();
	struct sw_supervisor_opts o = {.start_timeout_s = 1, .stop_timeout_s = 5};
	struct sw_supervisor *sup = sw_supervisor_new(base, &o);

	(void)state;
	assert_non_null(add(sup, "a", "{\"never_healthy\":true}"));
	assert_non_null(add(sup, "b", "{\"depends_on\":[\"a\"]}"));
	assert_int_equal(sw_supervisor_run(sup), 1);
	assert_int_equal(nevents, 2);
	assert_string_equal(events[0], "start a");
	assert_string_equal(events[1], "stop a");
	sw_supervisor_free(sup);
	event_base_free(base);
}

static void
test_bad_plans(void **state)
{
	struct event_base *base = event_base_new();
	struct sw_supervisor *sup = sw_supervisor_new(base, NULL);
	char err[256];

	(void)state;
	assert_non_null(add(sup, "a", "{\"depends_on\":[\"b\"]}"));
	assert_non_null(add(sup, "b", "{\"depends_on\":[\"a\"]}"));
	assert_int_equal(sw_supervisor_plan(sup, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cycle"));
	assert_null(add(sup, "a", "{}")); /* duplicate name */
	sw_supervisor_free(sup);

	sup = sw_supervisor_new(base, NULL);
	assert_non_null(add(sup, "a", "{\"depends_on\":[\"ghost\"]}"));
	assert_int_equal(sw_supervisor_plan(sup, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ghost"));
	assert_int_equal(sw_supervisor_run(sup), 1);
	assert_int_equal(nevents, 0); /* nothing started */
	sw_supervisor_free(sup);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_order_health_and_sigterm, setup),
		cmocka_unit_test_setup(test_failing_start, setup),
		cmocka_unit_test_setup(test_dependency_never_ready, setup),
		cmocka_unit_test_setup(test_bad_plans, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
