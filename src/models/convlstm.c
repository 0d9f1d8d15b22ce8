/* ConvLSTM encoder-forecaster (Shi et al. 2015) for image sequences; see
 * docs/convlstm.md.
 *
 * An example is a sequence of K + M frames (K = frames_in, M = frames_out),
 * each cut into p x p patches (space to depth: an H x W x C frame becomes
 * H/p x W/p x (C p p)). The encoder, L stacked ConvLSTM layers, reads frames
 * 1..K; forecaster layer l starts from encoder layer l's final (h, c) and
 * runs M steps without any input (its first layer has no input convolution;
 * layer l > 0 reads layer l-1's states), or (cfg->feedback) with its first
 * layer reading its own previous prediction, the last given frame at its
 * first step; so it never sees a frame it is asked to predict, at training
 * or at test time. The concatenated states of
 * every forecaster layer go through a 1x1 convolution to C p p logits per
 * patch position: a Bernoulli per pixel, trained with the cross-entropy
 * against intensities in [0, 1] (the paper's loss), or (softmax256) to
 * C p p x 256 logits, a 256-way softmax per pixel trained with the exact NLL
 * of the 8-bit frames; or (cfg->frame_loss, --loss l1 or mse) to C p p
 * intensities themselves, trained with |z - x| or (z - x)^2 and clamped to
 * [0, 1] where used as frames. Peepholes (cfg->peephole) add per-position weights
 * peep (Hp, Wp, 3, h) to each layer (nn/convlstm.h). */
#include "model.h"

#include "losses/losses.h"
#include "nn/convlstm.h"
#include "nn/nn.h"
#include "fastmath.h"
#include "gemm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    size_t K, M, L, h, k, p;
    size_t C, Hp, Wp, S, Cp; /* channels, patch grid, its positions, channels per patch */
    size_t V;                /* values per pixel's output: 1 (Bernoulli logit) or 256 (softmax) */
    size_t O;                /* output channels per position: Cp V */
    size_t per;              /* tensors per layer: weight, bias (, peep) */
    int feedback;            /* the forecaster reads its previous prediction */
} dims;

static dims get_dims(const loom_config *c) {
    dims d = {.K = c->frames_in, .M = c->frames_out, .L = c->layers, .h = c->hidden,
              .k = c->kernel, .p = c->patch ? c->patch : 1, .C = loom_channels(c)};
    d.Hp = c->height / d.p, d.Wp = c->width / d.p, d.S = d.Hp * d.Wp, d.Cp = d.C * d.p * d.p;
    d.V = c->softmax256 ? 256 : 1, d.O = d.Cp * d.V, d.per = c->peephole ? 3 : 2;
    d.feedback = c->feedback;
    return d;
}

static loom_status cl_check(const loom_config *c, loom_error *err) {
    loom_status st;
    if ((st = loom_check_range("--layers", c->layers, 8, err))) return st;
    if ((st = loom_check_range("--hidden", c->hidden, 1024, err))) return st;
    if ((st = loom_check_range("--frames-in", c->frames_in, 100, err))) return st;
    if ((st = loom_check_range("--frames-out", c->frames_out, 100, err))) return st;
    if ((st = loom_check_range("--kernel", c->kernel, 15, err))) return st;
    if (c->kernel % 2 == 0) return loom_fail(err, LOOM_EINVAL, "--kernel %zu must be odd", c->kernel);
    if ((st = loom_check_range("--patch", c->patch ? c->patch : 1, 16, err))) return st;
    const size_t p = c->patch ? c->patch : 1;
    if (c->height % p || c->width % p)
        return loom_fail(err, LOOM_EINVAL, "--patch %zu does not divide the %zux%zu frames", p, c->height,
                         c->width);
    if (c->nclasses) return loom_fail(err, LOOM_EINVAL, "convlstm is not class-conditional");
    if (c->frame_loss && c->softmax256)
        return loom_fail(err, LOOM_EINVAL, "--loss %s: the softmax256 output is trained with its NLL",
                         loom_frame_loss_name(c->frame_loss));
    if (c->feedback && c->softmax256)
        return loom_fail(err, LOOM_EINVAL, "--feedback: the forecaster reads one intensity per pixel (not --output softmax256)");
    return LOOM_OK;
}

/* tensors: enc.l.weight (4h, k, k, cin + h), enc.l.bias (4h), with
 * peepholes enc.l.peep (Hp, Wp, 3, h) (zero at the start), the same for
 * fore.l (fore.0 has no input channels, or Cp with feedback), out.weight (O, L h), out.bias (O),
 * O = C p p (Bernoulli) or C p p 256 (softmax, value v of channel j at row
 * j 256 + v) */
static size_t cl_layout(const loom_config *c, loom_param *out) {
    const dims d = get_dims(c);
    size_t n = 0;
    char name[LOOM_NAMELEN];
    for (int f = 0; f < 2; f++)
        for (size_t l = 0; l < d.L; l++) {
            const size_t cin = l ? d.h : (f && !c->feedback ? 0 : d.Cp), X = cin + d.h;
            const size_t shape[4] = {4 * d.h, d.k, d.k, X};
            snprintf(name, sizeof name, "%s.%zu.weight", f ? "fore" : "enc", l);
            n = loom_param_add_nd(out, n, 1.0f / sqrtf((float)(d.k * d.k * X)), 4, shape, name);
            snprintf(name, sizeof name, "%s.%zu.bias", f ? "fore" : "enc", l);
            n = loom_param_add_nd(out, n, 0.0f, 1, shape, name);
            if (c->peephole) {
                const size_t ps[4] = {d.Hp, d.Wp, 3, d.h};
                snprintf(name, sizeof name, "%s.%zu.peep", f ? "fore" : "enc", l);
                n = loom_param_add_nd(out, n, 0.0f, 4, ps, name);
            }
        }
    const size_t ow[2] = {d.O, d.L * d.h};
    n = loom_param_add_nd(out, n, 1.0f / sqrtf((float)(d.L * d.h)), 2, ow, "out.weight");
    n = loom_param_add_nd(out, n, 0.0f, 1, ow, "out.bias");
    return n;
}

/* forget-gate biases 1, as is usual for LSTMs */
static void cl_init_extra(loom_model *m) {
    const size_t h = m->cfg.hidden;
    for (size_t i = 0; i < m->nparams; i++) {
        const loom_param *p = &m->params[i];
        size_t len = strlen(p->name);
        if (len > 5 && strcmp(p->name + len - 5, ".bias") == 0 && strncmp(p->name, "out", 3) != 0)
            for (size_t k = 0; k < h; k++) m->w[p->offset + h + k] = 1.0f;
    }
}

/* parameter index of layer l of the encoder (f = 0) or forecaster (f = 1) */
static size_t pw(const dims *d, int f, size_t l) { return d->per * ((size_t)f * d->L + l); }

static loom_convlstm_dims layer_dims(const dims *d, int f, size_t l, size_t n) {
    return (loom_convlstm_dims){.T = f ? d->M : d->K, .B = n, .h = d->Hp, .w = d->Wp,
                                .cin = l ? d->h : (f && !d->feedback ? 0 : d->Cp), .hid = d->h, .k = d->k};
}

#define MAXL 8

typedef struct {
    loom_conv2d_cache cc;   /* first: zeroed memory is an empty cache */
    float *xin;             /* (K, n, S, Cp) input frames in [0, 1] */
    float *target;          /* (M, n, S, Cp) frames to predict in [0, 1] (Bernoulli) */
    uint8_t *target8;       /* (M, n, S, Cp) the same as bytes (softmax) */
    float *hs[2][MAXL];     /* (T, n, S, h) states of encoder / forecaster layer l */
    float *cache[2][MAXL];  /* the layers' caches (convlstm.h) */
    float *logits;          /* (M, n, S, O) */
    float *dlogits;         /* (M, n, S, O); the softmax's is logits itself, in place */
    float *fed;             /* (M, n, S, Cp) feedback: the predictions p = sigmoid(logits) */
    float *dfh[MAXL];       /* (n, S, h) dL/d(forecaster layer l's state) at one step */
    float *bs[MAXL];        /* forecaster layer l's backward state (convlstm.h) */
    float *dfed;            /* (n, S, Cp) feedback: dL/d(the prediction read) at one step */
    float *dA, *dB;         /* (max(K, M), n, S, h) dL/d(a layer's input), ping-pong */
    float *dh0[MAXL], *dc0[MAXL]; /* (n, S, h) dL/d(the forecaster's initial state) */
    float *scratch;
} train_ws;

static size_t carve(train_ws *ws, void *base, const loom_config *c, size_t n) {
    const dims d = get_dims(c);
    char *p = base;
    size_t off = 0;
    const size_t P = n * d.S, T = d.K > d.M ? d.K : d.M;
#define TAKE(field, count) LOOM_TAKE(ws, field, float, count)
    off += (sizeof(train_ws) + 63) & ~(size_t)63; /* the struct itself, at the start */
    TAKE(xin, d.K * P * d.Cp);
    TAKE(target, d.V == 1 ? d.M * P * d.Cp : 0);
    LOOM_TAKE(ws, target8, uint8_t, d.V == 1 ? 0 : d.M * P * d.Cp);
    size_t sc = 0;
    for (int f = 0; f < 2; f++)
        for (size_t l = 0; l < d.L; l++) {
            const loom_convlstm_dims ld = layer_dims(&d, f, l, n);
            TAKE(hs[f][l], ld.T * P * d.h);
            TAKE(cache[f][l], loom_convlstm_cache_floats(ld));
            const size_t s = loom_convlstm_scratch_floats(ld);
            sc = s > sc ? s : sc;
        }
    TAKE(logits, d.M * P * d.O);
    TAKE(dlogits, d.V == 1 ? d.M * P * d.O : 0);
    TAKE(fed, d.feedback ? d.M * P * d.Cp : 0);
    TAKE(dfed, d.feedback ? P * d.Cp : 0);
    for (size_t l = 0; l < d.L; l++) {
        TAKE(dfh[l], P * d.h);
        TAKE(bs[l], loom_convlstm_bstate_floats(layer_dims(&d, 1, l, n)));
        TAKE(dh0[l], P * d.h);
        TAKE(dc0[l], P * d.h);
    }
    TAKE(dA, T * P * d.h);
    TAKE(dB, T * P * d.h);
    TAKE(scratch, sc);
#undef TAKE
    return off;
}

static size_t cl_train_ws_bytes(const loom_config *c, size_t n) { return carve(NULL, NULL, c, n); }

/* the workspace struct at the start of wsp, pointers carved for n sequences */
static train_ws *get_ws(void *wsp, const loom_config *c, size_t n) {
    train_ws *ws = wsp;
    loom_conv2d_cache keep = ws->cc;
    carve(ws, wsp, c, n);
    ws->cc = keep;
    return ws;
}

static void cl_ws_release(void *wsp) { loom_conv2d_cache_release(&((train_ws *)wsp)->cc); }

static const float *Wt(const loom_model *m, size_t k) { return m->w + m->params[k].offset; }

/* frames [t0, t0 + T) of seqs (n, K + M, C, H, W) into dst (T, n, S, Cp) in [0, 1] */
static void patchify(float *dst, const uint8_t *seqs, size_t t0, size_t T, size_t n, const dims *d,
                     const loom_config *c) {
    const size_t H = c->height, W = c->width, F = d->K + d->M, p = d->p;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < n; b++) {
            const uint8_t *fr = seqs + (b * F + t0 + t) * d->C * H * W;
            float *o = dst + (t * n + b) * d->S * d->Cp;
            for (size_t y = 0; y < d->Hp; y++)
                for (size_t x = 0; x < d->Wp; x++)
                    for (size_t ch = 0; ch < d->C; ch++)
                        for (size_t dy = 0; dy < p; dy++)
                            for (size_t dx = 0; dx < p; dx++)
                                o[(y * d->Wp + x) * d->Cp + (ch * p + dy) * p + dx] =
                                    fr[(ch * H + y * p + dy) * W + x * p + dx] * (1.0f / 255.0f);
        }
}

/* the same as bytes (the softmax's targets) */
static void patchify8(uint8_t *dst, const uint8_t *seqs, size_t t0, size_t T, size_t n, const dims *d,
                      const loom_config *c) {
    const size_t H = c->height, W = c->width, F = d->K + d->M, p = d->p;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < n; b++) {
            const uint8_t *fr = seqs + (b * F + t0 + t) * d->C * H * W;
            uint8_t *o = dst + (t * n + b) * d->S * d->Cp;
            for (size_t y = 0; y < d->Hp; y++)
                for (size_t x = 0; x < d->Wp; x++)
                    for (size_t ch = 0; ch < d->C; ch++)
                        for (size_t dy = 0; dy < p; dy++)
                            memcpy(o + (y * d->Wp + x) * d->Cp + (ch * p + dy) * p,
                                   fr + (ch * H + y * p + dy) * W + x * p, p);
        }
}

/* layer l's peephole weights, or NULL */
static const float *Peep(const loom_model *m, const dims *d, size_t k) {
    return d->per == 3 ? m->w + m->params[k + 2].offset : NULL;
}

/* a pixel's predicted intensity from its output z: the Bernoulli mean
 * sigmoid(z), or (--loss l1, mse: z is the intensity itself) z within [0, 1] */
static inline float intensity(float z, int frame_loss) {
    return frame_loss ? fminf(fmaxf(z, 0.0f), 1.0f) : loom_sigmoidf(z);
}

/* encoder layer l's last cell state (the forecaster's initial one) */
static const float *enc_c_last(const train_ws *ws, const dims *d, size_t l, size_t n) {
    return loom_convlstm_cell(ws->cache[0][l], layer_dims(d, 0, l, n), d->K - 1);
}

static void forward(const loom_model *m, train_ws *ws, const uint8_t *seqs, size_t n, bool targets) {
    const dims d = get_dims(&m->cfg);
    const size_t P = n * d.S;
    loom_conv2d_cache_new_weights(&ws->cc);
    patchify(ws->xin, seqs, 0, d.K, n, &d, &m->cfg);
    if (targets && d.V == 1) patchify(ws->target, seqs, d.K, d.M, n, &d, &m->cfg);
    if (targets && d.V > 1) patchify8(ws->target8, seqs, d.K, d.M, n, &d, &m->cfg);
    for (size_t l = 0; l < d.L; l++) {
        const size_t k = pw(&d, 0, l);
        loom_convlstm_forward(ws->hs[0][l], ws->cache[0][l], l ? ws->hs[0][l - 1] : ws->xin, NULL, NULL, Wt(m, k),
                              Wt(m, k + 1), Peep(m, &d, k), layer_dims(&d, 0, l, n), &ws->cc, ws->scratch);
    }
    /* the forecaster a step at a time, every layer, then the step's logits
     * = [fh_0 .. fh_{L-1}] @ out.weight^T + out.bias, a 1x1 convolution
     * (with feedback the next step reads their sigmoid); forecaster layer l
     * starts from encoder layer l's last state */
    const size_t ko = pw(&d, 0, 2 * d.L);
    const float *wo = Wt(m, ko), *bo = Wt(m, ko + 1);
    for (size_t t = 0; t < d.M; t++) {
        for (size_t l = 0; l < d.L; l++) {
            const size_t k = pw(&d, 1, l);
            const float *x = l ? ws->hs[1][l - 1] + t * P * d.h
                             : !d.feedback ? NULL
                             : t ? ws->fed + (t - 1) * P * d.Cp
                                 : ws->xin + (d.K - 1) * P * d.Cp;
            loom_convlstm_forward_step(ws->hs[1][l], ws->cache[1][l], x, ws->hs[0][l] + (d.K - 1) * P * d.h,
                                       enc_c_last(ws, &d, l, n), Wt(m, k), Wt(m, k + 1), Peep(m, &d, k),
                                       layer_dims(&d, 1, l, n), t, &ws->cc, ws->scratch);
        }
        float *lg = ws->logits + t * P * d.O;
        for (size_t r = 0; r < P; r++) memcpy(lg + r * d.O, bo, d.O * sizeof *bo);
        for (size_t l = 0; l < d.L; l++)
            loom_gemm(false, true, P, d.O, d.h, 1.0f, ws->hs[1][l] + t * P * d.h, d.h, wo + l * d.h, d.L * d.h, 1.0f,
                      lg, d.O);
        if (d.feedback)
            for (size_t i = 0; i < P * d.Cp; i++) ws->fed[t * P * d.Cp + i] = intensity(lg[i], m->cfg.frame_loss);
    }
}

/* layer l's peephole gradient in grad, or NULL */
static float *dpeep(const loom_model *m, const dims *d, float *grad, size_t k) {
    return d->per == 3 ? grad + m->params[k + 2].offset : NULL;
}

/* dlg (M, n, S, O) = dL/dlogits; with feedback, step t's logits also reach
 * the loss through step t + 1, whose gradient is added to dlg here */
static void backward(const loom_model *m, train_ws *ws, float *grad, float *dlg, size_t n) {
    const dims d = get_dims(&m->cfg);
    const size_t P = n * d.S, ko = pw(&d, 0, 2 * d.L);
    const float *wo = Wt(m, ko);
    float *gwo = grad + m->params[ko].offset, *gbo = grad + m->params[ko + 1].offset;
    for (size_t l = 0; l < d.L; l++) loom_convlstm_backward_begin(ws->bs[l], NULL, NULL, layer_dims(&d, 1, l, n));
    /* the forecaster, last step first; in each, the top layer first: its
     * input gradient joins the layer below's */
    for (size_t t = d.M; t-- > 0;) {
        const float *dl = dlg + t * P * d.O;
        for (size_t r = 0; r < P; r++)
            for (size_t j = 0; j < d.O; j++) gbo[j] += dl[r * d.O + j];
        for (size_t l = 0; l < d.L; l++) {
            const float *fh = ws->hs[1][l] + t * P * d.h;
            loom_gemm(true, false, d.O, d.h, P, 1.0f, dl, d.O, fh, d.h, 1.0f, gwo + l * d.h, d.L * d.h);
            loom_gemm(false, false, P, d.h, d.O, 1.0f, dl, d.O, wo + l * d.h, d.L * d.h, 0.0f, ws->dfh[l], d.h);
        }
        for (size_t l = d.L; l-- > 0;) {
            const size_t k = pw(&d, 1, l);
            float *dx = l ? ws->dA : d.feedback && t ? ws->dfed : NULL;
            loom_convlstm_backward_step(dx, ws->bs[l], dpeep(m, &d, grad, k), ws->dfh[l], ws->cache[1][l],
                                        enc_c_last(ws, &d, l, n), Wt(m, k), Peep(m, &d, k), layer_dims(&d, 1, l, n),
                                        t, &ws->cc, ws->scratch);
            if (l)
                for (size_t i = 0; i < P * d.h; i++) ws->dfh[l - 1][i] += ws->dA[i];
        }
        if (d.feedback && t) { /* step t read p = intensity(logits of step t - 1) */
            const float *p = ws->fed + (t - 1) * P * d.Cp;
            float *dprev = dlg + (t - 1) * P * d.O;
            if (m->cfg.frame_loss) /* p = z within [0, 1]: dp/dz = 1 inside, 0 where clamped */
                for (size_t i = 0; i < P * d.Cp; i++) dprev[i] += p[i] > 0.0f && p[i] < 1.0f ? ws->dfed[i] : 0.0f;
            else
                for (size_t i = 0; i < P * d.Cp; i++) dprev[i] += ws->dfed[i] * p[i] * (1.0f - p[i]);
        }
    }
    for (size_t l = 0; l < d.L; l++) {
        const size_t k = pw(&d, 1, l);
        loom_convlstm_backward_end(ws->dh0[l], ws->dc0[l], grad + m->params[k].offset, grad + m->params[k + 1].offset,
                                   ws->bs[l], ws->cache[1][l], layer_dims(&d, 1, l, n), &ws->cc, ws->scratch);
    }
    /* encoder, top layer first; its outputs reach the loss only through the
     * layer above and the forecaster's initial state */
    float *dhs = ws->dA, *dx = ws->dB;
    memset(dhs, 0, d.K * P * d.h * sizeof *dhs);
    for (size_t l = d.L; l-- > 0;) {
        const loom_convlstm_dims ld = layer_dims(&d, 0, l, n);
        const size_t k = pw(&d, 0, l);
        loom_convlstm_backward(l ? dx : NULL, NULL, NULL, grad + m->params[k].offset, grad + m->params[k + 1].offset,
                               dpeep(m, &d, grad, k), dhs, ws->dh0[l], ws->dc0[l], ws->cache[0][l], NULL, Wt(m, k),
                               Peep(m, &d, k), ld, &ws->cc, ws->scratch);
        float *t = dhs;
        dhs = dx, dx = t;
    }
}

static void cl_shard(const loom_model *m, void *wsp, float *grad, double *nll_img, const uint8_t *imgs,
                     const int32_t *labels, size_t n, float scale) {
    (void)labels;
    const dims d = get_dims(&m->cfg);
    train_ws *ws = get_ws(wsp, &m->cfg, n);
    forward(m, ws, imgs, n, true);
    const size_t F = d.S * d.Cp; /* one frame's pixels */
    if (d.V > 1) { /* the softmax: NLL and, in place, its gradient, frame by frame */
        for (size_t b = 0; b < n; b++) {
            double acc = 0.0;
            for (size_t t = 0; t < d.M; t++)
                acc += loom_softmax256_xent(ws->logits + (t * n + b) * F * 256, NULL, ws->target8 + (t * n + b) * F,
                                            F, scale, grad != NULL);
            nll_img[b] = acc;
        }
        if (grad) backward(m, ws, grad, ws->logits, n);
        return;
    }
    /* |z - x| or (z - x)^2 of the outputs z themselves (not through a sigmoid,
     * whose vanishing slope let the absolute error settle on all-black frames),
     * and its gradient */
    if (m->cfg.frame_loss) {
        const bool l1 = m->cfg.frame_loss == LOOM_FRAME_L1;
        for (size_t b = 0; b < n; b++) {
            double acc = 0.0;
            for (size_t t = 0; t < d.M; t++) {
                const size_t o = (t * n + b) * F;
                for (size_t i = 0; i < F; i++) {
                    const float e = ws->logits[o + i] - ws->target[o + i];
                    acc += l1 ? fabsf(e) : e * e;
                    if (grad) ws->dlogits[o + i] = scale * (l1 ? (float)((e > 0) - (e < 0)) : 2.0f * e);
                }
            }
            nll_img[b] = acc;
        }
        if (grad) backward(m, ws, grad, ws->dlogits, n);
        return;
    }
    for (size_t b = 0; b < n; b++) {
        double acc = 0.0;
        for (size_t t = 0; t < d.M; t++)
            acc = loom_bernoulli_nll_acc(acc, ws->logits + (t * n + b) * F, ws->target + (t * n + b) * F, F);
        nll_img[b] = acc;
    }
    if (!grad) return;
    loom_bernoulli_backward(ws->dlogits, ws->logits, ws->target, d.M * n * F, scale);
    backward(m, ws, grad, ws->dlogits, n);
}

/* the mean intensity in [0, 1] under 256 logits z, or (median) the
 * smallest value v / 255 whose cumulative probability reaches 1/2 (e: scratch) */
static float softmax_point(float *e, const float *z, bool median) {
    const float s = loom_softmax256(e, z, 1.0f);
    double acc = 0.0;
    if (median) {
        int v = 0;
        for (; v < 255; v++)
            if ((acc += e[v]) >= 0.5 * s) break;
        return (float)v / 255.0f;
    }
    for (int v = 1; v < 256; v++) acc += (double)e[v] * v;
    return (float)(acc / (255.0 * s));
}

static void cl_predict(const loom_model *m, void *wsp, float *probs, const uint8_t *seqs, size_t n, int point) {
    const dims d = get_dims(&m->cfg);
    train_ws *ws = get_ws(wsp, &m->cfg, n);
    forward(m, ws, seqs, n, false);
    const size_t H = m->cfg.height, W = m->cfg.width, p = d.p;
    float e[256];
    for (size_t b = 0; b < n; b++)
        for (size_t t = 0; t < d.M; t++) {
            const float *lg = ws->logits + (t * n + b) * d.S * d.O;
            float *o = probs + (b * d.M + t) * d.C * H * W;
            for (size_t y = 0; y < d.Hp; y++)
                for (size_t x = 0; x < d.Wp; x++)
                    for (size_t ch = 0; ch < d.C; ch++)
                        for (size_t dy = 0; dy < p; dy++)
                            for (size_t dx = 0; dx < p; dx++) {
                                const size_t j = (y * d.Wp + x) * d.Cp + (ch * p + dy) * p + dx;
                                o[(ch * H + y * p + dy) * W + x * p + dx] =
                                    d.V == 1 ? intensity(lg[j], m->cfg.frame_loss)
                                             : softmax_point(e, lg + j * 256, point == LOOM_POINT_MEDIAN);
                            }
        }
}

static const char *cl_nll_kind(const loom_config *c) {
    /* the softmax's is the exact NLL */
    return c->softmax256 ? NULL : c->frame_loss == LOOM_FRAME_L1 ? "L1 error" : c->frame_loss ? "squared error" : "cross-entropy";
}

static const char *cl_cannot_sample(const loom_config *c) {
    (void)c;
    return "convlstm predicts frames from given ones (use loom predict)";
}

static size_t cl_sample_ws_bytes(const loom_config *c, size_t n) {
    (void)c, (void)n;
    return 64;
}

static void cl_sample(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels, size_t n,
                      size_t keep, float temperature, loom_rng *rngs) {
    (void)m, (void)ws, (void)imgs, (void)labels, (void)n, (void)keep, (void)temperature, (void)rngs;
}

const loom_model_ops loom_convlstm_ops = {
    .name = "convlstm",
    .check = cl_check,
    .layout = cl_layout,
    .init_extra = cl_init_extra,
    .train_ws_bytes = cl_train_ws_bytes,
    .micro_shard = 4,
    .shard = cl_shard,
    .sample_ws_bytes = cl_sample_ws_bytes,
    .sample = cl_sample,
    .nll_kind = cl_nll_kind,
    .cannot_sample = cl_cannot_sample,
    .predict = cl_predict,
    .ws_release = cl_ws_release,
};
