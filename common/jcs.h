/*
 * jcs: canonical JSON (RFC 8785 restricted to what signed objects hold:
 * strings, integers in [0, 2^53), booleans, null, arrays, objects) and signed
 * JSON objects, whose "signature" member signs the canonical form of the
 * object without that member (crypto.md).
 */
#ifndef SW_JCS_H
#define SW_JCS_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "crypto.h"

/*
 * Canonical bytes of v, skipping the top-level member named skip (may be
 * NULL).  Returns a malloc'd NUL-terminated string (length in *len, which may
 * be NULL), or NULL if v holds something canonical JSON here does not allow
 * (a float, an integer outside [0, 2^53) or negative, a duplicate key, even
 * of the skipped name, a string or key that is not valid UTF-8, a cJSON Raw
 * item, nesting deeper than 64) or memory runs out.
 *
 * cJSON keeps only a double, so an integral spelling such as 1.0 or 1e2 is
 * the integer 1 or 100 here; the canonical form is still unique.
 */
char *sw_jcs_encode(const cJSON *v, const char *skip, size_t *len);

/*
 * Verify obj's "signature" (128 hex chars, either case) by pk over the
 * canonical form of obj without it.  0 valid, -1 not (missing, malformed,
 * wrong, or obj not canonicalisable, e.g. two "signature" members).
 */
int sw_signed_verify(const cJSON *obj, const uint8_t pk[SW_PK_LEN]);
/* Replace obj's "signature" with a fresh one by kp. -1 if obj is not canonicalisable. */
int sw_signed_sign(cJSON *obj, const struct sw_keypair *kp);

#endif
