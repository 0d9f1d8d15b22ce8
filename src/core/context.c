#include "context.h"

#include "gemm.h"

#include <stdlib.h>
#include <unistd.h>

loom_status loom_context_create(loom_context **out, int nthreads, loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_context_create: out is NULL");
    *out = NULL;
    if (nthreads < 0 || nthreads > 256)
        return loom_fail(err, LOOM_EINVAL, "thread count %d out of range (0 = all CPUs, or 1..256)",
                         nthreads);
    if (nthreads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n < 1 ? 1 : (n > 256 ? 256 : (int)n);
    }
    loom_context *c = calloc(1, sizeof *c);
    if (!c) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    c->nthreads = nthreads;
    c->blas_threads = 1; /* batch shards already use the cores (see blas.c) */
    c->gemm = -1;
    *out = c;
    return LOOM_OK;
}

void loom_context_free(loom_context *ctx) { free(ctx); }

int loom_context_threads(const loom_context *ctx) { return ctx ? ctx->nthreads : 0; }

int loom_context_blas_threads(const loom_context *ctx) { return ctx ? ctx->blas_threads : 0; }

loom_status loom_context_set_blas_threads(loom_context *ctx, int n, loom_error *err) {
    if (!ctx) return loom_fail(err, LOOM_EINVAL, "loom_context_set_blas_threads: context is NULL");
    if (n < 0 || n > 256)
        return loom_fail(err, LOOM_EINVAL, "BLAS thread count %d out of range (0 = keep the caller's, or 1..256)", n);
    ctx->blas_threads = n;
    return LOOM_OK;
}

loom_status loom_context_set_gemm(loom_context *ctx, const char *backend, loom_error *err) {
    if (!ctx) return loom_fail(err, LOOM_EINVAL, "loom_context_set_gemm: context is NULL");
    if (!backend || !backend[0]) {
        ctx->gemm = -1;
        return LOOM_OK;
    }
    loom_gemm_backend b;
    if (loom_gemm_backend_parse(backend, &b))
        return loom_fail(err, LOOM_EINVAL, "matrix-product back-end '%s': expected openblas or onednn", backend);
    const char *why = loom_gemm_unavailable(b, LOOM_PREC_FP32);
    if (why) return loom_fail(err, LOOM_EINVAL, "matrix-product back-end %s: %s", backend, why);
    ctx->gemm = (int)b;
    return LOOM_OK;
}

const char *loom_context_gemm(const loom_context *ctx) {
    return ctx && ctx->gemm >= 0 ? loom_gemm_backend_name((loom_gemm_backend)ctx->gemm) : NULL;
}
