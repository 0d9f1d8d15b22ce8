/* The fp32 peak of one core here, measured: 12 independent chains of FMAs,
 * 8 lanes (AVX2 + FMA) or, built with -mavx512f, 16 lanes (AVX-512), for
 * about a second of this thread's CPU time. flops per CPU-second, so a loaded
 * machine (which takes wall time, not cycles) still gives the core's rate.
 * docs/convlstm.md.
 *   cc -O2 -mavx2 -mfma bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *   cc -O2 -mavx512f -mfma bench/fma_peak.c -o /tmp/fma_peak512 && /tmp/fma_peak512 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#ifdef __AVX512F__
#define LANES 16
#define VEC __m512
#define SET1 _mm512_set1_ps
#define FMADD _mm512_fmadd_ps
#define STORE _mm512_storeu_ps
#else
#define LANES 8
#define VEC __m256
#define SET1 _mm256_set1_ps
#define FMADD _mm256_fmadd_ps
#define STORE _mm256_storeu_ps
#endif

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    const VEC m = SET1(0.999999f), c = SET1(1e-7f);
    /* twelve named accumulators, so that they live in registers */
    VEC a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3);
    VEC a4 = SET1(4), a5 = SET1(5), a6 = SET1(6), a7 = SET1(7);
    VEC a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);
    const long iters = 20000000;
    double best = 0.0;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = cpu_s();
        for (long i = 0; i < iters; i++) {
#define F(x) x = FMADD(x, m, c)
            F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10), F(a11);
#undef F
        }
        const double s = cpu_s() - t0, gf = 12.0 * LANES * 2 * (double)iters / s / 1e9;
        best = gf > best ? gf : best;
    }
    const VEC all[12] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
    float out[LANES], sum = 0;
    for (int k = 0; k < 12; k++) {
        STORE(out, all[k]);
        sum += out[0];
    }
    printf("{\"fp32_gflops_per_core\": %.1f, \"lanes\": %d, \"check\": %g}\n", best, LANES, (double)sum);
    return 0;
}
