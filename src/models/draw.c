/* DRAW (Gregor et al. 2015): a recurrent variational autoencoder that builds
 * the image on a canvas over T glimpses, with Gaussian-filterbank read and
 * write attention (or whole-image read/write). Definition: docs/draw.md.
 *
 * The encoder and decoder are loom_lstm_forward/backward calls with T = 1 per
 * glimpse, their state carried between calls; the backward pass walks the
 * glimpses in reverse and chains dhT/dcT -> dh0/dc0. */
#include "latent.h"
#include "model.h"

#include "../nn/attention.h"
#include "../losses/losses.h"
#include "../nn/nn.h"
#include "../nn/seq.h"
#include "fastmath.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* tensor indices in layout order; the attention tensors exist only with attention */
enum {
    P_ENC_WIH, P_ENC_WHH, P_ENC_BIH, P_ENC_BHH,
    P_DEC_WIH, P_DEC_WHH, P_DEC_BIH, P_DEC_BHH,
    P_Q_W, P_Q_B, P_WRITE_W, P_WRITE_B,
    P_READ_W, P_READ_B, P_WATT_W, P_WATT_B
};

typedef struct {
    size_t H, W, HW, h, z, T, Nr, Nw;
    size_t R;  /* read vector per image: 2 Nr^2 (attention) or 2 HW */
    size_t In; /* encoder input: R + h */
    size_t P;  /* write vector per image: Nw^2 (attention) or HW */
    int attn;
} dims;

static dims get_dims(const loom_config *c) {
    dims d = {c->height, c->width, c->height * c->width, c->hidden, c->zdim, c->steps_draw,
              c->read_n, c->write_n, 0, 0, 0, c->attention};
    d.R = d.attn ? 2 * d.Nr * d.Nr : 2 * d.HW;
    d.In = d.R + d.h;
    d.P = d.attn ? d.Nw * d.Nw : d.HW;
    return d;
}

static loom_status dr_check(const loom_config *c, loom_error *err) {
    if (loom_channels(c) != 1)
        return loom_fail(err, LOOM_EINVAL, "%s models grayscale images only, not %zu channels "
                         "(colour: rowlstm or diagbilstm)", c->model, loom_channels(c));
    if (loom_check_range("--hidden", c->hidden, 4096, err)) return LOOM_EINVAL;
    if (loom_check_range("--zdim", c->zdim, 4096, err)) return LOOM_EINVAL;
    if (loom_check_range("--steps-draw", c->steps_draw, 1024, err)) return LOOM_EINVAL;
    if (c->attention != 0 && c->attention != 1)
        return loom_fail(err, LOOM_EINVAL, "attention must be on (1) or off (0), not %d", c->attention);
    const size_t side = LOOM_MAX(c->height, c->width);
    if (c->read_n < 1 || c->read_n > side)
        return loom_fail(err, LOOM_EINVAL, "--read-n %zu out of range (1..%zu, the image side)",
                         c->read_n, side);
    if (c->write_n < 1 || c->write_n > side)
        return loom_fail(err, LOOM_EINVAL, "--write-n %zu out of range (1..%zu, the image side)",
                         c->write_n, side);
    if (c->nclasses)
        return loom_fail(err, LOOM_EINVAL, "draw is unconditional (no --conditional)");
    return LOOM_OK;
}

static size_t dr_layout(const loom_config *c, loom_param *out) {
    const dims d = get_dims(c);
    const size_t G = 4 * d.h;
    size_t n = 0;
    n = loom_param_add_named(out, n, d.In, G, "enc.w_ih");
    n = loom_param_add_named(out, n, d.h, G, "enc.w_hh");
    n = loom_param_add_named(out, n, G, 0, "enc.b_ih");
    n = loom_param_add_named(out, n, G, 0, "enc.b_hh");
    n = loom_param_add_named(out, n, d.z, G, "dec.w_ih");
    n = loom_param_add_named(out, n, d.h, G, "dec.w_hh");
    n = loom_param_add_named(out, n, G, 0, "dec.b_ih");
    n = loom_param_add_named(out, n, G, 0, "dec.b_hh");
    n = loom_param_add_named(out, n, d.h, 2 * d.z, "q.weight"); /* mu | log sigma */
    n = loom_param_add_named(out, n, 2 * d.z, 0, "q.bias");
    n = loom_param_add_named(out, n, d.h, d.P, "write.weight");
    n = loom_param_add_named(out, n, d.P, 0, "write.bias");
    if (d.attn) {
        n = loom_param_add_named(out, n, d.h, 5, "read_attn.weight");
        n = loom_param_add_named(out, n, 5, 0, "read_attn.bias");
        n = loom_param_add_named(out, n, d.h, 5, "write_attn.weight");
        n = loom_param_add_named(out, n, 5, 0, "write_attn.bias");
    }
    return n;
}

static void dr_init_extra(loom_model *m) {
    const size_t h = m->cfg.hidden;
    float *be = m->w + m->params[P_ENC_BIH].offset, *bd = m->w + m->params[P_DEC_BIH].offset;
    for (size_t k = 0; k < h; k++) be[h + k] = bd[h + k] = 1.0f; /* forget gates */
}

static const float *W(const loom_model *m, int k) { return m->w + m->params[k].offset; }
static float *G(const loom_model *m, float *grad, int k) { return grad + m->params[k].offset; }

static loom_seq_params enc_params(const loom_model *m) {
    return (loom_seq_params){W(m, P_ENC_WIH), W(m, P_ENC_WHH), W(m, P_ENC_BIH), W(m, P_ENC_BHH), NULL};
}
static loom_seq_params dec_params(const loom_model *m) {
    return (loom_seq_params){W(m, P_DEC_WIH), W(m, P_DEC_WHH), W(m, P_DEC_BIH), W(m, P_DEC_BHH), NULL};
}

/* ------------------------------------------------------------ noise */

/* x (n, HW) in {0, 1}: pixel ~ Bernoulli(v / 255), drawn from an RNG keyed by
 * the image's content and noise_seed (0: the fixed static key). eps (T, n, z)
 * ~ N(0, I), keyed by the content, noise_seed and importance sample k. Both
 * are independent of how a batch is split across threads. */
static void draw_noise(float *x, float *eps, const loom_model *m, const uint8_t *imgs, size_t n,
                       uint64_t k) {
    const dims d = get_dims(&m->cfg);
    for (size_t b = 0; b < n; b++) {
        const uint8_t *img = imgs + b * d.HW;
        loom_binarize(x + b * d.HW, img, d.HW, m->noise_seed);
        loom_rng r;
        loom_noise_rng(&r, img, d.HW, m->noise_seed, k);
        for (size_t t = 0; t < d.T; t++) loom_normals(eps + (t * n + b) * d.z, d.z, &r);
    }
}

/* ------------------------------------------------------------ write */

/* the per-step write buffers; attention ones are NULL without attention */
typedef struct {
    float *patch; /* (n, P) */
    float *p;     /* (n, 5) */
    float *Fx;    /* (n, Nw, W) */
    float *Fy;    /* (n, Nw, H) */
    float *gm;    /* (n) */
    float *tmp;   /* (n, Nw, W) */
    float *o;     /* (n, HW) what is added to the canvas */
} write_buf;

/* canvas (n, HW) += write(h_dec (n, h)) */
static void write_forward(float *canvas, write_buf b, const float *hd, const loom_model *m,
                          const dims *d, size_t n) {
    loom_linear_forward(b.patch, hd, W(m, P_WRITE_W), W(m, P_WRITE_B), n, d->h, d->P);
    if (d->attn) {
        const loom_attn_dims ad = {n, d->H, d->W, d->Nw};
        loom_linear_forward(b.p, hd, W(m, P_WATT_W), W(m, P_WATT_B), n, d->h, 5);
        loom_filterbank_forward(b.Fx, b.Fy, b.gm, b.p, ad);
        loom_attn_write_forward(b.o, b.tmp, b.patch, b.Fx, b.Fy, b.gm, ad);
    }
    const float *o = d->attn ? b.o : b.patch;
    for (size_t i = 0; i < n * d->HW; i++) canvas[i] += o[i];
}

/* ------------------------------------------------------------ training workspace */

typedef struct {
    int *generated;  /* 1 after dr_generate (the decoder alone ran), 0 after dr_forward */
    double *bce, *kl, *lqp; /* (n) per image: -log p(x|z), closed-form KL, log q(z|x) - log p(z) */
    double *lse_m, *lse_s;  /* (n) running log-sum-exp of the importance weights */
    float *x;        /* (n, HW) binarized image */
    float *S;        /* (T, n, HW) sigmoid(c_{t-1}) */
    float *xh;       /* (T, n, HW) x - S */
    float *canvas;   /* (n, HW) c_t, after forward c_T */
    float *enc_in;   /* (T, n, In) [r_t, h_dec_{t-1}] */
    float *rx, *rxh; /* (T, n, Nr^2) glimpses of x and x_hat */
    float *pr;       /* (T, n, 5) read attention parameters */
    float *Fxr, *Fyr, *gmr; /* (T, n, Nr, W), (T, n, Nr, H), (T, n) */
    float *tx, *txh; /* (T, n, H, Nr) read scratch kept for backward */
    float *enc_cache, *dec_cache; /* (T, per-step LSTM cache) */
    float *he, *ce;  /* (T, n, h) encoder state */
    float *hd, *cd;  /* (T, n, h) decoder state */
    float *q;        /* (T, n, 2z) mu | log sigma */
    float *eps;      /* (T, n, z) */
    float *zt;       /* (T, n, z) */
    float *patch;    /* (T, n, P) */
    float *pw, *Fxw, *Fyw, *gmw, *tw; /* (T, n, 5), (T, n, Nw, W), (T, n, Nw, H), (T, n), (T, n, Nw, W) */
    float *ow;       /* (T, n, HW) written to the canvas (attention) */
    /* backward */
    float *dcan, *dxh;      /* (n, HW) */
    float *din;             /* (n, In) */
    float *dhe[2], *dce[2], *dhd[2], *dcd[2]; /* (n, h) current / previous step */
    float *dz;              /* (n, z) */
    float *dq;              /* (n, 2z) */
    float *dpatch;          /* (n, P) */
    float *dp;              /* (n, 5) */
    float *dFx, *dFy, *dgm; /* (n, Nmax, W), (n, Nmax, H), (n) */
    float *dtmp;            /* (H*Nmax + Nmax*W) */
    float *drx, *drxh;      /* (n, Nr^2) */
    float *lscr;            /* LSTM backward scratch */
    /* gradients w.r.t. every step's pre-activations, kept so that each weight
     * gradient is one GEMM over all T*n rows instead of T thin ones */
    float *dAe, *dAd;       /* (T, n, 4h) encoder / decoder gate pre-activations */
    float *dqa;             /* (T, n, 2z) */
    float *dwa;             /* (T, n, P) write vector */
} train_ws;

static size_t enc_cache_floats(const dims *d, size_t n) {
    return loom_seq_cache_floats(LOOM_CELL_LSTM, (loom_seq_dims){1, n, d->In, d->h});
}
static size_t dec_cache_floats(const dims *d, size_t n) {
    return loom_seq_cache_floats(LOOM_CELL_LSTM, (loom_seq_dims){1, n, d->z, d->h});
}

static size_t carve_train(train_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    const size_t T = d.T, HW = d.HW, h = d.h, z = d.z, a = (size_t)d.attn;
    const size_t Nr2 = d.Nr * d.Nr, Nm = LOOM_MAX(d.Nr, d.Nw);
    const size_t lscr = LOOM_MAX(loom_seq_scratch_floats(LOOM_CELL_LSTM, (loom_seq_dims){1, n, d.In, h}),
                                 loom_seq_scratch_floats(LOOM_CELL_LSTM, (loom_seq_dims){1, n, z, h}));
    size_t off = 0;
    char *p = base;
#define TAKE(field, type, count) LOOM_TAKE(ws, field, type, count)
    TAKE(generated, int, 1);
    TAKE(bce, double, n);
    TAKE(kl, double, n);
    TAKE(lqp, double, n);
    TAKE(lse_m, double, n);
    TAKE(lse_s, double, n);
    TAKE(x, float, n * HW);
    TAKE(S, float, T * n * HW);
    TAKE(xh, float, T * n * HW);
    TAKE(canvas, float, n * HW);
    TAKE(enc_in, float, T * n * d.In);
    TAKE(rx, float, a * T * n * Nr2);
    TAKE(rxh, float, a * T * n * Nr2);
    TAKE(pr, float, a * T * n * 5);
    TAKE(Fxr, float, a * T * n * d.Nr * d.W);
    TAKE(Fyr, float, a * T * n * d.Nr * d.H);
    TAKE(gmr, float, a * T * n);
    TAKE(tx, float, a * T * n * d.H * d.Nr);
    TAKE(txh, float, a * T * n * d.H * d.Nr);
    TAKE(enc_cache, float, T * enc_cache_floats(&d, n));
    TAKE(dec_cache, float, T * dec_cache_floats(&d, n));
    TAKE(he, float, T * n * h);
    TAKE(ce, float, T * n * h);
    TAKE(hd, float, T * n * h);
    TAKE(cd, float, T * n * h);
    TAKE(q, float, T * n * 2 * z);
    TAKE(eps, float, T * n * z);
    TAKE(zt, float, T * n * z);
    TAKE(patch, float, T * n * d.P);
    TAKE(pw, float, a * T * n * 5);
    TAKE(Fxw, float, a * T * n * d.Nw * d.W);
    TAKE(Fyw, float, a * T * n * d.Nw * d.H);
    TAKE(gmw, float, a * T * n);
    TAKE(tw, float, a * T * n * d.Nw * d.W);
    TAKE(ow, float, a * T * n * HW);
    TAKE(dcan, float, n * HW);
    TAKE(dxh, float, n * HW);
    TAKE(din, float, n * d.In);
    for (int k = 0; k < 2; k++) {
        TAKE(dhe[k], float, n * h);
        TAKE(dce[k], float, n * h);
        TAKE(dhd[k], float, n * h);
        TAKE(dcd[k], float, n * h);
    }
    TAKE(dz, float, n * z);
    TAKE(dq, float, n * 2 * z);
    TAKE(dpatch, float, n * d.P);
    TAKE(dp, float, n * 5);
    TAKE(dFx, float, n * Nm * d.W);
    TAKE(dFy, float, n * Nm * d.H);
    TAKE(dgm, float, n);
    TAKE(dtmp, float, d.H * Nm + Nm * d.W);
    TAKE(drx, float, n * Nr2);
    TAKE(drxh, float, n * Nr2);
    TAKE(lscr, float, lscr);
    TAKE(dAe, float, T * n * 4 * h);
    TAKE(dAd, float, T * n * 4 * h);
    TAKE(dqa, float, T * n * 2 * z);
    TAKE(dwa, float, T * n * d.P);
#undef TAKE
    return off;
}

static size_t dr_train_ws_bytes(const loom_config *c, size_t n) { return carve_train(NULL, NULL, c, n); }

/* pointer to step t of a (T, n, per) buffer */
#define AT(buf, t, per) ((buf) + (t) * n * (per))

static write_buf step_write(const train_ws *ws, const dims *d, size_t t, size_t n) {
    if (!d->attn) return (write_buf){AT(ws->patch, t, d->P), NULL, NULL, NULL, NULL, NULL, NULL};
    return (write_buf){AT(ws->patch, t, d->P), AT(ws->pw, t, 5), AT(ws->Fxw, t, d->Nw * d->W),
                       AT(ws->Fyw, t, d->Nw * d->H), AT(ws->gmw, t, 1), AT(ws->tw, t, d->Nw * d->W),
                       AT(ws->ow, t, d->HW)};
}

/* Forward over all T glimpses with importance sample k; fills ws->bce, kl, lqp. */
static void dr_forward(const loom_model *m, const train_ws *ws, const uint8_t *imgs, size_t n,
                       uint64_t k) {
    const dims d = get_dims(&m->cfg);
    const size_t HW = d.HW, h = d.h, z = d.z, Nr2 = d.Nr * d.Nr;
    const loom_attn_dims ar = {n, d.H, d.W, d.Nr};
    const loom_seq_params pe = enc_params(m), pd = dec_params(m);
    const size_t cen = enc_cache_floats(&d, n), cde = dec_cache_floats(&d, n);

    *ws->generated = 0;
    draw_noise(ws->x, ws->eps, m, imgs, n, k);
    memset(ws->canvas, 0, n * HW * sizeof *ws->canvas);
    for (size_t b = 0; b < n; b++) ws->kl[b] = ws->lqp[b] = 0.0;

    for (size_t t = 0; t < d.T; t++) {
        const float *hdp = t ? AT(ws->hd, t - 1, h) : NULL, *cdp = t ? AT(ws->cd, t - 1, h) : NULL;
        const float *hep = t ? AT(ws->he, t - 1, h) : NULL, *cep = t ? AT(ws->ce, t - 1, h) : NULL;
        float *S = AT(ws->S, t, HW), *xh = AT(ws->xh, t, HW), *in = AT(ws->enc_in, t, d.In);
        /* x_hat = x - sigmoid(c_{t-1}) */
        for (size_t i = 0; i < n * HW; i++) {
            S[i] = loom_sigmoidf(ws->canvas[i]);
            xh[i] = ws->x[i] - S[i];
        }
        if (d.attn) {
            float *pr = AT(ws->pr, t, 5), *rx = AT(ws->rx, t, Nr2), *rxh = AT(ws->rxh, t, Nr2);
            float *Fx = AT(ws->Fxr, t, d.Nr * d.W), *Fy = AT(ws->Fyr, t, d.Nr * d.H), *gm = AT(ws->gmr, t, 1);
            if (hdp) loom_linear_forward(pr, hdp, W(m, P_READ_W), W(m, P_READ_B), n, h, 5);
            else
                for (size_t b = 0; b < n; b++) memcpy(pr + 5 * b, W(m, P_READ_B), 5 * sizeof *pr);
            loom_filterbank_forward(Fx, Fy, gm, pr, ar);
            loom_attn_read_forward(rx, AT(ws->tx, t, d.H * d.Nr), ws->x, Fx, Fy, gm, ar);
            loom_attn_read_forward(rxh, AT(ws->txh, t, d.H * d.Nr), xh, Fx, Fy, gm, ar);
            for (size_t b = 0; b < n; b++) {
                memcpy(in + b * d.In, rx + b * Nr2, Nr2 * sizeof *in);
                memcpy(in + b * d.In + Nr2, rxh + b * Nr2, Nr2 * sizeof *in);
            }
        } else {
            for (size_t b = 0; b < n; b++) {
                memcpy(in + b * d.In, ws->x + b * HW, HW * sizeof *in);
                memcpy(in + b * d.In + HW, xh + b * HW, HW * sizeof *in);
            }
        }
        for (size_t b = 0; b < n; b++) {
            float *hin = in + b * d.In + d.R;
            if (hdp) memcpy(hin, hdp + b * h, h * sizeof *hin);
            else memset(hin, 0, h * sizeof *hin);
        }
        float *he = AT(ws->he, t, h), *hd = AT(ws->hd, t, h);
        loom_lstm_forward(he, NULL, AT(ws->ce, t, h), ws->enc_cache + t * cen, in, hep, cep, pe,
                          (loom_seq_dims){1, n, d.In, h});
        /* q(z_t | x) = N(mu, sigma^2), z = mu + sigma eps */
        float *q = AT(ws->q, t, 2 * z), *zt = AT(ws->zt, t, z);
        const float *eps = AT(ws->eps, t, z);
        loom_linear_forward(q, he, W(m, P_Q_W), W(m, P_Q_B), n, h, 2 * z);
        for (size_t b = 0; b < n; b++) {
            const float *mu = q + b * 2 * z, *ls = mu + z;
            ws->kl[b] += loom_gauss_kl(mu, ls, z);
            ws->lqp[b] += loom_gauss_log_ratio(zt + b * z, mu, ls, eps + b * z, z);
        }
        loom_lstm_forward(hd, NULL, AT(ws->cd, t, h), ws->dec_cache + t * cde, zt, hdp, cdp, pd,
                          (loom_seq_dims){1, n, z, h});
        write_forward(ws->canvas, step_write(ws, &d, t, n), hd, m, &d, n);
    }
    /* -log p(x | c_T) = sum softplus(c) - x c */
    for (size_t b = 0; b < n; b++)
        ws->bce[b] = loom_bernoulli_nll_acc(0.0, ws->canvas + b * HW, ws->x + b * HW, HW);
}

/* Backward of dr_forward(k = 0), or with gen of dr_generate (the decoder
 * alone), given ws.dcan = dL/dc_T (n, HW), which it overwrites; the KL terms
 * enter with weight kl_scale. grad +=. */
static void dr_backward(const loom_model *m, train_ws ws, float *grad, size_t n, float kl_scale, bool gen) {
    const dims d = get_dims(&m->cfg);
    const size_t HW = d.HW, h = d.h, z = d.z, Nr2 = d.Nr * d.Nr, nh = n * h;
    const float scale = kl_scale;
    const loom_seq_params pe = enc_params(m), pd = dec_params(m);
    /* weight gradients after the loop (one GEMM each); biases per step */
    const loom_seq_grads ge = {NULL, NULL, G(m, grad, P_ENC_BIH), G(m, grad, P_ENC_BHH), NULL};
    const loom_seq_grads gd = {NULL, NULL, G(m, grad, P_DEC_BIH), G(m, grad, P_DEC_BHH), NULL};
    const size_t G4 = 4 * h;
    const loom_attn_dims ar = {n, d.H, d.W, d.Nr}, aw = {n, d.H, d.W, d.Nw};
    const size_t cen = enc_cache_floats(&d, n), cde = dec_cache_floats(&d, n);
    const size_t fb = sizeof(float);
    int cur = 0;
    memset(ws.dhe[cur], 0, nh * fb), memset(ws.dce[cur], 0, nh * fb);
    memset(ws.dhd[cur], 0, nh * fb), memset(ws.dcd[cur], 0, nh * fb);
    for (size_t t = d.T; t-- > 0;) {
        const int prv = 1 - cur;
        const float *hdp = t ? AT(ws.hd, t - 1, h) : NULL, *cdp = t ? AT(ws.cd, t - 1, h) : NULL;
        const float *hep = t ? AT(ws.he, t - 1, h) : NULL, *cep = t ? AT(ws.ce, t - 1, h) : NULL;
        const float *hd = AT(ws.hd, t, h), *he = AT(ws.he, t, h);
        float *dhd = ws.dhd[cur], *dhe = ws.dhe[cur];
        /* c_t = c_{t-1} + write(h_dec_t): dL/d(write) = dcan */
        const write_buf wb = step_write(&ws, &d, t, n);
        if (d.attn) {
            memset(ws.dpatch, 0, n * d.P * fb), memset(ws.dp, 0, n * 5 * fb), memset(ws.dgm, 0, n * fb);
            memset(ws.dFx, 0, n * d.Nw * d.W * fb), memset(ws.dFy, 0, n * d.Nw * d.H * fb);
            loom_attn_write_backward(ws.dpatch, ws.dFx, ws.dFy, ws.dgm, ws.dtmp, ws.dcan, wb.o, wb.tmp,
                                     wb.patch, wb.Fx, wb.Fy, wb.gm, aw);
            loom_filterbank_backward(ws.dp, ws.dFx, ws.dFy, ws.dgm, wb.p, wb.Fx, wb.Fy, aw);
            loom_linear_backward(dhd, G(m, grad, P_WATT_W), G(m, grad, P_WATT_B), ws.dp, hd, W(m, P_WATT_W), n, h, 5);
        }
        /* patch = h_dec_t @ write.weight + write.bias */
        const float *dpatch = d.attn ? ws.dpatch : ws.dcan;
        memcpy(AT(ws.dwa, t, d.P), dpatch, n * d.P * fb);
        loom_linear_backward(dhd, NULL, G(m, grad, P_WRITE_B), dpatch, hd, W(m, P_WRITE_W), n, h, d.P);
        /* h_dec_t = LSTM_dec(z_t; h_dec_{t-1}, c_dec_{t-1}) */
        memset(ws.dz, 0, n * z * fb);
        if (t) memset(ws.dhd[prv], 0, nh * fb), memset(ws.dcd[prv], 0, nh * fb);
        loom_lstm_backward(ws.dz, t ? ws.dhd[prv] : NULL, t ? ws.dcd[prv] : NULL, gd, ws.lscr, NULL,
                           dhd, ws.dcd[cur], AT(ws.zt, t, z), hdp, cdp, pd, ws.dec_cache + t * cde, hd,
                           (loom_seq_dims){1, n, z, h});
        memcpy(AT(ws.dAd, t, G4), ws.lscr, n * G4 * fb); /* dA is left at the start of the scratch */
        if (gen) { /* z_t was prior noise, and c_t = c_{t-1} + write: dcan is dL/dc_{t-1} too */
            cur = prv;
            continue;
        }
        /* z = mu + exp(ls) eps;  KL = sum 0.5 (mu^2 + exp(2 ls) - 1) - ls */
        const float *q = AT(ws.q, t, 2 * z), *eps = AT(ws.eps, t, z);
        for (size_t b = 0; b < n; b++) {
            const float *mu = q + b * 2 * z, *ls = mu + z, *e = eps + b * z, *dzb = ws.dz + b * z;
            float *dmu = ws.dq + b * 2 * z, *dls = dmu + z;
            for (size_t j = 0; j < z; j++) {
                const float sg = expf(ls[j]);
                dmu[j] = dzb[j] + scale * mu[j];
                dls[j] = dzb[j] * e[j] * sg + scale * (sg * sg - 1.0f);
            }
        }
        loom_linear_backward(dhe, NULL, G(m, grad, P_Q_B), ws.dq, he, W(m, P_Q_W), n, h, 2 * z);
        memcpy(AT(ws.dqa, t, 2 * z), ws.dq, n * 2 * z * fb);
        /* h_enc_t = LSTM_enc([r_t, h_dec_{t-1}]; h_enc_{t-1}, c_enc_{t-1}) */
        memset(ws.din, 0, n * d.In * fb);
        if (t) memset(ws.dhe[prv], 0, nh * fb), memset(ws.dce[prv], 0, nh * fb);
        loom_lstm_backward(ws.din, t ? ws.dhe[prv] : NULL, t ? ws.dce[prv] : NULL, ge, ws.lscr, NULL,
                           dhe, ws.dce[cur], AT(ws.enc_in, t, d.In), hep, cep, pe, ws.enc_cache + t * cen,
                           he, (loom_seq_dims){1, n, d.In, h});
        memcpy(AT(ws.dAe, t, G4), ws.lscr, n * G4 * fb);
        if (t)
            for (size_t b = 0; b < n; b++) {
                const float *src = ws.din + b * d.In + d.R;
                float *dst = ws.dhd[prv] + b * h;
                for (size_t j = 0; j < h; j++) dst[j] += src[j];
            }
        /* r_t = read(x, x_hat; h_dec_{t-1}) */
        const float *dxh = ws.dxh;
        if (d.attn) {
            const float *Fx = AT(ws.Fxr, t, d.Nr * d.W), *Fy = AT(ws.Fyr, t, d.Nr * d.H), *gm = AT(ws.gmr, t, 1);
            const float *pr = AT(ws.pr, t, 5);
            for (size_t b = 0; b < n; b++) {
                memcpy(ws.drx + b * Nr2, ws.din + b * d.In, Nr2 * fb);
                memcpy(ws.drxh + b * Nr2, ws.din + b * d.In + Nr2, Nr2 * fb);
            }
            memset(ws.dxh, 0, n * HW * fb), memset(ws.dp, 0, n * 5 * fb), memset(ws.dgm, 0, n * fb);
            memset(ws.dFx, 0, n * d.Nr * d.W * fb), memset(ws.dFy, 0, n * d.Nr * d.H * fb);
            loom_attn_read_backward(NULL, ws.dFx, ws.dFy, ws.dgm, ws.dtmp, ws.drx, AT(ws.rx, t, Nr2),
                                    AT(ws.tx, t, d.H * d.Nr), ws.x, Fx, Fy, gm, ar);
            loom_attn_read_backward(ws.dxh, ws.dFx, ws.dFy, ws.dgm, ws.dtmp, ws.drxh, AT(ws.rxh, t, Nr2),
                                    AT(ws.txh, t, d.H * d.Nr), AT(ws.xh, t, HW), Fx, Fy, gm, ar);
            loom_filterbank_backward(ws.dp, ws.dFx, ws.dFy, ws.dgm, pr, Fx, Fy, ar);
            if (t) {
                loom_linear_backward(ws.dhd[prv], G(m, grad, P_READ_W), G(m, grad, P_READ_B), ws.dp, hdp,
                                     W(m, P_READ_W), n, h, 5);
            } else { /* p = read bias when h_dec_0 = 0 */
                float *gb = G(m, grad, P_READ_B);
                for (size_t b = 0; b < n; b++)
                    for (size_t j = 0; j < 5; j++) gb[j] += ws.dp[b * 5 + j];
            }
        }
        /* x_hat = x - sigmoid(c_{t-1}); c_t = c_{t-1} + ...: dcan becomes dL/dc_{t-1} */
        const float *S = AT(ws.S, t, HW);
        for (size_t b = 0; b < n; b++) {
            const float *g = d.attn ? dxh + b * HW : ws.din + b * d.In + HW;
            const float *s = S + b * HW;
            float *dc = ws.dcan + b * HW;
            for (size_t i = 0; i < HW; i++) dc[i] -= g[i] * s[i] * (1.0f - s[i]);
        }
        cur = prv;
    }
    /* the weight gradients, each a sum over all steps: w += X^T dY over T*n rows.
     * a = x_t @ w_ih + h_{t-1} @ w_hh + b: h_{-1} = 0 contributes nothing */
    const size_t Tn = d.T * n;
    loom_linear_backward(NULL, G(m, grad, P_DEC_WIH), NULL, ws.dAd, ws.zt, NULL, Tn, z, G4);
    if (d.T > 1)
        loom_linear_backward(NULL, G(m, grad, P_DEC_WHH), NULL, ws.dAd + n * G4, ws.hd, NULL, Tn - n, h, G4);
    loom_linear_backward(NULL, G(m, grad, P_WRITE_W), NULL, ws.dwa, ws.hd, NULL, Tn, h, d.P);
    if (gen) return;
    loom_linear_backward(NULL, G(m, grad, P_ENC_WIH), NULL, ws.dAe, ws.enc_in, NULL, Tn, d.In, G4);
    if (d.T > 1)
        loom_linear_backward(NULL, G(m, grad, P_ENC_WHH), NULL, ws.dAe + n * G4, ws.he, NULL, Tn - n, h, G4);
    loom_linear_backward(NULL, G(m, grad, P_Q_W), NULL, ws.dqa, ws.he, NULL, Tn, h, 2 * z);
}

static void dr_shard(const loom_model *m, void *wsp, float *grad, double *nll_img,
                     const uint8_t *imgs, const int32_t *labels, size_t n, float scale) {
    (void)labels;
    const size_t HW = m->cfg.height * m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    dr_forward(m, &ws, imgs, n, 0);
    for (size_t b = 0; b < n; b++) nll_img[b] = ws.bce[b] + ws.kl[b];
    if (!grad) return;
    /* loss = sum_b bce_b + kl_b, scaled: dL/dc_T = scale (sigmoid(c_T) - x) */
    loom_bernoulli_backward(ws.dcan, ws.canvas, ws.x, n * HW, scale);
    dr_backward(m, ws, grad, n, scale, false);
}

/* the negative ELBO's two terms: the KL of every glimpse's posterior from
 * the prior, and the reconstruction -log p(x | z) */
static size_t dr_loss_terms(const loom_config *c, const char **names) {
    (void)c;
    if (names) names[0] = "kl", names[1] = "recon";
    return 2;
}

/* after dr_shard on this workspace: terms (n, 2) = its KL and reconstruction */
static void dr_shard_terms(const loom_model *m, void *wsp, double *terms, size_t n) {
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t b = 0; b < n; b++) terms[2 * b] = ws.kl[b], terms[2 * b + 1] = ws.bce[b];
}

/* out (n, HW) = the canvas logits c_T (Bernoulli parameters of the image);
 * internal (n) = the KL terms; ws keeps the activations for dr_backward_out */
static void dr_forward_out(const loom_model *m, void *wsp, float *out, double *internal,
                           const uint8_t *imgs, const int32_t *labels, size_t n) {
    (void)labels;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    dr_forward(m, &ws, imgs, n, 0);
    memcpy(out, ws.canvas, n * m->cfg.height * m->cfg.width * sizeof *out);
    for (size_t b = 0; b < n; b++) internal[b] = ws.kl[b];
}

/* after dr_forward_out, dout = d loss / d c_T; after dr_generate, d loss / d x */
static void dr_backward_out(const loom_model *m, void *wsp, float *grad, float *dinput,
                            const float *dout, const int32_t *labels, size_t n,
                            float internal_weight) {
    (void)dinput, (void)labels; /* the input is an 8-bit image, binarized: no gradient */
    const size_t N = n * m->cfg.height * m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    const bool gen = *ws.generated;
    if (gen) /* x = sigmoid(c_T) */
        for (size_t i = 0; i < N; i++) {
            const float s = loom_sigmoidf(ws.canvas[i]);
            ws.dcan[i] = dout[i] * s * (1.0f - s);
        }
    else memcpy(ws.dcan, dout, N * sizeof *ws.dcan);
    dr_backward(m, ws, grad, n, internal_weight, gen);
}

/* x (n, HW) = sigmoid(c_T) of the decoder alone from prior codes z_t ~ N(0,
 * I), drawn for images first .. first + n - 1 of a batch with noise_seed (z
 * must be NULL: a code per glimpse), keeping in ws what dr_backward_out needs */
static void dr_generate(const loom_model *m, void *wsp, float *x, const float *zin, uint64_t noise_seed,
                        size_t first, size_t n) {
    (void)zin;
    const dims d = get_dims(&m->cfg);
    const size_t h = d.h, z = d.z, cde = dec_cache_floats(&d, n);
    const loom_seq_params pd = dec_params(m);
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    *ws.generated = 1;
    for (size_t b = 0; b < n; b++) {
        loom_rng r;
        loom_index_rng(&r, noise_seed, first + b);
        for (size_t t = 0; t < d.T; t++) loom_normals(AT(ws.zt, t, z) + b * z, z, &r);
    }
    memset(ws.canvas, 0, n * d.HW * sizeof *ws.canvas);
    for (size_t t = 0; t < d.T; t++) {
        const float *hdp = t ? AT(ws.hd, t - 1, h) : NULL, *cdp = t ? AT(ws.cd, t - 1, h) : NULL;
        float *hd = AT(ws.hd, t, h);
        loom_lstm_forward(hd, NULL, AT(ws.cd, t, h), ws.dec_cache + t * cde, AT(ws.zt, t, z), hdp, cdp, pd,
                          (loom_seq_dims){1, n, z, h});
        write_forward(ws.canvas, step_write(&ws, &d, t, n), hd, m, &d, n);
    }
    for (size_t i = 0; i < n * d.HW; i++) x[i] = loom_sigmoidf(ws.canvas[i]);
}

/* target (n, HW) = the binarized input of the last forward_out */
static void dr_out_target(const loom_model *m, void *wsp, float *target, size_t n) {
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    memcpy(target, ws.x, n * m->cfg.height * m->cfg.width * sizeof *target);
}

static size_t dr_out_floats(const loom_config *c) { return c->height * c->width; }

/* -log (1/K sum_k w_k), w_k = p(x|z_k) p(z_k) / q(z_k|x), by a running log-sum-exp */
static void dr_iw_nll(const loom_model *m, void *wsp, double *nll_img, const uint8_t *imgs,
                      const int32_t *labels, size_t n, size_t K) {
    (void)labels;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    for (size_t k = 0; k < K; k++) {
        dr_forward(m, &ws, imgs, n, k);
        loom_iw_accumulate(ws.lse_m, ws.lse_s, ws.bce, ws.lqp, n, k);
    }
    loom_iw_nll(nll_img, ws.lse_m, ws.lse_s, n, K);
}

static void dr_reconstruct(const loom_model *m, void *wsp, uint8_t *out, const uint8_t *imgs,
                           const int32_t *labels, size_t n) {
    (void)labels;
    const size_t HW = m->cfg.height * m->cfg.width;
    train_ws ws;
    carve_train(&ws, wsp, &m->cfg, n);
    dr_forward(m, &ws, imgs, n, 0);
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < HW; i++) {
            out[(2 * b) * HW + i] = ws.x[b * HW + i] > 0.5f ? 255 : 0;
            out[(2 * b + 1) * HW + i] = loom_latent_pixel(ws.canvas[b * HW + i]);
        }
}

/* ------------------------------------------------------------ sampling */

typedef struct {
    float *h[2], *c[2]; /* (n, h) decoder state */
    float *z;           /* (n, z) */
    float *step;        /* LSTM step scratch */
    float *canvas;      /* (n, HW) */
    float *patch, *p, *Fx, *Fy, *gm, *tmp, *o; /* one write */
} sample_ws;

static size_t carve_sample(sample_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    const size_t a = (size_t)d.attn;
    size_t off = 0;
    char *p = base;
#define TAKE(field, count) LOOM_TAKE(ws, field, float, count)
    for (int k = 0; k < 2; k++) {
        TAKE(h[k], n * d.h);
        TAKE(c[k], n * d.h);
    }
    TAKE(z, n * d.z);
    TAKE(step, loom_seq_step_floats(LOOM_CELL_LSTM, n, d.h));
    TAKE(canvas, n * d.HW);
    TAKE(patch, n * d.P);
    TAKE(p, a * n * 5);
    TAKE(Fx, a * n * d.Nw * d.W);
    TAKE(Fy, a * n * d.Nw * d.H);
    TAKE(gm, a * n);
    TAKE(tmp, a * n * d.Nw * d.W);
    TAKE(o, a * n * d.HW);
#undef TAKE
    return off;
}

static size_t dr_sample_ws_bytes(const loom_config *c, size_t n) { return carve_sample(NULL, NULL, c, n); }

static size_t dr_nframes(const loom_config *c) { return c->steps_draw; }

/* from the prior: z_t ~ N(0, temperature^2 I); the image is round(255 sigmoid(c_T)) */
static void dr_sample_frames(const loom_model *m, void *wsp, uint8_t *imgs, uint8_t *frames,
                             const int32_t *labels, size_t n, float temperature, loom_rng *rngs) {
    (void)labels;
    const dims d = get_dims(&m->cfg);
    sample_ws ws;
    carve_sample(&ws, wsp, &m->cfg, n);
    const loom_seq_params pd = dec_params(m);
    const write_buf wb = {ws.patch, ws.p, ws.Fx, ws.Fy, ws.gm, ws.tmp, ws.o};
    memset(ws.canvas, 0, n * d.HW * sizeof *ws.canvas);
    int cur = 0;
    for (size_t t = 0; t < d.T; t++) {
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < d.z; j++) ws.z[b * d.z + j] = temperature * loom_rng_normal(&rngs[b]);
        loom_lstm_step(ws.h[1 - cur], ws.c[1 - cur], ws.step, ws.z, t ? ws.h[cur] : NULL,
                       t ? ws.c[cur] : NULL, pd, n, d.z, d.h);
        cur = 1 - cur;
        write_forward(ws.canvas, wb, ws.h[cur], m, &d, n);
        if (frames)
            for (size_t b = 0; b < n; b++)
                for (size_t i = 0; i < d.HW; i++)
                    frames[(b * d.T + t) * d.HW + i] =
                        loom_latent_pixel(ws.canvas[b * d.HW + i]);
    }
    for (size_t i = 0; i < n * d.HW; i++) imgs[i] = loom_latent_pixel(ws.canvas[i]);
}

static void dr_sample(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels, size_t n,
                      size_t keep, float temperature, loom_rng *rngs) {
    (void)keep; /* always 0: loom_model_sample refuses completion for models without logits */
    dr_sample_frames(m, ws, imgs, NULL, labels, n, temperature, rngs);
}

static const char *dr_nll_kind(const loom_config *c) {
    (void)c;
    return "negative ELBO: an upper bound on -log p(x)";
}

const loom_model_ops loom_draw_ops = {
    .name = "draw",
    .check = dr_check,
    .layout = dr_layout,
    .init_extra = dr_init_extra,
    .train_ws_bytes = dr_train_ws_bytes,
    .micro_shard = 32,
    .shard = dr_shard,
    .iw_nll = dr_iw_nll,
    .reconstruct = dr_reconstruct,
    .sample_ws_bytes = dr_sample_ws_bytes,
    .sample = dr_sample,
    .nframes = dr_nframes,
    .sample_frames = dr_sample_frames,
    .nll_kind = dr_nll_kind,
    .output = LOOM_OUT_BERNOULLI,
    .out_floats = dr_out_floats,
    .forward_out = dr_forward_out,
    .backward_out = dr_backward_out,
    .out_target = dr_out_target,
    .generate = dr_generate,
    .loss_terms = dr_loss_terms,
    .shard_terms = dr_shard_terms,
};
