/* grupixel: a recurrent cell (GRU, LSTM or Elman RNN) reads the image pixel
 * by pixel in raster order, starting from a hidden state made from a noise
 * vector z. Definition, tensor names and the use of z: docs/grupixel.md.
 *
 * Sequences are time-major (T = H*W steps, n images): row t*n + b of every
 * buffer is pixel t of image b, so one step of the batch is one block. */
#include "grupixel.h"

#include "../core/gemm.h"
#include "../nn/nn.h"
#include "../nn/seq.h"
#include "latent.h"
#include "pixelrnn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NTOK 257 /* 256 pixel values and the start token */
#define START 256

/* tensor indices in layout order */
enum { P_EMBED, P_INIT_W, P_INIT_B, P_LAYER0 };
enum { L_WIH, L_WHH, L_BIH, L_BHH, L_CLS };

#define add loom_param_add

static size_t per_layer(const loom_config *c) { return c->nclasses > 0 ? 5 : 4; }
static size_t p_layer(const loom_config *c, size_t l, size_t k) { return P_LAYER0 + l * per_layer(c) + k; }
static size_t p_head(const loom_config *c, size_t k) { return P_LAYER0 + c->layers * per_layer(c) + k; }

static loom_cell cell_of(const loom_config *c) {
    loom_cell k = LOOM_CELL_GRU;
    loom_cell_parse(c->cell, &k); /* checked valid by gp_check */
    return k;
}

static size_t gates(const loom_config *c) { return loom_cell_gates(cell_of(c)) * c->hidden; }

static loom_status gp_check(const loom_config *c, loom_error *err) {
    if (loom_channels(c) != 1)
        return loom_fail(err, LOOM_EINVAL, "%s models grayscale images only, not %zu channels "
                         "(colour: rowlstm or diagbilstm)", c->model, loom_channels(c));
    loom_cell k;
    if (loom_cell_parse(c->cell, &k) != 0)
        return loom_fail(err, LOOM_EINVAL, "unknown cell '%s' (known: gru, lstm, rnn)", c->cell);
    if (loom_check_range("--layers", c->layers, 64, err)) return LOOM_EINVAL;
    if (loom_check_range("--hidden", c->hidden, 4096, err)) return LOOM_EINVAL;
    if (loom_check_range("--zdim", c->zdim, 4096, err)) return LOOM_EINVAL;
    if (c->height * c->width > ((size_t)1 << 24))
        return loom_fail(err, LOOM_EINVAL, "image of %zux%zu pixels is too long a sequence",
                         c->height, c->width);
    return LOOM_OK;
}

static size_t gp_layout(const loom_config *c, loom_param *out) {
    const size_t h = c->hidden, G = gates(c), L = c->layers, K = (size_t)c->nclasses;
    const float fan_h = 1.0f / sqrtf((float)h);
    size_t n = 0;
    /* the pixel embedding has the width of the hidden state */
    n = add(out, n, 1.0f, NTOK, h, "embed.weight", 0);
    n = add(out, n, 1.0f / sqrtf((float)c->zdim), c->zdim, L * h, "init.weight", 0);
    n = add(out, n, 0.0f, L * h, 0, "init.bias", 0);
    for (size_t l = 0; l < L; l++) {
        n = add(out, n, fan_h, h, G, "rnn.%zu.weight_ih", l);
        n = add(out, n, fan_h, h, G, "rnn.%zu.weight_hh", l);
        n = add(out, n, 0.0f, G, 0, "rnn.%zu.bias_ih", l);
        n = add(out, n, 0.0f, G, 0, "rnn.%zu.bias_hh", l);
        /* class embedding added to the gate pre-activations; zero at the start
         * so the conditional model starts as the unconditional one */
        if (K) n = add(out, n, 0.0f, K, G, "rnn.%zu.cls.weight", l);
    }
    n = add(out, n, fan_h, h, 256, "head.weight", 0);
    n = add(out, n, 0.0f, 256, 0, "head.bias", 0);
    return n;
}

static void gp_init_extra(loom_model *m) {
    if (cell_of(&m->cfg) != LOOM_CELL_LSTM) return;
    const size_t h = m->cfg.hidden;
    for (size_t l = 0; l < m->cfg.layers; l++) {
        float *b = m->w + m->params[p_layer(&m->cfg, l, L_BIH)].offset;
        for (size_t k = 0; k < h; k++) b[h + k] = 1.0f; /* forget gate: i f g o */
    }
}

static const float *W(const loom_model *m, size_t idx) { return m->w + m->params[idx].offset; }

static loom_seq_params layer_params(const loom_model *m, size_t l, const float *bias) {
    const loom_config *c = &m->cfg;
    return (loom_seq_params){W(m, p_layer(c, l, L_WIH)), W(m, p_layer(c, l, L_WHH)),
                             W(m, p_layer(c, l, L_BIH)), W(m, p_layer(c, l, L_BHH)), bias};
}

/* ------------------------------------------------------------ noise */

void loom_grupixel_draw_z(float *z, size_t zdim, loom_rng *rng) {
    for (size_t k = 0; k < zdim; k++) z[k] = loom_rng_normal(rng);
}

/* z of one image. Training (noise_seed != 0): fresh for every step and image,
 * a function of the step's noise_seed and the image's pixels and label only
 * (FNV-1a), so it does not depend on how the batch is split across threads.
 * Evaluation (noise_seed == 0): the same fixed-seed z for every image, which
 * keeps p(x|z) causal in x and the reported NLL an unbiased one-sample
 * estimate of E_z[-log p(x|z)] (docs/grupixel.md). */
static void image_z(float *z, const loom_model *m, const uint8_t *img, int32_t label) {
    loom_rng r;
    if (m->noise_seed == 0) {
        loom_rng_seed(&r, 0x67727570ULL); /* "grup" */
    } else {
        const size_t HW = m->cfg.height * m->cfg.width;
        uint64_t hsh = 0xcbf29ce484222325ULL;
        for (size_t k = 0; k < HW; k++) hsh = (hsh ^ img[k]) * 0x100000001b3ULL;
        hsh = (hsh ^ (uint64_t)(uint32_t)label) * 0x100000001b3ULL;
        loom_rng_seed(&r, hsh ^ m->noise_seed);
    }
    loom_grupixel_draw_z(z, m->cfg.zdim, &r);
}

/* ------------------------------------------------------------ training shard */

typedef struct {
    double *nllpix;  /* (N) */
    uint16_t *tok;   /* (N) input token of each step: the previous pixel, START first */
    uint8_t *tgt;    /* (N) the pixel each step predicts */
    float *z;        /* (n, Z) */
    float *h0all;    /* (n, L*h) = z @ init.weight + init.bias */
    float *h0;       /* (L, n, h) the same, per layer */
    float *dh0;      /* (L, n, h) */
    float *tab;      /* (257, G) embed @ weight_ih0 + bias_ih0 */
    float *dtab;     /* (257, G) */
    float *Y;        /* (L, N, h) hidden states */
    float *cache;    /* (L, cache floats) */
    float *scratch;  /* seq backward scratch */
    float *logits;   /* (N, 256) */
    float *dA, *dB;  /* (N, h) */
    float *cls;      /* (L, n, G) class rows gathered per image */
    float *dcls;     /* (n, G) */
    double *lse_m, *lse_s, *iwnll, *iwlqp; /* (n) iw_nll: running log-sum-exp, -log p(x | z_k), 0 */
    float *iwz;      /* (n, Z) iw_nll: z_k */
} train_ws;

static loom_seq_dims dims(const loom_config *c, size_t n) {
    /* every layer reads h features: the embedding or the layer below */
    return (loom_seq_dims){c->height * c->width, n, c->hidden, c->hidden};
}

static size_t carve_train(train_ws *ws, void *base, const loom_config *c, size_t n) {
    const size_t h = c->hidden, L = c->layers, N = c->height * c->width * n, G = gates(c);
    const loom_cell cell = cell_of(c);
    const size_t cache = loom_seq_cache_floats(cell, dims(c, n));
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(nllpix, double, N);
    TAKE(z, float, n * c->zdim);
    TAKE(h0all, float, n * L * h);
    TAKE(h0, float, L * n * h);
    TAKE(dh0, float, L * n * h);
    TAKE(tab, float, NTOK * G);
    TAKE(dtab, float, NTOK * G);
    TAKE(Y, float, L * N * h);
    TAKE(cache, float, L * cache);
    TAKE(scratch, float, loom_seq_scratch_floats(cell, dims(c, n)));
    TAKE(logits, float, N * 256);
    TAKE(dA, float, N * h);
    TAKE(dB, float, N * h);
    TAKE(cls, float, c->nclasses ? L * n * G : 1);
    TAKE(dcls, float, c->nclasses ? n * G : 1);
    TAKE(lse_m, double, n);
    TAKE(lse_s, double, n);
    TAKE(iwnll, double, n);
    TAKE(iwlqp, double, n);
    TAKE(iwz, float, n * c->zdim);
    TAKE(tok, uint16_t, N);
    TAKE(tgt, uint8_t, N);
#undef TAKE
    return off;
}

static size_t gp_train_ws_bytes(const loom_config *c, size_t n) { return carve_train(NULL, NULL, c, n); }

/* h0 (L, n, h) from z: one linear layer for all layers' initial states */
static void initial_state(float *h0, float *h0all, const loom_model *m, const float *z, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t h = c->hidden, L = c->layers;
    loom_linear_forward(h0all, z, W(m, P_INIT_W), W(m, P_INIT_B), n, c->zdim, L * h);
    for (size_t l = 0; l < L; l++)
        for (size_t b = 0; b < n; b++)
            memcpy(h0 + (l * n + b) * h, h0all + (b * L + l) * h, h * sizeof *h0);
}

static void layer_forward(loom_cell cell, float *y, float *cache, const float *x, const float *h0,
                          loom_seq_params p, loom_seq_dims d) {
    switch (cell) {
    case LOOM_CELL_RNN: loom_rnn_forward(y, NULL, cache, x, h0, p, d); break;
    case LOOM_CELL_LSTM: loom_lstm_forward(y, NULL, NULL, cache, x, h0, NULL, p, d); break;
    case LOOM_CELL_GRU: loom_gru_forward(y, NULL, cache, x, h0, p, d); break;
    }
}

static void layer_backward(loom_cell cell, float *dx, float *dh0, loom_seq_grads g, float *scratch,
                           const float *dy, const float *x, const float *h0, loom_seq_params p,
                           const float *cache, const float *y, loom_seq_dims d) {
    switch (cell) {
    case LOOM_CELL_RNN: loom_rnn_backward(dx, dh0, g, scratch, dy, NULL, x, h0, p, cache, y, d); break;
    case LOOM_CELL_LSTM:
        loom_lstm_backward(dx, dh0, NULL, g, scratch, dy, NULL, NULL, x, h0, NULL, p, cache, y, d);
        break;
    case LOOM_CELL_GRU: loom_gru_backward(dx, dh0, g, scratch, dy, NULL, x, h0, p, cache, y, d); break;
    }
}

void loom_grupixel_run(const loom_model *m, void *wsp, float *grad, double *nll_img, float *logits,
                       const uint8_t *imgs, const int32_t *labels, const float *zin, size_t n,
                       float scale) {
    const loom_config *c = &m->cfg;
    const size_t T = c->height * c->width, h = c->hidden, L = c->layers, G = gates(c), N = T * n;
    const loom_cell cell = cell_of(c);
    const int cond = c->nclasses > 0 && labels;
    const loom_seq_dims d = dims(c, n);
    const size_t cache_n = loom_seq_cache_floats(cell, d);
    train_ws ws;
    carve_train(&ws, wsp, c, n);

    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < n; b++) {
            ws.tgt[t * n + b] = imgs[b * T + t];
            ws.tok[t * n + b] = t ? imgs[b * T + t - 1] : START;
        }
    if (zin) memcpy(ws.z, zin, n * c->zdim * sizeof *ws.z);
    else
        for (size_t b = 0; b < n; b++) image_z(ws.z + b * c->zdim, m, imgs + b * T, cond ? labels[b] : 0);
    initial_state(ws.h0, ws.h0all, m, ws.z, n);
    if (cond) loom_pixelrnn_gather_cls(ws.cls, m, p_layer(c, 0, L_CLS), per_layer(c), labels, n, G);

    /* layer 0 input: embedding then weight_ih0 is one (257, G) table */
    const float *emb = W(m, P_EMBED), *wih0 = W(m, p_layer(c, 0, L_WIH));
    loom_linear_forward(ws.tab, emb, wih0, W(m, p_layer(c, 0, L_BIH)), NTOK, h, G);
    for (size_t q = 0; q < N; q++) {
        float *a = ws.cache + q * G;
        memcpy(a, ws.tab + (size_t)ws.tok[q] * G, G * sizeof *a);
        if (cond) {
            const float *cb = ws.cls + (q % n) * G;
            for (size_t k = 0; k < G; k++) a[k] += cb[k];
        }
    }
    /* training in bf16: each layer's output rounded once, after its forward,
     * for the products that read it later (the next layer's, the head's, the
     * backward's dW), and the logits' gradient once for its two */
    uint16_t *Ybf = grad && loom_gemm_rounds_bf16() ? loom_gemm_bf16_buffer(LOOM_BF16_BUF_ACT, L * N * h) : NULL;
    bool yshadow = false;
    for (size_t l = 0; l < L; l++) {
        layer_forward(cell, ws.Y + l * N * h, ws.cache + l * cache_n, l ? ws.Y + (l - 1) * N * h : NULL,
                      ws.h0 + l * n * h, layer_params(m, l, cond && l ? ws.cls + l * n * G : NULL), d);
        if (!Ybf) continue;
        loom_bf16_round(Ybf + l * N * h, ws.Y + l * N * h, N * h);
        if (yshadow) loom_gemm_shadow_pop();
        yshadow = loom_gemm_shadow_push(ws.Y, Ybf, (l + 1) * N * h);
    }
    const float *top = ws.Y + (L - 1) * N * h, *hw = W(m, p_head(c, 0));
    loom_linear_forward(ws.logits, top, hw, W(m, p_head(c, 1)), N, h, 256);
    if (logits) /* (T, n, 256) -> (n, T, 256) */
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < n; b++)
                memcpy(logits + (b * T + t) * 256, ws.logits + (t * n + b) * 256, 256 * sizeof *logits);
    if (!nll_img && !grad) return;

    loom_softmax256_xent(ws.logits, ws.nllpix, ws.tgt, N, scale, grad != NULL);
    if (nll_img) {
        for (size_t b = 0; b < n; b++) nll_img[b] = 0.0;
        for (size_t q = 0; q < N; q++) nll_img[q % n] += ws.nllpix[q];
    }
    if (!grad) return;
    uint16_t *Lbf = Ybf ? loom_gemm_bf16_buffer(LOOM_BF16_BUF_DOUT, N * 256) : NULL;
    if (Lbf) loom_bf16_round(Lbf, ws.logits, N * 256);
    const bool lshadow = Lbf && loom_gemm_shadow_push(ws.logits, Lbf, N * 256);

#define GR(idx) (grad + m->params[idx].offset)
    /* logits = top @ head.weight + head.bias */
    float *dy = ws.dA, *dx = ws.dB;
    memset(dy, 0, N * h * sizeof *dy);
    loom_linear_backward(dy, GR(p_head(c, 0)), GR(p_head(c, 1)), ws.logits, top, hw, N, h, 256);
    memset(ws.dh0, 0, L * n * h * sizeof *ws.dh0);
    for (size_t l = L; l-- > 0;) {
        if (cond) memset(ws.dcls, 0, n * G * sizeof *ws.dcls);
        if (l) memset(dx, 0, N * h * sizeof *dx);
        loom_seq_grads g = {l ? GR(p_layer(c, l, L_WIH)) : NULL, GR(p_layer(c, l, L_WHH)),
                            l ? GR(p_layer(c, l, L_BIH)) : NULL, GR(p_layer(c, l, L_BHH)),
                            cond && l ? ws.dcls : NULL};
        layer_backward(cell, l ? dx : NULL, ws.dh0 + l * n * h, g, ws.scratch, dy,
                       l ? ws.Y + (l - 1) * N * h : NULL, ws.h0 + l * n * h,
                       layer_params(m, l, cond && l ? ws.cls + l * n * G : NULL),
                       ws.cache + l * cache_n, ws.Y + l * N * h, d);
        if (l == 0) {
            /* a_q = tab[tok_q] + cls[label_b]: scatter dA back to the table rows */
            const float *dA0 = ws.scratch;
            memset(ws.dtab, 0, NTOK * G * sizeof *ws.dtab);
            for (size_t q = 0; q < N; q++) {
                float *dst = ws.dtab + (size_t)ws.tok[q] * G;
                const float *src = dA0 + q * G;
                for (size_t k = 0; k < G; k++) dst[k] += src[k];
                if (cond) {
                    float *dc = ws.dcls + (q % n) * G;
                    for (size_t k = 0; k < G; k++) dc[k] += src[k];
                }
            }
            /* tab = embed @ weight_ih0 + bias_ih0 */
            loom_linear_backward(GR(P_EMBED), GR(p_layer(c, 0, L_WIH)), GR(p_layer(c, 0, L_BIH)),
                                 ws.dtab, emb, wih0, NTOK, h, G);
        }
        if (cond) loom_pixelrnn_scatter_cls(GR(p_layer(c, l, L_CLS)), ws.dcls, labels, n, G);
        float *t = dy; dy = dx; dx = t;
    }
    /* h0all = z @ init.weight + init.bias; h0 is its per-layer view */
    for (size_t l = 0; l < L; l++)
        for (size_t b = 0; b < n; b++)
            memcpy(ws.h0all + (b * L + l) * h, ws.dh0 + (l * n + b) * h, h * sizeof *ws.h0all);
    loom_linear_backward(NULL, GR(P_INIT_W), GR(P_INIT_B), ws.h0all, ws.z, W(m, P_INIT_W), n,
                         c->zdim, L * h);
    if (lshadow) loom_gemm_shadow_pop();
    if (yshadow) loom_gemm_shadow_pop();
#undef GR
}

static void gp_shard(const loom_model *m, void *ws, float *grad, double *nll_img,
                     const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    loom_grupixel_run(m, ws, grad, nll_img, NULL, imgs, labels, NULL, n, scale);
}

static void gp_logits(const loom_model *m, void *ws, float *logits, const uint8_t *imgs,
                      const int32_t *labels, size_t n) {
    loom_grupixel_run(m, ws, NULL, NULL, logits, imgs, labels, NULL, n, 0.0f);
}

/* -log (1/K sum_k p(x | z_k)) with z_k ~ N(0, I), the prior itself as the
 * proposal (so the weights are p(x | z_k)): fresh for every image and k, from
 * loom_noise_rng of the image's pixels, noise_seed and k. By Jensen its
 * expectation is >= -log p(x), and it falls towards -log p(x) as K grows
 * (docs/grupixel.md). */
static void gp_iw_nll(const loom_model *m, void *wsp, double *nll_img, const uint8_t *imgs,
                      const int32_t *labels, size_t n, size_t K) {
    const size_t HW = m->cfg.height * m->cfg.width, Z = m->cfg.zdim;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++) ws.iwlqp[b] = 0.0; /* log p(z) - log q(z) = 0: q is the prior */
    for (size_t k = 0; k < K; k++) {
        for (size_t b = 0; b < n; b++) {
            loom_rng r;
            loom_noise_rng(&r, imgs + b * HW, HW, m->noise_seed, k);
            loom_normals(ws.iwz + b * Z, Z, &r);
        }
        loom_grupixel_run(m, wsp, NULL, ws.iwnll, NULL, imgs, labels, ws.iwz, n, 0.0f);
        loom_iw_accumulate(ws.lse_m, ws.lse_s, ws.iwnll, ws.iwlqp, n, k);
    }
    loom_iw_nll(nll_img, ws.lse_m, ws.lse_s, n, K);
}

/* ------------------------------------------------------------ sampling */

typedef struct {
    float *z;        /* (n, Z) */
    float *h0all;    /* (n, L*h) */
    float *h, *hn;   /* (L, n, h) state and next state */
    float *c, *cn;   /* (L, n, h) LSTM cell state */
    float *tab;      /* (257, G) */
    float *cls;      /* (L, n, G) */
    float *step;     /* seq step scratch */
    float *logits;   /* (n, 256) */
    uint16_t *tok;   /* (n) */
} sample_ws;

static size_t carve_sample(sample_ws *ws, void *base, const loom_config *c, size_t n) {
    const size_t h = c->hidden, L = c->layers, G = gates(c);
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(z, float, n * c->zdim);
    TAKE(h0all, float, n * L * h);
    TAKE(h, float, L * n * h);
    TAKE(hn, float, L * n * h);
    TAKE(c, float, L * n * h);
    TAKE(cn, float, L * n * h);
    TAKE(tab, float, NTOK * G);
    TAKE(cls, float, c->nclasses ? L * n * G : 1);
    TAKE(step, float, loom_seq_step_floats(cell_of(c), n, h));
    TAKE(logits, float, n * 256);
    TAKE(tok, uint16_t, n);
#undef TAKE
    return off;
}

static size_t gp_sample_ws_bytes(const loom_config *c, size_t n) { return carve_sample(NULL, NULL, c, n); }

/* Cached state: each pixel costs one step of every layer and the head. */
static void fill_image(const loom_model *m, void *wsp, uint8_t *imgs, const int32_t *labels,
                       size_t n, const loom_pixelrnn_fill *f, float temperature, loom_rng *rngs) {
    const loom_config *c = &m->cfg;
    const size_t T = c->height * c->width, h = c->hidden, L = c->layers, G = gates(c);
    const loom_cell cell = cell_of(c);
    const int cond = c->nclasses > 0 && labels;
    sample_ws ws;
    carve_sample(&ws, wsp, c, n);
    for (size_t b = 0; b < n; b++) loom_grupixel_draw_z(ws.z + b * c->zdim, c->zdim, &rngs[b]);
    initial_state(ws.h, ws.h0all, m, ws.z, n);
    memset(ws.c, 0, L * n * h * sizeof *ws.c);
    if (cond) loom_pixelrnn_gather_cls(ws.cls, m, p_layer(c, 0, L_CLS), per_layer(c), labels, n, G);
    loom_linear_forward(ws.tab, W(m, P_EMBED), W(m, p_layer(c, 0, L_WIH)), W(m, p_layer(c, 0, L_BIH)),
                        NTOK, h, G);
    const float *hw = W(m, p_head(c, 0)), *hb = W(m, p_head(c, 1));
    for (size_t b = 0; b < n; b++) ws.tok[b] = START;

    for (size_t t = 0; t < T; t++) {
        for (size_t l = 0; l < L; l++) {
            const float *x = NULL;
            if (l == 0) /* pre-projected input: table rows into the step scratch */
                for (size_t b = 0; b < n; b++) {
                    float *a = ws.step + b * G;
                    memcpy(a, ws.tab + (size_t)ws.tok[b] * G, G * sizeof *a);
                    if (cond)
                        for (size_t k = 0; k < G; k++) a[k] += ws.cls[b * G + k];
                }
            else
                x = ws.hn + (l - 1) * n * h;
            loom_seq_params p = layer_params(m, l, cond && l ? ws.cls + l * n * G : NULL);
            float *hl = ws.h + l * n * h, *hnl = ws.hn + l * n * h;
            switch (cell) {
            case LOOM_CELL_RNN: loom_rnn_step(hnl, ws.step, x, hl, p, n, h, h); break;
            case LOOM_CELL_GRU: loom_gru_step(hnl, ws.step, x, hl, p, n, h, h); break;
            case LOOM_CELL_LSTM:
                loom_lstm_step(hnl, ws.cn + l * n * h, ws.step, x, hl, ws.c + l * n * h, p, n, h, h);
                break;
            }
        }
        for (size_t b = 0; b < n; b++) memcpy(ws.logits + b * 256, hb, 256 * sizeof *ws.logits);
        loom_gemm_thin(ws.logits, ws.hn + (L - 1) * n * h, hw, n, 256, h, 1.0f);
        for (size_t b = 0; b < n; b++) {
            uint8_t *px = imgs + b * T + t;
            if (loom_pixelrnn_drawn(f, t)) *px = loom_pixelrnn_draw(ws.logits + b * 256, temperature, &rngs[b]);
            else if (f->logw) f->logw[b] += loom_pixelrnn_logp(ws.logits + b * 256, *px);
            ws.tok[b] = *px;
        }
        float *s = ws.h; ws.h = ws.hn; ws.hn = s;
        s = ws.c; ws.c = ws.cn; ws.cn = s;
    }
}

static void gp_sample(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels,
                      size_t n, size_t keep, float temperature, loom_rng *rngs) {
    const loom_pixelrnn_fill f = {NULL, keep, NULL, NULL, NULL};
    fill_image(m, ws, imgs, labels, n, &f, temperature, rngs);
}

/* z is drawn per image too, so logw covers every given pixel, before the
 * first hidden one as well: the weights are those of p(z, hidden | given) */
static void gp_sample_given(const loom_model *m, void *ws, uint8_t *imgs, double *logw,
                            const uint8_t *given, const int32_t *labels, size_t n, loom_rng *rngs) {
    const loom_pixelrnn_fill f = {given, 0, logw, NULL, NULL};
    for (size_t b = 0; b < n; b++) logw[b] = 0.0;
    fill_image(m, ws, imgs, labels, n, &f, 1.0f, rngs);
}

/* eval's number at a fixed z (noise_seed 0): by Jensen, E_z[-log p(x|z)] >= -log p(x) */
static const char *gp_nll_kind(const loom_config *c) {
    (void)c;
    return "E_z[-log p(x|z)] at one fixed z, the same for every image: an upper bound on -log p(x)";
}

const loom_model_ops loom_grupixel_ops = {
    .name = "grupixel",
    .check = gp_check,
    .layout = gp_layout,
    .init_extra = gp_init_extra,
    .train_ws_bytes = gp_train_ws_bytes,
    .micro_shard = 32,
    .shard = gp_shard,
    .logits = gp_logits,
    .iw_nll = gp_iw_nll,
    .sample_ws_bytes = gp_sample_ws_bytes,
    .sample = gp_sample,
    .sample_given = gp_sample_given,
    .nll_kind = gp_nll_kind,
};
