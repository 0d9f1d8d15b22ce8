/* Central finite differences against an analytic gradient.
 * The layers are float32, so the probe loss is accumulated in double and the
 * test dimensions are kept tiny: the rounding noise of a probe is then ~1e-6
 * against steps of 2*eps = 2e-3. */
#ifndef LOOM_GRADCHECK_H
#define LOOM_GRADCHECK_H

#include "check.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

typedef double (*gc_loss_fn)(void *ctx);

static inline double gc_ratio(gc_loss_fn f, void *ctx, float *x, size_t e, double a,
                              double eps) {
    float keep = x[e];
    x[e] = (float)(keep + eps);
    double lp = f(ctx);
    x[e] = (float)(keep - eps);
    double lm = f(ctx);
    x[e] = keep;
    double num = (lp - lm) / (2.0 * eps);
    return fabs(a - num) / (2e-3 + 1e-2 * fmax(fabs(a), fabs(num)));
}

/* Compares grad[e] with (L(x+eps) - L(x-eps)) / 2eps for every stride-th
 * element of x. Where a ReLU kink lies within eps, the difference quotient is
 * wrong, so an element that fails is probed again with eps2 (when > 0): a
 * kink breaks only the large step, rounding only the small one, a wrong
 * gradient both. Returns the worst error ratio
 * |a - n| / (atol + rtol * max(|a|, |n|)); <= 1 passes. */
static inline double gc_compare2(gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                                 size_t stride, double eps, double eps2) {
    double worst = 0.0;
    for (size_t e = 0; e < n; e += stride) {
        double r = gc_ratio(f, ctx, x, e, grad[e], eps);
        if (r > 1.0 && eps2 > 0.0) r = fmin(r, gc_ratio(f, ctx, x, e, grad[e], eps2));
        if (r > worst) worst = r;
    }
    return worst;
}

/* (L(x+h) - L(x-h)) / 2h at element e */
static inline double gc_quotient(gc_loss_fn f, void *ctx, float *x, size_t e, double h) {
    const float keep = x[e];
    x[e] = (float)(keep + h);
    const double lp = f(ctx);
    x[e] = (float)(keep - h);
    const double lm = f(ctx);
    x[e] = keep;
    return (lp - lm) / (2.0 * h);
}

/* gc_compare2, also keeping the quotient at eps of every probe in num
 * ((n + stride - 1) / stride entries) */
static inline double gc_compare2_keep(gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                                      size_t stride, double eps, double eps2, double *num) {
    double worst = 0.0;
    for (size_t e = 0, q = 0; e < n; e += stride, q++) {
        num[q] = gc_quotient(f, ctx, x, e, eps);
        const double a = grad[e];
        double r = fabs(a - num[q]) / (2e-3 + 1e-2 * fmax(fabs(a), fabs(num[q])));
        if (r > 1.0 && eps2 > 0.0) r = fmin(r, gc_ratio(f, ctx, x, e, a, eps2));
        if (r > worst) worst = r;
    }
    return worst;
}

/* A check scaled to the tensor: with S = max |n| over the probes' quotients
 * num at eps (from gc_compare2_keep), every probe must have |a - n| <=
 * rtol S for n at eps or, where it is not within a quarter of that, the best
 * of 10 eps, 31.6 eps, 3.16 eps and eps / 3.16 (truncation error grows
 * with h, float rounding shrinks, a kink
 * within h spoils it: a right gradient passes at some h, a wrong one at
 * none). gc_compare2's absolute floor 2e-3 lets a gradient of order 1e-4 be
 * zero; here zeroing any tensor's gradient fails. Returns the worst
 * |a - n| / (rtol S), <= 1 passes; *scale = S. */
static inline double gc_compare_scaled(gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                                       size_t stride, double eps, const double *num, double rtol,
                                       double *scale) {
    const size_t np = (n + stride - 1) / stride;
    const double hs[4] = {10.0 * eps, sqrt(1000.0) * eps, sqrt(10.0) * eps, eps / sqrt(10.0)};
    double S = 0.0, worst = 0.0;
    for (size_t q = 0; q < np; q++) S = fmax(S, fabs(num[q]));
    for (size_t q = 0; q < np; q++) {
        const size_t e = q * stride;
        double err = fabs(grad[e] - num[q]);
        for (int k = 0; k < 4 && err > 0.25 * rtol * S; k++) /* a margin: keep trying below the limit */
            err = fmin(err, fabs(grad[e] - gc_quotient(f, ctx, x, e, hs[k])));
        worst = fmax(worst, S > 0.0 ? err / (rtol * S) : err > 0.0 ? 1e300 : 0.0);
    }
    *scale = S;
    return worst;
}

static inline double gc_compare(gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                                size_t stride, double eps) {
    return gc_compare2(f, ctx, x, grad, n, stride, eps, 0.0);
}

#define GRADCHECK(name, f, ctx, x, grad, n)                                          \
    do {                                                                             \
        double w_ = gc_compare((f), (ctx), (x), (grad), (n), 1, 1e-3);              \
        CHECK((name), w_ <= 1.0, "worst error ratio %.3g (<= 1 passes)", w_);        \
    } while (0)

static inline double gc_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#endif
