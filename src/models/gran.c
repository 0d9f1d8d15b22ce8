/* gran: Generative Recurrent Adversarial Networks (Im, Kim, Jiang, Memisevic
 * 2016), a generator and its convolutional discriminator (docs/gran.md).
 *
 * Generator ("gran"), T = --steps-draw steps from one z ~ N(0, I) per image:
 *   h_c,t = tanh(fc(relu(conv2(relu(conv1(dC_{t-1}))))))   encoder, dC_0 = 0
 *   g_t   = relu(dfc([z, h_c,t]))                          (H/4, W/4, 2C)
 *   dC_t  = deconv2(relu(deconv1(g_t)))                    (H, W)
 *   x     = sigmoid(sum_t dC_t)
 * The encoder reads the previous step's canvas update dC_{t-1}, as in the
 * paper's h_c,t = g(dC_{t-1}); its weights are shared over the steps.
 * Convolutions are 4x4, stride 2, padding 1; deconvolutions their transposes.
 *
 * Discriminator ("gran_d"): logit = fc(lrelu(conv2(lrelu(conv1(x))))),
 * leaky slope 0.2, on images x in [0, 1] (a real image is its bytes / 255).
 * With mbstd = G it adds w_s * sigma to the logit, sigma the mean over the
 * features of their standard deviation over a group of G consecutive images
 * (Karras et al. 2018): a collapsed generator's group has sigma near 0, a
 * real group does not, so the discriminator can see the collapse.
 *
 * Neither model has a likelihood (no shard op): the training objective is
 * the GAN's (src/train/gan.c). Tensors are channels last, (n, h, w, c). */
#include "gran.h"
#include "latent.h"
#include "model.h"

#include "../nn/conv2d.h"
#include "../nn/nn.h"
#include "fastmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define K4 4
#define LEAK 0.2f

typedef struct {
    size_t H, W, HW, H2, W2, H4, W4, C, P1, E, Z, T;
} dims;

static dims get_dims(const loom_config *c) {
    dims d;
    d.H = c->height, d.W = c->width, d.HW = d.H * d.W;
    d.H2 = d.H / 2, d.W2 = d.W / 2, d.H4 = d.H / 4, d.W4 = d.W / 4;
    d.C = c->hidden, d.P1 = d.H2 * d.W2 * d.C, d.E = d.H4 * d.W4 * 2 * d.C;
    d.Z = c->zdim, d.T = c->steps_draw;
    return d;
}

/* the convolutions (H, W, 1) -> (H/2, W/2, C) and (H/2, W/2, C) -> (H/4, W/4, 2C) for n images */
static loom_sconv_dims conv1_dims(const dims *d, size_t n) {
    return (loom_sconv_dims){n, d->H, d->W, 1, d->C, K4, 2, 1};
}
static loom_sconv_dims conv2_dims(const dims *d, size_t n) {
    return (loom_sconv_dims){n, d->H2, d->W2, d->C, 2 * d->C, K4, 2, 1};
}
static size_t col_floats(const dims *d, size_t n) {
    const size_t a = loom_sconv_col_floats(conv1_dims(d, n)), b = loom_sconv_col_floats(conv2_dims(d, n));
    return a > b ? a : b;
}

static loom_status check_common(const loom_config *c, loom_error *err) {
    if (loom_channels(c) != 1)
        return loom_fail(err, LOOM_EINVAL, "%s models grayscale images only, not %zu channels", c->model,
                         loom_channels(c));
    if (c->height < 4 || c->width < 4 || c->height % 4 || c->width % 4)
        return loom_fail(err, LOOM_EINVAL, "%s needs images whose height and width are multiples of 4 "
                         "(two stride-2 layers), not %zux%zu", c->model, c->height, c->width);
    if (loom_check_range("--hidden", c->hidden, 1024, err)) return LOOM_EINVAL;
    if (c->layers != 1)
        return loom_fail(err, LOOM_EINVAL, "%s has a fixed depth (two convolutions): layers must be 1, not %zu",
                         c->model, c->layers);
    if (c->nclasses) return loom_fail(err, LOOM_EINVAL, "%s is unconditional (no --conditional)", c->model);
    return LOOM_OK;
}

static loom_status gr_check(const loom_config *c, loom_error *err) {
    if (check_common(c, err)) return LOOM_EINVAL;
    if (loom_check_range("--zdim", c->zdim, 4096, err)) return LOOM_EINVAL;
    if (loom_check_range("--steps-draw", c->steps_draw, 64, err)) return LOOM_EINVAL;
    if (c->batchnorm != 0 && c->batchnorm != 1)
        return loom_fail(err, LOOM_EINVAL, "gran: batchnorm must be 0 or 1, not %d", c->batchnorm);
    return LOOM_OK;
}

static loom_status gd_check(const loom_config *c, loom_error *err) {
    if (check_common(c, err)) return LOOM_EINVAL;
    if (c->zdim || c->steps_draw)
        return loom_fail(err, LOOM_EINVAL, "gran_d takes no zdim or steps_draw");
    if (c->mbstd > 64) return loom_fail(err, LOOM_EINVAL, "gran_d: mbstd groups of %zu images (0..64)", c->mbstd);
    return LOOM_OK;
}

/* a conv weight (cout, 4, 4, cin), uniform in +-1/sqrt(fan_in) */
static size_t add_conv(loom_param *out, size_t n, size_t cout, size_t cin, size_t fan_in, const char *name) {
    const size_t shape[4] = {cout, K4, K4, cin};
    return loom_param_add_nd(out, n, 1.0f / sqrtf((float)fan_in), 4, shape, name);
}

/* GRAN's generator tensors, in this order */
enum { G_C1_W, G_C1_B, G_C2_W, G_C2_B, G_FC_W, G_FC_B, G_DFC_W, G_DFC_B, G_D1_W, G_D1_B, G_D2_W, G_D2_B };

static size_t gr_layout(const loom_config *c, loom_param *out) {
    const dims d = get_dims(c);
    size_t n = 0;
    const bool bias = !c->batchnorm; /* batchnorm cancels a bias per channel: those layers have none */
    n = add_conv(out, n, d.C, 1, K4 * K4, "enc.conv1.weight");
    if (bias) n = loom_param_add(out, n, 0.0f, d.C, 0, "enc.conv1.bias", 0);
    n = add_conv(out, n, 2 * d.C, d.C, K4 * K4 * d.C, "enc.conv2.weight");
    if (bias) n = loom_param_add(out, n, 0.0f, 2 * d.C, 0, "enc.conv2.bias", 0);
    n = loom_param_add_fanin(out, n, 1.0f, d.E, d.Z, "enc.fc.weight", 0);
    n = loom_param_add(out, n, 0.0f, d.Z, 0, "enc.fc.bias", 0);
    n = loom_param_add_fanin(out, n, 1.0f, 2 * d.Z, d.E, "dec.fc.weight", 0);
    n = loom_param_add(out, n, 0.0f, d.E, 0, "dec.fc.bias", 0);
    /* a deconvolution's output pixel sums (4 / 2)^2 taps of each input channel */
    n = add_conv(out, n, 2 * d.C, d.C, 4 * 2 * d.C, "dec.deconv1.weight");
    if (bias) n = loom_param_add(out, n, 0.0f, d.C, 0, "dec.deconv1.bias", 0);
    n = add_conv(out, n, d.C, 1, 4 * d.C, "dec.deconv2.weight");
    n = loom_param_add(out, n, 0.0f, 1, 0, "dec.deconv2.bias", 0);
    return n;
}

enum { D_C1_W, D_C1_B, D_C2_W, D_C2_B, D_FC_W, D_FC_B, D_SD_W };

static size_t gd_layout(const loom_config *c, loom_param *out) {
    const dims d = get_dims(c);
    size_t n = 0;
    n = add_conv(out, n, d.C, 1, K4 * K4, "conv1.weight");
    n = loom_param_add(out, n, 0.0f, d.C, 0, "conv1.bias", 0);
    n = add_conv(out, n, 2 * d.C, d.C, K4 * K4 * d.C, "conv2.weight");
    n = loom_param_add(out, n, 0.0f, 2 * d.C, 0, "conv2.bias", 0);
    n = loom_param_add_fanin(out, n, 1.0f, d.E, 1, "fc.weight", 0);
    n = loom_param_add(out, n, 0.0f, 1, 0, "fc.bias", 0);
    if (c->mbstd) n = loom_param_add(out, n, 0.0f, 1, 0, "mbstd.weight", 0); /* w_s, from 0 */
    return n;
}

static const float *P(const loom_model *m, size_t k) { return m->w + m->params[k].offset; }
static float *G(const loom_model *m, float *grad, size_t k) { return grad ? grad + m->params[k].offset : NULL; }

/* the generator's tensor k (G_*): its place in the layout, which has no
 * per-channel biases before a batchnorm; SIZE_MAX for those */
static size_t gen_index(const loom_config *c, size_t k) {
    if (!c->batchnorm) return k;
    if (k == G_C1_B || k == G_C2_B || k == G_D1_B) return SIZE_MAX;
    return k - (k > G_C1_B) - (k > G_C2_B) - (k > G_D1_B);
}
/* the generator's tensor k and its gradient; NULL where it has none */
static const float *GP(const loom_model *m, size_t k) {
    const size_t i = gen_index(&m->cfg, k);
    return i == SIZE_MAX ? NULL : P(m, i);
}
static float *GG(const loom_model *m, float *grad, size_t k) {
    const size_t i = gen_index(&m->cfg, k);
    return i == SIZE_MAX ? NULL : G(m, grad, i);
}

/* y (rows, c) += bias (c) */
static void add_bias(float *y, const float *b, size_t rows, size_t c) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) y[r * c + j] += b[j];
}
/* db (c) += the column sums of dy (rows, c) */
static void bias_grad(float *db, const float *dy, size_t rows, size_t c) {
    if (!db) return;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) db[j] += dy[r * c + j];
}
/* dy *= relu'(y), y the output (0 where y <= 0) */
static void relu_back(float *dy, const float *y, size_t k) {
    for (size_t i = 0; i < k; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
static void lrelu(float *y, size_t k) {
    for (size_t i = 0; i < k; i++) y[i] = y[i] > 0.0f ? y[i] : LEAK * y[i];
}
/* the slope from the output's sign, which the leaky ReLU keeps */
static void lrelu_back(float *dy, const float *y, size_t k) {
    for (size_t i = 0; i < k; i++) dy[i] = y[i] > 0.0f ? dy[i] : LEAK * dy[i];
}

/* ------------------------------------------------------------ generator */

typedef struct {
    float *z;   /* (n, Z) */
    float *dc;  /* (T, n, HW) canvas updates dC_t */
    float *a1;  /* (T, n, P1) encoder conv1, after the ReLU */
    float *a2;  /* (T, n, E) encoder conv2, after the ReLU */
    float *hc;  /* (T, n, Z) h_c,t after the tanh */
    float *g0;  /* (T, n, E) decoder fc, after the ReLU */
    float *g1;  /* (T, n, P1) deconv1, after the ReLU */
    float *x;   /* (n, HW) sigmoid of the canvas */
    float *u;   /* (n, 2Z) [z, h_c,t] */
    float *zero; /* (n, HW) dC_0 */
    float *col;
    /* batchnorm: each hidden layer normalised before its ReLU, like a1 .. g1,
     * and the inverse standard deviations of their channels (T, channels) */
    float *ya1, *ya2, *yg0, *yg1, *sa1, *sa2, *sg0, *sg1;
    /* backward */
    float *dS, *ddc, *dnext, *dg1, *dg0, *du, *dhc, *da2, *da1; /* like their forwards, one step */
    size_t n;   /* images of the last forward */
} gen_ws;

static size_t carve_gen(gen_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    char *p = base;
    size_t off = 0;
    LOOM_TAKE(ws, z, float, n * d.Z);
    LOOM_TAKE(ws, dc, float, d.T * n * d.HW);
    LOOM_TAKE(ws, a1, float, d.T * n * d.P1);
    LOOM_TAKE(ws, a2, float, d.T * n * d.E);
    LOOM_TAKE(ws, hc, float, d.T * n * d.Z);
    LOOM_TAKE(ws, g0, float, d.T * n * d.E);
    LOOM_TAKE(ws, g1, float, d.T * n * d.P1);
    LOOM_TAKE(ws, x, float, n * d.HW);
    LOOM_TAKE(ws, u, float, n * 2 * d.Z);
    LOOM_TAKE(ws, zero, float, n * d.HW);
    LOOM_TAKE(ws, col, float, col_floats(&d, n));
    const size_t bn = c->batchnorm ? 1 : 0;
    LOOM_TAKE(ws, ya1, float, bn * d.T * n * d.P1);
    LOOM_TAKE(ws, ya2, float, bn * d.T * n * d.E);
    LOOM_TAKE(ws, yg0, float, bn * d.T * n * d.E);
    LOOM_TAKE(ws, yg1, float, bn * d.T * n * d.P1);
    LOOM_TAKE(ws, sa1, float, bn * d.T * d.C);
    LOOM_TAKE(ws, sa2, float, bn * d.T * 2 * d.C);
    LOOM_TAKE(ws, sg0, float, bn * d.T * 2 * d.C);
    LOOM_TAKE(ws, sg1, float, bn * d.T * d.C);
    LOOM_TAKE(ws, dS, float, n * d.HW);
    LOOM_TAKE(ws, ddc, float, n * d.HW);
    LOOM_TAKE(ws, dnext, float, n * d.HW);
    LOOM_TAKE(ws, dg1, float, n * d.P1);
    LOOM_TAKE(ws, dg0, float, n * d.E);
    LOOM_TAKE(ws, du, float, n * 2 * d.Z);
    LOOM_TAKE(ws, dhc, float, n * d.Z);
    LOOM_TAKE(ws, da2, float, n * d.E);
    LOOM_TAKE(ws, da1, float, n * d.P1);
    return off;
}

static size_t gr_ws_bytes(const loom_config *c, size_t n) { return carve_gen(NULL, NULL, c, n); }

/* u (n, 2Z) = [z, h_c] row by row */
static void concat_u(float *u, const float *z, const float *hc, size_t n, size_t Z) {
    for (size_t b = 0; b < n; b++) {
        memcpy(u + b * 2 * Z, z + b * Z, Z * sizeof *u);
        memcpy(u + b * 2 * Z + Z, hc + b * Z, Z * sizeof *u);
    }
}

#define BN_EPS 1e-5f
#define BN_MAXC 2048 /* channels of a normalised layer: 2 --hidden, at most 2 x 1024 */

/* y (rows, c) = (x - mean) / sqrt(var + eps), per channel over the rows
 * (the images of the call and their pixels), in place; istd (c) = the
 * 1 / sqrt(var + eps). Double sums: a constant channel (dC_0 = 0) gives 0. */
static void bn_forward(float *y, float *istd, size_t rows, size_t c) {
    double m[BN_MAXC], v[BN_MAXC]; /* row by row: the channels are contiguous */
    for (size_t j = 0; j < c; j++) m[j] = v[j] = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) m[j] += y[r * c + j];
    for (size_t j = 0; j < c; j++) m[j] /= (double)rows;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) v[j] += (y[r * c + j] - m[j]) * (y[r * c + j] - m[j]);
    float mf[BN_MAXC];
    for (size_t j = 0; j < c; j++) {
        istd[j] = (float)(1.0 / sqrt(v[j] / (double)rows + BN_EPS));
        mf[j] = (float)m[j];
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) y[r * c + j] = (y[r * c + j] - mf[j]) * istd[j];
}

/* dy (rows, c) = d / d y in, d / d x out, in place:
 * dx = istd (dy - mean(dy) - y mean(dy y)), means per channel over the rows */
static void bn_backward(float *dy, const float *y, const float *istd, size_t rows, size_t c) {
    double a[BN_MAXC], b[BN_MAXC];
    for (size_t j = 0; j < c; j++) a[j] = b[j] = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) a[j] += dy[r * c + j], b[j] += (double)dy[r * c + j] * y[r * c + j];
    float ma[BN_MAXC], mb[BN_MAXC];
    for (size_t j = 0; j < c; j++) ma[j] = (float)(a[j] / (double)rows), mb[j] = (float)(b[j] / (double)rows);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c; j++) dy[r * c + j] = istd[j] * (dy[r * c + j] - ma[j] - y[r * c + j] * mb[j]);
}

/* out (rows, c) = relu(in (rows, c) + bias (NULL: none)), or through the
 * batch normalisation when y is non-NULL: y = bn(in), out = relu(y) (a bias
 * per channel would cancel: with batchnorm the layer's bias is unused, its
 * gradient 0) */
static void bias_norm_relu(float *out, float *y, float *istd, const float *b, size_t rows, size_t c) {
    float *pre = y ? y : out; /* in was written here */
    if (y) bn_forward(y, istd, rows, c); /* which removes a bias per channel: none added */
    else if (b) add_bias(pre, b, rows, c);
    for (size_t i = 0; i < rows * c; i++) out[i] = pre[i] > 0.0f ? pre[i] : 0.0f;
}

/* d (rows, c) = d / d relu output in, d / d (in + bias) out; db += */
static void bias_norm_relu_back(float *d, const float *out, const float *y, const float *istd, float *db, size_t rows,
                                size_t c) {
    relu_back(d, out, rows * c);
    if (y) bn_backward(d, y, istd, rows, c); /* the bias's gradient is 0: it stays as it is */
    else bias_grad(db, d, rows, c);
}

/* step t's batchnorm buffers: the four normalised pre-ReLU layers and their
 * channels' inverse standard deviations; all NULL without batchnorm */
typedef struct {
    float *a1, *a2, *g0, *g1, *sa1, *sa2, *sg0, *sg1;
} bn_step;

static bn_step bn_at(const gen_ws *ws, const dims *d, size_t t, size_t n, bool bn) {
    if (!bn) return (bn_step){0};
    return (bn_step){ws->ya1 + t * n * d->P1, ws->ya2 + t * n * d->E, ws->yg0 + t * n * d->E,
                     ws->yg1 + t * n * d->P1, ws->sa1 + t * d->C, ws->sa2 + t * 2 * d->C,
                     ws->sg0 + t * 2 * d->C, ws->sg1 + t * d->C};
}

/* The generator from ws->z (n images) */
static void gen_forward(const loom_model *m, gen_ws *ws, size_t n) {
    const dims d = get_dims(&m->cfg);
    const loom_sconv_dims c1 = conv1_dims(&d, n), c2 = conv2_dims(&d, n);
    const bool bn = m->cfg.batchnorm;
    float *S = ws->dS; /* the canvas sum; dS is free until backward */
    memset(S, 0, n * d.HW * sizeof *S);
    memset(ws->zero, 0, n * d.HW * sizeof *ws->zero);
    for (size_t t = 0; t < d.T; t++) {
        const float *ein = t ? ws->dc + (t - 1) * n * d.HW : ws->zero;
        float *a1 = ws->a1 + t * n * d.P1, *a2 = ws->a2 + t * n * d.E, *hc = ws->hc + t * n * d.Z;
        float *g0 = ws->g0 + t * n * d.E, *g1 = ws->g1 + t * n * d.P1, *dc = ws->dc + t * n * d.HW;
        /* the pre-ReLU layers: the normalised ones with batchnorm, else the outputs themselves */
        const bn_step y = bn_at(ws, &d, t, n, bn);
        loom_sconv_forward(bn ? y.a1 : a1, ein, GP(m, G_C1_W), c1, ws->col);
        bias_norm_relu(a1, y.a1, y.sa1, GP(m, G_C1_B), n * d.H2 * d.W2, d.C);
        loom_sconv_forward(bn ? y.a2 : a2, a1, GP(m, G_C2_W), c2, ws->col);
        bias_norm_relu(a2, y.a2, y.sa2, GP(m, G_C2_B), n * d.H4 * d.W4, 2 * d.C);
        loom_linear_forward(hc, a2, GP(m, G_FC_W), GP(m, G_FC_B), n, d.E, d.Z);
        for (size_t i = 0; i < n * d.Z; i++) hc[i] = tanhf(hc[i]);
        concat_u(ws->u, ws->z, hc, n, d.Z);
        /* (its bias is per element of E, the normalisation per channel of 2C) */
        loom_linear_forward(bn ? y.g0 : g0, ws->u, GP(m, G_DFC_W), GP(m, G_DFC_B), n, 2 * d.Z, d.E);
        bias_norm_relu(g0, y.g0, y.sg0, NULL, n * d.H4 * d.W4, 2 * d.C);
        /* deconv1 is conv2's transpose: (H/4, W/4, 2C) -> (H/2, W/2, C) */
        loom_deconv_forward(bn ? y.g1 : g1, g0, GP(m, G_D1_W), c2, ws->col);
        bias_norm_relu(g1, y.g1, y.sg1, GP(m, G_D1_B), n * d.H2 * d.W2, d.C);
        /* deconv2 is conv1's transpose: (H/2, W/2, C) -> (H, W, 1) */
        loom_deconv_forward(dc, g1, GP(m, G_D2_W), c1, ws->col);
        add_bias(dc, GP(m, G_D2_B), n * d.HW, 1);
        for (size_t i = 0; i < n * d.HW; i++) S[i] += dc[i];
    }
    for (size_t i = 0; i < n * d.HW; i++) ws->x[i] = loom_sigmoidf(S[i]);
    ws->n = n;
}

void loom_gran_generate_z(const loom_model *m, void *wsp, float *x, const float *z, size_t n) {
    const dims d = get_dims(&m->cfg);
    gen_ws ws;
    carve_gen(&ws, wsp, &m->cfg, n);
    memcpy(ws.z, z, n * d.Z * sizeof *z);
    gen_forward(m, &ws, n);
    memcpy(x, ws.x, n * d.HW * sizeof *x);
}

void loom_gran_noise(float *z, size_t Z, uint64_t noise_seed, size_t index) {
    loom_rng r;
    loom_index_rng(&r, noise_seed, index);
    loom_normals(z, Z, &r);
}

static void gr_generate(const loom_model *m, void *wsp, float *x, const float *z, uint64_t noise_seed,
                        size_t first, size_t n) {
    const dims d = get_dims(&m->cfg);
    gen_ws ws;
    carve_gen(&ws, wsp, &m->cfg, n);
    if (z) memcpy(ws.z, z, n * d.Z * sizeof *z);
    for (size_t b = 0; !z && b < n; b++) loom_gran_noise(ws.z + b * d.Z, d.Z, noise_seed, first + b);
    gen_forward(m, &ws, n);
    memcpy(x, ws.x, n * d.HW * sizeof *x);
}

/* dout (n, HW) = d loss / d x of the last generate; grad += d loss / d parameters */
static void gr_backward_out(const loom_model *m, void *wsp, float *grad, float *dinput, const float *dout,
                            const int32_t *labels, size_t n, float internal_weight) {
    (void)dinput, (void)labels, (void)internal_weight; /* no input, no internal terms */
    const dims d = get_dims(&m->cfg);
    gen_ws ws;
    carve_gen(&ws, wsp, &m->cfg, n);
    const loom_sconv_dims c1 = conv1_dims(&d, n), c2 = conv2_dims(&d, n);
    /* x = sigmoid(S), S = sum_t dC_t */
    for (size_t i = 0; i < n * d.HW; i++) ws.dS[i] = dout[i] * ws.x[i] * (1.0f - ws.x[i]);
    memset(ws.dnext, 0, n * d.HW * sizeof *ws.dnext);
    const bool bn = m->cfg.batchnorm;
    for (size_t t = d.T; t-- > 0;) {
        const float *ein = t ? ws.dc + (t - 1) * n * d.HW : ws.zero;
        const float *a1 = ws.a1 + t * n * d.P1, *a2 = ws.a2 + t * n * d.E, *hc = ws.hc + t * n * d.Z;
        const float *g0 = ws.g0 + t * n * d.E, *g1 = ws.g1 + t * n * d.P1;
        const bn_step y = bn_at(&ws, &d, t, n, bn);
        /* dC_t feeds the canvas and the encoder of step t + 1 */
        for (size_t i = 0; i < n * d.HW; i++) ws.ddc[i] = ws.dS[i] + ws.dnext[i];
        /* dc = deconv2(g1) + b */
        bias_grad(GG(m, grad, G_D2_B), ws.ddc, n * d.HW, 1);
        memset(ws.dg1, 0, n * d.P1 * sizeof *ws.dg1);
        loom_deconv_backward(ws.dg1, GG(m, grad, G_D2_W), ws.ddc, g1, GP(m, G_D2_W), c1, ws.col);
        /* g1 = relu(bn(deconv1(g0) + b)) */
        bias_norm_relu_back(ws.dg1, g1, y.g1, y.sg1, GG(m, grad, G_D1_B), n * d.H2 * d.W2, d.C);
        memset(ws.dg0, 0, n * d.E * sizeof *ws.dg0);
        loom_deconv_backward(ws.dg0, GG(m, grad, G_D1_W), ws.dg1, g0, GP(m, G_D1_W), c2, ws.col);
        /* g0 = relu(bn(u @ dfc.w + dfc.b)) */
        bias_norm_relu_back(ws.dg0, g0, y.g0, y.sg0, NULL, n * d.H4 * d.W4, 2 * d.C);
        concat_u(ws.u, ws.z, hc, n, d.Z);
        memset(ws.du, 0, n * 2 * d.Z * sizeof *ws.du);
        loom_linear_backward(ws.du, GG(m, grad, G_DFC_W), GG(m, grad, G_DFC_B), ws.dg0, ws.u, GP(m, G_DFC_W), n,
                             2 * d.Z, d.E);
        /* hc = tanh(a2 @ fc.w + fc.b) */
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < d.Z; j++) {
                const float h = hc[b * d.Z + j];
                ws.dhc[b * d.Z + j] = ws.du[b * 2 * d.Z + d.Z + j] * (1.0f - h * h);
            }
        memset(ws.da2, 0, n * d.E * sizeof *ws.da2);
        loom_linear_backward(ws.da2, GG(m, grad, G_FC_W), GG(m, grad, G_FC_B), ws.dhc, a2, GP(m, G_FC_W), n, d.E,
                             d.Z);
        /* a2 = relu(bn(conv2(a1) + b)) */
        bias_norm_relu_back(ws.da2, a2, y.a2, y.sa2, GG(m, grad, G_C2_B), n * d.H4 * d.W4, 2 * d.C);
        if (grad) loom_sconv_backward_weights(GG(m, grad, G_C2_W), a1, ws.da2, c2, ws.col);
        memset(ws.da1, 0, n * d.P1 * sizeof *ws.da1);
        loom_sconv_backward_data(ws.da1, ws.da2, GP(m, G_C2_W), c2, ws.col);
        /* a1 = relu(bn(conv1(ein) + b)) */
        bias_norm_relu_back(ws.da1, a1, y.a1, y.sa1, GG(m, grad, G_C1_B), n * d.H2 * d.W2, d.C);
        if (grad) loom_sconv_backward_weights(GG(m, grad, G_C1_W), ein, ws.da1, c1, ws.col);
        memset(ws.dnext, 0, n * d.HW * sizeof *ws.dnext);
        if (t) loom_sconv_backward_data(ws.dnext, ws.da1, GP(m, G_C1_W), c1, ws.col);
    }
}

static size_t gr_out_floats(const loom_config *c) { return c->height * c->width; }

static void to_bytes(uint8_t *imgs, const float *x, size_t k) {
    for (size_t i = 0; i < k; i++) imgs[i] = (uint8_t)lrintf(255.0f * x[i]);
}

/* z ~ N(0, temperature^2 I) from each image's RNG */
static void sample_z(float *z, size_t Z, size_t n, float temperature, loom_rng *rngs) {
    for (size_t b = 0; b < n; b++)
        for (size_t j = 0; j < Z; j++) z[b * Z + j] = temperature * loom_rng_normal(&rngs[b]);
}

static void gr_sample_frames(const loom_model *m, void *wsp, uint8_t *imgs, uint8_t *frames,
                             const int32_t *labels, size_t n, float temperature, loom_rng *rngs) {
    (void)labels;
    const dims d = get_dims(&m->cfg);
    gen_ws ws;
    carve_gen(&ws, wsp, &m->cfg, n);
    sample_z(ws.z, d.Z, n, temperature, rngs);
    gen_forward(m, &ws, n);
    to_bytes(imgs, ws.x, n * d.HW);
    if (frames) /* the canvas after every step, from the stored updates */
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < d.HW; i++) {
                float s = 0.0f;
                for (size_t t = 0; t < d.T; t++) {
                    s += ws.dc[(t * n + b) * d.HW + i];
                    frames[(b * d.T + t) * d.HW + i] = (uint8_t)lrintf(255.0f * loom_sigmoidf(s));
                }
            }
}

static void gr_sample(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels, size_t n,
                      size_t keep, float temperature, loom_rng *rngs) {
    (void)keep; /* not autoregressive: model.c refuses keep > 0 */
    gr_sample_frames(m, ws, imgs, NULL, labels, n, temperature, rngs);
}

static size_t gr_nframes(const loom_config *c) { return c->steps_draw; }

static const char *gr_nll_kind(const loom_config *c) {
    (void)c;
    return "an adversarial model; loom score rates a generator's samples";
}

const loom_model_ops loom_gran_ops = {
    .name = "gran",
    .check = gr_check,
    .layout = gr_layout,
    .train_ws_bytes = gr_ws_bytes,
    .micro_shard = 8,
    .sample_ws_bytes = gr_ws_bytes,
    .sample = gr_sample,
    .nframes = gr_nframes,
    .sample_frames = gr_sample_frames,
    .nll_kind = gr_nll_kind,
    .output = LOOM_OUT_IMAGE,
    .out_floats = gr_out_floats,
    .generate = gr_generate,
    .backward_out = gr_backward_out,
};

/* ------------------------------------------------------------ discriminator */

typedef struct {
    float *x;  /* (n, HW) the images read */
    float *h1; /* (n, P1) after the leaky ReLU */
    float *h2; /* (n, E) */
    float *dh1, *dh2, *col;
    float *mu, *sd; /* (groups, E) mbstd: the group's mean and standard deviation of each feature */
    float *sigma;   /* (n) mbstd: the mean of sd over the features, of the image's group */
} disc_ws;

/* mbstd: image b's group is b / G; the last group of n takes what is left */
static size_t mb_groups(size_t n, size_t G) { return G ? (n + G - 1) / G : 0; }

static size_t carve_disc(disc_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    char *p = base;
    size_t off = 0;
    LOOM_TAKE(ws, x, float, n * d.HW);
    LOOM_TAKE(ws, h1, float, n * d.P1);
    LOOM_TAKE(ws, h2, float, n * d.E);
    LOOM_TAKE(ws, dh1, float, n * d.P1);
    LOOM_TAKE(ws, dh2, float, n * d.E);
    LOOM_TAKE(ws, col, float, col_floats(&d, n));
    LOOM_TAKE(ws, mu, float, mb_groups(n, c->mbstd) * d.E);
    LOOM_TAKE(ws, sd, float, mb_groups(n, c->mbstd) * d.E);
    LOOM_TAKE(ws, sigma, float, c->mbstd ? n : 0);
    return off;
}

#define MB_EPS 1e-8f /* inside the square root: sd > 0 for a group of identical images */

/* out (n) += w_s sigma of each image's group, from h (n, E) */
static void mbstd_forward(disc_ws *ws, float *out, const float *h, float ws_w, size_t n, size_t E, size_t G) {
    for (size_t g = 0; g * G < n; g++) {
        const size_t b0 = g * G, nb = LOOM_MIN(G, n - b0);
        float *mu = ws->mu + g * E, *sd = ws->sd + g * E;
        double s = 0.0;
        for (size_t k = 0; k < E; k++) {
            float m = 0.0f, v = 0.0f;
            for (size_t b = b0; b < b0 + nb; b++) m += h[b * E + k];
            m /= (float)nb;
            for (size_t b = b0; b < b0 + nb; b++) v += (h[b * E + k] - m) * (h[b * E + k] - m);
            mu[k] = m, sd[k] = sqrtf(v / (float)nb + MB_EPS);
            s += sd[k];
        }
        const float sigma = (float)(s / (double)E);
        for (size_t b = b0; b < b0 + nb; b++) ws->sigma[b] = sigma, out[b] += ws_w * sigma;
    }
}

/* given dout (n), gw (NULL: skipped) += d / d w_s and dh (n, E) += d / d h
 * through sigma: d sd_k / d h_bk = (h_bk - mu_k) / (nb sd_k), the mean's
 * part sums to 0 over the group */
static void mbstd_backward(const disc_ws *ws, float *dh, float *gw, const float *dout, const float *h, float ws_w,
                           size_t n, size_t E, size_t G) {
    for (size_t g = 0; g * G < n; g++) {
        const size_t b0 = g * G, nb = LOOM_MIN(G, n - b0);
        const float *mu = ws->mu + g * E, *sd = ws->sd + g * E;
        float ds = 0.0f; /* d loss / d sigma */
        for (size_t b = b0; b < b0 + nb; b++) {
            if (gw) *gw += dout[b] * ws->sigma[b];
            ds += dout[b] * ws_w;
        }
        const float c = ds / ((float)E * (float)nb);
        for (size_t b = b0; b < b0 + nb; b++)
            for (size_t k = 0; k < E; k++) dh[b * E + k] += c * (h[b * E + k] - mu[k]) / sd[k];
    }
}

/* the trainer's GAN step reads real and generated images in one pass: 2n */
static size_t gd_ws_bytes(const loom_config *c, size_t n) { return carve_disc(NULL, NULL, c, 2 * n); }

static void disc_forward(const loom_model *m, disc_ws *ws, float *out, size_t n) {
    const dims d = get_dims(&m->cfg);
    loom_sconv_forward(ws->h1, ws->x, P(m, D_C1_W), conv1_dims(&d, n), ws->col);
    add_bias(ws->h1, P(m, D_C1_B), n * d.H2 * d.W2, d.C);
    lrelu(ws->h1, n * d.P1);
    loom_sconv_forward(ws->h2, ws->h1, P(m, D_C2_W), conv2_dims(&d, n), ws->col);
    add_bias(ws->h2, P(m, D_C2_B), n * d.H4 * d.W4, 2 * d.C);
    lrelu(ws->h2, n * d.E);
    loom_linear_forward(out, ws->h2, P(m, D_FC_W), P(m, D_FC_B), n, d.E, 1);
    if (m->cfg.mbstd) mbstd_forward(ws, out, ws->h2, P(m, D_SD_W)[0], n, d.E, m->cfg.mbstd);
}

static void gd_forward_x(const loom_model *m, void *wsp, float *out, const float *x, size_t n) {
    disc_ws ws;
    carve_disc(&ws, wsp, &m->cfg, n);
    memcpy(ws.x, x, n * m->cfg.height * m->cfg.width * sizeof *x);
    disc_forward(m, &ws, out, n);
}

static void gd_forward_out(const loom_model *m, void *wsp, float *out, double *internal, const uint8_t *imgs,
                           const int32_t *labels, size_t n) {
    (void)labels;
    disc_ws ws;
    carve_disc(&ws, wsp, &m->cfg, n);
    const size_t k = n * m->cfg.height * m->cfg.width;
    for (size_t i = 0; i < k; i++) ws.x[i] = (float)imgs[i] / 255.0f;
    disc_forward(m, &ws, out, n);
    for (size_t b = 0; b < n; b++) internal[b] = 0.0;
}

/* dout (n, 1) = d loss / d logit; grad (NULL: skipped) += d loss / d
 * parameters, dinput (NULL: skipped) += d loss / d x */
static void gd_backward_out(const loom_model *m, void *wsp, float *grad, float *dinput, const float *dout,
                            const int32_t *labels, size_t n, float internal_weight) {
    (void)labels, (void)internal_weight;
    const dims d = get_dims(&m->cfg);
    disc_ws ws;
    carve_disc(&ws, wsp, &m->cfg, n);
    const loom_sconv_dims c1 = conv1_dims(&d, n), c2 = conv2_dims(&d, n);
    /* out = h2 @ fc.w + fc.b */
    memset(ws.dh2, 0, n * d.E * sizeof *ws.dh2);
    loom_linear_backward(ws.dh2, G(m, grad, D_FC_W), G(m, grad, D_FC_B), dout, ws.h2, P(m, D_FC_W), n, d.E, 1);
    if (m->cfg.mbstd)
        mbstd_backward(&ws, ws.dh2, G(m, grad, D_SD_W), dout, ws.h2, P(m, D_SD_W)[0], n, d.E, m->cfg.mbstd);
    lrelu_back(ws.dh2, ws.h2, n * d.E);
    /* h2 = lrelu(conv2(h1) + b) */
    bias_grad(G(m, grad, D_C2_B), ws.dh2, n * d.H4 * d.W4, 2 * d.C);
    if (grad) loom_sconv_backward_weights(G(m, grad, D_C2_W), ws.h1, ws.dh2, c2, ws.col);
    memset(ws.dh1, 0, n * d.P1 * sizeof *ws.dh1);
    loom_sconv_backward_data(ws.dh1, ws.dh2, P(m, D_C2_W), c2, ws.col);
    lrelu_back(ws.dh1, ws.h1, n * d.P1);
    /* h1 = lrelu(conv1(x) + b) */
    bias_grad(G(m, grad, D_C1_B), ws.dh1, n * d.H2 * d.W2, d.C);
    if (grad) loom_sconv_backward_weights(G(m, grad, D_C1_W), ws.x, ws.dh1, c1, ws.col);
    if (dinput) loom_sconv_backward_data(dinput, ws.dh1, P(m, D_C1_W), c1, ws.col);
}

static size_t gd_out_floats(const loom_config *c) {
    (void)c;
    return 1;
}

static const char *gd_cannot_sample(const loom_config *c) {
    (void)c;
    return "gran_d is a discriminator: it judges images, it does not draw them";
}

static size_t gd_sample_ws(const loom_config *c, size_t n) {
    (void)c, (void)n;
    return 0;
}

const loom_model_ops loom_gran_d_ops = {
    .name = "gran_d",
    .check = gd_check,
    .layout = gd_layout,
    .train_ws_bytes = gd_ws_bytes,
    .micro_shard = 8,
    .sample_ws_bytes = gd_sample_ws,
    .nll_kind = gr_nll_kind,
    .cannot_sample = gd_cannot_sample,
    .output = LOOM_OUT_LOGIT,
    .out_floats = gd_out_floats,
    .forward_out = gd_forward_out,
    .backward_out = gd_backward_out,
    .forward_x = gd_forward_x,
};
