#include "context.h"
#include "gemm.h"

#include <cblas.h>

void loom_blas_init(void) {
    /* loom parallelises over batch shards; BLAS threads inside them would
     * oversubscribe the cores (measured: 2 BLAS threads give ~1.1x on our
     * GEMM shapes, two shards give ~2x). Process-wide: only programs (the
     * CLI) call this; the public API scopes it per call instead. */
    openblas_set_num_threads(1);
}

const char *loom_blas_core(void) { return openblas_get_corename(); }

int loom_blas_threads(void) { return openblas_get_num_threads(); }

/* Debian 12's OpenBLAS (0.3.21) has only the process-wide
 * openblas_set_num_threads (openblas_set_num_threads_local came in 0.3.27),
 * so the policy is applied for the duration of a call and undone after. */
int loom_blas_enter(const loom_context *ctx) {
    if (!ctx || ctx->blas_threads == LOOM_BLAS_KEEP) return 0;
    int saved = openblas_get_num_threads();
    if (saved != ctx->blas_threads) openblas_set_num_threads(ctx->blas_threads);
    return saved;
}

void loom_blas_leave(const loom_context *ctx, int saved) {
    if (!ctx || ctx->blas_threads == LOOM_BLAS_KEEP || saved < 1) return;
    if (saved != ctx->blas_threads) openblas_set_num_threads(saved);
}

void loom_gemm_openblas(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a,
               size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
