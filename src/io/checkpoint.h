/* Run configuration (JSON) and checkpoints (safetensors).
 *
 * A run holds one model or several (e.g. a generator and a discriminator),
 * each with its own Adam moments. A checkpoint holds every parameter under
 * its tensor name, the Adam moments under "optim.m.<name>" / "optim.v.<name>";
 * with several models every name is prefixed by the model's role
 * ("gen.in.weight", "optim.m.gen.in.weight"); a single-model run keeps the
 * plain names, so checkpoints written before multi-model runs load unchanged.
 * __metadata__:
 *   format    "loom-checkpoint-1"
 *   config    the run configuration JSON (model(s) + training options)
 *   step      optimiser steps taken
 *   rng       the training RNG state at the start of the current epoch (4 hex words)
 *   epoch, index   data position: epoch number, next batch offset in its permutation
 *   adam_t    Adam's step counter ("adam_t.<role>" per model with several models)
 * docs/checkpoint-format.md describes both layouts. */
#ifndef LOOM_CHECKPOINT_H
#define LOOM_CHECKPOINT_H

#include "models/model.h"

#include <stdbool.h>

/* how the validation images are chosen from the training split */
typedef enum loom_valid_split {
    LOOM_SPLIT_SHUFFLE = 0, /* a seeded shuffle, stratified by class (runs from now on) */
    LOOM_SPLIT_TAIL,        /* the last `valid` images (runs written before the shuffle) */
} loom_valid_split;

#define LOOM_MAX_MODELS 8 /* models of one run */

/* what an autoencoder's discriminator judges (loom_train_opts.adversarial_on) */
enum { LOOM_ADV_RECON = 1u, LOOM_ADV_SAMPLES = 2u };
/* "recon", "samples", "both" of those bits ("?" otherwise), and back (0: none of them) */
const char *loom_adv_on_name(unsigned on);
unsigned loom_adv_on_parse(const char *name);

/* o->valid before the data is known: 10% of the images, at most 5000 */
#define LOOM_VALID_AUTO SIZE_MAX

typedef struct loom_train_opts {
    char data[1024];   /* data spec: "fashion-mnist" or a directory (absolute) */
    bool gray;         /* colour data converted to gray (loom_images_to_gray) on load */
    size_t batch;
    double lr, beta1, beta2, eps;
    double clip;       /* max gradient L2 norm; 0 = off */
    long lr_halflife;  /* steps per halving of lr; 0 = constant */
    long steps;        /* total optimiser steps of the run */
    uint64_t seed;
    size_t valid;      /* images of the training split held out for validation */
    long eval_every, checkpoint_every, sample_every;
    size_t eval_limit; /* images used by the periodic validation (the final one uses all) */
    loom_valid_split valid_split;
    double ema;        /* decay of the weights' exponential moving average, 0 = off */
    size_t resize_h, resize_w; /* images centre-cropped and resampled to this on load, 0 = as they are */
    int precision;     /* loom_precision of training's matrix products (src/core/gemm.h);
                        * config key "precision", written when not fp32 (absent: fp32) */
    /* class names of the data (nclass_names of them, malloc'ed; NULL when
     * the data has none): loom_train_opts_free releases them */
    char **class_names;
    size_t nclass_names;
    /* runs of several models: model j's own learning rate when model_lr[j] >
     * 0 (config key "model_lr", an array, written when one is set), on the
     * run's schedule; d_steps: discriminator updates per generator update of
     * an adversarial run (key "d_steps", written when > 0; 0 means 1) */
    double model_lr[LOOM_MAX_MODELS];
    long d_steps;
    /* an autoencoder trained with a discriminator on its reconstructions
     * (src/train/gan.c, loom_adv): the adversarial loss's weight against the
     * model's own, both in nats per image (key "adversarial", written when
     * > 0; 0: none); adversarial_on: what its discriminator judges, bits of
     * LOOM_ADV_RECON (the reconstructions) and LOOM_ADV_SAMPLES (samples of
     * the prior) (key "adversarial_on": "recon", "samples" or "both",
     * written with "adversarial"; a config without it means "recon") */
    double adversarial;
    unsigned adversarial_on;
} loom_train_opts;

typedef struct loom_train_state {
    long step;
    loom_rng rng;      /* state before the current epoch's shuffle */
    size_t epoch, index;
    long adam_t;       /* the first model's Adam step counter */
    long best_step;    /* step of the best validation so far (best.safetensors), 0 = none */
    double best_valid; /* its validation bits/dim */
} loom_train_state;

#define LOOM_ROLELEN 16

/* One model of a run: its role (lowercase letters, digits and '_'; the
 * tensor-name prefix when the run has several models), the model, and its
 * optimiser state. */
typedef struct loom_run_model {
    char role[LOOM_ROLELEN];
    loom_model *m;
    float *adam_m, *adam_v; /* (m->nfloats) each, or NULL */
    long adam_t;
    float *ema;             /* (m->nfloats) moving average of the weights, or NULL */
} loom_run_model;

void loom_train_opts_default(loom_train_opts *o);
/* frees the class names (and sets them to NULL) */
void loom_train_opts_free(loom_train_opts *o);
/* deep copy of src's class names into dst (dst's other fields untouched) */
loom_status loom_train_opts_set_classes(loom_train_opts *dst, char *const *names, size_t n,
                                        loom_error *err);
/* JSON text of {"model": {...}, "train": {...}}; caller frees */
char *loom_config_json(const loom_config *cfg, const loom_train_opts *o);
/* the same for a run of n models: one model as above; several as
 * {"models": {"<role>": {...}, ...}, "train": {...}} */
char *loom_run_config_json(const loom_run_model *models, size_t n, const loom_train_opts *o);
/* Parse and validate; o may be NULL to ignore the training part. `what` names
 * the source in error messages. A config of several models is an error here. */
loom_status loom_config_parse(loom_config *cfg, loom_train_opts *o, const char *json,
                              const char *what, loom_error *err);
/* cfgs and roles have LOOM_MAX_MODELS entries; *n gets the model count.
 * A single-model config gets the role "model". */
loom_status loom_run_config_parse(loom_config *cfgs, char (*roles)[LOOM_ROLELEN], size_t *n,
                                  loom_train_opts *o, const char *json, const char *what,
                                  loom_error *err);

/* Writes atomically (see loom_safetensors_write). adam_m/adam_v may be NULL. */
loom_status loom_checkpoint_save(const char *path, const loom_model *m, const float *adam_m,
                                 const float *adam_v, const loom_train_state *st,
                                 const loom_train_opts *o, loom_error *err);
/* Loads a checkpoint: creates the model (nthreads), fills the parameters and,
 * when adam_m/adam_v are non-NULL, allocates and fills the Adam moments
 * (zeros when the file has none). o and st may be NULL. Every tensor's shape
 * is checked against the config, and unexpected tensors are rejected. A
 * checkpoint of several models is refused (loom_run_load reads it). */
loom_status loom_checkpoint_load(const char *path, int nthreads, loom_model **m, float **adam_m,
                                 float **adam_v, loom_train_state *st, loom_train_opts *o,
                                 loom_error *err);

/* The same for a run of n models (st->adam_t is ignored: each model's own
 * adam_t is written). */
loom_status loom_run_save(const char *path, const loom_run_model *models, size_t n,
                          const loom_train_state *st, const loom_train_opts *o, loom_error *err);
/* models has LOOM_MAX_MODELS entries; *n gets the count. With optim, every
 * model gets its Adam moments (zeros when the file has none) and, when the
 * file has "ema." tensors, its moving average in ->ema; without optim (for
 * inference) the moving average, when present, is loaded as the weights. On failure
 * nothing is left allocated. st and o may be NULL. */
loom_status loom_run_load(const char *path, int nthreads, bool optim, loom_run_model *models,
                          size_t *n, loom_train_state *st, loom_train_opts *o, loom_error *err);
/* frees the models and moments of models[0..n) */
void loom_run_models_free(loom_run_model *models, size_t n);

#endif
