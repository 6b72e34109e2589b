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

#endif
