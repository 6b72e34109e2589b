/*
 * json: the one way JSON from the network is read.
 *
 * cJSON alone is lenient where independent clients are strict: it stops at
 * the end of the first value (so "{…}xyz" parses), keeps the first of two
 * members with the same name (Python and Go keep the last, so the two sides
 * would disagree about what was signed or stored), and leaves numbers as
 * doubles that callers cast to integers (undefined behaviour past the
 * target's range: {"port":1e300}).  sw_json_parse refuses trailing bytes and
 * duplicate keys; sw_json_int is the one range-checked conversion of a JSON
 * number to an integer.
 */
#ifndef SW_JSON_H
#define SW_JSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Integers in JSON stay below 2^53 (crypto.md), where doubles are exact. */
#define SW_JSON_INT_LIMIT 9007199254740991LL

/*
 * One JSON value in buf[0..len), nothing after it but whitespace, no object
 * holding a key twice.  NULL otherwise; *why (if why is not NULL) then says
 * which, in words fit for an {"error":…} answer.
 */
cJSON *sw_json_parse(const void *buf, size_t len, const char **why);
/*
 * v is a JSON number that is an integer within [min, max] (and within
 * ±SW_JSON_INT_LIMIT): 0 and *out set.  -1 for anything else (not a number,
 * a fraction, out of range, 1e300), never a cast of an out-of-range double.
 */
int sw_json_int(const cJSON *v, long long min, long long max, long long *out);

/*
 * Length of the well-formed UTF-8 sequence at s (1..4), or 0: strict RFC
 * 3629, so no overlong forms, no surrogates, nothing past U+10FFFF.  Reads
 * no further than a NUL (a continuation byte's top bits are 10, a NUL's not).
 */
size_t sw_utf8_seq(const unsigned char *s);

/*
 * v printed compactly, as text that stays one JSON value wherever it is put:
 * valid UTF-8 (RFC 8259 8.1; cJSON copies a string's bytes as they came) and
 * no "<", ">", "&", U+2028 or U+2029 (written \u003c... as Go's json.Marshal
 * does), so not even "</script>" or "<!--" can end an HTML or JS context it
 * is embedded in.  A malloc'd NUL-terminated string (length in *len, which
 * may be NULL), or NULL: *why (if not NULL) says "not valid UTF-8", or NULL
 * when memory ran out.
 */
char *sw_json_print_safe(const cJSON *v, size_t *len, const char **why);

#endif
