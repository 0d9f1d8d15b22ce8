/* loom public API: a training run as `loom train` does it (data order,
 * seeded stratified validation split, clipping, the non-finite step skip,
 * checkpoints and config.json in a run directory, resume), from a C program.
 * Included by <loom.h>.
 *
 * A run directory made here is a run directory of `loom train`: `loom
 * train --resume`, `loom eval`, `loom sample` and loom_trainer_open all read
 * it, and training it to N steps in one call or in several gives the same
 * checkpoint, on any thread count. */
#ifndef LOOM_TRAIN_API_H
#define LOOM_TRAIN_API_H

#ifndef LOOM_H
#error "include <loom.h>, not <loom/train.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct loom_trainer loom_trainer;

/* A new run in dir (created with its parents; refused when it already holds
 * a run), with its step-0 checkpoint. config_json is what config.json holds:
 * {"model": {...}, "train": {...}}; "train" is optional (without it, `loom
 * train`'s defaults: Fashion-MNIST, batch 32, Adam lr 1e-3, ...) and, when
 * given, complete as config.json writes it; its "data" names the training
 * data as --data does. The model's height, width and channels must be the
 * data's. */
loom_status loom_trainer_new(loom_trainer **out, loom_context *ctx, const char *config_json,
                             const char *dir, loom_error *err);
/* An existing run directory, to train further. */
loom_status loom_trainer_open(loom_trainer **out, loom_context *ctx, const char *dir,
                              loom_error *err);
void loom_trainer_free(loom_trainer *t);

/* Called at every logged step (every 50 steps, and the last): the step,
 * the target, the mean training bits/dim since the last call and the
 * validation bits/dim when this step evaluated (NaN otherwise). */
typedef void (*loom_progress_fn)(void *user, long step, long steps, double train_bpd,
                                 double valid_bpd);
/* Train until `steps` steps in all (not below the steps taken), checkpointing
 * into the run directory as `loom train` does; progress may be NULL. */
loom_status loom_trainer_train(loom_trainer *t, long steps, loom_progress_fn progress, void *user,
                               loom_error *err);
long loom_trainer_steps_done(const loom_trainer *t);
/* The run's model (borrowed, valid until loom_trainer_free): evaluate and
 * sample it with loom_model_eval_nll, loom_model_generate, ... */
loom_model *loom_trainer_get_model(loom_trainer *t);

#ifdef __cplusplus
}
#endif
#endif
