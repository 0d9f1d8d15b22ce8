/* Scaffolding shared by the PixelRNN-style models: pixelrnn.h. */
#include "pixelrnn.h"

#include "../nn/nn.h"

#include <string.h>

/* tgt (H, n, W) = imgs (n, H, W) in row-major order per row; u = tgt / 255 */
static void images_in(uint8_t *tgt, float *u, const uint8_t *imgs, size_t n, size_t H,
                      size_t W) {
    for (size_t i = 0; i < H; i++) /* (n, H, W) -> (H, n, W) */
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < W; j++) {
                uint8_t v = imgs[(b * H + i) * W + j];
                tgt[(i * n + b) * W + j] = v;
                u[(i * n + b) * W + j] = (float)v * (1.0f / 255.0f);
            }
}

/* logits (n, H, W, 256) = logits_hnw (H, n, W, 256) */
static void logits_out(float *logits, const float *logits_hnw, size_t n, size_t H,
                       size_t W) {
    for (size_t i = 0; i < H; i++) /* (H, n, W, 256) -> (n, H, W, 256) */
        for (size_t b = 0; b < n; b++)
            memcpy(logits + (b * H + i) * W * 256, logits_hnw + (i * n + b) * W * 256,
                   W * 256 * sizeof *logits);
}

/* nll_img (n) = sum over pixels of nllpix (H, n, W) */
static void sum_nll_img(double *nll_img, const double *nllpix, size_t n, size_t H, size_t W) {
    for (size_t b = 0; b < n; b++) nll_img[b] = 0.0;
    for (size_t i = 0; i < H; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < W; j++) nll_img[b] += nllpix[(i * n + b) * W + j];
}

/* X (H, n, W, C) = the 7x7 mask-A convolution of u (H, n, W); col (H*n*W, 24) */
static void in_forward(float *X, float *col, const float *u, const float *w,
                       const float *b, size_t H, size_t n, size_t W, size_t C) {
    const loom_conv_dims d = {H, n, W, 1, C, LOOM_MASK_A7_TAPS};
    loom_conv_forward(X, col, u, loom_mask_a7, w, b, d);
}

/* dw, db += the gradients of in_forward for dX (H, n, W, C) */
static void in_backward(float *dw, float *db, float *col, const float *dX, const float *u,
                        const float *w, size_t H, size_t n, size_t W, size_t C) {
    /* X = conv(u); u is the data, so no du */
    const loom_conv_dims d = {H, n, W, 1, C, LOOM_MASK_A7_TAPS};
    loom_conv_backward(NULL, dw, db, col, dX, u, loom_mask_a7, w, d);
}

/* col (n, 24) = the mask-A taps of every image at (i, j) of imgs (n, H, W):
 * pixels the sampler has already drawn */
static void taps(float *col, const uint8_t *imgs, size_t i, size_t j, size_t n, size_t H,
                 size_t W) {
    for (size_t b = 0; b < n; b++)
        for (size_t t = 0; t < LOOM_MASK_A7_TAPS; t++) {
            long y = (long)i + loom_mask_a7[t].dy, x = (long)j + loom_mask_a7[t].dx;
            col[b * LOOM_MASK_A7_TAPS + t] =
                (y < 0 || x < 0 || x >= (long)W) ? 0.0f
                    : (float)imgs[(b * H + (size_t)y) * W + (size_t)x] * (1.0f / 255.0f);
        }
}

void loom_pixelrnn_gather_cls(float *cls, const loom_model *m, size_t tab0, size_t stride,
                              const int32_t *labels, size_t n, size_t g) {
    for (size_t l = 0; l < m->cfg.layers; l++) {
        const float *tab = m->w + m->params[tab0 + l * stride].offset;
        for (size_t b = 0; b < n; b++)
            memcpy(cls + (l * n + b) * g, tab + (size_t)labels[b] * g, g * sizeof *cls);
    }
}

void loom_pixelrnn_scatter_cls(float *dtab, const float *dcls, const int32_t *labels, size_t n,
                               size_t g) {
    /* cls[b] = tab[labels[b]] */
    for (size_t b = 0; b < n; b++)
        for (size_t k = 0; k < g; k++) dtab[(size_t)labels[b] * g + k] += dcls[b * g + k];
}

/* logits (N, 256) = relu(relu(X) @ w1 + b1) @ w2 + b2; A = relu(X), Z = the
 * hidden layer after relu, both (N, C) */
static void head_forward(float *logits, float *Z, float *A, const float *X,
                         const float *w1, const float *b1, const float *w2,
                         const float *b2, size_t N, size_t C) {
    loom_relu_forward(A, X, N * C);
    loom_linear_forward(Z, A, w1, b1, N, C, C);
    loom_relu_forward(Z, Z, N * C);
    loom_linear_forward(logits, Z, w2, b2, N, C, 256);
}

/* dX (N, C) = the gradient wrt X (overwritten); dw1, db1, dw2, db2 +=.
 * dtmp (N, C) scratch; dX and dtmp must not alias. */
static void head_backward(float *dX, float *dw1, float *db1, float *dw2, float *db2,
                          float *dtmp, const float *dlogits, const float *Z,
                          const float *A, const float *w1, const float *w2, size_t N,
                          size_t C) {
    /* logits = Z @ w2 + b2;  Z = relu(A @ w1 + b1);  A = relu(X) */
    float *dZ = dX, *dA = dtmp;
    memset(dZ, 0, N * C * sizeof *dZ);
    loom_linear_backward(dZ, dw2, db2, dlogits, Z, w2, N, C, 256);
    loom_relu_backward(dZ, dZ, Z, N * C);
    memset(dA, 0, N * C * sizeof *dA);
    loom_linear_backward(dA, dw1, db1, dZ, A, w1, N, C, C);
    loom_relu_backward(dX, dA, A, N * C);
}

uint8_t loom_pixelrnn_draw(const float *z, float temperature, loom_rng *rng) {
    float e[256];
    float u = loom_rng_uniform(rng) * loom_softmax256(e, z, temperature);
    int last = 0;
    for (int k = 0; k < 256; k++) {
        if (e[k] > 0.0f) last = k;
        u -= e[k];
        if (u < 0.0f) return (uint8_t)k;
    }
    return (uint8_t)last; /* rounding left u >= 0: the last possible value */
}

/* ------------------------------------------------------------ training pass */

static size_t per_layer(const loom_pixelrnn_arch *a, const loom_config *c) {
    return a->layer_tensors + (c->nclasses > 0);
}
static const loom_param *layer_param(const loom_model *m, const loom_pixelrnn_arch *a, size_t l,
                                     size_t k) {
    return &m->params[2 + l * per_layer(a, &m->cfg) + k];
}
static const loom_param *head_param(const loom_model *m, const loom_pixelrnn_arch *a, size_t k) {
    return &m->params[2 + m->cfg.layers * per_layer(a, &m->cfg) + k];
}

size_t loom_pixelrnn_carve(loom_pixelrnn_ws *ws, void *base, const loom_pixelrnn_arch *a,
                           const loom_config *c, size_t n) {
    const size_t h = c->hidden, C = 2 * h, L = c->layers, N = c->height * n * c->width;
    const size_t g = a->cls_width * h;
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(nllpix, double, N);
    TAKE(u, float, N);
    TAKE(col_in, float, N * LOOM_MASK_A7_TAPS);
    TAKE(X, float, (L + 1) * N * C);
    TAKE(cache, float, L * a->cache_floats(c, n));
    TAKE(scratch, float, a->scratch_floats(c, n));
    TAKE(Z, float, N * C);
    TAKE(A, float, N * C);
    TAKE(logits, float, N * 256);
    TAKE(dA, float, N * C);
    TAKE(dB, float, N * C);
    TAKE(cls, float, c->nclasses ? L * n * g : 1);
    TAKE(dcls, float, c->nclasses ? n * g : 1);
    TAKE(tgt, uint8_t, N);
#undef TAKE
    return off;
}

/* forward pass up to ws->logits (H, n, W, 256) */
static void forward(const loom_model *m, const loom_pixelrnn_arch *a, const loom_pixelrnn_ws *ws,
                    const uint8_t *imgs, const int32_t *labels, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, h = c->hidden, C = 2 * h, L = c->layers;
    const size_t N = H * n * W, g = a->cls_width * h, cache = a->cache_floats(c, n);
    const int cond = c->nclasses > 0 && labels;
    const float *w = m->w;

    images_in(ws->tgt, ws->u, imgs, n, H, W);
    if (cond)
        loom_pixelrnn_gather_cls(ws->cls, m, 2 + a->layer_tensors, per_layer(a, c), labels, n, g);
    in_forward(ws->X, ws->col_in, ws->u, w + m->params[0].offset,
                             w + m->params[1].offset, H, n, W, C);
    for (size_t l = 0; l < L; l++)
        a->forward(ws->X + (l + 1) * N * C, ws->cache + l * cache, ws->scratch, ws->X + l * N * C,
                   cond ? ws->cls + l * n * g : NULL, m, l, n);
    head_forward(ws->logits, ws->Z, ws->A, ws->X + L * N * C,
                               w + head_param(m, a, 0)->offset, w + head_param(m, a, 1)->offset,
                               w + head_param(m, a, 2)->offset, w + head_param(m, a, 3)->offset,
                               N, C);
}

void loom_pixelrnn_shard(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp, float *grad,
                         double *nll_img, const uint8_t *imgs, const int32_t *labels, size_t n,
                         float scale) {
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, h = c->hidden, C = 2 * h, L = c->layers;
    const size_t N = H * n * W, g = a->cls_width * h, cache = a->cache_floats(c, n);
    const int cond = c->nclasses > 0 && labels;
    loom_pixelrnn_ws ws;
    loom_pixelrnn_carve(&ws, wsp, a, c, n);
    const float *w = m->w;

    forward(m, a, &ws, imgs, labels, n);
    loom_softmax256_xent(ws.logits, ws.nllpix, ws.tgt, N, scale, grad != NULL);
    sum_nll_img(nll_img, ws.nllpix, n, H, W);
    if (!grad) return;

    float *dy = ws.dA, *dx = ws.dB;
    head_backward(dy, grad + head_param(m, a, 0)->offset,
                                grad + head_param(m, a, 1)->offset,
                                grad + head_param(m, a, 2)->offset,
                                grad + head_param(m, a, 3)->offset, dx, ws.logits, ws.Z, ws.A,
                                w + head_param(m, a, 0)->offset, w + head_param(m, a, 2)->offset,
                                N, C);
    for (size_t l = L; l-- > 0;) {
        if (cond) memset(ws.dcls, 0, n * g * sizeof *ws.dcls);
        memset(dx, 0, N * C * sizeof *dx);
        a->backward(dx, grad, cond ? ws.dcls : NULL, ws.scratch, dy, ws.X + l * N * C,
                    cond ? ws.cls + l * n * g : NULL, ws.cache + l * cache, m, l, n);
        if (cond)
            loom_pixelrnn_scatter_cls(grad + layer_param(m, a, l, a->layer_tensors)->offset,
                                      ws.dcls, labels, n, g);
        float *t = dy; dy = dx; dx = t;
    }
    in_backward(grad + m->params[0].offset, grad + m->params[1].offset, ws.col_in,
                              dy, ws.u, w + m->params[0].offset, H, n, W, C);
}

void loom_pixelrnn_logits(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp,
                          float *logits, const uint8_t *imgs, const int32_t *labels, size_t n) {
    loom_pixelrnn_ws ws;
    loom_pixelrnn_carve(&ws, wsp, a, &m->cfg, n);
    forward(m, a, &ws, imgs, labels, n);
    logits_out(logits, ws.logits, n, m->cfg.height, m->cfg.width);
}

size_t loom_pixelrnn_layout_in(loom_param *out, size_t n, const loom_config *c) {
    const size_t C = 2 * c->hidden;
    n = loom_param_add_fanin(out, n, 1, LOOM_MASK_A7_TAPS, C, "in.weight", 0);
    return loom_param_add_fanin(out, n, 1, C, 0, "in.bias", 0);
}

size_t loom_pixelrnn_layout_head(loom_param *out, size_t n, const loom_config *c) {
    const size_t C = 2 * c->hidden;
    n = loom_param_add_fanin(out, n, 1, C, C, "head1.weight", 0);
    n = loom_param_add_fanin(out, n, 1, C, 0, "head1.bias", 0);
    n = loom_param_add_fanin(out, n, 1, C, 256, "head2.weight", 0);
    return loom_param_add_fanin(out, n, 1, 256, 0, "head2.bias", 0);
}

/* ------------------------------------------------------------ sampling */

void loom_pixelrnn_classes(float *cls, const loom_model *m, const loom_pixelrnn_arch *a,
                           const int32_t *labels, size_t n) {
    loom_pixelrnn_gather_cls(cls, m, 2 + a->layer_tensors, per_layer(a, &m->cfg), labels, n,
                             a->cls_width * m->cfg.hidden);
}

void loom_pixelrnn_sample_in(float *x0, float *col, const loom_model *m, const uint8_t *imgs,
                             size_t i, size_t j, size_t n) {
    const loom_config *c = &m->cfg;
    taps(col, imgs, i, j, n, c->height, c->width);
    loom_linear_forward(x0, col, m->w + m->params[0].offset, m->w + m->params[1].offset, n,
                        LOOM_MASK_A7_TAPS, 2 * c->hidden);
}

void loom_pixelrnn_sample_out(uint8_t *imgs, float *logits, float *Z, float *A, const float *X,
                              const loom_model *m, const loom_pixelrnn_arch *a, size_t i,
                              size_t j, size_t n, size_t keep, float temperature,
                              loom_rng *rngs) {
    const size_t H = m->cfg.height, W = m->cfg.width;
    const float *w = m->w;
    head_forward(logits, Z, A, X, w + head_param(m, a, 0)->offset,
                               w + head_param(m, a, 1)->offset, w + head_param(m, a, 2)->offset,
                               w + head_param(m, a, 3)->offset, n, 2 * m->cfg.hidden);
    if (i * W + j >= keep)
        for (size_t b = 0; b < n; b++)
            imgs[(b * H + i) * W + j] = loom_pixelrnn_draw(logits + b * 256, temperature, &rngs[b]);
}
