/* Gradient checks for every layer in src/nn, plus the properties the models
 * rely on: mask-A causality of the tap convolution, and the incremental Row
 * LSTM step reproducing the whole-image forward pass. */
#include "gradcheck.h"
#include "testutil.h"
#include "loom.h"
#include "nn/nn.h"

#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- linear */
typedef struct {
    float *y, *x, *w, *b, *R;
    size_t n, k, m;
} lin_ctx;

static double lin_loss(void *p) {
    lin_ctx *c = p;
    loom_linear_forward(c->y, c->x, c->w, c->b, c->n, c->k, c->m);
    return gc_dot(c->y, c->R, c->n * c->m);
}

static void test_linear(loom_rng *r) {
    lin_ctx c = {.n = 5, .k = 3, .m = 4};
    c.x = test_randbuf(r, c.n * c.k, 1), c.w = test_randbuf(r, c.k * c.m, 1), c.b = test_randbuf(r, c.m, 1);
    c.R = test_randbuf(r, c.n * c.m, 1), c.y = test_zeros(c.n * c.m);
    float *dx = test_zeros(c.n * c.k), *dw = test_zeros(c.k * c.m), *db = test_zeros(c.m);
    lin_loss(&c);
    loom_linear_backward(dx, dw, db, c.R, c.x, c.w, c.n, c.k, c.m);
    GRADCHECK("linear dx", lin_loss, &c, c.x, dx, c.n * c.k);
    GRADCHECK("linear dw", lin_loss, &c, c.w, dw, c.k * c.m);
    GRADCHECK("linear db", lin_loss, &c, c.b, db, c.m);
    free(c.x), free(c.w), free(c.b), free(c.R), free(c.y), free(dx), free(dw), free(db);
}

/* ---------------------------------------------------------------- conv */
typedef struct {
    float *y, *col, *x, *w, *b, *R;
    loom_conv_dims d;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *c = p;
    loom_conv_forward(c->y, c->col, c->x, loom_mask_a7, c->w, c->b, c->d);
    return gc_dot(c->y, c->R, c->d.H * c->d.B * c->d.W * c->d.cout);
}

static void test_conv(loom_rng *r) {
    conv_ctx c = {.d = {.H = 5, .B = 2, .W = 6, .cin = 2, .cout = 3, .ntaps = LOOM_MASK_A7_TAPS}};
    size_t n = c.d.H * c.d.B * c.d.W, kc = c.d.ntaps * c.d.cin;
    c.x = test_randbuf(r, n * c.d.cin, 1), c.w = test_randbuf(r, kc * c.d.cout, 1);
    c.b = test_randbuf(r, c.d.cout, 1), c.R = test_randbuf(r, n * c.d.cout, 1);
    c.y = test_zeros(n * c.d.cout), c.col = test_zeros(n * kc);
    float *dx = test_zeros(n * c.d.cin), *dw = test_zeros(kc * c.d.cout), *db = test_zeros(c.d.cout);
    conv_loss(&c);
    loom_conv_backward(dx, dw, db, c.col, c.R, c.x, loom_mask_a7, c.w, c.d);
    GRADCHECK("conv mask-A dx", conv_loss, &c, c.x, dx, n * c.d.cin);
    GRADCHECK("conv mask-A dw", conv_loss, &c, c.w, dw, kc * c.d.cout);
    GRADCHECK("conv mask-A db", conv_loss, &c, c.b, db, c.d.cout);

    /* mask A: perturbing input pixel (b, i, j) changes outputs only at pixels
     * after it in raster order of the same image, and never at itself */
    float *y0 = test_zeros(n * c.d.cout);
    loom_conv_forward(y0, c.col, c.x, loom_mask_a7, c.w, c.b, c.d);
    int bad = 0, seen_after = 0;
    for (size_t i = 0; i < c.d.H; i++)
        for (size_t j = 0; j < c.d.W; j++) {
            size_t src = ((i * c.d.B + 1) * c.d.W + j) * c.d.cin; /* image b = 1 */
            c.x[src] += 1.0f;
            loom_conv_forward(c.y, c.col, c.x, loom_mask_a7, c.w, c.b, c.d);
            c.x[src] -= 1.0f;
            for (size_t ii = 0; ii < c.d.H; ii++)
                for (size_t bb = 0; bb < c.d.B; bb++)
                    for (size_t jj = 0; jj < c.d.W; jj++) {
                        size_t q = ((ii * c.d.B + bb) * c.d.W + jj) * c.d.cout;
                        int changed = 0;
                        for (size_t o = 0; o < c.d.cout; o++)
                            changed |= c.y[q + o] != y0[q + o];
                        int after = bb == 1 && (ii * c.d.W + jj) > (i * c.d.W + j);
                        if (changed && !after) bad++;
                        if (changed && after) seen_after++;
                    }
        }
    CHECK("conv mask-A causal (no output at or before the changed pixel moves)", bad == 0,
          "%d outputs at or before a perturbed pixel changed", bad);
    CHECK("conv mask-A sees the past (outputs after the changed pixel move)", seen_after > 0,
          "no output changed at all");
    free(y0);
    free(c.x), free(c.w), free(c.b), free(c.R), free(c.y), free(c.col), free(dx), free(dw),
        free(db);
}

/* ---------------------------------------------------------------- row lstm */
typedef struct {
    float *y, *x, *R, *scratch, *w_is, *b_is, *w_ss, *w_out, *b_out, *cls;
    loom_rowlstm_cache cache;
    loom_rowlstm_dims d;
} rl_ctx;

static loom_rowlstm_params rl_params(rl_ctx *c) {
    return (loom_rowlstm_params){c->w_is, c->b_is, c->w_ss, c->w_out, c->b_out, c->cls};
}

static double rl_loss(void *p) {
    rl_ctx *c = p;
    loom_rowlstm_forward(c->y, c->cache, c->scratch, c->x, rl_params(c), c->d);
    return gc_dot(c->y, c->R, c->d.H * c->d.B * c->d.W * c->d.C);
}

static void test_rowlstm(loom_rng *r) {
    rl_ctx c = {.d = {.H = 4, .B = 2, .W = 5, .C = 4, .h = 3}};
    const size_t n = c.d.H * c.d.B * c.d.W, C = c.d.C, h = c.d.h, g = 4 * h;
    c.x = test_randbuf(r, n * C, 1), c.R = test_randbuf(r, n * C, 1);
    c.w_is = test_randbuf(r, 2 * C * g, 0.8f), c.b_is = test_randbuf(r, g, 0.5f);
    c.w_ss = test_randbuf(r, 3 * h * g, 0.8f), c.w_out = test_randbuf(r, h * C, 0.8f);
    c.b_out = test_randbuf(r, C, 0.5f), c.cls = test_randbuf(r, c.d.B * g, 0.5f);
    c.y = test_zeros(n * C), c.scratch = test_zeros(loom_rowlstm_scratch_floats(c.d));
    c.cache = (loom_rowlstm_cache){test_zeros(n * g), test_zeros(n * h), test_zeros(n * h), test_zeros(n * h)};
    float *dx = test_zeros(n * C);
    loom_rowlstm_grads gr = {test_zeros(2 * C * g), test_zeros(g), test_zeros(3 * h * g), test_zeros(h * C),
                             test_zeros(C), test_zeros(c.d.B * g)};
    rl_loss(&c);
    loom_rowlstm_backward(dx, gr, c.scratch, c.R, c.x, rl_params(&c), c.cache, c.d);
    GRADCHECK("rowlstm dx", rl_loss, &c, c.x, dx, n * C);
    GRADCHECK("rowlstm dw_is", rl_loss, &c, c.w_is, gr.w_is, 2 * C * g);
    GRADCHECK("rowlstm db_is", rl_loss, &c, c.b_is, gr.b_is, g);
    GRADCHECK("rowlstm dw_ss", rl_loss, &c, c.w_ss, gr.w_ss, 3 * h * g);
    GRADCHECK("rowlstm dw_out", rl_loss, &c, c.w_out, gr.w_out, h * C);
    GRADCHECK("rowlstm db_out", rl_loss, &c, c.b_out, gr.b_out, C);
    GRADCHECK("rowlstm dcls", rl_loss, &c, c.cls, gr.cls, c.d.B * g);

    /* the incremental step reproduces the whole-image forward pass */
    rl_loss(&c);
    const size_t B = c.d.B, W = c.d.W;
    float *hrow = test_zeros(B * W * h), *crow = test_zeros(B * W * h), *hprev = test_zeros(B * W * h),
          *cprev = test_zeros(B * W * h), *rss = test_zeros(B * W * g), *col = test_zeros(B * W * 3 * h);
    float *xp = test_zeros(B * C), *xc = test_zeros(B * C), *yv = test_zeros(B * C), *hv = test_zeros(B * h),
          *cv = test_zeros(B * h), *st = test_zeros(B * (2 * C + g + h)), *gs = test_zeros(B * g),
          *cpv = test_zeros(B * h);
    double worst = 0.0;
    for (size_t i = 0; i < c.d.H; i++) {
        if (i > 0) loom_rowlstm_row_ss(rss, col, hprev, c.w_ss, B, W, h);
        for (size_t j = 0; j < W; j++) {
            for (size_t b = 0; b < B; b++) {
                size_t pix = (i * B + b) * W + j;
                memcpy(xc + b * C, c.x + pix * C, C * sizeof(float));
                if (j > 0) memcpy(xp + b * C, c.x + (pix - 1) * C, C * sizeof(float));
                else memset(xp + b * C, 0, C * sizeof(float));
                if (i > 0) memcpy(gs + b * g, rss + (b * W + j) * g, g * sizeof(float));
                memcpy(cpv + b * h, cprev + (b * W + j) * h, h * sizeof(float));
            }
            loom_rowlstm_step(yv, hv, cv, st, xp, xc, gs, i > 0 ? cpv : NULL, rl_params(&c), B,
                              C, h);
            for (size_t b = 0; b < B; b++) {
                size_t pix = (i * B + b) * W + j;
                for (size_t k = 0; k < C; k++)
                    worst = fmax(worst, fabs(yv[b * C + k] - c.y[pix * C + k]));
                memcpy(hrow + (b * W + j) * h, hv + b * h, h * sizeof(float));
                memcpy(crow + (b * W + j) * h, cv + b * h, h * sizeof(float));
            }
        }
        memcpy(hprev, hrow, B * W * h * sizeof(float));
        memcpy(cprev, crow, B * W * h * sizeof(float));
    }
    CHECK("rowlstm step == forward", worst < 1e-5, "max |diff| %.3g", worst);
    free(hrow), free(crow), free(hprev), free(cprev), free(rss), free(col), free(xp), free(xc),
        free(yv), free(hv), free(cv), free(st), free(gs), free(cpv);

    free(dx), free(gr.w_is), free(gr.b_is), free(gr.w_ss), free(gr.w_out), free(gr.b_out),
        free(gr.cls);
    free(c.x), free(c.R), free(c.w_is), free(c.b_is), free(c.w_ss), free(c.w_out),
        free(c.b_out), free(c.cls), free(c.y), free(c.scratch);
    free(c.cache.gates), free(c.cache.c), free(c.cache.tc), free(c.cache.hs);
}

/* ---------------------------------------------------------------- softmax */
typedef struct {
    float *z, *tmp;
    uint8_t *t;
    size_t n;
} sm_ctx;

static double sm_loss(void *p) {
    sm_ctx *c = p;
    memcpy(c->tmp, c->z, c->n * 256 * sizeof(float));
    return loom_softmax256_xent(c->tmp, NULL, c->t, c->n, 1.0f, 0);
}

static void test_softmax(loom_rng *r) {
    sm_ctx c = {.n = 3};
    c.z = test_randbuf(r, c.n * 256, 4), c.tmp = test_zeros(c.n * 256);
    c.t = malloc(c.n);
    c.t[0] = 0, c.t[1] = 255, c.t[2] = 77;
    /* exact value in double */
    double ref = 0.0;
    for (size_t p = 0; p < c.n; p++) {
        double mx = -1e30, s = 0.0;
        for (int k = 0; k < 256; k++) mx = fmax(mx, c.z[p * 256 + k]);
        for (int k = 0; k < 256; k++) s += exp(c.z[p * 256 + k] - mx);
        ref += log(s) + mx - c.z[p * 256 + c.t[p]];
    }
    double got = sm_loss(&c);
    CHECK("softmax256 nll value", fabs(got - ref) < 1e-5 * fabs(ref), "got %.9g want %.9g", got,
          ref);
    float *g = test_zeros(c.n * 256);
    memcpy(g, c.z, c.n * 256 * sizeof(float));
    loom_softmax256_xent(g, NULL, c.t, c.n, 1.0f, 1);
    GRADCHECK("softmax256 dlogits", sm_loss, &c, c.z, g, c.n * 256);
    free(c.z), free(c.tmp), free(c.t), free(g);
}

int main(void) {
    loom_rng r;
    loom_rng_seed(&r, 1234);
    test_linear(&r);
    test_conv(&r);
    test_rowlstm(&r);
    test_softmax(&r);
    CHECK_DONE();
}
