#include "context.h"
#include "gemm.h"

#include <cblas.h>
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

void loom_blas_init(void) {
    /* loom parallelises over batch shards; BLAS threads inside them would
     * oversubscribe the cores (measured: 2 BLAS threads give ~1.1x on our
     * GEMM shapes, two shards give ~2x). Process-wide: only programs (the
     * CLI) call this; the public API scopes it per call instead. */
    openblas_set_num_threads(1);
}

const char *loom_blas_core(void) { return openblas_get_corename(); }

/* the OS saves the register state the kernels use: XCR0 bits 1-2 (SSE, AVX),
 * and 5-7 (AVX-512's opmask and upper zmm) when zmm is asked */
static bool os_saves(bool zmm) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1u)) return false; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    unsigned want = zmm ? 0xe6u : 0x6u;
    return (lo & want) == want;
}

const char *loom_blas_better_core(void) {
    /* OpenBLAS's names for cores without AVX2 kernels: its fallbacks */
    static const char *const generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                          "Atom", "Sandybridge", "Barcelona", "Opteron",
                                          "Opteron_SSE3", "Bobcat", "Bulldozer", "Piledriver",
                                          "Katmai", "Coppermine", "Northwood", "Banias"};
    const char *core = openblas_get_corename();
#ifdef LOOM_TEST_HOOKS
    /* test hook (docs/robustness.md), only in test builds: OpenBLAS fell back */
    const char *fake = getenv("LOOM_FAULT_BLAS_GENERIC");
    if (fake && *fake) core = "Prescott";
#endif
    bool is_generic = false;
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        if (core && strcmp(core, generic[i]) == 0) is_generic = true;
    if (!is_generic) return NULL;
    unsigned a, b, c, d, fma = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) fma = (c >> 12) & 1u;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    const bool avx2 = (b >> 5) & 1u, f = (b >> 16) & 1u, dq = (b >> 17) & 1u, cd = (b >> 28) & 1u,
               bw = (b >> 30) & 1u, vl = (b >> 31) & 1u;
    if (f && dq && cd && bw && vl && fma && os_saves(true)) return "SkylakeX";
    if (avx2 && fma && os_saves(false)) return "Haswell";
    return NULL;
}

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
