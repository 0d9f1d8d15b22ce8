/* renet: a recurrent image classifier in the style of ReNet (Visin et al.
 * 2015). The image is cut into patch x patch pixel patches (zero padded at
 * the right and bottom), each patch's pixels / 255 a feature vector; every
 * layer is a bidirectional sweep along the rows of this grid followed by one
 * along its columns (sweep.h), so after the first layer each position has
 * seen the whole image; the top grid is averaged over positions, and a ReLU
 * layer and a linear layer give the class logits. Definition and tensor
 * names: docs/renet.md.
 *
 * Grids of n images (I x J patches, I = ceil(H / patch), J = ceil(W / patch))
 * are stored in one of two layouts (sweep.h): row layout (J, n, I, F), where a
 * row sweep is a sequence layer over time j with the n*I rows as its batch,
 * and column layout (I, n, J, F) for the column sweeps. */
#include "../losses/losses.h"
#include "../nn/nn.h"
#include "../nn/sweep.h"
#include "model.h"
#include "../data/scenes.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { S_ROW_F, S_ROW_B, S_COL_F, S_COL_B, NSWEEP };
enum { K_WIH, K_WHH, K_BIH, K_BHH, PER_SWEEP };
enum { H_FC_W, H_FC_B, H_OUT_W, H_OUT_B };
#define PER_LAYER (NSWEEP * PER_SWEEP)

static size_t p_sweep(size_t l, size_t s, size_t k) { return (l * NSWEEP + s) * PER_SWEEP + k; }
static size_t p_head(const loom_config *c, size_t k) { return c->layers * PER_LAYER + k; }

static loom_cell cell_of(const loom_config *c) {
    loom_cell k = LOOM_CELL_LSTM;
    loom_cell_parse(c->cell, &k); /* checked valid by rn_check */
    return k;
}

/* reseg: an example is the scene (H/2 rows) above its label map (H/2 rows) */
static int is_seg(const loom_config *c) { return strcmp(c->model, "reseg") == 0; }
/* renet_d: a discriminator, one logit per image (real against generated) */
static int is_disc(const loom_config *c) { return strcmp(c->model, "renet_d") == 0; }
static size_t n_logits(const loom_config *c) { return is_disc(c) ? 1 : (size_t)c->nclasses; }
static size_t in_height(const loom_config *c) { return is_seg(c) ? c->height / 2 : c->height; }
static size_t grid_i(const loom_config *c) { return (in_height(c) + c->patch - 1) / c->patch; }
static size_t grid_j(const loom_config *c) { return (c->width + c->patch - 1) / c->patch; }
static size_t patch_feats(const loom_config *c) { return c->patch * c->patch * loom_channels(c); }
static size_t feat_dim(const loom_config *c) { return 2 * c->hidden; } /* D */

static loom_status rn_check(const loom_config *c, loom_error *err) {
    loom_cell k;
    if (loom_cell_parse(c->cell, &k) != 0)
        return loom_fail(err, LOOM_EINVAL, "unknown cell '%s' (known: lstm, gru, rnn)", c->cell);
    if (loom_check_range("--layers", c->layers, 16, err)) return LOOM_EINVAL;
    if (loom_check_range("--hidden", c->hidden, 1024, err)) return LOOM_EINVAL;
    if (loom_check_range("--patch", c->patch, 16, err)) return LOOM_EINVAL;
    if (is_seg(c)) {
        if (loom_channels(c) != 1 || c->height != 2 * c->width || c->nclasses)
            return loom_fail(err, LOOM_EINVAL, "reseg reads gray examples of a scene above its label map "
                             "(fashion-mnist-scenes: 128x64), not %zux%zux%zu with %d classes", c->height,
                             c->width, loom_channels(c), c->nclasses);
        return LOOM_OK;
    }
    if (is_disc(c)) {
        if (c->nclasses)
            return loom_fail(err, LOOM_EINVAL, "renet_d is a discriminator of real against generated images, not "
                             "a classifier of %d classes", c->nclasses);
        return LOOM_OK;
    }
    if (c->nclasses < 2)
        return loom_fail(err, LOOM_EINVAL, "%s is a classifier: it needs labelled data of at least 2 "
                         "classes (IDX label files or class sub-directories), not %d", c->model, c->nclasses);
    return LOOM_OK;
}

static size_t rn_layout(const loom_config *c, loom_param *out) {
    static const char *const sweep[NSWEEP] = {"row_f", "row_b", "col_f", "col_b"};
    const size_t h = c->hidden, G = loom_cell_gates(cell_of(c)) * h, D = feat_dim(c);
    const size_t K = n_logits(c);
    const float fan_h = 1.0f / sqrtf((float)h); /* PyTorch's init of its recurrent layers */
    size_t n = 0;
    char fmt[64];
    for (size_t l = 0; l < c->layers; l++)
        for (size_t s = 0; s < NSWEEP; s++) {
            const size_t in = l == 0 && s < S_COL_F ? patch_feats(c) : D;
            snprintf(fmt, sizeof fmt, "sweep.%%zu.%s.weight_ih", sweep[s]);
            n = loom_param_add(out, n, fan_h, in, G, fmt, l);
            snprintf(fmt, sizeof fmt, "sweep.%%zu.%s.weight_hh", sweep[s]);
            n = loom_param_add(out, n, fan_h, h, G, fmt, l);
            snprintf(fmt, sizeof fmt, "sweep.%%zu.%s.bias_ih", sweep[s]);
            n = loom_param_add(out, n, 0.0f, G, 0, fmt, l);
            snprintf(fmt, sizeof fmt, "sweep.%%zu.%s.bias_hh", sweep[s]);
            n = loom_param_add(out, n, 0.0f, G, 0, fmt, l);
        }
    if (is_seg(c)) { /* every position predicts its patch's pixels */
        n = loom_param_add_named(out, n, D, c->patch * c->patch * LOOM_SCENE_CLASSES, "seg.weight");
        n = loom_param_add_named(out, n, c->patch * c->patch * LOOM_SCENE_CLASSES, 0, "seg.bias");
        return n;
    }
    n = loom_param_add_named(out, n, D, D, "fc.weight");
    n = loom_param_add_named(out, n, D, 0, "fc.bias");
    n = loom_param_add_named(out, n, D, K, "head.weight");
    n = loom_param_add_named(out, n, K, 0, "head.bias");
    return n;
}

static void rn_init_extra(loom_model *m) {
    if (cell_of(&m->cfg) != LOOM_CELL_LSTM) return;
    const size_t h = m->cfg.hidden;
    for (size_t l = 0; l < m->cfg.layers; l++)
        for (size_t s = 0; s < NSWEEP; s++) {
            float *b = m->w + m->params[p_sweep(l, s, K_BIH)].offset;
            for (size_t k = 0; k < h; k++) b[h + k] = 1.0f; /* forget gate: i f g o */
        }
}

static const float *W(const loom_model *m, size_t idx) { return m->w + m->params[idx].offset; }

static loom_bisweep_params sweep_params(const loom_model *m, size_t l, size_t s) {
    loom_seq_params f = {W(m, p_sweep(l, s, K_WIH)), W(m, p_sweep(l, s, K_WHH)),
                         W(m, p_sweep(l, s, K_BIH)), W(m, p_sweep(l, s, K_BHH)), NULL};
    loom_seq_params b = {W(m, p_sweep(l, s + 1, K_WIH)), W(m, p_sweep(l, s + 1, K_WHH)),
                         W(m, p_sweep(l, s + 1, K_BIH)), W(m, p_sweep(l, s + 1, K_BHH)), NULL};
    return (loom_bisweep_params){f, b};
}

/* grad NULL: no parameter gradients (a discriminator's input gradient alone) */
static loom_bisweep_grads sweep_grads(const loom_model *m, float *grad, size_t l, size_t s) {
    if (!grad) return (loom_bisweep_grads){{NULL, NULL, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
#define GR(idx) (grad + m->params[idx].offset)
    loom_seq_grads f = {GR(p_sweep(l, s, K_WIH)), GR(p_sweep(l, s, K_WHH)),
                        GR(p_sweep(l, s, K_BIH)), GR(p_sweep(l, s, K_BHH)), NULL};
    loom_seq_grads b = {GR(p_sweep(l, s + 1, K_WIH)), GR(p_sweep(l, s + 1, K_WHH)),
                        GR(p_sweep(l, s + 1, K_BIH)), GR(p_sweep(l, s + 1, K_BHH)), NULL};
#undef GR
    return (loom_bisweep_grads){f, b};
}

/* ------------------------------------------------------------ workspace */

typedef struct {
    float *x0;      /* (J, n, I, F0) patches, row layout */
    float *xrow;    /* (L, J, n, I, D) layer l's input (l >= 1), row layout */
    float *yr;      /* (L, J, n, I, D) the row sweeps' outputs */
    float *xc;      /* (L, I, n, J, D) the same, column layout */
    float *yc;      /* (L, I, n, J, D) the column sweeps' outputs */
    float *cr, *cc; /* (L, bisweep cache) row and column sweeps */
    float *scratch; /* bisweep backward scratch */
    float *dA, *dB; /* (N, D) gradients of grids */
    float *dx0;     /* (J, n, I, F0) renet_d: the gradient of the patches */
    float *pool;    /* (n, D) mean of the top grid */
    float *hid;     /* (n, D) relu(pool @ fc.weight + fc.bias): the features */
    float *logits;  /* (n, K) */
    float *dhid, *dpool; /* (n, D) */
    double *nll;    /* (n) */
    /* reseg */
    float *seglog;  /* (N, p*p*K) per position, its patch's pixels' logits */
    float *pixlog;  /* (n*Hs*W, K) per pixel, image-major */
    int32_t *pixlab; /* (n*Hs*W) the label map */
    double *pixnll; /* (n*Hs*W) */
} train_ws;

static loom_seq_dims row_dims(const loom_config *c, size_t n, size_t in) {
    return (loom_seq_dims){grid_j(c), n * grid_i(c), in, c->hidden};
}
static loom_seq_dims col_dims(const loom_config *c, size_t n) {
    return (loom_seq_dims){grid_i(c), n * grid_j(c), feat_dim(c), c->hidden};
}
/* the widest input of any sweep sizes every cache */
static size_t max_in(const loom_config *c) { return LOOM_MAX(patch_feats(c), feat_dim(c)); }

static size_t carve_train(train_ws *ws, void *base, const loom_config *c, size_t n) {
    const size_t L = c->layers, D = feat_dim(c), N = grid_i(c) * grid_j(c) * n;
    const size_t K = n_logits(c);
    const loom_cell cell = cell_of(c);
    const loom_seq_dims big = row_dims(c, n, max_in(c)); /* T * B = N for rows and columns */
    const size_t cache = loom_bisweep_cache_floats(cell, big);
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(x0, float, N * patch_feats(c));
    TAKE(xrow, float, L * N * D);
    TAKE(yr, float, L * N * D);
    TAKE(xc, float, L * N * D);
    TAKE(yc, float, L * N * D);
    TAKE(cr, float, L * cache);
    TAKE(cc, float, L * cache);
    /* the column sweep's T*B is the row sweep's, so the larger of its
     * dimensions covers both */
    TAKE(scratch, float, LOOM_MAX(loom_bisweep_scratch_floats(cell, big),
                                  loom_bisweep_scratch_floats(cell, col_dims(c, n))));
    TAKE(dA, float, N * D);
    TAKE(dB, float, N * D);
    TAKE(dx0, float, is_disc(c) ? N * patch_feats(c) : 1);
    TAKE(pool, float, n * D);
    TAKE(hid, float, n * D);
    TAKE(logits, float, n * K);
    TAKE(dhid, float, n * D);
    TAKE(dpool, float, n * D);
    TAKE(nll, double, n);
    const size_t PK = is_seg(c) ? c->patch * c->patch * LOOM_SCENE_CLASSES : 1;
    const size_t NP = is_seg(c) ? n * in_height(c) * c->width : 1;
    TAKE(seglog, float, is_seg(c) ? N * PK : 1);
    TAKE(pixlog, float, NP * (is_seg(c) ? LOOM_SCENE_CLASSES : 1));
    TAKE(pixlab, int32_t, NP);
    TAKE(pixnll, double, NP);
#undef TAKE
    return off;
}

static size_t rn_train_ws_bytes(const loom_config *c, size_t n) { return carve_train(NULL, NULL, c, n); }

/* x0 (J, n, I, F0): patch (i, j) of image b, feature (ch * p + di) * p + dj
 * = pixel (i p + di, j p + dj) of channel ch: of imgs / 255, or of the
 * float images x when imgs is NULL; 0 outside the image */
static void patches(float *x0, const loom_config *c, const uint8_t *imgs, const float *x, size_t n) {
    const size_t H = c->height, Hs = in_height(c), Wd = c->width, C = loom_channels(c), p = c->patch;
    const size_t I = grid_i(c), J = grid_j(c), F0 = patch_feats(c);
    for (size_t j = 0; j < J; j++)
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < I; i++) {
                float *f = x0 + ((j * n + b) * I + i) * F0;
                for (size_t ch = 0; ch < C; ch++)
                    for (size_t di = 0; di < p; di++)
                        for (size_t dj = 0; dj < p; dj++) {
                            const size_t y = i * p + di, xx = j * p + dj, k = ((b * C + ch) * H + y) * Wd + xx;
                            f[(ch * p + di) * p + dj] = y >= Hs || xx >= Wd ? 0.0f : imgs ? imgs[k] / 255.0f : x[k];
                        }
            }
}

/* the sweeps over the patches ws->x0: the top grid ws.yc + (L - 1) N D, column layout */
static void trunk_forward(const loom_model *m, train_ws *ws, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t L = c->layers, D = feat_dim(c), I = grid_i(c), J = grid_j(c), N = I * J * n;
    const loom_cell cell = cell_of(c);
    const size_t cache = loom_bisweep_cache_floats(cell, row_dims(c, n, max_in(c)));
    for (size_t l = 0; l < L; l++) {
        const float *xin = l ? ws->xrow + l * N * D : ws->x0;
        float *yr = ws->yr + l * N * D, *xc = ws->xc + l * N * D, *yc = ws->yc + l * N * D;
        loom_bisweep_forward(yr, ws->cr + l * cache, xin, sweep_params(m, l, S_ROW_F), cell,
                             row_dims(c, n, l ? D : patch_feats(c)));
        loom_grid_transpose(xc, yr, J, n, I, D, 0);
        loom_bisweep_forward(yc, ws->cc + l * cache, xc, sweep_params(m, l, S_COL_F), cell, col_dims(c, n));
        if (l + 1 < L) loom_grid_transpose(ws->xrow + (l + 1) * N * D, yc, I, n, J, D, 0);
    }
}

/* the sweeps, the pooling and the head: ws.hid, ws.logits, of imgs (bytes)
 * or, when NULL, of x (floats) */
static void forward(const loom_model *m, train_ws *ws, const uint8_t *imgs, const float *x, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t L = c->layers, D = feat_dim(c), I = grid_i(c), J = grid_j(c), N = I * J * n;
    const size_t K = n_logits(c);
    patches(ws->x0, c, imgs, x, n);
    trunk_forward(m, ws, n);
    /* pool[b] = mean over (i, j) of the top grid (I, n, J, D) */
    const float *top = ws->yc + (L - 1) * N * D;
    const float inv = 1.0f / (float)(I * J);
    for (size_t b = 0; b < n; b++) {
        float *pb = ws->pool + b * D;
        memset(pb, 0, D * sizeof *pb);
        for (size_t i = 0; i < I; i++)
            for (size_t j = 0; j < J; j++) {
                const float *y = top + ((i * n + b) * J + j) * D;
                for (size_t k = 0; k < D; k++) pb[k] += y[k];
            }
        for (size_t k = 0; k < D; k++) pb[k] *= inv;
    }
    loom_linear_forward(ws->hid, ws->pool, W(m, p_head(c, H_FC_W)), W(m, p_head(c, H_FC_B)), n, D, D);
    for (size_t k = 0; k < n * D; k++) ws->hid[k] = ws->hid[k] > 0.0f ? ws->hid[k] : 0.0f;
    loom_linear_forward(ws->logits, ws->hid, W(m, p_head(c, H_OUT_W)), W(m, p_head(c, H_OUT_B)), n, D, K);
}

/* the sweeps' backward: ws->dA holds d loss / d top grid (column layout);
 * dx0 (J, n, I, F0), when not NULL, += d loss / d the patches */
static void trunk_backward(const loom_model *m, train_ws *ws, float *grad, float *dx0, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t L = c->layers, D = feat_dim(c), I = grid_i(c), J = grid_j(c), N = I * J * n;
    const loom_cell cell = cell_of(c);
    const size_t cache = loom_bisweep_cache_floats(cell, row_dims(c, n, max_in(c)));
    for (size_t l = L; l-- > 0;) {
        /* dA: d loss / d yc_l, column layout */
        memset(ws->dB, 0, N * D * sizeof *ws->dB);
        loom_bisweep_backward(ws->dB, sweep_grads(m, grad, l, S_COL_F), ws->scratch, ws->dA,
                              ws->xc + l * N * D, sweep_params(m, l, S_COL_F), ws->cc + l * cache, cell,
                              col_dims(c, n));
        /* xc = yr in column layout */
        loom_grid_transpose(ws->dA, ws->dB, I, n, J, D, 0);
        if (l) memset(ws->dB, 0, N * D * sizeof *ws->dB);
        loom_bisweep_backward(l ? ws->dB : dx0, sweep_grads(m, grad, l, S_ROW_F), ws->scratch, ws->dA,
                              l ? ws->xrow + l * N * D : ws->x0, sweep_params(m, l, S_ROW_F),
                              ws->cr + l * cache, cell, row_dims(c, n, l ? D : patch_feats(c)));
        /* xrow_l = yc_{l-1} in row layout */
        if (l) loom_grid_transpose(ws->dA, ws->dB, J, n, I, D, 0);
    }
}


/* ws->logits holds d loss / d logits: the head's gradients (grad NULL:
 * none), and ws->dA = d loss / d the top grid */
static void head_backward(const loom_model *m, train_ws *ws, float *grad, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t D = feat_dim(c), I = grid_i(c), J = grid_j(c), K = n_logits(c);
#define GR(idx) (grad ? grad + m->params[p_head(c, idx)].offset : NULL)
    /* logits = hid @ head.weight + head.bias */
    memset(ws->dhid, 0, n * D * sizeof *ws->dhid);
    loom_linear_backward(ws->dhid, GR(H_OUT_W), GR(H_OUT_B), ws->logits, ws->hid, W(m, p_head(c, H_OUT_W)), n, D,
                         K);
    /* hid = relu(pool @ fc.weight + fc.bias) */
    for (size_t k = 0; k < n * D; k++) ws->dhid[k] = ws->hid[k] > 0.0f ? ws->dhid[k] : 0.0f;
    memset(ws->dpool, 0, n * D * sizeof *ws->dpool);
    loom_linear_backward(ws->dpool, GR(H_FC_W), GR(H_FC_B), ws->dhid, ws->pool, W(m, p_head(c, H_FC_W)), n, D, D);
#undef GR
    /* pool[b] = mean over (i, j) of top[i][b][j] */
    const float inv = 1.0f / (float)(I * J);
    for (size_t i = 0; i < I; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < J; j++) {
                float *d = ws->dA + ((i * n + b) * J + j) * D;
                for (size_t k = 0; k < D; k++) d[k] = inv * ws->dpool[b * D + k];
            }
}

static void rn_shard(const loom_model *m, void *wsp, float *grad, double *nll_img,
                     const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    const loom_config *c = &m->cfg;
    const size_t K = (size_t)c->nclasses;
    train_ws ws;
    carve_train(&ws, wsp, c, n);
    forward(m, &ws, imgs, NULL, n);
    /* labels are checked by model.c; without any there is nothing to score */
    if (!labels) {
        for (size_t b = 0; b < n; b++) nll_img[b] = NAN;
        return;
    }
    loom_class_xent(grad ? ws.logits : NULL, nll_img, ws.logits, labels, n, K, scale);
    if (!grad) return;
    head_backward(m, &ws, grad, n);
    trunk_backward(m, &ws, grad, NULL, n);
}

static size_t rn_predict_floats(const loom_config *c) { return (size_t)c->nclasses; }
static size_t rn_feat_dim(const loom_config *c) { return feat_dim(c); }

static void rn_predict(const loom_model *m, void *wsp, float *logits, float *feats,
                       const uint8_t *imgs, size_t n) {
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    forward(m, &ws, imgs, NULL, n);
    if (logits) memcpy(logits, ws.logits, n * (size_t)m->cfg.nclasses * sizeof *logits);
    if (feats) memcpy(feats, ws.hid, n * feat_dim(&m->cfg) * sizeof *feats);
}

/* ------------------------------------------------------------ reseg */

/* ws.pixlog (n, Hs, W, K): the per-pixel logits of the top grid, and
 * ws.pixlab the label maps (the lower half of each example; a value outside
 * 0 .. K-1, which the scene loader never writes, counts as background) */
static void seg_forward(const loom_model *m, train_ws *ws, const uint8_t *imgs, size_t n) {
    const loom_config *c = &m->cfg;
    const size_t L = c->layers, D = feat_dim(c), J = grid_j(c), N = grid_i(c) * J * n;
    const size_t p = c->patch, K = LOOM_SCENE_CLASSES, PK = p * p * K, Hs = in_height(c), Wd = c->width;
    patches(ws->x0, c, imgs, NULL, n);
    trunk_forward(m, ws, n);
    const float *top = ws->yc + (L - 1) * N * D;
    /* seglog = top @ seg.weight + seg.bias, one row per position (i, b, j) */
    loom_linear_forward(ws->seglog, top, W(m, p_head(c, 0)), W(m, p_head(c, 1)), N, D, PK);
    for (size_t b = 0; b < n; b++)
        for (size_t y = 0; y < Hs; y++)
            for (size_t x = 0; x < Wd; x++) {
                const size_t q = (b * Hs + y) * Wd + x;
                const float *src = ws->seglog + (((y / p) * n + b) * J + x / p) * PK + ((y % p) * p + x % p) * K;
                memcpy(ws->pixlog + q * K, src, K * sizeof *src);
                const uint8_t v = imgs[(b * c->height + Hs + y) * Wd + x];
                ws->pixlab[q] = v < K ? v : 0;
            }
}

static void seg_shard(const loom_model *m, void *wsp, float *grad, double *nll_img,
                      const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    (void)labels;
    const loom_config *c = &m->cfg;
    const size_t L = c->layers, D = feat_dim(c), J = grid_j(c), N = grid_i(c) * J * n;
    const size_t p = c->patch, K = LOOM_SCENE_CLASSES, PK = p * p * K, Hs = in_height(c), Wd = c->width;
    const size_t P = Hs * Wd; /* pixels of a scene */
    train_ws ws;
    carve_train(&ws, wsp, c, n);
    seg_forward(m, &ws, imgs, n);
    loom_class_xent(grad ? ws.pixlog : NULL, ws.pixnll, ws.pixlog, ws.pixlab, n * P, K, scale);
    for (size_t b = 0; b < n; b++) {
        double sum = 0.0;
        for (size_t q = 0; q < P; q++) sum += ws.pixnll[b * P + q];
        nll_img[b] = sum;
    }
    if (!grad) return;
    /* pixlog is a copy of seglog's entries: scatter back (padding pixels get none) */
    memset(ws.seglog, 0, N * PK * sizeof *ws.seglog);
    for (size_t b = 0; b < n; b++)
        for (size_t y = 0; y < Hs; y++)
            for (size_t x = 0; x < Wd; x++) {
                float *dst = ws.seglog + (((y / p) * n + b) * J + x / p) * PK + ((y % p) * p + x % p) * K;
                memcpy(dst, ws.pixlog + ((b * Hs + y) * Wd + x) * K, K * sizeof *dst);
            }
    /* seglog = top @ seg.weight + seg.bias */
    memset(ws.dA, 0, N * D * sizeof *ws.dA);
    loom_linear_backward(ws.dA, grad + m->params[p_head(c, 0)].offset, grad + m->params[p_head(c, 1)].offset,
                         ws.seglog, ws.yc + (L - 1) * N * D, W(m, p_head(c, 0)), N, D, PK);
    trunk_backward(m, &ws, grad, NULL, n);
}

static size_t seg_predict_floats(const loom_config *c) { return in_height(c) * c->width * LOOM_SCENE_CLASSES; }
static size_t seg_feat_dim(const loom_config *c) {
    (void)c;
    return 0;
}

static void seg_predict(const loom_model *m, void *wsp, float *logits, float *feats,
                        const uint8_t *imgs, size_t n) {
    (void)feats;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    seg_forward(m, &ws, imgs, n);
    if (logits) memcpy(logits, ws.pixlog, n * seg_predict_floats(&m->cfg) * sizeof *logits);
}

static const char *seg_nll_kind(const loom_config *c) {
    (void)c;
    return "per-pixel class cross-entropy -log p(label map | scene) (a segmenter: no likelihood of the image)";
}

static const char *seg_cannot_sample(const loom_config *c) {
    (void)c;
    return "reseg is a segmenter; it does not generate images";
}

static const char *rn_nll_kind(const loom_config *c) {
    (void)c;
    return "class cross-entropy -log p(label | image) (a classifier: no likelihood of the image)";
}

static const char *rn_cannot_sample(const loom_config *c) {
    (void)c;
    return "renet is a classifier; it does not generate images";
}

static size_t rn_sample_ws_bytes(const loom_config *c, size_t n) {
    (void)c, (void)n;
    return 64;
}

const loom_model_ops loom_renet_ops = {
    .name = "renet",
    .check = rn_check,
    .layout = rn_layout,
    .init_extra = rn_init_extra,
    .train_ws_bytes = rn_train_ws_bytes,
    .micro_shard = 16,
    .shard = rn_shard,
    .sample_ws_bytes = rn_sample_ws_bytes,
    .nll_kind = rn_nll_kind,
    .cannot_sample = rn_cannot_sample,
    .labelled = 1,
    .class_floats = rn_predict_floats,
    .feat_dim = rn_feat_dim,
    .classify = rn_predict,
};

const loom_model_ops loom_reseg_ops = {
    .name = "reseg",
    .check = rn_check,
    .layout = rn_layout,
    .init_extra = rn_init_extra,
    .train_ws_bytes = rn_train_ws_bytes,
    .micro_shard = 8,
    .shard = seg_shard,
    .sample_ws_bytes = rn_sample_ws_bytes,
    .nll_kind = seg_nll_kind,
    .cannot_sample = seg_cannot_sample,
    .class_floats = seg_predict_floats,
    .feat_dim = seg_feat_dim,
    .classify = seg_predict,
};

/* ------------------------------------------------------------ renet_d: a recurrent discriminator */

/* a discriminator's workspace for n holds 2n images (src/train/gan.c) */
static size_t rd_ws_bytes(const loom_config *c, size_t n) { return carve_train(NULL, NULL, c, 2 * n); }

/* out (n) = the logit of "real" of each float image x (n, C, H, W) in [0, 1] */
static void rd_forward_x(const loom_model *m, void *wsp, float *out, const float *x, size_t n) {
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    forward(m, &ws, NULL, x, n);
    memcpy(out, ws.logits, n * sizeof *out);
}

/* the same of bytes (loom_disc_logits: test images, samples) */
static void rd_forward_out(const loom_model *m, void *wsp, float *out, double *internal, const uint8_t *imgs,
                           const int32_t *labels, size_t n) {
    (void)labels;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    forward(m, &ws, imgs, NULL, n);
    memcpy(out, ws.logits, n * sizeof *out);
    for (size_t b = 0; b < n; b++) internal[b] = 0.0;
}

/* dout (n) = d loss / d logit of the last forward_x; grad (NULL: skipped) +=
 * d loss / d parameters, dinput (NULL: skipped) += d loss / d x */
static void rd_backward_out(const loom_model *m, void *wsp, float *grad, float *dinput, const float *dout,
                            const int32_t *labels, size_t n, float internal_weight) {
    (void)labels, (void)internal_weight;
    const loom_config *c = &m->cfg;
    const size_t H = c->height, Wd = c->width, C = loom_channels(c), p = c->patch;
    const size_t I = grid_i(c), J = grid_j(c), F0 = patch_feats(c);
    train_ws ws;
    carve_train(&ws, wsp, c, n);
    memcpy(ws.logits, dout, n * sizeof *dout);
    head_backward(m, &ws, grad, n);
    if (dinput) memset(ws.dx0, 0, J * n * I * F0 * sizeof *ws.dx0);
    trunk_backward(m, &ws, grad, dinput ? ws.dx0 : NULL, n);
    if (!dinput) return;
    for (size_t j = 0; j < J; j++) /* the patches' gradient back to the pixels (patches) */
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < I; i++) {
                const float *f = ws.dx0 + ((j * n + b) * I + i) * F0;
                for (size_t ch = 0; ch < C; ch++)
                    for (size_t di = 0; di < p && i * p + di < H; di++)
                        for (size_t dj = 0; dj < p && j * p + dj < Wd; dj++)
                            dinput[((b * C + ch) * H + i * p + di) * Wd + j * p + dj] += f[(ch * p + di) * p + dj];
            }
}

static size_t rd_out_floats(const loom_config *c) {
    (void)c;
    return 1;
}

static const char *rd_nll_kind(const loom_config *c) {
    (void)c;
    return "a discriminator: the logit that an image is real (it has no likelihood of its own)";
}

static const char *rd_cannot_sample(const loom_config *c) {
    (void)c;
    return "renet_d is a discriminator: it judges images, it does not draw them";
}

const loom_model_ops loom_renet_d_ops = {
    .name = "renet_d",
    .check = rn_check,
    .layout = rn_layout,
    .init_extra = rn_init_extra,
    .train_ws_bytes = rd_ws_bytes,
    .micro_shard = 8,
    .sample_ws_bytes = rn_sample_ws_bytes,
    .nll_kind = rd_nll_kind,
    .cannot_sample = rd_cannot_sample,
    .output = LOOM_OUT_LOGIT,
    .out_floats = rd_out_floats,
    .forward_out = rd_forward_out,
    .backward_out = rd_backward_out,
    .forward_x = rd_forward_x,
};
