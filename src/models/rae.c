/* rae: a convolutional encoder and a row-by-row LSTM decoder (docs/rae.md).
 *
 * Encoder: two 3x3 stride-2 convolutions (ReLU) and a linear map to a code
 * (--zdim), or to [mu, log sigma] of a Gaussian code with --variational.
 * Decoder: an LSTM over the image rows whose input at row i is row i-1 of the
 * binarized image and whose gates get a per-image bias code @ code.weight;
 * row i's W Bernoulli logits are a linear map of its hidden state. */
#include "latent.h"
#include "model.h"

#include "../losses/losses.h"
#include "../nn/nn.h"
#include "../nn/seq.h"
#include "fastmath.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define C1 16 /* channels of the first convolution */
#define C2 32 /* and of the second */

enum { P_C1_W, P_C1_B, P_C2_W, P_C2_B, P_FC_W, P_FC_B, P_WIH, P_WHH, P_BIH, P_BHH, P_CODE_W,
       P_OUT_W, P_OUT_B };

/* a 3x3 convolution as its 9 taps */
static const loom_tap taps3[9] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 0},
                                  {0, 1},   {1, -1}, {1, 0},  {1, 1}};

typedef struct {
    size_t H, W, HW, H1, W1, H2, W2, F, h, z, zq;
    int var;
} dims;

static dims get_dims(const loom_config *c) {
    dims d;
    d.H = c->height, d.W = c->width, d.HW = d.H * d.W;
    d.H1 = (d.H + 1) / 2, d.W1 = (d.W + 1) / 2, d.H2 = (d.H1 + 1) / 2, d.W2 = (d.W1 + 1) / 2;
    d.F = d.H2 * d.W2 * C2;
    d.h = c->hidden, d.z = c->zdim, d.var = c->variational;
    d.zq = d.var ? 2 * d.z : d.z;
    return d;
}

static loom_status ra_check(const loom_config *c, loom_error *err) {
    if (loom_channels(c) != 1)
        return loom_fail(err, LOOM_EINVAL, "%s models grayscale images only, not %zu channels "
                         "(colour: rowlstm or diagbilstm)", c->model, loom_channels(c));
    if (loom_check_range("--hidden", c->hidden, 4096, err)) return LOOM_EINVAL;
    if (loom_check_range("--zdim", c->zdim, 4096, err)) return LOOM_EINVAL;
    if (c->variational != 0 && c->variational != 1)
        return loom_fail(err, LOOM_EINVAL, "variational must be 0 or 1, not %d", c->variational);
    if (c->nclasses) return loom_fail(err, LOOM_EINVAL, "rae is unconditional (no --conditional)");
    return LOOM_OK;
}

static size_t ra_layout(const loom_config *c, loom_param *out) {
    const dims d = get_dims(c);
    const size_t G = 4 * d.h;
    size_t n = 0;
    n = loom_param_add_named(out, n, 9, C1, "enc.conv1.weight");
    n = loom_param_add_named(out, n, C1, 0, "enc.conv1.bias");
    n = loom_param_add_named(out, n, 9 * C1, C2, "enc.conv2.weight");
    n = loom_param_add_named(out, n, C2, 0, "enc.conv2.bias");
    n = loom_param_add_named(out, n, d.F, d.zq, "enc.fc.weight");
    n = loom_param_add_named(out, n, d.zq, 0, "enc.fc.bias");
    n = loom_param_add_named(out, n, d.W, G, "dec.w_ih");
    n = loom_param_add_named(out, n, d.h, G, "dec.w_hh");
    n = loom_param_add_named(out, n, G, 0, "dec.b_ih");
    n = loom_param_add_named(out, n, G, 0, "dec.b_hh");
    n = loom_param_add_named(out, n, d.z, G, "dec.code.weight");
    n = loom_param_add_named(out, n, d.h, d.W, "out.weight");
    n = loom_param_add_named(out, n, d.W, 0, "out.bias");
    return n;
}

static void ra_init_extra(loom_model *m) {
    const size_t h = m->cfg.hidden;
    float *b = m->w + m->params[P_BIH].offset;
    for (size_t k = 0; k < h; k++) b[h + k] = 1.0f; /* forget gate */
}

static const float *W(const loom_model *m, int k) { return m->w + m->params[k].offset; }
static float *G(const loom_model *m, float *grad, int k) { return grad + m->params[k].offset; }

static loom_seq_params dec_params(const loom_model *m, const float *cb) {
    return (loom_seq_params){W(m, P_WIH), W(m, P_WHH), W(m, P_BIH), W(m, P_BHH), cb};
}

/* ------------------------------------------------------------ training workspace */

typedef struct {
    int *generated; /* 1 after ra_generate (a decoding from the prior), 0 after ra_forward */
    loom_rng *rng;  /* (n) ra_generate's noise per image */
    double *bce, *kl, *lqp, *lse_m, *lse_s; /* (n) */
    float *xc;     /* (H, n, W) binarized image, row-major over the batch */
    float *X;      /* (H, n, W) decoder inputs: row i-1 (zeros for i = 0) */
    float *col1;   /* (H*n*W, 9) */
    float *y1;     /* (H, n, W, C1) after ReLU */
    float *a1;     /* (H1, n, W1, C1) every other pixel of y1 */
    float *col2;   /* (H1*n*W1, 9*C1) */
    float *y2;     /* (H1, n, W1, C2) after ReLU */
    float *f;      /* (n, F) flattened every other pixel of y2 */
    float *q;      /* (n, zq) */
    float *eps;    /* (n, z) */
    float *code;   /* (n, z) */
    float *cb;     /* (n, 4h) code @ code.weight: per-image gate bias */
    float *cache;  /* LSTM cache over H steps */
    float *Y;      /* (H, n, h) */
    float *logits; /* (H, n, W) */
    float *dY;     /* (H, n, h) */
    float *lscr;   /* LSTM backward scratch */
    float *dcb;    /* (n, 4h) */
    float *dcode;  /* (n, z) */
    float *dq;     /* (n, zq) */
    float *df;     /* (n, F) */
    float *dy2;    /* (H1, n, W1, C2) */
    float *da1;    /* (H1, n, W1, C1) */
    float *dy1;    /* (H, n, W, C1) */
} train_ws;

static loom_seq_dims seq_dims(const dims *d, size_t n) { return (loom_seq_dims){d->H, n, d->W, d->h}; }

static size_t carve_train(train_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    const size_t N = d.H * n * d.W, N1 = d.H1 * n * d.W1, G4 = 4 * d.h;
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(generated, int, 1);
    TAKE(rng, loom_rng, n);
    TAKE(bce, double, n);
    TAKE(kl, double, n);
    TAKE(lqp, double, n);
    TAKE(lse_m, double, n);
    TAKE(lse_s, double, n);
    TAKE(xc, float, N);
    TAKE(X, float, N);
    TAKE(col1, float, N * 9);
    TAKE(y1, float, N * C1);
    TAKE(a1, float, N1 * C1);
    TAKE(col2, float, N1 * 9 * C1);
    TAKE(y2, float, N1 * C2);
    TAKE(f, float, n * d.F);
    TAKE(q, float, n * d.zq);
    TAKE(eps, float, n * d.z);
    TAKE(code, float, n * d.z);
    TAKE(cb, float, n * G4);
    TAKE(cache, float, loom_seq_cache_floats(LOOM_CELL_LSTM, seq_dims(&d, n)));
    TAKE(Y, float, d.H * n * d.h);
    TAKE(logits, float, N);
    TAKE(dY, float, d.H * n * d.h);
    TAKE(lscr, float, loom_seq_scratch_floats(LOOM_CELL_LSTM, seq_dims(&d, n)));
    TAKE(dcb, float, n * G4);
    TAKE(dcode, float, n * d.z);
    TAKE(dq, float, n * d.zq);
    TAKE(df, float, n * d.F);
    TAKE(dy2, float, N1 * C2);
    TAKE(da1, float, N1 * C1);
    TAKE(dy1, float, N * C1);
#undef TAKE
    return off;
}

static size_t carve_sample_after(const loom_config *c, size_t n);
/* the decoding workspace follows the training one (reconstruct uses both) */
static size_t ra_train_ws_bytes(const loom_config *c, size_t n) {
    return carve_train(NULL, NULL, c, n) + carve_sample_after(c, n);
}

/* every other pixel: dst (Hs, n, Ws, C) = src (H, n, W, C) at (2i, b, 2j) */
static void subsample(float *dst, const float *src, size_t H, size_t n, size_t W, size_t C) {
    const size_t Hs = (H + 1) / 2, Ws = (W + 1) / 2;
    for (size_t i = 0; i < Hs; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < Ws; j++)
                memcpy(dst + ((i * n + b) * Ws + j) * C, src + ((2 * i * n + b) * W + 2 * j) * C,
                       C * sizeof *dst);
}

/* reverses subsample: dsrc (H, n, W, C) = 0 except dst's values at (2i, b, 2j) */
static void subsample_backward(float *dsrc, const float *ddst, size_t H, size_t n, size_t W, size_t C) {
    const size_t Hs = (H + 1) / 2, Ws = (W + 1) / 2;
    memset(dsrc, 0, H * n * W * C * sizeof *dsrc);
    for (size_t i = 0; i < Hs; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < Ws; j++)
                memcpy(dsrc + ((2 * i * n + b) * W + 2 * j) * C, ddst + ((i * n + b) * Ws + j) * C,
                       C * sizeof *dsrc);
}

/* The encoder: q (n, zq) from ws->xc. */
static void encode(const loom_model *m, const train_ws *ws, const dims *d, size_t n) {
    const loom_conv_dims c1 = {d->H, n, d->W, 1, C1, 9}, c2 = {d->H1, n, d->W1, C1, C2, 9};
    loom_conv_forward(ws->y1, ws->col1, ws->xc, taps3, W(m, P_C1_W), W(m, P_C1_B), c1);
    loom_relu_forward(ws->y1, ws->y1, d->H * n * d->W * C1);
    subsample(ws->a1, ws->y1, d->H, n, d->W, C1);
    loom_conv_forward(ws->y2, ws->col2, ws->a1, taps3, W(m, P_C2_W), W(m, P_C2_B), c2);
    loom_relu_forward(ws->y2, ws->y2, d->H1 * n * d->W1 * C2);
    /* f[b] = y2 at (2i, b, 2j, :) for i < H2, j < W2, in (i, j, c) order */
    for (size_t i = 0; i < d->H2; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < d->W2; j++)
                memcpy(ws->f + b * d->F + (i * d->W2 + j) * C2,
                       ws->y2 + ((2 * i * n + b) * d->W1 + 2 * j) * C2, C2 * sizeof *ws->f);
    loom_linear_forward(ws->q, ws->f, W(m, P_FC_W), W(m, P_FC_B), n, d->F, d->zq);
}

/* the decoder teacher-forced on the rows xc (H, n, W) from ws->code: logits (H, n, W) */
static void decode_teacher(const loom_model *m, const train_ws *ws, const dims *d, size_t n) {
    const size_t H = d->H, Wd = d->W;
    loom_linear_forward(ws->cb, ws->code, W(m, P_CODE_W), NULL, n, d->z, 4 * d->h);
    memset(ws->X, 0, n * Wd * sizeof *ws->X); /* row -1 */
    memcpy(ws->X + n * Wd, ws->xc, (H - 1) * n * Wd * sizeof *ws->X);
    loom_lstm_forward(ws->Y, NULL, NULL, ws->cache, ws->X, NULL, NULL, dec_params(m, ws->cb), seq_dims(d, n));
    loom_linear_forward(ws->logits, ws->Y, W(m, P_OUT_W), W(m, P_OUT_B), H * n, d->h, Wd);
}

/* binarize, encode, draw the code (sample k), decode: fills bce, kl, lqp */
static void ra_forward(const loom_model *m, const train_ws *ws, const uint8_t *imgs, size_t n,
                       uint64_t k) {
    const dims d = get_dims(&m->cfg);
    const size_t H = d.H, Wd = d.W;
    *ws->generated = 0;
    for (size_t b = 0; b < n; b++) {
        /* binarize image b into its rows of xc (H, n, W) */
        float *tmp = ws->logits; /* (HW) scratch before the logits exist */
        loom_binarize(tmp, imgs + b * d.HW, d.HW, m->noise_seed);
        for (size_t i = 0; i < H; i++) memcpy(ws->xc + (i * n + b) * Wd, tmp + i * Wd, Wd * sizeof *tmp);
        ws->kl[b] = ws->lqp[b] = 0.0;
    }
    encode(m, ws, &d, n);
    for (size_t b = 0; b < n; b++) {
        const float *qb = ws->q + b * d.zq;
        float *cd = ws->code + b * d.z;
        if (!d.var) {
            memcpy(cd, qb, d.z * sizeof *cd);
            continue;
        }
        loom_rng r;
        loom_noise_rng(&r, imgs + b * d.HW, d.HW, m->noise_seed, k);
        loom_normals(ws->eps + b * d.z, d.z, &r);
        ws->kl[b] = loom_gauss_kl(qb, qb + d.z, d.z);
        ws->lqp[b] = loom_gauss_log_ratio(cd, qb, qb + d.z, ws->eps + b * d.z, d.z);
    }
    decode_teacher(m, ws, &d, n);
    for (size_t b = 0; b < n; b++) {
        double s = 0.0; /* the image's rows lie (H, n, W) apart */
        for (size_t i = 0; i < H; i++)
            s = loom_bernoulli_nll_acc(s, ws->logits + (i * n + b) * Wd, ws->xc + (i * n + b) * Wd, Wd);
        ws->bce[b] = s;
    }
}

/* Backward of ra_forward(k = 0), or with gen of ra_generate (the decoder
 * alone: the code is noise), given ws.logits overwritten with dL/dlogits
 * (H, n, W); the KL terms enter with weight kl_scale. grad +=. */
static void ra_backward(const loom_model *m, train_ws ws, float *grad, size_t n, float kl_scale, bool gen) {
    const dims d = get_dims(&m->cfg);
    const size_t H = d.H, Wd = d.W, G4 = 4 * d.h, N = H * n * Wd, N1 = d.H1 * n * d.W1;
    const float scale = kl_scale;
    memset(ws.dY, 0, H * n * d.h * sizeof *ws.dY);
    loom_linear_backward(ws.dY, G(m, grad, P_OUT_W), G(m, grad, P_OUT_B), ws.logits, ws.Y, W(m, P_OUT_W),
                         H * n, d.h, Wd);
    memset(ws.dcb, 0, n * G4 * sizeof *ws.dcb);
    const loom_seq_grads g = {G(m, grad, P_WIH), G(m, grad, P_WHH), G(m, grad, P_BIH), G(m, grad, P_BHH), ws.dcb};
    loom_lstm_backward(NULL, NULL, NULL, g, ws.lscr, ws.dY, NULL, NULL, ws.X, NULL, NULL,
                       dec_params(m, ws.cb), ws.cache, ws.Y, seq_dims(&d, n));
    /* cb = code @ code.weight */
    memset(ws.dcode, 0, n * d.z * sizeof *ws.dcode);
    loom_linear_backward(gen ? NULL : ws.dcode, G(m, grad, P_CODE_W), NULL, ws.dcb, ws.code, W(m, P_CODE_W), n,
                         d.z, G4);
    if (gen) return;
    for (size_t b = 0; b < n; b++) {
        const float *dc = ws.dcode + b * d.z, *qb = ws.q + b * d.zq;
        float *dq = ws.dq + b * d.zq;
        if (!d.var) {
            memcpy(dq, dc, d.z * sizeof *dq);
            continue;
        }
        /* code = mu + exp(ls) eps;  KL = sum 0.5 (mu^2 + exp(2 ls) - 1) - ls */
        const float *e = ws.eps + b * d.z;
        for (size_t j = 0; j < d.z; j++) {
            const float sg = expf(qb[d.z + j]);
            dq[j] = dc[j] + scale * qb[j];
            dq[d.z + j] = dc[j] * e[j] * sg + scale * (sg * sg - 1.0f);
        }
    }
    memset(ws.df, 0, n * d.F * sizeof *ws.df);
    loom_linear_backward(ws.df, G(m, grad, P_FC_W), G(m, grad, P_FC_B), ws.dq, ws.f, W(m, P_FC_W), n, d.F, d.zq);
    /* f = every other pixel of y2 = relu(conv2(a1)) */
    memset(ws.dy2, 0, N1 * C2 * sizeof *ws.dy2);
    for (size_t i = 0; i < d.H2; i++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < d.W2; j++)
                memcpy(ws.dy2 + ((2 * i * n + b) * d.W1 + 2 * j) * C2, ws.df + b * d.F + (i * d.W2 + j) * C2,
                       C2 * sizeof *ws.dy2);
    loom_relu_backward(ws.dy2, ws.dy2, ws.y2, N1 * C2);
    const loom_conv_dims c1 = {H, n, Wd, 1, C1, 9}, c2 = {d.H1, n, d.W1, C1, C2, 9};
    memset(ws.da1, 0, N1 * C1 * sizeof *ws.da1);
    loom_conv_backward(ws.da1, G(m, grad, P_C2_W), G(m, grad, P_C2_B), ws.col2, ws.dy2, ws.a1, taps3,
                       W(m, P_C2_W), c2);
    /* a1 = every other pixel of y1 = relu(conv1(x)) */
    subsample_backward(ws.dy1, ws.da1, H, n, Wd, C1);
    loom_relu_backward(ws.dy1, ws.dy1, ws.y1, N * C1);
    loom_conv_backward(NULL, G(m, grad, P_C1_W), G(m, grad, P_C1_B), ws.col1, ws.dy1, ws.xc, taps3,
                       W(m, P_C1_W), c1);
}

static void ra_shard(const loom_model *m, void *wsp, float *grad, double *nll_img,
                     const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    (void)labels;
    const size_t N = m->cfg.height * n * m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    ra_forward(m, &ws, imgs, n, 0);
    for (size_t b = 0; b < n; b++) nll_img[b] = ws.bce[b] + ws.kl[b];
    if (!grad) return;
    /* -log p(x | code) = sum softplus(l) - x l: dl = scale (sigmoid(l) - x), in place */
    loom_bernoulli_backward(ws.logits, ws.logits, ws.xc, N, scale);
    ra_backward(m, ws, grad, n, scale, false);
}

/* a VAE's negative ELBO has two terms, the KL of the posterior from the
 * prior and the reconstruction -log p(x | z); a plain autoencoder's loss is
 * the reconstruction alone (no terms) */
static size_t ra_loss_terms(const loom_config *c, const char **names) {
    if (!c->variational) return 0;
    if (names) names[0] = "kl", names[1] = "recon";
    return 2;
}

/* after ra_shard on this workspace: terms (n, 2) = its KL and reconstruction */
static void ra_shard_terms(const loom_model *m, void *wsp, double *terms, size_t n) {
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++) terms[2 * b] = ws.kl[b], terms[2 * b + 1] = ws.bce[b];
}

/* out (n, H, W) = the decoder's Bernoulli logits (teacher-forced on the
 * binarized input), internal (n) = the KL terms (0 for a plain autoencoder) */
static void ra_forward_out(const loom_model *m, void *wsp, float *out, double *internal,
                           const uint8_t *imgs, const int32_t *labels, size_t n) {
    (void)labels;
    const size_t H = m->cfg.height, Wd = m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    ra_forward(m, &ws, imgs, n, 0);
    for (size_t b = 0; b < n; b++) {
        internal[b] = ws.kl[b];
        for (size_t i = 0; i < H; i++) /* rows lie (H, n, W) in the workspace */
            memcpy(out + (b * H + i) * Wd, ws.logits + (i * n + b) * Wd, Wd * sizeof *out);
    }
}

/* after ra_forward_out, dout = d loss / d logits; after ra_generate, d loss / d x */
static void ra_backward_out(const loom_model *m, void *wsp, float *grad, float *dinput,
                            const float *dout, const int32_t *labels, size_t n,
                            float internal_weight) {
    (void)dinput, (void)labels; /* the input is an 8-bit image, binarized: no gradient */
    const size_t H = m->cfg.height, Wd = m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    const bool gen = *ws.generated;
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < H; i++) {
            float *dl = ws.logits + (i * n + b) * Wd;
            const float *g = dout + (b * H + i) * Wd;
            if (!gen) {
                memcpy(dl, g, Wd * sizeof *dl);
                continue;
            }
            for (size_t j = 0; j < Wd; j++) { /* x = sigmoid(l): dl in place of l */
                const float s = loom_sigmoidf(dl[j]);
                dl[j] = g[j] * s * (1.0f - s);
            }
        }
    ra_backward(m, ws, grad, n, internal_weight, gen);
}

/* target (n, H, W) = the binarized input of the last forward_out, from xc (H, n, W) */
static void ra_out_target(const loom_model *m, void *wsp, float *target, size_t n) {
    const size_t H = m->cfg.height, Wd = m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < H; i++)
            memcpy(target + (b * H + i) * Wd, ws.xc + (i * n + b) * Wd, Wd * sizeof *target);
}

static size_t ra_out_floats(const loom_config *c) { return c->height * c->width; }

static void ra_iw_nll(const loom_model *m, void *wsp, double *nll_img, const uint8_t *imgs,
                      const int32_t *labels, size_t n, size_t K) {
    (void)labels;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t k = 0; k < K; k++) {
        ra_forward(m, &ws, imgs, n, k);
        loom_iw_accumulate(ws.lse_m, ws.lse_s, ws.bce, ws.lqp, n, k);
    }
    loom_iw_nll(nll_img, ws.lse_m, ws.lse_s, n, K);
}

/* ------------------------------------------------------------ decoding */

typedef struct {
    float *h[2], *c[2]; /* (n, h) */
    float *step;        /* LSTM step scratch */
    float *code;        /* (n, z) */
    float *cb;          /* (n, 4h) */
    float *xrow;        /* (n, W) the previous row */
    float *logits;      /* (n, W) */
} sample_ws;

static size_t carve_sample(sample_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    size_t off = 0;
    char *p = base;
#define TAKE(field, count) LOOM_TAKE(ws, field, float, count)
    for (int k = 0; k < 2; k++) {
        TAKE(h[k], n * d.h);
        TAKE(c[k], n * d.h);
    }
    TAKE(step, loom_seq_step_floats(LOOM_CELL_LSTM, n, d.h));
    TAKE(code, n * d.z);
    TAKE(cb, n * 4 * d.h);
    TAKE(xrow, n * d.W);
    TAKE(logits, n * d.W);
#undef TAKE
    return off;
}

static size_t ra_sample_ws_bytes(const loom_config *c, size_t n) { return carve_sample(NULL, NULL, c, n); }
static size_t carve_sample_after(const loom_config *c, size_t n) { return carve_sample(NULL, NULL, c, n); }

/* decode ws->code row by row into imgs (n, H, W): with rngs, each pixel is a
 * Bernoulli draw that the next row sees; without, the next row sees
 * sigmoid(l) > 1/2 (greedy) and the image shows round(255 sigmoid(l)) */
static void decode_rows(const loom_model *m, const sample_ws *ws, uint8_t *imgs, size_t n, loom_rng *rngs) {
    const dims d = get_dims(&m->cfg);
    const loom_seq_params p = dec_params(m, ws->cb);
    loom_linear_forward(ws->cb, ws->code, W(m, P_CODE_W), NULL, n, d.z, 4 * d.h);
    memset(ws->xrow, 0, n * d.W * sizeof *ws->xrow);
    int cur = 0;
    for (size_t i = 0; i < d.H; i++) {
        loom_lstm_step(ws->h[1 - cur], ws->c[1 - cur], ws->step, ws->xrow, i ? ws->h[cur] : NULL,
                       i ? ws->c[cur] : NULL, p, n, d.W, d.h);
        cur = 1 - cur;
        loom_linear_forward(ws->logits, ws->h[cur], W(m, P_OUT_W), W(m, P_OUT_B), n, d.h, d.W);
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < d.W; j++) {
                const float l = ws->logits[b * d.W + j];
                float v;
                if (rngs) v = loom_rng_uniform(&rngs[b]) < loom_sigmoidf(l) ? 1.0f : 0.0f;
                else v = l > 0.0f ? 1.0f : 0.0f;
                ws->xrow[b * d.W + j] = v;
                imgs[(b * d.H + i) * d.W + j] = rngs ? (uint8_t)(v > 0.5f ? 255 : 0) : loom_latent_pixel(l);
            }
    }
}

static void ra_sample(const loom_model *m, void *wsp, uint8_t *imgs, const int32_t *labels, size_t n,
                      size_t keep, float temperature, loom_rng *rngs) {
    (void)labels, (void)keep;
    const dims d = get_dims(&m->cfg);
    sample_ws ws;
    carve_sample(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++) {
        loom_normals(ws.code + b * d.z, d.z, &rngs[b]);
        for (size_t j = 0; j < d.z; j++) ws.code[b * d.z + j] *= temperature;
    }
    decode_rows(m, &ws, imgs, n, rngs);
}

/* A sample for the adversarial stage (--variational): code ~ N(0, I) and
 * Bernoulli rows drawn as loom sample draws them, for images first .. first
 * + n - 1 with noise_seed (z must be NULL); x (n, H, W) = sigmoid(l) of each
 * row given the rows drawn above it, the image a reconstruction's mean is
 * (given the real rows). ra_backward_out then holds the drawn rows fixed: no
 * gradient passes through a Bernoulli draw. */
static void ra_generate(const loom_model *m, void *wsp, float *x, const float *zin, uint64_t noise_seed,
                        size_t first, size_t n) {
    (void)zin;
    const dims d = get_dims(&m->cfg);
    const size_t Wd = d.W;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    *ws.generated = 1;
    for (size_t b = 0; b < n; b++) {
        loom_index_rng(&ws.rng[b], noise_seed, first + b);
        loom_normals(ws.code + b * d.z, d.z, &ws.rng[b]);
    }
    /* decode_teacher, a row at a time: row i's input is the row drawn at i - 1,
     * so the cache ends as a teacher-forced pass over the drawn rows leaves it */
    const loom_seq_params pd = dec_params(m, ws.cb);
    loom_linear_forward(ws.cb, ws.code, W(m, P_CODE_W), NULL, n, d.z, 4 * d.h);
    memset(ws.X, 0, n * Wd * sizeof *ws.X); /* row -1 */
    for (size_t i = 0; i < d.H; i++) {
        loom_lstm_forward_step(ws.Y, ws.cache, ws.X + i * n * Wd, NULL, NULL, pd, seq_dims(&d, n), i);
        float *l = ws.logits + i * n * Wd, *xi = ws.xc + i * n * Wd;
        loom_linear_forward(l, ws.Y + i * n * d.h, W(m, P_OUT_W), W(m, P_OUT_B), n, d.h, Wd);
        for (size_t b = 0; b < n; b++) /* each pixel drawn as loom sample draws it */
            for (size_t j = 0; j < Wd; j++)
                xi[b * Wd + j] = loom_rng_uniform(&ws.rng[b]) < loom_sigmoidf(l[b * Wd + j]) ? 1.0f : 0.0f;
        if (i + 1 < d.H) memcpy(ws.X + (i + 1) * n * Wd, xi, n * Wd * sizeof *xi);
    }
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < d.H; i++)
            for (size_t j = 0; j < d.W; j++)
                x[(b * d.H + i) * d.W + j] = loom_sigmoidf(ws.logits[(i * n + b) * d.W + j]);
}

static const char *ra_cannot_sample(const loom_config *c) {
    return c->variational ? NULL : "a rae without --variational has no prior over codes to sample from";
}

static size_t ra_code_dim(const loom_config *c) { return c->zdim; }

/* codes (n, z): the code, or the posterior mean with --variational */
static void ra_encode(const loom_model *m, void *wsp, float *codes, const uint8_t *imgs, size_t n) {
    const dims d = get_dims(&m->cfg);
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++) {
        float *tmp = ws.logits;
        loom_binarize(tmp, imgs + b * d.HW, d.HW, 0);
        for (size_t i = 0; i < d.H; i++) memcpy(ws.xc + (i * n + b) * d.W, tmp + i * d.W, d.W * sizeof *tmp);
    }
    encode(m, &ws, &d, n);
    for (size_t b = 0; b < n; b++) memcpy(codes + b * d.z, ws.q + b * d.zq, d.z * sizeof *codes);
}

static void ra_reconstruct(const loom_model *m, void *wsp, uint8_t *out, const uint8_t *imgs,
                           const int32_t *labels, size_t n) {
    (void)labels;
    const dims d = get_dims(&m->cfg);
    sample_ws sw;
    carve_sample(&sw, (char *)wsp + carve_train(NULL, NULL, &m->cfg, n), &m->cfg, n);
    ra_encode(m, wsp, sw.code, imgs, n);
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++) /* the binarized input, from xc (H, n, W) */
        for (size_t i = 0; i < d.H; i++)
            for (size_t j = 0; j < d.W; j++)
                out[(2 * b * d.H + i) * d.W + j] = ws.xc[(i * n + b) * d.W + j] > 0.5f ? 255 : 0;
    uint8_t *rec = out; /* decode into the odd slots, one image at a time */
    for (size_t b = 0; b < n; b++) {
        sample_ws one = sw;
        one.code = sw.code + b * d.z;
        decode_rows(m, &one, rec + (2 * b + 1) * d.HW, 1, NULL);
    }
}

static void ra_decode(const loom_model *m, void *wsp, uint8_t *imgs, const float *codes, size_t n) {
    const dims d = get_dims(&m->cfg);
    sample_ws ws;
    carve_sample(&ws, wsp, &m->cfg, n);
    memcpy(ws.code, codes, n * d.z * sizeof *codes);
    decode_rows(m, &ws, imgs, n, NULL);
}

static const char *ra_nll_kind(const loom_config *c) {
    return c->variational ? "negative ELBO: an upper bound on -log p(x)"
                          : "reconstruction NLL -log p(x | code(x)): not a likelihood";
}

const loom_model_ops loom_rae_ops = {
    .name = "rae",
    .check = ra_check,
    .layout = ra_layout,
    .init_extra = ra_init_extra,
    .train_ws_bytes = ra_train_ws_bytes,
    .micro_shard = 16,
    .shard = ra_shard,
    .iw_nll = ra_iw_nll,
    .reconstruct = ra_reconstruct,
    .sample_ws_bytes = ra_sample_ws_bytes,
    .sample = ra_sample,
    .cannot_sample = ra_cannot_sample,
    .code_dim = ra_code_dim,
    .encode = ra_encode,
    .decode = ra_decode,
    .nll_kind = ra_nll_kind,
    .output = LOOM_OUT_BERNOULLI,
    .out_floats = ra_out_floats,
    .forward_out = ra_forward_out,
    .backward_out = ra_backward_out,
    .out_target = ra_out_target,
    .generate = ra_generate,
    .loss_terms = ra_loss_terms,
    .shard_terms = ra_shard_terms,
};
