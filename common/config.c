/*
 * config: key tables drive validation, defaults, env and flags.  See config.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define SW_CFG_MAX_FILE (1024 * 1024)
#define SW_JSON_INT_MAX 9007199254740991.0 /* 2^53 - 1 */

cJSON *
sw_cfg_load_file(const char *path, char *err, size_t errlen)
{
	FILE *fp = NULL;
	char *buf = NULL;
	size_t n;
	cJSON *obj = NULL;

	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	buf = malloc(SW_CFG_MAX_FILE + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	n = fread(buf, 1, SW_CFG_MAX_FILE + 1, fp);
	if (ferror(fp) || n > SW_CFG_MAX_FILE) {
		snprintf(err, errlen, "%s: unreadable or larger than 1 MiB", path);
		goto fail;
	}
	buf[n] = '\0';
	obj = cJSON_ParseWithLength(buf, n);
	if (obj == NULL) {
		const char *at = cJSON_GetErrorPtr();
		snprintf(err, errlen, "%s: invalid JSON near byte %ld", path,
		    at != NULL && at >= buf ? (long)(at - buf) : 0L);
		goto fail;
	}
	if (!cJSON_IsObject(obj)) {
		snprintf(err, errlen, "%s: top level is not a JSON object", path);
		cJSON_Delete(obj);
		obj = NULL;
		goto fail;
	}
fail:
	free(buf);
	if (fp != NULL)
		fclose(fp);
	return obj;
}

static int
is_int(const cJSON *v)
{
	double d;

	if (!cJSON_IsNumber(v))
		return 0;
	d = v->valuedouble;
	return d >= 0 && d <= SW_JSON_INT_MAX && d == (double)(long long)d;
}

static int
type_ok(const cJSON *v, enum sw_cfg_type t)
{
	const cJSON *e;

	switch (t) {
	case SW_CFG_STR:
		return cJSON_IsString(v);
	case SW_CFG_INT:
		return is_int(v);
	case SW_CFG_BOOL:
		return cJSON_IsBool(v);
	case SW_CFG_LIST:
		if (!cJSON_IsArray(v))
			return 0;
		cJSON_ArrayForEach(e, v)
			if (!cJSON_IsString(e))
				return 0;
		return 1;
	case SW_CFG_OBJ:
		return 1;
	}
	return 0;
}

static const char *
type_name(enum sw_cfg_type t)
{
	switch (t) {
	case SW_CFG_STR:
		return "a string";
	case SW_CFG_INT:
		return "a non-negative integer";
	case SW_CFG_BOOL:
		return "true or false";
	case SW_CFG_LIST:
		return "an array of strings";
	case SW_CFG_OBJ:
		return "JSON";
	}
	return "?";
}

static const struct sw_cfg_key *
find_key(const struct sw_cfg_key *keys, const char *name)
{
	for (; keys != NULL && keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

int
sw_cfg_check(const cJSON *obj, const struct sw_cfg_key *keys, const char *const *extra,
    const char *where, char *err, size_t errlen)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, obj)
	{
		const struct sw_cfg_key *k;
		int skip = 0;

		for (const char *const *e = extra; e != NULL && *e != NULL; e++)
			if (strcmp(*e, m->string) == 0)
				skip = 1;
		if (skip)
			continue;
		k = find_key(keys, m->string);
		if (k == NULL) {
			snprintf(err, errlen, "%s: unknown key \"%s\"", where, m->string);
			return -1;
		}
		if (!type_ok(m, k->type)) {
			snprintf(err, errlen, "%s: \"%s\" must be %s", where, m->string,
			    type_name(k->type));
			return -1;
		}
	}
	return 0;
}

static cJSON *
parse_text(const struct sw_cfg_key *key, const char *text, char *err, size_t errlen)
{
	cJSON *v = NULL;

	switch (key->type) {
	case SW_CFG_STR:
		return cJSON_CreateString(text);
	case SW_CFG_INT: {
		char *end;
		unsigned long long n;

		errno = 0;
		if (!isdigit((unsigned char)text[0]))
			goto bad;
		n = strtoull(text, &end, 10);
		if (errno != 0 || *end != '\0' || n > (unsigned long long)SW_JSON_INT_MAX)
			goto bad;
		return cJSON_CreateNumber((double)n);
	}
	case SW_CFG_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 ||
		    strcmp(text, "yes") == 0)
			return cJSON_CreateTrue();
		if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
		    strcmp(text, "no") == 0)
			return cJSON_CreateFalse();
		goto bad;
	case SW_CFG_LIST: {
		const char *p = text, *c;

		v = cJSON_CreateArray();
		if (v == NULL)
			goto bad;
		while (*p != '\0') {
			c = strchr(p, ',');
			size_t n = c != NULL ? (size_t)(c - p) : strlen(p);
			char *s = strndup(p, n);

			if (s == NULL)
				goto bad;
			if (n > 0)
				cJSON_AddItemToArray(v, cJSON_CreateString(s));
			free(s);
			p += n;
			if (*p == ',')
				p++;
		}
		return v;
	}
	case SW_CFG_OBJ:
		v = cJSON_Parse(text);
		if (v == NULL)
			goto bad;
		return v;
	}
bad:
	cJSON_Delete(v);
	snprintf(err, errlen, "%s: \"%s\" is not %s", key->name, text, type_name(key->type));
	return NULL;
}

int
sw_cfg_set_text(cJSON *obj, const struct sw_cfg_key *key, const char *text, char *err,
    size_t errlen)
{
	cJSON *v = parse_text(key, text, err, errlen);

	if (v == NULL)
		return -1;
	if (cJSON_HasObjectItem(obj, key->name))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key->name, v);
	else
		cJSON_AddItemToObject(obj, key->name, v);
	return 0;
}

void
sw_cfg_env_name(char *out, size_t size, const char *key)
{
	size_t o = 0;
	const char *pre = "SKYWIRE_";

	for (; *pre != '\0' && o + 1 < size; pre++)
		out[o++] = *pre;
	for (; *key != '\0' && o + 1 < size; key++)
		out[o++] = (*key == '-' || *key == '.') ? '_' : (char)toupper((unsigned char)*key);
	if (size > 0)
		out[o] = '\0';
}

int
sw_cfg_apply_env(cJSON *obj, const struct sw_cfg_key *keys, char *err, size_t errlen)
{
	char name[128];

	for (; keys != NULL && keys->name != NULL; keys++) {
		const char *v;

		sw_cfg_env_name(name, sizeof(name), keys->name);
		v = getenv(name);
		if (v == NULL)
			continue;
		if (sw_cfg_set_text(obj, keys, v, err, errlen) == -1) {
			size_t n = strlen(err);
			snprintf(err + n, errlen > n ? errlen - n : 0, " (from %s)", name);
			return -1;
		}
	}
	return 0;
}

int
sw_cfg_apply_defaults(cJSON *obj, const struct sw_cfg_key *keys, char *err, size_t errlen)
{
	for (; keys != NULL && keys->name != NULL; keys++) {
		if (keys->def == NULL || cJSON_HasObjectItem(obj, keys->name))
			continue;
		if (sw_cfg_set_text(obj, keys, keys->def, err, errlen) == -1)
			return -1;
	}
	return 0;
}

const struct sw_cfg_key *
sw_cfg_key_for_flag(const struct sw_cfg_key *keys, const char *flag)
{
	char name[128];
	size_t i;

	while (*flag == '-')
		flag++;
	for (i = 0; flag[i] != '\0' && i + 1 < sizeof(name); i++)
		name[i] = flag[i] == '-' ? '_' : flag[i];
	name[i] = '\0';
	return find_key(keys, name);
}

const char *
sw_cfg_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return NULL;
	return v->valuestring;
}

long long
sw_cfg_int(const cJSON *obj, const char *key, long long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!is_int(v))
		return def;
	return (long long)v->valuedouble;
}

int
sw_cfg_bool(const cJSON *obj, const char *key, int def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsBool(v))
		return def;
	return cJSON_IsTrue(v);
}

void
sw_cfg_usage(const struct sw_cfg_key *keys, void *fp)
{
	for (; keys != NULL && keys->name != NULL; keys++) {
		char flag[128], env[128];
		size_t i;

		for (i = 0; keys->name[i] != '\0' && i + 1 < sizeof(flag); i++)
			flag[i] = keys->name[i] == '_' ? '-' : keys->name[i];
		flag[i] = '\0';
		sw_cfg_env_name(env, sizeof(env), keys->name);
		fprintf(fp, "  --%-22s %s%s%s%s [%s]\n", flag, keys->help,
		    keys->def != NULL ? " (default " : "", keys->def != NULL ? keys->def : "",
		    keys->def != NULL ? ")" : "", env);
	}
}
