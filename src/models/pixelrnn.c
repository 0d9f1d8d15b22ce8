/* Scaffolding shared by the PixelRNN-style models: pixelrnn.h. */
#include "pixelrnn.h"

#include "../nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The colour input convolution's taps: mask A's 24 taps, then the centre,
 * where the weight mask lets group g see the channels < g only. In raster
 * order of the 7x7 kernel these are its first 25 taps. */
static const loom_tap taps_rgb[LOOM_MASK_A7_TAPS + 1] = {
    {-3, -3}, {-3, -2}, {-3, -1}, {-3, 0}, {-3, 1}, {-3, 2}, {-3, 3},
    {-2, -3}, {-2, -2}, {-2, -1}, {-2, 0}, {-2, 1}, {-2, 2}, {-2, 3},
    {-1, -3}, {-1, -2}, {-1, -1}, {-1, 0}, {-1, 1}, {-1, 2}, {-1, 3},
    {0, -3},  {0, -2},  {0, -1},  {0, 0},
};

static size_t nch(const loom_config *c) { return loom_channels(c); }
static size_t ntaps(const loom_config *c) { return nch(c) == 1 ? LOOM_MASK_A7_TAPS : LOOM_MASK_A7_TAPS + 1; }
static const loom_tap *in_taps(const loom_config *c) { return nch(c) == 1 ? loom_mask_a7 : taps_rgb; }
/* rows of in.weight: taps x channels */
static size_t in_rows(const loom_config *c) { return ntaps(c) * nch(c); }

/* tgt (H, n, W, ch) = imgs (n, ch, H, W) pixel-major; u = tgt / 255 */
static void images_in(uint8_t *tgt, float *u, const uint8_t *imgs, size_t n, size_t H,
                      size_t W, size_t ch) {
    for (size_t i = 0; i < H; i++) /* (n, ch, H, W) -> (H, n, W, ch) */
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < W; j++)
                for (size_t c = 0; c < ch; c++) {
                    uint8_t v = imgs[((b * ch + c) * H + i) * W + j];
                    tgt[((i * n + b) * W + j) * ch + c] = v;
                    u[((i * n + b) * W + j) * ch + c] = (float)v * (1.0f / 255.0f);
                }
}

/* logits (n, H, W, ch*256) = logits_hnw (H, n, W, ch*256) */
static void logits_out(float *logits, const float *logits_hnw, size_t n, size_t H,
                       size_t W, size_t ch) {
    const size_t row = W * ch * 256;
    for (size_t i = 0; i < H; i++) /* (H, n, W, .) -> (n, H, W, .) */
        for (size_t b = 0; b < n; b++)
            memcpy(logits + (b * H + i) * row, logits_hnw + (i * n + b) * row,
                   row * sizeof *logits);
}

/* nll_img (n) = sum over pixels and channels of nllpix (H, n, W*ch) */
static void sum_nll_img(double *nll_img, const double *nllpix, size_t n, size_t H, size_t Wch) {
    for (size_t b = 0; b < n; b++) nll_img[b] = 0.0;
    for (size_t i = 0; i < H; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < Wch; j++) nll_img[b] += nllpix[(i * n + b) * Wch + j];
}

/* X (H, n, W, C) = the 7x7 mask-A convolution of u (H, n, W, ch); col (H*n*W, in_rows) */
static void in_forward(float *X, float *col, const float *u, const float *w,
                       const float *b, const loom_config *c, size_t n) {
    const loom_conv_dims d = {c->height, n, c->width, nch(c), 2 * c->hidden, ntaps(c)};
    loom_conv_forward(X, col, u, in_taps(c), w, b, d);
}

/* dw, db += the gradients of in_forward for dX (H, n, W, C) */
static void in_backward(float *dw, float *db, float *col, const float *dX, const float *u,
                        const float *w, const loom_config *c, size_t n) {
    /* X = conv(u); u is the data, so no du */
    const loom_conv_dims d = {c->height, n, c->width, nch(c), 2 * c->hidden, ntaps(c)};
    loom_conv_backward(NULL, dw, db, col, dX, u, in_taps(c), w, d);
}

/* col (n, in_rows) = the input convolution's taps of every image at (i, j) of
 * imgs (n, ch, H, W): pixels the sampler has already drawn; of the centre
 * (colour only) the first `known` channels, the others 0 */
static void taps(float *col, const uint8_t *imgs, size_t i, size_t j, size_t n,
                 const loom_config *c, size_t known) {
    const size_t H = c->height, W = c->width, ch = nch(c), nt = ntaps(c), rows = nt * ch;
    const loom_tap *tp = in_taps(c);
    for (size_t b = 0; b < n; b++)
        for (size_t t = 0; t < nt; t++)
            for (size_t k = 0; k < ch; k++) {
                long y = (long)i + tp[t].dy, x = (long)j + tp[t].dx;
                int centre = tp[t].dy == 0 && tp[t].dx == 0;
                col[b * rows + t * ch + k] =
                    (y < 0 || x < 0 || x >= (long)W || (centre && k >= known)) ? 0.0f
                        : (float)imgs[((b * ch + k) * H + (size_t)y) * W + (size_t)x] * (1.0f / 255.0f);
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

/* logits (N, K) = relu(relu(X) @ w1 + b1) @ w2 + b2, K = 256 per channel;
 * A = relu(X), Z = the hidden layer after relu, both (N, C) */
static void head_forward(float *logits, float *Z, float *A, const float *X,
                         const float *w1, const float *b1, const float *w2,
                         const float *b2, size_t N, size_t C, size_t K) {
    loom_relu_forward(A, X, N * C);
    loom_linear_forward(Z, A, w1, b1, N, C, C);
    loom_relu_forward(Z, Z, N * C);
    loom_linear_forward(logits, Z, w2, b2, N, C, K);
}

/* dX (N, C) = the gradient wrt X (overwritten); dw1, db1, dw2, db2 +=.
 * dtmp (N, C) scratch; dX and dtmp must not alias. */
static void head_backward(float *dX, float *dw1, float *db1, float *dw2, float *db2,
                          float *dtmp, const float *dlogits, const float *Z,
                          const float *A, const float *w1, const float *w2, size_t N,
                          size_t C, size_t K) {
    /* logits = Z @ w2 + b2;  Z = relu(A @ w1 + b1);  A = relu(X) */
    float *dZ = dX, *dA = dtmp;
    memset(dZ, 0, N * C * sizeof *dZ);
    loom_linear_backward(dZ, dw2, db2, dlogits, Z, w2, N, C, K);
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

/* ------------------------------------------------------------ multi-scale helpers */

static size_t factor(const loom_config *c) { return c->height / c->multiscale; }
/* features per pixel: the 3x3 block neighbourhood x channels, the place in the block */
static size_t ms_K(const loom_config *c) { return 9 * nch(c) + factor(c) * factor(c); }

loom_config loom_pixelrnn_small_cfg(const loom_config *c) {
    loom_config s = *c;
    s.height = c->multiscale, s.width = c->width / factor(c), s.multiscale = 0;
    return s;
}

loom_status loom_pixelrnn_check_multiscale(const loom_config *c, loom_error *err) {
    const size_t S = c->multiscale;
    if (!S) return LOOM_OK;
    if (S >= c->height || c->height % S || c->width % (c->height / S))
        return loom_fail(err, LOOM_EINVAL, "--multiscale %zu: needs S below the image height %zu that "
                         "divides it, with the width %zu a multiple of height / S", S, c->height, c->width);
    return LOOM_OK;
}

/* small (n, ch, S, Ws) = imgs (n, ch, H, W) at (f si, f sj) */
static void ms_subsample(uint8_t *small, const uint8_t *imgs, const loom_config *c, size_t n) {
    const size_t H = c->height, W = c->width, f = factor(c), S = H / f, Ws = W / f, ch = nch(c);
    for (size_t b = 0; b < n * ch; b++)
        for (size_t i = 0; i < S; i++)
            for (size_t j = 0; j < Ws; j++) small[(b * S + i) * Ws + j] = imgs[(b * H + f * i) * W + f * j];
}

/* P (rows, K): pixel (i, b, j)'s row i*sI + b*sB + j*sJ = the 3x3 neighbourhood
 * of its block (i/f, j/f) in the small image (values / 255, 0 outside), then
 * the one-hot place (i%f, j%f) in the block */
static void ms_features(float *P, const uint8_t *small, const loom_config *c, size_t n, size_t sI,
                        size_t sB, size_t sJ) {
    const size_t H = c->height, W = c->width, f = factor(c), S = H / f, Ws = W / f, ch = nch(c);
    const size_t K = ms_K(c);
    for (size_t i = 0; i < H; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < W; j++) {
                float *row = P + (i * sI + b * sB + j * sJ) * K;
                size_t t = 0;
                for (long di = -1; di <= 1; di++)
                    for (long dj = -1; dj <= 1; dj++)
                        for (size_t k = 0; k < ch; k++) {
                            const long y = (long)(i / f) + di, x = (long)(j / f) + dj;
                            row[t++] = y < 0 || x < 0 || y >= (long)S || x >= (long)Ws ? 0.0f
                                : (float)small[((b * ch + k) * S + (size_t)y) * Ws + (size_t)x] * (1.0f / 255.0f);
                        }
                memset(row + t, 0, f * f * sizeof *row);
                row[t + (i % f) * f + j % f] = 1.0f;
            }
}

size_t loom_pixelrnn_layout_ms(loom_param *out, size_t n, const loom_config *c,
                               size_t (*layout)(const loom_config *, loom_param *)) {
    if (!c->multiscale) return n;
    const size_t C = 2 * c->hidden;
    n = loom_param_add_fanin(out, n, 1, ms_K(c), C, "cond.up.weight", 0);
    n = loom_param_add_fanin(out, n, 1, C, 0, "cond.up.bias", 0);
    for (size_t l = 0; l < c->layers; l++) {
        /* zero: the full model starts as an unconditional one */
        n = loom_param_add(out, n, 0, C, C, "cond.%zu.weight", l);
        n = loom_param_add(out, n, 0, C, 0, "cond.%zu.bias", l);
    }
    const loom_config sc = loom_pixelrnn_small_cfg(c);
    const size_t k = layout(&sc, out ? out + n : NULL);
    for (size_t t = 0; out && t < k; t++) {
        char name[LOOM_NAMELEN];
        snprintf(name, sizeof name, "small.%s", out[n + t].name);
        memcpy(out[n + t].name, name, sizeof name);
    }
    return n + k;
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

/* the multi-scale tensors: cond.up.weight, cond.up.bias, cond.l.weight, cond.l.bias; small.* */
static size_t cond0_cfg(const loom_pixelrnn_arch *a, const loom_config *c) {
    return 2 + c->layers * per_layer(a, c) + 4;
}
static size_t small0_cfg(const loom_pixelrnn_arch *a, const loom_config *c) {
    return cond0_cfg(a, c) + 2 + 2 * c->layers;
}
size_t loom_pixelrnn_small0(const loom_model *m, const loom_pixelrnn_arch *a) {
    return small0_cfg(a, &m->cfg);
}
static const float *cond_w(const loom_model *m, const loom_pixelrnn_arch *a, size_t k) {
    return m->w + m->params[cond0_cfg(a, &m->cfg) + k].offset;
}
static float *cond_g(float *grad, const loom_model *m, const loom_pixelrnn_arch *a, size_t k) {
    return grad + m->params[cond0_cfg(a, &m->cfg) + k].offset;
}

void loom_pixelrnn_small_model(loom_model *s, const loom_model *m, const loom_pixelrnn_arch *a) {
    memset(s, 0, sizeof *s);
    s->cfg = loom_pixelrnn_small_cfg(&m->cfg);
    s->ops = m->ops;
    loom_model_layout(&s->cfg, s->params, &s->nparams, &s->nfloats, NULL);
    const size_t off = m->params[small0_cfg(a, &m->cfg)].offset;
    s->w = m->w + off;
    s->g = m->g ? m->g + off : NULL;
    s->nthreads = 1;
}

/* F (rows, C) = relu(feat @ up.weight + up.bias) and cond (L, rows, C) of
 * small, with the rows ordered by (sI, sB, sJ) as ms_features */
static void ms_cond(float *cond, float *F, float *feat, const uint8_t *small, const loom_model *m,
                    const loom_pixelrnn_arch *a, size_t n, size_t sI, size_t sB, size_t sJ) {
    const loom_config *c = &m->cfg;
    const size_t C = 2 * c->hidden, R = c->height * n * c->width;
    ms_features(feat, small, c, n, sI, sB, sJ);
    loom_linear_forward(F, feat, cond_w(m, a, 0), cond_w(m, a, 1), R, ms_K(c), C);
    loom_relu_forward(F, F, R * C);
    for (size_t l = 0; l < c->layers; l++)
        loom_linear_forward(cond + l * R * C, F, cond_w(m, a, 2 + 2 * l), cond_w(m, a, 3 + 2 * l), R, C, C);
}

size_t loom_pixelrnn_carve(loom_pixelrnn_ws *ws, void *base, const loom_pixelrnn_arch *a,
                           const loom_config *c, size_t n) {
    const size_t h = c->hidden, C = 2 * h, L = c->layers, N = c->height * n * c->width;
    const size_t g = a->cls_width * h, ch = nch(c);
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(nllpix, double, N * ch);
    TAKE(u, float, N * ch);
    TAKE(col_in, float, N * in_rows(c));
    TAKE(X, float, (L + 1) * N * C);
    TAKE(cache, float, L * a->cache_floats(c, n));
    TAKE(scratch, float, a->scratch_floats(c, n));
    TAKE(Z, float, N * C);
    TAKE(A, float, N * C);
    TAKE(logits, float, N * ch * 256);
    TAKE(dA, float, N * C);
    TAKE(dB, float, N * C);
    TAKE(cls, float, c->nclasses ? L * n * g : 1);
    TAKE(dcls, float, c->nclasses ? n * g : 1);
    TAKE(tgt, uint8_t, N * ch);
    const int ms = c->multiscale > 0;
    const loom_config sc = ms ? loom_pixelrnn_small_cfg(c) : *c;
    TAKE(small, uint8_t, ms ? n * ch * sc.height * sc.width : 1);
    TAKE(feat, float, ms ? N * ms_K(c) : 1);
    TAKE(F, float, ms ? N * C : 1);
    TAKE(cond, float, ms ? L * N * C : 1);
    TAKE(Xc, float, ms ? N * C : 1);
    TAKE(dF, float, ms ? N * C : 1);
    TAKE(nll_small, double, n);
#undef TAKE
    if (ws) ws->small_ws = p + off;
    if (ms) off += loom_pixelrnn_carve(NULL, NULL, a, &sc, n);
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

    const int ms = c->multiscale > 0;
    images_in(ws->tgt, ws->u, imgs, n, H, W, nch(c));
    if (cond)
        loom_pixelrnn_gather_cls(ws->cls, m, 2 + a->layer_tensors, per_layer(a, c), labels, n, g);
    if (ms) {
        ms_subsample(ws->small, imgs, c, n);
        ms_cond(ws->cond, ws->F, ws->feat, ws->small, m, a, n, n * W, W, 1);
    }
    in_forward(ws->X, ws->col_in, ws->u, w + m->params[0].offset, w + m->params[1].offset, c, n);
    for (size_t l = 0; l < L; l++) {
        /* multi-scale: y = layer(x + cond_l) - cond_l, the conditioning seen
         * by the input-to-state map only, not carried by the residual */
        const float *x = ws->X + l * N * C, *cl = ms ? ws->cond + l * N * C : NULL;
        float *y = ws->X + (l + 1) * N * C;
        if (ms) {
            for (size_t q = 0; q < N * C; q++) ws->Xc[q] = x[q] + cl[q];
            x = ws->Xc;
        }
        a->forward(y, ws->cache + l * cache, ws->scratch, x, cond ? ws->cls + l * n * g : NULL, m, l, n);
        if (ms) loom_pixelrnn_add_cond(y, cl, -1.0f, N * C);
    }
    head_forward(ws->logits, ws->Z, ws->A, ws->X + L * N * C,
                               w + head_param(m, a, 0)->offset, w + head_param(m, a, 1)->offset,
                               w + head_param(m, a, 2)->offset, w + head_param(m, a, 3)->offset,
                               N, C, 256 * nch(c));
}

static void backward(const loom_model *m, const loom_pixelrnn_arch *a, loom_pixelrnn_ws *ws,
                     float *grad, const int32_t *labels, size_t n);

void loom_pixelrnn_shard(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp, float *grad,
                         double *nll_img, const uint8_t *imgs, const int32_t *labels, size_t n,
                         float scale) {
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, N = H * n * W;
    loom_pixelrnn_ws ws;
    loom_pixelrnn_carve(&ws, wsp, a, c, n);

    forward(m, a, &ws, imgs, labels, n);
    loom_softmax256_xent(ws.logits, ws.nllpix, ws.tgt, N * nch(c), scale, grad != NULL);
    if (c->multiscale) /* the small image's pixels are the small model's */
        for (size_t i = 0; i < H; i++)
            for (size_t b = 0; b < n; b++)
                for (size_t j = 0; j < W; j++) {
                    if (!loom_pixelrnn_in_small(c, i, j)) continue;
                    const size_t r = (i * n + b) * W + j, ch = nch(c);
                    for (size_t k = 0; k < ch; k++) ws.nllpix[r * ch + k] = 0.0;
                    if (grad) memset(ws.logits + r * ch * 256, 0, ch * 256 * sizeof *ws.logits);
                }
    sum_nll_img(nll_img, ws.nllpix, n, H, W * nch(c));
    if (grad) backward(m, a, &ws, grad, labels, n);
    if (c->multiscale) { /* log p(x) = log p(small) + log p(rest | small) */
        loom_model s;
        loom_pixelrnn_small_model(&s, m, a);
        loom_pixelrnn_shard(&s, a, ws.small_ws, grad ? grad + m->params[small0_cfg(a, c)].offset : NULL,
                            ws.nll_small, ws.small, labels, n, scale);
        for (size_t b = 0; b < n; b++) nll_img[b] += ws.nll_small[b];
    }
}

/* Backward of forward() given ws->logits overwritten with d loss / d logits
 * (H, n, W, ch, 256); grad +=, masked entries zeroed (colour). */
static void backward(const loom_model *m, const loom_pixelrnn_arch *a, loom_pixelrnn_ws *wsp,
                     float *grad, const int32_t *labels, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, h = c->hidden, C = 2 * h, L = c->layers;
    const size_t N = H * n * W, g = a->cls_width * h, cache = a->cache_floats(c, n);
    const int cond = c->nclasses > 0 && labels;
    const loom_pixelrnn_ws ws = *wsp;
    const float *w = m->w;
    float *dy = ws.dA, *dx = ws.dB;
    head_backward(dy, grad + head_param(m, a, 0)->offset,
                                grad + head_param(m, a, 1)->offset,
                                grad + head_param(m, a, 2)->offset,
                                grad + head_param(m, a, 3)->offset, dx, ws.logits, ws.Z, ws.A,
                                w + head_param(m, a, 0)->offset, w + head_param(m, a, 2)->offset,
                                N, C, 256 * nch(c));
    const int ms = c->multiscale > 0;
    if (ms) memset(ws.dF, 0, N * C * sizeof *ws.dF);
    for (size_t l = L; l-- > 0;) {
        if (cond) memset(ws.dcls, 0, n * g * sizeof *ws.dcls);
        memset(dx, 0, N * C * sizeof *dx);
        const float *x = ws.X + l * N * C, *cl = ms ? ws.cond + l * N * C : NULL;
        if (ms) { /* the layer's input, as forward() made it */
            for (size_t q = 0; q < N * C; q++) ws.Xc[q] = x[q] + cl[q];
            x = ws.Xc;
        }
        a->backward(dx, grad, cond ? ws.dcls : NULL, ws.scratch, dy, x,
                    cond ? ws.cls + l * n * g : NULL, ws.cache + l * cache, m, l, n);
        if (cond)
            loom_pixelrnn_scatter_cls(grad + layer_param(m, a, l, a->layer_tensors)->offset,
                                      ws.dcls, labels, n, g);
        if (ms) { /* y = layer(x + cond_l) - cond_l: dcond_l = dx - dy; cond_l = F @ w + b */
            float *dc = ws.Xc;
            for (size_t q = 0; q < N * C; q++) dc[q] = dx[q] - dy[q];
            loom_linear_backward(ws.dF, cond_g(grad, m, a, 2 + 2 * l), cond_g(grad, m, a, 3 + 2 * l), dc,
                                 ws.F, cond_w(m, a, 2 + 2 * l), N, C, C);
        }
        float *t = dy; dy = dx; dx = t;
    }
    if (ms) { /* F = relu(feat @ up.w + up.b); feat is data */
        loom_relu_backward(ws.dF, ws.dF, ws.F, N * C);
        loom_linear_backward(NULL, cond_g(grad, m, a, 0), cond_g(grad, m, a, 1), ws.dF, ws.feat,
                             cond_w(m, a, 0), N, ms_K(c), C);
    }
    in_backward(grad + m->params[0].offset, grad + m->params[1].offset, ws.col_in,
                              dy, ws.u, w + m->params[0].offset, c, n);
    /* the masked weights are constants 0: no gradient, so Adam keeps them 0 */
    if (nch(c) > 1) loom_pixelrnn_apply_masks(m, a, grad);
}

void loom_pixelrnn_forward_out(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp,
                               float *out, double *internal, const uint8_t *imgs,
                               const int32_t *labels, size_t n) {
    loom_pixelrnn_ws ws;
    loom_pixelrnn_carve(&ws, wsp, a, &m->cfg, n);
    forward(m, a, &ws, imgs, labels, n);
    logits_out(out, ws.logits, n, m->cfg.height, m->cfg.width, nch(&m->cfg));
    for (size_t b = 0; b < n; b++) internal[b] = 0.0; /* the whole loss is on the logits */
}

void loom_pixelrnn_backward_out(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp,
                                float *grad, const float *dout, const int32_t *labels, size_t n) {
    const size_t H = m->cfg.height, row = m->cfg.width * nch(&m->cfg) * 256;
    loom_pixelrnn_ws ws;
    loom_pixelrnn_carve(&ws, wsp, a, &m->cfg, n);
    for (size_t i = 0; i < H; i++) /* (n, H, W, .) -> (H, n, W, .), logits_out reversed */
        for (size_t b = 0; b < n; b++)
            memcpy(ws.logits + (i * n + b) * row, dout + (b * H + i) * row, row * sizeof *dout);
    backward(m, a, &ws, grad, labels, n);
}

size_t loom_pixelrnn_out_floats(const loom_config *c) {
    /* multi-scale: two models' outputs, not one per-pixel distribution of x */
    return c->multiscale ? 0 : c->height * c->width * nch(c) * 256;
}

void loom_pixelrnn_logits(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp,
                          float *logits, const uint8_t *imgs, const int32_t *labels, size_t n) {
    loom_pixelrnn_ws ws;
    loom_pixelrnn_carve(&ws, wsp, a, &m->cfg, n);
    forward(m, a, &ws, imgs, labels, n);
    logits_out(logits, ws.logits, n, m->cfg.height, m->cfg.width, nch(&m->cfg));
}

size_t loom_pixelrnn_layout_in(loom_param *out, size_t n, const loom_config *c) {
    const size_t C = 2 * c->hidden;
    n = loom_param_add_fanin(out, n, 1, in_rows(c), C, "in.weight", 0);
    return loom_param_add_fanin(out, n, 1, C, 0, "in.bias", 0);
}

size_t loom_pixelrnn_layout_head(loom_param *out, size_t n, const loom_config *c) {
    const size_t C = 2 * c->hidden;
    n = loom_param_add_fanin(out, n, 1, C, C, "head1.weight", 0);
    n = loom_param_add_fanin(out, n, 1, C, 0, "head1.bias", 0);
    n = loom_param_add_fanin(out, n, 1, C, 256 * nch(c), "head2.weight", 0);
    return loom_param_add_fanin(out, n, 1, 256 * nch(c), 0, "head2.bias", 0);
}

/* ------------------------------------------------------------ sampling */

void loom_pixelrnn_classes(float *cls, const loom_model *m, const loom_pixelrnn_arch *a,
                           const int32_t *labels, size_t n) {
    loom_pixelrnn_gather_cls(cls, m, 2 + a->layer_tensors, per_layer(a, &m->cfg), labels, n,
                             a->cls_width * m->cfg.hidden);
}

size_t loom_pixelrnn_in_cols(const loom_config *c) { return in_rows(c); }

size_t loom_pixelrnn_passes(const loom_config *c, size_t i, size_t j, const loom_pixelrnn_fill *f) {
    return nch(c) > 1 && loom_pixelrnn_drawn(f, i * c->width + j) ? nch(c) : 1;
}

double loom_pixelrnn_logp(const float *z, uint8_t v) {
    double mx = z[0], s = 0.0;
    for (int k = 1; k < 256; k++) mx = z[k] > mx ? z[k] : mx;
    for (int k = 0; k < 256; k++) s += exp((double)z[k] - mx);
    return (double)z[v] - mx - log(s);
}

void loom_pixelrnn_sample_in(float *x0, float *col, const loom_model *m, const uint8_t *imgs,
                             size_t i, size_t j, size_t n, size_t known) {
    const loom_config *c = &m->cfg;
    taps(col, imgs, i, j, n, c, known);
    loom_linear_forward(x0, col, m->w + m->params[0].offset, m->w + m->params[1].offset, n,
                        in_rows(c), 2 * c->hidden);
}

void loom_pixelrnn_sample_out(uint8_t *imgs, float *logits, float *Z, float *A, const float *X,
                              const loom_model *m, const loom_pixelrnn_arch *a, size_t i,
                              size_t j, size_t ch, size_t n, const loom_pixelrnn_fill *f,
                              float temperature, loom_rng *rngs) {
    const size_t H = m->cfg.height, W = m->cfg.width, nc = nch(&m->cfg), K = 256 * nc;
    const float *w = m->w;
    head_forward(logits, Z, A, X, w + head_param(m, a, 0)->offset,
                               w + head_param(m, a, 1)->offset, w + head_param(m, a, 2)->offset,
                               w + head_param(m, a, 3)->offset, n, 2 * m->cfg.hidden, K);
    if (loom_pixelrnn_drawn(f, i * W + j)) {
        for (size_t b = 0; b < n; b++)
            imgs[((b * nc + ch) * H + i) * W + j] =
                loom_pixelrnn_draw(logits + b * K + ch * 256, temperature, &rngs[b]);
    } else if (f->logw && !(f->fixed && f->fixed[i * W + j])) {
        for (size_t b = 0; b < n; b++)
            for (size_t k = 0; k < nc; k++)
                f->logw[b] += loom_pixelrnn_logp(logits + b * K + k * 256,
                                                 imgs[((b * nc + k) * H + i) * W + j]);
    }
}

/* ------------------------------------------------------------ colour masks */

loom_status loom_pixelrnn_check_channels(const loom_config *c, loom_error *err) {
    const size_t ch = nch(c);
    if (ch != 1 && ch != 3)
        return loom_fail(err, LOOM_EINVAL, "%zu image channels: %s takes 1 (gray) or 3 (RGB)", ch,
                         c->model);
    if (ch == 3 && c->hidden % 3)
        return loom_fail(err, LOOM_EINVAL, "--hidden %zu: RGB images need a multiple of 3 (the "
                         "feature maps and LSTM units split into R, G and B groups)", c->hidden);
    return LOOM_OK;
}

/* the mask of tensor p, or 0 when it has none */
static int tensor_mask(const loom_config *c, const loom_pixelrnn_arch *a, size_t p,
                       loom_pixelrnn_mask *mk) {
    if (c->multiscale && p >= small0_cfg(a, c)) { /* the small model's tensor p - small0 */
        const loom_config sc = loom_pixelrnn_small_cfg(c);
        return tensor_mask(&sc, a, p - small0_cfg(a, c), mk);
    }
    const size_t C = 2 * c->hidden, g = C / 3, L = c->layers, per = per_layer(a, c);
    if (nch(c) == 1) return 0;
    if (p == 0) { /* in.weight (25*3, C): the centre tap's rows, channel k, strictly */
        *mk = (loom_pixelrnn_mask){LOOM_MASK_A7_TAPS * 3, 3, 1, C, g, 1};
        return 1;
    }
    if (p < 2) return 0;
    if (p < 2 + L * per) {
        const size_t k = (p - 2) % per;
        return k < a->layer_tensors && a->layer_mask(c, k, mk);
    }
    switch (p - 2 - L * per) {
    case 0: *mk = (loom_pixelrnn_mask){0, C, g, C, g, 0}; return 1;     /* head1 (C, C) */
    case 2: *mk = (loom_pixelrnn_mask){0, C, g, 3 * 256, 256, 0}; return 1; /* head2 (C, 3*256) */
    default: return 0;
    }
}

static inline int entry_masked(const loom_pixelrnn_mask *mk, size_t r, size_t col) {
    if (r < mk->row0) return 0;
    const size_t gi = (r - mk->row0) % mk->rmod / mk->rdiv, go = col % mk->cmod / mk->cdiv;
    return mk->strict ? gi >= go : gi > go;
}

int loom_pixelrnn_masked(const loom_model *m, const loom_pixelrnn_arch *a, size_t p, size_t k) {
    loom_pixelrnn_mask mk;
    if (!tensor_mask(&m->cfg, a, p, &mk)) return 0;
    const size_t cols = m->params[p].shape[1];
    return entry_masked(&mk, k / cols, k % cols);
}

void loom_pixelrnn_apply_masks(const loom_model *m, const loom_pixelrnn_arch *a, float *buf) {
    for (size_t p = 0; p < m->nparams; p++) {
        loom_pixelrnn_mask mk;
        if (!tensor_mask(&m->cfg, a, p, &mk)) continue;
        const loom_param *pp = &m->params[p];
        float *w = buf + pp->offset;
        for (size_t r = mk.row0; r < pp->shape[0]; r++)
            for (size_t col = 0; col < pp->shape[1]; col++)
                if (entry_masked(&mk, r, col)) w[r * pp->shape[1] + col] = 0.0f;
    }
}

/* ------------------------------------------------------------ multi-scale sampling */

typedef struct {
    void *full, *small_ws;
    uint8_t *small;          /* (n, ch, S, Ws) */
    uint8_t *given_s;        /* (S*Ws) */
    uint8_t *given_f, *fixed; /* (H*W) */
    double *logw_s;          /* (n) */
    float *feat, *F, *cond;  /* (HWn, K), (HWn, C), (L, HWn, C) */
} ms_sample_ws;

static size_t ms_carve(ms_sample_ws *ws, void *base, const loom_config *c, size_t n,
                       size_t (*full_bytes)(const loom_config *, size_t)) {
    const loom_config sc = loom_pixelrnn_small_cfg(c);
    const size_t HW = c->height * c->width, R = HW * n, C = 2 * c->hidden;
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(full, char, full_bytes(c, n));
    TAKE(small_ws, char, full_bytes(&sc, n));
    TAKE(small, uint8_t, n * nch(c) * sc.height * sc.width);
    TAKE(given_s, uint8_t, sc.height * sc.width);
    TAKE(given_f, uint8_t, HW);
    TAKE(fixed, uint8_t, HW);
    TAKE(logw_s, double, n);
    TAKE(feat, float, R * ms_K(c));
    TAKE(F, float, R * C);
    TAKE(cond, float, c->layers * R * C);
#undef TAKE
    return off;
}

size_t loom_pixelrnn_sample_bytes(const loom_config *c, size_t n,
                                  size_t (*full_bytes)(const loom_config *, size_t)) {
    return c->multiscale ? ms_carve(NULL, NULL, c, n, full_bytes) : full_bytes(c, n);
}

void loom_pixelrnn_sample(const loom_model *m, const loom_pixelrnn_arch *a, void *wsp,
                          uint8_t *imgs, const int32_t *labels, size_t n, const loom_pixelrnn_fill *f,
                          float temperature, loom_rng *rngs, loom_pixelrnn_filler fill,
                          size_t (*full_bytes)(const loom_config *, size_t)) {
    const loom_config *c = &m->cfg;
    if (!c->multiscale) {
        fill(m, wsp, imgs, labels, n, f, temperature, rngs);
        return;
    }
    const size_t H = c->height, W = c->width, fa = factor(c), S = H / fa, Ws = W / fa, ch = nch(c);
    ms_sample_ws ws;
    ms_carve(&ws, wsp, c, n, full_bytes);
    loom_model s;
    loom_pixelrnn_small_model(&s, m, a);
    /* the small image: a pixel is given when its pixel of the full image is */
    const loom_pixelrnn_fill user = {f->given, f->keep, NULL, NULL, NULL};
    for (size_t i = 0; i < S; i++)
        for (size_t j = 0; j < Ws; j++) ws.given_s[i * Ws + j] = !loom_pixelrnn_drawn(&user, fa * i * W + fa * j);
    ms_subsample(ws.small, imgs, c, n);
    for (size_t b = 0; b < n; b++) ws.logw_s[b] = 0.0;
    const loom_pixelrnn_fill fs = {ws.given_s, 0, f->logw ? ws.logw_s : NULL, NULL, NULL};
    fill(&s, ws.small_ws, ws.small, labels, n, &fs, temperature, rngs);
    for (size_t b = 0; b < n * ch; b++) /* into the full image */
        for (size_t i = 0; i < S; i++)
            for (size_t j = 0; j < Ws; j++) imgs[(b * H + fa * i) * W + fa * j] = ws.small[(b * S + i) * Ws + j];
    /* the rest given the small image; rows of cond in (i, j, b) order */
    ms_cond(ws.cond, ws.F, ws.feat, ws.small, m, a, n, W * n, 1, n);
    for (size_t i = 0; i < H; i++)
        for (size_t j = 0; j < W; j++) {
            ws.fixed[i * W + j] = (uint8_t)loom_pixelrnn_in_small(c, i, j);
            ws.given_f[i * W + j] = !loom_pixelrnn_drawn(&user, i * W + j);
        }
    const loom_pixelrnn_fill ff = {ws.given_f, 0, f->logw, ws.fixed, ws.cond};
    fill(m, ws.full, imgs, labels, n, &ff, temperature, rngs);
    if (f->logw)
        for (size_t b = 0; b < n; b++) f->logw[b] += ws.logw_s[b];
}
