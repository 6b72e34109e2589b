/* log: levels filter, text and JSON lines, quoting of untrusted values. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "log.h"

/* Run fn with stderr sent to a pipe; return what it wrote. */
static char *
capture(void (*fn)(void))
{
	static char buf[8192];
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	dup2(p[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
emit(void)
{
	char q[64];

	sw_log_debug("svc", "hidden", NULL);
	sw_log_info("svc", "entry stored", "pk=%s seq=%d peer=%s", "ab", 3,
	    sw_log_q(q, sizeof(q), "evil\nline \"x\""));
}

static void
test_text(void **state)
{
	char *out;

	(void)state;
	sw_log_set_format(SW_LOG_TEXT);
	sw_log_set_level(SW_LOG_INFO);
	out = capture(emit);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, " INFO svc entry stored pk=ab seq=3 peer=\"evil\\x0aline \\\"x\\\"\""));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
}

static void
test_json(void **state)
{
	char *out;
	cJSON *o;

	(void)state;
	sw_log_set_format(SW_LOG_JSON);
	sw_log_set_level(SW_LOG_INFO);
	out = capture(emit);
	o = cJSON_Parse(out);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "info");
	assert_string_equal(cJSON_GetObjectItem(o, "service")->valuestring, "svc");
	assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "entry stored");
	assert_string_equal(cJSON_GetObjectItem(o, "seq")->valuestring, "3");
	assert_string_equal(cJSON_GetObjectItem(o, "peer")->valuestring,
	    "evil\\x0aline \\\"x\\\"");
	cJSON_Delete(o);
	sw_log_set_format(SW_LOG_TEXT);
}

static void
test_parse(void **state)
{
	enum sw_log_level l;
	enum sw_log_format f;

	(void)state;
	assert_int_equal(sw_log_parse_level("warn", &l), 0);
	assert_int_equal(l, SW_LOG_WARN);
	assert_int_equal(sw_log_parse_level("loud", &l), -1);
	assert_int_equal(sw_log_parse_format("json", &f), 0);
	assert_int_equal(sw_log_parse_format("xml", &f), -1);
}

static void
emit_errno(void)
{
	errno = ENOENT;
	sw_log_warn_errno("svc", "open failed", "path=%s", "/x");
	errno = EAGAIN;
	sw_log_warn_errno("svc", "read failed", NULL);
}

/* The reason in words after the fields, never a bare errno number. */
static void
test_errno(void **state)
{
	char *out;

	(void)state;
	sw_log_set_format(SW_LOG_TEXT);
	sw_log_set_level(SW_LOG_INFO);
	out = capture(emit_errno);
	assert_non_null(strstr(out,
	    " WARN svc open failed path=/x err=\"No such file or directory\"\n"));
	assert_non_null(strstr(out,
	    " WARN svc read failed err=\"Resource temporarily unavailable\"\n"));
}

static void
emit_many(void)
{
	for (int i = 0; i < 100; i++)
		sw_log_limited(SW_LOG_WARN, "svc", "request failed", "n=%d", i);
}

/* An outage's 100 failures: one burst of lines, the rest counted, not written. */
static void
test_limited(void **state)
{
	char *out, *p;
	int lines = 0;

	(void)state;
	sw_log_set_format(SW_LOG_TEXT);
	sw_log_set_level(SW_LOG_INFO);
	out = capture(emit_many);
	for (p = out; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, SW_LOG_LIMIT_BURST);
	assert_non_null(strstr(out, "request failed n=0\n"));
	assert_null(strstr(out, "n=10\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
