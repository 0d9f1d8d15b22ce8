/* PixelRNN Diagonal BiLSTM for grayscale and RGB images: docs/diagbilstm.md.
 * Same input convolution (7x7 mask A), residual layers and head as the Row
 * LSTM (rowlstm.c); the recurrent layer is src/nn/diag_bilstm.c. */
#include "model.h"

#include "../nn/nn.h"
#include "pixelrnn.h"

#include <string.h>

#define add loom_param_add_fanin /* Kaiming-uniform-style bound 1/sqrt(fan-in) */

/* tensor indices in layout order */
enum { P_IN_W, P_IN_B, P_LAYER0 };
enum { L_IS_W, L_IS_B, L_SSF_W, L_SSR_W, L_OUT_W, L_OUT_B, L_CLS_W };

static size_t per_layer(const loom_config *c) { return c->nclasses > 0 ? 7 : 6; }
static size_t p_layer(const loom_config *c, size_t l, size_t k) {
    return P_LAYER0 + l * per_layer(c) + k;
}

static loom_status db_check(const loom_config *c, loom_error *err) {
    if (loom_check_range("--layers", c->layers, 32, err)) return LOOM_EINVAL;
    if (loom_check_range("--hidden", c->hidden, 4096, err)) return LOOM_EINVAL;
    if (loom_pixelrnn_check_multiscale(c, err)) return LOOM_EINVAL;
    return loom_pixelrnn_check_channels(c, err);
}

static size_t db_layout(const loom_config *c, loom_param *out) {
    const size_t h = c->hidden, C = 2 * h, K = (size_t)c->nclasses;
    size_t n = loom_pixelrnn_layout_in(out, 0, c);
    for (size_t l = 0; l < c->layers; l++) {
        n = add(out, n, 1, C, 8 * h, "rnn.%zu.is.weight", l); /* forward | reverse gates */
        n = add(out, n, 1, 8 * h, 0, "rnn.%zu.is.bias", l);
        n = add(out, n, 1, 2 * h, 4 * h, "rnn.%zu.ssf.weight", l);
        n = add(out, n, 1, 2 * h, 4 * h, "rnn.%zu.ssr.weight", l);
        n = add(out, n, 1, h, C, "rnn.%zu.out.weight", l);
        n = add(out, n, 1, C, 0, "rnn.%zu.out.bias", l);
        /* class embedding added to both directions' gate pre-activations; starts
         * at zero so the conditional model starts as the unconditional one */
        if (K) n = add(out, n, 0, K, 8 * h, "rnn.%zu.cls.weight", l);
    }
    return loom_pixelrnn_layout_ms(out, loom_pixelrnn_layout_head(out, n, c), c, db_layout);
}

static const loom_pixelrnn_arch arch;

static void db_init_extra(loom_model *m) {
    const size_t h = m->cfg.hidden;
    for (size_t l = 0; l < m->cfg.layers; l++) {
        float *b = m->w + m->params[p_layer(&m->cfg, l, L_IS_B)].offset;
        for (size_t k = 0; k < h; k++) b[h + k] = b[5 * h + k] = 1.0f; /* both forget gates */
    }
    loom_pixelrnn_apply_masks(m, &arch, m->w);
    if (m->cfg.multiscale) {
        loom_model s;
        loom_pixelrnn_small_model(&s, m, &arch);
        db_init_extra(&s);
    }
}

static loom_diag_params layer_params(const loom_model *m, size_t l, const float *cls) {
    const loom_config *c = &m->cfg;
    const float *w = m->w;
    return (loom_diag_params){
        w + m->params[p_layer(c, l, L_IS_W)].offset, w + m->params[p_layer(c, l, L_IS_B)].offset,
        w + m->params[p_layer(c, l, L_SSF_W)].offset, w + m->params[p_layer(c, l, L_SSR_W)].offset,
        w + m->params[p_layer(c, l, L_OUT_W)].offset, w + m->params[p_layer(c, l, L_OUT_B)].offset,
        cls};
}

static loom_diag_dims layer_dims(const loom_config *c, size_t n) {
    /* the reverse direction's output goes one row down: the causal choice */
    return (loom_diag_dims){c->height, n, c->width, 2 * c->hidden, c->hidden, 0, 1};
}

/* ------------------------------------------------------------ training shard */

static size_t cache_floats(const loom_config *c, size_t n) {
    return loom_diag_cache_floats(layer_dims(c, n));
}
static size_t scratch_floats(const loom_config *c, size_t n) {
    return loom_diag_scratch_floats(layer_dims(c, n));
}

static void layer_forward(float *y, float *cache, float *scratch, const float *x, const float *cls,
                          const loom_model *m, size_t l, size_t n) {
    const loom_diag_dims d = layer_dims(&m->cfg, n);
    loom_diag_forward(y, loom_diag_cache_at(cache, d), scratch, x, layer_params(m, l, cls), d);
}

static void layer_backward(float *dx, float *grad, float *dcls, float *scratch, const float *dy,
                           const float *x, const float *cls, float *cache, const loom_model *m,
                           size_t l, size_t n) {
    const loom_config *c = &m->cfg;
    const loom_diag_dims d = layer_dims(c, n);
    loom_diag_grads gr = {
        grad + m->params[p_layer(c, l, L_IS_W)].offset, grad + m->params[p_layer(c, l, L_IS_B)].offset,
        grad + m->params[p_layer(c, l, L_SSF_W)].offset, grad + m->params[p_layer(c, l, L_SSR_W)].offset,
        grad + m->params[p_layer(c, l, L_OUT_W)].offset, grad + m->params[p_layer(c, l, L_OUT_B)].offset,
        dcls};
    loom_diag_backward(dx, gr, scratch, dy, x, layer_params(m, l, cls), loom_diag_cache_at(cache, d),
                       d);
}

/* colour: mask B on the 1x1 input-to-state convolution (both directions'
 * gates: the paper's choice; the reverse half only reaches row i+1, so it
 * would be causal without) and on the output 1x1 convolution; none on the
 * state-to-state convolutions, which read (i-1, j) and (i, j-+1) */
static int layer_mask(const loom_config *c, size_t k, loom_pixelrnn_mask *mk) {
    const size_t h = c->hidden, C = 2 * h;
    if (k == L_IS_W) *mk = (loom_pixelrnn_mask){0, C, C / 3, h, h / 3, 0};
    else if (k == L_OUT_W) *mk = (loom_pixelrnn_mask){0, h, h / 3, C, C / 3, 0};
    else return 0;
    return 1;
}

static const loom_pixelrnn_arch arch = {L_CLS_W, 8, cache_floats, scratch_floats, layer_forward,
                                        layer_backward, layer_mask};

static int db_masked(const loom_model *m, size_t p, size_t k) {
    return loom_pixelrnn_masked(m, &arch, p, k);
}

static size_t db_train_ws_bytes(const loom_config *c, size_t n) {
    return loom_pixelrnn_carve(NULL, NULL, &arch, c, n);
}

static void db_shard(const loom_model *m, void *ws, float *grad, double *nll_img,
                     const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    loom_pixelrnn_shard(m, &arch, ws, grad, nll_img, imgs, labels, n, scale);
}

static void db_logits(const loom_model *m, void *ws, float *logits, const uint8_t *imgs,
                      const int32_t *labels, size_t n) {
    loom_pixelrnn_logits(m, &arch, ws, logits, imgs, labels, n);
}

static void db_forward_out(const loom_model *m, void *ws, float *out, double *internal,
                           const uint8_t *imgs, const int32_t *labels, size_t n) {
    loom_pixelrnn_forward_out(m, &arch, ws, out, internal, imgs, labels, n);
}

static void db_backward_out(const loom_model *m, void *ws, float *grad, float *dinput,
                            const float *dout, const int32_t *labels, size_t n, float internal_weight) {
    (void)dinput, (void)internal_weight; /* 8-bit input; no internal terms */
    loom_pixelrnn_backward_out(m, &arch, ws, grad, dout, labels, n);
}

/* ------------------------------------------------------------ sampling
 * Row i: the forward direction advances pixel by pixel (its taps are the pixel
 * above and the pixel to the left); the reverse direction of row i-1, which the
 * down shift feeds into row i, depends on the whole of row i-1 and is computed
 * once that row is finished. Every state is computed once. */

typedef struct {
    float *hf_prev, *hf_cur, *cf_cur; /* (L, W, n, h) forward direction, rows i-1 and i */
    float *hr_prev, *hr_cur, *cr;     /* (L, W, n, h) reverse direction, rows i-1 and i */
    float *Xrow;    /* (L+1, W, n, C) layer inputs along the current row */
    float *step;    /* (n, 8h) */
    float *rev;     /* (W*n*4h + 7h*n) */
    float *col_in;  /* (n, 24) */
    float *A, *Z;   /* (n, C) */
    float *logits;  /* (n, 256) */
    float *cls;     /* (L, n, 8h) */
} sample_ws;

static size_t carve_sample(sample_ws *ws, void *base, const loom_config *c, size_t n) {
    const size_t h = c->hidden, C = 2 * h, L = c->layers, W = c->width, st = L * W * n * h;
    size_t off = 0;
    char *p = base;
#define TAKE(field, count) LOOM_TAKE(ws, field, float, count)
    TAKE(hf_prev, st);
    TAKE(hf_cur, st);
    TAKE(cf_cur, st);
    TAKE(hr_prev, st);
    TAKE(hr_cur, st);
    TAKE(cr, W * n * h);
    TAKE(Xrow, (L + 1) * W * n * C);
    TAKE(step, n * 8 * h);
    TAKE(rev, W * n * 4 * h + 7 * h * n);
    TAKE(col_in, n * loom_pixelrnn_in_cols(c));
    TAKE(A, n * C);
    TAKE(Z, n * C);
    TAKE(logits, n * 256 * loom_channels(c));
    TAKE(cls, c->nclasses ? L * n * 8 * h : 1);
#undef TAKE
    return off;
}

static size_t plain_sample_bytes(const loom_config *c, size_t n) { return carve_sample(NULL, NULL, c, n); }
static size_t db_sample_ws_bytes(const loom_config *c, size_t n) {
    return loom_pixelrnn_sample_bytes(c, n, plain_sample_bytes);
}

/* layer l's forward direction at (i, j): Xrow (l+1, j) and hf, cf at j */
static void step_at(sample_ws *ws, const loom_model *m, size_t l, size_t i, size_t j, size_t n,
                    int cond, const loom_pixelrnn_fill *f) {
    const loom_config *c = &m->cfg;
    const size_t W = c->width, h = c->hidden, C = 2 * h, rowst = W * n * h;
    float *xl = ws->Xrow + (l * W + j) * n * C;
    float *y = ws->Xrow + ((l + 1) * W + j) * n * C;
    /* multi-scale: the layer sees x + cond_l (both directions: the row's
     * reverse pass reads these inputs too), its output drops cond_l */
    const float *cl = loom_pixelrnn_cond_at(f, c, l, i, j, n);
    loom_pixelrnn_add_cond(xl, cl, 1.0f, n * C);
    float *hf = ws->hf_cur + l * rowst, *cf = ws->cf_cur + l * rowst;
    const float *up = i ? ws->hf_prev + l * rowst + j * n * h : NULL;
    const float *hr_up = i ? ws->hr_prev + l * rowst + j * n * h : NULL;
    loom_diag_step_fwd(y, hf + j * n * h, cf + j * n * h, ws->step, xl, up,
                       j ? hf + (j - 1) * n * h : NULL, j ? cf + (j - 1) * n * h : NULL, hr_up,
                       layer_params(m, l, cond ? ws->cls + l * n * 8 * h : NULL), n, C, h);
    loom_pixelrnn_add_cond(y, cl, -1.0f, n * C);
}

/* the sampler: f says which pixels it draws (and collects log p of the others) */
static void fill_image(const loom_model *m, void *wsp, uint8_t *imgs, const int32_t *labels,
                       size_t n, const loom_pixelrnn_fill *f, float temperature, loom_rng *rngs) {
    const loom_config *c = &m->cfg;
    const size_t H = c->height, W = c->width, h = c->hidden, C = 2 * h, L = c->layers, g = 8 * h;
    const size_t rowst = W * n * h; /* one layer's row of states */
    const int cond = c->nclasses > 0 && labels;
    sample_ws ws;
    carve_sample(&ws, wsp, c, n);
    if (cond) loom_pixelrnn_classes(ws.cls, m, &arch, labels, n);

    for (size_t i = 0; i < H; i++) {
        for (size_t j = 0; j < W; j++) {
            /* colour: pass pc draws channel pc given the channels before it; the
             * last pass leaves the finished pixel's state (loom_pixelrnn_passes) */
            const size_t passes = loom_pixelrnn_passes(c, i, j, f);
            for (size_t pc = 0; pc < passes; pc++) {
                loom_pixelrnn_sample_in(ws.Xrow + j * n * C, ws.col_in, m, imgs, i, j, n,
                                        passes == 1 ? loom_channels(c) : pc);
                for (size_t l = 0; l < L; l++)
                    step_at(&ws, m, l, i, j, n, cond, f);
                loom_pixelrnn_sample_out(imgs, ws.logits, ws.Z, ws.A, ws.Xrow + (L * W + j) * n * C,
                                         m, &arch, i, j, passes == 1 ? 0 : pc, n, f,
                                         temperature, rngs);
            }
        }
        /* row i is complete: its reverse direction, which row i+1 reads */
        if (i + 1 < H)
            for (size_t l = 0; l < L; l++)
                loom_diag_row_rev(ws.hr_cur + l * rowst, ws.cr, ws.rev, ws.Xrow + l * W * n * C,
                                  i ? ws.hr_prev + l * rowst : NULL,
                                  layer_params(m, l, cond ? ws.cls + l * n * g : NULL), n, W, C, h);
        float *t = ws.hf_prev; ws.hf_prev = ws.hf_cur; ws.hf_cur = t;
        t = ws.hr_prev; ws.hr_prev = ws.hr_cur; ws.hr_cur = t;
    }
}

static void db_sample(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels,
                      size_t n, size_t keep, float temperature, loom_rng *rngs) {
    const loom_pixelrnn_fill f = {NULL, keep, NULL, NULL, NULL};
    loom_pixelrnn_sample(m, &arch, ws, imgs, labels, n, &f, temperature, rngs, fill_image,
                         plain_sample_bytes);
}

static void db_sample_given(const loom_model *m, void *ws, uint8_t *imgs, double *logw,
                            const uint8_t *given, const int32_t *labels, size_t n, loom_rng *rngs) {
    const loom_pixelrnn_fill f = {given, 0, logw, NULL, NULL};
    for (size_t b = 0; b < n; b++) logw[b] = 0.0;
    loom_pixelrnn_sample(m, &arch, ws, imgs, labels, n, &f, 1.0f, rngs, fill_image, plain_sample_bytes);
}

const loom_model_ops loom_diagbilstm_ops = {
    .name = "diagbilstm",
    .check = db_check,
    .layout = db_layout,
    .init_extra = db_init_extra,
    .train_ws_bytes = db_train_ws_bytes,
    .micro_shard = 8,
    .shard = db_shard,
    .logits = db_logits,
    .output = LOOM_OUT_SOFTMAX256,
    .out_floats = loom_pixelrnn_out_floats,
    .forward_out = db_forward_out,
    .backward_out = db_backward_out,
    .sample_ws_bytes = db_sample_ws_bytes,
    .sample = db_sample,
    .sample_given = db_sample_given,
    .masked = db_masked,
};
