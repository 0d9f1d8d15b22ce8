/* The fp32 peak of one core here, measured: 12 independent chains of 8-lane
 * FMAs (AVX2 + FMA, the widest this Zen 3 machine has) for about a second of
 * this thread's CPU time. flops per CPU-second, so a loaded machine (which
 * takes wall time, not cycles) still gives the core's rate. docs/convlstm.md.
 *   cc -O2 -mavx2 -mfma bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    /* twelve named accumulators, so that they live in registers */
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
    __m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
    __m256 a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    const long iters = 20000000;
    double best = 0.0;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = cpu_s();
        for (long i = 0; i < iters; i++) {
#define F(x) x = _mm256_fmadd_ps(x, m, c)
            F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10), F(a11);
#undef F
        }
        const double s = cpu_s() - t0, gf = 12.0 * 8 * 2 * (double)iters / s / 1e9;
        best = gf > best ? gf : best;
    }
    const __m256 all[12] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
    float out[8], sum = 0;
    for (int k = 0; k < 12; k++) {
        _mm256_storeu_ps(out, all[k]);
        sum += out[0];
    }
    printf("{\"fp32_gflops_per_core\": %.1f, \"check\": %g}\n", best, (double)sum);
    return 0;
}
