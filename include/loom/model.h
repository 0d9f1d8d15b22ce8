/* loom public API: contexts, models, optimisers. Included by <loom.h>.
 *
 * Ownership: every *_create / *_load has a *_free; handles are opaque. A
 * context is borrowed by the models made with it and must outlive them.
 *
 * Threads and BLAS: a model runs its batches on loom_context_threads(ctx)
 * OpenMP threads (passed to each parallel region; omp_set_num_threads is
 * never called). OpenBLAS's thread count is process-wide state and Debian
 * 12's OpenBLAS (0.3.21) has no thread-local setter (openblas_set_num_threads_local
 * appeared in 0.3.27), so each library call that runs a model sets it to the
 * context's BLAS policy on entry and restores the caller's value
 * (openblas_get_num_threads) before returning. While such a call runs, BLAS
 * calls made by the caller's other threads see that value too. */
#ifndef LOOM_MODEL_API_H
#define LOOM_MODEL_API_H

#ifndef LOOM_H
#error "include <loom.h>, not <loom/model.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- context */

typedef struct loom_context loom_context;

/* nthreads: threads per model call; 0 = one per online CPU. BLAS threads
 * default to 1 (loom parallelises over batch shards). */
loom_status loom_context_create(loom_context **out, int nthreads, loom_error *err);
void loom_context_free(loom_context *ctx);
int loom_context_threads(const loom_context *ctx);
/* BLAS threads used inside library calls: n >= 1, or LOOM_BLAS_KEEP to leave
 * OpenBLAS's thread count exactly as the caller set it (no save/restore). */
#define LOOM_BLAS_KEEP 0
loom_status loom_context_set_blas_threads(loom_context *ctx, int n, loom_error *err);
int loom_context_blas_threads(const loom_context *ctx);
/* Matrix-product back-end of the models (and trainers) made with ctx from now
 * on: "openblas" or "onednn" (LOOM_EINVAL when unknown or not built in), NULL
 * or "" for each model's default (docs/performance.md). loom_context_gemm:
 * the name set, or NULL. The calls run oneDNN single-threaded inside each
 * batch shard and change no process-wide state. */
loom_status loom_context_set_gemm(loom_context *ctx, const char *backend, loom_error *err);
const char *loom_context_gemm(const loom_context *ctx);

/* ---------------------------------------------------------------- model */

typedef struct loom_model loom_model;

/* A new model with parameters initialised from seed. json is a run
 * configuration as a run directory's config.json holds it:
 *   {"model": {"name": "rowlstm", "height": 28, "width": 28, "layers": 1,
 *              "hidden": 16, "classes": 0}, "train": {...}}
 * name, height, width, layers, hidden and classes are required; the
 * model-specific keys (cell, zdim; steps_draw, read_n, write_n, attention;
 * variational) as `loom train` writes them. "train" is optional and ignored
 * here; unknown keys are errors (LOOM_EFORMAT naming the key). */
loom_status loom_model_create_json(loom_model **out, loom_context *ctx, const char *json,
                                   uint64_t seed, loom_error *err);
/* A checkpoint file (.safetensors) or a run directory (its
 * checkpoint.safetensors). Only the parameters are loaded. */
loom_status loom_model_load(loom_model **out, loom_context *ctx, const char *path,
                            loom_error *err);
void loom_model_free(loom_model *m);

const char *loom_model_name(const loom_model *m); /* "rowlstm", "draw", ... */
size_t loom_model_num_params(const loom_model *m); /* parameters (floats) */
size_t loom_model_height(const loom_model *m);
size_t loom_model_width(const loom_model *m);
size_t loom_model_channels(const loom_model *m); /* 1 gray, 3 RGB */
int loom_model_num_classes(const loom_model *m); /* 0: unconditional */
/* NULL when loom_model_eval_nll is an exact -log p(x); otherwise what it is,
 * e.g. "negative ELBO" (an upper bound) */
const char *loom_model_nll_bound(const loom_model *m);
/* The model part of the configuration as JSON ({"model": {...}, "train":
 * {defaults}}); malloc'ed, caller frees; NULL when out of memory. */
char *loom_model_config_json(const loom_model *m);

/* Images are uint8 (n, C, H, W), planar, C x H x W the model's size (C = 1 for
 * gray models). labels (n) are class
 * indices in [0, loom_model_num_classes); they are required by a
 * conditional model and ignored (may be NULL) by an unconditional one. */

/* nll_img (n) = -log p(image) in nats (or the bound named by
 * loom_model_nll_bound). */
loom_status loom_model_eval_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                                const int32_t *labels, size_t n, loom_error *err);
/* *bpd = the mean NLL in bits per pixel (bits/dim) of n images. */
loom_status loom_model_eval_bpd(loom_model *m, double *bpd, const uint8_t *imgs,
                                const int32_t *labels, size_t n, loom_error *err);

/* Draw n images (n, C, H, W) at `temperature` (> 0; 1 = the model's
 * distribution). Image k depends only on (seed, k, labels[k]), not on n or
 * the thread count. Fails for a model without a prior (e.g. a plain
 * autoencoder). */
loom_status loom_model_generate(loom_model *m, uint8_t *imgs, const int32_t *labels, size_t n,
                                float temperature, uint64_t seed, loom_error *err);
/* Models that draw in stages (DRAW's canvas): the number of stages, 0 for
 * the others. */
size_t loom_model_num_frames(const loom_model *m);
/* loom_model_generate that also writes frames (n, num_frames, H, W): image
 * k's canvas after each stage. LOOM_EINVAL when num_frames is 0. */
loom_status loom_model_generate_frames(loom_model *m, uint8_t *imgs, uint8_t *frames,
                                       const int32_t *labels, size_t n, float temperature,
                                       uint64_t seed, loom_error *err);

/* Sequence models (LOOM_CAP_PREDICT: convlstm). An example is a sequence of
 * frames_in + frames_out frames, (T, C, H, W) uint8; the model reads the first
 * frames_in and predicts the next frames_out. Both are 0 for still-image
 * models. */
size_t loom_model_frames_in(const loom_model *m);
size_t loom_model_frames_out(const loom_model *m);
/* probs (n, frames_out, C, H, W) = each predicted pixel's probability of
 * being on (its mean, in [0, 1]) given the first frames_in frames of each of
 * the n sequences in seqs (n, frames_in + frames_out, C, H, W; the frames
 * after frames_in are not read: the model never sees the future). */
loom_status loom_model_forecast_probs(loom_model *m, float *probs, const uint8_t *seqs, size_t n,
                                      loom_error *err);
/* frames (n, F, C, H, W) = F frames predicted after the first frames_in of
 * each sequence, round(255 p), frames_out at a time: past the first
 * frames_out, the model reads the last frames_in frames so far (its own
 * output among them), so F may exceed the trained horizon. Deterministic. */
loom_status loom_model_forecast(loom_model *m, uint8_t *frames, const uint8_t *seqs, size_t n,
                                size_t F, loom_error *err);

/* Classifiers (renet, reseg): floats of class logits per image (renet: the
 * classes; reseg: the classes of every pixel of the scene, (H_scene, W,
 * classes)) and of the features
 * the head reads; 0 when the model does not classify. */
size_t loom_model_num_logits(const loom_model *m);
size_t loom_model_feature_size(const loom_model *m);
/* logits (n, num_logits) and feats (n, feature_size) of n images (n, C, H,
 * W); either may be NULL, not both. */
loom_status loom_model_class_logits(loom_model *m, float *logits, float *feats, const uint8_t *imgs,
                                    size_t n, loom_error *err);

/* What a model can do (bits of LOOM_CAP_*, as `loom info` lists them):
 * sample, exact NLL, per-pixel conditionals, an importance-weighted bound,
 * reconstruct, stages, codes, output gradient. loom_cap_name(bit) names one. */
enum {
    LOOM_CAP_SAMPLE = 1 << 0,
    LOOM_CAP_EXACT_NLL = 1 << 1,
    LOOM_CAP_CONDITIONALS = 1 << 2,
    LOOM_CAP_IW_BOUND = 1 << 3,
    LOOM_CAP_RECONSTRUCT = 1 << 4,
    LOOM_CAP_STAGES = 1 << 5,
    LOOM_CAP_CODES = 1 << 6,
    LOOM_CAP_OUTPUT_GRAD = 1 << 7,
    LOOM_CAP_PREDICT = 1 << 8 /* predicts the next frames of a sequence (convlstm; loom predict) */
};
unsigned loom_model_caps(const loom_model *m);
const char *loom_cap_name(unsigned cap);

/* ---------------------------------------------------------------- training */

/* A loss from outside the model (LOOM_CAP_OUTPUT_GRAD: draw, rae, rowlstm,
 * diagbilstm): out (n, loom_model_output_size) = the parameters of each image's
 * output distribution: Bernoulli logits (n, H, W) for DRAW's canvas and rae's
 * decoder, 256-way softmax logits (n, H, W, C, 256) for the PixelRNNs,
 * teacher-forced on imgs; internal (n) = the model's own terms (the KL; 0 for
 * the PixelRNNs), activations
 * kept; then given dout = d loss / d out for the same n images, the model's
 * gradient buffer (as after loom_model_gradient, ready for
 * loom_optimizer_step) = d (loss + internal_weight * sum internal) / d
 * parameters. Any other model call in between drops the kept activations
 * (the backward is then refused). */
size_t loom_model_output_size(const loom_model *m); /* floats per image; 0: not supported */
loom_status loom_model_output_forward(loom_model *m, float *out, double *internal,
                                      const uint8_t *imgs, const int32_t *labels, size_t n,
                                      loom_error *err);
loom_status loom_model_output_backward(loom_model *m, const float *dout, size_t n,
                                       float internal_weight, loom_error *err);

/* Forward + backward over a batch: the model's gradient buffer holds the
 * gradient of the mean NLL per pixel; *loss = that mean in nats/pixel.
 * LOOM_ENAN when the loss is not finite. */
loom_status loom_model_gradient(loom_model *m, double *loss, const uint8_t *imgs,
                                const int32_t *labels, size_t n, loom_error *err);

typedef struct loom_adam_opts {
    double lr, beta1, beta2, eps; /* defaults 1e-3, 0.9, 0.999, 1e-8 */
    double clip;                  /* max gradient L2 norm, 0 = off; default 1 */
    uint64_t seed;                /* noise of latent models (grupixel) per step; default 1 */
} loom_adam_opts;

void loom_adam_opts_default(loom_adam_opts *o);

/* Adam over every parameter of m, with moments at zero. o NULL: defaults. */
typedef struct loom_optimizer loom_optimizer;
loom_status loom_optimizer_create(loom_optimizer **out, const loom_model *m,
                                  const loom_adam_opts *o, loom_error *err);
void loom_optimizer_free(loom_optimizer *opt);
long loom_optimizer_steps(const loom_optimizer *opt); /* updates applied */
/* Clip the model's current gradient to o.clip and apply one Adam update.
 * *gnorm (may be NULL) = the gradient norm before clipping. LOOM_ENAN (and
 * no update) when the gradient is not finite. opt must belong to m. */
loom_status loom_optimizer_step(loom_optimizer *opt, loom_model *m, double *gnorm,
                                loom_error *err);
/* loom_model_gradient + loom_optimizer_step. */
loom_status loom_train_step(loom_model *m, loom_optimizer *opt, double *loss,
                            const uint8_t *imgs, const int32_t *labels, size_t n,
                            loom_error *err);

/* Write a checkpoint (atomically) that `loom sample/eval/info` and
 * loom_model_load read: the parameters, and with opt (may be NULL) its Adam
 * moments, step count and options; the training options otherwise are the
 * defaults of `loom train`. */
loom_status loom_model_save(const loom_model *m, const loom_optimizer *opt, const char *path,
                            loom_error *err);

/* A library trainer (data order, splits, schedules, evaluation, periodic
 * checkpoints and resume: `loom train` as a library) will be declared here as
 * loom_trainer_* functions. */

#ifdef __cplusplus
}
#endif
#endif
