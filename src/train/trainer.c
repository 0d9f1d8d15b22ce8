/* The trainer (trainer.h): data order, steps, checkpoints, resume. */
#include "trainer.h"

#include "gemm.h"

#include "io/atomic.h"
#include "optim/optim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SKIPPED 10 /* non-finite steps a run survives */

struct loom_trainer {
    loom_train_opts o;
    size_t n;
    loom_run_model models[LOOM_MAX_MODELS];
    loom_adam adam[LOOM_MAX_MODELS];
    loom_train_state ts;
    bool resumed;
    const loom_images *data; /* borrowed */
    size_t *train_idx, ntrain; /* (ntrain) indices into data */
    loom_images valid;         /* the validation images (owned) */
    size_t *perm;              /* (ntrain) this epoch's order */
    loom_rng shuf;             /* the shuffling stream after this epoch's shuffle */
    uint8_t *batch;            /* (batch, example bytes) */
    int32_t *blabels;          /* (batch) */
    loom_train_grad_fn grad;
    void *grad_user;
    long nan_step;             /* test hook LOOM_FAULT_NAN_STEP, 0 = off */
    size_t skipped;
    char *config_written;      /* the text of the last config.json written */
    double last_loss[LOOM_MAX_MODELS]; /* nats/pixel of the last step */
    loom_images owned;         /* the data, when the trainer owns it (loom_trainer_own_data) */
    const struct loom_context *ctx; /* the public API's context, or NULL */
    char *dir;                 /* the run directory, for the public API (loom_trainer_attach) */
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Test hook (docs/robustness.md), only in test builds (-DLOOM_TEST_HOOKS,
 * build/test/loom): LOOM_FAULT_NAN_STEP=K poisons the gradient of step K
 * (1-based) with a NaN, to exercise the non-finite-step guard. */
static long fault_nan_step(void) {
#ifdef LOOM_TEST_HOOKS
    const char *v = getenv("LOOM_FAULT_NAN_STEP");
    return v && *v ? strtol(v, NULL, 10) : 0;
#else
    return 0;
#endif
}

static loom_trainer *trainer_alloc(void) {
    loom_trainer *t = calloc(1, sizeof *t);
    if (t) t->nan_step = fault_nan_step();
    return t;
}

static void adam_setup(loom_trainer *t) {
    for (size_t j = 0; j < t->n; j++)
        t->adam[j] = (loom_adam){.lr = (float)t->o.lr, .beta1 = (float)t->o.beta1,
                                 .beta2 = (float)t->o.beta2, .eps = (float)t->o.eps,
                                 .m = t->models[j].adam_m, .v = t->models[j].adam_v,
                                 .n = t->models[j].m->nfloats, .t = t->models[j].adam_t};
}

void loom_trainer_free(loom_trainer *t) {
    if (!t) return;
    loom_run_models_free(t->models, t->n);
    loom_train_opts_free(&t->o);
    loom_images_free(&t->valid);
    loom_images_free(&t->owned);
    free(t->dir);
    free(t->train_idx), free(t->perm), free(t->batch), free(t->blabels), free(t->config_written);
    free(t);
}

/* training's precision (o.precision) on every model of the run: bf16 on the
 * back-end that has it; evaluation stays fp32 */
static loom_status apply_precision(loom_trainer *t, loom_error *err) {
    for (size_t j = 0; j < t->n; j++) {
        loom_model *m = t->models[j].m;
        const int b = t->o.precision == LOOM_PREC_BF16 ? LOOM_GEMM_ONEDNN : m->gemm;
        loom_error e2;
        if (loom_model_set_gemm(m, b, t->o.precision, LOOM_PREC_FP32, &e2))
            return loom_fail(err, LOOM_EINVAL, "training precision %s: %s",
                             loom_precision_name((loom_precision)t->o.precision), e2.msg);
    }
    return LOOM_OK;
}

loom_status loom_trainer_create(loom_trainer **out, const loom_train_opts *o,
                                const loom_train_model_spec *specs, size_t n, int nthreads,
                                loom_error *err) {
    *out = NULL;
    if (n == 0 || n > LOOM_MAX_MODELS)
        return loom_fail(err, LOOM_EINVAL, "a run has 1 to %d models, not %zu", LOOM_MAX_MODELS, n);
    loom_trainer *t = trainer_alloc();
    if (!t) return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
    loom_status st = LOOM_OK;
    t->o = *o;
    t->o.class_names = NULL, t->o.nclass_names = 0;
    if ((st = loom_train_opts_set_classes(&t->o, o->class_names, o->nclass_names, err))) goto fail;
    for (size_t j = 0; j < n; j++) {
        const char *role = specs[j].role ? specs[j].role : "model";
        size_t rl = strlen(role);
        if (rl == 0 || rl >= LOOM_ROLELEN || strspn(role, "abcdefghijklmnopqrstuvwxyz0123456789_") != rl) {
            st = loom_fail(err, LOOM_EINVAL, "model role \"%s\": 1-15 of [a-z0-9_]", role);
            goto fail;
        }
        for (size_t k = 0; k < j; k++)
            if (strcmp(t->models[k].role, role) == 0) {
                st = loom_fail(err, LOOM_EINVAL, "model role \"%s\" given twice", role);
                goto fail;
            }
        snprintf(t->models[j].role, LOOM_ROLELEN, "%s", role);
        if ((st = loom_model_create(&t->models[j].m, &specs[j].cfg, nthreads, err))) goto fail;
        t->n = j + 1;
        loom_model *m = t->models[j].m;
        /* model 0 from the seed itself, as single-model runs always were */
        loom_rng init;
        loom_rng_seed(&init, o->seed ^ ((uint64_t)j * 0xd1b54a32d192ed03ULL));
        loom_model_init(m, &init);
        t->models[j].adam_m = calloc(m->nfloats, sizeof(float));
        t->models[j].adam_v = calloc(m->nfloats, sizeof(float));
        if (!t->models[j].adam_m || !t->models[j].adam_v) {
            st = loom_fail(err, LOOM_ENOMEM, "trainer: out of memory for the Adam moments");
            goto fail;
        }
    }
    if ((st = apply_precision(t, err))) goto fail;
    loom_rng_seed(&t->ts.rng, o->seed ^ 0x5851f42d4c957f2dULL); /* shuffling stream */
    adam_setup(t);
    *out = t;
    return LOOM_OK;
fail:
    loom_trainer_free(t);
    return st;
}

loom_status loom_trainer_load(loom_trainer **out, const char *checkpoint, int nthreads,
                              loom_error *err) {
    *out = NULL;
    loom_trainer *t = trainer_alloc();
    if (!t) return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
    loom_status st = loom_run_load(checkpoint, nthreads, true, t->models, &t->n, &t->ts, &t->o, err);
    if (st) {
        free(t);
        return st;
    }
    t->resumed = true;
    if ((st = apply_precision(t, err))) {
        loom_error e2 = *err;
        loom_trainer_free(t);
        return loom_fail(err, LOOM_EINVAL, "%s: %s", checkpoint, e2.msg);
    }
    adam_setup(t);
    *out = t;
    return LOOM_OK;
}

void loom_trainer_set_grad(loom_trainer *t, loom_train_grad_fn fn, void *user) {
    t->grad = fn, t->grad_user = user;
}

const loom_train_opts *loom_trainer_opts(const loom_trainer *t) { return &t->o; }
const loom_train_state *loom_trainer_state(const loom_trainer *t) { return &t->ts; }
size_t loom_trainer_nmodels(const loom_trainer *t) { return t->n; }
loom_model *loom_trainer_model(const loom_trainer *t, size_t i) { return i < t->n ? t->models[i].m : NULL; }
const char *loom_trainer_role(const loom_trainer *t, size_t i) { return i < t->n ? t->models[i].role : NULL; }
size_t loom_trainer_ntrain(const loom_trainer *t) { return t->ntrain; }
size_t loom_trainer_nvalid(const loom_trainer *t) { return t->valid.n; }
const loom_images *loom_trainer_valid(const loom_trainer *t) { return &t->valid; }

/* Fisher-Yates with the training RNG */
static void shuffle(size_t *perm, size_t n, loom_rng *r) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = loom_rng_below(r, i), tmp = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = tmp;
    }
}

loom_status loom_trainer_set_data(loom_trainer *t, const loom_images *data, loom_error *err) {
    loom_train_opts *o = &t->o;
    if (o->valid == LOOM_VALID_AUTO) o->valid = loom_valid_default(data->n);
    if (!t->resumed) {
        if (data->class_names && !o->class_names) {
            loom_status st = loom_train_opts_set_classes(o, data->class_names, (size_t)data->nclasses, err);
            if (st) return st;
        }
    }
    loom_status cst = loom_classes_match(o, data, o->data, err);
    if (cst) return cst;
    for (size_t j = 0; j < t->n; j++) {
        const loom_config *c = &t->models[j].m->cfg;
        if (data->h != c->height || data->w != c->width)
            return loom_fail(err, LOOM_EINVAL, "%s: images are %zux%zu but the run's model is %zux%zu",
                             o->data, data->h, data->w, c->height, c->width);
    }
    free(t->train_idx), t->train_idx = NULL;
    loom_images_free(&t->valid);
    size_t *vidx = NULL, nv = 0;
    loom_status st = loom_train_split(&t->train_idx, &t->ntrain, &vidx, &nv, data, o, err);
    if (st) return st;
    if (nv) st = loom_images_gather(&t->valid, data, vidx, nv, err);
    free(vidx);
    if (st) return st;
    if (o->batch > t->ntrain)
        return loom_fail(err, LOOM_EINVAL, "--batch %zu is larger than the %zu training images",
                         o->batch, t->ntrain);
    if (t->resumed && t->ts.index > t->ntrain)
        return loom_fail(err, LOOM_EINVAL, "checkpoint: data position %zu is beyond the %zu training images of %s",
                         t->ts.index, t->ntrain, o->data);
    for (size_t j = 0; j < t->n; j++) {
        const loom_config *c = &t->models[j].m->cfg;
        if (c->nclasses && (!data->labels || data->nclasses > c->nclasses))
            return loom_fail(err, LOOM_EINVAL, "%s: labels do not fit the model's %d classes", o->data,
                             c->nclasses);
    }
    const size_t eb = loom_images_example_bytes(data);
    free(t->perm), free(t->batch), free(t->blabels);
    t->perm = malloc(t->ntrain * sizeof *t->perm);
    t->batch = malloc(o->batch * eb);
    t->blabels = malloc(o->batch * sizeof *t->blabels);
    if (!t->perm || !t->batch || !t->blabels)
        return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory for a batch of %zu", o->batch);
    t->data = data;
    t->shuf = t->ts.rng;
    shuffle(t->perm, t->ntrain, &t->shuf);
    return LOOM_OK;
}

loom_status loom_trainer_set_steps(loom_trainer *t, long steps, loom_error *err) {
    if (steps < t->ts.step)
        return loom_fail(err, LOOM_EINVAL, "--steps %ld is below the run's current step %ld (its target was %ld)",
                         steps, t->ts.step, t->o.steps);
    t->o.steps = steps;
    return LOOM_OK;
}

static loom_status mkdir_p(const char *dir, loom_error *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return loom_fail(err, LOOM_EINVAL, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char keep = *p;
        *p = 0;
        struct stat sb;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return loom_fail(err, LOOM_EINVAL, "%s: not a directory", path);
        *p = keep;
        if (!keep) break;
        while (p[1] == '/') p++;
        if (!p[1]) break;
    }
    return LOOM_OK;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) memcpy(p, dir, a), p[a] = '/', memcpy(p + a + 1, name, b + 1);
    return p;
}

loom_status loom_trainer_start(loom_trainer *t, const char *dir, loom_error *err) {
    char *ck = join(dir, "checkpoint.safetensors");
    if (!ck) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    struct stat sb;
    bool exists = stat(ck, &sb) == 0;
    free(ck);
    if (exists)
        return loom_fail(err, LOOM_EINVAL, "%s: already holds a run; use --resume %s or another --out", dir, dir);
    loom_status st = mkdir_p(dir, err);
    if (st) return st;
    /* a step-0 checkpoint first: from here on the run can always be resumed,
     * whenever the process is killed */
    return loom_trainer_save(t, dir, err);
}

/* config.json: write atomically, like the checkpoint */
static loom_status write_text(const char *path, const char *text, loom_error *err) {
    char *tmp = loom_tmp_path(path);
    if (!tmp) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    FILE *f = fopen(tmp, "w");
    loom_status st = LOOM_OK;
    if (!f) {
        st = loom_fail(err, loom_open_status(errno), "%s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0;
    ok = ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    return st ? st : loom_fsync_dir(path, err);
}

loom_status loom_trainer_save(loom_trainer *t, const char *dir, loom_error *err) {
    for (size_t j = 0; j < t->n; j++) t->models[j].adam_t = t->adam[j].t;
    t->ts.adam_t = t->adam[0].t;
    char *ck = join(dir, "checkpoint.safetensors"), *cj = join(dir, "config.json");
    char *text = loom_run_config_json(t->models, t->n, &t->o);
    loom_status st = LOOM_OK;
    if (!ck || !cj || !text) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    if (!st) st = loom_run_save(ck, t->models, t->n, &t->ts, &t->o, err);
    if (!st && (!t->config_written || strcmp(t->config_written, text) != 0)) {
        st = write_text(cj, text, err);
        if (!st) free(t->config_written), t->config_written = text, text = NULL;
    }
    free(ck), free(cj), free(text);
    return st;
}

loom_status loom_trainer_evaluate(loom_trainer *t, size_t i, size_t limit, double *bpd,
                                  loom_error *err) {
    *bpd = NAN;
    if (i >= t->n) return loom_fail(err, LOOM_EINVAL, "trainer: no model %zu", i);
    if (!t->valid.n) return LOOM_OK;
    loom_model *m = t->models[i].m;
    const loom_images *set = &t->valid;
    size_t n = limit && limit < set->n ? limit : set->n;
    double *nll = malloc(n * sizeof *nll), s = 0.0;
    if (!nll) return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
    /* in chunks of the training batch so the workspaces do not grow past training's */
    loom_status st = loom_model_nll(m, nll, set->pixels, m->cfg.nclasses ? set->labels : NULL, n,
                                    t->o.batch, err);
    for (size_t k = 0; !st && k < n; k++) s += nll[k];
    free(nll);
    if (!st) *bpd = loom_bits_per_dim(&m->cfg, s / (double)n);
    return st;
}

/* each model on its own NLL of the batch */
static loom_status nll_grads(loom_trainer *t, double *losses, loom_error *err) {
    const size_t B = t->o.batch;
    for (size_t j = 0; j < t->n; j++) {
        loom_model *m = t->models[j].m;
        loom_status st = loom_model_grad(m, &losses[j], t->batch, m->cfg.nclasses ? t->blabels : NULL, B, err);
        if (st) return st;
    }
    return LOOM_OK;
}

loom_status loom_trainer_step(loom_trainer *t, bool *skipped, char *skip_msg, size_t cap,
                              loom_error *err) {
    if (!t->data) return loom_fail(err, LOOM_EINVAL, "trainer: no data (loom_trainer_set_data)");
    loom_train_opts *o = &t->o;
    loom_train_state *ts = &t->ts;
    const size_t B = o->batch, eb = loom_images_example_bytes(t->data);
    *skipped = false;
    if (ts->index + B > t->ntrain) { /* next epoch; the partial tail batch is dropped */
        ts->epoch++, ts->index = 0;
        ts->rng = t->shuf;
        shuffle(t->perm, t->ntrain, &t->shuf);
    }
    for (size_t b = 0; b < B; b++) {
        size_t k = t->train_idx[t->perm[ts->index + b]];
        memcpy(t->batch + b * eb, t->data->pixels + k * eb, eb);
        t->blabels[b] = t->data->labels ? t->data->labels[k] : 0;
    }
    ts->index += B;
    /* fresh noise for models with a latent: a function of seed and step, so
     * a resumed run draws the same; evaluation runs with 0 (fixed noise) */
    const uint64_t noise = ((o->seed + 1) * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ts->step * 0xbf58476d1ce4e5b9ULL) ^ 1;
    loom_model *ms[LOOM_MAX_MODELS];
    for (size_t j = 0; j < t->n; j++) {
        ms[j] = t->models[j].m;
        ms[j]->noise_seed = noise ^ ((uint64_t)j * 0x94d049bb133111ebULL);
    }
    double losses[LOOM_MAX_MODELS] = {0}, gnorm[LOOM_MAX_MODELS];
    loom_error gerr;
    loom_status gst = t->grad ? t->grad(t->grad_user, ms, t->n, t->batch,
                                        t->data->labels ? t->blabels : NULL, B, noise, losses, &gerr)
                              : nll_grads(t, losses, &gerr);
    for (size_t j = 0; j < t->n; j++) ms[j]->noise_seed = 0;
    if (!gst && t->nan_step == ts->step + 1) ms[0]->g[ms[0]->nfloats / 2] = NAN;
    size_t bad = t->n;
    for (size_t j = 0; j < t->n; j++) {
        gnorm[j] = gst ? NAN : loom_clip_grad_norm(ms[j]->g, ms[j]->nfloats, o->clip);
        if (bad == t->n && (gst || !isfinite(gnorm[j]) || !isfinite(losses[j]))) bad = j;
    }
    ts->step++;
    if (bad < t->n) {
        /* a non-finite loss or gradient: skip the update (of every model), never store it */
        t->skipped++;
        *skipped = true;
        const bool lossbad = gst || isfinite(gnorm[bad]);
        if (skip_msg)
            snprintf(skip_msg, cap, "step %ld: %s%snon-finite %s (%s); update skipped", ts->step,
                     t->n > 1 ? t->models[bad].role : "", t->n > 1 ? ": " : "",
                     lossbad ? "loss" : "gradient", gst ? gerr.msg : lossbad ? "nan" : "norm");
        if (t->skipped > MAX_SKIPPED)
            return loom_fail(err, LOOM_ENAN, "more than %d non-finite steps; stopping (last checkpoint kept)",
                             MAX_SKIPPED);
    } else {
        float lr = o->lr_halflife ? (float)(o->lr * pow(0.5, (double)ts->step / (double)o->lr_halflife)) : (float)o->lr;
        for (size_t j = 0; j < t->n; j++) loom_adam_step(&t->adam[j], ms[j]->w, ms[j]->g, lr);
    }
    for (size_t j = 0; j < t->n; j++) t->models[j].adam_t = t->adam[j].t;
    ts->adam_t = t->adam[0].t;
    for (size_t j = 0; j < t->n; j++) t->last_loss[j] = losses[j];
    return LOOM_OK;
}

static void emit(const loom_train_hooks *h, loom_train_event *ev) {
    if (h && h->log) h->log(h->user, ev);
}

loom_status loom_trainer_run(loom_trainer *t, const char *dir, const loom_train_hooks *hooks,
                             loom_train_stop *why, loom_error *err) {
    if (!t->data) return loom_fail(err, LOOM_EINVAL, "trainer: no data (loom_trainer_set_data)");
    const loom_train_opts *o = &t->o;
    loom_train_state *ts = &t->ts;
    const size_t log_every = hooks && hooks->log_every ? hooks->log_every : 50;
    const double time_limit = hooks ? hooks->time_limit : 0;
    const double t0 = now_s();
    double loss_sum[LOOM_MAX_MODELS] = {0}, tstep = 0.0;
    size_t loss_n = 0;
    const long start_step = ts->step;
    long saved = -1;
    loom_status st = LOOM_OK;
    char msg[LOOM_ERRLEN + 96];
    loom_error serr;
    *why = LOOM_TRAIN_DONE;
    while (ts->step < o->steps) {
        if (hooks && hooks->should_stop && hooks->should_stop(hooks->user)) {
            *why = LOOM_TRAIN_STOPPED;
            break;
        }
        double ts0 = now_s();
        bool skipped;
        if ((st = loom_trainer_step(t, &skipped, msg, sizeof msg, err))) return st;
        if (skipped) {
            loom_train_event ev = {.kind = LOOM_TRAIN_SKIP, .step = ts->step, .steps = o->steps,
                                   .nmodels = t->n, .msg = msg};
            emit(hooks, &ev);
        } else {
            for (size_t j = 0; j < t->n; j++) loss_sum[j] += t->last_loss[j];
            loss_n++;
        }
        tstep += now_s() - ts0;

        /* out of time: this step is the last of this process; the run's target stays */
        bool out_of_time = time_limit > 0 && now_s() - t0 >= time_limit;
        if (out_of_time) *why = LOOM_TRAIN_OUT_OF_TIME;
        const bool last = ts->step == o->steps || out_of_time;
        const bool do_eval = last || (o->eval_every && ts->step % o->eval_every == 0);
        loom_train_event ev = {.step = ts->step, .steps = o->steps, .nmodels = t->n, .last = last};
        if (ts->step % (long)log_every == 0 || do_eval || last) {
            ev.kind = LOOM_TRAIN_LOG;
            ev.eval = do_eval;
            ev.valid_subset = !last && o->eval_limit && o->eval_limit < t->valid.n;
            for (size_t j = 0; j < t->n; j++) {
                ev.train_bpd[j] = loss_n ? loss_sum[j] / (double)loss_n / log(2.0) : NAN;
                ev.valid_bpd[j] = NAN;
                if (do_eval && t->valid.n &&
                    (st = loom_trainer_evaluate(t, j, last ? 0 : o->eval_limit, &ev.valid_bpd[j], err)))
                    return st;
            }
            ev.images_per_s = tstep > 0 ? (double)loss_n * (double)o->batch / tstep : 0.0;
            ev.wall_s = now_s() - t0;
            ev.eta_s = ts->step > start_step ? ev.wall_s / (double)(ts->step - start_step) * (double)(o->steps - ts->step) : 0;
            emit(hooks, &ev);
            for (size_t j = 0; j < t->n; j++) loss_sum[j] = 0;
            loss_n = 0, tstep = 0;
        } else {
            ev.kind = LOOM_TRAIN_STEP;
            ev.loss_bpd = t->last_loss[0] / log(2.0);
            ev.images_per_s = tstep > 0 ? (double)loss_n * (double)o->batch / tstep : 0.0;
            ev.wall_s = now_s() - t0;
            ev.eta_s = ev.wall_s / (double)(ts->step - start_step) * (double)(o->steps - ts->step);
            emit(hooks, &ev);
        }
        if ((o->checkpoint_every && ts->step % o->checkpoint_every == 0) || last) {
            if ((st = loom_trainer_save(t, dir, &serr))) goto save_failed;
            saved = ts->step;
        }
        if (o->sample_every && ts->step % o->sample_every == 0 && !last) {
            loom_train_event sev = {.kind = LOOM_TRAIN_SAMPLE, .step = ts->step, .steps = o->steps,
                                    .nmodels = t->n};
            emit(hooks, &sev);
        }
        if (out_of_time) break;
    }
    if (saved != ts->step && (st = loom_trainer_save(t, dir, &serr))) goto save_failed;
    return LOOM_OK;
save_failed:
    /* a failed save (disk full, file size limit, I/O error, NaN) leaves the
     * previous checkpoint in place (loom_safetensors_write is atomic) */
    return loom_fail(err, st, "%s; checkpoint of step %ld not written, the previous one is kept",
                     serr.msg, ts->step);
}

loom_status loom_trainer_own_data(loom_trainer *t, loom_images *data, loom_error *err) {
    loom_images_free(&t->owned);
    t->owned = *data;
    memset(data, 0, sizeof *data);
    return loom_trainer_set_data(t, &t->owned, err);
}

loom_status loom_trainer_attach(loom_trainer *t, const struct loom_context *ctx, const char *dir,
                                loom_error *err) {
    char *d = strdup(dir);
    if (!d) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    free(t->dir);
    t->dir = d, t->ctx = ctx;
    return LOOM_OK;
}
const struct loom_context *loom_trainer_context(const loom_trainer *t) { return t->ctx; }
const char *loom_trainer_dir(const loom_trainer *t) { return t->dir; }
