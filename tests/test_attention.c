/* DRAW attention (src/nn/attention.c): gradient checks through the filterbank,
 * read and write, and the geometry landing where a hand-set decoder state puts it. */
#include "gradcheck.h"
#include "testutil.h"
#include "loom.h"
#include "nn/attention.h"
#include "nn/nn.h"

#include <stdlib.h>
#include <string.h>


/* L = sum(R1 * read(x; p)) + sum(R2 * write(w; p)) */
typedef struct {
    loom_attn_dims d;
    float *p, *x, *w, *R1, *R2;
    float *Fx, *Fy, *gm, *r, *o, *tr, *tw;
} attn_ctx;

static double attn_loss(void *v) {
    attn_ctx *c = v;
    const loom_attn_dims d = c->d;
    loom_filterbank_forward(c->Fx, c->Fy, c->gm, c->p, d);
    loom_attn_read_forward(c->r, c->tr, c->x, c->Fx, c->Fy, c->gm, d);
    loom_attn_write_forward(c->o, c->tw, c->w, c->Fx, c->Fy, c->gm, d);
    return gc_dot(c->r, c->R1, d.n * d.N * d.N) + gc_dot(c->o, c->R2, d.n * d.H * d.W);
}

static void test_gradients(loom_rng *rng, size_t N, const char *tag) {
    attn_ctx c = {.d = {.n = 2, .H = 5, .W = 6, .N = N}};
    const loom_attn_dims d = c.d;
    const size_t nx = d.n * d.H * d.W, nw = d.n * N * N;
    c.p = test_randbuf(rng, d.n * 5, 0.5f), c.x = test_randbuf(rng, nx, 1), c.w = test_randbuf(rng, nw, 1);
    c.R1 = test_randbuf(rng, nw, 1), c.R2 = test_randbuf(rng, nx, 1);
    c.Fx = test_zeros(d.n * N * d.W), c.Fy = test_zeros(d.n * N * d.H), c.gm = test_zeros(d.n);
    c.r = test_zeros(nw), c.o = test_zeros(nx), c.tr = test_zeros(d.n * d.H * N), c.tw = test_zeros(d.n * N * d.W);
    float *dp = test_zeros(d.n * 5), *dx = test_zeros(nx), *dw = test_zeros(nw), *dgm = test_zeros(d.n);
    float *dFx = test_zeros(d.n * N * d.W), *dFy = test_zeros(d.n * N * d.H);
    float *dtmp = test_zeros(d.H * d.W + d.H * N + N * d.W);
    attn_loss(&c);
    loom_attn_read_backward(dx, dFx, dFy, dgm, dtmp, c.R1, c.r, c.tr, c.x, c.Fx, c.Fy, c.gm, d);
    loom_attn_write_backward(dw, dFx, dFy, dgm, dtmp, c.R2, c.o, c.tw, c.w, c.Fx, c.Fy, c.gm, d);
    loom_filterbank_backward(dp, dFx, dFy, dgm, c.p, c.Fx, c.Fy, d);
    char name[96];
    snprintf(name, sizeof name, "attention %s: d/d(attention parameters) through the filterbank", tag);
    GRADCHECK(name, attn_loss, &c, c.p, dp, d.n * 5);
    snprintf(name, sizeof name, "attention %s: read d/dx", tag);
    GRADCHECK(name, attn_loss, &c, c.x, dx, nx);
    snprintf(name, sizeof name, "attention %s: write d/dw", tag);
    GRADCHECK(name, attn_loss, &c, c.w, dw, nw);
    free(c.p), free(c.x), free(c.w), free(c.R1), free(c.R2), free(c.Fx), free(c.Fy), free(c.gm);
    free(c.r), free(c.o), free(c.tr), free(c.tw);
    free(dp), free(dx), free(dw), free(dgm), free(dFx), free(dFy), free(dtmp);
}

/* A hand-set "decoder state" h through a linear map to p: the grid must land
 * where the formulas say, reading finds a lone bright pixel there and only
 * there, and writing a patch puts its mass there. */
static void test_geometry(void) {
    const size_t H = 20, W = 16, N = 1;
    const float want_gx = 5.0f, want_gy = 12.0f;
    /* p = h @ A + bias with h = (1, 0): only the first row of A matters */
    float h[2] = {1.0f, 0.0f}, A[10] = {0}, bias[5] = {0}, p[5];
    A[0] = 2.0f * want_gx / (float)(W + 1) - 1.0f; /* gx = (W+1)/2 (p0+1) */
    A[1] = 2.0f * want_gy / (float)(H + 1) - 1.0f;
    A[2] = logf(0.25f); /* sigma^2 = 0.25: sharp filters */
    A[4] = logf(2.0f);  /* gamma = 2 */
    loom_linear_forward(p, h, A, bias, 1, 2, 5);
    loom_attn_geom g = loom_attn_geometry(p, H, W, N);
    CHECK("geometry: centre, variance and gamma from the decoder state",
          fabsf(g.gx - want_gx) < 1e-5f && fabsf(g.gy - want_gy) < 1e-5f && fabsf(g.s2 - 0.25f) < 1e-6f &&
              fabsf(g.gm - 2.0f) < 1e-6f,
          "gx %g gy %g s2 %g gamma %g", g.gx, g.gy, g.s2, g.gm);

    const float p0[5] = {0, 0, 0, 0, 0};
    loom_attn_geom g0 = loom_attn_geometry(p0, H, W, 4);
    /* p = 0: centred grid whose outer filters sit on the first and last pixel of the longer side */
    CHECK("geometry: p = 0 centres the grid and spans the image",
          fabsf(g0.gx - 8.5f) < 1e-6f && fabsf(g0.gy - 10.5f) < 1e-6f &&
              fabsf(g0.gy + (0.5f - 2.0f) * g0.d - 1.0f) < 1e-5f &&
              fabsf(g0.gy + (3.5f - 2.0f) * g0.d - 20.0f) < 1e-5f,
          "gx %g gy %g d %g", g0.gx, g0.gy, g0.d);

    const loom_attn_dims d = {1, H, W, N};
    float Fx[16], Fy[20], gm, r, tmp[20], img[320], o[320], tw[16], w = 1.0f;
    loom_filterbank_forward(Fx, Fy, &gm, p, d);
    memset(img, 0, sizeof img);
    img[(12 - 1) * W + (5 - 1)] = 1.0f; /* the pixel at row 12, column 5 (1-based) */
    loom_attn_read_forward(&r, tmp, img, Fx, Fy, &gm, d);
    float on = r;
    memset(img, 0, sizeof img);
    img[(12 - 1) * W + (9 - 1)] = 1.0f; /* 4 columns away */
    loom_attn_read_forward(&r, tmp, img, Fx, Fy, &gm, d);
    /* a filter centred on an integer pixel with s2 = 1/4 puts 1 / sum_k exp(-2 k^2) on it */
    double w0 = 0.0;
    for (int k = -20; k <= 20; k++) w0 += exp(-2.0 * k * k);
    w0 = 1.0 / w0;
    CHECK("read: the glimpse sees the pixel under the grid and not one 4 columns away",
          fabs(on - 2.0 * w0 * w0) < 1e-5 && r < 1e-6f, "on %g (want %g) off %g", on, 2.0 * w0 * w0, r);
    loom_attn_write_forward(o, tw, &w, Fx, Fy, &gm, d);
    size_t best = 0;
    float total = 0.0f;
    for (size_t k = 0; k < H * W; k++) {
        total += o[k];
        if (o[k] > o[best]) best = k;
    }
    CHECK("write: the patch lands at row 12, column 5 with mass 1/gamma",
          best == (12 - 1) * W + (5 - 1) && fabsf(total - 0.5f) < 1e-4f, "argmax %zu total %g", best, total);

    /* a grid far off the image: the normaliser floor keeps everything finite */
    float far[5] = {40.0f, -40.0f, logf(0.01f), 0.0f, 0.0f}, Fx2[16], Fy2[20], gm2;
    loom_filterbank_forward(Fx2, Fy2, &gm2, far, d);
    int finite = 1;
    for (size_t k = 0; k < W; k++) finite &= isfinite(Fx2[k]);
    for (size_t k = 0; k < H; k++) finite &= isfinite(Fy2[k]);
    CHECK("filterbank: a grid off the image stays finite", finite, "non-finite filter");
}

int main(void) {
    loom_rng rng;
    loom_rng_seed(&rng, 11);
    test_gradients(&rng, 3, "N=3");
    test_gradients(&rng, 1, "N=1");
    test_geometry();
    CHECK_DONE();
}
