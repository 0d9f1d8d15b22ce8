/* The caller's context (include/loom/model.h): threads and the BLAS policy.
 * Internal so that the public handle stays opaque. */
#ifndef LOOM_CONTEXT_H
#define LOOM_CONTEXT_H

#include "common.h"

struct loom_context {
    int nthreads;     /* threads per model call */
    int blas_threads; /* OpenBLAS threads inside library calls; LOOM_BLAS_KEEP: untouched */
    int gemm;         /* loom_gemm_backend of the models made with it; -1: each model's default */
};

/* Scope the context's BLAS policy around one library call:
 *   int saved = loom_blas_enter(ctx); ...; loom_blas_leave(ctx, saved);
 * enter sets OpenBLAS's (process-wide) thread count to ctx->blas_threads and
 * returns the caller's value; leave restores it. ctx NULL or LOOM_BLAS_KEEP:
 * both do nothing. */
int loom_blas_enter(const loom_context *ctx);
void loom_blas_leave(const loom_context *ctx, int saved);
int loom_blas_threads(void); /* OpenBLAS's current thread count */

#endif
