/* The library's one matrix product. Every layer multiplies through here, so
 * that the back-end (OpenBLAS or oneDNN) and the precision of the products
 * (fp32 or bf16 inputs with fp32 accumulation) are chosen in one place. */
#ifndef LOOM_GEMM_H
#define LOOM_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* C (m, n) = alpha op(A) op(B) + beta C, all row-major; op(A) is (m, k) and
 * op(B) (k, n); ta / tb say that A / B are stored transposed. lda, ldb, ldc
 * are the row strides of A, B, C as stored. beta 0 overwrites C (NaNs in C
 * do not propagate). Runs on the calling thread only, with this thread's
 * mode (loom_gemm_mode_set). */
void loom_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb,
               float beta, float *c, size_t ldc);

typedef enum { LOOM_GEMM_OPENBLAS = 0, LOOM_GEMM_ONEDNN = 1 } loom_gemm_backend;
typedef enum { LOOM_PREC_FP32 = 0, LOOM_PREC_BF16 = 1 } loom_precision;

/* How this thread's products run. bf16 (oneDNN only): both inputs rounded
 * to bf16 (round to nearest even) at the product, accumulation and C in
 * fp32; an input that lies inside [w, w + nw) (the model's fp32 weights) is
 * read from wbf at the same offset instead, the weights rounded once by the
 * caller (loom_bf16_round) rather than at every product. */
typedef struct loom_gemm_mode {
    loom_gemm_backend backend;
    loom_precision precision;
    const float *w;       /* (nw) fp32 weights shadowed by wbf, or NULL */
    const uint16_t *wbf;  /* (nw) their bf16 rounding */
    size_t nw;
    /* nonzero: wbf's generation, a number from loom_gemm_generation_next()
     * taken when the caller rounded it; oneDNN then reads a B that lies in
     * the shadow from a copy repacked into its own blocked layout, made once
     * per thread, product shape and generation (docs/performance.md). A
     * caller that changes wbf must take a new number. 0: no repacking. */
    unsigned long wgen;
} loom_gemm_mode;

/* This thread's mode (thread-local: worker threads get theirs from whoever
 * spreads the work, src/models/model.c). Starts as {loom_gemm_default(), fp32}.
 * set returns the previous mode, for the caller to put back. */
loom_gemm_mode loom_gemm_mode_get(void);
loom_gemm_mode loom_gemm_mode_set(loom_gemm_mode m);
/* a generation number never handed out before in this process (thread-safe) */
unsigned long loom_gemm_generation_next(void);

/* Activations rounded once by their caller for several bf16 products: while
 * pushed, a bf16 product that reads an input lying inside [x, x + n) takes
 * it from xbf (which the caller keeps equal to loom_bf16_round of x) instead
 * of rounding it again; the result is the same bits. This thread's, at most
 * a few at a time: false when full (the products then round, as without).
 * Pop only what was pushed, last first. */
bool loom_gemm_shadow_push(const float *x, const uint16_t *xbf, size_t n);
void loom_gemm_shadow_pop(void);
/* this thread's products round their inputs to bf16 (oneDNN, bf16) */
bool loom_gemm_rounds_bf16(void);
/* this thread's buffer for such a shadow, of at least n bf16 values, kept
 * and grown as needed (so fp32 runs never allocate it); NULL when out of
 * memory. One buffer per use, so that shadows in use at once never share:
 * LAYER inside one layer's backward (the GRU's dR), ACT
 * and DOUT a model's activations and output gradient around its layers. */
enum { LOOM_BF16_BUF_LAYER, LOOM_BF16_BUF_ACT, LOOM_BF16_BUF_DOUT, LOOM_BF16_BUFS };
uint16_t *loom_gemm_bf16_buffer(int which, size_t n);

/* 2 m n k summed over this thread's loom_gemm calls so far (a statistic for
 * loom bench: achieved GFLOP/s against the peak) */
double loom_gemm_flops(void);

/* built with oneDNN (LOOM_HAVE_DNNL) */
bool loom_gemm_have_onednn(void);
/* the back-end a thread starts with: OpenBLAS, or the environment's
 * LOOM_GEMM=openblas|onednn when set (tests run the layers on both) */
loom_gemm_backend loom_gemm_default(void);
/* LOOM_GEMM when set to a back-end this build has, else fallback */
loom_gemm_backend loom_gemm_env(loom_gemm_backend fallback);
/* the CPU has AVX512_BF16 (cpuid leaf 7 subleaf 1, EAX bit 5) */
bool loom_cpu_has_bf16(void);
/* the CPU has AVX512F (cpuid leaf 7 subleaf 0, EBX bit 16): which of the two
 * back-ends is faster for a shape depends on it (docs/performance.md) */
bool loom_cpu_has_avx512(void);
/* "openblas" | "onednn" -> 0 and *out; anything else -1 */
int loom_gemm_backend_parse(const char *name, loom_gemm_backend *out);
const char *loom_gemm_backend_name(loom_gemm_backend b);
int loom_precision_parse(const char *name, loom_precision *out); /* "fp32" | "bf16" */
const char *loom_precision_name(loom_precision p);
/* NULL when back-end b with precision p can run here, else why not (one line) */
const char *loom_gemm_unavailable(loom_gemm_backend b, loom_precision p);

/* bf16 as the upper 16 bits of a float, rounded to nearest even; NaN stays
 * a (quiet) NaN, +-Inf stays +-Inf, overflow rounds to +-Inf */
static inline uint16_t loom_bf16_from_f32(float f) {
    union { float f; uint32_t u; } v = {f};
    /* a select rather than an early return, so that loops over it vectorise */
    const uint32_t nearest = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16, quiet = (v.u >> 16) | 0x40u;
    return (uint16_t)((v.u & 0x7fffffffu) > 0x7f800000u ? quiet : nearest);
}
static inline float loom_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
void loom_bf16_round(uint16_t *restrict dst, const float *restrict src, size_t n);

/* the back-ends, for tests and benchmarks: loom_gemm with this thread's
 * mode picks one of these */
void loom_gemm_openblas(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta,
                        float *c, size_t ldc);
#ifdef LOOM_HAVE_DNNL
/* a and b are float, or with bf16 both uint16_t bf16; C is always fp32.
 * bgen nonzero: b is the weights' shadow at that generation (loom_gemm_mode),
 * read through this thread's repacked copy of it */
void loom_gemm_onednn(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                      const void *a, size_t lda, const void *b, size_t ldb, float beta, float *c,
                      size_t ldc, bool bf16, unsigned long bgen);
/* primitives this thread has cached (tests: the cache stays bounded), and
 * products it had to hand to OpenBLAS because oneDNN could not make them */
size_t loom_gemm_onednn_cached(void);
/* repacks of a B this thread has made (tests: once per generation, not per call) */
size_t loom_gemm_onednn_repacks(void);
size_t loom_gemm_onednn_fallbacks(void);
#endif

#endif
