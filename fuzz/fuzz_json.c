/*
 * fuzz_json: the strict parse, the range-checked integers, and canonical
 * JSON (RFC 8785 as jcs.c writes it) with the invariant that canonicalising
 * the canonical form again gives the same bytes, and the HTML-safe print
 * (tpviz's answers): strict JSON again, none of < > &, the same value.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "jcs.h"
#include "json.h"
#include "log.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	sw_log_set_level(SW_LOG_ERROR);
	return 0;
}

static void
walk(const cJSON *v)
{
	long long out;

	for (; v != NULL; v = v->next) {
		if (sw_json_int(v, -SW_JSON_INT_LIMIT, SW_JSON_INT_LIMIT, &out) == 0)
			FUZZ_ASSERT(out >= -SW_JSON_INT_LIMIT && out <= SW_JSON_INT_LIMIT);
		(void)sw_json_int(v, 1, 65535, &out);
		walk(v->child);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *v, *again;
	char *c1, *c2, *safe;
	size_t n1, n2, ns;
	const char *why;

	if ((v = sw_json_parse(data, size, NULL)) == NULL)
		return 0;
	walk(v);
	c1 = sw_jcs_encode(v, NULL, &n1);
	safe = sw_json_print_safe(v, &ns, &why);
	/* Only bad UTF-8 stops it, which the canonical form refuses too. */
	FUZZ_ASSERT(safe != NULL || why != NULL);
	FUZZ_ASSERT(c1 == NULL || safe != NULL);
	if (safe != NULL) {
		FUZZ_ASSERT(strlen(safe) == ns && strpbrk(safe, "<>&") == NULL);
		again = sw_json_parse(safe, ns, NULL);
		FUZZ_ASSERT(again != NULL);
		if (c1 != NULL) {
			c2 = sw_jcs_encode(again, NULL, &n2);
			FUZZ_ASSERT(c2 != NULL && n1 == n2 && memcmp(c1, c2, n1) == 0);
			free(c2);
		}
		cJSON_Delete(again);
		free(safe);
	}
	if (c1 != NULL) {
		/* The canonical form is itself strict JSON, and a fixed point. */
		again = sw_json_parse(c1, n1, NULL);
		FUZZ_ASSERT(again != NULL);
		c2 = sw_jcs_encode(again, NULL, &n2);
		FUZZ_ASSERT(c2 != NULL && n1 == n2 && memcmp(c1, c2, n1) == 0);
		free(c2);
		cJSON_Delete(again);
		free(c1);
	}
	cJSON_Delete(v);
	return 0;
}
