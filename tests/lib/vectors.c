/*
 * vectors: see vectors.h.  A vectors file is read whole, with its size
 * bounded first (VECTORS_MAX), so a wrong path such as a device or a huge
 * file fails with a message instead of an allocation sized by the file.
 */
#include "vectors.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "crypto.h"

#define VECTORS_DIR "tests/vectors"
#define VECTORS_MAX (4L << 20) /* far above any vectors file */

cJSON *
sw_test_load_vectors(const char *file)
{
	const char *dir = getenv("SW_VECTORS");
	char path[4096];
	struct stat st;
	cJSON *doc = NULL;
	char *text = NULL;
	size_t size;
	FILE *f;
	int n;

	if (dir == NULL || *dir == '\0')
		dir = VECTORS_DIR;
	n = snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "vectors: path too long: %s/%s\n", dir, file);
		return NULL;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr,
		    "vectors: cannot open %s: %s (run from the repo root, or set SW_VECTORS "
		    "to the directory holding %s)\n",
		    path, strerror(errno), file);
		return NULL;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "vectors: %s is not a regular file\n", path);
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size > VECTORS_MAX) {
		fprintf(stderr, "vectors: %s is %lld bytes, want 1 to %ld\n", path,
		    (long long)st.st_size, VECTORS_MAX);
		goto fail;
	}
	size = (size_t)st.st_size;
	if ((text = malloc(size + 1)) == NULL) {
		fprintf(stderr, "vectors: %s: out of memory\n", path);
		goto fail;
	}
	if (fread(text, 1, size, f) != size) {
		fprintf(stderr, "vectors: %s: short read\n", path);
		goto fail;
	}
	text[size] = '\0';
	if ((doc = cJSON_Parse(text)) == NULL)
		fprintf(stderr, "vectors: %s is not valid JSON\n", path);
fail:
	free(text);
	fclose(f);
	return doc;
}

const char *
sw_test_str(const cJSON *o, const char *name)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsString(s));
	return s->valuestring;
}

const cJSON *
sw_test_list(const cJSON *doc, const char *name)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, name);

	assert_true(cJSON_IsArray(a));
	assert_true(cJSON_GetArraySize(a) > 0);
	return a;
}

uint8_t *
sw_test_unhex(const char *hex, size_t *len)
{
	uint8_t *b;

	*len = strlen(hex) / 2;
	b = malloc(*len + 1);
	assert_non_null(b);
	assert_int_equal(sw_hex_decode(b, *len, hex), 0);
	return b;
}
