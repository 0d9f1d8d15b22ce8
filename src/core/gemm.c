/* loom_gemm's dispatch: this thread's back-end and precision (gemm.h), the
 * bf16 rounding of inputs, the CPU check. */
#include "gemm.h"

#include <cpuid.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* backend -1: not chosen yet, loom_gemm_default() on first use */
static _Thread_local loom_gemm_mode mode = {(loom_gemm_backend)-1, LOOM_PREC_FP32, NULL, NULL, 0, 0};

/* below this m n k oneDNN's call costs more than the product (measured on
 * draw's attention products, 2 x 2 x 28 with a per-image alpha): such
 * products stay with OpenBLAS, or the plain loop in bf16. LOOM_GEMM_SMALL=0
 * sends every product to oneDNN's matmul (tests: the layers' small shapes) */
static _Thread_local size_t small_product;

/* at or above this m n k an fp32 product with --gemm onednn goes to OpenBLAS
 * instead: on a CPU without AVX-512 OpenBLAS's packed kernel is 1.1-1.6x
 * faster than oneDNN's matmul on the tall products (grupixel's head and
 * dW_hh, 25088 x 256 x 256 and 256 x 768 x 25056; draw's weight gradients,
 * 264 x 1024 x 512), while oneDNN keeps the thin per-step ones. With AVX-512
 * oneDNN was the faster at every size: no limit. LOOM_GEMM_LARGE=N sets it
 * (0: no limit). */
static _Thread_local size_t large_product;

static _Thread_local double flops;

static atomic_ulong generation;

unsigned long loom_gemm_generation_next(void) { return atomic_fetch_add(&generation, 1) + 1; }

#define SHADOWS 4
static _Thread_local struct {
    const float *x;
    const uint16_t *xbf;
    size_t n;
} act_shadow[SHADOWS];
static _Thread_local int nshadow;

bool loom_gemm_shadow_push(const float *x, const uint16_t *xbf, size_t n) {
    const char *e = getenv("LOOM_GEMM_SHADOWS"); /* 0: none (tests: the same bits without) */
    if (nshadow == SHADOWS || (e && strcmp(e, "0") == 0)) return false;
    act_shadow[nshadow].x = x, act_shadow[nshadow].xbf = xbf, act_shadow[nshadow].n = n;
    nshadow++;
    return true;
}

void loom_gemm_shadow_pop(void) {
    if (nshadow) nshadow--;
}

static _Thread_local uint16_t *user_buf[LOOM_BF16_BUFS];
static _Thread_local size_t user_cap[LOOM_BF16_BUFS];

uint16_t *loom_gemm_bf16_buffer(int which, size_t n) {
    if (which < 0 || which >= LOOM_BF16_BUFS) return NULL;
    if (n > user_cap[which]) {
        uint16_t *nb = realloc(user_buf[which], n * sizeof *nb);
        if (!nb) return NULL;
        user_buf[which] = nb, user_cap[which] = n;
    }
    return user_buf[which];
}

double loom_gemm_flops(void) { return flops; }

static void resolve(void) {
    if ((int)mode.backend >= 0) return;
    mode.backend = loom_gemm_default();
    const char *e = getenv("LOOM_GEMM_SMALL");
    small_product = e && *e ? strtoull(e, NULL, 10) : 32768;
    e = getenv("LOOM_GEMM_LARGE");
    large_product = e && *e ? strtoull(e, NULL, 10) : loom_cpu_has_avx512() ? 0 : (size_t)1 << 26;
}

loom_gemm_mode loom_gemm_mode_get(void) {
    resolve();
    return mode;
}

loom_gemm_mode loom_gemm_mode_set(loom_gemm_mode m) {
    resolve();
    loom_gemm_mode old = mode;
    mode = m;
    return old;
}

bool loom_gemm_rounds_bf16(void) {
    resolve();
    return mode.backend == LOOM_GEMM_ONEDNN && mode.precision == LOOM_PREC_BF16 && loom_gemm_have_onednn();
}

bool loom_gemm_have_onednn(void) {
#ifdef LOOM_HAVE_DNNL
    return true;
#else
    return false;
#endif
}

loom_gemm_backend loom_gemm_env(loom_gemm_backend fallback) {
    const char *e = getenv("LOOM_GEMM");
    loom_gemm_backend b;
    if (e && loom_gemm_backend_parse(e, &b) == 0 && !loom_gemm_unavailable(b, LOOM_PREC_FP32)) return b;
    return fallback;
}

loom_gemm_backend loom_gemm_default(void) { return loom_gemm_env(LOOM_GEMM_OPENBLAS); }

bool loom_cpu_has_bf16(void) {
#ifdef LOOM_TEST_HOOKS
    /* test hook (docs/robustness.md), only in test builds: a CPU without AVX512_BF16 */
    const char *no = getenv("LOOM_FAULT_NO_BF16");
    if (no && *no) return false;
#endif
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a >> 5) & 1u;
}

bool loom_cpu_has_avx512(void) {
    /* asked per product (src/nn/seq.c), and cpuid traps to the hypervisor in
     * a VM: once per thread */
    static _Thread_local int has = -1;
    if (has < 0) {
        unsigned a, b, c, d;
        has = __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 16) & 1u);
    }
    return has;
}

int loom_gemm_backend_parse(const char *name, loom_gemm_backend *out) {
    if (strcmp(name, "openblas") == 0) return *out = LOOM_GEMM_OPENBLAS, 0;
    if (strcmp(name, "onednn") == 0) return *out = LOOM_GEMM_ONEDNN, 0;
    return -1;
}

const char *loom_gemm_backend_name(loom_gemm_backend b) {
    return b == LOOM_GEMM_ONEDNN ? "onednn" : "openblas";
}

int loom_precision_parse(const char *name, loom_precision *out) {
    if (strcmp(name, "fp32") == 0) return *out = LOOM_PREC_FP32, 0;
    if (strcmp(name, "bf16") == 0) return *out = LOOM_PREC_BF16, 0;
    return -1;
}

const char *loom_precision_name(loom_precision p) { return p == LOOM_PREC_BF16 ? "bf16" : "fp32"; }

const char *loom_gemm_unavailable(loom_gemm_backend b, loom_precision p) {
    if (b == LOOM_GEMM_ONEDNN && !loom_gemm_have_onednn())
        return "this loom was built without oneDNN (install libdnnl-dev and rebuild)";
    if (p == LOOM_PREC_BF16 && !loom_gemm_have_onednn())
        return "bf16 products need oneDNN, and this loom was built without it (install libdnnl-dev and rebuild)";
    if (p == LOOM_PREC_BF16 && b != LOOM_GEMM_ONEDNN)
        return "bf16 products run on the onednn back-end only (OpenBLAS has no bf16 product)";
    if (p == LOOM_PREC_BF16 && !loom_cpu_has_bf16())
        return "bf16 needs a CPU with AVX512_BF16, and this one has none";
    return NULL;
}

void loom_bf16_round(uint16_t *restrict dst, const float *restrict src, size_t n) {
    /* loom_bf16_from_f32 on the bits, in a form gcc vectorises (measured 6x
     * faster than the union per element, which it leaves scalar) */
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, sizeof u);
        const uint32_t nearest = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x40u;
        dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : nearest);
    }
}

#ifdef LOOM_HAVE_DNNL
/* x lies in the fp32 weights this thread's mode names (fp32 or bf16) */
static bool in_fp32_weights(const float *x) { return mode.w && x >= mode.w && x < mode.w + mode.nw; }
/* ... and those weights are shadowed in bf16 */
static bool in_weights(const float *x) { return mode.wbf && in_fp32_weights(x); }

/* this thread's bf16 copies of the inputs of one product, grown as needed
 * and kept (one product at a time per thread) */
static _Thread_local uint16_t *conv_buf[2];
static _Thread_local size_t conv_cap[2];

/* operand X stored as rows x cols with row stride ld, as bf16: the weights'
 * shadow when X lies in them, else a compact copy (*ld_out = cols) */
static const uint16_t *as_bf16(int slot, const float *x, size_t rows, size_t cols, size_t ld,
                               size_t *ld_out) {
    *ld_out = ld;
    if (in_weights(x)) return mode.wbf + (x - mode.w);
    for (int i = nshadow; i-- > 0;)
        if (x >= act_shadow[i].x && x < act_shadow[i].x + act_shadow[i].n) return act_shadow[i].xbf + (x - act_shadow[i].x);
    const size_t need = rows * cols;
    if (need > conv_cap[slot]) {
        uint16_t *nb = realloc(conv_buf[slot], need * sizeof *nb);
        if (!nb) return NULL;
        conv_buf[slot] = nb, conv_cap[slot] = need;
    }
    uint16_t *d = conv_buf[slot];
    for (size_t r = 0; r < rows; r++) loom_bf16_round(d + r * cols, x + r * ld, cols);
    *ld_out = cols;
    return d;
}
#endif


#ifdef LOOM_HAVE_DNNL
/* a small bf16 product: both inputs rounded to bf16 (the weights from their
 * shadow) and widened back to fp32, which is exact, then OpenBLAS's fp32
 * product: bf16 x bf16 is exact in fp32, so this is bf16 inputs with fp32
 * accumulation (a plain C loop here was 55% of draw's bf16 training).
 * false when out of memory for the copies */
static _Thread_local float *wide_buf[2];
static _Thread_local size_t wide_cap[2];

static const float *as_rounded(int slot, const float *x, size_t rows, size_t cols, size_t ld) {
    const size_t need = rows * cols;
    if (need > wide_cap[slot]) {
        float *nb = realloc(wide_buf[slot], need * sizeof *nb);
        if (!nb) return NULL;
        wide_buf[slot] = nb, wide_cap[slot] = need;
    }
    float *d = wide_buf[slot];
    const bool shadow = in_weights(x);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++)
            d[r * cols + j] = loom_bf16_to_f32(shadow ? mode.wbf[x + r * ld + j - mode.w]
                                                      : loom_bf16_from_f32(x[r * ld + j]));
    return d;
}

static bool small_bf16(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    const size_t ca = ta ? m : k, cb = tb ? k : n;
    const float *fa = as_rounded(0, a, ta ? k : m, ca, lda), *fb = as_rounded(1, b, tb ? n : k, cb, ldb);
    if (!fa || !fb) return false;
    loom_gemm_openblas(ta, tb, m, n, k, alpha, fa, ca, fb, cb, beta, c, ldc);
    return true;
}
#endif

void loom_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a,
               size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    resolve();
    flops += 2.0 * (double)m * (double)n * (double)k;
#ifdef LOOM_HAVE_DNNL
    if (mode.backend == LOOM_GEMM_ONEDNN && m && n) {
        if (mode.precision == LOOM_PREC_BF16 && k && m * n * k < small_product &&
            small_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
            return;
        if (m * n * k < small_product ||
            (large_product && mode.precision == LOOM_PREC_FP32 && m * n * k >= large_product)) {
            loom_gemm_openblas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if (mode.precision == LOOM_PREC_BF16 && k) {
            size_t la, lb;
            const uint16_t *ab = as_bf16(0, a, ta ? k : m, ta ? m : k, lda, &la);
            const uint16_t *bb = as_bf16(1, b, tb ? n : k, tb ? k : n, ldb, &lb);
            /* B read from the shadow: oneDNN may keep a repacked copy of it */
            const bool bw = mode.wgen && in_weights(b);
            if (ab && bb) {
                loom_gemm_onednn(ta, tb, m, n, k, alpha, ab, la, bb, lb, beta, c, ldc, true,
                                 bw ? mode.wgen : 0);
                return;
            }
            /* out of memory for the copies: the fp32 product, still deterministic per call */
        }
        /* fp32 B in the weights: a repacked copy too */
        const bool bw = mode.wgen && in_fp32_weights(b);
        loom_gemm_onednn(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false, bw ? mode.wgen : 0);
        return;
    }
#endif
    loom_gemm_openblas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
