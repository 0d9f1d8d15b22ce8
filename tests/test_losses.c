/* The shared output distributions (src/losses/losses.h): each NLL against a
 * direct double-precision formula, each backward against central differences
 * of its NLL, and the edge cases (large logits, soft targets, in-place). */
#include "testutil.h"
#include "losses/losses.h"

#include <math.h>

typedef struct {
    int kind; /* 0 Bernoulli, 1 Gaussian, 2 class */
    float *p; /* parameters: logits or means */
    const float *x;
    const int32_t *y;
    size_t n, K;
    float sd;
} loss_ctx;

static double loss_of(void *v) {
    const loss_ctx *c = v;
    switch (c->kind) {
    case 0: return loom_bernoulli_nll_acc(0.0, c->p, c->x, c->n);
    case 1: return loom_gaussian_nll_acc(0.0, c->p, c->x, c->n, c->sd);
    default: return loom_class_xent(NULL, NULL, c->p, c->y, c->n, c->K, 1.0f);
    }
}

static void test_bernoulli(loom_rng *r) {
    enum { N = 40 };
    float l[N], x[N], d[N];
    for (int i = 0; i < N; i++) {
        l[i] = 6.0f * (2.0f * loom_rng_uniform(r) - 1.0f);
        x[i] = i % 3 == 0 ? loom_rng_uniform(r) : (float)(i % 2); /* soft and hard targets */
    }
    double direct = 0.0;
    for (int i = 0; i < N; i++) {
        const double p = 1.0 / (1.0 + exp(-(double)l[i]));
        direct += -(x[i] * log(p) + (1.0 - x[i]) * log1p(-p));
    }
    const double got = loom_bernoulli_nll_acc(0.0, l, x, N);
    CHECK("bernoulli: nll = -(x log p + (1-x) log(1-p))", fabs(got - direct) < 1e-9 * N,
          "%.12g vs %.12g", got, direct);
    const double acc = loom_bernoulli_nll_acc(2.5, l, x, N);
    CHECK("bernoulli: acc adds to its argument", fabs(acc - (2.5 + got)) < 1e-12, "%.12g", acc);
    /* the sum over two runs equals the sum over one (same order, same bits) */
    CHECK("bernoulli: split runs give the same bits",
          loom_bernoulli_nll_acc(loom_bernoulli_nll_acc(0.0, l, x, 17), l + 17, x + 17, N - 17) == got,
          "differ");
    const float big[2] = {200.0f, -200.0f}, tx[2] = {0.0f, 1.0f};
    const double b = loom_bernoulli_nll_acc(0.0, big, tx, 2);
    CHECK("bernoulli: logits of +-200 give finite nll 400", fabs(b - 400.0) < 1e-9, "%g", b);
    loom_bernoulli_backward(d, l, x, N, 0.5f);
    loss_ctx c = {.kind = 0, .p = l, .x = x, .n = N};
    float half[N];
    for (int i = 0; i < N; i++) half[i] = 2.0f * d[i]; /* scale 0.5 -> gradient of the sum */
    GRADCHECK("bernoulli: backward = d nll / d logit (scale applied)", loss_of, &c, l, half, N);
    float inplace[N];
    memcpy(inplace, l, sizeof l);
    loom_bernoulli_backward(inplace, inplace, x, N, 0.5f);
    CHECK("bernoulli: backward in place", memcmp(inplace, d, sizeof d) == 0, "differs");
}

static void test_gaussian(loom_rng *r) {
    enum { N = 30 };
    float mu[N], x[N], d[N];
    for (int i = 0; i < N; i++) mu[i] = 2.0f * loom_rng_uniform(r) - 1.0f, x[i] = loom_rng_uniform(r);
    const float sd = 0.3f;
    double direct = 0.0;
    for (int i = 0; i < N; i++) {
        const double z = ((double)x[i] - mu[i]) / sd;
        direct += 0.5 * z * z + log((double)sd) + 0.5 * log(2.0 * 3.14159265358979323846);
    }
    const double got = loom_gaussian_nll_acc(0.0, mu, x, N, sd);
    CHECK("gaussian: nll = 0.5 z^2 + log sd + 0.5 log 2pi", fabs(got - direct) < 1e-9 * N,
          "%.12g vs %.12g", got, direct);
    /* the density integrates to 1: a Riemann sum of exp(-nll) over x */
    double integral = 0.0;
    for (int k = -4000; k <= 4000; k++) {
        const float m0 = 0.1f, xv = (float)k * 1e-3f;
        integral += exp(-loom_gaussian_nll_acc(0.0, &m0, &xv, 1, sd)) * 1e-3;
    }
    CHECK("gaussian: exp(-nll) integrates to 1", fabs(integral - 1.0) < 1e-6, "%.9g", integral);
    loom_gaussian_backward(d, mu, x, N, sd, 1.0f);
    loss_ctx c = {.kind = 1, .p = mu, .x = x, .n = N, .sd = sd};
    GRADCHECK("gaussian: backward = d nll / d mean", loss_of, &c, mu, d, N);
}

static void test_class(loom_rng *r) {
    enum { N = 6, K = 7 };
    float z[N * K], d[N * K];
    int32_t y[N];
    double nll[N];
    for (int i = 0; i < N * K; i++) z[i] = 4.0f * (2.0f * loom_rng_uniform(r) - 1.0f);
    for (int b = 0; b < N; b++) y[b] = (int32_t)loom_rng_below(r, K);
    const double got = loom_class_xent(d, nll, z, y, N, K, 1.0f);
    double direct = 0.0, worst = 0.0;
    for (int b = 0; b < N; b++) {
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[b * K + k]);
        const double l = -log(exp((double)z[b * K + y[b]]) / s);
        worst = fmax(worst, fabs(l - nll[b]));
        direct += l;
    }
    CHECK("class: nll = -log softmax[label] per example", worst < 1e-9, "worst %.3g", worst);
    CHECK("class: the sum is returned", fabs(got - direct) < 1e-9, "%.12g vs %.12g", got, direct);
    loss_ctx c = {.kind = 2, .p = z, .y = y, .n = N, .K = K};
    GRADCHECK("class: backward = d nll / d logit", loss_of, &c, z, d, N * K);
    float big[3] = {1000.0f, 0.0f, -1000.0f};
    const int32_t y0 = 2;
    const double lb = loom_class_xent(NULL, NULL, big, &y0, 1, 3, 1.0f);
    CHECK("class: logits of +-1000 give a finite nll of 2000", fabs(lb - 2000.0) < 1e-6, "%g", lb);
}

int main(void) {
    loom_rng r;
    loom_rng_seed(&r, 11);
    test_bernoulli(&r);
    test_gaussian(&r);
    test_class(&r);
    CHECK_DONE();
}
