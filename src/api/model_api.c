/* The public model API (include/loom/model.h): thin wrappers over the
 * internal model interface (models/model.h) and checkpoints (io/checkpoint.h)
 * that check their arguments and scope the context's BLAS policy. */
#include "context.h"
#include "io/checkpoint.h"
#include "models/model.h"
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *loom_version(void) { return LOOM_VERSION; }

/* ---------------------------------------------------------------- model */

loom_status loom_model_create_json(loom_model **out, loom_context *ctx, const char *json,
                                   uint64_t seed, loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_model_create_json: out is NULL");
    *out = NULL;
    if (!ctx) return loom_fail(err, LOOM_EINVAL, "loom_model_create_json: context is NULL");
    if (!json) return loom_fail(err, LOOM_EINVAL, "loom_model_create_json: json is NULL");
    loom_config cfg;
    loom_status st = loom_config_parse(&cfg, NULL, json, "config", err);
    if (st) return st;
    loom_model *m;
    if ((st = loom_model_create(&m, &cfg, ctx->nthreads, err))) return st;
    loom_rng rng;
    loom_rng_seed(&rng, seed);
    loom_model_init(m, &rng);
    if (ctx->gemm >= 0 && (st = loom_model_set_gemm(m, ctx->gemm, m->train_prec, m->eval_prec, err))) {
        loom_model_free(m);
        return st;
    }
    m->ctx = ctx;
    *out = m;
    return LOOM_OK;
}

loom_status loom_model_load(loom_model **out, loom_context *ctx, const char *path,
                            loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_model_load: out is NULL");
    *out = NULL;
    if (!ctx) return loom_fail(err, LOOM_EINVAL, "loom_model_load: context is NULL");
    if (!path || !path[0]) return loom_fail(err, LOOM_EINVAL, "loom_model_load: empty path");
    struct stat sb;
    char *file = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* a run directory */
        size_t n = strlen(path);
        file = malloc(n + sizeof "/checkpoint.safetensors");
        if (!file) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
        memcpy(file, path, n);
        memcpy(file + n, "/checkpoint.safetensors", sizeof "/checkpoint.safetensors");
    }
    loom_model *m;
    loom_status st = loom_checkpoint_load(file ? file : path, ctx->nthreads, &m, NULL, NULL, NULL,
                                          NULL, err);
    free(file);
    if (st) return st;
    if (ctx->gemm >= 0 && (st = loom_model_set_gemm(m, ctx->gemm, m->train_prec, m->eval_prec, err))) {
        loom_model_free(m);
        return st;
    }
    m->ctx = ctx;
    *out = m;
    return LOOM_OK;
}

const char *loom_model_name(const loom_model *m) { return m->cfg.model; }
size_t loom_model_num_params(const loom_model *m) { return m->nfloats; }
size_t loom_model_height(const loom_model *m) { return m->cfg.height; }
size_t loom_model_width(const loom_model *m) { return m->cfg.width; }
size_t loom_model_channels(const loom_model *m) { return loom_channels(&m->cfg); }
int loom_model_num_classes(const loom_model *m) { return m->cfg.nclasses; }
size_t loom_model_num_frames(const loom_model *m) { return loom_model_nframes(m); }

const char *loom_model_nll_bound(const loom_model *m) {
    return m->ops->nll_kind ? m->ops->nll_kind(&m->cfg) : NULL;
}

char *loom_model_config_json(const loom_model *m) {
    loom_train_opts o;
    loom_train_opts_default(&o);
    return loom_config_json(&m->cfg, &o);
}

/* The checks every batch call shares: a model, images, n > 0. */
static loom_status check_images(const char *fn, const loom_model *m, const void *imgs, size_t n,
                                loom_error *err) {
    if (!m) return loom_fail(err, LOOM_EINVAL, "%s: model is NULL", fn);
    if (n == 0) return loom_fail(err, LOOM_EINVAL, "%s: no images (n = 0)", fn);
    if (!imgs) return loom_fail(err, LOOM_EINVAL, "%s: image buffer is NULL", fn);
    return LOOM_OK;
}

/* check_images, and the labels of a conditional model; *lab = the labels the
 * model reads. */
static loom_status check_batch(const char *fn, const loom_model *m, const void *imgs,
                               const int32_t *labels, size_t n, const int32_t **lab,
                               loom_error *err) {
    loom_status st = check_images(fn, m, imgs, n, err);
    if (st) return st;
    if (m->cfg.nclasses && !labels)
        return loom_fail(err, LOOM_EINVAL, "%s: the model is class-conditional (%d classes): labels are required",
                         fn, m->cfg.nclasses);
    /* the range of each label is checked by the model (LOOM_EINVAL naming it) */
    *lab = m->cfg.nclasses ? labels : NULL;
    return LOOM_OK;
}

loom_status loom_model_eval_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                                const int32_t *labels, size_t n, loom_error *err) {
    const int32_t *lab = NULL;
    loom_status st = check_batch("loom_model_eval_nll", m, imgs, labels, n, &lab, err);
    if (st) return st;
    if (!nll_img) return loom_fail(err, LOOM_EINVAL, "loom_model_eval_nll: nll_img is NULL");
    int saved = loom_blas_enter(m->ctx);
    /* chunks bound the activations' memory; 32 images per call as `loom eval` */
    st = loom_model_nll(m, nll_img, imgs, lab, n, 32, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

loom_status loom_model_eval_bpd(loom_model *m, double *bpd, const uint8_t *imgs,
                                const int32_t *labels, size_t n, loom_error *err) {
    if (!bpd) return loom_fail(err, LOOM_EINVAL, "loom_model_eval_bpd: bpd is NULL");
    const int32_t *lab = NULL;
    loom_status st = check_batch("loom_model_eval_bpd", m, imgs, labels, n, &lab, err);
    if (st) return st;
    double *nll = malloc(n * sizeof *nll);
    if (!nll) return loom_fail(err, LOOM_ENOMEM, "loom_model_eval_bpd: out of memory");
    st = loom_model_eval_nll(m, nll, imgs, lab, n, err);
    if (!st) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += nll[i];
        *bpd = loom_bits_per_dim(&m->cfg, s / (double)n);
    }
    free(nll);
    return st;
}

static loom_status check_sample(const char *fn, const loom_model *m, float temperature,
                                loom_error *err) {
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return loom_fail(err, LOOM_EINVAL, "%s: temperature %g must be > 0", fn, (double)temperature);
    const char *why = m->ops->cannot_sample ? m->ops->cannot_sample(&m->cfg) : NULL;
    if (why) return loom_fail(err, LOOM_EINVAL, "%s: model %s cannot sample: %s", fn, m->cfg.model, why);
    return LOOM_OK;
}

loom_status loom_model_generate(loom_model *m, uint8_t *imgs, const int32_t *labels, size_t n,
                                float temperature, uint64_t seed, loom_error *err) {
    const int32_t *lab = NULL;
    loom_status st = check_batch("loom_model_generate", m, imgs, labels, n, &lab, err);
    if (st || (st = check_sample("loom_model_generate", m, temperature, err))) return st;
    memset(imgs, 0, n * loom_channels(&m->cfg) * m->cfg.height * m->cfg.width);
    int saved = loom_blas_enter(m->ctx);
    st = loom_model_sample(m, imgs, lab, n, 0, temperature, seed, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

loom_status loom_model_generate_frames(loom_model *m, uint8_t *imgs, uint8_t *frames,
                                       const int32_t *labels, size_t n, float temperature,
                                       uint64_t seed, loom_error *err) {
    const int32_t *lab = NULL;
    loom_status st = check_batch("loom_model_generate_frames", m, imgs, labels, n, &lab, err);
    if (st || (st = check_sample("loom_model_generate_frames", m, temperature, err))) return st;
    if (!frames) return loom_fail(err, LOOM_EINVAL, "loom_model_generate_frames: frames is NULL");
    if (!loom_model_nframes(m))
        return loom_fail(err, LOOM_EINVAL, "loom_model_generate_frames: model %s does not draw in stages",
                         m->cfg.model);
    int saved = loom_blas_enter(m->ctx);
    st = loom_model_sample_frames(m, imgs, frames, lab, n, temperature, seed, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

/* ---------------------------------------------------------------- training */

struct loom_optimizer {
    loom_adam_opts o;
    loom_adam adam;        /* its m, v point into mv */
    const loom_model *model;
    float *mv;             /* (2, nfloats) Adam moments */
};

size_t loom_model_output_size(const loom_model *m) { return loom_model_out_floats(m); }

loom_status loom_model_output_forward(loom_model *m, float *out, double *internal,
                                      const uint8_t *imgs, const int32_t *labels, size_t n,
                                      loom_error *err) {
    const int32_t *lab = NULL;
    loom_status st = check_batch("loom_model_output_forward", m, imgs, labels, n, &lab, err);
    if (st) return st;
    if (!out || !internal)
        return loom_fail(err, LOOM_EINVAL, "loom_model_output_forward: out or internal is NULL");
    int saved = loom_blas_enter(m->ctx);
    st = loom_model_forward(m, out, internal, imgs, lab, n, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

loom_status loom_model_output_backward(loom_model *m, const float *dout, size_t n,
                                       float internal_weight, loom_error *err) {
    if (!m || !dout) return loom_fail(err, LOOM_EINVAL, "loom_model_output_backward: model or dout is NULL");
    int saved = loom_blas_enter(m->ctx);
    loom_status st = loom_model_backward(m, NULL, dout, n, internal_weight, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

void loom_adam_opts_default(loom_adam_opts *o) {
    loom_train_opts t;
    loom_train_opts_default(&t); /* one set of defaults with `loom train` */
    *o = (loom_adam_opts){.lr = t.lr, .beta1 = t.beta1, .beta2 = t.beta2, .eps = t.eps,
                          .clip = t.clip, .seed = t.seed};
}

loom_status loom_model_gradient(loom_model *m, double *loss, const uint8_t *imgs,
                                const int32_t *labels, size_t n, loom_error *err) {
    const int32_t *lab = NULL;
    loom_status st = check_batch("loom_model_gradient", m, imgs, labels, n, &lab, err);
    if (st) return st;
    double l = NAN;
    int saved = loom_blas_enter(m->ctx);
    st = loom_model_grad(m, &l, imgs, lab, n, err);
    loom_blas_leave(m->ctx, saved);
    if (!st && !isfinite(l)) st = loom_fail(err, LOOM_ENAN, "loom_model_gradient: loss is %g", l);
    if (loss) *loss = l;
    return st;
}

loom_status loom_optimizer_create(loom_optimizer **out, const loom_model *m,
                                  const loom_adam_opts *o, loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_optimizer_create: out is NULL");
    *out = NULL;
    if (!m) return loom_fail(err, LOOM_EINVAL, "loom_optimizer_create: model is NULL");
    loom_adam_opts d;
    loom_adam_opts_default(&d);
    if (o) d = *o;
    if (!(d.lr > 0 && d.lr <= 10)) return loom_fail(err, LOOM_EINVAL, "Adam lr %g out of range (0, 10]", d.lr);
    if (!(d.beta1 >= 0 && d.beta1 < 1) || !(d.beta2 >= 0 && d.beta2 < 1))
        return loom_fail(err, LOOM_EINVAL, "Adam betas %g, %g must be in [0, 1)", d.beta1, d.beta2);
    if (!(d.eps > 0)) return loom_fail(err, LOOM_EINVAL, "Adam eps %g must be > 0", d.eps);
    if (!(d.clip >= 0) || !isfinite(d.clip))
        return loom_fail(err, LOOM_EINVAL, "gradient clip %g must be >= 0 (0 = off)", d.clip);
    loom_optimizer *p = calloc(1, sizeof *p);
    float *mv = p ? calloc(2 * m->nfloats, sizeof *mv) : NULL;
    if (!mv) {
        free(p);
        return loom_fail(err, LOOM_ENOMEM, "out of memory for the Adam moments of %zu parameters",
                         m->nfloats);
    }
    p->o = d;
    p->model = m;
    p->mv = mv;
    p->adam = (loom_adam){.lr = (float)d.lr, .beta1 = (float)d.beta1, .beta2 = (float)d.beta2,
                          .eps = (float)d.eps, .m = mv, .v = mv + m->nfloats, .n = m->nfloats, .t = 0};
    *out = p;
    return LOOM_OK;
}

void loom_optimizer_free(loom_optimizer *opt) {
    if (!opt) return;
    free(opt->mv);
    free(opt);
}

long loom_optimizer_steps(const loom_optimizer *opt) { return opt ? opt->adam.t : 0; }

loom_status loom_optimizer_step(loom_optimizer *opt, loom_model *m, double *gnorm,
                                loom_error *err) {
    if (!opt || !m) return loom_fail(err, LOOM_EINVAL, "loom_optimizer_step: %s is NULL", opt ? "model" : "optimizer");
    if (opt->model != m)
        return loom_fail(err, LOOM_EINVAL, "loom_optimizer_step: the optimizer was made for another model");
    double norm = loom_clip_grad_norm(m->g, m->nfloats, opt->o.clip);
    if (gnorm) *gnorm = norm;
    if (!isfinite(norm))
        return loom_fail(err, LOOM_ENAN, "loom_optimizer_step: gradient norm is %g; update skipped", norm);
    loom_adam_step(&opt->adam, m->w, m->g, (float)opt->o.lr);
    return LOOM_OK;
}

loom_status loom_train_step(loom_model *m, loom_optimizer *opt, double *loss,
                            const uint8_t *imgs, const int32_t *labels, size_t n,
                            loom_error *err) {
    if (!opt || !m) return loom_fail(err, LOOM_EINVAL, "loom_train_step: %s is NULL", opt ? "model" : "optimizer");
    if (opt->model != m)
        return loom_fail(err, LOOM_EINVAL, "loom_train_step: the optimizer was made for another model");
    /* fresh latent noise per step, a function of (seed, step) as in `loom train` */
    m->noise_seed = ((opt->o.seed + 1) * 0x9e3779b97f4a7c15ULL) ^
                    ((uint64_t)opt->adam.t * 0xbf58476d1ce4e5b9ULL) ^ 1;
    loom_status st = loom_model_gradient(m, loss, imgs, labels, n, err);
    m->noise_seed = 0;
    return st ? st : loom_optimizer_step(opt, m, NULL, err);
}

loom_status loom_model_save(const loom_model *m, const loom_optimizer *opt, const char *path,
                            loom_error *err) {
    if (!m) return loom_fail(err, LOOM_EINVAL, "loom_model_save: model is NULL");
    if (!path || !path[0]) return loom_fail(err, LOOM_EINVAL, "loom_model_save: empty path");
    if (opt && opt->model != m)
        return loom_fail(err, LOOM_EINVAL, "%s: the optimizer was made for another model", path);
    loom_train_opts o;
    loom_train_opts_default(&o);
    loom_train_state ts = {0};
    if (opt) {
        o.lr = opt->o.lr, o.beta1 = opt->o.beta1, o.beta2 = opt->o.beta2, o.eps = opt->o.eps;
        o.clip = opt->o.clip, o.seed = opt->o.seed;
        ts.step = ts.adam_t = opt->adam.t;
        if (o.steps < ts.step) o.steps = ts.step;
    }
    loom_rng_seed(&ts.rng, o.seed ^ 0x5851f42d4c957f2dULL); /* `loom train`'s shuffling stream */
    return loom_checkpoint_save(path, m, opt ? opt->adam.m : NULL, opt ? opt->adam.v : NULL, &ts, &o,
                                err);
}

/* ---------------------------------------------------------------- sequences, classifiers */

size_t loom_model_frames_in(const loom_model *m) { return m->cfg.frames_in; }
size_t loom_model_frames_out(const loom_model *m) { return m->cfg.frames_out; }

static loom_status check_forecast(const char *fn, const loom_model *m, const void *out,
                                  const uint8_t *seqs, size_t n, loom_error *err) {
    loom_status st = check_images(fn, m, seqs, n, err);
    if (st) return st;
    if (!out) return loom_fail(err, LOOM_EINVAL, "%s: output buffer is NULL", fn);
    if (!(loom_model_caps(m) & LOOM_CAP_PREDICT))
        return loom_fail(err, LOOM_EINVAL, "%s: model %s predicts no frames (it models still images)",
                         fn, m->cfg.model);
    return LOOM_OK;
}

loom_status loom_model_forecast_probs(loom_model *m, float *probs, const uint8_t *seqs, size_t n,
                                      loom_error *err) {
    loom_status st = check_forecast("loom_model_forecast_probs", m, probs, seqs, n, err);
    if (st) return st;
    int saved = loom_blas_enter(m->ctx);
    /* chunks bound the activations' memory: 16 sequences per call as `loom eval` */
    st = loom_model_predict(m, probs, seqs, n, 16, LOOM_POINT_MEAN, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

loom_status loom_model_forecast(loom_model *m, uint8_t *frames, const uint8_t *seqs, size_t n,
                                size_t F, loom_error *err) {
    loom_status st = check_forecast("loom_model_forecast", m, frames, seqs, n, err);
    if (st) return st;
    if (F == 0) return loom_fail(err, LOOM_EINVAL, "loom_model_forecast: no frames asked (F = 0)");
    int saved = loom_blas_enter(m->ctx);
    st = loom_model_predict_frames(m, frames, seqs, n, F, LOOM_POINT_MEAN, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}

size_t loom_model_num_logits(const loom_model *m) { return loom_model_class_floats(m); }
size_t loom_model_feature_size(const loom_model *m) { return loom_model_feat_dim(m); }

loom_status loom_model_class_logits(loom_model *m, float *logits, float *feats, const uint8_t *imgs,
                                    size_t n, loom_error *err) {
    loom_status st = check_images("loom_model_class_logits", m, imgs, n, err);
    if (st) return st;
    if (!loom_model_class_floats(m))
        return loom_fail(err, LOOM_EINVAL, "loom_model_class_logits: model %s does not classify",
                         m->cfg.model);
    if (!logits && !feats)
        return loom_fail(err, LOOM_EINVAL, "loom_model_class_logits: logits and feats are both NULL");
    if (feats && !loom_model_feat_dim(m))
        return loom_fail(err, LOOM_EINVAL, "loom_model_class_logits: model %s has no features (feats must be NULL)",
                         m->cfg.model);
    int saved = loom_blas_enter(m->ctx);
    st = loom_model_classify(m, logits, feats, imgs, n, 64, err);
    loom_blas_leave(m->ctx, saved);
    return st;
}
