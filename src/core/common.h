/* Internal helpers shared by the library's source files. Not installed. */
#ifndef LOOM_COMMON_H
#define LOOM_COMMON_H

#include "loom.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fill err (when non-NULL) with a printf-style message and return st. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
loom_status loom_fail(loom_error *err, loom_status st, const char *fmt, ...);

/* Status for a failed open(): a path the user named that does not exist (or
 * is not the kind of file wanted) is bad input, anything else an I/O error. */
loom_status loom_open_status(int errnum);

/* a * b with overflow detection: returns false (and leaves *out alone) on overflow. */
static inline bool loom_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

/* BLAS set-up for programs: single-threaded BLAS inside our own batch
 * shards, process-wide (the CLI calls it once; the library never does). */
void loom_blas_init(void);
const char *loom_blas_core(void);
/* The OpenBLAS core this CPU should run when OpenBLAS's own pick is a generic
 * pre-AVX2 fallback on a CPU with AVX2 and FMA (Debian's 0.3.21 takes newer
 * Intel models, e.g. family 6 model 207, for a Prescott: 25 instead of 110
 * GFLOP/s): "SkylakeX" with AVX-512, else "Haswell"; NULL when OpenBLAS's pick
 * is fine. It changes nothing: OpenBLAS reads OPENBLAS_CORETYPE only when it
 * loads, so the CLI sets it and re-executes itself (cli/main.c). */
const char *loom_blas_better_core(void);

#define LOOM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LOOM_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
