/* Scaffolding shared by the PixelRNN-style models: pixelrnn.h. */
#include "pixelrnn.h"

#include "../nn/nn.h"

#include <string.h>

void loom_pixelrnn_images_in(uint8_t *tgt, float *u, const uint8_t *imgs, size_t n, size_t H,
                             size_t W) {
    for (size_t i = 0; i < H; i++) /* (n, H, W) -> (H, n, W) */
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < W; j++) {
                uint8_t v = imgs[(b * H + i) * W + j];
                tgt[(i * n + b) * W + j] = v;
                u[(i * n + b) * W + j] = (float)v * (1.0f / 255.0f);
            }
}

void loom_pixelrnn_logits_out(float *logits, const float *logits_hnw, size_t n, size_t H,
                              size_t W) {
    for (size_t i = 0; i < H; i++) /* (H, n, W, 256) -> (n, H, W, 256) */
        for (size_t b = 0; b < n; b++)
            memcpy(logits + (b * H + i) * W * 256, logits_hnw + (i * n + b) * W * 256,
                   W * 256 * sizeof *logits);
}

void loom_pixelrnn_nll_img(double *nll_img, const double *nllpix, size_t n, size_t H, size_t W) {
    for (size_t b = 0; b < n; b++) nll_img[b] = 0.0;
    for (size_t i = 0; i < H; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < W; j++) nll_img[b] += nllpix[(i * n + b) * W + j];
}

void loom_pixelrnn_in_forward(float *X, float *col, const float *u, const float *w,
                              const float *b, size_t H, size_t n, size_t W, size_t C) {
    const loom_conv_dims d = {H, n, W, 1, C, LOOM_MASK_A7_TAPS};
    loom_conv_forward(X, col, u, loom_mask_a7, w, b, d);
}

void loom_pixelrnn_in_backward(float *dw, float *db, float *col, const float *dX, const float *u,
                               const float *w, size_t H, size_t n, size_t W, size_t C) {
    /* X = conv(u); u is the data, so no du */
    const loom_conv_dims d = {H, n, W, 1, C, LOOM_MASK_A7_TAPS};
    loom_conv_backward(NULL, dw, db, col, dX, u, loom_mask_a7, w, d);
}

void loom_pixelrnn_taps(float *col, const uint8_t *imgs, size_t i, size_t j, size_t n, size_t H,
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

void loom_pixelrnn_head_forward(float *logits, float *Z, float *A, const float *X,
                                const float *w1, const float *b1, const float *w2,
                                const float *b2, size_t N, size_t C) {
    loom_relu_forward(A, X, N * C);
    loom_linear_forward(Z, A, w1, b1, N, C, C);
    loom_relu_forward(Z, Z, N * C);
    loom_linear_forward(logits, Z, w2, b2, N, C, 256);
}

void loom_pixelrnn_head_backward(float *dX, float *dw1, float *db1, float *dw2, float *db2,
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
