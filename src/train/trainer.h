/* The trainer: one run of one or more models, each with its own Adam state,
 * trained on one data set. It owns the data order (a seeded shuffle per
 * epoch), the validation split (a seeded shuffle stratified by class), the
 * gradient clipping, the non-finite step skip, the learning-rate schedule,
 * checkpoints (one file for every model of the run), resume and the stop
 * conditions (target steps, a time limit, a caller's stop request).
 *
 * Written to become public: an opaque handle, create/load/free, step/run,
 * save. It never prints, exits or installs signal handlers: progress goes to
 * a callback of the caller, a stop request is a callback the caller's signal
 * handler answers, and errors come back as loom_status + loom_error.
 *
 * A run directory holds checkpoint.safetensors and config.json (the same
 * configuration as the checkpoint's, rewritten atomically whenever it
 * changes); the caller adds its own files (logs, sample grids).
 *
 * Typical use (cli/cmd_train.c):
 *   loom_trainer_create(&t, &opts, specs, 1, threads, &err);   new run
 *   loom_trainer_set_data(t, &images, &err);                   split, checks
 *   loom_trainer_start(t, "runs/a", &err);                     mkdir -p, step-0 checkpoint
 *   loom_trainer_run(t, "runs/a", &hooks, &why, &err);
 * or, to continue: loom_trainer_load(&t, "runs/a/checkpoint.safetensors", ...),
 * loom_trainer_set_data, loom_trainer_set_steps, loom_trainer_run. */
#ifndef LOOM_TRAINER_H
#define LOOM_TRAINER_H

#include "io/checkpoint.h"

#include <stdbool.h>

/* the most named loss terms a run reports (loom_trainer_terms) */
#define LOOM_MAX_RUN_TERMS (LOOM_MAX_MODELS * (LOOM_MAX_TERMS + 1))
#define LOOM_TERM_NAMELEN 64

typedef struct loom_trainer loom_trainer;

/* one model of a new run: its role names it in the checkpoint when the run
 * has several models (1-15 of [a-z0-9_]; "model" is fine for one model) */
typedef struct loom_train_model_spec {
    const char *role;
    loom_config cfg;
} loom_train_model_spec;

typedef enum loom_train_event_kind {
    LOOM_TRAIN_STEP,   /* after a step without a LOG: progress (loss_bpd, eta) */
    LOOM_TRAIN_LOG,    /* every log_every steps, at evaluations and at the last step */
    LOOM_TRAIN_SKIP,   /* a non-finite loss or gradient: the update was skipped (msg) */
    LOOM_TRAIN_SAMPLE, /* sample_every steps (not at the last): a sample grid is due; the
                        * models hold their inference weights (the moving average with ema) */
    LOOM_TRAIN_CHECKPOINT, /* a checkpoint was written (path; best: best.safetensors too) */
} loom_train_event_kind;

typedef struct loom_train_event {
    loom_train_event_kind kind;
    long step, steps;       /* steps taken, and the run's target */
    size_t nmodels;
    /* per model: mean training loss (bits/dim) over the steps since the last
     * LOG, NaN when every one was skipped; validation bits/dim, NaN when this
     * LOG has no evaluation */
    double train_bpd[LOOM_MAX_MODELS], valid_bpd[LOOM_MAX_MODELS];
    bool eval;              /* LOG: validation ran (valid_bpd set when there is a split) */
    bool valid_subset;      /* the evaluation used eval_limit images, not all */
    bool last;              /* the run's last step (the target or the time limit) */
    double loss_bpd;        /* STEP: this step's loss of model 0 (bits/dim) */
    double images_per_s;    /* over the steps since the last LOG */
    double wall_s, eta_s;   /* since run() began; estimated to the target */
    const char *msg;        /* SKIP: "step K: non-finite gradient (norm); update skipped" */
    /* LOG: the learning rate of the last step, and each model's mean gradient
     * L2 norm (before clipping) over the steps since the last LOG (NaN: none) */
    double lr, grad_norm[LOOM_MAX_MODELS];
    const char *path;       /* CHECKPOINT: the run directory written to */
    bool best;              /* LOG: this validation is the best so far; CHECKPOINT: best.safetensors written */
    /* LOG: the run's named loss terms (loom_trainer_terms: nterms, names),
     * each the mean over the steps since the last LOG (NaN: none) */
    size_t nterms;
    const char *const *term_names;
    double terms[LOOM_MAX_RUN_TERMS];
} loom_train_event;

typedef enum loom_train_stop {
    LOOM_TRAIN_DONE,       /* the target number of steps is reached */
    LOOM_TRAIN_STOPPED,    /* should_stop asked (e.g. SIGINT) */
    LOOM_TRAIN_OUT_OF_TIME /* time_limit seconds passed; the target is unchanged */
} loom_train_stop;

typedef struct loom_train_hooks {
    void (*log)(void *user, const loom_train_event *ev); /* may be NULL */
    int (*should_stop)(void *user);                      /* may be NULL; polled every step */
    void *user;
    size_t log_every;  /* LOG every N steps (0: 50) */
    double time_limit; /* seconds of training, 0 = none */
} loom_train_hooks;

/* A custom objective for the models of a run (e.g. a generator and a
 * discriminator): fill every models[i]->g with the gradient of its loss on the
 * batch and losses[i] with that loss in nats per pixel (a NaN is skipped like
 * a non-finite gradient). imgs (batch, example bytes), labels (batch) or NULL
 * when the data has none; noise_seed for models with a latent. Without one,
 * each model is trained on its own NLL of the same batch. */
typedef loom_status (*loom_train_grad_fn)(void *user, loom_model *const *models, size_t n,
                                          const uint8_t *imgs, const int32_t *labels,
                                          size_t batch, uint64_t noise_seed, double *losses,
                                          loom_error *err);

/* A custom objective in stages, for models trained in turn (a
 * discriminator's update, then the generator's against the updated
 * discriminator: src/train/gan.c). Each step calls fn for stage 0 ..
 * nstages - 1 on the same batch; at each stage fn sets *update (bit j: model
 * j), fills those models' gradients ->g and losses[j] (per image, in nats),
 * and the trainer clips and updates exactly those models before the next
 * stage. A non-finite loss or gradient skips that stage's update and the
 * stages after it. step: the steps taken before this one. */
typedef loom_status (*loom_train_stage_fn)(void *user, size_t stage, loom_model *const *models, size_t n,
                                           const uint8_t *imgs, size_t batch, uint64_t noise_seed,
                                           long step, double *losses, unsigned *update,
                                           loom_error *err);

/* A new run in memory: n models (1..LOOM_MAX_MODELS) created on nthreads and
 * initialised from o->seed (model 0 exactly as a single-model run), Adam
 * moments zero, step 0. o is copied (class names too). */
loom_status loom_trainer_create(loom_trainer **out, const loom_train_opts *o,
                                const loom_train_model_spec *specs, size_t n, int nthreads,
                                loom_error *err);
/* A run from its checkpoint (models, Adam state, data position, options). */
loom_status loom_trainer_load(loom_trainer **out, const char *checkpoint, int nthreads,
                              loom_error *err);
void loom_trainer_free(loom_trainer *t);

/* The training data (borrowed: it must outlive the trainer's use): the
 * validation split is taken out here (a new run with valid ==
 * LOOM_VALID_AUTO gets 10% of the images, at most 5000), and the images,
 * labels and data position are checked against the models. A new run also
 * records the data's class names. */
loom_status loom_trainer_set_data(loom_trainer *t, const loom_images *data, loom_error *err);
/* loom_trainer_set_data with data moved into the trainer (freed with it;
 * *data is left empty), for callers that do not keep the images. */
loom_status loom_trainer_own_data(loom_trainer *t, loom_images *data, loom_error *err);
/* The public API's context and run directory, kept with the trainer. */
loom_status loom_trainer_attach(loom_trainer *t, const struct loom_context *ctx, const char *dir,
                                loom_error *err);
const struct loom_context *loom_trainer_context(const loom_trainer *t);
const char *loom_trainer_dir(const loom_trainer *t); /* NULL when not attached */
/* The run's target; below the steps already taken it is an error. */
loom_status loom_trainer_set_steps(loom_trainer *t, long steps, loom_error *err);
/* Data parallel: this process is rank c->rank of c->size (src/core/comm.h;
 * borrowed, it must outlive the trainer's use; NULL or one rank: a single
 * process). Every rank runs the same trainer on the same data and options:
 * each computes its micro-shards of every batch (loom_model_grad_ranks), so
 * all ranks hold the same gradient, loss, clipping norm, skip decision and
 * weights, the bits of one process; evaluations are split by chunks; a stop
 * request or the time limit on any rank stops all of them at the same step;
 * only rank 0 writes files (start and save do nothing on the others). A
 * batch needs at least as many micro-shards as there are ranks (LOOM_EINVAL
 * naming --batch), and every rank must hold the same run (options, weights,
 * data position, training data: compared once here, collectively; LOOM_EINVAL
 * otherwise). Call it after set_data. Not with a custom objective (yet). */
loom_status loom_trainer_set_comm(loom_trainer *t, const loom_comm *c, loom_error *err);
/* A custom objective (NULL: each model's own NLL). */
void loom_trainer_set_grad(loom_trainer *t, loom_train_grad_fn fn, void *user);
/* A staged objective (loom_train_stage_fn; NULL: none), which replaces set_grad's. */
void loom_trainer_set_stages(loom_trainer *t, size_t nstages, loom_train_stage_fn fn, void *user);

/* New run: creates dir (and its parents), refuses a dir that already holds a
 * checkpoint, and writes the step-0 checkpoint and config.json, so the run
 * can be resumed whenever the process dies from here on. */
loom_status loom_trainer_start(loom_trainer *t, const char *dir, loom_error *err);
/* One optimiser step on the next batch: gradients, clipping, the skip of a
 * non-finite step (*skipped; more than 10 in a run is LOOM_ENAN), Adam. */
loom_status loom_trainer_step(loom_trainer *t, bool *skipped, char *skip_msg, size_t cap,
                              loom_error *err);
/* Steps until the target, a stop request or the time limit, with logs,
 * evaluations and checkpoints in dir (checkpoint_every and at the end; a
 * validation better than every earlier one also writes dir/best.safetensors);
 * *why says which. A checkpoint that cannot be written stops the run with
 * "...; checkpoint of step N not written, the previous one is kept". */
loom_status loom_trainer_run(loom_trainer *t, const char *dir, const loom_train_hooks *hooks,
                             loom_train_stop *why, loom_error *err);
/* Inference weights in the models (on) or the trained ones back (off): with
 * o->ema > 0 it swaps each model's weights with their moving average; a no-op
 * without. Training and saving need it off. */
void loom_trainer_use_average(loom_trainer *t, bool on);
/* dir/checkpoint.safetensors, then dir/config.json when its text changed. */
loom_status loom_trainer_save(loom_trainer *t, const char *dir, loom_error *err);
/* Mean NLL of model i on the validation split in bits/dim, over the first
 * limit images (0: all), with the inference weights (the moving average when
 * o->ema > 0). */
loom_status loom_trainer_evaluate(loom_trainer *t, size_t i, size_t limit, double *bpd,
                                  loom_error *err);

const loom_train_opts *loom_trainer_opts(const loom_trainer *t);
const loom_train_state *loom_trainer_state(const loom_trainer *t);
size_t loom_trainer_nmodels(const loom_trainer *t);
loom_model *loom_trainer_model(const loom_trainer *t, size_t i);
const char *loom_trainer_role(const loom_trainer *t, size_t i);
size_t loom_trainer_ntrain(const loom_trainer *t); /* after set_data */
size_t loom_trainer_nvalid(const loom_trainer *t); /* after set_data */
const loom_images *loom_trainer_valid(const loom_trainer *t); /* the validation images */
/* The named terms of the run's training loss that every LOG reports
 * (ev->terms), in this order, [a-z0-9_] names:
 *  - trained on their own NLL (no custom objective): each model's loss
 *    terms (loom_model_loss_terms: draw, rae --variational: kl and recon),
 *    the batch mean in nats per image: "kl_nats_per_image", or with several
 *    models "<role>_kl_nats_per_image";
 *  - with several models: each model's loss as its objective returns it (nats
 *    per dimension; e.g. a GAN's generator and discriminator losses):
 *    "loss_<role>" (roles g and d: loss_g, loss_d).
 * Returns the count; names (when non-NULL) points at the trainer's copy,
 * valid until the trainer is freed or its objective changes. */
size_t loom_trainer_terms(loom_trainer *t, const char *const **names);

/* ------------------------------------------------ splits (shared with eval) */

/* Bytes of one example of im (today h * w; with channels and frames it
 * becomes t * c * h * w). Every copy of examples goes through it. */
size_t loom_images_example_bytes(const loom_images *im);
/* order (n): a permutation of im's images from seed; with labels it is
 * stratified: every prefix holds each class in proportion (within one). */
loom_status loom_images_order(size_t *order, const loom_images *im, uint64_t seed,
                              loom_error *err);
/* The run's validation split of data: *valid_idx (nvalid) and *train_idx
 * (ntrain, in file order), malloc'ed. o->valid must be resolved (not
 * LOOM_VALID_AUTO). */
loom_status loom_train_split(size_t **train_idx, size_t *ntrain, size_t **valid_idx,
                             size_t *nvalid, const loom_images *data, const loom_train_opts *o,
                             loom_error *err);
/* dst = images idx[0..n) of src (dst owns its memory) */
loom_status loom_images_gather(loom_images *dst, const loom_images *src, const size_t *idx,
                               size_t n, loom_error *err);
/* LOOM_EINVAL naming both lists when im has class names that are not the
 * run's (o->class_names); fine when either has none. what names im. */
loom_status loom_classes_match(const loom_train_opts *o, const loom_images *im, const char *what,
                               loom_error *err);
/* 10% of n, at most 5000 (and at least 1 when n >= 2) */
size_t loom_valid_default(size_t n);

#endif
