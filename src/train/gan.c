/* Adversarial training: the GAN objective in two stages (gan.h). */
#include "gan.h"

#include "gemm.h"

#include "../losses/losses.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MICRO 8 /* images per micro-shard, whatever the thread count */

/* the buffers of a model trained against a discriminator: per micro-shard
 * (K) the model's workspace (kept from stage 0 to 1) and both gradients, per
 * thread (T) a discriminator workspace for 2 du images */
typedef struct {
    void **wsm, **wsd;
    float **gm, **gd;
} pair_bufs;

static void pair_free(pair_bufs *p, size_t K, int T) {
    for (size_t j = 0; p->wsm && j < K; j++) free(p->wsm[j]);
    for (int t = 0; p->wsd && t < T; t++) free(p->wsd[t]);
    for (size_t j = 0; p->gm && j < K; j++) free(p->gm[j]);
    for (size_t j = 0; p->gd && j < K; j++) free(p->gd[j]);
    free(p->wsm), free(p->wsd), free(p->gm), free(p->gd);
}

static bool pair_alloc(pair_bufs *p, const loom_model *m, const loom_model *d, size_t K, int T, size_t u,
                       size_t du) {
    p->wsm = calloc(K, sizeof *p->wsm), p->gm = calloc(K, sizeof *p->gm), p->gd = calloc(K, sizeof *p->gd);
    p->wsd = calloc((size_t)T, sizeof *p->wsd);
    bool ok = p->wsm && p->gm && p->gd && p->wsd;
    for (size_t j = 0; ok && j < K; j++) {
        ok = (p->wsm[j] = calloc(1, m->ops->train_ws_bytes(&m->cfg, u))) != NULL;
        ok = ok && (p->gm[j] = malloc(m->nfloats * sizeof(float))) != NULL;
        ok = ok && (p->gd[j] = malloc(d->nfloats * sizeof(float))) != NULL;
    }
    /* a discriminator workspace holds 2 du images (its train_ws_bytes(du) says so) */
    for (int t = 0; ok && t < T; t++) ok = (p->wsd[t] = calloc(1, d->ops->train_ws_bytes(&d->cfg, du))) != NULL;
    return ok;
}

struct loom_gan {
    loom_model *g, *d;
    size_t B, u, K, HW; /* batch, micro-shard, micro-shards, pixels of one image */
    long d_steps;
    int T;              /* threads */
    pair_bufs p;        /* the generator's workspaces and gradients, the discriminator's */
    float *fake;        /* (B, HW) the step's generated images */
    float *x2;          /* (T, 2u, HW) real then generated images of a micro-shard */
    float *lg, *dl;     /* (T, 2u) logits and d loss / d logit */
    float *dx;          /* (T, u, HW) d L_G / d generated image */
    double *loss_b;     /* (B) per image loss */
    const float *z;     /* (B, zdim) given noise (loom_gan_set_noise), or NULL */
};

void loom_gan_set_noise(loom_gan *g, const float *z) { g->z = z; }

double loom_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void loom_gan_free(loom_gan *g) {
    if (!g) return;
    pair_free(&g->p, g->K, g->T);
    free(g->fake), free(g->x2), free(g->lg), free(g->dl), free(g->dx), free(g->loss_b);
    free(g);
}

loom_status loom_gan_create(loom_gan **out, loom_model *gen, loom_model *disc, size_t batch, long d_steps,
                            loom_error *err) {
    *out = NULL;
    const loom_model_ops *go = gen->ops, *dop = disc->ops;
    if (!go->generate || !go->backward_out)
        return loom_fail(err, LOOM_EINVAL, "model %s cannot be an adversarial generator", go->name);
    if (!dop->forward_x || !dop->backward_out || loom_model_out_floats(disc) != 1)
        return loom_fail(err, LOOM_EINVAL, "model %s cannot be a discriminator", dop->name);
    if (gen->cfg.height != disc->cfg.height || gen->cfg.width != disc->cfg.width ||
        loom_channels(&gen->cfg) != loom_channels(&disc->cfg))
        return loom_fail(err, LOOM_EINVAL, "the generator's images are not the discriminator's size");
    if (batch == 0 || d_steps < 1) return loom_fail(err, LOOM_EINVAL, "gan: batch and d_steps must be positive");
    const size_t u = batch < MICRO ? batch : MICRO, G = disc->cfg.mbstd;
    /* a minibatch group must hold real images only or generated ones only */
    if (G && (u % G || (batch % u) % G))
        return loom_fail(err, LOOM_EINVAL, "gan: a batch of %zu does not split into the discriminator's mbstd "
                         "groups of %zu within micro-shards of %zu real and %zu generated images", batch, G, u, u);
    loom_gan *g = calloc(1, sizeof *g);
    if (!g) return loom_fail(err, LOOM_ENOMEM, "gan: out of memory");
    g->g = gen, g->d = disc, g->B = batch, g->d_steps = d_steps;
    g->u = u, g->K = (batch + g->u - 1) / g->u;
    g->HW = loom_channels(&gen->cfg) * gen->cfg.height * gen->cfg.width;
    g->T = gen->nthreads < (int)g->K ? gen->nthreads : (int)g->K;
    if (g->T < 1) g->T = 1;
    const size_t T = (size_t)g->T;
    g->fake = malloc(batch * g->HW * sizeof *g->fake);
    g->x2 = malloc(T * 2 * u * g->HW * sizeof *g->x2);
    g->lg = malloc(T * 2 * u * sizeof *g->lg), g->dl = malloc(T * 2 * u * sizeof *g->dl);
    g->dx = malloc(T * u * g->HW * sizeof *g->dx);
    g->loss_b = malloc(batch * sizeof *g->loss_b);
    const bool ok = pair_alloc(&g->p, gen, disc, g->K, g->T, u, u) && g->fake && g->x2 && g->lg && g->dl && g->dx &&
                    g->loss_b;
    if (!ok) {
        loom_gan_free(g);
        return loom_fail(err, LOOM_ENOMEM, "gan: out of memory for the workspaces of a batch of %zu", batch);
    }
    *out = g;
    return LOOM_OK;
}

/* dst = bufs[0] + bufs[1] + ... + bufs[K-1], in that order */
static void sum_in_order(float *dst, float *const *bufs, size_t K, size_t nf) {
    memcpy(dst, bufs[0], nf * sizeof *dst);
    for (size_t j = 1; j < K; j++)
        for (size_t i = 0; i < nf; i++) dst[i] += bufs[j][i];
}

/* The discriminator's stage on one micro-shard of nb real images (bytes)
 * and nf sets of nb generated ones (floats; nf 1 or 2): x, lg and dl are the
 * thread's scratch ((1 + nf) nb images and logits), loss_b (nb) =
 * L_D = softplus(-l_real) + 1/nf sum_k softplus(l_fake_k) of each real image
 * and its fakes, gd = its gradient, scaled by 1 / batch (the mean over the
 * batch) */
static void disc_stage(loom_model *d, void *ws, float *gd, float *x, float *lg, float *dl, double *loss_b,
                       const uint8_t *real, const float *const *fake, size_t nf, size_t nb, size_t HW,
                       size_t batch) {
    for (size_t i = 0; i < nb * HW; i++) x[i] = (float)real[i] / 255.0f;
    for (size_t k = 0; k < nf; k++) memcpy(x + (1 + k) * nb * HW, fake[k], nb * HW * sizeof *x);
    d->ops->forward_x(d, ws, lg, x, (1 + nf) * nb);
    const float s = 1.0f / (float)batch, sf = s / (float)nf;
    for (size_t b = 0; b < nb; b++) {
        const float lr = lg[b];
        double l = 0.0;
        for (size_t k = 0; k < nf; k++) {
            const float lf = lg[(1 + k) * nb + b];
            l += loom_softplus((double)lf);
            dl[(1 + k) * nb + b] = sf * sigmoid(lf);
        }
        loss_b[b] = loom_softplus(-(double)lr) + l / (double)nf;
        dl[b] = s * (sigmoid(lr) - 1.0f);
    }
    memset(gd, 0, d->nfloats * sizeof(float));
    d->ops->backward_out(d, ws, gd, NULL, dl, NULL, (1 + nf) * nb, 0.0f);
}

/* stage 0, micro-shard j on thread t: draw the fakes, the discriminator's loss and gradient */
static void d_shard(loom_gan *g, size_t j, int t, const uint8_t *imgs, uint64_t noise) {
    const size_t b0 = j * g->u, nb = LOOM_MIN(g->u, g->B - b0), HW = g->HW, u2 = (size_t)t * 2 * g->u;
    float *fake = g->fake + b0 * HW;
    g->g->ops->generate(g->g, g->p.wsm[j], fake, g->z ? g->z + b0 * g->g->cfg.zdim : NULL, noise, b0, nb);
    const float *fakes[1] = {fake};
    disc_stage(g->d, g->p.wsd[t], g->p.gd[j], g->x2 + u2 * HW, g->lg + u2, g->dl + u2, g->loss_b + b0,
               imgs + b0 * HW, fakes, 1, nb, HW, g->B);
}

/* stage 1, micro-shard j on thread t: L_G of the same fakes, and with
 * update the generator's gradient through the discriminator */
static void g_shard(loom_gan *g, size_t j, int t, bool update) {
    const size_t b0 = j * g->u, nb = LOOM_MIN(g->u, g->B - b0), HW = g->HW;
    float *lg = g->lg + (size_t)t * 2 * g->u, *dl = g->dl + (size_t)t * 2 * g->u;
    float *dx = g->dx + (size_t)t * g->u * HW;
    g->d->ops->forward_x(g->d, g->p.wsd[t], lg, g->fake + b0 * HW, nb);
    const float s = 1.0f / (float)g->B;
    for (size_t b = 0; b < nb; b++) {
        /* non-saturating: L_G = softplus(-D(G(z))) */
        g->loss_b[b0 + b] = loom_softplus(-(double)lg[b]);
        dl[b] = s * (sigmoid(lg[b]) - 1.0f);
    }
    if (!update) return;
    memset(dx, 0, nb * HW * sizeof *dx);
    g->d->ops->backward_out(g->d, g->p.wsd[t], NULL, dx, dl, NULL, nb, 0.0f);
    memset(g->p.gm[j], 0, g->g->nfloats * sizeof(float));
    g->g->ops->backward_out(g->g, g->p.wsm[j], g->p.gm[j], NULL, dx, NULL, nb, 0.0f);
}

loom_status loom_gan_stage(void *user, size_t stage, loom_model *const *models, size_t n,
                           const uint8_t *imgs, size_t batch, uint64_t noise_seed, long step,
                           double *losses, unsigned *update, loom_error *err) {
    loom_gan *g = user;
    if (n < 2 || models[0] != g->g || models[1] != g->d || batch != g->B)
        return loom_fail(err, LOOM_EINVAL, "gan: called for another run than it was made for");
    const bool g_update = stage == 1 && (step + 1) % g->d_steps == 0;
    /* every thread multiplies on the run's back-end, in fp32 */
    const loom_gemm_mode mode = {(loom_gemm_backend)g->g->gemm, LOOM_PREC_FP32, NULL, NULL, 0, 0};
#pragma omp parallel for num_threads(g->T) schedule(dynamic, 1)
    for (size_t j = 0; j < g->K; j++) {
        const loom_gemm_mode caller = loom_gemm_mode_set(mode);
        const int t = omp_get_thread_num();
        if (stage == 0) d_shard(g, j, t, imgs, noise_seed);
        else g_shard(g, j, t, g_update);
        loom_gemm_mode_set(caller);
    }
    double s = 0.0;
    for (size_t b = 0; b < g->B; b++) s += g->loss_b[b];
    if (stage == 0) {
        sum_in_order(g->d->g, g->p.gd, g->K, g->d->nfloats);
        losses[1] = s / (double)g->B;
        *update = 1u << 1;
    } else {
        if (g_update) sum_in_order(g->g->g, g->p.gm, g->K, g->g->nfloats);
        losses[0] = s / (double)g->B;
        *update = g_update ? 1u : 0u;
    }
    return LOOM_OK;
}

/* ------------------------------------------------ an autoencoder's adversarial term */

struct loom_adv {
    loom_model *m, *d;
    size_t B, u, K, HW;
    bool on_recon, on_sample; /* the fakes judged: reconstructions, samples */
    size_t nf;          /* how many kinds of them, 1 or 2 */
    float w;            /* the adversarial loss's weight */
    int T;
    pair_bufs p;        /* the model's workspaces and gradients, the discriminator's */
    void **wss;         /* (K) with samples, the model's workspaces of its samples */
    float *logit;       /* (B, HW) the reconstructions' logits */
    float *recon;       /* (B, HW) and their mean images sigmoid(logit) */
    float *sample;      /* (B, HW) with samples, the samples (generate's images) */
    float *x3, *lg, *dl; /* (T, (1 + nf) u, HW), (T, (1 + nf) u): a micro-shard's real images and fakes */
    float *dx;          /* (T, nf u, HW) d L / d each fake judged */
    float *tgt;         /* (T, u, HW) the model's targets (its binarized input), then d L / d logit */
    double *internal, *nll_b, *adv_b, *loss_b; /* (B) */
    double adv_sum;     /* of the steps' mean adversarial losses since loom_adv_take */
    size_t adv_n;
};

void loom_adv_free(loom_adv *a) {
    if (!a) return;
    pair_free(&a->p, a->K, a->T);
    for (size_t j = 0; a->wss && j < a->K; j++) free(a->wss[j]);
    free(a->wss), free(a->sample);
    free(a->logit), free(a->recon), free(a->x3), free(a->lg), free(a->dl), free(a->dx), free(a->tgt);
    free(a->internal), free(a->nll_b), free(a->adv_b), free(a->loss_b);
    free(a);
}

loom_status loom_adv_create(loom_adv **out, loom_model *m, loom_model *disc, size_t batch, double weight,
                            unsigned on, loom_error *err) {
    *out = NULL;
    const loom_model_ops *mo = m->ops, *dop = disc->ops;
    const size_t HW = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width;
    if (!mo->out_target || mo->output != LOOM_OUT_BERNOULLI || loom_model_out_floats(m) != HW)
        return loom_fail(err, LOOM_EINVAL, "model %s cannot take an adversarial loss (it needs a Bernoulli "
                         "output per pixel and a likelihood: rae, draw)", mo->name);
    if (!dop->forward_x || !dop->backward_out || loom_model_out_floats(disc) != 1)
        return loom_fail(err, LOOM_EINVAL, "model %s cannot be a discriminator", dop->name);
    if (m->cfg.height != disc->cfg.height || m->cfg.width != disc->cfg.width ||
        loom_channels(&m->cfg) != loom_channels(&disc->cfg))
        return loom_fail(err, LOOM_EINVAL, "the model's images are not the discriminator's size");
    if (batch == 0 || !(weight > 0) || !isfinite(weight))
        return loom_fail(err, LOOM_EINVAL, "adversarial: a positive batch and weight, not %zu and %g", batch, weight);
    if (on < 1 || on > 3) return loom_fail(err, LOOM_EINVAL, "adversarial: judge reconstructions, samples or both");
    const char *no_prior = !mo->generate ? "it cannot generate" : mo->cannot_sample ? mo->cannot_sample(&m->cfg) : NULL;
    if ((on & LOOM_ADV_SAMPLES) && no_prior)
        return loom_fail(err, LOOM_EINVAL, "adversarial: no samples of model %s to judge (%s)", mo->name, no_prior);
    /* the model's own micro-shard (rae 16: its LSTM's products want rows) */
    const size_t mu = mo->micro_shard ? mo->micro_shard : MICRO, u = batch < mu ? batch : mu, G = disc->cfg.mbstd;
    if (G && (u % G || (batch % u) % G))
        return loom_fail(err, LOOM_EINVAL, "adversarial: a batch of %zu does not split into the discriminator's "
                         "mbstd groups of %zu", batch, G);
    loom_adv *a = calloc(1, sizeof *a);
    if (!a) return loom_fail(err, LOOM_ENOMEM, "adversarial: out of memory");
    a->m = m, a->d = disc, a->B = batch, a->u = u, a->K = (batch + u - 1) / u, a->HW = HW, a->w = (float)weight;
    a->on_recon = on & LOOM_ADV_RECON, a->on_sample = on & LOOM_ADV_SAMPLES;
    a->nf = (size_t)a->on_recon + (size_t)a->on_sample;
    a->T = m->nthreads < (int)a->K ? m->nthreads : (int)a->K;
    if (a->T < 1) a->T = 1;
    const size_t T = (size_t)a->T, nx = 1 + a->nf;
    a->logit = malloc(batch * HW * sizeof *a->logit), a->recon = malloc(batch * HW * sizeof *a->recon);
    a->x3 = malloc(T * nx * u * HW * sizeof *a->x3);
    a->lg = malloc(T * nx * u * sizeof *a->lg), a->dl = malloc(T * nx * u * sizeof *a->dl);
    a->dx = malloc(T * a->nf * u * HW * sizeof *a->dx), a->tgt = malloc(T * u * HW * sizeof *a->tgt);
    a->internal = malloc(batch * sizeof *a->internal), a->nll_b = malloc(batch * sizeof *a->nll_b);
    a->adv_b = malloc(batch * sizeof *a->adv_b), a->loss_b = malloc(batch * sizeof *a->loss_b);
    /* the discriminator reads (1 + nf) u images at once; a workspace for du holds 2 du */
    bool ok = pair_alloc(&a->p, m, disc, a->K, a->T, u, (nx * u + 1) / 2) && a->logit && a->recon &&
              a->x3 && a->lg && a->dl && a->dx && a->tgt && a->internal && a->nll_b && a->adv_b && a->loss_b;
    if (ok && a->on_sample) {
        ok = (a->wss = calloc(a->K, sizeof *a->wss)) && (a->sample = malloc(batch * HW * sizeof *a->sample));
        for (size_t j = 0; ok && j < a->K; j++) ok = (a->wss[j] = calloc(1, mo->train_ws_bytes(&m->cfg, u))) != NULL;
    }
    if (!ok) {
        loom_adv_free(a);
        return loom_fail(err, LOOM_ENOMEM, "adversarial: out of memory for the workspaces of a batch of %zu", batch);
    }
    *out = a;
    return LOOM_OK;
}

double loom_adv_take(loom_adv *a) {
    const double v = a->adv_n ? a->adv_sum / (double)a->adv_n : NAN;
    a->adv_sum = 0.0, a->adv_n = 0;
    return v;
}

/* fakes (nf) = the fake images judged of the micro-shard at b0, in the
 * order both stages hand them to the discriminator: reconstructions, samples */
static void adv_fakes(const loom_adv *a, size_t b0, const float **fakes) {
    size_t k = 0;
    if (a->on_recon) fakes[k++] = a->recon + b0 * a->HW;
    if (a->on_sample) fakes[k++] = a->sample + b0 * a->HW;
}

/* stage 0, micro-shard j on thread t: the reconstructions (and samples),
 * the discriminator's loss and gradient */
static void adv_d_shard(loom_adv *a, size_t j, int t, const uint8_t *imgs, uint64_t noise) {
    const size_t b0 = j * a->u, nb = LOOM_MIN(a->u, a->B - b0), HW = a->HW, u3 = (size_t)t * (1 + a->nf) * a->u;
    float *rec = a->recon + b0 * HW, *l = a->logit + b0 * HW;
    a->m->ops->forward_out(a->m, a->p.wsm[j], l, a->internal + b0, imgs + b0 * HW, NULL, nb);
    for (size_t i = 0; i < nb * HW; i++) rec[i] = sigmoid(l[i]); /* the logits' mean image */
    if (a->on_sample) a->m->ops->generate(a->m, a->wss[j], a->sample + b0 * HW, NULL, noise, b0, nb);
    const float *fakes[2];
    adv_fakes(a, b0, fakes);
    disc_stage(a->d, a->p.wsd[t], a->p.gd[j], a->x3 + u3 * HW, a->lg + u3, a->dl + u3, a->loss_b + b0,
               imgs + b0 * HW, fakes, a->nf, nb, HW, a->B);
}

/* stage 1, micro-shard j on thread t: the model's gradient of
 * (sum_b nll_b + w adv_b) / (B HW), adv_b = 1/nf sum over the image's fakes
 * (its reconstruction, its sample) of softplus(-D(fake)). The
 * reconstruction's part is one backward_out: d/d logit = s (sigmoid(l) -
 * target) (the Bernoulli NLL, the model's own loss with its internal terms,
 * the KL, at weight s) + when judged the adversarial part through the
 * discriminator into the reconstruction and its sigmoid; the sample's is a
 * second one, into the same gradient, through the decoder that drew it. */
static void adv_m_shard(loom_adv *a, size_t j, int t) {
    const size_t b0 = j * a->u, nb = LOOM_MIN(a->u, a->B - b0), HW = a->HW, nf = a->nf;
    const float *rec = a->recon + b0 * HW, *l = a->logit + b0 * HW;
    float *x = a->x3 + (size_t)t * (1 + nf) * a->u * HW;
    float *lg = a->lg + (size_t)t * (1 + nf) * a->u, *dl = a->dl + (size_t)t * (1 + nf) * a->u;
    float *dx = a->dx + (size_t)t * nf * a->u * HW, *tg = a->tgt + (size_t)t * a->u * HW;
    const float *fakes[2];
    adv_fakes(a, b0, fakes);
    for (size_t k = 0; k < nf; k++) memcpy(x + k * nb * HW, fakes[k], nb * HW * sizeof *x);
    a->d->ops->forward_x(a->d, a->p.wsd[t], lg, x, nf * nb);
    const float s = 1.0f / ((float)a->B * (float)HW), ws = a->w * s / (float)nf;
    for (size_t b = 0; b < nb; b++) {
        double v = 0.0;
        for (size_t k = 0; k < nf; k++) {
            const float lk = lg[k * nb + b];
            v += loom_softplus(-(double)lk);
            dl[k * nb + b] = ws * (sigmoid(lk) - 1.0f);
        }
        a->adv_b[b0 + b] = v / (double)nf;
    }
    memset(dx, 0, nf * nb * HW * sizeof *dx);
    a->d->ops->backward_out(a->d, a->p.wsd[t], NULL, dx, dl, NULL, nf * nb, 0.0f);
    a->m->ops->out_target(a->m, a->p.wsm[j], tg, nb);
    for (size_t b = 0; b < nb; b++) /* -log p(x | .): the Bernoulli NLL plus the internal terms */
        a->nll_b[b0 + b] = loom_bernoulli_nll_acc(a->internal[b0 + b], l + b * HW, tg + b * HW, HW);
    /* the reconstruction's d loss / d logit, in place of its target */
    for (size_t i = 0; i < nb * HW; i++)
        tg[i] = (a->on_recon ? dx[i] * rec[i] * (1.0f - rec[i]) : 0.0f) + s * (rec[i] - tg[i]);
    memset(a->p.gm[j], 0, a->m->nfloats * sizeof(float));
    a->m->ops->backward_out(a->m, a->p.wsm[j], a->p.gm[j], NULL, tg, NULL, nb, s);
    if (a->on_sample)
        a->m->ops->backward_out(a->m, a->wss[j], a->p.gm[j], NULL, dx + (nf - 1) * nb * HW, NULL, nb, 0.0f);
}

loom_status loom_adv_stage(void *user, size_t stage, loom_model *const *models, size_t n, const uint8_t *imgs,
                           size_t batch, uint64_t noise_seed, long step, double *losses, unsigned *update,
                           loom_error *err) {
    (void)step; /* the model's own noise is its noise_seed, set by the trainer; noise_seed draws the samples */
    loom_adv *a = user;
    if (n < 2 || models[0] != a->m || models[1] != a->d || batch != a->B)
        return loom_fail(err, LOOM_EINVAL, "adversarial: called for another run than it was made for");
    const loom_gemm_mode mode = {(loom_gemm_backend)a->m->gemm, LOOM_PREC_FP32, NULL, NULL, 0, 0};
#pragma omp parallel for num_threads(a->T) schedule(dynamic, 1)
    for (size_t j = 0; j < a->K; j++) {
        const loom_gemm_mode caller = loom_gemm_mode_set(mode);
        const int t = omp_get_thread_num();
        if (stage == 0) adv_d_shard(a, j, t, imgs, noise_seed);
        else adv_m_shard(a, j, t);
        loom_gemm_mode_set(caller);
    }
    if (stage == 0) {
        double s = 0.0;
        for (size_t b = 0; b < a->B; b++) s += a->loss_b[b];
        sum_in_order(a->d->g, a->p.gd, a->K, a->d->nfloats);
        losses[1] = s / (double)a->B;
        *update = 1u << 1;
        return LOOM_OK;
    }
    double s = 0.0, v = 0.0;
    for (size_t b = 0; b < a->B; b++) s += a->nll_b[b], v += a->adv_b[b];
    sum_in_order(a->m->g, a->p.gm, a->K, a->m->nfloats);
    losses[0] = s / ((double)a->B * (double)a->HW); /* the model's own loss, nats per pixel */
    a->adv_sum += v / (double)a->B, a->adv_n++;
    *update = 1u;
    return LOOM_OK;
}

loom_status loom_disc_logits(loom_model *disc, float *logits, const uint8_t *imgs, size_t n,
                             loom_error *err) {
    if (!disc->ops->forward_out || loom_model_out_floats(disc) != 1)
        return loom_fail(err, LOOM_EINVAL, "model %s is not a discriminator", disc->ops->name);
    const size_t u = MICRO, K = (n + u - 1) / u, HW = loom_example_size(&disc->cfg);
    const int T = disc->nthreads < (int)K ? disc->nthreads : (int)(K ? K : 1);
    void **ws = calloc((size_t)T, sizeof *ws);
    double *internal = malloc((size_t)T * u * sizeof *internal);
    bool ok = ws && internal;
    for (int t = 0; ok && t < T; t++) ok = (ws[t] = calloc(1, disc->ops->train_ws_bytes(&disc->cfg, u))) != NULL;
    if (ok) {
        const loom_gemm_mode mode = {(loom_gemm_backend)disc->gemm, LOOM_PREC_FP32, NULL, NULL, 0, 0};
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
        for (size_t j = 0; j < K; j++) {
            const loom_gemm_mode caller = loom_gemm_mode_set(mode);
            const int t = omp_get_thread_num();
            const size_t b0 = j * u, nb = LOOM_MIN(u, n - b0);
            disc->ops->forward_out(disc, ws[t], logits + b0, internal + (size_t)t * u, imgs + b0 * HW, NULL, nb);
            loom_gemm_mode_set(caller);
        }
    }
    for (int t = 0; ws && t < T; t++) free(ws[t]);
    free(ws), free(internal);
    return ok ? LOOM_OK : loom_fail(err, LOOM_ENOMEM, "out of memory");
}

const char *loom_battle_winner_name(loom_battle_winner w) {
    static const char *const names[] = {"A", "B", "tie", "undecided"};
    return (unsigned)w < 4 ? names[w] : "?";
}

/* the fraction of n logits on the wrong side: real images called generated
 * (logit < 0) when real, samples called real (logit > 0) otherwise */
static double error_rate(const float *logits, size_t n, bool real) {
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += real ? logits[i] < 0.0f : logits[i] > 0.0f;
    return (double)wrong / (double)n;
}

/* a / b; 0 / 0 = 1 (both perfect), a / 0 = infinity */
static double ratio(double a, double b) { return b > 0 ? a / b : a > 0 ? INFINITY : 1.0; }

loom_status loom_battle(loom_battle_result *r, loom_model *ga, loom_model *da, loom_model *gb, loom_model *db,
                        const uint8_t *test, size_t n, size_t nsamples, uint64_t seed, double tol, loom_error *err) {
    memset(r, 0, sizeof *r);
    const size_t HW = loom_example_size(&ga->cfg);
    if (n == 0 || nsamples == 0) return loom_fail(err, LOOM_EINVAL, "battle: no images");
    if (loom_example_size(&gb->cfg) != HW || loom_example_size(&da->cfg) != HW || loom_example_size(&db->cfg) != HW)
        return loom_fail(err, LOOM_EINVAL, "battle: the two runs' images are not the same size");
    const size_t most = n > nsamples ? n : nsamples;
    uint8_t *sa = malloc(nsamples * HW), *sb = malloc(nsamples * HW);
    float *lg = malloc(most * sizeof *lg);
    loom_status st = sa && sb && lg ? LOOM_OK : loom_fail(err, LOOM_ENOMEM, "battle: out of memory");
    if (!st) st = loom_model_sample(ga, sa, NULL, nsamples, 0, 1.0f, seed, err);
    if (!st) st = loom_model_sample(gb, sb, NULL, nsamples, 0, 1.0f, seed, err); /* the same z for both */
    if (!st && !(st = loom_disc_logits(da, lg, test, n, err))) r->err_test_a = error_rate(lg, n, true);
    if (!st && !(st = loom_disc_logits(db, lg, test, n, err))) r->err_test_b = error_rate(lg, n, true);
    if (!st && !(st = loom_disc_logits(da, lg, sb, nsamples, err))) r->err_sample_a = error_rate(lg, nsamples, false);
    if (!st && !(st = loom_disc_logits(db, lg, sa, nsamples, err))) r->err_sample_b = error_rate(lg, nsamples, false);
    free(sa), free(sb), free(lg);
    if (st) return st;
    r->r_test = ratio(r->err_test_a, r->err_test_b);
    r->r_sample = ratio(r->err_sample_a, r->err_sample_b);
    if (!isfinite(r->r_test) || fabs(r->r_test - 1.0) > tol) r->winner = LOOM_BATTLE_UNDECIDED;
    else if (r->r_sample < 1.0) r->winner = LOOM_BATTLE_A;
    else if (r->r_sample > 1.0) r->winner = LOOM_BATTLE_B;
    else r->winner = LOOM_BATTLE_TIE;
    return LOOM_OK;
}
