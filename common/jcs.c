/*
 * jcs: canonical JSON for signed objects, and signing/verifying them.
 *
 * The one idea: the canonical form is rebuilt from the parsed tree, never
 * taken from the sender's bytes, and anything whose canonical form could be
 * ambiguous is refused rather than guessed at: floats, negatives, integers at
 * or past 2^53 (cJSON holds numbers as doubles, so those may already have
 * lost precision), duplicate keys (which one would the signer have meant?)
 * and strings that are not valid UTF-8.
 *
 * The output is byte-for-byte Python's json.dumps(o, sort_keys=True,
 * separators=(",",":"), ensure_ascii=False): members sorted bytewise on the
 * UTF-8 key (the same as code point order), only '"', '\\' and control
 * characters escaped.  It is built into one growing buffer, and each object's
 * members are sorted once with qsort, so the cost is O(n log n) in the size.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jcs.h"
#include "json.h"

/* Deeper than any signed object; bounds the recursion on a built tree. */
#define JCS_MAX_DEPTH 64
/* 2^53: the first integer a double cannot tell from its neighbour. */
#define JCS_INT_LIMIT 9007199254740992.0

struct jbuf {
	char *p;
	size_t len;
	size_t cap;
};

static int
jbuf_reserve(struct jbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (more <= b->cap - b->len)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int
jbuf_put(struct jbuf *b, const void *s, size_t n)
{
	if (jbuf_reserve(b, n) == -1)
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

static int
jbuf_putc(struct jbuf *b, char c)
{
	return jbuf_put(b, &c, 1);
}

/*
 * A quoted string.  The continuation-byte checks in sw_utf8_seq stop at the
 * terminating NUL (its top bits are not 10, as a continuation byte's are), so
 * they never read past the end.
 */
static int
put_string(struct jbuf *b, const char *str)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	const unsigned char *run;
	char esc[6];
	size_t n;

	if (str == NULL || jbuf_putc(b, '"') == -1)
		return -1;
	run = s;
	while (*s != '\0') {
		if (*s >= 0x20 && *s != '"' && *s != '\\') {
			if ((n = *s < 0x80 ? 1 : sw_utf8_seq(s)) == 0)
				return -1;
			s += n;
			continue;
		}
		/* Flush the plain run before this byte, then escape it. */
		if (jbuf_put(b, run, (size_t)(s - run)) == -1)
			return -1;
		esc[0] = '\\';
		n = 2;
		switch (*s) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\t': esc[1] = 't'; break;
		case '\n': esc[1] = 'n'; break;
		case '\f': esc[1] = 'f'; break;
		case '\r': esc[1] = 'r'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = digits[*s >> 4];
			esc[5] = digits[*s & 0x0f];
			n = 6;
		}
		if (jbuf_put(b, esc, n) == -1)
			return -1;
		run = ++s;
	}
	if (jbuf_put(b, run, (size_t)(s - run)) == -1)
		return -1;
	return jbuf_putc(b, '"');
}

static int
put_number(struct jbuf *b, double d)
{
	char num[24];
	int n;

	/* signbit also refuses -0, which a signer could not have meant as 0. */
	if (!isfinite(d) || signbit(d) || d >= JCS_INT_LIMIT || d != floor(d))
		return -1;
	n = snprintf(num, sizeof(num), "%llu", (unsigned long long)d);
	if (n < 0 || (size_t)n >= sizeof(num))
		return -1;
	return jbuf_put(b, num, (size_t)n);
}

static int
member_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a;
	const cJSON *y = *(const cJSON *const *)b;

	/* strcmp compares as unsigned char: bytewise UTF-8 order. */
	return strcmp(x->string, y->string);
}

static int put_value(struct jbuf *b, const cJSON *v, const char *skip, int depth);

static int
put_object(struct jbuf *b, const cJSON *v, const char *skip, int depth)
{
	const cJSON **m = NULL;
	const cJSON *c;
	size_t n = 0, i;
	int first = 1, ret = -1;

	for (c = v->child; c != NULL; c = c->next) {
		if (c->string == NULL)
			return -1;
		n++;
	}
	if (n > 0 && (m = malloc(n * sizeof(*m))) == NULL)
		return -1;
	for (i = 0, c = v->child; c != NULL; c = c->next)
		m[i++] = c;
	if (n > 1)
		qsort(m, n, sizeof(*m), member_cmp);
	if (jbuf_putc(b, '{') == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		/* Sorted, so a duplicate is next to its twin; the skipped name counts too. */
		if (i > 0 && strcmp(m[i - 1]->string, m[i]->string) == 0)
			goto fail;
		if (skip != NULL && strcmp(m[i]->string, skip) == 0)
			continue;
		if (!first && jbuf_putc(b, ',') == -1)
			goto fail;
		first = 0;
		if (put_string(b, m[i]->string) == -1 || jbuf_putc(b, ':') == -1 ||
		    put_value(b, m[i], NULL, depth + 1) == -1)
			goto fail;
	}
	if (jbuf_putc(b, '}') == -1)
		goto fail;
	ret = 0;
fail:
	free(m);
	return ret;
}

static int
put_array(struct jbuf *b, const cJSON *v, int depth)
{
	const cJSON *c;

	if (jbuf_putc(b, '[') == -1)
		return -1;
	for (c = v->child; c != NULL; c = c->next) {
		if (c != v->child && jbuf_putc(b, ',') == -1)
			return -1;
		if (put_value(b, c, NULL, depth + 1) == -1)
			return -1;
	}
	return jbuf_putc(b, ']');
}

static int
put_value(struct jbuf *b, const cJSON *v, const char *skip, int depth)
{
	if (depth > JCS_MAX_DEPTH)
		return -1;
	switch (v->type & 0xff) {
	case cJSON_NULL:
		return jbuf_put(b, "null", 4);
	case cJSON_True:
		return jbuf_put(b, "true", 4);
	case cJSON_False:
		return jbuf_put(b, "false", 5);
	case cJSON_Number:
		return put_number(b, v->valuedouble);
	case cJSON_String:
		return put_string(b, v->valuestring);
	case cJSON_Array:
		return put_array(b, v, depth);
	case cJSON_Object:
		return put_object(b, v, skip, depth);
	default: /* cJSON_Raw, cJSON_Invalid: not data a signer could have seen */
		return -1;
	}
}

char *
sw_jcs_encode(const cJSON *v, const char *skip, size_t *len)
{
	struct jbuf b = {NULL, 0, 0};

	if (v == NULL || put_value(&b, v, skip, 0) == -1 || jbuf_putc(&b, '\0') == -1) {
		free(b.p);
		return NULL;
	}
	if (len != NULL)
		*len = b.len - 1;
	return b.p;
}

int
sw_signed_verify(const cJSON *obj, const uint8_t pk[SW_PK_LEN])
{
	const cJSON *s;
	uint8_t sig[SW_SIG_LEN];
	char *msg;
	size_t len;
	int ret;

	if (!cJSON_IsObject(obj))
		return -1;
	s = cJSON_GetObjectItemCaseSensitive(obj, "signature");
	if (!cJSON_IsString(s) || sw_hex_decode(sig, sizeof(sig), s->valuestring) == -1)
		return -1;
	/* Also refuses a second "signature": the canonical form has no duplicates. */
	if ((msg = sw_jcs_encode(obj, "signature", &len)) == NULL)
		return -1;
	ret = sw_verify(sig, (const uint8_t *)msg, len, pk);
	free(msg);
	return ret;
}

int
sw_signed_sign(cJSON *obj, const struct sw_keypair *kp)
{
	uint8_t sig[SW_SIG_LEN];
	char hex[SW_SIG_HEX];
	cJSON *s = NULL;
	char *msg;
	size_t len;

	if (!cJSON_IsObject(obj))
		return -1;
	/* Encode first: a refused object is left exactly as it was. */
	if ((msg = sw_jcs_encode(obj, "signature", &len)) == NULL)
		return -1;
	sw_sign(sig, (const uint8_t *)msg, len, kp);
	free(msg);
	sw_hex_encode(hex, sig, sizeof(sig));
	if ((s = cJSON_CreateString(hex)) == NULL)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(obj, "signature") != NULL) {
		if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, "signature", s))
			goto fail;
	} else if (!cJSON_AddItemToObject(obj, "signature", s))
		goto fail;
	return 0;
fail:
	cJSON_Delete(s);
	return -1;
}
