/* The ConvLSTM layer: gradient checks of its convolution and of the layer
 * (input, initial state, weights, bias), both back-ends of the convolution
 * against each other, and causality in time. */
#include "gradcheck.h"
#include "testutil.h"
#include "gemm.h"
#include "nn/convlstm.h"

#include <stdlib.h>
#include <string.h>

static float maxdiff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

/* ------------------------------------------------------ conv2d back-ends */
static void test_backends(loom_rng *r) {
    loom_conv2d_dims d = {.n = 6, .h = 5, .w = 7, .cin = 9, .cout = 12, .k = 5};
    const size_t nx = d.n * d.h * d.w * d.cin, ny = d.n * d.h * d.w * d.cout, nw = d.cout * d.k * d.k * d.cin;
    float *x = test_randbuf(r, nx, 1), *wt = test_randbuf(r, nw, 0.3f), *dy = test_randbuf(r, ny, 1);
    float *sc = test_zeros(loom_conv2d_scratch_floats(d));
    float *y[2], *dx[2], *dw[2];
    loom_conv2d_cache cc[2];
    loom_conv2d_cache_init(&cc[0], LOOM_CONV_IM2COL);
    loom_conv2d_cache_init(&cc[1], LOOM_CONV_DNNL);
    for (int b = 0; b < 2; b++) {
        y[b] = test_zeros(ny), dx[b] = test_zeros(nx), dw[b] = test_zeros(nw);
        loom_conv2d_cache_new_weights(&cc[b]);
        loom_conv2d_forward(y[b], x, wt, d, &cc[b], sc);
        loom_conv2d_backward_data(dx[b], dy, wt, d, &cc[b], sc);
        loom_conv2d_backward_weights(dw[b], x, dy, d, &cc[b], sc);
        loom_conv2d_backward_weights(dw[b], x, dy, d, &cc[b], sc); /* accumulates */
    }
    /* the direct sum at a few outputs, with zero padding */
    double worst = 0;
    for (size_t o = 0; o < ny; o += 37) {
        size_t co = o % d.cout, q = o / d.cout, xx = q % d.w, yy = (q / d.w) % d.h, b = q / (d.w * d.h);
        double s = 0;
        for (size_t ky = 0; ky < d.k; ky++)
            for (size_t kx = 0; kx < d.k; kx++) {
                long sy = (long)yy + (long)ky - 2, sx = (long)xx + (long)kx - 2;
                if (sy < 0 || sx < 0 || sy >= (long)d.h || sx >= (long)d.w) continue;
                for (size_t ci = 0; ci < d.cin; ci++)
                    s += (double)wt[((co * d.k + ky) * d.k + kx) * d.cin + ci] *
                         x[((b * d.h + (size_t)sy) * d.w + (size_t)sx) * d.cin + ci];
            }
        worst = fmax(worst, fabs(s - y[0][o]));
    }
    CHECK("conv2d im2col forward = the direct sum", worst < 1e-4, "max |diff| %g", worst);
#ifdef LOOM_HAVE_DNNL
    const char *want = "onednn";
#else
    const char *want = "im2col";
#endif
    CHECK("conv2d backend onednn selected", strcmp(loom_conv2d_backend_name(&cc[1]), want) == 0, "%s",
          loom_conv2d_backend_name(&cc[1]));
    float ey = maxdiff(y[0], y[1], ny), ex = maxdiff(dx[0], dx[1], nx), ew = maxdiff(dw[0], dw[1], nw);
    CHECK("conv2d onednn = im2col forward", ey < 1e-4, "max |diff| %g", ey);
    CHECK("conv2d onednn = im2col backward data", ex < 1e-4, "max |diff| %g", ex);
    CHECK("conv2d onednn = im2col backward weights", ew < 1e-3, "max |diff| %g", ew);
    /* new weights: the cached reordered copy must be refreshed */
    for (size_t i = 0; i < nw; i++) wt[i] *= -1.0f;
    for (int b = 0; b < 2; b++) {
        loom_conv2d_cache_new_weights(&cc[b]);
        loom_conv2d_forward(y[b], x, wt, d, &cc[b], sc);
    }
    ey = maxdiff(y[0], y[1], ny);
    CHECK("conv2d onednn follows new weights", ey < 1e-4, "max |diff| %g", ey);
    for (int b = 0; b < 2; b++) free(y[b]), free(dx[b]), free(dw[b]), loom_conv2d_cache_release(&cc[b]);
    free(x), free(wt), free(dy), free(sc);
}

/* bf16 (the thread's products in bf16 on oneDNN): oneDNN's bf16 primitives
 * against the im2col path, whose loom_gemm rounds the same inputs; both
 * accumulate in fp32, so they agree to summation order, and both differ from
 * fp32 by the rounding */
static void test_bf16(loom_rng *r) {
#ifdef LOOM_HAVE_DNNL
    if (loom_gemm_unavailable(LOOM_GEMM_ONEDNN, LOOM_PREC_BF16)) {
        printf("SKIP conv2d bf16: %s\n", loom_gemm_unavailable(LOOM_GEMM_ONEDNN, LOOM_PREC_BF16));
        return;
    }
    loom_conv2d_dims d = {.n = 4, .h = 6, .w = 5, .cin = 24, .cout = 32, .k = 3};
    const size_t nx = d.n * d.h * d.w * d.cin, ny = d.n * d.h * d.w * d.cout, nw = d.cout * d.k * d.k * d.cin;
    float *x = test_randbuf(r, nx, 1), *wt = test_randbuf(r, nw, 0.3f), *dy = test_randbuf(r, ny, 1);
    float *sc = test_zeros(loom_conv2d_scratch_floats(d));
    float *y[3], *dx[3], *dw[3]; /* im2col bf16, oneDNN bf16, oneDNN fp32 */
    loom_conv2d_cache cc[3];
    const loom_gemm_mode bf = {LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, NULL, NULL, 0, 0};
    const loom_gemm_mode fp = {LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, NULL, NULL, 0, 0};
    const loom_gemm_mode old = loom_gemm_mode_get();
    for (int b = 0; b < 3; b++) {
        loom_conv2d_cache_init(&cc[b], b ? LOOM_CONV_DNNL : LOOM_CONV_IM2COL);
        loom_gemm_mode_set(b < 2 ? bf : fp);
        y[b] = test_zeros(ny), dx[b] = test_zeros(nx), dw[b] = test_zeros(nw);
        for (int rep = 0; rep < 2; rep++) { /* new weights between: the bf16 copy is made again */
            if (rep)
                for (size_t i = 0; i < nw; i++) wt[i] *= -0.5f;
            loom_conv2d_cache_new_weights(&cc[b]);
            loom_conv2d_forward(y[b], x, wt, d, &cc[b], sc);
            loom_conv2d_backward_data(dx[b], dy, wt, d, &cc[b], sc);
            loom_conv2d_backward_weights(dw[b], x, dy, d, &cc[b], sc); /* accumulates */
        }
        for (size_t i = 0; i < nw; i++) wt[i] *= -2.0f; /* back to the first weights */
    }
    loom_gemm_mode_set(old);
    CHECK("conv2d bf16 runs oneDNN's bf16 primitives", loom_conv2d_cache_plans(&cc[1], true) == 3,
          "%zu bf16 plans (fp32: %zu)", loom_conv2d_cache_plans(&cc[1], true), loom_conv2d_cache_plans(&cc[1], false));
    float ey = maxdiff(y[0], y[1], ny), ex = maxdiff(dx[0], dx[1], nx), ew = maxdiff(dw[0], dw[1], nw);
    CHECK("conv2d bf16 onednn = im2col forward", ey < 1e-4, "max |diff| %g", ey);
    CHECK("conv2d bf16 onednn = im2col backward data", ex < 1e-4, "max |diff| %g", ex);
    CHECK("conv2d bf16 onednn = im2col backward weights", ew < 2e-4, "max |diff| %g", ew);
    /* the rounding is there: bf16 keeps 8 bits, so products of sums of ~200
     * terms of size ~0.3 move by ~1e-2 */
    float fy = maxdiff(y[1], y[2], ny), fx = maxdiff(dx[1], dx[2], nx), fw = maxdiff(dw[1], dw[2], nw);
    CHECK("conv2d bf16 differs from fp32 (forward, backward data, weights)", fy > 1e-3 && fx > 1e-3 && fw > 1e-3,
          "max |diff| %g %g %g", fy, fx, fw);
    for (int b = 0; b < 3; b++) free(y[b]), free(dx[b]), free(dw[b]), loom_conv2d_cache_release(&cc[b]);
    free(x), free(wt), free(dy), free(sc);
#else
    (void)r;
    printf("SKIP conv2d bf16: built without oneDNN\n");
#endif
}

/* ---------------------------------------------------------------- layer */
typedef struct {
    loom_convlstm_dims d;
    float *hs, *cache, *x, *h0, *c0, *wt, *b, *peep, *R, *sc; /* peep: NULL or (h, w, 3 hid) */
    loom_conv2d_cache *cc;
} cl_ctx;

static double cl_loss(void *p) {
    cl_ctx *c = p;
    const size_t P = c->d.B * c->d.h * c->d.w;
    loom_conv2d_cache_new_weights(c->cc);
    loom_convlstm_forward(c->hs, c->cache, c->x, c->h0, c->c0, c->wt, c->b, c->peep, c->d, c->cc, c->sc);
    /* the states of every step and the final cell */
    const float *cT = c->cache + c->d.T * P * (c->d.cin + 5 * c->d.hid) + (c->d.T - 1) * P * c->d.hid;
    return gc_dot(c->hs, c->R, c->d.T * P * c->d.hid) + gc_dot(cT, c->R, P * c->d.hid);
}

static void test_layer(loom_rng *r, loom_conv_backend be, const char *tag, int peep) {
    cl_ctx c = {.d = {.T = 3, .B = 2, .h = 4, .w = 3, .cin = 2, .hid = 3, .k = 3}};
    loom_conv2d_cache cc;
    loom_conv2d_cache_init(&cc, be);
    c.cc = &cc;
    const size_t P = c.d.B * c.d.h * c.d.w, H = c.d.hid, X = c.d.cin + H, N = c.d.T * P;
    const size_t nw = 4 * H * c.d.k * c.d.k * X;
    c.x = test_randbuf(r, N * c.d.cin, 1), c.h0 = test_randbuf(r, P * H, 0.5f), c.c0 = test_randbuf(r, P * H, 0.5f);
    c.wt = test_randbuf(r, nw, 0.4f), c.b = test_randbuf(r, 4 * H, 0.5f), c.R = test_randbuf(r, N * H, 1);
    const size_t np = c.d.h * c.d.w * 3 * H;
    c.peep = peep ? test_randbuf(r, np, 1.0f) : NULL;
    float *dp = peep ? test_zeros(np) : NULL;
    c.hs = test_zeros(N * H), c.cache = test_zeros(loom_convlstm_cache_floats(c.d));
    c.sc = test_zeros(loom_convlstm_scratch_floats(c.d));
    float *dx = test_zeros(N * c.d.cin), *dh0 = test_zeros(P * H), *dc0 = test_zeros(P * H);
    float *dw = test_zeros(nw), *db = test_zeros(4 * H), *dcT = test_zeros(P * H);
    memcpy(dcT, c.R, P * H * sizeof *dcT);
    cl_loss(&c);
    loom_convlstm_backward(dx, dh0, dc0, dw, db, dp, c.R, NULL, dcT, c.cache, c.c0, c.wt, c.peep, c.d, &cc, c.sc);
    char name[96];
    snprintf(name, sizeof name, "convlstm (%s) dx", tag);
    GRADCHECK(name, cl_loss, &c, c.x, dx, N * c.d.cin);
    snprintf(name, sizeof name, "convlstm (%s) dh0", tag);
    GRADCHECK(name, cl_loss, &c, c.h0, dh0, P * H);
    snprintf(name, sizeof name, "convlstm (%s) dc0", tag);
    GRADCHECK(name, cl_loss, &c, c.c0, dc0, P * H);
    snprintf(name, sizeof name, "convlstm (%s) dw", tag);
    GRADCHECK(name, cl_loss, &c, c.wt, dw, nw);
    snprintf(name, sizeof name, "convlstm (%s) dbias", tag);
    GRADCHECK(name, cl_loss, &c, c.b, db, 4 * H);
    if (peep) {
        snprintf(name, sizeof name, "convlstm (%s) dpeep", tag);
        GRADCHECK(name, cl_loss, &c, c.peep, dp, np);
    }

    /* causality in time: changing x_t leaves h_0..h_{t-1} unchanged */
    float *keep = malloc(N * H * sizeof *keep);
    cl_loss(&c);
    memcpy(keep, c.hs, N * H * sizeof *keep);
    c.x[2 * P * c.d.cin + 5] += 1.0f;
    cl_loss(&c);
    int before = memcmp(keep, c.hs, 2 * P * H * sizeof *keep) == 0;
    int after = memcmp(keep + 2 * P * H, c.hs + 2 * P * H, P * H * sizeof *keep) != 0;
    snprintf(name, sizeof name, "convlstm (%s) causal in time", tag);
    CHECK(name, before && after, "earlier steps changed %d, the step itself changed %d", !before, after);
    free(keep);
    free(c.x), free(c.h0), free(c.c0), free(c.wt), free(c.b), free(c.R), free(c.hs), free(c.cache), free(c.sc);
    free(dx), free(dh0), free(dc0), free(dw), free(db), free(dcT), free(c.peep), free(dp);
    loom_conv2d_cache_release(&cc);
}

int main(void) {
    loom_rng r;
    loom_rng_seed(&r, 7);
    test_backends(&r);
    test_bf16(&r);
    test_layer(&r, LOOM_CONV_IM2COL, "im2col", 0);
    test_layer(&r, LOOM_CONV_DNNL, "onednn", 0);
    test_layer(&r, LOOM_CONV_IM2COL, "im2col, peepholes", 1);
    test_layer(&r, LOOM_CONV_DNNL, "onednn, peepholes", 1);
    CHECK_DONE();
}
