#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "loom-checkpoint-1"

void loom_train_opts_default(loom_train_opts *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->data, sizeof o->data, "fashion-mnist");
    o->batch = 32;
    o->lr = 1e-3, o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8;
    o->clip = 1.0;
    o->lr_halflife = 0;
    o->steps = 1000;
    o->seed = 1;
    o->valid = 5000;
    o->eval_every = 500, o->checkpoint_every = 500, o->sample_every = 0;
    o->eval_limit = 1000;
}

char *loom_config_json(const loom_config *cfg, const loom_train_opts *o) {
    cJSON *root = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "name", cfg->model);
    cJSON_AddNumberToObject(m, "height", (double)cfg->height);
    cJSON_AddNumberToObject(m, "width", (double)cfg->width);
    if (loom_channels(cfg) != 1) cJSON_AddNumberToObject(m, "channels", (double)cfg->channels);
    cJSON_AddNumberToObject(m, "layers", (double)cfg->layers);
    cJSON_AddNumberToObject(m, "hidden", (double)cfg->hidden);
    cJSON_AddNumberToObject(m, "classes", cfg->nclasses);
    /* only models with a cell / a latent write these, so other configs read as before */
    if (cfg->cell[0]) cJSON_AddStringToObject(m, "cell", cfg->cell);
    if (cfg->zdim) cJSON_AddNumberToObject(m, "zdim", (double)cfg->zdim);
    if (cfg->steps_draw) { /* draw */
        cJSON_AddNumberToObject(m, "steps_draw", (double)cfg->steps_draw);
        cJSON_AddNumberToObject(m, "read_n", (double)cfg->read_n);
        cJSON_AddNumberToObject(m, "write_n", (double)cfg->write_n);
        cJSON_AddBoolToObject(m, "attention", cfg->attention);
    }
    if (strcmp(cfg->model, "rae") == 0) cJSON_AddBoolToObject(m, "variational", cfg->variational);
    if (o) {
        cJSON *t = cJSON_AddObjectToObject(root, "train");
        cJSON_AddStringToObject(t, "data", o->data);
        cJSON_AddNumberToObject(t, "batch", (double)o->batch);
        cJSON_AddNumberToObject(t, "lr", o->lr);
        cJSON_AddNumberToObject(t, "beta1", o->beta1);
        cJSON_AddNumberToObject(t, "beta2", o->beta2);
        cJSON_AddNumberToObject(t, "eps", o->eps);
        cJSON_AddNumberToObject(t, "clip", o->clip);
        cJSON_AddNumberToObject(t, "lr_halflife", (double)o->lr_halflife);
        cJSON_AddNumberToObject(t, "steps", (double)o->steps);
        char seed[32];
        snprintf(seed, sizeof seed, "%" PRIu64, o->seed); /* beyond 2^53 a double would round */
        cJSON_AddStringToObject(t, "seed", seed);
        cJSON_AddNumberToObject(t, "valid", (double)o->valid);
        cJSON_AddNumberToObject(t, "eval_every", (double)o->eval_every);
        cJSON_AddNumberToObject(t, "eval_limit", (double)o->eval_limit);
        cJSON_AddNumberToObject(t, "checkpoint_every", (double)o->checkpoint_every);
        cJSON_AddNumberToObject(t, "sample_every", (double)o->sample_every);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* read an integer field in [lo, hi] */
static loom_status get_int(const cJSON *obj, const char *key, double lo, double hi, double *out,
                           const char *what, loom_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"%s\" must be an integer in [%g, %g]",
                         what, key, lo, hi);
    *out = v->valuedouble;
    return LOOM_OK;
}

static loom_status get_num(const cJSON *obj, const char *key, double lo, double hi, double *out,
                           const char *what, loom_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return loom_fail(err, LOOM_EFORMAT, "%s: config key \"%s\" must be a number in [%g, %g]",
                         what, key, lo, hi);
    *out = v->valuedouble;
    return LOOM_OK;
}

/* unknown keys are errors, not warnings (STYLE.md) */
static loom_status only_keys(const cJSON *obj, const char *const *keys, const char *what,
                             loom_error *err) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = keys; *k; k++) ok |= it->string && strcmp(it->string, *k) == 0;
        if (!ok)
            return loom_fail(err, LOOM_EFORMAT, "%s: unknown config key \"%s\"", what,
                             it->string ? it->string : "?");
    }
    return LOOM_OK;
}

loom_status loom_config_parse(loom_config *cfg, loom_train_opts *o, const char *json,
                              const char *what, loom_error *err) {
    cJSON *root = cJSON_Parse(json);
    loom_status st = LOOM_OK;
    double v = 0.0;
    if (!cJSON_IsObject(root)) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config is not a JSON object", what);
        goto done;
    }
    static const char *const top_keys[] = {"model", "train", NULL};
    static const char *const model_keys[] = {"name", "height", "width", "layers", "hidden",
                                             "classes", "cell", "zdim", "steps_draw", "channels",
                                             "read_n", "write_n", "attention", "variational", NULL};
    static const char *const train_keys[] = {
        "data", "batch", "lr", "beta1", "beta2", "eps", "clip", "lr_halflife", "steps", "seed",
        "valid", "eval_every", "eval_limit", "checkpoint_every", "sample_every", NULL};
    if ((st = only_keys(root, top_keys, what, err))) goto done;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(m)) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config has no \"model\" object", what);
        goto done;
    }
    if ((st = only_keys(m, model_keys, what, err))) goto done;
    memset(cfg, 0, sizeof *cfg);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof cfg->model) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"name\" must be a model name", what);
        goto done;
    }
    strcpy(cfg->model, name->valuestring);
    if ((st = get_int(m, "height", 1, 4096, &v, what, err))) goto done;
    cfg->height = (size_t)v;
    if ((st = get_int(m, "width", 1, 4096, &v, what, err))) goto done;
    cfg->width = (size_t)v;
    if (cJSON_GetObjectItemCaseSensitive(m, "channels")) { /* optional: absent means 1 */
        if ((st = get_int(m, "channels", 1, 3, &v, what, err))) goto done;
        cfg->channels = (size_t)v;
    }
    if ((st = get_int(m, "layers", 1, 64, &v, what, err))) goto done;
    cfg->layers = (size_t)v;
    if ((st = get_int(m, "hidden", 1, 4096, &v, what, err))) goto done;
    cfg->hidden = (size_t)v;
    if ((st = get_int(m, "classes", 0, 100000, &v, what, err))) goto done;
    cfg->nclasses = (int)v;
    const cJSON *cell = cJSON_GetObjectItemCaseSensitive(m, "cell");
    if (cell) { /* optional: the model's check says whether it needs one */
        if (!cJSON_IsString(cell) || strlen(cell->valuestring) >= sizeof cfg->cell) {
            st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"cell\" must be a cell name", what);
            goto done;
        }
        strcpy(cfg->cell, cell->valuestring);
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "zdim")) {
        if ((st = get_int(m, "zdim", 1, 4096, &v, what, err))) goto done;
        cfg->zdim = (size_t)v;
    }
    if (cJSON_GetObjectItemCaseSensitive(m, "steps_draw")) { /* draw: all four or none */
        if ((st = get_int(m, "steps_draw", 1, 1024, &v, what, err))) goto done;
        cfg->steps_draw = (size_t)v;
        if ((st = get_int(m, "read_n", 1, 4096, &v, what, err))) goto done;
        cfg->read_n = (size_t)v;
        if ((st = get_int(m, "write_n", 1, 4096, &v, what, err))) goto done;
        cfg->write_n = (size_t)v;
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(m, "attention");
        if (!cJSON_IsBool(att)) {
            st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"attention\" must be true or false", what);
            goto done;
        }
        cfg->attention = cJSON_IsTrue(att);
    }
    const cJSON *var = cJSON_GetObjectItemCaseSensitive(m, "variational");
    if (var) { /* rae */
        if (!cJSON_IsBool(var)) {
            st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"variational\" must be true or false", what);
            goto done;
        }
        cfg->variational = cJSON_IsTrue(var);
    }
    loom_error e2;
    if (loom_config_check(cfg, &e2)) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: %s", what, e2.msg);
        goto done;
    }
    if (!o) goto done;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "train");
    if (!cJSON_IsObject(t)) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config has no \"train\" object", what);
        goto done;
    }
    if ((st = only_keys(t, train_keys, what, err))) goto done;
    loom_train_opts_default(o);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    if (!cJSON_IsString(data) || strlen(data->valuestring) >= sizeof o->data) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"data\" must be a string", what);
        goto done;
    }
    strcpy(o->data, data->valuestring);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(t, "seed");
    char *endp = NULL;
    if (!cJSON_IsString(seed) || !*seed->valuestring ||
        (o->seed = strtoull(seed->valuestring, &endp, 10), *endp)) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: config key \"seed\" must be a decimal string", what);
        goto done;
    }
    if ((st = get_int(t, "batch", 1, 1 << 20, &v, what, err))) goto done;
    o->batch = (size_t)v;
    if ((st = get_num(t, "lr", 0, 1e3, &o->lr, what, err))) goto done;
    if ((st = get_num(t, "beta1", 0, 1, &o->beta1, what, err))) goto done;
    if ((st = get_num(t, "beta2", 0, 1, &o->beta2, what, err))) goto done;
    if ((st = get_num(t, "eps", 0, 1, &o->eps, what, err))) goto done;
    if ((st = get_num(t, "clip", 0, 1e12, &o->clip, what, err))) goto done;
    if ((st = get_int(t, "lr_halflife", 0, 1e15, &v, what, err))) goto done;
    o->lr_halflife = (long)v;
    if ((st = get_int(t, "steps", 0, 1e15, &v, what, err))) goto done;
    o->steps = (long)v;
    if ((st = get_int(t, "valid", 0, 1e12, &v, what, err))) goto done;
    o->valid = (size_t)v;
    if ((st = get_int(t, "eval_every", 0, 1e15, &v, what, err))) goto done;
    o->eval_every = (long)v;
    if ((st = get_int(t, "eval_limit", 0, 1e12, &v, what, err))) goto done;
    o->eval_limit = (size_t)v;
    if ((st = get_int(t, "checkpoint_every", 0, 1e15, &v, what, err))) goto done;
    o->checkpoint_every = (long)v;
    if ((st = get_int(t, "sample_every", 0, 1e15, &v, what, err))) goto done;
    o->sample_every = (long)v;
done:
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------ checkpoints */

loom_status loom_checkpoint_save(const char *path, const loom_model *m, const float *adam_m,
                                 const float *adam_v, const loom_train_state *st,
                                 const loom_train_opts *o, loom_error *err) {
    /* a NaN never reaches disk, in the weights or in the Adam moments (a
     * resumed run would turn a non-finite moment into non-finite weights) */
    const float *bufs[3] = {m->w, adam_m && adam_v ? adam_m : NULL, adam_m && adam_v ? adam_v : NULL};
    static const char *const what[3] = {"parameter", "Adam first moment", "Adam second moment"};
    for (int b = 0; b < 3; b++)
        for (size_t i = 0; bufs[b] && i < m->nfloats; i++)
            if (!isfinite(bufs[b][i]))
                return loom_fail(err, LOOM_ENAN, "%s: not written: %s %zu is %g", path, what[b], i,
                                 (double)bufs[b][i]);
    const size_t np = m->nparams, nt = adam_m && adam_v ? 3 * np : np;
    loom_tensor *t = calloc(nt, sizeof *t);
    char (*names)[LOOM_NAMELEN + 16] = calloc(nt, sizeof *names);
    char *cfg = loom_config_json(&m->cfg, o);
    if (!t || !names || !cfg) {
        free(t), free(names), free(cfg);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    for (size_t k = 0; k < nt; k++) {
        const loom_param *p = &m->params[k % np];
        const float *base = k < np ? m->w : (k < 2 * np ? adam_m : adam_v);
        snprintf(names[k], sizeof names[k], "%s%s", k < np ? "" : (k < 2 * np ? "optim.m." : "optim.v."),
                 p->name);
        t[k].name = names[k];
        t[k].dtype = LOOM_F32;
        t[k].ndim = p->ndim;
        t[k].shape[0] = p->shape[0], t[k].shape[1] = p->shape[1];
        t[k].data = base + p->offset;
    }
    char step[32], rng[80], epoch[32], index[32], adam_t[32];
    snprintf(step, sizeof step, "%ld", st ? st->step : 0L);
    snprintf(rng, sizeof rng, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             st ? st->rng.s[0] : 0, st ? st->rng.s[1] : 0, st ? st->rng.s[2] : 0, st ? st->rng.s[3] : 0);
    snprintf(epoch, sizeof epoch, "%zu", st ? st->epoch : 0);
    snprintf(index, sizeof index, "%zu", st ? st->index : 0);
    snprintf(adam_t, sizeof adam_t, "%ld", st ? st->adam_t : 0L);
    loom_kv meta[] = {{"format", FORMAT}, {"config", cfg}, {"step", step}, {"rng", rng},
                      {"epoch", epoch},   {"index", index}, {"adam_t", adam_t}};
    loom_status s = loom_safetensors_write(path, t, nt, meta, sizeof meta / sizeof meta[0], err);
    free(t), free(names), free(cfg);
    return s;
}

/* Resume state counters must stay far from overflow: the trainer adds to them
 * (a data position near SIZE_MAX wrapped around and indexed far outside the
 * permutation: a crash on `train --resume` of a crafted checkpoint). */
#define META_MAX 1000000000000000ULL /* 1e15, the config's limit for steps */

static loom_status meta_ulong(const loom_st_file *f, const char *path, const char *key,
                              unsigned long long *out, loom_error *err) {
    const char *v = loom_st_meta(f, key);
    char *end = NULL;
    errno = 0;
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) ||
        (*out = strtoull(v, &end, 10), *end) || errno || *out > META_MAX)
        return loom_fail(err, LOOM_EFORMAT,
                         "%s: metadata \"%s\" missing or not an integer in [0, 1e15]", path, key);
    return LOOM_OK;
}

static loom_status check_layout(const loom_st_file *f, const char *path, const loom_config *cfg,
                                loom_error *err) {
    loom_param *params = malloc(LOOM_MAX_PARAMS * sizeof *params);
    if (!params) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    size_t np = 0, nf = 0;
    loom_error e2;
    loom_status s = loom_model_layout(cfg, params, &np, &nf, &e2);
    if (s) s = loom_fail(err, LOOM_EFORMAT, "%s: %s", path, e2.msg);
    for (size_t k = 0; k < np && !s; k++) {
        const loom_param *p = &params[k];
        const loom_tensor *t = loom_st_find(f, p->name);
        bool same = t && t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!t)
            s = loom_fail(err, LOOM_EFORMAT, "%s: missing tensor %s for model %s", path, p->name,
                          cfg->model);
        else if (!same)
            s = loom_fail(err, LOOM_EFORMAT, "%s: tensor %s does not have the shape the config "
                          "gives it (%zu x %zu)", path, p->name, p->shape[0],
                          p->ndim > 1 ? p->shape[1] : (size_t)1);
    }
    free(params);
    return s;
}

loom_status loom_checkpoint_load(const char *path, int nthreads, loom_model **out, float **adam_m,
                                 float **adam_v, loom_train_state *st, loom_train_opts *o,
                                 loom_error *err) {
    *out = NULL;
    if (adam_m) *adam_m = NULL;
    if (adam_v) *adam_v = NULL;
    loom_st_file *f;
    loom_status s = loom_safetensors_open(&f, path, err);
    if (s) return s;
    loom_model *m = NULL;
    float *am = NULL, *av = NULL;
    const char *fmt = loom_st_meta(f, "format"), *cfgjson = loom_st_meta(f, "config");
    loom_config cfg;
    loom_train_opts opts;
    if (!fmt || strcmp(fmt, FORMAT) != 0) {
        s = loom_fail(err, LOOM_EFORMAT, "%s: not a loom checkpoint (metadata \"format\" is %s%s%s)",
                      path, fmt ? "\"" : "missing", fmt ? fmt : "", fmt ? "\"" : "");
        goto fail;
    }
    if (!cfgjson) {
        s = loom_fail(err, LOOM_EFORMAT, "%s: metadata \"config\" missing", path);
        goto fail;
    }
    if ((s = loom_config_parse(&cfg, &opts, cfgjson, path, err))) goto fail;
    /* Every parameter must be in the file with its shape before the model is
     * allocated: otherwise a few bytes of config ("hidden": 4096, "layers": 64)
     * would make us allocate the 100+ GB such a model needs. */
    if ((s = check_layout(f, path, &cfg, err))) goto fail;
    if ((s = loom_model_create(&m, &cfg, nthreads, err))) goto fail;
    char first_m[LOOM_NAMELEN + 16]; /* the optimiser state is all or nothing */
    snprintf(first_m, sizeof first_m, "optim.m.%s", m->params[0].name);
    int has_optim = loom_st_find(f, first_m) != NULL;
    size_t expected = has_optim ? 3 * m->nparams : m->nparams;
    if (loom_st_count(f) != expected) {
        /* name the first tensor that does not belong */
        for (size_t k = 0; k < loom_st_count(f); k++) {
            const char *nm = loom_st_get(f, k)->name;
            const char *base = strncmp(nm, "optim.m.", 8) == 0 || strncmp(nm, "optim.v.", 8) == 0 ? nm + 8 : nm;
            if (!loom_model_param(m, base)) {
                s = loom_fail(err, LOOM_EFORMAT, "%s: unexpected tensor %s for model %s", path, nm,
                              cfg.model);
                goto fail;
            }
        }
        s = loom_fail(err, LOOM_EFORMAT, "%s: has %zu tensors, the model needs %zu", path,
                      loom_st_count(f), expected);
        goto fail;
    }
    if (adam_m && adam_v) {
        am = calloc(m->nfloats, sizeof *am), av = calloc(m->nfloats, sizeof *av);
        if (!am || !av) {
            s = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
    }
    for (size_t k = 0; k < m->nparams; k++) {
        const loom_param *p = &m->params[k];
        if ((s = loom_st_read_f32(f, p->name, m->w + p->offset, p->ndim, p->shape, err))) goto fail;
        if (!has_optim) continue;
        char nm[LOOM_NAMELEN + 16];
        float *dst[2] = {am ? am + p->offset : NULL, av ? av + p->offset : NULL};
        for (int w = 0; w < 2; w++) {
            snprintf(nm, sizeof nm, "%s%s", w ? "optim.v." : "optim.m.", p->name);
            if (!dst[w]) continue;
            if ((s = loom_st_read_f32(f, nm, dst[w], p->ndim, p->shape, err))) goto fail;
        }
    }
    for (size_t i = 0; i < m->nfloats; i++)
        if (!isfinite(m->w[i])) {
            s = loom_fail(err, LOOM_EFORMAT, "%s: parameter %zu is not finite", path, i);
            goto fail;
        }
    loom_error me; /* colour models: masked weights must be 0, rejected (not re-zeroed) */
    if (loom_model_check_masks(m, &me)) {
        s = loom_fail(err, LOOM_EFORMAT, "%s: %s", path, me.msg);
        goto fail;
    }
    if (st) {
        unsigned long long step = 0, epoch = 0, index = 0, adam_t = 0;
        if ((s = meta_ulong(f, path, "step", &step, err)) ||
            (s = meta_ulong(f, path, "epoch", &epoch, err)) ||
            (s = meta_ulong(f, path, "index", &index, err)) ||
            (s = meta_ulong(f, path, "adam_t", &adam_t, err)))
            goto fail;
        const char *rng = loom_st_meta(f, "rng");
        if (!rng || strlen(rng) != 64 || strspn(rng, "0123456789abcdef") != 64) {
            s = loom_fail(err, LOOM_EFORMAT, "%s: metadata \"rng\" must be 64 hex digits", path);
            goto fail;
        }
        for (int w = 0; w < 4; w++) {
            char part[17];
            memcpy(part, rng + 16 * w, 16);
            part[16] = 0;
            st->rng.s[w] = strtoull(part, NULL, 16);
        }
        st->step = (long)step, st->epoch = epoch, st->index = index, st->adam_t = (long)adam_t;
    }
    if (o) *o = opts;
    loom_safetensors_close(f);
    *out = m;
    if (adam_m) *adam_m = am;
    else free(am);
    if (adam_v) *adam_v = av;
    else free(av);
    return LOOM_OK;
fail:
    loom_safetensors_close(f);
    loom_model_free(m);
    free(am), free(av);
    return s;
}
