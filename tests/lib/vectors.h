/*
 * vectors: the JSON test-vector files in tests/vectors/, for the tests that
 * check a module against an independent implementation.
 *
 * A file is read from the directory $SW_VECTORS when that is set, else from
 * tests/vectors/ relative to the repo root (the runner's working directory).
 *
 * sw_test_load_vectors fails as testutil's functions do (NULL, with a line on
 * stderr saying why).  The other helpers read a loaded document inside a
 * cmocka test and fail the test (cmocka assertions) on a malformed vector.
 */
#ifndef SW_TEST_VECTORS_H
#define SW_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* The parsed vectors file "file" (e.g. "crypto.json"), or NULL; cJSON_Delete it. */
struct cJSON *sw_test_load_vectors(const char *file);

/* o's string member name; asserts it is a string. */
const char *sw_test_str(const struct cJSON *o, const char *name);
/* doc's array member name; asserts it is a non-empty array. */
const struct cJSON *sw_test_list(const struct cJSON *doc, const char *name);
/* An even-length hex string (either case) into a fresh buffer (*len may be 0); free it. */
uint8_t *sw_test_unhex(const char *hex, size_t *len);

#endif
