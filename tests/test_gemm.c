/* loom_gemm on every back-end this build has: against a double-precision
 * reference for all four transpose cases, odd shapes, padded leading
 * dimensions, alpha, beta 0 (NaNs in C ignored) and 1; bf16 products against
 * the reference on bf16-rounded inputs, the weight shadow, round to nearest
 * even (ties, NaN, Inf, overflow); the oneDNN primitive cache stays bounded
 * and inside an OpenMP team gives the serial bits. */
#include "check.h"
#include "gemm.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 88172645463325252ULL;
static float frand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* C = alpha op(A) op(B) + beta C in double; bf16: the inputs rounded first */
static void ref(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                const float *b, size_t ldb, float beta, const float *c0, double *c, size_t ldc, bool bf16) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t p = 0; p < k; p++) {
                float x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
                if (bf16) x = loom_bf16_to_f32(loom_bf16_from_f32(x)), y = loom_bf16_to_f32(loom_bf16_from_f32(y));
                s += (double)x * (double)y;
            }
            c[i * ldc + j] = alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c0[i * ldc + j]);
        }
}

/* largest |got - want| / (sum |terms| + 1e-30) over C, and whether padding
 * columns of C were left alone */
static double run_case(loom_gemm_mode mode, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                       float beta, size_t pad, bool *pad_ok, bool *nan_ok) {
    const size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const size_t ra = ta ? k : m, rb = tb ? n : k;
    float *a = malloc(ra * lda * sizeof *a + 4), *b = malloc(rb * ldb * sizeof *b + 4);
    float *c = malloc(m * ldc * sizeof *c + 4), *c0 = malloc(m * ldc * sizeof *c0 + 4);
    double *want = malloc(m * ldc * sizeof *want + 8), *mag = malloc(m * ldc * sizeof *mag + 8);
    for (size_t i = 0; i < ra * lda; i++) a[i] = frand();
    for (size_t i = 0; i < rb * ldb; i++) b[i] = frand();
    for (size_t i = 0; i < m * ldc; i++) c0[i] = beta == 0.0f ? NAN : frand();
    memcpy(c, c0, m * ldc * sizeof *c);
    uint16_t *wbf = NULL;
    if (mode.w == (const float *)1) { /* shadow B as the model's weights */
        wbf = malloc(rb * ldb * sizeof *wbf + 2);
        loom_bf16_round(wbf, b, rb * ldb);
        mode.w = b, mode.wbf = wbf, mode.nw = rb * ldb;
        if (mode.wgen) mode.wgen = loom_gemm_generation_next(); /* B read from a repacked copy */
    }
    const loom_gemm_mode old = loom_gemm_mode_set(mode);
    loom_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    loom_gemm_mode_set(old);
    ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, want, ldc, mode.precision == LOOM_PREC_BF16);
    /* the scale of the sum: |alpha| sum |a||b| + |beta c| */
    float *ones_a = malloc(ra * lda * sizeof *a + 4), *ones_b = malloc(rb * ldb * sizeof *b + 4);
    for (size_t i = 0; i < ra * lda; i++) ones_a[i] = fabsf(a[i]);
    for (size_t i = 0; i < rb * ldb; i++) ones_b[i] = fabsf(b[i]);
    float *absc = malloc(m * ldc * sizeof *absc + 4);
    for (size_t i = 0; i < m * ldc; i++) absc[i] = fabsf(c0[i]);
    ref(ta, tb, m, n, k, fabsf(alpha), ones_a, lda, ones_b, ldb, fabsf(beta), absc, mag, ldc, false);
    double worst = 0.0;
    *pad_ok = true, *nan_ok = true;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            const double g = c[i * ldc + j], e = fabs(g - want[i * ldc + j]) / (mag[i * ldc + j] + 1e-30);
            if (isnan(g)) *nan_ok = false, worst = INFINITY;
            else if (e > worst) worst = e;
        }
        for (size_t j = n; j < ldc; j++) /* padding: untouched (NaN stays NaN, bits equal) */
            if (memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof *c) != 0) *pad_ok = false;
    }
    free(a), free(b), free(c), free(c0), free(want), free(mag), free(ones_a), free(ones_b), free(absc), free(wbf);
    return worst;
}

static void test_backend(loom_gemm_backend be, loom_precision prec, const char *tag) {
    static const size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {1, 29, 13}, {32, 96, 64},
                                       {65, 33, 129}, {7, 300, 2}, {130, 20, 5}, {33, 65, 47},
                                       {257, 3, 129}, {3, 1000, 17}};
    /* the small ones take the back-end's small-product path, the others oneDNN's matmul */
    /* fp32: a few ulps times log k; bf16 inputs are exact in fp32, so the same */
    const double tol = 2e-6;
    char name[160];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double worst = 0.0;
            bool pad = true, nan = true;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int bi = 0; bi < 3; bi++) {
                    const float beta = bi == 0 ? 0.0f : bi == 1 ? 1.0f : -0.5f, alpha = bi == 2 ? 0.75f : 1.0f;
                    bool p1, n1;
                    loom_gemm_mode mode = {be, prec, NULL, NULL, 0, 0};
                    double e = run_case(mode, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], alpha, beta,
                                        s % 3, &p1, &n1);
                    if (e > worst) worst = e;
                    pad &= p1, nan &= n1;
                }
            snprintf(name, sizeof name, "%s: ta=%d tb=%d, 11 shapes x beta 0/1/-0.5, padded ld: within %.0e of double", tag,
                     ta, tb, tol);
            CHECK(name, worst <= tol, "worst relative error %.3g", worst);
            snprintf(name, sizeof name, "%s: ta=%d tb=%d: beta 0 ignores NaNs in C, padding untouched", tag, ta, tb);
            CHECK(name, pad && nan, "padding %s, NaN %s", pad ? "ok" : "written", nan ? "ok" : "propagated");
        }
    /* k = 0: C = beta C */
    float c[6] = {1, 2, 3, 4, 5, NAN}, a[1] = {0}, b[1] = {0};
    loom_gemm_mode old = loom_gemm_mode_set((loom_gemm_mode){be, prec, NULL, NULL, 0, 0});
    loom_gemm(false, false, 2, 2, 0, 1.0f, a, 1, b, 2, 0.5f, c, 3);
    loom_gemm_mode_set(old);
    snprintf(name, sizeof name, "%s: k = 0 gives beta C", tag);
    CHECK(name, c[0] == 0.5f && c[1] == 1.0f && c[2] == 3.0f && c[3] == 2.0f && c[4] == 2.5f && isnan(c[5]),
          "%g %g %g %g %g", c[0], c[1], c[3], c[4], c[2]);
}

static void test_rounding(void) {
    /* bf16 keeps 7 fraction bits: at 1.0 its ulp is 2^-7 */
    const struct { uint32_t in; uint16_t out; const char *what; } cases[] = {
        {0x3f800000u, 0x3f80, "1.0 exact"},
        {0x3f808000u, 0x3f80, "1 + 2^-8, a tie: to the even 1.0"},
        {0x3f818000u, 0x3f82, "1 + 3 2^-8, a tie: to the even 1 + 2^-6"},
        {0x3f808001u, 0x3f81, "just above a tie: up"},
        {0x3f807fffu, 0x3f80, "just below a tie: down"},
        {0xbf818000u, 0xbf82, "-(1 + 3 2^-8): ties to even, sign kept"},
        {0x7f800000u, 0x7f80, "+Inf"},
        {0xff800000u, 0xff80, "-Inf"},
        {0x7f7fffffu, 0x7f80, "FLT_MAX overflows to +Inf"},
        {0x80000000u, 0x8000, "-0"},
        {0x00000001u, 0x0000, "the smallest denormal rounds to 0"},
        {0x00018000u, 0x0002, "a denormal tie: to even"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "bf16 rounding: %s", cases[i].what);
        uint16_t got = loom_bf16_from_f32(bits_f(cases[i].in)), arr;
        float f = bits_f(cases[i].in);
        loom_bf16_round(&arr, &f, 1);
        CHECK(name, got == cases[i].out && arr == cases[i].out, "0x%08x -> 0x%04x (array 0x%04x), wanted 0x%04x",
              cases[i].in, got, arr, cases[i].out);
    }
    /* NaNs: quiet and NaN (a signalling NaN's payload in the low bits must not become Inf) */
    const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu};
    bool ok = true;
    for (size_t i = 0; i < 4; i++) {
        float f = bits_f(nans[i]);
        uint16_t h = loom_bf16_from_f32(f), arr;
        loom_bf16_round(&arr, &f, 1);
        ok &= isnan(loom_bf16_to_f32(h)) && h == arr && (h & 0x8000) == ((nans[i] >> 16) & 0x8000);
    }
    CHECK("bf16 rounding: NaNs stay NaN (signalling ones too), sign kept", ok, "a NaN became a number");
    /* the vectorised array rounding agrees with the scalar one over a sweep of bit patterns */
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x);
    uint16_t *h = malloc(N * sizeof *h);
    for (uint32_t i = 0; i < N; i++) x[i] = bits_f(i * 65537u + 0x1234u);
    loom_bf16_round(h, x, N);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) bad += h[i] != loom_bf16_from_f32(x[i]);
    CHECK("bf16 rounding: the array form equals the scalar form on 65536 bit patterns", bad == 0, "%zu differ", bad);
    free(x), free(h);
}

#ifdef LOOM_HAVE_DNNL
static void test_onednn_extras(void) {
    /* the weight shadow is what bf16 reads: B's shadow rounded from B gives the
     * reference; a shadow of zeros gives beta C */
    bool p, n;
    loom_gemm_mode shadow = {LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, (const float *)1, NULL, 0, 0};
    double e = run_case(shadow, false, true, 33, 40, 50, 1.0f, 1.0f, 1, &p, &n);
    CHECK("bf16: B read from the weights' bf16 shadow matches the reference", e <= 2e-6 && p && n, "error %.3g", e);
    /* a shadow of zeros: C stays beta C, on the small path and on oneDNN's */
    for (size_t sz = 2; sz <= 64; sz += 62) {
        float *a = malloc(sz * sz * sizeof *a), *b = malloc(sz * sz * sizeof *b), *c = malloc(sz * sz * sizeof *c);
        uint16_t *zeros = calloc(sz * sz, sizeof *zeros);
        for (size_t i = 0; i < sz * sz; i++) a[i] = 1.0f + (float)i, b[i] = 2.0f, c[i] = 1.0f;
        loom_gemm_mode old = loom_gemm_mode_set((loom_gemm_mode){LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, b, zeros, sz * sz, 0});
        loom_gemm(false, false, sz, sz, sz, 1.0f, a, sz, b, sz, 1.0f, c, sz);
        loom_gemm_mode_set(old);
        size_t bad = 0;
        for (size_t i = 0; i < sz * sz; i++) bad += c[i] != 1.0f;
        char name[128];
        snprintf(name, sizeof name, "bf16 %zux%zux%zu: an input inside the weights is read from the shadow, not rounded again", sz, sz, sz);
        CHECK(name, bad == 0, "%zu entries of C = A 0 + C are not 1", bad);
        free(a), free(b), free(c), free(zeros);
    }
}

/* the largest |c - reference| / scale over an M x N product of x (M, K) and
 * w (K, N) with bf16 inputs, beta 0 */
static double bf16_err(const float *c, const float *x, const float *w, size_t M, size_t N, size_t K) {
    double *want = malloc(M * N * sizeof *want), *mag = malloc(M * N * sizeof *mag);
    float *ax = malloc(M * K * sizeof *ax), *aw = malloc(K * N * sizeof *aw);
    for (size_t i = 0; i < M * K; i++) ax[i] = fabsf(x[i]);
    for (size_t i = 0; i < K * N; i++) aw[i] = fabsf(w[i]);
    ref(false, false, M, N, K, 1.0f, x, K, w, N, 0.0f, NULL, want, N, true);
    ref(false, false, M, N, K, 1.0f, ax, K, aw, N, 0.0f, NULL, mag, N, false);
    double worst = 0.0;
    for (size_t i = 0; i < M * N; i++) {
        const double e = fabs(c[i] - want[i]) / (mag[i] + 1e-30);
        worst = isnan(c[i]) ? INFINITY : e > worst ? e : worst;
    }
    free(want), free(mag), free(ax), free(aw);
    return worst;
}

/* B read from the weights' shadow with a generation: oneDNN keeps a copy
 * repacked into its own layout, made once per generation and weight, never
 * stale; activations pushed as a shadow are read from it */
static void test_repack(void) {
    static const size_t shapes[][3] = {{32, 96, 64}, {65, 33, 129}, {33, 65, 47}, {3, 1000, 17}, {257, 3, 129}};
    double worst = 0.0;
    bool pad = true, nan = true;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int bi = 0; bi < 3; bi++) {
                    const float beta = bi == 0 ? 0.0f : bi == 1 ? 1.0f : -0.5f, alpha = bi == 2 ? 0.75f : 1.0f;
                    bool p1, n1;
                    loom_gemm_mode mode = {LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, (const float *)1, NULL, 0, 1};
                    double e = run_case(mode, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], alpha, beta,
                                        s % 3, &p1, &n1);
                    if (e > worst) worst = e;
                    pad &= p1, nan &= n1;
                }
    CHECK("bf16, B repacked from the weights' shadow: ta/tb x 5 shapes x beta 0/1/-0.5, padded ld: within 2e-6 of double",
          worst <= 2e-6 && pad && nan, "error %.3g, padding %s, NaN %s", worst, pad ? "ok" : "written", nan ? "ok" : "propagated");

    /* two weights of one shape, side by side in the shadow, each used 4 times */
    enum { M = 32, K = 256, N = 192 };
    float *x = malloc(M * K * sizeof *x), *w = malloc(2 * K * N * sizeof *w);
    float *c0 = malloc(M * N * sizeof *c0), *c1 = malloc(M * N * sizeof *c1);
    uint16_t *wbf = malloc(2 * K * N * sizeof *wbf), *xbf = calloc(M * K, sizeof *xbf);
    for (size_t i = 0; i < M * K; i++) x[i] = frand();
    for (size_t i = 0; i < 2 * K * N; i++) w[i] = frand();
    loom_bf16_round(wbf, w, 2 * K * N);
    loom_gemm_mode mode = {LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, w, wbf, 2 * K * N, loom_gemm_generation_next()};
    loom_gemm_mode old = loom_gemm_mode_set(mode);
    const size_t r0 = loom_gemm_onednn_repacks();
    for (int i = 0; i < 4; i++) {
        loom_gemm(false, false, M, N, K, 1.0f, x, K, w, N, 0.0f, c0, N);
        loom_gemm(false, false, M, N, K, 1.0f, x, K, w + K * N, N, 0.0f, c1, N);
    }
    const size_t made = loom_gemm_onednn_repacks() - r0;
    const double e0 = bf16_err(c0, x, w, M, N, K), e1 = bf16_err(c1, x, w + K * N, M, N, K);
    CHECK("bf16 repacked: two weights of the same shape each give their own product", e0 <= 2e-6 && e1 <= 2e-6,
          "errors %.3g and %.3g", e0, e1);
    CHECK("bf16 repacked: one copy per weight and generation, not one per call (2 for 8 products)", made == 2,
          "%zu repacks", made);
    /* the weights change and are rounded again under a new generation: the
     * products follow them, not the old copy */
    for (size_t i = 0; i < K * N; i++) w[i] = -0.5f * w[i] + 0.25f;
    loom_bf16_round(wbf, w, 2 * K * N);
    mode.wgen = loom_gemm_generation_next();
    loom_gemm_mode_set(mode);
    loom_gemm(false, false, M, N, K, 1.0f, x, K, w, N, 0.0f, c0, N);
    const double e2 = bf16_err(c0, x, w, M, N, K);
    CHECK("bf16 repacked: a new generation repacks (the product follows the changed weights)", e2 <= 2e-6,
          "error %.3g against the new weights", e2);

    /* an activation shadow is read instead of rounding: a shadow of zeros
     * for x gives 0; popped, the product is x's again */
    const bool pushed = loom_gemm_shadow_push(x, xbf, M * K);
    loom_gemm(false, false, M, N, K, 1.0f, x, K, w, N, 0.0f, c0, N);
    size_t nonzero = 0;
    for (size_t i = 0; i < M * N; i++) nonzero += c0[i] != 0.0f;
    if (pushed) loom_gemm_shadow_pop();
    loom_gemm(false, false, M, N, K, 1.0f, x, K, w, N, 0.0f, c1, N);
    const double e3 = bf16_err(c1, x, w, M, N, K);
    CHECK("bf16: an input inside a pushed activation shadow is read from it", pushed && nonzero == 0,
          "pushed %d, %zu of C not 0", pushed, nonzero);
    CHECK("bf16: once popped, the shadow is not read (the product is x's)", e3 <= 2e-6, "error %.3g", e3);
    loom_gemm_mode_set(old);
    free(x), free(w), free(c0), free(c1), free(wbf), free(xbf);
}

/* --gemm onednn hands fp32 products of m n k >= 2^26 to OpenBLAS on a CPU
 * without AVX-512, where OpenBLAS is the faster there (gemm.c); with AVX-512
 * they stay on oneDNN. Told apart by their bits. */
static void test_large_to_openblas(void) {
    enum { M = 512, N = 512, K = 256 }; /* m n k = 2^26 */
    float *a = malloc(M * K * sizeof *a), *b = malloc(K * N * sizeof *b);
    float *c = calloc(M * N, sizeof *c), *cb = calloc(M * N, sizeof *cb), *cd = calloc(M * N, sizeof *cd);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = frand();
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = frand();
    loom_gemm_mode old = loom_gemm_mode_set((loom_gemm_mode){LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, NULL, NULL, 0, 0});
    loom_gemm(false, false, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
    loom_gemm_mode_set(old);
    loom_gemm_openblas(false, false, M, N, K, 1.0f, a, K, b, N, 0.0f, cb, N);
    loom_gemm_onednn(false, false, M, N, K, 1.0f, a, K, b, N, 0.0f, cd, N, false, 0);
    const size_t bytes = (size_t)M * N * sizeof *c;
    const bool distinct = memcmp(cb, cd, bytes) != 0;
    if (getenv("LOOM_GEMM_LARGE"))
        printf("SKIP gemm: the large-product rule: LOOM_GEMM_LARGE is set\n");
    else if (!distinct)
        printf("SKIP gemm: the large-product rule: both back-ends give the same bits here\n");
    else if (loom_cpu_has_avx512())
        CHECK("onednn fp32 with AVX-512: a 512 x 512 x 256 product stays on oneDNN", memcmp(c, cd, bytes) == 0,
              "it did not give oneDNN's bits");
    else
        CHECK("onednn fp32 without AVX-512: a 512 x 512 x 256 product (m n k = 2^26) runs on OpenBLAS",
              memcmp(c, cb, bytes) == 0, "it did not give OpenBLAS's bits");
    free(a), free(b), free(c), free(cb), free(cd);
}

/* the fp32 side of the oneDNN back-end: on every CPU that has oneDNN */
static void test_onednn_fp32_extras(void) {
    loom_gemm_mode old;

    /* the cache stays bounded over many shapes, and still multiplies right */
    old = loom_gemm_mode_set((loom_gemm_mode){LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, NULL, NULL, 0, 0});
    double worst = 0.0;
    for (size_t s = 8; s < 8 + 80; s++) { /* s x 64 x 64: each a matmul of its own */
        bool p1, n1;
        double e1 = run_case((loom_gemm_mode){LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, NULL, NULL, 0, 0}, false, false, s, 64,
                             64, 1.0f, 0.0f, 0, &p1, &n1);
        if (e1 > worst) worst = e1;
    }
    CHECK("onednn: 80 shapes: the per-thread cache stays within its bound (64), results right",
          loom_gemm_onednn_cached() == 64 && worst <= 2e-6, "%zu cached, error %.3g", loom_gemm_onednn_cached(), worst);

    /* OpenMP: the caller's thread count is put back, and inside a team each
     * thread gets the serial bits (oneDNN runs single-threaded in a call) */
    const int before = omp_get_max_threads();
    enum { M = 64, K = 256, Nn = 192 };
    float *x = malloc(M * K * sizeof *x), *w = malloc(K * Nn * sizeof *w), *serial = calloc(M * Nn, sizeof *serial);
    float *team = calloc(2 * M * Nn, sizeof *team);
    for (size_t i = 0; i < M * K; i++) x[i] = frand();
    for (size_t i = 0; i < K * Nn; i++) w[i] = frand();
    omp_set_num_threads(2);
    loom_gemm(false, false, M, Nn, K, 1.0f, x, K, w, Nn, 0.0f, serial, Nn);
    const int after = omp_get_max_threads();
#pragma omp parallel num_threads(2)
    {
        loom_gemm_mode_set((loom_gemm_mode){LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, NULL, NULL, 0, 0});
        const int t = omp_get_thread_num();
        loom_gemm(false, false, M, Nn, K, 1.0f, x, K, w, Nn, 0.0f, team + (size_t)t * M * Nn, Nn);
    }
    omp_set_num_threads(before);
    CHECK("onednn: the caller's OpenMP thread count is left as it was", after == 2, "2 became %d", after);
    CHECK("onednn: each thread of an OpenMP team gets the serial bits",
          memcmp(serial, team, M * Nn * sizeof *serial) == 0 && memcmp(serial, team + M * Nn, M * Nn * sizeof *serial) == 0,
          "they differ");
    loom_gemm_mode_set(old);
    free(x), free(w), free(serial), free(team);
    CHECK("onednn: every product above the small-product limit ran as a oneDNN matmul (no fallback)",
          loom_gemm_onednn_fallbacks() == 0, "%zu fell back to OpenBLAS", loom_gemm_onednn_fallbacks());
}
#endif

int main(void) {
    test_rounding();
    test_backend(LOOM_GEMM_OPENBLAS, LOOM_PREC_FP32, "openblas fp32");
#ifdef LOOM_HAVE_DNNL
    test_backend(LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, "onednn fp32");
    test_onednn_fp32_extras();
    test_large_to_openblas();
    if (loom_cpu_has_bf16()) {
        test_backend(LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, "onednn bf16");
        test_onednn_extras();
        test_repack();
    } else {
        /* counted by tests/run.sh as skipped, not passed */
        printf("SKIP gemm: onednn bf16 products against the double reference (every transpose, odd "
               "shapes, leading dimensions): this CPU has no AVX512_BF16\n");
        printf("SKIP gemm: bf16 weights read from their shadow: this CPU has no AVX512_BF16\n");
        printf("SKIP gemm: bf16 weights repacked for oneDNN, activation shadows: this CPU has no AVX512_BF16\n");
    }
#endif
    CHECK("gemm: the default back-end follows LOOM_GEMM",
          getenv("LOOM_GEMM") ? loom_gemm_default() == loom_gemm_env(LOOM_GEMM_OPENBLAS) : loom_gemm_default() == LOOM_GEMM_OPENBLAS,
          "default %s", loom_gemm_backend_name(loom_gemm_default()));
    CHECK_DONE();
}
