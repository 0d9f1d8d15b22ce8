/* Elementwise math written so that gcc -O3 vectorises it (no libm calls in
 * loops; and -fno-trapping-math, set in the Makefile: without it gcc keeps
 * every loop through loom_expf scalar, for the clamps' selects). expf is a degree-6 polynomial on [-0.5, 0.5] for 2^f with the exponent set by
 * bit arithmetic; relative error about 2e-7, i.e. float rounding. */
#ifndef LOOM_FASTMATH_H
#define LOOM_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float loom_expf(float x) {
    /* one-level selects and branch-free rounding: anything else stops gcc's
     * if-conversion and the loop stays scalar (measured: 37% of a training step) */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f;         /* log2(e) */
    float fi = (t + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
    float f = t - fi;                           /* [-0.5, 0.5] */
    /* 2^f on [-0.5, 0.5]: the Cephes exp2f polynomial coefficients */
    float p = 1.535336188319500e-4f;
    p = p * f + 1.339887440266574e-3f;
    p = p * f + 9.618437357674640e-3f;
    p = p * f + 5.550332471162809e-2f;
    p = p * f + 2.402264791363012e-1f;
    p = p * f + 6.931472028550421e-1f;
    p = p * f + 1.0f;
    int32_t bits;
    memcpy(&bits, &p, sizeof bits);
    bits += (int32_t)fi * (1 << 23); /* fi in [-126, 127]: no overflow */
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

static inline float loom_sigmoidf(float x) { return 1.0f / (1.0f + loom_expf(-x)); }

static inline float loom_tanhf(float x) {
    /* tanh x = 1 - 2 / (exp(2x) + 1); exact limits at both ends after clamping */
    return 1.0f - 2.0f / (loom_expf(2.0f * x) + 1.0f);
}

#endif
