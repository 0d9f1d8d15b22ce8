/* The public training API (include/loom/train.h): the library trainer
 * (src/train/trainer.h) with the data loaded from the run's configuration
 * and the context's BLAS policy around each call. */
#include "context.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the run's training images, prepared as `loom train` prepares them (its
 * notes are the CLI's to print; here they are dropped) */
static loom_status load_data(loom_images *im, const loom_train_opts *o, loom_error *err) {
    loom_status st = loom_images_load_resized(im, o->data, "train", o->resize_h, o->resize_w, err);
    if (st) return st;
    if ((st = loom_images_prepare(im, o->data, o->gray, NULL, 0, err))) loom_images_free(im);
    return st;
}

/* the context's matrix-product back-end (loom_context_set_gemm) on the run's models */
static loom_status ctx_gemm(loom_trainer *t, const loom_context *ctx, loom_error *err) {
    for (size_t i = 0; ctx->gemm >= 0 && i < loom_trainer_nmodels(t); i++) {
        loom_model *m = loom_trainer_model(t, i);
        loom_status st = loom_model_set_gemm(m, ctx->gemm, m->train_prec, m->eval_prec, err);
        if (st) return st;
    }
    return LOOM_OK;
}

loom_status loom_trainer_new(loom_trainer **out, loom_context *ctx, const char *config_json,
                             const char *dir, loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_trainer_new: out is NULL");
    *out = NULL;
    if (!ctx || !config_json || !dir || !dir[0])
        return loom_fail(err, LOOM_EINVAL, "loom_trainer_new: context, config or directory missing");
    cJSON *root = cJSON_Parse(config_json);
    const int has_train = cJSON_GetObjectItemCaseSensitive(root, "train") != NULL;
    cJSON_Delete(root);
    loom_config cfg;
    loom_train_opts o;
    loom_status st = has_train ? loom_config_parse(&cfg, &o, config_json, "config", err)
                               : loom_config_parse(&cfg, NULL, config_json, "config", err);
    if (st) return st;
    if (!has_train) loom_train_opts_default(&o);
    loom_images im;
    if ((st = load_data(&im, &o, err))) {
        loom_train_opts_free(&o);
        return st;
    }
    const loom_train_model_spec spec = {.role = "model", .cfg = cfg};
    loom_trainer *t = NULL;
    int saved = loom_blas_enter(ctx);
    st = loom_trainer_create(&t, &o, &spec, 1, ctx->nthreads, err);
    loom_train_opts_free(&o);
    if (!st) st = loom_trainer_own_data(t, &im, err);
    if (!st) st = loom_trainer_start(t, dir, err);
    if (!st) st = loom_trainer_attach(t, ctx, dir, err);
    if (!st) st = ctx_gemm(t, ctx, err);
    loom_blas_leave(ctx, saved);
    loom_images_free(&im); /* empty when the trainer took it */
    if (st) {
        loom_trainer_free(t);
        return st;
    }
    *out = t;
    return LOOM_OK;
}

loom_status loom_trainer_open(loom_trainer **out, loom_context *ctx, const char *dir,
                              loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_trainer_open: out is NULL");
    *out = NULL;
    if (!ctx || !dir || !dir[0]) return loom_fail(err, LOOM_EINVAL, "loom_trainer_open: context or directory missing");
    char *path = malloc(strlen(dir) + sizeof "/checkpoint.safetensors");
    if (!path) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    sprintf(path, "%s/checkpoint.safetensors", dir);
    loom_trainer *t = NULL;
    loom_images im = {0};
    int saved = loom_blas_enter(ctx);
    loom_status st = loom_trainer_load(&t, path, ctx->nthreads, err);
    free(path);
    if (!st) st = load_data(&im, loom_trainer_opts(t), err);
    if (!st) st = loom_trainer_own_data(t, &im, err);
    if (!st) st = loom_trainer_attach(t, ctx, dir, err);
    if (!st) st = ctx_gemm(t, ctx, err);
    loom_blas_leave(ctx, saved);
    loom_images_free(&im);
    if (st) {
        loom_trainer_free(t);
        return st;
    }
    *out = t;
    return LOOM_OK;
}

typedef struct {
    loom_progress_fn fn;
    void *user;
} progress_view;

static void on_log(void *user, const loom_train_event *ev) {
    const progress_view *v = user;
    if (ev->kind == LOOM_TRAIN_LOG && v->fn)
        v->fn(v->user, ev->step, ev->steps, ev->train_bpd[0], ev->eval ? ev->valid_bpd[0] : NAN);
}

loom_status loom_trainer_train(loom_trainer *t, long steps, loom_progress_fn progress, void *user,
                               loom_error *err) {
    if (!t || !loom_trainer_dir(t))
        return loom_fail(err, LOOM_EINVAL, "loom_trainer_train: not a trainer of loom_trainer_new/open");
    loom_status st = loom_trainer_set_steps(t, steps, err);
    if (st) return st;
    if (steps == loom_trainer_state(t)->step) return LOOM_OK; /* nothing to do */
    progress_view v = {progress, user};
    const loom_train_hooks hooks = {.log = on_log, .user = &v};
    loom_train_stop why;
    int saved = loom_blas_enter(loom_trainer_context(t));
    st = loom_trainer_run(t, loom_trainer_dir(t), &hooks, &why, err);
    loom_blas_leave(loom_trainer_context(t), saved);
    return st;
}

long loom_trainer_steps_done(const loom_trainer *t) { return loom_trainer_state(t)->step; }

loom_model *loom_trainer_get_model(loom_trainer *t) {
    loom_model *m = loom_trainer_model(t, 0);
    m->ctx = loom_trainer_context(t); /* the public model calls scope BLAS with it */
    return m;
}
