/* Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c): each defines
 * LLVMFuzzerTestOneInput. Built with clang -fsanitize=fuzzer by `make fuzz`,
 * and with gcc + driver.c by `make test`, which replays the committed corpora
 * (tests/fuzz/corpus/<name>/ and tests/fuzz/regress/<name>/). */
#ifndef LOOM_FUZZ_H
#define LOOM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private scratch directory for the process, created on first use
 * (under /dev/shm when it exists: the harnesses write one file per input). */
const char *fuzz_tmpdir(void);
/* Writes data to path; returns 0 on success. */
int fuzz_write(const char *path, const uint8_t *data, size_t size);

#endif
