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
    loom_train_stage_fn stage_fn; /* a staged objective, or NULL */
    size_t nstages;
    long nan_step;             /* test hook LOOM_FAULT_NAN_STEP, 0 = off */
    size_t skipped;
    char *config_written;      /* the text of the last config.json written */
    double last_loss[LOOM_MAX_MODELS]; /* nats/pixel of the last step */
    loom_images owned;         /* the data, when the trainer owns it (loom_trainer_own_data) */
    const struct loom_context *ctx; /* the public API's context, or NULL */
    char *dir;                 /* the run directory, for the public API (loom_trainer_attach) */
    const loom_comm *comm;     /* the ranks of a data-parallel run, or NULL (one process) */
    double last_gnorm[LOOM_MAX_MODELS]; /* gradient norm of the last step, before clipping */
    float last_lr;             /* learning rate of the last update */
    bool averaged;             /* loom_trainer_use_average: the models hold their averages */
    /* loom_trainer_terms: the run's named loss terms and the last step's values */
    char term_buf[LOOM_MAX_RUN_TERMS][LOOM_TERM_NAMELEN];
    const char *term_names[LOOM_MAX_RUN_TERMS];
    double last_terms[LOOM_MAX_RUN_TERMS];
};

/* several ranks train this run (loom_trainer_set_comm) */
static bool ranked(const loom_trainer *t) { return t->comm && t->comm->size > 1; }
/* this process writes the run's files: the only one, or rank 0 */
static bool writer(const loom_trainer *t) { return !ranked(t) || t->comm->rank == 0; }

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

/* the moving average starts at the weights (a resumed run has it from its checkpoint) */
static loom_status ema_setup(loom_trainer *t, loom_error *err) {
    if (!(t->o.ema > 0)) return LOOM_OK;
    for (size_t j = 0; j < t->n; j++) {
        loom_run_model *r = &t->models[j];
        if (r->ema) continue;
        if (!(r->ema = malloc(r->m->nfloats * sizeof *r->ema)))
            return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory for the moving average");
        memcpy(r->ema, r->m->w, r->m->nfloats * sizeof *r->ema);
    }
    return LOOM_OK;
}

void loom_trainer_use_average(loom_trainer *t, bool on) {
    if (t->averaged == on) return;
    for (size_t j = 0; j < t->n; j++) {
        loom_run_model *r = &t->models[j];
        if (!r->ema) continue;
        float *w = r->m->w;
        r->m->w = r->ema, r->ema = w;
    }
    t->averaged = on;
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
    loom_trainer_use_average(t, false);
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
    if ((st = ema_setup(t, err))) goto fail;
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
    if ((st = ema_setup(t, err))) {
        loom_trainer_free(t);
        return st;
    }
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

void loom_trainer_set_stages(loom_trainer *t, size_t nstages, loom_train_stage_fn fn, void *user) {
    t->stage_fn = fn, t->nstages = fn ? nstages : 0, t->grad_user = user;
}

/* model j's learning rate at this step: its own (o->model_lr[j]) or the run's,
 * both on the same schedule */
static float model_lr(const loom_train_opts *o, size_t j, long step) {
    const double base = o->model_lr[j] > 0 ? o->model_lr[j] : o->lr;
    return o->lr_halflife ? (float)(base * pow(0.5, (double)step / (double)o->lr_halflife)) : (float)base;
}

const loom_train_opts *loom_trainer_opts(const loom_trainer *t) { return &t->o; }
const loom_train_state *loom_trainer_state(const loom_trainer *t) { return &t->ts; }
size_t loom_trainer_nmodels(const loom_trainer *t) { return t->n; }
loom_model *loom_trainer_model(const loom_trainer *t, size_t i) { return i < t->n ? t->models[i].m : NULL; }
const char *loom_trainer_role(const loom_trainer *t, size_t i) { return i < t->n ? t->models[i].role : NULL; }

size_t loom_trainer_terms(loom_trainer *t, const char *const **names) {
    size_t k = 0;
    for (size_t j = 0; !t->grad && j < t->n; j++) {
        const char *mt[LOOM_MAX_TERMS];
        const size_t nt = loom_model_loss_terms(t->models[j].m, mt);
        for (size_t i = 0; i < nt; i++, k++)
            snprintf(t->term_buf[k], LOOM_TERM_NAMELEN, "%s%s%s_nats_per_image", t->n > 1 ? t->models[j].role : "",
                     t->n > 1 ? "_" : "", mt[i]);
    }
    for (size_t j = 0; t->n > 1 && j < t->n; j++, k++)
        snprintf(t->term_buf[k], LOOM_TERM_NAMELEN, "loss_%s", t->models[j].role);
    for (size_t i = 0; i < k; i++) t->term_names[i] = t->term_buf[i];
    if (names) *names = t->term_names;
    return k;
}

/* t->last_terms = the values of the run's terms (loom_trainer_terms' order)
 * after a step whose losses were `losses` */
static void step_terms(loom_trainer *t, const double *losses) {
    size_t k = 0;
    for (size_t j = 0; !t->grad && j < t->n; j++) {
        const loom_model *m = t->models[j].m;
        for (size_t i = 0, nt = loom_model_loss_terms(m, NULL); i < nt; i++) t->last_terms[k++] = m->terms[i];
    }
    for (size_t j = 0; t->n > 1 && j < t->n; j++) t->last_terms[k++] = losses[j];
}
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
        if ((data->t ? data->t : 1) != loom_frames(c))
            return loom_fail(err, LOOM_EINVAL, "%s: examples of %zu frames but the run's model takes %zu",
                             o->data, data->t ? data->t : 1, loom_frames(c));
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
    if (!writer(t)) return LOOM_OK;
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
        st = loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
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

static loom_status save_as(loom_trainer *t, const char *dir, const char *name, loom_error *err) {
    char *path = join(dir, name);
    if (!path) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    loom_trainer_use_average(t, false);
    if (!writer(t)) { /* over ranks, rank 0 writes the run's files */
        free(path);
        return LOOM_OK;
    }
    loom_status st = loom_run_save(path, t->models, t->n, &t->ts, &t->o, err);
    free(path);
    return st;
}

/* The best validation so far, from dir/best.safetensors's metadata (a resumed
 * run): kept there and not in checkpoint.safetensors, so that a run cut in
 * two and resumed ends with the bytes of an uninterrupted one. */
static void best_from_dir(loom_trainer *t, const char *dir) {
    char *path = join(dir, "best.safetensors");
    loom_st_file *f;
    loom_error e;
    if (path && loom_safetensors_open(&f, path, &e) == LOOM_OK) {
        const char *bs = loom_st_meta(f, "best_step"), *bv = loom_st_meta(f, "best_valid");
        char *end = NULL;
        double v = bv ? strtod(bv, &end) : NAN;
        long k = bs ? strtol(bs, NULL, 10) : 0;
        if (k > 0 && k <= t->ts.step && end && !*end && isfinite(v)) t->ts.best_step = k, t->ts.best_valid = v;
        loom_safetensors_close(f);
    }
    free(path);
}

loom_status loom_trainer_save(loom_trainer *t, const char *dir, loom_error *err) {
    loom_trainer_use_average(t, false);
    for (size_t j = 0; j < t->n; j++) t->models[j].adam_t = t->adam[j].t;
    t->ts.adam_t = t->adam[0].t;
    if (!writer(t)) return LOOM_OK;
    char *ck = join(dir, "checkpoint.safetensors"), *cj = join(dir, "config.json");
    char *text = loom_run_config_json(t->models, t->n, &t->o);
    loom_status st = LOOM_OK;
    loom_train_state ts = t->ts;
    ts.best_step = 0; /* in best.safetensors only (best_from_dir) */
    if (!ck || !cj || !text) st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", dir);
    if (!st) st = loom_run_save(ck, t->models, t->n, &ts, &t->o, err);
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
    if (!m->ops->shard) return LOOM_OK; /* no likelihood (gran): nothing to validate */
    const loom_images *set = &t->valid;
    size_t n = limit && limit < set->n ? limit : set->n;
    double *nll = malloc(2 * n * sizeof *nll), s = 0.0;
    if (!nll) return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
    /* in chunks of the training batch so the workspaces do not grow past
     * training's; over ranks, each computes a contiguous run of whole chunks
     * (the same micro-shards, so the same bits, as one process) */
    const size_t chunk = t->o.batch, nchunks = (n + chunk - 1) / chunk, eb = loom_images_example_bytes(set);
    const int R = ranked(t) ? t->comm->size : 1, me = ranked(t) ? t->comm->rank : 0;
    size_t *cnt = malloc(2 * (size_t)R * sizeof *cnt);
    if (!cnt) {
        free(nll);
        return loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
    }
    for (int r = 0; r < R; r++) {
        const size_t i0 = LOOM_MIN(n, nchunks * (size_t)r / (size_t)R * chunk);
        const size_t i1 = LOOM_MIN(n, nchunks * (size_t)(r + 1) / (size_t)R * chunk);
        cnt[R + r] = i0 * sizeof *nll, cnt[r] = (i1 - i0) * sizeof *nll;
    }
    const size_t i0 = cnt[R + me] / sizeof *nll, ni = cnt[me] / sizeof *nll;
    loom_status st = LOOM_OK;
    const bool was = t->averaged;
    loom_trainer_use_average(t, true);
    if (ni && set->gen) { /* a generated set: made a chunk at a time */
        uint8_t *buf = malloc(chunk * eb);
        if (!buf) st = loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
        for (size_t k0 = i0; !st && k0 < i0 + ni; k0 += chunk) {
            const size_t nb = LOOM_MIN(chunk, i0 + ni - k0);
            for (size_t k = 0; k < nb; k++) loom_images_example(set, k0 + k, buf + k * eb);
            st = loom_model_nll(m, nll + k0, buf, NULL, nb, chunk, err);
        }
        free(buf);
    } else if (ni) {
        st = loom_model_nll(m, nll + i0, set->pixels + i0 * eb, m->cfg.nclasses ? set->labels + i0 : NULL, ni,
                            chunk, err);
    }
    if (!st && R > 1)
        st = t->comm->allgatherv(t->comm->user, nll + i0, cnt[me], nll + n, cnt, cnt + R, err);
    const double *all = R > 1 ? nll + n : nll;
    for (size_t k = 0; !st && k < n; k++) s += all[k];
    loom_trainer_use_average(t, was);
    free(nll), free(cnt);
    if (!st) *bpd = loom_bits_per_dim(&m->cfg, s / (double)n);
    return st;
}

/* each model on its own NLL of the batch */
static loom_status nll_grads(loom_trainer *t, double *losses, loom_error *err) {
    const size_t B = t->o.batch;
    for (size_t j = 0; j < t->n; j++) {
        loom_model *m = t->models[j].m;
        loom_status st = loom_model_grad_ranks(m, &losses[j], t->batch, m->cfg.nclasses ? t->blabels : NULL,
                                               B, t->comm, err);
        if (st) return st;
    }
    return LOOM_OK;
}

/* the moving averages after an update: ema += (1 - d) (w - ema), d warmed
 * up as (1 + k) / (10 + k) after k updates so that early weights fade out of
 * short runs */
static void ema_update(loom_trainer *t, size_t j) {
    float *a = t->models[j].ema;
    if (!a) return;
    const loom_model *m = t->models[j].m;
    const double k = (double)t->adam[j].t;
    const float keep = (float)fmin(t->o.ema, (1.0 + k) / (10.0 + k)), mix = 1.0f - keep;
    for (size_t i = 0; i < m->nfloats; i++) a[i] += mix * (m->w[i] - a[i]);
}

/* loom_trainer_step's updates for a staged objective (loom_trainer_set_stages) */
static loom_status staged_step(loom_trainer *t, loom_model *const *ms, uint64_t noise, bool *skipped,
                               char *skip_msg, size_t cap, loom_error *err) {
    loom_train_opts *o = &t->o;
    loom_train_state *ts = &t->ts;
    double losses[LOOM_MAX_MODELS], gnorm[LOOM_MAX_MODELS];
    unsigned updated = 0;
    for (size_t j = 0; j < t->n; j++) losses[j] = 0.0, gnorm[j] = 0.0;
    const long step = ts->step++;
    for (size_t s = 0; s < t->nstages; s++) {
        unsigned upd = 0;
        loom_error gerr;
        loom_status gst = t->stage_fn(t->grad_user, s, ms, t->n, t->batch, o->batch, noise, step, losses, &upd, &gerr);
        if (!gst && t->nan_step == step + 1 && (upd & 1u)) ms[0]->g[ms[0]->nfloats / 2] = NAN;
        size_t bad = gst ? 0 : t->n;
        for (size_t j = 0; j < t->n; j++) {
            if (!(upd >> j & 1u)) continue;
            gnorm[j] = gst ? NAN : loom_clip_grad_norm(ms[j]->g, ms[j]->nfloats, o->clip);
            if (bad == t->n && (!isfinite(gnorm[j]) || !isfinite(losses[j]))) bad = j;
        }
        if (bad < t->n) {
            t->skipped++;
            *skipped = true;
            const bool lossbad = gst || isfinite(gnorm[bad]);
            if (skip_msg)
                snprintf(skip_msg, cap, "step %ld: %s%snon-finite %s (%s); update skipped", ts->step,
                         t->n > 1 ? t->models[bad].role : "", t->n > 1 ? ": " : "", lossbad ? "loss" : "gradient",
                         gst ? gerr.msg : lossbad ? "nan" : "norm");
            if (t->skipped > MAX_SKIPPED)
                return loom_fail(err, LOOM_ENAN, "more than %d non-finite steps; stopping (last checkpoint kept)",
                                 MAX_SKIPPED);
            break;
        }
        for (size_t j = 0; j < t->n; j++) {
            if (!(upd >> j & 1u)) continue;
            const float lr = model_lr(o, j, ts->step);
            loom_adam_step(&t->adam[j], ms[j]->w, ms[j]->g, lr);
            if (j == 0 || !(updated & 1u)) t->last_lr = lr;
            updated |= 1u << j;
        }
    }
    for (size_t j = 0; j < t->n; j++) {
        ms[j]->noise_seed = 0;
        if (updated >> j & 1u) ema_update(t, j);
        t->last_gnorm[j] = gnorm[j];
        t->models[j].adam_t = t->adam[j].t;
        t->last_loss[j] = losses[j];
    }
    ts->adam_t = t->adam[0].t;
    return LOOM_OK;
}

loom_status loom_trainer_step(loom_trainer *t, bool *skipped, char *skip_msg, size_t cap,
                              loom_error *err) {
    if (!t->data) return loom_fail(err, LOOM_EINVAL, "trainer: no data (loom_trainer_set_data)");
    if ((t->grad || t->stage_fn) && ranked(t))
        return loom_fail(err, LOOM_EINVAL, "trainer: a custom objective cannot be trained over ranks (yet)");
    loom_trainer_use_average(t, false);
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
        loom_images_example(t->data, k, t->batch + b * eb);
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
    if (t->stage_fn) return staged_step(t, ms, noise, skipped, skip_msg, cap, err);
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
        for (size_t j = 0; j < t->n; j++) loom_adam_step(&t->adam[j], ms[j]->w, ms[j]->g, model_lr(o, j, ts->step));
        t->last_lr = model_lr(o, 0, ts->step);
        for (size_t j = 0; j < t->n; j++) {
            float *a = t->models[j].ema;
            if (!a) continue;
            /* ema += (1 - d) (w - ema), d warmed up as (1 + k) / (10 + k) after
             * k updates so that early weights fade out of short runs */
            const double k = (double)t->adam[j].t;
            const float keep = (float)fmin(o->ema, (1.0 + k) / (10.0 + k)), mix = 1.0f - keep;
            const float *w = ms[j]->w;
            for (size_t i = 0; i < ms[j]->nfloats; i++) a[i] += mix * (w[i] - a[i]);
        }
    }
    for (size_t j = 0; j < t->n; j++) t->last_gnorm[j] = gnorm[j];
    for (size_t j = 0; j < t->n; j++) t->models[j].adam_t = t->adam[j].t;
    ts->adam_t = t->adam[0].t;
    for (size_t j = 0; j < t->n; j++) t->last_loss[j] = losses[j];
    step_terms(t, losses);
    return LOOM_OK;
}

static void emit(const loom_train_hooks *h, loom_train_event *ev) {
    if (h && h->log) h->log(h->user, ev);
}

static void checkpointed(loom_trainer *t, const loom_train_hooks *h, const char *dir, bool best) {
    loom_train_event ev = {.kind = LOOM_TRAIN_CHECKPOINT, .step = t->ts.step, .steps = t->o.steps,
                           .nmodels = t->n, .path = dir, .best = best};
    emit(h, &ev);
}

loom_status loom_trainer_run(loom_trainer *t, const char *dir, const loom_train_hooks *hooks,
                             loom_train_stop *why, loom_error *err) {
    if (!t->data) return loom_fail(err, LOOM_EINVAL, "trainer: no data (loom_trainer_set_data)");
    const loom_train_opts *o = &t->o;
    loom_train_state *ts = &t->ts;
    const size_t log_every = hooks && hooks->log_every ? hooks->log_every : 50;
    const double time_limit = hooks ? hooks->time_limit : 0;
    const double t0 = now_s();
    double loss_sum[LOOM_MAX_MODELS] = {0}, gnorm_sum[LOOM_MAX_MODELS] = {0}, tstep = 0.0;
    double term_sum[LOOM_MAX_RUN_TERMS] = {0};
    const char *const *term_names;
    const size_t nterms = loom_trainer_terms(t, &term_names);
    size_t loss_n = 0;
    const long start_step = ts->step;
    long saved = -1;
    loom_status st = LOOM_OK;
    char msg[LOOM_ERRLEN + 96];
    loom_error serr;
    *why = LOOM_TRAIN_DONE;
    if (ts->best_step == 0) best_from_dir(t, dir);
    while (ts->step < o->steps) {
        /* over ranks, a stop request on any rank (a signal reaches them at
         * different moments) stops every rank before the same step */
        int stop = hooks && hooks->should_stop && hooks->should_stop(hooks->user);
        if (ranked(t) && (st = t->comm->max_int(t->comm->user, &stop, err))) return st;
        if (stop) {
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
            for (size_t j = 0; j < t->n; j++) loss_sum[j] += t->last_loss[j], gnorm_sum[j] += t->last_gnorm[j];
            for (size_t k = 0; k < nterms; k++) term_sum[k] += t->last_terms[k];
            loss_n++;
        }
        tstep += now_s() - ts0;

        /* out of time: this step is the last of this process; the run's target stays */
        int out_of_time = time_limit > 0 && now_s() - t0 >= time_limit;
        if (time_limit > 0 && ranked(t) && (st = t->comm->max_int(t->comm->user, &out_of_time, err)))
            return st;
        if (out_of_time) *why = LOOM_TRAIN_OUT_OF_TIME;
        const bool last = ts->step == o->steps || out_of_time;
        const bool do_eval = last || (o->eval_every && ts->step % o->eval_every == 0);
        loom_train_event ev = {.step = ts->step, .steps = o->steps, .nmodels = t->n, .last = last,
                               .lr = t->last_lr};
        bool best = false;
        if (ts->step % (long)log_every == 0 || do_eval || last) {
            ev.kind = LOOM_TRAIN_LOG;
            ev.eval = do_eval;
            ev.nterms = nterms, ev.term_names = term_names;
            for (size_t k = 0; k < nterms; k++) ev.terms[k] = loss_n ? term_sum[k] / (double)loss_n : NAN;
            ev.valid_subset = !last && o->eval_limit && o->eval_limit < t->valid.n;
            for (size_t j = 0; j < t->n; j++) {
                ev.train_bpd[j] = loss_n ? loss_sum[j] / (double)loss_n / log(2.0) : NAN;
                ev.grad_norm[j] = loss_n ? gnorm_sum[j] / (double)loss_n : NAN;
                ev.valid_bpd[j] = NAN;
                if (do_eval && t->valid.n &&
                    (st = loom_trainer_evaluate(t, j, last ? 0 : o->eval_limit, &ev.valid_bpd[j], err)))
                    return st;
            }
            /* the best validation so far (model 0's): best.safetensors below */
            if (do_eval && isfinite(ev.valid_bpd[0]) && (ts->best_step == 0 || ev.valid_bpd[0] < ts->best_valid)) {
                best = ev.best = true;
                ts->best_step = ts->step, ts->best_valid = ev.valid_bpd[0];
            }
            ev.images_per_s = tstep > 0 ? (double)loss_n * (double)o->batch / tstep : 0.0;
            ev.wall_s = now_s() - t0;
            ev.eta_s = ts->step > start_step ? ev.wall_s / (double)(ts->step - start_step) * (double)(o->steps - ts->step) : 0;
            emit(hooks, &ev);
            for (size_t j = 0; j < t->n; j++) loss_sum[j] = 0, gnorm_sum[j] = 0;
            for (size_t k = 0; k < nterms; k++) term_sum[k] = 0;
            loss_n = 0, tstep = 0;
        } else {
            ev.kind = LOOM_TRAIN_STEP;
            ev.loss_bpd = t->last_loss[0] / log(2.0);
            ev.images_per_s = tstep > 0 ? (double)loss_n * (double)o->batch / tstep : 0.0;
            ev.wall_s = now_s() - t0;
            ev.eta_s = ev.wall_s / (double)(ts->step - start_step) * (double)(o->steps - ts->step);
            emit(hooks, &ev);
        }
        if (best) {
            if ((st = save_as(t, dir, "best.safetensors", &serr))) goto save_failed;
        }
        if ((o->checkpoint_every && ts->step % o->checkpoint_every == 0) || last) {
            if ((st = loom_trainer_save(t, dir, &serr))) goto save_failed;
            saved = ts->step;
            checkpointed(t, hooks, dir, best);
        }
        if (o->sample_every && ts->step % o->sample_every == 0 && !last) {
            loom_train_event sev = {.kind = LOOM_TRAIN_SAMPLE, .step = ts->step, .steps = o->steps,
                                    .nmodels = t->n};
            loom_trainer_use_average(t, true);
            emit(hooks, &sev);
            loom_trainer_use_average(t, false);
        }
        if (out_of_time) break;
    }
    if (saved != ts->step) {
        if ((st = loom_trainer_save(t, dir, &serr))) goto save_failed;
        checkpointed(t, hooks, dir, false);
    }
    return LOOM_OK;
save_failed:
    /* a failed save (disk full, file size limit, I/O error, NaN) leaves the
     * previous checkpoint in place (loom_safetensors_write is atomic) */
    return loom_fail(err, st, "%s; checkpoint of step %ld not written, the previous one is kept",
                     serr.msg, ts->step);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* what every rank of a run must agree on: options and models (config.json's
 * text), the weights, the data position and the training data itself */
static uint64_t run_fingerprint(const loom_trainer *t) {
    uint64_t h = 0xcbf29ce484222325ULL;
    char *text = loom_run_config_json(t->models, t->n, &t->o);
    if (text) h = fnv1a(h, text, strlen(text));
    free(text);
    for (size_t j = 0; j < t->n; j++) h = fnv1a(h, t->models[j].m->w, t->models[j].m->nfloats * sizeof(float));
    h = fnv1a(h, &t->ts.step, sizeof t->ts.step);
    h = fnv1a(h, &t->ts.index, sizeof t->ts.index);
    h = fnv1a(h, &t->ntrain, sizeof t->ntrain);
    if (t->data) {
        h = fnv1a(h, t->data->pixels, t->data->n * loom_images_example_bytes(t->data));
        if (t->data->labels) h = fnv1a(h, t->data->labels, t->data->n * sizeof *t->data->labels);
    }
    return h;
}

loom_status loom_trainer_set_comm(loom_trainer *t, const loom_comm *c, loom_error *err) {
    t->comm = NULL;
    if (!c || c->size <= 1) return LOOM_OK;
    if (c->rank < 0 || c->rank >= c->size)
        return loom_fail(err, LOOM_EINVAL, "trainer: rank %d of %d", c->rank, c->size);
    for (size_t j = 0; j < t->n; j++) {
        const loom_config *cfg = &t->models[j].m->cfg;
        const size_t u = loom_micro_shard(cfg, t->o.batch), K = (t->o.batch + u - 1) / u;
        if (K < (size_t)c->size)
            return loom_fail(err, LOOM_EINVAL,
                             "--batch %zu is %zu micro-shard%s of %zu images for model %s, fewer than the %d ranks "
                             "(each computes whole micro-shards): use --batch %zu or more, or fewer ranks",
                             t->o.batch, K, K == 1 ? "" : "s", u, cfg->model, c->size, u * (size_t)(c->size - 1) + 1);
    }
    /* ranks that were given different flags, data or checkpoints would train
     * different models and wait for each other's bytes forever, or worse,
     * silently average them: compare fingerprints once */
    uint64_t mine = run_fingerprint(t), *all = malloc((size_t)c->size * 2 * sizeof *all);
    size_t *cnt = malloc((size_t)c->size * 2 * sizeof *cnt);
    loom_status st = all && cnt ? LOOM_OK : loom_fail(err, LOOM_ENOMEM, "trainer: out of memory");
    for (int r = 0; !st && r < c->size; r++) cnt[r] = sizeof mine, cnt[c->size + r] = (size_t)r * sizeof mine;
    if (!st) st = c->allgatherv(c->user, &mine, sizeof mine, all, cnt, cnt + c->size, err);
    for (int r = 1; !st && r < c->size; r++)
        if (all[r] != all[0])
            st = loom_fail(err, LOOM_EINVAL, "rank %d of %d does not train the run rank 0 trains (other flags, "
                           "data or checkpoint): every rank must be started with the same ones", r, c->size);
    free(all), free(cnt);
    if (st) return st;
    t->comm = c;
    return LOOM_OK;
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
