/*
 * json: strict parse and range-checked integers.  See json.h.
 *
 * Duplicate keys are found per object: pairwise for small objects (most
 * request bodies), with a dict past a few dozen members so a 64 KiB object
 * of distinct keys is not quadratic.
 */
#include <math.h>
#include <string.h>

#include "dict.h"
#include "json.h"

#define PAIRWISE_MAX 32

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 1 if some object under v holds a key twice (or out of memory), else 0. */
static int
has_dup_keys(const cJSON *v)
{
	size_t n = 0;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	for (const cJSON *c = v->child; c != NULL; c = c->next) {
		if (has_dup_keys(c))
			return 1;
		n++;
	}
	if (!cJSON_IsObject(v) || n < 2)
		return 0;
	if (n <= PAIRWISE_MAX) {
		for (const cJSON *a = v->child; a != NULL; a = a->next)
			for (const cJSON *b = a->next; b != NULL; b = b->next)
				if (strcmp(a->string, b->string) == 0)
					return 1;
		return 0;
	}
	{
		struct sw_dict *d = sw_dict_new(NULL);
		int dup = d == NULL;

		for (const cJSON *a = v->child; a != NULL && !dup; a = a->next) {
			int rc = sw_dict_add(d, a->string, strlen(a->string), (void *)(size_t)1);

			dup = rc != 1;
		}
		sw_dict_free(d);
		return dup;
	}
}

cJSON *
sw_json_parse(const void *buf, size_t len, const char **why)
{
	const char *p = buf, *end = NULL;
	cJSON *v;

	if (why != NULL)
		*why = "malformed JSON";
	if (p == NULL)
		return NULL;
	if ((v = cJSON_ParseWithLengthOpts(p, len, &end, 0)) == NULL)
		return NULL;
	while (end != NULL && (size_t)(end - p) < len && is_ws(*end))
		end++;
	if (end == NULL || (size_t)(end - p) < len) {
		if (why != NULL)
			*why = "malformed JSON: data after the value";
		cJSON_Delete(v);
		return NULL;
	}
	if (has_dup_keys(v)) {
		if (why != NULL)
			*why = "malformed JSON: duplicate key";
		cJSON_Delete(v);
		return NULL;
	}
	return v;
}

int
sw_json_int(const cJSON *v, long long min, long long max, long long *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (min < -SW_JSON_INT_LIMIT)
		min = -SW_JSON_INT_LIMIT;
	if (max > SW_JSON_INT_LIMIT)
		max = SW_JSON_INT_LIMIT;
	/* Compared as doubles first: both bounds are exact below 2^53. */
	if (!isfinite(d) || d < (double)min || d > (double)max || d != floor(d))
		return -1;
	*out = (long long)d;
	return 0;
}
