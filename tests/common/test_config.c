/* config: types, unknown keys, env over file, defaults, flags names, bad files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static const struct sw_cfg_key keys[] = {
	{"listen", SW_CFG_STR, "127.0.0.1:9090", "addr"},
	{"entry_timeout_s", SW_CFG_INT, "180", "ttl"},
	{"verbose", SW_CFG_BOOL, "false", "b"},
	{"peers", SW_CFG_LIST, NULL, "list"},
	{"extra", SW_CFG_OBJ, NULL, "obj"},
	{NULL, 0, NULL, NULL},
};

static void
test_check(void **state)
{
	char err[256];
	static const char *const extra[] = {"type", NULL};
	static const struct {
		const char *json;
		int ok;
		const char *needle;
	} cases[] = {
		{"{\"listen\":\"x:1\",\"entry_timeout_s\":5,\"type\":\"t\"}", 1, NULL},
		{"{\"lisen\":\"x:1\"}", 0, "unknown key \"lisen\""},
		{"{\"listen\":5}", 0, "\"listen\" must be a string"},
		{"{\"entry_timeout_s\":-1}", 0, "non-negative integer"},
		{"{\"entry_timeout_s\":1.5}", 0, "non-negative integer"},
		{"{\"entry_timeout_s\":9007199254740992}", 0, "non-negative integer"},
		{"{\"verbose\":\"yes\"}", 0, "true or false"},
		{"{\"peers\":[\"a\",1]}", 0, "array of strings"},
		{"{\"peers\":[\"a\",\"b\"],\"extra\":{\"x\":[1]}}", 1, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *o = cJSON_Parse(cases[i].json);

		assert_non_null(o);
		err[0] = '\0';
		assert_int_equal(sw_cfg_check(o, keys, extra, "f.json", err, sizeof(err)),
		    cases[i].ok ? 0 : -1);
		if (cases[i].needle != NULL) {
			assert_non_null(strstr(err, cases[i].needle));
			assert_non_null(strstr(err, "f.json"));
		}
		cJSON_Delete(o);
	}
}

static void
test_env_flags_defaults(void **state)
{
	char err[256];
	cJSON *o = cJSON_Parse("{\"listen\":\"file:1\",\"entry_timeout_s\":10}");
	const cJSON *p;

	(void)state;
	setenv("SKYWIRE_ENTRY_TIMEOUT_S", "20", 1);
	setenv("SKYWIRE_PEERS", "a,b,,c", 1);
	assert_int_equal(sw_cfg_apply_env(o, keys, err, sizeof(err)), 0);
	assert_int_equal(sw_cfg_int(o, "entry_timeout_s", 0), 20);
	p = cJSON_GetObjectItem(o, "peers");
	assert_int_equal(cJSON_GetArraySize(p), 3);
	assert_string_equal(cJSON_GetArrayItem(p, 2)->valuestring, "c");
	/* A flag wins over env. */
	assert_int_equal(sw_cfg_set_text(o, sw_cfg_key_for_flag(keys, "--entry-timeout-s"), "30",
	    err, sizeof(err)), 0);
	assert_int_equal(sw_cfg_int(o, "entry_timeout_s", 0), 30);
	assert_null(sw_cfg_key_for_flag(keys, "--nope"));
	assert_int_equal(sw_cfg_apply_defaults(o, keys, err, sizeof(err)), 0);
	assert_string_equal(sw_cfg_str(o, "listen"), "file:1");
	assert_int_equal(sw_cfg_bool(o, "verbose", 1), 0);
	setenv("SKYWIRE_VERBOSE", "maybe", 1);
	assert_int_equal(sw_cfg_apply_env(o, keys, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "SKYWIRE_VERBOSE"));
	unsetenv("SKYWIRE_VERBOSE");
	setenv("SKYWIRE_ENTRY_TIMEOUT_S", "12x", 1);
	assert_int_equal(sw_cfg_apply_env(o, keys, err, sizeof(err)), -1);
	unsetenv("SKYWIRE_ENTRY_TIMEOUT_S");
	unsetenv("SKYWIRE_PEERS");
	cJSON_Delete(o);
}

static void
test_files(void **state)
{
	char err[256], path[] = "/tmp/swcfgXXXXXX";
	int fd = mkstemp(path);
	FILE *fp = fdopen(fd, "w");
	cJSON *o;

	(void)state;
	fputs("{\"listen\": \"a:1\",", fp);
	fclose(fp);
	assert_null(sw_cfg_load_file(path, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid JSON"));
	fp = fopen(path, "w");
	fputs("[1]", fp);
	fclose(fp);
	assert_null(sw_cfg_load_file(path, err, sizeof(err)));
	fp = fopen(path, "w");
	fputs("{\"listen\": \"a:1\"}", fp);
	fclose(fp);
	o = sw_cfg_load_file(path, err, sizeof(err));
	assert_non_null(o);
	assert_string_equal(sw_cfg_str(o, "listen"), "a:1");
	cJSON_Delete(o);
	unlink(path);
	assert_null(sw_cfg_load_file("/nonexistent/x.json", err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_env_flags_defaults),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
