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

/* Compares grad[e] with (L(x+eps) - L(x-eps)) / 2eps for every element of x
 * (or every stride-th when the buffer is large). Returns the worst error ratio
 * |a - n| / (atol + rtol * max(|a|, |n|)); <= 1 passes. */
static double gc_compare(gc_loss_fn f, void *ctx, float *x, const float *grad, size_t n,
                         size_t stride, double eps) {
    double worst = 0.0;
    for (size_t e = 0; e < n; e += stride) {
        float keep = x[e];
        x[e] = (float)(keep + eps);
        double lp = f(ctx);
        x[e] = (float)(keep - eps);
        double lm = f(ctx);
        x[e] = keep;
        double num = (lp - lm) / (2.0 * eps), a = grad[e];
        double r = fabs(a - num) / (2e-3 + 1e-2 * fmax(fabs(a), fabs(num)));
        if (r > worst) worst = r;
    }
    return worst;
}

#define GRADCHECK(name, f, ctx, x, grad, n)                                          \
    do {                                                                             \
        double w_ = gc_compare((f), (ctx), (x), (grad), (n), 1, 1e-3);              \
        CHECK((name), w_ <= 1.0, "worst error ratio %.3g (<= 1 passes)", w_);        \
    } while (0)

static double gc_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#endif
