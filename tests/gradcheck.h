/* Central finite differences against an analytic gradient.
 * The layers are float32, so the probe loss is accumulated in double and the
 * test dimensions are kept tiny: the rounding noise of a probe is then ~1e-6
 * against steps of 2*eps = 2e-3. */
#ifndef LOOM_GRADCHECK_H
#define LOOM_GRADCHECK_H

#include "check.h"

#include <math.h>
#include <stddef.h>

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
