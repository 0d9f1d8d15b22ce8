/* Run configuration (JSON) and checkpoints (safetensors).
 *
 * A checkpoint holds every parameter under its model name, the Adam moments
 * under "optim.m.<name>" / "optim.v.<name>", and in __metadata__:
 *   format    "loom-checkpoint-1"
 *   config    the run configuration JSON (model + training options)
 *   step      optimiser steps taken
 *   rng       the training RNG state at the start of the current epoch (4 hex words)
 *   epoch, index   data position: epoch number, next batch offset in its permutation
 *   adam_t    Adam's step counter */
#ifndef LOOM_CHECKPOINT_H
#define LOOM_CHECKPOINT_H

#include "models/model.h"

typedef struct loom_train_opts {
    char data[1024];   /* data spec: "fashion-mnist" or a directory */
    bool gray;         /* colour data converted to gray (loom_images_to_gray) on load */
    size_t batch;
    double lr, beta1, beta2, eps;
    double clip;       /* max gradient L2 norm; 0 = off */
    long lr_halflife;  /* steps per halving of lr; 0 = constant */
    long steps;        /* total optimiser steps of the run */
    uint64_t seed;
    size_t valid;      /* last `valid` training images form the validation set */
    long eval_every, checkpoint_every, sample_every;
    size_t eval_limit; /* images used by the periodic validation (the final one uses all) */
} loom_train_opts;

typedef struct loom_train_state {
    long step;
    loom_rng rng;      /* state before the current epoch's shuffle */
    size_t epoch, index;
    long adam_t;
} loom_train_state;

void loom_train_opts_default(loom_train_opts *o);
/* JSON text of {"model": {...}, "train": {...}}; caller frees */
char *loom_config_json(const loom_config *cfg, const loom_train_opts *o);
/* Parse and validate; o may be NULL to ignore the training part. `what` names
 * the source in error messages. */
loom_status loom_config_parse(loom_config *cfg, loom_train_opts *o, const char *json,
                              const char *what, loom_error *err);

/* Writes atomically (see loom_safetensors_write). adam_m/adam_v may be NULL. */
loom_status loom_checkpoint_save(const char *path, const loom_model *m, const float *adam_m,
                                 const float *adam_v, const loom_train_state *st,
                                 const loom_train_opts *o, loom_error *err);
/* Loads a checkpoint: creates the model (nthreads), fills the parameters and,
 * when adam_m/adam_v are non-NULL, allocates and fills the Adam moments
 * (zeros when the file has none). o and st may be NULL. Every tensor's shape
 * is checked against the config, and unexpected tensors are rejected. */
loom_status loom_checkpoint_load(const char *path, int nthreads, loom_model **m, float **adam_m,
                                 float **adam_v, loom_train_state *st, loom_train_opts *o,
                                 loom_error *err);

#endif
