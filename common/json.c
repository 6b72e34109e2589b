/*
 * json: strict parse and range-checked integers.  See json.h.
 *
 * Duplicate keys are found per object: pairwise for small objects (most
 * request bodies), with a dict past a few dozen members so a 64 KiB object
 * of distinct keys is not quadratic.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

size_t
sw_utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
		    (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/* U+2028 or U+2029 (line and paragraph separators: line ends to older JS) at s. */
static int
is_js_line_end(const unsigned char *s)
{
	return s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9);
}

/*
 * cJSON prints a number that is not an int with %1.15g and keeps it when
 * it reads back within a relative DBL_EPSILON, so 9004011111111111 comes
 * out as 9.00401111111111e+15.  The shortest %g that reads back exactly
 * into buf; 0 when cJSON's own text would already be exact.
 */
static int
num_fix(double d, char *buf, size_t size)
{
	if (!isfinite(d) || (d == floor(d) && d >= INT_MIN && d <= INT_MAX))
		return 0;
	for (int p = 15; p <= 17; p++) {
		snprintf(buf, size, "%1.*g", p, d);
		if (strtod(buf, NULL) == d)
			return p > 15;
	}
	return 1;
}

/* v or anything inside it (not its siblings). */
static int
nums_need_fix(const cJSON *v)
{
	char buf[32];

	if (cJSON_IsNumber(v))
		return num_fix(v->valuedouble, buf, sizeof(buf));
	for (const cJSON *c = v->child; c != NULL; c = c->next)
		if (nums_need_fix(c))
			return 1;
	return 0;
}

/* Each number cJSON would print inexactly becomes its exact text (raw). */
static int
nums_fix(cJSON *parent)
{
	char buf[32];

	for (cJSON *v = parent->child, *next; v != NULL; v = next) {
		next = v->next;
		if (cJSON_IsNumber(v) && num_fix(v->valuedouble, buf, sizeof(buf))) {
			cJSON *raw = cJSON_CreateRaw(buf);

			if (raw == NULL)
				return -1;
			/* an object member's key moves to the raw item (replacing by pointer keeps no name) */
			raw->string = v->string;
			raw->type |= v->type & cJSON_StringIsConst;
			v->string = NULL;
			if (!cJSON_ReplaceItemViaPointer(parent, v, raw)) {
				v->string = raw->string;
				raw->string = NULL;
				cJSON_Delete(raw);
				return -1;
			}
		} else if (v->child != NULL && nums_fix(v) == -1) {
			return -1;
		}
	}
	return 0;
}

/*
 * Outside its strings cJSON's output is ASCII with none of < > &, so every
 * such byte, and every byte past ASCII, is inside a string, where a \u
 * escape means the same character.
 */
char *
sw_json_print_safe(const cJSON *v, size_t *len, const char **why)
{
	static const char digits[] = "0123456789abcdef";
	char *text, *out, *o;
	const unsigned char *s;
	size_t extra = 0, n;

	if (why != NULL)
		*why = NULL;
	if (nums_need_fix(v)) {
		/* rare (integers past 10^15): a copy with those numbers exact */
		cJSON *wrap = cJSON_CreateArray(), *c = cJSON_Duplicate(v, 1);

		if (wrap == NULL || c == NULL) {
			cJSON_Delete(wrap);
			cJSON_Delete(c);
			return NULL;
		}
		cJSON_AddItemToArray(wrap, c);
		text = nums_fix(wrap) == 0 ? cJSON_PrintUnformatted(wrap->child) : NULL;
		cJSON_Delete(wrap);
	} else {
		text = cJSON_PrintUnformatted(v);
	}
	if (text == NULL)
		return NULL;
	for (s = (const unsigned char *)text; *s != '\0'; s += n) {
		if (*s == '<' || *s == '>' || *s == '&')
			extra += 5;
		if ((n = *s < 0x80 ? 1 : sw_utf8_seq(s)) == 0) {
			if (why != NULL)
				*why = "not valid UTF-8";
			cJSON_free(text);
			return NULL;
		}
		if (n == 3 && is_js_line_end(s))
			extra += 3;
	}
	n = (size_t)((const char *)s - text);
	if (extra == 0) {
		if (len != NULL)
			*len = n;
		return text;
	}
	if ((out = malloc(n + extra + 1)) == NULL) {
		cJSON_free(text);
		return NULL;
	}
	o = out;
	for (s = (const unsigned char *)text; *s != '\0'; s++) {
		unsigned cp;

		if (*s == '<' || *s == '>' || *s == '&')
			cp = *s;
		else if (is_js_line_end(s))
			cp = 0x2000u | 0x28u | (s[2] & 1u);
		else {
			*o++ = (char)*s;
			continue;
		}
		*o++ = '\\';
		*o++ = 'u';
		*o++ = digits[cp >> 12 & 0xf];
		*o++ = digits[cp >> 8 & 0xf];
		*o++ = digits[cp >> 4 & 0xf];
		*o++ = digits[cp & 0xf];
		if (cp > 0xff)
			s += 2;
	}
	*o = '\0';
	if (len != NULL)
		*len = (size_t)(o - out);
	cJSON_free(text);
	return out;
}
