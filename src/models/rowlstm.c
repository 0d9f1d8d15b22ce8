/* PixelRNN Row LSTM for grayscale and RGB images: docs/rowlstm.md. */
#include "model.h"

#include "../nn/nn.h"
#include "pixelrnn.h"
#include "fastmath.h"

#include <string.h>

#define add loom_param_add_fanin /* Kaiming-uniform-style bound 1/sqrt(fan-in) */

/* tensor indices in layout order */
enum { P_IN_W, P_IN_B, P_LAYER0 };
enum { L_IS_W, L_IS_B, L_SS_W, L_OUT_W, L_OUT_B, L_CLS_W };

static size_t per_layer(const loom_config *c) { return c->nclasses > 0 ? 6 : 5; }
static size_t p_layer(const loom_config *c, size_t l, size_t k) {
    return P_LAYER0 + l * per_layer(c) + k;
}

static loom_status rl_check(const loom_config *c, loom_error *err) {
    if (c->cell[0] || c->zdim)
        return loom_fail(err, LOOM_EINVAL, "--cell and --zdim are grupixel options; rowlstm has neither");
    if (loom_check_range("--layers", c->layers, 64, err)) return LOOM_EINVAL;
    if (loom_check_range("--hidden", c->hidden, 4096, err)) return LOOM_EINVAL;
    if (loom_pixelrnn_check_multiscale(c, err)) return LOOM_EINVAL;
    return loom_pixelrnn_check_channels(c, err);
}

static size_t rl_layout(const loom_config *c, loom_param *out) {
    const size_t h = c->hidden, C = 2 * h, K = (size_t)c->nclasses;
    size_t n = loom_pixelrnn_layout_in(out, 0, c);
    for (size_t l = 0; l < c->layers; l++) {
        n = add(out, n, 1, 2 * C, 4 * h, "rnn.%zu.is.weight", l);
        n = add(out, n, 1, 4 * h, 0, "rnn.%zu.is.bias", l);
        n = add(out, n, 1, 3 * h, 4 * h, "rnn.%zu.ss.weight", l);
        n = add(out, n, 1, h, C, "rnn.%zu.out.weight", l);
        n = add(out, n, 1, C, 0, "rnn.%zu.out.bias", l);
        /* class embedding added to the gate pre-activations; starts at zero
         * so the conditional model starts as the unconditional one */
        if (K) n = add(out, n, 0, K, 4 * h, "rnn.%zu.cls.weight", l);
    }
    return loom_pixelrnn_layout_ms(out, loom_pixelrnn_layout_head(out, n, c), c, rl_layout);
}

static const loom_pixelrnn_arch arch;

static void rl_init_extra(loom_model *m) {
    const size_t h = m->cfg.hidden;
    for (size_t l = 0; l < m->cfg.layers; l++) {
        float *b = m->w + m->params[p_layer(&m->cfg, l, L_IS_B)].offset;
        for (size_t k = 0; k < h; k++) b[h + k] = 1.0f; /* forget gate */
    }
    loom_pixelrnn_apply_masks(m, &arch, m->w);
    if (m->cfg.multiscale) {
        loom_model s;
        loom_pixelrnn_small_model(&s, m, &arch);
        rl_init_extra(&s);
    }
}

static loom_rowlstm_params layer_params(const loom_model *m, size_t l, const float *cls) {
    const loom_config *c = &m->cfg;
    const float *w = m->w;
    return (loom_rowlstm_params){
        w + m->params[p_layer(c, l, L_IS_W)].offset, w + m->params[p_layer(c, l, L_IS_B)].offset,
        w + m->params[p_layer(c, l, L_SS_W)].offset, w + m->params[p_layer(c, l, L_OUT_W)].offset,
        w + m->params[p_layer(c, l, L_OUT_B)].offset, cls};
}

/* ------------------------------------------------------------ training shard */

static loom_rowlstm_dims layer_dims(const loom_config *c, size_t n) {
    return (loom_rowlstm_dims){c->height, n, c->width, 2 * c->hidden, c->hidden};
}

/* one layer's cache: (N, 7h) gates 4h | c h | tc h | hs h */
static size_t cache_floats(const loom_config *c, size_t n) {
    return c->height * n * c->width * 7 * c->hidden;
}
static size_t scratch_floats(const loom_config *c, size_t n) {
    return loom_rowlstm_scratch_floats(layer_dims(c, n));
}

static loom_rowlstm_cache layer_cache(float *base, size_t N, size_t h) {
    return (loom_rowlstm_cache){base, base + N * 4 * h, base + N * 5 * h, base + N * 6 * h};
}

static void layer_forward(float *y, float *cache, float *scratch, const float *x, const float *cls,
                          const loom_model *m, size_t l, size_t n) {
    const loom_rowlstm_dims d = layer_dims(&m->cfg, n);
    loom_rowlstm_forward(y, layer_cache(cache, d.H * n * d.W, d.h), scratch, x,
                         layer_params(m, l, cls), d);
}

static void layer_backward(float *dx, float *grad, float *dcls, float *scratch, const float *dy,
                           const float *x, const float *cls, float *cache, const loom_model *m,
                           size_t l, size_t n) {
    const loom_config *c = &m->cfg;
    const loom_rowlstm_dims d = layer_dims(c, n);
    loom_rowlstm_grads gr = {
        grad + m->params[p_layer(c, l, L_IS_W)].offset, grad + m->params[p_layer(c, l, L_IS_B)].offset,
        grad + m->params[p_layer(c, l, L_SS_W)].offset, grad + m->params[p_layer(c, l, L_OUT_W)].offset,
        grad + m->params[p_layer(c, l, L_OUT_B)].offset, dcls};
    loom_rowlstm_backward(dx, gr, scratch, dy, x, layer_params(m, l, cls),
                          layer_cache(cache, d.H * n * d.W, d.h), d);
}

/* colour: mask B on the input-to-state taps at j (rows C..2C; taps j-1 see an
 * earlier pixel) and on the output 1x1 convolution; none on state-to-state,
 * which reads row i-1 only */
static int layer_mask(const loom_config *c, size_t k, loom_pixelrnn_mask *mk) {
    const size_t h = c->hidden, C = 2 * h;
    if (k == L_IS_W) *mk = (loom_pixelrnn_mask){C, C, C / 3, h, h / 3, 0};
    else if (k == L_OUT_W) *mk = (loom_pixelrnn_mask){0, h, h / 3, C, C / 3, 0};
    else return 0;
    return 1;
}

static const loom_pixelrnn_arch arch = {L_CLS_W, 4, cache_floats, scratch_floats, layer_forward,
                                        layer_backward, layer_mask};

static int rl_masked(const loom_model *m, size_t p, size_t k) {
    return loom_pixelrnn_masked(m, &arch, p, k);
}

static size_t rl_train_ws_bytes(const loom_config *c, size_t n) {
    return loom_pixelrnn_carve(NULL, NULL, &arch, c, n);
}

static void rl_shard(const loom_model *m, void *ws, float *grad, double *nll_img,
                     const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    loom_pixelrnn_shard(m, &arch, ws, grad, nll_img, imgs, labels, n, scale);
}

static void rl_logits(const loom_model *m, void *ws, float *logits, const uint8_t *imgs,
                      const int32_t *labels, size_t n) {
    loom_pixelrnn_logits(m, &arch, ws, logits, imgs, labels, n);
}

static void rl_forward_out(const loom_model *m, void *ws, float *out, double *internal,
                           const uint8_t *imgs, const int32_t *labels, size_t n) {
    loom_pixelrnn_forward_out(m, &arch, ws, out, internal, imgs, labels, n);
}

static void rl_backward_out(const loom_model *m, void *ws, float *grad, float *dinput,
                            const float *dout, const int32_t *labels, size_t n, float internal_weight) {
    (void)dinput, (void)internal_weight; /* 8-bit input; no internal terms */
    loom_pixelrnn_backward_out(m, &arch, ws, grad, dout, labels, n);
}

/* ------------------------------------------------------------ sampling */

typedef struct {
    float *hprev, *cprev, *hcur, *ccur; /* (L, n, W, h) each */
    float *R;       /* (L, n, W, 4h) state-to-state term of the current row */
    float *Xrow;    /* (L+1, W, n, C) layer inputs along the current row */
    float *colss;   /* (n*W, 3h) */
    float *step;    /* (n, 2C + 5h) */
    float *gs;      /* (n, 4h) gathered R at one column */
    float *cp, *hv, *cv; /* (n, h) */
    float *zero;    /* (n, C) */
    float *col_in;  /* (n, 24) */
    float *A, *Z;   /* (n, C) */
    float *logits;  /* (n, 256) */
    float *cls;     /* (L, n, 4h) */
} sample_ws;

static size_t carve_sample(sample_ws *ws, void *base, const loom_config *c, size_t n) {
    const size_t h = c->hidden, C = 2 * h, L = c->layers, W = c->width, g = 4 * h;
    size_t off = 0;
    char *p = base;
#define TAKE(field, count) LOOM_TAKE(ws, field, float, count)
    TAKE(hprev, L * n * W * h);
    TAKE(cprev, L * n * W * h);
    TAKE(hcur, L * n * W * h);
    TAKE(ccur, L * n * W * h);
    TAKE(R, L * n * W * g);
    TAKE(Xrow, (L + 1) * W * n * C);
    TAKE(colss, n * W * 3 * h);
    TAKE(step, n * (2 * C + g + h));
    TAKE(gs, n * g);
    TAKE(cp, n * h);
    TAKE(hv, n * h);
    TAKE(cv, n * h);
    TAKE(zero, n * C);
    TAKE(col_in, n * loom_pixelrnn_in_cols(c));
    TAKE(A, n * C);
    TAKE(Z, n * C);
    TAKE(logits, n * 256 * loom_channels(c));
    TAKE(cls, c->nclasses ? L * n * g : 1);
#undef TAKE
    return off;
}

static size_t plain_sample_bytes(const loom_config *c, size_t n) { return carve_sample(NULL, NULL, c, n); }
static size_t rl_sample_ws_bytes(const loom_config *c, size_t n) {
    return loom_pixelrnn_sample_bytes(c, n, plain_sample_bytes);
}

/* every layer at column j of the current row (row i): Xrow (l+1, j) and the
 * states hcur, ccur at j from Xrow (l, j-1), (l, j), R and cprev */
static void layers_at(sample_ws *ws, const loom_model *m, size_t i, size_t j, size_t n, int cond,
                      const loom_pixelrnn_fill *f) {
    const loom_config *c = &m->cfg;
    const size_t W = c->width, h = c->hidden, C = 2 * h, L = c->layers, g = 4 * h;
    for (size_t l = 0; l < L; l++) {
        float *xl = ws->Xrow + (l * W + j) * n * C;
        const float *xprev = j ? xl - n * C : ws->zero;
        float *y = ws->Xrow + ((l + 1) * W + j) * n * C;
        /* multi-scale: the layer sees x + cond_l, its output drops cond_l (pixelrnn.c) */
        const float *cl = loom_pixelrnn_cond_at(f, c, l, i, j, n);
        loom_pixelrnn_add_cond(xl, cl, 1.0f, n * C);
        const float *R = ws->R + l * n * W * g;
        const float *cprev = ws->cprev + l * n * W * h;
        for (size_t b = 0; b < n; b++) {
            memcpy(ws->gs + b * g, R + (b * W + j) * g, g * sizeof *ws->gs);
            memcpy(ws->cp + b * h, cprev + (b * W + j) * h, h * sizeof *ws->cp);
        }
        loom_rowlstm_step(y, ws->hv, ws->cv, ws->step, xprev, xl, ws->gs, i ? ws->cp : NULL,
                          layer_params(m, l, cond ? ws->cls + l * n * g : NULL), n, C, h);
        loom_pixelrnn_add_cond(y, cl, -1.0f, n * C);
        float *hc = ws->hcur + l * n * W * h, *cc = ws->ccur + l * n * W * h;
        for (size_t b = 0; b < n; b++) {
            memcpy(hc + (b * W + j) * h, ws->hv + b * h, h * sizeof *hc);
            memcpy(cc + (b * W + j) * h, ws->cv + b * h, h * sizeof *cc);
        }
    }
}

/* the sampler: f says which pixels it draws (and collects log p of the others) */
static void fill_image(const loom_model *m, void *wsp, uint8_t *imgs, const int32_t *labels,
                       size_t n, const loom_pixelrnn_fill *f, float temperature, loom_rng *rngs) {
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, h = c->hidden, C = 2 * h, L = c->layers, g = 4 * h;
    const int cond = c->nclasses > 0 && labels;
    sample_ws ws;
    carve_sample(&ws, wsp, c, n);
    memset(ws.zero, 0, n * C * sizeof *ws.zero);
    if (cond) loom_pixelrnn_classes(ws.cls, m, &arch, labels, n);
    const float *w = m->w;

    for (size_t i = 0; i < H; i++) {
        for (size_t l = 0; l < L; l++) {
            float *R = ws.R + l * n * W * g;
            if (i == 0) memset(R, 0, n * W * g * sizeof *R);
            else loom_rowlstm_row_ss(R, ws.colss, ws.hprev + l * n * W * h,
                                     w + m->params[p_layer(c, l, L_SS_W)].offset, n, W, h);
        }
        for (size_t j = 0; j < W; j++) {
            /* colour: pass pc draws channel pc given the channels before it; the
             * last pass leaves the finished pixel's state (loom_pixelrnn_passes) */
            const size_t passes = loom_pixelrnn_passes(c, i, j, f);
            for (size_t pc = 0; pc < passes; pc++) {
                loom_pixelrnn_sample_in(ws.Xrow + j * n * C, ws.col_in, m, imgs, i, j, n,
                                        passes == 1 ? loom_channels(c) : pc);
                layers_at(&ws, m, i, j, n, cond, f);
                loom_pixelrnn_sample_out(imgs, ws.logits, ws.Z, ws.A, ws.Xrow + (L * W + j) * n * C,
                                         m, &arch, i, j, passes == 1 ? 0 : pc, n, f,
                                         temperature, rngs);
            }
        }
        float *t = ws.hprev; ws.hprev = ws.hcur; ws.hcur = t;
        t = ws.cprev; ws.cprev = ws.ccur; ws.ccur = t;
    }
}

static void rl_sample(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels,
                      size_t n, size_t keep, float temperature, loom_rng *rngs) {
    const loom_pixelrnn_fill f = {NULL, keep, NULL, NULL, NULL};
    loom_pixelrnn_sample(m, &arch, ws, imgs, labels, n, &f, temperature, rngs, fill_image,
                         plain_sample_bytes);
}

static void rl_sample_given(const loom_model *m, void *ws, uint8_t *imgs, double *logw,
                            const uint8_t *given, const int32_t *labels, size_t n, loom_rng *rngs) {
    const loom_pixelrnn_fill f = {given, 0, logw, NULL, NULL};
    for (size_t b = 0; b < n; b++) logw[b] = 0.0;
    loom_pixelrnn_sample(m, &arch, ws, imgs, labels, n, &f, 1.0f, rngs, fill_image, plain_sample_bytes);
}

const loom_model_ops loom_rowlstm_ops = {
    .name = "rowlstm",
    .check = rl_check,
    .layout = rl_layout,
    .init_extra = rl_init_extra,
    .train_ws_bytes = rl_train_ws_bytes,
    .micro_shard = 8,
    .shard = rl_shard,
    .logits = rl_logits,
    .output = LOOM_OUT_SOFTMAX256,
    .out_floats = loom_pixelrnn_out_floats,
    .forward_out = rl_forward_out,
    .backward_out = rl_backward_out,
    .sample_ws_bytes = rl_sample_ws_bytes,
    .sample = rl_sample,
    .sample_given = rl_sample_given,
    .masked = rl_masked,
};
