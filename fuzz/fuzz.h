/*
 * fuzz: what every libFuzzer target here shares.  Each fuzz_<name>.c feeds
 * bytes from the fuzzer to one parser of network input; the sanitizers
 * (address, undefined) and the target's own invariants turn a bug into a
 * crash the fuzzer reports.  FUZZ_ASSERT is such an invariant: unlike
 * assert it is never compiled out.
 */
#ifndef SW_FUZZ_H
#define SW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(c)                                                                      \
	do {                                                                                \
		if (!(c)) {                                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                            \
		}                                                                           \
	} while (0)

#endif
